"""Sending and drafting through Graph: our MIME as it is, an in-thread reply, or JSON with uploads when too large."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from pipeline.errors import MailboxError
from pipeline.mailbox.graph.api import GraphApi
from pipeline.mailbox.graph.http import GraphError
from pipeline.mailbox.graph.lookup import find_message, ours
from pipeline.mailbox.graph.payload import (
    Attachment,
    attachments,
    body,
    custom_headers,
    extended_properties,
    message_id,
    message_json,
    recipients,
)

log = logging.getLogger(__name__)

# Graph takes at most 4 MB in one request, base64 and JSON included (learn.microsoft.com/graph/outlook-large-
# attachments); read as 4,000,000 bytes so a request fits however "MB" is counted. A file whose add-attachment
# request would pass it goes through an upload session: a file of 3.0 MB is already 4.0 MB in base64.
MAX_REQUEST = 4_000_000
# Upload ranges below 4 MB each, in multiples of 320 KiB as Microsoft's upload sessions prefer.
UPLOAD_CHUNK = 8 * 320 * 1024


class GraphOutbox:
    """What the Graph mailbox sends and drafts: a complete draft already waiting goes as it is, else one is built."""

    def __init__(self, api: GraphApi) -> None:
        self._api = api
        self._http = api.http
        self.name = api.name
        self.settings = api.settings

    def deliver(self, message: EmailMessage, *, draft: bool) -> None:
        """Send the message (or leave it in Drafts when `draft`), in its thread when the original is found."""
        mid = message_id(message)
        waiting = self._waiting_draft(mid, attachments(message)) if mid else None
        if waiting:
            # Drafted before (review, or a retry): send that draft, as the seller would, rather than a
            # second copy; saving it again changes nothing.
            if not draft:
                self._api.post(f"/messages/{quote(waiting, safe='')}/send", "send the draft waiting in Drafts")
            return
        answered = str(message.get("In-Reply-To", "")).split()
        if answered:
            original = find_message(self._api, answered[0])
            if original:
                reply = self._reply_draft(original, message)
                if not draft:
                    self._send_built(reply)
                return
            log.warning(
                "%s: the message %s answers is not in the mailbox; it goes out on its own, threaded by its headers",
                self.name,
                answered[0],
            )
        if not self._mime(message, draft=draft):
            self._large(message, draft=draft)

    def remove_draft(self, internet_message_id: str) -> bool:
        """Delete the drafts in Drafts with this Message-ID (or our property); False when none is there."""
        removed = False
        for item in ours(self._api, "drafts", internet_message_id):
            if item.get("isDraft") is False:
                continue  # mail the seller filed in Drafts, not a draft waiting to be sent
            try:
                self._http.request(
                    "DELETE", self._api.url(f"/messages/{quote(str(item['id']), safe='')}"), what="delete a draft"
                )
            except GraphError as exc:
                if exc.status != 404:
                    raise
                continue  # sent or deleted by the seller since we looked
            removed = True
        return removed

    def _mime(self, message: EmailMessage, *, draft: bool) -> bool:
        """sendMail (or a draft) from our MIME, every part and header as rendered; False when over 4 MB.

        Graph documents that it parses MIME into the message's properties (our Message-ID becomes its
        internetMessageId) and that transport sends it on more or less intact: the plain-text part the
        prospect quotes, In-Reply-To, References and Auto-Submitted included, with no 5-header limit.
        """
        encoded = base64.b64encode(message.as_bytes(policy=policy.SMTP))
        if len(encoded) >= MAX_REQUEST:
            return False
        target, what = ("/messages", "create a draft") if draft else ("/sendMail", "send the message")
        self._api.post(target, what, content=encoded, headers={"Content-Type": "text/plain"})
        return True

    def _large(self, message: EmailMessage, *, draft: bool) -> None:
        """A message too large for one request: a JSON draft, its files one by one, then send."""
        if message.get("In-Reply-To"):
            log.warning("%s: over 4 MB, so it goes as JSON without its In-Reply-To and References", self.name)
        # internetMessageId is given at creation, while the message is a draft, as Graph documents.
        created = self._api.post("/messages", "create a draft", json=message_json(message))
        draft_id = str(created.json()["id"])
        with self._discarded_on_failure(draft_id):
            self._attach(draft_id, attachments(message))
        if not draft:
            self._send_built(draft_id)

    def _reply_draft(self, original: str, message: EmailMessage) -> str:
        """createReply on the original, our body, recipients, headers, Message-ID and files: the draft's id."""
        reply: dict[str, Any] = {"subject": str(message.get("Subject", "")), "body": body(message)}
        for field, header in (("toRecipients", "To"), ("ccRecipients", "Cc"), ("bccRecipients", "Bcc")):
            found = recipients(message.get(header))
            if found:
                reply[field] = found
        headers = custom_headers(message)
        if headers:
            # Custom headers can only be given when a message is created, and createReply creates it.
            reply["internetMessageHeaders"] = headers
        created = self._api.post(
            f"/messages/{quote(original, safe='')}/createReply", "create the reply", json={"message": reply}
        )
        draft_id = str(created.json()["id"])
        with self._discarded_on_failure(draft_id):
            self._stamp_reply(draft_id, message)
            self._attach(draft_id, attachments(message))
        return draft_id

    def _stamp_reply(self, draft_id: str, message: EmailMessage) -> None:
        """Our named property, Auto-Submitted and Message-ID on a createReply draft."""
        draft_url = self._api.url(f"/messages/{quote(draft_id, safe='')}")
        props = extended_properties(message)
        if props:
            self._http.request(
                "PATCH", draft_url, what="stamp the reply", json={"singleValueExtendedProperties": props}
            )
        mid = message_id(message)
        if mid:
            # internetMessageId is documented writable while the message is a draft. Should Exchange refuse
            # it on a reply it built, the reply goes out under Exchange's Message-ID and is still found by
            # the MutualPlanMessageId property stamped above (see sent_message_id).
            try:
                self._http.request(
                    "PATCH", draft_url, what="give the reply our Message-ID", json={"internetMessageId": mid}
                )
            except GraphError as exc:
                if exc.status != 400:
                    raise
                log.warning("%s: Exchange kept its own Message-ID for the reply %s: %s", self.name, mid, exc.message)

    def _attach(self, draft_id: str, files: list[Attachment]) -> None:
        """Each file in one request when that request fits in 4 MB, else through an upload session."""
        for file in files:
            # Decided on the request as sent (base64 in JSON is about 4/3 of the file), not on the file.
            request = json.dumps(file.to_json()).encode()
            if len(request) <= MAX_REQUEST:
                self._api.post(
                    f"/messages/{quote(draft_id, safe='')}/attachments", f"attach {file.name}", content=request,
                    headers={"Content-Type": "application/json"},
                )
            else:
                self._upload(draft_id, file)

    @contextmanager
    def _discarded_on_failure(self, draft_id: str) -> Iterator[None]:
        """Delete the draft being built when building it fails, so no half-made draft stays in Drafts."""
        try:
            yield
        except Exception:
            self._discard(draft_id)
            raise

    def _send_built(self, draft_id: str) -> None:
        """Send a draft we built; one Graph refuses is deleted rather than left half-done in Drafts.

        A send whose answer was lost, or that was throttled, may still go out (the id then names the Sent
        Items copy), so that draft is left for the retry, which finds it by Message-ID, sent or waiting.
        """
        try:
            self._api.post(f"/messages/{quote(draft_id, safe='')}/send", "send the message")
        except GraphError as exc:
            if 400 <= exc.status < 500 and not exc.transient:
                self._discard(draft_id)
            raise

    def _discard(self, draft_id: str) -> None:
        try:
            self._http.request("DELETE", self._api.url(f"/messages/{quote(draft_id, safe='')}"),
                               what="delete a draft whose send failed")
        except MailboxError as exc:  # the failure that brought us here is the one to report
            log.warning("%s: could not delete the unsent draft %s: %s", self.name, draft_id, exc)

    def _upload(self, draft_id: str, file: Attachment) -> None:
        """A large attachment through an upload session, in ranges under 4 MB, resuming where Graph says."""
        session = self._api.post(
            f"/messages/{quote(draft_id, safe='')}/attachments/createUploadSession",
            f"start uploading {file.name}",
            json={"AttachmentItem": file.upload_item()},
        ).json()
        upload_url = session["uploadUrl"]
        size = len(file.data)
        start = _next_start(session, 0)
        while start < size:
            end = min(start + UPLOAD_CHUNK, size) - 1
            # The upload URL carries its own authorization; Graph says to send no Authorization header.
            answer = self._http.request(
                "PUT",
                upload_url,
                what=f"upload {file.name}",
                content=file.data[start : end + 1],
                headers={"Content-Type": "application/octet-stream", "Content-Range": f"bytes {start}-{end}/{size}"},
                authorized=False,
            )
            if answer.status_code == 201:
                return
            start = _next_start(answer.json(), end + 1)
        raise GraphError(f"the upload of {file.name} ended without Graph confirming the attachment", status=200)

    def _waiting_draft(self, internet_message_id: str, files: list[Attachment]) -> str | None:
        """The complete draft in Drafts with this Message-ID; an incomplete one (a crash midway) is deleted."""
        expected = sorted(f.name for f in files)
        for item in ours(self._api, "drafts", internet_message_id):
            draft_url = self._api.url(f"/messages/{quote(str(item['id']), safe='')}")
            names = self._http.request(
                "GET", f"{draft_url}/attachments", what="list a draft's files", params={"$select": "name"}
            ).json()
            if sorted(str(a.get("name", "")) for a in names.get("value", [])) == expected:
                return str(item["id"])
            log.warning(
                "%s: deleting an incomplete draft of %s left by an interrupted send", self.name, internet_message_id
            )
            self._http.request("DELETE", draft_url, what="delete an incomplete draft")
        return None


def _next_start(session: dict[str, Any], default: int) -> int:
    ranges = session.get("nextExpectedRanges") or []
    if not ranges:
        return default
    try:
        return int(str(ranges[0]).split("-")[0])
    except ValueError:
        return default
