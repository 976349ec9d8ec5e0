"""`mutualplan outbox`: the emails that wait or failed, and cancelling one that can never go."""

from __future__ import annotations

import click
from rich.table import Table

from pipeline.cli.common import console, emit_json, handles_errors, json_option, open_home
from pipeline.loop.service import Service
from pipeline.store import OutboxEntry


def _row(entry: OutboxEntry) -> dict[str, object]:
    return {"message_id": entry.message_id, "plan_id": entry.plan_id, "version": entry.version, "kind": entry.kind,
            "mode": entry.mode, "state": entry.state, "queued": entry.created, "attempts": entry.attempts,
            "recipients": [*entry.to, *entry.cc], "error": entry.error}


@click.command("outbox", short_help="List the emails that wait or failed; cancel one that can never go.")
@click.argument("words", nargs=-1, metavar="[PLAN_ID | cancel MESSAGE_ID]")
@json_option
@click.pass_context
@handles_errors
def outbox(ctx: click.Context, words: tuple[str, ...], as_json: bool) -> None:
    """List the emails that wait or failed; cancel one that can never go.

    Each row: its state (pending, sending: its outcome not known yet, failed: not tried again), kind,
    plan and version, and the error that stopped it. The seller is emailed once about each email that
    failed. `cancel MESSAGE_ID` clears one that waits or failed (state `cancelled`, in the audit log);
    one waiting in your Drafts you delete there.

    \b
    Examples:
      mutualplan outbox
      mutualplan outbox acme-northwind-2027 --json
      mutualplan outbox cancel '<plan.acme-northwind-2027.v1@northwind.example>'
    """
    if len(words) > 2 or (bool(words) and words[0] == "cancel") != (len(words) == 2):
        raise click.UsageError("give a PLAN_ID, or `cancel MESSAGE_ID`, or nothing")
    with Service.open(open_home(ctx)) as service:
        entries = service.outbox(cancel=words[1]) if len(words) == 2 else service.outbox(words[0] if words else None)
    if as_json:
        emit_json({"cancelled" if len(words) == 2 else "emails": [_row(e) for e in entries]})
        return
    if len(words) == 2:
        console.print(f"cancelled {entries[0].message_id}", soft_wrap=True)
        return
    if not entries:
        console.print("Nothing waits or failed.")
        return
    table = Table("state", "kind", "plan", "version", "message", "error")
    for e in entries:
        table.add_row(e.state, e.kind, e.plan_id or "(to you)", str(e.version or ""), e.message_id, e.error or "")
    console.print(table)


COMMANDS = [outbox]
