"""What the pipeline does with an understood reply: apply, confirm, hold or tell the seller; no I/O.

The watcher gathers the facts (which plan and version the reply answers, who sent it, what it says)
and this module decides; keeping the decision pure makes every rule of the loop testable on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from pipeline.plan.model import Change, Contact, Plan, owner_text
from pipeline.plan.timeline import resolve

# Dispositions a message ends with; `status` and the audit log show them to people.
APPLIED = "applied"  # its changes made a new version
CONFIRMED = "confirmed"  # a confirming contact agreed to the current version
AGREED = "agreed"  # ... and that made the plan mutually agreed
NOTED = "noted"  # a comment, a question, a confirmation that does not count: the seller is told
HELD = "held"  # needs the seller before anything happens
DECLINED = "declined"  # the prospect withdrew
IGNORED = "ignored"  # automatic mail, our own mail, a bounce
DUPLICATE = "duplicate"  # seen before: no second effect
UNRELATED = "unrelated"  # not about any plan: left alone in the mailbox
REJECTED = "rejected"  # refused outright (too large)
CREATED = "created"  # the seller wrote a plan in an email: it is version 1, and its letter answers in the thread

# Default asks: "when your prospect requests a difference in your plan, ask for something in return". The
# follow-up leads them in with "In return, could we ask:", so none says "In return" again. {decision_maker} and
# {owner} name a person; one who gets the email is asked as "you", by first name.
DEFAULT_ASKS: dict[str, str] = {
    "later": "Could we get 30 minutes with {decision_maker} before the new date?",
    "remove": "With that step dropped, could legal review of the contract start earlier?",
    "add-seller": "As the new step is on our side, could you arrange a reference call with a peer team at "
    "{prospect}?",
    "add-buyer": "Could you confirm who owns the new step on your side and the date it will be done?",
    "retarget": "With the new target, could we agree on the decision criteria in writing this week?",
    "reassign": "Could {owner} confirm the new date for this step?",
}
# A rule written with its own lead-in ("In return for the later date, could we ..."): the email has one already.
_LEAD_IN = re.compile(r"^\s*in return(?: for [^,]*)?,\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Facts:
    """What the watcher knows about a human reply to a plan, before deciding."""

    sender: str
    sender_is_seller: bool
    sender_confirms: bool  # a contact with `confirms: true`
    plan_state: str  # open, agreed, declined, closed
    replied_version: int
    current_version: int
    intent: str  # confirm, amend, decline, comment, ignore
    changes: tuple[Change, ...]
    unresolved: tuple[str, ...]
    conflicts: tuple[str, ...] = ()  # changes touching milestones changed since the replied version
    crossed: bool = False  # the reply was already in the mailbox when the current version was made
    requests: tuple[str, ...] = ()  # of `unresolved`, those that asked to change the plan (the rest: questions)
    sender_decides: bool = False  # the plan's decision-maker (role decision-maker or economic-buyer)


@dataclass(frozen=True)
class Decision:
    """What to do: the disposition, why, and the effects the watcher carries out."""

    disposition: str
    reason: str
    changes: tuple[Change, ...] = ()
    confirm: bool = False
    decline: bool = False
    notify_seller: bool = False
    notes: tuple[str, ...] = field(default=())
    by_seller: bool = False  # the seller's own edit: the new version goes to the prospect to confirm, with no asks
    reopen: bool = False  # the changes alter an agreed plan: it waits on the prospect's confirmation again


def decide(facts: Facts) -> Decision:
    """The policy of the loop, in the order the rules are checked."""
    if facts.plan_state in ("declined", "closed"):
        return Decision(HELD, f"the plan is {facts.plan_state}; nothing changes", notify_seller=True)
    older = facts.replied_version < facts.current_version
    if facts.intent == "decline":
        if facts.sender_is_seller:
            # Only the prospect can withdraw; the seller's own words about it change nothing by themselves.
            return Decision(NOTED, "the seller's own message does not withdraw the prospect; nothing changed")
        if not (facts.sender_confirms or facts.sender_decides):
            # Anyone in Cc could end the plan otherwise; the seller hears of it and the plan stays open.
            return Decision(NOTED, f"{facts.sender} wrote that they will not go on, but is not one who can decline "
                            "the plan (a confirming contact or the decision-maker); nothing changed",
                            notify_seller=True, notes=facts.unresolved)
        return Decision(DECLINED, "the prospect withdrew from the plan", decline=True, notify_seller=True)
    if facts.intent == "confirm":
        return _confirmation(facts, older)
    if facts.intent == "amend" and facts.changes:
        # Marking a step done records progress on the agreed plan; any other change alters what was agreed.
        progress = all(c.op == "status" for c in facts.changes)
        if facts.plan_state == "agreed" and not progress and not facts.sender_is_seller:
            # Everyone signed off on this version: reopening it is the seller's call, not a robot's.
            return Decision(
                HELD,
                f"the plan is mutually agreed on version {facts.current_version}; a change to it waits for you",
                notify_seller=True,
                notes=tuple(facts.unresolved),
            )
        if older and facts.conflicts:
            return Decision(
                HELD,
                f"replied to version {facts.replied_version}; the changes touch what version "
                f"{facts.current_version} changed since: {'; '.join(facts.conflicts)}",
                notify_seller=True,
            )
        notes = tuple(facts.unresolved)
        # The seller's own change to an agreed plan is that call made: the plan waits on the prospect again.
        reopen = facts.plan_state == "agreed" and not progress
        who = f"the seller ({facts.sender})" if facts.sender_is_seller else facts.sender
        return Decision(
            APPLIED,
            f"{len(facts.changes)} change(s) requested by {who}"
            + ("; the new version needs the prospect's confirmation" if facts.sender_is_seller or reopen else ""),
            changes=facts.changes,
            notify_seller=bool(notes),
            notes=notes,
            by_seller=facts.sender_is_seller,
            reopen=reopen,
        )
    # A comment, a question, or an amend whose requests could not be mapped safely.
    who = f"the seller ({facts.sender})" if facts.sender_is_seller else facts.sender
    return Decision(NOTED, f"{who} {_what_was_said(facts)}; nothing changed", notify_seller=True,
                    notes=facts.unresolved)


def _what_was_said(facts: Facts) -> str:
    """How a note that changed nothing is told: a request that could not be mapped, questions, or words to read."""
    if facts.requests:
        return "asked for something that could not be mapped safely"
    if not facts.unresolved:
        return "commented"
    if all(s.rstrip().endswith("?") for s in facts.unresolved):
        count = len(facts.unresolved)
        return "asked a question" if count == 1 else f"asked {count} questions"
    return "wrote"


def _confirmation(facts: Facts, older: bool) -> Decision:
    """What a confirmation does: it counts only from a confirming contact, for the current version."""
    if facts.sender_is_seller:
        return Decision(NOTED, "the seller's own confirmation does not make the plan mutual", notify_seller=False)
    if not facts.sender_confirms:
        return Decision(
            NOTED, f"{facts.sender} confirmed but is not one of the confirming contacts", notify_seller=True
        )
    if older and facts.crossed:
        # Two answers at once, one changing and one confirming: the change went first, this one lost.
        return Decision(
            HELD,
            f"crossed with version {facts.current_version}: confirmed version {facts.replied_version}, which "
            f"another reply changed while this one waited",
            notify_seller=True,
        )
    if older:
        return Decision(
            NOTED,
            f"confirmed version {facts.replied_version}, but version {facts.current_version} is current",
            notify_seller=True,
        )
    return Decision(CONFIRMED, f"{facts.sender} confirmed version {facts.current_version}", confirm=True)


def suggested_asks(
    plan: Plan, changes: tuple[Change, ...], asks: Mapping[str, str] | None = None, *,
    to: Iterable[str] | None = None,
) -> list[str]:
    """Something to ask in return for each kind of change the prospect requested (one per kind).

    `to`: who gets the email the asks are written into (default: every contact, as the follow-up goes to all); a
    person among them is asked directly ("Raj, could we get 30 minutes with you ..."), never for time with themselves.
    """
    rules = {**DEFAULT_ASKS, **(asks or {})}
    dates = resolve(plan)
    readers = {a.lower() for a in (to if to is not None else (c.email for c in plan.prospect.contacts))}
    decision_maker = next(
        (c for c in plan.prospect.contacts if c.role in ("decision-maker", "economic-buyer")), None
    )
    out: list[str] = []
    for change in changes:
        kind = _ask_kind(plan, change, dates)
        if kind is None or kind not in rules:
            continue
        owner = next((c for c in plan.prospect.contacts if change.owner
                      and owner_text(plan, change.owner) == owner_text(plan, c.name)), None)
        people = {"decision_maker": decision_maker, "owner": owner}
        template = _LEAD_IN.sub("", rules[kind], count=1)
        addressed = next((p for key, p in people.items() if p is not None and p.email.lower() in readers
                          and "{" + key + "}" in template), None)
        names = {key: "you" if p is not None and p is addressed else _name(plan, key, p, change)
                 for key, p in people.items()}
        text = template.format(prospect=plan.prospect.company, **names)
        text = f"{addressed.name.split()[0]}, {_lower_first(text)}" if addressed else _upper_first(text)
        if text not in out:
            out.append(text)
    return out


def _name(plan: Plan, key: str, person: Contact | None, change: Change) -> str:
    """How an ask names someone who does not get the email."""
    if key == "decision_maker":
        return person.name if person is not None else "your decision-maker"
    return owner_text(plan, change.owner) if change.owner else "the new owner"


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower_first(text: str) -> str:
    # "Could we ..." after "Raj, "; a word in capitals (an acronym, "I") keeps them.
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _ask_kind(plan: Plan, change: Change, dates: dict[str, date | None]) -> str | None:
    if change.op == "move" and change.milestone and change.due:
        current = dates.get(change.milestone)
        return "later" if current is None or date.fromisoformat(change.due) > current else None
    if change.op == "retarget" and change.target:
        return "later" if plan.target is None or date.fromisoformat(change.target) > plan.target else "retarget"
    if change.op == "remove":
        return "remove"
    if change.op == "add":
        side = (change.owner or "").lower()
        return "add-seller" if side in ("seller", plan.seller.company.lower()) else "add-buyer"
    if change.op == "reassign":
        return "reassign"
    return None
