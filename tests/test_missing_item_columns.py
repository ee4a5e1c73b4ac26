"""A table with no column for one of an instrument's items: that instrument's rows are rejected
(``missing-item-column``), never scored as if the item were unanswered.

A whole column missing is a header or mapping mistake; a level computed without an item the
person answered is a wrong level. Rows of instruments whose items all have columns (PAM-10 rows
beside PAM-13 rows) read exactly as before, and every reader — the columnar CSV reader, the
record-at-a-time oracle, an in-memory table, Parquet, JSON Lines, workbooks — agrees.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.formats._records import RowValidator
from pamlib.pipeline import ScoreRun, TableScorer
from pamlib.plugins import PluginHost
from tests.oracles.csv_reader import ORACLE_FORMAT, oracle_host

pa = pytest.importorskip("pyarrow")

ITEMS = tuple(f"q{i:02d}" for i in range(1, 14))
FRONT = ("patient_id", "assessment_id", "assessed_on", "instrument")
SIZES = {"PAM-13": 13, "PAM-10": 10}
SPELLINGS = {"PAM-13": ("PAM-13", " pam-13 "), "PAM-10": ("PAM-10", "pam-10")}
ANSWERS = ("1", "2", "3", "4", "NA", "", "Agree", "strongly disagree")
CODE = "missing-item-column"

Record = tuple[str, dict[str, str]]  # the instrument, and the cells by column


@st.composite
def exports(draw: st.DrawFn) -> list[Record | None]:
    """Valid PAM-13 and PAM-10 records (``None``: a blank record), each with a unique id."""
    records: list[Record | None] = []
    for i in range(draw(st.integers(1, 16))):
        if draw(st.integers(0, 9)) == 0:
            records.append(None)
            continue
        kind = draw(st.sampled_from(sorted(SIZES)))
        row = {
            "patient_id": f"P{i % 4}",
            "assessment_id": f"A{i}",
            "assessed_on": "2024-03-01",
            "instrument": draw(st.sampled_from(SPELLINGS[kind])),
        }
        for k, item in enumerate(ITEMS):
            row[item] = draw(st.sampled_from(ANSWERS)) if k < SIZES[kind] else ""
        records.append((kind, row))
    return records


def write_csv(path: Path, header: Sequence[str], records: Sequence[Record | None]) -> Path:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for record in records:
        writer.writerow([""] * len(header) if record is None else [record[1][h] for h in header])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def as_table(header: Sequence[str], records: Sequence[Record | None]) -> Any:
    rows = [r[1] for r in records if r is not None]
    return pa.table({name: pa.array([row[name] for row in rows], pa.string()) for name in header})


def outcome(run: ScoreRun) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, str]]]:
    """Scored rows and rejects, both by assessment id; the counts must reconcile."""
    s = run.summary
    assert s.n_read == s.n_scored + s.n_not_scored + s.n_rejected + s.n_blank
    scored = {row["assessment_id"]: row for row in run.scored.to_arrow().to_pylist()}
    rejects = {
        dict(r["fields"])["assessment_id"]: (r["code"], r["message"])
        for r in run.rejects.to_pylist()
    }
    assert len(scored) == s.n_scored + s.n_not_scored
    assert len(rejects) == s.n_rejected
    return scored, rejects


def scorer(**kwargs: Any) -> TableScorer:
    return TableScorer(provider="raw-sum", host=oracle_host(), threads=1, **kwargs)


def missing_of(kind: str, removed: set[str]) -> list[str]:
    """The removed columns that are items of ``kind``, in item order."""
    return [item for item in ITEMS[: SIZES[kind]] if item in removed]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=exports(),
    removed=st.sets(st.sampled_from(ITEMS), min_size=1, max_size=len(ITEMS) - 1),
    data=st.data(),
)
def test_rows_of_an_instrument_missing_a_column_are_rejected_and_the_rest_read_as_before(
    tmp_path_factory: pytest.TempPathFactory,
    records: list[Record | None],
    removed: set[str],
    data: st.DataObject,
) -> None:
    folder = tmp_path_factory.mktemp("cut")
    full = [*FRONT, *ITEMS]
    before, no_rejects = outcome(
        scorer().score_source(write_csv(folder / "full.csv", full, records))
    )
    assert no_rejects == {}
    header = data.draw(st.permutations([h for h in full if h not in removed]))
    path = write_csv(folder / "cut.csv", header, records)
    runs = {
        "columnar": scorer().score_source(path),
        "record": scorer().score_source(path, input_format=ORACLE_FORMAT),
        "table": scorer().score(as_table(header, records)),
    }
    outcomes = {name: outcome(run) for name, run in runs.items()}
    scored, rejects = outcomes["columnar"]
    assert outcomes["record"] == outcomes["table"] == (scored, rejects)
    n_blank = sum(r is None for r in records)
    assert runs["columnar"].summary.n_read == len(records)
    assert runs["columnar"].summary.n_blank == n_blank
    for record in records:
        if record is None:
            continue
        kind, row = record
        aid = row["assessment_id"]
        missing = missing_of(kind, removed)
        if missing:
            code, message = rejects[aid]
            assert code == CODE
            assert message.startswith(
                f"no column for {', '.join(missing)} ({kind} has {SIZES[kind]} items)"
            )
            assert row["patient_id"] not in message  # names columns, never a cell's value
            assert aid not in scored
        else:
            assert scored[aid] == before[aid]
            assert aid not in rejects
    summary = runs["columnar"].summary
    expected = sum(1 for r in records if r is not None and missing_of(r[0], removed))
    assert summary.rejected_by_code == ({CODE: expected} if expected else {})


def _record(i: int, kind: str = "PAM-13", date: str = "2024-03-01") -> Record:
    row = {"patient_id": f"P{i}", "assessment_id": f"A{i}", "assessed_on": date}
    row["instrument"] = kind
    row.update({item: "3" if k < SIZES[kind] else "" for k, item in enumerate(ITEMS)})
    return kind, row


def test_the_message_names_every_missing_column_and_other_problems_stay(tmp_path: Path) -> None:
    header = [*FRONT, *(i for i in ITEMS if i not in ("q06", "q13"))]
    records: list[Record | None] = [_record(1), _record(2, date="soon"), _record(3, "PAM-10")]
    _, rejects = outcome(scorer().score_source(write_csv(tmp_path / "in.csv", header, records)))
    expected = "no column for q06, q13 (PAM-13 has 13 items): map the columns that hold them"
    assert rejects["A1"] == (CODE, expected)
    code, message = rejects["A2"]  # the code is the first problem's, the message lists all
    assert code == "date"
    assert message.endswith(f"; {expected}")
    # q06 is a PAM-10 item too
    pam10 = "no column for q06 (PAM-10 has 10 items): map the column that holds it"
    assert rejects["A3"] == (CODE, pam10)


def test_a_mapping_that_names_the_column_scores_the_rows(tmp_path: Path) -> None:
    records: list[Record | None] = [_record(1), _record(2, "PAM-10")]
    for _, row in (r for r in records if r is not None):
        row["Q13 response"] = row.pop("q13")
    header = [*FRONT, *ITEMS[:12], "Q13 response"]
    path = write_csv(tmp_path / "in.csv", header, records)
    scored, rejects = outcome(scorer().score_source(path))
    assert set(scored) == {"A2"}
    message = "no column for q13 (PAM-13 has 13 items): map the column that holds it"
    assert rejects == {"A1": (CODE, message)}
    scored, rejects = outcome(scorer(mapping={"Q13 response": "q13"}).score_source(path))
    assert set(scored) == {"A1", "A2"}
    assert scored["A1"]["n_answered"] == 13
    assert rejects == {}


def test_a_default_instrument_with_too_few_columns_is_rejected_too(tmp_path: Path) -> None:
    header = ["patient_id", "assessment_id", "assessed_on", *ITEMS[:10]]
    records: list[Record | None] = [_record(1, "PAM-10")]
    path = write_csv(tmp_path / "in.csv", header, records)
    scored, _ = outcome(scorer(instrument="PAM-10").score_source(path))
    assert set(scored) == {"A1"}
    scored, rejects = outcome(scorer(instrument="PAM-13").score_source(path))
    assert scored == {}
    assert rejects["A1"][0] == CODE


def test_every_file_format_rejects_the_rows(tmp_path: Path) -> None:
    """Parquet, JSON Lines and workbooks share the layout and the checks of tables."""
    header = [*FRONT, *ITEMS[:12]]
    records: list[Record | None] = [_record(1), _record(2, "PAM-10"), _record(3)]
    rows = [r[1] for r in records if r is not None]
    expected = {"A1": CODE, "A3": CODE}
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(as_table(header, records), tmp_path / "in.parquet")
    lines = [json.dumps({h: row[h] for h in header}) for row in rows]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths = [tmp_path / "in.parquet", tmp_path / "in.jsonl"]
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - the xlsx extra
        pass
    else:
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(header)
        for row in rows:
            sheet.append([row[h] for h in header])
        book.save(tmp_path / "in.xlsx")
        paths.append(tmp_path / "in.xlsx")
    for path in paths:
        scored, rejects = outcome(scorer().score_source(path))
        assert set(scored) == {"A2"}, path.name
        assert {aid: code for aid, (code, _) in rejects.items()} == expected, path.name


def test_rejecting_an_instrument_needs_no_record_check_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decided once per instrument: the columnar reader words such rejects without checking
    each row again (a file whose mapping missed a column costs little more than one read)."""
    header = [*FRONT, *ITEMS[:12]]
    records: list[Record | None] = [_record(i) for i in range(200)]
    path = write_csv(tmp_path / "in.csv", header, records)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a record check for a row the columns decided")

    monkeypatch.setattr(RowValidator, "check", refuse)
    run = TableScorer(provider="raw-sum", host=oracle_host(), threads=1).score_source(path)
    assert run.summary.rejected_by_code == {CODE: 200}


def test_nothing_scored_says_to_map_the_column(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    header = [*FRONT, *ITEMS[:12]]
    path = write_csv(tmp_path / "in.csv", header, [_record(1), _record(2)])
    code = main(["score", str(path), "--provider", "raw-sum", "-o", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "none of the 2 records read was scored; most were rejected as missing-item-column (2): "
        "map the file's column for each item the rejects name as missing in a --mapping file's "
        '[columns] (such as "Q13 response" = "q13")'
    ) in err
    assert "read 2 = scored 0 + not scored 0 + rejected 2" in err
