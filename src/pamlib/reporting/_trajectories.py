"""Per-patient trajectories: a baseline, a follow-up in the window, and the change between them.

Rules (also in ``docs/reporting.rst``):

* A patient's assessments are put in time order: by ``assessed_on``, then ``assessment_id``,
  then input order. Only *usable* assessments count: status ``scored`` with a 0–100 score and
  a level (a raw-sum result has no 0–100 score and is not usable for change).
* **Baseline** is the first usable assessment.
* **Follow-up** is the *last* usable assessment dated from ``baseline + min_months`` to
  ``baseline + max_months``, both ends included (default 6 and 12).
* Months are **calendar months**: the same day of the month ``n`` months later, or the last
  day of that month when it is shorter (31 August + 6 months = 28 or 29 February).
* Ties on the same date are broken by ``assessment_id`` (then input order): the baseline is
  the smallest of the earliest day, the follow-up the largest of the latest day in the window.
* Change is computed in integer tenths of a point, so ``50.1 - 47.1`` is exactly ``3.0``.
  Improved means ``change >= threshold``, declined ``change <= -threshold``, else stable.

All of it is vectorised over the whole table; :class:`Trajectory` objects are made only when
one patient is asked for.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from pamlib._arrays import sorted_unique
from pamlib._months import add_months as _add_months
from pamlib._months import add_months_array
from pamlib.errors import PamlibError
from pamlib.levels import round_half_away, round_half_away_array
from pamlib.reporting._columns import (
    ScoredColumns,
    TextArray,
    factorize,
    factorize_text,
    take_text,
)
from pamlib.reporting._config import ReportConfig
from pamlib.tables.scored import release_freed_memory

if TYPE_CHECKING:
    import pyarrow as pa


class UnknownPatientError(PamlibError, KeyError):
    """The table has no assessment for the patient asked for (the id is not repeated here)."""


class Classification(enum.StrEnum):
    """Change from baseline to follow-up against the configured threshold."""

    IMPROVED = "improved"
    STABLE = "stable"
    DECLINED = "declined"


#: Classification codes used in the columnar arrays; 0 means no follow-up.
CLASSIFICATION_CODES: dict[int, Classification] = {
    1: Classification.IMPROVED,
    2: Classification.STABLE,
    3: Classification.DECLINED,
}

Days = NDArray[np.datetime64]

#: Rows whose follow-up window is checked at a time (:func:`link_trajectories`).
_WINDOW_ROWS = 1 << 20


def add_months(days: Days, months: int) -> Days:
    """Add calendar months to an array of ``datetime64[D]``, clamping to the month's end
    (:func:`pamlib._months.add_months_array`); ``NaT`` stays ``NaT``."""
    return add_months_array(days, months)


def add_calendar_months(day: dt.date, months: int) -> dt.date:
    """One date plus ``months`` calendar months (the rule the follow-up window uses:
    :func:`pamlib._months.add_months`).

    >>> add_calendar_months(dt.date(2024, 8, 31), 6)
    datetime.date(2025, 2, 28)
    """
    return _add_months(day, months)


@attrs.frozen
class AssessmentRef:
    """One assessment as a trajectory uses it. The id is kept out of the repr."""

    assessment_id: str = attrs.field(repr=False)
    assessed_on: dt.date
    score: float
    level: int
    flags: tuple[str, ...] = ()


@attrs.frozen
class Trajectory:
    """One patient's baseline, follow-up and change. The patient id is kept out of the repr."""

    patient_id: str = attrs.field(repr=False)
    n_assessments: int
    baseline: AssessmentRef | None
    followup: AssessmentRef | None
    change: float | None
    classification: Classification | None

    @property
    def transition(self) -> tuple[int, int] | None:
        """``(baseline level, follow-up level)`` when there is a follow-up."""
        if self.baseline is None or self.followup is None:
            return None
        return (self.baseline.level, self.followup.level)


