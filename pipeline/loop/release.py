"""`mutualplan release`: a message the watcher held is handled as if new, with the hold that stopped it lifted.

A release says "act on it". The seller can lift the holds that wait on their judgement:

- throttled: the sender was over the hourly limit;
- unauthenticated: the sender's identity was not proven (or a plan email from the seller was not);
- conflict: changes to an older version touching what changed since (they apply to the current version);
- agreed: a change to the mutually agreed plan (it makes the next version, which the prospect confirms again);
- loop: versions in a row made from replies and sent at once (loop/loops.py).

Two holds are released once what caused them changed: a sender outside the plan (after the seller adds them as a
contact) and a declined plan (after `mutualplan reopen`). The rest are refused with what to do instead: a message
over the size limit (never kept), an altered copy, no single sender, a body not read reliably, changes that cannot
apply, a confirmation that crossed with a newer version. The message's bytes come from the archive; its record is
replaced, with the release audited, in the transaction of its effects. A message released and held again for
another reason keeps the holds lifted before when it is released again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError
from pipeline.loop import act, policy, receive
from pipeline.loop.parts import parse_time
from pipeline.loop.seller_actions import seller_of
from pipeline.store import VersionConflict

if TYPE_CHECKING:
    from pipeline.loop.parts import Parts
    from pipeline.store import MessageRecord

LIFTABLE = ("throttled", "unauthenticated", "conflict", "agreed", "loop")


class ReleaseError(PipelineError):
    """A message that cannot be released (not held, or held for what a release does not lift)."""


@dataclass(frozen=True)
class Hold:
    """Why a message is held, as a release sees it: its kind, whether a release lifts it, and what to do if not."""

    kind: str
    lift: bool = False  # a release lifts it; else it is released only once what caused it changed
    hint: str = ""
    again: bool = False  # not lifted, but handled again: what caused it may have changed


# The held reasons the loop writes (receive.py, reply.py, act.py, inbound_plan.py, replies/auth.py), first match.
_HOLDS: tuple[tuple[re.Pattern[str], Hold], ...] = tuple((re.compile(p), h) for p, h in (
    (r"^throttled:", Hold("throttled", lift=True)),
    (r"^loop suspected:", Hold("loop", lift=True)),
    (r"^not authenticated:|reports dmarc=fail|whose sender is not proven", Hold("unauthenticated", lift=True)),
    (r"^replied to version \d+; the changes touch", Hold("conflict", lift=True)),
    (r"^the plan is mutually agreed on version \d+; a change to it waits", Hold("agreed", lift=True)),
    (r" is not a participant of the plan$", Hold(
        "outsider", again=True, hint="a release never makes someone a participant: add them to the plan's contacts "
        "(edit the plan, `mutualplan add PLAN.md`), then release it again")),
    (r"^the plan is (declined|closed)", Hold(
        "plan state", again=True, hint="`mutualplan reopen PLAN_ID` first, if the prospect is back")),
    (r"^crossed with version", Hold(
        "crossed", hint="they confirmed an older version; if they agree to the current one, record it with "
        "`mutualplan confirm PLAN_ID --contact EMAIL --note TEXT`")),
    (r"^no single valid sender", Hold("no sender", hint="answer the sender yourself from the mailbox's Held folder")),
    (r"^the message could not be read reliably", Hold(
        "malformed", hint="read it in the mailbox's Held folder; `mutualplan apply` makes the changes it asks for")),
    (r"^the requested changes cannot be applied", Hold(
        "cannot apply", hint="make what should change with `mutualplan apply PLAN_ID CHANGES.json`")),
    (r"was seen before with other content", Hold(
        "altered copy", hint="a second message under a Message-ID seen before is never acted on")),
    (r"^refused unread", Hold("too large", hint="it was never kept; read it in the mailbox's Held folder")),
    (r"that does not parse", Hold("plan does not parse", hint="answer the note about it with the plan corrected")),
))


@dataclass(frozen=True)
class Released:
    """What a release did: the hold it lifted, how the message was held, and how it ended now."""

    message_id: str
    hold: str
    lifted: bool
    was: str
    was_reason: str
    outcome: act.Outcome
    then: str = ""  # held again for another reason: what to do about that one


def hold_of(reason: str | None) -> Hold:
    """The kind of hold a held message's recorded reason names."""
    for pattern, hold in _HOLDS:
        if pattern.search(reason or ""):
            return hold
    return Hold("other", hint="this hold is not one a release lifts")


