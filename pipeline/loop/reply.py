"""The last step of the receive path: a person's message in a plan's thread, read, authorized and decided on."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline.errors import ChangeError
from pipeline.loop import policy, reminders, service
from pipeline.loop.act import Effects, NewVersion, Notice, Outcome
from pipeline.loop.parts import parse_time
from pipeline.plan.changes import apply as apply_changes
from pipeline.plan.changes import conflicts as change_conflicts
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
    # An answer to a reminder is about the reminder's step ("done", "we need another week").
    interpretation = reminders.read_answer(store, incoming, base.plan, received=msg.received)
    state = store.plan_state(plan.id)
    # Released by the seller (`mutualplan release`): changing the agreed plan is their call, made.
    reopen = state == "agreed" and "agreed" in msg.lifted
    facts = policy.Facts(
        sender=sender,
        sender_is_seller=is_seller,
        sender_confirms=bool(contact and contact.confirms),
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
    if reopen and decision.disposition == policy.APPLIED:
        decision = replace(decision, reopen=True)
    # A forged From (dmarc=fail) is held whatever it says; an unproven one only when it would change the plan.
    auth = None if "unauthenticated" in msg.lifted else authentication(
        parts, incoming, changes=decision.disposition in (policy.APPLIED, policy.CONFIRMED, policy.DECLINED)
    )
    if auth is not None:
        decision = policy.Decision(policy.HELD, auth, notify_seller=True)
    notice = Notice("unauthenticated" if auth else decision.disposition, decision.reason, incoming,
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


def authentication(parts: Parts, incoming: Incoming, *, changes: bool = True) -> str | None:
    """Why the sender's identity is not proven well enough (to change a plan, with `changes`), or None."""
    trusted = parts.settings.policy.trusted_authserv_ids
    if not trusted:
        return None
    from pipeline.replies.auth import verdict  # only needed when authentication is configured

    return verdict(incoming.raw_headers, trusted, incoming.sender, changes=changes)
