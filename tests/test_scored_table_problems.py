"""A scored table with a problem in every row lists the first rows of each kind, not fifty of
one: every kind is seen, and the summary counts each in all."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pamlib.errors import FormatError
from pamlib.tables.scored import MAX_PROBLEMS, ScoredTable


def _table(n: int) -> pa.Table:
    return pa.table(
        {
            "assessment_id": [f"A{i}" for i in range(n)],
            "patient_id": [""] * n,  # no row has a patient key
            "assessed_on": ["2024-01-10"] * (n - 3) + ["2024-02-30"] * 3,
            "status": ["scored"] * n,
            "score": ["47.0"] * n,
            "level": ["1"] * n,
            "demo": ["false"] * n,
        }
    )


def test_every_kind_of_problem_is_listed_and_counted() -> None:
    with pytest.raises(FormatError) as caught:
        ScoredTable.from_arrow(_table(1000), source="in.csv")
    problems = caught.value.problems
    codes = [p.code for p in problems]
    assert codes.count("bad-date") == 3, "the rare kind is not crowded out"
    assert 0 < codes.count("no-patient-key") <= 10
    assert len(problems) <= MAX_PROBLEMS
    summary = caught.value.summary
    assert "1,003 problem(s)" in summary
    assert "in all: bad-date 3, no-patient-key 1,000" in summary


def test_a_file_checked_by_blocks_lists_what_the_whole_table_lists(tmp_path: object) -> None:
    from pathlib import Path

    import pyarrow.csv as pacsv

    path = Path(str(tmp_path)) / "scored.csv"
    pacsv.write_csv(_table(1000), path)
    with pytest.raises(FormatError) as whole:
        ScoredTable.read(path)
    with pytest.raises(FormatError) as blocks:
        list(ScoredTable.read_blocks(path, block_rows=64))
    assert blocks.value.problems == whole.value.problems
    assert blocks.value.summary == whole.value.summary
