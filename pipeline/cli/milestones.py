"""Commands on a plan's progress: mark a step done, and switch a plan's reminders on or off."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from pipeline.app import settings_of, watcher_for
from pipeline.cli.common import console, emit_json, handles_errors, json_option, open_home
from pipeline.errors import ChangeError, StoreError
from pipeline.outbox import OutboxEntry
from pipeline.plan.changes import apply as apply_changes
from pipeline.plan.model import Change
from pipeline.plan.timeline import resolve
from pipeline.reminders import OPTION, enabled, owed, switch
from pipeline.replies.interpret import local_date
from pipeline.store import Store
from pipeline.watcher import PollReport


def _plan(store: Store, plan_id: str) -> Any:
    current = store.current(plan_id)
    if current is None:
        ids = store.plan_ids()
        raise StoreError(f"no plan {plan_id!r} in the store",
                         hint=f"known plans: {', '.join(ids)}" if ids else "add one with `mutualplan add PLAN.md`")
    return current


@click.command("done", short_help="Mark a step of a plan done: a new version with its status done.")
@click.argument("plan_id")
@click.argument("milestone")
@click.option("--send", is_flag=True, help="Send the new version to the prospect's people now.")
@json_option
@click.pass_context
@handles_errors
def done(ctx: click.Context, plan_id: str, milestone: str, send: bool, as_json: bool) -> None:
    """Mark MILESTONE of PLAN_ID done, as the seller: the next version, with that step's status done.

    Reminders stop for it, and the digest stops counting it as late. The new version is only stored unless
    --send sends it (the letter opens with what changed); a done step needs no new confirmation.

    \b
    Example:
      mutualplan done acme-northwind-2027 M3
      mutualplan done acme-northwind-2027 M3 --send --json
    """
    home = open_home(ctx)
    seller = str(settings_of(home).seller.get("email", ""))
    with watcher_for(home) as watcher:
        store = watcher.store
        current = _plan(store, plan_id)
        state = store.plan_state(plan_id)
        if state in ("declined", "closed"):
            raise StoreError(f"plan {plan_id} is {state}; nothing changes", hint="a closed plan keeps its last version")
        key = milestone.strip().upper().lstrip("#")
        key = f"M{key}" if key.isdigit() else key
        step = current.plan.milestone(key)
        if step is not None and step.status == "done":
            raise ChangeError(f"{step.id} ({step.title}) is done already in version {current.number}")
        now = watcher.clock()
        change = Change(op="status", milestone=key, status="done")
        new_plan = apply_changes(current.plan, [change], today=local_date(now, current.plan.timezone))
        version = store.add_version(new_plan, author=seller or current.plan.seller.email, reason="seller marked done",
                                    changes=[change], created=now, expect_number=current.number + 1)
        report = PollReport()
        if send:
            entry = OutboxEntry.plan(version)
            store.queue_email(entry, at=now)
            watcher.flush(report, drafts=False)
    title = new_plan.milestone(key).title  # type: ignore[union-attr]
    if as_json:
        emit_json({"plan_id": plan_id, "milestone": key, "title": title, "version": version.number,
                   "sent": report.sent, "errors": report.errors})
        return
    console.print(f"{key} ({title}) is done: version {version.number} of {plan_id}.", soft_wrap=True)
    for message_id in report.sent:
        console.print(f"sent {message_id}")
    for error in report.errors:
        console.print(f"[yellow]warning:[/] {error}", soft_wrap=True)


@click.command("reminders", short_help="Switch a plan's reminders on or off; show what they owe today.")
@click.argument("plan_id")
@click.option("--on/--off", "on", default=None, help="Switch the plan's reminders on or off.")
@json_option
@click.pass_context
@handles_errors
def reminders_command(ctx: click.Context, plan_id: str, on: bool | None, as_json: bool) -> None:
    """Show (or with --on/--off, set) whether PLAN_ID's step owners get reminders, and what is owed today.

    Reminders go a few days before a step's due date and when it is late, one a week per plan at most;
    [reminders] in the settings turns them off for every plan.

    \b
    Example:
      mutualplan reminders acme-northwind-2027
      mutualplan reminders acme-northwind-2027 --off
    """
    home = open_home(ctx)
    settings = settings_of(home)
    now = datetime.now(UTC)
    with home.open_store() as store:
        current = _plan(store, plan_id)
        if on is not None:
            switch(store, plan_id, on, at=now)
        plan = current.plan
        today = local_date(now, plan.timezone)
        entries = store.outbox_entries(plan_id)
        sent = [e for e in entries if e.kind == "reminder"]
        dues = owed(plan, today, settings.policy.remind_days_before, {str(e.data.get("key")) for e in sent})
        dates = resolve(plan)
        data = {
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
    if as_json:
        emit_json(data)
        return
    why = "on" if data["enabled"] else ("off in the settings" if not settings.policy.reminders else "off for this plan")
    console.print(f"Reminders for {plan_id}: [bold]{why}[/] ({data['days_before']} days before a due date, and when "
                  "late; one a week at most)", soft_wrap=True)
    for item in data["owed"]:
        day = dates[item["milestone"]]
        console.print(f"  owed   {item['milestone']} {item['title']} ({item['when']}, due {day}) to "
                      f"{', '.join(item['to'])}", soft_wrap=True)
    for item in data["sent"]:
        console.print(f"  {item['state']:<6} {item['milestone']} ({item['when']}, due {item['due']}) "
                      f"queued {item['queued']}", soft_wrap=True)


COMMANDS = [done, reminders_command]
