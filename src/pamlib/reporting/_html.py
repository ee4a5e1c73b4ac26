"""The single-file HTML cohort report: inline CSS and SVG, no scripts, fonts or images.

Charts are drawn by :mod:`pamlib.reporting._charts` (Matplotlib, the ``report`` extra); without
it each chart's place holds a note and the report keeps every figure in its tables.

Every figure in the page is an element with ``data-key`` (its JSON path in the summary) and
``data-value`` (its JSON text), so a test or a reader's tool can check the page against the
JSON. Every string that comes from the input (group names, column names, cut-point set ids)
is HTML-escaped. Demonstration scores get a banner and a watermark repeated across the page;
scores that are not the PAM for another reason (an unlicensed provider, raw totals) get a
banner and watermark of their own, saying why (:mod:`pamlib.reporting._not_pam`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import TYPE_CHECKING, ParamSpec

import attrs

from pamlib._version import __version__
from pamlib.reporting import _charts as charts
from pamlib.reporting._charts import Series, display, figure_attrs
from pamlib.reporting._comparison import Comparison
from pamlib.reporting._config import NQF2483_GAIN_POINTS, ReportConfig
from pamlib.reporting._context import ReportContext
from pamlib.reporting._headlines import NOT_USED_WORDS, Figure, headlines
from pamlib.reporting._measures import Exclusion
from pamlib.reporting._not_pam import NOT_PAM_MARK, banner_text, margin_text, watermark_text
from pamlib.reporting._summary import (
    BIN_LABELS,
    CLASSES,
    LEVELS,
    STRATA,
    CohortSummary,
    Suppressed,
    Value,
)
from pamlib.reporting.trends import trend_quarters

if TYPE_CHECKING:
    from pamlib.reporting._report import CohortReport

_P = ParamSpec("_P")

#: Okabe–Ito colours throughout, safe for colour-blind readers: blue and orange for baseline and
#: follow-up; a gain blue, a fall vermillion (and below the zero line, with a signed label).
BASELINE, FOLLOWUP = "#0072b2", "#e69f00"
UP, DOWN = "#0072b2", "#d55e00"
#: The transitions heat map shades this blue from 5 % to 72 % opacity: dark text stays at a
#: contrast of at least 4.5 on every shade (WCAG AA), so one ink serves every cell.
HEAT_RGB, HEAT_LOW, HEAT_HIGH = (0, 114, 178), 0.05, 0.72
#: Trend series (Okabe–Ito blue and orange, safe for colour-blind readers).
TREND_ALL, TREND_BASELINE = "#0072b2", "#e69f00"

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  color: #1d2733; background: #f5f7fa; margin: 0; padding: 0 24px 48px; }
header, section.scope, footer { max-width: 1180px; margin: 0 auto; }
header { padding: 20px 0 8px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 28px 0 10px; border-bottom: 2px solid #d5dce5; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 0 0 8px; }
.meta { color: #4a5a6c; margin: 2px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0 16px; }
.card { background: rgba(255, 255, 255, .9); border: 1px solid #d5dce5; border-radius: 6px;
  padding: 10px 16px; min-width: 150px; }
.card .big { font-size: 26px; font-weight: 700; display: block; }
.card .label { color: #4a5a6c; font-size: 13px; }
.panel { background: rgba(255, 255, 255, .9); border: 1px solid #d5dce5; border-radius: 6px;
  padding: 14px 16px; margin: 0 0 16px; break-inside: avoid; }
.pair { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.note { color: #4a5a6c; font-size: 13px; margin: 6px 0 0; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 3px 9px; border-bottom: 1px solid #e3e8ee; }
th { text-align: left; font-weight: 600; background: #f0f3f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.heat td.num { min-width: 64px; text-align: center; border: 1px solid #fff; }
table.heat td.diagonal { outline: 2px solid #1d2733; outline-offset: -2px; }
td.hidden { background: repeating-linear-gradient(45deg, #eceff3, #eceff3 4px, #dfe3e8 4px,
  #dfe3e8 8px); }
svg.chart { display: block; width: 100%; max-width: 480px; height: auto; background: #fff;
  margin: 0 0 8px; }
svg.chart.funnel { max-width: 640px; }
svg .grid { stroke: #e3e8ee; }
svg .zero { stroke: #1d2733; }
svg .reference { stroke: #7a8794; stroke-dasharray: 4 3; }
svg text { font: 13px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  fill: #1d2733; }
svg .tick, svg .reference-label { fill: #4a5a6c; font-size: 13px; }
svg .value { font-size: 13px; font-weight: 600; }
section.context dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px;
  margin: 8px 0 12px; font-size: 14px; }
section.context dl div { display: contents; }
section.context dt { color: #4a5a6c; }
section.context dd { margin: 0; overflow-wrap: anywhere; }
.card .label .figure { font-weight: 600; }
.scroll { overflow-x: auto; max-width: 100%; margin: 0 0 8px; }
.scroll:focus-visible { outline: 2px solid #0072b2; outline-offset: 2px; }
.pair > * { min-width: 0; max-width: 100%; }
.pair > svg.chart { flex: 1 1 340px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
svg .mean { stroke: #1d2733; stroke-width: 1.5; }
svg .limit95 { stroke: #7a8794; stroke-dasharray: 5 3; }
svg .limit998 { stroke: #7a8794; stroke-dasharray: 1.5 2.5; }
svg .point { stroke: #1d2733; stroke-width: .8; }
svg .point-label { font-size: 13px; }
footer { color: #4a5a6c; font-size: 13px; margin-top: 32px; }
@media (max-width: 600px) {
  body { padding: 0 12px 32px; }
  .panel { padding: 12px; }
  h1 { font-size: 22px; }
  h2 { font-size: 19px; }
  section.context dl { grid-template-columns: 1fr; }
  section.context dd { margin: 0 0 6px; }
}
"""

