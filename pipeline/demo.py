"""The demo: the whole loop on the embedded Maildir, with the prospect's replies written for it.

Time is simulated from Mon 11 Jan 2027 so the example plan's dates lie ahead, and every run of the
demo makes the same letters, byte for byte.
"""

from __future__ import annotations

import mailbox
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from pipeline.archive import export
from pipeline.errors import ConfigError
from pipeline.home import Home, init_home
from pipeline.loop.service import Reason, Service, make_version, queue_plan
from pipeline.plan import ids
from pipeline.plan.source import parse_plan
from pipeline.redline import render_redline
from pipeline.render.templates import default_templates as templates_dir

START = datetime(2027, 1, 11, 17, 2, tzinfo=UTC)  # Mon 11 Jan 2027, 9:02 in Portland

DEMO_SETTINGS = """\
# A demo home made by `mutualplan demo`: the embedded Maildir, follow-ups reviewed by the seller.

[seller]
company = "Northwind Analytics"
name = "Jordan Lee"
title = "Account Executive"
email = "jordan.lee@northwind.example"

[mailbox]
backend = "maildir"

[policy]
changes = "review"
# The demo's mail server: it stamps each reply it delivers with the result of its checks (see reply()).
trusted_authserv_ids = ["mx.northwind.example"]

[letter]
letterhead = "northwind"
"""


