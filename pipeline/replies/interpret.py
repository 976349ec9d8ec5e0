"""What a reply asks for: intent, confirmations and precise changes, never a maybe read as a yes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.plan.model import Change, Plan
from pipeline.plan.timeline import resolve
from pipeline.replies.dates import apply_shift, find_dates, find_shifts
from pipeline.replies.extract import Block, Extraction, extract
from pipeline.replies.message import Incoming
from pipeline.replies.names import Matcher, Mention, resolve_person

INTENTS = ("confirm", "amend", "decline", "comment", "ignore")
MAX_SENTENCES = 200
MAX_UNRESOLVED = 20
MAX_SENTENCE_CHARS = 400

# --- words ------------------------------------------------------------------------------------

_NEGATION = re.compile(
    r"\b(?:not|never|no longer|cannot|can ?not|unable|yet to|hold off|neither|nor|nothing)\b|n't\b|n’t\b",
    re.IGNORECASE,
)
_CONDITION = re.compile(
    r"\b(?:once|if|when|after|provided|providing|pending|subject to|assuming|as long as|until|unless"
    r"|as soon as|depending|contingent|upon|conditional|conditionally|except|excepting|barring|so long as"
    r"|only after|but only|with the exception)\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:i think|i believe|probably|mostly|should be (?:fine|ok|okay|good)|at first glance|so far|for now"
    r"|more or less|in principle|tentative(?:ly)?|preliminar\w*|broadly|generally|likely|maybe|perhaps|might"
    r"|(?:will|'ll|’ll|shall|going to|need to|needs to|have to|has to|want to|would like to|hope to|expect to)"
    r" (?:\w+ )?(?:confirm|get back|review|let you know|come back|check|discuss|revert|circle back|sign off)"
    r"|to confirm|let me (?:confirm|check|review)|run (?:it|this) by|check with|get back to you|on first read"
    r"|in theory|almost|nearly|largely|roughly|partially)\b",
    re.IGNORECASE,
)
_CONFIRM = re.compile(
    r"(?:^\s*(?:confirmed|approved|agreed|accepted|confirm|correct|lgtm|all good|looks good|sounds good"
    r"|works for us|works for me)\b"
    r"|\b(?:i|we|both|acme)\s+(?:\w+\s+)?(?:confirm|approve|agree|accept)\b"
    r"|\b(?:is|are|as|all|fully|hereby|plan|timeline|dates?|schedule|this|everything|it)\s+(?:\w+\s+)?"
    r"(?:confirmed|approved|agreed|accepted)\b"
    r"|\bconfirmed\b(?= from| on| by (?:me|us)| for (?:me|us)| here|[.!,]|$)"
    r"|\blooks? (?:good|great|fine|right|correct|ok|okay)\b|\b(?:sounds?|seems?) (?:good|great|fine|right)\b"
    r"|\b(?:works?|working) (?:for (?:us|me|both)|fine|well)\b|\bwe(?:'re| are) (?:good|fine|aligned|set|ok)\b"
    r"|\ball good\b|\bmatches (?:what we|our)\b|\bthat'?s (?:right|correct)\b|\bgo ahead\b|\bhappy with\b"
    r"|\bgood to go\b|\bon board\b|\blgtm\b|\bno (?:changes|objections|comments|concerns) (?:from|on) (?:our|my)\b"
    r"|\bnothing to (?:add|change)\b|\b(?:is|are|look|looks|seem|seems) (?:fine|good|ok|okay|correct|right)\b"
    r"|\bfine (?:by|with|for) (?:me|us)\b|\bagreed\b)",
    re.IGNORECASE,
)
# A bare "OK" or "Fine." agrees with the line it answers in an inline reply; on its own it may only acknowledge.
_WEAK_CONFIRM = re.compile(
    r"^\s*(?:yes|yep|yeah|ok|okay|fine|good|great|perfect|correct|works|agreed|sure)\s*[.!]*\s*$", re.IGNORECASE
)
_RESERVATION = re.compile(
    r"\b(?:but|however|except|although|though|while|whereas|apart from|aside from|other than|besides|save for"
    r"|excluding|most of|some of|part of|parts of|in part|concerns?|concerned|worried|worry|tight|issues?|problems?"
    r"|i'd say|i would say|i guess|i suppose|seems)\b|\bi’d say\b",
    re.IGNORECASE,
)
# A sentence that takes back or pauses what was said holds every confirmation in the reply.
_RETRACT = re.compile(
    r"\b(?:hold off|wait|scratch that|disregard|ignore (?:my|the|that) (?:last|previous|earlier)|on second thought"
    r"|not yet|hang on|hold on|take (?:that|it) back|retract)\b",
    re.IGNORECASE,
)
_EVERYTHING_ELSE = re.compile(
    r"\b(?:everything else|the rest|all (?:the )?other|otherwise|all else|remaining (?:items|steps|dates|milestones)"
    r"|other (?:items|steps|dates|milestones))\b",
    re.IGNORECASE,
)
_DECLINE = re.compile(
    r"\b(?:(?:decided|chosen|chose|choose|going|opted|opt|plan|planning|have)\s+(?:not to|to not)\s+"
    r"(?:move forward|proceed|go ahead|pursue|continue|buy|purchase|sign|move ahead)"
    r"|not (?:be )?(?:moving|going) (?:forward|ahead)|no longer (?:interested|pursuing|moving forward|considering)"
    r"|(?:won't|will not|cannot|can't|are not going to|aren't going to) (?:be )?(?:moving forward|proceed|proceeding"
    r"|go ahead|going ahead|pursue|pursuing|move forward|moving ahead|buy|purchase)"
    r"|(?:withdraw|withdrawing|pull out|pulling out) (?:from|of)\b"
    r"|(?:go|going|went|decided to go|selected|chose|chosen) with (?:another|a different|an other|other|a competing)"
    r" (?:vendor|provider|supplier|solution|partner|company|tool|product)"
    r"|(?:cancel|cancelling|canceling|terminate|end|ending|stop|stopping) (?:the|this|our) "
    r"(?:project|deal|evaluation|process|initiative|purchase|engagement)"
    r"|not (?:interested|a (?:good )?fit|the right fit)|pass on this|(?:decline|declining) (?:the|this|your)"
    r" (?:plan|proposal|offer))\b",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|morning|hallo|bonjour|hola)\b[^.?!]{0,40}[,!.:]?\s*$",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"^\s*(?:thanks|thank you|many thanks|best|best regards|regards|kind regards|cheers|sincerely|thx|ty"
    r"|warm regards|all the best|talk soon|speak soon)\b[^.?!]{0,40}[,!.]?\s*$",
    re.IGNORECASE,
)
_FILLER = re.compile(
    r"^\s*(?:comments?|answers?|replies|responses|notes?|see (?:my )?(?:comments|answers|notes)?)\s*(?:are\s+)?"
    r"(?:inline|in line|below|beneath)\b.{0,30}$",
    re.IGNORECASE,
)
_REQUEST = re.compile(
    r"\?\s*$|\b(?:please|pls|can we|could we|can you|could you|would you|would it be possible|i'd like|we'd like"
    r"|i would like|we would like|let's|let us|need|needs|should|must|want|prefer|rather|instead|move|push"
    r"|change|add|remove|drop|postpone|delay|reschedule|shift|swap|replace|cancel|skip|include|own|owner)\b",
    re.IGNORECASE,
)
_MOVE_VERB = re.compile(
    r"\b(?:move|moving|moved|push|pushing|pushed|shift|shifting|reschedul\w*|postpon\w*|delay\w*|slip\w*"
    r"|bring|bringing|pull|pulling|change|changing|do|hold|have|schedule|put|set|make|plan|aim|target)\b",
    re.IGNORECASE,
)
_MOVE_HINT = re.compile(
    r"\binstead\b|\bearlier\b|\blater\b|\bsooner\b"
    r"|\brather\b|\bprefer\w*\b|\bworks? better\b|\bwould be better\b|\bbetter on\b"
    r"|\b(?:should|needs? to|must|has to|have to|will have to|would need to) (?:be|happen|take place)\b"
    r"|\b(?:doesn't|does not|won't|will not|can't|cannot|don't|do not) work\b",
    re.IGNORECASE,
)
_MOVE_NEGATED = re.compile(
    r"\b(?:not|never|n't|no need to|without)\s+(?:\w+\s+)?(?:move|moving|push|pushing|shift|reschedul\w*|postpon\w*"
    r"|delay\w*|change|changing)\b",
    re.IGNORECASE,
)
_CONDITIONAL_START = re.compile(
    r"^\s*(?:if|unless|in case|assuming|provided|should (?:the|we|it|our|your)|when|once|depending)\b",
    re.IGNORECASE,
)
_UNSURE_QUESTION = re.compile(
    r"\b(?:should we|do we need|does it make sense|would it make sense|is it worth|do you think|what if"
    r"|shall we|any chance)\b",
    re.IGNORECASE,
)
_ANCHOR_WORDS = re.compile(
    r"\b(before|after|prior to|ahead of|following|until|ahead|since)\s+(?:the\s+|our\s+|your\s+)?$", re.IGNORECASE
)
_PRONOUN = re.compile(r"\b(?:it|that|this|this one|that one|them|those)\b", re.IGNORECASE)
_TARGET = re.compile(
    r"\b(?:target(?: date)?|signature(?: date)?|signing(?: date)?|sign(?:ing)? date|po date|purchase order date"
    r"|close date|closing date|decision date|go[- ]no[- ]go(?: date)?)\b",
    re.IGNORECASE,
)
_SIGN_WILL = re.compile(
    r"\b(?:we|i|raj|acme)\s+(?:will|'ll|’ll|can|could|expect to|plan to|aim to|want to|intend to|are going to|would)"
    r"\s+(?:only\s+|now\s+|realistically\s+|likely\s+)?(?:sign|issue the po|place the order|decide)\b",
    re.IGNORECASE,
)
_STATUS_DONE = re.compile(
    r"\b(?:is|are|was|were|'s|’s|has been|have been|got)\s+(?:now\s+|already\s+|all\s+|fully\s+|officially\s+)*"
    r"(?:done|complete|completed|finished|over|wrapped up|behind us|delivered|concluded)\b"
    r"|\b(?:we|i|they|you|team|it)\s+(?:have\s+|'ve\s+|’ve\s+|already\s+|just\s+|successfully\s+)*"
    r"(?:completed|finished|did|held|ran|wrapped up|delivered|concluded)\b"
    r"|(?:^|\b[Mm]\d{1,3}\s*:?\s*|\bstep \d{1,3}\s*:?\s*|\bitem \d{1,3}\s*:?\s*)(?:done|complete|completed|finished)\b"
    r"|\btook place\b|\bhappened\b",
    re.IGNORECASE,
)
_FUTURE = re.compile(
    r"\b(?:will|'ll|’ll|shall|going to|to be|should be|expect|expected|by (?:the )?(?:end|next)|plan to|hope)\b",
    re.IGNORECASE,
)
_REMOVE = re.compile(
    r"\b(?:remove|removing|drop|dropping|delete|deleting|cut|skip|skipping|cancel|cancelling|canceling|scrap|scrapping"
    r"|eliminate|take out|take off|strike|get rid of|lose)\b",
    re.IGNORECASE,
)
_NOT_NEEDED = re.compile(
    r"\b(?:(?:don't|do not|no longer|won't|will not|doesn't|does not)\s+need|no need for|(?:not|no longer|isn't"
    r"|is not|aren't|are not)\s+(?:needed|necessary|required)|(?:unnecessary|redundant)\b|can go\b|can be dropped)",
    re.IGNORECASE,
)
_REMOVE_NEGATED = re.compile(
    r"\b(?:not|n't|never|no need to)\s+(?:\w+\s+)?(?:remove|drop|delete|cut|skip|cancel|scrap)\b", re.IGNORECASE
)
_OWN_VERB = (
    r"(?:own|take over|take|handle|run|lead|drive|be responsible for|be the owner of|be in charge of|manage"
    r"|look after|coordinate)"
)
# Pronouns in any case; a name only when written with a capital (so "the" or "will" never passes for one).
_WHO = r"(?P<who>(?:your team|our team|my team|both of us|we|you|I)\b|(?-i:[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?))"
_REASSIGN = (
    re.compile(
        rf"(?:^|[\s,;(]){_WHO}\s+(?:will|'ll|’ll|can|should|shall|is going to|are going to|am going to|would"
        rf"|want to|wants to|needs? to|has to|have to|could)\s+(?:now\s+|also\s+|instead\s+|please\s+)?"
        rf"(?:{_OWN_VERB})\b"
        r"(?P<rest>.*)$",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\b(?:assign|reassign|give|hand|transfer)\b(?P<rest>.*?)\b(?:over\s+)?to\s+{_WHO}\b",
        re.IGNORECASE,
    ),
    re.compile(rf"\b(?:owned|led|run|handled|driven|managed)\s+by\s+{_WHO}", re.IGNORECASE),
    re.compile(rf"\bmake\s+{_WHO}\s+(?:the\s+)?owner\b(?P<rest>.*)$", re.IGNORECASE),
    re.compile(rf"\bowner\b(?P<rest>.*?)\b(?:should be|to be|is now|will be|to)\s+{_WHO}", re.IGNORECASE),
)
_ADD = re.compile(
    r"\b(?:add|adding|include|including|insert|inserting|put in)\s+(?:also\s+|in\s+)?"
    r"(?P<art>a|an|another|one more|some|the)?\s*(?P<title>.+)$"
    r"|\b(?:schedule|plan|set up|book|organi[sz]e|arrange)\s+(?:also\s+)?(?P<art2>a|an|another|one more)\s+"
    r"(?P<title2>.+)$"
    r"|\b(?:we(?:'d| would| will)?|you(?:'d| would)?|there)\s+(?:also\s+)?(?:need|needs|should be|must be"
    r"|needs to be|has to be|want)\s+(?P<art3>a|an|another|one more)\s+(?P<title3>.+)$",
    re.IGNORECASE,
)
_ADD_NEGATED = re.compile(r"\b(?:not|n't|never|no need to)\s+(?:\w+\s+)?(?:add|include|insert)\b", re.IGNORECASE)
_TITLE_END = re.compile(
    r"\s+(?:before|after|prior to|ahead of|following|between|once|no later than|to the (?:plan|timeline|schedule"
    r"|list|mutual plan)|as (?:a|an) (?:step|milestone|item|activity)|so that|so we|because|since|which|owned by"
    r"|led by|run by|if|when|and then|then|too|as well|please|(?:to|in|into|on) (?:the|our|your|my|this|that))\b"
    r"|\s*[,;.?!(]|\s+[-–—]\s",
    re.IGNORECASE,
)
# A new step is an activity: "a security review", "a SOC 2 walkthrough"; "our CFO" or "Raj" is not.
_ACTIVITY = re.compile(
    r"\b(?:review|meeting|call|demo|demonstration|workshop|session|check|walkthrough|walk-through|step|presentation"
    r"|training|test|testing|audit|approval|sign-?off|visit|pilot|poc|proof of concept|kick-?off|briefing|assessment"
    r"|evaluation|reference|negotiation|onboarding|setup|set-up|installation|trial|analysis|report|questionnaire|rfp"
    r"|rfi|rfq|validation|deep dive|deep-dive|q&a|interview|survey|sync|huddle|readout|read-out|review board"
    r"|committee|steerco|approval|budget|procurement|contract|redline|signature|integration|migration|rollout"
    r"|go-live|handover|hand-off|handoff|deadline|milestone|phase|checkpoint|decision|vote|board meeting)s?\b",
    re.IGNORECASE,
)
_ADD_OWNER = (
    re.compile(rf"\b(?:owned|led|run|handled|organi[sz]ed|driven)\s+by\s+{_WHO}", re.IGNORECASE),
    re.compile(
        rf"(?:^|\s){_WHO}\s+(?:will|'ll|’ll|can|should|would)\s+(?:own|run|organi[sz]e|lead|set up|handle|do"
        r"|book|arrange|schedule)\b",
        re.IGNORECASE,
    ),
)


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What a reply's own text says about a plan."""

    intent: str
    confirms: str | tuple[str, ...]
    changes: tuple[Change, ...]
    unresolved: tuple[str, ...]
    text: str


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of `mutualplan parse-reply --json`."""
        return {
            "from": self.sender,
            "authorized": self.authorized,
            "kind": self.kind,
            "intent": self.intent,
            "confirms": self.confirms if isinstance(self.confirms, str) else list(self.confirms),
            "changes": [c.to_dict() for c in self.changes],
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
) -> Interpretation:
    """Interpret a received message against the plan it answers."""
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
    common = {
        "sender": sender,
        "authorized": authorized,
        "kind": message.kind,
        "message_id": message.message_id,
        "subject": message.subject,
        "reply_date": reply_date,
        "kind_reason": message.kind_reason,
    }
    if message.kind != "human":
        return Interpretation(intent="ignore", confirms=(), changes=(), unresolved=(), text=extraction.text, **common)
    reading = interpret(extraction, plan, reply_date, due=due, sender=sender)
    return Interpretation(
        intent=reading.intent,
        confirms=reading.confirms,
        changes=reading.changes,
        unresolved=reading.unresolved,
        text=reading.text,
        **common,
    )


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
) -> Reading:
    """Read the new text of a reply against a plan; dates are relative to `reply_date`."""
    extraction = text if isinstance(text, Extraction) else extract(text)
    if due is None:
        try:
            due = resolve(plan)
        except Exception:
            due = {m.id: None for m in plan.milestones}
    reader = _Reader(plan, dict(due), reply_date, sender)
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


@dataclass
class _Reader:
    plan: Plan
    due: dict[str, date | None]
    today: date | None
    sender: str | None
    changes: list[Change] = field(default_factory=list)
    unresolved: list[_Unresolved] = field(default_factory=list)
    confirm_all: bool = False
    confirm_rest: bool = False
    partial: list[str] = field(default_factory=list)
    blocked: bool = False  # a negated, conditional or hedged agreement: never a confirmation
    blocked_ids: set[str] = field(default_factory=set)
    declined: bool = False

    def __post_init__(self) -> None:
        self.matcher = Matcher(self.plan)
        # Numbers like 3/8 follow the US order unless the plan lives where the day comes first.
        self.day_first = self.plan.timezone.startswith(("Europe/", "Africa/", "Australia/", "Asia/"))
        self.count = 0

    # --- walking the text ---

    def read(self, extraction: Extraction) -> None:
        for block in extraction.blocks:
            context = self._context_milestone(block)
            previous: str | None = None
            for sentence in _sentences(block.text):
                self.count += 1
                if self.count > MAX_SENTENCES:
                    return
                try:
                    previous = self._sentence(sentence, context, previous, block)
                except (OverflowError, ValueError):
                    # A date past the calendar's end ("next Friday" from 31 Dec 9999): the seller reads it.
                    self._unresolve(sentence, [])

    def _context_milestone(self, block: Block) -> str | None:
        for line in reversed(block.context):
            mid = self.matcher.in_quote(line)
            if mid:
                return mid
        return None

    def _sentence(self, sentence: str, context: str | None, previous: str | None, block: Block) -> str | None:
        """Read one sentence; returns the milestone it was about, for a pronoun in the next one."""
        s = sentence.strip()
        if not s or _GREETING.match(s) or _CLOSING.match(s) or _FILLER.match(s) or _is_name_line(s, self.plan):
            return previous
        if _RETRACT.search(s):
            self.blocked = True
        mentions = self.matcher.mentions(s)
        resolved = [m.resolved for m in mentions if m.resolved and not m.explicit]
        resolved += [i for m in mentions if m.explicit for i in m.ids]
        about = resolved[-1] if len(set(resolved)) == 1 else previous if not mentions else None
        # "it" points at the step this sentence names, else the quoted line answered, else the last sentence's.
        default = about if about and mentions else context or previous

        if _DECLINE.search(s) and not _names_only_milestones(s, mentions):
            self.declined = True
            return about
        clauses = _clauses(s)
        made = False
        for clause in clauses:
            result = self._changes(clause, default, context)
            if result is True:
                made = True
            elif result is False:
                self._unresolve(s, mentions)
                return about
        if made:
            self._confirmation(s, mentions, context, changed=True)
            return about
        if self._confirmation(s, mentions, context, changed=False):
            return about
        if _REQUEST.search(s) or (mentions and find_dates(s, self.today)):
            self._unresolve(s, mentions)
        return about

    def _unresolve(self, sentence: str, mentions: list[Mention]) -> None:
        topics = {i for m in mentions for i in m.ids}
        if _TARGET.search(sentence) or _SIGN_WILL.search(sentence):
            topics.add("target")
        text = re.sub(r"\s+", " ", sentence).strip()[:MAX_SENTENCE_CHARS]
        if len(self.unresolved) < MAX_UNRESOLVED and all(u.sentence != text for u in self.unresolved):
            self.unresolved.append(_Unresolved(text, frozenset(topics)))

    # --- changes ---

    def _changes(self, clause: str, default: str | None, context: str | None) -> bool | None:
        """True when the clause made changes, False when it asked for one that cannot be mapped, else None."""
        for op in (self._retarget, self._status, self._remove, self._reassign, self._add, self._move):
            result = op(clause, default, context)
            if result is not None:
                return result
        return None

    def _emit(self, change: Change) -> None:
        if change not in self.changes:
            self.changes.append(change)

    def _targets(self, clause: str, default: str | None, *, allow_default: bool) -> tuple[list[str], bool]:
        """Milestones a clause acts on (anchors like "before the pilot" left out) and whether one was unclear."""
        mentions = [m for m in self.matcher.mentions(clause) if not _is_anchor(clause, m)]
        unclear = any(m.ambiguous or (m.explicit and not m.ids) for m in mentions)
        ids: list[str] = []
        for m in mentions:
            if m.ambiguous or not m.ids:
                continue
            for i in m.ids:
                if i not in ids:
                    ids.append(i)
        if not mentions and allow_default and default:
            ids = [default]
        # An id and a name for the same step agree ("the reference call (item 4)"); two different ones do not.
        return ids, unclear

    def _retarget(self, clause: str, default: str | None, context: str | None) -> bool | None:
        target_words = _TARGET.search(clause)
        sign_will = _SIGN_WILL.search(clause)
        if not (target_words or sign_will):
            return None
        mentions = [m for m in self.matcher.mentions(clause) if m.resolved != _signature_id(self.plan)]
        if target_words is None and mentions:
            return None
        if _CONDITIONAL_START.search(clause) or _UNSURE_QUESTION.search(clause):
            return False
        if sign_will and not target_words and _NEGATION.search(clause):
            return False
        dates = [d for d in find_dates(clause, self.today, day_first=self.day_first)]
        exact = [d for d in dates if d.value]
        current = self.plan.target
        new: date | None = None
        if exact:
            candidates = [d.value for d in exact if d.value != current]
            if len(set(candidates)) == 1:
                new = candidates[0]
            elif not candidates:
                return True if target_words is None else None
            else:
                return False
        else:
            shifts = [x for x in find_shifts(clause) if x.days is not None]
            moving = re.search(r"\b(?:move|push|shift|delay|postpone|slip|bring|pull|extend)\w*\b", clause, re.I)
            if shifts and current and target_words and moving:
                new = apply_shift(current, shifts[0])
        if new is None:
            return False if (target_words and _MOVE_VERB.search(clause)) or dates or sign_will else None
        if new == current:
            return True
        self._emit(Change(op="retarget", target=new.isoformat()))
        return True

    def _status(self, clause: str, default: str | None, context: str | None) -> bool | None:
        if not _STATUS_DONE.search(clause):
            return None
        if _NEGATION.search(clause) or _FUTURE.search(clause) or clause.strip().endswith("?"):
            return None
        ids, unclear = self._targets(
            clause, default if _PRONOUN.search(clause) or context else None, allow_default=True
        )
        if unclear:
            return False
        if len(ids) != 1:
            return None if not ids else False
        milestone = self.plan.milestone(ids[0])
        if milestone is None:
            return False
        if milestone.status != "done":
            self._emit(Change(op="status", milestone=ids[0], status="done"))
        return True

    def _remove(self, clause: str, default: str | None, context: str | None) -> bool | None:
        verb = _REMOVE.search(clause)
        not_needed = _NOT_NEEDED.search(clause)
        if not (verb or not_needed):
            return None
        if verb and not not_needed and _REMOVE_NEGATED.search(clause):
            return None
        ids, unclear = self._targets(clause, default, allow_default=bool(_PRONOUN.search(clause) or context))
        if not ids and not unclear:
            return None if not_needed and not verb else False if _REQUEST.search(clause) else None
        if unclear or _CONDITIONAL_START.search(clause) or _UNSURE_QUESTION.search(clause):
            return False
        explicit = self.matcher.explicit(clause)
        named = [m for m in self.matcher.named(clause, skip=[(m.start, m.end) for m in explicit]) if m.resolved]
        if explicit and named and {i for m in explicit for i in m.ids} != {m.resolved for m in named}:
            return False
        for mid in ids:
            self._emit(Change(op="remove", milestone=mid))
        return True

    def _reassign(self, clause: str, default: str | None, context: str | None) -> bool | None:
        if _ADD.search(clause) and not _ADD_NEGATED.search(clause):
            return None  # "add a walkthrough, owned by Kim": the owner of the new step, read by _add
        for pattern in _REASSIGN:
            m = pattern.search(clause)
            if not m:
                continue
            who = m.group("who")
            if who.lower() in ("it", "this", "that", "they", "he", "she") or who in _NOT_NAMES:
                continue
            rest = m.groupdict().get("rest") or clause
            scope = rest if self.matcher.mentions(rest) else clause
            ids, unclear = self._targets(scope, default, allow_default=bool(_PRONOUN.search(scope) or context))
            if unclear or _CONDITIONAL_START.search(clause) or _UNSURE_QUESTION.search(clause):
                return False
            if not ids:
                return False
            owner = resolve_person(who, self.plan, self.sender)
            if owner is None:
                return False
            for mid in ids:
                if not _same_owner(self.plan, mid, owner):
                    self._emit(Change(op="reassign", milestone=mid, owner=owner))
            return True
        return None

    def _add(self, clause: str, default: str | None, context: str | None) -> bool | None:
        m = _ADD.search(clause)
        if not m:
            return None
        if _ADD_NEGATED.search(clause):
            return None
        title = m.group("title") or m.group("title2") or m.group("title3") or ""
        article = (m.group("art") or m.group("art2") or m.group("art3") or "").lower()
        tail_start = (
            m.start("title") if m.group("title") else m.start("title2") if m.group("title2") else m.start("title3")
        )
        dates = find_dates(clause, self.today, day_first=self.day_first)
        end = len(title)
        cut = _TITLE_END.search(title)
        if cut:
            end = cut.start()
        for d in dates:
            local = d.start - tail_start
            if 0 <= local < end:
                # "add a call on March 3": the date and the word before it are not the title.
                head = re.sub(r"\s+(?:on|by|for|in|at|around|the week of)\s*$", "", title[:local], flags=re.IGNORECASE)
                end = min(end, len(head))
        title = _clean_title(title[:end])
        if not title:
            return False
        if (
            article == "the"
            or self._names_existing(title)
            or _is_person(title, self.plan)
            or len(title.split()) > 12
            or not _ACTIVITY.search(title)
        ):
            # "include the demo" names a step the plan has; "add Raj" names a person: not new activities.
            return False if _REQUEST.search(clause) else None
        if _CONDITIONAL_START.search(clause) or _UNSURE_QUESTION.search(clause):
            return False
        rest = clause[tail_start + end :]
        before = after = None
        anchor = re.search(r"\b(before|prior to|ahead of|after|following)\s+(.{1,80})", rest, re.IGNORECASE)
        if anchor:
            where = [x for x in self.matcher.mentions(anchor.group(2)) if x.start < 40]
            if not where or not where[0].resolved:
                return False
            if anchor.group(1).lower() in ("after", "following"):
                after = where[0].resolved
            else:
                before = where[0].resolved
        due_value: date | None = None
        exact = [d for d in dates if d.value and d.start >= tail_start + end]
        vague = [d for d in dates if not d.value and d.start >= tail_start + end]
        if len(exact) == 1:
            due_value = exact[0].value
        elif len(exact) > 1 or vague:
            return False
        else:
            relative = self._relative_to_anchor(clause)
            if relative is False:
                return False
            if isinstance(relative, date):
                due_value = relative
        owner = None
        who = next((m for pattern in _ADD_OWNER if (m := pattern.search(clause))), None)
        if who:
            owner = resolve_person(who.group("who"), self.plan, self.sender)
            if owner is None:
                return False
        self._emit(
            Change(
                op="add",
                title=title,
                owner=owner,
                due=due_value.isoformat() if due_value else None,
                before=before,
                after=after,
            )
        )
        return True

    def _relative_to_anchor(self, clause: str) -> date | bool | None:
        """ "a week before the pilot": the anchor's due date moved by the amount; False when it cannot be had."""
        m = re.search(
            r"\b(?P<amount>(?:\d{1,3}|a|an|one|two|three|four|five|six|seven|eight|nine|ten)\s+"
            r"(?:(?:business|working)\s+)?(?:days?|weeks?|months?))\s+(?P<dir>before|after|prior to|ahead of)\s+"
            r"(?P<what>.{1,80})",
            clause,
            re.IGNORECASE,
        )
        if not m:
            return None
        where = [x for x in self.matcher.mentions(m.group("what")) if x.start < 30]
        if not where or not where[0].resolved or self.due.get(where[0].resolved) is None:
            return False
        shifts = find_shifts(m.group("amount") + (" later" if m.group("dir").lower() == "after" else " earlier"))
        if not shifts:
            return False
        value = apply_shift(self.due[where[0].resolved], shifts[0])  # type: ignore[arg-type]
        return value if value else False

    def _move(self, clause: str, default: str | None, context: str | None) -> bool | None:
        verb = _MOVE_VERB.search(clause)
        hint = _MOVE_HINT.search(clause)
        dates = find_dates(clause, self.today, day_first=self.day_first)
        shifts = [x for x in find_shifts(clause, skip=[(d.start, d.end) for d in dates])]
        if not (verb or hint) or not (dates or shifts):
            if (
                (verb or hint)
                and self.matcher.mentions(clause)
                and re.search(
                    r"\b(?:move|push|shift|reschedul\w*|postpon\w*|delay\w*|bring forward|pull in|later|earlier)\b",
                    clause,
                    re.IGNORECASE,
                )
            ):
                return False  # asks to move a step but says not where to
            return None
        if _MOVE_NEGATED.search(clause) and not re.search(
            r"\b(?:doesn't|does not|won't|will not|can't|cannot)\s+work", clause, re.IGNORECASE
        ):
            return None
        if _CONDITIONAL_START.search(clause) or _UNSURE_QUESTION.search(clause):
            return False
        use_default = bool(_PRONOUN.search(clause) or context or not self.matcher.mentions(clause))
        ids, unclear = self._targets(clause, default, allow_default=use_default)
        if unclear:
            return False
        if not ids:
            ids = self._by_old_date(dates)
            if not ids:
                return False
        relative = self._relative_to_anchor(clause)
        if relative is False:
            return False
        made = False
        for mid in ids:
            current = self.due.get(mid)
            new: date | None = None
            exact = [d for d in dates if d.value]
            if isinstance(relative, date):
                new = relative
            elif exact:
                others = [d.value for d in exact if d.value != current]
                if len(set(others)) != 1 or any(not d.value for d in dates):
                    return False
                new = others[0]
            elif dates:
                return False  # only vague dates ("mid-April")
            else:
                known = [x for x in shifts if x.days is not None]
                if len(known) != 1 or current is None:
                    return False
                new = apply_shift(current, known[0])
            if new is None:
                return False
            if self.today and new < self.today:
                return False
            if new == current:
                continue
            if _is_target_step(self.plan, mid):
                self._emit(Change(op="retarget", target=new.isoformat()))
            else:
                self._emit(Change(op="move", milestone=mid, due=new.isoformat()))
            made = True
        return True if made or ids else None

    def _by_old_date(self, dates: list[Any]) -> list[str]:
        """ "Feb 10 doesn't work; Feb 17 does": the one step due on the first date named."""
        exact = [d.value for d in dates if d.value]
        if len(exact) < 2:
            return []
        matches = [mid for mid, when in self.due.items() if when == exact[0]]
        return matches if len(matches) == 1 else []

    def _names_existing(self, title: str) -> bool:
        named = self.matcher.named("the " + title)
        if not named:
            return False
        words = [w for w in re.findall(r"[A-Za-z0-9]+", title.lower()) if w not in ("a", "an", "the", "with", "our")]
        keys = {k for m in named for i in m.ids for k in self.matcher.keys.get(i, set())}
        covered = [w for w in words if any(w.rstrip("s") == k or w == k for k in keys)]
        # "reference call" is the plan's step; "security review" shares a word with "legal review" but is new.
        return len(covered) == len(words) or (len(words) >= 4 and len(covered) >= len(words) - 1)

    # --- confirmation ---

    def _confirmation(self, s: str, mentions: list[Mention], context: str | None, *, changed: bool) -> bool:
        """Record an agreement in the sentence; True when the sentence was one (even a blocked one)."""
        found = _CONFIRM.search(s)
        if not found and _WEAK_CONFIRM.match(s):
            if context and not _RETRACT.search(s):
                if context not in self.partial:
                    self.partial.append(context)
                return True
            return False
        if not found:
            return False
        clause = _clause_of(s, found.start())
        blocked = (
            _NEGATION.search(clause)
            or _CONDITION.search(s)
            or _HEDGE.search(s)
            or s.rstrip().endswith("?")
            or _RESERVATION.search(s)
        )
        if blocked:
            ids = {i for m in mentions for i in m.ids}
            if ids:
                self.blocked_ids |= ids  # "I can't confirm M4 yet" holds back M4, not the rest
            else:
                self.blocked = True
            if not changed:
                self._unresolve(s, mentions)
            return True
        if _EVERYTHING_ELSE.search(s):
            self.confirm_rest = True
            return True
        # Only what the agreement is about counts: "Confirmed - see you at the workshop" confirms the plan.
        start, end = _clause_span(s, found.start())
        mentions = [m for m in mentions if start <= m.start < end]
        listed = [i for m in mentions if m.explicit for i in m.ids] + [
            m.resolved for m in mentions if not m.explicit and m.resolved
        ]
        if any(m.ambiguous or (m.explicit and not m.ids) for m in mentions):
            self._unresolve(s, mentions)
            return True
        if not listed:
            bare = re.search(r"\b(\d{1,2})\s*(?:-|–|to|through|thru)\s*(\d{1,2})\b", s)
            if bare and not find_dates(s, self.today):
                a, b = int(bare.group(1)), int(bare.group(2))
                listed = [f"M{n}" for n in range(a, b + 1) if f"M{n}" in self.matcher.ids] if 0 < a < b <= 30 else []
        if listed:
            for i in listed:
                if i not in self.partial:
                    self.partial.append(i)
            return True
        if changed:
            return True
        if context:
            if context not in self.partial:
                self.partial.append(context)
            return True
        self.confirm_all = True
        return True

    # --- the answer ---

    def result(self, text: str) -> Reading:
        changes = tuple(self.changes)
        touched = (
            {c.milestone for c in changes if c.milestone}
            | {c.before for c in changes if c.before}
            | {c.after for c in changes if c.after}
        )
        if any(c.op == "retarget" for c in changes):
            touched.add("target")
        # A sentence about a step that another sentence changed was its explanation, not a second request.
        unresolved = tuple(u.sentence for u in self.unresolved if not (u.topics and u.topics <= touched))
        open_topics = {t for u in self.unresolved if not (u.topics and u.topics <= touched) for t in u.topics}
        if self.declined:
            return Reading("decline", (), (), unresolved, text)
        if changes:
            confirms: list[str] = [i for i in self.partial if i not in touched and i not in self.blocked_ids]
            if self.confirm_rest or (self.confirm_all and not self.blocked):
                held = touched | open_topics | self.blocked_ids
                confirms = [m.id for m in self.plan.milestones if m.id not in held]
            return Reading("amend", tuple(confirms), changes, unresolved, text)
        change_like = any(_looks_like_change(u.sentence) for u in self.unresolved)
        clean = not self.blocked and not self.blocked_ids and not change_like
        if (self.confirm_all or self.confirm_rest) and clean and not self.partial:
            return Reading("confirm", "all", (), unresolved, text)
        partial = tuple(i for i in self.partial if i not in self.blocked_ids)
        return Reading("comment", partial, (), unresolved, text)


