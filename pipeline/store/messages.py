"""What came in and what it proved: messages seen, the archived files of each plan, and confirmations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from pipeline.errors import StoreError
from pipeline.store import schema
from pipeline.store.audit import AuditLog
from pipeline.store.database import _insert_ignore, _unknown_plan, utc_iso

# What an archived file is to a plan: a version's letter, the redline of a step, an email in or out, the
# certificate of agreement the 'agreed' email carried.
EVIDENCE_KINDS = ("letter", "redline", "in", "out", "certificate")
# A confirmation's message_id when no email gave it: the seller recorded it by command, `seller:<when>`.
SELLER_MARK = "seller:"


@dataclass(frozen=True)
class MessageRecord:
    """A message seen: its id, the SHA-256 of its raw bytes, what was done with it and why."""

    message_id: str
    raw_sha256: str
    plan_id: str | None
    version: int | None
    disposition: str
    reason: str | None
    received: str
    sender: str | None = None


@dataclass(frozen=True)
class Evidence:
    """A file in the archive that belongs to a plan: its SHA-256, what it is, and the version it concerns."""

    plan_id: str
    version: int | None
    kind: str
    sha256: str
    message_id: str | None
    at: str


@dataclass(frozen=True)
class Confirmation:
    """A contact's confirmation of a version: the email's Message-ID that gave it, or the seller's marker
    (`seller:<when>`) for one given on a call and recorded by command."""

    plan_id: str
    version: int
    email: str
    message_id: str
    at: str
    note: str | None = None  # the seller's note, for one they recorded
    recorded_by: str | None = None

    @property
    def by_seller(self) -> bool:
        """Whether the seller recorded it (a confirmation given on a call), rather than an email giving it."""
        return self.message_id.startswith(SELLER_MARK)

    @property
    def how(self) -> str:
        """How it was given, for people: by an email, or by the seller's word."""
        if self.by_seller:
            return f"recorded by the seller on a call: {self.note or '(no note)'}"
        return f"by email {self.message_id}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `history --json` and the archive's manifest."""
        out = {"version": self.version, "email": self.email, "at": self.at, "message_id": self.message_id,
               "how": self.how}
        if self.by_seller:
            out["recorded_by"] = self.recorded_by
        return out


