"""Reminders and the weekly digest on a Maildir home with a simulated clock: when they go and to whom, the weekly
cap, the switches, answers to a reminder ("done", "we need another week"), the seller's `done`, and the digest.

The example plan (Acme and Northwind, Los Angeles): M1 Joint, Sat 30 Jan 2027; M2 Northwind, Wed 10 Feb; M3 Acme
(Dana), Mon 1 Mar; M4 M3+3d, Thu 4 Mar; M5 Acme (Kim Osei), Wed 17 Mar; M6 Acme (Raj Patel), T = Wed 31 Mar.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.demo import SimulatedClock as Clock
from pipeline.home import Home, init_home
from pipeline.loop import policy, reminders
from pipeline.loop.service import PollReport, Service, queue_plan
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.plan.model import Plan
from pipeline.plan.source import parse_plan
from pipeline.plan.timeline import resolve
from pipeline.render.templates import default_templates as templates_dir
from pipeline.replies.message import Incoming
from pipeline.replies.reminder_answer import read_reminder_answer

PLAN_ID = "acme-northwind-2027"
SELLER = "jordan.lee@northwind.example"
DANA, RAJ, KIM = "dana.whitfield@acme.example", "raj.patel@acme.example", "kim.osei@acme.example"
V1 = f"<plan.{PLAN_ID}.v1@northwind.example>"
SUBJECT = "Mutual Plan: Acme Corp and Northwind Analytics (version 1)"
START = datetime(2027, 1, 11, 17, 2, tzinfo=UTC)  # Mon 11 Jan 2027, 9:02 in Los Angeles


def at(day: str, hour_utc: float = 17) -> datetime:
    """A time on a 2027 day (MM-DD), in UTC; 17:00 UTC is 9:00 in Los Angeles in winter."""
    return datetime.fromisoformat(f"2027-{day}T00:00:00+00:00") + timedelta(hours=hour_utc)


def reminder_id(key: str, version: int = 1) -> str:
    # The scheme, written out: <plan.<id>.v<N>.reminder.<first 12 hex of SHA-256 of the key>@<seller's domain>>.
    return f"<plan.{PLAN_ID}.v{version}.reminder.{hashlib.sha256(key.encode()).hexdigest()[:12]}@northwind.example>"


def example() -> Plan:
    return parse_plan((templates_dir() / "plans" / "example.md").read_text(encoding="utf-8"), file="example.md")


def settings_toml(reminders_section: str = "digest = false", changes: str = "review") -> str:
    return f"""\
[seller]
company = "Northwind Analytics"
name = "Jordan Lee"
title = "Account Executive"
email = "{SELLER}"
timezone = "America/Los_Angeles"

[policy]
changes = "{changes}"
trusted_authserv_ids = ["mx.northwind.example"]  # the seller's server, which stamps each answer (answer() below)

[reminders]
{reminders_section}

