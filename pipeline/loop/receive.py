"""The receive path: a list of steps over one frozen `Received` message, the first to answer decides.

Each step reads and decides, with no write of its own: it returns the message's `Effects` (act.py commits them
in one transaction) or None to pass the message on. In order (STEPS):
duplicate -> too_large -> bounce -> automatic -> unmatched (a plan the seller typed, or unrelated) -> throttle
-> reply (reply.py). To add a step, write `def step(parts, msg) -> Effects | None` and put it in STEPS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pipeline.loop import inbound_plan, policy
from pipeline.loop.act import Effects, Notice, Outcome
from pipeline.loop.reply import reply
from pipeline.loop.thread import ThreadRef, plan_email_thread, resolve
from pipeline.plan.ids import bracketed, plan_reference
from pipeline.replies.message import Incoming

if TYPE_CHECKING:
    from pipeline.loop.parts import Parts
    from pipeline.store import MessageRecord

_SNIFF = 1 << 20  # how far into a message over the size limit we look for the end of its headers


@dataclass(frozen=True)
class Received:
    """One message as fetched and read: its bytes, their SHA-256, what they say, and when it arrived."""

    raw: bytes
    digest: str
    incoming: Incoming
    received: datetime
    # Holds the seller lifted for this one message (`mutualplan release`): throttled, unauthenticated, conflict,
    # agreed (see loop/seller_actions.py).
    lifted: frozenset[str] = frozenset()
    # What the steps learn once and share (the thread's plan): a cache, not part of the message.
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def message_id(self) -> str:
        return self.incoming.message_id

    @classmethod
    def read(cls, raw: bytes, received: datetime, *, own_domains: tuple[str, ...], limit: int) -> Received:
        """The message as read; of one over the size limit only the headers are read, never the body."""
        digest = hashlib.sha256(raw).hexdigest()
        if len(raw) <= limit:
            return cls(raw, digest, Incoming.from_bytes(raw, own_domains=own_domains, received=received), received)
        headers, _ = split_message(raw[:_SNIFF])
        incoming = Incoming.from_bytes(headers + b"\n\n", own_domains=own_domains, received=received)
        if incoming.message_id.endswith("@sha256.invalid"):
            # No Message-ID: its id is the hash of all its bytes, as for any message without one.
            incoming = replace(incoming, message_id=f"{digest}@sha256.invalid")
        return cls(raw, digest, incoming, received)


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """A message's header bytes and body bytes (all headers and no body when no blank line ends the headers)."""
    ends = [(at, len(mark)) for mark in (b"\r\n\r\n", b"\n\n") if (at := raw.find(mark)) >= 0]
    if not ends:
        return raw, b""
    at, size = min(ends)
    return raw[:at], raw[at + size:]


def thread_of(parts: Parts, msg: Received) -> ThreadRef | None:
    """The plan and version the message answers by its thread or subject (resolved once per message)."""
    if "thread" not in msg.memo:
        msg.memo["thread"] = resolve(parts.store, msg.incoming, parts.settings.own_domains)
    found: ThreadRef | None = msg.memo["thread"]
    return found


def handle(parts: Parts, msg: Received) -> Effects:
    """The effects of the first step that answers (the last step, reply, always does)."""
    for step in STEPS:
        effects = step(parts, msg)
        if effects is not None:
            return effects
    raise AssertionError("the reply step answers every message that reaches it")


# --- the steps --------------------------------------------------------------------------------------


def duplicate(parts: Parts, msg: Received) -> Effects | None:
    """A Message-ID seen before: the same message again does nothing; other content under it is flagged."""
    prior = parts.store.message(msg.message_id)
    if prior is None:
        return None
    if prior.raw_sha256 == msg.digest or _same_message(parts, prior, msg):
        return Effects(Outcome(policy.DUPLICATE, f"already handled as {prior.disposition}", prior.plan_id,
                               first=prior.disposition), record=False)
    # The same Message-ID with other content: a forgery or a broken client. Keep it, flag it.
    flagged_id = f"{msg.message_id}#sha256={msg.digest[:16]}"
    flagged = parts.store.message(flagged_id)
    if flagged is not None:
        return Effects(Outcome(policy.DUPLICATE, "this altered copy was already flagged", flagged.plan_id,
                               first=flagged.disposition), record=False)
    reason = f"Message-ID {msg.message_id} was seen before with other content (another body or sender)"
    found = thread_of(parts, msg)
    sender = msg.incoming.sender
    if found is None:
        return Effects(Outcome(policy.UNRELATED, reason), record_id=flagged_id, keep=False, sender=sender)
    version = _current_number(parts, found.plan_id)
    return Effects(
        Outcome(policy.HELD, reason, found.plan_id, version), record_id=flagged_id,
        keep=len(msg.raw) <= parts.settings.policy.max_message_bytes,  # a copy over the size limit is not kept either
        # Under its own id, so that the notice is not taken for one about the first message.
        notice=Notice("altered", f"{reason}; nothing in it was applied",
                      replace(msg.incoming, message_id=flagged_id)),
        sender=sender,
    )


def _same_message(parts: Parts, prior: MessageRecord, msg: Received) -> bool:
    """Whether other bytes under a known Message-ID are the same message relayed again: the same sender and
    body, only the transport headers (Received, Authentication-Results) differ."""
    if prior.sender is None or prior.sender != msg.incoming.sender or not parts.archive.has(prior.raw_sha256):
        return False
    return split_message(parts.archive.get(prior.raw_sha256))[1] == split_message(msg.raw)[1]


