"""Changes to the steps a clause asks for: one done, one removed, one given a new owner, or a new one added.

Each reader returns True when the clause made its change, False when it asked for one that cannot be mapped
(the seller reads it), and None when the clause asks for no such change.
"""

from __future__ import annotations

import re
from datetime import date

from pipeline.plan.model import Change
from pipeline.plan.timeline import in_window
from pipeline.replies.dates import DateMention, find_dates
from pipeline.replies.lexicon import (
    ACTIVITY,
    ADD,
    ADD_NEGATED,
    ADD_OWNER,
    CONDITIONAL_START,
    FUTURE,
    NEGATION,
    NOT_NAMES,
    NOT_NEEDED,
    PRONOUN,
    REASSIGN,
    REMOVE,
    REMOVE_NEGATED,
    REQUEST,
    STATUS_DONE,
    TITLE_END,
    UNSURE_QUESTION,
    WHO_QUESTION,
)
from pipeline.replies.parties import is_person, resolve_person, same_owner
from pipeline.replies.scope import Scope


def read_status(scope: Scope, clause: str, default: str | None, context: str | None) -> bool | None:
    """A step reported done: "the workshop is done", "M1 complete"."""
    if not STATUS_DONE.search(clause):
        return None
    if NEGATION.search(clause) or FUTURE.search(clause) or clause.strip().endswith("?"):
        return None
    ids, unclear = scope.targets(clause, default if PRONOUN.search(clause) or context else None, allow_default=True)
    if unclear:
        return False
    if len(ids) != 1:
        return None if not ids else False
    milestone = scope.plan.milestone(ids[0])
    if milestone is None:
        return False
    if milestone.status != "done":
        scope.emit(Change(op="status", milestone=ids[0], status="done"))
    return True


def read_remove(scope: Scope, clause: str, default: str | None, context: str | None) -> bool | None:
    """A step dropped: "drop item 4", "the reference call is no longer needed"."""
    verb = REMOVE.search(clause)
    not_needed = NOT_NEEDED.search(clause)
    if not (verb or not_needed):
        return None
    if verb and not not_needed and REMOVE_NEGATED.search(clause):
        return None
    ids, unclear = scope.targets(clause, default, allow_default=bool(PRONOUN.search(clause) or context))
    if not ids and not unclear:
        return None if not_needed and not verb else False if REQUEST.search(clause) else None
    if unclear or CONDITIONAL_START.search(clause) or UNSURE_QUESTION.search(clause):
        return False
    explicit = scope.matcher.explicit(clause)
    named = [m for m in scope.matcher.named(clause, skip=[(m.start, m.end) for m in explicit]) if m.resolved]
    if explicit and named and {i for m in explicit for i in m.ids} != {m.resolved for m in named}:
        return False
    for mid in ids:
        scope.emit(Change(op="remove", milestone=mid))
    return True


def read_reassign(scope: Scope, clause: str, default: str | None, context: str | None) -> bool | None:
    """A step given a new owner: "I will own the legal review", "make <name> the owner of the pilot"."""
    if ADD.search(clause) and not ADD_NEGATED.search(clause):
        return None  # "add a walkthrough, owned by <name>": the owner of the new step, read by read_add
    if WHO_QUESTION.search(clause):
        return None  # "Who from <seller> will run the workshop?" asks who; it names no new owner
    for pattern in REASSIGN:
        m = pattern.search(clause)
        if not m:
            continue
        who = m.group("who")
        if who.lower() in ("it", "this", "that", "they", "he", "she") or who in NOT_NAMES:
            continue
        rest = m.groupdict().get("rest") or clause
        span = rest if scope.matcher.mentions(rest) else clause
        ids, unclear = scope.targets(span, default, allow_default=bool(PRONOUN.search(span) or context))
        if unclear or CONDITIONAL_START.search(clause) or UNSURE_QUESTION.search(clause):
            return False
        if not ids:
            return False
        owner = resolve_person(who, scope.plan, scope.sender)
        if owner is None:
            return False
        for mid in ids:
            if not same_owner(scope.plan, mid, owner):
                scope.emit(Change(op="reassign", milestone=mid, owner=owner))
        return True
    return None


