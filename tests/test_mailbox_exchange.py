"""The Exchange mailbox end to end: real exchangelib over real HTTP against the loopback EWS endpoint."""

from __future__ import annotations

import socket
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from ews_server import EwsServer

from pipeline.errors import ConfigError, MailboxError
from pipeline.mailbox.base import HELD, MemoryCursors
from pipeline.mailbox.exchange import ExchangeMailbox, ExchangeSettings

SELLER = "seller@example.com"
CLIENT = "client@buyer.example"
PLAN_ID = "<mp-acme-v1-plan@mutualplan.example>"


@pytest.fixture
def ews():
    from exchangelib.protocol import close_connections

    server = EwsServer(SELLER).start()
    yield server
    server.stop()
    # exchangelib caches one protocol per endpoint and credentials; each test has its own port, and we
    # still drop the cache so no session outlives its server.
    close_connections()
    assert server.errors == [], "the endpoint met a request it does not speak"


def settings(ews: EwsServer, **overrides) -> ExchangeSettings:
    values = dict(endpoint=ews.url, mailbox=SELLER, auth="basic", username="seller", password="s3cret",
                  max_wait=5.0, timeout=5.0)
    values.update(overrides)
    return ExchangeSettings(**values)


@pytest.fixture
def state():
    return MemoryCursors()


@pytest.fixture
def box(ews, state):
    return ExchangeMailbox(settings(ews), state)


def client_mail(n: int, *, in_reply_to: str | None = PLAN_ID, subject: str = "Re: Mutual Plan: Acme rollout") -> bytes:
    lines = [f"From: Carol Client <{CLIENT}>", f"To: Sam Seller <{SELLER}>", f"Subject: {subject}",
             f"Message-ID: <client-{n}@buyer.example>", "Date: Mon, 02 Mar 2026 10:00:00 +0000"]
    if in_reply_to:
        lines += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", f"Reply number {n}: looks good."]
    return ("\r\n".join(lines) + "\r\n").encode()


def plan_email(message_id: str = PLAN_ID, *, in_reply_to: str | None = None, version: int = 1) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Sam Seller <{SELLER}>"
    msg["To"] = f"Carol Client <{CLIENT}>"
    msg["Subject"] = ("Re: " if in_reply_to else "") + "Mutual Plan: Acme rollout [MP-acme]"
    msg["Message-ID"] = message_id
    msg["X-Mutual-Plan"] = f"acme; v{version}"
    msg["X-Auto-Response-Suppress"] = "All"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = f"{PLAN_ID} {in_reply_to}"
    msg.set_content(f"Version {version} of our plan is attached.")
    msg.add_alternative(f"<p>Version {version} of our plan is attached.</p>", subtype="html")
    msg.add_attachment(b"%PDF-1.7\n% plan v" + str(version).encode(), maintype="application", subtype="pdf",
                       filename=f"acme-v{version}.pdf")
    msg.add_attachment(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", maintype="text",
                       subtype="calendar", filename="acme.ics")
    return msg


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


# --- reading -----------------------------------------------------------------------------------------------


def test_fetch_hands_over_raw_mime_once_and_only_new_mail_after(ews, box, state):
    ews.deliver(client_mail(1))
    ews.deliver(client_mail(2))

    first = list(box.fetch())

    assert [f.raw for f in first] == [client_mail(1), client_mail(2)]
    assert [f.key.split("|", 1)[1] for f in first] == ["<client-1@buyer.example>", "<client-2@buyer.example>"]
    assert state.cursor(f"exchange:{SELLER}:inbox")
    assert list(box.fetch()) == []
    ews.deliver(client_mail(3))
    assert [f.raw for f in box.fetch()] == [client_mail(3)]
    # Every request named the pinned version; none asked the server to guess one.
    assert {r["version"] for r in ews.requests} == {"Exchange2016"}
    assert "SyncFolderItems" in ews.operations()


def test_first_sync_skips_mail_the_seller_already_read_unless_asked(ews, state):
    ews.deliver(client_mail(1), read=True)
    ews.deliver(client_mail(2))

    assert [f.raw for f in ExchangeMailbox(settings(ews), state).fetch()] == [client_mail(2)]
    assert [f.raw for f in ExchangeMailbox(settings(ews, first_sync="all"), MemoryCursors()).fetch()] == [
        client_mail(1), client_mail(2)]


