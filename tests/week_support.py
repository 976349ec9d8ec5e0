"""A seller's week: the three plans, their people, mail as clients write it, and the two mailboxes it runs on.

The seller, Priya Nair of Lumen Metrics, sells to Bluefin Logistics, Bluefin Foods (the same first word, another
company) and Kestrel Health. The plans name no seller: it comes from the home's [seller], as for a seller with many
plans. Replies are built as Outlook (HTML, with its From/Sent block), Gmail (plain, "On ... wrote:") and the iPhone
("Sent from my iPhone") write them, quoting the email they answer as it arrived.

`Week` is the home the week runs in and what is expected of it so far; `Week.check` holds the home to all of it.
"""

from __future__ import annotations

import email.policy
import hashlib
import html
import json
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.home import init_home
from pipeline.loop.parts import PollReport
from pipeline.loop.service import Service
from pipeline.mailbox.maildir import MaildirMailbox
from pipeline.plan.ids import parse_plan_mark
from tests.loop_support import Clock, addresses, attachments, parse, text_body

SELLER = "priya.nair@lumenmetrics.example"
DOMAIN = "lumenmetrics.example"
SELLER_TZ = ZoneInfo("America/Chicago")

LOGISTICS = "bluefin-logistics-lumen-2027"
FOODS = "bluefin-foods-lumen-2027"
KESTREL = "kestrel-health-lumen-2027"
# The one subject of each plan's thread: the prospect without its legal form, and the seller.
SUBJECTS = {
    LOGISTICS: "Mutual Plan: Bluefin Logistics and Lumen Metrics",
    FOODS: "Mutual Plan: Bluefin Foods and Lumen Metrics",
    KESTREL: "Mutual Plan: Kestrel Health and Lumen Metrics",
}

MAYA = "maya.chen@bluefin-logistics.example"
TOM = "tom.reyes@bluefin-logistics.example"
LENA = "lena.park@bluefin-logistics.example"
AISHA = "aisha.khan@bluefin-foods.example"
OLIVER = "oliver.grant@bluefin-foods.example"
PRIYA_SHAH = "priya.shah@bluefin-foods.example"
RACHEL = "rachel.moss@bluefin-foods.example"  # Bluefin Foods' IT, not a contact of the plan
GRACE = "grace.liu@kestrel-health.example"
DANIEL = "daniel.okafor@kestrel-health.example"
NORA = "nora.blake@kestrel-health.example"
NAMES = {
    SELLER: "Priya Nair", MAYA: "Maya Chen", TOM: "Tom Reyes", LENA: "Lena Park", AISHA: "Aisha Khan",
    OLIVER: "Oliver Grant", PRIYA_SHAH: "Priya Shah", RACHEL: "Rachel Moss", GRACE: "Grace Liu",
    DANIEL: "Daniel Okafor", NORA: "Nora Blake",
}
# Who gets mail from the seller: each needs a mailbox on the test servers.
RECIPIENTS = (SELLER, MAYA, TOM, LENA, AISHA, OLIVER, PRIYA_SHAH, GRACE, DANIEL, NORA)

SETTINGS = """\
[seller]
company = "Lumen Metrics"
name = "Priya Nair"
title = "Account Director"
email = "{seller}"
timezone = "America/Chicago"

[mailbox]
{mailbox}

[policy]
changes = "review"
# Authentication is on: Priya names her mail server, which stamps each message it receives (_head below). Without
# it every change and every agreeing confirmation would wait for her review (tests/test_hostile_default.py).
trusted_authserv_ids = ["mx.lumenmetrics.example"]

[letter]
letterhead = "default"

[reminders]
enabled = true
days_before = 3
digest = true
digest_day = "friday"
"""

