"""The HTML report: self-contained, escaped, watermarked iff demo, and equal to the JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pamlib.reporting import (
    ReportConfig,
    ScoredColumns,
    build_report,
    render_html,
    summary_json,
    write_html,
    write_json,
)

Row = dict[str, str]
MakeRow = Callable[..., Row]
MakeCohort = Callable[..., list[Row]]
Check = Callable[[str, Any], list[Any]]

EXTERNAL = re.compile(r"""\b(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.mark.parametrize("publish", [False, True])
@pytest.mark.parametrize("demo", [False, True])
def test_page_is_self_contained(make_cohort: MakeCohort, demo: bool, publish: bool) -> None:
    rows = make_cohort(seed=1, n_patients=80, demo=demo)
    page = render_html(build_report(ScoredColumns.from_rows(rows), ReportConfig(publish=publish)))
    assert not EXTERNAL.search(page)
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page.lower()
    for needle in ("<link", "<img", "<iframe", "@import", "url(", "@font-face"):
        assert needle not in page.lower(), needle
    assert page.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("demo", [False, True])
def test_demo_watermark_iff_demo(make_cohort: MakeCohort, demo: bool) -> None:
    rows = make_cohort(seed=1, n_patients=40, demo=demo)
    report = build_report(ScoredColumns.from_rows(rows))
    page = render_html(report)
    assert report.demo is demo
    assert ('id="demo-watermark"' in page) is demo
    assert ('id="demo-banner"' in page) is demo
    assert ("DEMO" in page) is demo
    assert f'data-demo="{str(demo).lower()}"' in page
    if demo:
        assert page.count("DEMO — NOT PAM") >= 50  # repeated across the page
        assert "NOT THE PATIENT ACTIVATION MEASURE" in page


def test_one_demo_row_makes_the_whole_report_demo(make_row: MakeRow) -> None:
    rows = [make_row("p", "2024-01-10", 40.0), make_row("q", "2024-01-10", 50.0, demo=True)]
    report = build_report(ScoredColumns.from_rows(rows))
    assert report.demo
    assert 'id="demo-watermark"' in render_html(report)
    assert summary_json(report)["demo"] is True


def test_input_strings_are_escaped(make_row: MakeRow) -> None:
    site = "<script>alert('x')</script> & \"co\""
    rows = [
        make_row("p", "2024-01-10", 40.0, **{"ward<b>": site}),
        make_row("p", "2024-10-10", 50.0, **{"ward<b>": site}),
    ]
    rows[0]["cutpoint_set"] = rows[1]["cutpoint_set"] = "<i>set</i>"
    report = build_report(ScoredColumns.from_rows(rows), ReportConfig(group_by="ward<b>"))
    page = render_html(report)
    assert "<script" not in page
    assert "<b>" not in page
    assert "<i>set" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;co&quot;" in page
    assert "ward&lt;b&gt;" in page
    assert "&lt;i&gt;set&lt;/i&gt;" in page


@pytest.mark.parametrize("publish", [False, True])
def test_every_number_in_the_page_equals_the_json(
    tmp_path: Path,
    make_cohort: MakeCohort,
    check_page_against_json: Check,
    publish: bool,
) -> None:
    rows = make_cohort(seed=9, n_patients=300)
    report = build_report(
        ScoredColumns.from_rows(rows), ReportConfig(group_by="site", publish=publish)
    )
    write_html(report, tmp_path / "report.html")
    write_json(report, tmp_path / "summary.json")
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    figures = check_page_against_json((tmp_path / "report.html").read_text("utf-8"), summary)

    keys = {f.key for f in figures}
    for prefix in ["", *(f"groups.{i}." for i in range(len(summary["groups"])))]:
        expected = {f"{prefix}n_patients", f"{prefix}n_assessments", f"{prefix}nqf2483.rate_pct"}
        expected |= {f"{prefix}levels_{w}.{lv}" for w in ("baseline", "followup") for lv in "1234"}
        expected |= {f"{prefix}transitions.{a}.{b}" for a in "1234" for b in "1234"}
        expected |= {f"{prefix}change_by_baseline_level.{s}.mean_change" for s in "1234"}
        expected |= {f"{prefix}score_histogram.baseline.{lo}-{lo + 10}" for lo in range(0, 100, 10)}
        expected |= {f"{prefix}nqf2483.{k}" for k in ("numerator", "denominator")}
        expected |= {f"{prefix}nqf2483.excluded.no-follow-up"}
        assert expected <= keys
    # bars are drawn for shown values only
    bars = [f for f in figures if f.text is None]
    assert bars
    assert all(isinstance(f.value, int | float) for f in bars)
    if publish:
        assert any(f.value == "*" for f in figures)


def test_writers_accept_streams(make_row: MakeRow) -> None:
    import io

    report = build_report(ScoredColumns.from_rows([make_row("p", "2024-01-10", 40.0)]))
    html_out, json_out = io.StringIO(), io.StringIO()
    write_html(report, html_out)
    write_json(report, json_out)
    assert html_out.getvalue().startswith("<!DOCTYPE html>")
    assert json.loads(json_out.getvalue())["n_patients"] == 1
