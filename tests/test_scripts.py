"""Letters in every script: names in Latin, Greek, Cyrillic, CJK, Arabic and Hebrew read back from the PDF,
drawn by embedded subset fonts named in the letterhead's stack, right-to-left names kept in their order."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pipeline.plan.source import parse_plan
from pipeline.render.format import Row, isolate, text_direction
from pipeline.render.gantt import timeline_svg
from pipeline.render.letter import letter_html, render_letter

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]
CREATED = datetime(2027, 1, 11, 17, 2, tzinfo=UTC)
LETTERHEADS = ("default", "northwind")
# Poppler writes a right-to-left run in logical order between RLE/PDF (or LRE ...) marks: read without them.
BIDI_MARKS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# script: (company, contact, the font that must draw it: a name pdffonts prints, subset prefix cut)
SCRIPTS = {
    "latin": ("Ångström & Søn AB", "Zoë Ångström", "Inter"),
    "greek": ("Ελληνική Εταιρεία ΑΕ", "Νίκος Παπαδόπουλος", "Inter"),
    "cyrillic": ("ООО Ромашка", "Иван Петров", "Inter"),
    "cjk": ("北京科技有限公司", "李雷", "Noto-Sans-CJK-SC"),
    "arabic": ("شركة النور", "أحمد علي", "Noto-Sans-Arabic"),
    "hebrew": ("חברת אור", "דוד כהן", "Noto-Sans-Hebrew"),
}


def plan_for(company: str, contacts: list[tuple[str, str]], letterhead: str = "default", extra: str = ""):
    """The minimal plan addressed to `company`, each contact (name, title) confirming."""
    people = "\n".join(
        f"    - {{name: {name}, title: {title}, email: p{i}@buyer.example, confirms: true}}"
        for i, (name, title) in enumerate(contacts)
    )
    source = (FIXTURES / "minimal-plan.md").read_text()
    source = source.replace("  company: Buyer GmbH", f"  company: {company}\n  contacts:\n{people}")
    return parse_plan(f"---\nletterhead: {letterhead}\n" + source.removeprefix("---\n") + extra, file="plan.md")


def pdftotext(pdf: bytes, *args: str) -> str:
    """The PDF's text as poppler reads it, bidi marks taken out."""
    done = subprocess.run(["pdftotext", *args, "-", "-"], input=pdf, capture_output=True, check=True)
    return BIDI_MARKS.sub("", done.stdout.decode("utf-8"))


def pdffonts(pdf: bytes, tmp_path: Path) -> list[list[str]]:
    """pdffonts' rows: name, type ..., emb, sub, uni, object, generation."""
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    return [line.split() for line in out.splitlines()[2:]]


@pytest.mark.parametrize("letterhead", LETTERHEADS)
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_letter_in_each_script_reads_back(script: str, letterhead: str, tmp_path: Path) -> None:
    company, name, font = SCRIPTS[script]
    letter = render_letter(plan_for(company, [(name, "Director")], letterhead), version=1, created=CREATED)
    assert letter.missing == ()  # no character fell to .notdef (an empty box)
    text = pdftotext(letter.pdf)
    flat = " ".join(text.split())
    assert company in flat
    assert f"Dear {name.split()[0]}," in flat
    assert name in flat
    fonts = pdffonts(letter.pdf, tmp_path)
    names = [row[0].split("+", 1)[-1] for row in fonts]
    assert any(n.startswith(font) for n in names), names
    for row in fonts:  # PDF/A: every font embedded, and only the glyphs used (a subset: ABCDEF+Name)
        assert row[-5:-3] == ["yes", "yes"], row
        assert re.match(r"^[A-Z]{6}\+", row[0]), row


def test_the_letterhead_stacks_name_a_font_for_every_script() -> None:
    for name in LETTERHEADS:
        css = (ROOT / "templates" / "letterhead" / name / "letter.css").read_text()
        for family in ("Noto Sans Arabic", "Noto Sans Hebrew", "Noto Sans CJK SC", "DejaVu Sans"):
            assert f'"{family}"' in css, (name, family)