def test_state_advances_only_after_the_whole_batch_is_taken(ews, box, state):
    for n in (1, 2, 3):
        ews.deliver(client_mail(n))

    fetching = box.fetch()
    assert next(fetching).raw == client_mail(1)
    fetching.close()  # the process dies with the batch half handed over

    assert state.cursor(f"exchange:{SELLER}:inbox") is None
    assert [f.raw for f in box.fetch()] == [client_mail(1), client_mail(2), client_mail(3)]


def test_a_connection_dropped_mid_batch_loses_nothing(ews, state):
    for n in (1, 2, 3):
        ews.deliver(client_mail(n))
    box = ExchangeMailbox(settings(ews, batch_size=2), state)
    ews.inject("drop", "GetItem")  # the first chunk's GetItem never answers

    taken = []
    with pytest.raises(MailboxError) as caught:
        taken.extend(box.fetch())
    assert caught.value.transient
    assert taken == []
    assert state.cursor(f"exchange:{SELLER}:inbox") is None
    assert [f.raw for f in box.fetch()] == [client_mail(1), client_mail(2), client_mail(3)]


def test_mail_filed_before_a_crash_is_not_handed_over_again(ews, box):
    ews.deliver(client_mail(1))
    ews.deliver(client_mail(2))

    fetching = box.fetch()
    first = next(fetching)
    box.ack(first.key)
    fetching.close()

    assert [f.raw for f in box.fetch()] == [client_mail(2)]


# --- filing ------------------------------------------------------------------------------------------------


def test_ack_marks_read_adds_the_category_and_moves_to_the_folder(ews, box):
    delivered = ews.deliver(client_mail(1))
    delivered.categories = ["Customer"]
    (fetched,) = box.fetch()

    box.ack(fetched.key)

    assert ews.folder_items("inbox") == []
    (filed,) = ews.folder_items("Mutual Plan")
    assert filed.message_id == "<client-1@buyer.example>"
    assert filed.is_read is True
    assert filed.categories == ["Customer", "Mutual Plan"]
    assert filed.id != fetched.key.split("|")[0]  # the move gave it a new id, as Exchange does


def test_ack_files_held_mail_in_the_held_folder(ews, box):
    ews.deliver(client_mail(1))
    (fetched,) = box.fetch()

    box.ack(fetched.key, HELD)

    (held,) = ews.folder_items("Mutual Plan/Held")
    assert held.message_id == "<client-1@buyer.example>"
    assert ews.folder_items("Mutual Plan") == []


def test_ack_finds_the_message_by_message_id_when_its_id_went_stale(ews, box):
    item = ews.deliver(client_mail(1))
    (fetched,) = box.fetch()
    # Outlook moved it to another folder and back: same message, new id.
    with ews.mailbox.lock:
        del ews.mailbox.items[item.id]
        item.id = ews.mailbox.new_item_id()
        ews.mailbox.items[item.id] = item

    box.ack(fetched.key)
    box.ack(fetched.key)  # a replay after a crash changes nothing

    (filed,) = ews.folder_items("Mutual Plan")
    assert filed.message_id == "<client-1@buyer.example>"
    assert filed.categories == ["Mutual Plan"]


# --- sending -----------------------------------------------------------------------------------------------


def test_send_new_plan_mail_keeps_our_message_id_header_and_a_copy_in_sent(ews, box):
    ews.requests.clear()
    box.send(plan_email())

    (sent,) = ews.folder_items("sentitems")
    assert sent.message_id == PLAN_ID
    assert [a.name for a in sent.attachments] == ["acme-v1.pdf", "acme.ics"]
    (out,) = [parse(raw) for raw in ews.mailbox.outbound]
    assert out["Message-ID"] == PLAN_ID
    assert out["X-Mutual-Plan"] == "acme; v1"
    assert ews.operations().count("CreateItem") == 1
    assert box.was_sent(PLAN_ID)
    assert not box.was_sent("<never-sent@mutualplan.example>")


