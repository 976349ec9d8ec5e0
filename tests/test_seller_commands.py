"""The seller's own commands (confirm on a call, reopen, release, preview) and the suggested ask's wording."""

from __future__ import annotations

import json
import shutil
from contextlib import AbstractContextManager
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pipeline.cli import main
from pipeline.home import Home, init_home
from pipeline.loop import policy
from pipeline.loop.runner import handle
from pipeline.loop.service import PollReport, Service, queue_plan
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.plan.model import Change
from pipeline.store import MessageRecord
from tests.loop_support import (
    DANA,
    KIM,
    PLAN_ID,
    RAJ,
    SELLER,
    START,
    V1,
    Clock,
    addresses,
    attachments,
    example_plan,
    parse,
    reply,
    settings_toml,
    text_body,
)

LATER_PILOT = Change(op="move", milestone="M3", due="2027-03-08")  # the pilot is on Mon 1 Mar 2027
DROP_REFERENCE = Change(op="remove", milestone="M4")


# --- the suggested ask ------------------------------------------------------------------------------


def test_the_ask_never_asks_a_recipient_for_time_with_themselves() -> None:
    plan = example_plan()  # the decision-maker is Raj Patel, who gets the follow-up with everyone else
    (ask,) = policy.suggested_asks(plan, (LATER_PILOT,))
    assert ask == "Raj, could we get 30 minutes with you before the new date?"
    # Sent to people who do not include him, it names him.
    (ask,) = policy.suggested_asks(plan, (LATER_PILOT,), to=(DANA, KIM))
    assert ask == "Could we get 30 minutes with Raj Patel before the new date?"


def test_an_ask_to_the_new_owner_addresses_them() -> None:
    plan = example_plan()
    (ask,) = policy.suggested_asks(plan, (Change(op="reassign", milestone="M5", owner="Dana Whitfield"),))
    assert ask == "Dana, could you confirm the new date for this step?"
    (ask,) = policy.suggested_asks(plan, (Change(op="reassign", milestone="M5", owner="Dana Whitfield"),), to=(KIM,))
    assert ask == "Could Acme (Dana Whitfield) confirm the new date for this step?"


def test_the_asks_do_not_repeat_the_lead_in_of_the_email() -> None:
    # The follow-up introduces them with "In return, could we ask:": no ask says "In return" again.
    asks = policy.suggested_asks(example_plan(), (LATER_PILOT, DROP_REFERENCE), to=(DANA,))
    assert asks == ["Could we get 30 minutes with Raj Patel before the new date?",
                    "With that step dropped, could legal review of the contract start earlier?"]
    # A seller's own sentence written with a lead-in loses it, and its request keeps its words.
    custom = {"later": "In return for the later date, could we meet {decision_maker} this week?",
              "remove": "In return, could the legal review start earlier?"}
    asks = policy.suggested_asks(example_plan(), (LATER_PILOT, DROP_REFERENCE), custom, to=(DANA,))
    assert asks == ["Could we meet Raj Patel this week?", "Could the legal review start earlier?"]


# --- a home with version 1 sent ---------------------------------------------------------------------


