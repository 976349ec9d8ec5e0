"""The export bundle for legal review: each version's plan, letter and redline, every email, the audit log,
the index a person opens first, and manifest.json with every file's SHA-256 and the version chain."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import evidence
from pipeline.archive.index import add_pages
from pipeline.archive.manifest import FORMAT, INDEX, MANIFEST, json_bytes, unsafe_name
from pipeline.archive.objects import Archive, sha256
from pipeline.archive.write import write_dir, write_zip
from pipeline.errors import ArchiveError
from pipeline.evidence import TIMESTAMP
from pipeline.plan.model import Version

if TYPE_CHECKING:
    from pipeline.store import Store
    from pipeline.store.messages import Evidence
    from pipeline.store.versions import VersionRecord

# Renders the redline of one step, (older, newer) -> PDF bytes; pipeline.redline.render_redline is the one.
RedlineRenderer = Callable[[Version, Version], bytes]
# A file another part adds to the bundle (a certificate, a timestamp token): its path in the bundle and bytes.
Contribution = tuple[str, bytes]


@dataclass(frozen=True)
class ExportResult:
    """Where a bundle went, the SHA-256 of its manifest (to keep on record) and how much it holds."""

    out: Path
    manifest_sha256: str
    files: int
    versions: int


def export(store: Store, archive: Archive, plan_id: str, out: str | os.PathLike[str], *,
           redline: RedlineRenderer | None = None, extra: Iterable[Contribution] = (),
           tsa_url: str | None = None) -> ExportResult:
    """Write the plan's bundle to `out`: a new or empty directory, or a FILE.zip (replaced whole).

    A step gets its redline from `redline` when given (else the one kept in the archive, if any); `extra` adds
    files of other parts, covered by the manifest like the rest. With `tsa_url`, that timestamp authority stamps
    the manifest's SHA-256 and its answer goes in the bundle (evidence.py). A full disk leaves no half bundle
    (StorageFull).
    """
    files, manifest = bundle_contents(store, archive, plan_id, redline=redline, extra=extra)
    if tsa_url:
        files[TIMESTAMP] = evidence.timestamp(files[MANIFEST], tsa_url)
    out = Path(out)
    if out.suffix.lower() == ".zip":
        write_zip(out, files)
    else:
        write_dir(out, files)
    return ExportResult(out=out, manifest_sha256=sha256(files[MANIFEST]), files=len(files),
                        versions=len(manifest["versions"]))


def version_name(number: int, what: str) -> str:
    """A file of a version, named for what it is: `versions/v002-letter.pdf`, `versions/v002-plan.json`."""
    return f"versions/v{number:03d}-{what}"


def bundle_contents(
    store: Store, archive: Archive, plan_id: str, *, redline: RedlineRenderer | None = None,
    extra: Iterable[Contribution] = (), certify: bool = True,
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every file of a plan's bundle by its path in the bundle, manifest.json included, and the manifest.

    An agreed plan's bundle holds its certificate of agreement (`certify`), made over the manifest of the rest.
    """
    from pipeline.loop.certificate import certificate_name, certify_bundle
    from pipeline.loop.service import agreed_version
    records = store.version_records(plan_id)
    if not records:
        ids = store.plan_ids()
        raise ArchiveError(f"no plan {plan_id!r} in the store",
                           hint="stored plans: " + ", ".join(ids) if ids else "add one with `mutualplan add PLAN.md`")
    files: dict[str, bytes] = {}
    evidence = store.evidence(plan_id)
    entries = [_version_entry(record, parent, evidence, archive, files)
               for record, parent in zip(records, [None, *records[:-1]], strict=True)]
    _add_redlines(entries, records, evidence, archive, files, redline)
    emails = []
    for item in (e for e in evidence if e.kind in ("in", "out")):
        stamp = item.at.replace("-", "").replace(":", "")
        name = f"emails/{stamp}-{item.kind}-{item.sha256[:12]}.eml"
        files[name] = archive.get(item.sha256)
        emails.append({"file": name, "direction": item.kind, "message_id": item.message_id, "version": item.version,
                       "at": item.at})
    audit = [{"at": a.at, "event": a.event, "detail": a.detail} for a in store.audit_log(plan_id)]
    files["audit.json"] = json_bytes(audit)
    manifest: dict[str, Any] = {
        "index": INDEX,
        "format": FORMAT,
        "plan_id": plan_id,
        "state": store.plan_state(plan_id),
        "versions": entries,
        "emails": emails,
        "confirmations": [c.to_dict() for c in store.confirmation_records(plan_id)],
        "documents": add_contributions(files, extra),
    }
    agreed = agreed_version(store, plan_id) if certify else None
    if agreed is not None:
        # Named before it is made, so the index links it; it is made over the manifest of everything else.
        manifest["documents"] = sorted([*manifest["documents"], certificate_name(agreed)])
    add_pages(files, manifest, records[-1].to_version().plan, audit)
    manifest["files"] = {name: {"sha256": sha256(data), "size": len(data)} for name, data in sorted(files.items())}
    if agreed is not None:
        manifest = certify_bundle(store, archive, plan_id, files, manifest)
    files[MANIFEST] = json_bytes(manifest)
    return files, manifest


