"""Plans, their immutable versions, messages seen, the audit log and mailbox sync state, in SQLite or PostgreSQL.

Every time comes from the caller (no clock here), every write is one transaction, and several calls can be made
one atomic commit with `with store.transaction():` (a reply, the version it makes and its audit together).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, insert, inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError

from pipeline import schema
from pipeline.errors import StoreError
from pipeline.loop.outbox import OutboxEntry
from pipeline.plan.model import Change, Plan, Version, canonical_json, plan_from_dict

PLAN_STATES = ("open", "agreed", "declined", "closed")
# What an archived file is to a plan: a version's letter, the redline of a step, an email in or out.
EVIDENCE_KINDS = ("letter", "redline", "in", "out")
# How often add_version recomputes its number after losing a race on the UNIQUE (plan_id, number) key
# (a backstop: writers already take turns on the plan's row).
_RETRIES = 5
# Any fixed number: the PostgreSQL advisory lock that lets one process at a time migrate a database.
_MIGRATION_LOCK = 0x6D706C6E


class VersionConflict(StoreError):
    """The version number a caller insisted on is taken: someone else changed the plan first."""


@dataclass(frozen=True)
class VersionRecord:
    """A version exactly as stored: the canonical JSON its hash was made from, and who made it, when, why."""

    plan_id: str
    number: int
    plan_json: str
    changes: tuple[dict[str, Any], ...]
    author: str
    reason: str
    message_id: str | None
    created: str
    hash: str
    parent_hash: str | None

    def to_version(self) -> Version:
        """The model's Version of this record."""
        return Version(
            plan_id=self.plan_id,
            number=self.number,
            plan=_plan_of(self.plan_json),
            created=self.created,
            author=self.author,
            reason=self.reason,
            # Built directly, not re-validated: a record keeps what was accepted when it was written.
            changes=tuple(Change(**c) for c in self.changes),
            message_id=self.message_id,
            parent_hash=self.parent_hash,
        )


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
class SellerMail:
    """An email to the seller that belongs to no one plan (the answer to a plan email that did not parse, the
    weekly digest), queued as data like the outbox's entries."""

    message_id: str
    kind: str
    state: str
    data: dict[str, Any]
    created: str
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One state change: when, to which plan, what happened, and the details."""

    at: str
    plan_id: str | None
    event: str
    detail: dict[str, Any] = field(default_factory=dict)


def utc_iso(when: datetime) -> str:
    """The stored form of a time: ISO 8601 in UTC to the second, with a Z; a naive time is a bug, not a guess.

    One fixed width, so that the text sorts as the times do.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"the store needs timezone-aware times, got {when!r}")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Store:
    """The pipeline's database; open it with Store.open(url), which creates or upgrades the schema."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.where = engine.url.render_as_string(hide_password=True)
        self._local = threading.local()

    # --- opening --------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to `url` (sqlite:///PATH or postgresql+psycopg://...) and bring its schema up to date."""
        store = cls(_engine(url))
        store._migrate()
        return store

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema this database is at."""
        with self._read() as conn:
            return _schema_version(conn)

    def _migrate(self) -> None:
        dialect = self.engine.dialect.name
        with self._errors(), self.engine.begin() as conn:
            if dialect == "postgresql":
                # Two processes opening a fresh database at once: one migrates, the other waits, then sees it done.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            current = _schema_version(conn)
            if current > schema.LATEST:
                raise StoreError(
                    f"the database at {self.where} is at schema {current}, newer than this release knows "
                    f"({schema.LATEST})",
                    hint="upgrade mutualplan before opening this home",
                )
            for number in range(current + 1, schema.LATEST + 1):
                for sql in schema.MIGRATIONS[number - 1](dialect):
                    conn.exec_driver_sql(sql)
                conn.execute(insert(schema.schema_version).values(version=number))

    # --- transactions ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make every store call in the block one atomic commit; a nested block joins the outer one."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self._errors(), self.engine.begin() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        outer = getattr(self._local, "conn", None)
        if outer is not None:
            yield outer
            return
        with self._errors(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        outer = getattr(self._local, "conn", None)
        if outer is not None:
            yield outer
            return
        # A read need not take SQLite's write lock (see _sqlite_begin).
        with self._errors(), self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StoreError(
                f"the database at {self.where} cannot be used: {_first_line(exc.orig)}",
                hint="check that the database is reachable (for SQLite, that its folder exists and is writable) "
                "and not locked by a stuck process, then try again",
            ) from exc
        except DBAPIError as exc:
            raise StoreError(f"the database at {self.where} refused a change: {_first_line(exc.orig)}") from exc

    # --- versions -------------------------------------------------------------------------------

    def add_version(
        self,
        plan: Plan,
        *,
        author: str,
        reason: str,
        changes: Iterable[Change] = (),
        message_id: str | None = None,
        created: datetime,
        expect_number: int | None = None,
    ) -> Version:
        """Store `plan` as the next version of plan.id (version 1 creates the plan) and return it.

        The number is computed in the same transaction that inserts it; a concurrent writer that took it
        first makes this one count again, or raise VersionConflict when `expect_number` names the number the
        caller insists on (optimistic concurrency: "the next version after the one I read").
        """
        plan_json = canonical_json(plan)
        digest = hashlib.sha256(plan_json.encode("utf-8")).hexdigest()
        changes = tuple(changes)
        at = utc_iso(created)
        with self._write() as conn:
            if _insert_ignore(conn, schema.plans, {"id": plan.id, "state": "open", "created": at}):
                self._audit(conn, at, plan.id, "plan created", {})
            # Writers to one plan take turns (PostgreSQL: a row lock; SQLite's BEGIN IMMEDIATE already locks
            # the file), so a busy plan cannot starve a writer; the UNIQUE key below still has the last word.
            # NO KEY UPDATE (key_share): rows that merely reference the plan (messages, evidence) need not wait.
            conn.execute(
                select(schema.plans.c.id).where(schema.plans.c.id == plan.id).with_for_update(key_share=True)
            )
            for _ in range(_RETRIES):
                last = conn.execute(
                    select(schema.versions.c.number, schema.versions.c.hash)
                    .where(schema.versions.c.plan_id == plan.id)
                    .order_by(schema.versions.c.number.desc())
                    .limit(1)
                ).first()
                number = last.number + 1 if last else 1
                if expect_number is not None and number != expect_number:
                    raise _conflict(plan.id, number - 1, expect_number)
                record = VersionRecord(
                    plan_id=plan.id,
                    number=number,
                    plan_json=plan_json,
                    changes=tuple(c.to_dict() for c in changes),
                    author=author,
                    reason=reason,
                    message_id=message_id,
                    created=at,
                    hash=digest,
                    parent_hash=last.hash if last else None,
                )
                try:
                    # A savepoint, so that losing the race leaves an outer transaction usable.
                    with conn.begin_nested():
                        conn.execute(insert(schema.versions).values(**_version_row(record)))
                except IntegrityError:
                    if expect_number is not None:
                        raise _conflict(plan.id, number, expect_number) from None
                    continue
                self._audit(
                    conn,
                    at,
                    plan.id,
                    "version added",
                    {"number": number, "hash": digest, "author": author, "reason": reason, "message_id": message_id},
                )
                return Version(
                    plan_id=plan.id,
                    number=number,
                    plan=plan,
                    created=at,
                    author=author,
                    reason=reason,
                    changes=changes,
                    message_id=message_id,
                    parent_hash=record.parent_hash,
                )
        raise StoreError(
            f"could not number a new version of plan {plan.id}: {_RETRIES} other writers got there first",
            hint="try again",
        )

    def version_records(self, plan_id: str) -> list[VersionRecord]:
        """Every version of a plan as stored, oldest first (empty for an unknown plan)."""
        with self._read() as conn:
            rows = conn.execute(
                select(schema.versions)
                .where(schema.versions.c.plan_id == plan_id)
                .order_by(schema.versions.c.number)
            ).all()
        return [_record(row) for row in rows]

    def versions(self, plan_id: str) -> list[Version]:
        """Every version of a plan, oldest first (empty for an unknown plan)."""
        return [r.to_version() for r in self.version_records(plan_id)]

    def current(self, plan_id: str) -> Version | None:
        """The latest version of a plan, or None when the store has no such plan."""
        with self._read() as conn:
            row = conn.execute(
                select(schema.versions)
                .where(schema.versions.c.plan_id == plan_id)
                .order_by(schema.versions.c.number.desc())
                .limit(1)
            ).first()
        return _record(row).to_version() if row else None

    def version(self, plan_id: str, number: int) -> Version:
        """Version `number` of a plan; a StoreError says which versions exist when it does not."""
        with self._read() as conn:
            row = conn.execute(
                select(schema.versions).where(
                    schema.versions.c.plan_id == plan_id, schema.versions.c.number == number
                )
            ).first()
            if row is None:
                count = conn.execute(
                    select(func.count()).select_from(schema.versions).where(schema.versions.c.plan_id == plan_id)
                ).scalar_one()
        if row is not None:
            return _record(row).to_version()
        if not count:
            raise _unknown_plan(plan_id)
        raise StoreError(f"plan {plan_id} has no version {number}", hint=f"its versions are 1 to {count}")

    # --- plans ----------------------------------------------------------------------------------

    def plan_ids(self) -> list[str]:
        """The ids of every stored plan, sorted."""
        with self._read() as conn:
            return list(conn.execute(select(schema.plans.c.id).order_by(schema.plans.c.id)).scalars())

    def has_plan(self, plan_id: str) -> bool:
        """Whether the store has a plan with this id."""
        with self._read() as conn:
            return conn.execute(select(schema.plans.c.id).where(schema.plans.c.id == plan_id)).first() is not None

    def lock_plan(self, plan_id: str) -> None:
        """Inside `transaction()`: writers to this plan take turns until it ends, and what they read after this is
        what the one before them committed (PostgreSQL: a row lock; SQLite's BEGIN IMMEDIATE locks the file already).

        Two confirmations of one plan committed side by side would each see only its own, and neither would find
        the plan agreed.
        """
        with self._write() as conn:
            conn.execute(
                select(schema.plans.c.id).where(schema.plans.c.id == plan_id).with_for_update(key_share=True)
            )

    def plan_state(self, plan_id: str) -> str:
        """open, agreed, declined or closed."""
        with self._read() as conn:
            state = conn.execute(select(schema.plans.c.state).where(schema.plans.c.id == plan_id)).scalar()
        if state is None:
            raise _unknown_plan(plan_id)
        return state

    def set_plan_state(
        self, plan_id: str, state: str, *, at: datetime, detail: Mapping[str, Any] | None = None
    ) -> bool:
        """Move a plan to `state` and audit it; False when it was already there (nothing recorded)."""
        if state not in PLAN_STATES:
            raise StoreError(f"unknown plan state {state!r}", hint=f"use one of: {', '.join(PLAN_STATES)}")
        when = utc_iso(at)
        with self._write() as conn:
            before = conn.execute(select(schema.plans.c.state).where(schema.plans.c.id == plan_id)).scalar()
            if before is None:
                raise _unknown_plan(plan_id)
            if before == state:
                return False
            conn.execute(update(schema.plans).where(schema.plans.c.id == plan_id).values(state=state))
            self._audit(conn, when, plan_id, "state changed", {**(detail or {}), "from": before, "to": state})
        return True

    # --- messages -------------------------------------------------------------------------------

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

    def messages_from(self, sender: str, since: datetime) -> int:
        """How many messages from an address were recorded since a time (the per-sender rate limit)."""
        m = schema.messages.c
        with self._read() as conn:
            return int(conn.execute(
                select(func.count())
                .select_from(schema.messages)
                .where(m.sender == sender, m.received >= utc_iso(since))
            ).scalar() or 0)

    # --- confirmations --------------------------------------------------------------------------

    def confirm(self, plan_id: str, version: int, email: str, message_id: str, *, at: datetime) -> bool:
        """Record that a contact confirmed a version; False when they had already."""
        when = utc_iso(at)
        row = {"plan_id": plan_id, "version": version, "email": email.lower(), "message_id": message_id, "at": when}
        with self._write() as conn:
            if not _insert_ignore(conn, schema.confirmations, row):
                return False
            self._audit(conn, when, plan_id, "confirmed", {"version": version, "email": email.lower(),
                                                           "message_id": message_id})
        return True

    def confirmations(self, plan_id: str, version: int) -> dict[str, str]:
        """Who confirmed a version (lower-case address -> when)."""
        c = schema.confirmations.c
        with self._read() as conn:
            rows = conn.execute(select(c.email, c.at).where(c.plan_id == plan_id, c.version == version)).all()
        return {row.email: row.at for row in rows}

    # --- outbox ---------------------------------------------------------------------------------

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
            plan_id = conn.execute(select(o.plan_id).where(o.message_id == message_id)).scalar()
            if plan_id is None:
                raise StoreError(f"no email {message_id} in the outbox")
            conn.execute(update(schema.outbox).where(o.message_id == message_id).values(**values))
            if state != "sending":
                self._audit(conn, when, plan_id, f"email {state}", {"message_id": message_id, "error": error})

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

    def outbox_drafted(self, plan_id: str | None = None) -> list[OutboxEntry]:
        """Emails left in the seller's Drafts and not yet seen sent."""
        o = schema.outbox.c
        query = select(schema.outbox).where(o.state == "drafted")
        if plan_id is not None:
            query = query.where(o.plan_id == plan_id)
        with self._read() as conn:
            return [_outbox_entry(row) for row in conn.execute(query.order_by(o.created, o.message_id))]

    def plan_for_subject(self, subject: str) -> tuple[str, int] | None:
        """The plan and version a subject names ("Mutual Plan: <Prospect> and <Seller> (version N)"), if one does."""
        found = _SUBJECT.search(subject or "")
        if not found:
            return None
        prospect, seller, number = found.group(1).strip(), found.group(2).strip(), int(found.group(3))
        # Every plan's current version in one query, each read once (_parties): not a query and a parse per plan.
        v = schema.versions.c
        latest = select(v.plan_id, func.max(v.number).label("number")).group_by(v.plan_id).subquery()
        current = schema.versions.join(latest, (v.plan_id == latest.c.plan_id) & (v.number == latest.c.number))
        with self._read() as conn:
            rows = conn.execute(select(v.plan_id, v.plan_json).select_from(current).order_by(v.plan_id)).all()
        matches = [row.plan_id for row in rows if _parties(row.plan_json) == (prospect, seller)]
        # Two plans between the same companies cannot be told apart by subject: match neither.
        return (matches[0], number) if len(matches) == 1 else None

    # --- plan options and mail to the seller -------------------------------------------------------

    def plan_option(self, plan_id: str, name: str) -> str | None:
        """A plan's own setting (e.g. reminders = "off"), or None when the plan has none."""
        o = schema.plan_options.c
        with self._read() as conn:
            return conn.execute(select(o.value).where(o.plan_id == plan_id, o.name == name)).scalar()

    def set_plan_option(self, plan_id: str, name: str, value: str, *, at: datetime) -> bool:
        """Set a plan's own setting and audit it; False when it already had this value."""
        o = schema.plan_options.c
        when = utc_iso(at)
        with self._write() as conn:
            if conn.execute(select(schema.plans.c.id).where(schema.plans.c.id == plan_id)).first() is None:
                raise _unknown_plan(plan_id)
            before = conn.execute(select(o.value).where(o.plan_id == plan_id, o.name == name)).scalar()
            if before == value:
                return False
            stmt = _dialect_insert(conn)(schema.plan_options).values(plan_id=plan_id, name=name, value=value)
            conn.execute(stmt.on_conflict_do_update(index_elements=["plan_id", "name"], set_={"value": value}))
            self._audit(conn, when, plan_id, "option set", {"name": name, "from": before, "to": value})
        return True

    def queue_seller_mail(self, message_id: str, kind: str, data: Mapping[str, Any], *, at: datetime) -> bool:
        """Queue an email to the seller that belongs to no plan; False when this Message-ID was queued before."""
        when = utc_iso(at)
        row = {"message_id": message_id, "kind": kind, "state": "pending", "data": _json(dict(data)),
               "created": when, "updated": when, "attempts": 0}
        with self._write() as conn:
            if not _insert_ignore(conn, schema.seller_mail, row):
                return False
            self._audit(conn, when, None, "email queued", {"message_id": message_id, "kind": kind})
        return True

    def seller_mail(self, message_id: str) -> SellerMail | None:
        """The queued email to the seller with this Message-ID, if any."""
        with self._read() as conn:
            row = conn.execute(
                select(schema.seller_mail).where(schema.seller_mail.c.message_id == message_id)
            ).first()
        return _seller_mail(row) if row else None

    def seller_mail_pending(self) -> list[SellerMail]:
        """Emails to the seller still to send (including one whose send was interrupted), oldest first."""
        m = schema.seller_mail.c
        with self._read() as conn:
            rows = conn.execute(select(schema.seller_mail).where(m.state.in_(("pending", "sending")))
                                .order_by(m.created, m.message_id)).all()
        return [_seller_mail(row) for row in rows]

    def seller_mail_mark(self, message_id: str, state: str, *, at: datetime, error: str | None = None) -> None:
        """Move a queued email to the seller to another state (sending counts an attempt)."""
        m = schema.seller_mail.c
        when = utc_iso(at)
        values: dict[str, Any] = {"state": state, "updated": when, "error": error}
        if state == "sending":
            values["attempts"] = m.attempts + 1
        with self._write() as conn:
            done = conn.execute(update(schema.seller_mail).where(m.message_id == message_id).values(**values),
                                execution_options={"preserve_rowcount": True})
            if done.rowcount != 1:
                raise StoreError(f"no email {message_id} in the seller's queue")
            if state != "sending":
                self._audit(conn, when, None, f"email {state}", {"message_id": message_id, "error": error})

    # --- audit ----------------------------------------------------------------------------------

    def audit(
        self, event: str, *, at: datetime, plan_id: str | None = None, detail: Mapping[str, Any] | None = None
    ) -> None:
        """Append an entry to the audit log (the store audits its own changes; this is for everything else)."""
        with self._write() as conn:
            self._audit(conn, utc_iso(at), plan_id, event, dict(detail or {}))

    def audit_log(self, plan_id: str | None = None) -> list[AuditEntry]:
        """The audit log of one plan, or of everything, in the order written."""
        query = select(schema.audit).order_by(schema.audit.c.id)
        if plan_id is not None:
            query = query.where(schema.audit.c.plan_id == plan_id)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [AuditEntry(at=r.at, plan_id=r.plan_id, event=r.event, detail=json.loads(r.detail)) for r in rows]

    def _audit(self, conn: Connection, at: str, plan_id: str | None, event: str, detail: Mapping[str, Any]) -> None:
        conn.execute(insert(schema.audit).values(at=at, plan_id=plan_id, event=event, detail=_json(detail)))

    # --- mailbox sync state (the SyncState protocol of pipeline.mailbox.base) ---------------------

    def get_state(self, name: str) -> str | None:
        """A backend's saved place (an IMAP UID, a sync token), or None."""
        with self._read() as conn:
            return conn.execute(select(schema.state.c.value).where(schema.state.c.name == name)).scalar()

    def set_state(self, name: str, value: str) -> None:
        """Save a backend's place, replacing the old one."""
        with self._write() as conn:
            stmt = _dialect_insert(conn)(schema.state).values(name=name, value=value)
            conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"value": value}))


