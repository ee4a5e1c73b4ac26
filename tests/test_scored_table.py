"""ScoredTable: every format pamlib writes reads back the same; one strictness; one patient key."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pa = pytest.importorskip("pyarrow")

from pamlib.errors import ConfigurationError, FormatError  # noqa: E402
from pamlib.formats.output import typed_schema  # noqa: E402
from pamlib.pipeline import score_file  # noqa: E402
from pamlib.plugins import PluginHost  # noqa: E402
from pamlib.reporting import ReportConfig, ScoredColumns, build_report, summary_json  # noqa: E402
from pamlib.results import SCORED_TABLE_COLUMNS  # noqa: E402
from pamlib.scoring.demo import DemoProvider  # noqa: E402
from pamlib.synthetic import synthetic_cohort  # noqa: E402
from pamlib.tables import RECOMMENDATION_TYPES, ScoredTable, scored_schema  # noqa: E402
from pamlib.tables.scored import STANDARD_TYPES  # noqa: E402
from pamlib.tailoring import RECOMMENDATION_COLUMNS, ContextColumns  # noqa: E402

VALID_NHS = "9434765919"


def _scored_files(tmp_path: Path) -> list[Path]:
    cohort = synthetic_cohort(60, seed=5)
    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(cohort.csv_rows())
    host = PluginHost(load_entry_points=False, disabled=())
    outputs = [tmp_path / f"scored{ext}" for ext in (".csv", ".parquet", ".jsonl")]
    for out in outputs:
        score_file(
            source,
            select_provider=lambda _: DemoProvider(),
            output=out,
            rejects=io.BytesIO(),
            host=host,
        )
    return outputs


def test_every_format_pamlib_writes_reads_back_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one time of writing for every summary (they were a second apart once in a while)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764633600")
    tables = [ScoredTable.read(path) for path in _scored_files(tmp_path)]
    first = tables[0].to_arrow()
    assert len(first) >= 60
    assert first.schema.names[: len(SCORED_TABLE_COLUMNS)] == list(SCORED_TABLE_COLUMNS)
    for table in tables[1:]:
        assert table.to_arrow().equals(first), table
    config = ReportConfig(group_by="site")
    summaries = [summary_json(build_report(t, config)) for t in tables]
    assert summaries[1] == summaries[0]
    assert summaries[2] == summaries[0]
    assert all(t.to_arrow().column("demo").to_pylist() == [True] * len(first) for t in tables)


def test_the_schema_is_the_written_schema() -> None:
    assert scored_schema(["site"]) == typed_schema(["site"])
    assert tuple(STANDARD_TYPES)[:-1] == SCORED_TABLE_COLUMNS
    assert tuple(RECOMMENDATION_TYPES) == RECOMMENDATION_COLUMNS
    with_recs = scored_schema(["site"], recommendations=True)
    assert with_recs.names[-4:] == list(RECOMMENDATION_COLUMNS)
    assert str(with_recs.field("reassess_by").type) == "date32[day]"
    assert str(with_recs.field("recommended_pathways").type) == "list<item: string>"


# -- text and typed agree -------------------------------------------------------------------

_WORDS = st.text(st.sampled_from("abcXYZ019 -,\"'é"), min_size=1, max_size=6)


@st.composite
def typed_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 8))
    rows = []
    for i in range(n):
        scored = draw(st.booleans())
        score = draw(st.integers(0, 1000)) / 10 if scored else None
        rows.append(
            {
                "assessment_id": f"A{i}",
                "patient_id": draw(st.none() | _WORDS),
                "nhs_pseudonym": draw(_WORDS.filter(str.strip)),  # a key: never only spaces
                "assessed_on": draw(st.dates(dt.date(1990, 1, 1), dt.date(2100, 1, 1))),
                "instrument": "PAM-13",
                "status": "scored" if scored else "not-scored",
                "n_answered": draw(st.integers(0, 13)),
                "raw_score": draw(st.none() | st.integers(-5, 60)),
                "theta": draw(st.none() | st.floats(-8, 8, allow_subnormal=False)),
                "score": score,
                "level": draw(st.integers(1, 4)) if scored else None,
                "flags": draw(
                    st.lists(st.sampled_from(["missing-items", "extreme-response"]), unique=True)
                ),
                "provider": "raw-sum",
                "demo": draw(st.booleans()),
                "reason": None if scored else draw(_WORDS),
                "site": draw(st.none() | _WORDS),
                "reassess_by": draw(st.none() | st.dates(dt.date(2000, 1, 1))),
                "recommended_pathways": draw(st.lists(st.sampled_from(["a.b", "c"]))),
            }
        )
    return rows


def _as_csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


def _write_text(table: Any, path: Path) -> Path:
    """The table as a CSV of text, each cell protected as pamlib's writers protect it (a
    leading formula character or apostrophe gets an apostrophe, which reading drops)."""
    from pamlib.formats.output import protect

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([protect(n) for n in table.column_names])
        for row in table.to_pylist():
            writer.writerow([protect(_as_csv_text(v)) for v in row.values()])
    return path


def _typed(rows: list[dict[str, Any]]) -> ScoredTable:
    names = ["site", "nhs_pseudonym"]
    schema = scored_schema(names, recommendations=True)
    used = [f for f in schema if rows and f.name in rows[0]] or [
        f for f in schema if f.name in ("patient_id", "assessed_on", "status", "score", "level")
    ]
    return ScoredTable.from_arrow(pa.Table.from_pylist(rows, schema=pa.schema(used)))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=typed_rows())
def test_a_typed_table_written_as_text_reads_back_equal(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    typed = _typed(rows)
    again = ScoredTable.read(_write_text(typed.to_arrow(), tmp_path / "t.csv"))
    assert again.to_arrow().equals(typed.to_arrow())
    assert again.patient_keys().tolist() == typed.patient_keys().tolist()


def test_pandas_and_polars_in_give_the_same_as_arrow_in(tmp_path: Path) -> None:
    table = ScoredTable.read(_scored_files(tmp_path)[1])
    expected = table.to_arrow()
    if importlib.util.find_spec("pandas") is None:
        pytest.skip("pandas is not installed (pip install pandas)")
    assert ScoredTable.from_arrow(table.to_pandas()).to_arrow().equals(expected)
    if importlib.util.find_spec("polars") is None:
        pytest.skip("polars is not installed (pip install polars)")
    assert ScoredTable.from_arrow(table.to_polars()).to_arrow().equals(expected)
    batch = expected.to_batches()[0]
    assert ScoredTable.from_arrow(batch).to_arrow().equals(expected)


def test_missing_dataframe_libraries_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    table = ScoredTable.from_arrow(pa.table(_row()))
    monkeypatch.setitem(sys.modules, "pandas", None)
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ConfigurationError, match="pip install pandas"):
        table.to_pandas()
    with pytest.raises(ConfigurationError, match="pip install polars"):
        table.to_polars()


# -- strictness -----------------------------------------------------------------------------


def _row(**changes: str) -> dict[str, list[str]]:
    row = {
        "assessment_id": "A1",
        "patient_id": "SECRET",
        "assessed_on": "2024-01-10",
        "status": "scored",
        "score": "47.0",
        "level": "1",
        "demo": "false",
    } | changes
    return {k: [v] for k, v in row.items()}


def _two_rows(**changes: str) -> Any:
    good, bad = _row(), _row(**({"assessment_id": "A2"} | changes))
    names = dict.fromkeys([*good, *bad])
    return pa.table({k: good.get(k, [""]) + bad.get(k, [""]) for k in names})


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"assessed_on": "2024-02-30"}, "bad-date"),
        ({"assessed_on": "2024-01-10T09:00"}, "bad-date"),
        ({"score": "100.5"}, "bad-score"),
        ({"score": " 47.0"}, "bad-score"),
        ({"score": "1e1"}, "bad-score"),
        ({"level": "5"}, "bad-level"),
        ({"level": "level-2"}, "bad-level"),
        ({"status": ""}, "bad-status"),
        ({"demo": "maybe"}, "bad-demo"),
        ({"provider": "demo"}, "demo-conflict"),
        ({"assessment_id": "A1"}, "duplicate-assessment-id"),
        ({"assessment_id": ""}, "empty-assessment-id"),
        ({"patient_id": ""}, "no-patient-key"),
        ({"patient_id": "", "nhs_number": "1234567890"}, "bad-nhs-number"),
        ({"theta": "SECRET-theta"}, "bad-number"),
        ({"n_answered": "99999"}, "bad-number"),
    ],
)
def test_each_problem_is_located_without_values(changes: dict[str, str], code: str) -> None:
    with pytest.raises(FormatError) as caught:
        ScoredTable.from_arrow(_two_rows(**changes), source="in.csv")
    assert [(p.where, p.code) for p in caught.value.problems] == [("in.csv: row 2", code)]
    text = str(caught.value)
    assert "SECRET" not in text
    shown = {"2024-02-30", "T09:00", "100.5", "1e1", "level-2", "maybe", "1234567890", "99999"}
    assert not [v for v in shown if v in text]


def test_readers_refuse_what_the_table_refuses() -> None:
    rows = _two_rows(status="").to_pylist()
    with pytest.raises(FormatError):
        ScoredColumns.from_rows(rows)
    with pytest.raises(FormatError):
        ContextColumns.from_rows(rows)


def test_typed_values_are_checked_too() -> None:
    table = pa.table(
        {
            "patient_id": ["p", "p"],
            "assessed_on": pa.array([dt.date(2024, 1, 1), None], pa.date32()),
            "status": ["scored", "scored"],
            "score": [40.0, 140.0],
            "level": pa.array([1, 9], pa.int64()),
        }
    )
    with pytest.raises(FormatError) as caught:
        ScoredTable.from_arrow(table)
    assert sorted(p.code for p in caught.value.problems) == ["bad-date", "bad-level", "bad-score"]


def test_a_table_needs_its_columns() -> None:
    with pytest.raises(FormatError) as caught:
        ScoredTable.from_arrow(pa.table({"assessed_on": ["2024-01-01"]}))
    assert [p.message for p in caught.value.problems] == [
        "no column 'patient_id'",
        "no column 'status'",
        "no column 'score'",
        "no column 'level'",
    ]


def test_recommendation_columns_are_typed_from_text() -> None:
    table = ScoredTable.from_arrow(
        pa.table(
            _row(
                recommended_pathways="health-coaching;peer-support",
                reassess_by="2024-07-10",
                no_pathway_reason="",
            )
        )
    )
    out = table.to_arrow().to_pylist()[0]
    assert out["recommended_pathways"] == ["health-coaching", "peer-support"]
    assert out["reassess_by"] == dt.date(2024, 7, 10)
    assert out["no_pathway_reason"] is None


# -- the patient key ------------------------------------------------------------------------


def test_the_patient_key_rule() -> None:
    table = ScoredTable.from_arrow(
        pa.table(
            {
                "assessment_id": ["a", "b", "c", "d"],
                "patient_id": ["SECRET-p", "", "", "q"],
                "nhs_number": [VALID_NHS, "943 476 5919", "", ""],
                "nhs_pseudonym": ["x", "y", "z", ""],
                "assessed_on": ["2024-01-01"] * 4,
                "status": ["scored"] * 4,
                "score": ["40.0"] * 4,
                "level": ["1"] * 4,
            }
        )
    )
    keys = table.patient_keys()
    assert keys.dtype == object
    assert keys.tolist() == ["SECRET-p", f"nhs:{VALID_NHS}", "pseudonym:z", "q"]
    assert "SECRET" not in repr(table)
    assert VALID_NHS not in repr(table)
    assert repr(table).startswith("ScoredTable(n_rows=4, columns=['assessment_id'")


_KEY_PART = st.sampled_from(["", " ", "p1", "p2", VALID_NHS, "943 476 5919", "943-476-5918", "12"])


@given(st.lists(st.tuples(_KEY_PART, _KEY_PART, _KEY_PART), max_size=12))
def test_patient_keys_follow_the_rule_row_by_row(rows: list[tuple[str, str, str]]) -> None:
    """Each row's key and whether it is keyed by an invalid NHS number, against the rule
    applied to one row at a time (only a row without a patient_id looks at its NHS number)."""
    import re

    from pamlib.identity import is_valid_nhs_number
    from pamlib.tables.scored import _patient_keys

    def text(values: list[str]) -> Any:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    keys, bad = _patient_keys(
        text([r[0] for r in rows]), text([r[1] for r in rows]), text([r[2] for r in rows])
    )
    expected_keys, expected_bad = [], []
    for patient_id, nhs, pseudonym in rows:
        cleaned = re.sub(r"[\s\-]+", "", nhs)
        if patient_id.strip():
            expected_keys.append(patient_id)
            expected_bad.append(False)
        elif cleaned:
            expected_keys.append(f"nhs:{cleaned}")
            expected_bad.append(not is_valid_nhs_number(cleaned))
        else:
            expected_keys.append(f"pseudonym:{pseudonym}" if pseudonym.strip() else "")
            expected_bad.append(False)
    assert keys.tolist() == expected_keys
    assert bad.tolist() == expected_bad


def test_a_private_nhs_number_links_rows_but_is_not_a_column() -> None:
    data = pa.table(
        {
            "patient_id": ["", ""],
            "assessed_on": ["2024-01-01", "2024-09-01"],
            "status": ["scored", "scored"],
            "score": ["40.0", "60.0"],
            "level": ["1", "3"],
        }
    )
    with pytest.raises(FormatError, match="2 problem"):
        ScoredTable.from_arrow(data)
    table = ScoredTable.from_arrow(data, nhs_number=[VALID_NHS, VALID_NHS])
    assert "nhs_number" not in table.column_names
    assert VALID_NHS not in str(table.to_arrow().to_pylist())
    assert table.patient_keys().tolist() == [f"nhs:{VALID_NHS}"] * 2
    columns = ContextColumns.from_scored(table)
    assert columns.previous_level.tolist() == [0, 1]


def test_reports_link_rows_by_pseudonym(tmp_path: Path) -> None:
    path = tmp_path / "pseudo.csv"
    path.write_text(
        "assessment_id,patient_id,nhs_pseudonym,assessed_on,status,score,level,site\n"
        "a1,,ps-1,2024-01-10,scored,40.0,1,North\n"
        "a2,,ps-1,2024-09-10,scored,60.0,3,North\n",
        encoding="utf-8",
    )
    report = build_report(path)
    assert len(report.trajectories) == 1
    columns = ScoredColumns.from_scored(ScoredTable.read(path))
    assert "nhs_pseudonym" not in columns.text  # an identifier: never offered for grouping
    assert columns.column("site").tolist() == ["North", "North"]
    assert np.array_equal(columns.level, [1, 3])
