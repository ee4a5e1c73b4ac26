"""Workbooks, Parquet and JSON Lines in: the same records give the same results as a CSV file."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError, FormatError
from pamlib.formats.base import ReadOptions
from pamlib.formats.workbook import cell_text, read_workbook
from pamlib.pipeline import ScoreRun, TableScorer
from pamlib.plugins import get_host
from tests.csv_strategies import COLUMNS, ITEMS, rows

openpyxl = pytest.importorskip("openpyxl")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

HEADER = [*COLUMNS, *ITEMS, "notes"]
ANSWERS = ["1", "2", "3", "4", "1", "2", "3", "4", "1", "2", "3", "4", "1"]


def _naive(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    """A date-time as a workbook holds one: without a time zone."""
    return dt.datetime(year, month, day, hour, minute)  # noqa: DTZ001


def _score(path: Path, **kwargs: Any) -> ScoreRun:
    return TableScorer(provider="raw-sum", **kwargs).score_source(path)


def _workbook(path: Path, table: Sequence[Sequence[object]], *, title: str = "Returns") -> Path:
    """A workbook whose first sheet holds ``table``; text is written as text (``=A4`` too)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for r, values in enumerate(table, start=1):
        for c, value in enumerate(values, start=1):
            if value is None:
                continue
            cell = sheet.cell(row=r, column=c)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"
    book.save(path)
    return path


def _csv(path: Path, table: Sequence[Sequence[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(table)
    return path


def _scored(run: ScoreRun) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in row.items() if k != "assessment_id"}
        for row in run.scored.to_arrow().to_pylist()
    ]


def _rejects(run: ScoreRun) -> list[tuple[str, str, dict[str, str]]]:
    return [(r["code"], r["message"], dict(r["fields"])) for r in run.rejects.to_pylist()]


def _counts(run: ScoreRun) -> tuple[int, int, int, int]:
    s = run.summary
    return s.n_read, s.n_scored + s.n_not_scored, s.n_rejected, s.n_blank


# -- a workbook as a site keeps one ------------------------------------------------------------

SITE_HEADER = ["NHS No.", "Date of assessment", "Instrument", *(f"Q{i}" for i in range(1, 14))]
NHS = "9434765919"


def _site_rows() -> list[list[object]]:
    """Rows 3 …: dates typed as dates, numbers, numbers stored as text, an empty row, bad rows."""
    return [
        [NHS, dt.date(2024, 3, 1), "PAM-13", *(float(a) for a in ANSWERS)],  # row 3
        [int(NHS), _naive(2024, 3, 2, 9, 30), "PAM-13", *ANSWERS],  # row 4: text
        [None] * 16,  # row 5: nothing
        [NHS, "31/02/2024", "PAM-13", *(int(a) for a in ANSWERS)],  # row 6: no such date
        [NHS, dt.date(2024, 3, 4), "PAM-13", 5, *ANSWERS[1:]],  # row 7: not an answer
        ["  ", None, " ", *([""] * 13)],  # row 8: only spaces
        [NHS, "04/03/2024", "pam-13", *ANSWERS[:12], "NA"],  # row 9
    ]


def test_a_workbook_scores_like_the_same_records_as_csv(tmp_path: Path) -> None:
    book = _workbook(tmp_path / "returns.xlsx", [[], SITE_HEADER, *_site_rows()])
    text = [SITE_HEADER] + [[cell_text(v) for v in row] for row in _site_rows()]
    flat = _csv(tmp_path / "returns.csv", [r for r in text if any(c.strip() for c in r)])
    from_book, from_csv = _score(book), _score(flat)
    assert _scored(from_book) == _scored(from_csv)
    assert _rejects(from_book) == _rejects(from_csv)
    assert [r["location"] for r in from_book.rejects.to_pylist()] == ["row 6", "row 7"]
    assert from_book.summary.reconciliation == (
        "read 7 = scored 3 + not scored 0 + rejected 2 + blank 2"
    )
    dates = from_book.scored.to_arrow().column("assessed_on").to_pylist()
    assert dates == [dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 4)]


def test_cell_values_become_the_text_an_export_holds() -> None:
    values = [None, 1, 1.0, 2.5, 1e-7, "007", " 1 ", True, False, dt.date(2024, 3, 1),
              _naive(2024, 3, 1, 9, 30), dt.time(9, 30), 9434765919.0, "#N/A"]  # fmt: skip
    assert [cell_text(v) for v in values] == [
        "", "1", "1", "2.5", "1e-07", "007", " 1 ", "true", "false", "2024-03-01",
        "2024-03-01T09:30:00", "09:30:00", "9434765919", "#N/A",
    ]  # fmt: skip


