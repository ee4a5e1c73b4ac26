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

import math
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.typing import NDArray

from pamlib.errors import ConfigurationError
from pamlib.reporting._privacy import check_name, is_identifier_name
from pamlib.tables.scored import BLOCK_ROWS, release_freed_memory

if TYPE_CHECKING:
    import pyarrow as pa

    from pamlib.levels import CutpointSet
    from pamlib.tables.scored import ScoredTable

#: Columns a report cannot do without.
_REQUIRED = ("patient_id", "assessed_on", "status", "score", "level")
#: The column that names each row's cut-point set (see :meth:`ScoredColumns.check_levels`).
_LEVEL_SET = "cutpoint_set"

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


#: Rows handled at a time where a whole-column temporary would be 8 bytes a row.
_ROWS_AT_A_TIME = 1 << 20


def factorize_text(
    values: pa.Array | pa.ChunkedArray,
) -> tuple[pa.Array, NDArray[np.signedinteger[Any]]]:
    """:func:`factorize` for an Arrow string array, plain or dictionary-encoded, whole or in
    chunks: sorted distinct strings (Arrow) and each value's index among them (``int32``
    unless there are 2**31 strings or more), hashed and sorted by Arrow with no Python object
    per row. Chunks are encoded one at a time and never joined: joining them would hold the
    column twice."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import from_numpy, text_array, to_numpy

    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    encoded = [c if pa.types.is_dictionary(c.type) else pc.dictionary_encode(c) for c in chunks]
    if len(encoded) == 1:
        dictionary = encoded[0].dictionary
    else:
        dictionary = pa.concat_arrays([e.dictionary for e in encoded] or [text_array([])])
    order = np.asarray(to_numpy(pc.array_sort_indices(dictionary)), dtype=np.int64)
    ordered = dictionary.take(from_numpy(order))
    del dictionary
    # A dictionary given may repeat a string or hold one no row uses (and the chunks'
    # dictionaries share strings): one code per distinct string that occurs.
    # 32-bit codes while there are fewer than 2**31 distinct strings: 4 bytes a row, not 8.
    rank = np.empty(len(order), dtype=np.int32 if len(order) < 2**31 else np.int64)
    if len(order) > 1:
        repeats = to_numpy(pc.equal(ordered.slice(1), ordered.slice(0, len(order) - 1)))
        rank[order] = np.concatenate(([0], np.cumsum(~repeats)))
        del repeats
    else:
        rank[order] = np.arange(len(order))
    codes = np.empty(sum(len(e) for e in encoded), dtype=rank.dtype)
    row = first = 0
    for e in encoded:  # each chunk's indices, to its dictionary's ranks, a million at a time
        indices = to_numpy(e.indices)
        ranks = rank[first : first + len(e.dictionary)]
        for start in range(0, len(e), _ROWS_AT_A_TIME):
            part = indices[start : start + _ROWS_AT_A_TIME]
            codes[row + start : row + start + len(part)] = ranks[part]
        row, first = row + len(e), first + len(e.dictionary)
    del encoded
    ranked = rank[order]
    firsts = np.flatnonzero(np.concatenate(([True], ranked[1:] != ranked[:-1])))
    del ranked, rank, order
    # Marked a million rows at a time: NumPy counts or indexes with a 64-bit copy of the codes.
    used = np.zeros(len(firsts), dtype=np.bool_)
    for start in range(0, len(codes), _ROWS_AT_A_TIME):
        used[codes[start : start + _ROWS_AT_A_TIME]] = True
    if not used.all():
        renumber = np.cumsum(used) - 1
        codes, firsts = renumber[codes].astype(codes.dtype), firsts[used]
    return ordered.take(from_numpy(firsts)), codes


def take_text(values: pa.Array | pa.ChunkedArray, rows: NDArray[np.integer[Any]]) -> pa.Array:
    """``values[rows]`` as one array. A chunked array is taken from chunk by chunk: Arrow's
    own ``take`` joins the chunks first, a copy of the whole column for a few rows."""
    import pyarrow as pa

    from pamlib.formats._arrow import from_numpy

    if isinstance(values, pa.ChunkedArray) and values.num_chunks == 1:
        values = values.chunk(0)
    if isinstance(values, pa.Array):
        return values.take(from_numpy(rows))
    bounds = np.cumsum([0, *(len(c) for c in values.chunks)])
    chunk = np.searchsorted(bounds, rows, side="right") - 1
    order = np.argsort(chunk, kind="stable")
    edges = np.searchsorted(chunk[order], np.arange(values.num_chunks + 1))
    parts = [pa.nulls(0, values.type)]
    for k in np.flatnonzero(edges[1:] > edges[:-1]).tolist():
        picked = order[edges[k] : edges[k + 1]]
        parts.append(values.chunk(k).take(from_numpy(rows[picked] - bounds[k])))
    taken = pa.concat_arrays(parts)
    back = np.empty(len(order), dtype=np.int64)
    back[order] = np.arange(len(order))
    return taken.take(from_numpy(back))


def _arrow_keys(values: Any) -> pa.Array | pa.ChunkedArray:
    """Patient keys or flags as :func:`_arrow_text` makes them, or kept dictionary-encoded when
    they come so (whole or in chunks, each with its own dictionary): a small code a row and
    each text once, where plain strings take a dozen bytes a row."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray) and values.num_chunks == 1:
        values = values.chunk(0)
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    if chunks and all(
        isinstance(c, pa.DictionaryArray)
        and pa.types.is_string(c.type.value_type)
        and not c.null_count
        and not c.dictionary.null_count
        for c in chunks
    ):
        return values
    return _arrow_text(values)


