"""The store on a real SQLite file and a real PostgreSQL server: versions, messages, audit, state, migrations."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from pipeline.errors import StoreError
from pipeline.mailbox.base import Cursors
from pipeline.plan.model import (
    Change,
    Contact,
    Milestone,
    Plan,
    Prospect,
    Section,
    Seller,
    canonical_json,
    plan_hash,
)
from pipeline.store import Store, VersionConflict, schema

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
PLAN_ID = "acme-northwind-2027"


def make_plan(note: str = "Dana to confirm the pilot data set by Friday.", plan_id: str = PLAN_ID) -> Plan:
    """A small plan; `note` (the call to action) makes each version different."""
    return Plan(
        id=plan_id,
        seller=Seller("Northwind Analytics", "Jordan Lee", "Account Executive", "jordan.lee@northwind.example"),
        prospect=Prospect(
            "Acme Corp",
            ("200 Harbor Way", "Portland, OR 97201"),
            (
                Contact("Dana Whitfield", "dana.whitfield@acme.example", "VP Operations", "champion", True),
                Contact("Raj Patel", "raj.patel@acme.example", "CFO", "decision-maker", True),
            ),
        ),
        target=date(2027, 3, 31),
        timezone="America/Los_Angeles",
        sections=(Section("Call to action", "cta", note),),
        milestones=(
            Milestone("M1", "Discovery workshop", "Joint", "T-60d"),
            Milestone("M2", "Pilot on Q4 data", "Acme (Dana)", "T-30d"),
            Milestone("M3", "Signed order form / PO", "Acme (Raj Patel)", "T"),
        ),
        next_number=4,
    )


# --- the two databases ----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh schema in the test PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mutualplan.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    try:
        # Every connection of this URL sees only the new schema.
        yield make_url(base).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    with Store.open(url) as opened:
        yield opened


# --- versions ----------------------------------------------------------------------------------------


def test_versions_are_numbered_chained_and_read_back(store: Store) -> None:
    plans = [make_plan(f"note {i}") for i in range(3)]
    moved = (Change(op="move", milestone="M2", due="2027-03-03"), Change(op="remove", milestone="M1"))
    v1 = store.add_version(plans[0], author="jordan.lee@northwind.example", reason="created", created=T0)
    v2 = store.add_version(
        plans[1],
        author="dana.whitfield@acme.example",
        reason="reply",
        changes=moved,
        message_id="<r1@acme.example>",
        created=T0 + timedelta(days=1),
    )
    v3 = store.add_version(plans[2], author="jordan.lee@northwind.example", reason="seller edit",
                           created=T0 + timedelta(days=2))

    assert [v1.number, v2.number, v3.number] == [1, 2, 3]
    assert v1.parent_hash is None
    assert v2.parent_hash == plan_hash(plans[0])
    assert v3.parent_hash == plan_hash(plans[1])

    stored = store.versions(PLAN_ID)
    assert [v.number for v in stored] == [1, 2, 3]
    assert [v.plan for v in stored] == plans
    assert stored[1].changes == moved
    assert stored[1].message_id == "<r1@acme.example>"
    assert stored[1].author == "dana.whitfield@acme.example"
    assert stored[1].reason == "reply"
    assert stored[1].created == "2027-01-05T09:00:00Z"
    assert stored[2].parent_hash == stored[1].hash

    records = store.version_records(PLAN_ID)
    # The stored hash is the SHA-256 of the stored canonical JSON, byte for byte.
    for record, plan in zip(records, plans, strict=True):
        assert record.plan_json == canonical_json(plan)
        assert record.hash == hashlib.sha256(record.plan_json.encode()).hexdigest() == plan_hash(plan)

    current = store.current(PLAN_ID)
    assert current is not None and current.number == 3 and current.plan == plans[2]
    assert store.version(PLAN_ID, 2).plan == plans[1]
    assert store.plan_ids() == [PLAN_ID]
    assert store.plan_state(PLAN_ID) == "open"


def test_unknown_plans_and_versions_are_named(store: Store) -> None:
    assert store.current("nope") is None
    assert store.versions("nope") == []
    with pytest.raises(StoreError, match="no plan 'nope'"):
        store.version("nope", 1)
    store.add_version(make_plan("a"), author="a@x", reason="created", created=T0)
    store.add_version(make_plan("b"), author="a@x", reason="edit", created=T0)
    with pytest.raises(StoreError, match=f"plan {PLAN_ID} has no version 7") as info:
        store.version(PLAN_ID, 7)
    assert info.value.hint == "its versions are 1 to 2"


def test_expect_number_refuses_a_taken_number_and_writes_nothing(store: Store) -> None:
    store.add_version(make_plan("v1"), author="a@x", reason="created", created=T0, expect_number=1)
    store.add_version(make_plan("v2"), author="b@x", reason="reply", created=T0, expect_number=2)
    audit_before = len(store.audit_log(PLAN_ID))

    with pytest.raises(VersionConflict, match="is at version 2: version 2 cannot be added"):
        store.add_version(make_plan("late"), author="c@x", reason="reply", created=T0, expect_number=2)
    with pytest.raises(VersionConflict):
        store.add_version(make_plan("early"), author="c@x", reason="reply", created=T0, expect_number=5)

    assert [v.plan.sections[0].body for v in store.versions(PLAN_ID)] == ["v1", "v2"]
    assert len(store.audit_log(PLAN_ID)) == audit_before


def test_the_database_itself_keeps_numbers_unique_and_versions_immutable(store: Store) -> None:
    store.add_version(make_plan(), author="a@x", reason="created", created=T0)
    row = {
        "plan_id": PLAN_ID, "number": 1, "plan_json": "{}", "changes_json": "[]", "author": "evil@x",
        "reason": "forged", "message_id": None, "created": "2027-01-01T00:00:00Z", "hash": "0" * 64,
        "parent_hash": None,
    }
    with store.engine.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(schema.versions.insert().values(**row))
    for sql in (
        f"UPDATE versions SET author = 'evil@x' WHERE plan_id = '{PLAN_ID}'",
        f"DELETE FROM versions WHERE plan_id = '{PLAN_ID}'",
        "UPDATE audit SET event = 'nothing happened'",
        "DELETE FROM audit",
    ):
        with store.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.exec_driver_sql(sql)
    assert store.version(PLAN_ID, 1).author == "a@x"
    assert [e.event for e in store.audit_log(PLAN_ID)] == ["plan created", "version added"]


def test_a_transaction_commits_everything_or_nothing(store: Store) -> None:
    store.add_version(make_plan("v1"), author="a@x", reason="created", created=T0)

    with pytest.raises(RuntimeError), store.transaction():
        assert store.record_message("<r1@acme.example>", raw_sha256="a" * 64, received=T0, plan_id=PLAN_ID)
        store.add_version(make_plan("v2"), author="dana@acme", reason="reply", created=T0,
                          message_id="<r1@acme.example>")
        # Inside the transaction, its own writes are visible.
        assert store.current(PLAN_ID).number == 2
        raise RuntimeError("crash before the commit")

    assert store.message("<r1@acme.example>") is None
    assert store.current(PLAN_ID).number == 1

    with store.transaction():
        assert store.record_message("<r1@acme.example>", raw_sha256="a" * 64, received=T0, plan_id=PLAN_ID)
        with store.transaction():  # a nested block joins the outer one
            store.add_version(make_plan("v2"), author="dana@acme", reason="reply", created=T0,
                              message_id="<r1@acme.example>")
    assert store.message("<r1@acme.example>").disposition == "received"
    assert store.current(PLAN_ID).message_id == "<r1@acme.example>"


# --- plans, messages, audit, sync state -----------------------------------------------------------


def test_plan_state_changes_are_audited(store: Store) -> None:
    store.add_version(make_plan(), author="a@x", reason="created", created=T0)
    assert store.set_plan_state(PLAN_ID, "agreed", at=T0 + timedelta(hours=1), detail={"by": "all confirmers"})
    assert not store.set_plan_state(PLAN_ID, "agreed", at=T0 + timedelta(hours=2))
    assert store.plan_state(PLAN_ID) == "agreed"
    entries = store.audit_log(PLAN_ID)
    assert [e.event for e in entries] == ["plan created", "version added", "state changed"]
    assert entries[-1].at == "2027-01-04T10:00:00Z"
    assert entries[-1].detail == {"from": "open", "to": "agreed", "by": "all confirmers"}
    with pytest.raises(StoreError, match="unknown plan state 'done'"):
        store.set_plan_state(PLAN_ID, "done", at=T0)
    with pytest.raises(StoreError, match="no plan 'other'"):
        store.set_plan_state("other", "closed", at=T0)


def test_a_message_is_recorded_once(store: Store) -> None:
    store.add_version(make_plan(), author="a@x", reason="created", created=T0)
    mid = "<CAF=abc@mail.gmail.com>"
    assert store.record_message(mid, raw_sha256="1" * 64, received=T0, plan_id=PLAN_ID, version=1)
    # The same Message-ID again, even on other bytes: no second effect; the caller can see the bytes differ.
    assert not store.record_message(mid, raw_sha256="2" * 64, received=T0 + timedelta(minutes=5))
    record = store.message(mid)
    assert record is not None
    assert (record.raw_sha256, record.plan_id, record.version, record.received) == (
        "1" * 64, PLAN_ID, 1, "2027-01-04T09:00:00Z"
    )

    store.set_disposition(mid, "applied", at=T0 + timedelta(minutes=1), reason="made version 2", version=2)
    record = store.message(mid)
    assert (record.disposition, record.reason, record.version, record.plan_id) == (
        "applied", "made version 2", 2, PLAN_ID
    )
    assert [m.message_id for m in store.messages(PLAN_ID)] == [mid]
    events = [(e.event, e.detail.get("message_id")) for e in store.audit_log(PLAN_ID)]
    assert events[-2:] == [("message recorded", mid), ("message settled", mid)]

    with pytest.raises(StoreError, match="no message <unknown@x> was recorded"):
        store.set_disposition("<unknown@x>", "held", at=T0)
    # A message that matched no plan is still recorded (and audited without a plan).
    assert store.record_message("<spam@x>", raw_sha256="3" * 64, received=T0, disposition="ignored")
    assert store.audit_log()[-1].plan_id is None


def test_evidence_is_noted_once_per_file(store: Store) -> None:
    store.add_version(make_plan(), author="a@x", reason="created", created=T0)
    letter, reply, follow_up = "a" * 64, "b" * 64, "c" * 64
    assert store.add_evidence(PLAN_ID, 1, letter, "letter", at=T0)
    assert store.add_evidence(PLAN_ID, 1, reply, "in", "<r1@acme.example>", at=T0 + timedelta(hours=2))
    assert store.add_evidence(PLAN_ID, None, follow_up, "out", "<f1@northwind.example>", at=T0 + timedelta(hours=1))
    # A replay after a crash notes nothing new.
    assert not store.add_evidence(PLAN_ID, 1, reply, "in", "<r1@acme.example>", at=T0 + timedelta(hours=3))

    assert [(e.version, e.kind, e.sha256) for e in store.evidence(PLAN_ID)] == [
        (None, "out", follow_up), (1, "letter", letter), (1, "in", reply)
    ]
    (only,) = store.evidence(PLAN_ID, "in")
    assert (only.message_id, only.at) == ("<r1@acme.example>", "2027-01-04T11:00:00Z")
    assert sum(e.event == "evidence kept" for e in store.audit_log(PLAN_ID)) == 3

    with pytest.raises(StoreError, match="unknown kind of evidence 'pdf'"):
        store.add_evidence(PLAN_ID, 1, letter, "pdf", at=T0)
    with pytest.raises(StoreError, match="no plan 'other'"):
        store.add_evidence("other", 1, letter, "letter", at=T0)
    assert store.has_plan(PLAN_ID) and not store.has_plan("other")


def test_audit_log_keeps_order_and_details(store: Store) -> None:
    store.audit("sent", at=T0, plan_id="p1", detail={"message_id": "<a@b>", "to": ["x@y"]})
    store.audit("watcher started", at=T0)
    store.audit("sent", at=T0, plan_id="p2")
    assert [(e.plan_id, e.event) for e in store.audit_log()] == [
        ("p1", "sent"), (None, "watcher started"), ("p2", "sent")
    ]
    assert store.audit_log("p1")[0].detail == {"message_id": "<a@b>", "to": ["x@y"]}


def test_sync_state_is_kept(store: Store) -> None:
    state: Cursors = store
    assert state.cursor("imap:INBOX:uidvalidity") is None
    state.set_cursor("imap:INBOX:uidvalidity", "1700000000")
    state.set_cursor("imap:INBOX:uidvalidity", "1700000001")
    state.set_cursor("graph:delta", "https://graph.example/delta?token=x")
    assert state.cursor("imap:INBOX:uidvalidity") == "1700000001"
    assert state.cursor("graph:delta") == "https://graph.example/delta?token=x"


def test_times_are_stored_in_utc_and_must_be_aware(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    version = store.add_version(make_plan(), author="a@x", reason="created", created=datetime(2027, 1, 4, 10, 0,
                                tzinfo=paris))
    assert version.created == "2027-01-04T09:00:00Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        store.add_version(make_plan("x"), author="a@x", reason="edit", created=datetime(2027, 1, 4))
    assert store.current(PLAN_ID).number == 1


# --- concurrency ------------------------------------------------------------------------------------


def _add_versions(url: str, writer: str, count: int, go) -> None:
    """One writer process: wait for the start signal, then add `count` versions as fast as it can."""
    with Store.open(url) as store:
        go.wait(30)
        for i in range(count):
            store.add_version(make_plan(f"{writer} {i}"), author=f"{writer}@x", reason=f"{writer}-{i}",
                              created=T0 + timedelta(seconds=i))


def _open_store(url: str, go) -> None:
    go.wait(30)
    Store.open(url).close()


def _run_processes(target, args_list) -> None:
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    processes = [context.Process(target=target, args=(*args, go)) for args in args_list]
    for p in processes:
        p.start()
    go.set()
    for p in processes:
        p.join(120)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def test_two_processes_adding_versions_at_once_never_share_a_number(url: str) -> None:
    count = 25
    Store.open(url).close()  # the schema exists before the race (opening races are the next test)
    _run_processes(_add_versions, [(url, "alpha", count), (url, "beta", count)])

    with Store.open(url) as store:
        versions = store.versions(PLAN_ID)
        assert [v.number for v in versions] == list(range(1, 2 * count + 1))
        reasons = sorted(v.reason for v in versions)
        assert reasons == sorted([f"alpha-{i}" for i in range(count)] + [f"beta-{i}" for i in range(count)])
        # Each writer's versions are in its own order, and the chain has no gap.
        for writer in ("alpha", "beta"):
            mine = [v.reason for v in versions if v.author == f"{writer}@x"]
            assert mine == [f"{writer}-{i}" for i in range(count)]
        for before, after in itertools.pairwise(versions):
            assert after.parent_hash == before.hash
        assert sum(e.event == "version added" for e in store.audit_log(PLAN_ID)) == 2 * count


def test_a_writer_that_skips_the_plan_lock_is_still_caught_by_the_unique_key(store: Store, url: str) -> None:
    if store.engine.dialect.name == "sqlite":
        pytest.skip("SQLite's write lock leaves no room for a second writer inside a transaction")
    store.add_version(make_plan("v1"), author="a@x", reason="created", created=T0)
    intruder = make_plan("written by hand")
    other = create_engine(url)
    fired = []
    take = [2]  # the number the intruder takes next

    @event.listens_for(store.engine, "before_cursor_execute")
    def take_the_number_first(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("INSERT INTO versions") and not fired:
            fired.append(statement)
            # Another connection, ignoring the plan lock, commits the number just before this insert runs.
            with other.begin() as c:
                c.execute(
                    schema.versions.insert().values(
                        plan_id=PLAN_ID,
                        number=take[0],
                        plan_json=canonical_json(intruder),
                        changes_json="[]",
                        author="hand@x",
                        reason="by hand",
                        created="2027-01-04T09:00:00Z",
                        hash=plan_hash(intruder),
                        parent_hash=None,  # (the chain is not what this test is about)
                    )
                )

    try:
        mine = store.add_version(make_plan("v2"), author="a@x", reason="edit", created=T0)
        assert fired and (mine.number, mine.parent_hash) == (3, plan_hash(intruder))
        # Insisting on a number: losing it to the intruder is a conflict, not a silent renumbering.
        fired.clear()
        take[0] = 4
        with pytest.raises(VersionConflict, match="is at version 4: version 4 cannot be added"):
            store.add_version(make_plan("v4"), author="a@x", reason="edit", created=T0, expect_number=4)
    finally:
        event.remove(store.engine, "before_cursor_execute", take_the_number_first)
        other.dispose()
    assert [v.author for v in store.versions(PLAN_ID)] == ["a@x", "hand@x", "a@x", "hand@x"]


def test_processes_opening_a_fresh_database_at_once_migrate_it_once(url: str) -> None:
    _run_processes(_open_store, [(url,)] * 3)
    with Store.open(url) as store, store.engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars().all() == list(
            range(1, schema.LATEST + 1)
        )


# --- schema and migrations ----------------------------------------------------------------------


# The first schema, as release 0.1 created it. Copied here by hand on purpose: it must never change.
V1_SQL = [
    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY)",
    """CREATE TABLE plans (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'agreed', 'declined', 'closed')),
        created TEXT NOT NULL)""",
    """CREATE TABLE versions (
        plan_id TEXT NOT NULL REFERENCES plans (id),
        number INTEGER NOT NULL CHECK (number >= 1),
        plan_json TEXT NOT NULL,
        changes_json TEXT NOT NULL,
        author TEXT NOT NULL,
        reason TEXT NOT NULL,
        message_id TEXT,
        created TEXT NOT NULL,
        hash TEXT NOT NULL,
        parent_hash TEXT,
        PRIMARY KEY (plan_id, number))""",
    """CREATE TABLE messages (
        message_id TEXT NOT NULL PRIMARY KEY,
        raw_sha256 TEXT NOT NULL,
        plan_id TEXT REFERENCES plans (id),
        version INTEGER,
        disposition TEXT NOT NULL,
        reason TEXT,
        received TEXT NOT NULL)""",
    "CREATE TABLE audit (id {serial}, at TEXT NOT NULL, plan_id TEXT, event TEXT NOT NULL, detail TEXT NOT NULL)",
    "CREATE INDEX audit_plan ON audit (plan_id, id)",
    "CREATE TABLE state (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
]
V1_TRIGGERS = {
    "sqlite": [
        f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} BEGIN SELECT RAISE(ABORT, '{t} are append-only'); END"
        for t in ("versions", "audit")
        for op in ("UPDATE", "DELETE")
    ],
    "postgresql": [
        "CREATE FUNCTION mutualplan_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' are append-only'; END $$",
        *(
            f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
            "FOR EACH ROW EXECUTE FUNCTION mutualplan_append_only()"
            for t in ("versions", "audit")
        ),
    ],
}
SERIAL = {"sqlite": "INTEGER PRIMARY KEY", "postgresql": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"}


def test_a_version_1_database_opens_in_this_release_with_its_data(url: str) -> None:
    v1_plan = make_plan("written by release 0.1")
    v2_plan = make_plan("the second version")
    engine = create_engine(url)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        for sql in [*V1_SQL, *V1_TRIGGERS[dialect]]:
            conn.exec_driver_sql(sql.replace("{serial}", SERIAL[dialect]))
        conn.execute(text("INSERT INTO schema_version (version) VALUES (1)"))
        conn.execute(text(f"INSERT INTO plans VALUES ('{PLAN_ID}', 'agreed', '2026-12-01T10:00:00Z')"))
        for number, plan, parent in ((1, v1_plan, None), (2, v2_plan, plan_hash(v1_plan))):
            conn.execute(
                text("INSERT INTO versions VALUES (:p, :n, :j, :c, :a, :r, :m, :t, :h, :ph)"),
                {
                    "p": PLAN_ID, "n": number, "j": canonical_json(plan),
                    "c": json.dumps([{"op": "retarget", "target": "2027-04-15"}] if number == 2 else []),
                    "a": "jordan.lee@northwind.example", "r": "created" if number == 1 else "reply",
                    "m": None if number == 1 else "<r1@acme.example>", "t": f"2026-12-0{number}T10:00:00Z",
                    "h": plan_hash(plan), "ph": parent,
                },
            )
        conn.execute(text(
            "INSERT INTO messages VALUES ('<r1@acme.example>', :s, :p, 1, 'applied', 'made version 2', "
            "'2026-12-02T09:59:00Z')"), {"s": "f" * 64, "p": PLAN_ID})
        conn.execute(text("INSERT INTO audit (at, plan_id, event, detail) VALUES "
                          "('2026-12-01T10:00:00Z', :p, 'plan created', '{}')"), {"p": PLAN_ID})
        conn.execute(text("INSERT INTO state VALUES ('imap:INBOX:uid', '42')"))
    engine.dispose()

    with Store.open(url) as store:
        assert store.schema_version == schema.LATEST
        versions = store.versions(PLAN_ID)
        assert [v.plan for v in versions] == [v1_plan, v2_plan]
        assert versions[1].changes == (Change(op="retarget", target="2027-04-15"),)
        assert versions[1].parent_hash == versions[0].hash
        assert store.plan_state(PLAN_ID) == "agreed"
        assert store.message("<r1@acme.example>").reason == "made version 2"
        assert store.audit_log(PLAN_ID)[0].event == "plan created"
        assert store.cursor("imap:INBOX:uid") == "42"
        # And it goes on from there, with what the newer schema added.
        v3 = store.add_version(make_plan("after the upgrade"), author="a@x", reason="edit", created=T0)
        assert (v3.number, v3.parent_hash) == (3, plan_hash(v2_plan))
        assert store.add_evidence(PLAN_ID, 3, "e" * 64, "letter", at=T0)
        assert [e.sha256 for e in store.evidence(PLAN_ID)] == ["e" * 64]
    engine = create_engine(url)
    with engine.connect() as conn:
        applied = conn.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
        assert applied == list(range(1, schema.LATEST + 1))
    engine.dispose()


def test_the_migrated_schema_matches_the_tables_the_store_queries(store: Store) -> None:
    reflected = inspect(store.engine)
    for table in schema.metadata.sorted_tables:
        columns = {c["name"] for c in reflected.get_columns(table.name)}
        assert columns == set(table.columns.keys()), table.name


def test_a_database_from_a_newer_release_is_refused(url: str) -> None:
    Store.open(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": schema.LATEST + 1})
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this release knows") as info:
        Store.open(url)
    assert "upgrade mutualplan" in (info.value.hint or "")


def test_bad_urls_are_explained(tmp_path) -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        Store.open("not a url")
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        Store.open("mysql://localhost/x")
    with pytest.raises(StoreError, match="cannot be used"):
        Store.open(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")


def test_a_schema_4_database_moves_both_queues_into_one(url: str) -> None:
    # Before schema 5, the plan's emails waited in `outbox` and the seller's own mail in `seller_mail`; what
    # waited in either must still go out, from the one queue, after the upgrade.
    engine = create_engine(url)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        for number in range(1, 5):
            for sql in schema.MIGRATIONS[number - 1](dialect):
                conn.exec_driver_sql(sql)
            conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": number})
        conn.execute(text(f"INSERT INTO plans VALUES ('{PLAN_ID}', 'open', '2026-12-01T10:00:00Z')"))
        conn.execute(text(
            "INSERT INTO outbox (message_id, plan_id, version, kind, mode, state, recipients, in_reply_to, refs, "
            "data, created, updated, attempts) VALUES ('<plan.x.v1@n.example>', :p, 1, 'plan', 'draft', 'drafted', "
            "'{\"to\": [\"dana@acme.example\"], \"cc\": []}', NULL, '[]', '{}', '2026-12-01T10:00:00Z', "
            "'2026-12-01T10:00:00Z', 1)"), {"p": PLAN_ID})
        conn.execute(text(
            "INSERT INTO seller_mail (message_id, kind, state, data, created, updated, attempts) VALUES "
            "('<mutualplan.digest.abc@n.example>', 'digest', 'pending', '{\"week\": \"2026-W49\"}', "
            "'2026-12-02T08:00:00Z', '2026-12-02T08:00:00Z', 0)"))
    engine.dispose()

    with Store.open(url) as store:
        assert store.schema_version == schema.LATEST
        plan_mail = store.outbox_entry("<plan.x.v1@n.example>")
        assert plan_mail is not None
        assert (plan_mail.plan_id, plan_mail.version, plan_mail.state, plan_mail.to) == (
            PLAN_ID, 1, "drafted", ("dana@acme.example",))
        [digest] = store.outbox_pending()
        assert (digest.message_id, digest.plan_id, digest.version, digest.kind, digest.data) == (
            "<mutualplan.digest.abc@n.example>", None, None, "digest", {"week": "2026-W49"})
        assert [e.message_id for e in store.outbox_drafted()] == ["<plan.x.v1@n.example>"]
        store.outbox_mark(digest.message_id, "sent", at=T0)
        assert store.outbox_pending() == []
