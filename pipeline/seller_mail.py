"""Mail to the seller that belongs to no one plan (a plan email that did not parse, the weekly digest): queued in
the store with a deterministic Message-ID and sent like the outbox's, so a crash and a retry never send twice."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from pipeline.archive import Archive
from pipeline.config import Settings
from pipeline.errors import MailboxError, PipelineError
from pipeline.mailbox.base import Mailbox
from pipeline.render.seller_email import digest_email, plan_error_email
from pipeline.store import SellerMail, Store

KINDS = ("plan_error", "digest")


def message_id(settings: Settings, kind: str, key: str) -> str:
    """`<mutualplan.<kind>.<hash of key>@<seller's domain>>`: one email per key, whatever retries happen."""
    domain = settings.own_domains[0] if settings.own_domains else "mutualplan.invalid"
    return f"<mutualplan.{kind}.{hashlib.sha256(key.encode()).hexdigest()[:16]}@{domain}>"


def render(entry: SellerMail, settings: Settings) -> EmailMessage:
    """The email of a queued entry; the same entry always gives the same bytes."""
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
    raise PipelineError(f"no email to the seller of kind {entry.kind!r}", hint=f"kinds: {', '.join(KINDS)}")


def flush(store: Store, mailbox: Mailbox, archive: Archive, settings: Settings, clock: Callable[[], datetime],
          sent: list[str], errors: list[str]) -> None:
    """Send every queued email to the seller; before a retry, look in Sent so that nothing goes twice."""
    for entry in store.seller_mail_pending():
        try:
            if entry.state == "sending" and mailbox.was_sent(entry.message_id):
                store.seller_mail_mark(entry.message_id, "sent", at=clock())
                sent.append(entry.message_id)
                continue
            message = render(entry, settings)
            archive.put(bytes(message))
            store.seller_mail_mark(entry.message_id, "sending", at=clock())
            mailbox.send(message)
            store.seller_mail_mark(entry.message_id, "sent", at=clock())
            sent.append(entry.message_id)
        except MailboxError as exc:
            errors.append(f"sending {entry.message_id}: {exc}")
            if not exc.transient:
                store.seller_mail_mark(entry.message_id, "failed", at=clock(), error=str(exc))
        except PipelineError as exc:
            # A template or setting that cannot render it: said once, kept for a person, not retried forever.
            errors.append(f"rendering {entry.message_id}: {exc}")
            store.seller_mail_mark(entry.message_id, "failed", at=clock(), error=str(exc))
