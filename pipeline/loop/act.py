"""A step's effects, as data, and the one place they are committed: in one transaction, once per message.

A step of the receive path (receive.py) reads and decides; it returns `Effects`. `commit` carries them out:
the plan's row lock first, then a check that no other watcher recorded the message meanwhile, then the version,
the confirmation, the plan's state, the notice to the seller, the archive and the message's record, all or none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pipeline.loop import inbound_plan, outbox, policy, service
from pipeline.plan.changes import apply as apply_changes
from pipeline.plan.diff import agreement_step
from pipeline.plan.model import Change, Plan, Version
from pipeline.replies.interpret import local_date
from pipeline.store import MessageRecord, OutboxEntry, utc_iso

if TYPE_CHECKING:
    from pipeline.loop.parts import Parts
    from pipeline.loop.receive import Received
    from pipeline.replies.message import Incoming


@dataclass(frozen=True)
class Outcome:
    """How one message ended."""

    disposition: str
    reason: str
    plan_id: str | None = None
    version: int | None = None
    first: str | None = None  # a duplicate's: how the first copy ended, which decides where this copy is filed
    stay: bool = False  # left where it is in the mailbox: the seller's to read (our notices, their Cc copies)
    message_id: str | None = None  # the message's id as read (set by the runner)


@dataclass(frozen=True)
class Notice:
    """A note to the seller about the message: what it said and why nothing (or only part) changed."""

    about: str  # what the note is about (held, outsider, throttled ...): one note per sender, `about` and day
    reason: str
    incoming: Incoming
    notes: tuple[str, ...] = ()
    interpretation: Any = None


@dataclass(frozen=True)
class NewVersion:
    """Changes a reply asked for, to store as the next version and send in its thread."""

    plan: Plan  # the plan with the changes applied
    base: Version  # the current version the changes apply to
    changes: tuple[Change, ...]
    reason: service.Reason
    why: str  # the decision's reason, for the message's record
    mode: str  # send | draft: the follow-up goes out at once, or waits in Drafts for the seller
    asks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # sentences that could not be mapped: told to the seller
    by_seller: bool = False
    reopen: bool = False
    interpretation: Any = None


@dataclass(frozen=True)
class Effects:
    """What one message causes; `commit` carries it out in one transaction."""

    outcome: Outcome
    record_id: str | None = None  # recorded under this id instead of the message's own (an altered copy)
    keep: bool = True  # the raw bytes go into the archive (and the plan's evidence)
    notice: Notice | None = None
    state: str | None = None  # the plan's new state (declined ...)
    audit: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    version: NewVersion | None = None
    confirm: Version | None = None  # the sender confirms this (current) version
    plan_email: str | None = None  # how the message is a plan the seller wrote (bcc, subject tag ...)
    refused: str | None = None  # a plan email whose sender is not proven: why
    sender: str | None = None  # recorded as the message's sender (counted by the hourly limit per sender)
    record: bool = True  # False: nothing to commit (a duplicate)


class Handled(Exception):
    """The message was recorded by another watcher between reading it and committing its effects."""

    def __init__(self, record: MessageRecord) -> None:
        super().__init__(record.message_id)
        self.record = record


def commit(parts: Parts, msg: Received, fx: Effects, *, release: bool = False) -> Outcome:
    """Carry out a step's effects in one transaction; raises Handled if another watcher recorded the message.

    `release`: the seller released a message the watcher held; its record (held or rejected) is replaced, in the
    same transaction as the effects.
    """
    if not fx.record:
        return fx.outcome
    record_id = fx.record_id or msg.message_id
    plan_id = fx.outcome.plan_id
    # Checked before the transaction: a DNS look-up must not hold the plan's lock.
    auth = authenticate(parts, msg) if fx.keep and plan_id and msg.raw else None
    with exclusive(parts, record_id, plan_id, release=release):
        outcome = fx.outcome
        if fx.plan_email is not None:
            done = inbound_plan.accept(parts.store, parts.settings, msg.incoming, msg.raw, received=msg.received,
                                       now=parts.clock(), how=fx.plan_email, refused=fx.refused)
            outcome = replace(outcome, disposition=done.disposition, reason=done.reason, plan_id=done.plan_id,
                              version=done.version)
        elif fx.confirm is not None:
            outcome, fx = _confirm(parts, msg, fx, fx.confirm)
        elif fx.version is not None:
            outcome = _new_version(parts, msg, fx.version)
        for event, detail in fx.audit:
            parts.store.audit(event, at=parts.clock(), plan_id=outcome.plan_id, detail=detail)
        if fx.state and outcome.plan_id:
            parts.store.set_plan_state(outcome.plan_id, fx.state, at=parts.clock())
        if fx.notice is not None and outcome.plan_id and outcome.version is not None:
            _notify(parts, fx.notice, outcome, record_id)
        _record(parts, msg, outcome, record_id, keep=fx.keep, sender=fx.sender, release=release)
        if auth is not None and outcome.plan_id:
            parts.store.record_authentication(record_id, msg.digest, *auth, at=msg.received)
    return outcome


def authenticate(parts: Parts, msg: Received) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """How the sender was authenticated on arrival: our DKIM check (with its key record) and the trusted
    Authentication-Results, kept with the evidence so a later review does not depend on DNS then."""
    from pipeline.replies import auth, dkim

    found = auth.results(msg.incoming.raw_headers, parts.settings.policy.trusted_authserv_ids)
    results = [{"authserv_id": r.authserv_id, "method": r.method, "result": r.result} for r in found
               if r.index == 0 and r.method in ("dmarc", "dkim", "spf")]
    return dkim.check(msg.raw).to_dict(), results


@contextmanager
def exclusive(parts: Parts, message_id: str, plan_id: str | None = None, *, release: bool = False) -> Iterator[None]:
    """One message's effects in one transaction, which first makes sure no other watcher recorded it meanwhile
    (raising Handled): writers take turns on the store, so of two watchers reading one message, one acts.

    Writers to the plan take turns too, from the start: on PostgreSQL two confirmations of one plan committed
    side by side each saw only its own, and neither made the plan agreed. With `release`, the record must still be
    held (or rejected): of two releases of one message, one acts.
    """
    with parts.store.transaction():
        if plan_id is not None:
            parts.store.lock_plan(plan_id)
        prior = parts.store.message(message_id)
        if prior is not None and not (release and prior.disposition in (policy.HELD, policy.REJECTED)):
            raise Handled(prior)
        yield


def _confirm(parts: Parts, msg: Received, fx: Effects, current: Version) -> tuple[Outcome, Effects]:
    plan = current.plan
    store = parts.store
    latest = store.current(plan.id)
    if latest is not None and latest.number != current.number:
        # Another watcher made a version while this one read the confirmation: it confirms an old one.
        why = (f"crossed with version {latest.number}: confirmed version {current.number}, which another "
               "reply changed while this one was read")
        notice = replace(fx.notice or Notice("held", why, msg.incoming), about="held", reason=why)
        return Outcome(policy.HELD, why, plan.id, latest.number), replace(fx, notice=notice)
    outcome = confirm_version(parts, current, msg.incoming.sender or "", msg.message_id, at=msg.received,
                              reply=msg.incoming)
    return outcome, replace(fx, notice=None)


def confirm_version(parts: Parts, current: Version, email: str, evidence: str, *, at: datetime,
                    reply: Any = None, detail: Mapping[str, Any] | None = None) -> Outcome:
    """Record a contact's confirmation of the current version (`evidence`: the email's Message-ID, or the seller's
    marker; `detail` goes into its audit entry); the last one makes the plan agreed and queues the agreed email to
    all, in the thread of `reply`.

    The watcher (a reply) and the seller (a confirmation given on a call) both come here, inside their transaction.
    """
    plan, store = current.plan, parts.store
    store.confirm(plan.id, current.number, email, evidence, at=at, detail=detail)
    confirmed = store.confirmations(plan.id, current.number)
    waiting = [c.email for c in plan.confirmers if c.email.lower() not in confirmed]
    if waiting:
        return Outcome(policy.CONFIRMED, f"{email} confirmed version {current.number}; "
                       f"waiting on {', '.join(waiting)}", plan.id, current.number)
    record_agreement(parts, current, reply=reply)
    return Outcome(policy.AGREED, f"every confirming contact confirmed version {current.number}",
                   plan.id, current.number)


def record_agreement(parts: Parts, agreed: Version, *, reply: Any | None) -> None:
    """The plan is mutually agreed on `agreed`: its state, the 'agreed' email to everyone, and the plan's own step of
    agreement (its "Mutually agreed plan" milestone) marked done in a version that records only that progress."""
    store, now = parts.store, parts.clock()
    store.set_plan_state(agreed.plan_id, "agreed", at=now)
    store.queue_email(outbox.agreed(agreed, reply=reply), at=now)
    step = agreement_step(agreed.plan)
    if step is None:
        return
    change = Change(op="status", milestone=step.id, status="done")
    plan = apply_changes(agreed.plan, [change], today=local_date(now, agreed.plan.timezone))
    service.make_version(store, plan, author=agreed.plan.seller.email, reason=service.Reason.AGREEMENT,
                         changes=[change], created=now, expect_number=agreed.number + 1)


def _new_version(parts: Parts, msg: Received, nv: NewVersion) -> Outcome:
    """Store the changes as the next version and queue its follow-up (and the seller's notes) in the thread."""
    incoming, now = msg.incoming, parts.clock()
    version = service.make_version(
        parts.store, nv.plan, author=incoming.sender or "", reason=nv.reason, changes=nv.changes,
        message_id=incoming.message_id, created=now, expect_number=nv.base.number + 1,
    )
    # One read of the plan's emails serves both: superseding touches only those not sent.
    entries = parts.store.outbox_entries(nv.plan.id)
    _supersede(parts, entries, version.number)
    # The changes are told against the version the prospect last received, not a draft they never saw.
    before = service.last_sent(entries)
    since = before.version if before is not None and before.version is not None else nv.base.number
    parts.store.queue_email(outbox.update(
        version, since=since, reply=incoming, mode=nv.mode,
        # The sentences that could not be mapped go to the seller in a notice (below), never back to the
        # prospect: echoed bare in the follow-up they read as if the plan had answered them.
        asks=list(nv.asks) if nv.mode == "draft" else [], notes=[], by_seller=nv.by_seller,
    ), at=now)
    if nv.mode == "send" and nv.asks:
        parts.store.queue_email(outbox.notice(
            version.plan, version.number, incoming, kind="ask",
            reason="the prospect asked for changes; here is something to ask in return",
            notes=list(nv.asks), interpretation=nv.interpretation, changed=True,
        ), at=now)
    if nv.notes:
        parts.store.queue_email(outbox.notice(
            version.plan, version.number, incoming, kind="notice",
            reason="applied what could be mapped; these sentences need you", notes=list(nv.notes),
            interpretation=nv.interpretation, changed=True,
        ), at=now)
    return Outcome(policy.APPLIED, f"made version {version.number}: {nv.why}", nv.plan.id, version.number)


# Notices about what a participant said, read and decided on (a question, a request held, a withdrawal): each one
# goes to the seller. The rest (outsiders, floods, forged or unreadable mail) go once a day per sender and kind.
TOLD_EACH = (policy.NOTED, policy.HELD, policy.DECLINED)


def _supersede(parts: Parts, entries: list[OutboxEntry], number: int) -> None:
    """An older version's email that has not gone out is replaced by this version's: one waiting to be sent is
    dropped, one in the seller's Drafts is taken out of Drafts by the next delivery (never sent stale)."""
    for entry in entries:
        if entry.kind in service.ANNOUNCING and (entry.version or 0) < number and entry.state in ("pending", "drafted"):
            state = "superseded" if entry.state == "pending" else "superseding"
            parts.store.outbox_mark(entry.message_id, state, at=parts.clock(),
                                    error=f"superseded by version {number}")


def _notify(parts: Parts, notice: Notice, outcome: Outcome, record_id: str) -> None:
    """Queue the seller's note; of a kind capped a day (see TOLD_EACH), not when one went out in the last day."""
    assert outcome.plan_id is not None and outcome.version is not None  # checked by the caller
    current = parts.store.version(outcome.plan_id, outcome.version)
    entry = outbox.notice(current.plan, outcome.version, notice.incoming, kind="notice", reason=notice.reason,
                               notes=list(notice.notes), interpretation=notice.interpretation)
    entry.data["about"] = notice.about
    title = _notes_title(notice)
    if title:
        entry.data["notes_title"] = title
    capped = notice.about not in TOLD_EACH or not _participant(parts, current.plan, notice.incoming.sender)
    if capped and _told_today(parts, entry):
        # One notice per sender, kind and day: a flood, or a forger's hundred tries, tells the seller once; the
        # weekly digest lists what was held back (reminders.digest).
        parts.store.audit("notice.skipped", at=parts.clock(), plan_id=outcome.plan_id,
                          detail={"message_id": record_id, "about": notice.about,
                                  "sender": notice.incoming.sender, "reason": outcome.reason})
    else:
        parts.store.queue_email(entry, at=parts.clock())


def _participant(parts: Parts, plan: Plan, sender: str | None) -> bool:
    """Whether a sender is one of the plan's contacts or the seller."""
    if not sender:
        return False
    sender = sender.lower()
    return (plan.contact(sender) is not None or sender == plan.seller.email.lower()
            or sender in parts.settings.seller_addresses)


def _notes_title(notice: Notice) -> str:
    """The heading of a notice's sentences when none asked for a change: questions, or words to answer."""
    requests = set(getattr(notice.interpretation, "requests", None) or ())
    if not notice.notes or notice.interpretation is None or requests & set(notice.notes):
        return ""  # the default: "Not acted on"
    if all(note.rstrip().endswith("?") for note in notice.notes):
        return "The question:" if len(notice.notes) == 1 else "The questions:"
    return "For you to answer:"


def _told_today(parts: Parts, entry: OutboxEntry) -> bool:
    """Whether a notice of this kind about this sender went to the seller about this plan in the last day."""
    assert entry.plan_id is not None  # outbox.notice writes the plan's id on every notice
    since = utc_iso(parts.clock() - timedelta(days=1))
    sender = (entry.data.get("reply") or {}).get("from")
    return any(
        e.kind == entry.kind and e.data.get("about") == entry.data["about"]
        and (e.data.get("reply") or {}).get("from") == sender and str(e.data.get("created", "")) >= since
        for e in parts.store.outbox_entries(entry.plan_id)
    )


def _record(parts: Parts, msg: Received, outcome: Outcome, record_id: str, *, keep: bool,
            sender: str | None, release: bool = False) -> None:
    """The message's record (and its bytes in the archive, as evidence of its plan, when kept)."""
    if keep and msg.raw:
        parts.archive.put(msg.raw)
        if outcome.plan_id:
            parts.store.add_evidence(outcome.plan_id, outcome.version, msg.digest, "in", record_id, at=msg.received)
    if release:
        parts.store.set_disposition(record_id, outcome.disposition, at=parts.clock(), reason=outcome.reason,
                                    plan_id=outcome.plan_id, version=outcome.version)
    else:
        parts.store.record_message(
            message_id=record_id, raw_sha256=msg.digest, plan_id=outcome.plan_id, version=outcome.version,
            disposition=outcome.disposition, reason=outcome.reason, received=msg.received, sender=sender,
        )
    parts.store.audit(f"message.{outcome.disposition}", at=parts.clock(), plan_id=outcome.plan_id,
                      detail={"message_id": record_id, "reason": outcome.reason, "version": outcome.version})


