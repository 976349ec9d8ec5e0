"""A local Microsoft Graph and Entra ID endpoint for tests: HTTPS on loopback, an in-memory Exchange mailbox.

It speaks the JSON of the calls the graph backend makes, shaped as Microsoft's reference documents them (each
handler cites its learn.microsoft.com page), and checks what the real service checks that matters to us: the
bearer token, custom headers only named x- and at most five, internetMessageId writable only on drafts, no
Authorization header on upload-session PUTs, 4 MB requests. Faults (429 with Retry-After, 503, 410 Gone, a
dropped connection) are injected per request pattern. Sending stands in for Exchange transport: the message
moves to Sent Items and its MIME is kept in `outbound`.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import ipaddress
import json
import re
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

PS_INTERNET_HEADERS = "{00020386-0000-0000-C000-000000000046}"
# "4 MB" per request, base64 and JSON included: files "under 3 MB" go in one POST, larger ones through an upload
# session (learn.microsoft.com/graph/outlook-large-attachments); past it the service answers 413 Request Entity
# Too Large (learn.microsoft.com/graph/errors). Read strictly, as 4,000,000 bytes, so an adapter that stays
# under it stays under either reading.
MAX_REQUEST = 4_000_000
WELL_KNOWN = ("msgfolderroot", "inbox", "drafts", "sentitems", "deleteditems")
# The key of max_in_flight that counts requests to every mailbox together.
ALL_MAILBOXES = "*"


# TLS ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    """A throwaway certificate authority and a server certificate for 127.0.0.1."""

    ca_path: Path
    cert_path: Path
    key_path: Path


def make_tls(directory: Path) -> Tls:
    """msal insists on https authorities, so the endpoint speaks TLS with a CA the tests trust."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local Graph test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tls


def make_client_certificate(directory: Path, name: str = "mutualplan-graph") -> tuple[Path, str]:
    """An app's self-signed certificate as one PEM (key + certificate), and its certificate PEM alone."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = directory / f"{name}.pem"
    path.write_text(key_pem + cert_pem)
    return path, cert_pem


# The mailbox -------------------------------------------------------------------------------------


def _new_id(prefix: str = "AAMkAG") -> str:
    # Real REST ids are URL-safe base64 ending in '=': clients must quote them in URLs.
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(18)).decode() + "="


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Folder:
    id: str
    name: str
    parent: str | None
    well_known: str | None = None


@dataclass
class Item:
    """One message in a mailbox, with the properties of the message resource."""

    id: str
    folder: str
    arrived: int
    changed: int
    subject: str = ""
    body: dict[str, str] = field(default_factory=lambda: {"contentType": "Text", "content": ""})
    sender: dict[str, Any] | None = None
    to: list[dict[str, Any]] = field(default_factory=list)
    cc: list[dict[str, Any]] = field(default_factory=list)
    bcc: list[dict[str, Any]] = field(default_factory=list)
    reply_to: list[dict[str, Any]] = field(default_factory=list)
    internet_message_id: str | None = None
    conversation_id: str = ""
    is_read: bool = False
    is_draft: bool = False
    categories: list[str] = field(default_factory=list)
    received: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    sent: dt.datetime | None = None
    headers: list[dict[str, str]] = field(default_factory=list)
    extended: dict[str, str] = field(default_factory=dict)  # named Internet-header properties, by header name
    props: dict[str, str] = field(default_factory=dict)  # every singleValueExtendedProperty, by its id
    attachments: list[dict[str, Any]] = field(default_factory=list)
    in_reply_to: str | None = None
    references: str | None = None
    raw: bytes | None = None

    def to_json(self, select: list[str] | None = None) -> dict[str, Any]:
        """The message resource (learn.microsoft.com/graph/api/resources/message)."""
        full = {
            "@odata.etag": f'W/"{self.changed}"',
            "id": self.id,
            "createdDateTime": _stamp(self.received),
            "lastModifiedDateTime": _stamp(self.received),
            "receivedDateTime": _stamp(self.received),
            "sentDateTime": _stamp(self.sent) if self.sent else None,
            "hasAttachments": any(not a["isInline"] for a in self.attachments),
            "internetMessageId": self.internet_message_id,
            "subject": self.subject,
            "bodyPreview": self.body.get("content", "")[:255],
            "importance": "normal",
            "parentFolderId": self.folder,
            "conversationId": self.conversation_id,
            "isRead": self.is_read,
            "isDraft": self.is_draft,
            "body": self.body,
            "sender": self.sender,
            "from": self.sender,
            "toRecipients": self.to,
            "ccRecipients": self.cc,
            "bccRecipients": self.bcc,
            "replyTo": self.reply_to,
            "categories": list(self.categories),
            "flag": {"flagStatus": "notFlagged"},
        }
        if select is None:
            return full
        # internetMessageHeaders is returned only when selected.
        chosen = {"@odata.etag": full["@odata.etag"], "id": self.id}
        for name in select:
            if name == "internetMessageHeaders":
                chosen[name] = self.header_list()
            elif name in full:
                chosen[name] = full[name]
        return chosen

    def header_list(self) -> list[dict[str, str]]:
        mime = email.message_from_bytes(self.mime(), policy=email.policy.default)
        return [{"name": k, "value": str(v)} for k, v in mime.items()]

    def mime(self) -> bytes:
        """The MIME content ($value): as given for MIME and inbound mail, else built from the properties."""
        if self.raw is not None:
            return self.raw
        msg = EmailMessage()
        if self.sender:
            msg["From"] = _address(self.sender)
        if self.to:
            msg["To"] = ", ".join(_address(r) for r in self.to)
        if self.cc:
            msg["Cc"] = ", ".join(_address(r) for r in self.cc)
        msg["Subject"] = self.subject
        msg["Date"] = format_datetime(self.sent or self.received)
        if self.internet_message_id:
            msg["Message-ID"] = self.internet_message_id
        if self.in_reply_to:
            msg["In-Reply-To"] = self.in_reply_to
        if self.references:
            msg["References"] = self.references
        msg["Thread-Topic"] = re.sub(r"^(re|fw|aw):\s*", "", self.subject, flags=re.I)
        for header in self.headers:
            msg[header["name"]] = header["value"]
        # Exchange writes named properties of the Internet-headers set out as headers.
        for name, value in self.extended.items():
            msg[name] = value
        kind = "html" if self.body.get("contentType", "").lower() == "html" else "plain"
        msg.set_content(self.body.get("content", ""), subtype=kind)
        for att in self.attachments:
            maintype, _, subtype = att["contentType"].partition("/")
            if att["isInline"]:
                msg.add_attachment(
                    att["data"],
                    maintype=maintype,
                    subtype=subtype or "octet-stream",
                    filename=att["name"],
                    disposition="inline",
                    cid=f"<{att['contentId']}>",
                )
            else:
                msg.add_attachment(
                    att["data"], maintype=maintype, subtype=subtype or "octet-stream", filename=att["name"]
                )
        return msg.as_bytes(policy=email.policy.SMTP)


def _address(recipient: dict[str, Any]) -> str:
    email_address = recipient.get("emailAddress", {})
    return formataddr((email_address.get("name", ""), email_address.get("address", "")))


def _recipients(value: str | None) -> list[dict[str, Any]]:
    found = []
    for name, address in getaddresses([value or ""]):
        if address:
            found.append({"emailAddress": {"name": name or address, "address": address}})
    return found


class Mailbox:
    """A user's mailbox: well-known folders, messages, and a change log for delta."""

    def __init__(self, upn: str, display_name: str) -> None:
        self.upn = upn
        self.display_name = display_name
        self.seq = 0
        self.folders: dict[str, Folder] = {}
        for name in WELL_KNOWN:
            parent = None if name == "msgfolderroot" else self.folders["msgfolderroot"].id
            folder = Folder(_new_id("AAMkAGFolder"), _display(name), parent, well_known=name)
            self.folders[folder.id] = folder
            self.folders.setdefault(name, folder)
        self.items: dict[str, Item] = {}
        self.removed: list[tuple[int, str, str]] = []  # (seq, folder id, message id)

    def tick(self) -> int:
        self.seq += 1
        return self.seq

    def folder(self, ref: str) -> Folder | None:
        ref_lower = ref.lower()
        if ref_lower in WELL_KNOWN:
            return self.folders[ref_lower]
        return self.folders.get(ref)

    def real_folders(self) -> list[Folder]:
        return [f for key, f in self.folders.items() if key == f.id]

    def path_of(self, folder_id: str) -> str:
        names = []
        folder = self.folders[folder_id]
        while folder.parent is not None:
            names.append(folder.name)
            folder = self.folders[folder.parent]
        return "/".join(reversed(names))

    def add(self, item: Item) -> Item:
        self.items[item.id] = item
        return item

    def move(self, item: Item, folder_id: str) -> None:
        if item.folder == folder_id:
            return
        self.removed.append((self.tick(), item.folder, item.id))
        item.folder = folder_id
        item.arrived = item.changed = self.tick()

    def sender(self) -> dict[str, Any]:
        return {"emailAddress": {"name": self.display_name, "address": self.upn}}

    def in_folder(self, ref: str) -> list[Item]:
        folder = self.folder(ref)
        assert folder is not None, ref
        return sorted((i for i in self.items.values() if i.folder == folder.id), key=lambda i: i.arrived)


