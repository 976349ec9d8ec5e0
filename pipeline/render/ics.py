"""The plan's dates as an iCalendar file (RFC 5545): one all-day event per milestone with a due date."""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.plan.model import Plan
from pipeline.render.format import STATUS_LABELS, Row, parse_created, timeline_rows

# proposed dates are tentative; a dropped milestone stays in the file, cancelled, so a calendar that
# imported an earlier version shows it is off.
_STATUS = {"proposed": "TENTATIVE", "confirmed": "CONFIRMED", "done": "CONFIRMED", "dropped": "CANCELLED"}


def escape_text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and newline escaped (RFC 5545 3.3.11)."""
    return (
        value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\n").replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line at 75 octets without splitting a UTF-8 character (RFC 5545 3.1)."""
    out: list[str] = []
    current, size, limit = "", 0, 75
    for char in line:
        n = len(char.encode("utf-8"))
        if size + n > limit:
            out.append(current)
            current, size, limit = " ", 1, 75
        current += char
        size += n
    out.append(current)
    return "\r\n".join(out)


def event_uid(plan: Plan, milestone_id: str) -> str:
    """`<plan id>-<milestone id>@<seller's domain>`: the same event in every version, so imports update it."""
    return f"{plan.id}-{milestone_id}@{plan.seller.domain}"


def calendar(plan: Plan, *, version: int, created: datetime | str) -> bytes:
    """The .ics bytes: DTSTAMP is the version's timestamp, SEQUENCE counts versions, so the same version
    always gives the same file and a later one replaces it in the buyer's calendar."""
    stamp = parse_created(created).strftime("%Y%m%dT%H%M%SZ")
    title = f"Mutual Plan: {plan.prospect.company} and {plan.seller.company}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//mutualplan//Mutual Plan//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(title)}",
    ]
    for row in timeline_rows(plan):
        if row.due is not None:
            lines.extend(_event(plan, row, version=version, stamp=stamp, title=title))
    lines.append("END:VCALENDAR")
    return ("\r\n".join(fold(line) for line in lines) + "\r\n").encode("utf-8")


def _event(plan: Plan, row: Row, *, version: int, stamp: str, title: str) -> list[str]:
    assert row.due is not None
    description = (
        f"Owner: {row.owner or 'to be agreed'}\n"
        f"Status: {STATUS_LABELS.get(row.status, row.status)}\n"
        + (f"Notes: {row.notes}\n" if row.notes else "")
        + f"{title}, version {version} ({plan.id})"
    )
    return [
        "BEGIN:VEVENT",
        f"UID:{event_uid(plan, row.id)}",
        f"DTSTAMP:{stamp}",
        f"DTSTART;VALUE=DATE:{row.due:%Y%m%d}",
        f"DTEND;VALUE=DATE:{row.due + timedelta(days=1):%Y%m%d}",
        f"SEQUENCE:{version - 1}",
        f"SUMMARY:{escape_text(f'{row.id} {row.title} ({plan.prospect.company} / {plan.seller.company})')}",
        f"DESCRIPTION:{escape_text(description)}",
        f"STATUS:{_STATUS.get(row.status, 'TENTATIVE')}",
        "TRANSP:TRANSPARENT",
        "CATEGORIES:Mutual Plan",
        "END:VEVENT",
    ]