def test_reply_goes_out_in_the_outlook_conversation_with_its_attachments(ews, box):
    box.send(plan_email())
    (plan_item,) = ews.folder_items("sentitems")
    client = ews.deliver(client_mail(1))
    (fetched,) = box.fetch()
    box.ack(fetched.key)
    ews.requests.clear()

    box.send(plan_email("<mp-acme-v2-plan@mutualplan.example>", in_reply_to="<client-1@buyer.example>", version=2))

    ops = ews.operations()
    assert [op for op in ops if op in ("CreateItem", "UpdateItem", "CreateAttachment", "SendItem")] == [
        "CreateItem", "UpdateItem", "CreateAttachment", "CreateAttachment", "SendItem"]
    reply = next(i for i in ews.folder_items("sentitems") if i.id != plan_item.id)
    assert reply.in_reply_to == "<client-1@buyer.example>"
    assert reply.references.split() == [PLAN_ID, "<client-1@buyer.example>"]
    assert reply.conversation_id == client.conversation_id == plan_item.conversation_id
    assert [a.name for a in reply.attachments] == ["acme-v2.pdf", "acme.ics"]
    assert ews.folder_items("drafts") == []
    out = parse(ews.mailbox.outbound[-1])
    assert out["X-Mutual-Plan"] == "acme; v2"
    assert out["X-Auto-Response-Suppress"] == "All"
    assert out["In-Reply-To"] == "<client-1@buyer.example>"
    # Exchange named the reply itself; our Message-ID is on the item, so the outbox's check still works.
    assert out["Message-ID"] != "<mp-acme-v2-plan@mutualplan.example>"
    assert box.was_sent("<mp-acme-v2-plan@mutualplan.example>")
    assert box.sent_message_id("<mp-acme-v2-plan@mutualplan.example>") == out["Message-ID"] == reply.message_id
    assert box.sent_message_id(PLAN_ID) == PLAN_ID
    assert box.sent_message_id("<never-sent@mutualplan.example>") is None


def test_reply_to_unknown_original_is_sent_as_new_mail_with_its_threading_headers(ews, box):
    box.send(plan_email("<mp-acme-v2-plan@mutualplan.example>", in_reply_to="<gone@buyer.example>", version=2))

    (sent,) = ews.folder_items("sentitems")
    assert sent.message_id == "<mp-acme-v2-plan@mutualplan.example>"
    assert sent.in_reply_to == "<gone@buyer.example>"


def test_save_draft_leaves_new_mail_and_replies_in_drafts_unsent(ews, box):
    ews.deliver(client_mail(1))
    (fetched,) = box.fetch()
    box.ack(fetched.key)

    box.save_draft(plan_email())
    box.save_draft(plan_email("<mp-acme-v2-plan@mutualplan.example>", in_reply_to="<client-1@buyer.example>",
                              version=2))

    drafts = {i.subject: i for i in ews.folder_items("drafts")}
    assert set(drafts) == {"Mutual Plan: Acme rollout [MP-acme]", "Re: Mutual Plan: Acme rollout [MP-acme]"}
    assert all(d.is_draft for d in drafts.values())
    reply = drafts["Re: Mutual Plan: Acme rollout [MP-acme]"]
    assert reply.in_reply_to == "<client-1@buyer.example>"
    assert [a.name for a in reply.attachments] == ["acme-v2.pdf", "acme.ics"]
    assert ews.mailbox.outbound == []
    assert ews.folder_items("sentitems") == []
    assert not box.was_sent(PLAN_ID)


# --- throttling and faults ---------------------------------------------------------------------------------


def test_server_busy_back_off_is_honoured_then_the_call_succeeds(ews, box):
    ews.deliver(client_mail(1))
    ews.inject("busy", "SyncFolderItems", times=2, back_off_ms=300)

    started = time.monotonic()
    fetched = list(box.fetch())

    assert [f.raw for f in fetched] == [client_mail(1)]
    assert ews.operations().count("SyncFolderItems") == 3
    assert time.monotonic() - started >= 0.6  # it waited the two back-offs the server asked for


def test_server_busy_past_max_wait_is_a_transient_error(ews, state):
    box = ExchangeMailbox(settings(ews, max_wait=0.5), state)
    ews.inject("busy", "SyncFolderItems", times=10, back_off_ms=300)

    with pytest.raises(MailboxError) as caught:
        list(box.fetch())

    assert caught.value.transient
    assert "busy" in caught.value.message
    assert ews.operations().count("SyncFolderItems") == 2  # 0.3 s waited, a second 0.3 s would pass 0.5 s