_QUOTED_TITLE = re.compile(r"[\"“”]([^\"“”]{3,120})[\"“”]|(?:^|\s)['‘]([^'‘’]{3,120}?)['’](?=[\s.,;!?)]|$)")
_RENAME = re.compile(
    r"\b(?:rename|retitle|re-title)\b(?P<what>.*?)\b(?:to|as|into)\s+(?P<title>.+)$"
    r"|\b(?:call|name)\b(?P<what2>.*?)(?P<title2>[\"“'‘].+)$"
    r"|(?P<what3>.*?)\b(?:should|could|can|would)\s+be\s+(?:called|named|renamed|titled)\s+(?P<title3>.+)$"
    r"|\bchange\s+the\s+(?:title|name)\s+of\b(?P<what4>.*?)\bto\s+(?P<title4>.+)$",
    re.IGNORECASE,
)


def read_rename(scope: Scope, clause: str, default: str | None, context: str | None) -> bool | None:
    """A step given a new title: "can we call the pilot 'Pilot on Q4 and Q1 data' instead?", "rename M5 to X"."""
    m = _RENAME.search(clause)
    if not m:
        return None
    what = next(g for g in (m.group("what"), m.group("what2"), m.group("what3"), m.group("what4")) if g is not None)
    said = next(g for g in (m.group("title"), m.group("title2"), m.group("title3"), m.group("title4")) if g)
    quoted = _QUOTED_TITLE.search(said)
    if quoted:
        title = (quoted.group(1) or quoted.group(2)).strip()
    elif m.group("title2") is not None:
        return None  # "call" without a quoted title is a phone call
    else:
        title = re.split(r"\s+(?:instead|please|if possible|as well)\b|[?!;]|\.(?:\s|$)", said, maxsplit=1)[0]
        title = title.strip(" .,:")
    ids, unclear = scope.targets(what, context, allow_default=bool(context and PRONOUN.search(what)))
    if unclear or len(ids) != 1 or not title or CONDITIONAL_START.search(clause) or UNSURE_QUESTION.search(clause):
        return False
    milestone = scope.plan.milestone(ids[0])
    if milestone is None:
        return False
    if milestone.title.strip().lower() != title.lower():
        scope.emit(Change(op="rename", milestone=ids[0], title=title))
    return True


def read_add(scope: Scope, clause: str, default: str | None, context: str | None) -> bool | None:
    """A new step: "add a security review before the pilot", "we need a budget approval on March 3"."""
    m = ADD.search(clause)
    if not m or ADD_NEGATED.search(clause):
        return None
    dates = find_dates(clause, scope.today, day_first=scope.day_first, month=scope.month)
    title, article, title_end = _new_title(m, dates)
    if re.match(r"(?:days?|weeks?|months?)\b", title, re.IGNORECASE):
        return None  # "we need another week": more time for a step, not a new step
    if not title:
        return False
    if (
        article == "the"
        or _names_existing(scope, title)
        or is_person(title, scope.parties)
        or len(title.split()) > 12
        or not ACTIVITY.search(title)
    ):
        # "include the demo" names a step the plan has; "add <a name>" names a person: not new activities.
        return False if REQUEST.search(clause) else None
    if CONDITIONAL_START.search(clause) or UNSURE_QUESTION.search(clause):
        return False
    anchor = _anchor(scope, clause[title_end:])
    if anchor is None:
        return False
    before, after = anchor
    due_value = _due(scope, clause, [d for d in dates if d.start >= title_end])
    if due_value is False:
        return False
    owner = None
    who = next((m for pattern in ADD_OWNER if (m := pattern.search(clause))), None)
    if who:
        owner = resolve_person(who.group("who"), scope.plan, scope.sender)
        if owner is None:
            return False
    scope.emit(
        Change(
            op="add",
            title=title,
            owner=owner,
            due=due_value.isoformat() if isinstance(due_value, date) else None,
            before=before,
            after=after,
        )
    )
    return True


