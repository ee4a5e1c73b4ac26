"""Audit of the tabular readers: a value is never read as something other than what the file
shows. Header names that differ from pamlib's only by characters a spreadsheet does not show
read as those columns; workbook cells whose value is unknown (a formula never calculated) or
shown where it is not saved (merged cells) reject their row, located, instead of reading as
unanswered."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.errors import FormatError
from pamlib.formats.base import ReadOptions
from pamlib.formats.layout import Layout
from pamlib.pipeline import ScoreRun, TableScorer
from tests.csv_strategies import ITEMS

ANSWERS = ["1", "2", "3", "4", "1", "2", "3", "4", "1", "2", "3", "4", "1"]
HEADER = ["patient_id", "assessed_on", "instrument", *ITEMS]  # columns A to P

#: Characters a spreadsheet shows as nothing, or as the ASCII character or space they stand for.
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\u200e", "\u200f", "\ufeff")
SPACES = ("\u00a0", "\u2007", "\u202f", "\u3000")


def _score(path: Path, **kwargs: object) -> ScoreRun:
    return TableScorer(provider="raw-sum", **kwargs).score_source(path)  # type: ignore[arg-type]


def _reconciles(run: ScoreRun) -> None:
    s = run.summary
    assert s.n_read == s.n_scored + s.n_not_scored + s.n_rejected + s.n_blank


# -- header names ------------------------------------------------------------------------------


@st.composite
def disguised(draw: st.DrawFn, name: str) -> str:
    """``name`` with invisible characters and odd spaces where a spreadsheet would not show
    them, and some of its letters and digits in their full-width forms."""
    out = []
    for ch in name:
        if draw(st.booleans()) and ch.isalnum() and ch.isascii():
            ch = chr(ord(ch) + 0xFEE0)  # noqa: PLW2901 -- its full-width form
        out.append(ch + draw(st.sampled_from(["", "", *INVISIBLE])))
    before = draw(st.sampled_from(["", *INVISIBLE, *SPACES]))
    after = draw(st.sampled_from(["", *INVISIBLE, *SPACES]))
    return before + "".join(out) + after


@settings(max_examples=200)
@given(data=st.data(), item=st.integers(1, 13))
def test_a_header_name_differing_only_by_what_a_spreadsheet_hides_is_that_column(
    data: st.DataObject, item: int
) -> None:
    spelling = data.draw(st.sampled_from([f"Q{item}", f"q{item:02d}", f"Item {item}"]))
    name = data.draw(disguised(spelling))
    header = [*HEADER[:3], *(f"Q{i}" for i in range(1, 14) if i != item), name]
    layout = Layout.resolve(header, ReadOptions(), source="export.csv")
    assert layout.items[item - 1] == len(header) - 1
    assert name.replace("\ufeff", "").strip() not in layout.extra_names


@given(data=st.data())
def test_a_disguised_canonical_name_and_its_mapping_key_meet(data: st.DataObject) -> None:
    name = data.draw(disguised("NHS Number"))
    header = ["Patient", "assessed_on", "instrument", name, "Q1"]
    mapping = {"NHS Number": "nhs_number", "Patient": "patient_id"}
    layout = Layout.resolve(header, ReadOptions(mapping=mapping), source="export.csv")
    assert layout.columns["nhs_number"] == 3


def test_a_footnote_mark_does_not_make_another_item() -> None:
    """Only full-width forms stand for ASCII: ``Q1¹`` is not ``Q11``."""
    header = [*HEADER[:3], "Q1", "Q1\u00b9"]
    layout = Layout.resolve(header, ReadOptions(), source="export.csv")
    assert layout.items == (3,)
    assert layout.extra_names == ("Q1\u00b9",)


def test_a_zero_width_space_after_q13_no_longer_loses_its_answers(tmp_path: Path) -> None:
    """The reproduction: ``Q13`` followed by a zero-width space was passed through as a
    column of its own, and every row scored with q13 unanswered."""
    path = tmp_path / "export.csv"
    header = ",".join([*HEADER[:3], *(f"Q{i}" for i in range(1, 13)), "Q13\u200b"])
    path.write_text(f"{header}\nP1,2024-01-02,PAM-13,{','.join(ANSWERS)}\n", encoding="utf-8")
    run = _score(path)
    _reconciles(run)
    (row,) = run.scored.to_arrow().to_pylist()
    assert row["n_answered"] == 13
    assert row["raw_score"] == sum(map(int, ANSWERS))


def test_two_columns_that_look_the_same_are_refused_not_guessed_between() -> None:
    with pytest.raises(FormatError) as info:
        Layout.resolve([*HEADER, "Q13\u200b"], ReadOptions(), source="export.csv")
    assert [p.code for p in info.value.problems] == ["duplicate-column"]


# -- workbooks ---------------------------------------------------------------------------------

openpyxl = pytest.importorskip("openpyxl")


def _book(path: Path, rows: list[list[object]], merge: tuple[str, ...] = ()) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for values in rows:
        sheet.append(values)
    for cells in merge:
        sheet.merge_cells(cells)
    book.save(path)
    return path


def _record(i: int, answers: list[object] | None = None) -> list[object]:
    return [f"P{i}", "2024-03-01", "PAM-13", *(answers or [int(a) for a in ANSWERS])]


def _rejects(run: ScoreRun) -> list[tuple[int, str, str]]:
    return [(r["row"], r["code"], r["message"]) for r in run.rejects.to_pylist()]


def test_a_formula_never_calculated_rejects_its_row_not_an_unanswered_item(
    tmp_path: Path,
) -> None:
    """openpyxl (like other programs that do not calculate) saves a formula with no value;
    it was read as an empty cell, so the row scored with that item unanswered."""
    answers: list[object] = [int(a) for a in ANSWERS]
    answers[4] = "=1+2"  # column H
    path = _book(tmp_path / "returns.xlsx", [_record(1, answers), _record(2)])
    run = _score(path)
    _reconciles(run)
    assert run.summary.n_scored == 1
    ((line, code, message),) = _rejects(run)
    assert (line, code) == (2, "formula")
    assert "H2" in message
    assert "P1" not in message
    (fields,) = [dict(r["fields"]) for r in run.rejects.to_pylist()]
    assert fields["q05"] == "=1+2"


def test_a_calculated_formula_and_an_empty_text_result_read_as_saved(tmp_path: Path) -> None:
    """A formula with its value saved is that value; one whose text result is empty (Excel
    writes ``t="str"`` and an empty value) is an empty cell, not a formula never calculated."""
    path = _book(tmp_path / "returns.xlsx", [_record(1), _record(2)])
    sheet = "xl/worksheets/sheet1.xml"

    def change(xml: bytes) -> bytes:
        xml = xml.replace(b'<c r="H2" t="n"><v>1</v></c>', b'<c r="H2"><f>0+1</f><v>1</v></c>')
        return xml.replace(b'<c r="P3" t="n"><v>1</v></c>', b'<c r="P3" t="str"><f>""</f><v/></c>')

    _rewrite(path, sheet, change)
    run = _score(path)
    _reconciles(run)
    assert _rejects(run) == []
    n_answered = [r["n_answered"] for r in run.scored.to_arrow().to_pylist()]
    assert n_answered == [13, 12]


def _rewrite(path: Path, member: str, change: object) -> None:
    with zipfile.ZipFile(path) as old:
        members = [(info, old.read(info.filename)) for info in old.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for info, data in members:
            new.writestr(info, change(data) if info.filename == member else data)  # type: ignore[operator]


def test_a_merged_answer_over_two_rows_rejects_the_row_it_covers(tmp_path: Path) -> None:
    """Excel shows a merged cell's one value in every row it spans, but saves it only in the
    first: the second row was scored with that item unanswered."""
    path = _book(tmp_path / "returns.xlsx", [_record(1), _record(2), _record(3)], ("H2:H3",))
    run = _score(path)
    _reconciles(run)
    assert [r["patient_id"] for r in run.scored.to_arrow().to_pylist()] == ["P1", "P3"]
    ((line, code, message),) = _rejects(run)
    assert (line, code) == (3, "merged-cells")
    assert "H3" in message
    assert "P2" not in message


@settings(max_examples=25, deadline=None)
@given(
    top=st.integers(2, 7),
    height=st.integers(0, 3),
    left=st.integers(1, 16),
    width=st.integers(0, 3),
)
def test_merged_cells_anywhere_lose_nothing_without_a_reject(
    tmp_path_factory: pytest.TempPathFactory, top: int, height: int, left: int, width: int
) -> None:
    """Every row whose named cell a merge covers (all but the merge's first cell) is rejected;
    every other row scores all of its answers; every row is counted once."""
    from openpyxl.utils import get_column_letter

    bottom, right = min(top + height, 7), min(left + width, 18)
    cells = f"{get_column_letter(left)}{top}:{get_column_letter(right)}{bottom}"
    path = tmp_path_factory.mktemp("merged") / "returns.xlsx"
    _book(
        path, [_record(i) for i in range(2, 8)], (cells,) if (top, left) != (bottom, right) else ()
    )
    run = _score(path)
    _reconciles(run)
    covered = {
        r
        for r in range(top, bottom + 1)
        for c in range(left, min(right, 16) + 1)
        if (r, c) != (top, left)
    }
    assert {line for line, _, _ in _rejects(run)} == covered
    assert all(code == "merged-cells" for _, code, _ in _rejects(run))
    scored = run.scored.to_arrow().to_pylist()
    assert all(r["n_answered"] == 13 for r in scored)
    assert len(scored) == 6 - len(covered)


def test_merges_below_the_table_leave_blank_rows_blank(tmp_path: Path) -> None:
    path = _book(tmp_path / "returns.xlsx", [_record(2), [], []], ("A4:P5",))
    run = _score(path)
    _reconciles(run)
    assert (run.summary.n_scored, run.summary.n_rejected) == (1, 0)


def test_a_workbook_of_uncalculated_formulas_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pamlib.cli import main

    answers: list[object] = [int(a) for a in ANSWERS]
    answers[4] = "=1+2"
    path = _book(tmp_path / "returns.xlsx", [_record(i, answers) for i in range(1, 5)])
    status = main(["score", str(path), "--provider", "demo", "-o", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert status == 1
    assert "most were rejected as formula (4): open the workbook in Excel and save it" in err
