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
    r"|mensagem original|исходное сообщение|oryginalna wiadomość|wiadomość oryginalna|opprinnelig melding"
    r"|ursprungligt meddelande|原始邮件|原始郵件|元のメッセージ"
    r"|forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado)"
    r"\s*-{2,}\s*$",
    re.IGNORECASE,
)


def _library_lists() -> tuple[str, list[str], list[str]]:
    """mail-parser-reply's "wrote:" header patterns and Outlook header labels (From first), every language."""
    try:
        from mailparser_reply.constants import MAIL_LANGUAGES
    except ImportError:  # the lists of our own below still read the common clients
        return "(?!)", [], []
    wrote, senders, others = [], [], []
    for language in MAIL_LANGUAGES.values():
        if language.get("wrote_header"):
            wrote.append(f"(?:{language['wrote_header']})")
        labels = re.search(r"\[\* \]\*\(\?:([^()]+)\):", language.get("from_header", ""))
        if labels:
            names = [n.strip() for n in labels.group(1).split("|") if n.strip()]
            senders.append(names[0])
            others.extend(names[1:])
    return "|".join(wrote) or "(?!)", senders, others


_LIBRARY_WROTE, _LIBRARY_FROM, _LIBRARY_OTHER = _library_lists()
# Languages and clients the library does not list: Russian, Norwegian, Portuguese, Japanese and Chinese Outlook.
_FROM_LABEL = "|".join(
    [*_LIBRARY_FROM, "from", "von", "de", "van", "da", "från", "fra", "od", "от", "发件人", "寄件者", "差出人"]
)
_OTHER_LABEL = "|".join(
    [*_LIBRARY_OTHER, "sent", "date", "to", "subject", "cc", "gesendet", "datum", "an", "betreff", "envoyé", "à",
     "objet", "enviado(?: el)?", "fecha", "para", "asunto", "assunto", "verzonden", "aan", "onderwerp", "inviato",
     "data", "a", "oggetto", "skickat", "till", "ämne", "sendt", "til", "emne", "kopi", "отправлено", "кому",
     "тема", "дата", "копия", "wysłano", "do", "temat", "dw", "发送时间", "收件人", "主题", "抄送", "日期", "寄件日期",
     "收件者", "主旨", "副本", "送信日時", "宛先", "件名", "日付"]
)
_HEADER_FROM = re.compile(rf"^\s*\*?(?:{_FROM_LABEL})\s?[:：]\*?\s*\S", re.IGNORECASE)
_HEADER_OTHER = re.compile(rf"^\s*\*?(?:{_OTHER_LABEL})\s?[:：]\*?\s*\S", re.IGNORECASE)
_SEPARATOR = re.compile(r"^\s*(?:_{10,}|-{20,}|={20,})\s*$")
# "On <date>, <name> wrote:" and its forms in other languages, opening with the words that open a header.
_WROTE_STRONG = re.compile(
    r"^(?:on\s.{4,250}\bwrote|am\s.{4,250}\bschrieb\b.{0,200}|le\s.{4,250}\ba\s+écrit|el\s.{4,250}\bescribió"
    r"|op\s.{4,250}\bschreef\b.{0,200}|il\s.{4,250}\bha\s+scritto|em\s.{4,250}\bescreveu"
    r"|den\s.{4,250}\bskrev\b.{0,200}|på\s.{4,250}\bskrev\b.{0,200}|op\s.{4,250}\bgeschreven"
    r"|(?:dnia|w dniu)\s.{4,250}\b(?:pisze|napisał(?:\(a\)|a)?)"
    # Apple Mail and iOS in Polish and Japanese: the verb first, or the date first and "のメール" last.
    r"|wiadomość napisana przez\s.{4,250}|\d{4}\s?[/年.-]\s?\d{1,2}\s?[/月.-]\s?\d{1,2}.{1,250}のメール)\s?[:：]\s*$",
    re.IGNORECASE,
)
_LIBRARY_WROTE_RE = re.compile(_LIBRARY_WROTE)
# A header by its last words only ("<name> wrote:", "<date> <name> <address>:"): one when quoted lines follow.
_WROTE_LOOSE = re.compile(
    r"^(?:.{1,250}\b(?:wrote|schrieb|a écrit|escribió|schreef|ha scritto|escreveu|skrev|napisał\(a\)|napisała"
    r"|napisał|pisze|написал\(а\)|написала|написал|пишет|geschreven)\s?[:：]|.{1,250}(?:写道|寫道|のメール)\s?[:：]"
    r"|.{0,150}\d.{0,150}<[^<>\s]+@[^<>\s]+>\s?[:：]?)\s*$",
    re.IGNORECASE,
)
QUOTED = re.compile(r"^\s*>")
_MAX_HEADER = 400
# The sender's words and an "On ... wrote:" header on one line ("reply On Wed, ... wrote:", "text--- On ...").
_SHARED = re.compile(
    r"^(?P<own>.*?\S)\s*-*\s*(?P<header>(?:On|Am|Le|El|Op|Il|Em|Den|Dnia)\s.{4,250}\b(?:wrote|schrieb|a écrit"
    r"|escribió|schreef|ha scritto|escreveu|skrev|napisał(?:\(a\))?)\s?:)\s*$"
)
# A header set between dashes: "---- John wrote ----", "------On <date>, John wrote-----".
_DASHED = re.compile(r"^-{2,}\s*(.+?)\s*-{2,}$")
# A link alone on a line, in parentheses or not, perhaps with a quote mark left over from the wrap.
_LINK_LINE = re.compile(r"^\(?(?:https?://|www\.)\S+\)?\s*>?$", re.IGNORECASE)
# What any of mail-parser-reply's headers has: a line ending in a colon, or a label and a colon opening one.
_MAYBE_HEADER = re.compile(r"[:：]\s*$|^[\s>*]*[^\s:：]{1,30}\s?[:：]")
# A line that carries on the header above it: the rest of a wrapped address, or the verb.
_CONTINUED = re.compile(r"^(?:<|[\w.+-]+@|\(?mailto:)")