def add_contributions(files: dict[str, bytes], extra: Iterable[Contribution]) -> list[str]:
    """THE place where other parts' files join the bundle (before the manifest is made); their names, sorted."""
    added = []
    for name, data in extra:
        why = unsafe_name(name)
        if why is not None or name in files or name == MANIFEST:
            raise ArchiveError(f"cannot add {name!r} to the bundle: {why or 'the bundle has a file of that name'}")
        files[name] = data
        added.append(name)
    return sorted(added)


def _version_entry(record: VersionRecord, parent: VersionRecord | None, evidence: list[Evidence],
                   archive: Archive, files: dict[str, bytes]) -> dict[str, Any]:
    """A version's manifest entry, its plan JSON and letters added to `files`."""
    # A database edited behind the store's back must not be exported as if it were sound.
    if sha256(record.plan_json.encode("utf-8")) != record.hash or record.parent_hash != (parent and parent.hash):
        raise ArchiveError(
            f"version {record.number} of plan {record.plan_id} in the store does not match its hash chain",
            hint="the database was altered outside mutualplan; restore it from a backup",
        )
    plan = version_name(record.number, "plan.json")
    files[plan] = record.plan_json.encode("utf-8")
    letters = []
    for i, item in enumerate(e for e in evidence if e.kind == "letter" and e.version == record.number):
        name = version_name(record.number, "letter.pdf" if i == 0 else f"letter-{i + 1}.pdf")
        files[name] = archive.get(item.sha256)
        letters.append(name)
    return {
        "number": record.number, "hash": record.hash, "parent_hash": record.parent_hash, "created": record.created,
        "author": record.author, "reason": record.reason, "message_id": record.message_id,
        "changes": list(record.changes), "plan": plan, "letters": letters, "redline": None,
    }  # fmt: skip


def _add_redlines(entries: list[dict[str, Any]], records: list[VersionRecord], evidence: list[Evidence],
                  archive: Archive, files: dict[str, bytes], redline: RedlineRenderer | None) -> None:
    """Each step's redline: rendered when a renderer is given, else one kept in the archive.

    A kept "redline" that is a letter's bytes is not one (earlier releases filed each later letter as its
    step's redline too) and is left out."""
    letters = {e.sha256 for e in evidence if e.kind == "letter"}
    versions: list[Version] | None = None
    for entry in entries[1:]:
        number = entry["number"]
        name = version_name(number, f"redline-from-v{number - 1:03d}.pdf")
        kept = [e for e in evidence if e.kind == "redline" and e.version == number and e.sha256 not in letters]
        if redline is not None:
            versions = versions or [r.to_version() for r in records]
            files[name] = redline(versions[number - 2], versions[number - 1])
        elif kept:
            files[name] = archive.get(kept[-1].sha256)
        else:
            continue
        entry["redline"] = name
