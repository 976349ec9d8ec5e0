"""`mutualplan export` writes a stored version back as plan Markdown that `add` reads; `add` of a file written from
an older version keeps what the prospect changed since, or shows what it would undo and wants `--revert`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.home import open_home
from pipeline.loop.service import Reason, Service, make_version
from pipeline.plan.changes import apply as apply_changes
from pipeline.plan.diff import diff
from pipeline.plan.merge import merge
from pipeline.plan.model import Change, plan_hash
from pipeline.plan.source import parse_plan, write_plan
from pipeline.replies.plan_email import Person, email_plan

EXAMPLE = Path(__file__).parent / "fixtures" / "example-plan.md"
PLAN_ID = "acme-northwind-2027"
TODAY = "2027-01-15"
DANA = "dana.whitfield@acme.example"
M2_ROW = "| M2 | Technical demo for Acme IT        | Northwind          | 2027-02-10|"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    assert CliRunner().invoke(main, ["--home", str(root), "init"]).exit_code == 0
    return root


def run(home: Path, *args: str):
    return CliRunner().invoke(main, ["--home", str(home), *args], env={"COLUMNS": "200"})


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def versions(home: Path, plan_id: str = PLAN_ID):
    with open_home(home).open_store() as store:
        return store.versions(plan_id)


def prospect_moves(home: Path, tmp_path: Path, milestone: str, due: str) -> None:
    """The prospect asks for a milestone on another date (as a reply would): the next version."""
    changes = write(tmp_path, f"{milestone}.json", json.dumps([{"op": "move", "milestone": milestone, "due": due}]))
    result = run(home, "apply", PLAN_ID, str(changes), "--today", TODAY, "--author", DANA)
    assert result.exit_code == 0, result.output + result.stderr


def due(home: Path, number: int, milestone: str) -> str:
    return versions(home)[number - 1].plan.milestone(milestone).due


# --- export ---------------------------------------------------------------------------------------


def test_export_writes_the_current_version_that_add_reads_back(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    prospect_moves(home, tmp_path, "M3", "2027-03-08")
    out = run(home, "export", PLAN_ID)
    assert out.exit_code == 0, out.stderr
    assert out.output.startswith("---\nid: acme-northwind-2027\nversion: 2\n")
    assert "| M3 | Pilot on Q4 data" in out.output and "2027-03-08" in out.output
    assert plan_hash(parse_plan(out.output)) == versions(home)[1].hash

    # Export, then add: nothing changed, so no version.
    again = run(home, "add", str(write(tmp_path, "v2.md", out.output)))
    assert again.exit_code == 0, again.output + again.stderr
    assert "same as version 2" in again.output and len(versions(home)) == 2

    # Export, edit one line, add: exactly that change.
    edited = out.output.replace("Technical demo for Acme IT", "Technical demo for Acme IT and security")
    assert edited.count("and security") == 1
    third = run(home, "add", str(write(tmp_path, "v3.md", edited)), "--json")
    assert third.exit_code == 0, third.output + third.stderr
    data = json.loads(third.output)
    assert (data["version"], data["reason"], data["base"]) == (3, "seller edit", 2)
    assert data["diff"]["milestones"] == [{"kind": "renamed", "id": "M2", "title": "Technical demo for Acme IT and "
                                           "security", "old": "Technical demo for Acme IT",
                                           "new": "Technical demo for Acme IT and security"}]  # fmt: skip
    assert data["diff"]["texts"] == [] and data["diff"]["target"] is None


def test_export_to_a_file_and_of_an_older_version(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    prospect_moves(home, tmp_path, "M3", "2027-03-08")
    target = tmp_path / "out" / "acme.md"
    result = run(home, "export", PLAN_ID, "--version", "1", "--out", str(target), "--json")
    assert result.exit_code == 0, result.output + result.stderr
    assert json.loads(result.output) == {"plan_id": PLAN_ID, "version": 1, "current": 2, "out": str(target),
                                         "hash": versions(home)[0].hash}  # fmt: skip
    text = target.read_text(encoding="utf-8")
    assert "version: 1\n" in text and "| T-30d" in text  # version 1's M3, as the seller wrote it
    # The seller's file is never overwritten by accident.
    again = run(home, "export", PLAN_ID, "--out", str(target))
    assert again.exit_code == 2 and "already exists" in again.stderr and "--force" in again.stderr
    plain = run(home, "export", PLAN_ID, "--out", str(target), "--force")
    assert plain.exit_code == 0, plain.output + plain.stderr
    assert f"Wrote version 2 of {PLAN_ID} to {target}" in " ".join(plain.output.split())
    assert "version: 2\n" in target.read_text(encoding="utf-8")
    as_json = json.loads(run(home, "export", PLAN_ID, "--json").output)
    assert as_json["version"] == 2 and as_json["markdown"] == target.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody-2027"], "no plan 'nobody-2027' in the store"),
        ([PLAN_ID, "--version", "4"], "has no version 4"),
    ],
)
def test_export_of_what_is_not_there(home: Path, args: list[str], message: str) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    result = run(home, "export", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_plan_typed_in_outlook_exports_for_the_seller_to_edit(home: Path, tmp_path: Path) -> None:
    body = ("Target: 2027-04-30\n\n## Timeline\n| # | Activity | Owner | Due |\n|---|---|---|---|\n"
            "| M1 | Discovery call | Joint | T-45d |\n| M2 | Signed order form | Globex (Priya) | T |\n")  # fmt: skip
    with Service.open(open_home(home)) as service:
        settings = service.parts.settings
        # As the watcher reads a plan email: the letterhead and the timezone from the home's settings.
        typed = email_plan(body, sender=Person("Jordan Lee", "jordan.lee@northwind.example"),
                           to=[Person("Priya Raman", "priya.raman@globex.example")],
                           seller={"company": "Northwind Analytics"},
                           letterhead=settings.letterhead, timezone=settings.seller_timezone).plan
        make_version(service.store, typed, author="jordan.lee@northwind.example", reason=Reason.PLAN_EMAIL,
                     created=service.now())
    out = run(home, "export", typed.id)
    assert out.exit_code == 0, out.stderr
    same = run(home, "add", str(write(tmp_path, "globex.md", out.output)))
    assert same.exit_code == 0 and "same as version 1" in same.output, same.output + same.stderr
    edited = out.output.replace("Discovery call", "Discovery call with IT")
    result = run(home, "add", str(write(tmp_path, "globex.md", edited)), "--json")
    assert result.exit_code == 0, result.output + result.stderr
    assert [c["kind"] for c in json.loads(result.output)["diff"]["milestones"]] == ["renamed"]


# --- add of a file written from an older version --------------------------------------------------


def test_an_old_file_keeps_the_prospects_changes(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    prospect_moves(home, tmp_path, "M3", "2027-03-08")
    # The seller edits the file they added first: it still says T-30d for M3 and has no `version:`.
    old = write(tmp_path, "old.md", EXAMPLE.read_text().replace("by Friday.", "by Monday."))
    result = run(home, "add", str(old))
    assert result.exit_code == 0, result.output + result.stderr
    assert "Stored version 3" in result.output
    assert "kept the changes of version 2" in " ".join(result.output.split())
    v3 = versions(home)[2]
    assert v3.plan.milestone("M3").due == "2027-03-08"  # the prospect's date stays
    assert v3.plan.section("cta").body == "Dana to confirm the pilot data set by Monday."
    assert diff(versions(home)[1].plan, v3.plan, old_version=2, new_version=3).milestones == ()


def test_an_old_file_that_changes_what_the_prospect_changed_is_refused(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    prospect_moves(home, tmp_path, "M3", "2027-03-08")
    old_text = EXAMPLE.read_text().replace("| T-30d     |", "| T-25d     |")
    result = run(home, "add", str(write(tmp_path, "old.md", old_text)))
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "old.md was written from version 1 of acme-northwind-2027" in message
    assert "version 2 (changes by dana.whitfield@acme.example)" in message
    assert "Moved: M3 Pilot on Q4 data, from Mon 8 Mar 2027 to Sat 6 Mar 2027" in message
    assert "mutualplan export acme-northwind-2027" in message and "--revert" in message
    assert len(versions(home)) == 2

    reverted = run(home, "add", str(write(tmp_path, "old.md", old_text)), "--revert")
    assert reverted.exit_code == 0, reverted.output + reverted.stderr
    assert "Stored version 3" in reverted.output
    said = " ".join(reverted.output.split())
    assert "undid them, as --revert asked: - Moved: M3 Pilot on Q4 data, from Mon 8 Mar 2027 to Sat 6 Mar 2027" in said
    assert due(home, 3, "M3") == "T-25d"


def test_the_version_a_file_was_exported_from_is_its_base(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    prospect_moves(home, tmp_path, "M3", "2027-03-08")
    exported = run(home, "export", PLAN_ID).output  # version: 2
    edited = write(tmp_path, "v2.md", exported.replace("Technical demo for Acme IT", "Technical demo for IT"))
    assert run(home, "add", str(edited)).exit_code == 0  # version 3: M2 renamed
    prospect_moves(home, tmp_path, "M5", "2027-03-20")  # version 4
    # The same file again: its edit is in version 4 already, and the prospect's move of M5 stays.
    again = run(home, "add", str(edited))
    assert again.exit_code == 0 and "same as version 4" in again.output, again.output + again.stderr
    # It changes M3 now, which the prospect moved in version 2, before the file was exported: no clash.
    moved = write(tmp_path, "v2b.md", exported.replace("2027-03-08", "2027-03-10"))
    result = run(home, "add", str(moved), "--json")
    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads(result.output)
    assert (data["version"], data["base"], data["kept"]) == (5, 2, [3, 4])
    assert (due(home, 5, "M2"), due(home, 5, "M3"), due(home, 5, "M5")) == ("2027-02-10", "2027-03-10", "2027-03-20")


def test_edits_that_cannot_stand_on_the_current_version_are_refused(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    removal = write(tmp_path, "rm.json", json.dumps([{"op": "remove", "milestone": "M4"}]))
    assert run(home, "apply", PLAN_ID, str(removal), "--today", TODAY, "--author", DANA).exit_code == 0
    # The old file counts the legal review from M4, which the prospect removed since.
    old = EXAMPLE.read_text().replace("| T-14d     |", "| M4+7d     |")
    result = run(home, "add", str(write(tmp_path, "old.md", old)))
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "old.md and version 2 of acme-northwind-2027 cannot be combined" in message and "M4" in message
    assert "mutualplan export acme-northwind-2027" in message and len(versions(home)) == 2


def test_a_version_that_is_not_there_is_refused(home: Path, tmp_path: Path) -> None:
    assert run(home, "add", str(EXAMPLE)).exit_code == 0
    text = EXAMPLE.read_text().replace("letterhead: northwind", "version: 7\nletterhead: northwind")
    result = run(home, "add", str(write(tmp_path, "v7.md", text)))
    assert result.exit_code == 2 and "acme-northwind-2027 has no version 7" in result.stderr
    bad = run(home, "add", str(write(tmp_path, "vx.md", text.replace("version: 7", "version: seven"))))
    assert bad.exit_code == 2 and "version" in bad.stderr and "whole number" in bad.stderr



# --- the merge itself -----------------------------------------------------------------------------


def _example():
    return parse_plan(EXAMPLE.read_text(encoding="utf-8"))


def _edit(text_from, old: str, new: str):
    text = write_plan(text_from)
    assert text.count(old) == 1, old
    return parse_plan(text.replace(old, new))


def test_steps_both_sides_added_keep_their_places_and_get_ids_of_their_own() -> None:
    base = _example()
    theirs = apply_changes(base, [Change("add", title="Security review", owner="buyer", before="M3")],
                           today=date(2027, 1, 15))  # fmt: skip
    assert [m.id for m in theirs.milestones][:4] == ["M1", "M2", "M8", "M3"]
    # The seller's file, written from the base, adds two steps after M4, numbered from the same counter: M8, M9.
    rows = "| M8 | Reference visit | Northwind | T-20d |\n| M9 | Visit notes | Northwind | M8+2d |\n"
    mine = _edit(base, "| M5 |", rows + "| M5 |")
    merged = merge(base, mine, theirs)
    assert merged.clashes == ()
    steps = [(m.id, m.title) for m in merged.plan.milestones]
    assert steps[2:8] == [("M8", "Security review"), ("M3", "Pilot on Q4 data"),
                          ("M4", "Reference call with a customer"), ("M10", "Reference visit"), ("M9", "Visit notes"),
                          ("M5", "Legal review of the MSA")]
    assert merged.plan.milestone("M9").due == "M10+2d"  # its date still counts from the visit, under its new id
    assert merged.plan.next_number == 11
    # What merged reads back as itself, so export and add of it make no new version.
    assert parse_plan(write_plan(merged.plan)) == merged.plan


def test_a_reordered_timeline_and_a_clash_on_a_removed_step() -> None:
    base = _example()
    m3 = "| M3 | Pilot on Q4 data                  | Acme (Dana)        | T-30d     |\n"
    m4 = "| M4 | Reference call with a customer    | Northwind          | M3+3d     |\n"
    text = EXAMPLE.read_text(encoding="utf-8")
    assert m3 + m4 in text
    swapped = parse_plan(text.replace(m3 + m4, m4 + m3))
    theirs = apply_changes(base, [Change("move", milestone="M1", due="2027-02-01")], today=date(2027, 1, 15))
    merged = merge(base, swapped, theirs)
    assert merged.clashes == ()
    assert [m.id for m in merged.plan.milestones] == ["M1", "M2", "M4", "M3", "M5", "M6", "M7"]
    assert merged.plan.milestone("M1").due == "2027-02-01"
    # The prospect dropped M4 while the file renamed it: a clash, kept as the prospect left it unless mine wins.
    removed = apply_changes(base, [Change("remove", milestone="M4")], today=date(2027, 1, 15))
    renamed = parse_plan(text.replace("Reference call with a customer", "Reference call with two customers"))
    clash = merge(base, renamed, removed)
    assert clash.clashes == (("milestone", "M4"),) and clash.plan.milestone("M4") is None
    mine = merge(base, renamed, removed, mine_wins=True)
    assert mine.plan.milestone("M4").title == "Reference call with two customers"
