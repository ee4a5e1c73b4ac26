"""Hostile workbooks: a sheet whose declared size is wrong, damaged cells and parts, and sheets
named after patients. Every record is read at its own row, or the read fails as a located
:class:`~pamlib.errors.FormatError` that quotes no cell and no sheet's name."""

from __future__ import annotations

import re
import time
import traceback
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pamlib.errors import ConfigurationError, FormatError
from pamlib.formats.base import ReadOptions
from pamlib.formats.workbook import read_workbook
from pamlib.pipeline import TableScorer
from tests.csv_strategies import ITEMS
from tests.test_workbook import ANSWERS, NHS, _counts, _rejects, _score, _scored

openpyxl = pytest.importorskip("openpyxl")

SHEET = "xl/worksheets/sheet1.xml"
HEADER = ["patient_id", "assessed_on", "instrument", *ITEMS]  # columns A to P
#: The NHS number of tests.test_workbook as a person types it: the text of the audit's report.
TYPED_NHS = "943 476 5919"


def _records() -> list[list[object]]:
    """Rows 2 to 6: numbers as numbers, row 4 with an answer out of range (a located reject)."""
    rows: list[list[object]] = []
    for i in range(5):
        answers: list[object] = [int(a) for a in ANSWERS]
        if i == 2:
            answers[12] = 7  # column P, the last
        rows.append([f"P{i}", "2024-03-01", "PAM-13", *answers])
    return rows


def _book(path: Path, rows: list[list[object]] | None = None) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Returns"
    sheet.append(HEADER)
    for row in _records() if rows is None else rows:
        sheet.append(row)
    book.save(path)
    return path


def _rewrite(path: Path, member: str, change: Callable[[bytes], bytes]) -> Path:
    """The workbook with one zip member changed, as a damaged or odd writer leaves it."""
    with zipfile.ZipFile(path) as old:
        members = [(info, old.read(info.filename)) for info in old.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for info, data in members:
            new.writestr(info, change(data) if info.filename == member else data)
    return path


def _declare(ref: str) -> Callable[[bytes], bytes]:
    def change(xml: bytes) -> bytes:
        out, n = re.subn(rb'<dimension ref="[^"]*" ?/>', f'<dimension ref="{ref}"/>'.encode(), xml)
        assert n == 1
        return out

    return change


def _cell(ref: str, xml: str) -> Callable[[bytes], bytes]:
    """Replace the cell at ``ref`` (whatever it holds) by ``xml``."""

    def change(sheet: bytes) -> bytes:
        out, n = re.subn(f'<c r="{ref}"[^>]*>.*?</c>'.encode(), xml.encode(), sheet)
        assert n == 1
        return out

    return change


def _shown(exc: BaseException) -> str:
    """All an exception can show: its message, problems, causes and contexts, traceback too."""
    return "".join(traceback.format_exception(exc))


# -- the declared size is a hint ---------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        "A1:A1",  # one cell: every record and every column but the first would go
        "A1:P3",  # too few rows: rows 4 to 6 would go
        "A1:J6",  # too few columns: answers q08 to q13 would be read as unanswered
        "B3:P6",  # starting below the header and right of column A
    ],
)
def test_a_wrong_declared_dimension_loses_nothing(tmp_path: Path, ref: str) -> None:
    truth = _score(_book(tmp_path / "true.xlsx"))
    odd = _score(_rewrite(_book(tmp_path / "odd.xlsx"), SHEET, _declare(ref)))
    assert _scored(odd) == _scored(truth)
    assert _rejects(odd) == _rejects(truth)
    assert [r["location"] for r in odd.rejects.to_pylist()] == ["row 4"]
    assert _counts(odd) == _counts(truth) == (5, 4, 1, 0)


def test_rows_after_a_gap_beyond_the_declared_dimension_keep_their_numbers(
    tmp_path: Path,
) -> None:
    path = _book(tmp_path / "gap.xlsx")
    bad = ["P9", "2024-03-01", "PAM-13", *ANSWERS[:12], "9"]
    cells = (
        f'<c r="{chr(65 + i)}9" t="inlineStr"><is><t>{v}</t></is></c>' for i, v in enumerate(bad)
    )
    row = f'<row r="9">{"".join(cells)}</row></sheetData>'.encode()
    _rewrite(path, SHEET, lambda x: x.replace(b"</sheetData>", row))
    _rewrite(path, SHEET, _declare("A1:P6"))
    run = _score(path)
    assert [r["location"] for r in run.rejects.to_pylist()] == ["row 4", "row 9"]
    assert run.summary.reconciliation == "read 8 = scored 4 + not scored 0 + rejected 2 + blank 2"