[letter]
letterhead = "northwind"
"""


@pytest.fixture
def home(tmp_path: Path) -> Home:
    home = init_home(tmp_path / "home")
    home.settings_path.write_text(settings_toml(), encoding="utf-8")
    return home


@contextmanager
def loop(home: Home, clock: Clock) -> Iterator[Service]:
    with Service.open(home, clock) as watcher:
        yield watcher


def start(home: Home, clock: Clock, *, send: bool = True) -> None:
    """Version 1 of the example stored and (with `send`) sent on Mon 11 Jan 2027."""
    with loop(home, clock) as watcher:
        plan = example()
        watcher.store.add_version(plan, author=SELLER, reason="created", created=clock())
        if send:
            queue_plan(watcher.store, plan.id, at=clock())
            watcher.flush()


def remind(home: Home, clock: Clock, when: datetime) -> PollReport:
    clock.now = when
    report = PollReport()
    with loop(home, clock) as watcher:
        watcher.remind(report)
    assert report.errors == []
    return report


def sent_mail(home: Home) -> dict[str, EmailMessage]:
    out = {}
    for path in sorted((home.root / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out[msg["Message-ID"]] = msg
    return out


def addresses(msg: EmailMessage, header: str) -> list[str]:
    return [a.addr_spec for a in msg[header].addresses] if msg[header] else []


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


def answer(sender: tuple[str, str], body: str, *, message_id: str, when: datetime, in_reply_to: str,
           subject: str = SUBJECT) -> bytes:
    """A plain-text answer, quoting nothing (top-posted, as a phone writes it)."""
    msg = EmailMessage()
    msg["Authentication-Results"] = f"mx.northwind.example; dmarc=pass header.from={sender[1].rpartition('@')[2]}"
    msg["From"] = f"{sender[0]} <{sender[1]}>"
    msg["To"] = SELLER
    msg["Subject"] = f"RE: {subject}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = in_reply_to
    msg["References"] = f"{V1} {in_reply_to}" if in_reply_to != V1 else V1
    msg.set_content(body)
    return bytes(msg)


def cli(home: Home, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--home", str(home.root), *args])
    return result.exit_code, result.output


# --- who and when, pure ---------------------------------------------------------------------------


def test_a_steps_owner_is_who_hears_of_it() -> None:
    plan = example()
    owners = {m.id: reminders.recipients(plan, m) for m in plan.milestones}
    assert owners == {
        "M1": (DANA, RAJ),  # Joint: the prospect's confirming contacts
        "M2": (SELLER,),  # Northwind: the seller
        "M3": (DANA,),  # Acme (Dana): the contact by first name
        "M4": (SELLER,),
        "M5": (KIM,),  # Acme (Kim Osei)
        "M6": (RAJ,),
        "M7": (DANA, RAJ),
    }


def test_what_is_owed_is_the_late_first_then_the_soonest_each_once() -> None:
    plan = example()
    # Fri 5 Mar 2027: M1, M2, M3 and M4 are late; M5 (17 Mar) is 12 days off, beyond 3 days before.
    owed = reminders.owed(plan, date(2027, 3, 5), 3, set())
    assert [(d.milestone.id, d.when, d.days) for d in owed] == [
        ("M1", "overdue", -34), ("M2", "overdue", -23), ("M3", "overdue", -4), ("M4", "overdue", -1)]
    assert reminders.owed(plan, date(2027, 3, 5), 3, {"M1|2027-01-30|overdue", "M3|2027-03-01|overdue"})[0].key == \
        "M2|2027-02-10|overdue"
    # Sun 14 Mar: M5 is 3 days off; the earlier steps' reminders went already.
    done_already = {f"{m}|{d}|overdue" for m, d in (("M1", "2027-01-30"), ("M2", "2027-02-10"), ("M3", "2027-03-01"),
                                                   ("M4", "2027-03-04"))}
    assert [(d.key, d.to) for d in reminders.owed(plan, date(2027, 3, 14), 3, done_already)] == [
        ("M5|2027-03-17|before", (KIM,))]


def test_a_late_step_moves_the_target_only_when_its_chain_passes_it() -> None:
    plan = example()
    # On 29 Mar the pilot (M3, due 1 Mar) is 28 days late; the reference call M3+3d moves from 4 Mar to 1 Apr,
    # after the target of 31 Mar.
    assert reminders.target_slip(plan, "M3", date(2027, 3, 29)) == date(2027, 4, 1)
    assert reminders.target_slip(plan, "M3", date(2027, 3, 2)) is None  # M4 to 5 Mar: well before the target
    assert reminders.target_slip(plan, "M5", date(2027, 3, 29)) is None  # nothing hangs on legal's date
    assert reminders.target_slip(plan, "M6", date(2027, 4, 2)) == date(2027, 4, 2)  # the signature itself is late
    assert reminders.target_slip(plan, "M3", date(2027, 2, 1)) is None  # not late at all


# --- answers to a reminder, read against the example (the answer written Thu 25 Feb 2027) ------------------


@pytest.mark.parametrize("body, intent, changes", [
    ("Done.\n\nDana", "amend", [{"op": "status", "milestone": "M3", "status": "done"}]),
    ("Done - thanks!", "amend", [{"op": "status", "milestone": "M3", "status": "done"}]),
    ("The pilot is finished.", "amend", [{"op": "status", "milestone": "M3", "status": "done"}]),
    ("Done.\n\nOn Wed, Jordan wrote:\n> M3  Pilot on Q4 data - Acme (Dana) - Mon 1 Mar 2027", "amend",
     [{"op": "status", "milestone": "M3", "status": "done"}]),
    ("We need another week.", "amend", [{"op": "move", "milestone": "M3", "due": "2027-03-08"}]),  # 1 Mar + 7
    ("We need two more weeks.", "amend", [{"op": "move", "milestone": "M3", "due": "2027-03-15"}]),
    ("Sorry, 3 more days.", "amend", [{"op": "move", "milestone": "M3", "due": "2027-03-04"}]),
    ("Can we do March 8?", "amend", [{"op": "move", "milestone": "M3", "due": "2027-03-08"}]),
    ("Please remove M4.", "amend", [{"op": "remove", "milestone": "M4"}]),  # named: read as any reply
    # Never read into the reminder's step: a negation, a removal or a new owner said of "it" alone.
    ("Not done yet.", "comment", []),
    ("We do not need another week.", "comment", []),
    ("We don't need this step any more.", "comment", []),
    ("Kim will own it.", "comment", []),
])
def test_an_answer_to_a_reminder_is_about_its_step(body: str, intent: str, changes: list[dict]) -> None:
    msg = EmailMessage()
    msg["From"] = f"Dana Whitfield <{DANA}>"
    msg["To"] = SELLER
    msg["Subject"] = "RE: Reminder"
    msg["Message-ID"] = "<a1@acme.example>"
    msg["Date"] = "Thu, 25 Feb 2027 10:00:00 -0800"
    msg.set_content(body)
    incoming = Incoming.from_bytes(bytes(msg))
    reading = read_reminder_answer(incoming, example(), "M3", received=at("02-25", 18))
    assert (reading.intent, [c.to_dict() for c in reading.changes]) == (intent, changes)
    if intent == "comment" and body != "Not done yet.":
        assert reading.unresolved  # the seller hears of it


def test_we_need_another_week_for_a_late_step_counts_from_the_answer() -> None:
    msg = EmailMessage()
    msg["From"] = f"Dana Whitfield <{DANA}>"
    msg["Message-ID"] = "<a2@acme.example>"
    msg["Date"] = "Fri, 5 Mar 2027 10:00:00 -0800"
    msg.set_content("We need another week.")
    reading = read_reminder_answer(Incoming.from_bytes(bytes(msg)), example(), "M3",
                                             received=at("03-05", 18))
    assert [c.to_dict() for c in reading.changes] == [{"op": "move", "milestone": "M3", "due": "2027-03-12"}]


# --- the loop -------------------------------------------------------------------------------------


def test_a_reminder_goes_days_before_a_due_date_then_when_late_and_once_a_week_per_plan(home: Home) -> None:
    clock = Clock()
    start(home, clock)
    assert remind(home, clock, at("01-26")).sent == []  # M1 is 4 days off
    first = reminder_id("M1|2027-01-30|before")
    assert remind(home, clock, at("01-27")).sent == [first]
    assert remind(home, clock, at("01-27", 20)).sent == []
    message = sent_mail(home)[first]
    # In the plan's thread under its one subject; the first line of the body says what is due.
    assert message["Subject"] == "Re: Mutual Plan: Acme and Northwind Analytics"
    assert addresses(message, "From") == [SELLER]
    assert addresses(message, "To") == [DANA, RAJ] and message["Cc"] is None
    assert message["In-Reply-To"] == V1 and message["References"] == V1
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Mutual-Plan"] == f"{PLAN_ID}; version=1"
    body = text_of(message)
    assert body.startswith("Hi Dana, Raj,\n\nA friendly reminder from our Mutual Plan: this step is due in 3 days, "
                           "on 30\nJanuary 2027.")
    assert "\nM1  Discovery workshop - Joint - Sat 30 Jan 2027\n" in body
    assert 'reply "done"' in body and '"we need another week"' in body
    assert not list(message.iter_attachments())

    # Seven days on, to the minute, the plan has had its reminder for the week; a minute later M1 is late.
    assert remind(home, clock, at("02-03")).sent == []
    late = reminder_id("M1|2027-01-30|overdue")
    assert remind(home, clock, at("02-03", 17.02)).sent == [late]
    assert "this step was due on 30 January 2027, 4 days ago." in text_of(sent_mail(home)[late]).replace("\n", " ")
    assert sent_mail(home)[late]["Subject"] == "Re: Mutual Plan: Acme and Northwind Analytics"
    # M2 (the seller's demo, due 10 Feb) waits for the week to pass, then is reminded on its day, and once late
    # a week on; M1 had both of its reminders and is not reminded again.
    assert remind(home, clock, at("02-10")).sent == []
    assert remind(home, clock, at("02-10", 18)).sent == [reminder_id("M2|2027-02-10|before")]
    assert addresses(sent_mail(home)[reminder_id("M2|2027-02-10|before")], "To") == [SELLER]
    assert text_of(sent_mail(home)[reminder_id("M2|2027-02-10|before")]).startswith(
        "Hi Jordan,\n\nA friendly reminder from our Mutual Plan: this step is due today.")
    assert remind(home, clock, at("02-17", 18)).sent == []  # a week after the last, to the minute
    assert remind(home, clock, at("02-17", 19)).sent == [reminder_id("M2|2027-02-10|overdue")]


def test_reminders_wait_for_working_hours_on_weekdays(home: Home) -> None:
    clock = Clock()
    start(home, clock)
    assert remind(home, clock, at("01-27", 15.99)).sent == []  # 7:59 in Los Angeles
    assert remind(home, clock, at("01-28", 2)).sent == []  # 18:00 the evening before
    assert remind(home, clock, at("01-30")).sent == []  # Saturday, the day M1 is due
    assert remind(home, clock, at("01-31")).sent == []  # Sunday
    assert remind(home, clock, at("02-01", 16)).sent == [reminder_id("M1|2027-01-30|overdue")]  # Monday, 8:00


def test_no_reminder_for_a_done_step_a_plan_switched_off_declined_or_never_sent(home: Home, tmp_path: Path) -> None:
    clock = Clock()
    start(home, clock)
    code, output = cli(home, "reminders", PLAN_ID, "--off")
    assert code == 0 and "off for this plan" in output
    assert remind(home, clock, at("01-27")).sent == []
    code, output = cli(home, "reminders", PLAN_ID, "--on", "--json")
    assert code == 0 and json.loads(output)["enabled"] is True
    with loop(home, clock) as watcher:
        audit = [e.detail for e in watcher.store.audit_log(PLAN_ID) if e.event == "option set"]
        assert audit == [{"name": "reminders", "from": None, "to": "off"}, {"name": "reminders", "from": "off",
                                                                             "to": "on"}]
    # The seller marks M1 done: nothing is owed until M2 is 3 days off.
    code, output = cli(home, "done", PLAN_ID, "M1", "--json")
    assert code == 0, output
    assert json.loads(output) == {"plan_id": PLAN_ID, "milestone": "M1", "title": "Discovery workshop",
                                  "version": 2, "sent": [], "errors": []}
    assert remind(home, clock, at("01-27")).sent == []
    assert remind(home, clock, at("02-08")).sent == [reminder_id("M2|2027-02-10|before", version=2)]

    # Switched off in the settings: no plan gets one.
    home.settings_path.write_text(settings_toml("enabled = false\ndigest = false"), encoding="utf-8")
    assert remind(home, clock, at("02-17")).sent == []
    home.settings_path.write_text(settings_toml(), encoding="utf-8")
    with loop(home, clock) as watcher:
        watcher.store.set_plan_state(PLAN_ID, "declined", at=clock())
    assert remind(home, clock, at("02-17")).sent == []

    # A plan stored but never sent: the prospect has nothing to be reminded of.
    other = init_home(tmp_path / "other")
    other.settings_path.write_text(settings_toml(), encoding="utf-8")
    fresh = Clock()
    start(other, fresh, send=False)
    assert remind(other, fresh, at("01-27")).sent == []


def test_done_under_a_reminder_marks_its_step_done(home: Home) -> None:
    clock = Clock()
    start(home, clock)
    first = reminder_id("M1|2027-01-30|before")
    remind(home, clock, at("01-27"))
    clock.now = at("01-28", 18)
    MaildirMailbox(home.mail_dir).deliver(answer(("Dana Whitfield", DANA), "Done - thanks!\n\nDana\n",
                                                 message_id="<d1@acme.example>", when=clock(), in_reply_to=first))
    with loop(home, clock) as watcher:
        report = watcher.poll()
        assert [d for _, d, _ in report.handled] == [policy.APPLIED]
        v2 = watcher.store.current(PLAN_ID)
        assert (v2.number, v2.author) == (2, DANA)
        assert [c.to_dict() for c in v2.changes] == [{"op": "status", "milestone": "M1", "status": "done"}]
        assert [m.status for m in v2.plan.milestones] == ["done"] + ["proposed"] * 6
    # The same word under the plan email itself names no step: it changes nothing.
    clock.now = at("01-28", 19)
    MaildirMailbox(home.mail_dir).deliver(answer(("Raj Patel", RAJ), "Done.", message_id="<r1@acme.example>",
                                                 when=clock(), in_reply_to=V1))
    with loop(home, clock) as watcher:
        assert [d for _, d, _ in watcher.poll().handled] == [policy.NOTED]
        assert watcher.store.current(PLAN_ID).number == 2


def test_another_week_under_a_reminder_moves_its_step_a_week(home: Home) -> None:
    clock = Clock()
    start(home, clock)
    assert cli(home, "done", PLAN_ID, "M1")[0] == 0
    before = reminder_id("M2|2027-02-10|before", version=2)
    assert remind(home, clock, at("02-08")).sent == [before]
    clock.now = at("02-09", 18)
    MaildirMailbox(home.mail_dir).deliver(answer(
        ("Jordan's colleague", "sam.ortiz@northwind.example"), "x", message_id="<noise@northwind.example>",
        when=clock(), in_reply_to=before))  # someone outside the plan: held, not read
    MaildirMailbox(home.mail_dir).deliver(answer(("Dana Whitfield", DANA), "Sorry - we need another week for this.",
                                                 message_id="<d2@acme.example>", when=clock(), in_reply_to=before))
    with loop(home, clock) as watcher:
        report = watcher.poll()
        assert sorted(d for _, d, _ in report.handled) == [policy.APPLIED, policy.HELD]
        v3 = watcher.store.current(PLAN_ID)
        assert [c.to_dict() for c in v3.changes] == [{"op": "move", "milestone": "M2", "due": "2027-02-17"}]
        assert resolve(v3.plan)["M2"] == date(2027, 2, 17)  # 10 Feb + 7 days
    # The moved date is a new key: M2 is reminded again before 17 Feb, once the week since 8 Feb has passed.
    assert remind(home, clock, at("02-15")).sent == []
    assert remind(home, clock, at("02-15", 18)).sent == [reminder_id("M2|2027-02-17|before", version=3)]


def test_the_weekly_digest_tells_the_seller_what_waits_and_what_is_late(home: Home) -> None:
    home.settings_path.write_text(settings_toml('enabled = false\ndigest = true\ndigest_day = "monday"'),
                                  encoding="utf-8")
    clock = Clock()
    start(home, clock)
    inbox = MaildirMailbox(home.mail_dir)
    clock.now = at("01-12")
    inbox.deliver(answer(("Dana Whitfield", DANA), "Confirmed.", message_id="<c1@acme.example>", when=clock(),
                         in_reply_to=V1))
    clock.now = at("02-05")
    inbox.deliver(answer(("Pat Nobody", "pat@elsewhere.example"), "Can I join the pilot?",
                         message_id="<x1@elsewhere.example>", when=clock(), in_reply_to=V1))
    with loop(home, clock) as watcher:
        watcher.poll()
    assert remind(home, clock, at("02-08", 15.99)).sent == []  # Monday, 7:59 in Los Angeles
    report = remind(home, clock, at("02-08", 16))
    assert len(report.sent) == 1
    digest = sent_mail(home)[report.sent[0]]
    assert addresses(digest, "To") == [SELLER] and addresses(digest, "From") == [SELLER]
    assert digest["Subject"] == "Mutual Plans, week 2027-W06: 1 waiting on the prospect, 1 overdue, 1 held"
    assert digest["Auto-Submitted"] == "auto-generated"
    body = text_of(digest).replace("\n  ", " ")
    assert "Acme Corp (acme-northwind-2027), version 1, sent Mon 11 Jan 2027 (28 days): waiting on Raj Patel" in body
    assert "Acme Corp M1 Discovery workshop - Joint - due Sat 30 Jan 2027 (9 days late)" in body
    assert "pat@elsewhere.example (2027-02-05)" in body
    assert "Slips that move the target" not in body
    # Once a week: not again on Tuesday; again the next Monday.
    assert remind(home, clock, at("02-09")).sent == []
    assert len(remind(home, clock, at("02-15", 16)).sent) == 1


def test_the_digest_names_a_slip_that_moves_the_target(home: Home) -> None:
    clock = Clock()
    start(home, clock)
    with loop(home, clock) as watcher:
        sections = reminders.digest(watcher.store, at("03-29"), "America/Los_Angeles")
    assert sections["slips"] == [{
        "plan_id": PLAN_ID, "prospect": "Acme Corp", "id": "M3", "title": "Pilot on Q4 data",
        "why": "due Mon 1 Mar 2027, still open", "target": "Wed 31 Mar 2027", "new_target": "Thu 1 Apr 2027",
        "days": 1,
    }]
    assert [o["id"] for o in sections["overdue"]] == ["M1", "M2", "M3", "M4", "M5"]
    assert sections["waiting"][0]["waiting_on"] == ["Dana Whitfield", "Raj Patel"]


def test_a_quiet_week_sends_no_digest(home: Home) -> None:
    home.settings_path.write_text(settings_toml("digest = true"), encoding="utf-8")
    clock = Clock()
    assert remind(home, clock, at("01-18", 16)).sent == []  # no plans at all


def test_done_from_the_command_line(home: Home) -> None:
    clock = Clock()
    start(home, clock)
    code, output = cli(home, "done", PLAN_ID, "M9")
    assert code == 2 and "there is no milestone 'M9'" in output
    code, output = cli(home, "done", PLAN_ID, "3", "--send", "--json")
    assert code == 0, output
    data = json.loads(output)
    assert (data["milestone"], data["title"], data["version"]) == ("M3", "Pilot on Q4 data", 2)
    assert data["sent"] == [f"<plan.{PLAN_ID}.v2@northwind.example>"]
    letter = sent_mail(home)[data["sent"][0]]
    assert addresses(letter, "To") == [DANA, RAJ] and "M3  Pilot on Q4 data" in text_of(letter)
    code, output = cli(home, "done", PLAN_ID, "M3")
    assert code == 2 and "done already in version 2" in output
    with loop(home, clock) as watcher:
        v2 = watcher.store.current(PLAN_ID)
        assert (v2.author, v2.reason) == (SELLER, "seller marked done")
    code, output = cli(home, "reminders", PLAN_ID, "--json")
    assert code == 0 and json.loads(output)["plan"] == "on"


def test_watch_sends_reminders_after_each_poll(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[PollReport] = []
    monkeypatch.setattr(Service, "remind", lambda self, report: calls.append(report))
    code, output = cli(home, "watch", "--once", "--json")
    assert code == 0, output
    assert len(calls) == 1 and calls[0].fetched == 0
