"""Content-addressed letters and emails, the export bundle for legal review, and its verification.

A bundle (a directory or a .zip) holds each version's canonical plan JSON and letter PDF, a redline PDF per
step, every email in and out, the plan's audit log, index.html for a person to read, and manifest.json: the
SHA-256 of every file and the version chain. The SHA-256 of a version's JSON file is the version's hash, and
each letter carries that JSON, so the chain is anchored in files, not only in the manifest's word.
"""

from pipeline.archive.export import Contribution, ExportResult, RedlineRenderer, bundle_contents, export
from pipeline.archive.manifest import FORMAT, MANIFEST
from pipeline.archive.objects import Archive, sha256
from pipeline.archive.verify import VerifyReport, verify

__all__ = [
    "FORMAT",
    "MANIFEST",
    "Archive",
    "Contribution",
    "ExportResult",
    "RedlineRenderer",
    "VerifyReport",
    "bundle_contents",
    "export",
    "sha256",
    "verify",
]
