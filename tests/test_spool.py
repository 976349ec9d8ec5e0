"""The spool keeps every message through crashes and failures, and shunts what keeps failing."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.spool import MAX_ATTEMPTS, Spool


def test_enqueue_claim_finish(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    a = spool.enqueue(b"first", key="k1")
    b = spool.enqueue(b"second", key="k2")
    assert spool.pending() == [a, b]  # oldest first
    entry = spool.claim(a)
    assert entry is not None and entry.raw == b"first" and entry.meta["key"] == "k1"
    assert spool.claim(a) is None  # a second claimer gets nothing
    assert spool.pending() == [b]
    spool.finish(a)
    assert not list(tmp_path.joinpath("queue").glob(f"{a}*"))
    assert spool.pending() == [b]


def _dies(spool: Spool) -> None:
    """What the kernel does for a process that dies: its open files close, and their locks go with them."""
    for fd in spool._claims.values():
        os.close(fd)
    spool._claims.clear()


def test_a_claimed_entry_survives_a_crash_and_comes_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    name = spool.enqueue(b"raw bytes")
    assert spool.claim(name) is not None
    _dies(spool)  # the process dies here; a new one recovers the queue
    restarted = Spool(tmp_path)
    assert restarted.recover() == []
    assert restarted.pending() == [name]
    entry = restarted.claim(name)
    assert entry is not None and entry.meta["attempts"] == 1


def test_three_failures_move_an_entry_to_shunt_with_its_errors(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    name = spool.enqueue(b"poison")
    other = spool.enqueue(b"fine")
    places = []
    for attempt in range(MAX_ATTEMPTS):
        assert spool.claim(name) is not None
        places.append(spool.fail(name, f"ValueError: attempt {attempt}"))
    assert places == ["queue", "queue", "shunt"]
    assert spool.pending() == [other]  # the rest flows on
    [shunted] = spool.shunted()
    assert shunted.raw == b"poison"
    assert shunted.meta["errors"] == ["ValueError: attempt 0", "ValueError: attempt 1", "ValueError: attempt 2"]


def test_an_entry_that_kills_the_process_three_times_goes_to_bad(tmp_path: Path) -> None:
    name = Spool(tmp_path).enqueue(b"crasher")
    for _ in range(MAX_ATTEMPTS):
        spool = Spool(tmp_path)
        spool.recover()
        assert spool.claim(name) is not None  # ... and the process dies again
        _dies(spool)
    moved = Spool(tmp_path).recover()
    assert moved == [name]
    assert Spool(tmp_path).pending() == []
    assert (tmp_path / "bad" / f"{name}.eml").read_bytes() == b"crasher"


def test_no_temporary_files_are_left(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.enqueue(b"x" * 100_000)
    assert [p.name for p in (tmp_path / "queue").iterdir() if p.name.startswith(".")] == []


def test_a_live_claim_is_not_put_back_by_a_second_watcher(tmp_path: Path) -> None:
    # Two watchers on one home: the second one's start-up recovery must not hand it the first one's work.
    first, second = Spool(tmp_path), Spool(tmp_path)
    name = first.enqueue(b"in hand")
    assert first.claim(name) is not None
    assert second.recover() == []
    assert second.pending() == []  # still the first watcher's
    first.finish(name)
    assert second.recover() == [] and second.pending() == []


def test_a_sidecar_whose_message_was_never_written_does_not_hide_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    kept = spool.enqueue(b"stored", key="k1")
    # A crash between the sidecar and the message: only the .json of "k2" is on disk.
    orphan = tmp_path / "queue" / "00000000000000000001-0000000000000000.json"
    orphan.write_text('{"sha256": "x", "attempts": 0, "errors": [], "key": "k2"}')
    assert Spool(tmp_path).keys() == {"k1"}  # k2 is not stored: the next fetch takes it again
    old = os.stat(orphan).st_mtime - 3600
    os.utime(orphan, (old, old))
    restarted = Spool(tmp_path)
    restarted.recover()
    assert not orphan.exists() and restarted.pending() == [kept]


def test_a_corrupt_sidecar_counts_as_a_fresh_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n, text in enumerate(["null", "[1, 2]", '{"attempts": "two", "errors": 7, "key": "k"}', "\\xff"]):
        name = spool.enqueue(f"raw {n}".encode())
        (tmp_path / "queue" / f"{name}.json").write_text(text)
        entry = spool.claim(name)
        assert entry is not None and entry.meta["attempts"] == 0 and entry.meta["errors"] == []
        assert spool.fail(name, "boom") == "queue"
        assert spool._meta(name)["attempts"] == 1


def test_a_sidecar_key_or_time_that_is_not_text_is_dropped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    name = spool.enqueue(b"raw", key="k", received="2027-01-11T17:02:00Z")
    (tmp_path / "queue" / f"{name}.json").write_text('{"key": 7, "received": 5}')
    # A key the mailbox never gave cannot file the message: without one, the mailbox offers it again.
    assert spool.keys() == set()
    entry = spool.claim(name)
    assert entry is not None and "key" not in entry.meta and "received" not in entry.meta
