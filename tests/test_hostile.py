"""Hostile and broken mail through the whole watcher on the Maildir: nothing forged, nothing lost, nothing looped.

Each case in fixtures/hostile/ is an .eml (or several) beside a .json of what must happen, written from the rules
(docs/hostile-mail.md), not from a run: the disposition and its reason, whether the plan changed, what was sent or
drafted and to whom, where the message was filed, and what must never reach a letter or an email. The large cases
(30 MB, 100 nested parts, 50 messages in a minute) are made here rather than kept as files.

Every case starts from a copy of one home whose version 1 went out to Dana and Raj (Kim in Cc), with
`trusted_authserv_ids = ["mx.northwind.example"]`: a reply that changes the plan must carry our server's pass.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import json
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pypdf import PdfReader

from pipeline.demo import SimulatedClock as Clock
from pipeline.errors import MailboxError
from pipeline.home import Home, init_home
from pipeline.loop import act, runner
from pipeline.loop.parts import Parts, settings_of
from pipeline.loop.service import PollReport, Service, queue_plan
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.plan.changes import apply as apply_changes
from pipeline.plan.model import Change
from pipeline.plan.source import parse_plan
from pipeline.render.templates import default_templates as templates_dir
from pipeline.spool import Spool
from pipeline.store import Store

CORPUS = Path(__file__).parent / "fixtures" / "hostile"
CASES = sorted(p.stem for p in CORPUS.glob("*.json"))

PLAN_ID = "acme-northwind-2027"
SELLER = "jordan.lee@northwind.example"
DANA = "dana.whitfield@acme.example"
RAJ = "raj.patel@acme.example"
V1 = "<plan.acme-northwind-2027.v1@northwind.example>"
SUBJECT_V1 = "Mutual Plan: Acme Corp and Northwind Analytics (version 1)"
START = datetime(2027, 1, 11, 17, 2, tzinfo=UTC)  # version 1 goes out
ARRIVAL = datetime(2027, 1, 12, 18, 0, tzinfo=UTC)  # the replies come in
PASS = "mx.northwind.example; spf=pass smtp.mailfrom=acme.example; dmarc=pass header.from=acme.example"

SETTINGS = f"""\
[seller]
company = "Northwind Analytics"
name = "Jordan Lee"
email = "{SELLER}"

[mailbox]
backend = "maildir"

[policy]
changes = "review"
trusted_authserv_ids = ["mx.northwind.example"]

[letter]
letterhead = "northwind"
"""


# --- homes ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sent_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose version 1 went out (its letter rendered once for the module)."""
    root = tmp_path_factory.mktemp("hostile") / "sent"
    home = init_home(root)
    home.settings_path.write_text(SETTINGS, encoding="utf-8")
    plan = parse_plan((templates_dir() / "plans" / "example.md").read_text(encoding="utf-8"), file="example.md")
    clock = Clock(START)
    with Service.open(home, clock) as watcher:
        watcher.store.add_version(plan, author=SELLER, reason="created", created=START)
        queue_plan(watcher.store, PLAN_ID, at=START)
        assert watcher.poll().sent == [V1]
    return root


class Loop:
    """A copy of the sent home, its Maildir and a clock at the time the replies arrive."""

    def __init__(self, source: Path, root: Path) -> None:
        shutil.copytree(source, root)
        self.root = root
        self.home = Home(root)
        self.clock = Clock(ARRIVAL)
        self.mail = MaildirMailbox(self.home.mail_dir)
        self._mtime = 1_800_000_000_000_000_000

    def deliver(self, raw: bytes) -> str:
        """Into the Inbox, each message a little newer than the last (the watcher fetches oldest first)."""
        key = self.mail.deliver(raw)
        self._mtime += 1_000_000
        os.utime(self.home.mail_dir / "new" / key, ns=(self._mtime, self._mtime))
        return key

    def poll(self, *, errors: bool = False) -> PollReport:
        with Service.open(self.home, self.clock) as watcher:
            report = watcher.poll()
        if not errors:
            assert report.errors == [], report.errors
            assert report.shunted == []
        return report

    def store(self) -> Store:
        return self.home.open_store()

    def folder_of(self, message_id: str) -> list[str]:
        """The folders a Message-ID is in (the Inbox included)."""
        return [folder for folder in ("Inbox", "Processed", "Held")
                if any(_header(raw, "Message-ID") == message_id for raw in self.mail.messages(folder))]

    def emails(self, folder: str) -> dict[str, EmailMessage]:
        return {m["Message-ID"]: m for m in map(_parse, self.mail.messages(folder))}