def _run_starts(keys: NDArray[Any]) -> NDArray[np.bool_]:
    """True where a run of equal keys begins."""
    starts = np.ones(len(keys), dtype=np.bool_)
    starts[1:] = keys[1:] != keys[:-1]
    return starts


def _run_ends(keys: NDArray[Any]) -> NDArray[np.bool_]:
    """True where a run of equal keys ends."""
    ends = np.ones(len(keys), dtype=np.bool_)
    ends[:-1] = keys[1:] != keys[:-1]
    return ends


@attrs.frozen(eq=False, repr=False)
class Trajectories:
    """Every patient's trajectory, as arrays indexed by patient (patients sorted by id).

    ``baseline_row``/``followup_row`` index rows of ``columns``; ``-1`` means none.
    ``first_row`` is the patient's earliest assessment of any status. Levels (1–4) and scores
    (in integer tenths of a point) at baseline and follow-up are 0 where there is none. Every
    array is ``int32``: a cohort of ten million fits in half the memory.
    """

    columns: ScoredColumns
    config: ReportConfig
    #: Patient keys, sorted (an Arrow string array: identifiers, never printed).
    patient_id: pa.Array
    row_patient: NDArray[np.int32]
    n_assessments: NDArray[np.int32]
    #: Of each patient's assessments, those usable (see the module) and those not scored; the
    #: rest are scored without a 0–100 score and a level.
    n_used: NDArray[np.int32]
    n_not_scored: NDArray[np.int32]
    first_row: NDArray[np.int32]
    baseline_row: NDArray[np.int32]
    followup_row: NDArray[np.int32]
    baseline_level: NDArray[np.int32]
    followup_level: NDArray[np.int32]
    baseline_tenths: NDArray[np.int32]
    followup_tenths: NDArray[np.int32]

    def __len__(self) -> int:
        return len(self.patient_id)

    def __repr__(self) -> str:
        return (
            f"Trajectories(n_patients={len(self)}, n_baseline={int(self.has_baseline.sum())}, "
            f"n_followup={int(self.has_followup.sum())})"
        )

    @property
    def has_baseline(self) -> NDArray[np.bool_]:
        return self.baseline_row >= 0

    @property
    def has_followup(self) -> NDArray[np.bool_]:
        return self.followup_row >= 0

    @property
    def change_tenths(self) -> NDArray[np.int64]:
        """Follow-up minus baseline in tenths of a point, 0 where there is no follow-up."""
        change = self.followup_tenths - self.baseline_tenths
        return np.where(self.has_followup, change, 0)

    @property
    def classification(self) -> NDArray[np.int8]:
        """Codes of :data:`CLASSIFICATION_CODES` (1 improved, 2 stable, 3 declined; 0 none)."""
        codes = _classify(self.change_tenths, self.config.threshold_tenths)
        return np.where(self.has_followup, codes, 0).astype(np.int8)

    def group_values(self, column: str) -> TextArray:
        """Each patient's value of ``column``: at the baseline, else at the first assessment."""
        distinct, codes = self.columns.column_codes(column)
        rows = np.where(self.has_baseline, self.baseline_row, self.first_row)
        return np.asarray(distinct[codes[rows]], dtype=object)

    def group_codes(self, column: str) -> tuple[TextArray, NDArray[np.signedinteger[Any]]]:
        """:meth:`group_values` factorized: the sorted distinct values patients have and each
        patient's index among them, in the smallest integer type that holds them (no string
        made per patient)."""
        distinct, codes = self.columns.column_codes(column)
        rows = np.where(self.has_baseline, self.baseline_row, self.first_row)
        chosen = codes[rows]
        del rows
        used = sorted_unique(chosen)
        renumber = np.zeros(len(distinct), dtype=chosen.dtype)
        renumber[used] = np.arange(len(used))
        return distinct[used], renumber[chosen]

    def index_of(self, patient_id: str) -> int:
        """The position of a patient in these arrays."""
        lo, hi = 0, len(self)
        while lo < hi:  # binary search: the keys are sorted
            mid = (lo + hi) // 2
            if self.patient_id[mid].as_py() < patient_id:
                lo = mid + 1
            else:
                hi = mid
        i = lo
        if i == len(self) or self.patient_id[i].as_py() != patient_id:
            raise UnknownPatientError("no assessment for that patient in the table")
        return i

    def for_patient(self, patient_id: str) -> Trajectory:
        """One patient's :class:`Trajectory`."""
        return self._trajectory(self.index_of(patient_id))

    def __iter__(self) -> Iterator[Trajectory]:
        return (self._trajectory(i) for i in range(len(self)))

    def _ref(self, row: int) -> AssessmentRef | None:
        if row < 0:
            return None
        cols = self.columns
        day: dt.date = cols.assessed_on[row].astype(dt.date)
        return AssessmentRef(
            assessment_id=cols.assessment_id[row].as_py(),
            assessed_on=day,
            score=round_half_away(float(cols.score[row]), 1),  # as the change is computed
            level=int(cols.level[row]),
            flags=tuple(f for f in cols.flags[row].as_py().split(";") if f),
        )

    def _trajectory(self, i: int) -> Trajectory:
        change, classification = None, None
        if self.followup_row[i] >= 0:  # one patient: scalars, not whole-cohort arrays
            tenths = int(self.followup_tenths[i] - self.baseline_tenths[i])
            code = int(_classify(np.array([tenths]), self.config.threshold_tenths)[0])
            change, classification = tenths / 10, CLASSIFICATION_CODES[code]
        return Trajectory(
            patient_id=self.patient_id[i].as_py(),
            n_assessments=int(self.n_assessments[i]),
            baseline=self._ref(int(self.baseline_row[i])),
            followup=self._ref(int(self.followup_row[i])),
            change=change,
            classification=classification,
        )


