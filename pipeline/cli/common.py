"""What every command shares: consoles, --json output, and errors printed for people, not as tracebacks."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from pipeline.home import Home
    from pipeline.store import Store

# Rich drops colour by itself when the output is not a terminal (a pipe, a file, CI).
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a PipelineError into its message on stderr and its exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except PipelineError as exc:
            # Messages quote settings and plans ("[mailbox] backend", "[company]"): printed as text, not markup.
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
            if exc.hint:
                err_console.print(f"  {exc.hint}", markup=False, soft_wrap=True)
            sys.exit(exc.exit_code)

    return wrapper


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")


def emit_json(data: Any) -> None:
    """Print data as indented JSON on stdout (dates as ISO strings)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot serialize {type(value).__name__}")


class IsoDate(click.ParamType):
    """A YYYY-MM-DD option, as a datetime at midnight; a date that is none says why ("February 2027 has 28 days")."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        """The date given, or click's usage error naming what is wrong with it."""
        if isinstance(value, datetime):
            return value
        from pipeline.errors import PlanError
        from pipeline.plan.timeline import calendar_date

        try:
            return datetime.combine(calendar_date(str(value), what="", line=None), time())
        except PlanError as exc:
            self.fail(f"{exc.reason.strip()}; {exc.hint}" if exc.hint else exc.reason.strip(), param, ctx)


ISO_DATE = IsoDate()


def today_option(func: F) -> F:
    """`--today YYYY-MM-DD`: the date to count days from (default: the real today)."""
    return click.option(
        "--today",
        type=ISO_DATE,
        default=None,
        help="Count days from this date instead of today (YYYY-MM-DD).",
    )(func)


def resolve_today(value: Any) -> date:
    """The --today option's date, or the real today (the only place the CLI reads the clock)."""
    return value.date() if value is not None else date.today()


def home_option(ctx: click.Context) -> str | None:
    """The global --home option, as given (None when absent)."""
    return (ctx.find_root().obj or {}).get("home")


def open_home(ctx: click.Context) -> Home:
    """The home the command runs in (--home, $MUTUALPLAN_HOME, the default), which `init` must have made."""
    from pipeline.home import open_home as _open_home

    return _open_home(home_option(ctx))


def open_store(ctx: click.Context) -> Store:
    """The store of the command's home; use it in a `with` block so it is closed."""
    return open_home(ctx).open_store()
