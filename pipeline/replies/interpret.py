"""What a reply asks for: intent, confirmations and precise changes, never a maybe read as a yes.

A reply is read sentence by sentence, in this order: greetings, closings and a signing name are skipped; a
refusal of the deal declines it; each clause is tried for a change (a new target, a step done, removed, given a
new owner, added, moved), and a sentence's clauses apply all or nothing; a sentence without a change may agree to
the plan or to some steps; a request that maps to nothing is left to the seller, as the sentence itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.plan.ids import bare
from pipeline.plan.model import Change, Plan
from pipeline.plan.timeline import resolve
from pipeline.replies.agreement import Agreement
from pipeline.replies.dates import find_dates, month_named
from pipeline.replies.extract import Block, Extraction, extract
from pipeline.replies.lexicon import (
    ASKS,
    CHANGE_WORDS,
    CLOSING,
    DECLINE,
    DEFER,
    FILLER,
    GREETING,
    REQUEST,
    RETRACT,
    TARGET,
)
from pipeline.replies.message import Incoming
from pipeline.replies.moves import read_move, read_retarget
from pipeline.replies.names import Mention
from pipeline.replies.parties import is_name_line
from pipeline.replies.scope import Scope
from pipeline.replies.sentences import MAX_SENTENCE_CHARS, split_clauses, split_sentences
from pipeline.replies.steps import read_add, read_reassign, read_remove, read_rename, read_status

INTENTS = ("confirm", "amend", "decline", "comment", "ignore")
MAX_SENTENCES = 200
MAX_UNRESOLVED = 20

# The readers of changes, in the order a clause is tried: the first that finds its kind of change decides.
_CHANGE_READERS = (read_rename, read_retarget, read_status, read_remove, read_reassign, read_add, read_move)


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What a reply's own text says about a plan."""

    intent: str
    confirms: str | tuple[str, ...]
    changes: tuple[Change, ...]
    unresolved: tuple[str, ...]
    text: str
    requests: tuple[str, ...] = ()  # of `unresolved`, those that asked to change the plan
    origins: tuple[str, ...] = ()  # the sentence each of `changes` was read from


@dataclass(frozen=True)
class Interpretation:
    """A reply read against a plan: who sent it, what kind of message it is, and what it asks."""

    sender: str | None
    authorized: bool
    kind: str
    intent: str
    confirms: str | tuple[str, ...]
    changes: tuple[Change, ...]
    unresolved: tuple[str, ...]
    text: str
    message_id: str = ""
    subject: str = ""
    reply_date: date | None = None
    kind_reason: str = ""
    requests: tuple[str, ...] = ()  # of `unresolved`, those that asked to change the plan (not in the JSON)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of `mutualplan parse-reply --json`."""
        return {
            "from": self.sender,
            "authorized": self.authorized,
            "kind": self.kind,
            "intent": self.intent,
            "confirms": self.confirms if isinstance(self.confirms, str) else list(self.confirms),
            "changes": [_spec_change(c) for c in self.changes],
            "unresolved": list(self.unresolved),
            "text": self.text,
            "message_id": self.message_id,
            "subject": self.subject,
            "date": self.reply_date.isoformat() if self.reply_date else None,
        }


# --- entry points -----------------------------------------------------------------------------


