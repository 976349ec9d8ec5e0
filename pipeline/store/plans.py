"""Plans as a whole: which exist, the state each is in, their own options, and the lock writers take turns on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from pipeline.errors import StoreError
from pipeline.store import schema
from pipeline.store.audit import AuditLog
from pipeline.store.database import _dialect_insert, _unknown_plan, utc_iso

PLAN_STATES = ("open", "agreed", "declined", "closed")


class Plans(AuditLog):
    """The plans and plan_options tables (a plan's row is created with its first version)."""

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

    # --- plan options ---------------------------------------------------------------------------

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
