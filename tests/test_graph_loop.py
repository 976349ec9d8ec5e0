"""The watcher's whole loop through the graph mailbox: plan out, the prospect's reply in, the next version out in
the same Outlook conversation, then the reviewed draft sent and the confirmations read, all over local Graph."""

from __future__ import annotations

import email.policy
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from pipeline.config import open_mailbox
from pipeline.demo import SimulatedClock as Clock
from pipeline.home import init_home
from pipeline.loop.parts import Parts, settings_of
from pipeline.loop.service import Service, queue_plan
from pipeline.mailbox.graph import GraphMailbox
from pipeline.plan.source import parse_plan
from pipeline.render.templates import default_templates as templates_dir
from pipeline.spool import Spool
from tests.graph_server import GraphServer, Tls, make_tls

SELLER = "jordan.lee@northwind.example"
DANA = "dana.whitfield@acme.example"
RAJ = "raj.patel@acme.example"
CLIENT_ID = "22222222-3333-4444-5555-666666666666"
SECRET_ENV = "MUTUALPLAN_TEST_GRAPH_SECRET"
SECRET = "loop-secret"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("graph-loop-tls"))


def settings_toml(server: GraphServer, changes: str) -> str:
    return f"""
[seller]
company = "Northwind Analytics"
name = "Jordan Lee"
email = "{SELLER}"

[mailbox]
backend = "graph"
tenant = "{server.tenant}"
client_id = "{CLIENT_ID}"
client_secret_env = "{SECRET_ENV}"
mailbox = "{SELLER}"
base_url = "{server.base_url}"
authority_url = "{server.url}"
ca_bundle = "{server.tls.ca_path}"

[policy]
changes = "{changes}"
trusted_authserv_ids = ["mx.northwind.example"]  # the seller's server, which stamps each reply (reply() below)

[letter]
letterhead = "northwind"
"""


def reply(
    sender: tuple[str, str], subject: str, message_id: str, thread: list[str], body: str, when: datetime
) -> bytes:
    msg = EmailMessage()
    msg["Authentication-Results"] = f"mx.northwind.example; dmarc=pass header.from={sender[1].rpartition('@')[2]}"
    msg["From"] = f"{sender[0]} <{sender[1]}>"
    msg["To"] = f"Jordan Lee <{SELLER}>"
    msg["Subject"] = f"RE: {subject}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = thread[-1]
    msg["References"] = " ".join(thread)
    msg.set_content(body)
    return msg.as_bytes(policy=email.policy.SMTP)


