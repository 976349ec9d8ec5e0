"""The team's workers on procrastinate: one poll of one mailbox is one job, locked per mailbox.

- `poll` jobs carry the lock ``mailbox:<seller>``: two workers, on any machines, never read one mailbox at once,
  and the queueing lock ``poll:<seller>`` keeps one waiting poll per mailbox, so a slow mailbox does not pile up
  polls. A poll fetches and handles the mail and queues what follows; it renders and sends nothing.
- `render` jobs (lock ``letters:<seller>``, no mailbox) render and keep the letters the queued emails carry, then
  queue a `deliver`: a slow letter holds a worker slot, never the mailbox.
- `deliver` jobs send (or draft) what is queued, under the mailbox lock; their letters are kept already, so they
  only compose and hand over. A retried one looks in Sent first, as every send does.
- `schedule` runs every few seconds (a periodic task: one worker defers it per tick): it defers a poll for each
  mailbox whose time has come (a failing mailbox waits out its back-off alone) and puts the jobs of a worker that
  stopped beating (killed, machine lost) back in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import procrastinate
from sqlalchemy.engine import make_url

from pipeline.errors import ConfigError, PipelineError
from pipeline.mailbox.base import share_apps_over
from pipeline.team.parts import seller_service
from pipeline.team.settings import Team, load_team
from pipeline.team.store import TeamStore

log = logging.getLogger(__name__)
STALLED_AFTER = float(os.environ.get("MUTUALPLAN_STALLED_AFTER", "30"))  # seconds without a worker's heartbeat
HEARTBEAT = min(10.0, STALLED_AFTER / 3)
_SCHEMA_LOCK = 7235891  # the advisory lock under which one process applies procrastinate's schema
RECONNECT = 5.0  # seconds between attempts to reach PostgreSQL again

MAILBOXES = "mailboxes"  # polls and sends: the work on the sellers' mailboxes
LETTERS = "letters"  # rendering the letters of queued emails: no mailbox, only CPU and the store
SCHEDULE = "schedule"  # the periodic tick that queues polls and requeues stalled jobs
app = procrastinate.App(connector=procrastinate.PsycopgConnector())


@dataclass
class Runtime:
    """What a worker process was started with: the team file and its local working folder; what its jobs share."""

    team_path: Path
    work_dir: Path
    _team: tuple[tuple[int, int], Team] | None = field(default=None, repr=False)
    _store: TeamStore | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _counted: float = field(default=float("-inf"), repr=False)  # when the live workers were last counted

    def team(self) -> Team:
        """The team settings, read again only when the file changed: a thousand sellers take ~75 ms to read, which
        every job would otherwise spend."""
        stat = self.team_path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if self._team is None or self._team[0] != key:
                self._team = (key, load_team(self.team_path))
            return self._team[1]

    def share_apps(self, team_store: TeamStore, now: float) -> None:
        """Divide each Graph app's requests in flight over the team's live workers, counted again each heartbeat."""
        with self._lock:
            if now - self._counted < HEARTBEAT:
                return
            self._counted = now
        share_apps_over(team_store.live_workers(STALLED_AFTER))

    def team_store(self, team: Team) -> TeamStore:
        """The team's shared tables over one connection pool for the whole process (a job opens none of its own)."""
        with self._lock:
            if self._store is None or self._store.url != team.store_url:
                self._store = TeamStore(team.store_url)
            return self._store


_runtime: Runtime | None = None


def _current() -> Runtime:
    if _runtime is None:
        raise ConfigError("the worker was not started with a team", hint="run `mutualplan worker --team DIR`")
    return _runtime


