"""The certificate of agreement: who confirmed which version, when, in which email, how we know it was them.

It says for an agreement made by email what an e-signature service's certificate says for an envelope: the
document's hash, each signer's event with its time and how they were authenticated, and the chain of versions.
Rendered as PDF/A-3b with its facts embedded as certificate.json; the same facts give the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup
from weasyprint import HTML, Attachment

from pipeline.errors import RenderError
from pipeline.render.format import parse_created
from pipeline.render.templates import default_templates

PDF_VARIANT = "pdf/a-3b"
TEMPLATE = "certificate/certificate.html.j2"
NO_AUTHENTICATION = "no authentication"


@dataclass(frozen=True)
class Signer:
    """One confirmation of the agreed version: by a contact's email, or recorded by the seller by hand."""

    name: str
    email: str
    at: str  # when the confirmation was recorded (UTC)
    message_id: str | None = None  # the confirming email's; None for one the seller recorded
    date: str | None = None  # its Date header, as written
    received: str | None = None  # when we received it (UTC)
    email_sha256: str | None = None  # the SHA-256 of the email as received (its file in the bundle)
    authentication: tuple[str, ...] = (NO_AUTHENTICATION,)  # the verdicts, one a line
    dkim_key: str | None = None  # the DKIM key record our check used, as it read then
    words: str = ""  # the confirming words as written
    by_seller: bool = False
    note: str | None = None
    recorded_by: str | None = None


@dataclass(frozen=True)
class Link:
    """One version in the chain: its hash and parent's, who asked, why, when it was sent and to whom."""

    number: int
    hash: str
    parent_hash: str | None
    author: str
    reason: str
    created: str
    message_id: str | None = None  # the email that asked for it
    changes: tuple[str, ...] = ()  # what it changed, one a change: "move M3", "add M4"
    sent: str | None = None
    to: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    """Everything the certificate states."""

    plan_id: str
    title: str  # "Acme Corp and Northwind Analytics"
    version: int  # the agreed version
    version_hash: str
    letter_sha256: str | None
    agreed_at: str
    signers: tuple[Signer, ...]
    chain: tuple[Link, ...]
    manifest_sha256: str
    manifest_note: str  # what that manifest is: the bundle's evidence, as of when
    seller: str = ""

    def to_json(self) -> bytes:
        """The facts as canonical JSON, embedded in the PDF for a machine to read."""
        return (json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def certificate_html(facts: Facts, templates: Path | None = None) -> str:
    """The certificate as HTML."""
    folder = templates or default_templates()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    try:
        # The stylesheet is ours, shipped beside the template: trusted, and inside <style> not to be escaped.
        css = Markup((folder / "certificate" / "certificate.css").read_text(encoding="utf-8"))
        return env.get_template(TEMPLATE).render(facts=facts, css=css)
    except (jinja2.TemplateError, OSError) as exc:
        raise RenderError(f"the certificate template failed: {type(exc).__name__}: {exc}",
                          hint=f"check {folder / TEMPLATE} and certificate.css beside it") from exc


def certificate_pdf(facts: Facts, templates: Path | None = None) -> bytes:
    """The certificate as PDF/A-3b; every date in it comes from `facts.agreed_at`, never the clock."""
    html = certificate_html(facts, templates)
    when = parse_created(facts.agreed_at)
    document = HTML(string=html).render()
    meta = document.metadata
    meta.title = f"Certificate of agreement: {facts.title}, version {facts.version}"
    meta.authors = [facts.seller] if facts.seller else []
    meta.description = f"Mutual Plan {facts.plan_id}: version {facts.version} agreed by email"
    meta.keywords = ["Mutual Plan", "certificate of agreement", facts.plan_id]
    meta.generator = "mutualplan"
    meta.created = meta.modified = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    meta.lang = "en"
    meta.attachments = [Attachment(string=facts.to_json(), name="certificate.json", created=when, modified=when,
                                   description="The facts of this certificate as data", relationship="Data")]
    pdf: bytes = document.write_pdf(pdf_variant=PDF_VARIANT, finisher=_one_entry_per_attachment)
    return pdf


def _one_entry_per_attachment(document: object, pdf: object) -> None:
    from pipeline.render.letter import _one_entry_per_attachment as dedupe

    dedupe(document, pdf)
