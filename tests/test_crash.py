"""The watcher killed with SIGKILL at every step and started again: every reply has one effect, every email goes once.

Each run of the watcher is a child process (forked, so it need not import everything again) that sets
MUTUALPLAN_CRASH_AT and dies there; the next run, without it, must finish the work. One test goes through the real
`mutualplan watch` command instead. The home with version 1 sent is made once and copied for each test.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.home import Home, init_home
from pipeline.loop.parts import CRASH_ENV, CRASH_POINTS
from pipeline.loop.service import Service, queue_plan
from pipeline.mailbox.maildir import MaildirMailbox
from tests.loop_support import (
    DANA,
    PLAN_ID,
    RAJ,
    SELLER,
    START,
    SUBJECT_V2,
    V1,
    V2,
    Clock,
    example_plan,
    parse,
    reply,
    settings_toml,
)
from tests.servers import PostgresServer

KILLED = -signal.SIGKILL
AGREED = "<plan.acme-northwind-2027.v2.agreed@northwind.example>"
CHANGE = "<r1.dana@acme.example>"


@pytest.fixture(scope="module")
def sent_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash") / "sent"
    home = init_home(root)
    home.settings_path.write_text(settings_toml("auto"), encoding="utf-8")
    clock = Clock()
    with Service.open(home, clock) as watcher:
        watcher.store.add_version(example_plan(), author=SELLER, reason="created", created=START)
        queue_plan(watcher.store, PLAN_ID, at=clock())
        assert watcher.poll().sent == [V1]
    return root


class Home2:
    """A copy of the sent home, the clock the children run on, and what is in its mailbox."""

    def __init__(self, root: Path, changes: str) -> None:
        self.root = root
        self.home = Home(root)
        self.home.settings_path.write_text(settings_toml(changes), encoding="utf-8")
        self.clock = Clock()
        self.clock.advance(days=1)
        self.mail = MaildirMailbox(self.home.mail_dir)

    def run(self, crash_at: str | None = None, action: str = "poll") -> int | None:
        """One watcher run in a child process; its exit code (-SIGKILL when it crashed as told)."""
        self.clock.advance(minutes=5)
        child = multiprocessing.get_context("fork").Process(
            target=_child, args=(str(self.root), self.clock(), crash_at, action)
        )
        child.start()
        child.join(120)
        return child.exitcode

    def sent_ids(self) -> Counter[str]:
        return Counter(parse(raw)["Message-ID"] for raw in self.mail.messages("Sent"))

    def folder_ids(self, folder: str) -> list[str]:
        return [parse(raw)["Message-ID"] for raw in self.mail.messages(folder)]

    def outbox_files(self) -> Counter[str]:
        return Counter(parse(p.read_bytes())["Message-ID"] for p in (self.root / "outbox").glob("*.eml"))

    def spool_left(self) -> list[str]:
        return sorted(p.name for d in ("queue", "shunt", "bad") for p in (self.home.spool_dir / d).iterdir())


def _child(root: str, now: datetime, crash_at: str | None, action: str) -> None:
    if crash_at:
        os.environ[CRASH_ENV] = crash_at
    else:
        os.environ.pop(CRASH_ENV, None)
    with Service.open(Home(Path(root)), lambda: now) as watcher:
        if action == "approve":
            watcher.approve(PLAN_ID)
        else:
            report = watcher.poll()
            if report.errors:
                sys.exit(f"errors: {report.errors}")


@pytest.fixture
def make_home(sent_home: Path, tmp_path: Path) -> Callable[[str], Home2]:
    def make(changes: str = "auto") -> Home2:
        root = tmp_path / f"home-{changes}"
        shutil.copytree(sent_home, root)
        return Home2(root, changes)

    return make


def deliver_change(h: Home2) -> None:
    h.mail.deliver(reply(DANA, "Hi Jordan,\n\nPlease move the pilot to March 8.\n\nDana", message_id=CHANGE,
                         when=h.clock()))


def deliver_confirmations(h: Home2) -> None:
    for who in (DANA, RAJ):
        h.mail.deliver(reply(who, "Confirmed.", message_id=f"<c2.{who}>", when=h.clock(), in_reply_to=V2,
                             references=[V1, CHANGE, V2], subject=SUBJECT_V2))


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_at_each_step_replays_it_once(make_home: Callable[[str], Home2], point: str) -> None:
    h = make_home("auto")

    # A change request: version 2 goes to the prospect and the suggested ask to the seller, each once.
    deliver_change(h)
    assert h.run(crash_at=point) == KILLED
    assert h.run() == 0
    assert h.run() == 0  # and a third run finds nothing left to do
    with h.home.open_store() as store:
        assert [v.number for v in store.versions(PLAN_ID)] == [1, 2]
        assert store.message(CHANGE.strip("<>")).disposition == "applied"
        outbox = {e.message_id: e.state for e in store.outbox_entries(PLAN_ID)}
    assert set(outbox.values()) == {"sent"} and len(outbox) == 3  # version 1, version 2, the ask
    assert h.sent_ids() == Counter(outbox.keys())  # each in Sent once
    assert h.outbox_files() == Counter(outbox.keys())  # each delivered once
    assert h.folder_ids("Processed") == [CHANGE] and h.folder_ids("Inbox") == []
    assert h.spool_left() == []

    # Both confirm version 2: one confirmation each, and the agreed email once.
    deliver_confirmations(h)
    assert h.run(crash_at=point) == KILLED
    assert h.run() == 0
    with h.home.open_store() as store:
        assert store.confirmations(PLAN_ID, 2).keys() == {DANA, RAJ}
        assert store.plan_state(PLAN_ID) == "agreed"
        outbox = {e.message_id: e.state for e in store.outbox_entries(PLAN_ID)}
        assert [m.disposition for m in store.messages(PLAN_ID)].count("agreed") == 1
    assert outbox[AGREED] == "sent" and len(outbox) == 4
    assert h.sent_ids() == Counter(outbox.keys())
    assert h.outbox_files() == Counter(outbox.keys())
    assert h.spool_left() == []


@pytest.mark.parametrize("point", ["rendered", "sent"])
def test_a_crash_while_drafting_or_approving_leaves_one_draft_and_sends_it_once(
    make_home: Callable[[str], Home2], point: str
) -> None:
    h = make_home("review")
    deliver_change(h)
    assert h.run(crash_at=point) == KILLED
    assert h.run() == 0
    assert h.folder_ids("Drafts") == [V2]
    with h.home.open_store() as store:
        assert store.outbox_entry(V2).state == "drafted"

    assert h.run(crash_at=point, action="approve") == KILLED
    assert h.run() == 0
    if point == "rendered":
        # Killed before anything left: the draft still waits for the seller, and approving again sends it.
        assert h.folder_ids("Drafts") == [V2] and V2 not in h.sent_ids()
        assert h.run(action="approve") == 0
    assert h.sent_ids() == Counter([V1, V2])
    assert h.outbox_files() == Counter([V1, V2])
    assert h.folder_ids("Drafts") == []
    with h.home.open_store() as store:
        assert store.outbox_entry(V2).state == "sent"


def test_the_watch_command_killed_after_sending_does_not_send_again(make_home: Callable[[str], Home2]) -> None:
    h = make_home("auto")
    deliver_change(h)
    command = [sys.executable, "-m", "pipeline", "--home", str(h.root), "watch", "--once", "--json"]
    env = {**os.environ, CRASH_ENV: "sent"}
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == KILLED, killed.stderr
    assert h.run() == 0  # started again (forked, to spare a second start of the command)
    with h.home.open_store() as store:
        outbox = {e.message_id: e.state for e in store.outbox_entries(PLAN_ID)}
    assert set(outbox.values()) == {"sent"} and len(outbox) == 3
    assert h.sent_ids() == Counter(outbox.keys())


def test_a_message_that_fails_three_times_is_shunted_and_the_rest_go_on(
    make_home: Callable[[str], Home2], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.loop.receive as receive_module
    from pipeline.replies.message import Incoming

    class Unreadable:
        """Incoming, except that reading the poison message raises (the watcher reads every message with it)."""

        @staticmethod
        def from_bytes(raw: bytes, **kwargs: object) -> Incoming:
            if b"<poison@acme.example>" in raw:
                raise RuntimeError("cannot read this one")
            return Incoming.from_bytes(raw, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(receive_module, "Incoming", Unreadable)
    h = make_home("auto")
    h.mail.deliver(reply(RAJ, "Confirmed, with one question.", message_id="<poison@acme.example>", when=h.clock()))
    h.mail.deliver(reply(DANA, "Confirmed.", message_id="<c1.dana@acme.example>", when=h.clock()))
    reports = []
    for _ in range(4):
        h.clock.advance(minutes=5)
        with Service.open(h.home, h.clock) as watcher:
            reports.append(watcher.poll())
    assert [r.fetched for r in reports] == [2, 0, 0, 0]
    assert [len(r.shunted) for r in reports] == [0, 0, 1, 0]
    assert all("cannot read this one" in r.errors[0] for r in reports[:3]) and reports[3].errors == []
    with h.home.open_store() as store:
        assert store.confirmations(PLAN_ID, 1).keys() == {DANA}  # the other message went on at once
        assert store.message("poison@acme.example") is None
        assert [e.event for e in store.audit_log() if e.event == "message.shunted"] == ["message.shunted"]
    shunt = h.home.spool_dir / "shunt"
    (meta_path,) = shunt.glob("*.json")
    meta = json.loads(meta_path.read_text())
    assert meta["attempts"] == 3 and all("RuntimeError: cannot read this one" in e for e in meta["errors"])
    assert parse(meta_path.with_suffix(".eml").read_bytes())["Message-ID"] == "<poison@acme.example>"
    # Out of the Inbox, kept for the seller: it is not fetched and failed over again at every poll.
    assert h.folder_ids("Inbox") == [] and h.folder_ids("Held") == ["<poison@acme.example>"]
    assert not list((h.home.spool_dir / "queue").iterdir())


def test_two_watchers_on_one_home_handle_each_message_once(make_home: Callable[[str], Home2]) -> None:
    two_watchers_at_once(make_home("auto"))


def test_two_watchers_on_one_home_with_the_store_in_postgresql(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """PostgreSQL lets the two commit side by side where SQLite makes them take turns: still one effect each."""
    url = postgres_server.create_database(f"crash_{uuid.uuid4().hex[:8]}")
    root = tmp_path / "pg"
    home = init_home(root, env={"MUTUALPLAN_STORE_URL": url})
    home.settings_path.write_text(settings_toml("auto") + f'\n[store]\nurl = "{url}"\n', encoding="utf-8")
    clock = Clock()
    with Service.open(home, clock) as watcher:
        watcher.store.add_version(example_plan(), author=SELLER, reason="created", created=START)
        queue_plan(watcher.store, PLAN_ID, at=clock())
        assert watcher.poll().sent == [V1]
    h = Home2(root, "auto")
    h.home.settings_path.write_text(settings_toml("auto") + f'\n[store]\nurl = "{url}"\n', encoding="utf-8")
    two_watchers_at_once(h)


def two_watchers_at_once(h: Home2) -> None:
    deliver_change(h)
    h.mail.deliver(reply(RAJ, "Thanks, I will read it tonight.", message_id="<m1.raj@acme.example>",
                         when=h.clock()))
    for _round in range(2):
        h.clock.advance(minutes=5)
        context = multiprocessing.get_context("fork")
        children = [context.Process(target=_child, args=(str(h.root), h.clock(), None, "poll")) for _ in range(2)]
        for child in children:
            child.start()
        for child in children:
            child.join(120)
        assert [c.exitcode for c in children] == [0, 0]
        if _round == 0:
            deliver_confirmations(h)
    with h.home.open_store() as store:
        assert [v.number for v in store.versions(PLAN_ID)] == [1, 2]
        assert store.confirmations(PLAN_ID, 2).keys() == {DANA, RAJ}
        outbox = {e.message_id: e.state for e in store.outbox_entries(PLAN_ID)}
        dispositions = Counter(m.disposition for m in store.messages(PLAN_ID))
    # Version 1, version 2, the ask, the notice about Raj's comment, the agreed email: each sent once.
    assert set(outbox.values()) == {"sent"} and len(outbox) == 5
    assert h.sent_ids() == Counter(outbox.keys())
    assert h.outbox_files() == Counter(outbox.keys())
    assert dispositions == Counter({"applied": 1, "noted": 1, "confirmed": 1, "agreed": 1})
    assert sorted(h.folder_ids("Processed")) == sorted([CHANGE, "<m1.raj@acme.example>", f"<c2.{DANA}>",
                                                        f"<c2.{RAJ}>"])
    assert h.spool_left() == []