def test_an_error_cell_is_rejected_not_read_as_unanswered(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["patient_id", "assessed_on", "instrument", *ITEMS])
    sheet.append(["P1", "2024-03-01", "PAM-13", "#N/A", *ANSWERS[1:]])
    sheet["D2"].data_type = "e"
    book.save(tmp_path / "e.xlsx")
    run = _score(tmp_path / "e.xlsx")
    assert [(r["location"], r["code"]) for r in run.rejects.to_pylist()] == [
        ("row 2", "unknown-label")
    ]


def test_header_is_the_first_row_holding_anything(tmp_path: Path) -> None:
    items = [f"Q{i}" for i in range(1, 14)]
    table: list[list[object]] = [[], [], [None, "Patient ID", "Assessed on", *items]]
    table += [
        [None, "P1", "2024-03-01", 2, *[3] * 12],
        [None, "P2", "2024-03-01", 7, *[3] * 12, "stray"],
    ]
    book = _workbook(tmp_path / "b.xlsx", table)
    run = _score(book, instrument="PAM-13")
    assert run.summary.n_read == 2
    assert [(r["location"], r["code"]) for r in run.rejects.to_pylist()] == [
        ("row 5", "field-count")
    ]
    assert "column Q" in run.rejects.to_pylist()[0]["message"]


def test_sheet_by_name(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "b.xlsx", [["nothing here"]], title="Notes")
    book = openpyxl.load_workbook(path)
    sheet = book.create_sheet("Returns")
    sheet.append(["patient_id", "assessed_on", "instrument", *(f"q{i:02d}" for i in range(1, 14))])
    sheet.append(["P1", "2024-03-01", "PAM-13", *["3"] * 13])
    book.save(path)
    options = ReadOptions(settings={"sheet": "Returns"})
    run = TableScorer(provider="raw-sum", options=options).score_source(path)
    assert run.summary.n_scored == 1
    with pytest.raises(FormatError, match="do not match"):
        _score(path)  # the first sheet has no such columns
    with pytest.raises(
        ConfigurationError, match=r"no sheet of the name asked for \(--sheet\); it has 2 sheets"
    ):
        list(read_workbook(path, ReadOptions(settings={"sheet": "Missing"}), []))


def test_empty_and_broken_workbooks(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="the sheet is empty"):
        _score(_workbook(tmp_path / "empty.xlsx", []))
    (tmp_path / "fake.xlsx").write_text("patient_id,assessed_on\n", encoding="utf-8")
    with pytest.raises(FormatError, match="as an Excel workbook"):
        _score(tmp_path / "fake.xlsx")


def test_a_missing_extra_names_the_install_line(tmp_path: Path) -> None:
    book = _workbook(tmp_path / "b.xlsx", [["patient_id"]])
    code = (
        "import sys; sys.modules['openpyxl'] = None\n"
        "from pamlib.errors import ConfigurationError\n"
        "from pamlib.formats.workbook import WorkbookFormat\n"
        "from pamlib.formats.base import ReadOptions\n"
        "try:\n"
        f"    list(WorkbookFormat().read({str(book)!r}, ReadOptions()))\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'pamlib[xlsx]'" in out.stdout


def test_score_command_reads_a_sheet(tmp_path: Path) -> None:
    from pamlib.cli import main

    path = _workbook(tmp_path / "other.xlsx", [["x"]], title="Cover")
    book = openpyxl.load_workbook(path)
    book.create_sheet("PAM").append(["Patient ID", "Date Completed", *ITEMS])
    book["PAM"].append(["P1", "2024-03-01", *ANSWERS])
    book.save(path)
    out = tmp_path / "scored.csv"
    args = [str(path), "--sheet", "PAM", "--provider", "raw-sum", "--instrument", "PAM-13"]
    assert main(["score", *args, "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").count("\n") == 2


# -- Parquet and JSON Lines ---------------------------------------------------------------------


def test_parquet_input_with_typed_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "patient_id": ["P1", "P2", None],
            "assessed_on": pa.array([dt.date(2024, 3, 1)] * 3, pa.date32()),
            "instrument": ["PAM-13"] * 3,
            **{item: pa.array([1, None, 9], pa.int64()) for item in ITEMS},
        }
    )
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=2)
    run = TableScorer(provider="raw-sum", options=ReadOptions(chunk_rows=2)).score_source(
        tmp_path / "in.parquet"
    )
    assert run.summary.reconciliation == "read 3 = scored 1 + not scored 1 + rejected 1"
    assert [r["location"] for r in run.rejects.to_pylist()] == ["row 3"]


