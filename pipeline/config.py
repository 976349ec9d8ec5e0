"""Settings from a home's mutualplan.toml, and the registry that turns [mailbox] into an adapter.

Only this module and the CLI name concrete mailbox backends; secrets come from environment variables
whose names the settings give (`password_env = "MUTUALPLAN_IMAP_PASSWORD"`), never from the file.
"""

from __future__ import annotations

import difflib
import math
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.errors import ConfigError
from pipeline.mailbox.base import Cursors, Mailbox, check_option_types

BACKENDS = ("maildir", "imap", "exchange", "graph")
POLICIES = ("review", "auto")


@dataclass(frozen=True)
class Policy:
    """What the pipeline may do without the seller, and the limits that keep the loop safe."""

    changes: str = "review"  # review: follow-ups wait in Drafts; auto: sent at once
    asks: Mapping[str, str] = field(default_factory=dict)  # change kind -> what to ask in return
    max_message_bytes: int = 25 * 1024 * 1024
    trusted_authserv_ids: tuple[str, ...] = ()
    max_messages_per_sender_per_hour: int = 20
    reminders: bool = True
    remind_days_before: int = 3
    digest: bool = True
    digest_weekday: int = 0  # Monday; the digest goes on the first poll of that day from 8:00 to 18:00


@dataclass(frozen=True)
class Inbound:
    """How a plan the seller writes in an email is recognized in the watched mailbox (any one sign will do)."""

    addresses: tuple[str, ...] = ()  # the pipeline's address(es) the seller puts in Bcc
    subject_tag: str = "[Mutual Plan]"  # "" turns the tag off
    category: str = ""  # an Outlook category (Exchange writes categories as a Keywords header)


@dataclass(frozen=True)
class Settings:
    """Everything a home's settings say, checked."""

    seller: Mapping[str, Any] = field(default_factory=dict)
    letterhead: str = "default"
    mailbox: Mapping[str, Any] = field(default_factory=lambda: {"backend": "maildir"})
    policy: Policy = field(default_factory=Policy)
    inbound: Inbound = field(default_factory=Inbound)
    tsa_url: str = ""  # [archive] tsa_url: a timestamp authority (RFC 3161) that stamps each export's manifest

    @property
    def seller_addresses(self) -> tuple[str, ...]:
        """The seller's own addresses: [seller] email and any aliases."""
        found = [str(self.seller.get("email", "")).lower()]
        found += [str(a).lower() for a in self.seller.get("aliases", []) or []]
        return tuple(a for a in found if a)

    @property
    def own_domains(self) -> tuple[str, ...]:
        """Domains our Message-IDs are made on (the seller's), for recognizing our own mail."""
        return tuple(sorted({a.rpartition("@")[2] for a in self.seller_addresses}))

    @property
    def seller_timezone(self) -> str:
        """[seller] timezone: where the weekly digest goes out at 8:00, and where plans written in an email live."""
        return str(self.seller.get("timezone") or "UTC")

    def plan_defaults(self) -> dict[str, Any]:
        """What a plan's front matter falls back on."""
        out: dict[str, Any] = {"letterhead": self.letterhead}
        seller = {k: v for k, v in self.seller.items() if k in ("company", "name", "title", "email", "address")}
        if seller:
            out["seller"] = seller
        return out


# The kinds of change [policy.asks] may name (loop/policy.py DEFAULT_ASKS has one sentence for each).
ASK_KINDS = ("later", "remove", "add-seller", "add-buyer", "retarget", "reassign")

# The settings each section knows; a misspelt one would otherwise be ignored and its default used in silence.
_KNOWN = {
    "seller": ("company", "name", "title", "email", "address", "timezone", "aliases"),
    "store": ("url",),
    "policy": ("changes", "asks", "max_message_mb", "trusted_authserv_ids", "max_messages_per_sender_per_hour"),
    "reminders": ("enabled", "days_before", "digest", "digest_day"),
    "letter": ("letterhead",),
    "archive": ("tsa_url",),
    "maildir": ("backend", "path"),  # [mailbox] of the maildir backend; the others' come from their settings class
}


