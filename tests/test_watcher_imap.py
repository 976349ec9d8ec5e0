"""The whole loop through a real Dovecot (IMAP) and Postfix (SMTP) on loopback, configured as a user would.

The seller and the prospect's people are users of the test servers, with addresses of their own per test. Version 1
goes out by SMTP; the prospect answers by SMTP to Postfix, as their mail client would; the watcher reads the answer
over IMAP; version 2 waits in the seller's Drafts until `approve`, then arrives in the prospect's mailbox in the
thread, read back over IMAP as the prospect; both confirm and the agreed email reaches everyone.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from imap_tools import MailBoxStartTls

from pipeline.home import Home, init_home
from pipeline.loop.service import PollReport, Service, queue_plan
from pipeline.loop.status import plan_status
from pipeline.mailbox.imap import ImapMailbox
from pipeline.plan.source import parse_plan
from pipeline.render.templates import default_templates as templates_dir
from tests.loop_support import (
    DANA,
    KIM,
    PLAN_ID,
    RAJ,
    SELLER,
    START,
    SUBJECT,
    SUBJECT_V2,
    V1,
    V2,
    Clock,
    addresses,
    attachments,
    parse,
    pdf_text,
    reply,
    settings_toml,
    text_body,
)
from tests.servers import MailServer

PASSWORD_ENV = "MUTUALPLAN_TEST_IMAP_PASSWORD"
AGREED = "<plan.acme-northwind-2027.v2.agreed@northwind.example>"


@dataclass
class People:
    """The example plan's people as users of the test servers: address -> password."""

    seller: str
    dana: str
    raj: str
    kim: str
    passwords: dict[str, str]

    def rename(self, text: str) -> str:
        for old, new in ((SELLER, self.seller), (DANA, self.dana), (RAJ, self.raj), (KIM, self.kim)):
            text = text.replace(old, new)
        return text


@pytest.fixture
def people(mailserver: MailServer) -> People:
    tag = uuid.uuid4().hex[:8]
    found = {}
    for role, address in (("seller", SELLER), ("dana", DANA), ("raj", RAJ), ("kim", KIM)):
        local, domain = address.split("@")
        found[role] = f"{local}-{tag}@{domain}"
    return People(**found, passwords={a: mailserver.add_user(a) for a in found.values()})


