"""The certificate of agreement's facts, read from the store and the archive; the certificate kept once per version.

Three callers: the 'agreed' email attaches it (rendered once and kept, so a retry sends the same bytes), the
archive export adds it to the bundle over the manifest of everything else (`certify_bundle`), and
`mutualplan archive certificate` writes it on demand.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING, Any

from pipeline.archive import Archive, sha256
from pipeline.errors import ArchiveError
from pipeline.evidence import evidence_manifest
from pipeline.loop.service import ANNOUNCING, agreed_version
from pipeline.render.certificate import NO_AUTHENTICATION, Facts, Link, Signer, certificate_pdf
from pipeline.render.format import parse_created
from pipeline.replies.auth import aligned, domain_of
from pipeline.store import AuthRecord, Confirmation, Store

if TYPE_CHECKING:
    from pipeline.plan.model import Plan

MAX_WORDS = 4000  # the confirming words as written; a reply that long is a letter, and the .eml holds all of it
def require_agreed(store: Store, plan_id: str) -> int:
    """The plan's agreed version; an ArchiveError saying why there is none."""
    number = agreed_version(store, plan_id)
    if number is not None:
        return number
    if not store.has_plan(plan_id):
        raise ArchiveError(f"no plan {plan_id!r} in the store", hint="`mutualplan status` lists the plans")
    raise ArchiveError(f"plan {plan_id} has not been agreed: there is no agreement to certify",
                       hint=f"`mutualplan status {plan_id}` shows whose confirmation it waits on")


def facts(store: Store, archive: Archive, plan_id: str, *, manifest_sha256: str, manifest_note: str,
          version: int | None = None) -> Facts:
    """What the certificate of the plan's agreed version (or `version`) states."""
    number = version or require_agreed(store, plan_id)
    agreed = store.version(plan_id, number)
    plan = agreed.plan
    confirmations = [c for c in store.confirmation_records(plan_id) if c.version == number]
    letters = [e.sha256 for e in store.evidence(plan_id, "letter") if e.version == number]
    return Facts(
        plan_id=plan_id, title=f"{plan.prospect.company} and {plan.seller.company}", version=number,
        version_hash=agreed.hash, letter_sha256=letters[0] if letters else None,
        agreed_at=max((c.at for c in confirmations), default=agreed.created),
        signers=tuple(_signer(store, archive, plan, c) for c in confirmations),
        chain=_chain(store, plan_id), manifest_sha256=manifest_sha256, manifest_note=manifest_note,
        seller=", ".join(p for p in (plan.seller.name, plan.seller.email) if p),
    )


def _signer(store: Store, archive: Archive, plan: Plan, confirmation: Confirmation) -> Signer:
    contact = plan.contact(confirmation.email)
    name = contact.name if contact is not None else confirmation.email
    if confirmation.by_seller:
        return Signer(name=name, email=confirmation.email, at=confirmation.at, by_seller=True,
                      note=confirmation.note, recorded_by=confirmation.recorded_by,
                      authentication=("none: the seller's word, recorded by hand",))
    record = store.message(confirmation.message_id)
    raw = archive.get(record.raw_sha256) if record is not None and archive.has(record.raw_sha256) else b""
    auth = store.authentication(confirmation.message_id)
    return Signer(
        name=name, email=confirmation.email, at=confirmation.at, message_id=confirmation.message_id,
        date=_date(raw), received=record.received if record else None,
        email_sha256=record.raw_sha256 if record else None,
        authentication=authentication_lines(auth, confirmation.email),
        dkim_key=auth.dkim_key if auth is not None else None, words=_words(raw),
    )


def authentication_lines(auth: AuthRecord | None, sender: str) -> tuple[str, ...]:
    """How the sender was authenticated, one verdict a line; "no authentication" when nothing vouches for it."""
    if auth is None:
        return (NO_AUTHENTICATION, "(no check was kept for this message)")
    lines = [f"{r['method']}={r['result']} (Authentication-Results from trusted host {r['authserv_id']})"
             for r in auth.results]
    where = " ".join(f"{k}={v}" for k, v in (("d", auth.dkim_domain), ("s", auth.dkim_selector)) if v)
    ours = f"our own DKIM check: {auth.dkim}" + (f" ({where})" if where else "")
    if auth.dkim_reason and auth.dkim != "pass":
        ours += f": {auth.dkim_reason}"
    # A signature of another domain (a mailing list's, a bulk sender's) proves who signed, not who wrote: it
    # vouches for the sender only when its domain is the sender's, as acting on mail requires (replies/auth.py).
    own_domain = domain_of(sender)
    ours_aligned = auth.dkim == "pass" and aligned(domain_of(auth.dkim_domain), own_domain)
    if auth.dkim == "pass" and not ours_aligned:
        ours += f", but signed by another domain than the sender's ({own_domain})"
    vouched = ours_aligned or any(r["result"] == "pass" for r in auth.results)
    return tuple([*lines, ours] if vouched else [NO_AUTHENTICATION, *lines, ours])