def _table(data: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: [{name}] must be a table")
    if name in _KNOWN:
        _only_known(value, name, _KNOWN[name], where)
    return value


def _only_known(table: Mapping[str, Any], name: str, known: tuple[str, ...], where: str,
                documented: str = "config/mutualplan.toml") -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        close = [f"{u} -> {m[0]}" for u in unknown if (m := difflib.get_close_matches(u, known, n=1, cutoff=0.6))]
        guess = f"did you mean {', '.join(c.split(' -> ')[1] for c in close)}? " if close else ""
        raise ConfigError(f"{where}: [{name}] has unknown setting(s) {', '.join(unknown)}",
                          hint=f"{guess}known: {', '.join(known)}; {documented} documents each")


def _text(section: Mapping[str, Any], name: str, key: str, default: str, where: str) -> str:
    """A setting that is a piece of text: a number or a flag there is a mistake, not something to turn into text."""
    value = section.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: [{name}] {key} must be text in quotes, not {value!r}",
                          hint=f'write {key} = "..."')
    return value


def _texts(section: Mapping[str, Any], name: str, key: str, where: str, what: str = "texts") -> list[str]:
    """A setting that is a list of texts."""
    value = section.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: [{name}] {key} must be a list of {what}, not {value!r}",
                          hint=f'write {key} = ["..."]')
    return value


def _flag(section: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: [reminders] {key} must be true or false, not {value!r}",
                          hint=f"write {key} = true or {key} = false, without quotes")
    return value


