"""The Exchange backend's settings: the EWS endpoint, the seller's mailbox, how to sign in, and where mail is filed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from pipeline.errors import ConfigError
from pipeline.mailbox.base import check_option_types

AUTH_TYPES = ("oauth2-app", "oauth2-delegated", "ntlm", "basic")
FIRST_SYNC = ("unread", "all")
# SyncFolderItems' MaxChangesReturned must be "between 1 and 512, inclusive"; past it every poll is a schema error.
BATCH_SIZE_RANGE = (1, 512)


def check_batch_size(value: object) -> None:
    """Raise ConfigError unless `value` is a whole number EWS accepts as MaxChangesReturned."""
    low, high = BATCH_SIZE_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"[mailbox] batch_size {value!r} is outside the range {low} to {high} that Exchange allows",
                          hint=f"SyncFolderItems returns at most {high} changes a call; see docs/exchange.md")


@dataclass(frozen=True)
class ExchangeSettings:
    """Where the seller's Exchange mailbox is and how to sign in to it."""

    SECRETS: ClassVar[tuple[str, ...]] = ("password", "client_secret", "access_token")  # from the environment

    endpoint: str
    mailbox: str
    auth: str = "oauth2-app"
    server_version: str = "Exchange2016"
    client_id: str | None = None
    client_secret: str | None = None
    tenant_id: str | None = None
    access_token: str | Callable[[], str] | None = None
    username: str | None = None
    password: str | None = None
    impersonate: bool | None = None
    token_url: str | None = None
    scope: str = "https://outlook.office365.com/.default"
    max_wait: float = 300.0
    timeout: float = 60.0
    timezone: str = "UTC"
    processed_folder: str = "Mutual Plan"
    held_folder: str = "Mutual Plan/Held"
    category: str = "Mutual Plan"
    first_sync: str = "unread"
    batch_size: int = 100

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        *,
        password: str | None = None,
        client_secret: str | None = None,
        access_token: str | None = None,
    ) -> ExchangeSettings:
        """Settings from the [mailbox] table (secrets come separately, from the environment)."""
        known = {f.name for f in fields(cls)} - set(cls.SECRETS)
        values = {k: v for k, v in options.items() if k != "backend" and not k.endswith("_env")}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"[mailbox] has settings the exchange backend does not know: {', '.join(unknown)}",
                              hint="see docs/exchange.md for the settings")
        check_option_types(cls, values)
        for required in ("endpoint", "mailbox"):
            if not values.get(required):
                raise ConfigError(f"[mailbox] {required} is missing for the exchange backend")
        return cls(**values, password=password, client_secret=client_secret, access_token=access_token)

    def check(self) -> None:
        """Raise ConfigError naming the first setting that cannot work."""
        if not self.endpoint.startswith(("https://", "http://")):
            raise ConfigError(f"exchange endpoint {self.endpoint!r} is not a URL",
                              hint="Use the full EWS URL, e.g. https://mail.example.com/EWS/Exchange.asmx")
        if "@" not in self.mailbox:
            raise ConfigError(f"exchange mailbox {self.mailbox!r} is not an email address")
        if self.auth not in AUTH_TYPES:
            raise ConfigError(f"exchange auth {self.auth!r} is not one of {', '.join(AUTH_TYPES)}")
        needed = {
            "oauth2-app": ("client_id", "client_secret", "tenant_id"),
            "oauth2-delegated": ("access_token",),
            "ntlm": ("username", "password"),
            "basic": ("username", "password"),
        }[self.auth]
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ConfigError(f"exchange auth {self.auth} needs {', '.join(missing)}")
        if self.first_sync not in FIRST_SYNC:
            raise ConfigError(f"exchange first_sync {self.first_sync!r} is not one of {', '.join(FIRST_SYNC)}")
        if self.max_wait < 0 or self.timeout <= 0:
            raise ConfigError("exchange max_wait and timeout must be positive")
        check_batch_size(self.batch_size)
        try:
            pinned_version(self.server_version)
        except ValueError as e:
            raise ConfigError(str(e)) from None


# Pinned versions by name: the build we announce and the RequestServerVersion we send.
_VERSIONS = {
    "Exchange2010_SP2": ("EXCHANGE_2010_SP2", "Exchange2010_SP2"),
    "Exchange2013": ("EXCHANGE_2013", "Exchange2013"),
    "Exchange2013_SP1": ("EXCHANGE_2013_SP1", "Exchange2013_SP1"),
    "Exchange2016": ("EXCHANGE_2016", "Exchange2016"),
    "Exchange2019": ("EXCHANGE_2019", "Exchange2016"),
    "ExchangeOnline": ("EXCHANGE_O365", "Exchange2016"),
}


def pinned_version(name: str) -> Any:
    """exchangelib's Version for a pinned version name; ValueError for a name not in the list."""
    from exchangelib import version

    if name not in _VERSIONS:
        raise ValueError(f"unknown Exchange server version {name!r} (known: {', '.join(_VERSIONS)})")
    build, api = _VERSIONS[name]
    return version.Version(build=getattr(version, build), api_version=api)
