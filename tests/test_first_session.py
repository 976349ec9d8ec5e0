"""What a new seller sees in a first session, README in hand: errors that name what is wrong (brackets and
all), settings typos caught, hints that work, and no line said twice."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main

EXAMPLE = Path(__file__).parent / "fixtures" / "example-plan.md"
PLAN_ID = "acme-northwind-2027"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    result = CliRunner().invoke(main, ["--home", str(root), "init"])
    assert result.exit_code == 0, result.output
    return root


def run(home: Path, *args: str):
    return CliRunner().invoke(main, ["--home", str(home), *args], env={"COLUMNS": "200"})


def settings_with(home: Path, old: str, new: str) -> None:
    path = home / "mutualplan.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# --- errors keep their brackets ----------------------------------------------------------------------------


def test_an_error_naming_a_settings_section_keeps_the_section(home: Path) -> None:
    settings_with(home, '# backend = "maildir"', 'backend = "mialdir"')
    result = run(home, "status")
    assert result.exit_code == 2
    assert "[mailbox] backend 'mialdir' is unknown" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_section_is_named(home: Path) -> None:
    settings_with(home, "[seller]", "[seler]")
    result = run(home, "status")
    assert result.exit_code == 2
    assert "unknown section [seler]" in result.output


def test_a_hint_naming_a_settings_section_keeps_it(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    start, end = text.index("seller:"), text.index("prospect:")
    plan = tmp_path / "no-seller.md"
    plan.write_text(text[:start] + text[end:], encoding="utf-8")
    # Outside any home: nothing to fall back on.
    result = CliRunner().invoke(main, ["check", str(plan)], env={"MUTUALPLAN_HOME": str(tmp_path / "none")})
    assert result.exit_code == 2
    assert "the plan names no seller" in result.output
    assert "set [seller] in mutualplan.toml" in result.output


def _without_seller(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    start, end = text.index("seller:"), text.index("prospect:")
    plan = tmp_path / "no-seller.md"
    plan.write_text(text[:start] + text[end:], encoding="utf-8")
    return plan


@pytest.mark.parametrize("command", [["check", "--json"], ["show", "--json"], ["parse-reply"]])
def test_a_plan_without_a_seller_block_takes_the_homes_seller_in_every_command(home: Path, tmp_path: Path,
                                                                               command: list[str]) -> None:
    settings_with(home, '# company = "Northwind Analytics"', 'company = "Northwind Analytics"')
    settings_with(home, '# name = "Jordan Lee"', 'name = "Ines Okafor"')
    settings_with(home, '# email = "jordan.lee@northwind.example"', 'email = "ines@kestrel.example"')
    plan = _without_seller(tmp_path)
    args = [command[0], str(plan), *command[1:]]
    if command[0] == "parse-reply":
        reply = tmp_path / "reply.eml"
        reply.write_bytes(b"From: someone@elsewhere.example\nTo: ines@kestrel.example\nSubject: Re: plan\n\n"
                          b"Confirmed.\n")
        args = ["parse-reply", str(plan), str(reply), "--json"]
    result = run(home, *args)
    assert result.exit_code in (0, 1), result.output
    assert "names no seller" not in result.output


def test_render_of_a_plan_without_a_seller_block_signs_with_the_homes_seller(home: Path, tmp_path: Path) -> None:
    settings_with(home, '# company = "Northwind Analytics"', 'company = "Northwind Analytics"')
    settings_with(home, '# name = "Jordan Lee"', 'name = "Ines Okafor"')
    settings_with(home, '# email = "jordan.lee@northwind.example"', 'email = "ines@kestrel.example"')
    out = tmp_path / "letter.html"
    result = run(home, "render", str(_without_seller(tmp_path)), "--out", str(tmp_path / "letter.pdf"),
                 "--html", str(out), "--created", "2027-01-11T17:02:00Z")
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "Ines Okafor" in html and "ines@kestrel.example" in html


def test_a_warning_quoting_the_plan_keeps_its_brackets(tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        "A shared demand model", "A shared demand model for [company]"), encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(plan), "--today", "2027-01-04"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "'[company]'" in result.output


# --- a typo in mutualplan.toml -----------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "named"), [
    ('# changes = "review"', 'chnages = "auto"', "[policy] has unknown setting(s) chnages"),
    ('# company = "Northwind Analytics"', 'compnay = "Northwind Analytics"', "[seller] has unknown setting(s) compnay"),
    ('# enabled = true', 'enbled = false', "[reminders] has unknown setting(s) enbled"),
    ('# letterhead = "default"', 'letterheed = "northwind"', "[letter] has unknown setting(s) letterheed"),
    ('# backend = "maildir"', 'backedn = "imap"', "[mailbox] has unknown setting(s) backedn"),
])
def test_a_misspelt_setting_is_refused_not_ignored(home: Path, old: str, new: str, named: str) -> None:
    settings_with(home, old, new)
    result = run(home, "status")
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("old", "new", "named"), [
    ("# days_before = 3", 'days_before = "three"', "[reminders] days_before must be a whole number of days"),
    ("# days_before = 3", "days_before = -3", "[reminders] days_before must be a whole number of days"),
    ("# max_messages_per_sender_per_hour = 20", 'max_messages_per_sender_per_hour = "lots"',
     "[policy] max_messages_per_sender_per_hour must be a positive whole number"),
    ("# enabled = true", 'enabled = "false"', "[reminders] enabled must be true or false"),
    ("# digest = true", 'digest = "no"', "[reminders] digest must be true or false"),
])
def test_a_setting_of_the_wrong_kind_is_named_without_a_traceback(home: Path, old: str, new: str, named: str) -> None:
    settings_with(home, old, new)
    result = run(home, "status")
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "Traceback" not in result.output


# --- hints that work ---------------------------------------------------------------------------------------


def test_archive_export_of_an_unknown_plan_lists_the_stored_ones(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    result = run(home, "archive", "export", "acme-2027", "--out", str(tmp_path / "b.zip"))
    assert result.exit_code == 2
    assert "no plan 'acme-2027' in the store" in result.output
    assert f"stored plans: {PLAN_ID}" in result.output


# --- nothing said twice ------------------------------------------------------------------------------------


def test_status_names_whom_it_waits_on_once(home: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    assert run(home, "send", PLAN_ID).exit_code == 0
    result = run(home, "status", PLAN_ID, "--today", "2027-01-12")
    assert result.exit_code == 0, result.output
    assert "waiting on dana.whitfield@acme.example, raj.patel@acme.example" in result.output
    assert len(re.findall(r"raj\.patel@acme\.example", result.output)) == 1


# --- what a plan or a reply says reaches the terminal as written -------------------------------------------


def bracketed_plan(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.md"
    plan.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        "| Pilot on Q4 data                  |", "| Pilot on Q4 data [phase 1]        |"), encoding="utf-8")
    return plan


def test_show_prints_a_title_with_brackets_whole(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["show", str(bracketed_plan(tmp_path)), "--today", "2027-01-04"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Pilot on Q4 data [phase 1]" in result.output


def test_status_prints_a_title_with_brackets_whole(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(bracketed_plan(tmp_path))).exit_code == 0
    result = run(home, "status", PLAN_ID, "--today", "2027-02-15")
    assert result.exit_code == 0, result.output
    assert "Pilot on Q4 data [phase 1]" in result.output


def test_parse_reply_prints_a_sentence_with_brackets_whole(tmp_path: Path) -> None:
    reply = tmp_path / "reply.eml"
    reply.write_bytes(
        b"From: Dana Whitfield <dana.whitfield@acme.example>\r\nTo: jordan.lee@northwind.example\r\n"
        b"Subject: Re: Mutual Plan: Acme and Northwind Analytics\r\nDate: Mon, 11 Jan 2027 10:00:00 -0800\r\n"
        b"Message-ID: <r1@acme.example>\r\nIn-Reply-To: <plan.acme-northwind-2027.v1@northwind.example>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Could your team share the deck [/slides] and [cid:image001.png] before the demo?\r\n")
    result = CliRunner().invoke(main, ["parse-reply", str(EXAMPLE), str(reply)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "the deck [/slides] and [cid:image001.png] before the demo?" in result.output


# --- a company is written without its legal form -----------------------------------------------------------


def _plan_of(prospect: str, seller: str, owners: tuple[str, str]):
    from pipeline.plan.source import parse_plan

    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in (("company: Acme Corp", f"company: {prospect}"),
                     ("company: Northwind Analytics", f"company: {seller}"),
                     ("| Acme (Dana)        |", f"| {owners[0]} |"), ("| Northwind          |", f"| {owners[1]} |"),
                     ("| Acme (", "| Buyer (")):
        assert old in text, old
        text = text.replace(old, new)
    return parse_plan(text)


@pytest.mark.parametrize(("prospect", "seller", "owners"), [
    ("株式会社さくら精機", "Brightline Software GmbH", ("さくら精機 (Dana)", "Brightline Software")),
    ("Global Logistics Ltd", "Blue River Analytics, Inc.", ("Global Logistics (Dana)", "Blue River Analytics")),
    ("ООО Ромашка", "Müller GmbH & Co. KG", ("Ромашка", "Müller")),
])
def test_an_owner_may_name_a_company_without_its_legal_form(
        prospect: str, seller: str, owners: tuple[str, str]) -> None:
    # Subjects and greetings already name the prospect so; before, the plan did not parse.
    plan = _plan_of(prospect, seller, owners)
    by_id = {m.id: plan.resolve_owner(m.owner) for m in plan.milestones}
    assert by_id["M3"].side == "buyer"
    assert by_id["M4"].side == "seller"


# --- a letter says when it cannot draw a character ---------------------------------------------------------


def test_render_warns_of_characters_no_font_draws(tmp_path: Path) -> None:
    # U+10FFFD is a private-use character no font has: the letter would show an empty box for it.
    plan = tmp_path / "plan.md"
    plan.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        "Acme wants one forecast", "Acme \U0010fffd wants one forecast"), encoding="utf-8")
    result = CliRunner().invoke(main, ["render", str(plan), "--out", str(tmp_path / "l.pdf"), "--created",
                                       "2027-01-11T17:02:00Z"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "no font here draws U+10FFFD" in result.output
    assert "empty boxes" in result.output

    as_json = CliRunner().invoke(main, ["render", str(plan), "--out", str(tmp_path / "l.pdf"), "--created",
                                        "2027-01-11T17:02:00Z", "--json"])
    assert json.loads(as_json.stdout)["missing_glyphs"] == ["U+10FFFD"]


def test_the_example_letter_draws_every_character(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["render", str(EXAMPLE), "--out", str(tmp_path / "l.pdf"), "--json",
                                       "--created", "2027-01-11T17:02:00Z"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["missing_glyphs"] == []


def test_a_letter_in_japanese_draws_every_character(tmp_path: Path) -> None:
    # scripts/setup.sh installs the font (fonts-noto-cjk); without one, the letter is boxes where names were.
    plan = tmp_path / "plan.md"
    text = EXAMPLE.read_text(encoding="utf-8").replace("company: Acme Corp", "company: 株式会社さくら精機")
    text = text.replace("{name: Raj Patel,", "{name: 田中 健一,").replace("Acme (Raj Patel)", "田中 健一")
    plan.write_text(text.replace("| Acme (", "| さくら精機 ("), encoding="utf-8")
    result = CliRunner().invoke(main, ["render", str(plan), "--out", str(tmp_path / "l.pdf"), "--json",
                                       "--created", "2027-01-11T17:02:00Z"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["missing_glyphs"] == [], "install fonts-noto-cjk (scripts/setup.sh does)"


# --- the seller's notice says it once ----------------------------------------------------------------------


def test_a_notice_of_a_reply_that_changed_nothing_says_so_once() -> None:
    from pipeline.plan.source import parse_plan
    from pipeline.render.notices import seller_notice_email

    plan = parse_plan(EXAMPLE.read_text(encoding="utf-8"))
    message = seller_notice_email(plan, version=1, created="2027-01-12T10:00:00Z",
                                  reason="raj.patel@acme.example commented; nothing changed",
                                  reply_from="raj.patel@acme.example", said="Thanks, will read it next week.")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Nothing in the plan changed: raj.patel@acme.example commented\n" in text
    assert "nothing changed" not in text.lower()
    assert "<b>Nothing in the plan changed:</b> raj.patel@acme.example commented</p>" in html


# --- a date option that is no real date --------------------------------------------------------------------


@pytest.mark.parametrize(("args", "said"), [
    (["show", str(EXAMPLE), "--today", "2027-02-30"], "'2027-02-30' is not a real date: February 2027 has 28 days"),
    (["new", "--target", "2027-13-01"], "'2027-13-01' is not a real date: a month is 01 to 12"),
    (["check", str(EXAMPLE), "--today", "next monday"], "'next monday' is not a date"),
])
def test_a_date_option_that_is_no_real_date_says_why(args: list[str], said: str) -> None:
    result = CliRunner().invoke(main, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert said in result.output
    assert "does not match the format" not in result.output


def test_status_today_that_is_no_real_date_says_why(home: Path) -> None:
    result = run(home, "status", "--today", "2027-02-29")
    assert result.exit_code == 2
    assert "'2027-02-29' is not a real date: February 2027 has 28 days" in result.output


# --- `new` after `init` -----------------------------------------------------------------------------------


def test_new_takes_the_seller_from_the_homes_settings(home: Path, tmp_path: Path) -> None:
    settings_with(home, '# company = "Northwind Analytics"', 'company = "Brightline Software GmbH"')
    settings_with(home, '# name = "Jordan Lee"', 'name = "Jürgen Weiß"')
    settings_with(home, '# email = "jordan.lee@northwind.example"', 'email = "juergen.weiss@brightline.example"')
    settings_with(home, '# timezone = "America/Los_Angeles"', 'timezone = "Europe/Berlin"')
    out = tmp_path / "plan.md"
    result = run(home, "new", "--prospect", "Lumière Électrique S.A.", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert ("  company: Brightline Software GmbH\n  name: Jürgen Weiß\n"
            "  email: juergen.weiss@brightline.example\n") in text
    assert "timezone: Europe/Berlin\n" in text
    checked = run(home, "check", str(out), "--json")
    assert not [w for w in json.loads(checked.stdout)["warnings"] if "seller" in w["message"]]
    # What the command line says wins over the settings.
    other = tmp_path / "other.md"
    assert run(home, "new", "--seller", "Brightline AG", "--out", str(other)).exit_code == 0
    assert "  company: Brightline AG\n  name: Jürgen Weiß\n" in other.read_text(encoding="utf-8")


def test_new_without_a_home_writes_the_stand_ins(tmp_path: Path) -> None:
    out = tmp_path / "plan.md"
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "nohome"), "new", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "  company: Your Company\n  name: Your Name\n" in out.read_text(encoding="utf-8")


# --- parse-reply against a stored plan ---------------------------------------------------------------------

REPLY = (b"From: Dana Whitfield <dana.whitfield@acme.example>\r\nTo: jordan.lee@northwind.example\r\n"
         b"Subject: Re: Mutual Plan: Acme and Northwind Analytics\r\nDate: Tue, 12 Jan 2027 10:00:00 -0800\r\n"
         b"Message-ID: <r2@acme.example>\r\nIn-Reply-To: <plan.acme-northwind-2027.v2@northwind.example>\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n\r\nCan we move the pilot to March 15?\r\n")


def test_parse_reply_reads_against_the_current_version_of_a_stored_plan(home: Path, tmp_path: Path) -> None:
    # After replies made new versions, the seller's own file is out of date: the stored plan is what replies answer.
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    assert run(home, "done", PLAN_ID, "M1").exit_code == 0
    reply = tmp_path / "reply.eml"
    reply.write_bytes(REPLY)
    result = run(home, "parse-reply", PLAN_ID, str(reply), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["changes"] == [{"op": "move", "milestone": "M3", "due": "2027-03-15"}]


def test_parse_reply_of_neither_a_file_nor_a_stored_plan_names_both(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    reply = tmp_path / "reply.eml"
    reply.write_bytes(REPLY)
    result = run(home, "parse-reply", "acme-2027", str(reply))
    assert result.exit_code == 2
    assert "acme-2027: no such plan file, and no stored plan of that id" in result.output
    assert f"stored plans: {PLAN_ID}" in result.output


def _html_words(html: str) -> str:
    from bs4 import BeautifulSoup

    return " ".join(BeautifulSoup(html, "html.parser").get_text().split())


@pytest.mark.parametrize("confirmed_by", [None, ["Dana Whitfield"], ["Dana Whitfield", "Raj Patel"]])
def test_the_agreed_email_reads_the_same_in_html_as_in_text(confirmed_by: list[str] | None) -> None:
    from pipeline.plan.source import parse_plan
    from pipeline.render.email import agreed_email

    plan = parse_plan(EXAMPLE.read_text(encoding="utf-8"))
    message = agreed_email(plan, version=2, created="2027-01-13T10:00:00Z", pdf=None, confirmed_by=confirmed_by)
    text = " ".join(message.get_body(("plain",)).get_content().split())
    html = _html_words(message.get_body(("html",)).get_content())
    said = "confirmed version 2 of our Mutual Plan"
    assert said in text
    assert said in html  # the HTML part glued "confirmedversion"


def test_a_notice_of_a_reply_that_made_a_version_does_not_say_the_reply_was_about_it() -> None:
    # The reply answered version 1; "wrote about ... (version 2)" read as if it had answered the version it made.
    from pipeline.plan.source import parse_plan
    from pipeline.render.notices import seller_notice_email

    plan = parse_plan(EXAMPLE.read_text(encoding="utf-8"))
    message = seller_notice_email(plan, version=2, created="2027-01-12T10:00:00Z", changed=True,
                                  reason="applied what could be mapped; these sentences need you",
                                  reply_from="raj.patel@acme.example", said="Move the pilot. And the board?",
                                  notes=["And the board?"])
    for part in ("plain", "html"):
        body = message.get_body((part,)).get_content()
        words = " ".join(body.split()) if part == "plain" else _html_words(body)
        assert "raj.patel@acme.example wrote about Mutual Plan acme-northwind-2027." in words
        assert "(version 2)" not in words
        assert "Version 2 was made from it" in words
