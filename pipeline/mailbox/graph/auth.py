"""Access tokens for Microsoft Graph with msal: the app's own (secret or certificate) or a seller's sign-in."""

from __future__ import annotations

import hashlib
import logging
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from pipeline.durable import write_atomic
from pipeline.errors import ConfigError, MailboxError
from pipeline.mailbox.graph.settings import GraphSettings

log = logging.getLogger(__name__)

# The delegated permissions a seller grants at sign-in; app-only tokens ask for `.default` instead,
# which means "the application permissions an admin consented to".
DELEGATED_PERMISSIONS = ("Mail.ReadWrite", "Mail.Send")


class AppToken:
    """Tokens for the app itself (client credentials), limited to the sellers' mailboxes by an access policy."""

    def __init__(
        self,
        *,
        client_id: str,
        authority: str,
        resource: str,
        client_secret: str | None = None,
        certificate_path: str | None = None,
        certificate_password: str | None = None,
        verify: bool | str = True,
        timeout: float = 60.0,
    ) -> None:
        self._client_id = client_id
        self._authority = authority
        self._scopes = [f"{resource}/.default"]
        self._secret = client_secret
        self._certificate_path = certificate_path
        self._certificate_password = certificate_password
        self._verify = verify
        self._timeout = timeout
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._app is None:
                self._app = _guarded(
                    lambda: msal.ConfidentialClientApplication(
                        self._client_id,
                        client_credential=self._credential(),
                        **_authority_options(self._authority, self._verify, self._timeout),
                    ),
                    self._authority,
                )
            app = self._app
            # msal answers from its in-memory cache until the token is close to expiry.
            result = _guarded(lambda: app.acquire_token_for_client(scopes=self._scopes), self._authority)
        return _access_token(result, self._authority)

    def _credential(self) -> Any:
        if self._secret:
            return self._secret
        path = self._certificate_path or ""
        if path.lower().endswith((".pfx", ".p12")):
            credential: dict[str, Any] = {"private_key_pfx_path": path}
        else:
            # A PEM file holding the private key and the certificate; msal derives the thumbprint.
            try:
                pem = Path(path).read_text()
            except OSError as exc:
                raise MailboxError(
                    f"cannot read the Graph certificate {path}: {exc.strerror}",
                    hint="point certificate_path at a .pem (key and certificate) or .pfx file",
                ) from exc
            credential = {"private_key": pem, "public_certificate": _certificate_block(pem, path)}
        if self._certificate_password:
            credential["passphrase"] = self._certificate_password
        return credential


class DeviceCodeToken:
    """A seller's own delegated sign-in (device code), kept in a token cache file only its owner can read."""

    def __init__(
        self,
        *,
        client_id: str,
        authority: str,
        resource: str,
        cache_path: str,
        username: str | None = None,
        verify: bool | str = True,
        timeout: float = 60.0,
    ) -> None:
        self._client_id = client_id
        self._authority = authority
        self._scopes = [f"{resource}/{name}" for name in DELEGATED_PERMISSIONS]
        self._cache_file = TokenCacheFile(Path(cache_path))
        self._username = username
        self._verify = verify
        self._timeout = timeout
        self._app: msal.PublicClientApplication | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            app = self._application()
            accounts = app.get_accounts(username=self._username) if self._username else app.get_accounts()
            if not accounts:
                raise MailboxError(
                    f"no one has signed in to Microsoft Graph for {self._username or 'this mailbox'} yet",
                    hint="sign in once: `mutualplan login` (see docs/graph.md, 'Delegated, as the seller')",
                )
            result = _guarded(lambda: app.acquire_token_silent(self._scopes, account=accounts[0]), self._authority)
            self._cache_file.save()
        if not result:
            raise MailboxError(
                "the saved Microsoft Graph sign-in has expired or was revoked",
                hint="sign in again: `mutualplan login` (see docs/graph.md, 'Delegated, as the seller')",
            )
        return _access_token(result, self._authority)

    def sign_in(self, show: Callable[[str], None]) -> str:
        """Run the device-code flow: `show` tells the seller where to enter which code; the signed-in name."""
        with self._lock:
            app = self._application()
            flow = _guarded(lambda: app.initiate_device_flow(scopes=self._scopes), self._authority)
            if "user_code" not in flow:
                raise MailboxError(
                    "Microsoft Entra ID did not start a device-code sign-in: "
                    f"{flow.get('error', '')} {flow.get('error_description', '')}".strip(),
                    hint="allow public client flows in the app registration (Authentication blade)",
                )
            show(flow["message"])
            result = _guarded(lambda: app.acquire_token_by_device_flow(flow), self._authority)
            _access_token(result, self._authority)
            self._cache_file.save()
        claims = result.get("id_token_claims") or {}
        return str(claims.get("preferred_username") or claims.get("upn") or claims.get("oid") or "")

    def _application(self) -> msal.PublicClientApplication:
        if self._app is None:
            cache = self._cache_file.load()
            self._app = _guarded(
                lambda: msal.PublicClientApplication(
                    self._client_id,
                    token_cache=cache,
                    **_authority_options(self._authority, self._verify, self._timeout),
                ),
                self._authority,
            )
        return self._app


