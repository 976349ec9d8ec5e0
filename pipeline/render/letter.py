"""The plan letter: plan (+ the changes since an earlier version) -> HTML from a letterhead -> PDF/A-3b bytes.

    letter = render_letter(plan, version=2, created=version.created, diff=diff(v1.plan, v2.plan, ...))
    Path("letter.pdf").write_bytes(letter.pdf)

One plan version always gives the same bytes: every date in the PDF comes from `created`, never the clock.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup
from weasyprint import HTML, Attachment

from pipeline.errors import RenderError
from pipeline.plan.diff import PlanDiff
from pipeline.plan.model import SECTION_KINDS, Plan, canonical_json
from pipeline.render.format import (
    change_rows,
    days_phrase,
    days_to_target,
    directed_html,
    ensure_version,
    isolate,
    letter_date,
    long_date,
    parse_created,
    short_date,
    timeline_rows,
)
from pipeline.render.gantt import GanttStyle, timeline_svg
from pipeline.render.letterhead import LETTER_TEMPLATE, Letterhead, load_letterhead
from pipeline.render.safe import markdown_html, redline_html

PDF_VARIANT = "pdf/a-3b"
SUMMARY_KINDS = ("vision", "issues", "solutions", "value")
# Where a free section goes: after the canonical section it follows in the source.
_SLOT_OF_KIND = {"vision": "summary", "issues": "summary", "solutions": "summary", "value": "summary",
                 "timeline": "timeline", "decision": "decision", "cta": "cta"}  # fmt: skip


@dataclass(frozen=True)
class Letter:
    """A rendered letter: its HTML, its PDF bytes and how many pages it has."""

    html: str
    pdf: bytes
    pages: int
    letterhead: str
    missing: tuple[str, ...] = ()  # characters no font could draw ("U+682A"): the PDF shows empty boxes for them


def letter_title(plan: Plan, version: int) -> str:
    """`Mutual Plan: <Prospect> and <Seller> (version N)`: the letter's title, the companies' full names."""
    return f"Mutual Plan: {plan.prospect.company} and {plan.seller.company} (version {version})"


def letter_context(
    plan: Plan, *, version: int, created: datetime | str, diff: PlanDiff | None = None, inline_styles: bool = True
) -> dict[str, Any]:
    """Everything the letter templates see (documented in docs/letterheads.md).

    `inline_styles` puts the CSS in a <style> element, for HTML read on its own; the PDF path passes the
    letterhead's stylesheet parsed once instead.
    """
    version = ensure_version(version)
    created = parse_created(created)
    today = letter_date(plan, created)
    rows = timeline_rows(plan)
    sections, free = _sections(plan)
    days = days_to_target(plan, today)
    confirmers = list(plan.confirmers)

    def picture(**style: Any) -> Markup:
        return timeline_svg(
            rows,
            today=today,
            target=plan.target,
            seller=plan.seller.company,
            buyer=plan.prospect.company,
            after_heading=plan.after_heading,
            style=GanttStyle(**style),
        )

    return {
        "plan": plan,
        "inline_styles": inline_styles,
        "seller": plan.seller,
        "prospect": plan.prospect,
        "version": version,
        "created": created,
        "today": today,
        "letter_date": long_date(today),
        "subject": letter_title(plan, version),
        "plan_ref": f"{plan.id} · version {version}",
        "target": plan.target,
        "target_text": long_date(plan.target) if plan.target else "",
        "target_short": short_date(plan.target) if plan.target else "",
        "days_left": days,
        "days_phrase": days_phrase(days),
        "sections": sections,
        "summary": [sections[k] for k in SUMMARY_KINDS if sections[k]],
        "free": free,
        "rows": rows,
        "before_rows": [r for r in rows if r.phase != "after"],
        "after_rows": [r for r in rows if r.phase == "after"],
        "after_heading": plan.after_heading,
        "address_lines": address_lines(plan.prospect.address),
        "seller_address_lines": address_lines(plan.seller.address),
        "confirmers": confirmers,
        "salutation": _salutation(plan),
        "changes": _changes(plan, diff),
        "timeline_svg": picture,
        "short_date": short_date,
        "long_date": long_date,
    }


def _sections(plan: Plan) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The canonical sections by kind, and the free ones by the slot of the canonical section they follow."""
    sections: dict[str, Any] = dict.fromkeys(SECTION_KINDS)  # every kind present, None when the plan lacks it
    free: dict[str, list[dict[str, Any]]] = {"summary": [], "timeline": [], "decision": [], "cta": []}
    slot = "summary"
    for section in plan.sections:
        html = directed_html(markdown_html(section.body))
        block = {"heading": section.heading, "kind": section.kind, "html": html, "short": _short(section.body)}
        if section.kind:
            sections[section.kind] = block
            slot = _SLOT_OF_KIND.get(section.kind, slot)
        else:
            free[slot].append(block)
    return sections, free


