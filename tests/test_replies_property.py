"""Whatever bytes arrive, reading and interpreting them never raises and stays bounded."""

from __future__ import annotations

from datetime import date
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from replies_expect import FIXTURES, REPLIES

from pipeline.plan.source import parse_plan
from pipeline.replies.bounds import MAX_DEFECTS
from pipeline.replies.bounds import MAX_TEXT_CHARS as MAX_BODY
from pipeline.replies.extract import MAX_TEXT_CHARS, extract
from pipeline.replies.interpret import MAX_UNRESOLVED, interpret, read_reply
from pipeline.replies.message import Incoming

SEEDS = sorted(REPLIES.glob("*.eml"))


@cache
def plan():
    return parse_plan((FIXTURES / "example-plan.md").read_text())


@cache
def seed(index: int) -> bytes:
    return SEEDS[index].read_bytes()


HEADER_LINES = st.sampled_from(
    [
        b"From: \r\n",
        b"From: a@b.example, c@d.example\r\n",
        b"From: =?x-unknown?b?////?= <a@b.example>\r\n",
        b'Content-Type: multipart/mixed; boundary=""\r\n',
        b"Content-Type: text/html; charset=utf-7\r\n",
        b"Content-Type: text/plain; charset=rot13\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Date: Tue, 31 Feb 99999 25:61:00 +9999\r\n",
        b"Message-ID: <<<>>>\r\n",
        b"References: " + b"<a@b> " * 500 + b"\r\n",
        b"Subject: =?utf-8?q?=FF=FE?=\r\n",
        b"Auto-Submitted: \r\n",
        b"\xff\xfe: \x00\r\n",
    ]
)


def mutate(raw: bytes, cuts: list[int], inserts: list[bytes], headers: list[bytes]) -> bytes:
    data = bytearray(b"".join(headers) + raw)
    for position, chunk in zip(cuts, inserts, strict=False):
        at = position % (len(data) + 1)
        data[at:at] = chunk
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0, max_value=len(SEEDS) - 1),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=6),
    inserts=st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from([b"\r\n\r\n", b"--", b"<blockquote>", b"</div>", b"> ", b"=\r\n", b"\x00", b"<"]),
        ),
        max_size=6,
    ),
    headers=st.lists(HEADER_LINES, max_size=3),
)
def test_mutated_fixtures_never_raise(index: int, cuts: list[int], inserts: list[bytes], headers: list[bytes]) -> None:
    raw = mutate(seed(index), cuts, inserts, headers)
    message = Incoming.from_bytes(raw, own_domains=("northwind.example",))
    assert len(message.text) <= MAX_BODY
    assert len(message.defects) <= MAX_DEFECTS
    assert message.kind in ("human", "auto-reply", "bounce", "own")
    result = read_reply(message, plan())
    assert result.intent in ("confirm", "amend", "decline", "comment", "ignore")
    assert len(result.unresolved) <= MAX_UNRESOLVED
    assert len(result.text) <= MAX_TEXT_CHARS


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=3000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    message = Incoming.from_bytes(raw)
    assert message.message_id
    read_reply(message, plan())


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(
        st.one_of(
            st.text(max_size=60),
            st.sampled_from(
                [
                    "Confirmed",
                    "not",
                    "once",
                    "M3",
                    "#4",
                    "item 9",
                    "move",
                    "the pilot",
                    "to March 8",
                    "a week",
                    "later",
                    "earlier",
                    "add a",
                    "remove",
                    "Raj will own",
                    "?",
                    ";",
                    "\n> M2 demo\n",
                    "\n\n",
                    "On Mon wrote:",
                    "-- \n",
                    "12/45/2027",
                    "Feb 30",
                    "end of the month",
                    "next Friday",
                    "I",
                ]
            ),
        ),
        max_size=30,
    ).map(" ".join),
    day=st.dates(min_value=date(1990, 1, 1), max_value=date(9990, 12, 31)) | st.none(),
)
def test_interpret_any_text(text: str, day: date | None) -> None:
    reading = interpret(text, plan(), day)
    assert reading.intent in ("confirm", "amend", "decline", "comment")
    assert len(reading.unresolved) <= MAX_UNRESOLVED
    assert len(extract(text).text) <= MAX_TEXT_CHARS


def test_huge_and_deep_messages_are_bounded() -> None:
    deep = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for level in range(60):
        deep += b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (level, level + 1)
    message = Incoming.from_bytes(b"From: a@b.example\r\n" + deep)
    assert message.kind == "human"
    html = b"<div>" * 5000 + b"Confirmed." + b"</div>" * 5000
    nested = Incoming.from_bytes(b"From: a@b.example\r\nContent-Type: text/html\r\n\r\n" + html)
    assert "Confirmed." in nested.text
    big = b"From: a@b.example\r\n\r\n" + b"Please move the demo to Feb 17. " * 200_000
    reading = read_reply(Incoming.from_bytes(big), plan())
    assert len(reading.text) <= MAX_TEXT_CHARS and len(reading.unresolved) <= MAX_UNRESOLVED


@pytest.mark.parametrize("year", ["9999", "0001", "1900"])
def test_dates_at_the_ends_of_the_calendar(year: str) -> None:
    raw = (
        f"From: dana.whitfield@acme.example\r\nDate: Fri, 31 Dec {year} 23:59:59 -1200\r\n\r\n"
        "Move the demo to next Friday and push the pilot back a week. Make Jan 5 the target date."
    ).encode()
    reading = read_reply(Incoming.from_bytes(raw), plan())
    assert reading.intent in ("amend", "comment")
