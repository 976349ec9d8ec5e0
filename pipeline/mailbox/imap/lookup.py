"""Finding a Message-ID in Sent (was it sent?) and in Drafts (is a draft of it waiting?), searched by the server."""

from __future__ import annotations

import imaplib
import re
from email.parser import BytesHeaderParser
from email.policy import compat32

from pipeline.mailbox.base import with_brackets
from pipeline.mailbox.imap.connection import ImapConnection, encode_folder, ok, quote

_UID = re.compile(rb"UID (\d+)")


class SentLookup:
    """SEARCH HEADER Message-ID in Sent, asking only about what reached Sent since the last vain search."""

    def __init__(self, imap: ImapConnection) -> None:
        self._imap = imap
        # Message-ID -> (UIDVALIDITY, UIDNEXT) of Sent when it was last searched for in vain.
        self._searched: dict[str, tuple[int, int]] = {}

    def search(self, wanted: str) -> bool:
        """SEARCH HEADER Message-ID in Sent, opened read-only (EXAMINE) so nothing there changes.

        Only what Sent gained since the last vain search for this Message-ID is searched: UIDs only grow, so
        "not there" stays true of the UIDs already searched (until UIDVALIDITY changes). Asking about each
        draft on every poll then costs a STATUS, however full Sent is, and leaves the Inbox selected.
        """
        imap = self._imap
        sent = imap.special_folder("sent")
        if not imap.folder_exists(sent):
            return False
        client = imap.client()
        typ, data = client.status(encode_folder(sent), "(UIDVALIDITY UIDNEXT)")
        ok((typ, data), f"read the status of {sent}")
        text = data[0].decode(errors="replace") if data and isinstance(data[0], bytes) else ""
        validity, uid_next = re.search(r"UIDVALIDITY (\d+)", text), re.search(r"UIDNEXT (\d+)", text)
        place = (int(validity.group(1)), int(uid_next.group(1))) if validity and uid_next else None
        before = self._searched.get(wanted)
        if place and before and before[0] == place[0] and place[1] <= before[1]:
            return False  # nothing reached Sent since the last look
        ok(client.select(encode_folder(sent), readonly=True), f"open {sent}")
        imap.selected = None
        criteria = ["HEADER", "Message-ID", quote(wanted)]
        if place and before and before[0] == place[0]:
            criteria = ["UID", f"{before[1]}:*", *criteria]
        typ, data = client.uid("SEARCH", *criteria)
        ok((typ, data), f"search {sent}")
        # Leave Sent (CLOSE after EXAMINE removes nothing): STATUS of a selected folder may be stale.
        ok(client.close(), f"leave {sent}")
        found = bool(data and data[0] and data[0].split())
        if place and not found:
            self._searched[wanted] = place
        return found


def find_drafts(imap: ImapConnection, wanted: str) -> tuple[str, list[int], bytes | None]:
    """Drafts with this Message-ID, <bracketed>: (the Drafts folder, their UIDs, the bytes of the newest, or None)."""
    folder = imap.special_folder("drafts")
    if not imap.folder_exists(folder):
        return folder, [], None
    client = imap.client()
    imap.selected = None
    ok(client.select(encode_folder(folder), readonly=True), f"open {folder}")
    uids = draft_uids(client, folder, wanted)
    if not uids:
        return folder, [], None
    typ, data = client.uid("FETCH", str(uids[-1]), "(BODY.PEEK[])")
    ok((typ, data), f"read a draft in {folder}")
    raw = next((item[1] for item in data or [] if isinstance(item, tuple) and len(item) == 2), None)
    return folder, uids, raw


def remove_drafts(imap: ImapConnection, wanted: str) -> bool:
    """Delete the drafts with this Message-ID, <bracketed>, from Drafts; False when there are none."""
    folder = imap.special_folder("drafts")
    if not imap.folder_exists(folder):
        return False
    client = imap.client()
    imap.selected = None
    # Read-write, and left selected afterwards: CLOSE would expunge what others marked deleted.
    ok(client.select(encode_folder(folder)), f"open {folder}")
    uids = draft_uids(client, folder, wanted)
    if uids:
        imap.delete_selected(folder, uids)
    return bool(uids)


def draft_uids(client: imaplib.IMAP4, folder: str, wanted: str) -> list[int]:
    """UIDs in the selected folder whose Message-ID is exactly `wanted`, leaving out those marked deleted.

    SEARCH HEADER matches a substring and ignores case (RFC 3501 6.4.4), so the server's answer is only a
    shortlist: each Message-ID is read back and compared whole.
    """
    typ, data = client.uid("SEARCH", "UNDELETED", "HEADER", "Message-ID", quote(wanted))
    ok((typ, data), f"search {folder}")
    found = sorted(int(u) for u in (data[0] or b"").split()) if data else []
    if not found:
        return []
    typ, data = client.uid("FETCH", ",".join(map(str, found)), "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    ok((typ, data), f"read the Message-IDs in {folder}")
    exact = set()
    for uid, header in _by_uid(data).items():
        value = BytesHeaderParser(policy=compat32).parsebytes(header).get("Message-ID")
        # A folded header keeps its line break; a Message-ID has no spaces, so none are compared.
        if value and with_brackets("".join(str(value).split())) == wanted:
            exact.add(uid)
    return [u for u in found if u in exact]


def _by_uid(data: list | None) -> dict[int, bytes]:
    """The literal of each message of a UID FETCH answer, by UID (given before the literal, or after it)."""
    found: dict[int, bytes] = {}
    literal: bytes | None = None
    for item in data or []:
        if isinstance(item, tuple) and len(item) == 2:
            literal = item[1]
            uid = _UID.search(item[0])
        elif isinstance(item, bytes) and literal is not None:
            uid = _UID.search(item)  # the rest of the answer after the literal: " UID 7)"
        else:
            continue
        if uid:
            found[int(uid.group(1))] = literal
            literal = None
    return found
