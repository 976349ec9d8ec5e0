"""A plan written in an email: its body's plan Markdown read with front matter made from the email's headers.

Contacts come from To and Cc, the seller from From and the settings, the target from a "Target:" line above the
first heading (plan_markdown.py turns the body into that Markdown). No I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pipeline.errors import PlanError
from pipeline.plan.model import ROLES, Plan
from pipeline.plan.source import parse_plan

_KEY_LINE = re.compile(
    r"^\s*(?:\*\*)?(?P<key>[A-Za-z][A-Za-z /-]{0,30}?)(?:\*\*)?\s*:\s*(?:\*\*)?(?P<value>.*?)(?:\*\*)?\s*$"
)
_KEYS = {
    "target": "target", "target date": "target", "decision date": "target", "signature date": "target",
    "po date": "target", "close date": "target",
    "prospect": "prospect", "company": "prospect", "customer": "prospect", "account": "prospect",
    "confirms": "confirms", "confirming": "confirms", "confirmers": "confirms", "to confirm": "confirms",
    "confirmed by": "confirms",
    "timezone": "timezone", "time zone": "timezone",
    "id": "id", "plan id": "id",
    "letterhead": "letterhead",
}  # fmt: skip
_ROLE_KEYS = {r.replace("-", " "): r for r in ROLES if r != "other"}
_MONTHS = {m: i for i, m in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
     "december"), start=1)}  # fmt: skip


@dataclass(frozen=True)
class Person:
    """Someone in the email's headers: the display name (maybe empty) and the address."""

    name: str
    email: str


@dataclass(frozen=True)
class EmailPlan:
    """A plan read from an email, and the source it was read from (for naming lines in errors)."""

    plan: Plan
    source: str


def email_plan(
    markdown: str,
    *,
    sender: Person,
    to: Sequence[Person],
    cc: Sequence[Person] = (),
    seller: Mapping[str, Any] | None = None,
    exclude: Collection[str] = (),
    timezone: str = "UTC",
    letterhead: str | None = None,
) -> EmailPlan:
    """The plan an email body says, with front matter from its headers; a PlanError names the line that failed.

    `sender` is the seller (From); `seller` the settings' [seller] (company, name, title); `exclude` addresses
    that are not contacts (the seller's own, the pipeline's). Lines above the first heading may say
    `Target: 2027-03-31`, `Prospect: Acme Corp`, `Confirms: Dana Whitfield, Raj Patel`, `Timezone: ...`,
    or a role and who holds it (`Decision-maker: Raj Patel`, `Legal: Kim Osei`).
    """
    lines = markdown.replace("\r\n", "\n").split("\n")
    has_front = bool(lines) and lines[0].strip() == "---"
    fields, roles = ({}, []) if has_front else _read_note(lines)
    source = "\n".join(lines)
    exclude_set = {e.lower() for e in exclude} | {sender.email.lower()}
    people = _contacts(to, cc, exclude_set)
    confirmers = _confirmers(fields.get("confirms"), people, to)
    role_of = _roles(roles, people)
    contacts = [
        {"name": p.name, "email": p.email, "role": role_of.get(p.email, "other"), "confirms": p.email in confirmers}
        for p in people
    ]
    defaults: dict[str, Any] = {
        "seller": _seller(sender, seller or {}),
        "timezone": fields["timezone"][0] if "timezone" in fields else timezone,
    }
    if letterhead:
        defaults["letterhead"] = letterhead
    if contacts:
        defaults["prospect"] = {"company": _prospect(fields.get("prospect"), people), "contacts": contacts}
    if "target" in fields:
        value, line = fields["target"]
        defaults["target"] = _target(value, line)
    if "id" in fields:
        defaults["id"] = fields["id"][0].lower()
    if "letterhead" in fields:
        defaults["letterhead"] = fields["letterhead"][0]
    if not contacts and not has_front:
        raise PlanError(
            "the email has no prospect contact in To or Cc",
            line=1,
            hint="send the plan to the prospect's people (those who confirm in To, the others in Cc)",
        )
    try:
        plan = parse_plan(source, defaults=defaults)
    except PlanError as exc:
        raise _email_hint(exc) from None
    return EmailPlan(plan=plan, source=source)


def _read_note(lines: list[str]) -> tuple[dict[str, tuple[str, int]], list[tuple[str, str, int]]]:
    """The `Key: value` lines above the first heading (fields, and roles with who holds them), each with its
    line number; every line up there is blanked in `lines`."""
    fields: dict[str, tuple[str, int]] = {}
    roles: list[tuple[str, str, int]] = []
    for index, line in enumerate(lines):
        if line.startswith("## "):
            break
        found = _KEY_LINE.match(line)
        key = re.sub(r"\s+", " ", found.group("key").strip().lower().replace("-", " ")) if found else ""
        if found and (key in _KEYS or key in _ROLE_KEYS):
            if key in _KEYS:
                fields[_KEYS[key]] = (found.group("value").strip(), index + 1)
            else:
                roles.append((_ROLE_KEYS[key], found.group("value").strip(), index + 1))
        # Above the first heading is the seller's note to the prospect, not the plan: kept out of the letter,
        # blanked rather than cut so that every line keeps its number for errors.
        lines[index] = ""
    return fields, roles


def _contacts(to: Sequence[Person], cc: Sequence[Person], exclude: set[str]) -> list[Person]:
    out: dict[str, Person] = {}
    for person in [*to, *cc]:
        address = person.email.lower().strip()
        if not address or address in exclude or address in out:
            continue
        out[address] = Person(name=person.name.strip() or name_from_address(address), email=address)
    return list(out.values())