def too_large(parts: Parts, msg: Received) -> Effects | None:
    """Refused unread, nothing of it kept or acted on; filed in Held and the seller told when it is about a plan."""
    limit = parts.settings.policy.max_message_bytes
    if len(msg.raw) <= limit:
        return None
    reason = (f"refused unread: {len(msg.raw):,} bytes is over the limit of {limit:,} (max_message_mb); "
              "read it in the mailbox")
    found = thread_of(parts, msg) if msg.incoming.kind == "human" else None
    if found is None:
        return Effects(Outcome(policy.UNRELATED, f"{reason}; about none of our messages"), keep=False)
    version = _current_number(parts, found.plan_id)
    return Effects(Outcome(policy.REJECTED, reason, found.plan_id, version), keep=False,
                   notice=Notice("rejected", reason, msg.incoming), sender=msg.incoming.sender)


def bounce(parts: Parts, msg: Received) -> Effects | None:
    """A delivery failure report: recorded against the email it returns, never acted on, never answered."""
    if msg.incoming.kind != "bounce":
        return None
    from pipeline.replies.bounce import delivery_failure

    failure = delivery_failure(msg.raw)
    found: tuple[str, int] | None = None
    if failure.original_id:
        entry = parts.store.outbox_entry(bracketed(failure.original_id))
        ref = (entry.plan_id, entry.version) if entry and entry.plan_id and entry.version \
            else plan_reference(failure.original_id, parts.settings.own_domains)
        found = ref if ref and parts.store.has_plan(ref[0]) else None
    if found is None and (thread := thread_of(parts, msg)) is not None:
        found = thread.plan_id, thread.version
    if found is None:
        # A bounce of the seller's own mail: theirs to read, left where it is.
        return Effects(Outcome(policy.UNRELATED, "a delivery failure report about none of our messages"), keep=False)
    plan_id, version = found
    reason = f"a delivery failure report: {failure.describe()}"
    if failure.original_id:
        reason += f"; the email was <{failure.original_id}>"
    detail = {"message_id": failure.original_id, "recipients": list(failure.recipients), "status": failure.status,
              "diagnostic": failure.diagnostic, "report": msg.message_id, "version": version}
    return Effects(Outcome(policy.IGNORED, reason, plan_id, version), audit=(("email.bounced", detail),))


def automatic(parts: Parts, msg: Received) -> Effects | None:
    """Automatic mail (out of office, our own mail coming back): recorded, never acted on, never answered."""
    incoming = msg.incoming
    if incoming.kind == "human":
        return None
    why = incoming.kind_reason or incoming.kind
    if incoming.kind != "own" and thread_of(parts, msg) is None:
        # Someone's out-of-office about the seller's other mail: theirs to read, left where it is.
        return Effects(Outcome(policy.UNRELATED, f"{why}, about none of our messages"), keep=False)
    # Our own mail coming back (a notice to the seller, their Cc of an agreed email) is for them to read:
    # recorded, never answered, and left in the Inbox rather than filed away before they see it.
    return Effects(Outcome(policy.IGNORED, why, stay=incoming.kind == "own"), sender=incoming.sender)


def unmatched(parts: Parts, msg: Received) -> Effects | None:
    """A message in no plan's thread: a plan the seller typed in an email, or none of our business."""
    if thread_of(parts, msg) is not None:
        return None
    # An answer to the seller's own plan email (not to our letter) is in that plan's thread too.
    found = plan_email_thread(parts.store, msg.incoming)
    if found is not None:
        msg.memo["thread"] = found
        return None
    how = inbound_plan.recognize(msg.incoming, parts.settings, parts.store)
    if how is None:
        return Effects(Outcome(policy.UNRELATED, "answers none of our messages"), keep=False)
    from pipeline.loop.reply import authentication, seller_unproven

    # A plan typed in mail is the seller's only when proven theirs: else anyone could have us mail a letter from
    # their mailbox to an address of their choosing.
    refused = None if "unauthenticated" in msg.lifted else authentication(parts, msg.incoming)
    if refused is not None:
        refused = seller_unproven(parts, msg, refused)
    return Effects(Outcome(policy.CREATED, "a plan the seller wrote in an email"), plan_email=how, refused=refused,
                   sender=msg.incoming.sender)


def throttle(parts: Parts, msg: Received) -> Effects | None:
    """Held unread when its sender is over the hourly limit: a loop or a flood, told to the seller once a day."""
    limit = parts.settings.policy.max_messages_per_sender_per_hour
    sender = msg.incoming.sender
    since = msg.received - timedelta(hours=1)
    if not sender or limit <= 0 or "throttled" in msg.lifted or parts.store.messages_from(sender, since) < limit:
        return None
    found = thread_of(parts, msg)
    assert found is not None  # unmatched() passed only messages in a plan's thread
    version = _current_number(parts, found.plan_id)
    reason = f"throttled: more than {limit} messages from {sender} within an hour; held unread"
    return Effects(Outcome(policy.HELD, reason, found.plan_id, version),
                   notice=Notice("throttled", reason, msg.incoming), sender=sender)


def _current_number(parts: Parts, plan_id: str) -> int:
    current = parts.store.current(plan_id)
    assert current is not None  # a thread resolves only to stored plans
    return current.number


def _reply(parts: Parts, msg: Received) -> Effects | None:
    found = thread_of(parts, msg)
    assert found is not None  # unmatched() passed only messages in a plan's thread
    return reply(parts, msg, found)


Step = Callable[["Parts", Received], "Effects | None"]
STEPS: tuple[Step, ...] = (duplicate, too_large, bounce, automatic, unmatched, throttle, _reply)
