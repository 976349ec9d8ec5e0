"""The seller's own commands beside the watcher: confirm (on a call), reopen, release, preview."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from pipeline.cli.common import console, emit_json, err_console, handles_errors, json_option, open_home
from pipeline.errors import PipelineError
from pipeline.loop.service import PollReport, Service


def _print_sent(report: PollReport) -> None:
    for message_id in report.sent:
        console.print(f"sent    {message_id}", soft_wrap=True)
    for message_id in report.drafted:
        console.print(f"drafted {message_id}  (waits in your Drafts: `mutualplan preview`, then `approve`)",
                      soft_wrap=True)
    for error in report.errors:
        err_console.print(f"[yellow]warning:[/] {escape(error)}", soft_wrap=True)


def _sent(report: PollReport) -> dict[str, Any]:
    return {"sent": report.sent, "drafted": report.drafted, "errors": report.errors}


# --- confirm ----------------------------------------------------------------------------------------


@click.command("confirm", short_help="Record a confirmation a contact gave on a call, as the seller's word.")
@click.argument("plan_id")
@click.option("--contact", required=True, metavar="EMAIL", help="The confirming contact who confirmed.")
@click.option("--version", "version", type=int, default=None, metavar="N",
              help="The version they confirmed (default: the current one; only the current one counts).")
@click.option("--note", required=True, metavar="TEXT", help="What was said, when: kept in the audit log and archive.")
@json_option
@click.pass_context
@handles_errors
def confirm(ctx: click.Context, plan_id: str, contact: str, version: int | None, note: str, as_json: bool) -> None:
    """Record a confirmation a contact gave on a call, as the seller's word.

    It counts as their confirming reply would: for the current version, from a confirming contact. It is
    recorded as the seller's (not an email), with the note and the time; `history` and the archive bundle
    say "recorded by the seller on a call: NOTE". The last confirmation makes the plan agreed and sends
    everyone the agreed email, as the watcher does.

    \b
    Example:
      mutualplan confirm acme-northwind-2027 --contact raj.patel@acme.example \\
        --note "Raj confirmed version 2 on our call of 14 Jan"
    """
    with Service.open(open_home(ctx)) as service:
        outcome, report = service.confirm_on_call(plan_id, contact, note=note, version=version)
        state = service.store.plan_state(plan_id)
    if as_json:
        emit_json({"plan_id": plan_id, "version": outcome.version, "contact": contact.strip().lower(),
                   "disposition": outcome.disposition, "reason": outcome.reason, "state": state, **_sent(report)})
        return
    console.print(f"Recorded: {contact.strip().lower()} confirmed version {outcome.version} of [bold]{plan_id}[/] "
                  "on a call (the seller's word).", soft_wrap=True)
    if outcome.disposition == "agreed":
        console.print(f"[bold green]Agreed:[/] {escape(outcome.reason)}.", soft_wrap=True)
    else:
        rest = outcome.reason.split("; ", 1)[-1]
        console.print(f"{rest[:1].upper()}{rest[1:]}.", soft_wrap=True, markup=False)
    _print_sent(report)


# --- reopen -----------------------------------------------------------------------------------------


@click.command("reopen", short_help="Reopen a plan the prospect declined.")
@click.argument("plan_id")
@click.option("--note", metavar="TEXT", help="Why: kept in the audit log.")
@json_option
@click.pass_context
@handles_errors
def reopen(ctx: click.Context, plan_id: str, note: str | None, as_json: bool) -> None:
    """Reopen a plan the prospect declined: declined becomes open, audited with the note.

    Replies are acted on again; a message held while it was declined can then be released.

    \b
    Example:
      mutualplan reopen acme-northwind-2027 --note "Dana is back after the budget freeze"
    """
    with Service.open(open_home(ctx)) as service:
        state = service.reopen(plan_id, note=note)
    if as_json:
        emit_json({"plan_id": plan_id, "from": "declined", "state": state})
        return
    console.print(f"Reopened [bold]{plan_id}[/]: declined -> {state}.", soft_wrap=True)


# --- release ----------------------------------------------------------------------------------------


@click.command("release", short_help="Act on a message the watcher held, with the hold that stopped it lifted.")
@click.argument("message_id")
@json_option
@click.pass_context
@handles_errors
def release(ctx: click.Context, message_id: str, as_json: bool) -> None:
    """Act on a message the watcher held, with the hold that stopped it lifted.

    MESSAGE_ID is as `mutualplan status` lists it. A release lifts a hold that waits on you: throttled,
    unauthenticated sender (with no trusted_authserv_ids set, every change, decline and agreeing
    confirmation waits here, and a plan typed in an email not proven yours), changes that crossed a newer
    version, a change to the agreed plan, a suspected loop of replies sent at once. A sender
    outside the plan, or a declined plan, is released once you added them or reopened it. Other holds
    are refused with what to do instead. The message is handled as if new and the release audited.

    \b
    Example:
      mutualplan status acme-northwind-2027      # held: <r2.dana@acme.example> ... mutually agreed ...
      mutualplan release "<r2.dana@acme.example>"
    """
    with Service.open(open_home(ctx)) as service:
        released, report = service.release(message_id)
    outcome = released.outcome
    if as_json:
        emit_json({"message_id": released.message_id, "hold": released.hold, "lifted": released.lifted,
                   "was": released.was, "was_reason": released.was_reason, "disposition": outcome.disposition,
                   "reason": outcome.reason, "plan_id": outcome.plan_id, "version": outcome.version,
                   "then": released.then or None, **_sent(report)})
        return
    how = "lifted" if released.lifted else "no longer holds"
    console.print(f"Released {released.message_id} ({released.hold}: {how}).", soft_wrap=True)
    console.print(f"[bold]{outcome.disposition}[/]: {escape(outcome.reason)}", soft_wrap=True)
    if released.then:
        console.print(f"  {released.then}", soft_wrap=True, markup=False)
    _print_sent(report)


# --- preview ----------------------------------------------------------------------------------------


@click.command("preview", short_help="Show the emails of a plan that wait for your review; edit or drop the ask.")
@click.argument("plan_id")
@click.option("--ask", "asks", multiple=True, metavar="TEXT",
              help="Replace the suggested ask of the follow-up that waits (repeat for several).")
@click.option("--no-ask", is_flag=True, help="Drop the suggested ask of the follow-up that waits.")
@json_option
@click.pass_context
@handles_errors
def preview(ctx: click.Context, plan_id: str, asks: tuple[str, ...], no_ask: bool, as_json: bool) -> None:
    """Show the emails of a plan that wait for your review; edit or drop the ask.

    Each is rendered as it would go (recipients, subject, text, attachments with sizes); nothing is
    sent or kept. --ask or --no-ask changes the follow-up's suggested ask before `approve`; a draft
    already in your Drafts is replaced by the edited one.

    \b
    Example:
      mutualplan preview acme-northwind-2027
      mutualplan preview acme-northwind-2027 --ask "Could Raj join the pilot review on 8 Mar?"
      mutualplan preview acme-northwind-2027 --no-ask && mutualplan approve acme-northwind-2027
    """
    if asks and no_ask:
        raise PipelineError("--ask and --no-ask cannot be used together", hint="give new asks, or drop them")
    with Service.open(open_home(ctx)) as service:
        edited = service.edit_ask(plan_id, list(asks)) if asks or no_ask else None
        drafts = service.preview(plan_id)
    if as_json:
        emit_json({"plan_id": plan_id, "drafts": [d.to_dict() for d in drafts],
                   "edited": None if edited is None else {"message_id": edited.draft.message_id,
                                                          "asks": list(edited.draft.asks),
                                                          "replaced_draft": edited.replaced}})
        return
    if edited is not None:
        _print_edit(edited)
    if not drafts:
        console.print(f"Nothing of {plan_id} waits for your review.")
    for draft in drafts:
        _print_draft(draft)


def _print_edit(edited: Any) -> None:
    what = "dropped" if not edited.draft.asks else "now: " + " / ".join(edited.draft.asks)
    console.print(f"The suggested ask of {edited.draft.message_id} is {what}", soft_wrap=True, markup=False)
    if edited.replaced:
        console.print("The edit applies to what `approve` sends: the old draft in your Drafts was replaced by the "
                      "edited one.", soft_wrap=True)
    else:
        console.print("The edit applies to what is drafted and what `approve` sends.", soft_wrap=True)
    console.print()


def _print_draft(draft: Any) -> None:
    where = "in your Drafts: `approve` sends it as it is there, with any edits you made to it" \
        if draft.state == "drafted" else "queued: the next `watch` puts it in your Drafts"
    console.print(f"[bold]{draft.message_id}[/]  {draft.kind}, version {draft.version} ({where})", soft_wrap=True)
    head = Table(show_header=False, box=None, padding=(0, 1))
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    head.add_row("To", escape(", ".join(draft.to)))
    if draft.cc:
        head.add_row("Cc", escape(", ".join(draft.cc)))
    head.add_row("Subject", escape(draft.subject))
    for item in draft.attachments:
        head.add_row("Attached", escape(f"{item.name} ({item.content_type}, {_size(item.size)})"))
    console.print(head)
    console.rule(style="dim")
    console.print(draft.text.rstrip(), soft_wrap=True, markup=False, highlight=False)
    console.rule(style="dim")
    console.print()


def _size(size: int) -> str:
    return f"{size:,} bytes" if size < 1024 else f"{size / 1024:,.1f} KB"


COMMANDS = [confirm, reopen, release, preview]
