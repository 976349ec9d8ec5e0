"""When the loop's own mail goes: the weekly digest on its day in the seller's working hours, wherever the seller
is, never late at night or a day late; and no reminder until the plan's first email has been out two days.

The example plan lives in Los Angeles (UTC-8 in winter: 17:00 UTC is 9:00 there); its M1, the discovery
workshop, is due Sat 30 Jan 2027. The seller here works from Auckland (UTC+13 in January: 8:00 on Monday is
19:00 UTC on Sunday).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from pipeline.home import Home, init_home
from pipeline.loop import reminders
from pipeline.loop.service import PollReport, Service, queue_plan
from pipeline.plan.ids import seller_message_id
from tests.loop_support import PLAN_ID, SELLER, Clock, example_plan

MONDAY = 0


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text + "+00:00")


def settings(timezone: str, *, reminders_on: bool, digest: bool) -> str:
    return f"""\
[seller]
company = "Northwind Analytics"
name = "Jordan Lee"
email = "{SELLER}"
timezone = "{timezone}"

[reminders]
enabled = {str(reminders_on).lower()}
digest = {str(digest).lower()}
digest_day = "monday"
days_before = 3
"""


def sent_home(root: Path, toml: str, sent_at: datetime) -> Home:
    """A home whose example plan went to the prospect at `sent_at`."""
    home = init_home(root)
    home.settings_path.write_text(toml, encoding="utf-8")
    clock = Clock(sent_at)
    with Service.open(home, clock) as watcher:
        plan = example_plan()
        watcher.store.add_version(plan, author=SELLER, reason="created", created=clock())
        queue_plan(watcher.store, plan.id, at=clock())
        watcher.flush()
    return home


def remind(home: Home, when: datetime) -> list[str]:
    """What the watcher's reminder pass sends at `when`."""
    report = PollReport()
    with Service.open(home, Clock(when)) as watcher:
        watcher.remind(report)
    assert report.errors == []
    return report.sent


# --- the digest ------------------------------------------------------------------------------------


@pytest.mark.parametrize("timezone, when, due", [
    # Kiritimati, UTC+14: Monday 8:00 there is Sunday 18:00 UTC; Monday 18:00 there is still Monday in UTC.
    ("Pacific/Kiritimati", "2027-01-17T18:00:00", True),
    ("Pacific/Kiritimati", "2027-01-17T17:59:00", False),
    ("Pacific/Kiritimati", "2027-01-18T03:59:00", True),  # 17:59
    ("Pacific/Kiritimati", "2027-01-18T04:00:00", False),  # 18:00
    ("Pacific/Kiritimati", "2027-01-18T08:45:00", False),  # 22:45
    # Pago Pago, UTC-11: Monday 17:59 there is Tuesday 4:59 UTC; Tuesday 8:00 there is a UTC Tuesday too.
    ("Pacific/Pago_Pago", "2027-01-18T19:00:00", True),  # Monday 8:00
    ("Pacific/Pago_Pago", "2027-01-19T04:59:00", True),  # Monday 17:59
    ("Pacific/Pago_Pago", "2027-01-18T18:59:00", False),  # Monday 7:59
    ("Pacific/Pago_Pago", "2027-01-19T09:45:00", False),  # Monday 22:45
    ("Pacific/Pago_Pago", "2027-01-19T19:00:00", False),  # Tuesday 8:00
    ("Pacific/Pago_Pago", "2027-01-23T21:00:00", False),  # Saturday 10:00
])
def test_the_digest_hours_are_the_sellers(timezone: str, when: str, due: bool) -> None:
    assert reminders.digest_due(utc(when), timezone, MONDAY) is due


def test_the_digest_goes_on_its_day_in_working_hours_never_late_or_a_day_after(tmp_path: Path) -> None:
    home = sent_home(tmp_path / "home", settings("Pacific/Auckland", reminders_on=False, digest=True),
                     utc("2027-01-11T17:02:00"))
    week3 = seller_message_id("digest", "digest|2027-W03", "northwind.example")
    week5 = seller_message_id("digest", "digest|2027-W05", "northwind.example")
    assert remind(home, utc("2027-01-15T21:00:00")) == []  # Saturday 16 Jan, 10:00 in Auckland
    assert remind(home, utc("2027-01-17T18:59:00")) == []  # Monday 18 Jan, 7:59
    assert remind(home, utc("2027-01-17T19:00:00")) == [week3]  # Monday, 8:00
    assert remind(home, utc("2027-01-17T23:00:00")) == []  # Monday, 12:00: sent already this week
    # Monday 25 Jan passes with no poll in its hours: no digest that week, not late that night nor the next day.
    assert remind(home, utc("2027-01-25T05:00:00")) == []  # Monday, 18:00
    assert remind(home, utc("2027-01-25T09:45:00")) == []  # Monday, 22:45 (a Monday in UTC too)
    assert remind(home, utc("2027-01-25T20:00:00")) == []  # Tuesday, 9:00 (still Monday in UTC)
    assert remind(home, utc("2027-01-29T21:00:00")) == []  # Saturday, 10:00
    assert remind(home, utc("2027-01-31T19:00:00")) == [week5]  # Monday 1 Feb, 8:00 (Sunday in UTC)


# --- reminders --------------------------------------------------------------------------------------


def test_no_reminder_of_a_late_step_minutes_after_the_plan_went_out(tmp_path: Path) -> None:
    # Sent Mon 1 Feb 2027, 9:00 in Los Angeles: M1 (Sat 30 Jan) is already late.
    home = sent_home(tmp_path / "home", settings("America/Los_Angeles", reminders_on=True, digest=False),
                     utc("2027-02-01T17:00:00"))
    assert remind(home, utc("2027-02-01T17:10:00")) == []  # ten minutes on
    assert remind(home, utc("2027-02-02T17:00:00")) == []  # a day on
    assert remind(home, utc("2027-02-03T16:59:00")) == []  # a minute short of two days
    (sent,) = remind(home, utc("2027-02-03T17:00:00"))
    with home.open_store() as store:
        entry = store.outbox_entry(sent)
    assert entry is not None and (entry.kind, entry.data["key"]) == ("reminder", "M1|2027-01-30|overdue")


def test_no_reminder_of_a_step_due_soon_the_day_after_the_plan_went_out(tmp_path: Path) -> None:
    # Sent Tue 26 Jan 2027, 9:00 in Los Angeles: M1 (Sat 30 Jan) is 3 days off from Wednesday on.
    home = sent_home(tmp_path / "home", settings("America/Los_Angeles", reminders_on=True, digest=False),
                     utc("2027-01-26T17:00:00"))
    assert remind(home, utc("2027-01-27T17:00:00")) == []  # Wednesday: due in 3 days, but out a day only
    assert remind(home, utc("2027-01-28T16:59:00")) == []
    (sent,) = remind(home, utc("2027-01-28T17:00:00"))  # Thursday, two days on
    with home.open_store() as store:
        entry = store.outbox_entry(sent)
    assert entry is not None and entry.plan_id == PLAN_ID and entry.data["key"] == "M1|2027-01-30|before"
