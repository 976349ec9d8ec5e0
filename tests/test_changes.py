"""Applying requested changes: each op, the refusals, all-or-nothing, and conflicts with an older version."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from pipeline.errors import ChangeError
from pipeline.plan.changes import apply, conflicts, is_signature_step, signature_step
from pipeline.plan.model import Change, Milestone, with_milestones
from pipeline.plan.source import parse_plan, write_plan
from pipeline.plan.timeline import resolve

EXAMPLE = Path(__file__).parent / "fixtures" / "example-plan.md"
TODAY = date(2027, 1, 15)


@pytest.fixture(scope="module")
def plan():
    return parse_plan(EXAMPLE.read_text(), file=str(EXAMPLE))


def d(text: str) -> date:
    return date.fromisoformat(text)


def ids(plan) -> list[str]:
    return [m.id for m in plan.milestones]


def test_example_resolves_as_expected(plan):
    dates = resolve(plan)
    assert dates == {
        "M1": d("2027-01-30"),
        "M2": d("2027-02-10"),
        "M3": d("2027-03-01"),
        "M4": d("2027-03-04"),
        "M5": d("2027-03-17"),
        "M6": d("2027-03-31"),
        "M7": d("2027-04-07"),
    }


# --- move ------------------------------------------------------------------------------------------


def test_move_pins_the_date_and_dependents_follow(plan):
    new = apply(plan, [Change("move", milestone="M3", due="2027-03-08")], today=TODAY)
    assert new.milestone("M3").due == "2027-03-08"
    assert new.milestone("M4").due == "M3+3d"  # kept as written: it moves with M3
    dates = resolve(new)
    assert dates["M3"] == d("2027-03-08")
    assert dates["M4"] == d("2027-03-11")
    assert dates["M5"] == d("2027-03-17")
    assert new.target == plan.target


def test_move_accepts_json_dicts_and_hash_ids(plan):
    new = apply(plan, [{"op": "move", "milestone": "#2", "due": "2027-02-12"}], today=TODAY)
    assert new.milestone("M2").due == "2027-02-12"


def test_move_of_the_step_due_T_moves_the_target(plan):
    new = apply(plan, [Change("move", milestone="M6", due="2027-04-14")], today=TODAY)
    assert new.target == d("2027-04-14")
    assert new.milestone("M6").due == "T"
    dates = resolve(new)
    assert dates["M1"] == d("2027-02-13")  # T-60d
    assert dates["M2"] == d("2027-02-10")  # a fixed date stays
    assert dates["M7"] == d("2027-04-21")


def test_move_to_today_is_allowed_but_not_before(plan):
    assert resolve(apply(plan, [Change("move", milestone="M2", due="2027-01-15")], today=TODAY))["M2"] == TODAY
    with pytest.raises(ChangeError) as err:
        apply(plan, [Change("move", milestone="M2", due="2027-01-14")], today=TODAY)
    assert "2027-01-14 is already past" in err.value.message
    assert err.value.message.startswith("change 1 (move M2)")


def test_move_of_unknown_milestone(plan):
    with pytest.raises(ChangeError) as err:
        apply(plan, [Change("move", milestone="M9", due="2027-03-01")], today=TODAY)
    assert "no milestone 'M9'" in err.value.message
    assert "M1, M2, M3, M4, M5, M6, M7" in err.value.hint


# --- add -------------------------------------------------------------------------------------------


def test_add_unplaced_goes_before_the_signature_step(plan):
    change = Change("add", title="Security review with Acme's CISO", owner="buyer", due=None)
    new = apply(plan, [change], today=TODAY)
    assert ids(new) == ["M1", "M2", "M3", "M4", "M5", "M8", "M6", "M7"]
    added = new.milestone("M8")
    assert added == Milestone(
        id="M8", title="Security review with Acme's CISO", owner="Acme Corp", due="", status="proposed", phase="before"
    )
    assert new.next_number == 9
    assert resolve(new)["M8"] is None  # unscheduled


def test_add_before_and_after_a_milestone_takes_its_phase(plan):
    new = apply(
        plan,
        [
            Change("add", title="Data access agreement", owner="Raj Patel", due="2027-02-20", before="M3"),
            Change("add", title="Onboarding plan", owner="joint", after="M7"),
            Change("add", title="Pilot readout", owner="seller", after="M3"),
        ],
        today=TODAY,
    )
    assert ids(new) == ["M1", "M2", "M8", "M3", "M10", "M4", "M5", "M6", "M7", "M9"]
    assert new.milestone("M8").owner == "Acme (Raj Patel)"
    assert new.milestone("M8").due == "2027-02-20"
    assert new.milestone("M8").phase == "before"
    assert new.milestone("M9").phase == "after"
    assert new.milestone("M9").owner == "Joint"
    assert new.milestone("M10").owner == "Northwind Analytics"
    # The written plan reads back the same, each row in its phase's table.
    assert parse_plan(write_plan(new)) == new


def test_add_never_reuses_an_id(plan):
    new = apply(plan, [Change("remove", milestone="M7"), Change("add", title="Kick-off", owner="joint")], today=TODAY)
    assert "M7" not in ids(new)
    assert new.milestone("M8").title == "Kick-off"
    again = apply(new, [Change("remove", milestone="M8"), Change("add", title="Kick-off", owner="joint")], today=TODAY)
    assert ids(again) == ["M1", "M2", "M3", "M4", "M5", "M9", "M6"]


def test_add_refusals(plan):
    with pytest.raises(ChangeError, match="already past"):
        apply(plan, [Change("add", title="Late", owner="buyer", due="2027-01-01")], today=TODAY)
    with pytest.raises(ChangeError, match="names nobody"):
        apply(plan, [Change("add", title="Review", owner="Zed Unknown")], today=TODAY)
    with pytest.raises(ChangeError, match="no milestone 'M42'"):
        apply(plan, [Change("add", title="Review", owner="buyer", before="M42")], today=TODAY)


def test_add_without_a_signature_step_goes_at_the_end_of_before_phase(plan):
    no_sig = with_milestones(plan, [m for m in plan.milestones if m.id != "M6"])
    new = apply(no_sig, [Change("add", title="Workshop", owner="joint")], today=TODAY)
    assert ids(new) == ["M1", "M2", "M3", "M4", "M5", "M8", "M7"]


# --- remove ----------------------------------------------------------------------------------------


def test_remove_deletes_the_row_and_reanchors_dependents(plan):
    new = apply(plan, [Change("remove", milestone="M3")], today=TODAY)
    assert ids(new) == ["M1", "M2", "M4", "M5", "M6", "M7"]
    assert new.milestone("M4").due == "2027-03-04"  # was M3+3d: pinned where it stood
    assert resolve(new)["M4"] == d("2027-03-04")


def test_remove_reanchors_chains_without_moving_them(plan):
    chained = with_milestones(
        plan,
        [*plan.milestones[:4], Milestone("M8", "Follow-up", "Joint", "M4+1w", phase="before"), *plan.milestones[4:]],
    )
    new = apply(chained, [Change("remove", milestone="M3")], today=TODAY)
    assert new.milestone("M4").due == "2027-03-04"
    assert new.milestone("M8").due == "M4+1w"  # still relative to M4, which did not move
    assert resolve(new)["M8"] == d("2027-03-11")


def test_remove_of_the_signature_step_is_refused(plan):
    with pytest.raises(ChangeError) as err:
        apply(plan, [Change("remove", milestone="M6")], today=TODAY)
    assert "M6 (Signed order form / PO) is the signature / PO step" in err.value.message
    # Also by title, when the step has a date of its own.
    pinned = with_milestones(plan, [replace(m, due="2027-03-31") if m.id == "M6" else m for m in plan.milestones])
    with pytest.raises(ChangeError, match="signature"):
        apply(pinned, [Change("remove", milestone="M6")], today=TODAY)


def test_signature_detection():
    assert is_signature_step(Milestone("M1", "Anything", due="T"))
    assert is_signature_step(Milestone("M1", "MSA signature", due="2027-01-01"))
    assert is_signature_step(Milestone("M1", "Issue the PO", due="T-1d"))
    assert not is_signature_step(Milestone("M1", "Pilot on the policy data", due="T-1d"))
    assert not is_signature_step(Milestone("M1", "Kick-off after the PO", due="T+7d", phase="after"))


def test_signature_step_prefers_the_step_due_T(plan):
    assert signature_step(plan).id == "M6"


# --- reassign, retarget, status ---------------------------------------------------------------------


def test_reassign(plan):
    new = apply(plan, [Change("reassign", milestone="M5", owner="Raj Patel")], today=TODAY)
    assert new.milestone("M5").owner == "Acme (Raj Patel)"
    new = apply(plan, [Change("reassign", milestone="M2", owner="seller")], today=TODAY)
    assert new.milestone("M2").owner == "Northwind Analytics"


@pytest.mark.parametrize("owner", ["", "   ", "Nobody Known"])
def test_reassign_to_nobody_is_refused(plan, owner):
    with pytest.raises(ChangeError, match=r"blank|names nobody"):
        apply(plan, [Change("reassign", milestone="M5", owner=owner)], today=TODAY)


def test_retarget_moves_the_reverse_timeline(plan):
    new = apply(plan, [Change("retarget", target="2027-04-30")], today=TODAY)
    assert new.target == d("2027-04-30")
    dates = resolve(new)
    assert dates["M1"] == d("2027-03-01")
    assert dates["M2"] == d("2027-02-10")
    assert dates["M3"] == d("2027-03-31")
    assert dates["M4"] == d("2027-04-03")
    assert dates["M6"] == d("2027-04-30")
    assert dates["M7"] == d("2027-05-07")


def test_retarget_before_today_is_refused(plan):
    with pytest.raises(ChangeError, match="new target date 2027-01-10 is already past"):
        apply(plan, [Change("retarget", target="2027-01-10")], today=TODAY)


def test_status(plan):
    new = apply(
        plan,
        [Change("status", milestone="M1", status="done"), Change("status", milestone="M4", status="dropped")],
        today=TODAY,
    )
    assert new.milestone("M1").status == "done"
    assert new.milestone("M4").status == "dropped"
    with pytest.raises(ChangeError, match="cannot be dropped"):
        apply(plan, [Change("status", milestone="M6", status="dropped")], today=TODAY)
    with pytest.raises(ChangeError, match="unknown status"):
        apply(plan, [Change("status", milestone="M1", status="finished")], today=TODAY)


# --- all or nothing ---------------------------------------------------------------------------------


def test_one_bad_change_applies_none(plan):
    before = write_plan(plan)
    changes = [
        {"op": "move", "milestone": "M3", "due": "2027-03-08"},
        {"op": "add", "title": "Extra", "owner": "buyer", "due": None},
        {"op": "remove", "milestone": "M6"},
    ]
    with pytest.raises(ChangeError) as err:
        apply(plan, changes, today=TODAY)
    assert err.value.message.startswith("change 3 (remove M6)")
    assert write_plan(plan) == before


def test_changes_apply_in_order(plan):
    # Removing M4 and then moving it: the second change finds no M4.
    with pytest.raises(ChangeError, match=r"change 2 .*no milestone 'M4'"):
        apply(plan, [Change("remove", milestone="M4"), Change("move", milestone="M4", due="2027-03-05")], today=TODAY)


def test_a_malformed_dict_is_refused(plan):
    with pytest.raises(ChangeError, match="change 1: unknown op 'delete'"):
        apply(plan, [{"op": "delete", "milestone": "M3"}], today=TODAY)


def test_empty_list_is_the_same_plan(plan):
    assert apply(plan, [], today=TODAY) == plan


# --- conflicts --------------------------------------------------------------------------------------


def test_conflicts_name_the_changes_touching_what_changed_since(plan):
    current = apply(plan, [Change("move", milestone="M3", due="2027-03-08")], today=TODAY)
    changes = [
        Change("move", milestone="M4", due="2027-03-20"),  # M4 moved with M3 since
        Change("reassign", milestone="M2", owner="seller"),  # untouched
        Change("add", title="Readout", owner="joint", after="M3"),  # M3 moved
        Change("retarget", target="2027-05-01"),  # the target did not change
    ]
    found = conflicts(plan, current, changes)
    assert found == [
        "change 1 (move M4): M4 has changed since the version replied to (moved 2027-03-04 -> 2027-03-11)",
        "change 3 (add Readout): M3 has changed since the version replied to (moved 2027-03-01 -> 2027-03-08)",
    ]


def test_conflicts_on_target_and_removed_milestones(plan):
    current = apply(plan, [Change("retarget", target="2027-04-14"), Change("remove", milestone="M5")], today=TODAY)
    found = conflicts(plan, current, [{"op": "retarget", "target": "2027-05-01"}, {"op": "remove", "milestone": "M5"}])
    assert found == [
        "change 1 (retarget 2027-05-01): the target has changed since the version replied to "
        "(2027-03-31 -> 2027-04-14)",
        "change 2 (remove M5): M5 has changed since the version replied to (removed)",
    ]
    assert conflicts(plan, plan, [Change("remove", milestone="M5")]) == []


def test_the_reply_specs_done_reads_as_a_step_marked_done() -> None:
    from pipeline.plan.model import Change

    assert Change.from_dict({"op": "done", "milestone": "M3"}) == Change(op="status", milestone="M3", status="done")
