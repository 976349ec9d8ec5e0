"""The home: which directory, what `init` puts in it, and which store its settings name."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.home import EXAMPLE_SETTINGS, Home, default_home, init_home, open_home, resolve_home

REPO = Path(__file__).resolve().parent.parent


def test_the_home_is_the_option_else_the_variable_else_xdg(tmp_path: Path) -> None:
    env = {"MUTUALPLAN_HOME": str(tmp_path / "from-env"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert resolve_home(tmp_path / "from-option", env) == tmp_path / "from-option"
    assert resolve_home(None, env) == tmp_path / "from-env"
    assert resolve_home(None, {"XDG_DATA_HOME": str(tmp_path / "xdg")}) == tmp_path / "xdg" / "mutualplan"
    assert default_home({}) == Path.home() / ".local" / "share" / "mutualplan"
    # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    assert default_home({"XDG_DATA_HOME": "relative/dir"}) == Path.home() / ".local" / "share" / "mutualplan"


def test_init_makes_every_part_of_a_home(tmp_path: Path) -> None:
    home = init_home(tmp_path / "deals", env={})
    assert home.root == tmp_path / "deals"
    for folder in ("archive", "mail", "spool"):
        assert (home.root / folder).is_dir()
    assert (home.root / "mutualplan.db").is_file()
    assert (home.root.stat().st_mode & 0o777) == 0o700
    # The settings a new home starts with are the documented example, byte for byte.
    assert home.settings_path.read_bytes() == (REPO / "config" / "mutualplan.toml").read_bytes()
    assert EXAMPLE_SETTINGS == REPO / "config" / "mutualplan.toml"
    sections = {"seller", "store", "mailbox", "policy", "letter", "inbound", "reminders", "archive"}
    assert set(tomllib.loads(home.settings_path.read_text())) == sections
    assert home.store_url({}) == f"sqlite:///{tmp_path / 'deals' / 'mutualplan.db'}"
    with home.open_store({}) as store:
        assert store.plan_ids() == []


def test_init_keeps_an_existing_home_as_it_is(tmp_path: Path) -> None:
    home = init_home(tmp_path / "deals", env={})
    edited = home.settings_path.read_text().replace('# company = "Northwind Analytics"', 'company = "Contoso"')
    home.settings_path.write_text(edited)
    init_home(tmp_path / "deals", env={})
    assert home.settings_path.read_text() == edited
    assert home.settings()["seller"] == {"company": "Contoso"}


def test_the_store_url_comes_from_the_variable_else_the_settings(tmp_path: Path) -> None:
    home = init_home(tmp_path / "deals", env={})
    home.settings_path.write_text('[store]\nurl = "postgresql+psycopg://mp@db.internal/mutualplan"\n')
    assert home.store_url({}) == "postgresql+psycopg://mp@db.internal/mutualplan"
    env = {"MUTUALPLAN_STORE_URL": f"sqlite:///{tmp_path / 'other.db'}"}
    assert home.store_url(env) == env["MUTUALPLAN_STORE_URL"]
    home.settings_path.write_text("[store]\nurl = 5\n")
    with pytest.raises(ConfigError, match=r"\[store\] url must be text in quotes, not 5"):
        home.store_url({})


def test_a_directory_that_is_not_a_home_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a Mutual Plan home") as info:
        open_home(tmp_path, env={})
    assert f"mutualplan init {tmp_path}" in (info.value.hint or "")
    home = init_home(tmp_path / "deals", env={})
    assert open_home(None, env={"MUTUALPLAN_HOME": str(home.root)}) == home
    home.settings_path.write_text("[store\n")
    with pytest.raises(ConfigError, match=r"mutualplan\.toml: "):
        Home(home.root).settings()
