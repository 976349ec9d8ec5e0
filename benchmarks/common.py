"""What the benchmarks share: timing, the result table, homes with many plans, and the prospect's replies."""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.demo import START, SimulatedClock, reply  # noqa: E402
from pipeline.home import Home, init_home  # noqa: E402
from pipeline.loop.parts import Parts, settings_of  # noqa: E402
from pipeline.loop.service import Service  # noqa: E402
from pipeline.mailbox.base import Mailbox  # noqa: E402
from pipeline.plan.model import Plan  # noqa: E402
from pipeline.plan.source import parse_plan  # noqa: E402
from pipeline.spool import Spool  # noqa: E402

EXAMPLE = ROOT / "tests" / "fixtures" / "example-plan.md"
SELLER = "jordan.lee@northwind.example"

SETTINGS = """\
[seller]
company = "Northwind Analytics"
name = "Jordan Lee"
title = "Account Executive"
email = "jordan.lee@northwind.example"

[mailbox]
backend = "maildir"

[policy]
changes = "{changes}"

[letter]
letterhead = "northwind"
"""


# --- timing ---------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call takes (wall clock), and what it returned."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def clocked(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds and this process's CPU seconds of one call, and what it returned.

    CPU time leaves out what other processes take from a busy machine (and this one's waits for the disk).
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def spread(values: list[float]) -> dict[str, float]:
    """min, median and max of some timings."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def ms(seconds: float) -> str:
    """A duration for the table: ms with two decimals under 10 ms, one under 10 s, else seconds."""
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    """One line naming the machine and the software versions."""
    cores = len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) / 2**20
    try:
        distro = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text()).group(1)  # type: ignore[union-attr]
    except (OSError, AttributeError):
        distro = platform.system()
    import weasyprint

    load = os.getloadavg()[0]
    return (f"{distro}, Python {platform.python_version()}, WeasyPrint {weasyprint.__version__}, {cores} cores, "
            f"{total:.0f} GB; load average {load:.1f} at the start")


# --- the table ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results: which benchmark, what was measured, the figure, and a note."""

    section: str
    measure: str
    value: str
    note: str = ""


@dataclass
class Results:
    """Rows as they come, printed as one table at the end (and as they come, so a long run shows progress)."""

    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, section: str, measure: str, value: str, note: str = "") -> None:
        row = Row(section, measure, value, note)
        self.rows.append(row)
        print(f"  {section:<10} {measure:<46} {value:>22}  {note}", flush=True)

    def table(self) -> str:
        widths = [max(len(getattr(r, k)) for r in self.rows) for k in ("section", "measure", "value")]
        lines = []
        last = None
        for r in self.rows:
            section = r.section if r.section != last else ""
            last = r.section
            lines.append(f"{section:<{widths[0]}}  {r.measure:<{widths[1]}}  {r.value:>{widths[2]}}  {r.note}".rstrip())
        return "\n".join(lines)


# --- plans and homes ------------------------------------------------------------------------------


def plan_text(n: int | None = None) -> str:
    """The example plan; with `n`, the same plan for another prospect (its own id, company and domain)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    if n is None:
        return text
    return (text.replace("acme-northwind-2027", f"acme{n:03d}-northwind-2027")
            .replace("Acme Corp", f"Acme {n:03d}").replace("acme.example", f"acme{n:03d}.example"))


def example_plan(n: int | None = None) -> Plan:
    return parse_plan(plan_text(n), file="example-plan.md")


def make_home(root: Path, *, changes: str = "auto", plans: int = 0, clock: SimulatedClock | None = None) -> Home:
    """A home at `root` with the seller's settings and `plans` stored plans (version 1 each, nothing sent)."""
    home = init_home(root)
    home.settings_path.write_text(SETTINGS.format(changes=changes), encoding="utf-8")
    if plans:
        store = home.open_store()
        try:
            for n in range(plans):
                plan = example_plan(n)
                store.add_version(plan, author=plan.seller.email, reason="created", created=(clock or START_CLOCK)())
        finally:
            store.close()
    return home


def START_CLOCK() -> datetime:
    return START


def watcher(home: Home, mailbox: Mailbox, clock: Callable[[], datetime]) -> Service:
    """The loop over a home's store, archive and spool, with the given mailbox (the caller closes the store)."""
    return Service(Parts(store=home.open_store(), archive=home.open_archive(), mailbox=mailbox,
                         spool=Spool(home.spool_dir), settings=settings_of(home), clock=clock))


