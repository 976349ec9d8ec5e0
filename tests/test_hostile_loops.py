"""No loops: a robot on the prospect's side that answers each of our emails with our own words, and no
Auto-Submitted header to say it is a robot, never makes a version; and every email to the seller goes once, however
many watchers run at once."""

from __future__ import annotations

import email
import email.policy
import multiprocessing
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from pipeline.loop import policy
from tests.test_hostile import (  # noqa: F401  (fixtures)
    DANA,
    PASS,
    PLAN_ID,
    SELLER,
    SETTINGS,
    Loop,
    sent_home,
)

AUTO = SETTINGS.replace('changes = "review"', 'changes = "auto"')


@pytest.fixture
def box(sent_home: Path, tmp_path: Path) -> Loop:  # noqa: F811
    """A copy of the home whose version 1 went out, its follow-ups sent at once (`auto`)."""
    loop = Loop(sent_home, tmp_path / "home")
    loop.home.settings_path.write_text(AUTO, encoding="utf-8")
    return loop


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def echo(ours: EmailMessage, n: int, *, quoted: bool, when) -> bytes:  # type: ignore[no-untyped-def]
    """The robot's answer: our email's words sent back as new text (or all quoted), as a person's reply looks."""
    body = _text(ours)
    if quoted:
        body = "\n".join(f"> {line}" for line in body.splitlines())
    msg = EmailMessage()
    msg["Authentication-Results"] = PASS
    msg["From"] = f"Dana Whitfield <{DANA}>"
    msg["To"] = SELLER
    msg["Subject"] = f"RE: {ours['Subject']}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<robot.{n}@acme.example>"
    msg["In-Reply-To"] = str(ours["Message-ID"])
    msg["References"] = str(ours["Message-ID"])
    msg.set_content(body)
    return bytes(msg)


def run_robot(loop: Loop, polls: int, *, quoted: bool) -> list[tuple[str, str, str]]:
    """Each poll, the robot answers every email of ours it got since the last; what the watcher made of each."""
    answered: set[str] = set()
    handled: list[tuple[str, str, str]] = []
    for n in range(polls):
        loop.clock.advance(minutes=10)
        for mid, msg in loop.emails("Sent").items():
            if mid in answered or DANA not in str(msg["To"]) + str(msg["Cc"] or ""):
                continue
            answered.add(mid)
            loop.deliver(echo(msg, len(answered), quoted=quoted, when=loop.clock()))
        handled += loop.poll().handled
        del n
    return handled


def versions(loop: Loop) -> int:
    with loop.store() as store:
        return store.current(PLAN_ID).number


def first_change(loop: Loop) -> None:
    """Dana asks for a real change: version 2 goes out at once, and the robot has something to answer."""
    msg = EmailMessage()
    msg["Authentication-Results"] = PASS
    msg["From"] = f"Dana Whitfield <{DANA}>"
    msg["To"] = SELLER
    msg["Subject"] = "RE: Mutual Plan: Acme Corp and Northwind Analytics (version 1)"
    msg["Date"] = format_datetime(loop.clock())
    msg["Message-ID"] = "<human.1@acme.example>"
    msg["In-Reply-To"] = "<plan.acme-northwind-2027.v1@northwind.example>"
    msg["References"] = "<plan.acme-northwind-2027.v1@northwind.example>"
    msg.set_content("Hi Jordan,\n\nPlease move the pilot to March 8 and drop the reference call.\n\nDana")
    loop.deliver(bytes(msg))
    assert [d for _, d, _ in loop.poll().handled] == [policy.APPLIED]
    assert versions(loop) == 2


@pytest.mark.parametrize("quoted", [False, True], ids=["echoed", "quoted"])
def test_a_robot_echoing_our_emails_makes_no_version(box: Loop, quoted: bool) -> None:
    first_change(box)
    handled = run_robot(box, 12, quoted=quoted)
    assert versions(box) == 2, handled
    assert handled and all(d != policy.APPLIED for _, d, _ in handled), handled


def asks_again(ours: EmailMessage, n: int, *, when) -> bytes:  # type: ignore[no-untyped-def]
    """A robot that answers every email with the same request in its own words: each one a real change."""
    msg = EmailMessage()
    msg["Authentication-Results"] = PASS
    msg["From"] = f"Dana Whitfield <{DANA}>"
    msg["To"] = SELLER
    msg["Subject"] = f"RE: {ours['Subject']}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<asks.{n}@acme.example>"
    msg["In-Reply-To"] = str(ours["Message-ID"])
    msg["References"] = str(ours["Message-ID"])
    msg.set_content("Hello,\n\nPlease push the pilot back by one week.\n\nRegards")
    return bytes(msg)


def test_an_echo_is_recognized_as_one(box: Loop) -> None:
    first_change(box)
    handled = run_robot(box, 3, quoted=False)
    # Version 1's email and version 2's, each sent back once: nothing new in either.
    assert [d for _, d, _ in handled] == [policy.IGNORED] * 2, handled
    assert all("an echo of our own email" in r for _, _, r in handled)