def test_a_huge_declared_dimension_is_read_at_the_sheets_own_size(tmp_path: Path) -> None:
    truth = _score(_book(tmp_path / "true.xlsx"))
    path = _rewrite(_book(tmp_path / "huge.xlsx"), SHEET, _declare("A1:XFD1048576"))
    start = time.monotonic()
    chunks = list(read_workbook(path, ReadOptions(chunk_rows=2), []))
    huge = _score(path)
    assert time.monotonic() - start < 30  # padded to the declared size, it took hours
    assert _scored(huge) == _scored(truth)
    assert _rejects(huge) == _rejects(truth)
    assert sum(c.n_read for c in chunks) == 5
    progress = [c.progress for c in chunks[1:]]
    assert progress[-1] == 1.0
    assert all(p is not None and p < 0.001 for p in progress[:-1])


def test_progress_follows_the_declared_rows_while_they_hold(tmp_path: Path) -> None:
    path = _book(tmp_path / "ok.xlsx", [*_records(), *_records()])  # rows 2 to 11
    options = ReadOptions(chunk_rows=3)
    right = [c.progress for c in read_workbook(path, options, [])]
    assert right == [None, 4 / 11, 7 / 11, 10 / 11, 1.0]
    _rewrite(path, SHEET, _declare("A1:P6"))  # too few rows: past row 6, the share is unknown
    short = [c.progress for c in read_workbook(path, options, [])]
    assert short == [None, 4 / 6, None, None, 1.0]
    _rewrite(path, SHEET, lambda x: re.sub(rb'<dimension ref="[^"]*" ?/>', b"", x))
    assert [c.progress for c in read_workbook(path, options, [])] == [None] * 4 + [1.0]


# -- damaged cells and parts -----------------------------------------------------------------------

