"""New text of replies written by others (not our fixtures): ours beside talon, mail-parser-reply, email-reply-parser.

    python -m benchmarks.extraction_compare [--show] [--rounds N]

The corpus is tests/fixtures/others/ (see its README): the reply texts and expected new texts of talon's and
email-reply-parser's own tests, and talon's replies saved from real clients. Every extractor gets the same body
(ours the message itself when there is one, the libraries its text part). Per extractor: exact (the expected new
text, spaces collapsed), contains (the expected new text is all there, perhaps with more), empty (nothing where the
sender wrote something), and the rate. A library that is not installed is left out and said so
(`pip install -e .[compare]` installs them all).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.replies.extract import extract  # noqa: E402
from pipeline.replies.message import Incoming  # noqa: E402

OTHERS = ROOT / "tests" / "fixtures" / "others"
CASE_FILES = (
    ("talon-text-cases.json", "talon tests"),
    ("zapier-cases.json", "email-reply-parser tests"),
    ("mail-parser-reply-cases.json", "mail-parser-reply tests"),
)


@dataclass(frozen=True)
class Case:
    """One reply written by others: the whole new text its authors expect, or words it must and must not hold."""

    source: str
    name: str
    text: str
    expected: str | None
    contains: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    message: Incoming | None = None

    def holds_the_reply(self, got: str) -> bool:
        """Every expected word of the sender there, nothing of the quoted history."""
        text = flat(got)
        return all(flat(w) in text for w in self.contains) and not any(flat(w) in text for w in self.absent)


@dataclass(frozen=True)
class Score:
    """One extractor's figures over the corpus."""

    exact: int
    holds: int
    empty: int
    rate: float
    wrong: tuple[str, ...]


def corpus() -> list[Case]:
    """Every case of tests/fixtures/others/, in a fixed order."""
    cases: list[Case] = []
    for file, source in CASE_FILES:
        for item in json.loads((OTHERS / file).read_text(encoding="utf-8")):
            expected = item.get("expected")
            contains = tuple(item.get("contains") or ([expected] if expected else []))
            cases.append(Case(source, item["id"], item["body"], expected, contains, tuple(item.get("absent") or ())))
    for eml in sorted((OTHERS / "talon-standard-replies").glob("*.eml")):
        message = Incoming.from_bytes(eml.read_bytes())
        expected = eml.with_name(f"{eml.stem}_reply_text")
        # talon's test: the reply text file when there is one, else "Hello" (what every one of these says).
        want = expected.read_text(encoding="utf-8").strip() if expected.exists() else "Hello"
        cases.append(Case("talon client replies", eml.stem, message.text, want, (want,), (), message))
    return cases


def flat(text: str) -> str:
    """Spaces collapsed, the way the scores compare texts."""
    return re.sub(r"\s+", " ", text or "").strip()


def ours(case: Case) -> str:
    """Our new text: the sender's own words (an inline reply's quoted context is kept apart, as the libraries do)."""
    return extract(case.message if case.message is not None else case.text).own


def extractors() -> tuple[dict[str, Callable[[Case], str]], list[str]]:
    """Ours and every library that imports; the names of those that did not."""
    found: dict[str, Callable[[Case], str]] = {"ours": ours}
    missing: list[str] = []
    try:
        from talon import quotations

        found["talon"] = lambda case: quotations.extract_from_plain(case.text)
    except Exception:
        missing.append("talon")
    try:
        from mailparser_reply import EmailReplyParser as MailParserReply
        from mailparser_reply.constants import MAIL_LANGUAGES

        languages = [k for k in MAIL_LANGUAGES if len(k) == 2]
        found["mail-parser-reply"] = lambda case: MailParserReply(languages=languages).parse_reply(case.text) or ""
    except Exception:
        missing.append("mail-parser-reply")
    try:
        from email_reply_parser import EmailReplyParser

        found["email-reply-parser"] = lambda case: EmailReplyParser.parse_reply(case.text) or ""
    except Exception:
        missing.append("email-reply-parser")
    return found, missing


def score(run: Callable[[Case], str], cases: list[Case], rounds: int) -> Score:
    """Exact, holds-the-reply and empty counts over the cases, the rate, and the cases that were not right."""
    exact = holds = empty = 0
    wrong: list[str] = []
    for case in cases:
        try:
            got = run(case)
        except Exception as exc:  # a library that fails on a reply scores nothing for it
            got = f"<{type(exc).__name__}>"
        right = case.holds_the_reply(got)
        if case.expected is not None:
            right = flat(got) == flat(case.expected)
            exact += right
        holds += case.holds_the_reply(got)
        empty += not flat(got)
        if not right:
            want = case.expected if case.expected is not None else f"{case.contains}, not {case.absent}"
            wrong.append(f"{case.source} / {case.name}: {flat(got)[:100]!r}, expected {flat(want)[:100]!r}")
    started = time.perf_counter()
    for _ in range(rounds):
        for case in cases:
            with contextlib.suppress(Exception):  # scored above; here only the time counts
                run(case)
    rate = rounds * len(cases) / (time.perf_counter() - started)
    return Score(exact, holds, empty, rate, tuple(wrong))


def percent(part: int, whole: int) -> str:
    """"12/34 (35%)"."""
    return f"{part}/{whole} ({100 * part // max(whole, 1)}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="how many times each case is read for the rate")
    parser.add_argument("--show", action="store_true", help="print every case where an extractor is not exact")
    args = parser.parse_args()
    cases = corpus()
    found, missing = extractors()
    whole = sum(c.expected is not None for c in cases)
    print(f"{len(cases)} replies written by others ({', '.join(sorted({c.source for c in cases}))})\n")
    print(f"| extractor | exact (of {whole}) | holds the reply, no history | empty | replies/s |")
    print("| --- | --- | --- | --- | --- |")
    for label, run in found.items():
        result = score(run, cases, args.rounds)
        row = f"| {label} | {percent(result.exact, whole)} | {percent(result.holds, len(cases))} | {result.empty} |"
        print(f"{row} {result.rate:,.0f} |")
        if args.show:
            for line in result.wrong:
                print(f"    {label}: {line}")
    for name in missing:
        print(f"\n{name} is not installed: not measured (pip install -e .[compare])")


if __name__ == "__main__":
    main()
