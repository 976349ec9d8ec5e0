"""The plan letter, read back from the PDF: text, embedded plan, PDF/A metadata, same bytes, safety, overflow."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from markupsafe import escape
from pypdf import PdfReader

from pipeline.cli import main
from pipeline.errors import RenderError
from pipeline.plan.changes import apply
from pipeline.plan.diff import diff as plan_diff
from pipeline.plan.model import Change, canonical_json
from pipeline.plan.source import parse_plan
from pipeline.render.letter import address_lines, letter_html, render_letter
from pipeline.render.letterhead import LetterheadFetcher, load_letterhead
from pipeline.render.safe import markdown_html, normalize_lists, redline_html

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
CREATED = datetime(2027, 1, 11, 17, 2, tzinfo=UTC)  # Mon 11 Jan 2027, 09:02 in Portland

# The example plan's timeline, resolved by hand from its due expressions (target 2027-03-31).
EXAMPLE_ROWS = [
    ("M1", "Discovery workshop", "Joint", "Sat 30 Jan 2027"),  # T-60d
    ("M2", "Technical demo for Acme IT", "Northwind", "Wed 10 Feb 2027"),  # fixed
    ("M3", "Pilot on Q4 data", "Acme (Dana)", "Mon 1 Mar 2027"),  # T-30d
    ("M4", "Reference call with a customer", "Northwind", "Thu 4 Mar 2027"),  # M3+3d
    ("M5", "Legal review of the MSA", "Acme (Kim Osei)", "Wed 17 Mar 2027"),  # T-14d
    ("M6", "Signed order form / PO", "Acme (Raj Patel)", "Wed 31 Mar 2027"),  # T
    ("M7", "Kick-off meeting and introductions", "Joint", "Wed 7 Apr 2027"),  # T+7d
]


def pdftotext(pdf: bytes, *args: str) -> str:
    """The PDF's text as poppler reads it."""
    done = subprocess.run(["pdftotext", *args, "-", "-"], input=pdf, capture_output=True, check=True)
    return done.stdout.decode("utf-8")


def squash(text: str) -> str:
    """Text without whitespace or hyphens: a name wrapped over lines (pdftotext joins a line broken after a
    hyphen and drops the hyphen) still reads whole."""
    return re.sub(r"[\s-]+", "", text)


@pytest.fixture(scope="module")
def example():
    return parse_plan((FIXTURES / "example-plan.md").read_text(), file="example-plan.md")


@pytest.fixture(scope="module")
def letter(example):
    return render_letter(example, version=1, created=CREATED)


@pytest.fixture(scope="module")
def text(letter):
    return pdftotext(letter.pdf, "-layout")


# --- what the letter says ---------------------------------------------------------------------


def test_every_milestone_owner_and_date_is_in_the_text(text):
    flat = " ".join(text.split())
    for mid, title, owner, due in EXAMPLE_ROWS:
        assert title in flat, title
        assert owner in flat, owner
        assert due in flat, due
        # The table row reads in order: id, activity, owner, due.
        assert re.search(rf"{mid}\s+{re.escape(title)}\s+{re.escape(owner)}\s+{due}", text), mid
    assert "After the PO" in text


def test_letterhead_address_summary_and_confirmation(text):
    flat = " ".join(text.split())
    assert "Northwind Analytics" in flat
    assert "11 January 2027" in flat  # 17:02 UTC is 09:02 in America/Los_Angeles, the same day
    assert "200 Harbor Way" in flat and "Portland, OR 97201" in flat
    assert "Executive summary" in flat
    assert "Acme wants one forecast that operations and finance both trust" in flat
    assert "79 days left" in flat  # 11 Jan -> 31 Mar 2027: 20 + 28 + 31 days
    assert "Wed 31 Mar 2027" in flat
    for heading in ("Differentiated VisionMatch", "Business issues", "Solutions", "Business value",
                    "Decision process", "Call to action", "Confirmation"):  # fmt: skip
        assert heading in flat
    # The nested bullet stays a bullet of its own (python-markdown needs four spaces; the plan has two).
    assert "Three spreadsheets, reconciled by hand every Monday" in flat
    # The confirmation block names who confirms.
    confirmation = flat[flat.index("Confirmation") :]
    assert "Dana Whitfield" in confirmation and "Raj Patel" in confirmation
    assert "Kim Osei" not in confirmation


