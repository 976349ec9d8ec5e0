"""Authentication-Results (RFC 8601) headers read into whether a sender's address is proven well enough to act on.

Only results stamped by a trusted host (an authserv-id the seller's settings name) count: anyone can write an
Authentication-Results header into a message they send. A dmarc=fail from a trusted host always holds a message,
whatever else it carries; a reply that would change a plan also needs a pass from the topmost trusted header,
which is the one the seller's own server added last, above anything the sender could have written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

HEADER = "authentication-results"
# Bounds: whatever arrives, reading it costs at most this much.
MAX_HEADERS = 50
MAX_HEADER_CHARS = 4_000
MAX_RESULTS = 30

_PAIR = re.compile(r"([A-Za-z0-9_.\-/]+)\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^\s;]+)")
_TOKEN = re.compile(r"[^\s;]+")


@dataclass(frozen=True)
class Result:
    """One method's result in one header: `dmarc=pass header.from=buyer.example` from `mx.seller.example`."""

    authserv_id: str
    method: str
    result: str
    props: dict[str, str] = field(default_factory=dict)
    index: int = 0  # which Authentication-Results header it came from, 0 being the topmost


def _strip_comments(value: str) -> str:
    """The header without (comments), which may nest; quoted strings are kept whole."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            if depth == 0:
                out.append(ch)
            continue
        if quoted:
            if ch == '"':
                quoted = False
            out.append(ch)
            continue
        if ch == "(":
            depth += 1
            continue
        if ch == ")" and depth:
            depth -= 1
            continue
        if depth:
            continue
        if ch == '"':
            quoted = True
        out.append(ch)
    return "".join(out)


def _split(value: str) -> list[str]:
    """The header split at semicolons outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def authserv_id(value: str) -> str:
    """Who stamped an Authentication-Results header: its first token, lower-case ("" when there is none)."""
    head = _TOKEN.search(_split(_strip_comments(value[:MAX_HEADER_CHARS]))[0])
    return head.group(0).lower() if head else ""


def parse(value: str, index: int = 0) -> list[Result]:
    """The results of one Authentication-Results header value; [] for "none" or when it is not one."""
    segments = _split(_strip_comments(value[:MAX_HEADER_CHARS]))
    head = _TOKEN.search(segments[0])
    if head is None:
        return []
    server = head.group(0).lower()
    results: list[Result] = []
    for segment in segments[1:]:
        pairs = _PAIR.findall(segment)
        if not pairs:
            continue  # "none", or something unreadable: no result either way
        method, result = pairs[0]
        props: dict[str, str] = {}
        for key, raw in pairs[1:]:
            key = key.lower()
            if key != "reason" and "." not in key:
                continue
            props.setdefault(key, _unquote(raw))
        results.append(Result(server, method.split("/")[0].lower(), _unquote(result).lower(), props, index))
        if len(results) >= MAX_RESULTS:
            break
    return results


def trusted_headers(raw_headers: Iterable[tuple[str, str]], trusted_authserv_ids: Iterable[str]) -> list[str]:
    """The values of the Authentication-Results headers stamped by trusted hosts, topmost first."""
    trusted = {t.strip().lower() for t in trusted_authserv_ids if t and t.strip()}
    found: list[str] = []
    for name, value in raw_headers:
        if name.strip().lower() == HEADER and authserv_id(value) in trusted:
            found.append(value)
            if len(found) >= MAX_HEADERS:
                break
    return found


def results(raw_headers: Iterable[tuple[str, str]], trusted_authserv_ids: Iterable[str]) -> list[Result]:
    """The results stamped by trusted hosts; `index` 0 is the topmost trusted header, even when it says none."""
    found: list[Result] = []
    for index, value in enumerate(trusted_headers(raw_headers, trusted_authserv_ids)):
        found.extend(parse(value, index))
    return found


