"""The store's database: the engine for SQLite or PostgreSQL, its transactions, migrations on open, and the SQL
helpers every table family shares."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import Connection, Engine, create_engine, event, func, insert, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from pipeline.errors import StorageFull, StoreError
from pipeline.store import schema

# Any fixed number: the PostgreSQL advisory lock that lets one process at a time migrate a database.
_MIGRATION_LOCK = 0x6D706C6E


def utc_iso(when: datetime) -> str:
    """The stored form of a time: ISO 8601 in UTC to the second, with a Z; a naive time is a bug, not a guess.

    One fixed width, so that the text sorts as the times do.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"the store needs timezone-aware times, got {when!r}")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Database:
    """The engine, its connections and transactions, and the schema's upgrade on open: what every table family
    of the store builds on."""

    def __init__(self, engine: Engine, *, shared: bool = False) -> None:
        self.engine = engine
        self.where = engine.url.render_as_string(hide_password=True)
        self._local = threading.local()
        self._shared = shared  # a view of a pool other stores use: closing it releases nothing

    # --- opening --------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, scope: str | None = None) -> Self:
        """Connect to `url` (sqlite:///PATH or postgresql+psycopg://...) and bring its schema up to date.

        `scope` (PostgreSQL only) is a team seller's schema: every table is looked up there, so one seller's
        store never reads another's plans, messages or cursors."""
        store = cls(_engine(url, scope))
        store._migrate(scope)
        return store

    def close(self) -> None:
        """Release the connections (those of a shared pool go back to it for the next store)."""
        if not self._shared:
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema this database is at."""
        with self._read() as conn:
            return _schema_version(conn)

    def _migrate(self, scope: str | None = None) -> None:
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            # A team's workers open every seller's store: one already up to date needs no database-wide lock.
            with self._errors(), self.engine.connect() as conn:
                if _schema_version(conn) == schema.LATEST:
                    return
        with self._errors(), self.engine.begin() as conn:
            if dialect == "postgresql":
                # Two processes opening a fresh database at once: one migrates, the other waits, then sees it done.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                if scope:
                    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{scope}"')
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
            if _disk_full(exc):
                # The machine's trouble, not the data's: the transaction rolled back and is retried once there is room.
                raise StorageFull(f"the disk is full: the database at {self.where} cannot grow",
                                  hint="free some space; nothing was written, and the next try carries on") from exc
            raise StoreError(
                f"the database at {self.where} cannot be used: {_first_line(exc.orig)}",
                hint="check that the database is reachable (for SQLite, that its folder exists and is writable) "
                "and not locked by a stuck process, then try again",
            ) from exc
        except DBAPIError as exc:
            raise StoreError(f"the database at {self.where} refused a change: {_first_line(exc.orig)}") from exc


# --- helpers ----------------------------------------------------------------------------------------


def _disk_full(exc: OperationalError) -> bool:
    """Whether the database refused a write for want of space (SQLite's SQLITE_FULL, PostgreSQL's 53100)."""
    return "disk is full" in str(exc.orig) or getattr(exc.orig, "sqlstate", None) == "53100"


# One pool per database for the seller stores of a team's worker: a job opens a store per poll, and a connection
# (a PostgreSQL backend forked) per job would cost more than the poll. Each store is a view of it with its scope.
_pools: dict[str, Engine] = {}
_pools_lock = threading.Lock()
_SCOPE = "mutualplan_scope"


def scoped_engine(url: str, scope: str) -> Engine:
    """A view of the process's pool on `url` whose connections search `scope` (a team seller's schema) first."""
    with _pools_lock:
        base = _pools.get(url)
        if base is None:
            base = _engine(url)
            if base.dialect.name != "postgresql":
                raise StoreError("a seller's scope needs a PostgreSQL store", hint="a team runs on PostgreSQL")
            event.listen(base, "engine_connect", _apply_scope)
            _pools[url] = base
    return base.execution_options(**{_SCOPE: scope})


def _apply_scope(conn: Connection) -> None:
    """Point a pooled connection at the store's scope when it served another one last."""
    scope = conn.get_execution_options().get(_SCOPE)
    pooled = conn.connection
    if pooled.info.get(_SCOPE) == scope:
        return
    raw = pooled.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        # set_config takes the name as a value, so a scope is never spliced into SQL; the session setting outlives
        # this transaction, which commits before the store's own begins.
        cursor.execute("SELECT set_config('search_path', %s, false)", (scope or '"$user", public',))
    finally:
        cursor.close()
    raw.commit()
    pooled.info[_SCOPE] = scope


def _engine(url: str, scope: str | None = None) -> Engine:
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
            # A scope is the schema searched first: the same unqualified SQL then reads one seller's tables.
            args = {"options": f"-c search_path={scope}"} if scope else {}
            return create_engine(parsed, pool_pre_ping=True, connect_args=args)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise StoreError(f"cannot use {parsed.drivername}: {exc}", hint="install psycopg[binary]") from None
    if scope:
        raise StoreError("a seller's scope needs a PostgreSQL store", hint="a team runs on PostgreSQL")
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


def _unknown_plan(plan_id: str) -> StoreError:
    return StoreError(f"no plan {plan_id!r} in the store", hint="add it first with `mutualplan add PLAN.md`")


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc and str(exc).strip() else type(exc).__name__