def test_replies_sent_at_once_in_a_row_stop_the_thread_and_the_seller_is_told(box: Loop) -> None:
    first_change(box)  # version 2, from a reply: the first of the run
    answered = {"<plan.acme-northwind-2027.v1@northwind.example>"}  # answered by Dana herself
    handled: list[tuple[str, str, str]] = []
    for _ in range(12):
        box.clock.advance(minutes=10)
        for mid, msg in box.emails("Sent").items():
            if mid not in answered and DANA in str(msg["To"]):
                answered.add(mid)
                box.deliver(asks_again(msg, len(answered), when=box.clock()))
        handled += box.poll().handled
    # Versions 2, 3 and 4 came from replies, sent at once within the hour: the next reply waits for the seller,
    # and with nothing new sent, the robot has nothing more to answer.
    assert versions(box) == 4, handled
    held = [(m, r) for m, d, r in handled if d == policy.HELD]
    assert len(held) == 1 and held[0][1].startswith("loop suspected: versions 2 to 4"), handled
    with box.store() as store:
        notices = [e for e in store.outbox_entries(PLAN_ID) if e.kind == "notice" and e.data.get("about") == "loop"]
    assert len(notices) == 1 and notices[0].to == (SELLER,)
    # The seller looks, and releases it: it is applied, and the run starts over from there.
    from click.testing import CliRunner

    from pipeline.cli import main

    result = CliRunner().invoke(main, ["--home", str(box.root), "release", held[0][0]])
    assert result.exit_code == 0, result.output
    assert versions(box) == 5


# --- three watchers at once -----------------------------------------------------------------------------

SELLER_PASS = "mx.northwind.example; dmarc=pass header.from=northwind.example"


def _watch(root: str, start: float, barrier) -> None:  # type: ignore[no-untyped-def]
    """One watcher, as `mutualplan watch --once` runs it: a poll, then reminders and the digest."""
    from datetime import UTC, datetime

    from pipeline.demo import SimulatedClock
    from pipeline.home import Home
    from pipeline.loop.service import Service

    barrier.wait()
    with Service.open(Home(Path(root)), SimulatedClock(datetime.fromtimestamp(start, UTC))) as watcher:
        report = watcher.poll()
        watcher.remind(report)


def test_three_watchers_at_once_send_each_email_to_the_seller_once(box: Loop) -> None:
    # The digest is due (a Tuesday, 14:00 in the seller's time zone), and three emails to the seller wait to be made.
    box.home.settings_path.write_text(SETTINGS + '\n[reminders]\ndigest = true\ndigest_day = "tuesday"\n',
                                      encoding="utf-8")
    box.clock.now = box.clock.now.replace(hour=14)
    question = EmailMessage()
    question["Authentication-Results"] = PASS
    question["From"] = f"Dana Whitfield <{DANA}>"
    question["To"] = SELLER
    question["Subject"] = "RE: Mutual Plan: Acme Corp and Northwind Analytics (version 1)"
    question["Date"] = format_datetime(box.clock())
    question["Message-ID"] = "<q.dana@acme.example>"
    question["In-Reply-To"] = "<plan.acme-northwind-2027.v1@northwind.example>"
    question["References"] = "<plan.acme-northwind-2027.v1@northwind.example>"
    question.set_content("Who from your side joins the pilot?")
    box.deliver(bytes(question))  # noted: a notice to the seller
    plan = EmailMessage()
    plan["Authentication-Results"] = SELLER_PASS
    plan["From"] = f"Jordan Lee <{SELLER}>"
    plan["To"] = "Pat Buyer <pat@globex.example>"
    plan["Subject"] = "[Mutual Plan] Globex: our plan"
    plan["Date"] = format_datetime(box.clock())
    plan["Message-ID"] = "<plan.typed@northwind.example>"
    plan.set_content("Target: someday\n\nNo timeline here.\n")
    box.deliver(bytes(plan))  # does not parse: the seller gets a note naming the line
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(3)
    workers = [context.Process(target=_watch, args=(str(box.root), box.clock().timestamp(), barrier))
               for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    to_seller = [m for m in box.emails("Sent").values() if str(m["To"]).endswith(f"<{SELLER}>") or
                 str(m["To"]) == SELLER]
    sent_ids = [str(m["Message-ID"]) for m in map(_parse, box.mail.messages("Sent"))]
    assert len(sent_ids) == len(set(sent_ids)), sent_ids  # nothing in Sent twice
    outbox_files = sorted(p.name for p in (box.root / "outbox").glob("*.eml"))
    assert len(outbox_files) == len(set(outbox_files))
    kinds = sorted(_kind(m) for m in to_seller)
    assert kinds == ["digest", "notice", "plan_error"], kinds


def _parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def _kind(msg: EmailMessage) -> str:
    """What an email to the seller is, by its Message-ID (the outbox names each kind in it)."""
    mid = str(msg["Message-ID"])
    for kind in ("digest", "notice", "plan_error", "not-a-plan", "error"):
        if kind.replace("_", "") in mid.replace("_", "").replace("-", ""):
            return kind
    return mid
