"""Hostile reports: what an audit of small-number suppression found.

Zero is never hidden, so every hidden count is at least 1, and a reader of a published report
knows it. Suppression made sure no identity had exactly one hidden term, and that no hidden
count followed from the identities as equations; it did not look at that bound:

* ``n_baseline`` 22 beside baseline quarters 20, ``*``, ``*``: the two hidden quarters add up
  to 2, so each is 1;
* identities combined with the bound pinned larger counts too: with the transitions' margins a
  hidden cell of 7 was ``6 + t`` for a hidden ``t >= 1`` and at most ``9 - 1 - 1``, so 7. In
  generated cohorts of up to 150 patients, nearly half had a hidden count pinned so.

And a group named by a patient's own id published it when the two differed only by spaces
around them or by letter case (``" X001"``, ``"x001"``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.reporting import (
    CohortSummary,
    IdentifyingColumnError,
    ReportConfig,
    ScoredColumns,
    build_report,
    hidden_counts,
    summary_json,
)

Row = dict[str, str]
Identity = tuple[tuple[str, ...], tuple[str, ...]]
#: A score at each level's middle, in its own 10-point bin.
SCORE = {1: 40.0, 2: 50.0, 3: 60.0, 4: 80.0}


def _row(patient: str, day: str, level: int, **extra: str) -> Row:
    return {
        "assessment_id": f"{patient}-{day}",
        "patient_id": patient,
        "assessed_on": day,
        "status": "scored",
        "score": f"{SCORE[level]:.1f}",
        "level": str(level),
        "cutpoint_set": "current",
        **extra,
    }


# -- an exact check, independent of the suppression's floating-point one --------------------------


def _null_space(rows: list[list[Fraction]], n: int) -> list[list[Fraction]]:
    """A basis of the vectors ``v`` of length ``n`` with ``row @ v == 0`` for every row: rows
    reduced one at a time, kept sparse (an identity has a few terms)."""
    pivots: dict[int, dict[int, Fraction]] = {}  # reduced rows by pivot column
    for dense in rows:
        row = {c: v for c, v in enumerate(dense) if v}
        for c in [c for c in row if c in pivots]:
            factor = row[c]
            for cc, vv in pivots[c].items():
                row[cc] = row.get(cc, Fraction(0)) - factor * vv
            row = {cc: vv for cc, vv in row.items() if vv}
        if not row:
            continue
        lead = min(row)
        row = {c: v / row[lead] for c, v in row.items()}
        for other in pivots.values():
            factor = other.get(lead, Fraction(0))
            if factor:
                for c, v in row.items():
                    other[c] = other.get(c, Fraction(0)) - factor * v
                for c in [c for c, v in other.items() if not v]:
                    del other[c]
        pivots[lead] = row
    basis = []
    for free in (c for c in range(n) if c not in pivots):
        vector = [Fraction(0)] * n
        vector[free] = Fraction(1)
        for pivot, row in pivots.items():
            vector[pivot] = -row.get(free, Fraction(0))
        basis.append(vector)
    return basis


def _raised_exactly(moves: list[list[Fraction]]) -> list[bool]:
    """For each row of ``moves`` (a count's change along each direction, by column): whether a
    combination of the directions raises it while lowering no row. The simplex method in
    exact fractions with Bland's rule: maximise ``sum(y)``, ``moves @ z >= y``, ``0 <= y <= 1``."""
    m = len(moves)
    k = len(moves[0]) if m else 0
    if not k:
        return [False] * m
    n = 2 * k + m
    zero, one = Fraction(0), Fraction(1)
    table = [[zero] * (n + 2 * m + 1) for _ in range(2 * m + 1)]
    for i in range(m):
        for j in range(k):
            table[i][j], table[i][k + j] = -moves[i][j], moves[i][j]
        table[i][2 * k + i] = table[m + i][2 * k + i] = one
        table[i][n + i] = table[m + i][n + m + i] = table[m + i][-1] = one
        table[-1][2 * k + i] = -one
    basic = list(range(n, n + 2 * m))
    while True:
        entering = next((c for c in range(n + 2 * m) if table[-1][c] < 0), None)
        if entering is None:
            break
        _, _, leaving = min(
            (table[r][-1] / table[r][entering], basic[r], r)
            for r in range(2 * m)
            if table[r][entering] > 0
        )
        pivot = table[leaving][entering]
        table[leaving] = [v / pivot for v in table[leaving]]
        for r, row in enumerate(table):
            if r != leaving and row[entering] != 0:
                factor = row[entering]
                table[r] = [a - factor * b for a, b in zip(row, table[leaving], strict=True)]
        basic[leaving] = entering
    y = [zero] * m
    for r, var in enumerate(basic):
        if 2 * k <= var < n:
            y[var - 2 * k] = table[r][-1]
    return [v > 0 for v in y]


def pinned_exactly(
    identities: Sequence[Identity], values: Mapping[str, Any], hidden: set[str]
) -> list[str]:
    """The hidden counts that the identities and "every hidden count is at least 1" fix, the
    published counts known. The true counts are a solution; the others are reached along
    directions that keep every identity and lower no hidden count of 1. Those counts of 1 that
    no direction raises are held, and a count is fixed when no direction that leaves the held
    ones unchanged moves it (those directions span the feasible ones)."""
    names = sorted(hidden)
    rows = [[Fraction(lhs.count(k) - rhs.count(k)) for k in names] for lhs, rhs in identities]
    basis = _null_space(rows, len(names))
    ones = [i for i, k in enumerate(names) if values[k] == 1]
    raised = _raised_exactly([[v[i] for v in basis] for i in ones])
    held = {names[i] for i, up in zip(ones, raised, strict=True) if not up}
    loose = [k for k in names if k not in held]
    rows = [[Fraction(lhs.count(k) - rhs.count(k)) for k in loose] for lhs, rhs in identities]
    moving = {i for v in _null_space(rows, len(loose)) for i, x in enumerate(v) if x}
    return sorted(held | {k for i, k in enumerate(loose) if i not in moving})


def _count(figures: CohortSummary, key: str) -> int:
    value = figures[key]
    assert isinstance(value, int), key
    return value


def _assert_not_all_ones(total: Any, parts: list[Any]) -> None:
    """A total and its parts as published: hidden parts must not add up to their number."""
    hidden_parts = [p for p in parts if isinstance(p, str)]
    if isinstance(total, int) and hidden_parts:
        rest = total - sum(p for p in parts if isinstance(p, int))
        assert rest != len(hidden_parts), "each hidden part is 1"


# -- the faults -----------------------------------------------------------------------------------


def test_hidden_quarters_adding_up_to_their_number_are_not_published() -> None:
    rows = [_row(f"P{i:02d}", "2024-01-10", 3) for i in range(20)]
    rows += [_row("Q1", "2024-04-10", 3), _row("Q2", "2024-07-10", 3)]
    summary = summary_json(build_report(ScoredColumns.from_rows(rows), ReportConfig(publish=True)))
    trends = summary["trends"]
    for view, total in (
        ("baseline", summary["n_baseline"]),
        ("all", summary["n_assessments_used"]),
    ):
        parts = [trends[view][q]["n"] for q in trends["quarters"]]
        _assert_not_all_ones(total, parts)
    for lv in ("1", "2", "3", "4"):
        parts = [trends["baseline"][q]["levels"][lv] for q in trends["quarters"]]
        _assert_not_all_ones(summary["levels_baseline"][lv], parts)


#: Patients by baseline level (rows) and follow-up level (columns). Published before: row 4
#: 13, *, *, *; column 4 8, *, *, *; levels_followup 31, *, *, 17; n_followup 64; row 1 sums
#: to 26 with 10 and 8 shown. So t44 = 6 + t23 >= 7 and t44 <= 17 - 8 - 1 - 1 = 7.
TRANSITIONS = ((10, 1, 7, 8), (2, 0, 1, 1), (6, 0, 0, 1), (13, 2, 5, 7))


def _transition_rows() -> list[Row]:
    rows, n = [], 0
    for a, counts in enumerate(TRANSITIONS, start=1):
        for b, count in enumerate(counts, start=1):
            for _ in range(count):
                rows += [_row(f"P{n:03d}", "2024-01-10", a), _row(f"P{n:03d}", "2024-08-10", b)]
                n += 1
    return rows


def test_a_transition_cell_does_not_follow_from_the_margins_and_the_zeros_shown() -> None:
    config = ReportConfig(publish=True)
    report = build_report(ScoredColumns.from_rows(_transition_rows()), config)
    figures = report.figures
    hidden = hidden_counts(figures, config.suppression)
    assert "transitions.4.4" in hidden
    assert pinned_exactly(figures.identities, figures.values, hidden) == []
    published = summary_json(report)
    assert published["transitions"]["4"]["4"] == "*"


#: What the suppression before this audit hid in that report.
HIDDEN_BEFORE = {
    *(f"transitions.{cell[0]}.{cell[1]}" for cell in ("12", "13", "21", "23", "24", "31", "34")),
    *(f"transitions.4.{b}" for b in "234"),
    *(f"levels_{when}.{lv}" for when in ("baseline", "followup") for lv in "23"),
    *(
        f"score_histogram.{when}.{b}"
        for when in ("baseline", "followup")
        for b in ("50-60", "60-70")
    ),
    *(f"trends.{view}.2024-Q1.levels.{lv}" for view in ("all", "baseline") for lv in "23"),
    *(f"trends.all.2024-Q3.levels.{lv}" for lv in "23"),
    *(f"change_by_baseline_level.{s}.n" for s in "23"),
    *(f"change_by_baseline_level.1.n_{c}" for c in ("improved", "stable")),
    *(f"change_by_baseline_level.{s}.n_{c}" for s in "23" for c in ("declined", "improved")),
    *(f"change_by_baseline_level.4.n_{c}" for c in ("declined", "stable")),
}


def test_the_exact_check_finds_what_was_published_before() -> None:
    """The check above is not vacuous: given what was hidden before, it pins the cell of 7 and
    the three 1s beside it, as the arithmetic above does."""
    config = ReportConfig(publish=True)
    figures = build_report(ScoredColumns.from_rows(_transition_rows()), config).figures
    assert len(HIDDEN_BEFORE) == 34
    assert all(
        1 <= _count(figures, k) <= 7 or k in hidden_counts(figures, config.suppression)
        for k in HIDDEN_BEFORE
    )
    found = pinned_exactly(figures.identities, figures.values, HIDDEN_BEFORE)
    assert {"transitions.4.4", "transitions.2.3", "transitions.2.4", "transitions.3.4"} <= set(
        found
    )


# -- generated cohorts -----------------------------------------------------------------------------


@st.composite
def cohorts(draw: st.DrawFn) -> list[Row]:
    """Patients with a baseline and often a follow-up, at one of three sites, some assessments
    not scored, some flagged as extreme responses."""
    rows: list[Row] = []
    for p in range(draw(st.integers(0, 40))):
        site = draw(st.sampled_from(("a", "b", "c")))
        start = dt.date(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 200)))
        visits = [(start, draw(st.integers(1, 4)))]
        if draw(st.integers(0, 3)):
            later = start + dt.timedelta(days=draw(st.integers(150, 400)))
            visits.append((later, draw(st.integers(1, 4))))
        for i, (day, level) in enumerate(visits):
            row = _row(f"p{p}", day.isoformat(), level, site=site)
            row["assessment_id"] = f"a{p}-{i}"
            if not draw(st.integers(0, 9)):
                row.update(status="not-scored", score="", level="", cutpoint_set="")
            row["flags"] = draw(st.sampled_from(("",) * 12 + ("extreme-response",)))
            rows.append(row)
    return rows


