"""Who a plan is for: a company's distinctive words (legal forms dropped, transliterated to ASCII) and whether two
prospects are the same company, so an id names its prospect and one prospect's file never becomes another's plan."""

from __future__ import annotations

import re
import unicodedata

from anyascii import anyascii

from pipeline.plan.model import Prospect

# Legal forms as a name's last words (several may follow each other: "GmbH & Co. KG"), written as they are
# after dots and commas are dropped and the case folded ("S.A." is "sa", "Co., Ltd." is "co ltd").
_SUFFIXES = frozenset(re.findall(r"\S+", """
    ltd limited plc inc incorporated corp corporation co company llc llp lp lllp pllc pc
    gmbh ag kg kgaa ohg ug mbh ev se sa sas sasu sarl eurl snc sca srl srls spa sapa sl slu sll
    bv nv vof cv oy oyj ab asa as aps ks kk pty pte bhd sdn tbk sro spol zoo kft zrt nyrt rt
    dd doo ad ood eood oao ooo zao pao ao ae oe ike epe ltda eireli cia sab
"""))
# Legal forms of several words that are ordinary words alone ("z" of "Sp. z o.o.", "S" of "A/S").
_SUFFIX_RUNS = (("sp", "z", "oo"), ("s", "a"), ("s", "l"), ("s", "r", "l"), ("b", "v"), ("n", "v"), ("k", "k"),
                ("a", "s"))
# Legal forms written in front of the name ("ООО Ромашка", "PT Astra", "شركة الأفق"), and a leading "The".
_PREFIXES = frozenset(re.findall(r"\S+", "ооо оао зао пао ао ип тов пт pt cv the شركة مؤسسة"))
# Forms that are part of the word in scripts without spaces: 株式会社山田製作所, 山田製作所株式会社, (株)山田.
_ATTACHED = ("株式会社", "有限会社", "合同会社", "合資会社", "合名会社", "(株)", "(有)", "股份有限公司", "有限责任公司",
             "有限公司", "公司", "주식회사", "유한회사", "(주)")  # fmt: skip
_ARABIC_SUFFIXES = frozenset({"ذمم", "شمم", "شمل", "ش.م.م", "ذ.م.م"})


def _token(word: str) -> str:
    return re.sub(r"[.,()]", "", word).casefold()


def _strip_attached(name: str) -> str:
    changed = True
    while changed:
        changed = False
        for form in _ATTACHED:
            if name.startswith(form) or name.endswith(form):
                stripped = name.removeprefix(form) if name.startswith(form) else name.removesuffix(form)
                if stripped.strip():
                    name, changed = stripped.strip(), True
    return name


def _drop_legal(words: list[str]) -> list[str]:
    # One word always stays: "The Company" is "Company", "Company Inc" is "Company".
    tokens = [_token(w) for w in words]
    start, end = 0, len(words)
    while end - start > 1 and tokens[start] in _PREFIXES:
        start += 1
    while end - start > 1:
        run = next((r for r in _SUFFIX_RUNS if tuple(tokens[end - len(r) : end]) == r and end - len(r) > start), None)
        if run:
            end -= len(run)
        elif tokens[end - 1] in _SUFFIXES or tokens[end - 1] in _ARABIC_SUFFIXES:
            end -= 1
        else:
            break
    return words[start:end]


def short_company(name: str) -> str:
    """A company's name as people write it: without its legal form ("Acme Corp" -> "Acme", "GmbH & Co. KG" gone,
    株式会社山田製作所 -> 山田製作所), in its own script and case; the name itself when nothing is left."""
    words = _strip_attached(unicodedata.normalize("NFKC", name).strip()).split()
    while True:  # "Müller GmbH & Co. KG": the forms, then the "&" between them, then the next form
        kept = _drop_legal(words)
        while len(kept) > 1 and not any(ch.isalnum() for ch in kept[-1]):
            kept = kept[:-1]
        if kept == words:
            break
        words = kept
    return " ".join(words).rstrip(" ,&") or name.strip()


def short_name(prospect: Prospect) -> str:
    """How subjects and greetings name the prospect: `prospect.short_name`, else the company without its legal form."""
    return prospect.short_name or short_company(prospect.company)


def company_words(name: str) -> list[str]:
    """A company name's distinctive words in lower-case ASCII: "Global Logistics Ltd" -> ["global", "logistics"]."""
    text = _strip_attached(unicodedata.normalize("NFKC", name).strip())
    # Words are what spaces, commas and "&" separate; a word of punctuation alone names nothing.
    words = [w for w in re.split(r"[\s,&+/]+", text) if any(ch.isalnum() for ch in w)]
    out: list[str] = []
    for word in _drop_legal(words):
        ascii_word = re.sub(r"['’`]", "", anyascii(word)).lower()
        out.extend(part for part in re.split(r"[^a-z0-9]+", ascii_word) if part)
    return out


def mail_domains(prospect: Prospect) -> set[str]:
    """The domains of the prospect's contacts' addresses."""
    return {c.email.rpartition("@")[2].lower() for c in prospect.contacts if "@" in c.email}


def same_prospect(a: Prospect, b: Prospect) -> bool:
    """Whether two plans are for the same company: one name's distinctive words hold the other's ("Acme" and
    "Acme Corporation"), and their contacts share a mail domain when both name contacts."""
    words_a, words_b = set(company_words(a.company)), set(company_words(b.company))
    if not words_a or not words_b or not (words_a <= words_b or words_b <= words_a):
        return False
    domains_a, domains_b = mail_domains(a), mail_domains(b)
    return not domains_a or not domains_b or bool(domains_a & domains_b)


def describe(prospect: Prospect) -> str:
    """The prospect as an error names it: its company and its contacts' mail domains."""
    domains = ", ".join(sorted(mail_domains(prospect)))
    return f"{prospect.company} ({domains})" if domains else prospect.company
