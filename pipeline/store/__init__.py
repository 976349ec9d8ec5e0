"""Plans, their immutable versions, messages seen, the audit log and mailbox sync state, in SQLite or PostgreSQL.

Every time comes from the caller (no clock here), every write is one transaction, and several calls can be made
one atomic commit with `with store.transaction():` (a reply, the version it makes and its audit together).

One module per family of tables, each a mixin over the Database that owns the engine; Store is all of them.
"""

from __future__ import annotations

from pipeline.store.audit import AuditEntry
from pipeline.store.authentication import Authentication, AuthRecord
from pipeline.store.cursors import MailboxCursors
from pipeline.store.database import utc_iso
from pipeline.store.messages import EVIDENCE_KINDS, SELLER_MARK, Confirmation, Evidence, MessageRecord, Messages
from pipeline.store.plans import PLAN_STATES, Plans
from pipeline.store.queue import OutboxEntry, Queue
from pipeline.store.versions import VersionConflict, VersionRecord, Versions


class Store(Versions, Plans, Messages, Queue, MailboxCursors, Authentication):
    """The pipeline's database; open it with Store.open(url), which creates or upgrades the schema."""


__all__ = [
    "EVIDENCE_KINDS",
    "PLAN_STATES",
    "SELLER_MARK",
    "AuditEntry",
    "AuthRecord",
    "Confirmation",
    "Evidence",
    "MessageRecord",
    "OutboxEntry",
    "Store",
    "VersionConflict",
    "VersionRecord",
    "utc_iso",
]
