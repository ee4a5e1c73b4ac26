"""Site comparison: rates, Wilson intervals and funnel limits against an independent computation;
suppressed groups publish no number and are never plotted."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.reporting import ReportConfig, ScoredColumns, build_report, render_html, summary_json
from pamlib.reporting._comparison import Z_95, Z_998, control_limits, wilson_interval

stats = pytest.importorskip("scipy.stats")

Row = dict[str, str]
MakeCohort = Callable[..., list[Row]]


# -- the formulas, checked from their definitions ------------------------------------------------


def test_z_values_are_the_normal_quantiles() -> None:
    assert pytest.approx(stats.norm.ppf(0.975), abs=1e-12) == Z_95
    assert pytest.approx(stats.norm.ppf(0.999), abs=1e-12) == Z_998


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 5000), data=st.data())
def test_wilson_interval_matches_scipy_and_its_definition(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    low, high = wilson_interval(k, n)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert low == pytest.approx(ci.low, abs=1e-9)
    assert high == pytest.approx(ci.high, abs=1e-9)
    # Definition: the p with |k/n − p| = z·sqrt(p(1 − p)/n), the roots of a quadratic in p.
    z2, phat = Z_95**2, k / n
    roots = np.sort(np.roots([1 + z2 / n, -(2 * phat + z2 / n), phat**2]).real)
    assert [low, high] == pytest.approx([max(0.0, roots[0]), min(1.0, roots[1])], abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(p=st.floats(0, 1), n=st.integers(1, 10_000))
def test_control_limits_are_the_normal_approximation(p: float, n: int) -> None:
    for z, coverage in ((Z_95, 0.95), (Z_998, 0.998)):
        half = stats.norm.ppf(1 - (1 - coverage) / 2) * math.sqrt(p * (1 - p) / n)
        low, high = control_limits(p, n, z)
        assert low == pytest.approx(max(0.0, p - half), abs=1e-12)
        assert high == pytest.approx(min(1.0, p + half), abs=1e-12)


# -- the comparison of a report ------------------------------------------------------------------


def _pct_close(published: Any, fraction: float) -> bool:
    """A one-decimal percentage is the exact one rounded (half a tenth of tolerance)."""
    return isinstance(published, float) and abs(published - 100 * fraction) <= 0.05 + 1e-9


def test_figures_match_an_independent_computation(make_cohort: MakeCohort) -> None:
    rows = make_cohort(seed=5, n_patients=600, sites=("north", "south", "east", "west", "tiny"))
    report = build_report(ScoredColumns.from_rows(rows), ReportConfig(group_by="site"))
    comparison = summary_json(report)["site_comparison"]
    # Per patient, from the measure's own status codes (1 met, 2 not met, 3 excluded), grouped
    # here by the patient's site rather than by the summary's machinery.
    site = report.trajectories.group_values("site")
    status = report.nqf2483.status
    eligible_all = int((status <= 2).sum())
    p = int((status == 1).sum()) / eligible_all
    assert _pct_close(comparison["cohort"]["rate_pct"], p)
    assert comparison["cohort"]["eligible"] == eligible_all
    names = sorted(set(site.tolist()))
    assert [g["group"] for g in comparison["groups"]] == names
    for name, row in zip(names, comparison["groups"], strict=True):
        mine = site == name
        n, k = int((mine & (status <= 2)).sum()), int((mine & (status == 1)).sum())
        assert (row["eligible"], row["improving"], row["suppressed"]) == (n, k, False)
        assert _pct_close(row["rate_pct"], k / n)
        ci = stats.binomtest(k, n).proportion_ci(method="wilson")
        assert _pct_close(row["wilson_low_pct"], ci.low)
        assert _pct_close(row["wilson_high_pct"], ci.high)
        limits = {}
        for name_z, z in (("limit95", stats.norm.ppf(0.975)), ("limit998", stats.norm.ppf(0.999))):
            half = z * math.sqrt(p * (1 - p) / n)
            limits[name_z] = (max(0.0, p - half), min(1.0, p + half))
            assert _pct_close(row[f"{name_z}_low_pct"], limits[name_z][0])
            assert _pct_close(row[f"{name_z}_high_pct"], limits[name_z][1])
        rate = k / n
        expected = "within"
        for name_z, label in (("limit95", "95"), ("limit998", "99.8")):
            if rate > limits[name_z][1]:
                expected = f"above-{label}"
            elif rate < limits[name_z][0]:
                expected = f"below-{label}"
        assert row["position"] == expected


def test_the_page_shows_the_comparison_with_a_text_alternative(
    make_cohort: MakeCohort,
    check_page_against_json: Callable[[str, Any], list[Any]],
) -> None:
    rows = make_cohort(seed=6, n_patients=500)
    report = build_report(ScoredColumns.from_rows(rows), ReportConfig(group_by="site"))
    page, summary = render_html(report), summary_json(report)
    figures = check_page_against_json(page, summary)  # every number equals the JSON
    keys = {f.key for f in figures}
    for i in range(len(summary["site_comparison"]["groups"])):
        assert f"site_comparison.groups.{i}.wilson_low_pct" in keys
    assert '<svg class="chart funnel"' in page
    assert re.search(r'<desc id="funnel-desc">Each point is one site: .*Cohort mean', page)
    assert "<caption>Share of eligible patients gaining at least 3 points, by site" in page
    assert page.count('class="point"') == len(summary["site_comparison"]["groups"])
    assert 'class="mean"' in page
    assert 'class="limit95"' in page
    assert 'class="limit998"' in page
    assert "Spiegelhalter (2005)" in page


def test_an_ungrouped_report_has_no_comparison(make_cohort: MakeCohort) -> None:
    report = build_report(ScoredColumns.from_rows(make_cohort(seed=1, n_patients=50)))
    assert report.comparison is None
    assert "site_comparison" not in summary_json(report)
    assert "site-comparison" not in render_html(report)


def test_a_group_nobody_is_eligible_in_is_listed_not_plotted(make_row: Any) -> None:
    rows = [make_row(f"p{i}", "2024-01-01", 50.0, site="a") for i in range(20)]
    rows += [make_row(f"p{i}", "2024-09-01", 55.0 + i % 3, site="a") for i in range(20)]
    rows += [make_row(f"q{i}", "2024-01-01", 80.0, site="b") for i in range(10)]  # level 4
    report = build_report(ScoredColumns.from_rows(rows), ReportConfig(group_by="site"))
    b = summary_json(report)["site_comparison"]["groups"][1]
    assert (b["group"], b["eligible"], b["rate_pct"], b["position"]) == ("b", 0, None, None)
    assert "no eligible patients" in render_html(report)


# -- suppression ---------------------------------------------------------------------------------


@st.composite
def grouped_cohorts(draw: st.DrawFn) -> list[Row]:
    """Baselines with a follow-up about 8 months on, at sites of very different sizes."""
    rows: list[Row] = []
    sizes = draw(st.lists(st.integers(1, 25), min_size=1, max_size=5))
    for s, size in enumerate(sizes):
        for p in range(size):
            start = dt.date(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 60)))
            first = draw(st.integers(0, 700)) / 10
            later = (start + dt.timedelta(days=240), first + draw(st.integers(-80, 120)) / 10)
            visits = [(start, first), later][: draw(st.sampled_from((1, 2, 2)))]
            for i, (day, raw) in enumerate(visits):
                score = min(100.0, max(0.0, raw))
                level = 1 if score <= 47 else 2 if score <= 55.1 else 3 if score <= 67 else 4
                rows.append(
                    {
                        "assessment_id": f"a{s}-{p}-{i}",
                        "patient_id": f"p{s}-{p}",
                        "assessed_on": day.isoformat(),
                        "status": "scored",
                        "score": f"{score:.1f}",
                        "level": str(level),
                        "demo": "false",
                        "site": f"site-{s}",
                    }
                )
    return rows


def _comparison_rows(page: str) -> list[str]:
    section = page.split('id="site-comparison"', 1)[1].split("</section>", 1)[0]
    body: str = re.findall(r"<tbody>(.*?)</tbody>", section)[0]
    return body.split("</tr>")[:-1]


@settings(max_examples=60, deadline=None)
@given(rows=grouped_cohorts())
def test_no_suppressed_count_is_published(
    rows: list[Row], page_figures: Callable[[str], list[Any]]
) -> None:
    report = build_report(
        ScoredColumns.from_rows(rows), ReportConfig(group_by="site", publish=True)
    )
    summary, page = summary_json(report), render_html(report)
    comparison = summary["site_comparison"]
    full = report.figures  # the unsuppressed figures
    small = range(report.config.suppression.low, report.config.suppression.high + 1)
    shown = {f.key: f for f in page_figures(page) if f.key.startswith("site_comparison.")}
    table_rows = _comparison_rows(page)
    for i, row in enumerate(comparison["groups"]):
        n, k = full[f"groups.{i}.nqf2483.denominator"], full[f"groups.{i}.nqf2483.numerator"]
        released_n = report.released[f"groups.{i}.nqf2483.denominator"]
        released_k = report.released[f"groups.{i}.nqf2483.numerator"]
        must_hide = n in small or k in small or not isinstance(released_n, int)
        must_hide = must_hide or not isinstance(released_k, int)
        assert row["suppressed"] is must_hide
        if must_hide:
            # No number at all: not in the JSON, not in the table row, not in the plot.
            figures = [v for name, v in row.items() if name not in ("group", "suppressed")]
            assert figures[:-1] == ["*"] * 9
            assert row["position"] is None
            cells = re.sub(r"<[^>]+>", " ", table_rows[i].split("</th>", 1)[1])
            assert not re.search(r"[0-9]", cells), cells
            for name in ("eligible", "improving", "rate_pct"):
                figure = shown[f"site_comparison.groups.{i}.{name}"]
                assert figure.value == "*"
        else:
            assert (row["eligible"], row["improving"]) == (n, k)
            assert n not in small
            assert k not in small
    # Points drawn only for published groups; every published count is outside 1–7.
    for match in re.finditer(r'class="point"[^>]*data-key="site_comparison\.groups\.(\d+)\.', page):
        assert not comparison["groups"][int(match.group(1))]["suppressed"]
    for figure in shown.values():
        if isinstance(figure.value, int):
            assert figure.value not in small, figure.key
    cohort = comparison["cohort"]
    for value in (cohort["eligible"], cohort["improving"]):
        assert value == "*" or value not in small
    if cohort["eligible"] == "*" or cohort["improving"] == "*":
        assert cohort["rate_pct"] is None  # no cohort mean gives a hidden count away
        assert 'class="chart funnel"' not in page
