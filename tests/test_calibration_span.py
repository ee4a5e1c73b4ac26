"""The logit range of a calibration (hazard H-07): what lies outside is refused, and what lies
inside — up to its edge — scores as the independent solver in ``tests/rasch_reference.py`` does.

Calibrations whose parameters lie tens of logits apart leave some answer patterns with next to no
information at the estimate: the MLE is then found only to micro-logits and the WLE can take
another root of Warm's equation, so another level. Checked against the reference on random and
worst-case PAM-13-shaped calibrations, estimates and levels agreed with parameters within ±10
logits and not from ±12; the range is ±8 (:data:`~pamlib.scoring.calibration.MAX_ABS_LOGIT`).

Tolerance: θ within ``1e-9 + 1e-10 / I(θ)`` logits (I = test information at the reference's θ),
that is, the estimating equation met to 1e-10 score points. Where the information is not tiny that
is the 1e-9 logits of ``tests/test_engine.py``; within ±8 the widest it gets is ~5e-4 logits
(I ≈ 2e-7), and the two solvers were measured within 6e-11/I at every span up to ±15. Levels must
be equal.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pamlib.errors import CalibrationError
from pamlib.levels import CURRENT
from pamlib.plugins import PluginHost
from pamlib.scoring._engine import EAP, MLE, WLE, Estimator, ScoreTable, StepModel
from pamlib.scoring.calibration import (
    MAX_ABS_LOGIT,
    Calibration,
    Scale,
    load_calibration,
)
from pamlib.scoring.rasch import CalibratedScorer, RaschProvider
from tests import rasch_reference as ref
from tests.calibrations import PAM13, pcm_document, rsm_document, to_toml, write
from tests.conftest import ROOT

B = MAX_ABS_LOGIT
N_ITEMS = PAM13.n_items
TOP = PAM13.n_categories - 1  # steps per item


def problems_of(exc: pytest.ExceptionInfo[CalibrationError]) -> dict[str, str]:
    return {p.where: p.code for p in exc.value.problems}


def alternating(k: float) -> dict[str, float]:
    """H-07's item difficulties: alternately +k and −k."""
    return {item: (k if j % 2 == 0 else -k) for j, item in enumerate(PAM13.items)}


# -- outside the range: refused, every field named ------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "toml"])
def test_the_h07_calibration_is_refused_naming_every_field(
    tmp_path: Path, fmt: str, host: PluginHost
) -> None:
    # H-07 as found: thresholds at −50, 0 and 50, items alternately at +50 and −50
    doc = rsm_document(item_difficulties=alternating(50.0), thresholds=[-50.0, 0.0, 50.0])
    path = write(tmp_path, doc, fmt, name="h07")
    with pytest.raises(CalibrationError) as exc:
        load_calibration(path, host=host)
    name = str(path)
    expected = {f'{name}: item_difficulties["{item}"]': "range" for item in PAM13.items}
    expected |= {f"{name}: thresholds[0]": "range", f"{name}: thresholds[2]": "range"}
    assert problems_of(exc) == expected
    assert all(f"±{B:g}" in p.message for p in exc.value.problems)
    assert name in str(exc.value)


def test_a_calibration_built_directly_is_refused_outside_the_range_too() -> None:
    fields: dict[str, Any] = {
        "id": "h07",
        "version": "1",
        "instrument": PAM13.id,
        "items": PAM13.items,
        "scale": Scale(50.0, 10.0, 0.0, 100.0),
        "min_answered": 1,
    }
    with pytest.raises(CalibrationError) as exc:
        Calibration(
            **fields,
            model="rating-scale",
            item_difficulties=list(alternating(50.0).values()),
            thresholds=[-50.0, 0.0, 50.0],
            estimator=EAP(prior_mean=-9.0),
        )
    expected = {f'h07: item_difficulties["{item}"]': "range" for item in PAM13.items}
    expected |= {"h07: thresholds[0]": "range", "h07: thresholds[2]": "range"}
    expected |= {"h07: estimator.prior_mean": "range"}
    assert problems_of(exc) == expected
    steps = [[-1.0, 0.0, 1.0]] * N_ITEMS
    steps[4] = [-1.0, 0.0, B + 1e-9]
    with pytest.raises(CalibrationError) as exc:
        Calibration(**fields, model="partial-credit", steps=steps)
    assert problems_of(exc) == {'h07: steps["pam13.05"][2]': "range"}


