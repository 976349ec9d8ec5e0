"""The IMAP mailbox: imap-tools reads and files mail, smtplib sends it, and a copy goes to Sent by APPEND."""

from __future__ import annotations

import imaplib
import logging
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses, parseaddr

from pipeline.errors import MailboxError
from pipeline.mailbox.base import PROCESSED, Cursors, Fetched, NotFiledError, with_brackets
from pipeline.mailbox.imap.connection import ImapConnection
from pipeline.mailbox.imap.inbox import ImapInbox
from pipeline.mailbox.imap.lookup import SentLookup, find_drafts, remove_drafts
from pipeline.mailbox.imap.settings import ImapSettings
from pipeline.mailbox.imap.smtp import ensure_message_id, smtp_send, to_bytes, without_bcc

log = logging.getLogger(__name__)


class ImapMailbox:
    """A seller's mailbox over IMAP and SMTP; one IMAP connection, opened on first use and kept."""

    def __init__(self, settings: ImapSettings, cursors: Cursors, *, name: str = "imap") -> None:
        settings.check()
        self.name = name
        self.settings = settings
        self._state_key = f"imap:{settings.username.lower()}@{settings.host}:{settings.folder}"
        self._imap = ImapConnection(settings)
        self._inbox = ImapInbox(self._imap, cursors, self._state_key)
        self._sent = SentLookup(self._imap)

    def close(self) -> None:
        """Log out (quietly: the connection may be gone already)."""
        self._imap.close()

    def __enter__(self) -> ImapMailbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _capabilities(self) -> set[str]:
        # What the server announced after login (MOVE, UIDPLUS...): tests take one away to try the fallback.
        return self._imap.capabilities

    def _client(self) -> imaplib.IMAP4:
        return self._imap.client()

    # --- reading -------------------------------------------------------------------------------------

    def fetch(self) -> Iterator[Fetched]:
        """Messages with a UID above the last one handed over, oldest first; the place advances at the end.

        A crash or an error before the last message is taken leaves the place where it was, so the next poll
        offers again what was not acknowledged (acknowledged mail has left the folder).
        """
        return self._inbox.fetch()

    def ack(self, key: str, folder: str | None = PROCESSED) -> None:
        """Mark the message seen and move it to `folder` (created if missing); a message already gone is fine.

        `folder=None` touches nothing: the message stays as the seller left it (unread if it was), and the
        place kept in the Cursors is what keeps it from being fetched again.
        """
        self._inbox.ack(key, folder)

    def was_sent(self, message_id: str) -> bool:
        """Whether Sent holds a message with this Message-ID (IMAP SEARCH HEADER, done by the server)."""
        wanted = with_brackets(message_id)
        return self._imap.call("look in Sent of", lambda: self._sent.search(wanted))

    # --- writing -------------------------------------------------------------------------------------

    def remove_draft(self, message_id: str) -> bool:
        """Delete the draft with this exact Message-ID from Drafts (\\Deleted and UID EXPUNGE of just it); False
        when there is none. Sent is not looked at."""
        wanted = with_brackets(message_id)
        return self._imap.call("remove a draft from", lambda: remove_drafts(self._imap, wanted))

    def send(self, message: EmailMessage) -> None:
        """Send by SMTP, then APPEND the same bytes to Sent (Bcc kept only in the Sent copy).

        A draft with the same Message-ID is what goes, the seller's edits included, as their mail client would
        send it; and it leaves Drafts, so that it cannot go a second time from there.
        """
        ensure_message_id(message, self._sender(message))
        wanted = with_brackets(str(message["Message-ID"]))
        try:
            drafts, uids, draft = self._imap.call("look in Drafts of", lambda: find_drafts(self._imap, wanted))
        except MailboxError as exc:
            # Not a reason to hold the mail back: SMTP may be up while IMAP is not (the message as rendered goes).
            log.warning("imap: cannot look in Drafts before sending %s: %s", message["Message-ID"], exc)
            drafts, uids, draft = "", [], None
        if draft is not None:
            message = message_from_bytes(draft, policy=SMTP)
        full = to_bytes(message)
        recipients = [addr for _, addr in getaddresses(message.get_all("To", []) + message.get_all("Cc", [])
                                                      + message.get_all("Bcc", [])) if addr]
        if not recipients:
            raise MailboxError("the message has no recipients (To, Cc or Bcc)")
        on_the_wire = without_bcc(message) if message.get_all("Bcc") else full
        refused = smtp_send(self.settings, self._sender(message), recipients, on_the_wire)
        if self.settings.append_sent:
            self._file_sent(full, message)
        if refused:
            raise MailboxError(
                f"sent, but {self.settings.smtp_server[0]} refused "
                + ", ".join(f"{addr} ({code} {text.decode(errors='replace')})"
                            for addr, (code, text) in refused.items()),
                hint="Check those addresses; the others got the message, so do not send it again.",
            )
        if uids:
            try:
                self._imap.call("take the sent draft out of", lambda: self._imap.delete(drafts, uids))
            except MailboxError as exc:
                # Sent and filed: a draft left behind is the seller's to delete, not a reason to send again.
                log.warning("imap: %s was sent, but its draft is still in %s: %s", message["Message-ID"], drafts, exc)

    def save_draft(self, message: EmailMessage) -> None:
        """APPEND the message to Drafts with the \\Draft flag; a draft with its Message-ID already there is kept as
        is (saved before a crash, or edited by the seller since)."""
        ensure_message_id(message, self._sender(message))
        wanted = with_brackets(str(message["Message-ID"]))
        if self._imap.call("look in Drafts of", lambda: find_drafts(self._imap, wanted))[1]:
            return
        with self._imap.errors("save a draft in"):
            drafts = self._imap.special_folder("drafts")
            self._imap.ensure_folder(drafts)
            self._imap.append(drafts, to_bytes(message), (r"\Draft", r"\Seen"))

    # --- inside --------------------------------------------------------------------------------------

    def _file_sent(self, raw: bytes, message: EmailMessage) -> None:
        """APPEND to Sent after a send; one reconnect and retry, else NotFiledError (the mail did go out)."""
        for attempt in (1, 2):
            try:
                with self._imap.errors("file the sent message in"):
                    sent = self._imap.special_folder("sent")
                    self._imap.ensure_folder(sent)
                    self._imap.append(sent, raw, (r"\Seen",))
                return
            except MailboxError as exc:
                if attempt == 2 or not exc.transient:
                    raise NotFiledError(
                        f"{message['Message-ID']} was sent, but its copy could not be put in Sent: {exc.message}",
                        hint="Do not send it again; file a copy in Sent by hand if the record matters.",
                    ) from exc

    def _sender(self, message: EmailMessage) -> str:
        if self.settings.address:
            return self.settings.address
        if "@" in self.settings.username:
            return self.settings.username
        return parseaddr(str(message.get("From", "")))[1]
