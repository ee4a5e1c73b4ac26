"""Tables already in memory as input: pyarrow Tables and batches, pandas and polars DataFrames.

Anything that speaks Arrow is read: a pyarrow ``Table``, ``RecordBatch`` or
``RecordBatchReader``, an iterable of them, or any object with ``__arrow_c_stream__`` (pandas
≥ 2.2 and polars DataFrames, DuckDB relations); and rows as dictionaries (a JSON array of
objects), their columns every key of every row. Columns are matched by name exactly as a file's
header is (:class:`~pamlib.formats.layout.Layout`, with the same mapping), then turned into text
as an export would hold it, so the checks of :mod:`pamlib.formats._columnar` — and their reject
codes and messages — are the same for a table as for a file:

- null is an empty cell;
- integers are written in decimal; floats holding whole numbers (how pandas stores an answer
  column with gaps) as integers, other floats as they print (and are then not answers);
- dates are ISO ``yyyy-mm-dd``; timestamps are read as their date in their own time zone;
- booleans are ``true`` / ``false``; dictionary (categorical) columns by their values.

A table has no line numbers: each row's key is its position (1 for the first row of the first
batch) or, with ``row_key``, the value of an integer column the caller keeps for the purpose
(a file's row order in a distributed job); rejects are located as ``row N``. Readers of files
that are tables underneath (workbooks, JSON Lines) give each batch's keys themselves (a sheet's
row numbers, a file's line numbers) and name their ``unit``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pamlib.errors import ConfigurationError, FormatError, Problem
from pamlib.formats._arrow import pyarrow_module
from pamlib.formats._columnar import ColumnChecker
from pamlib.formats._records import RowValidator
from pamlib.formats.base import ReadChunk, ReadOptions
from pamlib.formats.layout import Layout
from pamlib.formats.values import InstrumentResolver
from pamlib.instruments import Instrument
from pamlib.tables._text import is_pandas, pandas_table, rows_table, text_column

__all__ = ["TableReader", "record_batches", "text_column"]

_PANDAS_INDEX = re.compile(r"__index_level_[0-9]+__")
_NOTHING = object()


def record_batches(data: Any) -> Iterator[Any]:
    """The record batches of ``data`` (see the module documentation), lazily."""
    pa = pyarrow_module()
    if isinstance(data, pa.RecordBatch):
        yield data
    elif isinstance(data, pa.Table):
        yield from data.to_batches() or [_empty(data.schema)]
    elif isinstance(data, pa.RecordBatchReader):
        yield from _or_empty(data)
    elif type(data).__name__ == "Series":  # pandas' and polars' speak Arrow, as one column
        raise ConfigurationError(_not_a_table(data, "the data given"))
    elif is_pandas(data):
        table = pandas_table(data)
        yield from table.to_batches() or [_empty(table.schema)]
    elif hasattr(data, "__arrow_c_stream__"):
        try:  # a type Arrow does not know (polars' Int128) is refused here, in pyarrow's words
            reader = pa.RecordBatchReader.from_stream(data)
        except pa.ArrowException as exc:
            raise ConfigurationError(
                f"the data given cannot be read through Arrow ({type(exc).__name__}); give "
                "columns of text, numbers or dates"
            ) from None
        yield from _or_empty(reader)
    elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, Mapping)):
        parts = iter(data)
        first = next(parts, _NOTHING)
        if isinstance(first, Mapping):  # rows as dictionaries: one table of them all
            rows = [first, *parts]
            if not all(isinstance(row, Mapping) for row in rows):
                raise ConfigurationError(
                    "the rows given mix dictionaries and other things: give rows as "
                    "dictionaries, or tables"
                )
            table = rows_table(rows)
            yield from table.to_batches() or [_empty(table.schema)]
            return
        for part in itertools.chain([] if first is _NOTHING else [first], parts):
            if isinstance(part, (pa.RecordBatch, pa.Table)) or hasattr(part, "__arrow_c_stream__"):
                yield from record_batches(part)
            else:
                raise ConfigurationError(_not_a_table(part, "an item of the batches given"))
    else:
        raise ConfigurationError(_not_a_table(data, "the data given"))


def _empty(schema: Any) -> Any:
    pa = pyarrow_module()
    return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)


def _or_empty(reader: Any) -> Iterator[Any]:
    """The reader's batches, or one empty batch of its schema (so its columns are checked)."""
    seen = False
    for batch in reader:
        seen = True
        yield batch
    if not seen:
        yield _empty(reader.schema)


