"""was_sent() looks only at what Sent gained since its last vain look, and still sees every message that lands.

The watcher asks about every draft waiting for the seller on every poll; these tests hold the shortcuts that
keep that cheap (Maildir: Sent's folder mtimes; IMAP: the UIDs already searched) to never missing a message.
"""

from __future__ import annotations

import imaplib
import os
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from pipeline.mailbox.base import MemoryCursors
from pipeline.mailbox.imap import ImapMailbox, ImapSettings
from pipeline.mailbox.maildir import MaildirMailbox
from tests.servers import MailServer

HOUR_AGO = time.time() - 3600


def sent_copy(message_id: str) -> bytes:
    return (f"From: Jordan Lee <jordan.lee@northwind.example>\nTo: dana@acme.example\nSubject: Mutual Plan\n"
            f"Message-ID: {message_id}\n\nVersion 2.\n").encode()


def age(folder: Path, when: float = HOUR_AGO) -> None:
    """Make a Maildir folder look untouched since `when`."""
    for sub in ("new", "cur"):
        os.utime(folder / sub, (when, when))


def file_in_sent(root: Path, name: str, message_id: str) -> Path:
    """Another program (the seller's mail client) files a message in Sent."""
    path = root / ".Sent" / "cur" / f"{name}:2,S"
    path.write_bytes(sent_copy(message_id))
    return path


# --- Maildir --------------------------------------------------------------------------------------


def test_maildir_a_message_filed_after_a_vain_look_is_found(tmp_path: Path) -> None:
    box = MaildirMailbox(tmp_path / "mail")
    for n in range(50):
        file_in_sent(box.root, f"1700000000.M{n}P1.old", f"<old-{n}@northwind.example>")
    age(box.root / ".Sent")
    assert not box.was_sent("<v2@northwind.example>")
    assert not box.was_sent("<v2@northwind.example>")  # Sent unchanged: answered without listing it
    file_in_sent(box.root, "1700000100.M1P1.client", "<v2@northwind.example>")
    assert box.was_sent("<v2@northwind.example>")
    assert box.was_sent("<old-7@northwind.example>")


def test_maildir_an_unchanged_sent_is_not_read_again(tmp_path: Path) -> None:
    box = MaildirMailbox(tmp_path / "mail")
    file_in_sent(box.root, "1700000000.M1P1.old", "<old@northwind.example>")
    age(box.root / ".Sent")
    assert not box.was_sent("<v2@northwind.example>")
    # A file slipped in without moving the folder's mtime (it cannot, but this shows Sent is not listed).
    file_in_sent(box.root, "1700000100.M1P1.client", "<v2@northwind.example>")
    age(box.root / ".Sent")
    assert not box.was_sent("<v2@northwind.example>")
    # A fresh mailbox object (another process) has no such memory and finds it.
    assert MaildirMailbox(box.root).was_sent("<v2@northwind.example>")


def test_maildir_a_recently_changed_sent_is_always_listed(tmp_path: Path) -> None:
    # Within the filesystem's timestamp granularity a new file might not move the mtime: a folder changed in
    # the last seconds is listed every time, so the same trick as above does not hide the file.
    box = MaildirMailbox(tmp_path / "mail")
    file_in_sent(box.root, "1700000000.M1P1.old", "<old@northwind.example>")
    now = time.time()
    age(box.root / ".Sent", now)
    assert not box.was_sent("<v2@northwind.example>")
    file_in_sent(box.root, "1700000100.M1P1.client", "<v2@northwind.example>")
    age(box.root / ".Sent", now)
    assert box.was_sent("<v2@northwind.example>")


def test_maildir_our_own_send_is_found_at_once(tmp_path: Path) -> None:
    box = MaildirMailbox(tmp_path / "mail")
    age(box.root / ".Sent")
    assert not box.was_sent("<v3@northwind.example>")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "jordan.lee@northwind.example", "dana@acme.example", "Mutual Plan"
    msg["Message-ID"] = "<v3@northwind.example>"
    msg.set_content("Version 3.")
    box.send(msg)
    assert box.was_sent("<v3@northwind.example>")


# --- IMAP (a real Dovecot) ------------------------------------------------------------------------


@pytest.fixture
def account(mailserver: MailServer) -> tuple[str, str]:
    address = f"sent-{uuid.uuid4().hex[:8]}@northwind.example"
    return address, mailserver.add_user(address)


def open_box(mailserver: MailServer, account: tuple[str, str]) -> ImapMailbox:
    return ImapMailbox(ImapSettings(
        host=mailserver.host, port=mailserver.imap_port, security="plain", username=account[0],
        password=account[1], smtp_port=mailserver.smtp_port, smtp_security="plain", timeout=10.0,
    ), MemoryCursors())


def append_to_sent(mailserver: MailServer, account: tuple[str, str], message_id: str) -> None:
    """The seller's own mail client files a sent message, over its own connection."""
    client = imaplib.IMAP4(mailserver.host, mailserver.imap_port)
    try:
        client.login(*account)
        typ, _ = client.append("Sent", r"(\Seen)", imaplib.Time2Internaldate(time.time()),
                               sent_copy(message_id).replace(b"\n", b"\r\n"))
        assert typ == "OK"
    finally:
        client.logout()


def test_imap_a_message_appended_after_vain_looks_is_found(mailserver: MailServer, account) -> None:
    for n in range(5):
        append_to_sent(mailserver, account, f"<old-{n}@northwind.example>")
    box = open_box(mailserver, account)
    try:
        assert not box.was_sent("<v2@northwind.example>")
        assert not box.was_sent("<v2@northwind.example>")  # nothing new in Sent: no search at all
        append_to_sent(mailserver, account, "<other@northwind.example>")
        assert not box.was_sent("<v2@northwind.example>")  # only the new message was searched
        append_to_sent(mailserver, account, "<v2@northwind.example>")
        append_to_sent(mailserver, account, "<later@northwind.example>")
        assert box.was_sent("<v2@northwind.example>")
        assert box.was_sent("<old-3@northwind.example>")  # a first question searches the whole folder
    finally:
        box.close()


def test_imap_a_rebuilt_sent_is_searched_whole_again(mailserver: MailServer, account) -> None:
    append_to_sent(mailserver, account, "<old@northwind.example>")
    box = open_box(mailserver, account)
    try:
        assert not box.was_sent("<v2@northwind.example>")
        # Sent is made anew (a new UIDVALIDITY, UIDs from 1 again): the sought message gets a UID below the one
        # searched up to, and only a search of the whole folder finds it.
        mailserver.doveadm("mailbox", "delete", "-u", account[0], "Sent")
        mailserver.doveadm("mailbox", "create", "-u", account[0], "Sent")
        append_to_sent(mailserver, account, "<v2@northwind.example>")
        assert box.was_sent("<v2@northwind.example>")
    finally:
        box.close()
