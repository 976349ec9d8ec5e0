"""Bytes of mail as text whatever charset they claim, and text cleaned of what a reader must never see."""

from __future__ import annotations

import codecs
import re

from pipeline.replies.bounds import Notes

# Declared charsets that Python does not know, or knows under a narrower name than mail clients mean.
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    # Windows-1252 is what senders mean by Latin-1 nearly always (curly quotes live in 0x80-0x9f).
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
}
_UNKNOWN_CHARSETS = {"unknown-8bit", "x-unknown", "default", "unknown", "x-user-defined", "charset"}
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Bidi embeddings, overrides and isolates reorder what a reader sees ("Trojan Source"); the marks (LRM, RLM) only
# nudge neutral characters and stay. C1 controls are invisible too (bytes a legacy charset left undecoded).
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u0080-\u009f]")


def clean(text: str) -> str:
    """Text without control characters (but newlines and tabs) and bidi overrides, before anyone shows it."""
    return BIDI.sub("", CONTROL.sub("", text))


def decode_bytes(data: bytes, charset: str | None, notes: Notes | None = None) -> str:
    """Bytes as text: the declared charset if Python knows it, then UTF-8, then Windows-1252; never fails."""
    tried: list[str] = []
    name = (charset or "").strip().strip("\"'").lower()
    if name and name not in _UNKNOWN_CHARSETS:
        tried.append(_CHARSET_ALIASES.get(name, name))
    tried += ["utf-8", "cp1252"]
    for candidate in tried:
        try:
            info = codecs.lookup(candidate)
            if not getattr(info, "_is_text_encoding", True):
                continue
            return data.decode(info.name)
        except (LookupError, UnicodeDecodeError, ValueError, TypeError):
            continue
        except Exception:
            continue
    if notes is not None and name:
        notes.add(f"charset {name[:40]!r} unreadable; decoded as Latin-1")
    return data.decode("latin-1")
