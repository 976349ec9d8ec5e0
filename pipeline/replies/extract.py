"""The new text of a reply: quoted history, client headers, signatures, mobile footers and disclaimers removed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.replies.html import html_to_text, parse_html
from pipeline.replies.message import Incoming

MAX_TEXT_CHARS = 50_000
MAX_CONTEXT_LINES = 6

# Marks put into HTML before it becomes text, so the text rules see what the HTML made plain.
CUT = "[[mutualplan:history]]"
QUOTE_HEADER = "[[mutualplan:quote-header]]"

# --- the rules, as patterns on one line ---------------------------------------------------------

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
_QUOTED = re.compile(r"^\s*>")

_SIG_DASHES = re.compile(r"^--\s?$")
_MOBILE = re.compile(
    r"^\s*(?:sent from my\b.{0,60}|sent from (?:outlook|mail|yahoo mail|gmail|aol|my mobile)\b.{0,60}"
    r"|get outlook for (?:ios|android)\b.{0,40}|sent from outlook for (?:ios|android)\b.{0,40}"
    r"|sent via\b.{0,60}|sent with\b.{0,60}|sent on the go\b.{0,40}"
    r"|von meinem\b.{0,40}\bgesendet\b.{0,20}|gesendet von meinem\b.{0,40}"
    r"|envoyé de mon\b.{0,60}|envoyé depuis\b.{0,60}|enviado desde mi\b.{0,60}|enviado do meu\b.{0,60}"
    r"|inviato da\b.{0,60}|verzonden vanaf\b.{0,60}|verstuurd vanaf\b.{0,60})$",
    re.IGNORECASE,
)
_LINK_ONLY = re.compile(r"^\s*<?https?://\S+>?\s*$", re.IGNORECASE)
_DISCLAIMER = re.compile(
    r"^\s*(?:\**\s*(?:confidential(?:ity)?(?: notice| statement| note)?|disclaimer|legal (?:notice|disclaimer)"
    r"|important(?: notice)?|privileged (?:and|&) confidential|notice of confidentiality|privacy notice)\s*\**\s*[:.-]"
    r"|this (?:e-?mail|message|communication|transmission|electronic mail)\b.{0,120}\b(?:confidential|privileged"
    r"|intended (?:solely |only )?for|may contain|contains)"
    r"|the (?:information|content)s? (?:contained )?in this (?:e-?mail|message|communication)"
    r"|if you (?:are not|have received this)\b.{0,40}\b(?:intended recipient|in error)"
    r"|this e-?mail has been scanned|please consider the environment before printing"
    r"|diese (?:e-?mail|nachricht)\b.{0,80}\b(?:vertraulich|enthält|ist nur)"
    r"|ce (?:message|courriel|courrier)\b.{0,80}\b(?:confidentiel|destiné)"
    r"|este (?:mensaje|correo)\b.{0,80}\b(?:confidencial|dirigido))",
    re.IGNORECASE,
)
_BANNER = re.compile(
    r"^\s*\[?\**\s*(?:caution|external|warning|attention)\b.{0,20}(?:e-?mail|message|sender)?.{0,200}"
    r"(?:outside|external|originated|do not click|links or attachments)",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"^\s*(?:best|best regards|kind regards|warm regards|regards|many thanks|thanks|thank you|thanks again"
    r"|thanks so much|thx|cheers|sincerely|yours|all the best|talk soon|br|kr|rgds|mit freundlichen grüßen"
    r"|viele grüße|beste grüße|gruß|cordialement|bien à vous|saludos|un saludo|atentamente)\s*[,.!-]*\s*$",
    re.IGNORECASE,
)
_PHONE = re.compile(r"(?:\+?\d[\d ().-]{6,}\d)")
_CONTACT = re.compile(
    r"(?:^\s*(?:tel|phone|mobile|mob|cell|fax|direct|office|t|m|p|f|e|w)\s*[:.]\s*\S|https?://|www\.|\S+@\S+\.\w"
    r"|\s[|•·]\s|^\s*\[cid:|linkedin|twitter)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Block:
    """A stretch of the sender's own words and, in an inline reply, the quoted lines it answers."""

    text: str
    context: tuple[str, ...] = ()


@dataclass(frozen=True)
class Extraction:
    """The new text of a reply, its blocks, and what was cut to find it."""

    text: str
    blocks: tuple[Block, ...]
    inline: bool
    removed: tuple[str, ...]


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


def new_text(message: Incoming | str, *, html: str | None = None) -> str:
    """Only the new text."""
    return extract(message, html=html).text


# --- HTML -------------------------------------------------------------------------------------


def _html_marked_text(html: str, removed: list[str]) -> str:
    """HTML to text, with the quoted history that HTML makes plain (Outlook, Gmail, Apple, Thunderbird) marked."""
    try:
        soup = parse_html(html)
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
    lines = _drop_banner(lines, removed)

    found = len(removed)
    cut, header = _history_start(lines, removed)
    if header is None and (len(removed) == found or removed[-1] == "quoted history"):
        # No header line of ours: mail-parser-reply knows the headers of more languages and clients.
        cut = min(cut, _library_cut(lines[:cut], removed))
    kept = lines[:cut]
    inline = header is not None
    if header is not None:
        del kept[header[0] : header[1]]
    elif _has_interleaved_quotes(kept):
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


