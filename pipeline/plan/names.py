"""Names of people and companies compared the way people write them: any case, with or without accents, any script.

The one normalisation the plan's owners, `check`, the reminders and the reply reader share.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from anyascii import anyascii

_WORDS = re.compile(r"[^\W_]+")


@lru_cache(maxsize=4096)
def name_key(text: str) -> str:
    """A name folded for comparison: Latin letters as ASCII (Zoë as zoe, ø as o, ß as ss), other scripts as
    written less their marks, lower-case, words split on anything that is not a letter or digit."""
    folded = []
    for char in unicodedata.normalize("NFKC", text):
        if char.isascii():
            folded.append(char)
        elif unicodedata.name(char, "").startswith("LATIN"):
            folded.append(anyascii(char))
        else:
            # Only Latin is transliterated: 李雷 stays 李雷, so two names that romanise alike stay two names.
            folded.append("".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)))
    return " ".join(_WORDS.findall("".join(folded).casefold()))


def names_person(full_name: str, said: str) -> bool:
    """Whether `said` names the person called `full_name`: the whole name or one word of it (first or last)."""
    parts = name_key(full_name).split()
    key = name_key(said)
    if not key or not parts:
        return False
    # Names written without spaces (李雷, or "JeanLuc") match their spaced form.
    return key == " ".join(parts) or key in parts or key.replace(" ", "") == "".join(parts)