@pytest.fixture
def loop(sent_home: Path, tmp_path: Path) -> Iterator[Loop]:
    loop = Loop(sent_home, tmp_path / "home")
    yield loop
    spool = loop.home.spool_dir
    assert not list((spool / "queue").iterdir()), "messages left in the spool"
    assert not list((spool / "shunt").iterdir()) and not list((spool / "bad").iterdir()), "messages shunted"


def _parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def _header(raw: bytes, name: str) -> str | None:
    value = email.message_from_bytes(raw.split(b"\r\n\r\n")[0].split(b"\n\n")[0], policy=email.policy.compat32)[name]
    return str(value).strip() if value else None


def texts(msg: EmailMessage) -> str:
    """Everything a person can read in an email: its subject and every text part."""
    out = [str(msg["Subject"] or "")]
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            out.append(part.get_content())
    return "\n".join(out)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def letter_text(loop: Loop, version: int) -> str:
    with loop.store() as store:
        (kept,) = [e for e in store.evidence(PLAN_ID, "letter") if e.version == version]
    return pdf_text(loop.home.open_archive().get(kept.sha256))


def reply(sender: str, body: str, message_id: str, *, when: datetime = ARRIVAL, in_reply_to: str | None = V1,
          auth: str | None = PASS, name: str = "", subject: str = f"RE: {SUBJECT_V1}") -> bytes:
    msg = EmailMessage()
    if auth:
        msg["Authentication-Results"] = auth
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = SELLER
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    return bytes(msg)


# --- the canary: a web server on loopback that nothing may ever ask for anything ----------------------------


