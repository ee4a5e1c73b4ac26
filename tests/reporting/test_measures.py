"""NQF #2483 numerator, denominator and exclusions, per patient and as counts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pamlib.reporting import (
    ChangeThreshold,
    Exclusion,
    MeasureStatus,
    ReportConfig,
    ScoredColumns,
    build_report,
)

Row = dict[str, str]
MakeRow = Callable[..., Row]


def status_of(
    rows: list[Row], config: ReportConfig | None = None
) -> tuple[MeasureStatus, Exclusion | None]:
    report = build_report(ScoredColumns.from_rows(rows), config)
    return report.nqf2483.of(report.trajectories.index_of("p"))


@pytest.mark.parametrize(
    ("baseline", "followup", "expected"),
    [
        (47.1, 50.1, MeasureStatus.MET),  # a gain of exactly 3.0 points
        (47.1, 50.0, MeasureStatus.NOT_MET),  # 2.9
        (30.0, 67.0, MeasureStatus.MET),
        (60.0, 50.0, MeasureStatus.NOT_MET),
    ],
)
def test_numerator(
    make_row: MakeRow, baseline: float, followup: float, expected: MeasureStatus
) -> None:
    rows = [make_row("p", "2024-01-10", baseline), make_row("p", "2024-10-10", followup)]
    assert status_of(rows) == (expected, None)


def test_gain_is_three_points_whatever_the_report_threshold(make_row: MakeRow) -> None:
    rows = [make_row("p", "2024-01-10", 47.1), make_row("p", "2024-10-10", 50.1)]
    config = ReportConfig(threshold=ChangeThreshold.MDC)
    assert status_of(rows, config) == (MeasureStatus.MET, None)
    trajectory = build_report(ScoredColumns.from_rows(rows), config).trajectories.for_patient("p")
    assert str(trajectory.classification) == "stable"


@pytest.mark.parametrize(
    ("followup_on", "expected"),
    [
        ("2024-07-09", (MeasureStatus.EXCLUDED, Exclusion.NO_FOLLOW_UP)),
        ("2024-07-10", (MeasureStatus.MET, None)),  # exactly 6 months
        ("2025-01-10", (MeasureStatus.MET, None)),  # exactly 12 months
        ("2025-01-11", (MeasureStatus.EXCLUDED, Exclusion.NO_FOLLOW_UP)),
    ],
)
def test_window_edges(
    make_row: MakeRow, followup_on: str, expected: tuple[MeasureStatus, Exclusion | None]
) -> None:
    rows = [make_row("p", "2024-01-10", 40.0), make_row("p", followup_on, 50.0)]
    assert status_of(rows) == expected


def test_baseline_level_4_is_excluded_even_with_a_gain(make_row: MakeRow) -> None:
    rows = [make_row("p", "2024-01-10", 67.1), make_row("p", "2024-10-10", 90.0)]
    assert status_of(rows) == (MeasureStatus.EXCLUDED, Exclusion.BASELINE_LEVEL_4)


def test_level_comes_from_the_table_not_the_score(make_row: MakeRow) -> None:
    # A "hibbard-2005" level 3 at 70.0 points is not excluded; the table's level decides (at
    # the set the row names: a level its own set contradicts is refused, see test_report_audit).
    rows = [
        make_row("p", "2024-01-10", 70.0, level=3, cutpoint_set="hibbard-2005"),
        make_row("p", "2024-10-10", 75.0),
    ]
    assert status_of(rows) == (MeasureStatus.MET, None)


@pytest.mark.parametrize("flagged", ["baseline", "followup"])
def test_extreme_response_is_excluded(make_row: MakeRow, flagged: str) -> None:
    flag = "low-items;extreme-response"
    rows = [
        make_row("p", "2024-01-10", 40.0, flags=flag if flagged == "baseline" else ""),
        make_row("p", "2024-10-10", 50.0, flags=flag if flagged == "followup" else ""),
    ]
    assert status_of(rows) == (MeasureStatus.EXCLUDED, Exclusion.EXTREME_RESPONSE)


def test_extreme_flag_outside_the_trajectory_does_not_exclude(make_row: MakeRow) -> None:
    rows = [
        make_row("p", "2024-01-10", 40.0),
        make_row("p", "2024-03-10", 45.0, flags="extreme-response"),
        make_row("p", "2024-10-10", 50.0),
    ]
    assert status_of(rows) == (MeasureStatus.MET, None)


def test_not_scored_is_excluded_and_a_not_scored_baseline_is_skipped(make_row: MakeRow) -> None:
    assert status_of([make_row("p", "2024-01-10", None)]) == (
        MeasureStatus.EXCLUDED,
        Exclusion.NOT_SCORED,
    )
    rows = [
        make_row("p", "2024-01-10", None),
        make_row("p", "2024-02-10", 40.0),
        make_row("p", "2024-08-10", 44.0),  # 6 months after the scored baseline only
    ]
    assert status_of(rows) == (MeasureStatus.MET, None)


def test_first_applicable_reason_wins(make_row: MakeRow) -> None:
    # Level 4 at baseline and no follow-up: the level is listed first.
    rows = [make_row("p", "2024-01-10", 80.0, flags="extreme-response")]
    assert status_of(rows) == (MeasureStatus.EXCLUDED, Exclusion.BASELINE_LEVEL_4)
    # No follow-up and an extreme baseline: no follow-up is listed first.
    rows = [make_row("p", "2024-01-10", 40.0, flags="extreme-response")]
    assert status_of(rows) == (MeasureStatus.EXCLUDED, Exclusion.NO_FOLLOW_UP)


def test_counts(make_row: MakeRow) -> None:
    rows = [
        make_row("met", "2024-01-10", 40.0),
        make_row("met", "2024-10-10", 43.0),
        make_row("not-met", "2024-01-10", 50.0),
        make_row("not-met", "2024-10-10", 50.0),
        make_row("l4", "2024-01-10", 80.0),
        make_row("none", "2024-01-10", None),
        make_row("alone", "2024-01-10", 40.0),
        make_row("extreme", "2024-01-10", 40.0),
        make_row("extreme", "2024-10-10", 60.0, flags="extreme-response"),
    ]
    measure = build_report(ScoredColumns.from_rows(rows)).nqf2483
    assert (measure.numerator, measure.denominator) == (1, 2)
    assert measure.excluded == {
        "not-scored": 1,
        "baseline-level-4": 1,
        "no-follow-up": 1,
        "extreme-response": 1,
    }