class Loop:
    """A home, its Maildir and a clock; every poll opens the watcher as `mutualplan watch` does."""

    def __init__(self, root: Path, clock: Clock) -> None:
        self.root, self.home, self.clock = root, Home(root), clock
        self.mail = MaildirMailbox(self.home.mail_dir)

    def settings(self, changes: str = "review", **policy: object) -> None:
        extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in policy.items())
        text = settings_toml(changes).replace(f'changes = "{changes}"\n', f'changes = "{changes}"\n{extra}')
        if "trusted_authserv_ids" in policy:  # in place of the helper's own line
            text = text.replace('trusted_authserv_ids = ["mx.northwind.example"]\n', "", 1)
        self.home.settings_path.write_text(text, encoding="utf-8")

    def deliver(self, sender: str, body: str, message_id: str, **kwargs: object) -> None:
        self.clock.advance(hours=1)
        self.mail.deliver(reply(sender, body, message_id=message_id, when=self.clock(), **kwargs))  # type: ignore[arg-type]

    def poll(self) -> PollReport:
        self.clock.advance(minutes=5)
        with Service.open(self.home, self.clock) as watcher:
            report = watcher.poll()
        assert report.errors == [], report.errors
        return report

    def service(self) -> AbstractContextManager[Service]:
        return Service.open(self.home, self.clock)

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--home", str(self.root), *args])

    def record(self, message_id: str) -> MessageRecord:
        with self.home.open_store() as store:
            found = store.message(message_id.strip("<>"))
        assert found is not None, message_id
        return found

    def state(self) -> tuple[str, int]:
        with self.home.open_store() as store:
            return store.plan_state(PLAN_ID), store.current(PLAN_ID).number

    def audit(self, event: str) -> list[dict]:
        with self.home.open_store() as store:
            return [e.detail for e in store.audit_log(PLAN_ID) if e.event == event]

    def outbox(self) -> dict[str, EmailMessage]:
        return {m["Message-ID"]: m for m in (parse(p.read_bytes()) for p in (self.root / "outbox").glob("*.eml"))}

    def drafts(self) -> list[EmailMessage]:
        return [parse(raw) for raw in self.mail.messages("Drafts")]


@pytest.fixture(scope="module")
def sent_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plan's version 1, sent (its letter rendered once for the module)."""
    root = tmp_path_factory.mktemp("seller") / "sent"
    home, clock = init_home(root), Clock()
    home.settings_path.write_text(settings_toml("review"), encoding="utf-8")
    with home.open_store() as store:
        store.add_version(example_plan(), author=SELLER, reason="created", created=START)
    with Service.open(home, clock) as watcher:
        queue_plan(watcher.store, PLAN_ID, at=clock())
        assert watcher.poll().sent == [V1]
    return root


@pytest.fixture
def loop(sent_home: Path, tmp_path: Path) -> Loop:
    shutil.copytree(sent_home, tmp_path / "home")
    made = Loop(tmp_path / "home", Clock())
    made.clock.advance(hours=2)
    return made


AGREED_V1 = "<plan.acme-northwind-2027.v1.agreed@northwind.example>"
ON_THE_CALL = "Raj confirmed version 1 on our call of 12 Jan"


# --- confirm ----------------------------------------------------------------------------------------


def test_a_confirmation_on_a_call_is_the_sellers_word_and_the_last_one_agrees_the_plan(loop: Loop,
                                                                                     tmp_path: Path) -> None:
    loop.deliver(DANA, "Confirmed.", "<c1.dana@acme.example>")
    loop.poll()
    result = loop.cli("confirm", PLAN_ID, "--contact", "Raj.Patel@acme.example", "--note", ON_THE_CALL, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["disposition"], out["state"], out["version"], out["contact"]) == ("agreed", "agreed", 1, RAJ)
    assert out["sent"] == [AGREED_V1]
    # The agreed email as the watcher sends it: to everyone, the seller in Cc, in the thread of version 1.
    agreed = loop.outbox()[AGREED_V1]
    assert addresses(agreed, "To") == [DANA, RAJ, KIM] and addresses(agreed, "Cc") == [SELLER]
    assert agreed["In-Reply-To"] == V1
    # Recorded as the seller's word, not an email: no message id of Raj's, the note in the audit log.
    with loop.home.open_store() as store:
        given = {c.email: c for c in store.confirmation_records(PLAN_ID)}
    assert given[DANA].message_id == "c1.dana@acme.example" and not given[DANA].by_seller
    assert given[RAJ].message_id.startswith("seller:") and given[RAJ].by_seller
    (audited,) = [d for d in loop.audit("confirmed") if d["email"] == RAJ]
    assert audited["note"] == ON_THE_CALL and audited["recorded_by"] == SELLER
    assert audited["message_id"] == given[RAJ].message_id

    history = json.loads(loop.cli("history", PLAN_ID, "--json").output)
    # (The command runs on the real clock, the watcher on the test's: sorted by address, not by time.)
    assert sorted((c["email"], c["how"]) for c in history["confirmations"]) == [
        (DANA, "by email c1.dana@acme.example"),
        (RAJ, f"recorded by the seller on a call: {ON_THE_CALL}"),
    ]
    table = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["--home", str(loop.root), "history", PLAN_ID])
    assert f"recorded by the seller on a call: {ON_THE_CALL}" in table.output
    assert loop.cli("archive", "export", PLAN_ID, "--out", str(tmp_path / "bundle")).exit_code == 0
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["confirmations"] == history["confirmations"]
    assert [c.get("recorded_by") for c in manifest["confirmations"] if c["email"] == RAJ] == [SELLER]
    assert loop.cli("archive", "verify", str(tmp_path / "bundle")).exit_code == 0


