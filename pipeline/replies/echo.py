"""Our own words in a reply: the lines of the emails we sent, recognized wherever they come back, never read as a
request; and a reply that is all our words, an echo.

A robot on the prospect's side (a ticket system, a forwarding rule) may send our follow-up back as new text, with
no Auto-Submitted header: "Moved: M3 Pilot, from 1 Mar to 8 Mar" read again would move the step back and forth
forever. Lines are compared whitespace- and case-blind, and as a piece of our text, so a re-wrapped copy is ours too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from pipeline.replies.extract import Block, Extraction

# Shorter lines ("Thanks,", "Jordan") say nothing either way: they are neither ours nor theirs.
MIN_CHARS = 12
# A reply whose every line but a few of this share is ours is an echo.
ECHO_SHARE = 0.8
_SPACE = re.compile(r"\s+")
_LEAD = re.compile(r"^(?:>\s*)+|^[-*•·]\s+")


def normalize(line: str) -> str:
    """A line as compared: quote marks and a bullet off the front, whitespace collapsed, lower case."""
    line = _LEAD.sub("", line.strip())
    return _SPACE.sub(" ", line).strip().lower()


def corpus(texts: Iterable[str]) -> str:
    """Our emails' text as one whitespace-collapsed, lower-case string, to find a reply's lines in."""
    return "\n".join(_SPACE.sub(" ", t).strip().lower() for t in texts if t)


def is_ours(line: str, ours: str) -> bool:
    """Whether a line long enough to mean something is a piece of what we wrote."""
    text = normalize(line)
    return len(text) >= MIN_CHARS and text in ours


@dataclass(frozen=True)
class Sorted:
    """A reply's new text with our lines taken out, and how many of its lines were ours and how many theirs."""

    extraction: Extraction
    ours: int
    theirs: int

    @property
    def echo(self) -> bool:
        """Nothing, or next to nothing, in it is the sender's own."""
        return self.ours > 0 and self.ours >= ECHO_SHARE * (self.ours + self.theirs)


def without_ours(extraction: Extraction, ours: str) -> Sorted:
    """The extraction with every line of ours taken out of its blocks (the quoted context an inline answer sits
    under is kept: it says what the answer is about, and is never read as a request)."""
    if not ours:
        return Sorted(extraction, 0, _count(extraction.text))
    mine = theirs = 0
    blocks: list[Block] = []
    for block in extraction.blocks:
        kept = []
        for line in block.text.splitlines():
            if is_ours(line, ours):
                mine += 1
            else:
                theirs += len(normalize(line)) >= MIN_CHARS
                kept.append(line)
        text = "\n".join(kept).strip()
        if text:
            blocks.append(replace(block, text=text))
    lines = [line for line in extraction.text.splitlines() if not is_ours(line, ours)]
    return Sorted(replace(extraction, text="\n".join(lines).strip(), blocks=tuple(blocks)), mine, theirs)


def _count(text: str) -> int:
    return sum(len(normalize(line)) >= MIN_CHARS for line in text.splitlines())
