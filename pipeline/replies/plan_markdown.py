"""A plan written in an email, as plan source: Outlook's HTML (or plain text) turned into plan Markdown.

Outlook desktop writes one `<p class=MsoNormal>` per line, tables as `<table class=MsoTableGrid>`, bullets as
`<li class=MsoListParagraph>` or, for pasted Word lists, as paragraphs styled `mso-list:l0 level1 lfo1` with the
bullet in a hidden `mso-list:Ignore` span; Outlook on the web writes `<div>` lines, `<ul><li>` and plain tables.
Both become the Markdown of plan-format.md (headings `##`, timeline tables, `- ` lists), which plan_email.py
reads with front matter made from the email. No I/O, no clock.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

from bs4 import BeautifulSoup, Comment, FeatureNotFound, NavigableString, Tag

from pipeline.plan.sections import SECTION_RULES, section_kind  # the one list of section names

MAX_HTML_CHARS = 2_000_000
MAX_DEPTH = 120

_SKIP = {"head", "style", "script", "title", "meta", "link", "xml", "noscript", "template", "svg", "object", "img"}
_BLOCKS = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre", "blockquote", "tr",
           "section", "article", "header", "footer", "center", "address", "dl", "dt", "dd", "hr", "form"}
_SPACE = re.compile(r"[ \t\r\n\f\v\u00a0\u2007\u202f\u3000]+")
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_SEPARATOR_LINE = re.compile(rf"[\s|:\-{_DASHES}]+")
# "T–30d", "M3–3d" or "2027–02–10" after autocorrect: the dash between a due date's parts is a minus again.
_DUE_DASH = re.compile(rf"(?<=[TtMm0-9])\s*[{_DASHES}]\s*(?=\d)")
_DUE_LIKE = re.compile(r"(?:T|M\d+)(?:\s*[+-]\s*\d+\s*[a-z]*)?|\d{4}-\d{2}-\d{2}", re.IGNORECASE)
_MSO_LEVEL = re.compile(r"mso-list:\s*l\d+\s+level(\d+)", re.IGNORECASE)
_ORDERED_MARKER = re.compile(r"^\(?(\d{1,3}|[a-z]|[ivxlc]{1,6})[.)]$", re.IGNORECASE)
# Quoted history below the seller's own words (a plan sent as a reply or a forward) is not the plan.
_HISTORY_IDS = {"appendonsend", "divrplyfwdmsg", "mail-editor-reference-message-container", "x_divrplyfwdmsg"}
_CLOSING = re.compile(
    r"^\s*(?:thanks|thank you|many thanks|best|best regards|regards|kind regards|warm regards|cheers|sincerely"
    r"|all the best|talk soon|looking forward(?: to [\w\s]{1,40})?)\s*[,.!]?\s*$",
    re.IGNORECASE,
)



def html_to_markdown(html: str) -> str:
    """The plan source a mail client's HTML body says: headings, timeline tables, lists, paragraphs."""
    soup = _soup(html)
    root = soup.body or soup
    writer = _Writer()
    writer.walk(root, 0)
    return normalize_text("\n".join(writer.finish()))


# Where a plain-text body's quoted history starts: "On ... wrote:", Outlook's "-----Original Message-----" or its
# "From: ... / Sent: ..." block, or a quoted line.
_TEXT_HISTORY = re.compile(
    r"^\s*(?:>|On\s.{1,200}\swrote:\s*$|-{2,}\s*Original Message\s*-{2,}|_{10,}\s*$|From:\s.*@)",
    re.IGNORECASE,
)


def text_to_markdown(text: str) -> str:
    """A plain-text body as plan source: the quoted history and the closing cut, spaces and dashes put right."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for index, line in enumerate(lines):
        if _TEXT_HISTORY.match(line):
            lines = lines[:index]
            break
    return normalize_text("\n".join(_drop_closing([line.rstrip() for line in lines])))


def normalize_text(text: str) -> str:
    """What mail clients do to typed Markdown, undone: non-breaking spaces, autocorrected dashes, trailing blanks."""
    out: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _INVISIBLE.sub("", raw).replace("\u00a0", " ").replace("\t", "    ").rstrip()
        stripped = line.strip()
        if stripped.startswith("|"):
            if _SEPARATOR_LINE.fullmatch(stripped) and any(c in stripped for c in "-" + _DASHES):
                cells = stripped.strip("|").split("|")
                line = "|" + "|".join("---" for _ in cells) + "|"
            else:
                line = "|".join(fix_due_cell(c) for c in re.split(r"(?<!\\)\|", line))
        out.append(line)
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def fix_due_cell(cell: str) -> str:
    """A table cell with its due date's dashes put right ("T–30d" -> "T-30d"); other text is left as written."""
    candidate = _DUE_DASH.sub("-", cell.strip())
    if candidate != cell.strip() and _DUE_LIKE.fullmatch(candidate):
        return cell.replace(cell.strip(), candidate)
    return cell


