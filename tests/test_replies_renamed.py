"""The reader knows no company, person or title: a plan and its replies renamed throughout (companies, domains,
people and the milestones' titles) read the same up to the names."""

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

# Every name of the plans the fixtures use, and what it becomes: companies, their mail domains, people, and the
# words of the milestones' titles (with the words replies use for them: "kickoff", a typo of "pilot"). Longer
# names go first, so "Acme Corp" goes before "Acme". The new people's names are as long as the old ones, in the
# same script and with the same accents, so loose matching of names ("Dnaa", "Zoe" for "Zoë") behaves the same.
# A title keeps the words the rules read as words of the language rather than names: "Confirmed" (an answer
# beats a title holding it), "review", "call" ("can we call the pilot ..."), "meeting", "Signed", "PO", "IT", and
# "legal" alone (a contact's role in the plan, and a department in replies: "once legal signs off");
# an activity word becomes another of its kind ("pilot", a verb too, becomes "trial").
COMPANIES = (
    ("acme.example", "globex.test"),
    ("northwind.example", "initech.test"),
    ("Acme Corp", "Globex Industries"),
    ("Acme", "Globex"),
    ("Northwind Analytics", "Initech Systems"),
    ("Northwind", "Initech"),
)
PEOPLE = (
    ("Dana", "Mina"),
    ("Whitfield", "Hollister"),
    ("Raj", "Ben"),
    ("Patel", "Novak"),
    ("Kim", "Ava"),
    ("Osei", "Ruiz"),
    ("Jordan", "Morgan"),
    ("Lee", "Lin"),
    ("Pat", "Sam"),
    ("Quinn", "Doyle"),
    ("李雷", "王芳"),
    ("li.lei", "wang.fang"),
    ("Zoë", "Noë"),
    ("Zoe", "Noe"),
    ("Ångström", "Åkerlund"),
    ("Angstrom", "Akerlund"),
)
TITLES = (
    # The example plan's and its variants' titles, word by word, as replies use them.
    ("Discovery", "Scoping"),
    ("workshop", "interview"),
    ("Technical", "Functional"),
    ("demonstration", "showcase"),
    ("demo", "showcase"),
    ("pilot", "trial"),
    ("pliot", "trail"),
    ("readout", "debrief"),
    ("Q4", "Q3"),
    ("data", "figures"),
    ("reference", "referral"),
    ("customer", "client"),
    ("Legal review", "Compliance review"),
    ("MSA", "DPA"),
    ("Security", "Risk"),
    ("order form", "cover sheet"),
    ("kick-off", "roll-out"),
    ("kick off", "roll out"),
    ("kickoff", "rollout"),
    ("introductions", "handovers"),
    # The stock enterprise plan's titles, whole where a word of them also names a section of the plan.
    ("Mutually agreed plan with timeline", "Jointly agreed plan with dates"),
    ("Confirmed VisionMatch", "Confirmed value case"),
    ("Access to the decision-makers", "Meetings with the economic buyers"),
    ("Clear decision criteria agreed", "Shared success criteria agreed"),
    ("Demonstrations for the evaluation team", "Showcases for the scoring panel"),
    ("Live meeting with executive and SE", "Onsite meeting with sponsor and SE"),
    ("Executive briefing (EBC) visit", "Sponsor briefing (XBC) tour"),
    ("Budget confirmation", "Funding confirmation"),
    ("Proposal", "Quotation"),
    ("Legal review of contracts and paperwork", "Compliance review of agreements and forms"),
    ("Acceptance of terms and conditions", "Approval of rates and clauses"),
    ("Verbal agreement", "Spoken commitment"),
    ("Signed contract", "Signed deed"),
    ("User IDs set up and user onboarding", "Login set up and staff training"),
    ("Delivery schedule with milestones; relationship plan", "Deployment calendar with checkpoints; partner plan"),
    ("Usage reports and benchmark / feedback sessions", "Adoption reports and baseline / survey rounds"),
    ("Future initiatives and renewal", "Next projects and extension"),
)
RENAMES = tuple(sorted((*COMPANIES, *PEOPLE, *TITLES), key=lambda pair: -len(pair[0])))
# A name is renamed in its plural too ("demos", "customers"): the "s" is kept after the new name.
_OLD = re.compile(r"\b(?:" + "|".join(re.escape(old) for old, _ in RENAMES) + r")(?=s?\b)", re.IGNORECASE)
_NEW = {old.lower(): new for old, new in RENAMES}


def rename(text: str) -> str:
    """Every name replaced, in the case it was written in ("ACME", "acme.example", "Acme's", "Pilot")."""

    def one(m: re.Match[str]) -> str:
        old, new = m.group(0), _NEW[m.group(0).lower()]
        if old.isupper() and len(old) > 1:
            return new.upper()
        if old.islower():
            return new.lower()
        return new[:1].upper() + new[1:] if old[:1].isupper() else new

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
    assert other.seller.email == "morgan.lin@initech.test"
    assert not _OLD.search(json.dumps(dataclasses.asdict(other), default=str, ensure_ascii=False))


def fixture_plans() -> list[str]:
    """Every plan a reply fixture is read against."""
    names = {json.loads((REPLIES / f"{n}.json").read_text()).get("_plan", "example-plan.md") for n in fixture_names()}
    return sorted(names)


@pytest.mark.parametrize("name", fixture_plans())
def test_every_title_and_name_of_a_fixtures_plan_is_renamed(name: str) -> None:
    original, other = plan(name), plan(name, renamed=True)
    assert [m.id for m in other.milestones] == [m.id for m in original.milestones]
    assert [m.due for m in other.milestones] == [m.due for m in original.milestones]
    for before, after in zip(original.milestones, other.milestones, strict=True):
        assert after.title != before.title
        # What a rule reads in a title stays in it: "Confirmed" beats a title holding the word.
        assert ("Confirmed" in after.title) == ("Confirmed" in before.title)
    people = [c.name for c in original.prospect.contacts]
    assert all(a != b for a, b in zip(people, [c.name for c in other.prospect.contacts], strict=True))
    assert not _OLD.search(json.dumps(dataclasses.asdict(other), default=str, ensure_ascii=False))


def test_no_new_name_is_already_in_a_fixture() -> None:
    """The renaming is one to one: a new name written in an original would make two names one."""
    new = re.compile(r"\b(?:" + "|".join(re.escape(n) for _, n in RENAMES) + r")(?=s?\b)", re.IGNORECASE)
    for path in sorted(REPLIES.glob("*.eml")):
        message = Incoming.from_bytes(path.read_bytes(), own_domains=SELLER_DOMAINS)
        assert not new.search(repr(dataclasses.asdict(message))), path.name
    for name in fixture_plans():
        assert not new.search((PLANS.get(name) or FIXTURES / name).read_text()), name


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