def release(parts: Parts, message_id: str) -> Released:
    """Handle a held message again, its hold lifted, replacing its record in the transaction of its effects."""
    wanted = message_id.strip().strip("<>").strip()
    if not wanted:
        raise ReleaseError("no Message-ID given", hint="`mutualplan status` lists the held messages with theirs")
    for attempt in range(2):
        try:
            with parts.store.transaction():
                return _release(parts, wanted)
        except VersionConflict:
            # Another watcher made a version while this one read the message: read it again against that version.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _release(parts: Parts, message_id: str) -> Released:
    record = _held_record(parts, message_id)
    hold = hold_of(record.reason)
    if not (hold.lift or hold.again):
        raise ReleaseError(f"{message_id} is held for what a release does not lift ({hold.kind}): {record.reason}",
                           hint=hold.hint)
    raw = parts.archive.get(record.raw_sha256)
    msg = receive.Received.read(raw, parse_time(record.received) or parts.clock(),
                                own_domains=parts.settings.own_domains, limit=parts.settings.policy.max_message_bytes)
    msg = replace(msg, lifted=_lifted_before(parts, record) | ({hold.kind} if hold.lift else set()))
    # As if new: every step but the one that knows the message (its record is what the release replaces).
    fx = next(e for step in receive.STEPS if step is not receive.duplicate and (e := step(parts, msg)) is not None)
    if fx.outcome.disposition in (policy.HELD, policy.REJECTED) and hold_of(fx.outcome.reason).kind == hold.kind:
        raise ReleaseError(f"{message_id} would be held again: {fx.outcome.reason}", hint=hold.hint)
    try:
        outcome = act.commit(parts, msg, replace(fx, record_id=record.message_id), release=True)
    except act.Handled as done:
        raise ReleaseError(f"{message_id} was handled meanwhile: {done.record.disposition}") from None
    detail = {"message_id": record.message_id, "hold": hold.kind, "lifted": hold.lift, "was": record.disposition,
              "was_reason": record.reason, "disposition": outcome.disposition, "reason": outcome.reason,
              "released_by": _seller(parts, outcome.plan_id or record.plan_id)}
    parts.store.audit("message released", at=parts.clock(), plan_id=outcome.plan_id or record.plan_id, detail=detail)
    then = ""
    if outcome.disposition in (policy.HELD, policy.REJECTED):
        again = hold_of(outcome.reason)
        then = f"`mutualplan release {record.message_id}` again lifts this hold too" if again.lift else again.hint
    return Released(record.message_id, hold.kind, hold.lift, record.disposition, record.reason or "", outcome, then)


def _held_record(parts: Parts, message_id: str) -> MessageRecord:
    record = parts.store.message(message_id)
    if record is None:
        raise ReleaseError(f"no message {message_id} was recorded",
                           hint="`mutualplan status` lists the held messages with their Message-IDs")
    if record.disposition not in (policy.HELD, policy.REJECTED):
        raise ReleaseError(f"{message_id} is not held: it was {record.disposition} ({record.reason})",
                           hint="only a message the watcher held (`mutualplan status`) can be released")
    if not parts.archive.has(record.raw_sha256):
        raise ReleaseError(f"{message_id} was not kept, so it cannot be handled again ({record.reason})",
                           hint="read it in the mailbox's Held folder and answer it yourself")
    return record


def _lifted_before(parts: Parts, record: MessageRecord) -> frozenset[str]:
    """The holds earlier releases of this message lifted: released once, held again for another reason, it keeps
    the first lifted too (else it would go back and forth between the two)."""
    return frozenset(e.detail["hold"] for e in parts.store.audit_log(record.plan_id)
                     if e.event == "message released" and e.detail.get("message_id") == record.message_id
                     and e.detail.get("lifted"))


def _seller(parts: Parts, plan_id: str | None) -> str:
    current = parts.store.current(plan_id) if plan_id else None
    return seller_of(parts, current.plan) if current else str(parts.settings.seller.get("email", "")) or "seller"
