"""The `mutualplan` command: a thin layer of commands over the library.

Each group of commands lives in its own module and is registered here.
"""

from __future__ import annotations

import importlib

import click

from pipeline import __version__

# Each command's module and its one-line help, so that `--help` and a command's start import only what that
# command needs (WeasyPrint, SQLAlchemy and dateparser together take seconds to import). A test holds these
# lines equal to the commands' own.
COMMANDS: dict[str, tuple[str, str]] = {
    "new": ("plans", "Write a starter plan with the standard elements of a Mutual Plan."),
    "show": ("plans", "Print the resolved timeline of a plan, grouped before and after the PO."),
    "check": ("plans", "Warn where the plan is exposed; exit 0 clean, 1 with warnings, 2 if it does not parse."),
    "render": ("render", "Render PLAN's letter to PDF/A-3b, with the plan embedded as plan.json."),
    "init": ("versions", "Make a home: settings, store, archive and mail folders."),
    "add": ("plans_store", "Store a plan file as version 1, or as the next version of its plan."),
    "apply": ("plans_store", "Apply a JSON list of changes to a stored plan as its next version."),
    "diff": ("plans_store", "What changed between two versions of a plan."),
    "export": ("export", "Write a stored version of a plan as plan Markdown that `add` reads back."),
    "history": ("versions", "Every version of a plan: when, who, why, its hash."),
    "archive": ("versions", "Export a plan's evidence for legal review; verify a bundle."),
    "send": ("loop", "Send the current version of PLAN_ID to its contacts from the seller's mailbox."),
    "watch": ("loop", "Read the seller's mailbox, act on replies, and send what follows from them."),
    "login": ("login", 'Sign the seller in to Microsoft 365 once, for a graph mailbox with auth = "device_code".'),
    "status": ("loop", "Per plan: the current version, agreed or waiting on whom, the next milestones, held messages."),
    "approve": ("loop", "Send the follow-ups of PLAN_ID that wait in the seller's Drafts (the `review` policy)."),
    "demo": ("loop", "Run the whole loop on a local Maildir: plan out, change requested, version 2, both confirm."),
    "parse-reply": ("replies", "Show what the pipeline reads in REPLY.eml as an answer to PLAN."),
    "done": ("milestones", "Mark a step of a plan done: a new version with its status done."),
    "reminders": ("milestones", "Switch a plan's reminders on or off; show what they owe today."),
    "confirm": ("seller", "Record a confirmation a contact gave on a call, as the seller's word."),
    "reopen": ("seller", "Reopen a plan the prospect declined."),
    "release": ("seller", "Act on a message the watcher held, with the hold that stopped it lifted."),
    "preview": ("seller", "Show the emails of a plan that wait for your review; edit or drop the ask."),
    "outbox": ("outbox", "List the emails that wait or failed; cancel one that can never go."),
    "team": ("team", "Run many sellers' mailboxes on one deployment: sellers, their status, on PostgreSQL."),
    "worker": ("team", "Run the team's jobs: poll each seller's mailbox at its interval, send, recover stalled jobs."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"pipeline.cli.{COMMANDS[cmd_name][0]}")
        return next(c for c in module.COMMANDS if c.name == cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


