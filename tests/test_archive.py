"""The content-addressed archive, the export bundle and its verification, on real PDFs and real emails."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.archive import Archive, export, verify
from pipeline.errors import ArchiveError
from pipeline.plan.model import canonical_json, plan_hash
from tests.archive_support import PLAN_ID, Filled, filled, letters, pdf_text, redline_pdf

__all__ = ["filled", "letters"]  # fixtures, used by name

# --- the archive itself -----------------------------------------------------------------------------


def test_files_are_stored_once_by_their_sha256(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    data = b"%PDF-1.7 not really, but bytes are bytes"
    digest = hashlib.sha256(data).hexdigest()
    assert archive.put(data) == digest
    assert archive.put(data) == digest
    assert archive.path(digest) == tmp_path / "objects" / digest[:2] / digest[2:]
    assert archive.path(digest).read_bytes() == data
    assert [p.name for p in (tmp_path / "objects" / digest[:2]).iterdir()] == [digest[2:]]
    assert archive.has(digest) and archive.get(digest) == data
    assert not archive.has("0" * 64)


def test_a_missing_or_altered_file_is_never_returned(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    digest = archive.put(b"the letter of version 1")
    archive.path(digest).write_bytes(b"the letter of version 1, edited")
    with pytest.raises(ArchiveError, match=f"archived file {digest} has been altered"):
        archive.get(digest)
    with pytest.raises(ArchiveError, match=f"the archive has no file {'1' * 64}"):
        archive.get("1" * 64)
    with pytest.raises(ArchiveError, match="not a SHA-256"):
        archive.get("../../etc/passwd")


# --- export -------------------------------------------------------------------------------------------


def test_export_to_a_directory_holds_every_version_letter_and_email(filled: Filled, letters, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = export(filled.store, filled.archive, PLAN_ID, out)

    expected = {
        filled.name(1, "plan.json"): canonical_json(filled.plans[0]).encode(),
        filled.name(1, "letter.pdf"): letters["v1"],
        filled.name(2, "plan.json"): canonical_json(filled.plans[1]).encode(),
        filled.name(2, "letter.pdf"): letters["v2"],
        filled.name(2, "redline"): letters["redline2"],
        filled.name(3, "plan.json"): canonical_json(filled.plans[2]).encode(),
        filled.name(3, "letter.pdf"): letters["v3"],
        "emails/20270104T090100Z-out-" + hashlib.sha256(filled.out_mail).hexdigest()[:12] + ".eml": filled.out_mail,
        "emails/20270105T090000Z-in-" + hashlib.sha256(filled.in_mail).hexdigest()[:12] + ".eml": filled.in_mail,
    }
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    pages = {n.replace(".eml", ".html") for n in expected if n.endswith(".eml")}  # each email as a page to read
    assert written == {*expected, *pages, "audit.json", "index.html", "manifest.json"}
    for name, data in expected.items():
        assert (out / name).read_bytes() == data, name

    manifest = json.loads((out / "manifest.json").read_text())
    assert result.manifest_sha256 == hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    assert (result.files, result.versions) == (len(expected) + 5, 3)
    for name, data in expected.items():
        assert manifest["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    chain = [(v["number"], v["hash"], v["parent_hash"]) for v in manifest["versions"]]
    hashes = [plan_hash(p) for p in filled.plans]
    assert chain == [(1, hashes[0], None), (2, hashes[1], hashes[0]), (3, hashes[2], hashes[1])]
    v2 = manifest["versions"][1]
    assert (v2["author"], v2["reason"], v2["message_id"], v2["created"]) == (
        "dana.whitfield@acme.example", "reply", "<r1@acme.example>", "2027-01-05T09:01:00Z"
    )
    assert v2["changes"] == [{"op": "move", "milestone": "M2", "due": "2027-03-03"}]
    assert v2["letters"] == [filled.name(2, "letter.pdf")] and v2["redline"] == filled.name(2, "redline")
    assert manifest["versions"][2]["redline"] is None  # none kept, no renderer given
    assert [(e["direction"], e["message_id"]) for e in manifest["emails"]] == [
        ("out", "<plan-v1@northwind.example>"), ("in", "<r1@acme.example>")
    ]

    # Read back as what they are: the letters are PDFs, the emails are emails.
    assert "version 2" in pdf_text((out / filled.name(2, "letter.pdf")).read_bytes())
    assert "Changes since version 1" in pdf_text((out / filled.name(2, "redline")).read_bytes())
    reply = email.message_from_bytes((out / next(n for n in expected if "-in-" in n)).read_bytes(),
                                     policy=email.policy.default)
    assert reply["Message-ID"] == "<r1@acme.example>"
    assert "move the pilot to March 3" in reply.get_body().get_content()
    audit = json.loads((out / "audit.json").read_text())
    assert [a["event"] for a in audit].count("version added") == 3

    report = verify(out)
    assert report.ok, report.to_dict()
    assert (report.checked, report.versions, report.manifest_sha256) == (
        len(expected) + 4, 3, result.manifest_sha256
    )


def test_with_a_renderer_every_step_gets_its_redline_rendered(filled: Filled, tmp_path: Path) -> None:
    export(filled.store, filled.archive, PLAN_ID, tmp_path / "bundle", redline=redline_pdf)
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert [v["redline"] for v in manifest["versions"]] == [
        None, "versions/v002-redline-from-v001.pdf", "versions/v003-redline-from-v002.pdf"
    ]
    assert "Changes since version 1 in version 2" in pdf_text(
        (tmp_path / "bundle" / filled.name(2, "redline")).read_bytes()
    )
    assert "Changes since version 2 in version 3" in pdf_text(
        (tmp_path / "bundle" / filled.name(3, "redline")).read_bytes()
    )
    assert verify(tmp_path / "bundle").ok


def test_export_to_a_zip_is_the_same_bundle_and_the_same_bytes_every_time(filled: Filled, tmp_path: Path) -> None:
    first = export(filled.store, filled.archive, PLAN_ID, tmp_path / "a.zip")
    export(filled.store, filled.archive, PLAN_ID, tmp_path / "b.zip")
    export(filled.store, filled.archive, PLAN_ID, tmp_path / "dir")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()

    with zipfile.ZipFile(tmp_path / "a.zip") as bundle:
        infos = bundle.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        for name in names:
            assert bundle.read(name) == (tmp_path / "dir" / name).read_bytes(), name
    assert first.manifest_sha256 == hashlib.sha256((tmp_path / "dir" / "manifest.json").read_bytes()).hexdigest()
    report = verify(tmp_path / "a.zip")
    assert report.ok and report.checked == len(names) - 1


def test_export_refuses_what_it_cannot_do_cleanly(filled: Filled, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "old.txt").write_text("something else")
    with pytest.raises(ArchiveError, match="is not an empty directory"):
        export(filled.store, filled.archive, PLAN_ID, tmp_path / "busy")
    with pytest.raises(ArchiveError, match="no plan 'other'"):
        export(filled.store, filled.archive, "other", tmp_path / "x.zip")
    # A letter deleted from the archive: the export says which file, and writes no bundle.
    letter = filled.store.evidence(PLAN_ID, "letter")[0].sha256
    filled.archive.path(letter).unlink()
    with pytest.raises(ArchiveError, match=f"the archive has no file {letter}"):
        export(filled.store, filled.archive, PLAN_ID, tmp_path / "y.zip")
    assert not (tmp_path / "y.zip").exists()


def test_a_database_altered_behind_the_store_is_not_exported(filled: Filled, tmp_path: Path) -> None:
    with filled.store.engine.begin() as conn:
        # Someone with the database file removes the guard and rewrites history.
        conn.exec_driver_sql("DROP TRIGGER versions_no_update")
        conn.exec_driver_sql("UPDATE versions SET plan_json = replace(plan_json, 'Pilot', 'Trial') WHERE number = 2")
    with pytest.raises(ArchiveError, match="version 2 of plan acme-northwind-2027 in the store does not match"):
        export(filled.store, filled.archive, PLAN_ID, tmp_path / "bundle.zip")


# --- verify: every change is named ------------------------------------------------------------------


def _rewrite_zip(path: Path, edit: Callable[[dict[str, bytes]], None]) -> None:
    """Rewrite a zip with its members edited (as someone with a zip tool would)."""
    with zipfile.ZipFile(path) as bundle:
        files = {name: bundle.read(name) for name in bundle.namelist()}
    edit(files)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)


def _flip_one_byte(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


@pytest.fixture(params=["dir", "zip"])
def bundle(request: pytest.FixtureRequest, filled: Filled, tmp_path: Path) -> Path:
    out = tmp_path / ("bundle.zip" if request.param == "zip" else "bundle")
    export(filled.store, filled.archive, PLAN_ID, out)
    assert verify(out).ok
    return out


def _tamper(bundle: Path, edit: Callable[[dict[str, bytes]], None]) -> None:
    if bundle.suffix == ".zip":
        _rewrite_zip(bundle, edit)
        return
    files = {p.relative_to(bundle).as_posix(): p.read_bytes() for p in bundle.rglob("*") if p.is_file()}
    before = dict(files)
    edit(files)
    for name in before.keys() - files.keys():
        (bundle / name).unlink()
    for name, data in files.items():
        if before.get(name) != data:
            (bundle / name).parent.mkdir(parents=True, exist_ok=True)
            (bundle / name).write_bytes(data)


def test_one_changed_byte_is_named(bundle: Path, filled: Filled) -> None:
    target = filled.name(2, "letter.pdf")

    def edit(files: dict[str, bytes]) -> None:
        files[target] = _flip_one_byte(files[target])

    _tamper(bundle, edit)
    report = verify(bundle)
    assert not report.ok
    assert (report.changed, report.missing, report.added, report.problems) == ([target], [], [], [])


def test_a_deleted_file_is_named(bundle: Path) -> None:
    target = next(n for n in _names(bundle) if "-in-" in n)

    def edit(files: dict[str, bytes]) -> None:
        del files[target]

    _tamper(bundle, edit)
    report = verify(bundle)
    assert (report.ok, report.changed, report.missing, report.added) == (False, [], [target], [])


def test_an_added_file_is_named(bundle: Path) -> None:
    def edit(files: dict[str, bytes]) -> None:
        files["emails/forged-reply.eml"] = b"From: dana.whitfield@acme.example\r\n\r\nI agree to everything.\r\n"

    _tamper(bundle, edit)
    report = verify(bundle)
    assert (report.ok, report.changed, report.missing, report.added) == (False, [], [], ["emails/forged-reply.eml"])


def test_a_plan_file_rewritten_with_its_manifest_entry_still_breaks_the_chain(bundle: Path, filled: Filled) -> None:
    target = filled.name(2, "plan.json")

    def edit(files: dict[str, bytes]) -> None:
        forged = files[target].replace(b"2027-03-03", b"2027-02-01")
        files[target] = forged
        manifest = json.loads(files["manifest.json"])
        manifest["files"][target] = {"sha256": hashlib.sha256(forged).hexdigest(), "size": len(forged)}
        files["manifest.json"] = json.dumps(manifest).encode()

    _tamper(bundle, edit)
    report = verify(bundle)
    assert (report.changed, report.missing, report.added) == ([], [], [])
    assert report.problems == [f"version 2: {target} does not hash to the version's hash"]


def test_a_broken_parent_link_is_named(bundle: Path) -> None:
    def edit(files: dict[str, bytes]) -> None:
        manifest = json.loads(files["manifest.json"])
        manifest["versions"][2]["parent_hash"] = manifest["versions"][0]["hash"]
        files["manifest.json"] = json.dumps(manifest).encode()

    _tamper(bundle, edit)
    assert verify(bundle).problems == ["version 3: its parent hash is not the hash of version 2"]


def test_a_bundle_without_its_manifest_fails(bundle: Path) -> None:
    def edit(files: dict[str, bytes]) -> None:
        del files["manifest.json"]

    _tamper(bundle, edit)
    report = verify(bundle)
    assert not report.ok and report.missing == ["manifest.json"]
    assert "audit.json" in report.added


def test_a_byte_flipped_inside_the_zip_file_itself_is_named(filled: Filled, tmp_path: Path) -> None:
    out = tmp_path / "bundle.zip"
    export(filled.store, filled.archive, PLAN_ID, out)
    target = filled.name(3, "letter.pdf")
    with zipfile.ZipFile(out) as bundle:
        info = bundle.getinfo(target)
    raw = bytearray(out.read_bytes())
    # The member's data starts after its 30-byte local header, name and extra field.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0x01
    out.write_bytes(bytes(raw))
    report = verify(out)
    assert (report.changed, report.missing, report.added) == ([target], [], [])


def test_verify_refuses_what_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no bundle at"):
        verify(tmp_path / "nothing")
    (tmp_path / "notes.zip").write_text("not a zip")
    with pytest.raises(ArchiveError, match="is not a zip file"):
        verify(tmp_path / "notes.zip")


def _names(bundle: Path) -> list[str]:
    if bundle.suffix == ".zip":
        with zipfile.ZipFile(bundle) as z:
            return z.namelist()
    return [p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()]


def test_copying_a_bundle_keeps_it_valid(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / ("copy.zip" if bundle.suffix == ".zip" else "copy")
    if bundle.is_dir():
        shutil.copytree(bundle, copy)
    else:
        shutil.copy(bundle, copy)
    assert verify(copy).ok
