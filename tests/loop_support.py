"""What the watcher loop tests share: the example plan's people, a settable clock, replies as clients write them."""

from __future__ import annotations

import email
import email.policy
import io
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from pypdf import PdfReader

from pipeline.demo import SimulatedClock as Clock  # noqa: F401 - re-exported as the loop tests' clock
from pipeline.plan.model import Plan
from pipeline.plan.source import parse_plan
from pipeline.render.templates import default_templates as templates_dir

PLAN_ID = "acme-northwind-2027"
SELLER = "jordan.lee@northwind.example"
DANA = "dana.whitfield@acme.example"
RAJ = "raj.patel@acme.example"
KIM = "kim.osei@acme.example"
NAMES = {SELLER: "Jordan Lee", DANA: "Dana Whitfield", RAJ: "Raj Patel", KIM: "Kim Osei"}
# Our Message-IDs, written out by hand from the scheme <plan.<id>.v<N>[.<kind>]@<seller's domain>>.
V1 = "<plan.acme-northwind-2027.v1@northwind.example>"
V2 = "<plan.acme-northwind-2027.v2@northwind.example>"
V3 = "<plan.acme-northwind-2027.v3@northwind.example>"
# The one subject of the plan's thread (no version: a changing subject splits a conversation in mail clients).
SUBJECT = "Mutual Plan: Acme and Northwind Analytics"
# The subjects of an older release, which named the version: replies in such threads still find their plan.
SUBJECT_V1 = "Mutual Plan: Acme Corp and Northwind Analytics (version 1)"
SUBJECT_V2 = "Mutual Plan: Acme Corp and Northwind Analytics (version 2)"
START = datetime(2027, 1, 11, 17, 2, tzinfo=UTC)  # Mon 11 Jan 2027, 9:02 in Portland


def example_plan() -> Plan:
    """The shipped example plan (Acme and Northwind): M3 the pilot on 1 Mar 2027, M5 legal on 17 Mar."""
    return parse_plan((templates_dir() / "plans" / "example.md").read_text(encoding="utf-8"), file="example.md")


def settings_toml(changes: str = "review", mailbox: str = 'backend = "maildir"') -> str:
    """A home's mutualplan.toml for the example's seller."""
    return f"""\
[seller]
company = "Northwind Analytics"
name = "Jordan Lee"
title = "Account Executive"
email = "{SELLER}"

[mailbox]
{mailbox}

[policy]
changes = "{changes}"
# Our server stamps each reply it receives (reply() below): with no server trusted, every change would wait.
trusted_authserv_ids = ["mx.northwind.example"]

[letter]
letterhead = "northwind"

# Reminders and the weekly digest have tests of their own; here they would only add mail to count.
[reminders]
enabled = false
digest = false
"""


def reply(
    sender: str,
    body: str,
    *,
    message_id: str,
    when: datetime,
    in_reply_to: str | None = V1,
    references: list[str] | None = None,
    subject: str = SUBJECT_V1,
    to: str = SELLER,
    headers: dict[str, str] | None = None,
    re: bool = True,
    authenticated: bool = True,
) -> bytes:
    """A plain-text reply as a mail client writes it: RE: subject, In-Reply-To, References, the quote below."""
    msg = EmailMessage()
    if authenticated and "Authentication-Results" not in (headers or {}):
        # The seller's server (trusted in settings_toml) found the sender's domain passing DMARC.
        msg["Authentication-Results"] = f"mx.northwind.example; dmarc=pass header.from={sender.rpartition('@')[2]}"
    name = NAMES.get(sender, sender.split("@")[0].title())
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = f"{NAMES.get(to, '')} <{to}>"
    msg["Subject"] = f"RE: {subject}" if in_reply_to and re else subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = " ".join(references if references is not None else [in_reply_to])
    for key, value in (headers or {}).items():
        msg[key] = value
    quote = "> Please reply \"Confirmed\" if this matches our understanding, or tell me what\n> should change.\n"
    msg.set_content(f"{body}\n\nOn Mon, Jan 11, 2027 at 9:02 AM Jordan Lee <{SELLER}> wrote:\n{quote}")
    return bytes(msg)


def parse(raw: bytes) -> EmailMessage:
    """Raw bytes as an EmailMessage (modern policy: headers decoded, parts walkable)."""
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def addresses(msg: EmailMessage, header: str) -> list[str]:
    """The bare addresses in a header, in order."""
    value = msg.get(header)
    return [a.addr_spec for a in value.addresses] if value is not None else []


def attachments(msg: EmailMessage) -> dict[str, tuple[str, bytes]]:
    """Attachment file name -> (content type, bytes)."""
    return {p.get_filename(): (p.get_content_type(), p.get_payload(decode=True)) for p in msg.iter_attachments()}


def text_body(msg: EmailMessage) -> str:
    """The plain-text body."""
    part = msg.get_body(("plain",))
    return part.get_content() if part is not None else ""


def pdf_text(data: bytes) -> str:
    """The text of a PDF, read back page by page."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
