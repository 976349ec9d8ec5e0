"""`mutualplan export`: a stored version written back as the plan Markdown that `add` reads, for the seller to edit."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.common import console, emit_json, handles_errors, json_option, open_home
from pipeline.errors import PipelineError
from pipeline.loop.service import Service
from pipeline.plan.writer import write_plan


@click.command("export", short_help="Write a stored version of a plan as plan Markdown that `add` reads back.")
@click.argument("plan_id")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write the plan to FILE instead of stdout.")  # fmt: skip
@click.option("--version", "number", type=click.IntRange(min=1), default=None, metavar="N",
              help="Export version N instead of the current version.")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite FILE when it exists.")
@json_option
@click.pass_context
@handles_errors
def export_command(ctx: click.Context, plan_id: str, out: Path | None, number: int | None, force: bool,
                   as_json: bool) -> None:  # fmt: skip
    """Write the current version of PLAN_ID (or version N) as plan Markdown: the text to edit when the plan has
    changed since the seller's own file, including plans typed in Outlook and versions the prospect's replies made.

    The front matter carries `version: N`, the version it was exported from. `mutualplan add` counts the file's
    edits from that version: what changed since (the prospect's requests) is kept, and an edit of the same
    milestone is refused unless `add --revert`. Adding the file unchanged makes no new version.

    \b
    Example:
      mutualplan export acme-northwind-2027 --out acme.md
      vi acme.md && mutualplan add acme.md       # the next version: exactly your edits
      mutualplan export acme-northwind-2027 --version 1 | less
    """
    with Service.open(open_home(ctx)) as service:
        current = service.current(plan_id)
        version = service.version(plan_id, number)
    text = write_plan(version.plan, version=version.number)
    report = {"plan_id": plan_id, "version": version.number, "current": current.number, "hash": version.hash}
    if out is None:
        if as_json:
            emit_json({**report, "markdown": text})
        else:
            click.echo(text, nl=False)
        return
    if out.exists() and not force:
        raise PipelineError(f"{out} already exists", hint="choose another --out, or add --force to overwrite it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PipelineError(f"cannot write {out}: {exc.strerror}", hint="choose another --out") from None
    if as_json:
        emit_json({**report, "out": str(out)})
        return
    older = f" (the current version is {current.number})" if version.number != current.number else ""
    console.print(f"Wrote version {version.number} of {plan_id} to {out}{older}: edit it, then "
                  f"`mutualplan add {out}`.", soft_wrap=True)  # fmt: skip


COMMANDS = [export_command]
