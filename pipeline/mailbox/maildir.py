"""The embedded default mailbox: a local Maildir tree, and an outbox folder of .eml files instead of delivery."""

from __future__ import annotations

import email.generator
import email.parser
import email.policy
import hashlib
import io
import mailbox
import os
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from pipeline.durable import fsync_dir, write_atomic
from pipeline.errors import MailboxError
from pipeline.mailbox.base import HELD, PROCESSED, Fetched, NotFiledError, with_brackets

SENT = "Sent"
DRAFTS = "Drafts"
FOLDERS = (SENT, DRAFTS, PROCESSED, HELD)
INDEX_NAME = "message-ids.index"  # Sent's Message-IDs by maildir key, so was_sent() reads each file once
# A folder's mtime is trusted to show a change only once it is this old: a file added within the
# filesystem's timestamp granularity of the last change might not move it.
_SETTLED_NS = 5_000_000_000

_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


class MaildirMailbox:
    """A Maildir++ tree: the root is the Inbox, the other folders are `.Sent`, `.Drafts`, `.Processed`, `.Held`.

    `outbox` (by default `outbox/` beside the Maildir) receives a copy of every sent message, named by its
    Message-ID so that sending the same message again replaces the file rather than adding a second one.
    """

    name = "maildir"

    def __init__(self, root: Path | str, outbox: Path | str | None = None) -> None:
        self.root = Path(root)
        self.outbox = Path(outbox) if outbox is not None else self.root.parent / "outbox"
        self._folders: dict[str, mailbox.Maildir] = {}
        try:
            # Maildir(create=True) makes nothing when the folder exists (a home's empty mail/): make the parts.
            for part in ("tmp", "new", "cur"):
                (self.root / part).mkdir(mode=0o700, parents=True, exist_ok=True)
            self._inbox = mailbox.Maildir(self.root, factory=None, create=True)
            for folder in FOLDERS:
                self._folder(folder)
            self.outbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _error(exc, f"cannot create the mail folders in {self.root}") from exc
        self._index: dict[str, str] | None = None
        self._ids: set[str] = set()  # the index's Message-IDs
        self._sent_stamp: tuple[int, int] | None = None  # Sent's new/ and cur/ mtimes when last read whole

    # --- reading -------------------------------------------------------------------------------------

    def fetch(self) -> Iterator[Fetched]:
        """Messages in the Inbox's `new/`, oldest first (only `new/` is listed: acked mail costs nothing)."""
        new = self.root / "new"
        found = []
        try:
            with os.scandir(new) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        found.append((entry.stat().st_mtime_ns, entry.name))
                    except FileNotFoundError:
                        continue  # acked meanwhile by another process
        except OSError as exc:
            raise _error(exc, f"cannot list {new}") from exc
        for _, filename in sorted(found):
            try:
                raw = (new / filename).read_bytes()
            except FileNotFoundError:
                continue  # acked meanwhile (another process); nothing to hand over
            except OSError as exc:
                raise _error(exc, f"cannot read {new / filename}") from exc
            yield Fetched(key=_key(filename), raw=raw)

    def ack(self, key: str, folder: str | None = PROCESSED) -> None:
        """Move the Inbox message `key` to `folder` (created if missing), marked seen; again is a no-op.

        `folder=None` leaves it in the Inbox, unread, but out of `new/` (Maildir's "noticed"), so it is not
        fetched again.
        """
        target_dir = self.root if folder is None else Path(self._folder(folder)._path)
        source = self._find_in_inbox(key)
        if source is None or (folder is None and source.parent.name == "cur"):
            if any(_key(name) == key for name in _names(target_dir / "cur")):
                return  # acked before: a replay after a crash between the move and the caller's commit
            raise MailboxError(
                f"no message {key!r} in the Inbox of {self.root}",
                hint="it was moved or deleted by something else; fetch again to see what is there",
            )
        flags = set(source.name.split(":2,", 1)[1]) if ":2," in source.name else set()
        if folder is not None:
            flags.add("S")
        destination = target_dir / "cur" / f"{key}:2,{''.join(sorted(flags))}"
        try:
            os.rename(source, destination)
            fsync_dir(destination.parent)
            fsync_dir(source.parent)
        except OSError as exc:
            raise _error(exc, f"cannot move {source} to {destination.parent}") from exc

    def was_sent(self, message_id: str) -> bool:
        """Whether Sent holds this Message-ID: the index answers, and only files it has not seen are read.

        Sent is listed only when its folders changed since the last complete look, so asking about every
        draft on every poll costs two stat() calls however full Sent is.
        """
        wanted = with_brackets(message_id)
        index = self._load_index()
        if wanted in self._ids:
            return True
        sent = Path(self._folder(SENT)._path)
        looked = time.time_ns()
        stamp = _stamp(sent)
        if stamp is not None and stamp == self._sent_stamp:
            return False
        unseen = {
            _key(name): sent / sub / name
            for sub in ("new", "cur")
            for name in _names(sent / sub)
            if _key(name) not in index
        }
        added = {}
        for key, path in unseen.items():
            try:
                added[key] = _message_id_of(path)
            except FileNotFoundError:
                continue  # moved away meanwhile
        self._append_index(added)
        self._sent_stamp = stamp if stamp is not None and max(stamp) < looked - _SETTLED_NS else None
        return wanted in added.values()

    # --- writing -------------------------------------------------------------------------------------

    def send(self, message: EmailMessage) -> None:
        """'Deliver' into the outbox folder, then file in Sent (adds a Message-ID if it has none).

        A draft with the same Message-ID is what goes, the seller's edits included, as their mail client would
        send it; and it leaves Drafts, so that it cannot go a second time from there.
        """
        message_id = _ensure_message_id(message)
        drafts = self._drafts(message_id)
        raw = drafts[0].read_bytes() if drafts else _to_bytes(message)
        target = self.outbox / _outbox_name(message_id)
        try:
            write_atomic(target, raw)
        except OSError as exc:
            raise _error(exc, f"cannot write {target}") from exc
        try:
            key = self._file(SENT, raw, flags="S")
        except MailboxError as exc:
            raise NotFiledError(
                f"{message_id} is in the outbox, but its copy could not be put in Sent: {exc.message}",
                hint="Do not send it again; " + (exc.hint or ""),
            ) from exc
        self._append_index({key: with_brackets(message_id)})
        for path in drafts:
            path.unlink(missing_ok=True)

    def save_draft(self, message: EmailMessage) -> None:
        """File the message in Drafts, flagged as a draft; a draft with its Message-ID already there is kept as is
        (saved before a crash, or edited by the seller since)."""
        message_id = _ensure_message_id(message)
        if not self._drafts(message_id):
            self._file(DRAFTS, _to_bytes(message), flags="D")

    def replace_draft(self, message: EmailMessage) -> None:
        """File the message in Drafts in place of the drafts with its Message-ID (the seller edited it by command);
        the new one is filed before the old go, so that a crash leaves two drafts, never none."""
        message_id = _ensure_message_id(message)
        old = self._drafts(message_id)
        self._file(DRAFTS, _to_bytes(message), flags="D")
        for path in old:
            path.unlink(missing_ok=True)

    def _drafts(self, message_id: str) -> list[Path]:
        """The files in Drafts with this Message-ID (Drafts holds a few messages: each is read, headers only)."""
        wanted = with_brackets(message_id)
        base = Path(self._folder(DRAFTS)._path)
        found = []
        for path in sorted(base / sub / name for sub in ("new", "cur") for name in _names(base / sub)):
            try:
                if _message_id_of(path) == wanted:
                    found.append(path)
            except FileNotFoundError:
                continue  # sent or deleted meanwhile
        return found

    def deliver(self, raw: bytes) -> str:
        """Put a message in the Inbox as a mail server would (tmp/, fsync, then new/); returns its key."""
        try:
            key = self._inbox.add(raw)
            fsync_dir(self.root / "new")
        except OSError as exc:
            raise _error(exc, f"cannot deliver into {self.root}") from exc
        return key

    def messages(self, folder: str) -> list[bytes]:
        """Every message in a folder ("Inbox" or another), oldest first: for the demo, tests and `status`."""
        base = self.root if folder.lower() == "inbox" else Path(self._folder(folder)._path)
        paths = [base / sub / name for sub in ("new", "cur") for name in _names(base / sub)]
        return [p.read_bytes() for p in sorted(paths, key=lambda p: (p.stat().st_mtime_ns, p.name))]

    # --- inside --------------------------------------------------------------------------------------

    def _folder(self, name: str) -> mailbox.Maildir:
        if not _FOLDER_NAME.match(name) or name.lower() == "inbox":
            raise MailboxError(
                f"{name!r} is not a folder name this mailbox accepts",
                hint="use letters, digits, spaces, '-' or '_' (the Inbox is the Maildir's root)",
            )
        if name not in self._folders:
            try:
                self._folders[name] = self._inbox.get_folder(name)
            except mailbox.NoSuchMailboxError:
                try:
                    self._folders[name] = self._inbox.add_folder(name)
                except OSError as exc:
                    raise _error(exc, f"cannot create the folder {name} in {self.root}") from exc
        return self._folders[name]

    def _find_in_inbox(self, key: str) -> Path | None:
        if "/" in key or key.startswith("."):
            raise MailboxError(f"{key!r} is not a maildir key")
        direct = self.root / "new" / key
        if direct.exists():
            return direct
        # A mail client may have added flags (key:2,S) or moved it to cur/: look by key.
        for sub in ("new", "cur"):
            for name in _names(self.root / sub):
                if _key(name) == key:
                    return self.root / sub / name
        return None

    def _file(self, folder: str, raw: bytes, *, flags: str) -> str:
        """Add `raw` to `folder` through tmp/ and new/ (stdlib, fsynced), then into cur/ with its flags."""
        box = self._folder(folder)
        try:
            key = box.add(raw)
            new, cur = Path(box._path) / "new" / key, Path(box._path) / "cur" / f"{key}:2,{flags}"
            os.rename(new, cur)
            fsync_dir(cur.parent)
            fsync_dir(new.parent)
        except OSError as exc:
            raise _error(exc, f"cannot file a message in {folder} of {self.root}") from exc
        return key

    def _index_path(self) -> Path:
        return Path(self._folder(SENT)._path) / INDEX_NAME

    def _load_index(self) -> dict[str, str]:
        if self._index is None:
            index: dict[str, str] = {}
            try:
                text = self._index_path().read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                text = ""
            for line in text.splitlines():
                key, _, message_id = line.partition("\t")
                if key and message_id:
                    index[key] = message_id
            self._index = index
            self._ids = set(index.values())
        return self._index

    def _append_index(self, entries: dict[str, str]) -> None:
        # A cache of what the files say: losing it costs a rescan, so no fsync.
        index = self._load_index()
        lines = "".join(f"{k}\t{v}\n" for k, v in entries.items() if k not in index)
        if lines:
            try:
                with self._index_path().open("a", encoding="utf-8") as f:
                    f.write(lines)
            except OSError:
                pass  # the next was_sent() reads those files again
        index.update(entries)
        self._ids.update(entries.values())