def _not_a_table(data: Any, what: str) -> str:
    return (
        f"{what} is a {type(data).__name__}, not a table: give a pyarrow Table, RecordBatch or "
        "RecordBatchReader, an iterable of them, rows as dictionaries, or an object with "
        "__arrow_c_stream__ (pandas >= 2.2, polars)"
    )


def _named_text(column: Any, name: str) -> Any:
    """:func:`text_column`, its refusal naming the column (and a failure of pyarrow's to read
    one, a decimal too wide, a time zone it does not know, one too: never its values)."""
    pa = pyarrow_module()
    try:
        return text_column(column)
    except ConfigurationError as exc:
        raise ConfigurationError(f"the column {name!r}: {exc}") from None
    except (pa.ArrowException, OverflowError, ValueError):
        raise ConfigurationError(
            f"the column {name!r} (of {column.type}) cannot be read as text; give text, numbers "
            "or dates"
        ) from None


def _int64_keys(keys: npt.NDArray[Any], what: str) -> npt.NDArray[np.int64]:
    """Row keys as 64-bit integers, which is how rejects hold them; an unsigned key past
    2**63 would wrap to a negative one (and a falling run of them pass for a rising one)."""
    if keys.dtype == np.uint64 and keys.size and int(keys.max()) > np.iinfo(np.int64).max:
        raise ConfigurationError(f"{what} must be integers below 2**63")
    return keys.astype(np.int64, copy=False)


