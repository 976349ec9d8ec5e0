"""Input a seller gets wrong by hand: impossible dates and commas in YAML flow values, named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.errors import PlanError
from pipeline.plan.source import parse_plan

EXAMPLE = (Path(__file__).parent / "fixtures" / "example-plan.md").read_text(encoding="utf-8")


def _with(old: str, new: str) -> str:
    assert old in EXAMPLE, old
    return EXAMPLE.replace(old, new, 1)


def _fails_in_both_commands(text: str, tmp_path: Path, line: int, *words: str) -> PlanError:
    """The parser names the line; `show` and `check` print file:line and the words, exit 2, no traceback."""
    with pytest.raises(PlanError) as info:
        parse_plan(text, file="plan.md")
    err = info.value
    assert err.line == line, (err, text.split("\n")[(err.line or 1) - 1])
    path = tmp_path / "plan.md"
    path.write_text(text, encoding="utf-8")
    for command in ("show", "check"):
        result = CliRunner().invoke(main, [command, str(path)])
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        assert f"{path}:{line}: " in result.output
        for word in words:
            assert word in result.output, (word, result.output)
    return err


# --- impossible dates --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        # YAML reads an unquoted 2027-02-30 as a date and fails inside its own constructor.
        ("target: 2027-03-31", "target: 2027-02-30", 16, ("target '2027-02-30' is not a real date",
                                                         "February 2027 has 28 days")),
        ("target: 2027-03-31", "target: 2027-02-29", 16, ("2027-02-29", "February 2027 has 28 days")),
        ("target: 2027-03-31", 'target: "2027-02-30"', 16, ("2027-02-30", "February 2027 has 28 days")),
        ("target: 2027-03-31", "target: 2027-13-01", 16, ("2027-13-01", "a month is 01 to 12")),
        ("target: 2027-03-31", "target: 2027-04-31", 16, ("2027-04-31", "April 2027 has 30 days")),
        # Anywhere in the front matter, not only the target: here a contact's title.
        ("title: Counsel,", "title: 2027-02-30,", 15, ("2027-02-30", "February 2027 has 28 days")),
        ("title: Counsel,", "title: 2027-02-03 25:00:00,", 15, ("2027-02-03 25:00:00", "not a real date and time")),
        # A date and a time is not a target date.
        ("target: 2027-03-31", "target: 2027-03-31 10:00:00", 16, ("target", "YYYY-MM-DD")),
    ],
)
def test_an_impossible_date_in_the_front_matter_is_named(
    old: str, new: str, line: int, words: tuple[str, ...], tmp_path: Path
) -> None:
    err = _fails_in_both_commands(_with(old, new), tmp_path, line, *words)
    assert "YYYY-MM-DD" in str(err)


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("2027-02-30", ("2027-02-30", "February 2027 has 28 days", "2027-02-28")),
        ("2027-13-01", ("2027-13-01", "a month is 01 to 12")),
        ("2027-06-31", ("2027-06-31", "June 2027 has 30 days", "2027-06-30")),
        ("2027-00-10", ("2027-00-10", "a month is 01 to 12")),
    ],
)
def test_an_impossible_due_date_says_what_to_write(cell: str, words: tuple[str, ...], tmp_path: Path) -> None:
    _fails_in_both_commands(_with("2027-02-10", cell), tmp_path, 42, *words)


def test_a_leap_day_in_a_leap_year_is_a_date() -> None:
    plan = parse_plan(_with("target: 2027-03-31", "target: 2028-02-29"))
    assert plan.target is not None and plan.target.isoformat() == "2028-02-29"


# --- commas inside unquoted flow values ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("old", "new", "line", "quoted"),
    [
        ("{name: Dana Whitfield,", "{name: Whitfield, Jr.,", 13, 'name: "Whitfield, Jr."'),
        ("{name: Raj Patel,", "{name: Patel, Raj,", 14, 'name: "Patel, Raj"'),
        ("{name: Raj Patel,", "{name: Patel, Jr., Raj,", 14, 'name: "Patel, Jr., Raj"'),
        ("title: VP Operations,", "title: VP, Operations,", 13, 'title: "VP, Operations"'),
    ],
)
def test_a_comma_inside_a_contact_value_gets_a_hint_to_quote_it(
    old: str, new: str, line: int, quoted: str, tmp_path: Path
) -> None:
    err = _fails_in_both_commands(_with(old, new), tmp_path, line, "comma", quoted)
    assert "quote" in (err.hint or "")


def test_a_comma_in_a_flow_seller_or_prospect_is_not_dropped_silently(tmp_path: Path) -> None:
    seller_block = (
        "seller:                            # optional; defaults come from config\n"
        "  company: Northwind Analytics\n  name: Jordan Lee\n  title: Account Executive\n"
        "  email: jordan.lee@northwind.example\n"
    )
    flow = "seller: {company: Northwind, Inc., name: Jordan Lee, email: jordan.lee@northwind.example}\n"
    # Before, the company was read as "Northwind" and "Inc." vanished.
    _fails_in_both_commands(_with(seller_block, flow), tmp_path, 4, 'company: "Northwind, Inc."')


def test_commas_in_a_flow_list_and_in_quoted_values_are_fine() -> None:
    plan = parse_plan(_with("{name: Dana Whitfield,", '{name: "Whitfield, Jr., Dana",'))
    assert plan.prospect.contacts[0].name == "Whitfield, Jr., Dana"
    assert plan.prospect.address == ("200 Harbor Way", "Portland", "OR 97201")
    raj = "    - {name: Raj Patel, title: CFO, email: raj.patel@acme.example, role: decision-maker, confirms: true}"
    block = "    - name: Patel, Raj\n      title: CFO\n      email: raj.patel@acme.example\n      role: decision-maker"
    # A comma in a block value is part of the value: only the flow style splits on it.
    assert parse_plan(_with(raj, block)).prospect.contacts[1].name == "Patel, Raj"
