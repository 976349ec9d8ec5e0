"""Reminders that keep a plan alive, the weekly digest to the seller, and answers to reminders read as replies.

The rules ([reminders] in the settings, and a switch per plan):
- a milestone's owner hears from us `days_before` days before its due date (or later, up to the day itself),
  and once it is overdue: each once per due date, so a moved date is reminded again;
- at most one reminder per plan in any seven days; none for a plan that is declined or closed, not yet sent,
  or switched off, and none for a step that is done or dropped;
- none until the plan's first email has been out for SETTLE (two days), even for a step late or due soon:
  the prospect has only just read the plan;
- on weekdays between 8:00 and 18:00 in the plan's time zone, in the plan's thread, from the seller;
- the digest goes to the seller once a week, on `digest_day` between 8:00 and 18:00 in [seller] timezone (a
  week whose digest day passed with no poll in those hours has none: it never goes late at night or a day late);
  it lists the notices the daily cap held back since the last digest.
A reminder carries our Message-ID scheme (<plan.<id>.v<N>.reminder.<key hash>@domain>), so an answer to it
comes back to its plan; "done" or "we need another week" under it is read as about its milestone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.config import Settings
from pipeline.loop import outbox
from pipeline.loop.service import ANNOUNCING
from pipeline.loop.thread import answered
from pipeline.plan.changes import is_signature_step
from pipeline.plan.ids import seller_message_id
from pipeline.plan.model import Milestone, Plan, Version
from pipeline.plan.timeline import dependents, resolve
from pipeline.render.format import short_date
from pipeline.replies.interpret import Interpretation, local_date, read_reply
from pipeline.replies.message import Incoming
from pipeline.replies.reminder_answer import read_reminder_answer
from pipeline.store import OutboxEntry, Store, utc_iso

OPTION = "reminders"  # the per-plan switch: "off" silences a plan's reminders
PER_PLAN = timedelta(days=7)
SETTLE = timedelta(days=2)  # no reminder until the plan's first email has been out this long
HOURS = range(8, 18)  # a reminder goes out in working hours, in the plan's time zone
DIGEST_HOURS = HOURS  # and the digest in the seller's, on its day
LIVE_STATES = ("open", "agreed")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _created(entry: OutboxEntry) -> str:
    return str(entry.data.get("created", ""))


# --- the switches ---------------------------------------------------------------------------------


def enabled(store: Store, settings: Settings, plan_id: str) -> bool:
    """Whether a plan's owners get reminders: the settings say so and the plan is not switched off."""
    return settings.policy.reminders and store.plan_option(plan_id, OPTION) != "off"


def switch(store: Store, plan_id: str, on: bool, *, at: datetime) -> bool:
    """Switch a plan's reminders on or off; False when it was so already."""
    return store.set_plan_option(plan_id, OPTION, "on" if on else "off", at=at)


# --- who and when ---------------------------------------------------------------------------------


def recipients(plan: Plan, milestone: Milestone) -> tuple[str, ...]:
    """Who owns a step, as addresses: the named contact, else the confirming contacts, else the first contact;
    the seller for the seller's own steps; nobody for a step without an owner."""
    try:
        owner = plan.resolve_owner(milestone.owner)
    except Exception:  # an owner naming nobody: the digest shows the step, no one is emailed
        return ()
    if owner.side == "seller":
        return (plan.seller.email,) if plan.seller.email else ()
    if owner.side not in ("buyer", "joint"):
        return ()
    named = plan.contacts_named(owner.person) if owner.person else ()
    if len(named) == 1:
        return (named[0].email,)
    return tuple(c.email for c in plan.confirmers) or tuple(c.email for c in plan.prospect.contacts[:1])


@dataclass(frozen=True)
class Due:
    """A reminder owed: which step, its date, how many days from today (negative: overdue), to whom."""

    milestone: Milestone
    due: date
    days: int
    when: str  # before | overdue
    to: tuple[str, ...]

    @property
    def key(self) -> str:
        """What makes a reminder once: the step, its date and before/overdue."""
        return f"{self.milestone.id}|{self.due.isoformat()}|{self.when}"


