"""Methodology warnings: where a plan that parses is still exposed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from pipeline.errors import PlanError
from pipeline.plan.model import Milestone, Plan
from pipeline.plan.names import names_person
from pipeline.plan.placeholders import find as find_placeholders
from pipeline.plan.placeholders import stand_ins
from pipeline.plan.timeline import resolve

# Published win-rate data: plans of 6 to 20 steps win most; 30 and more do as badly as no plan.
MIN_STEPS, MAX_STEPS = 6, 20

_LEGAL_WORDS = re.compile(r"\b(legal|contract|msa|terms|paperwork|procurement|vendor onboarding|dpa|redline)", re.I)
_SIGNATURE_WORDS = re.compile(r"\b(sign|signed|signature|po|purchase order|order form)\b", re.I)
_WEEKEND = {5: "Saturday", 6: "Sunday"}  # date.weekday(); spelled out, not from the locale


@dataclass(frozen=True)
class Warning:
    """One methodology warning: a stable code, a message for the seller, the source line if known."""

    code: str
    message: str
    line: int | None = None


def check(plan: Plan, today: date, *, starters: Iterable[Plan] = (), source: str | None = None) -> list[Warning]:
    """Every warning the methodology raises for this plan, as of `today`.

    `starters` are the starter plans, whose own text left in this plan is a placeholder; with the plan's
    `source`, a placeholder outside the timeline is named by its line too.
    """
    live = [m for m in plan.milestones if m.status != "dropped"]
    dates = resolve(plan)
    out = _placeholders(plan, starters, source)
    out += _contacts(plan)
    out += _steps(plan, live, dates)
    for m in live:
        out += _step(plan, m, dates[m.id], today)
    value = plan.section("value")
    if value is None or not value.body.strip():
        out.append(Warning("no-value", "no business value: say what the prospect gains, in numbers if you can"))
    cta = plan.section("cta")
    if cta is None or not cta.body.strip():
        out.append(Warning("no-call-to-action", "no call to action: say who does what next"))
    if not MIN_STEPS <= len(live) <= MAX_STEPS:
        out.append(
            Warning(
                "step-count",
                f"{len(live)} steps: plans with {MIN_STEPS} to {MAX_STEPS} steps win most often",
            )
        )
    if plan.target is None:
        out.append(Warning("no-target", "no target date: build with the end in mind"))
    elif plan.target < today:
        out.append(Warning("target-past", f"the target {plan.target.isoformat()} has passed"))
    return out


def _contacts(plan: Plan) -> list[Warning]:
    out = []
    contacts = plan.prospect.contacts
    if not any(c.role in ("decision-maker", "economic-buyer") for c in contacts):
        out.append(Warning("no-decision-maker", "no decision-maker or economic buyer among the contacts"))
    if not any(c.confirms for c in contacts):
        out.append(Warning("no-confirmer", "nobody confirms the plan: mark a contact with `confirms: true`"))
    return out


def _steps(plan: Plan, live: list[Milestone], dates: dict[str, date | None]) -> list[Warning]:
    """What the timeline as a whole lacks: a legal step, a step after the PO, the signature."""
    out = []
    legal_people = [c.name for c in plan.prospect.contacts if c.role in ("legal", "procurement")]
    if not any(_LEGAL_WORDS.search(m.title) or _owned_by_any(plan, m, legal_people) for m in live):
        out.append(Warning("no-legal-step", "no legal or procurement step before the signature"))
    if not any(m.phase == "after" for m in live):
        out.append(Warning("no-after-po", "no step after the PO: plan the kick-off and onboarding too"))
    if plan.target and not any(dates[m.id] == plan.target or _SIGNATURE_WORDS.search(m.title) for m in live):
        out.append(Warning("no-signature-step", "no signature / PO step on the target date"))
    return out


def _step(plan: Plan, m: Milestone, due: date | None, today: date) -> list[Warning]:
    """What one live step lacks or gets wrong."""
    out = []
    if plan.target and due and m.phase == "before" and due > plan.target:
        out.append(
            Warning(
                "after-target",
                f"{m.id} {m.title!r} is before the PO but due {due.isoformat()}, after the target "
                f"{plan.target.isoformat()}",
                m.line,
            )
        )
    if not m.owner.strip():
        out.append(Warning("no-owner", f"{m.id} {m.title!r} has no owner", m.line))
    if due and due < today and m.status not in ("done", "dropped"):
        out.append(Warning("past-due", f"{m.id} {m.title!r} was due {due.isoformat()} and is not done", m.line))
    if due is None:
        out.append(Warning("no-date", f"{m.id} {m.title!r} has no due date", m.line))
    elif due >= today and m.status != "done" and due.weekday() in _WEEKEND:
        day = _WEEKEND[due.weekday()]
        out.append(Warning("weekend", f"{m.id} {m.title!r} is due on a {day}, {due.isoformat()}: move it to a weekday",
                           m.line))
    out += _owner_person(plan, m)
    return out


def _owned_by_any(plan: Plan, m: Milestone, names: list[str]) -> bool:
    """Whether a step's owner names one of these people, however it spells them."""
    try:
        person = plan.resolve_owner(m.owner).person
    except PlanError:
        return False
    return bool(person) and any(c.name in names for c in plan.contacts_named(person or ""))


def _owner_person(plan: Plan, m: Milestone) -> list[Warning]:
    """The person an owner names on the buyer's side must be one contact: reminders and replies go to them."""
    try:
        owner = plan.resolve_owner(m.owner)
    except PlanError:
        return []
    person = owner.person
    if not person or owner.side == "seller":
        return []  # the seller's own people are not listed in a plan
    if owner.side == "joint" and plan.seller.name and names_person(plan.seller.name, person):
        return []
    named = plan.contacts_named(person)
    if not named:
        known = ", ".join(c.name for c in plan.prospect.contacts) or "none yet"
        return [
            Warning(
                "unknown-person",
                f"{m.id} {m.title!r} is owned by {person!r}, who is not a contact of the plan: add them to "
                f"prospect.contacts or name a contact ({known})",
                m.line,
            )
        ]
    if len(named) > 1:
        return [
            Warning(
                "ambiguous-person",
                f"{m.id} {m.title!r} is owned by {person!r}, who could be {' or '.join(c.name for c in named)}: "
                "write the full name",
                m.line,
            )
        ]
    return []


def _placeholders(plan: Plan, starters: Iterable[Plan], source: str | None) -> list[Warning]:
    out = []
    for found in find_placeholders(plan, stand_ins(starters), source):
        if found.starter:
            message = f"{found.where} still holds {found.text!r} from the starter plan: write your own"
        else:
            message = f"{found.where} holds the placeholder {found.text!r}: replace it before sending"
        out.append(Warning("placeholder", message, found.line))
    return out