@settings(max_examples=25, deadline=None)
@given(rows=cohorts(), grouped=st.booleans())
def test_no_hidden_count_is_pinned_by_the_zeros_shown(rows: list[Row], grouped: bool) -> None:
    config = ReportConfig(group_by="site" if grouped and rows else None, publish=True)
    figures = build_report(ScoredColumns.from_rows(rows), config).figures
    hidden = hidden_counts(figures, config.suppression)
    for lhs, rhs in figures.identities:
        left, right = [t for t in lhs if t in hidden], [t for t in rhs if t in hidden]
        one_side = (left or right) if not (left and right) else []
        assert len(left) + len(right) != 1, (lhs, rhs)
        total = sum(_count(figures, t) for t in one_side)
        assert total != len(one_side) or not one_side, (lhs, rhs)
    assert pinned_exactly(figures.identities, figures.values, hidden) == []


# -- identifiers in group names --------------------------------------------------------------------


def _site_rows(extra: list[Row]) -> list[Row]:
    rows = [
        _row(f"P{i:03d}", "2024-01-10", 3, site="north" if i % 2 else "south") for i in range(40)
    ]
    return rows + extra


@pytest.mark.parametrize(
    ("patient", "site"),
    [
        ("X001", " X001"),  # the patient's own id, a space before it
        ("X001", "X001\t"),
        (" X001 ", "X001"),  # the id given with spaces, the site without
        ("X001", "x001"),  # another letter case
    ],
)
def test_a_group_named_by_a_patient_id_spaces_or_case_aside_is_refused(
    patient: str, site: str
) -> None:
    rows = _site_rows([_row(patient, "2024-01-10", 3, site=site)])
    with pytest.raises(IdentifyingColumnError, match="patient identifiers"):
        build_report(ScoredColumns.from_rows(rows), ReportConfig(group_by="site", publish=True))


def test_a_group_named_by_an_assessment_id_with_spaces_is_refused() -> None:
    row = _row("X002", "2024-01-10", 3, site=" X002-2024-01-10 ")
    with pytest.raises(IdentifyingColumnError, match="patient identifiers"):
        build_report(
            ScoredColumns.from_rows(_site_rows([row])), ReportConfig(group_by="site", publish=True)
        )


def test_identifiers_are_compared_a_slice_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparable copy of a large identifier column is made a slice at a time (memory);
    a match in a later slice, or in a dictionary's texts, is still found."""
    import pyarrow as pa

    from pamlib.reporting import _privacy

    monkeypatch.setattr(_privacy, "_SLICE", 3)
    keys = pa.array(["P1", "P2", "P3", "P4", "P5", " x007 "])
    assert _privacy._holds_any(keys, ["X007"])
    assert not _privacy._holds_any(keys, ["X008"])
    assert _privacy._holds_any(pa.chunked_array([keys[:2], keys[2:]]), ["x007"])
    assert _privacy._holds_any(keys.dictionary_encode(), ["X007 "])
