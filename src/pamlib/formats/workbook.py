"""Excel workbooks in: one sheet of a ``.xlsx`` file read as an export (needs the ``xlsx`` extra).

The sheet is read as a person sees it. Its header is the first row holding anything; each row
below it is a record, located as ``row N`` by the sheet's own row number. Cells become the text
an export would hold, so the checks (and their reject codes) are those of a CSV file:

- dates and date-times (cells Excel shows as dates) are ISO dates, ``2024-03-01`` (a time of
  day, where there is one, follows as ``T09:30:00`` and is ignored where a date is read);
- numbers are their shortest text: ``1`` for 1 or 1.0, ``2.5``; numbers stored as text stay
  the text they are; ``TRUE`` and ``FALSE`` are ``true`` and ``false``;
- a formula is its last calculated value, and a cell holding an error is its error text
  (``#N/A``), which is never an answer;
- rows holding nothing (empty cells, or only spaces) are skipped and counted as blank.

Only columns with a name in the header row are read; a row with a value under no name is
rejected (``field-count``), as a CSV record with too many fields is. The reader is openpyxl in
read-only mode, which reads a sheet row by row (so memory stays flat) and keeps an error cell's
text rather than reading it as empty.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from pamlib.errors import ConfigurationError, FormatError, Problem
from pamlib.formats.base import Format, ReadChunk, ReadOptions, Reject, host_instruments
from pamlib.hookspecs import hookimpl

if TYPE_CHECKING:
    from pamlib.plugins import PluginHost

__all__ = ["WorkbookFormat", "cell_text", "read_workbook"]

_INSTALL = "pip install 'pamlib[xlsx]'"


def cell_text(value: object) -> str:
    """One cell's value as an export would hold it (see the module documentation).

    >>> import datetime as dt
    >>> [cell_text(v) for v in (None, 1.0, 2.5, "07", True, dt.datetime(2024, 3, 1))]
    ['', '1', '2.5', '07', 'true', '2024-03-01']
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == math.floor(value) and abs(value) < 2.0**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _openpyxl() -> Any:
    try:
        import openpyxl
    except ImportError:
        raise ConfigurationError(f"reading Excel workbooks needs openpyxl: {_INSTALL}") from None
    return openpyxl


class WorkbookFormat:
    """Excel workbooks (``.xlsx``, ``.xlsm``): the first sheet, or ``settings["sheet"]``."""

    name = "xlsx"
    extensions = (".xlsx", ".xlsm")
    description = "Excel workbook, one sheet (first by default; --sheet NAME); needs pamlib[xlsx]"

    def read(
        self,
        source: str | os.PathLike[str],
        options: ReadOptions,
        *,
        host: PluginHost | None = None,
    ) -> Iterator[ReadChunk]:
        return read_workbook(source, options, host_instruments(host))

    def __repr__(self) -> str:
        return "<WorkbookFormat>"


def _open(source: str | os.PathLike[str], name: str) -> Any:
    openpyxl = _openpyxl()
    from zipfile import BadZipFile

    try:
        if str(source) == "-":
            target: Any = io.BytesIO(sys.stdin.buffer.read())
        else:
            target = Path(source)
        with warnings.catch_warnings():  # styles and extensions it cannot read: not our data
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(target, read_only=True, data_only=True)
    except OSError as exc:
        raise FormatError(
            f"cannot read {name}", [Problem(name, "io", exc.strerror or str(exc))]
        ) from None
    except (BadZipFile, KeyError, ValueError, openpyxl.utils.exceptions.InvalidFileException):
        raise FormatError(
            f"cannot read {name} as an Excel workbook",
            [Problem(name, "xlsx", "not an .xlsx workbook (save it as 'Excel Workbook')")],
        ) from None


def _sheet(book: Any, wanted: object, name: str) -> Any:
    if wanted is None:
        sheets = [s for s in book.worksheets if s.sheet_state == "visible"] or book.worksheets
        if not sheets:
            raise FormatError(f"{name} has no sheet", [Problem(name, "xlsx", "no worksheet")])
        return sheets[0]
    if not isinstance(wanted, str) or wanted not in book.sheetnames:
        raise ConfigurationError(
            f"{name} has no sheet {wanted!r}; its sheets are {', '.join(book.sheetnames)}"
        )
    return book[wanted]