def _set(doc: dict[str, Any], field: str, value: float) -> dict[str, Any]:
    if field == "item_difficulties":
        doc["item_difficulties"]["pam13.05"] = value
    elif field == "thresholds":
        doc["thresholds"][2] = value
    elif field == "steps":
        doc["steps"]["pam13.05"][2] = value
    else:
        doc["estimator"] = {"method": "eap", "prior_mean": value, "prior_sd": 1.0}
    return doc


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("item_difficulties", 'item_difficulties["pam13.05"]'),
        ("thresholds", "thresholds[2]"),
        ("steps", 'steps["pam13.05"][2]'),
        ("prior_mean", "estimator.prior_mean"),
    ],
)
def test_the_edge_is_accepted_and_just_outside_refused(
    tmp_path: Path, field: str, where: str, host: PluginHost
) -> None:
    make = pcm_document if field == "steps" else rsm_document
    for sign in (1.0, -1.0):
        for value, ok in ((sign * B, True), (sign * (B + 1e-9), False)):
            doc = _set(make(), field, value)
            path = tmp_path / "cal.toml"
            path.write_text(to_toml(doc), encoding="utf-8")
            if ok:
                load_calibration(path, host=host)
                continue
            with pytest.raises(CalibrationError) as exc:
                load_calibration(path, host=host)
            assert problems_of(exc) == {f"{path}: {where}": "range"}


# -- inside the range, up to its edge: as the reference solver --------------------------------


