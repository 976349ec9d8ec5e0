"""A redline is the changes of one step, marked, and never a copy of the letter; its name says which step."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from pipeline.archive import export
from pipeline.plan.changes import apply
from pipeline.plan.diff import diff as plan_diff
from pipeline.plan.model import Change, Version
from pipeline.plan.source import parse_plan
from pipeline.redline import redline_html, render_redline
from pipeline.render.letter import letter_pdf
from tests.archive_support import PLAN_ID, T0, Filled, filled, letters

__all__ = ["filled", "letters"]  # fixtures, used by name
FIXTURES = Path(__file__).parent / "fixtures"


def pdftotext(pdf: bytes) -> str:
    done = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
    return " ".join(done.stdout.decode("utf-8").split())


@pytest.fixture(scope="module")
def step() -> tuple[Version, Version]:
    """Version 1 of the example, and version 2: M3 moved, M4 removed, M5 reassigned, the value reworded."""
    one = parse_plan((FIXTURES / "example-plan.md").read_text(), file="example-plan.md")
    changes = [Change("move", milestone="M3", due="2027-03-03"), Change("remove", milestone="M4"),
               Change("reassign", milestone="M5", owner="Raj Patel")]
    two = apply(one, changes, today=date(2027, 1, 12))
    two = replace(two, sections=tuple(
        replace(s, body=s.body.replace("$840k a year", "$900k a year, measured quarterly")) if s.kind == "value"
        else s for s in two.sections))
    return (Version(PLAN_ID, 1, one, "2027-01-11T17:02:00Z", "jordan.lee@northwind.example", "created"),
            Version(PLAN_ID, 2, two, "2027-01-14T18:00:00Z", "dana.whitfield@acme.example", "reply",
                    message_id="<r1@acme.example>"))


def test_the_redline_holds_the_changes_of_its_step_not_the_letter(step: tuple[Version, Version]) -> None:
    one, two = step
    red = render_redline(one, two)
    changes = plan_diff(one.plan, two.plan, old_version=1, new_version=2)
    letter = letter_pdf(two.plan, version=2, created=two.created, diff=changes)
    assert red != letter
    text = pdftotext(red)
    assert "Redline: version 1 to version 2" in text
    # The table of changes, old value beside new: M3 moved from Mon 1 Mar to Wed 3 Mar, M4 removed, M5 to Raj.
    assert "Moved M3" in text and "Mon 1 Mar 2027 Wed 3 Mar 2027" in text
    assert "M4" in text and "Raj Patel" in text
    # The reworded text, both sides: the deleted words as well as the inserted ones.
    assert "$840k" in text and "measured quarterly" in text
    # Who asked, and in which email: the step's provenance.
    assert "dana.whitfield@acme.example" in text and "<r1@acme.example>" in text
    # Not the letter: no salutation, no way to confirm, and far shorter.
    assert "Dear" not in text and "Confirmed" not in text
    assert len(text) < len(pdftotext(letter)) / 2


def test_the_marked_text_strikes_what_went_and_underlines_what_came(step: tuple[Version, Version]) -> None:
    html = redline_html(*step)
    # Words are marked as the diff splits them: "$" stays, "840k" goes, "900k" comes.
    assert "$<del>840k</del>" in html and "<ins>900k</ins>" in html and "<ins>, measured quarterly</ins>" in html
    assert "<del>Mon 1 Mar 2027</del>" in html and "<ins>Wed 3 Mar 2027</ins>" in html


def test_a_step_that_changed_nothing_says_so(step: tuple[Version, Version]) -> None:
    one, _ = step
    same = replace(one, number=2, reason="seller edit")
    assert "Nothing in the plan changed from version 1 to version 2" in pdftotext(render_redline(one, same))


def test_the_bundle_names_each_file_for_what_it_is_and_its_redline_is_no_letter(filled: Filled, tmp_path: Path) -> None:
    export(filled.store, filled.archive, PLAN_ID, tmp_path / "b", redline=render_redline)
    names = sorted(p.name for p in (tmp_path / "b" / "versions").iterdir())
    assert names == ["v001-letter.pdf", "v001-plan.json", "v002-letter.pdf", "v002-plan.json",
                     "v002-redline-from-v001.pdf", "v003-letter.pdf", "v003-plan.json", "v003-redline-from-v002.pdf"]
    red = (tmp_path / "b" / "versions" / "v002-redline-from-v001.pdf").read_bytes()
    assert red != (tmp_path / "b" / "versions" / "v002-letter.pdf").read_bytes()
    # Step 2 moved M2 from T-30d (Mon 1 Mar 2027) to Wed 3 Mar 2027; step 3 added M3.
    assert "Moved M2 Pilot on Q4 data Mon 1 Mar 2027 Wed 3 Mar 2027" in pdftotext(red)
    assert "Added M3 Security review" in pdftotext((tmp_path / "b" / "versions" / "v003-redline-from-v002.pdf")
                                                  .read_bytes())


def test_a_letter_filed_as_its_steps_redline_is_not_exported_as_one(filled: Filled, tmp_path: Path,
                                                                   letters: dict[str, bytes]) -> None:
    # Earlier releases filed each later letter as its step's redline too: that copy is no redline.
    filled.archive.keep(filled.store, letters["v3"], plan_id=PLAN_ID, kind="redline", version=3, at=T0)
    export(filled.store, filled.archive, PLAN_ID, tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert [v["redline"] for v in manifest["versions"]] == [None, "versions/v002-redline-from-v001.pdf", None]
