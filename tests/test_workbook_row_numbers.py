"""Workbooks whose sheet XML numbers rows or cells out of order: a row numbered twice or below
one before it, a cell written twice or left of one before it, or inside another row, and rows
with no number mixed with numbered ones. Excel never writes such a sheet; hand-written and buggy
exporters do. openpyxl alone skips, overwrites or merges the records concerned with no word, so
pamlib refuses the sheet with a :class:`~pamlib.errors.FormatError` naming every such row and
quoting no cell; rows with no number that collide with none are read where they count.

Nothing is lost: every record (``<row>`` below the header) of the XML is either read and
reconciled, or the whole sheet is refused (and nothing is written under an output's name).
"""

from __future__ import annotations

import re
import traceback
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pamlib.errors import FormatError
from pamlib.formats.base import ReadOptions
from pamlib.formats.workbook import read_workbook
from pamlib.pipeline import TableScorer
from tests.csv_strategies import ITEMS
from tests.test_workbook import ANSWERS, NHS, _scored

openpyxl = pytest.importorskip("openpyxl")

SHEET = "xl/worksheets/sheet1.xml"
HEADER = ["patient_id", "assessed_on", "instrument", *ITEMS]  # columns A to P
ROW = re.compile(rb"<row\b[^>]*>.*?</row>", re.DOTALL)


def _patient(i: int) -> str:
    """A patient identifier no message may quote."""
    return f"{NHS}-{i:04d}"


def _book(path: Path, n: int = 5) -> Path:
    """A sheet as Excel writes it: the header in row 1, records in rows 2 to ``n + 1``."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Returns"
    sheet.append(HEADER)
    for i in range(n):
        sheet.append([_patient(i), "2024-03-01", "PAM-13", *(int(a) for a in ANSWERS)])
    book.save(path)
    return path


def _rewrite(path: Path, change: Callable[[bytes], bytes]) -> Path:
    with zipfile.ZipFile(path) as old:
        members = [(info, old.read(info.filename)) for info in old.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for info, data in members:
            new.writestr(info, change(data) if info.filename == SHEET else data)
    return path


def _renumber(numbers: Sequence[int | None]) -> Callable[[bytes], bytes]:
    """Give the sheet's rows, in the order the XML holds them, these numbers; ``None`` writes a
    row (and its cells) with no number. Cells keep their columns and follow their row."""

    def change(xml: bytes) -> bytes:
        rows = ROW.findall(xml)
        assert len(rows) == len(numbers)
        out: list[bytes] = []
        for row, number in zip(rows, numbers, strict=True):
            if number is None:
                changed = re.sub(rb'(<row\b[^>]*?) r="\d+"', rb"\1", row, count=1)
                changed = re.sub(rb'(<c\b[^>]*?) r="[A-Z]+\d+"', rb"\1", changed)
            else:
                changed = re.sub(rb'(<row\b[^>]*?) r="\d+"', b'\\1 r="%d"' % number, row, count=1)
                changed = re.sub(rb'(<c\b[^>]*? r="[A-Z]+)\d+"', b'\\g<1>%d"' % number, changed)
            out.append(changed)
        start, end = xml.index(b"<row"), xml.rindex(b"</row>") + len(b"</row>")
        return xml[:start] + b"".join(out) + xml[end:]

    return change


def _cell_ref(old: str, new: str) -> Callable[[bytes], bytes]:
    def change(xml: bytes) -> bytes:
        out, n = re.subn(f'<c r="{old}"'.encode(), f'<c r="{new}"'.encode(), xml)
        assert n == 1
        return out

    return change


def _move_cell_to_row_end(ref: str) -> Callable[[bytes], bytes]:
    """Write the cell ``ref`` last in its row: its row's cells then go backwards."""

    def change(xml: bytes) -> bytes:
        cell = re.search(f'<c r="{ref}"[^>]*>.*?</c>'.encode(), xml, re.DOTALL)
        assert cell is not None
        xml = xml[: cell.start()] + xml[cell.end() :]
        end = xml.index(b"</row>", cell.start())
        return xml[:end] + cell.group() + xml[end:]

    return change


