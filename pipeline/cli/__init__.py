"""The `mutualplan` command: a thin layer of commands over the library.

Each group of commands lives in its own module and is registered here.
"""

from __future__ import annotations

import click

from pipeline import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mutualplan")
@click.option(
    "--home",
    metavar="DIR",
    help="The home directory (settings, store, archive, mail). Default: $MUTUALPLAN_HOME, else "
    "$XDG_DATA_HOME/mutualplan (~/.local/share/mutualplan).",
)
@click.pass_context
def main(ctx: click.Context, home: str | None) -> None:
    """Mutual Plans that run themselves over email.

    \b
    Write a plan, send it as a letter, let the prospect answer by email:
      mutualplan demo                      # the whole loop on a local mailbox
      mutualplan show plan.md              # the resolved timeline
      mutualplan check plan.md             # where the plan is exposed
    """
    ctx.ensure_object(dict)["home"] = home


def _register() -> None:
    # Imported here so a broken optional backend never stops `--help` from working.
    from pipeline.cli import loop, milestones, plans, plans_store, render, replies, versions

    for module in (plans, plans_store, versions, render, replies, loop, milestones):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
