"""Where each plan stands: version, agreed or waiting on whom, next milestones, held messages."""

from __future__ import annotations

from datetime import date
from typing import Any

from pipeline.loop.service import agreed_version
from pipeline.plan.timeline import days_left, resolve
from pipeline.store import Store


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
