"""Commands on the home, a plan's versions and its archive: init, history, archive export, archive verify."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from pipeline.archive import ExportResult, RedlineRenderer, export, verify
from pipeline.cli.certificate import archive_certificate
from pipeline.cli.common import console, emit_json, handles_errors, home_option, json_option, open_home
from pipeline.errors import StoreError
from pipeline.evidence import stamp_in
from pipeline.home import Home, init_home, resolve_home


@click.command("init", short_help="Make a home: settings, store, archive and mail folders.")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
@handles_errors
def init(ctx: click.Context, directory: Path | None) -> None:
    """Make DIRECTORY a home: a commented mutualplan.toml, the store, archive/, mail/ and spool/.

    Without DIRECTORY, the home of --home, $MUTUALPLAN_HOME or the default. An existing home is kept as it
    is (its settings are never overwritten; its store is upgraded if an older release made it).

    \b
    Example:
      mutualplan init ~/deals
      export MUTUALPLAN_HOME=~/deals
    """
    path = directory or resolve_home(home_option(ctx))
    existed = Home(path).exists()
    home = init_home(path)
    if existed:
        console.print(f"{home.root} is already a home; left as it is (store up to date).", soft_wrap=True)
        return
    console.print(f"Made a home at {home.root}:", soft_wrap=True)
    console.print(f"  {home.settings_path.name:<16} settings: read it and fill in \\[seller] and \\[mailbox]")
    console.print(f"  {home.database_path.name:<16} the store (plans, versions, messages, audit log)")
    for folder, what in ((home.archive_dir, "letters and emails, by SHA-256"), (home.mail_dir, "the local mailbox"),
                         (home.spool_dir, "mail fetched, not yet handled")):
        console.print(f"  {folder.name + '/':<16} {what}")
    # Off until the seller names their server: until then every change a reply asks for waits for them.
    console.print("Authentication is off: every change, and a confirmation that would agree a plan, waits for your "
                  "review (`mutualplan release`). To turn it on, set trusted_authserv_ids in \\[policy] to your mail "
                  "server's name; `mutualplan status` shows the one it sees on received mail.", soft_wrap=True)


@click.command("history", short_help="Every version of a plan: when, who, why, its hash.")
@click.argument("plan_id")
@json_option
@click.pass_context
@handles_errors
def history(ctx: click.Context, plan_id: str, as_json: bool) -> None:
    """Every version of PLAN_ID: when, who asked, why, and its hash (each one chained to its parent's); then
    who confirmed which version, by email or by the seller's word (`mutualplan confirm`).

    \b
    Example:
      mutualplan history acme-northwind-2027
      mutualplan history acme-northwind-2027 --json
    """
    with open_home(ctx).open_store() as store:
        records = store.version_records(plan_id)
        if not records:
            raise StoreError(f"no plan {plan_id!r} in the store", hint=_known_plans(store.plan_ids()))
        state = store.plan_state(plan_id)
        confirmations = store.confirmation_records(plan_id)
    if as_json:
        emit_json(
            {
                "plan_id": plan_id,
                "state": state,
                "versions": [
                    {
                        "number": r.number,
                        "created": r.created,
                        "author": r.author,
                        "reason": r.reason,
                        "message_id": r.message_id,
                        "changes": list(r.changes),
                        "hash": r.hash,
                        "parent_hash": r.parent_hash,
                    }
                    for r in records
                ],
                "confirmations": [c.to_dict() for c in confirmations],
            }
        )
        return
    table = Table(title=f"{plan_id} ({state})", title_justify="left")
    table.add_column("#", no_wrap=True)
    table.add_column("When (UTC)", no_wrap=True)
    table.add_column("Who", overflow="fold")  # an address is folded, never cut short
    table.add_column("Why", overflow="fold")
    table.add_column("Hash", no_wrap=True)
    for r in records:
        why = r.reason
        if r.changes:
            why += ": " + ", ".join(_change_text(c) for c in r.changes)
        if r.message_id:
            why += f"\n{r.message_id}"
        table.add_row(str(r.number), r.created[:16].replace("T", " "), escape(r.author), escape(why), r.hash[:12])
    console.print(table)
    if confirmations:
        given = Table(title="Confirmations", title_justify="left")
        for name in ("v", "When (UTC)", "Who", "How"):
            given.add_column(name, overflow="fold", no_wrap=name != "How")
        for c in confirmations:
            given.add_row(str(c.version), c.at[:16].replace("T", " "), escape(c.email), escape(c.how))
        console.print(given)


def _change_text(change: dict[str, Any]) -> str:
    target = change.get("milestone") or change.get("title") or change.get("target") or ""
    return f"{change.get('op')} {target}".strip()


def _known_plans(ids: list[str]) -> str:
    if not ids:
        return "the store has no plans yet: add one with `mutualplan add PLAN.md`"
    return "stored plans: " + ", ".join(ids)


@click.group("archive", short_help="Export a plan's evidence for legal review; verify a bundle.")
def archive() -> None:
    """The evidence of a plan for legal review: export it as a bundle, and verify a bundle.

    \b
    Example:
      mutualplan archive export acme-northwind-2027 --out acme.zip
      mutualplan archive verify acme.zip
      mutualplan archive certificate acme-northwind-2027 --out certificate.pdf
    """


def redline_renderer() -> RedlineRenderer:
    """The renderer of a step's redline PDF, for steps that have none kept in the archive."""
    from pipeline.redline import render_redline

    return render_redline


@archive.command("export", short_help="Write a plan's bundle to a directory or a .zip.")
@click.argument("plan_id")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="A new directory, or FILE.zip.")
@json_option
@click.pass_context
@handles_errors
def archive_export(ctx: click.Context, plan_id: str, out: Path, as_json: bool) -> None:
    """Write PLAN_ID's bundle: index.html to open first (offline, in any browser), every version's plan JSON and
    letter PDF, the redline of each step (versions/v002-redline-from-v001.pdf: the changes only), every email
    in and out (.eml, and a page of text beside it), the audit log, an agreed plan's certificate of agreement,
    and manifest.json with each file's SHA-256 and the version chain.

    The same plan always exports to the same bytes. Keep the manifest SHA-256 it prints on record. With
    [archive] tsa_url set, a timestamp authority stamps manifest.json's SHA-256 and its answer is kept as
    manifest.json.tsr (new on every export). A full disk is an error (exit 2) that leaves no half-written bundle.

    \b
    Example:
      mutualplan archive export acme-northwind-2027 --out acme-northwind-2027.zip
      mutualplan archive export acme-northwind-2027 --out evidence/   # then open evidence/index.html
    """
    from pipeline.config import load_settings

    home = open_home(ctx)
    tsa_url = load_settings(home.settings(), str(home.settings_path)).tsa_url
    with home.open_store() as store:
        result = export(store, home.open_archive(), plan_id, out, redline=redline_renderer(), tsa_url=tsa_url)
    report_export(result, plan_id, as_json)