class TableReader:
    """Turns the batches of one table into checked chunks, keeping state (ids seen, row keys)
    across batches so that a table given in parts reads exactly as it would whole.

    ``duplicates`` is ``track`` (repeated assessment ids are found across every batch this
    reader sees), ``external`` (the caller passes a first-occurrence mask with each batch) or
    ``off``. ``unit`` is the word rejects are located with (``row 17``; ``line 17``).
    """

    def __init__(
        self,
        options: ReadOptions,
        instruments: Sequence[Instrument],
        *,
        source: str = "table",
        row_key: str | None = None,
        duplicates: str = "track",
        unit: str = "row",
    ) -> None:
        if duplicates not in ("track", "external", "off"):
            raise ConfigurationError(
                f"duplicates must be 'track', 'external' or 'off', not {duplicates!r}"
            )
        self.options = options
        self.instruments = tuple(instruments)
        self.source = source
        self.row_key = row_key
        self.duplicates = duplicates
        self.unit = unit
        self.n_rows = 0
        self._names: tuple[str, ...] | None = None
        self._checker: ColumnChecker | None = None
        self._layout: Layout | None = None

    def _start(self, names: tuple[str, ...]) -> ColumnChecker:
        header = tuple(n for n in names if self._is_data(n))
        if self.row_key is not None and self.row_key not in names:
            raise FormatError(
                f"{self.source}: no row key column",
                [Problem(self.source, "missing-column", f"no column {self.row_key!r}")],
            )
        layout = Layout.resolve(header, self.options, source=self.source)
        resolver = InstrumentResolver(
            self.instruments,
            aliases=self.options.instrument_aliases,
            default=self.options.instrument,
        )
        validator = RowValidator(layout, self.options, resolver, source=self.source)
        self._names = names
        self._layout = layout
        return ColumnChecker(
            validator, self.source, unit=self.unit, track_ids=self.duplicates == "track"
        )

    def _is_data(self, name: str) -> bool:
        """Not the row key, nor a pandas index that pyarrow kept as a column (a filtered
        DataFrame's ``__index_level_0__``): neither is part of the records."""
        return name != self.row_key and not _PANDAS_INDEX.fullmatch(name)

    @property
    def source_columns(self) -> tuple[str, ...]:
        return () if self._layout is None else self._layout.header

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return () if self._layout is None else self._layout.extra_names

    def chunk(
        self,
        batch: Any,
        *,
        first: npt.ArrayLike | None = None,
        keys: npt.ArrayLike | None = None,
    ) -> ReadChunk:
        """Check one record batch; ``first`` is the first-occurrence mask (``external``) and
        ``keys`` the rows' keys where the caller knows them (increasing; not with ``row_key``).
        """
        names = tuple(batch.schema.names)
        if self._checker is None:
            self._checker = self._start(names)
        elif names != self._names:
            raise FormatError(
                f"{self.source}: the batches differ in their columns",
                [Problem(self.source, "columns", "every batch must have the same columns")],
            )
        n = batch.num_rows
        mask = self._first_mask(first, n)
        lines = self._keys(batch, n) if keys is None else self._given_keys(keys, n)
        columns = [
            _named_text(batch.column(i), name)
            for i, name in enumerate(names)
            if self._is_data(name)
        ]
        self.n_rows += n
        checked, rejects = self._checker.check(columns, lines, first=mask)
        return ReadChunk(
            batches=tuple(checked),
            rejects=tuple(sorted(rejects, key=lambda r: r.line or 0)),
            n_read=n,
            extra_columns=self.extra_columns,
            source_columns=self.source_columns,
        )

    def _first_mask(self, first: npt.ArrayLike | None, n: int) -> npt.NDArray[np.bool_] | None:
        if self.duplicates != "external":
            if first is not None:
                raise ConfigurationError("a first-occurrence mask needs duplicates='external'")
            return None
        if first is None:
            raise ConfigurationError("duplicates='external' needs a first-occurrence mask")
        pa = pyarrow_module()
        if isinstance(first, (pa.Array, pa.ChunkedArray)):
            first = first.to_numpy(zero_copy_only=False)
        mask = np.asarray(first)
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise ConfigurationError(f"the first-occurrence mask must be {n} booleans")
        return mask

    def _keys(self, batch: Any, n: int) -> npt.NDArray[np.int64]:
        if self.row_key is None:
            return np.arange(self.n_rows + 1, self.n_rows + n + 1, dtype=np.int64)
        pa = pyarrow_module()
        column = batch.column(batch.schema.get_field_index(self.row_key))
        if not pa.types.is_integer(column.type) or column.null_count:
            raise ConfigurationError(f"the row key {self.row_key!r} must be integers, never null")
        keys = _int64_keys(column.to_numpy(zero_copy_only=False), f"the row key {self.row_key!r}")
        if n > 1 and not bool((np.diff(keys) > 0).all()):
            raise ConfigurationError(
                f"the row key {self.row_key!r} must increase within each batch"
            )
        return keys

    def _given_keys(self, keys: npt.ArrayLike, n: int) -> npt.NDArray[np.int64]:
        if self.row_key is not None:
            raise ConfigurationError("row keys come from the row_key column or are given, not both")
        given = np.asarray(keys)
        if given.shape != (n,) or not np.issubdtype(given.dtype, np.integer):
            raise ConfigurationError(f"the row keys must be {n} integers")
        given = _int64_keys(given, "the row keys")
        if n > 1 and not bool((np.diff(given) > 0).all()):
            raise ConfigurationError("the row keys must increase within each batch")
        return given

    def read(self, data: Any) -> Iterator[ReadChunk]:
        """Every batch of ``data`` as chunks of at most ``chunk_rows`` rows (``track`` or
        ``off``); a table with no rows still gives one chunk, so its columns are checked and
        named. A table of one big batch is read in slices, as a file is: what a chunk holds
        while it is checked (its rejects most of all) stays bounded, and the chunks overlap."""
        size = max(1, self.options.chunk_rows)
        for batch in record_batches(data):
            if batch.num_rows <= size:
                yield self.chunk(batch)
                continue
            if self.row_key is not None:  # rising within the batch given, not only each slice
                self._keys(batch, batch.num_rows)
            for start in range(0, batch.num_rows, size):
                yield self.chunk(batch.slice(start, size))
