"""Where a reply's quoted history begins: client reply headers, "On ... wrote:" lines, separators, quoted tails."""

from __future__ import annotations

import re

from pipeline.replies.signature import MOBILE, SIG_DASHES, next_nonblank

# Marks put into HTML before it becomes text, so the text rules see what the HTML made plain.
CUT = "[[mutualplan:history]]"
QUOTE_HEADER = "[[mutualplan:quote-header]]"

_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|originalnachricht|message d'origine"
    r"|mensaje original|messaggio originale|oorspronkelijk bericht|originalmeddelande|oprindelig meddelelse"
    r"|mensagem original|forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado)"
    r"\s*-{2,}\s*$",
    re.IGNORECASE,
)
_FROM_LABEL = r"(?:from|von|de|van|da|från|fra|od|от|发件人|差出人)"
_OTHER_LABEL = (
    r"(?:sent|date|to|subject|cc|gesendet|datum|an|betreff|envoyé|à|objet|enviado|fecha|para|asunto"
    r"|verzonden|aan|onderwerp|inviato|data|a|oggetto|skickat|till|ämne|sendt|til|emne|cc)"
)
_HEADER_FROM = re.compile(rf"^\s*\*?{_FROM_LABEL}\s?:\*?\s*\S", re.IGNORECASE)
_HEADER_OTHER = re.compile(rf"^\s*\*?{_OTHER_LABEL}\s?:\*?\s*\S", re.IGNORECASE)
_SEPARATOR = re.compile(r"^\s*(?:_{10,}|-{20,}|={20,})\s*$")
# "On <date>, <name> wrote:" and its forms in other languages; the date part may wrap onto a second line.
_WROTE = re.compile(
    r"^(?:on\s.{4,250}\bwrote|am\s.{4,250}\bschrieb\b.{0,200}|le\s.{4,250}\ba\s+écrit|el\s.{4,250}\bescribió"
    r"|op\s.{4,250}\bschreef\b.{0,200}|il\s.{4,250}\bha\s+scritto|em\s.{4,250}\bescreveu"
    r"|den\s.{4,250}\bskrev\b.{0,200}|.{1,200}\b(?:wrote|schrieb|a écrit|escribió|schreef|ha scritto|escreveu))"
    r"\s?:\s*$",
    re.IGNORECASE,
)
QUOTED = re.compile(r"^\s*>")


def history_start(lines: list[str], removed: list[str]) -> tuple[int, tuple[int, int] | None]:
    """(where the quoted history starts, the lines of an inline reply's "wrote:" header or None)."""
    n = len(lines)
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped == CUT:
            return i, None
        if _ORIGINAL.match(stripped):
            removed.append("original message separator")
            return i, None
        if _SEPARATOR.match(stripped):
            nxt = next_nonblank(lines, i + 1)
            if nxt is not None and (_HEADER_FROM.match(lines[nxt]) or _HEADER_OTHER.match(lines[nxt])):
                removed.append("client reply header")
                return i, None
        if _HEADER_FROM.match(line) and _header_block(lines, i):
            removed.append("client reply header")
            return i, None
        header_end = _wrote_header(lines, i)
        if header_end is not None:
            removed.append("quote header")
            rest = lines[header_end + 1 :]
            if _answers_below(rest):
                # An inline reply: the quoted lines stay as the context of the answers under them.
                return n, (i, header_end + 1)
            return i, None
    # A quoted block that runs to the end is history, even without a header line.
    end = n
    while end > 0 and (not lines[end - 1].strip() or QUOTED.match(lines[end - 1])):
        end -= 1
    if end < n and any(QUOTED.match(line) for line in lines[end:]):
        removed.append("quoted history")
        return end, None
    return n, None


def library_cut(lines: list[str], removed: list[str]) -> int:
    """Where mail-parser-reply sees a quote header (in any language it knows) among our lines, else the end."""
    n = len(lines)
    try:
        from mailparser_reply import EmailReplyParser
        from mailparser_reply.constants import MAIL_LANGUAGES

        message = EmailReplyParser(languages=[k for k in MAIL_LANGUAGES if len(k) == 2]).read("\n".join(lines))
        replies = message.replies
    except Exception:  # an optional opinion: its failure leaves our own answer standing
        return n
    if len(replies) < 2 or not replies[1].headers:
        return n
    first = replies[1].headers.strip().split("\n")[0].strip()
    for i, line in enumerate(lines):
        if line.strip() and line.strip() == first and i > 0:
            removed.append("quote header")
            return i
    return n


def _header_block(lines: list[str], i: int) -> bool:
    """A From: line followed closely by another header line (Sent:, To:, Subject: ... in any language)."""
    seen = 0
    for line in lines[i + 1 : i + 7]:
        if not line.strip():
            continue
        if _HEADER_OTHER.match(line):
            seen += 1
            if seen >= 1:
                return True
        elif seen == 0 and len(line) > 120:
            return False
    return False


def _wrote_header(lines: list[str], i: int) -> int | None:
    """The last line of an "On ... wrote:" header that starts at line i, if one does (up to three lines)."""
    line = lines[i].strip()
    if line == QUOTE_HEADER:
        return i
    if QUOTED.match(line) or len(line) > 300:
        return None
    joined = line
    for j in range(i, min(i + 3, len(lines))):
        if j > i:
            if not lines[j].strip():
                return None
            joined += " " + lines[j].strip()
        if _WROTE.match(joined):
            # A long sentence that happens to end in "wrote:" is not a header unless quotes follow.
            if not re.match(r"^(?:on|am|le|el|op|il|em|den)\s", joined, re.IGNORECASE):
                nxt = next_nonblank(lines, j + 1)
                if nxt is None or not QUOTED.match(lines[nxt]):
                    return None
            return j
    return None


def _answers_below(rest: list[str]) -> bool:
    """Quoted lines with the sender's own lines between or after them: an inline reply."""
    seen_quote = False
    for line in rest:
        if not line.strip():
            continue
        if QUOTED.match(line):
            seen_quote = True
        elif seen_quote:
            return not (SIG_DASHES.match(line.strip()) or MOBILE.match(line))
        else:
            # Unquoted text straight under the header: a forwarded or pasted message, not an inline reply.
            return False
    return False


def has_interleaved_quotes(lines: list[str]) -> bool:
    """Own lines after quoted ones, without a header above them: an inline reply all the same."""
    quote_then_text = False
    seen_quote = False
    for line in lines:
        if not line.strip():
            continue
        if QUOTED.match(line):
            seen_quote = True
        elif seen_quote:
            quote_then_text = True
    return quote_then_text
