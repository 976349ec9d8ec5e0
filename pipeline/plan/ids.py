"""Every identifier we put on mail, formatted and parsed in one place: our Message-IDs, the subject, X-Mutual-Plan.

A reply finds its plan by these alone, so each format lives here beside its parser and a test holds them inverse:
- `<plan.<id>.v<N>@<seller's domain>>` announces version N (the plan or update email);
- `<plan.<id>.v<N>.<kind>[.<hash of key>]@domain>` is any other email about version N (agreed, notice, reminder);
- `<mutualplan.<kind>.<hash of key>@domain>` is mail to the seller that belongs to no one plan (digest, plan error);
- the subject `Mutual Plan: <Prospect's short name> and <Seller>`, one per plan thread with no version in it
  (mail clients group a conversation by subject too), and `Re: ` before it in a thread; the subjects of older
  releases, `Mutual Plan: <Prospect> and <Seller> (version N)`, still read back;
- the header `X-Mutual-Plan: <id>; version=<N>` on everything we send, so our own mail is never read as a person's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.plan.identity import short_name
from pipeline.plan.model import Plan

MARK_HEADER = "X-Mutual-Plan"
# The kind's word in a Message-ID; plan and update both announce a version and share the version's id.
_KIND_WORD = {"plan": None, "update": None, "seller_notice": "notice"}
_OWN_ID = re.compile(r"^plan\.(?P<plan>[^@]+?)\.v(?P<version>\d{1,6})(?:\.[^@]*)?@(?P<domain>[^@]+)$", re.IGNORECASE)
_SUBJECT = re.compile(r"Mutual Plan: (?P<names>.+? and .+?)(?: \(version (?P<version>\d{1,6})\)|\s*$)")
# Reply prefixes of the common clients and languages: Re, Aw (German), Sv (Nordic), Antw (Dutch), R and Rif
# (Italian), Réf (French). A forward keeps its "Fwd:": answering it is not answering the plan email itself.
_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|antw|r|réf|rif)\s*:\s*)+", re.IGNORECASE)
_MARK = re.compile(r"^\s*(?P<plan>[^;\s]+)\s*;\s*version\s*=\s*(?P<version>\d{1,6})\s*$", re.IGNORECASE)


def bracketed(message_id: str) -> str:
    """A Message-ID as headers write it: `<id@host>`."""
    return f"<{bare(message_id)}>"


def bare(message_id: str) -> str:
    """A Message-ID without its angle brackets or surrounding space: `id@host`."""
    return message_id.strip().strip("<>").strip()


def _hash(key: str, length: int) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:length]


def message_id(plan: Plan, version: int, kind: str = "plan", key: str | None = None) -> str:
    """Our Message-ID for an email of `kind` about version `version` of a plan, on the seller's domain; `key` tells
    apart several emails of one kind and version (a notice per reply: the reply's Message-ID; a reminder per
    step, date and when)."""
    word = _KIND_WORD.get(kind, kind)
    parts = [f"plan.{plan.id}.v{version}"]
    if word:
        parts.append(word)
    if key:
        parts.append(_hash(key, 12))
    return f"<{'.'.join(parts)}@{plan.seller.domain}>"


def seller_message_id(kind: str, key: str, domain: str | None) -> str:
    """The Message-ID of mail to the seller that belongs to no one plan: one email per key, whatever retries."""
    return f"<mutualplan.{kind}.{_hash(key, 16)}@{domain or 'mutualplan.invalid'}>"


def plan_reference(message_id: str, domains: Iterable[str]) -> tuple[str, int] | None:
    """The (plan id, version) named by one of our Message-IDs on one of the seller's domains, else None."""
    found = _OWN_ID.match(bare(message_id))
    if not found:
        return None
    wanted = {d.lower().strip() for d in domains if d}
    if found.group("domain").lower() not in wanted:
        return None
    return found.group("plan"), int(found.group("version"))


def subject(plan: Plan) -> str:
    """`Mutual Plan: <Prospect's short name> and <Seller>`: the subject of every email in the plan's thread."""
    return f"Mutual Plan: {short_name(plan.prospect)} and {plan.seller.company}"


@dataclass(frozen=True)
class SubjectRef:
    """What a subject line of ours names: "<prospect> and <seller>" (a company's name may hold an "and" too, so
    `names_plan` tells whether a plan's names are these), and the version in subjects of older releases."""

    names: str
    version: int | None

    def names_plan(self, prospect_names: tuple[str, ...], seller: str) -> bool:
        """Whether the subject names a plan whose prospect goes by one of `prospect_names` and whose seller is
        `seller` (anything after them, a tag a server added, is not part of the names)."""
        return any(self.names == f"{p} and {seller}" or self.names.startswith(f"{p} and {seller} ")
                   for p in prospect_names)


def parse_subject(text: str | None) -> SubjectRef | None:
    """The companies (and version) a subject names, wherever our subject stands in it (after "Re: ", a tag)."""
    found = _SUBJECT.search((text or "").strip())
    if not found:
        return None
    version = int(found.group("version")) if found.group("version") else None
    return SubjectRef(found.group("names").strip(), version)


def strip_reply_prefixes(text: str) -> str:
    """A subject without its reply prefixes ("Re:", "AW:", "SV:" ...)."""
    return _PREFIX.sub("", text).strip()


def reply_subject(text: str | None) -> str | None:
    """`Re: <subject>` for an answer in a thread (mail clients group a conversation by subject too)."""
    if not text:
        return None
    stripped = strip_reply_prefixes(text)
    return f"Re: {stripped}" if stripped else None


def thread_subject(plan: Plan, answered: str | None = None) -> str:
    """The subject of an email of ours in a plan's thread: `Re: ` and the plan's one subject, or, in the thread of
    another email (the seller's own plan email), `Re: ` and that email's subject. Never a version: a subject that
    changes splits the conversation in Gmail and Outlook."""
    if answered and parse_subject(answered) is None:
        return reply_subject(answered) or subject(plan)
    return f"Re: {subject(plan)}" if answered else subject(plan)


def plan_mark(plan: Plan, version: int) -> str:
    """The X-Mutual-Plan header's value on our mail about a version."""
    return f"{plan.id}; version={version}"


def seller_mark(kind: str) -> str:
    """The X-Mutual-Plan header's value on our mail to the seller about no one plan (digest, plan error)."""
    return f"-; {kind}"


def parse_plan_mark(value: str | None) -> tuple[str, int] | None:
    """The (plan id, version) of an X-Mutual-Plan header's value, or None when it is not ours."""
    found = _MARK.match(value or "")
    return (found.group("plan"), int(found.group("version"))) if found else None
