"""Answers to reminders: "done" or "we need another week" under a reminder is about that reminder's step."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta

from pipeline.plan.model import Change, Plan
from pipeline.plan.timeline import resolve
from pipeline.replies.echo import without_ours
from pipeline.replies.extract import Block, Extraction, extract
from pipeline.replies.interpret import Interpretation, interpret, read_reply
from pipeline.replies.message import Incoming

_MORE_TIME = re.compile(
    r"\b(?:(?P<another>another|one more|an extra|a further)|(?P<n>\d{1,2}|two|three|four|five|six|a couple of)"
    r"\s+(?:more|extra))\s+(?P<unit>days?|weeks?)\b",
    re.IGNORECASE,
)
_NOT = re.compile(r"\b(?:not|no|never|without)\b|n't\b|n’t\b", re.IGNORECASE)
_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "a couple of": 2}


def read_reminder_answer(incoming: Incoming, plan: Plan, milestone_id: str, *, received: datetime,
                         ours: str = "") -> Interpretation:
    """An answer to the reminder about `milestone_id`: "done" marks it done, "we need another week" moves it a
    week from its date (or from the answer's day, when that is later); anything else is read as any reply.
    `ours`: the emails we sent (echo.corpus), never read as the sender's words."""
    base = read_reply(incoming, plan, received=received, ours=ours)
    if base.kind != "human":
        return base
    milestone = plan.milestone(milestone_id)
    if milestone is None:
        return base
    try:
        extraction = without_ours(extract(incoming), ours).extraction
    except Exception:  # read_reply has already read what could be read
        return base
    # As if every sentence answered the reminder's quoted line: "done" and "it" are about that step.
    line = f"{milestone.id}  {milestone.title}"
    blocks = tuple(Block(b.text, b.context or (line,)) for b in extraction.blocks)
    reading = interpret(Extraction(extraction.text, blocks, True, extraction.removed), plan, base.reply_date,
                        sender=incoming.sender)
    # The reminder's step stands in for "it" only to say it is done or when it will be: a removal or a new owner
    # read from it alone ("we don't need another week" is no request to drop the step) goes to the seller.
    # A sentence with such a change goes whole: "Done, and Raj will own it" marks nothing done by itself.
    kept = [c in base.changes or (c.op in ("status", "move") and c.milestone == milestone_id)
            for c in reading.changes]
    origins = reading.origins or ("",) * len(reading.changes)
    left = list(dict.fromkeys(o or reading.text[:400] for o, k in zip(origins, kept, strict=True) if not k))
    changes = [c for c, o, k in zip(reading.changes, origins, kept, strict=True) if k and (o or "") not in left]
    unresolved = list(reading.unresolved) + [o for o in left if o not in reading.unresolved]
    if not changes:
        more = _more_time(reading.text, plan, milestone_id, base.reply_date)
        if more is not None:
            change, sentence = more
            changes.append(change)
            unresolved = [u for u in unresolved if sentence not in u and u not in sentence]
        elif milestone.status != "done" and _bare_done(reading.text):
            changes.append(Change(op="status", milestone=milestone_id, status="done"))
    intent = reading.intent
    if changes and intent in ("comment", "confirm"):
        intent = "amend"
    elif not changes and intent == "amend":
        intent = "comment"  # what looked like a change is with the seller now
    # A question stays a question; the text of changes left out above is a request the seller must see.
    requests = tuple(u for u in unresolved if u in reading.requests or u not in reading.unresolved)
    return replace(base, intent=intent, confirms=reading.confirms, changes=tuple(changes),
                   unresolved=tuple(unresolved), text=reading.text, requests=requests)


_BARE_DONE = re.compile(
    r"^\s*(?:all\s+|it'?s\s+|it is\s+|this is\s+|yes,?\s+)?(?:done|complete|completed|finished)\s*[.!]*\s*$",
    re.IGNORECASE,
)


def _bare_done(text: str) -> bool:
    """ "Done." on a line of its own (a one-word line reads like a signed name to the general reader)."""
    return any(_BARE_DONE.match(line) for line in text.split("\n"))


def _more_time(text: str, plan: Plan, milestone_id: str, today: date | None) -> tuple[Change, str] | None:
    due = resolve(plan).get(milestone_id)
    if due is None:
        return None
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        found = _MORE_TIME.search(sentence)
        if not found or _NOT.search(sentence[: found.start()]):
            continue
        amount = 1 if found.group("another") else _WORDS.get(found.group("n").lower()) or int(found.group("n"))
        days = amount * (7 if found.group("unit").lower().startswith("week") else 1)
        start = max(due, today) if today else due
        new = start + timedelta(days=days)
        return Change(op="move", milestone=milestone_id, due=new.isoformat()), sentence.strip()
    return None
