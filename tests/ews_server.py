"""A small EWS endpoint on loopback: the SOAP operations exchangelib sends, over a mailbox kept in memory.

It answers as Exchange 2016 would, following Microsoft's published schema (messages.xsd, types.xsd) and the
operation pages cited beside each handler, closely enough that real exchangelib talks to it over real HTTP.
It can refuse credentials, answer ErrorServerBusy with a back-off, and drop connections before or after it
did the work. Like Exchange it gives an item a new id when it moves, assigns its own Message-ID to replies
it builds, and keeps the Message-ID of mail created from MIME.

Schema reference for every element below:
https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/ews-xml-elements-in-exchange
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import threading
import time
import traceback
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from xml.sax.saxutils import escape, quoteattr

S = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NS = {"s": S, "m": M, "t": T}

# Distinguished folders the mailbox starts with: id -> (display name, parent, folder class).
DISTINGUISHED = {
    "root": ("Root", None, None),
    "msgfolderroot": ("Top of Information Store", "root", None),
    "inbox": ("Inbox", "msgfolderroot", "IPF.Note"),
    "drafts": ("Drafts", "msgfolderroot", "IPF.Note"),
    "sentitems": ("Sent Items", "msgfolderroot", "IPF.Note"),
    "outbox": ("Outbox", "msgfolderroot", "IPF.Note"),
    "deleteditems": ("Deleted Items", "msgfolderroot", "IPF.Note"),
}


@dataclass
class Folder:
    id: str
    name: str
    parent: str | None
    folder_class: str | None
    distinguished: str | None = None


@dataclass
class Attachment:
    id: str
    name: str
    content_type: str
    content: bytes


@dataclass
class Item:
    """One message in the store, with the MAPI-ish properties EWS shows for it."""

    id: str
    folder: str
    subject: str = ""
    message_id: str = ""
    in_reply_to: str | None = None
    references: str | None = None
    sender: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    body: str = ""
    body_type: str = "Text"
    is_read: bool = False
    is_draft: bool = False
    categories: list[str] = field(default_factory=list)
    conversation_index: bytes = b""
    conversation_topic: str = ""
    extended: dict[tuple[str, str], str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    mime: bytes | None = None
    received: datetime = field(default_factory=lambda: datetime.now(UTC))
    changekey: str = field(default_factory=lambda: _token("CK"))

    @property
    def conversation_id(self) -> str:
        # Exchange derives ConversationId from the GUID in the conversation index (bytes 6-22).
        return base64.b64encode(self.conversation_index[6:22]).decode()

    def touch(self) -> None:
        self.changekey = _token("CK")


@dataclass
class Fault:
    """A fault to inject into the next request for `operation` (None: any operation)."""

    kind: str  # "busy", "drop" (before doing the work) or "drop_after" (after doing it)
    operation: str | None = None
    back_off_ms: int = 50


class SchemaFault(Exception):
    """A request the EWS schema refuses: the server answers with an ErrorSchemaValidation SOAP fault, not a response."""


class EwsError(Exception):
    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def _token(prefix: str) -> str:
    return prefix + base64.b64encode(uuid.uuid4().bytes + os.urandom(8)).decode()


def _new_index() -> bytes:
    # ConversationIndex header block: reserved byte, 5 bytes of FILETIME, 16-byte GUID ([MS-OXOMSG] 2.2.1.3).
    return b"\x01" + int(time.time() * 1e7).to_bytes(8, "big")[:5] + uuid.uuid4().bytes


def _child_index(parent: bytes) -> bytes:
    return parent + os.urandom(5)


def _x(tag: str, value: object) -> str:
    return f"<t:{tag}>{escape(str(value))}</t:{tag}>"


def _bool(value: bool) -> str:
    return "true" if value else "false"


class Mailbox:
    """The store: folders, items, per-state sync snapshots, and what was sent out."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.lock = threading.RLock()
        self.folders: dict[str, Folder] = {}
        self.items: dict[str, Item] = {}
        self.outbound: list[bytes] = []
        self.sync_states: dict[str, dict[str, bool]] = {}
        # Transport files the Sent Items copy a moment after SendItem returns on a real server; a test sets
        # sent_delay to see that moment. Until then the sent item is in no folder: (due time, item, folder).
        self.sent_delay = 0.0
        self.in_transport: list[tuple[float, Item, str]] = []
        self._ids = itertools.count(1)
        for key, (name, _parent, cls) in DISTINGUISHED.items():
            fid = _token("AQMk")
            self.folders[fid] = Folder(fid, name, None, cls, distinguished=key)
        by_key = {f.distinguished: f for f in self.folders.values()}
        for key, (_, parent, _) in DISTINGUISHED.items():
            if parent:
                by_key[key].parent = by_key[parent].id

    def folder_id(self, distinguished: str) -> str:
        for f in self.folders.values():
            if f.distinguished == distinguished:
                return f.id
        raise EwsError("ErrorFolderNotFound", f"The specified folder could not be found: {distinguished}")

    def in_folder(self, folder_id: str) -> list[Item]:
        return sorted((i for i in self.items.values() if i.folder == folder_id), key=lambda i: i.received)

    def folder_path(self, path: str) -> Folder | None:
        parent = self.folder_id("msgfolderroot")
        found = None
        for part in path.split("/"):
            found = next((f for f in self.folders.values() if f.parent == parent and f.name == part), None)
            if found is None:
                return None
            parent = found.id
        return found

    def new_item_id(self) -> str:
        return _token("AAMk")

    def add(self, item: Item) -> Item:
        self.items[item.id] = item
        return item

    def by_message_id(self, message_id: str) -> list[Item]:
        return [i for i in self.items.values() if i.message_id == message_id]

    def item_from_mime(self, raw: bytes, folder: str, *, draft: bool) -> Item:
        """Convert MIME to an item as Exchange does ([MS-OXCMAIL]): headers to properties, Message-ID kept."""
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        message_id = str(msg.get("Message-ID", "")).strip() or f"<{uuid.uuid4()}@ews.test>"
        in_reply_to = str(msg.get("In-Reply-To", "")).strip() or None
        index = b""
        if msg.get("Thread-Index"):
            index = base64.b64decode(str(msg["Thread-Index"]))
        elif in_reply_to and self.by_message_id(in_reply_to):
            index = _child_index(self.by_message_id(in_reply_to)[0].conversation_index)
        body_part = msg.get_body(preferencelist=("html", "plain"))
        body = body_part.get_content() if body_part is not None else ""
        item = Item(
            id=self.new_item_id(), folder=folder, subject=str(msg.get("Subject", "")), message_id=message_id,
            in_reply_to=in_reply_to, references=str(msg.get("References", "")).strip() or None,
            sender=getaddresses([str(msg.get("From", ""))])[0][1],
            to=[a for _, a in getaddresses(msg.get_all("To", []))],
            cc=[a for _, a in getaddresses(msg.get_all("Cc", []))],
            body=body, body_type="HTML" if body_part is not None and body_part.get_content_subtype() == "html"
            else "Text",
            is_draft=draft, conversation_index=index or _new_index(),
            conversation_topic=_topic(str(msg.get("Subject", ""))), mime=raw,
        )
        for part in msg.iter_attachments():
            item.attachments.append(Attachment(_token("AAMkAtt"), part.get_filename() or "attachment",
                                               part.get_content_type(), part.get_payload(decode=True) or b""))
        return item

    def mime_of(self, item: Item) -> bytes:
        """The MIME Exchange would write for the item: stored MIME if it came as MIME, else built from props."""
        if item.mime is not None:
            return item.mime
        msg = EmailMessage()
        msg["From"] = self.address
        if item.to:
            msg["To"] = ", ".join(item.to)
        if item.cc:
            msg["Cc"] = ", ".join(item.cc)
        msg["Subject"] = item.subject
        msg["Date"] = format_datetime(item.received)
        msg["Message-ID"] = item.message_id
        if item.in_reply_to:
            msg["In-Reply-To"] = item.in_reply_to
        if item.references:
            msg["References"] = item.references
        msg["Thread-Topic"] = item.conversation_topic
        msg["Thread-Index"] = base64.b64encode(item.conversation_index).decode()
        for (pset, name), value in item.extended.items():
            # Named properties in the InternetHeaders set become headers when transport writes the MIME.
            if pset == "InternetHeaders":
                msg[name] = value
        msg.set_content(item.body, subtype="html" if item.body_type == "HTML" else "plain")
        for att in item.attachments:
            maintype, _, subtype = att.content_type.partition("/")
            msg.add_attachment(att.content, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=att.name)
        return msg.as_bytes(policy=policy.SMTP)

    def submit(self, item: Item, save_to: str | None) -> None:
        """Send: the recipients get the MIME; the item becomes a sent item in `save_to` (or is dropped)."""
        item.is_draft = False
        item.is_read = True
        self.outbound.append(self.mime_of(item))
        if save_to is None:
            self.items.pop(item.id, None)
            return
        self.items.pop(item.id, None)
        item.id = self.new_item_id()  # a new item in Sent Items, with a new id
        item.folder = save_to
        item.touch()
        if self.sent_delay > 0:
            self.in_transport.append((time.monotonic() + self.sent_delay, item, save_to))
            return
        self.items[item.id] = item

    def file_sent(self, *, everything: bool = False) -> None:
        """Put in Sent Items the copies whose transport time is up (all of them when `everything`)."""
        now = time.monotonic()
        waiting = []
        for due, item, _folder in self.in_transport:
            if everything or due <= now:
                self.items[item.id] = item
            else:
                waiting.append((due, item, _folder))
        self.in_transport = waiting