_DEMO_CSS = """
.demo-banner { position: sticky; top: 0; z-index: 20; margin: 0 -24px; padding: 10px 24px;
  background: #b3261e; color: #fff; font-weight: 700; text-align: center; letter-spacing: .02em; }
.demo-watermark { position: fixed; inset: 0; z-index: -1; overflow: hidden;
  pointer-events: none; user-select: none; }
.demo-watermark .marks { position: absolute; inset: -40%; display: flex; flex-wrap: wrap;
  align-content: space-around; justify-content: space-around; gap: 60px 90px;
  transform: rotate(-28deg); opacity: .09; color: #b3261e;
  font: 800 44px system-ui, Arial, sans-serif; }
@media (max-width: 600px) { .demo-banner { margin: 0 -12px; padding: 8px 12px; } }
@media print { .demo-banner { position: static; } }
"""

_DEMO_TEXT = "DEMONSTRATION SCORES — NOT THE PATIENT ACTIVATION MEASURE"

#: Printing (and the PDF, which WeasyPrint lays out from this page): A4, the title and page
#: numbers in the margins of every page, tables at full width rather than in scroll boxes.
_PRINT_CSS = """
@page { size: A4; margin: 18mm 13mm 16mm;
  @top-left { content: "%(title)s"; font: 600 9pt system-ui, Arial, sans-serif;
    color: #4a5a6c; }
  @bottom-right { content: "Page " counter(page) " of " counter(pages);
    font: 9pt system-ui, Arial, sans-serif; color: #4a5a6c; } }
@media print {
  body { background: #fff; padding: 0; font-size: 11pt; }
  header, section.scope, footer { max-width: none; }
  .scroll { overflow: visible; }
  table { font-size: 8.5pt; }
  th, td { padding: 2px 5px; }
  .card { padding: 6px 10px; min-width: 0; }
  .card .big { font-size: 18pt; }
  h2, h3, caption { break-after: avoid; }
  .panel { break-inside: auto; }  /* a long panel flows on; a chart or a row never splits */
  svg.chart, tr, .card { break-inside: avoid; }
  svg.chart { max-width: 82mm; }
  svg.chart.funnel { max-width: 120mm; }
}
"""

#: With demonstration scores the marking is printed in the margins of every page; the
#: repeated watermark is left out of print, where it would cost more to lay out than the report.
_DEMO_PRINT_CSS = """
@page { @top-right { content: "DEMO — NOT PAM"; font: 800 10pt system-ui, Arial, sans-serif;
  color: #b3261e; }
  @bottom-left { content: "%(text)s"; font: 700 8pt system-ui, Arial, sans-serif;
    color: #b3261e; } }
@media print { .demo-watermark { display: none; } }
"""

#: The banner and watermark of scores that are not the PAM for a reason other than
#: demonstration: styled as the demonstration ones, under their own names.
_NOT_PAM_CSS = _DEMO_CSS.replace(".demo-", ".not-pam-")
_NOT_PAM_PRINT_CSS = _DEMO_PRINT_CSS.replace('"DEMO — NOT PAM"', '"%(mark)s"').replace(
    ".demo-", ".not-pam-"
)


