"""The Graph backend's settings: the tenant and app, the seller's mailbox, how to sign in, and how hard to push."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pipeline.errors import ConfigError
from pipeline.mailbox.base import check_option_types

AUTH_MODES = ("app", "device_code")


@dataclass(frozen=True)
class GraphSettings:
    """How to reach one seller's Exchange Online mailbox through Microsoft Graph (see docs/graph.md)."""

    SECRETS: ClassVar[tuple[str, ...]] = ("client_secret", "certificate_password")  # from the environment

    tenant: str
    client_id: str
    # The seller's mailbox: user principal name (dana@example.com) or Entra user id. Empty with
    # device_code means the signed-in user's own mailbox (/me).
    mailbox: str = ""
    auth: str = "app"
    client_secret: str | None = None
    certificate_path: str | None = None
    certificate_password: str | None = None
    token_cache_path: str | None = None
    base_url: str = "https://graph.microsoft.com/v1.0"
    authority_url: str = "https://login.microsoftonline.com"
    processed_folder: str = "Mutual Plan/Processed"
    held_folder: str = "Mutual Plan/Held"
    category: str = "Mutual Plan"
    first_sync_days: int = 14
    max_concurrency: int = 4
    # Requests in flight for the whole app registration from this process, over all its mailboxes: Graph limits
    # an app as well as each mailbox, and a team's worker polls many mailboxes at once.
    app_max_concurrency: int = 16
    max_retries: int = 5
    max_retry_after: float = 120.0
    page_size: int = 50
    timeout: float = 60.0
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        if not self.tenant or not self.client_id:
            raise ConfigError(
                "the graph mailbox needs a tenant and a client_id",
                hint="copy both from the app registration's Overview page in the Entra admin center",
            )
        if self.auth not in AUTH_MODES:
            raise ConfigError(f"graph auth must be one of {', '.join(AUTH_MODES)}, not {self.auth!r}")
        if self.auth == "app":
            if not self.mailbox:
                raise ConfigError(
                    "the graph mailbox with app sign-in needs the seller's mailbox",
                    hint="set mailbox to the seller's address (user principal name)",
                )
            if not (self.client_secret or self.certificate_path):
                raise ConfigError(
                    "the graph mailbox with app sign-in needs a client secret or a certificate",
                    hint="set certificate_path (preferred) or the client secret's environment variable",
                )
        if self.auth == "device_code" and not self.token_cache_path:
            raise ConfigError(
                "the graph mailbox with device_code sign-in needs token_cache_path",
                hint="a file in the home, e.g. graph-token.json; it is written owner-only (0600)",
            )
        if not 1 <= self.max_concurrency <= 4:
            raise ConfigError("graph max_concurrency must be between 1 and 4 (Exchange Online's limit per mailbox)")
        if not 1 <= self.app_max_concurrency <= 256:
            raise ConfigError("graph app_max_concurrency must be between 1 and 256",
                              hint="the requests one process has in flight for the app, over all its mailboxes")

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        *,
        client_secret: str | None = None,
        certificate_password: str | None = None,
    ) -> GraphSettings:
        """Settings from the [mailbox] table; secrets come separately, from the environment."""
        secret_names = set(cls.SECRETS)
        known = {f.name for f in fields(cls)} - secret_names
        values = {k: v for k, v in options.items() if k != "backend" and not k.endswith("_env")}
        unknown = sorted(set(values) - known)
        if unknown:
            hint = 'secrets go in the environment: client_secret_env = "NAME"' if secret_names & set(unknown) else None
            raise ConfigError(
                f"[mailbox] has settings the graph backend does not know: {', '.join(unknown)}",
                hint=hint or "see docs/graph.md for the settings",
            )
        check_option_types(cls, values)
        return cls(**values, client_secret=client_secret, certificate_password=certificate_password)

    @property
    def authority(self) -> str:
        return f"{self.authority_url.rstrip('/')}/{self.tenant}"

    @property
    def resource(self) -> str:
        """The token audience: the origin of the Graph endpoint (https://graph.microsoft.com)."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"
