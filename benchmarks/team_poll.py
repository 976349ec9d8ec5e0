"""A team's workers over many seller mailboxes on the local Graph endpoint, 100-200 ms added to every mailbox
request, on a throwaway PostgreSQL: poll cycles with 1, 2 and 4 worker processes, then the time from a reply
landing to its follow-up.

    python -m benchmarks.team_poll --mailboxes 1000 --workers 1,2,4 --concurrency 16 --replies 40

For each worker count (a fresh database and team each time):
- the first cycle (each mailbox's first sync: its folders made, its delta started) and an idle cycle (nothing new
  anywhere), each one poll of every mailbox run by `mutualplan worker --once` processes;
- of the idle cycle: worker CPU per mailbox poll (the processes' user+system time, less what a worker with no job
  spends starting), peak memory per worker process, and the most PostgreSQL connections open at once.
Then, on the team of the last worker count (2 by default when given): `--replies` sellers' plans are sent, the
workers run as services (`mutualplan worker`, polling each mailbox every `--interval` seconds), and one change
request lands in each of those mailboxes at a random moment over one interval; the time from landing to the
follow-up's send request at the endpoint gives p50 and p95.

Needs root (PostgreSQL runs as the postgres user, as in the tests).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from pipeline.team.parts import seller_service
from pipeline.team.settings import TEAM_FILE, Team, add_seller, init_team, load_team
from pipeline.team.store import TeamStore
from pipeline.team.worker import conninfo, defer_poll, open_sync
from tests.graph_server import GraphServer, make_tls
from tests.loop_support import DANA, reply
from tests.servers import start_postgres, stop_postgres
from tests.test_team_isolation import example

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "22222222-2222-2222-2222-222222222222"
SECRET_ENV = "MUTUALPLAN_BENCH_GRAPH_SECRET"
SECRET = "bench-secret"
TRUSTED = "mx.northwind.example"  # the Authentication-Results the replies carry, as the tests' do
CHANGE = "Could we move the technical demo to February 17? Everything else looks right."


class SlowGraph(GraphServer):
    """The local Graph endpoint with 100-200 ms on every mailbox request, as from a client far from the service."""

    @property  # type: ignore[override]
    def delay(self) -> float:
        return random.uniform(0.1, 0.2)

    @delay.setter
    def delay(self, value: float) -> None:
        pass


def seller_id(n: int) -> str:
    return f"s{n:04d}"


def make_team(root: Path, url: str, server: GraphServer, mailboxes: int, interval: int) -> Path:
    init_team(root, url)
    path = root / TEAM_FILE
    text = path.read_text(encoding="utf-8").replace("poll_interval = 60", f"poll_interval = {interval}")
    graph = (f'\n[graph]\ntenant = "{server.tenant}"\nclient_id = "{CLIENT_ID}"\nclient_secret_env = "{SECRET_ENV}"\n'
             f'base_url = "{server.base_url}"\nauthority_url = "{server.url}"\nca_bundle = "{server.tls.ca_path}"\n')
    path.write_text(text + graph, encoding="utf-8")
    for n in range(mailboxes):
        add_seller(path, {"id": seller_id(n), "seller": {"email": f"{seller_id(n)}@northwind.example"},
                          "policy": {"changes": "auto", "trusted_authserv_ids": [TRUSTED]},
                          "reminders": {"enabled": False, "digest": False},
                          "mailbox": {"backend": "graph", "mailbox": f"{seller_id(n)}@northwind.example"}}, env={})
    return path


class Sampler:
    """Samples, every half second, the PostgreSQL connections to one database and the memory of some processes."""

    def __init__(self, store_url: str) -> None:
        self._conn = psycopg.connect(conninfo(store_url), autocommit=True)
        self.pids: set[int] = set()
        self.connections = 0
        self.rss_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.close()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            row = self._conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                     " AND pid <> pg_backend_pid()").fetchone()
            self.connections = max(self.connections, int(row[0]) if row else 0)
            for pid in list(self.pids):
                rss = _rss_kb(pid)
                if rss:
                    self.rss_kb[pid] = max(self.rss_kb.get(pid, 0), rss)


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _worker(team_path: Path, n: int, concurrency: int, once: bool) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), SECRET_ENV: SECRET}
    args = [sys.executable, "-m", "pipeline", "worker", "--concurrency", str(concurrency), "--team",
            str(team_path.parent), "--work-dir", str(team_path.parent / f"w{n}")]
    return subprocess.Popen([*args, "--once"] if once else args, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _reap(procs: Iterable[subprocess.Popen[bytes]]) -> list[float]:
    """Wait for each process; the CPU seconds (user + system) each used."""
    used = []
    for proc in procs:
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        used.append(usage.ru_utime + usage.ru_stime)
    return used


def cycle(team_path: Path, workers: int, concurrency: int, sampler: Sampler | None = None) -> tuple[float, float]:
    """Queue one poll per mailbox, run `workers` processes until the queue is empty; seconds taken, CPU seconds."""
    team = load_team(team_path, env={})
    with open_sync(team):
        for seller in team.active:
            defer_poll(seller.id)
    start = time.perf_counter()
    procs = [_worker(team_path, n, concurrency, once=True) for n in range(workers)]
    if sampler is not None:
        sampler.pids.update(p.pid for p in procs)
    cpu = _reap(procs)
    return time.perf_counter() - start, sum(cpu)


def startup_cpu(team_path: Path) -> float:
    """The CPU seconds a worker spends with no job: starting, connecting, finding the queue empty."""
    return _reap([_worker(team_path, 99, 1, once=True)])[0]


def failing(team_path: Path) -> int:
    """Mailboxes whose last poll failed (a benchmark that fails polls measures nothing)."""
    team = load_team(team_path, env={})
    store = TeamStore(team.store_url)
    try:
        return sum(store.health(s.id).state != "ok" for s in team.active)
    finally:
        store.close()


def send_plans(team: Team, sellers: list[str], work_dir: Path) -> dict[str, str]:
    """Each seller's plan added and sent from their mailbox; the plan email's Message-ID by seller."""
    team_store = TeamStore(team.store_url)
    sent = {}
    try:
        for seller in sellers:
            with seller_service(team_store, team.seller(seller), work_dir, env={SECRET_ENV: SECRET}) as service:
                plan_id = f"acme-{seller}-2027"
                service.add_source(example(plan_id), file=f"{plan_id}.md")
                entry, report = service.send_plan(plan_id)
                if report.errors:
                    raise RuntimeError(f"{seller}: {report.errors}")
                sent[seller] = entry.message_id
    finally:
        team_store.close()
    return sent


def _sends(server: GraphServer, upn: str, after: float) -> list[float]:
    with server.lock:
        return [s.at for s in server.seen if s.method == "POST" and s.at > after and upn in s.path.lower()
                and (s.path.endswith("/sendMail") or s.path.endswith("/send"))]


def follow_ups(server: GraphServer, team_path: Path, sent: dict[str, str], workers: int, concurrency: int,
               interval: int) -> dict[str, Any]:
    """Workers as services; one change request lands in each of the sent plans' mailboxes at a random moment over
    one interval; seconds from landing to the follow-up's send request, for each."""
    landed: dict[str, float] = {}
    team = load_team(team_path, env={})
    with Sampler(team.store_url) as sampler:
        procs = [_worker(team_path, n, concurrency, once=False) for n in range(workers)]
        sampler.pids.update(p.pid for p in procs)
        try:
            # Each reply at a random moment of one interval, so they meet the polls at every phase.
            moments = sorted((random.uniform(0, interval), seller) for seller in sent)
            start = time.monotonic()
            for moment, seller in moments:
                time.sleep(max(0.0, start + moment - time.monotonic()))
                raw = reply(DANA, CHANGE, in_reply_to=sent[seller], message_id=f"<change.{seller}@acme.example>",
                            when=datetime.now(UTC), to=f"{seller}@northwind.example")
                landed[seller] = time.monotonic()
                server.deliver(f"{seller}@northwind.example", raw)
            deadline = time.monotonic() + interval * 4 + 120
            latency: dict[str, float] = {}
            while time.monotonic() < deadline and len(latency) < len(landed):
                for seller, at in landed.items():
                    if seller not in latency:
                        sends = _sends(server, f"{seller}@northwind.example", at)
                        if sends:
                            latency[seller] = min(sends) - at
                time.sleep(0.5)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(120)
    values = sorted(latency.values())
    return {"replies": len(landed), "followed_up": len(values),
            "p50_s": round(statistics.median(values), 1) if values else None,
            "p95_s": round(values[max(0, round(len(values) * 0.95) - 1)], 1) if values else None,
            "max_s": round(values[-1], 1) if values else None, "interval_s": interval,
            "connections_max": sampler.connections,
            "worker_rss_mb": round(max(sampler.rss_kb.values(), default=0) / 1024)}