def test_parquet_that_is_not(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(FormatError, match="as Parquet"):
        _score(tmp_path / "x.parquet")


def test_json_lines_input(tmp_path: Path) -> None:
    first = {"patient_id": "007", "assessed_on": "2024-03-01", "instrument": "PAM-13"}
    lines = [
        json.dumps({**first, **{item: int(a) for item, a in zip(ITEMS, ANSWERS, strict=True)}}),
        "",
        json.dumps({**first, "q01": 2.0, "q02": "NA", "q03": None}),
        json.dumps({**first, "q01": 5}),
        "{broken",
        json.dumps({**first, "colour": "blue"}),
        json.dumps({**first, "q01": [1]}),
        json.dumps([1, 2]),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    run = _score(path)
    assert run.summary.reconciliation == ("read 8 = scored 2 + not scored 0 + rejected 5 + blank 1")
    rejects = [(r["location"], r["code"]) for r in run.rejects.to_pylist()]
    assert rejects == [("line 4", "impossible-answer"), ("line 5", "json"), ("line 6", "json"),
                       ("line 7", "json"), ("line 8", "json")]  # fmt: skip
    assert run.scored.text("patient_id").tolist() == ["007", "007"]
    assert run.scored.to_arrow().column("n_answered").to_pylist() == [13, 1]


def test_json_lines_not_utf8_is_a_located_reject(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    row = {"patient_id": "P1", "assessed_on": "2024-03-01", "instrument": "PAM-13"}
    good = json.dumps(row | {f"q{i:02d}": 1 for i in range(1, 14)}).encode()
    path.write_bytes(good + b"\n" + good.replace(b"P1", b"P\xe9") + b"\n")
    run = _score(path)
    assert [(r["location"], r["code"]) for r in run.rejects.to_pylist()] == [("line 2", "encoding")]


def test_fhir_json_still_goes_to_the_fhir_format(tmp_path: Path) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
    pretty = tmp_path / "export.json"
    pretty.write_text(json.dumps(bundle, indent=2), encoding="utf-8")
    one_line = tmp_path / "export.ndjson"
    one_line.write_text(json.dumps({"resourceType": "Patient"}) + "\n", encoding="utf-8")
    from pamlib.pipeline import find_input_format

    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps({"patient_id": "p"}) + "\n", encoding="utf-8")
    # A FHIR export whose first resource lost its resourceType is still FHIR (found by fuzzing:
    # it was read as JSON Lines rows, every line rejected as "not a cell").
    broken_first = tmp_path / "broken-first.ndjson"
    broken_first.write_text(
        json.dumps({"status": "completed", "item": [{"linkId": "x"}]})
        + "\n"
        + json.dumps({"resourceType": "Patient", "id": "p0"})
        + "\n",
        encoding="utf-8",
    )
    flat_then_resource = tmp_path / "flat-then-resource.ndjson"
    flat_then_resource.write_text(
        json.dumps({"status": "completed"}) + "\n" + json.dumps({"resourceType": "Patient"}) + "\n",
        encoding="utf-8",
    )
    host = get_host()
    for path in (pretty, one_line, broken_first, flat_then_resource):
        assert find_input_format(host, str(path), None).name == "fhir", path.name
    assert find_input_format(host, str(rows), None).name == "json"
    assert find_input_format(host, str(tmp_path / "rows.jsonl"), None).name == "json"


# -- the same records in any container -----------------------------------------------------------

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\r\ufffe\uffff]")


def _cell(text: str) -> str:
    """Text a workbook can hold: XML has no control characters, and reads ``\\r`` as ``\\n``."""
    return _NOT_XML.sub("?", text)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(rows(), min_size=1, max_size=8))
def test_csv_workbook_and_parquet_give_the_same_scored_rows(
    tmp_path: Path, records: list[dict[str, str]]
) -> None:
    table = [[_cell(r[c]) for c in HEADER] for r in records]
    assume(all(any(c.strip() for c in row) for row in table))
    flat = _csv(tmp_path / "in.csv", [HEADER, *table])
    book = _workbook(tmp_path / "in.xlsx", [HEADER, *table])
    columns = {c: pa.array([row[i] for row in table], pa.string()) for i, c in enumerate(HEADER)}
    pq.write_table(pa.table(columns), tmp_path / "in.parquet")
    runs = [_score(p) for p in (flat, book, tmp_path / "in.parquet")]
    assert _scored(runs[1]) == _scored(runs[0]) == _scored(runs[2])
    assert _rejects(runs[1]) == _rejects(runs[0]) == _rejects(runs[2])
    assert {_counts(r) for r in runs} == {_counts(runs[0])}


def test_json_lines_nested_too_deeply_is_a_reject(tmp_path: Path) -> None:
    from pamlib.cli import main

    path = tmp_path / "rows.jsonl"
    good = {
        "patient_id": "p",
        "assessed_on": "2024-01-01",
        **{f"q{k:02d}": "2" for k in range(1, 14)},
    }
    deep = "[" * 100_000 + "]" * 100_000
    path.write_text(json.dumps(good) + "\n" + deep + "\n", encoding="utf-8")
    out = tmp_path / "s.csv"
    assert main(["score", str(path), "--provider", "demo", "--instrument", "PAM-13",
                 "-o", str(out)]) == 0  # fmt: skip
    rejects = (tmp_path / "s.rejects.csv").read_text(encoding="utf-8")
    assert "nested too deeply" in rejects
