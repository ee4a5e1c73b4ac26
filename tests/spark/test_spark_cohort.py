"""Trajectories and cohort figures computed on Spark equal ``pamlib report``'s on the same
scored rows: every per-patient column, every figure, in the same order, suppressed alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError
from pamlib.reporting import ReportConfig, build_report, patients_table
from pamlib.synthetic import test_nhs_number as nhs_number_for_tests
from tests.calibrations import rsm_document
from tests.spark.exports import MAPPING, make_export

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

KEYS = ("source_file", "source_row")


@pytest.fixture(scope="module")
def run(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A scored export split across several tasks: each patient's rows in different ones."""
    import pamlib.spark as ps

    folder = tmp_path_factory.mktemp("spark-cohort")
    calibration = folder / "calibration.json"
    calibration.write_text(json.dumps(rsm_document()), encoding="utf-8")
    export = make_export(folder, n=900, seed=5)
    df = ps.read_export(spark, str(export.path), mapping=MAPPING, multiline=False)
    assert df.rdd.getNumPartitions() > 2
    return ps.score(df, calibration=str(calibration))


@pytest.fixture(scope="module")
def scored_rows(run: Any) -> pa.Table:
    """The scored rows in file order, as ``pamlib report`` would read them back."""
    table = run.scored.orderBy(*KEYS).toArrow()
    return table.drop_columns(list(KEYS))


CONFIGS = [
    ReportConfig(),
    ReportConfig(group_by="site", threshold=5.0, min_months=3, max_months=9),
    ReportConfig(group_by="site", publish=True),
]


@pytest.mark.parametrize("config", CONFIGS[:2], ids=["default", "by-site"])
def test_trajectories_equal_pamlib_report_s_patients(
    run: Any, scored_rows: pa.Table, config: ReportConfig
) -> None:
    import pamlib.spark as ps

    expected = patients_table(build_report(scored_rows, config))
    found = ps.trajectories(run, config, buckets=3).toArrow()
    found = found.sort_by("patient_id")
    assert found.schema.names == expected.schema.names
    assert found.to_pylist() == expected.to_pylist()
    assert expected.num_rows > 20
    followed = pa.compute.sum(pa.compute.is_valid(expected.column("change"))).as_py()
    assert followed > 5  # the window finds follow-ups in this export


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "by-site", "published"])
def test_cohort_figures_equal_pamlib_report_s(
    run: Any, scored_rows: pa.Table, config: ReportConfig
) -> None:
    import pamlib.spark as ps

    report = build_report(scored_rows, config)
    found = ps.cohort_summary(run, config, buckets=3)
    assert list(found.values.items()) == list(report.released.values.items())
    assert found.identities == report.released.identities
    assert found.groups == report.released.groups
    assert found.suppressed == config.publish


def test_scored_rows_read_back_give_the_same_figures(
    spark: Any, scored_rows: pa.Table, tmp_path: Path
) -> None:
    """Scored rows written out and read back with Spark, with no row key: file order is then
    the DataFrame's own, which a single partition keeps."""
    import pamlib.spark as ps

    config = ReportConfig(group_by="site")
    frame = spark.createDataFrame(scored_rows).coalesce(1)
    found = ps.cohort_summary(frame, config, buckets=2)
    assert dict(found.values) == dict(build_report(scored_rows, config).figures.values)


def test_an_identifying_group_is_refused_before_the_job(run: Any) -> None:
    import pamlib.spark as ps
    from pamlib.reporting import IdentifyingColumnError

    with pytest.raises(IdentifyingColumnError):
        ps.cohort_summary(run, ReportConfig(group_by="patient_id"))
    with pytest.raises(IdentifyingColumnError):
        ps.trajectories(run, ReportConfig(group_by="nhs_number"))
    with pytest.raises(ConfigurationError, match="no column 'nowhere'"):
        ps.trajectories(run, ReportConfig(group_by="nowhere"))


def test_a_group_value_that_is_an_identifier_is_refused(spark: Any, scored_rows: pa.Table) -> None:
    """As in pamlib report: a grouping column mixing one patient's id (of a patient in any
    task) or an NHS number with shared values is refused, on the driver or in a task."""
    import pamlib.spark as ps
    from pamlib.reporting import IdentifyingColumnError
    from pamlib.spark import SparkJobError

    ids = scored_rows.column("patient_id").to_pylist()
    other = next(i for i in reversed(ids) if i and i != ids[0])
    for shown in (other, "943 476 5919"):  # every row of the first patient: their group
        ward = [shown if i == ids[0] else "Ward A" for i in ids]
        frame = spark.createDataFrame(scored_rows.append_column("ward", pa.array(ward)))
        with pytest.raises((IdentifyingColumnError, SparkJobError), match="some of its values"):
            ps.cohort_summary(frame, ReportConfig(group_by="ward"), buckets=3)
    frame = spark.createDataFrame(scored_rows.append_column("ward", pa.array(["W"] * len(ids))))
    assert ps.cohort_summary(frame, ReportConfig(group_by="ward"), buckets=3).groups == ("W",)
    # the driver's own look across every task's rows
    with pytest.raises(IdentifyingColumnError, match="'ward'"):
        ps._refuse_identifier_groups(frame, "ward", ["W", other])
    ps._refuse_identifier_groups(frame, "ward", ["W", "Ward A"])
    # quoted in a name, in another letter case, as the report refuses it
    assert len(other) >= 4
    assert any(c.isdigit() for c in other)
    with pytest.raises(IdentifyingColumnError, match="'ward'"):
        ps._refuse_identifier_groups(frame, "ward", ["W", f"Clinic {other.swapcase()} review"])