def test_setup_installs_the_fonts() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    for package in ("fonts-noto-core", "fonts-noto-cjk", "fonts-dejavu-core"):
        assert re.search(rf"\b{package}\b", setup), package


# --- right to left ----------------------------------------------------------------------------------


def test_direction_is_that_of_the_first_strong_character() -> None:
    assert text_direction("שרה לוי") == "rtl"
    assert text_direction("شركة ABC") == "rtl"
    assert text_direction("ABC شركة") == "ltr"
    assert text_direction("12 (Hebrew: שרה)") == "ltr"  # digits and brackets are neutral; "H" decides
    assert text_direction("2027 - 12") is None
    assert text_direction("") is None


def test_isolate_wraps_only_text_with_right_to_left_letters() -> None:
    assert isolate("Zoë <Ångström>") == "Zoë &lt;Ångström&gt;"  # escaped, unwrapped: the letter is unchanged
    assert isolate("דוד & כהן") == '<bdi dir="rtl">דוד &amp; כהן</bdi>'
    assert isolate("Acme שרה") == '<bdi dir="ltr">Acme שרה</bdi>'


def test_right_to_left_names_keep_their_order_in_an_english_sentence() -> None:
    # "For the attention of A (Director), B (CFO) and C": unisolated, the comma between two Hebrew names
    # takes their direction and B is drawn left of A. Each name isolated, A comes first, left to right.
    contacts = [("דוד כהן", "מנהל"), ("שרה לוי", "CFO"), ("Dana Lee", "COO")]
    plan = plan_for("חברת אור", contacts)
    letter = render_letter(plan, version=1, created=CREATED)
    first, second = _x_of(letter.pdf, "דוד"), _x_of(letter.pdf, "שרה")
    assert first < second
    html = letter_html(plan, version=1, created=CREATED)
    assert '<bdi dir="rtl">דוד כהן</bdi> (<bdi dir="rtl">מנהל</bdi>), <bdi dir="rtl">שרה לוי</bdi> (CFO)' in html


def test_the_plan_s_right_to_left_paragraphs_read_right_to_left() -> None:
    extra = "\n## רקע\nשלום עולם, this is mixed.\n\n- פריט ראשון\n- First item, in English\n"
    plan = plan_for("חברת אור", [("דוד כהן", "מנהל")], extra=extra)
    html = letter_html(plan, version=1, created=CREATED)
    assert '<h2 dir="rtl">רקע</h2>' in html or '<h2><bdi dir="rtl">רקע</bdi></h2>' in html
    assert '<p dir="rtl">שלום עולם, this is mixed.</p>' in html
    assert '<li dir="rtl">פריט ראשון</li>' in html
    assert "<li>First item, in English</li>" in html


def _x_of(pdf: bytes, word: str) -> float:
    """The x of `word` on the attention line; poppler's -bbox gives a right-to-left word's glyphs in the
    order they stand on the page, so it matches reversed."""
    boxes = pdftotext(pdf, "-bbox", "-f", "1", "-l", "1")
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)"[^>]*>([^<]*)</word>'
    words = [(float(x), float(y), text) for x, y, text in re.findall(pattern, boxes)]
    line = next(y for x, y, text in words if text == "attention")
    return next(x for x, y, text in words if abs(y - line) < 2 and text in (word, word[::-1]))


def test_the_picture_isolates_right_to_left_titles_and_names() -> None:
    rows = [Row("M1", "סדנת היכרות", "Joint", date(2027, 2, 1), "proposed", "", "before", "joint")]
    html = timeline_svg(rows, today=date(2027, 1, 11), target=date(2027, 3, 1), seller="Solo", buyer="חברת אור")
    assert '<b>M1</b> <bdi dir="rtl">סדנת היכרות</bdi>' in html
    assert '</svg> <bdi dir="rtl">חברת אור</bdi></span>' in html
