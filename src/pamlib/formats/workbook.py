"""Excel workbooks in: one sheet of a ``.xlsx`` file read as an export (needs the ``xlsx`` extra).

The sheet is read as a person sees it. Its header is the first row holding anything; each row
below it is a record, located as ``row N`` by the sheet's own row number. Cells become the text
an export would hold, so the checks (and their reject codes) are those of a CSV file:

- dates and date-times (cells Excel shows as dates) are ISO dates, ``2024-03-01`` (a time of
  day, where there is one, follows as ``T09:30:00`` and is ignored where a date is read);
- numbers are their shortest text: ``1`` for 1 or 1.0, ``2.5``; numbers stored as text stay
  the text they are; ``TRUE`` and ``FALSE`` are ``true`` and ``false``;
- a formula is its last calculated value, and a cell holding an error is its error text
  (``#N/A``), which is never an answer; a formula saved without a value (never calculated)
  rejects its row (``formula``) rather than reading as empty;
- a named cell that merged cells cover (any but the merge's first cell, which holds the value
  Excel shows over all of them) rejects its row (``merged-cells``);
- rows holding nothing (empty cells, or only spaces) are skipped and counted as blank.

Only columns with a name in the header row are read; a row with a value under no name is
rejected (``field-count``), as a CSV record with too many fields is. The reader is openpyxl's
read-only sheet parser, which reads a sheet row by row (so memory stays flat) and keeps an error
cell's text rather than reading it as empty. The size a sheet declares (its ``<dimension>``) is
not trusted, as some writers get it wrong: every row and cell the sheet holds is read.

A sheet the reader cannot parse (a cell that is not what its type says, XML cut short) is a
:class:`~pamlib.errors.FormatError` located by the sheet's number and the last row read. So is a
sheet whose XML holds rows or cells out of order (Excel never writes one, but other programs
do): a row numbered twice or below one before it, a cell written twice or left of one before it
in its row, or inside a row other than its own. Read as openpyxl reads it, such a sheet loses or
merges records without a word; the error names every such row (the first ten, and how many
more). No message quotes a cell or a sheet's name, either of which may identify a patient.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import attrs
import numpy as np

from pamlib.errors import ConfigurationError, FormatError, Problem
from pamlib.formats.base import Format, ReadChunk, ReadOptions, Reject, host_instruments
from pamlib.hookspecs import hookimpl

if TYPE_CHECKING:
    from pamlib.plugins import PluginHost

__all__ = ["WorkbookFormat", "cell_text", "read_workbook"]

_INSTALL = "pip install 'pamlib[xlsx]'"

#: Excel's last row. A sheet numbering a row beyond it is damaged, and the reader yields every
#: empty row up to that number before it.
_LAST_ROW = 1_048_576

#: The rows out of order a FormatError lists (by number); the rest are counted.
_SHOWN = 10


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
    if isinstance(value, Uncalculated):
        return value.formula
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


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_FORMULA_TAG = f"{_MAIN}f"


@attrs.frozen
class Uncalculated:
    """A formula cell saved without its value (by a program that does not calculate, such as
    a script): the value Excel would show is unknown, so the row is rejected rather than read
    with the cell empty. ``formula`` is the formula's text, for the rejects file."""

    formula: str


#: Merged cells in a sheet's XML: ``<mergeCell ref="E2:E3"/>``, with or without a prefix.
_MERGE = re.compile(
    rb'<(?:[A-Za-z_][\w.-]*:)?mergeCell\s[^>]*?\bref\s*=\s*["\']([A-Z]+[0-9]+(?::[A-Z]+[0-9]+)?)["\']'
)


def _merged_ranges(sheet: Any) -> list[tuple[int, int, int, int]]:
    """The sheet's merged cells as ``(first row, last row, first column, last column)``, sorted
    by first row. The sheet's XML lists them after its rows, so they are found by one pass over
    its bytes before the rows are read (openpyxl's read-only sheet does not read them)."""
    found: list[tuple[int, int, int, int]] = []
    tail = b""
    with sheet._get_source() as source:
        while True:
            block = source.read(1 << 20)
            if not block:
                break
            data = tail + block
            cut = data.rfind(b"<")
            # An element cut at the end of the block is kept for the next one.
            end = cut if cut > 0 and len(data) - cut < 4096 else len(data)
            _add_merges(data[:end], found)
            tail = data[end:]
    _add_merges(tail, found)
    return sorted(found)


