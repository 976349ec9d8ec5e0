"""What the seller records by command beside the watcher: a confirmation given on a call, a declined plan reopened.

Both write in one transaction under the plan's lock, as the watcher does; a confirmation goes through the very
function a confirming reply goes through (act.confirm_version), so the last one makes the plan agreed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.errors import StoreError
from pipeline.loop import act
from pipeline.store import SELLER_MARK, utc_iso

if TYPE_CHECKING:
    from pipeline.loop.parts import Parts
    from pipeline.plan.model import Plan, Version
    from pipeline.store import Store


@dataclass(frozen=True)
class Thread:
    """The email a message answers, as outbox.agreed reads it: its Message-ID and its references."""

    message_id: str
    references: tuple[str, ...] = ()


def seller_of(parts: Parts, plan: Plan) -> str:
    """Who the seller is, for the audit log: the plan's seller, else the home's."""
    return (plan.seller.email or str(parts.settings.seller.get("email", "")) or "seller").lower()


def confirm_on_call(parts: Parts, plan_id: str, email: str, *, note: str, version: int | None = None) -> act.Outcome:
    """Record a confirming contact's confirmation given on a call, as the seller's word; the last one makes the plan
    agreed (its state, and the agreed email queued to everyone) exactly as a confirming reply does."""
    note = " ".join(note.split())
    if not note:
        raise StoreError("the note is empty", hint="say what was said and when, e.g. --note 'confirmed on the "
                         "call of 12 Jan'")
    store = parts.store
    with store.transaction():
        store.lock_plan(plan_id)
        current = _current(store, plan_id)
        _check_open(store, plan_id, "a confirmation")
        _check_version(current, version)
        plan = current.plan
        contact = plan.contact(email.strip())
        if contact is None or not contact.confirms:
            who = ", ".join(c.email for c in plan.confirmers) or "none: mark one `confirms: true` in the plan"
            raise StoreError(f"{email} is not a confirming contact of {plan_id}",
                             hint=f"the confirming contacts: {who}")
        given = store.confirmations(plan_id, current.number).get(contact.email.lower())
        if given is not None:
            raise StoreError(f"{contact.email} confirmed version {current.number} of {plan_id} already ({given})",
                             hint="`mutualplan status` shows who the plan waits on")
        at = parts.clock()
        detail = {"recorded_by": seller_of(parts, plan), "note": note, "given": "on a call"}
        return act.confirm_version(parts, current, contact.email, f"{SELLER_MARK}{utc_iso(at)}", at=at,
                                   reply=_version_thread(store, current), detail=detail)


def reopen(parts: Parts, plan_id: str, *, note: str | None = None) -> str:
    """Reopen a plan the prospect declined (declined -> open, audited with the seller and the note)."""
    store = parts.store
    with store.transaction():
        store.lock_plan(plan_id)
        current = _current(store, plan_id)
        state = store.plan_state(plan_id)
        if state != "declined":
            raise StoreError(f"plan {plan_id} is {state}, not declined: there is nothing to reopen",
                             hint="reopen is for a plan the prospect declined; `mutualplan status` shows its state")
        detail = {"reopened_by": seller_of(parts, current.plan), "version": current.number}
        if note and note.strip():
            detail["note"] = " ".join(note.split())
        store.set_plan_state(plan_id, "open", at=parts.clock(), detail=detail)
    return "open"


def _current(store: Store, plan_id: str) -> Version:
    current = store.current(plan_id)
    if current is None:
        ids = store.plan_ids()
        raise StoreError(f"no plan {plan_id!r} in the store",
                         hint="stored plans: " + ", ".join(ids) if ids else "add one with `mutualplan add PLAN.md`")
    return current


def _check_open(store: Store, plan_id: str, what: str) -> None:
    state = store.plan_state(plan_id)
    if state == "declined":
        raise StoreError(f"plan {plan_id} is declined: {what} does not count",
                         hint=f"if the prospect is back, `mutualplan reopen {plan_id}` first")
    if state == "closed":
        raise StoreError(f"plan {plan_id} is closed: {what} does not count",
                         hint="a closed plan keeps its last version")


def _check_version(current: Version, version: int | None) -> None:
    if version is None or version == current.number:
        return
    if version < 1 or version > current.number:
        raise StoreError(f"plan {current.plan_id} has no version {version}",
                         hint=f"its current version is {current.number}")
    raise StoreError(f"version {version} of {current.plan_id} is not current: version {current.number} is",
                     hint=f"a confirmation counts for the current version only; if they confirmed version "
                     f"{current.number}, leave out --version")


def _version_thread(store: Store, current: Version) -> Thread | None:
    """The email the current version went out in (the agreed email answers it), if it went out."""
    sent = [e for e in store.outbox_entries(current.plan_id)
            if e.version == current.number and e.kind in ("plan", "update") and e.state == "sent"]
    return Thread(sent[-1].message_id, sent[-1].references) if sent else None
