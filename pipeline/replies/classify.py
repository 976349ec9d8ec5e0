"""Which kind a received email is: a person's reply, an automatic reply, a bounce, or our own mail."""

from __future__ import annotations

import re
from email.message import Message
from email.utils import collapse_rfc2231_value

from pipeline.plan.ids import MARK_HEADER
from pipeline.replies.headers import decoded, first_header

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


def classify(msg: Message, parts: list[Message], sender: str | None, subject: str, *, own_id: bool) -> tuple[str, str]:
    """human, auto-reply, bounce or own, with the reason; our own mail first, then bounces, then robots.

    `own_id` says the Message-ID is one of ours (see message.plan_reference).
    """
    if first_header(msg, MARK_HEADER):
        return "own", f"{MARK_HEADER} header"
    if own_id:
        return "own", "our Message-ID"
    return _delivery_report(msg, parts, sender, subject) or _automatic(msg, subject) or ("human", "")


def _delivery_report(msg: Message, parts: list[Message], sender: str | None, subject: str) -> tuple[str, str] | None:
    """A bounce (a delivery status report, a mailer daemon's message) or a read receipt, with the reason."""
    try:
        ctype = msg.get_content_type()
        param = (msg.get_param("report-type") or "") if ctype == "multipart/report" else ""
        report = collapse_rfc2231_value(param).lower()
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
    if first_header(msg, "X-Failed-Recipients"):
        return "bounce", "X-Failed-Recipients header"
    raw_from = decoded(first_header(msg, "From")).lower()
    if (sender and _BOUNCE_SENDER.match(sender)) or re.search(r"\b(mailer-daemon|postmaster)@", raw_from):
        return "bounce", "sent by a mailer daemon"
    if _BOUNCE_SUBJECT.match(subject) and first_header(msg, "Return-Path").strip() in ("<>", ""):
        return "bounce", "delivery failure subject"
    return None


def _automatic(msg: Message, subject: str) -> tuple[str, str] | None:
    """An automatic reply (out of office, a robot) by its headers or its subject, with the reason."""
    auto = first_header(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return "auto-reply", f"Auto-Submitted: {auto[:40]}"
    precedence = first_header(msg, "Precedence").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return "auto-reply", f"Precedence: {precedence}"
    if first_header(msg, "X-MS-Exchange-Inbox-Rules-Loop"):
        return "auto-reply", "X-MS-Exchange-Inbox-Rules-Loop header"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autoresponder"):
        value = first_header(msg, name).strip().lower()
        if value and value not in ("no", "false", "0"):
            return "auto-reply", f"{name} header"
    # Only at the start: a person answering an automatic reply writes "RE: Automatic reply: ...".
    if _AUTO_SUBJECT.match(subject):
        return "auto-reply", "automatic reply subject"
    return None
