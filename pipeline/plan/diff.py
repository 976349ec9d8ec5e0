"""What changed between two versions of a plan: milestones, the target and its slip, contacts, and text redlines."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from pipeline.plan.model import SECTION_TITLES, Milestone, Plan, Section
from pipeline.plan.timeline import resolve

MILESTONE_CHANGE_KINDS = ("added", "removed", "renamed", "moved", "reassigned", "status", "phase")
REDLINE_OPS = ("equal", "insert", "delete")


@dataclass(frozen=True)
class MilestoneChange:
    """One change to one milestone.

    `old`/`new` by kind: moved -> resolved ISO dates (None when unscheduled); added -> new is the resolved
    date; removed -> old is the resolved date; reassigned -> owners as written; renamed -> titles;
    status -> statuses; phase -> "before"/"after".
    """

    kind: str
    id: str
    title: str
    old: str | None
    new: str | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"kind": self.kind, "id": self.id, "title": self.title, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class TextRedline:
    """A word-level redline of one section's text: ("equal"|"insert"|"delete", text) runs in reading order."""

    heading: str
    ops: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"heading": self.heading, "ops": [list(op) for op in self.ops]}


@dataclass(frozen=True)
class PlanDiff:
    """Everything that differs between version `old_version` and version `new_version` of a plan."""

    old_version: int
    new_version: int
    milestones: tuple[MilestoneChange, ...]
    target: tuple[date | None, date | None] | None  # (old, new) when the target changed
    slip_days: int | None  # days the target moved (later is positive), when both are dates
    contacts_added: tuple[str, ...]
    contacts_removed: tuple[str, ...]
    texts: tuple[TextRedline, ...]

    @property
    def changed_ids(self) -> set[str]:
        """The ids of every milestone with a change, for the margin marks of the timeline."""
        return {c.id for c in self.milestones}

    @property
    def is_empty(self) -> bool:
        """True when the two versions say the same thing."""
        return not (self.milestones or self.target or self.contacts_added or self.contacts_removed or self.texts)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (dates as ISO strings)."""
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "milestones": [c.to_dict() for c in self.milestones],
            "target": [_iso(d) for d in self.target] if self.target else None,
            "slip_days": self.slip_days,
            "contacts_added": list(self.contacts_added),
            "contacts_removed": list(self.contacts_removed),
            "texts": [t.to_dict() for t in self.texts],
        }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def diff(a: Plan, b: Plan, *, old_version: int, new_version: int) -> PlanDiff:
    """Compare plan `a` (older) with plan `b` (newer); dates are compared as resolved, so a milestone
    that moved only because the target or the milestone it depends on moved is reported as moved too."""
    target = (a.target, b.target) if a.target != b.target else None
    slip = (b.target - a.target).days if target and a.target and b.target else None
    old_emails = {c.email.lower() for c in a.prospect.contacts}
    new_emails = {c.email.lower() for c in b.prospect.contacts}
    return PlanDiff(
        old_version=old_version,
        new_version=new_version,
        milestones=tuple(_milestone_changes(a, b)),
        target=target,
        slip_days=slip,
        contacts_added=tuple(c.name for c in b.prospect.contacts if c.email.lower() not in old_emails),
        contacts_removed=tuple(c.name for c in a.prospect.contacts if c.email.lower() not in new_emails),
        texts=tuple(_section_redlines(a, b)),
    )


def _milestone_changes(a: Plan, b: Plan) -> list[MilestoneChange]:
    old_dates, new_dates = resolve(a), resolve(b)
    old_by_id = {m.id: m for m in a.milestones}
    new_ids = {m.id for m in b.milestones}
    # Removed milestones are reported where they stood: before the first surviving milestone that followed them.
    pending_removed: list[Milestone] = []
    removed_before: dict[str, list[Milestone]] = {}
    for m in a.milestones:
        if m.id in new_ids:
            if pending_removed:
                removed_before[m.id] = pending_removed
                pending_removed = []
        else:
            pending_removed.append(m)
    out: list[MilestoneChange] = []

    def removed(m: Milestone) -> MilestoneChange:
        return MilestoneChange("removed", m.id, m.title, _iso(old_dates[m.id]), None)

    for new in b.milestones:
        out.extend(removed(m) for m in removed_before.get(new.id, ()))
        old = old_by_id.get(new.id)
        if old is None:
            out.append(MilestoneChange("added", new.id, new.title, None, _iso(new_dates[new.id])))
            continue
        if old.title != new.title:
            out.append(MilestoneChange("renamed", new.id, new.title, old.title, new.title))
        if old_dates[old.id] != new_dates[new.id]:
            out.append(MilestoneChange("moved", new.id, new.title, _iso(old_dates[old.id]), _iso(new_dates[new.id])))
        if old.owner != new.owner:
            out.append(MilestoneChange("reassigned", new.id, new.title, old.owner, new.owner))
        if old.status != new.status:
            out.append(MilestoneChange("status", new.id, new.title, old.status, new.status))
        if old.phase != new.phase:
            out.append(MilestoneChange("phase", new.id, new.title, old.phase, new.phase))
    out.extend(removed(m) for m in pending_removed)
    return out


def _heading(section: Section) -> str:
    return section.heading or SECTION_TITLES.get(section.kind, "")


def _key(section: Section) -> tuple[str, str]:
    # Canonical sections are matched by kind (a renamed heading is the same section); free ones by heading.
    return ("kind", section.kind) if section.kind else ("heading", section.heading.strip().lower())


def _section_redlines(a: Plan, b: Plan) -> list[TextRedline]:
    old_by_key: dict[tuple[str, str], Section] = {}
    for s in a.sections:
        old_by_key.setdefault(_key(s), s)
    new_keys = {_key(s) for s in b.sections}
    out: list[TextRedline] = []
    for s in b.sections:
        old = old_by_key.get(_key(s))
        old_body = old.body if old else ""
        if old_body != s.body:
            out.append(TextRedline(_heading(s), redline(old_body, s.body)))
    for key, s in old_by_key.items():
        if key not in new_keys and s.body:
            out.append(TextRedline(_heading(s), redline(s.body, "")))
    return out


# Whitespace runs; words (inner punctuation kept: $2.1M, e-mail, 3,000, don't); any other character alone, so
# "signs;" -> "signs the order;" redlines as an insertion of " the order", not as a replaced word.
_TOKEN = re.compile(r"\s+|\w(?:[\w'’.,/$%&+-]*\w)?|[^\w\s]")


def redline(old: str, new: str) -> tuple[tuple[str, str], ...]:
    """A word-level redline of `old` -> `new`: runs of equal, deleted and inserted text, whitespace kept,
    so joining the equal and delete runs gives `old` and joining the equal and insert runs gives `new`."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    ops: list[tuple[str, str]] = []

    def push(op: str, tokens: list[str]) -> None:
        text = "".join(tokens)
        if not text:
            return
        if ops and ops[-1][0] == op:
            ops[-1] = (op, ops[-1][1] + text)
        else:
            ops.append((op, text))

    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            push("equal", a[i1:i2])
        else:
            # A replacement reads as the old words struck through, then the new ones.
            push("delete", a[i1:i2])
            push("insert", b[j1:j2])
    return tuple(ops)


# An agreed plan's own step of agreement: "Mutually agreed plan with timeline", "Mutual plan agreed".
_AGREEMENT_STEP = re.compile(r"\bmutual(?:ly)?\b.*\bplan\b|\bplan\b.*\bmutually\s+agreed\b", re.IGNORECASE)


def records_progress(agreed: Plan, new: Plan) -> bool:
    """Whether `new` differs from `agreed` only by steps marked done and their notes: progress on what was agreed,
    which needs no new confirmation. A date, owner, step, title, target or text changed is a new plan to confirm."""
    before = {m.id: m for m in agreed.milestones}
    if [m.id for m in new.milestones] != list(before):
        return False
    restored = []
    for m in new.milestones:
        old = before[m.id]
        if m.status not in (old.status, "done"):
            return False
        restored.append(replace(m, status=old.status, notes=old.notes))
    return replace(new, milestones=tuple(restored), next_number=agreed.next_number) == agreed


def agreement_step(plan: Plan) -> Milestone | None:
    """The plan's own step that the plan is mutually agreed, when it has one and it is not done yet."""
    return next((m for m in plan.milestones if _AGREEMENT_STEP.search(m.title) and m.status not in ("done", "dropped")),
                None)
