"""Emails to the seller that belong to no one plan: the answer to a plan email that did not parse, the weekly digest.

Built like the plan's emails (templates/email, text and HTML, deterministic Message-ID and MIME boundaries, the
same bytes for the same arguments), from the seller's address to the seller, marked Auto-Submitted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.errors import RenderError
from pipeline.plan import ids
from pipeline.render.format import long_date, parse_created, short_date
from pipeline.render.mime import assemble, email_address, render_bodies


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _message(
    *, kind: str, seller_name: str, seller_email: str, to: str, subject_line: str, text: str, html: str,
    created: datetime, timezone: str, msg_id: str, in_reply_to: str | None = None, references: Sequence[str] = (),
) -> EmailMessage:
    if not seller_email:
        raise RenderError("the seller has no email address to write from", hint="set [seller] email in the settings")
    msg = EmailMessage()
    msg["From"] = email_address(seller_name, seller_email)
    msg["To"] = email_address(seller_name if to.lower() == seller_email.lower() else "", to)
    return assemble(
        msg, subject_line=subject_line, created=created.astimezone(_zone(timezone)), msg_id=msg_id,
        in_reply_to=in_reply_to, references=references, mark=ids.seller_mark(kind), auto=True, text=text, html=html,
    )


def plan_error_email(
    *,
    seller_name: str,
    seller_email: str,
    to: str,
    created: datetime | str,
    subject: str,
    sent: str | None,
    reason: str,
    line: int | None,
    line_text: str,
    hint: str | None,
    recipients: Sequence[str],
    tag: str,
    message_id: str,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    timezone: str = "UTC",
    templates: Path | None = None,
) -> EmailMessage:
    """To the seller alone, in the thread of their plan email: which line failed, why, and how to write it."""
    created = parse_created(created)
    context = {
        "seller_name": seller_name, "subject": subject, "sent": sent or "", "reason": reason, "line": line,
        "line_text": line_text, "hint": hint or "", "recipients": list(recipients), "tag": tag,
    }  # fmt: skip
    text, html = render_bodies(templates, "plan_error", context)
    bare = ids.strip_reply_prefixes(subject or "")
    return _message(
        kind="plan_error", seller_name=seller_name, seller_email=seller_email, to=to,
        subject_line=f"Not a plan yet: {bare}" if bare else "Not a plan yet: your plan email",
        text=text, html=html, created=created, timezone=timezone, msg_id=message_id, in_reply_to=in_reply_to,
        references=references,
    )  # fmt: skip


def digest_email(
    *,
    seller_name: str,
    seller_email: str,
    created: datetime | str,
    week: str,
    sections: Mapping[str, Any],
    message_id: str,
    timezone: str = "UTC",
    templates: Path | None = None,
) -> EmailMessage:
    """The weekly digest: plans waiting on the prospect, overdue steps, slips that move a target, held messages,
    notices the daily cap held back, drafts to send."""
    created = parse_created(created)
    context = {"seller_name": seller_name, "week": week, "short_date": short_date, "long_date": long_date,
               **{k: sections.get(k, []) for k in ("waiting", "overdue", "slips", "held", "held_back", "drafts")}}
    text, html = render_bodies(templates, "digest", context)
    counts = [f"{len(context['waiting'])} waiting on the prospect", f"{len(context['overdue'])} overdue"]
    if context["held"]:
        counts.append(f"{len(context['held'])} held")
    if context["held_back"]:
        counts.append(f"{sum(int(h.get('count', 1)) for h in context['held_back'])} not told at the time")
    return _message(
        kind="digest", seller_name=seller_name, seller_email=seller_email, to=seller_email,
        subject_line=f"Mutual Plans, week {week}: {', '.join(counts)}", text=text, html=html, created=created,
        timezone=timezone, msg_id=message_id,
    )


def not_sent_email(
    *,
    seller_name: str,
    seller_email: str,
    created: datetime | str,
    failed: Mapping[str, Any],
    message_id: str,
    timezone: str = "UTC",
    templates: Path | None = None,
) -> EmailMessage:
    """To the seller, once per email that failed for good: which email, why, and how to clear it."""
    created = parse_created(created)
    kinds = {"plan": "the plan's letter", "update": "the update", "reminder": "a reminder", "agreed": "the agreed plan",
             "digest": "the weekly digest", "plan_error": "the answer to your plan email"}
    kind = str(failed.get("kind", ""))
    context = {
        "what": kinds.get(kind, f"a {kind or 'notice'} to you"), "plan_id": failed.get("plan_id") or "",
        "version": failed.get("version"), "recipients": list(failed.get("recipients", [])),
        "error": failed.get("error", ""), "message_id": failed.get("message_id", ""), "mode": failed.get("mode", ""),
    }  # fmt: skip
    text, html = render_bodies(templates, "not_sent", context)
    about = f" ({context['plan_id']})" if context["plan_id"] else ""
    return _message(
        kind="not_sent", seller_name=seller_name, seller_email=seller_email, to=seller_email,
        subject_line=f"Not sent{about}: {context['what']}", text=text, html=html, created=created, timezone=timezone,
        msg_id=message_id,
    )
