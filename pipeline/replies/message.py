"""An incoming email read into what the pipeline acts on: sender, thread keys, date, best body as text, kind."""

from __future__ import annotations

import codecs
import email
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.header import decode_header
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from pipeline.replies.html import html_to_text

KINDS = ("human", "auto-reply", "bounce", "own")

# Bounds: whatever arrives, reading it costs at most this much.
MAX_RAW_BYTES = 25 * 1024 * 1024
MAX_TEXT_CHARS = 200_000
MAX_HTML_CHARS = 1_000_000
MAX_PARTS = 200
MAX_DEPTH = 20
MAX_KEYS = 50
MAX_HEADER_CHARS = 1_000
MAX_DEFECTS = 20
MAX_RAW_HEADERS = 200
MAX_RAW_HEADER_CHARS = 4_000

# A Date this far after the time received is a wrong clock; the caller uses the time received instead.
FUTURE_SLACK = timedelta(days=1)

# Our own Message-IDs: plan.<plan id>.v<version>[.<kind>]@<seller domain>.
_OWN_ID = re.compile(r"^plan\.(?P<plan>[^@]+?)\.v(?P<version>\d{1,6})(?:\.[^@]*)?@(?P<domain>[^@]+)$", re.IGNORECASE)
_MSGID = re.compile(r"<([^<>\s]{1,250})>")
_BARE_ID = re.compile(r"^[^<>\s@]{1,200}@[^<>\s@]{1,200}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)*[^\W_](?:[\w-]{0,61}[^\W_])?$")
_LOCAL = re.compile(r"^[^\s@<>(),;:\\\"\[\]]{1,64}$")

_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response|antwort)|autoreply|out of (?:the )?office"
    r"|abwesenheitsnotiz|abwesend|automatische antwort|r[ée]ponse automatique|absence du bureau"
    r"|respuesta autom[áa]tica|fuera de la oficina|risposta automatica|automatisch antwoord"
    r"|afwezigheidsbericht|resposta autom[áa]tica|ausente)\b",
    re.IGNORECASE,
)
_AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
_BOUNCE_SENDER = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undeliverable|undelivered mail|delivery status notification|mail delivery (?:failed|failure)"
    r"|returned mail|delivery (?:has )?failed|failure notice|unzustellbar|non remis|no se puede entregar)",
    re.IGNORECASE,
)

# Declared charsets that Python does not know, or knows under a narrower name than mail clients mean.
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    # Windows-1252 is what senders mean by Latin-1 nearly always (curly quotes live in 0x80-0x9f).
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
}
_UNKNOWN_CHARSETS = {"unknown-8bit", "x-unknown", "default", "unknown", "x-user-defined", "charset"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Bidi embeddings, overrides and isolates reorder what a reader sees ("Trojan Source"); the marks (LRM, RLM) only
# nudge neutral characters and stay. C1 controls are invisible too (bytes a legacy charset left undecoded).
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u0080-\u009f]")
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


def plan_reference(message_id: str, domains: Iterable[str]) -> tuple[str, int] | None:
    """The (plan id, version) named by one of our Message-IDs on one of the seller's domains, else None."""
    m = _OWN_ID.match(message_id.strip().strip("<>"))
    if not m:
        return None
    wanted = {d.lower().strip() for d in domains if d}
    if m.group("domain").lower() not in wanted:
        return None
    return m.group("plan"), int(m.group("version"))


# --- reading ----------------------------------------------------------------------------------


