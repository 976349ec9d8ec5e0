"""An archived email as a page a person reads: its headers, its text, and its attachments listed (never run)."""

from __future__ import annotations

import email
import email.policy
import hashlib
from email.message import EmailMessage
from typing import Any

from bs4 import BeautifulSoup

from pipeline.archive.pages import render_page

TEXT_LIMIT = 200_000  # characters of body shown; the .eml beside the page holds every byte
HEADERS = ("From", "To", "Cc", "Date", "Subject", "Message-ID", "In-Reply-To")


def read_email(raw: bytes) -> dict[str, Any]:
    """The headers, plain text and attachments of an email, as text; a message that does not parse shows raw."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        headers = [(name, _header(msg, name)) for name in HEADERS if msg.get(name) is not None]
        return {"headers": headers, "text": _text(msg)[:TEXT_LIMIT], "attachments": _attachments(msg),
                "subject": _header(msg, "Subject")}
    except Exception:  # a broken or hostile message (the parser raises many kinds): show its bytes as text
        return {"headers": [], "text": raw.decode("utf-8", "replace")[:TEXT_LIMIT], "attachments": [],
                "subject": "(an email that could not be read)"}


def _header(msg: EmailMessage, name: str) -> str:
    try:
        return str(msg.get(name, ""))
    except Exception:  # an undecodable header: its raw form, still as text
        return str(msg.get_all(name, [""])[0])


def _text(msg: EmailMessage) -> str:
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    content = body.get_content()
    if not isinstance(content, str):
        return ""
    if body.get_content_subtype() == "html":
        # Only the words: the page shows an email, it does not open it.
        return BeautifulSoup(content, "html.parser").get_text("\n")
    return content


def _attachments(msg: EmailMessage) -> list[dict[str, Any]]:
    found = []
    for part in msg.iter_attachments():
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        found.append({"name": part.get_filename() or "(no name)", "type": part.get_content_type(),
                      "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    return found


def email_page(shown: dict[str, Any], *, eml_name: str, direction: str) -> bytes:
    """The page of one email read by read_email (beside its .eml in emails/), linking to the index and the .eml."""
    return render_page("email.html.j2", eml=eml_name, direction=direction, **shown).encode("utf-8")
