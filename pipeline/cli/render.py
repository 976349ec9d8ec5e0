"""`render`: a plan as its letter (PDF/A), and optionally its HTML and its plan email."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from pipeline.cli.common import console, emit_json, err_console, handles_errors, json_option
from pipeline.cli.plans import read_plan_file
from pipeline.errors import PipelineError
from pipeline.plan.model import Plan
from pipeline.render.templates import default_templates as templates_dir


@dataclass(frozen=True)
class Source:
    """What a letter is rendered from: a plan, its version number and the version's timestamp."""

    plan: Plan
    version: int
    created: datetime


def load_source(plan_arg: str, *, version: int | None, created: datetime | None) -> Source:
    """PLAN as given on the command line. Today a plan file; a stored plan id (with its versions and their
    timestamps, and --since) plugs in here."""
    if not Path(plan_arg).exists():
        raise PipelineError(f"{plan_arg}: no such plan file", hint="give the path of a plan's .md file")
    plan = read_plan_file(plan_arg)
    # A file has no version record: its timestamp is the one given, else now (to the second).
    when = created or datetime.now(UTC).replace(microsecond=0)
    return Source(plan=plan, version=version or 1, created=when)


def _created(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PipelineError(
            f"--created {value!r} is not an ISO 8601 date and time", hint="write e.g. 2027-01-11T17:02:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _write(path: Path, data: bytes | str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    except OSError as exc:
        raise PipelineError(f"{path}: cannot write it ({exc.strerror or exc})") from None


@click.command("render")
@click.argument("plan_arg", metavar="PLAN")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="The letter PDF [default: <id>-v<N>.pdf].")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the HTML.")
@click.option(
    "--email", "email_out", type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the plan email (.eml) with the letter and the calendar attached.",
)  # fmt: skip
@click.option("--version", "version", type=click.IntRange(min=1), default=None, help="Version number [default: 1].")
@click.option("--letterhead", default=None, help="A folder of templates/letterhead/ [default: the plan's].")
@click.option(
    "--created", default=None, metavar="ISO",
    help="The version's timestamp, e.g. 2027-01-11T17:02:00Z [default: now]. The letter's date, the PDF's "
    "dates and the calendar's come from it: the same plan and timestamp always give the same bytes.",
)  # fmt: skip
@json_option
@handles_errors
def render(
    plan_arg: str,
    out: Path | None,
    html_out: Path | None,
    email_out: Path | None,
    version: int | None,
    letterhead: str | None,
    created: str | None,
    as_json: bool,
) -> None:
    """Render PLAN's letter to PDF/A-3b, with the plan embedded as plan.json.

    It warns, naming them, of characters no installed font draws (the PDF shows empty boxes for them).

    \b
    Example:
      mutualplan render plan.md --out letter.pdf --email plan.eml
      mutualplan render plan.md --version 2 --created 2027-01-14T18:00:00Z --json
    """
    # Imported here: WeasyPrint takes half a second to import, and other commands need none of it.
    from pipeline.render.email import plan_email
    from pipeline.render.letter import letter_html, render_letter

    source = load_source(plan_arg, version=version, created=_created(created))
    plan, templates = source.plan, templates_dir()
    letter = render_letter(
        plan, version=source.version, created=source.created, letterhead=letterhead, templates=templates
    )
    out = out or Path(f"{plan.id}-v{source.version}.pdf")
    _write(out, letter.pdf)
    report: dict[str, Any] = {
        "plan": plan.id,
        "version": source.version,
        "created": source.created.isoformat().replace("+00:00", "Z"),
        "letterhead": letter.letterhead,
        "pdf": str(out),
        "pages": letter.pages,
        "bytes": len(letter.pdf),
        "sha256": hashlib.sha256(letter.pdf).hexdigest(),
        "html": None,
        "email": None,
        "missing_glyphs": list(letter.missing),
    }
    if html_out:
        html = letter_html(
            plan, version=source.version, created=source.created, letterhead=letterhead, templates=templates
        )
        # A <base> so a browser finds the letterhead's fonts and logo from wherever the file is.
        folder = (templates / "letterhead" / letter.letterhead).resolve().as_uri() + "/"
        _write(html_out, html.replace("<head>", f'<head>\n<base href="{folder}">', 1))
        report["html"] = str(html_out)
    if email_out:
        message = plan_email(plan, version=source.version, created=source.created, pdf=letter.pdf, templates=templates)
        _write(email_out, bytes(message))
        report["email"] = str(email_out)
        report["message_id"] = message["Message-ID"]
    if as_json:
        emit_json(report)
        return
    if letter.missing:
        shown = ", ".join(f"{code} {chr(int(code[2:], 16))}" for code in letter.missing[:8])
        more = f" and {len(letter.missing) - 8} more" if len(letter.missing) > 8 else ""
        err_console.print(
            f"[yellow]warning:[/] no font here draws {escape(shown)}{more}: the letter shows empty boxes for them",
            soft_wrap=True)
        err_console.print("  install a font that has them (on Debian, `apt-get install fonts-noto-core` covers Greek, "
                          "Cyrillic, Arabic and Hebrew, `fonts-noto-cjk` Chinese, Japanese and Korean; "
                          "scripts/setup.sh installs both), or add one to the letterhead's fonts/",
                          markup=False, soft_wrap=True)
    console.print(
        f"[bold]{out}[/]: {plan.id} version {source.version}, {letter.pages} page{'s' * (letter.pages != 1)}, "
        f"{len(letter.pdf) / 1024:.0f} KB, letterhead {letter.letterhead}",
        soft_wrap=True,
    )
    console.print(f"  sha256 {report['sha256']}")
    if html_out:
        console.print(f"[bold]{html_out}[/]: the letter's HTML")
    if email_out:
        console.print(f"[bold]{email_out}[/]: the plan email {report['message_id']}")


COMMANDS = [render]