def _missing() -> str:
    return f'<p class="note chart-missing">{escape(charts.MISSING_NOTE)}</p>'


def _or_note(draw: Callable[_P, str]) -> Callable[_P, str]:
    """``draw``, or where Matplotlib is missing, the note saying how to get the chart."""

    def chart(*args: _P.args, **kwargs: _P.kwargs) -> str:
        return draw(*args, **kwargs) if charts.available() else _missing()

    return chart


_bar_chart = _or_note(charts.bar_chart)
_funnel_plot = _or_note(charts.funnel_plot)


def _num(key: str, value: Value, *, extra_class: str = "", style: str = "") -> str:
    classes = " ".join(
        c for c in ("num", "hidden" if isinstance(value, Suppressed) else "", extra_class) if c
    )
    style_attr = f' style="{style}"' if style else ""
    return (
        f'<td class="{classes}"{style_attr} {figure_attrs(key, value)}>'
        f"{escape(display(value))}</td>"
    )


def _table(caption: str, content: str, *, label: str, table_class: str = "") -> str:
    """A captioned table in its own horizontal scroll box, so a wide table scrolls inside its
    card on a narrow screen instead of widening the page. The box is focusable and named
    (``label``, already escaped) so keyboard users can scroll it too."""
    cls = f' class="{table_class}"' if table_class else ""
    return (
        f'<div class="scroll" tabindex="0" role="region" aria-label="{label}">'
        f"<table{cls}><caption>{caption}</caption>{content}</table></div>"
    )


def _parts(parts: Sequence[Figure | str], figure_class: str = "figure") -> str:
    """A headline's parts as HTML: each figure a ``span`` with its key, text escaped."""
    return "".join(
        f'<span class="{figure_class}" {figure_attrs(p.key, p.value)}>{escape(display(p.value))}'
        "</span>"
        if isinstance(p, Figure)
        else escape(p)
        for p in parts
    )


def _context(context: ReportContext) -> str:
    """The context block: what the report covers and how it was made (names, never paths)."""

    def listing(items: Sequence[str]) -> str:
        return ", ".join(items) if items else "not recorded"

    def file(name: str, sha256: str | None) -> str:
        digest = f" (sha256 <code>{escape(sha256)}</code>)" if sha256 else ""
        return f"{escape(name)}{digest}"

    period = "no assessments"
    if context.first_assessed and context.last_assessed:
        period = f"{context.first_assessed} to {context.last_assessed}"
    rows = [
        ("Assessments from", "period", escape(period)),
        ("Generated at (UTC)", "generated-at", escape(context.generated_at)),
        (
            "Input files",
            "inputs",
            listing(
                [
                    file(s.name, s.sha256) + ("" if s.role == "input" else f" ({escape(s.role)})")
                    for s in context.sources
                    if s.role != "rules"
                ]
            ),
        ),
        ("pamlib version", "pamlib-version", escape(context.pamlib_version)),
        (
            "Scoring provider",
            "providers",
            listing([escape(" ".join(x for x in pv if x)) for pv in context.providers]),
        ),
        (
            "Calibration",
            "calibrations",
            listing([file(i or "(no id)", h or None) for i, h in context.calibrations]),
        ),
        ("Cut-point set", "cutpoint-sets", listing([escape(c) for c in context.cutpoint_sets])),
        (
            "Tailoring rules files",
            "rules",
            listing([file(s.name, s.sha256) for s in context.files("rules")]),
        ),
        *(
            [
                (
                    "Scored from the export",
                    "scoring",
                    escape(_reconciliation(dict(context.scoring))),
                )
            ]
            if context.scoring is not None
            else []
        ),
        (
            "Small-number suppression",
            "suppression",
            f"counts {context.suppression_low}–{context.suppression_high} hidden"
            + (" (applied)" if context.suppression_applied else " (not applied: internal report)"),
        ),
    ]
    items = "".join(
        f'<div data-context="{name}"><dt>{label}</dt><dd>{value}</dd></div>'
        for label, name, value in rows
    )
    return f'<section class="context" aria-label="Report context"><dl>{items}</dl></section>'


