"""One seller's mailbox on Microsoft Graph: its URLs (under /users/{mailbox}, or /me) and the requests made to them."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from pipeline.mailbox.graph.auth import token_source
from pipeline.mailbox.graph.http import GraphHttp, app_gate_for, gate_for
from pipeline.mailbox.graph.settings import GraphSettings


class GraphApi:
    """The HTTP client of one mailbox, with the paths of its resources."""

    def __init__(self, settings: GraphSettings, token: Callable[[], str] | None = None) -> None:
        self.settings = settings
        self.name = f"graph:{settings.mailbox or 'me'}"
        self._base = settings.base_url.rstrip("/")
        self._user = f"/users/{quote(settings.mailbox, safe='@')}" if settings.mailbox else "/me"
        verify: Any = ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else True
        # Exchange Online throttles per app and mailbox, so the limit is shared by every adapter of it.
        gate_key = settings.mailbox or f"me:{settings.token_cache_path}"
        self.http = GraphHttp(
            token=token or token_source(settings),
            gate=gate_for(self._base, gate_key, settings.max_concurrency),
            app_gate=app_gate_for(self._base, settings.client_id, settings.app_max_concurrency),
            verify=verify,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            max_retry_after=settings.max_retry_after,
        )

    def post(self, path: str, what: str, **kwargs: Any) -> Any:
        """POST to a path of the mailbox."""
        return self.http.request("POST", self.url(path), what=what, **kwargs)

    def url(self, path: str) -> str:
        """The full URL of a path under the mailbox (/messages, /mailFolders/...)."""
        return f"{self._base}{self._user}{path}"

    def state_key(self, what: str) -> str:
        """The Cursors name this mailbox keeps `what` (deltaLink, roundStarted) under."""
        return f"{self.name}:{what}"


def quoted(value: str) -> str:
    """A value for an OData string literal."""
    # OData string literals double their single quotes.
    return value.replace("'", "''")