def _soup(html: str) -> BeautifulSoup:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return BeautifulSoup(html[:MAX_HTML_CHARS], "lxml")
        except FeatureNotFound:  # lxml comes with the project's dependencies; the stdlib parser is the fallback
            return BeautifulSoup(html[:MAX_HTML_CHARS], "html.parser")


def _classes(tag: Tag) -> list[str]:
    value: str | list[str] = tag.get("class") or []
    return [value] if isinstance(value, str) else list(value)


def _style(tag: Tag) -> str:
    value = tag.get("style")
    return value if isinstance(value, str) else ""


def _hidden(tag: Tag) -> bool:
    compact = _style(tag).replace(" ", "").lower()
    return "display:none" in compact or "mso-list:ignore" in compact or tag.has_attr("hidden")


def _is_history(tag: Tag) -> bool:
    ident = str(tag.get("id") or "").lower()
    if ident in _HISTORY_IDS or "gmail_quote" in _classes(tag):
        return True
    if tag.name == "blockquote" and str(tag.get("type") or "").lower() == "cite":
        return True
    # Outlook desktop's reply header: a div with a grey top border holding "From:" ... "Sent:".
    style = _style(tag).replace(" ", "").lower()
    if tag.name == "div" and "border-top:solid" in style and "border:none" in style:
        text = tag.get_text(" ", strip=True)[:400].lower()
        return text.startswith(("from:", "von:", "de :", "de:", "da:", "van:"))
    return False


@dataclass
class _Writer:
    """Walks the tree and writes plan Markdown lines; a quoted history ends the walk."""

    lines: list[str] = field(default_factory=list)
    line: list[str] = field(default_factory=list)
    done: bool = False
    in_table: int = 0

    # --- output ---

    def text(self, value: str) -> None:
        if value:
            self.line.append(value)

    def end_line(self, *, keep_empty: bool = False) -> None:
        text = "".join(self.line)
        text = _SPACE.sub(" ", text).strip()
        if text or keep_empty:
            self.lines.append(text)
        self.line.clear()

    def blank(self) -> None:
        self.end_line()
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def finish(self) -> list[str]:
        self.end_line()
        return _drop_closing(self.lines)

    # --- walking ---

    def walk(self, node: Tag, depth: int) -> None:
        for child in list(node.children):
            if self.done:
                return
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                self.text(_INVISIBLE.sub("", str(child)))
                continue
            if not isinstance(child, Tag):
                continue
            self.element(child, depth + 1)

    def element(self, tag: Tag, depth: int) -> None:
        name = (tag.name or "").lower()
        if name in _SKIP or _hidden(tag):
            return
        if _is_history(tag) or (name == "div" and str(tag.get("id") or "").lower() == "signature"):
            self.done = True  # the seller's signature and the quoted thread end the plan
            return
        if depth > MAX_DEPTH:
            self.text(tag.get_text(" "))
            return
        if name == "br":
            self.end_line(keep_empty=True)
        elif name == "hr":
            self.blank()
        elif name == "table":
            self.table(tag, depth)
        elif name in ("ul", "ol"):
            self.blank()
            self.list(tag, depth, 0)
            self.blank()
        elif name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.blank()
            text = _inline_text(tag).replace("**", "")
            if text:
                marks = "##" if name in ("h1", "h2") else "###"
                self.lines.append(f"{marks} {text.lstrip('#').strip()}")
            self.blank()
        elif name == "p" or (name == "div" and not _has_blocks(tag)):
            self.paragraph(tag, depth)
        elif name in ("b", "strong") and not _has_blocks(tag):
            text = _inline_text(tag)
            if text:
                self.text(f"**{text}**" if not text.startswith("**") else text)
        elif name in _BLOCKS:
            self.end_line()
            self.walk(tag, depth)
            self.end_line()
        else:
            self.walk(tag, depth)

    def paragraph(self, tag: Tag, depth: int) -> None:
        """Lines of text: a heading, a pasted Word bullet, or lines as typed (a <br> ends a line)."""
        self.end_line()
        level = _MSO_LEVEL.search(_style(tag))
        if level:
            text = " ".join(_inline_lines(tag)).strip()
            marker = _mso_marker(tag)
            indent = "  " * (int(level.group(1)) - 1)
            bullet = "1." if marker and _ORDERED_MARKER.match(marker) else "-"
            if text:
                self.lines.append(f"{indent}{bullet} {text}")
            return
        lines = _inline_lines(tag)
        if not any(lines):
            # Outlook marks an empty line with <o:p>&nbsp;</o:p>, Outlook on the web with <div><br></div>.
            self.blank()
            return
        for text in lines:
            heading = _heading(text) if text else None
            if heading:
                self.blank()
                self.lines.append(heading)
                self.blank()
            elif text:
                self.lines.append(text)
            else:
                self.blank()

    def list(self, tag: Tag, depth: int, level: int) -> None:
        ordered = tag.name == "ol"
        number = 0
        # In document order: Outlook nests a level-2 list in the parent list, after the item it belongs to.
        for child in tag.find_all(("li", "ul", "ol"), recursive=False):
            if child.name in ("ul", "ol"):
                self.list(child, depth + 1, level + 1)
                continue
            number += 1
            nested = child.find_all(("ul", "ol"), recursive=False)
            for sub in nested:
                sub.extract()
            text = " ".join(_inline_lines(child)).strip()
            bullet = f"{number}." if ordered else "-"
            if text:
                self.lines.append(f"{'  ' * level}{bullet} {text}")
            for sub in nested:
                self.list(sub, depth + 1, level + 1)

    def table(self, tag: Tag, depth: int) -> None:
        rows: list[list[str]] = []
        for tr in tag.find_all("tr"):
            if tr.find_parent("table") is not tag:
                continue  # a nested table's rows are read as its cell's text
            cells = [_cell_text(td) for td in tr.find_all(("td", "th"), recursive=False)]
            if any(cells):
                rows.append(cells)
        if not rows:
            return
        self.blank()
        width = max(len(r) for r in rows)
        for index, cells in enumerate(rows):
            cells = cells + [""] * (width - len(cells))
            self.lines.append("| " + " | ".join(cells) + " |")
            if index == 0:
                self.lines.append("|" + "|".join("---" for _ in cells) + "|")
        self.blank()


