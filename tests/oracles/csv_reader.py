"""A plain record-at-a-time CSV reader: the oracle the columnar reader is tested against.

pamlib reads delimited text with one reader, :mod:`pamlib.formats._columnar`, which checks whole
columns with NumPy and pyarrow. This reader is the slow, obvious way: the :mod:`csv` module
splits the file record by record, :class:`~pamlib.formats._records.RowValidator` checks each row
cell by cell, repeated assessment ids are caught with an exact set, and every valid row becomes
an :class:`~pamlib.assessment.Assessment`. The equivalence, fuzz and hostile-file tests hold the
two readers to the same records, rejects (codes, messages, fields), line numbers and output
bytes.

:class:`CsvOracleFormat` puts it behind the format contract (``input_format="csv-oracle"`` on a
host from :func:`oracle_host`), so whole scoring runs can be compared too.
"""

from __future__ import annotations

import io
import itertools
import os
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import IO

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.assessment import Assessment
from pamlib.errors import FormatError, Problem
from pamlib.formats._records import (
    _LINE_END,
    RawRecord,
    RowValidator,
    ValidRow,
    detect_delimiter,
    is_blank,
    make_reject,
    reject_message,
    split_records,
    structural_reject,
)
from pamlib.formats.base import (
    Format,
    ReadChunk,
    ReadOptions,
    RecordBatch,
    Reject,
    host_instruments,
)
from pamlib.formats.delimited import CsvFormat
from pamlib.formats.encoding import open_utf8
from pamlib.formats.layout import Layout
from pamlib.formats.values import InstrumentResolver, is_absent
from pamlib.hookspecs import hookimpl
from pamlib.identity import Patient
from pamlib.instruments import Instrument
from pamlib.plugins import PluginHost
from pamlib.responses import UNANSWERED_CODE, Response

__all__ = [
    "ORACLE_FORMAT",
    "CsvOracleFormat",
    "LocatedAssessment",
    "RecordReader",
    "iter_assessments",
    "oracle_host",
    "read_record_chunks",
]


def text_stream(binary: IO[bytes]) -> io.TextIOWrapper:
    """Decoded text, BOM dropped, line endings kept, undecodable bytes kept as surrogates."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")


@attrs.frozen
class LocatedAssessment:
    """An assessment read from a file, with the physical line where its record starts."""

    assessment: Assessment
    line: int
    source: str


def assessment_from_row(row: ValidRow) -> Assessment:
    responses = {
        item: Response(code)
        for item, code in zip(row.instrument.items, row.codes, strict=True)
        if code != UNANSWERED_CODE
    }
    return Assessment(
        id=row.assessment_id,
        patient=Patient(row.patient_id or None, nhs_number=row.nhs_number or None),
        instrument=row.instrument,
        assessed_on=row.assessed_on,
        responses=responses,
        site=row.site,
        attributes=row.extras,
    )


class RecordReader:
    """An open delimited file: its layout, and its records checked one at a time.

    Iterating yields ``(record, row, reject)`` with at most one of ``row`` and ``reject`` set:
    neither for a blank record (see :func:`is_blank`). The file is read in the encoding
    ``options.settings["encoding"]`` names, or the one :mod:`pamlib.formats.encoding` finds.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        options: ReadOptions,
        instruments: Iterable[Instrument],
    ) -> None:
        self.options = options
        opened = open_utf8(source, options.settings)
        self._binary, self.name, self.size = opened.stream, opened.name, opened.size
        self.encoding = opened.encoding
        self._text: io.TextIOWrapper | None = None
        try:
            text = self._text = text_stream(self._binary)
            head: list[str] = []
            for line in text:
                # Every byte-order mark at the start, not just the one utf-8-sig drops: a
                # second one would otherwise become part of the first column's name.
                head.append(line if head else line.lstrip("\ufeff"))
                if _LINE_END.sub("", head[-1]):
                    break
            self.delimiter = str(
                options.settings.get("delimiter") or detect_delimiter("".join(head[-1:]))
            )
            self._records = split_records(itertools.chain(head, text), delimiter=self.delimiter)
            header = next(self._records, None)
            if header is None:
                raise FormatError(
                    f"{self.name} is empty", [Problem(self.name, "empty", "no header line")]
                )
            self.header_line = header.line
            self.layout = Layout.resolve(header.fields, options, source=self.name)
            self.validator = RowValidator(
                self.layout,
                options,
                InstrumentResolver(
                    instruments, aliases=options.instrument_aliases, default=options.instrument
                ),
                source=self.name,
            )
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        records: Generator[RawRecord, None, None] | None = getattr(self, "_records", None)
        if records is not None:
            records.close()
        stdin = self._binary is sys.stdin.buffer
        if self._text is not None:
            if stdin:
                self._text.detach()
            else:
                self._text.close()
            self._text = None
        elif not stdin:
            self._binary.close()

    def tell(self) -> int | None:
        """Bytes of the input read so far (read-ahead included), where the input can tell."""
        try:
            return self._binary.tell() if self._binary.seekable() else None
        except (OSError, ValueError):
            return None

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[RawRecord, ValidRow | None, Reject | None]]:
        layout, validator, name = self.layout, self.validator, self.name
        seen: set[str] = set()
        id_position = layout.columns.get("assessment_id")
        for record in self._records:
            if is_blank(record):
                yield record, None, None
                continue
            structural = structural_reject(record, layout.n_fields, encoding=self.encoding)
            if structural is not None:
                code, message = structural
                keep_fields = code in ("encoding", "field-too-long")
                yield (
                    record,
                    None,
                    make_reject(
                        name,
                        record.line,
                        code,
                        message,
                        fields=validator.fields_of(record.fields) if keep_fields else None,
                        record="" if keep_fields else record.raw,
                    ),
                )
                continue
            duplicate = False
            if id_position is not None:
                aid = record.fields[id_position]
                if not is_absent(aid):
                    duplicate = aid in seen
                    seen.add(aid)
            row, problems = validator.check(record.fields, record.line, duplicate=duplicate)
            if row is None:
                yield (
                    record,
                    None,
                    make_reject(
                        name,
                        record.line,
                        problems[0].code,
                        reject_message(problems),
                        fields=validator.fields_of(record.fields),
                    ),
                )
            else:
                yield record, row, None