PLANS = {
    LOGISTICS: """\
---
prospect:
  company: Bluefin Logistics Ltd
  address: [14 Quay Street, Duluth, MN 55802]
  contacts:
    - name: Maya Chen
      title: VP Supply Chain
      email: maya.chen@bluefin-logistics.example
      role: champion
      confirms: true
    - {name: Tom Reyes, title: CFO, email: tom.reyes@bluefin-logistics.example, role: decision-maker, confirms: true}
    - {name: Lena Park, title: General Counsel, email: lena.park@bluefin-logistics.example, role: legal}
target: 2027-04-30
timezone: America/Chicago
---

## Differentiated VisionMatch
Bluefin wants every dispatcher to plan routes from one live view of loads, drivers and docks.

## Business issues
- Empty miles cost Bluefin $1.4M last year
  - Routes are planned on whiteboards at each depot

## Solutions
- Route planning on live load data, refreshed every 15 minutes

## Business value
- Cut empty miles by 25% (about $350k a year)

## Decision process
- Criteria: empty miles on January's shipments, SOC 2 report, cost over 3 years
- Decision: Tom Reyes signs; Maya Chen recommends

## Timeline
| #  | Activity                              | Owner               | Due        |
|----|---------------------------------------|---------------------|------------|
| M1 | Share January shipment data           | Bluefin (Maya)      | 2027-02-09 |
| M2 | Route-planning demo for dispatchers   | Lumen Metrics       | 2027-02-24 |
| M3 | Pilot on January shipments            | Bluefin (Maya)      | T-45d      |
| M4 | Customer reference call               | Lumen Metrics       | M3+2d      |
| M5 | Legal review of the MSA               | Bluefin (Lena Park) | T-14d      |
| M6 | Signed order form                     | Bluefin (Tom Reyes) | T          |

### After the PO
| #  | Activity                              | Owner               | Due        |
|----|---------------------------------------|---------------------|------------|
| M7 | Kick-off and depot onboarding         | Joint               | T+10d      |

## Call to action
Maya to send January's shipment data by 9 February.
""",
    FOODS: """\
---
prospect:
  company: Bluefin Foods plc
  address: [3 Wharf Road, Grimsby, DN31 3AB, United Kingdom]
  contacts:
    - {name: Aisha Khan, title: Operations Director, email: aisha.khan@bluefin-foods.example, role: champion,
       confirms: true}
    - name: Oliver Grant
      title: Managing Director
      email: oliver.grant@bluefin-foods.example
      role: decision-maker
      confirms: true
    - {name: Priya Shah, title: Procurement Manager, email: priya.shah@bluefin-foods.example, role: procurement}
target: 2027-05-28
timezone: Europe/London
---

## Differentiated VisionMatch
Bluefin Foods wants to plan cold-chain deliveries a week ahead, not a day.

## Business issues
- Spoiled stock written off: £600k last year

## Solutions
- Seven-day delivery forecasts per store, from the order history

## Business value
- Halve spoiled stock (about £300k a year)

## Decision process
- Criteria: forecast accuracy on 2026 orders, ISO 27001, price
- Procurement: supplier onboarding by Priya Shah
- Decision: Oliver Grant signs; Aisha Khan recommends

## Milestones
| #  | Activity                          | Owner                  | Due        |
|----|-----------------------------------|------------------------|------------|
| M1 | Data workshop with store planners | Joint                  | 2027-03-03 |
| M2 | Visit to a customer's depot       | Lumen Metrics          | 2027-03-17 |
| M3 | Forecast trial on 2026 orders     | Lumen Metrics          | 2027-04-07 |
| M4 | Supplier onboarding               | Bluefin (Priya Shah)   | T-21d      |
| M5 | Contract signature                | Bluefin (Oliver Grant) | T          |

### After signature
| #  | Activity                          | Owner                  | Due        |
|----|-----------------------------------|------------------------|------------|
| M6 | Go-live in the first ten stores   | Joint                  | 2027-06-28 |

## Next steps
Aisha to book the store planners for the data workshop.
""",
    KESTREL: """\
---
prospect:
  company: Kestrel Health Inc.
  address: [900 Beacon Street, Boston, MA 02215]
  contacts:
    - {name: Grace Liu, title: CIO, email: grace.liu@kestrel-health.example, role: decision-maker, confirms: true}
    - {name: Daniel Okafor, title: IT Security Lead, email: daniel.okafor@kestrel-health.example, role: technical}
    - {name: Nora Blake, title: Contracts Manager, email: nora.blake@kestrel-health.example, role: legal}
target: 2027-03-31
timezone: America/New_York
---

## Vision
Kestrel wants bed occupancy forecasts its ward managers trust.

## Business issues
- Agency nurses booked at short notice cost $2.3M last year

## Solutions
- Occupancy forecasts per ward, three weeks ahead

## Value
- Book 30% fewer agency shifts at short notice

## Decision process
- Criteria: HIPAA review, accuracy on 2026 admissions
- Decision: Grace Liu signs

## Timeline
| #  | Activity                           | Owner                   | Due        |
|----|------------------------------------|-------------------------|------------|
| M1 | Security questionnaire returned    | Kestrel (Daniel Okafor) | 2027-02-05 |
| M2 | Forecast review with ward managers | Lumen Metrics           | 2027-02-23 |
| M3 | Reference call with a hospital     | Lumen Metrics           | 2027-03-03 |
| M4 | Business associate agreement       | Kestrel (Nora Blake)    | T-14d      |
| M5 | Purchase order                     | Kestrel (Grace Liu)     | T          |

### After the PO
| #  | Activity                           | Owner                   | Due        |
|----|------------------------------------|-------------------------|------------|
| M6 | Kick-off with ward managers        | Joint                   | T+7d       |

## Call to action
Daniel to return the security questionnaire by 5 February.
""",
}