def _add_merges(data: bytes, found: list[tuple[int, int, int, int]]) -> None:
    from openpyxl.utils.cell import range_boundaries

    for match in _MERGE.finditer(data):
        c1, r1, c2, r2 = range_boundaries(match.group(1).decode("ascii"))
        if (r1, c1) != (r2, c2):
            found.append((r1, r2, c1, c2))


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


def _damage() -> tuple[type[Exception], ...]:
    """What openpyxl raises on a part it cannot parse: a value not of its cell's type, a
    shared-string index out of range, XML cut short or not well formed, a damaged member."""
    import zlib
    from zipfile import BadZipFile

    return (
        ValueError,
        LookupError,
        AttributeError,  # a chart sheet without its drawing's relationships, for one
        TypeError,
        OverflowError,
        SyntaxError,
        BadZipFile,
        zlib.error,
        EOFError,
    )


def _open(source: str | os.PathLike[str], name: str) -> tuple[Any, BinaryIO]:
    """The workbook, and the file it reads: openpyxl leaves its file open when it fails, so the
    file is opened (and, on failure, closed) here."""
    openpyxl = _openpyxl()
    from zipfile import BadZipFile, is_zipfile

    # Every error is raised outside its ``except``: the parser's exception (whose text may quote
    # a cell) is then neither the cause nor the context of pamlib's.
    handle: BinaryIO | None = None
    not_xlsx = "not an .xlsx workbook (save it as 'Excel Workbook')"
    damaged = "a part of the workbook the reader cannot parse"
    try:
        if str(source) == "-":
            handle = io.BytesIO(sys.stdin.buffer.read())
        else:
            handle = Path(source).open("rb")  # noqa: SIM115 -- closed by read_workbook, or below
        with warnings.catch_warnings():  # styles and extensions it cannot read: not our data
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(handle, read_only=True, data_only=True), handle
    except OSError as exc:
        code, message = "io", exc.strerror or str(exc)
    except BadZipFile:  # not a zip archive, or one whose member fails its checksum
        code, message = "xlsx", damaged if handle is not None and is_zipfile(handle) else not_xlsx
    except (KeyError, openpyxl.utils.exceptions.InvalidFileException):
        code, message = "xlsx", not_xlsx
    except _damage():
        code, message = "xlsx", damaged
    if handle is not None:
        handle.close()
    summary = f"cannot read {name}" if code == "io" else f"cannot read {name} as an Excel workbook"
    if message == damaged:
        summary += ": it is damaged"
    raise FormatError(summary, [Problem(name, code, message)])


def _sheet(book: Any, wanted: object, name: str) -> Any:
    if wanted is None:
        sheets = [s for s in book.worksheets if s.sheet_state == "visible"] or book.worksheets
        if not sheets:
            raise FormatError(f"{name} has no sheet", [Problem(name, "xlsx", "no worksheet")])
        return sheets[0]
    # Sheets' names are never listed or echoed: a site may name a sheet after a patient.
    count = len(book.sheetnames)
    held = f"it has {count} sheet{'' if count == 1 else 's'}"
    if not isinstance(wanted, str):
        raise ConfigurationError(f"the sheet of {name} to read is chosen by its name; {held}")
    if wanted not in book.sheetnames:
        raise ConfigurationError(f"{name} has no sheet of the name asked for (--sheet); {held}")
    sheet = book[wanted]
    if sheet not in book.worksheets:
        raise ConfigurationError(f"the sheet of {name} asked for (--sheet) is a chart, not a table")
    return sheet


class _OutOfOrderError(Exception):
    """Rows or cells of a sheet's XML out of order: each row named with what is wrong in it (at
    most ``_SHOWN``), how many more there are, and the last row before the parser failed, if it
    did while the rest of the sheet was being checked."""

    def __init__(self, found: list[tuple[int, str]], more: int, failed_after: int | None) -> None:
        super().__init__("rows or cells out of order")
        self.found = found
        self.more = more
        self.failed_after = failed_after