def _has_blocks(tag: Tag) -> bool:
    return any(isinstance(c, Tag) and (c.name or "").lower() in _BLOCKS for c in tag.descendants)


def _inline_text(tag: Tag) -> str:
    """A block's text on one line."""
    return " ".join(line for line in _inline_lines(tag) if line)


def _inline_lines(tag: Tag) -> list[str]:
    """A block's text, a line per <br>: hidden spans (Word's list markers) out, bold kept as **bold**."""
    lines: list[list[str]] = [[]]

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                lines[-1].append(_INVISIBLE.sub("", str(child)))
                continue
            if not isinstance(child, Tag):
                continue
            name = (child.name or "").lower()
            if name in _SKIP or _hidden(child):
                continue
            if name == "br":
                lines.append([])
            elif name in ("b", "strong") or re.search(r"font-weight:(?:bold|[6-9]00)", _style(child).replace(" ", "")):
                raw = child.get_text()
                inner = _SPACE.sub(" ", raw).strip()
                if inner:
                    lead = " " if raw[:1].isspace() else ""
                    trail = " " if raw[-1:].isspace() else ""
                    lines[-1].append(f"{lead}**{inner}**{trail}")
            else:
                walk(child)

    walk(tag)
    out = [_SPACE.sub(" ", "".join(parts)).strip().replace("****", "") for parts in lines]
    while out and not out[-1]:
        out.pop()  # Outlook on the web ends a line with a <br> of its own
    return out


def _cell_text(cell: Tag) -> str:
    # Headings of tables are often bold: a cell is data, so the bold marks go.
    text = _SPACE.sub(" ", _INVISIBLE.sub("", cell.get_text(" "))).strip()
    return fix_due_cell(text).replace("|", "\\|")


def _mso_marker(tag: Tag) -> str:
    ignore = tag.find(lambda t: isinstance(t, Tag) and "mso-list:ignore" in _style(t).replace(" ", "").lower())
    if ignore is None:
        return ""
    return _SPACE.sub(" ", ignore.get_text()).strip()


def _heading(text: str) -> str | None:
    """A line that is a section heading: typed `## ...`, or a short bold line naming a section of the format."""
    if text.startswith("#"):
        return None  # typed Markdown: already a heading, kept as written
    plain = text.replace("**", "").strip().rstrip(":").strip()
    if not plain or len(plain) > 60:
        return None
    bold = text.startswith("**") and text.endswith("**") and text.count("**") == 2
    if bold and re.search(r"\bafter\b", plain, re.IGNORECASE) and len(plain) <= 40:
        return f"### {plain}"
    if bold and section_kind(plain):
        return f"## {plain}"
    if not bold and _exact_section(plain):
        return f"## {plain}"
    return None


def _exact_section(text: str) -> bool:
    """A plain line that is exactly a section name ("Timeline", "Business value:"), not a sentence using one."""
    key = re.sub(r"[^a-z0-9#]+", " ", text.lower()).strip()
    return any(key in aliases for _kind, aliases in SECTION_RULES)


def _drop_closing(lines: list[str]) -> list[str]:
    """Cut "Best, Jordan" and the signature under it: near the end, a closing line ends the plan."""
    for index in range(max(0, len(lines) - 12), len(lines)):
        if _CLOSING.match(lines[index]):
            return lines[:index]
    return lines


__all__ = ["fix_due_cell", "html_to_markdown", "normalize_text", "text_to_markdown"]
