"""Random and mutated MIME: nothing escapes reading, interpreting or authenticating a message, and nothing it
returns grows with the input.

Three sources: MIME trees built at random (any nesting, content type, charset, transfer encoding, file name and
boundary, the broken ones included), the hostile corpus and the reply fixtures mutated byte by byte, and the
headers the watcher reads on their own (From, Authentication-Results, delivery reports).
"""

from __future__ import annotations

import base64
import quopri
import re
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.plan.source import parse_plan
from pipeline.render.templates import default_templates as templates_dir
from pipeline.replies.auth import MAX_RESULTS, parse, verdict
from pipeline.replies.bounce import MAX_RECIPIENTS, delivery_failure
from pipeline.replies.bounds import (
    MAX_DEFECTS,
    MAX_HEADER_CHARS,
    MAX_HTML_CHARS,
    MAX_KEYS,
    MAX_RAW_HEADER_CHARS,
    MAX_RAW_HEADERS,
    MAX_TEXT_CHARS,
)
from pipeline.replies.extract import MAX_TEXT_CHARS as MAX_EXTRACT
from pipeline.replies.interpret import INTENTS, MAX_SENTENCE_CHARS, MAX_SENTENCES, MAX_UNRESOLVED, read_reply
from pipeline.replies.message import KINDS, Incoming

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = sorted([*(FIXTURES / "hostile").glob("*.eml"), *(FIXTURES / "replies").glob("*.eml")])
TRUSTED = ("mx.northwind.example",)
OWN = ("northwind.example",)
# What a reader must never pass on: C0 controls but tab and newline, C1 controls, bidi overrides and isolates.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@cache
def plan():
    return parse_plan((templates_dir() / "plans" / "example.md").read_text(encoding="utf-8"), file="example.md")


@cache
def seed(index: int) -> bytes:
    return SEEDS[index].read_bytes()


def check(raw: bytes) -> None:
    """Read, interpret and authenticate one message; every output bounded, nothing raised."""
    message = Incoming.from_bytes(raw, own_domains=OWN)
    assert message.kind in KINDS
    assert message.message_id and len(message.message_id) <= 420
    assert message.sender is None or ("@" in message.sender and len(message.sender) <= 400)
    assert len(message.sender_name) <= 200
    assert len(message.subject) <= MAX_HEADER_CHARS
    assert len(message.text) <= MAX_TEXT_CHARS
    assert message.html is None or len(message.html) <= 4 * MAX_HTML_CHARS
    assert len(message.defects) <= MAX_DEFECTS and all(len(d) <= 200 for d in message.defects)
    assert len(message.thread_keys) <= MAX_KEYS and len(message.references) <= MAX_KEYS
    assert len(message.to) <= 500 and len(message.cc) <= 500
    assert len(message.raw_headers) <= MAX_RAW_HEADERS
    assert all(len(v) <= MAX_RAW_HEADER_CHARS for _, v in message.raw_headers)
    for shown in (message.subject, message.text, message.sender_name):
        assert not _INVISIBLE.search(shown)
    assert message.malformed is None or isinstance(message.malformed, str)

    reading = read_reply(message, plan())
    assert reading.intent in INTENTS
    assert len(reading.text) <= MAX_EXTRACT
    assert len(reading.unresolved) <= MAX_UNRESOLVED
    assert all(len(s) <= MAX_SENTENCE_CHARS + 10 for s in reading.unresolved)
    assert len(reading.changes) <= MAX_SENTENCES

    for changes in (True, False):
        reason = verdict(message.raw_headers, TRUSTED, message.sender, changes=changes)
        assert reason is None or len(reason) <= 400
    failure = delivery_failure(raw)
    assert len(failure.recipients) <= MAX_RECIPIENTS
    assert len(failure.describe()) <= 1000


# --- MIME trees built at random -----------------------------------------------------------------------