# --- our Message-IDs, written out from the documented scheme ----------------------------------------------


def _hash(key: str, length: int) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:length]


def version_id(plan_id: str, number: int) -> str:
    """The plan or update email of a version: <plan.<id>.v<N>@<seller's domain>>."""
    return f"<plan.{plan_id}.v{number}@{DOMAIN}>"


def agreed_id(plan_id: str, number: int) -> str:
    return f"<plan.{plan_id}.v{number}.agreed@{DOMAIN}>"


def notice_id(plan_id: str, number: int, reply_id: str) -> str:
    """The seller's notice about a reply: keyed by the reply's Message-ID, without its angle brackets."""
    return f"<plan.{plan_id}.v{number}.notice.{_hash(reply_id.strip('<>'), 12)}@{DOMAIN}>"


def reminder_id(plan_id: str, number: int, milestone: str, due: str, when: str) -> str:
    return f"<plan.{plan_id}.v{number}.reminder.{_hash(f'{milestone}|{due}|{when}', 12)}@{DOMAIN}>"


def digest_id(week: str) -> str:
    return f"<mutualplan.digest.{_hash(f'digest|{week}', 16)}@{DOMAIN}>"


# --- mail as the prospect's clients write it ------------------------------------------------------------


def _address(email: str) -> str:
    return f"{NAMES.get(email, '')} <{email}>".strip()


def _thread(msg: EmailMessage, answered: EmailMessage | None, *, prefix: str = "RE: ") -> None:
    if answered is None:
        return
    refs = (answered.get("References") or "").split()
    msg["Subject"] = prefix + str(answered["Subject"]).removeprefix("Re: ")
    msg["In-Reply-To"] = str(answered["Message-ID"])
    msg["References"] = " ".join([*refs, str(answered["Message-ID"])])


# Mail clients write a long Message-ID in References on a line of its own; the standard library's default would
# encode it as an RFC 2047 word, which no client does.
_CLIENT = email.policy.default.clone(max_line_length=998)


def _head(sender: str, when: datetime, message_id: str, to: str = SELLER) -> EmailMessage:
    msg = EmailMessage(policy=_CLIENT)
    # What the seller's server writes on top of each message it receives: the sender's domain passed DMARC.
    msg["Authentication-Results"] = f"mx.lumenmetrics.example; dmarc=pass header.from={sender.rpartition('@')[2]}"
    msg["From"] = _address(sender)
    msg["To"] = _address(to)
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id
    return msg


def _sent_line(answered: EmailMessage, zone: ZoneInfo) -> str:
    when = parsedate_to_datetime(str(answered["Date"])).astimezone(zone)
    return f"{when:%A, %B} {when.day}, {when:%Y} {when:%I:%M %p}".replace(" 0", " ")


def _recipients(answered: EmailMessage) -> str:
    return "; ".join(str(a) for a in answered["To"].addresses)


