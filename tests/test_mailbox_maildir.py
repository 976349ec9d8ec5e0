"""The Maildir mailbox: fetch from new/, ack into folders, send into Sent and the outbox, was_sent."""

from __future__ import annotations

import mailbox
import os
from email.message import EmailMessage
from pathlib import Path

import pytest

from pipeline.errors import MailboxError
from pipeline.mailbox.base import HELD, PROCESSED, Mailbox, NotFiledError
from pipeline.mailbox.maildir import INDEX_NAME, MaildirMailbox

REPLY_1 = (
    b"From: Dana Price <dana.price@acme.example>\n"
    b"To: jordan.lee@northwind.example\n"
    b"Subject: Re: Mutual plan [MP-7]\n"
    b"Message-ID: <reply-1@acme.example>\n"
    b"\n"
    b"Can we move the pilot to March?\n"
)
REPLY_2 = REPLY_1.replace(b"reply-1", b"reply-2").replace(b"March", b"April")


def outgoing(message_id: str | None = "<mp-7.v1.plan@northwind.example>") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "jordan.lee@northwind.example"
    msg["To"] = "dana.price@acme.example"
    msg["Subject"] = "Mutual plan [MP-7]"
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content("Version 1 of our plan is attached.\n")
    return msg


@pytest.fixture
def box(tmp_path: Path) -> MaildirMailbox:
    return MaildirMailbox(tmp_path / "mail")


def files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_a_new_mailbox_is_a_maildir_tree_with_its_folders_and_an_outbox_beside_it(tmp_path: Path) -> None:
    box = MaildirMailbox(tmp_path / "mail")
    protocol: Mailbox = box  # the type checker holds it to the protocol; here, that it has the methods
    assert all(callable(getattr(protocol, m)) for m in ("fetch", "ack", "send", "save_draft", "was_sent"))
    for folder in ("", ".Sent", ".Drafts", ".Processed", ".Held"):
        for sub in ("cur", "new", "tmp"):
            assert (tmp_path / "mail" / folder / sub).is_dir(), f"{folder}/{sub}"
    assert (tmp_path / "outbox").is_dir()
    # The stdlib (and any Maildir++ reader) sees the same folders.
    assert sorted(mailbox.Maildir(tmp_path / "mail").list_folders()) == ["Drafts", "Held", "Processed", "Sent"]


def test_fetch_yields_delivered_messages_oldest_first_with_their_exact_bytes(box: MaildirMailbox) -> None:
    first = box.deliver(REPLY_1)
    second = box.deliver(REPLY_2)
    # Same second is common: make the order depend on delivery, not on the file names.
    os.utime(box.root / "new" / first, ns=(1_000_000_000, 1_000_000_000))
    os.utime(box.root / "new" / second, ns=(2_000_000_000, 2_000_000_000))
    fetched = list(box.fetch())
    assert [f.key for f in fetched] == [first, second]
    assert [f.raw for f in fetched] == [REPLY_1, REPLY_2]
    assert files(box.root / "new") == sorted([first, second])
    assert files(box.root / "tmp") == []


def test_delivery_order_wins_over_file_name_order(box: MaildirMailbox) -> None:
    late = box.deliver(REPLY_1)
    early = box.deliver(REPLY_2)
    os.utime(box.root / "new" / late, ns=(5_000_000_000, 5_000_000_000))
    os.utime(box.root / "new" / early, ns=(3_000_000_000, 3_000_000_000))
    assert [f.key for f in box.fetch()] == [early, late]


def test_unacknowledged_messages_come_back_on_the_next_fetch(box: MaildirMailbox) -> None:
    key = box.deliver(REPLY_1)
    assert [f.key for f in box.fetch()] == [key]
    # A crash before ack(): a new process sees the same message again.
    assert [f.key for f in MaildirMailbox(box.root).fetch()] == [key]


