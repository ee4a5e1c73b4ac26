"""Rasch person measures (WLE, MLE, EAP) compiled into an in-memory (mask, raw score) table.

Under the Rasch model the person measure depends only on *which* items were answered and on the
raw score (sufficiency). So every measure is solved once per (answered mask, raw score), lazily for
the masks that occur, and scoring is a table gather: one vector and a million get bit-identical
results because they read the same table entries.

Conventions
    Responses are integer codes: ``1 .. m_i + 1`` are the categories ``0 .. m_i`` of item *i*
    (``m_i`` = its number of steps); :data:`UNANSWERED` (0) and :data:`NOT_APPLICABLE` (-1) are
    left out of every sum. Item *j* of a model is bit *j* (least significant first) of a mask.

Numerics
    Every estimate is found by safeguarded Newton iteration inside a sign-change bracket
    (bisection whenever a Newton step would leave it). An estimate has converged when the last
    step or the bracket is at most ``1e-12 * max(1, |theta|)`` logits, or the estimating function
    is exactly zero. All arithmetic is element-wise, so a (mask, raw) entry has the same bits
    whichever batch of masks it was compiled with.

Licensing
    Built from a licensee calibration, a :class:`ScoreTable` (and the :class:`StepModel`) *is* the
    proprietary conversion table: neither can be pickled or copied out, and their reprs show only
    shapes and counts. Nothing here does I/O or logs.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, NoReturn, SupportsFloat, TypeAlias

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from pamlib._arrays import sorted_unique
from pamlib.errors import (
    CalibrationError,
    ConfigurationError,
    LicensedContentError,
    Problem,
    ScoringError,
    ValidationError,
)
from pamlib.scoring._codes import CodeCheck

FloatArray: TypeAlias = NDArray[np.float64]
IntArray: TypeAlias = NDArray[np.int64]
MaskArray: TypeAlias = NDArray[np.uint64]

UNANSWERED: Final = 0
"""Response code for an item the person did not answer."""
NOT_APPLICABLE: Final = -1
"""Response code for "not applicable"; scored exactly like :data:`UNANSWERED`."""

MAX_ITEMS: Final = 64
"""Masks are 64-bit integers."""
DENSE_MAX_ITEMS: Final = 16
"""Up to this many items the mask -> row index is a dense array of ``2**n_items`` entries."""
MAX_ABS_STEP: Final = 100.0
"""Step difficulties beyond this many logits are a unit mistake (e.g. the 0–100 reporting scale)."""

_XTOL: Final = 1e-12  # relative-to-max(1, |theta|) step/bracket tolerance, logits
#: Warm's equation g = r − E + J/(2I) falls as fast as the information I wherever its correction
#: J/(2I) is flat. Where, at a grid node of a problem's range, the correction rises faster than
#: this share of I, g may turn and hold roots closer together than the grid: such a problem
#: walks to its root in parts of a cell.
_WLE_TURN: Final = 0.5
#: The parts of a grid cell such a walk looks at: roots closer than 0.25/32 logits count as one.
_WLE_PARTS: Final = 32
_GTOL: Final = 1e-12  # |WLE correction| at the MLE below which the MLE is the WLE, score points
_MAX_ITER: Final = 200  # Newton/bisection: bisection alone needs ~50 from a 10-logit bracket
_BOUND_MARGIN: Final = 10.0  # initial bracket: this many logits beyond the extreme steps
_GRID_STEP: Final = 0.25  # logits: the shared grid that gives every solve a one-cell bracket
_WLE_SCAN_STEP: Final = 0.5  # logits: the WLE fallback scan when the grid has no crossing
_MAX_SCAN: Final = 4000
MLE_ADJUSTMENT_RANGE: Final = (0.01, 0.5)
"""``MLE.extreme_adjustment`` lies in [low, high): score points. Smaller adjustments put extreme
measures tens of logits out (1e-300 is 690 logits), where nothing is measured any more."""
PRIOR_SD_RANGE: Final = (0.1, 10.0)
"""``EAP.prior_sd`` lies in [low, high] logits: narrower priors swamp the answers, wider ones are
flat over any plausible measure and only cost nodes (the integral spans ±9 prior SDs)."""
QUADRATURE_POINTS_RANGE: Final = (11, 2001)
"""``EAP.quadrature_points`` lies in [low, high]: a floor on the node count (see :class:`EAP`);
the maximum keeps compiling a table row within milliseconds."""

_EAP_HALF_WIDTH: Final = 9.0  # prior SDs either side of the posterior mode
_EAP_SPACING_PER_STEP: Final = 0.25  # logits x steps: automatic trapezoid spacing, see EAP
_CHUNK_ELEMENTS: Final = 1 << 18  # elements per temporary (items x categories x problems)
_MAX_REPORTED: Final = 20  # problems listed in one ValidationError


def _refuse_serialisation(obj: object) -> NoReturn:
    raise LicensedContentError(
        f"{type(obj).__name__} holds licensed calibration content and cannot be serialised; "
        "rebuild it from the calibration where it is needed"
    )


# --------------------------------------------------------------------------------------------
# Step model
# --------------------------------------------------------------------------------------------


def _as_step_matrix(value: Any) -> FloatArray:
    """Step difficulties as a read-only (n_items, max_steps) float array, NaN-padded at the end."""
    try:
        if isinstance(value, np.ndarray):
            arr = np.array(value, dtype=np.float64)
        else:
            rows = [np.asarray(row, dtype=np.float64) for row in value]
    except (TypeError, ValueError) as exc:
        raise CalibrationError(
            "step difficulties must be numbers",
            [Problem("steps", "steps.type", f"cannot read steps as numbers: {exc}")],
        ) from None
    if not isinstance(value, np.ndarray):
        if any(row.ndim != 1 for row in rows):
            raise CalibrationError(
                "step difficulties must be one sequence of steps per item",
                [Problem("steps", "steps.shape", "each item needs a flat sequence of steps")],
            )
        width = max((row.shape[0] for row in rows), default=0)
        arr = np.full((len(rows), width), np.nan)
        for i, row in enumerate(rows):
            arr[i, : row.shape[0]] = row
    problems: list[Problem] = []
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise CalibrationError(
            "step difficulties must be a non-empty (n_items, n_steps) matrix",
            [Problem("steps", "steps.shape", f"got shape {arr.shape}")],
        )
    if arr.shape[0] > MAX_ITEMS:
        problems.append(
            Problem("steps", "steps.too_many_items", f"at most {MAX_ITEMS} items are supported")
        )
    finite = np.isfinite(arr)
    is_nan = np.isnan(arr)
    # NaN may only pad the end of a row, and every item needs a first step.
    suffix = np.all(np.logical_or.accumulate(is_nan, axis=1) == is_nan, axis=1)
    for i in np.flatnonzero(~suffix | is_nan[:, 0])[:_MAX_REPORTED]:
        problems.append(
            Problem(
                f"steps[{i}]",
                "steps.missing",
                "each item needs at least one step; missing steps (NaN) may only pad the end",
            )
        )
    for i, j in np.argwhere(np.isinf(arr))[:_MAX_REPORTED]:
        problems.append(Problem(f"steps[{i}, {j}]", "steps.infinite", "steps must be finite"))
    for i, j in np.argwhere(finite & (np.abs(np.where(finite, arr, 0.0)) > MAX_ABS_STEP))[
        :_MAX_REPORTED
    ]:
        problems.append(
            Problem(
                f"steps[{i}, {j}]",
                "steps.out_of_range",
                f"steps are logits and must lie within ±{MAX_ABS_STEP:g}",
            )
        )
    if problems:
        raise CalibrationError("invalid step difficulties", problems)
    arr.setflags(write=False)
    return arr


def _read_only(arr: NDArray[Any]) -> NDArray[Any]:
    arr.setflags(write=False)
    return arr


@attrs.frozen(eq=False, repr=False, getstate_setstate=False)
class StepModel:
    """Absolute step difficulties δ_ij of a Rasch rating-scale or partial-credit calibration.

    ``steps`` has shape (n_items, max_steps); item *i* has categories ``0 .. m_i`` and
    ``P(X_i = k) ∝ exp(Σ_{j≤k} (θ − δ_ij))``. Items with fewer steps are NaN-padded at the end
    of their row (impossible categories get probability 0). Equality is identity: build one
    model per calibration and share it.
    """

    steps: FloatArray = attrs.field(converter=_as_step_matrix)
    max_scores: IntArray = attrs.field(init=False)
    """Highest score (number of steps) of each item."""
    _cum: FloatArray = attrs.field(init=False)  # (n_categories, n_items), +inf = impossible
    _step_min: FloatArray = attrs.field(init=False)
    _step_max: FloatArray = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        steps = self.steps
        present = ~np.isnan(steps)
        cum = np.zeros((steps.shape[1] + 1, steps.shape[0]))
        cum[1:] = np.cumsum(np.where(present, steps, np.inf), axis=1).T
        object.__setattr__(self, "max_scores", _read_only(present.sum(axis=1).astype(np.int64)))
        object.__setattr__(self, "_cum", _read_only(cum))
        object.__setattr__(self, "_step_min", _read_only(np.nanmin(steps, axis=1)))
        object.__setattr__(self, "_step_max", _read_only(np.nanmax(steps, axis=1)))

    @classmethod
    def rating_scale(cls, difficulties: ArrayLike, thresholds: ArrayLike) -> StepModel:
        """Andrich rating-scale model: ``δ_ij = b_i + τ_j`` (every item has the same steps)."""
        try:
            b = np.asarray(difficulties, dtype=np.float64)
            tau = np.asarray(thresholds, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CalibrationError(
                "rating-scale difficulties and thresholds must be numbers",
                [Problem("difficulties/thresholds", "steps.type", str(exc))],
            ) from None
        if b.ndim != 1 or tau.ndim != 1 or b.size == 0 or tau.size == 0:
            raise CalibrationError(
                "a rating-scale model needs 1-D difficulties and 1-D thresholds",
                [Problem("difficulties/thresholds", "steps.shape", f"got {b.shape}, {tau.shape}")],
            )
        if not (np.all(np.isfinite(b)) and np.all(np.isfinite(tau))):
            raise CalibrationError(
                "invalid rating-scale calibration",
                [Problem("difficulties/thresholds", "steps.missing", "values must be finite")],
            )
        return cls(b[:, None] + tau[None, :])

    @classmethod
    def partial_credit(cls, steps: ArrayLike | Sequence[Sequence[float]]) -> StepModel:
        """Masters' partial-credit model: one row of absolute step difficulties per item.

        Rows may differ in length (a sequence of sequences, or NaN padding at the row's end).
        """
        return cls(steps)

    @property
    def n_items(self) -> int:
        return int(self.steps.shape[0])

    @property
    def n_steps(self) -> int:
        """Largest number of steps of any item (categories per item: ``n_steps + 1``)."""
        return int(self.steps.shape[1])

    @property
    def max_raw(self) -> int:
        """Highest raw score with every item answered."""
        return int(self.max_scores.sum())

    @property
    def is_ragged(self) -> bool:
        return bool(np.any(self.max_scores != self.n_steps))

    def __repr__(self) -> str:
        ragged = ", ragged" if self.is_ragged else ""
        return f"StepModel(n_items={self.n_items}, n_steps={self.n_steps}{ragged})"

    def __reduce__(self) -> NoReturn:
        _refuse_serialisation(self)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        _refuse_serialisation(self)

    def __getstate__(self) -> NoReturn:
        _refuse_serialisation(self)

    def __copy__(self) -> StepModel:
        return self  # immutable: sharing is copying

    def __deepcopy__(self, memo: dict[int, Any]) -> StepModel:
        return self


# --------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------


def _float(value: SupportsFloat | str) -> float:
    # not float itself as the converter: attrs reads a builtin's signature by tokenising its
    # text (the first time, compiling tokenize's patterns too), about 13 million instructions
    # on every start
    return float(value)


def _check_adjustment(_inst: object, _attr: attrs.Attribute[float], value: float) -> None:
    low, high = MLE_ADJUSTMENT_RANGE
    if not (low <= value < high):
        raise ConfigurationError(
            f"MLE extreme_adjustment must lie within [{low:g}, {high:g}) score points "
            "(it replaces raw 0 and max by 0+adj and max-adj)"
        )


def _check_prior(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not math.isfinite(value):
        raise ConfigurationError(f"EAP {attr.name} must be finite")
    low, high = PRIOR_SD_RANGE
    if attr.name == "prior_sd" and not (low <= value <= high):
        raise ConfigurationError(f"EAP prior_sd must lie within [{low:g}, {high:g}] logits")


def _check_points(_inst: object, _attr: attrs.Attribute[int | None], value: int | None) -> None:
    if value is None:
        return
    low, high = QUADRATURE_POINTS_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
        raise ConfigurationError(f"EAP quadrature_points must be None (automatic) or {low}..{high}")


@attrs.frozen
class WLE:
    """Warm's (1989) weighted likelihood estimate: finite at extreme scores, little bias.

    Solves ``r − E(θ) + J(θ)/(2 I(θ)) = 0`` (I = test information, J = dI/dθ). Where that
    equation has several roots — only for items whose adjacent steps lie ≳5 logits apart, with
    very few items answered — the root taken is the first one met walking from the MLE in the
    direction the correction points (from −∞ upward for raw 0, from +∞ downward for the maximum).
    Roots are told apart on a 0.25-logit grid; where the equation may turn between its nodes
    (its correction rising faster than half the information), in 32 parts of each cell walked:
    roots closer than 0.25/32 logits count as one.
    """


@attrs.frozen
class MLE:
    """Maximum likelihood; extreme raw scores 0 and max are scored as ``0 + adj`` and ``max − adj``
    score points (Winsteps' EXTRSC, default 0.3), since their MLE is infinite."""

    extreme_adjustment: float = attrs.field(
        default=0.3, converter=_float, validator=_check_adjustment
    )


@attrs.frozen
class EAP:
    """Posterior mean under a normal prior; the SE is the posterior SD.

    The integral is the trapezoidal rule over the posterior mode ± 9 prior SDs: the
    log-posterior has curvature ≤ −1/prior_sd², so the rest holds < e⁻⁴⁰ of the mass. The
    integrand is analytic within π/m of the real axis (m = most steps of an item: a polynomial
    with positive coefficients has no zeros with ``|arg z| < π/m``), so the rule converges
    geometrically. The spacing is ``min(0.25/m, prior_sd/5)`` logits, accurate to ~1e-12 logits
    even for sharply skewed posteriors. ``quadrature_points`` (default ``None``) is a floor: when
    that many nodes evenly across the ±9 SD window are closer together, they are used instead.
    It can only make the integral finer — a fixed small count was off by up to 1.2 logits
    (11 nodes 1.8 prior SDs apart cannot resolve a posterior 0.3 logits wide).
    """

    prior_mean: float = attrs.field(default=0.0, converter=_float, validator=_check_prior)
    prior_sd: float = attrs.field(default=1.0, converter=_float, validator=_check_prior)
    quadrature_points: int | None = attrs.field(default=None, validator=_check_points)


Estimator: TypeAlias = WLE | MLE | EAP


# --------------------------------------------------------------------------------------------
# Numerical core: moments of the raw score over answered items, vectorised over problems.
# Arrays of shape (n_items, n_problems); item sums are explicit loops so every problem's value
# is computed in the same order whatever else is in the batch.
# --------------------------------------------------------------------------------------------


def _item_sum(weights: FloatArray, values: FloatArray) -> FloatArray:
    # The products in one call, then added item by item in order: the same bits as multiplying
    # each item's row apart, at half the NumPy calls (the scoring table's later fills solve a
    # few hundred problems each, where the calls, not the arithmetic, are the cost).
    products = weights * values
    acc: FloatArray = products[0]
    for i in range(1, products.shape[0]):
        acc += products[i]
    return acc


def _category_logits(
    theta: FloatArray, cum: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """exp(logit − max) per category (K, I, P), their sum over K (I, P), and the max (I, P).

    Written in place into one array: at these sizes allocation, not arithmetic, is the cost.
    """
    n_cat = cum.shape[0]
    z = np.empty((n_cat, cum.shape[1], theta.shape[0]))
    z[0] = 0.0
    for k in range(1, n_cat):
        np.subtract(k * theta[None, :], cum[k][:, None], out=z[k])
    top = z[0].copy()
    for k in range(1, n_cat):
        np.maximum(top, z[k], out=top)
    z -= top[None, :, :]
    np.exp(z, out=z)
    norm = z[0].copy()
    for k in range(1, n_cat):
        norm += z[k]
    return z, norm, top


def _category_probs(theta: FloatArray, cum: FloatArray) -> FloatArray:
    """Per-category probabilities, (K, I, P)."""
    z, norm, _ = _category_logits(theta, cum)
    np.divide(1.0, norm, out=norm)
    z *= norm[None, :, :]
    return z


def _log_z(theta: FloatArray, cum: FloatArray) -> FloatArray:
    """log Z_i(θ), (I, P): minus the θ-dependent part of each item's log-likelihood."""
    _, norm, top = _category_logits(theta, cum)
    return top + np.log(norm)


def _item_moments(theta: FloatArray, cum: FloatArray, order: int) -> list[FloatArray]:
    """Per item (I, P): mean, variance, 3rd central moment, 4th cumulant (up to ``order``)."""
    probs = _category_probs(theta, cum)
    n_cat = probs.shape[0]
    mean = probs[1].copy()
    for k in range(2, n_cat):
        mean += k * probs[k]
    if order < 2:
        return [mean]
    var = np.zeros_like(mean)
    m3 = np.zeros_like(mean)
    m4 = np.zeros_like(mean)
    dev = np.empty_like(mean)
    sq = np.empty_like(mean)
    term = np.empty_like(mean)
    tmp = np.empty_like(mean)
    for k in range(n_cat):
        np.subtract(k, mean, out=dev)
        np.multiply(dev, dev, out=sq)
        np.multiply(probs[k], sq, out=term)
        var += term
        if order >= 3:
            m3 += np.multiply(term, dev, out=tmp)
        if order >= 4:
            m4 += np.multiply(term, sq, out=tmp)
    out = [mean, var]
    if order >= 3:
        out.append(m3)
    if order >= 4:
        out.append(m4 - 3.0 * var * var)
    return out


def _moments(
    theta: FloatArray, weights: FloatArray, cum: FloatArray, order: int
) -> list[FloatArray]:
    """Weighted item sums of mean, variance, 3rd central moment and 4th cumulant (up to order)."""
    return [_item_sum(weights, v) for v in _item_moments(theta, cum, order)]


Objective = Callable[[FloatArray, IntArray], tuple[FloatArray, FloatArray]]


def _not_converged(what: str) -> NoReturn:
    raise ScoringError(f"{what} did not converge; this is a pamlib bug, please report it")


def _newton_bisect(fun: Objective, lo: FloatArray, hi: FloatArray, x0: FloatArray) -> FloatArray:
    """Root of each fun(·, i) inside [lo_i, hi_i], given f(lo) ≥ 0 ≥ f(hi).

    Newton steps are taken when f' < 0 and the step stays strictly inside the (shrinking)
    bracket; otherwise bisection. Converges unconditionally to a sign change. A Newton step
    too small to move x (below its last bit) ends the iteration there: x is then the end of
    the bracket it just became, and treating the step as outside bisected away from the root
    and back, twenty or more evaluations for nothing (and a root less exact).
    """
    lo = lo.copy()
    hi = hi.copy()
    x = np.clip(x0, lo, hi)
    active = np.arange(x.shape[0], dtype=np.int64)
    for _ in range(_MAX_ITER):
        if active.size == 0:
            return x
        xa = x[active]
        f, df = fun(xa, active)
        pos = f > 0.0
        lo_a = np.where(pos, xa, lo[active])
        hi_a = np.where(pos, hi[active], xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = xa - f / df
        inside = (df < 0.0) & (((newton > lo_a) & (newton < hi_a)) | (newton == xa))
        xn = np.where(inside, newton, 0.5 * (lo_a + hi_a))
        tol = _XTOL * np.maximum(1.0, np.abs(xa))
        root = f == 0.0
        done = root | (np.abs(xn - xa) <= tol) | (hi_a - lo_a <= tol)
        x[active] = np.where(root, xa, xn)
        lo[active] = lo_a
        hi[active] = hi_a
        active = active[~done]
    if active.size:
        _not_converged("the person-measure iteration")
    return x


def _bracket(
    value: Callable[[FloatArray, IntArray], FloatArray], lo: FloatArray, hi: FloatArray
) -> None:
    """Widen [lo, hi] in place until value(lo) > 0 > value(hi) (value decreasing at ±∞)."""
    for side, sign in ((lo, 1.0), (hi, -1.0)):
        todo = np.arange(side.shape[0], dtype=np.int64)
        width = 2.0 * _BOUND_MARGIN
        for _ in range(60):
            todo = todo[sign * value(side[todo], todo) <= 0.0]
            if todo.size == 0:
                break
            side[todo] -= sign * width
            width *= 2.0
        else:
            _not_converged("bracketing the person measure")


@attrs.frozen(eq=False)
class _Problems:
    """A batch of (mask, raw score) problems: item weights (I, P), raws, and a start bracket."""

    cum: FloatArray
    weights: FloatArray  # (I, P), 1.0 where the item is answered
    group_weights: FloatArray  # (I, M): the distinct masks of the batch
    groups: IntArray  # (P,): which mask each problem has
    raw: FloatArray
    max_raw: FloatArray
    lo: FloatArray
    hi: FloatArray
    centre: FloatArray  # mean step midpoint of the answered items: a Newton start

    @classmethod
    def build(
        cls, model: StepModel, group_weights: FloatArray, groups: IntArray, raw: FloatArray
    ) -> _Problems:
        bits = np.ascontiguousarray(group_weights[:, groups])
        present = bits > 0.0
        per_item = np.ones_like(bits)
        mid = (model._step_min + model._step_max) / 2.0
        return cls(
            cum=model._cum,
            weights=bits,
            group_weights=group_weights,
            groups=groups,
            raw=raw,
            max_raw=_item_sum(bits, per_item * model.max_scores[:, None]),
            lo=np.where(present, model._step_min[:, None], np.inf).min(axis=0) - _BOUND_MARGIN,
            hi=np.where(present, model._step_max[:, None], -np.inf).max(axis=0) + _BOUND_MARGIN,
            centre=_item_sum(bits, per_item * mid[:, None]) / _item_sum(bits, per_item),
        )

    def subset(self, idx: IntArray) -> _Problems:
        return _Problems(
            cum=self.cum,
            weights=self.weights[:, idx],
            group_weights=self.group_weights,
            groups=self.groups[idx],
            raw=self.raw[idx],
            max_raw=self.max_raw[idx],
            lo=self.lo[idx],
            hi=self.hi[idx],
            centre=self.centre[idx],
        )

    def moments(self, theta: FloatArray, idx: IntArray, order: int) -> list[FloatArray]:
        return _moments(theta, self.weights[:, idx], self.cum, order)


@attrs.frozen(eq=False)
class _Grid:
    """Score moments summed per mask at θ_g = g·_GRID_STEP: one-cell starting brackets.

    Item moments are computed once per node and summed per mask (not per problem), in the same
    order as :func:`_moments`, so grid values equal direct evaluations bit for bit.
    """

    first: int  # g of column 0
    theta: FloatArray  # (G,)
    mean: FloatArray  # (M, G)
    var: FloatArray
    m3: FloatArray
    k4: FloatArray | None = None  # the 4th cumulant, where built with order 4

    @classmethod
    def build(cls, prob: _Problems, lo: FloatArray, hi: FloatArray, order: int = 3) -> _Grid:
        first = math.floor(float(lo.min()) / _GRID_STEP)
        last = math.ceil(float(hi.max()) / _GRID_STEP)
        theta = np.arange(first, last + 1).astype(np.float64) * _GRID_STEP
        gw = prob.group_weights
        sums = []
        for per_item in _item_moments(theta, prob.cum, order):
            acc = gw[0][:, None] * per_item[0][None, :]
            for i in range(1, gw.shape[0]):
                acc += gw[i][:, None] * per_item[i][None, :]
            sums.append(acc)
        k4 = sums[3] if order >= 4 else None
        return cls(first=first, theta=theta, mean=sums[0], var=sums[1], m3=sums[2], k4=k4)

    def window(self, lo: FloatArray, hi: FloatArray) -> tuple[IntArray, IntArray]:
        """Columns inside each problem's own [lo, hi]: results never depend on the batch."""
        w0 = np.ceil(lo / _GRID_STEP).astype(np.int64) - self.first
        w1 = np.floor(hi / _GRID_STEP).astype(np.int64) - self.first
        return w0, w1


def _grid_bracket(
    grid: _Grid,
    f: FloatArray,
    *,
    start: FloatArray,
    f_start: FloatArray,
    up: NDArray[np.bool_],
    window: tuple[IntArray, IntArray],
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]:
    """Bracket the first sign change of f (P, G) met walking from ``start`` along the grid.

    Walking up, f > 0 before the crossing and f ≤ 0 at it; walking down, f < 0 before and
    f ≥ 0 at it. Returns lo, hi (f(lo) > 0 ≥ f(hi) or the mirror), a linearly interpolated
    start, and ``found`` (False where the problem's window holds no usable crossing).
    """
    w0, w1 = window
    n_rows, n_cols = f.shape
    nodes = grid.theta
    col = np.arange(n_cols)[None, :]
    inside = (col >= w0[:, None]) & (col <= w1[:, None])
    ahead = np.where(up[:, None], nodes[None, :] > start[:, None], nodes[None, :] < start[:, None])
    crossed = inside & ahead & np.where(up[:, None], f <= 0.0, f >= 0.0)
    found = crossed.any(axis=1)
    hit = np.where(up, np.argmax(crossed, axis=1), n_cols - 1 - np.argmax(crossed[:, ::-1], axis=1))
    before = np.where(up, hit - 1, hit + 1)  # the node passed just before the crossing
    clipped = np.clip(before, 0, n_cols - 1)
    rows = np.arange(n_rows)
    before_ok = (
        (before >= w0)
        & (before <= w1)
        & np.where(up, nodes[clipped] > start, nodes[clipped] < start)
    )
    b_theta = np.where(before_ok, nodes[clipped], start)  # else the start itself
    b_f = np.where(before_ok, f[rows, clipped], f_start)
    found &= np.isfinite(b_theta)  # an infinite start needs a node before the crossing
    h_theta, h_f = nodes[hit], f[rows, hit]
    lo, hi = np.where(up, b_theta, h_theta), np.where(up, h_theta, b_theta)
    f_lo, f_hi = np.where(up, b_f, h_f), np.where(up, h_f, b_f)
    with np.errstate(divide="ignore", invalid="ignore"):
        x0 = lo + (hi - lo) * (f_lo / (f_lo - f_hi))
    x0 = np.where(np.isfinite(x0), x0, 0.5 * (lo + hi))
    return lo, hi, x0, found


def _on_subset(fun: Objective, sel: IntArray) -> Objective:
    return lambda theta, idx: fun(theta, sel[idx])


def _solve_mle(prob: _Problems, target: FloatArray, grid: _Grid) -> FloatArray:
    """θ with E(θ) = target (0 < target < max); E is strictly increasing, so the root is unique."""

    def value(theta: FloatArray, idx: IntArray) -> FloatArray:
        return target[idx] - prob.moments(theta, idx, 1)[0]

    def fun(theta: FloatArray, idx: IntArray) -> tuple[FloatArray, FloatArray]:
        mean, var = prob.moments(theta, idx, 2)
        return target[idx] - mean, -var

    n = target.shape[0]
    f = target[:, None] - grid.mean[prob.groups]
    lo, hi, x0, found = _grid_bracket(
        grid,
        f,
        start=np.full(n, -np.inf),
        f_start=np.full(n, np.nan),
        up=np.ones(n, dtype=bool),
        window=grid.window(prob.lo, prob.hi),
    )
    rest = np.flatnonzero(~found)
    if rest.size:  # root outside the usual range (tiny extreme adjustment): widen
        lo_r, hi_r = prob.lo[rest], prob.hi[rest]
        _bracket(lambda t, i: value(t, rest[i]), lo_r, hi_r)
        frac = target[rest] / prob.max_raw[rest]
        lo[rest], hi[rest] = lo_r, hi_r
        x0[rest] = prob.centre[rest] + np.log(frac / (1.0 - frac))
    return _newton_bisect(fun, lo, hi, x0)


def _information(prob: _Problems, theta: FloatArray) -> FloatArray:
    idx = np.arange(theta.shape[0], dtype=np.int64)
    return prob.moments(theta, idx, 2)[1]


def _solve_wle(prob: _Problems) -> FloatArray:
    """Root of Warm's equation g(θ) = r − E + J/(2I), selected as documented on :class:`WLE`.

    g → r + ½ > 0 as θ → −∞ and g → r − max − ½ < 0 as θ → +∞, so a root always exists. When g
    changes sign once on the shared 0.25-logit grid, that cell holds it (no MLE needed). Otherwise
    the rule applies: walk the grid from the MLE (or the far end) to the first sign change,
    falling back to a scan from the far bounds. The cell is refined by Newton/bisection. Where
    g may turn between nodes (:data:`_WLE_TURN`), the grid can miss roots that lie closer
    together than it: such problems walk from the MLE (or the far end) in parts of a cell.
    """
    r = prob.raw
    n = r.shape[0]
    grid = _Grid.build(prob, prob.lo, prob.hi, order=4)

    def value(theta: FloatArray, idx: IntArray) -> FloatArray:
        mean, var, m3 = prob.moments(theta, idx, 3)
        return r[idx] - mean + m3 / (2.0 * var)

    def fun(theta: FloatArray, idx: IntArray) -> tuple[FloatArray, FloatArray]:
        mean, var, m3, k4 = prob.moments(theta, idx, 4)
        g = r[idx] - mean + m3 / (2.0 * var)
        dg = -var + (k4 * var - m3 * m3) / (2.0 * var * var)
        return g, dg

    f, (w0, w1), simple, fine = _wle_cells(prob, grid)
    theta = np.full(n, np.nan)
    lo = np.empty(n)
    hi = np.empty(n)
    x0 = np.empty(n)
    found = np.zeros(n, dtype=bool)
    lo[simple], hi[simple], x0[simple], found[simple] = _grid_bracket(
        grid,
        f[simple],
        start=np.full(int(simple.sum()), -np.inf),
        f_start=np.full(int(simple.sum()), np.nan),
        up=np.ones(int(simple.sum()), dtype=bool),
        window=(w0[simple], w1[simple]),
    )

    # Several sign changes: apply the documented rule (walk from the MLE, or from the far end).
    low = r == 0.0
    high = r == prob.max_raw
    start = np.where(low, -np.inf, np.inf)
    f_start = np.full(n, np.nan)
    up = low.copy()
    inner = np.flatnonzero(~simple & ~low & ~high)
    if inner.size:
        anchor = _solve_mle(prob.subset(inner), r[inner], grid)
        g0 = value(anchor, inner)
        start[inner], f_start[inner], up[inner] = anchor, g0, g0 > 0.0
        at_root = np.abs(g0) <= _GTOL
        theta[inner[at_root]] = anchor[at_root]
    ruled = np.flatnonzero(~simple & np.isnan(theta))
    walked, ruled = ruled[fine[ruled]], ruled[~fine[ruled]]
    if walked.size:  # roots may lie closer together than the grid
        start[walked] = np.where(low | high, np.where(low, prob.lo, prob.hi), start)[walked]
        lo[walked], hi[walked], x0[walked] = _walk_in_parts(
            value, walked, start[walked], up[walked]
        )
        found[walked] = True
    lo[ruled], hi[ruled], x0[ruled], found[ruled] = _grid_bracket(
        grid,
        f[ruled],
        start=start[ruled],
        f_start=f_start[ruled],
        up=up[ruled],
        window=(w0[ruled], w1[ruled]),
    )
    todo = np.flatnonzero(np.isnan(theta))
    rest = todo[~found[todo]]
    if rest.size:  # rare: no crossing inside the problem's window; scan without the grid
        lo[rest], hi[rest], x0[rest] = _wle_scan(prob, value, rest, start=start, up=up)
    theta[todo] = _newton_bisect(_on_subset(fun, todo), lo[todo], hi[todo], x0[todo])
    return theta


def _wle_cells(
    prob: _Problems, grid: _Grid
) -> tuple[FloatArray, tuple[IntArray, IntArray], NDArray[np.bool_], NDArray[np.bool_]]:
    """Warm's equation on the grid (P, G), each problem's window of it, the problems whose g
    changes sign once there (that cell holds the root, whatever the selection rule), and those
    where g may turn between nodes (:func:`_turning`)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # nodes far outside any window
        correction = grid.m3 / (2.0 * grid.var)
    f = (prob.raw[:, None] - grid.mean[prob.groups]) + correction[prob.groups]
    w0, w1 = grid.window(prob.lo, prob.hi)
    cols = np.arange(f.shape[1])[None, :]
    inside = (cols >= w0[:, None]) & (cols <= w1[:, None])
    positive = f > 0.0
    changes = ((positive[:, :-1] != positive[:, 1:]) & inside[:, :-1] & inside[:, 1:]).sum(axis=1)
    rows = np.arange(f.shape[0])
    starts_positive = positive[rows, np.clip(w0, 0, f.shape[1] - 1)]
    ends_negative = ~positive[rows, np.clip(w1, 0, f.shape[1] - 1)]
    fine = np.asarray((_turning(grid)[prob.groups] & inside).any(axis=1), dtype=np.bool_)
    simple = (w0 <= w1) & (changes == 1) & starts_positive & ends_negative & ~fine
    return f, (w0, w1), simple, fine


def _turning(grid: _Grid) -> NDArray[np.bool_]:
    """Where (mask, node) the WLE correction J/(2I) rises faster than :data:`_WLE_TURN` of the
    information: its slope is (K4·I − J²)/(2I²), K4 the score's fourth cumulant."""
    k4 = grid.k4 if grid.k4 is not None else np.full_like(grid.var, np.inf)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # far outside any window
        slope = (k4 * grid.var - grid.m3 * grid.m3) / (2.0 * grid.var * grid.var)
        return np.asarray(slope > _WLE_TURN * grid.var)


def _walk_in_parts(
    value: Callable[[FloatArray, IntArray], FloatArray],
    idx: IntArray,
    start: FloatArray,
    up: NDArray[np.bool_],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bracket the first sign change of g met walking from ``start`` (up where g > 0 there,
    down where g < 0), one grid cell at a time, each looked at in :data:`_WLE_PARTS` parts.
    Returns lo, hi (g(lo) > 0 ≥ g(hi), or g(lo) ≥ 0 > g(hi)) and an interpolated start."""
    n = idx.shape[0]
    h = _GRID_STEP / _WLE_PARTS
    ahead = np.arange(1, _WLE_PARTS + 1) * h
    sign = np.where(up, 1.0, -1.0)
    here = start.copy()
    g_here = value(here, idx)
    lo, hi, x0 = np.empty(n), np.empty(n), np.empty(n)
    active = np.arange(n)
    for _ in range(_MAX_SCAN // 5):  # 200 logits
        if active.size == 0:
            return lo, hi, x0
        nodes = here[active, None] + sign[active, None] * ahead[None, :]
        g = value(nodes.ravel(), np.repeat(idx[active], _WLE_PARTS)).reshape(-1, _WLE_PARTS)
        going_up = up[active]
        crossed = np.where(going_up[:, None], g <= 0.0, g >= 0.0)
        hit = crossed.any(axis=1)
        k = np.argmax(crossed, axis=1)
        rows = np.arange(active.size)
        before = np.where(k > 0, nodes[rows, k - 1], here[active])
        g_before = np.where(k > 0, g[rows, k - 1], g_here[active])
        at, g_at = nodes[rows, k], g[rows, k]
        done = active[hit]
        b, gb, a, ga, u = before[hit], g_before[hit], at[hit], g_at[hit], going_up[hit]
        lo[done], hi[done] = np.where(u, b, a), np.where(u, a, b)
        f_lo, f_hi = np.where(u, gb, ga), np.where(u, ga, gb)
        with np.errstate(divide="ignore", invalid="ignore"):
            guess = lo[done] + (hi[done] - lo[done]) * (f_lo / (f_lo - f_hi))
        x0[done] = np.where(np.isfinite(guess), guess, 0.5 * (lo[done] + hi[done]))
        here[active], g_here[active] = nodes[:, -1], g[:, -1]
        active = active[~hit]
    _not_converged("the WLE walk")


def _wle_scan(
    prob: _Problems,
    value: Callable[[FloatArray, IntArray], FloatArray],
    sel: IntArray,
    *,
    start: FloatArray,
    up: NDArray[np.bool_],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bracket by walking in _WLE_SCAN_STEP steps (extremes from far bounds widened as needed)."""
    anchor = start[sel].copy()
    ext = np.flatnonzero(~np.isfinite(anchor))
    if ext.size:
        lo, hi = prob.lo[sel[ext]], prob.hi[sel[ext]]
        _bracket(lambda t, i: value(t, sel[ext[i]]), lo, hi)
        anchor[ext] = np.where(up[sel[ext]], lo, hi)
    direction = np.where(up[sel], 1.0, -1.0)
    near = anchor.copy()
    far = anchor.copy()
    scanning = np.arange(sel.size)
    for step in range(1, _MAX_SCAN + 1):
        if scanning.size == 0:
            break
        cur = anchor[scanning] + direction[scanning] * (_WLE_SCAN_STEP * step)
        crossed = direction[scanning] * value(cur, sel[scanning]) <= 0.0
        near[scanning] = far[scanning]
        far[scanning] = cur
        scanning = scanning[~crossed]
    else:
        _not_converged("the WLE scan")
    going_up = direction > 0.0
    return np.where(going_up, near, far), np.where(going_up, far, near), near


def _eap_grid_step(model: StepModel, est: EAP) -> float:
    """Trapezoid spacing: automatic, or finer if the node count asks for it (see :class:`EAP`)."""
    automatic = min(_EAP_SPACING_PER_STEP / model.n_steps, est.prior_sd / 5.0)
    if est.quadrature_points is None:
        return automatic
    return min(automatic, 2.0 * _EAP_HALF_WIDTH * est.prior_sd / (est.quadrature_points - 1))


def _solve_eap(prob: _Problems, est: EAP, spacing: float) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and SD: trapezoidal rule on the global nodes θ_g = g·spacing.

    Each problem integrates over the grid nodes within its posterior mode ± 9 prior SDs. The grid
    is shared, so log Z_i is evaluated once per node and mask sums once per (mask, node); a
    problem then costs one exp per node.
    """
    mu, sd = est.prior_mean, est.prior_sd
    prec = 1.0 / (sd * sd)
    r = prob.raw

    def value(theta: FloatArray, idx: IntArray) -> FloatArray:
        return r[idx] - prob.moments(theta, idx, 1)[0] - (theta - mu) * prec

    def fun(theta: FloatArray, idx: IntArray) -> tuple[FloatArray, FloatArray]:
        mean, var = prob.moments(theta, idx, 2)
        return r[idx] - mean - (theta - mu) * prec, -var - prec

    far_lo = np.minimum(prob.lo, mu - _BOUND_MARGIN * sd)
    far_hi = np.maximum(prob.hi, mu + _BOUND_MARGIN * sd)
    grid = _Grid.build(prob, far_lo, far_hi)
    n = r.shape[0]
    f = (r[:, None] - grid.mean[prob.groups]) - ((grid.theta - mu) * prec)[None, :]
    lo, hi, x0, found = _grid_bracket(
        grid,
        f,
        start=np.full(n, -np.inf),
        f_start=np.full(n, np.nan),
        up=np.ones(n, dtype=bool),
        window=grid.window(far_lo, far_hi),
    )
    rest = np.flatnonzero(~found)
    if rest.size:
        lo_r, hi_r = far_lo[rest], far_hi[rest]
        _bracket(lambda t, i: value(t, rest[i]), lo_r, hi_r)
        lo[rest], hi[rest], x0[rest] = lo_r, hi_r, np.clip(prob.centre[rest], lo_r, hi_r)
    mode = _newton_bisect(fun, lo, hi, x0)

    half = _EAP_HALF_WIDTH * sd
    n_nodes = math.ceil(2.0 * half / spacing) + 2
    first = np.floor((mode - half) / spacing).astype(np.int64)
    g_lo = int(first.min())
    nodes = np.arange(g_lo, int(first.max()) + n_nodes).astype(np.float64) * spacing
    log_z = _log_z(nodes, prob.cum)  # (I, G)
    gw = prob.group_weights
    mask_log_z = gw[0][:, None] * log_z[0][None, :]  # (M, G): Σ over answered items
    for i in range(1, gw.shape[0]):
        mask_log_z += gw[i][:, None] * log_z[i][None, :]
    mean = np.empty_like(mode)
    post_sd = np.empty_like(mode)
    offsets = np.arange(n_nodes, dtype=np.int64)[:, None]
    per_chunk = max(1, _CHUNK_ELEMENTS // n_nodes)
    for start in range(0, mode.shape[0], per_chunk):
        sl = slice(start, start + per_chunk)
        cols = first[None, sl] - g_lo + offsets  # (N, P): this problem's window on the grid
        theta = nodes[cols]
        log_post = r[None, sl] * theta - mask_log_z[prob.groups[None, sl], cols]
        log_post -= 0.5 * prec * (theta - mu) ** 2
        dens = np.exp(log_post - log_post.max(axis=0))
        dev = theta - mode[None, sl]
        mass, first_moment = dens[0].copy(), dens[0] * dev[0]
        for j in range(1, n_nodes):  # explicit sums: same order whatever the batch
            mass += dens[j]
            first_moment += dens[j] * dev[j]
        shift = first_moment / mass
        second = dens[0] * (dev[0] - shift) ** 2
        for j in range(1, n_nodes):
            second += dens[j] * (dev[j] - shift) ** 2
        mean[sl] = mode[sl] + shift
        post_sd[sl] = np.sqrt(second / mass)
    return mean, post_sd


def _estimate(
    model: StepModel,
    estimator: Estimator,
    group_weights: FloatArray,
    groups: IntArray,
    raw: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """θ and SE for each problem: mask ``group_weights[:, groups[p]]`` (non-empty), ``raw[p]``."""
    prob = _Problems.build(model, group_weights, groups, raw)
    if isinstance(estimator, EAP):
        return _solve_eap(prob, estimator, _eap_grid_step(model, estimator))
    if isinstance(estimator, MLE):
        adj = estimator.extreme_adjustment
        target = np.clip(raw, adj, prob.max_raw - adj)
        theta = _solve_mle(prob, target, _Grid.build(prob, prob.lo, prob.hi))
    else:
        theta = _solve_wle(prob)
    return theta, 1.0 / np.sqrt(_information(prob, theta))


def _compile_cells(
    model: StepModel, estimator: Estimator, masks: MaskArray, raws: IntArray
) -> tuple[FloatArray, FloatArray]:
    """θ and SE for each (non-empty answered mask, raw score) pair.

    Each problem is solved on its own (its bracket, grid cell and iterations are its own), so a
    pair gets the same bits whatever else is solved with it: solving only the pairs that occur
    gives what solving whole rows would. Vectorised over all pairs (in chunks, a mask's pairs
    together).
    """
    theta = np.empty(masks.shape[0])
    se = np.empty(masks.shape[0])
    if masks.shape[0] == 0:
        return theta, se
    unique, groups = np.unique(masks, return_inverse=True)
    groups = groups.reshape(-1)
    shifts = np.arange(model.n_items, dtype=np.uint64)
    bits = ((unique[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.float64)  # (M, I)
    per_chunk = max(1, _CHUNK_ELEMENTS // (model.n_items * (model.n_steps + 1)))
    order = np.argsort(groups, kind="stable")
    for start in range(0, order.size, per_chunk):
        chosen = order[start : start + per_chunk]
        used, local = np.unique(groups[chosen], return_inverse=True)
        group_weights = np.ascontiguousarray(bits[used].T)
        t, s = _estimate(
            model, estimator, group_weights, local.reshape(-1), raws[chosen].astype(np.float64)
        )
        theta[chosen] = t
        se[chosen] = s
    return theta, se


def _compile_masks(
    model: StepModel, estimator: Estimator, masks: MaskArray
) -> tuple[FloatArray, FloatArray]:
    """Rows of θ and SE (len(masks), max_raw + 1) for every raw score of each mask; NaN elsewhere
    (and for the empty mask): :func:`_compile_cells` of every pair."""
    width = model.max_raw + 1
    theta = np.full((masks.shape[0], width), np.nan)
    se = np.full((masks.shape[0], width), np.nan)
    shifts = np.arange(model.n_items, dtype=np.uint64)
    bits = ((masks[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.float64)  # (M, I)
    mask_max = (bits @ model.max_scores.astype(np.float64)).astype(np.int64)
    rows = np.flatnonzero(mask_max > 0)
    counts = mask_max[rows] + 1
    row_of = np.repeat(rows, counts)
    raw = np.arange(row_of.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    t, s = _compile_cells(model, estimator, masks[row_of], raw)
    theta[row_of, raw] = t
    se[row_of, raw] = s
    return theta, se


# --------------------------------------------------------------------------------------------
# Responses -> (mask, raw score)
# --------------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class ResponseSummary:
    """The sufficient statistics of each response vector."""

    mask: MaskArray
    """Bit *j* set where item *j* was answered."""
    n_answered: IntArray
    raw_score: IntArray
    """Sum of the model categories (code − 1) over answered items."""


def _summarise(
    responses: ArrayLike, model: StepModel, top: IntArray, check: CodeCheck
) -> tuple[MaskArray, IntArray, IntArray]:
    codes = check(responses, name="responses")
    n_items = model.n_items
    n = codes.shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(0, dtype=np.uint64), empty, empty.copy()
    if _WORDS_FIT and codes.dtype == np.int8 and n_items >= 8 and int(top.max()) <= _WORD_TOP:
        return _summarise_words(np.ascontiguousarray(codes), n_items)
    narrow = codes.dtype
    answered: NDArray[Any] = (codes > 0).view(np.uint8)
    # einsum sums in the operand type: exact while the largest possible row sum fits
    n_answered = np.einsum("ij->i", answered).astype(np.int64)  # <= 64 fits uint8
    positive = np.maximum(codes, 0)
    if int(top.sum()) <= np.iinfo(narrow).max:
        totals = np.einsum("ij->i", positive)
    else:
        totals = np.einsum("ij->i", positive, dtype=np.int64)
    raw = totals.astype(np.int64) - n_answered
    bit_type = np.uint16 if n_items <= 16 else np.uint32 if n_items <= 32 else np.uint64
    bits: NDArray[Any] = np.array([1 << j for j in range(n_items)], dtype=bit_type)
    mask = np.einsum("ij,j->i", answered, bits).astype(np.uint64)
    return mask, n_answered, raw


#: Codes read eight at a time from 64-bit words need the bytes of a word in item order.
_WORDS_FIT: Final = sys.byteorder == "little"
#: The highest code the word path takes: a code's low three bits tell 1.._WORD_TOP from 0 and
#: from -1 (0xFF, low bits 7), and eight such codes sum within a byte.
_WORD_TOP: Final = 6
_BYTES_1: Final = np.uint64(0x0101010101010101)  # 1 in every byte: also sums bytes into the top
_BYTES_7: Final = np.uint64(0x0707070707070707)
_BYTES_FF: Final = np.uint64(0xFF)  # times a word of 0/1 bytes: 0x00/0xFF bytes, no carries
_BITS_OF_BYTES: Final = np.uint64(0x0102040810204080)  # byte k (0 or 1) -> bit 56 + k
_SHIFT_3: Final = np.uint64(3)
_SHIFT_56: Final = np.uint64(56)


def _summarise_words(codes: NDArray[np.int8], n_items: int) -> tuple[MaskArray, IntArray, IntArray]:
    """:func:`_summarise` of C-ordered int8 codes in -1.._WORD_TOP, 8 <= n_items <= 64, read
    as 64-bit words of eight codes each (SWAR): a handful of whole-array operations a word, where
    NumPy's row reductions pay their loop overhead on every row of a dozen codes.

    Word *k* starts at item ``min(8k, n_items - 8)``, inside the row, so nothing outside the
    array is read; the bytes a word shares with the one before are masked out."""
    n = codes.shape[0]
    flat = codes.reshape(-1).view(np.uint8)
    mask = np.zeros(n, dtype=np.uint64)
    count = np.zeros(n, dtype=np.uint64)
    total = np.zeros(n, dtype=np.uint64)
    for k in range((n_items + 7) // 8):
        start = min(8 * k, n_items - 8)
        word = np.ndarray((n,), dtype=np.uint64, buffer=flat, offset=start, strides=(n_items,))
        keep = _BYTES_7 & np.uint64((1 << 64) - (1 << (8 * (8 * k - start))))
        low = word & keep  # the low three bits of each code: 1..6 as they are, -1 -> 7
        # a byte of 1 where a code is 1..6: at least 1 (low + 7 reaches 8), not 7 (low + 1 does)
        answered = ((low + _BYTES_7) >> _SHIFT_3) & _BYTES_1
        answered ^= ((low + _BYTES_1) >> _SHIFT_3) & _BYTES_1
        low &= answered * _BYTES_FF  # the answered codes, 0 elsewhere
        low *= _BYTES_1
        low >>= _SHIFT_56  # their sum
        words = (answered * _BYTES_1) >> _SHIFT_56  # how many were answered
        answered *= _BITS_OF_BYTES
        answered >>= _SHIFT_56  # bit j for byte j
        if start:
            answered <<= np.uint64(start)
        mask |= answered
        count += words
        total += low
    n_answered = count.astype(np.int64)
    return mask, n_answered, total.astype(np.int64) - n_answered


def summarise_words(
    codes: NDArray[np.int8], n_items: int
) -> tuple[MaskArray, IntArray, IntArray] | None:
    """:func:`_summarise_words` (its conditions on ``codes`` hold), or ``None`` where this
    machine's words do not hold their bytes in item order: for other sums of the reader's
    codes (the raw-sum provider's)."""
    return _summarise_words(codes, n_items) if _WORDS_FIT else None


def response_summary(responses: ArrayLike, model: StepModel) -> ResponseSummary:
    """Validate integer response codes (n, n_items) and reduce them to (mask, n_answered, raw)."""
    top = (model.max_scores + 1).astype(np.int64)
    mask, n_answered, raw = _summarise(responses, model, top, CodeCheck(top))
    return ResponseSummary(mask=mask, n_answered=n_answered, raw_score=raw)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@attrs.frozen
class Measure:
    """One person's measure: θ and its SE in logits (NaN when nothing was answered)."""

    n_answered: int
    raw_score: int
    theta: float
    theta_se: float


@attrs.frozen(eq=False)
class BatchMeasures:
    """Measures of many response vectors, as read-only arrays of equal length."""

    n_answered: IntArray
    raw_score: IntArray
    theta: FloatArray
    theta_se: FloatArray

    def __len__(self) -> int:
        return int(self.theta.shape[0])

    def __getitem__(self, i: int) -> Measure:
        return Measure(
            n_answered=int(self.n_answered[i]),
            raw_score=int(self.raw_score[i]),
            theta=float(self.theta[i]),
            theta_se=float(self.theta_se[i]),
        )


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def _distinct(values: IntArray, size: int) -> IntArray:
    """The distinct ``values`` (integers in ``0..size - 1``), ascending: marked in a map of
    every value where there are many (a sort costs some hundred instructions a value), sorted
    where there are few (the map costs its size)."""
    if values.size * 16 < size:
        return sorted_unique(values)
    seen = np.zeros(size, dtype=np.bool_)
    seen[values] = True
    return np.flatnonzero(seen).astype(values.dtype, copy=False)


class ScoreTable:
    """A StepModel + estimator compiled into an in-memory (answered mask, raw score) table.

    Solved lazily and then only read: a batch solves the (mask, raw) pairs that occur, one
    vector the whole row of its mask; each pair is solved on its own, so scoring one vector or a
    million returns the same bits for the same (mask, raw). Safe to share between threads.
    Licensed content: it refuses pickling and copying, and its repr shows only counts.

    >>> model = StepModel.rating_scale([-0.5, 0.0, 0.5], [-1.0, 0.0, 1.0])  # synthetic
    >>> table = ScoreTable(model)  # WLE
    >>> one = table.score_one([4, 3, UNANSWERED])
    >>> one.n_answered, one.raw_score, round(one.theta, 2), round(one.theta_se, 2)
    (2, 5, 1.0, 0.98)
    >>> batch = table.score(np.array([[4, 3, 0], [3, 4, NOT_APPLICABLE], [0, 0, 0]]))
    >>> bool(batch.theta[0] == batch.theta[1] == one.theta)  # same answered items and raw
    True
    >>> batch[2].theta  # nothing answered
    nan
    >>> table
    ScoreTable(WLE(), n_items=3, max_raw=9, compiled_masks=2, index=dense)
    """

    __slots__ = (
        "_check",
        "_dense",
        "_estimator",
        "_lock",
        "_masks",
        "_model",
        "_n_rows",
        "_row_of",
        "_row_of_mask",
        "_se",
        "_sparse",
        "_theta",
        "_top",
        "_width",
    )

    def __init__(self, model: StepModel, estimator: Estimator | None = None) -> None:
        if not isinstance(model, StepModel):
            raise ConfigurationError("ScoreTable needs a StepModel")
        estimator = WLE() if estimator is None else estimator
        if not isinstance(estimator, WLE | MLE | EAP):
            raise ConfigurationError("estimator must be WLE(), MLE(...) or EAP(...)")
        self._model = model
        self._estimator: Estimator = estimator
        self._lock = threading.Lock()
        self._width = model.max_raw + 1
        self._top = _read_only((model.max_scores + 1).astype(np.int64))
        self._check = CodeCheck(self._top)
        self._dense = model.n_items <= DENSE_MAX_ITEMS
        # dense: row index per mask (-1 = not compiled); sparse: sorted keys with their rows
        self._row_of_mask = np.full(1 << model.n_items if self._dense else 0, -1, dtype=np.int64)
        self._sparse: tuple[MaskArray, IntArray] = (  # sorted keys, their rows: one attribute
            np.zeros(0, dtype=np.uint64),  # so readers never see a torn pair
            np.zeros(0, dtype=np.int64),
        )
        self._row_of: dict[int, int] = {}
        self._n_rows = 0
        self._theta = np.empty((0, self._width))
        self._se = np.empty((0, self._width))
        self._masks = np.empty(0, dtype=np.uint64)  # each row's mask, read under the lock

    @property
    def model(self) -> StepModel:
        return self._model

    @property
    def estimator(self) -> Estimator:
        return self._estimator

    @property
    def n_compiled(self) -> int:
        """Number of answered-item masks met so far (each with a row in the table)."""
        return self._n_rows

    # -- compile -----------------------------------------------------------------------------

    def _lookup_rows(self, masks: MaskArray) -> IntArray:
        """Row per mask, -1 where not compiled."""
        if self._dense:
            return self._row_of_mask[masks.astype(np.intp)]
        keys, rows = self._sparse
        if keys.size == 0:
            return np.full(masks.shape[0], -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(keys, masks), keys.size - 1)
        return np.where(keys[pos] == masks, rows[pos], -1)

    def compile(self, masks: ArrayLike) -> None:
        """Solve the rows for these answered-item masks now (e.g. the complete mask, to warm up)."""
        arr = np.asarray(masks)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        limit = (1 << self._model.n_items) - 1
        if (
            arr.ndim != 1
            or not np.issubdtype(arr.dtype, np.integer)
            or (arr.size and (int(arr.min()) < 0 or int(arr.max()) > limit))
        ):
            raise ValidationError(
                "masks must be integers with one bit per item",
                [Problem("masks", "mask.range", f"each mask must lie within 0..{limit}")],
            )
        self._ensure(sorted_unique(arr.astype(np.uint64)))

    def _ensure(self, masks: MaskArray, *, solve: bool = True) -> None:
        """Rows for the masks (unique, uint64) that are not in the table yet: every raw score
        solved (``solve``), or left NaN for :meth:`_solve` to fill the pairs that occur."""
        with self._lock:
            new = masks[self._lookup_rows(masks) < 0]
            if new.size == 0:
                return
            if solve:
                theta, se = _compile_masks(self._model, self._estimator, new)
            else:
                theta = se = np.full((new.size, self._width), np.nan)
            start = self._n_rows
            stop = start + new.size
            if stop > self._theta.shape[0]:
                cap = max(stop, 2 * self._theta.shape[0], 16)
                grown_t = np.empty((cap, self._width))
                grown_s = np.empty((cap, self._width))
                grown_t[:start] = self._theta[:start]
                grown_s[:start] = self._se[:start]
                grown_m = np.empty(cap, dtype=np.uint64)
                grown_m[:start] = self._masks[:start]
                self._masks = grown_m
            else:
                grown_t, grown_s = self._theta, self._se
            grown_t[start:stop] = theta
            grown_s[start:stop] = se
            self._masks[start:stop] = new
            # publish values before the index that points at them
            self._theta, self._se = grown_t, grown_s
            row_ids = np.arange(start, stop, dtype=np.int64)
            if self._dense:
                self._row_of_mask[new.astype(np.intp)] = row_ids
            else:
                keys = np.concatenate([self._sparse[0], new])
                rows = np.concatenate([self._sparse[1], row_ids])
                order = np.argsort(keys, kind="stable")
                self._row_of.update(zip(new.tolist(), row_ids.tolist(), strict=True))
                self._sparse = (keys[order], rows[order])
            self._n_rows = stop

    def _rows_for(self, masks: MaskArray) -> IntArray:
        if not self._dense:
            rows = self._lookup_rows(masks)
            missing = rows < 0
            if missing.any():
                self._ensure(sorted_unique(masks[missing]), solve=False)
                rows = self._lookup_rows(masks)
            return rows
        index = masks.astype(np.intp)
        rows = self._row_of_mask[index]
        missing = rows < 0
        if missing.any():
            met = _distinct(index[missing], self._row_of_mask.shape[0])
            self._ensure(met.astype(np.uint64), solve=False)
            rows = self._row_of_mask[index]
        return rows

    def _solve(self, cells: IntArray) -> None:
        """Solve the cells (``row * width + raw``; rows present, masks non-empty) not solved
        yet, in the order of their cell numbers."""
        with self._lock:
            theta, se = self._theta.reshape(-1), self._se.reshape(-1)
            cells = cells[np.isnan(theta[cells]) | np.isnan(se[cells])]
            if cells.size == 0:
                return
            cells = _distinct(cells, theta.size)
            cell_rows, cell_raws = np.divmod(cells, self._width)
            t, s = _compile_cells(
                self._model, self._estimator, self._masks[cell_rows], cell_raws.astype(np.int64)
            )
            # written in place by (row, raw): never through a reshaped copy
            self._se[cell_rows, cell_raws] = s
            self._theta[cell_rows, cell_raws] = t

    def _measures(self, masks: MaskArray, raws: IntArray) -> tuple[FloatArray, FloatArray]:
        """θ and SE of each (mask, raw), solving the pairs not met before."""
        flat = self._rows_for(masks) * self._width + raws
        theta = np.take(self._theta.reshape(-1), flat)
        se = np.take(self._se.reshape(-1), flat)
        unsolved = (np.isnan(theta) | np.isnan(se)) & (masks != 0)
        if unsolved.any():
            self._solve(flat[unsolved])
            theta = np.take(self._theta.reshape(-1), flat)
            se = np.take(self._se.reshape(-1), flat)
        return theta, se

    # -- score -------------------------------------------------------------------------------

    def score(self, responses: ArrayLike) -> BatchMeasures:
        """Measures for integer response codes of shape (n, n_items)."""
        mask, n_answered, raw = _summarise(responses, self._model, self._top, self._check)
        theta, se = self._measures(mask, raw)
        return BatchMeasures(
            n_answered=_read_only(n_answered),
            raw_score=_read_only(raw),
            theta=_read_only(theta),
            theta_se=_read_only(se),
        )

    def score_one(self, responses: ArrayLike) -> Measure:
        """Measure of one response vector (n_items,); same table entries as :meth:`score`."""
        codes = self._check(responses, name="responses", one=True)
        mask = raw = count = 0
        for j, code in enumerate(codes.tolist()):
            if code > 0:
                mask |= 1 << j
                raw += code - 1
                count += 1
        row = self._row_of_mask[mask] if self._dense else self._row_of.get(mask, -1)
        if row < 0:
            self._ensure(np.array([mask], dtype=np.uint64))
            row = self._row_of_mask[mask] if self._dense else self._row_of[mask]
        theta, se = float(self._theta[row, raw]), float(self._se[row, raw])
        if mask and (math.isnan(theta) or math.isnan(se)):  # a row a batch left unsolved here
            self._solve(np.array([row * self._width + raw], dtype=np.int64))
            theta, se = float(self._theta[row, raw]), float(self._se[row, raw])
        return Measure(n_answered=count, raw_score=raw, theta=theta, theta_se=se)

    # -- hygiene -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        scheme = "dense" if self._dense else "sparse"
        return (
            f"ScoreTable({self._estimator!r}, n_items={self._model.n_items}, "
            f"max_raw={self._model.max_raw}, compiled_masks={self._n_rows}, index={scheme})"
        )

    def __reduce__(self) -> NoReturn:
        _refuse_serialisation(self)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        _refuse_serialisation(self)

    def __getstate__(self) -> NoReturn:
        _refuse_serialisation(self)

    def __copy__(self) -> ScoreTable:
        return self  # a read-only cache: sharing is copying

    def __deepcopy__(self, memo: dict[int, Any]) -> ScoreTable:
        return self
