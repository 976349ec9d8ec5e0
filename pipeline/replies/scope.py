"""What one reply is read against (its plan, the plan's due dates, the reply's date and sender) and what it changed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from pipeline.plan.model import Change, Plan
from pipeline.replies.dates import apply_shift, find_shifts
from pipeline.replies.lexicon import ANCHOR_WORDS
from pipeline.replies.names import Matcher, Mention
from pipeline.replies.parties import Parties, signature_id


@dataclass
class Scope:
    """The plan a reply answers, as the readers of changes need it, and the changes they read so far, in order."""

    plan: Plan
    due: dict[str, date | None]
    today: date | None
    sender: str | None
    changes: list[Change] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)  # the sentence each change was read from
    sentence: str = ""  # the sentence being read
    month: int | None = None  # the month named nearby (in the sentence or the quoted line), for "the 20th"

    def __post_init__(self) -> None:
        self.matcher = Matcher(self.plan)
        self.parties = Parties.of(self.plan)
        # Numbers like 3/8 follow the US order unless the plan lives where the day comes first.
        self.day_first = self.plan.timezone.startswith(("Europe/", "Africa/", "Australia/", "Asia/"))
        self.signature = signature_id(self.plan)

    def emit(self, change: Change) -> None:
        """Record a change once, in the order the reply asks for them."""
        if change not in self.changes:
            self.changes.append(change)
            self.origins.append(self.sentence)

    def drop_since(self, mark: int) -> None:
        """Forget the changes read since there were `mark` of them: a sentence applies whole or not at all."""
        del self.changes[mark:]
        del self.origins[mark:]

    def is_target_step(self, milestone_id: str) -> bool:
        """The step due on the target itself ("T"): moving it moves the target."""
        return self.signature == milestone_id

    def targets(self, clause: str, default: str | None, *, allow_default: bool) -> tuple[list[str], bool]:
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

    def relative_to_anchor(self, clause: str) -> date | bool | None:
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
        anchor = self.due.get(where[0].resolved) if where and where[0].resolved else None
        if anchor is None:
            return False
        shifts = find_shifts(m.group("amount") + (" later" if m.group("dir").lower() == "after" else " earlier"))
        if not shifts:
            return False
        value = apply_shift(anchor, shifts[0])
        return value if value else False


def _is_anchor(clause: str, mention: Mention) -> bool:
    return bool(ANCHOR_WORDS.search(clause[: mention.start]))