class TokenCacheFile:
    """msal's serializable cache in a file readable by its owner alone (0600), written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cache = msal.SerializableTokenCache()

    def load(self) -> msal.SerializableTokenCache:
        """The cache as the file holds it (empty without a file); refused when others can read the file."""
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return self.cache
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            # A refresh token others could read is a standing sign-in as the seller.
            raise MailboxError(
                f"the Graph token cache {self.path} can be read by other users (mode {stat.S_IMODE(mode):o})",
                hint=f"run: chmod 600 {self.path}   (and sign in again if others may have read it)",
            )
        try:
            self.cache.deserialize(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise MailboxError(
                f"cannot read the Graph token cache {self.path}: {exc}",
                hint="delete the file and sign in again",
            ) from exc
        return self.cache

    def save(self) -> None:
        """Write the cache back, if msal changed it."""
        if not self.cache.has_state_changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # write_atomic writes through a mkstemp file, 0600 from the start: the token is never on disk with
        # wider rights (a test holds it to that).
        write_atomic(self.path, self.cache.serialize().encode())
        self.cache.has_state_changed = False


def _authority_options(authority: str, verify: bool | str, timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {"authority": authority, "http_client": _Session(verify, timeout)}
    if urlsplit(authority).hostname not in WELL_KNOWN_AUTHORITY_HOSTS:
        # A private endpoint (tests, a sovereign cloud msal does not list): msal would ask
        # login.microsoftonline.com whether it knows the host, so we vouch for it ourselves.
        options["validate_authority"] = False
        options["instance_discovery"] = False
    return options


class _Session(requests.Session):
    """msal's HTTP client: our timeout, one retry on a broken connection, and our CA bundle when set."""

    def __init__(self, verify: bool | str, timeout: float) -> None:
        super().__init__()
        self._ca_bundle = verify if isinstance(verify, str) else None
        self._timeout = timeout
        adapter = requests.adapters.HTTPAdapter(max_retries=1)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        if self._ca_bundle:
            # Passed per request: requests lets $REQUESTS_CA_BUNDLE override a session's verify.
            kwargs.setdefault("verify", self._ca_bundle)
        return super().request(method, url, *args, **kwargs)


def _guarded(call: Callable[[], Any], authority: str) -> Any:
    """Run an msal call; its network and configuration failures become MailboxErrors."""
    try:
        return call()
    except requests.RequestException as exc:
        raise MailboxError(f"could not reach Microsoft Entra ID at {authority}: {exc}", transient=True) from exc
    except ValueError as exc:
        # msal raises ValueError for an authority whose tenant discovery fails and for bad credentials.
        raise MailboxError(
            f"Microsoft Entra ID sign-in is misconfigured: {exc}",
            hint="check the tenant, client id and the certificate or secret in the graph settings",
        ) from exc


def _access_token(result: dict[str, Any] | None, authority: str) -> str:
    if result and "access_token" in result:
        return str(result["access_token"])
    result = result or {}
    error = result.get("error", "no token")
    description = str(result.get("error_description", "")).splitlines()[0:1]
    transient = error in ("temporarily_unavailable", "server_error")
    raise MailboxError(
        f"Microsoft Entra ID at {authority} gave no Graph token: {error}"
        + (f": {description[0]}" if description else ""),
        transient=transient,
        hint=None if transient else "check the tenant, client id and the certificate or secret in the graph settings",
    )


def _certificate_block(pem: str, path: str) -> str:
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    if begin not in pem:
        raise MailboxError(
            f"the Graph certificate {path} holds no certificate, only a key",
            hint="put the certificate (BEGIN CERTIFICATE) in the same PEM file as its private key",
        )
    start = pem.index(begin)
    return pem[start : pem.index(end, start) + len(end)] + "\n"


# One AppToken per app credential in this process: msal keeps the token in memory until close to its expiry, so
# a worker polling a thousand mailboxes of one app asks Entra for a token about once an hour, not once a poll.
_app_tokens: dict[tuple[str, ...], AppToken] = {}
_app_tokens_lock = threading.Lock()


def token_source(settings: GraphSettings) -> AppToken | DeviceCodeToken:
    """The msal-backed token provider the settings ask for (an app's, shared by all its mailboxes here)."""
    verify: bool | str = settings.ca_bundle or True
    if settings.auth == "device_code":
        return DeviceCodeToken(
            client_id=settings.client_id,
            authority=settings.authority,
            resource=settings.resource,
            cache_path=str(settings.token_cache_path),
            username=settings.mailbox or None,
            verify=verify,
            timeout=settings.timeout,
        )
    # The secret is in the key only as a digest: a changed secret is a new token source, and no secret is kept
    # in a second place in memory longer than the settings keep it.
    secret = hashlib.sha256(f"{settings.client_secret}\0{settings.certificate_password}".encode()).hexdigest()
    key = (settings.client_id, settings.authority, settings.resource, secret, settings.certificate_path or "",
           str(verify), str(settings.timeout))
    with _app_tokens_lock:
        if key not in _app_tokens:
            _app_tokens[key] = AppToken(
                client_id=settings.client_id,
                authority=settings.authority,
                resource=settings.resource,
                client_secret=settings.client_secret,
                certificate_path=settings.certificate_path,
                certificate_password=settings.certificate_password,
                verify=verify,
                timeout=settings.timeout,
            )
        return _app_tokens[key]


def sign_in(settings: GraphSettings, show: Callable[[str], None]) -> str:
    """The seller's one-time device-code sign-in; `show` prints where to enter the code. The signed-in name."""
    source = token_source(settings)
    if not isinstance(source, DeviceCodeToken):
        raise ConfigError('sign-in is for auth = "device_code"; app sign-in needs no seller')
    return source.sign_in(show)
