"""Authentication-Results read as RFC 8601 writes them, and the verdict the watcher holds a reply on."""

from __future__ import annotations

import pytest

from pipeline.replies.auth import aligned, parse, results, verdict
from pipeline.replies.message import Incoming

OURS = ("mx.northwind.example",)
DANA = "dana.whitfield@acme.example"


def headers(*values: str) -> list[tuple[str, str]]:
    return [("Authentication-Results", v) for v in values]


def test_a_full_header_with_comments_quotes_and_versions() -> None:
    value = (
        'mx.northwind.example 1 (Postfix; "quoted (not a comment)"); spf=pass (sender IP is 192.0.2.1) '
        'smtp.mailfrom=bounces.acme.example; dkim/1=pass (2048-bit (nested) key) header.d=acme.example '
        'header.b="ab;cd"; dmarc=pass (p=quarantine) header.from=acme.example'
    )
    found = parse(value)
    assert [(r.authserv_id, r.method, r.result) for r in found] == [
        ("mx.northwind.example", "spf", "pass"),
        ("mx.northwind.example", "dkim", "pass"),
        ("mx.northwind.example", "dmarc", "pass"),
    ]
    assert found[0].props == {"smtp.mailfrom": "bounces.acme.example"}
    assert found[1].props == {"header.d": "acme.example", "header.b": "ab;cd"}
    assert found[2].props == {"header.from": "acme.example"}


def test_none_and_garbage_give_no_result() -> None:
    assert parse("mx.northwind.example; none") == []
    assert parse("") == []
    assert parse(";;;") == []
    assert parse("((((") == []


def test_only_trusted_hosts_count_and_the_topmost_is_index_zero() -> None:
    found = results(
        headers("mx.evil.example; dmarc=pass header.from=acme.example",
                "MX.Northwind.Example; none",
                "mx.northwind.example; dmarc=pass header.from=acme.example"),
        OURS,
    )
    # The foreign header is ignored; the trusted "none" is the topmost (index 0) though it has no result.
    assert [(r.method, r.result, r.index) for r in found] == [("dmarc", "pass", 1)]


@pytest.mark.parametrize(
    ("domain", "sender_domain", "expected"),
    [
        ("acme.example", "acme.example", True),
        ("mail.acme.example", "acme.example", True),
        ("acme.example", "eu.acme.example", True),
        ("evilacme.example", "acme.example", False),
        ("acme.example.evil.example", "acme.example", False),
        ("", "acme.example", False),
    ],
)
def test_alignment(domain: str, sender_domain: str, expected: bool) -> None:
    assert aligned(domain, sender_domain) is expected


PASS = "mx.northwind.example; dmarc=pass header.from=acme.example"
FAIL = "mx.northwind.example; dmarc=fail (p=reject) header.from=acme.example"


@pytest.mark.parametrize(
    ("values", "changes", "held", "words"),
    [
        ((PASS,), True, False, ""),
        ((FAIL,), True, True, "dmarc=fail"),
        ((FAIL,), False, True, "dmarc=fail"),  # a forgery is held even when it changes nothing
        ((PASS, FAIL), True, True, "dmarc=fail"),  # fail wins, wherever it is
        ((FAIL, PASS), True, True, "dmarc=fail"),
        (("mx.evil.example; dmarc=pass header.from=acme.example",), True, True, "no Authentication-Results"),
        (("mx.evil.example; dmarc=fail header.from=acme.example",), True, True, "no Authentication-Results"),
        (("mx.evil.example; dmarc=fail header.from=acme.example",), False, False, ""),
        ((), True, True, "no Authentication-Results"),
        ((), False, False, ""),
        (("mx.northwind.example; spf=pass smtp.mailfrom=bounce.acme.example",), True, False, ""),
        (("mx.northwind.example; spf=pass smtp.mailfrom=mailer.example",), True, True, "aligned"),
        (("mx.northwind.example; dkim=pass header.d=acme.example",), True, False, ""),
        (("mx.northwind.example; dkim=pass header.i=@acme.example",), True, False, ""),
        (("mx.northwind.example; dkim=pass header.d=esp.example",), True, True, "aligned"),
        (("mx.northwind.example; dmarc=pass header.from=other.example",), True, True, "aligned"),
        (("mx.northwind.example; dmarc=none; spf=softfail smtp.mailfrom=acme.example",), True, True, "aligned"),
        # A pass the sender wrote under ours (our server's own header says none) does not count.
        (("mx.northwind.example; none", PASS), True, True, "aligned"),
        # With several of our headers, only the topmost counts for a pass.
        (("mx.northwind.example; dmarc=temperror", PASS), True, True, "aligned"),
    ],
)
def test_verdict(values: tuple[str, ...], changes: bool, held: bool, words: str) -> None:
    reason = verdict(headers(*values), OURS, DANA, changes=changes)
    assert (reason is not None) is held, reason
    if held:
        assert words in reason


def test_no_trusted_host_named_means_no_header_counts() -> None:
    assert verdict(headers(FAIL), (), DANA) is None
    assert verdict(headers(FAIL), ("", " "), DANA) is None


def test_no_sender_is_never_proven() -> None:
    assert verdict(headers(PASS), OURS, None) is not None


def test_incoming_keeps_the_headers_in_order_and_the_verdict_reads_them() -> None:
    raw = (
        f"Authentication-Results: mx.northwind.example;\r\n dmarc=pass\r\n header.from=acme.example\r\n"
        f"Received: from mx.acme.example by mx.northwind.example\r\n"
        f"Authentication-Results: mx.northwind.example; dmarc=fail header.from=acme.example\r\n"
        f"From: Dana <{DANA}>\r\nSubject: hi\r\n\r\nConfirmed.\r\n"
    ).encode()
    incoming = Incoming.from_bytes(raw)
    assert [name for name, _ in incoming.raw_headers] == [
        "Authentication-Results", "Received", "Authentication-Results", "From", "Subject"
    ]
    assert incoming.raw_headers[0][1] == "mx.northwind.example; dmarc=pass header.from=acme.example"
    assert "dmarc=fail" in verdict(incoming.raw_headers, OURS, incoming.sender)


def test_a_huge_header_costs_a_bounded_amount() -> None:
    value = "mx.northwind.example; " + "; ".join(f"dkim=pass header.d=x{n}.example" for n in range(5000))
    assert len(parse(value)) <= 30
    many = headers(*([PASS] * 500))
    assert len(results(many, OURS)) <= 50
