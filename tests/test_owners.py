"""Owners name contacts as people write names: without accents, in any script, with or without the company."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipeline.errors import PlanError
from pipeline.loop.reminders import recipients
from pipeline.plan.check import check
from pipeline.plan.model import Owner, owner_text
from pipeline.plan.source import parse_plan
from pipeline.replies.parties import resolve_person

EXAMPLE = (Path(__file__).parent / "fixtures" / "example-plan.md").read_text(encoding="utf-8")


def _edit(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


# The champion and the counsel renamed: a Latin name with accents, a Chinese name.
PEOPLE = _edit(
    EXAMPLE,
    ("{name: Dana Whitfield, title: VP Operations, email: dana.whitfield@acme.example",
     "{name: Zoë Ångström, title: VP Operations, email: zoe@acme.example"),
    ("{name: Kim Osei, title: Counsel, email: kim.osei@acme.example",
     "{name: 李雷, title: Counsel, email: li@acme.example"),
    ("| Acme (Dana)        |", "| Zoe Angstrom |"),
    ("| Acme (Kim Osei)    |", "| 李雷 |"),
    ("Dana to confirm", "Zoë to confirm"),
)


def test_an_owner_without_accents_names_the_contact_with_them() -> None:
    plan = parse_plan(PEOPLE)  # before, "Zoe Angstrom" named nobody and the plan did not parse
    assert plan.resolve_owner("Zoe Angstrom") == Owner("buyer", "Zoë Ångström")
    assert plan.resolve_owner("zoë").side == "buyer"
    assert plan.resolve_owner("ANGSTROM") == Owner("buyer", "Zoë Ångström")
    assert owner_text(plan, "zoe angstrom") == "Acme (Zoë Ångström)"


def test_an_owner_in_another_script_names_the_contact() -> None:
    plan = parse_plan(PEOPLE)
    assert plan.resolve_owner("李雷") == Owner("buyer", "李雷")
    assert plan.resolve_owner("Acme (李雷)").side == "buyer"
    assert plan.resolve_owner("Acme（李雷）").side == "buyer"  # full-width parentheses, as a CJK keyboard types them
    assert owner_text(plan, "李雷") == "Acme (李雷)"
    with pytest.raises(PlanError, match="names nobody"):
        plan.resolve_owner("韩梅梅")


def test_check_knows_the_contacts_an_owner_names() -> None:
    plan = parse_plan(_edit(PEOPLE, ("| Zoe Angstrom |", "| Acme (Zoe) |")))
    assert [w.message for w in check(plan, date(2027, 1, 11)) if w.code != "weekend"] == []
    # The legal contact owns a step whose title says nothing of legal: that is the legal step.
    unworded = parse_plan(_edit(PEOPLE, ("Legal review of the MSA", "Read the paper")))
    assert "no-legal-step" not in [w.code for w in check(unworded, date(2027, 1, 11))]
    accented = parse_plan(
        _edit(EXAMPLE, ("{name: Kim Osei,", "{name: Zoë Ångström,"), ("Legal review of the MSA", "Read the paper"),
              ("| Acme (Kim Osei)    |", "| Acme (Zoe Angstrom) |"))
    )
    assert "no-legal-step" not in [w.code for w in check(accented, date(2027, 1, 11))]


def test_check_warns_when_an_owner_names_someone_who_is_not_a_contact() -> None:
    plan = parse_plan(_edit(EXAMPLE, ("| Acme (Dana)        |", "| Buyer (Nobody Here) |")))
    found = [w for w in check(plan, date(2027, 1, 11)) if w.code == "unknown-person"]
    assert len(found) == 1
    assert found[0].line == 43  # the M3 row
    assert "M3" in found[0].message and "'Nobody Here'" in found[0].message
    assert "not a contact" in found[0].message
    # The seller's own people are not listed in a plan: "Northwind (Sam)" is no warning.
    seller_side = parse_plan(_edit(EXAMPLE, ("| Northwind          | M3+3d", "| Northwind (Sam) | M3+3d")))
    assert "unknown-person" not in [w.code for w in check(seller_side, date(2027, 1, 11))]
    # A joint step may name the seller's own person.
    joint = parse_plan(_edit(EXAMPLE, ("| Joint              | T-60d", "| Joint (Jordan Lee) | T-60d")))
    assert "unknown-person" not in [w.code for w in check(joint, date(2027, 1, 11))]


def test_check_warns_when_an_owner_could_be_two_contacts() -> None:
    two = _edit(EXAMPLE, ("{name: Kim Osei,", "{name: Dana Osei,"), ("| Acme (Kim Osei)    |", "| Acme (Dana Osei) |"))
    found = [w for w in check(parse_plan(two), date(2027, 1, 11)) if w.code == "ambiguous-person"]
    assert [w.line for w in found] == [43]  # M3's "Acme (Dana)"; M5 names Dana Osei in full
    assert "Dana Whitfield" in found[0].message and "Dana Osei" in found[0].message
    bare = parse_plan(_edit(two, ("| Acme (Dana)        |", "| Dana |")))
    assert [w.line for w in check(bare, date(2027, 1, 11)) if w.code == "ambiguous-person"] == [43]


def test_reminders_reach_the_contact_an_accented_or_other_script_owner_names() -> None:
    plan = parse_plan(_edit(PEOPLE, ("| Zoe Angstrom |", "| Acme (Zoe) |")))
    assert recipients(plan, plan.milestone("M3")) == ("zoe@acme.example",)
    assert recipients(plan, plan.milestone("M5")) == ("li@acme.example",)


def test_the_reply_reader_resolves_the_same_people() -> None:
    plan = parse_plan(PEOPLE)
    assert resolve_person("Zoe Angstrom", plan, None) == "Zoë Ångström"
    assert resolve_person("zoe", plan, None) == "Zoë Ångström"
    assert resolve_person("李雷", plan, None) == "李雷"


def test_a_company_with_accents_is_named_without_them() -> None:
    text = _edit(EXAMPLE, ("company: Northwind Analytics", "company: Société Générale Analytique"))
    plan = parse_plan(text.replace("| Northwind          |", "| Societe |"))
    assert plan.resolve_owner("SOCIÉTÉ GÉNÉRALE ANALYTIQUE").side == "seller"
    assert plan.resolve_owner("Societe").side == "seller"
