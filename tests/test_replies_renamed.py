"""The reader knows no company or person: a plan and its replies renamed throughout read the same up to the names."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from functools import cache
from typing import Any

import pytest
from replies_expect import FIXTURES, PLANS, REPLIES, SELLER_DOMAINS, fixture_names

from pipeline.plan.model import Plan
from pipeline.plan.source import parse_plan
from pipeline.replies.interpret import interpret, read_reply
from pipeline.replies.message import Incoming
from pipeline.replies.parties import Parties, resolve_person

# Every name of the example plans, and what it becomes; longer names first so "Acme Corp" goes before "Acme".
# The new people's names are as long as the old ones, so loose matching of names ("Dnaa") behaves the same.
RENAMES = (
    ("Acme Corp", "Globex Industries"),
    ("Acme", "Globex"),
    ("Northwind Analytics", "Initech Systems"),
    ("Northwind", "Initech"),
    ("Dana", "Mina"),
    ("Whitfield", "Hollister"),
    ("Raj", "Ben"),
    ("Patel", "Novak"),
    ("Kim", "Ava"),
    ("Osei", "Ruiz"),
    ("Jordan", "Morgan"),
    ("Lee", "Lin"),
)
_OLD = re.compile(r"\b(?:" + "|".join(re.escape(old) for old, _ in RENAMES) + r")\b", re.IGNORECASE)
_NEW = {old.lower(): new for old, new in RENAMES}


def rename(text: str) -> str:
    """Every name replaced, in the case it was written in ("ACME", "acme.example", "Acme's")."""

    def one(m: re.Match[str]) -> str:
        old, new = m.group(0), _NEW[m.group(0).lower()]
        if old.isupper() and len(old) > 1:
            return new.upper()
        return new.lower() if old.islower() else new

    return _OLD.sub(one, text)


def renamed(value: Any) -> Any:
    """Every string in a value renamed: in tuples, lists and dicts (keys stay)."""
    if isinstance(value, str):
        return rename(value)
    if isinstance(value, (tuple, list)):
        return type(value)(renamed(v) for v in value)
    if isinstance(value, dict):
        return {k: renamed(v) for k, v in value.items()}
    return value


def renamed_message(message: Incoming) -> Incoming:
    """The same message as if sent between the renamed companies: every header and body renamed."""
    return dataclasses.replace(
        message, **{f.name: renamed(getattr(message, f.name)) for f in dataclasses.fields(message)}
    )


@cache
def plan(name: str = "example-plan.md", *, renamed: bool = False) -> Plan:
    text = (PLANS.get(name) or FIXTURES / name).read_text()
    return parse_plan(rename(text) if renamed else text, file=name)


def test_the_renamed_plan_names_nobody_of_the_example() -> None:
    other = plan(renamed=True)
    assert other.prospect.company == "Globex Industries"
    assert other.seller.company == "Initech Systems"
    assert [c.name for c in other.prospect.contacts] == ["Mina Hollister", "Ben Novak", "Ava Ruiz"]
    assert other.milestone("M6").owner == "Globex (Ben Novak)"
    assert not _OLD.search(json.dumps(dataclasses.asdict(other), default=str))


@pytest.mark.parametrize("name", fixture_names())
def test_every_fixture_reads_the_same_under_other_names(name: str) -> None:
    expected = json.loads((REPLIES / f"{name}.json").read_text())
    plan_name = expected.get("_plan", "example-plan.md")
    message = Incoming.from_bytes((REPLIES / f"{name}.eml").read_bytes(), own_domains=SELLER_DOMAINS)
    original = read_reply(message, plan(plan_name)).to_dict()
    got = read_reply(renamed_message(message), plan(plan_name, renamed=True)).to_dict()
    assert got == renamed(original)


# A party named as the subject of a date, an owner or an agreement, in place of "we" or "I".
PARTY_SENTENCES = [
    ("Realistically Acme will sign on April 30.", "amend", ({"op": "retarget", "target": "2027-04-30"},)),
    ("Raj will sign on April 30.", "amend", ({"op": "retarget", "target": "2027-04-30"},)),
    ("Raj Patel will sign on April 30.", "amend", ({"op": "retarget", "target": "2027-04-30"},)),
    ("Acme Corp will sign on April 30.", "amend", ({"op": "retarget", "target": "2027-04-30"},)),
    ("Acme can confirm the plan.", "confirm", ()),
    ("Acme Corp can confirm the plan.", "confirm", ()),
    ("Acme will own the reference call.", "amend", ({"op": "reassign", "milestone": "M4", "owner": "buyer"},)),
    ("Northwind will run the pilot.", "amend", ({"op": "reassign", "milestone": "M3", "owner": "seller"},)),
    ("Raj will own the legal review.", "amend", ({"op": "reassign", "milestone": "M5", "owner": "Raj Patel"},)),
    (
        "Please add a budget approval a week before the pilot, owned by Kim.",
        "amend",
        ({"op": "add", "title": "Budget approval", "owner": "Kim Osei", "due": "2027-02-22"},),
    ),
]


@pytest.mark.parametrize(("sentence", "intent", "changes"), PARTY_SENTENCES)
def test_a_party_named_reads_the_same_under_other_names(sentence: str, intent: str, changes: tuple) -> None:
    raw = (REPLIES / "10-retarget.eml").read_bytes()
    own = b"Realistically we will sign in mid-April. Let's make April 15 the target date."
    assert own in raw
    message = Incoming.from_bytes(raw.replace(own, sentence.encode()), own_domains=SELLER_DOMAINS)
    original = read_reply(message, plan()).to_dict()
    assert original["intent"] == intent
    assert len(original["changes"]) == len(changes)
    for got, want in zip(original["changes"], changes, strict=True):
        assert {k: got[k] for k in want} == want
    assert read_reply(renamed_message(message), plan(renamed=True)).to_dict() == renamed(original)


@pytest.mark.parametrize(
    "sentence",
    ["Initrode will sign on April 30.", "Initrode confirms the plan.", "Kim will sign off by April 30."],
)
def test_a_company_or_person_outside_the_plan_changes_nothing(sentence: str) -> None:
    reading = interpret(sentence, plan(), date(2027, 1, 18), sender="raj.patel@acme.example")
    assert reading.changes == ()
    assert reading.intent != "confirm"


@pytest.mark.parametrize(
    ("company", "names"),
    [
        ("Acme Corp", {"acme corp", "acme"}),
        ("Globex Industries", {"globex industries", "globex"}),
        ("Umbrella Holdings S.A.", {"umbrella holdings s.a.", "umbrella holdings", "umbrella"}),
        ("Blue Sky Ltd.", {"blue sky ltd.", "blue sky", "blue"}),
        ("Stark Industries, Inc.", {"stark industries, inc.", "stark industries", "stark"}),
        ("Müller GmbH & Co. KG", {"müller gmbh & co. kg", "müller"}),
    ],
)
def test_a_company_is_named_by_its_name_or_the_words_before_its_legal_suffix(company: str, names: set[str]) -> None:
    example = plan()
    other = dataclasses.replace(example, prospect=dataclasses.replace(example.prospect, company=company))
    assert Parties.of(other).buyer == frozenset(names)
    short = sorted(names, key=len)[0]
    assert resolve_person(short.title(), other, None) == "buyer"
