"""The Message-ID a server sent our email under, learned even when its Sent Items copy is late.

Exchange (and Graph's send) names the replies it builds and files the copy in Sent Items a moment after the send
returns. When that copy is later than the first few looks, the next poll looks again, so an answer whose
In-Reply-To holds only the server's id still finds its plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.home import init_home
from pipeline.loop import thread
from pipeline.loop.parts import Parts, settings_of
from pipeline.loop.service import Reason, Service, make_version
from pipeline.mailbox.memory import MemoryMailbox
from pipeline.replies.message import Incoming
from pipeline.spool import Spool
from tests.loop_support import DANA, PLAN_ID, RAJ, SELLER, START, Clock, example_plan, reply, settings_toml

AGREED = "<plan.acme-northwind-2027.v1.agreed@northwind.example>"
RENAMED = "<AM0PR01MB1234.server-made@eurprd01.prod.example>"


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    home = init_home(tmp_path / "home")
    home.settings_path.write_text(settings_toml(), encoding="utf-8")
    clock = Clock(START)
    box = MemoryMailbox()
    made = Parts(store=home.open_store(), archive=home.open_archive(), spool=Spool(home.spool_dir),
                 settings=settings_of(home), clock=clock, mailbox=box)
    make_version(made.store, example_plan(), author=SELLER, reason=Reason.CREATED, created=clock())
    # Version 1 goes out through the mailbox, under our own Message-ID.
    Service(made).send_plan(PLAN_ID)
    clock.advance(hours=2)
    try:
        yield made
    finally:
        made.close()


def _agree_with_a_late_sent_copy(parts: Parts, box: MemoryMailbox, misses: int) -> None:
    """Both contacts confirm; the "agreed" email goes out renamed, its Sent copy missed by `misses` looks."""
    box.sent_as[AGREED] = RENAMED
    box.sent_late[AGREED] = misses
    box.deliver(reply(DANA, "Confirmed.", message_id="<c1@acme.example>", when=parts.clock()))
    box.deliver(reply(RAJ, "Confirmed.", message_id="<c2@acme.example>", when=parts.clock()))
    Service(parts).poll()
    assert str(box.sent[-1]["Message-ID"]) == AGREED


def _answer_to_the_renamed_email(parts: Parts) -> Incoming:
    # A client that keeps only In-Reply-To (no References) and a subject of the sender's own.
    raw = reply(DANA, "Thank you, see you at the kick-off.", message_id="<c3@acme.example>",
                when=parts.clock(), in_reply_to=RENAMED, references=[RENAMED], subject="Kick-off")
    raw = raw.replace(b"References: " + RENAMED.encode() + b"\n", b"")
    return Incoming.from_bytes(raw)


def test_a_sent_copy_found_at_once_is_the_alias(parts: Parts) -> None:
    box = parts.mailbox
    assert isinstance(box, MemoryMailbox)
    _agree_with_a_late_sent_copy(parts, box, misses=0)
    found = thread.resolve(parts.store, _answer_to_the_renamed_email(parts), ["northwind.example"])
    assert found is not None and (found.plan_id, found.version) == (PLAN_ID, 1)


def test_a_sent_copy_later_than_the_first_looks_is_learned_on_the_next_poll(parts: Parts) -> None:
    box = parts.mailbox
    assert isinstance(box, MemoryMailbox)
    # More misses than one send's looks (the first look and one per delay): the alias is unknown after it.
    _agree_with_a_late_sent_copy(parts, box, misses=1 + len(box.sent_lookup_delays))
    answer = _answer_to_the_renamed_email(parts)
    assert thread.resolve(parts.store, answer, ["northwind.example"]) is None
    parts.clock.advance(minutes=5)
    Service(parts).poll()
    found = thread.resolve(parts.store, answer, ["northwind.example"])
    assert found is not None and (found.plan_id, found.version) == (PLAN_ID, 1)


def test_an_email_sent_over_a_day_ago_is_not_looked_for_again(parts: Parts) -> None:
    box = parts.mailbox
    assert isinstance(box, MemoryMailbox)
    _agree_with_a_late_sent_copy(parts, box, misses=1 + len(box.sent_lookup_delays))
    looks_before = box.sent_looks
    parts.clock.advance(hours=25)
    Service(parts).poll()
    assert box.sent_looks == looks_before


def test_an_alias_already_known_is_not_looked_for_again(parts: Parts) -> None:
    box = parts.mailbox
    assert isinstance(box, MemoryMailbox)
    _agree_with_a_late_sent_copy(parts, box, misses=0)
    looks_before = box.sent_looks
    parts.clock.advance(minutes=5)
    Service(parts).poll()
    assert box.sent_looks == looks_before
