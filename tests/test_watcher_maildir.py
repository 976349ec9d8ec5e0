"""The whole loop on the embedded Maildir with a simulated clock, and `status` checked against it after every step.

The plan is the shipped example: Dana and Raj confirm, Kim is in Cc; Jordan sells. Version 1 is rendered once per
module and every test starts from a copy of that home.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.home import Home, init_home
from pipeline.loop.deliver import render_and_archive
from pipeline.loop.service import PollReport, Service, queue_plan
from pipeline.loop.status import plan_status
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.spool import Spool
from pipeline.store import Store
from tests.loop_support import (
    DANA,
    KIM,
    PLAN_ID,
    RAJ,
    SELLER,
    START,
    SUBJECT,
    SUBJECT_V1,
    SUBJECT_V2,
    V1,
    V2,
    V3,
    Clock,
    addresses,
    attachments,
    example_plan,
    parse,
    pdf_text,
    reply,
    settings_toml,
    text_body,
)

LATER_PILOT = "Please move the pilot to March 8."
ASK_LATER = "Raj, could we get 30 minutes with you before the new date?"
WAITING_BOTH = f"waiting on {DANA}, {RAJ}"


class Loop:
    """A home, its Maildir and a clock; every poll opens the watcher as `mutualplan watch` does."""

    def __init__(self, root: Path, clock: Clock) -> None:
        self.root = root
        self.home = Home(root)
        self.clock = clock
        self.mail = MaildirMailbox(self.home.mail_dir)

    def set_policy(self, changes: str) -> None:
        self.home.settings_path.write_text(settings_toml(changes), encoding="utf-8")

    def deliver(self, raw: bytes) -> str:
        return self.mail.deliver(raw)

    def poll(self, advance_minutes: float = 5) -> PollReport:
        self.clock.advance(minutes=advance_minutes)
        with Service.open(self.home, self.clock) as watcher:
            report = watcher.poll()
        assert report.errors == [], report.errors
        return report

    def store(self) -> Store:
        return self.home.open_store()

    def status(self) -> dict:
        """plan_status and `mutualplan status --json` must say the same."""
        today = self.clock().date()
        with self.store() as store:
            data = plan_status(store, PLAN_ID, today)
        result = CliRunner().invoke(
            main, ["--home", str(self.root), "status", PLAN_ID, "--json", "--today", today.isoformat()]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == data
        return data

    def ids_in(self, folder: str) -> list[str]:
        return [parse(raw)["Message-ID"] for raw in self.mail.messages(folder)]

    def in_folder(self, folder: str, message_id: str) -> list:
        return [parse(raw) for raw in self.mail.messages(folder) if parse(raw)["Message-ID"] == message_id]

    def outbox(self) -> dict[str, object]:
        """The .eml files 'delivered' so far, by Message-ID (one file per Message-ID)."""
        out = {}
        for path in sorted((self.root / "outbox").glob("*.eml")):
            msg = parse(path.read_bytes())
            assert msg["Message-ID"] not in out
            out[msg["Message-ID"]] = msg
        return out

    def versions(self) -> int:
        with self.store() as store:
            return store.current(PLAN_ID).number

    def outcome(self, message_id: str) -> str:
        with self.store() as store:
            record = store.message(message_id.strip("<>"))
        assert record is not None, f"{message_id} was not recorded"
        return record.disposition


def check_status(loop: Loop, *, version: int, summary: str, state: str = "open", waiting: list[str] | None = None,
                 confirmed: list[str] | None = None, held: int = 0) -> dict:
    data = loop.status()
    assert data["version"] == version
    assert data["state"] == state
    assert data["summary"] == summary
    assert data["waiting_on"] == (waiting or [])
    assert data["confirmed"] == (confirmed or [])
    assert len(data["held"]) == held, data["held"]
    return data


# --- homes ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the example plan added as version 1, not sent."""
    root = tmp_path_factory.mktemp("watcher") / "fresh"
    home = init_home(root)
    home.settings_path.write_text(settings_toml("review"), encoding="utf-8")
    with home.open_store() as store:
        store.add_version(example_plan(), author=SELLER, reason="created", created=START)
    return root


