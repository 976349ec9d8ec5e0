"""Dates as people write them in replies, made absolute against the reply's own date."""

from __future__ import annotations

import calendar
import re
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import dateparser

from pipeline.plan.timeline import EARLIEST, LATEST, window_end

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_WEEKDAY = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|sday|rsday|urday)?"
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_NUMBERS = {
    "a": 1, "an": 1, "another": 1, "a further": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14,
    "twenty": 20, "thirty": 30,
}  # fmt: skip
_AMOUNT = (
    r"(?:\d{1,3}|another|a further|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fourteen"
    r"|twenty|thirty)"
)
_UNIT = r"(?:(?:business|working|calendar)\s+)?(?:days?|weeks?|months?)"

_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_NUMERIC = re.compile(r"(?<![\d/.])(\d{1,2})/(\d{1,2})(?:/(\d{2}|\d{4}))?(?![\d/])")
_DOTTED = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})(?![\d.])")
_MONTH_DAY = re.compile(
    rf"\b(?:{_WEEKDAY},?\s+)?(?:the\s+)?(?:{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?(?:,?\s+\d{{4}})?)\b",
    re.IGNORECASE,
)
_WEEKDAY_PHRASE = re.compile(
    rf"\b(?:(?P<which>next|this|coming|the following|following)\s+)?(?P<day>{_WEEKDAY})"
    rf"(?:\s+(?P<after>next week|after next|this week|of next week|the week after))?\b",
    re.IGNORECASE,
)
_END_OF = re.compile(
    rf"\b(?:the\s+)?(?P<edge>end|close|last day)\s+of\s+(?:the\s+)?(?P<what>(?:this|next|the)\s+(?:month|week|quarter)"
    rf"|month|week|quarter|q[1-4]|{_MONTH})\b",
    re.IGNORECASE,
)
_VAGUE = re.compile(
    rf"\b(?:(?:early|mid|late|beginning of|start of|middle of|first half of|second half of|the week of)[\s-]+"
    rf"(?:{_MONTH}|the month|next month|q[1-4])|next week|next month|later this month|in {_MONTH}|asap|soon"
    rf"|sometime|a few (?:days|weeks)|couple of (?:days|weeks)|the week of the \d{{1,2}}(?:st|nd|rd|th))\b",
    re.IGNORECASE,
)
# A day of the month alone: "the 20th", "on the 3rd" (a month after it is _MONTH_DAY's).
_DAY_ALONE = re.compile(
    rf"\b(?:(?P<weekday>{_WEEKDAY}),?\s+)?(?<!week of )the\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)\b"
    rf"(?!\s+(?:of\s+)?{_MONTH}\b)"
    r"(?!\s+(?:items?|steps?|milestones?|rows?|lines?|points?|activit(?:y|ies)|entr(?:y|ies)|tasks?|ones?)\b)",
    re.IGNORECASE,
)
_TODAY = re.compile(r"\b(today|tomorrow|day after tomorrow)\b", re.IGNORECASE)
_FROM_NOW = re.compile(
    rf"\b(?:in\s+(?P<n1>{_AMOUNT})\s+(?P<u1>{_UNIT})(?!\s+(?:later|earlier|after|before|back|out|sooner))"
    rf"|(?P<n2>{_AMOUNT})\s+(?P<u2>{_UNIT})\s+from\s+(?:now|today))\b",
    re.IGNORECASE,
)
_SHIFT = re.compile(
    rf"\b(?:by\s+|for\s+)?(?P<n>{_AMOUNT})\s+(?P<more>more\s+|extra\s+|additional\s+)?(?P<unit>{_UNIT})\b",
    re.IGNORECASE,
)
_LATER = re.compile(
    r"\b(later|after(?=\s*(?:[.,;!?]|$))|back|out|delay(?:ed|ing)?|postpone[ds]?|postponing|slip(?:s|ped)?|extend(?:ed)?|longer|push(?:ed)?)\b",
    re.IGNORECASE,
)
_EARLIER = re.compile(
    r"\b(earlier|sooner|before(?=\s*(?:[.,;!?]|$))|forward|bring (?:it |\w+ )?in"
    r"|pull(?:ed)? (?:it |\w+ )?(?:in|forward)|move[ds]? (?:it |\w+ )?up|advance[ds]?|expedite[ds]?)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DateMention:
    """A date written in a sentence: its place, its value (None when too vague to act on)."""

    start: int
    end: int
    text: str
    value: date | None


@dataclass(frozen=True)
class Shift:
    """An amount of time to move something by ("back a week", "two days earlier"); days is signed."""

    start: int
    end: int
    text: str
    days: int | None  # None when the direction is not said
    months: int = 0
    business: bool = False
    more: bool = False  # "another week", "two more days": more time, counted from today for a late step


def find_dates(
    sentence: str, base: date | None, *, day_first: bool = False, month: int | None = None
) -> list[DateMention]:
    """Absolute and vague dates in order; year-less dates are the next such day on or after `base`; a day alone
    ("the 20th") is in `month` (a month named nearby) when given, else the next such day after `base`."""
    found: list[DateMention] = []
    taken: list[tuple[int, int]] = []

    def add(m: re.Match[str], value: date | None) -> None:
        if any(m.start() < e and s < m.end() for s, e in taken):
            return
        taken.append((m.start(), m.end()))
        if value is not None and not _plausible(value, base):
            value = None  # "December 20, 9998": named, but no date to act on; the seller reads it
        found.append(DateMention(m.start(), m.end(), m.group(0), value))

    for m in _ISO.finditer(sentence):
        add(m, _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    for m in _END_OF.finditer(sentence):
        add(m, _end_of(m.group("what"), base))
    for m in _MONTH_DAY.finditer(sentence):
        add(m, _month_day(m.group(0), base))
    for m in _DOTTED.finditer(sentence):
        add(m, _numeric(m.group(2), m.group(1), m.group(3), base))
    for m in _NUMERIC.finditer(sentence):
        first, second = m.group(1), m.group(2)
        if day_first or int(first) > 12:
            first, second = second, first
        add(m, _numeric(first, second, m.group(3), base))
    for m in _DAY_ALONE.finditer(sentence):
        add(m, _day_alone(m, base, month))
    for m in _FROM_NOW.finditer(sentence):
        n, unit = (m.group("n1"), m.group("u1")) if m.group("n1") else (m.group("n2"), m.group("u2"))
        add(m, _plus(base, _amount(n), unit) if base else None)
    for m in _TODAY.finditer(sentence):
        word = m.group(1).lower()
        offset = {"today": 0, "tomorrow": 1}.get(word, 2)
        add(m, base + timedelta(days=offset) if base else None)
    for m in _WEEKDAY_PHRASE.finditer(sentence):
        add(m, _weekday(m, base))
    for m in _VAGUE.finditer(sentence):
        add(m, None)
    found.sort(key=lambda d: d.start)
    if month is not None and any(_DAY_ALONE.fullmatch(d.text) and d.value for d in found):
        # "the pilot in March, but make it the 10th": "in March" only says which month the 10th is in.
        found = [d for d in found if not re.fullmatch(rf"in {_MONTH}", d.text, re.IGNORECASE)]
    return found


# A month named in words; "may" only where it is a month ("in May", "May 3"), never the verb.
_MONTH_NAMED = re.compile(
    r"\b(?:(jan|feb|mar|apr|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?|(?:(?<=in )|(?<=of )|(?<=early )|(?<=mid-)"
    r"|(?<=late ))(may)|(may)(?=\s+\d))(?![a-z])",
    re.IGNORECASE,
)


def month_named(text: str) -> int | None:
    """The one month a text names in words or in a date ("in March", "Wed 10 Feb 2027"), if exactly one."""
    months = set()
    for m in _MONTH_NAMED.finditer(text):
        word = (m.group(1) or m.group(2) or m.group(3)).lower()
        if m.group(1) and not re.fullmatch(_MONTH + r"\.?", m.group(0), re.IGNORECASE):
            continue  # "marketing", "decent": not a month
        months.add(_MONTHS[word[:3]])
    return months.pop() if len(months) == 1 else None


def find_shifts(sentence: str, *, skip: list[tuple[int, int]] | None = None) -> list[Shift]:
    """Amounts of time to move by, with the direction the sentence gives them (None if it gives none)."""
    shifts = []
    later = bool(_LATER.search(sentence))
    earlier = bool(_EARLIER.search(sentence))
    for m in _SHIFT.finditer(sentence):
        if skip and any(m.start() < e and s < m.end() for s, e in skip):
            continue
        n = _amount(m.group("n"))
        unit = m.group("unit").lower()
        business = unit.startswith(("business", "working"))
        sign = 1 if later and not earlier else -1 if earlier and not later else 0
        more = bool(m.group("more") or m.group("n").lower() in ("another", "a further"))
        if not sign and more:
            sign = 1  # "another week", "two more days": more time is later
        if "month" in unit:
            shifts.append(Shift(m.start(), m.end(), m.group(0), 0 if sign else None, months=sign * n))
            continue
        days = n * (7 if "week" in unit else 1)
        signed = sign * days if sign else None
        shifts.append(Shift(m.start(), m.end(), m.group(0), signed, business=business, more=more and sign > 0))
    return shifts


def apply_shift(when: date, shift: Shift) -> date | None:
    """The date moved by the shift, counting business days when the shift says so."""
    if shift.days is None:
        return None
    if shift.months:
        return _add_months(when, shift.months)
    if not shift.business:
        return when + timedelta(days=shift.days)
    step = 1 if shift.days > 0 else -1
    left = abs(shift.days)
    current = when
    while left:
        current += timedelta(days=step)
        if current.weekday() < 5:
            left -= 1
    return current


# --- pieces -----------------------------------------------------------------------------------


def _plausible(value: date, base: date | None) -> bool:
    """Not past the window a reply may move a plan in (past dates are the readers' to refuse, with reasons)."""
    if base is None:
        return EARLIEST <= value <= LATEST
    return value <= window_end(base)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_on_or_after(month: int, day: int, base: date | None) -> date | None:
    if base is None:
        return None
    for year in (base.year, base.year + 1, base.year + 2, base.year + 3, base.year + 4):
        candidate = _safe_date(year, month, day)
        if candidate and candidate >= base:
            return candidate
    return None


def _numeric(month: str, day: str, year: str | None, base: date | None) -> date | None:
    m, d = int(month), int(day)
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return None
    if year:
        y = int(year)
        y = y + 2000 if y < 100 else y
        return _safe_date(y, m, d)
    return _next_on_or_after(m, d, base)


def _month_day(text: str, base: date | None) -> date | None:
    """A month and a day, parsed by dateparser; without a year, the next one on or after the base; None when a
    weekday said with it is not that date's ("Monday, March 9" when the 9th is a Tuesday: which is meant?)."""
    weekday = re.match(rf"^\s*({_WEEKDAY}),?\s+", text, flags=re.IGNORECASE)
    value = _month_day_value(text[weekday.end() :] if weekday else text, base)
    return _same_weekday(value, weekday.group(1) if weekday else None)


def _same_weekday(value: date | None, weekday: str | None) -> date | None:
    if value is None or not weekday:
        return value
    return value if value.weekday() == _WEEKDAYS[weekday[:3].lower()] else None


def _day_alone(m: re.Match[str], base: date | None, month: int | None) -> date | None:
    """ "the 20th": in the month named nearby (on or after the base), else the first 20th after the base."""
    if base is None:
        return None
    day = int(m.group("day"))
    if month is not None:
        value = _next_on_or_after(month, day, base)
        # A month without that day ("the 31st" of February) is no date, not the next month that has one.
        value = value if value and value.month == month else None
    else:
        start = base + timedelta(days=1)
        days = [v for k in range(13) if (v := _safe_date(*_month_of(start, k), day)) and v >= start]
        weekday = m.group("weekday")
        # "Tuesday the 16th": the first of the next two 16ths that is a Tuesday; neither is, and it is unclear.
        value = next((v for v in days[:2] if _same_weekday(v, weekday)), None) if weekday else next(iter(days), None)
    return _same_weekday(value, m.group("weekday"))


def _month_of(start: date, ahead: int) -> tuple[int, int]:
    index = start.month - 1 + ahead
    return start.year + index // 12, index % 12 + 1


def _month_day_value(text: str, base: date | None) -> date | None:
    cleaned = text
    cleaned = re.sub(r"^\s*the\s+", "", cleaned, flags=re.IGNORECASE)
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", cleaned)
    cleaned = re.sub(r"\bof\s+", "", cleaned)
    has_year = bool(re.search(r"\d{4}", cleaned))
    settings: dict[str, Any] = {"PREFER_DATES_FROM": "future", "REQUIRE_PARTS": ["day", "month"]}
    if base is not None:
        settings["RELATIVE_BASE"] = datetime(base.year, base.month, base.day)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = dateparser.parse(cleaned, languages=["en"], settings=settings)
        except Exception:
            parsed = None
    if parsed is None:
        return None
    if has_year:
        return parsed.date()
    return _next_on_or_after(parsed.month, parsed.day, base)


def _weekday(m: re.Match[str], base: date | None) -> date | None:
    """The coming weekday after the base ("Friday", "next Friday"); "Friday next week" in the next week."""
    if base is None:
        return None
    target = _WEEKDAYS[m.group("day")[:3].lower()]
    after = (m.group("after") or "").lower()
    if after in ("next week", "of next week"):
        monday = base - timedelta(days=base.weekday()) + timedelta(days=7)
        return monday + timedelta(days=target)
    if after in ("after next", "the week after"):
        monday = base - timedelta(days=base.weekday()) + timedelta(days=14)
        return monday + timedelta(days=target)
    which = (m.group("which") or "").lower()
    if after == "this week" or which == "this":
        ahead = (target - base.weekday()) % 7
        return base + timedelta(days=ahead)
    if which == "next":
        # "next Tuesday" is the Tuesday of the following week (weeks start on Monday): said on a Monday it is
        # eight days off, not tomorrow ("this Tuesday" or "Tuesday" is tomorrow); said late in a week, both agree.
        monday = base - timedelta(days=base.weekday()) + timedelta(days=7)
        return monday + timedelta(days=target)
    # "Friday", "coming Friday": the first Friday after the base.
    ahead = (target - base.weekday()) % 7 or 7
    return base + timedelta(days=ahead)


def _end_of(what: str, base: date | None) -> date | None:
    what = what.lower().strip()
    words = what.split()
    unit = words[-1]
    if unit[:3] in _MONTHS and unit not in ("month",):
        month = _MONTHS[unit[:3]]
        if base is None:
            return None
        last = calendar.monthrange(base.year, month)[1]
        return _next_on_or_after(month, last, base)
    if base is None:
        return None
    following = words[0] == "next"
    if unit == "month":
        anchor = _add_months(base, 1) if following else base
        return date(anchor.year, anchor.month, calendar.monthrange(anchor.year, anchor.month)[1])
    if unit == "week":
        friday = base - timedelta(days=base.weekday()) + timedelta(days=4)
        return friday + timedelta(days=7) if following else friday
    if unit == "quarter" or re.fullmatch(r"q[1-4]", unit):
        if unit.startswith("q") and unit != "quarter":
            quarter = int(unit[1])
        else:
            quarter = (base.month - 1) // 3 + 1 + (1 if following else 0)
        year = base.year + (quarter - 1) // 4
        quarter = (quarter - 1) % 4 + 1
        month = quarter * 3
        candidate = date(year, month, calendar.monthrange(year, month)[1])
        if candidate < base:
            candidate = date(year + 1, month, candidate.day)
        return candidate
    return None


def _amount(word: str) -> int:
    word = word.lower()
    return int(word) if word.isdigit() else _NUMBERS.get(word, 0)


def _plus(base: date, n: int, unit: str) -> date:
    unit = unit.lower()
    if "month" in unit:
        return _add_months(base, n)
    return base + timedelta(days=n * (7 if "week" in unit else 1))


def _add_months(when: date, months: int) -> date:
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    return date(year, month, min(when.day, calendar.monthrange(year, month)[1]))
