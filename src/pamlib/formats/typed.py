"""Built-in typed formats: Parquet and JSON Lines, out and in (through pyarrow).

Both keep types: numbers are numbers, a missing number or absent text is ``null``, ``flags``
is a list of strings, ``assessed_on`` a date (``"2024-03-01"`` in JSON). Columns and their order
are those of the CSV output (see :mod:`pamlib.formats.output`).

JSON output is JSON Lines — one JSON object per line, UTF-8 — rather than one JSON array, so it
can be written and read a row at a time however large the file (``jq -c``, ``pandas.read_json(...,
lines=True)`` and most log tools read it as is).

Both are also read, for exports kept in these formats with pamlib's canonical columns (scored
output is not an assessment export): a Parquet file by row groups, through the checks of
:class:`~pamlib.formats.tables.TableReader` (rejects located as ``row N``); a JSON Lines file a
block of lines at a time, the first object's keys naming the columns as a CSV header does (a
later object with another key is rejected, ``json``), every value read as text (``1``, ``2.5``,
``true``; ``null`` empty), rejects located by ``line N``, lines holding nothing counted blank.
A ``.json`` or ``.ndjson`` file whose first line is not a flat JSON object, or whose first lines
name a ``resourceType`` (FHIR resources, a Bundle, a pretty-printed document), is handed to the
``fhir`` format, so such files read as FHIR as before.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs
import numpy as np

from pamlib.errors import FormatError, Problem
from pamlib.formats.base import (
    Format,
    ReadChunk,
    ReadOptions,
    RecordBatch,
    Reject,
    ResultWriter,
    Target,
    TextColumn,
    WriteOptions,
    host_instruments,
)
from pamlib.hookspecs import hookimpl
from pamlib.scoring.provider import BatchScores

if TYPE_CHECKING:
    from pamlib.instruments import Instrument
    from pamlib.plugins import PluginHost

__all__ = ["JsonLinesFormat", "ParquetFormat"]


class ParquetFormat:
    """Apache Parquet, one file, columns typed as in :func:`~pamlib.formats.output.typed_table`."""

    name = "parquet"
    extensions = (".parquet", ".pq")
    description = "Apache Parquet (typed columns)"

    def open_writer(self, target: Target, options: WriteOptions) -> ResultWriter:
        return _ParquetWriter(target, options)

    def read(
        self,
        source: str | os.PathLike[str],
        options: ReadOptions,
        *,
        host: PluginHost | None = None,
    ) -> Iterator[ReadChunk]:
        """Row groups of a Parquet file with pamlib's columns, checked as a table is."""
        return _read_parquet(source, options, host_instruments(host))

    def __repr__(self) -> str:
        return "<ParquetFormat>"


class JsonLinesFormat:
    """JSON Lines: one object per scored row, keys in output-column order."""

    name = "json"
    extensions = (".jsonl", ".ndjson", ".json")
    description = "JSON Lines (one JSON object per line)"

    def open_writer(self, target: Target, options: WriteOptions) -> ResultWriter:
        return _JsonLinesWriter(target, options)

    def read(
        self,
        source: str | os.PathLike[str],
        options: ReadOptions,
        *,
        host: PluginHost | None = None,
    ) -> Iterator[ReadChunk]:
        """JSON Lines with pamlib's columns (each object one record)."""
        return _read_json_lines(source, options, host_instruments(host))

    def accepts(self, source: str | os.PathLike[str]) -> bool:
        """Whether this format should read ``source`` among the formats claiming its extension:
        a file whose first object is not a FHIR resource (``.json`` and ``.ndjson`` are FHIR's
        extensions too, and input so named has always meant FHIR)."""
        return str(source) == "-" or not _is_fhir(source)

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


# -- reading ------------------------------------------------------------------------------------


def _open(source: str | os.PathLike[str]) -> tuple[IO[bytes], str, int | None]:
    """The input as a binary stream, its name and size (``None`` for standard input)."""
    if str(source) == "-":
        return sys.stdin.buffer, "<stdin>", None
    from pamlib.formats.encoding import display_name

    try:
        stream = Path(source).open("rb")  # noqa: SIM115 - the reader closes it when done
        return stream, display_name(source), os.fstat(stream.fileno()).st_size
    except OSError as exc:
        name = display_name(Path(source).name)  # never the folders: they may name a patient
        raise FormatError(
            f"cannot read {name}", [Problem(name, "io", exc.strerror or str(exc))]
        ) from None


