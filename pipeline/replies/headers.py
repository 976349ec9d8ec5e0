"""The headers of a received email read strictly: one well-formed From, Message-IDs, addresses, a sane Date."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from pipeline.replies.bounds import MAX_HEADER_CHARS, MAX_RAW_HEADER_CHARS, MAX_RAW_HEADERS, Notes
from pipeline.replies.charsets import CONTROL, clean, decode_bytes

# A Date this far after the time received is a wrong clock; the caller uses the time received instead.
FUTURE_SLACK = timedelta(days=1)

_MSGID = re.compile(r"<([^<>\s]{1,250})>")
_BARE_ID = re.compile(r"^[^<>\s@]{1,200}@[^<>\s@]{1,200}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)*[^\W_](?:[\w-]{0,61}[^\W_])?$")
_SURROGATE = re.compile("[\udc80-\udcff]")
_LOCAL = re.compile(r"^[^\s@<>(),;:\\\"\[\]]{1,64}$")


def header_items(msg: Message) -> tuple[tuple[str, str], ...]:
    """Every header as (name, value), top first, bounded in number and length; () when unreadable."""
    try:
        items = msg.raw_items()
        out: list[tuple[str, str]] = []
        for name, value in items:
            if len(out) >= MAX_RAW_HEADERS:
                break
            out.append((CONTROL.sub("", str(name))[:200], _unfold(_raw_text(value)[:MAX_RAW_HEADER_CHARS])))
        return tuple(out)
    except Exception:
        return ()


def first_header(msg: Message, name: str) -> str:
    """The first value of a header, without control characters, bounded; "" when absent."""
    values = all_headers(msg, name)
    return CONTROL.sub("", values[0])[: MAX_HEADER_CHARS * 20] if values else ""


def all_headers(msg: Message, name: str) -> list[str]:
    """Every value of a header as stored (raw_items: 8-bit bytes kept as surrogate escapes, not mangled)."""
    wanted = name.lower()
    try:
        return [_raw_text(v) for k, v in msg.raw_items() if k.lower() == wanted]
    except Exception:
        return []


def _raw_text(value: object) -> str:
    """A header as text; raw 8-bit bytes (UTF-8 per RFC 6532, or a legacy charset) arrive as surrogate escapes."""
    text = str(value)
    if _SURROGATE.search(text):
        try:
            text = decode_bytes(text.encode("utf-8", "surrogateescape"), "utf-8")
        except UnicodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def decoded(value: str, notes: Notes | None = None) -> str:
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
            out.append(decode_bytes(chunk, charset, notes))
        else:
            out.append(chunk)
    # decode_header drops the spaces between encoded and plain words only where RFC 2047 says so.
    return _unfold("".join(out))


def _unfold(value: str) -> str:
    return CONTROL.sub("", re.sub(r"\s*[\r\n]+\s*", " ", value)).strip()


def message_ids(value: str) -> tuple[str, ...]:
    """The Message-IDs in a header, in order, once each; a bare id without <> counts when it is alone."""
    found = _MSGID.findall(value)
    if not found:
        bare = value.strip()
        found = [bare] if _BARE_ID.match(bare) else []
    seen: dict[str, None] = {}
    for item in found:
        seen.setdefault(item, None)
    return tuple(seen)


def first_message_id(value: str) -> str | None:
    """The first Message-ID in a header, if any."""
    ids = message_ids(value)
    return ids[0] if ids else None


def read_sender(msg: Message, notes: Notes) -> tuple[str | None, str]:
    """The From address under strict rules: exactly one header with exactly one well-formed address."""
    values = all_headers(msg, "From")
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
    return f"{local}@{domain}".lower(), clean(address.display_name or "")[:200]


def read_addresses(msg: Message, name: str) -> tuple[str, ...]:
    """The addresses of a header (To, Cc), lower-case, once each, bounded."""
    out: list[str] = []
    try:
        # Not read strictly as From is: these only say who else was addressed, and the full parser is slow.
        pairs = getaddresses([_unfold(v) for v in all_headers(msg, name)[:5]])
    except Exception:
        return ()
    for _, address in pairs[:100]:
        local, at, domain = address.rpartition("@")
        if at and local and domain and _LOCAL.match(local) and _DOMAIN.match(domain):
            out.append(address.lower())
    return tuple(dict.fromkeys(out))


def read_date(value: str, received: datetime | None, notes: Notes) -> datetime | None:
    """The Date header as an aware datetime; None when missing, unreadable or after the time received."""
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
