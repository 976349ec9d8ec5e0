"""What the prospect is sent is the newest version, described against the last version they received."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from pipeline.home import init_home
from pipeline.loop.parts import Parts, settings_of
from pipeline.loop.service import Reason, Service, make_version
from pipeline.mailbox.memory import MemoryMailbox
from pipeline.plan.model import Change
from pipeline.spool import Spool
from tests.loop_support import DANA, PLAN_ID, RAJ, SELLER, START, SUBJECT, V1, Clock, example_plan, reply, settings_toml


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """Version 1 of the example sent (a real letter and email) from a memory mailbox, under the review policy."""
    home = init_home(tmp_path / "home")
    home.settings_path.write_text(settings_toml(), encoding="utf-8")
    clock = Clock(START)
    parts = Parts(store=home.open_store(), archive=home.open_archive(), spool=Spool(home.spool_dir),
                  settings=settings_of(home), clock=clock, mailbox=MemoryMailbox())
    make_version(parts.store, example_plan(), author=SELLER, reason=Reason.CREATED, created=clock())
    made = Service(parts)
    made.send_plan(PLAN_ID)
    clock.advance(hours=2)
    try:
        yield made
    finally:
        parts.close()


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return " ".join(body.get_content().split())


def box(service: Service) -> MemoryMailbox:
    mailbox = service.parts.mailbox
    assert isinstance(mailbox, MemoryMailbox)
    return mailbox


def test_two_requests_before_the_seller_reviews_are_both_told_against_version_1(service: Service) -> None:
    clock = service.parts.clock
    box(service).deliver(reply(DANA, "Please move the pilot to March 8.", message_id="<a1@acme.example>",
                               when=clock()))
    service.poll()
    clock.advance(hours=1)  # type: ignore[attr-defined]
    box(service).deliver(reply(RAJ, "Please move the legal review to March 24.", message_id="<a2@acme.example>",
                               when=clock(), references=[V1]))
    service.poll()
    entries = {e.version: e for e in service.store.outbox_entries(PLAN_ID) if e.kind == "update"}
    # Version 3 is told against version 1, the last one the prospect received: version 2 never left Drafts.
    assert entries[3].data["since"] == 1
    [v3] = [m for m in box(service).drafts if str(m["Message-ID"]).startswith("<plan.acme-northwind-2027.v3@")]
    text = text_of(v3)
    assert "what changed since version 1" in text
    assert "Pilot on Q4 data, from Mon 1 Mar 2027 to Mon 8 Mar 2027" in text
    assert "Legal review of the MSA, from Wed 17 Mar 2027 to Wed 24 Mar 2027" in text
    assert v3["Subject"] == f"Re: {SUBJECT}"


def test_a_later_version_sent_by_the_seller_is_an_update_against_the_version_the_prospect_has(
    service: Service,
) -> None:
    applied = service.apply_changes(PLAN_ID, [Change(op="move", milestone="M3", due="2027-03-08")])
    assert applied.version is not None and applied.version.number == 2
    entry, report = service.send_plan(PLAN_ID)
    assert report.errors == [] and entry.kind == "update" and entry.data["since"] == 1
    sent = box(service).sent[-1]
    assert str(sent["Message-ID"]) == "<plan.acme-northwind-2027.v2@northwind.example>"
    assert sent["Subject"] == f"Re: {SUBJECT}" and sent["In-Reply-To"] == V1
    text = text_of(sent)
    assert "I have updated our Mutual Plan. Here is version 2" in text and "since version 1" in text
    assert "Attached is our Mutual Plan, version 2" not in text


def _agree(service: Service) -> None:
    """Dana and Raj confirm the current version, by email."""
    clock = service.parts.clock
    current = service.store.current(PLAN_ID)
    assert current is not None
    for n, who in enumerate((DANA, RAJ)):
        box(service).deliver(reply(who, "Confirmed.", message_id=f"<ok{current.number}.{n}@acme.example>",
                                   when=clock(), subject=SUBJECT))
    report = service.poll()
    assert [d for _, d, _ in report.handled] == ["confirmed", "agreed"], report.handled


def test_progress_after_agreement_keeps_it_and_a_changed_date_reopens_it(service: Service) -> None:
    _agree(service)
    today = service.parts.clock().date()
    assert service.status(PLAN_ID, today)["summary"] == "mutually agreed on version 1"
    # The seller marks a step done: progress on what was agreed, which needs nobody's confirmation.
    done = service.mark_done(PLAN_ID, "M1", author=SELLER)
    status = service.status(PLAN_ID, today)
    assert (done.number, status["state"], status["agreed_version"]) == (2, "agreed", 1)
    assert status["summary"].startswith("mutually agreed on version 1; version 2 records progress")
    # A new date is a new plan: it waits on both confirming contacts again, and status says so.
    service.apply_changes(PLAN_ID, [Change(op="move", milestone="M3", due="2027-03-08")])
    status = service.status(PLAN_ID, today)
    assert status["state"] == "open"
    assert status["summary"].startswith("version 3 changes what was agreed on version 1: version 3 not sent yet")
    service.send_plan(PLAN_ID)
    status = service.status(PLAN_ID, today)
    assert status["waiting_on"] == [DANA, RAJ]
    assert f"waiting on {DANA}, {RAJ} to confirm again" in status["summary"]


def test_agreement_marks_the_plan_s_own_step_of_agreement_done(tmp_path: Path) -> None:
    from dataclasses import replace

    from pipeline.plan.model import Milestone, with_milestones

    home = init_home(tmp_path / "home")
    home.settings_path.write_text(settings_toml(), encoding="utf-8")
    clock = Clock(START)
    plan = example_plan()
    step = Milestone(id="M8", title="Mutually agreed plan with timeline", owner="Joint", due="T-50d")
    plan = with_milestones(plan, (step, *plan.milestones))
    plan = replace(plan, next_number=9)
    with Service.open(home, clock, mailbox=MemoryMailbox()) as service:
        make_version(service.store, plan, author=SELLER, reason=Reason.CREATED, created=clock())
        service.send_plan(PLAN_ID)
        clock.advance(hours=2)
        _agree(service)
        current = service.store.current(PLAN_ID)
        assert current is not None and current.number == 2 and current.reason == Reason.AGREEMENT
        assert current.plan.milestone("M8").status == "done"  # type: ignore[union-attr]
        status = service.status(PLAN_ID, clock().date())
        assert (status["state"], status["agreed_version"]) == ("agreed", 1)
        # The 'agreed' email carries the version everyone confirmed.
        agreed = box(service).sent[-1]
        assert str(agreed["Message-ID"]) == "<plan.acme-northwind-2027.v1.agreed@northwind.example>"


def test_a_newer_version_takes_the_waiting_draft_out_of_drafts_and_approve_sends_only_it(service: Service) -> None:
    clock = service.parts.clock
    box(service).deliver(reply(DANA, "Please move the pilot to March 8.", message_id="<s1@acme.example>",
                               when=clock()))
    first = service.poll()
    assert first.drafted == ["<plan.acme-northwind-2027.v2@northwind.example>"]
    clock.advance(hours=1)  # type: ignore[attr-defined]
    box(service).deliver(reply(RAJ, "Please move the legal review to March 24.", message_id="<s2@acme.example>",
                               when=clock()))
    second = service.poll()
    v2, v3 = (f"<plan.acme-northwind-2027.v{n}@northwind.example>" for n in (2, 3))
    assert second.withdrawn == [v2] and second.drafted == [v3]
    assert [str(m["Message-ID"]) for m in box(service).drafts] == [v3]  # the stale draft is gone from Drafts
    assert service.store.outbox_entry(v2).state == "superseded"  # type: ignore[union-attr]
    sent = service.approve(PLAN_ID)
    assert sent == [v3]
    assert [str(m["Message-ID"]) for m in box(service).sent][-1] == v3
    assert v2 not in [str(m["Message-ID"]) for m in box(service).sent]


def test_a_draft_the_seller_sent_before_the_newer_version_is_recorded_as_sent(service: Service) -> None:
    clock = service.parts.clock
    box(service).deliver(reply(DANA, "Please move the pilot to March 8.", message_id="<t1@acme.example>",
                               when=clock()))
    service.poll()
    v2 = "<plan.acme-northwind-2027.v2@northwind.example>"
    # The seller sends the draft from their mail client ...
    [draft] = box(service).drafts
    box(service).send(draft)
    clock.advance(hours=1)  # type: ignore[attr-defined]
    box(service).deliver(reply(RAJ, "Please move the legal review to March 24.", message_id="<t2@acme.example>",
                               when=clock()))
    service.poll()
    # ... so the prospect has version 2, and version 3 is told against it.
    assert service.store.outbox_entry(v2).state == "sent"  # type: ignore[union-attr]
    v3 = next(e for e in service.store.outbox_entries(PLAN_ID) if e.version == 3 and e.kind == "update")
    assert v3.data["since"] == 2