def oracle_level(theta: float, intercept: float, slope: float) -> int:
    """The level by decimal arithmetic: clip to 0–100, round half up to one decimal, band."""
    score = min(max(intercept + slope * theta, 0.0), 100.0)
    rounded = Decimal(repr(score)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return 1 + sum(rounded > Decimal(repr(bound)) for bound in CURRENT.upper_bounds)


def tolerance(steps: list[list[float]], theta: float) -> float:
    """1e-9 logits, widened where the information at θ is small (see the module docstring)."""
    return 1e-9 + 1e-10 / ref.score_moments(steps, theta)[1]


def reference(est: Estimator, steps: list[list[float]], raw: int) -> float:
    if isinstance(est, WLE):
        return ref.wle(steps, raw)[0]
    if isinstance(est, MLE):
        return ref.mle(steps, raw, est.extreme_adjustment)[0]
    assert isinstance(est, EAP)
    return ref.eap(steps, raw, est.prior_mean, est.prior_sd)[0]


def codes_for(mask: int, raw: int) -> list[int]:
    """One answer pattern answering the items of ``mask`` with total ``raw``."""
    codes = [0] * N_ITEMS
    left = raw
    for j in range(N_ITEMS):
        if mask >> j & 1:
            codes[j] = 1 + min(TOP, left)
            left -= codes[j] - 1
    return codes


EDGE_SCALE = {"intercept": 50, "slope": 2.5, "min": 0, "max": 100, "decimals": 1}


@pytest.mark.parametrize("estimator", [{"method": "wle"}, {"method": "mle"}])
def test_the_h07_calibration_at_the_edge_scores_every_pattern_as_the_reference(
    estimator: dict[str, Any], tmp_path: Path, host: PluginHost
) -> None:
    """H-07's structure moved to the edge: items alternately at ±8, thresholds at −8, 0 and 8.

    Items of equal difficulty are exchangeable and, by sufficiency, a pattern's measure depends
    only on which items were answered and the raw score; so the reference solves every class
    (answered items at +8, at −8, raw score) — every PAM-13 answer pattern — and pamlib scores a
    mask of each class and 200 more, every raw score, through the ``rasch`` provider."""
    doc = rsm_document(
        item_difficulties=alternating(B),
        thresholds=[-B, 0.0, B],
        estimator=estimator,
        scale=EDGE_SCALE,
        min_answered=1,
        extreme_response="ignore",
    )
    cal = load_calibration(write(tmp_path, doc), host=host)  # at the edge: accepted
    plus = [j for j in range(N_ITEMS) if j % 2 == 0]
    minus = [j for j in range(N_ITEMS) if j % 2]
    masks = {
        sum(1 << j for j in plus[:a] + minus[:c])
        for a in range(len(plus) + 1)
        for c in range(len(minus) + 1)
    } - {0}
    masks |= set(np.random.default_rng(7).integers(1, 1 << N_ITEMS, 200).tolist())
    rows = [(mask, raw) for mask in sorted(masks) for raw in range(TOP * mask.bit_count() + 1)]
    scorer = CalibratedScorer(cal.compile(), CURRENT, 0)
    codes = np.array([codes_for(mask, raw) for mask, raw in rows], dtype=np.int8)
    batch = scorer.score(PAM13, codes, RaschProvider())
    assert batch.scored.all()
    solved: dict[tuple[int, int, int], tuple[float, float]] = {}
    for k, (mask, raw) in enumerate(rows):
        a = sum(mask >> j & 1 for j in plus)
        c = mask.bit_count() - a
        if (a, c, raw) not in solved:
            steps = [[B + t for t in (-B, 0.0, B)]] * a + [[-B + t for t in (-B, 0.0, B)]] * c
            theta = reference(cal.estimator, steps, raw)
            solved[a, c, raw] = (theta, tolerance(steps, theta))
        theta, tol = solved[a, c, raw]
        assert abs(batch.theta[k] - theta) <= tol, (hex(mask), raw, batch.theta[k], theta)
        assert batch.level[k] == oracle_level(theta, 50.0, 2.5), (hex(mask), raw)
    assert len(solved) == sum((TOP * (a + c) + 1) for a in range(8) for c in range(7)) - 1


def g_sign_changes(steps: list[list[float]], raw: int) -> int:
    """How often Warm's r − E + J/(2I) changes sign on a 0.01-logit grid (NumPy, as in the
    model's definition; not the engine's code)."""
    lo = min(min(s) for s in steps) - 12.0
    hi = max(max(s) for s in steps) + 12.0
    theta = np.arange(lo, hi, 0.01)
    mean = np.zeros_like(theta)
    var = np.zeros_like(theta)
    third = np.zeros_like(theta)
    for s in steps:
        logits = np.vstack([np.zeros_like(theta), *(k * theta - sum(s[:k]) for k in (1, 2, 3))])
        p = np.exp(logits - logits.max(axis=0))
        p /= p.sum(axis=0)
        k = np.arange(4.0)[:, None]
        m = (k * p).sum(axis=0)
        mean += m
        var += ((k - m) ** 2 * p).sum(axis=0)
        third += ((k - m) ** 3 * p).sum(axis=0)
    g = raw - mean + third / (2.0 * var)
    return int(np.count_nonzero(np.diff(np.sign(g)) != 0))


def posterior_mode(steps: list[list[float]], raw: int, prior_mean: float) -> float:
    """The mode of the posterior under a N(prior_mean, 1) prior, by the reference's bisection."""
    return ref._bisect(
        lambda t: raw - ref.score_moments(steps, t)[0] - (t - prior_mean), -60.0, 60.0
    )


edge_logits = st.one_of(
    st.sampled_from([-B, -B / 2, 0.0, B / 2, B]),
    st.floats(-B, B, allow_nan=False).map(lambda x: round(x, 3)),
)


@st.composite
def edge_models(draw: st.DrawFn) -> list[list[float]]:
    """PAM-13-shaped step rows of a rating-scale or partial-credit calibration within ±8."""
    if draw(st.booleans()):
        tau = draw(st.lists(edge_logits, min_size=TOP, max_size=TOP))
        return [[b + t for t in tau] for b in draw(st.lists(edge_logits, min_size=13, max_size=13))]
    return draw(
        st.lists(st.lists(edge_logits, min_size=TOP, max_size=TOP), min_size=13, max_size=13)
    )


@settings(deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=edge_models(),
    masks=st.lists(
        st.one_of(
            st.integers(1, (1 << N_ITEMS) - 1),
            st.sampled_from([(1 << N_ITEMS) - 1, 1, 3, 0b1000000000001]),
        ),
        min_size=2,
        max_size=3,
    ),
    data=st.data(),
)
def test_calibrations_up_to_the_edge_score_as_the_reference(
    rows: list[list[float]], masks: list[int], data: st.DataObject
) -> None:
    """Random calibrations within ±8, edges favoured, PAM-13 sized: MLE, WLE and EAP against the
    reference, θ and levels. The WLE is compared where Warm's equation has one root: which of
    several roots closer together than the engine's grid is taken is still open (H-07)."""
    model = StepModel.partial_credit(rows)
    prior_mean = data.draw(edge_logits, label="prior_mean")
    estimators: list[Estimator] = [MLE(0.3), WLE(), EAP(prior_mean, 1.0)]
    for mask in masks:
        raw = data.draw(st.integers(0, TOP * mask.bit_count()), label="raw")
        steps = [rows[j] for j in range(N_ITEMS) if mask >> j & 1]
        codes = np.array([codes_for(mask, raw)])
        for est in estimators:
            if isinstance(est, WLE) and g_sign_changes(steps, raw) > 1:
                event("several WLE roots: not compared")
                continue
            if isinstance(est, EAP):
                mode = posterior_mode(steps, raw, prior_mean)
                if abs(mode - prior_mean) > 3.0:  # the reference integrates prior mean ± 12 SD
                    event("posterior mode beyond the reference's window: not compared")
                    continue
            theta = float(ScoreTable(model, est).score(codes).theta[0])
            expected = reference(est, steps, raw)
            tol = 1e-8 if isinstance(est, EAP) else tolerance(steps, expected)
            assert abs(theta - expected) <= tol, (est, raw, theta, expected)
            for slope in (10.0, 2.5):
                assert oracle_level(theta, 50.0, slope) == oracle_level(expected, 50.0, slope)


# -- the WLE among roots closer together than the engine's grid ----------------------------------


@pytest.mark.parametrize(
    ("steps", "raw"),
    [
        # rating scale: items at −2.5 and +2.5, thresholds −5, 0, 5; the MLE (0) is a root
        ([[-7.5, -2.5, 2.5], [-2.5, 2.5, 7.5]], 3),
        # partial credit, one item's steps disordered: roots at −0.75, −0.55 and −0.27
        ([[-2.5, 0.0, 2.5], [2.5, 5.0, -5.0]], 1),
        # steps within 2.4 logits of each other: roots at −6.89, −6.80 and −6.71
        ([[-4.0, -6.4, -7.6], [6.0, 6.0, 4.8], [-6.0, -7.2, -9.6]], 3),
        # disordered steps far apart: the grid saw one root where the rule names another
        ([[5.0, 2.5, -5.0], [-5.0, -2.5, 0.0]], 2),
    ],
)
def test_wle_roots_closer_than_the_grid_follow_the_rule(steps: list[list[float]], raw: int) -> None:
    """Where Warm's equation turns between grid nodes, the engine walks to the root the rule
    names in parts of a cell, as the independent solver does."""
    codes = [0] * len(steps)
    left = raw
    for i in range(len(steps)):
        codes[i] = min(TOP, left)
        left -= codes[i]
    row = np.array([[1 + c for c in codes]])
    theta = float(ScoreTable(StepModel.partial_credit(steps), WLE()).score(row).theta[0])
    assert math.isclose(theta, ref.wle(steps, raw)[0], rel_tol=0.0, abs_tol=1e-9)


def test_the_docs_state_the_logit_range() -> None:
    text = (ROOT / "docs" / "calibration.rst").read_text(encoding="utf-8")
    assert f"Logits lie within ±{B:g}" in text
    assert text.count(f"−{B:g} … {B:g} logits") == 2  # parameters and the EAP prior mean
