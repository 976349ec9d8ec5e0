"""What every email we write shares: its two bodies from templates/email, its addresses, and the MIME assembly.

The same arguments always give the same bytes (MIME boundaries included), so a retry sends what the first try
would.
"""

from __future__ import annotations

import email.policy
import hashlib
import re
import threading
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import jinja2

from pipeline.errors import RenderError
from pipeline.render.templates import default_templates

_HEADERS_POLICY = email.policy.default.clone(max_line_length=998)

# Every character str.splitlines() breaks at (the stdlib refuses such a header value, and a reader may split it),
# with the other C0/C1 controls: a space each. The bidi overrides, which would reorder what a client shows: none.
_NOT_IN_HEADERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")

_envs: dict[Path, jinja2.Environment] = {}
_lock = threading.Lock()


def _env(templates: Path | None) -> jinja2.Environment:
    folder = ((templates or default_templates()) / "email").resolve()
    with _lock:
        env = _envs.get(folder)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(folder),
                # HTML templates escape; the plain-text ones must not turn "&" into "&amp;".
                autoescape=jinja2.select_autoescape(["html.j2"], default_for_string=False, default=False),
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=True,
                auto_reload=False,
            )
            _envs[folder] = env
        return env


def render_bodies(templates: Path | None, kind: str, context: dict[str, Any]) -> tuple[str, str]:
    """The plain-text and HTML bodies of an email of `kind` from its two templates; a RenderError says which failed."""
    env = _env(templates)
    try:
        text = env.get_template(f"{kind}.txt.j2").render(context)
        html = env.get_template(f"{kind}.html.j2").render(context)
    except jinja2.TemplateNotFound as exc:
        hint = "templates/email/ holds a .txt.j2 and a .html.j2 per kind"
        raise RenderError(f"email template {exc.name} is missing", hint=hint) from None
    except Exception as exc:  # templates are edited by people: say which one failed
        raise RenderError(f"email template for {kind!r} failed: {type(exc).__name__}: {exc}") from exc
    return _tidy(text), html


def _tidy(text: str) -> str:
    # No trailing spaces (they turn into =20 in quoted-printable) and one blank line at most.
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def header_text(value: str) -> str:
    """A header value on one line: every line break and control character a space, the spaces collapsed."""
    return " ".join(_NOT_IN_HEADERS.sub(" ", _BIDI.sub("", value)).split())


def email_address(name: str, email: str) -> Address:
    """A header address (its name on one line); a RenderError when `email` is not one."""
    try:
        return Address(display_name=header_text(name), addr_spec=header_text(email))
    except (ValueError, IndexError) as exc:
        raise RenderError(f"{email!r} is not an email address", hint="fix the address in the plan") from exc


def assemble(
    msg: EmailMessage,
    *,
    subject_line: str,
    created: datetime,
    msg_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
    mark: str,
    auto: bool,
    text: str,
    html: str,
    attachments: Sequence[tuple[bytes, str, str, str, dict[str, str]]] = (),
) -> EmailMessage:
    """Finish an email addressed by the caller: date, thread, our marks, both bodies, attachments, fixed bytes.

    Every text value passes through `header_text` here (addresses through `email_address`): a line break in a
    subject or a mark would make an email that can never be built, and block every email queued after it."""
    msg["Subject"] = header_text(subject_line)
    msg["Date"] = format_datetime(created)
    msg["Message-ID"] = header_text(msg_id)
    in_reply_to = header_text(in_reply_to or "")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    refs = [r for r in dict.fromkeys([*map(header_text, references), in_reply_to]) if r]
    if refs:
        msg["References"] = " ".join(refs[-20:])
    # Our own mail: the watcher never takes it for a person's, wherever it lands.
    msg["X-Mutual-Plan"] = header_text(mark)
    msg["X-Auto-Response-Suppress"] = "All"
    if auto:
        msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    for data, maintype, subtype, filename, params in attachments:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename, params=params)
    for part in msg.iter_parts():
        # The stdlib stamps MIME-Version on parts it makes; it belongs on the message alone.
        for sub in part.walk():
            del sub["MIME-Version"]
    _fix_boundaries(msg, msg_id)
    # The bodies are encoded already (76-character lines); from here the policy only folds headers, and a
    # Message-ID folded onto a second line trips naive parsers: fold nothing shorter than RFC 5322's 998.
    msg.policy = _HEADERS_POLICY
    return msg


def _fix_boundaries(msg: EmailMessage, seed: str) -> None:
    # "=_" can appear in neither base64 nor quoted-printable bodies, so these never collide with content.
    for n, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_mp_{hashlib.sha256(f'{seed}/{n}'.encode()).hexdigest()[:24]}")

