"""Which plan and version a message answers, resolved once: the one walk through a thread's keys.

Nearest key first, one key at a time: an answer to version 3, sent under Exchange's id, also names version 1
(sent as MIME, our id kept) further back in References, and must not be read as an answer to version 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.loop import policy
from pipeline.plan.ids import bracketed, plan_reference
from pipeline.replies.message import Incoming
from pipeline.store import OutboxEntry, Store


@dataclass(frozen=True)
class ThreadRef:
    """A plan and the version a message answers, and how we know."""

    plan_id: str
    version: int
    via: str  # "thread": one of our Message-IDs; "subject": our subject line; "plan email": the seller's own email


def resolve(store: Store, incoming: Incoming, domains: Iterable[str]) -> ThreadRef | None:
    """The plan a message answers: the nearest key that is ours, then our subject line.

    A key is ours when it is one of our Message-IDs or the one a server sent our email under instead (the
    queue's `sent_as`: Exchange names the replies it builds).
    """
    domains = tuple(domains)
    for key in incoming.thread_keys:
        ref = plan_reference(key, domains)
        if ref is not None and store.has_plan(ref[0]):
            return ThreadRef(ref[0], ref[1], "thread")
        # Thread keys are bare; the queue keeps Message-IDs as headers write them.
        entry = store.outbox_entry(bracketed(key))
        if entry is not None and entry.plan_id is not None and entry.version is not None:
            return ThreadRef(entry.plan_id, entry.version, "thread")
    found = store.plan_for_subject(incoming.subject)
    return ThreadRef(found[0], found[1], "subject") if found is not None else None


def plan_email_thread(store: Store, incoming: Incoming) -> ThreadRef | None:
    """The plan (and version 1) a message answers when its thread holds the seller's own plan email."""
    for key in incoming.thread_keys:
        record = store.message(key)
        if record is not None and record.disposition == policy.CREATED and record.plan_id:
            return ThreadRef(record.plan_id, record.version or 1, "plan email")
    return None


def answered(store: Store, incoming: Incoming, *, within: int | None = None) -> OutboxEntry | None:
    """The nearest of our queued emails a message answers (a reminder, a note to the seller), if any;
    `within` bounds how many of the nearest keys are looked at."""
    keys = incoming.thread_keys if within is None else incoming.thread_keys[:within]
    for key in keys:
        entry = store.outbox_entry(bracketed(key))
        if entry is not None:
            return entry
    return None