_POSITION_WORDS = {
    "within": "within the 95 % limits",
    "above-95": "above the 95 % limit",
    "above-99.8": "above the 99.8 % limit",
    "below-95": "below the 95 % limit",
    "below-99.8": "below the 99.8 % limit",
}


def _comparison(comparison: Comparison) -> str:
    """The site comparison: a funnel plot and its data table."""
    base = "site_comparison"
    by = escape(comparison.group_by)
    rows = []
    for i, g in enumerate(comparison.groups):
        cells = "".join(_num(f"{base}.groups.{i}.{name}", v) for name, v in g.figures())
        if g.suppressed:
            where = "suppressed (small numbers), not plotted"
        elif g.position is None:
            where = "no eligible patients" if g.eligible == 0 else "not plotted"
        else:
            where = _POSITION_WORDS[g.position]
        rows.append(f"<tr><th>{escape(g.group) or '(blank)'}</th>{cells}<td>{where}</td></tr>")
    mean = comparison.cohort_rate_pct
    plotted = comparison.plotted
    outside = [g for g in plotted if g.position != "within"]
    hidden = sum(g.suppressed for g in comparison.groups)
    description = (
        f"Each point is one {comparison.group_by}: the share of its eligible patients who gained "
        f"at least {NQF2483_GAIN_POINTS:g} points, against its number of eligible patients. "
        + (f"Cohort mean {mean:.1f} %. " if mean is not None else "")
        + f"{len(plotted)} plotted, {len(outside)} outside the 95 % limits"
        + (f" ({', '.join(g.group or '(blank)' for g in outside)})" if outside else "")
        + f"; {hidden} suppressed and not plotted. The table gives every figure."
    )
    chart = (
        _funnel_plot(comparison, key_prefix=base, description=description)
        if mean is not None and plotted
        else '<p class="note">No funnel plot: the cohort rate is not published or no group '
        "can be plotted.</p>"
    )
    head = (
        f"<th>{by}</th><th>Eligible</th><th>Improving</th><th>Rate %</th>"
        "<th>Wilson 95 % low</th><th>high</th><th>95 % limit low</th><th>high</th>"
        "<th>99.8 % limit low</th><th>high</th><th>Against the funnel</th>"
    )
    improving = _parts([Figure(f"{base}.cohort.improving", comparison.cohort_improving)])
    eligible = _parts([Figure(f"{base}.cohort.eligible", comparison.cohort_eligible)])
    rate = f" ({_parts([Figure(f'{base}.cohort.rate_pct', mean)])} %)" if mean is not None else ""
    cohort = f'<p class="meta">Cohort: {improving} of {eligible} eligible improved{rate}.</p>'
    return (
        f'<section class="scope" id="site-comparison"><h2>Comparison by {by}</h2>{cohort}'
        f'<div class="panel"><h3>NQF #2483-style measure by {by}</h3>{chart}'
        + _table(
            f"Share of eligible patients gaining at least {NQF2483_GAIN_POINTS:g} points, by {by}",
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>",
            label=f"Table: share improving by {by}",
        )
        + '<p class="note">Intervals: Wilson score '
        "95 % interval of each rate. Control limits: the cohort rate ± z·√(p(1−p)/n), z = 1.96 "
        "(95 %) and 3.09 (99.8 %), the normal approximation of Spiegelhalter (2005). A point "
        "outside the 99.8 % limits differs from the cohort by more than chance would explain "
        "about once in 500 comparisons. Groups whose counts are suppressed are not "
        "plotted.</p></div></section>"
    )


_TREND_KINDS = (
    ("all", "All usable scored assessments", "All assessments", TREND_ALL),
    (
        "baseline",
        "Baseline assessments (each patient's first usable one)",
        "Baselines",
        TREND_BASELINE,
    ),
)


