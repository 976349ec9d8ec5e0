"""The content-addressed archive: letters and emails stored once, by their SHA-256, under objects/ab/cdef...."""

from __future__ import annotations

import errno
import hashlib
import os
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.durable import write_atomic
from pipeline.errors import ArchiveError, StorageFull

if TYPE_CHECKING:
    from pipeline.store import Store

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# A disk out of space or over its quota: the machine's trouble, not the message's or the email's.
FULL = (errno.ENOSPC, errno.EDQUOT)


def sha256(data: bytes) -> str:
    """The hex SHA-256 of some bytes: every file's name in the archive."""
    return hashlib.sha256(data).hexdigest()


def write_failed(exc: OSError, what: str, where: Path) -> ArchiveError:
    """The error for a write the disk refused: StorageFull when it is full, else an ArchiveError naming it."""
    if exc.errno in FULL:
        return StorageFull(
            f"the disk is full: cannot write {what} to {where}",
            hint="free some space there and run the command again; nothing was lost, nothing half-written was kept",
        )
    return ArchiveError(f"cannot write {what} to {where}: {exc.strerror or exc}",
                        hint="check that the folder exists and is writable")


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
        """Store `data` (once: the same bytes are the same file) and return its SHA-256.

        A full disk raises StorageFull (nothing half-written is left): the caller stops and tries again later."""
        digest = sha256(data)
        target = self.path(digest)
        if target.is_file():
            return digest
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write, fsync, rename: a crash leaves the whole file or no file, never half of one.
            write_atomic(target, data)
        except OSError as exc:
            raise write_failed(exc, "a file of the archive", self.root) from None
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