def test_a_confirmation_on_a_call_before_the_last_waits_on_the_others(loop: Loop) -> None:
    result = loop.cli("confirm", PLAN_ID, "--contact", DANA, "--note", "on the call")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"Recorded: {DANA} confirmed version 1 of {PLAN_ID} on a call" in text
    assert f"Waiting on {RAJ}." in text
    assert loop.state() == ("open", 1) and list(loop.outbox()) == [V1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--contact", KIM], f"{KIM} is not a confirming contact of {PLAN_ID}"),
        (["--contact", "pat.doe@acme.example"], f"pat.doe@acme.example is not a confirming contact of {PLAN_ID}"),
        (["--contact", DANA, "--version", "2"], f"plan {PLAN_ID} has no version 2"),
        (["--contact", DANA, "--note", "  "], "the note is empty"),
    ],
    ids=["not-a-confirmer", "not-a-contact", "no-such-version", "empty-note"],
)
def test_a_confirmation_that_cannot_count_is_refused(loop: Loop, args: list[str], message: str) -> None:
    full = ["confirm", PLAN_ID, *args] + ([] if "--note" in args else ["--note", "on the call"])
    result = loop.cli(*full)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    with loop.home.open_store() as store:
        assert store.confirmation_records(PLAN_ID) == []


def test_a_confirmation_of_a_version_that_is_not_current_or_given_already_is_refused(loop: Loop,
                                                                                      tmp_path: Path) -> None:
    assert loop.cli("confirm", PLAN_ID, "--contact", DANA, "--note", "call").exit_code == 0
    again = loop.cli("confirm", PLAN_ID, "--contact", DANA, "--note", "call")
    assert again.exit_code == 2 and f"{DANA} confirmed version 1 of {PLAN_ID} already" in again.output
    changes = tmp_path / "changes.json"
    changes.write_text('[{"op": "move", "milestone": "M3", "due": "2027-03-08"}]')
    assert loop.cli("apply", PLAN_ID, str(changes)).exit_code == 0
    old = loop.cli("confirm", PLAN_ID, "--contact", RAJ, "--version", "1", "--note", "call")
    assert old.exit_code == 2
    assert f"version 1 of {PLAN_ID} is not current: version 2 is" in " ".join(old.output.split())
    assert "leave out --version" in old.output
    with loop.home.open_store() as store:
        assert [(c.version, c.email) for c in store.confirmation_records(PLAN_ID)] == [(1, DANA)]


# --- reopen -----------------------------------------------------------------------------------------

DECLINE = "We have decided not to move forward this year; budget was reallocated."