def _trends(summary: CohortSummary) -> str:
    """Trends by calendar quarter: a chart of the mean score and a table per view."""
    quarters = trend_quarters(summary.values)
    if not quarters:
        return (
            '<section class="scope" id="trends"><h2>Trends by quarter</h2>'
            '<p class="note">No usable scored assessments: no trends to show.</p></section>'
        )

    def words(value: Value) -> str:
        if isinstance(value, Suppressed):
            return "suppressed"
        return "none" if value is None else f"{value:.1f}"

    description = (
        "Mean score by calendar quarter of assessment, over all usable assessments and over "
        "baselines only: "
        + "; ".join(
            f"{q} {words(summary[f'trends.all.{q}.mean_score'])} and "
            f"{words(summary[f'trends.baseline.{q}.mean_score'])}"
            for q in quarters
        )
        + ". The tables below give every figure."
    )
    chart = _bar_chart(
        "Mean score by calendar quarter of assessment",
        list(quarters),
        [
            Series(
                name=name,
                colour=colour,
                keys=[f"trends.{kind}.{q}.mean_score" for q in quarters],
                values=[summary[f"trends.{kind}.{q}.mean_score"] for q in quarters],
            )
            for kind, _, name, colour in _TREND_KINDS
        ],
        y_title="mean score",
        description=description,
    )
    head = (
        "<th>Quarter</th><th>n</th>"
        + "".join(f"<th>Level {lv} n</th><th>%</th>" for lv in LEVELS)
        + "<th>Mean score</th>"
    )
    tables = []
    for kind, caption, name, _ in _TREND_KINDS:
        rows = []
        for q in quarters:
            key = f"trends.{kind}.{q}"
            cells = _num(f"{key}.n", summary[f"{key}.n"]) + "".join(
                _num(f"{key}.levels.{lv}", summary[f"{key}.levels.{lv}"])
                + _num(f"{key}.levels_pct.{lv}", summary[f"{key}.levels_pct.{lv}"])
                for lv in LEVELS
            )
            cells += _num(f"{key}.mean_score", summary[f"{key}.mean_score"])
            rows.append(f"<tr><th>{escape(q)}</th>{cells}</tr>")
        tables.append(
            _table(
                f"{escape(caption)} by calendar quarter: count, activation level mix and mean "
                "score",
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>",
                label=f"Table: trends, {escape(name.lower())}",
            )
        )
    return (
        '<section class="scope" id="trends"><h2>Trends by quarter</h2><div class="panel">'
        f"<h3>Activation level mix and mean score by calendar quarter</h3>{chart}"
        f"{''.join(tables)}"
        '<p class="note">Quarters are calendar quarters of the assessment date (Q1 is January '
        "to March). A patient assessed twice in a quarter counts twice among all assessments; "
        "each patient counts once among baselines. Shares are of the quarter's count."
        + (" A suppressed quarter shows no count, shares or mean." if summary.suppressed else "")
        + "</p></div></section>"
    )


