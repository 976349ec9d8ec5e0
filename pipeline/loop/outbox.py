"""Outbound mail as queued work: what to send, to whom, in which thread, under which Message-ID.

An entry holds only data; the email is rendered from it when it is sent, and renders the same bytes
every time, so a retry after a crash sends exactly what the first attempt would have sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.plan.ids import bracketed, message_id
from pipeline.plan.model import Plan, Version

KINDS = ("plan", "update", "agreed", "notice", "ask", "reminder", "digest")
STATES = ("pending", "sending", "drafted", "sent", "failed")


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


@dataclass(frozen=True)
class OutboxEntry:
    """One email to send (or leave in Drafts), as data."""

    message_id: str
    plan_id: str
    version: int
    kind: str
    mode: str = "send"  # send | draft
    state: str = "pending"
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def plan(cls, version: Version) -> OutboxEntry:
        """A version's plan email: to the confirming contacts, the other contacts in Cc."""
        plan = version.plan
        to = tuple(c.email for c in plan.confirmers) or tuple(c.email for c in plan.prospect.contacts[:1])
        cc = tuple(c.email for c in plan.prospect.contacts if c.email not in to)
        return cls(message_id=message_id(plan.id, version.number, plan.seller.domain), plan_id=plan.id,
                   version=version.number, kind="plan", to=to, cc=cc)

    @classmethod
    def update(cls, version: Version, *, since: int, reply: Any, mode: str, asks: list[str],
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
        return cls(
            message_id=message_id(plan.id, version.number, plan.seller.domain), plan_id=plan.id, version=version.number,
            kind="update",
            mode=mode, to=to, cc=cc, in_reply_to=in_reply_to, references=refs, data=data,
        )

    @classmethod
    def in_thread(cls, version: Version, reply: Any) -> OutboxEntry:
        """Version 1 of a plan the seller wrote in an email: the letter, sent at once as a reply to that email."""
        entry = cls.plan(version)
        in_reply_to, refs = _thread(reply)
        return replace(entry, in_reply_to=in_reply_to, references=refs,
                       data={"reply": _reply_summary(reply), "reply_subject": (reply.subject or "")[:300]})

    @classmethod
    def reminder(cls, version: Version, *, milestone: str, due: str, when: str, to: tuple[str, ...],
                 cc: tuple[str, ...], thread: tuple[str, ...]) -> OutboxEntry:
        """A short reminder to a milestone's owner, `when` "before" its due date or "overdue", in the plan's thread.

        Its Message-ID is keyed by milestone, due date and when, so each is sent once; a moved date is a new key."""
        plan = version.plan
        key = f"{milestone}|{due}|{when}"
        refs = tuple(bracketed(t) for t in thread[-20:])
        return cls(message_id=message_id(plan.id, version.number, plan.seller.domain, "reminder", key),
                   plan_id=plan.id, version=version.number, kind="reminder", to=to, cc=cc,
                   in_reply_to=refs[-1] if refs else None, references=refs,
                   data={"milestone": milestone, "due": due, "when": when, "key": key})

    @classmethod
    def agreed(cls, version: Version, *, reply: Any | None = None) -> OutboxEntry:
        """Everyone confirmed: the final letter to all."""
        plan = version.plan
        to = tuple(c.email for c in plan.prospect.contacts)
        refs: tuple[str, ...] = ()
        in_reply_to = None
        if reply is not None:
            in_reply_to, refs = _thread(reply)
        return cls(message_id=message_id(plan.id, version.number, plan.seller.domain, "agreed"), plan_id=plan.id,
                   version=version.number, kind="agreed", to=to, cc=(plan.seller.email,) if plan.seller.email else (),
                   in_reply_to=in_reply_to, references=refs)

    @classmethod
    def notice(cls, plan: Plan, version: int, reply: Any, *, kind: str, reason: str, notes: list[str],
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
        return cls(message_id=message_id(plan.id, version, plan.seller.domain, kind, reply.message_id),
                   plan_id=plan.id, version=version, kind=kind, to=(plan.seller.email,), data=data)
