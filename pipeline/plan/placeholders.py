"""Template placeholders left in a plan (<Prospect>, [Company], {{name}}, TBD, XXX, Lorem ipsum) and the text a
starter plan holds for the seller to replace; each found with where it is and, given the source, its line."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

import nh3

from pipeline.plan.model import Plan

_TEMPLATE = re.compile(r"\{\{[^{}\n]*\}\}|\{%[^%\n]*%\}|\$\{\w+\}|(?<![\w$])\$[a-z_][a-z0-9_]*\b")
_WORDS = re.compile(r"\b(?:TBD|TBA|TBC|TODO|FIXME|X{3,}|lorem ipsum)\b", re.IGNORECASE)
_ANGLE = re.compile(r"<([A-Za-z][^<>\n]{0,60})>")
# Not a link ([text](url)), a reference ([text][ref], [ref]: url), an image or a footnote.
_SQUARE = re.compile(r"(?<![\]\\!])\[([^\[\]\n]{2,60})\](?![(\[:])")
_LINK_LABEL = re.compile(r"^\s{0,3}\[([^\]\n]+)\]:", re.MULTILINE)
_HTML = frozenset(nh3.ALLOWED_TAGS) | {"script", "style", "iframe", "object", "embed", "form", "input", "link", "meta"}
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


@dataclass(frozen=True)
class Found:
    """A placeholder: the text as written, where it is for the seller, its source line if known."""

    text: str
    where: str
    line: int | None
    starter: bool = False  # the starter plan's own text, not a generic placeholder


@dataclass(frozen=True)
class StandIns:
    """What the starter plans hold for a seller to replace: field values, and the guidance lines of sections."""

    values: frozenset[str]  # as the starters write them
    lines: tuple[re.Pattern[str], ...]

    @cached_property
    def _folded(self) -> frozenset[str]:
        return frozenset(v.casefold() for v in self.values)

    def holds(self, value: str) -> bool:
        """Whether a field's whole value is a stand-in, in any case."""
        return value.casefold() in self._folded

    def names(self) -> re.Pattern[str] | None:
        """The values worth finding inside free text: several words or an address, not "City" in "Kansas City"."""
        long = sorted((v for v in self.values if " " in v or "@" in v), key=len, reverse=True)
        # As the starter capitalises them: "Decision Maker" is a stand-in, "the decision maker" is prose.
        return re.compile(r"\b(?:" + "|".join(map(re.escape, long)) + r")\b") if long else None


NO_STAND_INS = StandIns(frozenset(), ())


def stand_ins(starters: Iterable[Plan]) -> StandIns:
    """The stand-ins of starter plans parsed as written: every name, address and email, and each line of their
    sections but the timeline (with the companies as wildcards, since the seller fills those in first)."""
    values: set[str] = set()
    lines: list[re.Pattern[str]] = []
    for plan in starters:
        companies = [plan.prospect.company, plan.seller.company]
        values |= {plan.seller.name, plan.seller.email, *companies, *plan.seller.address, *plan.prospect.address}
        values |= {v for c in plan.prospect.contacts for v in (c.name, c.email)}
        for section in plan.sections:
            if section.kind == "timeline":
                continue
            for line in _body_lines(section.body):
                pattern, literal = re.escape(line), line
                for company in filter(None, companies):
                    pattern = pattern.replace(re.escape(company), ".+?")
                    literal = literal.replace(company, "")
                if len(literal.split()) >= 3:  # a line that is little more than a company would match anything
                    lines.append(re.compile(pattern, re.IGNORECASE))
    return StandIns(frozenset(v for v in values if v.strip()), tuple(lines))


