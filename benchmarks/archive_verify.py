"""`archive export` and `archive verify` over a plan with 1,000 versions.

    python -m benchmarks.archive_verify [--versions N]

The plan gets N versions through the store (each moves M2: a real change, a new hash in the chain). Each
version keeps what the loop keeps: its letter (kept as the step's redline too, from version 2 on), the reply
that asked for it and the email that answered it, with the letter attached. The letters are the example
letter rendered once, each copy made distinct by a trailing PDF comment naming its version: real size and
real bytes to hash, without rendering a thousand letters (verify reads and hashes; it never renders). The
fixture is built with fsync off (not timed); export and verify then run as the CLI runs them, in process,
and `mutualplan archive verify` once more as a new process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from pypdf import PdfReader, PdfWriter

from benchmarks.common import START, Results, SimulatedClock, answer, example_plan, make_home, ms, timed
from pipeline.archive import export, verify
from pipeline.plan.changes import apply
from pipeline.plan.model import Change, canonical_json
from pipeline.render.letter import render_letter


@contextlib.contextmanager
def no_fsync() -> Iterator[None]:
    """Building the fixture only: durability is not what is measured, and 4,000 fsyncs would take a minute."""
    real = os.fsync
    os.fsync = lambda fd: None  # type: ignore[assignment]
    try:
        yield
    finally:
        os.fsync = real


def with_plan(letter: bytes, plan: Any) -> bytes:
    """The letter carrying `plan` as its plan.json, as each version's own letter does (verify checks it)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(letter)))
    spec = writer.root_object["/Names"]["/EmbeddedFiles"]["/Names"][1].get_object()
    spec["/EF"]["/F"].get_object().set_data(canonical_json(plan).encode("utf-8"))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def outgoing(plan_id: str, number: int, pdf: bytes) -> bytes:
    """The email that sent version `number`: a short text and the letter attached."""
    msg = EmailMessage()
    msg["From"] = "Jordan Lee <jordan.lee@northwind.example>"
    msg["To"] = "dana.whitfield@acme000.example"
    msg["Subject"] = f"Mutual Plan: Acme 000 and Northwind Analytics (version {number})"
    msg["Message-ID"] = f"<plan.{plan_id}.v{number}@northwind.example>"
    msg.set_content(f"Version {number} of our Mutual Plan is attached.\n")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"mutual-plan-v{number}.pdf")
    return bytes(msg)


def build(root: Path, versions: int) -> tuple[Any, Any, str]:
    """A home whose one plan has `versions` versions and their evidence; returns (store, archive, plan id)."""
    clock = SimulatedClock(START)
    home = make_home(root, plans=1, clock=clock)
    store, archive = home.open_store(), home.open_archive()
    plan = example_plan(0)
    letter = render_letter(plan, version=1, created=clock()).pdf
    with no_fsync(), store.transaction():
        current = plan
        for number in range(1, versions + 1):
            clock.advance(hours=1)
            if number > 1:
                due = date(2027, 2, 1) + timedelta(days=number % 20)
                current = apply(current, [Change(op="move", milestone="M2", due=due.isoformat())],
                                today=date(2027, 1, 11))
                store.add_version(current, author="dana.whitfield@acme000.example", reason="reply",
                                  changes=[Change(op="move", milestone="M2", due=due.isoformat())],
                                  message_id=f"<r{number}@acme000.example>", created=clock())
            pdf = with_plan(letter, current) + f"\n%benchmark copy of the letter of version {number}\n".encode()
            archive.keep(store, pdf, plan_id=plan.id, kind="letter", version=number, at=clock())
            if number > 1:
                archive.keep(store, pdf, plan_id=plan.id, kind="redline", version=number, at=clock())
                raw = answer(plan, number - 1, who="Dana", body=f"Please move the demo, take {number}.",
                             when=clock(), key=f"r{number}")
                archive.keep(store, raw, plan_id=plan.id, kind="in", version=number - 1, at=clock(),
                             message_id=f"<r{number}@acme000.example>")
            archive.keep(store, outgoing(plan.id, number, pdf), plan_id=plan.id, kind="out", version=number,
                         at=clock(), message_id=f"<plan.{plan.id}.v{number}@northwind.example>")
    return store, archive, plan.id


def bench_archive(results: Results, versions: int) -> None:
    """Section 6: export and verify a bundle of `versions` versions."""
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        store, archive, plan_id = build(Path(tmp) / "home", versions)
        try:
            export_dir, done = timed(lambda: export(store, archive, plan_id, Path(tmp) / "bundle"))
            export_zip, _ = timed(lambda: export(store, archive, plan_id, Path(tmp) / "bundle.zip"))
        finally:
            store.close()
        size = sum(p.stat().st_size for p in (Path(tmp) / "bundle").rglob("*") if p.is_file())
        verify_dir, report = timed(lambda: verify(Path(tmp) / "bundle"))
        assert report.ok and report.versions == versions, report.to_dict()
        verify_zip, report_zip = timed(lambda: verify(Path(tmp) / "bundle.zip"))
        assert report_zip.ok and report_zip.checked == report.checked
        cli = [sys.executable, "-m", "pipeline", "archive", "verify", str(Path(tmp) / "bundle")]
        cli_seconds, proc = timed(lambda: subprocess.run(cli, capture_output=True, text=True, check=False))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        zip_size = (Path(tmp) / "bundle.zip").stat().st_size
    results.add("archive", f"verify, {versions:,} versions (directory)", ms(verify_dir),
                f"{report.checked:,} files, {size / 2**20:,.0f} MB read and hashed")
    results.add("archive", f"verify, {versions:,} versions (zip)", ms(verify_zip), f"{zip_size / 2**20:,.0f} MB zip")
    results.add("archive", "`mutualplan archive verify DIR`, a new process", ms(cli_seconds), "imports included")
    results.add("archive", f"export, {versions:,} versions (directory / zip)", f"{ms(export_dir)} / {ms(export_zip)}",
                f"{done.files:,} files; every archived file re-hashed on read")
    results.data["archive"] = {"versions": versions, "files": report.checked, "bytes": size, "zip_bytes": zip_size,
                               "verify_dir": verify_dir, "verify_zip": verify_zip, "cli": cli_seconds,
                               "export_dir": export_dir, "export_zip": export_zip}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    args = parser.parse_args()
    results = Results()
    bench_archive(results, args.versions)
    print()
    print(results.table())


if __name__ == "__main__":
    main()
