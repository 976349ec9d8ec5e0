"""What ends a sender's own words in a block: signatures, mobile footers, disclaimers and contact details."""

from __future__ import annotations

import re

SIG_DASHES = re.compile(r"^--\s?$")
MOBILE = re.compile(
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


def next_nonblank(lines: list[str], start: int) -> int | None:
    """The next line with text, if one is among the three from `start`."""
    for j in range(start, min(len(lines), start + 3)):
        if lines[j].strip():
            return j
    return None


def clean_block(lines: list[str], removed: list[str]) -> tuple[str, bool]:
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
        if SIG_DASHES.match(stripped):
            removed.append("signature")
            ended = True
            break
        if MOBILE.match(stripped):
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
            name = next_nonblank(lines, i + 1)
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
