"""The graph mailbox against a local Graph and Entra ID endpoint over HTTPS: tokens, delta, filing, sending, limits."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import json
import os
import re
import stat
import threading
import tomllib
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote

import pytest

from pipeline.errors import ConfigError, MailboxError
from pipeline.mailbox.base import HELD, MemoryCursors, share_apps_over
from pipeline.mailbox.graph import GraphMailbox, GraphSettings, sign_in
from pipeline.mailbox.graph.payload import attachments, custom_headers, message_json, recipients
from tests.graph_server import ALL_MAILBOXES, GraphServer, Tls, make_client_certificate, make_tls

SELLER = "sam@seller.example"
OTHER = "olga@seller.example"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
PUBLIC_ID = "99999999-8888-7777-6666-555555555555"
SECRET = "not-a-real-secret"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
ICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:m1@plan\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    # RSA keys take a moment to make; one certificate authority serves every server of this module.
    return make_tls(tmp_path_factory.mktemp("graph-tls"))


@pytest.fixture
def server(tmp_path: Path, tls: Tls):
    with GraphServer(tmp_path, tls=tls) as srv:
        srv.add_mailbox(SELLER, "Sam Seller")
        srv.add_mailbox(OTHER, "Olga Other")
        # The application access policy allows the seller's mailbox only.
        srv.register_app(CLIENT_ID, secret=SECRET, mailboxes={SELLER})
        srv.register_app(PUBLIC_ID, public=True)
        yield srv


def settings(server: GraphServer, **changes) -> GraphSettings:
    values = {
        "tenant": server.tenant,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "mailbox": SELLER,
        "base_url": server.base_url,
        "authority_url": server.url,
        "ca_bundle": str(server.tls.ca_path),
        "max_retry_after": 5.0,
        **changes,
    }
    return GraphSettings(**values)


@pytest.fixture
def state() -> MemoryCursors:
    return MemoryCursors()


@pytest.fixture
def box(server: GraphServer, state: MemoryCursors):
    mailbox = GraphMailbox(settings(server), state)
    yield mailbox
    mailbox.close()


def inbound(subject: str, message_id: str, *, in_reply_to: str | None = None, body: str = "Looks good.") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Pat Buyer <pat@buyer.example>"
    msg["To"] = f"Sam Seller <{SELLER}>"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    return msg.as_bytes(policy=email.policy.SMTP)


def plan_email(message_id: str = "<plan.acme.v1@seller.example>", **extra: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Sam Seller <{SELLER}>"
    msg["To"] = "Pat Buyer <pat@buyer.example>, dana@buyer.example"
    msg["Cc"] = "Lee Legal <lee@buyer.example>"
    msg["Subject"] = "Mutual Plan: Acme and Seller (version 1)"
    msg["Message-ID"] = message_id
    msg["X-Mutual-Plan"] = "acme; version=1"
    msg["X-Auto-Response-Suppress"] = "All"
    for name, value in extra.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("M1  Kick-off - Acme (Pat) - Mon 1 Feb 2027\n\nReply Confirmed, or say what should move.\n")
    msg.add_alternative("<p>M1 Kick-off</p><p>Reply <b>Confirmed</b>.</p>", subtype="html")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="acme-plan-v1.pdf")
    msg.add_attachment(ICS.encode(), maintype="text", subtype="calendar", filename="acme-plan.ics")
    return msg


def requests_to(server: GraphServer, method: str, pattern: str):
    return [s for s in server.seen if s.method == method and re.search(pattern, s.path)]


# Sign-in -----------------------------------------------------------------------------------------


def test_the_app_token_is_fetched_once_and_every_graph_call_carries_it(server, box):
    server.deliver(SELLER, inbound("Hello", "<a1@buyer.example>"))
    list(box.fetch())
    box.was_sent("<nothing@seller.example>")

    assert len(server.token_requests) == 1
    form = server.token_requests[0]
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == CLIENT_ID
    assert form["client_secret"] == SECRET
    assert form["scope"] == f"{server.url}/.default"
    graph = server.graph_requests()
    assert [(s.method, s.path.rsplit("/", 2)[-2:]) for s in graph] == [
        ("GET", ["messages", "delta"]),
        ("GET", [graph[1].path.rsplit("/", 2)[-2], "$value"]),
        ("GET", ["sentitems", "messages"]),  # by internetMessageId,
        ("GET", ["sentitems", "messages"]),  # then by the MutualPlanMessageId property
    ]
    tokens = {s.headers["authorization"] for s in graph}
    assert len(tokens) == 1 and tokens.pop().removeprefix("Bearer ") in server.tokens
    assert all(s.headers.get("prefer", "").startswith('IdType="ImmutableId"') for s in graph)


def test_a_certificate_signs_the_client_assertion(server, tmp_path, state):
    pem_path, cert_pem = make_client_certificate(tmp_path)
    server.register_app("cert-app", certificate_pem=cert_pem)
    with GraphMailbox(
        settings(server, client_id="cert-app", client_secret=None, certificate_path=str(pem_path)), state
    ) as mailbox:
        assert list(mailbox.fetch()) == []
    form = server.token_requests[-1]
    assert "client_secret" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def test_a_certificate_the_tenant_does_not_know_is_refused(server, tmp_path, state):
    pem_path, _ = make_client_certificate(tmp_path, "stranger")
    _, registered = make_client_certificate(tmp_path, "registered")
    server.register_app("cert-app", certificate_pem=registered)
    with (
        GraphMailbox(
            settings(server, client_id="cert-app", client_secret=None, certificate_path=str(pem_path)), state
        ) as mailbox,
        pytest.raises(MailboxError) as caught,
    ):
        list(mailbox.fetch())
    assert "invalid_client" in str(caught.value)
    assert not caught.value.transient


def test_a_wrong_secret_is_a_clear_permanent_error(server, state):
    with GraphMailbox(settings(server, client_secret="wrong"), state) as mailbox, pytest.raises(MailboxError) as caught:
        list(mailbox.fetch())
    assert "invalid_client" in caught.value.message and "AADSTS7000215" in caught.value.message
    assert not caught.value.transient
    assert "client id" in (caught.value.hint or "")


def test_an_unknown_tenant_is_a_configuration_error(server, state):
    with (
        GraphMailbox(settings(server, tenant="nobody.onmicrosoft.com"), state) as mailbox,
        pytest.raises(MailboxError) as caught,
    ):
        list(mailbox.fetch())
    assert "misconfigured" in caught.value.message
    assert "tenant" in (caught.value.hint or "")


def test_settings_say_what_is_missing():
    with pytest.raises(ConfigError, match="client secret or a certificate"):
        GraphSettings(tenant="t", client_id="c", mailbox=SELLER)
    with pytest.raises(ConfigError, match="seller's mailbox"):
        GraphSettings(tenant="t", client_id="c", client_secret="s")
    with pytest.raises(ConfigError, match="token_cache_path"):
        GraphSettings(tenant="t", client_id="c", auth="device_code")
    with pytest.raises(ConfigError, match="between 1 and 4"):
        GraphSettings(tenant="t", client_id="c", client_secret="s", mailbox=SELLER, max_concurrency=8)
    assert GraphSettings(tenant="t", client_id="c", client_secret="s", mailbox=SELLER).resource == (
        "https://graph.microsoft.com"
    )


def test_settings_come_from_the_mailbox_table_with_secrets_apart():
    table = tomllib.loads(
        """
        [mailbox]
        backend = "graph"
        tenant = "contoso.onmicrosoft.com"
        client_id = "c"
        mailbox = "sam@seller.example"
        client_secret_env = "MUTUALPLAN_GRAPH_SECRET"
        processed_folder = "Deals/Done"
        max_concurrency = 2
        """
    )["mailbox"]
    made = GraphSettings.from_options(table, client_secret="from-env")
    assert (made.client_secret, made.processed_folder, made.max_concurrency) == ("from-env", "Deals/Done", 2)
    assert made.held_folder == "Mutual Plan/Held" and made.category == "Mutual Plan"
    with pytest.raises(ConfigError, match="does not know: client_secret") as caught:
        GraphSettings.from_options({**table, "client_secret": "in the file"})
    assert "client_secret_env" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="does not know: procesed_folder"):
        GraphSettings.from_options({**table, "procesed_folder": "x"}, client_secret="s")


def test_device_code_sign_in_keeps_an_owner_only_token_cache_and_reuses_it(server, tmp_path, state):
    cache = tmp_path / "home" / "graph-token.json"
    delegated = settings(
        server, auth="device_code", client_id=PUBLIC_ID, client_secret=None, mailbox="", token_cache_path=str(cache)
    )
    shown: list[str] = []

    def show(message: str) -> None:
        shown.append(message)
        code = re.search(r"enter the code (\w+)", message).group(1)
        server.approve(code, SELLER)  # the seller enters the code in a browser

    assert sign_in(delegated, show) == SELLER
    assert "devicelogin" in shown[0]
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert json.loads(cache.read_text())["RefreshToken"]  # what lets the watcher sign in unattended

    server.deliver(SELLER, inbound("Hello", "<d1@buyer.example>"))
    with GraphMailbox(delegated, state) as mailbox:  # a new process: the cache comes from disk
        assert len(list(mailbox.fetch())) == 1
    grants = [f["grant_type"] for f in server.token_requests]
    assert grants == ["urn:ietf:params:oauth:grant-type:device_code"]  # no second sign-in
    assert all(s.path.startswith("/v1.0/me/") for s in server.graph_requests())


def test_device_code_refuses_a_token_cache_others_can_read(server, tmp_path, state):
    cache = tmp_path / "graph-token.json"
    cache.write_text("{}")
    os.chmod(cache, 0o644)
    delegated = settings(
        server, auth="device_code", client_id=PUBLIC_ID, client_secret=None, mailbox="", token_cache_path=str(cache)
    )
    with GraphMailbox(delegated, state) as mailbox, pytest.raises(MailboxError) as caught:
        list(mailbox.fetch())
    assert "read by other users" in caught.value.message
    assert f"chmod 600 {cache}" in (caught.value.hint or "")


def test_device_code_without_a_sign_in_says_how_to_sign_in(server, tmp_path, state):
    delegated = settings(
        server,
        auth="device_code",
        client_id=PUBLIC_ID,
        client_secret=None,
        mailbox="",
        token_cache_path=str(tmp_path / "none.json"),
    )
    with GraphMailbox(delegated, state) as mailbox, pytest.raises(MailboxError) as caught:
        list(mailbox.fetch())
    assert "signed in" in caught.value.message
    assert "mutualplan login" in (caught.value.hint or "")
    assert server.graph_requests() == []


# Reading -----------------------------------------------------------------------------------------


def test_fetch_hands_over_new_inbox_mail_oldest_first_as_the_exact_mime(server, state):
    now = dt.datetime.now(dt.UTC)
    raws = {
        "b": inbound("Second", "<b@buyer.example>"),
        "c": inbound("Third", "<c@buyer.example>"),
        "a": inbound("First", "<a@buyer.example>"),
    }
    received = {
        "a": now - dt.timedelta(minutes=3),
        "b": now - dt.timedelta(minutes=2),
        "c": now - dt.timedelta(minutes=1),
    }
    items = {k: server.deliver(SELLER, raw, received=received[k]) for k, raw in raws.items()}
    with GraphMailbox(settings(server, page_size=2), state) as mailbox:
        fetched = list(mailbox.fetch())

    assert [f.key for f in fetched] == [items["a"].id, items["b"].id, items["c"].id]
    assert [f.raw for f in fetched] == [raws["a"], raws["b"], raws["c"]]
    # Two per page: the round followed Graph's nextLink to the end.
    deltas = requests_to(server, "GET", r"/messages/delta$")
    assert len(deltas) == 2 and "$skiptoken=" in deltas[1].query
    assert "changeType=created" in deltas[0].query and "receivedDateTime ge " in deltas[0].query


def test_the_delta_link_is_saved_only_after_a_whole_round_and_used_on_the_next_poll(server, box, state):
    first = server.deliver(SELLER, inbound("One", "<one@buyer.example>"))
    second = server.deliver(SELLER, inbound("Two", "<two@buyer.example>"))

    round_ = box.fetch()
    assert next(round_).key == first.id
    assert state.cursor(f"{box.name}:deltaLink") is None  # half a round hands over nothing durable
    round_.close()
    assert state.cursor(f"{box.name}:deltaLink") is None
    assert [f.key for f in box.fetch()] == [first.id, second.id]  # the crashed round is replayed
    link = state.cursor(f"{box.name}:deltaLink")
    assert link and "$deltatoken=" in link

    third = server.deliver(SELLER, inbound("Three", "<three@buyer.example>"))
    assert [f.key for f in box.fetch()] == [third.id]
    assert "$deltatoken=" in requests_to(server, "GET", r"/messages/delta$")[-1].query
    assert state.cursor(f"{box.name}:deltaLink") != link
    assert list(box.fetch()) == []


def test_the_first_round_leaves_old_mail_alone(server, box):
    server.deliver(
        SELLER, inbound("Old", "<old@buyer.example>"), received=dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    )
    new = server.deliver(SELLER, inbound("New", "<new@buyer.example>"))
    assert [f.key for f in box.fetch()] == [new.id]


def test_a_410_gone_starts_a_resync_from_the_last_completed_round(server, box, state):
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    server.deliver(SELLER, inbound("Before", "<before@buyer.example>"), received=earlier)
    kept = server.deliver(SELLER, inbound("Kept", "<kept@buyer.example>"))
    assert len(list(box.fetch())) == 2
    old_link = state.cursor(f"{box.name}:deltaLink")
    later = server.deliver(SELLER, inbound("Later", "<later@buyer.example>"))
    server.fault("GET", r"/messages/delta$", 410, query=r"\$deltatoken=.")

    again = [f.key for f in box.fetch()]

    # The resync reads from a day before the last round: the unacked message comes again (the caller
    # deduplicates by Message-ID), the two-day-old one does not.
    assert again == [kept.id, later.id]
    deltas = requests_to(server, "GET", r"/messages/delta$")
    assert deltas[-2].status == 410 and "$deltatoken=" in deltas[-2].query
    assert deltas[-1].status == 200 and "$deltatoken" not in deltas[-1].query
    assert state.cursor(f"{box.name}:deltaLink") not in (None, old_link)


def test_a_message_deleted_before_download_is_skipped(server, box):
    gone = server.deliver(SELLER, inbound("Gone", "<gone@buyer.example>"))
    kept = server.deliver(SELLER, inbound("Kept", "<kept2@buyer.example>"))
    server.fault("GET", rf"/messages/{re.escape(gone.id)}/\$value$", 404, code="ErrorItemNotFound")
    assert [f.key for f in box.fetch()] == [kept.id]


# Filing ------------------------------------------------------------------------------------------


def test_ack_marks_read_adds_the_category_and_moves_keeping_the_key(server, box):
    reply = server.deliver(SELLER, inbound("Re: plan", "<r1@buyer.example>"))
    reply.categories = ["Blue category"]
    held = server.deliver(SELLER, inbound("Odd", "<odd@buyer.example>"))
    keys = [f.key for f in box.fetch()]

    box.ack(keys[0])
    box.ack(keys[1], HELD)

    seller = server.mailbox(SELLER)
    assert reply.is_read and reply.categories == ["Blue category", "Mutual Plan"]
    assert seller.path_of(reply.folder) == "Mutual Plan/Processed"
    assert held.is_read and held.categories == ["Mutual Plan"]
    assert seller.path_of(held.folder) == "Mutual Plan/Held"
    assert seller.items[keys[0]] is reply  # the immutable id still finds it after the move
    assert len(requests_to(server, "POST", r"/mailFolders$")) == 1  # "Mutual Plan", once
    assert len(requests_to(server, "POST", r"/childFolders$")) == 2  # Processed and Held
    assert list(box.fetch()) == []  # moved out of the inbox: nothing new

    moves = len(requests_to(server, "POST", r"/move$"))
    box.ack(keys[0])  # again, after a crash: nothing changes, nothing moves
    assert len(requests_to(server, "POST", r"/move$")) == moves
    assert reply.categories == ["Blue category", "Mutual Plan"]


def test_mail_about_no_plan_is_left_as_the_seller_left_it_and_does_not_come_back(server, box):
    unrelated = server.deliver(SELLER, inbound("Lunch?", "<lunch@friend.example>"))
    [fetched] = list(box.fetch())
    before = len(server.graph_requests())

    box.ack(fetched.key, None)

    assert len(server.graph_requests()) == before  # not a single request
    assert not unrelated.is_read and unrelated.categories == []
    assert server.mailbox(SELLER).path_of(unrelated.folder) == "Inbox"
    unrelated.is_read = True  # the seller reads it in Outlook
    unrelated.changed = server.mailbox(SELLER).tick()
    assert list(box.fetch()) == []


def test_ack_uses_existing_folders_and_tolerates_a_deleted_message(server, box):
    first = server.deliver(SELLER, inbound("One", "<f1@buyer.example>"))
    keys = [f.key for f in box.fetch()]
    with GraphMailbox(settings(server, processed_folder="Archive/Plans"), MemoryCursors()) as other:
        other.ack(keys[0])
    created = len(requests_to(server, "POST", r"/(mailFolders|childFolders)$"))
    second = server.deliver(SELLER, inbound("Two", "<f2@buyer.example>"))
    with GraphMailbox(settings(server, processed_folder="Archive/Plans"), MemoryCursors()) as fresh:
        fresh.ack(second.id)  # a new adapter finds the folders instead of creating them
    assert len(requests_to(server, "POST", r"/(mailFolders|childFolders)$")) == created
    assert server.mailbox(SELLER).path_of(first.folder) == "Archive/Plans"

    del server.mailbox(SELLER).items[second.id]
    box.ack(second.id)  # gone from the mailbox: nothing to file, no error


# Sending -----------------------------------------------------------------------------------------


def test_the_plan_email_goes_by_sendmail_as_the_exact_mime_we_rendered(server, box):
    message = plan_email()

    box.send(message)

    [post] = requests_to(server, "POST", r"/sendMail$")
    assert post.headers["content-type"].startswith("text/plain")
    assert base64.b64decode(post.body) == message.as_bytes(policy=email.policy.SMTP)
    assert not requests_to(server, "POST", r"/messages$")
    [item] = server.mailbox(SELLER).in_folder("sentitems")
    assert item.internet_message_id == "<plan.acme.v1@seller.example>"  # parsed from our Message-ID
    assert [r["emailAddress"]["address"] for r in item.to] == ["pat@buyer.example", "dana@buyer.example"]
    wire = next(server.sent_mime())
    assert wire["Message-ID"] == "<plan.acme.v1@seller.example>"
    assert wire["X-Mutual-Plan"] == "acme; version=1"
    # Both alternatives travel: the plain text the prospect quotes line by line, and the HTML.
    assert "M1  Kick-off - Acme (Pat)" in wire.get_body(preferencelist=("plain",)).get_content()
    assert "<b>Confirmed</b>" in wire.get_body(preferencelist=("html",)).get_content()
    assert [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in wire.iter_attachments()] == [
        ("acme-plan-v1.pdf", "application/pdf", PDF),
        ("acme-plan.ics", "text/calendar", ICS.encode()),
    ]
    assert box.was_sent("<plan.acme.v1@seller.example>")
    assert box.was_sent("plan.acme.v1@seller.example")  # brackets or not
    assert not box.was_sent("<plan.acme.v2@seller.example>")


def test_an_attachment_over_3_mb_goes_through_an_upload_session_on_a_draft(server, box):
    big = os.urandom(3 * 1024 * 1024 + 500_000)
    message = plan_email()
    message.add_attachment(big, maintype="application", subtype="zip", filename="evidence.zip")

    box.send(message)

    assert not requests_to(server, "POST", r"/sendMail$")
    [created] = requests_to(server, "POST", r"/messages$")
    draft = json.loads(created.body)
    assert draft["internetMessageId"] == "<plan.acme.v1@seller.example>"  # set while it is a draft
    assert draft["internetMessageHeaders"] == [
        {"name": "X-Mutual-Plan", "value": "acme; version=1"},
        {"name": "X-Auto-Response-Suppress", "value": "All"},
    ]
    assert "attachments" not in draft
    assert len(requests_to(server, "POST", r"/attachments$")) == 2  # the PDF and the .ics, each under 3 MB
    assert len(requests_to(server, "POST", r"/createUploadSession$")) == 1
    puts = requests_to(server, "PUT", r"^/upload/")
    assert len(puts) == 2
    assert all("authorization" not in p.headers for p in puts)
    assert [p.headers["content-range"] for p in puts] == [
        f"bytes 0-{2621440 - 1}/{len(big)}",
        f"bytes 2621440-{len(big) - 1}/{len(big)}",
    ]
    assert len(requests_to(server, "POST", r"/send$")) == 1
    item = server.mailbox(SELLER).in_folder("sentitems")[0]
    assert {a["name"]: a["data"] for a in item.attachments} == {
        "acme-plan-v1.pdf": PDF,
        "acme-plan.ics": ICS.encode(),
        "evidence.zip": big,
    }
    assert item.internet_message_id == "<plan.acme.v1@seller.example>"
    assert box.was_sent("<plan.acme.v1@seller.example>")


def _reply_in_thread(server: GraphServer, box: GraphMailbox) -> tuple[str, EmailMessage]:
    """Plan out, the prospect's reply in: the reply's Message-ID and the follow-up to send."""
    box.send(plan_email())
    server.deliver(
        SELLER, inbound("Re: Mutual Plan", "<reply1@buyer.example>", in_reply_to="<plan.acme.v1@seller.example>")
    )
    [fetched] = list(box.fetch())
    box.ack(fetched.key)
    follow_up = plan_email("<plan.acme.v2@seller.example>", Auto_Submitted="auto-generated")
    follow_up.replace_header("Subject", "Re: Mutual Plan: Acme and Seller (version 2)")
    follow_up.replace_header("X-Mutual-Plan", "acme; version=2")
    follow_up["In-Reply-To"] = "<reply1@buyer.example>"
    follow_up["References"] = "<plan.acme.v1@seller.example> <reply1@buyer.example>"
    return fetched.key, follow_up


def test_a_follow_up_is_a_reply_in_the_outlook_conversation(server, box):
    reply_key, follow_up = _reply_in_thread(server, box)

    box.send(follow_up)

    seller = server.mailbox(SELLER)
    plan = seller.in_folder("sentitems")[0]
    answer = seller.items[reply_key]
    sent = seller.in_folder("sentitems")[1]
    assert plan.conversation_id == answer.conversation_id == sent.conversation_id
    assert sent.in_reply_to == "<reply1@buyer.example>"
    assert sent.internet_message_id == "<plan.acme.v2@seller.example>"
    assert sent.subject == "Re: Mutual Plan: Acme and Seller (version 2)"
    assert [a["name"] for a in sent.attachments] == ["acme-plan-v1.pdf", "acme-plan.ics"]
    assert {h["name"] for h in sent.headers} == {"X-Mutual-Plan", "X-Auto-Response-Suppress"}
    created = requests_to(server, "POST", r"/createReply$")
    assert len(created) == 1 and reply_key in created[0].path.replace("%3D", "=")
    wire = list(server.sent_mime())[1]
    assert wire["In-Reply-To"] == "<reply1@buyer.example>"
    assert wire["Auto-Submitted"] == "auto-generated"  # the Internet-header property, written out
    assert box.was_sent("<plan.acme.v2@seller.example>")


def test_a_reply_exchange_renames_is_still_found_by_our_message_id(server, box):
    server.refuse_reply_message_id = True  # Exchange keeps its own Message-ID for the reply it builds
    _, follow_up = _reply_in_thread(server, box)
    box.save_draft(follow_up)
    box.save_draft(follow_up)  # found again by the MutualPlanMessageId property: still one draft
    seller = server.mailbox(SELLER)
    [draft] = seller.in_folder("drafts")

    box.send(follow_up)

    sent = seller.in_folder("sentitems")[-1]
    assert sent.id == draft.id and sent.in_reply_to == "<reply1@buyer.example>"
    assert sent.internet_message_id.endswith("@fake.prod.outlook.com>")  # not ours
    assert box.was_sent("<plan.acme.v2@seller.example>")
    assert box.sent_message_id("<plan.acme.v2@seller.example>") == sent.internet_message_id
    assert box.sent_message_id("<plan.acme.v1@seller.example>") == "<plan.acme.v1@seller.example>"
    assert box.sent_message_id("<never@seller.example>") is None
    wire = list(server.sent_mime())[-1]
    assert wire["X-Mutual-Plan"] == "acme; version=2" and wire["Auto-Submitted"] == "auto-generated"


def test_save_draft_leaves_the_reply_in_drafts_until_the_seller_sends_it(server, box):
    _, follow_up = _reply_in_thread(server, box)

    box.save_draft(follow_up)

    seller = server.mailbox(SELLER)
    [draft] = seller.in_folder("drafts")
    assert draft.is_draft and draft.internet_message_id == "<plan.acme.v2@seller.example>"
    assert draft.conversation_id == seller.in_folder("sentitems")[0].conversation_id
    assert len(server.outbound) == 1  # only the plan email went out
    assert not requests_to(server, "POST", r"/send$")
    assert not box.was_sent("<plan.acme.v2@seller.example>")

    with server.lock:  # the seller presses Send in Outlook
        server._transport(seller, draft)
    assert box.was_sent("<plan.acme.v2@seller.example>")


def test_sending_a_reviewed_draft_sends_that_draft_with_the_sellers_edits_not_a_second_reply(server, box):
    _, follow_up = _reply_in_thread(server, box)
    box.save_draft(follow_up)
    box.save_draft(follow_up)  # a retry after a crash: still one draft
    seller = server.mailbox(SELLER)
    [draft] = seller.in_folder("drafts")
    draft.body = {"contentType": "HTML", "content": "<p>Edited by Jordan before sending.</p>"}  # in Outlook

    box.send(follow_up)  # `mutualplan approve`

    assert len(requests_to(server, "POST", r"/createReply$")) == 1
    assert seller.in_folder("drafts") == []
    sent = seller.in_folder("sentitems")
    assert [i.id for i in sent][-1] == draft.id and len(sent) == 2  # the plan mail and this draft
    assert draft.body["content"] == "<p>Edited by Jordan before sending.</p>"
    assert box.was_sent("<plan.acme.v2@seller.example>")


def test_an_incomplete_draft_left_by_a_crash_is_replaced_not_sent(server, box):
    _, follow_up = _reply_in_thread(server, box)
    box.save_draft(follow_up)
    seller = server.mailbox(SELLER)
    [broken] = seller.in_folder("drafts")
    broken.attachments = broken.attachments[:1]  # the crash came before the .ics was attached

    box.send(follow_up)

    assert len(requests_to(server, "DELETE", r"/messages/")) == 1
    assert broken.id not in seller.items
    assert seller.in_folder("drafts") == []
    sent = seller.in_folder("sentitems")[-1]
    assert sent.internet_message_id == "<plan.acme.v2@seller.example>"
    assert [a["name"] for a in sent.attachments] == ["acme-plan-v1.pdf", "acme-plan.ics"]
    assert len(server.outbound) == 2  # the plan mail and one follow-up


def test_save_draft_of_a_new_message_keeps_it_in_drafts_with_its_files(server, box):
    box.save_draft(plan_email())
    [draft] = server.mailbox(SELLER).in_folder("drafts")
    assert draft.is_draft and draft.internet_message_id == "<plan.acme.v1@seller.example>"
    kept = email.message_from_bytes(draft.mime(), policy=email.policy.default)
    assert [p.get_filename() for p in kept.iter_attachments()] == ["acme-plan-v1.pdf", "acme-plan.ics"]
    assert server.outbound == []
    assert not box.was_sent("<plan.acme.v1@seller.example>")


def test_remove_draft_deletes_that_draft_and_leaves_sent_items_alone(server, box):
    box.send(plan_email())
    box.save_draft(plan_email())  # a draft under the Message-ID already in Sent Items
    box.save_draft(plan_email("<plan.other.v1@seller.example>"))
    seller = server.mailbox(SELLER)
    stale = next(d for d in seller.in_folder("drafts") if d.internet_message_id == "<plan.acme.v1@seller.example>")
    server.seen.clear()

    assert box.remove_draft("plan.acme.v1@seller.example") is True

    assert [d.internet_message_id for d in seller.in_folder("drafts")] == ["<plan.other.v1@seller.example>"]
    assert [i.internet_message_id for i in seller.in_folder("sentitems")] == ["<plan.acme.v1@seller.example>"]
    [looked] = requests_to(server, "GET", r"/mailFolders/drafts/messages$")
    assert "$filter=internetMessageId eq '<plan.acme.v1@seller.example>'" in looked.query.replace("+", " ")
    [deleted] = requests_to(server, "DELETE", r"/messages/")
    assert unquote(deleted.path).endswith(f"/users/{SELLER}/messages/{stale.id}")
    assert box.remove_draft("<plan.acme.v1@seller.example>") is False  # a second call finds nothing
    assert box.remove_draft("<never@seller.example>") is False
    assert len(requests_to(server, "DELETE", r"/messages/")) == 1
    assert box.was_sent("<plan.acme.v1@seller.example>")


def test_remove_draft_finds_a_reply_exchange_renamed_by_our_message_id(server, box):
    server.refuse_reply_message_id = True
    _, follow_up = _reply_in_thread(server, box)
    box.save_draft(follow_up)
    seller = server.mailbox(SELLER)
    [draft] = seller.in_folder("drafts")
    assert draft.internet_message_id != "<plan.acme.v2@seller.example>"

    assert box.remove_draft("<plan.acme.v2@seller.example>") is True

    assert seller.in_folder("drafts") == [] and draft.id not in seller.items
    assert box.remove_draft("<plan.acme.v2@seller.example>") is False


def test_remove_draft_leaves_a_message_in_drafts_that_is_not_a_draft(server, box):
    # A sent copy the seller dragged into Drafts is mail, not a draft waiting to be sent.
    server.deliver(SELLER, inbound("Mutual Plan", "<plan.acme.v1@seller.example>"), folder="drafts")

    assert box.remove_draft("<plan.acme.v1@seller.example>") is False

    assert len(server.mailbox(SELLER).in_folder("drafts")) == 1
    assert requests_to(server, "DELETE", r"/messages/") == []


def test_remove_draft_gone_before_the_delete_is_false_and_refusals_are_errors(server, box):
    box.save_draft(plan_email())
    # Sent or deleted by the seller between our look and our DELETE.
    server.fault("DELETE", r"/messages/", 404, code="ErrorItemNotFound")
    assert box.remove_draft("<plan.acme.v1@seller.example>") is False

    server.fault("GET", r"/mailFolders/drafts/messages$", 500)
    with pytest.raises(MailboxError) as caught:
        box.remove_draft("<plan.acme.v1@seller.example>")
    assert caught.value.transient and "HTTP 500" in caught.value.message

    server.fault("DELETE", r"/messages/", 403, code="ErrorAccessDenied")
    with pytest.raises(MailboxError) as caught:
        box.remove_draft("<plan.acme.v1@seller.example>")
    assert not caught.value.transient and "Mail.ReadWrite" in (caught.value.hint or "")
    assert len(server.mailbox(SELLER).in_folder("drafts")) == 1

    assert box.remove_draft("<plan.acme.v1@seller.example>") is True


def test_a_reply_to_mail_not_in_the_mailbox_goes_as_mime_with_its_threading_headers(server, box):
    follow_up = plan_email("<plan.acme.v2@seller.example>", Auto_Submitted="auto-generated")
    follow_up["In-Reply-To"] = "<elsewhere@buyer.example>"
    follow_up["References"] = "<plan.acme.v1@seller.example> <elsewhere@buyer.example>"

    box.send(follow_up)

    [post] = requests_to(server, "POST", r"/sendMail$")
    assert post.headers["content-type"].startswith("text/plain")
    assert base64.b64decode(post.body) == follow_up.as_bytes(policy=email.policy.SMTP)
    wire = next(server.sent_mime())
    assert wire["In-Reply-To"] == "<elsewhere@buyer.example>"
    assert wire["Auto-Submitted"] == "auto-generated"
    assert box.was_sent("<plan.acme.v2@seller.example>")


def test_a_reply_with_more_than_five_custom_headers_is_refused_before_anything_is_sent(server, box):
    _, follow_up = _reply_in_thread(server, box)
    for n in range(4):
        follow_up[f"X-Extra-{n}"] = str(n)
    posts = len([s for s in server.seen if s.method == "POST"])
    with pytest.raises(MailboxError, match="at most 5 custom x- headers") as caught:
        box.send(follow_up)
    assert "X-Extra-3" in caught.value.message
    assert len([s for s in server.seen if s.method == "POST"]) == posts
    assert server.mailbox(SELLER).in_folder("drafts") == []


def test_a_new_message_keeps_all_its_x_headers_because_it_goes_as_mime(server, box):
    message = plan_email()
    for n in range(4):
        message[f"X-Extra-{n}"] = str(n)
    box.send(message)
    wire = next(server.sent_mime())
    assert [wire[f"X-Extra-{n}"] for n in range(4)] == ["0", "1", "2", "3"]


# Throttling and concurrency ----------------------------------------------------------------------


def test_429_retry_after_is_honoured(server, box):
    server.deliver(SELLER, inbound("One", "<t1@buyer.example>"))
    server.fault("GET", r"/messages/delta$", 429, retry_after="1")

    assert len(list(box.fetch())) == 1

    deltas = requests_to(server, "GET", r"/messages/delta$")
    assert [d.status for d in deltas] == [429, 200]
    assert deltas[1].at - deltas[0].at >= 1.0


def test_503_on_sendmail_is_retried_and_sends_once(server, box):
    server.fault("POST", r"/sendMail$", 503, retry_after="1")
    box.send(plan_email())
    assert [p.status for p in requests_to(server, "POST", r"/sendMail$")] == [503, 202]
    assert len(server.mailbox(SELLER).in_folder("sentitems")) == 1


def test_a_retry_after_beyond_the_bound_is_a_transient_error(server, box):
    server.fault("GET", r"/messages/delta$", 429, retry_after="600")
    with pytest.raises(MailboxError) as caught:
        list(box.fetch())
    assert caught.value.transient
    assert "600 s" in caught.value.message
    assert len(requests_to(server, "GET", r"/messages/delta$")) == 1


def test_throttling_that_does_not_stop_gives_up_after_the_retries(server, state):
    server.fault("GET", r"/messages/delta$", 429, retry_after="0", times=10)
    with GraphMailbox(settings(server, max_retries=2), state) as mailbox, pytest.raises(MailboxError) as caught:
        list(mailbox.fetch())
    assert caught.value.transient and "after 2 retries" in caught.value.message
    assert len(requests_to(server, "GET", r"/messages/delta$")) == 3


def test_at_most_four_requests_are_in_flight_per_mailbox(server, state):
    for n in range(16):
        server.deliver(SELLER, inbound(f"M{n}", f"<c{n}@buyer.example>"))
    server.delay = 0.05
    first = GraphMailbox(settings(server), MemoryCursors())
    second = GraphMailbox(settings(server), MemoryCursors())
    results: dict[str, int] = {}

    def poll(name: str, mailbox: GraphMailbox) -> None:
        results[name] = len(list(mailbox.fetch()))

    threads = [threading.Thread(target=poll, args=(n, m)) for n, m in (("first", first), ("second", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first.close()
    second.close()

    assert results == {"first": 16, "second": 16}
    # Two adapters of one mailbox share the limit; downloads ran four at a time, never five.
    assert server.max_in_flight[SELLER] == 4
    assert first.max_in_flight == 4


def test_the_apps_requests_in_flight_are_bounded_over_all_its_mailboxes(server, state):
    server.register_app("team-app", secret=SECRET, mailboxes={SELLER, OTHER})
    for n in range(12):
        server.deliver(SELLER, inbound(f"M{n}", f"<s{n}@buyer.example>"))
        server.deliver(OTHER, inbound(f"M{n}", f"<o{n}@buyer.example>"))
    server.delay = 0.05
    boxes = [GraphMailbox(settings(server, client_id="team-app", mailbox=who, app_max_concurrency=3),
                          MemoryCursors()) for who in (SELLER, OTHER)]
    results: dict[int, int] = {}

    def poll(n: int) -> None:
        results[n] = len(list(boxes[n].fetch()))

    threads = [threading.Thread(target=poll, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for mailbox in boxes:
        mailbox.close()
    assert results == {0: 12, 1: 12}
    # Each mailbox alone would take 4; the two together never pass the app's 3, and they did reach it.
    assert server.max_in_flight[ALL_MAILBOXES] == 3
    assert max(server.max_in_flight[SELLER], server.max_in_flight[OTHER]) <= 3


@pytest.mark.parametrize(("workers", "most"), [(2, 2), (3, 1), (8, 1)])
def test_an_apps_limit_is_divided_over_the_teams_live_workers(server, workers, most):
    # A team's worker sets the share from the workers it sees beating; each keeps its part of the app's 4 (at least
    # one request), so N processes together keep to about 4.
    client_id = f"team-app-{workers}"
    server.register_app(client_id, secret=SECRET, mailboxes={SELLER, OTHER})
    for n in range(8):
        server.deliver(SELLER, inbound(f"M{n}", f"<s{n}@buyer.example>"))
        server.deliver(OTHER, inbound(f"M{n}", f"<o{n}@buyer.example>"))
    server.delay = 0.05
    boxes = [GraphMailbox(settings(server, client_id=client_id, mailbox=who, app_max_concurrency=4),
                          MemoryCursors()) for who in (SELLER, OTHER)]
    results: dict[int, int] = {}
    share_apps_over(workers)
    try:
        threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, len(list(boxes[n].fetch()))))
                   for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        share_apps_over(1)
        for mailbox in boxes:
            mailbox.close()
    assert results == {0: 8, 1: 8}
    assert server.max_in_flight[ALL_MAILBOXES] == most


def test_mailboxes_of_one_app_share_its_token(server):
    server.register_app("team-app", secret=SECRET, mailboxes={SELLER, OTHER})
    for _ in range(3):
        for who in (SELLER, OTHER):
            with GraphMailbox(settings(server, client_id="team-app", mailbox=who), MemoryCursors()) as mailbox:
                assert list(mailbox.fetch()) == []
    # Six polls of two mailboxes, as a team's worker makes them: one sign-in, its token kept until near expiry.
    assert [f["client_id"] for f in server.token_requests] == ["team-app"]
    rotated = settings(server, client_id="team-app", client_secret="rotated")
    with GraphMailbox(rotated, MemoryCursors()) as mailbox, pytest.raises(MailboxError, match="gave no Graph token"):
        list(mailbox.fetch())  # a changed secret is a new sign-in, not the old token


# Errors ------------------------------------------------------------------------------------------


def test_a_mailbox_outside_the_access_policy_is_refused_with_what_to_check(server, state):
    with GraphMailbox(settings(server, mailbox=OTHER), state) as mailbox, pytest.raises(MailboxError) as caught:
        list(mailbox.fetch())
    assert "HTTP 403" in caught.value.message and "ErrorAccessDenied" in caught.value.message
    assert "application access policy" in (caught.value.hint or "")
    assert not caught.value.transient


def test_an_unknown_mailbox_names_the_setting_to_fix(server, state):
    server.register_app("open-app", secret=SECRET)
    with (
        GraphMailbox(settings(server, client_id="open-app", mailbox="nobody@seller.example"), state) as mailbox,
        pytest.raises(MailboxError) as caught,
    ):
        list(mailbox.fetch())
    assert "ErrorInvalidUser" in caught.value.message
    assert "mailbox setting" in (caught.value.hint or "")


def test_a_dropped_connection_is_retried_for_reads_but_never_for_a_send(server, box):
    server.fault("GET", r"/messages/delta$", 0, drop=True)
    assert list(box.fetch()) == []
    assert [d.status for d in requests_to(server, "GET", r"/messages/delta$")] == [0, 200]

    server.fault("POST", r"/sendMail$", 0, drop=True)
    with pytest.raises(MailboxError) as caught:
        box.send(plan_email())
    assert caught.value.transient and "could not reach Microsoft Graph" in caught.value.message
    assert len(requests_to(server, "POST", r"/sendMail$")) == 1  # it may have been sent: the outbox checks


def test_a_server_error_is_transient_and_a_bad_request_is_not(server, box):
    server.fault("GET", r"/messages/delta$", 500)
    with pytest.raises(MailboxError) as caught:
        list(box.fetch())
    assert caught.value.transient and "HTTP 500" in caught.value.message

    server.fault("POST", r"/sendMail$", 400, code="ErrorInvalidRecipients")
    with pytest.raises(MailboxError) as caught:
        box.send(plan_email())
    assert not caught.value.transient
    assert "refused to send the message (HTTP 400, ErrorInvalidRecipients" in caught.value.message


def test_an_unreachable_endpoint_is_transient(server, state, tmp_path):
    with GraphServer(tmp_path / "gone", tls=server.tls) as other:
        url = other.url
    unreachable = settings(server, authority_url=url, base_url=f"{url}/v1.0")
    with GraphMailbox(unreachable, state) as mailbox, pytest.raises(MailboxError) as caught:
        list(mailbox.fetch())
    assert caught.value.transient and "could not reach Microsoft Entra ID" in caught.value.message


# The payload, without a server -------------------------------------------------------------------


def test_recipients_keep_display_names_and_skip_empty_ones():
    assert recipients('"Doe, Jane" <jane@x.example>, bob@y.example') == [
        {"emailAddress": {"name": "Doe, Jane", "address": "jane@x.example"}},
        {"emailAddress": {"address": "bob@y.example"}},
    ]
    assert recipients(None) == [] and recipients("") == []


def test_inline_images_beside_an_html_body_become_inline_attachments():
    msg = EmailMessage()
    msg["Subject"] = "Logo"
    msg.set_content("text")
    msg.add_alternative('<p><img src="cid:logo@plan"></p>', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG...", maintype="image", subtype="png", cid="<logo@plan>")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="letter.pdf")

    files = attachments(msg)

    assert [(f.name, f.content_id, f.inline) for f in files] == [
        ("letter.pdf", None, False),
        ("attachment-2", "logo@plan", True),
    ]
    assert message_json(msg)["body"]["contentType"] == "HTML"
    assert [(a.to_json()["isInline"], a.to_json().get("contentId")) for a in files] == [
        (False, None),
        (True, "logo@plan"),
    ]
    assert base64.b64decode(files[0].to_json()["contentBytes"]) == PDF


def test_only_x_headers_are_custom_and_folded_values_become_one_line():
    msg = EmailMessage()
    msg["X-Mutual-Plan"] = "acme; version=3; a-rather-long-value " + "x" * 80
    msg["Auto-Submitted"] = "auto-generated"
    msg["Subject"] = "s"
    msg.set_content("b")
    folded = email.message_from_bytes(msg.as_bytes(policy=email.policy.SMTP), policy=email.policy.default)
    assert custom_headers(folded) == [
        {"name": "X-Mutual-Plan", "value": "acme; version=3; a-rather-long-value " + "x" * 80}
    ]
    assert message_json(folded)["singleValueExtendedProperties"] == [
        {"id": "String {00020386-0000-0000-C000-000000000046} Name Auto-Submitted", "value": "auto-generated"}
    ]
