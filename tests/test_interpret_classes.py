"""Classes of replies real prospects write: numbered steps, inline answers, short answers, receipts and refusals,
day-alone dates, names in any script. Expected values are worked out by hand against the example plan."""

from __future__ import annotations

from datetime import date
from functools import cache

import pytest
from replies_expect import FIXTURES

from pipeline.plan.model import Plan
from pipeline.plan.source import parse_plan
from pipeline.replies.dates import find_dates
from pipeline.replies.extract import Block, Extraction
from pipeline.replies.interpret import Reading, interpret, read_reply
from pipeline.replies.message import Incoming

# The example plan, due dates by hand (T = 2027-03-31): M1 Jan 30, M2 Feb 10, M3 Mar 1, M4 Mar 4, M5 Mar 17,
# M6 Mar 31, M7 Apr 7. The reply is of Tuesday 12 January 2027.
TODAY = date(2027, 1, 12)
M2_LINE = "M2  Technical demo for Acme IT - Northwind - Wed 10 Feb 2027"


@cache
def plan(name: str = "example-plan.md", **swap: str) -> Plan:
    text = (FIXTURES / name).read_text()
    for old, new in swap.items():
        text = text.replace(old.replace("_", " "), new)
    return parse_plan(text, file=name)


@cache
def stock(template: str) -> Plan:
    """A stock template filled in, as `mutualplan new` would."""
    text = (FIXTURES.parent.parent / "templates" / "plans" / template).read_text()
    for key, value in {
        "$seller_company": "Lumen Labs",
        "$seller_name": "Sam Reyes",
        "$seller_email": "sam.reyes@lumen.example",
        "$prospect": "Fabrikam Inc",
        "$target": "2027-06-30",
        "$timezone": "America/New_York",
    }.items():
        text = text.replace(key, value)
    return parse_plan(text, file=template)


def read(text: str, the_plan: Plan | None = None, *, quoted: str | None = None) -> Reading:
    if quoted is None:
        return interpret(text, the_plan or plan(), TODAY)
    extraction = Extraction(text, (Block(text, (quoted,)),), True, ())
    return interpret(extraction, the_plan or plan(), TODAY)


def changes(reading: Reading) -> list[dict]:
    return [c.to_dict() for c in reading.changes]


# --- 1. steps by number -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "milestone", "due"),
    [
        ("Please move #3 to March 8.", "M3", "2027-03-08"),
        ("Please move item 4 to March 8.", "M4", "2027-03-08"),
        ("Step 2 needs to move to Feb 17.", "M2", "2027-02-17"),
        ("Please move the third step to March 8.", "M3", "2027-03-08"),
        ("Can we push the 3rd item back a week?", "M3", "2027-03-08"),
        ("Row 5 should be March 19 instead.", "M5", "2027-03-19"),
        ("Please move the second milestone to Feb 17.", "M2", "2027-02-17"),
    ],
)
def test_a_step_named_by_number(text: str, milestone: str, due: str) -> None:
    assert changes(read(text)) == [{"op": "move", "milestone": milestone, "due": due}]


def test_an_ordinal_past_the_timeline_is_not_guessed() -> None:
    reading = read("Please move the ninth step to March 8.")
    assert reading.changes == () and reading.unresolved


# --- 2. inline answers about the quoted line ------------------------------------------------------


def test_another_week_for_this_one_moves_the_quoted_step() -> None:
    reading = read("We need another week for this one.", quoted=M2_LINE)
    assert changes(reading) == [{"op": "move", "milestone": "M2", "due": "2027-02-17"}]


def test_another_week_for_a_late_step_counts_from_the_reply() -> None:
    text = "We need another week for this one."
    reading = interpret(Extraction(text, (Block(text, (M2_LINE,)),), True, ()), plan(), date(2027, 2, 12))
    assert changes(reading) == [{"op": "move", "milestone": "M2", "due": "2027-02-19"}]  # 12 Feb + 7, not 10 Feb + 7


def test_that_wont_work_make_it_the_20th_takes_the_quoted_month() -> None:
    reading = read("That won't work, make it the 20th.", quoted=M2_LINE)
    assert changes(reading) == [{"op": "move", "milestone": "M2", "due": "2027-02-20"}]


# --- 3. short answers to the plan email -----------------------------------------------------------

PLAN_EMAIL = "<plan.acme-northwind-2027.v1@northwind.example>"
REMINDER = "<plan.acme-northwind-2027.v1.reminder.0a1b2c3d4e5f@northwind.example>"


