"""The new text of a reply: quoted history, client headers, signatures, mobile footers and disclaimers removed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.replies.history import (
    CUT,
    QUOTE_HEADER,
    QUOTED,
    has_interleaved_quotes,
    history_start,
    library_cut,
    requote_broken_links,
    split_shared_headers,
)
from pipeline.replies.html import html_to_text, take_soup
from pipeline.replies.message import Incoming
from pipeline.replies.signature import clean_block

MAX_TEXT_CHARS = 50_000
MAX_CONTEXT_LINES = 6

# The mail system's "external email" caution, put above the sender's words.
_BANNER = re.compile(
    r"^\s*\[?\**\s*(?:caution|external|warning|attention)\b.{0,20}(?:e-?mail|message|sender)?.{0,200}"
    r"(?:outside|external|originated|do not click|links or attachments)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Block:
    """A stretch of the sender's own words and, in an inline reply, the quoted lines it answers."""

    text: str
    context: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """An inline answer: the sender's words and the quoted lines above them, the one answered (nearest) last."""

    text: str
    context: tuple[str, ...]

    @property
    def quoted(self) -> str:
        """The quoted line the answer is typed under."""
        return self.context[-1]


@dataclass(frozen=True)
class Extraction:
    """The new text of a reply, its blocks, and what was cut to find it."""

    text: str
    blocks: tuple[Block, ...]
    inline: bool
    removed: tuple[str, ...]

    @property
    def own(self) -> str:
        """The sender's words alone: in an inline reply the answers, without the quoted lines they answer."""
        return "\n\n".join(b.text for b in self.blocks).strip()


def extract(message: Incoming | str, *, html: str | None = None) -> Extraction:
    """The sender's own words in a message (or a body as text, or an HTML body)."""
    removed: list[str] = []
    if isinstance(message, Incoming):
        html = message.html
        text = message.text
    else:
        text = message
    if html is not None:
        text = _html_marked_text(html, removed)
    return _extract_text(text, removed)


def answers(extraction: Extraction) -> tuple[Answer, ...]:
    """The (quoted line, answer) pairs of an inline reply, in order; () for a reply written above the quote."""
    if not extraction.inline:
        return ()
    return tuple(Answer(b.text, b.context) for b in extraction.blocks if b.context)


def new_text(message: Incoming | str, *, html: str | None = None) -> str:
    """Only the new text."""
    return extract(message, html=html).text


# --- HTML -------------------------------------------------------------------------------------


def _html_marked_text(html: str, removed: list[str]) -> str:
    """HTML to text, with the quoted history that HTML makes plain (Outlook, Gmail, Apple, Thunderbird) marked."""
    try:
        soup = take_soup(html)
        cut_at = None
        for tag in soup.find_all(True, limit=20_000):
            attrs = getattr(tag, "attrs", None) or {}
            ident = str(attrs.get("id") or "").lower()
            classes = [str(c).lower() for c in (attrs.get("class") or [])]
            style = str(attrs.get("style") or "").replace(" ", "").lower()
            if ident in ("divrplyfwdmsg", "appendonsend") or "yahoo_quoted" in classes:
                cut_at = tag
                removed.append("client reply header")
                break
            if tag.name == "div" and re.search(r"border-top:solid#(?:e1e1e1|b5c4df)", style):
                # Outlook desktop: the header block of the quoted message sits in such a div.
                cut_at = tag
                removed.append("client reply header")
                break
        if cut_at is not None:
            cut_at.insert_before(soup.new_string(f"\n{CUT}\n"))
            # The text rules cut at the mark; dropping the tail here keeps the conversion cheap.
            for following in list(cut_at.find_all_next(string=True)):
                following.extract()
        for tag in soup.find_all(class_=["gmail_attr", "moz-cite-prefix"]):
            tag.clear()
            tag.append(soup.new_string(QUOTE_HEADER))
        for tag in soup.find_all(class_=["gmail_signature", "moz-signature"]):
            tag.decompose()
            removed.append("signature")
        return html_to_text(soup)
    except RecursionError:
        return html_to_text(html)


# --- text -------------------------------------------------------------------------------------


def _extract_text(text: str, removed: list[str]) -> Extraction:
    text = text[: MAX_TEXT_CHARS * 4].replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u200b", "").replace("\ufeff", "").replace("\u00a0", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    lines = requote_broken_links(split_shared_headers(_drop_banner(lines, removed)))

    found = len(removed)
    cut, header = history_start(lines, removed)
    if header is None and (len(removed) == found or removed[-1] == "quoted history"):
        # No header line of ours: mail-parser-reply knows the headers of more languages and clients.
        cut = min(cut, library_cut(lines[:cut], removed))
    kept = lines[:cut]
    inline = header is not None
    if header is not None:
        del kept[header[0] : header[1]]
    elif has_interleaved_quotes(kept):
        inline = True

    blocks = _blocks(kept, inline, removed)
    blocks = [b for b in blocks if b.text]
    rendered = _render(blocks)
    if len(rendered) > MAX_TEXT_CHARS:
        rendered = rendered[:MAX_TEXT_CHARS]
    return Extraction(text=rendered, blocks=tuple(blocks), inline=inline, removed=tuple(dict.fromkeys(removed)))


def _drop_banner(lines: list[str], removed: list[str]) -> list[str]:
    """An "external email" caution at the very top is the mail system's, not the sender's."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return lines
    end = first
    while end < len(lines) and lines[end].strip():
        end += 1
    paragraph = " ".join(lines[first:end])
    if len(paragraph) < 600 and _BANNER.match(paragraph):
        removed.append("banner")
        return lines[end:]
    return lines


def _blocks(lines: list[str], inline: bool, removed: list[str]) -> list[Block]:
    """Split into the sender's blocks; in an inline reply each keeps the quoted lines above it."""
    blocks: list[Block] = []
    context: list[str] = []
    own: list[str] = []
    ended = False

    def flush() -> None:
        nonlocal ended
        if own:
            body, stop = clean_block(own, removed)
            blocks.append(Block(body, tuple(context[-MAX_CONTEXT_LINES:])))
            ended = ended or stop
        own.clear()

    for line in lines:
        if ended:
            break
        if QUOTED.match(line):
            if own and any(s.strip() for s in own):
                flush()
                context.clear()
            own.clear()
            quoted = re.sub(r"^(?:\s*>)+\s?", "", line).strip()
            if quoted:
                context.append(quoted)
            else:
                context.clear()  # a blank quoted line ends a quoted paragraph: the answer is to the nearest one
        else:
            own.append(line)
    if not ended:
        flush()
    if not inline:
        # Quoted lines in a reply that is not inline are history; no block carries them.
        blocks = [Block(b.text) for b in blocks]
    return blocks


def _render(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        if block.context:
            parts.append("\n".join("> " + line for line in block.context) + "\n" + block.text)
        else:
            parts.append(block.text)
    return "\n\n".join(parts).strip()