def test_server_down_is_a_transient_error_that_says_so():
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = ExchangeMailbox(ExchangeSettings(endpoint=f"http://127.0.0.1:{port}/EWS/Exchange.asmx", mailbox=SELLER,
                                           auth="basic", username="u", password="p", max_wait=5), MemoryCursors())

    with pytest.raises(MailboxError) as caught:
        list(box.fetch())

    assert caught.value.transient
    assert "did not answer" in caught.value.message
    assert f"127.0.0.1:{port}" in caught.value.message


def test_refused_credentials_fail_at_once_and_are_not_transient(ews, state):
    box = ExchangeMailbox(settings(ews, password="wrong"), state)

    started = time.monotonic()
    with pytest.raises(MailboxError) as caught:
        list(box.fetch())

    assert not caught.value.transient
    assert "refused the credentials" in caught.value.message
    assert time.monotonic() - started < 5  # not retried as if it were throttling


def test_a_send_whose_answer_was_lost_is_found_by_was_sent(ews, box):
    ews.inject("drop_after", "CreateItem")

    with pytest.raises(MailboxError) as caught:
        box.send(plan_email())

    assert caught.value.transient
    assert box.was_sent(PLAN_ID)  # so the outbox does not send it twice
    assert len(ews.mailbox.outbound) == 1


# --- signing in --------------------------------------------------------------------------------------------


