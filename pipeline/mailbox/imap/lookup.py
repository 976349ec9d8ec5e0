"""Finding a Message-ID in Sent (was it sent?) and in Drafts (is a draft of it waiting?), searched by the server."""

from __future__ import annotations

import re

from pipeline.mailbox.imap.connection import ImapConnection, encode_folder, ok, quote


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
    typ, data = client.uid("SEARCH", "HEADER", "Message-ID", quote(wanted))
    ok((typ, data), f"search {folder}")
    uids = sorted(int(u) for u in (data[0] or b"").split()) if data else []
    if not uids:
        return folder, [], None
    typ, data = client.uid("FETCH", str(uids[-1]), "(BODY.PEEK[])")
    ok((typ, data), f"read a draft in {folder}")
    raw = next((item[1] for item in data or [] if isinstance(item, tuple) and len(item) == 2), None)
    return folder, uids, raw
