"""The plan source written back: a Plan as Markdown with YAML front matter, read back to the same plan."""

from __future__ import annotations

from typing import Any

import yaml

from pipeline.plan.model import SECTION_TITLES, Milestone, Plan


def _scalar(value: Any) -> str:
    dumped = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()


def _flow(mapping: dict[str, Any]) -> str:
    # Dumped whole, so values are quoted for flow context: a plain `0,` or `q}` is fine alone, not inside {}.
    return yaml.safe_dump(mapping, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10_000).strip()


def write_plan(plan: Plan, *, version: int | None = None) -> str:
    """Write a plan back to the source format; parse_plan(write_plan(p)) == p. `version` marks the stored version
    it was exported from, which `add` counts the file's edits from."""
    out = ["---", f"id: {_scalar(plan.id)}"]
    if version is not None:
        out.append(f"version: {int(version)}")
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
    if plan.prospect.short_name:
        out.append(f"  short_name: {_scalar(plan.prospect.short_name)}")
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
