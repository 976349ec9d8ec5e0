"""Applying requested changes to a plan, all or nothing, and spotting changes made against an older version."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from pipeline.errors import ChangeError, PlanError
from pipeline.plan.diff import MilestoneChange, diff
from pipeline.plan.model import CHANGE_OPS, STATUSES, Change, Milestone, Plan, owner_text, with_milestones
from pipeline.plan.timeline import WINDOW_YEARS, parse_due, resolve, window_end

_SIGNATURE_WORDS = re.compile(r"\b(signed|signature|signing|sign-off)\b", re.IGNORECASE)
_PO = re.compile(r"\bP\.?O\.?s?\b")  # upper-case only: "PO", "P.O."; never "po" inside ordinary words


def is_signature_step(milestone: Milestone) -> bool:
    """The step the plan builds towards: due exactly `T`, or a before-PO step whose title says signed/signature/PO."""
    due = parse_due(milestone.due)
    if due is not None and due.ref == "T" and due.offset == 0:
        return True
    # After the PO, a title naming the PO ("kick-off after the PO") is not the signature itself.
    return milestone.phase == "before" and bool(_SIGNATURE_WORDS.search(milestone.title) or _PO.search(milestone.title))


def signature_step(plan: Plan) -> Milestone | None:
    """The plan's signature / PO step, if it has one (the first milestone due `T`, else the first by title)."""
    for m in plan.milestones:
        due = parse_due(m.due)
        if due is not None and due.ref == "T" and due.offset == 0:
            return m
    return next((m for m in plan.milestones if is_signature_step(m)), None)


def apply(plan: Plan, changes: Iterable[Change | Mapping[str, Any]], *, today: date) -> Plan:
    """The plan with every change applied in order, or a ChangeError naming the first that cannot apply.

    All or nothing: the input plan is never altered, and one bad change means no new plan at all.
    Changes may be Change objects or their JSON dicts.
    """
    current = plan
    for index, raw in enumerate(changes):
        change = raw if isinstance(raw, Change) else Change.from_dict(raw, index=index)
        try:
            current = _apply_one(current, change, today)
        except ChangeError as exc:
            raise ChangeError(f"change {index + 1} ({_label(change)}): {exc.message}", hint=exc.hint) from None
    try:
        resolve(current)
    except PlanError as exc:
        # Guard: no change should leave dates that do not resolve, but a plan that cannot be read is never stored.
        raise ChangeError(f"the changes leave the timeline unresolvable: {exc.reason}", hint=exc.hint) from None
    return current


def _label(change: Change) -> str:
    subject = change.milestone or change.title or change.target or ""
    return f"{change.op} {subject}".strip()


def _apply_one(plan: Plan, change: Change, today: date) -> Plan:
    if change.op not in CHANGE_OPS:
        raise ChangeError(f"unknown op {change.op!r}", hint=f"use one of: {', '.join(CHANGE_OPS)}")
    return {
        "move": _move,
        "add": _add,
        "remove": _remove,
        "reassign": _reassign,
        "retarget": _retarget,
        "status": _status,
        "rename": _rename,
    }[change.op](plan, change, today)


def _find(plan: Plan, milestone_id: str | None) -> Milestone:
    key = (milestone_id or "").strip().upper().lstrip("#")
    key = f"M{key}" if key.isdigit() else key
    found = plan.milestone(key)
    if found is None:
        raise ChangeError(
            f"there is no milestone {milestone_id!r} in the plan",
            hint=f"name one of: {', '.join(m.id for m in plan.milestones) or 'no milestones'}",
        )
    return found


def _future_date(text: str | None, what: str, today: date) -> date:
    try:
        value = date.fromisoformat(text or "")
    except ValueError:
        raise ChangeError(f"{what} {text!r} is not an ISO date", hint="write it as YYYY-MM-DD") from None
    if value < today:
        raise ChangeError(
            f"{what} {value.isoformat()} is already past (today is {today.isoformat()})",
            hint="ask for a date from today on",
        )
    if value > window_end(today):
        raise ChangeError(
            f"{what} {value.isoformat()} is outside {today.isoformat()} to {window_end(today).isoformat()}",
            hint=f"a change may name a date from today to {WINDOW_YEARS} years on: check the year",
        )
    return value


def _replace_milestone(plan: Plan, new: Milestone) -> Plan:
    return with_milestones(plan, [new if m.id == new.id else m for m in plan.milestones])


def _move(plan: Plan, change: Change, today: date) -> Plan:
    milestone = _find(plan, change.milestone)
    when = _future_date(change.due, f"the new date for {milestone.id}", today)
    due = parse_due(milestone.due)
    if due is not None and due.ref == "T" and due.offset == 0:
        # The step due `T` is the target itself: moving it moves the target, and the reverse timeline with it.
        return _set_target(plan, when)
    # A requested date pins the milestone; milestones relative to it keep their expressions and follow.
    return _replace_milestone(plan, replace(milestone, due=when.isoformat()))


