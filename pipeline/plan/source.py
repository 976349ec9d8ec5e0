"""The plan source format: Markdown with YAML front matter <-> Plan, errors naming the line."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from pipeline.errors import PlanError
from pipeline.plan.model import (
    MILESTONE_ID,
    ROLES,
    SECTION_TITLES,
    STATUSES,
    Contact,
    Milestone,
    Plan,
    Prospect,
    Section,
    Seller,
)
from pipeline.plan.timeline import parse_due, resolve

# Headings are matched after lower-casing and dropping punctuation; the first rule that matches wins.
_SECTION_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
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
    for kind, aliases in _SECTION_RULES:
        if key in aliases:
            return kind
    for kind, aliases in _SECTION_RULES:
        if any(re.search(rf"\b{re.escape(a)}\b", key) for a in aliases if len(a) > 5):
            return kind
    return ""


def slug(text: str) -> str:
    """A lower-case, dash-separated token for ids."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def derive_id(prospect: str, seller: str, target: date | None) -> str:
    """An id from the prospect's and seller's first words and the target year: acme-northwind-2027."""
    parts = [slug(prospect.split()[0]) if prospect.split() else "prospect"]
    if seller.split():
        parts.append(slug(seller.split()[0]))
    if target:
        parts.append(str(target.year))
    return "-".join(p for p in parts if p)


# --- reading ----------------------------------------------------------------------------------


def parse_plan(text: str, file: str | None = None, defaults: dict[str, Any] | None = None) -> Plan:
    """Read a plan's Markdown; every error is a PlanError naming `file` and the line.

    `defaults` fills what the front matter leaves out (the seller from the settings; for plans
    written in an email, also the prospect); a file with neither front matter nor defaults is refused.
    """
    try:
        return _parse(text.replace("\r\n", "\n").replace("\r", "\n"), defaults)
    except PlanError as exc:
        raise exc.located(file) if file else exc from None


def _parse(text: str, defaults: dict[str, Any] | None) -> Plan:
    lines = text.split("\n")
    front, body_start = _front_matter(lines, required=defaults is None)
    meta = _merge(defaults or {}, front)
    fm_lines = lines[:body_start]

    def line_of(needle: str) -> int | None:
        for i, line in enumerate(fm_lines, start=1):
            if needle and needle in line:
                return i
        return None

    known = {"id", "letterhead", "seller", "prospect", "target", "timezone", "next_milestone"}
    for key in meta:
        if key not in known:
            raise PlanError(
                f"unknown front matter key {key!r}",
                line=line_of(f"{key}:"),
                hint=f"known keys: {', '.join(sorted(known))}",
            )
    seller = _seller(meta.get("seller"), line_of)
    prospect = _prospect(meta.get("prospect"), line_of)
    target = _date_value(meta.get("target"), "target", line_of("target:"))
    timezone = str(meta.get("timezone") or "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PlanError(
            f"unknown timezone {timezone!r}",
            line=line_of("timezone:"),
            hint="use an IANA name such as America/Los_Angeles or Europe/Berlin",
        ) from None
    plan_id = str(meta.get("id") or derive_id(prospect.company, seller.company, target))
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,80}", plan_id):
        raise PlanError(
            f"plan id {plan_id!r} is not a valid id",
            line=line_of("id:"),
            hint="use lower-case letters, digits, dots and dashes, e.g. acme-northwind-2027",
        )
    letterhead = meta.get("letterhead")
    plan = Plan(
        id=plan_id,
        seller=seller,
        prospect=prospect,
        target=target,
        timezone=timezone,
        letterhead=str(letterhead) if letterhead else None,
    )
    sections, milestones, after_heading = _body(lines, body_start, plan)
    numbered = _assign_ids(milestones, meta.get("next_milestone"), line_of("next_milestone:"))
    plan = replace(plan, sections=tuple(sections), after_heading=after_heading, **numbered)
    for m in plan.milestones:
        plan.resolve_owner(m.owner, line=m.line)
    resolve(plan)  # unknown references, cycles, T without a target: all named by line
    return plan