def _topic(subject: str) -> str:
    lowered = subject
    while lowered[:3].lower() in ("re:", "fw:") or lowered[:4].lower() == "fwd:":
        lowered = lowered.split(":", 1)[1].strip()
    return lowered


class EwsServer:
    """The HTTP server: start(), url, mailbox, faults, credentials; stop() when done."""

    def __init__(self, address: str = "seller@example.com", *, username: str = "seller",
                 password: str = "s3cret", client_id: str = "app-id", client_secret: str = "app-secret") -> None:
        self.mailbox = Mailbox(address)
        self.username = username
        self.password = password
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens: set[str] = set()
        self.faults: list[Fault] = []
        self.requests: list[dict[str, str]] = []
        self.errors: list[str] = []
        self.server_version = (15, 1, 2507, 6, "V2017_07_11")
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> EwsServer:
        handler = type("Handler", (_Handler,), {"ews": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/EWS/Exchange.asmx"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    # -- test helpers

    def deliver(self, raw: bytes, *, read: bool = False) -> Item:
        """Mail arriving in the Inbox from outside."""
        with self.mailbox.lock:
            item = self.mailbox.item_from_mime(raw, self.mailbox.folder_id("inbox"), draft=False)
            item.is_read = read
            return self.mailbox.add(item)

    def folder_items(self, distinguished_or_path: str) -> list[Item]:
        with self.mailbox.lock:
            self.mailbox.file_sent()
            if distinguished_or_path in DISTINGUISHED:
                return self.mailbox.in_folder(self.mailbox.folder_id(distinguished_or_path))
            folder = self.mailbox.folder_path(distinguished_or_path)
            return self.mailbox.in_folder(folder.id) if folder else []

    def inject(self, kind: str, operation: str | None = None, *, times: int = 1, back_off_ms: int = 50) -> None:
        self.faults.extend(Fault(kind, operation, back_off_ms) for _ in range(times))

    def operations(self) -> list[str]:
        return [r["operation"] for r in self.requests]

    def _take_fault(self, operation: str) -> Fault | None:
        for i, f in enumerate(self.faults):
            if f.operation in (None, operation):
                return self.faults.pop(i)
        return None


class _Handler(BaseHTTPRequestHandler):
    ews: EwsServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    # -- HTTP

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path == "/token":
            return self._token(body)
        if not self.path.lower().startswith("/ews/exchange.asmx"):
            return self._send(404, b"not found", "text/plain")
        if not self._authorized():
            return self._send(401, b"", "text/plain",
                              {"WWW-Authenticate": 'Basic realm="ews", Bearer'})
        if os.environ.get("EWS_SERVER_DUMP"):
            print(body.decode(), flush=True)
        envelope = ET.fromstring(body)
        op_elem = envelope.find("s:Body", NS)[0]
        operation = op_elem.tag.split("}", 1)[1]
        header = envelope.find("s:Header", NS)
        self.ews.requests.append(_request_record(operation, header, self.headers))
        fault = self.ews._take_fault(operation)
        with self.ews.mailbox.lock:
            self.ews.mailbox.file_sent()
        if fault is not None and fault.kind == "busy":
            return self._send(500, _busy_fault(fault.back_off_ms), "text/xml; charset=utf-8")
        if fault is not None and fault.kind == "drop":
            return self._drop()
        handler = getattr(self, "op_" + operation, None)
        if handler is None:
            raise NotImplementedError(operation)
        try:
            with self.ews.mailbox.lock:
                content = handler(op_elem)
        except SchemaFault as e:
            return self._send(500, _schema_fault(str(e)), "text/xml; charset=utf-8")
        except Exception as e:  # a request this endpoint does not speak: say so loudly in the test output
            self.ews.errors.append(f"{operation}: {type(e).__name__}: {e}")
            traceback.print_exc()
            return self._send(500, str(e).encode(), "text/plain")
        if fault is not None and fault.kind == "drop_after":
            return self._drop()
        xml = _envelope(self.ews.server_version, content)
        self._send(200, xml.encode(), "text/xml; charset=utf-8")

    def _drop(self) -> None:
        # Close the socket without a response, as a server that dies mid-request would.
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(2)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            return (user, pw) == (self.ews.username, self.ews.password)
        if auth.startswith("Bearer "):
            return auth[7:] in self.ews.tokens
        return False

    def _token(self, body: bytes) -> None:
        # The Microsoft identity platform's client credentials grant, reduced to what a client sees.
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "client_credentials" or (form.get("client_id"), form.get("client_secret")) != (
            self.ews.client_id, self.ews.client_secret
        ):
            payload = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}
            return self._send(401, json.dumps(payload).encode(), "application/json")
        token = _token("eyJ")
        self.ews.tokens.add(token)
        payload = {"token_type": "Bearer", "expires_in": 3599, "access_token": token}
        self._send(200, json.dumps(payload).encode(), "application/json")

    # -- helpers over the request XML

    @property
    def box(self) -> Mailbox:
        return self.ews.mailbox

    def _folder_ref(self, elem: ET.Element) -> str:
        tag = elem.tag.split("}", 1)[1]
        if tag == "DistinguishedFolderId":
            return self.box.folder_id(elem.get("Id", ""))
        fid = elem.get("Id", "")
        if fid not in self.box.folders:
            raise EwsError("ErrorFolderNotFound", "The specified folder could not be found in the store.")
        return fid

    def _item(self, item_id: str) -> Item:
        item = self.box.items.get(item_id)
        if item is None:
            raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.")
        return item

    def _per(self, name: str, elems: list[ET.Element], fn) -> str:  # type: ignore[no-untyped-def]
        out = []
        for elem in elems:
            try:
                out.append(f'<m:{name}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError'
                           f"</m:ResponseCode>{fn(elem)}</m:{name}ResponseMessage>")
            except EwsError as e:
                out.append(f'<m:{name}ResponseMessage ResponseClass="Error"><m:MessageText>{escape(e.text)}'
                           f"</m:MessageText><m:ResponseCode>{e.code}</m:ResponseCode>"
                           f"<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:{name}ResponseMessage>")
        return (f'<m:{name}Response xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages>{"".join(out)}'
                f"</m:ResponseMessages></m:{name}Response>")

    # -- folders

    def _folder_xml(self, f: Folder) -> str:
        count = len(self.box.in_folder(f.id))
        unread = sum(1 for i in self.box.in_folder(f.id) if not i.is_read)
        children = sum(1 for c in self.box.folders.values() if c.parent == f.id)
        parts = [f'<t:FolderId Id="{f.id}" ChangeKey="AQAAAA=="/>']
        if f.parent:
            parts.append(f'<t:ParentFolderId Id="{f.parent}" ChangeKey="AQAAAA=="/>')
        if f.folder_class:
            parts.append(_x("FolderClass", f.folder_class))
        parts += [_x("DisplayName", f.name), _x("TotalCount", count), _x("ChildFolderCount", children),
                  _x("UnreadCount", unread)]
        return f"<t:Folder>{''.join(parts)}</t:Folder>"

    def op_GetFolder(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getfolder-operation
        refs = list(op.find("m:FolderIds", NS))
        return self._per("GetFolder", refs,
                         lambda r: f"<m:Folders>{self._folder_xml(self.box.folders[self._folder_ref(r)])}</m:Folders>")

    def op_FindFolder(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/findfolder-operation
        deep = op.get("Traversal") == "Deep"
        parents = list(op.find("m:ParentFolderIds", NS))

        def one(ref: ET.Element) -> str:
            pid = self._folder_ref(ref)
            kids = [f for f in self.box.folders.values() if f.parent == pid]
            if deep:
                level = kids
                while level:
                    level = [f for f in self.box.folders.values() if f.parent in {k.id for k in level}]
                    kids += level
            inner = "".join(self._folder_xml(f) for f in kids)
            return (f'<m:RootFolder TotalItemsInView="{len(kids)}" IncludesLastItemInRange="true">'
                    f"<t:Folders>{inner}</t:Folders></m:RootFolder>")

        return self._per("FindFolder", parents, one)

    def op_CreateFolder(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/createfolder-operation
        parent = self._folder_ref(op.find("m:ParentFolderId", NS)[0])
        specs = list(op.find("m:Folders", NS))

        def one(spec: ET.Element) -> str:
            name = spec.findtext("t:DisplayName", "", NS)
            if any(f.parent == parent and f.name == name for f in self.box.folders.values()):
                raise EwsError("ErrorFolderExists", "A folder with the specified name already exists.")
            fid = _token("AQMk")
            self.box.folders[fid] = Folder(fid, name, parent, spec.findtext("t:FolderClass", "IPF.Note", NS))
            return f'<m:Folders><t:Folder><t:FolderId Id="{fid}" ChangeKey="AQAAAA=="/></t:Folder></m:Folders>'

        return self._per("CreateFolder", specs, one)

    # -- items out

    def _requested(self, shape: ET.Element | None) -> tuple[set[str], list[tuple[str, str]], bool]:
        uris: set[str] = set()
        ext: list[tuple[str, str]] = []
        if shape is None:
            return uris, ext, False
        mime = shape.findtext("t:IncludeMimeContent", "false", NS) in ("true", "1")
        if shape.findtext("t:BaseShape", "IdOnly", NS) != "IdOnly":
            uris |= {"item:Subject", "message:IsRead", "message:InternetMessageId", "item:Categories"}
        props = shape.find("t:AdditionalProperties", NS)
        for p in props if props is not None else []:
            if p.tag == f"{{{T}}}FieldURI":
                uris.add(p.get("FieldURI", ""))
            elif p.tag == f"{{{T}}}ExtendedFieldURI":
                ext.append(_ext_key(p))
        return uris, ext, mime or "item:MimeContent" in uris

    def _item_xml(self, item: Item, uris: set[str], ext: list[tuple[str, str]], mime: bool) -> str:
        """A t:Message with the requested properties, in the order of ItemType then MessageType (types.xsd)."""
        p: list[str] = []
        if mime:
            p.append(f'<t:MimeContent CharacterSet="UTF-8">{base64.b64encode(self.box.mime_of(item)).decode()}'
                     "</t:MimeContent>")
        p.append(f'<t:ItemId Id="{item.id}" ChangeKey="{item.changekey}"/>')
        if "item:ParentFolderId" in uris:
            p.append(f'<t:ParentFolderId Id="{item.folder}" ChangeKey="AQAAAA=="/>')
        if "item:ItemClass" in uris:
            p.append(_x("ItemClass", "IPM.Note"))
        if "item:Subject" in uris:
            p.append(_x("Subject", item.subject))
        if "item:Body" in uris:
            p.append(f'<t:Body BodyType="{item.body_type}">{escape(item.body)}</t:Body>')
        if "item:Attachments" in uris and item.attachments:
            p.append("<t:Attachments>" + "".join(
                f'<t:FileAttachment><t:AttachmentId Id="{a.id}"/>{_x("Name", a.name)}'
                f'{_x("ContentType", a.content_type)}{_x("Size", len(a.content))}</t:FileAttachment>'
                for a in item.attachments) + "</t:Attachments>")
        if "item:DateTimeReceived" in uris:
            p.append(_x("DateTimeReceived", item.received.strftime("%Y-%m-%dT%H:%M:%SZ")))
        if "item:Categories" in uris and item.categories:
            p.append("<t:Categories>" + "".join(_x("String", c) for c in item.categories) + "</t:Categories>")
        if "item:InReplyTo" in uris and item.in_reply_to:
            p.append(_x("InReplyTo", item.in_reply_to))
        if "item:IsDraft" in uris:
            p.append(_x("IsDraft", _bool(item.is_draft)))
        if "item:HasAttachments" in uris:
            p.append(_x("HasAttachments", _bool(bool(item.attachments))))
        for key in ext:
            if key in item.extended:
                p.append(f"<t:ExtendedProperty>{_ext_uri(key)}{_x('Value', item.extended[key])}"
                         "</t:ExtendedProperty>")
        if "item:ConversationId" in uris:
            p.append(f'<t:ConversationId Id="{item.conversation_id}"/>')
        if "message:ToRecipients" in uris and item.to:
            p.append("<t:ToRecipients>" + "".join(
                f"<t:Mailbox>{_x('EmailAddress', a)}</t:Mailbox>" for a in item.to) + "</t:ToRecipients>")
        if "message:ConversationIndex" in uris:
            p.append(_x("ConversationIndex", base64.b64encode(item.conversation_index).decode()))
        if "message:ConversationTopic" in uris:
            p.append(_x("ConversationTopic", item.conversation_topic))
        if "message:From" in uris and item.sender:
            p.append(f"<t:From><t:Mailbox>{_x('EmailAddress', item.sender)}</t:Mailbox></t:From>")
        if "message:InternetMessageId" in uris:
            p.append(_x("InternetMessageId", item.message_id))
        if "message:IsRead" in uris:
            p.append(_x("IsRead", _bool(item.is_read)))
        if "message:References" in uris and item.references:
            p.append(_x("References", item.references))
        return f"<t:Message>{''.join(p)}</t:Message>"

    def op_GetItem(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/getitem-operation-email-message
        uris, ext, mime = self._requested(op.find("m:ItemShape", NS))
        ids = list(op.find("m:ItemIds", NS))
        return self._per("GetItem", ids, lambda r: (
            f"<m:Items>{self._item_xml(self._item(r.get('Id', '')), uris, ext, mime)}</m:Items>"))

    def op_SyncFolderItems(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/syncfolderitems-operation
        uris, ext, mime = self._requested(op.find("m:ItemShape", NS))
        folder = self._folder_ref(op.find("m:SyncFolderId", NS)[0])
        state = op.findtext("m:SyncState", "", NS)
        limit = int(op.findtext("m:MaxChangesReturned", "100", NS))
        # "The value must be between 1 and 512, inclusive" (Types.xsd), checked before the operation runs:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/maxchangesreturned
        if not 1 <= limit <= 512:
            raise SchemaFault(
                "The request failed schema validation: The 'http://schemas.microsoft.com/exchange/services/2006/"
                f"messages:MaxChangesReturned' element is invalid - The value '{limit}' is invalid according to its "
                "datatype 'http://schemas.microsoft.com/exchange/services/2006/types:MaxSyncChangesReturnedType' - "
                f"The {'MaxInclusive' if limit > 512 else 'MinInclusive'} constraint failed.")
        if state and state not in self.box.sync_states:
            return self._per("SyncFolderItems", [op], _raise("ErrorInvalidSyncStateData", "Invalid sync state."))
        known = dict(self.box.sync_states.get(state, {}))
        current = {i.id: i for i in self.box.in_folder(folder)}
        changes: list[str] = []
        for iid, item in current.items():
            if len(changes) >= limit:
                break
            if iid not in known:
                changes.append(f"<t:Create>{self._item_xml(item, uris, ext, mime)}</t:Create>")
                known[iid] = item.is_read
            elif known[iid] != item.is_read:
                changes.append(f'<t:ReadFlagChange><t:ItemId Id="{iid}" ChangeKey="{item.changekey}"/>'
                               f"{_x('IsRead', _bool(item.is_read))}</t:ReadFlagChange>")
                known[iid] = item.is_read
        for iid in list(known):
            if iid not in current and len(changes) < limit:
                changes.append(f'<t:Delete><t:ItemId Id="{iid}"/></t:Delete>')
                del known[iid]
        done = set(known) == set(current) and all(known[i] == current[i].is_read for i in current)
        new_state = base64.b64encode(hashlib.sha256(os.urandom(16)).digest()).decode()
        self.box.sync_states[new_state] = known
        content = (f"<m:SyncState>{new_state}</m:SyncState>"
                   f"<m:IncludesLastItemInRange>{_bool(done)}</m:IncludesLastItemInRange>"
                   f"<m:Changes>{''.join(changes)}</m:Changes>")
        return self._per("SyncFolderItems", [op], lambda _: content)

    def op_FindItem(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/finditem-operation
        uris, ext, _ = self._requested(op.find("m:ItemShape", NS))
        restriction = op.find("m:Restriction", NS)
        view = op.find("m:IndexedPageItemView", NS)
        offset = int(view.get("Offset", "0")) if view is not None else 0
        limit = int(view.get("MaxEntriesReturned", "1000")) if view is not None else 1000

        def one(ref: ET.Element) -> str:
            items = [i for i in self.box.in_folder(self._folder_ref(ref))
                     if restriction is None or _matches(restriction[0], i)]
            page = items[offset:offset + limit]
            last = offset + len(page) >= len(items)
            inner = "".join(self._item_xml(i, uris, ext, False) for i in page)
            paging = "" if last else f' IndexedPagingOffset="{offset + len(page)}"'
            return (f'<m:RootFolder{paging} TotalItemsInView="{len(items)}" IncludesLastItemInRange="{_bool(last)}">'
                    f"<t:Items>{inner}</t:Items></m:RootFolder>")

        return self._per("FindItem", list(op.find("m:ParentFolderIds", NS)), one)

    # -- items in

    def op_CreateItem(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/createitem-operation-email-message
        # and, for ReplyToItem, .../web-service-reference/replytoitem
        disposition = op.get("MessageDisposition", "SaveOnly")
        saved = op.find("m:SavedItemFolderId", NS)
        folder = self._folder_ref(saved[0]) if saved is not None else None

        def one(spec: ET.Element) -> str:
            tag = spec.tag.split("}", 1)[1]
            if tag == "Message":
                item = self._message_from_request(spec, folder or self.box.folder_id("drafts"))
            elif tag == "ReplyToItem":
                item = self._reply_from_request(spec, folder or self.box.folder_id("drafts"))
            else:
                raise NotImplementedError(tag)
            self.box.add(item)
            if disposition == "SaveOnly":
                return (f'<m:Items><t:Message><t:ItemId Id="{item.id}" ChangeKey="{item.changekey}"/>'
                        "</t:Message></m:Items>")
            self.box.submit(item, folder if disposition == "SendAndSaveCopy" else None)
            return "<m:Items/>"

        return self._per("CreateItem", list(op.find("m:Items", NS)), one)

    def _message_from_request(self, spec: ET.Element, folder: str) -> Item:
        mime = spec.findtext("t:MimeContent", None, NS)
        if mime:
            item = self.box.item_from_mime(base64.b64decode(mime), folder, draft=True)
        else:
            item = Item(id=self.box.new_item_id(), folder=folder, is_draft=True,
                        subject=spec.findtext("t:Subject", "", NS), message_id=f"<{uuid.uuid4()}@ews.test>",
                        conversation_index=_new_index())
            item.conversation_topic = _topic(item.subject)
        for prop in spec.findall("t:ExtendedProperty", NS):
            item.extended[_ext_key(prop.find("t:ExtendedFieldURI", NS))] = prop.findtext("t:Value", "", NS)
        return item

    def _reply_from_request(self, spec: ET.Element, folder: str) -> Item:
        ref = spec.find("t:ReferenceItemId", NS)
        original = self._item(ref.get("Id", ""))
        body_elem = spec.find("t:NewBodyContent", NS)
        if body_elem is None:
            body_elem = spec.find("t:Body", NS)
        body = body_elem.text or "" if body_elem is not None else ""
        body_type = body_elem.get("BodyType", "Text") if body_elem is not None else "Text"
        quoted = escape(original.body) if body_type == "HTML" else original.body
        to = [m.findtext("t:EmailAddress", "", NS) for m in spec.findall("t:ToRecipients/t:Mailbox", NS)]
        cc = [m.findtext("t:EmailAddress", "", NS) for m in spec.findall("t:CcRecipients/t:Mailbox", NS)]
        refs = " ".join(x for x in (original.references, original.message_id) if x)
        # The response object takes its threading from the original; the Message-ID is the server's own.
        return Item(
            id=self.box.new_item_id(), folder=folder, is_draft=True,
            subject=spec.findtext("t:Subject", None, NS) or "RE: " + original.subject,
            message_id=f"<{uuid.uuid4().hex.upper()}@EX16.example.com>",
            in_reply_to=original.message_id, references=refs, to=to or [original.sender], cc=cc,
            body=f"{body}\n\n-----Original Message-----\n{quoted}", body_type=body_type,
            conversation_index=_child_index(original.conversation_index),
            conversation_topic=original.conversation_topic, is_read=True,
        )

    def op_UpdateItem(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/updateitem-operation
        def one(change: ET.Element) -> str:
            item = self._item(change.find("t:ItemId", NS).get("Id", ""))
            for update in change.find("t:Updates", NS):
                kind = update.tag.split("}", 1)[1]
                target = update[0]
                if target.tag == f"{{{T}}}ExtendedFieldURI":
                    key = _ext_key(target)
                    if kind == "DeleteItemField":
                        item.extended.pop(key, None)
                    else:
                        item.extended[key] = update.find("t:Message/t:ExtendedProperty/t:Value", NS).text or ""
                    continue
                uri = target.get("FieldURI", "")
                value = update.find("t:Message", NS)
                if uri == "message:IsRead":
                    item.is_read = kind != "DeleteItemField" and value.findtext("t:IsRead", "", NS) in ("true", "1")
                elif uri == "item:Categories":
                    item.categories = [] if kind == "DeleteItemField" else [
                        s.text or "" for s in value.findall("t:Categories/t:String", NS)]
                elif uri == "message:InternetMessageId":
                    raise EwsError("ErrorInvalidPropertySet", "Set action is invalid for property.")
                else:
                    raise NotImplementedError(uri)
            item.touch()
            return (f'<m:Items><t:Message><t:ItemId Id="{item.id}" ChangeKey="{item.changekey}"/></t:Message>'
                    "</m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>")

        return self._per("UpdateItem", list(op.find("m:ItemChanges", NS)), one)

    def op_CreateAttachment(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/createattachment-operation
        item = self._item(op.find("m:ParentItemId", NS).get("Id", ""))

        def one(spec: ET.Element) -> str:
            att = Attachment(_token("AAMkAtt"), spec.findtext("t:Name", "attachment", NS),
                             spec.findtext("t:ContentType", "application/octet-stream", NS),
                             base64.b64decode(spec.findtext("t:Content", "", NS)))
            item.attachments.append(att)
            item.touch()
            return (f'<m:Attachments><t:FileAttachment><t:AttachmentId Id="{att.id}" RootItemId="{item.id}" '
                    f'RootItemChangeKey="{item.changekey}"/></t:FileAttachment></m:Attachments>')

        return self._per("CreateAttachment", list(op.find("m:Attachments", NS)), one)

    def op_SendItem(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/senditem-operation
        save = op.get("SaveItemToFolder") in ("true", "1")
        saved = op.find("m:SavedItemFolderId", NS)
        folder = self._folder_ref(saved[0]) if saved is not None else self.box.folder_id("sentitems")

        def one(ref: ET.Element) -> str:
            item = self._item(ref.get("Id", ""))
            if not item.is_draft:
                raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.")
            self.box.submit(item, folder if save else None)
            return ""

        return self._per("SendItem", list(op.find("m:ItemIds", NS)), one)

    def op_DeleteItem(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/deleteitem-operation
        kind = op.get("DeleteType", "HardDelete")
        bin_id = self.box.folder_id("deleteditems")

        def one(ref: ET.Element) -> str:
            item = self._item(ref.get("Id", ""))
            del self.box.items[item.id]
            if kind == "MoveToDeletedItems":  # HardDelete and SoftDelete take it out of the folder's view
                item.id = self.box.new_item_id()
                item.folder = bin_id
                item.touch()
                self.box.items[item.id] = item
            return ""

        return self._per("DeleteItem", list(op.find("m:ItemIds", NS)), one)

    def op_MoveItem(self, op: ET.Element) -> str:
        # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/moveitem-operation
        to = self._folder_ref(op.find("m:ToFolderId", NS)[0])

        def one(ref: ET.Element) -> str:
            item = self._item(ref.get("Id", ""))
            # A moved item is a new item in its new folder, with a new id ([MS-OXCFOLD] MoveCopyMessages).
            del self.box.items[item.id]
            item.id = self.box.new_item_id()
            item.folder = to
            item.touch()
            self.box.items[item.id] = item
            return f'<m:Items><t:Message><t:ItemId Id="{item.id}" ChangeKey="{item.changekey}"/></t:Message></m:Items>'

        return self._per("MoveItem", list(op.find("m:ItemIds", NS)), one)


def _raise(code: str, text: str):  # type: ignore[no-untyped-def]
    def fn(_: ET.Element) -> str:
        raise EwsError(code, text)
    return fn


def _ext_key(uri: ET.Element) -> tuple[str, str]:
    pset = uri.get("DistinguishedPropertySetId") or uri.get("PropertySetId") or "tag"
    name = uri.get("PropertyName") or uri.get("PropertyTag") or uri.get("PropertyId") or ""
    return pset, name


def _ext_uri(key: tuple[str, str]) -> str:
    pset, name = key
    if pset == "tag":
        return f'<t:ExtendedFieldURI PropertyTag={quoteattr(name)} PropertyType="String"/>'
    return (f"<t:ExtendedFieldURI DistinguishedPropertySetId={quoteattr(pset)} PropertyName={quoteattr(name)} "
            'PropertyType="String"/>')


def _field_value(expr: ET.Element, item: Item) -> str | None:
    uri = expr.find("t:FieldURI", NS)
    if uri is not None:
        return {
            "message:InternetMessageId": item.message_id,
            "item:Subject": item.subject,
            "item:InReplyTo": item.in_reply_to,
        }.get(uri.get("FieldURI", ""))
    ext = expr.find("t:ExtendedFieldURI", NS)
    if ext is not None:
        return item.extended.get(_ext_key(ext))
    raise NotImplementedError(ET.tostring(expr).decode())


def _matches(expr: ET.Element, item: Item) -> bool:
    # Restrictions: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/restriction
    tag = expr.tag.split("}", 1)[1]
    if tag == "Or":
        return any(_matches(e, item) for e in expr)
    if tag == "And":
        return all(_matches(e, item) for e in expr)
    if tag == "Not":
        return not _matches(expr[0], item)
    if tag == "IsEqualTo":
        constant = expr.find("t:FieldURIOrConstant/t:Constant", NS)
        return _field_value(expr, item) == constant.get("Value")
    raise NotImplementedError(tag)


def _request_record(operation: str, header: ET.Element | None, http_headers: object) -> dict[str, str]:
    record = {"operation": operation, "version": "", "impersonate": "",
              "anchor": getattr(http_headers, "get", lambda *_: "")("X-AnchorMailbox") or ""}
    if header is not None:
        version = header.find("t:RequestServerVersion", NS)
        record["version"] = version.get("Version", "") if version is not None else ""
        who = header.find("t:ExchangeImpersonation/t:ConnectingSID/t:PrimarySmtpAddress", NS)
        record["impersonate"] = who.text or "" if who is not None else ""
    return record


def _envelope(version: tuple[int, int, int, int, str], content: str) -> str:
    # ServerVersionInfo: https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/serverversioninfo
    major, minor, build, minor_build, name = version
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}"><s:Header>'
            f'<h:ServerVersionInfo MajorVersion="{major}" MinorVersion="{minor}" MajorBuildNumber="{build}" '
            f'MinorBuildNumber="{minor_build}" Version="{name}" xmlns:h="{T}" xmlns="{T}"/></s:Header>'
            f"<s:Body>{content}</s:Body></s:Envelope>")


def _busy_fault(back_off_ms: int) -> bytes:
    # Throttling: https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/ews-throttling-in-exchange
    # ("ErrorServerBusy ... BackOffMilliseconds" in the SOAP fault's MessageXml).
    text = "The server cannot service this request right now. Try again later."
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}"><s:Body><s:Fault>'
            f'<faultcode xmlns:a="{T}">a:ErrorServerBusy</faultcode><faultstring xml:lang="en-US">{text}</faultstring>'
            f'<detail><e:ResponseCode xmlns:e="{E}">ErrorServerBusy</e:ResponseCode>'
            f'<e:Message xmlns:e="{E}">{text}</e:Message><t:MessageXml xmlns:t="{T}">'
            f'<t:Value Name="BackOffMilliseconds">{back_off_ms}</t:Value></t:MessageXml></detail>'
            "</s:Fault></s:Body></s:Envelope>").encode()


def _schema_fault(text: str) -> bytes:
    # A request the schema refuses is answered with HTTP 500 and a SOAP fault whose code is ErrorSchemaValidation
    # ("the request failed schema validation"):
    # https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/responsecode
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}"><s:Body><s:Fault>'
            f'<faultcode xmlns:a="{T}">a:ErrorSchemaValidation</faultcode>'
            f'<faultstring xml:lang="en-US">{text}</faultstring>'
            f'<detail><e:ResponseCode xmlns:e="{E}">ErrorSchemaValidation</e:ResponseCode>'
            f'<e:Message xmlns:e="{E}">{text}</e:Message><t:MessageXml xmlns:t="{T}">'
            '<t:LineNumber>1</t:LineNumber><t:LinePosition>1</t:LinePosition>'
            f'<t:Violation>{text}</t:Violation></t:MessageXml></detail>'
            "</s:Fault></s:Body></s:Envelope>").encode()
