"""Secure by default: with no trusted authserv-id nothing is authenticated, so what would act waits for the seller
(`mutualplan release` accepts it); a plan typed in mail acts only when proven the seller's."""

from __future__ import annotations

import json
from dataclasses import replace
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.loop import policy
from pipeline.loop.receive import Received
from pipeline.loop.reply import UNPROVEN, seller_unproven
from pipeline.loop.service import Service
from pipeline.replies.auth import exchange_internal, topmost_authserv_id
from tests.loop_support import KIM, V1, example_plan
from tests.loop_support import reply as loop_reply
from tests.test_hostile import (  # noqa: F401  (fixtures)
    ARRIVAL,
    DANA,
    PASS,
    PLAN_ID,
    RAJ,
    SELLER,
    SETTINGS,
    Loop,
    reply,
    sent_home,
)
from tests.test_hostile_values import Home1


@pytest.fixture
def box(sent_home: Path, tmp_path: Path) -> Loop:  # noqa: F811
    """A copy of the home whose version 1 went out (test_hostile's)."""
    return Loop(sent_home, tmp_path / "home")


DEFAULT = SETTINGS.replace('trusted_authserv_ids = ["mx.northwind.example"]\n', "")
ATTACKER = "buyer@attacker.example"


def cli(box: Loop, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--home", str(box.root), *args], env={"COLUMNS": "250"})
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def default(box: Loop) -> Loop:
    box.home.settings_path.write_text(DEFAULT, encoding="utf-8")
    return box


def test_the_forged_confirmation_that_would_agree_waits_and_one_release_accepts_it(box: Loop) -> None:
    default(box)
    # Both "Confirmed" carry a pass, but from a server nobody named as trusted: it proves nothing.
    box.deliver(reply(DANA, "Confirmed.", "<d1@acme.example>"))
    box.deliver(reply(RAJ, "Confirmed.", "<r1@acme.example>", when=ARRIVAL.replace(minute=5)))
    report = box.poll()
    assert [d for _, d, _ in report.handled] == [policy.CONFIRMED, policy.HELD]
    with box.store() as store:
        assert store.plan_state(PLAN_ID) == "open"
        held = store.message("r1@acme.example")
        assert held.reason == UNPROVEN
    # The seller reads it and accepts it with the command that lifts any hold on a sender's identity.
    code, out = cli(box, "release", "r1@acme.example")
    assert code == 0, out
    with box.store() as store:
        assert store.plan_state(PLAN_ID) == "agreed"
        assert store.message("r1@acme.example").disposition == policy.AGREED


def test_a_change_waits_and_its_release_makes_the_version(box: Loop) -> None:
    default(box)
    box.deliver(reply(DANA, "Please move the pilot to March 8.", "<d2@acme.example>"))
    assert [d for _, d, _ in box.poll().handled] == [policy.HELD]
    code, out = cli(box, "release", "d2@acme.example")
    assert code == 0, out
    with box.store() as store:
        assert store.current(PLAN_ID).number == 2


def test_a_decline_waits_too(box: Loop) -> None:
    default(box)
    box.deliver(reply(RAJ, "We have decided not to proceed.", "<r3@acme.example>"))
    assert [d for _, d, _ in box.poll().handled] == [policy.HELD]
    with box.store() as store:
        assert store.plan_state(PLAN_ID) == "open"


def test_the_watcher_and_status_show_the_authserv_id_to_trust(box: Loop) -> None:
    default(box)
    box.deliver(reply(DANA, "A question: who joins the pilot?", "<d4@acme.example>"))
    report = box.poll()
    assert any('trusted_authserv_ids = ["mx.northwind.example"]' in note for note in report.notes), report.notes
    code, out = cli(box, "status", "--json")
    assert code == 0, out
    auth = json.loads(out)["authentication"]
    assert (auth["on"], auth["seen_authserv_id"]) == (False, "mx.northwind.example")
    code, out = cli(box, "status")
    assert "authentication is off" in out and 'trusted_authserv_ids = ["mx.northwind.example"]' in out
    # Said once, not on every poll.
    box.deliver(reply(DANA, "Another question: when?", "<d5@acme.example>"))
    assert box.poll().notes == []


def test_init_says_how_to_turn_authentication_on(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "h"), "init"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert "Authentication is off" in result.output and "trusted_authserv_ids" in result.output


def test_the_topmost_authentication_results_is_the_one_shown() -> None:
    headers = [("Received", "x"), ("Authentication-Results", "mx.seller.example; dmarc=pass"),
               ("Authentication-Results", "mx.attacker.example; dmarc=pass")]
    assert topmost_authserv_id(headers) == "mx.seller.example"
    assert topmost_authserv_id([("From", "a@b.example")]) is None


# --- a plan typed in mail ------------------------------------------------------------------------------

PLAN_BODY = ("Target: 2027-04-30\n\n## Timeline\n| # | Activity | Owner | Due |\n|---|---|---|---|\n"
             "| M1 | Pilot | Buyer | T-10d |\n| M2 | Signature | Buyer | T |\n")


def plan_email(message_id: str = "<p1@northwind.example>", *, auth: str | None = None) -> bytes:
    msg = EmailMessage()
    if auth:
        msg["Authentication-Results"] = auth
    msg["From"] = f"Jordan Lee <{SELLER}>"
    msg["To"] = f"Pat Buyer <{ATTACKER}>"
    msg["Subject"] = "[Mutual Plan] Attacker Inc: our plan"
    msg["Date"] = format_datetime(ARRIVAL)
    msg["Message-ID"] = message_id
    msg.set_content(PLAN_BODY)
    return bytes(msg)


def _to_anyone_but_the_seller(box: Loop) -> list[str]:
    return [a for m in box.emails("Sent").values() for a in str(m["To"] or "").split(",") if SELLER not in a]


def test_a_forged_plan_email_from_the_seller_makes_no_plan_and_mails_no_one(box: Loop) -> None:
    for settings in (DEFAULT, SETTINGS):  # no server trusted, then ours trusted but no pass from it
        box.home.settings_path.write_text(settings, encoding="utf-8")
        before = set(box.emails("Sent"))
        mid = f"<forged.{len(before)}@northwind.example>"
        box.deliver(plan_email(mid, auth="mx.attacker.example; dmarc=pass header.from=northwind.example"))
        report = box.poll()
        assert [d for _, d, _ in report.handled] == [policy.HELD], report.handled
        assert "neither marked internal by your mail server nor in your Sent folder" in report.handled[0][2]
        with box.store() as store:
            assert store.plan_ids() == [PLAN_ID]
        new = [m for k, m in box.emails("Sent").items() if k not in before]
        assert len(new) == 1 and SELLER in str(new[0]["To"])  # the seller is told, no one else
        assert ATTACKER not in str(new[0]["To"]) + str(new[0]["Cc"] or "")
    assert ATTACKER not in " ".join(_to_anyone_but_the_seller(box))


def test_a_plan_email_found_in_sent_is_the_sellers(box: Loop) -> None:
    default(box)
    raw = plan_email("<p2@northwind.example>")
    box.mail._file("Sent", raw, flags="S")  # the seller's client filed its copy when sending it
    box.deliver(raw)
    assert [d for _, d, _ in box.poll().handled] == [policy.CREATED]


def test_a_message_id_from_sent_with_other_words_is_not(box: Loop) -> None:
    # Everyone who got the seller's email knows its Message-ID: the words must be the same too.
    default(box)
    box.mail._file("Sent", plan_email("<p3@northwind.example>").replace(b"Pilot", b"Trial"), flags="S")
    box.deliver(plan_email("<p3@northwind.example>"))
    assert [d for _, d, _ in box.poll().handled] == [policy.HELD]


def _parts(backend: str) -> SimpleNamespace:
    return SimpleNamespace(settings=SimpleNamespace(mailbox={"backend": backend}), mailbox=object())


INTERNAL = (b"X-MS-Exchange-Organization-AuthAs: Internal\r\n"
            b"X-MS-Exchange-Organization-AuthSource: DM6PR11MB1234.namprd11.prod.outlook.com\r\n")


def _received(extra: bytes) -> Received:
    return Received.read(extra + plan_email(), ARRIVAL, own_domains=("northwind.example",), limit=1 << 20)


def test_exchange_marking_it_internal_proves_it_on_an_exchange_mailbox_only() -> None:
    msg = _received(INTERNAL)
    assert exchange_internal(msg.incoming.raw_headers)
    assert seller_unproven(_parts("exchange"), msg, UNPROVEN) is None  # type: ignore[arg-type]
    assert seller_unproven(_parts("graph"), msg, UNPROVEN) is None  # type: ignore[arg-type]
    # On IMAP or a Maildir anyone could have written those headers.
    assert seller_unproven(_parts("imap"), msg, UNPROVEN) is not None  # type: ignore[arg-type]
    # Not internal, or said twice (one of them written by the sender): not proven.
    for extra in (INTERNAL.replace(b"Internal", b"Anonymous"), INTERNAL + INTERNAL,
                  b"X-MS-Exchange-Organization-AuthAs: Internal\r\n"):
        assert seller_unproven(_parts("exchange"), _received(extra), UNPROVEN) is not None  # type: ignore[arg-type]


def _declines(sender_confirms: bool, sender_decides: bool) -> policy.Decision:
    return policy.decide(policy.Facts(
        sender=KIM, sender_is_seller=False, sender_confirms=sender_confirms, sender_decides=sender_decides,
        plan_state="open", replied_version=1, current_version=1, intent="decline", changes=(), unresolved=()))


def test_only_a_confirming_contact_or_the_decision_maker_can_decline() -> None:
    for confirms, decides in ((True, False), (False, True), (True, True)):
        decision = _declines(confirms, decides)
        assert (decision.disposition, decision.decline) == (policy.DECLINED, True), (confirms, decides)
    other = _declines(False, False)
    assert (other.disposition, other.decline, other.notify_seller) == (policy.NOTED, False, True)


@pytest.mark.parametrize("role", ["decision-maker", "economic-buyer"])
def test_a_decision_maker_who_does_not_confirm_declines_the_plan(tmp_path: Path, role: str) -> None:
    # Kim decides but is only in Cc (the plan waits on Dana and Raj to confirm): Kim may decline all the same.
    plan = example_plan()
    contacts = tuple(replace(c, role=role) if c.email == KIM else replace(c, role="champion")
                     for c in plan.prospect.contacts)
    seller = Home1(tmp_path / "home", changes="review")
    seller.add(replace(plan, prospect=replace(plan.prospect, contacts=contacts)))
    assert seller.poll().sent == [V1]
    seller.clock.advance(hours=2)
    seller.mail.deliver(loop_reply(KIM, "We have decided not to proceed.", message_id="<k1@acme.example>",
                                   when=seller.clock()))
    report = seller.poll()
    assert [(d, r) for _, d, r in report.handled] == [(policy.DECLINED, "the prospect withdrew from the plan")]
    assert len(report.sent) == 1 and ".notice." in report.sent[0]  # the seller is told
    assert len(seller.mail.messages("Processed")) == 1
    with Service.open(seller.home, seller.clock) as watcher:
        assert watcher.store.plan_state(PLAN_ID) == "declined"
