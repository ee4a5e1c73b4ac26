"""Trends by calendar quarter: figures against a plain-Python computation, the edge cases, and
no suppressed count in any published output."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.reporting import ReportConfig, ScoredColumns, build_report, render_html, summary_json
from pamlib.reporting.trends import quarter_codes, quarter_label

Row = dict[str, str]
MakeRow = Callable[..., Row]
MakeCohort = Callable[..., list[Row]]
LEVELS = ("1", "2", "3", "4")


def _quarter(day: str) -> str:
    d = dt.date.fromisoformat(day)
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def _usable(row: Row) -> bool:
    return row["status"] == "scored" and row["score"] != "" and row.get("level", "") != ""


def _expected(rows: list[Row]) -> dict[str, dict[str, dict[str, Any]]]:
    """Count, levels and mean score by quarter, grouped here with plain Python."""
    by_patient: dict[str, list[tuple[str, int, Row]]] = defaultdict(list)
    for i, row in enumerate(rows):
        if _usable(row):
            by_patient[row["patient_id"]].append((row["assessed_on"], i, row))
    views = {
        "all": [row for row in rows if _usable(row)],
        "baseline": [min(visits)[2] for visits in by_patient.values()],
    }
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, chosen in views.items():
        quarters: dict[str, dict[str, Any]] = {}
        for row in chosen:
            q = quarters.setdefault(
                _quarter(row["assessed_on"]), {"n": 0, "total": 0.0, **dict.fromkeys(LEVELS, 0)}
            )
            q["n"] += 1
            q["total"] += float(row["score"])
            q[row["level"]] += 1
        out[kind] = quarters
    return out


def _close(published: Any, exact: float) -> bool:
    """A one-decimal figure is the exact one rounded (half a tenth of tolerance)."""
    return isinstance(published, float) and abs(published - exact) <= 0.05 + 1e-9


def test_figures_match_an_independent_computation(make_cohort: MakeCohort) -> None:
    rows = make_cohort(seed=11, n_patients=500)
    trends = summary_json(build_report(ScoredColumns.from_rows(rows)))["trends"]
    expected = _expected(rows)
    assert trends["quarters"] == sorted(expected["all"])
    assert len(trends["quarters"]) > 4
    for kind in ("all", "baseline"):
        assert list(trends[kind]) == trends["quarters"]
        assert set(expected[kind]) <= set(trends[kind])
        for q in trends["quarters"]:
            mine = expected[kind].get(q, {"n": 0, "total": 0.0, **dict.fromkeys(LEVELS, 0)})
            published = trends[kind][q]
            assert published["n"] == mine["n"], (kind, q)
            for lv in LEVELS:
                assert published["levels"][lv] == mine[lv], (kind, q, lv)
                if mine["n"]:
                    assert _close(published["levels_pct"][lv], 100 * mine[lv] / mine["n"])
                else:
                    assert published["levels_pct"][lv] is None
            if mine["n"]:
                assert _close(published["mean_score"], mine["total"] / mine["n"]), (kind, q)
            else:
                assert published["mean_score"] is None


def test_baseline_quarters_add_up_to_the_cohort_baseline(make_cohort: MakeCohort) -> None:
    summary = summary_json(build_report(ScoredColumns.from_rows(make_cohort(seed=3))))
    baseline = summary["trends"]["baseline"].values()
    assert sum(q["n"] for q in baseline) == summary["n_baseline"]
    for lv in LEVELS:
        assert sum(q["levels"][lv] for q in baseline) == summary["levels_baseline"][lv]
    everything = summary["trends"]["all"].values()
    assert sum(q["n"] for q in everything) >= summary["n_baseline"]


def test_baseline_counts_each_patient_once_all_counts_every_assessment(make_row: MakeRow) -> None:
    rows = [
        make_row("p1", "2024-01-15", 40.0),  # baseline, 2024-Q1, level 1
        make_row("p1", "2024-02-20", 60.0),  # same quarter, not a baseline
        make_row("p1", "2024-08-01", 70.0),  # 2024-Q3
        make_row("p2", "2024-03-31", 50.0),  # baseline, 2024-Q1, level 2
        make_row("p3", "2024-04-01", None),  # not scored: in neither view
        make_row("p3", "2024-07-01", 80.0),  # p3's baseline, 2024-Q3
    ]
    trends = summary_json(build_report(ScoredColumns.from_rows(rows)))["trends"]
    assert trends["quarters"] == ["2024-Q1", "2024-Q3"]
    q1, q3 = trends["all"]["2024-Q1"], trends["all"]["2024-Q3"]
    assert (q1["n"], q1["levels"], q1["mean_score"]) == (
        3,
        {"1": 1, "2": 1, "3": 1, "4": 0},
        50.0,
    )
    assert (q3["n"], q3["levels"]["4"], q3["mean_score"]) == (2, 2, 75.0)
    b1, b3 = trends["baseline"]["2024-Q1"], trends["baseline"]["2024-Q3"]
    assert (b1["n"], b1["levels"], b1["mean_score"]) == (2, {"1": 1, "2": 1, "3": 0, "4": 0}, 45.0)
    assert (b3["n"], b3["levels"]["4"], b3["mean_score"]) == (1, 1, 80.0)
    assert b1["levels_pct"] == {"1": 50.0, "2": 50.0, "3": 0.0, "4": 0.0}


def test_one_quarter(make_row: MakeRow) -> None:
    rows = [make_row(f"p{i}", f"2025-11-{1 + i:02d}", 30.0 + 2 * i) for i in range(20)]
    report = build_report(ScoredColumns.from_rows(rows))
    trends = summary_json(report)["trends"]
    assert trends["quarters"] == ["2025-Q4"]
    assert trends["all"] == trends["baseline"]
    assert trends["all"]["2025-Q4"]["n"] == 20
    assert trends["all"]["2025-Q4"]["mean_score"] == 49.0
    assert "<th>2025-Q4</th>" in render_html(report)


def test_empty_cohort() -> None:
    report = build_report(ScoredColumns.from_rows([]))
    assert summary_json(report)["trends"] == {"quarters": [], "all": {}, "baseline": {}}
    page = render_html(report)
    assert 'id="trends"' in page
    assert "No usable scored assessments" in page


def test_no_usable_assessment_gives_no_quarter(make_row: MakeRow) -> None:
    rows = [make_row("p1", "2024-01-01", None), make_row("p2", "2024-05-01", None)]
    report = build_report(ScoredColumns.from_rows(rows))
    assert summary_json(report)["trends"]["quarters"] == []


def test_the_page_shows_trends_with_a_caption_and_text_alternative(
    make_cohort: MakeCohort,
    check_page_against_json: Callable[[str, Any], list[Any]],
) -> None:
    report = build_report(ScoredColumns.from_rows(make_cohort(seed=2, n_patients=300)))
    page, summary = render_html(report), summary_json(report)
    keys = {f.key for f in check_page_against_json(page, summary)}
    for kind in ("all", "baseline"):
        for q in summary["trends"]["quarters"]:
            assert f"trends.{kind}.{q}.n" in keys
            assert f"trends.{kind}.{q}.levels.4" in keys
            assert f"trends.{kind}.{q}.levels_pct.1" in keys
            assert f"trends.{kind}.{q}.mean_score" in keys
    section = page.split('id="trends"', 1)[1].split("</section>", 1)[0]
    assert section.count("<caption>") == 2
    assert "<caption>Baseline assessments" in section
    desc = re.search(r"<desc>(.*?)</desc>", section)
    assert desc is not None
    assert desc.group(1).startswith("Mean score by calendar quarter")
    first = summary["trends"]["quarters"][0]
    assert f"{first} {summary['trends']['all'][first]['mean_score']:.1f}" in desc.group(1)
    assert "#0072b2" in section  # Okabe–Ito blue and orange
    assert "#e69f00" in section


@settings(max_examples=200, deadline=None)
@given(day=st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)))
def test_quarter_of_a_day(day: dt.date) -> None:
    code = int(quarter_codes(np.array([day.isoformat()], dtype="datetime64[D]"))[0])
    assert quarter_label(code) == f"{day.year}-Q{(day.month - 1) // 3 + 1}"


# -- suppression ---------------------------------------------------------------------------------


@st.composite
def cohorts(draw: st.DrawFn) -> list[Row]:
    """Patients with one or two assessments spread over a few quarters, at a few sites."""
    rows: list[Row] = []
    n_patients = draw(st.integers(0, 60))
    for p in range(n_patients):
        start = dt.date(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 400)))
        first = draw(st.integers(0, 1000)) / 10
        visits = [(start, first), (start + dt.timedelta(days=draw(st.integers(30, 400))), 0.0)]
        visits[1] = (visits[1][0], min(100.0, max(0.0, first + draw(st.integers(-150, 150)) / 10)))
        for i, (day, score) in enumerate(visits[: draw(st.sampled_from((1, 2, 2)))]):
            level = 1 if score <= 47 else 2 if score <= 55.1 else 3 if score <= 67 else 4
            rows.append(
                {
                    "assessment_id": f"a{p}-{i}",
                    "patient_id": f"p{p}",
                    "assessed_on": day.isoformat(),
                    "status": "scored",
                    "score": f"{score:.1f}",
                    "level": str(level),
                    "demo": "false",
                    "site": f"site-{p % 3}",
                }
            )
    return rows


def _one_hidden(terms: list[Any]) -> bool:
    return sum(isinstance(t, str) for t in terms) == 1


@settings(max_examples=60, deadline=None)
@given(rows=cohorts(), grouped=st.booleans())
def test_no_suppressed_count_is_published(
    rows: list[Row], grouped: bool, page_figures: Callable[[str], list[Any]]
) -> None:
    config = ReportConfig(group_by="site" if grouped and rows else None, publish=True)
    report = build_report(ScoredColumns.from_rows(rows), config)
    summary, page = summary_json(report), render_html(report)
    trends, full = summary["trends"], report.figures
    small = range(config.suppression.low, config.suppression.high + 1)
    for kind in ("all", "baseline"):
        for q in trends["quarters"]:
            key, published = f"trends.{kind}.{q}", trends[kind][q]
            if full[f"{key}.n"] in small:
                assert published["n"] == "*"
            if published["n"] == "*":  # no mean and no share of a suppressed quarter
                assert published["mean_score"] == "*"
                assert set(published["levels_pct"].values()) == {"*"}
            for lv in LEVELS:
                if full[f"{key}.levels.{lv}"] in small:
                    assert published["levels"][lv] == "*"
                if published["levels"][lv] == "*":
                    assert published["levels_pct"][lv] == "*"
            for value in (published["n"], *published["levels"].values()):
                assert value == "*" or value not in small
            # A quarter's count and its levels: none or at least two hidden.
            assert not _one_hidden([published["n"], *published["levels"].values()]), key
    baseline = [trends["baseline"][q] for q in trends["quarters"]]
    if baseline:  # the baseline quarters add up to the cohort's published baseline figures
        assert not _one_hidden([summary["n_baseline"], *(q["n"] for q in baseline)])
        for lv in LEVELS:
            terms = [summary["levels_baseline"][lv], *(q["levels"][lv] for q in baseline)]
            assert not _one_hidden(terms), lv
    shown = [f for f in page_figures(page) if f.key.startswith("trends.")]
    assert len(shown) >= 2 * len(trends["quarters"]) * 10  # every table cell has its key
    for figure in shown:
        if isinstance(figure.value, int):
            assert figure.value not in small, figure.key
        assert figure.text not in {str(n) for n in small}, figure.key
    if trends["quarters"]:
        section = page.split('id="trends"', 1)[1].split("</section>", 1)[0]
        tables = section.split("<table>")[1:]
        for kind, table in zip(("all", "baseline"), tables, strict=True):
            for quarter, cells in re.findall(r"<tr><th>(\d{4}-Q\d)</th>(.*?)</tr>", table):
                if trends[kind][quarter]["n"] == "*":
                    # A suppressed quarter shows no share and no mean, and no small count; a
                    # level's count large enough to publish may stay (the quarter's total was
                    # hidden so that a small count beside it cannot be worked out).
                    texts = re.sub(r"<[^>]+>", " ", cells).split()
                    for text in texts:
                        assert text == "*" or (text.isdigit() and int(text) not in small), cells
