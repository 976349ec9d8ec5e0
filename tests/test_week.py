"""A seller's real week, step by step, on the embedded Maildir and on IMAP (Dovecot and Postfix).

Priya Nair of Lumen Metrics runs three plans at once from one home, Monday 1 to Friday 5 February 2027, through the
API the commands use (`Service`): Bluefin Logistics (two requests before she reviews, agreement, progress, a date
changed after agreement), Bluefin Foods (a question, a stranger, a decline and a reopen) and Kestrel Health (an
out-of-office, the seller's own edit from a file, a reminder answered "Done.", a confirmation given on a call).

Each step is a function below, in the order of the week, with what it expects. After every step the whole home is
checked against everything expected so far: each plan's status (state, summary, who it waits on, held messages),
its history (every version and why), the seller's Drafts, Sent (Message-IDs and subjects: one subject per plan
thread, no version in it) and Held folders, what became of every message that arrived, and the archive (a letter
kept for every version that was drafted or sent, the very PDF the email carried).

A test per step: `-k` on one step runs the week up to it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.home import init_home
from pipeline.replies.interpret import read_reply
from pipeline.replies.message import Incoming
from tests.loop_support import addresses, attachments, pdf_text, text_body
from tests.week_support import (
    AISHA,
    CHICAGO,
    DANIEL,
    DOMAIN,
    FOODS,
    GRACE,
    KESTREL,
    LENA,
    LOGISTICS,
    LONDON,
    MAYA,
    NEW_YORK,
    NORA,
    OLIVER,
    PLANS,
    PRIYA_SHAH,
    RACHEL,
    RECIPIENTS,
    SELLER,
    SUBJECTS,
    TOM,
    ImapBackend,
    MaildirBackend,
    Step,
    Week,
    agreed_id,
    apple_id,
    digest_id,
    gmail_id,
    gmail_plain,
    in_drafts,
    iphone,
    new_email,
    not_sent,
    notice_id,
    notice_subject,
    out_of_office,
    outlook_html,
    outlook_id,
    progress,
    reminder_id,
    reopened,
    version_id,
    waiting_on,
)

STEPS: list[Step] = []  # the week, in the order the steps are written below


def step(when: str, title: str) -> Callable[[Callable[[Week], None]], Callable[[Week], None]]:
    """Register a step of the week, in the order they are written."""

    def register(run: Callable[[Week], None]) -> Callable[[Week], None]:
        STEPS.append(Step(when, title, run))
        return run

    return register


# --- Monday ---------------------------------------------------------------------------------------------


@step("Mon 08:30", "The seller adds the three plans from her files; adding one again changes nothing")
def the_seller_adds_three_plans(week: Week) -> None:
    with week.service() as service:
        ids = []
        for plan_id, text in PLANS.items():
            # The files have no id: it comes from the prospect's words, so the two Bluefins get one each.
            added = service.add_source(text, file=f"{plan_id.split('-lumen')[0]}.md")
            assert added.version is not None and added.version.number == 1
            ids.append(added.version.plan_id)
        again = service.add_source(PLANS[FOODS], file="bluefin-foods.md")
        assert again.version is None and again.previous is not None and again.previous.plan_id == FOODS
    assert ids == [LOGISTICS, FOODS, KESTREL]
    for plan_id in PLANS:
        week.expect(plan_id, version=("created", SELLER), summary=not_sent(plan_id, 1))


def _send_version_one(week: Week, plan_id: str, to: list[str], cc: list[str], waiting: list[str]) -> None:
    with week.service() as service:
        entry, report = service.send_plan(plan_id)
    assert entry.message_id == version_id(plan_id, 1) and report.sent == [entry.message_id]
    week.expect_sent(version_id(plan_id, 1), SUBJECTS[plan_id])
    week.expect(plan_id, summary=waiting_on(*waiting), waiting=waiting)
    msg = week.message(version_id(plan_id, 1))
    assert (addresses(msg, "To"), addresses(msg, "Cc")) == (to, cc)  # who confirms in To, the others in Cc
    assert sorted(attachments(msg)) == [f"Mutual Plan {plan_id} v1.ics", f"Mutual Plan {plan_id} v1.pdf"]


@step("Mon 09:00", "The seller sends Bluefin Logistics version 1")
def the_seller_sends_bluefin_logistics(week: Week) -> None:
    _send_version_one(week, LOGISTICS, [MAYA, TOM], [LENA], [MAYA, TOM])


@step("Mon 09:05", "The seller sends Bluefin Foods version 1")
def the_seller_sends_bluefin_foods(week: Week) -> None:
    _send_version_one(week, FOODS, [AISHA, OLIVER], [PRIYA_SHAH], [AISHA, OLIVER])


@step("Mon 09:10", "The seller sends Kestrel Health version 1")
def the_seller_sends_kestrel(week: Week) -> None:
    _send_version_one(week, KESTREL, [GRACE], [DANIEL, NORA], [GRACE])
    letter = pdf_text(attachments(week.message(version_id(KESTREL, 1)))[f"Mutual Plan {KESTREL} v1.pdf"][1])
    assert "Kestrel Health" in letter and "Fri 5 Feb 2027" in letter


# --- Tuesday --------------------------------------------------------------------------------------------

GRACE_AWAY = outlook_id("grace-ooo")
MAYA_PILOT = outlook_id("maya-pilot")
TOM_LEGAL = gmail_id("tom-legal")
AISHA_QUESTION = apple_id("aisha-question", "bluefin-foods.example")
EDITED_ASK = "Tom, could we walk your finance team through the business case before the pilot?"


@step("Tue 08:10", "Grace's out-of-office answers Kestrel's plan: recorded, never answered")
def grace_is_out_of_office(week: Week) -> None:
    report = week.receive(out_of_office(
        GRACE, "I am out of the office until Thursday 4 February with limited access to email. For anything "
        "urgent please contact Daniel Okafor.", week.message(version_id(KESTREL, 1)), when=week.clock(),
        message_id=GRACE_AWAY))
    assert report.sent == [] and report.drafted == []
    week.outcomes[GRACE_AWAY] = "ignored"


@step("Tue 09:20", "Maya (Outlook, HTML) asks for a later pilot: version 2 waits in Drafts")
def maya_asks_for_a_later_pilot(week: Week) -> None:
    report = week.receive(outlook_html(MAYA, [
        "Hi Priya,",
        "Thanks, this matches what we discussed. One change: could we move the pilot to March 23? Our data team "
        "is tied up with the quarter-end close until then.",
        "Best,", "Maya",
    ], week.message(version_id(LOGISTICS, 1)), when=week.clock(), message_id=MAYA_PILOT, zone=CHICAGO))
    assert report.drafted == [version_id(LOGISTICS, 2)] and report.sent == []
    week.outcomes[MAYA_PILOT] = "applied"
    week.drafts = [version_id(LOGISTICS, 2)]
    week.expect(LOGISTICS, version=("reply", MAYA), summary=in_drafts(2), waiting=[])


@step("Tue 10:05", "Tom (Gmail, plain) asks for a later legal review before the seller looked: version 3 replaces "
      "version 2 in Drafts")
def tom_asks_for_a_later_legal_review(week: Week) -> None:
    report = week.receive(gmail_plain(
        TOM, "Priya,\n\nPlease move the legal review to April 21; Lena is away until then.\n\nTom\n--\nTom Reyes | "
        "CFO | Bluefin Logistics\n+1 218 555 0142", week.message(version_id(LOGISTICS, 1)), when=week.clock(),
        message_id=TOM_LEGAL, zone=CHICAGO))
    assert report.withdrawn == [version_id(LOGISTICS, 2)] and report.drafted == [version_id(LOGISTICS, 3)]
    week.outcomes[TOM_LEGAL] = "applied"
    week.drafts = [version_id(LOGISTICS, 3)]
    week.expect(LOGISTICS, version=("reply", TOM), summary=in_drafts(3))


@step("Tue 10:30", "Aisha asks two questions about Bluefin Foods in a new email (the subject alone names the plan): "
      "the seller is told, nothing changes")
def aisha_asks_questions(week: Week) -> None:
    report = week.receive(new_email(
        AISHA, "Hi Priya,\n\nWho from Lumen will run the data workshop? And will it be on site in Grimsby?\n\n"
        "Aisha\n\nSent from my iPhone", subject=f"RE: {SUBJECTS[FOODS]}", when=week.clock(),
        message_id=AISHA_QUESTION))
    notice = notice_id(FOODS, 1, AISHA_QUESTION)
    assert report.sent == [notice]
    week.outcomes[AISHA_QUESTION] = "noted"
    week.expect_sent(notice, notice_subject(FOODS, f"Aisha Khan ({AISHA})"))
    body = " ".join(text_body(week.message(notice)).split())
    assert "asked 2 questions" in body and "Who from Lumen will run the data workshop?" in body


@step("Tue 11:00", "The seller previews Bluefin Logistics' follow-up and rewrites the suggested ask")
def the_seller_previews_and_edits_the_ask(week: Week) -> None:
    with week.service() as service:
        (draft,) = service.preview(LOGISTICS)
        assert (draft.message_id, draft.kind, draft.state) == (version_id(LOGISTICS, 3), "update", "drafted")
        assert (list(draft.to), list(draft.cc)) == ([TOM, MAYA], [LENA])
        assert draft.subject == f"Re: {SUBJECTS[LOGISTICS]}"
        assert draft.asks == ("Tom, could we get 30 minutes with you before the new date?",)
        text = " ".join(draft.text.split())
        # Told against version 1, the last one the prospect has: both requests, and version 2 never mentioned.
        assert "since version 1" in text and "version 2" not in text
        assert "Pilot on January shipments, from Tue 16 Mar 2027 to Tue 23 Mar 2027" in text
        assert "Legal review of the MSA, from Fri 16 Apr 2027 to Wed 21 Apr 2027" in text
        edited = service.edit_ask(LOGISTICS, [EDITED_ASK])
    assert edited.replaced and edited.draft.asks == (EDITED_ASK,)
    assert EDITED_ASK in text_body(week.message(version_id(LOGISTICS, 3), "Drafts"))


@step("Tue 11:15", "The seller approves: only version 3 goes, and Drafts is empty")
def the_seller_approves_version_3(week: Week) -> None:
    with week.service() as service:
        assert service.approve(LOGISTICS) == [version_id(LOGISTICS, 3)]
    week.drafts = []
    week.expect_sent(version_id(LOGISTICS, 3), f"Re: {SUBJECTS[LOGISTICS]}")
    week.expect(LOGISTICS, summary=waiting_on(MAYA, TOM), waiting=[MAYA, TOM])
    sent = week.message(version_id(LOGISTICS, 3))
    assert sent["In-Reply-To"] == TOM_LEGAL
    assert sent["References"].split() == [version_id(LOGISTICS, 1), TOM_LEGAL]
    assert EDITED_ASK in text_body(sent) and "30 minutes" not in text_body(sent)
    letter = " ".join(pdf_text(attachments(sent)[f"Mutual Plan {LOGISTICS} v3.pdf"][1]).split())
    assert "Changes since version 1" in letter


KESTREL_FILE_LINE = "| M2 | Forecast review with ward managers | Lumen Metrics | 2027-02-23 |"


@step("Tue 14:00", "The seller exports Kestrel, moves the forecast review in the file, and adds it: version 2")
def the_seller_edits_kestrel_from_a_file(week: Week) -> None:
    out = week.root / "kestrel-health-lumen-2027.md"
    result = CliRunner().invoke(main, ["--home", str(week.root), "export", KESTREL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    (line,) = [x for x in text.splitlines() if "Forecast review with ward managers" in x]
    edited = text.replace(line, line.replace("2027-02-23", "2027-02-25"))
    assert sum(a != b for a, b in zip(text.splitlines(), edited.splitlines(), strict=True)) == 1
    out.write_text(edited, encoding="utf-8")
    with week.service() as service:
        added = service.add_source(out.read_text(encoding="utf-8"), file=out.name)
    assert added.version is not None and added.version.number == 2 and added.base == 1
    week.expect(KESTREL, version=("seller edit", SELLER), summary=not_sent(KESTREL, 2), waiting=[])


@step("Tue 14:05", "The seller sends Kestrel version 2, in the thread of version 1")
def the_seller_sends_kestrel_version_2(week: Week) -> None:
    with week.service() as service:
        entry, report = service.send_plan(KESTREL)
    assert (entry.kind, entry.data["since"], report.sent) == ("update", 1, [version_id(KESTREL, 2)])
    week.expect_sent(version_id(KESTREL, 2), f"Re: {SUBJECTS[KESTREL]}")
    week.expect(KESTREL, summary=waiting_on(GRACE), waiting=[GRACE])
    sent = week.message(version_id(KESTREL, 2))
    assert sent["In-Reply-To"] == version_id(KESTREL, 1)
    assert "Forecast review with ward managers, from Tue 23 Feb 2027 to Thu 25 Feb 2027" in " ".join(
        text_body(sent).split())


# --- Wednesday ------------------------------------------------------------------------------------------

MAYA_OK = apple_id("maya-ok", "bluefin-logistics.example")
TOM_OK = outlook_id("tom-ok")
RACHEL_ASKS = outlook_id("rachel-workshop")
OLIVER_NO = outlook_id("oliver-declines")
REMINDER = reminder_id(KESTREL, 2, "M1", "2027-02-05", "before")


@step("Wed 07:50", "Maya confirms version 3 from her iPhone: the plan waits on Tom")
def maya_confirms(week: Week) -> None:
    report = week.receive(iphone(MAYA, "Confirmed, thanks!", week.message(version_id(LOGISTICS, 3)),
                                 when=week.clock(), message_id=MAYA_OK, zone=CHICAGO))
    assert report.sent == []
    week.outcomes[MAYA_OK] = "confirmed"
    week.expect(LOGISTICS, summary=waiting_on(TOM), waiting=[TOM], confirmed=[MAYA])


@step("Wed 08:45", "Tom confirms (Outlook, HTML): mutually agreed, the agreed email to everyone")
def tom_confirms_and_the_plan_is_agreed(week: Week) -> None:
    report = week.receive(outlook_html(TOM, ["Confirmed - thanks Priya.", "Tom"],
                                       week.message(version_id(LOGISTICS, 3)), when=week.clock(), message_id=TOM_OK,
                                       zone=CHICAGO))
    assert report.sent == [agreed_id(LOGISTICS, 3)]
    week.outcomes[TOM_OK] = "agreed"
    week.expect_sent(agreed_id(LOGISTICS, 3), f"Re: {SUBJECTS[LOGISTICS]}")
    week.expect(LOGISTICS, state="agreed", summary="mutually agreed on version 3", waiting=[],
                confirmed=[MAYA, TOM])
    agreed = week.message(agreed_id(LOGISTICS, 3))
    assert (addresses(agreed, "To"), addresses(agreed, "Cc")) == ([MAYA, TOM, LENA], [SELLER])
    assert agreed["In-Reply-To"] == TOM_OK
    # The letter they agreed to, byte for byte: rendered once, when version 3 went out.
    assert attachments(agreed)[f"Mutual Plan {LOGISTICS} v3.pdf"][1] == week.letters_seen[version_id(LOGISTICS, 3)]


@step("Wed 10:00", "The watcher reminds Daniel that the security questionnaire is due Friday")
def daniel_is_reminded(week: Week) -> None:
    report = week.watch()
    assert report.sent == [REMINDER]
    week.expect_sent(REMINDER, f"Re: {SUBJECTS[KESTREL]}")
    reminder = week.message(REMINDER)
    assert (addresses(reminder, "To"), addresses(reminder, "Cc")) == ([DANIEL], [])
    assert reminder["In-Reply-To"] == version_id(KESTREL, 2)
    assert "Security questionnaire returned" in text_body(reminder)


@step("Wed 11:30", "Rachel, who is not in the plan, asks to move Bluefin Foods' workshop: held, the seller told")
def a_stranger_asks_for_a_change(week: Week) -> None:
    report = week.receive(outlook_html(RACHEL, [
        "Hi Priya,", "Please move the data workshop to March 10; our planners are on stock-take the week before.",
        "Rachel Moss", "IT Business Partner, Bluefin Foods",
    ], week.message(version_id(FOODS, 1)), when=week.clock(), message_id=RACHEL_ASKS, zone=LONDON))
    assert report.sent == [notice_id(FOODS, 1, RACHEL_ASKS)]
    week.outcomes[RACHEL_ASKS] = "held"
    week.held = [RACHEL_ASKS]
    week.expect_sent(notice_id(FOODS, 1, RACHEL_ASKS), notice_subject(FOODS, RACHEL))
    week.expect(FOODS, held=1)


@step("Wed 15:00", "Oliver declines Bluefin Foods (Outlook, with a disclaimer): declined, the seller told")
def oliver_declines(week: Week) -> None:
    report = week.receive(outlook_html(OLIVER, [
        "Priya,",
        "After this morning's board meeting we have decided not to go ahead this year; the budget has gone to the "
        "ERP upgrade.",
        "Regards,", "Oliver Grant",
    ], week.message(version_id(FOODS, 1)), when=week.clock(), message_id=OLIVER_NO, zone=LONDON,
        disclaimer="This email and any attachments are confidential and intended solely for the addressee. "
        "Bluefin Foods plc, registered in England and Wales no. 01234567."))
    assert report.sent == [notice_id(FOODS, 1, OLIVER_NO)]
    week.outcomes[OLIVER_NO] = "declined"
    week.expect_sent(notice_id(FOODS, 1, OLIVER_NO), notice_subject(FOODS, f"Oliver Grant ({OLIVER})"))
    week.expect(FOODS, state="declined", summary="declined", waiting=[])


# --- Thursday -------------------------------------------------------------------------------------------

DANIEL_DONE = outlook_id("daniel-done")
MAYA_KICKOFF = outlook_id("maya-kickoff")
AISHA_OK = gmail_id("aisha-ok")


@step("Thu 09:00", "Oliver calls: the budget is back. The seller reopens Bluefin Foods")
def the_seller_reopens_bluefin_foods(week: Week) -> None:
    with week.service() as service:
        assert service.reopen(FOODS, note="Oliver called: the budget is back for Q2") == "open"
    week.expect(FOODS, state="open", summary=waiting_on(AISHA, OLIVER), waiting=[AISHA, OLIVER])


@step("Thu 09:30", "Daniel answers the reminder \"Done.\": version 3 marks the questionnaire done, in Drafts")
def daniel_answers_done(week: Week) -> None:
    report = week.receive(outlook_html(DANIEL, ["Done.", "Get Outlook for Android"], week.message(REMINDER),
                                       when=week.clock(), message_id=DANIEL_DONE, zone=NEW_YORK))
    assert report.drafted == [version_id(KESTREL, 3)] and report.sent == []
    week.outcomes[DANIEL_DONE] = "applied"
    week.drafts = [version_id(KESTREL, 3)]
    week.expect(KESTREL, version=("reply", DANIEL), summary=in_drafts(3), waiting=[])
    with week.service() as service:
        assert service.current(KESTREL).plan.milestone("M1").status == "done"


@step("Thu 10:00", "The seller approves Kestrel version 3")
def the_seller_approves_kestrel_version_3(week: Week) -> None:
    with week.service() as service:
        assert service.approve(KESTREL) == [version_id(KESTREL, 3)]
    week.drafts = []
    week.expect_sent(version_id(KESTREL, 3), f"Re: {SUBJECTS[KESTREL]}")
    week.expect(KESTREL, summary=waiting_on(GRACE), waiting=[GRACE])


@step("Thu 11:00", "Maya sent the shipment data: the seller marks M1 done; the agreement holds")
def the_seller_marks_a_step_done(week: Week) -> None:
    with week.service() as service:
        version = service.mark_done(LOGISTICS, "M1", author=SELLER)
    assert version.number == 4
    # Still agreed on version 3; `confirmed` lists who confirmed version 4, which needs no one.
    week.expect(LOGISTICS, version=("seller marked done", SELLER), summary=progress(3, 4), confirmed=[])


@step("Thu 11:05", "The seller sends version 4 to Bluefin Logistics; still agreed on version 3")
def the_seller_sends_the_progress(week: Week) -> None:
    with week.service() as service:
        report = service.send_version(service.current(LOGISTICS))
    assert report.sent == [version_id(LOGISTICS, 4)]
    week.expect_sent(version_id(LOGISTICS, 4), f"Re: {SUBJECTS[LOGISTICS]}")
    assert week.message(version_id(LOGISTICS, 4))["In-Reply-To"] == agreed_id(LOGISTICS, 3)


@step("Thu 13:00", "Maya asks to move the kick-off after agreement: held for the seller, still agreed")
def maya_asks_to_change_the_agreed_plan(week: Week) -> None:
    report = week.receive(outlook_html(MAYA, [
        "Priya, could we move the kick-off to May 17? Our depot managers are at a conference the week of May 10.",
        "Maya",
    ], week.message(version_id(LOGISTICS, 4)), when=week.clock(), message_id=MAYA_KICKOFF, zone=CHICAGO))
    assert report.sent == [notice_id(LOGISTICS, 4, MAYA_KICKOFF)]
    week.outcomes[MAYA_KICKOFF] = "held"
    week.held = [RACHEL_ASKS, MAYA_KICKOFF]
    week.expect_sent(notice_id(LOGISTICS, 4, MAYA_KICKOFF), notice_subject(LOGISTICS, f"Maya Chen ({MAYA})"))
    week.expect(LOGISTICS, held=1)


@step("Thu 13:30", "The seller releases it: version 5 reopens the plan and waits in Drafts")
def the_seller_releases_the_change(week: Week) -> None:
    with week.service() as service:
        released, report = service.release(MAYA_KICKOFF)
    assert (released.hold, released.lifted, released.was) == ("agreed", True, "held")
    assert report.drafted == [version_id(LOGISTICS, 5)] and report.sent == []
    week.outcomes[MAYA_KICKOFF] = "applied"
    week.drafts = [version_id(LOGISTICS, 5)]
    week.expect(LOGISTICS, version=("reply", MAYA), state="open", summary=reopened(5, 3, in_drafts(5)), held=0)


@step("Thu 13:35", "The seller approves version 5: Maya and Tom must confirm again")
def the_seller_approves_version_5(week: Week) -> None:
    with week.service() as service:
        assert service.approve(LOGISTICS) == [version_id(LOGISTICS, 5)]
    week.drafts = []
    week.expect_sent(version_id(LOGISTICS, 5), f"Re: {SUBJECTS[LOGISTICS]}")
    week.expect(LOGISTICS, summary=reopened(5, 3, waiting_on(MAYA, TOM)), waiting=[MAYA, TOM])
    text = " ".join(text_body(week.message(version_id(LOGISTICS, 5))).split())
    assert "Kick-off and depot onboarding, from Mon 10 May 2027 to Mon 17 May 2027" in text


@step("Thu 16:00", "Aisha confirms Bluefin Foods (Gmail): it waits on Oliver")
def aisha_confirms(week: Week) -> None:
    report = week.receive(gmail_plain(AISHA, "Confirmed from my side. Thanks for bearing with us, Priya.\n\nAisha",
                                      week.message(version_id(FOODS, 1)), when=week.clock(), message_id=AISHA_OK,
                                      zone=LONDON))
    assert report.sent == []
    week.outcomes[AISHA_OK] = "confirmed"
    week.expect(FOODS, summary=waiting_on(OLIVER), waiting=[OLIVER], confirmed=[AISHA])


# --- Friday ---------------------------------------------------------------------------------------------

TOM_AGAIN = outlook_id("tom-again")
MAYA_AGAIN = apple_id("maya-again", "bluefin-logistics.example")
DIGEST = digest_id("2027-W05")


@step("Fri 08:05", "The first poll of Friday sends the seller the weekly digest")
def the_weekly_digest(week: Week) -> None:
    report = week.watch()
    assert report.sent == [DIGEST]
    week.expect_sent(DIGEST, "Mutual Plans, week 2027-W05: 3 waiting on the prospect, 0 overdue, 1 held")
    text = text_body(week.message(DIGEST))
    for name in ("Bluefin Logistics", "Bluefin Foods", "Kestrel Health", "Oliver Grant", "Grace Liu", RACHEL):
        assert name in text, name


@step("Fri 09:00", "Tom confirms version 5 (Outlook, HTML): it waits on Maya to confirm again")
def tom_confirms_again(week: Week) -> None:
    report = week.receive(outlook_html(TOM, ["Confirmed.", "Tom"], week.message(version_id(LOGISTICS, 5)),
                                       when=week.clock(), message_id=TOM_AGAIN, zone=CHICAGO))
    assert report.sent == []
    week.outcomes[TOM_AGAIN] = "confirmed"
    week.expect(LOGISTICS, summary=reopened(5, 3, waiting_on(MAYA)), waiting=[MAYA], confirmed=[TOM])


@step("Fri 10:00", "Grace, back, confirms Kestrel on a call: the seller records it, and the plan is agreed")
def grace_confirms_on_a_call(week: Week) -> None:
    with week.service() as service:
        outcome, report = service.confirm_on_call(KESTREL, GRACE, note="Grace confirmed version 3 on our call")
    assert outcome.disposition == "agreed" and report.sent == [agreed_id(KESTREL, 3)]
    week.expect_sent(agreed_id(KESTREL, 3), f"Re: {SUBJECTS[KESTREL]}")
    week.expect(KESTREL, state="agreed", summary="mutually agreed on version 3", waiting=[], confirmed=[GRACE])
    agreed = week.message(agreed_id(KESTREL, 3))
    assert agreed["In-Reply-To"] == version_id(KESTREL, 3)
    assert (addresses(agreed, "To"), addresses(agreed, "Cc")) == ([GRACE, DANIEL, NORA], [SELLER])


@step("Fri 11:30", "Maya confirms version 5 from her iPhone: agreed again, on version 5")
def maya_confirms_again(week: Week) -> None:
    report = week.receive(iphone(MAYA, "Confirmed. Have a good weekend!", week.message(version_id(LOGISTICS, 5)),
                                 when=week.clock(), message_id=MAYA_AGAIN, zone=CHICAGO))
    assert report.sent == [agreed_id(LOGISTICS, 5)]
    week.outcomes[MAYA_AGAIN] = "agreed"
    week.expect_sent(agreed_id(LOGISTICS, 5), f"Re: {SUBJECTS[LOGISTICS]}")
    week.expect(LOGISTICS, state="agreed", summary="mutually agreed on version 5", waiting=[], confirmed=[MAYA, TOM])


@step("Fri 16:00", "The seller exports each plan's archive for legal and verifies it")
def the_archive_holds_the_week(week: Week) -> None:
    runner = CliRunner()
    for plan_id, want in week.plans.items():
        bundle = week.root / f"{plan_id}.zip"
        result = runner.invoke(main, ["--home", str(week.root), "archive", "export", plan_id, "--out", str(bundle),
                                      "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["versions"] == len(want.versions)
        result = runner.invoke(main, ["archive", "verify", str(bundle)])
        assert result.exit_code == 0, result.output
        history = runner.invoke(main, ["--home", str(week.root), "history", plan_id, "--json"])
        assert [v["reason"] for v in json.loads(history.output)["versions"]] == [r for r, _ in want.versions]
    # Every version of the week went out, so every one has its letter.
    assert len(week.letters_seen) == sum(len(e.versions) for e in week.plans.values())
    how = json.loads(runner.invoke(main, ["--home", str(week.root), "history", KESTREL, "--json"]).output)
    assert [c["email"] for c in how["confirmations"]] == [GRACE]
    assert "recorded by the seller on a call" in json.dumps(how["confirmations"])


# --- the test ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["maildir", pytest.param("imap", marks=pytest.mark.servers)])
def week(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Week]:
    """The week's home on one backend, shared by the steps in order."""
    root = tmp_path_factory.mktemp(f"week-{request.param}") / "home"
    if request.param == "maildir":
        yield Week(root, MaildirBackend(root))
        return
    server = request.getfixturevalue("mailserver")
    if server.maildir(SELLER).exists():
        pytest.fail("the week's seller already has a mailbox on the test servers: the week runs once a session")
    for address in RECIPIENTS:
        server.add_user(address)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ImapBackend.password_env, server.password(SELLER))
        yield Week(root, ImapBackend(server))


