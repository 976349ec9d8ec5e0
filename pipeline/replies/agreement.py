"""What a reply agrees to, sentence by sentence, and what holds an agreement back: never a maybe read as a yes."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from pipeline.replies.dates import find_dates
from pipeline.replies.lexicon import (
    CASUAL_CONFIRM,
    CONDITION,
    EVERYTHING_ELSE,
    HEDGE,
    NEGATION,
    OTHER_OBJECT,
    RECEIPT,
    RESERVATION,
    RETRACT,
    WEAK_CONFIRM,
)
from pipeline.replies.names import Mention
from pipeline.replies.sentences import clause_of, clause_span


@dataclass
class Agreement:
    """The agreements read so far: to everything, to the rest, to some steps; and the ones held back."""

    confirm: re.Pattern[str]  # an agreement, in the plan's words for the buyer
    ids: tuple[str, ...]  # the plan's milestone ids
    today: date | None
    unclear: Callable[[str, list[Mention]], None]  # for a sentence the seller must read
    due: Mapping[str, date | None] = field(default_factory=dict)
    plan_answer: bool = False  # the reply answers our plan email itself: a bare "Yes" is about the plan
    confirm_all: bool = False
    short_yes: bool = False  # a bare "Yes" to the plan email: a confirmation only when nothing else is said
    confirm_rest: bool = False
    partial: list[str] = field(default_factory=list)
    blocked: bool = False  # a negated, conditional or hedged agreement: never a confirmation
    deferred: bool = False  # the reply puts agreement off ("I'll confirm once Raj has seen it"): not the whole plan
    blocked_ids: set[str] = field(default_factory=set)

    def read(
        self, s: str, mentions: list[Mention], context: str | None, *, changed: bool, question: bool = False
    ) -> bool:
        """Record an agreement in the sentence; True when the sentence was one (even a blocked one)."""
        if RECEIPT.search(s):
            return True  # the mail arrived; nothing is agreed
        found = self.confirm.search(s)
        if question and (found or WEAK_CONFIRM.match(s)):
            return True  # "Yes" under "Can you make Tuesday?" answers that question, not the plan
        casual = CASUAL_CONFIRM.match(s)
        if casual or (not found and WEAK_CONFIRM.match(s)):
            if context and not RETRACT.search(s):
                self._agree(context)
                return True
            if self.plan_answer and not RETRACT.search(s):
                self.short_yes = True
                return True
            return False
        if not found:
            return False
        if self._held_back(s, found.start(), mentions):
            if not changed:
                self.unclear(s, mentions)
            return True
        if EVERYTHING_ELSE.search(clause_of(s, found.start())):  # "..., still checking the rest" agrees to no rest
            self.confirm_rest = True
            return True
        # Only what the agreement is about counts: "Confirmed - see you at the workshop" confirms the plan.
        start, end = clause_span(s, found.start())
        mentions = [m for m in mentions if start <= m.start < end]
        if any(m.ambiguous or (m.explicit and not m.ids) for m in mentions):
            self.unclear(s, mentions)
            return True
        listed = self._listed(s, mentions)
        if self._other_thing(s[start:end], listed):
            return True  # "I confirm the meeting on Tuesday": a confirmation of something else
        if listed:
            for i in listed:
                self._agree(i)
            return True
        if changed:
            return True
        if context:
            self._agree(context)
            return True
        self.confirm_all = True
        return True

    def _other_thing(self, clause: str, listed: list[str]) -> bool:
        """An agreement to a time, an invitation or a receipt, or on a date no step it names is due on."""
        if OTHER_OBJECT.search(clause):
            return True
        # A date of the plan ("we confirm the plan through the March 31 signature") is the plan's own.
        dues = {self.due.get(i) for i in listed} if listed else set(self.due.values())
        return any(d.value is None or d.value not in dues for d in find_dates(clause, self.today))

    def _agree(self, milestone_id: str) -> None:
        if milestone_id not in self.partial:
            self.partial.append(milestone_id)

    def _held_back(self, s: str, position: int, mentions: list[Mention]) -> bool:
        """A negated, conditional, hedged, questioned or reserved agreement: it holds back what it names."""
        clause = clause_of(s, position)
        blocked = (
            NEGATION.search(clause)
            or CONDITION.search(s)
            or HEDGE.search(s)
            or s.rstrip().endswith("?")
            or RESERVATION.search(s)
        )
        if not blocked:
            return False
        ids = {i for m in mentions for i in m.ids}
        if ids:
            self.blocked_ids |= ids  # "I can't confirm M4 yet" holds back M4, not the rest
        else:
            self.blocked = True
        return True

    def _listed(self, s: str, mentions: list[Mention]) -> list[str]:
        """The steps an agreement names: by id or name, or a bare range of numbers ("1-3 are fine")."""
        listed = [i for m in mentions if m.explicit for i in m.ids] + [
            m.resolved for m in mentions if not m.explicit and m.resolved
        ]
        if not listed:
            bare = re.search(r"\b(\d{1,2})\s*(?:-|–|to|through|thru)\s*(\d{1,2})\b", s)
            if bare and not find_dates(s, self.today):
                a, b = int(bare.group(1)), int(bare.group(2))
                listed = [f"M{n}" for n in range(a, b + 1) if f"M{n}" in self.ids] if 0 < a < b <= 30 else []
        return listed
