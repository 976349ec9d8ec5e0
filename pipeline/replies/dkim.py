"""Our own check of a message's DKIM signatures (dkimpy), keeping the key record it used.

A verdict that leans on DNS can change: a domain rotates its key and last year's signature no longer checks. So
the check keeps the TXT record it verified against, and a later review reads that record instead of asking DNS
again. Every DNS look-up goes through `lookup_txt`, which the tests replace with a local resolver.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dkim

# The verdicts, as the certificate of agreement prints them.
PASS, FAIL, NO_KEY, NONE, TEMPERROR = "pass", "fail", "no key", "none", "temperror"
MAX_SIGNATURES = 5  # a message may carry several; more than a handful is noise, not evidence
TIMEOUT = 5

TxtLookup = Callable[..., "bytes | None"]
_TAG = re.compile(rb"(?:^|;)\s*([a-z]+)\s*=\s*([^;]*)")


@dataclass(frozen=True)
class DkimResult:
    """What our DKIM check found: the verdict, the signing domain and selector, and the key record it used."""

    result: str
    domain: str | None = None
    selector: str | None = None
    key_record: str | None = None  # the DNS TXT record, as it read when we checked
    reason: str = ""

    def describe(self) -> str:
        """The verdict in a line, for people: `dkim=pass (d=buyer.example s=mail)`."""
        where = " ".join(f"{k}={v}" for k, v in (("d", self.domain), ("s", self.selector)) if v)
        return f"dkim={self.result}" + (f" ({where})" if where else "") + (f": {self.reason}" if self.reason else "")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, to store with the message."""
        return {"result": self.result, "domain": self.domain, "selector": self.selector,
                "key_record": self.key_record, "reason": self.reason}


def lookup_txt(name: bytes, timeout: int = TIMEOUT) -> bytes | None:
    """The TXT record at a DNS name (dnspython, through dkimpy), or None when there is none."""
    from dkim.dnsplug import get_txt

    found: bytes | None = get_txt(name, timeout=timeout)
    return found


def check(raw: bytes, *, dnsfunc: TxtLookup | None = None) -> DkimResult:
    """Verify the message's DKIM signatures: the first that passes, else what the first one found."""
    lookup = dnsfunc or lookup_txt  # looked up at each call, so a replaced `lookup_txt` is the one used
    try:
        verifier = dkim.DKIM(raw, timeout=TIMEOUT)
    except Exception as exc:  # dkimpy reads any bytes; a message it cannot split has no signature to check
        return DkimResult(NONE, reason=f"unreadable: {type(exc).__name__}")
    signatures = [value for name, value in verifier.headers if name.lower() == b"dkim-signature"]
    if not signatures:
        return DkimResult(NONE, reason="no DKIM-Signature header")
    first: DkimResult | None = None
    for index, header in enumerate(signatures[:MAX_SIGNATURES]):
        found = _one(verifier, index, header, lookup)
        if found.result == PASS:
            return found
        first = first or found
    assert first is not None
    return first


def _one(verifier: dkim.DKIM, index: int, header: bytes, lookup: TxtLookup) -> DkimResult:
    """Verify signature `index`, recording the key record DNS gave for it."""
    tags = {k.decode(): v.strip().decode("ascii", "replace") for k, v in _TAG.findall(header.replace(b"\r\n", b""))}
    domain, selector = tags.get("d") or None, tags.get("s") or None
    seen: list[bytes | None] = []
    timed_out: list[str] = []

    def recording(name: bytes, timeout: int = TIMEOUT) -> bytes | None:
        try:
            record = lookup(name, timeout=timeout)
        except dkim.DnsTimeoutError as exc:
            timed_out.append(str(exc))
            raise
        seen.append(record)
        return record

    common: dict[str, Any] = {"domain": domain, "selector": selector}
    try:
        ok = verifier.verify(idx=index, dnsfunc=recording)
    except dkim.DKIMException as exc:  # a signature that does not read (bad tags, an expired x=)
        return DkimResult(FAIL, key_record=_text(seen[-1] if seen else None), reason=str(exc)[:300], **common)
    record = seen[-1] if seen else None
    if ok:
        return DkimResult(PASS, key_record=_text(record), **common)
    # dkimpy answers False, not an exception, for a key it could not get: tell those apart from a bad signature.
    if timed_out:
        return DkimResult(TEMPERROR, reason=f"DNS did not answer: {timed_out[-1]}", **common)
    if seen and record is None:
        return DkimResult(NO_KEY, reason=f"no key record at {selector}._domainkey.{domain}", **common)
    return DkimResult(FAIL, key_record=_text(record), reason="the signature does not match the message, or its key "
                      "record does not read", **common)


def _text(record: bytes | None) -> str | None:
    return record.decode("ascii", "replace") if record is not None else None
