"""The watcher's whole loop through the exchange mailbox: real exchangelib over HTTP against the loopback EWS endpoint.

Plan out as new mail, the prospect's answers in, each next version out as an Outlook reply (which Exchange
sends under its own Message-ID), and the prospect's answer to such a reply matched to the version it answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses
from pathlib import Path

import pytest
from ews_server import EwsServer, Item

from pipeline.demo import SimulatedClock as Clock
from pipeline.home import Home, init_home
from pipeline.loop.service import Service, queue_plan
from pipeline.mailbox.exchange import ExchangeMailbox
from pipeline.plan.source import parse_plan
from pipeline.render.templates import default_templates as templates_dir

SELLER = "jordan.lee@northwind.example"
DANA = ("Dana Whitfield", "dana.whitfield@acme.example")
RAJ = ("Raj Patel", "raj.patel@acme.example")
PASSWORD_ENV = "MUTUALPLAN_TEST_EWS_PASSWORD"
OUR_ID = ("PublicStrings", "MutualPlanMessageId")  # the named property the adapter keeps our Message-ID in
PLAN_ID = "acme-northwind-2027"


def our_id(version: int) -> str:
    return f"<plan.{PLAN_ID}.v{version}@northwind.example>"


@pytest.fixture
def ews() -> Iterator[EwsServer]:
    from exchangelib.protocol import close_connections

    server = EwsServer(SELLER, username="svc-mutualplan", password="loop-s3cret").start()
    yield server
    server.stop()
    # exchangelib caches one protocol per endpoint and credentials: every test has its own port, and the
    # cache is dropped so no session outlives its server.
    close_connections()
    assert server.errors == [], "the endpoint met a request it does not speak"


def make_home(root: Path, ews: EwsServer, changes: str) -> Home:
    home = init_home(root)
    home.settings_path.write_text(f"""
[seller]
company = "Northwind Analytics"
name = "Jordan Lee"
email = "{SELLER}"

[mailbox]
backend = "exchange"
endpoint = "{ews.url}"
mailbox = "{SELLER}"
server_version = "Exchange2016"
auth = "basic"
username = "svc-mutualplan"
password_env = "{PASSWORD_ENV}"
impersonate = false
max_wait = 0.5
timeout = 10

[policy]
changes = "{changes}"
trusted_authserv_ids = ["mx.northwind.example"]  # the seller's server, which stamps each reply (reply() below)

[letter]
letterhead = "northwind"
""", encoding="utf-8")
    return home


def answer(sender: tuple[str, str], to: Item, message_id: str, body: str, when: datetime) -> bytes:
    """The prospect's answer to `to` as their mail client writes it: In-Reply-To its id, References its chain."""
    msg = EmailMessage()
    msg["Authentication-Results"] = f"mx.northwind.example; dmarc=pass header.from={sender[1].rpartition('@')[2]}"
    msg["From"] = f"{sender[0]} <{sender[1]}>"
    msg["To"] = f"Jordan Lee <{SELLER}>"
    msg["Subject"] = f"RE: {to.subject}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = to.message_id
    msg["References"] = " ".join([*(to.references or "").split(), to.message_id])
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[return-value]


def outbound(ews: EwsServer, message_id: str) -> EmailMessage:
    """What the recipients got under `message_id` (the one Exchange gave the message, for a reply)."""
    (found,) = [m for m in map(parse, ews.mailbox.outbound) if m["Message-ID"] == message_id]
    return found


def sent_item(ews: EwsServer, ours: str) -> Item:
    """The copy in Sent Items of what we sent as `ours`, found the way the adapter finds it."""
    (found,) = [i for i in ews.folder_items("sentitems") if ours in (i.message_id, i.extended.get(OUR_ID))]
    return found


def start(ews: EwsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: str) -> tuple[Home, Clock]:
    monkeypatch.setenv(PASSWORD_ENV, "loop-s3cret")  # the secret comes from the environment, never the file
    return make_home(tmp_path / "home", ews, changes), Clock()


