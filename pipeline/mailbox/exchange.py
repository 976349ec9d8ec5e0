"""The Exchange mailbox: a seller's Exchange Server (or Exchange Online while EWS lasts) through exchangelib.

Settings (`ExchangeSettings`, filled from the `[mailbox]` table of the config by the config layer):

- `endpoint`: the EWS URL, e.g. ``https://mail.example.com/EWS/Exchange.asmx``; no autodiscover.
- `mailbox`: the seller's primary SMTP address, the mailbox read and sent from.
- `server_version`: pinned, no version guessing: ``Exchange2013``, ``Exchange2013_SP1``, ``Exchange2016``,
  ``Exchange2019``, ``ExchangeOnline`` (or ``Exchange2010_SP2`` for old servers).
- `auth`: ``oauth2-app`` (client credentials, impersonating `mailbox`), ``oauth2-delegated`` (an access token
  for the seller, EWS.AccessAsUser.All), ``ntlm`` or ``basic`` (on-premises username and password).
- `client_id`, `client_secret`, `tenant_id` (oauth2-app); `access_token` (oauth2-delegated: a token or a
  callable returning a fresh one); `username`, `password` (ntlm, basic); `token_url`, `scope` for other clouds.
- `impersonate`: act through EWS impersonation (default: only for oauth2-app).
- `max_wait`: the most seconds of server-requested back-off (ErrorServerBusy) one call sits through before it
  gives up with a transient MailboxError; `timeout`: seconds for one HTTP request.
- `timezone`: IANA name for dates EWS returns without one.
- `processed_folder`, `held_folder`: where ack() files mail (paths under the top of the mailbox, "/"-separated,
  created when missing); `category`: the Outlook category stamped on acknowledged mail ("Mutual Plan").
- `first_sync`: ``unread`` (default: on the very first poll, mail already read in the Inbox is skipped) or ``all``.

docs/exchange.md says how to connect, what Exchange does to our headers, and why.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from pipeline.errors import ConfigError, MailboxError
from pipeline.mailbox.base import HELD, PROCESSED, Fetched, SyncState

log = logging.getLogger(__name__)

AUTH_TYPES = ("oauth2-app", "oauth2-delegated", "ntlm", "basic")
FIRST_SYNC = ("unread", "all")
# The headers we stamp on replies through EWS properties (MIME-built messages carry them in their bytes).
STAMPED_HEADERS = ("X-Mutual-Plan", "X-Auto-Response-Suppress", "Auto-Submitted")


@dataclass(frozen=True)
class ExchangeSettings:
    """Where the seller's Exchange mailbox is and how to sign in to it."""

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
        known = {f.name for f in fields(cls)} - {"password", "client_secret", "access_token"}
        values = {k: v for k, v in options.items() if k != "backend" and not k.endswith("_env")}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"[mailbox] has settings the exchange backend does not know: {', '.join(unknown)}",
                              hint="see docs/exchange.md for the settings")
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
        if self.max_wait < 0 or self.timeout <= 0 or self.batch_size < 1:
            raise ConfigError("exchange max_wait, timeout and batch_size must be positive")
        try:
            _version(self.server_version)
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


def _version(name: str) -> Any:
    from exchangelib import version

    if name not in _VERSIONS:
        raise ValueError(f"unknown Exchange server version {name!r} (known: {', '.join(_VERSIONS)})")
    build, api = _VERSIONS[name]
    return version.Version(build=getattr(version, build), api_version=api)


# --- exchangelib glue --------------------------------------------------------------------------------------

_registered = False


def _register_properties() -> None:
    """Teach exchangelib's Message our named properties (once per process; the registry is global)."""
    global _registered
    if _registered:
        return
    from exchangelib import ExtendedProperty, Message

    def header(name: str) -> type:
        # A header in the PS_INTERNET_HEADERS set: transport writes it into the sent MIME.
        return type(f"_Header_{name.replace('-', '_')}", (ExtendedProperty,), {
            "distinguished_property_set_id": "InternetHeaders", "property_name": name, "property_type": "String",
        })

    class OurMessageId(ExtendedProperty):
        # Our Message-ID kept on the item itself: it follows the item into Sent Items whatever Exchange puts
        # in the Message-ID header, so was_sent() can always find what we sent.
        distinguished_property_set_id = "PublicStrings"
        property_name = "MutualPlanMessageId"
        property_type = "String"

    Message.register("mutualplan_message_id", OurMessageId)
    for name in STAMPED_HEADERS:
        Message.register(_header_field(name), header(name))
    _registered = True


def _header_field(name: str) -> str:
    return "mutualplan_hdr_" + name.lower().replace("-", "_")