class _Notes:
    """Defects collected while reading, bounded."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        if len(self.items) < MAX_DEFECTS and text not in self.items:
            self.items.append(text[:200])


def _read(raw: Any, *, own_domains: Iterable[str], received: datetime | None) -> Incoming:
    notes = _Notes()
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

    domains = tuple(d.lower().strip() for d in own_domains if d)
    message_id = _first_id(_header(msg, "Message-ID")) or f"{digest}@sha256.invalid"
    sender, sender_name = _sender(msg, notes)
    subject = _clean(_decoded(_header(msg, "Subject"), notes))[:MAX_HEADER_CHARS]
    in_reply_to = _ids(_header(msg, "In-Reply-To"))
    references = _ids(_header(msg, "References"))[-MAX_KEYS:]
    date = _date(_header(msg, "Date"), received, notes)

    parts = list(_leaf_parts(msg, notes))
    plain, html = _best_bodies(parts, notes)
    if plain is not None and plain.strip() and not _placeholder(plain):
        text, html_used = plain, None
    elif html is not None:
        text, html_used = _html_text(html, notes), _clean(html)
    else:
        text, html_used = plain or "", None
    text = _clean(text)
    if len(text) > MAX_TEXT_CHARS:
        notes.add(f"body text truncated to {MAX_TEXT_CHARS} characters")
        text = text[:MAX_TEXT_CHARS]

    kind, reason = _kind(msg, parts, sender, subject, message_id, domains)
    return Incoming(
        message_id=message_id,
        sender=sender,
        sender_name=sender_name,
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
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
        raw_headers=_raw_headers(msg),
    )


def _clean(text: str) -> str:
    """Text without control characters (but newlines and tabs) and bidi overrides, before anyone shows it."""
    return _BIDI.sub("", _CONTROL.sub("", text))


def _raw_headers(msg: Message) -> tuple[tuple[str, str], ...]:
    try:
        items = msg.raw_items()
        out = []
        for name, value in items:
            if len(out) >= MAX_RAW_HEADERS:
                break
            out.append((_CONTROL.sub("", str(name))[:200], _unfold(_raw_text(value)[:MAX_RAW_HEADER_CHARS])))
        return tuple(out)
    except Exception:
        return ()


def _header(msg: Message, name: str) -> str:
    values = _all_headers(msg, name)
    return _CONTROL.sub("", values[0])[: MAX_HEADER_CHARS * 20] if values else ""


def _all_headers(msg: Message, name: str) -> list[str]:
    """Every value of a header as stored (raw_items: 8-bit bytes kept as surrogate escapes, not mangled)."""
    wanted = name.lower()
    try:
        return [_raw_text(v) for k, v in msg.raw_items() if k.lower() == wanted]
    except Exception:
        return []


def _raw_text(value: object) -> str:
    """A header as text; raw 8-bit bytes (UTF-8 per RFC 6532, or a legacy charset) arrive as surrogate escapes."""
    text = str(value)
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        try:
            text = _decode_bytes(text.encode("utf-8", "surrogateescape"), "utf-8")
        except UnicodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _decoded(value: str, notes: _Notes | None = None) -> str:
    """A header with RFC 2047 encoded words decoded, unknown charsets read with fallbacks."""
    if not value:
        return ""
    try:
        chunks = decode_header(value)
    except Exception:
        return _unfold(value)
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            out.append(_decode_bytes(chunk, charset, notes))
        else:
            out.append(chunk)
    # decode_header drops the spaces between encoded and plain words only where RFC 2047 says so.
    return _unfold("".join(out))


def _unfold(value: str) -> str:
    return _CONTROL.sub("", re.sub(r"\s*[\r\n]+\s*", " ", value)).strip()


def _ids(value: str) -> tuple[str, ...]:
    found = _MSGID.findall(value)
    if not found:
        bare = value.strip()
        found = [bare] if _BARE_ID.match(bare) else []
    seen: dict[str, None] = {}
    for item in found:
        seen.setdefault(item, None)
    return tuple(seen)


def _first_id(value: str) -> str | None:
    ids = _ids(value)
    return ids[0] if ids else None


def _sender(msg: Message, notes: _Notes) -> tuple[str | None, str]:
    """The From address under strict rules: exactly one header with exactly one well-formed address."""
    values = _all_headers(msg, "From")
    if not values:
        notes.add("no From header")
        return None, ""
    if len(values) > 1:
        notes.add("more than one From header")
        return None, ""
    value = _unfold(values[0])
    try:
        header = policy.default.header_factory("From", value)
        addresses = list(header.addresses)
        invalid = [d for d in header.defects if not type(d).__name__.startswith("Obsolete")]
        groups = list(header.groups)
    except Exception as exc:
        notes.add(f"From unreadable: {type(exc).__name__}")
        return None, ""
    if invalid:
        notes.add(f"From malformed: {invalid[0]}")
        return None, ""
    if len(addresses) != 1 or any(g.display_name for g in groups):
        notes.add(f"From names {len(addresses)} addresses")
        return None, ""
    address = addresses[0]
    local, domain = address.username or "", address.domain or ""
    if not _LOCAL.match(local) or not _DOMAIN.match(domain):
        notes.add("From address is not well formed")
        return None, ""
    return f"{local}@{domain}".lower(), _clean(address.display_name or "")[:200]


def _addresses(msg: Message, name: str) -> tuple[str, ...]:
    out: list[str] = []
    for value in _all_headers(msg, name)[:5]:
        try:
            header = policy.default.header_factory(name, _unfold(value))
            for address in list(header.addresses)[:100]:
                if address.username and address.domain:
                    out.append(f"{address.username}@{address.domain}".lower())
        except Exception:
            continue
    return tuple(dict.fromkeys(out))


def _date(value: str, received: datetime | None, notes: _Notes) -> datetime | None:
    if not value.strip():
        return None
    try:
        when = parsedate_to_datetime(_unfold(value))
    except Exception:
        notes.add("Date unreadable")
        return None
    if when is None:
        notes.add("Date unreadable")
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if received is not None:
        now = received if received.tzinfo else received.replace(tzinfo=UTC)
        try:
            if when > now + FUTURE_SLACK:
                notes.add("Date is in the future")
                return None
        except (OverflowError, ValueError):
            return None
    return when


# --- bodies -----------------------------------------------------------------------------------


def _leaf_parts(msg: Message, notes: _Notes) -> Iterator[Message]:
    """Leaf parts in order, depth-first, bounded; attached messages are not descended into."""
    stack: list[tuple[Message, int]] = [(msg, 0)]
    count = 0
    while stack:
        part, depth = stack.pop()
        count += 1
        if count > MAX_PARTS:
            notes.add(f"more than {MAX_PARTS} parts; the rest were not read")
            return
        try:
            multipart = part.is_multipart()
            ctype = part.get_content_type()
        except Exception:
            continue
        if multipart and ctype.startswith("multipart/"):
            if depth >= MAX_DEPTH:
                notes.add("parts nested too deep")
                continue
            try:
                children = part.get_payload()
            except Exception:
                continue
            if isinstance(children, list):
                stack.extend((c, depth + 1) for c in reversed(children) if isinstance(c, Message))
            continue
        yield part


def _best_bodies(parts: list[Message], notes: _Notes) -> tuple[str | None, str | None]:
    plain: str | None = None
    html: str | None = None
    for part in parts:
        try:
            ctype = part.get_content_type()
            disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        except Exception:
            continue
        if disposition == "attachment" or ctype not in ("text/plain", "text/html"):
            continue
        if _named(part):
            continue  # a file (notes.html, readme.txt) is evidence kept with the message, not what it says
        if ctype == "text/plain" and plain is None:
            plain = _part_text(part, notes, html=False)
        elif ctype == "text/html" and html is None:
            html = _part_text(part, notes, html=True)
    return plain, html


def _named(part: Message) -> bool:
    try:
        return bool(part.get_filename())
    except Exception:
        return True


def _part_text(part: Message, notes: _Notes, *, html: bool) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        notes.add("body could not be decoded")
        payload = None
    if payload is None:
        try:
            text = part.get_payload()
            payload = text.encode("utf-8", "replace") if isinstance(text, str) else b""
        except Exception:
            payload = b""
    if not isinstance(payload, bytes):
        payload = b""
    limit = MAX_HTML_CHARS * 4 if html else MAX_TEXT_CHARS * 4
    payload = payload[:limit]
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    if html and not charset:
        meta = re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", payload[:4096], re.IGNORECASE)
        charset = meta.group(1).decode("ascii", "replace") if meta else None
    text = _decode_bytes(payload, charset, notes)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not html:
        try:
            fmt = (part.get_param("format") or "").lower()
            delsp = (part.get_param("delsp") or "").lower() == "yes"
        except Exception:
            fmt, delsp = "", False
        if fmt == "flowed":
            text = _unflow(text, delsp)
        text = _CONTROL.sub("", text)
    return text


def _decode_bytes(data: bytes, charset: str | None, notes: _Notes | None = None) -> str:
    """Bytes as text: the declared charset if Python knows it, then UTF-8, then Windows-1252; never fails."""
    tried: list[str] = []
    name = (charset or "").strip().strip("\"'").lower()
    if name and name not in _UNKNOWN_CHARSETS:
        tried.append(_CHARSET_ALIASES.get(name, name))
    tried += ["utf-8", "cp1252"]
    for candidate in tried:
        try:
            info = codecs.lookup(candidate)
            if not getattr(info, "_is_text_encoding", True):
                continue
            return data.decode(info.name)
        except (LookupError, UnicodeDecodeError, ValueError, TypeError):
            continue
        except Exception:
            continue
    if notes is not None and name:
        notes.add(f"charset {name[:40]!r} unreadable; decoded as Latin-1")
    return data.decode("latin-1")


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next line of the same depth."""
    out: list[str] = []
    buffer: str | None = None
    buffer_depth = 0
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        if body.startswith(" "):
            body = body[1:]  # space-stuffing
        if buffer is not None and depth != buffer_depth:
            out.append(_flowed_line(buffer, buffer_depth))
            buffer = None
        buffer = body if buffer is None else buffer + body
        buffer_depth = depth
        if body.endswith(" ") and body.rstrip() != "--":
            if delsp:
                buffer = buffer[:-1]
        else:
            out.append(_flowed_line(buffer, buffer_depth))
            buffer = None
    if buffer is not None:
        out.append(_flowed_line(buffer, buffer_depth))
    return "\n".join(out)