# A section this small moves to the next page whole rather than leave its heading and a line or two behind.
_SHORT_CHARS = 700
_SHORT_LINES = 12


def _short(body: str) -> bool:
    """Whether a section's Markdown is short enough (about a third of a page) to be kept on one page."""
    return len(body) <= _SHORT_CHARS and sum(1 for line in body.splitlines() if line.strip()) <= _SHORT_LINES


def _changes(plan: Plan, diff: PlanDiff | None) -> dict[str, Any] | None:
    """What the letter's "Changes since version N" shows; None without a diff."""
    changes = None
    if diff is not None and not diff.is_empty:
        changes = {
            "old_version": diff.old_version,
            "rows": change_rows(plan, diff),
            "texts": [{"heading": t.heading, "ops": t.ops, "html": redline_html(t.ops)} for t in diff.texts],
            "changed_ids": diff.changed_ids,
        }
    elif diff is not None:
        changes = {"old_version": diff.old_version, "rows": [], "texts": [], "changed_ids": set()}
    return changes


_REGION_AND_CODE = re.compile(r"^[A-Z]{2}\s+\d{5}(-\d{4})?$")


def address_lines(address: tuple[str, ...]) -> list[str]:
    """Address lines as written, except that a lone "OR 97201" joins its city ("Portland, OR 97201"):
    the YAML list `[200 Harbor Way, Portland, OR 97201]` splits it at the comma."""
    lines: list[str] = []
    for part in address:
        part = part.strip()
        if lines and _REGION_AND_CODE.match(part) and "," not in lines[-1]:
            lines[-1] = f"{lines[-1]}, {part}"
        elif part:
            lines.append(part)
    return lines


def _salutation(plan: Plan) -> Markup:
    names = [c.name.split()[0] for c in plan.confirmers if c.name.split()] or [
        c.name.split()[0] for c in plan.prospect.contacts if c.name.split()
    ]
    # Each name isolated: two right-to-left names in a row would otherwise swap places around the comma.
    shown = [isolate(n) for n in names]
    if not shown:
        return Markup("Dear {} team,").format(isolate(plan.prospect.company))
    if len(shown) == 1:
        return Markup("Dear {},").format(shown[0])
    return Markup("Dear {} and {},").format(Markup(", ").join(shown[:-1]), shown[-1])


def letter_html(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    diff: PlanDiff | None = None,
    letterhead: str | None = None,
    templates: Path | None = None,
) -> str:
    """The letter as HTML; relative URLs (fonts, logo) resolve inside the letterhead's folder."""
    head = load_letterhead(letterhead or plan.letterhead, templates)
    return _html(head, letter_context(plan, version=version, created=created, diff=diff))


_INDENT = re.compile(r"\n[ \t]+")
_PRE = re.compile(r"(<pre[\s>].*?</pre>)", re.S)


def _unindent(html: str) -> str:
    # The templates' indentation is a third of the HTML, and WeasyPrint's pure-Python parser reads every
    # byte; <pre> blocks keep theirs.
    return "".join(part if part.startswith("<pre") else _INDENT.sub("\n", part) for part in _PRE.split(html))


def _html(head: Letterhead, context: dict[str, Any]) -> str:
    try:
        return _unindent(head.env.get_template(LETTER_TEMPLATE).render(context))
    except Exception as exc:  # a letterhead's template is code written by people: say which one failed
        raise RenderError(
            f"letterhead {head.name!r} failed to render: {type(exc).__name__}: {exc}",
            hint=f"check templates/letterhead/{head.name}/{LETTER_TEMPLATE}",
        ) from exc