def requote_broken_links(lines: list[str]) -> list[str]:
    """An unquoted line that only finishes a link of the quoted line above it is quoted too (a wrapped URL)."""
    out = list(lines)
    for index in range(1, len(out)):
        line, above = out[index].strip(), out[index - 1]
        if not line or QUOTED.match(out[index]) or not QUOTED.match(above):
            continue
        open_paren = above.count("(") > above.count(")") and " " not in line.rstrip(" >")
        if open_paren or _LINK_LINE.match(line):
            out[index] = "> " + line
    return out


def split_shared_headers(lines: list[str]) -> list[str]:
    """Lines with a quote header after the sender's own words on the same line split in two, when quotes follow."""
    out: list[str] = []
    for index, line in enumerate(lines):
        found = _SHARED.match(line) if len(line) < 2 * _MAX_HEADER and ":" in line else None
        nxt = next_nonblank(lines, index + 1) if found else None
        if found and nxt is not None and QUOTED.match(lines[nxt]) and not QUOTED.match(line):
            out.extend((found.group("own"), found.group("header")))
        else:
            out.append(line)
    return out


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
        if (_HEADER_FROM.match(line) and _header_block(lines, i)) or _dated_block(lines, i):
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
    if not any(_MAYBE_HEADER.search(line) for line in lines):
        return n  # every header the library knows ends in a colon or opens with a label and one: none here
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


def _dated_block(lines: list[str], i: int) -> bool:
    """A header block that starts with another label than From ("Date:", "Sent:"): three header lines, a From."""
    run = []
    for line in lines[i : i + 6]:
        if not line.strip() or not (_HEADER_FROM.match(line) or _HEADER_OTHER.match(line)):
            break
        run.append(line)
    return len(run) >= 3 and _HEADER_OTHER.match(run[0]) is not None and any(_HEADER_FROM.match(x) for x in run)


def _wrote_header(lines: list[str], i: int) -> int | None:
    """The last line of an "On ... wrote:" header that starts at line i, if one does (up to three lines)."""
    line = lines[i].strip()
    if line == QUOTE_HEADER:
        return i
    if QUOTED.match(line) or len(line) > _MAX_HEADER:
        return None
    joined = line
    for j in range(i, min(i + 3, len(lines))):
        if j > i:
            if not lines[j].strip() or QUOTED.match(lines[j]):
                return None
            joined += " " + lines[j].strip()
            if len(joined) > _MAX_HEADER:
                return None  # no client writes a header this long; the library's patterns slow down on long text
        strength = _wrote_strength(joined)
        if not strength:
            continue
        if strength == 1:
            # A long sentence that happens to end in "wrote:" is not a header unless quotes follow.
            nxt = next_nonblank(lines, j + 1)
            if nxt is None or not QUOTED.match(lines[nxt]):
                continue
        if j > i and _later_start(lines, i, j, strength):
            # The sender's own line sits straight above the header: the header starts below it.
            return None
        return j
    return None


def _wrote_strength(text: str) -> int:
    """2 for a header that opens as headers do ("On ...", "Am ..."), 1 for one known by its end only, else 0."""
    dashed = _DASHED.match(text)
    if dashed:
        # Set between dashes, "<name> wrote" is a header however it opens (Android: "---- Jordan wrote ----").
        text = dashed.group(1).rstrip(":") + ":"
        return 2 if _WROTE_STRONG.match(text) or _WROTE_LOOSE.match(text) else 0
    if _WROTE_STRONG.match(text) or _LIBRARY_WROTE_RE.match(text):
        return 2
    return 1 if _WROTE_LOOSE.match(text) else 0


def _later_start(lines: list[str], i: int, j: int, strength: int) -> bool:
    """Whether lines i+1..j hold a header on their own, as good as the one read from line i or better."""
    for k in range(i + 1, j + 1):
        if _CONTINUED.match(lines[k].strip()) or lines[k - 1].rstrip().endswith("<"):
            continue  # the rest of a wrapped address: the header started above
        alone = _wrote_strength(" ".join(lines[m].strip() for m in range(k, j + 1)))
        if alone == 2 or (alone and strength == 1):
            return True
    return False


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