def _arrow_text(values: Any) -> pa.Array | pa.ChunkedArray:
    """Text as one Arrow string array (``""`` where null): identifiers stay in Arrow buffers,
    never one Python object per row, so a cohort of millions fits in memory. Chunks of plain
    text with no null are kept as they come: joining them would hold the column twice."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import combined, scalar, texts

    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks > 1 and pa.types.is_string(values.type) and not values.null_count:
            return values
        values = combined(values) if values.num_chunks != 1 else values.chunk(0)
    if not isinstance(values, pa.Array):
        values = texts(np.asarray(values, dtype=object).tolist())
    if pa.types.is_dictionary(values.type):
        values = pc.cast(values, pa.string())
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    return pc.fill_null(values, scalar("", pa.string())) if values.null_count else values


@attrs.frozen(eq=False, repr=False)
class ScoredColumns:
    """A scored table held as equal-length columns, one element per assessment.

    ``assessment_id``, ``patient_id`` (the patient key) and ``flags`` (``;``-joined) are Arrow
    string arrays (the last two may be dictionary-encoded; the first two, read from a file,
    are chunked arrays) — Python objects per row would not fit a national cohort in memory;
    they accept anything :func:`pyarrow.array` takes. The rest
    are NumPy arrays: ``score`` is NaN and ``level`` is 0 where the table has no value;
    ``scored`` is ``status == "scored"``; ``demo`` follows from the provider, the calibration,
    the flags and the ``demo`` column (see :func:`~pamlib.tailoring.context.demo_evidence`).
    ``text`` holds every column but the identifiers (``instrument``, ``cutpoint_set``, ``site``,
    ``level``, …) as the table's strings, each made on first use, for grouping and provenance.

    Build one with :meth:`from_rows` (tests, small inputs), :meth:`from_arrow`,
    :meth:`from_scored` or :func:`load_scored` (a file, block by block). Its repr shows sizes
    and column names only, never identifiers.
    """

    assessment_id: pa.Array | pa.ChunkedArray = attrs.field(converter=_arrow_text)
    patient_id: pa.Array | pa.ChunkedArray = attrs.field(converter=_arrow_keys)
    assessed_on: NDArray[np.datetime64]
    scored: NDArray[np.bool_]
    score: NDArray[np.float64]
    level: NDArray[np.int8]
    flags: pa.Array | pa.ChunkedArray = attrs.field(converter=_arrow_keys)
    demo: NDArray[np.bool_]
    text: Mapping[str, TextArray] = attrs.field(factory=dict)
    #: Some patients are keyed by an NHS number that was not kept as a column (see
    #: :attr:`~pamlib.tables.scored.ScoredTable.links_by_private_nhs_number`).
    private_nhs_keys: bool = False

    def __attrs_post_init__(self) -> None:
        n = len(self.patient_id)
        arrays = [self.assessment_id, self.assessed_on, self.scored, self.score, self.level]
        arrays += [self.flags, self.demo]
        if not isinstance(self.text, _TextColumns | _BlockText):  # these have the length
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
        # A million rows at a time: each step over the whole column is a byte a row more.
        out = np.empty(len(self.scored), dtype=np.bool_)
        for start in range(0, len(out), _ROWS_AT_A_TIME):
            part = slice(start, start + _ROWS_AT_A_TIME)
            out[part] = self.scored[part] & ~np.isnan(self.score[part]) & (self.level[part] > 0)
        return out

    @property
    def score_tenths(self) -> NDArray[np.int64]:
        """Scores in integer tenths of a point (0 where missing): change is computed exactly."""
        from pamlib.levels import round_half_away_array

        score = np.nan_to_num(self.score, nan=0.0)
        return np.rint(round_half_away_array(score, 1) * 10).astype(np.int64)

    def has_flag(self, flag: str) -> NDArray[np.bool_]:
        """Rows whose ``;``-separated ``flags`` contain ``flag`` (each distinct text looked at
        once)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pamlib.formats._arrow import combined, to_numpy

        flags = self.flags
        if isinstance(flags, pa.ChunkedArray):  # few distinct texts: small to join
            flags = combined(flags)
        encoded = pc.dictionary_encode(flags)
        hit = np.array(
            [flag in text.split(";") for text in encoded.dictionary.to_pylist()] or [False],
            dtype=np.bool_,
        )
        # Indexed by the small codes themselves: a 64-bit copy of them would take 8 bytes a row.
        found: NDArray[np.bool_] = hit[to_numpy(encoded.indices)]
        return found

    def column(self, name: str) -> TextArray:
        """The text of a column (``site``, ``instrument``, ``level``, …), for grouping.

        Raises :class:`~pamlib.reporting.IdentifyingColumnError` for an identifier
        column (``patient_id``, ``nhs_number``, ``date_of_birth``, …): see
        :mod:`pamlib.reporting._privacy`.
        """
        check_name(name)
        if name in self.text:
            return self.text[name]
        names = self.text.available if isinstance(self.text, _BlockText) else self.text
        available = sorted(c for c in names if not is_identifier_name(c))
        raise ConfigurationError(
            f"no column {name!r} to group by; available: {', '.join(available) or 'none'}"
        )

    def check_levels(
        self, cutpoints: Iterable[CutpointSet] | None, *, source: str = "scored table"
    ) -> None:
        """Refuse the table, as tailoring does, when a scored row's ``level`` is not the level
        of its ``score`` at its ``cutpoint_set`` (one of ``cutpoints``: every registered set,
        for a report): levels, transitions and the measure would count it at a level its own
        score contradicts. A :class:`~pamlib.errors.ValidationError` lists the rows
        (``source: row N``, code ``level-mismatch``), never a value. Rows with no score, no set
        or a set not in ``cutpoints`` are taken as they are; so is a table without a
        ``cutpoint_set`` column. Compared a million rows at a time, no Python object a row."""
        from pamlib.tables._levels import check_levels

        sets = self._cutpoint_set_codes()
        if sets is not None:
            names, set_of = sets
            check_levels(
                self.scored, self.score, self.level, names, set_of, cutpoints=cutpoints,
                source=source,
            )  # fmt: skip

    def mismatched_levels(
        self, cutpoints: Iterable[CutpointSet] | None, *, listed: int
    ) -> tuple[int, list[int]]:
        """How many rows :meth:`check_levels` refuses, and the positions of the first
        ``listed``."""
        from pamlib.tables._levels import mismatched_levels

        sets = self._cutpoint_set_codes()
        if sets is None:
            return 0, []
        names, set_of = sets
        return mismatched_levels(
            self.scored, self.score, self.level, names, set_of, cutpoints=cutpoints,
            listed=listed,
        )  # fmt: skip

    def _cutpoint_set_codes(self) -> tuple[list[str], NDArray[np.integer[Any]]] | None:
        """Each row's cut-point set as an index into the distinct names, as cheaply as the
        text is held (``None`` for a table without the column)."""
        if _LEVEL_SET not in self.text:
            return None
        if isinstance(self.text, _BlockText | _TextColumns):
            distinct, codes = self.text.codes(_LEVEL_SET)
        else:
            distinct, codes = factorize(np.asarray(self.text[_LEVEL_SET], dtype=object))
        return [str(name) for name in distinct], codes

    def column_codes(self, name: str) -> tuple[TextArray, NDArray[np.signedinteger[Any]]]:
        """A column factorized: its sorted distinct strings and each row's index among them
        (in the smallest integer type that holds them), checked as :meth:`column` checks it.
        Cheaper than :meth:`column` for a table read block by block, which keeps its text
        columns this way."""
        if isinstance(self.text, _BlockText):
            check_name(name)
            if name not in self.text:
                self.column(name)  # the error, naming the columns there are
            return self.text.codes(name)
        distinct, codes = factorize(self.column(name))
        return distinct, codes.astype(np.intp)

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]]) -> ScoredColumns:
        """Build from plain rows, e.g. ``{"patient_id": "p1", "assessed_on": "2024-01-31", …}``.

        Values may be strings as in the CSV or Python values (``None``, numbers, ``date``,
        ``bool``). Missing keys are empty. ``assessment_id`` defaults to the row number,
        ``flags`` to none and ``demo`` to false. Problems are located at ``rows: row N``.
        """
        from pamlib.tables.scored import python_table

        materialised = [dict(r) for r in rows]
        names: dict[Any, None] = dict.fromkeys(() if materialised else _REQUIRED)
        for row in materialised:
            names.update(dict.fromkeys(row))
        # as a scored CSV holds each value: a list of flags ``;``-joined (not its repr), a
        # level 3.0 (a DataFrame's to_dict) 3
        columns = {name: [r.get(name) for r in materialised] for name in names}
        return cls.from_arrow(python_table(columns, "rows"), source="rows")

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
        import pyarrow as pa
        import pyarrow.compute as pc

        from pamlib.formats._arrow import combined, scalar, to_numpy

        n = len(table)
        level = to_numpy(pc.fill_null(table.column("level"), scalar(0, pa.int8())))
        days = to_numpy(table.column("assessed_on"))  # NaT where null
        scored = pc.equal(table.column("status"), scalar("scored", pa.string()))
        return cls(
            assessment_id=_ids(table.column("assessment_id"), first_row=0),
            # Arrow text: no Python string a row
            patient_id=combined(table._patient_key_text()),
            assessed_on=np.asarray(days, dtype="datetime64[D]").reshape(n),
            scored=np.asarray(
                to_numpy(pc.fill_null(scored, scalar(False, pa.bool_()))), dtype=np.bool_
            ).reshape(n),
            score=np.asarray(to_numpy(table.column("score")), dtype=np.float64),  # NaN: null
            level=np.asarray(level, dtype=np.int8),
            flags=pc.binary_join(table.column("flags"), scalar(";", pa.string())),
            demo=np.asarray(to_numpy(table.column("demo")), dtype=np.bool_),
            text=_TextColumns(table, [c for c in table.column_names if not is_identifier_name(c)]),
            private_nhs_keys=table.links_by_private_nhs_number,
        )

    @classmethod
    def from_blocks(
        cls,
        blocks: Iterable[ScoredTable],
        *,
        text: Iterable[str] | None = None,
        rows: int | None = None,
    ) -> ScoredColumns:
        """Build from checked blocks of one table (:meth:`ScoredTable.read_blocks
        <pamlib.tables.scored.ScoredTable.read_blocks>`), keeping of each block only what a
        report uses: memory grows by a few dozen bytes an assessment, not by the table.

        ``text`` names the columns to keep as text, for grouping and listing (default: every
        column that is not an identifier; ``cutpoint_set`` always, for
        :meth:`check_levels`); names the table does not have are skipped, and an identifier is
        an error. ``rows``, the table's row count when it is known (a Parquet
        file says it), lets the fixed-width columns be filled in place instead of joined from
        their blocks at the end, which would hold each of them twice."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pamlib.formats._arrow import from_numpy, text_array

        wanted = None if text is None else list(dict.fromkeys(text))
        available: list[str] = []
        keep: list[str] = []
        kept: dict[str, list[tuple[TextArray, NDArray[Any]]]] = {}
        chunks: dict[str, list[Any]] = {"assessment_id": [], "patient_id": []}
        fixed = _Filled(rows or 0)
        flags: list[tuple[TextArray, NDArray[Any]]] = []
        private_nhs_keys, first, n = False, True, 0
        for block in blocks:
            part = cls.from_scored(block)
            if first:
                available = list(part.text)
                # the cut-point set too, which levels are checked against (a byte a row)
                asked = available if wanted is None else dict.fromkeys([*wanted, _LEVEL_SET])
                keep = [name for name in asked if name in available]
                for name in keep:
                    check_name(name)
                kept = {name: [] for name in keep}
                first = False
            ids = block.column("assessment_id")
            if ids.null_count:  # row numbers of the whole file
                part = attrs.evolve(part, assessment_id=_ids(ids, first_row=n))
            for name in keep:
                kept[name].append(_small_codes(block.column(name)))
            fixed.add(part)
            # Flags are few distinct texts: a small code a row, not a string.
            flags.append(_small_codes(pa.chunked_array([part.flags])))
            chunks["assessment_id"].append(part.assessment_id)
            # Each patient's key once a block (a patient's assessments are mostly near one
            # another), and a small code a row.
            chunks["patient_id"].append(pc.dictionary_encode(part.patient_id))
            private_nhs_keys |= part.private_nhs_keys
            n += len(block)
            del part

        flag_text, flag_codes = _BlockText({"flags": flags}, []).codes("flags")
        del flags
        fields = {
            **{name: fixed.joined(name) for name in _FIXED_FIELDS},
            "flags": pa.DictionaryArray.from_arrays(
                from_numpy(flag_codes), text_array(flag_text.tolist() or [""])
            ),
            # The identifiers stay in their blocks' chunks (each block's patients encoded
            # once): joined, each would be held twice while it is copied.
            **{
                name: pa.chunked_array(_regrouped(parts) or [text_array([])])
                for name, parts in chunks.items()
            },
        }
        del chunks
        release_freed_memory()  # the blocks' memory, before the report needs more
        return cls(
            **fields,
            text=_BlockText(kept, available),
            private_nhs_keys=private_nhs_keys,
        )


def _regrouped(parts: list[Any]) -> list[Any]:
    """Blocks' chunks joined into chunks of about a million rows, the small ones released as
    each is made: a block's chunk, kept among the freed memory of the rest of its block,
    pins the allocator's pages around it; a few large chunks do not (and joining a million
    rows at a time holds only those twice)."""
    import pyarrow as pa

    out: list[Any] = []
    group: list[Any] = []
    rows = 0
    while parts:
        group.append(parts.pop(0))
        rows += len(group[-1])
        if rows >= _ROWS_AT_A_TIME or not parts:
            out.append(pa.concat_arrays(group) if len(group) > 1 else group[0])
            group, rows = [], 0
    return out


#: The fixed-width per-row fields of :class:`ScoredColumns`, with their NumPy types.
_FIXED_FIELDS: dict[str, Any] = {
    "assessed_on": "datetime64[D]",
    "scored": np.bool_,
    "score": np.float64,
    "level": np.int8,
    "demo": np.bool_,
}


class _Filled:
    """The fixed-width fields of a table read block by block: filled in place while the row
    count given holds them, the rest (no count, or a wrong one) kept by block and joined."""

    def __init__(self, rows: int) -> None:
        self._arrays = {name: np.empty(rows, dtype=t) for name, t in _FIXED_FIELDS.items()}
        self._parts: dict[str, list[NDArray[Any]]] = {name: [] for name in _FIXED_FIELDS}
        self._n = 0
        self._room = rows

    def add(self, part: ScoredColumns) -> None:
        m = len(part)
        if self._n + m <= self._room:
            for name, array in self._arrays.items():
                array[self._n : self._n + m] = getattr(part, name)
            self._n += m
        else:
            self._room = 0  # blocks after this one are kept in order after it
            for name, found in self._parts.items():
                found.append(getattr(part, name))

    def joined(self, name: str) -> NDArray[Any]:
        head = self._arrays.pop(name)[: self._n]
        parts = self._parts.pop(name)
        return np.concatenate([head, *parts]) if parts else head


def _ids(column: Any, *, first_row: int) -> pa.Array:
    """Assessment ids, ``row-NNNNNNNNN`` (the row in the file) where a row has none."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import combined, from_numpy, scalar, texts, to_numpy

    ids = _arrow_text(column)
    missing = np.flatnonzero(to_numpy(pc.equal(ids, scalar("", pa.string()))))
    if not len(missing):
        return ids
    if isinstance(ids, pa.ChunkedArray):
        ids = combined(ids)
    fill = texts([f"row-{first_row + i + 1:09d}" for i in missing.tolist()])
    mask = np.zeros(len(ids), dtype=np.bool_)
    mask[missing] = True
    return pc.replace_with_mask(ids, from_numpy(mask), fill)


