"""The timeline as a picture: a Gantt-like SVG we draw ourselves, one bar and marker per milestone.

The SVG holds the drawing only; its words (row labels, months, "Today", "Target") are HTML laid over it
at percentage positions. WeasyPrint lays SVG text out one letter at a time, which made 25 labels cost
0.2 s a letter; as HTML they cost next to nothing, wrap and truncate properly, and copy as words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup, escape

from pipeline.render.format import Row

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class GanttStyle:
    """Colours and proportions; every fill also differs in lightness or pattern, for black and white."""

    ink: str = "#1f2328"
    muted: str = "#6b7280"
    grid: str = "#d8dbe0"
    seller: str = "#1f3a5f"  # dark solid
    buyer: str = "#ffffff"  # white, hatched in `ink`
    joint: str = "#9aa5b4"  # mid grey
    target: str = "#1f2328"
    today: str = "#1f2328"
    width: int = 680  # SVG units across the content width
    label_width: int = 250  # the part of it the row labels take
    row_height: int = 17
    label_chars: int = 40  # a longer title is cut with an ellipsis (the table above has it whole)
    font_family: str = ""  # unused: the labels are HTML and take the letter's font


def _x(day: date, start: date, end: date, x0: float, x1: float) -> float:
    span = max((end - start).days, 1)
    return x0 + (x1 - x0) * (day - start).days / span


def _num(value: float) -> str:
    # Two decimals at most: stable text for stable bytes, and short.
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _diamond(cx: float, cy: float, r: float) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in ((cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)))


def _truncate(text: str, limit: int) -> str:
    # Our own ellipsis: WeasyPrint's text-overflow one has no text behind it (it does not copy or extract).
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _pct(value: float, whole: float) -> str:
    return _num(100 * value / whole) + "%"


def _hatch(ink: str, paper: str, name: str = "hatch") -> str:
    # Ids must differ between the SVGs of one document: WeasyPrint keeps them as the document's anchors.
    return (
        f'<pattern id="{name}" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="4" height="4" fill="{paper}"/><line x1="0" y1="0" x2="0" y2="4" stroke="{ink}" '
        'stroke-width="1.2"/></pattern>'
    )


def timeline_svg(
    rows: list[Row],
    *,
    today: date,
    target: date | None,
    seller: str,
    buyer: str,
    after_heading: str = "After the PO",
    style: GanttStyle | None = None,
) -> Markup:
    """The picture as HTML: an SVG with the month grid, a dashed line at the letter's date, a solid one at
    the target and, per milestone, a bar from the milestone before it (in date order) to its due date
    ending in a diamond (filled when confirmed or done, hollow when proposed, crossed out when dropped);
    labels laid over it; a legend below. Styled by the `.gantt` rules of base.css."""
    if not rows:
        return Markup("")
    s = style or GanttStyle()
    dated = sorted(r.due for r in rows if r.due is not None)
    marks = [d for d in (today, target) if d is not None]
    first, last = min([*dated, *marks]), max([*dated, *marks])
    start = first - timedelta(days=max(3, (last - first).days // 30))
    end = last + timedelta(days=max(5, (last - first).days // 25))
    x0, x1 = float(s.label_width), float(s.width - 10)
    top = 16.0  # room for the month names
    has_after = any(r.phase == "after" for r in rows)
    chart_bottom = top + (len(rows) + has_after) * s.row_height + 4
    height = chart_bottom + 30  # room for the "Today" and "Target" names, on two lines if need be
    svg: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {s.width} {_num(height)}" width="{s.width}" '
        f'height="{_num(height)}" aria-hidden="true"><defs>{_hatch(s.ink, s.buyer)}</defs>'
    ]
    words: list[str] = []

    def word(css_class: str, text: str, x: float, y: float, *, align: str = "left", width: float | None = None) -> None:
        # `y` is where the middle of the text should sit, in SVG units.
        where = f"left:{_pct(x, s.width)}" if align == "left" else f"right:{_pct(s.width - x, s.width)}"
        size = f";width:{_pct(width, s.width)}" if width else ""
        words.append(
            f'<span class="{css_class}" style="{where};top:calc({_pct(y, height)} - 0.6em){size}">{text}</span>'
        )

    # Month grid.
    month = date(start.year, start.month, 1)
    ticks: list[date] = []
    while month <= end:
        if month >= start:
            ticks.append(month)
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    gap = (x1 - x0) / max((end - start).days, 1) * 30
    every = 1 if gap >= 34 else 2 if gap >= 18 else 3
    for i, tick in enumerate(ticks):
        x = _x(tick, start, end, x0, x1)
        svg.append(f'<line x1="{_num(x)}" y1="{_num(top - 4)}" x2="{_num(x)}" y2="{_num(chart_bottom)}" '
                   f'stroke="{s.grid}" stroke-width="0.6"/>')  # fmt: skip
        if i % every == 0:
            label = _MONTHS[tick.month - 1] + (f" {tick.year}" if tick.month == 1 or i == 0 else "")
            word("g-month", label, x + 2, top - 8)
    svg.append(f'<line x1="{_num(x0)}" y1="{_num(chart_bottom)}" x2="{_num(x1)}" y2="{_num(chart_bottom)}" '
               f'stroke="{s.ink}" stroke-width="0.6"/>')  # fmt: skip

    # Where each bar starts: the due date of the milestone before it in date order (the letter's date
    # for the first), so the bars read as the stretch of time each step has.
    starts: dict[int, date | None] = {}
    previous: date | None = None
    for i, r in sorted(enumerate(rows), key=lambda p: (p[1].due is None, p[1].due or date.min, p[0])):
        starts[i] = previous if previous is not None else (min(today, r.due) if r.due else None)
        if r.due is not None:
            previous = r.due

    fills = {"seller": s.seller, "buyer": "url(#hatch)", "joint": s.joint}
    y = top
    after_started = False
    for i, r in enumerate(rows):
        if r.phase == "after" and not after_started:
            after_started = True
            svg.append(f'<line x1="0" y1="{_num(y + 1)}" x2="{_num(x1)}" y2="{_num(y + 1)}" stroke="{s.grid}" '
                       'stroke-width="0.6" stroke-dasharray="2 2"/>')  # fmt: skip
            phase = str(escape(_truncate(after_heading, s.label_chars)))
            word("g-phase", phase, 0, y + s.row_height / 2, width=s.label_width - 8)
            y += s.row_height
        mid = y + s.row_height / 2
        dropped = r.status == "dropped"
        label = f"<b>{escape(r.id)}</b> {escape(_truncate(r.title, s.label_chars))}"
        word("g-label g-dropped" if dropped else "g-label", label, 0, mid, width=s.label_width - 8)
        if r.due is None:
            word("g-nodate", "date to be agreed", x0 + 4, mid)
            y += s.row_height
            continue
        xd = _x(r.due, start, end, x0, x1)
        begin = starts[i]
        if begin is not None and begin < r.due and not dropped:
            xb = _x(begin, start, end, x0, x1)
            svg.append(f'<rect x="{_num(xb)}" y="{_num(mid - 3.5)}" width="{_num(xd - xb)}" height="7" '
                       f'fill="{fills.get(r.side, "#ffffff")}" stroke="{s.ink}" stroke-width="0.5"/>')  # fmt: skip
        colour = s.muted if dropped else s.ink
        filled = r.status in ("confirmed", "done")
        svg.append(f'<polygon points="{_diamond(xd, mid, 4.6)}" fill="{s.ink if filled else "#ffffff"}" '
                   f'stroke="{colour}" stroke-width="1"/>')  # fmt: skip
        if dropped:
            svg.append(f'<line x1="{_num(xd - 4.6)}" y1="{_num(mid - 4.6)}" x2="{_num(xd + 4.6)}" '
                       f'y2="{_num(mid + 4.6)}" stroke="{colour}" stroke-width="1"/>')  # fmt: skip
        y += s.row_height

    # The letter's date and the target, over the rows; the second name drops a line when they are close.
    label_y = chart_bottom + 8
    last_x: float | None = None
    for day, name, dash, stroke_width, colour in (
        (today, "Today", ' stroke-dasharray="3 2"', 1.0, s.today),
        (target, "Target", "", 1.6, s.target),
    ):
        if day is None:
            continue
        x = _x(day, start, end, x0, x1)
        svg.append(f'<line x1="{_num(x)}" y1="{_num(top - 4)}" x2="{_num(x)}" y2="{_num(chart_bottom + 3)}" '
                   f'stroke="{colour}" stroke-width="{stroke_width}"{dash}/>')  # fmt: skip
        if last_x is not None and abs(x - last_x) < 80:
            label_y += 12
        last_x = x
        text = f"{name} {day.day} {_MONTHS[day.month - 1]}"
        if x + 70 > s.width:
            word(f"g-mark g-{name.lower()}", text, x - 3, label_y, align="right")
        else:
            word(f"g-mark g-{name.lower()}", text, x + 3, label_y)
    svg.append("</svg>")

    legend = [
        _swatch(f'<rect x="0.5" y="1.5" width="15" height="7" fill="{s.seller}" stroke="{s.ink}" stroke-width="0.5"/>',
                seller, s),
        _swatch(f'<defs>{_hatch(s.ink, s.buyer, "hatch-key")}</defs><rect x="0.5" y="1.5" width="15" height="7" '
                f'fill="url(#hatch-key)" '
                f'stroke="{s.ink}" stroke-width="0.5"/>', buyer, s),
        _swatch(f'<rect x="0.5" y="1.5" width="15" height="7" fill="{s.joint}" stroke="{s.ink}" stroke-width="0.5"/>',
                "Joint", s),
        _swatch(f'<polygon points="{_diamond(8, 5, 4)}" fill="{s.ink}" stroke="{s.ink}"/>', "confirmed or done", s),
        _swatch(f'<polygon points="{_diamond(8, 5, 4)}" fill="#ffffff" stroke="{s.ink}"/>', "proposed", s),
        _swatch(f'<polygon points="{_diamond(8, 5, 4)}" fill="#ffffff" stroke="{s.ink}"/>'
                f'<line x1="4" y1="1" x2="12" y2="9" stroke="{s.ink}"/>', "dropped", s),
    ]  # fmt: skip
    return Markup(  # every word in it went through escape()
        '<div class="gantt"><div class="gantt-chart">'
        + "".join(svg)
        + "".join(words)
        + '</div><div class="gantt-legend">'
        + "".join(legend)
        + "</div></div>"
    )


def _swatch(drawing: str, name: str, s: GanttStyle) -> str:
    return (
        '<span class="g-key"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 10" width="16" height="10" '
        f'aria-hidden="true">{drawing}</svg> {escape(name)}</span>'
    )
