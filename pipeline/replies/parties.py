"""The buyer, the seller and their people as a reply names them, in the plan's own words: no name is built in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz.distance import OSA
from rapidfuzz.fuzz import ratio

from pipeline.plan.identity import short_company
from pipeline.plan.model import Contact, Plan
from pipeline.plan.names import name_key
from pipeline.replies.lexicon import STATUS_DONE, WEAK_CONFIRM, confirm_pattern, sign_will_pattern

_ME = {"i", "me", "myself"}
_BUYER = {"we", "us", "our team", "our side", "ourselves", "my team", "our company"}
_SELLER = {"you", "your team", "your side", "yourselves", "you guys", "your company"}
_JOINT = {"both", "both of us", "jointly", "together", "both teams", "joint"}
_ARTICLES = {"the", "a", "an"}
# Who signs the order: these roles, and the person who owns the step due on the target.
_SIGNING_ROLES = {"decision-maker", "economic-buyer"}
_OWNER_PERSON = re.compile(r"^[^()]*\((?P<person>[^()]*)\)\s*$")


@dataclass(frozen=True)
class Parties:
    """One plan's names for its two sides and its people, lower-case, and the patterns built from them."""

    buyer: frozenset[str]  # the prospect's company: its name, the words before a legal suffix, its first word
    seller: frozenset[str]  # the seller's company, the same way
    people: frozenset[str]  # every word of every contact's name and of the seller's name
    signers: tuple[str, ...]  # the full and first names of the contacts who sign, longest first
    confirm: re.Pattern[str]  # an agreement by "we", "I" or the buyer
    sign_will: re.Pattern[str]  # a date to sign by "we", "I", the buyer or a signer

    @classmethod
    def of(cls, plan: Plan) -> Parties:
        """The names of a plan's parties."""
        global _last
        if _last is not None and _last[0] is plan:
            return _last[1]
        parties = cls._of(plan)
        _last = (plan, parties)
        return parties

    @classmethod
    def _of(cls, plan: Plan) -> Parties:
        buyer = company_names(plan.prospect.company) | company_names(plan.prospect.short_name)
        signers = _longest_first({n for c in _signing_contacts(plan) for n in (c.name, *c.name.split()[:1])})
        people = {p.lower() for c in plan.prospect.contacts for p in c.name.split()}
        people |= {p.lower() for p in plan.seller.name.split()}
        return cls(
            buyer=buyer,
            seller=company_names(plan.seller.company),
            people=frozenset(people),
            signers=signers,
            confirm=confirm_pattern(_longest_first(buyer)),
            sign_will=sign_will_pattern(signers + _longest_first(buyer)),
        )


# Many replies are read against one plan, and a plan never changes: the names of the last one are kept.
_last: tuple[Plan, Parties] | None = None


def company_names(company: str) -> frozenset[str]:
    """A company as people write it, lower-case: its full name, the words before a legal suffix, its first word."""
    words = company.lower().split()
    if not words:
        return frozenset()
    names = {" ".join(words), short_company(company).lower()}
    first = words[0].strip(",.")
    if first and first not in _ARTICLES:
        names.add(first)
    return frozenset(names)


def signature_id(plan: Plan) -> str | None:
    """The step due on the target itself ("T"): the signature."""
    step = next((m for m in plan.milestones if m.due.strip().upper() == "T"), None)
    return step.id if step else None


def _signing_contacts(plan: Plan) -> list[Contact]:
    contacts = [c for c in plan.prospect.contacts if c.role in _SIGNING_ROLES]
    step = plan.milestone(signature_id(plan) or "")
    if step:
        # The owner of the signature, "<Company> (<person>)" or a person alone: whichever contact it names.
        owner = _OWNER_PERSON.match(step.owner)
        contacts += plan.contacts_named(owner.group("person") if owner else step.owner)
    return contacts


def _longest_first(names: set[str] | frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted({n.lower() for n in names if n.strip()}, key=lambda n: (-len(n), n)))


# --- people -----------------------------------------------------------------------------------


def resolve_person(text: str, plan: Plan, sender: str | None) -> str | None:
    """An owner as a reply names one: a contact's full name, `buyer`, `seller`, `joint`, or None if unsure."""
    raw = re.sub(r"\s+", " ", text.strip().strip(".,;:!?")).strip()
    word = raw.lower()
    word = re.sub(r"^(?:the\s+)", "", word)
    if not word:
        return None
    if word in _ME:
        if sender:
            contact = plan.contact(sender)
            if contact:
                return contact.name
            if plan.seller.email and plan.seller.email.lower() == sender.lower():
                return plan.seller.name or "seller"
        return None
    # Companies compare folded, so "Societe" is "Société" and "ACME" is "Acme".
    buyer_words = _folded(_BUYER | company_names(plan.prospect.company) | company_names(plan.prospect.short_name))
    seller_words = _folded(_SELLER | company_names(plan.seller.company))
    key = name_key(word)
    if key in buyer_words or (key.endswith(" team") and key.split()[0] in buyer_words):
        return "buyer"
    if key in seller_words or (key.endswith(" team") and key.split()[0] in seller_words):
        return "seller"
    if word in _JOINT:
        return "joint"
    people = [c.name for c in plan.prospect.contacts]
    if plan.seller.name:
        people.append(plan.seller.name)
    matches = [p for p in people if _names(p, raw)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        return None
    # Someone the plan does not know yet, written as a name: kept as written.
    if re.fullmatch(r"[A-Z][a-zA-Z'’-]+(?: [A-Z][a-zA-Z'’-]+){0,2}", raw):
        return raw
    return None


def _folded(names: set[str] | frozenset[str]) -> set[str]:
    return {name_key(n) for n in names}


def _names(full: str, text: str) -> bool:
    parts = name_key(full).split()
    said = name_key(text).split()
    if not said or not parts:
        return False
    if said == parts:
        return True
    if len(said) == 1:
        return said[0] in parts or any(len(p) >= 5 and OSA.distance(said[0], p) <= 1 for p in parts)
    return ratio(" ".join(said), " ".join(parts)) >= 90


def same_owner(plan: Plan, milestone_id: str, owner: str) -> bool:
    """Whether a step already has this owner, however the plan writes it."""
    milestone = plan.milestone(milestone_id)
    if milestone is None:
        return False
    try:
        current = plan.resolve_owner(milestone.owner)
    except Exception:
        return False
    if owner in ("buyer", "seller", "joint"):
        return current.side == owner and current.person is None
    if not current.person:
        return False
    # An owner written "<Company> (<first name>)" and the contact's full name are the same person.
    return current.person.lower() == owner.lower() or resolve_person(current.person, plan, None) == owner


def is_person(title: str, parties: Parties) -> bool:
    """A would-be title that names people ("me", "them", a contact), not an activity."""
    words = title.split()
    if not words:
        return True
    first = words[0].lower()
    if first in ("me", "us", "him", "her", "them", "you", "it", "this", "that"):
        return True
    return len(words) <= 3 and all(w.lower() in parties.people for w in words)


def is_name_line(sentence: str, parties: Parties) -> bool:
    """A line that only signs the reply with a name."""
    words = sentence.strip(" .,!").split()
    if not words or len(words) > 3:
        return False
    if parties.confirm.search(sentence) or WEAK_CONFIRM.match(sentence) or STATUS_DONE.search(sentence):
        return False  # "Done." under a quoted step is an answer, not a name
    return all(
        w.lower().strip(".,") in parties.people or (w[:1].isupper() and len(words) <= 2 and w.isalpha()) for w in words
    )