def test_a_declined_plan_is_reopened_and_a_message_held_meanwhile_released(loop: Loop) -> None:
    loop.deliver(RAJ, DECLINE, "<d1.raj@acme.example>")
    loop.poll()
    assert loop.state() == ("declined", 1)
    refused = loop.cli("confirm", PLAN_ID, "--contact", DANA, "--note", "call")
    assert refused.exit_code == 2 and "reopen" in refused.output
    loop.deliver(DANA, "Confirmed.", "<c1.dana@acme.example>")
    loop.poll()
    assert loop.record("<c1.dana@acme.example>").disposition == "held"
    early = loop.cli("release", "<c1.dana@acme.example>")
    assert early.exit_code == 2 and "would be held again: the plan is declined" in " ".join(early.output.split())
    assert "mutualplan reopen" in early.output

    result = loop.cli("reopen", PLAN_ID, "--note", "Raj found the budget", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"plan_id": PLAN_ID, "from": "declined", "state": "open"}
    assert loop.state() == ("open", 1)
    (change,) = [d for d in loop.audit("state changed") if d["to"] == "open"]
    assert change["from"] == "declined" and change["note"] == "Raj found the budget"
    assert change["reopened_by"] == SELLER

    released = loop.cli("release", "c1.dana@acme.example", "--json")
    assert released.exit_code == 0, released.output
    out = json.loads(released.output)
    assert (out["hold"], out["lifted"], out["was"], out["disposition"]) == ("plan state", False, "held", "confirmed")
    assert loop.record("<c1.dana@acme.example>").disposition == "confirmed"

    again = loop.cli("reopen", PLAN_ID)
    assert again.exit_code == 2 and f"plan {PLAN_ID} is open, not declined" in " ".join(again.output.split())


# --- release ----------------------------------------------------------------------------------------

LATER_PILOT_TEXT = "Please move the pilot to March 8."


def test_a_change_to_the_agreed_plan_released_makes_the_next_version_for_the_prospect_to_confirm(loop: Loop) -> None:
    for who, mid in ((DANA, "<c1.dana@acme.example>"), (RAJ, "<c1.raj@acme.example>")):
        loop.deliver(who, "Confirmed.", mid)
    loop.poll()
    assert loop.state() == ("agreed", 1)
    loop.deliver(DANA, LATER_PILOT_TEXT, "<r2.dana@acme.example>")
    loop.poll()
    held = loop.record("<r2.dana@acme.example>")
    assert held.disposition == "held" and "mutually agreed" in (held.reason or "")
    assert f"held <r2.dana@acme.example> from {DANA}" in " ".join(loop.cli("status", PLAN_ID).output.split())

    with loop.service() as service:
        released, report = service.release("<r2.dana@acme.example>")
    assert (released.hold, released.lifted, released.was) == ("agreed", True, "held")
    assert released.outcome.disposition == "applied" and released.outcome.version == 2
    # The agreed plan reopened: version 2 waits on the prospect's confirmation, its follow-up in Drafts.
    assert loop.state() == ("open", 2)
    assert report.drafted == ["<plan.acme-northwind-2027.v2@northwind.example>"]
    (draft,) = loop.drafts()
    assert draft["In-Reply-To"] == "<r2.dana@acme.example>"
    # One record for the message, its hold replaced by what was done, and the release audited.
    record = loop.record("<r2.dana@acme.example>")
    assert (record.disposition, record.raw_sha256) == ("applied", held.raw_sha256)
    (audited,) = loop.audit("message released")
    assert audited["message_id"] == "r2.dana@acme.example" and audited["released_by"] == SELLER
    assert (audited["hold"], audited["was"], audited["disposition"]) == ("agreed", "held", "applied")
    # Released once: a second release is refused, and the watcher never acts on it again.
    again = loop.cli("release", "<r2.dana@acme.example>")
    assert again.exit_code == 2 and "is not held: it was applied" in " ".join(again.output.split())
    assert loop.state() == ("open", 2)


def test_a_throttled_message_released_is_acted_on(loop: Loop) -> None:
    loop.settings(max_messages_per_sender_per_hour=1)
    loop.deliver(DANA, "Thanks, I will read it tonight.", "<m1.dana@acme.example>")
    loop.deliver(DANA, "Confirmed.", "<c1.dana@acme.example>")
    loop.poll()  # both arrive in one poll: the second is over the limit
    assert (loop.record("<c1.dana@acme.example>").reason or "").startswith("throttled:")
    result = loop.cli("release", "<c1.dana@acme.example>")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Released c1.dana@acme.example (throttled: lifted)." in text
    assert f"confirmed: {DANA} confirmed version 1; waiting on {RAJ}" in text
    with loop.home.open_store() as store:
        assert store.confirmations(PLAN_ID, 1).keys() == {DANA}


