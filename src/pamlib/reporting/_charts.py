"""The report's charts, drawn by Matplotlib as inline SVG with the text kept as text.

Matplotlib (the ``report`` extra) is imported only when a chart is drawn, so ``import pamlib``
stays cheap; without it :func:`available` is false and the report puts a note where each chart
would be (every figure is in the tables either way). Only the SVG backend is used, never pyplot
or a display, and the output is deterministic: a fixed hash salt, no date or creator metadata.

Each mark that shows a figure carries the ``data-key``/``data-value`` of that figure (its JSON
path and JSON text), set through the artist's ``gid`` and written in after rendering. A hidden
(suppressed) or missing value draws no bar — a bar's height would give the count away — only
its symbol on the zero line. Every ``id`` in a chart is prefixed with a digest of the chart's
keys, so charts share a page without clashing ids.

Charts are drawn :data:`WIDTH` points wide with 13-point text and scaled to the width of their
card by CSS: on a 390 px phone the text stays at about 11 px.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from html import escape
from typing import TYPE_CHECKING, Any

import attrs

from pamlib.reporting._comparison import Z_95, Z_998, Comparison, control_limits
from pamlib.reporting._summary import Suppressed, Value

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH, HEIGHT = 380, 250
#: Text size in points (= SVG user units, = CSS px before the chart is scaled) and the width
#: of one character, a little above the average of a sans-serif face so that the choice to
#: turn labels errs towards room to spare.
FONT, CHAR = 13, 7.6
INK, MUTED, GRID = "#1d2733", "#4a5a6c", "#e3e8ee"

MISSING_NOTE = (
    "Chart not drawn: charts need Matplotlib (pip install 'pamlib[report]'). "
    "The table gives every figure."
)

#: rcParams for every chart: text as SVG text, a fixed salt for ids, the page's inks.
_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "pamlib-report",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": FONT,
    "text.color": INK,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": MUTED,
    "path.simplify": False,
    # Text is drawn as given: a site named ``$\alpha$`` is that name, not mathematics, and
    # ``$\foo$`` is not a parse error that stops the report.
    "text.parse_math": False,
}


def available() -> bool:
    """Whether charts can be drawn (Matplotlib, from the ``report`` extra, is installed)."""
    return importlib.util.find_spec("matplotlib") is not None


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


class _Marks:
    """Attributes (and a tooltip) to write onto artists, found in the SVG by their ``gid``."""

    def __init__(self) -> None:
        self.attributes: dict[str, tuple[str, str | None]] = {}

    def add(self, attributes: str, title: str | None = None) -> str:
        gid = f"pamlib-mark-{len(self.attributes)}"
        self.attributes[gid] = (attributes, title)
        return gid


#: Fixed margins (points) around the plot: room for the legend above, the y-axis title and
#: ticks at the left; the bottom margin depends on the labels. Fixed margins keep the layout
#: cheap (no layout engine) and every chart of a kind the same shape.
LEFT, RIGHT, TOP = 50, 12, 30


@contextmanager
def _figure(height: float, bottom: float) -> Iterator[Figure]:
    import matplotlib as mpl
    from matplotlib.figure import Figure

    with mpl.rc_context(_RC):  # type: ignore[arg-type]  # keys typed as literals
        figure = Figure(figsize=(WIDTH / 72, height / 72))
        figure.subplots_adjust(
            left=LEFT / WIDTH,
            right=1 - RIGHT / WIDTH,
            top=1 - TOP / height,
            bottom=bottom / height,
        )
        yield figure


def _legend(figure: Figure, handles: Sequence[Artist], handle_length: float) -> None:
    figure.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(LEFT / WIDTH - 0.1, 1),
        ncols=3,
        frameon=False,
        handlelength=handle_length,
        columnspacing=0.8,
        borderaxespad=0.2,
    )


_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
#: Dropped from Matplotlib's SVG: the XML prologue, metadata, a style sheet that would apply to
#: the whole page, and clip paths (every mark lies inside its axes), whose ``url(#…)``
#: references a self-contained page does without.
_DROP = re.compile(
    r"<\?xml[^>]*>|<!DOCTYPE[^>]*>|<metadata>.*?</metadata>|<style[^>]*>.*?</style>"
    r'|<clipPath\b.*?</clipPath>| clip-path="url\(#[^)]*\)"',
    re.S,
)
_ID = re.compile(r'(\bid="|url\(#|xlink:href="#)([^")]+)')
#: A tag of the SVG: ids are prefixed there only, never in the text of a label or tooltip (a
#: site named ``url(#a)``), which Matplotlib and :func:`html.escape` leave without ``<``.
_TAG = re.compile(r"<[^>]*>")


def _svg(
    figure: Figure,
    marks: _Marks,
    *,
    title: str,
    description: str | None,
    css_class: str,
    ident: str,
    label_id: str | None = None,
) -> str:
    """The figure as an inline ``<svg>``: metadata and global styles dropped, ids prefixed,
    marks given their attributes, and a title and description for assistive technology."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    body = _DROP.sub("", buffer.getvalue())
    width, height = figure.get_size_inches() * 72
    prefix = "c" + hashlib.sha256(ident.encode("utf-8")).hexdigest()[:10] + "-"
    for gid, (attributes, tip) in marks.attributes.items():
        tooltip = f"<title>{escape(tip)}</title>" if tip is not None else ""
        body = body.replace(f'<g id="{gid}">', f"<g {attributes}>{tooltip}", 1)
    body = re.sub(r'<g id="[^"]*">', "<g>", body)  # Matplotlib's names for its groups
    body = _TAG.sub(  # marker shapes
        lambda tag: _ID.sub(lambda m: m.group(1) + prefix + m.group(2), tag.group(0)), body
    )
    if label_id:  # named by id, so that the page can point at them
        names = (
            f'aria-labelledby="{label_id}-title {label_id}-desc"',
            f' id="{label_id}-title"',
            f' id="{label_id}-desc"',
        )
    else:
        names = (f'aria-label="{escape(title)}"', "", "")
    opening = (
        f'<svg class="{css_class}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" {names[0]}>'
        f"<title{names[1]}>{escape(title)}</title>"
        + (f"<desc{names[2]}>{escape(description)}</desc>" if description else "")
    )
    body = _SVG_OPEN.sub(lambda _: opening, body, count=1)
    body = re.sub(r">\s+<", "><", body.strip()).replace("<defs></defs>", "")
    return re.sub(r"\s*\n\s*", " ", body)


