"""An incoming email read into what the pipeline acts on: sender, thread keys, date, best body as text, kind."""

from __future__ import annotations

import email
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import Message
from typing import Any

from pipeline.plan.ids import plan_reference
from pipeline.replies.bodies import best_bodies, html_text, leaf_parts, placeholder
from pipeline.replies.bounds import MAX_DEFECTS, MAX_HEADER_CHARS, MAX_KEYS, MAX_RAW_BYTES, MAX_TEXT_CHARS, Notes
from pipeline.replies.charsets import clean
from pipeline.replies.classify import classify
from pipeline.replies.headers import (
    decoded,
    first_header,
    first_message_id,
    header_items,
    message_ids,
    read_addresses,
    read_date,
    read_sender,
)

KINDS = ("human", "auto-reply", "bounce", "own")

# What the parser or this reader noted that makes the body unreliable: such a message is held, never acted on.
_STRUCTURAL = (
    "NoBoundaryInMultipartDefect", "StartBoundaryNotFoundDefect", "MultipartInvariantViolationDefect",
    "FirstHeaderLineIsContinuationDefect", "MissingHeaderBodySeparatorDefect", "unparseable message",
    "not bytes", "parts nested too deep", "the rest were not read", "body could not be decoded",
    "unreadable; decoded as", "HTML unreadable",
)


@dataclass(frozen=True)
class Incoming:
    """One received email as the pipeline reads it; nothing here is trusted beyond what it says."""

    message_id: str
    sender: str | None  # the From address, lower-case; None when From is missing, malformed or doubled
    sender_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None  # None when missing, unreadable or in the future: use the time received
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str  # the best body as plain text (HTML converted, structure kept)
    html: str | None  # the HTML body, when the text came from it, for extraction
    kind: str
    kind_reason: str
    defects: tuple[str, ...]
    size: int
    # Every header as (name, value), top first, bounded: what Authentication-Results and the like are read from.
    raw_headers: tuple[tuple[str, str], ...] = ()

    @property
    def malformed(self) -> str | None:
        """The defects that make the body unreliable (the structure or the charset could not be read), or None."""
        found = [d for d in self.defects if any(d.startswith(s) or s in d for s in _STRUCTURAL)]
        return "; ".join(found[:3]) if found else None

    @property
    def thread_keys(self) -> tuple[str, ...]:
        """Message-IDs this one answers, nearest first: In-Reply-To, then References from the end."""
        seen: dict[str, None] = {}
        for key in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(key, None)
        return tuple(seen)[:MAX_KEYS]

    def replied_versions(self, domains: Iterable[str]) -> tuple[tuple[str, int], ...]:
        """(plan id, version) of our own messages among the thread keys, nearest first."""
        found: dict[tuple[str, int], None] = {}
        for key in self.thread_keys:
            ref = plan_reference(key, domains)
            if ref:
                found.setdefault(ref, None)
        return tuple(found)

    @classmethod
    def from_bytes(cls, raw: bytes, *, own_domains: Iterable[str] = (), received: datetime | None = None) -> Incoming:
        """Read raw RFC 5322 bytes; never raises: what could not be read is named in `defects`."""
        return _read(raw, own_domains=own_domains, received=received)


# --- reading ----------------------------------------------------------------------------------


def _read(raw: Any, *, own_domains: Iterable[str], received: datetime | None) -> Incoming:
    notes = Notes()
    msg, size, digest = _parse(raw, notes)
    domains = tuple(d.lower().strip() for d in own_domains if d)
    message_id = first_message_id(first_header(msg, "Message-ID")) or f"{digest}@sha256.invalid"
    sender, sender_name = read_sender(msg, notes)
    subject = clean(decoded(first_header(msg, "Subject"), notes))[:MAX_HEADER_CHARS]
    # Some clients fold these over lines or send them as encoded words: the ids are read from the decoded text.
    in_reply_to = message_ids(decoded(first_header(msg, "In-Reply-To")))
    references = message_ids(decoded(first_header(msg, "References")))[-MAX_KEYS:]
    date = read_date(first_header(msg, "Date"), received, notes)

    parts = list(leaf_parts(msg, notes))
    text, html_used = _body(parts, notes)
    own_id = bool(domains and plan_reference(message_id, domains))
    kind, reason = classify(msg, parts, sender, subject, own_id=own_id)
    return Incoming(
        message_id=message_id,
        sender=sender,
        sender_name=sender_name,
        to=read_addresses(msg, "To"),
        cc=read_addresses(msg, "Cc"),
        subject=subject,
        date=date,
        in_reply_to=in_reply_to,
        references=references,
        text=text,
        html=html_used,
        kind=kind,
        kind_reason=reason,
        defects=tuple(notes.items),
        size=size,
        raw_headers=header_items(msg),
    )


def _parse(raw: Any, notes: Notes) -> tuple[Message, int, str]:
    """The parsed message, the size and the SHA-256 of the bytes as received; whatever arrives parses."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        notes.add(f"not bytes but {type(raw).__name__}")
        raw = str(raw).encode("utf-8", "replace") if isinstance(raw, str) else b""
    raw = bytes(raw)
    size = len(raw)
    digest = hashlib.sha256(raw).hexdigest()
    if size > MAX_RAW_BYTES:
        notes.add(f"message of {size} bytes truncated to {MAX_RAW_BYTES}")
        raw = raw[:MAX_RAW_BYTES]
    try:
        msg = email.message_from_bytes(raw, policy=policy.compat32)
    except Exception as exc:  # the parser is forgiving, but nothing may escape
        notes.add(f"unparseable message: {type(exc).__name__}")
        msg = Message()
    for defect in getattr(msg, "defects", ())[:MAX_DEFECTS]:
        notes.add(type(defect).__name__)
    return msg, size, digest


def _body(parts: list[Message], notes: Notes) -> tuple[str, str | None]:
    """The best body as clean text, and the HTML it came from when it came from HTML."""
    plain, html = best_bodies(parts, notes)
    if plain is not None and plain.strip() and not placeholder(plain):
        text, html_used = plain, None
    elif html is not None:
        html_used = clean(html)
        text = html_text(html, notes, keep_as=html_used)
    else:
        text, html_used = plain or "", None
    text = clean(text)
    if len(text) > MAX_TEXT_CHARS:
        notes.add(f"body text truncated to {MAX_TEXT_CHARS} characters")
        text = text[:MAX_TEXT_CHARS]
    return text, html_used
