"""The IMAP mailbox against a real Dovecot and Postfix on loopback: send, receive, fetch, ack, drafts, errors."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from imap_tools import MailBoxUnencrypted

from pipeline.errors import ConfigError, MailboxError
from pipeline.mailbox.base import HELD, MemoryCursors, NotFiledError
from pipeline.mailbox.imap import ImapMailbox, ImapSettings
from tests.servers import MailServer

Account = tuple[str, str]  # address, password


@pytest.fixture
def new_account(mailserver: MailServer) -> Callable[[str, str], Account]:
    """A fresh mailbox per test, so tests do not see each other's mail."""

    def make(local: str, domain: str) -> Account:
        address = f"{local}-{uuid.uuid4().hex[:8]}@{domain}"
        return address, mailserver.add_user(address)

    return make


@pytest.fixture
def seller(new_account: Callable[[str, str], Account]) -> Account:
    return new_account("seller", "northwind.example")


@pytest.fixture
def prospect(new_account: Callable[[str, str], Account]) -> Account:
    return new_account("prospect", "acme.example")


@pytest.fixture
def open_box(mailserver: MailServer) -> Iterator[Callable[..., ImapMailbox]]:
    """Open an ImapMailbox on the test servers (plain IMAP and SMTP on loopback unless told otherwise)."""
    opened: list[ImapMailbox] = []

    def make(account: Account, state: MemoryCursors | None = None, **overrides: object) -> ImapMailbox:
        fields: dict = {
            "host": mailserver.host, "port": mailserver.imap_port, "security": "plain",
            "username": account[0], "password": account[1],
            "smtp_port": mailserver.smtp_port, "smtp_security": "plain",
            "cafile": str(mailserver.cafile), "first_sync": "all", "timeout": 10.0,
        }
        fields.update(overrides)
        box = ImapMailbox(ImapSettings(**fields), state if state is not None else MemoryCursors())
        opened.append(box)
        return box

    yield make
    for box in opened:
        box.close()