def _blank(row: Sequence[object]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


@attrs.define
class _Part:
    """The non-blank rows of one chunk, as text under the header's names, with their rows."""

    rows: list[list[str]] = attrs.field(factory=list)
    keys: list[int] = attrs.field(factory=list)
    rejects: list[Reject] = attrs.field(factory=list)
    n_blank: int = 0
    done: bool = False


class _SheetRows:
    """Reads a sheet's rows after the header, a chunk at a time (warnings kept quiet)."""

    def __init__(self, sheet: Any, name: str) -> None:
        self.name = name
        self.rows = enumerate(sheet.iter_rows(values_only=True), start=1)
        self.total = sheet.max_row if isinstance(sheet.max_row, int) else None
        self.row = 0
        header: Sequence[object] | None = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for row, cells in self.rows:
                self.row = row
                if not _blank(cells):
                    header = cells
                    break
        if header is None:
            raise FormatError(
                f"{name}: the sheet is empty",
                [Problem(name, "no-header", "no row holds anything, so there is no header")],
            )
        named = [i for i, v in enumerate(header) if cell_text(v).strip()]
        self.positions = named
        self.names = tuple(cell_text(header[i]) for i in named)
        self.header_row = self.row

    def part(self, size: int) -> _Part:
        part = _Part()
        named = set(self.positions)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for row, cells in self.rows:
                self.row = row
                if _blank(cells):
                    part.n_blank += 1
                    continue
                texts = [cell_text(cells[i]) if i < len(cells) else "" for i in self.positions]
                stray = [i for i, v in enumerate(cells) if i not in named and not _blank([v])]
                if stray:
                    part.rejects.append(self._stray(texts, stray))
                else:
                    part.rows.append(texts)
                    part.keys.append(self.row)
                if len(part.rows) + len(part.rejects) >= size:
                    return part
        part.done = True
        return part

    def _stray(self, texts: list[str], stray: list[int]) -> Reject:
        from openpyxl.utils import get_column_letter

        where = ", ".join(get_column_letter(i + 1) for i in stray)
        return Reject(
            source=self.name,
            location=f"row {self.row}",
            code="field-count",
            message=f"a value in column {where}, which has no name in the header row",
            fields=dict(zip(self.names, texts, strict=True)),
            line=self.row,
        )


def read_workbook(
    source: str | os.PathLike[str], options: ReadOptions, instruments: Sequence[Any]
) -> Iterator[ReadChunk]:
    """Read one sheet of a workbook as checked chunks (see the module documentation); the first
    chunk holds no records and names the columns."""
    from pamlib.formats._arrow import pyarrow_module
    from pamlib.formats.tables import TableReader

    pa = pyarrow_module()
    name = "<stdin>" if str(source) == "-" else str(source)
    book = _open(source, name)
    try:
        sheet_rows = _SheetRows(_sheet(book, options.settings.get("sheet"), name), name)
        reader = TableReader(options, instruments, source=name)
        names = sheet_rows.names

        def batch(rows: list[list[str]]) -> Any:
            columns = [pa.array([r[i] for r in rows], pa.string()) for i in range(len(names))]
            return pa.RecordBatch.from_arrays(columns, names=list(names))

        yield reader.chunk(batch([]), keys=np.zeros(0, dtype=np.int64))
        size = max(1, options.chunk_rows)
        while True:
            part = sheet_rows.part(size)
            chunk = reader.chunk(batch(part.rows), keys=np.asarray(part.keys, dtype=np.int64))
            total = sheet_rows.total
            yield attrs.evolve(
                chunk,
                rejects=tuple(sorted((*chunk.rejects, *part.rejects), key=lambda r: r.line or 0)),
                n_read=chunk.n_read + len(part.rejects) + part.n_blank,
                n_blank=chunk.n_blank + part.n_blank,
                progress=min(1.0, sheet_rows.row / total) if total else None,
            )
            if part.done:
                break
    finally:
        book.close()


@hookimpl
def pamlib_register_formats(register: Callable[[Format], None]) -> None:
    register(WorkbookFormat())