def _front_matter(lines: list[str], *, required: bool) -> tuple[dict[str, Any], int]:
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start >= len(lines) or lines[start].strip() != "---":
        if required:
            raise PlanError(
                "the plan has no front matter",
                line=start + 1 if start < len(lines) else 1,
                hint="start the file with a `---` line, the YAML (prospect, contacts, target), and another `---`",
            )
        return {}, start
    for end in range(start + 1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        raise PlanError("the front matter never ends", line=start + 1, hint="close it with a `---` line")
    raw = "\n".join(lines[start + 1 : end])
    try:
        data = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = start + 2 + mark.line if mark is not None else start + 1
        problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]
        raise PlanError(
            f"the front matter is not valid YAML: {problem}",
            line=line,
            hint="check indentation and that values with ':' or '#' are quoted",
        ) from None
    if not isinstance(data, dict):
        raise PlanError("the front matter must be a YAML mapping (key: value lines)", line=start + 2)
    return data, end + 1


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _address(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split("\n") if p.strip())
    return tuple(_text(v) for v in value if _text(v))


def _seller(value: Any, line_of: Any) -> Seller:
    if value is None:
        raise PlanError(
            "the plan names no seller",
            line=1,
            hint="add a `seller:` block (company, name, email) or set [seller] in mutualplan.toml",
        )
    if not isinstance(value, dict) or not _text(value.get("company")):
        raise PlanError("seller needs a company", line=line_of("seller:"), hint="add `company: Your Company`")
    return Seller(
        company=_text(value["company"]),
        name=_text(value.get("name")),
        title=_text(value.get("title")),
        email=_text(value.get("email")).lower(),
        address=_address(value.get("address")),
    )


def _prospect(value: Any, line_of: Any) -> Prospect:
    if not isinstance(value, dict) or not _text(value.get("company")):
        raise PlanError(
            "the plan needs a prospect with a company",
            line=line_of("prospect:") or 1,
            hint="add `prospect:` with `company:` and `contacts:`",
        )
    contacts = []
    raw_contacts = value.get("contacts") or []
    if not isinstance(raw_contacts, list):
        raise PlanError("prospect.contacts must be a list", line=line_of("contacts:"))
    seen: set[str] = set()
    for raw in raw_contacts:
        if not isinstance(raw, dict):
            raise PlanError(
                f"a contact must be a mapping, not {raw!r}",
                line=line_of(str(raw)[:20]) or line_of("contacts:"),
                hint="write `- {name: Dana Whitfield, email: dana@acme.example, role: champion}`",
            )
        name = _text(raw.get("name"))
        line = line_of(name) if name else line_of("contacts:")
        email = _text(raw.get("email")).lower()
        if not name:
            raise PlanError("a contact has no name", line=line, hint="add `name:`")
        if not email:
            raise PlanError(f"contact {name!r} has no email", line=line, hint="add `email: name@company.example`")
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise PlanError(f"contact {name!r} has an invalid email {email!r}", line=line)
        if email in seen:
            raise PlanError(f"two contacts share the email {email!r}", line=line)
        seen.add(email)
        role = _text(raw.get("role")) or "other"
        if role not in ROLES:
            raise PlanError(
                f"contact {name!r} has an unknown role {role!r}", line=line, hint=f"use one of: {', '.join(ROLES)}"
            )
        confirms = raw.get("confirms", False)
        if not isinstance(confirms, bool):
            raise PlanError(f"contact {name!r}: confirms must be true or false", line=line)
        unknown = set(raw) - {"name", "email", "title", "role", "confirms"}
        if unknown:
            raise PlanError(f"contact {name!r} has unknown field(s): {', '.join(sorted(unknown))}", line=line)
        contacts.append(Contact(name=name, email=email, title=_text(raw.get("title")), role=role, confirms=confirms))
    return Prospect(company=_text(value["company"]), address=_address(value.get("address")), contacts=tuple(contacts))


