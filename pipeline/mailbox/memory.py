"""An in-memory mailbox for tests and the demo: deliver mail in, then look at what was sent, drafted and filed."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal

from pipeline.errors import MailboxError
from pipeline.mailbox.base import PROCESSED, Fetched, look_a_while, with_brackets

Operation = Literal["fetch", "ack", "send", "save_draft", "was_sent", "remove_draft"]
INBOX = "Inbox"
SENT = "Sent"
DRAFTS = "Drafts"


class MemoryMailbox:
    """The Mailbox protocol over a few lists and dicts, which a test reads, and can be told to fail.

    It behaves as the Maildir backend does: fetch offers each delivered message until it is acknowledged,
    oldest first; acknowledging again into the same folder changes nothing; a draft with the Message-ID of a
    message being sent is what goes (the seller's edits included) and it leaves Drafts; save_draft keeps a
    draft already there; remove_draft takes a draft out of Drafts, never what was sent. What a test reads:

    - `delivered`: every message delivered, by key, in delivery order;
    - `filed`: each acknowledged key and the folder it went to (None: left in the Inbox, only seen);
    - `sent`: what was sent, in order; `drafts`: what waits in Drafts;
    - `sent_as`: set an entry to play a server that sends a message under a Message-ID of its own;
    - `sent_late`: by Message-ID, how many looks for its Sent copy miss it, as when Exchange files it a moment
      after the send; `sent_looks` counts the looks;
    - `closed`: whether close() was called.
    """

    name = "memory"

    def __init__(self) -> None:
        self.delivered: dict[str, bytes] = {}
        self.filed: dict[str, str | None] = {}
        self.sent: list[EmailMessage] = []
        self.drafts: list[EmailMessage] = []
        self.sent_as: dict[str, str] = {}
        self.sent_late: dict[str, int] = {}
        self.sent_looks = 0
        # As many looks as a real backend makes, without its pauses.
        self.sent_lookup_delays: tuple[float, ...] = (0.0, 0.0, 0.0)
        self.closed = False
        self._failures: dict[Operation, list[MailboxError]] = {}

    # --- what a test does ----------------------------------------------------------------------------

    def deliver(self, raw: bytes) -> str:
        """Put a message in the Inbox as a mail server would; returns the key fetch() will give it."""
        key = f"memory-{len(self.delivered) + 1}"
        self.delivered[key] = raw
        return key

    def fail_next(self, operation: Operation, error: MailboxError | None = None, *, transient: bool = True) -> None:
        """Make the next call of `operation` raise `error` (by default a MailboxError) before it changes anything.

        Each call queues one failure, so calling it twice fails the next two calls. fetch() raises when it is
        iterated, as the real backends' generators do.
        """
        failure = error or MailboxError(f"the memory mailbox was told to fail {operation}", transient=transient)
        self._failures.setdefault(operation, []).append(failure)

    def messages(self, folder: str) -> list[bytes]:
        """Every message in a folder ("Inbox", "Sent", "Drafts" or where ack() filed some), oldest first."""
        if folder.lower() == INBOX.lower():
            return [raw for key, raw in self.delivered.items() if self.filed.get(key) is None]
        if folder == SENT:
            return [bytes(message) for message in self.sent]
        if folder == DRAFTS:
            return [bytes(message) for message in self.drafts]
        return [raw for key, raw in self.delivered.items() if key in self.filed and self.filed[key] == folder]

    # --- the Mailbox protocol ------------------------------------------------------------------------

    def fetch(self) -> Iterator[Fetched]:
        """Delivered messages not yet acknowledged, oldest first."""
        self._fail_if_told("fetch")
        for key, raw in list(self.delivered.items()):
            if key not in self.filed:
                yield Fetched(key=key, raw=raw)

    def ack(self, key: str, folder: str | None = PROCESSED) -> None:
        """Record `key` as filed in `folder` (None: left in the Inbox); again into the same folder is a no-op."""
        self._fail_if_told("ack")
        if key not in self.delivered:
            raise MailboxError(f"no message {key!r} in the Inbox of the memory mailbox")
        if key in self.filed:
            before = self.filed[key]
            if before == folder:
                return  # acknowledged before: a replay after a crash
            if before is not None:
                # As in a Maildir: once filed away, the message is no longer in the Inbox to be filed elsewhere.
                raise MailboxError(f"message {key!r} was filed in {before} already, not in the Inbox")
        self.filed[key] = folder

    def send(self, message: EmailMessage) -> None:
        """Record the message as sent (with a Message-ID added if it has none); a draft of it goes instead."""
        self._fail_if_told("send")
        wanted = with_brackets(_ensure_message_id(message))
        waiting = [draft for draft in self.drafts if _message_id(draft) == wanted]
        if waiting:
            message = waiting[-1]
            self.drafts = [draft for draft in self.drafts if _message_id(draft) != wanted]
        self.sent.append(message)

    def save_draft(self, message: EmailMessage) -> None:
        """Put the message in Drafts, unless a draft with its Message-ID is there already (kept as it is)."""
        self._fail_if_told("save_draft")
        wanted = with_brackets(_ensure_message_id(message))
        if not any(_message_id(draft) == wanted for draft in self.drafts):
            self.drafts.append(message)

    def was_sent(self, message_id: str) -> bool:
        """Whether a message with this Message-ID was sent."""
        self._fail_if_told("was_sent")
        wanted = with_brackets(message_id)
        return any(_message_id(message) == wanted for message in self.sent)

    def remove_draft(self, message_id: str) -> bool:
        """Take the drafts with this Message-ID out of Drafts; False when there is none (Sent is not looked at)."""
        self._fail_if_told("remove_draft")
        wanted = with_brackets(message_id)
        kept = [draft for draft in self.drafts if _message_id(draft) != wanted]
        removed = len(kept) < len(self.drafts)
        self.drafts = kept
        return removed

    def sent_message_id(self, message_id: str, *, wait: bool = True) -> str | None:
        """The Message-ID the recipients got: as `sent_as` maps ours, else ours; None when nothing was sent (or
        its copy is still late); `wait=False` looks once."""

        def find() -> str | None:
            self.sent_looks += 1
            wanted = with_brackets(message_id)
            if self.sent_late.get(wanted, 0) > 0:
                self.sent_late[wanted] -= 1
                return None
            if not self.was_sent(message_id):
                return None
            return self.sent_as.get(wanted, wanted)

        return look_a_while(find, self.sent_lookup_delays if wait else ())

    def close(self) -> None:
        """Nothing to let go of; recorded so a test can check the caller closed it."""
        self.closed = True

    def __enter__(self) -> MemoryMailbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail_if_told(self, operation: Operation) -> None:
        queued = self._failures.get(operation)
        if queued:
            raise queued.pop(0)


def _message_id(message: EmailMessage) -> str:
    value = message.get("Message-ID")
    return with_brackets(str(value)) if value else ""


def _ensure_message_id(message: EmailMessage) -> str:
    if not message.get("Message-ID"):
        message["Message-ID"] = make_msgid(domain="memory.invalid")
    return str(message["Message-ID"])
