"""The watcher's loop: poll -> spool -> steps -> commit -> acknowledge -> deliver, with its crash points.

Each stage commits before the next begins, so a crash anywhere replays at most one stage:
- fetched bytes are in the spool before the mailbox is acknowledged;
- a message's effects (version, confirmation, queued emails, its record) commit in one transaction, keyed by its
  Message-ID, so a replay finds it recorded and does nothing twice;
- outbound mail is queued with a deterministic Message-ID, and a retry first looks in Sent for it (deliver.py).
"""

from __future__ import annotations

import json
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.archive.objects import FULL, write_failed
from pipeline.errors import MailboxError, StorageFull
from pipeline.loop import act, deliver, policy, receive, status
from pipeline.loop.act import Outcome
from pipeline.loop.parts import Parts, PollReport, parse_time
from pipeline.mailbox.base import HELD, PROCESSED
from pipeline.store import VersionConflict, utc_iso


def poll(parts: Parts, *, send: bool = True) -> PollReport:
    """Fetch new mail into the spool, handle every spooled message, then send what is queued (unless not `send`: a
    team's worker renders and sends in jobs of their own, so a slow letter does not hold the mailbox)."""
    report = PollReport()
    for name in parts.spool.recover():
        # Killed MAX_ATTEMPTS times while handling it: kept in spool/bad, and out of the seller's Inbox.
        report.shunted.append(name)
        _hold(parts, _meta_key(parts.spool.bad_dir / f"{name}.json"), report)
    spooled = parts.spool.keys()
    try:
        for fetched in parts.mailbox.fetch():
            if fetched.key in spooled:
                continue  # offered again before it was acknowledged (it failed, or a crash): spooled already
            try:
                parts.spool.enqueue(fetched.raw, key=fetched.key, received=utc_iso(parts.clock()))
            except OSError as exc:
                # Not acknowledged, so still in the mailbox: a full disk stops the poll and loses nothing.
                if exc.errno in FULL:
                    raise write_failed(exc, "a fetched message", parts.spool.root) from None
                raise
            parts.crash_point("spooled")
            report.fetched += 1
    except MailboxError as exc:
        # The mailbox is down: handle what is already spooled and try it again next poll.
        report.errors.append(f"fetching mail: {exc}")
    # What went out unbeknown to the store comes first (drafts the seller sent, sends whose answer was lost): an
    # answer to it may be in this batch, and matching that needs the Message-ID it went out under.
    interrupted = [e for e in parts.store.outbox_pending() if e.state == "sending"]
    deliver.find_sent(parts, [*parts.store.outbox_drafted(), *interrupted], report)
    deliver.learn_aliases(parts, report)
    process(parts, report)
    if send:
        deliver.flush(parts, report, drafts=False)
    return report


def process(parts: Parts, report: PollReport) -> None:
    """Handle every spooled message; one that raises is retried, then shunted, and the rest go on."""
    for entry in parts.spool.claimed():
        try:
            received = parse_time(entry.meta.get("received")) or parts.clock()
            outcome = handle(parts, entry.raw, received, report)
        except StorageFull:
            # The machine's fault, not the message's: back in the queue uncounted, and the poll stops here.
            parts.spool.put_back(entry.name)
            raise
        except Exception as exc:
            where = parts.spool.fail(entry.name, "".join(traceback.format_exception_only(exc)).strip())
            detail = f"{entry.name}: {type(exc).__name__}: {exc}"
            report.errors.append(detail)
            if where == "shunt":
                report.shunted.append(entry.name)
                # Out of the Inbox into Held for a person: else every fetch would offer it again.
                _hold(parts, entry.meta.get("key"), report)
                parts.store.audit(
                    "message.shunted", at=parts.clock(), plan_id=None,
                    detail={"spool": entry.name, "error": detail, "trace": traceback.format_exc()[-4000:]},
                )
            continue
        parts.crash_point("committed")
        key = entry.meta.get("key")
        if key:
            _ack(parts, key, outcome, report)
        parts.crash_point("acked")
        parts.spool.finish(entry.name)
        report.handled.append((outcome.message_id or entry.name, outcome.disposition, outcome.reason))


def handle(parts: Parts, raw: bytes, received: Any, report: PollReport | None = None) -> Outcome:
    """Everything one message causes, committed at once; a second call with the same bytes does nothing."""
    msg = receive.Received.read(raw, received, own_domains=parts.settings.own_domains,
                                limit=parts.settings.policy.max_message_bytes)
    if not parts.settings.policy.trusted_authserv_ids:
        status.note_authserv_id(parts.store, msg.incoming.raw_headers, report)
    try:
        outcome = _commit(parts, msg)
    except act.Handled as done:
        # Another watcher on this home recorded the same message while this one read it.
        record = done.record
        outcome = Outcome(policy.DUPLICATE, f"already handled as {record.disposition}", record.plan_id,
                          first=record.disposition)
    return outcome if outcome.message_id else replace(outcome, message_id=msg.message_id)


def _commit(parts: Parts, msg: receive.Received) -> Outcome:
    try:
        return act.commit(parts, msg, receive.handle(parts, msg))
    except VersionConflict:
        # Another watcher made a version while this reply was read: read it again against that version.
        return act.commit(parts, msg, receive.handle(parts, msg))


def _ack(parts: Parts, key: str, outcome: Outcome, report: PollReport) -> None:
    # A second copy goes where the first went: a list's double delivery of a newsletter stays in the Inbox.
    disposition = outcome.first or outcome.disposition
    folder: str | None
    if disposition == policy.UNRELATED or outcome.stay:
        folder = None  # not ours to move: the seller's other mail stays where it is
    elif disposition in (policy.HELD, policy.REJECTED):
        folder = HELD
    else:
        folder = PROCESSED
    try:
        parts.mailbox.ack(key, folder)
    except MailboxError as exc:
        # Stored and handled already; the next fetch may return it again, and it will be a duplicate.
        report.errors.append(f"acknowledging {key}: {exc}")


def _hold(parts: Parts, key: str | None, report: PollReport) -> None:
    """File a message that could not be handled in Held, where the seller sees it."""
    if not key:
        return
    try:
        parts.mailbox.ack(key, HELD)
    except MailboxError as exc:
        report.errors.append(f"filing {key} in {HELD}: {exc}")


def _meta_key(sidecar: Path) -> str | None:
    """The mailbox key in a spool sidecar, if it can be read."""
    try:
        found = json.loads(sidecar.read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return None
    return str(found) if found else None
