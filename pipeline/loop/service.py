"""The one place a version is made or sent: the CLI, the watcher, plans typed in mail and reminders all come here.

`make_version` is the only caller of `Store.add_version`; `Service` is the loop as the commands see it (add a plan
source, apply changes, mark a step done, send, approve, poll, remind), over one home's parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pipeline.errors import ChangeError, StoreError
from pipeline.loop import outbox
from pipeline.loop.parts import Clock, Parts, PollReport, open_parts, system_clock
from pipeline.plan.changes import apply as apply_changes
from pipeline.plan.diff import records_progress
from pipeline.plan.model import Change, Plan, Reason, Version, plan_hash
from pipeline.plan.source import parse_plan
from pipeline.replies.interpret import local_date
from pipeline.store import OutboxEntry, Store

if TYPE_CHECKING:
    from pipeline.home import Home
    from pipeline.loop.act import Outcome
    from pipeline.loop.preview import Draft, Edited
    from pipeline.loop.release import Released
    from pipeline.mailbox.base import Mailbox


def make_version(
    store: Store, plan: Plan, *, author: str, reason: Reason, created: datetime,
    changes: Iterable[Change] = (), message_id: str | None = None, expect_number: int | None = None,
) -> Version:
    """Store `plan` as its plan's next version (the one way a version is made).

    On an agreed plan, a version that only records progress (steps done, notes) keeps the agreement; any other
    change reopens it: the plan waits on its confirming contacts again."""
    version = store.add_version(plan, author=author, reason=reason.value, changes=list(changes),
                                message_id=message_id, created=created, expect_number=expect_number)
    # The state first: only an agreed plan needs its outbox read for the version that was agreed.
    if store.plan_state(plan.id) != "agreed":
        return version
    agreed = agreed_version(store, plan.id)
    if agreed is not None and not records_progress(store.version(plan.id, agreed).plan, plan):
        store.set_plan_state(plan.id, "open", at=created, detail={"version": version.number, "agreed": agreed})
    return version


def agreed_version(store: Store, plan_id: str) -> int | None:
    """The version every confirming contact last confirmed (the one the 'agreed' email went out for), if any."""
    agreed = [e.version for e in store.outbox_entries(plan_id) if e.kind == "agreed" and e.version is not None]
    return max(agreed, default=None)


ANNOUNCING = ("plan", "update", "agreed")  # the emails that give the prospect a version of the plan


def last_sent(entries: Iterable[OutboxEntry]) -> OutboxEntry | None:
    """Of a plan's queued emails, the last that gave the prospect a version of the plan (sent, not only drafted)."""
    sent = [e for e in entries if e.kind in ANNOUNCING and e.state == "sent"]
    return max(sent, key=lambda e: (e.version or 0, e.created), default=None)


def queue_plan(store: Store, plan_id: str, *, at: datetime) -> OutboxEntry:
    """Queue the current version's plan email; one that failed is queued again (the same Message-ID)."""
    version = store.current(plan_id)
    if version is None:
        raise StoreError(f"no plan {plan_id!r} in the store", hint="add one first with `mutualplan add PLAN.md`")
    before = last_sent(store.outbox_entries(plan_id))
    if before is not None and before.version is not None and before.version < version.number:
        # The prospect has an earlier version: this one is an update, with what changed since the one they have.
        entry = outbox.seller_update(version, since=before.version, thread=(*before.references, before.message_id))
    else:
        entry = outbox.plan_email(version)
    queued = store.outbox_entry(entry.message_id)
    if queued is None:
        store.queue_email(entry, at=at)
    elif queued.state == "failed":
        # The seller fixed what stopped it (an address, the server): the same email, same Message-ID, again.
        store.outbox_mark(queued.message_id, "pending", at=at)
        return queued
    return entry


@dataclass(frozen=True)
class Added:
    """What `add_source` did: the version before, the version stored (None when nothing changed); for a file written
    from an older version, that version, the versions since whose changes it keeps, and what --revert undid."""

    previous: Version | None
    version: Version | None
    plan: Plan
    base: int | None = None
    kept: tuple[Version, ...] = ()
    undone: tuple[str, ...] = ()