def conninfo(store_url: str) -> str:
    """The libpq address procrastinate connects with, from the store's SQLAlchemy URL."""
    return make_url(store_url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- tasks -----------------------------------------------------------------------------------------------------


@app.task(name="mutualplan.poll", queue=MAILBOXES)
def poll(seller: str) -> dict[str, Any]:
    """One poll of one seller's mailbox: fetch, handle, send, remind; its health recorded for `team status`."""
    runtime = _current()
    team = runtime.team()
    record = team.seller(seller)
    if not record.active:
        return {"seller": seller, "skipped": "removed"}
    team_store = runtime.team_store(team)
    runtime.share_apps(team_store, time.monotonic())
    error: str | None = None
    try:
        with seller_service(team_store, record, runtime.work_dir) as service:
            report = service.poll(send=False)
            service.remind(report, send=False)
            outgoing = service.outgoing()
        if outgoing:
            defer_render(seller)
        fetch_errors = [e for e in report.errors if e.startswith("fetching mail")]
        error = fetch_errors[0] if fetch_errors else None
        result = {"seller": seller, **report.to_dict()}
    except PipelineError as exc:
        # Bad settings or credentials of this one mailbox: it backs off; the others go on.
        error = str(exc)
        result = {"seller": seller, "error": error}
    except Exception as exc:
        # A fault nobody foresaw: the job fails (procrastinate keeps it, with its trace) and the mailbox backs
        # off like any failing one, rather than being polled into the same fault at every tick.
        team_store.poll_done(seller, datetime.now(UTC), record.poll_interval, f"{type(exc).__name__}: {exc}")
        raise
    health = team_store.poll_done(seller, datetime.now(UTC), record.poll_interval, error)
    log.info("polled %s: %s (next %s)", seller, health.state, health.next_poll)
    return result


@app.task(name="mutualplan.render", queue=LETTERS)
def render(seller: str) -> dict[str, Any]:
    """Render and keep the letters of a seller's queued emails, then queue their sending."""
    runtime = _current()
    team = runtime.team()
    with seller_service(runtime.team_store(team), team.seller(seller), runtime.work_dir) as service:
        ready, report = service.prerender()
        service.parts.crash_point("letters")
        outgoing = service.outgoing()
    if outgoing:
        # Killed before this line, the letters are kept and nothing is lost: the next poll finds the queue and
        # queues a render again, which finds them kept.
        defer_deliver(seller)
    return {"seller": seller, "ready": ready, "errors": report.errors}


@app.task(name="mutualplan.deliver", queue=MAILBOXES)
def deliver(seller: str) -> dict[str, Any]:
    """Send (or draft) what a seller's queue holds, from their mailbox, under its lock."""
    runtime = _current()
    team = runtime.team()
    team_store = runtime.team_store(team)
    runtime.share_apps(team_store, time.monotonic())
    with seller_service(team_store, team.seller(seller), runtime.work_dir) as service:
        report = service.flush(drafts=False)
    return {"seller": seller, **report.to_dict()}


@app.periodic(cron="* * * * * */5", periodic_id="schedule")
@app.task(name="mutualplan.schedule", queue=SCHEDULE, queueing_lock="schedule")
async def schedule(timestamp: int) -> dict[str, Any]:
    """Defer the polls that are due and requeue the jobs of workers that stopped beating."""
    recovered = await recover_stalled()
    runtime = _current()
    team = await asyncio.to_thread(runtime.team)
    deferred = await asyncio.to_thread(due_sellers, team, datetime.now(UTC), runtime.team_store(team))
    for seller in deferred:
        await defer_poll_async(seller)
    return {"deferred": deferred, "recovered": recovered}


# --- scheduling ------------------------------------------------------------------------------------------------


def due_sellers(team: Team, now: datetime, team_store: TeamStore | None = None) -> list[str]:
    """The active sellers whose next poll has come (a backed-off mailbox is not yet due)."""
    store = team_store or TeamStore(team.store_url)
    try:
        waiting = store.not_due(now)
        return [s.id for s in team.active if s.id not in waiting]
    finally:
        if team_store is None:
            store.close()


def _configured_poll(seller: str) -> Any:
    return poll.configure(lock=f"mailbox:{seller}", queueing_lock=f"poll:{seller}")


async def defer_poll_async(seller: str) -> bool:
    """Queue a poll of one mailbox, unless one waits already; True when queued."""
    try:
        await _configured_poll(seller).defer_async(seller=seller)
    except procrastinate.exceptions.AlreadyEnqueued:
        return False
    return True


def defer_poll(seller: str) -> bool:
    """Queue a poll of one mailbox from synchronous code (the CLI, tests); True when queued."""
    try:
        _configured_poll(seller).defer(seller=seller)
    except procrastinate.exceptions.AlreadyEnqueued:
        return False
    return True


def defer_render(seller: str) -> int | None:
    """Queue a render of a seller's queued letters (one waiting per seller); the job's id, None if one waits."""
    try:
        return int(render.configure(lock=f"letters:{seller}", queueing_lock=f"render:{seller}").defer(seller=seller))
    except procrastinate.exceptions.AlreadyEnqueued:
        return None  # the waiting one renders everything queued by then


def defer_deliver(seller: str) -> int | None:
    """Queue the sending of a seller's queue under the mailbox lock (one waiting per seller); its id or None."""
    try:
        return int(deliver.configure(lock=f"mailbox:{seller}", queueing_lock=f"deliver:{seller}")
                   .defer(seller=seller))
    except procrastinate.exceptions.AlreadyEnqueued:
        return None


def send_plan(team: Team, seller: str, plan_id: str, work_dir: Path) -> tuple[str, int | None]:
    """Queue a plan's email in its seller's store (an unknown plan is said now) and a render of it; the email's
    Message-ID and the render job's id (None when one waits already and will render it)."""
    team_store = TeamStore(team.store_url)
    try:
        with seller_service(team_store, team.seller(seller), work_dir) as service:
            entry = service.queue_plan(plan_id)
    finally:
        team_store.close()
    return entry.message_id, defer_render(seller)


async def recover_stalled(after: float | None = None) -> list[int]:
    """Put the jobs of workers with no heartbeat for `after` seconds back in the queue; their ids.

    A job retried this way replays its poll: every step of the loop is keyed (the message's record by its
    Message-ID, an email by its fixed Message-ID and the look in Sent before any retry), so nothing is done twice.
    """
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=after or STALLED_AFTER)
    ids = []
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except procrastinate.exceptions.UniqueViolation:
            # A poll of that mailbox waits already (its queueing lock): that one replays the work; this one is
            # closed, which also frees the mailbox's lock it held.
            await app.job_manager.finish_job(job, status=procrastinate.jobs.Status.FAILED, delete_job=False)
        ids.append(int(job.id or 0))
    return ids


