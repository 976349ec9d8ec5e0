"""Content-addressed letters and emails, the export bundle for legal review, and its verification.

A bundle (a directory or a .zip) holds each version's canonical plan JSON and letter PDF, a redline PDF per
step when one exists, every email in and out, the plan's audit log, and manifest.json: the SHA-256 of every
file and the version chain, each version carrying its parent's hash. The SHA-256 of a version's JSON file is
the version's hash, so the chain is anchored in files, not only in the manifest's word.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import evidence
from pipeline.durable import write_atomic
from pipeline.errors import ArchiveError
from pipeline.evidence import TIMESTAMP
from pipeline.plan.model import Version

if TYPE_CHECKING:
    from pipeline.store import Store

FORMAT = "mutualplan-archive/1"
MANIFEST = "manifest.json"
# Fixed entry times and modes, so the same plan always exports to the same zip bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Renders the redline of one step, (older, newer) -> PDF bytes. The letter renderer provides it; an export
# without one still carries every redline PDF already kept in the archive.
RedlineRenderer = Callable[[Version, Version], bytes]


def sha256(data: bytes) -> str:
    """The hex SHA-256 of some bytes: every file's name in the archive."""
    return hashlib.sha256(data).hexdigest()


class Archive:
    """Files stored by their SHA-256 under objects/ab/cdef...; written once, never changed."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        """Where the file with this SHA-256 lives."""
        if not _SHA256.match(digest):
            raise ArchiveError(f"not a SHA-256: {digest!r}")
        return self.root / "objects" / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        """Whether the archive holds this file."""
        return self.path(digest).is_file()

    def put(self, data: bytes) -> str:
        """Store `data` (once: the same bytes are the same file) and return its SHA-256."""
        digest = sha256(data)
        target = self.path(digest)
        if target.is_file():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write, fsync, rename: a crash leaves the whole file or no file, never half of one.
        write_atomic(target, data)
        return digest

    def get(self, digest: str) -> bytes:
        """The file with this SHA-256; an ArchiveError if it is missing or no longer matches its hash."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise ArchiveError(
                f"the archive has no file {digest}", hint=f"it should be at {self.path(digest)}"
            ) from None
        if sha256(data) != digest:
            raise ArchiveError(
                f"archived file {digest} has been altered: its bytes no longer match their SHA-256",
                hint=f"restore {self.path(digest)} from a backup",
            )
        return data

    def keep(
        self,
        store: Store,
        data: bytes,
        *,
        plan_id: str,
        kind: str,
        at: datetime,
        version: int | None = None,
        message_id: str | None = None,
    ) -> str:
        """Store `data` and note it as the plan's evidence (letter, redline, in, out); returns its SHA-256."""
        # Bytes first: a crash between the two leaves an unreferenced file, never a reference to nothing.
        digest = self.put(data)
        store.add_evidence(plan_id, version, digest, kind, message_id, at=at)
        return digest


# --- export -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    """Where a bundle went, the SHA-256 of its manifest (to keep on record) and how much it holds."""

    out: Path
    manifest_sha256: str
    files: int
    versions: int


def export(
    store: Store,
    archive: Archive,
    plan_id: str,
    out: str | os.PathLike[str],
    *,
    redline: RedlineRenderer | None = None,
    tsa_url: str | None = None,
) -> ExportResult:
    """Write the plan's bundle to `out`: a new or empty directory, or a FILE.zip (replaced whole).

    A step with no redline kept in the archive gets one from `redline` when given, else has none. With `tsa_url`,
    that timestamp authority stamps the manifest's SHA-256 and its answer goes in the bundle (evidence.py).
    """
    files, manifest = bundle_contents(store, archive, plan_id, redline=redline)
    if tsa_url:
        files[TIMESTAMP] = evidence.timestamp(files[MANIFEST], tsa_url)
    out = Path(out)
    if out.suffix.lower() == ".zip":
        _write_zip(out, files)
    else:
        _write_dir(out, files)
    return ExportResult(
        out=out, manifest_sha256=sha256(files[MANIFEST]), files=len(files), versions=len(manifest["versions"])
    )


