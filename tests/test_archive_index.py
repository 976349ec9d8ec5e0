"""index.html: the bundle a person can open offline, the story of the plan with a link to every file."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zipfile
from datetime import timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from pipeline.archive import export, verify
from pipeline.redline import render_redline
from tests.archive_support import PLAN_ID, T0, Filled, filled, letters

__all__ = ["filled", "letters"]  # fixtures, used by name


class Links(HTMLParser):
    """Every href and src of a page, and whether it holds a script."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.sources: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.scripts += tag == "script"
        if found.get("href"):
            self.hrefs.append(str(found["href"]))
        if found.get("src"):
            self.sources.append(str(found["src"]))


def links(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def hostile_reply() -> bytes:
    msg = EmailMessage()
    msg["From"] = '"<b>Dana</b>" <dana.whitfield@acme.example>'
    msg["To"] = "jordan.lee@northwind.example"
    msg["Subject"] = f"Re: Mutual Plan [{PLAN_ID}] v3 <script>alert(1)</script>"
    msg["Message-ID"] = "<c1@acme.example>"
    msg["Date"] = "Thu, 07 Jan 2027 10:00:00 +0000"
    msg.set_content("Confirmed. <img src=https://tracker.example/p.gif onerror=alert(2)>\nDana")
    msg.add_attachment(b"%PDF-1.4 signed", maintype="application", subtype="pdf", filename="signed <copy>.pdf")
    return msg.as_bytes()


@pytest.fixture
def agreed(filled: Filled) -> Filled:
    """The plan's version 3 confirmed by Dana's email (with an attachment), and the plan agreed."""
    at = T0 + timedelta(days=3)
    filled.archive.keep(filled.store, hostile_reply(), plan_id=PLAN_ID, kind="in", version=3,
                        message_id="<c1@acme.example>", at=at)
    filled.store.confirm(PLAN_ID, 3, "dana.whitfield@acme.example", "<c1@acme.example>", at=at)
    filled.store.set_plan_state(PLAN_ID, "agreed", at=at + timedelta(minutes=1))
    return filled


def test_index_tells_the_story_and_links_every_file(agreed: Filled, tmp_path: Path) -> None:
    out = tmp_path / "b"
    export(agreed.store, agreed.archive, PLAN_ID, out, redline=render_redline)
    html = (out / "index.html").read_text(encoding="utf-8")
    manifest = json.loads((out / "manifest.json").read_text())
    assert "index.html" in manifest["files"] and verify(out).ok
    # The plan and its state.
    assert PLAN_ID in html and "Acme Corp" in html and "Northwind Analytics" in html and "agreed" in html
    # Every event, in the order it happened.
    events = [line.split('data-event="')[1].split('"')[0] for line in html.splitlines() if 'data-event="' in line]
    assert events == ["created", "sent", "replied", "changed", "changed", "replied", "confirmed", "agreed"]
    # A link to each letter, redline, email and its readable page; each one a file of the bundle.
    page = links(html)
    for version in manifest["versions"]:
        assert set(version["letters"]) <= set(page.hrefs) and version["plan"] in page.hrefs
        assert version["redline"] is None or version["redline"] in page.hrefs
    for mail in manifest["emails"]:
        assert mail["file"] in page.hrefs and mail["html"] in page.hrefs
    assert all((out / href).is_file() for href in page.hrefs), page.hrefs
    # Nothing loads from anywhere: no script, no remote source, only the bundle's own files.
    assert page.scripts == 0 and page.sources == []
    assert "mutualplan archive verify" in html and "sha256sum" in html


def test_each_email_reads_as_text_with_its_attachments_and_nothing_it_carries_runs(
        agreed: Filled, tmp_path: Path) -> None:
    out = tmp_path / "b"
    export(agreed.store, agreed.archive, PLAN_ID, out)
    manifest = json.loads((out / "manifest.json").read_text())
    mail = next(m for m in manifest["emails"] if m["message_id"] == "<c1@acme.example>")
    html = (out / mail["html"]).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "&lt;img src=https://tracker.example/p.gif" in html and "<img" not in html
    assert "&lt;b&gt;Dana&lt;/b&gt;" in html and "Confirmed." in html
    assert "signed &lt;copy&gt;.pdf" in html and "application/pdf" in html and "15 bytes" in html
    page = links(html)
    assert page.scripts == 0 and page.sources == []
    assert page.hrefs == ["../index.html", Path(mail["file"]).name]


def test_index_html_opens_in_a_real_browser(agreed: Filled, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    export(agreed.store, agreed.archive, PLAN_ID, tmp_path / "b.zip", redline=render_redline)
    with zipfile.ZipFile(tmp_path / "b.zip") as z:
        z.extractall(tmp_path / "unzipped")
    shot = tmp_path / "index.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600",
                    f"--screenshot={shot}", (tmp_path / "unzipped" / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])
    assert (width, height) == (1200, 1600)
    image = Image.open(shot).convert("L")
    shades = image.histogram()
    # Mostly paper, with a good deal of ink: text, tables and rules were drawn.
    inked = sum(shades[:160]) / (width * height)
    assert 0.01 < inked < 0.5, inked
    assert shot.stat().st_size > 20_000


def test_changing_any_byte_of_any_file_is_named(agreed: Filled, tmp_path: Path) -> None:
    out = tmp_path / "b"
    export(agreed.store, agreed.archive, PLAN_ID, out, redline=render_redline)
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert {"index.html", "audit.json"} <= set(names) and any(n.endswith(".html") for n in names if "emails/" in n)
    for name in names:
        data = (out / name).read_bytes()
        (out / name).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        report = verify(out)
        assert report.changed == [name], (name, report.to_dict())
        (out / name).write_bytes(data)
    assert verify(out).ok


@pytest.mark.parametrize("raw", [
    b"\xff\xfe\x00 not an email at all \x00\x01",
    b"From: <<<@@@>>>\r\nSubject: =?utf-8?b?!!notbase64?=\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n",
    b"Subject: \xe9t\xe9\r\nContent-Type: text/html; charset=bogus-charset\r\n\r\n"
    b"<p>caf\xe9 <script>x()</script></p>\r\n",
])
def test_a_broken_email_still_gets_a_page_and_export_never_fails_on_it(filled: Filled, tmp_path: Path,
                                                                        raw: bytes) -> None:
    filled.archive.keep(filled.store, raw, plan_id=PLAN_ID, kind="in", version=3, message_id="<b@x>", at=T0)
    export(filled.store, filled.archive, PLAN_ID, tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    page = (tmp_path / "b" / next(m["html"] for m in manifest["emails"] if m["message_id"] == "<b@x>")).read_text()
    assert "<script" not in page and links(page).scripts == 0
    assert verify(tmp_path / "b").ok
