"""The parts one seller's loop works with (store, archive, spool, settings, mailbox, clock), and its poll report."""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline.archive import Archive
from pipeline.config import Settings, load_settings, open_mailbox
from pipeline.home import Home
from pipeline.spool import Spool
from pipeline.store import Store

if TYPE_CHECKING:
    from pipeline.mailbox.base import Mailbox

Clock = Callable[[], datetime]

# Test-only: MUTUALPLAN_CRASH_AT=<point> makes the loop kill itself with SIGKILL at that point, as a power cut would,
# so the crash tests can restart it and prove that every step has one effect. Read once, when the parts are made;
# unset (always, outside the tests) it costs a comparison per step.
CRASH_ENV = "MUTUALPLAN_CRASH_AT"
CRASH_POINTS = (
    "spooled",  # a fetched message is in the spool, the mailbox not yet told (runner)
    "committed",  # a message's effects are committed, the mailbox not yet told (runner, after act)
    "acked",  # the mailbox was told, the spool entry not yet removed (runner)
    "rendered",  # an email is rendered and marked sending, not yet handed to the mailbox (deliver)
    "sent",  # the mailbox sent (or drafted) it, the queue not yet marked (deliver)
)
# Only in a team's worker, whose render is a job of its own: the letters kept, the seller's send not yet queued.
TEAM_CRASH_POINTS = ("letters",)


def system_clock() -> datetime:
    """The real time, in UTC (the only clock of the loop; tests and the demo pass their own)."""
    return datetime.now(UTC)


def parse_time(value: object) -> datetime | None:
    """A stored ISO 8601 time (a Z or an offset; a naive one is UTC), or None when there is none or it does not read."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def settings_of(home: Home) -> Settings:
    """The checked settings of a home."""
    return load_settings(home.settings(), str(home.settings_path))


@dataclass
class PollReport:
    """What one poll did, for the CLI and the tests."""

    fetched: int = 0
    handled: list[tuple[str, str, str]] = field(default_factory=list)  # (message id, disposition, reason)
    sent: list[str] = field(default_factory=list)
    drafted: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)  # drafts taken out of Drafts: a newer version replaced them
    shunted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the seller's eye, not errors (the authserv-id seen)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `watch --json`."""
        return {
            "fetched": self.fetched,
            "handled": [{"message_id": m, "disposition": d, "reason": r} for m, d, r in self.handled],
            "sent": self.sent,
            "drafted": self.drafted,
            "withdrawn": self.withdrawn,
            "shunted": self.shunted,
            "errors": self.errors,
            "notes": self.notes,
        }


class Parts:
    """A store, an archive, a spool, the settings and a mailbox opened only when first used.

    The mailbox is opened lazily: `mutualplan add` or `apply` need no server connection.
    """

    def __init__(self, *, store: Store, archive: Archive, spool: Spool, settings: Settings,
                 clock: Clock = system_clock, mailbox: Mailbox | None = None,
                 open_mailbox: Callable[[], Mailbox] | None = None) -> None:
        self.store = store
        self.archive = archive
        self.spool = spool
        self.settings = settings
        self.clock = clock
        self._mailbox = mailbox
        self._open_mailbox = open_mailbox
        self._crash_at = os.environ.get(CRASH_ENV) or None

    @property
    def mailbox(self) -> Mailbox:
        """The seller's mailbox, connected on first use."""
        if self._mailbox is None:
            if self._open_mailbox is None:
                raise RuntimeError("these parts were made without a mailbox")
            self._mailbox = self._open_mailbox()
        return self._mailbox

    def close(self) -> None:
        """Log out of the mailbox (an IMAP server is not left to its idle timeout) and close the store."""
        close = getattr(self._mailbox, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self.store.close()

    def crash_point(self, name: str) -> None:
        """Test-only (see CRASH_ENV): die here, with no chance to clean up, when the tests ask for it."""
        if self._crash_at == name:
            os.kill(os.getpid(), signal.SIGKILL)

    @contextmanager
    def sending(self) -> Iterator[None]:
        """One process at a time sends from a home, the others wait: an email queued once must not go out from two
        watchers. The lock is the kernel's (flock), so a process that dies holds it no longer."""
        with open(self.spool.root / "send.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


@contextmanager
def open_parts(home: Home, clock: Clock = system_clock, mailbox: Mailbox | None = None) -> Iterator[Parts]:
    """The parts of a home (its configured mailbox unless one is given); closed after."""
    settings = settings_of(home)
    store = home.open_store()
    parts = Parts(
        store=store, archive=home.open_archive(), spool=Spool(home.spool_dir), settings=settings, clock=clock,
        mailbox=mailbox, open_mailbox=lambda: open_mailbox(settings, home.mail_dir, store),
    )
    try:
        yield parts
    finally:
        parts.close()