def add_plan(watcher: Service, clock: Clock) -> None:
    plan = parse_plan((templates_dir() / "plans" / "example.md").read_text(encoding="utf-8"), file="example.md")
    assert plan.id == PLAN_ID
    watcher.store.add_version(plan, author=SELLER, reason="created", created=clock())


def test_plan_out_replies_in_each_version_out_in_the_conversation_and_answers_to_renamed_replies_matched(
    ews: EwsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, clock = start(ews, tmp_path, monkeypatch, "auto")
    with Service.open(home, clock) as watcher:
        store = watcher.store
        assert isinstance(watcher.parts.mailbox, ExchangeMailbox)
        add_plan(watcher, clock)

        # 1. Version 1 goes out as new mail, our Message-ID kept, a copy in Sent Items, letter and calendar.
        v1 = queue_plan(store, PLAN_ID, at=clock())
        report = watcher.poll()
        assert (report.sent, report.errors, report.fetched) == ([our_id(1)], [], 0)
        plan_item = sent_item(ews, our_id(1))
        assert plan_item.message_id == v1.message_id == our_id(1)
        mail = outbound(ews, our_id(1))
        assert [a for _, a in getaddresses(mail.get_all("To", []))] == [DANA[1], RAJ[1]]
        assert [a for _, a in getaddresses(mail.get_all("Cc", []))] == ["kim.osei@acme.example"]
        files = {part.get_content_type(): part.get_payload(decode=True) for part in mail.iter_attachments()}
        assert set(files) == {"application/pdf", "text/calendar"}
        assert files["application/pdf"].startswith(b"%PDF-")
        assert files["text/calendar"].startswith(b"BEGIN:VCALENDAR")
        assert sorted(a.content_type for a in plan_item.attachments) == ["application/pdf", "text/calendar"]
        assert mail["X-Mutual-Plan"]

        # 2. Dana asks for a later pilot; the server puts her answer in the Inbox.
        clock.advance(days=1)
        dana_1 = ews.deliver(answer(DANA, plan_item, "<loop.1@acme.example>",
                                    "Hi Jordan,\n\nPlease move the pilot to March 8 - our Q4 close runs late.\n\n"
                                    "Dana\n", clock()))
        clock.advance(minutes=5)
        report = watcher.poll()
        assert report.fetched == 1 and report.errors == []
        assert [d for _, d, _ in report.handled] == ["applied"]
        assert store.message("loop.1@acme.example").disposition == "applied"
        assert store.current(PLAN_ID).number == 2
        # (In auto mode the seller also gets a note of what to ask in return, as new mail to them alone.)
        assert sorted(report.sent) == [f"<plan.{PLAN_ID}.v2.ask.75f444f50bbf@northwind.example>", our_id(2)]
        # Her answer is filed: read, categorized, in the Mutual Plan folder, out of the Inbox.
        assert ews.folder_items("inbox") == []
        (filed,) = ews.folder_items("Mutual Plan")
        assert filed.message_id == "<loop.1@acme.example>" and filed.is_read and filed.categories == ["Mutual Plan"]

        # Version 2 went out as an Outlook reply to her answer: Exchange built it (ReplyToItem) in her
        # conversation and gave it its own Message-ID; ours is on the item, and the store knows both.
        v2_item = sent_item(ews, our_id(2))
        assert v2_item.extended[OUR_ID] == our_id(2)
        assert v2_item.message_id != our_id(2)
        assert v2_item.in_reply_to == "<loop.1@acme.example>"
        assert v2_item.references.split() == [our_id(1), "<loop.1@acme.example>"]
        assert v2_item.conversation_id == dana_1.conversation_id == plan_item.conversation_id
        assert v2_item.conversation_index[:22] == plan_item.conversation_index[:22]
        assert len(v2_item.conversation_index) == len(dana_1.conversation_index) + 5  # one level deeper
        mail = outbound(ews, v2_item.message_id)
        assert mail["In-Reply-To"] == "<loop.1@acme.example>"
        assert mail["X-Mutual-Plan"]
        assert sorted(part.get_content_type() for part in mail.iter_attachments()) == [
            "application/pdf", "text/calendar"]
        assert ews.folder_items("drafts") == []
        assert store.outbox_entry(v2_item.message_id).version == 2  # the alias

        # 3. Dana answers THAT reply: her In-Reply-To is Exchange's id, and only References still names version
        # 1 (the last one sent under our own id). She moves the pilot again, which version 2 changed: read as
        # an answer to version 1 that would be a conflict, held for the seller. Exchange is busy: the fetch gives up.
        clock.advance(hours=3)
        ews.deliver(answer(DANA, v2_item, "<loop.2@acme.example>",
                           "Sorry Jordan, one more: please move the pilot to March 10.\n\nDana\n", clock()))
        ews.inject("busy", "SyncFolderItems", times=2, back_off_ms=300)  # 0.3 s + 0.3 s is past max_wait
        report = watcher.poll()
        assert report.fetched == 0 and report.handled == [] and report.sent == []
        assert len(report.errors) == 1 and "busy" in report.errors[0]
        assert store.current(PLAN_ID).number == 2
        # Nothing was lost: the next poll reads her answer as one to version 2 and makes version 3. Exchange
        # sends version 3, but the connection drops before its answer comes back.
        ews.inject("drop_after", "SendItem")
        clock.advance(minutes=5)
        report = watcher.poll()
        assert report.fetched == 1
        assert [d for _, d, _ in report.handled] == ["applied"]
        assert store.current(PLAN_ID).number == 3
        assert our_id(3) not in report.sent
        assert len(report.errors) == 1 and our_id(3) in report.errors[0]
        v3_item = sent_item(ews, our_id(3))
        assert v3_item.message_id not in (our_id(3), v2_item.message_id)
        assert v3_item.in_reply_to == "<loop.2@acme.example>"
        assert v3_item.conversation_id == plan_item.conversation_id
        assert store.outbox_entry(v3_item.message_id) is None  # the store has not learned its name yet

        # 4. Dana and Raj confirm version 3, answering Exchange's reply (whose References name version 1 too),
        # before the watcher has seen that the send went through. The next poll finds it in Sent first (and
        # does not send it again), learns its Message-ID, and so reads both as confirmations of version 3.
        for n, who in ((3, DANA), (4, RAJ)):
            clock.advance(hours=2)
            ews.deliver(answer(who, v3_item, f"<loop.{n}@acme.example>", "Confirmed.\n", clock()))
        assert our_id(1) in outbound(ews, v3_item.message_id)["References"]
        # Exchange is busy when the agreed mail goes out; the poll after sends it, once.
        ews.inject("busy", "CreateItem", times=2, back_off_ms=300)
        clock.advance(minutes=5)
        report = watcher.poll()
        assert report.sent == [our_id(3)]  # found in Sent, not sent again
        assert store.outbox_entry(v3_item.message_id).version == 3
        assert [d for _, d, _ in report.handled] == ["confirmed", "agreed"]
        assert store.plan_state(PLAN_ID) == "agreed"
        assert store.confirmations(PLAN_ID, 3).keys() == {DANA[1], RAJ[1]}
        agreed_id = f"<plan.{PLAN_ID}.v3.agreed@northwind.example>"
        assert len(report.errors) == 1 and agreed_id in report.errors[0] and "busy" in report.errors[0]
        assert not [i for i in ews.folder_items("sentitems") if agreed_id in (i.message_id, i.extended.get(OUR_ID))]
        report = watcher.poll()
        assert report.fetched == 0 and report.errors == [] and report.sent == [agreed_id]
        agreed = sent_item(ews, agreed_id)
        assert agreed.in_reply_to == "<loop.4@acme.example>"
        assert agreed.conversation_id == plan_item.conversation_id
        assert ews.folder_items("drafts") == []
        # Each email to the prospect went out exactly once: v1, v2, v3 and the agreed mail.
        to_prospect = [m["Message-ID"] for m in map(parse, ews.mailbox.outbound) if DANA[1] in str(m["To"])]
        assert to_prospect == [our_id(1), v2_item.message_id, v3_item.message_id, agreed.message_id]
        assert watcher.poll().fetched == 0


@pytest.mark.parametrize("how", ["outlook", "approve", "outlook, then approve"])
def test_in_review_the_next_version_waits_as_a_reply_draft_and_answers_to_it_are_matched_once_sent(
    ews: EwsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str,
) -> None:
    home, clock = start(ews, tmp_path, monkeypatch, "review")
    with Service.open(home, clock) as watcher:
        store = watcher.store
        add_plan(watcher, clock)
        queue_plan(store, PLAN_ID, at=clock())
        assert watcher.poll().sent == [our_id(1)]
        plan_item = sent_item(ews, our_id(1))

        # Dana asks for a change; version 2 waits in Drafts as a reply in her conversation.
        clock.advance(days=1)
        dana_1 = ews.deliver(answer(DANA, plan_item, "<review.1@acme.example>",
                                    "Please move the pilot to March 8.\n\nDana\n", clock()))
        report = watcher.poll()
        assert [d for _, d, _ in report.handled] == ["applied"]
        assert (report.drafted, report.sent, report.errors) == ([our_id(2)], [], [])
        (draft,) = ews.folder_items("drafts")
        assert draft.is_draft and draft.extended[OUR_ID] == our_id(2)
        assert draft.in_reply_to == "<review.1@acme.example>"
        assert draft.conversation_id == dana_1.conversation_id == plan_item.conversation_id
        assert sorted(a.content_type for a in draft.attachments) == ["application/pdf", "text/calendar"]
        assert len(ews.mailbox.outbound) == 1  # only version 1 has gone out
        assert watcher.poll().drafted == []  # a poll with nothing new leaves the draft alone

        # The seller reviews it in Outlook and adds a line; then either sends it from Outlook or approves it.
        draft.body = "Dana - here it is with the new pilot date. " + draft.body
        clock.advance(hours=1)
        if how.startswith("outlook"):
            with ews.mailbox.lock:  # what SendItem does when Outlook sends the draft
                ews.mailbox.submit(draft, ews.mailbox.folder_id("sentitems"))
        if how.endswith("approve"):
            # Approving a draft the seller already sent finds it in Sent: it is not sent a second time.
            assert watcher.approve(PLAN_ID) == [our_id(2)]
        v2_item = sent_item(ews, our_id(2))
        assert v2_item.body.startswith("Dana - here it is")  # the reviewed draft itself went out
        assert v2_item.message_id != our_id(2)
        assert ews.folder_items("drafts") == []

        # Dana and Raj confirm at once, answering Exchange's id. For a draft sent from Outlook the watcher
        # learns that id in the same poll, before it reads their answers.
        for n, who in ((2, DANA), (3, RAJ)):
            clock.advance(minutes=30)
            ews.deliver(answer(who, v2_item, f"<review.{n}@acme.example>", "Confirmed.\n", clock()))
        report = watcher.poll()
        assert [d for _, d, _ in report.handled] == ["confirmed", "agreed"]
        assert store.outbox_entry(v2_item.message_id).version == 2
        agreed_id = f"<plan.{PLAN_ID}.v2.agreed@northwind.example>"
        assert report.sent == ([our_id(2)] if how == "outlook" else []) + [agreed_id]
        assert report.errors == []
        assert store.plan_state(PLAN_ID) == "agreed"
        to_prospect = [m["Message-ID"] for m in map(parse, ews.mailbox.outbound) if DANA[1] in str(m["To"])]
        assert to_prospect == [our_id(1), v2_item.message_id, sent_item(ews, agreed_id).message_id]
