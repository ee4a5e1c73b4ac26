"""One rounding rule for every figure of a report: one decimal, half away from zero.

pamlib rounds every score half away from zero (:func:`~pamlib.levels.round_half_away`), as a
spreadsheet's ``ROUND`` does; Python's :func:`round` rounds a float half to even, so 1 of 16
patients (6.25 %) was published as 6.2 % where an analyst checking the figure gets 6.3 %.
A ratio of counts or sums in tenths is rounded exactly, in integers, so no float error can
move a figure across a half.
"""

from __future__ import annotations

from pamlib.levels import round_half_away


def one_decimal(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` to one decimal, half away from zero, computed exactly
    (``denominator`` positive); never ``-0.0``.

    >>> one_decimal(100, 16), one_decimal(-5, 2), one_decimal(-1, 100)
    (6.3, -2.5, 0.0)
    """
    tenths = (20 * abs(numerator) + denominator) // (2 * denominator)
    return -tenths / 10 if numerator < 0 and tenths else tenths / 10


def percent(count: int, of: int) -> float | None:
    """``count`` as a percentage of ``of``, to one decimal (``None`` when ``of`` is 0)."""
    return one_decimal(100 * count, of) if of else None


def mean_points(n: int, total_tenths: int) -> float | None:
    """The mean in points of ``n`` values summing to ``total_tenths`` tenths of a point."""
    return one_decimal(total_tenths, 10 * n) if n else None


def rounded(value: float) -> float:
    """A computed (irrational) figure such as an SD or an interval, to one decimal, half away
    from zero as the exact figures are; never ``-0.0``."""
    return round_half_away(value, 1) + 0.0
