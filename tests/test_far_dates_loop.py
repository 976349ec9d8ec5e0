"""A reply naming a date far out, through the whole loop on the Maildir: noted for the seller, nothing applied,
and the rest of the poll (another reply's change, its letter) goes on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loop_support import DANA, SELLER, addresses, reply, text_body
from tests.test_watcher_maildir import (  # noqa: F401  (fixtures)
    Loop,
    _no_leftovers,
    copy_home,
    fresh_home,
    sent_home,
)


@pytest.fixture
def auto(sent_home: Path, tmp_path: Path) -> Iterator[Loop]:  # noqa: F811
    loop = copy_home(sent_home, tmp_path, "auto")
    yield loop
    _no_leftovers(loop)


@pytest.mark.parametrize("far", ["December 20, 9998", "9/9/9999", "the year 6000"])
def test_a_far_date_is_noted_for_the_seller_and_the_rest_goes_on(auto: Loop, far: str) -> None:
    auto.clock.advance(days=1)
    before = set(auto.outbox())
    auto.deliver(reply(DANA, f"Hi Jordan,\n\nPlease move the pilot to {far}.\n\nDana",
                       message_id="<far.dana@acme.example>", when=auto.clock()))
    auto.clock.advance(minutes=10)
    auto.deliver(reply(DANA, "Hi Jordan,\n\nPlease move the legal review to March 24.\n\nDana",
                       message_id="<near.dana@acme.example>", when=auto.clock()))
    auto.poll()  # asserts the poll reported no error

    assert auto.outcome("<far.dana@acme.example>") == "noted"
    status = auto.status()
    assert status["version"] == 2  # the legal review moved; the pilot did not
    with auto.store() as store:
        first, second = store.version_records(status["plan_id"])
    # Version 2 is version 1 with the legal review moved: the pilot keeps its date, nothing names a far year.
    pilot = [m for m in json.loads(first.plan_json)["milestones"] if "Pilot" in m["title"]]
    assert pilot and all(m in json.loads(second.plan_json)["milestones"] for m in pilot)
    assert not any(year in second.plan_json for year in ("9998", "9999", "6000"))
    new = [auto.outbox()[m] for m in set(auto.outbox()) - before]
    to_seller = [text_body(n) for n in new if addresses(n, "To") == [SELLER]]
    assert any("far.dana@acme.example" in body or "pilot" in body for body in to_seller), to_seller
    auto.poll()  # a second poll renders and sends nothing that fails: every stored version renders