def reply(body: str, in_reply_to: str | None = PLAN_EMAIL) -> Incoming:
    thread = f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n" if in_reply_to else ""
    raw = (
        "From: Dana Whitfield <dana.whitfield@acme.example>\r\nTo: jordan.lee@northwind.example\r\n"
        "Subject: RE: Mutual Plan: Acme and Northwind Analytics\r\nMessage-ID: <r1@acme.example>\r\n"
        f"Date: Tue, 12 Jan 2027 08:15:00 -0800\r\n{thread}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
    return Incoming.from_bytes(raw.encode(), own_domains=("northwind.example",))


@pytest.mark.parametrize("body", ["Yes", "Yes.", "Perfect, thanks", "Looks good", "Sounds good!", "Great, thank you!"])
def test_a_short_answer_to_the_plan_email_confirms_it(body: str) -> None:
    got = read_reply(reply(f"{body}\r\n\r\nDana\r\n"), plan())
    assert (got.intent, got.confirms) == ("confirm", "all")


@pytest.mark.parametrize(
    "body",
    [
        "Yes",  # to a reminder, not to the plan
        "Perfect, thanks",
        "Sounds good!",  # to a question of the seller's as much as to the plan
        "Yes, sounds good.",
        "Looks good to me.",
        "Sounds good, talk then.",
    ],
)
def test_a_short_answer_to_other_mail_is_no_confirmation(body: str) -> None:
    assert read_reply(reply(body, REMINDER), plan()).intent != "confirm"
    assert read_reply(reply(body, None), plan()).intent != "confirm"


@pytest.mark.parametrize(
    "body",
    [
        "Yes, if legal signs off on the MSA.",
        "Perfect, thanks. Can your team present to our board?",
        "> Can you make Tuesday at 10 for a call?\r\nYes, sounds good.\r\n",
        "> Could Raj join the demo?\r\nYes\r\n",
    ],
)
def test_the_same_words_answering_a_question_or_with_a_condition_are_not(body: str) -> None:
    assert read_reply(reply(body), plan()).intent != "confirm"


# --- 4. never a false confirmation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Confirmed receipt, thanks.",
        "Confirming I got it, will review with the team.",
        "Confirm receipt of the plan.",
        "Received, thanks!",
        "Looks good to me... NOT. We need changes.",
        "Looks good to me. Just kidding, we need to rework the dates.",
        "I confirm the meeting on Tuesday.",
        "Confirmed for our call tomorrow at 10am.",
        "We confirm attendance at the webinar on Feb 3.",
        "Looks good overall, a few comments below.",
        "All good on my end, forwarding to Raj for approval.",
        "Looks good. Will share with the team and get back to you.",
        "Looks good. I'll confirm once Raj has seen it.",
    ],
)
def test_no_false_confirmation(text: str) -> None:
    reading = read(text)
    assert reading.intent != "confirm" and reading.confirms in ((), "")


# --- 5. declines in plain words -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "We've decided to stay with our current provider.",
        "After some thought we are not moving forward.",
        "We're going another direction.",
        "We have decided to go in a different direction.",
        "We'll be staying with our existing vendor for now.",
        "Leadership chose a competitor, so we'll pass.",
        "We won't be going ahead with the purchase.",
        "We have chosen another vendor.",
        "Unfortunately the budget was cut and the project is cancelled.",
    ],
)
def test_a_decline_in_plain_words(text: str) -> None:
    assert read(text).intent == "decline"


@pytest.mark.parametrize(
    "text",
    [
        "The direction looks good.",
        "We'll stay with the pilot dates.",
        "Yes",
        "We need to put this on hold until Q3.",
        "We are not moving forward with the reference call.",
    ],
)
def test_no_decline_where_none_is_said(text: str) -> None:
    assert read(text).intent != "decline"


# --- 6. the answer "Confirmed" against a step named "Confirmed ..." -------------------------------


@pytest.mark.parametrize("template", ["enterprise.md", "smb.md"])
@pytest.mark.parametrize("text", ["Confirmed.", "Confirmed, thanks!", "Agreed.", "Approved - thanks Sam."])
def test_confirmed_as_the_answer_beats_a_step_called_confirmed(template: str, text: str) -> None:
    reading = read(text, stock(template))
    assert (reading.intent, reading.confirms) == ("confirm", "all")


def test_the_step_named_otherwise_is_still_that_step() -> None:
    reading = read("Confirmed VisionMatch is done.", stock("enterprise.md"))
    assert changes(reading) == [{"op": "status", "milestone": "M2", "status": "done"}]


