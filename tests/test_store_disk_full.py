"""A database on a full disk: the store says so as StorageFull, so the watcher retries instead of blaming a message."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.errors import StorageFull
from pipeline.store import Store
from tests.loop_support import SELLER, example_plan

WHEN = datetime(2027, 1, 11, 17, 2, tzinfo=UTC)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs (root only); skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_write_to_a_database_on_a_full_disk_is_storage_full_and_changes_nothing(tiny_disk: Path) -> None:
    with Store.open(f"sqlite:///{tiny_disk / 'mutualplan.db'}") as store:
        store.add_version(example_plan(), author=SELLER, reason="created", created=WHEN)
        filler = tiny_disk / "filler"
        with filler.open("wb", buffering=0) as f:  # everything the disk has left
            try:
                while True:
                    f.write(b"-" * 4096)
            except OSError:
                pass
        with pytest.raises(StorageFull, match="disk is full"):
            for n in range(2000):  # audit entries until the file needs a page the disk has not got
                store.audit(f"event {n} " + "x" * 400, at=WHEN)
        filler.unlink()
        assert [r.number for r in store.version_records(example_plan().id)] == [1]
