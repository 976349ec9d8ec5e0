"""The last step of the receive path: a person's message in a plan's thread, read, authorized and decided on."""

from __future__ import annotations

from dataclasses import replace
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING

from pipeline.errors import ChangeError, PipelineError
from pipeline.loop import loops, policy, reminders, service
from pipeline.loop.act import Effects, NewVersion, Notice, Outcome
from pipeline.loop.parts import parse_time
from pipeline.mailbox.base import with_brackets
from pipeline.plan.changes import apply as apply_changes
from pipeline.plan.changes import conflicts as change_conflicts
from pipeline.replies.auth import exchange_internal, verdict
from pipeline.replies.interpret import local_date, read_reply

if TYPE_CHECKING:
    from pipeline.loop.parts import Parts
    from pipeline.loop.receive import Received
    from pipeline.loop.thread import ThreadRef
    from pipeline.plan.model import Version
    from pipeline.replies.message import Incoming


def reply(parts: Parts, msg: Received, thread: ThreadRef) -> Effects:
    """Who sent it, what it says, and what the policy makes of it (held, noted, applied, confirmed, declined)."""
    store, incoming = parts.store, msg.incoming
    current = store.current(thread.plan_id)
    assert current is not None  # a thread resolves only to stored plans
    # A version we never made ("v0", "v7" of two: forged or mangled) is no version to read the reply against.
    sent = 1 <= thread.version <= current.number
    base = store.version(thread.plan_id, thread.version) if sent and thread.version < current.number else current
    plan = current.plan
    sender = incoming.sender
    held = _held(parts, msg, current, base) or (None if sent else _never_sent(msg, current, thread.version))
    if held is not None:
        return held
    assert sender is not None  # _held holds a message with no single sender
    contact = plan.contact(sender)
    is_seller = sender == plan.seller.email.lower() or sender in parts.settings.seller_addresses
    # Our own words coming back (a robot echoing our email) are never a request; all of them, an echo.
    echoed = loops.echo(parts, msg, current)
    if echoed is not None:
        return echoed
    # An answer to a reminder is about the reminder's step ("done", "we need another week").
    interpretation = reminders.read_answer(store, incoming, base.plan, received=msg.received,
                                           ours=loops.our_words(parts, msg, plan.id))
    state = store.plan_state(plan.id)
    # Released by the seller (`mutualplan release`): changing the agreed plan is their call, made.
    reopen = state == "agreed" and "agreed" in msg.lifted
    facts = policy.Facts(
        sender=sender,
        sender_is_seller=is_seller,
        sender_confirms=bool(contact and contact.confirms),
        sender_decides=bool(contact and contact.role in ("decision-maker", "economic-buyer")),
        plan_state="open" if reopen else state,
        replied_version=base.number,
        current_version=current.number,
        intent=interpretation.intent,
        changes=tuple(interpretation.changes),
        unresolved=tuple(interpretation.unresolved),
        requests=tuple(interpretation.requests),
        conflicts=tuple(change_conflicts(base.plan, plan, interpretation.changes))
        if base.number != current.number and "conflict" not in msg.lifted else (),
        crossed=base.number != current.number and msg.received <= (parse_time(current.created) or msg.received),
    )
    decision = policy.decide(facts)
    if decision.disposition == policy.APPLIED and (stop := loops.runaway(parts, msg, current)) is not None:
        return stop
    if reopen and decision.disposition == policy.APPLIED:
        decision = replace(decision, reopen=True)
    # A forged From (dmarc=fail) is held whatever it says; an unproven one only when it would change the plan.
    trusted = bool(parts.settings.policy.trusted_authserv_ids)
    acts = decision.disposition in (policy.APPLIED, policy.DECLINED) or (
        # With no server trusted, no sender is proven: a confirmation that others must still match is recorded,
        # the one that would make the plan agreed waits for the seller, as every change does.
        decision.confirm and (trusted or not _others_waiting(parts, current, sender)))
    auth = None if "unauthenticated" in msg.lifted else authentication(parts, incoming, changes=acts)
    if auth is not None and is_seller:
        auth = seller_unproven(parts, msg, auth)
    if auth is not None:
        decision = policy.Decision(policy.HELD, auth, notify_seller=True, notes=decision.notes)
    # Held for review (nothing is trusted) is told each time, like any held reply; a suspected forgery once a day.
    notice = Notice("unauthenticated" if auth and trusted else decision.disposition, decision.reason, incoming,
                    notes=decision.notes, interpretation=interpretation)
    outcome = Outcome(decision.disposition, decision.reason, plan.id, current.number)
    if decision.disposition == policy.APPLIED:
        return _apply(parts, msg, current, decision, notice)
    if decision.confirm:
        return Effects(outcome, confirm=current, notice=Notice("held", decision.reason, incoming, decision.notes,
                                                               interpretation), sender=sender)
    if decision.decline:
        return Effects(outcome, notice=notice, state="declined", sender=sender)
    return Effects(outcome, notice=notice if decision.notify_seller else None, sender=sender)


