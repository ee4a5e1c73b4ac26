"""A scored table's levels checked against its scores: one rule for tailoring and reports.

A table is data from anywhere. A row scored 80 with level 1 would be tailored as level 1 and
counted at level 1 in a report, so both refuse a scored row whose ``level`` is not the level of
its ``score`` at its registered ``cutpoint_set``, as scoring refuses such a provider result.
Rows with no score, no set, or a set not registered here are taken as they are: there is
nothing to compare them with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pamlib.errors import Problem, ValidationError

if TYPE_CHECKING:
    from pamlib.levels import CutpointSet

__all__ = ["LEVELS_LISTED", "check_levels", "mismatched_levels"]

#: Rows listed when levels disagree with their scores (the rest are counted).
LEVELS_LISTED = 20
#: Rows compared at a time: the temporaries stay a few megabytes whatever the table's size.
_ROWS_AT_A_TIME = 1 << 20


def check_levels(
    scored: npt.NDArray[np.bool_],
    score: npt.NDArray[np.floating[Any]],
    level: npt.NDArray[np.integer[Any]],
    set_names: Sequence[str],
    set_of: npt.NDArray[np.integer[Any]],
    *,
    cutpoints: Iterable[CutpointSet] | None,
    source: str,
) -> None:
    """Refuse rows whose level is not their score's at their cut-point set.

    Per row: whether it is ``scored``, its ``score`` (NaN where none), its ``level`` (0 where
    none) and its set as an index ``set_of`` into ``set_names`` (names are compared without
    surrounding spaces). ``cutpoints`` are the sets to check against (every registered set;
    ``None`` checks nothing). A :class:`~pamlib.errors.ValidationError` lists the first rows
    (``source: row N``, code ``level-mismatch``) and counts the rest; no value is quoted, as
    an error may be shown to anyone who runs the command.
    """
    count, found = mismatched_levels(
        scored, score, level, set_names, set_of, cutpoints=cutpoints, listed=LEVELS_LISTED
    )
    if not count:
        return
    message = "the level is not the level of the score at the row's cut-point set"
    problems = [Problem(f"{source}: row {i + 1}", "level-mismatch", message) for i in found]
    more = count - len(problems)
    summary = f"{source}: {count:,} row(s) whose level contradicts their score" + (
        f" ({more:,} more not listed)" if more else ""
    )
    raise ValidationError(summary, problems)


def mismatched_levels(
    scored: npt.NDArray[np.bool_],
    score: npt.NDArray[np.floating[Any]],
    level: npt.NDArray[np.integer[Any]],
    set_names: Sequence[str],
    set_of: npt.NDArray[np.integer[Any]],
    *,
    cutpoints: Iterable[CutpointSet] | None,
    listed: int,
) -> tuple[int, list[int]]:
    """How many rows :func:`check_levels` refuses, and the positions of the first ``listed``
    of them: for a caller that names rows its own way (Spark, by their file and row)."""
    if cutpoints is None:
        return 0, []
    known = {c.id: c for c in cutpoints}
    checked = [
        (code, known[name.strip()])
        for code, name in enumerate(set_names)
        if name.strip() in known  # no set, or one not registered here: nothing to compare
    ]
    if not checked:
        return 0, []
    found: list[int] = []
    count = 0
    for start in range(0, len(scored), _ROWS_AT_A_TIME):
        part = slice(start, start + _ROWS_AT_A_TIME)
        has_score = scored[part] & ~np.isnan(score[part])
        bad = np.zeros(len(has_score), dtype=np.bool_)
        for code, cut in checked:
            rows = np.flatnonzero(has_score & (set_of[part] == code))
            bad[rows] = cut.levels(score[part][rows]) != level[part][rows]
        count += int(np.count_nonzero(bad))
        if len(found) < listed:
            found += (np.flatnonzero(bad)[: listed - len(found)] + start).tolist()
    return count, found
