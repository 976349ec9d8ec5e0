"""A team seller's evidence: their scope of the store and the team's archive, opened for one plan of theirs.

`team export` and `team certificate` read these with the home's own functions (pipeline.archive.export,
pipeline.loop.certificate), so a seller's bundle is the one a home with the same plan would write.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.archive import Archive
from pipeline.errors import StoreError
from pipeline.store import Store
from pipeline.team.settings import Seller, Team
from pipeline.team.store import TeamArchive, TeamStore


@contextmanager
def seller_evidence(team: Team, seller_id: str, plan_id: str) -> Iterator[tuple[Store, Archive]]:
    """The seller's store and the team's archive, when `plan_id` is the seller's plan; closed after."""
    seller = team.seller(seller_id)  # an unknown seller is named before the database is reached
    team_store = TeamStore(team.store_url)
    try:
        with team_store.seller_store(seller.scope) as store:
            require_own_plan(team_store, store, seller, plan_id)
            yield store, TeamArchive(team_store)
    finally:
        team_store.close()


def seller_certificate(team: Team, seller_id: str, plan_id: str) -> tuple[str, bytes]:
    """The file name and PDF of the certificate of agreement of a seller's agreed plan, as a home's is made."""
    from pipeline.loop.certificate import on_demand  # the loop is imported only by the command that needs it

    with seller_evidence(team, seller_id, plan_id) as (store, archive):
        return on_demand(store, archive, plan_id)


def require_own_plan(team_store: TeamStore, store: Store, seller: Seller, plan_id: str) -> None:
    """A StoreError naming the seller when `plan_id` is not in their scope (another seller's, or no one's)."""
    if store.has_plan(plan_id):
        return
    mine = store.plan_ids()
    hint = f"{seller.id}'s plans: {', '.join(mine)}" if mine else f"{seller.id} has no plans yet"
    if team_store.plan_owner(plan_id) is not None:
        # Said, not hidden: the one running this reads the whole team's store anyway (docs/team.md, Isolation).
        raise StoreError(f"plan {plan_id} is not seller {seller.id}'s: another seller of the team holds it",
                         hint=f"{hint}; `mutualplan team status --all` shows whose it is")
    raise StoreError(f"seller {seller.id} has no plan {plan_id!r}", hint=hint)
