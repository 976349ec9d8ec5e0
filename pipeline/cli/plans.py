"""Commands on a plan source: show, check, new."""

from __future__ import annotations

import functools
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import click
from rich.console import JustifyMethod
from rich.markup import escape
from rich.table import Table

from pipeline.cli.common import (
    ISO_DATE,
    console,
    emit_json,
    handles_errors,
    home_option,
    json_option,
    resolve_today,
    today_option,
)
from pipeline.errors import PipelineError, PlanError
from pipeline.plan.check import check as check_plan
from pipeline.plan.model import Plan
from pipeline.plan.source import parse_plan
from pipeline.plan.timeline import days_left, resolve, resolved_dict
from pipeline.render.templates import default_templates as templates_dir

if TYPE_CHECKING:
    from pipeline.config import Settings


def read_plan_file(path: str) -> Plan:
    """Parse a plan file, turning a missing or unreadable file into a clear error."""
    return parse_plan(read_plan_text(path), file=path, defaults=home_plan_defaults())


def home_plan_defaults() -> dict[str, Any] | None:
    """What the home's settings give a plan's front matter to fall back on ([seller], the letterhead), as `add`
    and the watcher use them; None outside a command or when there is no home yet (front matter required)."""
    settings = _home_settings(click.get_current_context(silent=True))
    return settings.plan_defaults() if settings is not None else None


def _home_settings(ctx: click.Context | None) -> Settings | None:
    """The home's settings, when the command runs in a home that exists."""
    from pipeline.config import load_settings
    from pipeline.home import Home, resolve_home

    if ctx is None:
        return None
    home = Home(resolve_home(home_option(ctx)))
    if not home.exists():
        return None
    return load_settings(home.settings(), str(home.settings_path))


