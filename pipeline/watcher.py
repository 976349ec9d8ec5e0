"""The loop: fetch -> spool -> handle (match, classify, authorize, interpret, decide) -> outbox -> send.

Each step commits before the next begins, so a crash anywhere replays at most one step:
- fetched bytes are in the spool before the mailbox is acknowledged;
- a message's effects (version, confirmation, outbox entries, its record) commit in one transaction,
  keyed by its Message-ID, so a replay finds it recorded and does nothing twice;
- outbound mail is queued with a deterministic Message-ID, and a retry first looks in Sent for it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from pipeline import inbound_plan, policy, reminders, seller_mail
from pipeline.archive import Archive
from pipeline.compose import compose
from pipeline.config import Settings
from pipeline.errors import ChangeError, MailboxError
from pipeline.mailbox.base import HELD, PROCESSED, Mailbox
from pipeline.outbox import OutboxEntry, bracketed
from pipeline.plan.changes import apply as apply_changes
from pipeline.plan.changes import conflicts as change_conflicts
from pipeline.plan.model import Change, Version
from pipeline.replies.interpret import local_date, read_reply
from pipeline.replies.message import Incoming, plan_reference
from pipeline.spool import Spool
from pipeline.store import MessageRecord, Store, VersionConflict, utc_iso

Clock = Callable[[], datetime]

# Test-only: MUTUALPLAN_CRASH_AT=<point> makes the watcher kill itself with SIGKILL at that point of the loop, as a
# power cut would, so the crash tests can restart it and prove that every step has one effect. Read once, when a
# Watcher is made; unset (always, outside the tests) it costs a comparison per step.
CRASH_ENV = "MUTUALPLAN_CRASH_AT"
CRASH_POINTS = (
    "spooled",  # a fetched message is in the spool, the mailbox not yet told
    "committed",  # a message's effects are committed, the mailbox not yet told
    "acked",  # the mailbox was told, the spool entry not yet removed
    "rendered",  # an email is rendered and marked sending, not yet handed to the mailbox
    "sent",  # the mailbox sent (or drafted) it, the outbox not yet marked
)


def system_clock() -> datetime:
    """The real time, in UTC (the only clock of the loop; tests and the demo pass their own)."""
    return datetime.now(UTC)


@dataclass
class PollReport:
    """What one poll did, for the CLI and the tests."""

    fetched: int = 0
    handled: list[tuple[str, str, str]] = field(default_factory=list)  # (message id, disposition, reason)
    sent: list[str] = field(default_factory=list)
    drafted: list[str] = field(default_factory=list)
    shunted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `watch --json`."""
        return {
            "fetched": self.fetched,
            "handled": [{"message_id": m, "disposition": d, "reason": r} for m, d, r in self.handled],
            "sent": self.sent,
            "drafted": self.drafted,
            "shunted": self.shunted,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class Outcome:
    """How one message ended."""

    disposition: str
    reason: str
    plan_id: str | None = None
    version: int | None = None
    first: str | None = None  # a duplicate's: how the first copy ended, which decides where this copy is filed
    stay: bool = False  # left where it is in the mailbox: the seller's to read (our notices, their Cc copies)
    message_id: str | None = None  # the message's id as read (set by handle)


class Watcher:
    """One seller's loop over one mailbox, one store, one archive and one spool."""

    def __init__(
        self,
        *,
        store: Store,
        archive: Archive,
        mailbox: Mailbox,
        spool: Spool,
        settings: Settings,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.archive = archive
        self.mailbox = mailbox
        self.spool = spool
        self.settings = settings
        self.clock = clock
        self._crash_at = os.environ.get(CRASH_ENV) or None

    # --- the loop ---------------------------------------------------------------------------------

    def poll(self) -> PollReport:
        """Fetch new mail into the spool, handle every spooled message, then send what is queued."""
        report = PollReport()
        for name in self.spool.recover():
            # Killed MAX_ATTEMPTS times while handling it: kept in spool/bad, and out of the seller's Inbox.
            report.shunted.append(name)
            self._hold(_meta_key(self.spool.bad_dir / f"{name}.json"), report)
        spooled = self.spool.keys()
        try:
            for fetched in self.mailbox.fetch():
                if fetched.key in spooled:
                    continue  # offered again before it was acknowledged (it failed, or a crash): spooled already
                self.spool.enqueue(fetched.raw, key=fetched.key, received=utc_iso(self.clock()))
                self._crash_point("spooled")
                report.fetched += 1
        except MailboxError as exc:
            # The mailbox is down: handle what is already spooled and try it again next poll.
            report.errors.append(f"fetching mail: {exc}")
        # What went out unbeknown to the store comes first (drafts the seller sent, sends whose answer was
        # lost): an answer to it may be in this batch, and matching that needs the Message-ID it went out
        # under (Exchange names replies itself; see _sent_as).
        interrupted = [e for e in self.store.outbox_pending() if e.state == "sending"]
        self._find_sent([*self.store.outbox_drafted(), *interrupted], report)
        self.process(report)
        self.flush(report, drafts=False)
        return report

    def process(self, report: PollReport) -> None:
        """Handle every spooled message; one that raises is retried, then shunted, and the rest go on."""
        for entry in self.spool.claimed():
            try:
                received = _parse_time(entry.meta.get("received")) or self.clock()
                outcome = self.handle(entry.raw, received)
            except _Handled as done:
                # Another watcher on this home recorded the same message while this one read it.
                outcome = Outcome(policy.DUPLICATE, f"already handled as {done.record.disposition}",
                                  done.record.plan_id, first=done.record.disposition)
            except Exception as exc:
                where = self.spool.fail(entry.name, "".join(traceback.format_exception_only(exc)).strip())
                detail = f"{entry.name}: {type(exc).__name__}: {exc}"
                report.errors.append(detail)
                if where == "shunt":
                    report.shunted.append(entry.name)
                    # Out of the Inbox into Held for a person: else every fetch would offer it again.
                    self._hold(entry.meta.get("key"), report)
                    self.store.audit(
                        "message.shunted", at=self.clock(), plan_id=None,
                        detail={"spool": entry.name, "error": detail, "trace": traceback.format_exc()[-4000:]},
                    )
                continue
            self._crash_point("committed")
            key = entry.meta.get("key")
            if key:
                self._ack(key, outcome, report)
            self._crash_point("acked")
            self.spool.finish(entry.name)
            report.handled.append((outcome.message_id or entry.name, outcome.disposition, outcome.reason))

    def _ack(self, key: str, outcome: Outcome, report: PollReport) -> None:
        # A second copy goes where the first went: a list's double delivery of a newsletter stays in the Inbox.
        disposition = outcome.first or outcome.disposition
        if disposition == policy.UNRELATED or outcome.stay:
            folder = None  # not ours to move: the seller's other mail stays where it is
        elif disposition in (policy.HELD, policy.REJECTED):
            folder = HELD
        else:
            folder = PROCESSED
        try:
            self.mailbox.ack(key, folder)
        except MailboxError as exc:
            # Stored and handled already; the next fetch may return it again, and it will be a duplicate.
            report.errors.append(f"acknowledging {key}: {exc}")

    # --- one message ------------------------------------------------------------------------------

    def handle(self, raw: bytes, received: datetime) -> Outcome:
        """Everything one message causes, committed at once; a second call with the same bytes does nothing."""
        limit = self.settings.policy.max_message_bytes
        incoming = self._read(raw, received, limit)
        outcome = self._handle(raw, incoming, received)
        return outcome if outcome.message_id else replace(outcome, message_id=incoming.message_id)

    def _handle(self, raw: bytes, incoming: Incoming, received: datetime) -> Outcome:
        digest = hashlib.sha256(raw).hexdigest()
        limit = self.settings.policy.max_message_bytes
        message_id = incoming.message_id
        prior = self.store.message(message_id)
        if prior is not None:
            if prior.raw_sha256 == digest or self._same_message(prior, raw, incoming):
                return Outcome(policy.DUPLICATE, f"already handled as {prior.disposition}", prior.plan_id,
                               first=prior.disposition)
            # The same Message-ID with other content: a forgery or a broken client. Keep it, flag it.
            message_id = f"{message_id}#sha256={digest[:16]}"
            flagged = self.store.message(message_id)
            if flagged is not None:
                return Outcome(policy.DUPLICATE, "this altered copy was already flagged", flagged.plan_id,
                               first=flagged.disposition)
            return self._altered(raw, digest, incoming, message_id, received)
        if len(raw) > limit:
            return self._too_large(raw, digest, incoming, received, limit)
        if incoming.kind == "bounce":
            return self._bounce(raw, digest, incoming, received)
        if incoming.kind != "human":
            why = incoming.kind_reason or incoming.kind
            if incoming.kind != "own" and self._match(incoming) is None:
                # Someone's out-of-office about the seller's other mail: theirs to read, left where it is.
                return self._finish(raw, digest, message_id, received, None, None,
                                    Outcome(policy.UNRELATED, f"{why}, about none of our messages"), archive=False)
            # Our own mail coming back (a notice to the seller, their Cc of an agreed email) is for them to read:
            # recorded, never answered, and left in the Inbox rather than filed away before they see it.
            return self._finish(raw, digest, message_id, received, None, None,
                                Outcome(policy.IGNORED, why, stay=incoming.kind == "own"), sender=incoming.sender)
        # An answer to the seller's own plan email (not to our letter) is in that plan's thread too.
        match = self._match(incoming) or inbound_plan.thread_match(self.store, incoming)
        if match is None:
            how = inbound_plan.recognize(incoming, self.settings, self.store)
            if how is not None:
                return self._plan_email(raw, digest, incoming, received, how)
            return self._finish(
                raw, digest, message_id, received, None, None,
                Outcome(policy.UNRELATED, "answers none of our messages"), archive=False,
            )
        plan_id, replied = match
        throttled = self._throttled(raw, digest, incoming, plan_id, received)
        if throttled is not None:
            return throttled
        try:
            return self._handle_reply(raw, digest, incoming, plan_id, replied, received)
        except VersionConflict:
            # Another watcher made a version while this reply was read: read it again against that version.
            return self._handle_reply(raw, digest, incoming, plan_id, replied, received)

    # --- what is refused, flagged or throttled before it is read ----------------------------------

    def _read(self, raw: bytes, received: datetime, limit: int) -> Incoming:
        """The message as read; of one over the size limit only the headers are read, never the body."""
        own = self.settings.own_domains
        if len(raw) <= limit:
            return Incoming.from_bytes(raw, own_domains=own, received=received)
        ends = [i for i in (raw.find(b"\r\n\r\n", 0, 1 << 20), raw.find(b"\n\n", 0, 1 << 20)) if i >= 0]
        incoming = Incoming.from_bytes(raw[: min(ends, default=1 << 20)] + b"\n\n", own_domains=own, received=received)
        if incoming.message_id.endswith("@sha256.invalid"):
            from dataclasses import replace

            # No Message-ID: its id is the hash of all its bytes, as for any message without one.
            incoming = replace(incoming, message_id=f"{hashlib.sha256(raw).hexdigest()}@sha256.invalid")
        return incoming

    def _same_message(self, prior: MessageRecord, raw: bytes, incoming: Incoming) -> bool:
        """Whether other bytes under a known Message-ID are the same message relayed again: the same sender and
        body, only the transport headers (Received, Authentication-Results) differ."""
        if prior.sender is None or prior.sender != incoming.sender or not self.archive.has(prior.raw_sha256):
            return False
        return _body(self.archive.get(prior.raw_sha256)) == _body(raw)

    def _altered(self, raw: bytes, digest: str, incoming: Incoming, message_id: str, received: datetime) -> Outcome:
        """Another body or sender under a Message-ID already seen: kept under its own id, held, the seller told."""
        from dataclasses import replace

        reason = f"Message-ID {incoming.message_id} was seen before with other content (another body or sender)"
        match = self._match(incoming)
        if match is None:
            return self._finish(raw, digest, message_id, received, None, None, Outcome(policy.UNRELATED, reason),
                                archive=False, sender=incoming.sender)
        plan_id = match[0]
        version = self.store.current(plan_id).number  # type: ignore[union-attr]
        keep = len(raw) <= self.settings.policy.max_message_bytes  # a copy over the size limit is not kept either
        return self._finish(
            raw if keep else raw[:0], digest, message_id, received, plan_id, version,
            Outcome(policy.HELD, reason, plan_id, version),
            # Under its own id, so that the notice is not taken for one about the first message.
            notice={"reason": f"{reason}; nothing in it was applied", "kind": "altered",
                    "incoming": replace(incoming, message_id=message_id)},
            archive=keep, sender=incoming.sender,
        )

    def _too_large(self, raw: bytes, digest: str, incoming: Incoming, received: datetime, limit: int) -> Outcome:
        """Refused unread, nothing of it kept or acted on; filed in Held and the seller told when it is about a plan."""
        reason = (f"refused unread: {len(raw):,} bytes is over the limit of {limit:,} (max_message_mb); "
                  "read it in the mailbox")
        match = self._match(incoming) if incoming.kind == "human" else None
        if match is None:
            return self._finish(raw[:0], digest, incoming.message_id, received, None, None,
                                Outcome(policy.UNRELATED, f"{reason}; about none of our messages"), archive=False)
        plan_id = match[0]
        version = self.store.current(plan_id).number  # type: ignore[union-attr]
        return self._finish(raw[:0], digest, incoming.message_id, received, plan_id, version,
                            Outcome(policy.REJECTED, reason, plan_id, version),
                            notice={"reason": reason, "incoming": incoming, "kind": "rejected"},
                            archive=False, sender=incoming.sender)

    def _bounce(self, raw: bytes, digest: str, incoming: Incoming, received: datetime) -> Outcome:
        """A delivery failure report: recorded against the email it returns, never acted on, never answered."""
        from pipeline.replies.bounce import delivery_failure

        failure = delivery_failure(raw)
        found: tuple[str, int] | None = None
        if failure.original_id:
            entry = self.store.outbox_entry(bracketed(failure.original_id))
            ref = (entry.plan_id, entry.version) if entry else plan_reference(failure.original_id,
                                                                              self.settings.own_domains)
            found = ref if ref and self.store.has_plan(ref[0]) else None
        found = found or self._match(incoming)
        if found is None:
            # A bounce of the seller's own mail: theirs to read, left where it is.
            return self._finish(raw, digest, incoming.message_id, received, None, None,
                                Outcome(policy.UNRELATED, "a delivery failure report about none of our messages"),
                                archive=False)
        plan_id, version = found
        reason = f"a delivery failure report: {failure.describe()}"
        if failure.original_id:
            reason += f"; the email was <{failure.original_id}>"
        with self.store.transaction():
            self.store.audit("email.bounced", at=self.clock(), plan_id=plan_id, detail={
                "message_id": failure.original_id, "recipients": list(failure.recipients), "status": failure.status,
                "diagnostic": failure.diagnostic, "report": incoming.message_id, "version": version,
            })
            return self._finish(raw, digest, incoming.message_id, received, plan_id, version,
                                Outcome(policy.IGNORED, reason, plan_id, version))

    def _throttled(
        self, raw: bytes, digest: str, incoming: Incoming, plan_id: str, received: datetime
    ) -> Outcome | None:
        """Held unread when its sender is over the hourly limit: a loop or a flood, told to the seller once a day."""
        limit = self.settings.policy.max_messages_per_sender_per_hour
        sender = incoming.sender
        if not sender or limit <= 0 or self.store.messages_from(sender, received - timedelta(hours=1)) < limit:
            return None
        version = self.store.current(plan_id).number  # type: ignore[union-attr]
        reason = f"throttled: more than {limit} messages from {sender} within an hour; held unread"
        return self._finish(raw, digest, incoming.message_id, received, plan_id, version,
                            Outcome(policy.HELD, reason, plan_id, version),
                            notice={"reason": reason, "incoming": incoming, "kind": "throttled"}, sender=sender)

    def _match(self, incoming: Incoming) -> tuple[str, int] | None:
        """The plan and version a message answers: the nearest thread key that is ours, then the subject token.

        A key is ours when it is one of our Message-IDs or the one a server sent our email under instead (the
        outbox's `sent_as`: Exchange names the replies it builds). Nearest first, one key at a time: an answer
        to version 3, sent under Exchange's id, also names version 1 (sent as MIME, our id kept) further back
        in References, and must not be read as an answer to version 1.
        """
        domains = self.settings.own_domains
        for key in incoming.thread_keys:
            ref = plan_reference(key, domains)
            if ref is not None and self.store.has_plan(ref[0]):
                return ref
            # Thread keys are bare; the outbox keeps Message-IDs as headers write them.
            entry = self.store.outbox_entry(bracketed(key))
            if entry is not None:
                return entry.plan_id, entry.version
        return self.store.plan_for_subject(incoming.subject)

    def _handle_reply(
        self, raw: bytes, digest: str, incoming: Incoming, plan_id: str, replied: int, received: datetime
    ) -> Outcome:
        current = self.store.current(plan_id)
        base = self.store.version(plan_id, replied) if replied < current.number else current
        plan = current.plan
        sender = incoming.sender
        finish = lambda outcome, notice=None, **kw: self._finish(  # noqa: E731
            raw, digest, incoming.message_id, received, plan_id, current.number, outcome, notice=notice,
            sender=sender, **kw
        )
        if sender is None:
            return finish(
                Outcome(policy.HELD, "no single valid sender address", plan_id, current.number),
                notice={"reason": "the message has no single valid From address", "incoming": incoming,
                        "kind": "no-sender",
                        "interpretation": read_reply(incoming, base.plan, received=received)},
            )
        is_seller = sender == plan.seller.email.lower() or sender in self.settings.seller_addresses
        contact = plan.contact(sender)
        if not is_seller and contact is None:
            return finish(
                Outcome(policy.HELD, f"{sender} is not a participant of the plan", plan_id, current.number),
                # What it said goes to the seller (read, never applied): they decide whether it matters.
                notice={"reason": f"{sender} is not one of the plan's contacts; nothing was applied",
                        "kind": "outsider",
                        "incoming": incoming, "interpretation": read_reply(incoming, base.plan, received=received)},
            )
        if incoming.malformed:
            # A body read from a broken structure or an unknown charset may not say what was written.
            why = f"the message could not be read reliably ({incoming.malformed}); nothing was applied"
            return finish(Outcome(policy.HELD, why, plan_id, current.number),
                          notice={"reason": why, "incoming": incoming, "kind": "malformed"})
        when = incoming.date or received
        # An answer to a reminder is about the reminder's step ("done", "we need another week").
        interpretation = reminders.read_answer(self.store, incoming, base.plan, received=received)
        facts = policy.Facts(
            sender=sender,
            sender_is_seller=is_seller,
            sender_confirms=bool(contact and contact.confirms),
            plan_state=self.store.plan_state(plan_id),
            replied_version=base.number,
            current_version=current.number,
            intent=interpretation.intent,
            changes=tuple(interpretation.changes),
            unresolved=tuple(interpretation.unresolved),
            conflicts=tuple(change_conflicts(base.plan, plan, interpretation.changes))
            if base.number != current.number else (),
            crossed=base.number != current.number and received <= (_parse_time(current.created) or received),
        )
        decision = policy.decide(facts)
        # A forged From (dmarc=fail) is held whatever it says; an unproven one only when it would change the plan.
        auth = self._authentication(
            incoming, changes=decision.disposition in (policy.APPLIED, policy.CONFIRMED, policy.DECLINED)
        )
        if auth is not None:
            decision = policy.Decision(policy.HELD, auth, notify_seller=True)
        summary = {"incoming": incoming, "interpretation": interpretation, "reason": decision.reason,
                   "notes": list(decision.notes), "kind": "unauthenticated" if auth else None}
        if decision.disposition == policy.APPLIED:
            return self._apply(raw, digest, incoming, current, decision, received, when, summary)
        if decision.confirm:
            return self._confirm(raw, digest, incoming, current, received, summary)
        if decision.decline:
            return finish(Outcome(policy.DECLINED, decision.reason, plan_id, current.number),
                          notice=summary, state="declined")
        return finish(Outcome(decision.disposition, decision.reason, plan_id, current.number),
                      notice=summary if decision.notify_seller else None)

    def _plan_email(self, raw: bytes, digest: str, incoming: Incoming, received: datetime, how: str) -> Outcome:
        """A plan the seller wrote in an email: version 1 and its letter in that thread, or the seller told why not."""
        refused = self._authentication(incoming)
        with self.store.transaction():
            done = inbound_plan.accept(self.store, self.settings, incoming, raw, received=received, now=self.clock(),
                                       how=how, refused=refused)
            outcome = Outcome(done.disposition, done.reason, done.plan_id, done.version)
            self._record(raw, digest, incoming.message_id, received, done.plan_id, done.version, outcome,
                         sender=incoming.sender)
        return outcome

    def _authentication(self, incoming: Incoming, *, changes: bool = True) -> str | None:
        """Why the sender's identity is not proven well enough (to change a plan, with `changes`), or None."""
        trusted = self.settings.policy.trusted_authserv_ids
        if not trusted:
            return None
        from pipeline.replies.auth import verdict  # only needed when authentication is configured

        return verdict(incoming.raw_headers, trusted, incoming.sender, changes=changes)

    def _apply(
        self, raw: bytes, digest: str, incoming: Incoming, current: Version, decision: policy.Decision,
        received: datetime, when: datetime, summary: dict[str, Any],
    ) -> Outcome:
        plan = current.plan
        today = local_date(self.clock(), plan.timezone)
        try:
            new_plan = apply_changes(plan, decision.changes, today=today)
        except ChangeError as exc:
            summary["reason"] = f"the requested changes cannot be applied: {exc.message}"
            return self._finish(
                raw, digest, incoming.message_id, received, plan.id, current.number,
                Outcome(policy.HELD, summary["reason"], plan.id, current.number), notice=summary,
                sender=incoming.sender,
            )
        # Nothing is asked in return for the seller's own change.
        asks = [] if decision.by_seller else policy.suggested_asks(plan, decision.changes, self.settings.policy.asks)
        mode = "send" if self.settings.policy.changes == "auto" else "draft"
        with self._commit(incoming.message_id, plan.id):
            version = self.store.add_version(
                new_plan, author=incoming.sender or "", reason="seller email" if decision.by_seller else "reply",
                changes=decision.changes, message_id=incoming.message_id, created=self.clock(),
                expect_number=current.number + 1,
            )
            if decision.reopen:
                # The seller changed what was agreed: the new version waits on the prospect's confirmation.
                self.store.set_plan_state(plan.id, "open", at=self.clock(), detail={"version": version.number})
            self.store.queue_email(OutboxEntry.update(
                version, since=current.number, reply=incoming, mode=mode,
                # The sentences that could not be mapped go to the seller in a notice (below), never back to the
                # prospect: echoed bare in the follow-up they read as if the plan had answered them.
                asks=asks if mode == "draft" else [], notes=[], by_seller=decision.by_seller,
            ), at=self.clock())
            if mode == "send" and asks:
                self.store.queue_email(OutboxEntry.notice(
                    version.plan, version.number, incoming, kind="ask",
                    reason="the prospect asked for changes; here is something to ask in return",
                    notes=asks, interpretation=summary.get("interpretation"), changed=True,
                ), at=self.clock())
            if decision.notes:
                summary["reason"] = "applied what could be mapped; these sentences need you"
                self.store.queue_email(OutboxEntry.notice(
                    version.plan, version.number, incoming, kind="notice",
                    reason=summary["reason"], notes=list(decision.notes),
                    interpretation=summary.get("interpretation"), changed=True,
                ), at=self.clock())
            outcome = Outcome(policy.APPLIED, f"made version {version.number}: {decision.reason}",
                              plan.id, version.number)
            self._record(raw, digest, incoming.message_id, received, plan.id, current.number, outcome,
                         sender=incoming.sender)
        return outcome

    def _confirm(
        self, raw: bytes, digest: str, incoming: Incoming, current: Version, received: datetime,
        summary: dict[str, Any],
    ) -> Outcome:
        plan = current.plan
        with self._commit(incoming.message_id, plan.id):
            latest = self.store.current(plan.id)
            if latest is not None and latest.number != current.number:
                # Another watcher made a version while this one read the confirmation: it confirms an old one.
                why = (f"crossed with version {latest.number}: confirmed version {current.number}, which another "
                       "reply changed while this one was read")
                return self._finish(raw, digest, incoming.message_id, received, plan.id, latest.number,
                                    Outcome(policy.HELD, why, plan.id, latest.number),
                                    notice={**summary, "reason": why}, sender=incoming.sender)
            self.store.confirm(plan.id, current.number, incoming.sender or "", incoming.message_id, at=received)
            confirmed = self.store.confirmations(plan.id, current.number)
            waiting = [c.email for c in plan.confirmers if c.email.lower() not in confirmed]
            if waiting:
                outcome = Outcome(policy.CONFIRMED, f"{incoming.sender} confirmed version {current.number}; "
                                  f"waiting on {', '.join(waiting)}", plan.id, current.number)
            else:
                self.store.set_plan_state(plan.id, "agreed", at=self.clock())
                self.store.queue_email(OutboxEntry.agreed(current, reply=incoming), at=self.clock())
                outcome = Outcome(policy.AGREED, f"every confirming contact confirmed version {current.number}",
                                  plan.id, current.number)
            self._record(raw, digest, incoming.message_id, received, plan.id, current.number, outcome,
                         sender=incoming.sender)
        return outcome

    def _finish(
        self, raw: bytes, digest: str, message_id: str, received: datetime, plan_id: str | None,
        version: int | None, outcome: Outcome, *, notice: dict[str, Any] | None = None,
        state: str | None = None, archive: bool = True, sender: str | None = None,
    ) -> Outcome:
        with self._commit(message_id, plan_id):
            if state and plan_id:
                self.store.set_plan_state(plan_id, state, at=self.clock())
            if notice is not None and plan_id and version is not None:
                current = self.store.version(plan_id, version)
                entry = OutboxEntry.notice(
                    current.plan, version, notice["incoming"], kind="notice",
                    reason=notice.get("reason", outcome.reason), notes=notice.get("notes", []),
                    interpretation=notice.get("interpretation"),
                )
                entry.data["about"] = notice.get("kind") or outcome.disposition
                if self._told_today(entry):
                    # One notice per sender, kind and day: a flood, or a forger's hundred tries, tells the seller once.
                    self.store.audit("notice.skipped", at=self.clock(), plan_id=plan_id,
                                     detail={"message_id": message_id, "about": entry.data["about"],
                                             "sender": sender, "reason": outcome.reason})
                else:
                    self.store.queue_email(entry, at=self.clock())
            self._record(raw, digest, message_id, received, plan_id, version, outcome, archive=archive,
                         sender=sender)
        return outcome

    def _told_today(self, entry: OutboxEntry) -> bool:
        """Whether a notice of this kind about this sender went to the seller about this plan in the last day."""
        since = utc_iso(self.clock() - timedelta(days=1))
        sender = (entry.data.get("reply") or {}).get("from")
        return any(
            e.kind == entry.kind and e.data.get("about") == entry.data["about"]
            and (e.data.get("reply") or {}).get("from") == sender and str(e.data.get("created", "")) >= since
            for e in self.store.outbox_entries(entry.plan_id)
        )

    def _record(
        self, raw: bytes, digest: str, message_id: str, received: datetime, plan_id: str | None,
        version: int | None, outcome: Outcome, *, archive: bool = True, sender: str | None = None,
    ) -> None:
        if archive and raw:
            self.archive.put(raw)
            if plan_id:
                self.store.add_evidence(plan_id, version, digest, "in", message_id, at=received)
        self.store.record_message(
            message_id=message_id, raw_sha256=digest, plan_id=plan_id, version=version,
            disposition=outcome.disposition, reason=outcome.reason, received=received, sender=sender,
        )
        self.store.audit(f"message.{outcome.disposition}", at=self.clock(), plan_id=plan_id,
                         detail={"message_id": message_id, "reason": outcome.reason, "version": version})

    # --- outbound ---------------------------------------------------------------------------------

    def flush(self, report: PollReport, *, drafts: bool = True) -> None:
        """Send (or draft) every queued email; before a retry, look in Sent so nothing goes twice.

        With `drafts`, also notice the drafts the seller has sent since (poll does that before handling mail).
        """
        with self._sending():
            for entry in self.store.outbox_pending():
                try:
                    self._deliver(entry, report)
                except MailboxError as exc:
                    report.errors.append(f"sending {entry.message_id}: {exc}")
                    if not exc.transient:
                        self.store.outbox_mark(entry.message_id, "failed", at=self.clock(), error=str(exc))
        if drafts:
            self._find_sent(self.store.outbox_drafted(), report)
        # Mail to the seller that belongs to no one plan: a plan email that did not parse, the weekly digest.
        seller_mail.flush(self.store, self.mailbox, self.archive, self.settings, self.clock, report.sent, report.errors)

    def _find_sent(self, entries: list[OutboxEntry], report: PollReport) -> None:
        """Mark sent those of `entries` that are in Sent: drafts the seller sent, sends whose answer was lost."""
        for entry in entries:
            try:
                sent = self.mailbox.was_sent(entry.message_id)
            except MailboxError as exc:
                # Unchanged as far as the store knows; the next poll looks again.
                report.errors.append(f"looking in Sent for {entry.message_id}: {exc}")
                return
            if sent:
                self._mark_sent(entry, report)

    def _deliver(self, entry: OutboxEntry, report: PollReport, *, force_send: bool = False) -> None:
        if entry.state == "sending" and self.mailbox.was_sent(entry.message_id):
            self._mark_sent(entry, report)
            return
        message = self.render(entry)
        self.store.outbox_mark(entry.message_id, "sending", at=self.clock())
        self._crash_point("rendered")
        if entry.mode == "draft" and not force_send:
            self.mailbox.save_draft(message)
            self._crash_point("sent")
            self.store.outbox_mark(entry.message_id, "drafted", at=self.clock())
            report.drafted.append(entry.message_id)
        else:
            self.mailbox.send(message)
            self._crash_point("sent")
            self._mark_sent(entry, report)

    def _mark_sent(self, entry: OutboxEntry, report: PollReport) -> None:
        """Record an email as sent, with the Message-ID it went out under when that is not ours."""
        sent_as = self._sent_as(entry.message_id, report)
        self.store.outbox_mark(entry.message_id, "sent", at=self.clock(), sent_as=sent_as)
        report.sent.append(entry.message_id)

    def _sent_as(self, message_id: str, report: PollReport) -> str | None:
        """The Message-ID the recipients got for our `message_id`, when the server gave the email its own.

        Exchange names the replies it builds; an answer to one carries that id in In-Reply-To, and _match
        finds it through the outbox's `sent_as`. Only a backend whose server renames mail can tell, so this is
        an optional method (`sent_message_id`), not part of the Mailbox protocol every backend implements.
        A failed look-up costs only the alias (References and the subject still find the plan), never the send.
        """
        lookup = getattr(self.mailbox, "sent_message_id", None)
        if lookup is None:
            return None
        try:
            found = lookup(message_id)
        except MailboxError as exc:
            report.errors.append(f"learning the Message-ID {message_id} went out under: {exc}")
            return None
        if not found or bracketed(found) == bracketed(message_id):
            return None
        return bracketed(found)

    def render(self, entry: OutboxEntry) -> EmailMessage:
        """The email of an outbox entry, rendered the same way every time, archived once."""
        message = compose(entry, self.store, self.archive, letterhead=self.settings.letterhead, at=self.clock())
        data = bytes(message)
        digest = hashlib.sha256(data).hexdigest()
        if not self.archive.has(digest):
            self.archive.put(data)
            self.store.add_evidence(entry.plan_id, entry.version, digest, "out", entry.message_id,
                                    at=self.clock())
        return message

    def remind(self, report: PollReport) -> None:
        """Queue, by policy, the reminders due now and this week's digest to the seller, and send them
        (`mutualplan watch` calls it after each poll)."""
        now = self.clock()
        reminders.queue_reminders(self.store, self.settings, now)
        reminders.queue_digest(self.store, self.settings, now)
        self.flush(report, drafts=False)

    def approve(self, plan_id: str) -> list[str]:
        """Send the follow-ups of a plan that wait in Drafts, as the seller would from their mail client."""
        report = PollReport()
        with self._sending():
            for entry in self.store.outbox_drafted(plan_id):
                if self.mailbox.was_sent(entry.message_id):
                    # The seller sent this draft already, from their mail client: not a second time.
                    self._mark_sent(entry, report)
                else:
                    self._deliver(entry, report, force_send=True)
        return report.sent

    @contextmanager
    def _commit(self, message_id: str, plan_id: str | None = None) -> Iterator[None]:
        """One message's effects in one transaction, which first makes sure no other watcher recorded it meanwhile
        (raising _Handled): writers take turns on the store, so of two watchers reading one message, one acts.

        Writers to the plan take turns too, from the start: on PostgreSQL two confirmations of one plan committed
        side by side each saw only its own, and neither made the plan agreed.
        """
        with self.store.transaction():
            if plan_id is not None:
                self.store.lock_plan(plan_id)
            prior = self.store.message(message_id)
            if prior is not None:
                raise _Handled(prior)
            yield

    @contextmanager
    def _sending(self) -> Iterator[None]:
        """One process at a time sends from a home, the others wait: an email queued once must not go out from two
        watchers. The lock is the kernel's (flock), so a process that dies holds it no longer."""
        with open(self.spool.root / "send.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _hold(self, key: str | None, report: PollReport) -> None:
        """File a message that could not be handled in Held, where the seller sees it."""
        if not key:
            return
        try:
            self.mailbox.ack(key, HELD)
        except MailboxError as exc:
            report.errors.append(f"filing {key} in {HELD}: {exc}")

    def _crash_point(self, name: str) -> None:
        """Test-only (see CRASH_ENV): die here, with no chance to clean up, when the tests ask for it."""
        if self._crash_at == name:
            os.kill(os.getpid(), signal.SIGKILL)


class _Handled(Exception):
    """The message was recorded by another watcher between reading it and committing its effects."""

    def __init__(self, record: Any) -> None:
        super().__init__(record.message_id)
        self.record = record


def _meta_key(sidecar: Any) -> str | None:
    """The mailbox key in a spool sidecar, if it can be read."""
    try:
        return json.loads(sidecar.read_text()).get("key")
    except (OSError, ValueError):
        return None


def _body(raw: bytes) -> bytes:
    """A message's bytes after its headers."""
    ends = [(at, len(mark)) for mark in (b"\r\n\r\n", b"\n\n") if (at := raw.find(mark)) >= 0]
    if not ends:
        return b""
    at, size = min(ends)
    return raw[at + size:]


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def send_plan(store: Store, plan_id: str, *, at: datetime) -> OutboxEntry:
    """Queue the current version's plan email (the watcher's flush sends it); one that failed is tried again."""
    version = store.current(plan_id)
    entry = OutboxEntry.plan(version)
    queued = store.outbox_entry(entry.message_id)
    if queued is None:
        store.queue_email(entry, at=at)
    elif queued.state == "failed":
        # The seller fixed what stopped it (an address, the server): the same email, same Message-ID, again.
        store.outbox_mark(queued.message_id, "pending", at=at)
        return queued
    return entry


__all__ = ["Change", "PollReport", "Watcher", "send_plan", "system_clock"]
