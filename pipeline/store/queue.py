"""Mail as queued work: one outbox for everything we send, each plan's emails and the seller's own mail alike.

A Message-ID is fixed when an email is queued, so a retry can never send a second, different email. An entry
holds only data; the email is rendered from it when it is sent, the same bytes every time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from pipeline.errors import StoreError
from pipeline.store import schema
from pipeline.store.audit import AuditLog
from pipeline.store.database import _insert_ignore, _json, utc_iso

# superseding: a newer version replaces this draft, which must leave the seller's Drafts; superseded: it has.
STATES = ("pending", "sending", "drafted", "sent", "failed", "cancelled", "superseding", "superseded")


@dataclass(frozen=True)
class OutboxEntry:
    """One email to send (or leave in Drafts), as data; `plan_id` and `version` are empty for mail to the seller
    that belongs to no one plan (the weekly digest, the answer to a plan email that did not parse)."""

    message_id: str
    plan_id: str | None
    version: int | None
    kind: str
    mode: str = "send"  # send | draft
    state: str = "pending"
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    attempts: int = 0
    error: str | None = None
    sent_as: str | None = None  # the Message-ID it went out under, once known (ours, or one the server made)


class Queue(AuditLog):
    """The outbox: what to send, what was sent, and what failed."""

    def queue_email(self, entry: OutboxEntry, *, at: datetime) -> bool:
        """Queue an email to send; False when one with this Message-ID was queued before (a replay)."""
        when = utc_iso(at)
        data = dict(entry.data)
        # The email's own date is fixed when it is queued, so that rendering it again gives the same bytes.
        data.setdefault("created", when)
        row = {
            "message_id": entry.message_id, "plan_id": entry.plan_id, "version": entry.version, "kind": entry.kind,
            "mode": entry.mode, "state": "pending", "recipients": _json({"to": list(entry.to), "cc": list(entry.cc)}),
            "in_reply_to": entry.in_reply_to, "refs": _json(list(entry.references)), "data": _json(data),
            "created": when, "updated": when, "attempts": 0,
        }
        with self._write() as conn:
            if not _insert_ignore(conn, schema.outbox, row):
                return False
            self._audit(conn, when, entry.plan_id, "email queued",
                        {"message_id": entry.message_id, "kind": entry.kind, "mode": entry.mode,
                         "version": entry.version})
        return True

    def outbox_mark(self, message_id: str, state: str, *, at: datetime, error: str | None = None,
                    sent_as: str | None = None) -> None:
        """Move an outbox entry to another state (sending counts an attempt)."""
        o = schema.outbox.c
        when = utc_iso(at)
        values: dict[str, Any] = {"state": state, "updated": when, "error": error}
        if state == "sending":
            values["attempts"] = o.attempts + 1
        if sent_as:
            values["sent_as"] = sent_as
        with self._write() as conn:
            found = conn.execute(select(o.plan_id).where(o.message_id == message_id)).first()
            if found is None:
                raise StoreError(f"no email {message_id} in the outbox")
            plan_id = found.plan_id
            conn.execute(update(schema.outbox).where(o.message_id == message_id).values(**values))
            if state != "sending":
                self._audit(conn, when, plan_id, f"email {state}", {"message_id": message_id, "error": error})

    def outbox_alias(self, message_id: str, sent_as: str, *, at: datetime) -> None:
        """Record the Message-ID a sent email went out under, learned after it was marked sent."""
        o = schema.outbox.c
        with self._write() as conn:
            conn.execute(update(schema.outbox).where(o.message_id == message_id)
                         .values(sent_as=sent_as, updated=utc_iso(at)))

    def set_outbox_data(self, message_id: str, data: dict[str, Any], *, at: datetime) -> None:
        """Replace what a queued email says (the seller edited its suggested ask) while it still waits: pending or
        in Drafts; what was sent, or is being sent, stays as it went."""
        o = schema.outbox.c
        when = utc_iso(at)
        with self._write() as conn:
            found = conn.execute(select(o.plan_id, o.state).where(o.message_id == message_id)).first()
            if found is None:
                raise StoreError(f"no email {message_id} in the outbox")
            if found.state not in ("pending", "drafted"):
                raise StoreError(f"email {message_id} is {found.state}: only one that waits can be edited")
            conn.execute(update(schema.outbox).where(o.message_id == message_id)
                         .values(data=_json(data), updated=when))
            self._audit(conn, when, found.plan_id, "email edited", {"message_id": message_id})

    def outbox_entry(self, message_id: str) -> OutboxEntry | None:
        """The outbox entry with this Message-ID (ours, or the one a server gave it), if any."""
        o = schema.outbox.c
        with self._read() as conn:
            row = conn.execute(select(schema.outbox).where((o.message_id == message_id) | (o.sent_as == message_id))
                               .limit(1)).first()
        return _outbox_entry(row) if row else None

    def outbox_entries(self, plan_id: str) -> list[OutboxEntry]:
        """Every email queued for a plan, oldest first."""
        o = schema.outbox.c
        with self._read() as conn:
            rows = conn.execute(select(schema.outbox).where(o.plan_id == plan_id).order_by(o.created, o.message_id))
            return [_outbox_entry(row) for row in rows]

    def outbox_pending(self) -> list[OutboxEntry]:
        """Emails still to send or draft (including one whose send was interrupted), oldest first."""
        o = schema.outbox.c
        with self._read() as conn:
            rows = conn.execute(select(schema.outbox).where(o.state.in_(("pending", "sending")))
                                .order_by(o.created, o.message_id))
            return [_outbox_entry(row) for row in rows]

    def outbox_in_state(self, state: str) -> list[OutboxEntry]:
        """Emails in one state, oldest first."""
        o = schema.outbox.c
        with self._read() as conn:
            rows = conn.execute(select(schema.outbox).where(o.state == state).order_by(o.created, o.message_id))
            return [_outbox_entry(row) for row in rows]

    def outbox_unaliased(self, since: datetime) -> list[OutboxEntry]:
        """Emails sent at `since` or later whose Message-ID as sent is not known yet, oldest first."""
        o = schema.outbox.c
        query = select(schema.outbox).where((o.state == "sent") & o.sent_as.is_(None) & (o.updated >= utc_iso(since)))
        with self._read() as conn:
            return [_outbox_entry(row) for row in conn.execute(query.order_by(o.created, o.message_id))]

    def outbox_drafted(self, plan_id: str | None = None) -> list[OutboxEntry]:
        """Emails left in the seller's Drafts and not yet seen sent."""
        o = schema.outbox.c
        query = select(schema.outbox).where(o.state == "drafted")
        if plan_id is not None:
            query = query.where(o.plan_id == plan_id)
        with self._read() as conn:
            return [_outbox_entry(row) for row in conn.execute(query.order_by(o.created, o.message_id))]


# --- helpers ----------------------------------------------------------------------------------------


def _outbox_entry(row: Any) -> OutboxEntry:
    recipients = json.loads(row.recipients)
    return OutboxEntry(
        message_id=row.message_id, plan_id=row.plan_id, version=row.version, kind=row.kind, mode=row.mode,
        state=row.state, to=tuple(recipients.get("to", ())), cc=tuple(recipients.get("cc", ())),
        in_reply_to=row.in_reply_to, references=tuple(json.loads(row.refs)), data=json.loads(row.data),
        created=row.created, attempts=row.attempts, error=row.error, sent_as=row.sent_as,
    )
