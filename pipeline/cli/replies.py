"""Commands on replies: parse-reply shows what the pipeline would read in an email, changing nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from pipeline.cli.common import console, emit_json, handles_errors, home_option, json_option
from pipeline.cli.plans import home_plan_defaults
from pipeline.errors import PipelineError, ReplyError
from pipeline.plan.model import Plan
from pipeline.plan.source import parse_plan
from pipeline.replies.interpret import Interpretation, read_reply
from pipeline.replies.message import Incoming

MAX_EML_BYTES = 50 * 1024 * 1024


def load_plan(source: str, home: str | None = None) -> Plan:
    """The plan a reply is read against: a plan file, else the current version of the stored plan of that id."""
    path = Path(source)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PipelineError(f"{source}: cannot read it ({exc})", hint="a plan is a UTF-8 Markdown file") from None
        return parse_plan(text, file=source, defaults=home_plan_defaults())
    from pipeline.home import Home, resolve_home

    found = Home(resolve_home(home))
    ids: list[str] = []
    if found.exists():
        with found.open_store() as store:
            current = store.current(source)
            if current is not None:
                return current.plan
            ids = store.plan_ids()
    raise PipelineError(
        f"{source}: no such plan file, and no stored plan of that id",
        hint="give the path of the plan's .md file the reply answers, e.g. plans/acme.md, or a stored plan's id"
        + (f"; stored plans: {', '.join(ids)}" if ids else ""),
    )


def read_eml(path: str) -> bytes:
    """The raw bytes of an .eml file, bounded."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_EML_BYTES + 1)
    except FileNotFoundError:
        raise ReplyError(f"{path}: no such file", hint="give the path of a saved email (.eml)") from None
    except OSError as exc:
        raise ReplyError(f"{path}: cannot read it ({exc})") from None
    if len(raw) > MAX_EML_BYTES:
        raise ReplyError(f"{path}: larger than {MAX_EML_BYTES // (1024 * 1024)} MB", hint="is this an email?")
    if not raw.strip():
        raise ReplyError(f"{path}: the file is empty", hint="save the whole message, headers included (.eml)")
    return raw


@click.command("parse-reply")
@click.argument("plan_source", metavar="PLAN")
@click.argument("eml", metavar="REPLY.eml")
@click.option(
    "--seller-domain",
    "domains",
    multiple=True,
    metavar="DOMAIN",
    help="A domain our own Message-IDs use (default: the plan's seller's); repeat for several.",
)
@json_option
@click.pass_context
@handles_errors
def parse_reply(ctx: click.Context, plan_source: str, eml: str, domains: tuple[str, ...], as_json: bool) -> None:
    """Show what the pipeline reads in REPLY.eml as an answer to PLAN: who sent it, what kind of message it
    is, whether it confirms, the changes it asks for and what goes to the seller. Nothing is changed.

    PLAN is a plan file, or the id of a stored plan (its current version, which is what replies answer).

    Relative dates ("next Friday", "a week later") count from the reply's Date, in the plan's timezone;
    a message without a usable Date counts from now.

    \b
    Example:
      mutualplan parse-reply plans/acme.md reply.eml
      mutualplan parse-reply plans/acme.md reply.eml --json | jq '.changes'
      mutualplan parse-reply acme-northwind-2027 reply.eml
    """
    plan = load_plan(plan_source, home_option(ctx))
    raw = read_eml(eml)
    own = domains or ((plan.seller.domain,) if plan.seller.email else ())
    message = Incoming.from_bytes(raw, own_domains=own)
    result = read_reply(message, plan, received=datetime.now(UTC))
    if as_json:
        emit_json(result.to_dict())
        return
    _print(result, message)


def _print(result: Interpretation, message: Incoming) -> None:
    console.print(f"[bold]{result.intent}[/]  {_who(result)}  [dim]{result.kind}[/]", soft_wrap=True)
    if result.kind != "human":
        console.print(f"[dim]not acted on: {escape(message.kind_reason or result.kind)}[/]", soft_wrap=True)
    if result.confirms:
        confirmed = "the whole plan" if result.confirms == "all" else ", ".join(result.confirms)
        console.print(f"confirms: {escape(confirmed)}", soft_wrap=True)
    if result.changes:
        table = Table(show_header=True, header_style="bold", box=None)
        for column in ("change", "milestone", "what"):
            table.add_column(column)
        for change in result.changes:
            data = change.to_dict()
            what = ", ".join(f"{k} {v}" for k, v in data.items() if k not in ("op", "milestone") and v is not None)
            table.add_row(change.op, change.milestone or "", escape(what))
        console.print(table)
    for sentence in result.unresolved:
        console.print(f"[yellow]for the seller:[/] {escape(sentence)}", soft_wrap=True, highlight=False)
    if result.text:
        console.print("[dim]---[/]")
        console.print(result.text, markup=False, soft_wrap=True)


def _who(result: Interpretation) -> str:
    if not result.sender:
        return "[red]no readable sender[/]"
    mark = "" if result.authorized else " [red](not on the plan)[/]"
    return f"{result.sender}{mark}"


COMMANDS = [parse_reply]