class _Canary(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def canary() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Canary", (_Canary,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


# --- the corpus -------------------------------------------------------------------------------------


def _setup(loop: Loop, setup: dict[str, Any]) -> int:
    """Versions, plan states and settings a case starts from; returns the version it starts at."""
    if "trusted_authserv_ids" in setup:
        # The default home trusts no server: nothing is authenticated.
        trusted = json.dumps(setup["trusted_authserv_ids"])
        text = SETTINGS.replace('trusted_authserv_ids = ["mx.northwind.example"]', f"trusted_authserv_ids = {trusted}")
        loop.home.settings_path.write_text(text, encoding="utf-8")
    with loop.store() as store:
        if setup.get("versions", 1) >= 2:
            # Version 2 moves the demo (M2), version 3 the pilot (M3); both went out the day before the replies.
            for number, change in ((2, Change(op="move", milestone="M2", due="2027-02-17")),
                                   (3, Change(op="move", milestone="M3", due="2027-03-05"))):
                if number > setup["versions"]:
                    break
                plan = apply_changes(store.current(PLAN_ID).plan, [change], today=START.date())
                store.add_version(plan, author=SELLER, reason="edited", changes=[change],
                                  created=START + timedelta(hours=number))
        if "state" in setup:
            store.set_plan_state(PLAN_ID, setup["state"], at=START + timedelta(hours=4))
        return store.current(PLAN_ID).number


def _outbox(loop: Loop) -> dict[str, Any]:
    with loop.store() as store:
        return {e.message_id: e for e in store.outbox_entries(PLAN_ID)}


@pytest.mark.parametrize("name", CASES)
def test_corpus(name: str, loop: Loop, canary: tuple[str, list[str]]) -> None:
    case = json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))
    host, hits = canary
    files = case.get("messages", [f"{name}.eml"])
    dispositions = case.get("dispositions", [case.get("disposition")])
    reasons = case.get("reasons", [case.get("reason", [])])
    folders = case.get("folders", [case.get("folder")])
    assert len(files) == len(dispositions) == len(reasons) == len(folders)

    start = _setup(loop, case.get("setup", {}))
    before_outbox = set(_outbox(loop))
    before_sent, before_drafts = set(loop.emails("Sent")), set(loop.emails("Drafts"))
    raws = [(CORPUS / f).read_bytes().replace(b"CANARY-HOST", host.encode()) for f in files]
    for raw in raws:
        loop.deliver(raw)
    report = loop.poll()

    # What happened to each message, and why.
    assert [d for _, d, _ in report.handled] == dispositions, report.handled
    for (_, _, reason), words in zip(report.handled, reasons, strict=True):
        for word in words:
            assert word.lower() in reason.lower(), f"{word!r} not in {reason!r}"
    ids = [_header(raw, "Message-ID") for raw in raws]
    for message_id, folder in zip(ids, folders, strict=True):
        if message_id is not None:
            assert folder in loop.folder_of(message_id), (message_id, loop.folder_of(message_id))

    # The plan.
    with loop.store() as store:
        current = store.current(PLAN_ID)
        assert current.number == case.get("version", start)
        assert (current.number != start) is case["plan_changed"]
        assert [v.number for v in store.versions(PLAN_ID)] == list(range(1, current.number + 1))
        assert store.plan_state(PLAN_ID) == case.get("state", "open")
        if "confirmed" in case:
            assert sorted(store.confirmations(PLAN_ID, current.number)) == sorted(case["confirmed"])
        if "changes" in case:
            assert [c.to_dict() for c in current.changes] == case["changes"]
        events = [a.event for a in store.audit_log(PLAN_ID)]
        for event in case.get("audit", []):
            assert event in events
        if "archived" in case:
            digest = hashlib.sha256(raws[-1]).hexdigest()
            kept = any(e.sha256 == digest and e.kind == "in" for e in store.evidence(PLAN_ID))
            assert kept is case["archived"]
            assert loop.home.open_archive().has(digest) is case["archived"]
        if case.get("message_id") == "sha256":
            record = store.message(f"{hashlib.sha256(raws[0]).hexdigest()}@sha256.invalid")
            assert record is not None and record.received == "2027-01-12T18:00:00Z"

    # What went out, to whom: the store says what it queued, the mailbox shows it happened.
    queued = {k: e for k, e in _outbox(loop).items() if k not in before_outbox}
    for mode, folder, before in (("sent", "Sent", before_sent), ("drafted", "Drafts", before_drafts)):
        expected = sorted((kind, sorted(to)) for kind, to in case[mode])
        assert sorted((e.kind, sorted(e.to)) for e in queued.values() if e.state == mode) == expected
        arrived = {k: m for k, m in loop.emails(folder).items() if k not in before}
        assert sorted(arrived) == sorted(k for k, e in queued.items() if e.state == mode)
    new_mail = [m for k, m in {**loop.emails("Sent"), **loop.emails("Drafts")}.items()
                if k not in before_sent | before_drafts]
    readable = "\n".join(texts(m) for m in new_mail)
    for text in case.get("email_includes", []):
        assert text in readable
    for text in case.get("email_excludes", []):
        assert text.replace("CANARY-HOST", host) not in readable
    if "subject_max" in case:
        assert new_mail and all(len(str(m["Subject"])) <= case["subject_max"] for m in new_mail)
    if case.get("letter_excludes"):
        letter = letter_text(loop, case["version"])
        assert f"version {case['version']}" in letter
        for text in case["letter_excludes"]:
            assert text.replace("CANARY-HOST", host) not in letter
    assert hits == [], f"something fetched {hits}"

    # Nothing loops: another poll fetches, handles and sends nothing.
    again = loop.poll()
    assert (again.fetched, again.handled, again.sent, again.drafted) == (0, [], [], [])