def _key(filename: str) -> str:
    return filename.split(":", 1)[0]


def _stamp(folder: Path) -> tuple[int, int] | None:
    """The mtimes of a folder's new/ and cur/: they move whenever a message is added, moved or removed."""
    try:
        return (folder / "new").stat().st_mtime_ns, (folder / "cur").stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _names(directory: Path) -> list[str]:
    try:
        return [n for n in os.listdir(directory) if not n.startswith(".")]
    except FileNotFoundError:
        return []


def _message_id_of(path: Path) -> str:
    with path.open("rb") as f:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parse(f)
    value = headers.get("Message-ID")
    return with_brackets(str(value)) if value else ""


def _ensure_message_id(message: EmailMessage) -> str:
    if not message.get("Message-ID"):
        message["Message-ID"] = make_msgid(domain=_domain_of(message))
    return str(message["Message-ID"]).strip()


def _domain_of(message: EmailMessage) -> str | None:
    sender = str(message.get("From") or "")
    match = re.search(r"@([A-Za-z0-9.-]+)", sender)
    return match.group(1) if match else None


def _to_bytes(message: EmailMessage) -> bytes:
    buffer = io.BytesIO()
    policy = (message.policy if isinstance(message.policy, email.policy.EmailPolicy) else email.policy.default)
    email.generator.BytesGenerator(buffer, policy=policy.clone(linesep="\n")).flatten(message)
    return buffer.getvalue()


def _outbox_name(message_id: str) -> str:
    bare = with_brackets(message_id)[1:-1]
    digest = hashlib.sha256(bare.encode()).hexdigest()[:10]
    return f"{_UNSAFE.sub('_', bare)[:80]}-{digest}.eml"


def _error(exc: OSError, what: str) -> MailboxError:
    return MailboxError(
        f"{what}: {exc.strerror or exc}",
        hint="check that the mail directory exists, is writable by this user, and the disk is not full",
    )
