"""The plan source's body: `##` sections by kind, and the timeline's tables read into milestones."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from pipeline.errors import PlanError
from pipeline.plan.model import MILESTONE_ID, STATUSES, Milestone, Plan, Section
from pipeline.plan.timeline import parse_due

# Headings are matched after lower-casing and dropping punctuation; the first rule that matches wins.
SECTION_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cta", ("call to action", "next step", "next steps", "action items", "actions")),
    ("timeline", ("timeline", "mutual timeline", "milestones", "schedule", "mutual action plan")),
    ("vision", ("visionmatch", "vision match", "vision")),
    ("decision", ("decision process", "decision", "decision criteria", "buying process", "how we decide")),
    ("value", ("business value", "value", "value proposition", "expected value", "outcomes")),
    ("issues", ("business issues", "issues", "pain points", "challenges", "problems")),
    ("solutions", ("solutions", "solution", "proposed solution", "our solution")),
)

_COLUMNS = {
    "id": ("#", "id", "no", "nr", "ref", "step"),
    "title": ("activity", "milestone", "task", "what", "step name", "action"),
    "owner": ("owner", "who", "responsible", "owned by"),
    "due": ("due", "date", "when", "due date", "by"),
    "status": ("status", "state"),
    "notes": ("notes", "note", "comments", "comment", "remarks"),
}
_REQUIRED_COLUMNS = ("title", "owner", "due")
_SEPARATOR = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9#]+", " ", text.lower()).strip()


def section_kind(heading: str) -> str:
    """The canonical kind of a `##` heading, or "" for a free section."""
    key = _norm(heading)
    for kind, aliases in SECTION_RULES:
        if key in aliases:
            return kind
    for kind, aliases in SECTION_RULES:
        if any(re.search(rf"\b{re.escape(a)}\b", key) for a in aliases if len(a) > 5):
            return kind
    return ""


def read_body(lines: list[str], start: int, plan: Plan) -> tuple[list[Section], list[Milestone], str]:
    """Split the body into sections; read the timeline's tables into milestones."""
    chunks: list[tuple[str, int, list[tuple[int, str]]]] = [("", start + 1, [])]
    in_fence = False
    for number, line in enumerate(lines[start:], start=start + 1):
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            chunks.append((line[3:].strip(), number, []))
        else:
            chunks[-1][2].append((number, line))
    sections: list[Section] = []
    milestones: list[Milestone] = []
    after_heading = "After the PO"
    taken: set[str] = set()
    for heading, number, body in chunks:
        kind = section_kind(heading) if heading else ""
        if kind in taken:
            kind = ""  # a second section of a kind is kept as free text, in its place
        if kind == "timeline":
            text, rows, after = _timeline(body, plan)
            if not rows:
                raise PlanError(
                    "the Timeline section has no milestone table",
                    line=number,
                    hint="add a table with columns: # | Activity | Owner | Due",
                )
            milestones.extend(rows)
            after_heading = after or after_heading
            sections.append(Section(heading=heading, kind=kind, body=text))
        else:
            text = _clean("\n".join(line for _, line in body))
            if heading or text:
                sections.append(Section(heading=heading, kind=kind, body=text))
        if kind:
            taken.add(kind)
    if "timeline" not in taken:
        raise PlanError(
            "the plan has no timeline",
            line=start + 1,
            hint="add a `## Timeline` section with a table: # | Activity | Owner | Due",
        )
    return sections, milestones, after_heading