def find(plan: Plan, stand: StandIns = NO_STAND_INS, source: str | None = None) -> list[Found]:
    """Every placeholder in the plan's fields, sections and steps, in the order they are written."""
    where = _Source(source)
    names = stand.names()
    out: list[Found] = []
    for label, text in _fields(plan):
        value = text.strip()
        if value and stand.holds(value):
            out.append(Found(value, label, where.front(value), starter=True))
        else:
            out += [Found(t, label, where.front(value) or where.front(t)) for t in _tokens(value, names)]
    for section in plan.sections:
        if section.kind == "timeline":
            continue
        label = f"the section {section.heading!r}" if section.heading else "the text before the first section"
        labels = {m.casefold() for m in _LINK_LABEL.findall(section.body)}
        for line in _body_lines(section.body):
            if any(p.fullmatch(line) for p in stand.lines):
                out.append(Found(line, label, where.section(section.heading, line), starter=True))
                continue
            out += [Found(t, label, where.section(section.heading, t)) for t in _tokens(line, names, labels)]
    for m in plan.milestones:
        for name, text in (("activity", m.title), ("owner", m.owner), ("notes", m.notes)):
            out += [Found(t, f"the {name} of {m.id}", m.line) for t in _tokens(text, names)]
    return out


def _fields(plan: Plan) -> Iterator[tuple[str, str]]:
    """(where, text) of each front matter value a seller types."""
    seller, prospect = plan.seller, plan.prospect
    yield from ((f"the seller's {name}", getattr(seller, name)) for name in ("company", "name", "title", "email"))
    yield from (("the seller's address", line) for line in seller.address)
    yield "the prospect's company", prospect.company
    yield from (("the prospect's address", line) for line in prospect.address)
    for number, contact in enumerate(prospect.contacts, start=1):
        yield f"the name of contact {number}", contact.name
        yield f"the title of contact {number}", contact.title
        yield f"the email of contact {number}", contact.email


def _body_lines(body: str) -> Iterator[str]:
    for line in body.split("\n"):
        text = _LIST_MARK.sub("", line).strip()
        if text:
            yield text


def _tokens(text: str, names: re.Pattern[str] | None, labels: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """The placeholders in one piece of text, each once."""
    found = [m.group(0) for m in _TEMPLATE.finditer(text)]
    found += [m.group(0) for m in _WORDS.finditer(text)]
    found += [m.group(0) for m in _ANGLE.finditer(text) if _angle_placeholder(m.group(1))]
    found += [
        m.group(0)
        for m in _SQUARE.finditer(text)
        if re.search(r"[^\W\d_]", m.group(1)) and not m.group(1).startswith("^") and m.group(1).casefold() not in labels
    ]
    if names is not None:
        found += [m.group(0) for m in names.finditer(text)]
    return list(dict.fromkeys(found))


def _angle_placeholder(inner: str) -> bool:
    """`<Prospect>` or `<company name>`, not an autolink, an address or an HTML tag."""
    if any(c in inner for c in ':@/="\''):
        return False
    return inner.split()[0].lower() not in _HTML


class _Source:
    """Where a text is in the plan's source: the first line holding it, in the front matter or in a section."""

    def __init__(self, source: str | None) -> None:
        self.lines = source.replace("\r\n", "\n").replace("\r", "\n").split("\n") if source is not None else []
        marks = [i for i, line in enumerate(self.lines) if line.strip() == "---"][:2]
        starts_with_yaml = bool(marks) and not any(line.strip() for line in self.lines[: marks[0]])
        self.body = marks[1] + 1 if starts_with_yaml and len(marks) == 2 else 0

    def front(self, needle: str) -> int | None:
        """The line of a front matter value."""
        return self._first(needle, 0, self.body)

    def section(self, heading: str, needle: str) -> int | None:
        """The line of a text in the section with this heading ("" for the text before the first one)."""
        start = self.body
        if heading:
            start = next(
                (i + 1 for i in range(self.body, len(self.lines)) if self.lines[i].strip() == f"## {heading}"), start
            )
        end = next((i for i in range(start, len(self.lines)) if self.lines[i].startswith("## ")), len(self.lines))
        return self._first(needle, start, end)

    def _first(self, needle: str, start: int, end: int) -> int | None:
        return next((i + 1 for i in range(start, end) if needle in self.lines[i]), None)
