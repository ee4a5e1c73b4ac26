"""A deliberately plain Rasch person-measure solver: loops, ``math`` and bisection only.

It shares no code with :mod:`pamlib.scoring._engine` and is written the slow, obvious way
(probabilities from the model definition, the estimating equations solved by bisection on a
fine scan) so that agreement between the two is evidence, not an echo. Every function takes the
*answered* items only, as a list of each item's absolute step difficulties.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Items = Sequence[Sequence[float]]

BISECTION_TOL = 1e-13  # logits: the bracket width at which bisection stops
SCAN_STEP = 0.05  # logits: finer than the engine's scan, so a skipped root would show


def category_probabilities(steps: Sequence[float], theta: float) -> list[float]:
    """P(X = k), k = 0..len(steps), from P(X = k) ∝ exp(Σ_{j≤k} (θ − δ_j))."""
    log_numerators = [0.0]
    for delta in steps:
        log_numerators.append(log_numerators[-1] + theta - delta)
    top = max(log_numerators)
    numerators = [math.exp(v - top) for v in log_numerators]
    total = sum(numerators)
    return [v / total for v in numerators]


def score_moments(items: Items, theta: float) -> tuple[float, float, float]:
    """Expected raw score, its variance (test information) and third central moment."""
    mean = variance = third = 0.0
    for steps in items:
        probs = category_probabilities(steps, theta)
        item_mean = sum(k * p for k, p in enumerate(probs))
        variance += sum((k - item_mean) ** 2 * p for k, p in enumerate(probs))
        third += sum((k - item_mean) ** 3 * p for k, p in enumerate(probs))
        mean += item_mean
    return mean, variance, third


def _bisect(func: Callable[[float], float], lo: float, hi: float) -> float:
    """Root of func with func(lo) > 0 >= func(hi)."""
    while hi - lo > BISECTION_TOL:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if func(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _far_bounds(items: Items) -> tuple[float, float]:
    lowest = min(min(steps) for steps in items)
    highest = max(max(steps) for steps in items)
    return lowest - 15.0, highest + 15.0


def mle(items: Items, raw: int, adjustment: float = 0.3) -> tuple[float, float]:
    """Maximum likelihood θ and 1/sqrt(information); raw 0 and max scored as ±adjustment."""
    max_raw = sum(len(steps) for steps in items)
    target = min(max(float(raw), adjustment), max_raw - adjustment)
    lo, hi = _far_bounds(items)
    theta = _bisect(lambda t: target - score_moments(items, t)[0], lo, hi)
    return theta, 1.0 / math.sqrt(score_moments(items, theta)[1])


def wle(items: Items, raw: int) -> tuple[float, float]:
    """Warm's WLE: the root of r − E + J/(2I), with J the third central moment of the score.

    Root selection follows the engine's documented rule (first root met walking from the MLE in
    the direction the correction points; from the far end for extreme scores). For the
    calibrations used in the tests the root is unique, so the rule does not matter there.
    """
    max_raw = sum(len(steps) for steps in items)

    def correction_equation(t: float) -> float:
        mean, variance, third = score_moments(items, t)
        return raw - mean + third / (2.0 * variance)

    lo, hi = _far_bounds(items)
    if raw == 0:
        start, direction = lo, 1.0
    elif raw == max_raw:
        start, direction = hi, -1.0
    else:
        start = mle(items, raw)[0]
        at_start = correction_equation(start)
        if abs(at_start) <= 1e-12:
            return start, 1.0 / math.sqrt(score_moments(items, start)[1])
        direction = 1.0 if at_start > 0 else -1.0
    previous = start
    while True:
        current = previous + direction * SCAN_STEP
        if direction * correction_equation(current) <= 0.0:
            break
        previous = current
    low, high = (previous, current) if direction > 0 else (current, previous)
    theta = _bisect(correction_equation, low, high)
    return theta, 1.0 / math.sqrt(score_moments(items, theta)[1])


def eap(items: Items, raw: int, prior_mean: float, prior_sd: float) -> tuple[float, float]:
    """Posterior mean and SD by the trapezoidal rule on a fine grid over prior mean ± 12 SD.

    The integrand is smooth and negligible at the ends, where the trapezoidal rule converges
    geometrically: at 1/50 of a prior SD this is the exact integral to ~1e-10.
    """
    spacing = prior_sd / 50.0
    n_nodes = 1200
    log_density: list[float] = []
    grid: list[float] = []
    for q in range(-n_nodes, n_nodes + 1):
        theta = prior_mean + q * spacing
        log_like = raw * theta
        for steps in items:
            log_numerators = [0.0]
            for delta in steps:
                log_numerators.append(log_numerators[-1] + theta - delta)
            top = max(log_numerators)
            log_like -= top + math.log(sum(math.exp(v - top) for v in log_numerators))
        grid.append(theta)
        log_density.append(log_like - 0.5 * ((theta - prior_mean) / prior_sd) ** 2)
    top = max(log_density)
    density = [math.exp(v - top) for v in log_density]
    mass = sum(density)
    mean = sum(t * d for t, d in zip(grid, density, strict=True)) / mass
    variance = sum((t - mean) ** 2 * d for t, d in zip(grid, density, strict=True)) / mass
    return mean, math.sqrt(variance)
