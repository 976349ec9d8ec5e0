"""Workers on procrastinate over a team on the real PostgreSQL: two workers share many mailboxes, a bad mailbox
backs off alone, and a worker killed in a send loses nothing and sends nothing twice."""

from __future__ import annotations

import email
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.mailbox.base import app_share, share_apps_over
from pipeline.team.parts import seller_service
from pipeline.team.settings import Team, add_seller, load_team
from pipeline.team.store import TeamStore
from pipeline.team.worker import HEARTBEAT, Runtime, defer_poll, open_sync, prepare, recover_stalled_now
from tests.loop_support import DANA, RAJ, reply
from tests.servers import free_ports
from tests.test_team_isolation import deliver, example, make_team

ROOT = Path(__file__).resolve().parent.parent
SELLERS = int(os.environ.get("MUTUALPLAN_TEAM_TEST_SELLERS", "20"))
_names = itertools.count()


@pytest.fixture
def url(tmp_path: Path, postgres_server: object) -> str:
    return postgres_server.create_database(f"wrk_{next(_names)}_{tmp_path.name[-8:].lower()}")  # type: ignore[attr-defined]


def plan_id(seller: str) -> str:
    return f"acme-{seller}-2027"


def sent_ids(root: Path, seller: str) -> Counter[str]:
    """Each Message-ID in the seller's Sent folder, with how many copies went out."""
    sent = root / "mail" / seller / "box" / ".Sent"
    files = [p for sub in ("new", "cur") for p in (sent / sub).glob("*")] if sent.exists() else []
    return Counter(str(email.message_from_bytes(p.read_bytes())["Message-ID"]) for p in files)


def start_sending(team: Team, root: Path, sellers: list[str]) -> None:
    """Each seller's plan sent, and both confirming contacts' replies waiting in the seller's Inbox."""
    team_store = TeamStore(team.store_url)
    when = datetime.now(UTC)
    for seller in sellers:
        with seller_service(team_store, team.seller(seller), root) as service:
            service.add_source(example(plan_id(seller)), file=f"{seller}.md")
            entry, _ = service.send_plan(plan_id(seller))
        for who in (DANA, RAJ):
            deliver(root, seller, who.split("@")[0], reply(who, "Confirmed - thanks.", in_reply_to=entry.message_id,
                                                          message_id=f"<{seller}.{who}>", when=when))
    team_store.close()


def workers(root: Path, count: int, env: dict[str, str] | None = None) -> list[subprocess.Popen[bytes]]:
    """`mutualplan worker --once` processes on the team, each with its own working folder (another machine)."""
    base = {**os.environ, "PYTHONPATH": str(ROOT), "MUTUALPLAN_STALLED_AFTER": "3", **(env or {})}
    return [subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "--once", "--concurrency", "2",
                              "--team", str(root / "team"), "--work-dir", str(root / f"w{n}")],
                             env=base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for n in range(count)]


def finish(procs: list[subprocess.Popen[bytes]], timeout: float = 240) -> list[tuple[int, str]]:
    return [(p.wait(timeout=timeout), (p.stdout.read() if p.stdout else b"").decode()[-3000:]) for p in procs]


def agreed(team: Team, seller: str) -> bool:
    with TeamStore(team.store_url).seller_store(team.seller(seller).scope) as store:
        return store.plan_state(plan_id(seller)) == "agreed"