# --- made here, not kept as files ---------------------------------------------------------------------


def _notices(loop: Loop, before: set[str]) -> list[Any]:
    return [e for k, e in _outbox(loop).items() if k not in before and e.kind == "notice"]


def test_a_message_over_the_size_limit_is_refused_unread(loop: Loop) -> None:
    msg = _parse(reply(DANA, "Confirmed. The full data set for the pilot is attached.", "<big.dana@acme.example>"))
    msg.add_attachment(bytes(range(256)) * (30 * 4096), maintype="application", subtype="octet-stream",
                       filename="pilot-data.bin")  # 30 MiB of data, about 40 MB as base64
    raw = bytes(msg)
    assert len(raw) > 30 * 1024 * 1024
    # The same size about nothing of ours: the seller's own business, left in the Inbox.
    other = raw
    for old, new in ((b"In-Reply-To: " + V1.encode(), b"X-Note: none"), (b"References: " + V1.encode(), b"X-No: x"),
                     (b"<big.dana@acme.example>", b"<big.other@acme.example>"),
                     (f"RE: {SUBJECT_V1}".encode(), b"Pilot data")):
        other = other.replace(old, new)
    before = set(_outbox(loop))
    loop.deliver(raw)
    loop.deliver(other)
    report = loop.poll()

    (first, second) = report.handled
    assert first[1] == "rejected" and "over the limit of 26,214,400" in first[2] and "refused unread" in first[2]
    assert second[1] == "unrelated" and "over the limit" in second[2]
    with loop.store() as store:
        assert store.current(PLAN_ID).number == 1
        assert store.confirmations(PLAN_ID, 1) == {}  # its "Confirmed." was never read
        record = store.message("big.dana@acme.example")
        assert record is not None and record.disposition == "rejected" and record.sender == DANA
        assert record.raw_sha256 == hashlib.sha256(raw).hexdigest()
        assert not any(e.kind == "in" for e in store.evidence(PLAN_ID))  # nothing half-kept
    assert not loop.home.open_archive().has(hashlib.sha256(raw).hexdigest())
    (notice,) = _notices(loop, before)
    assert notice.to == (SELLER,) and notice.state == "sent"
    assert "refused unread" in texts(loop.emails("Sent")[notice.message_id])
    assert loop.folder_of("<big.dana@acme.example>") == ["Held"]
    assert loop.folder_of("<big.other@acme.example>") == ["Inbox"]
    assert loop.poll().handled == []

    # Relayed again with one more Received header: flagged under its own id, and still not kept.
    relayed = b"Received: from relay2.northwind.example by mx.northwind.example\r\n" + raw
    loop.deliver(relayed)
    ((_, disposition, reason),) = loop.poll().handled
    assert disposition == "held" and "seen before with other content" in reason
    assert not loop.home.open_archive().has(hashlib.sha256(relayed).hexdigest())


def _nested(depth: int, leaf: str) -> bytes:
    head = reply(DANA, "x", "<nested.dana@acme.example>").split(b"\n\n", 1)[0].replace(
        b"Content-Type: text/plain; charset=\"utf-8\"\n", b"").replace(b"Content-Transfer-Encoding: 7bit\n", b"")
    body = f"Content-Type: text/plain\n\n{leaf}\n"
    for n in range(depth, 0, -1):
        body = (f'Content-Type: multipart/mixed; boundary="b{n}"\n\n--b{n}\n{body}\n--b{n}--\n')
    return head + b"\n" + body.encode()


