"""The loop on the Maildir backend: one reply end to end against the bare render, and 1,000 replies across 100 plans.

    python -m benchmarks.loop [--runs N] [--plans P] [--rounds R]

One reply: a home with the example plan at version 1, Dana's change request in the Inbox, one watcher poll
under `changes = "auto"`: fetch, spool, parse, apply (version 2), render its letter (with the changes since
version 1), compose the email, archive, send (outbox/ and Sent). Beside it, in the same process and in
turn, the bare render of that same letter. The ratio of the medians is the pipeline's own overhead.

Many replies: P plans, each answered R times (SCRIPT: changes, questions, an out-of-office, mail about no
plan, confirmations), delivered one round at a time (one message per plan per round), a poll per round.
Run twice in two homes: with everything the loop does (changes rendered and sent at once), and the
parse + apply + queue path alone (fetch, spool, handle; the queued emails are not rendered or sent).
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
from pathlib import Path
from typing import Any

import pipeline.loop.compose
from benchmarks.common import (
    SCRIPT,
    START,
    Results,
    SimulatedClock,
    answer,
    clocked,
    example_plan,
    make_home,
    ms,
    peak_rss_mb,
    rss_mb,
    script_message,
    spread,
    timed,
    watcher,
)
from pipeline.loop import deliver, runner
from pipeline.loop.service import PollReport, Service
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.plan.diff import diff
from pipeline.plan.model import Version
from pipeline.render.letter import render_letter
from pipeline.store import utc_iso

CHANGE = ("Hi Jordan,\n\nWe can't start the pilot before March 8 - our Q4 close runs late this year.\n"
          "Please move the pilot to March 8, and add a security review with our CISO before the pilot.\n\n"
          "Best,\nDana\n")


class RenderClock:
    """Wraps compose's letter renderer to count the seconds spent inside it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._inner = pipeline.loop.compose.letter_pdf

    def __enter__(self) -> RenderClock:
        def counted(*args: Any, **kwargs: Any) -> bytes:
            spent, pdf = timed(lambda: self._inner(*args, **kwargs))
            self.seconds += spent
            self.calls += 1
            return pdf

        pipeline.loop.compose.letter_pdf = counted
        return self

    def __exit__(self, *exc: object) -> None:
        pipeline.loop.compose.letter_pdf = self._inner


