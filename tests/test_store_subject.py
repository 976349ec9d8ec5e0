"""Matching a subject to a plan reads every plan's current version in one query, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from pipeline.plan.model import Plan
from pipeline.plan.source import parse_plan
from pipeline.store import Store

EXAMPLE = Path(__file__).parent / "fixtures" / "example-plan.md"
AT = datetime(2027, 1, 11, 17, 2, tzinfo=UTC)


def plan(n: int, company: str | None = None) -> Plan:
    text = EXAMPLE.read_text().replace("acme-northwind-2027", f"acme{n}-northwind-2027")
    return parse_plan(text.replace("Acme Corp", company or f"Acme {n}"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with Store.open(f"sqlite:///{tmp_path / 'mutualplan.db'}") as opened:
            yield opened
        return
    base = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={name}"})
        with Store.open(url.render_as_string(hide_password=False)) as opened:
            yield opened
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


def subject(prospect: str, number: int = 1) -> str:
    return f"RE: Mutual Plan: {prospect} and Northwind Analytics (version {number})"


def test_the_plan_between_the_named_companies_is_found_among_many(store: Store) -> None:
    for n in range(12):
        store.add_version(plan(n), author="jordan.lee@northwind.example", reason="created", created=AT)
    assert store.plan_for_subject(subject("Acme 7", 3)) == ("acme7-northwind-2027", 3)
    assert store.plan_for_subject(subject("Acme 11")) == ("acme11-northwind-2027", 1)
    assert store.plan_for_subject(subject("Acme 12")) is None
    assert store.plan_for_subject("Mutual Plan: Acme 7 and Someone Else (version 1)") is None
    assert store.plan_for_subject("Lunch on Friday?") is None


def test_only_the_current_version_of_each_plan_counts(store: Store) -> None:
    first = plan(1)
    store.add_version(first, author="jordan.lee@northwind.example", reason="created", created=AT)
    renamed = replace(first, prospect=replace(first.prospect, company="Acme Holdings"))
    store.add_version(renamed, author="jordan.lee@northwind.example", reason="seller edit", created=AT)
    store.add_version(plan(2), author="jordan.lee@northwind.example", reason="created", created=AT)
    assert store.plan_for_subject(subject("Acme Holdings", 2)) == ("acme1-northwind-2027", 2)
    assert store.plan_for_subject(subject("Acme 1")) is None  # its old name, from version 1 only
    assert store.plan_for_subject(subject("Acme 2")) == ("acme2-northwind-2027", 1)


def test_two_plans_between_the_same_companies_match_neither(store: Store) -> None:
    for n in (1, 2):
        store.add_version(plan(n, company="Acme Corp"), author="jordan.lee@northwind.example", reason="created",
                          created=AT)
    store.add_version(plan(3), author="jordan.lee@northwind.example", reason="created", created=AT)
    assert store.plan_for_subject(subject("Acme Corp")) is None
    assert store.plan_for_subject(subject("Acme 3")) == ("acme3-northwind-2027", 1)