def _dictionary(column: Any) -> pa.Array:
    """A column's text (as :func:`_column_text` gives it), dictionary-encoded: a few bytes a
    row for the repetitive columns a report groups by or lists (site, provider, calibration)."""
    import pyarrow.compute as pc

    from pamlib.formats._arrow import combined

    return pc.dictionary_encode(combined(_column_arrow(column)))


def _column_text(column: Any) -> TextArray:
    """A column as the table's strings (``""`` where null): floats positional (never ``1e-05``),
    lists ``;``-joined, booleans ``true``/``false``, dates ISO."""
    from pamlib.formats._arrow import to_numpy

    return to_numpy(_column_arrow(column))


def _column_arrow(column: Any) -> pa.Array | pa.ChunkedArray:
    """:func:`_column_text` as Arrow strings. Python writes each distinct float once (told
    apart by its bits: ``-0.0`` is not ``0.0`` as text); Arrow does the rest."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pamlib.formats._arrow import from_numpy, scalar, text_array, to_numpy

    if pa.types.is_floating(column.type):
        values = np.asarray(to_numpy(column), dtype=np.float64)  # NaN where null
        bits, index = np.unique(values.view(np.uint64), return_inverse=True)
        words = [
            "" if math.isnan(v) else np.format_float_positional(v, trim="-")
            for v in bits.view(np.float64).tolist()
        ]
        return text_array(words).take(from_numpy(index.reshape(-1)))
    if pa.types.is_list(column.type):
        column = pc.binary_join(column, scalar(";", pa.string()))
    elif pa.types.is_boolean(column.type):
        column = pc.if_else(column, scalar("true", pa.string()), scalar("false", pa.string()))
    elif not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return pc.fill_null(column, scalar("", pa.string()))


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

    def __contains__(self, name: object) -> bool:
        # Mapping's would convert the column only to drop it.
        return name in self._names

    def codes(self, name: str) -> tuple[list[str], NDArray[np.intp]]:
        """A column's distinct texts and each row's index among them, hashed by Arrow: no
        Python object a row, unlike ``[]``."""
        if name not in self._names:
            raise KeyError(name)
        return self._table.text_codes(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class _BlockText(Mapping[str, TextArray]):
    """Text columns kept factorized, block by block: each block's distinct strings and a small
    integer a row. :meth:`codes` joins the blocks; ``[]`` makes the strings (one pointer a
    row, the strings shared), not kept."""

    def __init__(
        self, blocks: Mapping[str, list[tuple[TextArray, NDArray[Any]]]], available: list[str]
    ) -> None:
        self._blocks = dict(blocks)
        #: Every text column of the table, kept or not (named in errors).
        self.available = available

    def codes(self, name: str) -> tuple[TextArray, NDArray[np.signedinteger[Any]]]:
        parts = self._blocks[name]
        if not parts:
            return np.empty(0, dtype=object), np.zeros(0, dtype=np.intp)
        distinct, where = factorize(np.concatenate([d for d, _ in parts]))
        kind = _code_type(len(distinct))
        out, start = [], 0
        for block_distinct, codes in parts:
            out.append(where[start : start + len(block_distinct)].astype(kind)[codes])
            start += len(block_distinct)
        return distinct, np.concatenate(out)

    def __getitem__(self, name: str) -> TextArray:
        distinct, codes = self.codes(name)
        return np.asarray(distinct[codes], dtype=object)

    def __contains__(self, name: object) -> bool:
        # Mapping's would make the column's strings (a pointer a row) only to drop them.
        return name in self._blocks

    def __iter__(self) -> Iterator[str]:
        return iter(self._blocks)

    def __len__(self) -> int:
        return len(self._blocks)


def _small_codes(column: Any) -> tuple[TextArray, NDArray[Any]]:
    """A block's column as its distinct strings and the smallest integer type of codes."""
    from pamlib.formats._arrow import to_numpy

    encoded = _dictionary(column)
    distinct = to_numpy(encoded.dictionary)
    codes = to_numpy(encoded.indices)
    return distinct, codes.astype(_code_type(len(distinct)))


def _code_type(n_distinct: int) -> type[np.signedinteger[Any]]:
    """The smallest integer type that numbers ``n_distinct`` values."""
    return np.int8 if n_distinct <= 127 else np.int16 if n_distinct <= 32767 else np.int32


def load_scored(
    path: str | os.PathLike[str],
    *,
    text: Iterable[str] | None = None,
    block_rows: int = BLOCK_ROWS,
) -> ScoredColumns:
    """Read a scored table from CSV, Parquet (``.parquet``, ``.pq``) or JSON Lines (``.jsonl``,
    ``.ndjson``, ``.json``) — every format ``pamlib score`` writes — checked as
    :meth:`ScoredTable.read <pamlib.tables.scored.ScoredTable.read>` checks it (which see for
    the errors), ``block_rows`` rows at a time, keeping only what a report uses and the
    ``text`` columns (see :meth:`ScoredColumns.from_blocks`).
    """
    from pamlib.tables.scored import ScoredTable, known_row_count

    blocks = ScoredTable.read_blocks(path, block_rows=block_rows)
    return ScoredColumns.from_blocks(blocks, text=text, rows=known_row_count(path))
