"""A plain misuse of pamlib.spark gets pamlib's own error, saying what was expected, on the driver
before any Spark job runs: never an AttributeError, a Py4J error or a failed job's trace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pamlib.errors import ConfigurationError, FormatError, PamlibError, ScoringError
from pamlib.reporting import ReportConfig, build_report, patients_table
from tests.spark.exports import MAPPING, Export, make_export

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("spark-arguments"), n=120, seed=3)


@pytest.fixture(scope="module")
def df(spark: Any, export: Export) -> Any:
    import pamlib.spark as ps

    return ps.read_export(spark, str(export.path), mapping=MAPPING)


@pytest.fixture(scope="module")
def two_files(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A scored export of two files (one header), for figures per file."""
    import pamlib.spark as ps

    folder = tmp_path_factory.mktemp("spark-two-files")
    make_export(folder, n=120, seed=7, name="a.csv")
    make_export(folder, n=120, seed=8, name="b.csv")
    return ps.score(ps.read_export(spark, str(folder), mapping=MAPPING), provider="demo")


@pytest.fixture
def no_job(spark: Any) -> Iterator[Callable[[], list[int]]]:
    """The ids of the jobs run inside the test (its own job group)."""
    context = spark.sparkContext
    group = "pamlib-no-job"
    context.setJobGroup(group, "arguments refused before any job")
    yield lambda: list(context.statusTracker().getJobIdsForGroup(group))
    context.setLocalProperty("spark.jobGroup.id", None)


def test_read_export_s_arguments(spark: Any, export: Export, tmp_path: Path) -> None:
    import pamlib.spark as ps

    with pytest.raises(FormatError, match="no such file or folder"):
        ps.read_export(spark, str(tmp_path / "missing.csv"))
    with pytest.raises(ConfigurationError, match=r"path must be a path \(str or os.PathLike\)"):
        ps.read_export(spark, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="spark must be a SparkSession, not None"):
        ps.read_export(None, str(export.path))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="multiline must be True or False, not a str"):
        ps.read_export(spark, str(export.path), multiline="no")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="mapping must be"):
        ps.read_export(spark, str(export.path), mapping=3)  # type: ignore[arg-type]
    frame = ps.read_export(spark, export.path, mapping=MAPPING)  # os.PathLike
    assert "_pamlib_seq" in frame.columns


def test_score_s_arguments_before_any_job(
    df: Any, export: Export, no_job: Callable[[], list[int]]
) -> None:
    import pamlib.spark as ps

    with pytest.raises(ConfigurationError, match=r"df must be a DataFrame .* not a str"):
        ps.score(str(export.path), provider="demo")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"df must be a DataFrame .* not None"):
        ps.score(None, provider="demo")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"duplicates must be .* not a list"):
        ps.score(df, provider="demo", duplicates=["global"])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="row_key must be"):
        ps.score(df, provider="demo", row_key="nope")  # type: ignore[arg-type]
    with pytest.raises(ScoringError, match="no-such-provider"):
        ps.score(df, provider="no-such-provider")
    assert no_job() == []


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("try_cast(Q1 AS INT)", "int"),
        ("array(Q1)", "array<string>"),
        ("to_date(`Date taken`)", "date"),
    ],
    ids=["int", "array", "date"],
)
def test_a_column_that_is_not_text_is_refused(
    df: Any, expression: str, kind: str, no_job: Callable[[], list[int]]
) -> None:
    from pyspark.sql import functions as sf

    import pamlib.spark as ps

    typed = df.withColumn("Q1", sf.expr(expression))
    with pytest.raises(
        ConfigurationError, match=f"column Q1 must be text \\(string\\), not {kind}"
    ):
        ps.score(typed, provider="demo")
    assert no_job() == []


