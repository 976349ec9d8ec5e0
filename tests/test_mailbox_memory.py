"""The in-memory mailbox: each behaviour and failure mode, and one contract it shares with the Maildir backend."""

from __future__ import annotations

import email
import os
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from pipeline.errors import MailboxError
from pipeline.mailbox.base import HELD, PROCESSED, Mailbox, NotFiledError
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.mailbox.memory import MemoryMailbox

REPLY_1 = (
    b"From: Dana Price <dana.price@acme.example>\n"
    b"To: jordan.lee@northwind.example\n"
    b"Subject: Re: Mutual plan [MP-7]\n"
    b"Message-ID: <reply-1@acme.example>\n"
    b"\n"
    b"Can we move the pilot to March?\n"
)
REPLY_2 = REPLY_1.replace(b"reply-1", b"reply-2").replace(b"March", b"April")
REPLY_3 = REPLY_1.replace(b"reply-1", b"reply-3").replace(b"March", b"May")
PLAN_ID = "<mp-7.v1.plan@northwind.example>"


def outgoing(message_id: str | None = PLAN_ID, body: str = "Version 1 of our plan is attached.\n") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "jordan.lee@northwind.example"
    msg["To"] = "dana.price@acme.example"
    msg["Subject"] = "Mutual plan [MP-7]"
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content(body)
    return msg


def ids(raws: list[bytes]) -> list[str]:
    return [str(email.message_from_bytes(raw)["Message-ID"]) for raw in raws]


@pytest.fixture
def box() -> MemoryMailbox:
    return MemoryMailbox()


# --- each behaviour --------------------------------------------------------------------------------


def test_it_has_the_methods_of_the_protocol(box: MemoryMailbox) -> None:
    protocol: Mailbox = box  # the type checker holds it to the protocol; here, that it has the methods
    methods = ("fetch", "ack", "send", "save_draft", "was_sent", "remove_draft")
    assert all(callable(getattr(protocol, m)) for m in methods)
    assert protocol.name == "memory"


def test_delivered_mail_is_fetched_oldest_first_with_its_exact_bytes(box: MemoryMailbox) -> None:
    first, second = box.deliver(REPLY_1), box.deliver(REPLY_2)
    assert first != second
    assert [(f.key, f.raw) for f in box.fetch()] == [(first, REPLY_1), (second, REPLY_2)]
    assert box.delivered == {first: REPLY_1, second: REPLY_2}


def test_fetch_offers_mail_again_until_it_is_acknowledged(box: MemoryMailbox) -> None:
    first, second = box.deliver(REPLY_1), box.deliver(REPLY_2)
    assert [f.key for f in box.fetch()] == [first, second]
    box.ack(first)
    assert [f.key for f in box.fetch()] == [second]


def test_ack_records_the_folder_each_message_was_filed_in(box: MemoryMailbox) -> None:
    processed, held, left = box.deliver(REPLY_1), box.deliver(REPLY_2), box.deliver(REPLY_3)
    box.ack(processed)
    box.ack(held, HELD)
    box.ack(left, None)
    assert box.filed == {processed: PROCESSED, held: HELD, left: None}
    assert list(box.fetch()) == []
    assert box.messages(PROCESSED) == [REPLY_1]
    assert box.messages(HELD) == [REPLY_2]
    assert box.messages("Inbox") == [REPLY_3]


def test_acking_again_into_the_same_folder_changes_nothing(box: MemoryMailbox) -> None:
    key = box.deliver(REPLY_1)
    box.ack(key, HELD)
    box.ack(key, HELD)
    assert box.filed == {key: HELD}


def test_mail_left_in_the_inbox_can_be_filed_later_but_filed_mail_cannot_move_again(box: MemoryMailbox) -> None:
    key = box.deliver(REPLY_1)
    box.ack(key, None)
    box.ack(key, None)
    box.ack(key, PROCESSED)
    assert box.filed == {key: PROCESSED}
    with pytest.raises(MailboxError, match="filed in Processed already"):
        box.ack(key, HELD)
    with pytest.raises(MailboxError, match="filed in Processed already"):
        box.ack(key, None)


def test_acking_an_unknown_key_is_an_error(box: MemoryMailbox) -> None:
    with pytest.raises(MailboxError, match="no message 'nope'"):
        box.ack("nope")


def test_send_records_the_message_and_was_sent_finds_it_with_or_without_brackets(box: MemoryMailbox) -> None:
    message = outgoing()
    box.send(message)
    assert box.sent == [message]
    assert box.was_sent(PLAN_ID)
    assert box.was_sent(PLAN_ID.strip("<>"))
    assert not box.was_sent("<other@northwind.example>")
    assert box.messages("Sent") == [bytes(message)]


def test_send_gives_a_message_without_one_a_message_id(box: MemoryMailbox) -> None:
    message = outgoing(message_id=None)
    box.send(message)
    assert message["Message-ID"]
    assert box.was_sent(str(message["Message-ID"]))


