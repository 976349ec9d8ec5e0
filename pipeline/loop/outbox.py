"""Who each email we send goes to, in which thread, under which Message-ID: the queue's entries, built.

An entry holds only data (store/queue.py); the email is rendered from it when it is sent, and renders the same
bytes every time, so a retry after a crash sends exactly what the first attempt would have sent.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipeline.plan.ids import bracketed, message_id, seller_message_id
from pipeline.plan.model import Plan, Version
from pipeline.store import OutboxEntry

KINDS = ("plan", "update", "agreed", "notice", "ask", "reminder", "digest", "plan_error")


def _thread(reply: Any) -> tuple[str, tuple[str, ...]]:
    """In-Reply-To and References for an answer to `reply`: its id, after its own references (the last 20)."""
    own = bracketed(reply.message_id)
    refs = [bracketed(r) for r in getattr(reply, "references", ())[-20:]]
    return own, tuple(dict.fromkeys([*refs, own]))


def _reply_summary(reply: Any) -> dict[str, Any]:
    """What a notice needs to know of the message it answers (Incoming, duck-typed)."""
    return {
        "message_id": reply.message_id,
        "from": reply.sender,
        "from_name": getattr(reply, "sender_name", ""),
        "subject": (reply.subject or "")[:300],
        "date": reply.date.isoformat() if getattr(reply, "date", None) else None,
        "references": list(getattr(reply, "references", ()))[-20:],
    }


def plan_email(version: Version) -> OutboxEntry:
    """A version's plan email: to the confirming contacts, the other contacts in Cc."""
    plan = version.plan
    to = tuple(c.email for c in plan.confirmers) or tuple(c.email for c in plan.prospect.contacts[:1])
    cc = tuple(c.email for c in plan.prospect.contacts if c.email not in to)
    return OutboxEntry(message_id=message_id(plan, version.number), plan_id=plan.id,
                       version=version.number, kind="plan", to=to, cc=cc)


def update(version: Version, *, since: int, reply: Any, mode: str, asks: list[str],
           notes: list[str], by_seller: bool = False) -> OutboxEntry:
    """The next version after a change request, in the thread of that request.

    `by_seller`: the seller asked for the changes; the version goes to the prospect's people to confirm
    (the seller is not one of its recipients)."""
    plan = version.plan
    sender = reply.sender
    first = [] if by_seller else [sender]
    to = tuple(dict.fromkeys([*first, *(c.email for c in plan.confirmers)]))
    if not to:
        to = tuple(c.email for c in plan.prospect.contacts[:1])
    cc = tuple(c.email for c in plan.prospect.contacts if c.email not in to)
    in_reply_to, refs = _thread(reply)
    data: dict[str, Any] = {"since": since, "asks": asks, "notes": notes, "reply": _reply_summary(reply)}
    if by_seller:
        data["by_seller"] = True
    return OutboxEntry(
        message_id=message_id(plan, version.number), plan_id=plan.id, version=version.number,
        kind="update", mode=mode, to=to, cc=cc, in_reply_to=in_reply_to, references=refs, data=data,
    )


def seller_update(version: Version, *, since: int, thread: tuple[str, ...]) -> OutboxEntry:
    """A version the seller made (a file, a step marked done) sent to a prospect who has version `since`: the
    update email, in the plan's thread after our last email, to the confirming contacts (the others in Cc)."""
    entry = plan_email(version)
    refs = tuple(bracketed(t) for t in thread[-20:])
    return replace(entry, kind="update", in_reply_to=refs[-1] if refs else None, references=refs,
                   data={"since": since, "asks": [], "notes": [], "by_seller": True})


def in_thread(version: Version, reply: Any) -> OutboxEntry:
    """Version 1 of a plan the seller wrote in an email: the letter, sent at once as a reply to that email."""
    entry = plan_email(version)
    in_reply_to, refs = _thread(reply)
    return replace(entry, in_reply_to=in_reply_to, references=refs,
                   data={"reply": _reply_summary(reply), "reply_subject": (reply.subject or "")[:300]})


def reminder(version: Version, *, milestone: str, due: str, when: str, to: tuple[str, ...],
             cc: tuple[str, ...], thread: tuple[str, ...]) -> OutboxEntry:
    """A short reminder to a milestone's owner, `when` "before" its due date or "overdue", in the plan's thread.

    Its Message-ID is keyed by milestone, due date and when, so each is sent once; a moved date is a new key."""
    plan = version.plan
    key = f"{milestone}|{due}|{when}"
    refs = tuple(bracketed(t) for t in thread[-20:])
    return OutboxEntry(message_id=message_id(plan, version.number, "reminder", key),
                       plan_id=plan.id, version=version.number, kind="reminder", to=to, cc=cc,
                       in_reply_to=refs[-1] if refs else None, references=refs,
                       data={"milestone": milestone, "due": due, "when": when, "key": key})


def agreed(version: Version, *, reply: Any | None = None) -> OutboxEntry:
    """Everyone confirmed: the final letter to all."""
    plan = version.plan
    to = tuple(c.email for c in plan.prospect.contacts)
    refs: tuple[str, ...] = ()
    in_reply_to = None
    if reply is not None:
        in_reply_to, refs = _thread(reply)
    return OutboxEntry(message_id=message_id(plan, version.number, "agreed"),
                       plan_id=plan.id, version=version.number, kind="agreed", to=to,
                       cc=(plan.seller.email,) if plan.seller.email else (), in_reply_to=in_reply_to, references=refs)


def notice(plan: Plan, version: int, reply: Any, *, kind: str, reason: str, notes: list[str],
           interpretation: Any | None = None, changed: bool = False) -> OutboxEntry:
    """A note to the seller alone: what a message said and why nothing (or only part) changed.

    `changed`: the message did make `version` (the notice carries a suggested ask or leftover sentences).
    """
    data: dict[str, Any] = {"reason": reason, "notes": list(notes), "reply": _reply_summary(reply)}
    if changed:
        data["changed"] = True
    if interpretation is not None:
        data["intent"] = getattr(interpretation, "intent", None)
        data["text"] = (getattr(interpretation, "text", "") or "")[:4000]
    return OutboxEntry(message_id=message_id(plan, version, kind, reply.message_id),
                       plan_id=plan.id, version=version, kind=kind, to=(plan.seller.email,), data=data)


def to_seller(kind: str, key: str, data: dict[str, Any], *, domain: str | None) -> OutboxEntry:
    """Mail to the seller that belongs to no one plan (the digest, a plan email that did not parse): one per key."""
    return OutboxEntry(message_id=seller_message_id(kind, key, domain), plan_id=None, version=None, kind=kind,
                       to=(str(data.get("to") or ""),) if data.get("to") else (), data=data)