def test_ack_moves_the_message_to_the_folder_marked_seen(box: MaildirMailbox) -> None:
    key = box.deliver(REPLY_1)
    other = box.deliver(REPLY_2)
    box.ack(key)
    assert files(box.root / ".Processed" / "cur") == [f"{key}:2,S"]
    assert (box.root / ".Processed" / "cur" / f"{key}:2,S").read_bytes() == REPLY_1
    assert [f.key for f in box.fetch()] == [other]
    box.ack(other, HELD)
    assert files(box.root / ".Held" / "cur") == [f"{other}:2,S"]
    assert list(box.fetch()) == []
    assert box.messages(PROCESSED) == [REPLY_1]
    assert box.messages(HELD) == [REPLY_2]


def test_ack_creates_a_missing_folder(box: MaildirMailbox) -> None:
    key = box.deliver(REPLY_1)
    box.ack(key, "Shunt")
    assert files(box.root / ".Shunt" / "cur") == [f"{key}:2,S"]
    assert (box.root / ".Shunt" / "maildirfolder").exists()


def test_ack_again_is_harmless_and_an_unknown_key_is_a_clear_error(box: MaildirMailbox) -> None:
    key = box.deliver(REPLY_1)
    box.ack(key)
    box.ack(key)  # a replay after a crash between the move and the caller's commit
    assert files(box.root / ".Processed" / "cur") == [f"{key}:2,S"]
    with pytest.raises(MailboxError, match="no message 'nope' in the Inbox") as err:
        box.ack("nope")
    assert not err.value.transient


def test_ack_without_a_folder_leaves_the_message_in_the_inbox_unread(box: MaildirMailbox) -> None:
    key = box.deliver(REPLY_1)
    box.ack(key, None)
    assert files(box.root / "cur") == [f"{key}:2,"]  # noticed, not read: the seller still sees it as new
    assert files(box.root / "new") == []
    assert list(box.fetch()) == []
    box.ack(key, None)
    assert files(box.root / "cur") == [f"{key}:2,"]
    assert box.messages(PROCESSED) == []


def test_ack_keeps_flags_a_mail_client_added(box: MaildirMailbox) -> None:
    key = box.deliver(REPLY_1)
    # A client read it and flagged it: Maildir moves it to cur/ with an info suffix.
    os.rename(box.root / "new" / key, box.root / "cur" / f"{key}:2,F")
    box.ack(key)
    assert files(box.root / ".Processed" / "cur") == [f"{key}:2,FS"]


def test_fetch_lists_only_new(box: MaildirMailbox) -> None:
    key = box.deliver(REPLY_1)
    os.rename(box.root / "new" / key, box.root / "cur" / f"{key}:2,S")
    for i in range(5):
        box.ack(box.deliver(REPLY_2.replace(b"reply-2", f"old-{i}".encode())))
    assert list(box.fetch()) == []


def test_folder_names_that_would_leave_the_tree_are_refused(box: MaildirMailbox) -> None:
    key = box.deliver(REPLY_1)
    for bad in ("../etc", ".Sent", "a/b", "", "INBOX"):
        with pytest.raises(MailboxError, match="not a folder name"):
            box.ack(key, bad)
    assert [f.key for f in box.fetch()] == [key]


def test_send_writes_the_outbox_and_sent_and_was_sent_sees_it(box: MaildirMailbox, tmp_path: Path) -> None:
    msg = outgoing()
    assert not box.was_sent("<mp-7.v1.plan@northwind.example>")
    box.send(msg)
    outbox = files(tmp_path / "outbox")
    assert len(outbox) == 1 and outbox[0].startswith("mp-7.v1.plan@northwind.example-")
    raw = (tmp_path / "outbox" / outbox[0]).read_bytes()
    assert raw.startswith(b"From: jordan.lee@northwind.example\n")
    assert b"Message-ID: <mp-7.v1.plan@northwind.example>\n" in raw
    sent = files(box.root / ".Sent" / "cur")
    assert len(sent) == 1 and sent[0].endswith(":2,S")
    assert (box.root / ".Sent" / "cur" / sent[0]).read_bytes() == raw
    assert box.was_sent("<mp-7.v1.plan@northwind.example>")
    assert box.was_sent("mp-7.v1.plan@northwind.example")  # without the angle brackets too
    assert not box.was_sent("<mp-7.v2.plan@northwind.example>")
    assert list(box.fetch()) == []  # our own mail is not new mail


