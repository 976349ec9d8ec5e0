"""A reply's text cut into the pieces it is read by: sentences, and the clauses of a sentence."""

from __future__ import annotations

import re

from pipeline.replies.lexicon import ADD, ASKS, GREETING

MAX_SENTENCE_CHARS = 400


def split_sentences(text: str) -> list[str]:
    """Sentences of a block: lines joined within a paragraph, list items kept apart."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in paragraph.split("\n") if line.strip()]
        units: list[str] = []
        for line in lines:
            item = re.match(r"^(?:[-*•]|\d{1,2}[.)]|\(?[a-z]\))\s+", line)
            if item or not units or GREETING.match(units[-1]) or len(line) < 3:
                units.append(line[item.end() :] if item else line)
            else:
                units[-1] += " " + line
        for unit in units:
            for piece in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(#])", unit):
                piece = piece.strip()
                if piece:
                    out.append(piece[:MAX_SENTENCE_CHARS])
    return out


_VERBS = (
    r"(?:move|push|shift|reschedule|postpone|delay|bring|pull|add|include|remove|drop|skip|cancel|delete"
    r"|assign|give|hand|make|set|change|swap|replace)"
)
# Someone who will do something: "Raj will own ...", "we can skip ...", "I'll handle ...".
_WHO_WILL = (
    r"(?:I|we|you|they|[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)(?:\s+(?:will|can|should|shall|would|could|is going to"
    r"|are going to|am going to|wants? to|needs? to)|['’]ll)\b"
)
_SPLIT = re.compile(
    rf"\s*;\s*|,?\s+(?:and|also|then|plus)\s+(?=(?:please\s+|also\s+|can you\s+|could you\s+)?{_VERBS}\b)"
    rf"|,\s+(?=(?:please\s+)?{_VERBS}\b)"
    # "..., also <anything>", "... and also <anything>": "also" begins another request, whatever its verb.
    r"|,\s*(?:and\s+)?(?=also\b)|\s+and\s+(?=also\b)"
    # "..., and Raj will own the legal review", "... and can your team present to our board?"
    rf"|,?\s+and\s+(?={_WHO_WILL})|,?\s+and\s+(?=(?:can|could|would|will)\s+(?:you|your|we)\b)",
    re.IGNORECASE,
)
_OWN_IT = re.compile(rf"^\s*{_WHO_WILL}\s+(?:\w+\s+){{0,2}}(?:it|that|this|them)\b", re.IGNORECASE)


def split_clauses(sentence: str) -> list[str]:
    """A sentence asking for several changes, split where a new request begins.

    A part that asks for nothing ("Feb 10 doesn't work; Feb 17 does", "...; everything else is fine") belongs
    to the part before it; so does "<someone> will own it" after a new step is added: "it" is that step.
    """
    parts = [p for p in _SPLIT.split(sentence) if p and p.strip()]
    merged: list[str] = []
    for part in parts:
        verb = re.search(rf"\b{_VERBS}\b|\b(?:own|run|lead|handle|take|need|done|complete)\b", part, re.IGNORECASE)
        owner_of_new = bool(merged and ADD.search(merged[-1]) and _OWN_IT.search(part))
        if merged and ((not verb and not ASKS.search(part)) or owner_of_new):
            merged[-1] += "; " + part
        else:
            merged.append(part)
    return merged or [sentence]


_CLAUSE_BREAK = re.compile(r"[;,:]|\s[-–—]\s")


def clause_span(sentence: str, position: int) -> tuple[int, int]:
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


def clause_of(sentence: str, position: int) -> str:
    """The clause around a position."""
    start, end = clause_span(sentence, position)
    return sentence[start:end]
