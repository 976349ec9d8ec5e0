"""`check`: the methodology warnings of the spec, and the exit codes of the command."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import main
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


def test_the_example_plan_is_clean_before_it_starts() -> None:
    assert codes(EXAMPLE, date(2027, 1, 11)) == []


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
    ])
    messages = {w.code: w for w in check(parse_plan(WEAK), date(2027, 1, 11))}
    assert messages["after-target"].line == 18  # the M3 row
    assert "M3" in messages["after-target"].message and "2027-04-05" in messages["after-target"].message


def test_done_steps_are_not_past_due() -> None:
    timeline = EXAMPLE[EXAMPLE.index("## Timeline"):EXAMPLE.index("### After the PO")]
    with_status = (
        "## Timeline\n| # | Activity | Owner | Due | Status |\n|--|--|--|--|--|\n"
        "| M1 | Discovery workshop | Joint | T-60d | done |\n"
        "| M2 | Technical demo for Acme IT | Northwind | 2027-02-10 | confirmed |\n"
        "| M5 | Legal review of the MSA | Acme (Kim Osei) | T-14d | |\n"
        "| M6 | Signed order form / PO | Acme (Raj Patel) | T | |\n\n"
    )
    text = EXAMPLE.replace(timeline, with_status)
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
    clean.write_text(EXAMPLE, encoding="utf-8")
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
        assert check(plan, date(2027, 1, 4)) == []
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