def outlook_html(sender: str, paragraphs: list[str], answered: EmailMessage, *, when: datetime, message_id: str,
                 zone: ZoneInfo, disclaimer: str = "") -> bytes:
    """Outlook for Windows: multipart/alternative, the answer on top, then its From/Sent/To/Subject block and the
    email answered, in the plain part and in the HTML part (MsoNormal paragraphs, the block in a bordered div)."""
    msg = _head(sender, when, message_id)
    _thread(msg, answered)
    msg["Thread-Topic"] = str(answered["Subject"]).removeprefix("Re: ")
    msg["X-MS-Has-Attach"] = ""
    msg["Content-Language"] = "en-US"
    block = (f"From: {answered['From']}\nSent: {_sent_line(answered, zone)}\nTo: {_recipients(answered)}\n"
             f"Subject: {answered['Subject']}")
    quoted = text_body(answered)
    plain = "\n\n".join(paragraphs) + (f"\n\n{disclaimer}" if disclaimer else "")
    msg.set_content(f"{plain}\n\n________________________________\n{block}\n\n{quoted}")
    mso = "".join(f'<p class="MsoNormal">{html.escape(p)}<o:p></o:p></p>\n'
                  '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>\n' for p in paragraphs)
    if disclaimer:
        mso += f'<p class="MsoNormal"><span style="font-size:8.0pt;color:gray">{html.escape(disclaimer)}</span></p>'
    head_html = "<br>\n".join(f"<b>{html.escape(line.split(': ', 1)[0])}:</b> {html.escape(line.split(': ', 1)[1])}"
                              for line in block.split("\n"))
    body_html = "".join(f'<p class="MsoNormal">{html.escape(line) or "&nbsp;"}</p>\n' for line in quoted.split("\n"))
    msg.add_alternative(
        '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta http-equiv="Content-Type" '
        'content="text/html; charset=utf-8"><style><!-- p.MsoNormal {margin:0in;} --></style></head>'
        f'<body lang="EN-US"><div class="WordSection1">{mso}'
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in">'
        f'<p class="MsoNormal">{head_html}<o:p></o:p></p></div>'
        f"{body_html}</div></body></html>",
        subtype="html",
    )
    return bytes(msg)


def gmail_plain(sender: str, body: str, answered: EmailMessage, *, when: datetime, message_id: str,
                zone: ZoneInfo) -> bytes:
    """Gmail, plain text: the answer, then "On <date> <sender> wrote:" and the email answered, quoted with "> "."""
    msg = _head(sender, when, message_id)
    _thread(msg, answered, prefix="Re: ")
    sent = parsedate_to_datetime(str(answered["Date"])).astimezone(zone)
    on = f"On {sent:%a, %b} {sent.day}, {sent:%Y} at {sent:%I:%M %p}".replace(" 0", " ")
    quote = "\n".join(f"> {line}".rstrip() for line in text_body(answered).split("\n"))
    msg.set_content(f"{body}\n\n{on} {answered['From']} wrote:\n\n{quote}\n")
    return bytes(msg)


def iphone(sender: str, body: str, answered: EmailMessage, *, when: datetime, message_id: str,
           zone: ZoneInfo) -> bytes:
    """Apple Mail on an iPhone: the answer, "Sent from my iPhone", then the email answered, quoted."""
    msg = _head(sender, when, message_id)
    _thread(msg, answered, prefix="Re: ")
    sent = parsedate_to_datetime(str(answered["Date"])).astimezone(zone)
    on = f"On {sent:%b} {sent.day}, {sent:%Y}, at {sent:%H:%M}, {answered['From']} wrote:"
    quote = "\n".join(f"> {line}".rstrip() for line in text_body(answered).split("\n"))
    msg.set_content(f"{body}\n\nSent from my iPhone\n\n> {on}\n>\n{quote}\n")
    return bytes(msg)


def out_of_office(sender: str, text: str, answered: EmailMessage, *, when: datetime, message_id: str) -> bytes:
    """Outlook's automatic reply: "Automatic reply:" subject, Auto-Submitted, in the thread of what it answers."""
    msg = _head(sender, when, message_id)
    _thread(msg, answered, prefix="Automatic reply: ")
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text)
    return bytes(msg)


def new_email(sender: str, body: str, *, subject: str, when: datetime, message_id: str) -> bytes:
    """An email written anew (no In-Reply-To, no References): only its subject says which plan it is about."""
    msg = _head(sender, when, message_id)
    msg["Subject"] = subject
    msg.set_content(body)
    return bytes(msg)