class FsyncClock:
    """Counts the os.fsync() calls made meanwhile and the seconds they took (SQLite's own are not seen)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._inner = os.fsync

    def __enter__(self) -> FsyncClock:
        def counted(fd: int) -> None:
            spent, _ = timed(lambda: self._inner(fd))
            self.seconds += spent
            self.calls += 1

        os.fsync = counted
        return self

    def __exit__(self, *exc: object) -> None:
        os.fsync = self._inner


def fetch(w: Service, report: PollReport) -> None:
    """The first step of a poll: new mail into the spool."""
    parts = w.parts
    report.shunted.extend(parts.spool.recover())
    for fetched in parts.mailbox.fetch():
        parts.spool.enqueue(fetched.raw, key=fetched.key, received=utc_iso(parts.clock()))
        report.fetched += 1


def one_reply(w: Service, n: int, bare_first: Version | None = None) -> dict[str, Any]:
    """Plan `n`'s change request through the whole loop; its timings, and the bare render of its new letter.

    One watcher serves every run, as `mutualplan watch` serves every plan: its store's statements are compiled
    once, its letterhead loaded once. The bare render runs after the loop, or, when `bare_first` is an earlier
    run's version 2 (the same letter for another prospect), before it: whichever renders second may find the
    machine's caches warm, so the benchmark alternates the order.
    """
    clock, box = w.parts.clock, w.parts.mailbox
    plan = example_plan(n)
    clock.advance(days=1)  # type: ignore[attr-defined]
    box.deliver(answer(plan, 1, who="Dana", body=CHANGE, when=clock(), key=f"change.{n}"))  # type: ignore[attr-defined]
    clock.advance(minutes=5)  # type: ignore[attr-defined]
    v1 = w.store.version(plan.id, 1)
    if bare_first is not None:
        bare, bare_cpu, letter = bare_render(w.store.version(bare_first.plan_id, 1), bare_first)
    phases: dict[str, float] = {}
    cpu: dict[str, float] = {}
    report = PollReport()
    with RenderClock() as render, FsyncClock() as fsync:
        # A poll, step by step, so each step is timed on its own.
        for name, step in (("fetch + spool", lambda: fetch(w, report)),
                           ("parse + apply + queue", lambda: runner.process(w.parts, report)),
                           ("render, compose, archive, send", lambda: deliver.flush(w.parts, report))):
            phases[name], cpu[name], _ = clocked(step)
    total = sum(phases.values())
    assert report.handled and report.handled[0][1] == "applied", report.handled
    # The new version to the prospect, and under `auto` the suggested ask to the seller alone.
    assert f"<plan.{plan.id}.v2@northwind.example>" in report.sent and not report.errors, report
    v2 = w.store.current(plan.id)
    assert v2 is not None and v2.number == 2
    if bare_first is None:
        bare, bare_cpu, letter = bare_render(v1, v2)
    return {"v2": v2, "bare_first": bare_first is not None, "total": total, "cpu": sum(cpu.values()),
            "phases": phases, "phases_cpu": cpu,
            "render_inside": render.seconds, "bare": bare, "bare_cpu": bare_cpu,
            "fsync": fsync.seconds, "fsyncs": fsync.calls,
            "pages": letter.pages, "bytes": len(letter.pdf)}


def bare_render(v1: Version, v2: Version) -> tuple[float, float, Any]:
    """The letter of version 2 opening with the changes since version 1, rendered alone."""
    changes = diff(v1.plan, v2.plan, old_version=1, new_version=2)
    return clocked(lambda: render_letter(v2.plan, version=2, created=v2.created, diff=changes))


def bench_one_reply(results: Results, runs: int) -> None:
    """Section 2: one reply end to end against the bare render, `runs` times, the bare render before and after."""
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        clock = SimulatedClock(START)
        home = make_home(Path(tmp) / "home", changes="auto", plans=runs + 1, clock=clock)
        w = watcher(home, MaildirMailbox(home.mail_dir), clock)
        try:
            # Imports, fonts, templates, dateparser, compiled statements: paid once per process.
            runs_data = [one_reply(w, 0)]
            for i in range(1, runs + 1):
                runs_data.append(one_reply(w, i, bare_first=runs_data[-1]["v2"] if i % 2 else None))
        finally:
            w.parts.close()
        runs_data = runs_data[1:]
        for r in runs_data:
            del r["v2"]
    totals = [r["total"] for r in runs_data]
    bares = [r["bare"] for r in runs_data]
    ratio = spread(totals)["median"] / spread(bares)["median"]
    ratio_min = min(totals) / min(bares)
    cpu_ratio = spread([r["cpu"] for r in runs_data])["median"] / spread([r["bare_cpu"] for r in runs_data])["median"]
    results.add("reply", "one reply end to end (median)", ms(spread(totals)["median"]),
                f"{runs} runs, min {ms(min(totals))}; Maildir, changes = auto")
    results.add("reply", "the same letter, bare render (median)", ms(spread(bares)["median"]),
                f"min {ms(min(bares))}; {runs_data[0]['pages']} pages, {runs_data[0]['bytes']:,} bytes")
    results.add("reply", "pipeline / bare render (medians)", f"{ratio:.2f}x",
                f"aim <= 1.3x; of the minimums {ratio_min:.2f}x; of CPU time {cpu_ratio:.2f}x")
    for phase in runs_data[0]["phases"]:
        values = [r["phases"][phase] for r in runs_data]
        cpu = [r["phases_cpu"][phase] for r in runs_data]
        results.add("reply", f"  {phase}", ms(spread(values)["median"]), f"CPU {ms(spread(cpu)['median'])}")
    inside = [r["render_inside"] for r in runs_data]
    results.add("reply", "  of which the letter's render", ms(spread(inside)["median"]))
    overhead = [r["total"] - r["render_inside"] for r in runs_data]
    fsyncs = [r["fsync"] for r in runs_data]
    results.add("reply", "  everything but the render", ms(spread(overhead)["median"]),
                f"of which {runs_data[0]['fsyncs']} fsync() calls, {ms(spread(fsyncs)['median'])}")
    results.data["reply"] = {"runs": runs_data, "ratio": ratio}


def many_replies(root: Path, *, plans: int, rounds: int, send: bool) -> dict[str, Any]:
    """`plans` plans answered `rounds` times each, one round per poll; `send=False` leaves emails queued."""
    clock = SimulatedClock(START)
    home = make_home(root, changes="auto", plans=plans, clock=clock)
    box = MaildirMailbox(home.mail_dir)
    w = watcher(home, box, clock)
    try:
        plan_objects = [example_plan(n) for n in range(plans)]
        per_round = []
        dispositions: dict[str, int] = {}
        renders = 0
        gc.collect()
        rss_start = rss_mb()
        for step in range(rounds):
            clock.advance(hours=2)
            for n, plan in enumerate(plan_objects):
                current = w.store.current(plan.id)
                box.deliver(script_message(plan, current.number, step, n, clock()))  # type: ignore[union-attr]
            clock.advance(minutes=5)
            report = PollReport()
            with RenderClock() as render, FsyncClock() as fsync:
                if send:
                    seconds, cpu, report = clocked(w.poll)
                else:
                    seconds, cpu, _ = clocked(lambda r=report: (fetch(w, r), runner.process(w.parts, r)))
            renders += render.calls
            assert report.fetched == plans and len(report.handled) == plans and not report.errors, report.errors
            for _, disposition, _ in report.handled:
                dispositions[disposition] = dispositions.get(disposition, 0) + 1
            per_round.append({"seconds": seconds, "cpu": cpu, "rate": plans / seconds, "rss_mb": rss_mb(),
                              "fsync": fsync.seconds, "fsyncs": fsync.calls,
                              "render": render.seconds, "renders": render.calls, "sent": len(report.sent)})
        total = sum(r["seconds"] for r in per_round)
        total_cpu = sum(r["cpu"] for r in per_round)
        processed = len(list((home.mail_dir / ".Processed" / "cur").iterdir()))
        return {"total": total, "cpu": total_cpu, "replies": plans * rounds, "rate": plans * rounds / total,
                "rounds": per_round,
                "dispositions": dispositions, "renders": renders, "rss_start": rss_start,
                "rss_end": rss_mb(), "peak_rss": peak_rss_mb(), "processed_folder": processed,
                "render_seconds": sum(r["render"] for r in per_round),
                "fsync": sum(r["fsync"] for r in per_round), "fsyncs": sum(r["fsyncs"] for r in per_round)}
    finally:
        w.parts.close()


def bench_many(results: Results, plans: int, rounds: int) -> None:
    """Section 5: plans x rounds replies, with the render and without it."""
    count = plans * rounds
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        quick = many_replies(Path(tmp) / "queue", plans=plans, rounds=rounds, send=False)
        full = many_replies(Path(tmp) / "full", plans=plans, rounds=rounds, send=True)
    kinds = ", ".join(f"{v} {k}" for k, v in sorted(full["dispositions"].items()))
    results.add("many", f"{count:,} replies across {plans} plans, whole loop", ms(full["total"]),
                f"{full['rate']:.1f} replies/s; {full['renders']} letters rendered "
                f"({ms(full['render_seconds'])} of it); CPU {ms(full['cpu'])}")
    results.add("many", "  what they were", f"{count:,}", kinds)
    # Flat as the mailbox grows: rounds of the same kind of reply, early and late (the rounds differ in kind).
    for kind, label in (("change", "change requests"), ("confirm", "confirmations")):
        steps = [i for i in range(rounds) if SCRIPT[i % len(SCRIPT)][1] == kind]
        if len(steps) < 2:
            continue
        a, b = steps[0], steps[1]  # the first two: the last confirmation also makes the plan agreed
        results.add("many", f"  rounds {a + 1} and {b + 1}, both {label}",
                    f"{ms(full['rounds'][a]['seconds'])} / {ms(full['rounds'][b]['seconds'])}",
                    f"{plans} replies each; parse + apply + queue only: {ms(quick['rounds'][a]['seconds'])} / "
                    f"{ms(quick['rounds'][b]['seconds'])}")
    results.add("many", f"{count:,} replies, parse + apply + queue only", ms(quick["total"]),
                f"{quick['rate']:.1f} replies/s (fetch, spool, handle; no render or send); "
                f"CPU {ms(quick['cpu'])}, {count / quick['cpu']:.0f} replies per CPU second; "
                f"{quick['fsyncs'] / count:.1f} fsync() per reply, {ms(quick['fsync'])} in all")
    results.add("many", "  memory (RSS) after round 1 -> last", f"{full['rounds'][0]['rss_mb']:.0f} -> "
                f"{full['rounds'][-1]['rss_mb']:.0f} MB", f"peak {full['peak_rss']:.0f} MB for the process; "
                f"Processed grew to {full['processed_folder']:,}")
    results.data["many"] = {"full": full, "queue": quick}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--plans", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--skip-many", action="store_true")
    args = parser.parse_args()
    results = Results()
    bench_one_reply(results, args.runs)
    if not args.skip_many:
        bench_many(results, args.plans, args.rounds)
    print()
    print(results.table())


if __name__ == "__main__":
    main()