def _display(well_known: str) -> str:
    return {
        "msgfolderroot": "Top of Information Store",
        "inbox": "Inbox",
        "drafts": "Drafts",
        "sentitems": "Sent Items",
        "deleteditems": "Deleted Items",
    }[well_known]


# Faults and records ------------------------------------------------------------------------------


@dataclass
class Fault:
    """Answer the next `times` requests matching method and path (and query) patterns with this failure."""

    method: str
    pattern: str
    status: int
    times: int = 1
    retry_after: str | None = None
    code: str = ""
    drop: bool = False  # close the connection without an answer
    query: str | None = None  # and a pattern the query must match


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int


@dataclass
class App:
    client_id: str
    secret: str | None = None
    certificate_pem: str | None = None
    # An application access policy: the mailboxes this app may touch (None: all).
    mailboxes: set[str] | None = None
    public: bool = False


@dataclass
class DeviceCode:
    client_id: str
    scopes: list[str]
    user_code: str
    approved_by: str | None = None


@dataclass
class Token:
    client_id: str
    user: str | None  # a delegated token's user, None for app-only
    expires: float


# The server --------------------------------------------------------------------------------------


class GraphServer:
    """Entra ID token endpoints and Graph mail endpoints on one HTTPS loopback port, in a thread."""

    def __init__(self, directory: Path, *, tenant: str = "contoso.onmicrosoft.com", tls: Tls | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.tls = tls or make_tls(directory)
        self.tenant = tenant
        self.lock = threading.RLock()
        self.apps: dict[str, App] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, tuple[str, str]] = {}
        self.device_codes: dict[str, DeviceCode] = {}
        self.token_requests: list[dict[str, str]] = []
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self.outbound: list[bytes] = []
        self.upload_sessions: dict[str, dict[str, Any]] = {}
        self.rounds: dict[str, dict[str, Any]] = {}
        self.delay = 0.0
        # Sending is asynchronous in Exchange Online (202 Accepted before transport runs): a test sets sent_delay
        # to see a copy land in Sent Items late. Until then it is in no folder: (due time, mailbox, item).
        self.sent_delay = 0.0
        self.in_transport: list[tuple[float, Mailbox, Item]] = []
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.token_lifetime = 3599
        # Refuse our Message-ID on reply drafts, to show the adapter copes when Exchange names replies itself.
        self.refuse_reply_message_id = False
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        # A dropped connection (an injected fault) is the point, not an error to print.
        self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._httpd.graph = self  # type: ignore[attr-defined]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls.cert_path, self.tls.key_path)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self._httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1.0"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="graph-server", daemon=True
        )

    def __enter__(self) -> GraphServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    # Set-up for tests

    def add_mailbox(self, upn: str, display_name: str = "") -> Mailbox:
        with self.lock:
            box = Mailbox(upn, display_name or upn.split("@")[0].title())
            self.mailboxes[upn.lower()] = box
            return box

    def register_app(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        certificate_pem: str | None = None,
        mailboxes: set[str] | None = None,
        public: bool = False,
    ) -> None:
        with self.lock:
            self.apps[client_id] = App(
                client_id, secret, certificate_pem, {m.lower() for m in mailboxes} if mailboxes else None, public
            )

    def fault(self, method: str, pattern: str, status: int, **kwargs: Any) -> Fault:
        fault = Fault(method, pattern, status, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def deliver(self, upn: str, raw: bytes, *, folder: str = "inbox", received: dt.datetime | None = None) -> Item:
        """Mail arriving from outside, threaded into a conversation by In-Reply-To/References as Exchange does."""
        with self.lock:
            box = self.mailboxes[upn.lower()]
            item = _item_from_mime(box, raw, folder=box.folder(folder).id)  # type: ignore[union-attr]
            item.received = received or dt.datetime.now(dt.UTC)
            item.raw = raw
            return box.add(item)

    def approve(self, user_code: str, upn: str) -> None:
        """The seller entering the code at the verification page and consenting."""
        with self.lock:
            for code in self.device_codes.values():
                if code.user_code == user_code:
                    code.approved_by = upn.lower()
                    return
        raise KeyError(user_code)

    def graph_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith("/v1.0/") or s.path.startswith("/upload/")]

    # Request handling

    def handle(self, handler: _Handler, method: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path
        query = parts.query
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self.lock:
            self.file_sent()
            fault = self._match_fault(method, path, query)
        mailbox_key = self._mailbox_key(path, headers)
        if fault is not None and fault.drop:
            handler.close_connection = True
            self._record(method, path, query, headers, body, 0)
            handler.connection.close()
            return
        self._enter(mailbox_key)
        try:
            if self.delay and mailbox_key:
                time.sleep(self.delay)
            if fault is not None:
                status, reply_headers, payload = self._fault_answer(fault, path)
            else:
                status, reply_headers, payload = self._route(method, path, query, headers, body)
        except _Reply as reply:
            status, reply_headers, payload = reply.status, reply.headers, reply.payload
        finally:
            self._leave(mailbox_key)
        self._record(method, path, query, headers, body, status)
        handler.respond(status, reply_headers, payload)

    def _record(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, status: int) -> None:
        with self.lock:
            self.seen.append(Seen(method, path, unquote(query), headers, body, time.monotonic(), status))

    def _enter(self, key: str | None) -> None:
        if not key:
            return
        with self.lock:
            for k in (key, ALL_MAILBOXES):  # each mailbox's count, and the app's over them all
                self.in_flight[k] = self.in_flight.get(k, 0) + 1
                self.max_in_flight[k] = max(self.max_in_flight.get(k, 0), self.in_flight[k])

    def _leave(self, key: str | None) -> None:
        if not key:
            return
        with self.lock:
            self.in_flight[key] -= 1
            self.in_flight[ALL_MAILBOXES] -= 1

    def _mailbox_key(self, path: str, headers: dict[str, str]) -> str | None:
        match = re.match(r"^/v1\.0/users/([^/]+)", path)
        if match:
            return unquote(match.group(1)).lower()
        if path.startswith("/v1.0/me"):
            token = self.tokens.get(headers.get("authorization", "")[len("Bearer ") :])
            return token.user if token else None
        match = re.match(r"^/upload/([^/?]+)", path)
        if match:
            session = self.upload_sessions.get(match.group(1))
            return session["mailbox"] if session else None
        return None

    def _match_fault(self, method: str, path: str, query: str) -> Fault | None:
        for fault in self.faults:
            if (
                fault.times > 0
                and fault.method == method
                and re.search(fault.pattern, unquote(path))
                and (fault.query is None or re.search(fault.query, unquote(query)))
            ):
                fault.times -= 1
                return fault
        return None

    def _fault_answer(self, fault: Fault, path: str) -> tuple[int, dict[str, str], bytes]:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        code = fault.code or {
            429: "TooManyRequests",
            503: "ServiceUnavailable",
            410: "SyncStateNotFound",
        }.get(fault.status, "ErrorInternalServerError")
        if fault.status == 410:
            # A resync: 410 Gone and a Location with an empty $deltaToken
            # (learn.microsoft.com/graph/delta-query-overview#synchronization-reset).
            headers["Location"] = f"{self.url}{path}?$deltatoken="
        return _error(fault.status, code, f"Injected {fault.status} for the test.", headers)

    def _route(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        tenant = re.escape(self.tenant)
        identity = [
            ("GET", rf"^/{tenant}/v2\.0/\.well-known/openid-configuration$", self._openid_configuration),
            ("POST", rf"^/{tenant}/oauth2/v2\.0/token$", self._token),
            ("POST", rf"^/{tenant}/oauth2/v2\.0/devicecode$", self._device_code),
        ]
        for verb, pattern, action in identity:
            if method == verb and re.match(pattern, path):
                return action(body, headers)
        if re.match(r"^/[^/]+/v2\.0/\.well-known/openid-configuration$", path):
            # An unknown tenant (learn.microsoft.com/entra/identity-platform/v2-protocols-oidc).
            return _json(400, {"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant not found."})
        if path.startswith("/upload/") and method == "PUT":
            return self._upload_put(path, params, headers, body)
        if not path.startswith("/v1.0/"):
            return _error(404, "ResourceNotFound", f"No route for {path}")
        token = self._bearer(headers)
        box, rest = self._mailbox_for(path, token)
        if len(body) > MAX_REQUEST:
            return _error(413, "ErrorRequestEntityTooLarge", "The request exceeds the maximum allowed size of 4MB.")
        routes = [
            ("GET", r"^/mailFolders(?:/inbox|\('([^']+)'\)|/([^/]+))/messages/delta$", self._delta),
            ("GET", r"^/messages/([^/]+)/\$value$", self._get_mime),
            ("GET", r"^/messages/([^/]+)/attachments$", self._list_attachments),
            ("GET", r"^/messages/([^/]+)$", self._get_message),
            ("DELETE", r"^/messages/([^/]+)$", self._delete_message),
            ("PATCH", r"^/messages/([^/]+)$", self._update_message),
            ("POST", r"^/messages/([^/]+)/move$", self._move),
            ("POST", r"^/messages/([^/]+)/createReply$", self._create_reply),
            ("POST", r"^/messages/([^/]+)/attachments/createUploadSession$", self._create_upload_session),
            ("POST", r"^/messages/([^/]+)/attachments$", self._add_attachment),
            ("POST", r"^/messages/([^/]+)/send$", self._send_draft),
            ("GET", r"^/messages$", self._list_messages),
            ("POST", r"^/messages$", self._create_message),
            ("POST", r"^/sendMail$", self._send_mail),
            ("GET", r"^/mailFolders$", self._list_folders),
            ("POST", r"^/mailFolders$", self._create_folder),
            ("GET", r"^/mailFolders/([^/]+)/childFolders$", self._list_folders),
            ("POST", r"^/mailFolders/([^/]+)/childFolders$", self._create_folder),
            ("GET", r"^/mailFolders/([^/]+)/messages$", self._list_messages),
        ]
        for verb, pattern, action in routes:
            match = re.match(pattern, rest)
            if method == verb and match:
                args = [unquote(g) for g in match.groups() if g is not None]
                with self.lock:
                    return action(box, args, params, headers, body)
        return _error(400, "BadRequest", f"Unsupported request {method} {rest}")

    # Entra ID ------------------------------------------------------------------------------------

    def _openid_configuration(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        # OpenID Connect discovery (learn.microsoft.com/entra/identity-platform/v2-protocols-oidc).
        base = f"{self.url}/{self.tenant}"
        return _json(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{base}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
            },
        )

    def _token(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        with self.lock:
            self.token_requests.append(form)
        grant = form.get("grant_type", "")
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return _oauth_error(400, "unauthorized_client", "AADSTS700016: Application not found in the directory.")
        if grant == "client_credentials":
            return self._client_credentials(app, form)
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_token(app, form)
        if grant == "refresh_token":
            found = self.refresh_tokens.get(form.get("refresh_token", ""))
            if found is None:
                return _oauth_error(400, "invalid_grant", "AADSTS70000: The refresh token is invalid or expired.")
            return self._user_tokens(app, found[1], form.get("scope", ""))
        return _oauth_error(400, "unsupported_grant_type", f"AADSTS70003: {grant} is not supported.")

    def _client_credentials(self, app: App, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        # Client credentials grant with a secret or a certificate assertion
        # (learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
        if form.get("scope") != f"{self.url}/.default":
            return _oauth_error(
                400, "invalid_scope", f"AADSTS1002012: The provided scope {form.get('scope')} is invalid."
            )
        if "client_secret" in form:
            if app.secret is None or form["client_secret"] != app.secret:
                return _oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        elif "client_assertion" in form:
            if not self._assertion_valid(app, form["client_assertion"]):
                return _oauth_error(
                    401, "invalid_client", "AADSTS700027: Client assertion failed signature validation."
                )
        else:
            return _oauth_error(
                401, "invalid_client", "AADSTS7000218: The request body must contain client_secret or client_assertion."
            )
        access = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[access] = Token(app.client_id, None, time.time() + self.token_lifetime)
        return _json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": access,
            },
        )

    def _assertion_valid(self, app: App, assertion: str) -> bool:
        # Certificate credentials: a JWT signed with the app's key, audience the token endpoint
        # (learn.microsoft.com/entra/identity-platform/certificate-credentials).
        if not app.certificate_pem:
            return False
        public_key = x509.load_pem_x509_certificate(app.certificate_pem.encode()).public_key()
        try:
            claims = jwt.decode(
                assertion,
                public_key,  # type: ignore[arg-type]
                algorithms=["PS256", "RS256"],
                audience=f"{self.url}/{self.tenant}/oauth2/v2.0/token",
            )
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == app.client_id and claims.get("sub") == app.client_id

    def _device_code(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        # Device authorization request (learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code).
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        app = self.apps.get(form.get("client_id", ""))
        if app is None or not app.public:
            return _oauth_error(
                400, "invalid_client", "AADSTS7000218: public client flows are not allowed for this app."
            )
        device_code = secrets.token_urlsafe(24)
        user_code = secrets.token_hex(4).upper()
        with self.lock:
            self.device_codes[device_code] = DeviceCode(app.client_id, form.get("scope", "").split(), user_code)
        return _json(
            200,
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": f"{self.url}/devicelogin",
                "expires_in": 900,
                "interval": 1,
                "message": f"To sign in, use a web browser to open the page {self.url}/devicelogin "
                f"and enter the code {user_code} to authenticate.",
            },
        )

    def _device_token(self, app: App, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        code = self.device_codes.get(form.get("device_code", ""))
        if code is None:
            return _oauth_error(400, "expired_token", "AADSTS70019: the device code expired.")
        if code.approved_by is None:
            return _oauth_error(400, "authorization_pending", "AADSTS70016: OAuth 2.0 device flow error.")
        del self.device_codes[form["device_code"]]
        return self._user_tokens(app, code.approved_by, " ".join(code.scopes))

    def _user_tokens(self, app: App, upn: str, scope: str) -> tuple[int, dict[str, str], bytes]:
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32)
        oid = str(uuid.uuid5(uuid.NAMESPACE_DNS, upn))
        tid = str(uuid.uuid5(uuid.NAMESPACE_DNS, self.tenant))
        with self.lock:
            self.tokens[access] = Token(app.client_id, upn, time.time() + self.token_lifetime)
            self.refresh_tokens[refresh] = (app.client_id, upn)
        id_claims = {
            "aud": app.client_id,
            "iss": f"{self.url}/{tid}/v2.0",
            "iat": int(time.time()),
            "exp": int(time.time()) + 3600,
            "oid": oid,
            "tid": tid,
            "sub": oid,
            "preferred_username": upn,
            "name": upn.split("@")[0].title(),
        }
        id_token = (
            ".".join(
                base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                for part in ({"alg": "none", "typ": "JWT"}, id_claims)
            )
            + "."
        )
        client_info = base64.urlsafe_b64encode(json.dumps({"uid": oid, "utid": tid}).encode()).decode().rstrip("=")
        return _json(
            200,
            {
                "token_type": "Bearer",
                "scope": " ".join(s for s in scope.split() if s not in ("openid", "profile", "offline_access")),
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": access,
                "refresh_token": refresh,
                "id_token": id_token,
                "client_info": client_info,
            },
        )

    # Graph: identity of the caller ---------------------------------------------------------------

    def _bearer(self, headers: dict[str, str]) -> Token:
        value = headers.get("authorization", "")
        if not value.startswith("Bearer "):
            raise _Reply(*_error(401, "InvalidAuthenticationToken", "Access token is empty."))
        token = self.tokens.get(value[len("Bearer ") :])
        if token is None or token.expires < time.time():
            raise _Reply(
                *_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
            )
        return token

    def _mailbox_for(self, path: str, token: Token) -> tuple[Mailbox, str]:
        match = re.match(r"^/v1\.0/users/([^/]+)(/.*)?$", path)
        if match:
            upn = unquote(match.group(1)).lower()
            rest = match.group(2) or ""
        elif path.startswith("/v1.0/me"):
            if token.user is None:
                raise _Reply(
                    *_error(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
                )
            upn, rest = token.user, path[len("/v1.0/me") :]
        else:
            raise _Reply(*_error(400, "BadRequest", f"Resource not found for the segment {path}."))
        box = self.mailboxes.get(upn)
        if box is None:
            raise _Reply(*_error(404, "ErrorInvalidUser", f"The requested user '{upn}' is invalid."))
        app = self.apps[token.client_id]
        if token.user is None and app.mailboxes is not None and upn not in app.mailboxes:
            # An application access policy (learn.microsoft.com/graph/auth-limit-mailbox-access).
            raise _Reply(
                *_error(
                    403,
                    "ErrorAccessDenied",
                    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
                )
            )
        if token.user is not None and token.user != upn:
            raise _Reply(*_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."))
        return box, rest

    # Graph: reading ------------------------------------------------------------------------------

    def _delta(self, box: Mailbox, args: list[str], params: dict[str, str], headers: dict[str, str], body: bytes):
        # message: delta (learn.microsoft.com/graph/api/message-delta) and its paging
        # (learn.microsoft.com/graph/delta-query-messages).
        folder = box.folder(args[0]) if args else box.folder("inbox")
        if folder is None:
            return _error(404, "ErrorInvalidIdMalformed", "Id is malformed.")
        page_size = _max_page_size(headers.get("prefer", "")) or 10
        if "$skiptoken" in params:
            round_ = self.rounds.get(params["$skiptoken"])
            if round_ is None:
                return _error(400, "SyncStateInvalid", "The sync state is invalid.")
        else:
            if params.get("$deltatoken"):
                try:
                    state = json.loads(base64.urlsafe_b64decode(params["$deltatoken"]))
                except ValueError:
                    return _error(400, "SyncStateInvalid", "The sync state is invalid.")
                since_seq = state["seq"]
            else:
                state = {
                    "filter": params.get("$filter", ""),
                    "changeType": params.get("changeType", ""),
                    "select": params.get("$select", ""),
                }
                since_seq = None
            round_ = {"state": state, "entries": self._changes(box, folder, state, since_seq), "seq": box.seq}
        page, rest = round_["entries"][:page_size], round_["entries"][page_size:]
        link_base = f"{self.base_url}/users/{quote(box.upn)}/mailFolders('{folder.id}')/messages/delta"
        answer: dict[str, Any] = {"@odata.context": f"{self.base_url}/$metadata#Collection(message)", "value": page}
        if rest:
            token = secrets.token_urlsafe(12)
            self.rounds[token] = {**round_, "entries": rest}
            answer["@odata.nextLink"] = f"{link_base}?$skiptoken={token}"
        else:
            state = {**round_["state"], "seq": round_["seq"]}
            delta = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            answer["@odata.deltaLink"] = f"{link_base}?$deltatoken={delta}"
        return _json(200, answer)

    def _changes(self, box: Mailbox, folder: Folder, state: dict[str, Any], since: int | None) -> list[dict[str, Any]]:
        select = [s for s in state.get("select", "").split(",") if s]
        match = re.match(r"receivedDateTime (ge|gt) (\S+)$", state.get("filter", ""))
        bound = dt.datetime.fromisoformat(match.group(2).replace("Z", "+00:00")) if match else None
        created_only = state.get("changeType") == "created"
        entries = []
        for item in box.in_folder(folder.id):
            if bound is not None and (item.received < bound or (match.group(1) == "gt" and item.received == bound)):  # type: ignore[union-attr]
                continue
            new = since is None or item.arrived > since
            updated = since is not None and item.changed > since and not created_only
            if new or updated:
                entries.append({"@odata.type": "#microsoft.graph.message", **item.to_json(select or None)})
        if since is not None and not created_only:
            for seq, folder_id, message_id in box.removed:
                if seq > since and folder_id == folder.id:
                    entries.append(
                        {"@odata.type": "#microsoft.graph.message", "id": message_id, "@removed": {"reason": "deleted"}}
                    )
        return entries

    def _item(self, box: Mailbox, message_id: str) -> Item:
        item = box.items.get(message_id)
        if item is None:
            raise _Reply(*_error(404, "ErrorItemNotFound", "The specified object was not found in the store."))
        return item

    def _get_mime(self, box: Mailbox, args: list[str], params, headers, body):
        # Get MIME content of a message (learn.microsoft.com/graph/outlook-get-mime-message).
        item = self._item(box, args[0])
        return 200, {"Content-Type": "text/plain"}, item.mime()

    def _get_message(self, box: Mailbox, args: list[str], params, headers, body):
        # Get message (learn.microsoft.com/graph/api/message-get).
        item = self._item(box, args[0])
        return _json(200, item.to_json(_select(params)))

    def _list_attachments(self, box: Mailbox, args: list[str], params, headers, body):
        # List attachments (learn.microsoft.com/graph/api/message-list-attachments).
        item = self._item(box, args[0])
        listed = [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "id": f"att-{n}",
                "name": a["name"],
                "contentType": a["contentType"],
                "size": len(a["data"]),
                "isInline": a["isInline"],
            }
            for n, a in enumerate(item.attachments)
        ]
        select = _select(params)
        if select:
            listed = [{k: v for k, v in a.items() if k in select or k in ("id", "@odata.type")} for a in listed]
        return _json(200, {"value": listed})

    def _delete_message(self, box: Mailbox, args: list[str], params, headers, body):
        # Delete message (learn.microsoft.com/graph/api/message-delete).
        item = self._item(box, args[0])
        del box.items[item.id]
        box.removed.append((box.tick(), item.folder, item.id))
        return 204, {}, b""

    def _list_messages(self, box: Mailbox, args: list[str], params, headers, body):
        # List messages (learn.microsoft.com/graph/api/user-list-messages) and in a folder
        # (learn.microsoft.com/graph/api/mailfolder-list-messages).
        if args:
            folder = box.folder(args[0])
            if folder is None:
                return _error(404, "ErrorInvalidIdMalformed", "Id is malformed.")
            items = box.in_folder(folder.id)
        else:
            items = list(box.items.values())
        expression = params.get("$filter", "")
        wanted = _filter_equals(expression, "internetMessageId")
        if wanted is not None:
            items = [i for i in items if i.internet_message_id == wanted]
        # Messages with a single-value extended property
        # (learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get).
        match = re.match(
            r"^singleValueExtendedProperties/Any\(ep: ep/id eq '((?:[^']|'')*)' and ep/value eq '((?:[^']|'')*)'\)$",
            expression.strip(),
        )
        if match:
            prop_id, value = (g.replace("''", "'") for g in match.groups())
            items = [i for i in items if i.props.get(prop_id) == value]
        elif expression and wanted is None:
            return _error(400, "BadRequest", f"Unsupported filter: {expression}")
        top = int(params.get("$top", "10"))
        return _json(200, {"value": [i.to_json(_select(params)) for i in items[:top]]})

    # Graph: filing -------------------------------------------------------------------------------

    def _update_message(self, box: Mailbox, args: list[str], params, headers, body):
        # Update message (learn.microsoft.com/graph/api/message-update).
        item = self._item(box, args[0])
        change = json.loads(body or b"{}")
        draft_only = {"internetMessageId", "body", "subject", "replyTo"}
        for name in change:
            if name in draft_only and not item.is_draft:
                return _error(
                    400,
                    "ErrorInvalidPropertyUpdateSentMessage",
                    "Update operation is invalid for property of a sent message.",
                )
            if name == "internetMessageHeaders":
                return _error(
                    400,
                    "ErrorInvalidProperty",
                    "Custom Internet message headers can only be added when the message is created.",
                )
        if "isRead" in change:
            item.is_read = bool(change["isRead"])
        if "categories" in change:
            item.categories = list(change["categories"])
        if "internetMessageId" in change:
            if item.in_reply_to and self.refuse_reply_message_id:
                # What exchangelib's users met with EWS replies; Graph may do the same.
                return _error(400, "ErrorInvalidPropertySet", "The property InternetMessageId can't be set.")
            item.internet_message_id = change["internetMessageId"]
        if "body" in change:
            item.body = change["body"]
        if "subject" in change:
            item.subject = change["subject"]
        _set_properties(item, change.get("singleValueExtendedProperties", []))
        item.changed = box.tick()
        return _json(200, item.to_json())

    def _move(self, box: Mailbox, args: list[str], params, headers, body):
        # message: move (learn.microsoft.com/graph/api/message-move); with immutable ids the id stays.
        item = self._item(box, args[0])
        destination = box.folder(json.loads(body or b"{}").get("destinationId", ""))
        if destination is None:
            return _error(404, "ErrorItemNotFound", "The specified folder was not found in the store.")
        box.move(item, destination.id)
        return _json(201, item.to_json())

    def _list_folders(self, box: Mailbox, args: list[str], params, headers, body):
        # List mailFolders (learn.microsoft.com/graph/api/user-list-mailfolders) and child folders
        # (learn.microsoft.com/graph/api/mailfolder-list-childfolders).
        parent = box.folder(args[0]) if args else box.folder("msgfolderroot")
        if parent is None:
            return _error(404, "ErrorItemNotFound", "The specified folder was not found in the store.")
        folders = [f for f in box.real_folders() if f.parent == parent.id]
        wanted = _filter_equals(params.get("$filter", ""), "displayName")
        if wanted is not None:
            folders = [f for f in folders if f.name.lower() == wanted.lower()]
        return _json(200, {"value": [self._folder_json(box, f) for f in folders]})

    def _create_folder(self, box: Mailbox, args: list[str], params, headers, body):
        # Create mailFolder (learn.microsoft.com/graph/api/user-post-mailfolders) and child folder
        # (learn.microsoft.com/graph/api/mailfolder-post-childfolders).
        parent = box.folder(args[0]) if args else box.folder("msgfolderroot")
        if parent is None:
            return _error(404, "ErrorItemNotFound", "The specified folder was not found in the store.")
        name = json.loads(body or b"{}").get("displayName", "")
        if any(f.parent == parent.id and f.name.lower() == name.lower() for f in box.real_folders()):
            return _error(409, "ErrorFolderExists", "A folder with the specified name already exists.")
        folder = Folder(_new_id("AAMkAGFolder"), name, parent.id)
        box.folders[folder.id] = folder
        return _json(201, self._folder_json(box, folder))

    def _folder_json(self, box: Mailbox, folder: Folder) -> dict[str, Any]:
        # The mailFolder resource (learn.microsoft.com/graph/api/resources/mailfolder).
        inside = [i for i in box.items.values() if i.folder == folder.id]
        return {
            "id": folder.id,
            "displayName": folder.name,
            "parentFolderId": folder.parent,
            "childFolderCount": sum(1 for f in box.real_folders() if f.parent == folder.id),
            "unreadItemCount": sum(1 for i in inside if not i.is_read),
            "totalItemCount": len(inside),
            "isHidden": False,
        }

    # Graph: sending ------------------------------------------------------------------------------

    def _send_mail(self, box: Mailbox, args: list[str], params, headers, body):
        # user: sendMail, JSON or base64 MIME (learn.microsoft.com/graph/api/user-sendmail).
        if headers.get("content-type", "").startswith("text/plain"):
            item = self._from_base64_mime(box, body)
        else:
            request = json.loads(body or b"{}")
            item = self._from_json(box, request.get("message", {}))
        self._transport(box, item)
        return 202, {}, b""

    def _create_message(self, box: Mailbox, args: list[str], params, headers, body):
        # Create message, JSON or base64 MIME (learn.microsoft.com/graph/api/user-post-messages).
        if headers.get("content-type", "").startswith("text/plain"):
            item = self._from_base64_mime(box, body)
        else:
            item = self._from_json(box, json.loads(body or b"{}"))
        return _json(201, item.to_json())

    def _create_reply(self, box: Mailbox, args: list[str], params, headers, body):
        # message: createReply (learn.microsoft.com/graph/api/message-createreply).
        original = self._item(box, args[0])
        request = json.loads(body or b"{}")
        given = request.get("message", {})
        if request.get("comment") is not None and "body" in given:
            return _error(400, "ErrorInvalidRequest", "Specify either a comment or the body of the message, not both.")
        _check_headers(given.get("internetMessageHeaders", []))
        seq = box.tick()
        quoted = f"\n\nFrom: {_address(original.sender or {})}\nSubject: {original.subject}\n\n" + original.body.get(
            "content", ""
        )
        item = Item(
            id=_new_id(),
            folder=box.folder("drafts").id,  # type: ignore[union-attr]
            arrived=seq,
            changed=seq,
            subject=given.get("subject") or f"RE: {original.subject}",
            body=given.get("body") or {"contentType": "Text", "content": (request.get("comment") or "") + quoted},
            sender=box.sender(),
            to=given.get("toRecipients") or original.reply_to or ([original.sender] if original.sender else []),
            cc=given.get("ccRecipients", []),
            bcc=given.get("bccRecipients", []),
            conversation_id=original.conversation_id,
            is_read=True,
            is_draft=True,
            headers=list(given.get("internetMessageHeaders", [])),
            in_reply_to=original.internet_message_id,
            references=" ".join(filter(None, [original.references, original.internet_message_id])) or None,
        )
        return _json(201, box.add(item).to_json())

    def _add_attachment(self, box: Mailbox, args: list[str], params, headers, body):
        # Add attachment (learn.microsoft.com/graph/api/message-post-attachments), under 3 MB.
        item = self._item(box, args[0])
        if not item.is_draft:
            return _error(400, "ErrorInvalidOperation", "Attachments can only be added to a draft.")
        att = json.loads(body)
        item.attachments.append(_attachment_from_json(att))
        item.changed = box.tick()
        return _json(201, {**{k: v for k, v in att.items() if k != "contentBytes"}, "id": _new_id("AAMkAGAtt")})

    def _create_upload_session(self, box: Mailbox, args: list[str], params, headers, body):
        # attachment: createUploadSession (learn.microsoft.com/graph/api/attachment-createuploadsession).
        item = self._item(box, args[0])
        spec = json.loads(body).get("AttachmentItem", {})
        if spec.get("attachmentType") != "file" or not spec.get("name") or int(spec.get("size", 0)) <= 0:
            return _error(400, "ErrorInvalidRequest", "AttachmentItem needs attachmentType file, a name and a size.")
        session = secrets.token_urlsafe(16)
        self.upload_sessions[session] = {
            "mailbox": box.upn.lower(),
            "message": item.id,
            "spec": spec,
            "data": bytearray(),
            "authtoken": secrets.token_urlsafe(24),
        }
        expires = _stamp(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15))
        upload_url = f"{self.url}/upload/{session}?authtoken={self.upload_sessions[session]['authtoken']}"
        return _json(
            201,
            {
                "@odata.context": f"{self.base_url}/$metadata#microsoft.graph.uploadSession",
                "uploadUrl": upload_url,
                "expirationDateTime": expires,
                "nextExpectedRanges": ["0-"],
            },
        )

    def _upload_put(self, path: str, params: dict[str, str], headers: dict[str, str], body: bytes):
        # Upload a range of the file (learn.microsoft.com/graph/outlook-large-attachments): no Authorization
        # header, Content-Range "bytes start-end/total", in order; the last range answers 201 with a Location.
        session_id = path.rsplit("/", 1)[-1]
        with self.lock:
            session = self.upload_sessions.get(session_id)
            if session is None or params.get("authtoken") != session["authtoken"]:
                return _error(404, "ErrorItemNotFound", "The upload session was not found.")
            if "authorization" in headers:
                return _error(
                    401, "InvalidAuthenticationToken", "Do not send an Authorization header to the upload URL."
                )
            match = re.match(r"bytes (\d+)-(\d+)/(\d+)$", headers.get("content-range", ""))
            if not match:
                return _error(400, "InvalidRange", "Content-Range is missing or malformed.")
            start, end, total = (int(g) for g in match.groups())
            size = int(session["spec"]["size"])
            if total != size or start != len(session["data"]) or end - start + 1 != len(body):
                return _error(416, "InvalidRange", f"Expected the range starting at {len(session['data'])}.")
            if len(body) > MAX_REQUEST:
                return _error(413, "ErrorRequestEntityTooLarge", "Upload ranges must be under 4 MB.")
            session["data"].extend(body)
            if len(session["data"]) < size:
                return _json(
                    200,
                    {
                        "expirationDateTime": _stamp(dt.datetime.now(dt.UTC)),
                        "nextExpectedRanges": [f"{len(session['data'])}-"],
                    },
                )
            box = self.mailboxes[session["mailbox"]]
            item = box.items[session["message"]]
            spec = session["spec"]
            item.attachments.append(
                {
                    "name": spec["name"],
                    "contentType": spec.get("contentType", "application/octet-stream"),
                    "data": bytes(session["data"]),
                    "isInline": bool(spec.get("isInline")),
                    "contentId": spec.get("contentId"),
                }
            )
            item.changed = box.tick()
            del self.upload_sessions[session_id]
            location = (
                f"{self.base_url}/users/{quote(box.upn)}/messages('{item.id}')/attachments('{_new_id('AAMkAGAtt')}')"
            )
            return 201, {"Location": location, "Content-Length": "0"}, b""

    def _send_draft(self, box: Mailbox, args: list[str], params, headers, body):
        # message: send (learn.microsoft.com/graph/api/message-send).
        item = self._item(box, args[0])
        if not item.is_draft:
            return _error(400, "ErrorInvalidOperation", "Only a draft can be sent.")
        self._transport(box, item)
        return 202, {}, b""

    def _from_json(self, box: Mailbox, message: dict[str, Any]) -> Item:
        _check_headers(message.get("internetMessageHeaders", []))
        seq = box.tick()
        item = Item(
            id=_new_id(),
            folder=box.folder("drafts").id,  # type: ignore[union-attr]
            arrived=seq,
            changed=seq,
            subject=message.get("subject", ""),
            body=message.get("body") or {"contentType": "Text", "content": ""},
            sender=box.sender(),
            to=message.get("toRecipients", []),
            cc=message.get("ccRecipients", []),
            bcc=message.get("bccRecipients", []),
            reply_to=message.get("replyTo", []),
            internet_message_id=message.get("internetMessageId"),
            conversation_id=_new_id("AAQkAGConv"),
            is_read=True,
            is_draft=True,
            headers=list(message.get("internetMessageHeaders", [])),
            attachments=[_attachment_from_json(a) for a in message.get("attachments", [])],
        )
        _set_properties(item, message.get("singleValueExtendedProperties", []))
        return box.add(item)

    def _from_base64_mime(self, box: Mailbox, body: bytes) -> Item:
        try:
            raw = base64.b64decode(body, validate=False)
        except ValueError as exc:
            raise _Reply(
                *_error(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
            ) from exc
        item = _item_from_mime(box, raw, folder=box.folder("drafts").id)  # type: ignore[union-attr]
        item.is_draft = True
        item.is_read = True
        item.raw = raw
        return box.add(item)

    def _transport(self, box: Mailbox, item: Item) -> None:
        """What Exchange Online does after 202 Accepted: stamp, deliver, and file in Sent Items."""
        if not item.internet_message_id:
            item.internet_message_id = make_msgid(domain="fake.prod.outlook.com")
        item.is_draft = False
        item.sent = dt.datetime.now(dt.UTC)
        box.move(item, box.folder("sentitems").id)  # type: ignore[union-attr]
        if self.sent_delay > 0:
            del box.items[item.id]
            self.in_transport.append((time.monotonic() + self.sent_delay, box, item))
        raw = item.mime()
        self.outbound.append(raw)
        # Recipients with a mailbox here get their copy, as in one Exchange Online tenant.
        for recipient in item.to + item.cc + item.bcc:
            address = recipient.get("emailAddress", {}).get("address", "").lower()
            if address in self.mailboxes:
                self.deliver(address, raw)

    # Helpers for tests ---------------------------------------------------------------------------

    def file_sent(self, *, everything: bool = False) -> None:
        """Put in Sent Items the copies whose transport time is up (all of them when `everything`)."""
        with self.lock:
            now = time.monotonic()
            due = [t for t in self.in_transport if everything or t[0] <= now]
            self.in_transport = [t for t in self.in_transport if t not in due]
            for _, box, item in due:
                box.add(item)

    def mailbox(self, upn: str) -> Mailbox:
        return self.mailboxes[upn.lower()]

    def sent_mime(self) -> Iterator[email.message.EmailMessage]:
        for raw in list(self.outbound):
            yield email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[misc]


class _Reply(Exception):
    def __init__(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        super().__init__(status)
        self.status, self.headers, self.payload = status, headers, payload


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalGraph/1.0"
    # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms to each.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def respond(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(payload)))
        self.send_header("request-id", str(uuid.uuid4()))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def do_GET(self) -> None:
        self.server.graph.handle(self, "GET")  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        self.server.graph.handle(self, "POST")  # type: ignore[attr-defined]

    def do_PATCH(self) -> None:
        self.server.graph.handle(self, "PATCH")  # type: ignore[attr-defined]

    def do_PUT(self) -> None:
        self.server.graph.handle(self, "PUT")  # type: ignore[attr-defined]

    def do_DELETE(self) -> None:
        self.server.graph.handle(self, "DELETE")  # type: ignore[attr-defined]


# Small pieces ------------------------------------------------------------------------------------


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None):
    # The Graph error resource (learn.microsoft.com/graph/errors).
    return _json(
        status,
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"date": _stamp(dt.datetime.now(dt.UTC)), "request-id": str(uuid.uuid4())},
            }
        },
        headers,
    )