def _classify(change: NDArray[np.signedinteger[Any]], threshold: int) -> NDArray[np.int8]:
    """1 improved (``>= threshold``), 3 declined (``<= -threshold``), else 2 (stable). One
    byte a patient: nested ``np.where`` made two 8-byte arrays a patient."""
    codes = np.full(change.shape, 2, dtype=np.int8)
    codes[change <= -threshold] = 3
    codes[change >= threshold] = 1  # improved wins where both hold (a threshold of 0)
    return codes


def _time_order(
    row_patient: NDArray[np.int32], days: NDArray[np.int64], columns: ScoredColumns
) -> NDArray[np.int32]:
    """Rows by patient, then day, then ``assessment_id``, then input order."""
    n = len(days)
    lo = int(days.min()) if n else 0
    span = int(days.max()) - lo if n else 0
    row_bits = max(n - 1, 1).bit_length()
    day_bits = max(span, 1).bit_length()
    patient_bits = max(int(row_patient.max(initial=0)), 1).bit_length()
    if n and patient_bits + day_bits + row_bits <= 63:
        # Patient, day and row packed in one 64-bit key, sorted in place: no index array of
        # 8 bytes a row, as an argsort would make. Built in place, the row numbers a million
        # at a time: each whole-column temporary would be 8 bytes a row.
        key = row_patient.astype(np.int64)
        key <<= day_bits
        key += days
        key -= lo
        key <<= row_bits
        for start in range(0, n, _WINDOW_ROWS):
            stop = min(start + _WINDOW_ROWS, n)
            key[start:stop] |= np.arange(start, stop, dtype=np.int64)
        key.sort()
        order = np.empty(n, dtype=np.int32)
        for start in range(0, n, _WINDOW_ROWS):
            stop = min(start + _WINDOW_ROWS, n)
            order[start:stop] = key[start:stop] & ((1 << row_bits) - 1)
        key >>= row_bits  # patient and day
        same = key[1:] == key[:-1]
        del key
    else:
        if n and span < 2**32:
            # One 64-bit key a row, sorted once: a lexsort of two keys takes twice the memory.
            key = row_patient.astype(np.int64)
            key <<= 32
            key += days
            key -= lo
            order = np.argsort(key, kind="stable").astype(np.int32)
            del key
        else:  # dates beyond any real one (NaT): rare, two keys
            order = np.lexsort((days, row_patient)).astype(np.int32)
        by_patient = row_patient[order]
        day_sorted = days[order]
        same = (by_patient[1:] == by_patient[:-1]) & (day_sorted[1:] == day_sorted[:-1])
        del by_patient, day_sorted
    if same.any():
        # Same patient, same day (rare): those runs ordered by assessment_id, then input order
        # (the sort is stable, so a run's rows are already in input order).

        tied = np.zeros(n, dtype=np.bool_)
        tied[1:] = same
        tied[:-1] |= same
        positions = np.flatnonzero(tied)
        rows = order[positions]
        ids = take_text(columns.assessment_id, rows)
        id_rank = factorize(np.asarray(ids.to_pylist(), dtype=object))[1]
        continues = np.zeros(len(positions), dtype=np.bool_)  # the run of the row before
        inner = positions > 0
        continues[inner] = same[positions[inner] - 1]
        run = np.cumsum(~continues)
        order[positions] = rows[np.lexsort((id_rank, run))]
    return order


