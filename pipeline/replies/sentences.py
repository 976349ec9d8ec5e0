"""A reply's text cut into the pieces it is read by: sentences, and the clauses of a sentence."""

from __future__ import annotations

import re

from pipeline.replies.lexicon import GREETING

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


def split_clauses(sentence: str) -> list[str]:
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
