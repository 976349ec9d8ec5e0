"""A three-way merge of plans: the edits a seller's file made to the version it was written from, laid on the current
version, so that what changed since (the prospect's requests) is kept; parts both changed differently are clashes.

A plan is read as parts: each milestone by id, each section, each contact by email, the target and the other
fields. A part that one side changed and the other did not takes the change; a part both changed alike is kept.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Any

from pipeline.plan.model import SECTION_TITLES, Milestone, Plan, Prospect, Section, with_milestones
from pipeline.plan.timeline import parse_due

Part = tuple[str, Hashable]  # ("milestone", "M3"), ("section", ("kind", "cta", 0)), ("target", ""), ...
_FIELDS = ("seller", "letterhead", "timezone", "after_heading")


@dataclass(frozen=True)
class Merged:
    """The merged plan, and the parts both sides changed, each differently (their side or `mine` kept by choice)."""

    plan: Plan
    clashes: tuple[Part, ...]


def _section_keys(sections: tuple[Section, ...]) -> list[tuple[str, str, int]]:
    # Canonical sections are one part whatever their heading says; free ones by heading, counted when repeated.
    seen: dict[tuple[str, str], int] = {}
    keys = []
    for s in sections:
        key = ("kind", s.kind) if s.kind else ("heading", s.heading.strip().lower())
        seen[key] = seen.get(key, -1) + 1
        keys.append((*key, seen[key]))
    return keys


def _sequences(plan: Plan) -> dict[str, tuple[list[Hashable], list[Any]]]:
    return {
        "milestone": ([m.id for m in plan.milestones], list(plan.milestones)),
        "section": (list[Hashable](_section_keys(plan.sections)), list(plan.sections)),
        "contact": ([c.email.lower() for c in plan.prospect.contacts], list(plan.prospect.contacts)),
    }


def parts(plan: Plan) -> dict[Part, Any]:
    """The plan as its parts and their values."""
    out: dict[Part, Any] = {("field", name): getattr(plan, name) for name in _FIELDS}
    out[("target", "")] = plan.target
    out[("field", "company")] = plan.prospect.company
    out[("field", "address")] = plan.prospect.address
    for kind, (keys, items) in _sequences(plan).items():
        out.update({(kind, k): item for k, item in zip(keys, items, strict=True)})
    return out


def changed_parts(a: Plan, b: Plan) -> set[Part]:
    """The parts that differ between two plans (a milestone whose expression is the same has not changed, even
    when the target it counts from moved)."""
    pa, pb = parts(a), parts(b)
    return {k for k in pa.keys() | pb.keys() if pa.get(k) != pb.get(k)}


def merge(base: Plan, mine: Plan, theirs: Plan, *, mine_wins: bool = False) -> Merged:
    """`mine`'s edits to `base` laid on `theirs`; where both changed a part differently, `theirs` is kept
    unless `mine_wins`, and the part is named in `clashes` either way."""
    mine = _renumber_new(base, mine, theirs)
    pb, pm, pt = parts(base), parts(mine), parts(theirs)
    clashes: list[Part] = []
    chosen: dict[Part, Any] = {}
    for part in sorted(pb.keys() | pm.keys() | pt.keys(), key=repr):
        b, m, t = pb.get(part), pm.get(part), pt.get(part)
        if m in (b, t):
            chosen[part] = t
        elif t == b:
            chosen[part] = m
        else:
            clashes.append(part)
            chosen[part] = m if mine_wins else t
    ordered: dict[str, list[Any]] = {}
    seqs_b, seqs_m, seqs_t = _sequences(base), _sequences(mine), _sequences(theirs)
    for kind in seqs_t:
        keys = _order(kind, seqs_b[kind][0], seqs_m[kind][0], seqs_t[kind][0], mine_wins, clashes)
        ordered[kind] = [chosen[(kind, k)] for k in keys if chosen.get((kind, k)) is not None]
    # The source format writes the steps before the PO first: keep that order so the plan reads back the same.
    milestones = sorted(ordered["milestone"], key=lambda m: m.phase == "after")
    plan = replace(
        theirs,
        **{name: chosen[("field", name)] for name in _FIELDS},
        target=chosen[("target", "")],
        prospect=Prospect(chosen[("field", "company")], chosen[("field", "address")], tuple(ordered["contact"])),
        sections=tuple(ordered["section"]),
    )
    plan = with_milestones(plan, milestones)
    plan = replace(plan, next_number=max(plan.next_number, mine.next_number, theirs.next_number))
    return Merged(plan, tuple(clashes))


def _order(kind: str, base: list[Hashable], mine: list[Hashable], theirs: list[Hashable], mine_wins: bool,
           clashes: list[Part]) -> list[Hashable]:  # fmt: skip
    """The parts of a sequence in order: the side that reordered what all three share sets it, and what only the
    other side has goes in after the part it follows there."""
    shared = set(base) & set(mine) & set(theirs)
    b, m, t = ([k for k in seq if k in shared] for seq in (base, mine, theirs))
    if m != b and t != b and m != t:
        clashes.append(("order", kind))
        use_mine = mine_wins
    else:
        use_mine = m != b
    order, other = (list(mine), theirs) if use_mine else (list(theirs), mine)
    for i, key in enumerate(other):
        if key in order:
            continue
        before = next((p for p in reversed(other[:i]) if p in order), None)
        order.insert(order.index(before) + 1 if before is not None else 0, key)
    return order


def _renumber_new(base: Plan, mine: Plan, theirs: Plan) -> Plan:
    """`mine` with each milestone it added under an id that `theirs` also added (another step) given a new id,
    and the dates counted from it following: both sides numbered their new steps from the same counter."""
    base_ids = {m.id for m in base.milestones}
    taken = {m.id: m for m in theirs.milestones if m.id not in base_ids}
    fresh = max(mine.next_number, theirs.next_number)
    renamed: dict[str, str] = {}
    for m in mine.milestones:
        if m.id in taken and taken[m.id] != m:
            renamed[m.id], fresh = f"M{fresh}", fresh + 1
    if not renamed:
        return mine
    return with_milestones(mine, [_renamed(m, renamed) for m in mine.milestones])


def _renamed(m: Milestone, renamed: dict[str, str]) -> Milestone:
    due = parse_due(m.due)
    new_due = m.due
    if due is not None and due.ref in renamed:
        new_due = re.sub(rf"^\s*{due.ref}(?!\d)", renamed[due.ref], m.due, flags=re.IGNORECASE)
    return replace(m, id=renamed.get(m.id, m.id), due=new_due)


def part_label(part: Part, *plans: Plan) -> str:
    """A part as a person reads it ("M3 Pilot on Q4 data", "the Call to action section"), from the first plan
    that has it."""
    kind, key = part
    value = next((v for v in (parts(p).get(part) for p in plans) if v is not None), None)
    if kind == "milestone":
        return f"{key} {value.title}" if value is not None else str(key)
    if kind == "section":
        heading = value.heading if value is not None else ""
        assert isinstance(key, tuple)  # a section's key is (kind or "heading", name, count): see _section_keys
        return f"the {heading or SECTION_TITLES.get(key[1], key[1])} section"
    if kind == "contact":
        return f"the contact {value.name}" if value is not None else f"the contact {key}"
    if kind == "order":
        return "the order of the timeline" if key == "milestone" else f"the order of the {key}s"
    if kind == "target":
        return "the target date"
    return {"company": "the prospect's company", "address": "the prospect's address", "seller": "the seller's details",
            "after_heading": "the heading over the steps after the PO"}.get(str(key), f"the {key}")  # fmt: skip
