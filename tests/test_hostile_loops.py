"""No loops: a robot on the prospect's side that answers each of our emails with our own words, and no
Auto-Submitted header to say it is a robot, never makes a version; and every email to the seller goes once, however
many watchers run at once."""

from __future__ import annotations

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