def owed(plan: Plan, today: date, days_before: int, already: set[str]) -> list[Due]:
    """The reminders a plan's steps are owed today, most urgent first: overdue (oldest first), then soonest."""
    dates = resolve(plan)
    out: list[Due] = []
    for m in plan.milestones:
        due = dates[m.id]
        if m.status in ("done", "dropped") or due is None:
            continue
        days = (due - today).days
        when = "overdue" if days < 0 else "before" if days <= days_before else None
        if when is None:
            continue
        item = Due(m, due, days, when, recipients(plan, m))
        if item.to and item.key not in already:
            out.append(item)
    out.sort(key=lambda d: (d.when != "overdue", d.due, d.milestone.number))
    return out


def overview(store: Store, settings: Settings, plan_id: str, now: datetime) -> dict[str, Any]:
    """Whether a plan's reminders are on, what is owed today and what was sent (the `reminders` command)."""
    current = store.current(plan_id)
    assert current is not None  # the caller names a stored plan
    plan = current.plan
    sent = [e for e in store.outbox_entries(plan_id) if e.kind == "reminder"]
    dues = owed(plan, local_date(now, plan.timezone), settings.policy.remind_days_before,
                {str(e.data.get("key")) for e in sent})
    return {
        "plan_id": plan_id,
        "enabled": enabled(store, settings, plan_id),
        "settings": settings.policy.reminders,
        "plan": store.plan_option(plan_id, OPTION) or "on",
        "state": store.plan_state(plan_id),
        "days_before": settings.policy.remind_days_before,
        "owed": [{"milestone": d.milestone.id, "title": d.milestone.title, "due": d.due.isoformat(),
                  "when": d.when, "to": list(d.to)} for d in dues],
        "sent": [{"message_id": e.message_id, "milestone": e.data.get("milestone"), "due": e.data.get("due"),
                  "when": e.data.get("when"), "state": e.state, "queued": e.data.get("created")} for e in sent],
    }


def next_reminder(store: Store, settings: Settings, plan_id: str, now: datetime) -> OutboxEntry | None:
    """The reminder a plan should send now, if any (see the rules at the top)."""
    if store.plan_state(plan_id) not in LIVE_STATES or not enabled(store, settings, plan_id):
        return None
    current = store.current(plan_id)
    if current is None:
        return None
    plan = current.plan
    local = now.astimezone(_zone(plan.timezone))
    if local.weekday() >= 5 or local.hour not in HOURS:
        return None
    entries = store.outbox_entries(plan_id)
    announced = [e for e in entries if e.kind in ANNOUNCING and e.state == "sent"]
    if not announced:
        return None  # the prospect has no plan yet: nothing to remind them of
    if min(_created(e) for e in announced) > utc_iso(now - SETTLE):
        return None  # minutes after the plan went out, a reminder of a late step only reads as noise
    reminders = [e for e in entries if e.kind == "reminder"]
    if any(_created(e) >= utc_iso(now - PER_PLAN) for e in reminders):
        return None
    dues = owed(plan, local.date(), settings.policy.remind_days_before, {str(e.data.get("key")) for e in reminders})
    if not dues:
        return None
    first = dues[0]
    # In the plan's thread: an answer to the latest plan email the prospect has, after its own references.
    last = announced[-1]
    thread = (*last.references, last.message_id)
    return outbox.reminder(current, milestone=first.milestone.id, due=first.due.isoformat(), when=first.when,
                                to=first.to, cc=(), thread=tuple(t.strip("<>") for t in thread))


def queue_reminders(store: Store, settings: Settings, now: datetime) -> list[str]:
    """Queue every reminder due now (one per plan at most); the Message-IDs queued."""
    queued = []
    for plan_id in store.plan_ids():
        entry = next_reminder(store, settings, plan_id, now)
        if entry is not None and store.queue_email(entry, at=now):
            store.audit("reminder queued", at=now, plan_id=plan_id,
                        detail={"message_id": entry.message_id, **{k: entry.data[k] for k in ("milestone", "due",
                                                                                             "when")}})
            queued.append(entry.message_id)
    return queued