def test_letter_parts_come_in_order(text):
    flat = " ".join(text.split())
    order = ["Northwind Analytics", "Acme Corp", "Executive summary", "Timeline", "The timeline at a glance",
             "Decision process", "Call to action", "Yours sincerely", "Confirmation"]  # fmt: skip
    positions = [flat.index(part) for part in order]
    assert positions == sorted(positions)


def test_every_page_has_plan_id_version_and_page_x_of_y(letter):
    pages = pdftotext(letter.pdf).split("\f")[: letter.pages]
    assert letter.pages == len(PdfReader(io.BytesIO(letter.pdf)).pages) >= 3
    for number, page in enumerate(pages, start=1):
        assert "acme-northwind-2027" in page
        assert "version 1" in page
        assert f"Page {number} of {letter.pages}" in page


def test_the_letter_date_comes_from_the_version_timestamp(example):
    # 02:00 UTC on 12 Jan is still 11 Jan in Portland: the date is the plan's time zone's.
    html = letter_html(example, version=3, created=datetime(2027, 1, 12, 2, 0, tzinfo=UTC))
    assert "11 January 2027" in html and "79 days left" in html
    html = letter_html(example, version=3, created="2027-03-01T20:00:00Z")
    assert "1 March 2027" in html and "30 days left" in html


def test_address_lines_join_a_split_us_city_line():
    assert address_lines(("200 Harbor Way", "Portland", "OR 97201")) == ["200 Harbor Way", "Portland, OR 97201"]
    assert address_lines(("Hauptstrasse 1", "10115 Berlin")) == ["Hauptstrasse 1", "10115 Berlin"]


# --- the PDF as a record ----------------------------------------------------------------------


def test_embedded_plan_json_is_the_canonical_plan(example, letter):
    reader = PdfReader(io.BytesIO(letter.pdf))
    assert list(reader.attachments) == ["plan.json"]
    (data,) = reader.attachments["plan.json"]
    assert data == canonical_json(example).encode("utf-8")
    root = reader.trailer["/Root"]
    # One /AF entry per attachment (WeasyPrint 70 lists it twice, upstream #2917), related as the source.
    (spec,) = [ref.get_object() for ref in root["/AF"]]
    assert spec["/AFRelationship"] == "/Source"
    params = spec["/EF"]["/F"].get_object()["/Params"]
    assert params["/CreationDate"] == params["/ModDate"] == "D:20270111170200Z"


def test_xmp_declares_pdfa_3b_and_the_info_names_the_plan(letter):
    reader = PdfReader(io.BytesIO(letter.pdf))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    ns = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "pdfaid": "http://www.aiim.org/pdfa/ns/id/"}
    rdf = ET.fromstring(xmp[xmp.index(b"<x:xmpmeta") : xmp.index(b"</x:xmpmeta>") + 12])
    ids = [d for d in rdf.iter(f"{{{ns['rdf']}}}Description") if f"{{{ns['pdfaid']}}}part" in d.attrib]
    assert len(ids) == 1
    assert ids[0].attrib[f"{{{ns['pdfaid']}}}part"] == "3"
    assert ids[0].attrib[f"{{{ns['pdfaid']}}}conformance"] == "B"
    assert b"2027-01-11T17:02:00Z" in xmp
    info = reader.metadata
    assert info["/Title"] == "Mutual Plan: Acme Corp and Northwind Analytics (version 1)"
    assert info["/Author"] == "Jordan Lee, Northwind Analytics"
    assert "Acme Corp" in info["/Subject"]
    assert info["/Keywords"] == "Mutual Plan, acme-northwind-2027, version 1"
    assert info["/CreationDate"] == info["/ModDate"] == "D:20270111170200Z"
    assert reader.pdf_header == "%PDF-1.7"
    assert "/OutputIntents" in reader.trailer["/Root"]


