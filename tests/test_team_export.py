"""`team export` and `team certificate`: a team seller's agreed plan exported from PostgreSQL as the bundle a home
writes (it verifies; its letters, emails and certificate are the ones the team kept), and a plan of another seller,
or a seller not in the team, refused by name."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pypdf import PdfReader

from pipeline.archive import MANIFEST
from pipeline.cli import main
from pipeline.team.parts import seller_service
from pipeline.team.settings import TEAM_FILE, load_team
from pipeline.team.store import TeamArchive, TeamStore
from tests.archive_support import pdf_text
from tests.loop_support import DANA, RAJ, V1, reply
from tests.test_team_isolation import OTHER, PLAN, deliver, example, make_team
from tests.test_tsa import TSA_NAME, authority  # noqa: F401 - a timestamp authority on loopback, used by name

_names = itertools.count()
CONFIRMED = ("<d@acme.example>", "<r@acme.example>")  # Dana's and Raj's confirming replies
CERTIFICATE = "certificate-of-agreement-v002.pdf"
V2 = V1.replace(".v1@", ".v2@")
# Version 2 moves the technical demo a week: the step a redline shows.
DEMO_MOVED = ("| M2 | Technical demo for Acme IT        | Northwind          | 2027-02-10|",
              "| M2 | Technical demo for Acme IT        | Northwind          | 2027-02-17|")


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, postgres_server: object) -> Path:
    """Jo's plan sent, then its version 2, which both its confirming contacts confirm (agreed); Sam's plan added,
    not sent."""
    root = tmp_path_factory.mktemp("team-export")
    url = postgres_server.create_database(f"export_{next(_names)}_{root.name[-8:].lower()}")  # type: ignore[attr-defined]
    settings = make_team(root, url, {"jo": "jordan.lee@northwind.example", "sam": "sam.ito@northwind.example"})
    team_store = TeamStore(settings.store_url)
    with seller_service(team_store, settings.seller("jo"), root) as jo:
        jo.add_source(example(), file="acme.md")
        jo.send_plan(PLAN)
        assert DEMO_MOVED[0] in example()
        jo.add_source(example().replace(*DEMO_MOVED), file="acme.md")
        jo.send_plan(PLAN)
    when = datetime.now(UTC)
    for name, who in (("d", DANA), ("r", RAJ)):
        deliver(root, "jo", name, reply(who, "Confirmed - thanks.", message_id=f"<{name}@acme.example>", when=when,
                                        in_reply_to=V2))
    with seller_service(team_store, settings.seller("jo"), root) as jo:
        assert jo.poll().errors == []
        assert jo.store.plan_state(PLAN) == "agreed"
    with seller_service(team_store, settings.seller("sam"), root) as sam:
        sam.add_source(example(OTHER), file="globex.md")
    team_store.close()
    return root / "team"


def cli(team: Path, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"MUTUALPLAN_TEAM": str(team), "COLUMNS": "200"})


def kept(team: Path, seller: str, kind: str) -> dict[str, bytes]:
    """What the team's archive keeps of a seller's plan, of one kind ("letter", "in", "out"), by Message-ID or
    SHA-256."""
    settings = load_team(team / TEAM_FILE)
    team_store = TeamStore(settings.store_url)
    try:
        with team_store.seller_store(settings.seller(seller).scope) as store:
            return {e.message_id or e.sha256: TeamArchive(team_store).get(e.sha256) for e in store.evidence(PLAN, kind)}
    finally:
        team_store.close()


def test_a_sellers_agreed_plan_exports_as_a_bundle_that_verifies(team: Path, tmp_path: Path) -> None:
    out = tmp_path / "acme.zip"
    result = cli(team, "team", "export", "jo", PLAN, str(out), "--json")
    assert result.exit_code == 0, result.output
    said = json.loads(result.output)
    with zipfile.ZipFile(out) as bundle:
        files = {name: bundle.read(name) for name in bundle.namelist()}
    assert said["manifest_sha256"] == hashlib.sha256(files[MANIFEST]).hexdigest()
    assert (said["versions"], said["files"]) == (2, len(files))

    checked = cli(team, "archive", "verify", str(out), "--json")
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.output)
    assert report["ok"] and (report["versions"], report["letters"]) == (2, 2)
    assert report["manifest_sha256"] == said["manifest_sha256"]

    manifest = json.loads(files[MANIFEST])
    assert (manifest["plan_id"], manifest["state"]) == (PLAN, "agreed")
    assert [v["letters"] for v in manifest["versions"]] == [["versions/v001-letter.pdf"],
                                                            ["versions/v002-letter.pdf"]]
    # Each letter is the one the team's archive kept when its version went out, and reads as that version's.
    letters = [files[f"versions/v00{n}-letter.pdf"] for n in (1, 2)]
    assert letters == list(kept(team, "jo", "letter").values())
    for number, letter in enumerate(letters, start=1):
        title = PdfReader(io.BytesIO(letter)).metadata.title
        assert title == f"Mutual Plan: Acme Corp and Northwind Analytics (version {number})"
        text = pdf_text(letter)
        assert f"Mutual Plan for Acme Corp Mutual Plan {PLAN} · version {number}" in text
        assert "Acme wants one forecast" in text
    # The step's redline, rendered as a home's export renders it: the demo's move and nothing else.
    assert manifest["versions"][1]["redline"] == "versions/v002-redline-from-v001.pdf"
    redline = pdf_text(files["versions/v002-redline-from-v001.pdf"])
    assert "Changes since version 1" in redline
    assert "Moved M2 Technical demo for Acme IT Wed 10 Feb 2027 Wed 17 Feb 2027" in redline
    assert "Pilot on Q4 data" not in redline
    # Every email in and out: both versions', and both confirmations, each the bytes the team kept.
    emails = {(e["direction"], e["message_id"]): e["file"] for e in manifest["emails"]}
    said_ids = {(direction, message_id.strip("<>")) for direction, message_id in emails}
    assert {("out", V1.strip("<>")), ("out", V2.strip("<>")), *(("in", c.strip("<>")) for c in CONFIRMED)} <= said_ids
    for direction in ("in", "out"):
        for message_id, raw in kept(team, "jo", direction).items():
            assert files[emails[(direction, message_id)]] == raw, message_id
    dana = next(file for (_, message_id), file in emails.items() if message_id.strip("<>") == "d@acme.example")
    assert b"Confirmed - thanks." in files[dana] and f"From: Dana Whitfield <{DANA}>".encode() in files[dana]
    # Agreed: the certificate of agreement is in the bundle and names both confirmations.
    assert CERTIFICATE in manifest["documents"]
    assert all(message_id in pdf_text(files[CERTIFICATE]) for message_id in CONFIRMED)


def test_a_directory_export_says_its_hash_and_holds_the_same_bytes(team: Path, tmp_path: Path) -> None:
    zipped, folder = tmp_path / "acme.zip", tmp_path / "evidence"
    assert cli(team, "team", "export", "jo", PLAN, str(zipped)).exit_code == 0
    result = cli(team, "team", "export", "jo", PLAN, str(folder))
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
    assert f"Exported 2 version(s) of {PLAN}" in result.output and f"to {folder}" in result.output
    assert f"manifest.json SHA-256: {digest}" in result.output
    assert (folder / "index.html").is_file()
    with zipfile.ZipFile(zipped) as bundle:
        assert bundle.read(MANIFEST) == (folder / MANIFEST).read_bytes()  # the same plan, the same bytes


def test_the_certificate_states_what_the_bundle_holds(team: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli(team, "team", "export", "jo", PLAN, str(tmp_path / "bundle")).exit_code == 0
    stated = json.loads((tmp_path / "bundle" / MANIFEST).read_bytes())["certificate"]["evidence_manifest_sha256"]
    in_bundle = pdf_text((tmp_path / "bundle" / CERTIFICATE).read_bytes()).split()
    result = cli(team, "team", "certificate", "jo", PLAN, str(tmp_path / "cert.pdf"), "--json")
    assert result.exit_code == 0, result.output
    written = (tmp_path / "cert.pdf").read_bytes()
    assert json.loads(result.output) == {"out": str(tmp_path / "cert.pdf"), "file": CERTIFICATE,
                                         "bytes": len(written)}
    # Word for word the bundle's certificate (version 2, both confirmations, the chain), the manifest SHA-256
    # included: on demand, the redlines are rendered as an export renders them.
    own = pdf_text(written).split()
    assert stated in own and own == in_bundle
    assert all(message_id in own for message_id in CONFIRMED)
    monkeypatch.chdir(tmp_path)  # without OUT: the certificate's own name, here
    result = cli(team, "team", "certificate", "jo", PLAN)
    assert result.exit_code == 0, result.output
    assert f"Wrote the certificate of agreement of {PLAN} to {CERTIFICATE}" in result.output
    assert (tmp_path / CERTIFICATE).read_bytes() == written  # the same plan, the same certificate


def test_a_plan_not_yet_agreed_has_no_certificate(team: Path, tmp_path: Path) -> None:
    result = cli(team, "team", "certificate", "sam", OTHER, str(tmp_path / "cert.pdf"))
    assert result.exit_code == 2 and f"plan {OTHER} has not been agreed" in result.output
    assert not (tmp_path / "cert.pdf").exists()


@pytest.mark.parametrize(("seller", "plan"), [("jo", OTHER), ("sam", PLAN)])
@pytest.mark.parametrize("command", ["export", "certificate"])
def test_another_sellers_plan_is_refused_naming_the_seller(team: Path, tmp_path: Path, seller: str, plan: str,
                                                           command: str) -> None:
    out = tmp_path / "out.zip"
    result = cli(team, "team", command, seller, plan, str(out))
    assert result.exit_code == 2, result.output
    assert f"plan {plan} is not seller {seller}'s: another seller of the team holds it" in result.output
    own = {"jo": PLAN, "sam": OTHER}[seller]
    assert f"{seller}'s plans: {own}" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_an_unknown_seller_or_plan_is_a_clear_error(team: Path, tmp_path: Path) -> None:
    result = cli(team, "team", "export", "kim", PLAN, str(tmp_path / "out.zip"))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "no seller 'kim' in the team" in result.output and "known sellers: jo, sam" in result.output
    result = cli(team, "team", "export", "jo", "initech-2027", str(tmp_path / "out.zip"))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "seller jo has no plan 'initech-2027'" in result.output and f"jo's plans: {PLAN}" in result.output
    assert not (tmp_path / "out.zip").exists()


def test_a_timestamp_authority_stamps_the_bundle(team: Path, tmp_path: Path,
                                                 authority: tuple[str, Path]) -> None:  # noqa: F811
    out = tmp_path / "bundle"
    result = cli(team, "team", "export", "jo", PLAN, str(out), "--tsa-url", authority[0])
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json.tsr").is_file()
    checked = cli(team, "archive", "verify", str(out))
    assert checked.exit_code == 0, checked.output
    assert f"by Common Name: {TSA_NAME}" in checked.output


def test_a_tsa_url_that_is_not_an_address_is_refused(team: Path, tmp_path: Path) -> None:
    result = cli(team, "team", "export", "jo", PLAN, str(tmp_path / "bundle"), "--tsa-url", "freetsa.org")
    assert result.exit_code == 2
    assert "--tsa-url must be the http(s) address of a timestamp authority, not 'freetsa.org'" in result.output
    assert not (tmp_path / "bundle").exists()
