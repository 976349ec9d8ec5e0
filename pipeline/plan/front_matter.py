"""The plan source's front matter: the YAML between `---` lines read into the plan's parties, target and id."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from pipeline.errors import PlanError
from pipeline.plan.identity import company_words
from pipeline.plan.model import ROLES, Contact, Plan, Prospect, Seller
from pipeline.plan.timeline import calendar_date

# `version` is the version an exported file was written from: `add` reads it, the plan's content does not.
KNOWN_KEYS = frozenset({"id", "letterhead", "seller", "prospect", "target", "timezone", "next_milestone", "version"})


# Long enough for "international-business-machines-consulting", short enough that the whole id stays readable.
_PROSPECT_WORDS, _PROSPECT_CHARS, _SELLER_CHARS = 4, 48, 20


def derive_id(prospect: str, seller: str, target: date | None) -> str:
    """An id from the prospect's distinctive words, the seller's first one and the target year:
    "Global Logistics Ltd" sold by "Northwind Analytics" by 2027-03-31 -> global-logistics-northwind-2027."""
    words = company_words(prospect)[:_PROSPECT_WORDS]
    while len(words) > 1 and len("-".join(words)) > _PROSPECT_CHARS:
        words.pop()
    parts = ["-".join(words)[:_PROSPECT_CHARS].strip("-") or "prospect"]
    seller_words = company_words(seller)
    if seller_words:
        parts.append(seller_words[0][:_SELLER_CHARS])
    if target:
        parts.append(str(target.year))
    return "-".join(p for p in parts if p)


def line_finder(fm_lines: list[str]) -> Callable[[str], int | None]:
    """The line number (1-based) of the first front matter line holding a text, for errors."""

    def line_of(needle: str) -> int | None:
        for i, line in enumerate(fm_lines, start=1):
            if needle and needle in line:
                return i
        return None

    return line_of


def plan_header(meta: dict[str, Any], line_of: Callable[[str], int | None]) -> Plan:
    """The plan the front matter says, without sections or milestones; every error names its line."""
    for key in meta:
        if key not in KNOWN_KEYS:
            raise PlanError(
                f"unknown front matter key {key!r}",
                line=line_of(f"{key}:"),
                hint=f"known keys: {', '.join(sorted(KNOWN_KEYS))}",
            )
    seller = _seller(meta.get("seller"), line_of)
    prospect = _prospect(meta.get("prospect"), line_of)
    target = _date_value(meta.get("target"), "target", line_of("target:"))
    timezone = str(meta.get("timezone") or "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PlanError(
            f"unknown timezone {timezone!r}",
            line=line_of("timezone:"),
            hint="use an IANA name such as America/Los_Angeles or Europe/Berlin",
        ) from None
    plan_id = str(meta.get("id") or derive_id(prospect.company, seller.company, target))
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,80}", plan_id):
        raise PlanError(
            f"plan id {plan_id!r} is not a valid id",
            line=line_of("id:"),
            hint="use lower-case letters, digits, dots and dashes, e.g. acme-northwind-2027",
        )
    letterhead = meta.get("letterhead")
    return Plan(
        id=plan_id,
        seller=seller,
        prospect=prospect,
        target=target,
        timezone=timezone,
        letterhead=str(letterhead) if letterhead else None,
    )


def read_front_matter(lines: list[str], *, required: bool) -> tuple[dict[str, Any], int]:
    """The front matter's mapping and the index of the first body line; without `---`, `{}` unless required."""
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start >= len(lines) or lines[start].strip() != "---":
        if required:
            raise PlanError(
                "the plan has no front matter",
                line=start + 1 if start < len(lines) else 1,
                hint="start the file with a `---` line, the YAML (prospect, contacts, target), and another `---`",
            )
        return {}, start
    for end in range(start + 1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        raise PlanError("the front matter never ends", line=start + 1, hint="close it with a `---` line")
    raw = "\n".join(lines[start + 1 : end])
    try:
        data = _load_yaml(raw)
    except PlanError as exc:
        # The YAML's own lines count from the one after `---`.
        raise PlanError(exc.reason, line=start + 1 + (exc.line or 1), hint=exc.hint) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = start + 2 + mark.line if mark is not None else start + 1
        problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]
        raise PlanError(
            f"the front matter is not valid YAML: {problem}",
            line=line,
            hint="check indentation and that values with ':' or '#' are quoted",
        ) from None
    if not isinstance(data, dict):
        raise PlanError("the front matter must be a YAML mapping (key: value lines)", line=start + 2)
    return data, end + 1


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`, mappings merged key by key (the front matter over the defaults)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _address(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split("\n") if p.strip())
    return tuple(_text(v) for v in value if _text(v))


def _seller(value: Any, line_of: Any) -> Seller:
    if value is None:
        raise PlanError(
            "the plan names no seller",
            line=1,
            hint="add a `seller:` block (company, name, email) or set [seller] in mutualplan.toml",
        )
    if not isinstance(value, dict) or not _text(value.get("company")):
        raise PlanError("seller needs a company", line=line_of("seller:"), hint="add `company: Your Company`")
    return Seller(
        company=_text(value["company"]),
        name=_text(value.get("name")),
        title=_text(value.get("title")),
        email=_text(value.get("email")).lower(),
        address=_address(value.get("address")),
    )


def _prospect(value: Any, line_of: Any) -> Prospect:
    if not isinstance(value, dict) or not _text(value.get("company")):
        raise PlanError(
            "the plan needs a prospect with a company",
            line=line_of("prospect:") or 1,
            hint="add `prospect:` with `company:` and `contacts:`",
        )
    contacts = []
    raw_contacts = value.get("contacts") or []
    if not isinstance(raw_contacts, list):
        raise PlanError("prospect.contacts must be a list", line=line_of("contacts:"))
    seen: set[str] = set()
    for raw in raw_contacts:
        if not isinstance(raw, dict):
            raise PlanError(
                f"a contact must be a mapping, not {raw!r}",
                line=line_of(str(raw)[:20]) or line_of("contacts:"),
                hint="write `- {name: Dana Whitfield, email: dana@acme.example, role: champion}`",
            )
        name = _text(raw.get("name"))
        line = line_of(name) if name else line_of("contacts:")
        email = _text(raw.get("email")).lower()
        if not name:
            raise PlanError("a contact has no name", line=line, hint="add `name:`")
        if not email:
            raise PlanError(f"contact {name!r} has no email", line=line, hint="add `email: name@company.example`")
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise PlanError(f"contact {name!r} has an invalid email {email!r}", line=line)
        if email in seen:
            raise PlanError(f"two contacts share the email {email!r}", line=line)
        seen.add(email)
        role = _text(raw.get("role")) or "other"
        if role not in ROLES:
            raise PlanError(
                f"contact {name!r} has an unknown role {role!r}", line=line, hint=f"use one of: {', '.join(ROLES)}"
            )
        confirms = raw.get("confirms", False)
        if not isinstance(confirms, bool):
            raise PlanError(f"contact {name!r}: confirms must be true or false", line=line)
        unknown = set(raw) - {"name", "email", "title", "role", "confirms"}
        if unknown:
            raise PlanError(f"contact {name!r} has unknown field(s): {', '.join(sorted(unknown))}", line=line)
        contacts.append(Contact(name=name, email=email, title=_text(raw.get("title")), role=role, confirms=confirms))
    return Prospect(company=_text(value["company"]), address=_address(value.get("address")), contacts=tuple(contacts),
                    short_name=_text(value.get("short_name")))


def _date_value(value: Any, what: str, line: int | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        raise PlanError(
            f"{what} {value.isoformat(sep=' ')!r} is a date and a time",
            line=line,
            hint=f"write the date alone, as YYYY-MM-DD: {value.date().isoformat()}",
        )
    if isinstance(value, date):
        return value
    return calendar_date(str(value), what=what, line=line)


# --- YAML -------------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML whose impossible dates and times (2027-02-30, 25:00) are PlanErrors naming their line."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """The date or date and time YAML reads, or a PlanError saying why it is none."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            _real_date(node, "the date")
            # The date is real, so the time is not.
            raise PlanError(
                f"{node.value!r} is not a real date and time",
                line=node.start_mark.line + 1,
                hint="write a date alone, as YYYY-MM-DD",
            ) from None


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_Loader.add_constructor(_TIMESTAMP, _Loader.construct_yaml_timestamp)


def _load_yaml(raw: str) -> Any:
    """The YAML's data; an impossible date or a comma that split a value inside `{...}` is a PlanError naming
    its line (1 = the YAML's first)."""
    loader = _Loader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, raw, "the date")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_nodes(node: yaml.Node, raw: str, what: str) -> None:
    """Dates named by their key (`target '2027-02-30'`), and in `{name: Smith, Jr.}` the `Jr.` YAML reads as a
    key with no value: say so and how to quote the value."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _TIMESTAMP:
            _real_date(node, what)
        return
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            _check_nodes(child, raw, what)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    pairs = node.value
    if node.flow_style:
        bare = [_bare_key(key, value, raw) for key, value in pairs]
        if any(bare):
            _split_value_error(pairs, bare)
    for key, value in pairs:
        _check_nodes(value, raw, str(key.value) if isinstance(key, yaml.ScalarNode) else what)


def _real_date(node: yaml.ScalarNode, what: str) -> None:
    day = re.match(r"\s*(\d{4}-\d{1,2}-\d{1,2})", node.value)
    calendar_date(day.group(1) if day else node.value, what=what, line=node.start_mark.line + 1)


def _bare_key(key: yaml.Node, value: yaml.Node, raw: str) -> bool:
    """A plain key written without a `:` (what a comma leaves behind), not a key with an empty value."""
    if not isinstance(key, yaml.ScalarNode) or key.style is not None:
        return False
    if not isinstance(value, yaml.ScalarNode) or value.tag != "tag:yaml.org,2002:null" or value.value:
        return False
    return raw[key.end_mark.index :].lstrip()[:1] in (",", "}", "")


def _split_value_error(pairs: list[tuple[yaml.Node, yaml.Node]], bare: list[bool]) -> None:
    """The error for the first run of bare keys: the value before them, quoted whole, is what to write."""
    first = bare.index(True)
    end = first
    while end < len(bare) and bare[end]:
        end += 1
    words = [str(key.value) for key, _ in pairs[first:end]]
    line = pairs[first][0].start_mark.line + 1
    if first == 0 or not isinstance(pairs[first - 1][1], yaml.ScalarNode):
        raise PlanError(
            f"{words[0]!r} has no `key:` in this `{{...}}`: a comma ends a value there",
            line=line,
            hint='write `key: value` pairs, and quote a value that holds a comma: name: "Smith, Jr."',
        )
    name, value = pairs[first - 1]
    whole = ", ".join([str(value.value), *words])
    read_as = "is read as a field of its own" if len(words) == 1 else "are read as fields of their own"
    raise PlanError(
        f"a comma inside the value of {name.value!r} ends it: {', '.join(map(repr, words))} {read_as}",
        line=line,
        hint=f"quote the value: {name.value}: {json.dumps(whole, ensure_ascii=False)}",
    )