def _read_parquet(
    source: str | os.PathLike[str], options: ReadOptions, instruments: Sequence[Instrument]
) -> Iterator[ReadChunk]:
    from pamlib.formats._arrow import pyarrow_module
    from pamlib.formats.tables import TableReader

    pa = pyarrow_module()
    import pyarrow.parquet as pq

    stream, name, _ = _open(source)
    try:
        if stream is sys.stdin.buffer:  # Parquet is read from its end: it needs to seek
            stream = io.BytesIO(stream.read())
        try:
            file = pq.ParquetFile(stream)
            total = file.metadata.num_rows
            batches = file.iter_batches(batch_size=max(1, options.chunk_rows))
            reader = TableReader(options, instruments, source=name)
            empty = pa.RecordBatch.from_pylist([], schema=file.schema_arrow)
            yield reader.chunk(empty)  # names the columns (and checks them) before any record
            for batch in batches:
                chunk = reader.chunk(batch)
                yield attrs.evolve(chunk, progress=reader.n_rows / total if total else 1.0)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise FormatError(
                f"cannot read {name} as Parquet", [Problem(name, "parquet", str(exc))]
            ) from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _is_fhir(source: str | os.PathLike[str]) -> bool:
    """Whether a ``.json`` file is for the ``fhir`` format rather than JSON Lines rows.

    A JSON Lines row is one flat object of cells. The file is FHIR when its first line holding
    anything is not such an object (a list, a pretty-printed document, text that is not JSON, an
    object holding lists or objects), or when any of its first lines names a ``resourceType``:
    a FHIR export whose first resource is broken still reads as FHIR, with FHIR's problems.
    """
    stream, _, _ = _open(source)
    with stream:
        seen = 0
        while line := stream.readline(_SNIFF_BYTES):
            if not line.strip(b" \t\r\n\xef\xbb\xbf"):
                continue
            if len(line) == _SNIFF_BYTES and not line.endswith(b"\n"):
                # a line longer than any row (a minified Bundle): its start decides, not a parse
                # of the whole file, which the FHIR reader then parses again
                return _long_line_is_fhir(line, first=seen == 0)
            try:
                row = json.loads(line.removeprefix(b"\xef\xbb\xbf"))
            except (ValueError, RecursionError):  # the FHIR reader says what is wrong
                if seen == 0:
                    return True
                row = None
            if isinstance(row, dict) and "resourceType" in row:
                return True
            if seen == 0 and (
                not isinstance(row, dict) or any(isinstance(v, (dict, list)) for v in row.values())
            ):
                return True
            seen += 1
            if seen == _SNIFF_LINES:
                break
    return False


#: Lines holding anything that are read to tell FHIR NDJSON from JSON Lines rows.
_SNIFF_LINES = 16
#: The most of a line read to tell them apart.
_SNIFF_BYTES = 1 << 20
#: A JSON string, escapes included.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def _long_line_is_fhir(start: bytes, *, first: bool) -> bool:
    """Whether a line of which only ``start`` was read is FHIR, as :func:`_is_fhir` decides
    for a whole line: it names a ``resourceType``, or (the first line) it is no object, or an
    object holding an array or object before ``start`` ends (strings left out, a string cut
    off at the end included)."""
    text = start.lstrip(b" \t\r\n\xef\xbb\xbf")
    if b'"resourceType"' in text:
        return True
    if not first:
        return False
    if not text.startswith(b"{"):
        return True
    outside = _JSON_STRING.sub(b"", text[1:])
    cut = outside.find(b'"')  # a string that goes on past the start read
    if cut >= 0:
        outside = outside[:cut]
    return b"{" in outside or b"[" in outside


def _float_text(text: str) -> str:
    """A JSON number with a fraction or exponent as text: whole numbers as integers (``1.0`` is
    ``1``, as a table's float column is read), others as written."""
    value = float(text)
    if math.isfinite(value) and value == math.floor(value) and abs(value) < 2.0**53:
        return str(int(value))
    return text


class _NotTextError(ValueError):
    """A JSON value that is a list or object: not a cell."""


class _RepeatedKeyError(ValueError):
    """An object naming one key twice: which of its values is the cell cannot be told."""


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    row = dict(pairs)
    if len(row) != len(pairs):
        raise _RepeatedKeyError
    return row


def _value_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if value is True or value is False:
        return "true" if value else "false"
    raise _NotTextError


