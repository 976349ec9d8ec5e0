"""What one poll with nothing new costs, as the mailbox fills: Maildir and IMAP (a real Dovecot on loopback).

    python benchmarks/mailbox_poll.py [--sizes 100,10000] [--polls 20] [--no-imap]

Maildir: N messages already acknowledged (in Processed, and noticed in the Inbox's cur/), then polls.
IMAP: N messages in the INBOX (imported by Dovecot: slow for big N), all handed over before (the saved
place is at the last UID), then polls on the kept connection, and polls on a new connection each time
(connect, login, SELECT); for comparison, one UID SEARCH ALL over the same folder, which is what a poll
would cost without the saved place. The IMAP part starts Dovecot and Postfix as tests/servers.py does, so it needs root.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.mailbox.base import MemoryCursors  # noqa: E402
from pipeline.mailbox.imap import ImapMailbox, ImapSettings  # noqa: E402
from pipeline.mailbox.maildir import MaildirMailbox  # noqa: E402

MESSAGE = (
    "From: Dana Price <dana.price@acme.example>\n"
    "To: jordan.lee@northwind.example\n"
    "Subject: Re: Mutual plan [MP-7]\n"
    "Message-ID: <{n}@acme.example>\n"
    "\n"
    "Reply number {n}.\n"
)


def timed_polls(poll, polls: int) -> float:
    """Median milliseconds of one poll."""
    times = []
    for _ in range(polls):
        start = time.perf_counter()
        found = list(poll())
        times.append((time.perf_counter() - start) * 1000)
        assert found == [], "a poll with nothing new found something"
    return statistics.median(times)


def fill_maildir(folder: Path, count: int, info: str) -> None:
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (folder / "cur" / f"{1700000000 + n}.M{n}P1.bench:2,{info}").write_text(MESSAGE.format(n=n))


def maildir_poll(size: int, polls: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        box = MaildirMailbox(Path(tmp) / "mail")
        fill_maildir(box.root / ".Processed", size, "S")
        fill_maildir(box.root, size // 10, "")  # mail the seller keeps in the Inbox
        return timed_polls(box.fetch, polls)


def imap_polls(sizes: list[int], polls: int) -> list[tuple[int, float, float, float]]:
    from tests.servers import start_mailserver, stop_mailserver

    root = Path(tempfile.mkdtemp(prefix="mp-bench-"))
    server = start_mailserver(root)
    try:
        rows = []
        for size in sizes:
            address = f"bench{size}@northwind.example"
            password = server.add_user(address)
            # Saved by Dovecot itself (from a Maildir we write), so its files and indexes are the real thing.
            source = root / f"source{size}"
            fill_maildir(source, size, "S")
            for path in (source, *source.iterdir(), *(source / "cur").iterdir()):
                os.chown(path, server.uid, server.gid)
            server.doveadm("import", "-u", address, f"maildir:{source}", "", "all", timeout=3600)
            shutil.rmtree(source)
            status = server.doveadm("mailbox", "status", "-u", address, "uidvalidity uidnext", "INBOX")
            validity = int(re.search(r"uidvalidity=(\d+)", status).group(1))  # type: ignore[union-attr]
            uid_next = int(re.search(r"uidnext=(\d+)", status).group(1))  # type: ignore[union-attr]
            state = MemoryCursors()
            settings = ImapSettings(
                host=server.host, port=server.imap_port, security="plain", username=address, password=password,
                smtp_port=server.smtp_port, smtp_security="plain",
            )
            box = ImapMailbox(settings, state)
            state.set_cursor(box._state_key, f"{validity}:{uid_next - 1}")
            list(box.fetch())  # connect and warm Dovecot's index
            poll = timed_polls(box.fetch, polls)

            def fresh_poll(settings=settings, state=state):
                with ImapMailbox(settings, state) as fresh:
                    return list(fresh.fetch())

            fresh = timed_polls(fresh_poll, max(3, polls // 4))
            client = box._client()
            start = time.perf_counter()
            typ, data = client.uid("SEARCH", "ALL")
            search_all = (time.perf_counter() - start) * 1000
            assert typ == "OK" and len(data[0].split()) == size
            box.close()
            rows.append((size, poll, fresh, search_all))
        return rows
    finally:
        stop_mailserver(server)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000", help="comma-separated message counts")
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--no-imap", action="store_true", help="measure the Maildir only (no root needed)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print("Maildir: median ms per poll with nothing new")
    for size in sizes:
        print(f"  {size:>8} acknowledged messages: {maildir_poll(size, args.polls):8.3f} ms")
    if args.no_imap:
        return
    if os.geteuid() != 0:
        print("IMAP: skipped (starting Dovecot needs root)")
        return
    print("IMAP (Dovecot on loopback): median ms per poll with nothing new, vs one UID SEARCH ALL")
    for size, poll, fresh, search_all in imap_polls(sizes, args.polls):
        print(
            f"  {size:>8} messages in INBOX: poll {poll:8.3f} ms   on a new connection {fresh:8.3f} ms"
            f"   SEARCH ALL {search_all:8.3f} ms"
        )


if __name__ == "__main__":
    main()