def test_an_unauthenticated_sender_released_is_acted_on(loop: Loop) -> None:
    loop.settings(trusted_authserv_ids=["mx.northwind.example"])
    loop.deliver(RAJ, "Confirmed.", "<c1.raj@acme.example>", authenticated=False)  # no Authentication-Results
    loop.poll()
    held = loop.record("<c1.raj@acme.example>")
    assert held.disposition == "held" and (held.reason or "").startswith("not authenticated")
    result = loop.cli("release", "<c1.raj@acme.example>", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["hold"], out["lifted"], out["disposition"]) == ("unauthenticated", True, "confirmed")


def test_changes_that_crossed_a_newer_version_released_apply_to_it(loop: Loop) -> None:
    loop.settings("auto")
    loop.deliver(DANA, LATER_PILOT_TEXT, "<r1.dana@acme.example>")  # version 2: M3 on 8 Mar
    loop.poll()
    loop.deliver(RAJ, "Please move the pilot to March 10.", "<r1.raj@acme.example>")  # to version 1
    loop.poll()
    assert (loop.record("<r1.raj@acme.example>").reason or "").startswith("replied to version 1; the changes touch")
    with loop.service() as service:
        released, _ = service.release("r1.raj@acme.example")
        assert released.hold == "conflict" and released.outcome.disposition == "applied"
        current = service.store.current(PLAN_ID)
    assert current.number == 3 and current.plan.milestone("M3").due == "2027-03-10"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("message_id", "message", "hint"),
    [
        ("<nobody@acme.example>", "no message nobody@acme.example was recorded", "mutualplan status"),
        ("<c1.dana@acme.example>", "c1.dana@acme.example is not held: it was confirmed", "only a message"),
        ("<o1.pat@acme.example>", "would be held again: pat.doe@acme.example is not a participant of the plan",
         "add them to the plan's contacts"),
    ],
    ids=["unknown", "not-held", "outsider"],
)
def test_a_message_that_cannot_be_released_is_refused(loop: Loop, message_id: str, message: str, hint: str) -> None:
    loop.deliver(DANA, "Confirmed.", "<c1.dana@acme.example>")
    loop.deliver("pat.doe@acme.example", LATER_PILOT_TEXT, "<o1.pat@acme.example>")
    loop.poll()
    before = loop.record("<o1.pat@acme.example>")
    result = loop.cli("release", message_id)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert message in text and hint in text and "Traceback" not in text
    assert loop.record("<o1.pat@acme.example>") == before and loop.audit("message released") == []


@pytest.mark.parametrize(
    ("reason", "kind", "lift"),
    [
        ("throttled: more than 20 messages from a@b.example within an hour; held unread", "throttled", True),
        ("mx.example reports dmarc=fail for b.example: the From address may be forged", "unauthenticated", True),
        ("a plan email (subject) whose sender is not proven: not authenticated: ...", "unauthenticated", True),
        ("replied to version 1; the changes touch what version 2 changed since: M3 has changed", "conflict", True),
        ("the plan is mutually agreed on version 2; a change to it waits for you", "agreed", True),
        ("crossed with version 3: confirmed version 2, which another reply changed while this one waited",
         "crossed", False),
        ("no single valid sender address", "no sender", False),
        ("the message could not be read reliably (bad charset); nothing was applied", "malformed", False),
        ("the requested changes cannot be applied: M9 does not exist", "cannot apply", False),
        ("Message-ID <x@y> was seen before with other content (another body or sender)", "altered copy", False),
        ("refused unread: 30,000,000 bytes is over the limit of 26,214,400 (max_message_mb)", "too large", False),
        ("a plan email (subject) that does not parse: line 3: no timeline", "plan does not parse", False),
        ("something new", "other", False),
    ],
)
def test_each_hold_is_named_and_only_those_waiting_on_the_seller_are_lifted(reason: str, kind: str,
                                                                          lift: bool) -> None:
    from pipeline.loop.release import hold_of

    hold = hold_of(reason)
    assert (hold.kind, hold.lift) == (kind, lift)
    assert hold.lift or hold.hint  # what cannot be lifted says what to do instead


