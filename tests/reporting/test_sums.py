"""The cohort's figures from parts computed apart (as a Spark job's groups of patients are)
equal the figures of the whole: counts and sums add up exactly, whatever the split."""

from __future__ import annotations

import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.reporting.conftest import MakeCohort

from pamlib.reporting import (
    CohortSums,
    ReportConfig,
    ScoredColumns,
    build_report,
    cohort_sums,
    link_trajectories,
    nqf2483,
    summary_from_sums,
)


def _sums(rows: list[dict[str, str]], config: ReportConfig) -> CohortSums:
    traj = link_trajectories(ScoredColumns.from_rows(rows), config)
    return cohort_sums(traj, nqf2483(traj), config)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    n_parts=st.integers(1, 5),
    salt=st.integers(0, 1_000),
    group_by=st.sampled_from([None, "site"]),
    window=st.sampled_from([(6, 12), (3, 9)]),
)
def test_any_split_by_patient_sums_to_the_whole(
    make_cohort: MakeCohort,
    *,
    seed: int,
    n_parts: int,
    salt: int,
    group_by: str | None,
    window: tuple[int, int],
) -> None:
    rows = make_cohort(seed=seed, n_patients=30)
    config = ReportConfig(group_by=group_by, min_months=window[0], max_months=window[1])
    parts: list[list[dict[str, str]]] = [[] for _ in range(n_parts)]
    for row in rows:  # every row of a patient goes to the same part
        parts[zlib.crc32(f"{salt}:{row['patient_id']}".encode()) % n_parts].append(row)
    combined = CohortSums.combine(_sums(part, config) for part in parts if part)
    whole = build_report(ScoredColumns.from_rows(rows), config).figures
    found = summary_from_sums(combined, config)
    assert list(found.values.items()) == list(whole.values.items())
    assert found.identities == whole.identities
    assert found.counts == whole.counts
    assert found.derived == whole.derived
    assert found.groups == whole.groups


def test_no_patient_gives_empty_figures() -> None:
    config = ReportConfig()
    empty = summary_from_sums(CohortSums.combine([]), config)
    assert empty["n_patients"] == 0
    assert empty["score_baseline.mean"] is None
    assert list(empty.values) == list(build_report(ScoredColumns.from_rows([])).figures.values)