def name_from_address(address: str) -> str:
    """A readable name for an address without one: dana.whitfield@... -> Dana Whitfield."""
    local = address.split("@", 1)[0]
    words = [w for w in re.split(r"[._+-]+", local) if w and not w.isdigit()]
    return " ".join(w.capitalize() for w in words) or local


def _find_person(text: str, people: Sequence[Person]) -> Person | None:
    key = text.strip().strip("<>").lower()
    for p in people:
        if key == p.email:
            return p
    for p in people:
        name = p.name.lower()
        if key == name or (key and key in name.split()):
            return p
    return None


def _names(value: str) -> list[str]:
    return [n.strip() for n in re.split(r",|;|\band\b|&", value) if n.strip()]


def _confirmers(field_: tuple[str, int] | None, people: Sequence[Person], to: Sequence[Person]) -> set[str]:
    if field_ is None:
        wanted = {p.email.lower() for p in to}
        return {p.email for p in people if p.email in wanted}
    value, line = field_
    out: set[str] = set()
    for name in _names(value):
        person = _find_person(name, people)
        if person is None:
            raise PlanError(
                f"{name!r} is named to confirm but is not in the email's To or Cc",
                line=line,
                hint="name people the email is addressed to, e.g. `Confirms: Dana Whitfield, Raj Patel`",
            )
        out.add(person.email)
    return out


def _roles(roles: list[tuple[str, str, int]], people: Sequence[Person]) -> dict[str, str]:
    out: dict[str, str] = {}
    for role, value, line in roles:
        for name in _names(value):
            person = _find_person(name, people)
            if person is None:
                raise PlanError(
                    f"{name!r} is named as {role} but is not in the email's To or Cc",
                    line=line,
                    hint=f"write `{role.capitalize()}: <a name in To or Cc>`, or add them to the email",
                )
            out[person.email] = role
    return out


def _seller(sender: Person, settings: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in settings.items() if k in ("company", "name", "title", "address")}
    out["email"] = sender.email.lower()
    if sender.name.strip():
        out["name"] = sender.name.strip()
    return out


def _prospect(field_: tuple[str, int] | None, people: Sequence[Person]) -> str:
    if field_ and field_[0].strip():
        return field_[0].strip()
    # The company of the first contact's domain: acme-corp.example -> Acme Corp.
    domain = people[0].email.rpartition("@")[2]
    labels = domain.split(".")
    label = labels[-2] if len(labels) >= 2 else labels[0]
    return " ".join(w.capitalize() for w in re.split(r"[-_]+", label) if w) or domain


def _target(value: str, line: int) -> date:
    found = parse_written_date(value)
    if found is None:
        raise PlanError(
            f"the target {value!r} is not a date",
            line=line,
            hint="write it with the year, e.g. `Target: 2027-03-31` or `Target: 31 March 2027`",
        )
    return found


def parse_written_date(value: str) -> date | None:
    """A date written with its year: 2027-03-31, March 31, 2027, 31 March 2027, Wed 31 Mar 2027, 31/3/2027
    (numbers only when the day cannot be read as the month); None otherwise."""
    text = re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", value.strip().rstrip("."), flags=re.IGNORECASE)
    text = re.sub(r"^(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*[.,]?\s+", "", text, flags=re.IGNORECASE)
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    words = re.findall(r"[A-Za-z]+|\d+", text)
    if len(words) == 3:
        month = next((_MONTHS[m] for m in _MONTHS if words[0].lower() in (m, m[:3], m[:4])), None)
        if month and words[1].isdigit() and words[2].isdigit():
            return _date(int(words[2]), month, int(words[1]))
        month = next((_MONTHS[m] for m in _MONTHS if words[1].lower() in (m, m[:3], m[:4])), None)
        if month and words[0].isdigit() and words[2].isdigit():
            return _date(int(words[2]), month, int(words[0]))
        if all(w.isdigit() for w in words) and len(words[2]) == 4:
            a, b, year = int(words[0]), int(words[1]), int(words[2])
            if a > 12 >= b:
                return _date(year, b, a)
            if b > 12 >= a:
                return _date(year, a, b)
    return None


def _date(year: int, month: int, day: int) -> date | None:
    if year < 1000:
        return None
    try:
        return datetime(year, month, day).date()
    except ValueError:
        return None


def _email_hint(exc: PlanError) -> PlanError:
    """Hints that speak of front matter, said for a plan written in an email."""
    hint = exc.hint
    if "no target date" in exc.reason:
        hint = "add a line `Target: 2027-03-31` above the first heading (the PO / signature date)"
    elif "has no timeline" in exc.reason:
        hint = ("add a heading `Timeline` (bold, or typed as `## Timeline`) and under it a table with the columns "
                "# | Activity | Owner | Due")
    elif "plan names no seller" in exc.reason or "seller needs a company" in exc.reason:
        hint = "set [seller] company (and name, title) in mutualplan.toml"
    return replace_hint(exc, hint)


def replace_hint(exc: PlanError, hint: str | None) -> PlanError:
    """The same error with another hint."""
    return PlanError(exc.reason, file=exc.file, line=exc.line, hint=hint)


def source_line(source: str, line: int | None) -> str:
    """The text of a line of the source (1-based), for showing the seller what failed."""
    if not line:
        return ""
    lines = source.split("\n")
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


__all__ = ["EmailPlan", "Person", "email_plan", "name_from_address", "parse_written_date", "source_line"]