def _flowed_line(body: str, depth: int) -> str:
    return (">" * depth + " " + body) if depth else body


def _placeholder(plain: str) -> bool:
    """A plain part that only says to read the HTML one."""
    short = plain.strip().lower()
    return len(short) < 200 and bool(
        re.search(r"(html|view this (?:e-?mail|message)|does not support|not support html)", short)
    )


def _html_text(html: str, notes: _Notes) -> str:
    try:
        return html_to_text(html)
    except Exception as exc:
        notes.add(f"HTML unreadable: {type(exc).__name__}")
        return re.sub(r"<[^>]*>", " ", html)[:MAX_TEXT_CHARS]


# --- kind -------------------------------------------------------------------------------------


def _kind(
    msg: Message, parts: list[Message], sender: str | None, subject: str, message_id: str, domains: tuple[str, ...]
) -> tuple[str, str]:
    """human, auto-reply, bounce or own, with the reason; our own mail first, then bounces, then robots."""
    if _header(msg, "X-Mutual-Plan"):
        return "own", "X-Mutual-Plan header"
    if domains and plan_reference(message_id, domains):
        return "own", "our Message-ID"

    try:
        ctype = msg.get_content_type()
        report = (msg.get_param("report-type") or "").lower() if ctype == "multipart/report" else ""
    except Exception:
        ctype, report = "", ""
    if report == "delivery-status":
        return "bounce", "multipart/report; report-type=delivery-status"
    if report == "disposition-notification":
        return "auto-reply", "read receipt"
    for part in parts:
        try:
            if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
                return "bounce", part.get_content_type()
        except Exception:
            continue
    if _header(msg, "X-Failed-Recipients"):
        return "bounce", "X-Failed-Recipients header"
    raw_from = _decoded(_header(msg, "From")).lower()
    if (sender and _BOUNCE_SENDER.match(sender)) or re.search(r"\b(mailer-daemon|postmaster)@", raw_from):
        return "bounce", "sent by a mailer daemon"
    if _BOUNCE_SUBJECT.match(subject) and _header(msg, "Return-Path").strip() in ("<>", ""):
        return "bounce", "delivery failure subject"

    auto = _header(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return "auto-reply", f"Auto-Submitted: {auto[:40]}"
    precedence = _header(msg, "Precedence").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return "auto-reply", f"Precedence: {precedence}"
    if _header(msg, "X-MS-Exchange-Inbox-Rules-Loop"):
        return "auto-reply", "X-MS-Exchange-Inbox-Rules-Loop header"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autoresponder"):
        value = _header(msg, name).strip().lower()
        if value and value not in ("no", "false", "0"):
            return "auto-reply", f"{name} header"
    # Only at the start: a person answering an automatic reply writes "RE: Automatic reply: ...".
    if _AUTO_SUBJECT.match(subject):
        return "auto-reply", "automatic reply subject"
    return "human", ""