@pytest.mark.slow
def test_two_workers_share_the_mailboxes_and_a_bad_one_backs_off_alone(url: str, tmp_path: Path) -> None:
    names = [f"s{n:02d}" for n in range(SELLERS)]
    team = make_team(tmp_path, url, {n: f"{n}@northwind.example" for n in names})
    (port,) = free_ports(1)  # nothing listens there: the mailbox cannot be reached
    add_seller(team.path, {"id": "bad", "seller": {"email": "bad@northwind.example"},
                           "mailbox": {"backend": "imap", "host": "127.0.0.1", "port": port, "security": "plain",
                                       "username": "bad", "password_env": "MP_BAD_PASSWORD", "timeout": 5}})
    # Credentials that are not there: the variable the settings name is not set where the workers run.
    add_seller(team.path, {"id": "unset", "seller": {"email": "unset@northwind.example"},
                           "mailbox": {"backend": "imap", "host": "127.0.0.1", "port": port, "security": "plain",
                                       "username": "unset", "password_env": "MP_UNSET_PASSWORD"}})
    team = load_team(team.path)
    start_sending(team, tmp_path, names)
    with open_sync(team):
        assert all(defer_poll(s.id) for s in team.active)
        assert not defer_poll("s00")  # one waiting poll per mailbox: the queueing lock
    results = finish(workers(tmp_path, 2, {"MP_BAD_PASSWORD": "x"}))
    assert [code for code, _ in results] == [0, 0], results
    not_agreed = [n for n in names if not agreed(team, n)]
    assert not_agreed == []
    for n in names:
        counts = sent_ids(tmp_path, n)
        assert counts[f"<plan.{plan_id(n)}.v1@northwind.example>"] == 1
        assert counts[f"<plan.{plan_id(n)}.v1.agreed@northwind.example>"] == 1, counts
    team_store = TeamStore(team.store_url)
    bad = team_store.health("bad")
    assert bad.state == "failing" and bad.failures == 1 and "fetching mail" in (bad.last_error or "")
    assert not team_store.due("bad", datetime.now(UTC))  # it waits out its back-off
    unset = team_store.health("unset")
    assert unset.state == "failing" and "$MP_UNSET_PASSWORD, which is not set" in (unset.last_error or "")
    assert all(team_store.health(n).state == "ok" for n in names)
    team_store.close()


@pytest.mark.slow
@pytest.mark.parametrize("point", ["spooled", "committed", "letters", "rendered", "sent"])
def test_a_worker_killed_in_a_job_loses_nothing_and_sends_nothing_twice(url: str, tmp_path: Path,
                                                                          point: str) -> None:
    team = make_team(tmp_path, url, {"jo": "jo@northwind.example", "sam": "sam@northwind.example"})
    start_sending(team, tmp_path, ["jo", "sam"])
    with open_sync(team):
        defer_poll("jo")
    # The first worker dies in jo's poll (a reply spooled, a reply's effects committed before the mailbox heard), in
    # its render (the letters kept, the send not yet queued) or in its send (the "agreed" email rendered and not
    # handed over, or handed over and the queue not yet told).
    [(code, out)] = finish(workers(tmp_path, 1, {"MUTUALPLAN_CRASH_AT": point}))
    assert code == -9, out
    agreed_id = "<plan.acme-jo-2027.v1.agreed@northwind.example>"
    assert sent_ids(tmp_path, "jo")[agreed_id] == (1 if point == "sent" else 0), sent_ids(tmp_path, "jo")
    time.sleep(4)  # the dead worker's heartbeat goes stale
    assert len(recover_stalled_now(team, after=3)) == 1
    with open_sync(team):
        defer_poll("sam")
    results = finish(workers(tmp_path, 2))
    assert [code for code, _ in results] == [0, 0], results
    assert agreed(team, "jo") and agreed(team, "sam")
    for seller in ("jo", "sam"):
        counts = sent_ids(tmp_path, seller)
        assert set(counts.values()) == {1}, counts  # the retried poll found the email in Sent: not sent again
        assert counts[f"<plan.acme-{seller}-2027.v1.agreed@northwind.example>"] == 1