def test_save_draft_keeps_the_draft_already_there(box: MemoryMailbox) -> None:
    first = outgoing()
    box.save_draft(first)
    box.save_draft(outgoing(body="A second rendering.\n"))
    assert box.drafts == [first]
    assert not box.was_sent(PLAN_ID)
    assert box.messages("Drafts") == [bytes(first)]


def test_sending_a_drafted_message_sends_the_draft_with_the_sellers_edits_and_empties_drafts(
    box: MemoryMailbox,
) -> None:
    box.save_draft(outgoing())
    box.drafts[0].set_content("Edited by the seller.\n")
    box.send(outgoing())
    assert box.drafts == []
    assert [m.get_content() for m in box.sent] == ["Edited by the seller.\n"]
    assert box.was_sent(PLAN_ID)


def test_sent_message_id_is_ours_unless_the_server_renamed_it(box: MemoryMailbox) -> None:
    assert box.sent_message_id(PLAN_ID) is None
    box.send(outgoing())
    assert box.sent_message_id(PLAN_ID.strip("<>")) == PLAN_ID
    box.sent_as[PLAN_ID] = "<exchange-made@northwind.example>"
    assert box.sent_message_id(PLAN_ID) == "<exchange-made@northwind.example>"


def test_close_is_recorded_and_with_closes(box: MemoryMailbox) -> None:
    with box as same:
        assert same is box and not box.closed
    assert box.closed


# --- each failure mode -----------------------------------------------------------------------------


@pytest.mark.parametrize("transient", [True, False])
def test_a_failed_send_raises_as_told_and_sends_nothing(box: MemoryMailbox, transient: bool) -> None:
    box.fail_next("send", transient=transient)
    with pytest.raises(MailboxError) as caught:
        box.send(outgoing())
    assert caught.value.transient is transient
    assert box.sent == [] and not box.was_sent(PLAN_ID)
    box.send(outgoing())  # only the next one fails
    assert box.was_sent(PLAN_ID)


@pytest.mark.parametrize("transient", [True, False])
def test_a_failed_fetch_raises_when_iterated_and_hands_nothing_over(box: MemoryMailbox, transient: bool) -> None:
    key = box.deliver(REPLY_1)
    box.fail_next("fetch", transient=transient)
    batch = box.fetch()  # a generator, like the real backends': nothing happens until it is read
    with pytest.raises(MailboxError) as caught:
        next(batch)
    assert caught.value.transient is transient
    assert [f.key for f in box.fetch()] == [key]


def test_failures_queue_one_per_call_and_a_given_error_is_raised_as_it_is(box: MemoryMailbox) -> None:
    not_filed = NotFiledError("sent, but not filed in Sent")
    box.fail_next("send")
    box.fail_next("send", not_filed)
    with pytest.raises(MailboxError) as first:
        box.send(outgoing())
    with pytest.raises(NotFiledError) as second:
        box.send(outgoing())
    assert first.value.transient and second.value is not_filed
    box.send(outgoing())
    assert len(box.sent) == 1


@pytest.mark.parametrize("operation", ["ack", "save_draft", "was_sent", "remove_draft"])
def test_the_other_operations_can_fail_too_and_change_nothing(box: MemoryMailbox, operation: str) -> None:
    key = box.deliver(REPLY_1)
    if operation == "remove_draft":
        box.save_draft(outgoing())
    drafts = list(box.drafts)
    box.fail_next(operation, transient=False)  # type: ignore[arg-type]
    call: Callable[[], object] = {
        "ack": lambda: box.ack(key),
        "save_draft": lambda: box.save_draft(outgoing()),
        "was_sent": lambda: box.was_sent(PLAN_ID),
        "remove_draft": lambda: box.remove_draft(PLAN_ID),
    }[operation]
    with pytest.raises(MailboxError) as caught:
        call()
    assert not caught.value.transient
    assert box.filed == {} and box.drafts == drafts and box.sent == []
    call()  # the next call goes through


def test_a_failure_for_one_operation_leaves_the_others_alone(box: MemoryMailbox) -> None:
    box.fail_next("send")
    box.save_draft(outgoing())
    assert not box.was_sent(PLAN_ID)
    with pytest.raises(MailboxError):
        box.send(outgoing())


# --- one contract, two backends: the fake cannot drift from a real one ------------------------------


@dataclass
class Backend:
    """A mailbox under the contract, with the way a test puts mail in it."""

    box: MemoryMailbox | MaildirMailbox
    deliver: Callable[[bytes], str]


def _maildir(tmp_path: Path) -> Backend:
    box = MaildirMailbox(tmp_path / "mail")
    delivered = [0]

    def deliver(raw: bytes) -> str:
        # Maildir orders by the file's time; deliveries within one clock tick are common, so space them out.
        key = box.deliver(raw)
        delivered[0] += 1
        stamp = delivered[0] * 1_000_000_000
        os.utime(box.root / "new" / key, ns=(stamp, stamp))
        return key

    return Backend(box, deliver)