@pytest.fixture(scope="module")
def sent_home(fresh_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fresh home after version 1 went out (its letter rendered once for the whole module)."""
    root = tmp_path_factory.mktemp("watcher") / "sent"
    shutil.copytree(fresh_home, root)
    home, clock = Home(root), Clock()
    with Service.open(home, clock) as watcher:
        queue_plan(watcher.store, PLAN_ID, at=clock())
        assert watcher.poll().sent == [V1]
    return root


def copy_home(source: Path, tmp_path: Path, changes: str = "review") -> Loop:
    root = tmp_path / "home"
    shutil.copytree(source, root)
    loop = Loop(root, Clock())
    loop.clock.advance(hours=1)
    loop.set_policy(changes)
    return loop


def _no_leftovers(loop: Loop) -> None:
    queue = loop.home.spool_dir / "queue"
    assert not any(queue.iterdir()), "messages left in the spool"
    assert not any((loop.home.spool_dir / "shunt").iterdir()), "messages shunted"


@pytest.fixture
def review(sent_home: Path, tmp_path: Path) -> Iterator[Loop]:
    loop = copy_home(sent_home, tmp_path, "review")
    yield loop
    _no_leftovers(loop)


@pytest.fixture
def auto(sent_home: Path, tmp_path: Path) -> Iterator[Loop]:
    loop = copy_home(sent_home, tmp_path, "auto")
    yield loop
    _no_leftovers(loop)


def dana_asks_for_a_later_pilot(loop: Loop, message_id: str = "<r1.dana@acme.example>") -> bytes:
    loop.clock.advance(days=1)
    raw = reply(DANA, f"Hi Jordan,\n\n{LATER_PILOT}\n\nDana", message_id=message_id, when=loop.clock())
    loop.deliver(raw)
    return raw


def confirm(loop: Loop, sender: str, message_id: str, version_id: str = V1, subject: str = SUBJECT_V1,
            references: list[str] | None = None) -> None:
    loop.clock.advance(hours=2)
    loop.deliver(reply(sender, "Confirmed.", message_id=message_id, when=loop.clock(), in_reply_to=version_id,
                       references=references, subject=subject))


# --- version 1 --------------------------------------------------------------------------------------


def test_version_one_goes_to_the_confirmers_with_the_others_in_cc(fresh_home: Path, tmp_path: Path) -> None:
    loop = copy_home(fresh_home, tmp_path)
    check_status(loop, version=1, summary=f"version 1 not sent yet (`mutualplan send {PLAN_ID}`)")

    with Service.open(loop.home, loop.clock) as watcher:
        entry = queue_plan(watcher.store, PLAN_ID, at=loop.clock())
    assert entry.message_id == V1
    check_status(loop, version=1, summary="version 1 is queued to send")

    report = loop.poll()
    assert report.sent == [V1] and report.handled == []
    check_status(loop, version=1, summary=WAITING_BOTH, waiting=[DANA, RAJ])

    (msg,) = loop.outbox().values()
    assert msg["Message-ID"] == V1
    assert addresses(msg, "From") == [SELLER]
    assert addresses(msg, "To") == [DANA, RAJ]
    assert addresses(msg, "Cc") == [KIM]
    assert msg["Subject"] == SUBJECT
    assert msg["In-Reply-To"] is None
    files = attachments(msg)
    assert sorted(files) == [f"Mutual Plan {PLAN_ID} v1.ics", f"Mutual Plan {PLAN_ID} v1.pdf"]
    kind, pdf = files[f"Mutual Plan {PLAN_ID} v1.pdf"]
    assert kind == "application/pdf"
    assert "version 1" in pdf_text(pdf) and "Mon 1 Mar 2027" in pdf_text(pdf)
    kind, ics = files[f"Mutual Plan {PLAN_ID} v1.ics"]
    assert kind == "text/calendar" and b"BEGIN:VCALENDAR" in ics
    assert loop.ids_in("Sent") == [V1]

    # Sending again sends nothing: the Message-ID is fixed per plan and version, and it is in Sent.
    result = CliRunner().invoke(main, ["--home", str(loop.root), "send", PLAN_ID, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sent"] == []
    assert loop.ids_in("Sent") == [V1] and list(loop.outbox()) == [V1]


def test_the_same_entry_renders_the_same_bytes(sent_home: Path, tmp_path: Path) -> None:
    loop = copy_home(sent_home, tmp_path)
    sent = (loop.root / "outbox").glob("*.eml").__next__().read_bytes()
    loop.clock.advance(days=3)  # rendering later changes nothing: every time in it was fixed when it was queued
    with Service.open(loop.home, loop.clock) as watcher:
        again = render_and_archive(watcher.parts, watcher.store.outbox_entry(V1))
    assert parse(sent).as_bytes() == parse(bytes(again)).as_bytes()


# --- change requests --------------------------------------------------------------------------------


def test_review_the_next_version_waits_in_drafts_until_the_seller_sends_it(review: Loop) -> None:
    dana_asks_for_a_later_pilot(review)
    report = review.poll()
    assert [(d, r.split(":")[0]) for _, d, r in report.handled] == [("applied", "made version 2")]
    assert report.drafted == [V2] and report.sent == []
    check_status(review, version=2,
                 summary="version 2 waits on the seller (in Drafts: send it or `mutualplan approve`)")

    (draft,) = review.in_folder("Drafts", V2)
    assert draft["In-Reply-To"] == "<r1.dana@acme.example>"
    assert draft["References"].split() == [V1, "<r1.dana@acme.example>"]
    assert draft["Auto-Submitted"] is None  # the seller sends it, not a robot
    assert addresses(draft, "To") == [DANA, RAJ] and addresses(draft, "Cc") == [KIM]
    body = text_body(draft)
    assert ASK_LATER in body  # written into the draft for the seller to keep or delete
    assert "Moved: M3  Pilot on Q4 data, from Mon 1 Mar 2027 to Mon 8 Mar 2027" in body
    letter = pdf_text(attachments(draft)[f"Mutual Plan {PLAN_ID} v2.pdf"][1])
    # The letter opens with its redline: what changed since version 1, the old date beside the new.
    assert "Changes since version 1" in letter
    assert "Moved M3 Pilot on Q4 data Mon 1 Mar 2027 Mon 8 Mar 2027" in " ".join(letter.split())
    assert V2 not in review.outbox() and review.ids_in("Sent") == [V1]
    # Nothing went to the seller separately: the ask is in the draft.
    assert list(review.outbox()) == [V1]
    assert review.ids_in("Processed") == ["<r1.dana@acme.example>"] and review.ids_in("Inbox") == []

    # A poll while the draft waits changes nothing.
    assert review.poll().sent == []
    check_status(review, version=2,
                 summary="version 2 waits on the seller (in Drafts: send it or `mutualplan approve`)")

    # The seller sends it from their own mail client: the draft leaves Drafts for Sent.
    drafts, sent = review.home.mail_dir / ".Drafts" / "cur", review.home.mail_dir / ".Sent" / "cur"
    (name,) = os.listdir(drafts)
    os.rename(drafts / name, sent / (name.split(":")[0] + ":2,S"))
    report = review.poll()
    assert report.sent == [V2]
    check_status(review, version=2, summary=WAITING_BOTH, waiting=[DANA, RAJ])
    assert review.ids_in("Sent") == [V1, V2]
    assert review.poll().sent == []


def test_review_approve_sends_the_draft_once(review: Loop) -> None:
    dana_asks_for_a_later_pilot(review)
    review.poll()
    # The seller deletes the suggested ask from the draft, as their mail client would save it.
    drafts = review.home.mail_dir / ".Drafts" / "cur"
    (name,) = os.listdir(drafts)
    draft = parse((drafts / name).read_bytes())
    plain = draft.get_body(("plain",))
    plain.set_content(plain.get_content().replace(ASK_LATER, ""), cte="quoted-printable")
    (drafts / name).write_bytes(draft.as_bytes())

    result = CliRunner().invoke(main, ["--home", str(review.root), "approve", PLAN_ID, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"plan_id": PLAN_ID, "sent": [V2]}
    check_status(review, version=2, summary=WAITING_BOTH, waiting=[DANA, RAJ])
    sent = review.outbox()[V2]
    assert ASK_LATER not in text_body(sent) and "Moved: M3" in text_body(sent)  # the reviewed draft went
    assert sent["In-Reply-To"] == "<r1.dana@acme.example>"
    assert addresses(sent, "To") == [DANA, RAJ]
    assert review.ids_in("Sent") == [V1, V2]
    # The draft does not stay behind to be sent a second time from the mail client.
    assert review.ids_in("Drafts") == []
    again = CliRunner().invoke(main, ["--home", str(review.root), "approve", PLAN_ID, "--json"])
    assert json.loads(again.output)["sent"] == []
    assert review.poll().sent == [] and review.ids_in("Sent") == [V1, V2]


def test_auto_sends_the_next_version_in_the_thread_and_the_ask_to_the_seller_alone(auto: Loop) -> None:
    dana_asks_for_a_later_pilot(auto)
    report = auto.poll()
    assert report.drafted == []
    check_status(auto, version=2, summary=WAITING_BOTH, waiting=[DANA, RAJ])
    outbox = auto.outbox()
    update = outbox[V2]
    assert update["In-Reply-To"] == "<r1.dana@acme.example>"
    assert update["References"].split() == [V1, "<r1.dana@acme.example>"]
    assert update["Subject"] == f"Re: {SUBJECT}"  # one subject for the thread, whatever the reply's
    assert update["Auto-Submitted"] == "auto-generated"
    assert addresses(update, "To") == [DANA, RAJ] and addresses(update, "Cc") == [KIM]
    assert ASK_LATER not in text_body(update)  # never asked of the prospect without the seller
    pdf = pdf_text(attachments(update)[f"Mutual Plan {PLAN_ID} v2.pdf"][1])
    assert "Mon 8 Mar 2027" in pdf and "version 2" in pdf

    (ask_id,) = [m for m in outbox if m not in (V1, V2)]
    ask = outbox[ask_id]
    assert addresses(ask, "To") == [SELLER] and addresses(ask, "Cc") == []
    assert ASK_LATER in text_body(ask)
    assert "Nothing in the plan changed" not in text_body(ask)  # it did: version 2 went out
    assert sorted(auto.ids_in("Sent")) == sorted([V1, V2, ask_id])
    assert auto.ids_in("Drafts") == []


def test_unresolved_sentences_beside_a_change_go_to_the_seller_not_the_prospect(auto: Loop) -> None:
    auto.clock.advance(days=1)
    question = "Also, could the demo happen sometime sooner?"
    auto.deliver(reply(DANA, f"Hi Jordan,\n\n{LATER_PILOT} {question}\n\nDana", message_id="<r1.dana@acme.example>",
                       when=auto.clock()))
    auto.poll()
    check_status(auto, version=2, summary=WAITING_BOTH, waiting=[DANA, RAJ])
    outbox = auto.outbox()
    assert question not in text_body(outbox[V2])
    # Listed for the seller once, in the notice about them (the ask's notice only quotes what Dana wrote).
    notices = [m for i, m in outbox.items() if i not in (V1, V2) and f"- {question}" in text_body(m)]
    assert len(notices) == 1 and addresses(notices[0], "To") == [SELLER]
    assert notices[0]["Subject"] == f"[Mutual Plan {PLAN_ID}] Version 2: Dana Whitfield ({DANA})"
    assert "Version 2 was made from it" in text_body(notices[0])


# --- confirmations ----------------------------------------------------------------------------------


def test_each_confirming_contact_confirms_and_the_plan_is_agreed(review: Loop) -> None:
    confirm(review, DANA, "<c1.dana@acme.example>")
    report = review.poll()
    assert [d for _, d, _ in report.handled] == ["confirmed"]
    check_status(review, version=1, summary=f"waiting on {RAJ}", waiting=[RAJ], confirmed=[DANA])
    assert list(review.outbox()) == [V1]  # nothing to anyone yet

    # Kim does not confirm: her "Confirmed." is noted and the seller told, the plan still waits on Raj.
    confirm(review, KIM, "<c1.kim@acme.example>")
    review.poll()
    assert review.outcome("<c1.kim@acme.example>") == "noted"
    check_status(review, version=1, summary=f"waiting on {RAJ}", waiting=[RAJ], confirmed=[DANA])

    confirm(review, RAJ, "<c1.raj@acme.example>")
    report = review.poll()
    assert [d for _, d, _ in report.handled] == ["agreed"]
    check_status(review, version=1, state="agreed", summary="mutually agreed on version 1", confirmed=[DANA, RAJ])
    agreed_id = "<plan.acme-northwind-2027.v1.agreed@northwind.example>"
    assert agreed_id in report.sent
    agreed = review.outbox()[agreed_id]
    assert addresses(agreed, "To") == [DANA, RAJ, KIM] and addresses(agreed, "Cc") == [SELLER]
    assert agreed["In-Reply-To"] == "<c1.raj@acme.example>"
    assert agreed["Subject"] == f"Re: {SUBJECT}"
    final = attachments(agreed)[f"Mutual Plan {PLAN_ID} v1.pdf"][1]
    first = attachments(review.outbox()[V1])[f"Mutual Plan {PLAN_ID} v1.pdf"][1]
    assert final == first  # the letter they agreed to, byte for byte

    # After agreement a change request does not change the plan behind everyone's back: it waits for the seller.
    review.clock.advance(days=1)
    review.deliver(reply(DANA, "Please move the kick-off to April 14.", message_id="<r2.dana@acme.example>",
                         when=review.clock()))
    review.poll()
    assert review.outcome("<r2.dana@acme.example>") == "held"
    check_status(review, version=1, state="agreed", summary="mutually agreed on version 1",
                 confirmed=[DANA, RAJ], held=1)
    assert review.versions() == 1


def test_a_confirmation_of_an_older_version_does_not_confirm_the_current(auto: Loop) -> None:
    dana_asks_for_a_later_pilot(auto)
    auto.poll()
    before = set(auto.outbox())
    confirm(auto, RAJ, "<c1.raj@acme.example>", version_id=V1)
    auto.poll()
    assert auto.outcome("<c1.raj@acme.example>") == "noted"
    check_status(auto, version=2, summary=WAITING_BOTH, waiting=[DANA, RAJ])
    (notice_id,) = set(auto.outbox()) - before
    notice = auto.outbox()[notice_id]
    assert addresses(notice, "To") == [SELLER]
    assert "version 1" in text_body(notice) and "version 2 is current" in text_body(notice)

    # The same words to version 2 count.
    confirm(auto, RAJ, "<c2.raj@acme.example>", version_id=V2, subject=SUBJECT_V2)
    auto.poll()
    check_status(auto, version=2, summary=f"waiting on {DANA}", waiting=[DANA], confirmed=[RAJ])


def test_a_change_to_an_older_version_applies_only_where_nothing_changed_since(auto: Loop) -> None:
    dana_asks_for_a_later_pilot(auto)  # version 2: M3 to 8 Mar (and M4, three days after it)
    auto.poll()

    # Raj answers version 1 about the legal review (M5), which version 2 left alone: it applies to version 2.
    auto.clock.advance(hours=3)
    auto.deliver(reply(RAJ, "Please move the legal review to March 24.", message_id="<r1.raj@acme.example>",
                       when=auto.clock(), in_reply_to=V1))
    auto.poll()
    assert auto.outcome("<r1.raj@acme.example>") == "applied"
    check_status(auto, version=3, summary=WAITING_BOTH, waiting=[DANA, RAJ])
    with auto.store() as store:
        milestones = {m.id: m.due for m in store.current(PLAN_ID).plan.milestones}
    assert milestones["M5"] == "2027-03-24"
    assert milestones["M3"] == "2027-03-08"  # version 2's change is kept
    v3 = auto.outbox()[V3]
    assert v3["In-Reply-To"] == "<r1.raj@acme.example>"

    # Dana answers version 1 about the pilot, which has moved since: held for the seller, nothing changes.
    before = set(auto.outbox())
    auto.clock.advance(hours=1)
    auto.deliver(reply(DANA, "Please move the pilot to March 15.", message_id="<r2.dana@acme.example>",
                       when=auto.clock(), in_reply_to=V1))
    auto.poll()
    assert auto.outcome("<r2.dana@acme.example>") == "held"
    data = check_status(auto, version=3, summary=WAITING_BOTH, waiting=[DANA, RAJ], held=1)
    assert "M3 has changed" in data["held"][0]["reason"]
    (notice_id,) = set(auto.outbox()) - before
    assert addresses(auto.outbox()[notice_id], "To") == [SELLER]
    assert auto.ids_in("Held") == ["<r2.dana@acme.example>"]


# --- nothing changes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "body", "disposition", "folder", "state", "summary"),
    [
        (DANA, "Thanks Jordan, I will go through this with the team next week.", "noted", "Processed", "open",
         WAITING_BOTH),
        (DANA, "Could we push the pilot back a bit?", "noted", "Processed", "open", WAITING_BOTH),
        ("pat.doe@acme.example", LATER_PILOT, "held", "Held", "open", WAITING_BOTH),
        (RAJ, "We have decided not to move forward this year; budget was reallocated.", "declined", "Processed",
         "declined", "declined"),
    ],
    ids=["comment", "unresolved", "unauthorized", "decline"],
)
def test_what_changes_nothing_is_told_to_the_seller(
    review: Loop, sender: str, body: str, disposition: str, folder: str, state: str, summary: str
) -> None:
    review.clock.advance(days=1)
    review.deliver(reply(sender, body, message_id="<m1@acme.example>", when=review.clock()))
    review.poll()
    assert review.outcome("<m1@acme.example>") == disposition
    check_status(review, version=1, state=state, summary=summary,
                 waiting=[DANA, RAJ] if state == "open" else [], held=1 if disposition == "held" else 0)
    assert review.versions() == 1
    outbox = review.outbox()
    (notice_id,) = set(outbox) - {V1}
    notice = outbox[notice_id]
    assert addresses(notice, "To") == [SELLER] and addresses(notice, "Cc") == []
    assert sender in text_body(notice)
    assert body.split(".")[0].split(",")[0] in " ".join(text_body(notice).split())
    assert review.ids_in(folder) == ["<m1@acme.example>"] and review.ids_in("Inbox") == []
    assert review.ids_in("Drafts") == []


def _bounce(when: datetime) -> bytes:
    raw = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>\n"
        f"To: {SELLER}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}\n"
        "Message-ID: <bounce.1@mx.acme.example>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\n\n'
        "--b1\nContent-Type: text/plain\n\nI'm sorry to have to inform you that your message could not be "
        "delivered to pat@acme.example.\n\n"
        "--b1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.acme.example\n\n"
        "Final-Recipient: rfc822; pat@acme.example\nAction: failed\nStatus: 5.1.1\n\n"
        f"--b1\nContent-Type: text/rfc822-headers\n\nMessage-ID: {V1}\nSubject: {SUBJECT_V1}\n\n--b1--\n"
    )
    return raw.encode()


def test_automatic_mail_is_recorded_and_never_answered(review: Loop) -> None:
    review.clock.advance(hours=2)
    when = review.clock()
    own = (review.root / "outbox").glob("*.eml").__next__().read_bytes()  # our version 1, Bcc'd back to us
    messages = {
        "<ooo.dana@acme.example>": reply(
            DANA, "I am out of the office until Monday 18 January.", message_id="<ooo.dana@acme.example>",
            when=when, subject=f"Automatic reply: {SUBJECT_V1}", in_reply_to=V1,
            headers={"Auto-Submitted": "auto-replied"}, re=False,
        ),
        "<bounce.1@mx.acme.example>": _bounce(when),
        V1: own,
    }
    for raw in messages.values():
        review.deliver(raw)
    report = review.poll()
    assert sorted(d for _, d, _ in report.handled) == ["ignored"] * 3
    assert report.sent == [] and report.drafted == []
    for message_id in messages:
        assert review.outcome(message_id) == "ignored"
    assert list(review.outbox()) == [V1]
    # Our own mail is the seller's to read (a notice, their copy of a plan email): it stays in the Inbox.
    assert review.ids_in("Inbox") == [V1]
    assert sorted(review.ids_in("Processed")) == ["<bounce.1@mx.acme.example>", "<ooo.dana@acme.example>"]
    check_status(review, version=1, summary=WAITING_BOTH, waiting=[DANA, RAJ])


# --- exactly once -----------------------------------------------------------------------------------


def test_the_same_message_delivered_twice_has_one_effect(review: Loop) -> None:
    raw = dana_asks_for_a_later_pilot(review)
    review.deliver(raw)  # the server delivered it twice
    report = review.poll()
    assert sorted(d for _, d, _ in report.handled) == ["applied", "duplicate"]
    review.deliver(raw)  # and once more, a day later
    review.clock.advance(days=1)
    report = review.poll()
    assert [d for _, d, _ in report.handled] == ["duplicate"]
    assert review.versions() == 2
    assert len(review.in_folder("Drafts", V2)) == 1
    with review.store() as store:
        assert [e.message_id for e in store.outbox_entries(PLAN_ID)] == [V1, V2]
    check_status(review, version=2,
                 summary="version 2 waits on the seller (in Drafts: send it or `mutualplan approve`)")
    assert review.ids_in("Inbox") == []
    assert review.ids_in("Processed") == ["<r1.dana@acme.example>"] * 3

    review.poll()
    CliRunner().invoke(main, ["--home", str(review.root), "approve", PLAN_ID])
    for _ in range(2):
        confirm(review, DANA, "<c2.dana@acme.example>", version_id=V2, subject=SUBJECT_V2)
    review.poll()
    with review.store() as store:
        assert store.confirmations(PLAN_ID, 2).keys() == {DANA}
    check_status(review, version=2, summary=f"waiting on {RAJ}", waiting=[RAJ], confirmed=[DANA])


def test_mail_about_no_plan_stays_in_the_inbox_untouched(review: Loop) -> None:
    review.clock.advance(hours=1)
    newsletter = reply("news@vendor.example", "Our January webinar: forecasting in 30 minutes.",
                       message_id="<news.1@vendor.example>", when=review.clock(), in_reply_to=None,
                       subject="Webinar next week")
    # A thread of someone else's, and a list that delivers twice.
    other = reply(DANA, "Lunch on Friday?", message_id="<lunch@acme.example>", when=review.clock(),
                  in_reply_to="<older@northwind.example>", subject="Lunch")
    for raw in (newsletter, other, newsletter):
        review.deliver(raw)
    report = review.poll()
    assert sorted(d for _, d, _ in report.handled) == ["duplicate", "unrelated", "unrelated"]
    inbox = sorted(review.mail.messages("Inbox"))
    assert inbox == sorted([newsletter, other, newsletter])  # byte for byte
    for sub in ("new", "cur"):
        for name in os.listdir(review.home.mail_dir / sub):
            assert "S" not in name.partition(":2,")[2]  # still unread
    assert review.ids_in("Processed") == [] and review.ids_in("Held") == []
    assert list(review.outbox()) == [V1]
    assert review.outcome("<news.1@vendor.example>") == "unrelated"
    # Not fetched again.
    assert review.poll().fetched == 0
    check_status(review, version=1, summary=WAITING_BOTH, waiting=[DANA, RAJ])


def test_status_without_a_plan_id_lists_every_plan(review: Loop) -> None:
    result = CliRunner().invoke(main, ["--home", str(review.root), "status", "--json", "--today", "2027-01-11"])
    assert result.exit_code == 0, result.output
    (only,) = json.loads(result.output)["plans"]
    assert only["plan_id"] == PLAN_ID and only["summary"] == WAITING_BOTH
    assert only["days_to_target"] == 79  # 11 Jan to 31 Mar 2027


def test_status_says_when_an_email_could_not_be_sent_and_send_tries_it_again(fresh_home: Path, tmp_path: Path) -> None:
    from pipeline.mailbox.maildir import _outbox_name

    loop = copy_home(fresh_home, tmp_path)
    blocker = loop.root / "outbox" / _outbox_name(V1)
    blocker.mkdir(parents=True)  # where the email's file goes a folder is in the way: the send fails for good
    with Service.open(loop.home, loop.clock) as watcher:
        queue_plan(watcher.store, PLAN_ID, at=loop.clock())
        report = watcher.poll()
    assert len(report.errors) == 1 and "cannot write" in report.errors[0]
    told = report.sent  # the seller, once, that it failed
    assert len(told) == 1 and told[0].startswith("<mutualplan.not_sent.")
    data = check_status(loop, version=1, summary=(
        f"version 1 could not be sent (`mutualplan watch` shows why); `mutualplan send {PLAN_ID}` tries again"))
    assert [e["state"] for e in data["outbox"]] == ["failed"]
    assert loop.poll().sent == []  # not retried behind the seller's back

    blocker.rmdir()
    result = CliRunner().invoke(main, ["--home", str(loop.root), "send", PLAN_ID, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sent"] == [V1]
    check_status(loop, version=1, summary=WAITING_BOTH, waiting=[DANA, RAJ])
    assert sorted(loop.ids_in("Sent")) == sorted([*told, V1])


@pytest.mark.parametrize("sidecar", ["null", '{"attempts": "two", "errors": 7, "key": 7, "received": 5}'])
def test_a_corrupt_spool_sidecar_is_read_as_a_fresh_one(review: Loop, sidecar: str) -> None:
    confirm(review, DANA, "<c1.dana@acme.example>")
    # Fetched into the spool and not acknowledged (a crash), then its sidecar broken.
    fetched = next(iter(review.mail.fetch()))
    spool = Spool(review.home.spool_dir)
    name = spool.enqueue(fetched.raw, key=fetched.key, received=START.isoformat())
    (review.home.spool_dir / "queue" / f"{name}.json").write_text(sidecar)
    report = review.poll()
    # Its key lost, it is not filed; still in the Inbox, it is fetched again, a duplicate, and filed then.
    assert [d for _, d, _ in report.handled] == ["confirmed", "duplicate"] and report.shunted == []
    assert review.ids_in("Processed") == ["<c1.dana@acme.example>"] and review.ids_in("Inbox") == []
    assert review.poll().handled == []
    check_status(review, version=1, summary=f"waiting on {RAJ}", waiting=[RAJ], confirmed=[DANA])
