"""The JSON summary against an independent, deliberately plain computation over the rows."""

from __future__ import annotations

import calendar
import datetime as dt
import statistics
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.reporting import (
    ChangeThreshold,
    ReportConfig,
    ScoredColumns,
    build_report,
    summary_json,
)

Row = dict[str, str]
MakeRow = Callable[..., Row]
MakeCohort = Callable[..., list[Row]]
LEVELS = ("1", "2", "3", "4")
REASONS = ("not-scored", "baseline-level-4", "no-follow-up", "extreme-response")


# -- the reference: loops and dicts over rows, sharing no code with pamlib.reporting ------------


def plain_add_months(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def plain_patients(
    rows: list[Row], window: tuple[int, int] = (6, 12), group_by: str | None = None
) -> dict[str, dict[str, Any]]:
    by_patient: dict[str, list[tuple[str, str, int, Row]]] = {}
    for position, row in enumerate(rows):
        item = (row["assessed_on"], row["assessment_id"], position, row)
        by_patient.setdefault(row["patient_id"], []).append(item)
    patients: dict[str, dict[str, Any]] = {}
    for patient, items in by_patient.items():
        items.sort(key=lambda item: item[:3])
        ordered = [item[3] for item in items]
        usable = [r for r in ordered if r["status"] == "scored" and r["score"] and r["level"]]
        baseline = usable[0] if usable else None
        followup = None
        if baseline is not None:
            start = dt.date.fromisoformat(baseline["assessed_on"])
            opens, closes = plain_add_months(start, window[0]), plain_add_months(start, window[1])
            in_window = [
                r for r in usable if opens <= dt.date.fromisoformat(r["assessed_on"]) <= closes
            ]
            if in_window:
                followup = in_window[-1]
        change = None
        if baseline is not None and followup is not None:
            change = round(float(followup["score"]) - float(baseline["score"]), 1)
        if baseline is None:
            nqf = "not-scored"
        elif baseline["level"] == "4":
            nqf = "baseline-level-4"
        elif followup is None or change is None:
            nqf = "no-follow-up"
        elif "extreme-response" in (baseline["flags"] + ";" + followup["flags"]).split(";"):
            nqf = "extreme-response"
        else:
            nqf = "met" if change >= 3.0 - 1e-9 else "not-met"
        patients[patient] = {
            "n": len(ordered),
            "used": len(usable),
            "not_scored": sum(1 for r in ordered if r["status"] != "scored"),
            "baseline": baseline,
            "followup": followup,
            "change": change,
            "nqf": nqf,
            "group": (baseline or ordered[0])[group_by] if group_by else None,
        }
    return patients


def plain_figures(patients: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    def pct(count: int, total: int) -> float | None:
        return 100 * count / total if total else None

    def mean(values: list[float]) -> float | None:
        return statistics.fmean(values) if values else None

    def sd(values: list[float]) -> float | None:
        return statistics.stdev(values) if len(values) > 1 else None

    figures: dict[str, Any] = {
        "n_patients": len(patients),
        "n_assessments": sum(p["n"] for p in patients),
        "n_assessments_used": sum(p["used"] for p in patients),
        "assessments_not_used": {
            "not-scored": sum(p["not_scored"] for p in patients),
            "no-score-or-level": sum(p["n"] - p["used"] - p["not_scored"] for p in patients),
        },
    }
    for when in ("baseline", "followup"):
        having = [p for p in patients if p[when] is not None]
        figures[f"n_{when}"] = len(having)
        counts = dict.fromkeys(LEVELS, 0)
        for p in having:
            counts[p[when]["level"]] += 1
        figures[f"levels_{when}"] = counts
        figures[f"levels_{when}_pct"] = {lv: pct(counts[lv], len(having)) for lv in LEVELS}
        scores = [float(p[when]["score"]) for p in having]
        figures[f"score_{when}"] = {"mean": mean(scores), "sd": sd(scores)}

    followed = [p for p in patients if p["followup"] is not None]
    strata: dict[str, Any] = {}
    for stratum in (*LEVELS, "all"):
        changes = [
            p["change"] for p in followed if stratum == "all" or p["baseline"]["level"] == stratum
        ]
        improved = sum(1 for c in changes if c >= threshold - 1e-9)
        declined = sum(1 for c in changes if c <= -threshold + 1e-9)
        stable = len(changes) - improved - declined
        strata[stratum] = {
            "n": len(changes),
            "mean_change": mean(changes),
            "sd_change": sd(changes),
            "n_improved": improved,
            "n_stable": stable,
            "n_declined": declined,
            "pct_improved": pct(improved, len(changes)),
            "pct_stable": pct(stable, len(changes)),
            "pct_declined": pct(declined, len(changes)),
        }
    figures["change_by_baseline_level"] = strata

    transitions = {a: dict.fromkeys(LEVELS, 0) for a in LEVELS}
    for p in followed:
        transitions[p["baseline"]["level"]][p["followup"]["level"]] += 1
    figures["transitions"] = transitions

    histogram: dict[str, dict[str, int]] = {}
    for when in ("baseline", "followup"):
        bins = {f"{lo}-{lo + 10}": 0 for lo in range(0, 100, 10)}
        for p in patients:
            if p[when] is not None:
                lo = min(int(float(p[when]["score"]) // 10) * 10, 90)
                bins[f"{lo}-{lo + 10}"] += 1
        histogram[when] = bins
    figures["score_histogram"] = histogram

    met = sum(1 for p in patients if p["nqf"] == "met")
    denominator = sum(1 for p in patients if p["nqf"] in ("met", "not-met"))
    figures["nqf2483"] = {
        "numerator": met,
        "denominator": denominator,
        "rate_pct": pct(met, denominator),
        "excluded": {r: sum(1 for p in patients if p["nqf"] == r) for r in REASONS},
    }
    return figures


def assert_matches(actual: Any, expected: Any, path: str = "$") -> None:
    """Counts equal; means, SDs and percentages equal once rounded to one decimal."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            assert_matches(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, float):
        assert isinstance(actual, float), path
        assert abs(actual - expected) <= 0.05 + 1e-9, f"{path}: {actual} vs {expected}"
    else:
        assert type(actual) is type(expected), path
        assert actual == expected, f"{path}: {actual} vs {expected}"


# -- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [ChangeThreshold.NQF2483, ChangeThreshold.MCID, 4.5])
def test_cohort_figures_match_a_plain_computation(
    make_cohort: MakeCohort, threshold: float
) -> None:
    rows = make_cohort(seed=11, n_patients=500)
    config = ReportConfig(group_by="site", threshold=threshold)
    summary = summary_json(build_report(ScoredColumns.from_rows(rows), config))
    patients = plain_patients(rows, group_by="site")

    assert_matches(summary, plain_figures(list(patients.values()), threshold))
    groups = sorted({p["group"] for p in patients.values()})
    assert [g["group"] for g in summary["groups"]] == groups
    for group in summary["groups"]:
        members = [p for p in patients.values() if p["group"] == group["group"]]
        assert_matches(group, plain_figures(members, threshold))
    # the cohort is not trivial: every part of the summary has something in it
    assert summary["nqf2483"]["numerator"] > 0
    assert all(summary["nqf2483"]["excluded"][r] > 0 for r in REASONS)
    assert summary["change_by_baseline_level"]["all"]["n_declined"] > 0


def test_window_setting_matches_a_plain_computation(make_cohort: MakeCohort) -> None:
    rows = make_cohort(seed=3, n_patients=300)
    config = ReportConfig(min_months=3, max_months=9)
    summary = summary_json(build_report(ScoredColumns.from_rows(rows), config))
    patients = plain_patients(rows, window=(3, 9))
    assert_matches(summary, plain_figures(list(patients.values()), 3.0))
    assert summary["nqf2483"]["as_specified"] is False


dates = st.dates(min_value=dt.date(2023, 1, 1), max_value=dt.date(2025, 6, 30))


@st.composite
def small_cohorts(draw: st.DrawFn) -> list[Row]:
    rows = []
    for i in range(draw(st.integers(1, 40))):
        score = draw(st.one_of(st.none(), st.integers(0, 1000).map(lambda t: t / 10)))
        level = "" if score is None else draw(st.sampled_from(LEVELS))
        status = "scored" if score is not None else draw(st.sampled_from(("not-scored", "scored")))
        rows.append(
            {
                "assessment_id": f"a{draw(st.integers(0, 50)):02d}-{i}",
                "patient_id": draw(st.sampled_from(("p1", "p2", "p3", "p4", "p5", "p6"))),
                "assessed_on": draw(dates).isoformat(),
                "status": status,
                "score": "" if score is None else f"{score:.1f}",
                "level": level,
                "flags": draw(st.sampled_from(("", "", "extreme-response"))),
                "demo": "false",
                "site": draw(st.sampled_from(("a", "b"))),
            }
        )
    return rows


@settings(max_examples=120, deadline=None)
@given(rows=small_cohorts())
def test_small_cohorts_match_a_plain_computation(rows: list[Row]) -> None:
    summary = summary_json(
        build_report(ScoredColumns.from_rows(rows), ReportConfig(group_by="site"))
    )
    patients = plain_patients(rows, group_by="site")
    assert_matches(summary, plain_figures(list(patients.values()), 3.0))
    for group in summary["groups"]:
        members = [p for p in patients.values() if p["group"] == group["group"]]
        assert_matches(group, plain_figures(members, 3.0))


def test_json_shape(make_cohort: MakeCohort) -> None:
    rows = make_cohort(seed=5, n_patients=50, demo=True)
    summary = summary_json(build_report(ScoredColumns.from_rows(rows)))
    assert summary["schema"] == "pamlib.cohort-summary/1"
    assert summary["demo"] is True
    assert summary["published"] is False
    assert list(summary["levels_baseline"]) == list(LEVELS)
    assert list(summary["levels_followup"]) == list(LEVELS)
    assert set(summary["nqf2483"]) >= {"numerator", "denominator", "excluded", "rate_pct"}
    assert list(summary["nqf2483"]["excluded"]) == list(REASONS)
    assert summary["config"]["window_months"] == [6, 12]
    assert summary["config"]["threshold_points"] == 3.0
    assert summary["config"]["threshold_preset"] == "nqf2483"
    assert summary["cutpoint_sets"] == ["current"]
    assert (summary["group_by"], summary["groups"]) == (None, [])


def test_empty_table() -> None:
    summary = summary_json(build_report(ScoredColumns.from_rows([])))
    assert summary["n_patients"] == 0
    assert summary["nqf2483"]["rate_pct"] is None
    assert summary["score_baseline"] == {"mean": None, "sd": None}