def _values(sheet: Any) -> Generator[tuple[object, ...], None, None]:
    """The rows of a read-only sheet as ``iter_rows(values_only=True)`` yields them with no
    declared size (one for each sheet row from row 1, a row the XML leaves out as empty), read
    with openpyxl's own parser; but rows or cells out of order in the XML are an
    ``_OutOfOrderError``.

    openpyxl skips a row numbered at or below one before it, lets a cell written twice overwrite
    the first, and drops the cells right of one written out of order: records lost or merged
    without a word. A row with no number is the one after the row before it, as openpyxl (and
    Excel) count it; it is out of order only where a numbered row then repeats its number.
    """
    from openpyxl.worksheet._reader import WorkSheetParser

    book = sheet.parent
    with sheet._get_source() as source:
        parser = WorkSheetParser(
            source,
            sheet._shared_strings,
            data_only=book.data_only,
            epoch=book.epoch,
            date_formats=book._date_formats,
            timedelta_formats=book._timedelta_formats,
        )
        unnumbered = [False]  # whether a row so far had no number, for the message
        parse_row = parser.parse_row

        def counted(element: Any) -> Any:
            if "r" not in element.attrib:
                unnumbered[0] = True
            return parse_row(element)

        parser.parse_row = counted
        parse_cell = parser.parse_cell

        def calculated(element: Any) -> dict[str, Any]:
            cell: dict[str, Any] = parse_cell(element)
            # No value, and not a text result (which may be empty): never calculated.
            if cell["value"] is None and cell["data_type"] != "str":
                formula = element.find(_FORMULA_TAG)
                if formula is not None:
                    cell["value"] = Uncalculated(f"={formula.text or ''}")
            return cell

        parser.parse_cell = calculated
        rows = parser.parse()
        highest = 0  # the last row yielded: every row before it has been
        for number, cells in rows:
            if number <= highest or number < 1:
                problem = _row_problem(number, highest, unnumbered[0])
            else:
                while highest < min(number - 1, _LAST_ROW):  # rows the XML leaves out, empty
                    highest += 1
                    yield ()
                if number > _LAST_ROW:  # damage, which _guarded locates after Excel's last row
                    raise OverflowError("a row beyond Excel's last row")
                got = _row_values(number, cells)
                highest = number
                if not isinstance(got, str):
                    yield got
                    continue
                problem = got
            raise _scan(rows, [(number, problem)], max(highest, number), unnumbered)


def _row_values(number: int, cells: list[dict[str, Any]]) -> tuple[object, ...] | str:
    """A row's values by column from column A, or what is out of order in it."""
    values: list[object] = []
    for cell in cells:
        gap = cell["column"] - len(values) - 1
        if gap < 0 or cell["row"] != number:
            return _cell_problem(number, cell, len(values))
        if gap:
            values.extend([None] * gap)
        values.append(cell["value"])
    return tuple(values)


def _row_problem(number: int, highest: int, unnumbered: bool) -> str:
    if number < 1:
        problem = f"row {number} is not a row number (rows start at 1)"
    elif number == highest:
        problem = f"row {number} appears twice in the sheet's XML"
    else:
        problem = f"row {number} comes after row {highest} in the sheet's XML"
    if unnumbered and number >= 1:
        problem += " (a row written with no number counts as the one after the row before it)"
    return problem


def _cell_problem(number: int, cell: dict[str, Any], last: int) -> str:
    """What is wrong with a cell of row ``number`` after ``last`` (a column), by reference."""
    from openpyxl.utils import get_column_letter

    ref = f"{get_column_letter(cell['column'])}{cell['row']}"
    if cell["row"] != number:
        return f"cell {ref} is written inside row {number}"
    if cell["column"] == last:
        return f"cell {ref} appears twice in row {number}"
    return f"cell {ref} comes after cell {get_column_letter(last)}{number} in row {number}"


def _scan(
    rows: Generator[tuple[int, list[dict[str, Any]]], None, None],
    found: list[tuple[int, str]],
    highest: int,
    unnumbered: list[bool],
) -> _OutOfOrderError:
    """Check the rest of a sheet found out of order, reading no more records: every row out of
    order is counted, the first ``_SHOWN`` named, so that the error shows all that is wrong."""
    more = 0
    row = highest
    try:
        for number, cells in rows:
            row = number
            if number <= highest or number < 1:
                problem: str | None = _row_problem(number, highest, unnumbered[0])
            else:
                got = _row_values(number, cells)
                problem = got if isinstance(got, str) else None
            highest = max(highest, number)
            if problem is None:
                continue
            if len(found) < _SHOWN:
                found.append((number, problem))
            else:
                more += 1
    except _damage():
        return _OutOfOrderError(found, more, row)
    finally:
        rows.close()
    return _OutOfOrderError(found, more, None)