@pytest.mark.slow
def test_a_running_worker_schedules_the_polls_and_sends_a_queued_plan(url: str, tmp_path: Path) -> None:
    team = make_team(tmp_path, url, {"jo": "jo@northwind.example", "sam": "sam@northwind.example"})
    start_sending(team, tmp_path, ["sam"])
    team_store = TeamStore(team.store_url)
    with seller_service(team_store, team.seller("jo"), tmp_path) as jo:
        jo.add_source(example(plan_id("jo")), file="jo.md")
    team_store.close()
    queued = CliRunner().invoke(main, ["team", "send", "jo", plan_id("jo"), "--json"],
                                env={"MUTUALPLAN_TEAM": str(tmp_path / "team")})
    assert queued.exit_code == 0, queued.output
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "--concurrency", "2", "--team",
                             str(tmp_path / "team")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (agreed(team, "sam") and sent_ids(tmp_path, "jo")):
            time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode()
    assert agreed(team, "sam"), out[-3000:]  # nobody queued sam's poll: the worker's schedule did
    assert sent_ids(tmp_path, "jo") == Counter({f"<plan.{plan_id('jo')}.v1@northwind.example>": 1})
    team_store = TeamStore(team.store_url)
    assert team_store.health("sam").state == "ok" and team_store.health("sam").next_poll
    team_store.close()


