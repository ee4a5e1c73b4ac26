"""Calendar months, clamped to the month's end: the one rule for reassessment dates, tailoring
and the follow-up window of change measures.

31 August + 6 months is 28 (or 29) February; 28 February + 6 months is 28 August. A date and
an array of dates follow the same rule (the scalar form is for one assessment at a time, where
NumPy's per-call cost would dominate); a property test holds them equal.
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import numpy.typing as npt


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months, clamped to the last day of the target month.

    >>> add_months(dt.date(2025, 8, 31), 6), add_months(dt.date(2023, 8, 31), 6)
    (datetime.date(2026, 2, 28), datetime.date(2024, 2, 29))
    >>> add_months(dt.date(2025, 1, 15), 12)
    datetime.date(2026, 1, 15)
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def add_months_array(days: npt.ArrayLike, months: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """:func:`add_months` element-wise over ``datetime64[D]`` (``months`` one number or one per
    day, or ``timedelta64[M]`` where NaT means no date); NaT stays NaT.

    >>> add_months_array(np.array(["2025-08-31", "2024-02-29", "NaT"], "datetime64[D]"), 6)
    array(['2026-02-28', '2024-08-29', 'NaT'], dtype='datetime64[D]')
    """
    d = np.asarray(days, dtype="datetime64[D]")
    m = np.asarray(months, dtype="timedelta64[M]")
    if d.ndim != 1 or len(d) <= _PIECE or m.ndim > 1 or (m.ndim and m.shape != d.shape):
        return _add_months(d, m)
    # a long column a piece at a time: the steps' arrays are a piece's, not the column's
    out = np.empty(len(d), dtype="datetime64[D]")
    for start in range(0, len(d), _PIECE):
        part = slice(start, start + _PIECE)
        out[part] = _add_months(d[part], m[part] if m.ndim else m)
    return out


#: Dates a long column is worked on at a time.
_PIECE = 1 << 16


def _add_months(
    d: npt.NDArray[np.datetime64], months: npt.NDArray[np.timedelta64]
) -> npt.NDArray[np.datetime64]:
    month = d.astype("datetime64[M]")
    target = month + months
    last = (target + 1).astype("datetime64[D]") - 1
    # the same day of the target month, or its last day; NaT propagates through every step
    out: npt.NDArray[np.datetime64] = np.minimum(target.astype("datetime64[D]") + (d - month), last)
    return out