def _held(parts: Parts, msg: Received, current: Version, base: Version) -> Effects | None:
    """Held before it is read for changes: no single sender, a sender outside the plan, a body not read reliably."""
    incoming, plan = msg.incoming, current.plan
    sender = incoming.sender

    def held(reason: str, notice: Notice) -> Effects:
        return Effects(Outcome(policy.HELD, reason, plan.id, current.number), notice=notice, sender=sender)

    if sender is None:
        return held("no single valid sender address",
                    Notice("no-sender", "the message has no single valid From address", incoming,
                           interpretation=read_reply(incoming, base.plan, received=msg.received)))
    is_seller = sender == plan.seller.email.lower() or sender in parts.settings.seller_addresses
    if not is_seller and plan.contact(sender) is None:
        # What it said goes to the seller (read, never applied): they decide whether it matters.
        return held(f"{sender} is not a participant of the plan",
                    Notice("outsider", f"{sender} is not one of the plan's contacts; nothing was applied", incoming,
                           interpretation=read_reply(incoming, base.plan, received=msg.received)))
    if incoming.malformed:
        # A body read from a broken structure or an unknown charset may not say what was written.
        why = f"the message could not be read reliably ({incoming.malformed}); nothing was applied"
        return held(why, Notice("malformed", why, incoming))
    return None


def _never_sent(msg: Received, current: Version, number: int) -> Effects:
    """Held: it answers a version of the plan we never sent, so what it confirms or changes is unknown."""
    why = (f"it answers version {number} of the plan, which was never sent (version {current.number} is "
           "current); nothing was applied")
    notice = Notice("held", why, msg.incoming, interpretation=read_reply(msg.incoming, current.plan,
                                                                          received=msg.received))
    return Effects(Outcome(policy.HELD, why, current.plan.id, current.number), notice=notice,
                   sender=msg.incoming.sender)


def _apply(parts: Parts, msg: Received, current: Version, decision: policy.Decision, notice: Notice) -> Effects:
    """The requested changes as the next version, or held with the reason they cannot apply."""
    plan = current.plan
    today = local_date(parts.clock(), plan.timezone)
    try:
        new_plan = apply_changes(plan, decision.changes, today=today)
    except ChangeError as exc:
        why = f"the requested changes cannot be applied: {exc.message}"
        return Effects(Outcome(policy.HELD, why, plan.id, current.number),
                       notice=Notice("held", why, msg.incoming, notice.notes, notice.interpretation),
                       sender=msg.incoming.sender)
    # Nothing is asked in return for the seller's own change.
    asks = [] if decision.by_seller else policy.suggested_asks(plan, decision.changes, parts.settings.policy.asks)
    mode = "send" if parts.settings.policy.changes == "auto" else "draft"
    version = NewVersion(
        plan=new_plan, base=current, changes=tuple(decision.changes),
        reason=service.Reason.SELLER_EMAIL if decision.by_seller else service.Reason.REPLY, why=decision.reason,
        mode=mode,
        asks=tuple(asks), notes=tuple(decision.notes), by_seller=decision.by_seller, reopen=decision.reopen,
        interpretation=notice.interpretation,
    )
    return Effects(Outcome(policy.APPLIED, decision.reason, plan.id, current.number), version=version,
                   sender=msg.incoming.sender)


# Why a message that would act is held when no server is trusted: `release` (loop/release.py) lifts it.
UNPROVEN = ("not authenticated: no trusted authserv-id is set ([policy] trusted_authserv_ids), so no sender is "
            "proven; it waits for your review (`mutualplan release MESSAGE_ID` accepts it)")
# Backends where only the seller's own Exchange organization can have written its X-MS-Exchange-Organization headers.
_EXCHANGE = ("exchange", "graph")


def authentication(parts: Parts, incoming: Incoming, *, changes: bool = True) -> str | None:
    """Why the sender's identity is not proven well enough (to change a plan, with `changes`), or None.

    Unknown is not a pass: with no trusted server named, nothing is proven, so every message that would act waits.
    """
    trusted = parts.settings.policy.trusted_authserv_ids
    if not trusted:
        return UNPROVEN if changes else None
    return verdict(incoming.raw_headers, trusted, incoming.sender, changes=changes)


def seller_unproven(parts: Parts, msg: Received, reason: str) -> str | None:
    """Why a message from one of the seller's addresses is not proven theirs (`reason`: what authentication said), or
    None when their own server marked it internal or their Sent folder holds the same message."""
    incoming = msg.incoming
    if parts.settings.mailbox.get("backend") in _EXCHANGE and exchange_internal(incoming.raw_headers):
        return None
    if _in_sent(parts, msg):
        return None
    return f"{reason}; and it is neither marked internal by your mail server nor in your Sent folder"


def _in_sent(parts: Parts, msg: Received) -> bool:
    """Whether Sent holds this very message: its Message-ID is known to everyone who got it, so its body must match."""
    try:
        box = parts.mailbox
        # Only a backend that can show the copy proves anything: by the Message-ID alone, nothing.
        listing = getattr(box, "messages", None)
        if listing is None or not box.was_sent(msg.message_id):
            return False
        copies = [raw for raw in listing("Sent") if _message_id(raw) == with_brackets(msg.message_id)]
    except (PipelineError, RuntimeError):
        return False  # the mailbox is down (or none is open): not proven, held; `mutualplan release` accepts it
    from pipeline.loop.receive import split_message

    return any(_body(split_message(copy)[1]) == _body(split_message(msg.raw)[1]) for copy in copies)


def _message_id(raw: bytes) -> str:
    from pipeline.loop.receive import split_message

    value = BytesHeaderParser(policy=compat32).parsebytes(split_message(raw)[0] + b"\n\n").get("Message-ID")
    return with_brackets(str(value)) if value else ""


def _body(raw: bytes) -> bytes:
    # A copy filed by another program may differ in line endings or a trailing newline, never in its words.
    return raw.replace(b"\r\n", b"\n").strip()


def _others_waiting(parts: Parts, current: Version, sender: str) -> bool:
    """Whether another confirming contact has still to confirm the current version (this one does not agree it)."""
    confirmed = parts.store.confirmations(current.plan_id, current.number)
    return any(c.email.lower() not in confirmed and c.email.lower() != sender for c in current.plan.confirmers)