def _guarded(
    rows: Generator[Sequence[object], None, None], name: str, where: str
) -> Generator[tuple[int, Sequence[object]], None, None]:
    """The sheet's rows, numbered; a row openpyxl cannot parse (or numbered beyond Excel's last
    row) is a FormatError located after the last row read, never quoting the cell. openpyxl's
    generator is closed however this one ends, so that the workbook's file is too. Rows or
    cells out of order are a FormatError naming each such row."""
    damage = _damage()
    row = 0
    disorder: _OutOfOrderError | None = None
    try:
        while True:
            try:
                cells = next(rows)
            except StopIteration:
                return
            except _OutOfOrderError as exc:
                disorder = exc
                break
            except damage:
                break  # raised below, so that the parser's exception is not its context
            if row == _LAST_ROW:
                break
            row += 1
            yield row, cells
        if disorder is not None:
            raise _disordered(disorder, name, where)
        if row == _LAST_ROW:
            what = f"a row numbered beyond Excel's last row ({_LAST_ROW:,})"
        else:
            what = "a cell or row the reader cannot parse (re-save the sheet in Excel)"
        after = f"after row {row}" if row else "before its first row"
        raise FormatError(
            f"cannot read {name}: {where} is damaged",
            [Problem(f"{name}: {where}, {after}", "xlsx", what)],
        )
    finally:
        rows.close()


