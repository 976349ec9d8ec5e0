"""What the letter and the email both say: dates in words, timeline rows and lines, and changes in sentences."""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape

from pipeline.errors import PlanError, RenderError
from pipeline.plan.diff import MilestoneChange, PlanDiff
from pipeline.plan.model import Plan
from pipeline.plan.timeline import days_left, resolve

# English names, never the locale's: a letter must read the same on every machine.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
STATUS_LABELS = {"proposed": "Proposed", "confirmed": "Confirmed", "done": "Done", "dropped": "Dropped"}
NO_DATE = "date to be agreed"


def short_date(value: date | None) -> str:
    """A due date as a timeline line writes it: Mon 1 Mar 2027."""
    if value is None:
        return NO_DATE
    return f"{_DAYS[value.weekday()]} {value.day} {_MONTHS[value.month - 1][:3]} {value.year}"


def long_date(value: date | None) -> str:
    """A date as a letter writes it: 11 January 2027."""
    if value is None:
        return NO_DATE
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def text_direction(text: str) -> str | None:
    """"rtl" or "ltr" by the text's first strong character (HTML's dir="auto" rule); None when it has none."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return None


def has_rtl(text: str) -> bool:
    """Whether the text holds a right-to-left letter (Hebrew, Arabic, Syriac ...)."""
    return any(unicodedata.bidirectional(char) in ("R", "AL") for char in text)


def isolate(text: object) -> Markup:
    """Escaped text; one holding right-to-left letters goes in <bdi dir=...>, its direction from its first
    strong character, so it reads in its own direction and the words around it keep their order.

    WeasyPrint knows neither dir="auto" nor unicode-bidi, so the direction is worked out here; text without
    right-to-left letters is left as it was (a Latin letter's bytes do not change).
    """
    value = str(text)
    if not has_rtl(value):
        return escape(value)
    return Markup('<bdi dir="{}">{}</bdi>').format(text_direction(value) or "rtl", value)


_BLOCK = re.compile(r"<(p|li|h[1-6]|td|th|blockquote)>")
_BLOCK_EDGE = re.compile(r"</?(?:p|li|h[1-6]|td|th|blockquote|ul|ol|table|tr|pre)\b")
_TAG = re.compile(r"<[^>]*>")


def directed_html(markup: str) -> Markup:
    """Sanitized HTML with dir="rtl" on each paragraph, item, heading or cell whose own text starts with a
    right-to-left letter, so a Hebrew or Arabic paragraph of the plan reads (and aligns) right to left."""
    if not has_rtl(markup):
        return Markup(markup)

    def mark(match: re.Match[str]) -> str:
        rest = markup[match.end() :]
        edge = _BLOCK_EDGE.search(rest)
        own = html.unescape(_TAG.sub("", rest[: edge.start() if edge else len(rest)]))
        return f'<{match.group(1)} dir="rtl">' if text_direction(own) == "rtl" else match.group(0)

    return Markup(_BLOCK.sub(mark, markup))


def utc(created: datetime) -> datetime:
    """The timestamp in UTC; a naive timestamp is taken to be UTC already (as Version.created is)."""
    return created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)


def parse_created(value: datetime | str) -> datetime:
    """A version's timestamp, from a datetime or Version.created's ISO string, in UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RenderError(f"version timestamp {value!r} is not an ISO 8601 date and time") from None
    return utc(value)


def letter_date(plan: Plan, created: datetime) -> date:
    """The letter's date: the version's timestamp as a calendar day in the plan's time zone."""
    try:
        zone = ZoneInfo(plan.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return utc(created).astimezone(zone).date()


@dataclass(frozen=True)
class Row:
    """One milestone as the letter and the email show it: the owner as written, the due date resolved."""

    id: str
    title: str
    owner: str
    due: date | None
    status: str
    notes: str
    phase: str
    side: str  # seller, buyer, joint or "" (for the picture's fills)

    @property
    def status_label(self) -> str:
        """Proposed, Confirmed, Done or Dropped."""
        return STATUS_LABELS.get(self.status, self.status.capitalize())

    @property
    def line(self) -> str:
        """The timeline line a reply can quote: `M3  Pilot on Q4 data - Acme (Dana) - Mon 1 Mar 2027`."""
        return f"{self.id}  {self.title} - {self.owner or 'owner to be agreed'} - {short_date(self.due)}"


def timeline_rows(plan: Plan) -> list[Row]:
    """The plan's milestones in their written order, with resolved dates."""
    dates = resolve(plan)
    rows = []
    for m in plan.milestones:
        try:
            side = plan.resolve_owner(m.owner).side
        except PlanError:
            side = ""
        rows.append(Row(m.id, m.title, m.owner, dates[m.id], m.status, m.notes, m.phase, side))
    return rows


def timeline_lines(plan: Plan, rows: list[Row] | None = None) -> list[str]:
    """The timeline as plain-text lines, the after-PO heading between the phases (as the reply examples quote)."""
    rows = timeline_rows(plan) if rows is None else rows
    before = [r.line for r in rows if r.phase != "after"]
    after = [r.line for r in rows if r.phase == "after"]
    return [*before, *([plan.after_heading, *after] if after else [])]


def days_to_target(plan: Plan, today: date) -> int | None:
    """Whole days from the letter's date to the target."""
    return days_left(plan.target, today)


def days_phrase(days: int | None) -> str:
    """79 days left / 1 day left / today / 3 days ago."""
    if days is None:
        return "no target date yet"
    if days == 0:
        return "today"
    if days < 0:
        return f"{-days} day{'s' if days != -1 else ''} ago"
    return f"{days} day{'s' if days != 1 else ''} left"


# --- changes ----------------------------------------------------------------------------------


def _maybe_date(value: str | None) -> str:
    if value is None:
        return NO_DATE
    try:
        return short_date(date.fromisoformat(value))
    except ValueError:
        return value


_KIND_LABELS = {
    "added": "Added",
    "removed": "Removed",
    "moved": "Moved",
    "reassigned": "New owner",
    "renamed": "Renamed",
    "status": "Status",
    "phase": "Phase",
}


@dataclass(frozen=True)
class ChangeRow:
    """One line of the table of changes: what happened, to which milestone, from what to what."""

    kind: str
    label: str
    id: str
    title: str
    old: str
    new: str

    @property
    def sentence(self) -> str:
        """The change in one line of plain text, for the email."""
        if self.kind == "added":
            return f"{self.label}: {self.id}  {self.title} - {self.new}"
        if self.kind == "removed":
            return f"{self.label}: {self.id}  {self.title} (was {self.old})"
        return f"{self.label}: {self.id}  {self.title}, from {self.old} to {self.new}"


def _phase_text(plan: Plan, phase: str | None) -> str:
    return plan.after_heading.lower() if phase == "after" else "before the PO"


def change_rows(plan: Plan, diff: PlanDiff) -> list[ChangeRow]:
    """The diff's milestone changes, the target and the contacts as rows with readable values."""
    rows: list[ChangeRow] = []
    if diff.target:
        old, new = diff.target
        slip = f" ({abs(diff.slip_days)} days {'later' if diff.slip_days > 0 else 'earlier'})" if diff.slip_days else ""
        rows.append(ChangeRow("target", "Target moved", "", "Target date", short_date(old), short_date(new) + slip))
    for change in diff.milestones:
        rows.append(_milestone_row(plan, change))
    rows.extend(ChangeRow("contact", "Contact added", "", name, "", name) for name in diff.contacts_added)
    rows.extend(ChangeRow("contact", "Contact removed", "", name, name, "") for name in diff.contacts_removed)
    return rows


def _milestone_row(plan: Plan, change: MilestoneChange) -> ChangeRow:
    label = _KIND_LABELS.get(change.kind, change.kind.capitalize())
    old, new = change.old or "", change.new or ""
    if change.kind in ("moved", "added", "removed"):
        old = _maybe_date(change.old) if change.kind != "added" else ""
        new = _maybe_date(change.new) if change.kind != "removed" else ""
    elif change.kind == "status":
        old, new = STATUS_LABELS.get(old, old), STATUS_LABELS.get(new, new)
    elif change.kind == "phase":
        old, new = _phase_text(plan, change.old), _phase_text(plan, change.new)
    elif change.kind == "reassigned":
        old, new = old or "nobody", new or "nobody"
    return ChangeRow(change.kind, label, change.id, change.title, old, new)


def change_summary(plan: Plan, diff: PlanDiff) -> list[str]:
    """The changes as plain-text lines, target first, then milestones in timeline order, then contacts."""
    lines = []
    for row in change_rows(plan, diff):
        if row.kind == "target":
            lines.append(f"Target date moved from {row.old} to {row.new}")
        elif row.kind == "contact":
            lines.append(f"{row.label}: {row.title}")
        else:
            lines.append(row.sentence)
    lines.extend(f"Text changed: {t.heading}" for t in diff.texts)
    return lines


def ensure_version(version: int) -> int:
    """A version number a letter can carry."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RenderError(f"version {version!r} is not a version number", hint="versions count from 1")
    return version