def read_plan_text(path: str) -> str:
    """A plan file's text, or a clear error when it is missing or unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"{path}: no such file", hint="give the path of a plan's .md file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: cannot read it ({exc})", hint="a plan is a UTF-8 Markdown file") from None


def _fmt(d: date | None) -> str:
    return d.strftime("%a %-d %b %Y") if d else "-"


def _days(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 0:
        return f"[red]{-n} days ago[/]"
    return "today" if n == 0 else f"{n} days"


@click.command()
@click.argument("plan_file", metavar="PLAN")
@today_option
@json_option
@handles_errors
def show(plan_file: str, today: object, as_json: bool) -> None:
    """Print the resolved timeline of a plan, grouped before and after the PO.

    \b
    Example:
      mutualplan show plan.md --today 2027-01-11
      mutualplan show plan.md --json | jq '.milestones[] | {id, due}'
    """
    plan = read_plan_file(plan_file)
    now = resolve_today(today)
    if as_json:
        emit_json(resolved_dict(plan, now))
        return
    dates = resolve(plan)
    console.print(f"[bold]{escape(plan.prospect.company)}[/] and [bold]{escape(plan.seller.company)}[/]  ({plan.id})")
    target = plan.target
    console.print(f"Target (PO / signature): [bold]{_fmt(target)}[/]  {_days(days_left(target, now))}\n")
    for phase, title in (("before", "Before the PO"), ("after", plan.after_heading)):
        rows = [m for m in plan.milestones if m.phase == phase]
        if not rows:
            continue
        table = Table(title=escape(title), title_justify="left", show_lines=False)
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("#", "left"), ("Activity", "left"), ("Owner", "left"), ("Due", "left"), ("Days left", "right"),
            ("Status", "left"))
        for name, justify in columns:
            table.add_column(name, justify=justify, no_wrap=name in ("#", "Due", "Days left"))
        for m in rows:
            due = dates[m.id]
            style = "dim" if m.status in ("done", "dropped") else None
            owner = escape(m.owner) if m.owner else "[red]nobody[/]"
            table.add_row(m.id, escape(m.title), owner, _fmt(due), _days(days_left(due, now)), m.status, style=style)
        console.print(table)


@click.command()
@click.argument("plan_file", metavar="PLAN")
@today_option
@json_option
@handles_errors
def check(plan_file: str, today: object, as_json: bool) -> None:
    """Warn where the plan is exposed; exit 0 clean, 1 with warnings, 2 if it does not parse.

    Besides what the methodology says is missing, it warns on placeholders left in the plan (<Prospect>,
    [Company], {{name}}, TBD, XXX, Lorem ipsum, and the stand-ins `mutualplan new` writes), on steps due
    on a Saturday or Sunday, and on owners naming someone who is not a contact. Every warning names its
    line and code; the README lists them all.

    \b
    Example:
      mutualplan check plan.md && echo "ready to send"
      mutualplan check plan.md --today 2027-01-11 --json | jq -r '.warnings[] | "\\(.line) \\(.code)"'
    """
    text = read_plan_text(plan_file)
    plan = parse_plan(text, file=plan_file, defaults=home_plan_defaults())
    warnings = check_plan(plan, resolve_today(today), starters=starter_plans(), source=text)
    if as_json:
        emit_json({"plan": plan.id, "warnings": [w.__dict__ for w in warnings]})
    elif warnings:
        for w in warnings:
            where = f"{plan_file}:{w.line}: " if w.line else f"{plan_file}: "
            console.print(f"[yellow]warning[/] {escape(where + w.message)}  [dim]({w.code})[/]", soft_wrap=True)
        console.print(f"{len(warnings)} warning(s)")
    else:
        console.print(f"[green]{plan_file}: no warnings[/]")
    sys.exit(1 if warnings else 0)


STARTERS = ("enterprise", "smb")
# What `new` fills in when it is not told: stand-ins too, for `check` to find.
STARTER_DEFAULTS = {
    "prospect": "Prospect Inc",
    "seller_company": "Your Company",
    "seller_name": "Your Name",
    "seller_email": "you@yourcompany.example",
    "timezone": "UTC",
}


def starter_text(template: str, **values: str) -> str:
    """A starter plan's Markdown with `new`'s defaults, or the values given, filled in."""
    source = (templates_dir() / "plans" / f"{template}.md").read_text(encoding="utf-8")
    return Template(source).substitute({**STARTER_DEFAULTS, **values})


@functools.cache
def starter_plans() -> tuple[Plan, ...]:
    """The starter plans as `new` writes them by default: what they hold is what a seller must replace."""
    return tuple(parse_plan(starter_text(name, target="2027-01-01"), file=f"{name}.md") for name in STARTERS)


@click.command()
@click.option("--template", "template", type=click.Choice(STARTERS), default="enterprise", show_default=True,
              help="Which starter plan.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
@click.option("--prospect", default=STARTER_DEFAULTS["prospect"], show_default=True, help="The prospect's company.")
@click.option("--seller", "seller_company", default=None,
              help="Your company [default: [seller] company of the home's settings, else Your Company].")
@click.option("--seller-name", default=None, help="[default: [seller] name, else Your Name]")
@click.option("--seller-email", default=None, help="[default: [seller] email, else you@yourcompany.example]")
@click.option("--target", type=ISO_DATE, default=None,
              help="The PO / signature date (default: 90 days from today, 30 for smb).")
@click.option("--timezone", default=None, help="[default: [seller] timezone, else UTC]")
@click.pass_context
@handles_errors
def new(ctx: click.Context, template: str, out: str | None, prospect: str, seller_company: str | None,
        seller_name: str | None, seller_email: str | None, target: datetime | None, timezone: str | None) -> None:
    """Write a starter plan with the standard elements of a Mutual Plan.

    The seller's company, name, email and time zone come from the options, else from [seller] in the home's
    settings (after `mutualplan init`), else they are stand-ins that `check` flags until replaced.

    \b
    Example:
      mutualplan new --template smb --prospect "Acme Corp" --target 2027-03-31 --out acme.md
    """
    days = 90 if template == "enterprise" else 30
    when = target.date() if target is not None else date.today() + timedelta(days=days)
    given = {"seller_company": seller_company, "seller_name": seller_name, "seller_email": seller_email,
             "timezone": timezone}
    values = {**_home_seller(ctx), **{k: v for k, v in given.items() if v is not None}}
    text = starter_text(template, prospect=prospect, target=when.isoformat(), **values)
    try:
        parse_plan(text, file=f"{template}.md")
    except PlanError as exc:
        raise PipelineError(f"the values given make the starter plan invalid: {exc.reason}") from None
    if out:
        if Path(out).exists():
            raise PipelineError(f"{out} already exists", hint="choose another --out or remove the file")
        Path(out).write_text(text, encoding="utf-8")
        console.print(f"Wrote {out}: edit it, then `mutualplan check {out}`")
    else:
        click.echo(text, nl=False)


def _home_seller(ctx: click.Context) -> dict[str, str]:
    """What [seller] in the home's settings says of the starter's stand-ins; nothing when there is no home yet."""
    settings = _home_settings(ctx)
    if settings is None:
        return {}
    seller = settings.seller
    keys = {"company": "seller_company", "name": "seller_name", "email": "seller_email", "timezone": "timezone"}
    return {keys[k]: str(v) for k, v in seller.items() if k in keys and v}


COMMANDS = [show, check, new]
