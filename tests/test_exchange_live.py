"""The Exchange mailbox against a real Exchange mailbox; skipped unless MUTUALPLAN_EWS_* name one.

It sends two messages to the mailbox itself (a plan mail, then a reply in its thread), files them in the
folder "Mutual Plan Live Test", and prints what Exchange kept of our Message-ID and X-Mutual-Plan header.
docs/exchange.md lists the variables; other mail in the mailbox is read but left untouched.
"""

from __future__ import annotations

import os
import time
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from pipeline.mailbox.base import MemoryCursors
from pipeline.mailbox.exchange import ExchangeMailbox, ExchangeSettings

ENV = os.environ
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not (ENV.get("MUTUALPLAN_EWS_ENDPOINT") and ENV.get("MUTUALPLAN_EWS_MAILBOX")),
                       reason="set MUTUALPLAN_EWS_ENDPOINT and MUTUALPLAN_EWS_MAILBOX (see docs/exchange.md)"),
]
FOLDER = "Mutual Plan Live Test"


def live_settings() -> ExchangeSettings:
    def env(name: str) -> str | None:
        return ENV.get(f"MUTUALPLAN_EWS_{name}") or None

    return ExchangeSettings(
        endpoint=ENV["MUTUALPLAN_EWS_ENDPOINT"], mailbox=ENV["MUTUALPLAN_EWS_MAILBOX"],
        auth=env("AUTH") or "basic", server_version=env("VERSION") or "Exchange2016",
        username=env("USERNAME"), password=env("PASSWORD"), client_id=env("CLIENT_ID"),
        client_secret=env("CLIENT_SECRET"), tenant_id=env("TENANT_ID"), access_token=env("ACCESS_TOKEN"),
        processed_folder=FOLDER, held_folder=FOLDER, max_wait=120,
    )


def message(mailbox: str, message_id: str, subject: str, in_reply_to: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = msg["To"] = mailbox
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["X-Mutual-Plan"] = "live-test; v1"
    msg["X-Auto-Response-Suppress"] = "All"
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
    msg.set_content("A live test of the Mutual Plan Exchange backend; it files itself away.")
    msg.add_attachment(b"%PDF-1.7\n%%EOF\n", maintype="application", subtype="pdf", filename="live-test.pdf")
    return msg


def wait_for(box: ExchangeMailbox, wanted: set[str], timeout: float = 120.0) -> dict[str, tuple[str, bytes]]:
    """Fetch until mail with the wanted Message-IDs arrived; other new mail is left as it is."""
    found: dict[str, tuple[str, bytes]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not wanted <= set(found):
        for fetched in box.fetch():
            mid = fetched.key.split("|", 1)[1]
            if mid in wanted:
                found[mid] = (fetched.key, fetched.raw)
            else:
                box.ack(fetched.key, None)
        time.sleep(3)
    assert wanted <= set(found), f"not delivered within {timeout:.0f} s: {sorted(wanted - set(found))}"
    return found


def test_plan_mail_and_reply_round_trip_through_a_real_mailbox():
    settings = live_settings()
    box = ExchangeMailbox(settings, MemoryCursors())
    list(box.fetch())  # take the sync state as it is now: only mail from here on counts
    token = uuid.uuid4().hex[:12]
    domain = settings.mailbox.rpartition("@")[2]
    plan_id = f"<live-{token}-plan@{domain}>"
    reply_id = f"<live-{token}-reply@{domain}>"

    box.send(message(settings.mailbox, plan_id, f"Mutual Plan live test {token}"))
    assert box.was_sent(plan_id)
    (plan_key, plan_raw) = wait_for(box, {plan_id})[plan_id]
    received = BytesParser(policy=policy.default).parsebytes(plan_raw)
    assert received["X-Mutual-Plan"] == "live-test; v1", "Exchange dropped X-Mutual-Plan from MIME-built mail"
    box.ack(plan_key)

    box.send(message(settings.mailbox, reply_id, f"Re: Mutual Plan live test {token}", in_reply_to=plan_id))
    assert box.was_sent(reply_id)
    # The reply reaches the inbox under the Message-ID Exchange gave it: find it by its In-Reply-To.
    deadline = time.monotonic() + 120
    reply = None
    while reply is None and time.monotonic() < deadline:
        for fetched in box.fetch():
            parsed = BytesParser(policy=policy.default).parsebytes(fetched.raw)
            if str(parsed.get("In-Reply-To", "")).strip() == plan_id:
                reply = (fetched.key, parsed)
            else:
                box.ack(fetched.key, None)
        time.sleep(3)
    assert reply is not None, "the reply did not arrive"
    key, parsed = reply
    assert plan_id in str(parsed.get("References", ""))
    print(f"\nreply Message-ID kept: {parsed['Message-ID'] == reply_id} ({parsed['Message-ID']})")
    print(f"reply X-Mutual-Plan: {parsed.get('X-Mutual-Plan')!r}")
    box.ack(key)
