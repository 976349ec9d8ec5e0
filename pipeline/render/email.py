"""The plan's emails: HTML and plain text from templates/email, the letter and a calendar attached.

One builder per kind; each returns an EmailMessage ready for a Mailbox's send() or save_draft():

    plan_email(plan, version=1, created=v.created, pdf=letter.pdf)                 # version N to the buyer
    update_email(plan, version=2, created=..., pdf=..., diff=d, in_reply_to=...)   # after changes, in thread
    agreed_email(plan, version=2, created=..., pdf=...)                            # everyone confirmed
    seller_notice_email(plan, version=2, created=..., reason=..., reply_from=...)  # to the seller alone
    reminder_email(plan, version=2, created=..., milestone="M3", to=[...])          # a step due soon or overdue

The first three are here; the last two, which announce no version, in notices.py; what they share (Message-IDs,
subjects, recipients, the templates' context, attachments) in email_parts.py, and the MIME assembly in mime.py.

Every message carries a deterministic Message-ID (ids.message_id(); `message_id=` overrides it),
`X-Mutual-Plan: <id>; version=<N>` and `X-Auto-Response-Suppress: All`; automatic ones also
`Auto-Submitted: auto-generated`. The same arguments always give the same bytes (MIME boundaries
included), so a retry sends what the first try would.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from pipeline.plan import ids
from pipeline.plan.diff import PlanDiff
from pipeline.plan.model import Plan
from pipeline.render.email_parts import (
    attachment_name,
    email_context,
    plan_message,
    recipients,
    version_attachments,
)
from pipeline.render.format import change_summary, ensure_version, parse_created
from pipeline.render.mime import render_bodies
from pipeline.render.notices import reminder_email, seller_notice_email

__all__ = ["agreed_email", "plan_email", "reminder_email", "seller_notice_email", "update_email"]


def plan_email(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    pdf: bytes | None,
    to: Sequence[str] | None = None,
    cc: Sequence[str] | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    reply_subject: str | None = None,
    auto: bool = False,
    message_id: str | None = None,
    templates: Path | None = None,
) -> EmailMessage:
    """Version N of the plan to the confirming contacts (the others in Cc), with the letter and the .ics.

    `created` is the version's timestamp: the Date header and the calendar's DTSTAMP. `to`/`cc` override
    the recipients (addresses; names come from the plan's contacts). `reply_subject`: the letter answers
    the seller's own email of that subject (a plan written in an email), as "Re: <that subject>".
    """
    version = ensure_version(version)
    created = parse_created(created)
    to, cc = recipients(plan, to, cc)
    text, html = render_bodies(templates, "plan", email_context(plan, version, created, to))
    return plan_message(
        plan, kind="plan", version=version, created=created,
        subject_line=ids.thread_subject(plan, reply_subject or (ids.subject(plan) if in_reply_to else None)),
        text=text, html=html, to=to, cc=cc,
        msg_id=message_id or ids.message_id(plan, version, "plan"), in_reply_to=in_reply_to, references=references,
        auto=auto, attachments=version_attachments(plan, version, created, pdf),
    )  # fmt: skip


def update_email(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    pdf: bytes | None,
    diff: PlanDiff | None,
    in_reply_to: str | None,
    references: Sequence[str] = (),
    reply_subject: str | None = None,
    asks: Sequence[str] = (),
    notes: Sequence[str] = (),
    by_seller: bool = False,
    auto: bool = False,
    to: Sequence[str] | None = None,
    cc: Sequence[str] | None = None,
    message_id: str | None = None,
    templates: Path | None = None,
) -> EmailMessage:
    """Version N+1 after changes, in the thread of the request: a summary of the changes, the new timeline,
    the letter (with its redline) and the .ics.

    `in_reply_to`/`references` place it in the thread. `reply_subject` (the subject of the message answered)
    gives "Re: <that subject>": mail clients group a conversation by subject as well as by headers.
    `asks` are what the seller asks in return (for the seller to keep or delete in a draft); `notes` are
    other sentences for the buyer. `auto` marks it Auto-Submitted (sent without the seller's review).
    `by_seller`: the seller asked for the changes (it says so, instead of thanking the buyer for a reply).
    """
    version = ensure_version(version)
    created = parse_created(created)
    to, cc = recipients(plan, to, cc)
    context = email_context(plan, version, created, to)
    context.update(
        changes=change_summary(plan, diff) if diff is not None else [],
        since=diff.old_version if diff is not None else version - 1,
        asks=list(asks),
        notes=list(notes),
        by_seller=by_seller,
    )
    text, html = render_bodies(templates, "update", context)
    return plan_message(
        plan, kind="update", version=version, created=created,
        subject_line=ids.thread_subject(plan, reply_subject or (ids.subject(plan) if in_reply_to else None)),
        text=text, html=html, to=to, cc=cc,
        msg_id=message_id or ids.message_id(plan, version, "update"), in_reply_to=in_reply_to, references=references,
        auto=auto, attachments=version_attachments(plan, version, created, pdf),
    )  # fmt: skip


def agreed_email(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    pdf: bytes | None,
    confirmed_by: Sequence[str] | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    auto: bool = True,
    to: Sequence[str] | None = None,
    cc: Sequence[str] | None = None,
    message_id: str | None = None,
    templates: Path | None = None,
    certificate: bytes | None = None,
) -> EmailMessage:
    """Everyone confirmed version N: a short note to all contacts (the seller in Cc) with the final letter.

    `confirmed_by` names who confirmed (default: the confirming contacts); `created` is when it was agreed;
    `certificate`, the certificate of agreement's PDF, goes with the letter.
    """
    version = ensure_version(version)
    created = parse_created(created)
    to = [c.email for c in plan.prospect.contacts] if to is None else list(to)
    cc = ([plan.seller.email] if plan.seller.email else []) if cc is None else list(cc)
    context = email_context(plan, version, created, to)
    context["confirmed_by"] = list(confirmed_by) if confirmed_by is not None else [c.name for c in plan.confirmers]
    text, html = render_bodies(templates, "agreed", context)
    return plan_message(
        plan, kind="agreed", version=version, created=created,
        subject_line=ids.thread_subject(plan, ids.subject(plan) if in_reply_to else None),
        text=text, html=html, to=to, cc=cc,
        msg_id=message_id or ids.message_id(plan, version, "agreed"), in_reply_to=in_reply_to, references=references,
        auto=auto, attachments=[*version_attachments(plan, version, created, pdf), *(
            [(certificate, "application", "pdf", attachment_name(plan, version, " certificate of agreement.pdf"), {})]
            if certificate else [])],
    )  # fmt: skip