def letter(
    sender: str, to: str, subject: str = "Mutual plan [MP-7]", body: str = "Version 1 attached."
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@{sender.split('@')[1]}>"
    msg.set_content(body + "\n")
    return msg


def flags_on_disk(mailserver: MailServer, address: str, folder: str) -> list[str]:
    """The Maildir flags of each message in the folder, as Dovecot stored them."""
    base = mailserver.maildir(address, folder)
    names = [p.name for sub in ("new", "cur") if (base / sub).is_dir() for p in (base / sub).iterdir()]
    return sorted(n.split(":2,")[1] if ":2," in n else "" for n in names)


def uidvalidity(mailserver: MailServer, address: str, folder: str = "INBOX") -> int:
    out = mailserver.doveadm("mailbox", "status", "-u", address, "uidvalidity", folder)
    return int(re.search(r"uidvalidity=(\d+)", out).group(1))  # type: ignore[union-attr]


def deliver(mailserver: MailServer, open_box: Callable[..., ImapMailbox], sender: Account, to: str,
            body: str) -> str:
    """Send a message by SMTP as `sender` and wait until it is in `to`'s INBOX; returns its Message-ID."""
    msg = letter(sender[0], to, subject="Re: Mutual plan [MP-7]", body=body)
    open_box(sender, append_sent=False).send(msg)
    mailserver.wait_for_message(to, msg["Message-ID"])
    return msg["Message-ID"]


# --- sending ---------------------------------------------------------------------------------------


@pytest.mark.servers
def test_send_goes_by_smtp_to_the_prospect_and_a_copy_into_sent(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    box = open_box(seller)
    msg = letter(seller[0], prospect[0], body="Here is version 1 of our plan.")
    assert not box.was_sent(msg["Message-ID"])
    box.send(msg)
    received = message_from_bytes(mailserver.wait_for_message(prospect[0], msg["Message-ID"]), policy=policy.default)
    assert received["Return-Path"] == f"<{seller[0]}>"
    assert received["Subject"] == "Mutual plan [MP-7]"
    assert received.get_content() == "Here is version 1 of our plan.\n"
    # Postfix says it took the message from an authenticated client.
    assert "with ESMTPA" in received["Received"]
    sent = mailserver.messages(seller[0], "Sent")
    assert len(sent) == 1
    assert f"Message-ID: {msg['Message-ID']}".encode() in sent[0]
    assert flags_on_disk(mailserver, seller[0], "Sent") == ["S"]
    assert box.was_sent(msg["Message-ID"])
    assert box.was_sent(msg["Message-ID"].strip("<>"))
    assert not box.was_sent(f"<{uuid.uuid4().hex}@northwind.example>")
    assert mailserver.messages(seller[0], "INBOX") == []


@pytest.mark.servers
def test_bcc_recipients_get_the_message_without_the_bcc_header_and_sent_keeps_it(
    mailserver: MailServer, open_box, seller: Account, prospect: Account, new_account
) -> None:
    hidden = new_account("cfo", "acme.example")
    msg = letter(seller[0], prospect[0])
    msg["Bcc"] = hidden[0]
    open_box(seller).send(msg)
    for address in (prospect[0], hidden[0]):
        assert b"\nBcc:" not in mailserver.wait_for_message(address, msg["Message-ID"])
    assert f"Bcc: {hidden[0]}".encode() in mailserver.messages(seller[0], "Sent")[0]


@pytest.mark.servers
def test_save_draft_appends_to_drafts_flagged_draft_and_sends_nothing(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    box = open_box(seller)
    msg = letter(seller[0], prospect[0], body="Version 2, for you to review.")
    box.save_draft(msg)
    drafts = mailserver.messages(seller[0], "Drafts")
    assert len(drafts) == 1 and f"Message-ID: {msg['Message-ID']}".encode() in drafts[0]
    assert flags_on_disk(mailserver, seller[0], "Drafts") == ["DS"]
    assert not box.was_sent(msg["Message-ID"])
    assert mailserver.messages(prospect[0], "INBOX") == []


@pytest.mark.servers
def test_remove_draft_expunges_that_draft_only_and_leaves_sent_alone(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    box = open_box(seller)
    msg = letter(seller[0], prospect[0], body="Version 2, sent.")
    assert box.remove_draft(msg["Message-ID"]) is False  # nothing drafted yet
    box.send(msg)
    box.save_draft(letter(seller[0], prospect[0], body="Another plan's draft."))
    stale = letter(seller[0], prospect[0], body="Version 2, superseded.")
    stale.replace_header("Message-ID", msg["Message-ID"])  # a draft under the Message-ID already in Sent
    box.save_draft(stale)
    assert len(mailserver.messages(seller[0], "Drafts")) == 2

    assert box.remove_draft(msg["Message-ID"].strip("<>")) is True

    [left] = mailserver.messages(seller[0], "Drafts")
    assert b"Another plan's draft." in left
    assert flags_on_disk(mailserver, seller[0], "Drafts") == ["DS"]  # expunged, not just flagged
    [sent] = mailserver.messages(seller[0], "Sent")
    assert b"Version 2, sent." in sent
    assert box.was_sent(msg["Message-ID"])
    assert box.remove_draft(msg["Message-ID"]) is False  # a second call finds nothing
    assert len(mailserver.messages(seller[0], "Drafts")) == 1


@pytest.mark.servers
def test_remove_draft_wants_the_exact_message_id_though_imap_search_ignores_case(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    box = open_box(seller)
    draft = letter(seller[0], prospect[0])
    draft.replace_header("Message-ID", "<Plan-V2.ABC@northwind.example>")
    box.save_draft(draft)
    # SEARCH HEADER matches a substring, ignoring case (RFC 3501 6.4.4): Dovecot offers this draft.
    assert box.remove_draft("<plan-v2.abc@northwind.example>") is False
    assert len(mailserver.messages(seller[0], "Drafts")) == 1
    assert box.remove_draft("<Plan-V2.ABC@northwind.example>") is True
    assert mailserver.messages(seller[0], "Drafts") == []


@pytest.mark.servers
def test_remove_draft_without_uidplus_never_expunges_another_message(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    box = open_box(seller)
    first, second, third = (letter(seller[0], prospect[0], body=f"Draft {n}.") for n in (1, 2, 3))
    for draft in (first, second, third):
        box.save_draft(draft)
    box.remove_draft(f"<{uuid.uuid4().hex}@northwind.example>")  # connects; then the server loses UIDPLUS
    box._capabilities.discard("UIDPLUS")
    # Nothing else waits to be expunged: a plain EXPUNGE removes only ours.
    assert box.remove_draft(first["Message-ID"]) is True
    assert len(mailserver.messages(seller[0], "Drafts")) == 2
    with MailBoxUnencrypted(mailserver.host, mailserver.imap_port).login(*seller) as client:
        # The seller's client marked a draft deleted and has not expunged it yet: that is its call to make.
        client.folder.set("Drafts")
        client.client.uid("STORE", client.uids(f'HEADER Message-ID "{third["Message-ID"]}"')[0],
                          "+FLAGS", r"(\Deleted)")
    assert box.remove_draft(second["Message-ID"]) is True
    # Ours is marked deleted and left for the next expunge, with the seller's; neither is offered again.
    assert flags_on_disk(mailserver, seller[0], "Drafts") == ["DST", "DST"]
    assert box.remove_draft(second["Message-ID"]) is False
    assert box.remove_draft(third["Message-ID"]) is False


@pytest.mark.servers
def test_named_sent_folder_is_created_and_used(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    box = open_box(seller, sent_folder="Sent Items")
    msg = letter(seller[0], prospect[0])
    box.send(msg)
    assert len(mailserver.messages(seller[0], "Sent Items")) == 1
    assert mailserver.messages(seller[0], "Sent") == []
    assert box.was_sent(msg["Message-ID"])
    assert not open_box(seller).was_sent(msg["Message-ID"])  # that one looks in the \Sent folder


@pytest.mark.servers
def test_a_send_whose_sent_copy_fails_says_not_to_send_again(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    box = open_box(seller, sent_folder="S" * 300)  # a name Dovecot refuses to create
    msg = letter(seller[0], prospect[0])
    with pytest.raises(NotFiledError, match="was sent, but its copy could not be put in Sent") as err:
        box.send(msg)
    assert (err.value.hint or "").startswith("Do not send it again")
    mailserver.wait_for_message(prospect[0], msg["Message-ID"])


# --- reading ---------------------------------------------------------------------------------------


@pytest.mark.servers
def test_fetch_reads_the_prospects_reply_and_ack_moves_it(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    message_id = deliver(mailserver, open_box, prospect, seller[0], "We need the pilot a week later.")
    box = open_box(seller)
    fetched = list(box.fetch())
    assert len(fetched) == 1
    assert fetched[0].key == f"{uidvalidity(mailserver, seller[0])}:1"
    # The bytes Dovecot stored (with LF line ends), byte for byte.
    assert fetched[0].raw.replace(b"\r\n", b"\n") == mailserver.messages(seller[0], "INBOX")[0]
    assert f"Message-ID: {message_id}".encode() in fetched[0].raw
    assert flags_on_disk(mailserver, seller[0], "INBOX") == [""]  # fetching did not mark it read
    box.ack(fetched[0].key)
    assert mailserver.messages(seller[0], "INBOX") == []
    assert len(mailserver.messages(seller[0], "Processed")) == 1
    assert flags_on_disk(mailserver, seller[0], "Processed") == ["S"]
    assert list(box.fetch()) == []
    box.ack(fetched[0].key)  # again, after a crash between the move and the caller's commit: nothing happens


@pytest.mark.servers
def test_ack_without_a_folder_leaves_the_message_as_the_seller_left_it(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    state = MemoryCursors()
    deliver(mailserver, open_box, prospect, seller[0], "not about any plan")
    box = open_box(seller, state)
    (fetched,) = list(box.fetch())
    box.ack(fetched.key, None)
    assert flags_on_disk(mailserver, seller[0], "INBOX") == [""]  # still unread, still in the INBOX
    assert mailserver.messages(seller[0], "Processed") == []
    assert list(open_box(seller, state).fetch()) == []


@pytest.mark.servers
def test_a_poll_asks_only_for_uids_above_the_last_one_handed_over(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    state = MemoryCursors()
    deliver(mailserver, open_box, prospect, seller[0], "first")
    deliver(mailserver, open_box, prospect, seller[0], "second")
    box = open_box(seller, state)
    validity = uidvalidity(mailserver, seller[0])
    assert [f.key for f in box.fetch()] == [f"{validity}:1", f"{validity}:2"]
    assert state.values == {f"imap:{seller[0]}@{mailserver.host}:INBOX": f"{validity}:2"}
    deliver(mailserver, open_box, prospect, seller[0], "third")
    # Not acknowledged, but handed over: the next poll offers only the new one.
    third = list(open_box(seller, state).fetch())
    assert [f.key for f in third] == [f"{validity}:3"]
    assert b"third" in third[0].raw
    # Nothing new: "UID 4:*" still answers with the highest UID (RFC 3501), which must not come back.
    assert list(open_box(seller, state).fetch()) == []
    # The first connection, still open with the INBOX selected, sees new mail without selecting again.
    deliver(mailserver, open_box, prospect, seller[0], "fourth")
    assert [f.key for f in box.fetch()] == [f"{validity}:4"]


@pytest.mark.servers
def test_a_poll_cut_short_is_offered_again(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    state = MemoryCursors()
    deliver(mailserver, open_box, prospect, seller[0], "first")
    deliver(mailserver, open_box, prospect, seller[0], "second")
    polling = open_box(seller, state).fetch()
    first = next(polling)
    polling.close()  # the watcher died while handling the first message
    assert state.values == {}
    again = list(open_box(seller, state).fetch())
    assert [f.key for f in again] == [first.key, first.key.replace(":1", ":2")]


@pytest.mark.servers
def test_a_changed_uidvalidity_reads_the_folder_again_from_the_start(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    state = MemoryCursors()
    deliver(mailserver, open_box, prospect, seller[0], "first")
    box = open_box(seller, state)
    old = list(box.fetch())
    assert len(old) == 1
    deliver(mailserver, open_box, prospect, seller[0], "second")
    mailserver.doveadm("mailbox", "update", "-u", seller[0], "--uid-validity", "4242", "INBOX")
    rescanned = list(open_box(seller, state).fetch())
    assert [f.key for f in rescanned] == ["4242:1", "4242:2"]
    assert rescanned[0].raw == old[0].raw  # the caller recognises it by its Message-ID
    assert state.values[f"imap:{seller[0]}@{mailserver.host}:INBOX"] == "4242:2"
    # A key from before the change no longer names anything: a retryable error, nothing moved.
    with pytest.raises(MailboxError, match="was rebuilt") as err:
        box.ack(old[0].key)
    assert err.value.transient
    assert len(mailserver.messages(seller[0], "INBOX")) == 2


@pytest.mark.servers
def test_the_first_poll_skips_mail_the_seller_has_already_read(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    deliver(mailserver, open_box, prospect, seller[0], "read long ago")
    deliver(mailserver, open_box, prospect, seller[0], "not read yet")
    with MailBoxUnencrypted(mailserver.host, mailserver.imap_port).login(*seller) as client:
        client.client.uid("STORE", "1", "+FLAGS", r"(\Seen)")
    state = MemoryCursors()
    first = list(open_box(seller, state, first_sync="unseen").fetch())
    assert len(first) == 1 and b"not read yet" in first[0].raw
    deliver(mailserver, open_box, prospect, seller[0], "new")
    assert [b"new" in f.raw for f in open_box(seller, state, first_sync="unseen").fetch()] == [True]


@pytest.mark.servers
def test_ack_creates_the_folder_and_moves_only_that_message(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    deliver(mailserver, open_box, prospect, seller[0], "hold me")
    deliver(mailserver, open_box, prospect, seller[0], "leave me")
    box = open_box(seller)
    held, _ = list(box.fetch())
    box.ack(held.key, HELD)
    assert [b"hold me" in m for m in mailserver.messages(seller[0], HELD)] == [True]
    assert [b"leave me" in m for m in mailserver.messages(seller[0], "INBOX")] == [True]
    with MailBoxUnencrypted(mailserver.host, mailserver.imap_port).login(*seller) as client:
        assert {f.name for f in client.folder.list(subscribed_only=True)} >= {HELD}


@pytest.mark.servers
def test_ack_without_move_copies_and_expunges_only_that_message(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    deliver(mailserver, open_box, prospect, seller[0], "file me")
    deliver(mailserver, open_box, prospect, seller[0], "keep me")
    box = open_box(seller)
    first, second = list(box.fetch())
    # A server without MOVE (RFC 6851): the same outcome through COPY, \Deleted and UID EXPUNGE.
    box._capabilities.discard("MOVE")
    with MailBoxUnencrypted(mailserver.host, mailserver.imap_port).login(*seller) as client:
        # Someone else's deleted-but-not-expunged message must survive our expunge.
        client.client.uid("STORE", second.key.split(":")[1], "+FLAGS", r"(\Deleted)")
    box.ack(first.key)
    assert [b"file me" in m for m in mailserver.messages(seller[0], "Processed")] == [True]
    assert [b"keep me" in m for m in mailserver.messages(seller[0], "INBOX")] == [True]


# --- TLS -------------------------------------------------------------------------------------------


@pytest.mark.servers
@pytest.mark.parametrize("imap, smtp", [("starttls", "starttls"), ("tls", "tls")])
def test_tls_and_starttls_with_the_servers_certificate(
    mailserver: MailServer, open_box, seller: Account, prospect: Account, imap: str, smtp: str
) -> None:
    ports = {"starttls": (mailserver.imap_port, mailserver.smtp_port),
             "tls": (mailserver.imaps_port, mailserver.smtps_port)}
    box = open_box(seller, host="localhost", security=imap, port=ports[imap][0],
                   smtp_security=smtp, smtp_port=ports[smtp][1])
    msg = letter(seller[0], prospect[0])
    box.send(msg)
    mailserver.wait_for_message(prospect[0], msg["Message-ID"])
    assert box.was_sent(msg["Message-ID"])
    reply_id = deliver(mailserver, open_box, prospect, seller[0], "over TLS")
    assert [f"Message-ID: {reply_id}".encode() in f.raw for f in box.fetch()] == [True]


@pytest.mark.servers
def test_an_untrusted_certificate_is_a_clear_error(mailserver: MailServer, open_box, seller: Account) -> None:
    box = open_box(seller, host="localhost", security="tls", port=mailserver.imaps_port, cafile=None)
    with pytest.raises(MailboxError, match="cannot verify the certificate of the IMAP server") as err:
        list(box.fetch())
    assert "cafile" in (err.value.hint or "")


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.servers
def test_a_wrong_imap_password_is_a_mailbox_error_that_says_what_to_check(
    mailserver: MailServer, open_box, seller: Account
) -> None:
    box = open_box((seller[0], "not-the-password"))
    with pytest.raises(MailboxError) as err:
        list(box.fetch())
    assert err.value.message.startswith(
        f"the IMAP server {mailserver.host}:{mailserver.imap_port} refused the login of {seller[0]}"
    )
    assert "AUTHENTICATIONFAILED" in err.value.message
    assert not err.value.transient
    assert "password" in (err.value.hint or "")
    with pytest.raises(MailboxError, match="refused the login") as err:
        box.remove_draft("<v1@northwind.example>")
    assert not err.value.transient


@pytest.mark.servers
def test_a_wrong_smtp_password_is_a_mailbox_error_and_nothing_is_filed(
    mailserver: MailServer, open_box, seller: Account, prospect: Account
) -> None:
    box = open_box(seller, smtp_password="not-the-password")
    with pytest.raises(MailboxError, match=rf"the SMTP server .* refused the login of {re.escape(seller[0])}: 535"):
        box.send(letter(seller[0], prospect[0]))
    assert mailserver.messages(seller[0], "Sent") == []


@pytest.mark.servers
def test_an_unknown_recipient_bounces_back_to_the_seller(
    mailserver: MailServer, open_box, seller: Account
) -> None:
    msg = letter(seller[0], "nobody@acme.example")
    open_box(seller).send(msg)
    mailserver.wait_for_message(seller[0], msg["Message-ID"], folder="Sent")
    bounce = _wait_for_any(mailserver, seller[0])
    assert b"nobody@acme.example" in bounce and b"MAILER-DAEMON" in bounce


def _wait_for_any(mailserver: MailServer, address: str, timeout: float = 20.0) -> bytes:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = mailserver.messages(address, "INBOX")
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"nothing arrived for {address}\n{mailserver.logs()}")


def test_a_server_that_is_not_there_is_a_transient_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        box = ImapMailbox(
            ImapSettings(host="127.0.0.1", port=port, security="plain", username="a@b.example", password="x",
                         smtp_port=port, smtp_security="plain", timeout=5),
            MemoryCursors(),
        )
        with pytest.raises(MailboxError, match=f"cannot read new mail from the IMAP server 127.0.0.1:{port}") as err:
            list(box.fetch())
        assert err.value.transient and "it will be retried" in (err.value.hint or "")
        with pytest.raises(MailboxError, match=f"cannot reach the SMTP server 127.0.0.1:{port}") as err:
            box.send(letter("a@b.example", "c@d.example"))
        assert err.value.transient
        with pytest.raises(MailboxError, match=f"cannot remove a draft from the IMAP server 127.0.0.1:{port}") as err:
            box.remove_draft("<v1@b.example>")
        assert err.value.transient


def test_plain_text_passwords_go_only_to_this_machine() -> None:
    with pytest.raises(ConfigError, match=r"unencrypted to mail\.example\.com"):
        ImapMailbox(ImapSettings(host="mail.example.com", username="u", password="p", security="plain"),
                    MemoryCursors())
    with pytest.raises(ConfigError, match="smtp_security = 'plain'"):
        ImapMailbox(ImapSettings(host="mail.example.com", username="u", password="p", smtp_security="plain"),
                    MemoryCursors())
    with pytest.raises(ConfigError, match="no IMAP password"):
        ImapMailbox(ImapSettings(host="mail.example.com", username="u", password=""), MemoryCursors())
    ImapMailbox(ImapSettings(host="localhost", username="u", password="p", security="plain"), MemoryCursors())


class _StatusWithoutNumbers:
    """An imaplib client whose server answers SELECT and STATUS but names no UIDVALIDITY or UIDNEXT."""

    def select(self, mailbox: str, readonly: bool = False) -> tuple[str, list[bytes]]:
        return "OK", [b"3"]

    def response(self, name: str) -> tuple[str, list[None]]:
        return name, [None]

    def status(self, mailbox: str, names: str) -> tuple[str, list[bytes]]:
        return "OK", [b'"INBOX" (MESSAGES 3)']


def test_a_status_without_uidvalidity_is_a_mailbox_error() -> None:
    from types import SimpleNamespace

    from pipeline.mailbox.imap.connection import ImapConnection

    imap = ImapConnection(ImapSettings(host="localhost", username="u", password="p", security="plain"))
    imap.box = SimpleNamespace(client=_StatusWithoutNumbers())
    with pytest.raises(MailboxError, match="UIDVALIDITY and UIDNEXT of INBOX"):
        imap.select("INBOX")