# --- helpers ----------------------------------------------------------------------------------------


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"not a database URL: {url!r}",
            hint="write sqlite:///PATH/mutualplan.db or postgresql+psycopg://USER@HOST/DATABASE",
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            # The driver the project installs; plain postgresql:// would ask for psycopg2.
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise StoreError(f"cannot use {parsed.drivername}: {exc}", hint="install psycopg[binary]") from None
    if backend == "sqlite":
        # A long busy timeout: writers queue behind each other instead of failing.
        engine = create_engine(parsed, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    raise StoreError(f"unsupported database {backend!r}", hint="use SQLite or PostgreSQL")


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let _sqlite_begin say BEGIN itself: pysqlite's own deferred BEGIN lets two writers both read the last
    # version number and then deadlock upgrading to a write lock.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    # WAL: readers (history, status) do not wait for the watcher's writes.
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock at once, so a write transaction never fails half-way for a lock.
    conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'IMMEDIATE')}")


def _schema_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    return conn.execute(select(func.max(schema.schema_version.c.version))).scalar() or 0


def _dialect_insert(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def _insert_ignore(conn: Connection, table: Any, row: Mapping[str, Any]) -> bool:
    """INSERT unless the primary key is taken; True when the row was new."""
    stmt = _dialect_insert(conn)(table).values(**row).on_conflict_do_nothing()
    # An INSERT's rowcount is only kept when asked for (psycopg otherwise reports -1).
    return conn.execute(stmt, execution_options={"preserve_rowcount": True}).rowcount == 1


def _version_row(record: VersionRecord) -> dict[str, Any]:
    return {
        "plan_id": record.plan_id,
        "number": record.number,
        "plan_json": record.plan_json,
        "changes_json": _json(list(record.changes)),
        "author": record.author,
        "reason": record.reason,
        "message_id": record.message_id,
        "created": record.created,
        "hash": record.hash,
        "parent_hash": record.parent_hash,
    }


@functools.lru_cache(maxsize=512)
def _plan_of(plan_json: str) -> Plan:
    """The Plan a version's JSON reads to, parsed once: a version never changes and a Plan is frozen, so the
    same text always gives the same Plan (one reply reads the current version several times)."""
    return plan_from_dict(json.loads(plan_json))


@functools.lru_cache(maxsize=4096)
def _parties(plan_json: str) -> tuple[str, str]:
    """(prospect company, seller company) of a version's JSON: what a subject names."""
    data = json.loads(plan_json)
    return data["prospect"]["company"], data["seller"]["company"]


def _record(row: Any) -> VersionRecord:
    return VersionRecord(
        plan_id=row.plan_id,
        number=row.number,
        plan_json=row.plan_json,
        changes=tuple(json.loads(row.changes_json)),
        author=row.author,
        reason=row.reason,
        message_id=row.message_id,
        created=row.created,
        hash=row.hash,
        parent_hash=row.parent_hash,
    )


def _conflict(plan_id: str, current: int, expected: int) -> VersionConflict:
    return VersionConflict(
        f"plan {plan_id} is at version {current}: version {expected} cannot be added",
        hint="someone changed the plan first; read the current version and apply the changes to it",
    )


_SUBJECT = re.compile(r"Mutual Plan: (.+?) and (.+?) \(version (\d{1,6})\)")


def _outbox_entry(row: Any) -> OutboxEntry:
    recipients = json.loads(row.recipients)
    return OutboxEntry(
        message_id=row.message_id, plan_id=row.plan_id, version=row.version, kind=row.kind, mode=row.mode,
        state=row.state, to=tuple(recipients.get("to", ())), cc=tuple(recipients.get("cc", ())),
        in_reply_to=row.in_reply_to, references=tuple(json.loads(row.refs)), data=json.loads(row.data),
    )


def _seller_mail(row: Any) -> SellerMail:
    return SellerMail(message_id=row.message_id, kind=row.kind, state=row.state, data=json.loads(row.data),
                      created=row.created, attempts=row.attempts, error=row.error)


def _unknown_plan(plan_id: str) -> StoreError:
    return StoreError(f"no plan {plan_id!r} in the store", hint="add it first with `mutualplan add PLAN.md`")


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc and str(exc).strip() else type(exc).__name__
