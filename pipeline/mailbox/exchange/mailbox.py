"""The Exchange mailbox: a seller's Exchange Server (or Exchange Online while EWS lasts) through exchangelib."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

from pipeline.errors import MailboxError
from pipeline.mailbox.base import PROCESSED, SENT_LOOKUP_DELAYS, Cursors, Fetched, look_a_while
from pipeline.mailbox.exchange.connection import ExchangeConnection, raise_first
from pipeline.mailbox.exchange.extensions import register_properties
from pipeline.mailbox.exchange.outgoing import ExchangeOutbox
from pipeline.mailbox.exchange.settings import ExchangeSettings

log = logging.getLogger(__name__)


class ExchangeMailbox:
    """A seller's Exchange mailbox over EWS: fetch new mail, file it, send and draft as the seller."""

    def __init__(self, settings: ExchangeSettings, cursors: Cursors, *, name: str = "exchange") -> None:
        settings.check()
        register_properties()
        self.name = name
        self.settings = settings
        self._cursors = cursors
        self._state_key = f"exchange:{settings.mailbox.lower()}:inbox"
        self._ews = ExchangeConnection(settings)
        self._outbox = ExchangeOutbox(self._ews)
        self.sent_lookup_delays = SENT_LOOKUP_DELAYS  # pauses between looks for a copy Sent Items files late

    # -- reading

    def fetch(self) -> Iterator[Fetched]:
        """New Inbox mail since the saved sync state; the state advances only once the whole batch is handed over.

        The batch is everything SyncFolderItems reports since the saved state. A crash or an error before the
        last message is taken leaves the state where it was, so the next poll replays the batch; the store
        deduplicates by Message-ID. Mail filed away in between is not replayed: the sync reports it as gone.
        """
        with self._ews.errors("read new mail from"):
            account = self._ews.begin()
            inbox = account.inbox
            state = self._cursors.cursor(self._state_key)
            skip_read = state is None and self.settings.first_sync == "unread"
            new: list[Any] = []
            # exchangelib falls back to the state it remembers on the cached folder; ours is the only truth.
            inbox.item_sync_state = state
            for change, item in inbox.sync_items(
                sync_state=state, only_fields=["message_id", "is_read"],
                max_changes_returned=self.settings.batch_size,
            ):
                if change != "create" or (skip_read and getattr(item, "is_read", False)):
                    continue
                new.append(item)
            new_state = inbox.item_sync_state
        size = self.settings.batch_size
        for start in range(0, len(new), size):
            chunk = new[start:start + size]
            with self._ews.errors("read new mail from"):
                full = list(self._ews.account.fetch(ids=chunk, only_fields=["mime_content", "message_id"]))
            for ref, item in zip(chunk, full, strict=True):
                if isinstance(item, Exception) or not item.mime_content:
                    # Deleted or filed by the seller between the sync and now: nothing left to read.
                    log.info("exchange: message %s vanished before it was read (%s)", ref.message_id, item)
                    continue
                yield Fetched(key=_make_key(ref.id, item.message_id or ref.message_id), raw=item.mime_content)
        if new_state and new_state != state:
            self._cursors.set_cursor(self._state_key, new_state)

    def ack(self, key: str, folder: str | None = PROCESSED) -> None:
        """Mark read, add the category, and move into the folder; found again by Message-ID if its id is stale.

        `folder=None` leaves the message untouched where it is (mail that is not ours to file); the sync
        state already keeps it from being handed over again.
        """
        if folder is None:
            return
        item_id, message_id = _split_key(key)
        with self._ews.errors("file a message in"):
            account = self._ews.begin()
            target = self._ews.folder(folder)
            item = self._locate(item_id, message_id, target)
            if item is None:
                log.warning("exchange: message %s is gone from the mailbox; nothing to file", message_id or item_id)
                return
            categories = list(item.categories or [])
            if self.settings.category not in categories:
                categories.append(self.settings.category)
            if not item.is_read or categories != list(item.categories or []):
                item.is_read = True
                item.categories = categories
                raise_first(account.bulk_update(items=[(item, ["is_read", "categories"])]))
            if _folder_id(item) != target.id:
                raise_first(account.bulk_move(ids=[item], to_folder=target))

    def _locate(self, item_id: str, message_id: str, target: Any) -> Any:
        from exchangelib.errors import ErrorInvalidIdMalformed, ErrorItemNotFound

        fields = ["message_id", "is_read", "categories", "parent_folder_id"]
        if item_id:
            found = list(self._ews.account.fetch(ids=[(item_id, None)], only_fields=fields))
            item = found[0] if found else None
            if not isinstance(item, Exception) and item is not None:
                return item
            if not isinstance(item, ErrorItemNotFound | ErrorInvalidIdMalformed):
                raise item if isinstance(item, Exception) else MailboxError("Exchange returned no item")
        if not message_id:
            return None
        # The id went stale (the item was moved, possibly by us before a crash): look it up by Message-ID.
        for where in (self._ews.account.inbox, target):
            matches = list(where.filter(message_id=message_id).only(*fields)[:1])
            if matches:
                return matches[0]
        return None

    # -- sending

    def send(self, message: EmailMessage) -> None:
        """Send as the seller with a copy in Sent Items; a reply goes out as an Outlook reply in its conversation.

        A complete draft of this message in Drafts (left for review, or built by a send cut short) is the one
        sent, the seller's edits included: no second copy is built beside it.
        """
        self._outbox.send(message)

    def save_draft(self, message: EmailMessage) -> None:
        """Leave the message in Drafts (a reply as a reply draft in its conversation) for the seller to send."""
        self._outbox.save_draft(message)

    def remove_draft(self, message_id: str) -> bool:
        """Move the draft with this Message-ID from Drafts to Deleted Items (DeleteItem, MoveToDeletedItems);
        False when none is there. Sent Items is not looked at."""
        return self._outbox.remove_draft(message_id)

    def was_sent(self, message_id: str) -> bool:
        """Whether Sent Items (or the Outbox, on its way there) holds the message we sent with this Message-ID."""
        from exchangelib import Q

        with self._ews.errors("look in Sent Items of"):
            account = self._ews.begin()
            query = Q(message_id=message_id) | Q(mutualplan_message_id=message_id)
            # The Outbox too: a message just sent sits there until transport files it in Sent Items.
            return any(folder.filter(query).only("message_id").exists() for folder in (account.sent, account.outbox))

    def sent_message_id(self, message_id: str, *, wait: bool = True) -> str | None:
        """The Message-ID the recipients got for what we sent as `message_id` (Exchange names replies itself).

        Not part of the Mailbox protocol: the watcher records it as the outbox entry's alias (`sent_as`), so the
        client's answer to a reply is matched by its In-Reply-To, not only by the References chain. Like
        was_sent it looks in the Outbox too, where a message waits until transport files it in Sent Items.
        Transport files the copy a moment after SendItem returns, so it looks a few times over a few seconds
        (`sent_lookup_delays`) before answering None; a later call (the next poll's, `wait=False`) looks again.
        """
        from exchangelib import Q

        def find() -> str | None:
            account = self._ews.begin()
            query = Q(message_id=message_id) | Q(mutualplan_message_id=message_id)
            for folder in (account.sent, account.outbox):
                found = list(folder.filter(query).only("message_id")[:1])
                if found and found[0].message_id:
                    return str(found[0].message_id)
            return None

        with self._ews.errors("look in Sent Items of"):
            return look_a_while(find, self.sent_lookup_delays if wait else ())


# --- small pure helpers ------------------------------------------------------------------------------------


def _make_key(item_id: str, message_id: str | None) -> str:
    # EWS item ids are base64 (never "|"); the Message-ID after it finds the mail again once the id is stale.
    return f"{item_id}|{message_id or ''}"


def _split_key(key: str) -> tuple[str, str]:
    item_id, _, message_id = key.partition("|")
    return item_id, message_id


def _folder_id(item: Any) -> str | None:
    parent = getattr(item, "parent_folder_id", None)
    return getattr(parent, "id", None)