# --- helpers ----------------------------------------------------------------------------------

_NOT_NAMES = {
    "Please", "Could", "Can", "Would", "Should", "It", "This", "That", "Also", "And", "But", "So",
    "Then", "The", "Our", "Your", "They", "He", "She", "Everything", "Nobody", "Someone", "Who", "What", "Legal",
    "Procurement", "Finance", "IT", "Security",
}  # fmt: skip


def _sentences(text: str) -> list[str]:
    """Sentences of a block: lines joined within a paragraph, list items kept apart."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in paragraph.split("\n") if line.strip()]
        units: list[str] = []
        for line in lines:
            item = re.match(r"^(?:[-*•]|\d{1,2}[.)]|\(?[a-z]\))\s+", line)
            if item or not units or _GREETING.match(units[-1]) or len(line) < 3:
                units.append(line[item.end() :] if item else line)
            else:
                units[-1] += " " + line
        for unit in units:
            for piece in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(#])", unit):
                piece = piece.strip()
                if piece:
                    out.append(piece[:MAX_SENTENCE_CHARS])
    return out


def _clauses(sentence: str) -> list[str]:
    """A sentence asking for several changes, split where a new request begins."""
    verbs = (
        r"(?:move|push|shift|reschedule|postpone|delay|bring|pull|add|include|remove|drop|skip|cancel|delete"
        r"|assign|give|hand|make|set|change|swap|replace)"
    )
    parts = re.split(
        rf"\s*;\s*|,?\s+(?:and|also|then|plus)\s+(?=(?:please\s+|also\s+|can you\s+|could you\s+)?{verbs}\b)"
        rf"|,\s+(?=(?:please\s+)?{verbs}\b)",
        sentence,
        flags=re.IGNORECASE,
    )
    parts = [p for p in parts if p and p.strip()]
    # "Feb 10 doesn't work; Feb 17 does": the second half has no verb of its own and belongs with the first.
    merged: list[str] = []
    for part in parts:
        if merged and not re.search(
            rf"\b{verbs}\b|\b(?:own|run|lead|handle|take|need|done|complete)\b", part, re.IGNORECASE
        ):
            merged[-1] += "; " + part
        else:
            merged.append(part)
    return merged or [sentence]


_CLAUSE_BREAK = re.compile(r"[;,:]|\s[-–—]\s")


def _clause_span(sentence: str, position: int) -> tuple[int, int]:
    """Where the clause around a position starts and ends: between semicolons, commas, colons and dashes."""
    start = 0
    end = len(sentence)
    for m in _CLAUSE_BREAK.finditer(sentence):
        if m.end() <= position:
            start = m.end()
        elif m.start() >= position:
            end = m.start()
            break
    return start, end


def _clause_of(sentence: str, position: int) -> str:
    start, end = _clause_span(sentence, position)
    return sentence[start:end]


def _is_anchor(clause: str, mention: Mention) -> bool:
    return bool(_ANCHOR_WORDS.search(clause[: mention.start]))


def _is_name_line(sentence: str, plan: Plan) -> bool:
    words = sentence.strip(" .,!").split()
    if not words or len(words) > 3:
        return False
    names = {p.lower() for c in plan.prospect.contacts for p in c.name.split()}
    names |= {p.lower() for p in plan.seller.name.split()}
    if _CONFIRM.search(sentence) or _WEAK_CONFIRM.match(sentence):
        return False
    return all(w.lower().strip(".,") in names or (w[:1].isupper() and len(words) <= 2 and w.isalpha()) for w in words)


def _names_only_milestones(sentence: str, mentions: list[Mention]) -> bool:
    """ "not moving forward with the pilot" is about a step, not the deal."""
    m = _DECLINE.search(sentence)
    return bool(m and any(x.start >= m.start() and (x.ids or x.explicit) for x in mentions))


def _clean_title(title: str) -> str:
    title = re.sub(r"^(?:a|an|another|one more|some|the|new|also)\s+", "", title.strip(), flags=re.IGNORECASE)
    # "a review a week before the pilot": the amount belongs to the date, not the title.
    title = re.sub(
        r"\s+(?:\d{1,3}|a|an|one|two|three|four|five|six|seven|eight|nine|ten)\s+(?:(?:business|working)\s+)?"
        r"(?:days?|weeks?|months?)$",
        "",
        title,
        flags=re.IGNORECASE,
    )
    title = re.sub(r"\s+(?:to it|too|as well|here)$", "", title, flags=re.IGNORECASE)
    title = title.strip(" \"'“”‘’-–—:")
    return title[:1].upper() + title[1:] if title else ""


def _is_person(title: str, plan: Plan) -> bool:
    words = title.split()
    if not words:
        return True
    first = words[0].lower()
    if first in ("me", "us", "him", "her", "them", "you", "it", "this", "that"):
        return True
    people = {p.lower() for c in plan.prospect.contacts for p in c.name.split()} | {
        p.lower() for p in plan.seller.name.split()
    }
    return len(words) <= 3 and all(w.lower() in people for w in words)


def _same_owner(plan: Plan, milestone_id: str, owner: str) -> bool:
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
    # "Acme (Dana)" and "Dana Whitfield" are the same person when Dana names her.
    return current.person.lower() == owner.lower() or resolve_person(current.person, plan, None) == owner


def _signature_id(plan: Plan) -> str | None:
    step = next((m for m in plan.milestones if m.due.strip().upper() == "T"), None)
    return step.id if step else None


def _is_target_step(plan: Plan, milestone_id: str) -> bool:
    """The step due on the target itself ("T"): moving it moves the target."""
    return _signature_id(plan) == milestone_id


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