def domain_of(value: str | None) -> str:
    """The domain of an address or a bare domain, lower-case."""
    text = (value or "").strip().strip("<>").lower()
    return text.rpartition("@")[2].rstrip(".")


def aligned(domain: str, sender_domain: str) -> bool:
    """Whether an authenticated domain speaks for the From domain: the same, or one inside the other.

    Stricter than DMARC's relaxed alignment (which compares organizational domains), so it may hold a message
    DMARC would pass, never the reverse.
    """
    if not domain or not sender_domain:
        return False
    return domain == sender_domain or domain.endswith("." + sender_domain) or sender_domain.endswith("." + domain)


def _passes(result: Result, sender_domain: str) -> bool:
    if result.result != "pass":
        return False
    if result.method == "dmarc":
        said = domain_of(result.props.get("header.from"))
        return not said or said == sender_domain
    if result.method == "spf":
        return aligned(domain_of(result.props.get("smtp.mailfrom")), sender_domain)
    if result.method == "dkim":
        signer = result.props.get("header.d") or domain_of(result.props.get("header.i"))
        return aligned(domain_of(signer), sender_domain)
    return False


def verdict(
    raw_headers: Sequence[tuple[str, str]],
    trusted_authserv_ids: Iterable[str],
    sender: str | None,
    *,
    changes: bool = True,
) -> str | None:
    """Why a message must be held for the seller, or None when its sender is proven well enough.

    A dmarc=fail from a trusted host holds it always; when `changes` (the reply would change the plan, confirm
    or decline it) and trusted hosts are named, it also needs dmarc=pass, or an SPF or DKIM pass aligned with the
    From domain, in the topmost trusted header. With no trusted host named, no header counts and nothing is held.
    """
    trusted = tuple(t for t in trusted_authserv_ids if t and t.strip())
    if not trusted:
        return None
    found = results(raw_headers, trusted)
    for result in found:
        if result.method == "dmarc" and result.result == "fail":
            said = domain_of(result.props.get("header.from")) or domain_of(sender) or "the sender's domain"
            return f"{result.authserv_id} reports dmarc=fail for {said}: the From address may be forged"
    if not changes:
        return None
    sender_domain = domain_of(sender)
    if sender_domain and any(_passes(r, sender_domain) for r in found if r.index == 0):
        return None
    hosts = ", ".join(sorted({t.lower() for t in trusted}))
    if not trusted_headers(raw_headers, trusted):
        return f"not authenticated: no Authentication-Results from a trusted host ({hosts})"
    return (f"not authenticated: no dmarc=pass, or SPF or DKIM pass aligned with {sender_domain or 'the From domain'},"
            f" from {hosts}")


def topmost_authserv_id(raw_headers: Sequence[tuple[str, str]]) -> str | None:
    """The authserv-id of the topmost Authentication-Results header: the host that received the message last, which
    for mail in the seller's mailbox is the seller's own server, the likely value of trusted_authserv_ids."""
    for name, value in list(raw_headers)[:MAX_HEADERS]:
        if name.lower() == HEADER:
            return authserv_id(value) or None
    return None


# Exchange stamps these on mail its own users send, and strips them from mail that arrives from outside the
# organization: on an Exchange mailbox they say the message was sent by a signed-in user of the seller's own tenant.
_AUTH_AS = "x-ms-exchange-organization-authas"
_AUTH_SOURCE = "x-ms-exchange-organization-authsource"


def exchange_internal(raw_headers: Sequence[tuple[str, str]]) -> bool:
    """Whether Exchange marked the message as sent from inside the organization (AuthAs: Internal, with its
    AuthSource), once each: only meaningful on a mailbox Exchange delivered, where outsiders cannot write them."""
    auth_as = [v.strip().lower() for n, v in raw_headers if n.lower() == _AUTH_AS]
    source = [v.strip() for n, v in raw_headers if n.lower() == _AUTH_SOURCE]
    return auth_as == ["internal"] and len(source) == 1 and bool(source[0])