# --- the digest -----------------------------------------------------------------------------------


def week_of(when: datetime, timezone: str) -> str:
    """The ISO week a time falls in, where the seller is: 2027-W10."""
    year, week, _ = when.astimezone(_zone(timezone)).isocalendar()
    return f"{year}-W{week:02d}"


def digest(store: Store, now: datetime, timezone: str, *, told_since: str | None = None,
           ) -> dict[str, list[dict[str, Any]]]:
    """What the seller's week looks like: plans waiting on the prospect, overdue steps, slips that move a target,
    held messages, notices held back since `told_since` (default: a week) and drafts to review; every line plain
    data (dates as they are written in the email)."""
    sections: dict[str, list[dict[str, Any]]] = {"waiting": [], "overdue": [], "slips": [], "held": [], "drafts": []}
    since = utc_iso(now - PER_PLAN)
    sections["held_back"] = held_back(store, told_since or since, timezone)
    for plan_id in store.plan_ids():
        state = store.plan_state(plan_id)
        current = store.current(plan_id)
        if current is None or state not in LIVE_STATES:
            continue
        plan = current.plan
        today = local_date(now, plan.timezone)
        entries = store.outbox_entries(plan_id)
        if state == "open":
            _waiting(sections, store, current, entries, today)
        _late(sections, plan, entries, today)
        for m in store.messages(plan_id):
            if m.disposition == "held" and m.received >= since:
                sections["held"].append({"plan_id": plan_id, "sender": m.sender or "", "received": m.received[:10],
                                         "reason": m.reason or ""})
        drafts = [e for e in entries if e.state == "drafted"]
        if drafts:
            sections["drafts"].append({"plan_id": plan_id, "count": len(drafts)})
    return sections


def _waiting(sections: dict[str, list[dict[str, Any]]], store: Store, current: Version,
             entries: list[OutboxEntry], today: date) -> None:
    plan = current.plan
    sent = [e for e in entries if e.version == current.number and e.kind in ("plan", "update") and e.state == "sent"]
    if not sent:
        return
    confirmed = store.confirmations(plan.id, current.number)
    waiting = [c.name for c in plan.confirmers if c.email.lower() not in confirmed]
    if not waiting:
        return
    when = local_date(datetime.fromisoformat(_created(sent[0]).replace("Z", "+00:00")), plan.timezone)
    sections["waiting"].append({"plan_id": plan.id, "prospect": plan.prospect.company, "version": current.number,
                                "sent": short_date(when), "days": (today - when).days, "waiting_on": waiting})


def _late(sections: dict[str, list[dict[str, Any]]], plan: Plan, entries: list[OutboxEntry], today: date) -> None:
    dates = resolve(plan)
    for m in plan.milestones:
        due = dates[m.id]
        if m.status in ("done", "dropped") or due is None or due >= today:
            continue
        reminded = [e for e in entries if e.kind == "reminder" and e.data.get("milestone") == m.id
                    and e.state == "sent"]
        sections["overdue"].append({
            "plan_id": plan.id, "prospect": plan.prospect.company, "id": m.id, "title": m.title, "owner": m.owner,
            "due": short_date(due), "days": (today - due).days,
            "reminded": _created(reminded[-1])[:10] if reminded else "",
        })
        slip = target_slip(plan, m.id, today, dates)
        if slip is not None and plan.target is not None:  # a slip is had only against a target
            sections["slips"].append({
                "plan_id": plan.id, "prospect": plan.prospect.company, "id": m.id, "title": m.title,
                "why": f"due {short_date(due)}, still open", "target": short_date(plan.target),
                "new_target": short_date(slip), "days": (slip - plan.target).days,
            })