def _records_in_xml(path: Path) -> int:
    """The records the sheet's XML holds: its ``<row>`` elements holding a value, less the
    header."""
    with zipfile.ZipFile(path) as book:
        xml = book.read(SHEET)
    return sum(1 for row in ROW.findall(xml) if b"<v>" in row or b"<t>" in row) - 1


def _shown(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _refused(path: Path) -> FormatError:
    """The sheet is refused whole, and the error quotes no patient's identifier."""
    with pytest.raises(FormatError) as caught:
        TableScorer(provider="raw-sum").score_source(path)
    exc = caught.value
    assert exc.summary.startswith(f"cannot read {path}: sheet 1 is damaged: ")
    assert "rows or cells out of order" in exc.summary
    assert exc.__cause__ is None
    assert exc.__context__ is None
    shown = _shown(exc)
    assert NHS not in shown
    assert "PAM-13" not in shown
    assert "2024-03-01" not in shown
    return exc


def _named(exc: FormatError, path: Path) -> list[tuple[int, str]]:
    """Each problem's row (as the sheet numbers it) and message; every one is located."""
    named: list[tuple[int, str]] = []
    for problem in exc.problems:
        assert problem.code == "xlsx"
        prefix = f"{path}: sheet 1, row "
        assert problem.where.startswith(prefix), problem.where
        named.append((int(problem.where.removeprefix(prefix)), problem.message))
    return named


# -- rows ------------------------------------------------------------------------------------------


def test_a_repeated_row_number_refuses_the_sheet_naming_the_row(tmp_path: Path) -> None:
    path = _rewrite(_book(tmp_path / "twice.xlsx"), _renumber([1, 2, 3, 4, 5, 5]))
    assert _records_in_xml(path) == 5
    exc = _refused(path)
    assert _named(exc, path) == [(5, "row 5 appears twice in the sheet's XML")]


def test_a_falling_row_number_refuses_the_sheet_naming_the_rows(tmp_path: Path) -> None:
    path = _rewrite(_book(tmp_path / "falling.xlsx"), _renumber([1, 2, 7, 3, 4, 5]))
    assert _records_in_xml(path) == 5
    exc = _refused(path)
    assert _named(exc, path) == [
        (3, "row 3 comes after row 7 in the sheet's XML"),
        (4, "row 4 comes after row 7 in the sheet's XML"),
        (5, "row 5 comes after row 7 in the sheet's XML"),
    ]


def test_a_block_of_rows_written_twice_names_each_row(tmp_path: Path) -> None:
    path = _rewrite(_book(tmp_path / "block.xlsx", 7), _renumber([1, 2, 3, 4, 2, 3, 4, 5]))
    exc = _refused(path)
    assert _named(exc, path) == [
        (2, "row 2 comes after row 4 in the sheet's XML"),
        (3, "row 3 comes after row 4 in the sheet's XML"),
        (4, "row 4 appears twice in the sheet's XML"),
    ]


def test_a_row_numbered_zero_refuses_the_sheet(tmp_path: Path) -> None:
    path = _rewrite(_book(tmp_path / "zero.xlsx"), _renumber([1, 2, 3, 0, 4, 5]))
    exc = _refused(path)
    assert _named(exc, path) == [(0, "row 0 is not a row number (rows start at 1)")]


def test_the_header_row_repeated_refuses_the_sheet(tmp_path: Path) -> None:
    path = _rewrite(_book(tmp_path / "header.xlsx"), _renumber([1, 1, 2, 3, 4, 5]))
    exc = _refused(path)
    assert _named(exc, path) == [(1, "row 1 appears twice in the sheet's XML")]


def test_many_rows_out_of_order_name_ten_and_count_the_rest(tmp_path: Path) -> None:
    path = _rewrite(_book(tmp_path / "many.xlsx", 30), _renumber([1, *range(2, 17), *range(2, 17)]))
    assert _records_in_xml(path) == 30
    exc = _refused(path)
    *named, rest = exc.problems
    assert [p.where.rsplit(", ", 1)[1] for p in named] == [f"row {n}" for n in range(2, 12)]
    assert rest.where == f"{path}: sheet 1"
    assert rest.message == "and 5 more rows out of order"


def test_damage_after_a_row_out_of_order_is_said_too(tmp_path: Path) -> None:
    path = _rewrite(_book(tmp_path / "then-damage.xlsx"), _renumber([1, 2, 3, 3, 5, 6]))
    _rewrite(path, lambda x: x[: x.index(b'<row r="6"') + 40])  # the XML cut short in row 6
    exc = _refused(path)
    assert [(p.where, p.message) for p in exc.problems] == [
        (f"{path}: sheet 1, row 3", "row 3 appears twice in the sheet's XML"),
        (
            f"{path}: sheet 1, after row 5",
            "a cell or row the reader cannot parse: the rest of the sheet was not checked",
        ),
    ]


# -- cells -----------------------------------------------------------------------------------------


def test_a_repeated_cell_reference_refuses_the_sheet(tmp_path: Path) -> None:
    path = _rewrite(_book(tmp_path / "cell-twice.xlsx"), _cell_ref("E3", "D3"))
    exc = _refused(path)
    assert _named(exc, path) == [(3, "cell D3 appears twice in row 3")]


def test_a_falling_cell_reference_refuses_the_sheet(tmp_path: Path) -> None:
    path = _rewrite(_book(tmp_path / "cell-falling.xlsx"), _move_cell_to_row_end("C4"))
    exc = _refused(path)
    assert _named(exc, path) == [(4, "cell C4 comes after cell P4 in row 4")]


def test_a_cell_inside_another_row_refuses_the_sheet(tmp_path: Path) -> None:
    path = _rewrite(_book(tmp_path / "cell-row.xlsx"), _cell_ref("B3", "B9"))
    exc = _refused(path)
    assert _named(exc, path) == [(3, "cell B9 is written inside row 3")]


def test_every_row_out_of_order_is_named_rows_and_cells_alike(tmp_path: Path) -> None:
    path = _rewrite(_book(tmp_path / "both.xlsx"), _cell_ref("E3", "D3"))
    _rewrite(path, _renumber([1, 2, 3, 4, 4, 6]))
    exc = _refused(path)
    assert _named(exc, path) == [
        (3, "cell D3 appears twice in row 3"),
        (4, "row 4 appears twice in the sheet's XML"),
    ]


# -- rows with no number ---------------------------------------------------------------------------


def test_rows_with_no_number_are_read_where_they_count(tmp_path: Path) -> None:
    truth = TableScorer(provider="raw-sum").score_source(_book(tmp_path / "true.xlsx"))
    path = _rewrite(_book(tmp_path / "none.xlsx"), _renumber([None] * 6))
    run = TableScorer(provider="raw-sum").score_source(path)
    assert _scored(run) == _scored(truth)
    assert run.summary.reconciliation == "read 5 = scored 5 + not scored 0 + rejected 0"


def test_rows_with_no_number_among_numbered_rows_keep_their_place(tmp_path: Path) -> None:
    # rows 1, 2, 3 (no number), 6, 7 (no number), 8: rows 4 and 5 are missing (blank)
    path = _book(tmp_path / "mixed.xlsx")
    # the record in row 5, which will be row 7, answers 9 to the last item
    _rewrite(path, lambda x: re.sub(rb'(<c r="P5"[^>]*>)<v>1</v>', rb"\1<v>9</v>", x))
    _rewrite(path, _renumber([1, 2, None, 6, None, 8]))
    assert _records_in_xml(path) == 5
    run = TableScorer(provider="raw-sum").score_source(path)
    assert [(r["location"], r["code"]) for r in run.rejects.to_pylist()] == [
        ("row 7", "impossible-answer")
    ]
    assert run.summary.reconciliation == "read 7 = scored 4 + not scored 0 + rejected 1 + blank 2"
    assert run.summary.n_scored + run.summary.n_rejected == _records_in_xml(path)


def test_a_row_with_no_number_colliding_with_a_numbered_row_is_named(tmp_path: Path) -> None:
    # rows 1, 2, (no number: 3), 3: the unnumbered row counts as row 3, which then repeats
    path = _rewrite(_book(tmp_path / "collide.xlsx"), _renumber([1, 2, None, 3, 4, 5]))
    assert _records_in_xml(path) == 5
    exc = _refused(path)
    assert _named(exc, path) == [
        (
            3,
            (
                "row 3 appears twice in the sheet's XML (a row written with no number counts as"
                " the one after the row before it)"
            ),
        )
    ]


# -- nothing lost, nothing written -----------------------------------------------------------------

ROW_CASES: dict[str, list[int | None]] = {
    "repeated": [1, 2, 3, 4, 5, 5],
    "falling": [1, 2, 7, 3, 4, 5],
    "unnumbered-collision": [1, 2, None, 3, 4, 5],
}


@pytest.mark.parametrize("case", sorted(ROW_CASES))
def test_openpyxl_alone_would_lose_a_record(tmp_path: Path, case: str) -> None:
    """Why the sheet is refused: openpyxl's own reading skips a record of these sheets."""
    path = _rewrite(_book(tmp_path / "lost.xlsx"), _renumber(ROW_CASES[case]))
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()
        values = list(sheet.iter_rows(values_only=True))
    finally:
        book.close()
    read = [row for row in values[1:] if any(v is not None for v in row)]
    assert len(read) < _records_in_xml(path) == 5


def test_records_read_before_the_damage_are_not_kept(tmp_path: Path) -> None:
    """Chunks of the rows above go out before the damage is met; the run is refused all the
    same, so that no record of the sheet is scored while others are lost."""
    n = 40
    path = _rewrite(_book(tmp_path / "late.xlsx", n), _renumber([*range(1, n + 1), n]))
    read: list[int] = []

    def read_all() -> None:
        for chunk in read_workbook(path, ReadOptions(chunk_rows=4), []):
            read.append(chunk.n_read)

    with pytest.raises(FormatError) as caught:
        read_all()
    assert len(read) > 1
    assert sum(read) > 0  # records went out before the damage was met
    assert [p.where for p in caught.value.problems] == [f"{path}: sheet 1, row {n}"]


def test_the_command_refuses_the_sheet_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pamlib.cli import EXIT_ERROR, main

    n = 300
    path = _rewrite(_book(tmp_path / "late.xlsx", n), _renumber([*range(1, n), n - 1, n + 1]))
    out = tmp_path / "out" / "scored.csv"
    out.parent.mkdir()
    args = ["score", str(path), "--provider", "demo", "-o", str(out), "--chunk-rows", "16"]
    assert main(args) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"row {n - 1} appears twice in the sheet's XML" in err
    assert "sheet 1" in err
    assert "internal error" not in err
    assert "Traceback" not in err
    assert NHS not in err
    assert list(out.parent.iterdir()) == []  # no scored file, no rejects file, no partial file


def test_a_well_ordered_sheet_is_read_as_before(tmp_path: Path) -> None:
    """Rising numbers with gaps, cells with gaps: read in full at their own rows."""
    path = _rewrite(_book(tmp_path / "gaps.xlsx"), _renumber([1, 2, 4, 5, 9, 10]))
    _rewrite(path, lambda x: re.sub(rb'<c r="E4"[^>]*>.*?</c>', b"", x, flags=re.DOTALL))
    run = TableScorer(provider="raw-sum").score_source(path)
    assert run.summary.reconciliation == "read 9 = scored 5 + not scored 0 + rejected 0 + blank 4"
    assert run.summary.n_scored == _records_in_xml(path)
    rows = run.scored.to_arrow().to_pylist()
    assert [r["patient_id"] for r in rows] == [_patient(i) for i in range(5)]
