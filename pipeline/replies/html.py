"""HTML mail bodies turned into plain text that keeps paragraphs, list items, table rows and quotes."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

from bs4 import BeautifulSoup, Comment, Doctype, FeatureNotFound, NavigableString, PageElement, Tag
from bs4 import ProcessingInstruction as _PI

# Mail HTML is not worth more than this; the rest of a huge body is history or junk.
MAX_HTML_CHARS = 1_000_000
# Deeper than this, the structure of the tree is noise: the rest is read as flat text.
MAX_DEPTH = 150

_SKIP = {"script", "style", "head", "title", "meta", "link", "noscript", "template", "svg", "object", "xml"}
_BLOCK = {
    "address", "article", "aside", "center", "dd", "div", "dl", "dt", "fieldset", "figure", "figcaption",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "main", "nav", "section", "table",
    "tbody", "thead", "tfoot", "caption", "body", "html",
}  # fmt: skip
_PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "pre"}
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0\u200b\u3000]+")

# Our own marks in the text stream, replaced when the text is assembled.
_NL = "\x00n"  # the end of a block: ends the line, if one is open
_BR = "\x00b"  # a <br>: ends the line, even an empty one
_PARA = "\x00p"  # a paragraph break: one blank line


# One soup parsed for a message's text, handed to the extraction that reads the same HTML next: parsing twice
# was a third of the reading time of an HTML reply. Keyed by the HTML, taken once (pop), so it is never shared.
_SPARE: dict[str, BeautifulSoup] = {}


def keep_soup(html: str, soup: BeautifulSoup) -> None:
    """Keep the soup of this HTML for the next `take_soup` of the same HTML (only the last one is kept)."""
    _SPARE.clear()
    _SPARE[html] = soup


def take_soup(html: str) -> BeautifulSoup:
    """The kept soup of this HTML (now the caller's alone to change), else a fresh parse."""
    soup = _SPARE.pop(html, None)
    return soup if soup is not None else parse_html(html)


def parse_html(html: str) -> BeautifulSoup:
    """The soup of a mail body, bounded in size; lxml is fast and forgiving of what mail clients write."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return BeautifulSoup(html[:MAX_HTML_CHARS], "lxml")
        except FeatureNotFound:  # lxml comes with exchangelib; the standard parser is slower but enough
            return BeautifulSoup(html[:MAX_HTML_CHARS], "html.parser")


def html_to_text(html: str | Tag) -> str:
    """Plain text of an HTML body: one paragraph per block, `- ` list items, `a | b` rows, `> ` quotes."""
    soup = parse_html(html) if isinstance(html, str) else html
    try:
        parts: list[str] = []
        _walk(soup, parts, 0)
        return _assemble(parts)
    except RecursionError:
        return _SPACES.sub(" ", soup.get_text(" ")).strip()


def _walk(node: Tag, out: list[str], depth: int) -> None:
    _walk_nodes(node.children, out, depth)


def _walk_nodes(nodes: Iterable[PageElement], out: list[str], depth: int) -> None:
    for child in nodes:
        if isinstance(child, (Comment, Doctype, _PI)):
            continue
        if isinstance(child, NavigableString):
            out.append(_SPACES.sub(" ", str(child)))
            continue
        if not isinstance(child, Tag):
            continue
        # Office's <o:p> is an inline filler, not a paragraph: namespaced tags stay inline.
        name = (child.name or "").lower()
        if name in _SKIP or _hidden(child):
            continue
        if depth > MAX_DEPTH:
            out.append(_SPACES.sub(" ", child.get_text(" ")))
            continue
        if name == "br":
            out.append(_BR)
        elif name == "hr":
            out.extend((_NL, "-" * 20, _NL))
        elif name == "pre":
            out.extend((_PARA, child.get_text().replace("\r\n", "\n").replace("\n", _BR), _PARA))
        elif name == "blockquote":
            _quote(child, out, depth)
        elif name in ("ul", "ol"):
            _list(child, name, out, depth)
        elif name == "li":
            out.extend((_NL, "- "))
            _walk(child, out, depth + 1)
            out.append(_NL)
        elif name == "tr":
            _row(child, out, depth)
        elif name == "p":
            _paragraph(child, out, depth)
        elif name in _PARAGRAPH:
            out.append(_PARA)
            _walk(child, out, depth + 1)
            out.append(_PARA)
        elif name in _BLOCK or name in ("li", "dt", "dd"):
            out.append(_NL)
            _walk(child, out, depth + 1)
            out.append(_NL)
        else:
            _walk(child, out, depth + 1)


def _quote(tag: Tag, out: list[str], depth: int) -> None:
    inner: list[str] = []
    _walk(tag, inner, depth + 1)
    quoted = _assemble(inner)
    if quoted:
        out.extend((_PARA, _BR.join("> " + line if line else ">" for line in quoted.split("\n")), _PARA))


def _list(tag: Tag, name: str, out: list[str], depth: int) -> None:
    out.append(_PARA)
    for number, item in enumerate(tag.find_all("li", recursive=False), start=1):
        bullet = f"{number}. " if name == "ol" else "- "
        inner: list[str] = []
        _walk(item, inner, depth + 1)
        text = _assemble(inner).replace("\n", "\n  ")
        out.extend((_NL, bullet + text))
    # Text or stray tags directly under the list still count.
    rest = [c for c in tag.children if not (isinstance(c, Tag) and c.name == "li")]
    if any(isinstance(c, Tag) or str(c).strip() for c in rest):
        out.append(_NL)
        _walk_nodes(rest, out, depth + 1)
    out.append(_PARA)


def _row(tag: Tag, out: list[str], depth: int) -> None:
    cells = []
    for cell in tag.find_all(("td", "th"), recursive=False):
        inner: list[str] = []
        _walk(cell, inner, depth + 1)
        text = _assemble(inner).replace("\n", " ").strip()
        if text:
            cells.append(text)
    if cells:
        out.extend((_NL, " | ".join(cells), _NL))


def _paragraph(tag: Tag, out: list[str], depth: int) -> None:
    # Outlook writes one <p class=MsoNormal> per line and marks blank lines itself.
    mso = any(c.lower().startswith("mso") for c in tag.get("class") or [])
    if mso and not _SPACES.sub("", tag.get_text()):
        out.append(_PARA)
        return
    out.append(_NL if mso else _PARA)
    _walk(tag, out, depth + 1)
    out.append(_NL if mso else _PARA)


def _hidden(tag: Tag) -> bool:
    value = tag.get("style")
    style = value if isinstance(value, str) else ""
    compact = style.replace(" ", "").lower()
    return "display:none" in compact or tag.has_attr("hidden")


def _assemble(parts: list[str]) -> str:
    lines: list[str] = []
    line: list[str] = []

    def end_line(force: bool) -> None:
        text = "".join(line).strip(" ")
        if text or force:
            lines.append(text)
        line.clear()

    for token in re.split("(\x00[nbp])", "".join(parts)):
        if token == _NL:
            end_line(False)
        elif token == _BR:
            end_line(True)
        elif token == _PARA:
            end_line(False)
            if lines and lines[-1] != "":
                lines.append("")
        elif token:
            line.append(token)
    end_line(False)
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")
