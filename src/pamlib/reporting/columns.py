"""The scored table as columns: read once, typed once, then computed on as NumPy arrays.

A *scored table* is what ``pamlib score`` writes, one row per assessment::

    assessment_id,patient_id,assessed_on,instrument,status,n_answered,raw_score,theta,theta_se,
    score,score_se,level,cutpoint_set,flags,provider,provider_version,calibration_id,
    calibration_sha256,demo[,extra columns such as site]

Every way in — plain Python rows, a pyarrow Table, a CSV, Parquet or JSON Lines file — goes
through :class:`~pamlib.tables.scored.ScoredTable`, which reports and tailoring share, so the
rules cannot drift apart between inputs or between readers. Problems are collected for the
whole table and raised together as one :class:`~pamlib.errors.FormatError` whose locations
are row numbers, never identifiers or values.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from pamlib.errors import ConfigurationError
from pamlib.reporting.privacy import check_name, is_identifier_name
from pamlib.results import SCORED_TABLE_COLUMNS

if TYPE_CHECKING:
    from pamlib.tables.scored import ScoredTable

__all__ = ["SCORED_TABLE_COLUMNS", "ScoredColumns", "factorize", "load_scored"]

#: Columns a report cannot do without.
_REQUIRED = ("patient_id", "assessed_on", "status", "score", "level")

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
    ``status == "scored"``. ``demo`` follows from the provider, the calibration, the flags and
    the ``demo`` column (see :func:`~pamlib.tailoring.context.demo_evidence`). ``text`` holds
    every column but the identifiers (``instrument``, ``cutpoint_set``, ``site``, ``level``, …)
    as the table's strings, for grouping and provenance.

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
    #: Some patients are keyed by an NHS number that was not kept as a column (see
    #: :attr:`~pamlib.tables.scored.ScoredTable.links_by_private_nhs_number`).
    private_nhs_keys: bool = False

    def __attrs_post_init__(self) -> None:
        n = len(self.patient_id)
        arrays = [self.assessment_id, self.assessed_on, self.scored, self.score, self.level]
        arrays += [self.flags, self.demo]
        if not isinstance(self.text, _TextColumns):  # a table's columns have its length
            arrays += list(self.text.values())
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
        """The text of a column (``site``, ``instrument``, ``level``, …), for grouping.

        Raises :class:`~pamlib.reporting.privacy.IdentifyingColumnError` for an identifier
        column (``patient_id``, ``nhs_number``, ``date_of_birth``, …): see
        :mod:`pamlib.reporting.privacy`.
        """
        check_name(name)
        if name in self.text:
            return self.text[name]
        available = sorted(c for c in self.text if not is_identifier_name(c))
        raise ConfigurationError(
            f"no column {name!r} to group by; available: {', '.join(available) or 'none'}"
        )

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]]) -> ScoredColumns:
        """Build from plain rows, e.g. ``{"patient_id": "p1", "assessed_on": "2024-01-31", …}``.

        Values may be strings as in the CSV or Python values (``None``, numbers, ``date``,
        ``bool``). Missing keys are empty. ``assessment_id`` defaults to the row number,
        ``flags`` to none and ``demo`` to false. Problems are located at ``rows: row N``.
        """
        import pyarrow as pa

        materialised = [dict(r) for r in rows]
        names: dict[str, None] = dict.fromkeys(() if materialised else _REQUIRED)
        for row in materialised:
            names.update(dict.fromkeys(row))
        columns = {
            name: pa.array([_as_text(r.get(name)) for r in materialised], pa.string())
            for name in names
        }
        return cls.from_arrow(pa.table(columns), source="rows")

    @classmethod
    def from_arrow(cls, table: object, *, source: str = "table") -> ScoredColumns:
        """Build from a pyarrow Table, or anything :meth:`ScoredTable.from_arrow
        <pamlib.tables.scored.ScoredTable.from_arrow>` takes (typed or text columns)."""
        from pamlib.tables.scored import ScoredTable

        return cls.from_scored(ScoredTable.from_arrow(table, source=source))

    @classmethod
    def from_scored(cls, table: ScoredTable) -> ScoredColumns:
        """Build from a checked :class:`~pamlib.tables.scored.ScoredTable`, from its typed
        columns (nothing is parsed again). A patient is its
        :meth:`~pamlib.tables.scored.ScoredTable.patient_keys` key; rows with no
        ``assessment_id`` get their row number."""
        import pyarrow.compute as pc

        n = len(table)
        ids = _column_text(table.column("assessment_id"))
        missing = np.flatnonzero(ids == "")
        ids[missing] = [f"row-{i + 1:09d}" for i in missing.tolist()]
        level = pc.fill_null(table.column("level"), 0).to_numpy()
        days = table.column("assessed_on").to_numpy()
        return cls(
            assessment_id=ids,
            patient_id=table.patient_keys(),
            assessed_on=np.asarray(days, dtype="datetime64[D]").reshape(n),
            scored=np.asarray(_column_text(table.column("status")) == "scored", dtype=np.bool_),
            score=np.asarray(
                pc.fill_null(table.column("score"), np.nan).to_numpy(), dtype=np.float64
            ),
            level=np.asarray(level, dtype=np.int8),
            flags=_column_text(pc.binary_join(table.column("flags"), ";")),
            demo=np.asarray(table.column("demo").to_numpy(), dtype=np.bool_),
            text=_TextColumns(table, [c for c in table.column_names if not is_identifier_name(c)]),
            private_nhs_keys=table.links_by_private_nhs_number,
        )


def _column_text(column: Any) -> TextArray:
    """A column as the table's strings (``""`` where null): floats positional (never ``1e-05``),
    lists ``;``-joined, booleans ``true``/``false``, dates ISO."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(column.type):
        values = np.asarray(pc.fill_null(column, np.nan).to_numpy(), dtype=np.float64)
        return _text_array(
            "" if math.isnan(v) else np.format_float_positional(v, trim="-")
            for v in values.tolist()
        )
    if pa.types.is_list(column.type):
        column = pc.binary_join(column, ";")
    elif pa.types.is_boolean(column.type):
        column = pc.if_else(column, "true", "false")
    elif not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return np.asarray(pc.fill_null(column, "").to_numpy(zero_copy_only=False), dtype=object)


class _TextColumns(Mapping[str, TextArray]):
    """The text of a table's groupable columns, each converted on first use (a report groups
    by one column or none, so converting all of them up front would be wasted)."""

    def __init__(self, table: ScoredTable, names: list[str]) -> None:
        self._table = table
        self._names = names
        self._cache: dict[str, TextArray] = {}

    def __getitem__(self, name: str) -> TextArray:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._cache:
            self._cache[name] = _column_text(self._table.column(name))
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def load_scored(path: str | os.PathLike[str]) -> ScoredColumns:
    """Read a scored table from CSV, Parquet (``.parquet``, ``.pq``) or JSON Lines (``.jsonl``,
    ``.ndjson``, ``.json``) — every format ``pamlib score`` writes — as
    :meth:`ScoredTable.read <pamlib.tables.scored.ScoredTable.read>` does (which see for the
    errors).
    """
    from pamlib.tables.scored import ScoredTable

    return ScoredColumns.from_scored(ScoredTable.read(path))
