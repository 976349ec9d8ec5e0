"""Milestones as a reply names them: by id, by number or range, or by the activity in loose words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz.distance import OSA
from rapidfuzz.fuzz import ratio

from pipeline.plan.model import Plan

_ID = re.compile(r"(?<![\w#])[Mm]\s?(\d{1,3})\b")
_HASH = re.compile(r"(?<![\w&])#\s?(\d{1,3})\b")
_NOUN_IDS = re.compile(
    r"\b(?:items?|steps?|milestones?|lines?|rows?|points?|no\.|nos\.|numbers?)\s*#?\s*"
    r"(\d{1,3}(?:\s*(?:,|and|&|/|or)\s*#?\d{1,3})*)\b",
    re.IGNORECASE,
)
_RANGE = re.compile(
    r"(?:\b[Mm]|#|\b(?:items?|steps?|milestones?|lines?|rows?)\s*)\s?(\d{1,3})\s*(?:-|–|—|to|through|thru|until)\s*"
    r"(?:[Mm]|#)?\s?(\d{1,3})\b",
    re.IGNORECASE,
)
_FIRST_N = re.compile(
    r"\b(?:the\s+)?first\s+(two|three|four|five|six|2|3|4|5|6)\s+(?:items|steps|milestones|lines|rows|dates)\b",
    re.IGNORECASE,
)
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
}  # fmt: skip
# "the third step", "the 2nd item": a row of the timeline counted from the top, whatever its id.
_ORD = "(" + "|".join(_ORDINALS) + r"|\d{1,2}(?:st|nd|rd|th))"
_ORDINAL = re.compile(
    rf"\bthe\s+{_ORD}\s+one\b|\b(?:the\s+)?{_ORD}\s+(?:items?|steps?|milestones?|rows?|lines?|points?"
    r"|activit(?:y|ies)|entr(?:y|ies)|tasks?)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’&-]*")
# A sentence that opens with the answer itself: "Confirmed.", "Agreed, thanks", "Approved - see you Tuesday".
_ANSWER = re.compile(
    r"^\W*(confirmed|agreed|approved|accepted|confirm)\b(?=\s*(?:[-–—.,!:;]|$|(?:thanks|thank you|from|by|on)\b))",
    re.IGNORECASE,
)

_STOP = {
    "the", "a", "an", "of", "for", "with", "on", "and", "to", "in", "by", "at", "from", "our", "your", "their",
    "its", "it", "is", "we", "us", "you", "my", "me", "or", "per", "via", "into", "vs", "all", "s",
}  # fmt: skip
# A word people use for an activity, mapped to the word the plan likely used.
_SYNONYMS = {
    "demonstration": "demo",
    "kick": "kickoff",
    "purchase": "po",
    "contract": "msa",
    "intro": "introductions",
    "intros": "introductions",
    "tech": "technical",
    "ref": "reference",
    "references": "reference",
    "signature": "signed",
    "signing": "signed",
}
_DETERMINERS = {"the", "our", "your", "this", "that", "these", "those", "their", "its", "my", "his", "her"}
_ACTION_WORDS = {
    "move", "push", "shift", "reschedule", "postpone", "delay", "drop", "remove", "skip", "cancel", "delete",
    "own", "handle", "run", "lead", "take", "need", "bring", "pull", "finish", "finished", "completed", "did",
    "held", "hold", "do", "scrap", "change", "confirm", "confirmed", "approve", "approved", "agree",
}  # fmt: skip
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


@dataclass(frozen=True)
class Mention:
    """A place in a sentence that names milestones: one id when clear, several when ambiguous, none if unknown."""

    start: int
    end: int
    text: str
    ids: tuple[str, ...]
    explicit: bool  # named by id ("M3", "#3", "item 3"); several ids here are a list, not an ambiguity

    @property
    def resolved(self) -> str | None:
        """The one milestone meant, if exactly one."""
        return self.ids[0] if len(self.ids) == 1 else None

    @property
    def ambiguous(self) -> bool:
        """A name that fits several milestones equally well."""
        return not self.explicit and len(self.ids) > 1


def _norm_word(word: str) -> str:
    word = word.lower().replace("’", "'")
    word = re.sub(r"'s$", "", word).replace("-", "").strip("'&")
    word = _SYNONYMS.get(word, word)
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word


class Matcher:
    """Finds the milestones a sentence names, for one plan."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.ids = tuple(m.id for m in plan.milestones)
        company = {_norm_word(w) for w in _WORD.findall(f"{plan.prospect.company} {plan.seller.company}")}
        people = " ".join(c.name for c in plan.prospect.contacts) + f" {plan.seller.name or ''}"
        # Who may do a step, as the word before "can demo" / "will pilot": the activity said as a verb.
        self.subjects = company | {w.lower() for w in people.split()} | {"we", "i", "you", "they"}
        self.keys: dict[str, set[str]] = {}
        for m in plan.milestones:
            words = {_norm_word(w) for w in _WORD.findall(m.title.replace("/", " "))}
            self.keys[m.id] = {w for w in words if w and w not in _STOP and w not in company and not w.isdigit()}
            if "kickoff" in self.keys[m.id]:
                self.keys[m.id].add("kickoff")

    # --- explicit ids ---

    def explicit(self, sentence: str) -> list[Mention]:
        """Milestones named by id, lists and ranges included; ids the plan lacks give a mention with no ids."""
        out: list[Mention] = []
        taken: list[tuple[int, int]] = []

        def add(start: int, end: int, numbers: list[int]) -> None:
            if any(start < e and s < end for s, e in taken):
                return
            taken.append((start, end))
            ids = tuple(f"M{n}" for n in numbers)
            known = tuple(i for i in ids if i in self.ids)
            out.append(Mention(start, end, sentence[start:end], known if len(known) == len(ids) else (), True))

        for m in _RANGE.finditer(sentence):
            a, b = int(m.group(1)), int(m.group(2))
            if 0 < a < b and b - a <= 30:
                add(m.start(), m.end(), list(range(a, b + 1)))
        for m in _FIRST_N.finditer(sentence):
            n = _NUMBER_WORDS.get(m.group(1).lower()) or int(m.group(1))
            # "The first three" are the first three rows of the timeline, whatever their ids.
            ids = [int(i[1:]) for i in self.ids[:n]]
            add(m.start(), m.end(), ids)
        for m in _ORDINAL.finditer(sentence):
            word = (m.group(1) or m.group(2)).lower()
            n = _ORDINALS.get(word) or int(re.sub(r"\D", "", word))
            row = self.ids[n - 1] if 0 < n <= len(self.ids) else None
            # An id the plan lacks names nothing: the mention is kept, without ids, so the sentence goes to the seller.
            add(m.start(), m.end(), [int(row[1:])] if row and row[1:].isdigit() else [0])
        for m in _NOUN_IDS.finditer(sentence):
            add(m.start(), m.end(), [int(n) for n in re.findall(r"\d{1,3}", m.group(1))])
        for pattern in (_ID, _HASH):
            for m in pattern.finditer(sentence):
                add(m.start(), m.end(), [int(m.group(1))])
        out.sort(key=lambda x: x.start)
        return out

    # --- names ---

    def named(self, sentence: str, *, skip: list[tuple[int, int]] | None = None) -> list[Mention]:
        """Milestones named by their activity; ambiguous names carry every milestone they fit."""
        tokens = [(m.start(), m.end(), _norm_word(m.group(0))) for m in _WORD.finditer(sentence)]
        hits: list[dict[str, str]] = []
        for i, (start, end, word) in enumerate(tokens):
            if skip and any(start < e and s < end for s, e in skip):
                hits.append({})
                continue
            joined = word + tokens[i + 1][2] if i + 1 < len(tokens) else ""
            found = self._match(word, joined)
            if not found and hits and i > 0 and self._match(tokens[i - 1][2] + word, ""):
                found = hits[-1]  # the second half of a split word ("kick off")
            hits.append(found)
        mentions: list[Mention] = []
        i = 0
        while i < len(tokens):
            if not hits[i]:
                i += 1
                continue
            group = [i]
            candidates = set(hits[i])
            j = i + 1
            gap = 0
            while j < len(tokens) and gap <= 2:
                # Adjacent words make one noun phrase ("technical review"); across "of the" or "and" they
                # stay one only when they name the same activity ("legal review of the MSA").
                if hits[j] and (gap == 0 or candidates & set(hits[j])):
                    group.append(j)
                    candidates |= set(hits[j])
                    gap = 0
                elif not hits[j] and tokens[j][2] in _STOP:
                    gap += 1
                else:
                    break
                j += 1
            mention = self._mention(sentence, tokens, hits, group)
            if mention:
                mentions.append(mention)
            i = group[-1] + 1
        return mentions

    def _match(self, word: str, joined: str) -> dict[str, str]:
        found: dict[str, str] = {}
        if not word or word in _STOP:
            return found
        for mid, keys in self.keys.items():
            for key in keys:
                if word == key or (joined and joined == key) or _close(word, key):
                    found[mid] = key
                    break
        return found

    def _mention(
        self, sentence: str, tokens: list[tuple[int, int, str]], hits: list[dict[str, str]], group: list[int]
    ) -> Mention | None:
        score: dict[str, set[str]] = {}
        for index in group:
            for mid, key in hits[index].items():
                score.setdefault(mid, set()).add(key)
        best = max(len(keys) for keys in score.values())
        ids = tuple(mid for mid, keys in score.items() if len(keys) == best)
        exact = tuple(mid for mid in ids if len(self.keys[mid]) == best)
        if len(ids) > 1 and len(exact) == 1:
            ids = exact  # "the pilot" is the step called "Pilot", not "Pilot readout": the title said in full
        first = group[0]
        # One loose word names an activity only when it is used as a noun for something known:
        # "the pilot", "Pilot is fine", "skip reference call"; "a call" is something new.
        if len(group) == 1 and best == 1:
            before = [tokens[k][2] for k in range(max(0, first - 2), first)]
            previous = before[-1] if before else ""
            party_does = previous in ("will", "ll", "can", "could") and len(before) == 2 and before[0] in self.subjects
            # "<seller> can demo on the 12th": the step said as what its owner does.
            loose = previous in ("a", "an", "another", "i", "we", "they", "you", "to", "will", "ll", "can")
            noun = first == 0 or set(before) & _DETERMINERS or previous in _ACTION_WORDS
            if not party_does and (loose or not noun):
                return None
        start, end = tokens[group[0]][0], tokens[group[-1]][1]
        return Mention(start, end, sentence[start:end], ids, False)

    def mentions(self, sentence: str) -> list[Mention]:
        """Every mention, by id first, then by name where no id was written."""
        explicit = self.explicit(sentence)
        skip = [(m.start, m.end) for m in explicit]
        answer = _ANSWER.match(sentence)
        if answer:
            skip.append(answer.span(1))  # "Confirmed." answers; it is not the step "Confirmed VisionMatch"
        named = self.named(sentence, skip=skip)
        return sorted([*explicit, *named], key=lambda m: m.start)

    def in_quote(self, line: str) -> str | None:
        """The milestone a quoted timeline line is about ("M3  Pilot on Q4 data - ..."), if one."""
        m = re.match(r"^\s*(?:[-*•|]\s*)?(?:#\s?)?([Mm]\d{1,3})\b", line)
        if m and m.group(1).upper() in self.ids:
            return m.group(1).upper()
        named = [x for x in self.named(line) if x.resolved]
        titles = {x.resolved for x in named}
        if len(titles) == 1:
            return titles.pop()
        # A quoted row names its activity by its full title, in the plan's own words.
        for mid in self.ids:
            milestone = self.plan.milestone(mid)
            if milestone and milestone.title and milestone.title.lower() in line.lower():
                return mid
        return None


def _close(word: str, key: str) -> bool:
    """Loosely the same word: a typo or a variant, never a different short word."""
    if len(word) < 5 or len(key) < 5:
        return False
    limit = 2 if len(key) >= 9 else 1
    return OSA.distance(word, key) <= limit or ratio(word, key) >= 90
