"""A delivery status report (RFC 3464) read into who did not get which message, and why."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from email.message import Message

MAX_RECIPIENTS = 50
MAX_PARTS = 50
MAX_TEXT = 300

_ID = re.compile(r"<([^<>\s]{1,250})>")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_ID_LINE = re.compile(rb"^Message-ID:\s*(<[^<>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class DeliveryFailure:
    """What a bounce says: the recipients that failed, the status and the server's words, the message it returns."""

    recipients: tuple[str, ...]
    status: str
    diagnostic: str
    original_id: str | None  # the Message-ID of the message that was not delivered, without <>

    def describe(self) -> str:
        """One line for the record: who, which status, what the server said."""
        who = ", ".join(self.recipients) or "a recipient"
        status = f" ({self.status})" if self.status else ""
        said = f": {self.diagnostic}" if self.diagnostic else ""
        return f"delivery to {who} failed{status}{said}"


def _text(value: object) -> str:
    return re.sub(r"\s+", " ", str(value or "")).strip()[:MAX_TEXT]


def _address(value: str) -> str:
    # "rfc822; someone@buyer.example" -> the address
    return value.partition(";")[2].strip().strip("<>").lower() if ";" in value else value.strip().strip("<>").lower()


def delivery_failure(raw: bytes) -> DeliveryFailure:
    """Read a bounce; never raises (what cannot be read stays empty)."""
    try:
        msg = email.message_from_bytes(raw[: 2 * 1024 * 1024], policy=policy.compat32)
    except Exception:
        return DeliveryFailure((), "", "", None)
    recipients: list[str] = []
    status = diagnostic = ""
    original: str | None = None
    try:
        parts = list(msg.walk())[:MAX_PARTS]
    except Exception:
        parts = []
    for part in parts:
        try:
            ctype = part.get_content_type()
        except Exception:
            continue
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            payload = part.get_payload()
            blocks = payload if isinstance(payload, list) else []
            for block in blocks[1 : MAX_RECIPIENTS + 1]:  # the first block is about the message, then one per recipient
                if not isinstance(block, Message):
                    continue
                action = _text(block.get("Action")).lower()
                if action and action not in ("failed", "delayed"):
                    continue
                who = _address(_text(block.get("Final-Recipient") or block.get("Original-Recipient")))
                if who and who not in recipients:
                    recipients.append(who)
                status = status or _text(block.get("Status"))
                diagnostic = diagnostic or _text(block.get("Diagnostic-Code")).partition(";")[2].strip()
        elif ctype in ("message/rfc822", "message/global") and original is None:
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found = _ID.search(str(inner.get("Message-ID") or ""))
                original = found.group(1) if found else None
        elif ctype in ("text/rfc822-headers", "text/global-headers") and original is None:
            data = part.get_payload(decode=True) or b""
            line = _ID_LINE.search(data if isinstance(data, bytes) else b"")
            original = line.group(1).decode("ascii", "replace").strip("<>") if line else None
    if not recipients:
        for value in msg.get_all("X-Failed-Recipients") or []:
            for item in str(value).split(","):
                if item.strip() and len(recipients) < MAX_RECIPIENTS:
                    recipients.append(item.strip().strip("<>").lower())
    if original is None:
        # A plain-text bounce quotes the returned headers in its body.
        line = _ID_LINE.search(raw[: 2 * 1024 * 1024].split(b"\n\n", 1)[-1])
        original = line.group(1).decode("ascii", "replace").strip("<>") if line else None
    if not status:
        found = _STATUS.search(diagnostic)
        status = found.group(1) if found else ""
    return DeliveryFailure(tuple(recipients), status, diagnostic, original)
