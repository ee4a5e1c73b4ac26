"""Faults found by audits of ``pamlib report`` and ``pamlib rules``, each with its fix:

* a report trusted a scored table's ``level`` column: a row scored 80 with level 1 was counted
  at level 1 (levels, transitions, change by baseline level, the NQF #2483-style measure).
  Reports now refuse it as tailoring does (code ``level-mismatch``, rows by number, no value);
* ``SOURCE_DATE_EPOCH=99999999999999999999`` or ``²`` was an internal error, and ``abc`` was
  quietly replaced by today's date: now a configuration error, one line;
* ``pamlib report <(…)`` said "no such input file: 63", and ``-o ''`` "is a directory";
* ``pamlib rules check ''`` and ``rules overdue --input ''`` read the current folder.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.errors import ConfigurationError, ValidationError
from pamlib.levels import CURRENT, HIBBARD_2005
from pamlib.plugins import PluginHost
from pamlib.reporting import ScoredColumns, build_report, load_scored, summary_json
from pamlib.reporting._context import _now
from pamlib.tables.scored import ScoredTable

#: Sets every host registers (pamlib's own), by id.
SETS = {s.id: s for s in (CURRENT, HIBBARD_2005)}
#: An identifier that no error may quote.
PRIVATE = "PRIVATE-PERSON-9434765919"
#: A host with pamlib's built-in plugins only, made once for the generated cases.
HOST = PluginHost(load_entry_points=False, disabled=())
COLUMNS = ("assessment_id", "patient_id", "assessed_on", "instrument", "status", "score",
           "level", "cutpoint_set", "site")  # fmt: skip


@pytest.fixture(autouse=True)
def _builtins_only(process_host: PluginHost) -> None:
    """Every report and command here sees pamlib's built-in plugins only."""


def _row(k: int, score: str, level: str, cutpoints: str, patient: str = PRIVATE) -> dict[str, str]:
    return {
        "assessment_id": f"{PRIVATE}-{k}",
        "patient_id": patient,
        "assessed_on": (dt.date(2024, 1, 1) + dt.timedelta(days=40 * k)).isoformat(),
        "instrument": "PAM-13",
        "status": "scored",
        "score": score,
        "level": level,
        "cutpoint_set": cutpoints,
        "site": "north",
    }


def _rows(*cells: tuple[str, str, str]) -> list[dict[str, str]]:
    return [_row(k, *cell) for k, cell in enumerate(cells)]


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _arrow(rows: list[dict[str, str]]) -> pa.Table:
    return pa.table({name: [r[name] for r in rows] for name in COLUMNS})


BAD_LEVELS = _rows(
    ("47.05", "1", "current"),  # 47.1 at one decimal: level 2
    ("80", "1", "current"),
    ("70", "4", "hibbard-2005"),  # level 3 under the original cut points
    ("50", "", " current "),  # a score and a set, no level: its level is known
    ("", "3", "current"),  # no score: nothing to compare (kept)
    ("80", "1", ""),  # no set named: nothing to compare (kept)
    ("80", "1", "some-other-set"),  # not registered here: nothing to compare (kept)
    ("47.04", "1", "current"),  # agrees
)


# -- 1. a level its score contradicts ------------------------------------------------------------


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    return [(p.where.rsplit(": ", 1)[-1], p.code) for p in error.problems]


@pytest.mark.parametrize("form", ["csv", "parquet", "table", "arrow", "columns"])
def test_a_report_refuses_a_level_its_score_contradicts(tmp_path: Path, form: str) -> None:
    path = _write_csv(tmp_path / "scored.csv", BAD_LEVELS)
    if form == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(_arrow(BAD_LEVELS), tmp_path / "scored.parquet")
        path = tmp_path / "scored.parquet"
    given: Any = {
        "csv": path,
        "parquet": path,
        "table": ScoredTable.from_arrow(_arrow(BAD_LEVELS)),
        "arrow": _arrow(BAD_LEVELS),
        "columns": ScoredColumns.from_rows(BAD_LEVELS),
    }[form]
    with pytest.raises(ValidationError, match="contradicts") as info:
        build_report(given)
    assert _problems(info.value) == [(f"row {n}", "level-mismatch") for n in (1, 2, 3, 4)]
    text = str(info.value)
    for value in (PRIVATE, "80", "47.05", "north"):
        assert value not in text
    if form in ("csv", "parquet"):  # a file by its name, as the reader locates its problems
        assert info.value.problems[0].where == f"{path.name}: row 1"


def test_rows_with_nothing_to_compare_are_reported_on_their_level(tmp_path: Path) -> None:
    kept = [BAD_LEVELS[k] for k in (4, 5, 6, 7)]  # no score, no set, unregistered set, agrees
    report = build_report(_write_csv(tmp_path / "scored.csv", kept))
    assert report.columns.level.tolist() == [3, 1, 1, 1]
    assert summary_json(report)["n_assessments"] == 4


