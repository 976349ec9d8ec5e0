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