def iter_assessments(
    source: str | os.PathLike[str],
    options: ReadOptions | None = None,
    *,
    instruments: Iterable[Instrument] | None = None,
) -> Iterator[LocatedAssessment | Reject]:
    """Read a delimited export one record at a time: an assessment per valid row, a
    :class:`~pamlib.formats.base.Reject` per row that is not, in file order.

    ``instruments`` defaults to every installed instrument.
    """
    if instruments is None:
        from pamlib.plugins import get_host

        instruments = list(get_host().instruments())
    with RecordReader(source, options or ReadOptions(), instruments) as reader:
        for record, row, reject in reader:
            if reject is not None:
                yield reject
            elif row is not None:
                yield LocatedAssessment(assessment_from_row(row), record.line, reader.name)


def _texts(values: Iterable[str]) -> npt.NDArray[np.object_]:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def batches_from_assessments(located: list[LocatedAssessment], source: str) -> list[RecordBatch]:
    """Assessments as record batches, one per instrument in order of first appearance."""
    by_instrument: dict[str, list[LocatedAssessment]] = {}
    for item in located:
        by_instrument.setdefault(item.assessment.instrument.id, []).append(item)
    batches = []
    for group in by_instrument.values():
        instrument = group[0].assessment.instrument
        names = list(group[0].assessment.attributes)

        batches.append(
            RecordBatch(
                instrument=instrument,
                assessment_id=_texts(a.assessment.id for a in group),
                patient_id=_texts(a.assessment.patient.id or "" for a in group),
                nhs_number=_texts(a.assessment.patient.nhs_number or "" for a in group),
                assessed_on=np.array(
                    [a.assessment.assessed_on for a in group], dtype="datetime64[D]"
                ),
                site=_texts(a.assessment.site or "" for a in group),
                codes=np.stack([a.assessment.codes() for a in group]).astype(np.int8),
                extras={
                    name: _texts(a.assessment.attributes[name] for a in group) for name in names
                },
                lines=np.array([a.line for a in group], dtype=np.int64),
                source=source,
            )
        )
    return batches


def read_record_chunks(
    source: str | os.PathLike[str],
    options: ReadOptions,
    instruments: Iterable[Instrument],
) -> Iterator[ReadChunk]:
    """The object path as :class:`~pamlib.formats.base.ReadChunk` objects: ``chunk_rows``
    records at a time, each valid one built as an :class:`~pamlib.assessment.Assessment`."""
    with RecordReader(source, options, instruments) as reader:
        size = reader.size
        located: list[LocatedAssessment] = []
        rejects: list[Reject] = []
        n_read = n_blank = 0
        yielded = False

        def chunk() -> ReadChunk:
            position = reader.tell()
            return ReadChunk(
                batches=tuple(batches_from_assessments(located, reader.name)),
                rejects=tuple(rejects),
                n_read=n_read,
                extra_columns=reader.layout.extra_names,
                source_columns=reader.layout.header,
                progress=None if not size or position is None else min(1.0, position / size),
                n_blank=n_blank,
            )

        for record, row, reject in reader:
            n_read += 1
            if reject is not None:
                rejects.append(reject)
            elif row is not None:
                located.append(
                    LocatedAssessment(assessment_from_row(row), record.line, reader.name)
                )
            else:
                n_blank += 1
            if n_read >= options.chunk_rows:
                yield chunk()
                yielded = True
                located, rejects, n_read, n_blank = [], [], 0, 0
        if n_read or not yielded:
            yield chunk()


#: The name the oracle is registered under by :func:`oracle_host`.
ORACLE_FORMAT = "csv-oracle"


class CsvOracleFormat(CsvFormat):
    """The built-in CSV format with this module's reader: same writer, same checks of options."""

    name = ORACLE_FORMAT
    extensions: tuple[str, ...] = (".oracle-csv",)
    description = "delimited text read one record at a time (the tests' oracle)"

    def read(
        self,
        source: str | os.PathLike[str],
        options: ReadOptions,
        *,
        host: PluginHost | None = None,
    ) -> Iterator[ReadChunk]:
        self.check_options(attrs.evolve(options, engine="auto"))
        return read_record_chunks(source, options, host_instruments(host))


class _OraclePlugin:
    @hookimpl
    def pamlib_register_formats(self, register: Callable[[Format], None]) -> None:
        register(CsvOracleFormat())


def oracle_host(plugins: Mapping[str, object] | None = None) -> PluginHost:
    """pamlib's built-in plugins (and ``plugins``), with the oracle registered as
    :data:`ORACLE_FORMAT`."""
    return PluginHost(
        load_entry_points=False,
        disabled=(),
        plugins={**(plugins or {}), "csv-oracle": _OraclePlugin()},
    )
