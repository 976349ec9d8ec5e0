"""Diffs between versions: a plan taken through six versions of mixed changes, each diff checked by hand."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from pipeline.plan.changes import apply
from pipeline.plan.diff import MilestoneChange, PlanDiff, TextRedline, diff, redline
from pipeline.plan.model import Change, Contact, Section
from pipeline.plan.source import parse_plan, write_plan

EXAMPLE = Path(__file__).parent / "fixtures" / "example-plan.md"
TODAY = date(2027, 1, 15)


def mc(kind: str, mid: str, title: str, old: str | None, new: str | None) -> MilestoneChange:
    return MilestoneChange(kind=kind, id=mid, title=title, old=old, new=new)


T1, T2 = "Discovery workshop", "Technical demo for Acme IT"
T2b = "Technical deep-dive for Acme IT"
T3, T4, T5 = "Pilot on Q4 data", "Reference call with a customer", "Legal review of the MSA"
T6, T7 = "Signed order form / PO", "Kick-off meeting and introductions"
T8, T9 = "Security review with Acme's CISO", "Onboarding plan"


def seller_edit(plan):
    """Version 4: the seller renames M2, rewrites the call to action, and swaps Kim Osei for Lee Chen."""
    milestones = tuple(replace(m, title=T2b) if m.id == "M2" else m for m in plan.milestones)
    sections = tuple(
        replace(s, body="Dana to confirm the pilot data set by Wednesday.") if s.kind == "cta" else s
        for s in plan.sections
    )
    lee = Contact(name="Lee Chen", email="lee.chen@acme.example", title="Buyer", role="procurement")
    contacts = (*(c for c in plan.prospect.contacts if c.name != "Kim Osei"), lee)
    return replace(plan, milestones=milestones, sections=sections, prospect=replace(plan.prospect, contacts=contacts))


@pytest.fixture(scope="module")
def versions():
    v1 = parse_plan(EXAMPLE.read_text())
    v2 = apply(
        v1,
        [
            Change("move", milestone="M3", due="2027-03-08"),
            Change("reassign", milestone="M5", owner="Raj Patel"),
        ],
        today=TODAY,
    )
    v3 = apply(
        v2,
        [
            Change("retarget", target="2027-04-14"),
            Change("add", title=T8, owner="buyer"),
            Change("status", milestone="M1", status="confirmed"),
        ],
        today=TODAY,
    )
    v4 = seller_edit(v3)
    v5 = apply(
        v4,
        [
            Change("remove", milestone="M3"),
            Change("move", milestone="M8", due="2027-03-20"),
            Change("status", milestone="M2", status="done"),
        ],
        today=TODAY,
    )
    v6 = apply(
        v5,
        [Change("retarget", target="2027-04-07"), Change("add", title=T9, owner="joint", due="2027-05-01", after="M7")],
        today=TODAY,
    )
    chain = [v1, v2, v3, v4, v5, v6]
    for v in chain:  # every version is a plan the source format can hold
        assert parse_plan(write_plan(v)) == v
    return chain


def step(versions, n: int) -> PlanDiff:
    return diff(versions[n - 2], versions[n - 1], old_version=n - 1, new_version=n)


def test_v1_to_v2_move_carries_dependents_and_reassign(versions):
    d = step(versions, 2)
    assert d.milestones == (
        mc("moved", "M3", T3, "2027-03-01", "2027-03-08"),
        mc("moved", "M4", T4, "2027-03-04", "2027-03-11"),  # M3+3d follows M3
        mc("reassigned", "M5", T5, "Acme (Kim Osei)", "Acme (Raj Patel)"),
    )
    assert d.target is None and d.slip_days is None
    assert d.texts == () and d.contacts_added == () and d.contacts_removed == ()
    assert d.changed_ids == {"M3", "M4", "M5"}
    assert (d.old_version, d.new_version) == (1, 2)


def test_v2_to_v3_retarget_slips_the_reverse_timeline(versions):
    d = step(versions, 3)
    assert d.target == (date(2027, 3, 31), date(2027, 4, 14))
    assert d.slip_days == 14
    assert d.milestones == (
        mc("moved", "M1", T1, "2027-01-30", "2027-02-13"),
        mc("status", "M1", T1, "proposed", "confirmed"),
        # M2 (a fixed date) and M3/M4 (pinned in v2) do not move with the target.
        mc("moved", "M5", T5, "2027-03-17", "2027-03-31"),
        mc("added", "M8", T8, None, None),  # unscheduled, placed before the signature step
        mc("moved", "M6", T6, "2027-03-31", "2027-04-14"),
        mc("moved", "M7", T7, "2027-04-07", "2027-04-21"),
    )


def test_v3_to_v4_seller_edit_renames_redlines_and_swaps_contacts(versions):
    d = step(versions, 4)
    assert d.milestones == (mc("renamed", "M2", T2b, T2, T2b),)
    assert d.contacts_added == ("Lee Chen",)
    assert d.contacts_removed == ("Kim Osei",)
    assert d.texts == (
        TextRedline(
            "Call to action",
            (
                ("equal", "Dana to confirm the pilot data set by "),
                ("delete", "Friday"),
                ("insert", "Wednesday"),
                ("equal", "."),
            ),
        ),
    )
    assert d.target is None


def test_v4_to_v5_remove_keeps_the_dependent_in_place(versions):
    d = step(versions, 5)
    assert d.milestones == (
        mc("status", "M2", T2b, "proposed", "done"),
        mc("removed", "M3", T3, "2027-03-08", None),  # reported where it stood, before M4
        # M4 was M3+3d: re-anchored to 2027-03-11, so it is not reported as moved.
        mc("moved", "M8", T8, None, "2027-03-20"),
    )
    assert versions[4].milestone("M4").due == "2027-03-11"


def test_v5_to_v6_earlier_target_is_a_negative_slip(versions):
    d = step(versions, 6)
    assert d.target == (date(2027, 4, 14), date(2027, 4, 7))
    assert d.slip_days == -7
    assert d.milestones == (
        mc("moved", "M1", T1, "2027-02-13", "2027-02-06"),
        mc("moved", "M5", T5, "2027-03-31", "2027-03-24"),
        mc("moved", "M6", T6, "2027-04-14", "2027-04-07"),
        mc("moved", "M7", T7, "2027-04-21", "2027-04-14"),
        mc("added", "M9", T9, None, "2027-05-01"),
    )


def test_v1_to_v6_sums_the_whole_history(versions):
    d = diff(versions[0], versions[5], old_version=1, new_version=6)
    assert d.target == (date(2027, 3, 31), date(2027, 4, 7))
    assert d.slip_days == 7
    assert d.milestones == (
        mc("moved", "M1", T1, "2027-01-30", "2027-02-06"),
        mc("status", "M1", T1, "proposed", "confirmed"),
        mc("renamed", "M2", T2b, T2, T2b),
        mc("status", "M2", T2b, "proposed", "done"),
        mc("removed", "M3", T3, "2027-03-01", None),
        mc("moved", "M4", T4, "2027-03-04", "2027-03-11"),
        mc("moved", "M5", T5, "2027-03-17", "2027-03-24"),
        mc("reassigned", "M5", T5, "Acme (Kim Osei)", "Acme (Raj Patel)"),
        mc("added", "M8", T8, None, "2027-03-20"),
        mc("moved", "M6", T6, "2027-03-31", "2027-04-07"),
        mc("moved", "M7", T7, "2027-04-07", "2027-04-14"),
        mc("added", "M9", T9, None, "2027-05-01"),
    )
    assert d.changed_ids == {"M1", "M2", "M3", "M4", "M5", "M6", "M7", "M8", "M9"}
    assert d.contacts_added == ("Lee Chen",) and d.contacts_removed == ("Kim Osei",)
    assert [t.heading for t in d.texts] == ["Call to action"]


def test_reversed_diff_swaps_old_and_new(versions):
    d = diff(versions[2], versions[1], old_version=3, new_version=2)
    assert d.slip_days == -14
    assert mc("removed", "M8", T8, None, None) in d.milestones
    assert mc("status", "M1", T1, "confirmed", "proposed") in d.milestones


def test_same_plan_is_empty(versions):
    d = diff(versions[3], versions[3], old_version=4, new_version=4)
    assert d.is_empty
    assert d.changed_ids == set()
    assert not step(versions, 2).is_empty


def test_to_dict_is_json(versions):
    data = json.loads(json.dumps(step(versions, 3).to_dict()))
    assert data["old_version"] == 2 and data["new_version"] == 3
    assert data["target"] == ["2027-03-31", "2027-04-14"]
    assert data["slip_days"] == 14
    assert data["milestones"][0] == {
        "kind": "moved",
        "id": "M1",
        "title": T1,
        "old": "2027-01-30",
        "new": "2027-02-13",
    }
    redlines = json.loads(json.dumps(step(versions, 4).to_dict()))["texts"]
    assert redlines == [
        {
            "heading": "Call to action",
            "ops": [
                ["equal", "Dana to confirm the pilot data set by "],
                ["delete", "Friday"],
                ["insert", "Wednesday"],
                ["equal", "."],
            ],
        }
    ]


def test_phase_change(versions):
    v = versions[0]
    moved = replace(v, milestones=tuple(replace(m, phase="after") if m.id == "M5" else m for m in v.milestones))
    assert diff(v, moved, old_version=1, new_version=2).milestones == (mc("phase", "M5", T5, "before", "after"),)


def test_sections_added_removed_and_matched_by_kind(versions):
    v = versions[0]
    renamed = tuple(replace(s, heading="Value") if s.kind == "value" else s for s in v.sections)
    assert diff(v, replace(v, sections=renamed), old_version=1, new_version=2).is_empty
    extra = replace(v, sections=(*v.sections, Section(heading="Pricing", kind="", body="Three-year term.")))
    d = diff(v, extra, old_version=1, new_version=2)
    assert d.texts == (TextRedline("Pricing", (("insert", "Three-year term."),)),)
    back = diff(extra, v, old_version=2, new_version=3)
    assert back.texts == (TextRedline("Pricing", (("delete", "Three-year term."),)),)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("a b c", "a b c", (("equal", "a b c"),)),
        ("", "new text", (("insert", "new text"),)),
        (
            "cut $2.1M in freight",
            "cut $2.4M in freight",
            (("equal", "cut $"), ("delete", "2.1M"), ("insert", "2.4M"), ("equal", " in freight")),
        ),
        (
            "Raj signs; Dana",
            "Raj signs the order; Dana",
            (("equal", "Raj signs"), ("insert", " the order"), ("equal", "; Dana")),
        ),
        ("one\ntwo three", "one\ntwo", (("equal", "one\ntwo"), ("delete", " three"))),
        ("- x\n- y", "- x\n- z\n- y", (("equal", "- x\n- "), ("insert", "z\n- "), ("equal", "y"))),
    ],
)
def test_redline_words(old, new, expected):
    ops = redline(old, new)
    assert ops == expected
    assert "".join(t for op, t in ops if op != "insert") == old
    assert "".join(t for op, t in ops if op != "delete") == new
