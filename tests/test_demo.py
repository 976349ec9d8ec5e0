"""The README's first command: the demo runs the loop to agreement and leaves a bundle that verifies."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pipeline.archive import verify
from pipeline.cli import main


def test_demo_reaches_agreement_and_its_bundle_verifies(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    result = CliRunner().invoke(main, ["--home", str(home), "demo", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"]["state"] == "agreed"
    assert data["status"]["version"] == 2
    assert sorted(data["status"]["confirmed"]) == ["dana.whitfield@acme.example", "raj.patel@acme.example"]
    names = sorted(Path(p).name for p in data["letters"])
    assert names == ["v001-letter.pdf", "v002-letter.pdf", "v002-redline-from-v001.pdf"]
    # Each .eml is named <Message-ID>-<hash>.eml.
    sent = sorted(Path(p).name.rsplit("-", 1)[0] for p in data["emails"])
    assert [n.split("@")[0] for n in sent] == [
        "plan.acme-northwind-2027.v1", "plan.acme-northwind-2027.v2.agreed", "plan.acme-northwind-2027.v2"]
    report = verify(data["bundle"])
    assert report.ok, report.to_dict()


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "demo", "--fresh"])
    assert result.exit_code == 2
    assert "not a home" in result.output
    assert (tmp_path / "notes.txt").exists()
