"""Replies parsed per second, and how well each extractor finds the new text, on the reply fixtures.

    python benchmarks/replies.py [--rounds N]

Every fixture with an expected new text (tests/fixtures/replies/NAME.txt) counts. Two scores per extractor:
- exact: the new text is the expected one (whitespace collapsed; quoted context lines of inline
  replies left out, since the libraries drop them);
- clean: every expected line is there and no line of the quoted history is.
The libraries get the body as text (the same text our extraction starts from); talon, which also reads
HTML, gets the HTML body when the message has one. talon is optional: measured when it imports.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.plan.source import parse_plan  # noqa: E402
from pipeline.replies.extract import extract  # noqa: E402
from pipeline.replies.interpret import read_reply  # noqa: E402
from pipeline.replies.message import Incoming  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
REPLIES = FIXTURES / "replies"
# Lines of the plan email every fixture quotes: any of them in a new text is history that leaked.
HISTORY = (
    "Attached is our Mutual Plan",
    'Please reply "Confirmed" if this matches',
    "decide by 31 March 2027",
    "From: Jordan Lee",
    "Von: Jordan Lee",
    "Sent: Monday, January 11",
    "wrote:",
    "CONFIDENTIALITY NOTICE",
    "intended recipient",
    "Get Outlook for",
    "Sent from my",
)


def normalize(text: str) -> str:
    lines = [line for line in (text or "").replace("\r\n", "\n").split("\n") if not line.lstrip().startswith(">")]
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


def own_lines(text: str) -> list[str]:
    return [re.sub(r"\s+", " ", x).strip() for x in text.split("\n") if x.strip() and not x.lstrip().startswith(">")]


def clean(got: str, want: str) -> bool:
    flat = normalize(got)
    return all(line in flat for line in own_lines(want)) and not any(h in flat for h in HISTORY)


def ours(message: Incoming) -> str:
    return extract(message).text


def mail_parser_reply(message: Incoming) -> str:
    from mailparser_reply import EmailReplyParser

    parsed = EmailReplyParser(languages=["en", "de", "fr", "es"]).parse_reply(message.text)
    return parsed or ""


def email_reply_parser(message: Incoming) -> str:
    from email_reply_parser import EmailReplyParser

    return EmailReplyParser.parse_reply(message.text) or ""


def talon_extractor() -> Callable[[Incoming], str] | None:
    try:
        import talon
        from talon import quotations
    except Exception:
        return None
    talon.init()

    def run(message: Incoming) -> str:
        if message.html:
            from pipeline.replies.html import html_to_text

            return html_to_text(quotations.extract_from_html(message.html))
        return quotations.extract_from_plain(message.text)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="how many times to parse every fixture for the rate")
    parser.add_argument("--show", action="store_true", help="print each fixture where an extractor is not exact")
    args = parser.parse_args()

    names = sorted(p.stem for p in REPLIES.glob("*.eml"))
    raws = {n: (REPLIES / f"{n}.eml").read_bytes() for n in names}
    plan = parse_plan((FIXTURES / "example-plan.md").read_text())

    # The rate: bytes in, interpretation out, as the watcher does it.
    started = time.perf_counter()
    count = 0
    for _ in range(args.rounds):
        for raw in raws.values():
            read_reply(Incoming.from_bytes(raw, own_domains=("northwind.example",)), plan)
            count += 1
    elapsed = time.perf_counter() - started
    reading_only = time.perf_counter()
    for _ in range(args.rounds):
        for raw in raws.values():
            extract(Incoming.from_bytes(raw))
    reading_only = time.perf_counter() - reading_only

    extractors: dict[str, Callable[[Incoming], str]] = {
        "ours": ours,
        "mail-parser-reply": mail_parser_reply,
        "email-reply-parser": email_reply_parser,
    }
    talon_run = talon_extractor()
    if talon_run:
        extractors["talon"] = talon_run

    scored = [n for n in names if (REPLIES / f"{n}.txt").exists()]
    results: dict[str, tuple[int, int]] = {}
    for label, run in extractors.items():
        exact = tidy = 0
        for name in scored:
            message = Incoming.from_bytes(raws[name])
            want = (REPLIES / f"{name}.txt").read_text()
            try:
                got = run(message)
            except Exception as exc:  # a library that fails on a message scores nothing for it
                got = f"<{type(exc).__name__}>"
            if normalize(got) == normalize(want):
                exact += 1
            elif args.show:
                print(f"[{label}] {name}\n  want: {normalize(want)[:160]}\n  got:  {normalize(got)[:160]}")
            if clean(got, want):
                tidy += 1
        results[label] = (exact, tidy)

    print(f"fixtures: {len(names)} messages, {len(scored)} with an expected new text")
    print(f"parse + interpret: {count / elapsed:8.1f} replies/s  ({elapsed / count * 1000:.2f} ms each)")
    print(f"read + extract:    {count / reading_only:8.1f} replies/s")
    print()
    print(f"{'extractor':<20} {'exact':>12} {'clean':>12}")
    for label, (exact, tidy) in results.items():
        print(
            f"{label:<20} {exact:>4}/{len(scored)} {exact / len(scored):>5.0%} {tidy:>4}/{len(scored)} "
            f"{tidy / len(scored):>5.0%}"
        )
    if not talon_run:
        print("talon: not installed here (optional; pip install talon to measure it)")


if __name__ == "__main__":
    main()
