"""No loops with a robot that answers like a person: our own words are never read as a request, a reply that only
echoes our email is recognized, and a thread whose versions all come from replies sent at once stops for the seller.

Auto-Submitted and the out-of-office headers catch the robots that say what they are (receive.automatic); these
catch the rest: a ticket system that sends our follow-up back as new text, a forwarding rule, two pipelines
answering each other.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pipeline.loop import policy
from pipeline.loop.act import Effects, Notice, Outcome
from pipeline.loop.parts import parse_time
from pipeline.plan.model import Reason
from pipeline.replies.echo import corpus, without_ours
from pipeline.replies.extract import extract
from pipeline.replies.message import Incoming

if TYPE_CHECKING:
    from pipeline.loop.parts import Parts
    from pipeline.loop.receive import Received
    from pipeline.plan.model import Version

OUR_EMAILS = 12  # the last emails of a plan whose words are ours: older ones are rarely answered
MAX_AUTOMATIC = 3  # versions in a row made from replies and sent at once, with nobody in between ...
WITHIN = timedelta(hours=24)  # ... within this long: the next reply waits for the seller


def our_words(parts: Parts, msg: Received, plan_id: str) -> str:
    """The text of the last emails we sent the plan's people (not the seller's notices), as replies/echo.py reads it."""
    if "ours" not in msg.memo:
        own = set(parts.settings.seller_addresses)
        texts: list[str] = []
        sent = [e for e in parts.store.evidence(plan_id, "out")][-OUR_EMAILS:]
        for kept in sent:
            if not parts.archive.has(kept.sha256):
                continue
            email = Incoming.from_bytes(parts.archive.get(kept.sha256), own_domains=parts.settings.own_domains)
            if {a.lower() for a in (*email.to, *email.cc)} - own:
                texts.append(email.text or "")
        msg.memo["ours"] = corpus(texts)
    found: str = msg.memo["ours"]
    return found


def echo(parts: Parts, msg: Received, current: Version) -> Effects | None:
    """Ignored, never answered: a reply whose new text is (next to) all our own words coming back."""
    ours = our_words(parts, msg, current.plan_id)
    try:
        sorted_ = without_ours(extract(msg.incoming), ours)
    except Exception:  # a body no rule can read is read (and held) by the reply step as usual
        return None
    if not sorted_.echo:
        return None
    why = (f"an echo of our own email: {sorted_.ours} of its lines are our words and {sorted_.theirs} the "
           "sender's; nothing in it was read as a request")
    return Effects(Outcome(policy.IGNORED, why, current.plan_id, current.number), sender=msg.incoming.sender)


def runaway(parts: Parts, msg: Received, current: Version) -> Effects | None:
    """Held for the seller: the last versions were all made from replies and sent at once, within a day, with no
    release by the seller since, so the next one could be one more turn of a loop between two machines."""
    if parts.settings.policy.changes != "auto" or "loop" in msg.lifted:
        return None
    released = [t for e in parts.store.audit_log(current.plan_id)
                if e.event == "message released" and (t := parse_time(e.at)) is not None]
    since = max([msg.received - WITHIN, *released])
    run: list[Version] = []
    for version in reversed(parts.store.versions(current.plan_id)):
        made = parse_time(version.created)
        if version.reason != Reason.REPLY or made is None or made <= since:
            break  # the seller's own version, or a release, or a day's quiet: a person is in the loop
        run.append(version)
    if len(run) < MAX_AUTOMATIC:
        return None
    why = (f"loop suspected: versions {run[-1].number} to {run[0].number} were all made from replies and sent at "
           f"once within {WITHIN.total_seconds() / 3600:g} hours, with nobody else in between; this reply waits "
           "for you (`mutualplan release MESSAGE_ID` acts on it)")
    return Effects(Outcome(policy.HELD, why, current.plan_id, current.number),
                   notice=Notice("loop", why, msg.incoming), sender=msg.incoming.sender)
