"""The plan source format: Markdown with YAML front matter <-> Plan, errors naming the line.

The front matter is read in front_matter.py, the sections and timeline tables in sections.py, and a plan is
written back in writer.py; this module puts them together.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipeline.errors import PlanError
from pipeline.plan.front_matter import line_finder, merge, plan_header, read_front_matter
from pipeline.plan.model import Plan
from pipeline.plan.sections import assign_ids, read_body, section_kind
from pipeline.plan.timeline import resolve
from pipeline.plan.writer import write_plan

__all__ = ["parse_plan", "section_kind", "write_plan"]


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
    front, body_start = read_front_matter(lines, required=defaults is None)
    meta = merge(defaults or {}, front)
    line_of = line_finder(lines[:body_start])
    plan = plan_header(meta, line_of)
    sections, milestones, after_heading = read_body(lines, body_start, plan)
    numbered = assign_ids(milestones, meta.get("next_milestone"), line_of("next_milestone:"))
    plan = replace(plan, sections=tuple(sections), after_heading=after_heading, **numbered)
    for m in plan.milestones:
        plan.resolve_owner(m.owner, line=m.line)
    resolve(plan)  # unknown references, cycles, T without a target: all named by line
    return plan
