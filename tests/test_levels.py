"""Cut points and rounding: every boundary of both sets, checked against a decimal oracle."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.errors import ValidationError
from pamlib.levels import (
    CURRENT,
    HIBBARD_2005,
    ActivationLevel,
    CutpointSet,
    round_half_away,
    round_half_away_array,
)


def oracle_round(value: float) -> float:
    """Round half away from zero in decimal arithmetic, on the value as written."""
    return float(Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def oracle_level(value: float, bounds: tuple[float, float, float]) -> int:
    reported = Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    for level, upper in enumerate(bounds, start=1):
        if reported <= Decimal(repr(upper)):
            return level
    return 4


BOUNDARIES = [
    # score, level under "current", level under "hibbard-2005"
    (0.0, 1, 1),
    (47.0, 1, 1),
    (47.04, 1, 1),
    (47.049999, 1, 1),
    (47.05, 2, 2),
    (47.1, 2, 2),
    (55.1, 2, 2),
    (55.14, 2, 2),
    (55.15, 3, 3),
    (55.2, 3, 3),
    (67.0, 3, 3),
    (67.04, 3, 3),
    (67.05, 4, 3),
    (67.1, 4, 3),
    (72.4, 4, 3),
    (72.44, 4, 3),
    (72.45, 4, 4),
    (72.5, 4, 4),
    (100.0, 4, 4),
]


@pytest.mark.parametrize(("score", "current", "hibbard"), BOUNDARIES)
def test_boundaries_of_both_sets(score: float, current: int, hibbard: int) -> None:
    assert CURRENT.level(score) == current
    assert HIBBARD_2005.level(score) == hibbard
    assert CURRENT.levels([score]).tolist() == [current]
    assert HIBBARD_2005.levels([score]).tolist() == [hibbard]


scores = st.decimals(0, 100, places=3).map(float)


@given(scores)
def test_rounding_matches_decimal_oracle(score: float) -> None:
    assert round_half_away(score) == oracle_round(score)


@given(st.lists(scores, max_size=50))
def test_vector_and_scalar_agree_with_the_oracle(values: list[float]) -> None:
    for cutpoints in (CURRENT, HIBBARD_2005):
        got = cutpoints.levels(values).tolist()
        assert got == [oracle_level(v, cutpoints.upper_bounds) for v in values]
        assert got == [int(cutpoints.level(v)) for v in values]


@given(scores, scores)
def test_level_is_monotone_in_score(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert CURRENT.level(lo) <= CURRENT.level(hi)


def test_negative_half_rounds_away_from_zero() -> None:
    assert round_half_away_array([-0.25, -0.35, 0.25]).tolist() == [-0.3, -0.4, 0.3]


def test_nan_has_no_level() -> None:
    assert CURRENT.levels([np.nan, 50.0]).tolist() == [0, 2]


def test_level_ranges_are_contiguous() -> None:
    assert [CURRENT.range_of(level) for level in ActivationLevel] == [
        (None, 47.0),
        (47.1, 55.1),
        (55.2, 67.0),
        (67.1, None),
    ]


def test_cutpoints_must_increase() -> None:
    with pytest.raises(ValidationError):
        CutpointSet("bad", (50.0, 40.0, 60.0))


def test_levels_have_descriptions_and_codes() -> None:
    assert all(level.description for level in ActivationLevel)
    assert ActivationLevel.LEVEL_3.code == "level-3"


@st.composite
def values_and_decimals(draw: st.DrawFn) -> tuple[float, int]:
    """Scores anywhere on a calibration's scale (±10000), often exactly half a unit of the last
    decimal as written (``5027.07645`` at four decimals)."""
    decimals = draw(st.integers(0, 4))
    if draw(st.booleans()):
        k = draw(st.integers(-(10 ** (4 + decimals)), 10 ** (4 + decimals)))
        return float(f"{k}5e-{decimals + 1}"), decimals
    return float(draw(st.decimals(-10_000, 10_000, places=6))), decimals


@given(values_and_decimals())
def test_rounding_a_reported_score_again_changes_nothing(case: tuple[float, int]) -> None:
    value, decimals = case
    # What lets the level be the band of the score as reported: the cut-point set re-rounds a
    # score already rounded to its own decimals, and must get that score back bit for bit.
    reported = round_half_away(value, decimals)
    assert round_half_away(reported, decimals) == reported
    assert round_half_away_array([reported], decimals).tolist() == [reported]
    quantum = Decimal(1).scaleb(-decimals)
    expected = Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP)
    assert reported == float(expected)


@pytest.mark.parametrize(
    ("decimals", "bounds", "score", "level"),
    [
        (0, (47.0, 55.0, 67.0), 47.4, 1),  # reported 47: level 1 at this set's precision
        (0, (47.0, 55.0, 67.0), 47.5, 2),  # reported 48
        (1, (47.0, 55.1, 67.0), 47.04, 1),  # reported 47.0
        (1, (47.0, 55.1, 67.0), 47.05, 2),  # reported 47.1
        (2, (47.0, 55.1, 67.0), 47.004, 1),  # reported 47.00
        (2, (47.0, 55.1, 67.0), 47.005, 2),  # reported 47.01
        (2, (47.0, 55.1, 67.0), 47.04, 2),  # reported 47.04: above 47.0
        (4, (47.0, 55.1, 5027.0764), 5027.07644, 3),  # reported 5027.0764
        (4, (47.0, 55.1, 5027.0764), 5027.07645, 4),  # reported 5027.0765, as written
    ],
)
def test_a_set_bands_at_its_own_precision(
    decimals: int, bounds: tuple[float, float, float], score: float, level: int
) -> None:
    cut = CutpointSet("test", bounds, decimals=decimals)
    assert cut.level(score) == level
    assert cut.levels([score]).tolist() == [level]
    assert cut.level(round_half_away(score, decimals)) == level