#: What people (and exports) put between an NHS number's groups: pamlib reads each as a space.
_SEPARATORS = (" ", "-", "\u00a0", "\u3000", "\x1c")


def _spaced(number: str, how: int) -> str:
    """An NHS number written as people write them: plain, ``943 476 5919``, with dashes, or
    with other whitespace (a no-break space from a word processor)."""
    if how == 0:
        return number
    sep = _SEPARATORS[how - 1]
    return f"{number[:3]}{sep}{number[3:6]}{sep}{number[6:]}"


_NUMBERS = [n for n in map(nhs_number_for_tests, range(40)) if n is not None][:6]
_identities = st.tuples(
    st.sampled_from(["", "", "p1", "p2", "nhs:" + _NUMBERS[0], " p1"]),
    st.sampled_from(["", *_NUMBERS]),
    st.integers(0, len(_SEPARATORS)),
    st.sampled_from(["", "", "s1", "s2"]),
)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(found=st.lists(_identities, min_size=1, max_size=40), buckets=st.integers(1, 7))
def test_rows_of_one_patient_key_share_a_bucket(
    spark: Any, found: list[tuple[str, str, int, str]], buckets: int
) -> None:
    """Spark chooses each row's group of patients by an expression of its own; whatever the
    identities, rows that pamlib links to one patient are in one group."""

    from pamlib.spark import _patient_bucket
    from pamlib.tables.scored import ScoredTable

    rows = [
        (pid, _spaced(nhs, how) if nhs else "", pseudonym) for pid, nhs, how, pseudonym in found
    ]
    rows = [r for r in rows if any(r)]  # a row with no key at all is refused, not linked
    assume(rows)
    table = pa.table(
        {
            "assessment_id": [f"A{i}" for i in range(len(rows))],
            "patient_id": [r[0] for r in rows],
            "nhs_number": [r[1] for r in rows],
            "nhs_pseudonym": [r[2] for r in rows],
            "assessed_on": ["2024-01-01"] * len(rows),
            "status": ["not-scored"] * len(rows),
            "score": [""] * len(rows),
            "level": [""] * len(rows),
        }
    )
    keys = ScoredTable.from_arrow(table).patient_keys()
    frame = spark.createDataFrame(table)
    bucket = frame.select(_patient_bucket(frame, buckets).alias("b")).toArrow().column("b")
    seen: dict[str, int] = {}
    for key, b in zip(keys.tolist(), bucket.to_pylist(), strict=True):
        assert seen.setdefault(key, b) == b


def test_every_spelling_of_one_nhs_number_shares_a_bucket(spark: Any) -> None:
    """A no-break space or an ideographic one between the groups is whitespace to pamlib, which
    links the rows: Spark's grouping expression must not part them."""
    from pamlib.spark import _patient_bucket

    spellings = [_spaced(_NUMBERS[0], how) for how in range(len(_SEPARATORS) + 1)]
    n = len(spellings)
    frame = spark.createDataFrame(
        pa.table({"patient_id": [""] * n, "nhs_number": spellings, "nhs_pseudonym": [""] * n})
    )
    bucket = frame.select(_patient_bucket(frame, 1 << 20).alias("b")).toArrow().column("b")
    assert len(set(bucket.to_pylist())) == 1


def test_a_level_its_score_contradicts_stops_the_cohort_job(spark: Any, run: Any) -> None:
    """As ``pamlib report`` refuses it: a row scored in level 1's range but read back with level
    4 would be counted at level 4. The job names it by its file's name and row; the driver's
    cut-point sets (a host's, where one is given) are what it is checked against."""
    import pyspark.sql.functions as sf

    import pamlib.spark as ps
    from pamlib.plugins import PluginHost
    from pamlib.spark import SparkJobError

    first = run.scored.where((sf.col("level") == 1) & (sf.col("status") == "scored")).first()
    wrong = (sf.col("source_file") == first["source_file"]) & (
        sf.col("source_row") == first["source_row"]
    )
    frame = run.scored.withColumn("level", sf.when(wrong, 4).otherwise(sf.col("level")))
    name = first["source_file"].rsplit("/", 1)[-1]
    expected = rf"1 scored row\(s\) whose level contradicts.*: {name} row {first['source_row']}$"
    with pytest.raises(SparkJobError, match=expected):
        ps.cohort_summary(frame, buckets=3)
    with pytest.raises(Exception, match="level contradicts their score"):
        ps.trajectories(frame, buckets=3).collect()
    # the same rows, read back with no row key: named as rows of a file pamlib cannot name
    with pytest.raises(SparkJobError, match=r"a row of a file$"):
        ps.cohort_summary(frame.drop(*KEYS), buckets=3)
    # a host that registers no cut-point sets has nothing to check the level against
    bare = PluginHost(load_entry_points=False, disabled=["pamlib.builtin.catalogue"])
    assert not list(bare.cutpoint_sets())
    assert ps.cohort_summary(frame, buckets=3, host=bare).values
    with pytest.raises(ConfigurationError, match="host must be a PluginHost"):
        ps.cohort_summary(frame, host="default")  # type: ignore[arg-type]
