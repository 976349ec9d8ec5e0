"""Dates far out: a reply's outside its window is never applied, a plan's outside 2000-2100 is refused,
and a plan with the latest allowed dates still renders."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pipeline.errors import ChangeError, PlanError
from pipeline.plan.changes import apply
from pipeline.plan.model import Change
from pipeline.plan.source import parse_plan
from pipeline.plan.timeline import resolve
from pipeline.render.format import timeline_rows
from pipeline.render.gantt import timeline_svg
from pipeline.render.letter import letter_pdf
from pipeline.replies.dates import find_dates
from pipeline.replies.interpret import interpret

FIXTURES = Path(__file__).parent / "fixtures"
REPLY_DAY = date(2027, 1, 10)  # the reply's date; its window runs to 2037-01-10


@pytest.fixture(scope="module")
def example():
    return parse_plan((FIXTURES / "example-plan.md").read_text(), file="example-plan.md")


@pytest.mark.parametrize(
    "reply",
    [
        "Please move the pilot to December 20, 9998.",
        "Please move the pilot to 9/9/9999.",
        "Let's push the pilot out to the year 6000.",
        "Can we make December 20, 9998 the target date?",
        "Please add a security review on 9/9/9999 before the pilot.",
        "Please push the pilot back 999 months.",
        "Please move the pilot to 2037-01-11.",  # one day past the window
        "Please move the pilot to 2026-12-01.",  # before the reply
    ],
)
def test_a_date_outside_the_replys_window_is_unresolved(example, reply):
    reading = interpret(reply, example, REPLY_DAY)
    assert reading.changes == ()
    assert reading.unresolved, "the seller must be told what was asked"


def test_the_last_day_of_the_window_is_applied(example):
    reading = interpret("Please move the pilot to 2037-01-10.", example, REPLY_DAY)
    assert [c.due for c in reading.changes] == ["2037-01-10"]


def test_find_dates_leaves_a_far_date_without_a_value():
    found = find_dates("December 20, 9998 or December 20, 2036", REPLY_DAY)
    assert [d.value for d in found] == [None, date(2036, 12, 20)]


def test_apply_refuses_a_date_past_the_window_naming_it_and_the_window(example):
    with pytest.raises(ChangeError) as caught:
        apply(example, [Change(op="move", milestone="M3", due="2037-01-11")], today=REPLY_DAY)
    message = caught.value.message
    assert "2037-01-11" in message and "2027-01-10" in message and "2037-01-10" in message
    with pytest.raises(ChangeError, match="9998-12-20"):
        apply(example, [Change(op="retarget", target="9998-12-20")], today=REPLY_DAY)
    with pytest.raises(ChangeError, match="9999-09-09"):
        apply(example, [Change(op="add", title="Security review", due="9999-09-09")], today=REPLY_DAY)
    moved = apply(example, [Change(op="move", milestone="M3", due="2037-01-10")], today=REPLY_DAY)
    assert resolve(moved)["M3"] == date(2037, 1, 10)


def _source(target: str, due: str = "T-30d") -> str:
    text = (FIXTURES / "example-plan.md").read_text()
    text = re.sub(r"(?m)^target: .*$", f"target: {target}", text, count=1)
    return text.replace("T-30d", due, 1)


@pytest.mark.parametrize(
    ("target", "due", "named"),
    [
        ("2101-01-01", "T-30d", "2101-01-01"),
        ("1999-12-31", "T+7d", "1999-12-31"),
        ("2027-03-31", "9998-12-20", "9998-12-20"),
        ("2027-03-31", "T+99999999d", "T+99999999d"),  # past year 9999: no date at all
        ("2027-03-31", "T+36500d", "2127-03-07"),
    ],
)
def test_a_plan_date_outside_2000_to_2100_is_an_error(target, due, named):
    with pytest.raises(PlanError) as caught:
        parse_plan(_source(target, due), file="far.md")
    assert named in str(caught.value)
    assert "2000" in str(caught.value) and "2100" in str(caught.value)


def test_the_first_and_last_allowed_dates_parse():
    plan = parse_plan(_source("2100-12-24", "2000-01-01"), file="edge.md")  # M7 is T+7d: 2100-12-31
    assert resolve(plan)["M3"] == date(2000, 1, 1)
    assert resolve(plan)["M7"] == date(2100, 12, 31)


def test_a_plan_with_the_latest_allowed_dates_renders_a_letter():
    """A retarget to the last day of a reply's window, applied to the example: the letter renders."""
    plan = parse_plan(_source("2036-12-31", "2027-01-30"), file="late.md")
    pdf = letter_pdf(plan, version=2, created=datetime(2027, 1, 10, 17, tzinfo=UTC))
    assert pdf.startswith(b"%PDF")
    latest = parse_plan(_source("2100-12-24", "T-30d"), file="latest.md")
    assert letter_pdf(latest, version=2, created=datetime(2090, 12, 31, 17, tzinfo=UTC)).startswith(b"%PDF")


@pytest.mark.parametrize(("start", "years"), [(date(2027, 1, 10), 10), (date(2000, 1, 1), 100)])
def test_the_gantt_chart_of_a_long_span_is_quick(start, years):
    plan = parse_plan(_source(f"{start.year + years}-01-01", start.isoformat()), file="span.md")
    began = time.perf_counter()
    svg = timeline_svg(timeline_rows(plan), today=start, target=plan.target, seller="Seller", buyer="Buyer")
    took = time.perf_counter() - began
    assert took < 0.5, f"{took:.2f} s"
    assert len(svg) < 200_000


# --- through the command line ---------------------------------------------------------------------


def _run(home: Path, *args: str):
    from click.testing import CliRunner

    from pipeline.cli import main

    return CliRunner().invoke(main, ["--home", str(home), *args], env={"COLUMNS": "200"})


def test_apply_and_add_refuse_far_dates_on_the_command_line(tmp_path: Path):
    home = tmp_path / "home"
    assert _run(home, "init").exit_code == 0
    far = tmp_path / "far.md"
    far.write_text(_source("2027-03-31", "9998-12-20"))
    added = _run(home, "add", str(far))
    assert added.exit_code == 2, added.output
    assert "9998-12-20" in added.stderr and "2000-01-01 to 2100-12-31" in added.stderr
    assert "Traceback" not in added.stderr
    assert _run(home, "add", str(FIXTURES / "example-plan.md")).exit_code == 0
    changes = tmp_path / "c.json"
    changes.write_text('[{"op": "move", "milestone": "M3", "due": "9998-12-20"}]')
    applied = _run(home, "apply", "acme-northwind-2027", str(changes), "--today", "2027-01-15")
    assert applied.exit_code == 2, applied.output
    assert "9998-12-20 is outside 2027-01-15 to 2037-01-15" in applied.stderr
    assert "Traceback" not in applied.stderr
