"""One seller's loop parts in a team: their scope of the store, the team archive, a local spool, their mailbox.

The single-seller loop runs unchanged over these parts, so a team's seller is handled exactly as a home's is; what
differs is only where each part lives.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import open_mailbox
from pipeline.loop.parts import Clock, Parts, system_clock
from pipeline.loop.service import Service
from pipeline.mailbox.base import Mailbox
from pipeline.spool import Spool
from pipeline.team.settings import Seller
from pipeline.team.store import TeamArchive, TeamStore


@contextmanager
def seller_service(team_store: TeamStore, seller: Seller, work_dir: Path, *, clock: Clock = system_clock,
                   mailbox: Mailbox | None = None, env: Mapping[str, str] = os.environ) -> Iterator[Service]:
    """The loop's service over one seller's parts; closed after (the mailbox logged out, the store released)."""
    store = team_store.seller_store(seller.scope)
    # The spool is this machine's crash buffer only: the mailbox keeps a message until its effects are committed
    # in PostgreSQL, so a worker elsewhere that fetches it again finds it recorded and does nothing twice.
    spool_dir = work_dir / "spool" / seller.id
    mail_dir = work_dir / "mail" / seller.id
    for folder in (spool_dir, mail_dir):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings = seller.settings
    parts = Parts(store=store, archive=TeamArchive(team_store), spool=Spool(spool_dir), settings=settings,
                  clock=clock, mailbox=mailbox,
                  open_mailbox=lambda: open_mailbox(settings, mail_dir, store, env))
    try:
        yield Service(parts)
    finally:
        parts.close()