def _oauth_error(status: int, error: str, description: str):
    return _json(status, {"error": error, "error_description": description, "error_codes": [0]})


def _check_headers(headers: list[dict[str, str]]) -> None:
    # Only x- headers, at most five (learn.microsoft.com/graph/api/resources/internetmessageheader).
    for header in headers:
        if not header.get("name", "").lower().startswith("x-"):
            raise _Reply(
                *_error(
                    400,
                    "InvalidInternetMessageHeader",
                    f"The internet message header name '{header.get('name')}' should start with 'x-' or 'X-'.",
                )
            )
    if len(headers) > 5:
        raise _Reply(
            *_error(
                400,
                "InvalidInternetMessageHeaderCollection",
                "Maximum number of headers in one message should be less than or equal to 5.",
            )
        )


def _attachment_from_json(att: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": att.get("name", "attachment"),
        "contentType": att.get("contentType", "application/octet-stream"),
        "data": base64.b64decode(att.get("contentBytes", "")),
        "isInline": bool(att.get("isInline")),
        "contentId": att.get("contentId"),
    }


def _set_properties(item: Item, props: list[dict[str, str]]) -> None:
    for prop in props:
        item.props[prop["id"]] = prop["value"]
        name = _internet_header_name(prop["id"])
        if name:
            item.extended[name] = prop["value"]


