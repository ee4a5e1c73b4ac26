"""Baseline and follow-up choice, calendar months, ties, exact change and classification."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pamlib.reporting import (
    ChangeThreshold,
    Classification,
    ReportConfig,
    ScoredColumns,
    Trajectory,
    UnknownPatientError,
    add_calendar_months,
    link_trajectories,
)

Row = dict[str, str]
MakeRow = Callable[..., Row]


def trajectory(
    rows: list[Row], patient: str = "p", config: ReportConfig | None = None
) -> Trajectory:
    return link_trajectories(ScoredColumns.from_rows(rows), config).for_patient(patient)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2024-01-15", 6, "2024-07-15"),
        ("2024-01-15", 12, "2025-01-15"),
        ("2024-08-31", 6, "2025-02-28"),  # clamped to the end of a short month
        ("2023-08-31", 6, "2024-02-29"),  # leap year
        ("2024-02-29", 12, "2025-02-28"),
        ("2024-03-31", 1, "2024-04-30"),
        ("2024-12-31", 2, "2025-02-28"),
    ],
)
def test_calendar_months(start: str, months: int, expected: str) -> None:
    got = add_calendar_months(dt.date.fromisoformat(start), months)
    assert got == dt.date.fromisoformat(expected)


@pytest.mark.parametrize(
    ("followup_on", "in_window"),
    [
        ("2024-07-14", False),  # one day short of 6 months
        ("2024-07-15", True),  # exactly 6 months
        ("2025-01-15", True),  # exactly 12 months
        ("2025-01-16", False),  # one day past 12 months
    ],
)
def test_window_edges(make_row: MakeRow, followup_on: str, in_window: bool) -> None:
    t = trajectory([make_row("p", "2024-01-15", 50.0), make_row("p", followup_on, 60.0)])
    assert t.baseline is not None
    assert t.baseline.assessed_on == dt.date(2024, 1, 15)
    assert (t.followup is not None) is in_window


@pytest.mark.parametrize(
    ("followup_on", "in_window"),
    [("2025-02-27", False), ("2025-02-28", True), ("2025-08-31", True), ("2025-09-01", False)],
)
def test_window_from_a_month_end(make_row: MakeRow, followup_on: str, in_window: bool) -> None:
    t = trajectory([make_row("p", "2024-08-31", 50.0), make_row("p", followup_on, 60.0)])
    assert (t.followup is not None) is in_window


def test_configurable_window(make_row: MakeRow) -> None:
    rows = [make_row("p", "2024-01-15", 50.0), make_row("p", "2024-04-15", 60.0)]
    assert trajectory(rows).followup is None
    t = trajectory(rows, config=ReportConfig(min_months=3, max_months=4))
    assert t.followup is not None
    assert t.followup.assessed_on == dt.date(2024, 4, 15)


def test_latest_scored_in_window_is_the_followup(make_row: MakeRow) -> None:
    rows = [
        make_row("p", "2024-01-10", 40.0),
        make_row("p", "2024-04-10", 41.0),  # too early
        make_row("p", "2024-08-10", 42.0),
        make_row("p", "2024-11-10", 43.0),  # latest scored in the window
        make_row("p", "2024-12-10", None),  # not scored: never a follow-up
        make_row("p", "2025-02-10", 44.0),  # too late
    ]
    t = trajectory(rows)
    assert t.followup is not None
    assert (t.followup.assessed_on, t.followup.score) == (dt.date(2024, 11, 10), 43.0)
    assert t.n_assessments == 6


def test_not_scored_baseline_is_skipped(make_row: MakeRow) -> None:
    rows = [
        make_row("p", "2024-01-10", None),  # not scored
        make_row("p", "2024-02-10", None, status="scored"),  # scored, but no 0–100 score
        make_row("p", "2024-03-10", 50.0),
        make_row("p", "2024-08-12", 55.0),  # 7 months after the first, 5 after the baseline
        make_row("p", "2024-09-10", 56.0),  # 6 months after the baseline
    ]
    t = trajectory(rows)
    assert t.baseline is not None
    assert t.baseline.assessed_on == dt.date(2024, 3, 10)
    assert t.followup is not None
    assert t.followup.assessed_on == dt.date(2024, 9, 10)


def test_patient_with_nothing_scored_has_no_trajectory(make_row: MakeRow) -> None:
    t = trajectory([make_row("p", "2024-01-10", None), make_row("p", "2024-09-10", None)])
    assert (t.baseline, t.followup, t.change, t.classification) == (None, None, None, None)
    assert t.transition is None


def test_ties_on_a_day_are_broken_by_assessment_id(make_row: MakeRow) -> None:
    rows = [
        make_row("p", "2024-01-10", 50.0, assessment_id="b"),
        make_row("p", "2024-01-10", 60.0, assessment_id="a"),
        make_row("p", "2024-09-10", 70.0, assessment_id="y"),
        make_row("p", "2024-09-10", 65.0, assessment_id="z"),
    ]
    for order in (rows, rows[::-1], [rows[2], rows[0], rows[3], rows[1]]):
        t = trajectory(order)
        assert t.baseline is not None
        assert t.followup is not None
        assert (t.baseline.assessment_id, t.followup.assessment_id) == ("a", "z")
        assert t.change == 5.0


@pytest.mark.parametrize(
    ("baseline", "followup", "threshold", "expected"),
    [
        (47.1, 50.1, ChangeThreshold.NQF2483, Classification.IMPROVED),  # exactly +3.0
        (47.1, 50.0, ChangeThreshold.NQF2483, Classification.STABLE),  # +2.9
        (50.1, 47.1, ChangeThreshold.NQF2483, Classification.DECLINED),  # exactly −3.0
        (50.1, 47.2, ChangeThreshold.NQF2483, Classification.STABLE),
        (40.0, 45.4, ChangeThreshold.MCID, Classification.IMPROVED),  # exactly +5.4
        (40.0, 45.3, ChangeThreshold.MCID, Classification.STABLE),
        (60.3, 53.1, ChangeThreshold.MDC, Classification.DECLINED),  # exactly −7.2
        (60.3, 53.2, ChangeThreshold.MDC, Classification.STABLE),
    ],
)
def test_change_is_exact_to_the_tenth(
    make_row: MakeRow, baseline: float, followup: float, threshold: float, expected: Classification
) -> None:
    rows = [make_row("p", "2024-01-10", baseline), make_row("p", "2024-10-10", followup)]
    t = trajectory(rows, config=ReportConfig(threshold=threshold))
    assert t.change == round(followup - baseline, 1)
    assert t.classification is expected


def test_transition_and_reprs_hide_identifiers(make_row: MakeRow) -> None:
    rows = [
        make_row("SECRET-77", "2024-01-10", 45.0, assessment_id="SECRET-A1"),
        make_row("SECRET-77", "2024-10-10", 70.0, assessment_id="SECRET-A2"),
    ]
    columns = ScoredColumns.from_rows(rows)
    trajectories = link_trajectories(columns)
    t = trajectories.for_patient("SECRET-77")
    assert t.transition == (1, 4)
    for text in (repr(t), repr(trajectories), repr(columns), repr(list(trajectories))):
        assert "SECRET" not in text
    with pytest.raises(UnknownPatientError) as caught:
        trajectories.for_patient("SECRET-99")
    assert "SECRET" not in str(caught.value)


# -- properties ---------------------------------------------------------------------------------

days = st.dates(min_value=dt.date(2022, 1, 1), max_value=dt.date(2025, 12, 31))
scores = st.one_of(st.none(), st.integers(0, 1000).map(lambda t: t / 10))


@st.composite
def assessments(draw: st.DrawFn, patients: tuple[str, ...] = ("p0", "p1", "p2", "p3")) -> Row:
    score = draw(scores)
    status = "scored" if score is not None or draw(st.booleans()) else "not-scored"
    level = None if score is None else draw(st.integers(1, 4))
    flags = draw(st.sampled_from(("", "extreme-response", "low-items;extreme-response")))
    return {
        "assessment_id": draw(st.text("abcxyz0123", min_size=1, max_size=4)),
        "patient_id": draw(st.sampled_from(patients)),
        "assessed_on": draw(days).isoformat(),
        "status": status,
        "score": "" if score is None else f"{score:.1f}",
        "level": "" if level is None else str(level),
        "flags": flags,
        "demo": "false",
    }


def all_trajectories(rows: list[Row]) -> dict[str, Trajectory]:
    linked = link_trajectories(ScoredColumns.from_rows(rows))
    return {t.patient_id: t for t in linked}


@settings(max_examples=150, deadline=None)
@given(
    # Assessment ids are unique in a scored table (a repeated id is refused).
    rows=st.lists(assessments(), min_size=1, max_size=30, unique_by=lambda r: r["assessment_id"]),
    extra=assessments(patients=("p0", "p1", "p2", "p3", "new")),
)
def test_another_patients_assessment_never_changes_a_trajectory(
    rows: list[Row], extra: Row
) -> None:
    assume(all(r["assessment_id"] != extra["assessment_id"] for r in rows))
    before = all_trajectories(rows)
    after = all_trajectories([*rows, extra])
    for patient, t in before.items():
        if patient != extra["patient_id"]:
            assert after[patient] == t


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(assessments(), min_size=1, max_size=30), data=st.data())
def test_input_order_does_not_matter(rows: list[Row], data: st.DataObject) -> None:
    # Distinct assessment ids, as in every scored table (a repeated id is refused).
    rows = [{**r, "assessment_id": f"{r['assessment_id']}-{i}"} for i, r in enumerate(rows)]
    shuffled = data.draw(st.permutations(rows))
    assert all_trajectories(shuffled) == all_trajectories(rows)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(assessments(), min_size=1, max_size=30, unique_by=lambda r: r["assessment_id"]),
    threshold=st.sampled_from((0.1, 3.0, ChangeThreshold.MCID, 50.0)),
)
def test_cohort_classification_follows_the_threshold_rule(
    rows: list[Row], threshold: float
) -> None:
    # The whole-cohort codes (one byte a patient) say what each patient's change says.
    linked = link_trajectories(ScoredColumns.from_rows(rows), ReportConfig(threshold=threshold))
    names = {1: Classification.IMPROVED, 2: Classification.STABLE, 3: Classification.DECLINED}
    for code, t in zip(linked.classification.tolist(), linked, strict=True):
        if t.change is None:
            assert code == 0
            assert t.classification is None
            continue
        tenths, limit = round(t.change * 10), round(threshold * 10)
        rule = 1 if tenths >= limit else 3 if tenths <= -limit else 2
        assert names[code] == t.classification == names[rule]