def _new_title(m: re.Match[str], dates: list[DateMention]) -> tuple[str, str, int]:
    """The title of the step an add asks for, its article, and where the title ends in the clause."""
    title = m.group("title") or m.group("title2") or m.group("title3") or ""
    article = (m.group("art") or m.group("art2") or m.group("art3") or "").lower()
    tail_start = m.start("title") if m.group("title") else m.start("title2") if m.group("title2") else m.start("title3")
    end = len(title)
    cut = TITLE_END.search(title)
    if cut:
        end = cut.start()
    for d in dates:
        local = d.start - tail_start
        if 0 <= local < end:
            # "add a call on March 3": the date and the word before it are not the title.
            head = re.sub(r"\s+(?:on|by|for|in|at|around|the week of)\s*$", "", title[:local], flags=re.IGNORECASE)
            end = min(end, len(head))
    return _clean_title(title[:end]), article, tail_start + end


def _anchor(scope: Scope, rest: str) -> tuple[str | None, str | None] | None:
    """(before, after): the step a new one goes before or after, as the words after its title say; None if unclear."""
    anchor = re.search(r"\b(before|prior to|ahead of|after|following)\s+(.{1,80})", rest, re.IGNORECASE)
    if not anchor:
        return None, None
    where = [x for x in scope.matcher.mentions(anchor.group(2)) if x.start < 40]
    if not where or not where[0].resolved:
        return None
    if anchor.group(1).lower() in ("after", "following"):
        return None, where[0].resolved
    return where[0].resolved, None


def _due(scope: Scope, clause: str, later: list[DateMention]) -> date | bool | None:
    """The due date of a new step: the one date after its title, or relative to a step; False when unclear."""
    exact = [d for d in later if d.value]
    vague = [d for d in later if not d.value]
    if len(exact) > 1 or vague:
        return False
    relative = exact[0].value if exact else scope.relative_to_anchor(clause)
    if relative is False:
        return False
    if isinstance(relative, date) and not in_window(relative, scope.today):
        return False  # before the reply or years past it: the seller reads it
    return relative if isinstance(relative, date) else None


def _names_existing(scope: Scope, title: str) -> bool:
    named = scope.matcher.named("the " + title)
    if not named:
        return False
    words = [w for w in re.findall(r"[A-Za-z0-9]+", title.lower()) if w not in ("a", "an", "the", "with", "our")]
    keys = {k for m in named for i in m.ids for k in scope.matcher.keys.get(i, set())}
    covered = [w for w in words if any(w.rstrip("s") == k or w == k for k in keys)]
    # "reference call" is the plan's step; "security review" shares a word with "legal review" but is new.
    return len(covered) == len(words) or (len(words) >= 4 and len(covered) >= len(words) - 1)


def _clean_title(title: str) -> str:
    title = re.sub(r"^(?:a|an|another|one more|some|the|new|also)\s+", "", title.strip(), flags=re.IGNORECASE)
    # "a review a week before the pilot": the amount belongs to the date, not the title.
    title = re.sub(
        r"\s+(?:\d{1,3}|a|an|one|two|three|four|five|six|seven|eight|nine|ten)\s+(?:(?:business|working)\s+)?"
        r"(?:days?|weeks?|months?)$",
        "",
        title,
        flags=re.IGNORECASE,
    )
    title = re.sub(r"\s+(?:to it|too|as well|here)$", "", title, flags=re.IGNORECASE)
    title = title.strip(" \"'“”‘’-–—:")
    return title[:1].upper() + title[1:] if title else ""
