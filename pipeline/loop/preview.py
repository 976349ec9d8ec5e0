"""`mutualplan preview`: the emails of a plan that wait for the seller, rendered as they would go, and their
suggested ask edited or dropped before `approve`.

A preview renders each waiting entry as the delivery loop would (compose.py), but sends nothing and keeps nothing.
An edit changes the queued entry's data; when its draft is already in the seller's Drafts, that draft is replaced
by the edited one (approve sends what is in Drafts, as the seller's mail client would).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from pipeline.errors import PipelineError
from pipeline.loop import compose, deliver

if TYPE_CHECKING:
    from pipeline.loop.parts import Parts
    from pipeline.store import OutboxEntry, Store

WAITING = ("pending", "drafted")  # queued to be drafted, or in the seller's Drafts


@dataclass(frozen=True)
class Attachment:
    """A file an email carries: its name, type and size in bytes."""

    name: str
    content_type: str
    size: int


@dataclass(frozen=True)
class Draft:
    """One email that waits for the seller, as it would go."""

    message_id: str
    kind: str
    version: int | None
    state: str  # pending (not in Drafts yet) or drafted (in the seller's Drafts)
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    text: str
    attachments: tuple[Attachment, ...]
    asks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `preview --json`."""
        return {
            "message_id": self.message_id, "kind": self.kind, "version": self.version, "state": self.state,
            "to": list(self.to), "cc": list(self.cc), "subject": self.subject, "text": self.text,
            "attachments": [{"name": a.name, "content_type": a.content_type, "size": a.size}
                            for a in self.attachments],
            "asks": list(self.asks),
        }  # fmt: skip


@dataclass(frozen=True)
class Edited:
    """An edited ask: the draft as it now reads, and whether the one in the seller's Drafts was replaced."""

    draft: Draft
    replaced: bool


def waiting(store: Store, plan_id: str) -> list[OutboxEntry]:
    """A plan's emails that wait for the seller's review (the `review` policy's follow-ups), oldest first."""
    return [e for e in store.outbox_entries(plan_id) if e.mode == "draft" and e.state in WAITING]


def preview(parts: Parts, plan_id: str) -> list[Draft]:
    """Every email of a plan that waits for the seller, rendered as the delivery loop would, nothing sent or kept."""
    return [_draft(parts, entry) for entry in waiting(parts.store, plan_id)]


def edit_ask(parts: Parts, plan_id: str, asks: list[str]) -> Edited:
    """Replace the suggested ask of the plan's newest waiting follow-up (none: drop it), and its draft in Drafts."""
    asks = [" ".join(a.split()) for a in asks]
    if any(not a for a in asks):
        raise PipelineError("the ask is empty", hint="write what to ask in return, or drop it with --no-ask")
    # Under the send lock: no watcher drafts or sends this email while it changes.
    with parts.sending():
        updates = [e for e in waiting(parts.store, plan_id) if e.kind == "update"]
        if not updates:
            raise PipelineError(f"no follow-up of {plan_id} waits for your review: there is no ask to edit",
                                hint=f"`mutualplan preview {plan_id}` shows what waits")
        entry = updates[-1]
        edited = replace(entry, data={**entry.data, "asks": asks})
        replaced = entry.state == "drafted"
        # The store first: approve renders what it sends from the queued data, so the edit goes out even if the
        # draft in the seller's Drafts cannot be replaced below.
        parts.store.set_outbox_data(entry.message_id, edited.data, at=parts.clock())
        if replaced:
            # The draft of the same Message-ID leaves Drafts, and the edited one takes its place.
            parts.mailbox.remove_draft(entry.message_id)
            parts.mailbox.save_draft(deliver.render_and_archive(parts, edited))
    return Edited(_draft(parts, edited), replaced)


def _draft(parts: Parts, entry: OutboxEntry) -> Draft:
    message = compose.compose(entry, parts.store, parts.archive, letterhead=parts.settings.letterhead,
                              at=parts.clock(), keep=False)
    return Draft(
        message_id=entry.message_id, kind=entry.kind, version=entry.version, state=entry.state, to=entry.to,
        cc=entry.cc, subject=str(message["Subject"] or ""), text=_text(message),
        attachments=tuple(_attachments(message)), asks=tuple(entry.data.get("asks") or ()),
    )


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    return body.get_content() if body is not None else ""


def _attachments(message: EmailMessage) -> list[Attachment]:
    return [Attachment(part.get_filename() or "(no name)", part.get_content_type(),
                       len(part.get_payload(decode=True) or b""))
            for part in message.iter_attachments()]