def _date_value(value: Any, what: str, line: int | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise PlanError(f"{what} {value!r} is not a date", line=line, hint="write it as YYYY-MM-DD") from None


def _body(lines: list[str], start: int, plan: Plan) -> tuple[list[Section], list[Milestone], str]:
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


def _canonical_due(text: str) -> str:
    # Kept as written (the seller's own words), only with runs of spaces folded.
    return " ".join(text.split())


def _assign_ids(milestones: list[Milestone], next_milestone: Any, line: int | None) -> dict[str, Any]:
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


# --- writing ----------------------------------------------------------------------------------


def _scalar(value: Any) -> str:
    dumped = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()


def _flow(mapping: dict[str, Any]) -> str:
    # Dumped whole, so values are quoted for flow context: a plain `0,` or `q}` is fine alone, not inside {}.
    return yaml.safe_dump(mapping, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10_000).strip()


def write_plan(plan: Plan) -> str:
    """Write a plan back to the source format; parse_plan(write_plan(p)) == p."""
    out = ["---", f"id: {_scalar(plan.id)}"]
    if plan.letterhead:
        out.append(f"letterhead: {_scalar(plan.letterhead)}")
    out.append("seller:")
    for key in ("company", "name", "title", "email"):
        value = getattr(plan.seller, key)
        if value:
            out.append(f"  {key}: {_scalar(value)}")
    if plan.seller.address:
        out.append(f"  address: {_scalar(list(plan.seller.address))}")
    out.append("prospect:")
    out.append(f"  company: {_scalar(plan.prospect.company)}")
    if plan.prospect.address:
        out.append(f"  address: {_scalar(list(plan.prospect.address))}")
    if plan.prospect.contacts:
        out.append("  contacts:")
        for c in plan.prospect.contacts:
            item: dict[str, Any] = {"name": c.name}
            if c.title:
                item["title"] = c.title
            item["email"] = c.email
            item["role"] = c.role
            if c.confirms:
                item["confirms"] = True
            out.append(f"    - {_flow(item)}")
    if plan.target:
        out.append(f"target: {plan.target.isoformat()}")
    out.append(f"timezone: {_scalar(plan.timezone)}")
    top = max((m.number for m in plan.milestones), default=0)
    if plan.next_number > top + 1:
        out.append(f"next_milestone: {plan.next_number}")
    out.append("---")
    for section in plan.sections:
        out.append("")
        if section.heading:
            out.append(f"## {section.heading}")
        elif section.kind:
            out.append(f"## {SECTION_TITLES[section.kind]}")
        if section.kind == "timeline":
            if section.body:
                out.extend([section.body, ""])
            out.extend(_write_table([m for m in plan.milestones if m.phase == "before"]))
            after = [m for m in plan.milestones if m.phase == "after"]
            if after:
                out.extend(["", f"### {plan.after_heading}"])
                out.extend(_write_table(after))
        elif section.body:
            out.append(section.body)
    return "\n".join(out) + "\n"


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def _write_table(milestones: list[Milestone]) -> list[str]:
    columns = ["#", "Activity", "Owner", "Due"]
    if any(m.status != "proposed" for m in milestones):
        columns.append("Status")
    if any(m.notes for m in milestones):
        columns.append("Notes")
    rows = []
    for m in milestones:
        row = [m.id, m.title, m.owner, m.due]
        if "Status" in columns:
            row.append(m.status)
        if "Notes" in columns:
            row.append(m.notes)
        rows.append([_escape(c) for c in row])
    widths = [max([len(columns[i]), *(len(r[i]) for r in rows)]) for i in range(len(columns))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    lines = [fmt(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines.extend(fmt(r) for r in rows)
    return lines
