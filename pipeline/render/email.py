"""The plan's emails: HTML and plain text from templates/email, the letter and a calendar attached.

One builder per kind; each returns an EmailMessage ready for a Mailbox's send() or save_draft():

    plan_email(plan, version=1, created=v.created, pdf=letter.pdf)                 # version N to the buyer
    update_email(plan, version=2, created=..., pdf=..., diff=d, in_reply_to=...)   # after changes, in thread
    agreed_email(plan, version=2, created=..., pdf=...)                            # everyone confirmed
    seller_notice_email(plan, version=2, created=..., reason=..., reply_from=...)  # to the seller alone

Every message carries a deterministic Message-ID (message_id_for(); `message_id=` overrides it),
`X-Mutual-Plan: <id>; version=<N>` and `X-Auto-Response-Suppress: All`; automatic ones also
`Auto-Submitted: auto-generated`. The same arguments always give the same bytes (MIME boundaries
included), so a retry sends what the first try would.
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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from pipeline.errors import RenderError
from pipeline.plan.diff import PlanDiff
from pipeline.plan.model import Contact, Plan
from pipeline.render.format import (
    change_summary,
    days_phrase,
    days_to_target,
    ensure_version,
    letter_date,
    long_date,
    parse_created,
    short_date,
    timeline_lines,
    timeline_rows,
)
from pipeline.render.ics import calendar
from pipeline.render.templates import default_templates

KINDS = ("plan", "update", "agreed", "seller_notice", "reminder")
# The kind's word in Message-IDs; plan and update both announce a version and share the version's id.
_ID_TAG = {"plan": None, "update": None, "agreed": "agreed", "seller_notice": "notice", "reminder": "reminder"}


def message_id_for(plan: Plan, version: int, kind: str = "plan", key: str | None = None) -> str:
    """Our Message-ID: `<plan.<id>.v<N>@<seller's domain>>` for the email that announces version N (plan or
    update), `<plan.<id>.v<N>.<kind>[.<hash of key>]@domain>` for the others (agreed, notice, ...).
    `key` tells apart several emails of one kind and version (a notice per reply: the reply's Message-ID)."""
    tag = _ID_TAG.get(kind, kind)
    parts = [f"plan.{plan.id}.v{version}"]
    if tag:
        parts.append(tag)
    if key:
        parts.append(hashlib.sha256(key.encode()).hexdigest()[:12])
    return f"<{'.'.join(parts)}@{plan.seller.domain}>"


def subject(plan: Plan, version: int) -> str:
    """`Mutual Plan: <Prospect> and <Seller> (version N)`."""
    return f"Mutual Plan: {plan.prospect.company} and {plan.seller.company} (version {version})"


def attachment_name(plan: Plan, version: int, suffix: str) -> str:
    """`Mutual Plan acme-northwind-2027 v1.pdf`: readable in a mail client, safe on every file system."""
    return f"Mutual Plan {re.sub(r'[^A-Za-z0-9._-]+', '-', plan.id)} v{version}{suffix}"


# --- templates --------------------------------------------------------------------------------

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


def _render(templates: Path | None, kind: str, context: dict[str, Any]) -> tuple[str, str]:
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


# --- people -----------------------------------------------------------------------------------


def _address(name: str, email: str) -> Address:
    try:
        return Address(display_name=name, addr_spec=email)
    except (ValueError, IndexError) as exc:
        raise RenderError(f"{email!r} is not an email address", hint="fix the address in the plan") from exc


def _people(plan: Plan, emails: Sequence[str]) -> list[Address]:
    # Bare addresses get their contact's name, when the plan knows it.
    out = []
    for addr in emails:
        contact = plan.contact(addr)
        name = contact.name if contact else (plan.seller.name if addr.lower() == plan.seller.email.lower() else "")
        out.append(_address(name, addr))
    return out


def _seller(plan: Plan) -> Address:
    if not plan.seller.email:
        raise RenderError(
            f"the plan's seller {plan.seller.company!r} has no email address to send from",
            hint="add seller.email to the plan's front matter or the settings",
        )
    return _address(plan.seller.name, plan.seller.email)


def _recipients(plan: Plan, to: Sequence[str] | None, cc: Sequence[str] | None) -> tuple[list[str], list[str]]:
    # By default the confirming contacts (else the first contact) in To, every other contact in Cc.
    default_to = [c.email for c in plan.confirmers] or [c.email for c in plan.prospect.contacts[:1]]
    to = default_to if to is None else list(to)
    if cc is None:
        cc = [c.email for c in plan.prospect.contacts if c.email.lower() not in {t.lower() for t in to}]
    return list(to), list(cc)


def _first_names(contacts: Sequence[Contact]) -> str:
    names = [c.name.split()[0] for c in contacts if c.name.split()]
    return ", ".join(names)


# --- the message ------------------------------------------------------------------------------


def _context(plan: Plan, version: int, created: datetime, to: Sequence[str] = ()) -> dict[str, Any]:
    today = letter_date(plan, created)
    rows = timeline_rows(plan)
    days = days_to_target(plan, today)
    greeted = [plan.contact(e) for e in to]
    return {
        "plan": plan,
        "seller": plan.seller,
        "prospect": plan.prospect,
        "version": version,
        "today": today,
        "letter_date": long_date(today),
        "target": plan.target,
        "target_text": long_date(plan.target) if plan.target else "",
        "days_left": days,
        "days_phrase": days_phrase(days),
        "rows": rows,
        "before_rows": [r for r in rows if r.phase != "after"],
        "after_rows": [r for r in rows if r.phase == "after"],
        "after_heading": plan.after_heading,
        "lines": timeline_lines(plan, rows),
        "confirmers": list(plan.confirmers),
        "greeting_names": _first_names([c for c in greeted if c]) or f"{plan.prospect.company} team",
        "short_date": short_date,
        "long_date": long_date,
    }


def _zone(plan: Plan) -> ZoneInfo:
    try:
        return ZoneInfo(plan.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _message(
    plan: Plan,
    *,
    kind: str,
    version: int,
    created: datetime,
    subject_line: str,
    text: str,
    html: str,
    to: Sequence[str],
    cc: Sequence[str],
    msg_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
    auto: bool,
    attachments: Sequence[tuple[bytes, str, str, str, dict[str, str]]],
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = _seller(plan)
    if to:
        msg["To"] = _people(plan, to)
    if cc:
        msg["Cc"] = _people(plan, cc)
    return assemble(
        msg, subject_line=subject_line, created=created.astimezone(_zone(plan)), msg_id=msg_id,
        in_reply_to=in_reply_to, references=references, mark=f"{plan.id}; version={version}", auto=auto,
        text=text, html=html, attachments=attachments,
    )


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
    """Finish an email addressed by the caller: date, thread, our marks, both bodies, attachments, fixed bytes."""
    msg["Subject"] = subject_line
    msg["Date"] = format_datetime(created)
    msg["Message-ID"] = msg_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    refs = [r for r in dict.fromkeys([*references, *([in_reply_to] if in_reply_to else [])]) if r]
    if refs:
        msg["References"] = " ".join(refs[-20:])
    # Our own mail: the watcher never takes it for a person's, wherever it lands.
    msg["X-Mutual-Plan"] = mark
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


def _pdf(plan: Plan, version: int, pdf: bytes | None) -> list[tuple[bytes, str, str, str, dict[str, str]]]:
    if pdf is None:
        return []
    if not pdf.startswith(b"%PDF-"):
        raise RenderError("the letter to attach is not a PDF", hint="pass render_letter(...).pdf")
    return [(pdf, "application", "pdf", attachment_name(plan, version, ".pdf"), {})]


def _ics(plan: Plan, version: int, created: datetime) -> list[tuple[bytes, str, str, str, dict[str, str]]]:
    if not any(r.due for r in timeline_rows(plan)):
        return []
    data = calendar(plan, version=version, created=created)
    return [(data, "text", "calendar", attachment_name(plan, version, ".ics"), {"method": "PUBLISH"})]


def _re(reply_subject: str | None) -> str | None:
    """`Re: <subject>` for an answer in a thread (mail clients group a conversation by subject too)."""
    if not reply_subject:
        return None
    bare = re.sub(r"^\s*((re|aw|sv|antw|r|réf|rif)\s*:\s*)+", "", reply_subject, flags=re.IGNORECASE).strip()
    return f"Re: {bare}" if bare else None


def plan_email(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    pdf: bytes | None,
    to: Sequence[str] | None = None,
    cc: Sequence[str] | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    reply_subject: str | None = None,
    auto: bool = False,
    message_id: str | None = None,
    templates: Path | None = None,
) -> EmailMessage:
    """Version N of the plan to the confirming contacts (the others in Cc), with the letter and the .ics.

    `created` is the version's timestamp: the Date header and the calendar's DTSTAMP. `to`/`cc` override
    the recipients (addresses; names come from the plan's contacts). `reply_subject`: the letter answers
    the seller's own email of that subject (a plan written in an email), as "Re: <that subject>".
    """
    version = ensure_version(version)
    created = parse_created(created)
    to, cc = _recipients(plan, to, cc)
    text, html = _render(templates, "plan", _context(plan, version, created, to))
    return _message(
        plan, kind="plan", version=version, created=created,
        subject_line=_re(reply_subject) or subject(plan, version),
        text=text, html=html, to=to, cc=cc,
        msg_id=message_id or message_id_for(plan, version, "plan"), in_reply_to=in_reply_to, references=references,
        auto=auto, attachments=[*_pdf(plan, version, pdf), *_ics(plan, version, created)],
    )  # fmt: skip


def update_email(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    pdf: bytes | None,
    diff: PlanDiff | None,
    in_reply_to: str | None,
    references: Sequence[str] = (),
    reply_subject: str | None = None,
    asks: Sequence[str] = (),
    notes: Sequence[str] = (),
    by_seller: bool = False,
    auto: bool = False,
    to: Sequence[str] | None = None,
    cc: Sequence[str] | None = None,
    message_id: str | None = None,
    templates: Path | None = None,
) -> EmailMessage:
    """Version N+1 after changes, in the thread of the request: a summary of the changes, the new timeline,
    the letter (with its redline) and the .ics.

    `in_reply_to`/`references` place it in the thread. `reply_subject` (the subject of the message answered)
    gives "Re: <that subject>": mail clients group a conversation by subject as well as by headers.
    `asks` are what the seller asks in return (for the seller to keep or delete in a draft); `notes` are
    other sentences for the buyer. `auto` marks it Auto-Submitted (sent without the seller's review).
    `by_seller`: the seller asked for the changes (it says so, instead of thanking the buyer for a reply).
    """
    version = ensure_version(version)
    created = parse_created(created)
    to, cc = _recipients(plan, to, cc)
    context = _context(plan, version, created, to)
    context.update(
        changes=change_summary(plan, diff) if diff is not None else [],
        since=diff.old_version if diff is not None else version - 1,
        asks=list(asks),
        notes=list(notes),
        by_seller=by_seller,
    )
    text, html = _render(templates, "update", context)
    subject_line = subject(plan, version)
    if reply_subject:
        bare = re.sub(r"^\s*((re|aw|sv|antw|r|réf|rif)\s*:\s*)+", "", reply_subject, flags=re.IGNORECASE)
        subject_line = f"Re: {bare.strip()}" if bare.strip() else subject_line
    return _message(
        plan, kind="update", version=version, created=created, subject_line=subject_line,
        text=text, html=html, to=to, cc=cc,
        msg_id=message_id or message_id_for(plan, version, "update"), in_reply_to=in_reply_to, references=references,
        auto=auto, attachments=[*_pdf(plan, version, pdf), *_ics(plan, version, created)],
    )  # fmt: skip


def agreed_email(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    pdf: bytes | None,
    confirmed_by: Sequence[str] | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    auto: bool = True,
    to: Sequence[str] | None = None,
    cc: Sequence[str] | None = None,
    message_id: str | None = None,
    templates: Path | None = None,
) -> EmailMessage:
    """Everyone confirmed version N: a short note to all contacts (the seller in Cc) with the final letter.

    `confirmed_by` names who confirmed (default: the confirming contacts); `created` is when it was agreed.
    """
    version = ensure_version(version)
    created = parse_created(created)
    to = [c.email for c in plan.prospect.contacts] if to is None else list(to)
    cc = ([plan.seller.email] if plan.seller.email else []) if cc is None else list(cc)
    context = _context(plan, version, created, to)
    context["confirmed_by"] = list(confirmed_by) if confirmed_by is not None else [c.name for c in plan.confirmers]
    text, html = _render(templates, "agreed", context)
    return _message(
        plan, kind="agreed", version=version, created=created,
        subject_line=f"Agreed: {subject(plan, version)}",
        text=text, html=html, to=to, cc=cc,
        msg_id=message_id or message_id_for(plan, version, "agreed"), in_reply_to=in_reply_to, references=references,
        auto=auto, attachments=[*_pdf(plan, version, pdf), *_ics(plan, version, created)],
    )  # fmt: skip


def seller_notice_email(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    reason: str,
    reply_from: str,
    reply_subject: str = "",
    reply_date: str | None = None,
    said: str = "",
    notes: Sequence[str] = (),
    intent: str | None = None,
    key: str | None = None,
    tag: str = "notice",
    changed: bool = False,
    auto: bool = True,
    message_id: str | None = None,
    templates: Path | None = None,
) -> EmailMessage:
    """To the seller alone: what a reply said (`said`, from `reply_from`) and why nothing changed (`reason`,
    `notes` such as unresolved sentences). `key` (the reply's Message-ID) makes one notice per reply;
    `tag` is the Message-ID's kind word ("notice", or e.g. "ask" for a suggested ask). `changed`: the reply
    did make `version` (a suggested ask, or sentences left over from a change request), and the notice says so."""
    version = ensure_version(version)
    created = parse_created(created)
    context = _context(plan, version, created)
    context.update(
        reason=reason,
        reply_from=reply_from,
        reply_subject=reply_subject,
        reply_date=reply_date or "",
        said=said.strip(),
        notes=list(notes),
        intent=intent or "",
        changed=changed,
    )
    text, html = _render(templates, "seller_notice", context)
    who = plan.contact(reply_from)
    about = f"{who.name} ({reply_from})" if who else reply_from
    return _message(
        plan, kind="seller_notice", version=version, created=created,
        subject_line=f"[Mutual Plan {plan.id}] {f'Version {version}' if changed else 'Nothing changed'}: {about}",
        text=text, html=html, to=[plan.seller.email] if plan.seller.email else [], cc=[],
        msg_id=message_id or message_id_for(plan, version, tag, key), in_reply_to=None, references=(),
        auto=auto, attachments=[],
    )  # fmt: skip


def reminder_email(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    milestone: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    key: str | None = None,
    message_id: str | None = None,
    templates: Path | None = None,
) -> EmailMessage:
    """A short, polite reminder to the owner of `milestone`: due soon, or overdue, counted from `created` (the
    day it is sent, in the plan's time zone), with how to answer ("done", a new date, "another week").

    It quotes the milestone's timeline line, so that an answer above it or under it is read as about it.
    `key` (milestone, due date, before/overdue) makes one reminder of each; `in_reply_to` puts it in the plan's
    thread. Always Auto-Submitted: nobody wrote it by hand.
    """
    version = ensure_version(version)
    created = parse_created(created)
    context = _context(plan, version, created, to)
    row = next((r for r in context["rows"] if r.id == milestone), None)
    if row is None or row.due is None:
        raise RenderError(f"no milestone {milestone!r} with a due date in version {version} of {plan.id}")
    days = (row.due - context["today"]).days
    context.update(row=row, days=days, due_text=long_date(row.due), due_day=short_date(row.due))
    if to and all(a.lower() == plan.seller.email.lower() for a in to):
        # The seller's own step: the seller is reminded, by first name.
        context["greeting_names"] = (plan.seller.name.split() or [plan.seller.company])[0]
    text, html = _render(templates, "reminder", context)
    when = f"is due {short_date(row.due).rsplit(' ', 1)[0]}" if days >= 0 else "is overdue"
    return _message(
        plan, kind="reminder", version=version, created=created,
        subject_line=f"Reminder: {row.title} {when} - {subject(plan, version)}",
        text=text, html=html, to=to, cc=cc,
        msg_id=message_id or message_id_for(plan, version, "reminder", key), in_reply_to=in_reply_to,
        references=references, auto=True, attachments=[],
    )  # fmt: skip


_HEADERS_POLICY = email.policy.default.clone(max_line_length=998)
_BUILDERS = {"plan": plan_email, "update": update_email, "agreed": agreed_email, "seller_notice": seller_notice_email,
             "reminder": reminder_email}


def build_email(kind: str, plan: Plan, **kwargs: Any) -> EmailMessage:
    """The email of one kind (plan, update, agreed, seller_notice) with that builder's keyword arguments."""
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise RenderError(f"no email of kind {kind!r}", hint=f"kinds: {', '.join(KINDS)}")
    return builder(plan, **kwargs)
