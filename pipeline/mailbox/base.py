"""The Mailbox protocol every backend implements, the small state store backends keep their place in, and the check
of the [mailbox] settings each backend reads."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from email.message import EmailMessage
from typing import Any, Protocol

from pipeline.errors import ConfigError, MailboxError

# Folders a processed message can be filed in, by what happened to it.
PROCESSED = "Processed"
HELD = "Held"


# How long to wait between looks for the Sent Items copy of a message just sent: Exchange files it a moment
# after the send returns, so a few short retries, about 3.5 seconds in all, and never longer.
SENT_LOOKUP_DELAYS = (0.5, 1.0, 2.0)


def look_a_while(find: Callable[[], str | None], delays: tuple[float, ...] = SENT_LOOKUP_DELAYS) -> str | None:
    """`find()` until it answers, pausing `delays` between tries; None when every try came up empty.

    Nothing is remembered: a miss now is looked for again on the next call.
    """
    found = find()
    for delay in delays:
        if found is not None:
            break
        time.sleep(delay)
        found = find()
    return found


class NotFiledError(MailboxError):
    """send() delivered the message but could not keep its copy in Sent: do not send it again."""


@dataclass(frozen=True)
class Fetched:
    """A new message: the backend's key to acknowledge it by, and its raw RFC 5322 bytes."""

    key: str
    raw: bytes


class Cursors(Protocol):
    """Where a backend keeps its place (IMAP UIDs, EWS sync state, Graph deltaLink) between polls."""

    def cursor(self, name: str) -> str | None: ...

    def set_cursor(self, name: str, value: str) -> None: ...


class Mailbox(Protocol):
    """A seller's mailbox: read new mail, file it when done, send and draft as the seller.

    Every method raises MailboxError; `transient=True` means "try again later, nothing was lost".
    """

    name: str

    def fetch(self) -> Iterator[Fetched]:
        """New messages not yet acknowledged, oldest first; a crash before ack() replays them."""
        ...

    def ack(self, key: str, folder: str | None = PROCESSED) -> None:
        """Mark a fetched message done (its bytes are already stored) and file it in `folder`.

        `folder=None` leaves the message where it is (mail that is not about any plan is the seller's
        business, not ours); it is only remembered as seen.
        """
        ...

    def send(self, message: EmailMessage) -> None:
        """Send as the seller and keep a copy in Sent; a reply goes into the thread it answers."""
        ...

    def save_draft(self, message: EmailMessage) -> None:
        """Leave the message in the seller's Drafts for them to review and send."""
        ...

    def was_sent(self, message_id: str) -> bool:
        """Whether a message with this Message-ID is in Sent (the outbox's check before a retry)."""
        ...

    def remove_draft(self, message_id: str) -> bool:
        """Remove the draft with this Message-ID from Drafts; False when no such draft is there (already sent,
        or removed by the seller). Raises MailboxError (transient or not) when the mailbox cannot be reached."""
        ...


def with_brackets(message_id: str) -> str:
    """A Message-ID as a header carries it: stripped, in angle brackets (added when it came without)."""
    value = message_id.strip()
    return value if value.startswith("<") else f"<{value}>"


class MemoryCursors:
    """A Cursors in a dict, for tests and one-shot commands."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def cursor(self, name: str) -> str | None:
        return self.values.get(name)

    def set_cursor(self, name: str, value: str) -> None:
        self.values[name] = value


# Settings in seconds where 0 would not wait at all: a socket with a timeout of 0 never connects.
_ABOVE_ZERO = ("timeout",)


def check_option_types(settings_class: type, options: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the first [mailbox] setting whose value is not of the type `settings_class` declares.

    Keys the class does not declare are left to the caller, but for `*_env` names, which are always text.
    """
    declared = {f.name: str(f.type) for f in fields(settings_class)}
    for key, value in options.items():
        kinds = set(declared.get(key, "str" if key.endswith("_env") else "").replace(" ", "").split("|"))
        what = _wrong_type(key, value, kinds)
        if what:
            raise ConfigError(f"[mailbox] {key} must be {what}, not {value!r}",
                              hint="write numbers and true/false without quotes, text in quotes")


def _wrong_type(key: str, value: Any, kinds: set[str]) -> str | None:
    """What the value should have been, or None when it is fine (or its key declares no type we check)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if "bool" in kinds:
        return None if isinstance(value, bool) else "true or false"
    if "int" in kinds:
        return None if number and isinstance(value, int) and value >= 0 else "a whole number, 0 or more"
    if "float" in kinds:  # every such setting of a backend is a number of seconds
        # nan and inf are TOML floats too; neither is a number of seconds, and nan passes every comparison.
        above_zero = key in _ABOVE_ZERO
        fine = number and math.isfinite(value) and (value > 0 if above_zero else value >= 0)
        return None if fine else f"a number of seconds, {'more than 0' if above_zero else '0 or more'}"
    if "str" in kinds:
        return None if isinstance(value, str) else "text in quotes"
    return None


# The live worker processes of a team over which an app registration's limit on requests in flight is divided
# (Graph's `app_max_concurrency`), so the team as a whole keeps about to it; 1 outside a team's workers.
_app_share = 1


def share_apps_over(processes: int) -> None:
    """Divide every app's requests in flight over `processes` worker processes (a team's workers set it)."""
    global _app_share
    _app_share = max(1, processes)


def app_share() -> int:
    """The worker processes an app's limit is divided over now."""
    return _app_share
