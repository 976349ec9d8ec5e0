"""Changes of date a clause asks for: a new target date, or a step moved to a date or by an amount of time.

Each reader returns True when the clause made its change, False when it asked for one that cannot be mapped
(the seller reads it), and None when the clause asks for no such change.
"""

from __future__ import annotations

import re
from datetime import date

from pipeline.plan.model import Change
from pipeline.plan.timeline import in_window
from pipeline.replies.dates import DateMention, Shift, apply_shift, find_dates, find_shifts
from pipeline.replies.lexicon import (
    CONDITIONAL_START,
    MOVE_HINT,
    MOVE_NEGATED,
    MOVE_VERB,
    NEGATION,
    PRONOUN,
    TARGET,
    UNSURE_QUESTION,
)
from pipeline.replies.scope import Scope


def read_retarget(scope: Scope, clause: str, default: str | None, context: str | None) -> bool | None:
    """A new target (signature) date: "let's make April 15 the target date", "we will sign on May 3"."""
    target_words = TARGET.search(clause)
    sign_will = scope.parties.sign_will.search(clause)
    if not (target_words or sign_will):
        return None
    mentions = [m for m in scope.matcher.mentions(clause) if m.resolved != scope.signature]
    if target_words is None and mentions:
        return None
    if CONDITIONAL_START.search(clause) or UNSURE_QUESTION.search(clause):
        return False
    if sign_will and not target_words and NEGATION.search(clause):
        return False
    dates = [d for d in find_dates(clause, scope.today, day_first=scope.day_first, month=scope.month)]
    exact = [d for d in dates if d.value]
    current = scope.plan.target
    new: date | None = None
    if exact:
        candidates = [d.value for d in exact if d.value != current]
        if len(set(candidates)) == 1:
            new = candidates[0]
        elif not candidates:
            return True if target_words is None else None
        else:
            return False
    else:
        shifts = [x for x in find_shifts(clause) if x.days is not None]
        moving = re.search(r"\b(?:move|push|shift|delay|postpone|slip|bring|pull|extend)\w*\b", clause, re.I)
        if shifts and current and target_words and moving:
            new = apply_shift(current, shifts[0])
    if new is None:
        return False if (target_words and MOVE_VERB.search(clause)) or dates or sign_will else None
    if new == current:
        return True
    if not in_window(new, scope.today):
        return False  # "back 999 months": asked, but never a date to apply
    scope.emit(Change(op="retarget", target=new.isoformat()))
    return True


def read_move(scope: Scope, clause: str, default: str | None, context: str | None) -> bool | None:
    """A step moved: to a date ("move the demo to Feb 17"), by an amount ("push the pilot back a week")."""
    verb = MOVE_VERB.search(clause) or _does_on(scope, clause)
    hint = MOVE_HINT.search(clause)
    dates = find_dates(clause, scope.today, day_first=scope.day_first, month=scope.month)
    shifts = [x for x in find_shifts(clause, skip=[(d.start, d.end) for d in dates])]
    if not (verb or hint) or not (dates or shifts):
        if (
            (verb or hint)
            and scope.matcher.mentions(clause)
            and re.search(
                r"\b(?:move|push|shift|reschedul\w*|postpon\w*|delay\w*|bring forward|pull in|later|earlier)\b",
                clause,
                re.IGNORECASE,
            )
        ):
            return False  # asks to move a step but says not where to
        return None
    if MOVE_NEGATED.search(clause) and not re.search(
        r"\b(?:doesn't|does not|won't|will not|can't|cannot)\s+work", clause, re.IGNORECASE
    ):
        return None
    if CONDITIONAL_START.search(clause) or UNSURE_QUESTION.search(clause):
        return False
    use_default = bool(PRONOUN.search(clause) or context or not scope.matcher.mentions(clause))
    ids, unclear = scope.targets(clause, default, allow_default=use_default)
    if unclear:
        return False
    if not ids:
        ids = _by_old_date(scope, dates)
        if not ids:
            return False
    relative = scope.relative_to_anchor(clause)
    if relative is False:
        return False
    made = False
    for mid in ids:
        current = scope.due.get(mid)
        new = _new_date(current, relative, dates, shifts, scope.today)
        if new is None:
            return False
        if not in_window(new, scope.today):
            return False  # before the reply, or past the window a reply may move a plan in
        if new == current:
            continue
        if scope.is_target_step(mid):
            scope.emit(Change(op="retarget", target=new.isoformat()))
        else:
            scope.emit(Change(op="move", milestone=mid, due=new.isoformat()))
        made = True
    return True if made or ids else None


def _does_on(scope: Scope, clause: str) -> bool:
    """ "<seller> can demo on the 12th": a party doing the step on a date is the step's new date."""
    for m in re.finditer(r"\b(?:can|could|will|'ll|’ll)\s+(?P<step>[\w-]+)\s+(?:on|by)\b", clause, re.IGNORECASE):
        words = clause[: m.start()].split()
        subject = words[-1].lower().strip(",") if words else ""
        if subject in scope.matcher.subjects and scope.matcher.named(clause):
            return True
    return False


def _new_date(
    current: date | None,
    relative: date | bool | None,
    dates: list[DateMention],
    shifts: list[Shift],
    today: date | None = None,
) -> date | None:
    """Where a step moves: relative to another, to the one new date named, or by the one amount; None if unclear."""
    exact = [d for d in dates if d.value]
    if isinstance(relative, date):
        return relative
    if exact:
        others = [d.value for d in exact if d.value != current]
        if len(set(others)) != 1 or any(not d.value for d in dates):
            return None
        return others[0]
    if dates:
        return None  # only vague dates ("mid-April")
    known = [x for x in shifts if x.days is not None]
    if len(known) != 1 or current is None:
        return None
    if known[0].more and today and current < today:
        current = today  # "we need another week" for a step already late: a week from now
    return apply_shift(current, known[0])


def _by_old_date(scope: Scope, dates: list[DateMention]) -> list[str]:
    """ "Feb 10 doesn't work; Feb 17 does": the one step due on the first date named."""
    exact = [d.value for d in dates if d.value]
    if len(exact) < 2:
        return []
    matches = [mid for mid, when in scope.due.items() if when == exact[0]]
    return matches if len(matches) == 1 else []