# --- replies --------------------------------------------------------------------------------------


def contact(plan: Plan, first: str) -> tuple[str, str]:
    """(name, address) of the plan's contact with this first name."""
    for c in plan.prospect.contacts:
        if c.name.split()[0] == first:
            return c.name, c.email
    raise KeyError(first)


def answer(plan: Plan, version: int, *, who: str, body: str, when: datetime, key: str,
           auto_reply: bool = False, threaded: bool = True) -> bytes:
    """A reply from one of the plan's contacts to our email of `version`, as a mail client writes it.

    `threaded=False` drops In-Reply-To and References (a forward, some mobile clients): only the subject
    names the plan then.
    """
    ours = f"<plan.{plan.id}.v{version}@{plan.seller.domain}>"
    subject = f"Mutual Plan: {plan.prospect.company} and {plan.seller.company} (version {version})"
    name, address = contact(plan, who)
    raw = reply(sender=(name, address), to=plan.seller.email, subject=subject, in_reply_to=ours,
                references=[ours], when=when, body=body, message_id=f"<{key}@{address.split('@')[1]}>")
    if auto_reply:
        raw = b"Auto-Submitted: auto-replied\nX-Autoreply: yes\n" + raw
    if not threaded:
        head, _, rest = raw.partition(b"\n\n")
        kept = [line for line in head.split(b"\n") if not line.startswith((b"In-Reply-To:", b"References:"))]
        raw = b"\n".join(kept) + b"\n\n" + rest
    return raw


def newsletter(n: int, when: datetime) -> bytes:
    """Mail about no plan (it stays in the Inbox, noticed, untouched)."""
    from email.message import EmailMessage
    from email.utils import format_datetime

    msg = EmailMessage()
    msg["From"] = "Industry Weekly <news@weekly.example>"
    msg["To"] = SELLER
    msg["Subject"] = f"This week in supply chains, issue {n}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<issue.{n}@weekly.example>"
    msg.set_content("Ten things to read this week.\n" * 20)
    return bytes(msg)


QUOTE = (
    "\n\nOn Mon, Jan 11, 2027 at 9:02 AM Jordan Lee <jordan.lee@northwind.example> wrote:\n"
    "> Please reply \"Confirmed\" if this matches our understanding, or tell me what\n> should change.\n"
)

# What each plan's contacts write, in order: a change, a question (sent without the thread's headers, so
# only its subject names the plan), an out-of-office, a confirmation, a second change, mail about no plan,
# a conditional yes, the two confirmations that make it agreed, and a thank-you.
SCRIPT: tuple[tuple[str, str, str], ...] = (
    ("Dana", "change", "Hi Jordan,\n\nCan we move the pilot to March 8? Our Q4 close runs late.\n\nBest,\nDana"),
    ("Kim", "comment", "Jordan, can your team present to our board in February?\n\nKim"),
    ("Raj", "auto", "I am out of the office until Monday with limited access to email.\n\nRaj Patel"),
    ("Dana", "confirm", "Confirmed - thanks Jordan.\n\nDana"),
    ("Raj", "change", "Jordan,\n\nPlease push the kickoff back a week.\n\nRaj"),
    ("", "unrelated", ""),
    ("Dana", "comment", "Confirmed once Kim has reviewed the MSA terms.\n\nDana"),
    ("Dana", "confirm", "Confirmed.\n\nDana"),
    ("Raj", "confirm", "Confirmed.\n\nRaj\n\nSent from my iPhone"),
    ("Dana", "comment", "Great, thank you all. Looking forward to the kick-off.\n\nDana"),
)


def script_message(plan: Plan, version: int, step: int, n: int, when: datetime) -> bytes:
    """Message `step` of SCRIPT for plan number `n`, answering `version`."""
    who, kind, body = SCRIPT[step % len(SCRIPT)]
    if kind == "unrelated":
        return newsletter(n * 100 + step, when)
    return answer(plan, version, who=who, body=body + QUOTE, when=when, key=f"r{step}.p{n}",
                  auto_reply=kind == "auto", threaded=step % len(SCRIPT) != 1)


def now_utc() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
