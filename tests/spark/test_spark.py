"""pamlib on Spark gives what ``pamlib score`` gives: every scored column, every reject, the same
counts; and it refuses to run anywhere with something the driver did not choose."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from pamlib.errors import ConfigurationError
from pamlib.pipeline import ScoreRun, TableScorer
from tests.calibrations import rsm_document
from tests.spark.exports import MAPPING, Export, make_export
from tests.spark.test_spark_lines import read_as_lines

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

KEYS = ("source_file", "source_row")


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("spark-export"))


@pytest.fixture(scope="module")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spark-calibration") / "calibration.json"
    path.write_text(json.dumps(rsm_document()), encoding="utf-8")
    return path


def _pamlib_score(export: Export, **scoring: Any) -> ScoreRun:
    """What ``pamlib score`` reads, checks and scores (its reader, into memory)."""
    return TableScorer(mapping=MAPPING, **scoring).score_source(export.path)


def _spark_rows(run: Any) -> tuple[list[dict[str, Any]], list[tuple[int, str, str]]]:
    scored = [r.asDict(recursive=True) for r in run.scored.orderBy("source_row").collect()]
    rejects = sorted((r["row"], r["code"], r["message"]) for r in run.rejects.collect())
    return scored, rejects


def _in_order(frame: Any, *keys: str) -> list[dict[str, Any]]:
    return [r.asDict(recursive=True) for r in frame.orderBy(*keys).collect()]


def _row_of(export: Export) -> dict[int, int]:
    """pamlib score's line → the record's row number in the file."""
    return {line: n for n, line in enumerate(export.lines, start=1)}


def _counts(summary: Any) -> tuple[Any, ...]:
    return (
        summary.n_read,
        summary.n_scored,
        summary.n_not_scored,
        summary.n_rejected,
        summary.n_blank,
        dict(summary.rejected_by_code),
        dict(summary.not_scored_by_reason),
    )


@pytest.mark.parametrize("repeats", ["sent to the tasks", "joined, export cached"])
def test_multiline_on_equals_pamlib_score(
    spark: Any, export: Export, calibration: Path, repeats: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pamlib.spark as ps

    cached = repeats != "sent to the tasks"
    if cached:  # as when too many ids repeat to send them to every task
        monkeypatch.setattr(ps, "_BROADCAST_REPEATS", 0)
    df = ps.read_export(spark, str(export.path), mapping=MAPPING, multiline=True)
    run = ps.score(df, calibration=str(calibration), cache_export=cached)
    expected = _pamlib_score(export, calibration=str(calibration))
    scored, rejects = _spark_rows(run)
    row_of = _row_of(export)
    assert rejects == sorted(
        (row_of[r["row"]], r["code"], r["message"]) for r in expected.rejects.to_pylist()
    )
    assert [{k: v for k, v in r.items() if k not in KEYS} for r in scored] == (
        expected.scored.to_arrow().to_pylist()
    )
    assert {r["provider"] for r in scored} == {"rasch"}
    summary = run.summary()
    assert summary.reconciles
    assert _counts(summary) == _counts(expected.summary)
    codes = set(summary.rejected_by_code)
    assert {"field-count", "date", "impossible-answer", "duplicate-assessment-id"} <= codes
    assert summary.n_blank == 1
    assert summary.n_not_scored >= 1
    assert not df.is_cached  # the export's rows are let go once the output is kept
    run.unpersist()


def test_multiline_off_splits_the_file_and_differs_only_where_documented(
    spark: Any, export: Export, tmp_path: Path
) -> None:
    import pamlib.spark as ps

    df = ps.read_export(spark, str(export.path), mapping=MAPPING, multiline=False)
    assert df.rdd.getNumPartitions() > 1  # the repeated id's two rows are in different tasks
    run = ps.score(df, provider="demo", duplicates="global")
    expected = _pamlib_score(export, provider="demo")
    scored, rejects = _spark_rows(run)
    # Each record holding a quoted line break is read as two rows: both rejected (or the second
    # read as a record of its own), and every later row numbered one more.
    row_of = _row_of(export)

    def shifted(row: int) -> int:
        return row + sum(1 for b in export.broken if b < row)

    broken_rows = {shifted(b) + k for b in export.broken for k in (0, 1)}
    expected_rejects = sorted(
        (shifted(row_of[r["row"]]), r["code"], r["message"]) for r in expected.rejects.to_pylist()
    )
    assert [r for r in rejects if r[0] not in broken_rows] == expected_rejects
    assert {r[0] for r in rejects} & broken_rows  # the halves are rejected, not scored as-is
    expected_scored = expected.scored.to_arrow().to_pylist()
    spark_scored = [r for r in scored if r["source_row"] not in broken_rows]
    unbroken = [r for r in expected_scored if not (r["notes"] or "").count("\n")]
    assert [{k: v for k, v in r.items() if k not in KEYS} for r in spark_scored] == unbroken
    summary = run.summary()
    assert summary.reconciles
    assert summary.n_read == expected.summary.n_read + len(export.broken)
    first, repeat = export.repeat
    assert (shifted(repeat), "duplicate-assessment-id") in {(r[0], r[1]) for r in rejects}
    assert first not in {r[0] for r in rejects}

    # writing: complete or absent, never over what is there
    target = tmp_path / "scored-out"
    written = run.write(str(target))
    assert written == summary
    names = sorted(p.name for p in target.iterdir() if not p.name.startswith("."))  # not .crc
    assert names == ["rejects", "scored", "summary.json"]
    assert json.loads((target / "summary.json").read_text())["n_read"] == summary.n_read
    assert spark.read.parquet(str(target / "scored")).count() == len(scored)
    assert spark.read.parquet(str(target / "rejects")).count() == summary.n_rejected
    with pytest.raises(ConfigurationError, match="exists already"):
        run.write(str(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored-out"]  # no temporary left
    run.unpersist()


@pytest.mark.parametrize("rejects", ["sent back by the tasks", "too many: found by a second job"])
def test_writing_first_scores_and_writes_in_one_job_with_the_same_output(
    spark: Any, export: Export, tmp_path: Path, rejects: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pamlib.spark as ps

    if rejects != "sent back by the tasks":  # more than the driver holds (checked as it merges)
        monkeypatch.setattr(ps, "_REJECTS_BYTES", 0)

        def unused(*_: Any) -> None:
            raise AssertionError("the rejects sent back were used")

        monkeypatch.setattr(ps, "_rejects_table", unused)
    df = ps.read_export(spark, str(export.path), mapping=MAPPING, multiline=False)
    kept = ps.score(df, provider="demo")  # counted and written from the kept output
    expected = kept.summary()
    expected_scored = _in_order(kept.scored, *KEYS)
    expected_rejects = _in_order(kept.rejects, "source", "row", "code")
    kept.unpersist()

    run = ps.score(df, provider="demo")
    target = tmp_path / "out"
    assert run.write(str(target)) == expected
    assert run.summary() == expected  # counted by the write: no job runs for it
    scored = spark.read.parquet(str(target / "scored"))
    rejected = spark.read.parquet(str(target / "rejects"))
    assert scored.schema == kept.scored.schema
    assert rejected.schema == kept.rejects.schema
    assert _in_order(scored, *KEYS) == expected_scored
    assert _in_order(rejected, "source", "row", "code") == expected_rejects
    assert json.loads((target / "summary.json").read_text())["n_rejected"] == len(expected_rejects)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left


@pytest.mark.parametrize("lines", [True, False], ids=["as lines", "split by Spark"])
def test_a_column_named_with_a_backtick_and_a_dot_is_scored_and_written(
    spark: Any, tmp_path: Path, lines: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark reads a backtick or a dot in a column name as syntax; an export's header may hold
    either, and ``pamlib score`` reads it as text."""
    import pamlib.spark as ps

    export = make_export(tmp_path, n=120, quotes=False)
    path = tmp_path / "named.csv"
    text = export.path.read_text(encoding="utf-8")
    path.write_text(text.replace("notes", "no`t.es", 1), encoding="utf-8")
    expected = TableScorer(mapping=MAPPING, provider="demo").score_source(path)
    monkeypatch.setattr(ps, "_READ_LINES", lines)
    run = ps.score(ps.read_export(spark, str(path), mapping=MAPPING), provider="demo")
    assert read_as_lines(run) is lines
    summary = run.write(str(tmp_path / "out"))
    assert summary.reconciliation == expected.summary.reconciliation
    scored = spark.read.parquet(str(tmp_path / "out" / "scored"))
    assert "no`t.es" in scored.columns
    assert sorted(r["no`t.es"] or "" for r in scored.select(ps._column("no`t.es")).collect()) == (
        sorted(expected.scored.to_arrow().column("no`t.es").to_pylist())
    )