def _owner(plan: Plan, owner: str | None, *, required: bool) -> str:
    if owner is None or not owner.strip():
        if required:
            raise ChangeError("the new owner is blank", hint="name a side (buyer, seller, joint) or a contact")
        return ""
    text = owner_text(plan, owner.strip())
    try:
        plan.resolve_owner(text)
    except PlanError:
        names = ", ".join(c.name for c in plan.prospect.contacts)
        raise ChangeError(
            f"the owner {owner!r} names nobody in the plan",
            hint=f"name buyer, seller, joint, or a contact ({names})" if names else "name buyer, seller or joint",
        ) from None
    return text


def _add(plan: Plan, change: Change, today: date) -> Plan:
    title = " ".join((change.title or "").split())
    if not title:
        raise ChangeError("a new milestone needs a title")
    due = _future_date(change.due, "the due date of the new milestone", today).isoformat() if change.due else ""
    owner = _owner(plan, change.owner, required=False)
    milestones = list(plan.milestones)
    if change.before or change.after:
        anchor = _find(plan, change.before or change.after)
        index = milestones.index(anchor) + (0 if change.before else 1)
        phase = anchor.phase
    else:
        # Unplaced work belongs before the PO, and before the signature that closes that phase.
        phase = "before"
        signature = signature_step(plan)
        before = [i for i, m in enumerate(milestones) if m.phase == "before"]
        if signature is not None and signature.phase == "before":
            index = milestones.index(signature)
        elif before:
            index = before[-1] + 1
        else:
            index = 0
    new = Milestone(id=plan.next_id(), title=title, owner=owner, due=due, status="proposed", phase=phase)
    milestones.insert(index, new)
    return with_milestones(plan, milestones)


def _remove(plan: Plan, change: Change, today: date) -> Plan:
    milestone = _find(plan, change.milestone)
    if is_signature_step(milestone):
        raise ChangeError(
            f"{milestone.id} ({milestone.title}) is the signature / PO step and cannot be removed",
            hint="move it, or retarget the plan, instead",
        )
    dates = resolve(plan)
    kept = []
    for m in plan.milestones:
        if m.id == milestone.id:
            continue
        due = parse_due(m.due)
        if due is not None and due.ref == milestone.id:
            # Re-anchored to the date it has now, so removing its anchor does not move it.
            when = dates[m.id]
            assert when is not None  # resolve() raises rather than leave a step due relative to one without a date
            m = replace(m, due=when.isoformat())
        kept.append(m)
    return with_milestones(plan, kept)


def _reassign(plan: Plan, change: Change, today: date) -> Plan:
    milestone = _find(plan, change.milestone)
    return _replace_milestone(plan, replace(milestone, owner=_owner(plan, change.owner, required=True)))


def _rename(plan: Plan, change: Change, today: date) -> Plan:
    milestone = _find(plan, change.milestone)
    title = " ".join((change.title or "").split())
    if not title:
        raise ChangeError(f"a rename of {milestone.id} needs a title", hint='write e.g. {"title": "Pilot on Q1 data"}')
    return _replace_milestone(plan, replace(milestone, title=title))


def _set_target(plan: Plan, when: date) -> Plan:
    return replace(plan, target=when)


def _retarget(plan: Plan, change: Change, today: date) -> Plan:
    return _set_target(plan, _future_date(change.target, "the new target date", today))


def _status(plan: Plan, change: Change, today: date) -> Plan:
    milestone = _find(plan, change.milestone)
    if change.status not in STATUSES:
        raise ChangeError(f"unknown status {change.status!r}", hint=f"use one of: {', '.join(STATUSES)}")
    if change.status == "dropped" and is_signature_step(milestone):
        raise ChangeError(
            f"{milestone.id} ({milestone.title}) is the signature / PO step and cannot be dropped",
            hint="move it, or retarget the plan, instead",
        )
    return _replace_milestone(plan, replace(milestone, status=change.status))


# --- changes made against an older version ------------------------------------------------------


def _touches(change: Change) -> list[str]:
    return [ref for ref in (change.milestone, change.before, change.after) if ref]


def _describe(c: MilestoneChange) -> str:
    if c.kind in ("added", "removed"):
        return c.kind
    return f"{c.kind} {c.old or 'unscheduled'} -> {c.new or 'unscheduled'}"


def conflicts(base: Plan, current: Plan, changes: Iterable[Change | Mapping[str, Any]]) -> list[str]:
    """One message per change that touches something that differs between `base` (the version replied to)
    and `current` (the latest): a milestone it names, or the target for a retarget. Empty when it is safe
    to apply the changes to `current` as the sender meant them."""
    between = diff(base, current, old_version=0, new_version=0)
    by_id: dict[str, list[MilestoneChange]] = {}
    for c in between.milestones:
        by_id.setdefault(c.id, []).append(c)
    out: list[str] = []
    for index, raw in enumerate(changes):
        change = raw if isinstance(raw, Change) else Change.from_dict(raw, index=index)
        where = f"change {index + 1} ({_label(change)})"
        for ref in _touches(change):
            key = ref.strip().upper().lstrip("#")
            key = f"M{key}" if key.isdigit() else key
            if key in by_id:
                what = "; ".join(_describe(c) for c in by_id[key])
                out.append(f"{where}: {key} has changed since the version replied to ({what})")
        if change.op == "retarget" and between.target is not None:
            old, new = between.target
            out.append(
                f"{where}: the target has changed since the version replied to "
                f"({old.isoformat() if old else 'none'} -> {new.isoformat() if new else 'none'})"
            )
    return out