def run(mailboxes: int, worker_counts: list[int], concurrency: int, replies: int,
        interval: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    rows: list[dict[str, Any]] = []
    latency: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        base = Path(tmp)
        base.chmod(0o755)  # PostgreSQL runs as its own user, under this folder
        (base / "pg").mkdir()
        pg = start_postgres(base / "pg")
        try:
            (base / "graph").mkdir()
            with SlowGraph(base / "graph", tls=make_tls(base / "graph")) as server:
                names = {f"{seller_id(n)}@northwind.example" for n in range(mailboxes)}
                for name in names:
                    server.add_mailbox(name)
                server.register_app(CLIENT_ID, secret=SECRET, mailboxes=names)
                path = base
                for workers in worker_counts:
                    url = pg.create_database(f"bench_{workers}")
                    path = make_team(base / f"team{workers}", url, server, mailboxes, interval)
                    before = len(server.seen)
                    first, _ = cycle(path, workers, concurrency)
                    middle = len(server.seen)
                    idle_start = startup_cpu(path)
                    with Sampler(url) as sampler:
                        idle, cpu = cycle(path, workers, concurrency, sampler)
                    requests = (middle - before, len(server.seen) - middle)
                    rows.append({"workers": workers, "concurrency": concurrency, "mailboxes": mailboxes,
                                 "first_cycle_s": round(first, 1), "idle_cycle_s": round(idle, 1),
                                 "requests_first": requests[0], "requests_idle": requests[1],
                                 "cpu_ms_per_idle_poll": round((cpu - workers * idle_start) / mailboxes * 1000, 1),
                                 "worker_rss_mb": round(max(sampler.rss_kb.values(), default=0) / 1024),
                                 "connections_max": sampler.connections, "failing": failing(path)})
                    print(rows[-1], flush=True)
                if replies:
                    team = load_team(path, env={})
                    chosen = random.sample([s.id for s in team.active], min(replies, mailboxes))
                    sent = send_plans(team, chosen, path.parent / "seed")
                    latency = follow_ups(server, path, sent, worker_counts[-1], concurrency, interval)
                    latency["workers"] = worker_counts[-1]
                    print(latency, flush=True)
        finally:
            stop_postgres(pg)
    return rows, latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--workers", default="1,4,2",
                        help="worker process counts, comma-separated; the follow-up times use the last")
    parser.add_argument("--concurrency", type=int, default=16, help="jobs at once in each worker")
    parser.add_argument("--replies", type=int, default=40, help="change requests for the follow-up times (0: none)")
    parser.add_argument("--interval", type=int, default=60, help="seconds between polls of one mailbox")
    args = parser.parse_args()
    rows, latency = run(args.mailboxes, [int(w) for w in args.workers.split(",")], args.concurrency, args.replies,
                        args.interval)
    print("| workers | jobs each | mailboxes | first cycle (s) | idle cycle (s) | requests first/idle | "
          "CPU per idle poll (ms) | peak RSS per worker (MB) | PostgreSQL connections (max) | failing |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['concurrency']} | {r['mailboxes']} | {r['first_cycle_s']} | "
              f"{r['idle_cycle_s']} | {r['requests_first']}/{r['requests_idle']} | {r['cpu_ms_per_idle_poll']} | "
              f"{r['worker_rss_mb']} | {r['connections_max']} | {r['failing']} |")
    if latency:
        print(f"\nReply to follow-up, {latency['workers']} workers, {args.mailboxes} mailboxes polled every "
              f"{latency['interval_s']} s: {latency['followed_up']}/{latency['replies']} followed up, "
              f"p50 {latency['p50_s']} s, p95 {latency['p95_s']} s, max {latency['max_s']} s; "
              f"PostgreSQL connections at most {latency['connections_max']}, peak worker RSS "
              f"{latency['worker_rss_mb']} MB")


if __name__ == "__main__":
    main()
