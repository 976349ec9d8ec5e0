"""Plans the seller writes in an email: recognized in the watched mailbox, stored as version 1, and answered in
that email's thread with the formal letter; a plan that does not parse gets an answer to the seller alone.

The watcher calls `recognize` for a message that answers none of our emails, `accept` inside the transaction that
records the message (loop/thread.py finds the plan of a reply to the seller's own plan email).
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage, Message
from typing import Any

from pipeline.config import Settings
from pipeline.errors import PlanError
from pipeline.loop import outbox, policy, service
from pipeline.loop.thread import answered
from pipeline.plan.ids import bracketed
from pipeline.plan.model import Plan
from pipeline.replies.message import Incoming
from pipeline.replies.plan_email import EmailPlan, Person, email_plan, source_line
from pipeline.replies.plan_markdown import html_to_markdown, text_to_markdown
from pipeline.store import OutboxEntry, Store, utc_iso

# Headers that name the address a copy was delivered to: a Bcc leaves its trace only here.
_DELIVERED_TO = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "x-delivered-to", "x-rcpt-to",
                 "bcc")
_RECEIVED_FOR = re.compile(r"\bfor\s+<?([^\s<>;]+@[^\s<>;]+)>?", re.IGNORECASE)
MAX_PARTS = 100


@dataclass(frozen=True)
class Accepted:
    """How a plan email ended: a disposition and reason for the message's record, and the plan it made."""

    disposition: str
    reason: str
    plan_id: str | None = None
    version: int | None = None


def recognize(incoming: Incoming, settings: Settings, store: Store | None = None) -> str | None:
    """How a message is a plan the seller wrote ("bcc", "subject tag", "category", or "correction": an answer to
    our note that an earlier plan email did not parse), or None when it is not one.

    Only the seller's own mail can be: From is one of the seller's addresses, and the message is human.
    """
    if incoming.kind != "human" or incoming.sender is None or incoming.sender not in settings.seller_addresses:
        return None
    if store is not None and corrected(store, incoming) is not None:
        return "correction"
    rules = settings.inbound
    headers = [(name.lower(), value) for name, value in incoming.raw_headers]
    if rules.addresses:
        named = {a.lower() for a in (*incoming.to, *incoming.cc)}
        delivered = {_bare(v) for n, v in headers if n in _DELIVERED_TO for v in v.split(",")}
        delivered |= {m.group(1).lower().strip(".") for n, v in headers if n == "received"
                      for m in _RECEIVED_FOR.finditer(v)}
        for address in rules.addresses:
            # Written to openly, the address is a recipient like any other; only a Bcc copy is a plan.
            if address not in named and address in delivered:
                return "bcc"
    if rules.subject_tag and rules.subject_tag.lower() in (incoming.subject or "").lower():
        return "subject tag"
    if rules.category:
        wanted = rules.category.strip().lower()
        for name, value in headers:
            if name in ("keywords", "x-categories") and wanted in {k.strip().lower() for k in value.split(",")}:
                return "category"
    return None


def _bare(value: str) -> str:
    found = re.search(r"<([^<>]+)>", value)
    return (found.group(1) if found else value).strip().lower()


def corrected(store: Store, incoming: Incoming) -> OutboxEntry | None:
    """Our note about a plan email that did not parse, when it is what this message answers (nearest first)."""
    entry = answered(store, incoming, within=5)
    return entry if entry is not None and entry.kind == "plan_error" else None


# --- reading the email ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanEmail:
    """What a plan email says: its people and its body as plan source."""

    sender: Person
    to: tuple[Person, ...]
    cc: tuple[Person, ...]
    subject: str
    markdown: str


def read_email(raw: bytes) -> PlanEmail:
    """The people of a plan email's headers (with their names) and its body as plan source: HTML preferred."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    html = text = None
    for part in _parts(msg):
        kind = part.get_content_type()
        if part.get_content_disposition() == "attachment" or kind not in ("text/html", "text/plain"):
            continue
        if kind == "text/html" and html is None:
            html = _content(part)
        elif kind == "text/plain" and text is None:
            text = _content(part)
    markdown = html_to_markdown(html) if html else text_to_markdown(text or "")
    sender = _people(msg, "From")
    return PlanEmail(
        sender=sender[0] if sender else Person("", ""),
        to=tuple(_people(msg, "To")),
        cc=tuple(_people(msg, "Cc")),
        subject=str(msg.get("Subject", "") or ""),
        markdown=markdown,
    )


def _parts(msg: Message) -> Iterator[Message]:
    for count, part in enumerate(msg.walk()):
        if count > MAX_PARTS:
            return
        if not part.is_multipart():
            yield part


def _content(part: Any) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError, ValueError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace")


def _people(msg: EmailMessage, header: str) -> list[Person]:
    out: list[Person] = []
    try:
        for value in msg.get_all(header, [])[:5]:
            for address in list(value.addresses)[:100]:
                if address.username and address.domain:
                    out.append(Person(_name(address.display_name or ""), f"{address.username}@{address.domain}"))
    except Exception:  # a header no parser can read names nobody; the plan then says what is missing
        return out
    return out


def _name(display: str) -> str:
    # Outlook's address book writes "Raman, Priya": the letter greets Priya Raman.
    parts = [p.strip() for p in display.split(",")]
    return f"{parts[1]} {parts[0]}" if len(parts) == 2 and all(parts) else display.strip()


def plan_of(mail: PlanEmail, settings: Settings) -> EmailPlan:
    """The plan a seller's email says, with the settings' seller and letterhead; a PlanError names the line.

    The seller's colleagues in To or Cc (addresses on the seller's own domains) are not the prospect's people."""
    own = set(settings.own_domains)
    theirs = [p for p in (*mail.to, *mail.cc) if p.email.rpartition("@")[2].lower() not in own]
    to = tuple(p for p in mail.to if p in theirs)
    cc = tuple(p for p in mail.cc if p in theirs)
    return email_plan(
        mail.markdown, sender=mail.sender, to=to, cc=cc, seller=settings.seller,
        exclude={*settings.seller_addresses, *settings.inbound.addresses}, timezone=settings.seller_timezone,
        letterhead=settings.letterhead,
    )  # fmt: skip


