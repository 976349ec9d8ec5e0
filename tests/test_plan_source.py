"""The plan source format: the example resolves as the spec says, and bad input is named by line."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.errors import PlanError
from pipeline.plan.source import parse_plan, section_kind
from pipeline.plan.timeline import dependents, resolve

EXAMPLE = Path(__file__).parent / "fixtures" / "example-plan.md"


@pytest.fixture
def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def test_example_resolves_to_the_dates_of_the_spec(example_text: str) -> None:
    plan = parse_plan(example_text, file="example-plan.md")
    dates = resolve(plan)
    assert {k: v.isoformat() for k, v in dates.items()} == {
        "M1": "2027-01-30",  # T-60d from 2027-03-31
        "M2": "2027-02-10",
        "M3": "2027-03-01",  # T-30d
        "M4": "2027-03-04",  # M3+3d
        "M5": "2027-03-17",  # T-14d
        "M6": "2027-03-31",
        "M7": "2027-04-07",  # T+7d, after the PO
    }
    assert [m.phase for m in plan.milestones] == ["before"] * 6 + ["after"]
    assert plan.id == "acme-northwind-2027"
    assert [c.name for c in plan.confirmers] == ["Dana Whitfield", "Raj Patel"]
    assert plan.section("vision").heading == "Differentiated VisionMatch"
    assert plan.section("cta").body == "Dana to confirm the pilot data set by Friday."
    assert plan.next_number == 8


def test_show_json_says_the_same(example_text: str, tmp_path: Path) -> None:
    path = tmp_path / "plan.md"
    path.write_text(example_text, encoding="utf-8")
    result = CliRunner().invoke(main, ["show", str(path), "--json", "--today", "2027-01-11"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["id"] == "acme-northwind-2027"
    assert data["target"] == "2027-03-31"
    assert data["days_to_target"] == 79  # 20 days left in January + 28 + 31
    assert [(m["id"], m["due"], m["phase"]) for m in data["milestones"]] == [
        ("M1", "2027-01-30", "before"),
        ("M2", "2027-02-10", "before"),
        ("M3", "2027-03-01", "before"),
        ("M4", "2027-03-04", "before"),
        ("M5", "2027-03-17", "before"),
        ("M6", "2027-03-31", "before"),
        ("M7", "2027-04-07", "after"),
    ]
    assert data["milestones"][2]["owner"] == "Acme (Dana)"
    assert {c["email"] for c in data["contacts"]} == {
        "dana.whitfield@acme.example", "raj.patel@acme.example", "kim.osei@acme.example"}


def test_show_table_groups_before_and_after(example_text: str, tmp_path: Path) -> None:
    path = tmp_path / "plan.md"
    path.write_text(example_text, encoding="utf-8")
    result = CliRunner().invoke(main, ["show", str(path), "--today", "2027-03-02"])
    assert result.exit_code == 0
    before, after = result.output.split("After the PO")
    assert "Pilot on Q4" in before and "Kick-off" in after and "Kick-off" not in before
    assert "1 days ago" in before  # M3 was due 2027-03-01


def test_moving_the_target_moves_what_is_relative_to_it(example_text: str) -> None:
    moved = parse_plan(example_text.replace("target: 2027-03-31", "target: 2027-04-30"))
    dates = resolve(moved)
    assert dates["M2"] == date(2027, 2, 10)  # a fixed date stays
    assert dates["M3"] == date(2027, 3, 31)  # T-30d
    assert dates["M4"] == date(2027, 4, 3)  # M3+3d follows M3
    assert dates["M7"] == date(2027, 5, 7)


def test_moving_a_milestone_moves_its_dependents(example_text: str) -> None:
    moved = parse_plan(example_text.replace("| T-30d     |", "| 2027-03-08 |"))
    assert resolve(moved)["M4"] == date(2027, 3, 11)
    assert dependents(moved, "M3") == ["M4"]


def test_due_forms() -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("| T+7d      |", "| T+2w |")
    assert resolve(parse_plan(text))["M7"] == date(2027, 4, 14)


def test_missing_ids_are_assigned_in_order_and_never_reused(example_text: str) -> None:
    text = example_text.replace("| M4 | Reference", "|    | Reference").replace("| M7 | Kick", "|    | Kick")
    plan = parse_plan(text.replace("M3+3d", "T-27d"))
    # M4 and M7 lost their ids: they take the next numbers after the highest used (M6).
    assert [m.id for m in plan.milestones] == ["M1", "M2", "M3", "M7", "M5", "M6", "M8"]
    assert plan.next_number == 9
    pinned = parse_plan(example_text.replace("timezone: America/Los_Angeles", "timezone: UTC\nnext_milestone: 12"))
    assert pinned.next_id() == "M12"


@pytest.mark.parametrize(
    ("heading", "kind"),
    [("Differentiated VisionMatch", "vision"), ("Vision", "vision"), ("Value", "value"),
     ("Next steps", "cta"), ("Call to Action", "cta"), ("Decision Process", "decision"),
     ("Mutual timeline", "timeline"), ("Risks", "")],
)
def test_section_aliases(heading: str, kind: str) -> None:
    assert section_kind(heading) == kind


def test_free_sections_are_kept_in_place(example_text: str) -> None:
    text = example_text.replace("## Solutions", "## Risks\nSupply data may arrive late.\n\n## Solutions")
    plan = parse_plan(text)
    headings = [s.heading for s in plan.sections]
    assert headings.index("Risks") == headings.index("Solutions") - 1
    assert plan.sections[headings.index("Risks")].kind == ""


# --- bad input: each error names the file, the line and what was expected ---------------------

def _bad(example: str, old: str, new: str) -> str:
    assert old in example, old
    return example.replace(old, new, 1)


CASES = {
    # case: (how to break the example, the line the error must name (checked against the file), words)
    "no front matter": (lambda t: t.split("---\n", 2)[2], 2, "no front matter"),
    "bad yaml": (lambda t: _bad(t, "target: 2027-03-31", "target: [2027-03-31"), None, "not valid YAML"),
    "no timeline": (lambda t: t.split("## Timeline")[0] + "## Call to action\nGo.\n", None, "no timeline"),
    "unknown column": (lambda t: _bad(t, "| Due       |\n|----", "| Budget    |\n|----"), 39,
                       "unknown timeline column"),
    "duplicate id": (lambda t: _bad(t, "| M4 | Reference", "| M3 | Reference"), 44, "duplicate milestone id M3"),
    "unknown reference": (lambda t: _bad(t, "M3+3d", "M9+3d"), 44, "no milestone M9"),
    "cycle": (lambda t: _bad(_bad(t, "M3+3d", "M5+3d"), "| T-14d     |", "| M4-1d |"), None, "cycle"),
    "bad date": (lambda t: _bad(t, "2027-02-10", "Feb tenth"), 42, "does not parse"),
    "impossible date": (lambda t: _bad(t, "2027-02-10", "2027-02-30"), 42, "not a real date"),
    "T without target": (lambda t: _bad(t, "target: 2027-03-31", ""), 41, "no target date"),
    "contact without email": (lambda t: _bad(t, " email: kim.osei@acme.example,", ""), 15, "has no email"),
    "unknown role": (lambda t: _bad(t, "role: legal", "role: lawyer"), 15, "unknown role 'lawyer'"),
    "owner names nobody": (lambda t: _bad(t, "| Northwind          | 2027", "| Globex | 2027"), 42, "names nobody"),
    "extra cell": (lambda t: _bad(t, "| T         |", "| T | signed |"), 46, "cells"),
    "unknown status": (lambda t: t.replace("### After the PO",
                                           "### After the PO\n| # | Activity | Owner | Due | Status |\n"
                                           "|--|--|--|--|--|\n| M8 | Renewal | Joint | T+1w | finished |\n"), 51,
                       "unknown status 'finished'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_named_by_file_and_line(case: str, example_text: str, tmp_path: Path) -> None:
    make, line, words = CASES[case]
    text = make(example_text)
    with pytest.raises(PlanError) as info:
        parse_plan(text, file="plan.md")
    err = info.value
    assert words in err.reason
    assert err.file == "plan.md"
    assert err.line is not None
    if line is not None:
        assert err.line == line, (err.line, text.split("\n")[err.line - 1])
    # The command prints the same without a traceback and exits 2, for show and check alike.
    path = tmp_path / "plan.md"
    path.write_text(text, encoding="utf-8")
    for command in ("show", "check"):
        # Outside any home, as parse_plan is called above: a home's settings would fill what the file leaves out.
        result = CliRunner().invoke(main, [command, str(path)], env={"MUTUALPLAN_HOME": str(tmp_path / "no-home")})
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert f"{path}:{err.line}: " in result.output
        assert words in result.output


def test_missing_file_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["show", "no/such/plan.md"])
    assert result.exit_code == 2
    assert "no such file" in result.output
