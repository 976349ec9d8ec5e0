"""An EmailMessage as Microsoft Graph message JSON: recipients, body, attachments, our headers (no I/O)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from email.message import EmailMessage, MIMEPart
from email.utils import getaddresses
from typing import Any

from pipeline.errors import MailboxError

# Graph accepts at most five custom headers per message, each named x-...; more is a 400
# (InvalidInternetMessageHeaderCollection), so we refuse before sending anything.
MAX_CUSTOM_HEADERS = 5

# The MAPI property set whose named properties Exchange writes out as Internet headers
# (PS_INTERNET_HEADERS). It carries the one header we need that is not an x- header.
PS_INTERNET_HEADERS = "{00020386-0000-0000-C000-000000000046}"
EXTENDED_HEADERS = ("Auto-Submitted",)
# Our Message-ID as a named property (PublicStrings:MutualPlanMessageId, as the exchange backend stamps it):
# it stays with the item into Sent Items whatever Message-ID Exchange gives a reply it builds.
OUR_ID_PROPERTY = "String {00020329-0000-0000-C000-000000000046} Name MutualPlanMessageId"

# Headers Graph sets itself from the message's properties, or that we map to properties.
_MAPPED = {
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
}


@dataclass(frozen=True)
class Attachment:
    """One file of a message: its name, type, bytes, and whether the body shows it inline (cid:)."""

    name: str
    content_type: str
    data: bytes
    content_id: str | None = None

    @property
    def inline(self) -> bool:
        return self.content_id is not None

    def to_json(self) -> dict[str, Any]:
        """The fileAttachment resource (learn.microsoft.com/graph/api/resources/fileattachment)."""
        item: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": self.name,
            "contentType": self.content_type,
            "contentBytes": base64.b64encode(self.data).decode("ascii"),
            "isInline": self.inline,
        }
        if self.content_id:
            item["contentId"] = self.content_id
        return item

    def upload_item(self) -> dict[str, Any]:
        """The attachmentItem of an upload session for this file."""
        item: dict[str, Any] = {
            "attachmentType": "file",
            "name": self.name,
            "size": len(self.data),
            "contentType": self.content_type,
            "isInline": self.inline,
        }
        if self.content_id:
            item["contentId"] = self.content_id
        return item


def recipients(value: str | None) -> list[dict[str, Any]]:
    """An address header as Graph recipients: [{"emailAddress": {"name", "address"}}]."""
    if not value:
        return []
    found = []
    for name, address in getaddresses([str(value)]):
        if not address:
            continue
        email: dict[str, str] = {"address": address}
        if name:
            email["name"] = name
        found.append({"emailAddress": email})
    return found


def custom_headers(message: EmailMessage) -> list[dict[str, str]]:
    """Our x- headers as internetMessageHeaders, at most five, as Graph requires."""
    headers = [
        {"name": name, "value": _one_line(str(value))}
        for name, value in message.items()
        if name.lower().startswith("x-")
    ]
    if len(headers) > MAX_CUSTOM_HEADERS:
        names = ", ".join(h["name"] for h in headers)
        raise MailboxError(
            f"Microsoft Graph takes at most {MAX_CUSTOM_HEADERS} custom x- headers per message; "
            f"this one has {len(headers)} ({names})",
            hint="drop the extra x- headers before sending through the graph backend",
        )
    return headers


def extended_properties(message: EmailMessage) -> list[dict[str, str]]:
    """singleValueExtendedProperties: our Message-ID, and the headers Graph refuses in internetMessageHeaders
    (not x-) as named Internet-header properties, which Exchange writes out as headers."""
    props = []
    mid = message_id(message)
    if mid:
        props.append({"id": OUR_ID_PROPERTY, "value": mid})
    for name in EXTENDED_HEADERS:
        value = message.get(name)
        if value is not None:
            props.append({"id": f"String {PS_INTERNET_HEADERS} Name {name}", "value": _one_line(str(value))})
    return props


def message_id(message: EmailMessage) -> str | None:
    """The Message-ID with its angle brackets, or None."""
    value = message.get("Message-ID")
    if value is None:
        return None
    value = str(value).strip()
    return value if value.startswith("<") else f"<{value}>"


def body(message: EmailMessage) -> dict[str, str]:
    """The itemBody: the HTML part when there is one, else the plain text."""
    part = message.get_body(preferencelist=("html", "plain"))
    if part is None:
        return {"contentType": "Text", "content": ""}
    content = part.get_content()
    kind = "HTML" if part.get_content_type() == "text/html" else "Text"
    return {"contentType": kind, "content": content}


def attachments(message: EmailMessage) -> list[Attachment]:
    """Every file of the message: attachments, and the inline images an HTML body refers to by cid:."""
    chosen = message.get_body(preferencelist=("html", "plain"))
    found: list[Attachment] = []
    for part in message.iter_attachments():
        found.append(_attachment(part, len(found)))
    # iter_attachments() does not descend into the body; pictures beside an HTML body live in its
    # multipart/related.
    for part in message.walk():
        if part.get_content_type() != "multipart/related":
            continue
        for sub in part.iter_parts():
            if sub is chosen or sub.get_content_maintype() == "multipart" or _listed(sub, found):
                continue
            found.append(_attachment(sub, len(found)))
    return found


def message_json(message: EmailMessage) -> dict[str, Any]:
    """The message resource for create message: everything but the files and the threading headers."""
    payload: dict[str, Any] = {
        "subject": str(message.get("Subject", "")),
        "body": body(message),
        "toRecipients": recipients(message.get("To")),
        "ccRecipients": recipients(message.get("Cc")),
        "bccRecipients": recipients(message.get("Bcc")),
    }
    reply_to = recipients(message.get("Reply-To"))
    if reply_to:
        payload["replyTo"] = reply_to
    headers = custom_headers(message)
    if headers:
        payload["internetMessageHeaders"] = headers
    mid = message_id(message)
    if mid:
        payload["internetMessageId"] = mid
    props = extended_properties(message)
    if props:
        payload["singleValueExtendedProperties"] = props
    return payload


def _attachment(part: MIMEPart, index: int) -> Attachment:
    # A leaf part decodes to bytes; a multipart one (never an attachment here) to None.
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    content_id = part.get("Content-ID")
    cid = str(content_id).strip().strip("<>") if content_id else None
    name = part.get_filename() or f"attachment-{index + 1}"
    return Attachment(name=name, content_type=part.get_content_type(), data=data, content_id=cid)


def _listed(part: MIMEPart, found: list[Attachment]) -> bool:
    cid = part.get("Content-ID")
    return cid is not None and any(a.content_id == str(cid).strip().strip("<>") for a in found)


def _one_line(value: str) -> str:
    # Folded header values come back with CRLF + space; Graph wants a single line.
    return " ".join(value.split())