def test_the_command_line_refuses_it_in_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_csv(tmp_path / "scored.csv", BAD_LEVELS)
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out), "--json", str(tmp_path / "s.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pamlib: error: scored.csv: 4 row(s) whose level contradicts")
    assert "scored.csv: row 4" in err
    assert "Traceback" not in err
    assert PRIVATE not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.csv"]  # nothing written


def test_rows_are_numbered_over_the_file_read_in_blocks(tmp_path: Path) -> None:
    """Read a few rows at a time, as a large file is: rows by their number in the file, the
    first 20 listed and the rest counted, and the set kept for the check whatever the text
    columns asked for."""
    rows = [_row(k, "80", "4", "current", patient=f"p{k}") for k in range(60)]
    for k in (2, 8, 9, 30, *range(35, 60)):
        rows[k]["level"] = "2"
    path = _write_csv(tmp_path / "big.csv", rows)
    columns = load_scored(path, text=["site"], block_rows=7)
    with pytest.raises(ValidationError) as info:
        columns.check_levels(HOST.cutpoint_sets(), source="big.csv")
    wrong = [3, 9, 10, 31, *range(36, 61)]
    assert _problems(info.value) == [(f"row {n}", "level-mismatch") for n in wrong[:20]]
    assert str(info.value).startswith("big.csv: 29 row(s) whose level contradicts")
    assert "(9 more not listed)" in str(info.value)
    with pytest.raises(ValidationError, match="29 row"):
        build_report(path)


def test_a_set_registered_by_a_plugin_is_checked(tmp_path: Path) -> None:
    """Every set the host registers, not only pamlib's own: the host given is the one used."""
    from pamlib.levels import CutpointSet

    strict = CutpointSet("strict", (10.0, 20.0, 30.0), source="a test")
    columns = ScoredColumns.from_rows(_rows(("50", "1", "strict")))
    columns.check_levels(HOST.cutpoint_sets())  # not registered there: taken as given
    with pytest.raises(ValidationError, match="contradicts"):
        columns.check_levels([*HOST.cutpoint_sets(), strict])


@st.composite
def relabelled(draw: st.DrawFn) -> tuple[list[dict[str, str]], list[int]]:
    """A scored table whose levels are its scores', then some of them set to any level; and
    the rows (from 1) whose level now differs from their score's."""
    near = [b + d for s in SETS.values() for b in s.upper_bounds for d in (-0.05, 0.0, 0.05)]
    n = draw(st.integers(1, 8))
    rows, wrong = [], []
    for k in range(n):
        score = draw(st.sampled_from(near) | st.floats(0, 100))
        set_id = draw(st.sampled_from(sorted(SETS)))
        level = SETS[set_id].level(score)
        given = draw(st.one_of(st.just(int(level)), st.integers(1, 4)))
        text = np.format_float_positional(score, trim="-")
        rows.append(_row(k, text, str(given), set_id, patient=f"p{k % 3}"))
        if given != level:
            wrong.append(k + 1)
    return rows, wrong


@settings(max_examples=60, deadline=None)
@given(case=relabelled())
def test_a_table_is_refused_exactly_when_a_level_differs_from_its_scores(
    case: tuple[list[dict[str, str]], list[int]],
) -> None:
    rows, wrong = case
    if not wrong:
        report = build_report(_arrow(rows), host=HOST)
        assert report.columns.level.tolist() == [int(r["level"]) for r in rows]
        return
    with pytest.raises(ValidationError) as info:
        build_report(_arrow(rows), host=HOST)
    assert _problems(info.value) == [(f"row {n}", "level-mismatch") for n in wrong]


# -- 2. SOURCE_DATE_EPOCH ------------------------------------------------------------------------

#: The last second a datetime holds (9999-12-31 23:59:59 UTC).
LAST = 253402300799


@pytest.mark.parametrize(
    "value", ["99999999999999999999", "²", "١٢٣", "abc", "-5", "1.5", "1e9", str(LAST + 1)]
)
def test_an_unusable_source_date_epoch_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    path = _write_csv(tmp_path / "scored.csv", _rows(("80", "4", "current")))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pamlib: error: SOURCE_DATE_EPOCH is not a time")
    assert err.count("\n") == 1
    assert "internal error" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.csv"]
    with pytest.raises(ConfigurationError, match="SOURCE_DATE_EPOCH"):
        build_report(tmp_path / "absent.csv")  # said before the table is read


@pytest.mark.parametrize(("value", "when"), [(str(LAST), "9999-12-31T23:59:59Z"),
                                              (" 0 ", "1970-01-01T00:00:00Z")])  # fmt: skip
