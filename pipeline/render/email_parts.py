"""What every email about a plan version shares: its Message-ID and subject, who it goes to, the templates'
context, the letter and calendar attached, and the message from the seller with our marks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.errors import RenderError
from pipeline.plan import ids
from pipeline.plan.model import Contact, Plan
from pipeline.render.format import (
    days_phrase,
    days_to_target,
    letter_date,
    long_date,
    short_date,
    timeline_lines,
    timeline_rows,
)
from pipeline.render.ics import calendar
from pipeline.render.mime import assemble, email_address


def attachment_name(plan: Plan, version: int, suffix: str) -> str:
    """`Mutual Plan acme-northwind-2027 v1.pdf`: readable in a mail client, safe on every file system."""
    return f"Mutual Plan {re.sub(r'[^A-Za-z0-9._-]+', '-', plan.id)} v{version}{suffix}"


def _people(plan: Plan, emails: Sequence[str]) -> list[Address]:
    # Bare addresses get their contact's name, when the plan knows it.
    out = []
    for addr in emails:
        contact = plan.contact(addr)
        name = contact.name if contact else (plan.seller.name if addr.lower() == plan.seller.email.lower() else "")
        out.append(email_address(name, addr))
    return out


def _seller(plan: Plan) -> Address:
    if not plan.seller.email:
        raise RenderError(
            f"the plan's seller {plan.seller.company!r} has no email address to send from",
            hint="add seller.email to the plan's front matter or the settings",
        )
    return email_address(plan.seller.name, plan.seller.email)


def recipients(plan: Plan, to: Sequence[str] | None, cc: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The To and Cc addresses of an email to the buyer; `to`/`cc` given are kept as they are."""
    # By default the confirming contacts (else the first contact) in To, every other contact in Cc.
    default_to = [c.email for c in plan.confirmers] or [c.email for c in plan.prospect.contacts[:1]]
    to = default_to if to is None else list(to)
    if cc is None:
        cc = [c.email for c in plan.prospect.contacts if c.email.lower() not in {t.lower() for t in to}]
    return list(to), list(cc)


def _first_names(contacts: Sequence[Contact]) -> str:
    names = [c.name.split()[0] for c in contacts if c.name.split()]
    return ", ".join(names)


def email_context(plan: Plan, version: int, created: datetime, to: Sequence[str] = ()) -> dict[str, Any]:
    """What every email template of a version is given: the plan, its dates, its timeline, whom it greets."""
    today = letter_date(plan, created)
    rows = timeline_rows(plan)
    days = days_to_target(plan, today)
    greeted = [plan.contact(e) for e in to]
    return {
        "plan": plan,
        "seller": plan.seller,
        "prospect": plan.prospect,
        "version": version,
        "today": today,
        "letter_date": long_date(today),
        "target": plan.target,
        "target_text": long_date(plan.target) if plan.target else "",
        "days_left": days,
        "days_phrase": days_phrase(days),
        "rows": rows,
        "before_rows": [r for r in rows if r.phase != "after"],
        "after_rows": [r for r in rows if r.phase == "after"],
        "after_heading": plan.after_heading,
        "lines": timeline_lines(plan, rows),
        "confirmers": list(plan.confirmers),
        "greeting_names": _first_names([c for c in greeted if c]) or f"{plan.prospect.company} team",
        "short_date": short_date,
        "long_date": long_date,
    }


def _zone(plan: Plan) -> ZoneInfo:
    try:
        return ZoneInfo(plan.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def plan_message(
    plan: Plan,
    *,
    kind: str,
    version: int,
    created: datetime,
    subject_line: str,
    text: str,
    html: str,
    to: Sequence[str],
    cc: Sequence[str],
    msg_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
    auto: bool,
    attachments: Sequence[tuple[bytes, str, str, str, dict[str, str]]],
) -> EmailMessage:
    """The email from the seller to `to` and `cc`, marked as ours for the plan's version, in the plan's time zone."""
    msg = EmailMessage()
    msg["From"] = _seller(plan)
    if to:
        msg["To"] = _people(plan, to)
    if cc:
        msg["Cc"] = _people(plan, cc)
    return assemble(
        msg, subject_line=subject_line, created=created.astimezone(_zone(plan)), msg_id=msg_id,
        in_reply_to=in_reply_to, references=references, mark=ids.plan_mark(plan, version), auto=auto,
        text=text, html=html, attachments=attachments,
    )


def _pdf(plan: Plan, version: int, pdf: bytes | None) -> list[tuple[bytes, str, str, str, dict[str, str]]]:
    if pdf is None:
        return []
    if not pdf.startswith(b"%PDF-"):
        raise RenderError("the letter to attach is not a PDF", hint="pass render_letter(...).pdf")
    return [(pdf, "application", "pdf", attachment_name(plan, version, ".pdf"), {})]


def _ics(plan: Plan, version: int, created: datetime) -> list[tuple[bytes, str, str, str, dict[str, str]]]:
    if not any(r.due for r in timeline_rows(plan)):
        return []
    data = calendar(plan, version=version, created=created)
    return [(data, "text", "calendar", attachment_name(plan, version, ".ics"), {"method": "PUBLISH"})]


def version_attachments(
    plan: Plan, version: int, created: datetime, pdf: bytes | None
) -> list[tuple[bytes, str, str, str, dict[str, str]]]:
    """What a version's email carries: the letter (when given) and the .ics (when a step has a date)."""
    return [*_pdf(plan, version, pdf), *_ics(plan, version, created)]
