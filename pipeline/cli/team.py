"""Commands of a sales team: the team settings (sellers and their mailboxes), its status, and its workers."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from pipeline.cli.common import ISO_DATE, console, emit_json, handles_errors, json_option
from pipeline.errors import ConfigError

team_dir_option = click.option(
    "--team", "team_dir", type=click.Path(file_okay=False), default=None,
    help="The folder of team.toml (default: $MUTUALPLAN_TEAM).")


def _path(team_dir: str | None) -> Path:
    from pipeline.team.settings import team_path

    return team_path(team_dir)


@click.group()
def team() -> None:
    """Run many sellers' mailboxes on one deployment: sellers, their status, on PostgreSQL.

    \b
    Example:
      mutualplan team list --json
    """


@team.command("init")
@click.option("--store-url", required=True, help="The team's PostgreSQL store (postgresql+psycopg://...).")
@team_dir_option
@json_option
@handles_errors
def init(store_url: str, team_dir: str | None, as_json: bool) -> None:
    """Write a new team.toml naming the team's PostgreSQL store.

    \b
    Example:
      mutualplan team init --team ./sales --store-url postgresql+psycopg://mutualplan@db.example/sales
    """
    from pipeline.team.settings import init_team

    path = init_team(Path(team_dir or os.environ.get("MUTUALPLAN_TEAM") or "."), store_url)
    emit_json({"team": str(path)}) if as_json else console.print(f"Wrote {path}")


def _options(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--mailbox-option {pair!r} is not KEY=VALUE", hint="e.g. -o host=imap.example")
        out[key.strip()] = int(value) if value.isdigit() else value
    return out


@team.command("add-seller")
@click.argument("seller_id")
@click.option("--name", required=True, help="The seller's name, as letters sign it.")
@click.option("--email", required=True, help="The seller's address (their mailbox's).")
@click.option("--company", default=None, help="The seller's company.")
@click.option("--title", default=None, help="The seller's title.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the seller.")
@click.option("--letterhead", default="default", show_default=True, help="The letterhead of their letters.")
@click.option("--policy", "changes", type=click.Choice(["review", "auto"]), default="review", show_default=True,
              help="review: follow-ups wait in Drafts; auto: sent at once.")
@click.option("--backend", type=click.Choice(["graph", "imap", "exchange", "maildir"]), required=True,
              help="The seller's mailbox backend (graph uses the team's one app registration).")
@click.option("--mailbox-option", "-o", "mailbox_options", multiple=True, metavar="KEY=VALUE",
              help="A [mailbox] setting (repeat); a secret is named by its variable: password_env=NAME.")
@team_dir_option
@json_option
@handles_errors
def add_seller(seller_id: str, name: str, email: str, company: str | None, title: str | None, timezone: str,
               letterhead: str, changes: str, backend: str, mailbox_options: tuple[str, ...], team_dir: str | None,
               as_json: bool) -> None:
    """Add a seller and their mailbox to the team; their mailbox is read from the next poll.

    \b
    Example:
      mutualplan team add-seller jo --name "Jo Park" --email jo@seller.example --backend maildir \\
        --mailbox-option path=mail/jo --json
      mutualplan team add-seller sam --name "Sam Roy" --email sam@seller.example --backend imap \\
        -o host=imap.seller.example -o username=sam@seller.example -o password_env=SAM_IMAP_PASSWORD
    """
    from pipeline.team.settings import add_seller as add

    who = {k: v for k, v in {"name": name, "email": email, "company": company, "title": title,
                              "timezone": timezone}.items() if v}
    mailbox = {"backend": backend, **_options(mailbox_options)}
    if backend == "graph":
        mailbox.setdefault("mailbox", email)
    entry = {"id": seller_id, "seller": who, "letter": {"letterhead": letterhead},
             "policy": {"changes": changes}, "mailbox": mailbox}
    seller = add(_path(team_dir), entry)
    emit_json(seller.summary()) if as_json else console.print(f"Added {seller.id} ({escape(name)}, {backend})")


@team.command("remove-seller")
@click.argument("seller_id")
@team_dir_option
@json_option
@handles_errors
def remove_seller(seller_id: str, team_dir: str | None, as_json: bool) -> None:
    """Stop reading a seller's mailbox; their record and plans are kept.

    \b
    Example:
      mutualplan team remove-seller jo --json
    """
    from pipeline.store import utc_iso
    from pipeline.team.settings import remove_seller as remove

    seller = remove(_path(team_dir), seller_id, utc_iso(datetime.now(UTC)))
    emit_json(seller.summary()) if as_json else console.print(f"{seller.id}'s mailbox is no longer read "
                                                              f"(since {seller.removed}); their plans are kept")


@team.command("list")
@team_dir_option
@json_option
@handles_errors
def list_sellers(team_dir: str | None, as_json: bool) -> None:
    """The team's sellers: who, which mailbox, which policy, whether it is read.

    \b
    Example:
      mutualplan team list
      mutualplan team list --json
    """
    from pipeline.team.settings import load_team

    sellers = [s.summary() for s in load_team(_path(team_dir)).sellers]
    if as_json:
        emit_json({"sellers": sellers})
        return
    table = Table("Seller", "Name", "Email", "Mailbox", "Policy", "Read")
    for s in sellers:
        table.add_row(s["id"], escape(str(s["name"])), escape(str(s["email"])),
                      f"{s['backend']} {escape(str(s['mailbox'] or ''))}", s["policy"],
                      "yes" if s["active"] else f"no (removed {s['removed']})")
    console.print(table)


@team.command("status")
@click.option("--seller", "seller_id", default=None, help="Only this seller's plans (what a seller sees).")
@click.option("--all", "admin", is_flag=True, help="Every seller's plans (an admin's view).")
@click.option("--today", type=ISO_DATE, default=None, help="Count days from this date (YYYY-MM-DD).")
@team_dir_option
@json_option
@handles_errors
def status(seller_id: str | None, admin: bool, today: datetime | None, team_dir: str | None, as_json: bool) -> None:
    """Every plan of every seller: agreed, waiting on whom, slipping steps; and each mailbox's health.

    A seller sees their own plans (--seller, or $MUTUALPLAN_SELLER); --all is the admin's view of the team.

    \b
    Example:
      mutualplan team status --all
      mutualplan team status --seller jo --json
    """
    from pipeline.team.settings import load_team
    from pipeline.team.status import team_status

    seller_id = seller_id or os.environ.get("MUTUALPLAN_SELLER") or None
    if not admin and not seller_id:
        raise ConfigError("whose plans? a seller sees their own, an admin the team's",
                          hint="pass --seller ID (or set $MUTUALPLAN_SELLER), or --all for the whole team")
    day = today.date() if today else datetime.now(UTC).date()
    data = team_status(load_team(_path(team_dir)), day, seller=None if admin else seller_id)
    if as_json:
        emit_json(data)
        return
    for s in data["sellers"]:
        box = s["mailbox"]
        health = "ok" if box["state"] == "ok" else (
            f"[red]failing[/] x{box['failures']}, next try {box['next_poll']}: {escape(box['last_error'] or '')}")
        console.print(f"[bold]{s['seller']}[/] {escape(str(s['name']))}  mailbox {health}"
                      + ("" if s["active"] else "  (removed)"), soft_wrap=True)
        if not s["plans"]:
            console.print("  no plans yet")
        for p in s["plans"]:
            slipping = ", ".join(f"{m['id']} {-m['days_left']}d late" for m in p["slipping"])
            console.print(f"  {p['plan_id']} v{p['version']}: {escape(p['summary'])}"
                          + (f"  [yellow]slipping: {escape(slipping)}[/]" if slipping else ""), soft_wrap=True)


@team.command("send")
@click.argument("seller_id")
@click.argument("plan_id")
@team_dir_option
@json_option
@handles_errors
def send(seller_id: str, plan_id: str, team_dir: str | None, as_json: bool) -> None:
    """Queue the sending of a seller's plan: a worker renders its letter, then sends it from their mailbox.

    \b
    Example:
      mutualplan team send jo acme-northwind-2027 --json
    """
    from pipeline.team.settings import load_team
    from pipeline.team.worker import open_sync, send_plan

    path = _path(team_dir)
    team_settings = load_team(path)
    team_settings.seller(seller_id)  # an unknown seller is named before anything is queued
    with open_sync(team_settings):
        message_id, job = send_plan(team_settings, seller_id, plan_id, path.parent)
    emit_json({"seller": seller_id, "plan_id": plan_id, "message_id": message_id, "job": job}) if as_json else \
        console.print(f"Queued: {plan_id} ({message_id}) goes out from {seller_id}'s mailbox once a worker has "
                      f"rendered its letter" + (f" (job {job})" if job is not None else ""))


@team.command("export")
@click.argument("seller_id")
@click.argument("plan_id")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--tsa-url", default=None, metavar="URL",
              help="A timestamp authority (RFC 3161) to stamp manifest.json's SHA-256 (kept as manifest.json.tsr).")
@team_dir_option
@json_option
@handles_errors
def export(seller_id: str, plan_id: str, out: Path, tsa_url: str | None, team_dir: str | None,
           as_json: bool) -> None:
    """Write a seller's plan's evidence for legal review to OUT (a new directory, or FILE.zip): the bundle
    `mutualplan archive export` writes for a home, read from the seller's scope and the team's archive.

    It holds every version's plan JSON, letter PDF and redline, every email in and out, the audit log, an agreed
    plan's certificate of agreement, index.html to open first, and manifest.json; keep the SHA-256 it prints,
    and check the bundle with `mutualplan archive verify`. A plan of another seller is refused.

    \b
    Example:
      mutualplan team export jo acme-northwind-2027 acme-northwind-2027.zip
      mutualplan team export jo acme-northwind-2027 evidence/ --json   # then open evidence/index.html
    """
    from pipeline.archive import export as export_bundle
    from pipeline.cli.versions import redline_renderer, report_export
    from pipeline.config import check_tsa_url
    from pipeline.team.archive import seller_evidence
    from pipeline.team.settings import load_team

    # Checked before the database is reached, as a home's [archive] tsa_url is when its settings are read.
    stamp_url = check_tsa_url(tsa_url or "", "--tsa-url", example="--tsa-url https://freetsa.org/tsr")
    with seller_evidence(load_team(_path(team_dir)), seller_id, plan_id) as (store, archive):
        result = export_bundle(store, archive, plan_id, out, redline=redline_renderer(), tsa_url=stamp_url or None)
    report_export(result, plan_id, as_json)


@team.command("certificate")
@click.argument("seller_id")
@click.argument("plan_id")
@click.argument("out", required=False, type=click.Path(dir_okay=False, path_type=Path))
@team_dir_option
@json_option
@handles_errors
def certificate(seller_id: str, plan_id: str, out: Path | None, team_dir: str | None, as_json: bool) -> None:
    """Write the certificate of agreement of a seller's agreed plan to OUT (default: its own name, here), as
    `mutualplan archive certificate` writes a home's: the agreed version, each confirmation, the version chain.

    \b
    Example:
      mutualplan team certificate jo acme-northwind-2027
      mutualplan team certificate jo acme-northwind-2027 acme-certificate.pdf --json
    """
    from pipeline.cli.certificate import write_certificate
    from pipeline.team.archive import seller_certificate
    from pipeline.team.settings import load_team

    name, pdf = seller_certificate(load_team(_path(team_dir)), seller_id, plan_id)
    write_certificate(out or Path(name), plan_id, name, pdf, as_json)


@click.command()
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True,
              help="Jobs this process runs at once (each mailbox is still polled by one job at a time).")
@click.option("--once", is_flag=True, help="Run the mailbox jobs already queued, then exit (schedules nothing).")
@click.option("--work-dir", type=click.Path(file_okay=False), default=None,
              help="This machine's working folder for spools (default: the team folder).")
@team_dir_option
@handles_errors
def worker(concurrency: int, once: bool, work_dir: str | None, team_dir: str | None) -> None:
    """Run the team's jobs: poll each seller's mailbox at its interval, send, recover stalled jobs.

    Start any number, on any machines that reach the team's PostgreSQL; one mailbox is never polled by two
    workers at once. See docs/team.md for running them as systemd services.

    \b
    Example:
      mutualplan worker --once
      mutualplan worker --concurrency 8
    """
    from pipeline.team.worker import run

    path = _path(team_dir)
    run(path, Path(work_dir) if work_dir else path.parent, concurrency=concurrency, once=once)


COMMANDS = [team, worker]