def test_two_renders_give_the_same_bytes_in_process_and_in_a_new_process(example, letter, tmp_path):
    again = render_letter(example, version=1, created=CREATED)
    assert again.pdf == letter.pdf
    # A new process with its own fonts and caches, and the templates in another folder.
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    script = (
        "import sys; from datetime import datetime, UTC; from pathlib import Path\n"
        "from pipeline.plan.source import parse_plan\n"
        "from pipeline.render.letter import render_letter\n"
        f"plan = parse_plan(Path({str(FIXTURES / 'example-plan.md')!r}).read_text())\n"
        "pdf = render_letter(plan, version=1, created=datetime(2027, 1, 11, 17, 2, tzinfo=UTC),\n"
        f"                    templates=Path({str(copy)!r})).pdf\n"
        "sys.stdout.buffer.write(pdf)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    assert done.stdout == letter.pdf


def test_another_timestamp_or_version_gives_other_bytes(example, letter):
    later = render_letter(example, version=1, created=datetime(2027, 1, 11, 17, 3, tzinfo=UTC))
    assert later.pdf != letter.pdf
    assert PdfReader(io.BytesIO(later.pdf)).metadata["/CreationDate"] == "D:20270111170300Z"
    assert render_letter(example, version=2, created=CREATED).pdf != letter.pdf


def test_page_sizes_follow_the_letterhead(example, letter):
    assert [float(x) for x in PdfReader(io.BytesIO(letter.pdf)).pages[0].mediabox] == [0, 0, 612, 792]  # US Letter
    plain = render_letter(example, version=1, created=CREATED, letterhead="default")
    assert plain.letterhead == "default"
    box = [round(float(x)) for x in PdfReader(io.BytesIO(plain.pdf)).pages[0].mediabox]
    assert box == [0, 0, 595, 842]  # A4
    flat = " ".join(pdftotext(plain.pdf).split())
    assert all(title in flat for _, title, _, _ in EXAMPLE_ROWS)


def test_unknown_or_unsafe_letterhead_names_are_refused(example):
    with pytest.raises(RenderError, match="available: default, northwind"):
        render_letter(example, version=1, created=CREATED, letterhead="nope")
    with pytest.raises(RenderError, match="not a folder name"):
        load_letterhead("../letterhead/default")
    with pytest.raises(RenderError, match="not a version number"):
        render_letter(example, version=0, created=CREATED)


# --- changes since version N ------------------------------------------------------------------


@pytest.fixture(scope="module")
def version_two(example):
    changes = [
        Change("move", milestone="M3", due="2027-03-03"),
        Change("remove", milestone="M4"),
        Change("reassign", milestone="M5", owner="Raj Patel"),
    ]
    v2 = apply(example, changes, today=date(2027, 1, 12))
    sections = tuple(
        replace(s, body=s.body.replace("$840k a year", "$900k a year, measured quarterly")) if s.kind == "value" else s
        for s in v2.sections
    )
    v2 = replace(v2, sections=sections)
    return v2, plan_diff(example, v2, old_version=1, new_version=2)


def test_changes_since_the_last_version_open_the_letter(version_two):
    v2, d = version_two
    created = datetime(2027, 1, 14, 18, 0, tzinfo=UTC)
    letter = render_letter(v2, version=2, created=created, diff=d)
    first = " ".join(pdftotext(letter.pdf).split("\f")[0].split())
    assert "Changes since version 1" in first
    assert "Moved" in first and "M3 Pilot on Q4 data" in first and "Mon 1 Mar 2027" in first
    assert "Wed 3 Mar 2027" in first
    assert "Removed" in first and "M4 Reference call with a customer" in first
    assert "New owner" in first and "Acme (Kim Osei)" in first and "Acme (Raj Patel)" in first
    # The redline keeps both the deleted and the inserted words, in reading order.
    assert "$840k900kayear,measuredquarterly)" in squash(first)
    # The executive summary moves to a page of its own.
    assert "Executive summary" not in first
    html = letter_html(v2, version=2, created=created, diff=d)
    marked = set(re.findall(r'<tr class="status-\w+ changed">\s*<td class="mid">(M\d+)</td>', html))
    assert marked == {"M3", "M5"}  # M4 is gone; M1, M2, M6, M7 did not change
    assert "<del>840k</del><ins>900k</ins>" in html


def test_an_empty_diff_says_nothing_changed(example):
    d = plan_diff(example, example, old_version=1, new_version=2)
    html = letter_html(example, version=2, created=CREATED, diff=d)
    assert "Nothing in the plan changed since version 1" in html


def test_redline_html_is_balanced_around_markdown_structure():
    ops = (("equal", "- one\n"), ("insert", "- two, new\n"), ("delete", "- three\n"), ("equal", "- four"))
    html = str(redline_html(ops))
    assert "<li><ins>two, new</ins></li>" in html
    assert "<li><del>three</del></li>" in html
    assert "<li>four</li>" in html
    hostile = str(redline_html((("insert", '<img src="file:///etc/passwd"> <script>alert(1)</script>ok'),)))
    assert "<img" not in hostile and "<script" not in hostile and "ok" in hostile


# --- safety -----------------------------------------------------------------------------------

HOSTILE = """
Plain words first.

<img src="file:///etc/passwd">

![x](http://169.254.169.254/latest/meta-data/)

<script>document.write('<img src=http://169.254.169.254/s>')</script>

<p style="background: url(file:///etc/passwd)" onclick="steal()">styled</p>

<style>body { background: url(http://169.254.169.254/css) }</style>

<svg xmlns="http://www.w3.org/2000/svg"><image href="http://169.254.169.254/svg.png"/>
<use xlink:href="file:///etc/passwd#x"/></svg>

<link rel="stylesheet" href="http://169.254.169.254/link.css">
<iframe src="file:///etc/shadow"></iframe>
[a link](http://169.254.169.254/click) and <http://169.254.169.254/auto>
"""


def test_nothing_outside_the_letterhead_is_fetched_and_no_hostile_markup_survives(example, tmp_path):
    # A fresh copy of the templates: a letterhead never loaded before, so its fonts and logo are fetched
    # now and the fetcher's record shows it works.
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    sections = tuple(replace(s, body=s.body + "\n" + HOSTILE) if s.kind != "timeline" else s for s in example.sections)
    milestones = (
        replace(example.milestones[0], title='<img src="file:///etc/passwd"> workshop'),
        *example.milestones[1:],
    )
    plan = replace(example, sections=sections, milestones=milestones)
    head = load_letterhead("northwind", copy)
    head.fetcher.requests.clear()
    letter = render_letter(plan, version=1, created=CREATED, templates=copy)
    requests = list(head.fetcher.requests)
    folder = (copy / "letterhead" / "northwind").resolve().as_uri() + "/"
    assert requests, "the fonts and the logo go through the fetcher"
    assert {url for url, _ in requests} >= {folder + "logo.svg", folder + "fonts/Inter-Regular.otf"}
    for url, served in requests:
        assert url.startswith(folder) and served, url
    html = letter_html(plan, version=1, created=CREATED, templates=copy)
    # The milestone title is plain text: it shows, escaped, and is never an element.
    title = str(escape(milestones[0].title))
    assert title.startswith("&lt;img") and title in html
    body = html[html.index("<body") :].replace(title, "")
    for bad in ("<script", "<style", "<iframe", "<link", "<image", "<use", "/etc/"):
        assert bad not in body, bad
    for tag in re.findall(r"<[^>]+>", body):  # no tag carries a handler, a link or an outside address
        assert not re.search(r"\son\w+=|href=|169\.254|file:|url\((?!#hatch)", tag), tag
    # A bare address stays as words (links keep their text and lose the address).
    assert "http://169.254.169.254/auto" in body and "http://169.254.169.254/click" not in body
    assert all('src="logo.svg"' in tag for tag in re.findall(r"<img[^>]*>", body))
    flat = " ".join(pdftotext(letter.pdf).split())
    assert "Plain words first." in flat and "a link and" in flat  # links keep their words, lose the address
    assert "169.254.169.254/latest" not in flat and "/etc/passwd" not in flat.replace(milestones[0].title, "")
    reader = PdfReader(io.BytesIO(letter.pdf))
    assert all("/Annots" not in page for page in reader.pages)  # no link annotations at all


def test_the_fetcher_serves_its_folder_and_refuses_everything_else(tmp_path):
    root = tmp_path / "head"
    (root / "fonts").mkdir(parents=True)
    (root / "logo.svg").write_text("<svg/>")
    (root / "fonts" / "a.otf").write_bytes(b"OTTO")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (root / "link.svg").symlink_to(secret)
    fetcher = LetterheadFetcher(root)
    base = root.resolve().as_uri()
    response = fetcher.fetch(base + "/fonts/a.otf")
    assert response.read() == b"OTTO" and response.content_type == "font/otf"
    assert fetcher.fetch(base + "/logo.svg").content_type == "image/svg+xml"
    for url in (
        secret.as_uri(),
        "file:///etc/passwd",
        base + "/../secret.txt",
        base + "/%2e%2e/secret.txt",
        base + "/link.svg",  # a symlink out of the folder
        base + "/fonts",  # a folder, not a file
        "http://169.254.169.254/latest/meta-data/",
        "https://example.com/logo.svg",
        "data:image/svg+xml,<svg/>",
        "ftp://example.com/x",
        "file://otherhost" + str(root / "logo.svg"),
    ):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    assert [served for _, served in fetcher.requests] == [True, True] + [False] * 11


def test_markdown_is_sanitized_to_structure():
    html = str(markdown_html("**bold** and [link](http://x.example) <b onclick='x()'>b</b>\n\n- a\n  - b"))
    assert "<strong>bold</strong>" in html and "link" in html and "href" not in html and "onclick" not in html
    assert "<ul>\n<li>a<ul>\n<li>b</li>" in html.replace("\n</li>", "</li>")
    assert normalize_lists("- a\n  - b\n    - c\n- d") == "- a\n    - b\n        - c\n- d"
    assert str(markdown_html("")) == ""


# --- 25 milestones and long names -------------------------------------------------------------

LONG_COMPANY = "Consolidated Intercontinental Shipping and Logistics Holdings Incorporated"
LONG_PERSON = "Maximiliana Alexandrovna Konstantinopoulou-Worthington"
UNBREAKABLE = "Supercalifragilisticexpialidociousandevenlongerunbreakablewordthatmustwrap"


def _long_plan() -> str:
    text = (FIXTURES / "example-plan.md").read_text()
    head = text.partition("## Timeline")[0].replace("Acme Corp", LONG_COMPANY).replace("Raj Patel", LONG_PERSON)
    rows = []
    owners = ["Joint", "Northwind", "Consolidated (Dana)", "Consolidated (Kim Osei)", "Northwind (Jordan Lee)"]
    for i in range(1, 24):
        title = f"Workshop {i} on requirements"
        if i % 4 == 0:
            title = (f"Step {i}: evaluation of the supplier's data-retention, encryption-at-rest and "
                     "disaster-recovery controls, in detail, with the security team")  # fmt: skip
        if i == 7:
            title = UNBREAKABLE
        rows.append(f"| M{i} | {title} | {owners[i % 5]} | T-{(24 - i) * 4}d |")
    rows.append(f"| M24 | Signed order form / PO | Consolidated ({LONG_PERSON}) | T |")
    table = "| # | Activity | Owner | Due |\n|---|---|---|---|\n"
    return (
        head + "## Timeline\n" + table + "\n".join(rows) + "\n\n### After the PO\n" + table
        + "| M25 | Kick-off meeting and introductions with the whole extended project team | Joint | T+7d |\n\n"
        "## Call to action\nDana to confirm the pilot data set by Friday.\n"
    )  # fmt: skip


def test_25_milestones_and_long_names_render_whole_and_inside_the_page():
    plan = parse_plan(_long_plan())
    assert len(plan.milestones) == 25
    letter = render_letter(plan, version=1, created=CREATED)
    flat = squash(pdftotext(letter.pdf))
    for m in plan.milestones:
        assert squash(m.title) in flat, m.title  # complete, even when wrapped over lines
    assert squash(LONG_COMPANY) in flat and squash(LONG_PERSON) in flat
    assert squash(f"Consolidated ({LONG_PERSON})") in flat
    # Every word lies inside the page's margins and no two words overlap.
    boxes = pdftotext(letter.pdf, "-bbox")
    pages = re.findall(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', boxes, re.S)
    assert len(pages) == letter.pages
    margin = 0.8 * 72  # the northwind letterhead's left and right margins
    for width, height, body in pages:
        words = [
            (float(a), float(b), float(c), float(d), w)
            for a, b, c, d, w in re.findall(
                r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>', body
            )
        ]
        for x0, y0, x1, y1, word in words:
            assert margin - 1 <= x0 and x1 <= float(width) - margin + 1, word
            assert y0 >= 0 and y1 <= float(height), word
        for i, (ax0, ay0, ax1, ay1, aw) in enumerate(words):
            for bx0, by0, bx1, by1, bw in words[i + 1 :]:
                overlap_x = min(ax1, bx1) - max(ax0, bx0)
                overlap_y = min(ay1, by1) - max(ay0, by0)
                assert overlap_x < 0.5 or overlap_y < 0.5, (aw, bw)


# --- the command ------------------------------------------------------------------------------


def test_render_command_writes_pdf_html_and_email(tmp_path):
    out, html, eml = tmp_path / "letter.pdf", tmp_path / "letter.html", tmp_path / "plan.eml"
    args = ["render", str(FIXTURES / "example-plan.md"), "--out", str(out), "--html", str(html),
            "--email", str(eml), "--created", "2027-01-11T17:02:00Z", "--json"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["plan"] == "acme-northwind-2027" and report["version"] == 1 and report["letterhead"] == "northwind"
    pdf = out.read_bytes()
    assert report["bytes"] == len(pdf) and report["pages"] == len(PdfReader(io.BytesIO(pdf)).pages)
    assert report["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert report["message_id"] == "<plan.acme-northwind-2027.v1@northwind.example>"
    assert '<base href="file://' in html.read_text() and "<style>" in html.read_text()
    assert b"X-Mutual-Plan: acme-northwind-2027; version=1" in eml.read_bytes()
    again = CliRunner().invoke(main, [*args[:3], str(tmp_path / "again.pdf"), "--created", "2027-01-11T17:02:00Z"])
    assert again.exit_code == 0 and (tmp_path / "again.pdf").read_bytes() == pdf


def test_render_command_errors_are_messages(tmp_path):
    result = CliRunner().invoke(main, ["render", str(tmp_path / "missing.md")])
    assert result.exit_code == 2 and "no such plan file" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["render", str(FIXTURES / "example-plan.md"), "--letterhead", "nope",
                                       "--out", str(tmp_path / "x.pdf")])  # fmt: skip
    assert result.exit_code == 2 and "letterhead 'nope' not found" in result.output
    result = CliRunner().invoke(main, ["render", str(FIXTURES / "example-plan.md"), "--created", "yesterday"])
    assert result.exit_code == 2 and "not an ISO 8601" in result.output


def test_redline_pdf_of_two_stored_versions(example, version_two):
    from pipeline.plan.model import Version
    from pipeline.redline import render_redline

    v2_plan, _ = version_two
    one = Version("acme-northwind-2027", 1, example, "2027-01-11T17:02:00Z", "jordan.lee@northwind.example", "created")
    two = Version("acme-northwind-2027", 2, v2_plan, "2027-01-14T18:00:00Z", "dana.whitfield@acme.example", "reply")
    pdf = render_redline(one, two)
    first = " ".join(pdftotext(pdf).split("\f")[0].split())
    assert "Changes since version 1" in first and "14 January 2027" in first and "version 2" in first


def test_a_plan_with_no_target_contacts_or_sections_still_makes_a_letter():
    plan = parse_plan((FIXTURES / "minimal-plan.md").read_text())
    letter = render_letter(plan, version=1, created=CREATED)
    flat = " ".join(pdftotext(letter.pdf).split())
    assert plan.letterhead is None and letter.letterhead == "default"
    assert "Dear Buyer GmbH team," in flat
    assert "no target date yet" in flat and "to be named" in flat
    assert "M2 Something undated Buyer date to be agreed" in flat
    assert "Nobody at Buyer GmbH is named yet to confirm this plan" in flat
    assert f"Page {letter.pages} of {letter.pages}" in flat


def test_render_imports_only_the_plan_and_the_errors():
    import ast

    allowed = ("pipeline.plan", "pipeline.errors", "pipeline.render")
    for path in (Path(__file__).resolve().parents[1] / "pipeline" / "render").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name == "pipeline" or name.startswith("pipeline."):
                    assert name.startswith(allowed), f"{path.name} imports {name}"