def test_a_hundred_nested_parts_are_held_not_crashed(loop: Loop) -> None:
    raw = _nested(100, "Confirmed.")
    before = set(_outbox(loop))
    loop.deliver(raw)
    report = loop.poll()
    ((_, disposition, reason),) = report.handled
    assert disposition == "held" and "could not be read reliably" in reason and "nested too deep" in reason
    with loop.store() as store:
        assert store.confirmations(PLAN_ID, 1) == {}
    assert len(_notices(loop, before)) == 1
    assert loop.folder_of("<nested.dana@acme.example>") == ["Held"]
    # Read again, it is the same message: nothing more happens, nothing is shunted (the fixture checks).
    loop.deliver(raw)
    assert [d for _, d, _ in loop.poll().handled] == ["duplicate"]


def test_fifty_messages_in_a_minute_are_throttled_with_one_notice(loop: Loop) -> None:
    before = set(_outbox(loop))
    for n in range(50):
        loop.deliver(reply(DANA, "Confirmed.", f"<loop.{n}.dana@acme.example>", when=ARRIVAL + timedelta(seconds=n)))
    report = loop.poll()
    dispositions = [d for _, d, _ in report.handled]
    # The hourly limit is 20: the first 20 are read (a confirmation, then the same one again), the rest held unread.
    assert dispositions == ["confirmed"] * 20 + ["held"] * 30
    assert all("throttled" in r and "more than 20 messages" in r for _, d, r in report.handled if d == "held")
    (notice,) = _notices(loop, before)
    assert notice.to == (SELLER,) and notice.data["about"] == "throttled"
    with loop.store() as store:
        assert sorted(store.confirmations(PLAN_ID, 1)) == [DANA]
        assert sum(a.event == "notice.skipped" for a in store.audit_log(PLAN_ID)) == 29
    assert len(loop.mail.messages("Held")) == 30

    # An hour later the sender is heard again.
    loop.clock.now += timedelta(hours=1, minutes=5)
    loop.deliver(reply(DANA, "Please move the pilot to March 8.", "<after.dana@acme.example>", when=loop.clock()))
    assert [d for _, d, _ in loop.poll().handled] == ["applied"]


def test_an_outsider_flooding_tells_the_seller_once_per_kind(loop: Loop) -> None:
    before = set(_outbox(loop))
    for n in range(50):
        loop.deliver(reply("priya.shah@acme.example", "Please move the pilot to March 8.",
                           f"<flood.{n}@acme.example>", when=ARRIVAL + timedelta(seconds=n)))
    report = loop.poll()
    assert [d for _, d, _ in report.handled] == ["held"] * 50
    assert ["not a participant" in r for _, _, r in report.handled] == [True] * 20 + [False] * 30
    notices = _notices(loop, before)
    assert sorted(n.data["about"] for n in notices) == ["outsider", "throttled"]
    with loop.store() as store:
        assert store.current(PLAN_ID).number == 1


def test_one_notice_per_sender_per_kind_per_day(loop: Loop) -> None:
    before = set(_outbox(loop))
    outsider = "priya.shah@acme.example"
    for n, hours in enumerate((0, 1, 5)):
        loop.clock.now = ARRIVAL + timedelta(hours=hours)
        loop.deliver(reply(outsider, f"Comment number {n}: please move the pilot to March 8.",
                           f"<day1.{n}@acme.example>", when=loop.clock()))
        loop.poll()
    assert len(_notices(loop, before)) == 1
    # Another sender, or another kind from the same one, is told about on the same day.
    loop.deliver(reply("lee.wong@acme.example", "Please move the pilot to March 8.", "<day1.lee@acme.example>",
                       when=loop.clock()))
    loop.deliver(reply(outsider, "Confirmed.", "<day1.noauth@acme.example>", auth=None, when=loop.clock()))
    loop.poll()
    notices = _notices(loop, before)
    assert sorted((n.data["reply"]["from"], n.data["about"]) for n in notices) == [
        ("lee.wong@acme.example", "outsider"), (outsider, "outsider"),
    ]  # the unauthenticated one is from an outsider too: the same kind, already told
    # A day later, again.
    loop.clock.now = ARRIVAL + timedelta(days=1, hours=1)
    loop.deliver(reply(outsider, "Still waiting on the pilot date.", "<day2@acme.example>", when=loop.clock()))
    loop.poll()
    assert len(_notices(loop, before)) == 3
    with loop.store() as store:
        held = [m for m in store.messages(PLAN_ID) if m.disposition == "held"]
        assert len(held) == 6  # every one of them waits in Held for the seller, told or not


