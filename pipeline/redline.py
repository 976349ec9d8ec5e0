"""The redline of a step: what changed from one version to the next, as a table of changes and marked text.

It is a document of its own, not the newer letter: who asked and why, each milestone, target and contact change
with the old value struck through beside the new one underlined, and each changed section word by word.
"""

from __future__ import annotations

from typing import Any

from weasyprint import HTML

from pipeline.archive.pages import render_page
from pipeline.plan.diff import diff
from pipeline.plan.model import Version
from pipeline.render.format import change_rows, long_date, parse_created
from pipeline.render.letter import PDF_VARIANT
from pipeline.render.letterhead import load_letterhead
from pipeline.render.safe import redline_html as marked_text


def redline_context(older: Version, newer: Version) -> dict[str, Any]:
    """What the redline shows: both versions' facts, the rows of changes and each changed text marked."""
    changes = diff(older.plan, newer.plan, old_version=older.number, new_version=newer.number)
    return {
        "plan": newer.plan,
        "older": _facts(older),
        "newer": _facts(newer),
        "rows": change_rows(newer.plan, changes),
        "texts": [{"heading": t.heading, "html": marked_text(t.ops)} for t in changes.texts],
        "empty": changes.is_empty,
    }


def _facts(version: Version) -> dict[str, Any]:
    return {"number": version.number, "hash": version.hash, "date": long_date(parse_created(version.created).date()),
            "created": version.created, "author": version.author, "reason": version.reason,
            "message_id": version.message_id}


def redline_html(older: Version, newer: Version) -> str:
    """The redline as HTML: deletions in <del>, insertions in <ins>, every value escaped."""
    return render_page("redline.html.j2", **redline_context(older, newer))


def render_redline(older: Version, newer: Version, letterhead: str | None = None) -> bytes:
    """The redline of the step `older` -> `newer` as PDF/A-3b, in the letterhead's fonts; the same bytes every time."""
    head = load_letterhead(newer.plan.letterhead or letterhead)
    created = parse_created(newer.created)
    with head.lock:
        document = HTML(string=redline_html(older, newer), base_url=head.base_url, url_fetcher=head.fetcher).render(
            stylesheets=[head.stylesheet()], font_config=head.fonts
        )
        meta = document.metadata
        meta.title = f"Mutual Plan {newer.plan_id}: redline, version {older.number} to version {newer.number}"
        meta.generator = "mutualplan"
        meta.created = meta.modified = created.strftime("%Y-%m-%dT%H:%M:%SZ")
        meta.lang = "en"
        return document.write_pdf(pdf_variant=PDF_VARIANT)
