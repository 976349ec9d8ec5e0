"""Commands that make and compare stored versions of a plan: add, apply, diff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pipeline.cli.common import (
    console,
    emit_json,
    handles_errors,
    json_option,
    open_home,
    resolve_today,
    today_option,
)
from pipeline.errors import ChangeError, PipelineError, RenderError
from pipeline.loop.service import Service
from pipeline.plan.diff import PlanDiff, diff
from pipeline.plan.model import Change, Plan, Version
from pipeline.render.format import change_rows


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"{path}: no such file", hint=f"give the path of {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: cannot read it ({exc})", hint=f"{what} is a UTF-8 text file") from None


# --- add ----------------------------------------------------------------------------------------


@click.command("add", short_help="Store a plan file as version 1, or as the next version of its plan.")
@click.argument("plan_file", metavar="PLAN.md", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--author", metavar="EMAIL", help="Who made this version (default: the plan's seller).")
@click.option("--revert", is_flag=True,
              help="Where the file and changes made since the version it was written from touch the same part, "
                   "take the file's side (undoing those changes).")  # fmt: skip
@json_option
@click.pass_context
@handles_errors
def add(ctx: click.Context, plan_file: Path, author: str | None, revert: bool, as_json: bool) -> None:
    """Store PLAN.md: a new plan becomes version 1; the seller's edits to a stored plan become its next version
    (a seller edit). The same content again makes no version.

    Which plan: the file's `id:` when it has one (refused when that plan is another prospect's); else an id derived
    from the prospect's distinctive words, the seller's first word and the target year (acme-northwind-2027), with
    -2, -3 ... when a plan of another prospect has it.

    Which edits: those the file makes to the version it was written from (its `version:`, which `mutualplan export`
    writes; else the latest version the seller wrote whole). Changes made since, such as the prospect's, are kept;
    where the file changes the same milestone too, nothing is stored and the error lists what the file would undo:
    add it again with --revert to undo them, or edit a fresh export.

    What the front matter leaves out (the seller, the letterhead) comes from the home's settings.

    \b
    Example:
      mutualplan add acme.md
      mutualplan export acme-northwind-2027 --out acme-v3.md
      vi acme-v3.md && mutualplan add acme-v3.md   # the next version: your edits
      mutualplan add old-acme.md --revert          # undo what the listed changes did
    """
    text = _read_text(plan_file, "a plan's .md file")
    with Service.open(open_home(ctx)) as service:
        added = service.add_source(text, file=str(plan_file), author=author, revert=revert)
    current, version = added.previous, added.version
    if version is None:
        assert current is not None  # nothing stored happens only when the plan was there already
        if as_json:
            emit_json({"plan_id": added.plan.id, "version": current.number, "stored": False, "hash": current.hash,
                       "base": added.base, "kept": [v.number for v in added.kept]})  # fmt: skip
        else:
            console.print(f"{plan_file} is the same as version {current.number} of {added.plan.id}: no new version.",
                          soft_wrap=True)
        return
    changes = diff(current.plan, version.plan, old_version=current.number, new_version=version.number) \
        if current else None
    if as_json:
        _report(version, changes, as_json, base=added.base, kept=[v.number for v in added.kept],
                undone=list(added.undone))  # fmt: skip
        return
    _report(version, changes, as_json)
    if added.kept:
        # The file was written from an older version: say whose changes stay in, and what --revert undid of them.
        since = ", ".join(f"version {v.number} ({v.reason} by {v.author})" for v in added.kept)
        what = ", but where your file changes the same part, undid them, as --revert asked:" if added.undone else "."
        console.print(f"[yellow]note:[/] {plan_file} was written from version {added.base}: kept the changes of "
                      f"{since} made since{what}", soft_wrap=True)  # fmt: skip
    for line in added.undone:
        console.print(f"  - {line}", soft_wrap=True)


def _report(version: Version, changes: PlanDiff | None, as_json: bool, **extra: Any) -> None:
    if as_json:
        emit_json(
            {
                "plan_id": version.plan_id,
                "version": version.number,
                "stored": True,
                "reason": version.reason,
                "author": version.author,
                "hash": version.hash,
                "diff": changes.to_dict() if changes else None,
                **extra,
            }
        )
        return
    console.print(
        f"Stored version {version.number} of [bold]{version.plan_id}[/] ({version.reason}, by {version.author}).",
        soft_wrap=True,
    )
    if changes is not None:
        print_diff(version.plan, changes)


# --- apply --------------------------------------------------------------------------------------


def read_changes(path: Path) -> list[Change]:
    """The changes in a JSON file: a list of changes, or an object with a `changes` list (parse-reply's output)."""
    text = _read_text(path, "a JSON file of changes")
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChangeError(
            f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})",
            hint='write a list such as [{"op": "move", "milestone": "M3", "due": "2027-03-08"}]',
        ) from None
    if isinstance(data, dict):
        if "changes" not in data:
            raise ChangeError(
                f"{path}: the object has no `changes` key", hint="give a list of changes, or parse-reply's JSON"
            )
        data = data["changes"]
    if not isinstance(data, list):
        raise ChangeError(f"{path}: expected a list of changes", hint="see the `changes` format in the reply spec")
    return [Change.from_dict(item, index=i) for i, item in enumerate(data)]