class SimulatedClock:
    """A clock that only moves when told to (the demo's, and the tests')."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def reply(*, sender: tuple[str, str], to: str, subject: str, in_reply_to: str, references: list[str],
          when: datetime, body: str, message_id: str) -> bytes:
    """A prospect's plain-text reply, the way a mail client writes it and the seller's server delivers it."""
    msg = EmailMessage()
    domain = sender[1].rpartition("@")[2]
    msg["Authentication-Results"] = f"mx.northwind.example; dmarc=pass header.from={domain}"
    msg["From"] = f"{sender[0]} <{sender[1]}>"
    msg["To"] = to
    msg["Subject"] = f"RE: {subject}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = in_reply_to
    msg["References"] = " ".join(references)
    msg.set_content(body)
    return bytes(msg)


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _home(root: Path, fresh: bool) -> Home:
    if root.exists() and any(root.iterdir()):
        if not fresh:
            raise ConfigError(
                f"{root} is not empty", hint="pass --fresh to start the demo over, or choose another --home"
            )
        if not (root / "mutualplan.toml").exists():
            raise ConfigError(f"{root} holds files but is not a home; not emptying it", hint="choose another --home")
        shutil.rmtree(root)
    home = init_home(root)
    home.settings_path.write_text(DEMO_SETTINGS, encoding="utf-8")
    return home


def run_demo(root: str | Path, *, fresh: bool = False, echo: Callable[[str], Any] | None = print) -> dict[str, Any]:
    """Run the demo in `root` and return where everything is."""
    say = echo or (lambda _text: None)
    home = _home(Path(root).resolve(), fresh)
    clock = SimulatedClock(START)
    plan = parse_plan((templates_dir() / "plans" / "example.md").read_text(encoding="utf-8"), file="example.md")
    # The prospect's replies arrive as a mail server delivers them: into the home's Maildir (mail/new).
    inbox = mailbox.Maildir(home.mail_dir, factory=None, create=False)
    steps: list[dict[str, Any]] = []

    def poll(watcher: Service, what: str) -> None:
        _poll(watcher, what, steps, say)

    with Service.open(home, clock) as watcher:
        store = watcher.store
        say(f"Home: {home.root}")
        say("1. The seller adds the example plan and sends version 1.")
        make_version(store, plan, author=plan.seller.email, reason=Reason.CREATED, created=clock())
        v1 = queue_plan(store, plan.id, at=clock())
        poll(watcher, "send version 1")
        subject = ids.subject(plan)

        say("2. Dana asks for a later pilot and a security review before it.")
        clock.advance(days=1, hours=1)
        inbox.add(reply(
            sender=("Dana Whitfield", "dana.whitfield@acme.example"), to=plan.seller.email, subject=subject,
            in_reply_to=v1.message_id, references=[v1.message_id], when=clock(),
            message_id="<demo.1.dana@acme.example>",
            body="Hi Jordan,\n\nWe can't start the pilot before March 8 - our Q4 close runs late this year.\n"
                 "Please move the pilot to March 8, and add a security review with our CISO before the pilot.\n\n"
                 "Best,\nDana\n\n"
                 f"On Mon, Jan 11, 2027 at 9:02 AM Jordan Lee <{plan.seller.email}> wrote:\n"
                 + _quote("Please reply \"Confirmed\" if this matches our understanding, or tell me what\n"
                          "should change.") + "\n",
        ))
        clock.advance(minutes=5)
        poll(watcher, "the change request")

        say("3. The seller reviews version 2 in Drafts and sends it.")
        clock.advance(hours=1)
        approved = watcher.approve(plan.id)
        steps.append({"step": "approve", "sent": approved})
        for message_id in approved:
            say(f"  sent      {message_id}")
        v2 = store.current(plan.id)
        assert v2 is not None
        v2_id = ids.message_id(plan, v2.number)
        subject2 = ids.subject(plan)

        say("4. Dana and Raj confirm version 2.")
        _confirmations(inbox, clock, plan.seller.email, subject2, [v1.message_id, "<demo.1.dana@acme.example>", v2_id])
        clock.advance(minutes=5)
        poll(watcher, "the confirmations")

        status = watcher.status(plan.id, clock().date())
        bundle = home.root / "export" / plan.id
        export_result = export(store, watcher.parts.archive, plan.id, bundle, redline=render_redline)

    letters, outbox = _where(home, bundle, plan.id, status, say)
    return {"home": str(home.root), "plan_id": plan.id, "status": status, "steps": steps,
            "letters": letters, "emails": outbox, "bundle": str(bundle), "export": repr(export_result)}


def _where(home: Home, bundle: Path, plan_id: str, status: dict[str, Any],
           say: Callable[[str], Any]) -> tuple[list[str], list[str]]:
    """Say where every letter, email and the bundle are; the letters' and emails' paths."""
    letters = sorted(str(p) for p in (bundle / "versions").glob("*.pdf"))
    outbox = sorted(str(p) for p in (home.mail_dir.parent / "outbox").glob("*.eml"))
    say("")
    say(f"Status: {status['summary']}")
    say(f"Letters (each version, and the redline of each step): {bundle}")
    for path in letters:
        say(f"  {path}")
    say(f"Emails sent (as .eml): {home.mail_dir.parent / 'outbox'}")
    for path in outbox:
        say(f"  {path}")
    say(f"Drafts and Sent (Maildir): {home.mail_dir}")
    say(f"Archive bundle for legal review: {bundle} (check it: mutualplan archive verify {bundle})")
    say(f"Look around: mutualplan --home {home.root} status; mutualplan --home {home.root} history {plan_id}")
    return letters, outbox


def _poll(watcher: Service, what: str, steps: list[dict[str, Any]], say: Callable[[str], Any]) -> None:
    """One poll of the watcher, said as it happens and kept as a step of the demo's result."""
    report = watcher.poll()
    steps.append({"step": what, **report.to_dict()})
    for _message_id, disposition, reason in report.handled:
        say(f"  {disposition:<9} {reason}")
    for message_id in report.drafted:
        say(f"  drafted   {message_id} (waits for the seller)")
    for message_id in report.sent:
        say(f"  sent      {message_id}")


def _confirmations(inbox: mailbox.Maildir, clock: SimulatedClock, seller: str, subject: str, thread: list[str]) -> None:
    """Dana's and Raj's confirmations of the version that ends `thread`, three hours apart."""
    for n, (name, address, text) in enumerate((
        ("Dana Whitfield", "dana.whitfield@acme.example", "Confirmed - thanks Jordan.\n\nDana\n"),
        ("Raj Patel", "raj.patel@acme.example", "Confirmed.\n\nRaj\n\nSent from my iPhone\n"),
    ), start=2):
        clock.advance(hours=3)
        inbox.add(reply(
            sender=(name, address), to=seller, subject=subject, in_reply_to=thread[-1], references=thread,
            when=clock(), message_id=f"<demo.{n}.{address.split('@')[0]}@acme.example>", body=text,
        ))
