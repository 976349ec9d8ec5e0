"""`mutualplan init`, `history`, `archive export` and `archive verify` through the real command line."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.cli.versions import redline_renderer
from pipeline.home import open_home
from pipeline.plan.model import Change, Milestone, Plan, Prospect, Seller, plan_hash
from tests.archive_support import pdf

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
PLAN_ID = "acme-northwind-2027"


def make_plan(due: str) -> Plan:
    return Plan(
        id=PLAN_ID,
        seller=Seller("Northwind Analytics", email="jordan.lee@northwind.example"),
        prospect=Prospect("Acme Corp"),
        target=date(2027, 3, 31),
        milestones=(Milestone("M1", "Pilot on Q4 data", "Acme", due),),
        next_number=2,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home made by `init`, holding a plan in two versions with a letter and a reply."""
    root = tmp_path / "deals"
    result = CliRunner().invoke(main, ["--home", str(root), "init"])
    assert result.exit_code == 0, result.output
    assert f"Made a home at {root}" in result.output
    made = open_home(root)
    with made.open_store() as store:
        archive = made.open_archive()
        store.add_version(make_plan("T-30d"), author="jordan.lee@northwind.example", reason="created", created=T0)
        letter = pdf("Mutual Plan, version 1", make_plan("T-30d"))  # a real letter carries its plan.json
        archive.keep(store, letter, plan_id=PLAN_ID, kind="letter", version=1, at=T0)
        archive.keep(
            store,
            b"Message-ID: <r1@acme.example>\r\n\r\nMove the pilot to March 3.\r\n",
            plan_id=PLAN_ID,
            kind="in",
            version=1,
            message_id="<r1@acme.example>",
            at=T0,
        )
        store.add_version(
            make_plan("2027-03-03"),
            author="dana.whitfield@acme.example",
            reason="reply",
            changes=(Change(op="move", milestone="M1", due="2027-03-03"),),
            message_id="<r1@acme.example>",
            created=T0 + timedelta(days=1),
        )
    return root


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def test_init_in_the_home_of_the_variable_and_again(tmp_path: Path) -> None:
    root = tmp_path / "from-env"
    first = run("init", env={"MUTUALPLAN_HOME": str(root)})
    assert first.exit_code == 0 and (root / "mutualplan.toml").is_file()
    again = run("init", str(root))
    assert again.exit_code == 0 and "already a home" in again.output


def test_history_lists_when_who_why_and_hash(home: Path) -> None:
    result = run("--home", str(home), "history", PLAN_ID)
    assert result.exit_code == 0, result.output
    # (At 80 columns the table folds long addresses; the JSON below has them whole.)
    for text in (
        "2027-01-04 09:00",
        "created",
        "2027-01-05 09:00",
        "dana.whitfield@",
        "jordan.lee@",
        "reply: move M1",
        "<r1@acme.example>",
        plan_hash(make_plan("T-30d"))[:12],
        plan_hash(make_plan("2027-03-03"))[:12],
    ):
        assert text in result.output, text

    data = json.loads(run("--home", str(home), "history", PLAN_ID, "--json").output)
    assert data["plan_id"] == PLAN_ID and data["state"] == "open"
    assert [(v["number"], v["reason"], v["author"]) for v in data["versions"]] == [
        (1, "created", "jordan.lee@northwind.example"),
        (2, "reply", "dana.whitfield@acme.example"),
    ]
    assert data["versions"][1]["parent_hash"] == data["versions"][0]["hash"] == plan_hash(make_plan("T-30d"))
    assert data["versions"][1]["changes"] == [{"op": "move", "milestone": "M1", "due": "2027-03-03"}]


def test_history_of_an_unknown_plan_or_home_is_explained(home: Path, tmp_path: Path) -> None:
    result = run("--home", str(home), "history", "globex")
    assert result.exit_code == 2
    assert "no plan 'globex'" in result.output and PLAN_ID in result.output
    assert "Traceback" not in result.output
    result = run("--home", str(tmp_path / "nowhere"), "history", PLAN_ID)
    assert result.exit_code == 2 and "mutualplan init" in result.output


def test_export_then_verify_then_tamper(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "acme.zip"
    result = run("--home", str(home), "archive", "export", PLAN_ID, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Exported 2 version(s)" in result.output
    with zipfile.ZipFile(out) as bundle:
        names = bundle.namelist()
    assert "manifest.json" in names and any(n.startswith("emails/") and "-in-" in n for n in names)

    ok = run("archive", "verify", str(out))
    assert ok.exit_code == 0, ok.output
    assert "OK:" in ok.output

    letter = next(n for n in names if n.endswith(".pdf") and "redline" not in n)
    with zipfile.ZipFile(out) as bundle:
        files = {n: bundle.read(n) for n in names}
    files[letter] = files[letter][:100] + bytes([files[letter][100] ^ 1]) + files[letter][101:]
    files["extra.txt"] = b"who put this here?"
    with zipfile.ZipFile(out, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    bad = run("archive", "verify", str(out))
    assert bad.exit_code == 1
    assert f"changed: {letter}" in bad.output and "added: extra.txt" in bad.output

    report = json.loads(run("archive", "verify", str(out), "--json").output)
    assert (report["ok"], report["changed"], report["added"], report["missing"]) == (False, [letter], ["extra.txt"], [])


def test_export_to_a_directory_with_json_output(home: Path, tmp_path: Path) -> None:
    result = run("--home", str(home), "archive", "export", PLAN_ID, "--out", str(tmp_path / "b"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # 2 plan JSONs, 1 letter, 1 email and its page, audit, index, manifest; and step 2's redline.
    assert (data["versions"], data["files"]) == (2, 8 + (redline_renderer() is not None))
    assert run("archive", "verify", str(tmp_path / "b")).exit_code == 0
    (tmp_path / "b" / "audit.json").unlink()
    missing = run("archive", "verify", str(tmp_path / "b"))
    assert missing.exit_code == 1 and "missing: audit.json" in missing.output


def test_every_command_has_an_example_in_its_help() -> None:
    for args in (["init"], ["history"], ["archive"], ["archive", "export"], ["archive", "verify"]):
        result = run(*args, "--help")
        assert result.exit_code == 0 and "Example:" in result.output, args