def report_export(result: ExportResult, plan_id: str, as_json: bool) -> None:
    """Say where a plan's bundle went and the manifest's SHA-256 to keep on record (a home's or a team seller's)."""
    if as_json:
        emit_json({"out": str(result.out), "manifest_sha256": result.manifest_sha256, "files": result.files,
                   "versions": result.versions})
        return
    console.print(f"Exported {result.versions} version(s) of {plan_id}, {result.files} files, to {result.out}",
                  soft_wrap=True)
    console.print(f"manifest.json SHA-256: {result.manifest_sha256}", soft_wrap=True)
    console.print("Keep that hash on record: with it, `mutualplan archive verify` proves the bundle unchanged.")


@archive.command("verify", short_help="Check a bundle's hashes, version chain and letters.")
@click.argument("bundle", type=click.Path(path_type=Path))
@json_option
@handles_errors
def archive_verify(bundle: Path, as_json: bool) -> None:
    """Check a bundle from its content alone: every file against its SHA-256 in manifest.json, the version chain,
    the plan each letter carries, the certificate of agreement's manifest hash and, when the bundle has one, its
    trusted timestamp. Exits 1 when anything is off, naming every file changed, added or missing; a zip with two
    entries of one name, or an entry that would unzip outside the bundle, is refused whole.

    Compare the printed manifest.json SHA-256 with the one kept on record at export: only that proves the
    bundle is the one exported (docs/archive.md says what each check proves).

    \b
    Example:
      mutualplan archive verify acme-northwind-2027.zip
      mutualplan archive verify evidence/ --json
    """
    report = verify(bundle)
    stamp = stamp_in(bundle) if report.ok else None
    if as_json:
        emit_json({**report.to_dict(), "timestamp": stamp.to_dict() if stamp else None})
    else:
        for problem in report.refused:
            console.print(f"[bold red]refused:[/] {escape(problem)}", soft_wrap=True)
        for label, names in (("changed", report.changed), ("missing", report.missing), ("added", report.added)):
            for name in names:
                console.print(f"[bold red]{label}:[/] {escape(name)}", soft_wrap=True)
        for problem in report.problems:
            console.print(f"[bold red]chain:[/] {escape(problem)}", soft_wrap=True)
        if report.ok:
            console.print(f"OK: {report.checked} files match their SHA-256; the chain of {report.versions} "
                          f"version(s) holds; {report.letters} letter(s) carry their version's plan.")
        if stamp is not None:
            console.print(f"Timestamped {stamp.time} by {stamp.authority} (RFC 3161, over manifest.json)",
                          soft_wrap=True)
        console.print(f"manifest.json SHA-256: {report.manifest_sha256 or '(none)'}", soft_wrap=True)
    if not report.ok:
        sys.exit(1)


archive.add_command(archive_certificate)

COMMANDS = [init, history, archive]
