"""The seller's own commands (confirm on a call, reopen, release, preview) and the suggested ask's wording."""

from __future__ import annotations

from pipeline.loop import policy
from pipeline.plan.model import Change
from tests.loop_support import DANA, KIM, example_plan

LATER_PILOT = Change(op="move", milestone="M3", due="2027-03-08")  # the pilot is on Mon 1 Mar 2027
DROP_REFERENCE = Change(op="remove", milestone="M4")


# --- the suggested ask ------------------------------------------------------------------------------


def test_the_ask_never_asks_a_recipient_for_time_with_themselves() -> None:
    plan = example_plan()  # the decision-maker is Raj Patel, who gets the follow-up with everyone else
    (ask,) = policy.suggested_asks(plan, (LATER_PILOT,))
    assert ask == "Raj, could we get 30 minutes with you before the new date?"
    # Sent to people who do not include him, it names him.
    (ask,) = policy.suggested_asks(plan, (LATER_PILOT,), to=(DANA, KIM))
    assert ask == "Could we get 30 minutes with Raj Patel before the new date?"


def test_an_ask_to_the_new_owner_addresses_them() -> None:
    plan = example_plan()
    (ask,) = policy.suggested_asks(plan, (Change(op="reassign", milestone="M5", owner="Dana Whitfield"),))
    assert ask == "Dana, could you confirm the new date for this step?"
    (ask,) = policy.suggested_asks(plan, (Change(op="reassign", milestone="M5", owner="Dana Whitfield"),), to=(KIM,))
    assert ask == "Could Acme (Dana Whitfield) confirm the new date for this step?"


def test_the_asks_do_not_repeat_the_lead_in_of_the_email() -> None:
    # The follow-up introduces them with "In return, could we ask:": no ask says "In return" again.
    asks = policy.suggested_asks(example_plan(), (LATER_PILOT, DROP_REFERENCE), to=(DANA,))
    assert asks == ["Could we get 30 minutes with Raj Patel before the new date?",
                    "With that step dropped, could legal review of the contract start earlier?"]
    # A seller's own sentence written with a lead-in loses it, and its request keeps its words.
    custom = {"later": "In return for the later date, could we meet {decision_maker} this week?",
              "remove": "In return, could the legal review start earlier?"}
    asks = policy.suggested_asks(example_plan(), (LATER_PILOT, DROP_REFERENCE), custom, to=(DANA,))
    assert asks == ["Could we meet Raj Patel this week?", "Could the legal review start earlier?"]
