"""The IMAP backend's settings: where the seller's IMAP and SMTP servers are and how to sign in to them."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from pipeline.errors import ConfigError
from pipeline.mailbox.base import check_option_types

SECURITY = ("tls", "starttls", "plain")
FIRST_SYNC = ("unseen", "all")
IMAP_PORTS = {"tls": 993, "starttls": 143, "plain": 143}
SMTP_PORTS = {"tls": 465, "starttls": 587, "plain": 25}


@dataclass(frozen=True)
class ImapSettings:
    """Where the seller's IMAP and SMTP servers are and how to sign in to them."""

    SECRETS: ClassVar[tuple[str, ...]] = ("password", "smtp_password")  # from the environment, never the file

    host: str
    username: str
    password: str = field(repr=False)
    port: int | None = None
    security: str = "tls"
    address: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    folder: str = "INBOX"
    sent_folder: str | None = None
    drafts_folder: str | None = None
    append_sent: bool = True
    first_sync: str = "unseen"
    cafile: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], *, password: str | None = None, smtp_password: str | None = None
    ) -> ImapSettings:
        """Settings from the [mailbox] table; the passwords come separately, from the environment variables it names
        (`password_env`, `smtp_password_env`)."""
        values = {k: v for k, v in options.items() if k != "backend" and not k.endswith("_env")}
        unknown = sorted(set(values) - {f.name for f in fields(cls)} | set(values) & set(cls.SECRETS))
        if unknown:
            raise ConfigError(f"[mailbox] has settings the imap backend does not know: {', '.join(unknown)}",
                              hint="passwords come from environment variables (password_env); see the commented "
                              "[mailbox] section of config/mutualplan.toml")
        check_option_types(cls, values)
        for required in ("host", "username"):
            if not values.get(required):
                raise ConfigError(f"[mailbox] {required} is missing for the imap backend")
        if password is None:
            raise ConfigError("[mailbox] password_env is missing for the imap backend",
                              hint='name the environment variable that holds the password: password_env = "..."')
        return cls(**values, password=password, smtp_password=smtp_password)

    def check(self) -> None:
        """Raise ConfigError naming the first setting that cannot work."""
        for what, value in (("security", self.security), ("smtp_security", self.smtp_security)):
            if value not in SECURITY:
                raise ConfigError(f"imap {what} {value!r} is not one of {', '.join(SECURITY)}")
        if self.first_sync not in FIRST_SYNC:
            raise ConfigError(f"imap first_sync {self.first_sync!r} is not one of {', '.join(FIRST_SYNC)}")
        if not self.host:
            raise ConfigError("no IMAP host is set", hint="Set host in the [mailbox] table of the settings.")
        if not self.username or not self.password:
            raise ConfigError(
                f"no IMAP {'username' if not self.username else 'password'} for {self.host}",
                hint="The password comes from the environment variable the settings name, never from a file.",
            )
        for what, host, security in (
            ("security", self.host, self.security),
            ("smtp_security", self.smtp_host or self.host, self.smtp_security),
        ):
            if security == "plain" and not _is_loopback(host):
                raise ConfigError(
                    f"imap {what} = 'plain' would send the password unencrypted to {host}",
                    hint="Use 'tls' or 'starttls'; 'plain' is for a server on this machine only.",
                )

    @property
    def imap_port(self) -> int:
        """The IMAP port: as set, else the usual one for `security`."""
        return self.port or IMAP_PORTS[self.security]

    @property
    def smtp_server(self) -> tuple[str, int]:
        """The SMTP host and port: as set, else the IMAP host and the usual port for `smtp_security`."""
        return self.smtp_host or self.host, self.smtp_port or SMTP_PORTS[self.smtp_security]

    def tls_context(self) -> ssl.SSLContext:
        """A TLS context for both servers: the system's CAs, or `cafile` instead."""
        return ssl.create_default_context(cafile=self.cafile)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
