"""Every benchmark, one table: render, one reply end to end, reply reading, idle polls, many replies, archive.

    python -m benchmarks [--quick] [--large] [--only render,reply,...] [--json FILE]

Sections (docs/benchmarks.md explains each and records a run):
  render   the example letter cold (a new process) and warm (renders 2-20), and headless Chromium on its HTML
  reply    one reply end to end on the Maildir backend against the bare render of the same letter
  replies  replies read per second over the fixtures, beside mail-parser-reply and email-reply-parser
  poll     a watcher poll with no new mail, Maildir and Dovecot over IMAP, at 100 and 10,000 messages
           (and 100,000 with --large)
  many     1,000 replies across 100 plans: with the render, and the parse + apply + queue path alone
  archive  export and verify a plan of 1,000 versions

Times are wall clock on whatever else the machine is doing: single figures are indicative; ratios measured
side by side in one run are what count.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from benchmarks import render
from benchmarks.archive_verify import bench_archive
from benchmarks.chromium import print_letter
from benchmarks.common import Results, machine, ms, now_utc, spread
from benchmarks.loop import bench_many, bench_one_reply
from benchmarks.reply_rates import bench_replies
from benchmarks.watch_poll import bench_polls

SECTIONS = ("render", "reply", "replies", "poll", "many", "archive")


def bench_render(results: Results, cold_runs: int, warm_runs: int, chromium_runs: int) -> None:
    """Section 1, with benchmarks/render.py's cold and warm measurements and Chromium beside them."""
    cold = render.cold(render.EXAMPLE, cold_runs)
    *timings, pages, size = render.warm(render.EXAMPLE, warm_runs)  # wall times, and CPU times when given
    warm = timings[0]
    w = spread(warm)
    cpu = f"CPU {ms(spread(timings[1])['median'])}; " if len(timings) > 1 else ""
    results.add("render", f"example letter, warm (renders 2-{warm_runs}, median)", ms(w["median"]),
                f"{cpu}min {ms(w['min'])}, max {ms(w['max'])}; {pages} pages, {size:,} bytes")
    results.add("render", "example letter, cold: whole new process (median)", ms(spread(cold["process"])["median"]),
                f"import {ms(spread(cold['import'])['median'])} + first render "
                f"{ms(spread(cold['render'])['median'])}; {cold_runs} processes")
    reference = print_letter(chromium_runs)
    if reference is None:
        results.add("render", "headless Chromium, same HTML", "skipped", "chromium is not installed")
    else:
        p = reference["process"]
        results.add("render", "headless Chromium, same HTML (a new process)", ms(p["median"]),
                    f"min {ms(p['min'])}; {reference['pages']} pages, {reference['bytes']:,} bytes; "
                    f"{reference['version'].split(' built')[0]}")
    results.data["render"] = {"cold": cold, "warm": warm, "pages": pages, "bytes": size, "chromium": reference}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (20 plans, 200 versions): a few minutes")
    parser.add_argument("--large", action="store_true", help="polls at 100,000 messages too (minutes to fill)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated: {','.join(SECTIONS)}")
    parser.add_argument("--no-imap", action="store_true", help="polls on the Maildir only (no Dovecot)")
    parser.add_argument("--json", metavar="FILE", help="also write every measurement as JSON")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    quick = args.quick
    sizes = [100, 10_000] + ([100_000] if args.large else [])

    print(f"Mutual Plan benchmarks, {now_utc()}")
    print(machine())
    started = time.perf_counter()
    results = Results()
    if "render" in only:
        bench_render(results, cold_runs=2 if quick else 3, warm_runs=10 if quick else 20,
                     chromium_runs=2 if quick else 3)
    if "reply" in only:
        bench_one_reply(results, runs=3 if quick else 7)
    if "replies" in only:
        bench_replies(results, rounds=2 if quick else 5)
    if "poll" in only:
        bench_polls(results, sizes, polls=10 if quick else 20, imap=not args.no_imap)
    if "many" in only:
        bench_many(results, plans=20 if quick else 100, rounds=10)
    if "archive" in only:
        bench_archive(results, versions=200 if quick else 1000)
    print()
    print(results.table())
    print(f"\n{len(results.rows)} figures in {ms(time.perf_counter() - started)}; {now_utc()}; "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": [r.__dict__ for r in results.rows],
                                               "data": results.data}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