def restart_postgres(server: object) -> None:
    """Restart the cluster as an operator would (fast: open connections are cut), on the same port."""
    root = server.root  # type: ignore[attr-defined]
    # The new postmaster keeps any pipe it is given open: its output goes to the log, ours to nothing.
    subprocess.run(["runuser", "-u", "postgres", "--", str(server.bin_dir / "pg_ctl"),  # type: ignore[attr-defined]
                    "-D", str(root / "data"), "-l", str(root / "postgres.log"), "-m", "fast", "-w", "-t", "60",
                    "restart"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root,
                   timeout=90)


@pytest.mark.slow
def test_a_running_worker_survives_a_postgresql_restart(url: str, tmp_path: Path, postgres_server: object) -> None:
    team = make_team(tmp_path, url, {"jo": "jo@northwind.example", "sam": "sam@northwind.example"})
    start_sending(team, tmp_path, ["sam"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "--concurrency", "2", "--team",
                             str(tmp_path / "team")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not agreed(team, "sam"):
            time.sleep(1)
        assert agreed(team, "sam")
        restart_postgres(postgres_server)
        time.sleep(3)
        team_store = TeamStore(team.store_url)
        with seller_service(team_store, team.seller("jo"), tmp_path) as jo:
            jo.add_source(example(plan_id("jo")), file="jo.md")
        team_store.close()
        queued = CliRunner().invoke(main, ["team", "send", "jo", plan_id("jo")],
                                    env={"MUTUALPLAN_TEAM": str(tmp_path / "team")})
        assert queued.exit_code == 0, queued.output
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not sent_ids(tmp_path, "jo"):
            time.sleep(1)
        assert proc.poll() is None, "the worker stopped when PostgreSQL restarted"
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode()
    assert sent_ids(tmp_path, "jo") == Counter({f"<plan.{plan_id('jo')}.v1@northwind.example>": 1}), out[-3000:]


def test_a_poll_that_breaks_unexpectedly_backs_its_mailbox_off_too(url: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.team import worker

    team = make_team(tmp_path, url, {"jo": "jo@northwind.example"})
    monkeypatch.setattr(worker, "_runtime", worker.Runtime(team_path=team.path, work_dir=tmp_path))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(worker, "seller_service", broken)
    with pytest.raises(RuntimeError):
        worker.poll("jo")  # the job fails, as procrastinate records it
    team_store = TeamStore(team.store_url)
    health = team_store.health("jo")
    assert health.state == "failing" and health.last_error == "RuntimeError: the disk is full"
    assert not team_store.due("jo", datetime.now(UTC))  # not queued again at every tick
    team_store.close()


def test_workers_starting_at_once_on_a_new_database_make_the_queue_once(url: str, tmp_path: Path) -> None:
    make_team(tmp_path, url, {"jo": "jo@northwind.example"})
    results = finish(workers(tmp_path, 3))
    assert [code for code, _ in results] == [0, 0, 0], results


def test_the_apps_share_follows_the_workers_that_beat(url: str, tmp_path: Path) -> None:
    team = make_team(tmp_path, url, {"jo": "jo@northwind.example"})
    team_store = TeamStore(team.store_url)
    try:
        assert team_store.live_workers(30) == 0  # no queue yet: no worker has ever run
        prepare(team)
        with team_store.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now()), (now()), "
                                 "(now() - interval '5 minutes')")  # two beating, one gone
        assert team_store.live_workers(30) == 2
        runtime = Runtime(team_path=tmp_path / "team" / "team.toml", work_dir=tmp_path)
        runtime.share_apps(team_store, now=1000.0)
        assert app_share() == 2
        with team_store.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now())")
        runtime.share_apps(team_store, now=1001.0)
        assert app_share() == 2  # counted once a heartbeat, not at every job
        runtime.share_apps(team_store, now=1000.0 + HEARTBEAT)
        assert app_share() == 3
    finally:
        share_apps_over(1)
        team_store.close()


def test_a_render_holds_no_mailbox_and_a_send_waits_for_the_poll(url: str, tmp_path: Path) -> None:
    """The locks as PostgreSQL hands out jobs: a seller's render runs beside a poll of their mailbox; their send
    (which uses the mailbox) waits until the poll is done; another seller's poll is not held by either."""
    import asyncio

    import procrastinate

    from pipeline.team import worker

    team = make_team(tmp_path, url, {"jo": "jo@northwind.example", "sam": "sam@northwind.example"})
    with open_sync(team):
        assert worker.defer_render("jo") is not None
        assert worker.defer_render("jo") is None  # one waiting render per seller
        assert defer_poll("jo")
        assert worker.defer_deliver("jo") is not None
        assert defer_poll("sam")

    async def hand_out() -> list[tuple[str, str]]:
        async with worker.app.open_async():
            taken = []
            me = await worker.app.job_manager.register_worker()
            while (job := await worker.app.job_manager.fetch_job(queues=None, worker_id=me)) is not None:
                taken.append((job.task_name.rsplit(".", 1)[-1], job.task_kwargs["seller"]))
            return taken

    with worker.app.replace_connector(procrastinate.PsycopgConnector(conninfo=worker.conninfo(team.store_url))):
        taken = asyncio.run(hand_out())
    # Nothing finished: every job handed out is still running, yet jo's render and jo's poll run together.
    assert sorted(taken) == [("poll", "jo"), ("poll", "sam"), ("render", "jo")], taken


@pytest.mark.slow
def test_two_workers_over_graph_imap_and_maildir_sellers(url: str, tmp_path: Path, mailserver: object) -> None:
    """The same team loop over each kind of mailbox a team has: Graph sellers of one app registration on the local
    Graph endpoint, a seller on the real Dovecot and Postfix, sellers on Maildir; two workers, each reply agreed,
    each email sent once. A Graph mailbox that Graph throttles for ten minutes backs off alone."""
    import uuid

    from tests.graph_server import GraphServer, make_tls
    from tests.test_team_isolation import TRUSTED

    client_id, secret = "33333333-3333-3333-3333-333333333333", "team-secret"
    tag = uuid.uuid4().hex[:8]
    imap_seller = f"imap-{tag}@northwind.example"
    passwords = {imap_seller: mailserver.add_user(imap_seller)}  # type: ignore[attr-defined]
    (tmp_path / "graph").mkdir()
    with GraphServer(tmp_path / "graph", tls=make_tls(tmp_path / "graph")) as server:
        graph_sellers = {f"g{n}": f"g{n}-{tag}@northwind.example" for n in range(2)}
        for upn in graph_sellers.values():
            server.add_mailbox(upn)
        throttled = f"slow-{tag}@northwind.example"
        server.add_mailbox(throttled)
        server.register_app(client_id, secret=secret, mailboxes={*graph_sellers.values(), throttled})
        team = make_team(tmp_path, url, {"m0": "m0@northwind.example", "m1": "m1@northwind.example"})
        with team.path.open("a", encoding="utf-8") as file:
            file.write(f'\n[graph]\ntenant = "{server.tenant}"\nclient_id = "{client_id}"\n'
                       f'client_secret_env = "MP_TEAM_GRAPH_SECRET"\nbase_url = "{server.base_url}"\n'
                       f'authority_url = "{server.url}"\nca_bundle = "{server.tls.ca_path}"\n')
        policy = {"changes": "auto", "trusted_authserv_ids": [TRUSTED]}
        quiet = {"enabled": False, "digest": False}
        for seller, upn in graph_sellers.items():
            add_seller(team.path, {"id": seller, "seller": {"email": upn}, "policy": policy, "reminders": quiet,
                                   "mailbox": {"backend": "graph", "mailbox": upn}}, env={})
        add_seller(team.path, {"id": "slow", "seller": {"email": throttled}, "policy": policy, "reminders": quiet,
                               "mailbox": {"backend": "graph", "mailbox": throttled}}, env={})
        add_seller(team.path, {"id": "imap", "seller": {"email": imap_seller}, "policy": policy, "reminders": quiet,
                               "mailbox": {"backend": "imap", "host": mailserver.host,  # type: ignore[attr-defined]
                                           "port": mailserver.imap_port,  # type: ignore[attr-defined]
                                           "security": "starttls", "username": imap_seller,
                                           "password_env": "MP_TEAM_IMAP_PASSWORD",
                                           "smtp_port": mailserver.smtp_port,  # type: ignore[attr-defined]
                                           "smtp_security": "starttls",
                                           "cafile": str(mailserver.cafile), "timeout": 10}},  # type: ignore[attr-defined]
                   env={})
        env = {"MP_TEAM_GRAPH_SECRET": secret, "MP_TEAM_IMAP_PASSWORD": passwords[imap_seller]}
        team = load_team(team.path, env=env)
        sellers = ["m0", "m1", *graph_sellers, "imap"]
        team_store = TeamStore(team.store_url)
        when = datetime.now(UTC)
        for seller in sellers:
            with seller_service(team_store, team.seller(seller), tmp_path, env=env) as service:
                service.add_source(example(plan_id(seller)), file=f"{seller}.md")
                entry, report = service.send_plan(plan_id(seller))
                assert report.sent == [entry.message_id], (seller, report.errors)
            for who in (DANA, RAJ):
                raw = reply(who, "Confirmed - thanks.", in_reply_to=entry.message_id, when=when,
                            message_id=f"<{seller}.{who}>")
                if seller in graph_sellers:
                    server.deliver(graph_sellers[seller], raw)
                elif seller == "imap":
                    import smtplib

                    with smtplib.SMTP(mailserver.host, mailserver.smtp_port, timeout=10) as smtp:  # type: ignore[attr-defined]
                        smtp.sendmail(who, [imap_seller], raw)
                    mailserver.wait_for_message(imap_seller, f"<{seller}.{who}>")  # type: ignore[attr-defined]
                else:
                    deliver(tmp_path, seller, who.split("@")[0], raw)
        team_store.close()
        # Ten minutes of Retry-After on every read of that mailbox: more than the backend waits inside a poll.
        server.fault("GET", rf"/users/{re.escape(throttled)}/", 429, retry_after="600", times=100)
        with open_sync(team):
            assert all(defer_poll(s) for s in [*sellers, "slow"])
        results = finish(workers(tmp_path, 2, env))
        assert [code for code, _ in results] == [0, 0], results
        assert [s for s in sellers if not agreed(team, s)] == []
        for seller, upn in graph_sellers.items():
            sent = Counter(i.internet_message_id for i in server.mailboxes[upn].in_folder("sentitems"))
            assert sent == Counter({f"<plan.{plan_id(seller)}.v1@northwind.example>": 1,
                                    f"<plan.{plan_id(seller)}.v1.agreed@northwind.example>": 1}), sent
        imap_sent = Counter(str(email.message_from_bytes(raw)["Message-ID"])
                            for raw in mailserver.messages(imap_seller, "Sent"))  # type: ignore[attr-defined]
        assert imap_sent[f"<plan.{plan_id('imap')}.v1.agreed@northwind.example>"] == 1, imap_sent
        health = TeamStore(team.store_url)
        assert all(health.health(s).state == "ok" for s in sellers)
        slow = health.health("slow")
        assert slow.state == "failing" and "asks us to wait 600 s" in (slow.last_error or ""), slow
        assert not health.due("slow", datetime.now(UTC))
        health.close()