DAMAGE = {
    # a number cell holding text: openpyxl's int() quoted it in its ValueError
    "number-as-typed": (_cell("A3", f'<c r="A3" t="n"><v>{TYPED_NHS}</v></c>'), TYPED_NHS, 2),
    "nan": (_cell("D4", '<c r="D4" t="n"><v>NaN</v></c>'), "NaN", 3),
    "bad-boolean": (_cell("E3", f'<c r="E3" t="b"><v>{NHS}x</v></c>'), f"{NHS}x", 2),
    "shared-string-out-of-range": (_cell("A2", f'<c r="A2" t="s"><v>{NHS}</v></c>'), NHS, 1),
    "bad-iso-date": (_cell("B5", f'<c r="B5" t="d"><v>{NHS}</v></c>'), NHS, 4),
    "bad-cell-reference": (_cell("C3", f'<c r="{NHS}"><v>1</v></c>'), NHS, 2),
    "xml-cut-short": (lambda x: x[: x.index(b'<row r="5"') + 40], NHS, 4),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_cell_is_a_located_format_error_quoting_nothing(
    tmp_path: Path, case: str
) -> None:
    change, text, after = DAMAGE[case]
    path = _book(tmp_path / "d.xlsx", [[f"{NHS}-{i}", *r[1:]] for i, r in enumerate(_records())])
    _rewrite(path, SHEET, change)
    with pytest.raises(FormatError) as caught:
        TableScorer(provider="raw-sum").score_source(path)
    exc = caught.value
    assert exc.summary == f"cannot read {path}: sheet 1 is damaged"
    assert [(p.where, p.code) for p in exc.problems] == [
        (f"{path}: sheet 1, after row {after}", "xlsx")
    ]
    assert exc.__cause__ is None
    assert exc.__context__ is None
    shown = _shown(exc)
    assert text not in shown
    assert NHS not in shown


def test_the_command_says_where_a_sheet_is_damaged_not_internal_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pamlib.cli import EXIT_ERROR, main

    path = _rewrite(_book(tmp_path / "d.xlsx"), SHEET, DAMAGE["number-as-typed"][0])
    out = tmp_path / "scored.csv"
    assert main(["score", str(path), "--provider", "raw-sum", "-o", str(out)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "sheet 1, after row 2" in err
    assert "internal error" not in err
    assert TYPED_NHS not in err


def test_a_damaged_sheet_is_located_by_number_not_name(tmp_path: Path) -> None:
    path = tmp_path / "two.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Cover"
    sheet = book.create_sheet(NHS)
    sheet.append(HEADER)
    sheet.append(_records()[0])
    book.save(path)
    _rewrite(path, "xl/worksheets/sheet2.xml", _cell("D2", '<c r="D2" t="n"><v>NaN</v></c>'))
    with pytest.raises(FormatError) as caught:
        list(read_workbook(path, ReadOptions(settings={"sheet": NHS}), []))
    assert caught.value.problems[0].where == f"{path}: sheet 2, after row 1"
    assert NHS not in _shown(caught.value)


def test_a_row_numbered_beyond_excels_last_row_is_damage(tmp_path: Path) -> None:
    path = _book(tmp_path / "far.xlsx")
    _rewrite(path, SHEET, lambda x: x.replace(b'<row r="6"', b'<row r="1048577"'))
    _rewrite(path, SHEET, lambda x: x.replace(b'r="A6"', b'r="A1048577"'))
    start = time.monotonic()
    with pytest.raises(FormatError) as caught:
        list(read_workbook(path, ReadOptions(), []))
    assert time.monotonic() - start < 60  # a million empty rows, and no more
    assert caught.value.problems[0].where == f"{path}: sheet 1, after row 1048576"
    assert "beyond Excel's last row" in caught.value.problems[0].message


@pytest.mark.parametrize(
    ("member", "change"),
    [
        ("xl/workbook.xml", lambda x: x[: len(x) // 2]),
        ("xl/styles.xml", lambda x: x.replace(b"<", b"<<", 3)),
        ("[Content_Types].xml", lambda x: x[:50]),
        (SHEET, lambda x: x.replace(b"<dimension", b"<<dimension")),  # parsed on opening
    ],
)
def test_a_damaged_part_is_a_format_error(
    tmp_path: Path, member: str, change: Callable[[bytes], bytes]
) -> None:
    path = _rewrite(_book(tmp_path / "p.xlsx"), member, change)
    with pytest.raises(FormatError) as caught:
        _score(path)
    assert caught.value.summary == f"cannot read {path} as an Excel workbook: it is damaged"
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_a_member_failing_its_checksum_is_a_format_error(tmp_path: Path) -> None:
    path = _book(tmp_path / "crc.xlsx", [[NHS, *r[1:]] for r in _records()])
    with zipfile.ZipFile(path) as old:
        members = [(info.filename, old.read(info.filename)) for info in old.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as new:
        for name, data in members:
            new.writestr(name, data)
    raw = path.read_bytes()
    at = raw.rindex(f"<t>{NHS}</t>".encode())
    path.write_bytes(raw[:at] + raw[at:].replace(b"9", b"8", 1))  # stored: the CRC no longer holds
    with pytest.raises(FormatError) as caught:
        _score(path)
    assert caught.value.summary == f"cannot read {path} as an Excel workbook: it is damaged"
    assert caught.value.__context__ is None
    assert NHS not in _shown(caught.value)


# -- sheets named after patients -------------------------------------------------------------------


def _named_sheets(path: Path) -> Path:
    book = openpyxl.Workbook()
    book.active.title = NHS
    book.create_sheet("Smith, John").append(HEADER)
    from openpyxl.chart import BarChart

    book.create_chartsheet("Chart").add_chart(BarChart())
    book.save(path)
    return path


def test_an_unknown_sheet_is_counted_not_named(tmp_path: Path) -> None:
    path = _named_sheets(tmp_path / "names.xlsx")
    for wanted, says in [
        ("Smith", "has no sheet of the name asked for (--sheet); it has 3 sheets"),
        (2, "is chosen by its name; it has 3 sheets"),
        ("Chart", "asked for (--sheet) is a chart, not a table"),
    ]:
        with pytest.raises(ConfigurationError) as caught:
            list(read_workbook(path, ReadOptions(settings={"sheet": wanted}), []))
        message = str(caught.value)
        assert says in message
        for name in (NHS, "Smith", "John"):
            assert name not in message
    run = list(read_workbook(path, ReadOptions(settings={"sheet": "Smith, John"}), []))
    assert sum(c.n_read for c in run) == 0


def test_a_chart_sheet_openpyxl_cannot_open_is_a_format_error(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(HEADER)
    book.create_chartsheet(NHS)  # no chart: no drawing, which read-only openpyxl expects
    book.save(tmp_path / "chart.xlsx")
    with pytest.raises(FormatError) as caught:
        _score(tmp_path / "chart.xlsx")
    assert caught.value.__context__ is None
    assert NHS not in _shown(caught.value)


def test_the_command_names_no_sheet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pamlib.cli import main

    path = _named_sheets(tmp_path / "names.xlsx")
    out = tmp_path / "scored.csv"
    status = main(["score", str(path), "--sheet", "PAM", "--provider", "raw-sum", "-o", str(out)])
    err = capsys.readouterr().err
    assert status != 0
    assert "it has 3 sheets" in err
    assert NHS not in err
    assert "Smith" not in err
