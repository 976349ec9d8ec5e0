"""The body of a received email as text: the first plain and HTML parts, decoded, unflowed, bounded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from email.utils import collapse_rfc2231_value

from pipeline.replies.bounds import MAX_DEPTH, MAX_HTML_CHARS, MAX_PARTS, MAX_TEXT_CHARS, Notes
from pipeline.replies.charsets import CONTROL, decode_bytes
from pipeline.replies.html import html_to_text, keep_soup, parse_html


def leaf_parts(msg: Message, notes: Notes) -> Iterator[Message]:
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


def best_bodies(parts: list[Message], notes: Notes) -> tuple[str | None, str | None]:
    """The first inline text/plain and text/html parts as text (None when absent); named files are not bodies."""
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


def _part_text(part: Message, notes: Notes, *, html: bool) -> str:
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
    text = decode_bytes(payload, charset, notes)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not html:
        try:
            # An RFC 2231 parameter comes back as a (charset, language, value) tuple.
            fmt = collapse_rfc2231_value(part.get_param("format") or "").lower()
            delsp = collapse_rfc2231_value(part.get_param("delsp") or "").lower() == "yes"
        except Exception:
            fmt, delsp = "", False
        if fmt == "flowed":
            text = _unflow(text, delsp)
        text = CONTROL.sub("", text)
    return text


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


def placeholder(plain: str) -> bool:
    """A plain part that only says to read the HTML one."""
    short = plain.strip().lower()
    return len(short) < 200 and bool(
        re.search(r"(html|view this (?:e-?mail|message)|does not support|not support html)", short)
    )


def html_text(html: str, notes: Notes, *, keep_as: str | None = None) -> str:
    """An HTML body as text; tags stripped when it cannot be read; its soup kept under `keep_as` for extraction."""
    try:
        soup = parse_html(html)
        text = html_to_text(soup)
        if keep_as is not None:
            keep_soup(keep_as, soup)
        return text
    except Exception as exc:
        notes.add(f"HTML unreadable: {type(exc).__name__}")
        return re.sub(r"<[^>]*>", " ", html)[:MAX_TEXT_CHARS]
