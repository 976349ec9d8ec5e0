"""The team settings file and the `team` commands: sellers added, listed, removed; PostgreSQL required."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.errors import ConfigError
from pipeline.team.settings import TEAM_FILE, add_seller, init_team, load_team, read_team, remove_seller

PG = "postgresql+psycopg://mp@db.example/sales"
_names = itertools.count()


def team_dir(tmp_path: Path, url: str = PG) -> Path:
    init_team(tmp_path / "team", url)
    return tmp_path / "team"


def cli(team: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"MUTUALPLAN_TEAM": str(team), **(env or {})})
    return result.exit_code, result.output


def add(team: Path, seller: str, *extra: str) -> tuple[int, str]:
    return cli(team, "team", "add-seller", seller, "--name", seller.title(), "--email", f"{seller}@seller.example",
               "--backend", "maildir", "--mailbox-option", f"path={team}/mail/{seller}", *extra)


# --- settings ------------------------------------------------------------------------------------------------


def test_a_team_on_sqlite_is_refused_with_exit_2(tmp_path: Path) -> None:
    code, out = cli(tmp_path, "team", "init", "--team", str(tmp_path / "t"), "--store-url", "sqlite:///x.db")
    assert code == 2 and "needs a PostgreSQL store" in out and "sqlite://..." in out
    (tmp_path / TEAM_FILE).write_text('[store]\nurl = "sqlite:///team.db"\n')
    code, out = cli(tmp_path, "team", "list")
    assert code == 2 and "needs a PostgreSQL store" in out


def test_sellers_are_added_listed_and_removed_with_their_record_kept(tmp_path: Path) -> None:
    team = team_dir(tmp_path)
    assert add(team, "jo", "--policy", "auto")[0] == 0
    code, out = add(team, "sam")
    assert code == 0, out
    code, out = cli(team, "team", "list", "--json")
    listed = json.loads(out)["sellers"]
    assert [(s["id"], s["email"], s["policy"], s["active"]) for s in listed] == [
        ("jo", "jo@seller.example", "auto", True), ("sam", "sam@seller.example", "review", True)]
    code, out = cli(team, "team", "remove-seller", "jo", "--json")
    assert code == 0 and json.loads(out)["active"] is False
    jo = load_team(team / TEAM_FILE).seller("jo")
    assert not jo.active and jo.settings.seller["name"] == "Jo"  # the record stays
    assert [s.id for s in load_team(team / TEAM_FILE).active] == ["sam"]


def test_a_seller_id_twice_or_unknown_is_a_clear_error(tmp_path: Path) -> None:
    team = team_dir(tmp_path)
    add(team, "jo")
    code, out = add(team, "jo")
    assert code == 2 and "'jo' is in the team already" in out
    code, out = cli(team, "team", "remove-seller", "kim")
    assert code == 2 and "no seller 'kim'" in out and "known sellers: jo" in out
    code, out = add(team, "Not An Id")
    assert code == 2 and "is not a short lowercase name" in out


def test_a_secret_in_the_file_is_refused_and_its_variable_named(tmp_path: Path) -> None:
    team = team_dir(tmp_path)
    code, out = cli(team, "team", "add-seller", "sam", "--name", "Sam", "--email", "sam@seller.example",
                    "--backend", "imap", "--mailbox-option", "host=imap.seller.example",
                    "--mailbox-option", "password=hunter2")
    assert code == 2 and "would keep a secret" in out and 'password_env = "NAME"' in out
    assert "hunter2" not in (team / TEAM_FILE).read_text()


def test_graph_sellers_share_the_one_app_registration(tmp_path: Path) -> None:
    data = {"store": {"url": PG},
            "graph": {"tenant": "contoso.example", "client_id": "app-1", "client_secret_env": "TEAM_GRAPH_SECRET"},
            "sellers": [{"id": "jo", "seller": {"email": "jo@seller.example"},
                         "mailbox": {"backend": "graph", "mailbox": "jo@seller.example"}}]}
    jo = read_team(data, tmp_path / TEAM_FILE, env={}).seller("jo")
    assert dict(jo.settings.mailbox) == {"backend": "graph", "tenant": "contoso.example", "client_id": "app-1",
                                        "client_secret_env": "TEAM_GRAPH_SECRET", "mailbox": "jo@seller.example"}
    del data["graph"]
    with pytest.raises(ConfigError, match=r"needs the team's \[graph\] tenant and client_id"):
        read_team(data, tmp_path / TEAM_FILE, env={})


def test_a_sellers_settings_are_checked_as_a_homes_are(tmp_path: Path) -> None:
    path = tmp_path / "team" / TEAM_FILE
    team_dir(tmp_path)
    with pytest.raises(ConfigError, match=r"seller jo: \[policy\] changes must be"):
        add_seller(path, {"id": "jo", "policy": {"changes": "sometimes"}, "mailbox": {"backend": "maildir"}})
    assert "jo" not in path.read_text()  # a file that would not read is not written


def test_remove_seller_twice_keeps_the_first_date(tmp_path: Path) -> None:
    path = team_dir(tmp_path) / TEAM_FILE
    add_seller(path, {"id": "jo", "mailbox": {"backend": "maildir"}})
    assert remove_seller(path, "jo", "2027-01-01T00:00:00Z").removed == "2027-01-01T00:00:00Z"
    assert remove_seller(path, "jo", "2027-02-01T00:00:00Z").removed == "2027-01-01T00:00:00Z"


def test_status_asks_whose_plans(tmp_path: Path) -> None:
    team = team_dir(tmp_path)
    code, out = cli(team, "team", "status")
    assert code == 2 and "--seller ID" in out and "--all" in out


# --- against PostgreSQL --------------------------------------------------------------------------------------


@pytest.fixture
def pg_team(tmp_path: Path, postgres_server: object) -> Path:
    url = postgres_server.create_database(f"team_{next(_names)}_{tmp_path.name[-8:].lower()}")  # type: ignore[attr-defined]
    return team_dir(tmp_path, url)


def test_status_of_a_new_team_lists_each_seller_with_no_plans(pg_team: Path) -> None:
    add(pg_team, "jo")
    add(pg_team, "sam")
    code, out = cli(pg_team, "team", "status", "--all", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert [(s["seller"], s["plans"], s["mailbox"]["state"]) for s in data["sellers"]] == [
        ("jo", [], "ok"), ("sam", [], "ok")]
    code, out = cli(pg_team, "team", "status", "--json", env={"MUTUALPLAN_SELLER": "sam"})
    assert [s["seller"] for s in json.loads(out)["sellers"]] == ["sam"]


def test_a_failing_mailbox_backs_off_doubling_to_an_hour_and_a_success_resets_it(pg_team: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from pipeline.team.store import TeamStore

    store = TeamStore(load_team(pg_team / TEAM_FILE).store_url)
    at = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)
    waits = []
    for n in range(8):
        health = store.poll_done("jo", at, 60, f"fetching mail: refused {n}")
        waits.append(int((datetime.fromisoformat(health.next_poll.replace("Z", "+00:00")) - at).total_seconds()))
    # 1, 2, 4 ... minutes, never more than an hour; never sooner than the mailbox's own interval.
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert not store.due("jo", at + timedelta(minutes=59)) and store.due("jo", at + timedelta(hours=1))
    health = store.poll_done("jo", at, 90, None)
    assert (health.state, health.failures, health.last_error) == ("ok", 0, None)
    assert health.next_poll == "2027-01-11T09:01:30Z"  # the seller's 90 seconds
    store.close()