def _count(value: Any, what: str, where: str, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        kind = "a positive whole number" if least > 0 else "a whole number of days, 0 or more"
        raise ConfigError(f"{where}: {what} must be {kind}, not {value!r}", hint="write a number without quotes")
    return value


def load_settings(data: Mapping[str, Any], where: str = "mutualplan.toml") -> Settings:
    """Check and read the settings; every mistake names the setting and what is allowed."""
    known = {"seller", "store", "mailbox", "policy", "letter", "reminders", "inbound", "archive"}
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown section [{key}]", hint=f"known sections: {', '.join(sorted(known))}")
    seller = _table(data, "seller", where)
    for key in ("company", "name", "title", "email", "address", "timezone"):
        if key in seller and not (key == "address" and isinstance(seller[key], list)):
            _text(seller, "seller", key, "", where)
    _texts(seller, "seller", "aliases", where, "email addresses")
    timezone = str(seller.get("timezone", "UTC"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: [seller] timezone {timezone!r} is unknown",
                          hint="use an IANA name such as America/Los_Angeles") from None
    store_url(data, where)
    mailbox = dict(_table(data, "mailbox", where))
    backend = mailbox.setdefault("backend", "maildir")
    if backend not in BACKENDS:
        raise ConfigError(
            f"{where}: [mailbox] backend {backend!r} is unknown", hint=f"use one of: {', '.join(BACKENDS)}"
        )
    _check_mailbox(mailbox, where)
    raw_policy = dict(_table(data, "policy", where))
    changes = raw_policy.get("changes", "review")
    if changes not in POLICIES:
        raise ConfigError(f"{where}: [policy] changes must be \"review\" or \"auto\", not {changes!r}")
    asks = raw_policy.get("asks", {})
    if not isinstance(asks, Mapping) or not all(isinstance(v, str) for v in asks.values()):
        raise ConfigError(f"{where}: [policy.asks] maps a kind of change to a sentence")
    _only_known(asks, "policy.asks", ASK_KINDS, where)
    max_mb = raw_policy.get("max_message_mb", 25)
    # nan and inf are TOML floats too; neither is a size.
    if isinstance(max_mb, bool) or not isinstance(max_mb, int | float) or not math.isfinite(max_mb) or max_mb <= 0 \
            or max_mb > 1024 * 1024:
        raise ConfigError(f"{where}: [policy] max_message_mb must be a positive number of megabytes, not {max_mb!r}",
                          hint="write e.g. max_message_mb = 25, without quotes")
    trusted = _texts(raw_policy, "policy", "trusted_authserv_ids", where, "host names")
    rate = _count(raw_policy.get("max_messages_per_sender_per_hour", 20),
                  "[policy] max_messages_per_sender_per_hour", where, least=1)
    reminders = _table(data, "reminders", where)
    policy = Policy(
        changes=changes,
        asks=dict(asks),
        max_message_bytes=int(max_mb * 1024 * 1024),
        trusted_authserv_ids=tuple(t.lower() for t in trusted),
        max_messages_per_sender_per_hour=rate,
        reminders=_flag(reminders, "enabled", True, where),
        remind_days_before=_count(reminders.get("days_before", 3), "[reminders] days_before", where, least=0),
        digest=_flag(reminders, "digest", True, where),
        digest_weekday=_weekday(reminders.get("digest_day", "monday"), where),
    )
    letter = _table(data, "letter", where)
    return Settings(seller=dict(seller), letterhead=_text(letter, "letter", "letterhead", "default", where),
                    mailbox=mailbox, policy=policy, inbound=_inbound(_table(data, "inbound", where), where),
                    tsa_url=_tsa_url(_table(data, "archive", where), where))


def _tsa_url(archive: Mapping[str, Any], where: str) -> str:
    return check_tsa_url(archive.get("tsa_url", ""), f"{where}: [archive] tsa_url",
                         example='tsa_url = "https://freetsa.org/tsr"')


def check_tsa_url(value: Any, what: str, *, example: str) -> str:
    """A timestamp authority's http(s) address as given ("" for none); a ConfigError naming `what` otherwise."""
    if not isinstance(value, str) or (value and not value.startswith(("http://", "https://"))):
        raise ConfigError(f"{what} must be the http(s) address of a timestamp authority, not {value!r}",
                          hint=f"write e.g. {example}, or leave it out")
    return value


def store_url(data: Mapping[str, Any], where: str) -> str:
    """[store] url as written ("" when unset), checked."""
    return _text(_table(data, "store", where), "store", "url", "", where)


_BACKEND_DOCS = {"imap": "config/mutualplan.toml", "exchange": "docs/exchange.md", "graph": "docs/graph.md"}


def _backend_settings(backend: str) -> tuple[type, tuple[str, ...]]:
    """The settings class of a backend other than maildir (imported only when named), and its secrets."""
    if backend == "imap":
        from pipeline.mailbox.imap import ImapSettings

        return ImapSettings, ImapSettings.SECRETS
    if backend == "exchange":
        from pipeline.mailbox.exchange import ExchangeSettings

        return ExchangeSettings, ExchangeSettings.SECRETS
    from pipeline.mailbox.graph import GraphSettings

    return GraphSettings, GraphSettings.SECRETS


def _check_mailbox(mailbox: Mapping[str, Any], where: str) -> None:
    """Refuse, at load, a [mailbox] setting the backend does not know or could not use on any poll."""
    if mailbox["backend"] == "maildir":
        _only_known(mailbox, "mailbox", _KNOWN["maildir"], where)
        _text(mailbox, "mailbox", "path", "", where)
        return
    settings_class, secrets = _backend_settings(mailbox["backend"])
    # A secret is never written in the file, only the name of the environment variable that holds it.
    named = (f.name for f in fields(settings_class) if f.name not in secrets)
    known = ("backend", *named, *(f"{s}_env" for s in secrets))
    _only_known(mailbox, "mailbox", known, where, _BACKEND_DOCS[mailbox["backend"]])
    try:
        check_option_types(settings_class, mailbox)
        if mailbox["backend"] == "exchange" and "batch_size" in mailbox:
            from pipeline.mailbox.exchange.settings import check_batch_size

            check_batch_size(mailbox["batch_size"])
    except ConfigError as e:
        raise ConfigError(f"{where}: {e.message}", hint=e.hint) from None


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _weekday(value: Any, where: str) -> int:
    day = str(value).strip().lower()
    if day not in _WEEKDAYS:
        raise ConfigError(f"{where}: [reminders] digest_day {value!r} is not a day of the week",
                          hint="write e.g. digest_day = \"monday\"")
    return _WEEKDAYS.index(day)


def _inbound(raw: Mapping[str, Any], where: str) -> Inbound:
    _only_known(raw, "inbound", ("addresses", "subject_tag", "category"), where)
    addresses = raw.get("addresses", [])
    if isinstance(addresses, str):
        addresses = [addresses]
    if not isinstance(addresses, list) or not all(isinstance(a, str) and "@" in a for a in addresses):
        raise ConfigError(f"{where}: [inbound] addresses is a list of email addresses")
    return Inbound(addresses=tuple(a.strip().lower() for a in addresses),
                   subject_tag=_text(raw, "inbound", "subject_tag", "[Mutual Plan]", where),
                   category=_text(raw, "inbound", "category", "", where))


def _secret(options: Mapping[str, Any], key: str, env: Mapping[str, str], backend: str) -> str | None:
    name = options.get(f"{key}_env")
    if not name:
        return None
    value = env.get(str(name))
    if value is None:
        raise ConfigError(
            f"[mailbox] {key}_env names ${name}, which is not set",
            hint=f"export {name}=... before running the {backend} backend",
        )
    return value


def open_mailbox(settings: Settings, mail_dir: Path, cursors: Cursors, env: Mapping[str, str] = os.environ) -> Mailbox:
    """The adapter [mailbox] names, connected lazily (nothing is contacted until it is used)."""
    options = settings.mailbox
    backend = options.get("backend", "maildir")
    if backend == "maildir":
        from pipeline.mailbox.maildir import MaildirMailbox

        return MaildirMailbox(Path(options.get("path") or mail_dir))
    if backend == "imap":
        from pipeline.mailbox.imap import ImapMailbox, ImapSettings

        secrets = {k: _secret(options, k, env, backend) for k in ImapSettings.SECRETS}
        return ImapMailbox(ImapSettings.from_options(options, **secrets), cursors)
    if backend == "exchange":
        from pipeline.mailbox.exchange import ExchangeMailbox, ExchangeSettings

        secrets = {k: _secret(options, k, env, backend) for k in ExchangeSettings.SECRETS}
        return ExchangeMailbox(ExchangeSettings.from_options(options, **secrets), cursors)
    from pipeline.mailbox.graph import GraphMailbox, GraphSettings

    secrets = {k: _secret(options, k, env, backend) for k in GraphSettings.SECRETS}
    return GraphMailbox(GraphSettings.from_options(options, **secrets), cursors)


NOT_SIGNED_IN_HERE = 'only a graph mailbox with auth = "device_code" signs in this way'


def sign_in_mailbox(settings: Settings, show: Callable[[str], None], warn: Callable[[str], None],
                    where: str = "mutualplan.toml") -> tuple[str, str]:
    """The seller's one device-code sign-in for a graph mailbox: who signed in, and the token cache's path.

    `show` gets the web address and code to give the seller; `warn` hears of a cache file others could read,
    which this sign-in replaces (owner-only, 0600) rather than reads.
    """
    options = settings.mailbox
    if options.get("backend") != "graph" or options.get("auth") != "device_code":
        raise ConfigError(f"{where}: {NOT_SIGNED_IN_HERE}; this [mailbox] needs no sign-in",
                          hint="an app (client secret or certificate) signs in by itself; see docs/graph.md")
    from pipeline.mailbox.graph import GraphSettings, sign_in

    graph = GraphSettings.from_options(options)  # checked as it is made
    cache = Path(str(graph.token_cache_path))
    try:
        mode = stat.S_IMODE(cache.stat().st_mode)
    except FileNotFoundError:
        mode = 0
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn(f"{cache} could be read by other users (mode {mode:o}); this sign-in replaces it. If others may have "
             "read it, revoke the seller's sessions in the Entra admin center.")
        cache.unlink()
    return sign_in(graph, show), str(cache)
