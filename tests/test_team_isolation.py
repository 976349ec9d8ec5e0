"""Sellers of one team on one PostgreSQL: each sees only their plans, a reply in one mailbox never touches
another seller's plan, and a plan id belongs to one seller of the team."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.errors import StoreError
from pipeline.render.templates import default_templates
from pipeline.store import Store
from pipeline.team.parts import seller_service
from pipeline.team.settings import TEAM_FILE, Team, add_seller, init_team, load_team
from pipeline.team.store import TeamStore
from tests.loop_support import DANA, RAJ, V1, reply

PLAN = "acme-northwind-2027"
OTHER = "globex-northwind-2027"
_names = itertools.count()
TRUSTED = "mx.northwind.example"  # the receiving server whose Authentication-Results the test replies carry


def make_team(root: Path, url: str, sellers: dict[str, str]) -> Team:
    """A team in root/team with one maildir seller per (id, email)."""
    init_team(root / "team", url)
    for seller_id, email in sellers.items():
        add_seller(root / "team" / TEAM_FILE, {
            "id": seller_id, "seller": {"name": seller_id.title(), "email": email, "company": "Northwind Analytics"},
            "policy": {"changes": "auto", "trusted_authserv_ids": [TRUSTED]},
            "reminders": {"enabled": False, "digest": False},
            "mailbox": {"backend": "maildir", "path": str(root / "mail" / seller_id / "box")}})
    return load_team(root / "team" / TEAM_FILE)


def example(plan_id: str = PLAN) -> str:
    text = (default_templates() / "plans" / "example.md").read_text(encoding="utf-8")
    return text.replace(f"id: {PLAN}", f"id: {plan_id}", 1)


def deliver(root: Path, seller: str, name: str, raw: bytes) -> None:
    # The Maildir is mail/<seller>/box, so each seller's outbox (beside it) is their own.
    (root / "mail" / seller / "box" / "new").mkdir(parents=True, exist_ok=True)
    (root / "mail" / seller / "box" / "new" / name).write_bytes(raw)


@pytest.fixture
def team(tmp_path: Path, postgres_server: object) -> Team:
    url = postgres_server.create_database(f"iso_{next(_names)}_{tmp_path.name[-8:].lower()}")  # type: ignore[attr-defined]
    return make_team(tmp_path, url, {"jo": "jordan.lee@northwind.example", "sam": "sam.ito@northwind.example"})


def test_a_plan_id_belongs_to_one_seller_of_the_team(team: Team, tmp_path: Path) -> None:
    team_store = TeamStore(team.store_url)
    with seller_service(team_store, team.seller("jo"), tmp_path) as jo:
        jo.add_source(example(), file="acme.md")
    with seller_service(team_store, team.seller("sam"), tmp_path) as sam:
        with pytest.raises(StoreError, match=f"plan id {PLAN} is taken by another seller of the team"):
            sam.add_source(example(), file="acme.md")
        sam.add_source(example(OTHER), file="globex.md")
        assert sam.store.plan_ids() == [OTHER]  # sam's scope holds sam's plan only
    with seller_service(team_store, team.seller("jo"), tmp_path) as jo:
        assert jo.store.plan_ids() == [PLAN]
        jo.add_source(example().replace("Acme wants one forecast", "Acme wants a forecast"), file="acme.md")
        assert jo.store.current(PLAN).number == 2  # the owner makes versions of it as before
    assert team_store.plan_owner(PLAN) == "seller_jo" and team_store.plan_owner(OTHER) == "seller_sam"
    team_store.close()


def test_a_reply_in_one_sellers_mailbox_never_matches_anothers_plan(team: Team, tmp_path: Path) -> None:
    team_store = TeamStore(team.store_url)
    with seller_service(team_store, team.seller("jo"), tmp_path) as jo:
        jo.add_source(example(), file="acme.md")
        entry, report = jo.send_plan(PLAN)
        assert entry.message_id == V1 and report.sent == [V1]
    when = datetime.now(UTC)
    # The same company's domain makes every seller's Message-IDs alike: the thread alone must not cross sellers.
    deliver(tmp_path, "sam", "stray", reply(DANA, "Confirmed - thanks.", message_id="<c1@acme.example>", when=when))
    with seller_service(team_store, team.seller("sam"), tmp_path) as sam:
        polled = sam.poll()
        assert polled.errors == [] and len(polled.handled) == 1
        assert sam.store.plan_ids() == []
    with seller_service(team_store, team.seller("jo"), tmp_path) as jo:
        assert not jo.store.confirmations(PLAN, 1)  # jo's plan did not hear a reply it was not sent
        for name, who in (("d", DANA), ("r", RAJ)):
            deliver(tmp_path, "jo", name, reply(who, "Confirmed - thanks.", message_id=f"<{name}@acme.example>",
                                                when=when))
        jo.poll()
        assert jo.store.plan_state(PLAN) == "agreed"
    team_store.close()


def test_a_sellers_status_shows_their_plans_and_the_admins_all(team: Team, tmp_path: Path) -> None:
    team_store = TeamStore(team.store_url)
    for seller, plan in (("jo", PLAN), ("sam", OTHER)):
        with seller_service(team_store, team.seller(seller), tmp_path) as service:
            service.add_source(example(plan), file=f"{plan}.md")
    team_store.close()
    env = {"MUTUALPLAN_TEAM": str(tmp_path / "team")}
    out = CliRunner().invoke(main, ["team", "status", "--seller", "sam", "--json", "--today", "2027-03-20"], env=env)
    assert out.exit_code == 0, out.output
    mine = json.loads(out.output)["sellers"]
    assert [(s["seller"], [p["plan_id"] for p in s["plans"]]) for s in mine] == [("sam", [OTHER])]
    # On 20 Mar 2027 the pilot (M3, 1 Mar) is 19 days late and the legal review (M5, 17 Mar) 3 days late.
    slipping = {m["id"]: m["days_left"] for m in mine[0]["plans"][0]["slipping"]}
    assert slipping.get("M3") == -19 and slipping.get("M5") == -3
    out = CliRunner().invoke(main, ["team", "status", "--all", "--json"], env=env)
    assert [[p["plan_id"] for p in s["plans"]] for s in json.loads(out.output)["sellers"]] == [[PLAN], [OTHER]]


def test_a_seller_scope_needs_postgresql(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="a seller's scope needs a PostgreSQL store"):
        Store.open(f"sqlite:///{tmp_path / 'x.db'}", scope="seller_jo")


def test_sellers_stores_share_one_pool_and_each_reads_only_its_schema(team: Team, tmp_path: Path) -> None:
    from pipeline.store.database import scoped_engine

    team_store = TeamStore(team.store_url)
    with seller_service(team_store, team.seller("jo"), tmp_path) as jo:
        jo.add_source(example(), file="acme.md")
    with seller_service(team_store, team.seller("sam"), tmp_path) as sam:
        sam.add_source(example(OTHER), file="globex.md")
    pool = scoped_engine(team.store_url, "any").pool
    opened = pool.checkedin()
    # Turn by turn, as a worker's jobs take them: the pooled connections serve both scopes, each read sees its own.
    for _ in range(3):
        for seller, plans in (("jo", [PLAN]), ("sam", [OTHER])):
            with team_store.seller_store(team.seller(seller).scope) as store:
                assert store.plan_ids() == plans
    assert pool.checkedin() == opened  # no connection was opened for the turns: the pool's own served them
    team_store.close()