# --- acting on it ---------------------------------------------------------------------------------


def accept(
    store: Store, settings: Settings, incoming: Incoming, raw: bytes, *, received: datetime, now: datetime, how: str,
    refused: str | None = None,
) -> Accepted:
    """Make version 1 of the plan an email says and queue its letter in the thread, or queue the seller an answer
    saying what failed. Call inside the transaction that records the message: all of it happens once.

    `refused`: why the sender's identity is not proven (authentication configured and failing): no plan is made.
    """
    mail = read_email(raw)
    first = corrected(store, incoming) if how == "correction" else None
    original: Any = incoming
    if first is not None:
        # The seller answered our note with the plan corrected: its people and its thread are the first email's.
        people = first.data.get("people") or {}
        mail = replace(mail, to=tuple(Person(*p) for p in people.get("to", [])),
                       cc=tuple(Person(*p) for p in people.get("cc", [])))
        original = _Original(**first.data["original"])
    if refused is not None:
        _queue_error(store, settings, incoming, mail, reason=refused, line=None, line_text="",
                     hint=f"if you wrote it, `mutualplan release {incoming.message_id}` makes the plan; if you did "
                     "not, someone wrote it in your name: nothing was sent to anyone",
                     now=now)
        return Accepted(policy.HELD, f"a plan email ({how}) whose sender is not proven: {refused}")
    try:
        parsed = plan_of(mail, settings)
    except PlanError as exc:
        source = mail.markdown
        _queue_error(store, settings, incoming, mail, reason=exc.reason, line=exc.line,
                     line_text=source_line(source, exc.line), hint=exc.hint, now=now, first=first)
        where = f"line {exc.line}: " if exc.line else ""
        return Accepted(policy.HELD, f"a plan email ({how}) that does not parse: {where}{exc.reason}")
    plan = _unique(store, parsed.plan)
    version = service.make_version(store, plan, author=incoming.sender or mail.sender.email,
                                   reason=service.Reason.PLAN_EMAIL, message_id=incoming.message_id, created=now)
    store.queue_email(outbox.in_thread(version, original), at=now)
    if first is not None:
        # An answer to the first email (it never made a plan) is now an answer in this plan's thread.
        store.set_disposition(original.message_id, policy.CREATED, at=now, plan_id=plan.id, version=version.number,
                              reason=f"made plan {plan.id} through the correction {incoming.message_id}")
    return Accepted(
        policy.CREATED,
        f"made plan {plan.id} version 1 from the seller's email ({how}); its letter answers in that thread",
        plan.id, version.number,
    )


def _unique(store: Store, plan: Plan) -> Plan:
    # A second plan for the same prospect and year gets its own id; the first is never overwritten.
    if not store.has_plan(plan.id):
        return plan
    for n in range(2, 100):
        candidate = f"{plan.id}-{n}"
        if not store.has_plan(candidate):
            return replace(plan, id=candidate)
    raise PlanError(f"there are 99 plans with ids like {plan.id!r} already", hint="give this one `Id: ...`")


@dataclass(frozen=True)
class _Original:
    """The seller's first plan email, as the letter's thread needs it (what OutboxEntry reads of a reply)."""

    message_id: str
    sender: str | None
    subject: str
    references: tuple[str, ...] = ()
    date: datetime | None = None
    sender_name: str = ""


def _queue_error(store: Store, settings: Settings, incoming: Incoming, mail: PlanEmail, *, reason: str,
                 line: int | None, line_text: str, hint: str | None, now: datetime,
                 first: OutboxEntry | None = None) -> None:
    own = {*settings.seller_addresses, *settings.inbound.addresses}
    to = [[p.name, p.email] for p in mail.to if p.email.lower() not in own]
    cc = [[p.name, p.email] for p in mail.cc if p.email.lower() not in own]
    recipients = [name or address for name, address in (*to, *cc)]
    refs = [bracketed(r) for r in incoming.references[-19:]]
    original = first.data["original"] if first is not None else {
        "message_id": incoming.message_id, "sender": incoming.sender, "subject": (incoming.subject or "")[:300],
        "references": list(incoming.references[-19:]),
    }
    data = {
        "to": incoming.sender or mail.sender.email,
        "subject": (incoming.subject or "")[:300],
        "sent": incoming.date.strftime("%a %-d %b %Y %H:%M") if incoming.date else None,
        "reason": reason, "line": line, "line_text": line_text[:400], "hint": hint,
        "recipients": recipients[:20],
        # Kept so that an answer with the plan corrected reaches the same people, in the first email's thread.
        "people": {"to": to[:50], "cc": cc[:50]}, "original": original,
        "in_reply_to": bracketed(incoming.message_id),
        "references": [*refs, bracketed(incoming.message_id)],
        "created": utc_iso(now),
    }  # fmt: skip
    domain = settings.own_domains[0] if settings.own_domains else None
    store.queue_email(outbox.to_seller("plan_error", incoming.message_id, data, domain=domain), at=now)
