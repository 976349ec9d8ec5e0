"""The audit log: one append-only entry per state change, written in the transaction that made the change."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from pipeline.store import schema
from pipeline.store.database import Database, _json, utc_iso


@dataclass(frozen=True)
class AuditEntry:
    """One state change: when, to which plan, what happened, and the details."""

    at: str
    plan_id: str | None
    event: str
    detail: dict[str, Any] = field(default_factory=dict)


class AuditLog(Database):
    """The audit table; every table family that changes something builds on it to audit its own changes."""

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