# --- preview ----------------------------------------------------------------------------------------

V2 = "<plan.acme-northwind-2027.v2@northwind.example>"
ASK = "Raj, could we get 30 minutes with you before the new date?"
NEW_ASK = "Could Raj join the pilot review on 8 March?"


def _evidence(loop: Loop) -> list:
    with loop.home.open_store() as store:
        return store.evidence(PLAN_ID)


def test_preview_shows_the_draft_as_it_would_go_and_keeps_nothing(loop: Loop) -> None:
    loop.deliver(DANA, LATER_PILOT_TEXT, "<r1.dana@acme.example>")
    loop.poll()
    (in_drafts,) = loop.drafts()
    kept, raw = _evidence(loop), loop.mail.messages("Drafts")
    result = loop.cli("preview", PLAN_ID, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["edited"] is None
    (draft,) = out["drafts"]
    assert (draft["message_id"], draft["kind"], draft["version"], draft["state"]) == (V2, "update", 2, "drafted")
    assert (draft["to"], draft["cc"]) == ([DANA, RAJ], [KIM])
    assert draft["subject"] == in_drafts["Subject"]
    assert draft["text"] == text_body(in_drafts)
    assert draft["asks"] == [ASK] and f"In return, could we ask:\n- {ASK}" in draft["text"]
    files = attachments(in_drafts)
    assert [(a["name"], a["content_type"], a["size"]) for a in draft["attachments"]] == [
        (name, kind, len(data)) for name, (kind, data) in files.items()]
    assert _evidence(loop) == kept and loop.mail.messages("Drafts") == raw

    table = CliRunner(env={"COLUMNS": "160"}).invoke(main, ["--home", str(loop.root), "preview", PLAN_ID])
    assert table.exit_code == 0, table.output
    assert "in your Drafts: `approve` sends it as it is there" in table.output
    assert f"Mutual Plan {PLAN_ID} v2.pdf (application/pdf, " in table.output and " KB)" in table.output
    assert f"- {ASK}" in table.output


def test_an_ask_edited_in_preview_replaces_the_draft_and_is_what_approve_sends(loop: Loop) -> None:
    loop.deliver(DANA, LATER_PILOT_TEXT, "<r1.dana@acme.example>")
    loop.poll()
    result = loop.cli("preview", PLAN_ID, "--ask", NEW_ASK, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["edited"] == {"message_id": V2, "asks": [NEW_ASK], "replaced_draft": True}
    assert out["drafts"][0]["asks"] == [NEW_ASK] and f"- {NEW_ASK}" in out["drafts"][0]["text"]
    (draft,) = loop.drafts()  # the old draft is gone, the edited one in its place
    assert f"- {NEW_ASK}" in text_body(draft) and ASK not in text_body(draft)

    assert loop.cli("approve", PLAN_ID).exit_code == 0
    sent = loop.outbox()[V2]
    assert f"- {NEW_ASK}" in text_body(sent) and ASK not in text_body(sent)
    assert loop.drafts() == []


def test_no_ask_drops_it_and_the_output_says_what_approve_sends(loop: Loop) -> None:
    loop.deliver(DANA, LATER_PILOT_TEXT, "<r1.dana@acme.example>")
    loop.poll()
    result = CliRunner(env={"COLUMNS": "160"}).invoke(main, ["--home", str(loop.root), "preview", PLAN_ID,
                                                             "--no-ask"])
    assert result.exit_code == 0, result.output
    assert f"The suggested ask of {V2} is dropped" in result.output
    assert "The edit applies to what `approve` sends: the old draft in your Drafts was replaced" in result.output
    assert "In return" not in text_body(loop.drafts()[0])
    assert loop.cli("approve", PLAN_ID).exit_code == 0
    assert "In return" not in text_body(loop.outbox()[V2])


def test_an_ask_edited_before_it_is_drafted_is_drafted_as_edited(loop: Loop) -> None:
    loop.mail.deliver(reply(DANA, LATER_PILOT_TEXT, message_id="<r1.dana@acme.example>", when=loop.clock()))
    with loop.service() as service:  # handled, its follow-up queued, not yet drafted
        for fetched in service.parts.mailbox.fetch():
            handle(service.parts, fetched.raw, loop.clock())
        kept = service.store.evidence(PLAN_ID)
        (waiting,) = service.preview(PLAN_ID)
        assert waiting.state == "pending" and any(a.name.endswith("v2.pdf") for a in waiting.attachments)
        assert service.store.evidence(PLAN_ID) == kept  # its letter rendered for the preview, not kept
        edited = service.edit_ask(PLAN_ID, [NEW_ASK])
        assert (edited.replaced, edited.draft.state, edited.draft.asks) == (False, "pending", (NEW_ASK,))
        assert service.flush(drafts=False).drafted == [V2]
    (draft,) = loop.drafts()
    assert f"- {NEW_ASK}" in text_body(draft) and ASK not in text_body(draft)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ask", "x", "--no-ask"], "--ask and --no-ask cannot be used together"),
        (["--ask", "  "], "the ask is empty"),
        (["--no-ask"], f"no follow-up of {PLAN_ID} waits for your review"),
    ],
    ids=["both", "empty", "nothing-waits"],
)
def test_a_preview_edit_that_cannot_apply_is_refused(loop: Loop, args: list[str], message: str) -> None:
    result = loop.cli("preview", PLAN_ID, *args)
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_preview_with_nothing_waiting_says_so(loop: Loop) -> None:
    result = loop.cli("preview", PLAN_ID)
    assert result.exit_code == 0 and f"Nothing of {PLAN_ID} waits for your review." in result.output
    unknown = loop.cli("preview", "no-such-plan")
    assert unknown.exit_code == 2 and "no plan 'no-such-plan' in the store" in unknown.output


