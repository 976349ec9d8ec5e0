"""The graph mailbox against a real Exchange Online mailbox; skipped unless MUTUALPLAN_GRAPH_* name one.

It sends three messages to the mailbox itself (a plan mail too large for MIME, so a JSON draft with a 3.3 MB
attachment through an upload session; a reply in its Outlook conversation; a reply to mail the mailbox never
had, which goes by MIME sendMail), reads
them back through the inbox delta, files them in the folder "Mutual Plan Live Test", and prints what
Exchange Online kept of our Message-ID and headers. docs/graph.md lists the variables; other mail in the
mailbox is read but left untouched.
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
from pipeline.mailbox.graph import GraphMailbox, GraphSettings

ENV = os.environ
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (ENV.get("MUTUALPLAN_GRAPH_TENANT") and ENV.get("MUTUALPLAN_GRAPH_CLIENT_ID")),
        reason="set MUTUALPLAN_GRAPH_TENANT, MUTUALPLAN_GRAPH_CLIENT_ID and a credential (see docs/graph.md)",
    ),
]
FOLDER = "Mutual Plan Live Test"


def live_settings() -> GraphSettings:
    def env(name: str) -> str | None:
        return ENV.get(f"MUTUALPLAN_GRAPH_{name}") or None

    return GraphSettings(
        tenant=ENV["MUTUALPLAN_GRAPH_TENANT"],
        client_id=ENV["MUTUALPLAN_GRAPH_CLIENT_ID"],
        mailbox=env("MAILBOX") or "",
        auth=env("AUTH") or "app",
        client_secret=env("CLIENT_SECRET"),
        certificate_path=env("CERTIFICATE"),
        certificate_password=env("CERTIFICATE_PASSWORD"),
        token_cache_path=env("TOKEN_CACHE"),
        processed_folder=FOLDER,
        held_folder=FOLDER,
        first_sync_days=0,  # only what arrives during the test
        # For a sovereign cloud (or a local endpoint): the Graph and sign-in URLs, and a CA bundle.
        base_url=env("BASE_URL") or "https://graph.microsoft.com/v1.0",
        authority_url=env("AUTHORITY_URL") or "https://login.microsoftonline.com",
        ca_bundle=env("CA_BUNDLE"),
    )


def message(address: str, message_id: str, subject: str, in_reply_to: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = msg["To"] = address
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["X-Mutual-Plan"] = "live-test; version=1"
    msg["X-Auto-Response-Suppress"] = "All"
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
        msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("A live test of the Mutual Plan Graph backend; it files itself away.")
    msg.add_alternative("<p>A live test of the Mutual Plan Graph backend; it files itself away.</p>", subtype="html")
    msg.add_attachment(b"%PDF-1.7\n%%EOF\n", maintype="application", subtype="pdf", filename="live-test.pdf")
    return msg


def wait_for(box: GraphMailbox, subjects: set[str], timeout: float = 180.0) -> dict[str, tuple[str, bytes]]:
    """Poll until mail with these subjects arrived (by subject, so a changed Message-ID still shows)."""
    found: dict[str, tuple[str, bytes]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and set(found) != subjects:
        for fetched in box.fetch():
            subject = str(BytesParser(policy=policy.default).parsebytes(fetched.raw).get("Subject", ""))
            if subject in subjects:
                found[subject] = (fetched.key, fetched.raw)
        if set(found) != subjects:
            time.sleep(5)
    assert set(found) == subjects, f"not delivered within {timeout:.0f} s: {sorted(subjects - set(found))}"
    return found


def test_a_plan_mail_and_replies_round_trip_through_exchange_online() -> None:
    settings = live_settings()
    run = uuid.uuid4().hex[:12]
    ids = {n: f"<plan.live-{run}.v{n}@mutualplan.test>" for n in (1, 2, 3)}
    subjects = {1: f"Mutual Plan live test {run}", 2: f"Re: Mutual Plan live test {run}", 3: f"Re: elsewhere {run}"}
    with GraphMailbox(settings, MemoryCursors()) as box:
        address = settings.mailbox or ENV["MUTUALPLAN_GRAPH_ADDRESS"]
        list(box.fetch())  # the first round sets the place to read from

        plan = message(address, ids[1], subjects[1])
        plan.add_attachment(os.urandom(3_300_000), maintype="application", subtype="zip", filename="large.zip")
        box.send(plan)
        [(plan_key, plan_raw)] = wait_for(box, {subjects[1]}).values()
        box.send(message(address, ids[2], subjects[2], in_reply_to=ids[1]))  # createReply on the plan mail
        box.send(message(address, ids[3], subjects[3], in_reply_to=f"<elsewhere-{run}@x.test>"))  # as MIME
        found = wait_for(box, {subjects[2], subjects[3]})
        for key in [plan_key] + [key for key, _ in found.values()]:
            box.ack(key)
        in_sent = {n: box.was_sent(ids[n]) for n in ids}

    parse = BytesParser(policy=policy.default).parsebytes
    got = {1: parse(plan_raw), 2: parse(found[subjects[2]][1]), 3: parse(found[subjects[3]][1])}
    for n, how in ((1, "JSON draft + upload session"), (2, "createReply"), (3, "MIME sendMail")):
        mail = got[n]
        print(
            f"\n{how}: Message-ID {mail['Message-ID']} (ours {ids[n]}), in Sent Items by it: {in_sent[n]}, "
            f"X-Mutual-Plan {mail['X-Mutual-Plan']}, In-Reply-To {mail['In-Reply-To']}, "
            f"Auto-Submitted {mail['Auto-Submitted']}"
        )
    # The plan mail (JSON draft) and the MIME reply must keep our Message-ID; a reply built by createReply may
    # get Exchange's own, and is then found by the MutualPlanMessageId property (printed above).
    assert [str(got[n]["Message-ID"]).strip() for n in (1, 3)] == [ids[1], ids[3]], "Exchange changed a Message-ID"
    assert all(in_sent.values())
    assert all(got[n]["X-Mutual-Plan"] == "live-test; version=1" for n in ids)
    assert str(got[2]["In-Reply-To"]).strip() == ids[1]
    assert str(got[3]["In-Reply-To"]).strip() == f"<elsewhere-{run}@x.test>"
    assert [p.get_filename() for p in got[1].iter_attachments()] == ["live-test.pdf", "large.zip"]