def _disordered(disorder: _OutOfOrderError, name: str, where: str) -> FormatError:
    problems = [Problem(f"{name}: {where}, row {n}", "xlsx", what) for n, what in disorder.found]
    if disorder.more:
        s = "" if disorder.more == 1 else "s"
        problems.append(
            Problem(f"{name}: {where}", "xlsx", f"and {disorder.more:,} more row{s} out of order")
        )
    if disorder.failed_after is not None:
        problems.append(
            Problem(
                f"{name}: {where}, after row {disorder.failed_after}",
                "xlsx",
                "a cell or row the reader cannot parse: the rest of the sheet was not checked",
            )
        )
    return FormatError(
        f"cannot read {name}: {where} is damaged: its XML holds rows or cells out of order, "
        "which would lose or merge records. Export the sheet again, or open it in a "
        "spreadsheet program, check the rows named and save it",
        problems,
    )


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

    def __init__(self, sheet: Any, name: str, where: str) -> None:
        self.name = name
        # The declared <dimension> is a hint only, for progress: read-only openpyxl's iter_rows
        # stops at its last row and drops cells right of its last column (records and answers
        # lost without a word), and pads every row to it (a declared A1:XFD1048576 takes hours).
        # _values ignores it. Rows are numbered one for each sheet row from row 1 (gaps as empty).
        self.total = sheet.max_row if isinstance(sheet.max_row, int) else None
        self.rows = _guarded(_values(sheet), name, where)
        self.row = 0
        header: Sequence[object] | None = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for row, cells in self.rows:
                self.row = row
                # A row of formulas never calculated and nothing else is no header, as before.
                if not _blank([v for v in cells if not isinstance(v, Uncalculated)]):
                    header = cells
                    break
        if header is None:
            raise FormatError(
                f"{name}: the sheet is empty",
                [Problem(name, "no-header", "no row holds anything, so there is no header")],
            )
        unknown = [i for i, v in enumerate(header) if isinstance(v, Uncalculated)]
        if unknown:
            raise FormatError(
                f"{name}: the header row holds a formula that was never calculated",
                [Problem(f"{name}: {where}, row {self.row}", "formula", _uncalculated(unknown))],
            )
        named = [i for i, v in enumerate(header) if cell_text(v).strip()]
        self.positions = named
        self.names = tuple(cell_text(header[i]) for i in named)
        self.header_row = self.row
        try:
            self.merges = _merged_ranges(sheet)
        except _damage():
            raise FormatError(
                f"cannot read {name}: {where} is damaged",
                [Problem(f"{name}: {where}", "xlsx", "the sheet's XML cannot be read to its end")],
            ) from None
        self._next_merge = 0
        self._active: list[tuple[int, int, int, int]] = []

    def part(self, size: int) -> _Part:
        part = _Part()
        named = set(self.positions)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for row, cells in self.rows:
                self.row = row
                # A formula never calculated under no name is left out, as any cell there is
                # that holds nothing: only the named columns are read.
                stray = [
                    i
                    for i, v in enumerate(cells)
                    if i not in named and not _blank([v]) and not isinstance(v, Uncalculated)
                ]
                if not stray and _blank([cells[i] for i in self.positions if i < len(cells)]):
                    part.n_blank += 1
                    continue
                texts = [cell_text(cells[i]) if i < len(cells) else "" for i in self.positions]
                problems = self._problems(cells, stray)
                if problems:
                    part.rejects.append(self._reject(texts, problems))
                else:
                    part.rows.append(texts)
                    part.keys.append(self.row)
                if len(part.rows) + len(part.rejects) >= size:
                    return part
        part.done = True
        return part

    def close(self) -> None:
        """Stop reading: the sheet's part of the archive is closed with it."""
        self.rows.close()

    def progress(self, done: bool) -> float | None:
        """The share of the sheet read: from its declared last row while within it (a hint,
        which may be wrong), unknown past it, and all of it at the end."""
        if done:
            return 1.0
        if self.total and self.row <= self.total:
            return self.row / self.total
        return None

    def _covered(self) -> list[int]:
        """The named positions of the current row that merged cells cover, other than a merge's
        first cell (which holds its value): Excel shows that value over them, and read as they
        are saved, empty, they would be answers or dates lost without a word."""
        row = self.row
        merges = self.merges
        while self._next_merge < len(merges) and merges[self._next_merge][0] <= row:
            self._active.append(merges[self._next_merge])
            self._next_merge += 1
        if not self._active:
            return []
        self._active = [m for m in self._active if m[1] >= row]
        covered: set[int] = set()
        for r1, _, c1, c2 in self._active:
            covered.update(range(c1 if r1 < row else c1 + 1, c2 + 1))
        return [i for i in self.positions if i + 1 in covered]

    def _problems(self, cells: Sequence[object], stray: list[int]) -> list[tuple[str, str]]:
        """A row's problems as (code, message), in the order of the reject codes."""
        from openpyxl.utils import get_column_letter

        problems = []
        if stray:
            where = ", ".join(get_column_letter(i + 1) for i in stray)
            message = f"a value in column {where}, which has no name in the header row"
            problems.append(("field-count", message))
        covered = self._covered()
        if covered:
            cells_named = ", ".join(f"{get_column_letter(i + 1)}{self.row}" for i in covered)
            problems.append(
                (
                    "merged-cells",
                    (
                        f"cell {cells_named} is covered by merged cells, whose one value Excel "
                        "shows over several cells: unmerge them and fill in each cell"
                    ),
                )
            )
        unknown = [
            i for i in self.positions if i < len(cells) and isinstance(cells[i], Uncalculated)
        ]
        if unknown:
            problems.append(("formula", _uncalculated(unknown, self.row)))
        return problems

    def _reject(self, texts: list[str], problems: list[tuple[str, str]]) -> Reject:
        return Reject(
            source=self.name,
            location=f"row {self.row}",
            code=problems[0][0],
            message="; ".join(message for _, message in problems),
            fields=dict(zip(self.names, texts, strict=True)),
            line=self.row,
        )


def _uncalculated(positions: list[int], row: int | None = None) -> str:
    from openpyxl.utils import get_column_letter

    cells = ", ".join(f"{get_column_letter(i + 1)}{row or ''}" for i in positions)
    return (
        f"cell {cells} holds a formula that was never calculated, so its value is unknown "
        "(the file was saved by a program that does not calculate): open and save it in Excel"
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
    book, handle = _open(source, name)
    sheet_rows: _SheetRows | None = None
    try:
        sheet = _sheet(book, options.settings.get("sheet"), name)
        where = f"sheet {book.sheetnames.index(sheet.title) + 1}"
        sheet_rows = _SheetRows(sheet, name, where)
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
            yield attrs.evolve(
                chunk,
                rejects=tuple(sorted((*chunk.rejects, *part.rejects), key=lambda r: r.line or 0)),
                n_read=chunk.n_read + len(part.rejects) + part.n_blank,
                n_blank=chunk.n_blank + part.n_blank,
                progress=sheet_rows.progress(part.done),
            )
            if part.done:
                break
    finally:
        if sheet_rows is not None:
            sheet_rows.close()
        book.close()
        handle.close()


@hookimpl
def pamlib_register_formats(register: Callable[[Format], None]) -> None:
    register(WorkbookFormat())
