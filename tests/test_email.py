"""The plan's emails, parsed back: headers, both parts, both attachments, the timeline lines, the calendar."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pipeline.errors import RenderError
from pipeline.plan import ids
from pipeline.plan.changes import apply
from pipeline.plan.diff import diff as plan_diff
from pipeline.plan.model import Change, Contact
from pipeline.plan.source import parse_plan
from pipeline.render.email import (
    agreed_email,
    plan_email,
    seller_notice_email,
    update_email,
)
from pipeline.render.ics import calendar, fold

FIXTURES = Path(__file__).parent / "fixtures"
CREATED = datetime(2027, 1, 11, 17, 2, tzinfo=UTC)  # Mon 11 Jan 2027, 09:02 in Portland
PDF = b"%PDF-1.7\n% a letter stands in here: these tests are about the email\n%%EOF\n"

# The timeline as the reply examples quote it (reply-examples/01-gmail-confirm.eml), checked by hand
# against the example plan's due expressions with the target on Wed 31 Mar 2027.
TIMELINE = """\
Timeline
M1  Discovery workshop - Joint - Sat 30 Jan 2027
M2  Technical demo for Acme IT - Northwind - Wed 10 Feb 2027
M3  Pilot on Q4 data - Acme (Dana) - Mon 1 Mar 2027
M4  Reference call with a customer - Northwind - Thu 4 Mar 2027
M5  Legal review of the MSA - Acme (Kim Osei) - Wed 17 Mar 2027
M6  Signed order form / PO - Acme (Raj Patel) - Wed 31 Mar 2027
After the PO
M7  Kick-off meeting and introductions - Joint - Wed 7 Apr 2027
"""


@pytest.fixture(scope="module")
def plan():
    return parse_plan((FIXTURES / "example-plan.md").read_text(), file="example-plan.md")


def parse(message) -> email.message.EmailMessage:
    """The message as a mail client receives it: serialized, then parsed from bytes."""
    return email.message_from_bytes(bytes(message), policy=email.policy.default)


def attachments(msg) -> dict[str, tuple[str, bytes]]:
    return {
        part.get_filename(): (part.get_content_type(), part.get_payload(decode=True)) for part in msg.iter_attachments()
    }


def ics_events(data: bytes) -> list[dict[str, str]]:
    """Unfold the calendar's lines (RFC 5545 3.1) and read each VEVENT's properties by hand."""
    text = data.decode("utf-8")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    lines = text.replace("\r\n ", "").split("\r\n")[:-1]
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    events, current = [], None
    for line in lines:
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            events.append(current)
            current = None
        elif current is not None:
            name, _, value = line.partition(":")
            current[name] = value
    return events


# --- the plan email ---------------------------------------------------------------------------


def test_plan_email_headers(plan):
    msg = parse(plan_email(plan, version=1, created=CREATED, pdf=PDF))
    # One subject per plan thread, no version in it; the short name is the company before "Corp".
    assert msg["Subject"] == "Mutual Plan: Acme and Northwind Analytics"
    assert msg["Message-ID"] == "<plan.acme-northwind-2027.v1@northwind.example>"
    assert msg["X-Mutual-Plan"] == "acme-northwind-2027; version=1"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Auto-Submitted"] is None  # the seller sends version 1 themselves
    assert msg["Date"] == "Mon, 11 Jan 2027 09:02:00 -0800"  # the version's timestamp, in the plan's zone
    assert msg["From"] == "Jordan Lee <jordan.lee@northwind.example>"
    assert [a.addr_spec for a in msg["To"].addresses] == ["dana.whitfield@acme.example", "raj.patel@acme.example"]
    assert [a.display_name for a in msg["To"].addresses] == ["Dana Whitfield", "Raj Patel"]
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["kim.osei@acme.example"]
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg["MIME-Version"] == "1.0"
    raw = bytes(plan_email(plan, version=1, created=CREATED, pdf=PDF))
    assert b"\nMessage-ID: <plan.acme-northwind-2027.v1@northwind.example>\n" in raw
    long = [line for line in raw.split(b"\n") if len(line) > 78]
    assert long and all(line.startswith((b"To: ", b"Content-Disposition: ")) for line in long)  # bodies stay short


def test_plan_email_has_both_parts_and_both_attachments(plan):
    msg = parse(plan_email(plan, version=1, created=CREATED, pdf=PDF))
    assert msg.get_content_type() == "multipart/mixed"
    alternative = next(msg.iter_parts())
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert msg.get_body(("plain",)).get_content_charset() == "utf-8"
    files = attachments(msg)
    assert files["Mutual Plan acme-northwind-2027 v1.pdf"] == ("application/pdf", PDF)
    kind, ics = files["Mutual Plan acme-northwind-2027 v1.ics"]
    assert kind == "text/calendar"
    part = next(p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar")
    assert part.get_param("method") == "PUBLISH"
    assert ics == calendar(plan, version=1, created=CREATED)
    assert len(files) == 2


def test_text_part_lists_the_timeline_as_replies_quote_it_and_ends_with_how_to_answer(plan):
    text = parse(plan_email(plan, version=1, created=CREATED, pdf=PDF)).get_body(("plain",)).get_content()
    assert text.startswith("Hi Dana, Raj,\n")
    assert TIMELINE in text
    assert "decide by 31 March 2027 (79 days left)" in " ".join(text.split())
    how = text.index("How to answer")
    assert how > text.index(TIMELINE)
    tail = " ".join(text[how:].split())
    assert 'reply "Confirmed"' in tail and "what should move (and to when), be added or dropped" in tail
    # After how to answer comes only the signature.
    assert tail.endswith("Jordan Jordan Lee, Account Executive Northwind Analytics · jordan.lee@northwind.example")
    assert all(len(line) <= 78 for line in text.splitlines() if not line.startswith("M"))


def test_html_part_carries_the_same_timeline_escaped(plan):
    tricky = replace(plan, milestones=(replace(plan.milestones[0], title="R&D <review>"), *plan.milestones[1:]))
    msg = parse(plan_email(tricky, version=1, created=CREATED, pdf=PDF))
    html = msg.get_body(("html",)).get_content()
    assert "<b>M3</b>&nbsp; Pilot on Q4 data - Acme (Dana) - Mon 1 Mar 2027" in html
    assert "R&amp;D &lt;review&gt;" in html and "<review>" not in html
    text = msg.get_body(("plain",)).get_content()
    assert "M1  R&D <review> - Joint - Sat 30 Jan 2027" in text  # plain text is not HTML-escaped


def test_the_same_arguments_give_the_same_bytes(plan):
    a = bytes(plan_email(plan, version=1, created=CREATED, pdf=PDF))
    b = bytes(plan_email(plan, version=1, created=CREATED, pdf=PDF))
    assert a == b
    assert bytes(plan_email(plan, version=2, created=CREATED, pdf=PDF)) != a


def test_names_with_accents_survive_the_headers(plan):
    dana = Contact(name="Zoë Ångström-Müller", email="zoe@acme.example", role="champion", confirms=True)
    other = replace(plan, prospect=replace(plan.prospect, contacts=(dana,)))
    msg = parse(plan_email(other, version=1, created=CREATED, pdf=None))
    assert msg["To"].addresses[0].display_name == "Zoë Ångström-Müller"
    assert msg.get_body(("plain",)).get_content().startswith("Hi Zoë,")
    assert "Cc" not in msg
    assert [p.get_content_type() for p in msg.iter_attachments()] == ["text/calendar"]  # no PDF given


def test_a_seller_without_an_address_cannot_send(plan):
    nobody = replace(plan, seller=replace(plan.seller, email=""))
    with pytest.raises(RenderError, match="no email address"):
        plan_email(nobody, version=1, created=CREATED, pdf=PDF)
    with pytest.raises(RenderError, match="not a PDF"):
        plan_email(plan, version=1, created=CREATED, pdf=b"<html>")


# --- the calendar -----------------------------------------------------------------------------


def test_ics_has_one_all_day_event_per_dated_milestone(plan):
    data = calendar(plan, version=1, created=CREATED)
    assert b"METHOD:PUBLISH" in data and b"VERSION:2.0" in data
    events = ics_events(data)
    assert [e["UID"] for e in events] == [f"acme-northwind-2027-M{i}@northwind.example" for i in range(1, 8)]
    m3 = events[2]
    assert m3["DTSTART;VALUE=DATE"] == "20270301" and m3["DTEND;VALUE=DATE"] == "20270302"
    assert m3["DTSTAMP"] == "20270111T170200Z"
    assert m3["SEQUENCE"] == "0"
    assert m3["STATUS"] == "TENTATIVE" and m3["TRANSP"] == "TRANSPARENT"
    assert m3["SUMMARY"] == "M3 Pilot on Q4 data (Acme Corp / Northwind Analytics)"
    assert m3["DESCRIPTION"].startswith("Owner: Acme (Dana)\\nStatus: Proposed\\n")
    assert events[6]["DTSTART;VALUE=DATE"] == "20270407"  # after the PO: T+7d
    for line in data.split(b"\r\n"):
        assert len(line) <= 75


def test_ics_escapes_text_folds_long_lines_and_skips_undated_milestones(plan):
    odd = replace(plan.milestones[0], title="Review; scope, risks \\ and a very long tail " + "ø" * 60)
    undated = replace(plan.milestones[1], due="")
    done = replace(plan.milestones[2], status="done")
    other = replace(plan, milestones=(odd, undated, done, *plan.milestones[3:]))
    data = calendar(other, version=3, created=CREATED)
    events = ics_events(data)
    assert len(events) == 6 and "M2" not in "".join(e["UID"] for e in events)
    assert events[0]["SUMMARY"].startswith("M1 Review\\; scope\\, risks \\\\ and a very long tail øøø")
    assert events[1]["STATUS"] == "CONFIRMED" and events[1]["SEQUENCE"] == "2"
    for line in data.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # never split inside a character
    assert fold("x" * 80) == "x" * 75 + "\r\n " + "x" * 5


# --- the other kinds --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def version_two(plan):
    changes = [Change("move", milestone="M3", due="2027-03-08"), Change("remove", milestone="M4")]
    v2 = apply(plan, changes, today=date(2027, 1, 12))
    return v2, plan_diff(plan, v2, old_version=1, new_version=2)


def test_update_email_answers_in_the_thread_with_the_changes(version_two):
    v2, d = version_two
    reply_id = "<179569864190.24765.reply@acme.example>"
    msg = parse(
        update_email(
            v2, version=2, created=datetime(2027, 1, 12, 17, 0, tzinfo=UTC), pdf=PDF, diff=d,
            in_reply_to=reply_id, references=["<plan.acme-northwind-2027.v1@northwind.example>"],
            reply_subject="RE: Mutual Plan: Acme Corp and Northwind Analytics (version 1)",
            asks=["A call with Raj before the pilot starts"],
        )
    )  # fmt: skip
    # An answer to a reply with an older release's subject (a version in it) takes the one subject of today.
    assert msg["Subject"] == "Re: Mutual Plan: Acme and Northwind Analytics"
    assert msg["Message-ID"] == "<plan.acme-northwind-2027.v2@northwind.example>"
    assert msg["In-Reply-To"] == reply_id
    assert msg["References"] == f"<plan.acme-northwind-2027.v1@northwind.example> {reply_id}"
    assert msg["X-Mutual-Plan"] == "acme-northwind-2027; version=2"
    assert msg["Auto-Submitted"] is None  # left for the seller to review and send
    text = msg.get_body(("plain",)).get_content()
    assert "- Moved: M3  Pilot on Q4 data, from Mon 1 Mar 2027 to Mon 8 Mar 2027" in text
    assert "- Removed: M4  Reference call with a customer (was Thu 4 Mar 2027)" in text
    assert "In return, could we ask:\n- A call with Raj before the pilot starts" in text
    assert "M3  Pilot on Q4 data - Acme (Dana) - Mon 8 Mar 2027" in text and "M4  " not in text.split("Timeline")[1]
    assert 'reply "Confirmed" if version 2' in text
    assert len(attachments(msg)) == 2
    auto = parse(update_email(v2, version=2, created=CREATED, pdf=PDF, diff=d, in_reply_to=reply_id, auto=True))
    assert auto["Auto-Submitted"] == "auto-generated"
    assert auto["Subject"] == "Re: Mutual Plan: Acme and Northwind Analytics"  # an answer in the thread


def test_agreed_email_goes_to_everyone_with_the_final_letter(version_two):
    v2, _ = version_two
    msg = parse(agreed_email(v2, version=2, created=datetime(2027, 1, 15, 16, 0, tzinfo=UTC), pdf=PDF))
    assert msg["Message-ID"] == "<plan.acme-northwind-2027.v2.agreed@northwind.example>"
    assert msg["Subject"] == "Mutual Plan: Acme and Northwind Analytics"  # the one subject; no "Agreed:" to split it
    assert msg["Auto-Submitted"] == "auto-generated" and msg["X-Auto-Response-Suppress"] == "All"
    assert len(msg["To"].addresses) == 3 and msg["Cc"].addresses[0].addr_spec == "jordan.lee@northwind.example"
    text = " ".join(msg.get_body(("plain",)).get_content().split())
    assert "Dana Whitfield and Raj Patel confirmed version 2 of our Mutual Plan" in text
    assert "Next: M1 Discovery workshop - Joint - Sat 30 Jan 2027" in text
    assert "Mutual Plan acme-northwind-2027 v2.pdf" in attachments(msg)


def test_seller_notice_goes_to_the_seller_alone(plan):
    reply_id = "<abc.123@acme.example>"
    msg = parse(
        seller_notice_email(
            plan, version=1, created=datetime(2027, 1, 13, 10, 0, tzinfo=UTC),
            reason="the reply asks a question and requests no change",
            reply_from="dana.whitfield@acme.example", reply_subject="RE: Mutual Plan",
            said="Can your team present to our board?\nThanks", notes=["Can your team present to our board?"],
            intent="comment", key=reply_id,
        )
    )  # fmt: skip
    assert [a.addr_spec for a in msg["To"].addresses] == ["jordan.lee@northwind.example"]
    assert "Cc" not in msg
    expected = ids.message_id(plan, 1, "seller_notice", reply_id)
    assert msg["Message-ID"] == expected and expected.startswith("<plan.acme-northwind-2027.v1.notice.")
    assert msg["Subject"] == (
        "[Mutual Plan acme-northwind-2027] Nothing changed: Dana Whitfield (dana.whitfield@acme.example)"
    )
    assert msg["Auto-Submitted"] == "auto-generated"
    text = msg.get_body(("plain",)).get_content()
    assert "> Can your team present to our board?\n> Thanks" in text
    flat = " ".join(text.split())
    assert "Nothing in the plan changed: the reply asks a question and requests no change" in flat
    assert "Read as: comment" in flat and "Not acted on: - Can your team present to our board?" in flat
    assert list(msg.iter_attachments()) == []
    other = seller_notice_email(plan, version=1, created=CREATED, reason="x", reply_from="a@b.example", key="<other>")
    assert other["Message-ID"] != expected


def test_message_ids_are_deterministic_per_plan_version_kind_and_key(plan):
    assert ids.message_id(plan, 3) == "<plan.acme-northwind-2027.v3@northwind.example>"
    assert ids.message_id(plan, 3, "update") == "<plan.acme-northwind-2027.v3@northwind.example>"
    assert ids.message_id(plan, 3, "agreed") == "<plan.acme-northwind-2027.v3.agreed@northwind.example>"
    a = ids.message_id(plan, 3, "seller_notice", "<x@y>")
    assert a == ids.message_id(plan, 3, "notice", "<x@y>") != ids.message_id(plan, 3, "notice", "<z@y>")
    assert plan_email(plan, version=1, created=CREATED, pdf=PDF)["Message-ID"] == ids.message_id(plan, 1)
    custom = plan_email(plan, version=1, created=CREATED, pdf=PDF, message_id="<outbox.1@northwind.example>")
    assert custom["Message-ID"] == "<outbox.1@northwind.example>"


# --- replies to it read as meant --------------------------------------------------------------


def test_our_message_ids_and_quoted_lines_are_understood_by_the_reply_reader(plan):
    from pipeline.plan.ids import plan_reference
    from pipeline.replies.interpret import read_reply
    from pipeline.replies.message import Incoming

    ours = plan_email(plan, version=1, created=CREATED, pdf=PDF)
    assert plan_reference(ours["Message-ID"], ["northwind.example"]) == ("acme-northwind-2027", 1)
    assert Incoming.from_bytes(bytes(ours), own_domains=["northwind.example"]).kind == "own"
    text = ours.get_body(("plain",)).get_content()
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
    # An inline answer under the quoted M3 line, as reply-examples/09 does.
    inline = quoted.replace(
        "> M3  Pilot on Q4 data - Acme (Dana) - Mon 1 Mar 2027",
        "> M3  Pilot on Q4 data - Acme (Dana) - Mon 1 Mar 2027\n\nThis has to move to March 8.\n",
    )
    for body, intent in (
        ("Confirmed, thanks.\n\nDana\n\n" + quoted, "confirm"),
        ("Comments inline.\n\n" + inline, "amend"),
    ):
        raw = (
            "From: Dana Whitfield <dana.whitfield@acme.example>\nTo: Jordan Lee <jordan.lee@northwind.example>\n"
            "Date: Tue, 12 Jan 2027 08:15:00 -0800\nSubject: Re: " + ours["Subject"] + "\n"
            "Message-ID: <r1@acme.example>\nIn-Reply-To: " + ours["Message-ID"] + "\n"
            'Content-Type: text/plain; charset="utf-8"\nMIME-Version: 1.0\n\n' + body
        ).encode("utf-8")
        reading = read_reply(Incoming.from_bytes(raw, own_domains=["northwind.example"]), plan)
        assert reading.intent == intent, (intent, reading)
        if intent == "amend":
            assert [c.to_dict() for c in reading.changes] == [{"op": "move", "milestone": "M3", "due": "2027-03-08"}]


def test_a_plan_with_no_target_or_seller_name_still_reads_well():
    plan = parse_plan((FIXTURES / "minimal-plan.md").read_text())
    msg = parse(plan_email(plan, version=1, created=CREATED, pdf=PDF, to=["buyer@buyer.example"]))
    text = msg.get_body(("plain",)).get_content()
    assert text.startswith("Hi Buyer GmbH team,\n")
    # Nothing is "agreed" before the prospect has confirmed it.
    assert "what it takes, as we understand it, for Buyer GmbH to reach a decision." in " ".join(text.split())
    assert "agreed" not in text.split("Timeline")[0]
    assert "M2  Something undated - Buyer - date to be agreed" in text
    assert text.endswith("\n\nSolo Seller Ltd · hello@solo.example\n")
    assert msg["To"].addresses[0].addr_spec == "buyer@buyer.example" and msg["From"] == "hello@solo.example"
    events = ics_events(attachments(msg)["Mutual Plan buyer-solo v1.ics"][1])
    assert len(events) == 1 and events[0]["UID"] == "buyer-solo-M1@solo.example"
