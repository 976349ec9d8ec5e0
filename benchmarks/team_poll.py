"""A team's poll cycle: N seller mailboxes on the local Graph endpoint with 100-200 ms added to every mailbox
request, polled by 1, 2 and 4 `mutualplan worker --once` processes on a throwaway PostgreSQL.

    python -m benchmarks.team_poll --mailboxes 100 --workers 1,2,4 --concurrency 8

Each run queues one poll per mailbox and times until the workers have run them all: the first cycle (each
mailbox's first sync: its folders made, its delta started) and a second, idle cycle (nothing new anywhere).
Needs root (PostgreSQL runs as the postgres user, as in the tests).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.team.settings import TEAM_FILE, add_seller, init_team, load_team
from pipeline.team.worker import defer_poll, open_sync
from tests.graph_server import GraphServer, make_tls
from tests.servers import start_postgres, stop_postgres

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "22222222-2222-2222-2222-222222222222"
SECRET_ENV = "MUTUALPLAN_BENCH_GRAPH_SECRET"
SECRET = "bench-secret"


class SlowGraph(GraphServer):
    """The local Graph endpoint with 100-200 ms on every mailbox request, as from a client far from the service."""

    @property  # type: ignore[override]
    def delay(self) -> float:
        return random.uniform(0.1, 0.2)

    @delay.setter
    def delay(self, value: float) -> None:
        pass


def make_team(root: Path, url: str, server: GraphServer, mailboxes: int) -> Path:
    init_team(root, url)
    path = root / TEAM_FILE
    text = path.read_text(encoding="utf-8")
    graph = (f'\n[graph]\ntenant = "{server.tenant}"\nclient_id = "{CLIENT_ID}"\nclient_secret_env = "{SECRET_ENV}"\n'
             f'base_url = "{server.base_url}"\nauthority_url = "{server.url}"\nca_bundle = "{server.tls.ca_path}"\n')
    path.write_text(text + graph, encoding="utf-8")
    for n in range(mailboxes):
        add_seller(path, {"id": f"s{n:04d}", "seller": {"email": f"s{n:04d}@northwind.example"},
                          "reminders": {"enabled": False, "digest": False},
                          "mailbox": {"backend": "graph", "mailbox": f"s{n:04d}@northwind.example"}}, env={})
    return path


def cycle(team_path: Path, workers: int, concurrency: int) -> float:
    """Queue one poll per mailbox, run `workers` processes until the queue is empty; the seconds it took."""
    team = load_team(team_path, env={})
    with open_sync(team):
        for seller in team.active:
            defer_poll(seller.id)
    env = {**os.environ, "PYTHONPATH": str(ROOT), SECRET_ENV: SECRET}
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "--once", "--concurrency",
                               str(concurrency), "--team", str(team_path.parent), "--work-dir",
                               str(team_path.parent / f"w{n}")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in range(workers)]
    for proc in procs:
        proc.wait()
    return time.perf_counter() - start


def failing(team_path: Path) -> int:
    """Mailboxes whose last poll failed (a benchmark that fails polls measures nothing)."""
    from pipeline.team.store import TeamStore

    team = load_team(team_path, env={})
    store = TeamStore(team.store_url)
    try:
        return sum(store.health(s.id).state != "ok" for s in team.active)
    finally:
        store.close()


def run(mailboxes: int, worker_counts: list[int], concurrency: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        base = Path(tmp)
        base.chmod(0o755)  # PostgreSQL runs as its own user, under this folder
        (base / "pg").mkdir()
        pg = start_postgres(base / "pg")
        try:
            (base / "graph").mkdir()
            with SlowGraph(base / "graph", tls=make_tls(base / "graph")) as server:
                names = {f"s{n:04d}@northwind.example" for n in range(mailboxes)}
                for name in names:
                    server.add_mailbox(name)
                server.register_app(CLIENT_ID, secret=SECRET, mailboxes=names)
                for workers in worker_counts:
                    url = pg.create_database(f"bench_{workers}")
                    path = make_team(base / f"team{workers}", url, server, mailboxes)
                    before = len(server.seen)
                    first = cycle(path, workers, concurrency)
                    middle = len(server.seen)
                    idle = cycle(path, workers, concurrency)
                    requests = (middle - before, len(server.seen) - middle)
                    rows.append({"workers": workers, "concurrency": concurrency, "mailboxes": mailboxes,
                                 "first_cycle_s": round(first, 1), "idle_cycle_s": round(idle, 1),
                                 "requests_first": requests[0], "requests_idle": requests[1],
                                 "failing": failing(path)})
                    print(rows[-1], flush=True)
                    print(sorted({f"{r.method} {r.path.split('/')[-1]}" for r in server.seen[middle:]}), flush=True)
        finally:
            stop_postgres(pg)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailboxes", type=int, default=100)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, comma-separated")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs at once in each worker")
    args = parser.parse_args()
    rows = run(args.mailboxes, [int(w) for w in args.workers.split(",")], args.concurrency)
    print("| workers | jobs each | mailboxes | first cycle (s) | idle cycle (s) | requests first/idle | failing |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['concurrency']} | {r['mailboxes']} | {r['first_cycle_s']} | "
              f"{r['idle_cycle_s']} | {r['requests_first']}/{r['requests_idle']} | {r['failing']} |")


if __name__ == "__main__":
    main()