def _internet_header_name(prop_id: str) -> str | None:
    match = re.match(r"^String \{([0-9A-Fa-f-]+)\} Name (.+)$", prop_id)
    if match and "{" + match.group(1).upper() + "}" == PS_INTERNET_HEADERS:
        return match.group(2)
    return None


def _item_from_mime(box: Mailbox, raw: bytes, *, folder: str) -> Item:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    seq = box.tick()
    mid = str(msg.get("Message-ID", "")).strip() or None
    in_reply_to = str(msg.get("In-Reply-To", "")).strip() or None
    references = str(msg.get("References", "")).strip() or None
    conversation = None
    for ref in [in_reply_to, *(references or "").split()]:
        for other in box.items.values():
            if ref and other.internet_message_id == ref:
                conversation = other.conversation_id
    part = msg.get_body(preferencelist=("html", "plain"))  # type: ignore[attr-defined]
    content = part.get_content() if part is not None else ""
    kind = "HTML" if part is not None and part.get_content_type() == "text/html" else "Text"
    senders = _recipients(str(msg.get("From", "")))
    # Exchange parses MIME into the attachments table too (learn.microsoft.com/graph/outlook-send-mime-message).
    files = []
    for att in msg.iter_attachments():  # type: ignore[attr-defined]
        cid = att.get("Content-ID")
        files.append(
            {
                "name": att.get_filename() or "attachment",
                "contentType": att.get_content_type(),
                "data": att.get_payload(decode=True) or b"",
                "isInline": bool(cid) and att.get_content_disposition() != "attachment",
                "contentId": str(cid).strip("<> ") if cid else None,
            }
        )
    return Item(
        id=_new_id(),
        folder=folder,
        arrived=seq,
        changed=seq,
        subject=str(msg.get("Subject", "")),
        body={"contentType": kind, "content": content},
        sender=senders[0] if senders else None,
        to=_recipients(str(msg.get("To", ""))),
        cc=_recipients(str(msg.get("Cc", ""))),
        reply_to=_recipients(str(msg.get("Reply-To", ""))),
        internet_message_id=mid,
        conversation_id=conversation or _new_id("AAQkAGConv"),
        in_reply_to=in_reply_to,
        references=references,
        attachments=files,
    )


def _select(params: dict[str, str]) -> list[str] | None:
    value = params.get("$select")
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


def _filter_equals(expression: str, prop: str) -> str | None:
    match = re.match(rf"^{prop} eq '((?:[^']|'')*)'$", expression.strip())
    return match.group(1).replace("''", "'") if match else None


def _max_page_size(prefer: str) -> int | None:
    match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
    return int(match.group(1)) if match else None
