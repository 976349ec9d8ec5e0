"""`mutualplan add`, `apply` and `diff` through the real command line, on a real home with its SQLite store."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.home import open_home
from pipeline.plan.changes import apply
from pipeline.plan.model import Change, plan_hash
from pipeline.plan.source import parse_plan

EXAMPLE = Path(__file__).parent / "fixtures" / "example-plan.md"
PLAN_ID = "acme-northwind-2027"
TODAY = "2027-01-15"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    result = CliRunner().invoke(main, ["--home", str(root), "init"])
    assert result.exit_code == 0, result.output
    return root


def run(home: Path, *args: str):
    # Wide enough that no table cell is folded, so the assertions below read whole phrases.
    return CliRunner().invoke(main, ["--home", str(home), *args], env={"COLUMNS": "200"})


def versions(home: Path):
    with open_home(home).open_store() as store:
        return store.versions(PLAN_ID)


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


# --- add ----------------------------------------------------------------------------------------


def test_add_stores_version_1_then_edits_as_next_versions(home: Path, tmp_path: Path) -> None:
    first = run(home, "add", str(EXAMPLE))
    assert first.exit_code == 0, first.output
    assert "Stored version 1 of acme-northwind-2027 (created, by jordan.lee@northwind.example)" in first.output

    same = run(home, "add", str(EXAMPLE))
    assert same.exit_code == 0, same.output
    assert "same as version 1" in same.output and "no new version" in same.output
    assert len(versions(home)) == 1

    # The seller drops the kick-off row and rewrites the call to action.
    text = EXAMPLE.read_text()
    edited = text.replace("| M7 | Kick-off meeting and introductions| Joint              | T+7d      |\n", "")
    edited = edited.replace("by Friday.", "by Wednesday.")
    assert edited.count("M7") == 0 and "Wednesday" in edited
    second = run(home, "add", str(write(tmp_path, "v2.md", edited)), "--json")
    assert second.exit_code == 0, second.output
    data = json.loads(second.output)
    assert (data["version"], data["stored"], data["reason"]) == (2, True, "seller edit")
    assert data["diff"]["milestones"] == [
        {"kind": "removed", "id": "M7", "title": "Kick-off meeting and introductions", "old": "2027-04-07", "new": None}
    ]
    assert data["diff"]["texts"][0]["heading"] == "Call to action"

    # A new row without an id gets M8: M7 was used once and is never given again.
    third_text = edited.replace(
        "| M6 | Signed order form / PO ",
        "|    | Security review                   | Acme               | T-20d     |\n| M6 | Signed order form / PO ",
    )
    third = run(home, "add", str(write(tmp_path, "v3.md", third_text)), "--author", "Jordan.Lee@Northwind.example")
    assert third.exit_code == 0, third.output
    stored = versions(home)
    assert [(v.number, v.reason, v.author) for v in stored] == [
        (1, "created", "jordan.lee@northwind.example"),
        (2, "seller edit", "jordan.lee@northwind.example"),
        (3, "seller edit", "jordan.lee@northwind.example"),
    ]
    assert [m.id for m in stored[2].plan.milestones] == ["M1", "M2", "M3", "M4", "M5", "M8", "M6"]
    assert stored[2].plan.milestone("M8").title == "Security review"
    assert stored[2].plan.next_number == 9
    assert stored[1].parent_hash == stored[0].hash and stored[2].parent_hash == stored[1].hash


def test_add_refuses_a_plan_that_does_not_parse(home: Path, tmp_path: Path) -> None:
    bad = EXAMPLE.read_text().replace("| M3+3d     |", "| M9+3d     |")
    result = run(home, "add", str(write(tmp_path, "bad.md", bad)))
    assert result.exit_code == 2
    assert "there is no milestone M9" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    missing = run(home, "add", str(tmp_path / "nope.md"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr


# --- apply --------------------------------------------------------------------------------------


def test_apply_stores_the_next_version_with_its_changes(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    changes = [
        {"op": "move", "milestone": "M3", "due": "2027-03-08"},
        {"op": "reassign", "milestone": "M5", "owner": "Raj Patel"},
    ]
    result = run(home, "apply", PLAN_ID, str(write(tmp_path, "c.json", changes)), "--today", TODAY,
                 "--author", "Dana.Whitfield@acme.example")  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    assert "Stored version 2" in result.output
    for text in ("Moved", "M3", "M4", "New owner", "Acme (Raj Patel)"):
        assert text in result.output, text
    v1, v2 = versions(home)
    assert v2.parent_hash == v1.hash
    assert (v2.reason, v2.author) == ("changes", "dana.whitfield@acme.example")
    assert v2.changes == (Change("move", milestone="M3", due="2027-03-08"),
                          Change("reassign", milestone="M5", owner="Raj Patel"))  # fmt: skip
    # The stored plan is exactly what the pure core makes of the same changes.
    expected = apply(parse_plan(EXAMPLE.read_text()), changes, today=date(2027, 1, 15))
    assert v2.hash == plan_hash(expected)


def test_apply_reads_parse_reply_output(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    reply = {
        "from": "dana.whitfield@acme.example",
        "intent": "amend",
        "confirms": [],
        "changes": [
            {"op": "add", "title": "Security review with Acme's CISO", "owner": "buyer", "due": None, "before": "M3"},
            {"op": "retarget", "target": "2027-04-15"},
        ],
    }
    result = run(home, "apply", PLAN_ID, str(write(tmp_path, "reply.json", reply)), "--today", TODAY, "--json")
    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads(result.output)
    assert data["version"] == 2
    assert data["diff"]["target"] == ["2027-03-31", "2027-04-15"]
    assert data["diff"]["slip_days"] == 15
    assert {"kind": "added", "id": "M8", "title": "Security review with Acme's CISO", "old": None, "new": None} in (
        data["diff"]["milestones"]
    )
    plan = versions(home)[1].plan
    assert [m.id for m in plan.milestones] == ["M1", "M2", "M8", "M3", "M4", "M5", "M6", "M7"]
    assert plan.milestone("M8").owner == "Acme Corp"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ([{"op": "move", "milestone": "M3", "due": "2027-03-08"}, {"op": "remove", "milestone": "M6"}],
         "change 2 (remove M6): M6 (Signed order form / PO) is the signature / PO step and cannot be removed"),
        ([{"op": "move", "milestone": "M3", "due": "2027-01-10"}], "2027-01-10 is already past (today is 2027-01-15)"),
        ([{"op": "move", "milestone": "M12", "due": "2027-03-08"}], "there is no milestone 'M12' in the plan"),
        ([{"op": "retarget", "target": "2026-12-31"}], "the new target date 2026-12-31 is already past"),
        ([{"op": "reassign", "milestone": "M2", "owner": "Someone Else"}], "the owner 'Someone Else' names nobody"),
        ([{"op": "move", "milestone": "M3"}], "change 1: a move needs due"),
        ({"intent": "amend"}, "has no `changes` key"),
        ("[{not json", "not valid JSON"),
    ],
)  # fmt: skip
def test_apply_refuses_and_makes_no_version(home: Path, tmp_path: Path, changes: object, message: str) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    result = run(home, "apply", PLAN_ID, str(write(tmp_path, "c.json", changes)), "--today", TODAY)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(versions(home)) == 1


def test_apply_to_an_unknown_plan(home: Path, tmp_path: Path) -> None:
    result = run(home, "apply", "nobody-2027", str(write(tmp_path, "c.json", [])), "--today", TODAY)
    assert result.exit_code == 2
    assert "no plan 'nobody-2027' in the store" in result.stderr
    assert "mutualplan add" in result.stderr


def test_apply_of_nothing_makes_no_version(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    result = run(home, "apply", PLAN_ID, str(write(tmp_path, "c.json", {"changes": []})), "--today", TODAY)
    assert result.exit_code == 0 and "no new version" in result.output
    assert len(versions(home)) == 1


# --- diff ---------------------------------------------------------------------------------------


@pytest.fixture
def three_versions(home: Path, tmp_path: Path) -> Path:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    moves = [
        {"op": "move", "milestone": "M3", "due": "2027-03-08"},
        {"op": "status", "milestone": "M1", "status": "done"},
    ]
    assert run(home, "apply", PLAN_ID, str(write(tmp_path, "a.json", moves)), "--today", TODAY).exit_code == 0
    later = [{"op": "retarget", "target": "2027-04-07"}, {"op": "remove", "milestone": "M4"}]
    assert run(home, "apply", PLAN_ID, str(write(tmp_path, "b.json", later)), "--today", TODAY).exit_code == 0
    return home


def test_diff_json_across_versions(three_versions: Path) -> None:
    result = run(three_versions, "diff", PLAN_ID, "1", "3", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.output)
    assert (data["plan_id"], data["old_version"], data["new_version"]) == (PLAN_ID, 1, 3)
    assert data["target"] == ["2027-03-31", "2027-04-07"] and data["slip_days"] == 7
    assert data["milestones"] == [
        {"kind": "moved", "id": "M1", "title": "Discovery workshop", "old": "2027-01-30", "new": "2027-02-06"},
        {"kind": "status", "id": "M1", "title": "Discovery workshop", "old": "proposed", "new": "done"},
        {"kind": "moved", "id": "M3", "title": "Pilot on Q4 data", "old": "2027-03-01", "new": "2027-03-08"},
        {"kind": "removed", "id": "M4", "title": "Reference call with a customer", "old": "2027-03-04", "new": None},
        {"kind": "moved", "id": "M5", "title": "Legal review of the MSA", "old": "2027-03-17", "new": "2027-03-24"},
        {"kind": "moved", "id": "M6", "title": "Signed order form / PO", "old": "2027-03-31", "new": "2027-04-07"},
        {"kind": "moved", "id": "M7", "title": "Kick-off meeting and introductions", "old": "2027-04-07",
         "new": "2027-04-14"},
    ]  # fmt: skip
    assert data["texts"] == [] and data["contacts_added"] == [] and data["contacts_removed"] == []


def test_diff_table(three_versions: Path) -> None:
    result = run(three_versions, "diff", PLAN_ID, "2", "3")
    assert result.exit_code == 0, result.stderr
    out = result.output
    assert "version 2 -> version 3" in out
    for text in ("Target moved", "Wed 7 Apr 2027 (7 days later)", "Removed", "Reference call with a customer"):
        assert text in out, text
    same = run(three_versions, "diff", PLAN_ID, "2", "2")
    assert same.exit_code == 0 and "No changes." in same.output


def test_diff_of_versions_that_do_not_exist(three_versions: Path) -> None:
    result = run(three_versions, "diff", PLAN_ID, "1", "9")
    assert result.exit_code == 2 and "has no version 9" in result.stderr
    result = run(three_versions, "diff", "other-plan", "1", "2")
    assert result.exit_code == 2 and "no plan 'other-plan'" in result.stderr
    both = run(three_versions, "diff", PLAN_ID, "1", "2", "--json", "--pdf", "x.pdf")
    assert both.exit_code == 2 and "cannot be used together" in both.stderr


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_diff_pdf_reads_back(three_versions: Path, tmp_path: Path) -> None:
    out = tmp_path / "redline.pdf"
    result = run(three_versions, "diff", PLAN_ID, "1", "3", "--pdf", str(out))
    assert result.exit_code == 0, result.output + result.stderr
    assert out.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert "Changes since version 1" in text
    assert "Reference call with a customer" in text  # the removed milestone is named in the table of changes
    backwards = run(three_versions, "diff", PLAN_ID, "3", "1", "--pdf", str(out))
    assert backwards.exit_code == 2 and "3 is not before 1" in backwards.stderr


def test_a_seller_edit_after_a_reply_keeps_what_the_reply_changed(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    moves = [{"op": "move", "milestone": "M3", "due": "2027-03-08"}]
    assert run(home, "apply", PLAN_ID, str(write(tmp_path, "c.json", moves)), "--today", TODAY).exit_code == 0
    # The seller edits their original file, which still says T-30d for M3: the move of version 2 stays.
    edited = write(tmp_path, "old.md", EXAMPLE.read_text().replace("by Friday.", "by Monday."))
    result = run(home, "add", str(edited))
    assert result.exit_code == 0, result.output + result.stderr
    assert "Stored version 3" in result.output
    assert "Mon 1 Mar 2027" not in result.output  # M3 does not go back
    assert "kept the changes of version 2 (changes by jordan.lee@northwind.example)" in result.output
    assert versions(home)[2].plan.milestone("M3").due == "2027-03-08"
