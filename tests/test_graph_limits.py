"""Graph's 4 MB request limit (one request or an upload session, by the request's size), and Sent Items filed late."""

# The fixtures come from the Graph mailbox tests, and pytest hands them over by parameter name.
# ruff: noqa: F811

from __future__ import annotations

import os
import time

import pytest

from pipeline.errors import MailboxError
from tests.graph_server import GraphServer
from tests.test_mailbox_graph import SELLER, box, plan_email, requests_to, server, state, tls  # noqa: F401

MID = "<plan.acme.v1@seller.example>"


def _drafts(server: GraphServer) -> list:
    return server.mailbox(SELLER).in_folder("drafts")


def test_the_endpoint_answers_413_to_a_request_over_4_mb(server, box):
    draft = box._outbox._api.post("/messages", "create a draft", json={"subject": "x"}).json()["id"]
    with pytest.raises(MailboxError) as caught:
        box._outbox._api.post(f"/messages/{draft}/attachments", "attach", content=b"{" + b" " * 4_000_000 + b"}",
                              headers={"Content-Type": "application/json"})
    assert "413" in str(caught.value)


@pytest.mark.parametrize("size", [3_000_100, 3_100_000, 3 * 1024 * 1024 - 1])
def test_a_file_just_under_3_mib_whose_base64_passes_4_mb_is_uploaded_in_a_session(server, box, size):
    big = os.urandom(size)
    message = plan_email()
    message.add_attachment(big, maintype="application", subtype="zip", filename="evidence.zip")

    box.send(message)

    assert [s.status for s in server.seen if s.status == 413] == []
    sessions = requests_to(server, "POST", r"/createUploadSession$")
    assert len(sessions) == 1 and b"evidence.zip" in sessions[0].body
    [item] = server.mailbox(SELLER).in_folder("sentitems")
    assert {a["name"]: a["data"] for a in item.attachments}["evidence.zip"] == big
    assert item.internet_message_id == MID
    assert _drafts(server) == []


def test_every_request_of_a_large_send_stays_within_4_mb(server, box):
    message = plan_email()
    message.add_attachment(os.urandom(2_900_000), maintype="application", subtype="zip", filename="a.zip")
    message.add_attachment(os.urandom(3_050_000), maintype="application", subtype="zip", filename="b.zip")

    box.send(message)

    assert max(len(s.body) for s in server.graph_requests()) <= 4_000_000
    [item] = server.mailbox(SELLER).in_folder("sentitems")
    assert sorted(a["name"] for a in item.attachments) == ["a.zip", "acme-plan-v1.pdf", "acme-plan.ics", "b.zip"]


@pytest.mark.parametrize(("method", "pattern"), [
    ("POST", r"/attachments$"),  # a file refused while the draft is being built
    ("POST", r"/send$"),  # the finished draft refused at send
])
def test_a_large_message_whose_send_is_refused_leaves_no_half_made_draft(server, box, method, pattern):
    message = plan_email()
    message.add_attachment(os.urandom(3_500_000), maintype="application", subtype="zip", filename="evidence.zip")
    server.fault(method, pattern, 400, code="ErrorInvalidRecipients")

    with pytest.raises(MailboxError):
        box.send(message)

    assert _drafts(server) == []
    assert server.mailbox(SELLER).in_folder("sentitems") == []


def test_a_sent_items_copy_filed_a_second_after_sendmail_is_found(server, box):
    server.sent_delay = 1.0  # sendMail answers 202; transport files the copy a second later

    box.send(plan_email())

    assert server.mailbox(SELLER).in_folder("sentitems") == []
    assert box.sent_message_id(MID) == MID


def test_the_look_for_a_late_copy_is_bounded_and_a_later_call_looks_again(server, box):
    server.sent_delay = 60.0
    box.send(plan_email())

    started = time.monotonic()
    assert box.sent_message_id(MID) is None
    assert 3.5 <= time.monotonic() - started < 10  # pauses of 0.5, 1 and 2 seconds between four looks

    server.file_sent(everything=True)
    box.sent_lookup_delays = ()
    assert box.sent_message_id(MID) == MID


def test_the_next_polls_look_is_one_request_without_pauses(server, box):
    server.sent_delay = 60.0
    box.send(plan_email())

    started = time.monotonic()
    assert box.sent_message_id(MID, wait=False) is None
    assert time.monotonic() - started < 1.5  # under the first two pauses of a waiting look

    server.file_sent(everything=True)
    assert box.sent_message_id(MID, wait=False) == MID
