"""Whole reading of a reply, replies per second: bytes in, interpretation out, over every reply fixture.

    python -m benchmarks.reading [--rounds N]

What the watcher does with each message: Incoming.from_bytes, then read_reply (extraction and interpretation
against the plan). Each round reads every fixture once; the best round counts (the machine is shared, and the best
round is the one least disturbed). CPU time is the figure to compare (docs/benchmarks.md); wall time is printed too.
Parsing and extraction alone are printed for where the time goes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.plan.source import parse_plan  # noqa: E402
from pipeline.replies.extract import extract  # noqa: E402
from pipeline.replies.interpret import read_reply  # noqa: E402
from pipeline.replies.message import Incoming  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
DOMAINS = ("northwind.example",)


def best_rate(step: Callable[[bytes], object], raws: list[bytes], rounds: int) -> tuple[float, float]:
    """(replies/s of CPU time, replies/s of wall time) of the best round."""
    cpu = wall = 0.0
    for _ in range(rounds):
        started, started_wall = time.process_time(), time.perf_counter()
        for raw in raws:
            step(raw)
        cpu = max(cpu, len(raws) / max(time.process_time() - started, 1e-9))
        wall = max(wall, len(raws) / max(time.perf_counter() - started_wall, 1e-9))
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="how many times every fixture is read")
    args = parser.parse_args()
    raws = [p.read_bytes() for p in sorted((FIXTURES / "replies").glob("*.eml"))]
    plan = parse_plan((FIXTURES / "example-plan.md").read_text())
    steps: dict[str, Callable[[bytes], object]] = {
        "parse (Incoming.from_bytes)": lambda raw: Incoming.from_bytes(raw, own_domains=DOMAINS),
        "parse + extract": lambda raw: extract(Incoming.from_bytes(raw, own_domains=DOMAINS)),
        "whole reading (parse, extract, interpret)": lambda raw: read_reply(
            Incoming.from_bytes(raw, own_domains=DOMAINS), plan
        ),
    }
    for raw in raws:  # warm-up: regexes compiled, modules loaded
        steps["whole reading (parse, extract, interpret)"](raw)
    print(f"{len(raws)} reply fixtures, best of {args.rounds} rounds\n")
    for label, step in steps.items():
        cpu, wall = best_rate(step, raws, args.rounds)
        print(f"{label:45} {cpu:8,.0f} replies/s CPU  {wall:8,.0f} replies/s wall")


if __name__ == "__main__":
    main()