def test_sending_the_same_message_again_replaces_its_outbox_file(box: MaildirMailbox, tmp_path: Path) -> None:
    box.send(outgoing())
    box.send(outgoing())
    box.send(outgoing("<mp-7.v2.plan@northwind.example>"))
    assert len(files(tmp_path / "outbox")) == 2
    assert [n for n in files(tmp_path / "outbox") if n.startswith(".")] == []


def test_send_gives_a_message_without_message_id_one(box: MaildirMailbox) -> None:
    msg = outgoing(message_id=None)
    box.send(msg)
    message_id = msg["Message-ID"]
    assert message_id.startswith("<") and message_id.endswith("@northwind.example>")
    assert box.was_sent(message_id)


def test_was_sent_finds_mail_filed_in_sent_by_someone_else_and_remembers_it(box: MaildirMailbox) -> None:
    # The seller's own mail client sends the draft and files it in Sent.
    sent_dir = box.root / ".Sent" / "cur"
    (sent_dir / "1700000000.M1P1.client:2,S").write_bytes(REPLY_1.replace(b"reply-1", b"by-client"))
    assert box.was_sent("<by-client@acme.example>")
    index = (box.root / ".Sent" / INDEX_NAME).read_text()
    assert index == "1700000000.M1P1.client\t<by-client@acme.example>\n"
    # A fresh process answers from the index without reading the file again.
    (sent_dir / "1700000000.M1P1.client:2,S").write_bytes(REPLY_2)
    assert MaildirMailbox(box.root).was_sent("<by-client@acme.example>")


def test_save_draft_files_the_message_in_drafts_flagged_draft(box: MaildirMailbox, tmp_path: Path) -> None:
    box.save_draft(outgoing("<mp-7.v2.followup@northwind.example>"))
    drafts = files(box.root / ".Drafts" / "cur")
    assert len(drafts) == 1 and drafts[0].endswith(":2,D")
    assert b"Message-ID: <mp-7.v2.followup@northwind.example>" in box.messages("Drafts")[0]
    assert files(tmp_path / "outbox") == []
    assert not box.was_sent("<mp-7.v2.followup@northwind.example>")


def test_a_mail_directory_that_cannot_be_created_is_a_mailbox_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(MailboxError, match="cannot create the mail folders") as err:
        MaildirMailbox(tmp_path / "file" / "mail")
    assert "writable" in (err.value.hint or "")


def test_a_send_whose_sent_copy_fails_says_not_to_send_again(box: MaildirMailbox, tmp_path: Path) -> None:
    # Break Sent (its tmp/ is a file now): the outbox write, the 'delivery', has already happened.
    (box.root / ".Sent" / "tmp").rmdir()
    (box.root / ".Sent" / "tmp").write_text("")
    with pytest.raises(NotFiledError, match="is in the outbox, but its copy could not be put in Sent") as err:
        box.send(outgoing())
    assert (err.value.hint or "").startswith("Do not send it again")
    assert len(files(tmp_path / "outbox")) == 1


def test_remove_draft_deletes_the_file_in_drafts_and_only_it(box: MaildirMailbox) -> None:
    box.save_draft(outgoing("<mp-7.v2.followup@northwind.example>"))
    box.save_draft(outgoing("<mp-8.v2.followup@northwind.example>"))
    [kept] = [n for n in files(box.root / ".Drafts" / "cur")
              if b"mp-8" in (box.root / ".Drafts" / "cur" / n).read_bytes()]
    assert box.remove_draft("<mp-7.v2.followup@northwind.example>") is True
    assert files(box.root / ".Drafts" / "cur") == [kept]
    assert box.remove_draft("mp-7.v2.followup@northwind.example") is False


def test_a_drafts_folder_that_cannot_be_read_is_a_mailbox_error_on_remove_draft(box: MaildirMailbox) -> None:
    box.save_draft(outgoing())
    # Drafts' new/ is a file now: listing it fails as an unreadable folder would.
    (box.root / ".Drafts" / "new").rmdir()
    (box.root / ".Drafts" / "new").write_text("")
    with pytest.raises(MailboxError, match="Drafts") as err:
        box.remove_draft("<mp-7.v1.plan@northwind.example>")
    assert "writable" in (err.value.hint or "")
    assert len(files(box.root / ".Drafts" / "cur")) == 1
