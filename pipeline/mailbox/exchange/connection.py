"""The EWS session of one Exchange mailbox: the account (signed in on first use), its folders, readable errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pipeline.errors import MailboxError
from pipeline.mailbox.base import HELD, PROCESSED
from pipeline.mailbox.exchange.extensions import retry_policy
from pipeline.mailbox.exchange.settings import ExchangeSettings, pinned_version


class ExchangeConnection:
    """The exchangelib Account of one mailbox, connected lazily, with the folders we file mail in."""

    def __init__(self, settings: ExchangeSettings) -> None:
        self.settings = settings
        self._account: Any = None
        self._folders: dict[str, Any] = {}
        self._token_seen: str | None = None

    @property
    def account(self) -> Any:
        """The exchangelib Account, connected on first use."""
        if self._account is None:
            self._account = self.connect()
        return self._account

    def connect(self) -> Any:
        """A new Account on the endpoint, with the pinned version, the credentials and the bounded retry policy."""
        from exchangelib import DELEGATE, IMPERSONATION, Account, Configuration, EWSTimeZone
        s = self.settings
        credentials, auth_type = self._credentials()
        impersonate = s.impersonate if s.impersonate is not None else s.auth == "oauth2-app"
        config = Configuration(
            service_endpoint=s.endpoint,
            credentials=credentials,
            auth_type=auth_type,
            version=pinned_version(s.server_version),
            retry_policy=retry_policy(s.max_wait),
        )
        account = Account(
            primary_smtp_address=s.mailbox,
            config=config,
            autodiscover=False,
            access_type=IMPERSONATION if impersonate else DELEGATE,
            default_timezone=EWSTimeZone(s.timezone),
        )
        account.protocol.TIMEOUT = s.timeout  # on this endpoint's protocol only, not exchangelib's class default
        return account

    def _credentials(self) -> tuple[Any, str]:
        from exchangelib import (
            BASIC,
            NTLM,
            OAUTH2,
            Credentials,
            Identity,
            OAuth2AuthorizationCodeCredentials,
            OAuth2Credentials,
        )

        s = self.settings
        if s.auth == "oauth2-app":
            token_url = s.token_url or f"https://login.microsoftonline.com/{s.tenant_id}/oauth2/v2.0/token"
            scope = s.scope

            class AppCredentials(OAuth2Credentials):
                # exchangelib hard-codes the public cloud's token URL and scope; sovereign clouds differ.
                @property
                def token_url(self) -> str:
                    return token_url

                @property
                def scope(self) -> list[str]:
                    return [scope]

            return AppCredentials(
                client_id=s.client_id, client_secret=s.client_secret, tenant_id=s.tenant_id,
                identity=Identity(primary_smtp_address=s.mailbox),
            ), OAUTH2
        if s.auth == "oauth2-delegated":
            token = self._current_token()
            self._token_seen = token
            return OAuth2AuthorizationCodeCredentials(
                access_token={"access_token": token, "token_type": "Bearer"}
            ), OAUTH2
        return Credentials(s.username, s.password), NTLM if s.auth == "ntlm" else BASIC

    def _current_token(self) -> str:
        token = self.settings.access_token
        return token() if callable(token) else str(token)

    def begin(self) -> Any:
        """Start one adapter call: fresh back-off budget, and a fresh delegated token when it changed."""
        account = self.account
        policy = account.protocol.retry_policy
        if hasattr(policy, "start"):
            policy.start()
        if self.settings.auth == "oauth2-delegated" and callable(self.settings.access_token):
            token = self._current_token()
            if token != self._token_seen:
                creds = account.protocol.credentials
                with creds.lock:
                    creds.access_token = {"access_token": token, "token_type": "Bearer"}
                account.protocol.close()  # sessions carry the old token
                self._token_seen = token
        return account

    def folder(self, name: str) -> Any:
        """The folder for PROCESSED, HELD or a path, created under the top of the mailbox when missing."""
        path = {PROCESSED: self.settings.processed_folder, HELD: self.settings.held_folder}.get(name, name)
        if path in self._folders:
            return self._folders[path]
        from exchangelib import Folder, FolderCollection
        from exchangelib.folders import SHALLOW

        account = self.account
        parent = account.msg_folder_root
        for part in [p for p in path.split("/") if p.strip()]:
            children = FolderCollection(account=account, folders=[parent]).find_folders(depth=SHALLOW)
            match = next((f for f in children if not isinstance(f, Exception) and f.name == part), None)
            if match is None:
                match = Folder(parent=parent, name=part)
                match.save()
            parent = match
        self._folders[path] = parent
        return parent

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn what exchangelib, requests and oauthlib raise into MailboxError."""
        try:
            yield
        except MailboxError:
            raise
        except Exception as e:
            raise self._translate(e, doing) from e

    def _translate(self, e: Exception, doing: str) -> MailboxError:
        import requests
        from exchangelib import errors as ee
        from oauthlib.oauth2 import OAuth2Error

        where = f"{doing} the Exchange mailbox {self.settings.mailbox} at {self.settings.endpoint}"
        if isinstance(e, ee.RateLimitError | ee.ErrorServerBusy | ee.ErrorTooManyObjectsOpened):
            return MailboxError(f"Exchange is busy and asked us to wait; could not {where}", transient=True,
                                hint="Nothing was lost; the next poll tries again.")
        if isinstance(e, ee.ErrorTimeoutExpired | ee.ErrorInternalServerTransientError | requests.ConnectionError
                      | requests.Timeout | ee.ErrorMailboxStoreUnavailable | ee.ErrorMailboxMoveInProgress):
            return MailboxError(f"Exchange did not answer; could not {where} ({e})", transient=True,
                                hint="Check that the server is up and reachable; the next poll tries again.")
        if isinstance(e, ee.UnauthorizedError | OAuth2Error):
            return MailboxError(f"Exchange refused the credentials; could not {where}",
                                hint="Check the auth settings (client secret, token or password) in the config.")
        if isinstance(e, ee.ErrorImpersonateUserDenied | ee.ErrorAccessDenied | ee.ErrorNonExistentMailbox):
            return MailboxError(f"Exchange denied access ({type(e).__name__}); could not {where}",
                                hint="Grant the app or user access to this mailbox: see docs/exchange.md.")
        if isinstance(e, ee.TransportError | ee.CASError):
            return MailboxError(f"Could not {where}: {e}", transient=True)
        return MailboxError(f"Could not {where}: {type(e).__name__}: {e}")


def raise_first(results: Any) -> None:
    """Raise the first error among the results of a bulk EWS call."""
    for result in results or ():
        if isinstance(result, Exception):
            raise result
