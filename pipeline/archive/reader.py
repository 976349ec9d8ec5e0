"""A bundle's files, in a directory or a zip, read in chunks; names that are not safely inside it are refused."""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import BinaryIO

from pipeline.archive.manifest import unsafe_name
from pipeline.errors import ArchiveError

CHUNK = 1 << 20  # hash 1 MiB at a time: memory stays small whatever the size of a file
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError)


class TooLarge(ValueError):
    """A file larger than a read of it whole allows."""


class BundleReader:
    """The files of a bundle by their path inside it; `refused` says why it cannot be checked at all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.refused: list[str] = []
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self.names = self._walk(path)
        elif path.is_file():
            self.names = self._open_zip(path)
        else:
            raise ArchiveError(f"no bundle at {path}", hint="give the directory or .zip that export wrote")

    def _walk(self, root: Path) -> set[str]:
        names: set[str] = set()
        for folder, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                full = Path(folder, name)
                rel = full.relative_to(root).as_posix()
                if full.is_symlink():
                    # A link may point anywhere on the reviewer's disk: not a file of the bundle.
                    self.refused.append(f"{rel} is a symbolic link: a bundle holds only its own files")
                elif name in files:
                    names.add(rel)
        return names

    def _open_zip(self, path: Path) -> set[str]:
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ArchiveError(f"{path} is not a zip file ({exc})",
                               hint="verify a bundle directory or FILE.zip") from None
        names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
        for name, count in sorted(Counter(names).items()):
            if count > 1:
                # Tools disagree on which copy they show: one may be a forged letter hiding behind the real one.
                self.refused.append(f"the zip holds {count} entries named {name}: a bundle holds each file once")
        for name in sorted(set(names)):
            why = unsafe_name(name)
            if why is not None:
                self.refused.append(f"the zip entry {name!r} is {why}: unzipping it would write outside the bundle")
        return set(names)

    def open(self, name: str) -> BinaryIO:
        """A file of the bundle, opened for reading."""
        if self._zip is None:
            return (self.path / name).open("rb")
        return self._zip.open(name)  # type: ignore[return-value]

    def digest(self, name: str) -> tuple[str, int] | None:
        """The SHA-256 and size of a file, read in chunks; None when it cannot be read whole (damaged in place)."""
        h, size = hashlib.sha256(), 0
        try:
            with self.open(name) as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
        except (*_DAMAGED, OSError):
            return None
        return h.hexdigest(), size

    def read(self, name: str, limit: int) -> bytes | None:
        """A file whole; None when damaged; TooLarge past `limit` bytes (read no further than that)."""
        parts, size = [], 0
        try:
            with self.open(name) as f:
                # In chunks: a read of `limit` bytes at once would reserve them all, whatever the file's size.
                while size <= limit and (chunk := f.read(CHUNK)):
                    parts.append(chunk)
                    size += len(chunk)
        except (*_DAMAGED, OSError):
            return None
        if size > limit:
            raise TooLarge(f"{name} is larger than {limit // (1 << 20)} MiB")
        return b"".join(parts)

    def close(self) -> None:
        """Close the zip, if one is open."""
        if self._zip is not None:
            self._zip.close()
