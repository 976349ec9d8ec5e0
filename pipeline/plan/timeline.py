"""Due expressions (T-30d, M3+3d, ISO dates) and the reverse timeline worked back from the target."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pipeline.errors import PlanError
from pipeline.plan.model import Milestone, Plan

_DUE = re.compile(
    r"^(?:(?P<date>\d{4}-\d{2}-\d{2})"
    r"|(?P<ref>T|M[1-9]\d*)(?:\s*(?P<sign>[+-])\s*(?P<n>\d+)\s*(?P<unit>d|w|days?|weeks?)?)?)$",
    re.IGNORECASE,
)


# A plan is a deal's next months: a date outside this range is a typo (or a hostile reply), and far ones
# would make letters and charts that cannot be drawn.
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)
WINDOW_YEARS = 10  # how far past its own date a reply (or a change) may move a plan


def window_end(start: date) -> date:
    """The last day a change made on `start` may name: the same day WINDOW_YEARS later (28 Feb for 29 Feb)."""
    year = start.year + WINDOW_YEARS
    return date(year, start.month, min(start.day, calendar.monthrange(year, start.month)[1]))


def in_window(value: date, start: date | None) -> bool:
    """Whether a date a reply names is plausible: from `start` (the reply's date) to WINDOW_YEARS after it,
    or within EARLIEST..LATEST when the reply has no date."""
    if start is None:
        return EARLIEST <= value <= LATEST
    return start <= value <= window_end(start)


def _in_range(value: date | None, what: str, line: int | None) -> date | None:
    if value is not None and not EARLIEST <= value <= LATEST:
        raise PlanError(
            f"{what} {value.isoformat()}, outside {EARLIEST.isoformat()} to {LATEST.isoformat()}",
            line=line,
            hint="a plan's dates are from 2000 to 2100: check the year",
        )
    return value


@dataclass(frozen=True)
class Due:
    """A parsed due expression: a fixed date, or a reference ("T" or a milestone id) plus days."""

    fixed: date | None = None
    ref: str | None = None
    offset: int = 0


def parse_due(text: str, *, line: int | None = None) -> Due | None:
    """Parse a due expression; "" means unscheduled (None)."""
    text = (text or "").strip()
    if not text:
        return None
    m = _DUE.match(text)
    if not m:
        raise PlanError(
            f"due date {text!r} does not parse",
            line=line,
            hint="write an ISO date (2027-02-10), T, T-30d, T+2w, or a milestone plus days (M3+3d); "
            "leave it empty while there is no date yet",
        )
    if m.group("date"):
        return Due(fixed=calendar_date(m.group("date"), what="due date", line=line))
    ref = m.group("ref").upper()
    offset = 0
    if m.group("n"):
        unit = (m.group("unit") or "d").lower()
        offset = int(m.group("n")) * (7 if unit.startswith("w") else 1)
        if m.group("sign") == "-":
            offset = -offset
    return Due(ref=ref, offset=offset)


_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
# Spelled out, not from the locale: the messages are English.
_MONTHS = ("", "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip


def calendar_date(text: str, *, what: str, line: int | None) -> date:
    """A YYYY-MM-DD date as written, or a PlanError saying why it is no date and what to write instead."""
    text = text.strip()
    m = _ISO_DATE.match(text)
    if m is None:
        raise PlanError(f"{what} {text!r} is not a date", line=line, hint="write it as YYYY-MM-DD, e.g. 2027-03-31")
    year, month, day = (int(g) for g in m.groups())
    if not 1 <= month <= 12:
        swapped = f"{year:04d}-{day:02d}-{month:02d}"
        hint = "write it as YYYY-MM-DD: the year, then the month, then the day"
        if 1 <= day <= 12 and 1 <= month <= calendar.monthrange(max(year, 1), day)[1]:
            hint += f"; did you mean {swapped}?"
        raise PlanError(f"{what} {text!r} is not a real date: a month is 01 to 12", line=line, hint=hint)
    if year < 1:
        raise PlanError(f"{what} {text!r} is not a real date: there is no year 0", line=line, hint="write YYYY-MM-DD")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise PlanError(
            f"{what} {text!r} is not a real date: {_MONTHS[month]} {year} has {last} days",
            line=line,
            hint=f"write YYYY-MM-DD with a day from 01 to {last}, e.g. {year:04d}-{month:02d}-{last:02d}",
        )
    return date(year, month, day)


def resolve(plan: Plan) -> dict[str, date | None]:
    """Resolve every milestone's due expression to a date (None when unscheduled).

    Raises PlanError naming the line for an unknown milestone reference, a cycle of relative
    dates, or a `T` date in a plan without a target.
    """
    _in_range(plan.target, "the target is", None)
    parsed = {m.id: (m, parse_due(m.due, line=m.line)) for m in plan.milestones}
    resolved: dict[str, date | None] = {}
    visiting: list[str] = []

    def visit(milestone_id: str) -> date | None:
        if milestone_id in resolved:
            return resolved[milestone_id]
        milestone, due = parsed[milestone_id]
        if milestone_id in visiting:
            cycle = " -> ".join([*visiting[visiting.index(milestone_id) :], milestone_id])
            raise PlanError(
                f"relative dates form a cycle: {cycle}",
                line=milestone.line,
                hint="give one of these milestones a date or a T-based due",
            )
        visiting.append(milestone_id)
        try:
            result = _resolve_one(plan, milestone, due, visit, parsed)
        except OverflowError:
            raise PlanError(
                f"{milestone.id} is due {milestone.due!r}, past the year 9999: outside {EARLIEST} to {LATEST}",
                line=milestone.line,
                hint="a plan's dates are from 2000 to 2100: check the number of days",
            ) from None
        fixed = due is not None and due.fixed is not None
        what = f"{milestone.id}'s due date is" if fixed else f"{milestone.id} (due {milestone.due!r}) falls on"
        _in_range(result, what, milestone.line)
        visiting.pop()
        resolved[milestone_id] = result
        return result

    for milestone_id in parsed:
        visit(milestone_id)
    return resolved


def _resolve_one(plan: Plan, milestone: Milestone, due: Due | None, visit: Any, parsed: dict) -> date | None:
    if due is None:
        return None
    if due.fixed is not None:
        return due.fixed
    if due.ref == "T":
        if plan.target is None:
            raise PlanError(
                f"{milestone.id} is due {milestone.due!r} but the plan has no target date",
                line=milestone.line,
                hint="add `target: YYYY-MM-DD` to the front matter (the PO / signature date)",
            )
        return plan.target + timedelta(days=due.offset)
    if due.ref not in parsed:
        raise PlanError(
            f"{milestone.id} is due {milestone.due!r} but there is no milestone {due.ref}",
            line=milestone.line,
            hint=f"refer to one of: {', '.join(parsed) or 'no milestones'}",
        )
    base = visit(due.ref)
    if base is None:
        raise PlanError(
            f"{milestone.id} is due {milestone.due!r} but {due.ref} has no due date",
            line=milestone.line,
            hint=f"give {due.ref} a due date, or {milestone.id} a date of its own",
        )
    return base + timedelta(days=due.offset)


def days_left(due: date | None, today: date) -> int | None:
    """Whole days from today to a due date (negative when past)."""
    return None if due is None else (due - today).days


def resolved_dict(plan: Plan, today: date | None = None) -> dict[str, Any]:
    """The resolved plan as `show --json` prints it: id, target, contacts, milestones with ISO dues."""
    dates = resolve(plan)
    out: dict[str, Any] = {
        "id": plan.id,
        "target": plan.target.isoformat() if plan.target else None,
        "timezone": plan.timezone,
        "seller": {"company": plan.seller.company, "name": plan.seller.name, "email": plan.seller.email},
        "prospect": plan.prospect.company,
        "contacts": [
            {"name": c.name, "title": c.title, "email": c.email, "role": c.role, "confirms": c.confirms}
            for c in plan.prospect.contacts
        ],
        "milestones": [],
    }
    for m in plan.milestones:
        due = dates[m.id]
        row: dict[str, Any] = {
            "id": m.id,
            "title": m.title,
            "owner": m.owner,
            "phase": m.phase,
            "status": m.status,
            "due": due.isoformat() if due else None,
            "due_expression": m.due,
        }
        if today is not None:
            row["days_left"] = days_left(due, today)
        out["milestones"].append(row)
    if today is not None:
        out["today"] = today.isoformat()
        out["days_to_target"] = days_left(plan.target, today)
    return out


def dependents(plan: Plan, milestone_id: str) -> list[str]:
    """Milestones whose due is defined, directly or not, relative to this one (they move with it)."""
    children: dict[str, list[str]] = {}
    for m in plan.milestones:
        due = parse_due(m.due, line=m.line)
        if due and due.ref and due.ref != "T":
            children.setdefault(due.ref, []).append(m.id)
    out: list[str] = []
    stack = list(children.get(milestone_id, []))
    while stack:
        current = stack.pop(0)
        if current not in out:
            out.append(current)
            stack.extend(children.get(current, []))
    return out
