"""The team's shared tables in PostgreSQL: the plan id registry, each mailbox's health, and the archive's bytes.

Each seller's plans live in a schema of their own (Store.open(url, scope)); what the whole team shares lives in the
mutualplan_team schema. The archive is here too, not on a disk: a worker on any machine reads the letters and
messages another kept, and a fetched message's bytes are committed before its mailbox is acknowledged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text

from pipeline.archive import Archive, sha256
from pipeline.errors import ArchiveError, StoreError
from pipeline.store import Store, utc_iso
from pipeline.store.database import _engine, _first_line, scoped_engine

SCHEMA = "mutualplan_team"
_LOCK = 0x6D707465  # the advisory lock under which one process creates the team's tables
_TABLES = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.plan_ids (
        plan_id TEXT PRIMARY KEY,  -- one plan id in the whole team
        scope TEXT NOT NULL         -- the seller's schema that holds it
    )""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.mailboxes (
        seller TEXT PRIMARY KEY,
        state TEXT NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'failing')),
        failures INTEGER NOT NULL DEFAULT 0,
        last_poll TEXT,
        next_poll TEXT,
        last_error TEXT
    )""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.blobs (
        sha256 TEXT PRIMARY KEY,
        data BYTEA NOT NULL
    )""",
)
# What this process has made or upgraded already (the team's tables; each seller's schema).
_READY: set[str] = set()
_READY_SCOPES: set[tuple[str, str]] = set()
BACKOFF_BASE = 60  # seconds; doubled on each failed poll in a row
BACKOFF_MAX = 3600


@dataclass(frozen=True)
class MailboxHealth:
    """How a seller's mailbox fared on its last polls."""

    seller: str
    state: str
    failures: int
    last_poll: str | None
    next_poll: str | None
    last_error: str | None


class TeamStore:
    """The team's shared tables, over one connection pool."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _engine(url)
        if url in _READY:
            return  # made already by this process: a poll job need not take the team-wide lock again
        with self._conn() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK})")
            for sql in _TABLES:
                conn.exec_driver_sql(sql)
        _READY.add(url)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _conn(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except Exception as exc:
            if hasattr(exc, "orig"):
                raise StoreError(f"the team store cannot be used: {_first_line(exc.orig)}",
                                 hint="check that PostgreSQL is reachable at [store] url") from exc
            raise

    def seller_store(self, scope: str) -> Store:
        """One seller's store: their own schema, over the process's shared pool; made and brought up to date on its
        first use in this process (a release upgrades at restart)."""
        store = Store(scoped_engine(self.url, scope), shared=True)
        if (self.url, scope) not in _READY_SCOPES:
            store._migrate(scope)
            _READY_SCOPES.add((self.url, scope))
        return store

    # --- mailbox health -------------------------------------------------------------------------------------

    def poll_done(self, seller: str, at: datetime, interval: int, error: str | None) -> MailboxHealth:
        """Record a poll: a failure backs that mailbox off (doubling, to an hour), a success resets it."""
        before = self.health(seller)
        failures = (before.failures + 1) if error else 0
        wait = min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX) if failures else interval
        health = MailboxHealth(seller=seller, state="failing" if error else "ok", failures=failures,
                               last_poll=utc_iso(at), next_poll=utc_iso(at + timedelta(seconds=max(wait, interval))),
                               last_error=error)
        row = asdict(health)
        with self._conn() as conn:
            conn.execute(text(
                f"INSERT INTO {SCHEMA}.mailboxes (seller, state, failures, last_poll, next_poll, last_error) "
                "VALUES (:seller, :state, :failures, :last_poll, :next_poll, :last_error) "
                "ON CONFLICT (seller) DO UPDATE SET state = :state, failures = :failures, last_poll = :last_poll, "
                "next_poll = :next_poll, last_error = :last_error"), row)
        return health

    def health(self, seller: str) -> MailboxHealth:
        """The mailbox's record; a mailbox never polled is healthy and due."""
        with self._conn() as conn:
            row = conn.execute(text(f"SELECT seller, state, failures, last_poll, next_poll, last_error "
                                    f"FROM {SCHEMA}.mailboxes WHERE seller = :s"), {"s": seller}).first()
        if row is None:
            return MailboxHealth(seller, "ok", 0, None, None, None)
        return MailboxHealth(*row)

    def not_due(self, now: datetime) -> set[str]:
        """The mailboxes whose next poll is still to come, in one query (the schedule asks every few seconds)."""
        with self._conn() as conn:
            rows = conn.execute(text(f"SELECT seller FROM {SCHEMA}.mailboxes WHERE next_poll > :now"),
                                {"now": utc_iso(now)}).all()
        return {str(r[0]) for r in rows}

    def due(self, seller: str, now: datetime) -> bool:
        """Whether the mailbox's next poll has come (a backed-off mailbox waits its turn)."""
        nxt = self.health(seller).next_poll
        return nxt is None or nxt <= utc_iso(now)

    def live_workers(self, within: float) -> int:
        """Worker processes whose heartbeat (procrastinate's) is at most `within` seconds old; 0 before any ran."""
        with self._conn() as conn:
            if conn.execute(text("SELECT to_regclass('procrastinate_workers')")).scalar() is None:
                return 0
            return int(conn.execute(text(
                "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - make_interval(secs => :s)"),
                {"s": within}).scalar() or 0)

    # --- the archive's bytes --------------------------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        digest = sha256(data)
        with self._conn() as conn:
            conn.execute(text(f"INSERT INTO {SCHEMA}.blobs (sha256, data) VALUES (:d, :b) "
                              "ON CONFLICT (sha256) DO NOTHING"), {"d": digest, "b": data})
        return digest

    def get_blob(self, digest: str) -> bytes | None:
        with self._conn() as conn:
            row = conn.execute(text(f"SELECT data FROM {SCHEMA}.blobs WHERE sha256 = :d"), {"d": digest}).first()
        return bytes(row[0]) if row else None

    def plan_owner(self, plan_id: str) -> str | None:
        """The scope (seller schema) that holds a plan id, if any."""
        with self._conn() as conn:
            row = conn.execute(text(f"SELECT scope FROM {SCHEMA}.plan_ids WHERE plan_id = :p"), {"p": plan_id}).first()
        return str(row[0]) if row else None


class TeamArchive(Archive):
    """The archive in the team's PostgreSQL: every worker, on any machine, reads what another kept."""

    def __init__(self, team: TeamStore) -> None:
        super().__init__("postgresql:blobs")
        self.team = team

    def has(self, digest: str) -> bool:
        self.path(digest)  # checks it is a SHA-256
        return self.team.get_blob(digest) is not None

    def put(self, data: bytes) -> str:
        # Committed at once, on its own: the bytes are durable before the record that names them.
        return self.team.put_blob(data)

    def get(self, digest: str) -> bytes:
        data = self.team.get_blob(digest)
        if data is None:
            raise ArchiveError(f"the team archive has no file {digest}")
        if sha256(data) != digest:
            raise ArchiveError(f"archived file {digest} has been altered: its bytes no longer match their SHA-256")
        return data
