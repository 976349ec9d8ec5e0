"""Commands on a plan's progress: mark a step done, and switch a plan's reminders on or off."""

from __future__ import annotations

import click
from rich.markup import escape

from pipeline.cli.common import console, emit_json, handles_errors, json_option, open_home
from pipeline.loop.service import Service
from pipeline.plan.timeline import resolve


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
      mutualplan done acme-northwind-2027 M4 --send --json   # and send that version now
    """
    with Service.open(open_home(ctx)) as service:
        seller = str(service.parts.settings.seller.get("email", ""))
        version = service.mark_done(plan_id, milestone, author=seller)
        report = service.send_version(version) if send else None
    key = version.changes[0].milestone or milestone
    step = version.plan.milestone(key)
    title = step.title if step is not None else key
    sent, errors = (report.sent, report.errors) if report is not None else ([], [])
    if as_json:
        emit_json({"plan_id": plan_id, "milestone": key, "title": title, "version": version.number,
                   "sent": sent, "errors": errors})
        return
    console.print(escape(f"{key} ({title}) is done: version {version.number} of {plan_id}."), soft_wrap=True)
    for message_id in sent:
        console.print(f"sent {message_id}")
    for error in errors:
        console.print(f"[yellow]warning:[/] {escape(error)}", soft_wrap=True)


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
    with Service.open(open_home(ctx)) as service:
        data = service.reminders(plan_id, on)
        dates = resolve(service.current(plan_id).plan)
    if as_json:
        emit_json(data)
        return
    why = "on" if data["enabled"] else ("off in the settings" if not data["settings"] else "off for this plan")
    console.print(f"Reminders for {plan_id}: [bold]{why}[/] ({data['days_before']} days before a due date, and when "
                  "late; one a week at most)", soft_wrap=True)
    for item in data["owed"]:
        day = dates[item["milestone"]]
        line = f"{item['milestone']} {item['title']} ({item['when']}, due {day}) to {', '.join(item['to'])}"
        console.print(f"  owed   {escape(line)}", soft_wrap=True)
    for item in data["sent"]:
        console.print(f"  {item['state']:<6} {item['milestone']} ({item['when']}, due {item['due']}) "
                      f"queued {item['queued']}", soft_wrap=True)


COMMANDS = [done, reminders_command]
