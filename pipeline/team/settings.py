"""The team settings file (team.toml): the store, the one Graph app registration, and every seller.

Each seller is checked as a home's settings are (pipeline.config.load_settings), so a seller's [seller], [policy],
[letter] and [mailbox] mean what they mean in a single-seller home. Secrets are never in the file: IMAP and
Exchange name environment variables per seller (password_env), Graph reads the app's secret from the variable
[graph] client_secret_env names.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError

TEAM_FILE = "team.toml"
ENV_TEAM = "MUTUALPLAN_TEAM"
SELLER_ID = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
# Settings that are secrets: the file names the environment variable that holds one, never the value.
SECRET_KEYS = ("password", "smtp_password", "client_secret", "certificate_password", "access_token")
# The Graph app registration's settings, given once in [graph] and shared by every graph seller.
GRAPH_APP_KEYS = ("tenant", "client_id", "client_secret_env", "certificate_path", "certificate_password_env",
                  "base_url", "authority_url", "ca_bundle", "app_max_concurrency")
_TOP = ("store", "graph", "worker", "sellers")
_SELLER_KEYS = ("id", "removed", "seller", "letter", "policy", "reminders", "inbound", "mailbox", "poll_interval")


@dataclass(frozen=True)
class Seller:
    """One seller of the team: their id, their home-style settings, and whether their mailbox is read."""

    id: str
    settings: Settings
    poll_interval: int
    removed: str | None = None  # when `team remove-seller` stopped reading the mailbox; the record is kept

    @property
    def active(self) -> bool:
        return self.removed is None

    @property
    def scope(self) -> str:
        """The seller's scope in the store (a PostgreSQL schema of its own)."""
        return seller_scope(self.id)

    def summary(self) -> dict[str, Any]:
        """What `team list` shows: never a secret (the file holds none)."""
        mailbox = dict(self.settings.mailbox)
        return {"id": self.id, "name": self.settings.seller.get("name"), "email": self.settings.seller.get("email"),
                "company": self.settings.seller.get("company"), "letterhead": self.settings.letterhead,
                "policy": self.settings.policy.changes, "backend": mailbox.get("backend"),
                "mailbox": mailbox.get("mailbox") or mailbox.get("username") or mailbox.get("path"),
                "poll_interval": self.poll_interval, "active": self.active, "removed": self.removed}


@dataclass(frozen=True)
class Team:
    """The team settings, checked: where the store is, the Graph app, the sellers."""

    path: Path
    store_url: str
    graph: Mapping[str, Any]
    sellers: tuple[Seller, ...]
    poll_interval: int = 60

    def seller(self, seller_id: str) -> Seller:
        """The seller with this id; a ConfigError naming the known ones otherwise."""
        for seller in self.sellers:
            if seller.id == seller_id:
                return seller
        known = ", ".join(s.id for s in self.sellers) or "none yet"
        raise ConfigError(f"{self.path}: no seller {seller_id!r} in the team",
                          hint=f"known sellers: {known}; add one with `mutualplan team add-seller`")

    @property
    def active(self) -> tuple[Seller, ...]:
        return tuple(s for s in self.sellers if s.active)


def seller_scope(seller_id: str) -> str:
    """The PostgreSQL schema that holds one seller's plans (ids are checked, so this is a safe identifier)."""
    return "seller_" + seller_id.replace("-", "_")


def team_path(option: str | os.PathLike[str] | None, env: Mapping[str, str] = os.environ) -> Path:
    """team.toml in the --team directory, else in $MUTUALPLAN_TEAM."""
    where = option or env.get(ENV_TEAM)
    if not where:
        raise ConfigError("no team given", hint=f"pass --team DIR or set ${ENV_TEAM} to the folder of {TEAM_FILE}")
    return Path(where).expanduser() / TEAM_FILE


