"""Frozen dataclasses for a Mutual Plan and the changes made to it; no I/O, no clock."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field, fields, replace
from datetime import date
from enum import StrEnum
from typing import Any

from pipeline.errors import ChangeError, PlanError
from pipeline.plan.names import name_key, names_person

ROLES = (
    "champion",
    "decision-maker",
    "economic-buyer",
    "technical",
    "procurement",
    "legal",
    "executive-sponsor",
    "other",
)
STATUSES = ("proposed", "confirmed", "done", "dropped")
PHASES = ("before", "after")
SIDES = ("seller", "buyer", "joint")

# Canonical section kinds, in the order a letter presents them.
SECTION_KINDS = ("vision", "issues", "solutions", "value", "decision", "timeline", "cta")
SECTION_TITLES = {
    "vision": "Differentiated VisionMatch",
    "issues": "Business issues",
    "solutions": "Solutions",
    "value": "Business value",
    "decision": "Decision process",
    "timeline": "Timeline",
    "cta": "Call to action",
}

MILESTONE_ID = re.compile(r"^M([1-9]\d*)$")


@dataclass(frozen=True)
class Contact:
    """A person on the prospect's side; `confirms` marks whose confirmation makes the plan agreed."""

    name: str
    email: str
    title: str = ""
    role: str = "other"
    confirms: bool = False


@dataclass(frozen=True)
class Seller:
    """The selling company and the person who owns the plan."""

    company: str
    name: str = ""
    title: str = ""
    email: str = ""
    address: tuple[str, ...] = ()

    @property
    def domain(self) -> str:
        """The domain of the seller's address, used for our Message-IDs."""
        return self.email.rpartition("@")[2].lower() or "mutualplan.invalid"


@dataclass(frozen=True)
class Prospect:
    """The buying company and its people; `short_name` is how subjects and greetings name it (say "Acme")."""

    company: str
    address: tuple[str, ...] = ()
    contacts: tuple[Contact, ...] = ()
    short_name: str = ""  # as written; plan/identity.py's short_name gives the default


@dataclass(frozen=True)
class Milestone:
    """One step of the timeline; `due` is the expression as written (ISO date, T-30d, M3+3d) or ""."""

    id: str
    title: str
    owner: str = ""
    due: str = ""
    status: str = "proposed"
    notes: str = ""
    phase: str = "before"
    # Where the milestone was written, for error messages; not part of its identity.
    line: int | None = field(default=None, compare=False, repr=False)

    @property
    def number(self) -> int:
        """The number of an `M<n>` id."""
        m = MILESTONE_ID.match(self.id)
        return int(m.group(1)) if m else 0


@dataclass(frozen=True)
class Section:
    """A `##` section: its heading as written, its canonical kind ("" for a free section), its Markdown."""

    heading: str
    kind: str
    body: str


@dataclass(frozen=True)
class Owner:
    """Who owns a milestone: a side and, optionally, a person."""

    side: str  # one of SIDES, or "" when the owner is blank
    person: str | None = None


@dataclass(frozen=True)
class Plan:
    """A Mutual Plan as the seller wrote it; dates stay expressions until timeline.resolve()."""

    id: str
    seller: Seller
    prospect: Prospect
    target: date | None
    timezone: str = "UTC"
    letterhead: str | None = None
    sections: tuple[Section, ...] = ()
    milestones: tuple[Milestone, ...] = ()
    # The next milestone number never used in this plan: ids are not reused after a removal.
    next_number: int = 1
    after_heading: str = "After the PO"

    def section(self, kind: str) -> Section | None:
        """The section of a canonical kind, if the plan has one."""
        return next((s for s in self.sections if s.kind == kind), None)

    def milestone(self, milestone_id: str) -> Milestone | None:
        """The milestone with this id, if any."""
        return next((m for m in self.milestones if m.id == milestone_id), None)

    @property
    def confirmers(self) -> tuple[Contact, ...]:
        """The contacts whose confirmation makes the plan mutually agreed."""
        return tuple(c for c in self.prospect.contacts if c.confirms)

    def contact(self, email: str) -> Contact | None:
        """The contact with this address (case-insensitive)."""
        email = email.lower()
        return next((c for c in self.prospect.contacts if c.email.lower() == email), None)

    def contacts_named(self, name: str) -> tuple[Contact, ...]:
        """The contacts a name written in the plan can mean: one who has it in full, else all it names a part of."""
        named = tuple(c for c in self.prospect.contacts if names_person(c.name, name))
        full = tuple(c for c in named if name_key(c.name) == name_key(name))
        return full or named

    def next_id(self) -> str:
        """The id a new milestone gets."""
        return f"M{self.next_number}"

    def resolve_owner(self, text: str, *, line: int | None = None) -> Owner:
        """Read an owner as written ("Northwind", "Acme (Dana)", "Joint", "Raj Patel") into an Owner."""
        return resolve_owner(self, text, line=line)


# --- owners -----------------------------------------------------------------------------------