def render_letter(
    plan: Plan,
    *,
    version: int,
    created: datetime | str,
    diff: PlanDiff | None = None,
    letterhead: str | None = None,
    templates: Path | None = None,
) -> Letter:
    """Render the letter to PDF/A-3b with `plan.json` (the canonical plan) embedded.

    `created` is the version's timestamp (a datetime, or Version.created's ISO string; naive means UTC):
    it gives the letter's date, the PDF's dates and the attachment's dates. `diff`, when given, makes
    the letter open with "Changes since version N". `letterhead` overrides the plan's own.
    """
    created = parse_created(created)
    head = load_letterhead(letterhead or plan.letterhead, templates)
    html = _html(head, letter_context(plan, version=version, created=created, diff=diff, inline_styles=False))
    with head.lock, _collector_paused(), _missing_glyphs() as missing:
        document = HTML(string=html, base_url=head.base_url, url_fetcher=head.fetcher).render(
            stylesheets=[head.stylesheet()], font_config=head.fonts
        )
        stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
        meta = document.metadata
        meta.title = letter_title(plan, version)
        meta.authors = [", ".join(p for p in (plan.seller.name, plan.seller.company) if p)]
        meta.description = f"Mutual Plan between {plan.prospect.company} and {plan.seller.company}" + (
            f", target {long_date(plan.target)}" if plan.target else ""
        )
        meta.keywords = ["Mutual Plan", plan.id, f"version {version}"]
        meta.generator = "mutualplan"
        meta.created = meta.modified = stamp
        meta.lang = "en"
        meta.attachments = [
            Attachment(
                string=canonical_json(plan).encode("utf-8"),
                name="plan.json",
                description=f"Mutual Plan {plan.id}, version {version}: the plan as data",
                created=created,
                modified=created,
                relationship="Source",
                url_fetcher=head.fetcher,
            )
        ]
        pdf = document.write_pdf(pdf_variant=PDF_VARIANT, finisher=_one_entry_per_attachment)
    return Letter(html=html, pdf=pdf, pages=len(document.pages), letterhead=head.name, missing=tuple(missing))


class _MissingGlyphs(logging.Handler):
    """Collects, from WeasyPrint's warnings in this thread, the characters it found no font for."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.found: dict[str, None] = {}

    def emit(self, record: logging.LogRecord) -> None:
        # WeasyPrint logs ('.notdef glyph rendered ...: "%s" (U+%04X)', character, codepoint).
        args = record.args if isinstance(record.args, tuple) else ()
        if record.thread == self.thread and str(record.msg).startswith(".notdef glyph") and args:
            codepoint = args[-1]
            if isinstance(codepoint, int):
                self.found[f"U+{codepoint:04X}"] = None


@contextmanager
def _missing_glyphs() -> Iterator[dict[str, None]]:
    # A machine without a font for a script (CJK, Thai ...) would send boxes in its place without a word.
    handler = _MissingGlyphs()
    logger = logging.getLogger("weasyprint")
    logger.addHandler(handler)
    try:
        yield handler.found
    finally:
        logger.removeHandler(handler)


@contextmanager
def _collector_paused() -> Iterator[None]:
    # Laying out a letter allocates hundreds of thousands of short-lived objects, and the cyclic collector
    # would walk the whole heap several times meanwhile (10-20% of the render, more in a process holding
    # much else, like the watcher). Reference counting frees nearly all of it anyway; the collector runs
    # again as usual once the letter is done.
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _one_entry_per_attachment(document: Any, pdf: Any) -> None:
    # WeasyPrint 70 lists each attachment twice in the catalog's /AF (upstream issue #2917); PDF/A
    # validators flag the duplicate. Keep the first of each reference, in order.
    af = pdf.catalog.get("AF")
    if af is None:
        return
    seen: list[Any] = []
    for ref in af:
        if ref not in seen:
            seen.append(ref)
    af[:] = seen


def letter_pdf(plan: Plan, *, version: int, created: datetime | str, **options: Any) -> bytes:
    """Just the PDF bytes of render_letter()."""
    return render_letter(plan, version=version, created=created, **options).pdf