def recover_stalled_now(team: Team, after: float) -> list[int]:
    """Requeue stalled jobs at once, outside a worker (the tests; an operator after losing a machine)."""
    async def recover() -> list[int]:
        async with app.open_async():
            return await recover_stalled(after)

    with app.replace_connector(procrastinate.PsycopgConnector(conninfo=conninfo(team.store_url))):
        return asyncio.run(recover())


# --- running ---------------------------------------------------------------------------------------------------


def prepare(team: Team) -> None:
    """Create the team's tables and procrastinate's, once (idempotent; safe from several machines at once)."""
    team_store = TeamStore(team.store_url)
    try:
        with team_store.engine.connect() as conn:
            # A session lock, held while procrastinate's schema is applied on its own connection: a second
            # worker starting at the same moment waits, then finds the tables made.
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({_SCHEMA_LOCK})")
            try:
                if conn.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar() is None:
                    with app.replace_connector(procrastinate.SyncPsycopgConnector(conninfo=conninfo(team.store_url))):
                        app.open()
                        try:
                            app.schema_manager.apply_schema()
                        finally:
                            app.close()
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_SCHEMA_LOCK})")
    finally:
        team_store.close()


def run(team_path: Path, work_dir: Path, *, concurrency: int, once: bool) -> None:
    """Run a worker until stopped (or, with `once`, until no job is ready)."""
    global _runtime
    team = load_team(team_path)
    prepare(team)
    _runtime = Runtime(team_path=team_path, work_dir=work_dir)
    # Once: the mailbox jobs already queued, and no scheduling (a tick would queue more polls while it runs).
    options: dict[str, Any] = {
        "queues": [MAILBOXES, LETTERS] if once else None, "concurrency": concurrency, "wait": not once,
        "update_heartbeat_interval": HEARTBEAT, "stalled_worker_timeout": STALLED_AFTER,
        "fetch_job_polling_interval": 1.0,
    }
    with app.replace_connector(procrastinate.PsycopgConnector(conninfo=conninfo(team.store_url))):
        if once:
            _run_once(team, options)
        else:
            asyncio.run(_serve(options))


def _run_once(team: Team, options: dict[str, Any]) -> None:
    """Run the queued mailbox jobs and those they queue (a poll queues a render, a render a send), until a round
    finds nothing it can run: what is left waits on a lock a job elsewhere holds."""
    team_store = TeamStore(team.store_url)
    try:
        while True:
            before = _counts(team_store)
            app.run_worker(install_signal_handlers=True, **options)
            after = _counts(team_store)
            if after[1] == 0 or after[0] == before[0]:
                return
    finally:
        team_store.close()


def _counts(team_store: TeamStore) -> tuple[int, int]:
    """Of the mailbox and letter jobs: how many have finished, how many wait."""
    with team_store.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT count(*) FILTER (WHERE status IN ('succeeded', 'failed', 'cancelled', 'aborted')),"
            " count(*) FILTER (WHERE status = 'todo') FROM procrastinate_jobs WHERE queue_name IN (%(m)s, %(l)s)",
            {"m": MAILBOXES, "l": LETTERS}).one()
    return int(row[0]), int(row[1])


async def _serve(options: dict[str, Any]) -> None:
    """Work until SIGTERM or SIGINT; when PostgreSQL goes away (a restart, a failover), connect again and go on.

    procrastinate stops a worker whose connection is cut; its jobs are found stalled by the others (or by this
    one when it is back), so starting it again loses nothing."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        try:
            async with app.open_async():
                worker = asyncio.create_task(app.run_worker_async(install_signal_handlers=False, **options))
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set():
                    worker.cancel()  # procrastinate's graceful stop: the jobs in hand finish first
                stopping.cancel()
                await asyncio.gather(worker, return_exceptions=True)
        except Exception as exc:  # a connection refused while PostgreSQL restarts: wait, then try again
            log.warning("worker stopped (%s); connecting again in %s s", exc, RECONNECT)
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONNECT)


@contextmanager
def open_sync(team: Team) -> Iterator[procrastinate.App]:
    """The app connected for deferring jobs from synchronous code (the CLI, tests)."""
    prepare(team)
    with app.replace_connector(procrastinate.SyncPsycopgConnector(conninfo=conninfo(team.store_url))):
        app.open()
        try:
            yield app
        finally:
            app.close()
