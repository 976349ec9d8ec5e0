"""Plans written in Outlook: the fixtures read into the plans checked by hand, and the loop on a Maildir home with a
simulated clock: version 1 and its letter in the seller's thread, a plan that does not parse answered to the seller
alone, the prospect answering the seller's email, and the seller's later edits confirmed by the prospect again."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from pypdf import PdfReader

from pipeline.config import load_settings
from pipeline.errors import PlanError
from pipeline.home import Home, init_home
from pipeline.loop import policy
from pipeline.loop.inbound_plan import plan_of, read_email, recognize
from pipeline.loop.service import Service
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.plan.model import Change
from pipeline.plan.timeline import resolve
from pipeline.replies.message import Incoming
from pipeline.replies.plan_email import Person, email_plan, parse_written_date, source_line
from pipeline.replies.plan_markdown import html_to_markdown, normalize_text

FIXTURES = Path(__file__).parent / "fixtures" / "outlook"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.eml"))
SELLER = "jordan.lee@northwind.example"
PIPELINE = "jordan.lee+plans@northwind.example"
PRIYA, TOM, ANA = "priya.raman@globex.example", "tom.becker@globex.example", "ana.lima@globex.example"
PLAN_ID = "globex-industries-northwind-2027"  # the prospect is "Globex Industries": both words are its own
V1 = f"<plan.{PLAN_ID}.v1@northwind.example>"
V2 = f"<plan.{PLAN_ID}.v2@northwind.example>"
SELLER_EMAIL_ID = "<SN6PR05MB168EBE1A83E7070924EA@SN6PR05MBC123.namprd05.prod.outlook.com>"  # desktop-table.eml
START = datetime(2027, 3, 1, 16, 30, tzinfo=UTC)  # Mon 1 Mar 2027, 8:30 in Los Angeles, 10:30 in Chicago

SETTINGS = {
    "seller": {"company": "Northwind Analytics", "name": "Jordan Lee", "title": "Account Executive",
               "email": SELLER, "timezone": "America/Los_Angeles"},
    "inbound": {"addresses": [PIPELINE], "category": "Mutual Plan"},
    "letter": {"letterhead": "northwind"},
}
SETTINGS_TOML = f"""\
[seller]
company = "Northwind Analytics"
name = "Jordan Lee"
title = "Account Executive"
email = "{SELLER}"
timezone = "America/Los_Angeles"

[inbound]
addresses = ["{PIPELINE}"]
category = "Mutual Plan"