def test_a_column_of_no_type_is_read_as_empty_text(df: Any) -> None:
    from pyspark.sql import functions as sf

    import pamlib.spark as ps

    summary = ps.score(df.withColumn("notes", sf.lit(None)), provider="demo").summary()
    expected = ps.score(df.withColumn("notes", sf.lit("")), provider="demo").summary()
    assert summary.reconciles
    assert summary.reconciliation == expected.reconciliation


def test_write_refuses_what_it_cannot_write_and_leaves_nothing(
    df: Any, tmp_path: Path, no_job: Callable[[], list[int]]
) -> None:
    import pamlib.spark as ps

    run = ps.score(df, provider="demo")
    numbered = no_job()  # the pass that numbered the rows
    for fmt in ("csv", "text", "CSV"):
        with pytest.raises(ConfigurationError, match="cannot hold the scored rows' lists"):
            run.write(str(tmp_path / fmt), format=fmt)
    with pytest.raises(ConfigurationError, match="Spark knows no data source 'nope'"):
        run.write(str(tmp_path / "nope"), format="nope")
    with pytest.raises(ConfigurationError, match="path must be a path"):
        run.write(None)  # type: ignore[arg-type]
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    with pytest.raises(FormatError, match="a folder above it is a file"):
        run.write(str(tmp_path / "afile" / "out"))
    assert no_job() == numbered
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_cohort_arguments(two_files: Any) -> None:
    import pamlib.spark as ps

    wrong: list[tuple[Any, str]] = [("4", "a str"), (0, "0"), (-1, "-1"), (2.0, "a float")]
    for buckets, shown in wrong:
        with pytest.raises(ConfigurationError, match=f"buckets must be .* not {shown}"):
            ps.cohort_summary(two_files, buckets=buckets)
        with pytest.raises(ConfigurationError, match="buckets must be"):
            ps.trajectories(two_files, buckets=buckets)
    with pytest.raises(ConfigurationError, match="config must be a ReportConfig, not a dict"):
        ps.cohort_summary(two_files, {"group_by": "site"})
    with pytest.raises(ConfigurationError, match=r"scored must be a SparkRun .* not None"):
        ps.cohort_summary(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="column source_row must be text"):
        ps.trajectories(two_files, ReportConfig(group_by="source_row"))


def test_figures_per_export_file(two_files: Any) -> None:
    """Grouped by ``source_file``, the figures are ``pamlib report``'s on the same rows with
    that column kept (the file of each patient's baseline)."""
    import pamlib.spark as ps

    config = ReportConfig(group_by="source_file")
    rows = two_files.scored.orderBy("source_file", "source_row").toArrow()
    expected = build_report(rows.drop_columns(["source_row"]), config)
    found = ps.cohort_summary(two_files, config, buckets=2)
    assert found.group_by == "source_file"
    assert found.groups == expected.released.groups
    assert list(found.values.items()) == list(expected.released.values.items())
    patients = ps.trajectories(two_files, config, buckets=2).toArrow().sort_by("patient_id")
    assert patients.to_pylist() == patients_table(expected).to_pylist()


def test_every_refusal_is_pamlib_s(df: Any) -> None:
    """The errors above are all pamlib's: one ``except PamlibError`` catches each."""
    import pamlib.spark as ps

    with pytest.raises(PamlibError):
        ps.score(df, provider="demo", cache_export="yes")  # type: ignore[arg-type]


def test_rows_read_twice_are_refused_not_counted_twice(df: Any) -> None:
    """The union of two reads that overlap gives each row twice, with the same file and
    number: scored, every record would count twice and no repeated id be found. A split holding
    more rows than numbers is refused; the union of different files is not (other tests)."""
    import pamlib.spark as ps

    with pytest.raises(ConfigurationError, match="some rows of the export twice"):
        ps.score(df.union(df), provider="demo").summary()
    half = df.where(df["_pamlib_seq"] % 2 == 0)  # fewer rows than numbers: filtered, not doubled
    assert ps.score(half, provider="demo").summary().n_read > 0