def bundle_contents(
    store: Store, archive: Archive, plan_id: str, *, redline: RedlineRenderer | None = None, certify: bool = True
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every file of a plan's bundle by its path in the bundle, manifest.json included, and the manifest."""
    records = store.version_records(plan_id)
    if not records:
        ids = store.plan_ids()
        raise ArchiveError(f"no plan {plan_id!r} in the store",
                           hint="stored plans: " + ", ".join(ids) if ids else "add one with `mutualplan add PLAN.md`")
    files: dict[str, bytes] = {}
    evidence = store.evidence(plan_id)
    entries: list[dict[str, Any]] = []
    parent: str | None = None
    for record in records:
        # A database edited behind the store's back must not be exported as if it were sound.
        if sha256(record.plan_json.encode("utf-8")) != record.hash or record.parent_hash != parent:
            raise ArchiveError(
                f"version {record.number} of plan {plan_id} in the store does not match its hash chain",
                hint="the database was altered outside mutualplan; restore it from a backup",
            )
        parent = record.hash
        stem = f"versions/v{record.number:03d}-{record.hash[:8]}"
        files[f"{stem}.json"] = record.plan_json.encode("utf-8")
        letters = []
        for i, item in enumerate(e for e in evidence if e.kind == "letter" and e.version == record.number):
            name = f"{stem}.pdf" if i == 0 else f"{stem}-{i + 1}.pdf"
            files[name] = archive.get(item.sha256)
            letters.append(name)
        entries.append(
            {
                "number": record.number,
                "hash": record.hash,
                "parent_hash": record.parent_hash,
                "created": record.created,
                "author": record.author,
                "reason": record.reason,
                "message_id": record.message_id,
                "changes": list(record.changes),
                "plan": f"{stem}.json",
                "letters": letters,
                "redline": None,
            }
        )
    versions: list[Version] | None = None
    for entry in entries[1:]:
        number = entry["number"]
        name = f"versions/v{number:03d}-{entry['hash'][:8]}-redline.pdf"
        kept = [e for e in evidence if e.kind == "redline" and e.version == number]
        if kept:
            files[name] = archive.get(kept[-1].sha256)
        elif redline is not None:
            versions = versions or [r.to_version() for r in records]
            files[name] = redline(versions[number - 2], versions[number - 1])
        else:
            continue
        entry["redline"] = name
    emails = []
    for item in (e for e in evidence if e.kind in ("in", "out")):
        stamp = item.at.replace("-", "").replace(":", "")
        name = f"emails/{stamp}-{item.kind}-{item.sha256[:12]}.eml"
        files[name] = archive.get(item.sha256)
        emails.append({"file": name, "direction": item.kind, "message_id": item.message_id, "version": item.version,
                       "at": item.at})
    files["audit.json"] = _json_bytes(
        [{"at": a.at, "event": a.event, "detail": a.detail} for a in store.audit_log(plan_id)]
    )
    manifest = {
        "format": FORMAT,
        "plan_id": plan_id,
        "state": store.plan_state(plan_id),
        "versions": entries,
        "emails": emails,
        "confirmations": [c.to_dict() for c in store.confirmation_records(plan_id)],
        "files": {name: {"sha256": sha256(data), "size": len(data)} for name, data in sorted(files.items())},
    }
    if certify:  # an agreed plan's certificate of agreement, over the manifest of the rest (loop/certificate.py)
        from pipeline.loop.certificate import certify_bundle

        manifest = certify_bundle(store, archive, plan_id, files, manifest)
    files[MANIFEST] = _json_bytes(manifest)
    return files, manifest


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _write_dir(out: Path, files: dict[str, bytes]) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArchiveError(
            f"{out} is not an empty directory", hint="export to a new directory, or to a FILE.zip"
        )
    try:
        for name in sorted(files):
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files[name])
    except OSError as exc:
        raise ArchiveError(f"cannot write the bundle to {out}: {exc.strerror}") from None


def _write_zip(out: Path, files: dict[str, bytes]) -> None:
    tmp: str | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=".zip")
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w") as bundle:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix, whichever system exports
                info.external_attr = 0o644 << 16
                bundle.writestr(info, files[name], compresslevel=9)
        os.replace(tmp, out)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ArchiveError(f"cannot write the bundle to {out}: {exc.strerror}") from None


