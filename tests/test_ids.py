"""Every identifier we put on mail is formatted and parsed in plan/ids.py, and each parser reads back its format."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.plan import ids
from pipeline.plan.source import parse_plan

PLAN = parse_plan((Path(__file__).parent / "fixtures" / "example-plan.md").read_text(encoding="utf-8"))
DOMAIN = "northwind.example"  # the example seller's domain, as its email address says


def test_the_version_email_is_named_by_plan_and_version_alone() -> None:
    # Worked out from the format: plan.<id>.v<N>@<seller's domain>; plan and update share the version's id.
    assert ids.message_id(PLAN, 3) == "<plan.acme-northwind-2027.v3@northwind.example>"
    assert ids.message_id(PLAN, 3, "update") == ids.message_id(PLAN, 3)
    assert ids.message_id(PLAN, 3, "agreed") == "<plan.acme-northwind-2027.v3.agreed@northwind.example>"
    # A key tells apart emails of one kind and version, by the first 12 hex digits of its SHA-256.
    one, two = ids.message_id(PLAN, 3, "notice", "<a@x>"), ids.message_id(PLAN, 3, "notice", "<b@x>")
    assert one != two and one.startswith("<plan.acme-northwind-2027.v3.notice.")
    assert len(one.split("@")[0].split(".")[-1]) == 12
    assert ids.message_id(PLAN, 3, "seller_notice", "<a@x>") == one


@pytest.mark.parametrize("kind", ["plan", "agreed", "notice", "reminder"])
@given(version=st.integers(min_value=1, max_value=999_999), key=st.none() | st.text(max_size=40))
def test_every_message_id_of_ours_reads_back_as_its_plan_and_version(kind: str, version: int, key: str | None) -> None:
    made = ids.message_id(PLAN, version, kind, key)
    assert ids.plan_reference(made, [DOMAIN]) == (PLAN.id, version)
    assert ids.plan_reference(ids.bare(made), [DOMAIN.upper()]) == (PLAN.id, version)  # brackets, case of domain
    assert ids.plan_reference(made, ["other.example"]) is None  # another seller's domain is not ours


def test_mail_to_the_seller_about_no_plan_is_not_read_as_a_plan() -> None:
    made = ids.seller_message_id("digest", "digest|2027-W10", DOMAIN)
    assert made.startswith("<mutualplan.digest.") and made.endswith("@northwind.example>")
    assert made == ids.seller_message_id("digest", "digest|2027-W10", DOMAIN) != ids.seller_message_id(
        "digest", "digest|2027-W11", DOMAIN)
    assert ids.plan_reference(made, [DOMAIN]) is None
    assert ids.seller_message_id("digest", "k", None).endswith("@mutualplan.invalid>")


def test_the_subject_names_the_plan_by_the_short_name_and_no_version() -> None:
    made = ids.subject(PLAN)
    assert made == "Mutual Plan: Acme and Northwind Analytics"  # "Acme Corp" before its legal suffix
    for seen in (made, f"RE: {made}", f"AW: Re: {made}", f"[EXT] Re: {made}", f"Re: {made} [External]"):
        found = ids.parse_subject(seen)
        assert found is not None and found.version is None
        assert found.names_plan(("Acme Corp", "Acme"), "Northwind Analytics")
        assert not found.names_plan(("Globex",), "Northwind Analytics")
    assert ids.reply_subject(f"AW: SV: {made}") == f"Re: {made}"
    assert ids.thread_subject(PLAN, f"RE: {made}") == f"Re: {made}"
    assert ids.thread_subject(PLAN, "Our plan for Q1") == "Re: Our plan for Q1"  # the seller's own thread


@given(version=st.integers(min_value=1, max_value=999_999))
def test_an_older_release_s_subject_with_a_version_still_reads_back(version: int) -> None:
    old = f"RE: Mutual Plan: Acme Corp and Northwind Analytics (version {version})"
    found = ids.parse_subject(old)
    assert found is not None and found.version == version
    assert found.names_plan(("Acme Corp", "Acme"), "Northwind Analytics")
    # An answer to it is answered under today's subject.
    assert ids.thread_subject(PLAN, old) == "Re: Mutual Plan: Acme and Northwind Analytics"


def test_a_company_name_with_an_and_in_it_is_matched_whole() -> None:
    found = ids.parse_subject("Re: Mutual Plan: Johnson and Johnson and Northwind Analytics")
    assert found is not None and found.names_plan(("Johnson and Johnson",), "Northwind Analytics")
    assert not found.names_plan(("Johnson",), "Northwind Analytics")


def test_reply_prefixes_of_several_languages_are_stripped_once() -> None:
    assert ids.strip_reply_prefixes("RE: Re: AW: SV: Antw: R: RIF: Réf: The plan") == "The plan"
    assert ids.strip_reply_prefixes("Fwd: The plan") == "Fwd: The plan"  # a forward is not an answer
    assert ids.reply_subject("") is None and ids.reply_subject("Re: ") is None


def test_the_mark_on_our_mail_reads_back() -> None:
    assert ids.plan_mark(PLAN, 2) == "acme-northwind-2027; version=2"
    assert ids.parse_plan_mark(ids.plan_mark(PLAN, 2)) == (PLAN.id, 2)
    assert ids.parse_plan_mark(ids.seller_mark("digest")) is None
    assert ids.parse_plan_mark("something else") is None


def test_brackets_are_normalized_one_way() -> None:
    assert ids.bracketed(" <a@b> ") == ids.bracketed("a@b") == "<a@b>"
    assert ids.bare("<a@b>") == "a@b"


@pytest.mark.parametrize(("company", "short"), [
    ("Acme Corp", "Acme"),
    ("Global Logistics Ltd", "Global Logistics"),
    ("Müller GmbH & Co. KG", "Müller"),
    ("株式会社山田製作所", "山田製作所"),
    ("Johnson & Johnson", "Johnson & Johnson"),
    ("Initech", "Initech"),
])
def test_the_short_name_is_the_company_without_its_legal_form(company: str, short: str) -> None:
    from pipeline.plan.identity import short_company

    assert short_company(company) == short


def test_a_short_name_written_in_the_plan_wins() -> None:
    from dataclasses import replace

    plan = replace(PLAN, prospect=replace(PLAN.prospect, short_name="ACME"))
    assert ids.subject(plan) == "Mutual Plan: ACME and Northwind Analytics"