WORDS = st.sampled_from([
    "Confirmed.", "Please move the pilot to March 8.", "I do NOT confirm.", "remove the legal review",
    "<script>alert(1)</script>", "<img src=file:///etc/passwd>", "url(http://169.254.169.254/)", "\u202e", "\x00",
    "=?utf-8?b?4oCu?=", "--b1", "--b1--", "\r\n\r\n", "> quoted", "On Mon, Jan 11, 2027 Jordan wrote:", "=\r\n",
    "=00", "\xff", "日本語", "Ünïcödé", "-- \r\n", "<div>" * 30,
])
TEXT = st.lists(st.one_of(WORDS, st.text(max_size=40)), max_size=12).map(" ".join)
CHARSETS = st.sampled_from([
    "utf-8", "us-ascii", "iso-8859-1", "windows-1252", "iso-2022-jp", "big5", "gb2312", "koi8-r", "utf-16",
    "utf-7", "x-unknown", "unknown-8bit", "", "rot13", "base64", "zlib", "idna", "x-mac-klingon", '"', "utf-8;;",
])
ENCODINGS = st.sampled_from(["", "7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "bogus"])
LEAF_TYPES = st.sampled_from([
    "text/plain", "text/html", "application/octet-stream", "message/rfc822", "message/delivery-status",
    "text/rfc822-headers", "image/svg+xml", "text/calendar", "", "text/", "/",
])
BOUNDARIES = st.sampled_from(["b1", "b2", "", "b1 b2", '"', "=_x", "--", "a" * 80, "ü"])


def _payload(text: str, charset: str, encoding: str) -> bytes:
    try:
        data = text.encode(charset or "utf-8")
    except (LookupError, UnicodeError, TypeError, ValueError):
        data = text.encode("utf-8", "surrogatepass")
    if encoding == "base64":
        return base64.encodebytes(data)
    if encoding == "quoted-printable":
        return quopri.encodestring(data)
    return data


@st.composite
def leaves(draw: st.DrawFn) -> bytes:
    ctype, charset, encoding = draw(LEAF_TYPES), draw(CHARSETS), draw(ENCODINGS)
    lines = [f'Content-Type: {ctype}; charset="{charset}"']
    name = draw(st.sampled_from(["", "notes.html", "setup.exe", "a\u202eexe.txt", "../../etc/passwd"]))
    if name:
        lines[0] += f'; name="{name}"'
        lines.append(f"Content-Disposition: {draw(st.sampled_from(['attachment', 'inline', '']))}; filename={name}")
    if encoding:
        lines.append(f"Content-Transfer-Encoding: {encoding}")
    head = "\r\n".join(lines).encode("utf-8", "surrogatepass")
    return head + b"\r\n\r\n" + _payload(draw(TEXT), charset, encoding)


def _multipart(children: tuple[str, str, bool, list[bytes]]) -> bytes:
    subtype, boundary, closed, parts = children
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\npreamble\r\n'.encode()]
    for part in parts:
        out.append(f"--{boundary}\r\n".encode() + part + b"\r\n")
    if closed:
        out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


TREES = st.recursive(
    leaves(),
    lambda inner: st.tuples(
        st.sampled_from(["mixed", "alternative", "related", "report; report-type=delivery-status", "digest", ""]),
        BOUNDARIES, st.booleans(), st.lists(inner, max_size=4),
    ).map(_multipart),
    max_leaves=8,
)
FROMS = st.sampled_from([
    "Dana Whitfield <dana.whitfield@acme.example>", "dana.whitfield@acme.example@evil.example",
    "dana.whitfield@acme.example(raj.patel@acme.example", "", "a@x.example, b@y.example",
    '"Raj Patel (CFO)" <raj@evil.example>', "=?utf-8?q?Dana=E2=80=AE?= <dana.whitfield@acme.example>",
    "<>", "@", "undisclosed-recipients:;", "MAILER-DAEMON@mx.northwind.example",
])
HEADERS = st.lists(st.sampled_from([
    "Authentication-Results: mx.northwind.example; dmarc=pass header.from=acme.example",
    "Authentication-Results: mx.northwind.example; dmarc=fail (p=reject",
    'Authentication-Results: mx.northwind.example; dkim=pass header.d="acme.example;',
    "Authentication-Results: ; ; ;", "Authentication-Results: (((((",
    "Auto-Submitted: auto-replied", "Precedence: bulk", "X-Mutual-Plan: x", "X-Failed-Recipients: a@b",
    "In-Reply-To: <plan.acme-northwind-2027.v1@northwind.example>", "References: " + "<a@b> " * 80,
    "Message-ID: <plan.acme-northwind-2027.v9.notice.x@northwind.example>", "Message-ID:", "Date: tomorrow",
    "Date: Mon, 01 Dec 2031 09:00:00 -0800", "Subject: =?iso-2022-jp?b?GyRC?=", "Subject: " + "x" * 3000,
    "MIME-Version: 1.0", " continuation first",
]), max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sender=FROMS, headers=HEADERS, subject=TEXT, body=TREES)
def test_random_mime_trees(sender: str, headers: list[str], subject: str, body: bytes) -> None:
    top = [f"From: {sender}", "To: jordan.lee@northwind.example", f"Subject: {subject}", *headers]
    check("\r\n".join(top).encode("utf-8", "surrogatepass") + b"\r\n" + body)


# --- the corpus, mutated -----------------------------------------------------------------------------

TOKENS = st.sampled_from([
    b"\r\n\r\n", b"\n", b"--", b"--=_exe--", b"Content-Type: multipart/mixed; boundary=x\r\n", b"=?utf-8?b?",
    b"=00", b"\x00", b"\xe2\x80\xae", b"\xff\xfe", b"<", b"<script>", b": ", b"\r\n ", b"From: a@b@c\r\n",
    b"charset=zlib", b"Content-Transfer-Encoding: base64\r\n", b"> ", b"=\r\n",
])
OPS = st.lists(st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), TOKENS),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 400)),
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(0, 255)),
    st.tuples(st.just("repeat"), st.integers(0, 1 << 16), st.integers(1, 200)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 16), st.just(0)),
    st.tuples(st.just("splice"), st.integers(0, 1 << 16), st.integers(0, len(SEEDS) - 1)),
), max_size=8)


