"""The timeline as a picture: a Gantt-like SVG we draw ourselves, one bar and marker per milestone.

The SVG holds the drawing only; its words (row labels, months, "Today", "Target") are HTML laid over it
at percentage positions. WeasyPrint lays SVG text out one letter at a time, which made 25 labels cost
0.2 s a letter; as HTML they cost next to nothing, wrap and truncate properly, and copy as words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise

from markupsafe import Markup, escape

from pipeline.render.format import Row, isolate

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
    label_share: float = 36.0  # percent of the width the row labels take; the drawing has the rest
    chart_width: int = 420  # the drawing's width in CSS px, about its width on A4 or Letter
    row_height: int = 16  # CSS px: the labels' line height and the drawing's row pitch
    top: int = 16  # room for the month names
    bottom: int = 30  # room for "Today" and "Target", on two lines if need be
    label_chars: int = 44  # a longer title is cut with an ellipsis (the table above has it whole)
    font_family: str = ""  # unused: the words are HTML and take the letter's font
    label_px: float = 7.6 * 4 / 3  # the words' size in CSS px: base.css's `.gantt-chart { font-size: 7.6pt }`
    label_em: float = 0.7  # a month label's width per character, in em, on the wide side


def _x(day: date, start: date, end: date, x0: float, x1: float) -> float:
    span = max((end - start).days, 1)
    return x0 + (x1 - x0) * (day - start).days / span


def _num(value: float) -> str:
    # Two decimals at most: stable text for stable bytes, and short.
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _diamond(cx: float, cy: float, r: float) -> str:
    return f"M{_num(cx)} {_num(cy - r)}l{_num(r)} {_num(r)}l{_num(-r)} {_num(r)}l{_num(-r)} {_num(-r)}z"


def _truncate(text: str, limit: int) -> str:
    # Our own ellipsis: WeasyPrint's text-overflow one has no text behind it (it does not copy or extract).
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _hatch(ink: str, paper: str, name: str = "hatch") -> str:
    # Ids must differ between the SVGs of one document: WeasyPrint keeps them as the document's anchors.
    return (
        f'<pattern id="{name}" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="4" height="4" fill="{paper}"/><line x1="0" y1="0" x2="0" y2="4" stroke="{ink}" '
        'stroke-width="1.2"/></pattern>'
    )


def _path(d: list[str], **attrs: str) -> str:
    if not d:
        return ""
    extra = " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<path d="{"".join(d)}" {extra}/>'


@dataclass(frozen=True)
class _Frame:
    """The drawing's geometry: the span of days across from x0 to x1, and the rows' band from top to bottom."""

    start: date
    end: date
    x0: float
    x1: float
    width: float
    share: float  # percent of the whole picture's width the labels take
    top: float
    bottom: float

    def x(self, day: date) -> float:
        """The drawing x of a day."""
        return _x(day, self.start, self.end, self.x0, self.x1)

    def left(self, x: float) -> str:
        """A drawing x as a percentage of the whole picture's width (the labels' column included)."""
        return _num(self.share + (100 - self.share) * x / self.width) + "%"


@dataclass
class _Layers:
    """The picture's parts: SVG path data by layer, the row labels, and the words laid over the drawing."""

    grid: list[str] = field(default_factory=list)
    dashes: list[str] = field(default_factory=list)
    bars: dict[str, list[str]] = field(default_factory=lambda: {"seller": [], "buyer": [], "joint": [], "": []})
    filled: list[str] = field(default_factory=list)
    hollow: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    crosses: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)


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
    """The picture as HTML: the row labels in a column, beside them an SVG with the month grid, a dashed
    line at the letter's date, a solid one at the target and, per milestone, a bar from the milestone
    before it (in date order) to its due date ending in a diamond (filled when confirmed or done, hollow
    when proposed, crossed out when dropped); a legend below. Styled by the `.gantt` rules of base.css.

    The SVG stretches to the labels' height (preserveAspectRatio="none"): its rows are CSS pixels, so they
    line up with the labels whatever the page size; across, it is within a few percent of `chart_width`.
    """
    if not rows:
        return Markup("")
    s = style or GanttStyle()
    frame = _frame(rows, today, target, s)
    share = s.label_share
    layers = _Layers()
    _month_grid(layers, frame, s)
    _milestones(layers, rows, frame, s, today=today, after_heading=after_heading)
    svg = _drawing(layers, frame, s)
    svg.extend(_today_and_target(layers, frame, s, today=today, target=target))
    svg.append("</svg>")
    return Markup(  # every word in it went through escape() or isolate()
        f'<div class="gantt"><div class="gantt-chart" style="padding:{s.top}px 0 {s.bottom}px">'
        f'<div class="g-labels" style="width:{_num(share - 1)}%">'
        + "".join(layers.labels)
        + f'</div><div class="g-drawing" style="left:{_num(share)}%;width:{_num(100 - share)}%">'
        + "".join(svg)
        + "</div>"
        + "".join(layers.words)
        + '</div><div class="gantt-legend">'
        + "".join(_legend(s, seller, buyer))
        + "</div></div>"
    )