def read_reply(
    message: Incoming,
    plan: Plan,
    *,
    received: datetime | None = None,
    due: Mapping[str, date | None] | None = None,
    ours: str = "",
) -> Interpretation:
    """Interpret a received message against the plan it answers; `ours` (echo.corpus of the emails we sent) is never
    read as the sender's words."""
    when = message.date or received
    reply_date = local_date(when, plan.timezone) if when else None
    sender = message.sender
    authorized = bool(
        sender and (plan.contact(sender) is not None or (plan.seller.email and plan.seller.email.lower() == sender))
    )
    try:
        extraction = extract(message)
    except Exception:  # a body no rule can read is still a message for the seller to see
        extraction = Extraction(
            text=message.text[:5000], blocks=(Block(message.text[:5000]),), inline=False, removed=()
        )
    if ours:
        from pipeline.replies.echo import without_ours

        extraction = without_ours(extraction, ours).extraction
    made = partial(
        Interpretation,
        sender=sender,
        authorized=authorized,
        kind=message.kind,
        message_id=message.message_id,
        subject=message.subject,
        reply_date=reply_date,
        kind_reason=message.kind_reason,
    )
    if message.kind != "human":
        return made(intent="ignore", confirms=(), changes=(), unresolved=(), text=extraction.text)
    reading = interpret(extraction, plan, reply_date, due=due, sender=sender, plan_answer=answers_plan(message, plan))
    return made(
        intent=reading.intent,
        confirms=reading.confirms,
        changes=reading.changes,
        unresolved=reading.unresolved,
        text=reading.text,
        requests=reading.requests,
    )


def answers_plan(message: Incoming, plan: Plan) -> bool:
    """Whether a reply answers the plan (or update) email itself: its In-Reply-To is that email's Message-ID,
    not a reminder's or a notice's (those carry a kind after the version)."""
    own = re.compile(rf"^plan\.{re.escape(plan.id)}\.v\d{{1,6}}@{re.escape(plan.seller.domain or '')}$", re.I)
    keys = message.in_reply_to or message.references[-1:]
    return bool(plan.seller.domain) and any(own.match(bare(k)) for k in keys)


def local_date(when: datetime, timezone: str) -> date:
    """The calendar day of an instant in the plan's timezone (UTC when the zone is unknown)."""
    try:
        zone = ZoneInfo(timezone)
    except Exception:
        zone = ZoneInfo("UTC")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.astimezone(zone).date()
    except (OverflowError, ValueError):
        return when.date()


def interpret(
    text: str | Extraction,
    plan: Plan,
    reply_date: date | None,
    *,
    due: Mapping[str, date | None] | None = None,
    sender: str | None = None,
    plan_answer: bool = False,
) -> Reading:
    """Read the new text of a reply against a plan; dates are relative to `reply_date`; `plan_answer` says the
    reply answers the plan email itself, so a bare "Yes" agrees to it."""
    extraction = text if isinstance(text, Extraction) else extract(text)
    if due is None:
        try:
            due = resolve(plan)
        except Exception:
            due = {m.id: None for m in plan.milestones}
    reader = _Reader(plan, dict(due), reply_date, sender, plan_answer=plan_answer)
    try:
        reader.read(extraction)
    except RecursionError:
        reader.unresolved.append(_Unresolved(extraction.text[:MAX_SENTENCE_CHARS], frozenset()))
    return reader.result(extraction.text)


# --- the reader -------------------------------------------------------------------------------


@dataclass
class _Unresolved:
    sentence: str
    topics: frozenset[str]  # milestone ids (or "target") the sentence was about
    request: bool = True  # it asked to change the plan (else a question or a remark for the seller)
    whole: bool = False  # several requests, none applied: told even when another sentence changed its steps