@click.command("apply", short_help="Apply a JSON list of changes to a stored plan as its next version.")
@click.argument("plan_id")
@click.argument("changes_file", metavar="CHANGES.json", type=click.Path(dir_okay=False, path_type=Path))
@today_option
@click.option("--author", metavar="EMAIL", help="Who asked for the changes (default: the plan's seller).")
@json_option
@click.pass_context
@handles_errors
def apply_command(
    ctx: click.Context, plan_id: str, changes_file: Path, today: object, author: str | None, as_json: bool
) -> None:
    """Apply CHANGES.json to the latest version of PLAN_ID and store the result as the next version.

    CHANGES.json is a list of changes in the reply spec's `changes` format, or parse-reply's whole JSON
    output. All or nothing: a change that cannot apply (an unknown milestone, a date before today, removing
    the signature step) is refused with the reason, exit status 2, and no version is made.

    \b
    Example:
      echo '[{"op": "move", "milestone": "M3", "due": "2027-03-08"}]' > changes.json
      mutualplan apply acme-northwind-2027 changes.json --author dana.whitfield@acme.example
      mutualplan parse-reply acme.md reply.eml --json > reply.json   # PLAN: the plan's file or its id
      mutualplan apply acme-northwind-2027 reply.json --today 2027-01-20
    """
    changes = read_changes(changes_file)
    with Service.open(open_home(ctx)) as service:
        applied = service.apply_changes(plan_id, changes, author=author, today=resolve_today(today))
    current, version = applied.previous, applied.version
    if version is None:
        if as_json:
            emit_json({"plan_id": plan_id, "version": current.number, "stored": False, "hash": current.hash})
        else:
            console.print(f"The changes leave version {current.number} of {plan_id} as it is: no new version.")
        return
    _report(version, diff(current.plan, version.plan, old_version=current.number, new_version=version.number), as_json)


# --- diff ---------------------------------------------------------------------------------------


@click.command("diff", short_help="What changed between two versions of a plan.")
@click.argument("plan_id")
@click.argument("a", type=click.IntRange(min=1))
@click.argument("b", type=click.IntRange(min=1))
@json_option
@click.option("--pdf", "pdf_out", type=click.Path(dir_okay=False, path_type=Path), metavar="OUT",
              help="Write version B's letter, opening with the changes since version A, to OUT.")  # fmt: skip
@click.pass_context
@handles_errors
def diff_command(ctx: click.Context, plan_id: str, a: int, b: int, as_json: bool, pdf_out: Path | None) -> None:
    """Compare versions A and B of PLAN_ID: milestones added, removed, moved (every date that changed,
    including those that followed the target or another milestone), reassigned, renamed, status and phase
    changes; the target and its slip; contacts; and a word-level redline of changed text.

    \b
    Example:
      mutualplan diff acme-northwind-2027 1 3
      mutualplan diff acme-northwind-2027 2 3 --json | jq '.milestones'
      mutualplan diff acme-northwind-2027 2 3 --pdf changes-v3.pdf
    """
    if as_json and pdf_out:
        raise PipelineError("--json and --pdf cannot be used together", hint="pick one")
    with Service.open(open_home(ctx)) as service:
        service.current(plan_id)
        old, new = service.store.version(plan_id, a), service.store.version(plan_id, b)
    changes = diff(old.plan, new.plan, old_version=a, new_version=b)
    if as_json:
        emit_json({"plan_id": plan_id, **changes.to_dict()})
        return
    if pdf_out:
        if b <= a:
            raise RenderError(
                f"a letter shows the changes since an earlier version: {a} is not before {b}",
                hint=f"write `mutualplan diff {plan_id} {min(a, b)} {max(a, b)} --pdf {pdf_out}`",
            )
        from pipeline.render.letter import render_letter  # WeasyPrint loads only when a PDF is asked for

        letter = render_letter(new.plan, version=b, created=new.created, diff=changes)
        try:
            pdf_out.write_bytes(letter.pdf)
        except OSError as exc:
            raise RenderError(f"cannot write {pdf_out}: {exc.strerror}") from None
        console.print(
            f"Wrote {pdf_out}: version {b} of {plan_id}, {letter.pages} page(s), opening with the changes since "
            f"version {a}.",
            soft_wrap=True,
        )
        return
    console.print(f"[bold]{plan_id}[/]: version {a} -> version {b}")
    print_diff(new.plan, changes)


def print_diff(plan: Plan, changes: PlanDiff) -> None:
    """The diff as a table of changes, then each text redline (deletions struck through, insertions underlined)."""
    if changes.is_empty:
        console.print("No changes.")
        return
    rows = change_rows(plan, changes)
    if rows:
        table = Table(title=f"Changes since version {changes.old_version}", title_justify="left")
        for name in ("Change", "#", "Activity", "From", "To"):
            table.add_column(name, overflow="fold", no_wrap=name == "#")
        for row in rows:
            table.add_row(row.label, row.id, escape(row.title), escape(row.old), escape(row.new))
        console.print(table)
    for redline in changes.texts:
        text = Text()
        for op, words in redline.ops:
            style = {"insert": "underline green", "delete": "strike red"}.get(op, "")
            # Marked in words too, so the redline reads without colour: [-deleted-] {+inserted+}.
            text.append({"insert": f"{{+{words}+}}", "delete": f"[-{words}-]"}.get(op, words), style=style)
        console.print(f"\n[bold]{escape(redline.heading)}[/]")
        console.print(text, soft_wrap=True)


COMMANDS = [add, apply_command, diff_command]