def _memory(tmp_path: Path) -> Backend:
    box = MemoryMailbox()
    return Backend(box, box.deliver)


@pytest.fixture(params=[_memory, _maildir], ids=["memory", "maildir"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return request.param(tmp_path)


def test_contract_fetch_hands_over_delivered_mail_oldest_first_until_acked(backend: Backend) -> None:
    box = backend.box
    first, second = backend.deliver(REPLY_1), backend.deliver(REPLY_2)
    assert [(f.key, f.raw) for f in box.fetch()] == [(first, REPLY_1), (second, REPLY_2)]
    assert [f.key for f in box.fetch()] == [first, second]  # not acked: offered again


def test_contract_ack_files_into_processed_held_or_leaves_it_in_the_inbox(backend: Backend) -> None:
    box = backend.box
    processed, held, left = (backend.deliver(raw) for raw in (REPLY_1, REPLY_2, REPLY_3))
    box.ack(processed, PROCESSED)
    box.ack(held, HELD)
    box.ack(left, None)
    box.ack(processed, PROCESSED)  # a replay after a crash
    box.ack(left, None)
    assert list(box.fetch()) == []
    assert box.messages(PROCESSED) == [REPLY_1]
    assert box.messages(HELD) == [REPLY_2]
    assert box.messages("Inbox") == [REPLY_3]
    with pytest.raises(MailboxError):
        box.ack("no-such-key")


def test_contract_send_then_was_sent(backend: Backend) -> None:
    box = backend.box
    assert not box.was_sent(PLAN_ID)
    box.send(outgoing())
    assert box.was_sent(PLAN_ID)
    assert box.was_sent(PLAN_ID.strip("<>"))
    assert not box.was_sent("<other@northwind.example>")
    assert ids(box.messages("Sent")) == [PLAN_ID]
    anonymous = outgoing(message_id=None)
    box.send(anonymous)
    assert anonymous["Message-ID"] and box.was_sent(str(anonymous["Message-ID"]))


def test_contract_save_draft_then_send_it(backend: Backend) -> None:
    box = backend.box
    box.save_draft(outgoing())
    box.save_draft(outgoing(body="A second rendering.\n"))  # a replay: the draft there is kept
    assert ids(box.messages("Drafts")) == [PLAN_ID]
    assert b"Version 1" in box.messages("Drafts")[0]
    assert not box.was_sent(PLAN_ID)
    box.send(outgoing(body="Sent from the plan.\n"))
    assert box.was_sent(PLAN_ID)
    assert box.messages("Drafts") == []
    [sent] = box.messages("Sent")
    assert b"Version 1" in sent  # the draft is what went


def test_contract_remove_draft_takes_out_only_that_draft_and_a_second_call_finds_none(backend: Backend) -> None:
    box = backend.box
    other = "<mp-9.v1.plan@northwind.example>"
    box.save_draft(outgoing())
    box.save_draft(outgoing(other, body="Another plan's draft.\n"))
    assert box.remove_draft(PLAN_ID.strip("<>")) is True  # found with or without brackets
    assert ids(box.messages("Drafts")) == [other]
    assert box.remove_draft(PLAN_ID) is False  # gone: nothing left to remove
    assert ids(box.messages("Drafts")) == [other]
    assert box.remove_draft("<never-drafted@northwind.example>") is False
    # A Message-ID that only starts like a draft's is another message.
    assert box.remove_draft("<mp-9.v1@northwind.example>") is False
    assert ids(box.messages("Drafts")) == [other]


def test_contract_remove_draft_leaves_sent_alone(backend: Backend) -> None:
    box = backend.box
    box.send(outgoing())
    assert box.remove_draft(PLAN_ID) is False  # sent, not a draft
    assert ids(box.messages("Sent")) == [PLAN_ID] and box.was_sent(PLAN_ID)
    box.save_draft(outgoing(body="A draft under the same Message-ID.\n"))
    assert box.remove_draft(PLAN_ID) is True
    assert box.messages("Drafts") == []
    assert ids(box.messages("Sent")) == [PLAN_ID] and box.was_sent(PLAN_ID)


def test_contract_remove_draft_removes_the_draft_the_seller_edited(backend: Backend) -> None:
    box = backend.box
    box.save_draft(outgoing())
    edited = outgoing(body="Edited by the seller.\n")
    if isinstance(box, MemoryMailbox):
        box.drafts[0] = edited
    else:
        [path] = box._drafts(PLAN_ID)
        path.write_bytes(bytes(edited))
    assert box.remove_draft(PLAN_ID) is True
    assert box.messages("Drafts") == []
    box.send(outgoing(body="Version 2 as rendered.\n"))  # the stale edit cannot go in its place
    assert b"Version 2 as rendered." in box.messages("Sent")[0]