# --- 7. a party named as the subject of a date -----------------------------------------------------


def test_the_seller_named_as_the_one_who_demos() -> None:
    reading = read("Northwind can demo on the 12th of February.")
    assert changes(reading) == [{"op": "move", "milestone": "M2", "due": "2027-02-12"}]


# --- 8. owners asked for as questions, inline owners ----------------------------------------------


def test_can_someone_own_it_instead_of_me() -> None:
    reading = read("Can Raj own the pilot instead of me?")
    assert changes(reading) == [{"op": "reassign", "milestone": "M3", "owner": "Raj Patel"}]


def test_someone_will_own_the_quoted_line() -> None:
    reading = read("Kim will own this one.", quoted=M2_LINE)
    assert changes(reading) == [{"op": "reassign", "milestone": "M2", "owner": "Kim Osei"}]


# --- 9. dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "month", "value"),
    [
        ("the 20th", None, date(2027, 1, 20)),  # after the reply's day
        ("the 10th", None, date(2027, 2, 10)),  # the 10th of January is past
        ("the 12th", None, date(2027, 2, 12)),  # the reply's own day is not "after" it
        ("the 10th", 3, date(2027, 3, 10)),  # a month named nearby
        ("the 31st", 2, None),  # February has none
        ("next Tuesday", None, date(2027, 1, 19)),  # said on a Tuesday: the following week's
        ("next Friday", None, date(2027, 1, 22)),  # said early in the week: the following week's
        ("Friday", None, date(2027, 1, 15)),  # the coming one
        ("Tuesday the 10th", None, None),  # the 10th of February is a Wednesday: which one is meant?
        ("Wednesday the 10th", None, date(2027, 2, 10)),
        ("Monday, March 9", None, None),  # March 9 2027 is a Tuesday
    ],
)
def test_dates(text: str, month: int | None, value: date | None) -> None:
    assert [d.value for d in find_dates(text, TODAY, month=month)] == [value]


def test_next_weekday_said_late_in_the_week() -> None:
    friday = date(2027, 1, 15)
    assert [d.value for d in find_dates("next Tuesday", friday)] == [date(2027, 1, 19)]


def test_a_day_alone_takes_the_month_named_in_the_sentence() -> None:
    reading = read("The pilot in March works, but make it the 10th.")
    assert changes(reading) == [{"op": "move", "milestone": "M3", "due": "2027-03-10"}]


def test_an_ambiguous_date_is_unresolved() -> None:
    reading = read("Please move the demo to Tuesday the 10th.")
    assert reading.changes == () and reading.unresolved == ("Please move the demo to Tuesday the 10th.",)


def test_a_title_prefers_the_step_it_matches_most_exactly() -> None:
    the_plan = stock("enterprise.md")
    text = (FIXTURES.parent.parent / "templates" / "plans" / "enterprise.md").read_text()
    assert "| Reference calls " in text
    reading = read("Please move the pilot to April 20.", the_plan)
    assert changes(reading) == [{"op": "move", "milestone": "M7", "due": "2027-04-20"}]
    other = parse_plan(
        text.replace("Reference calls  ", "Pilot readout    ")
        .replace("$seller_company", "Lumen Labs")
        .replace("$seller_name", "Sam Reyes")
        .replace("$seller_email", "sam@lumen.example")
        .replace("$prospect", "Fabrikam Inc")
        .replace("$target", "2027-06-30")
        .replace("$timezone", "America/New_York"),
        file="x.md",
    )
    assert [m.title for m in other.milestones][6:8] == ["Pilot", "Pilot readout"]
    assert changes(read("Please move the pilot to April 20.", other)) == [
        {"op": "move", "milestone": "M7", "due": "2027-04-20"}
    ]
    assert changes(read("Please move the pilot readout to May 20.", other)) == [
        {"op": "move", "milestone": "M8", "due": "2027-05-20"}
    ]


# --- 10. names across accents and scripts ------------------------------------------------------------


def test_names_across_accents_and_scripts() -> None:
    the_plan = plan(Kim_Osei="Zoë Ångström", Raj_Patel="李雷")
    assert changes(read("Zoe Angstrom will own the pilot.", the_plan)) == [
        {"op": "reassign", "milestone": "M3", "owner": "Zoë Ångström"}
    ]
    assert changes(read("李雷 will own the pilot.", the_plan)) == [
        {"op": "reassign", "milestone": "M3", "owner": "李雷"}
    ]
    assert changes(read("Can 李雷 own the legal review?", the_plan)) == [
        {"op": "reassign", "milestone": "M5", "owner": "李雷"}
    ]