def mutated(raw: bytes, ops: list[tuple[str, int, object]]) -> bytes:
    data = bytearray(raw)
    for op, position, arg in ops:
        at = position % (len(data) + 1)
        if op == "insert":
            data[at:at] = arg  # type: ignore[assignment]
        elif op == "delete":
            del data[at : at + int(arg)]  # type: ignore[call-overload]
        elif op == "flip" and at < len(data):
            data[at] = int(arg)  # type: ignore[call-overload]
        elif op == "repeat":
            data[at:at] = bytes(data[at : at + int(arg)]) * 20  # type: ignore[call-overload]
        elif op == "truncate":
            del data[at:]
        elif op == "splice":
            other = seed(int(arg))  # type: ignore[call-overload]
            data[at:] = other[len(other) // 2 :]
    return bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(SEEDS) - 1), ops=OPS)
def test_mutated_corpus(index: int, ops: list[tuple[str, int, object]]) -> None:
    check(mutated(seed(index), ops))


# --- the headers the watcher reads on their own ---------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(["mx.northwind.example", ";", "(", ")", '"', "\\", "=", ".", " ", "dmarc", "pass",
                              "fail", "header.from", "acme.example", "spf", "dkim/1", "none"]), max_size=60)
    .map("".join),
))
def test_any_authentication_results(value: str) -> None:
    results = parse(value)
    assert len(results) <= MAX_RESULTS
    reason = verdict([("Authentication-Results", value)] * 3, TRUSTED, "dana.whitfield@acme.example")
    assert reason is None or len(reason) <= 400


def test_every_seed_reads_cleanly() -> None:
    assert len(SEEDS) > 100
    for index in range(len(SEEDS)):
        check(seed(index))