def _frame(rows: list[Row], today: date, target: date | None, s: GanttStyle) -> _Frame:
    """The span of days the picture covers (every due date, the letter's date and the target, with a margin)."""
    dated = sorted(r.due for r in rows if r.due is not None)
    marks = [d for d in (today, target) if d is not None]
    first, last = min([*dated, *marks]), max([*dated, *marks])
    start = first - timedelta(days=max(3, (last - first).days // 30))
    end = last + timedelta(days=max(5, (last - first).days // 25))
    width = float(s.chart_width)
    has_after = any(r.phase == "after" for r in rows)
    top = float(s.top)
    chart_bottom = top + (len(rows) + has_after) * s.row_height
    return _Frame(start, end, 4.0, width - 6.0, width, s.label_share, top, chart_bottom)


@dataclass(frozen=True)
class MonthLabel:
    """A month's name over the drawing: its left edge and estimated width in drawing units, and its text."""

    x: float
    width: float
    text: str


# Label steps in months; a step dividing 12 labels every January, where the year is written.
_STEPS = (1, 2, 3, 4, 6, 12, 24, 60, 120)


def month_labels(
    rows: list[Row], *, today: date, target: date | None, style: GanttStyle | None = None
) -> list[MonthLabel]:
    """The month names the picture writes over its grid, spaced so that no two meet."""
    s = style or GanttStyle()
    frame = _frame(rows, today, target, s)
    return _month_labels(frame, _month_starts(frame), s)


def _month_starts(f: _Frame) -> list[date]:
    month = date(f.start.year, f.start.month, 1)
    ticks: list[date] = []
    while month <= f.end:
        if month >= f.start:
            ticks.append(month)
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return ticks


def _label_width(text: str, s: GanttStyle) -> float:
    # An estimate on the wide side (Inter's "May 2027" is 4.7 em over 8 characters), so labels that fit
    # here fit on paper; the drawing's units are within a few percent of CSS pixels.
    return len(text) * s.label_em * s.label_px


def _month_labels(f: _Frame, ticks: list[date], s: GanttStyle) -> list[MonthLabel]:
    """Every month's name when they fit, else every 2nd, 3rd ... month's (January always among them); the
    year at the first label and at each year's first; none that would run past the drawing's end."""
    gap = s.label_px / 2
    labels: list[MonthLabel] = []
    for step in _STEPS:
        labels = []
        year = 0
        for tick in ticks:
            if (tick.year * 12 + tick.month - 1) % step:
                continue
            text = _MONTHS[tick.month - 1] + (f" {tick.year}" if tick.year != year else "")
            year = tick.year
            labels.append(MonthLabel(f.x(tick) + 2, _label_width(text, s), text))
        if labels and labels[-1].x + labels[-1].width > f.width:
            labels.pop()
        if all(a.x + a.width + gap <= b.x for a, b in pairwise(labels)):
            break
    if not labels:  # no month starts inside the picture (or only at its very end): name the first month
        text = f"{_MONTHS[f.start.month - 1]} {f.start.year}"
        labels = [MonthLabel(f.x0, _label_width(text, s), text)]
    return labels


def _month_grid(layers: _Layers, f: _Frame, s: GanttStyle) -> None:
    """A grid line at each month's start and the month names over them (see _month_labels)."""
    ticks = _month_starts(f)
    # Over many years month lines would merge into a grey band: then only each year's start gets one.
    yearly = (f.x1 - f.x0) / max((f.end - f.start).days, 1) * 30 < 5
    for tick in ticks:
        if yearly and tick.month != 1:
            continue
        x = f.x(tick)
        layers.grid.append(f"M{_num(x)} {_num(f.top - 3)}V{_num(f.bottom)}")
    for label in _month_labels(f, ticks, s):
        layers.words.append(f'<span class="g-month" style="left:{f.left(label.x)};top:0">{label.text}</span>')


def _bar_starts(rows: list[Row], today: date) -> dict[int, date | None]:
    """Where each bar starts: the due date of the milestone before it in date order (the letter's date
    for the first), so the bars read as the stretch of time each step has."""
    starts: dict[int, date | None] = {}
    previous: date | None = None
    for i, r in sorted(enumerate(rows), key=lambda p: (p[1].due is None, p[1].due or date.min, p[0])):
        starts[i] = previous if previous is not None else (min(today, r.due) if r.due else None)
        if r.due is not None:
            previous = r.due
    return starts


def _milestones(layers: _Layers, rows: list[Row], f: _Frame, s: GanttStyle, *, today: date, after_heading: str) -> None:
    """A label per row (and one for the after-PO phase), and per dated milestone its bar and diamond."""
    starts = _bar_starts(rows, today)
    id_width = max(len(r.id) for r in rows)
    y = f.top
    after_started = False
    for i, r in enumerate(rows):
        if r.phase == "after" and not after_started:
            after_started = True
            layers.dashes.append(f"M0 {_num(y + 0.5)}H{_num(f.x1)}")
            phase = isolate(_truncate(after_heading, s.label_chars))
            layers.labels.append(f'<div class="g-row g-phase">{phase}</div>')
            y += s.row_height
        mid = y + s.row_height / 2
        # Figure spaces pad the ids, so the titles line up (the ids' digits are tabular).
        number = escape(r.id) + "\u2007" * (id_width - len(r.id))
        css = "g-row g-dropped" if r.status == "dropped" else "g-row"
        layers.labels.append(f'<div class="{css}"><b>{number}</b> {isolate(_truncate(r.title, s.label_chars))}</div>')
        y += s.row_height
        if r.due is None:
            # Written just after the letter's date, clear of its dashed line.
            x_note = f.x(today) + 4
            layers.words.append(f'<span class="g-nodate" style="left:{f.left(x_note)};top:{_num(mid - 6)}px">'
                                "date to be agreed</span>")  # fmt: skip
            continue
        xd = f.x(r.due)
        begin = starts[i]
        if begin is not None and begin < r.due and r.status != "dropped":
            xb = f.x(begin)
            side = r.side if r.side in layers.bars else ""
            layers.bars[side].append(f"M{_num(xb)} {_num(mid - 3.5)}h{_num(xd - xb)}v7h{_num(xb - xd)}z")
        diamond = _diamond(xd, mid, 4.6)
        if r.status == "dropped":
            layers.dropped.append(diamond)
            layers.crosses.append(f"M{_num(xd - 4.6)} {_num(mid - 4.6)}l9.2 9.2")
        elif r.status in ("confirmed", "done"):
            layers.filled.append(diamond)
        else:
            layers.hollow.append(diamond)


def _drawing(layers: _Layers, f: _Frame, s: GanttStyle) -> list[str]:
    """The SVG's opening and its layers, bottom to top: grid, phase line, axis, bars, diamonds."""
    height = f.bottom + s.bottom
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_num(f.width)} {_num(height)}" '
        f'preserveAspectRatio="none" aria-hidden="true"><defs>{_hatch(s.ink, s.buyer)}</defs>',
        _path(layers.grid, fill="none", stroke=s.grid, stroke_width="0.6"),
        _path(layers.dashes, fill="none", stroke=s.grid, stroke_width="0.6", stroke_dasharray="2 2"),
        _path([f"M{_num(f.x0)} {_num(f.bottom)}H{_num(f.x1)}"], fill="none", stroke=s.ink, stroke_width="0.6"),
    ]
    for side, fill in (("seller", s.seller), ("buyer", "url(#hatch)"), ("joint", s.joint), ("", "#ffffff")):
        svg.append(_path(layers.bars[side], fill=fill, stroke=s.ink, stroke_width="0.5"))
    svg.append(_path(layers.hollow, fill="#ffffff", stroke=s.ink, stroke_width="1"))
    svg.append(_path(layers.filled, fill=s.ink, stroke=s.ink, stroke_width="1"))
    svg.append(_path(layers.dropped, fill="#ffffff", stroke=s.muted, stroke_width="1"))
    svg.append(_path(layers.crosses, fill="none", stroke=s.muted, stroke_width="1"))
    return svg


def _today_and_target(layers: _Layers, f: _Frame, s: GanttStyle, *, today: date, target: date | None) -> list[str]:
    """The letter's date and the target, over the rows; the second name drops a line when they are close."""
    svg: list[str] = []
    label_y = f.bottom + 3
    last_x: float | None = None
    for day, name, dash, stroke_width, colour in (
        (today, "Today", "3 2", "1", s.today),
        (target, "Target", "none", "1.6", s.target),
    ):
        if day is None:
            continue
        x = f.x(day)
        line = [f"M{_num(x)} {_num(f.top - 3)}V{_num(f.bottom + 3)}"]
        svg.append(_path(line, fill="none", stroke=colour, stroke_width=stroke_width, stroke_dasharray=dash))
        if last_x is not None and abs(x - last_x) < 70:
            label_y += 12
        last_x = x
        text = f"{name} {day.day} {_MONTHS[day.month - 1]}"
        near_end = x + 64 > f.width
        where = f"right:{_num((100 - f.share) * (f.width - x + 3) / f.width)}%" if near_end else f"left:{f.left(x + 3)}"
        span = f'<span class="g-mark g-{name.lower()}" style="{where};top:{_num(label_y)}px">{text}</span>'
        layers.words.append(span)
    return svg


def _legend(s: GanttStyle, seller: str, buyer: str) -> list[str]:
    """The key below the picture: the three sides' bars and the three kinds of diamond."""
    return [
        _swatch(f'<rect x="0.5" y="1.5" width="15" height="7" fill="{s.seller}" stroke="{s.ink}" stroke-width="0.5"/>',
                seller),
        _swatch(f'<defs>{_hatch(s.ink, s.buyer, "hatch-key")}</defs><rect x="0.5" y="1.5" width="15" height="7" '
                f'fill="url(#hatch-key)" stroke="{s.ink}" stroke-width="0.5"/>', buyer),
        _swatch(f'<rect x="0.5" y="1.5" width="15" height="7" fill="{s.joint}" stroke="{s.ink}" stroke-width="0.5"/>',
                "Joint"),
        _swatch(f'<path d="{_diamond(8, 5, 4)}" fill="{s.ink}" stroke="{s.ink}"/>', "confirmed or done"),
        _swatch(f'<path d="{_diamond(8, 5, 4)}" fill="#ffffff" stroke="{s.ink}"/>', "proposed"),
        _swatch(f'<path d="{_diamond(8, 5, 4)}M4 1l8 8" fill="#ffffff" stroke="{s.ink}"/>', "dropped"),
    ]  # fmt: skip


def _swatch(drawing: str, name: str) -> str:
    return (
        '<span class="g-key"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 10" width="16" height="10" '
        f'aria-hidden="true">{drawing}</svg> {isolate(name)}</span>'
    )