def held_back(store: Store, since: str, timezone: str) -> list[dict[str, Any]]:
    """The notices the daily cap kept from the seller since `since` (audit "notice.skipped"): one line per plan,
    sender and kind, with how many, on which days (in `timezone`) and the last one's reason."""
    lines: dict[tuple[str, str, str], dict[str, Any]] = {}
    for plan_id in store.plan_ids():
        for event in store.audit_log(plan_id):
            if event.event != "notice.skipped" or event.at < since:
                continue
            detail = event.detail
            key = (plan_id, str(detail.get("sender") or ""), str(detail.get("about") or ""))
            line = lines.setdefault(key, {"plan_id": plan_id, "sender": key[1], "about": key[2], "count": 0,
                                          "first": event.at, "last": event.at})
            line.update(count=line["count"] + 1, last=event.at, reason=str(detail.get("reason") or ""))
    for line in lines.values():
        first, last = (short_date(local_date(datetime.fromisoformat(line[k].replace("Z", "+00:00")), timezone))
                       for k in ("first", "last"))
        line.update(first=first, last=last, days=first if first == last else f"{first} to {last}")
    return list(lines.values())


def target_slip(plan: Plan, milestone_id: str, today: date, dates: dict[str, date | None] | None = None) -> date | None:
    """The target date an overdue step pushes to, or None when its slip leaves the target where it is.

    An open step cannot finish before today, so it and every step dated relative to it move by its lateness;
    when one of them (before the PO) then falls after the target, the target moves with the latest of them.
    """
    dates = resolve(plan) if dates is None else dates
    milestone = plan.milestone(milestone_id)
    due = dates.get(milestone_id)
    if milestone is None or due is None or plan.target is None or due >= today:
        return None
    late = today - due
    if is_signature_step(milestone):
        return today  # the signature itself is late: the target is past
    moved = [today] if milestone.phase == "before" else []
    for other in dependents(plan, milestone_id):
        step = plan.milestone(other)
        when = dates.get(other)
        if step is not None and when is not None and step.phase == "before" and step.status not in ("done", "dropped"):
            moved.append(when + late)
    latest = max(moved, default=None)
    return latest if latest is not None and latest > plan.target else None


def digest_due(now: datetime, timezone: str, weekday: int) -> bool:
    """Whether `now` is in the digest's hours: its day of the week, 8:00 to 18:00 where the seller is."""
    local = now.astimezone(_zone(timezone))
    return local.weekday() == weekday and local.hour in DIGEST_HOURS


def queue_digest(store: Store, settings: Settings, now: datetime) -> str | None:
    """Queue this week's digest when it is due (and says something); its Message-ID, or None."""
    if not settings.policy.digest or not settings.seller.get("email"):
        return None
    timezone = settings.seller_timezone
    if not digest_due(now, timezone, settings.policy.digest_weekday):
        return None
    week = week_of(now, timezone)
    domain = settings.own_domains[0] if settings.own_domains else None
    message_id = seller_message_id("digest", f"digest|{week}", domain)
    if store.outbox_entry(message_id) is not None:
        return None
    # What the daily cap held back is listed once: since the last digest, else for the week.
    last = store.outbox_entry(seller_message_id("digest", f"digest|{week_of(now - PER_PLAN, timezone)}", domain))
    sections = digest(store, now, timezone, told_since=_created(last) if last is not None else None)
    if not any(sections.values()):
        return None  # a quiet week is not worth an email
    data = {"week": week, "sections": sections, "created": utc_iso(now)}
    store.queue_email(outbox.to_seller("digest", f"digest|{week}", data, domain=domain), at=now)
    return message_id


# --- answers to reminders -------------------------------------------------------------------------


def read_answer(store: Store, incoming: Incoming, plan: Plan, *, received: datetime, ours: str = "") -> Interpretation:
    """A reply read against its plan; an answer to a reminder is read as about the reminder's step. `ours`: the
    text of the emails we sent (replies/echo.py), never read as the sender's words."""
    entry = answered(store, incoming)
    entry = entry if entry is not None and entry.kind == "reminder" else None
    milestone = plan.milestone(str(entry.data.get("milestone"))) if entry is not None else None
    if milestone is None:
        return read_reply(incoming, plan, received=received, ours=ours)
    return read_reminder_answer(incoming, plan, milestone.id, received=received, ours=ours)
