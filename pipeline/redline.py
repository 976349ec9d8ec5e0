"""The redline of a step: the newer version's letter opening with "Changes since version N"."""

from __future__ import annotations

from pipeline.plan.diff import diff
from pipeline.plan.model import Version
from pipeline.render.letter import letter_pdf


def render_redline(older: Version, newer: Version, letterhead: str | None = None) -> bytes:
    """The letter of `newer` with the changes since `older` (the same bytes the loop sends for that step)."""
    changes = diff(older.plan, newer.plan, old_version=older.number, new_version=newer.number)
    return letter_pdf(newer.plan, version=newer.number, created=newer.created, diff=changes,
                      letterhead=newer.plan.letterhead or letterhead)