@pytest.fixture
def home(people: People, mailserver: MailServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A home whose mutualplan.toml names the test servers in [mailbox], the password in the environment."""
    monkeypatch.setenv(PASSWORD_ENV, people.passwords[people.seller])
    mailbox = f"""\
backend = "imap"
host = "{mailserver.host}"
port = {mailserver.imap_port}
security = "starttls"
username = "{people.seller}"
password_env = "{PASSWORD_ENV}"
smtp_port = {mailserver.smtp_port}
smtp_security = "starttls"
cafile = "{mailserver.cafile}"
timeout = 10"""
    home = init_home(tmp_path / "home")
    home.settings_path.write_text(people.rename(settings_toml("review", mailbox)), encoding="utf-8")
    yield home


def poll(home: Home, clock: Clock) -> PollReport:
    clock.advance(minutes=5)
    with Service.open(home, clock) as watcher:
        assert isinstance(watcher.parts.mailbox, ImapMailbox)
        report = watcher.poll()
    assert report.errors == [], report.errors
    return report


def status(home: Home, clock: Clock) -> dict:
    with home.open_store() as store:
        return plan_status(store, PLAN_ID, clock().date())


def as_prospect(mailserver: MailServer, people: People, address: str, message_id: str) -> object:
    """The message as `address` reads it over IMAP (STARTTLS, verified), after waiting for its delivery."""
    mailserver.wait_for_message(address, message_id)
    context = ssl.create_default_context(cafile=str(mailserver.cafile))
    with MailBoxStartTls(mailserver.host, mailserver.imap_port, ssl_context=context).login(
        address, people.passwords[address]
    ) as box:
        found = [m for m in box.fetch(mark_seen=False) if message_id in (m.headers.get("message-id") or ("",))[0]]
    assert len(found) == 1, f"{len(found)} copies of {message_id} in {address}'s INBOX"
    return parse(found[0].obj.as_bytes())


def send_as(mailserver: MailServer, sender: str, to: str, raw: bytes) -> None:
    """What the prospect's mail client does: hand the message to the SMTP server."""
    with smtplib.SMTP(mailserver.host, mailserver.smtp_port, timeout=10) as smtp:
        smtp.sendmail(sender, [to], raw)


def ids_in(mailserver: MailServer, address: str, folder: str) -> list[str]:
    return [parse(raw)["Message-ID"] for raw in mailserver.messages(address, folder)]


@pytest.mark.servers
def test_the_whole_loop_over_imap_and_smtp(mailserver: MailServer, people: People, home: Home) -> None:
    clock = Clock()
    text = (templates_dir() / "plans" / "example.md").read_text(encoding="utf-8")
    plan = parse_plan(people.rename(text), file="example.md")
    with home.open_store() as store:
        store.add_version(plan, author=people.seller, reason="created", created=START)
        queue_plan(store, PLAN_ID, at=clock())

    # Version 1 goes out by SMTP: the confirming contacts in To, Kim in Cc; a copy in the seller's Sent.
    assert poll(home, clock).sent == [V1]
    v1 = as_prospect(mailserver, people, people.dana, V1)
    assert addresses(v1, "To") == [people.dana, people.raj] and addresses(v1, "Cc") == [people.kim]
    assert sorted(attachments(v1)) == [f"Mutual Plan {PLAN_ID} v1.ics", f"Mutual Plan {PLAN_ID} v1.pdf"]
    mailserver.wait_for_message(people.kim, V1)
    assert ids_in(mailserver, people.seller, "Sent") == [V1]
    assert status(home, clock)["summary"] == f"waiting on {people.dana}, {people.raj}"

    # Dana's answer, through Postfix to the seller's INBOX; the watcher reads it over IMAP.
    clock.advance(days=1)
    change = "<r1.dana@acme.example>"
    send_as(mailserver, people.dana, people.seller, reply(
        people.dana, "Hi Jordan,\n\nPlease move the pilot to March 8.\n\nDana", message_id=change, when=clock(),
        to=people.seller))
    mailserver.wait_for_message(people.seller, change)
    report = poll(home, clock)
    assert [d for _, d, _ in report.handled] == ["applied"] and report.drafted == [V2]
    assert ids_in(mailserver, people.seller, "Processed") == [change]
    assert ids_in(mailserver, people.seller, "Drafts") == [V2]
    assert status(home, clock)["summary"] == (
        "version 2 waits on the seller (in Drafts: send it or `mutualplan approve`)")
    assert ids_in(mailserver, people.dana, "INBOX") == [V1]  # nothing reaches the prospect before the seller

    # The seller approves: version 2 reaches Dana in the thread of her answer, and leaves Drafts.
    clock.advance(hours=1)
    with Service.open(home, clock) as watcher:
        assert watcher.approve(PLAN_ID) == [V2]
    v2 = as_prospect(mailserver, people, people.dana, V2)
    assert v2["In-Reply-To"] == change
    assert v2["References"].split() == [V1, change]
    assert v2["Subject"] == f"Re: {SUBJECT}"
    assert addresses(v2, "To") == [people.dana, people.raj] and addresses(v2, "Cc") == [people.kim]
    files = attachments(v2)
    assert sorted(files) == [f"Mutual Plan {PLAN_ID} v2.ics", f"Mutual Plan {PLAN_ID} v2.pdf"]
    assert files[f"Mutual Plan {PLAN_ID} v2.pdf"][0] == "application/pdf"
    letter = pdf_text(files[f"Mutual Plan {PLAN_ID} v2.pdf"][1])
    assert "version 2" in letter and "Mon 8 Mar 2027" in letter
    assert b"20270308" in files[f"Mutual Plan {PLAN_ID} v2.ics"][1]  # the pilot's new date in the calendar
    assert "Moved: M3  Pilot on Q4 data, from Mon 1 Mar 2027 to Mon 8 Mar 2027" in text_body(v2)
    assert ids_in(mailserver, people.seller, "Drafts") == []
    assert ids_in(mailserver, people.seller, "Sent") == [V1, V2]
    assert status(home, clock)["summary"] == f"waiting on {people.dana}, {people.raj}"

    # Both confirm version 2 from their mail clients: the agreed email reaches everyone, once.
    for who, name in ((people.dana, "dana"), (people.raj, "raj")):
        clock.advance(hours=2)
        send_as(mailserver, who, people.seller, reply(
            who, "Confirmed.", message_id=f"<c2.{name}@acme.example>", when=clock(), in_reply_to=V2,
            references=[V1, change, V2], subject=SUBJECT_V2, to=people.seller))
        mailserver.wait_for_message(people.seller, f"<c2.{name}@acme.example>")
    report = poll(home, clock)
    assert sorted(d for _, d, _ in report.handled) == ["agreed", "confirmed"]
    assert report.sent == [AGREED]
    for address in (people.dana, people.raj, people.kim):
        agreed = as_prospect(mailserver, people, address, AGREED)
    assert agreed["In-Reply-To"] in ("<c2.dana@acme.example>", "<c2.raj@acme.example>")
    assert f"Mutual Plan {PLAN_ID} v2.pdf" in attachments(agreed)
    final = status(home, clock)
    assert final["state"] == "agreed" and final["summary"] == "mutually agreed on version 2"
    assert final["confirmed"] == sorted([people.dana, people.raj])

    # The seller is in Cc of the agreed email: their copy comes back in, is recorded as ours, and is not answered;
    # it stays in their INBOX for them to read.
    mailserver.wait_for_message(people.seller, AGREED)
    report = poll(home, clock)
    assert [d for _, d, _ in report.handled] == ["ignored"] and report.sent == []
    assert ids_in(mailserver, people.seller, "Sent") == [V1, V2, AGREED]
    assert ids_in(mailserver, people.seller, "INBOX") == [AGREED]


IMAP_TABLE = {"backend": "imap", "host": "127.0.0.1", "port": 1143, "security": "plain", "username": "jordan",
              "password_env": "MP_PW", "smtp_port": 1025, "smtp_security": "plain", "timeout": 5}


def open_imap(table: dict, env: dict[str, str]) -> ImapMailbox:
    from pipeline.config import load_settings, open_mailbox
    from pipeline.mailbox.base import MemoryCursors

    settings = load_settings({"mailbox": table})
    return open_mailbox(settings, Path("unused"), MemoryCursors(), env=env)  # type: ignore[return-value]


def test_the_imap_backend_is_set_up_from_the_mailbox_table() -> None:
    box = open_imap({**IMAP_TABLE, "smtp_password_env": "MP_SMTP"}, {"MP_PW": "imap-secret", "MP_SMTP": "smtp-secret"})
    assert isinstance(box, ImapMailbox)
    s = box.settings
    assert (s.host, s.port, s.username, s.password, s.smtp_password) == (
        "127.0.0.1", 1143, "jordan", "imap-secret", "smtp-secret")
    assert s.smtp_server == ("127.0.0.1", 1025) and s.timeout == 5 and s.folder == "INBOX"
    assert "imap-secret" not in repr(s)


@pytest.mark.parametrize(
    ("change", "env", "message"),
    [
        ({"pasword": "x"}, {"MP_PW": "p"}, "[mailbox] has unknown setting(s) pasword"),
        ({"password": "in-the-file"}, {"MP_PW": "p"}, "did you mean password_env?"),
        ({"port": "1143"}, {"MP_PW": "p"}, "[mailbox] port must be a whole number, 0 or more, not '1143'"),
        ({"append_sent": "yes"}, {"MP_PW": "p"}, "[mailbox] append_sent must be true or false, not 'yes'"),
        ({"host": ""}, {"MP_PW": "p"}, "host is missing"),
        ({}, {}, "password_env names $MP_PW, which is not set"),
        ({"password_env": None}, {}, "password_env is missing"),
        ({"security": "ssl"}, {"MP_PW": "p"}, "imap security 'ssl' is not one of tls, starttls, plain"),
        ({"host": "mail.example.com"}, {"MP_PW": "p"}, "would send the password unencrypted to mail.example.com"),
    ],
)
def test_a_wrong_mailbox_table_says_what_to_fix(change: dict, env: dict[str, str], message: str) -> None:
    from pipeline.errors import ConfigError

    table = {k: v for k, v in {**IMAP_TABLE, **change}.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        open_imap(table, env)
    assert message in str(err.value)
