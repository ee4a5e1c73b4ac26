"""Built-in typed outputs: Parquet and JSON Lines (both need the ``arrow`` extra).

Both keep types: numbers are numbers, a missing number or absent text is ``null``, ``flags``
is a list of strings, ``assessed_on`` a date (``"2024-03-01"`` in JSON). Columns and their order
are those of the CSV output (see :mod:`pamlib.formats.output`).

JSON output is JSON Lines — one JSON object per line, UTF-8 — rather than one JSON array, so it
can be written and read a row at a time however large the file (``jq -c``, ``pandas.read_json(...,
lines=True)`` and most log tools read it as is).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from pamlib.formats.base import (
    Format,
    RecordBatch,
    ResultWriter,
    Target,
    TextColumn,
    WriteOptions,
)
from pamlib.hookspecs import hookimpl
from pamlib.scoring.provider import BatchScores

__all__ = ["JsonLinesFormat", "ParquetFormat"]


class ParquetFormat:
    """Apache Parquet, one file, columns typed as in :func:`~pamlib.formats.output.typed_table`."""

    name = "parquet"
    extensions = (".parquet", ".pq")
    description = "Apache Parquet (typed columns)"

    def open_writer(self, target: Target, options: WriteOptions) -> ResultWriter:
        return _ParquetWriter(target, options)

    def __repr__(self) -> str:
        return "<ParquetFormat>"


class JsonLinesFormat:
    """JSON Lines: one object per scored row, keys in output-column order."""

    name = "json"
    extensions = (".jsonl", ".ndjson", ".json")
    description = "JSON Lines (one JSON object per line)"

    def open_writer(self, target: Target, options: WriteOptions) -> ResultWriter:
        return _JsonLinesWriter(target, options)

    def __repr__(self) -> str:
        return "<JsonLinesFormat>"


class _ParquetWriter:
    def __init__(self, target: Target, options: WriteOptions) -> None:
        from pamlib.formats._arrow import pyarrow_module
        from pamlib.formats.output import AtomicTarget, check_extra_columns, typed_schema

        pa = pyarrow_module()
        import pyarrow.parquet as pq

        check_extra_columns(options.extra_columns)
        self.options = options
        self._target = AtomicTarget(target)
        self._schema = typed_schema(options.extra_columns)
        self._writer = pq.ParquetWriter(pa.PythonFile(self._target.stream, mode="w"), self._schema)

    def write(
        self, batch: RecordBatch, scores: BatchScores, extra: Mapping[str, TextColumn]
    ) -> None:
        from pamlib.formats.output import typed_table

        if len(batch):
            self.write_table(typed_table(batch, scores, extra, self.options))

    def write_table(self, table: Any) -> None:
        """Write rows given as a typed scored table in this writer's schema."""
        if table.num_rows:
            self._writer.write_table(table.cast(self._schema))

    def close(self) -> None:
        self._writer.close()
        self._target.commit()

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._target.discard()


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _JsonLinesWriter:
    def __init__(self, target: Target, options: WriteOptions) -> None:
        from pamlib.formats._arrow import pyarrow_module
        from pamlib.formats.output import AtomicTarget, check_extra_columns

        pyarrow_module()
        check_extra_columns(options.extra_columns)
        self.options = options
        self._target = AtomicTarget(target)

    def write(
        self, batch: RecordBatch, scores: BatchScores, extra: Mapping[str, TextColumn]
    ) -> None:
        from pamlib.formats.output import typed_table

        if len(batch):
            self.write_table(typed_table(batch, scores, extra, self.options))

    def write_table(self, table: Any) -> None:
        """Write rows given as a typed scored table, one JSON object per row."""
        if not table.num_rows:
            return
        names = table.column_names
        lines = []
        for row in zip(*(table.column(n).to_pylist() for n in names), strict=True):
            record = {n: _json_value(v) for n, v in zip(names, row, strict=True)}
            lines.append(json.dumps(record, ensure_ascii=False, allow_nan=False))
        self._target.stream.write(("\n".join(lines) + "\n").encode("utf-8"))

    def close(self) -> None:
        self._target.commit()

    def abort(self) -> None:
        self._target.discard()


@hookimpl
def pamlib_register_formats(register: Callable[[Format], None]) -> None:
    register(ParquetFormat())
    register(JsonLinesFormat())