def _count(codes: NDArray[np.int32], size: int) -> NDArray[np.int32]:
    """How many times each of ``0 … size - 1`` occurs in ``codes``, counted a million at a
    time: ``bincount`` makes a 64-bit copy of what it counts."""
    counts = np.zeros(size, dtype=np.int32)
    for start in range(0, len(codes), _WINDOW_ROWS):
        counts += np.bincount(codes[start : start + _WINDOW_ROWS], minlength=size).astype(np.int32)
    return counts


def _in_window(
    part: slice,
    *,
    days: NDArray[np.int64],
    rows: NDArray[np.int32],
    patients: NDArray[np.int32],
    low: NDArray[np.int32],
    high: NDArray[np.int32],
) -> NDArray[np.bool_]:
    """Whether the rows ``part`` of ``rows`` are dated within their patients' windows."""
    day, patient = days[rows[part]], patients[part]
    return (day >= low[patient]) & (day <= high[patient])


def _keep(
    arrays: tuple[NDArray[np.int32], NDArray[np.int32]],
    test: Callable[[Any], NDArray[np.bool_]],
    index: NDArray[np.int32] | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """The elements of two equal-length arrays that pass ``test``, in order, moved to the
    front of the arrays themselves (which are overwritten) a million at a time: a mask of the
    whole arrays, or copies of what is kept, would take another few bytes an element.
    ``test`` is given a slice of the arrays, or the values of ``index`` there when given."""
    first, second = arrays
    kept = 0
    for start in range(0, len(first), _WINDOW_ROWS):
        part = slice(start, start + _WINDOW_ROWS)
        passed = test(part if index is None else index[part])
        found = int(passed.sum())
        first[kept : kept + found] = first[part][passed]
        second[kept : kept + found] = second[part][passed]
        kept += found
    return first[:kept], second[:kept]


def link_trajectories(columns: ScoredColumns, config: ReportConfig | None = None) -> Trajectories:
    """Link each patient's assessments and choose baseline and follow-up (module rules)."""
    config = config or ReportConfig()
    if len(columns) >= 2**31 - 1:
        raise PamlibError("a report links at most 2,147,483,646 assessments at a time")
    # Rows, patients and day numbers fit 32 bits: ten million assessments link in a few
    # hundred MiB.
    patients, codes = factorize_text(columns.patient_id)
    row_patient = codes.astype(np.int32, copy=False)
    del codes
    release_freed_memory()  # what Arrow sorted the keys with, before the rows are sorted
    n_patients = len(patients)
    days = columns.assessed_on.view(np.int64)  # day numbers, no copy
    order = _time_order(row_patient, days, columns)

    by_patient = row_patient[order]
    first_row = np.full(n_patients, -1, dtype=np.int32)
    starts = _run_starts(by_patient)
    first_row[by_patient[starts]] = order[starts]
    del starts

    # Usable rows in time order, with their patients and rows: kept in place, a million rows
    # at a time (a mask of the whole column, or copies of the kept rows, would each cost
    # another few bytes a row).
    usable_patient, usable_row = _keep(
        (by_patient, order),
        lambda rows: (
            columns.scored[rows] & ~np.isnan(columns.score[rows]) & (columns.level[rows] > 0)
        ),
        order,
    )
    del by_patient, order
    n_used = _count(usable_patient, n_patients)
    n_not_scored = np.zeros(n_patients, dtype=np.int32)
    for start in range(0, len(row_patient), _WINDOW_ROWS):
        part = slice(start, start + _WINDOW_ROWS)
        unscored = row_patient[part][~columns.scored[part]]
        n_not_scored += np.bincount(unscored, minlength=n_patients).astype(np.int32)

    baseline_row = np.full(n_patients, -1, dtype=np.int32)
    starts = _run_starts(usable_patient)
    baseline_row[usable_patient[starts]] = usable_row[starts]
    del starts

    def window_day(months: int) -> NDArray[np.int32]:
        # Per patient, as day numbers; a patient with no baseline has no usable rows. A
        # quarter of a million patients at a time: the calendar arithmetic makes several
        # 8-byte arrays (and the baseline days of all patients would be another).
        out = np.zeros(n_patients, dtype=np.int32)
        step = _WINDOW_ROWS // 4
        for start in range(0, n_patients, step):
            rows = baseline_row[start : start + step]
            day = np.where(
                rows >= 0, columns.assessed_on[np.maximum(rows, 0)], np.datetime64("NaT")
            )
            edge = add_months(day.astype("datetime64[D]"), months)
            out[start : start + step] = np.where(np.isnat(edge), 0, edge.view(np.int64))
        return out

    low, high = window_day(config.min_months), window_day(config.max_months)

    # Kept in place: usable rows whose day is in their patient's window.
    candidate_patient, candidate_row = _keep(
        (usable_patient, usable_row),
        functools.partial(
            _in_window, days=days, rows=usable_row, patients=usable_patient, low=low, high=high
        ),
    )
    del usable_patient, usable_row, low, high
    followup_row = np.full(n_patients, -1, dtype=np.int32)
    ends = _run_ends(candidate_patient)
    followup_row[candidate_patient[ends]] = candidate_row[ends]
    del candidate_patient, candidate_row, ends

    def at(values: NDArray[Any], rows: NDArray[np.int32]) -> NDArray[np.int32]:
        return np.where(rows >= 0, values[np.maximum(rows, 0)], 0).astype(np.int32)

    def tenths_at(rows: NDArray[np.int32]) -> NDArray[np.int32]:
        # Only the chosen rows, a quarter of a million at a time: the whole column in tenths
        # would take 8 bytes a row, and each step of the arithmetic 8 bytes a patient.
        out = np.zeros(len(rows), dtype=np.int32)
        step = _WINDOW_ROWS // 4
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            score = np.nan_to_num(columns.score[np.maximum(part, 0)], nan=0.0)
            # half away from zero, as every pamlib score is rounded (np.rint rounds half to
            # even: 40.25 would be 40.2, and a 2.9-point gain counted as 3.0)
            tenths = np.rint(round_half_away_array(score, 1) * 10)
            out[start : start + step] = np.where(part >= 0, tenths, 0)
        return out

    return Trajectories(
        columns=columns,
        config=config,
        patient_id=patients,
        row_patient=row_patient,
        n_assessments=_count(row_patient, n_patients),
        n_used=n_used,
        n_not_scored=n_not_scored,
        first_row=first_row,
        baseline_row=baseline_row,
        followup_row=followup_row,
        baseline_level=at(columns.level, baseline_row),
        followup_level=at(columns.level, followup_row),
        baseline_tenths=tenths_at(baseline_row),
        followup_tenths=tenths_at(followup_row),
    )