@dataclass
class _Reader(Scope):
    """A reply read sentence by sentence against its plan, into a Reading."""

    unresolved: list[_Unresolved] = field(default_factory=list)
    declined: bool = False
    plan_answer: bool = False  # the reply answers our plan email (not a reminder, not a question of ours)
    question: bool = False  # the quoted line the block answers asks a question
    quoted_month: int | None = None  # the month the quoted line answered names ("Wed 10 Feb 2027")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.agreement = Agreement(
            self.parties.confirm, self.matcher.ids, self.today, self._unresolve, self.due, self.plan_answer
        )
        self.count = 0

    # --- walking the text ---

    def read(self, extraction: Extraction) -> None:
        """Read every sentence of every block, up to MAX_SENTENCES."""
        for block in extraction.blocks:
            context = self._context_milestone(block)
            self.question = bool(block.context) and block.context[-1].rstrip().endswith("?")
            self.quoted_month = month_named(block.context[-1]) if block.context else None
            previous: str | None = None
            for sentence in split_sentences(block.text):
                self.count += 1
                if self.count > MAX_SENTENCES:
                    return
                mark = len(self.changes)
                try:
                    previous = self._sentence(sentence, context, previous)
                except (OverflowError, ValueError, RecursionError):
                    # A date past the calendar's end ("next Friday" from 31 Dec 9999): the seller reads it, and
                    # nothing the sentence's first clauses asked for is applied without the rest.
                    self.drop_since(mark)
                    self._unresolve(sentence, [], whole=True)

    def _context_milestone(self, block: Block) -> str | None:
        for line in reversed(block.context):
            mid = self.matcher.in_quote(line)
            if mid:
                return mid
        return None

    def _sentence(self, sentence: str, context: str | None, previous: str | None) -> str | None:
        """Read one sentence; returns the milestone it was about, for a pronoun in the next one."""
        s = sentence.strip()
        self.sentence = _normal(s)
        self.month = month_named(s) or self.quoted_month
        if RETRACT.search(s):
            self.agreement.blocked = True  # before the skipping of short lines: "NOT." alone takes back a yes
        if DEFER.search(s) and not re.search(r"\b(?:if|in case|should)\b", s, re.IGNORECASE):
            self.agreement.deferred = True  # "I'll confirm once Raj has seen it": the whole plan waits
        if not s or GREETING.match(s) or CLOSING.match(s) or FILLER.match(s) or is_name_line(s, self.parties):
            return previous
        mentions = self.matcher.mentions(s)
        resolved = [m.resolved for m in mentions if m.resolved and not m.explicit]
        resolved += [i for m in mentions if m.explicit for i in m.ids]
        about = resolved[-1] if len(set(resolved)) == 1 else previous if not mentions else None
        # "it" points at the step this sentence names, else the quoted line answered, else the last sentence's.
        default = about if about and mentions else context or previous

        if DECLINE.search(s) and not _names_only_milestones(s, mentions, self.signature):
            self.declined = True
            return about
        clauses = split_clauses(s)
        made = self._clauses(clauses, default, context)
        if made is None:
            self._unresolve(s, mentions, whole=len(clauses) > 1)
            return about
        if made:
            self.agreement.read(s, mentions, context, changed=True, question=self.question)
            return about
        if self.agreement.read(s, mentions, context, changed=False, question=self.question):
            return about
        dated = bool(mentions and find_dates(s, self.today))
        if REQUEST.search(s) or dated:
            # A question or a remark is told as such; only what asks to change the plan is "not mapped".
            self._unresolve(s, mentions, request=bool(CHANGE_WORDS.search(s)) or dated)
        return about

    def _clauses(self, clauses: list[str], default: str | None, context: str | None) -> bool | None:
        """Read a sentence's clauses, all or nothing: whether they made changes, or None when one asked for
        something that could not be mapped (then nothing of the sentence is kept, the seller reads it whole)."""
        mark = len(self.changes)
        results: list[bool | None] = []
        for clause in clauses:
            results.append(self._changes(clause, default, context))
            if results[-1] is False:
                break
        made = True in results
        left_out = made and any(r is None and self._asks(c) for c, r in zip(clauses, results, strict=False))
        if False in results or left_out:
            self.drop_since(mark)
            return None
        return made

    def _asks(self, clause: str) -> bool:
        """Whether a clause that made no change asked for something ("and can your team present to our board?")."""
        if not re.sub(r"\b(?:please|pls|also|and|then|thanks|thank you|too)\b|\W", "", clause, flags=re.I):
            return False
        if self.parties.confirm.search(clause) and not CHANGE_WORDS.search(clause):
            return False  # "..., and the rest looks good"
        # A step and a date alone ("the workshop on the 30th is a Saturday; please move it") explain, not ask.
        return bool(ASKS.search(clause))

    def _unresolve(self, sentence: str, mentions: list[Mention], *, request: bool = True, whole: bool = False) -> None:
        topics = {i for m in mentions for i in m.ids}
        if TARGET.search(sentence) or self.parties.sign_will.search(sentence):
            topics.add("target")
        text = _normal(sentence)
        if len(self.unresolved) < MAX_UNRESOLVED and all(u.sentence != text for u in self.unresolved):
            self.unresolved.append(_Unresolved(text, frozenset(topics), request, whole))

    def _changes(self, clause: str, default: str | None, context: str | None) -> bool | None:
        """True when the clause made changes, False when it asked for one that cannot be mapped, else None."""
        for read_change in _CHANGE_READERS:
            result = read_change(self, clause, default, context)
            if result is not None:
                return result
        return None

    # --- the answer ---

    def result(self, text: str) -> Reading:
        """What the reply asks for, all sentences read."""
        agreement = self.agreement
        changes = tuple(self.changes)
        touched = (
            {c.milestone for c in changes if c.milestone}
            | {c.before for c in changes if c.before}
            | {c.after for c in changes if c.after}
        )
        if any(c.op == "retarget" for c in changes):
            touched.add("target")
        # A sentence about a step that another sentence changed was its explanation, not a second request.
        kept = [u for u in self.unresolved if u.whole or not (u.topics and u.topics <= touched)]
        unresolved = tuple(u.sentence for u in kept)
        requests = tuple(u.sentence for u in kept if u.request)
        open_topics = {t for u in kept for t in u.topics}
        if self.declined:
            return Reading("decline", (), (), unresolved, text, requests)
        if changes:
            confirms: list[str] = [i for i in agreement.partial if i not in touched and i not in agreement.blocked_ids]
            if agreement.confirm_rest or (agreement.confirm_all and not agreement.blocked):
                held = touched | open_topics | agreement.blocked_ids
                confirms = [m.id for m in self.plan.milestones if m.id not in held]
            return Reading("amend", tuple(confirms), changes, unresolved, text, requests, tuple(self.origins))
        change_like = any(_looks_like_change(u.sentence) for u in self.unresolved)
        clean = not agreement.blocked and not agreement.deferred and not agreement.blocked_ids and not change_like
        if (agreement.confirm_all or agreement.confirm_rest) and clean and not agreement.partial:
            return Reading("confirm", "all", (), unresolved, text, requests)
        if agreement.short_yes and clean and not agreement.partial and not self.unresolved:
            return Reading("confirm", "all", (), unresolved, text, requests)  # "Yes" to the plan, nothing else
        partial = tuple(i for i in agreement.partial if i not in agreement.blocked_ids)
        return Reading("comment", partial, (), unresolved, text, requests)


