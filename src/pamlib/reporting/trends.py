"""Activation over time: level mix and mean score by calendar quarter of assessment.

Two views, both over the whole cohort (not per group):

* ``all``: every *usable* assessment (scored, with a 0–100 score and a level), by the quarter
  it was taken in; a patient assessed twice in a quarter counts twice.
* ``baseline``: each patient's baseline assessment only, by the quarter of the baseline; the
  quarters add up to ``n_baseline`` and, level by level, to ``levels_baseline``.

For each quarter (``2024-Q1`` is January to March 2024) the figures are the count ``n``, the
count and share of each level 1–4 (``levels``/``levels_pct``) and the mean score
(``mean_score``). They are keys of the :class:`~pamlib.reporting.CohortSummary`
(``trends.baseline.2024-Q1.levels.2``), with their additive identities (a quarter's ``n`` is the
sum of its levels; the baseline quarters sum to the cohort's baseline figures), so small-number
suppression treats them like every other count: a hidden quarter count hides its mean and
shares, a hidden level cell its share, and secondary suppression keeps either from being
recomputed from the totals. Only quarters with at least one usable assessment are listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from pamlib._arrays import sorted_unique
from pamlib.reporting._columns import ScoredColumns
from pamlib.reporting._rounding import mean_points as _mean
from pamlib.reporting._rounding import percent as _pct
from pamlib.reporting._trajectories import Trajectories

__all__ = [
    "KINDS",
    "TrendFigures",
    "quarter_codes",
    "quarter_label",
    "trend_figures",
    "trend_figures_from_sums",
    "trend_quarters",
    "trend_sums",
    "trends_json",
]

#: The two views: every usable assessment, and baselines only.
KINDS = ("all", "baseline")
_LEVELS = ("1", "2", "3", "4")


def quarter_codes(days: NDArray[np.datetime64]) -> NDArray[np.int64]:
    """Each day's calendar quarter as ``year * 4 + quarter - 1`` (sortable, one per quarter)."""
    months = days.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    return (months // 3 + 1970 * 4).astype(np.int64)


def quarter_label(code: int) -> str:
    """``2024-Q1`` for a code of :func:`quarter_codes`.

    >>> quarter_label(2024 * 4), quarter_label(2024 * 4 + 3)
    ('2024-Q1', '2024-Q4')
    """
    return f"{code // 4}-Q{code % 4 + 1}"


@attrs.frozen(repr=False)
class TrendFigures:
    """The trend keys, counts, derived values and identities to merge into a summary.

    ``quarters`` are the labels in calendar order; the other fields are filled by
    :func:`trend_figures`.
    """

    quarters: tuple[str, ...]
    values: dict[str, int | float | None] = attrs.field(factory=dict)
    counts: list[str] = attrs.field(factory=list)
    derived: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    identities: list[tuple[tuple[str, ...], tuple[str, ...]]] = attrs.field(factory=list)

    def __repr__(self) -> str:
        return f"TrendFigures(quarters={self.quarters!r}, n_values={len(self.values)})"


def _add_kind(out: TrendFigures, kind: str, sums: Mapping[str, int], codes: list[int]) -> None:
    for code, label in zip(codes, out.quarters, strict=True):
        key = f"trends.{kind}.{label}"
        part = f"{kind}.{code}"
        count = int(sums.get(f"{part}.n", 0))
        by_level = {lv: int(sums.get(f"{part}.levels.{lv}", 0)) for lv in _LEVELS}
        out.values[f"{key}.n"] = count
        out.counts.append(f"{key}.n")
        for lv in _LEVELS:
            out.values[f"{key}.levels.{lv}"] = by_level[lv]
            out.counts.append(f"{key}.levels.{lv}")
        for lv in _LEVELS:
            out.values[f"{key}.levels_pct.{lv}"] = _pct(by_level[lv], count)
            out.derived[f"{key}.levels_pct.{lv}"] = (f"{key}.levels.{lv}", f"{key}.n")
        out.values[f"{key}.mean_score"] = _mean(count, int(sums.get(f"{part}.total", 0)))
        out.derived[f"{key}.mean_score"] = (f"{key}.n",)
        out.identities.append(((f"{key}.n",), tuple(f"{key}.levels.{lv}" for lv in _LEVELS)))


#: Rows counted at a time (each makes a few temporaries of 8 bytes a row).
_CHUNK = 1 << 18


def _split(rows: NDArray[np.int32]) -> list[NDArray[np.int32]]:
    return [rows[start : start + _CHUNK] for start in range(0, len(rows), _CHUNK)]


def _count(
    columns: ScoredColumns, rows: NDArray[np.int32], quarters: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Per quarter of ``quarters``: how many of ``rows``, their total score in tenths, and how
    many at each level (exact: sums of integers below 2**53 in float64)."""
    size = len(quarters)
    quarter = np.searchsorted(quarters, quarter_codes(columns.assessed_on[rows]))
    from pamlib.levels import round_half_away_array

    tenths = np.rint(round_half_away_array(np.nan_to_num(columns.score[rows], nan=0.0), 1) * 10)
    level = columns.level[rows]
    return np.array(
        [
            np.bincount(quarter, minlength=size),
            np.bincount(quarter, weights=tenths, minlength=size),
            *(np.bincount(quarter[level == int(lv)], minlength=size) for lv in _LEVELS),
        ],
        dtype=np.float64,
    ).reshape(2 + len(_LEVELS), size)


def trend_sums(traj: Trajectories) -> dict[str, int]:
    """The additive part of the trend figures: for each view and calendar quarter (by its
    :func:`quarter_codes` code), ``<view>.<code>.n``, ``….levels.<1-4>`` and ``….total`` (the
    scores' sum in tenths of a point). The sums of parts of a cohort that share no patient are
    the whole's; :func:`trend_figures_from_sums` makes the figures.

    Counted a million rows at a time: whole-table 64-bit copies would cost more memory than the
    table holds.
    """
    columns = traj.columns
    baseline = traj.baseline_row[traj.has_baseline]
    mask = columns.usable
    # Made a million rows at a time as they are counted: all of them at once would hold 4
    # bytes a usable row.
    usable = (
        start + np.flatnonzero(mask[start : start + _CHUNK]).astype(np.int32)
        for start in range(0, len(columns), _CHUNK)
    )
    out: dict[str, int] = {}
    for kind, parts in (("all", usable), ("baseline", _split(baseline))):
        for rows in parts:
            quarters = sorted_unique(quarter_codes(columns.assessed_on[rows]))
            counts = _count(columns, rows, quarters)
            for j, code in enumerate(quarters.tolist()):
                key = f"{kind}.{code}"
                out[f"{key}.n"] = out.get(f"{key}.n", 0) + int(counts[0, j])
                out[f"{key}.total"] = out.get(f"{key}.total", 0) + round(float(counts[1, j]))
                for k, lv in enumerate(_LEVELS):
                    name = f"{key}.levels.{lv}"
                    out[name] = out.get(name, 0) + int(counts[2 + k, j])
    return out


def trend_figures(traj: Trajectories) -> TrendFigures:
    """The trend figures of a cohort's assessments (see the module's docstring)."""
    return trend_figures_from_sums(trend_sums(traj))


def trend_figures_from_sums(sums: Mapping[str, int]) -> TrendFigures:
    """The trend figures from a cohort's :func:`trend_sums`: every quarter with a usable
    assessment, in calendar order."""
    # every baseline is a usable assessment: the quarters are those of the "all" view
    codes = sorted(
        {
            int(k.split(".")[1])
            for k, v in sums.items()
            if k.startswith("all.") and k.endswith(".n") and v
        }
    )
    out = TrendFigures(quarters=tuple(quarter_label(c) for c in codes))
    for kind in KINDS:
        _add_kind(out, kind, sums, codes)
    # The baseline quarters add up to the cohort's baseline figures.
    quarters: Sequence[str] = out.quarters
    if quarters:
        out.identities.append((("n_baseline",), tuple(f"trends.baseline.{q}.n" for q in quarters)))
        # Every usable assessment is in one quarter of the "all" view: those quarters add up
        # to the published n_assessments_used, or one hidden quarter is the total less the rest.
        out.identities.append(
            (("n_assessments_used",), tuple(f"trends.all.{q}.n" for q in quarters))
        )
        out.identities.extend(
            [
                (
                    (f"levels_baseline.{lv}",),
                    tuple(f"trends.baseline.{q}.levels.{lv}" for q in quarters),
                )
                for lv in _LEVELS
            ]
        )
    return out


def trend_quarters(keys: Iterable[str]) -> tuple[str, ...]:
    """The quarters of a summary's trend keys, in calendar order."""
    found: dict[str, None] = {}
    for key in keys:
        if key.startswith("trends.all."):
            found[key.split(".")[2]] = None
    return tuple(found)  # the summary lists them in calendar order


def trends_json(nested: Mapping[str, Any], quarters: Sequence[str]) -> dict[str, Any]:
    """The ``trends`` of the JSON summary: ``quarters`` in order, then ``all`` and ``baseline``
    keyed by quarter (both empty when there is no usable assessment)."""
    return {"quarters": list(quarters), **{kind: dict(nested.get(kind, {})) for kind in KINDS}}
