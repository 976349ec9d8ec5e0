"""Writing a bundle whole or not at all: into a temporary sibling, renamed into place once every byte is down."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from pipeline.archive.objects import write_failed
from pipeline.errors import ArchiveError

# Fixed entry times and modes, so the same plan always exports to the same zip bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def write_dir(out: Path, files: dict[str, bytes]) -> None:
    """Write the files into `out`, a new or empty directory; on any failure `out` is left as it was."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArchiveError(f"{out} is not an empty directory", hint="export to a new directory, or to a FILE.zip")
    tmp: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
        for name in sorted(files):
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as f:
                f.write(files[name])
                f.flush()
                os.fsync(f.fileno())
        tmp.chmod(0o755)
        # rename(2) replaces an empty directory: the bundle appears whole, never half-written.
        os.replace(tmp, out)
        tmp = None
    except OSError as exc:
        raise write_failed(exc, "the bundle", out) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def write_zip(out: Path, files: dict[str, bytes]) -> None:
    """Write the files as the zip `out` (replaced whole); on any failure an old `out` is left as it was."""
    tmp: str | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=".zip")
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w") as bundle:
                for name in sorted(files):
                    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.create_system = 3  # Unix, whichever system exports
                    info.external_attr = 0o644 << 16
                    bundle.writestr(info, files[name], compresslevel=9)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
        tmp = None
    except OSError as exc:
        raise write_failed(exc, "the bundle", out) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
