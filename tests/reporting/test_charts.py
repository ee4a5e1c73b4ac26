"""Charts drawn by Matplotlib: text kept as text, the same bytes every time, no date, nothing
fetched, and without Matplotlib a report that keeps every figure with a note for each chart."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from tests.reporting.conftest import MakeCohort

from pamlib.reporting import ReportConfig, ScoredColumns, build_report, render_html
from pamlib.reporting import _charts as charts
from pamlib.reporting._charts import Series, bar_chart

pytest.importorskip("matplotlib", reason="charts need the report extra")


def _chart() -> str:
    return bar_chart(
        "Test chart",
        ["Level 1", "Level 2"],
        [Series("Baseline", "#0072b2", ["a.1", "a.2"], [12.5, -3.0], negative_colour="#d55e00")],
        y_title="points",
        reference_lines=[(3.0, "+3.0")],
        description="A test chart.",
    )


def test_a_chart_is_deterministic_svg_with_text_as_text() -> None:
    svg = _chart()
    assert svg == _chart()
    assert svg.startswith('<svg class="chart" viewBox="0 0 ')
    assert "<title>Test chart</title><desc>A test chart.</desc>" in svg
    assert re.search(r"<text [^>]*>Level 1</text>", svg)  # a label is text, not glyph paths
    assert re.search(r'<g class="value" data-key="a.1" data-value="12.5"><text [^>]*>12.5<', svg)
    assert '<g class="bar" data-key="a.2" data-value="-3.0"><title>Baseline, Level 2: -3.0' in svg
    assert "#d55e00" in svg  # the fall in Okabe–Ito vermillion
    for absent in ("<?xml", "<metadata", "dc:date", "Matplotlib v", "<style", "url(", "http"):
        assert absent not in svg, absent


def test_hidden_values_draw_no_bar() -> None:
    from pamlib.reporting._summary import Suppressed

    star = Suppressed("*")
    svg = bar_chart(
        "t", ["a", "b"], [Series("s", "#0072b2", ["k.a", "k.b"], [star, None])], y_title="n"
    )
    assert 'class="bar"' not in svg
    assert '<g class="value" data-key="k.a" data-value="&quot;*&quot;">' in svg


def test_ids_differ_between_charts_of_one_page(make_cohort: MakeCohort) -> None:
    rows = make_cohort(seed=3, n_patients=200)
    page = render_html(build_report(ScoredColumns.from_rows(rows), ReportConfig(group_by="site")))
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_without_matplotlib_the_report_keeps_its_tables(
    make_cohort: MakeCohort, monkeypatch: pytest.MonkeyPatch, check_page_against_json: Any
) -> None:
    from pamlib.reporting import summary_json

    monkeypatch.setattr(charts, "available", lambda: False)
    report = build_report(
        ScoredColumns.from_rows(make_cohort(seed=4, n_patients=120)), ReportConfig(group_by="site")
    )
    page = render_html(report)
    assert "<svg" not in page
    assert page.count("pip install &#x27;pamlib[report]&#x27;") >= 4
    check_page_against_json(page, summary_json(report))


def test_importing_pamlib_does_not_import_matplotlib() -> None:
    code = "import sys, pamlib, pamlib.reporting; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
