"""The built-in CSV format: delimited exports in, scored rows out.

Registered through ``pamlib_register_formats`` like any third-party format. Reading uses the
columnar reader (:mod:`pamlib.formats._columnar`) on UTF-8 bytes, which
:mod:`pamlib.formats.encoding` makes of input in other encodings (``settings["encoding"]``).
The record-at-a-time reader that ``engine="python"`` once chose was removed: it gave the same
records, rejects and line numbers more slowly, and now serves only as the tests' oracle.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from pamlib.assessment import Assessment
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
    from collections.abc import Iterable

    from pamlib.formats.output import CsvText
    from pamlib.instruments import Instrument
    from pamlib.plugins import PluginHost

__all__ = ["CsvFormat", "CsvResultWriter", "LocatedAssessment", "iter_assessments"]

#: The ``engine`` values a CSV read accepts: both mean the columnar reader.
ENGINES = ("auto", "arrow")
#: Why ``engine="python"`` is refused.
PYTHON_ENGINE_REMOVED = (
    "engine 'python' was removed: pamlib reads delimited text with its columnar reader only "
    "(pyarrow is a core dependency); use 'auto' or leave the engine out"
)


class CsvFormat:
    """Comma, semicolon or tab separated text (see the documentation's "Scoring files")."""

    name = "csv"
    extensions: tuple[str, ...] = (".csv", ".tsv", ".txt")
    description = (
        "delimited text (',' ';' or tab): UTF-8, UTF-16/32 with a BOM, cp1252 or latin-1 where "
        "the bytes leave no doubt, or the encoding given"
    )

    def read(
        self,
        source: str | os.PathLike[str],
        options: ReadOptions,
        *,
        host: PluginHost | None = None,
    ) -> Iterator[ReadChunk]:
        from pamlib.formats._columnar import read_columnar

        self.check_options(options)
        return read_columnar(source, options, host_instruments(host))

    @staticmethod
    def check_options(options: ReadOptions) -> None:
        """Refuse options no read could use, before the file is opened."""
        from pamlib.errors import ConfigurationError

        engine = options.engine
        if engine == "python":
            raise ConfigurationError(PYTHON_ENGINE_REMOVED)
        if engine not in ENGINES:
            raise ConfigurationError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
        delimiter = options.settings.get("delimiter")
        if delimiter is not None:
            from pamlib.formats.layout import delimiter_problem

            why = delimiter_problem(str(delimiter))
            if why is not None:
                raise ConfigurationError(f"delimiter {delimiter!r} cannot be used: it {why}")
        encoding = options.settings.get("encoding")
        if encoding is not None and str(encoding) != "":
            from pamlib.formats.encoding import codec_name

            codec_name(encoding)  # an unknown codec is an error before the file is opened

    def open_writer(self, target: Target, options: WriteOptions) -> ResultWriter:
        return CsvResultWriter(target, options)

    def __repr__(self) -> str:
        return "<CsvFormat>"


@attrs.frozen
class LocatedAssessment:
    """An assessment read from a file, with the physical line where its record starts."""

    assessment: Assessment
    line: int
    source: str


def iter_assessments(
    source: str | os.PathLike[str],
    options: ReadOptions | None = None,
    *,
    instruments: Iterable[Instrument] | None = None,
    host: PluginHost | None = None,
) -> Iterator[LocatedAssessment | Reject]:
    """Read a delimited export as objects: an assessment per valid row, a
    :class:`~pamlib.formats.base.Reject` per row that is not, in file order.

    The objects are the rows of the columnar reader's batches
    (:meth:`~pamlib.formats.base.RecordBatch.assessments`), so they hold exactly what a scoring
    run reads. ``instruments`` defaults to every instrument of ``host`` (the process-wide host
    by default).
    """
    options = options or ReadOptions()
    if instruments is None:
        chunks = CsvFormat().read(source, options, host=host)
    else:
        from pamlib.formats._columnar import read_columnar

        CsvFormat.check_options(options)
        chunks = read_columnar(source, options, instruments)
    for chunk in chunks:
        found: list[tuple[int, LocatedAssessment | Reject]] = [
            (r.line or 0, r) for r in chunk.rejects
        ]
        for batch in chunk.batches:
            lines = [] if batch.lines is None else batch.lines.tolist()
            for line, assessment in zip(lines, batch.assessments(), strict=True):
                found.append((line, LocatedAssessment(assessment, line, batch.source)))
        found.sort(key=lambda pair: pair[0])
        yield from (item for _, item in found)


#: Rows pyarrow's writer turns to text at a time (its default is 1,024): each such piece is
#: one write to the output, and fewer, larger ones (about 4 MiB of text here) cost about 80
#: instructions a row less, for the same bytes.
_WRITE_ROWS = 16_384


def _nothing() -> None:
    """What writes an empty batch."""


class CsvResultWriter:
    """Scored rows as CSV: ``,``-separated, UTF-8, ``\\n`` line ends, header first.

    Text is quoted only in blocks of rows where some text cell holds a comma, quote or line
    break; cells that a spreadsheet would run as a formula start with an apostrophe.
    """

    def __init__(self, target: Target, options: WriteOptions) -> None:
        from pamlib.formats._arrow import pyarrow_module
        from pamlib.formats.output import (
            AtomicTarget,
            CsvWriter,
            check_extra_columns,
            output_columns,
            protect,
        )

        self._pa = pyarrow_module()
        check_extra_columns(options.extra_columns)
        self.options = options
        self._target = AtomicTarget(target)
        header = io.StringIO()
        CsvWriter(header).writerow([protect(c) for c in output_columns(options.extra_columns)])
        self._target.stream.write(header.getvalue().encode("utf-8"))

    @property
    def name(self) -> str:
        return self._target.name

    def write(
        self, batch: RecordBatch, scores: BatchScores, extra: Mapping[str, TextColumn]
    ) -> None:
        self.prepare(batch, scores, extra)()

    def prepare(
        self, batch: RecordBatch, scores: BatchScores, extra: Mapping[str, TextColumn]
    ) -> Callable[[], None]:
        """The batch's rows as text now; what writes them (see
        :class:`~pamlib.formats.base.PreparedWrite`): a run on several threads makes the text
        of one block while the one before is written."""
        from pamlib.formats.output import csv_text

        if len(batch) == 0:
            return _nothing
        return functools.partial(self._write_text, csv_text(batch, scores, extra, self.options))

    def _write_text(self, text: CsvText) -> None:
        from pamlib.formats._arrow import Text

        if text.lines is not None:
            for lines in text.lines:
                made = Text(lines)  # the lines' bytes, as they lie in the array
                data = made.data[int(made.offsets[0]) : int(made.offsets[-1])]
                self._target.stream.write(data.data)
        else:
            self._write_table(text.table, needs_quotes=True)

    def _write_table(self, table: Any, *, needs_quotes: bool) -> None:
        self._pa.csv.write_csv(
            table,
            self._target.stream,
            self._pa.csv.WriteOptions(
                include_header=False,
                quoting_style="needed" if needs_quotes else "none",
                batch_size=_WRITE_ROWS,
            ),
        )

    def write_table(self, table: Any) -> None:
        """Write rows given as a typed scored table (:func:`~pamlib.formats.output.typed_schema`
        with this writer's extra columns): what tailored output goes through."""
        from pamlib.formats.output import csv_text_table

        if table.num_rows == 0:
            return
        text, needs_quotes = csv_text_table(table, self.options.score_decimals)
        self._write_table(text, needs_quotes=needs_quotes)

    def close(self) -> None:
        self._target.commit()

    def abort(self) -> None:
        self._target.discard()


@hookimpl
def pamlib_register_formats(register: Callable[[Format], None]) -> None:
    register(CsvFormat())