def _history_start(lines: list[str], removed: list[str]) -> tuple[int, tuple[int, int] | None]:
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
            nxt = _next_nonblank(lines, i + 1)
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
    while end > 0 and (not lines[end - 1].strip() or _QUOTED.match(lines[end - 1])):
        end -= 1
    if end < n and any(_QUOTED.match(line) for line in lines[end:]):
        removed.append("quoted history")
        return end, None
    return n, None


def _library_cut(lines: list[str], removed: list[str]) -> int:
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


def _next_nonblank(lines: list[str], start: int) -> int | None:
    for j in range(start, min(len(lines), start + 3)):
        if lines[j].strip():
            return j
    return None


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
    if _QUOTED.match(line) or len(line) > 300:
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
                nxt = _next_nonblank(lines, j + 1)
                if nxt is None or not _QUOTED.match(lines[nxt]):
                    return None
            return j
    return None


def _answers_below(rest: list[str]) -> bool:
    """Quoted lines with the sender's own lines between or after them: an inline reply."""
    seen_quote = False
    for line in rest:
        if not line.strip():
            continue
        if _QUOTED.match(line):
            seen_quote = True
        elif seen_quote:
            return not (_SIG_DASHES.match(line.strip()) or _MOBILE.match(line))
        else:
            # Unquoted text straight under the header: a forwarded or pasted message, not an inline reply.
            return False
    return False


def _has_interleaved_quotes(lines: list[str]) -> bool:
    quote_then_text = False
    seen_quote = False
    for line in lines:
        if not line.strip():
            continue
        if _QUOTED.match(line):
            seen_quote = True
        elif seen_quote:
            quote_then_text = True
    return quote_then_text


def _blocks(lines: list[str], inline: bool, removed: list[str]) -> list[Block]:
    """Split into the sender's blocks; in an inline reply each keeps the quoted lines above it."""
    blocks: list[Block] = []
    context: list[str] = []
    own: list[str] = []
    ended = False

    def flush() -> None:
        nonlocal ended
        if own:
            body, stop = _clean(own, removed)
            blocks.append(Block(body, tuple(context[-MAX_CONTEXT_LINES:])))
            ended = ended or stop
        own.clear()

    for line in lines:
        if ended:
            break
        if _QUOTED.match(line):
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


def _clean(lines: list[str], removed: list[str]) -> tuple[str, bool]:
    """The block without signature, mobile footer or disclaimer; True when one of them ends the message."""
    out: list[str] = []
    ended = False
    skip_link = False
    for line in lines:
        stripped = line.strip()
        if skip_link and _LINK_ONLY.match(stripped):
            skip_link = False
            continue
        skip_link = False
        if _SIG_DASHES.match(stripped):
            removed.append("signature")
            ended = True
            break
        if _MOBILE.match(stripped):
            removed.append("mobile footer")
            skip_link = True
            continue
        if _DISCLAIMER.match(stripped):
            removed.append("disclaimer")
            ended = True
            break
        out.append(line)
    out = _drop_signature_block(out, removed)
    text = "\n".join(out).strip("\n")
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip(), ended


def _drop_signature_block(lines: list[str], removed: list[str]) -> list[str]:
    """Name, title, phone and address lines after a closing ("Best,\\n<first name>"), or a trailing contact block."""
    # A rule left over above the cut quoted history (Outlook's <hr>) is not the sender's.
    while lines and (not lines[-1].strip() or re.fullmatch(r"\s*[-_=]{5,}\s*", lines[-1])):
        lines = lines[:-1]
    if not lines:
        return lines
    # A closing near the end: keep it and the name under it; what follows is a signature when it looks like one.
    start = max(0, len(lines) - 14)
    for i in range(len(lines) - 1, start - 1, -1):
        if _CLOSING.match(lines[i]):
            name = _next_nonblank(lines, i + 1)
            keep_to = i + 1
            if name is not None and name == i + 1 and _looks_like_name(lines[name]):
                keep_to = name + 1
            tail = [line for line in lines[keep_to:] if line.strip()]
            if tail and _signature_like(tail):
                removed.append("signature")
                return lines[:keep_to]
            if not tail:
                return lines
            break
    # No closing: a trailing paragraph of contact details.
    end = len(lines)
    while True:
        para_start = end
        while para_start > 0 and lines[para_start - 1].strip():
            para_start -= 1
        paragraph = [line for line in lines[para_start:end] if line.strip()]
        if paragraph and para_start > 0 and _signature_like(paragraph) and any(_CONTACT.search(x) for x in paragraph):
            removed.append("signature")
            end = para_start
            while end > 0 and not lines[end - 1].strip():
                end -= 1
            continue
        break
    return lines[:end]


def _looks_like_name(line: str) -> bool:
    words = line.strip().split()
    return 0 < len(words) <= 4 and all(re.match(r"^[\w.'-]+$", w) for w in words) and not line.strip().endswith(".")


def _signature_like(lines: list[str]) -> bool:
    """Short lines that say who someone is, not what they want."""
    if len(lines) > 12:
        return False
    for line in lines:
        stripped = line.strip()
        if len(stripped) > 100 or stripped.endswith("?"):
            return False
        if _CONTACT.search(stripped) or _PHONE.search(stripped):
            continue
        words = stripped.split()
        if len(words) > 8 or (re.search(r"[.!]$", stripped) and len(words) > 3):
            return False
    return True


def _render(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        if block.context:
            parts.append("\n".join("> " + line for line in block.context) + "\n" + block.text)
        else:
            parts.append(block.text)
    return "\n\n".join(parts).strip()