class _JsonLines:
    """Splits JSON Lines into rows of text (see the module documentation)."""

    def __init__(self, stream: IO[bytes], name: str, size: int | None) -> None:
        self.stream = stream
        self.name = name
        self.size = size
        self.line = 0
        self.position = 0
        self.names: tuple[str, ...] | None = None

    def reject(self, raw: bytes, code: str, message: str) -> Reject:
        return Reject(
            source=self.name,
            location=f"line {self.line}",
            code=code,
            message=message,
            line=self.line,
            record=raw.decode("utf-8", "replace").rstrip("\r\n"),
        )

    def parse(self, raw: bytes) -> dict[str, str] | Reject:
        try:
            value = json.loads(
                raw.removeprefix(b"\xef\xbb\xbf") if self.line == 1 else raw,
                parse_int=str,
                parse_float=_float_text,
                parse_constant=str,
                object_pairs_hook=_once_each,
            )
        except _RepeatedKeyError:  # the standard library would keep the last value, silently
            return self.reject(raw, "json", "not a JSON object of cells: a key repeats")
        except UnicodeDecodeError:
            return self.reject(raw, "encoding", "the line is not UTF-8")
        except RecursionError:
            return self.reject(raw, "json", "not a JSON object: nested too deeply")
        except ValueError as exc:
            reason = getattr(exc, "msg", "not JSON")
            return self.reject(raw, "json", f"not a JSON object: {reason}")
        if not isinstance(value, dict):
            return self.reject(raw, "json", "not a JSON object")
        try:
            row = {str(k): _value_text(v) for k, v in value.items()}
        except _NotTextError:
            return self.reject(raw, "json", "a value is a list or an object, not a cell")
        if self.names is None:
            self.names = tuple(row)
        elif unknown := [k for k in row if k not in self.names]:
            keys = ", ".join(repr(k) for k in unknown[:3])
            return self.reject(raw, "json", f"keys the first object does not have: {keys}")
        return row

    def part(self, size: int) -> tuple[list[dict[str, str]], list[int], list[Reject], int, bool]:
        rows: list[dict[str, str]] = []
        keys: list[int] = []
        rejects: list[Reject] = []
        blank = 0
        for raw in self.stream:
            self.line += 1
            self.position += len(raw)
            if not raw.strip(b" \t\r\n\xef\xbb\xbf" if self.line == 1 else b" \t\r\n"):
                blank += 1
                continue
            parsed = self.parse(raw)
            if isinstance(parsed, Reject):
                rejects.append(parsed)
            else:
                rows.append(parsed)
                keys.append(self.line)
            if len(rows) + len(rejects) >= size:
                return rows, keys, rejects, blank, False
        return rows, keys, rejects, blank, True


def _read_json_lines(
    source: str | os.PathLike[str], options: ReadOptions, instruments: Sequence[Instrument]
) -> Iterator[ReadChunk]:
    from pamlib.formats._arrow import pyarrow_module
    from pamlib.formats.tables import TableReader

    pa = pyarrow_module()
    stream, name, size = _open(source)
    try:
        lines = _JsonLines(stream, name, size)
        reader = TableReader(options, instruments, source=name, unit="line")
        done = False
        while not done:
            rows, keys, rejects, blank, done = lines.part(max(1, options.chunk_rows))
            if lines.names is None:  # no object yet: nothing to check the columns of
                if not done or rejects or blank:
                    yield ReadChunk((), tuple(rejects), len(rejects) + blank, n_blank=blank)
                    continue
                raise FormatError(
                    f"{name} holds no records",
                    [Problem(name, "no-header", "no JSON object to name the columns")],
                )
            names = lines.names
            batch = pa.RecordBatch.from_arrays(
                [pa.array([r.get(k, "") for r in rows], pa.string()) for k in names],
                names=list(names),
            )
            chunk = reader.chunk(batch, keys=np.asarray(keys, dtype=np.int64))
            yield attrs.evolve(
                chunk,
                rejects=tuple(sorted((*chunk.rejects, *rejects), key=lambda r: r.line or 0)),
                n_read=chunk.n_read + len(rejects) + blank,
                n_blank=chunk.n_blank + blank,
                progress=lines.position / size if size else None,
            )
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


@hookimpl
def pamlib_register_formats(register: Callable[[Format], None]) -> None:
    register(ParquetFormat())
    register(JsonLinesFormat())