def test_a_job_that_fails_while_writing_first_leaves_nothing(spark: Any, tmp_path: Path) -> None:
    import pamlib.spark as ps

    export = make_export(tmp_path, n=70, seed=4)
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(rsm_document()), encoding="utf-8")
    run = ps.score(ps.read_export(spark, str(export.path), mapping=MAPPING), calibration=str(path))
    path.write_text(json.dumps(rsm_document(min_answered=3)), encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ps.SparkJobError, match="changed"):
        run.write(str(tmp_path / "out"))  # the first job there is: the one that writes
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_counts_that_do_not_reconcile_publish_nothing(spark: Any, tmp_path: Path) -> None:
    import pamlib.spark as ps
    from pamlib.pipeline import ReconciliationError

    export = make_export(tmp_path, n=70, seed=5)
    run = ps.score(ps.read_export(spark, str(export.path), mapping=MAPPING), provider="demo")
    assert run.n_read is not None  # counted by the pass before the job
    run.n_read += 1  # as if a row were lost between reading and writing
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ReconciliationError, match="do not reconcile"):
        run.write(str(tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_partition_duplicates_miss_repeats_across_tasks(spark: Any, tmp_path: Path) -> None:
    import pamlib.spark as ps

    export = make_export(tmp_path, n=70, seed=6)
    df = ps.read_export(spark, str(export.path), mapping=MAPPING, multiline=False)
    assert df.rdd.getNumPartitions() > 1
    summary = ps.score(df, provider="demo", duplicates="partition").summary()
    assert summary.reconciles
    assert "duplicate-assessment-id" not in summary.rejected_by_code


def test_a_calibration_changed_before_the_job_stops_it_on_an_executor(
    spark: Any, tmp_path: Path
) -> None:
    import pamlib.spark as ps

    export = make_export(tmp_path, n=70, seed=3)
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(rsm_document()), encoding="utf-8")
    run = ps.score(ps.read_export(spark, str(export.path), mapping=MAPPING), calibration=str(path))
    path.write_text(json.dumps(rsm_document(min_answered=3)), encoding="utf-8")
    with pytest.raises(ps.SparkJobError, match="changed") as info:
        run.summary()
    assert str(tmp_path) not in str(info.value)
    assert "Traceback" not in str(info.value)
    # nor is anything written, and nothing is left behind
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ps.SparkJobError, match="changed"):
        run.write(str(tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_another_provider_version_on_an_executor_stops_the_job(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pamlib.spark as ps

    export = make_export(tmp_path, n=70, seed=4)
    df = ps.read_export(spark, str(export.path), mapping=MAPPING)
    real = TableScorer.providers

    def elsewhere(self: TableScorer) -> dict[str, tuple[str, str]]:  # the driver's view only
        return {k: (pid, "9.9.9") for k, (pid, _) in real(self).items()}

    monkeypatch.setattr(TableScorer, "providers", elsewhere)
    run = ps.score(df, provider="demo")
    with pytest.raises(ps.SparkJobError, match=r"demo 9\.9\.9"):
        run.summary()


def test_an_expired_licence_stops_the_job_on_the_driver(
    spark: Any, tmp_path: Path, calibration: Path
) -> None:
    import pamlib.spark as ps
    from pamlib.errors import LicenceError
    from pamlib.scoring.provider import Licence
    from pamlib.scoring.rasch import RaschProvider

    export = make_export(tmp_path, n=70, seed=5)
    df = ps.read_export(spark, str(export.path), mapping=MAPPING)
    expired = Licence("Vendor Ltd (test)", frozenset({"PAM-13"}), dt.date(2000, 1, 1))
    provider = RaschProvider(calibration, licence=expired, id="vendor-x")
    with pytest.raises(LicenceError):
        ps.score(df, provider=provider)  # type: ignore[arg-type]


def test_a_header_pamlib_cannot_read_stops_on_the_driver(spark: Any, tmp_path: Path) -> None:
    import pamlib.spark as ps
    from pamlib.errors import FormatError

    path = tmp_path / "bad.csv"
    path.write_text("patient_id,assessment_id,q01\nP1,A1,3\n", encoding="utf-8")
    with pytest.raises(FormatError):
        ps.read_export(spark, str(path))
    with pytest.raises(ConfigurationError, match="read_export"):
        ps.score(spark.createDataFrame([("P1",)], "patient_id string"), provider="demo")


@pytest.mark.parametrize("name", ["_export.csv", ".export.csv"])
@pytest.mark.parametrize("encoding", [None, "utf-8"])
def test_a_file_spark_skips_for_its_name_is_refused_saying_so(
    spark: Any, export: Export, tmp_path: Path, name: str, encoding: str | None
) -> None:
    """Spark reads nothing from a file whose name begins with ``_`` or ``.``, even one named
    on its own; pamlib says so rather than ask for a delimiter or call the export empty."""
    import pamlib.spark as ps

    path = tmp_path / name
    path.write_bytes(export.path.read_bytes())
    with pytest.raises(ConfigurationError, match="skips files whose names begin with"):
        ps.read_export(spark, str(path), mapping=MAPPING, encoding=encoding)


def test_a_column_named_as_spark_s_file_metadata_is_refused(spark: Any, tmp_path: Path) -> None:
    import pamlib.spark as ps

    path = tmp_path / "export.csv"
    path.write_text(
        "patient_id,assessment_id,assessed_on,_metadata\nP1,A1,2024-01-01,x\n", encoding="utf-8"
    )
    with pytest.raises(ConfigurationError, match="_metadata"):
        ps.read_export(spark, str(path))


def test_the_level_udf_agrees_with_the_cut_points(spark: Any) -> None:
    import pamlib.spark as ps
    from pamlib.levels import CURRENT

    assert ps.register_udfs(spark) == ("pam_level",)
    scores = [0.0, 47.0, 47.05, 55.1, 55.2, 67.0, 67.04, 100.0]
    rows = spark.createDataFrame([(s,) for s in scores], "score double")
    rows.createOrReplaceTempView("scores")
    got = [r[0] for r in spark.sql("select pam_level(score) from scores").collect()]
    assert got == [int(CURRENT.level(s)) for s in scores]
    assert ps.level_from_score(None) is None


def test_an_export_without_assessment_ids_gets_ids_from_its_row_numbers(
    spark: Any, tmp_path: Path
) -> None:
    """Ids made from the file name and each row's number in it, which a task cannot know as it
    scores: the same ids whichever split a row was read in (``file:row``, where ``pamlib
    score`` counts lines: one more, the header's), and otherwise ``pamlib score``'s results."""
    import pamlib.spark as ps

    path = tmp_path / "no-ids.csv"
    answers = ",".join(["3"] * 13)
    lines = [f"P{i},2024-01-{1 + i % 28:02d},PAM-13,{answers}" for i in range(300)]
    lines[7] = "P7,not a date,PAM-13," + answers
    header = "patient_id,assessed_on,instrument," + ",".join(f"q{k:02d}" for k in range(1, 14))
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    df = ps.read_export(spark, str(path), multiline=False)
    assert df.rdd.getNumPartitions() > 1
    run = ps.score(df, provider="demo")
    expected = TableScorer(provider="demo").score_source(path)
    scored, rejects = _spark_rows(run)
    assert [r["assessment_id"] for r in scored] == [f"no-ids.csv:{r['source_row']}" for r in scored]
    assert [r["source_row"] for r in scored] == [n for n in range(1, 301) if n != 8]
    assert [{k: v for k, v in r.items() if k not in (*KEYS, "assessment_id")} for r in scored] == [
        {k: v for k, v in r.items() if k != "assessment_id"}
        for r in expected.scored.to_arrow().to_pylist()
    ]
    assert rejects == sorted(
        (r["row"] - 1, r["code"], r["message"]) for r in expected.rejects.to_pylist()
    )
    assert _counts(run.summary()) == _counts(expected.summary)
    run.unpersist()
