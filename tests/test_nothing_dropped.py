"""Nothing a participant writes is dropped: a compound sentence applies whole or goes to the seller whole, a
question is told as a question, and every reply of a participant that changed nothing (or not all) reaches the
seller, while floods stay at one notice a day and the weekly digest lists what was held back.

The example plan (Acme and Northwind): M3 the pilot, Acme (Dana), due Mon 1 Mar 2027; M4 the reference call,
M3+3d, Thu 4 Mar; M5 the legal review, Acme (Kim Osei), Wed 17 Mar. Replies here are written Mon 1 Feb 2027, so
"March 8" is 2027-03-08.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.home import Home, init_home
from pipeline.loop import policy
from pipeline.loop.service import Service, queue_plan
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.plan.source import parse_plan
from pipeline.replies.interpret import interpret
from pipeline.replies.message import Incoming
from pipeline.replies.reminder_answer import read_reminder_answer
from pipeline.store import OutboxEntry
from tests.loop_support import (
    DANA,
    PLAN_ID,
    RAJ,
    SELLER,
    START,
    Clock,
    example_plan,
    parse,
    reply,
    settings_toml,
    text_body,
)

FIXTURES = Path(__file__).parent / "fixtures"
WRITTEN = date(2027, 2, 1)

MOVE_M3 = {"op": "move", "milestone": "M3", "due": "2027-03-08"}


def read(text: str) -> tuple[str, list[dict[str, Any]], tuple[str, ...], tuple[str, ...]]:
    plan = parse_plan((FIXTURES / "example-plan.md").read_text(), file="example-plan.md")
    reading = interpret(text, plan, WRITTEN, sender=DANA)
    return reading.intent, [c.to_dict() for c in reading.changes], reading.unresolved, reading.requests


# --- one sentence, several requests: all of them, or the sentence whole to the seller ----------------------


@pytest.mark.parametrize("text, changes", [
    # The spec's own example: Kim owns the legal review already, so the move is the one change; it is not lost.
    ("Please move M3 to March 8, and Kim will own the legal review.", [MOVE_M3]),
    # A move and a reassign, joined by "and", by "also", by ";".
    ("Please move M3 to March 8, and Raj will own the legal review.",
     [MOVE_M3, {"op": "reassign", "milestone": "M5", "owner": "Raj Patel"}]),
    ("Move the pilot to March 8 and also Raj will own the legal review.",
     [MOVE_M3, {"op": "reassign", "milestone": "M5", "owner": "Raj Patel"}]),
    ("Move M3 to March 8; Raj will handle the legal review.",
     [MOVE_M3, {"op": "reassign", "milestone": "M5", "owner": "Raj Patel"}]),
    # Two moves: to a date, and by an amount from the reference call's own date (4 Mar + 7 days).
    ("Move M3 to March 8, also move M4 to March 12.",
     [MOVE_M3, {"op": "move", "milestone": "M4", "due": "2027-03-12"}]),
    ("Move the pilot to March 8; push the reference call back a week.",
     [MOVE_M3, {"op": "move", "milestone": "M4", "due": "2027-03-11"}]),
])
def test_every_request_of_a_compound_sentence_applies(text: str, changes: list[dict[str, Any]]) -> None:
    intent, got, unresolved, _ = read(text)
    assert (intent, got, unresolved) == ("amend", changes, ())


@pytest.mark.parametrize("text", [
    "Move M3 to March 8, and can your team present to our board?",  # a move and a question nothing maps
    "Move M3 to March 8, and also present to our board.",  # a move and a request nothing maps
    "Move M3 to March 8; the board wants a presentation too.",
    "Move M3 to March 8 and move M9 to March 12.",  # a move and a move of a step the plan does not have
    "Please move the pilot to March 8, and also move the workshop.",  # ... and a move that says not where to
])
def test_a_compound_sentence_with_a_part_that_cannot_be_mapped_goes_whole_to_the_seller(text: str) -> None:
    intent, changes, unresolved, requests = read(text)
    assert (intent, changes, unresolved, requests) == ("comment", [], (text,), (text,))


def test_only_the_sentence_that_failed_is_withheld() -> None:
    failed = "Push M3 back a week, and move M9 to March 12."
    intent, changes, unresolved, _ = read(f"Please drop item 4. Move M3 to March 8. {failed}")
    # The other sentences apply; the failed one is told whole, though another sentence changed M3 too.
    assert intent == "amend"
    assert changes == [{"op": "remove", "milestone": "M4"}, MOVE_M3]
    assert unresolved == (failed,)


@pytest.mark.parametrize("text, changes", [
    # A second half with nothing to ask belongs to the first: the old date, then the new one.
    ("Feb 10 doesn't work for the demo; Feb 17 does.", [{"op": "move", "milestone": "M2", "due": "2027-02-17"}]),
    # "it" is the new step: its owner, not a reassignment of the pilot.
    ("Please add a security review before the pilot, and Raj will own it.",
     [{"op": "add", "title": "Security review", "owner": "Raj Patel", "due": None, "before": "M3"}]),
    ("Move M3 to March 8; everything else looks good.", [MOVE_M3]),
])
def test_a_second_half_that_asks_nothing_stays_with_the_first(text: str, changes: list[dict[str, Any]]) -> None:
    intent, got, unresolved, _ = read(text)
    assert (intent, got, unresolved) == ("amend", changes, ())


@pytest.mark.parametrize("body, changes, unresolved", [
    # Under the reminder about M3, "it" is the pilot only to say it is done or when: a removal read from it
    # alone goes to the seller, and is not lost when another sentence goes too.
    ("We can drop it. Can we talk Tuesday?", [], ("Can we talk Tuesday?", "We can drop it.")),
    # ... and the sentence it is in goes whole: the pilot is not marked done by half of it.
    ("Done, and Raj will own it.", [], ("Done, and Raj will own it.",)),
    ("Done.\n\nRaj will own it.", [{"op": "status", "milestone": "M3", "status": "done"}], ("Raj will own it.",)),
])
def test_an_answer_to_a_reminder_drops_no_sentence_and_halves_none(body: str, changes: list[dict[str, Any]],
                                                                   unresolved: tuple[str, ...]) -> None:
    when = datetime(2027, 2, 25, 18, tzinfo=UTC)
    raw = reply(DANA, body, message_id="<r@acme.example>", when=when)
    answer = read_reminder_answer(Incoming.from_bytes(raw), example_plan(), "M3", received=when)
    assert ([c.to_dict() for c in answer.changes], answer.unresolved) == (changes, unresolved)
    assert answer.requests == tuple(u for u in unresolved if u != "Can we talk Tuesday?")


# --- a question is told as a question ------------------------------------------------------------------


@pytest.mark.parametrize("text, unresolved, requests", [
    ("Next steps?", ("Next steps?",), ()),
    ("Can we talk Tuesday?", ("Can we talk Tuesday?",), ()),
    ("Let's talk next week.", ("Let's talk next week.",), ()),
    ("Can we move the pilot?", ("Can we move the pilot?",), ("Can we move the pilot?",)),
])
def test_what_is_a_question_and_what_a_request(text: str, unresolved: tuple[str, ...],
                                               requests: tuple[str, ...]) -> None:
    assert read(text)[2:] == (unresolved, requests)


def facts(unresolved: tuple[str, ...], requests: tuple[str, ...] = (), sender: str = DANA) -> policy.Facts:
    return policy.Facts(sender=sender, sender_is_seller=sender == SELLER, sender_confirms=True, plan_state="open",
                        replied_version=1, current_version=1, intent="comment", changes=(), unresolved=unresolved,
                        requests=requests)


def test_the_notice_says_a_question_was_asked_not_that_a_request_failed() -> None:
    asked = policy.decide(facts(("Next steps?",)))
    assert (asked.disposition, asked.reason, asked.notes) == (
        policy.NOTED, f"{DANA} asked a question; nothing changed", ("Next steps?",))
    two = policy.decide(facts(("Next steps?", "Can we talk Tuesday?"), sender=SELLER))
    assert two.reason == f"the seller ({SELLER}) asked 2 questions; nothing changed"
    wrote = policy.decide(facts(("Let's talk next week.", "Next steps?")))
    assert wrote.reason == f"{DANA} wrote; nothing changed"
    request = policy.decide(facts(("Can we move the pilot?", "Next steps?"), ("Can we move the pilot?",)))
    assert request.reason == f"{DANA} asked for something that could not be mapped safely; nothing changed"
    assert policy.decide(facts(())).reason == f"{DANA} commented; nothing changed"


# --- every participant's reply reaches the seller; floods once a day, the rest in the digest ----------------


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    """The example's version 1, sent Mon 11 Jan 2027; reminders off, the digest on Mondays."""
    home = init_home(tmp_path / "home")
    home.settings_path.write_text(settings_toml().replace("digest = false", 'digest = true\ndigest_day = "monday"'),
                                  encoding="utf-8")
    clock = Clock(START)
    with Service.open(home, clock) as watcher:
        plan = example_plan()
        watcher.store.add_version(plan, author=SELLER, reason="created", created=clock())
        queue_plan(watcher.store, plan.id, at=clock())
        watcher.flush()
    yield home


