"""Two sets of runs side by side: the median and spread of each figure, and the ratio of the medians.

    python -m benchmarks.compare 'before-*.json' 'after-*.json' [--labels old,new]

Each file is what `python -m benchmarks --json FILE` wrote. Run the two trees alternately (before, after,
before, after...) so that whatever else the machine does weighs on both alike; one run of each says little.
A section missing from a run (`--only`, a skipped Dovecot) leaves its figures out.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

Data = dict[str, Any]


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _reply(key: str, scale: float = 1e3) -> Callable[[Data], float]:
    return lambda d: _median([run[key] for run in d["reply"]["runs"]]) * scale


def _phase_cpu(phase: str) -> Callable[[Data], float]:
    return lambda d: _median([run["phases_cpu"][phase] for run in d["reply"]["runs"]]) * 1e3


def _poll(backend: str, size: int, what: str) -> Callable[[Data], float]:
    def get(d: Data) -> float:
        found = d["poll"][f"{backend}-{size}"][what]
        return (found if isinstance(found, float) else found["median"]) * 1e3
    return get


# (figure, how it is read from one run's data); milliseconds unless the name says otherwise.
FIGURES: list[tuple[str, Callable[[Data], float]]] = [
    ("render: example letter, warm (median)", lambda d: _median(d["render"]["warm"]) * 1e3),
    ("render: example letter, cold (a new process)", lambda d: _median(d["render"]["cold"]["process"]) * 1e3),
    ("render:   of which importing the renderer", lambda d: _median(d["render"]["cold"]["import"]) * 1e3),
    ("reply: one reply end to end", _reply("total")),
    ("reply: the same letter, bare render", _reply("bare")),
    ("reply: pipeline / bare render (x)", lambda d: _reply("total", 1)(d) / _reply("bare", 1)(d)),
    ("reply:   parse + apply + queue, CPU", _phase_cpu("parse + apply + queue")),
    ("reply:   everything but the render",
     lambda d: _median([r["total"] - r["render_inside"] for r in d["reply"]["runs"]]) * 1e3),
    ("replies: bytes -> interpretation (replies/s)", lambda d: d["replies"]["read_reply"]),
    ("replies: extract the new text, ours (replies/s)", lambda d: d["replies"]["extract"]["ours"]["rate"]),
    *[(f"poll: {name}, {size:,} messages", _poll(backend, size, "poll"))
      for backend, name in (("maildir", "Maildir"), ("imap", "Dovecot")) for size in (100, 10_000)],
    *[(f"poll: {name}, {size:,}, after a message lands in Sent", _poll(backend, size, "after_sent"))
      for backend, name in (("maildir", "Maildir"), ("imap", "Dovecot")) for size in (10_000,)],
    ("many: whole loop (s)", lambda d: d["many"]["full"]["total"]),
    ("many:   its CPU time (s)", lambda d: d["many"]["full"]["cpu"]),
    ("many:   replies per second", lambda d: d["many"]["full"]["rate"]),
    ("many: the same replies, parse + apply + queue only (s)", lambda d: d["many"]["queue"]["total"]),
    ("many:   their CPU time (s)", lambda d: d["many"]["queue"]["cpu"]),
    *[(f"archive: {label}", lambda d, k=key: d["archive"][k] * 1e3) for key, label in (
        ("verify_dir", "verify (directory)"), ("verify_zip", "verify (zip)"),
        ("cli", "`mutualplan archive verify`, a new process"),
        ("export_dir", "export (directory)"), ("export_zip", "export (zip)"))],
]


def figures(data: Data) -> dict[str, float]:
    """Every figure one run's data holds, by name."""
    found = {}
    for name, read in FIGURES:
        try:
            found[name] = float(read(data))
        except (KeyError, TypeError, IndexError, ZeroDivisionError, statistics.StatisticsError):
            continue  # the section did not run, or was skipped
    return found


def load(pattern: str) -> list[dict[str, float]]:
    """The figures of every run whose JSON file matches `pattern`."""
    paths = sorted(glob.glob(pattern)) or ([pattern] if Path(pattern).exists() else [])
    if not paths:
        raise SystemExit(f"no benchmark JSON matches {pattern!r}: write some with `python -m benchmarks --json FILE`")
    return [figures(json.loads(Path(p).read_text())["data"]) for p in paths]


Row = tuple[str, list[float], list[float]]


def compare(before: list[dict[str, float]], after: list[dict[str, float]]) -> list[Row]:
    """(figure, the values before, the values after) for every figure both sides have."""
    rows = []
    for name, _ in FIGURES:
        a = [run[name] for run in before if name in run]
        b = [run[name] for run in after if name in run]
        if a and b:
            rows.append((name, a, b))
    return rows


def _cell(values: list[float], digits: int) -> str:
    return f"{_median(values):,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def table(rows: list[Row], labels: tuple[str, str]) -> str:
    """A Markdown table: each side's median (min-max) and the ratio of the medians."""
    counts = f"ms unless given; {len(rows[0][1])} / {len(rows[0][2])} runs" if rows else "ms unless given"
    lines = [f"| figure ({counts}) | {labels[0]}: median (min-max) | {labels[1]}: median (min-max) | "
             f"{labels[1]} / {labels[0]} |", "|---|---|---|---|"]
    for name, a, b in rows:
        # Three significant digits or so, the same for both sides of a row.
        top = max(_median(a), _median(b))
        digits = 2 if top < 10 else 1 if top < 100 else 0
        lines.append(f"| {name} | {_cell(a, digits)} | {_cell(b, digits)} | {_median(b) / _median(a):.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.splitlines()[0])
    parser.add_argument("before", help="a glob of JSON files, e.g. '/tmp/bench-old-*.json'")
    parser.add_argument("after", help="the same for the other tree")
    parser.add_argument("--labels", default="before,after", help="the two columns' names (default: before,after)")
    args = parser.parse_args()
    first, _, second = args.labels.partition(",")
    labels = (first, second) if second else ("before", "after")
    before, after = load(args.before), load(args.after)
    print(table(compare(before, after), labels))


if __name__ == "__main__":
    main()