def _style_axes(axes: Axes, y_title: str) -> None:
    axes.set_ylabel(y_title)
    axes.grid(axis="y", color=GRID, linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    y_title: str,
    reference_lines: Sequence[tuple[float, str]] = (),
    description: str | None = None,
) -> str:
    """Grouped vertical bars from a zero line (negative values go down), labelled with values.

    ``title`` and ``description`` become the chart's ``title`` and ``desc`` (its text
    alternative). A series with a ``negative_colour`` names gain and fall in the legend; a fall
    is also told apart without colour, by its bar going down and its signed value label.
    """
    from matplotlib.patches import Patch

    numbers = [v for s in series for v in s.values if isinstance(v, int | float)]
    numbers += [y for y, _ in reference_lines]
    top, bottom = max([0.0, *numbers]) or 1.0, min([0.0, *numbers])
    plot_w = WIDTH - 70
    group_w = plot_w / max(1, len(categories))
    bar_w = min(30.0, group_w * 0.8 / max(1, len(series)))
    widest_value = max([len(display(v)) * CHAR for s in series for v in s.values] + [0.0])
    turn_values = widest_value > (bar_w if len(series) > 1 else group_w) - 2
    slant = max([len(c) * CHAR for c in categories] + [0.0]) > group_w - 4
    marks = _Marks()
    bottom_margin = 24 + (40 if slant else 0)
    height = HEIGHT + (40 if slant else 0) + (20 if turn_values else 0)
    with _figure(height, bottom_margin) as figure:
        axes = figure.add_subplot()
        _style_axes(axes, y_title)
        span = top - bottom
        pad = span * (0.28 if turn_values else 0.12)
        axes.set_ylim(bottom - (pad if bottom < 0 else 0), top + pad)
        width = bar_w / group_w
        legend = []
        for j, s in enumerate(series):
            offset = (j - (len(series) - 1) / 2) * width
            for i, (key, value) in enumerate(zip(s.keys, s.values, strict=True)):
                x = i + offset
                below = isinstance(value, int | float) and value < 0
                if isinstance(value, int | float):
                    colour = s.negative_colour if below and s.negative_colour else s.colour
                    tip = f"{s.name}, {categories[i]}: {display(value)}"
                    gid = marks.add(f'class="bar" {figure_attrs(key, value)}', tip)
                    axes.bar(
                        x, value, width * 0.92, color=colour, edgecolor=INK, linewidth=0.4, gid=gid
                    )
                at = float(value) if isinstance(value, int | float) else 0.0
                nudge = span * 0.015 * (-1 if below else 1)
                axes.text(
                    x,
                    at + nudge,
                    display(value),
                    ha="center",
                    va=("top" if below else "bottom"),
                    rotation=90 if turn_values else 0,
                    fontweight="bold",
                    gid=marks.add(f'class="value" {figure_attrs(key, value)}'),
                )
            if s.negative_colour:
                legend += [
                    Patch(
                        facecolor=s.colour, edgecolor=INK, linewidth=0.4, label=f"{s.name}: gain"
                    ),
                    Patch(facecolor=s.negative_colour, edgecolor=INK, linewidth=0.4, label="fall"),
                ]
            else:
                legend.append(Patch(facecolor=s.colour, edgecolor=INK, linewidth=0.4, label=s.name))
        for value, label in reference_lines:
            axes.axhline(value, color="#7a8794", linestyle=(0, (4, 3)), linewidth=1)
            axes.annotate(
                label,
                (1, value),
                xycoords=("axes fraction", "data"),
                xytext=(-2, 2),
                textcoords="offset points",
                ha="right",
                va="bottom",
                color=MUTED,
            )
        axes.axhline(0, color=INK, linewidth=1)
        axes.set_xticks(
            range(len(categories)),
            list(categories),
            rotation=40 if slant else 0,
            ha="right" if slant else "center",
            rotation_mode="anchor",
        )
        axes.tick_params(axis="x", length=0)
        axes.set_xlim(-0.5, len(categories) - 0.5)
        _legend(figure, legend, 1)
        keys = [k for s in series for k in s.keys]
        return _svg(
            figure,
            marks,
            title=title,
            description=description,
            css_class="chart",
            ident=title + "|" + "|".join(keys),
        )


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
    from matplotlib.lines import Line2D

    title = f"Share improving by {comparison.group_by} against the number eligible (funnel plot)"
    points = [(i, g) for i, g in enumerate(comparison.groups) if g.plotted]
    mean = comparison.cohort_rate_pct
    eligible = [g.eligible for _, g in points if isinstance(g.eligible, int)]
    right = max([10, *eligible]) * 1.1
    marks = _Marks()
    with _figure(HEIGHT + 50, 44) as figure:
        axes = figure.add_subplot()
        _style_axes(axes, "% improving")
        axes.set_xlabel("eligible patients")
        axes.set_xlim(0, right)
        axes.set_ylim(0, 100)
        axes.set_yticks(range(0, 101, 20))
        styles: dict[str, dict[str, Any]] = {
            "mean": {"color": INK, "linewidth": 1.5},
            "limit95": {"color": "#7a8794", "linewidth": 1, "linestyle": (0, (5, 3))},
            "limit998": {"color": "#7a8794", "linewidth": 1, "linestyle": (0, (1.5, 2.5))},
        }
        if mean is not None:
            p = mean / 100
            ns = [1 + (right - 1) * (i / 80) ** 2 for i in range(81)]
            for z, cls in ((Z_95, "limit95"), (Z_998, "limit998")):
                for side in (0, 1):
                    pcts = [100 * control_limits(p, n, z)[side] for n in ns]
                    axes.plot(ns, pcts, gid=marks.add(f'class="{cls}"'), **styles[cls])
            axes.axhline(mean, gid=marks.add('class="mean"'), **styles["mean"])
        for i, g in points:
            if not (isinstance(g.eligible, int) and isinstance(g.rate_pct, float | int)):
                continue
            name = g.group or "(blank)"
            key = f"{key_prefix}.groups.{i}.rate_pct"
            tip = f"{name}: {display(g.rate_pct)} % of {g.eligible} eligible"
            axes.plot(
                [g.eligible],
                [g.rate_pct],
                marker="o",
                markersize=8,
                linestyle="none",
                markerfacecolor=FUNNEL_COLOURS[g.position or "within"],
                markeredgecolor=INK,
                markeredgewidth=0.8,
                gid=marks.add(f'class="point" {figure_attrs(key, g.rate_pct)}', tip),
            )
            right_half = g.eligible > right / 2  # label on the inner side: it stays in view
            axes.annotate(
                name,
                (g.eligible, g.rate_pct),
                xytext=(-6 if right_half else 6, 5),
                textcoords="offset points",
                ha="right" if right_half else "left",
                gid=marks.add('class="point-label"'),
            )
        legend = [
            Line2D([], [], label=label, **styles[cls])
            for cls, label in (
                ("mean", "cohort mean"),
                ("limit95", "95 % limits"),
                ("limit998", "99.8 % limits"),
            )
        ]
        _legend(figure, legend, 1.4)
        return _svg(
            figure,
            marks,
            title=title,
            description=description,
            css_class="chart funnel",
            ident=title + "|" + key_prefix,
            label_id="funnel",
        )
