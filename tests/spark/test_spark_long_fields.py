"""A field longer than pamlib's limit is rejected on Spark as ``pamlib score`` rejects it
(``field-too-long``, its message, the record's row) wherever the field is, and counted the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from pamlib.formats._records import MAX_FIELD_CHARS
from tests.spark.exports import MAPPING, Export, make_export
from tests.spark.test_spark_options import _assert_equal, _pamlib_score

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

LONG = "x" * (MAX_FIELD_CHARS + 1)


def _with_long_fields(export: Export) -> Export:
    """Three records given a field over the limit: the assessment id (a middle column), the
    notes (the last column), and the notes again quoted with a line break inside; a fourth
    record's notes are exactly at the limit (kept)."""
    lines = export.path.read_bytes().decode("utf-8").split("\n")

    def record(row: int) -> int:
        index = export.lines[row - 1] - 1
        assert lines[index].startswith("P")
        assert lines[index].endswith(",")  # one line, no notes
        return index

    middle, last, quoted, at_limit = record(12), record(13), record(14), record(16)
    lines[middle] = lines[middle].replace("A00012,", f"A00012{LONG},", 1)
    lines[last] += LONG
    lines[quoted] += f'"{LONG[:-10]}\r\n{LONG[:10]}"'  # one field, over the limit, two lines
    lines[at_limit] += "y" * MAX_FIELD_CHARS
    export.path.write_text("\n".join(lines), encoding="utf-8", newline="")
    # the quoted line break moves every later record one line down
    moved = tuple(line + (1 if row > 14 else 0) for row, line in enumerate(export.lines, 1))
    return attrs.evolve(export, lines=moved)


def test_a_field_over_the_limit_is_rejected_as_pamlib_score_rejects_it(
    spark: Any, tmp_path: Path
) -> None:
    import pamlib.spark as ps

    export = _with_long_fields(make_export(tmp_path, n=90, seed=12))
    df = ps.read_export(spark, str(export.path), mapping=MAPPING, multiline=True)
    run = ps.score(df, provider="demo")
    expected = _pamlib_score(export, provider="demo")
    _assert_equal(run, expected, export)
    rejected = {r["row"]: r for r in run.rejects.collect()}
    for row in (12, 13, 14):
        assert rejected[row]["code"] == "field-too-long"
        assert LONG[:20] not in rejected[row]["message"]  # the message holds no value
        assert rejected[row]["record"] == ""  # the values by column, as pamlib score gives them
        assert dict(rejected[row]["fields"])["assessment_id"].startswith("A000")
    assert 16 not in rejected  # at the limit: read, as pamlib score reads it
    summary = run.summary()
    assert summary.rejected_by_code["field-too-long"] == 3
    assert summary.reconciles
    run.unpersist()


def test_a_field_over_the_limit_is_rejected_with_multiline_off(spark: Any, tmp_path: Path) -> None:
    """Without quoted line breaks, a file read split across tasks gives the same rejects."""
    import pamlib.spark as ps

    export = make_export(tmp_path, n=90, seed=13)
    text = export.path.read_bytes().decode("utf-8").replace("A00012,", f"A00012{LONG},", 1)
    text = text.replace("line one\nline two", "line one, line two")
    text = text.replace('"said ""fine""\r\nthen left"', LONG)  # the last column
    assert text.count(LONG) == 2
    export.path.write_text(text, encoding="utf-8", newline="")
    export = attrs.evolve(
        export,
        lines=tuple(range(2, 92)),  # one line a record now
        broken=(),
    )
    df = ps.read_export(spark, str(export.path), mapping=MAPPING, multiline=False)
    assert df.rdd.getNumPartitions() > 1
    run = ps.score(df, provider="demo")
    _assert_equal(run, _pamlib_score(export, provider="demo"), export)
    assert run.summary().rejected_by_code["field-too-long"] == 2
    run.unpersist()