def test_a_full_rescan_after_uidvalidity_changed_applies_nothing_twice(loop: Loop) -> None:
    """The server renumbered the mailbox (UIDVALIDITY changed): every message is offered again as new."""
    messages = [
        reply(DANA, "Please move the pilot to March 8.", "<u1.dana@acme.example>"),
        reply("kim.osei@acme.example", "Thanks, I will read it this week.", "<u2.kim@acme.example>"),
        reply("priya.shah@acme.example", "Confirmed.", "<u3.priya@acme.example>"),
        reply("news@vendor.example", "Our January webinar.", "<u4.news@vendor.example>", in_reply_to=None,
              subject="Webinar next week"),
        reply(DANA, "I am out until Monday.", "<u5.dana@acme.example>").replace(
            b"MIME-Version", b"Auto-Submitted: auto-replied\nMIME-Version"),
    ]
    for raw in messages:
        loop.deliver(raw)
    first = [d for _, d, _ in loop.poll().handled]
    assert first == ["applied", "noted", "held", "unrelated", "ignored"]
    with loop.store() as store:
        outbox, audit = len(store.outbox_entries(PLAN_ID)), len(store.audit_log(PLAN_ID))
    folders = {_header(raw, "Message-ID"): loop.folder_of(_header(raw, "Message-ID")) for raw in messages}

    for raw in messages:  # every message again, under new keys
        loop.deliver(raw)
    loop.clock.now += timedelta(minutes=5)
    again = loop.poll()
    assert [d for _, d, _ in again.handled] == ["duplicate"] * 5
    assert again.sent == [] and again.drafted == []
    with loop.store() as store:
        assert store.current(PLAN_ID).number == 2
        assert len(store.outbox_entries(PLAN_ID)) == outbox
        assert len(store.audit_log(PLAN_ID)) == audit  # nothing about a plan happened
    for message_id, where in folders.items():
        assert loop.folder_of(message_id) == where  # each copy filed where the first went
    assert len(loop.mail.messages("Inbox")) == 2  # the newsletter, twice: the seller's, left alone


class _TimesOut:
    """The Maildir, but the first send of one email times out: after the server took it (`delivered`), or before."""

    def __init__(self, inner: MaildirMailbox, message_id: str, *, delivered: bool) -> None:
        self.inner = inner
        self.message_id = message_id
        self.delivered = delivered
        self.sends: list[str] = []
        self.looked: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send(self, message: EmailMessage) -> None:
        self.sends.append(str(message["Message-ID"]))
        if self.sends.count(self.message_id) == 1 and self.sends[-1] == self.message_id:
            if self.delivered:
                self.inner.send(message)
            raise MailboxError("timed out waiting for the server's answer", transient=True)
        self.inner.send(message)

    def was_sent(self, message_id: str) -> bool:
        self.looked.append(message_id)
        return self.inner.was_sent(message_id)