def test_a_confirmation_that_promises_news_later_still_confirms() -> None:
    assert read("Confirmed. I'll let you know if anything changes on our side.").intent == "confirm"


def test_a_confirmation_naming_a_date_of_the_plan_still_confirms() -> None:
    assert read("All dates confirmed through March 31.").intent == "confirm"


# --- inline answers of one word, and every request of a sentence -----------------------------------


def test_done_alone_under_a_quoted_step_marks_it_done() -> None:
    assert changes(read("Done.", quoted="M1  Discovery workshop - Joint - Sat 30 Jan 2027")) == [
        {"op": "status", "milestone": "M1", "status": "done"}
    ]


def test_the_second_one() -> None:
    assert changes(read("The second one should be Feb 17.")) == [{"op": "move", "milestone": "M2", "due": "2027-02-17"}]


def test_a_sentence_with_a_request_that_maps_to_nothing_goes_whole() -> None:
    text = "Move the pilot to March 8 and make it a two-day session."
    reading = read(text)
    assert reading.changes == () and reading.unresolved == (text,)


# --- 8. rename ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "milestone", "title"),
    [
        ("Can we call the pilot 'Pilot on Q4 and Q1 data' instead?", "M3", "Pilot on Q4 and Q1 data"),
        ("Please rename M5 to “Legal and security review of the MSA”.", "M5", "Legal and security review of the MSA"),
        ('The reference call should be called "Customer reference call (retail)".', "M4",
         "Customer reference call (retail)"),
        ("Could you rename the workshop to Discovery and scoping workshop?", "M1", "Discovery and scoping workshop"),
    ],
)
def test_a_step_renamed(text: str, milestone: str, title: str) -> None:
    assert changes(read(text)) == [{"op": "rename", "milestone": milestone, "title": title}]


@pytest.mark.parametrize(
    "text",
    [
        "Can we call the pilot team tomorrow?",  # a phone call, no new title
        "Can we call it 'Pilot v2'?",  # "it" names nothing here
        "Please rename the pilot to 'Pilot on Q4 data'.",  # the title it has already
    ],
)
def test_no_rename_where_none_is_clear(text: str) -> None:
    assert not any(c.op == "rename" for c in read(text).changes)


def test_a_rename_is_applied_to_the_plan() -> None:
    from pipeline.plan.changes import apply
    from pipeline.plan.model import Change

    renamed = apply(plan(), [Change(op="rename", milestone="M3", title="Pilot on Q4 and Q1 data")], today=TODAY)
    assert renamed.milestone("M3").title == "Pilot on Q4 and Q1 data"
    assert Change.from_dict({"op": "rename", "milestone": "M3", "title": "X"}).title == "X"


def test_parties_named_without_their_accents() -> None:
    the_plan = plan(
        Raj_Patel="Zoë Ångström", Acme_Corp="Société Générale Corp", **{"Acme (": "Société (", "Acme IT": "SG IT"}
    )
    retarget = [{"op": "retarget", "target": "2027-04-30"}]
    assert changes(read("Zoe will sign on April 30.", the_plan)) == retarget
    assert changes(read("Zoe Angstrom will sign on April 30.", the_plan)) == retarget
    assert changes(read("Societe Generale will sign on April 30.", the_plan)) == retarget
    assert read("Societe Generale can confirm the plan.", the_plan).intent == "confirm"
    assert changes(read("Societe will own the reference call.", the_plan)) == [
        {"op": "reassign", "milestone": "M4", "owner": "buyer"}
    ]


def test_thanks_before_a_refusal_is_no_closing() -> None:
    assert read("Thanks but we went with a competitor.").intent == "decline"


def test_the_rest_still_being_checked_is_not_agreed() -> None:
    reading = read("Confirmed on the pilot dates, still checking the rest.")
    assert (reading.intent, reading.confirms) == ("comment", ("M3",))


def test_a_weekday_and_a_day_alone_that_agree() -> None:
    assert [d.value for d in find_dates("Tuesday the 16th", TODAY)] == [date(2027, 2, 16)]


def test_have_someone_own_it() -> None:
    reading = read("I'd rather have Raj own it.", quoted="M3  Pilot on Q4 data - Acme (Dana) - Mon 1 Mar 2027")
    assert changes(reading) == [{"op": "reassign", "milestone": "M3", "owner": "Raj Patel"}]