def poll(home: Home, clock: Clock, *messages: bytes) -> list[tuple[str, str, str]]:
    for raw in messages:
        MaildirMailbox(home.mail_dir).deliver(raw)
    with Service.open(home, clock) as watcher:
        report = watcher.poll()
    assert report.errors == []
    return report.handled


def notices(home: Home) -> list[OutboxEntry]:
    with home.open_store() as store:
        return [e for e in store.outbox_entries(PLAN_ID) if e.kind == "notice"]


def test_each_question_of_a_participant_reaches_the_seller_and_a_flood_is_told_once(home: Home) -> None:
    clock = Clock(START + timedelta(hours=1))
    outsider = "priya.shah@acme.example"
    handled = poll(home, clock,
                   reply(DANA, "Can we talk on Tuesday?", message_id="<q1@acme.example>", when=clock()),
                   reply(DANA, "What are the next steps?", message_id="<q2@acme.example>", when=clock()),
                   reply(RAJ, "I am not sure about the pilot.", message_id="<q3@acme.example>", when=clock()),
                   reply(outsider, "Please move the pilot.", message_id="<o1@acme.example>", when=clock()),
                   reply(outsider, "Please move the pilot!", message_id="<o2@acme.example>", when=clock()))
    assert [d for _, d, _ in handled] == ["noted"] * 3 + ["held"] * 2
    clock.advance(hours=3)
    poll(home, clock, reply(DANA, "And who owns the legal review?", message_id="<q4@acme.example>", when=clock()))
    told = sorted((e.data["reply"]["message_id"], e.data["about"]) for e in notices(home))
    assert told == [("o1@acme.example", "outsider"), ("q1@acme.example", "noted"), ("q2@acme.example", "noted"),
                    ("q3@acme.example", "noted"), ("q4@acme.example", "noted")]
    sent = {e.message_id: e for e in notices(home)}
    assert all(e.state == "sent" and e.to == (SELLER,) for e in sent.values())
    mails = {m["Message-ID"]: m for m in map(parse, (p.read_bytes() for p in (home.root / "outbox").glob("*.eml")))}
    (asked,) = [text_body(mails[k]) for k, e in sent.items() if e.data["reply"]["message_id"] == "q1@acme.example"]
    assert f"Nothing in the plan changed: {DANA} asked a question\n" in asked
    assert "The question:\n- Can we talk on Tuesday?\n" in asked
    assert "could not be mapped" not in asked and "Not acted on" not in asked
    with home.open_store() as store:
        skipped = [a.detail["message_id"] for a in store.audit_log(PLAN_ID) if a.event == "notice.skipped"]
    assert skipped == ["o2@acme.example"]

    # The next Monday at 8:00 in Los Angeles (16:00 UTC) the digest lists what was held back.
    assert f"{PLAN_ID}: 1 more from {outsider} (Mon 11 Jan 2027): {outsider} is not a participant of the plan" \
        in digest_at(home, clock, "2027-01-18T16:00:00", "2027-W03")
    # Held back after it, that morning: the next digest lists that one, and not again the first.
    clock.now = datetime.fromisoformat("2027-01-18T16:30:00+00:00")
    poll(home, clock, reply(outsider, "Pilot?", message_id="<o3@acme.example>", when=clock()),
         reply(outsider, "Pilot??", message_id="<o4@acme.example>", when=clock()))
    body = digest_at(home, clock, "2027-01-25T17:00:00", "2027-W04")
    assert f"{PLAN_ID}: 1 more from {outsider} (Mon 18 Jan 2027)" in body
    assert "Mon 11 Jan 2027)" not in body


def digest_at(home: Home, clock: Clock, when: str, week: str) -> str:
    """The digest the watcher sends at `when` (UTC), as one line of text."""
    clock.now = datetime.fromisoformat(when + "+00:00")
    with Service.open(home, clock) as watcher:
        report = watcher.poll()
        watcher.remind(report)
    (digest,) = [m for m in map(parse, (p.read_bytes() for p in (home.root / "outbox").glob("*.eml")))
                 if str(m["Subject"]).startswith(f"Mutual Plans, week {week}")]
    body = " ".join(text_body(digest).split())
    assert "Held back from the day's notices" in body
    return body
