"""Where each plan stands: version, agreed or waiting on whom, next milestones, held messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from pipeline.loop.service import agreed_version
from pipeline.plan.timeline import days_left, resolve
from pipeline.replies.auth import topmost_authserv_id
from pipeline.store import Store

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.loop.parts import PollReport

SEEN = "auth.seen_authserv_id"  # the store's `state` row of the authserv-id last seen on top of received mail


def plan_status(store: Store, plan_id: str, today: date, *, upcoming: int = 3) -> dict[str, Any]:
    """One plan's status as plain data (the CLI prints it as a table or JSON)."""
    current = store.current(plan_id)
    assert current is not None  # Service.status looked the plan up first, with a StoreError when it is not stored
    plan = current.plan
    state = store.plan_state(plan_id)
    confirmed = store.confirmations(plan_id, current.number)
    waiting = [c.email for c in plan.confirmers if c.email.lower() not in confirmed]
    outbox = [e for e in store.outbox_entries(plan_id) if e.version == current.number and e.kind in ("plan", "update")]
    unsent = [e for e in outbox if e.state in ("pending", "sending", "drafted")]
    sent = any(e.state == "sent" for e in outbox)
    agreed = agreed_version(store, plan_id)
    if state == "agreed" and agreed is not None and agreed < current.number:
        summary = (f"mutually agreed on version {agreed}; version {current.number} records progress "
                   f"(steps done), which needs no new confirmation")
    elif state == "agreed":
        summary = f"mutually agreed on version {current.number}"
    elif state in ("declined", "closed"):
        summary = state
    elif unsent and any(e.state == "drafted" for e in unsent):
        summary = f"version {current.number} waits on the seller (in Drafts: send it or `mutualplan approve`)"
    elif unsent:
        summary = f"version {current.number} is queued to send"
    elif not sent and any(e.state == "failed" for e in outbox):
        # Not "not sent yet": it was tried, and will not be again until the seller says so.
        summary = (f"version {current.number} could not be sent (`mutualplan watch` shows why); "
                   f"`mutualplan send {plan_id}` tries again")
    elif not sent:
        summary = f"version {current.number} not sent yet (`mutualplan send {plan_id}`)"
    else:
        summary = f"waiting on {', '.join(waiting)}" if waiting else "waiting"
    if state == "open" and agreed is not None and agreed < current.number:
        # Reopened: the plan was agreed, and a later version changed what was agreed.
        again = " to confirm again" if summary.startswith("waiting on") else ""
        summary = f"version {current.number} changes what was agreed on version {agreed}: {summary}{again}"
    dates = resolve(plan)
    due = {m.id: d for m in plan.milestones if m.status not in ("done", "dropped") and (d := dates[m.id]) is not None}
    nexts = sorted((m for m in plan.milestones if m.id in due), key=lambda m: due[m.id])
    held = [
        {"message_id": m.message_id, "from": m.sender, "received": m.received, "reason": m.reason}
        for m in store.messages(plan_id) if m.disposition == "held"
    ]
    return {
        "plan_id": plan_id,
        "version": current.number,
        "state": state,
        "agreed_version": agreed,
        "summary": summary,
        "confirmed": sorted(confirmed),
        "waiting_on": waiting if state == "open" and sent and not unsent else [],
        "target": plan.target.isoformat() if plan.target else None,
        "days_to_target": days_left(plan.target, today),
        "next_milestones": [
            {"id": m.id, "title": m.title, "owner": m.owner, "due": due[m.id].isoformat(),
             "days_left": days_left(due[m.id], today)}
            for m in nexts[:upcoming]
        ],
        "held": held,
        "outbox": [{"message_id": e.message_id, "kind": e.kind, "version": e.version, "state": e.state}
                   for e in store.outbox_entries(plan_id)],
    }


def note_authserv_id(store: Store, raw_headers: Sequence[tuple[str, str]], report: PollReport | None) -> None:
    """Remember the authserv-id on top of a received message (the seller's own server, most likely) and say it in
    the poll's report when it is new: the value that turns authentication on."""
    seen = topmost_authserv_id(raw_headers)
    if not seen or seen == store.cursor(SEEN):
        return
    store.set_cursor(SEEN, seen)
    if report is not None:
        report.notes.append(f"authentication is off; received mail is stamped by {seen!r}: if that is your mail "
                            f'server, set trusted_authserv_ids = ["{seen}"] in [policy] of mutualplan.toml')


def authentication(store: Store, settings: Settings) -> dict[str, Any]:
    """Whether replies are authenticated, and if not, how to turn it on (with the authserv-id the watcher saw)."""
    trusted = list(settings.policy.trusted_authserv_ids)
    seen = store.cursor(SEEN)
    if trusted:
        return {"on": True, "trusted_authserv_ids": trusted, "seen_authserv_id": seen, "hint": None}
    how = (f'set trusted_authserv_ids = ["{seen}"] in [policy] of mutualplan.toml ({seen!r} stamped the mail '
           "received so far)" if seen else "set trusted_authserv_ids in [policy] of mutualplan.toml to the name your "
           "mail server writes first in the Authentication-Results headers of mail you receive")
    return {"on": False, "trusted_authserv_ids": [], "seen_authserv_id": seen,
            "hint": f"authentication is off: every change, and a confirmation that would agree a plan, waits for "
                    f"your review (`mutualplan release MESSAGE_ID`); to turn it on, {how}"}