# --- verify -----------------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    """What verify found: files changed, missing or added, and breaks in the version chain."""

    bundle: str
    manifest_sha256: str | None = None
    checked: int = 0
    versions: int = 0
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added or self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle,
            "ok": self.ok,
            "manifest_sha256": self.manifest_sha256,
            "checked": self.checked,
            "versions": self.versions,
            "changed": self.changed,
            "missing": self.missing,
            "added": self.added,
            "problems": self.problems,
        }


class _Bundle:
    """The files of a bundle, in a directory or a zip, by their path inside it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self.names = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
        elif path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise ArchiveError(f"{path} is not a zip file", hint="verify a bundle directory or FILE.zip") from None
            self.names = {n for n in self._zip.namelist() if not n.endswith("/")}
        else:
            raise ArchiveError(f"no bundle at {path}", hint="give the directory or .zip that export wrote")

    def read(self, name: str) -> bytes | None:
        """The bytes of a file; None when they cannot be read whole (a zip member damaged in place)."""
        if self._zip is None:
            return (self.path / name).read_bytes()
        try:
            return self._zip.read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError):
            return None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def verify(bundle: str | os.PathLike[str]) -> VerifyReport:
    """Check every file's SHA-256 and the version chain of a bundle; name every file changed, added or missing."""
    reader = _Bundle(Path(bundle))
    try:
        return _verify(reader, VerifyReport(bundle=str(bundle)))
    finally:
        reader.close()


def _verify(reader: _Bundle, report: VerifyReport) -> VerifyReport:
    if MANIFEST not in reader.names:
        report.missing.append(MANIFEST)
        report.problems.append("manifest.json is missing: no file can be checked")
        report.added.extend(sorted(reader.names))
        return report
    raw = reader.read(MANIFEST)
    report.manifest_sha256 = sha256(raw) if raw is not None else None
    manifest = _load_manifest(raw)
    if manifest is None:
        report.changed.append(MANIFEST)
        report.problems.append("manifest.json is not a manifest this release can read")
        return report
    listed: dict[str, dict[str, Any]] = manifest["files"]
    actual: dict[str, str] = {}
    for name in sorted(listed):
        if name not in reader.names:
            report.missing.append(name)
            continue
        data = reader.read(name)
        report.checked += 1
        if data is None:
            report.changed.append(name)
            continue
        actual[name] = sha256(data)
        if actual[name] != listed[name].get("sha256") or len(data) != listed[name].get("size"):
            report.changed.append(name)
    report.added.extend(sorted(reader.names - set(listed) - {MANIFEST, TIMESTAMP}))
    report.problems.extend(_chain_problems(manifest, listed, actual))
    report.problems.extend(evidence.problems(manifest, reader.read, reader.names))  # certificate, timestamp
    report.versions = len(manifest["versions"])
    return report


def _load_manifest(raw: bytes | None) -> dict[str, Any] | None:
    try:
        manifest = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    ok = (
        isinstance(manifest, dict)
        and manifest.get("format") == FORMAT
        and isinstance(manifest.get("files"), dict)
        and all(isinstance(v, dict) for v in manifest["files"].values())
        and isinstance(manifest.get("versions"), list)
        and all(isinstance(v, dict) for v in manifest["versions"])
    )
    return manifest if ok else None


def _chain_problems(manifest: dict[str, Any], listed: dict[str, Any], actual: dict[str, str]) -> Iterator[str]:
    """Breaks in the version chain: numbering, parent hashes, and plan files that do not hash to their version."""
    parent = None
    for expected, entry in enumerate(manifest["versions"], start=1):
        number = entry.get("number")
        if number != expected:
            yield f"version {expected}: numbered {number!r} in the manifest"
        if entry.get("parent_hash") != parent:
            yield f"version {number}: its parent hash is not the hash of version {expected - 1}"
        parent = entry.get("hash")
        plan_file = entry.get("plan")
        if plan_file not in listed:
            yield f"version {number}: its plan file {plan_file!r} is not listed"
        elif plan_file in actual and actual[plan_file] != entry.get("hash"):
            yield f"version {number}: {plan_file} does not hash to the version's hash"
        for name in [*(entry.get("letters") or []), entry.get("redline")]:
            if name is not None and name not in listed:
                yield f"version {number}: {name} is not listed"
    for email in manifest.get("emails") or []:
        if isinstance(email, dict) and email.get("file") not in listed:
            yield f"email {email.get('file')!r} is not listed"
