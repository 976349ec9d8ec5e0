"""The Microsoft Graph mailbox for Exchange Online: inbox delta in, sendMail and in-thread replies out."""

from __future__ import annotations

import base64
import logging
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from pipeline.errors import ConfigError
from pipeline.mailbox.base import HELD, PROCESSED, Fetched, SyncState
from pipeline.mailbox.graph_auth import AppToken, DeviceCodeToken
from pipeline.mailbox.graph_http import PREFER_IMMUTABLE, GraphError, GraphHttp, gate_for
from pipeline.mailbox.graph_json import (
    OUR_ID_PROPERTY,
    Attachment,
    attachments,
    body,
    custom_headers,
    extended_properties,
    message_id,
    message_json,
    recipients,
)

log = logging.getLogger(__name__)

# Above 3 MB an attachment goes through an upload session; a JSON request stays under Graph's 4 MB
# (learn.microsoft.com/graph/outlook-large-attachments).
UPLOAD_THRESHOLD = 3 * 1024 * 1024
MAX_REQUEST = 4 * 1024 * 1024
# Upload ranges below 4 MB each, in multiples of 320 KiB as Microsoft's upload sessions prefer.
UPLOAD_CHUNK = 8 * 320 * 1024
# Error codes that, like 410 Gone, mean "your delta token is no good: start a full sync again".
RESYNC_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
# How far before the last completed round a resync looks back (clock skew, late delivery).
RESYNC_OVERLAP = timedelta(days=1)
AUTH_MODES = ("app", "device_code")


@dataclass(frozen=True)
class GraphSettings:
    """How to reach one seller's Exchange Online mailbox through Microsoft Graph (see docs/graph.md)."""

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

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        *,
        client_secret: str | None = None,
        certificate_password: str | None = None,
    ) -> GraphSettings:
        """Settings from the [mailbox] table; secrets come separately, from the environment."""
        secret_names = {"client_secret", "certificate_password"}
        known = {f.name for f in fields(cls)} - secret_names
        values = {k: v for k, v in options.items() if k != "backend" and not k.endswith("_env")}
        unknown = sorted(set(values) - known)
        if unknown:
            hint = 'secrets go in the environment: client_secret_env = "NAME"' if secret_names & set(unknown) else None
            raise ConfigError(
                f"[mailbox] has settings the graph backend does not know: {', '.join(unknown)}",
                hint=hint or "see docs/graph.md for the settings",
            )
        return cls(**values, client_secret=client_secret, certificate_password=certificate_password)

    @property
    def authority(self) -> str:
        return f"{self.authority_url.rstrip('/')}/{self.tenant}"

    @property
    def resource(self) -> str:
        """The token audience: the origin of the Graph endpoint (https://graph.microsoft.com)."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"


def token_source(settings: GraphSettings) -> AppToken | DeviceCodeToken:
    """The msal-backed token provider the settings ask for."""
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
    return AppToken(
        client_id=settings.client_id,
        authority=settings.authority,
        resource=settings.resource,
        client_secret=settings.client_secret,
        certificate_path=settings.certificate_path,
        certificate_password=settings.certificate_password,
        verify=verify,
        timeout=settings.timeout,
    )


def sign_in(settings: GraphSettings, show: Callable[[str], None]) -> str:
    """The seller's one-time device-code sign-in; `show` prints where to enter the code. The signed-in name."""
    source = token_source(settings)
    if not isinstance(source, DeviceCodeToken):
        raise ConfigError('sign-in is for auth = "device_code"; app sign-in needs no seller')
    return source.sign_in(show)


class _Resync(Exception):
    """The delta token is gone: the round must start from scratch."""