@attrs.frozen
class _Scope:
    """Renders the panels of one scope: the whole cohort or one group."""

    summary: CohortSummary
    prefix: str
    config: ReportConfig
    #: The scope's heading (escaped), naming its tables for screen readers.
    heading: str = "All patients"

    def table(self, caption: str, content: str, table_class: str = "") -> str:
        return _table(
            f"{caption} ({self.heading})",
            content,
            label=f"Table: {caption.lower()}, {self.heading}",
            table_class=table_class,
        )

    @property
    def threshold(self) -> float:
        return self.config.threshold_tenths / 10

    def key(self, key: str) -> str:
        return self.prefix + key

    def value(self, key: str) -> Value:
        return self.summary[self.prefix + key]

    def cell(self, key: str, **kwargs: str) -> str:
        return _num(self.key(key), self.value(key), **kwargs)

    def series(
        self, name: str, colour: str, keys: Sequence[str], negative_colour: str | None = None
    ) -> Series:
        return Series(
            name=name,
            colour=colour,
            keys=[self.key(k) for k in keys],
            values=[self.value(k) for k in keys],
            negative_colour=negative_colour,
        )

    def cards(self) -> str:
        out = ['<div class="cards">']
        for headline in headlines(self.summary, self.config, self.prefix):
            lead, *rest = headline.parts
            out.append(
                f'<div class="card">{_parts([lead], "big")}'
                f'<span class="label">{_parts(rest)}</span></div>'
            )
        out.append("</div>")
        return "".join(out)

    def levels(self) -> str:
        chart = _bar_chart(
            "Patients by activation level, % at baseline and at follow-up",
            [f"Level {lv}" for lv in LEVELS],
            [
                self.series("Baseline", BASELINE, [f"levels_baseline_pct.{lv}" for lv in LEVELS]),
                self.series("Follow-up", FOLLOWUP, [f"levels_followup_pct.{lv}" for lv in LEVELS]),
            ],
            y_title="% of patients",
        )
        rows = "".join(
            f"<tr><th>Level {lv}</th>{self.cell(f'levels_baseline.{lv}')}"
            f"{self.cell(f'levels_baseline_pct.{lv}')}{self.cell(f'levels_followup.{lv}')}"
            f"{self.cell(f'levels_followup_pct.{lv}')}</tr>"
            for lv in LEVELS
        )
        rows += (
            f"<tr><th>All</th>{self.cell('n_baseline')}<td></td>{self.cell('n_followup')}"
            "<td></td></tr>"
        )
        scores = "".join(
            f"<tr><th>{label}</th>{self.cell(f'score_{when}.mean')}"
            f"{self.cell(f'score_{when}.sd')}</tr>"
            for when, label in (("baseline", "Baseline"), ("followup", "Follow-up"))
        )
        return (
            '<div class="panel"><h3>Activation level at baseline and follow-up</h3>'
            f'<div class="pair">{chart}<div>'
            + self.table(
                "Patients by activation level",
                "<thead><tr><th>Level</th><th>Baseline n</th><th>%</th><th>Follow-up n</th>"
                f"<th>%</th></tr></thead><tbody>{rows}</tbody>",
            )
            + self.table(
                "Mean and SD of scores",
                "<thead><tr><th>Score</th><th>Mean</th><th>SD</th></tr></thead>"
                f"<tbody>{scores}</tbody>",
            )
            + "</div></div></div>"
        )

    def change(self) -> str:
        t = self.threshold
        chart = _bar_chart(
            "Mean change in score from baseline to follow-up, by baseline level",
            [f"Level {lv}" for lv in LEVELS],
            [
                self.series(
                    "Mean change (points)",
                    UP,
                    [f"change_by_baseline_level.{lv}.mean_change" for lv in LEVELS],
                    negative_colour=DOWN,
                )
            ],
            y_title="points",
            reference_lines=[(t, f"+{t:.1f}"), (-t, f"−{t:.1f}")],
        )
        head = "".join(f"<th>% {c}</th>" for c in CLASSES)
        rows = []
        for s in STRATA:
            key = f"change_by_baseline_level.{s}"
            label = "All" if s == "all" else f"Level {s}"
            cells = self.cell(f"{key}.n") + self.cell(f"{key}.mean_change")
            cells += self.cell(f"{key}.sd_change")
            cells += "".join(self.cell(f"{key}.pct_{c}") for c in CLASSES)
            rows.append(f"<tr><th>{label}</th>{cells}</tr>")
        return (
            '<div class="panel"><h3>Change by baseline level</h3>'
            f'<div class="pair">{chart}<div>'
            + self.table(
                "Change in score by baseline level",
                "<thead><tr><th>Baseline</th><th>n</th><th>Mean change</th><th>SD</th>"
                f"{head}</tr></thead><tbody>{''.join(rows)}</tbody>",
            )
            + f'<p class="note">Improved: a gain of at least {t:.1f} points; '
            f"declined: a fall of at least {t:.1f}; otherwise stable. Dashed lines mark "
            f"±{t:.1f}.</p></div></div></div>"
        )

    def transitions(self) -> str:
        counts = [self.value(f"transitions.{a}.{b}") for a in LEVELS for b in LEVELS]
        largest = max([c for c in counts if isinstance(c, int)] + [1])
        head = "".join(f"<th>Level {b}</th>" for b in LEVELS)
        rows = []
        for a in LEVELS:
            cells = []
            for b in LEVELS:
                key = f"transitions.{a}.{b}"
                value = self.value(key)
                style = ""
                if isinstance(value, int):
                    alpha = HEAT_LOW + (HEAT_HIGH - HEAT_LOW) * value / largest
                    rgb = ", ".join(map(str, HEAT_RGB))
                    style = f"background: rgba({rgb}, {alpha:.2f})"
                cells.append(self.cell(key, extra_class="diagonal" if a == b else "", style=style))
            total = self.cell(f"change_by_baseline_level.{a}.n")
            rows.append(f"<tr><th>Level {a}</th>{''.join(cells)}{total}</tr>")
        totals = "".join(self.cell(f"levels_followup.{b}") for b in LEVELS)
        rows.append(f"<tr><th>Total</th>{totals}{self.cell('change_by_baseline_level.all.n')}</tr>")
        return (
            '<div class="panel"><h3>Level transitions, baseline → follow-up</h3>'
            + self.table(
                "Patients by baseline level (rows) and follow-up level (columns)",
                "<thead><tr><th>Baseline \\ Follow-up</th>"
                f"{head}<th>Total</th></tr></thead><tbody>{''.join(rows)}</tbody>",
                table_class="heat",
            )
            + '<p class="note">Patients with a follow-up; rows are the baseline level, columns the '
            "follow-up level, the outlined diagonal stayed at the same level. Shading is "
            "proportional to the count.</p></div>"
        )

    def histogram(self) -> str:
        chart = _bar_chart(
            "Distribution of scores at baseline and at follow-up",
            list(BIN_LABELS),
            [
                self.series(
                    "Baseline", BASELINE, [f"score_histogram.baseline.{b}" for b in BIN_LABELS]
                ),
                self.series(
                    "Follow-up", FOLLOWUP, [f"score_histogram.followup.{b}" for b in BIN_LABELS]
                ),
            ],
            y_title="patients",
        )
        head = "".join(f"<th>{b}</th>" for b in BIN_LABELS)
        rows = "".join(
            f"<tr><th>{label}</th>"
            + "".join(self.cell(f"score_histogram.{when}.{b}") for b in BIN_LABELS)
            + "</tr>"
            for when, label in (("baseline", "Baseline"), ("followup", "Follow-up"))
        )
        return (
            '<div class="panel"><h3>Score distribution</h3>'
            f"{chart}"
            + self.table(
                "Patients by score band",
                f"<thead><tr><th>Score</th>{head}</tr></thead><tbody>{rows}</tbody>",
            )
            + '<p class="note">10-point bins including the lower edge; 90-100 includes '
            "100.</p></div>"
        )

    def nqf(self) -> str:
        rows = (
            f"<tr><th>Numerator: gained ≥ {NQF2483_GAIN_POINTS:.1f} points</th>"
            f"{self.cell('nqf2483.numerator')}</tr>"
            f"<tr><th>Denominator</th>{self.cell('nqf2483.denominator')}</tr>"
            f"<tr><th>Rate (%)</th>{self.cell('nqf2483.rate_pct')}</tr>"
        )
        rows += "".join(
            f"<tr><th>Not eligible: {escape(e.words)}</th>{self.cell(f'nqf2483.excluded.{e}')}</tr>"
            for e in Exclusion
        )

        return (
            '<div class="panel"><h3>NQF #2483 / MIPS #503: Gains in PAM Scores at 12 Months</h3>'
            + self.table(
                "NQF #2483 numerator, denominator and exclusions", f"<tbody>{rows}</tbody>"
            )
            + '<p class="note">Each patient is excluded for the first reason that applies, in the '
            "order listed.</p></div>"
        )

    def assessments(self) -> str:
        rows = (
            "<tr><th>Used for trajectories</th>"
            f"{self.cell('n_assessments_used')}</tr>"
            + "".join(
                f"<tr><th>Not used: {escape(words)}</th>"
                f"{self.cell(f'assessments_not_used.{reason}')}</tr>"
                for reason, words in NOT_USED_WORDS.items()
            )
            + f"<tr><th>All assessments</th>{self.cell('n_assessments')}</tr>"
        )
        return (
            '<div class="panel"><h3>Assessments used</h3>'
            + self.table("Assessments used and not used", f"<tbody>{rows}</tbody>")
            + '<p class="note">An assessment is used when it is scored, with a 0–100 score and '
            "a level; every other is counted here, not left out silently.</p></div>"
        )

    def render(self, heading: str, anchor: str) -> str:
        return (
            f'<section class="scope" id="{anchor}"><h2>{heading}</h2>{self.cards()}'
            f"{self.levels()}{self.change()}{self.transitions()}{self.histogram()}{self.nqf()}"
            f"{self.assessments()}</section>"
        )


