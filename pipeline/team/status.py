"""`team status`: every plan of every seller (agreed, waiting on whom, slipping steps) and each mailbox's health."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from pipeline.loop.status import plan_status
from pipeline.team.settings import Seller, Team
from pipeline.team.store import TeamStore


def seller_status(team_store: TeamStore, seller: Seller, today: date) -> dict[str, Any]:
    """One seller's plans, read from their scope only, and their mailbox's health."""
    with team_store.seller_store(seller.scope) as store:
        plans = [_plan(store, plan_id, today) for plan_id in store.plan_ids()]
    return {"seller": seller.id, "name": seller.settings.seller.get("name"), "active": seller.active,
            "mailbox": asdict(team_store.health(seller.id)), "plans": plans}


def team_status(team: Team, today: date, *, seller: str | None = None) -> dict[str, Any]:
    """The whole team (an admin's view), or one seller's own plans when `seller` is given."""
    chosen = [team.seller(seller)] if seller else list(team.sellers)
    team_store = TeamStore(team.store_url)
    try:
        return {"sellers": [seller_status(team_store, s, today) for s in chosen]}
    finally:
        team_store.close()


def _plan(store: Any, plan_id: str, today: date) -> dict[str, Any]:
    full = plan_status(store, plan_id, today, upcoming=1000)
    slipping = [m for m in full["next_milestones"] if m["days_left"] is not None and m["days_left"] < 0]
    return {"plan_id": plan_id, "version": full["version"], "state": full["state"],
            "agreed": full["state"] == "agreed", "summary": full["summary"], "waiting_on": full["waiting_on"],
            "slipping": slipping, "held": len(full["held"])}
