"""Our own DKIM check: a signed reply passes, an altered one fails, a missing key is told apart, and the key
record used is kept so that a later review does not ask DNS again."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from pipeline.replies import dkim as ours
from pipeline.store import Store, schema
from tests.loop_support import DANA, reply
from tests.test_store import url  # noqa: F401 - the two databases, as the store's tests open them

WHEN = datetime(2027, 1, 12, 16, 0, tzinfo=UTC)


def make_key() -> tuple[bytes, str]:
    """A fresh RSA key: its private PEM, and its DKIM TXT record."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


KEY, RECORD = make_key()


def signed(body: str = "Confirmed.", *, domain: str = "acme.example", selector: str = "mail") -> bytes:
    """A reply from Dana, signed by `domain` the way her mail server would."""
    raw = reply(DANA, body, message_id="<c1@acme.example>", when=WHEN)
    signature = dkim.sign(raw, selector.encode(), domain.encode(), KEY,
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return signature + raw


def resolver(records: dict[str, str]) -> Callable[..., bytes | None]:
    """A local DNS: TXT records by name, and a list of the names asked for."""
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        lookup.asked.append(name.decode())  # type: ignore[attr-defined]
        found = records.get(name.decode().rstrip("."))
        return found.encode() if found is not None else None
    lookup.asked = []  # type: ignore[attr-defined]
    return lookup


def test_a_signed_reply_passes_and_keeps_the_key_record_it_used() -> None:
    dns = resolver({"mail._domainkey.acme.example": RECORD})
    found = ours.check(signed(), dnsfunc=dns)
    assert (found.result, found.domain, found.selector) == ("pass", "acme.example", "mail")
    assert found.key_record == RECORD
    assert dns.asked == ["mail._domainkey.acme.example."]  # type: ignore[attr-defined]
    assert found.describe() == "dkim=pass (d=acme.example s=mail)"


def test_a_body_altered_after_signing_fails() -> None:
    raw = signed("Confirmed.").replace(b"Confirmed.", b"Declined.!")
    found = ours.check(raw, dnsfunc=resolver({"mail._domainkey.acme.example": RECORD}))
    assert found.result == "fail"
    assert found.key_record == RECORD  # what it was checked against, even when it failed


def test_a_signature_whose_key_is_not_in_dns_is_no_key() -> None:
    found = ours.check(signed(), dnsfunc=resolver({}))
    assert (found.result, found.domain, found.key_record) == ("no key", "acme.example", None)
    assert "mail._domainkey.acme.example" in found.reason


def test_another_key_under_the_selector_fails() -> None:
    _, other = make_key()
    found = ours.check(signed(), dnsfunc=resolver({"mail._domainkey.acme.example": other}))
    assert found.result == "fail"


def test_an_unsigned_message_has_no_verdict_and_asks_dns_nothing() -> None:
    dns = resolver({})
    found = ours.check(reply(DANA, "Confirmed.", message_id="<c2@acme.example>", when=WHEN), dnsfunc=dns)
    assert found.result == "none"
    assert dns.asked == []  # type: ignore[attr-defined]


def test_dns_that_does_not_answer_is_a_temporary_error() -> None:
    def down(name: bytes, timeout: int = 5) -> bytes | None:
        raise dkim.DnsTimeoutError("timed out")
    assert ours.check(signed(), dnsfunc=down).result == "temperror"


def test_the_one_lookup_function_is_what_the_check_uses_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ours, "lookup_txt", resolver({"mail._domainkey.acme.example": RECORD}))
    assert ours.check(signed()).result == "pass"


# --- kept with the evidence -------------------------------------------------------------------------


def test_a_schema_5_database_gains_the_kept_checks_and_they_are_append_only(url: str) -> None:  # noqa: F811
    engine = create_engine(url)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        for number in range(1, 6):
            for sql in schema.MIGRATIONS[number - 1](dialect):
                conn.exec_driver_sql(sql)
            conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": number})
    engine.dispose()
    found = ours.check(signed(), dnsfunc=resolver({"mail._domainkey.acme.example": RECORD}))
    results = [{"authserv_id": "mx.northwind.example", "method": "dmarc", "result": "pass"}]
    with Store.open(url) as store:
        assert store.schema_version == schema.LATEST  # and the team migration after it
        assert store.record_authentication("c1@acme.example", "a" * 64, found.to_dict(), results, at=WHEN)
        # The first check stays: a replay of the message does not rewrite what was found when it arrived.
        assert not store.record_authentication("c1@acme.example", "a" * 64, {"result": "fail"}, [], at=WHEN)
        kept = store.authentication("c1@acme.example")
        assert kept is not None
        assert (kept.dkim, kept.dkim_domain, kept.dkim_selector, kept.dkim_key) == ("pass", "acme.example", "mail",
                                                                                   RECORD)
        assert kept.results == results and kept.checked == "2027-01-12T16:00:00Z"
        assert store.authentication("other@acme.example") is None
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text("UPDATE message_auth SET dkim = 'pass'"))
