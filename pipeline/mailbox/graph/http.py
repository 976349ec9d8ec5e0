"""HTTP to Microsoft Graph for one mailbox: the token, immutable ids, throttling and errors people can read."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from pipeline.errors import MailboxError
from pipeline.mailbox.base import app_share

log = logging.getLogger(__name__)

# Ask for ids that survive a move between folders (learn.microsoft.com/graph/outlook-immutable-id):
# ack() moves a message, and the key we handed out must still find it after a crash.
PREFER_IMMUTABLE = 'IdType="ImmutableId"'

# Statuses Graph uses to say "not now": retried after Retry-After (learn.microsoft.com/graph/throttling).
RETRY_STATUSES = (429, 503)
# Methods safe to repeat when the connection broke before an answer; a POST may have sent mail.
IDEMPOTENT = frozenset({"GET", "PUT", "PATCH", "DELETE"})


class GraphError(MailboxError):
    """A refusal from Graph, with its HTTP status and Graph error code for callers that handle some."""

    def __init__(
        self, message: str, *, status: int, code: str = "", transient: bool = False, hint: str | None = None
    ) -> None:
        super().__init__(message, transient=transient, hint=hint)
        self.status = status
        self.code = code


class Gate:
    """What all clients of one mailbox share: a limit on requests in flight and a pause after throttling.

    An app's gate (`shared`) divides its limit over the team's live worker processes (`share_apps_over` in
    mailbox/base.py), so the app as a whole keeps about to its limit however many workers run."""

    def __init__(self, limit: int, *, shared: bool = False) -> None:
        self.limit = limit
        self.shared = shared
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._resume_at = 0.0
        # Counters for people and tests: how busy the mailbox got.
        self.in_flight = 0
        self.max_in_flight = 0

    def allowed(self) -> int:
        """Requests this process may have in flight now."""
        return max(1, self.limit // app_share()) if self.shared else self.limit

    def pause(self, seconds: float) -> None:
        """Hold every request to this mailbox for `seconds` (Graph's Retry-After is per mailbox)."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def wait(self) -> None:
        while True:
            with self._lock:
                remaining = self._resume_at - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(remaining)

    def enter(self) -> None:
        with self._free:
            # A timeout, not only a notify: a share that grows (a worker gone) frees slots no leave() announces.
            while self.in_flight >= self.allowed():
                self._free.wait(0.5)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._free:
            self.in_flight -= 1
            self._free.notify()


_gates: dict[tuple[str, str], Gate] = {}
_gates_lock = threading.Lock()


def gate_for(service: str, mailbox: str, limit: int, *, shared: bool = False) -> Gate:
    """The one Gate of a mailbox in this process, however many adapters talk to it."""
    key = (service.rstrip("/").lower(), mailbox.lower())
    with _gates_lock:
        if key not in _gates:
            _gates[key] = Gate(limit, shared=shared)
        return _gates[key]


def app_gate_for(service: str, client_id: str, limit: int) -> Gate:
    """The one Gate of an app registration in this process: its share of the app's requests in flight."""
    return gate_for(service, f"app:{client_id}", limit, shared=True)


class GraphHttp:
    """Requests to Graph with a bearer token, bounded concurrency, and Retry-After honoured (bounded)."""

    def __init__(
        self,
        *,
        token: Callable[[], str],
        gate: Gate,
        app_gate: Gate | None = None,
        verify: Any = True,
        timeout: float = 60.0,
        max_retries: int = 5,
        max_retry_after: float = 120.0,
    ) -> None:
        self._token = token
        self.gate = gate
        self.app_gate = app_gate
        self._max_retries = max_retries
        self._max_retry_after = max_retry_after
        self._client = httpx.Client(verify=verify, timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authorized: bool = True,
    ) -> httpx.Response:
        """Send one request, waiting out throttling; a 2xx answer, or a GraphError saying `what` failed."""
        attempt = 0
        while True:
            sent = {"Prefer": PREFER_IMMUTABLE, **(headers or {})}
            if authorized:
                sent["Authorization"] = f"Bearer {self._token()}"
            self.gate.wait()
            # The mailbox's slot first, then the app's: a request never holds an app slot while it waits for its
            # mailbox, so one busy mailbox cannot starve the others of the app's share.
            self.gate.enter()
            if self.app_gate is not None:
                self.app_gate.enter()
            failure: httpx.TransportError | None = None
            try:
                response = self._client.request(method, url, json=json, content=content, params=params, headers=sent)
            except httpx.TransportError as exc:
                failure = exc
            finally:
                if self.app_gate is not None:
                    self.app_gate.leave()
                self.gate.leave()
            retries_left = attempt < self._max_retries
            attempt += 1
            if failure is not None:
                if method in IDEMPOTENT and retries_left:
                    delay = min(2.0 ** (attempt - 1), 30.0)
                    log.warning("%s: %s; retrying in %.0f s", what, failure, delay)
                    time.sleep(delay)
                    continue
                raise GraphError(
                    f"could not reach Microsoft Graph to {what}: {failure}", status=0, transient=True
                ) from failure
            if response.status_code in RETRY_STATUSES:
                delay = retry_after(response, default=min(2.0 ** (attempt - 1), 30.0))
                if not retries_left:
                    raise GraphError(
                        f"Microsoft Graph was still throttling (HTTP {response.status_code}) after "
                        f"{self._max_retries} retries to {what}",
                        status=response.status_code,
                        transient=True,
                        hint="nothing was lost; the next poll tries again",
                    )
                if delay > self._max_retry_after:
                    raise GraphError(
                        f"Microsoft Graph asks us to wait {delay:.0f} s before we {what}, "
                        f"longer than the {self._max_retry_after:.0f} s we wait",
                        status=response.status_code,
                        transient=True,
                        hint="nothing was lost; the next poll tries again",
                    )
                log.info("%s: HTTP %s, waiting %.1f s as Retry-After asks", what, response.status_code, delay)
                self.gate.pause(delay)
                continue
            if response.is_success:
                return response
            raise error_for(response, what)


def retry_after(response: httpx.Response, *, default: float) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), else `default`."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def error_for(response: httpx.Response, what: str) -> GraphError:
    """A GraphError naming what failed, Graph's own code and message, and what to do."""
    code, detail = _graph_error(response)
    status = response.status_code
    said = f"{code}: {detail}" if code and detail else code or detail or response.reason_phrase
    message = f"Microsoft Graph refused to {what} (HTTP {status}, {said})"
    hint = None
    if status == 401:
        hint = "the access token was refused: check the tenant, client id and credential of the app registration"
    elif status == 403:
        hint = (
            "grant the app Mail.ReadWrite and Mail.Send with admin consent, and check that the "
            "application access policy includes this mailbox"
        )
    elif status == 404 and code in ("ErrorInvalidUser", "MailboxNotEnabledForRESTAPI", "ResourceNotFound"):
        hint = "check the mailbox setting: the seller's user principal name or user id in this tenant"
    elif status == 413:
        hint = "the message is too large for Exchange Online"
    return GraphError(message, status=status, code=code, transient=status >= 500 or status == 429, hint=hint)


def _graph_error(response: httpx.Response) -> tuple[str, str]:
    # Graph errors are {"error": {"code": ..., "message": ...}} (learn.microsoft.com/graph/errors).
    try:
        error = response.json().get("error", {})
    except ValueError:
        return "", response.text[:200].strip()
    if not isinstance(error, dict):
        return "", str(error)[:200]
    return str(error.get("code", "")), str(error.get("message", ""))
