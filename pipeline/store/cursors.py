"""Mailbox cursors: each backend's saved place (the Cursors protocol of pipeline.mailbox.base)."""

from __future__ import annotations

from sqlalchemy import select

from pipeline.store import schema
from pipeline.store.database import Database, _dialect_insert


class MailboxCursors(Database):
    """Where each mailbox backend keeps its place (the `state` table): one value per name, replaced on each save."""

    def cursor(self, name: str) -> str | None:
        """A backend's saved place (an IMAP UID, a sync token), or None."""
        with self._read() as conn:
            return conn.execute(select(schema.state.c.value).where(schema.state.c.name == name)).scalar()

    def set_cursor(self, name: str, value: str) -> None:
        """Save a backend's place, replacing the old one."""
        with self._write() as conn:
            stmt = _dialect_insert(conn)(schema.state).values(name=name, value=value)
            conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"value": value}))
