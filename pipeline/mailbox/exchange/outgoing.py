"""Sending and drafting through EWS: our MIME as it is for a new thread, an Outlook reply inside a conversation."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from pipeline.mailbox.base import HELD, PROCESSED, with_brackets
from pipeline.mailbox.exchange.connection import ExchangeConnection, raise_first
from pipeline.mailbox.exchange.extensions import STAMPED_HEADERS, header_field

log = logging.getLogger(__name__)


class ExchangeOutbox:
    """What the Exchange mailbox sends and drafts: a draft already waiting goes as it is, else one is built."""

    def __init__(self, ews: ExchangeConnection) -> None:
        self._ews = ews

    def send(self, message: EmailMessage) -> None:
        """Send as the seller with a copy in Sent Items; a reply goes out as an Outlook reply in its conversation.

        A complete draft of this message in Drafts (left for review, or built by a send cut short) is the one
        sent, the seller's edits included: no second copy is built beside it.
        """
        with self._ews.errors("send through"):
            account = self._ews.begin()
            draft = self._draft(message)
            if draft is not None:
                raise_first(account.bulk_send(ids=[(draft.id, draft.changekey)], save_copy=True,
                                              copy_to_folder=account.sent))
                return
            original = self._original(message)
            if original is None:
                self._create_from_mime(message, send=True)
            else:
                self._reply(original, message, send=True)

    def save_draft(self, message: EmailMessage) -> None:
        """Leave the message in Drafts (a reply as a reply draft in its conversation) for the seller to send."""
        with self._ews.errors("save a draft in"):
            self._ews.begin()
            if self._draft(message) is not None:
                return  # already there and complete: a replay after a crash
            original = self._original(message)
            if original is None:
                self._create_from_mime(message, send=False)
            else:
                self._reply(original, message, send=False)

    def remove_draft(self, message_id: str) -> bool:
        """Move the drafts in Drafts with this Message-ID to Deleted Items; False when none is there.

        Found as was_sent() finds sent mail, by InternetMessageId or our MutualPlanMessageId property (a reply
        draft carries Exchange's own Message-ID), in Drafts alone and only items Exchange calls drafts.
        """
        from exchangelib import Q
        from exchangelib.errors import ErrorItemNotFound
        from exchangelib.items import MOVE_TO_DELETED_ITEMS

        wanted = with_brackets(message_id)
        with self._ews.errors("remove a draft from"):
            account = self._ews.begin()
            query = Q(message_id=wanted) | Q(mutualplan_message_id=wanted)
            drafts = [item for item in account.drafts.filter(query).only("is_draft") if item.is_draft]
            if not drafts:
                return False
            # By id alone: a draft the seller edited a moment ago is superseded all the same.
            results = list(account.bulk_delete(ids=[(i.id, None) for i in drafts], delete_type=MOVE_TO_DELETED_ITEMS))
            # ErrorItemNotFound: sent or deleted by the seller since we looked, so not there to remove.
            raise_first([r for r in results if not isinstance(r, ErrorItemNotFound)])
            return any(not isinstance(r, ErrorItemNotFound) for r in results)

    def _draft(self, message: EmailMessage) -> Any:
        """The complete draft of `message` in Drafts, found by our Message-ID; incomplete ones are deleted.

        A reply is built in steps (create, stamp, attach, send), so a send cut short can leave a draft without
        its letter; that one is deleted and built again. Complete means every file of the message is attached
        (the seller may have added more).
        """
        ours = _message_id(message)
        if not ours:
            return None
        account = self._ews.account
        wanted = {part.get_filename() or "attachment" for part in message.iter_attachments()}
        complete, other = None, []
        for item in account.drafts.filter(mutualplan_message_id=ours).only("attachments"):
            if complete is None and wanted <= {a.name for a in item.attachments or ()}:
                complete = item
            else:
                other.append(item)
        if other:
            log.warning("exchange: deleting %d incomplete draft(s) of %s left by an interrupted send", len(other), ours)
            raise_first(account.bulk_delete(ids=[(i.id, i.changekey) for i in other]))
        return complete

    def _create_from_mime(self, message: EmailMessage, *, send: bool) -> None:
        from exchangelib import Message
        from exchangelib.items import SAVE_ONLY, SEND_AND_SAVE_COPY

        account = self._ews.account
        item = Message(
            account=account,
            mime_content=_mime_bytes(message),
            mutualplan_message_id=_message_id(message),
        )
        # The MIME carries our Message-ID and X- headers; Exchange keeps both when it converts it.
        folder = account.sent if send else account.drafts
        raise_first(account.bulk_create(
            folder=folder, items=[item], message_disposition=SEND_AND_SAVE_COPY if send else SAVE_ONLY,
        ))

    def _reply(self, original: Any, message: EmailMessage, *, send: bool) -> None:
        from exchangelib import FileAttachment, HTMLBody, Mailbox, Message
        from exchangelib.items import ReplyToItem
        from exchangelib.properties import ReferenceItemId

        account = self._ews.account
        html, text = _bodies(message)
        reply = ReplyToItem(
            account=account,
            reference_item_id=ReferenceItemId(id=original.id, changekey=original.changekey),
            subject=str(message.get("Subject", "")),
            new_body=HTMLBody(html) if html is not None else (text or ""),
            to_recipients=[Mailbox(email_address=a) for _, a in getaddresses(message.get_all("To", []))] or None,
            cc_recipients=[Mailbox(email_address=a) for _, a in getaddresses(message.get_all("Cc", []))] or None,
        )
        # Exchange builds the reply from the original: In-Reply-To, References, ConversationIndex and topic, so
        # Outlook shows it in the thread. It gives the reply its own Message-ID; ours goes on a named property.
        created = reply.save(account.drafts)
        draft = Message(account=account, folder=account.drafts, id=created.id, changekey=created.changekey)
        draft.mutualplan_message_id = _message_id(message)
        fields = ["mutualplan_message_id"]
        for name in STAMPED_HEADERS:
            if message.get(name) is not None:
                setattr(draft, header_field(name), str(message[name]))
                fields.append(header_field(name))
        raise_first(account.bulk_update(items=[(draft, fields)]))
        draft.changekey = None  # the update changed it; attachments and send accept the id alone
        for part in message.iter_attachments():
            content = part.get_payload(decode=True) or b""
            attachment = FileAttachment(
                name=part.get_filename() or "attachment", content=content, content_type=part.get_content_type(),
            )
            draft.attach(attachment)
        if send:
            raise_first(account.bulk_send(ids=[(draft.id, None)], save_copy=True, copy_to_folder=account.sent))

    def _original(self, message: EmailMessage) -> Any:
        """The item a reply answers, found by its Message-ID where our mail lives; None for a new thread."""
        from exchangelib import FolderCollection

        wanted = str(message.get("In-Reply-To", "")).strip()
        if not wanted:
            return None
        account = self._ews.account
        folders = [account.inbox, self._ews.folder(PROCESSED), self._ews.folder(HELD), account.sent]
        matches = list(
            FolderCollection(account=account, folders=folders)
            .filter(message_id=wanted).only("message_id", "subject")[:1]
        )
        if not matches:
            # Without the original there is no Outlook conversation to join; the MIME's In-Reply-To and
            # References still thread it for the client.
            log.warning("exchange: original %s not found; sending as a new message", wanted)
            return None
        return matches[0]


def _message_id(message: EmailMessage) -> str | None:
    value = message.get("Message-ID")
    return str(value).strip() if value else None


def _mime_bytes(message: EmailMessage) -> bytes:
    from email.policy import SMTP

    return message.as_bytes(policy=SMTP)


def _bodies(message: EmailMessage) -> tuple[str | None, str | None]:
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    return (html.get_content() if html is not None else None, text.get_content() if text is not None else None)