def _retry_policy(max_wait: float) -> Any:
    from exchangelib.errors import RateLimitError, UnauthorizedError
    from exchangelib.protocol import FaultTolerance

    class BoundedRetry(FaultTolerance):
        """FaultTolerance whose back-offs add up to at most `max_wait` per adapter call, and whose 401 is final.

        exchangelib bounds each single back-off but not their sum, and under a fault-tolerant policy it reads
        HTTP 401 as throttling and retries it; a refused password should fail at once instead.
        """

        def __init__(self) -> None:
            super().__init__(max_wait=max_wait)
            self.spent = 0.0

        def start(self) -> None:
            self.spent = 0.0

        def back_off(self, seconds: float | None) -> None:
            seconds = self.DEFAULT_BACKOFF if seconds is None else seconds
            if self.spent + seconds > self.max_wait:
                raise RateLimitError("Max timeout reached", wait=self.spent + seconds)
            self.spent += seconds
            super().back_off(seconds)

        def raise_response_errors(self, response: Any) -> None:
            if response.status_code == 401:
                raise UnauthorizedError(f"Invalid credentials for {response.url}")
            super().raise_response_errors(response)

    return BoundedRetry()


# --- the adapter -------------------------------------------------------------------------------------------


class ExchangeMailbox:
    """A seller's Exchange mailbox over EWS: fetch new mail, file it, send and draft as the seller."""

    def __init__(self, settings: ExchangeSettings, state: SyncState, *, name: str = "exchange") -> None:
        settings.check()
        _register_properties()
        self.name = name
        self.settings = settings
        self._state = state
        self._state_key = f"exchange:{settings.mailbox.lower()}:inbox"
        self._account_obj: Any = None
        self._folders: dict[str, Any] = {}
        self._token_seen: str | None = None

    # -- connection

    @property
    def _account(self) -> Any:
        if self._account_obj is None:
            self._account_obj = self._connect()
        return self._account_obj

    def _connect(self) -> Any:
        from exchangelib import DELEGATE, IMPERSONATION, Account, Configuration, EWSTimeZone
        s = self.settings
        credentials, auth_type = self._credentials()
        impersonate = s.impersonate if s.impersonate is not None else s.auth == "oauth2-app"
        config = Configuration(
            service_endpoint=s.endpoint,
            credentials=credentials,
            auth_type=auth_type,
            version=_version(s.server_version),
            retry_policy=_retry_policy(s.max_wait),
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

    def _begin(self) -> Any:
        """Start one adapter call: fresh back-off budget, and a fresh delegated token when it changed."""
        account = self._account
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

    # -- reading

    def fetch(self) -> Iterator[Fetched]:
        """New Inbox mail since the saved sync state; the state advances only once the whole batch is handed over.

        The batch is everything SyncFolderItems reports since the saved state. A crash or an error before the
        last message is taken leaves the state where it was, so the next poll replays the batch; the store
        deduplicates by Message-ID. Mail filed away in between is not replayed: the sync reports it as gone.
        """
        with self._errors("read new mail from"):
            account = self._begin()
            inbox = account.inbox
            state = self._state.get_state(self._state_key)
            skip_read = state is None and self.settings.first_sync == "unread"
            new: list[Any] = []
            # exchangelib falls back to the state it remembers on the cached folder; ours is the only truth.
            inbox.item_sync_state = state
            for change, item in inbox.sync_items(
                sync_state=state, only_fields=["message_id", "is_read"],
                max_changes_returned=self.settings.batch_size,
            ):
                if change != "create" or (skip_read and getattr(item, "is_read", False)):
                    continue
                new.append(item)
            new_state = inbox.item_sync_state
        size = self.settings.batch_size
        for start in range(0, len(new), size):
            chunk = new[start:start + size]
            with self._errors("read new mail from"):
                full = list(self._account.fetch(ids=chunk, only_fields=["mime_content", "message_id"]))
            for ref, item in zip(chunk, full, strict=True):
                if isinstance(item, Exception) or not item.mime_content:
                    # Deleted or filed by the seller between the sync and now: nothing left to read.
                    log.info("exchange: message %s vanished before it was read (%s)", ref.message_id, item)
                    continue
                yield Fetched(key=_make_key(ref.id, item.message_id or ref.message_id), raw=item.mime_content)
        if new_state and new_state != state:
            self._state.set_state(self._state_key, new_state)

    def ack(self, key: str, folder: str | None = PROCESSED) -> None:
        """Mark read, add the category, and move into the folder; found again by Message-ID if its id is stale.

        `folder=None` leaves the message untouched where it is (mail that is not ours to file); the sync
        state already keeps it from being handed over again.
        """
        if folder is None:
            return
        item_id, message_id = _split_key(key)
        with self._errors("file a message in"):
            account = self._begin()
            target = self._folder(folder)
            item = self._locate(item_id, message_id, target)
            if item is None:
                log.warning("exchange: message %s is gone from the mailbox; nothing to file", message_id or item_id)
                return
            categories = list(item.categories or [])
            if self.settings.category not in categories:
                categories.append(self.settings.category)
            if not item.is_read or categories != list(item.categories or []):
                item.is_read = True
                item.categories = categories
                _raise_first(account.bulk_update(items=[(item, ["is_read", "categories"])]))
            if _folder_id(item) != target.id:
                _raise_first(account.bulk_move(ids=[item], to_folder=target))

    def _locate(self, item_id: str, message_id: str, target: Any) -> Any:
        from exchangelib.errors import ErrorInvalidIdMalformed, ErrorItemNotFound

        fields = ["message_id", "is_read", "categories", "parent_folder_id"]
        if item_id:
            found = list(self._account.fetch(ids=[(item_id, None)], only_fields=fields))
            item = found[0] if found else None
            if not isinstance(item, Exception) and item is not None:
                return item
            if not isinstance(item, ErrorItemNotFound | ErrorInvalidIdMalformed):
                raise item if isinstance(item, Exception) else MailboxError("Exchange returned no item")
        if not message_id:
            return None
        # The id went stale (the item was moved, possibly by us before a crash): look it up by Message-ID.
        for where in (self._account.inbox, target):
            matches = list(where.filter(message_id=message_id).only(*fields)[:1])
            if matches:
                return matches[0]
        return None

    # -- sending

    def send(self, message: EmailMessage) -> None:
        """Send as the seller with a copy in Sent Items; a reply goes out as an Outlook reply in its conversation.

        A complete draft of this message in Drafts (left for review, or built by a send cut short) is the one
        sent, the seller's edits included: no second copy is built beside it.
        """
        with self._errors("send through"):
            account = self._begin()
            draft = self._draft(message)
            if draft is not None:
                _raise_first(account.bulk_send(ids=[(draft.id, draft.changekey)], save_copy=True,
                                               copy_to_folder=account.sent))
                return
            original = self._original(message)
            if original is None:
                self._create_from_mime(message, send=True)
            else:
                self._reply(original, message, send=True)

    def save_draft(self, message: EmailMessage) -> None:
        """Leave the message in Drafts (a reply as a reply draft in its conversation) for the seller to send."""
        with self._errors("save a draft in"):
            self._begin()
            if self._draft(message) is not None:
                return  # already there and complete: a replay after a crash
            original = self._original(message)
            if original is None:
                self._create_from_mime(message, send=False)
            else:
                self._reply(original, message, send=False)

    def was_sent(self, message_id: str) -> bool:
        """Whether Sent Items (or the Outbox, on its way there) holds the message we sent with this Message-ID."""
        from exchangelib import Q

        with self._errors("look in Sent Items of"):
            account = self._begin()
            query = Q(message_id=message_id) | Q(mutualplan_message_id=message_id)
            # The Outbox too: a message just sent sits there until transport files it in Sent Items.
            return any(folder.filter(query).only("message_id").exists() for folder in (account.sent, account.outbox))

    def sent_message_id(self, message_id: str) -> str | None:
        """The Message-ID the recipients got for what we sent as `message_id` (Exchange names replies itself).

        Not part of the Mailbox protocol: the watcher records it as the outbox entry's alias (`sent_as`), so the
        client's answer to a reply is matched by its In-Reply-To, not only by the References chain. Like
        was_sent it looks in the Outbox too, where a message waits until transport files it in Sent Items.
        """
        from exchangelib import Q

        with self._errors("look in Sent Items of"):
            account = self._begin()
            query = Q(message_id=message_id) | Q(mutualplan_message_id=message_id)
            for folder in (account.sent, account.outbox):
                found = list(folder.filter(query).only("message_id")[:1])
                if found and found[0].message_id:
                    return str(found[0].message_id)
            return None

    def _draft(self, message: EmailMessage) -> Any:
        """The complete draft of `message` in Drafts, found by our Message-ID; incomplete ones are deleted.

        A reply is built in steps (create, stamp, attach, send), so a send cut short can leave a draft without
        its letter; that one is deleted and built again. Complete means every file of the message is attached
        (the seller may have added more).
        """
        ours = _message_id(message)
        if not ours:
            return None
        account = self._account
        wanted = {part.get_filename() or "attachment" for part in message.iter_attachments()}
        complete, other = None, []
        for item in account.drafts.filter(mutualplan_message_id=ours).only("attachments"):
            if complete is None and wanted <= {a.name for a in item.attachments or ()}:
                complete = item
            else:
                other.append(item)
        if other:
            log.warning("exchange: deleting %d incomplete draft(s) of %s left by an interrupted send", len(other), ours)
            _raise_first(account.bulk_delete(ids=[(i.id, i.changekey) for i in other]))
        return complete

    def _create_from_mime(self, message: EmailMessage, *, send: bool) -> None:
        from exchangelib import Message
        from exchangelib.items import SAVE_ONLY, SEND_AND_SAVE_COPY

        account = self._account
        item = Message(
            account=account,
            mime_content=_mime_bytes(message),
            mutualplan_message_id=_message_id(message),
        )
        # The MIME carries our Message-ID and X- headers; Exchange keeps both when it converts it.
        folder = account.sent if send else account.drafts
        _raise_first(account.bulk_create(
            folder=folder, items=[item], message_disposition=SEND_AND_SAVE_COPY if send else SAVE_ONLY,
        ))

    def _reply(self, original: Any, message: EmailMessage, *, send: bool) -> None:
        from exchangelib import FileAttachment, HTMLBody, Mailbox, Message
        from exchangelib.items import ReplyToItem
        from exchangelib.properties import ReferenceItemId

        account = self._account
        html, text = _bodies(message)
        reply = ReplyToItem(
            account=account,
            reference_item_id=ReferenceItemId(id=original.id, changekey=original.changekey),
            subject=str(message.get("Subject", "")),
            new_body=HTMLBody(html) if html is not None else (text or ""),
            to_recipients=[Mailbox(email_address=a) for _, a in getaddresses(message.get_all("To", []))] or None,
            cc_recipients=[Mailbox(email_address=a) for _, a in getaddresses(message.get_all("Cc", []))] or None,
        )
        # Exchange builds the reply from the original: In-Reply-To, References, ConversationIndex and topic, so
        # Outlook shows it in the thread. It gives the reply its own Message-ID; ours goes on a named property.
        created = reply.save(account.drafts)
        draft = Message(account=account, folder=account.drafts, id=created.id, changekey=created.changekey)
        draft.mutualplan_message_id = _message_id(message)
        fields = ["mutualplan_message_id"]
        for name in STAMPED_HEADERS:
            if message.get(name) is not None:
                setattr(draft, _header_field(name), str(message[name]))
                fields.append(_header_field(name))
        _raise_first(account.bulk_update(items=[(draft, fields)]))
        draft.changekey = None  # the update changed it; attachments and send accept the id alone
        for part in message.iter_attachments():
            content = part.get_payload(decode=True) or b""
            attachment = FileAttachment(
                name=part.get_filename() or "attachment", content=content, content_type=part.get_content_type(),
            )
            draft.attach(attachment)
        if send:
            _raise_first(account.bulk_send(ids=[(draft.id, None)], save_copy=True, copy_to_folder=account.sent))

    def _original(self, message: EmailMessage) -> Any:
        """The item a reply answers, found by its Message-ID where our mail lives; None for a new thread."""
        from exchangelib import FolderCollection

        wanted = str(message.get("In-Reply-To", "")).strip()
        if not wanted:
            return None
        account = self._account
        folders = [account.inbox, self._folder(PROCESSED), self._folder(HELD), account.sent]
        matches = list(
            FolderCollection(account=account, folders=folders)
            .filter(message_id=wanted).only("message_id", "subject")[:1]
        )
        if not matches:
            # Without the original there is no Outlook conversation to join; the MIME's In-Reply-To and
            # References still thread it for the client.
            log.warning("exchange: original %s not found; sending as a new message", wanted)
            return None
        return matches[0]

    # -- folders

    def _folder(self, name: str) -> Any:
        """The folder for PROCESSED, HELD or a path, created under the top of the mailbox when missing."""
        path = {PROCESSED: self.settings.processed_folder, HELD: self.settings.held_folder}.get(name, name)
        if path in self._folders:
            return self._folders[path]
        from exchangelib import Folder, FolderCollection
        from exchangelib.folders import SHALLOW

        account = self._account
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

    # -- errors

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
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


# --- small pure helpers ------------------------------------------------------------------------------------


def _make_key(item_id: str, message_id: str | None) -> str:
    # EWS item ids are base64 (never "|"); the Message-ID after it finds the mail again once the id is stale.
    return f"{item_id}|{message_id or ''}"


def _split_key(key: str) -> tuple[str, str]:
    item_id, _, message_id = key.partition("|")
    return item_id, message_id


def _message_id(message: EmailMessage) -> str | None:
    value = message.get("Message-ID")
    return str(value).strip() if value else None


def _mime_bytes(message: EmailMessage) -> bytes:
    from email.policy import SMTP

    return message.as_bytes(policy=SMTP)


def _bodies(message: EmailMessage) -> tuple[str | None, str | None]:
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    return (html.get_content() if html is not None else None, text.get_content() if text is not None else None)


def _folder_id(item: Any) -> str | None:
    parent = getattr(item, "parent_folder_id", None)
    return getattr(parent, "id", None)


def _raise_first(results: Any) -> None:
    for result in results or ():
        if isinstance(result, Exception):
            raise result