class Messages(AuditLog):
    """The messages, evidence and confirmations tables."""

    def record_message(
        self,
        message_id: str,
        *,
        raw_sha256: str,
        received: datetime,
        disposition: str = "received",
        reason: str | None = None,
        plan_id: str | None = None,
        version: int | None = None,
        sender: str | None = None,
    ) -> bool:
        """Remember a message; False when its Message-ID was already recorded (one effect per message).

        A False answer with another raw_sha256 in message(message_id) is the same id on other bytes: flag it.
        """
        at = utc_iso(received)
        row = {
            "message_id": message_id,
            "raw_sha256": raw_sha256,
            "plan_id": plan_id,
            "version": version,
            "disposition": disposition,
            "reason": reason,
            "received": at,
            "sender": sender,
        }
        with self._write() as conn:
            if not _insert_ignore(conn, schema.messages, row):
                return False
            detail = {k: row[k] for k in ("message_id", "raw_sha256", "disposition", "reason", "version")}
            self._audit(conn, at, plan_id, "message recorded", detail)
        return True

    def set_disposition(
        self,
        message_id: str,
        disposition: str,
        *,
        at: datetime,
        reason: str | None = None,
        plan_id: str | None = None,
        version: int | None = None,
    ) -> None:
        """Record what was finally done with a message (and the plan and version it turned out to concern)."""
        when = utc_iso(at)
        values: dict[str, Any] = {"disposition": disposition, "reason": reason}
        if plan_id is not None:
            values["plan_id"] = plan_id
        if version is not None:
            values["version"] = version
        with self._write() as conn:
            done = conn.execute(
                update(schema.messages).where(schema.messages.c.message_id == message_id).values(**values),
                execution_options={"preserve_rowcount": True},
            )
            if done.rowcount != 1:
                raise StoreError(f"no message {message_id} was recorded", hint="record_message() it first")
            target = plan_id or conn.execute(
                select(schema.messages.c.plan_id).where(schema.messages.c.message_id == message_id)
            ).scalar()
            self._audit(conn, when, target, "message settled", {"message_id": message_id, **values})

    def message(self, message_id: str) -> MessageRecord | None:
        """What is known of a message, or None when it was never recorded."""
        with self._read() as conn:
            row = conn.execute(select(schema.messages).where(schema.messages.c.message_id == message_id)).first()
        return MessageRecord(**row._asdict()) if row else None

    def messages(self, plan_id: str) -> list[MessageRecord]:
        """The messages recorded for a plan, in the order received."""
        with self._read() as conn:
            rows = conn.execute(
                select(schema.messages)
                .where(schema.messages.c.plan_id == plan_id)
                .order_by(schema.messages.c.received, schema.messages.c.message_id)
            ).all()
        return [MessageRecord(**row._asdict()) for row in rows]

    def messages_from(self, sender: str, since: datetime) -> int:
        """How many messages from an address were recorded since a time (the per-sender rate limit)."""
        m = schema.messages.c
        with self._read() as conn:
            return int(conn.execute(
                select(func.count())
                .select_from(schema.messages)
                .where(m.sender == sender, m.received >= utc_iso(since))
            ).scalar() or 0)

    # --- evidence (files kept in the archive) ------------------------------------------------------

    def add_evidence(
        self,
        plan_id: str,
        version: int | None,
        sha256: str,
        kind: str,
        message_id: str | None = None,
        *,
        at: datetime,
    ) -> bool:
        """Note that archived file `sha256` is a plan's `kind` (letter, redline, in, out); False if already noted."""
        if kind not in EVIDENCE_KINDS:
            raise StoreError(f"unknown kind of evidence {kind!r}", hint=f"use one of: {', '.join(EVIDENCE_KINDS)}")
        when = utc_iso(at)
        row = {"plan_id": plan_id, "version": version, "kind": kind, "sha256": sha256, "message_id": message_id,
               "at": when}
        with self._write() as conn:
            if conn.execute(select(schema.plans.c.id).where(schema.plans.c.id == plan_id)).first() is None:
                raise _unknown_plan(plan_id)
            if not _insert_ignore(conn, schema.evidence, row):
                return False
            self._audit(conn, when, plan_id, "evidence kept",
                        {"kind": kind, "sha256": sha256, "version": version, "message_id": message_id})
        return True

    def evidence(self, plan_id: str, kind: str | None = None) -> list[Evidence]:
        """The files kept for a plan (of one kind, if given), by version, then time, then hash."""
        query = select(schema.evidence).where(schema.evidence.c.plan_id == plan_id)
        if kind is not None:
            query = query.where(schema.evidence.c.kind == kind)
        e = schema.evidence.c
        with self._read() as conn:
            # coalesce: the two databases sort NULL at opposite ends; files of no version come first in both.
            rows = conn.execute(query.order_by(func.coalesce(e.version, 0), e.at, e.kind, e.sha256)).all()
        return [Evidence(**row._asdict()) for row in rows]

    # --- confirmations --------------------------------------------------------------------------

    def confirm(self, plan_id: str, version: int, email: str, message_id: str, *, at: datetime,
                detail: Mapping[str, Any] | None = None) -> bool:
        """Record that a contact confirmed a version (`detail` goes into its audit entry: who recorded it, the
        seller's note); False when they had already."""
        when = utc_iso(at)
        row = {"plan_id": plan_id, "version": version, "email": email.lower(), "message_id": message_id, "at": when}
        with self._write() as conn:
            if not _insert_ignore(conn, schema.confirmations, row):
                return False
            self._audit(conn, when, plan_id, "confirmed", {**(detail or {}), "version": version,
                                                           "email": email.lower(), "message_id": message_id})
        return True

    def confirmations(self, plan_id: str, version: int) -> dict[str, str]:
        """Who confirmed a version (lower-case address -> when)."""
        c = schema.confirmations.c
        with self._read() as conn:
            rows = conn.execute(select(c.email, c.at).where(c.plan_id == plan_id, c.version == version)).all()
        return {row.email: row.at for row in rows}

    def confirmation_records(self, plan_id: str) -> list[Confirmation]:
        """Every confirmation of a plan, by version, then time, then address; one the seller recorded carries their
        note and name from its audit entry."""
        c = schema.confirmations.c
        with self._read() as conn:
            rows = conn.execute(select(schema.confirmations).where(c.plan_id == plan_id)
                                .order_by(c.version, c.at, c.email)).all()
        found = [Confirmation(**row._asdict()) for row in rows]
        if not any(f.by_seller for f in found):
            return found
        said = {e.detail.get("message_id"): e.detail for e in self.audit_log(plan_id) if e.event == "confirmed"}
        return [replace(f, note=said.get(f.message_id, {}).get("note"),
                        recorded_by=said.get(f.message_id, {}).get("recorded_by")) if f.by_seller else f
                for f in found]
