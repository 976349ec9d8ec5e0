"""Verifying a bundle from its content alone: every file against the manifest, the chain, and each letter's plan."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from pipeline import evidence
from pipeline.archive.manifest import MANIFEST, ShapeError, check_shape
from pipeline.archive.objects import sha256
from pipeline.archive.reader import BundleReader, TooLarge
from pipeline.evidence import TIMESTAMP

MANIFEST_LIMIT = 64 << 20  # far above any manifest export writes; a bigger one is not ours
LETTER_LIMIT = 64 << 20  # a letter is read whole to find its embedded plan.json
EVIDENCE_LIMIT = 1 << 20  # a timestamp token is a few KiB


@dataclass
class VerifyReport:
    """What verify found: files changed, missing or added, breaks in the chain, and why a bundle was refused."""

    bundle: str
    manifest_sha256: str | None = None
    checked: int = 0
    versions: int = 0
    letters: int = 0  # letters whose embedded plan.json was checked against their version
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether everything held."""
        return not (self.changed or self.missing or self.added or self.problems or self.refused)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `archive verify --json`."""
        return {
            "bundle": self.bundle, "ok": self.ok, "manifest_sha256": self.manifest_sha256, "checked": self.checked,
            "versions": self.versions, "letters": self.letters, "changed": self.changed, "missing": self.missing,
            "added": self.added, "problems": self.problems, "refused": self.refused,
        }  # fmt: skip


def verify(bundle: str | os.PathLike[str]) -> VerifyReport:
    """Check a bundle's files, chain and letters; name every file changed, added or missing, and every break."""
    reader = BundleReader(Path(bundle))
    try:
        return _verify(reader, VerifyReport(bundle=str(bundle)))
    finally:
        reader.close()


def _verify(reader: BundleReader, report: VerifyReport) -> VerifyReport:
    if reader.refused:
        # Which copy of a name counts, or where a file lands when unzipped, is ambiguous: nothing else is trusted.
        report.refused.extend(reader.refused)
        return report
    if MANIFEST not in reader.names:
        report.missing.append(MANIFEST)
        report.problems.append("manifest.json is missing: no file can be checked")
        report.added.extend(sorted(reader.names))
        return report
    manifest = _manifest(reader, report)
    if manifest is None:
        report.changed.append(MANIFEST)
        return report
    listed: dict[str, dict[str, Any]] = manifest["files"]
    actual: dict[str, str] = {}
    for name in sorted(listed):
        if name not in reader.names:
            report.missing.append(name)
            continue
        report.checked += 1
        found = reader.digest(name)
        if found is None:
            report.changed.append(name)
            continue
        actual[name] = found[0]
        if found != (listed[name]["sha256"], listed[name]["size"]):
            report.changed.append(name)
    report.added.extend(sorted(reader.names - set(listed) - {MANIFEST, TIMESTAMP}))
    report.problems.extend(chain_problems(manifest, listed, actual))
    report.problems.extend(_letter_problems(reader, manifest, actual, report))
    # The certificate's manifest hash and the timestamp token: each small, read whole.
    report.problems.extend(evidence.problems(manifest, lambda name: _small(reader, name), reader.names))
    report.versions = len(manifest["versions"])
    return report


def _manifest(reader: BundleReader, report: VerifyReport) -> dict[str, Any] | None:
    """The manifest when it reads and has the right shape; else None, with the reason among the problems."""
    found = reader.digest(MANIFEST)
    report.manifest_sha256 = found[0] if found else None
    try:
        raw = reader.read(MANIFEST, MANIFEST_LIMIT)
        return check_shape(json.loads(raw or b""))
    except TooLarge as exc:
        report.problems.append(f"{exc}: not a manifest export writes")
    except ShapeError as exc:
        report.problems.append(f"manifest.json is not a manifest this release can read: {exc}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        report.problems.append("manifest.json is not a manifest this release can read: it is not JSON")
    return None


def _small(reader: BundleReader, name: str) -> bytes | None:
    """A file read whole for the evidence checks; None when damaged or far larger than it can be."""
    try:
        return reader.read(name, MANIFEST_LIMIT if name == MANIFEST else EVIDENCE_LIMIT)
    except TooLarge:
        return None


def chain_problems(manifest: dict[str, Any], listed: dict[str, Any], actual: dict[str, str]) -> Iterator[str]:
    """Breaks in the version chain: numbering, parent hashes, and plan files that do not hash to their version."""
    parent = None
    for expected, entry in enumerate(manifest["versions"], start=1):
        number = entry["number"]
        if number != expected:
            yield f"version {expected}: numbered {number!r} in the manifest"
        if entry["parent_hash"] != parent:
            yield f"version {number}: its parent hash is not the hash of version {expected - 1}"
        parent = entry["hash"]
        plan_file = entry["plan"]
        if plan_file not in listed:
            yield f"version {number}: its plan file {plan_file!r} is not listed"
        elif plan_file in actual and actual[plan_file] != entry["hash"]:
            yield f"version {number}: {plan_file} does not hash to the version's hash"
        for name in [*entry["letters"], entry["redline"]]:
            if name is not None and name not in listed:
                yield f"version {number}: {name} is not listed"
    for email in manifest.get("emails", []):
        for name in (email["file"], email.get("html")):
            if name is not None and name not in listed:
                yield f"email page {name!r} is not listed"
    if manifest.get("index") is not None and manifest["index"] not in listed:
        yield f"{manifest['index']!r} is not listed"
    for name in manifest.get("documents", []):
        if name not in listed:
            yield f"document {name!r} is not listed"


def _letter_problems(reader: BundleReader, manifest: dict[str, Any], actual: dict[str, str],
                     report: VerifyReport) -> Iterator[str]:
    """Letters whose embedded plan.json is not exactly their version's plan (the JSON that hashes to it)."""
    for entry in manifest["versions"]:
        for name in entry["letters"]:
            if name not in actual:
                continue  # missing or unreadable: named already
            try:
                data = reader.read(name, LETTER_LIMIT)
            except TooLarge as exc:
                yield f"version {entry['number']}: {exc}, too large to check its embedded plan.json"
                continue
            embedded = _embedded_plan(data or b"")
            report.letters += 1
            if embedded is None:
                yield f"version {entry['number']}: {name} carries no readable plan.json"
            elif sha256(embedded) != entry["hash"]:
                yield f"version {entry['number']}: the plan.json embedded in {name} is not the version's plan"


def _embedded_plan(pdf: bytes) -> bytes | None:
    """The plan.json a letter carries as its PDF/A-3 attachment, or None."""
    try:
        found = PdfReader(io.BytesIO(pdf)).attachments.get("plan.json") or []
    except Exception:  # pypdf raises many kinds on a damaged PDF; any of them means "no readable plan"
        return None
    return found[0] if len(found) == 1 else None
