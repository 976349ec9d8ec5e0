"""The Message-ID a sent reply went out under, when transport files its Sent Items copy a moment after SendItem."""

# The fixtures come from the Exchange mailbox tests, and pytest hands them over by parameter name.
# ruff: noqa: F811

from __future__ import annotations

import time

from tests.test_mailbox_exchange import (  # noqa: F401
    box,
    client_mail,
    ews,
    parse,
    plan_email,
    settings,
    state,
)

V2 = "<mp-acme-v2-plan@mutualplan.example>"


def _answered(ews, box) -> None:
    box.send(plan_email())
    ews.deliver(client_mail(1))
    (fetched,) = box.fetch()
    box.ack(fetched.key)


def test_a_reply_filed_in_sent_items_a_second_late_is_still_found_under_exchanges_message_id(ews, box):
    _answered(ews, box)
    ews.mailbox.sent_delay = 1.0  # transport files the copy a second after SendItem returns

    box.send(plan_email(V2, in_reply_to="<client-1@buyer.example>", version=2))
    renamed = parse(ews.mailbox.outbound[-1])["Message-ID"]
    assert renamed != V2  # Exchange named the reply itself

    assert box.sent_message_id(V2) == renamed


def test_the_look_is_bounded_and_a_later_call_looks_again(ews, box):
    _answered(ews, box)
    ews.mailbox.sent_delay = 60.0  # much later than one call waits
    box.send(plan_email(V2, in_reply_to="<client-1@buyer.example>", version=2))
    renamed = parse(ews.mailbox.outbound[-1])["Message-ID"]

    started = time.monotonic()
    assert box.sent_message_id(V2) is None
    waited = time.monotonic() - started
    assert 3.5 <= waited < 10  # 0.5 + 1 + 2 seconds of pauses between four looks, and no more

    with ews.mailbox.lock:
        ews.mailbox.file_sent(everything=True)  # transport caught up
    box.sent_lookup_delays = ()
    assert box.sent_message_id(V2) == renamed


def test_the_next_polls_look_is_one_request_and_finds_the_copy_once_it_is_filed(ews, box):
    _answered(ews, box)
    ews.mailbox.sent_delay = 60.0
    box.send(plan_email(V2, in_reply_to="<client-1@buyer.example>", version=2))
    renamed = parse(ews.mailbox.outbound[-1])["Message-ID"]

    started = time.monotonic()
    assert box.sent_message_id(V2, wait=False) is None
    assert time.monotonic() - started < 0.5 * 3  # no pause: one look, well under the first pause of the wait

    with ews.mailbox.lock:
        ews.mailbox.file_sent(everything=True)
    assert box.sent_message_id(V2, wait=False) == renamed
