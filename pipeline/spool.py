"""A crash-safe on-disk queue of raw messages: write+fsync+rename, claim, finish, and shunt.

The contract follows Mailman's switchboard: an entry is written to a temporary file, fsynced and
renamed into place, so it either exists whole or not at all; claiming renames it to `.bak`; finishing
deletes it; a restart puts `.bak` entries back, counting the attempt (only those whose claimer died: a claim
holds the kernel's lock on its file, so a second watcher on the same spool leaves a live claim alone); an
entry that has failed MAX_ATTEMPTS times moves to `bad/`, and one that raised something unexpected to
`shunt/` with the error.
Each entry is the message's raw bytes (`.eml`) beside a small JSON sidecar (`.json`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.durable import write_atomic

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Entry:
    """A spooled message: its name in the spool, raw bytes, and its sidecar (key, attempts, errors)."""

    name: str
    raw: bytes
    meta: dict[str, Any]


class Spool:
    """The queue in a directory; safe against a crash at any point, not against two writers of one name."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.queue = self.root / "queue"
        self.shunt_dir = self.root / "shunt"
        self.bad_dir = self.root / "bad"
        self._claims: dict[str, int] = {}  # name -> the open, locked file of an entry this process claimed
        for folder in (self.queue, self.shunt_dir, self.bad_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def enqueue(self, raw: bytes, **meta: Any) -> str:
        """Store raw bytes durably and return the entry's name; only then may the mailbox be acknowledged."""
        digest = hashlib.sha256(raw).hexdigest()
        name = f"{time.time_ns():020d}-{digest[:16]}"
        sidecar = {"sha256": digest, "attempts": 0, "errors": [], **meta}
        # The sidecar first: an .eml without its .json would still be processed, never the reverse.
        write_atomic(self.queue / f"{name}.json", json.dumps(sidecar).encode(), sync_dir=False)
        write_atomic(self.queue / f"{name}.eml", raw)
        return name

    def recover(self) -> list[str]:
        """Put back entries claimed by a process that died; count the attempt; move spent ones to bad/."""
        self._drop_orphans()
        moved = []
        for bak in sorted(self.queue.glob("*.bak")):
            name = bak.stem
            fd = _lock(bak)
            if fd is None:
                continue  # claimed by a live process (or finished meanwhile): not ours to put back
            try:
                if self._recover(name, bak):
                    moved.append(name)
            finally:
                os.close(fd)
        return moved

    def _recover(self, name: str, bak: Path) -> bool:
        """Put one dead process's claim back; True when it was spent and moved to bad/."""
        if name in self._claims or not bak.exists():
            return False
        meta = self._meta(name)
        meta["attempts"] = int(meta.get("attempts", 0)) + 1
        meta.setdefault("errors", []).append("the process died while handling it")
        self._save_meta(name, meta)
        if meta["attempts"] >= MAX_ATTEMPTS:
            self._move(name, bak, self.bad_dir)
            return True
        os.replace(bak, self.queue / f"{name}.eml")
        return False

    def _drop_orphans(self, age: float = 60.0) -> None:
        """Delete sidecars whose message was never written (a crash between the two): that message is not stored,
        and is fetched again. Only old ones: a younger one may be another watcher's enqueue in progress."""
        for sidecar in self.queue.glob("*.json"):
            if self._has_message(sidecar.stem):
                continue
            try:
                if time.time() - sidecar.stat().st_mtime > age:
                    sidecar.unlink()
            except FileNotFoundError:
                pass

    def _has_message(self, name: str) -> bool:
        return (self.queue / f"{name}.eml").exists() or (self.queue / f"{name}.bak").exists()

    def keys(self) -> set[str]:
        """The mailbox keys of the entries waiting or being handled: a fetch that offers one again adds nothing.
        A sidecar without its message does not count: that message was never stored, and must be fetched again."""
        found = set()
        for sidecar in self.queue.glob("*.json"):
            if not self._has_message(sidecar.stem):
                continue
            key = self._meta(sidecar.stem).get("key")
            if key:
                found.add(str(key))
        return found

    def pending(self) -> list[str]:
        """Names of entries waiting, oldest first."""
        return sorted(p.stem for p in self.queue.glob("*.eml"))

    def claim(self, name: str) -> Entry | None:
        """Take an entry for handling (rename to .bak); None if another process took it first."""
        src, dst = self.queue / f"{name}.eml", self.queue / f"{name}.bak"
        # Locked before it is renamed, and the lock goes with the file: no moment where it is `.bak` unlocked.
        fd = _lock(src)
        if fd is None:
            return None
        try:
            # Atomic: of two watchers claiming one entry, one rename succeeds and the other finds nothing.
            os.replace(src, dst)
        except FileNotFoundError:
            os.close(fd)
            return None
        self._claims[name] = fd
        return Entry(name=name, raw=dst.read_bytes(), meta=self._meta(name))

    def claimed(self) -> Iterator[Entry]:
        """Claim every pending entry in turn."""
        for name in self.pending():
            entry = self.claim(name)
            if entry is not None:
                yield entry

    def finish(self, name: str) -> None:
        """The entry's effect is committed: delete it."""
        for suffix in (".bak", ".json"):
            (self.queue / f"{name}{suffix}").unlink(missing_ok=True)
        self._release(name)

    def put_back(self, name: str) -> None:
        """Return a claimed entry to the queue uncounted: handling it failed for the machine's reasons (a full disk)."""
        try:
            os.replace(self.queue / f"{name}.bak", self.queue / f"{name}.eml")
        finally:
            self._release(name)

    def fail(self, name: str, error: str) -> str:
        """Handling raised: count it; put the entry back, or move it to shunt/ after MAX_ATTEMPTS. Returns where."""
        meta = self._meta(name)
        meta["attempts"] = int(meta.get("attempts", 0)) + 1
        meta.setdefault("errors", []).append(error[-2000:])
        self._save_meta(name, meta)
        bak = self.queue / f"{name}.bak"
        try:
            if meta["attempts"] >= MAX_ATTEMPTS:
                self._move(name, bak, self.shunt_dir)
                return "shunt"
            os.replace(bak, self.queue / f"{name}.eml")
            return "queue"
        finally:
            self._release(name)

    def _release(self, name: str) -> None:
        fd = self._claims.pop(name, None)
        if fd is not None:
            os.close(fd)

    def shunted(self) -> list[Entry]:
        """Entries in shunt/ and bad/, for a person to look at."""
        out = []
        for folder in (self.shunt_dir, self.bad_dir):
            for eml in sorted(folder.glob("*.eml")):
                meta_path = eml.with_suffix(".json")
                meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
                out.append(Entry(name=f"{folder.name}/{eml.stem}", raw=eml.read_bytes(), meta=meta))
        return out

    def _meta(self, name: str) -> dict[str, Any]:
        """The sidecar; one missing, unreadable or of the wrong shape (`null`, a list, a string count, a number for
        a key) gives the defaults for what is wrong, so a broken sidecar never stops its message."""
        path = self.queue / f"{name}.json"
        try:
            meta = json.loads(path.read_text())
        except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
            meta = {}
        meta = meta if isinstance(meta, dict) else {}
        attempts = meta.get("attempts")
        meta["attempts"] = attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 0
        meta["errors"] = [str(e) for e in meta["errors"]] if isinstance(meta.get("errors"), list) else []
        for text in ("key", "received"):
            # A mailbox key or a time that is not text is no key or time: the mailbox offers the message again.
            if not isinstance(meta.get(text), str):
                meta.pop(text, None)
        return meta

    def _save_meta(self, name: str, meta: dict[str, Any]) -> None:
        write_atomic(self.queue / f"{name}.json", json.dumps(meta).encode())

    def _move(self, name: str, eml: Path, folder: Path) -> None:
        os.replace(eml, folder / f"{name}.eml")
        sidecar = self.queue / f"{name}.json"
        if sidecar.exists():
            os.replace(sidecar, folder / f"{name}.json")


def _lock(path: Path) -> int | None:
    """An open descriptor of `path` holding its exclusive lock, or None when it is gone or another holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
