"""The Microsoft Graph mailbox for Exchange Online: inbox delta in, sendMail and in-thread replies out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email.message import EmailMessage

from pipeline.mailbox.base import PROCESSED, SENT_LOOKUP_DELAYS, Cursors, Fetched, look_a_while
from pipeline.mailbox.graph.api import GraphApi
from pipeline.mailbox.graph.folders import GraphFolders
from pipeline.mailbox.graph.inbox import GraphInbox
from pipeline.mailbox.graph.lookup import ours
from pipeline.mailbox.graph.outgoing import GraphOutbox
from pipeline.mailbox.graph.settings import GraphSettings


class GraphMailbox:
    """A seller's Exchange Online mailbox through Microsoft Graph; every failure is a MailboxError."""

    def __init__(self, settings: GraphSettings, cursors: Cursors, *, token: Callable[[], str] | None = None) -> None:
        self.settings = settings
        self.cursors = cursors
        self._api = GraphApi(settings, token)
        self.name = self._api.name
        self._inbox = GraphInbox(self._api, cursors)
        self._folders = GraphFolders(self._api)
        self._outbox = GraphOutbox(self._api)
        self.sent_lookup_delays = SENT_LOOKUP_DELAYS  # pauses between looks for a copy Sent Items files late

    def close(self) -> None:
        """Close the HTTP connections."""
        self._api.http.close()

    def __enter__(self) -> GraphMailbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Reading --------------------------------------------------------------------------------------

    def fetch(self) -> Iterator[Fetched]:
        """New inbox messages since the last completed round, oldest first, as raw MIME.

        The deltaLink is saved only once the whole round has been handed over, so a crash replays
        the round; a 410 Gone starts a full resync (the caller deduplicates by Message-ID).
        """
        return self._inbox.fetch()

    # Filing ---------------------------------------------------------------------------------------

    def ack(self, key: str, folder: str | None = PROCESSED) -> None:
        """Mark read, add the category, move to the folder (Processed and Held map to the settings).

        `folder=None` is mail about no plan: it stays as the seller left it, unread and uncategorized.
        The delta asks only for created messages, so it does not come back when the seller reads it.
        """
        self._folders.ack(key, folder)

    # Sending --------------------------------------------------------------------------------------

    def send(self, message: EmailMessage) -> None:
        """Send as the seller, a copy in Sent Items; a reply goes into the Outlook conversation it answers."""
        self._outbox.deliver(message, draft=False)

    def save_draft(self, message: EmailMessage) -> None:
        """Leave the message (or the in-thread reply) in the seller's Drafts to review and send."""
        self._outbox.deliver(message, draft=True)

    def remove_draft(self, message_id: str) -> bool:
        """Delete the draft with this Message-ID from Drafts (found by internetMessageId, then by our property);
        False when none is there. Sent Items is not looked at."""
        return self._outbox.remove_draft(message_id)

    def was_sent(self, message_id: str) -> bool:
        """Whether Sent Items holds what we sent as `message_id` (sending takes a moment to land there)."""
        return bool(ours(self._api, "sentitems", message_id))

    def sent_message_id(self, message_id: str, *, wait: bool = True) -> str | None:
        """The Message-ID recipients got for what we sent as `message_id`: ours, unless Exchange renamed it.

        Not part of the Mailbox protocol: the watcher keeps it as an alias when it differs from ours. sendMail and
        send answer 202 before transport files the copy in Sent Items, so it looks a few times over a few
        seconds (`sent_lookup_delays`) before answering None; a later call (the next poll's, `wait=False`) looks again.
        """

        def find() -> str | None:
            for item in ours(self._api, "sentitems", message_id):
                if item.get("internetMessageId"):
                    return str(item["internetMessageId"])
            return None

        return look_a_while(find, self.sent_lookup_delays if wait else ())

    @property
    def max_in_flight(self) -> int:
        """The most requests this mailbox had in flight at once in this process."""
        return self._api.http.gate.max_in_flight
