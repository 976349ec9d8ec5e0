"""Page breaks: a heading never ends a page, and a short section is never cut in two."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.plan.source import parse_plan
from pipeline.render.letter import render_letter

FIXTURES = Path(__file__).parent / "fixtures"
CREATED = datetime(2027, 1, 11, 17, 2, tzinfo=UTC)
SHORT = "\n## Risks\n- Risk one is named here\n- Risk two is named here\n- Risk three is named here\n- Risk four\n"
HEADINGS = (
    "Executive summary", "Background", "Risks", "Timeline", "After the PO", "The timeline at a glance",
    "Decision process", "Call to action", "Confirmation",
)  # fmt: skip


def pages_of(pdf: bytes, count: int) -> list[list[str]]:
    """Each page's non-empty lines, read one page at a time (pdftotext -f N -l N), footer left out."""
    pages = []
    for n in range(1, count + 1):
        done = subprocess.run(
            ["pdftotext", "-layout", "-f", str(n), "-l", str(n), "-", "-"], input=pdf, capture_output=True, check=True
        )
        lines = [line.strip() for line in done.stdout.decode().splitlines() if line.strip()]
        pages.append([line for line in lines if not line.startswith("Mutual Plan ")])
    return pages


@pytest.mark.parametrize("letterhead", ["default", "northwind"])
def test_no_page_ends_with_a_heading_and_short_sections_stay_whole(letterhead: str) -> None:
    # A free section of k paragraphs pushes the short "Risks" section, the timeline and the decision
    # process down a line at a time, so each of their headings comes to stand at a page's foot once.
    source = (FIXTURES / "example-plan.md").read_text().replace("letterhead: northwind", f"letterhead: {letterhead}")
    for k in range(20, 38):
        filler = "\n## Background\n" + "\n\n".join(f"Background paragraph {j}." for j in range(k)) + "\n"
        plan = parse_plan(source.replace("## Decision process", filler + SHORT + "\n## Decision process"), file="p.md")
        letter = render_letter(plan, version=1, created=CREATED)
        pages = pages_of(letter.pdf, letter.pages)
        for n, lines in enumerate(pages, 1):
            assert lines[-1] not in HEADINGS, f"{k} paragraphs: page {n} ends with the heading {lines[-1]!r}"
        for first, last in (("Risks", "• Risk four"), ("Decision process", "• Decision: Raj Patel signs")):
            on = [n for n, lines in enumerate(pages, 1) if any(line.startswith((first, last)) for line in lines)]
            assert len(on) == 1, f"{k} paragraphs: the section {first!r} is cut over pages {on}"