_OWNER = re.compile(r"^\s*(?P<who>[^()]*?)\s*(?:\((?P<person>[^()]*)\))?\s*$")
_SELLER_WORDS = {"seller", "vendor", "we", "us"}
_BUYER_WORDS = {"buyer", "prospect", "customer", "client"}
_JOINT_WORDS = {"joint", "both", "all", "mutual", "together"}


def resolve_owner(plan: Plan, text: str, *, line: int | None = None) -> Owner:
    """Read an owner; a blank owner is Owner(""); an owner naming nobody is a PlanError."""
    # NFKC first: a CJK keyboard's full-width parentheses are parentheses.
    text = unicodedata.normalize("NFKC", text or "")
    m = _OWNER.match(text)
    if not m or not text.strip():
        return Owner("")
    who, person = m.group("who").strip(), (m.group("person") or "").strip() or None
    key = name_key(who)
    seller_keys, buyer_keys = _company_keys(plan.seller.company), _company_keys(plan.prospect.company)
    if plan.prospect.short_name:
        buyer_keys.add(name_key(plan.prospect.short_name))
    if key in seller_keys | _SELLER_WORDS:
        return Owner("seller", person)
    if key in buyer_keys | _BUYER_WORDS:
        return Owner("buyer", person)
    if key in _JOINT_WORDS:
        return Owner("joint", person)
    if not person:
        # A bare person's name: a contact of the prospect (kept as written when it could be two), or the seller.
        named = plan.contacts_named(who)
        if named:
            return Owner("buyer", named[0].name if len(named) == 1 else who)
        if plan.seller.name and names_person(plan.seller.name, who):
            return Owner("seller", plan.seller.name)
    first = plan.prospect.contacts[0].name.split()[0] if plan.prospect.contacts else "name"
    raise PlanError(
        f"owner {text!r} names nobody in the plan",
        line=line,
        hint=(
            f"write {plan.seller.company!r} or 'Seller', {plan.prospect.company!r} or 'Buyer', or 'Joint'; "
            f"a person may follow in parentheses, e.g. '{(plan.prospect.company.split() or ['Buyer'])[0]} ({first})'; "
            "leave it empty while nobody owns the step"
        ),
    )


def _company_keys(company: str) -> set[str]:
    """How an owner may write a company: whole, by its first word, or without its legal form (as subjects do)."""
    from pipeline.plan.identity import short_company  # identity reads this module's Prospect

    whole = name_key(company)
    return {k for k in (whole, whole.split()[0] if whole else "", name_key(short_company(company))) if k}


def owner_text(plan: Plan, owner: str) -> str:
    """The owner as a letter writes it: a change's "buyer"/"seller"/"joint" or a person, made readable."""
    word = name_key(owner)
    if word in _BUYER_WORDS:
        return plan.prospect.company
    if word in _SELLER_WORDS:
        return plan.seller.company
    if word in _JOINT_WORDS:
        return "Joint"
    named = plan.contacts_named(owner)
    if named:
        return f"{plan.prospect.company.split()[0]} ({named[0].name})"
    if plan.seller.name and names_person(plan.seller.name, owner):
        return f"{plan.seller.company.split()[0]} ({plan.seller.name})"
    return owner


# --- changes ----------------------------------------------------------------------------------

CHANGE_OPS = ("move", "add", "remove", "reassign", "retarget", "status", "rename")
_CHANGE_FIELDS = ("milestone", "due", "title", "owner", "before", "after", "target", "status")