@pytest.mark.parametrize("delivered", [True, False], ids=["sent-then-timeout", "timeout-before-send"])
def test_a_send_that_times_out_is_retried_under_the_same_message_id(loop: Loop, delivered: bool) -> None:
    loop.home.settings_path.write_text(SETTINGS.replace('changes = "review"', 'changes = "auto"'))
    settings = settings_of(loop.home)
    v2 = "<plan.acme-northwind-2027.v2@northwind.example>"
    mailbox = _TimesOut(MaildirMailbox(loop.home.mail_dir), v2, delivered=delivered)
    loop.deliver(reply(DANA, "Please move the pilot to March 8.", "<t1.dana@acme.example>"))
    with loop.store() as store:
        watcher = Service(Parts(store=store, archive=loop.home.open_archive(), mailbox=mailbox,
                                spool=Spool(loop.home.spool_dir), settings=settings, clock=loop.clock))
        report = watcher.poll()
        assert [d for _, d, _ in report.handled] == ["applied"]
        assert any("timed out" in e for e in report.errors)
        assert store.outbox_entry(v2).state == "sending"  # unknown: it may or may not have gone

        loop.clock.now += timedelta(minutes=5)
        retry = watcher.poll()
        assert retry.errors == []
        assert store.outbox_entry(v2).state == "sent"
    assert v2 in mailbox.looked  # Sent was checked before anything was sent again
    # A second send only when the first did not go (the other email of the poll, the seller's ask, went once).
    assert sorted(mailbox.sends).count(v2) == (1 if delivered else 2) and len(mailbox.sends) == (2 if delivered else 3)
    sent = [m for m in loop.emails("Sent") if m == v2]
    assert sent == [v2]  # once, under the same Message-ID
    assert len(list((loop.root / "outbox").glob("plan.acme-northwind-2027.v2@*.eml"))) == 1


class _Racing(Parts):
    """A watcher's parts that let another watcher finish a message at the worst moment: after reading and
    deciding (the receive steps), before committing (act.commit)."""

    meanwhile: Any = None

    def interleave(self) -> None:
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()


@pytest.fixture(autouse=True)
def _racing_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    real = act.commit

    def commit(parts: Parts, msg: Any, effects: Any) -> Any:
        if isinstance(parts, _Racing):
            parts.interleave()
        return real(parts, msg, effects)

    monkeypatch.setattr(runner.act, "commit", commit)


def _two_watchers(loop: Loop) -> tuple[_Racing, Parts, list[Store]]:
    settings = settings_of(loop.home)
    stores = [loop.store(), loop.store()]
    a, b = (cls(store=s, archive=loop.home.open_archive(), mailbox=MaildirMailbox(loop.home.mail_dir),
                spool=Spool(loop.home.spool_dir), settings=settings, clock=loop.clock)
            for cls, s in zip((_Racing, Parts), stores, strict=True))
    return a, b, stores  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("first", "second", "outcomes", "versions"),
    [
        # Dana confirms version 1 while Raj's change makes version 2: her confirmation lost, held.
        (("dana", "Confirmed."), ("raj", "Please move the legal review to March 24."), ("held", "applied"), 2),
        # Two changes to different steps: both made, one after the other (versions 2 and 3).
        (("dana", "Please move the pilot to March 8."), ("raj", "Please move the legal review to March 24."),
         ("applied", "applied"), 3),
        # Two changes to the same step: the one read against the old version is held.
        (("dana", "Please move the pilot to March 8."), ("raj", "Please move the pilot to March 15."),
         ("held", "applied"), 2),
    ],
    ids=["confirm-vs-change", "change-vs-change", "same-step"],
)
def test_two_answers_at_once_are_serialized_by_version(
    loop: Loop, first: tuple[str, str], second: tuple[str, str], outcomes: tuple[str, str], versions: int
) -> None:
    people = {"dana": DANA, "raj": RAJ}
    a, b, stores = _two_watchers(loop)
    raws = [reply(people[who], text, f"<race.{who}@acme.example>") for who, text in (first, second)]
    try:
        got: dict[str, str] = {}
        a.meanwhile = lambda: got.__setitem__("b", runner.handle(b, raws[1], ARRIVAL).disposition)
        got["a"] = runner.handle(a, raws[0], ARRIVAL).disposition
        assert (got["a"], got["b"]) == outcomes
        numbers = [v.number for v in stores[0].versions(PLAN_ID)]
        assert numbers == list(range(1, versions + 1))  # no number twice, none skipped
        assert stores[0].confirmations(PLAN_ID, versions) == {}
        if outcomes[0] == "held":
            record = stores[0].message("race.dana@acme.example")
            assert record.disposition == "held" and "version 2" in record.reason
    finally:
        for store in stores:
            store.close()
