"""A plan's immutable versions: adding the next one, reading them back, and finding the plan a subject names."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from pipeline.errors import StoreError
from pipeline.plan.identity import short_company
from pipeline.plan.ids import parse_subject
from pipeline.plan.model import Change, Plan, Version, canonical_json, plan_from_dict
from pipeline.store import schema
from pipeline.store.audit import AuditLog
from pipeline.store.database import _insert_ignore, _json, _unknown_plan, utc_iso

# How often add_version recomputes its number after losing a race on the UNIQUE (plan_id, number) key
# (a backstop: writers already take turns on the plan's row).
_RETRIES = 5


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


class Versions(AuditLog):
    """The versions table, append-only: a version once written is never changed."""

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
        # Numbered (and chained to its parent) by _insert_next, once it knows the last version.
        draft = VersionRecord(
            plan_id=plan.id, number=0, plan_json=plan_json, changes=tuple(c.to_dict() for c in changes),
            author=author, reason=reason, message_id=message_id, created=at, hash=digest, parent_hash=None,
        )
        with self._write() as conn:
            if _insert_ignore(conn, schema.plans, {"id": plan.id, "state": "open", "created": at}):
                self._audit(conn, at, plan.id, "plan created", {})
            # Writers to one plan take turns (PostgreSQL: a row lock; SQLite's BEGIN IMMEDIATE already locks
            # the file), so a busy plan cannot starve a writer; the UNIQUE key (_insert_next) still has the last word.
            # NO KEY UPDATE (key_share): rows that merely reference the plan (messages, evidence) need not wait.
            conn.execute(
                select(schema.plans.c.id).where(schema.plans.c.id == plan.id).with_for_update(key_share=True)
            )
            record = _insert_next(conn, draft, expect_number)
            if record is not None:
                detail = {"number": record.number, "hash": digest, "author": author, "reason": reason,
                          "message_id": message_id}
                self._audit(conn, at, plan.id, "version added", detail)
        if record is None:
            raise StoreError(
                f"could not number a new version of plan {plan.id}: {_RETRIES} other writers got there first",
                hint="try again",
            )
        return Version(
            plan_id=plan.id,
            number=record.number,
            plan=plan,
            created=at,
            author=author,
            reason=reason,
            changes=changes,
            message_id=message_id,
            parent_hash=record.parent_hash,
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

    def plan_for_subject(self, subject: str) -> tuple[str, int] | None:
        """The plan and version a subject names ("Mutual Plan: <Prospect> and <Seller>", and in older releases
        "... (version N)"), if one does."""
        found = parse_subject(subject)
        if found is None:
            return None
        # Every plan's current version in one query, each read once (_parties): not a query and a parse per plan.
        v = schema.versions.c
        latest = select(v.plan_id, func.max(v.number).label("number")).group_by(v.plan_id).subquery()
        current = schema.versions.join(latest, (v.plan_id == latest.c.plan_id) & (v.number == latest.c.number))
        with self._read() as conn:
            rows = conn.execute(select(v.plan_id, v.number, v.plan_json).select_from(current)
                                .order_by(v.plan_id)).all()
        matches = [(row.plan_id, row.number) for row in rows
                   if found.names_plan(*_parties(row.plan_json))]
        # Two plans between the same companies cannot be told apart by subject: match neither.
        if len(matches) != 1:
            return None
        # Today's subjects name no version: a reply by subject alone answers the current one.
        plan_id, current = matches[0]
        return plan_id, found.version or current


# --- helpers ----------------------------------------------------------------------------------------


def _insert_next(conn: Connection, draft: VersionRecord, expect_number: int | None) -> VersionRecord | None:
    """Insert `draft` as its plan's next version and return it as stored; None when every try lost the race."""
    for _ in range(_RETRIES):
        last = conn.execute(
            select(schema.versions.c.number, schema.versions.c.hash)
            .where(schema.versions.c.plan_id == draft.plan_id)
            .order_by(schema.versions.c.number.desc())
            .limit(1)
        ).first()
        number = last.number + 1 if last else 1
        if expect_number is not None and number != expect_number:
            raise _conflict(draft.plan_id, number - 1, expect_number)
        record = replace(draft, number=number, parent_hash=last.hash if last else None)
        try:
            # A savepoint, so that losing the race leaves an outer transaction usable.
            with conn.begin_nested():
                conn.execute(insert(schema.versions).values(**_version_row(record)))
        except IntegrityError:
            if expect_number is not None:
                raise _conflict(draft.plan_id, number, expect_number) from None
            continue
        return record
    return None


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
def _parties(plan_json: str) -> tuple[tuple[str, str], str]:
    """((prospect company, its short name), seller company) of a version's JSON: what a subject names."""
    data = json.loads(plan_json)
    prospect = data["prospect"]
    short = prospect.get("short_name") or short_company(prospect["company"])
    return (prospect["company"], short), data["seller"]["company"]


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


