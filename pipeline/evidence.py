"""What a bundle proves beyond its files' hashes: the certificate of agreement's manifest hash, and the trusted
timestamp (RFC 3161) over manifest.json. Pure checks on a bundle's bytes: no store, no network."""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from pipeline.errors import ArchiveError

TIMESTAMP = "manifest.json.tsr"  # the timestamp token over manifest.json; outside the manifest it stamps


def evidence_manifest(manifest: dict[str, Any]) -> bytes:
    """The manifest without the certificate's entry and key: what the certificate's manifest SHA-256 is of."""
    cert = manifest.get("certificate")
    name = cert.get("file") if isinstance(cert, dict) else None
    inner = {k: v for k, v in manifest.items() if k != "certificate"}
    inner["files"] = {k: v for k, v in (manifest.get("files") or {}).items() if k != name}
    # Imported here: the archive package imports this module for its bundle, so a top-level import is a cycle.
    from pipeline.archive.manifest import json_bytes

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



# --- trusted timestamps (RFC 3161) ------------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    """What a timestamp token says: the time, who stamped, the SHA-256 it stamped."""

    time: str
    authority: str
    digest: str

    def to_dict(self) -> dict[str, str]:
        """Plain data, for `archive verify --json`."""
        return asdict(self)


def timestamp(data: bytes, url: str, *, timeout: float = 30.0) -> bytes:
    """Ask the timestamp authority at `url` to stamp the SHA-256 of `data`; its whole response (a .tsr)."""
    import httpx
    from asn1crypto import tsp

    digest = hashlib.sha256(data).digest()
    nonce = int.from_bytes(os.urandom(8), "big")
    query = tsp.TimeStampReq({"version": 1, "nonce": nonce, "cert_req": True, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest}}).dump()
    try:
        answer = httpx.post(url, content=query, timeout=timeout,
                            headers={"Content-Type": "application/timestamp-query"})
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise ArchiveError(f"the timestamp authority {url} did not stamp the manifest: {exc}",
                           hint="try again later, or leave [archive] tsa_url out to export without a timestamp"
                           ) from None
    wrong = list(check_token(answer.content, data))
    if not wrong and _tst_info(answer.content)["nonce"].native != nonce:
        wrong = ["the answer is not to our request (another nonce)"]
    if wrong:
        raise ArchiveError(f"the timestamp authority {url} answered with no valid timestamp: {wrong[0]}",
                           hint="check [archive] tsa_url names an RFC 3161 timestamp service")
    return answer.content


def read_stamp(response: bytes) -> Stamp:
    """What a timestamp response says (unchecked: check_token says whether it holds)."""
    info = _tst_info(response)
    tsa = info["tsa"]
    # The name the token gives itself (a directory name, most often), else its signer's certificate's subject.
    name = tsa.chosen.human_friendly if tsa and tsa.name == "directory_name" else (tsa.native if tsa else None)
    return Stamp(time=info["gen_time"].native.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 authority=str(name or _signer(response)[0].subject.rfc4514_string()),
                 digest=info["message_imprint"]["hashed_message"].native.hex())


def stamp_in(bundle: Path) -> Stamp | None:
    """What the timestamp in a bundle (a directory or a .zip) says, if it holds one that reads; unchecked."""
    try:
        if bundle.is_dir():
            token = (bundle / TIMESTAMP).read_bytes() if (bundle / TIMESTAMP).is_file() else None
        else:
            with zipfile.ZipFile(bundle) as z:
                token = z.read(TIMESTAMP) if TIMESTAMP in z.namelist() else None
        return read_stamp(token) if token is not None else None
    except (OSError, zipfile.BadZipFile, ValueError, TypeError, KeyError):
        return None


def check_token(response: bytes, data: bytes) -> Iterator[str]:
    """What is wrong with a timestamp response over `data`, each named; nothing when it holds."""
    where = TIMESTAMP
    try:
        info = _tst_info(response)
        imprint = info["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        stamped = imprint["hashed_message"].native
    except (ValueError, TypeError, KeyError) as exc:
        yield f"{where}: not a timestamp this release can read ({exc})"
        return
    if algorithm not in hashlib.algorithms_available or hashlib.new(algorithm, data).digest() != stamped:
        yield f"{where}: it stamps another manifest.json than this one"
    try:
        _check_signature(response)
    except (ValueError, TypeError, KeyError, InvalidSignature) as exc:
        yield f"{where}: its signature does not hold ({type(exc).__name__}: {exc})"


def _tst_info(response: bytes) -> Any:
    from asn1crypto import tsp

    answer = tsp.TimeStampResp.load(response)
    if answer["status"]["status"].native not in ("granted", "granted_with_mods"):
        raise ValueError(f"the authority refused: {answer['status']['status'].native}")
    signed = answer["time_stamp_token"]["content"]
    return signed["encap_content_info"]["content"].parsed


def _signer(response: bytes) -> tuple[Any, Any, Any]:
    """The signing certificate (cryptography's), the signer info, and the signed data of a response."""
    from asn1crypto import tsp
    from cryptography import x509

    signed = tsp.TimeStampResp.load(response)["time_stamp_token"]["content"]
    info = signed["signer_infos"][0]
    kind, sid = info["sid"].name, info["sid"].chosen
    for choice in signed["certificates"] or []:
        cert = choice.chosen
        if kind == "issuer_and_serial_number" and cert.issuer == sid["issuer"] and \
                cert.serial_number == sid["serial_number"].native:
            return x509.load_der_x509_certificate(cert.dump()), info, signed
        if kind == "subject_key_identifier" and cert.key_identifier == sid.native:
            return x509.load_der_x509_certificate(cert.dump()), info, signed
    raise ValueError("the token does not carry its signer's certificate")


def _check_signature(response: bytes) -> None:
    """Raise unless the signed attributes hold the TSTInfo's digest and the signer's key signed them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    cert, info, signed = _signer(response)
    algorithm = info["digest_algorithm"]["algorithm"].native
    content = signed["encap_content_info"]["content"].contents
    attrs = {a["type"].native: a["values"][0].native for a in info["signed_attrs"]}
    if attrs.get("message_digest") != hashlib.new(algorithm, content).digest():
        raise ValueError("the signed digest is not the timestamp's")
    try:
        usage = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usage = []
    if x509.oid.ExtendedKeyUsageOID.TIME_STAMPING not in usage:
        raise ValueError("the signer's certificate is not for timestamping")
    signed_attrs = b"\x31" + info["signed_attrs"].dump()[1:]  # signed as a SET, stored [0] IMPLICIT
    chosen = getattr(hashes, algorithm.upper())()
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(info["signature"].native, signed_attrs, padding.PKCS1v15(), chosen)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(info["signature"].native, signed_attrs, ec.ECDSA(chosen))
    else:
        raise ValueError(f"a signing key this release does not check: {type(key).__name__}")
