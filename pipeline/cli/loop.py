"""Commands of the loop: send, watch, status, approve, demo."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import click
from rich.markup import escape
from rich.table import Table

from pipeline.cli.common import ISO_DATE, console, emit_json, err_console, handles_errors, json_option, open_home
from pipeline.loop.service import PollReport, Service


@click.command()
@click.argument("plan_id")
@json_option
@click.pass_context
@handles_errors
def send(ctx: click.Context, plan_id: str, as_json: bool) -> None:
    """Send the current version of PLAN_ID to its contacts from the seller's mailbox.

    The confirming contacts are in To, the others in Cc; the letter PDF and a calendar are attached.
    Sending twice sends once: the email has a fixed Message-ID per plan and version.

    \b
    Example:
      mutualplan add acme.md && mutualplan send acme-northwind-2027
    """
    home = open_home(ctx)
    with Service.open(home) as service:
        entry, report = service.send_plan(plan_id)
    if as_json:
        emit_json({"message_id": entry.message_id, "to": list(entry.to), "cc": list(entry.cc), **report.to_dict()})
        return
    if entry.message_id in report.sent:
        console.print(f"Sent version {entry.version} of {plan_id} to {', '.join(entry.to)}"
                      + (f" (Cc {', '.join(entry.cc)})" if entry.cc else ""), soft_wrap=True)
    elif report.errors:
        for error in report.errors:
            err_console.print(f"[red]error:[/] {escape(error)}", soft_wrap=True)
        raise SystemExit(1)
    else:
        console.print(f"Version {entry.version} of {plan_id} was already sent ({entry.message_id}).")


def _print_report(report: PollReport) -> None:
    if report.fetched or report.handled:
        table = Table(title=f"{report.fetched} fetched, {len(report.handled)} handled", title_justify="left")
        table.add_column("Message")
        table.add_column("Disposition")
        table.add_column("Why")
        for message_id, disposition, reason in report.handled:
            table.add_row(escape(message_id[:60]), disposition, escape(reason))
        console.print(table)
    for message_id in report.sent:
        console.print(f"sent    {message_id}")
    for message_id in report.drafted:
        console.print(f"drafted {message_id}  (waits in the seller's Drafts: `mutualplan approve`)")
    for name in report.shunted:
        console.print(f"[red]shunted[/] {name}: failed 3 times, kept in spool/shunt for a person")
    for note in report.notes:
        console.print(f"note    {escape(note)}", soft_wrap=True)
    for error in report.errors:
        err_console.print(f"[yellow]warning:[/] {escape(error)}", soft_wrap=True)


@click.command()
@click.option("--once", is_flag=True, help="Poll once and exit (for cron or systemd timers).")
@click.option("--interval", type=click.IntRange(min=5), default=60, show_default=True,
              help="Seconds between polls.")
@json_option
@click.pass_context
@handles_errors
def watch(ctx: click.Context, once: bool, interval: int, as_json: bool) -> None:
    """Read the seller's mailbox, act on replies, and send what follows from them.

    Each new message is stored before it is acknowledged, handled exactly once (by its Message-ID),
    and answered in its thread by policy: see `mutualplan status` for what waits on whom. After each
    poll it sends, by policy ([reminders]), reminders to the owners of steps due soon or late (none in a
    plan's first two days), and the seller's weekly digest (on digest_day, 8:00 to 18:00 in the seller's
    time zone).

    \b
    Example:
      mutualplan watch --once --json
      mutualplan watch --interval 120
    """
    home = open_home(ctx)
    while True:
        with Service.open(home) as service:
            report = service.poll()
            service.remind(report)  # reminders and the weekly digest, by policy
        if as_json:
            emit_json(report.to_dict())
        else:
            _print_report(report)
        if once:
            return
        time.sleep(interval)


@click.command()
@click.argument("plan_id")
@json_option
@click.pass_context
@handles_errors
def approve(ctx: click.Context, plan_id: str, as_json: bool) -> None:
    """Send the follow-ups of PLAN_ID that wait in the seller's Drafts (the `review` policy).

    \b
    Example:
      mutualplan status acme-northwind-2027   # version 2 waits on the seller
      mutualplan approve acme-northwind-2027
    """
    home = open_home(ctx)
    with Service.open(home) as service:
        sent = service.approve(plan_id)
    if as_json:
        emit_json({"plan_id": plan_id, "sent": sent})
    elif sent:
        for message_id in sent:
            console.print(f"sent {message_id}")
    else:
        console.print(f"Nothing of {plan_id} waits in Drafts.")


def _fmt(d: str | None) -> str:
    return date.fromisoformat(d).strftime("%a %-d %b %Y") if d else "-"


@click.command()
@click.argument("plan_id", required=False)
@click.option("--today", type=ISO_DATE, default=None,
              help="Count days from this date (YYYY-MM-DD).")
@json_option
@click.pass_context
@handles_errors
def status(ctx: click.Context, plan_id: str | None, today: datetime | None, as_json: bool) -> None:
    """Per plan: the current version, agreed or waiting on whom, the next milestones, held messages; and whether
    replies are authenticated (if not, how to turn it on, with the authserv-id seen on received mail).

    \b
    Example:
      mutualplan status
      mutualplan status acme-northwind-2027 --json
    """
    home = open_home(ctx)
    now = today.date() if today else datetime.now(UTC).date()
    with Service.open(home) as service:
        ids = [plan_id] if plan_id else service.store.plan_ids()
        statuses = [service.status(pid, now) for pid in ids]
        auth = service.authentication()
    if as_json:
        # The home's authentication is shown with every plan's status (one plan's JSON is that plan alone).
        emit_json({"plans": statuses, "authentication": auth} if not plan_id else statuses[0])
        return
    if auth["hint"]:
        console.print(f"[yellow]{escape(auth['hint'])}[/]", soft_wrap=True)
    if not statuses:
        console.print("No plans yet: `mutualplan add PLAN.md`, then `mutualplan send PLAN_ID`.")
    for s in statuses:
        summary = escape(s["summary"])
        console.print(f"[bold]{s['plan_id']}[/]  version {s['version']}  [bold]{summary}[/]", soft_wrap=True)
        if s["confirmed"]:
            console.print(f"  confirmed v{s['version']}: {', '.join(s['confirmed'])}", soft_wrap=True)
        if s["waiting_on"] and ", ".join(s["waiting_on"]) not in s["summary"]:
            console.print(f"  waiting on: {', '.join(s['waiting_on'])}", soft_wrap=True)
        if s["next_milestones"]:
            table = Table(show_header=True, box=None, padding=(0, 2))
            for col in ("#", "Next", "Owner", "Due", "Days"):
                table.add_column(col)
            for m in s["next_milestones"]:
                table.add_row(m["id"], escape(m["title"]), escape(m["owner"]), _fmt(m["due"]),
                              str(m["days_left"]) if m["days_left"] is not None else "-")
            console.print(table)
        for held in s["held"]:
            # The Message-ID is what `mutualplan release` takes.
            line = f"<{held['message_id']}> from {held['from'] or '?'} ({held['received']}): {held['reason']}"
            console.print(f"  [yellow]held[/] {escape(line)}", soft_wrap=True)
        console.print()


@click.command()
@click.option("--fresh", is_flag=True, help="Empty the demo home first if it holds an earlier demo.")
@json_option
@click.pass_context
@handles_errors
def demo(ctx: click.Context, fresh: bool, as_json: bool) -> None:
    """Run the whole loop on a local Maildir: plan out, change requested, version 2, both confirm.

    Makes a home (--home, default ./demo-home) with the example plan, sends version 1, puts the
    prospect's replies in the inbox as they would arrive, runs the watcher, approves the follow-up as
    the seller would, and prints where every letter, email and the archive bundle are.

    \b
    Example:
      mutualplan --home /tmp/demo demo --fresh
    """
    from pipeline.demo import run_demo

    root = (ctx.find_root().obj or {}).get("home") or "demo-home"
    # Paths are printed whole (soft_wrap): a wrapped path cannot be copied.
    echo = None if as_json else (lambda text: console.print(text, soft_wrap=True, markup=False))
    result = run_demo(root, fresh=fresh, echo=echo)
    if as_json:
        emit_json(result)


COMMANDS = [send, watch, approve, status, demo]

