"""`check`: the methodology warnings of the spec, and the exit codes of the command."""

from __future__ import annotations

import ast
import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.cli.plans import starter_plans
from pipeline.plan.check import check
from pipeline.plan.source import parse_plan

EXAMPLE = (Path(__file__).parent / "fixtures" / "example-plan.md").read_text(encoding="utf-8")

WEAK = """---
seller: {company: Northwind Analytics, name: Jordan Lee, email: jordan@northwind.example}
prospect:
  company: Acme Corp
  contacts:
    - {name: Dana Whitfield, email: dana@acme.example, role: champion}
target: 2027-03-31
---

## Vision
One forecast.

## Timeline
| # | Activity | Owner | Due |
|---|----------|-------|-----|
| M1 | Discovery workshop | Joint | 2027-01-05 |
| M2 | Pilot | | T-10d |
| M3 | Board review | Acme | T+5d |
"""


def codes(text: str, today: date) -> list[str]:
    return [w.code for w in check(parse_plan(text), today)]


# The example's discovery workshop (T-60d) falls on Saturday 30 January 2027; two days later it is a Monday.
CLEAN = EXAMPLE.replace("| T-60d     |", "| T-58d     |")


def test_the_example_plan_is_clean_before_it_starts_but_for_a_saturday() -> None:
    assert codes(CLEAN, date(2027, 1, 11)) == []
    [weekend] = check(parse_plan(EXAMPLE), date(2027, 1, 11))
    assert weekend.code == "weekend"
    assert weekend.line == 41  # the M1 row
    assert "M1" in weekend.message and "Saturday" in weekend.message and "2027-01-30" in weekend.message


def test_a_weak_plan_gets_every_warning_that_applies() -> None:
    found = codes(WEAK, date(2027, 1, 11))
    assert sorted(found) == sorted([
        "no-decision-maker",   # Dana is only a champion
        "no-confirmer",        # nobody has confirms: true
        "no-legal-step",       # no legal / procurement step
        "no-after-po",         # every step is before the PO
        "no-signature-step",   # nothing on the target, nothing signed
        "after-target",        # M3 is before the PO but due T+5d
        "no-owner",            # M2
        "past-due",            # M1 was due 2027-01-05
        "no-value",            # no Business value section
        "no-call-to-action",
        "step-count",          # 3 steps
        "weekend",             # M2 is due T-10d, Sunday 2027-03-21
    ])
    messages = {w.code: w for w in check(parse_plan(WEAK), date(2027, 1, 11))}
    assert messages["after-target"].line == 18  # the M3 row
    assert "M3" in messages["after-target"].message and "2027-04-05" in messages["after-target"].message


def test_done_steps_are_not_past_due() -> None:
    timeline = CLEAN[CLEAN.index("## Timeline"):CLEAN.index("### After the PO")]
    with_status = (
        "## Timeline\n| # | Activity | Owner | Due | Status |\n|--|--|--|--|--|\n"
        "| M1 | Discovery workshop | Joint | T-60d | done |\n"
        "| M2 | Technical demo for Acme IT | Northwind | 2027-02-10 | confirmed |\n"
        "| M5 | Legal review of the MSA | Acme (Kim Osei) | T-14d | |\n"
        "| M6 | Signed order form / PO | Acme (Raj Patel) | T | |\n\n"
    )
    text = CLEAN.replace(timeline, with_status)
    # On 2027-02-01 M1 (due 2027-01-30) is past but done; nothing else is due yet.
    assert "past-due" not in codes(text, date(2027, 2, 1))
    # On 2027-02-11 M2 (confirmed, not done) is past due.
    assert codes(text, date(2027, 2, 11)).count("past-due") == 1


def test_too_many_steps() -> None:
    rows = "\n".join(f"| M{i} | Step {i} | Joint | T-{40 - i}d |" for i in range(8, 33))
    text = EXAMPLE.replace("| M6 | Signed order form / PO", rows + "\n| M6 | Signed order form / PO")
    assert "step-count" in codes(text, date(2027, 1, 1))