# --- helpers ----------------------------------------------------------------------------------


def _normal(sentence: str) -> str:
    """A sentence as it is told to the seller: spaces collapsed, at most MAX_SENTENCE_CHARS."""
    return re.sub(r"\s+", " ", sentence).strip()[:MAX_SENTENCE_CHARS]


def _names_only_milestones(sentence: str, mentions: list[Mention], signature: str | None) -> bool:
    """ "not moving forward with the pilot" is about a step, not the deal."""
    m = DECLINE.search(sentence)
    # Not going ahead with the purchase (the step due on the target) is not going ahead at all.
    return bool(m and any(x.start >= m.start() and (x.ids or x.explicit) and x.ids != (signature,) for x in mentions))


def _looks_like_change(sentence: str) -> bool:
    return bool(
        re.search(
            r"\b(?:move|push|shift|reschedul\w*|postpon\w*|delay\w*|add|remove|drop|skip|cancel|change|swap|replace"
            r"|earlier|later|instead|own|owner|assign|problem|issue|concern|conflict|clash|tight|difficult|too"
            r"|not|never|can't|cannot|won't|doesn't|don't)\b",
            sentence,
            re.IGNORECASE,
        )
    )


def _spec_change(change: Change) -> dict[str, Any]:
    """A change as the reply spec writes it: a step marked done is the op `done`."""
    if change.op == "status" and change.status == "done":
        return {"op": "done", "milestone": change.milestone}
    return change.to_dict()