@dataclass(frozen=True)
class Change:
    """One requested change, in the `changes` format of the reply spec; dates are ISO strings."""

    op: str
    milestone: str | None = None
    due: str | None = None
    title: str | None = None
    owner: str | None = None
    before: str | None = None
    after: str | None = None
    target: str | None = None
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: `add` always carries title, owner, due (null when unsaid)."""
        out: dict[str, Any] = {"op": self.op}
        for name in _CHANGE_FIELDS:
            value = getattr(self, name)
            if value is not None or (self.op == "add" and name in ("title", "owner", "due")):
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Any, *, index: int | None = None) -> Change:
        """Read one change, naming what is wrong with it."""
        where = f"change {index + 1}" if index is not None else "change"
        if not isinstance(data, dict):
            raise ChangeError(
                f"{where} is not an object", hint='write e.g. {"op": "move", "milestone": "M3", "due": "2027-03-08"}'
            )
        op = data.get("op")
        if op == "done" and "status" not in data:  # the reply spec's `done`: a status of done
            data, op = {**data, "op": "status", "status": "done"}, "status"
        if op not in CHANGE_OPS:
            raise ChangeError(f"{where}: unknown op {op!r}", hint=f"use one of: done, {', '.join(CHANGE_OPS)}")
        unknown = set(data) - {"op", *_CHANGE_FIELDS}
        if unknown:
            raise ChangeError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        values = {k: data.get(k) for k in _CHANGE_FIELDS}
        for k, v in values.items():
            if v is not None and not isinstance(v, str):
                raise ChangeError(f"{where}: {k} must be a string, not {v!r}")
        required = {
            "move": ("milestone", "due"),
            "add": ("title",),
            "remove": ("milestone",),
            "reassign": ("milestone", "owner"),
            "retarget": ("target",),
            "status": ("milestone", "status"),
            "rename": ("milestone", "title"),
        }[op]
        missing = [k for k in required if not values.get(k)]
        if missing:
            raise ChangeError(f"{where}: a {op} needs {', '.join(missing)}")
        for k in ("due", "target"):
            if (iso := values[k]) is not None:
                try:
                    date.fromisoformat(iso)
                except ValueError:
                    raise ChangeError(f"{where}: {k} {values[k]!r} is not an ISO date (YYYY-MM-DD)") from None
        if values["status"] is not None and values["status"] not in STATUSES:
            raise ChangeError(
                f"{where}: unknown status {values['status']!r}", hint=f"use one of: {', '.join(STATUSES)}"
            )
        return cls(op=op, **values)


# --- the canonical form -----------------------------------------------------------------------


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as plain data, with due expressions as written; the inverse of plan_from_dict."""
    return {
        "id": plan.id,
        "letterhead": plan.letterhead,
        "seller": {f.name: _plain(getattr(plan.seller, f.name)) for f in fields(Seller)},
        "prospect": {
            "company": plan.prospect.company,
            "address": list(plan.prospect.address),
            "contacts": [{f.name: getattr(c, f.name) for f in fields(Contact)} for c in plan.prospect.contacts],
            # Only when written: the plans stored before it existed keep their hashes.
            **({"short_name": plan.prospect.short_name} if plan.prospect.short_name else {}),
        },
        "target": plan.target.isoformat() if plan.target else None,
        "timezone": plan.timezone,
        "sections": [{"heading": s.heading, "kind": s.kind, "body": s.body} for s in plan.sections],
        "milestones": [
            {f.name: getattr(m, f.name) for f in fields(Milestone) if f.name != "line"} for m in plan.milestones
        ],
        "next_number": plan.next_number,
        "after_heading": plan.after_heading,
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """Rebuild a plan from plan_to_dict's output."""
    seller = data["seller"]
    prospect = data["prospect"]
    return Plan(
        id=data["id"],
        letterhead=data.get("letterhead"),
        seller=Seller(**{**seller, "address": tuple(seller.get("address") or ())}),
        prospect=Prospect(
            company=prospect["company"],
            address=tuple(prospect.get("address") or ()),
            contacts=tuple(Contact(**c) for c in prospect.get("contacts") or ()),
            short_name=prospect.get("short_name") or "",
        ),
        target=date.fromisoformat(data["target"]) if data.get("target") else None,
        timezone=data.get("timezone") or "UTC",
        sections=tuple(Section(**s) for s in data.get("sections") or ()),
        milestones=tuple(Milestone(**m) for m in data.get("milestones") or ()),
        next_number=int(data.get("next_number") or 1),
        after_heading=data.get("after_heading") or "After the PO",
    )


def canonical_json(plan: Plan) -> str:
    """The one serialization hashed, stored and embedded in the letter: sorted keys, no spaces."""
    return json.dumps(plan_to_dict(plan), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_hash(plan: Plan) -> str:
    """SHA-256 of the canonical JSON."""
    return hashlib.sha256(canonical_json(plan).encode("utf-8")).hexdigest()


def with_milestones(plan: Plan, milestones: tuple[Milestone, ...] | list[Milestone]) -> Plan:
    """The plan with another timeline, keeping the id counter ahead of every id used."""
    milestones = tuple(milestones)
    top = max((m.number for m in milestones), default=0)
    return replace(plan, milestones=milestones, next_number=max(plan.next_number, top + 1))


class Reason(StrEnum):
    """Why a version was made; stored as its text, which `history` and the archive show."""

    CREATED = "created"  # version 1 from a plan file
    SELLER_EDIT = "seller edit"  # a plan file with the seller's edits
    CHANGES = "changes"  # a list of changes applied by command
    REPLY = "reply"  # the prospect's reply asked for the changes
    SELLER_EMAIL = "seller email"  # the seller's own email in the thread asked for them
    PLAN_EMAIL = "plan email"  # version 1 from a plan the seller typed in an email
    MARKED_DONE = "seller marked done"  # the seller marked a step done
    AGREEMENT = "agreement recorded"  # every confirming contact confirmed: the plan's own step of agreement is done

    @property
    def whole_plan(self) -> bool:
        """Whether the seller wrote the version whole: a plan file, or version 1 typed in an email."""
        return self in (Reason.CREATED, Reason.SELLER_EDIT, Reason.PLAN_EMAIL)


@dataclass(frozen=True)
class Version:
    """One immutable version of a plan: what it says, who asked for it, and why."""

    plan_id: str
    number: int
    plan: Plan
    created: str  # ISO 8601 UTC timestamp; the letter's date comes from here, never from the clock
    author: str  # the address of who asked (the seller for their own edits)
    reason: str  # a Reason's text; kept as text so that a version stored by any release reads back
    changes: tuple[Change, ...] = ()
    message_id: str | None = None  # the email the changes came from
    parent_hash: str | None = None

    @property
    def hash(self) -> str:
        """SHA-256 of the plan's canonical JSON."""
        return plan_hash(self.plan)