class GraphMailbox:
    """A seller's Exchange Online mailbox through Microsoft Graph; every failure is a MailboxError."""

    def __init__(self, settings: GraphSettings, state: SyncState, *, token: Callable[[], str] | None = None) -> None:
        self.settings = settings
        self.state = state
        self.name = f"graph:{settings.mailbox or 'me'}"
        self._base = settings.base_url.rstrip("/")
        self._user = f"/users/{quote(settings.mailbox, safe='@')}" if settings.mailbox else "/me"
        verify: Any = ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else True
        # Exchange Online throttles per app and mailbox, so the limit is shared by every adapter of it.
        gate_key = settings.mailbox or f"me:{settings.token_cache_path}"
        self._http = GraphHttp(
            token=token or token_source(settings),
            gate=gate_for(self._base, gate_key, settings.max_concurrency),
            verify=verify,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            max_retry_after=settings.max_retry_after,
        )
        self._folders: dict[str, str] = {}
        self._folders_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphMailbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Reading --------------------------------------------------------------------------------------

    def fetch(self) -> Iterator[Fetched]:
        """New inbox messages since the last completed round, oldest first, as raw MIME.

        The deltaLink is saved only once the whole round has been handed over, so a crash replays
        the round; a 410 Gone starts a full resync (the caller deduplicates by Message-ID).
        """
        started = datetime.now(UTC)
        link = self.state.get_state(self._state_key("deltaLink")) or None
        try:
            items, delta_link = self._delta_round(link)
        except _Resync:
            log.warning("%s: the delta token expired; reading the inbox again from scratch", self.name)
            items, delta_link = self._delta_round(None)
        # receivedDateTime has whole seconds; the stable sort keeps Graph's order within a second.
        items.sort(key=lambda item: item.get("receivedDateTime") or "")
        yield from self._download(items)
        self.state.set_state(self._state_key("deltaLink"), delta_link)
        self.state.set_state(self._state_key("roundStarted"), started.isoformat())

    def _delta_round(self, link: str | None) -> tuple[list[dict[str, Any]], str]:
        url = link or self._initial_delta_url()
        prefer = f"{PREFER_IMMUTABLE}, odata.maxpagesize={self.settings.page_size}"
        items: list[dict[str, Any]] = []
        while True:
            try:
                page = self._http.request(
                    "GET", url, what="read the inbox's new messages", headers={"Prefer": prefer}
                ).json()
            except GraphError as exc:
                gone = exc.status == 410 or exc.code.lower() in RESYNC_CODES
                if gone and link is not None:
                    raise _Resync from exc
                raise
            for item in page.get("value", []):
                if "@removed" in item or item.get("isDraft"):
                    continue
                items.append(item)
            if "@odata.nextLink" in page:
                url = page["@odata.nextLink"]
            elif "@odata.deltaLink" in page:
                return items, page["@odata.deltaLink"]
            else:
                raise GraphError("Microsoft Graph answered the inbox delta without a nextLink or deltaLink", status=200)

    def _initial_delta_url(self) -> str:
        # Only mail received since the last completed round (or first_sync_days on the very first
        # round): a resync must not replay the seller's whole inbox, and Graph stops at 5,000.
        last = self.state.get_state(self._state_key("roundStarted"))
        if last:
            since = datetime.fromisoformat(last) - RESYNC_OVERLAP
        else:
            since = datetime.now(UTC) - timedelta(days=self.settings.first_sync_days)
        query = urlencode(
            {
                "changeType": "created",
                "$select": "id,receivedDateTime,internetMessageId,isDraft",
                "$filter": f"receivedDateTime ge {since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}",
            },
            quote_via=quote,
            safe="$,",
        )
        return f"{self._url('/mailFolders/inbox/messages/delta')}?{query}"

    def _download(self, items: list[dict[str, Any]]) -> Iterator[Fetched]:
        # Download a few messages ahead, in order; the mailbox's gate keeps it to four at a time.
        window = self.settings.max_concurrency * 2
        pool = ThreadPoolExecutor(max_workers=self.settings.max_concurrency, thread_name_prefix="graph-mime")
        pending: deque[tuple[str, Future[bytes | None]]] = deque()
        queue = iter(items)
        try:
            while True:
                while len(pending) < window and (item := next(queue, None)) is not None:
                    pending.append((item["id"], pool.submit(self._raw, item["id"])))
                if not pending:
                    return
                key, future = pending.popleft()
                raw = future.result()
                if raw is not None:
                    yield Fetched(key=key, raw=raw)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _raw(self, key: str) -> bytes | None:
        try:
            return self._http.request(
                "GET", self._url(f"/messages/{quote(key, safe='')}/$value"), what="download a message"
            ).content
        except GraphError as exc:
            if exc.status == 404:
                log.info("%s: message %s was deleted before we could read it", self.name, key)
                return None
            raise

    # Filing ---------------------------------------------------------------------------------------

    def ack(self, key: str, folder: str | None = PROCESSED) -> None:
        """Mark read, add the category, move to the folder (Processed and Held map to the settings).

        `folder=None` is mail about no plan: it stays as the seller left it, unread and uncategorized.
        The delta asks only for created messages, so it does not come back when the seller reads it.
        """
        if folder is None:
            return
        path = {PROCESSED: self.settings.processed_folder, HELD: self.settings.held_folder}.get(folder, folder)
        url = self._url(f"/messages/{quote(key, safe='')}")
        try:
            current = self._http.request(
                "GET", url, what="read a message's flags", params={"$select": "isRead,categories,parentFolderId"}
            ).json()
        except GraphError as exc:
            if exc.status == 404:
                log.warning("%s: message %s is gone from the mailbox; nothing to file", self.name, key)
                return
            raise
        change: dict[str, Any] = {}
        if not current.get("isRead"):
            change["isRead"] = True
        categories = list(current.get("categories") or [])
        if self.settings.category and self.settings.category not in categories:
            change["categories"] = [*categories, self.settings.category]
        if change:
            self._http.request("PATCH", url, what="mark a message read and categorized", json=change)
        destination = self._folder_id(path)
        if current.get("parentFolderId") != destination:
            self._http.request(
                "POST", f"{url}/move", what=f"move a message to {path}", json={"destinationId": destination}
            )

    def _folder_id(self, path: str) -> str:
        """The id of a folder path like "Mutual Plan/Processed", creating what is missing."""
        names = [name.strip() for name in path.split("/") if name.strip()]
        if not names:
            raise ConfigError(f"empty graph folder name {path!r}")
        with self._folders_lock:
            parent: str | None = None
            for depth, name in enumerate(names):
                so_far = "/".join(names[: depth + 1])
                if so_far not in self._folders:
                    self._folders[so_far] = self._child_folder(parent, name)
                parent = self._folders[so_far]
            assert parent is not None
            return parent

    def _child_folder(self, parent: str | None, name: str) -> str:
        folders = (
            self._url("/mailFolders")
            if parent is None
            else self._url(f"/mailFolders/{quote(parent, safe='')}/childFolders")
        )
        query = {"$filter": f"displayName eq '{_quoted(name)}'", "$select": "id,displayName"}
        found = self._http.request("GET", folders, what=f"look up the folder {name}", params=query).json()
        if found.get("value"):
            return str(found["value"][0]["id"])
        try:
            made = self._http.request("POST", folders, what=f"create the folder {name}", json={"displayName": name})
        except GraphError as exc:
            if exc.status != 409:
                raise
            # Someone created it between our look-up and our create.
            found = self._http.request("GET", folders, what=f"look up the folder {name}", params=query).json()
            if not found.get("value"):
                raise
            return str(found["value"][0]["id"])
        return str(made.json()["id"])

    # Sending --------------------------------------------------------------------------------------

    def send(self, message: EmailMessage) -> None:
        """Send as the seller, a copy in Sent Items; a reply goes into the Outlook conversation it answers."""
        self._deliver(message, draft=False)

    def save_draft(self, message: EmailMessage) -> None:
        """Leave the message (or the in-thread reply) in the seller's Drafts to review and send."""
        self._deliver(message, draft=True)

    def was_sent(self, message_id: str) -> bool:
        """Whether Sent Items holds what we sent as `message_id` (sending takes a moment to land there)."""
        return bool(self._ours("sentitems", message_id))

    def sent_message_id(self, message_id: str) -> str | None:
        """The Message-ID recipients got for what we sent as `message_id`: ours, unless Exchange renamed it.

        Not part of the Mailbox protocol: the watcher keeps it as an alias when it differs from ours.
        """
        for item in self._ours("sentitems", message_id):
            if item.get("internetMessageId"):
                return str(item["internetMessageId"])
        return None

    def _ours(self, folder: str, message_id: str) -> list[dict[str, Any]]:
        """Items in a well-known folder with this Message-ID, or stamped with it as MutualPlanMessageId."""
        wanted = message_id.strip() if message_id.strip().startswith("<") else f"<{message_id.strip()}>"
        url = self._url(f"/mailFolders/{folder}/messages")
        select = {"$select": "id,internetMessageId"}
        by_id = f"internetMessageId eq '{_quoted(wanted)}'"
        found = self._http.request("GET", url, what=f"look in {folder}", params={"$filter": by_id, **select}).json()
        if found.get("value"):
            return list(found["value"])
        # Filtering on an extended property: learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get
        by_property = (
            f"singleValueExtendedProperties/Any(ep: ep/id eq '{OUR_ID_PROPERTY}' and ep/value eq '{_quoted(wanted)}')"
        )
        found = self._http.request(
            "GET", url, what=f"look in {folder}", params={"$filter": by_property, **select}
        ).json()
        return list(found.get("value", []))

    def _deliver(self, message: EmailMessage, *, draft: bool) -> None:
        mid = message_id(message)
        waiting = self._waiting_draft(mid, attachments(message)) if mid else None
        if waiting:
            # Drafted before (review, or a retry): send that draft, as the seller would, rather than a
            # second copy; saving it again changes nothing.
            if not draft:
                self._post(f"/messages/{quote(waiting, safe='')}/send", "send the draft waiting in Drafts")
            return
        answered = str(message.get("In-Reply-To", "")).split()
        if answered:
            original = self._find_message(answered[0])
            if original:
                reply = self._reply_draft(original, message)
                if not draft:
                    self._post(f"/messages/{quote(reply, safe='')}/send", "send the reply")
                return
            log.warning(
                "%s: the message %s answers is not in the mailbox; it goes out on its own, threaded by its headers",
                self.name,
                answered[0],
            )
        if not self._mime(message, draft=draft):
            self._large(message, draft=draft)

    def _mime(self, message: EmailMessage, *, draft: bool) -> bool:
        """sendMail (or a draft) from our MIME, every part and header as rendered; False when over 4 MB.

        Graph documents that it parses MIME into the message's properties (our Message-ID becomes its
        internetMessageId) and that transport sends it on more or less intact: the plain-text part the
        prospect quotes, In-Reply-To, References and Auto-Submitted included, with no 5-header limit.
        """
        encoded = base64.b64encode(message.as_bytes(policy=policy.SMTP))
        if len(encoded) >= MAX_REQUEST:
            return False
        target, what = ("/messages", "create a draft") if draft else ("/sendMail", "send the message")
        self._post(target, what, content=encoded, headers={"Content-Type": "text/plain"})
        return True

    def _large(self, message: EmailMessage, *, draft: bool) -> None:
        """A message too large for one request: a JSON draft, its files one by one, then send."""
        if message.get("In-Reply-To"):
            log.warning("%s: over 4 MB, so it goes as JSON without its In-Reply-To and References", self.name)
        # internetMessageId is given at creation, while the message is a draft, as Graph documents.
        created = self._post("/messages", "create a draft", json=message_json(message))
        draft_id = str(created.json()["id"])
        self._attach(draft_id, attachments(message))
        if not draft:
            self._post(f"/messages/{quote(draft_id, safe='')}/send", "send the message")

    def _reply_draft(self, original: str, message: EmailMessage) -> str:
        """createReply on the original, our body, recipients, headers, Message-ID and files: the draft's id."""
        reply: dict[str, Any] = {"subject": str(message.get("Subject", "")), "body": body(message)}
        for field, header in (("toRecipients", "To"), ("ccRecipients", "Cc"), ("bccRecipients", "Bcc")):
            found = recipients(message.get(header))
            if found:
                reply[field] = found
        headers = custom_headers(message)
        if headers:
            # Custom headers can only be given when a message is created, and createReply creates it.
            reply["internetMessageHeaders"] = headers
        created = self._post(
            f"/messages/{quote(original, safe='')}/createReply", "create the reply", json={"message": reply}
        )
        draft_id = str(created.json()["id"])
        draft_url = self._url(f"/messages/{quote(draft_id, safe='')}")
        props = extended_properties(message)
        if props:
            self._http.request(
                "PATCH", draft_url, what="stamp the reply", json={"singleValueExtendedProperties": props}
            )
        mid = message_id(message)
        if mid:
            # internetMessageId is documented writable while the message is a draft. Should Exchange refuse
            # it on a reply it built, the reply goes out under Exchange's Message-ID and is still found by
            # the MutualPlanMessageId property stamped above (see sent_message_id).
            try:
                self._http.request(
                    "PATCH", draft_url, what="give the reply our Message-ID", json={"internetMessageId": mid}
                )
            except GraphError as exc:
                if exc.status != 400:
                    raise
                log.warning("%s: Exchange kept its own Message-ID for the reply %s: %s", self.name, mid, exc.message)
        self._attach(draft_id, attachments(message))
        return draft_id

    def _attach(self, draft_id: str, files: list[Attachment]) -> None:
        for file in files:
            if len(file.data) < UPLOAD_THRESHOLD:
                self._post(
                    f"/messages/{quote(draft_id, safe='')}/attachments", f"attach {file.name}", json=file.to_json()
                )
            else:
                self._upload(draft_id, file)

    def _upload(self, draft_id: str, file: Attachment) -> None:
        """A large attachment through an upload session, in ranges under 4 MB, resuming where Graph says."""
        session = self._post(
            f"/messages/{quote(draft_id, safe='')}/attachments/createUploadSession",
            f"start uploading {file.name}",
            json={"AttachmentItem": file.upload_item()},
        ).json()
        upload_url = session["uploadUrl"]
        size = len(file.data)
        start = _next_start(session, 0)
        while start < size:
            end = min(start + UPLOAD_CHUNK, size) - 1
            # The upload URL carries its own authorization; Graph says to send no Authorization header.
            answer = self._http.request(
                "PUT",
                upload_url,
                what=f"upload {file.name}",
                content=file.data[start : end + 1],
                headers={"Content-Type": "application/octet-stream", "Content-Range": f"bytes {start}-{end}/{size}"},
                authorized=False,
            )
            if answer.status_code == 201:
                return
            start = _next_start(answer.json(), end + 1)
        raise GraphError(f"the upload of {file.name} ended without Graph confirming the attachment", status=200)

    def _waiting_draft(self, internet_message_id: str, files: list[Attachment]) -> str | None:
        """The complete draft in Drafts with this Message-ID; an incomplete one (a crash midway) is deleted."""
        expected = sorted(f.name for f in files)
        for item in self._ours("drafts", internet_message_id):
            draft_url = self._url(f"/messages/{quote(str(item['id']), safe='')}")
            names = self._http.request(
                "GET", f"{draft_url}/attachments", what="list a draft's files", params={"$select": "name"}
            ).json()
            if sorted(str(a.get("name", "")) for a in names.get("value", [])) == expected:
                return str(item["id"])
            log.warning(
                "%s: deleting an incomplete draft of %s left by an interrupted send", self.name, internet_message_id
            )
            self._http.request("DELETE", draft_url, what="delete an incomplete draft")
        return None

    def _find_message(self, internet_message_id: str) -> str | None:
        """The id of the (non-draft) message with this Message-ID anywhere in the mailbox."""
        if not internet_message_id:
            return None
        found = self._http.request(
            "GET",
            self._url("/messages"),
            what="find the message being answered",
            params={
                "$filter": f"internetMessageId eq '{_quoted(internet_message_id)}'",
                "$select": "id,isDraft",
                "$top": "5",
            },
        ).json()
        for item in found.get("value", []):
            if not item.get("isDraft"):
                return str(item["id"])
        return None

    # Plumbing -------------------------------------------------------------------------------------

    def _post(self, path: str, what: str, **kwargs: Any) -> Any:
        return self._http.request("POST", self._url(path), what=what, **kwargs)

    def _url(self, path: str) -> str:
        return f"{self._base}{self._user}{path}"

    def _state_key(self, what: str) -> str:
        return f"{self.name}:{what}"

    @property
    def max_in_flight(self) -> int:
        """The most requests this mailbox had in flight at once in this process."""
        return self._http.gate.max_in_flight


def _quoted(value: str) -> str:
    # OData string literals double their single quotes.
    return value.replace("'", "''")


def _next_start(session: dict[str, Any], default: int) -> int:
    ranges = session.get("nextExpectedRanges") or []
    if not ranges:
        return default
    try:
        return int(str(ranges[0]).split("-")[0])
    except ValueError:
        return default
