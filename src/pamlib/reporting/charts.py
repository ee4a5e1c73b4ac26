"""Inline SVG bar charts, drawn by hand so the report needs no plotting library or scripts.

Every bar and value label carries the ``data-key``/``data-value`` of the figure it shows. A
hidden (suppressed) or missing value draws no bar — a bar's height would give the count away —
only its symbol on the zero line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape

import attrs

from pamlib.reporting.summary import Suppressed, Value

__all__ = ["Series", "bar_chart", "display", "figure_attrs"]

WIDTH, HEIGHT = 640, 270
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 34, 44


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


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    y_title: str,
    reference_lines: Sequence[tuple[float, str]] = (),
) -> str:
    """Grouped vertical bars from a zero line (negative values go down), labelled with values.

    ``title`` and ``categories`` must be plain text; they are escaped here.
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
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return TOP + (top - value) / (top - bottom) * plot_h

    out = [
        (
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img" aria-label="{escape(title)}">'
        ),
        f"<title>{escape(title)}</title>",
    ]
    tick = bottom
    while tick <= top + step / 1000:
        ty = y(tick)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{tick:g}</text>"
        )
        tick += step
    out.append(
        f'<text class="axis-title" transform="translate(14 {TOP + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_title)}</text>'
    )
    zero = y(0.0)
    group_w = plot_w / max(1, len(categories))
    bar_w = min(34.0, group_w * 0.8 / max(1, len(series)))
    for i, category in enumerate(categories):
        x0 = LEFT + i * group_w + (group_w - bar_w * len(series)) / 2
        for j, s in enumerate(series):
            x = x0 + j * bar_w
            value, key = s.values[i], s.keys[i]
            cx = x + bar_w / 2
            if isinstance(value, int | float):
                end = y(value)
                height = abs(zero - end)
                fill = s.negative_colour if value < 0 and s.negative_colour else s.colour
                out.append(
                    f'<rect class="bar" x="{x + 1:.1f}" y="{min(zero, end):.1f}" '
                    f'width="{bar_w - 2:.1f}" height="{height:.1f}" fill="{fill}" '
                    f"{figure_attrs(key, value)}><title>{escape(s.name)}, {escape(category)}: "
                    f"{display(value)}</title></rect>"
                )
                ly = end - 4 if value >= 0 else end + 12
            else:
                ly = zero - 4
            out.append(
                f'<text class="value" x="{cx:.1f}" y="{ly:.1f}" text-anchor="middle" '
                f"{figure_attrs(key, value)}>{escape(display(value))}</text>"
            )
        out.append(
            f'<text class="category" x="{LEFT + (i + 0.5) * group_w:.1f}" '
            f'y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{escape(category)}</text>'
        )
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
    lx = LEFT
    for s in series:
        out.append(
            f'<rect x="{lx}" y="8" width="12" height="12" fill="{s.colour}"/>'
            f'<text class="legend" x="{lx + 16}" y="18">{escape(s.name)}</text>'
        )
        lx += 24 + 7 * len(s.name)
    out.append("</svg>")
    return "".join(out)