def test_app_credentials_fetch_a_token_and_impersonate_the_seller(ews, state, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the loopback endpoint speaks plain HTTP
    ews.deliver(client_mail(1))
    box = ExchangeMailbox(settings(ews, auth="oauth2-app", username=None, password=None, client_id="app-id",
                                   client_secret="app-secret", tenant_id="tenant", token_url=ews.token_url), state)

    assert [f.raw for f in box.fetch()] == [client_mail(1)]
    assert {r["impersonate"] for r in ews.requests} == {SELLER}
    assert {r["anchor"] for r in ews.requests} == {SELLER}


def test_app_credentials_with_a_wrong_secret_are_refused(ews, state, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    box = ExchangeMailbox(settings(ews, auth="oauth2-app", client_id="app-id", client_secret="wrong",
                                   tenant_id="tenant", token_url=ews.token_url), state)

    with pytest.raises(MailboxError) as caught:
        list(box.fetch())
    assert not caught.value.transient
    assert "refused the credentials" in caught.value.message


def test_a_delegated_token_source_is_asked_again_for_each_call(ews, state, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    tokens = iter(["token-1", "token-2"])
    current = {"token": next(tokens)}
    ews.tokens.add("token-1")
    box = ExchangeMailbox(settings(ews, auth="oauth2-delegated", access_token=lambda: current["token"]), state)
    assert list(box.fetch()) == []
    assert {r["impersonate"] for r in ews.requests} == {""}  # the seller's own token: no impersonation

    ews.tokens = {"token-2"}  # the first token expired
    current["token"] = next(tokens)
    ews.deliver(client_mail(1))
    assert [f.raw for f in box.fetch()] == [client_mail(1)]


@pytest.mark.parametrize(("change", "complaint"), [
    ({"auth": "kerberos"}, "auth"),
    ({"password": None}, "password"),
    ({"server_version": "Exchange2003"}, "Exchange2003"),
    ({"endpoint": "mail.example.com"}, "URL"),
    ({"mailbox": "seller"}, "email address"),
    ({"first_sync": "never"}, "first_sync"),
])
def test_settings_that_cannot_work_are_refused_by_name(change, complaint):
    values = dict(endpoint="https://mail.example.com/EWS/Exchange.asmx", mailbox=SELLER, auth="basic",
                  username="u", password="p")
    values.update(change)
    with pytest.raises(ConfigError) as caught:
        ExchangeMailbox(ExchangeSettings(**values), MemoryCursors())
    assert complaint in str(caught.value)


def test_ack_without_a_folder_leaves_the_sellers_other_mail_alone(ews, box):
    ews.deliver(client_mail(1, in_reply_to=None, subject="Lunch on Friday?"))
    (fetched,) = box.fetch()

    box.ack(fetched.key, None)

    (still,) = ews.folder_items("inbox")
    assert still.is_read is False
    assert still.categories == []
    assert list(box.fetch()) == []


def test_settings_from_the_mailbox_table_with_secrets_apart():
    made = ExchangeSettings.from_options(
        {"backend": "exchange", "endpoint": "https://mail.example.com/EWS/Exchange.asmx", "mailbox": SELLER,
         "auth": "ntlm", "username": "EXAMPLE\\sam", "password_env": "EWS_PASSWORD", "max_wait": 120},
        password="from-env",
    )
    assert (made.auth, made.username, made.password, made.max_wait) == ("ntlm", "EXAMPLE\\sam", "from-env", 120)
    with pytest.raises(ConfigError) as caught:
        ExchangeSettings.from_options({"endpoint": "https://x/EWS/Exchange.asmx", "mailbox": SELLER, "folder": "X"})
    assert "folder" in str(caught.value)


# --- drafts left behind ------------------------------------------------------------------------------------


def _answered(ews, box) -> None:
    """The plan went out and the client's answer is filed: a follow-up can be a reply in the conversation."""
    box.send(plan_email())
    ews.deliver(client_mail(1))
    (fetched,) = box.fetch()
    box.ack(fetched.key)


V2 = "<mp-acme-v2-plan@mutualplan.example>"


def test_sending_a_reviewed_draft_sends_that_draft_with_the_sellers_edits(ews, box):
    _answered(ews, box)
    box.save_draft(plan_email(V2, in_reply_to="<client-1@buyer.example>", version=2))
    (draft,) = ews.folder_items("drafts")
    draft.body = "Edited by the seller. " + draft.body  # reviewed in Outlook
    ews.requests.clear()

    box.send(plan_email(V2, in_reply_to="<client-1@buyer.example>", version=2))  # approved

    assert "CreateItem" not in ews.operations()  # no second reply built beside the draft
    assert ews.folder_items("drafts") == []
    (sent,) = [i for i in ews.folder_items("sentitems") if i.extended.get(("PublicStrings", "MutualPlanMessageId"))
               == V2]
    assert sent.body.startswith("Edited by the seller. ")
    assert [a.name for a in sent.attachments] == ["acme-v2.pdf", "acme.ics"]
    assert len(ews.mailbox.outbound) == 2  # the plan and this one reply
    assert box.sent_message_id(V2) == sent.message_id


def test_a_reply_cut_short_before_it_was_sent_is_sent_once_on_retry(ews, state):
    box = ExchangeMailbox(settings(ews, max_wait=0.5), state)  # gives up after one back-off
    _answered(ews, box)
    ews.inject("busy", "SendItem", times=2, back_off_ms=300)  # built and attached, but never sent

    with pytest.raises(MailboxError) as caught:
        box.send(plan_email(V2, in_reply_to="<client-1@buyer.example>", version=2))
    assert caught.value.transient
    assert not box.was_sent(V2)
    assert len(ews.folder_items("drafts")) == 1

    box.send(plan_email(V2, in_reply_to="<client-1@buyer.example>", version=2))

    assert ews.folder_items("drafts") == []
    assert len(ews.mailbox.outbound) == 2
    assert box.was_sent(V2)


def test_an_incomplete_reply_draft_is_replaced_not_sent(ews, state):
    box = ExchangeMailbox(settings(ews, max_wait=0.5), state)  # gives up after one back-off
    _answered(ews, box)
    ews.inject("busy", "CreateAttachment", times=2, back_off_ms=300)  # the reply has no letter yet

    with pytest.raises(MailboxError):
        box.send(plan_email(V2, in_reply_to="<client-1@buyer.example>", version=2))
    (partial,) = ews.folder_items("drafts")
    assert partial.attachments == []

    box.save_draft(plan_email(V2, in_reply_to="<client-1@buyer.example>", version=2))
    box.save_draft(plan_email(V2, in_reply_to="<client-1@buyer.example>", version=2))  # a replay: still one

    (draft,) = ews.folder_items("drafts")
    assert draft.id != partial.id
    assert [a.name for a in draft.attachments] == ["acme-v2.pdf", "acme.ics"]
    assert len(ews.mailbox.outbound) == 1  # only the plan went out


# --- drafts superseded -------------------------------------------------------------------------------------

OTHER = "<mp-other-v1-plan@mutualplan.example>"


def test_remove_draft_moves_that_draft_to_deleted_items_and_leaves_sent_alone(ews, box):
    box.send(plan_email())
    box.save_draft(plan_email(version=2))  # a draft under the Message-ID already in Sent Items
    box.save_draft(plan_email(OTHER))
    ews.requests.clear()

    assert box.remove_draft(PLAN_ID.strip("<>")) is True

    assert [d.message_id for d in ews.folder_items("drafts")] == [OTHER]
    # MoveToDeletedItems: the seller can still get it back.
    (deleted,) = ews.folder_items("deleteditems")
    assert deleted.message_id == PLAN_ID and [a.name for a in deleted.attachments] == ["acme-v2.pdf", "acme.ics"]
    (sent,) = ews.folder_items("sentitems")
    assert sent.message_id == PLAN_ID and [a.name for a in sent.attachments] == ["acme-v1.pdf", "acme.ics"]
    assert ews.operations() == ["FindItem", "DeleteItem"]
    assert box.remove_draft(PLAN_ID) is False  # a second call finds nothing
    assert box.remove_draft("<never-drafted@mutualplan.example>") is False
    assert box.was_sent(PLAN_ID)
    assert len(ews.folder_items("drafts")) == 1


def test_remove_draft_finds_a_reply_draft_exchange_named_by_our_message_id(ews, box):
    _answered(ews, box)
    box.save_draft(plan_email(V2, in_reply_to="<client-1@buyer.example>", version=2))
    (draft,) = ews.folder_items("drafts")
    assert draft.message_id != V2  # Exchange named the reply itself

    assert box.remove_draft(V2) is True

    assert ews.folder_items("drafts") == []
    assert [i.id for i in ews.folder_items("deleteditems")] != []
    assert box.remove_draft(V2) is False


def test_remove_draft_leaves_an_item_in_drafts_that_is_not_a_draft(ews, box):
    # A sent copy the seller dragged into Drafts is mail, not a draft waiting to be sent.
    item = ews.deliver(client_mail(1, in_reply_to=None).replace(b"<client-1@buyer.example>", PLAN_ID.encode()))
    item.folder = ews.mailbox.folder_id("drafts")

    assert box.remove_draft(PLAN_ID) is False

    assert [i.message_id for i in ews.folder_items("drafts")] == [PLAN_ID]


def test_remove_draft_whose_answer_was_lost_is_not_an_error_the_second_time(ews, box):
    box.save_draft(plan_email())
    ews.inject("drop_after", "DeleteItem")  # Exchange moved it, the answer never came

    with pytest.raises(MailboxError) as caught:
        box.remove_draft(PLAN_ID)
    assert caught.value.transient

    assert box.remove_draft(PLAN_ID) is False
    assert ews.folder_items("drafts") == []


def test_remove_draft_when_exchange_is_down_or_busy_is_a_transient_error(ews, state):
    box = ExchangeMailbox(settings(ews, max_wait=0.5), state)
    box.save_draft(plan_email())
    ews.inject("drop", "DeleteItem")
    with pytest.raises(MailboxError) as caught:
        box.remove_draft(PLAN_ID)
    assert caught.value.transient and "did not answer" in caught.value.message

    ews.inject("busy", "FindItem", times=3, back_off_ms=300)
    with pytest.raises(MailboxError) as caught:
        box.remove_draft(PLAN_ID)
    assert caught.value.transient and "busy" in caught.value.message
    assert len(ews.folder_items("drafts")) == 1  # nothing was removed


def test_remove_draft_sent_by_the_seller_while_we_looked_is_false(ews, box, monkeypatch):
    from exchangelib import Account

    box.save_draft(plan_email())
    real_delete = Account.bulk_delete

    def seller_sends_it_first(self, ids, **kwargs):
        with ews.mailbox.lock:  # the seller presses Send in Outlook between our FindItem and DeleteItem
            (draft,) = ews.folder_items("drafts")
            ews.mailbox.submit(draft, ews.mailbox.folder_id("sentitems"))
        return real_delete(self, ids, **kwargs)

    monkeypatch.setattr(Account, "bulk_delete", seller_sends_it_first)

    assert box.remove_draft(PLAN_ID) is False
    assert [i.message_id for i in ews.folder_items("sentitems")] == [PLAN_ID]
