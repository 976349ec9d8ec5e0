"""The one delivery loop for everything we send, under the send lock; before a retry, a look in Sent.

Each queued email is rendered from its data (the same bytes every time), archived once, marked `sending`, handed
to the mailbox, then marked `sent` or `drafted`: a crash anywhere sends it at most once, since a retry of an
entry left `sending` first asks the mailbox whether its Message-ID is in Sent.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from pipeline.errors import MailboxError, PipelineError, StorageFull
from pipeline.loop import compose, outbox
from pipeline.loop.parts import PollReport
from pipeline.plan.ids import bracketed
from pipeline.store import OutboxEntry

if TYPE_CHECKING:
    from pipeline.loop.parts import Parts


# How long after a send its Sent copy is looked for on later polls: a copy later than that is not coming.
ALIAS_WINDOW = timedelta(days=1)


def flush(parts: Parts, report: PollReport, *, drafts: bool = True) -> None:
    """Send (or draft) every queued email; with `drafts`, also notice the drafts the seller has sent since."""
    with parts.sending():
        _withdraw(parts, report)
        tried: set[str] = set()
        # A second round sends what the first queued: the seller's word on an email that failed for good.
        for _ in range(2):
            for entry in [e for e in parts.store.outbox_pending() if e.message_id not in tried]:
                tried.add(entry.message_id)
                _try(parts, entry, report)
        if drafts:
            find_sent(parts, parts.store.outbox_drafted(), report)


def _try(parts: Parts, entry: OutboxEntry, report: PollReport) -> None:
    """Deliver one entry; one that fails for good is marked failed, the seller told, and the others go on."""
    try:
        _deliver(parts, entry, report)
    except StorageFull:
        raise  # a full disk is no fault of this email: it stays queued, and the poll stops to say so
    except MailboxError as exc:
        report.errors.append(f"sending {entry.message_id}: {exc}")
        if not exc.transient:
            _failed(parts, entry, str(exc))
    except PipelineError as exc:
        # A template or setting that cannot render it: said once, kept for a person, not retried forever.
        report.errors.append(f"rendering {entry.message_id}: {exc}")
        _failed(parts, entry, str(exc))
    except Exception as exc:  # a bug in a template or a value no rule foresaw: this email alone fails
        report.errors.append(f"rendering {entry.message_id}: {type(exc).__name__}: {exc}")
        _failed(parts, entry, f"{type(exc).__name__}: {exc}")


def _failed(parts: Parts, entry: OutboxEntry, error: str) -> None:
    """Mark an email failed and queue one email to the seller about it (none about mail to the seller alone,
    which would fail the same way)."""
    parts.store.outbox_mark(entry.message_id, "failed", at=parts.clock(), error=error)
    if entry.plan_id is None:
        return
    failed = {"message_id": entry.message_id, "plan_id": entry.plan_id, "version": entry.version,
              "kind": entry.kind, "mode": entry.mode, "recipients": [*entry.to, *entry.cc], "error": error[:2000]}
    domain = parts.settings.own_domains[0] if parts.settings.own_domains else None
    told = outbox.to_seller("not_sent", entry.message_id, {"failed": failed, "created": parts.clock().isoformat()},
                            domain=domain)
    parts.store.queue_email(told, at=parts.clock())


def _withdraw(parts: Parts, report: PollReport) -> None:
    """Take the drafts a newer version superseded out of the seller's Drafts (one the seller sent meanwhile is
    recorded as sent: the prospect has it); a mailbox that cannot be reached is tried again next time."""
    for entry in parts.store.outbox_in_state("superseding"):
        try:
            if parts.mailbox.was_sent(entry.message_id):
                _mark_sent(parts, entry, report)
                continue
            parts.mailbox.remove_draft(entry.message_id)
        except MailboxError as exc:
            report.errors.append(f"taking {entry.message_id} out of Drafts: {exc}")
            continue
        parts.store.outbox_mark(entry.message_id, "superseded", at=parts.clock(), error=entry.error)
        report.withdrawn.append(entry.message_id)


def find_sent(parts: Parts, entries: list[OutboxEntry], report: PollReport) -> None:
    """Mark sent those of `entries` that are in Sent: drafts the seller sent, sends whose answer was lost."""
    for entry in entries:
        try:
            sent = parts.mailbox.was_sent(entry.message_id)
        except MailboxError as exc:
            # Unchanged as far as the store knows; the next poll looks again.
            report.errors.append(f"looking in Sent for {entry.message_id}: {exc}")
            return
        if sent:
            _mark_sent(parts, entry, report)


def approve(parts: Parts, plan_id: str) -> list[str]:
    """Send the follow-ups of a plan that wait in Drafts, as the seller would from their mail client."""
    report = PollReport()
    with parts.sending():
        for entry in parts.store.outbox_drafted(plan_id):
            if parts.mailbox.was_sent(entry.message_id):
                # The seller sent this draft already, from their mail client: not a second time.
                _mark_sent(parts, entry, report)
            else:
                _deliver(parts, entry, report, force_send=True)
    return report.sent


# The kinds whose email carries a letter (or a certificate): the slow part of sending, worth rendering ahead.
LETTER_KINDS = ("plan", "update", "agreed")


def prerender(parts: Parts, report: PollReport) -> int:
    """Render and keep the letters the queued emails will carry, without the mailbox; how many emails are ready.

    A team's render job runs this away from the mailbox lock, so the send after it finds every letter kept and only
    composes the message. What fails here is left for the send, which marks it failed and tells the seller once."""
    ready = 0
    for entry in parts.store.outbox_pending():
        if entry.kind in LETTER_KINDS and entry.state != "sending":
            try:
                compose.compose(entry, parts.store, parts.archive, letterhead=parts.settings.letterhead,
                                at=parts.clock())
            except StorageFull:
                raise
            except Exception as exc:  # the send says it to the seller; here it only must not stop the others
                report.errors.append(f"rendering {entry.message_id}: {type(exc).__name__}: {exc}")
                continue
        ready += 1
    return ready


def render_and_archive(parts: Parts, entry: OutboxEntry) -> EmailMessage:
    """The email of a queued entry, rendered the same way every time, and archived once (as its plan's evidence)."""
    if entry.plan_id is None:
        # Mail to the seller that belongs to no one plan: a plan email that did not parse, the weekly digest.
        message = compose.seller_mail(entry, parts.settings)
        parts.archive.put(bytes(message))
        return message
    message = compose.compose(entry, parts.store, parts.archive, letterhead=parts.settings.letterhead,
                              at=parts.clock())
    data = bytes(message)
    digest = hashlib.sha256(data).hexdigest()
    if not parts.archive.has(digest):
        parts.archive.put(data)
        parts.store.add_evidence(entry.plan_id, entry.version, digest, "out", entry.message_id, at=parts.clock())
    return message


def _deliver(parts: Parts, entry: OutboxEntry, report: PollReport, *, force_send: bool = False) -> None:
    if entry.state == "sending" and parts.mailbox.was_sent(entry.message_id):
        _mark_sent(parts, entry, report)
        return
    message = render_and_archive(parts, entry)
    parts.store.outbox_mark(entry.message_id, "sending", at=parts.clock())
    parts.crash_point("rendered")
    if entry.mode == "draft" and not force_send:
        parts.mailbox.save_draft(message)
        parts.crash_point("sent")
        parts.store.outbox_mark(entry.message_id, "drafted", at=parts.clock())
        report.drafted.append(entry.message_id)
    else:
        parts.mailbox.send(message)
        parts.crash_point("sent")
        _mark_sent(parts, entry, report)


def _mark_sent(parts: Parts, entry: OutboxEntry, report: PollReport) -> None:
    """Record an email as sent, with the Message-ID it went out under when that is not ours."""
    sent_as = _sent_as(parts, entry.message_id, report)
    parts.store.outbox_mark(entry.message_id, "sent", at=parts.clock(), sent_as=sent_as)
    report.sent.append(entry.message_id)


def _sent_as(parts: Parts, message_id: str, report: PollReport, *, wait: bool = True) -> str | None:
    """The Message-ID the recipients got for our `message_id` (ours, or the server's own); None while unknown.

    Exchange names the replies it builds; an answer to one carries that id in In-Reply-To, and the thread's
    resolution finds it through the queue's `sent_as`. Only a backend whose server renames mail can tell, so this
    is an optional method (`sent_message_id`), not part of the Mailbox protocol every backend implements.
    A failed look-up costs only the alias (References and the subject still find the plan), never the send.
    """
    lookup = getattr(parts.mailbox, "sent_message_id", None)
    if lookup is None:
        return None
    try:
        found = lookup(message_id, wait=wait)
    except MailboxError as exc:
        report.errors.append(f"learning the Message-ID {message_id} went out under: {exc}")
        return None
    return bracketed(found) if found else None


def learn_aliases(parts: Parts, report: PollReport) -> None:
    """Look once more for the Message-ID of each email sent in the last day whose Sent copy was late.

    The look right after a send waits a few seconds at most; a server slower than that files the copy later, and
    an answer to it may already be in this poll's mail.
    """
    if getattr(parts.mailbox, "sent_message_id", None) is None:
        return
    for entry in parts.store.outbox_unaliased(parts.clock() - ALIAS_WINDOW):
        sent_as = _sent_as(parts, entry.message_id, report, wait=False)
        if sent_as is not None:
            parts.store.outbox_alias(entry.message_id, sent_as, at=parts.clock())
