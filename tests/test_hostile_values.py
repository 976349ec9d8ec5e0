"""Values that break what we write, through the whole watcher on the Maildir: line breaks in the names and subjects
we copy into headers, dates far out, emails that can never go, replies to versions we never sent, broken spool files.

Each must end with the seller told and the rest going on: never a traceback, never a poll that fails every time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.home import init_home
from pipeline.loop import deliver
from pipeline.loop.service import PollReport, Service, queue_plan
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.plan.model import Plan
from tests.loop_support import DANA, SELLER, START, V1, Clock, example_plan, parse, settings_toml

# Every character Python's str.splitlines() breaks a line at, and CR LF together.
BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


class Home1:
    """A home on the Maildir whose seller sends plans, and a clock."""

    def __init__(self, root: Path, changes: str = "auto") -> None:
        self.home = init_home(root)
        self.home.settings_path.write_text(settings_toml(changes), encoding="utf-8")
        self.clock = Clock(START)
        self.mail = MaildirMailbox(self.home.mail_dir)

    def add(self, plan: Plan) -> None:
        with Service.open(self.home, self.clock) as watcher:
            watcher.store.add_version(plan, author=SELLER, reason="created", created=self.clock())
            queue_plan(watcher.store, plan.id, at=self.clock())

    def poll(self, minutes: float = 5) -> PollReport:
        self.clock.advance(minutes=minutes)
        with Service.open(self.home, self.clock) as watcher:
            return watcher.poll()

    def sent(self) -> list[EmailMessage]:
        return [parse(raw) for raw in self.mail.messages("Sent")]


@pytest.fixture
def seller(tmp_path: Path) -> Iterator[Home1]:
    yield Home1(tmp_path / "home")


def _broken_plan(plan: Plan, sep: str) -> Plan:
    contacts = list(plan.prospect.contacts)
    contacts[0] = replace(contacts[0], name=f"Dana{sep}Whitfield")
    contacts[1] = replace(contacts[1], name=f"Raj{sep}{sep}Patel")
    prospect = replace(plan.prospect, company=f"Acme{sep}Corp", short_name=f"Ac{sep}me", contacts=tuple(contacts))
    return replace(plan, prospect=prospect)


def _reply(subject: str, body: str, message_id: str, when: datetime, in_reply_to: str = V1) -> bytes:
    """Dana's reply, its subject an RFC 2047 encoded word: the only way a line break can travel in one."""
    msg = EmailMessage()
    msg["Authentication-Results"] = "mx.northwind.example; dmarc=pass header.from=acme.example"  # settings_toml's
    msg["From"] = f"Dana Whitfield <{DANA}>"
    msg["To"] = SELLER
    msg["Subject"] = "SUBJECT"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = in_reply_to
    msg["References"] = in_reply_to
    msg.set_content(body)
    return bytes(msg).replace(b"SUBJECT", Header(subject, "utf-8").encode().encode(), 1)


@pytest.mark.parametrize("sep", BREAKS, ids=[f"U+{ord(s[-1]):04X}{'-crlf' if len(s) > 1 else ''}" for s in BREAKS])
def test_a_line_break_in_a_name_or_a_reply_subject_never_reaches_a_header(seller: Home1, sep: str) -> None:
    seller.add(_broken_plan(example_plan(), sep))
    first = seller.poll()
    assert first.errors == [] and first.sent == [V1]
    raw = _reply(f"Question{sep}about the pilot", "Please move the pilot to March 8.", "<q1@acme.example>",
                 seller.clock())
    seller.mail.deliver(raw)
    second = seller.poll()
    assert second.errors == [], second.errors
    assert "<plan.acme-northwind-2027.v2@northwind.example>" in second.sent
    for msg in seller.sent():
        for name in ("Subject", "To", "Cc"):
            value = str(msg.get(name, ""))
            assert len(value.splitlines()) <= 1 and sep.strip(" ") not in value, (name, value)
    subjects = [str(m["Subject"]) for m in seller.sent()]
    assert "Mutual Plan: Ac me and Northwind Analytics" in subjects
    assert "Re: Question about the pilot" in subjects
    assert "Dana Whitfield" in str(seller.sent()[0]["To"])
    # A poll after it, and another plan's email, go as usual.
    other = replace(example_plan(), id="other-2027")
    seller.add(other)
    third = seller.poll()
    assert third.errors == [] and third.sent == ["<plan.other-2027.v1@northwind.example>"]


def _cli(seller: Home1, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--home", str(seller.home.root), *args])
    return result.exit_code, result.output


def test_an_email_that_can_never_go_is_listed_and_cancelled(seller: Home1, monkeypatch: pytest.MonkeyPatch) -> None:
    seller.add(example_plan())
    real = deliver.compose.compose

    def compose(entry, *args, **kwargs):  # type: ignore[no-untyped-def]  # the real signature, passed through
        if entry.kind == "plan":
            raise AttributeError("'NoneType' object has no attribute 'name'")  # a bug, not a PipelineError
        return real(entry, *args, **kwargs)

    monkeypatch.setattr(deliver.compose, "compose", compose)
    report = seller.poll()
    assert report.sent and V1 not in report.sent  # the seller was told; the letter did not go
    code, out = _cli(seller, "outbox", "--json")
    assert code == 0, out
    rows = json.loads(out)["emails"]
    assert [(r["message_id"], r["state"], r["kind"], r["version"]) for r in rows] == [(V1, "failed", "plan", 1)]
    assert "AttributeError" in rows[0]["error"]
    code, out = _cli(seller, "outbox", "acme-northwind-2027")
    assert code == 0 and "failed" in out
    code, out = _cli(seller, "outbox", "cancel", V1)
    assert code == 0 and "cancelled" in out, out
    code, out = _cli(seller, "outbox", "--json")
    assert json.loads(out)["emails"] == []
    assert any(a.event == "email cancelled" for a in seller.home.open_store().audit_log("acme-northwind-2027"))
    # Cancelled already, or never queued: a clear error, exit 2.
    code, out = _cli(seller, "outbox", "cancel", V1)
    assert code == 2 and "cancelled" in out
    code, out = _cli(seller, "outbox", "cancel", "<nothing@northwind.example>")
    assert code == 2 and "no email" in out