[policy]
changes = "review"
{{extra}}
[letter]
letterhead = "northwind"
"""

TRUSTED = 'trusted_authserv_ids = ["mx.northwind.example"]\n'


def settings():
    return load_settings(SETTINGS)


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.eml").read_bytes()


# --- the fixtures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_each_outlook_fixture_reads_as_the_plan_checked_by_hand(name: str) -> None:
    expected = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    raw = fixture(name)
    assert recognize(Incoming.from_bytes(raw, own_domains=("northwind.example",)), settings()) == \
        expected["recognized_by"]
    mail = read_email(raw)
    if "error" in expected:
        with pytest.raises(PlanError) as info:
            plan_of(mail, settings())
        assert info.value.line == expected["error"]["line"]
        assert info.value.reason == expected["error"]["reason"]
        assert source_line(mail.markdown, info.value.line) == expected["error"]["line_text"]
        return
    plan = plan_of(mail, settings()).plan
    dates = resolve(plan)
    assert plan.id == expected["id"]
    assert plan.prospect.company == expected["prospect"]
    assert plan.target == date.fromisoformat(expected["target"])
    assert plan.timezone == expected["timezone"]
    assert [[c.name, c.email, c.role, c.confirms] for c in plan.prospect.contacts] == expected["contacts"]
    assert [s.kind for s in plan.sections if s.kind] == expected["sections"]
    assert [[m.id, m.title, m.owner, dates[m.id].isoformat(), m.phase] for m in plan.milestones] == \
        expected["milestones"]
    # The seller: From and the settings; the seller's words above the first heading stay out of the letter.
    assert (plan.seller.company, plan.seller.name, plan.seller.email) == ("Northwind Analytics", "Jordan Lee", SELLER)
    assert plan.letterhead == "northwind"
    assert not any("Hi Priya" in s.body or "Target:" in s.body for s in plan.sections)
    # The signature and closing below the plan are not part of its last section.
    assert not any("Account Executive" in s.body or "Best" in s.body for s in plan.sections)


def test_the_sellers_colleagues_in_copy_are_not_the_prospects_people() -> None:
    raw = fixture("desktop-table").replace(
        b"Cc: Ana Lima <ana.lima@globex.example>",
        b"Cc: Ana Lima <ana.lima@globex.example>, Sam Ortiz <sam.ortiz@northwind.example>")
    plan = plan_of(read_email(raw), settings()).plan
    assert [c.email for c in plan.prospect.contacts] == [PRIYA, TOM, ANA]


def test_bullets_and_numbers_keep_their_levels_and_lose_words_hidden_markers() -> None:
    plan = plan_of(read_email(fixture("desktop-bullets")), settings()).plan
    assert plan.section("issues").body == (
        "- Stock-outs on fast movers cost Globex about $1.4M in lost orders last year\n"
        "  - Forecasts are rebuilt by hand each week in three regional spreadsheets\n"
        "- No one view of inventory across the three regions"
    )
    assert plan.section("decision").body == (
        "1. Criteria: forecast accuracy on last quarter\u2019s orders, SOC 2 report\n"
        "1. Decision: Tom Becker signs; Priya Raman recommends"
    )


# --- HTML to plan source ---------------------------------------------------------------------------


def test_outlooks_reply_header_ends_the_plan_and_a_sentence_is_not_a_heading() -> None:
    html = (
        "<div class=WordSection1><p class=MsoNormal><b>Timeline<o:p></o:p></b></p>"
        "<p class=MsoNormal>Timeline looks tight this quarter<o:p></o:p></p>"
        "<p class=MsoNormal><b>We need this signed by April<o:p></o:p></b></p>"
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'>"
        "<p class=MsoNormal><b>From:</b> Priya Raman<br><b>Sent:</b> Friday</p></div>"
        "<p class=MsoNormal>## Business value</p></div>"
    )
    assert html_to_markdown(html) == (
        "## Timeline\n\nTimeline looks tight this quarter\n**We need this signed by April**\n"
    )


def test_outlook_on_the_web_lines_split_at_br_and_hidden_text_is_dropped() -> None:
    html = ('<div class="elementToProof">Target: 2027-04-30<br>Confirms: Priya<br></div>'
            '<div style="display:none">Hidden preview text</div>'
            '<div class="elementToProof"><span style="font-weight: 700;">Solutions</span></div>')
    assert html_to_markdown(html) == "Target: 2027-04-30\nConfirms: Priya\n\n## Solutions\n"


def test_autocorrected_dashes_are_undone_only_where_a_table_needs_them() -> None:
    text = ("| # | Activity | Owner | Due |\n|\u2014-|\u2014\u2014\u2014|\u2013\u2013|\u2014|\n"
            "| M1 | Team \u2013 3 people | Joint | T\u201330d |\n| M2 | Demo | Joint | 2027\u201302\u201310 |\n")
    assert normalize_text(text) == (
        "| # | Activity | Owner | Due |\n|---|---|---|---|\n"
        "| M1 | Team \u2013 3 people | Joint | T-30d |\n| M2 | Demo | Joint | 2027-02-10 |\n"
    )


@pytest.mark.parametrize("written, expected", [
    ("2027-04-30", date(2027, 4, 30)),
    ("April 30, 2027", date(2027, 4, 30)),
    ("30 April 2027", date(2027, 4, 30)),
    ("Fri 30 Apr 2027", date(2027, 4, 30)),
    ("Friday, April 30th, 2027", date(2027, 4, 30)),
    ("4/30/2027", date(2027, 4, 30)),
    ("30/4/2027", date(2027, 4, 30)),
    ("3/4/2027", None),  # March 4 or 3 April: not guessed
    ("April 30", None),  # no year: no clock to guess it from
    ("February 30, 2027", None),
    ("end of April", None),
])
def test_a_written_target_date_needs_its_year_and_no_guess(written: str, expected: date | None) -> None:
    assert parse_written_date(written) == expected


# --- front matter from the headers ------------------------------------------------------------------

BODY = "Target: {target}\n{extra}\n## Timeline\n| # | Activity | Owner | Due |\n|---|---|---|---|\n" \
       "| M1 | Pilot | Buyer | T-10d |\n| M2 | Signature | Buyer | T |\n"


PRIYA_TO = (Person("Priya Raman", PRIYA),)


def _plan(body: str, to=PRIYA_TO, cc=()):
    return email_plan(body, sender=Person("Jordan Lee", SELLER), to=to, cc=cc,
                      seller={"company": "Northwind Analytics"}, exclude={PIPELINE})


def test_the_headers_make_the_front_matter() -> None:
    plan = _plan(BODY.format(target="2027-04-30", extra=""),
                 to=[Person("Raman, Priya", PRIYA), Person("", PIPELINE), Person("", SELLER)],
                 cc=[Person("", TOM)]).plan
    # "Raman, Priya" as Outlook's address book writes it is not reversed here (the reader does that); a bare
    # address gets a name from its local part; the seller and the pipeline are never contacts.
    assert [(c.name, c.email, c.confirms) for c in plan.prospect.contacts] == [
        ("Raman, Priya", PRIYA, True), ("Tom Becker", TOM, False)]
    assert plan.prospect.company == "Globex"
    assert plan.id == "globex-northwind-2027"
    assert resolve(plan)["M1"] == date(2027, 4, 20)


def test_front_matter_pasted_at_the_top_wins_over_the_headers() -> None:
    text = (Path(__file__).parent / "fixtures" / "example-plan.md").read_text(encoding="utf-8")
    plan = email_plan(normalize_text(text), sender=Person("Jordan Lee", SELLER),
                      to=[Person("", "dana.whitfield@acme.example")], seller={"company": "Northwind Analytics"}).plan
    assert plan.id == "acme-northwind-2027" and plan.target == date(2027, 3, 31)
    assert [(c.name, c.confirms) for c in plan.prospect.contacts] == [
        ("Dana Whitfield", True), ("Raj Patel", True), ("Kim Osei", False)]


def test_what_is_wrong_with_an_email_plan_names_its_line() -> None:
    with pytest.raises(PlanError, match="not in the email's To or Cc") as info:
        _plan(BODY.format(target="2027-04-30", extra="Confirms: Priya, Zed"))
    assert info.value.line == 2
    with pytest.raises(PlanError, match="named as legal") as info:
        _plan(BODY.format(target="2027-04-30", extra="Legal: Kim Osei"))
    assert info.value.line == 2
    with pytest.raises(PlanError, match="is not a date") as info:
        _plan(BODY.format(target="the end of April", extra=""))
    assert info.value.line == 1 and "Target: 2027-03-31" in info.value.hint
    with pytest.raises(PlanError, match="no target date") as info:
        _plan(BODY.format(target="", extra="").replace("Target: \n", "Hello,\n"))
    assert "Target: 2027-03-31" in info.value.hint and "front matter" not in info.value.hint
    with pytest.raises(PlanError, match="no prospect contact"):
        _plan(BODY.format(target="2027-04-30", extra=""), to=[Person("", SELLER)])
    with pytest.raises(PlanError, match="has no timeline") as info:
        _plan("Target: 2027-04-30\n\nJust a note.\n")
    assert "Timeline" in info.value.hint


# --- recognizing the seller's plan email ----------------------------------------------------------


def _incoming(raw: bytes) -> Incoming:
    return Incoming.from_bytes(raw, own_domains=("northwind.example",))


def test_only_the_sellers_own_mail_with_a_sign_is_a_plan_email() -> None:
    raw = fixture("desktop-table")
    assert recognize(_incoming(raw), settings()) == "bcc"
    # Written to openly, the pipeline's address is a recipient like any other, not a Bcc.
    addressed = raw.replace(b"Cc: Ana Lima <ana.lima@globex.example>",
                            b"Cc: Ana Lima <ana.lima@globex.example>, <jordan.lee+plans@northwind.example>")
    assert recognize(_incoming(addressed), settings()) is None
    # The prospect's mail is never a plan, whatever its subject says.
    forged = fixture("web-table").replace(b"From: Jordan Lee <jordan.lee@northwind.example>",
                                          b"From: Priya Raman <priya.raman@globex.example>")
    assert recognize(_incoming(forged), settings()) is None
    # With the tag and the category off, only the Bcc counts.
    quiet = load_settings({**SETTINGS, "inbound": {"addresses": [PIPELINE], "subject_tag": ""}})
    assert recognize(_incoming(fixture("web-table")), quiet) is None
    assert recognize(_incoming(fixture("desktop-markdown")), quiet) is None
    assert recognize(_incoming(raw), quiet) == "bcc"


# --- the loop ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def home(tmp_path: Path) -> Home:
    home = init_home(tmp_path / "home")
    home.settings_path.write_text(SETTINGS_TOML.format(extra=TRUSTED), encoding="utf-8")
    return home


class Stamped(MaildirMailbox):
    """The Inbox as the seller's server fills it: each message stamped with its DMARC result, which `home` trusts
    (a plan email with no trusted pass is held: test_an_unauthenticated_plan_email_makes_no_plan)."""

    def deliver(self, raw: bytes) -> str:
        sender = email.message_from_bytes(raw, policy=email.policy.default)["From"].addresses[0].domain
        return super().deliver(f"Authentication-Results: mx.northwind.example; dmarc=pass header.from={sender}\r\n"
                               .encode() + raw)


@contextmanager
def loop(home: Home, clock: Clock) -> Iterator[Service]:
    with Service.open(home, clock) as watcher:
        yield watcher


def sent_mail(home: Home) -> dict[str, EmailMessage]:
    out = {}
    for path in sorted((home.root / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out[msg["Message-ID"]] = msg
    return out


def drafts(home: Home) -> dict[str, EmailMessage]:
    out = {}
    for sub in ("new", "cur"):
        for path in sorted((home.mail_dir / ".Drafts" / sub).glob("*")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            out[msg["Message-ID"]] = msg
    return out


def folder_count(home: Home, folder: str) -> int:
    return sum(1 for sub in ("new", "cur") for _ in (home.mail_dir / f".{folder}" / sub).glob("*"))


def addresses(msg: EmailMessage, header: str) -> list[str]:
    return [a.addr_spec for a in msg[header].addresses] if msg[header] else []


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


def outlook_reply(sender: tuple[str, str], body: str, *, message_id: str, when: datetime, in_reply_to: str,
                  references: list[str], subject: str, to: list[str]) -> bytes:
    """A reply as Outlook desktop writes it: HTML paragraphs, then the quoted message under its header."""
    msg = EmailMessage()
    msg["From"] = f"{sender[0]} <{sender[1]}>"
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"RE: {subject}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = in_reply_to
    msg["References"] = " ".join(references)
    msg["Thread-Topic"] = subject
    paragraphs = "".join(f"<p class=MsoNormal>{line}<o:p></o:p></p>" if line else
                         "<p class=MsoNormal><o:p>&nbsp;</o:p></p>" for line in body.split("\n"))
    html = (
        "<html xmlns:o=\"urn:schemas-microsoft-com:office:office\"><body lang=EN-US><div class=WordSection1>"
        f"{paragraphs}<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'>"
        "<p class=MsoNormal><b>From:</b> Jordan Lee &lt;jordan.lee@northwind.example&gt;<br><b>Sent:</b> "
        "Monday, March 1, 2027 8:04 AM<br><b>Subject:</b> " + subject + "<o:p></o:p></p></div>"
        "<p class=MsoNormal>M3 Pilot on last quarter's orders - Globex (Priya) - Fri 9 Apr 2027<o:p></o:p></p>"
        "</div></body></html>"
    )
    msg.set_content(body)
    msg.add_alternative(html, subtype="html")
    return bytes(msg)


def test_a_plan_email_becomes_version_1_and_its_letter_answers_in_the_thread(home: Home) -> None:
    clock = Clock()
    inbox = Stamped(home.mail_dir)
    inbox.deliver(fixture("desktop-table"))
    with loop(home, clock) as watcher:
        report = watcher.poll()
        assert [(m, d) for m, d, _ in report.handled] == [(SELLER_EMAIL_ID.strip("<>"), policy.CREATED)]
        assert report.sent == [V1]
        version = watcher.store.current(PLAN_ID)
        assert (version.number, version.author, version.reason, version.message_id) == \
            (1, SELLER, "plan email", SELLER_EMAIL_ID.strip("<>"))
        assert watcher.store.plan_state(PLAN_ID) == "open"
    letter = sent_mail(home)[V1]
    assert letter["In-Reply-To"] == SELLER_EMAIL_ID
    assert SELLER_EMAIL_ID in letter["References"]
    assert letter["Subject"] == "Re: Globex + Northwind: our plan to a decision by April 30"
    assert addresses(letter, "From") == [SELLER]
    assert addresses(letter, "To") == [PRIYA, TOM] and addresses(letter, "Cc") == [ANA]
    assert text_of(letter).startswith("Hi Priya, Tom,")
    assert "M3  Pilot on last quarter\u2019s orders - Globex (Priya) - Fri 9 Apr 2027" in text_of(letter)
    pdfs = [p for p in letter.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert [p.get_filename() for p in pdfs] == [f"Mutual Plan {PLAN_ID} v1.pdf"]
    pages = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdfs[0].get_content())).pages)
    assert "Globex Industries" in pages and "Discovery call with the supply chain team" in pages
    assert folder_count(home, "Processed") == 1  # the seller's Bcc copy, filed

    # The same email again (a second copy of the Bcc): nothing more happens.
    inbox.deliver(fixture("desktop-table"))
    with loop(home, clock) as watcher:
        report = watcher.poll()
        assert [d for _, d, _ in report.handled] == [policy.DUPLICATE]
        assert report.sent == [] and watcher.store.plan_ids() == [PLAN_ID]


def test_a_plan_email_that_does_not_parse_answers_the_seller_alone(home: Home) -> None:
    clock = Clock()
    Stamped(home.mail_dir).deliver(fixture("desktop-bad-due"))
    with loop(home, clock) as watcher:
        report = watcher.poll()
        assert [d for _, d, _ in report.handled] == [policy.HELD]
        assert "line 10: due date 'end of March' does not parse" in report.handled[0][2]
        assert watcher.store.plan_ids() == []
        assert len(report.sent) == 1
    mail = sent_mail(home)
    assert list(mail) == report.sent  # the only email: nothing reached the prospect
    answer = mail[report.sent[0]]
    key = "SN6PR05MBD6C4A0E9778C1A136412@SN6PR05MBB8C1.namprd05.prod.outlook.com"
    assert answer["Message-ID"] == f"<mutualplan.plan_error.{hashlib.sha256(key.encode()).hexdigest()[:16]}" \
                                   "@northwind.example>"
    assert addresses(answer, "To") == [SELLER] and answer["Cc"] is None
    assert answer["In-Reply-To"] == f"<{key}>"
    assert answer["Auto-Submitted"] == "auto-generated" and answer["X-Mutual-Plan"]
    assert answer["Subject"] == "Not a plan yet: [Mutual Plan] Globex: draft plan"
    body = text_of(answer)
    assert "no letter was sent to Priya Raman, Tom Becker" in body
    line = "    | M2 | Demo for Globex IT | Northwind | end of March |"
    assert f"Line 10 of the plan, as read from your email:\n\n{line}" in body
    assert "What is wrong: due date 'end of March' does not parse." in body
    assert "T-30d" in body  # how to write it
    assert folder_count(home, "Held") == 1
    with loop(home, clock) as watcher:  # answered once
        clock.advance(minutes=5)
        assert watcher.poll().sent == []
    # Our own answer landing in the watched Inbox (the seller forwards it, or files it there) is never a plan.
    assert _incoming(bytes(answer)).kind == "own"


def test_the_seller_answers_the_note_with_the_plan_corrected(home: Home) -> None:
    clock = Clock()
    # This plan names no `Prospect:`: the company comes from the contacts' domain, "Globex".
    plan_id = "globex-northwind-2027"
    v1 = f"<plan.{plan_id}.v1@northwind.example>"
    inbox = Stamped(home.mail_dir)
    inbox.deliver(fixture("desktop-bad-due"))
    with loop(home, clock) as watcher:
        [note_id] = watcher.poll().sent
    first_id = "<SN6PR05MBD6C4A0E9778C1A136412@SN6PR05MBB8C1.namprd05.prod.outlook.com>"
    # The seller answers the note (to themselves, as a reply does) with the whole plan again, the date fixed,
    # in plain text this time, the note quoted under it.
    plan_text = ("Target: April 30, 2027\n\n## Timeline\n| # | Activity | Owner | Due |\n|---|---|---|---|\n"
                 "| M1 | Discovery call with the supply chain team | Joint | T-45d |\n"
                 "| M2 | Demo for Globex IT | Northwind | 2027-03-23 |\n"
                 "| M3 | Signed order form | Globex (Tom Becker) | T |")
    note = sent_mail(home)[note_id]
    correction = EmailMessage()
    correction["From"] = f"Jordan Lee <{SELLER}>"
    correction["To"] = f"Jordan Lee <{SELLER}>"
    correction["Subject"] = f"RE: {note['Subject']}"
    correction["Date"] = format_datetime(clock.advance(hours=1))
    correction["Message-ID"] = "<fix1@northwind.example>"
    correction["In-Reply-To"] = note_id
    correction["References"] = f"{first_id} {note_id}"
    correction.set_content(f"Fixed, thanks.\n\n{plan_text}\n\nBest,\nJordan\n\nOn Mon, 1 Mar 2027, Jordan Lee wrote:\n"
                           + "\n".join(f"> {line}" for line in text_of(note).split("\n")))
    inbox.deliver(bytes(correction))
    with loop(home, clock) as watcher:
        report = watcher.poll()
        assert [(d, r.split(";")[0]) for _, d, r in report.handled] == [
            (policy.CREATED, f"made plan {plan_id} version 1 from the seller's email (correction)")]
        plan = watcher.store.current(plan_id).plan
        assert resolve(plan)["M2"] == date(2027, 3, 23)
        assert [c.email for c in plan.prospect.contacts] == [PRIYA, TOM]
        assert report.sent == [v1]
    letter = sent_mail(home)[v1]
    # To the people of the first email, in its thread, under its subject.
    assert addresses(letter, "To") == [PRIYA, TOM]
    assert letter["In-Reply-To"] == first_id
    assert letter["Subject"] == "Re: [Mutual Plan] Globex: draft plan"
    # Priya answering the first email (which made no plan itself) is now in this plan's thread.
    inbox.deliver(outlook_reply(("Priya Raman", PRIYA), "Confirmed.", message_id="<p9@globex.example>",
                                when=clock.advance(hours=1), in_reply_to=first_id, references=[first_id],
                                subject="[Mutual Plan] Globex: draft plan", to=[SELLER]))
    with loop(home, clock) as watcher:
        assert [d for _, d, _ in watcher.poll().handled] == [policy.CONFIRMED]


def test_the_prospect_answering_the_sellers_email_is_in_the_plans_thread(home: Home) -> None:
    clock = Clock()
    inbox = Stamped(home.mail_dir)
    inbox.deliver(fixture("desktop-table"))
    subject = "Globex + Northwind: our plan to a decision by April 30"
    with loop(home, clock) as watcher:
        watcher.poll()
        # Priya answers the seller's own email, not the letter: only its id is in her References.
        inbox.deliver(outlook_reply(("Priya Raman", PRIYA), "Confirmed, thanks Jordan.\n\nPriya",
                                    message_id="<p1@globex.example>", when=clock.advance(hours=2),
                                    in_reply_to=SELLER_EMAIL_ID, references=[SELLER_EMAIL_ID], subject=subject,
                                    to=[SELLER]))
        report = watcher.poll()
        assert [(d, r) for _, d, r in report.handled] == [
            (policy.CONFIRMED, f"{PRIYA} confirmed version 1; waiting on {TOM}")]
        inbox.deliver(outlook_reply(("Tom Becker", TOM), "Confirmed.", message_id="<t1@globex.example>",
                                    when=clock.advance(hours=1), in_reply_to=V1, references=[SELLER_EMAIL_ID, V1],
                                    subject=subject, to=[SELLER]))
        report = watcher.poll()
        assert [d for _, d, _ in report.handled] == [policy.AGREED]
        assert watcher.store.plan_state(PLAN_ID) == "agreed"


def test_the_sellers_later_email_changes_the_plan_and_needs_the_prospect_again(home: Home) -> None:
    clock = Clock()
    inbox = Stamped(home.mail_dir)
    inbox.deliver(fixture("desktop-table"))
    subject = "Globex + Northwind: our plan to a decision by April 30"
    with loop(home, clock) as watcher:
        watcher.poll()
        inbox.deliver(outlook_reply(("Priya Raman", PRIYA), "Confirmed.", message_id="<p1@globex.example>",
                                    when=clock.advance(hours=2), in_reply_to=V1, references=[SELLER_EMAIL_ID, V1],
                                    subject=subject, to=[SELLER]))
        watcher.poll()
        # The seller writes in the thread, reply-all, as in any email.
        inbox.deliver(outlook_reply(
            ("Jordan Lee", SELLER), "Priya, Tom,\n\nPlease move M3 to April 16, and add a security review before "
            "the pilot.\n\nJordan", message_id="<s2@northwind.example>", when=clock.advance(hours=3),
            in_reply_to="<p1@globex.example>", references=[SELLER_EMAIL_ID, V1, "<p1@globex.example>"],
            subject=subject, to=[PRIYA, TOM, ANA]))
        report = watcher.poll()
        assert [d for _, d, _ in report.handled] == [policy.APPLIED]
        assert "requested by the seller" in report.handled[0][2]
        assert report.drafted == [V2]  # the review policy: the seller sends it from Drafts
        v2 = watcher.store.current(PLAN_ID)
        assert (v2.number, v2.author, v2.reason) == (2, SELLER, "seller email")
        assert [c.to_dict() for c in v2.changes] == [
            {"op": "move", "milestone": "M3", "due": "2027-04-16"},
            {"op": "add", "title": "Security review", "owner": None, "due": None, "before": "M3"}]
        assert [m.id for m in v2.plan.milestones][:4] == ["M1", "M2", "M8", "M3"]
        # Priya's confirmation was of version 1: version 2 waits on both again.
        assert watcher.store.confirmations(PLAN_ID, 2) == {}
        assert watcher.store.plan_state(PLAN_ID) == "open"
        sent = watcher.approve(PLAN_ID)
        assert sent == [V2]
    update = sent_mail(home)[V2]
    assert addresses(update, "To") == [PRIYA, TOM] and addresses(update, "Cc") == [ANA]
    assert update["In-Reply-To"] == "<s2@northwind.example>"
    body = text_of(update)
    assert body.startswith("Hi Priya, Tom,\n\nI have updated our Mutual Plan. Here is version 2;")
    assert "Thank you for your reply" not in body and "In return" not in body


def test_the_sellers_change_to_an_agreed_plan_reopens_it(home: Home) -> None:
    home.settings_path.write_text(SETTINGS_TOML.format(extra=TRUSTED).replace('changes = "review"', 'changes = "auto"'),
                                  encoding="utf-8")
    clock = Clock()
    inbox = Stamped(home.mail_dir)
    inbox.deliver(fixture("desktop-table"))
    subject = "Globex + Northwind: our plan to a decision by April 30"
    with loop(home, clock) as watcher:
        watcher.poll()
        for who, address in (("Priya Raman", PRIYA), ("Tom Becker", TOM)):
            inbox.deliver(outlook_reply((who, address), "Confirmed.", message_id=f"<c.{address}>",
                                        when=clock.advance(hours=1), in_reply_to=V1, references=[V1],
                                        subject=subject, to=[SELLER]))
        watcher.poll()
        assert watcher.store.plan_state(PLAN_ID) == "agreed"
        # The prospect asking for a change to the agreed plan waits for the seller ...
        inbox.deliver(outlook_reply(("Priya Raman", PRIYA), "Please move M5 to April 26.",
                                    message_id="<p2@globex.example>", when=clock.advance(hours=1), in_reply_to=V1,
                                    references=[V1], subject=subject, to=[SELLER]))
        assert [d for _, d, _ in watcher.poll().handled] == [policy.HELD]
        # ... and the seller making it is the seller's call: version 2, sent, and the plan open again.
        inbox.deliver(outlook_reply(("Jordan Lee", SELLER), "Let's move M5 to April 26.",
                                    message_id="<s3@northwind.example>", when=clock.advance(hours=1),
                                    in_reply_to="<p2@globex.example>", references=[V1, "<p2@globex.example>"],
                                    subject=subject, to=[PRIYA, TOM]))
        report = watcher.poll()
        assert [d for _, d, _ in report.handled] == [policy.APPLIED]
        assert V2 in report.sent
        assert watcher.store.plan_state(PLAN_ID) == "open"
        assert resolve(watcher.store.current(PLAN_ID).plan)["M5"] == date(2027, 4, 26)


def test_an_unauthenticated_plan_email_makes_no_plan(home: Home) -> None:
    home.settings_path.write_text(
        SETTINGS_TOML.format(extra='trusted_authserv_ids = ["mx.northwind.example"]\n'), encoding="utf-8")
    MaildirMailbox(home.mail_dir).deliver(fixture("web-markdown"))
    with loop(home, Clock()) as watcher:
        report = watcher.poll()
        assert [d for _, d, _ in report.handled] == [policy.HELD]
        assert "not authenticated" in report.handled[0][2]
        assert watcher.store.plan_ids() == []
    [answer] = sent_mail(home).values()
    assert addresses(answer, "To") == [SELLER]
    assert "not authenticated" in text_of(answer)


# --- the policy for the seller's own messages ----------------------------------------------------------


def _facts(**kw) -> policy.Facts:
    base = dict(sender=SELLER, sender_is_seller=True, sender_confirms=False, plan_state="open", replied_version=1,
                current_version=1, intent="amend", changes=(Change(op="move", milestone="M3", due="2027-04-16"),),
                unresolved=())
    return policy.Facts(**{**base, **kw})


def test_the_seller_edits_like_a_prospect_but_neither_confirms_nor_withdraws() -> None:
    decision = policy.decide(_facts())
    assert (decision.disposition, decision.by_seller, decision.reopen) == (policy.APPLIED, True, False)
    assert "the new version needs the prospect's confirmation" in decision.reason
    agreed = policy.decide(_facts(plan_state="agreed"))
    assert (agreed.disposition, agreed.reopen) == (policy.APPLIED, True)
    assert policy.decide(_facts(intent="confirm", changes=())).disposition == policy.NOTED
    withdrawn = policy.decide(_facts(intent="decline", changes=()))
    assert (withdrawn.disposition, withdrawn.decline) == (policy.NOTED, False)
    # A prospect marking a step done on an agreed plan is progress; moving a step of it waits for the seller.
    done = (Change(op="status", milestone="M1", status="done"),)
    prospect = dict(sender=PRIYA, sender_is_seller=False, sender_confirms=True, plan_state="agreed")
    assert policy.decide(_facts(**prospect, changes=done)).disposition == policy.APPLIED
    assert policy.decide(_facts(**prospect, changes=done)).reopen is False
    assert policy.decide(_facts(**prospect)).disposition == policy.HELD
