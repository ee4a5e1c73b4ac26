"""Inline SVG bar charts, drawn by hand so the report needs no plotting library or scripts.

Every bar and value label carries the ``data-key``/``data-value`` of the figure it shows. A
hidden (suppressed) or missing value draws no bar — a bar's height would give the count away —
only its symbol on the zero line.

Charts are drawn in a narrow coordinate system (:data:`WIDTH` units) with 13-unit text and
scaled to the width of their card by CSS: on a 390 px phone the text stays at about 11 px, on a
desktop the chart is capped at a readable size. Labels that would collide at that width (many
bars, long category names) are turned, never shrunk.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape

import attrs

from pamlib.reporting.comparison import Z_95, Z_998, Comparison, control_limits
from pamlib.reporting.summary import Suppressed, Value

__all__ = ["Series", "bar_chart", "display", "figure_attrs", "funnel_plot"]

WIDTH, HEIGHT = 380, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 10, 34, 44
#: Text size in chart units (the stylesheet's) and the width of one character, a little above
#: the average of a sans-serif face so that layout errs towards room to spare.
FONT, CHAR = 13, 7.6
LEGEND_ROW = 18


def display(value: Value) -> str:
    """How a figure is written in the page: as in the JSON, ``–`` for none."""
    if value is None:
        return "–"
    if isinstance(value, Suppressed):
        return str(value)
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def figure_attrs(key: str, value: Value) -> str:
    """``data-key``/``data-value`` attributes: the JSON path and the JSON text of the value."""
    as_json = json.dumps(str(value) if isinstance(value, Suppressed) else value)
    return f'data-key="{escape(key)}" data-value="{escape(as_json)}"'


@attrs.frozen
class Series:
    """One coloured set of bars: a value (and its key) per category.

    ``negative_colour``, when given, fills the bars of negative values.
    """

    name: str
    colour: str
    keys: Sequence[str]
    values: Sequence[Value]
    negative_colour: str | None = None


def _text_width(text: str) -> float:
    return len(text) * CHAR


def _legend(
    items: Sequence[tuple[str, float]], left: float, right: float
) -> list[tuple[float, float]]:
    """Where each legend item goes, ``(x, y of its text baseline)``: left to right, wrapping to a
    new row when an item (``(label, width of its swatch)``) would cross ``right``."""
    places, x, row = [], left, 0
    for label, swatch in items:
        width = swatch + 5 + _text_width(label)
        if x > left and x + width > right:
            x, row = left, row + 1
        places.append((x, 18.0 + row * LEGEND_ROW))
        x += width + 14
    return places


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)


def bar_chart(  # noqa: PLR0915 -- one drawing, read top to bottom
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    y_title: str,
    reference_lines: Sequence[tuple[float, str]] = (),
    description: str | None = None,
) -> str:
    """Grouped vertical bars from a zero line (negative values go down), labelled with values.

    ``title``, ``categories`` and ``description`` (a longer text alternative, written as the
    chart's ``desc``) must be plain text; they are escaped here. A series with a
    ``negative_colour`` names gain and fall in the legend; a fall is also told apart without
    colour, by its bar going down from the zero line and its signed value label.
    """
    numbers = [v for s in series for v in s.values if isinstance(v, int | float)]
    numbers += [y for y, _ in reference_lines]
    top = max([0.0, *numbers]) or 1.0
    bottom = min([0.0, *numbers])
    step = _nice_step(top - bottom)
    top = math.ceil(top / step) * step
    bottom = math.floor(bottom / step) * step
    if top - bottom < step:
        top = bottom + step
    plot_w = WIDTH - LEFT - RIGHT
    group_w = plot_w / max(1, len(categories))
    bar_w = min(30.0, group_w * 0.8 / max(1, len(series)))

    # Legend: one swatch per series; gain and fall each named where negatives differ in colour.
    legend: list[tuple[str, str]] = []
    for s in series:
        if s.negative_colour:
            legend += [(f"{s.name}: gain", s.colour), ("fall", s.negative_colour)]
        else:
            legend.append((s.name, s.colour))
    places = _legend([(name, 12.0) for name, _ in legend], LEFT, WIDTH - RIGHT)
    legend_bottom = max(y for _, y in places) + 4

    # Labels turn (values upright, categories slanted) rather than collide.
    value_texts = [display(v) for s in series for v in s.values]
    widest_value = max([_text_width(t) for t in value_texts] + [0.0])
    spacing = bar_w if len(series) > 1 else group_w  # between neighbouring value labels
    turn_values = widest_value > spacing - 2
    widest_category = max([_text_width(c) for c in categories] + [0.0])
    slant_categories = widest_category > group_w - 4
    top_margin = legend_bottom + (widest_value + 8 if turn_values else FONT + 6)
    bottom_margin = 26 + (widest_category * 0.64 if slant_categories else 0)
    if bottom < 0 and turn_values:
        bottom_margin += widest_value
    plot_h = HEIGHT - TOP - BOTTOM
    height = top_margin + plot_h + bottom_margin

    def y(value: float) -> float:
        return top_margin + (top - value) / (top - bottom) * plot_h

    out = [
        (
            f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" '
            f'height="{height:.0f}" role="img" aria-label="{escape(title)}">'
        ),
        f"<title>{escape(title)}</title>",
    ]
    if description:
        out.append(f"<desc>{escape(description)}</desc>")
    tick = bottom
    while tick <= top + step / 1000:
        ty = y(tick)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="tick" x="{LEFT - 5}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{tick:g}</text>"
        )
        tick += step
    out.append(
        f'<text class="axis-title" transform="translate(11 {top_margin + plot_h / 2:.1f}) '
        f'rotate(-90)" text-anchor="middle">{escape(y_title)}</text>'
    )
    zero = y(0.0)
    for i, category in enumerate(categories):
        x0 = LEFT + i * group_w + (group_w - bar_w * len(series)) / 2
        for j, s in enumerate(series):
            x = x0 + j * bar_w
            value, key = s.values[i], s.keys[i]
            cx = x + bar_w / 2
            if isinstance(value, int | float):
                end = y(value)
                bar_height = abs(zero - end)
                paint = f'fill="{s.colour}"'
                if value < 0 and s.negative_colour:
                    paint = f'fill="{s.negative_colour}"'
                out.append(
                    f'<rect class="bar" x="{x + 1:.1f}" y="{min(zero, end):.1f}" '
                    f'width="{bar_w - 2:.1f}" height="{bar_height:.1f}" {paint} '
                    f"{figure_attrs(key, value)}><title>{escape(s.name)}, {escape(category)}: "
                    f"{display(value)}</title></rect>"
                )
                below = value < 0
                ly = end + 4 if below else end - 4
            else:
                below, ly = False, zero - 4
            if turn_values:
                anchor = "end" if below else "start"
                place = (
                    f'x="{cx + 4:.1f}" y="{ly:.1f}" text-anchor="{anchor}" '
                    f'transform="rotate(-90 {cx + 4:.1f} {ly:.1f})"'
                )
            else:
                ly = ly + 9 if below else ly
                place = f'x="{cx:.1f}" y="{ly:.1f}" text-anchor="middle"'
            out.append(
                f'<text class="value" {place} {figure_attrs(key, value)}>'
                f"{escape(display(value))}</text>"
            )
        cx = LEFT + (i + 0.5) * group_w
        cy = top_margin + plot_h + 18
        if bottom < 0 and turn_values:
            cy += widest_value
        if slant_categories:
            place = (
                f'x="{cx + 4:.1f}" y="{cy - 4:.1f}" text-anchor="end" '
                f'transform="rotate(-40 {cx + 4:.1f} {cy - 4:.1f})"'
            )
        else:
            place = f'x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle"'
        out.append(f'<text class="category" {place}>{escape(category)}</text>')
    for value, label in reference_lines:
        ry = y(value)
        out.append(
            f'<line class="reference" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ry:.1f}" '
            f'y2="{ry:.1f}"/><text class="reference-label" x="{WIDTH - RIGHT - 2}" '
            f'y="{ry - 3:.1f}" text-anchor="end">{escape(label)}</text>'
        )
    out.append(
        f'<line class="zero" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero:.1f}" y2="{zero:.1f}"/>'
    )
    for (name, fill), (lx, ly) in zip(legend, places, strict=True):
        out.append(
            f'<rect x="{lx:.1f}" y="{ly - 10:.1f}" width="12" height="12" fill="{fill}" '
            f'stroke="#1d2733" stroke-width=".5"/>'
            f'<text class="legend" x="{lx + 17:.1f}" y="{ly:.1f}">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


#: Point colours by position against the funnel (Okabe–Ito, safe for colour-blind readers);
#: the position is also written in words in the data table.
FUNNEL_COLOURS = {
    "within": "#0072b2",
    "above-95": "#e69f00",
    "below-95": "#e69f00",
    "above-99.8": "#d55e00",
    "below-99.8": "#d55e00",
}


def funnel_plot(comparison: Comparison, *, key_prefix: str, description: str) -> str:
    """A funnel plot of each plotted group's rate against its eligible count, with the cohort
    mean and the 95 % and 99.8 % control limits; ``key_prefix`` is the JSON path of the
    comparison (``site_comparison``), ``description`` the plot's text alternative."""
    title = f"Share improving by {comparison.group_by} against the number eligible (funnel plot)"
    points = [(i, g) for i, g in enumerate(comparison.groups) if g.plotted]
    mean = comparison.cohort_rate_pct
    eligible = [g.eligible for _, g in points if isinstance(g.eligible, int)]
    span = max([10, *eligible]) * 1.08
    step = _nice_step(span)
    right = math.ceil(span / step) * step
    legend = (("mean", "cohort mean"), ("limit95", "95 % limits"), ("limit998", "99.8 % limits"))
    places = _legend([(label, 22.0) for _, label in legend], LEFT, WIDTH - RIGHT)
    top_margin = max(y for _, y in places) + 16
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT + 40 - TOP - BOTTOM
    height = top_margin + plot_h + BOTTOM

    def x(n: float) -> float:
        return LEFT + n / right * plot_w

    def y(pct: float) -> float:
        return top_margin + (100 - pct) / 100 * plot_h

    out = [
        (
            f'<svg class="chart funnel" viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" '
            f'height="{height:.0f}" role="img" aria-labelledby="funnel-title funnel-desc">'
        ),
        f'<title id="funnel-title">{escape(title)}</title>',
        f'<desc id="funnel-desc">{escape(description)}</desc>',
    ]
    for tick in range(0, 101, 20):
        ty = y(tick)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    tick_n = 0.0
    while tick_n <= right + step / 1000:
        tx = x(tick_n)
        out.append(
            f'<text class="tick" x="{tx:.1f}" y="{top_margin + plot_h + 16:.1f}" '
            f'text-anchor="middle">{tick_n:g}</text>'
        )
        tick_n += step
    out.append(
        f'<text class="axis-title" transform="translate(11 {top_margin + plot_h / 2:.1f}) '
        'rotate(-90)" '
        'text-anchor="middle">% improving</text>'
        f'<text class="axis-title" x="{LEFT + plot_w / 2:.1f}" y="{height - 6:.0f}" '
        'text-anchor="middle">eligible patients</text>'
    )
    if mean is not None:
        p = mean / 100
        ns = [1 + (right - 1) * (i / 80) ** 2 for i in range(81)]
        for z, cls in ((Z_95, "limit95"), (Z_998, "limit998")):
            for side in (0, 1):
                path = " ".join(
                    f"{x(n):.1f},{y(100 * control_limits(p, n, z)[side]):.1f}" for n in ns
                )
                out.append(f'<polyline class="{cls}" fill="none" points="{path}"/>')
        out.append(
            f'<line class="mean" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(mean):.1f}" '
            f'y2="{y(mean):.1f}"/>'
        )
    for i, g in points:
        if not (isinstance(g.eligible, int) and isinstance(g.rate_pct, float | int)):
            continue
        cx, cy = x(g.eligible), y(g.rate_pct)
        key = f"{key_prefix}.groups.{i}.rate_pct"
        out.append(  # a rect with round corners: like a bar, it carries no text of its own
            f'<rect class="point" x="{cx - 5:.1f}" y="{cy - 5:.1f}" width="10" height="10" '
            f'rx="5" fill="{FUNNEL_COLOURS[g.position or "within"]}" '
            f"{figure_attrs(key, g.rate_pct)}><title>{escape(g.group or '(blank)')}: "
            f"{display(g.rate_pct)} % of {g.eligible} eligible</title></rect>"
            f'<text class="point-label" x="{cx + 7:.1f}" y="{cy - 6:.1f}">'
            f"{escape(g.group or '(blank)')}</text>"
        )
    for (cls, label), (lx, ly) in zip(legend, places, strict=True):
        out.append(
            f'<line class="{cls}" x1="{lx:.1f}" x2="{lx + 22:.1f}" y1="{ly - 4:.1f}" '
            f'y2="{ly - 4:.1f}"/><text class="legend" x="{lx + 27:.1f}" y="{ly:.1f}">{label}</text>'
        )
    out.append("</svg>")
    return "".join(out)
