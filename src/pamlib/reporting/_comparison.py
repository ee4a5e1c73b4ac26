"""Comparing groups (sites) on the NQF #2483-style measure: Wilson intervals and a funnel plot.

For each group of a grouped report: the number of **eligible** patients (the measure's
denominator), the number **improving** (its numerator: a gain of at least 3 points), the
**rate**, and a **Wilson score 95 % interval** for it. The funnel plot sets each group's rate
against its eligible count, around the cohort's rate ``p`` with control limits from the
normal approximation to the binomial (Spiegelhalter 2005)::

    p ± z · sqrt(p (1 − p) / n),   z = 1.960 (95 %) and 3.090 (99.8 %), clipped to 0–100 %

A group outside the 99.8 % limits differs from the cohort by more than chance would explain
about once in 500 comparisons.

**Suppression.** The comparison publishes nothing the summary hides: in a report built with
``publish=True`` a group whose eligible or improving count is hidden in the released summary
(a count from ``low`` to ``high``, or hidden so it cannot be recomputed) is shown as
suppressed — no count, rate or interval, and no point in the plot. When the cohort's own
counts are hidden there is no cohort rate to compare against, so no limits and no plot.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import attrs

from pamlib.reporting._rounding import percent, rounded
from pamlib.reporting._summary import CohortSummary, Suppressed, Value

#: Two-sided 95 % standard normal quantile, ``Φ⁻¹(0.975)``.
Z_95 = 1.959963984540054
#: Two-sided 99.8 % standard normal quantile, ``Φ⁻¹(0.999)``.
Z_998 = 3.090232306167813


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion, as fractions; ``n`` must be positive.

    >>> [round(x, 4) for x in wilson_interval(5, 10)]
    [0.2366, 0.7634]
    """
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def control_limits(p: float, n: float, z: float) -> tuple[float, float]:
    """Funnel-plot control limits around a cohort proportion ``p`` for ``n`` eligible, as
    fractions clipped to 0–1 (normal approximation)."""
    half = z * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


def _pct(fraction: float) -> float:
    """A computed fraction (an interval's end, a limit) as a percentage to one decimal."""
    return rounded(100 * fraction)


@attrs.frozen
class GroupRate:
    """One group's row of the comparison; every figure is ``Suppressed`` when ``suppressed``,
    and ``rate_pct``, the interval and the limits are ``None`` with no eligible patients.

    ``position`` is where the rate falls against the funnel: ``above-99.8``, ``above-95``,
    ``within``, ``below-95`` or ``below-99.8`` (``None`` when not plotted).
    """

    group: str
    suppressed: bool
    eligible: Value
    improving: Value
    rate_pct: Value
    wilson_low_pct: Value
    wilson_high_pct: Value
    limit95_low_pct: Value
    limit95_high_pct: Value
    limit998_low_pct: Value
    limit998_high_pct: Value
    position: str | None

    @property
    def plotted(self) -> bool:
        """Whether the group is a point of the funnel plot."""
        return self.position is not None

    def figures(self) -> Iterator[tuple[str, Value]]:
        """``(name, value)`` of each figure, in the order of the JSON."""
        for field in attrs.fields(GroupRate):
            if field.name in _FIGURES:
                yield field.name, getattr(self, field.name)


@attrs.frozen
class Comparison:
    """The groups of a report compared on the NQF #2483-style measure.

    ``cohort_rate_pct`` is the mean the funnel is centred on (``None`` when the cohort's
    counts are hidden or nobody is eligible); ``cohort_eligible``/``cohort_improving`` are as
    published.
    """

    group_by: str
    cohort_eligible: Value
    cohort_improving: Value
    cohort_rate_pct: float | None
    groups: tuple[GroupRate, ...]
    method: str = "normal approximation (Spiegelhalter 2005); Wilson score intervals"

    @property
    def plotted(self) -> tuple[GroupRate, ...]:
        """The groups drawn in the funnel plot."""
        return tuple(g for g in self.groups if g.plotted)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (the ``site_comparison`` of the JSON summary)."""

        def out(value: Value) -> Any:
            return str(value) if isinstance(value, Suppressed) else value

        return {
            "group_by": self.group_by,
            "measure": "nqf2483",
            "method": self.method,
            "z": {"limit95": Z_95, "limit998": Z_998, "wilson": Z_95},
            "cohort": {
                "eligible": out(self.cohort_eligible),
                "improving": out(self.cohort_improving),
                "rate_pct": self.cohort_rate_pct,
            },
            "groups": [
                {
                    "group": g.group,
                    "suppressed": g.suppressed,
                    **{name: out(v) for name, v in g.figures()},
                    "position": g.position,
                }
                for g in self.groups
            ],
        }


def _position(rate: float, limits95: tuple[float, float], limits998: tuple[float, float]) -> str:
    if rate > limits998[1]:
        return "above-99.8"
    if rate > limits95[1]:
        return "above-95"
    if rate < limits998[0]:
        return "below-99.8"
    if rate < limits95[0]:
        return "below-95"
    return "within"


_FIGURES = (
    "eligible",
    "improving",
    "rate_pct",
    "wilson_low_pct",
    "wilson_high_pct",
    "limit95_low_pct",
    "limit95_high_pct",
    "limit998_low_pct",
    "limit998_high_pct",
)


def _row(name: str, suppressed: bool, values: list[Value], position: str | None) -> GroupRate:
    figures: dict[str, Value] = dict(zip(_FIGURES, values, strict=True))
    return GroupRate(group=name, suppressed=suppressed, position=position, **figures)


def compare_groups(summary: CohortSummary, symbol: str = "*") -> Comparison | None:
    """Compare the groups of ``summary`` (``None`` for an ungrouped summary).

    Pass the *released* summary: a count it hides suppresses its group's row (see above);
    ``symbol`` marks suppressed figures.
    """
    if summary.group_by is None:
        return None
    eligible, improving = summary["nqf2483.denominator"], summary["nqf2483.numerator"]
    p: float | None = None
    cohort_rate: float | None = None
    if isinstance(eligible, int) and isinstance(improving, int) and eligible > 0:
        p, cohort_rate = improving / eligible, percent(improving, eligible)
    mark = Suppressed(symbol)
    rows = []
    for prefix, name in summary.scopes():
        if name is None:
            continue
        n, k = summary[prefix + "nqf2483.denominator"], summary[prefix + "nqf2483.numerator"]
        if not (isinstance(n, int) and isinstance(k, int)):
            rows.append(_row(name, True, [mark] * 9, None))
            continue
        if n == 0:
            rows.append(_row(name, False, [n, k, *[None] * 7], None))
            continue
        wilson = wilson_interval(k, n)
        limits: list[Value] = [None] * 4
        position = None
        if p is not None:
            l95, l998 = control_limits(p, n, Z_95), control_limits(p, n, Z_998)
            limits = [_pct(l95[0]), _pct(l95[1]), _pct(l998[0]), _pct(l998[1])]
            position = _position(k / n, l95, l998)
        figures = [n, k, percent(k, n), _pct(wilson[0]), _pct(wilson[1]), *limits]
        rows.append(_row(name, False, figures, position))
    return Comparison(
        group_by=summary.group_by,
        cohort_eligible=eligible,
        cohort_improving=improving,
        cohort_rate_pct=cohort_rate,
        groups=tuple(rows),
    )
