"""The timeline picture's month labels: never two on top of each other, whatever the plan's span."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest

from pipeline.plan.source import parse_plan
from pipeline.render.format import Row
from pipeline.render.gantt import GanttStyle, month_labels
from pipeline.render.letter import render_letter

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rows_on(days: list[date]) -> list[Row]:
    """Milestones due on these days, one after the other."""
    return [
        Row(f"M{i + 1}", f"Step {i + 1}", "Joint", d, "proposed", "", "before", "joint")
        for i, d in enumerate(days)
    ]


def plan_source(today: date, days: list[date], target: date) -> str:
    """A plan with a milestone due on each day, the last one being the target."""
    lines = "\n".join(f"| Step {i + 1} | Joint | {d.isoformat()} |" for i, d in enumerate(days))
    return (
        f"---\nseller:\n  company: Solo Seller Ltd\n  email: hello@solo.example\nprospect:\n  company: Buyer GmbH\n"
        f"target: {target.isoformat()}\n---\n\n## Timeline\n| Activity | Owner | Due |\n|---|---|---|\n{lines}\n"
    )


def monthly(first: date, months: int) -> list[date]:
    """The 15th of each month from `first`'s month on, `months` of them."""
    out = []
    for k in range(months):
        year, month = divmod(first.month - 1 + k, 12)
        out.append(date(first.year + year, month + 1, 15))
    return out


# name: (letter's date, due dates, target)
PLANS = {
    "year-boundary": (
        date(2026, 11, 20),
        [date(2026, 12, 1), date(2026, 12, 15), date(2027, 1, 10)],
        date(2027, 2, 15),
    ),
    "two-weeks": (date(2027, 1, 25), [date(2027, 1, 27), date(2027, 2, 1), date(2027, 2, 5)], date(2027, 2, 8)),
    "two-weeks-in-a-month": (date(2027, 3, 3), [date(2027, 3, 5), date(2027, 3, 10)], date(2027, 3, 17)),
    "ten-months": (date(2027, 1, 11), [date(2027, 6, 1)], date(2027, 11, 1)),
    "a-year": (date(2027, 1, 11), monthly(date(2027, 1, 1), 13), date(2028, 1, 31)),
    "eighteen-months": (date(2027, 1, 11), monthly(date(2027, 2, 1), 18), date(2028, 7, 31)),
    "three-years": (date(2027, 1, 11), monthly(date(2027, 3, 1), 36), date(2030, 1, 15)),
    "ten-years": (date(2027, 1, 11), [date(2030, 1, 1)], date(2037, 1, 1)),
}


@pytest.mark.parametrize("name", sorted(PLANS))
@pytest.mark.parametrize("width", [420, 300])
def test_month_labels_never_overlap_and_stay_inside(name: str, width: int) -> None:
    today, days, target = PLANS[name]
    labels = month_labels(rows_on(days), today=today, target=target, style=GanttStyle(chart_width=width))
    assert labels, "a picture always names at least one month"
    for a, b in pairwise(labels):
        assert a.x + a.width < b.x, (a, b)
    assert labels[0].x >= 0 and labels[-1].x + labels[-1].width <= width
    # The first label names its year, and so does the first label of every later year.
    years = [int(label.text[-4:]) for label in labels if label.text[-4:].isdigit()]
    assert labels[0].text[-4:].isdigit()
    assert len(years) == len({y for y in years})


def test_month_labels_by_hand() -> None:
    # Ten months, 11 Jan to 1 Nov 2027: the picture spans 2 Jan - 12 Nov (margins of 9 and 11 days), 314
    # days over 410 units, so a month is about 40 units and "Feb 2027" (8 characters at 0.7 em of 7.6 pt,
    # about 57 units) does not fit beside "Mar": every second month, from March; November's label would
    # run out of the picture and is left out.
    today, days, target = PLANS["ten-months"]
    texts = [label.text for label in month_labels(rows_on(days), today=today, target=target)]
    assert texts == ["Mar 2027", "May", "Jul", "Sep"]
    # Across a year boundary with room to spare: every month, the year at its first label and at January.
    today, days, target = PLANS["year-boundary"]
    texts = [label.text for label in month_labels(rows_on(days), today=today, target=target)]
    assert texts == ["Dec 2026", "Jan 2027", "Feb"]
    # Two weeks inside one month cross no month's start: the month is named at the picture's left.
    today, days, target = PLANS["two-weeks-in-a-month"]
    labels = month_labels(rows_on(days), today=today, target=target)
    assert [label.text for label in labels] == ["Mar 2027"]


def _month_words(pdf: bytes) -> list[tuple[float, float, str]]:
    """The words of the picture's month line (its top line), as poppler places them: (xMin, xMax, text)."""
    page = next(
        n
        for n in range(1, 10)
        if "at a glance" in subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), "-", "-"], input=pdf,
                                           capture_output=True).stdout.decode()
    )  # fmt: skip
    boxes = subprocess.run(
        ["pdftotext", "-bbox", "-f", str(page), "-l", str(page), "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>'
    words = [(float(x0), float(y), float(x1), t) for x0, y, x1, t in re.findall(pattern, boxes)]
    glance = next(y for x0, y, x1, t in words if t == "glance")
    top = min(y for x0, y, x1, t in words if y > glance and t in MONTHS)
    return sorted((x0, x1, t) for x0, y, x1, t in words if abs(y - top) < 1)


@pytest.mark.parametrize("name", ["year-boundary", "two-weeks", "ten-months", "a-year", "three-years"])
def test_the_letter_draws_the_month_labels_apart(name: str) -> None:
    today, days, target = PLANS[name]
    plan = parse_plan(plan_source(today, days, target), file="plan.md")
    created = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    letter = render_letter(plan, version=1, created=created)
    words = _month_words(letter.pdf)
    for (_, x1, t), (n0, _, u) in pairwise(words):
        assert x1 + 1 < n0, f"{t!r} runs into {u!r}"
    expected = " ".join(label.text for label in month_labels(rows_on(days), today=today, target=target))
    assert " ".join(t for x0, x1, t in words) == expected


def test_a_label_is_kept_inside_the_picture_when_it_is_the_only_one() -> None:
    # A two-week plan whose only month start lies at the picture's right end.
    today = date(2027, 1, 17)
    labels = month_labels(rows_on([today + timedelta(days=10)]), today=today, target=date(2027, 1, 28))
    assert labels and labels[-1].x + labels[-1].width <= GanttStyle().chart_width
