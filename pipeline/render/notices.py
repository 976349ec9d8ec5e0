"""The emails about a plan version that announce none: a notice to the seller about a reply, a step's reminder."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from pipeline.errors import RenderError
from pipeline.plan import ids
from pipeline.plan.model import Plan
from pipeline.render.email_parts import email_context, plan_message
from pipeline.render.format import ensure_version, long_date, parse_created, short_date
from pipeline.render.mime import render_bodies


def seller_notice_email(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    reason: str,
    reply_from: str,
    reply_subject: str = "",
    reply_date: str | None = None,
    said: str = "",
    notes: Sequence[str] = (),
    intent: str | None = None,
    key: str | None = None,
    tag: str = "notice",
    changed: bool = False,
    notes_title: str = "",
    auto: bool = True,
    message_id: str | None = None,
    templates: Path | None = None,
) -> EmailMessage:
    """To the seller alone: what a reply said (`said`, from `reply_from`) and why nothing changed (`reason`,
    `notes` such as unresolved sentences). `key` (the reply's Message-ID) makes one notice per reply;
    `tag` is the Message-ID's kind word ("notice", or e.g. "ask" for a suggested ask). `changed`: the reply
    did make `version` (a suggested ask, or sentences left over from a change request), and the notice says so.
    `notes_title` heads the notes when they are not requests left undone ("The question:")."""
    version = ensure_version(version)
    created = parse_created(created)
    context = email_context(plan, version, created)
    context.update(
        # The watcher's reason ends "; nothing changed" where the email already says "Nothing in the plan changed:".
        reason=reason if changed else reason.removesuffix("; nothing changed"),
        reply_from=reply_from,
        reply_subject=reply_subject,
        reply_date=reply_date or "",
        said=said.strip(),
        notes=list(notes),
        intent=intent or "",
        changed=changed,
        notes_title=notes_title or ("For you:" if changed else "Not acted on:"),
    )
    text, html = render_bodies(templates, "seller_notice", context)
    who = plan.contact(reply_from)
    about = f"{who.name} ({reply_from})" if who else reply_from
    return plan_message(
        plan, kind="seller_notice", version=version, created=created,
        subject_line=f"[Mutual Plan {plan.id}] {f'Version {version}' if changed else 'Nothing changed'}: {about}",
        text=text, html=html, to=[plan.seller.email] if plan.seller.email else [], cc=[],
        msg_id=message_id or ids.message_id(plan, version, tag, key), in_reply_to=None, references=(),
        auto=auto, attachments=[],
    )  # fmt: skip


def reminder_email(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    milestone: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    key: str | None = None,
    message_id: str | None = None,
    templates: Path | None = None,
) -> EmailMessage:
    """A short, polite reminder to the owner of `milestone`: due soon, or overdue, counted from `created` (the
    day it is sent, in the plan's time zone), with how to answer ("done", a new date, "another week").

    It quotes the milestone's timeline line, so that an answer above it or under it is read as about it.
    `key` (milestone, due date, before/overdue) makes one reminder of each; `in_reply_to` puts it in the plan's
    thread. Always Auto-Submitted: nobody wrote it by hand.
    """
    version = ensure_version(version)
    created = parse_created(created)
    context = email_context(plan, version, created, to)
    row = next((r for r in context["rows"] if r.id == milestone), None)
    if row is None or row.due is None:
        raise RenderError(f"no milestone {milestone!r} with a due date in version {version} of {plan.id}")
    days = (row.due - context["today"]).days
    context.update(row=row, days=days, due_text=long_date(row.due), due_day=short_date(row.due))
    if to and all(a.lower() == plan.seller.email.lower() for a in to):
        # The seller's own step: the seller is reminded, by first name.
        context["greeting_names"] = (plan.seller.name.split() or [plan.seller.company])[0]
    text, html = render_bodies(templates, "reminder", context)
    return plan_message(
        plan, kind="reminder", version=version, created=created,
        subject_line=ids.thread_subject(plan, ids.subject(plan) if in_reply_to else None),
        text=text, html=html, to=to, cc=cc,
        msg_id=message_id or ids.message_id(plan, version, "reminder", key), in_reply_to=in_reply_to,
        references=references, auto=True, attachments=[],
    )  # fmt: skip