def render_html(report: CohortReport) -> str:
    """The report as one self-contained HTML document."""
    config, summary = report.config, report.released
    others = tuple(r for r in report.not_pam_reasons if r != "demo")
    title = "PAM cohort report" + (
        " — DEMO" if report.demo else f" — {NOT_PAM_MARK}" if others else ""
    )
    window = f"{config.min_months}–{config.max_months} calendar months"
    meta = [
        f"Follow-up window: {window} after the first scored assessment.",
        f"Change threshold: {config.threshold_tenths / 10:.1f} points"
        + (f" ({escape(config.threshold_preset)})" if config.threshold_preset else "")
        + ".",
    ]
    if not config.nqf2483_as_specified:
        meta.append("The window differs from NQF #2483's 6–12 months: the measure is modified.")
    if summary.suppressed:
        rule = config.suppression
        meta.append(
            f"Published figures: counts from {rule.low} to {rule.high} and the figures that "
            f"would reveal them are shown as {escape(rule.symbol)}."
        )
    paragraphs = "".join(f'<p class="meta">{m}</p>' for m in meta)
    body = [
        f"<header><h1>{escape(title)}</h1>{_context(report.context)}{paragraphs}</header>",
        "<main>",
    ]
    for prefix, name in summary.scopes():
        if name is None:
            scope = _Scope(summary, prefix, config)
            body.append(scope.render("All patients", "scope-all"))
            if report.comparison is not None:
                body.append(_comparison(report.comparison))
            body.append(_trends(summary))
        else:
            heading = f"{escape(summary.group_by or 'group')}: {escape(name) or '(blank)'}"
            scope = _Scope(summary, prefix, config, heading)
            body.append(scope.render(heading, "scope-" + prefix.rstrip(".").replace(".", "-")))
    body.append("</main>")
    body.append(
        f"<footer><p>Made by pamlib {escape(__version__)}. Baseline: first scored assessment "
        "with a 0–100 score; follow-up: the latest such assessment in the window; months are "
        "calendar months, the end of a shorter month standing in for a missing day. Mean and "
        "sample SD to one decimal.</p></footer>"
    )
    demo_head, demo_body = "", ""
    if report.demo:
        demo_head = f"<style>{_DEMO_CSS}{_DEMO_PRINT_CSS % {'text': _DEMO_TEXT}}</style>"
        marks = "<span>DEMO — NOT PAM</span>" * 80
        # The watermark sits behind the content (negative z-index, clipped to the viewport),
        # so it shows through the translucent panels but never covers a number.
        demo_body = (
            f'<div class="demo-banner" id="demo-banner" role="note" aria-label="Demonstration" '
            'data-demo-watermark="banner">'
            f"{_DEMO_TEXT}: synthetic scores for demonstration only.</div>"
            f'<div class="demo-watermark" id="demo-watermark" data-demo-watermark="page" '
            f'aria-hidden="true"><div class="marks">{marks}</div></div>'
        )
    if others:
        text = escape(banner_text(others))
        # With demonstration scores too, the demonstration marking keeps the margins and the
        # watermark; this banner adds the other reasons under it.
        if not report.demo:
            mark = watermark_text(others)
            margins = _NOT_PAM_PRINT_CSS % {"text": margin_text(others), "mark": mark}
            demo_head += f"<style>{_NOT_PAM_CSS}{margins}</style>"
            marks = f"<span>{escape(mark)}</span>" * 80
            watermark = (
                f'<div class="not-pam-watermark" id="not-pam-watermark" '
                f'data-not-pam-watermark="page" aria-hidden="true">'
                f'<div class="marks">{marks}</div></div>'
            )
        else:
            # Under the sticky demonstration banner, not over it.
            demo_head += f"<style>{_NOT_PAM_CSS}.not-pam-banner {{ position: static; }}</style>"
            watermark = ""
        demo_body += (
            f'<div class="not-pam-banner" id="not-pam-banner" role="note" '
            f'aria-label="Not PAM scores" data-not-pam="{" ".join(others)}" '
            f'data-not-pam-watermark="banner">{text}</div>{watermark}'
        )
    flags = f'data-demo="{str(report.demo).lower()}" '
    flags += f'data-not-pam="{str(report.not_pam).lower()}" '
    flags += f'data-published="{str(summary.suppressed).lower()}"'
    return (
        f'<!DOCTYPE html>\n<html lang="en" {flags}>'
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, '
        f'initial-scale=1"><title>{escape(title)}</title><style>{_CSS}'
        f"{_PRINT_CSS % {'title': title}}</style>{demo_head}</head>"
        f"<body>{demo_body}{''.join(body)}</body></html>\n"
    )


def _reconciliation(counts: dict[str, int | str]) -> str:
    """A scoring run's counts as ``pamlib score`` says them: ``read N = scored + not scored +
    rejected`` (and the blank records, which hold nothing); published, the rejected alone."""
    if "read" not in counts:
        return f"rejected {counts['rejected']} (in the rejects file of the scoring run)"
    line = (
        f"read {counts['read']} = scored {counts['scored']} + not scored "
        f"{counts['not_scored']} + rejected {counts['rejected']}"
    )
    if counts["blank"]:
        line += f" + blank {counts['blank']}"
    return line + " (rejected records are in the rejects file of the scoring run)"