@pytest.mark.parametrize("index", range(len(STEPS)), ids=[s.id for s in STEPS])
def test_the_week(week: Week, index: int) -> None:
    week.run_until(STEPS, index)


def test_the_week_has_the_steps_it_promises() -> None:
    assert len(STEPS) >= 30
    assert [s.at for s in STEPS] == sorted(s.at for s in STEPS)


# --- questions that name a company are still questions ------------------------------------------------------


@pytest.mark.parametrize("sentence", [
    "Who from Lumen will run the data workshop?",
    "Who at Lumen Metrics will lead the data workshop?",
    "Which of Oliver's people will own the supplier onboarding?",
])
def test_a_question_about_who_will_own_a_step_changes_nothing(sentence: str) -> None:
    from pipeline.plan.source import parse_plan

    plan = parse_plan(PLANS[FOODS], file="bluefin-foods.md",
                      defaults={"seller": {"company": "Lumen Metrics", "name": "Priya Nair", "email": SELLER}})
    raw = new_email(AISHA, f"Hi Priya,\n\n{sentence}\n\nAisha", subject=f"RE: {SUBJECTS[FOODS]}",
                    when=datetime(2027, 2, 2, 16, 30, tzinfo=CHICAGO), message_id="<q@bluefin-foods.example>")
    reading = read_reply(Incoming.from_bytes(raw, own_domains=[DOMAIN]), plan)
    assert (reading.intent, reading.changes, reading.unresolved) == ("comment", (), (sentence,))




# --- the seller's errors say what they name, brackets and all --------------------------------------------


def test_an_error_naming_brackets_prints_them_and_exits_2(tmp_path: Path) -> None:
    """A plan id, file name or hint with [brackets] is printed as written, never read as console markup."""
    home = init_home(tmp_path / "home")
    result = CliRunner().invoke(main, ["--home", str(home.root), "status", "[/bluefin]"])
    assert result.exit_code == 2, result.output
    assert "no plan '[/bluefin]' in the store" in result.output
    plan = tmp_path / "no-seller.md"
    plan.write_text(PLANS[KESTREL], encoding="utf-8")
    result = CliRunner().invoke(main, ["--home", str(home.root), "add", str(plan)])  # a home with no [seller] yet
    assert result.exit_code == 2, result.output
    assert "or set [seller] in mutualplan.toml" in result.output