def test_a_usable_source_date_epoch_dates_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, when: str
) -> None:
    path = _write_csv(tmp_path / "scored.csv", _rows(("80", "4", "current")))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    summary = tmp_path / "s.json"
    assert main(["report", str(path), "-o", str(tmp_path / "r.html"), "--json", str(summary)]) == 0
    assert json.loads(summary.read_text(encoding="utf-8"))["context"]["generated_at"] == when


#: What an environment variable can hold: any text but NUL (no lone surrogate either).
ENVIRONMENT_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"))


@settings(max_examples=200, deadline=None)
@given(value=ENVIRONMENT_TEXT | st.integers(0, 10**13).map(str))
def test_source_date_epoch_is_ascii_digits_a_datetime_can_hold(value: str) -> None:
    with mock.patch.dict(os.environ, {"SOURCE_DATE_EPOCH": value}):
        text = value.strip()
        if not text:
            assert abs(_now() - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
        elif text.isascii() and text.isdigit() and int(text) <= LAST:
            assert _now() == dt.datetime.fromtimestamp(int(text), dt.UTC)
        else:
            with pytest.raises(ConfigurationError, match="SOURCE_DATE_EPOCH"):
                _now()


# -- 3. report inputs and outputs ----------------------------------------------------------------

GOOD = _rows(("40", "1", "current"), ("80", "4", "current"))


def _csv_bytes(rows: list[dict[str, str]]) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


@pytest.fixture
def pipe_of() -> Iterator[Any]:
    """A pipe holding ``data``, named as ``<(…)`` names one (``/dev/fd/N``)."""
    opened: list[int] = []

    def make(data: bytes) -> str:
        read, write = os.pipe()
        opened.append(read)
        os.write(write, data)  # a small table fits the pipe's buffer
        os.close(write)
        return f"/dev/fd/{read}"

    yield make
    for fd in opened:
        with contextlib.suppress(OSError):
            os.close(fd)


def _spools() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("pamlib-report-*")}


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="no /dev/fd on this system")
def test_a_scored_table_through_a_pipe_is_reported(
    tmp_path: Path, pipe_of: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _spools()
    out, summary = tmp_path / "r.html", tmp_path / "s.json"
    name = pipe_of(_csv_bytes(GOOD))
    assert main(["report", name, "-o", str(out), "--json", str(summary)]) == 0
    assert json.loads(summary.read_text(encoding="utf-8"))["n_assessments"] == 2
    assert out.stat().st_size > 0
    assert _spools() == before  # the copy the reader read is gone
    capsys.readouterr()
    name = pipe_of(_csv_bytes(BAD_LEVELS))
    assert main(["report", name, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{Path(name).name}: 4 row(s) whose level contradicts" in err  # as it was given
    assert PRIVATE not in err
    assert _spools() == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_read_whole(tmp_path: Path) -> None:
    """A pipe named ``….csv``: its header is not read away to guess what kind of file it is."""
    fifo = tmp_path / "scored.csv"
    os.mkfifo(fifo)
    data = _csv_bytes(GOOD)

    def feed() -> None:
        with fifo.open("wb") as handle:
            handle.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    summary = tmp_path / "s.json"
    assert main(["report", str(fifo), "-o", str(tmp_path / "r.html"), "--json", str(summary)]) == 0
    writer.join(10)
    summary_data = json.loads(summary.read_text(encoding="utf-8"))
    assert summary_data["n_assessments"] == 2
    assert summary_data["context"]["sources"][0]["name"] == "scored.csv"


@pytest.mark.parametrize(
    "argv",
    [["report", "", "-o", "r.html"], ["report", "scored.csv", "-o", ""],
     ["report", "scored.csv", "-o", "r.html", "--json", ""],
     ["report", "scored.csv", "-o", "r.html", "--patients", ""],
     ["report", "scored.csv", "-o", "r.html", "--rules", ""],
     ["rules", "check", ""], ["rules", "check", "a.toml", ""],
     ["rules", "overdue", "--input", ""],
     ["rules", "overdue", "--input", "scored.csv", "--rules", ""],
     ["rules", "explain", "--input", "", "--assessment-id", "a"]],
)  # fmt: skip
def test_an_empty_file_name_is_a_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    """``-o ''`` was "is a directory"; ``rules check ''`` read the current folder."""
    _write_csv(tmp_path / "scored.csv", GOOD)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "an empty file name" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.csv"]


def test_a_folder_or_nothing_as_the_input_is_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "exports").mkdir()
    out = str(tmp_path / "r.html")
    assert main(["report", str(tmp_path / "exports"), "-o", out]) == 2
    assert "the input exports is a folder, not a file" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "absent.csv"), "-o", out]) == 2
    assert "no such input file: absent.csv" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports"]