@pytest.mark.parametrize("changes", ["review", "auto"])
def test_plan_out_reply_in_next_version_out_in_the_thread(tmp_path: Path, tls: Tls, changes: str) -> None:
    with GraphServer(tmp_path / "graph", tls=tls) as server:
        seller_box = server.add_mailbox(SELLER, "Jordan Lee")
        dana_box = server.add_mailbox(DANA, "Dana Whitfield")
        server.add_mailbox(RAJ, "Raj Patel")
        server.register_app(CLIENT_ID, secret=SECRET, mailboxes={SELLER})
        home = init_home(tmp_path / "home")
        home.settings_path.write_text(settings_toml(server, changes), encoding="utf-8")
        settings = settings_of(home)
        clock = Clock()
        store = home.open_store()
        try:
            # The adapter comes from the [mailbox] table, and keeps its deltaLink in the store.
            mailbox = open_mailbox(settings, home.mail_dir, store, env={SECRET_ENV: SECRET})
            assert isinstance(mailbox, GraphMailbox)
            watcher = Service(Parts(
                store=store,
                archive=home.open_archive(),
                mailbox=mailbox,
                spool=Spool(home.spool_dir),
                settings=settings,
                clock=clock,
            ))
            plan = parse_plan((templates_dir() / "plans" / "example.md").read_text(encoding="utf-8"), file="example.md")
            store.add_version(plan, author=SELLER, reason="created", created=clock())

            # 1. Version 1 goes out from the seller's mailbox.
            v1 = queue_plan(store, plan.id, at=clock())
            report = watcher.poll()
            assert report.sent == [v1.message_id] and report.errors == []
            [plan_mail] = seller_box.in_folder("sentitems")
            assert plan_mail.internet_message_id == v1.message_id
            [dana_copy] = dana_box.in_folder("inbox")
            subject = str(dana_copy.subject)

            # 2. Dana answers in the thread: move the pilot.
            clock.advance(days=1)
            reply_id = "<loop.1.dana@acme.example>"
            server.deliver(
                SELLER,
                reply(
                    ("Dana Whitfield", DANA),
                    subject,
                    reply_id,
                    [v1.message_id],
                    "Hi Jordan,\n\nPlease move the pilot to March 8 - our Q4 close runs late.\n\nDana\n",
                    clock(),
                ),
            )
            clock.advance(minutes=5)
            report = watcher.poll()
            assert report.fetched == 1 and report.errors == []
            assert [d for _, d, _ in report.handled] == ["applied"]
            assert store.message(reply_id.strip("<>")).disposition == "applied"  # stored without brackets
            assert store.current(plan.id).number == 2
            v2_id = f"<plan.{plan.id}.v2@northwind.example>"
            # Dana's reply is filed: read, categorized, in Mutual Plan/Processed.
            [dana_reply] = [i for i in seller_box.items.values() if i.internet_message_id == reply_id]
            assert dana_reply.is_read and "Mutual Plan" in dana_reply.categories
            assert seller_box.path_of(dana_reply.folder) == "Mutual Plan/Processed"

            if changes == "review":
                # 3a. Version 2 waits in Drafts, as a reply in the conversation, until the seller sends it.
                assert report.drafted == [v2_id] and report.sent == []
                [draft] = seller_box.in_folder("drafts")
                assert draft.internet_message_id == v2_id and draft.in_reply_to == reply_id
                assert len(dana_box.in_folder("inbox")) == 1
                assert watcher.approve(plan.id) == [v2_id]
                assert seller_box.in_folder("drafts") == []  # the draft itself went, no second copy
            else:
                # 3b. Version 2 goes out at once (and the seller gets a note of what to ask in return).
                assert v2_id in report.sent and report.drafted == []
            follow_up = [i for i in seller_box.in_folder("sentitems") if i.internet_message_id == v2_id]
            assert len(follow_up) == 1
            assert follow_up[0].in_reply_to == reply_id
            # One Outlook conversation: the plan, Dana's reply and version 2.
            assert follow_up[0].conversation_id == dana_reply.conversation_id == plan_mail.conversation_id
            received = [i for i in dana_box.in_folder("inbox") if i.internet_message_id == v2_id]
            assert len(received) == 1 and received[0].in_reply_to == reply_id
            letters = [a["name"] for a in follow_up[0].attachments]
            assert any(name.endswith(".pdf") for name in letters)

            # 4. Dana and Raj confirm version 2 (quoting it); the plan is agreed, the last mail goes out.
            thread = [v1.message_id, reply_id, v2_id]
            for n, (name, address) in enumerate((("Dana Whitfield", DANA), ("Raj Patel", RAJ)), start=2):
                clock.advance(hours=2)
                server.deliver(
                    SELLER,
                    reply(
                        (name, address),
                        subject.replace("version 1", "version 2"),
                        f"<loop.{n}@acme.example>",
                        thread,
                        "Confirmed.\n",
                        clock(),
                    ),
                )
            clock.advance(minutes=5)
            report = watcher.poll()
            # (Our own notes to the seller, delivered to the seller's inbox, are recognised and ignored.)
            assert [d for _, d, _ in report.handled if d != "ignored"] == ["confirmed", "agreed"]
            assert report.errors == []
            assert store.plan_state(plan.id) == "agreed"
            assert len(report.sent) == 1  # the "mutually agreed" email, in the thread
            # The seller's own copy of that email, if it was among the recipients, is recognised and left;
            # after that nothing is handed over again.
            assert {d for _, d, _ in watcher.poll().handled} <= {"ignored"}
            assert watcher.poll().fetched == 0
        finally:
            store.close()
