"""Queued entries rendered into emails: the version's letter (rendered once, kept) and the message around it."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from typing import Any

from pipeline.archive import Archive
from pipeline.config import Settings
from pipeline.errors import PipelineError
from pipeline.loop.certificate import agreement_certificate
from pipeline.plan.diff import diff as plan_diff
from pipeline.plan.model import Version
from pipeline.render import email as emails
from pipeline.render.letter import letter_pdf
from pipeline.render.letterhead import load_letterhead
from pipeline.render.seller_email import digest_email, not_sent_email, plan_error_email
from pipeline.store import OutboxEntry, Store

SELLER_KINDS = ("plan_error", "digest", "not_sent")


def version_letter(store: Store, archive: Archive, version: Version, *, letterhead: str,
                   at: datetime, since: int | None = None, keep: bool = True) -> bytes:
    """A version's letter, rendered once and kept: from version 2 on it opens with the changes since `since`, the
    last version the prospect was sent (versions they never saw, such as a superseded draft, are not steps).

    `keep=False` (a preview): one not kept yet is rendered and returned, not kept."""
    kept = [e for e in store.evidence(version.plan_id, "letter") if e.version == version.number]
    if kept:
        return archive.get(kept[0].sha256)
    changes = None
    if version.number > 1:
        parent = store.version(version.plan_id, since if since and since < version.number else version.number - 1)
        changes = plan_diff(parent.plan, version.plan, old_version=parent.number, new_version=version.number)
    name = version.plan.letterhead or letterhead
    load_letterhead(name)  # a clear error naming the letterhead before any rendering
    pdf = letter_pdf(version.plan, version=version.number, created=version.created, diff=changes, letterhead=name)
    if not keep:
        return pdf
    digest = archive.put(pdf)
    # Only as the letter: a step's redline is its own document, made at export (pipeline.redline).
    store.add_evidence(version.plan_id, version.number, digest, "letter", at=at)
    return pdf


def compose(entry: OutboxEntry, store: Store, archive: Archive, *, letterhead: str, at: datetime,
            keep: bool = True) -> EmailMessage:
    """The email of an outbox entry; the same entry always gives the same bytes (`keep=False`: a preview, which
    keeps no letter it renders)."""
    # Mail of no plan goes to seller_mail instead; an entry of a plan always names its version.
    assert entry.plan_id is not None and entry.version is not None
    version = store.version(entry.plan_id, entry.version)
    plan = version.plan
    created = entry.data.get("created") or version.created
    common: dict[str, Any] = {"version": version.number, "message_id": entry.message_id}
    reply = entry.data.get("reply") or {}
    since = int(entry.data["since"]) if entry.data.get("since") else None
    if entry.kind == "plan":
        pdf = version_letter(store, archive, version, letterhead=letterhead, at=at, since=since, keep=keep)
        # A plan the seller wrote in an email: its letter answers that email, in the same thread.
        return emails.plan_email(plan, created=version.created, pdf=pdf, to=entry.to, cc=entry.cc,
                                 in_reply_to=entry.in_reply_to, references=entry.references,
                                 reply_subject=entry.data.get("reply_subject"), **common)
    if entry.kind == "update":
        since = since or version.number - 1
        pdf = version_letter(store, archive, version, letterhead=letterhead, at=at, since=since, keep=keep)
        changes = plan_diff(store.version(plan.id, since).plan, plan, old_version=since, new_version=version.number)
        return emails.update_email(
            plan, created=version.created, pdf=pdf, diff=changes, in_reply_to=entry.in_reply_to,
            references=entry.references, reply_subject=reply.get("subject"), asks=entry.data.get("asks", []),
            notes=entry.data.get("notes", []), auto=entry.mode == "send", to=entry.to, cc=entry.cc,
            by_seller=bool(entry.data.get("by_seller")), **common,
        )
    if entry.kind == "reminder":
        # Counted from the day it was queued (entry.data["created"]), so a retry renders the same words.
        return emails.reminder_email(plan, created=created, milestone=entry.data["milestone"], to=entry.to,
                                     cc=entry.cc, in_reply_to=entry.in_reply_to, references=entry.references,
                                     key=entry.data.get("key"), **common)
    if entry.kind == "agreed":
        pdf = version_letter(store, archive, version, letterhead=letterhead, at=at, keep=keep)
        certificate = agreement_certificate(store, archive, plan.id, version.number, keep=keep)
        return emails.agreed_email(plan, created=created, pdf=pdf, in_reply_to=entry.in_reply_to,
                                   references=entry.references, to=entry.to, cc=entry.cc, certificate=certificate,
                                   **common)
    return emails.seller_notice_email(
        plan, created=created, reason=entry.data.get("reason", ""), reply_from=reply.get("from") or "(no sender)",
        reply_subject=reply.get("subject", ""), reply_date=reply.get("date"), said=entry.data.get("text", ""),
        notes=entry.data.get("notes", []), intent=entry.data.get("intent"), key=reply.get("message_id"),
        tag=entry.kind, changed=bool(entry.data.get("changed")), notes_title=entry.data.get("notes_title", ""),
        **common,
    )


def seller_mail(entry: OutboxEntry, settings: Settings) -> EmailMessage:
    """The email of a queued entry to the seller that belongs to no one plan; the same entry, the same bytes."""
    data = entry.data
    common: dict[str, Any] = {
        "seller_name": str(settings.seller.get("name", "")),
        "seller_email": str(settings.seller.get("email", "")),
        "created": data.get("created") or entry.created,
        "message_id": entry.message_id,
        "timezone": settings.seller_timezone,
    }
    if entry.kind == "plan_error":
        return plan_error_email(
            to=data["to"], subject=data.get("subject", ""), sent=data.get("sent"), reason=data["reason"],
            line=data.get("line"), line_text=data.get("line_text", ""), hint=data.get("hint"),
            recipients=data.get("recipients", []), tag=settings.inbound.subject_tag or "[Mutual Plan]",
            in_reply_to=data.get("in_reply_to"), references=data.get("references", []), **common,
        )
    if entry.kind == "digest":
        return digest_email(week=data["week"], sections=data["sections"], **common)
    if entry.kind == "not_sent":
        return not_sent_email(failed=data["failed"], **common)
    raise PipelineError(f"no email to the seller of kind {entry.kind!r}", hint=f"kinds: {', '.join(SELLER_KINDS)}")
