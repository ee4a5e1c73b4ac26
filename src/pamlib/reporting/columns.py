"""The scored table as columns: read once, typed once, then computed on as NumPy arrays.

A *scored table* is what ``pamlib score`` writes, one row per assessment::

    assessment_id,patient_id,assessed_on,instrument,status,n_answered,raw_score,theta,theta_se,
    score,score_se,level,cutpoint_set,flags,provider,provider_version,calibration_id,
    calibration_sha256,demo[,extra columns such as site]

Every way in — plain Python rows, a pyarrow Table, a CSV or Parquet file — goes through the same
text parser (:meth:`ScoredColumns.from_text`), so the rules cannot drift apart between inputs.
Problems are collected for the whole table and raised together as one
:class:`~pamlib.errors.FormatError` whose locations are row numbers, never identifiers or values.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from pamlib.errors import ConfigurationError, FormatError, Problem
from pamlib.results import SCORED_TABLE_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SCORED_TABLE_COLUMNS", "ScoredColumns", "factorize", "load_scored"]

#: Columns a report cannot do without.
_REQUIRED = ("patient_id", "assessed_on", "status", "score", "level")
#: Columns parsed into typed arrays; every other column is kept as text in ``ScoredColumns.text``.
_TYPED = ("assessment_id", "patient_id", "assessed_on", "status", "score", "level", "flags", "demo")
#: Problems listed in one error before the rest are summarised as a count.
_MAX_PROBLEMS = 50

TextArray = NDArray[np.object_]


#: Strings up to this length are sorted as fixed-width NumPy unicode (about ten times faster
#: than Python objects); a column with a longer value is sorted as objects to bound memory.
_FIXED_WIDTH_LIMIT = 64


def factorize(values: TextArray) -> tuple[TextArray, NDArray[np.int64]]:
    """Sorted distinct strings and, for each value, the index of its string among them."""
    sortable: NDArray[Any] = values
    if len(values) and max(map(len, values)) <= _FIXED_WIDTH_LIMIT:
        sortable = values.astype(str)
    distinct, codes = np.unique(sortable, return_inverse=True)
    return distinct.astype(object), codes.astype(np.int64).reshape(-1)


def _text_array(values: Iterable[str]) -> TextArray:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@attrs.frozen(eq=False, repr=False)
class ScoredColumns:
    """A scored table held as equal-length NumPy arrays, one element per assessment.

    ``score`` is NaN and ``level`` is 0 where the table has no value. ``scored`` is
    ``status == "scored"``. ``text`` holds every column not parsed here (``instrument``,
    ``cutpoint_set``, ``site``, …) as strings, for grouping and provenance.

    Build one with :meth:`from_rows` (tests, small inputs), :meth:`from_arrow` or
    :func:`load_scored`. Its repr shows sizes and column names only, never identifiers.
    """

    assessment_id: TextArray
    patient_id: TextArray
    assessed_on: NDArray[np.datetime64]
    scored: NDArray[np.bool_]
    score: NDArray[np.float64]
    level: NDArray[np.int8]
    flags: TextArray
    demo: NDArray[np.bool_]
    text: Mapping[str, TextArray] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        n = len(self.patient_id)
        arrays = [self.assessment_id, self.assessed_on, self.scored, self.score, self.level]
        arrays += [self.flags, self.demo, *self.text.values()]
        if any(len(a) != n for a in arrays):
            raise ConfigurationError("every column of a scored table must have the same length")

    def __len__(self) -> int:
        return len(self.patient_id)

    def __repr__(self) -> str:
        return f"ScoredColumns(n_rows={len(self)}, text_columns={sorted(self.text)!r})"

    @property
    def usable(self) -> NDArray[np.bool_]:
        """Rows a trajectory may use: scored, with a 0–100 score and a level 1–4."""
        return self.scored & ~np.isnan(self.score) & (self.level > 0)

    @property
    def score_tenths(self) -> NDArray[np.int64]:
        """Scores in integer tenths of a point (0 where missing): change is computed exactly."""
        return np.rint(np.nan_to_num(self.score, nan=0.0) * 10).astype(np.int64)

    def has_flag(self, flag: str) -> NDArray[np.bool_]:
        """Rows whose ``;``-separated ``flags`` contain ``flag``."""
        found = np.zeros(len(self), dtype=np.bool_)
        flagged = np.flatnonzero(self.flags != "")  # most rows have no flags at all
        found[flagged] = [flag in str(f).split(";") for f in self.flags[flagged]]
        return found

    def column(self, name: str) -> TextArray:
        """The text of an untyped column (``site``, ``instrument``, …), for grouping."""
        if name == "patient_id":
            raise ConfigurationError("cannot group by patient_id: groups are of patients")
        if name in self.text:
            return self.text[name]
        raise ConfigurationError(
            f"no column {name!r} to group by; available: {', '.join(sorted(self.text)) or 'none'}"
        )

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]]) -> ScoredColumns:
        """Build from plain rows, e.g. ``{"patient_id": "p1", "assessed_on": "2024-01-31", …}``.

        Values may be strings as in the CSV or Python values (``None``, numbers, ``date``,
        ``bool``). Missing keys are empty. ``assessment_id`` defaults to the row number,
        ``flags`` to none and ``demo`` to false.
        """
        materialised = [dict(r) for r in rows]
        names: dict[str, None] = dict.fromkeys(() if materialised else _REQUIRED)
        for row in materialised:
            names.update(dict.fromkeys(row))
        columns = {name: _text_array(_as_text(r.get(name)) for r in materialised) for name in names}
        return cls.from_text(columns, source="rows", n_rows=len(materialised))

    @classmethod
    def from_arrow(cls, table: pa.Table, *, source: str = "table") -> ScoredColumns:
        """Build from a pyarrow Table (any column types; non-text columns are cast to text)."""
        # pyarrow is an optional extra: imported only when a Table is actually handed over.
        import pyarrow as pa
        import pyarrow.compute as pc

        columns: dict[str, TextArray] = {}
        for name in table.column_names:
            column = table.column(name)
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                column = pc.cast(column, pa.string())
            filled = pc.fill_null(column, "")
            columns[name] = np.asarray(filled.to_numpy(zero_copy_only=False), dtype=object)
        return cls.from_text(columns, source=source, n_rows=table.num_rows)

    @classmethod
    def from_text(
        cls, columns: Mapping[str, TextArray], *, source: str, n_rows: int
    ) -> ScoredColumns:
        """Type a table given as text columns; raise one :class:`FormatError` for all problems.

        ``source`` names the input in problem locations (a file name, ``"rows"``).
        """
        missing = [c for c in _REQUIRED if c not in columns]
        if missing:
            raise FormatError(
                f"{source}: not a scored table",
                [Problem(source, "missing-column", f"no column {c!r}") for c in missing],
            )
        problems = _Problems(source)

        def text(name: str, default: str) -> TextArray:
            if name in columns:
                return np.asarray(columns[name], dtype=object)
            return _text_array(default for _ in range(n_rows))

        patient_id = text("patient_id", "")
        problems.add(patient_id == "", "empty-patient-id", "patient_id is empty")
        if "assessment_id" in columns:
            assessment_id = text("assessment_id", "")
        else:
            assessment_id = _text_array(f"row-{i + 1:09d}" for i in range(n_rows))

        assessed_on = _parse_dates(text("assessed_on", ""), problems)

        status = text("status", "")
        scored = np.asarray(status == "scored", dtype=np.bool_)
        problems.add(
            ~scored & (status != "not-scored"),
            "bad-status",
            "status must be 'scored' or 'not-scored'",
        )

        score = _parse_scores(text("score", ""), problems)
        level = _parse_levels(text("level", ""), problems)

        demo = _parse_booleans(text("demo", ""), problems)
        problems.raise_if_any()
        return cls(
            assessment_id=assessment_id,
            patient_id=patient_id,
            assessed_on=assessed_on,
            scored=scored,
            score=score,
            level=level,
            flags=text("flags", ""),
            demo=demo,
            text={k: np.asarray(v, dtype=object) for k, v in columns.items() if k not in _TYPED},
        )


@attrs.define
class _Problems:
    source: str
    found: list[Problem] = attrs.field(factory=list)
    n_more: int = 0

    def add(self, bad: NDArray[np.bool_], code: str, message: str) -> None:
        rows = np.flatnonzero(bad)
        room = max(0, _MAX_PROBLEMS - len(self.found))
        self.found += [Problem(f"{self.source}: row {i + 1}", code, message) for i in rows[:room]]
        self.n_more += max(0, len(rows) - room)

    def raise_if_any(self) -> None:
        if not self.found:
            return
        summary = f"{self.source}: {len(self.found) + self.n_more} problem(s) in the scored table"
        if self.n_more:
            summary += f" ({self.n_more} more not listed)"
        raise FormatError(summary, self.found)


def _parse_dates(values: TextArray, problems: _Problems) -> NDArray[np.datetime64]:
    """ISO dates ``YYYY-MM-DD``, strictly (numpy alone would accept ``2024`` or ``NaT``)."""
    try:
        dates = values.astype("datetime64[D]")
    except ValueError:  # some value is not a date at all: go row by row
        dates = np.empty(len(values), dtype="datetime64[D]")
        for i, value in enumerate(values):
            try:
                dates[i] = np.datetime64(str(value), "D")
            except ValueError:
                dates[i] = np.datetime64("NaT")
    round_trips = np.asarray(np.datetime_as_string(dates) == values, dtype=np.bool_)
    ok = round_trips & ~np.isnat(dates)
    problems.add(~ok, "bad-date", "assessed_on is not an ISO date (YYYY-MM-DD)")
    dates[~ok] = np.datetime64("NaT")
    return dates


def _parse_scores(values: TextArray, problems: _Problems) -> NDArray[np.float64]:
    empty = np.asarray(values == "", dtype=np.bool_)
    score = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=np.bool_)
    present = np.flatnonzero(~empty)
    try:
        score[present] = values[present].astype(np.float64)
    except ValueError:
        for i in present:
            try:
                score[i] = float(values[i])
            except ValueError:
                bad[i] = True
    with np.errstate(invalid="ignore"):
        out_of_range = ~empty & ~bad & ~((score >= 0) & (score <= 100))
    problems.add(bad | out_of_range, "bad-score", "score must be empty or a number from 0 to 100")
    score[bad | out_of_range] = np.nan
    return score


def _parse_booleans(values: TextArray, problems: _Problems) -> NDArray[np.bool_]:
    """``true``/``false`` in any case, empty meaning false."""
    true = np.asarray(values == "true", dtype=np.bool_)
    other = np.flatnonzero(~true & (values != "false") & (values != ""))
    spelt = np.asarray([str(v).strip().lower() for v in values[other]], dtype=object)
    true[other] = spelt == "true"
    bad = np.zeros(len(values), dtype=np.bool_)
    bad[other] = (spelt != "true") & (spelt != "false") & (spelt != "")
    problems.add(bad, "bad-demo", "demo must be 'true' or 'false'")
    return true


def _parse_levels(values: TextArray, problems: _Problems) -> NDArray[np.int8]:
    level = np.zeros(len(values), dtype=np.int8)
    known = np.asarray(values == "", dtype=np.bool_)
    for n in (1, 2, 3, 4):
        hit = np.asarray(values == str(n), dtype=np.bool_)
        level[hit] = n
        known |= hit
    problems.add(~known, "bad-level", "level must be empty or 1, 2, 3 or 4")
    return level


def load_scored(path: str | os.PathLike[str]) -> ScoredColumns:
    """Read a scored table from CSV (or Parquet, by the ``.parquet`` suffix) with pyarrow.

    CSV columns are all read as strings first and typed afterwards, so a column of dates or
    identifiers is never reinterpreted by type inference. Needs the ``arrow`` extra.
    """
    path = Path(path)
    try:
        import pyarrow.csv as pa_csv
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "reading a scored table needs pyarrow: install pamlib[arrow]"
        ) from None
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return ScoredColumns.from_arrow(pq.read_table(path), source=path.name)

    with path.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh), [])
    if len(set(header)) != len(header):
        raise FormatError(
            f"{path.name}: not a scored table",
            [Problem(f"{path.name}: header", "duplicate-column", "a column name repeats")],
        )
    import pyarrow as pa

    as_text = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
    )
    table = pa_csv.read_csv(path, convert_options=as_text)
    return ScoredColumns.from_arrow(table, source=path.name)