def _date(raw: bytes) -> str | None:
    if not raw:
        return None
    value = BytesHeaderParser(policy=policy.compat32).parsebytes(raw).get("Date")
    return " ".join(str(value).split())[:200] if value else None


def _words(raw: bytes) -> str:
    """The sender's own words, as written (the quoted letter below them left out)."""
    if not raw:
        return ""
    from pipeline.replies.extract import new_text
    from pipeline.replies.message import Incoming

    text = new_text(Incoming.from_bytes(raw)).strip()
    return text if len(text) <= MAX_WORDS else text[:MAX_WORDS] + " [...]"


def _chain(store: Store, plan_id: str) -> tuple[Link, ...]:
    """Every version: its hash and parent's, who asked and why, and when its email went to whom."""
    sent: dict[str, str] = {}
    for entry in store.audit_log(plan_id):
        if entry.event == "email sent" and entry.detail.get("message_id"):
            sent.setdefault(str(entry.detail["message_id"]), entry.at)
    emails: dict[int, tuple[str, tuple[str, ...]]] = {}
    for e in store.outbox_entries(plan_id):
        if e.kind in ANNOUNCING and e.version and e.message_id in sent and e.version not in emails:
            emails[e.version] = (sent[e.message_id], (*e.to, *e.cc))
    return tuple(
        Link(number=r.number, hash=r.hash, parent_hash=r.parent_hash, author=r.author, reason=r.reason,
             created=r.created, message_id=r.message_id, changes=tuple(_change(c) for c in r.changes),
             sent=emails.get(r.number, (None, ()))[0],
             to=emails.get(r.number, (None, ()))[1])
        for r in store.version_records(plan_id)
    )


def _change(change: dict[str, Any]) -> str:
    """A change in a few words: its kind and what it touched ("move M3", "retarget 2027-04-15")."""
    target = change.get("milestone") or change.get("title") or change.get("target") or ""
    return f"{change.get('op')} {target}".strip()


# --- the three callers ------------------------------------------------------------------------------


def certificate_name(version: int) -> str:
    """The certificate's file name, in the bundle and on the email."""
    return f"certificate-of-agreement-v{version:03d}.pdf"


def certify_bundle(store: Store, archive: Archive, plan_id: str, files: dict[str, bytes],
                   manifest: dict[str, Any]) -> dict[str, Any]:
    """Add the certificate of agreement to a bundle (an agreed plan's only), over the manifest of the rest."""
    number = agreed_version(store, plan_id)
    if number is None:
        return manifest
    digest = sha256(evidence_manifest(manifest))
    note = ("the SHA-256 of this bundle's manifest.json without the certificate's own entry and its "
            "\"certificate\" key (`mutualplan archive verify` checks it)")
    pdf = certificate_pdf(facts(store, archive, plan_id, manifest_sha256=digest, manifest_note=note))
    name = certificate_name(number)
    files[name] = pdf
    files_listed = dict(manifest["files"])
    files_listed[name] = {"sha256": sha256(pdf), "size": len(pdf)}
    return {**manifest, "files": dict(sorted(files_listed.items())),
            "certificate": {"file": name, "version": number, "evidence_manifest_sha256": digest}}


def agreement_certificate(store: Store, archive: Archive, plan_id: str, version: int, *, keep: bool = True) -> bytes:
    """The certificate the 'agreed' email carries: rendered once and kept, so a retry attaches the same bytes.

    `keep=False` (a preview): one not kept yet is rendered and returned, not kept."""
    kept = [e for e in store.evidence(plan_id, "certificate") if e.version == version]
    if kept:
        return archive.get(kept[0].sha256)
    from pipeline.archive import bundle_contents

    _, manifest = bundle_contents(store, archive, plan_id, certify=False)
    found = facts(store, archive, plan_id, version=version, manifest_sha256=sha256(evidence_manifest(manifest)),
                  manifest_note="the SHA-256 of the manifest.json `mutualplan archive export` would have written "
                                "when the plan was agreed, before this certificate")
    pdf = certificate_pdf(found)
    if keep:
        digest = archive.put(pdf)
        store.add_evidence(plan_id, version, digest, "certificate", at=parse_created(found.agreed_at))
    return pdf


def on_demand(store: Store, archive: Archive, plan_id: str) -> tuple[str, bytes]:
    """The certificate an export would put in the plan's bundle now: its file name and PDF."""
    from pipeline.archive import bundle_contents
    from pipeline.redline import render_redline

    require_agreed(store, plan_id)
    # The redlines rendered as an export renders them, so the manifest hash it states is the bundle's, byte for byte.
    files, manifest = bundle_contents(store, archive, plan_id, redline=render_redline)
    name = manifest["certificate"]["file"]
    return name, files[name]