def _clean(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n")).strip("\n")


def _timeline(body: list[tuple[int, str]], plan: Plan) -> tuple[str, list[Milestone], str | None]:
    prose: list[str] = []
    rows: list[Milestone] = []
    phase = "before"
    after_heading: str | None = None
    in_fence = False
    i = 0
    while i < len(body):
        _, line = body[i]
        stripped = line.strip()
        if _FENCE.match(line) or in_fence:
            # A fenced block is prose, even when its lines look like a table or an `after` heading.
            in_fence = in_fence != bool(_FENCE.match(line))
            prose.append(line)
            i += 1
            continue
        if stripped.startswith("### "):
            heading = stripped[4:].strip()
            if re.search(r"\bafter\b", heading, re.IGNORECASE):
                phase, after_heading = "after", heading
            else:
                phase = "before"
                prose.append(line)
            i += 1
            continue
        if stripped.startswith("|"):
            table = []
            while i < len(body) and body[i][1].strip().startswith("|"):
                table.append(body[i])
                i += 1
            rows.extend(_table(table, phase, plan))
            continue
        prose.append(line)
        i += 1
    return _clean("\n".join(prose)), rows, after_heading


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def _table(table: list[tuple[int, str]], phase: str, plan: Plan) -> list[Milestone]:
    header_line, header = table[0]
    if len(table) < 2 or not _SEPARATOR.match(table[1][1].strip()):
        raise PlanError(
            "a timeline table needs a header row and a separator row (|---|---|)",
            line=header_line,
        )
    columns = _columns(header, header_line)
    out = []
    for number, line in table[2:]:
        cells = _cells(line)
        if len(cells) != len(columns):
            raise PlanError(
                f"this timeline row has {len(cells)} cells, the header has {len(columns)}",
                line=number,
                hint="check for a missing or extra `|`",
            )
        row = dict(zip(columns, cells, strict=True))
        if not row["title"]:
            raise PlanError("a milestone has no activity", line=number)
        status = (row.get("status") or "proposed").lower()
        if status not in STATUSES:
            raise PlanError(f"unknown status {row['status']!r}", line=number, hint=f"use one of: {', '.join(STATUSES)}")
        parse_due(row["due"], line=number)
        plan.resolve_owner(row["owner"], line=number)
        out.append(
            Milestone(
                id=row.get("id", ""),
                title=row["title"],
                owner=row["owner"],
                due=_canonical_due(row["due"]),
                status=status,
                notes=row.get("notes", ""),
                phase=phase,
                line=number,
            )
        )
    return out


def _columns(header: str, header_line: int) -> list[str]:
    """The columns a timeline table's header row names, in order; all the required ones, none twice."""
    columns: list[str] = []
    for cell in _cells(header):
        key = _norm(cell)
        name = next((col for col, aliases in _COLUMNS.items() if key in aliases), None)
        if name is None:
            raise PlanError(
                f"unknown timeline column {cell!r}",
                line=header_line,
                hint="columns are: # (optional), Activity, Owner, Due, and optionally Status and Notes",
            )
        if name in columns:
            raise PlanError(f"timeline column {cell!r} appears twice", line=header_line)
        columns.append(name)
    for required in _REQUIRED_COLUMNS:
        if required not in columns:
            raise PlanError(
                f"the timeline table has no {required if required != 'title' else 'Activity'} column",
                line=header_line,
                hint="columns are: # (optional), Activity, Owner, Due, and optionally Status and Notes",
            )
    return columns


def _canonical_due(text: str) -> str:
    # Kept as written (the seller's own words), only with runs of spaces folded.
    return " ".join(text.split())


def assign_ids(milestones: list[Milestone], next_milestone: Any, line: int | None) -> dict[str, Any]:
    """The milestones with their ids checked (3 and #3 read as M3) and the empty ones numbered past the highest,
    and the next number: the keyword arguments for the Plan."""
    seen: dict[str, int | None] = {}
    explicit: list[Milestone] = []
    for m in milestones:
        if not m.id:
            explicit.append(m)
            continue
        raw = m.id.strip().upper().lstrip("#")
        milestone_id = f"M{raw}" if raw.isdigit() else raw
        if not MILESTONE_ID.match(milestone_id):
            raise PlanError(
                f"milestone id {m.id!r} should look like M3", line=m.line, hint="or leave the # cell empty"
            )
        if milestone_id in seen:
            raise PlanError(
                f"duplicate milestone id {milestone_id} (first on line {seen[milestone_id]})",
                line=m.line,
                hint="ids are stable: give the new row another id or leave its # cell empty",
            )
        seen[milestone_id] = m.line
        explicit.append(replace(m, id=milestone_id))
    top = max((m.number for m in explicit if m.id), default=0)
    counter = top + 1
    if next_milestone is not None:
        if not isinstance(next_milestone, int) or next_milestone < 1:
            raise PlanError("next_milestone must be a positive whole number", line=line)
        counter = max(counter, next_milestone)
    numbered = []
    for m in explicit:
        if not m.id:
            m = replace(m, id=f"M{counter}")
            counter += 1
        numbered.append(m)
    return {"milestones": tuple(numbered), "next_number": counter}
