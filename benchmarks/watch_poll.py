"""A whole watcher poll with no new mail, as the mailbox grows: the embedded Maildir and Dovecot over IMAP.

    python -m benchmarks.watch_poll [--sizes 100,10000,100000] [--polls 20] [--no-imap]

N is the number of messages already seen in the Inbox; as many again are filed in Processed and a tenth as
many are in Sent (each with its Message-ID), all filed an hour before. The home holds 10 plans, each with a
follow-up waiting in Drafts for the seller, so every poll also asks the mailbox whether the seller has sent
them (the review policy's steady state). A poll is Service.poll(): recover the spool, fetch, handle nothing,
look for the drafts in Sent. Beside it, the mailbox's fetch() alone. The mailboxes are written as files
(benchmarks/mailbox_poll.py's fill_maildir); for IMAP into the user's Maildir on disk, which Dovecot indexes
on the first poll (timed apart as "first poll"). Last, a few polls each right after a message lands in Sent
(the seller sent something from their own mail client). Dovecot and Postfix start as the tests start them
(tests/servers.py), so IMAP needs root; it is left out with a note otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.common import START, Results, SimulatedClock, make_home, ms, spread, timed, watcher
from benchmarks.mailbox_poll import MESSAGE, fill_maildir
from pipeline.loop import outbox
from pipeline.mailbox.base import Mailbox
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.store import Store

PLANS = 10


def wait_for_drafts(store: Store, clock: SimulatedClock) -> None:
    """Every plan's follow-up waits in Drafts (queued and marked drafted; no letter is needed to wait)."""
    for plan_id in store.plan_ids():
        entry = replace(outbox.plan_email(store.current(plan_id)), mode="draft")  # type: ignore[arg-type]
        store.queue_email(entry, at=clock())
        store.outbox_mark(entry.message_id, "drafted", at=clock())


def fill(base: Path, size: int) -> None:
    """`size` seen messages in the Inbox, as many in Processed, a tenth of it in Sent; filed an hour ago."""
    fill_maildir(base, size, "S")
    fill_maildir(base / ".Processed", size, "S")
    fill_maildir(base / ".Sent", max(size // 10, 1), "S")
    an_hour_ago = time.time() - 3600
    for folder in (base, base / ".Processed", base / ".Sent"):
        for sub in ("new", "cur", "tmp"):
            os.utime(folder / sub, (an_hour_ago, an_hour_ago))


def land_in_sent(base: Path, n: int, owner: tuple[int, int] | None = None) -> None:
    """A message the seller sent lands in Sent (their mail client filed it)."""
    path = base / ".Sent" / "cur" / f"{1800000000 + n}.M{n}P1.client:2,S"
    path.write_text(MESSAGE.format(n=f"sent-{n}"))
    if owner:
        os.chown(path, *owner)


def time_polls(home_root: Path, box: Mailbox, polls: int, sent_changes: Callable[[int], None]) -> dict[str, Any]:
    """The first poll, then `polls` polls and `polls` bare fetches with nothing new, then polls right after a
    message landed in Sent (`sent_changes(n)` files the n-th)."""
    clock = SimulatedClock(START)
    home = make_home(home_root, changes="review", plans=PLANS, clock=clock)
    w = watcher(home, box, clock)
    try:
        wait_for_drafts(w.store, clock)
        first, report = timed(w.poll)
        assert report.fetched == 0 and not report.errors and not report.sent, report
        times = []
        for _ in range(polls):
            seconds, report = timed(w.poll)
            assert report.fetched == 0 and not report.errors and not report.sent, report
            times.append(seconds)
        fetches = []
        for _ in range(polls):
            seconds, found = timed(lambda: list(box.fetch()))
            assert found == []
            fetches.append(seconds)
        after_sent = []
        for n in range(max(polls // 4, 3)):
            sent_changes(n)
            seconds, report = timed(w.poll)
            assert report.fetched == 0 and not report.errors and not report.sent, report
            after_sent.append(seconds)
        return {"first": first, "poll": spread(times), "fetch": spread(fetches), "after_sent": spread(after_sent)}
    finally:
        w.parts.close()


def maildir_polls(sizes: list[int], polls: int) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
            root = Path(tmp) / "home"
            root.mkdir()
            box = MaildirMailbox(root / "mail")
            fill(box.root, size)
            rows.append((size, time_polls(root, box, polls, lambda n, b=box.root: land_in_sent(b, n))))
    return rows


def imap_polls(sizes: list[int], polls: int) -> list[tuple[int, dict[str, Any]]]:
    from pipeline.mailbox.imap import ImapMailbox, ImapSettings
    from tests.servers import start_mailserver, stop_mailserver

    server_root = Path(tempfile.mkdtemp(prefix="mp-bench-"))
    server = start_mailserver(server_root)
    try:
        rows = []
        for size in sizes:
            address = f"poll{size}@northwind.example"
            password = server.add_user(address)
            maildir = server.maildir(address)
            fill(maildir, size)
            home_dir = maildir.parent
            subprocess.run(["chown", "-R", f"{server.uid}:{server.gid}", str(home_dir)], check=True)
            with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
                settings = ImapSettings(host=server.host, port=server.imap_port, security="plain", username=address,
                                        password=password, smtp_port=server.smtp_port, smtp_security="plain")
                clock = SimulatedClock(START)
                # The IMAP place is kept in the home's store, as `watch` keeps it.
                home_root = Path(tmp) / "home"
                state = make_home(home_root, changes="review", plans=0, clock=clock).open_store()
                box = ImapMailbox(settings, state)
                owner = (server.uid, server.gid)
                try:
                    result = time_polls(home_root, box, polls, lambda n, m=maildir, o=owner: land_in_sent(m, n, o))
                finally:
                    box.close()
                    state.close()
            rows.append((size, result))
            shutil.rmtree(home_dir, ignore_errors=True)
        return rows
    finally:
        stop_mailserver(server)
        shutil.rmtree(server_root, ignore_errors=True)


def bench_polls(results: Results, sizes: list[int], polls: int, imap: bool = True) -> None:
    """Section 4: the rows of the table."""
    data: dict[str, Any] = {}
    for size, r in maildir_polls(sizes, polls):
        results.add("poll", f"Maildir, {size:,} messages: poll (median)", ms(r["poll"]["median"]),
                    f"fetch alone {ms(r['fetch']['median'])}; first poll {ms(r['first'])}; "
                    f"after a message lands in Sent {ms(r['after_sent']['median'])}")
        data[f"maildir-{size}"] = r
    if not imap:
        results.add("poll", "IMAP", "skipped", "--no-imap")
    elif os.geteuid() != 0:
        results.add("poll", "IMAP", "skipped", "starting Dovecot needs root (as the tests do)")
    else:
        for size, r in imap_polls(sizes, polls):
            results.add("poll", f"IMAP (Dovecot), {size:,} messages: poll (median)", ms(r["poll"]["median"]),
                        f"fetch alone {ms(r['fetch']['median'])}; first poll {ms(r['first'])} (indexing); "
                        f"after a message lands in Sent {ms(r['after_sent']['median'])}")
            data[f"imap-{size}"] = r
    results.data["poll"] = data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000")
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--no-imap", action="store_true")
    args = parser.parse_args()
    results = Results()
    bench_polls(results, [int(s) for s in args.sizes.split(",")], args.polls, imap=not args.no_imap)
    print()
    print(results.table())


if __name__ == "__main__":
    main()
