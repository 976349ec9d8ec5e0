"""Free text to HTML that cannot reach anything: Markdown rendered, then cleaned down to plain structure."""

from __future__ import annotations

import re

import markdown
import nh3
from markupsafe import Markup

# Structure and emphasis only. No <a>, <img>, <svg>, <style> or attributes: a letter links nowhere and
# loads nothing, so a link keeps its words and loses its address, and an image disappears.
ALLOWED_TAGS = frozenset(
    {
        "p", "br", "strong", "em", "b", "i", "u", "s", "del", "ins", "code", "pre", "blockquote",
        "ul", "ol", "li", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td",
        "sup", "sub",
    }
)  # fmt: skip

_ITEM = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>[-*+]|\d{1,9}[.)])(?P<rest>\s.*|)$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_EMPTY_P = re.compile(r"<p>\s*</p>")


def normalize_lists(text: str) -> str:
    """Re-indent nested list items to the four spaces python-markdown needs (people write two)."""
    out: list[str] = []
    stack: list[int] = []  # indents of the open list levels
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        m = None if in_fence else _ITEM.match(line.expandtabs(4))
        if m is None:
            if not line.strip():
                out.append(line)
            elif stack and line[:1] in (" ", "\t"):
                # A continuation line belongs to the innermost open item.
                out.append(" " * (4 * len(stack)) + line.strip())
            else:
                stack = []
                out.append(line)
            continue
        indent = len(m.group("indent"))
        while stack and indent < stack[-1]:
            stack.pop()
        if not stack or indent > stack[-1]:
            stack.append(indent)
        out.append(" " * (4 * (len(stack) - 1)) + m.group("marker") + m.group("rest"))
    return "\n".join(out)


def markdown_html(text: str) -> Markup:
    """Render free Markdown and keep only ALLOWED_TAGS, without attributes or URLs."""
    if not text or not text.strip():
        return Markup("")
    html = markdown.markdown(normalize_lists(text), extensions=["sane_lists", "tables"], output_format="html")
    clean = nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={},
        url_schemes=set(),
        link_rel=None,
        strip_comments=True,
    )
    return Markup(_EMPTY_P.sub("", clean).strip())  # cleaned by nh3 just above


# --- redlines ---------------------------------------------------------------------------------

# Private-use characters mark where insertions and deletions start and end while the Markdown renders.
_INS, _INS_END, _DEL, _DEL_END = "\ue000", "\ue001", "\ue002", "\ue003"
_MARKS = _INS + _INS_END + _DEL + _DEL_END
# A mark in front of a list bullet or heading would hide it from Markdown: move the mark after it.
_MARK_BEFORE_BLOCK = re.compile(rf"(?m)^([ \t]*)([{_MARKS}]+)([ \t]*(?:[-*+]|\d{{1,9}}[.)]|#{{1,6}}|>)[ \t]+)")
_TAG = re.compile(r"(<[^>]*>)")


def redline_html(ops: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> Markup:
    """A word-level redline as sanitized HTML: the text rendered as Markdown, insertions in <ins>, deletions
    in <del>, each closed and reopened around every tag so the markup stays well formed."""
    parts = []
    for op, text in ops:
        text = text.translate({ord(c): None for c in _MARKS})
        if op == "insert":
            parts.append(_INS + text + _INS_END)
        elif op == "delete":
            parts.append(_DEL + text + _DEL_END)
        else:
            parts.append(text)
    source = _MARK_BEFORE_BLOCK.sub(r"\1\3\2", "".join(parts))
    html = str(markdown_html(source))
    out: list[str] = []
    inserting = deleting = False
    for token in _TAG.split(html):
        if token.startswith("<"):
            out.append(token)
            continue
        for piece in re.split(f"([{_MARKS}])", token):
            if piece == _INS:
                inserting = True
            elif piece == _INS_END:
                inserting = False
            elif piece == _DEL:
                deleting = True
            elif piece == _DEL_END:
                deleting = False
            elif piece:
                if piece.strip() and (inserting or deleting):
                    piece = f"<del>{piece}</del>" if deleting else f"<ins>{piece}</ins>"
                out.append(piece)
    return Markup("".join(out))  # built from nh3's output and our own two tags