# --- the seller's mailbox, on either backend ------------------------------------------------------------


class Backend(Protocol):
    """Where the seller's mail is: how the home names it, how mail reaches it, and what each folder holds."""

    name: str

    def mailbox_settings(self) -> str: ...

    def deliver(self, raw: bytes) -> None: ...

    def messages(self, folder: str) -> list[bytes]: ...

    def settle(self, message_ids: list[str]) -> None: ...


class MaildirBackend:
    """The embedded Maildir: mail arrives by a file in the Inbox; what is sent is filed in Sent."""

    name = "maildir"

    def __init__(self, root: Path) -> None:
        self.box = MaildirMailbox(root / "mail")

    def mailbox_settings(self) -> str:
        return 'backend = "maildir"'

    def deliver(self, raw: bytes) -> None:
        self.box.deliver(raw)

    def messages(self, folder: str) -> list[bytes]:
        return self.box.messages("Inbox" if folder == "INBOX" else folder)

    def settle(self, message_ids: list[str]) -> None:
        """Nothing to wait for: the Maildir backend delivers nothing."""


class ImapBackend:
    """Dovecot and Postfix: mail arrives through SMTP as the prospect's client sends it, and is read over IMAP."""

    name = "imap"
    password_env = "MUTUALPLAN_WEEK_IMAP_PASSWORD"

    def __init__(self, server: object) -> None:
        self.server = server

    def mailbox_settings(self) -> str:
        s = self.server
        return (f'backend = "imap"\nhost = "{s.host}"\nport = {s.imap_port}\nsecurity = "starttls"\n'  # type: ignore[attr-defined]
                f'username = "{SELLER}"\npassword_env = "{self.password_env}"\nsmtp_port = {s.smtp_port}\n'  # type: ignore[attr-defined]
                f'smtp_security = "starttls"\ncafile = "{s.cafile}"\ntimeout = 10')  # type: ignore[attr-defined]

    def deliver(self, raw: bytes) -> None:
        msg = parse(raw)
        s = self.server
        with smtplib.SMTP(s.host, s.smtp_port, timeout=10) as smtp:  # type: ignore[attr-defined]
            smtp.sendmail(msg["From"].addresses[0].addr_spec, [SELLER], raw)
        s.wait_for_message(SELLER, str(msg["Message-ID"]))  # type: ignore[attr-defined]

    def messages(self, folder: str) -> list[bytes]:
        return self.server.messages(SELLER, folder)  # type: ignore[attr-defined]

    def settle(self, message_ids: list[str]) -> None:
        """Wait until what we sent the seller is back in their INBOX (it went through Postfix)."""
        for message_id in message_ids:
            self.server.wait_for_message(SELLER, message_id)  # type: ignore[attr-defined]


# --- Message-IDs as the prospect's clients make them ----------------------------------------------------


def outlook_id(tag: str) -> str:
    """Outlook (Exchange Online): <server-name + hex@server-name.namprd11.prod.outlook.com>."""
    host = "CH0PR11MB" + str(int(_hash(tag, 6), 16) % 10000).zfill(4)
    return f"<{host}{_hash(tag, 24).upper()}@{host}.namprd11.prod.outlook.com>"


def gmail_id(tag: str) -> str:
    return f"<CAKx{_hash(tag, 40)}@mail.gmail.com>"


def apple_id(tag: str, domain: str) -> str:
    h = _hash(tag, 32).upper()
    return f"<{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}@{domain}>"


# --- when, in the plans' time zones -----------------------------------------------------------------------