def load_team(path: Path, env: Mapping[str, str] = os.environ) -> Team:
    """Read and check team.toml; PostgreSQL is required (a team's workers share one database)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist",
                          hint="make it with `mutualplan team init --store-url postgresql+psycopg://...`") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return read_team(data, path, env)


def read_team(data: Mapping[str, Any], path: Path, env: Mapping[str, str] = os.environ) -> Team:
    """Check parsed team settings; every mistake names the seller and setting."""
    where = str(path)
    unknown = sorted(set(data) - set(_TOP))
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)}", hint=f"known: {', '.join(_TOP)}")
    url = str(env.get("MUTUALPLAN_STORE_URL") or (data.get("store") or {}).get("url") or "")
    require_postgres(url, where)
    graph = dict(data.get("graph") or {})
    bad = sorted(set(graph) - set(GRAPH_APP_KEYS))
    if bad:
        raise ConfigError(f"{where}: [graph] has unknown setting(s) {', '.join(bad)}",
                          hint=f"known: {', '.join(GRAPH_APP_KEYS)}; a secret goes in client_secret_env")
    interval = _interval((data.get("worker") or {}).get("poll_interval", 60), f"{where}: [worker] poll_interval")
    sellers: list[Seller] = []
    for raw in data.get("sellers") or []:
        seller = read_seller(raw, graph, where, default_interval=interval)
        if any(s.id == seller.id for s in sellers):
            raise ConfigError(f"{where}: seller {seller.id!r} is listed twice", hint="each seller id once")
        sellers.append(seller)
    return Team(path=path, store_url=url, graph=graph, sellers=tuple(sellers), poll_interval=interval)


def require_postgres(url: str, where: str) -> None:
    """Team mode runs on PostgreSQL only: workers on several machines share its locks and queue."""
    if not url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        shown = url.split("://", 1)[0] + "://..." if url else "none"
        raise ConfigError(f"{where}: a team needs a PostgreSQL store ([store] url is {shown})",
                          hint="set [store] url = \"postgresql+psycopg://USER@HOST/DATABASE\"; a single seller's "
                          "home on SQLite needs no team (`mutualplan init`)")


def read_seller(raw: Any, graph: Mapping[str, Any], where: str, *, default_interval: int = 60) -> Seller:
    """One [[sellers]] entry, checked as a home's settings are."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: each [[sellers]] entry is a table")
    seller_id = str(raw.get("id", ""))
    if not SELLER_ID.match(seller_id):
        raise ConfigError(f"{where}: seller id {seller_id!r} is not a short lowercase name",
                          hint="use letters, digits and dashes, starting with a letter (e.g. jo-smith)")
    here = f"{where}: seller {seller_id}"
    unknown = sorted(set(raw) - set(_SELLER_KEYS))
    if unknown:
        raise ConfigError(f"{here}: unknown setting(s) {', '.join(unknown)}", hint=f"known: {', '.join(_SELLER_KEYS)}")
    mailbox = dict(raw.get("mailbox") or {})
    check_no_secrets(mailbox, here)
    if mailbox.get("backend") == "graph":
        # One app registration reads every seller's mailbox; the seller's table names only the mailbox.
        mailbox = {**{k: v for k, v in graph.items()}, **mailbox}
        if not graph.get("tenant") or not graph.get("client_id"):
            raise ConfigError(f"{here}: a graph mailbox needs the team's [graph] tenant and client_id",
                              hint="add [graph] with the app registration's tenant, client_id, client_secret_env")
    home_like = {k: raw[k] for k in ("seller", "policy", "reminders", "inbound") if k in raw}
    home_like["mailbox"] = mailbox
    if "letter" in raw:
        home_like["letter"] = raw["letter"]
    settings = load_settings(home_like, here)
    removed = raw.get("removed")
    return Seller(id=seller_id, settings=settings, removed=str(removed) if removed else None,
                  poll_interval=_interval(raw.get("poll_interval", default_interval), f"{here}: poll_interval"))


def check_no_secrets(mailbox: Mapping[str, Any], where: str) -> None:
    """Refuse a secret written into the file: name the environment variable that holds it instead."""
    found = sorted(k for k in mailbox if k in SECRET_KEYS)
    if found:
        raise ConfigError(f"{where}: [mailbox] {', '.join(found)} would keep a secret in the team file",
                          hint=f"write {found[0]}_env = \"NAME\" and export NAME=... where the workers run")


def _interval(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 5:
        raise ConfigError(f"{what} must be a whole number of seconds, 5 or more, not {value!r}")
    return value


# --- writing the file -----------------------------------------------------------------------------------------


def init_team(directory: Path, store_url: str) -> Path:
    """Write a new team.toml naming the store (an existing file is kept as it is)."""
    require_postgres(store_url, "--store-url")
    path = directory / TEAM_FILE
    if path.exists():
        raise ConfigError(f"{path} exists already", hint="edit it, or add sellers with `mutualplan team add-seller`")
    directory.mkdir(parents=True, exist_ok=True)
    doc = tomlkit.document()
    doc.add(tomlkit.comment("Mutual Plan team settings: the store, the Graph app, the sellers (docs/team.md)."))
    doc["store"] = {"url": store_url}
    doc["worker"] = {"poll_interval": 60}
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def add_seller(path: Path, entry: Mapping[str, Any], env: Mapping[str, str] = os.environ) -> Seller:
    """Append a seller to team.toml (comments and order kept), after checking the whole file with it."""
    doc = _document(path)
    sellers = doc.setdefault("sellers", tomlkit.aot())
    if any(str(s.get("id")) == entry.get("id") for s in sellers):
        raise ConfigError(f"{path}: seller {entry.get('id')!r} is in the team already",
                          hint="pick another id, or edit the seller's entry in the file")
    sellers.append(tomlkit.item(dict(entry)))
    team = read_team(doc.unwrap(), path, env)  # the new file must read before it is written
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return team.seller(str(entry["id"]))


def remove_seller(path: Path, seller_id: str, at: str, env: Mapping[str, str] = os.environ) -> Seller:
    """Stop reading a seller's mailbox: the entry stays, marked removed, and their plans stay in the store."""
    doc = _document(path)
    for table in doc.get("sellers", []):
        if str(table.get("id")) == seller_id:
            if not table.get("removed"):
                table["removed"] = at
            path.write_text(tomlkit.dumps(doc), encoding="utf-8")
            return read_team(doc.unwrap(), path, env).seller(seller_id)
    return load_team(path, env).seller(seller_id)  # raises, naming the known sellers


def _document(path: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist",
                          hint="make it with `mutualplan team init --store-url postgresql+psycopg://...`") from None