@dataclass(frozen=True)
class Applied:
    """What `apply` did: the version the changes applied to, and the new one (None when nothing changed)."""

    previous: Version
    version: Version | None
    plan: Plan


class Service:
    """The loop as the commands see it, over one home's parts."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    @classmethod
    @contextmanager
    def open(cls, home: Home, clock: Clock = system_clock, mailbox: Mailbox | None = None) -> Iterator[Service]:
        """The service of a home: its settings, store, archive and spool, and its mailbox when first used."""
        with open_parts(home, clock, mailbox) as parts:
            yield cls(parts)

    @property
    def store(self) -> Store:
        return self.parts.store

    def now(self) -> datetime:
        return self.parts.clock()

    def current(self, plan_id: str) -> Version:
        """The current version of a stored plan, or a StoreError naming the plans there are."""
        current = self.store.current(plan_id)
        if current is None:
            ids = self.store.plan_ids()
            hint = "stored plans: " + ", ".join(ids) if ids else "add one first with `mutualplan add PLAN.md`"
            raise StoreError(f"no plan {plan_id!r} in the store", hint=hint)
        return current

    def version(self, plan_id: str, number: int | None = None) -> Version:
        """Version `number` of a stored plan (the current one when None); a StoreError says which there are."""
        current = self.current(plan_id)
        return current if number is None or number == current.number else self.store.version(plan_id, number)

    # --- making versions ------------------------------------------------------------------------

    def add_source(self, text: str, *, file: str, author: str | None = None,
                   defaults: Mapping[str, Any] | None = None, revert: bool = False) -> Added:
        """Store plan source as version 1 of a new plan, or as the next version of its stored plan (a seller edit);
        the same content again makes no version.

        The file's edits count from the version it was written from (`version:`, else the latest version the seller
        wrote whole): changes made since are kept, and where the file changes them too a StoreError lists what it
        would undo, unless `revert`. A file without `id:` never becomes a version of another prospect's plan."""
        from pipeline.loop import seller_file

        defaults = dict(defaults or self.parts.settings.plan_defaults())
        first = parse_plan(text, file=file, defaults=defaults)
        marks = seller_file.marks(text, file)
        plan_id, current = seller_file.plan_for(self.store, first, explicit=marks.plan_id is not None, file=file)
        if current is None:
            if marks.version is not None:
                raise StoreError(f"{file}: there is no plan {plan_id} to have a version {marks.version}",
                                 hint="remove the `version:` line to add the file as a new plan")  # fmt: skip
            plan = replace(first, id=plan_id)
            version = make_version(self.store, plan, author=(author or plan.seller.email or "seller").lower(),
                                   reason=Reason.CREATED, created=self.now(), expect_number=1)  # fmt: skip
            return Added(None, version, plan)
        # Rows written without an id are numbered after every id the plan ever used, never reusing one.
        plan = parse_plan(text, file=file, defaults={"next_milestone": current.plan.next_number, **defaults})
        plan = replace(plan, id=plan_id, next_number=max(plan.next_number, current.plan.next_number))
        base = seller_file.base_of(self.store, plan_id, current, marks.version, file)
        rebased = seller_file.rebase(self.store, plan, current, base, revert=revert, file=file)
        found = Added(current, None, rebased.plan, base.number, rebased.kept, rebased.undone)
        if plan_hash(rebased.plan) == current.hash:
            return found
        version = make_version(
            self.store, rebased.plan, author=(author or plan.seller.email or "seller").lower(),
            reason=Reason.SELLER_EDIT, created=self.now(), expect_number=current.number + 1,
        )
        return replace(found, version=version)

    def apply_changes(self, plan_id: str, changes: list[Change], *, author: str | None = None,
                      today: Any = None) -> Applied:
        """Apply changes to the current version as the next one, all or nothing (a ChangeError names why)."""
        current = self.current(plan_id)
        day = today or local_date(self.now(), current.plan.timezone)
        plan = apply_changes(current.plan, changes, today=day)
        if plan_hash(plan) == current.hash:
            return Applied(current, None, plan)
        version = make_version(
            self.store, plan, author=(author or current.plan.seller.email or "seller").lower(), reason=Reason.CHANGES,
            changes=changes, created=self.now(), expect_number=current.number + 1,
        )
        return Applied(current, version, plan)

    def mark_done(self, plan_id: str, milestone: str, *, author: str) -> Version:
        """Mark a step done, as the seller: the next version, with that step's status done."""
        current = self.current(plan_id)
        state = self.store.plan_state(plan_id)
        if state in ("declined", "closed"):
            raise StoreError(f"plan {plan_id} is {state}; nothing changes", hint="a closed plan keeps its last version")
        key = milestone.strip().upper().lstrip("#")
        key = f"M{key}" if key.isdigit() else key
        step = current.plan.milestone(key)
        if step is not None and step.status == "done":
            raise ChangeError(f"{step.id} ({step.title}) is done already in version {current.number}")
        change = Change(op="status", milestone=key, status="done")
        plan = apply_changes(current.plan, [change], today=local_date(self.now(), current.plan.timezone))
        return make_version(self.store, plan, author=author or current.plan.seller.email, reason=Reason.MARKED_DONE,
                            changes=[change], created=self.now(), expect_number=current.number + 1)

    # --- sending --------------------------------------------------------------------------------

    def queue_plan(self, plan_id: str) -> OutboxEntry:
        """Queue the current version's plan email, to be sent by the next flush (a team's send job)."""
        self.current(plan_id)
        return queue_plan(self.store, plan_id, at=self.now())

    def outgoing(self) -> bool:
        """Whether anything waits to go out or to be taken out of Drafts (a send job has work)."""
        return bool(self.store.outbox_pending() or self.store.outbox_in_state("superseding"))

    def prerender(self) -> tuple[int, PollReport]:
        """Render and keep the letters of everything queued (no mailbox needed); how many emails wait, and errors."""
        from pipeline.loop.deliver import prerender

        report = PollReport()
        return prerender(self.parts, report), report

    def send_plan(self, plan_id: str) -> tuple[OutboxEntry, PollReport]:
        """Queue the current version's plan email and send what is queued."""
        self.current(plan_id)
        entry = queue_plan(self.store, plan_id, at=self.now())
        return entry, self.flush()

    def flush(self, *, drafts: bool = True) -> PollReport:
        """Send (or draft) everything queued."""
        from pipeline.loop.deliver import flush

        report = PollReport()
        flush(self.parts, report, drafts=drafts)
        return report

    def approve(self, plan_id: str) -> list[str]:
        """Send the follow-ups of a plan that wait in Drafts, as the seller would from their mail client."""
        from pipeline.loop.deliver import approve

        self.current(plan_id)
        return approve(self.parts, plan_id)

    def send_version(self, version: Version) -> PollReport:
        """Send a version (the seller's own, such as a step marked done) to the prospect's people now."""
        queue_plan(self.store, version.plan_id, at=self.now())
        return self.flush(drafts=False)

    # --- reading ----------------------------------------------------------------------------------

    def status(self, plan_id: str, today: date) -> dict[str, Any]:
        """A plan's state for `status`: version, agreed or waiting on whom, next steps, held messages."""
        from pipeline.loop.status import plan_status

        self.current(plan_id)
        return plan_status(self.store, plan_id, today)

    def authentication(self) -> dict[str, Any]:
        """Whether replies are authenticated and, if not, how to turn it on (`status`)."""
        from pipeline.loop.status import authentication

        return authentication(self.store, self.parts.settings)

    def reminders(self, plan_id: str, on: bool | None = None) -> dict[str, Any]:
        """Whether a plan's reminders are on (switched first when `on` is given), and what they owe today."""
        from pipeline.loop import reminders

        self.current(plan_id)
        if on is not None:
            reminders.switch(self.store, plan_id, on, at=self.now())
        return reminders.overview(self.store, self.parts.settings, plan_id, self.now())

    # --- the watcher ----------------------------------------------------------------------------

    def poll(self, *, send: bool = True) -> PollReport:
        """Fetch new mail, handle it, and send what follows from it (`send=False`: only queue it)."""
        from pipeline.loop.runner import poll

        return poll(self.parts, send=send)

    def remind(self, report: PollReport, *, send: bool = True) -> None:
        """Queue, by policy, the reminders due now and this week's digest, and send them (unless not `send`)."""
        from pipeline.loop import reminders
        from pipeline.loop.deliver import flush

        now = self.now()
        reminders.queue_reminders(self.store, self.parts.settings, now)
        reminders.queue_digest(self.store, self.parts.settings, now)
        if send:
            flush(self.parts, report, drafts=False)

    # --- the seller's own word --------------------------------------------------------------------

    def confirm_on_call(self, plan_id: str, contact: str, *, note: str,
                        version: int | None = None) -> tuple[Outcome, PollReport]:
        """Record a confirming contact's confirmation given on a call, as the seller's word; the last one makes the
        plan agreed and its email goes out, as the watcher does it. Returns the outcome and what was sent."""
        from pipeline.loop.seller_actions import confirm_on_call

        self.current(plan_id)
        outcome = confirm_on_call(self.parts, plan_id, contact, note=note, version=version)
        return outcome, self.flush(drafts=False)

    def certificate(self, plan_id: str) -> tuple[str, bytes]:
        """The certificate of agreement of an agreed plan, as its bundle exported now would hold it: name, PDF."""
        from pipeline.loop.certificate import on_demand

        return on_demand(self.store, self.parts.archive, plan_id)

    def reopen(self, plan_id: str, *, note: str | None = None) -> str:
        """Reopen a plan the prospect declined; returns its new state."""
        from pipeline.loop.seller_actions import reopen

        self.current(plan_id)
        return reopen(self.parts, plan_id, note=note)

    def release(self, message_id: str) -> tuple[Released, PollReport]:
        """Handle a message the watcher held as if new, with the hold that stopped it lifted, and send what follows."""
        from pipeline.loop.release import release

        released = release(self.parts, message_id)
        return released, self.flush(drafts=False)

    def preview(self, plan_id: str) -> list[Draft]:
        """The emails of a plan that wait for the seller, rendered as they would go; nothing sent or kept."""
        from pipeline.loop.preview import preview

        self.current(plan_id)
        return preview(self.parts, plan_id)

    def edit_ask(self, plan_id: str, asks: list[str]) -> Edited:
        """Replace (or, with none, drop) the suggested ask of the plan's follow-up that waits for review."""
        from pipeline.loop.preview import edit_ask

        self.current(plan_id)
        return edit_ask(self.parts, plan_id, asks)

    def outbox(self, plan_id: str | None = None, *, cancel: str | None = None) -> list[OutboxEntry]:
        """The emails that wait or failed (of one plan, or all), oldest first; with `cancel`, that one email is
        cancelled first (audited): an email that can never go is cleared so, and returned alone."""
        store = self.store
        if cancel is not None:
            from pipeline.plan.ids import bracketed

            with self.parts.sending():  # not while a watcher sends it
                entry = store.outbox_entry(bracketed(cancel.strip()))
                if entry is None:
                    raise StoreError(f"no email {cancel} in the outbox", hint="`mutualplan outbox` lists them")
                if entry.state not in ("pending", "sending", "failed"):
                    raise StoreError(f"email {entry.message_id} is {entry.state}: only one that waits or failed "
                                     "can be cancelled", hint="one in your Drafts: delete it there")
                if entry.state == "sending" and self.parts.mailbox.was_sent(entry.message_id):
                    store.outbox_mark(entry.message_id, "sent", at=self.now())
                    raise StoreError(f"email {entry.message_id} went out already: it is recorded as sent")
                store.outbox_mark(entry.message_id, "cancelled", at=self.now(), error=entry.error)
                return [replace(entry, state="cancelled")]
        if plan_id is not None:
            self.current(plan_id)
            found = [e for e in store.outbox_entries(plan_id) if e.state in ("pending", "sending", "failed")]
        else:
            found = [e for state in ("pending", "sending", "failed") for e in store.outbox_in_state(state)]
        return sorted(found, key=lambda e: (e.created, e.message_id))
