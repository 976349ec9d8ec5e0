"""The receive path's steps and the delivery loop, one at a time, over the in-memory mailbox and a real SQLite file.

The whole loop over real mailboxes is tested in test_watcher_*.py and test_crash.py; here each step is held to
the effects it returns, so a step that answers the wrong messages fails here first, by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from pipeline.errors import RenderError
from pipeline.home import init_home
from pipeline.loop import act, deliver, outbox, policy, receive
from pipeline.loop.parts import Parts, PollReport, settings_of
from pipeline.loop.service import Reason, Service, make_version, queue_plan
from pipeline.mailbox.memory import MemoryMailbox
from pipeline.spool import Spool
from tests.loop_support import (
    DANA,
    PLAN_ID,
    RAJ,
    SELLER,
    START,
    V1,
    Clock,
    example_plan,
    reply,
    settings_toml,
    text_body,
)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    """Version 1 of the example, its plan email marked sent (no letter rendered), a memory mailbox."""
    home = init_home(tmp_path / "home")
    home.settings_path.write_text(settings_toml(), encoding="utf-8")
    clock = Clock(START)
    made = Parts(store=home.open_store(), archive=home.open_archive(), spool=Spool(home.spool_dir),
                 settings=settings_of(home), clock=clock, mailbox=MemoryMailbox())
    plan = example_plan()
    make_version(made.store, plan, author=SELLER, reason=Reason.CREATED, created=clock())
    entry = queue_plan(made.store, PLAN_ID, at=clock())
    made.store.outbox_mark(entry.message_id, "sent", at=clock())
    clock.advance(hours=2)
    try:
        yield made
    finally:
        made.close()


def received(parts: Parts, raw: bytes) -> receive.Received:
    return receive.Received.read(raw, parts.clock(), own_domains=parts.settings.own_domains,
                                 limit=parts.settings.policy.max_message_bytes)


def step(parts: Parts, raw: bytes) -> tuple[str, act.Effects]:
    """The name of the step that answers, and its effects."""
    msg = received(parts, raw)
    for each in receive.STEPS:
        effects = each(parts, msg)
        if effects is not None:
            return each.__name__, effects
    raise AssertionError("no step answered")


def other_mail(sender: str, subject: str, message_id: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, SELLER, subject
    msg["Date"], msg["Message-ID"] = format_datetime(START), message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("Hello.\n")
    return bytes(msg)


def test_a_confirmation_is_answered_by_the_reply_step_and_commits_once(parts: Parts) -> None:
    raw = reply(DANA, "Confirmed.", message_id="<c1@acme.example>", when=parts.clock())
    name, effects = step(parts, raw)
    assert name == "_reply" and effects.confirm is not None and effects.confirm.number == 1
    outcome = act.commit(parts, received(parts, raw), effects)
    assert (outcome.disposition, outcome.plan_id, outcome.version) == (policy.CONFIRMED, PLAN_ID, 1)
    assert set(parts.store.confirmations(PLAN_ID, 1)) == {DANA}
    # The same bytes again: the duplicate step answers first, with nothing to commit.
    name, again = step(parts, raw)
    assert name == "duplicate" and not again.record and again.outcome.first == policy.CONFIRMED
    # Committing the first effects a second time (another watcher's race) is refused, not applied twice.
    with pytest.raises(act.Handled):
        act.commit(parts, received(parts, raw), effects)


def test_a_change_becomes_the_next_version_and_its_follow_up_waits_in_drafts(parts: Parts) -> None:
    raw = reply(DANA, "Please move the pilot to March 8.", message_id="<m1@acme.example>", when=parts.clock())
    name, effects = step(parts, raw)
    assert name == "_reply" and effects.version is not None
    assert [c.op for c in effects.version.changes] == ["move"] and effects.version.mode == "draft"
    outcome = act.commit(parts, received(parts, raw), effects)
    assert (outcome.disposition, outcome.version) == (policy.APPLIED, 2)
    assert parts.store.current(PLAN_ID).reason == Reason.REPLY  # type: ignore[union-attr]
    [update] = [e for e in parts.store.outbox_entries(PLAN_ID) if e.kind == "update"]
    assert (update.version, update.mode, update.in_reply_to) == (2, "draft", "<m1@acme.example>")


def test_a_sender_outside_the_plan_is_held_with_a_note_to_the_seller(parts: Parts) -> None:
    raw = reply("eve@elsewhere.example", "Confirmed.", message_id="<e1@x.example>", when=parts.clock())
    name, effects = step(parts, raw)
    assert name == "_reply" and effects.outcome.disposition == policy.HELD and effects.confirm is None
    assert effects.notice is not None and effects.notice.about == "outsider"


def test_an_out_of_office_in_the_thread_is_ignored_and_one_elsewhere_left_alone(parts: Parts) -> None:
    ours = reply(RAJ, "I am out of the office until Monday.", message_id="<o1@acme.example>", when=parts.clock(),
                 headers={"Auto-Submitted": "auto-replied"})
    assert step(parts, ours)[0] == "automatic" and step(parts, ours)[1].outcome.disposition == policy.IGNORED
    theirs = other_mail(RAJ, "Automatic reply: lunch", "<o2@acme.example>", Auto_Submitted="auto-replied")
    name, effects = step(parts, theirs)
    assert name == "automatic" and effects.outcome.disposition == policy.UNRELATED and not effects.keep


def test_mail_about_none_of_our_plans_is_unrelated_and_not_kept(parts: Parts) -> None:
    name, effects = step(parts, other_mail("friend@example.org", "Lunch on Friday?", "<l1@example.org>"))
    assert name == "unmatched" and effects.outcome.disposition == policy.UNRELATED and not effects.keep


def test_a_message_over_the_size_limit_is_refused_unread(parts: Parts) -> None:
    parts.settings = replace(parts.settings, policy=replace(parts.settings.policy, max_message_bytes=2000))
    raw = reply(DANA, "Confirmed.\n" + "x" * 3000, message_id="<big@acme.example>", when=parts.clock())
    name, effects = step(parts, raw)
    assert name == "too_large" and effects.outcome.disposition == policy.REJECTED and not effects.keep
    assert effects.notice is not None and effects.notice.about == "rejected"


def test_a_sender_over_the_hourly_limit_is_throttled(parts: Parts) -> None:
    parts.settings = replace(parts.settings, policy=replace(parts.settings.policy,
                                                             max_messages_per_sender_per_hour=2))
    for n in range(2):
        raw = reply(DANA, "A question about the pilot?", message_id=f"<q{n}@acme.example>", when=parts.clock())
        act.commit(parts, received(parts, raw), step(parts, raw)[1])
    raw = reply(DANA, "Confirmed.", message_id="<q9@acme.example>", when=parts.clock())
    name, effects = step(parts, raw)
    assert name == "throttle" and effects.outcome.disposition == policy.HELD and effects.confirm is None


def test_a_bounce_of_our_email_is_recorded_against_it_and_never_answered(parts: Parts) -> None:
    raw = (b"From: MAILER-DAEMON@mx.acme.example\r\nTo: " + SELLER.encode() + b"\r\n"
           b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.acme.example>\r\n"
           b"Date: Mon, 11 Jan 2027 19:00:00 +0000\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
           b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.example\r\n\r\n"
           b"Final-Recipient: rfc822; kim.osei@acme.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
           b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: " + V1.encode() + b"\r\n\r\n--b--\r\n")
    name, effects = step(parts, raw)
    assert name == "bounce" and effects.outcome.disposition == policy.IGNORED
    assert (effects.outcome.plan_id, effects.outcome.version) == (PLAN_ID, 1)
    assert [event for event, _ in effects.audit] == ["email.bounced"]


# --- the delivery loop ------------------------------------------------------------------------------------


def _notice(parts: Parts, key: str) -> str:
    """Queue a note to the seller (a small email with no letter) and return its Message-ID."""
    current = parts.store.current(PLAN_ID)
    assert current is not None
    raw = reply(DANA, "A question.", message_id=key, when=parts.clock())
    entry = outbox.notice(current.plan, 1, received(parts, raw).incoming, kind="notice", reason="a question",
                          notes=[])
    parts.store.queue_email(entry, at=parts.clock())
    return entry.message_id


def test_a_transient_send_failure_keeps_the_email_queued_and_a_lasting_one_marks_it_failed(parts: Parts) -> None:
    box = parts.mailbox
    assert isinstance(box, MemoryMailbox)
    first = _notice(parts, "<n1@acme.example>")
    box.fail_next("send", transient=True)
    report = PollReport()
    deliver.flush(parts, report, drafts=False)
    assert parts.store.outbox_entry(first).state == "sending" and report.errors  # type: ignore[union-attr]
    box.fail_next("send", transient=False)
    deliver.flush(parts, PollReport(), drafts=False)
    entry = parts.store.outbox_entry(first)
    assert entry is not None and entry.state == "failed" and "told to fail send" in (entry.error or "")
    # Only the seller's word that it failed went out.
    assert [str(m["Subject"]) for m in box.sent] == ["Not sent (acme-northwind-2027): a notice to you"]


def test_an_email_that_cannot_be_rendered_fails_alone_and_the_rest_go_out(parts: Parts,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    broken, fine = _notice(parts, "<n2@acme.example>"), _notice(parts, "<n3@acme.example>")
    real = deliver.compose.compose

    def compose(entry, *args, **kwargs):  # type: ignore[no-untyped-def]  # the real signature, passed through
        if entry.message_id == broken:
            raise RenderError("the template is broken")
        return real(entry, *args, **kwargs)

    monkeypatch.setattr(deliver.compose, "compose", compose)
    report = PollReport()
    deliver.flush(parts, report, drafts=False)
    assert report.sent[0] == fine and len(report.sent) == 2  # the second: the seller told it failed
    assert parts.store.outbox_entry(broken).state == "failed"  # type: ignore[union-attr]
    assert any("the template is broken" in e for e in report.errors)


def test_the_service_sends_what_a_poll_queued_through_the_same_mailbox(parts: Parts) -> None:
    box = parts.mailbox
    assert isinstance(box, MemoryMailbox)
    box.deliver(reply(DANA, "Confirmed.", message_id="<c5@acme.example>", when=parts.clock()))
    box.deliver(reply(RAJ, "Confirmed.", message_id="<c6@acme.example>", when=parts.clock() + timedelta(minutes=1)))
    report = Service(parts).poll()
    assert [d for _, d, _ in report.handled] == [policy.CONFIRMED, policy.AGREED]
    assert [str(m["Message-ID"]) for m in box.sent] == ["<plan.acme-northwind-2027.v1.agreed@northwind.example>"]
    assert set(box.filed.values()) == {"Processed"}


def test_a_bug_in_one_email_fails_it_alone_and_tells_the_seller_once(parts: Parts,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    broken, fine = _notice(parts, "<n7@acme.example>"), _notice(parts, "<n8@acme.example>")
    real = deliver.compose.compose

    def compose(entry, *args, **kwargs):  # type: ignore[no-untyped-def]  # the real signature, passed through
        if entry.message_id == broken:
            raise KeyError("a template's typo")  # not a PipelineError: a bug
        return real(entry, *args, **kwargs)

    monkeypatch.setattr(deliver.compose, "compose", compose)
    report = PollReport()
    deliver.flush(parts, report, drafts=False)
    failed = parts.store.outbox_entry(broken)
    assert failed is not None and failed.state == "failed" and "KeyError" in (failed.error or "")
    box = parts.mailbox
    assert isinstance(box, MemoryMailbox)
    told = [m for m in box.sent if str(m["Subject"]).startswith("Not sent (acme-northwind-2027)")]
    assert [str(m["Message-ID"]) for m in box.sent if m not in told] == [fine]
    assert len(told) == 1 and broken in text_body(told[0]) and "KeyError" in text_body(told[0])
    # Failed for good: the next flush neither retries it nor tells the seller again.
    deliver.flush(parts, PollReport(), drafts=False)
    assert len(box.sent) == 2
