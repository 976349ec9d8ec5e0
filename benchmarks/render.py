"""How long a letter takes to render: cold (a new process) and warm (in process), with its pages and bytes.

    python benchmarks/render.py [--cold N] [--warm N]

Cold runs start a new Python process per render and time the import of the renderer and the first
render separately, besides the whole process. Warm runs render the same letter N times in one process
and report renders 2..N (the first pays for loading the letterhead's fonts and templates). Two letters:
the example plan (tests/fixtures/example-plan.md) and the same plan with 25 milestones and long names.
Times are wall clock, and for warm renders also the process's CPU time; the machine's other load shows in
them (the load average is printed), so the minimum is the steadiest figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXAMPLE = ROOT / "tests" / "fixtures" / "example-plan.md"
CREATED = "2027-01-11T17:02:00+00:00"

# One cold render, run in a fresh interpreter; prints its timings as JSON.
_COLD = """
import json, sys, time
t0 = time.perf_counter()
from datetime import datetime
from pathlib import Path
sys.path.insert(0, {root!r})
from pipeline.plan.source import parse_plan
from pipeline.render.letter import render_letter
t1 = time.perf_counter()
plan = parse_plan(Path({plan!r}).read_text())
letter = render_letter(plan, version=1, created=datetime.fromisoformat({created!r}))
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "render": t2 - t1, "pages": letter.pages, "bytes": len(letter.pdf)}}))
"""


def long_plan() -> str:
    """The example plan with 25 milestones, a long company name and long activity names."""
    text = EXAMPLE.read_text()
    company = "Consolidated Intercontinental Shipping and Logistics Holdings Incorporated"
    head = text.partition("## Timeline")[0].replace("Acme Corp", company)
    table = "| # | Activity | Owner | Due |\n|---|---|---|---|\n"
    rows = []
    for i in range(1, 25):
        title = f"Workshop {i} on requirements"
        if i % 4 == 0:
            title = f"Step {i}: review of the supplier's data-retention and disaster-recovery controls"
        owner = ("Joint", "Northwind", "Consolidated (Dana)")[i % 3]
        rows.append(f"| M{i} | {title} | {owner} | T-{(25 - i) * 3}d |")
    return (
        head + "## Timeline\n" + table + "\n".join(rows) + "\n\n### After the PO\n" + table
        + "| M25 | Kick-off meeting and introductions | Joint | T+7d |\n\n## Call to action\nDana to confirm.\n"
    )  # fmt: skip


def cold(plan_file: Path, runs: int) -> dict[str, list[float] | int]:
    out: dict[str, list[float] | int] = {"process": [], "import": [], "render": []}
    for _ in range(runs):
        code = _COLD.format(root=str(ROOT), plan=str(plan_file), created=CREATED)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        elapsed = time.perf_counter() - start
        data = json.loads(done.stdout)
        out["process"].append(elapsed)
        out["import"].append(data["import"])
        out["render"].append(data["render"])
        out["pages"], out["bytes"] = data["pages"], data["bytes"]
    return out


def warm(plan_file: Path, runs: int) -> tuple[list[float], list[float], int, int]:
    from pipeline.plan.source import parse_plan
    from pipeline.render.letter import render_letter

    plan = parse_plan(plan_file.read_text())
    created = datetime.fromisoformat(CREATED)
    times, cpu = [], []
    letter = None
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        letter = render_letter(plan, version=1, created=created)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    assert letter is not None
    return times[1:], cpu[1:], letter.pages, len(letter.pdf)


def fmt(values: list[float]) -> str:
    return f"{min(values):6.3f} {statistics.median(values):6.3f} {max(values):6.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cold", type=int, default=3, help="new processes per letter (default 3)")
    parser.add_argument("--warm", type=int, default=20, help="renders in one process per letter (default 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "long-plan.md"
        big.write_text(long_plan())
        letters = (("example letter", EXAMPLE), ("25 milestones, long names", big))
        cores = len(os.sched_getaffinity(0))
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"Python {platform.python_version()}, {platform.system()} {platform.release()}, {cores} cores, "
              f"load average {load} before")  # fmt: skip
        print(f"{'letter':28} {'seconds':34} {'min':>6} {'median':>6} {'max':>6}")
        for name, path in letters:
            c = cold(path, args.cold)
            w, w_cpu, pages, size = warm(path, args.warm)
            print(f"{name:28} {'cold: whole process':34} {fmt(c['process'])}")
            print(f"{'':28} {'cold: import of the renderer':34} {fmt(c['import'])}")
            print(f"{'':28} {'cold: first render':34} {fmt(c['render'])}")
            print(f"{'':28} {f'warm: renders 2-{args.warm}':34} {fmt(w)}")
            print(f"{'':28} {'warm: CPU time of those':34} {fmt(w_cpu)}")
            print(f"{'':28} {'pages, bytes':34} {pages:>6} {size:>13,}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"run at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load} after")


if __name__ == "__main__":
    main()
