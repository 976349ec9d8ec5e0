"""Wires a home's parts (settings, store, archive, mailbox, spool) into a Watcher."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.config import Settings, load_settings, open_mailbox
from pipeline.home import Home
from pipeline.spool import Spool
from pipeline.watcher import Clock, Watcher, system_clock


def settings_of(home: Home) -> Settings:
    """The checked settings of a home."""
    return load_settings(home.settings(), str(home.settings_path))


@contextmanager
def watcher_for(home: Home, clock: Clock = system_clock) -> Iterator[Watcher]:
    """A Watcher over a home's store, archive, spool and configured mailbox; both are closed after."""
    settings = settings_of(home)
    store = home.open_store()
    mailbox = None
    try:
        mailbox = open_mailbox(settings, home.mail_dir, store)
        yield Watcher(
            store=store, archive=home.open_archive(), mailbox=mailbox, spool=Spool(home.spool_dir),
            settings=settings, clock=clock,
        )
    finally:
        # A server connection (IMAP) is logged out, not left to the server's idle timeout at every poll.
        close = getattr(mailbox, "close", None)
        if close is not None:
            close()
        store.close()