def test_exit_codes(tmp_path: Path) -> None:
    clean, weak, broken = tmp_path / "clean.md", tmp_path / "weak.md", tmp_path / "broken.md"
    clean.write_text(CLEAN, encoding="utf-8")
    weak.write_text(WEAK, encoding="utf-8")
    broken.write_text(WEAK.replace("T-10d", "soon"), encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(main, ["check", str(clean), "--today", "2027-01-11"]).exit_code == 0
    result = runner.invoke(main, ["check", str(weak), "--today", "2027-01-11"])
    assert result.exit_code == 1
    assert f"{weak}:18:" in result.output
    assert runner.invoke(main, ["check", str(broken)]).exit_code == 2


def test_starters_carry_the_standard_elements_and_pass_check(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("enterprise", "smb"):
        out = tmp_path / f"{name}.md"
        result = runner.invoke(main, ["new", "--template", name, "--out", str(out), "--target", "2027-06-30"])
        assert result.exit_code == 0, result.output
        plan = parse_plan(out.read_text(encoding="utf-8"))
        # What is left to do is to fill in the stand-ins (and move the steps the reverse timeline put on a weekend).
        assert {w.code for w in check(plan, date(2027, 1, 4))} == {"weekend"}
        assert {w.code for w in check(plan, date(2027, 1, 4), starters=starter_plans())} == {"placeholder", "weekend"}
        titles = " ".join(m.title.lower() for m in plan.milestones)
        for element in ("mutually agreed plan", "visionmatch", "demonstration", "reference call", "proposal",
                        "budget confirmation", "terms and conditions", "kick-off", "onboarding", "renewal"):
            assert element in titles, (name, element)
    enterprise = parse_plan((tmp_path / "enterprise.md").read_text(encoding="utf-8")).milestones
    titles = " ".join(m.title.lower() for m in enterprise)
    for element in ("pilot", "executive briefing", "live meeting with executive", "decision criteria",
                    "access to the decision-makers", "legal review", "verbal agreement", "signed contract",
                    "user ids", "delivery schedule", "relationship plan", "usage reports", "feedback"):
        assert element in titles, element
    assert runner.invoke(main, ["new", "--out", str(tmp_path / "enterprise.md")]).exit_code == 2  # no overwrite


# --- weekends ----------------------------------------------------------------------------------------------

def test_a_step_due_on_a_weekend_says_the_date_and_the_weekday() -> None:
    text = CLEAN.replace("| 2027-02-10|", "| 2027-02-14|")  # a Sunday
    [weekend] = check(parse_plan(text), date(2027, 1, 11))
    assert (weekend.code, weekend.line) == ("weekend", 42)
    assert "M2" in weekend.message and "Sunday" in weekend.message and "2027-02-14" in weekend.message
    # Done, dropped or already past: nothing to move.
    timeline = CLEAN[CLEAN.index("## Timeline"):CLEAN.index("### After the PO")]
    for status in ("done", "dropped"):
        table = (
            "## Timeline\n| # | Activity | Owner | Due | Status |\n|--|--|--|--|--|\n"
            "| M1 | Discovery workshop | Joint | T-58d | done |\n"
            f"| M2 | Technical demo for Acme IT | Northwind | 2027-02-14 | {status} |\n"
            "| M5 | Legal review of the MSA | Acme (Kim Osei) | T-14d | |\n"
            "| M6 | Signed order form / PO | Acme (Raj Patel) | T | |\n\n"
        )
        assert "weekend" not in codes(CLEAN.replace(timeline, table), date(2027, 1, 11)), status
    assert "weekend" not in codes(text, date(2027, 2, 15))


# --- placeholders ------------------------------------------------------------------------------------------

def _placeholders(text: str, **kwargs: object) -> list[tuple[str, int | None]]:
    found = check(parse_plan(text), date(2027, 1, 11), source=text, **kwargs)  # type: ignore[arg-type]
    return [(w.message, w.line) for w in found if w.code == "placeholder"]


@pytest.mark.parametrize(
    ("old", "new", "placeholder", "line"),
    [
        ("Acme wants one forecast", "<Prospect> wants one forecast", "<Prospect>", 21),
        ("- A shared demand model", "- A shared demand model for [Company]", "[Company]", 28),
        ("Dana to confirm", "{{name}} to confirm", "{{name}}", 54),
        ("Cut expedited freight by 40%", "Cut expedited freight by TBD", "TBD", 31),
        ("| Reference call with a customer    |", "| Reference call with XXX |", "XXX", 44),
        ("title: Counsel,", "title: tbd,", "tbd", 15),
        ("## Solutions", "## Risks\nLorem ipsum dolor sit amet.\n\n## Solutions", "Lorem ipsum", 28),
        ("  address: [200 Harbor Way, Portland, OR 97201]", "  address: [<Street>, Portland, OR 97201]",
         "<Street>", 11),
        ("Acme wants one forecast", "$prospect wants one forecast", "$prospect", 21),
    ],
)
def test_a_placeholder_left_in_a_plan_is_named_with_its_line(old: str, new: str, placeholder: str, line: int) -> None:
    assert old in CLEAN
    found = _placeholders(CLEAN.replace(old, new, 1))
    assert len(found) == 1, found
    message, at = found[0]
    assert repr(placeholder) in message and at == line, (message, at)


def test_markdown_that_only_looks_like_a_placeholder_is_not_one() -> None:
    text = CLEAN.replace(
        "- A shared demand model, refreshed nightly from the ERP",
        "- A shared demand model ([details](https://example.org/model)), see [the notes][n] and [^1]\n"
        "- Questions to <dana.whitfield@acme.example> or <https://example.org>; a line<br>break\n"
        "- [x] SOC 2 report sent, [ ] pen test; costs $2.1M, about $840k, in 3 <= 5 weeks\n\n"
        "[n]: https://example.org/notes",
    )
    assert _placeholders(text) == []


def test_the_starters_stand_ins_are_placeholders_until_replaced(tmp_path: Path) -> None:
    out = tmp_path / "smb.md"
    runner = CliRunner()
    made = runner.invoke(main, ["new", "--template", "smb", "--prospect", "Globex Ltd", "--seller", "Initech",
                                "--seller-name", "Sam Ruiz", "--seller-email", "sam@initech.example",
                                "--target", "2027-06-30", "--out", str(out)])
    assert made.exit_code == 0, made.output
    text = out.read_text(encoding="utf-8")
    found = _placeholders(text, starters=starter_plans())
    said = " ".join(message for message, _ in found)
    for stand_in in ("Owner Name", "owner@prospect.example", "Champion Name", "Street and number", "Postcode",
                     "What Globex Ltd wants to be true, and why we are the way there.", "What we deliver against it"):
        assert repr(stand_in) in said, stand_in
    lines = text.split("\n")
    for message, line in found:
        quoted = re.search(r" holds (?:the placeholder )?('.*?'|\".*?\")(?: from the starter plan)?: ", message)
        assert quoted and line is not None and ast.literal_eval(quoted.group(1)) in lines[line - 1], message
    # The CLI says so, with the file and line, and exits 1.
    result = runner.invoke(main, ["check", str(out), "--today", "2027-01-04"])
    assert result.exit_code == 1
    assert f"{out}:11: " in result.output and "'Owner Name'" in result.output and "(placeholder)" in result.output
    # The seller's own values given to `new` are not stand-ins: the stand-ins are only the starter's own.
    assert "Initech" not in said and "Sam Ruiz" not in said and "Globex Ltd'" not in said


def test_every_warning_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    part = readme[readme.index("### What `check` says"):]
    part = part[:part.index("\n## ")]
    source = (Path(__file__).parent.parent / "pipeline" / "plan" / "check.py").read_text(encoding="utf-8")
    codes_used = set(re.findall(r'Warning\(\s*"([a-z-]+)"', source))
    assert len(codes_used) >= 18
    for code in codes_used:
        assert f"| `{code}` |" in part, code


def test_a_starter_line_that_is_only_a_company_is_no_stand_in() -> None:
    from pipeline.plan.placeholders import stand_ins

    starter = parse_plan(CLEAN.replace("- A shared demand model, refreshed nightly from the ERP",
                                       "- Acme Corp\n- A model for Acme Corp, refreshed nightly"))
    patterns = stand_ins([starter]).lines
    assert not any(p.fullmatch("Anything at all") for p in patterns)
    # The company is a wildcard in the lines that hold it: the seller fills it in first.
    assert any(p.fullmatch("A model for Globex, refreshed nightly") for p in patterns)