def test_a_message_held_again_for_a_second_reason_is_released_with_both_lifted(loop: Loop) -> None:
    # Throttled and, read again, unauthenticated: the first release lifts one, the second both.
    loop.settings(max_messages_per_sender_per_hour=1, trusted_authserv_ids=["mx.northwind.example"])
    loop.deliver(RAJ, "Thanks, I will read it tonight.", "<m1.raj@acme.example>", authenticated=False)
    loop.deliver(RAJ, "Confirmed.", "<c1.raj@acme.example>", authenticated=False)
    loop.poll()
    assert (loop.record("<c1.raj@acme.example>").reason or "").startswith("throttled:")
    first = json.loads(loop.cli("release", "<c1.raj@acme.example>", "--json").output)
    assert (first["hold"], first["disposition"]) == ("throttled", "held")
    assert first["reason"].startswith("not authenticated")
    assert first["then"] == "`mutualplan release c1.raj@acme.example` again lifts this hold too"
    second = loop.cli("release", "<c1.raj@acme.example>", "--json")
    assert second.exit_code == 0, second.output
    assert (json.loads(second.output)["hold"], json.loads(second.output)["disposition"]) == (
        "unauthenticated", "confirmed")
    assert [d["hold"] for d in loop.audit("message released")] == ["throttled", "unauthenticated"]


def test_the_sellers_own_plan_email_held_unauthenticated_released_makes_the_plan(loop: Loop) -> None:
    loop.settings(trusted_authserv_ids=["mx.northwind.example"])
    raw = (Path(__file__).parent / "fixtures" / "outlook" / "web-markdown.eml").read_bytes()
    loop.mail.deliver(raw)
    (handled,) = loop.poll().handled
    assert handled[1] == "held" and "whose sender is not proven: not authenticated" in handled[2]
    with loop.service() as service:
        released, report = service.release(handled[0])
        assert (released.hold, released.outcome.disposition) == ("unauthenticated", "created")
        plan_id = released.outcome.plan_id
        assert service.store.current(plan_id).number == 1  # type: ignore[arg-type, union-attr]
    assert report.sent == [f"<plan.{plan_id}.v1@northwind.example>"]
    assert loop.record(handled[0]).disposition == "created"
