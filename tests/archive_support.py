"""What the archive tests share: a home's store and archive holding a plan through three versions."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from pypdf import PdfReader
from weasyprint import HTML, Attachment

from pipeline.archive import Archive
from pipeline.plan.model import (
    Change,
    Contact,
    Milestone,
    Plan,
    Prospect,
    Section,
    Seller,
    Version,
    canonical_json,
)
from pipeline.store import Store

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
PLAN_ID = "acme-northwind-2027"


def make_plan(pilot_due: str, *, extra: tuple[Milestone, ...] = ()) -> Plan:
    return Plan(
        id=PLAN_ID,
        seller=Seller("Northwind Analytics", "Jordan Lee", "Account Executive", "jordan.lee@northwind.example"),
        prospect=Prospect(
            "Acme Corp",
            contacts=(Contact("Dana Whitfield", "dana.whitfield@acme.example", "VP Operations", "champion", True),),
        ),
        target=date(2027, 3, 31),
        sections=(Section("Call to action", "cta", "Dana to confirm the pilot data set by Friday."),),
        milestones=(
            Milestone("M1", "Discovery workshop", "Joint", "T-60d"),
            Milestone("M2", "Pilot on Q4 data", "Acme (Dana)", pilot_due),
            *extra,
        ),
        next_number=3 + len(extra),
    )


def pdf(title: str, plan: Plan | None = None) -> bytes:
    """A small real PDF with `title` on it, carrying `plan` as its plan.json the way letters do."""
    attachments = [Attachment(string=canonical_json(plan).encode(), name="plan.json")] if plan else []
    return HTML(string=f"<h1>{title}</h1><p>Acme Corp and Northwind Analytics</p>").write_pdf(attachments=attachments)


def pdf_text(data: bytes) -> str:
    # Words only: where the PDF wraps a line is the layout's business.
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


def eml(sender: str, to: str, subject: str, message_id: str, body: str, in_reply_to: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Mon, 04 Jan 2027 09:00:00 +0000"
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
    msg.set_content(body)
    return msg.as_bytes()


PLANS = (
    make_plan("T-30d"),
    make_plan("2027-03-03"),
    make_plan("2027-03-03", extra=(Milestone("M3", "Security review", "Acme", "T-14d"),)),
)


@pytest.fixture(scope="module")
def letters() -> dict[str, bytes]:
    return {
        "v1": pdf("Mutual Plan, version 1", PLANS[0]),
        "v2": pdf("Mutual Plan, version 2", PLANS[1]),
        "v3": pdf("Mutual Plan, version 3", PLANS[2]),
        "redline2": pdf("Changes since version 1"),
    }


class Filled:
    """A home's store and archive holding a plan through three versions, with letters and emails."""

    def __init__(self, root: Path, letters: dict[str, bytes]) -> None:
        root.mkdir()
        self.store = Store.open(f"sqlite:///{root / 'mutualplan.db'}")
        self.archive = Archive(root / "archive")
        self.plans = list(PLANS)
        self.out_mail = eml("jordan.lee@northwind.example", "dana.whitfield@acme.example",
                            f"Mutual Plan [{PLAN_ID}] v1", "<plan-v1@northwind.example>", "Please find our plan.")
        self.in_mail = eml("dana.whitfield@acme.example", "jordan.lee@northwind.example",
                           f"Re: Mutual Plan [{PLAN_ID}] v1", "<r1@acme.example>",
                           "Looks good, but please move the pilot to March 3.", "<plan-v1@northwind.example>")
        keep = self.archive.keep
        s = self.store
        s.add_version(self.plans[0], author="jordan.lee@northwind.example", reason="created", created=T0)
        keep(s, letters["v1"], plan_id=PLAN_ID, kind="letter", version=1, at=T0)
        keep(s, self.out_mail, plan_id=PLAN_ID, kind="out", version=1, message_id="<plan-v1@northwind.example>",
             at=T0 + timedelta(minutes=1))
        keep(s, self.in_mail, plan_id=PLAN_ID, kind="in", version=1, message_id="<r1@acme.example>",
             at=T0 + timedelta(days=1))
        s.add_version(self.plans[1], author="dana.whitfield@acme.example", reason="reply",
                      changes=(Change(op="move", milestone="M2", due="2027-03-03"),),
                      message_id="<r1@acme.example>", created=T0 + timedelta(days=1, minutes=1))
        keep(s, letters["v2"], plan_id=PLAN_ID, kind="letter", version=2, at=T0 + timedelta(days=1, minutes=2))
        keep(s, letters["redline2"], plan_id=PLAN_ID, kind="redline", version=2, at=T0 + timedelta(days=1, minutes=2))
        s.add_version(self.plans[2], author="jordan.lee@northwind.example", reason="seller edit",
                      changes=(Change(op="add", title="Security review", owner="buyer", due=None),),
                      created=T0 + timedelta(days=2))
        keep(s, letters["v3"], plan_id=PLAN_ID, kind="letter", version=3, at=T0 + timedelta(days=2, minutes=1))

    def name(self, n: int, what: str) -> str:
        """A version's file in the bundle: name(2, "letter.pdf"), name(2, "plan.json"), name(2, "redline")."""
        if what == "redline":
            what = f"redline-from-v{n - 1:03d}.pdf"
        return f"versions/v{n:03d}-{what}"


@pytest.fixture
def filled(tmp_path: Path, letters: dict[str, bytes]) -> Iterator[Filled]:
    made = Filled(tmp_path / "home", letters)
    yield made
    made.store.close()


def redline_pdf(older: Version, newer: Version) -> bytes:
    """What the letter renderer's redline function gives: a real PDF of the step."""
    return pdf(f"Changes since version {older.number} in version {newer.number}")


