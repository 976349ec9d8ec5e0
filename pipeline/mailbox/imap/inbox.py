"""Reading new mail from the IMAP folder by UID, and filing it once processed."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from functools import partial

from pipeline.errors import MailboxError
from pipeline.mailbox.base import Cursors, Fetched
from pipeline.mailbox.imap.connection import ImapConnection, encode_folder, ok

log = logging.getLogger(__name__)

FETCH_CHUNK = 25  # messages per UID FETCH: few round trips, bounded memory

_UID_IN_FETCH = re.compile(rb"UID (\d+)")


class ImapInbox:
    """The folder new mail is read from, and the place in it (UIDVALIDITY and the last UID handed over)."""

    def __init__(self, imap: ImapConnection, cursors: Cursors, state_key: str) -> None:
        self._imap = imap
        self.settings = imap.settings
        self._cursors = cursors
        self._state_key = state_key

    def fetch(self) -> Iterator[Fetched]:
        """Messages with a UID above the last one handed over, oldest first; the place advances at the end.

        A crash or an error before the last message is taken leaves the place where it was, so the next poll
        offers again what was not acknowledged (acknowledged mail has left the folder).
        """
        validity, last, uids = self._imap.call("read new mail from", self._new_uids)
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = uids[start:start + FETCH_CHUNK]
            bodies = self._imap.call("read new mail from", partial(self._fetch_bodies, validity, chunk))
            for uid in chunk:
                if uid in bodies:  # else expunged meanwhile: nothing left to hand over
                    yield Fetched(key=f"{validity}:{uid}", raw=bodies[uid])
        self._cursors.set_cursor(self._state_key, f"{validity}:{max([last, *uids])}")

    def ack(self, key: str, folder: str | None) -> None:
        """Mark the message seen and move it to `folder` (created if missing); a message already gone is fine.

        `folder=None` touches nothing: the message stays as the seller left it (unread if it was), and the
        place kept in the Cursors is what keeps it from being fetched again.
        """
        validity, uid = _split_key(key)
        if folder is None:
            return
        self._imap.call("file a message in", lambda: self._move(validity, uid, folder))

    def _move(self, validity: int, uid: int, folder: str) -> None:
        """Seen, then MOVE (or COPY, \\Deleted and UID EXPUNGE of just this message where MOVE is missing)."""
        imap = self._imap
        current, _ = imap.select(self.settings.folder, reuse=True)
        if current != validity:
            raise MailboxError(
                f"cannot file message {validity}:{uid}: {self.settings.folder} on {self.settings.host} was rebuilt "
                f"(UIDVALIDITY is now {current})",
                transient=True,
                hint="Nothing is lost: the next poll reads the folder again and finds the message anew.",
            )
        imap.ensure_folder(folder)
        client = imap.client()
        ok(client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)"), "mark it seen")
        target = encode_folder(folder)
        if "MOVE" in imap.capabilities:
            ok(client.uid("MOVE", str(uid), target), f"move it to {folder}")
        else:
            ok(client.uid("COPY", str(uid), target), f"copy it to {folder}")
            ok(client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), "mark it deleted")
            if "UIDPLUS" in imap.capabilities:
                ok(client.uid("EXPUNGE", str(uid)), "expunge it")
            else:
                ok(client.expunge(), "expunge it")

    def _new_uids(self) -> tuple[int, int, list[int]]:
        """Search the folder: (UIDVALIDITY, the last UID handed over, the UIDs to hand over).

        On a kept connection with the folder still selected, NOOP brings in new mail and no SELECT is
        needed (SELECT costs more as the folder grows); UIDVALIDITY cannot change under a selection, a
        server that rebuilds the folder closes the connection instead.
        """
        s = self.settings
        imap = self._imap
        saved = self._saved_place()
        if saved is not None and imap.selected and imap.selected[0] == s.folder:
            ok(imap.client().noop(), "check for new mail")
            validity, uid_next = imap.select(s.folder, reuse=True)
        else:
            validity, uid_next = imap.select(s.folder)
        if saved is not None and saved[0] == validity:
            last = saved[1]
            uids = [u for u in self._search(f"UID {last + 1}:*") if u > last]
        elif saved is None and s.first_sync == "unseen":
            # The very first poll: mail already read is the seller's, not ours to process.
            last = uid_next - 1
            uids = [u for u in self._search("UNSEEN") if u < uid_next]
        else:
            if saved is not None:
                log.warning(
                    "imap: UIDVALIDITY of %s changed (%s -> %s); reading the folder again",
                    s.folder, saved[0], validity,
                )
            last = 0
            uids = self._search("ALL")
        return validity, last, sorted(uids)

    def _search(self, criteria: str) -> list[int]:
        typ, data = self._imap.client().uid("SEARCH", criteria)
        ok((typ, data), "search for new mail")
        return [int(u) for u in (data[0] or b"").split()] if data else []

    def _fetch_bodies(self, validity: int, uids: list[int]) -> dict[int, bytes]:
        folder = self.settings.folder
        current, _ = self._imap.select(folder, reuse=True)
        if current != validity:
            # Rebuilt between the search and now: this poll ends, the next one starts over.
            raise MailboxError(f"{folder} was rebuilt while reading it", transient=True)
        typ, data = self._imap.client().uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
        ok((typ, data), "read new mail")
        bodies: dict[int, bytes] = {}
        for item in data or []:
            if isinstance(item, tuple) and len(item) == 2:
                match = _UID_IN_FETCH.search(item[0])
                if match:
                    bodies[int(match.group(1))] = item[1]
        return bodies

    def _saved_place(self) -> tuple[int, int] | None:
        saved = self._cursors.cursor(self._state_key)
        if not saved:
            return None
        try:
            validity, last = saved.split(":")
            return int(validity), int(last)
        except ValueError:
            log.warning("imap: unreadable saved place %r; reading %s from the start", saved, self.settings.folder)
            return None


def _split_key(key: str) -> tuple[int, int]:
    try:
        validity, uid = key.split(":")
        return int(validity), int(uid)
    except ValueError:
        raise MailboxError(f"{key!r} is not a key of this IMAP mailbox (UIDVALIDITY:UID)") from None
