"""Replies read per second over the reply fixtures: ours beside mail-parser-reply and email-reply-parser.

    python -m benchmarks.reply_rates [--rounds N]

Every extractor gets the same messages, parsed once beforehand: ours reads the Incoming (text and HTML
parts), the libraries its text part, as in benchmarks/replies.py, whose extractors and scoring this uses
(`python benchmarks/replies.py --show` prints where each one goes wrong). Besides extraction alone, the
whole reading of a reply as the watcher does it: bytes in, interpretation out (parse, extract, interpret).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks import replies
from benchmarks.common import Results
from pipeline.plan.source import parse_plan
from pipeline.replies.interpret import read_reply
from pipeline.replies.message import Incoming


def rates(rounds: int) -> dict[str, Any]:
    names = sorted(p.stem for p in replies.REPLIES.glob("*.eml"))
    raws = [(replies.REPLIES / f"{n}.eml").read_bytes() for n in names]
    messages = [Incoming.from_bytes(raw) for raw in raws]
    plan = parse_plan((replies.FIXTURES / "example-plan.md").read_text())
    extractors = {"ours": replies.ours, "mail-parser-reply": replies.mail_parser_reply,
                  "email-reply-parser": replies.email_reply_parser}
    talon = replies.talon_extractor()
    if talon:
        extractors["talon"] = talon
    scored = [(i, (replies.REPLIES / f"{n}.txt").read_text()) for i, n in enumerate(names)
              if (replies.REPLIES / f"{n}.txt").exists()]
    out: dict[str, Any] = {"messages": len(names), "scored": len(scored), "extract": {}}
    for label, run in extractors.items():
        for message in messages[:5]:  # warm-up: regexes compiled, modules loaded
            run(message)
        start = time.perf_counter()
        for _ in range(rounds):
            for message in messages:
                run(message)
        elapsed = time.perf_counter() - start
        exact = sum(replies.normalize(run(messages[i])) == replies.normalize(want) for i, want in scored)
        clean = sum(replies.clean(run(messages[i]), want) for i, want in scored)
        out["extract"][label] = {"rate": rounds * len(messages) / elapsed, "exact": exact, "clean": clean}
    for raw in raws[:5]:
        read_reply(Incoming.from_bytes(raw, own_domains=("northwind.example",)), plan)
    start = time.perf_counter()
    for _ in range(rounds):
        for raw in raws:
            read_reply(Incoming.from_bytes(raw, own_domains=("northwind.example",)), plan)
    out["read_reply"] = rounds * len(raws) / (time.perf_counter() - start)
    return out


def bench_replies(results: Results, rounds: int) -> None:
    """Section 3: the rows of the table."""
    r = rates(rounds)
    n, scored = r["messages"], r["scored"]
    results.add("replies", "bytes -> interpretation (ours, whole reading)", f"{r['read_reply']:,.0f} replies/s",
                f"{n} fixtures x {rounds}: parse, extract, interpret against the plan")
    for label, e in r["extract"].items():
        results.add("replies", f"extract the new text: {label}", f"{e['rate']:,.0f} replies/s",
                    f"exact {e['exact']}/{scored}, clean {e['clean']}/{scored}")
    results.data["replies"] = r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = Results()
    bench_replies(results, args.rounds)
    print()
    print(results.table())


if __name__ == "__main__":
    main()
