"""A reply naming a version we never sent (v0, or v7 of a plan with two): held for the seller, never a traceback
or a shunt, and the rest of the poll goes on. Through the whole loop on the Maildir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loop_support import DANA, RAJ, SELLER, SUBJECT_V2, V2, addresses, reply, text_body
from tests.test_watcher_maildir import (  # noqa: F401  (fixtures)
    Loop,
    _no_leftovers,
    check_status,
    confirm,
    copy_home,
    dana_asks_for_a_later_pilot,
    fresh_home,
    sent_home,
)

V0 = "<plan.acme-northwind-2027.v0@northwind.example>"
V7 = "<plan.acme-northwind-2027.v7@northwind.example>"
V7_NOTICE = "<plan.acme-northwind-2027.v7.notice.abc123@northwind.example>"


@pytest.fixture
def auto(sent_home: Path, tmp_path: Path) -> Iterator[Loop]:  # noqa: F811
    loop = copy_home(sent_home, tmp_path, "auto")
    yield loop
    _no_leftovers(loop)


@pytest.mark.parametrize("named", [V0, V7, V7_NOTICE])
def test_a_reply_to_a_version_never_sent_is_held_and_the_rest_goes_on(auto: Loop, named: str) -> None:
    dana_asks_for_a_later_pilot(auto)
    auto.poll()
    check_status(auto, version=2, summary=f"waiting on {DANA}, {RAJ}", waiting=[DANA, RAJ])
    before = set(auto.outbox())

    auto.clock.advance(hours=1)
    auto.deliver(reply(DANA, "Confirmed.", message_id="<odd.dana@acme.example>", when=auto.clock(),
                       in_reply_to=named))
    auto.deliver(reply(DANA, "Please move the legal review to March 24.", message_id="<odd2.dana@acme.example>",
                       when=auto.clock(), in_reply_to=named))
    confirm(auto, RAJ, "<c2.raj@acme.example>", version_id=V2, subject=SUBJECT_V2)
    auto.poll()  # asserts the poll reported no error

    assert auto.outcome("<odd.dana@acme.example>") == "held"
    assert auto.outcome("<odd2.dana@acme.example>") == "held"
    assert auto.outcome("<c2.raj@acme.example>") == "confirmed"
    check_status(auto, version=2, summary=f"waiting on {DANA}", waiting=[DANA], confirmed=[RAJ], held=2)
    assert sorted(auto.ids_in("Held")) == ["<odd.dana@acme.example>", "<odd2.dana@acme.example>"]

    notices = [auto.outbox()[m] for m in set(auto.outbox()) - before]
    assert notices and all(addresses(n, "To") == [SELLER] for n in notices)
    version = "version 0" if named == V0 else "version 7"
    told = [n for n in notices if version in text_body(n) and "never sent" in text_body(n)]
    assert len(told) == 2, [text_body(n) for n in notices]
    assert all("version 2 is current" in text_body(n) for n in told)