CHICAGO = SELLER_TZ  # the seller's, and Bluefin Logistics'
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
DAYS = {"Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5}  # February 2027


# --- what status says, in its own words ---------------------------------------------------------------


def not_sent(plan_id: str, n: int) -> str:
    return f"version {n} not sent yet (`mutualplan send {plan_id}`)"


def in_drafts(n: int) -> str:
    return f"version {n} waits on the seller (in Drafts: send it or `mutualplan approve`)"


def waiting_on(*people: str) -> str:
    return "waiting on " + ", ".join(people)


def progress(agreed: int, n: int) -> str:
    return f"mutually agreed on version {agreed}; version {n} records progress (steps done), which needs no new " \
           "confirmation"


def reopened(n: int, agreed: int, rest: str) -> str:
    again = " to confirm again" if rest.startswith("waiting on") else ""
    return f"version {n} changes what was agreed on version {agreed}: {rest}{again}"


def notice_subject(plan_id: str, about: str, version: int | None = None) -> str:
    return f"[Mutual Plan {plan_id}] {f'Version {version}' if version else 'Nothing changed'}: {about}"


# --- the week -----------------------------------------------------------------------------------------


@dataclass
class Expected:
    """What one plan should look like now."""

    versions: list[tuple[str, str]] = field(default_factory=list)  # (reason, author) of versions 1, 2 ...
    state: str = "open"
    summary: str = ""
    waiting: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    held: int = 0


@dataclass(frozen=True)
class Step:
    """One step of the week: when it happens, what it is, and the function that does it and says what to expect."""

    when: str  # "Tue 09:20", the seller's time (Chicago)
    title: str
    run: Callable[[Week], None]

    @property
    def at(self) -> datetime:
        day, clock = self.when.split()
        hour, minute = map(int, clock.split(":"))
        return datetime(2027, 2, DAYS[day], hour, minute, tzinfo=CHICAGO)

    @property
    def id(self) -> str:
        return f"{self.when.replace(' ', '-').replace(':', '')}-{self.run.__name__.replace('_', '-')}"


class Week:
    """One home, its clock and mailbox, and everything expected of them so far."""

    def __init__(self, root: Path, backend: Backend) -> None:
        self.root = root
        self.backend = backend
        self.home = init_home(root)
        self.home.settings_path.write_text(SETTINGS.format(seller=SELLER, mailbox=backend.mailbox_settings()),
                                           encoding="utf-8")
        self.clock = Clock(datetime(2027, 2, 1, 8, 0, tzinfo=CHICAGO))
        self.plans = {plan_id: Expected() for plan_id in PLANS}
        self.sent: list[tuple[str, str]] = []
        self.drafts: list[str] = []
        self.held: list[str] = []
        self.outcomes: dict[str, str] = {}
        self.letters_seen: dict[str, bytes] = {}  # our version Message-ID -> the PDF it carried
        self.done = 0
        self.failed: str | None = None

    # --- doing ---

    def service(self) -> Any:
        return Service.open(self.home, self.clock)

    def watch(self) -> PollReport:
        """What `mutualplan watch --once` does: poll, then reminders and the digest by policy."""
        with self.service() as service:
            report = service.poll()
            service.remind(report)
        assert report.errors == [], report.errors
        return report

    def receive(self, raw: bytes) -> PollReport:
        """A message arrives in the seller's mailbox, and the watcher runs."""
        self.backend.deliver(raw)
        return self.watch()

    def message(self, message_id: str, folder: str = "Sent") -> EmailMessage:
        """The seller's copy of one of our emails: what its recipients got, and what they answer."""
        found = [parse(raw) for raw in self.backend.messages(folder) if parse(raw)["Message-ID"] == message_id]
        assert len(found) == 1, f"{len(found)} copies of {message_id} in {folder}"
        return found[0]

    # --- expecting ---

    def expect(self, plan_id: str, *, version: tuple[str, str] | None = None, **fields: Any) -> None:
        """A plan's expectations change: a new version (reason, author), and any of Expected's fields."""
        expected = self.plans[plan_id]
        if version is not None:
            expected.versions.append(version)
        for name, value in fields.items():
            setattr(expected, name, value)

    def expect_sent(self, message_id: str, subject: str) -> None:
        self.sent.append((message_id, subject))

    # --- checking ---

    def check(self) -> None:
        """The whole home against everything expected so far."""
        self._check_plans()
        self._check_folders()
        self._check_archive()

    def _check_plans(self) -> None:
        today = self.clock().astimezone(CHICAGO).date()
        result = CliRunner().invoke(main, ["--home", str(self.root), "status", "--json", "--today", today.isoformat()])
        assert result.exit_code == 0, result.output
        listed = {s["plan_id"]: s for s in json.loads(result.output)["plans"]}
        assert sorted(listed) == sorted(p for p, e in self.plans.items() if e.versions)
        with self.service() as service:
            for plan_id, want in self.plans.items():
                if not want.versions:
                    continue
                status = service.status(plan_id, today)
                assert listed[plan_id] == status  # the command says what the API says
                got = {"version": status["version"], "state": status["state"], "summary": status["summary"],
                       "waiting": status["waiting_on"], "confirmed": status["confirmed"], "held": len(status["held"])}
                assert got == {"version": len(want.versions), "state": want.state, "summary": want.summary,
                               "waiting": want.waiting, "confirmed": sorted(want.confirmed), "held": want.held}, plan_id
                history = [(r.number, r.reason, r.author) for r in service.store.version_records(plan_id)]
                assert history == [(n, *v) for n, v in enumerate(want.versions, 1)], plan_id
            for message_id, disposition in self.outcomes.items():
                record = service.store.message(message_id.strip("<>"))
                assert record is not None, f"{message_id} was not recorded"
                assert record.disposition == disposition, (message_id, record.reason)

    def _check_folders(self) -> None:
        sent = [parse(raw) for raw in self.backend.messages("Sent")]
        # Sorted: Dovecot files a message appended to Sent under its Date, the version's time, not the send's.
        assert sorted((m["Message-ID"], m["Subject"]) for m in sent) == sorted(self.sent)
        for msg in sent:
            mark = parse_plan_mark(msg["X-Mutual-Plan"])
            if mark is not None and addresses(msg, "To") != [SELLER]:
                # Everything the prospect gets about a plan is in its one thread, under its one subject.
                assert msg["Subject"] in (SUBJECTS[mark[0]], f"Re: {SUBJECTS[mark[0]]}"), msg["Message-ID"]
        assert [parse(raw)["Message-ID"] for raw in self.backend.messages("Drafts")] == self.drafts
        assert [parse(raw)["Message-ID"] for raw in self.backend.messages("Held")] == self.held
        for raw in self.backend.messages("INBOX"):
            # Nothing a person wrote is left unhandled; what stays is our own mail to the seller, for them to read.
            assert parse(raw)["Message-ID"].endswith(f"@{DOMAIN}>"), parse(raw)["Message-ID"]
        self.backend.settle([m["Message-ID"] for m in sent if SELLER in addresses(m, "To") + addresses(m, "Cc")])

    def _check_archive(self) -> None:
        """A letter is kept for every version drafted or sent, the PDF its email carried; none for the others."""
        for folder in ("Sent", "Drafts"):
            for raw in self.backend.messages(folder):
                msg = parse(raw)
                mark = parse_plan_mark(msg["X-Mutual-Plan"])
                if mark is None or msg["Message-ID"] != version_id(*mark) or msg["Message-ID"] in self.letters_seen:
                    continue
                pdfs = [data for name, (_, data) in attachments(msg).items() if name.endswith(".pdf")]
                assert len(pdfs) == 1, msg["Message-ID"]
                self.letters_seen[msg["Message-ID"]] = pdfs[0]
        with self.service() as service:
            for plan_id in self.plans:
                kept = {}
                for item in service.store.evidence(plan_id, "letter"):
                    assert item.version not in kept, f"two letters of {plan_id} v{item.version}"
                    kept[item.version] = service.parts.archive.get(item.sha256)
                want = {int(mid.split(".v")[1].split("@")[0]): pdf for mid, pdf in self.letters_seen.items()
                        if mid.startswith(f"<plan.{plan_id}.v")}
                assert kept == want, plan_id

    def run_until(self, steps: list[Step], index: int) -> None:
        """Run the week's `steps` up to `index`, checking the home after each one."""
        if self.failed is not None:
            pytest.skip(f"an earlier step failed: {self.failed}")
        while self.done <= index:
            current = steps[self.done]
            assert self.clock() <= current.at, f"{current.when} comes before the step before it"
            self.clock.now = current.at
            try:
                current.run(self)
                self.check()
            except BaseException as exc:
                self.failed = f"{current.when} {current.title}"
                exc.add_note(f"in step {self.done + 1}, {current.when}: {current.title}")
                raise
            self.done += 1
