"""Reports from a file read block by block equal reports from the whole table in memory.

``build_report(path)`` reads a scored file a block of rows at a time and keeps only what a
report uses, so that ten million rows fit in memory. Whatever the block size, every figure,
the per-patient output and every problem (with its row in the file) must be what the
whole-table path gives.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.reporting.conftest import MakeCohort

from pamlib.errors import ConfigurationError, FormatError
from pamlib.reporting import (
    CohortReport,
    ReportConfig,
    build_report,
    load_scored,
    patients_table,
    summary_json,
    write_patients_csv,
)
from pamlib.tables.scored import ScoredTable


def _write_csv(rows: list[dict[str, str]], path: Path) -> Path:
    names = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, names, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _patients_csv(report: CohortReport) -> str:
    out = io.StringIO()
    write_patients_csv(report, out)
    return out.getvalue()


def _figures(report: CohortReport) -> dict[str, object]:
    found = summary_json(report)
    found.pop("context")  # names the way the table came in; the figures must not differ
    return found


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    block_rows=st.sampled_from([1, 2, 7, 64, 100_000]),
    group_by=st.sampled_from([None, "site"]),
)
def test_a_file_read_by_blocks_reports_as_the_whole_table(
    make_cohort: MakeCohort,
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    block_rows: int,
    group_by: str | None,
) -> None:
    rows = make_cohort(seed=seed, n_patients=40)
    path = _write_csv(rows, tmp_path_factory.mktemp("blocks") / "scored.csv")
    config = ReportConfig(group_by=group_by)
    whole = build_report(ScoredTable.read(path), config)
    blocks = build_report(load_scored(path, block_rows=block_rows), config)
    assert _figures(blocks) == _figures(whole)
    assert _patients_csv(blocks) == _patients_csv(whole)
    assert patients_table(blocks).equals(patients_table(whole))


def test_the_report_of_a_path_reads_it_by_blocks(make_cohort: MakeCohort, tmp_path: Path) -> None:
    """``build_report(path)`` keeps the context columns and the group column only."""
    path = _write_csv(make_cohort(seed=3, n_patients=30), tmp_path / "scored.csv")
    report = build_report(path, ReportConfig(group_by="site"))
    assert "site" in report.columns.text
    assert "instrument" not in report.columns.text  # not listed by a report: not kept
    assert _figures(report) == _figures(
        build_report(ScoredTable.read(path), ReportConfig(group_by="site"))
    )


def test_an_unknown_group_names_every_column_of_the_file(
    make_cohort: MakeCohort, tmp_path: Path
) -> None:
    path = _write_csv(make_cohort(seed=3, n_patients=5), tmp_path / "scored.csv")
    with pytest.raises(
        ConfigurationError, match=r"no column .ward. to group by; available: .*instrument"
    ):
        build_report(path, ReportConfig(group_by="ward"))


@pytest.mark.parametrize("block_rows", [1, 3, 1000])
def test_repeated_ids_across_blocks_are_found_with_their_rows(
    make_cohort: MakeCohort, tmp_path: Path, block_rows: int
) -> None:
    rows = make_cohort(seed=5, n_patients=10)
    rows[7]["assessment_id"] = rows[1]["assessment_id"]
    rows[9]["assessment_id"] = rows[1]["assessment_id"]
    rows[8]["assessment_id"] = rows[4]["assessment_id"]
    rows[6]["score"] = "not a score"
    path = _write_csv(rows, tmp_path / "scored.csv")
    with pytest.raises(FormatError) as whole:
        ScoredTable.read(path)
    with pytest.raises(FormatError) as blocks:
        list(ScoredTable.read_blocks(path, block_rows=block_rows))
    assert sorted(map(str, blocks.value.problems)) == sorted(map(str, whole.value.problems))
    assert "assessment_id repeats row 2 @ scored.csv: row 8" in map(str, blocks.value.problems)


def test_blocks_of_a_parquet_file_and_an_empty_one(make_cohort: MakeCohort, tmp_path: Path) -> None:
    table = ScoredTable.read(_write_csv(make_cohort(seed=9, n_patients=20), tmp_path / "s.csv"))
    pq.write_table(table.to_arrow(), tmp_path / "s.parquet", row_group_size=16)
    blocks = list(ScoredTable.read_blocks(tmp_path / "s.parquet", block_rows=10))
    assert pa.concat_tables([b.to_arrow() for b in blocks]).equals(table.to_arrow())
    pq.write_table(table.to_arrow().slice(0, 0), tmp_path / "empty.parquet")
    (empty,) = ScoredTable.read_blocks(tmp_path / "empty.parquet")
    assert len(empty) == 0
    assert json.dumps(summary_json(build_report(tmp_path / "empty.parquet")))


def test_patients_table_is_typed(make_cohort: MakeCohort, tmp_path: Path) -> None:
    path = _write_csv(make_cohort(seed=11, n_patients=25), tmp_path / "scored.csv")
    table = patients_table(build_report(path))
    types = {f.name: str(f.type) for f in table.schema}
    assert types["baseline_on"] == "date32[day]"
    assert types["change"] == "double"
    assert types["baseline_level"] == "int8"
    assert types["n_assessments"] == "int32"
    assert table.column("patient_id").to_pylist() == sorted(table.column("patient_id").to_pylist())
    with pytest.raises(ConfigurationError, match="never a published output"):
        patients_table(build_report(path, ReportConfig(publish=True)))


def test_a_file_concatenated_twice_is_counted_as_the_whole_table_counts_it(
    make_cohort: MakeCohort, tmp_path: Path
) -> None:
    """Every row repeated: more problems than are listed; the same list and the same count."""
    rows = make_cohort(seed=13, n_patients=40)
    path = _write_csv(rows + rows, tmp_path / "twice.csv")
    with pytest.raises(FormatError) as whole:
        ScoredTable.read(path)
    with pytest.raises(FormatError) as blocks:
        list(ScoredTable.read_blocks(path, block_rows=16))
    assert str(blocks.value) == str(whole.value)
    assert f"{len(rows)} problem(s)" in str(blocks.value)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    row_group=st.sampled_from([5, 64, 10_000]),
    block_rows=st.sampled_from([1, 7, 50]),
)
def test_a_parquet_file_reports_alike_whatever_its_row_groups_and_blocks(
    make_cohort: MakeCohort,
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    row_group: int,
    block_rows: int,
) -> None:
    """Parquet is decoded a batch at a time, patients are keyed per block and linked over the
    whole file: block size, row groups and the order of rows change nothing, and ties on a day
    (a patient's rows in several blocks) are broken as for the whole table."""
    rows = make_cohort(seed=seed, n_patients=30)
    rows += [dict(rows[0], assessment_id=f"{rows[0]['assessment_id']}-same-day")]
    rows = rows[seed % 5 :] + rows[: seed % 5]  # a patient's rows at both ends
    folder = tmp_path_factory.mktemp("parquet")
    table = ScoredTable.read(_write_csv(rows, folder / "s.csv"))
    pq.write_table(table.to_arrow(), folder / "s.parquet", row_group_size=row_group)
    config = ReportConfig(group_by="site")
    whole = build_report(table, config)
    small = build_report(load_scored(folder / "s.parquet", block_rows=block_rows), config)
    default = build_report(folder / "s.parquet", config)
    for report in (small, default):
        assert _figures(report) == _figures(whole)
        assert _patients_csv(report) == _patients_csv(whole)
        assert patients_table(report).equals(patients_table(whole))


@pytest.mark.parametrize("repeat", [False, True])
def test_ids_sharing_a_hash_are_compared_as_text(
    make_cohort: MakeCohort, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repeat: bool
) -> None:
    """Ids are kept as 64-bit hashes while a file is read; ids whose hashes are equal are read
    again and compared as text, so different ids that share a hash (here: every id) are never
    refused, and a real repeat is still found with its row."""
    import numpy as np

    import pamlib.tables.scored as scored_module

    real = scored_module._id_hashes

    def one_hash(ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        present, hashes = real(ids)
        return present, np.zeros_like(hashes)  # every id shares one hash

    monkeypatch.setattr(scored_module, "_id_hashes", one_hash)
    rows = make_cohort(seed=21, n_patients=12)
    if repeat:
        rows[9]["assessment_id"] = rows[2]["assessment_id"]
    path = _write_csv(rows, tmp_path / "scored.csv")
    if not repeat:
        blocks = list(ScoredTable.read_blocks(path, block_rows=4))
        assert sum(map(len, blocks)) == len(rows)
        return
    with pytest.raises(FormatError) as blocks_error:
        list(ScoredTable.read_blocks(path, block_rows=4))
    with pytest.raises(FormatError) as whole:
        ScoredTable.read(path)
    assert str(blocks_error.value) == str(whole.value)
    assert "assessment_id repeats row 3 @ scored.csv: row 10" in map(
        str, blocks_error.value.problems
    )


def test_a_file_that_changes_between_the_two_passes_is_refused(
    make_cohort: MakeCohort, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids sharing a hash are read again from the file; if it no longer holds them (another
    program rewrote it meanwhile), the report says so rather than check other rows."""
    import numpy as np

    import pamlib.tables.scored as scored_module

    real_hashes, real_blocks = scored_module._id_hashes, scored_module._raw_blocks

    def one_hash(ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        present, hashes = real_hashes(ids)
        return present, np.zeros_like(hashes)

    rows = make_cohort(seed=22, n_patients=12)
    path = _write_csv(rows, tmp_path / "scored.csv")
    passes: list[int] = []

    def rewritten_before_the_second_pass(at: Path, n: int) -> Iterator[pa.Table]:
        passes.append(n)
        if len(passes) == 2:
            _write_csv(rows[: len(rows) // 2], path)
        return real_blocks(at, n)

    monkeypatch.setattr(scored_module, "_id_hashes", one_hash)
    monkeypatch.setattr(scored_module, "_raw_blocks", rewritten_before_the_second_pass)
    with pytest.raises(FormatError) as error:
        list(ScoredTable.read_blocks(path, block_rows=4))
    assert len(passes) == 2
    assert [p.code for p in error.value.problems] == ["changed"]
    assert "changed while it was read" in str(error.value)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    block_rows=st.sampled_from([1, 7, 50]),
    slack=st.integers(-60, 60),
)
def test_a_wrong_row_count_changes_nothing(
    make_cohort: MakeCohort,
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    block_rows: int,
    slack: int,
) -> None:
    """Columns are filled in place up to the row count given (a Parquet file's), the rest kept
    by block: a count too small, too large or absent gives the same columns."""
    import numpy as np

    from pamlib.reporting import ScoredColumns

    rows = make_cohort(seed=seed, n_patients=20)
    folder = tmp_path_factory.mktemp("count")
    table = ScoredTable.read(_write_csv(rows, folder / "s.csv"))
    pq.write_table(table.to_arrow(), folder / "s.parquet")
    path = folder / "s.parquet"
    expected = ScoredColumns.from_scored(table)
    for count in (None, max(0, len(rows) + slack)):
        got = ScoredColumns.from_blocks(
            ScoredTable.read_blocks(path, block_rows=block_rows), rows=count
        )
        for name in ("assessment_id", "patient_id", "flags"):
            assert getattr(got, name).to_pylist() == getattr(expected, name).to_pylist()
        for name in ("assessed_on", "scored", "score", "level", "demo"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))  # NaN too
