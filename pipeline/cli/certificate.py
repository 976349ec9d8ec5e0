"""`mutualplan archive certificate`: the certificate of agreement of an agreed plan, on demand."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.common import console, emit_json, handles_errors, json_option, open_home
from pipeline.durable import write_atomic
from pipeline.errors import ArchiveError


@click.command("certificate", short_help="Write the certificate of agreement of an agreed plan (PDF/A-3b).")
@click.argument("plan_id")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The PDF to write.")
@json_option
@click.pass_context
@handles_errors
def archive_certificate(ctx: click.Context, plan_id: str, out: Path, as_json: bool) -> None:
    """Write PLAN_ID's certificate of agreement: the agreed version and its letter's SHA-256, each confirmation
    (its email's Message-ID, Date, when received, how the sender was authenticated, the words as written, or the
    seller's note when recorded by hand), the version chain, and the SHA-256 of the bundle's manifest.

    It is byte for byte the certificate `archive export` puts in the bundle today (its manifest hash is that
    bundle's); the 'agreed' email carries one made when the plan was agreed, over the bundle as it was then.

    \b
    Example:
      mutualplan archive certificate acme-northwind-2027 --out acme-certificate.pdf
    """
    from pipeline.loop.service import Service

    with Service.open(open_home(ctx)) as service:
        name, pdf = service.certificate(plan_id)
    write_certificate(out, plan_id, name, pdf, as_json)


def write_certificate(out: Path, plan_id: str, name: str, pdf: bytes, as_json: bool) -> None:
    """Write a plan's certificate of agreement to `out` whole, and say so (a home's or a team seller's)."""
    try:
        write_atomic(out, pdf)
    except OSError as exc:
        raise ArchiveError(f"cannot write the certificate to {out}: {exc.strerror}",
                           hint="give a file in a folder that exists and that you may write") from None
    if as_json:
        emit_json({"out": str(out), "file": name, "bytes": len(pdf)})
        return
    console.print(f"Wrote the certificate of agreement of {plan_id} to {out} ({len(pdf):,} bytes)", soft_wrap=True)
