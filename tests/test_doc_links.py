"""Every relative link in README.md and docs/*.md reaches a file, and its #anchor a heading of that file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")


def _prose(text: str, spans: bool = False) -> str:
    """The text outside fenced code blocks (and code spans, unless `spans`), where a [x](y) is a link."""
    kept, fence = [], ""
    for line in text.splitlines():
        opened = FENCE.match(line.lstrip())
        if fence:
            fence = "" if line.lstrip().startswith(fence) else fence
        elif opened:
            fence = opened.group(1)
        else:
            kept.append(line if spans else re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`|\*\*|\*|_(?=\w)|(?<=\w)_", "", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings."""
    text = _prose(page.read_text(encoding="utf-8"), spans=True)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def links(page: Path) -> list[str]:
    """The relative links of a page (no scheme, no mail address)."""
    found = LINK.findall(_prose(page.read_text(encoding="utf-8")))
    return [t for t in found if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.I)]


def named_pages(page: Path) -> list[str]:
    """The Markdown files a page names in code spans (`docs/x.md`): a reader looks for those as well."""
    return re.findall(r"`([\w./-]+\.md)`", _prose(page.read_text(encoding="utf-8"), spans=True))


def test_slugs_follow_github() -> None:
    assert slug("What `check` says") == "what-check-says"
    assert slug("Plans written in Outlook, and reminders") == "plans-written-in-outlook-and-reminders"
    assert slug("Mail about no plan / the sender's own") == "mail-about-no-plan--the-senders-own"


def test_the_checker_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Top\nSee [x](missing.md) and [y](#top), not `[z](code.md)`; `docs/other.md`.\n"
                    "```\n[w](fenced.md)\n# Not a heading\n```\n")
    assert links(page) == ["missing.md", "#top"]
    assert anchors(page) == {"top"}
    assert named_pages(page) == ["docs/other.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file.relative_to(REPO) if file.is_relative_to(REPO) else file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading '#{anchor}' in {file.name}")
    for name in named_pages(page):
        if not (page.parent / name).exists() and not (REPO / name).exists():
            broken.append(f"`{name}`: no such file beside the page or in the repository")
    assert broken == [], f"{page.name} links to what is not there: {broken}"
