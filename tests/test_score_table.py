"""Scoring tables in memory goes through the same checks and scoring as scoring a file.

Any split of an export into Arrow batches, scored batch after batch by one
:class:`~pamlib.pipeline.TableScorer`, gives the scored rows and rejects that ``score_file``
gives on the file; pandas and polars DataFrames give what Arrow gives.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError, FormatError
from pamlib.formats.base import ReadOptions
from pamlib.formats.tables import TableReader
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.pipeline import ReconciliationError, ScoreRun, TableScorer, score_file, score_table
from pamlib.plugins import PluginHost
from tests.csv_strategies import COLUMNS, ITEMS, rows

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

HEADER = (*COLUMNS, *ITEMS, "notes")


def _host() -> PluginHost:
    return PluginHost(load_entry_points=False, disabled=())


def _plain(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """Records without control characters: their CSV splits into one line each, as the table
    does into rows (splitting messy text is the CSV readers' tests' business)."""
    return [
        {k: "".join(c if c.isprintable() else " " for c in v) for k, v in r.items()}
        for r in records
    ]


def _csv(records: list[dict[str, str]], header: tuple[str, ...] = HEADER) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in records:
        writer.writerow([row.get(c, "") for c in header])
    return out.getvalue().encode("utf-8")


def _table(records: list[dict[str, str]], header: tuple[str, ...] = HEADER) -> Any:
    return pa.table({c: pa.array([r.get(c, "") for r in records], pa.string()) for c in header})


def _score_file(tmp: Path, data: bytes, **kwargs: Any) -> tuple[Any, list[dict[str, str]], str]:
    source = tmp / "export.csv"
    source.write_bytes(data)
    host = _host()
    summary = score_file(
        source,
        select_provider=lambda i: host.scoring_providers()["demo"],
        output=tmp / "scored.parquet",
        rejects=tmp / "rejects.csv",
        options=ReadOptions(instrument="PAM-13", **kwargs),
        keep_nhs_number=True,
        host=host,
    )
    with (tmp / "rejects.csv").open(encoding="utf-8", newline="") as f:
        rejects = list(csv.DictReader(f))
    return pq.read_table(tmp / "scored.parquet"), rejects, summary.reconciliation


def _cuts(data: st.DataObject, n: int) -> list[int]:
    cuts = sorted(set(data.draw(st.lists(st.integers(0, n), max_size=4))))
    return [0, *cuts, n]


@settings(max_examples=40, deadline=None)
@given(records=st.lists(rows(), max_size=14), data=st.data())
def test_any_split_into_batches_scores_as_the_file_does(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, str]], data: st.DataObject
) -> None:
    tmp = tmp_path_factory.mktemp("split")
    records = _plain(records)
    expected, file_rejects, reconciliation = _score_file(tmp, _csv(records))
    table = _table(records)
    cuts = _cuts(data, len(records))
    scorer = TableScorer(provider="demo", instrument="PAM-13", keep_nhs_number=True, host=_host())
    runs = [scorer.score(table.slice(a, b - a)) for a, b in itertools.pairwise(cuts)]
    scored = pa.concat_tables([r.scored.to_arrow() for r in runs]).cast(expected.schema)
    assert scored.to_pylist() == expected.to_pylist()
    rejects = pa.concat_tables([r.rejects for r in runs]).to_pylist()
    assert [(r["code"], r["message"]) for r in rejects] == [
        (r["code"], r["message"]) for r in file_rejects
    ]
    # a record's row is its line less the header's (no quoted line breaks in these files)
    assert [r["row"] + 1 for r in rejects] == [int(r["line"]) for r in file_rejects]
    assert [dict(r["fields"]) for r in rejects] == [
        {c: records[r["row"] - 1].get(c, "") for c in HEADER} for r in rejects
    ]
    n_read = sum(r.summary.n_read for r in runs)
    assert n_read == len(records)
    if len(runs) == 1:
        assert runs[0].summary.reconciliation == reconciliation


@settings(max_examples=15, deadline=None)
@given(records=st.lists(rows(), min_size=1, max_size=10))
def test_one_table_scores_as_the_file_does(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, str]]
) -> None:
    tmp = tmp_path_factory.mktemp("whole")
    records = _plain(records)
    expected, _, reconciliation = _score_file(tmp, _csv(records))
    run = score_table(
        _table(records), provider="demo", instrument="PAM-13", keep_nhs_number=True, host=_host()
    )
    assert run.summary.reconciliation == reconciliation
    assert run.scored.to_arrow().cast(expected.schema).equals(expected)


@settings(max_examples=15, deadline=None)
@given(records=st.lists(rows(), min_size=1, max_size=10), chunk_rows=st.integers(1, 4))
def test_a_big_batch_is_read_in_slices_as_it_would_be_whole(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, str]], chunk_rows: int
) -> None:
    """A batch longer than ``chunk_rows`` is checked a slice at a time (so what one chunk
    holds stays bounded): rows, rejects, their rows and the counts are those of the file."""
    tmp = tmp_path_factory.mktemp("slices")
    records = _plain(records)
    expected, file_rejects, reconciliation = _score_file(tmp, _csv(records))
    options = ReadOptions(instrument="PAM-13", chunk_rows=chunk_rows)
    scorer = TableScorer(provider="demo", options=options, keep_nhs_number=True, host=_host())
    run = scorer.score(_table(records))
    assert run.summary.reconciliation == reconciliation
    assert run.scored.to_arrow().cast(expected.schema).equals(expected)
    rejects = run.rejects.to_pylist()
    assert [(r["row"] + 1, r["code"], r["message"]) for r in rejects] == [
        (int(r["line"]), r["code"], r["message"]) for r in file_rejects
    ]


def test_an_export_appended_to_itself_rejects_each_repeat_with_its_fields() -> None:
    """Rows whose one problem is a repeated id are rejected without the record checks' second
    look; their message and fields are what those checks give, and the others' too."""
    good = {"patient_id": "p", "assessed_on": "2024-01-01", **dict.fromkeys(ITEMS, "2")}
    records = [{"assessment_id": f"a{i}", **good} for i in range(3)]
    records.append({**records[1], "assessed_on": "2024-13-01"})  # repeated, and a bad date
    records += [dict(r) for r in records[:3]]
    options = ReadOptions(instrument="PAM-13", chunk_rows=2)
    run = TableScorer(provider="demo", options=options, host=_host()).score(_table(records))
    assert run.summary.reconciliation == "read 7 = scored 3 + not scored 0 + rejected 4"
    rejects = run.rejects.to_pylist()
    assert [(r["row"], r["code"]) for r in rejects] == [
        (4, "date"),
        (5, "duplicate-assessment-id"),
        (6, "duplicate-assessment-id"),
        (7, "duplicate-assessment-id"),
    ]
    assert "assessment id was used by an earlier record" in rejects[0]["message"]
    assert rejects[1]["message"] == rejects[2]["message"] == rejects[3]["message"]
    assert rejects[1]["message"].startswith("the assessment id was used by an earlier record")
    assert dict(rejects[2]["fields"]) == {c: records[5].get(c, "") for c in HEADER}


def _typed_frame() -> dict[str, Any]:
    """A small table as a service would hold it: typed columns, nulls for gaps."""
    return {
        "assessment_id": ["a1", "a2", "a3", "a4"],
        "patient_id": ["p1", "p1", None, "p3"],
        "nhs_number": [None, None, "9434765919", None],
        "assessed_on": [
            dt.date(2024, 1, 5),
            dt.date(2024, 6, 5),
            dt.date(2024, 2, 1),
            dt.date(2024, 3, 1),
        ],
        **{item: [3.0, 4.0, np.nan, 2.0] for item in ITEMS[:12]},
        "q13": [1.0, 4.0, 2.0, 7.0],
        "site": ["north", "north", "south", None],
    }


def test_typed_columns_read_as_their_text() -> None:
    run = score_table(pa.table(_typed_frame()), provider="demo", instrument="PAM-13", host=_host())
    assert run.summary.reconciliation == "read 4 = scored 2 + not scored 1 + rejected 1"
    reject = run.rejects.to_pylist()[0]
    assert (reject["location"], reject["code"]) == ("row 4", "impossible-answer")
    assert dict(reject["fields"])["q13"] == "7"  # a whole float reads as the integer
    assert run.scored.column("assessed_on").to_pylist()[0] == dt.date(2024, 1, 5)
    assert run.scored.column("site").to_pylist() == ["north", "north", "south"]
    assert "nhs_number" not in run.scored.column_names


def test_pandas_and_polars_give_what_arrow_gives() -> None:
    arrow = score_table(pa.table(_typed_frame()), provider="demo", instrument="PAM-13")
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_typed_frame())
    frame["assessed_on"] = pd.to_datetime(frame["assessed_on"])
    from_pandas = score_table(frame, provider="demo", instrument="PAM-13")
    assert from_pandas.scored.to_arrow().equals(arrow.scored.to_arrow())
    assert from_pandas.rejects.equals(arrow.rejects)
    pl = pytest.importorskip("polars")
    from_polars = score_table(pl.DataFrame(_typed_frame()), provider="demo", instrument="PAM-13")
    assert from_polars.scored.to_arrow().equals(arrow.scored.to_arrow())
    assert from_polars.rejects.equals(arrow.rejects)


_MIXED = st.sampled_from(
    [
        (3, "3"),
        ("N/A", "N/A"),
        (2.0, "2"),
        (None, ""),
        (True, "true"),
        ("4", "4"),
        (7, "7"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (2**70, str(2**70)),
        (b"1", "1"),
    ]
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(_MIXED, st.sampled_from([(1001, "1001"), ("P-7", "P-7")])), min_size=1, max_size=6
    )
)
def test_a_pandas_column_of_mixed_values_reads_as_their_text(
    cells: list[tuple[tuple[Any, str], tuple[Any, str]]],
) -> None:
    """A DataFrame column of Python values of several kinds (as JSON gives: ``[3, "N/A"]``,
    ids as numbers and text) is read value by value, as a column of text holding what an
    export would: the same run as the text itself. pyarrow alone refuses such a column, with a
    value in its message, or makes one type of them all (a date and a 3, two dates)."""
    pd = pytest.importorskip("pandas")
    n = len(cells)
    base = {"assessment_id": [f"a{i}" for i in range(n)], "assessed_on": ["2024-01-10"] * n}
    items = {item: ["3"] * n for item in ITEMS[1:]}
    mixed = pd.DataFrame(
        {
            **base,
            "patient_id": pd.Series([c[1][0] for c in cells], dtype=object),
            "q01": pd.Series([c[0][0] for c in cells], dtype=object),
            **items,
        }
    )
    text = pa.table(
        {**base, "patient_id": [c[1][1] for c in cells], "q01": [c[0][1] for c in cells], **items}
    )
    got = score_table(mixed, provider="demo", instrument="PAM-13", host=_host())
    expected = score_table(text, provider="demo", instrument="PAM-13", host=_host())
    assert got.scored.to_arrow().equals(expected.scored.to_arrow())
    assert got.rejects.drop_columns(["fields"]).equals(expected.rejects.drop_columns(["fields"]))


@pytest.mark.parametrize(
    ("values", "expected"),
    [([b"\xff", 2], "holds bytes that are not UTF-8"), ([1j, 2], "holds a value of type complex")],
)
def test_a_pandas_column_that_is_not_text_is_named_not_quoted(
    values: list[Any], expected: str
) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"assessment_id": ["a1", "a2"], "patient_id": ["SECRET-1", "p2"]})
    frame["assessed_on"] = "2024-01-10"
    frame["q01"] = pd.Series(values, dtype=object)
    with pytest.raises(FormatError, match=expected) as info:
        score_table(frame, provider="demo", instrument="PAM-13", host=_host())
    assert "SECRET" not in str(info.value)
    frame = pd.DataFrame({"assessment_id": ["a1"], "patient_id": ["p"], "assessed_on": ["2024"]})
    frame.columns = ["assessment_id", "assessment_id", "assessed_on"]
    with pytest.raises(FormatError, match="'assessment_id' repeats"):
        score_table(frame, provider="demo", instrument="PAM-13", host=_host())


def test_timestamps_are_read_as_their_local_date() -> None:
    utc = dt.UTC
    late = pa.array([dt.datetime(2024, 6, 30, 23, 30, tzinfo=utc)], pa.timestamp("s", tz="UTC"))
    late = late.cast(pa.timestamp("s", tz="Europe/London"))
    table = pa.table(
        {
            "assessment_id": ["a"],
            "patient_id": ["p"],
            "assessed_on": pa.array(
                [dt.datetime(2024, 6, 30, 23, 30, tzinfo=utc)], pa.timestamp("s", tz="UTC")
            ).cast(pa.timestamp("s")),
            **{item: ["3"] for item in ITEMS},
        }
    )
    run = score_table(table, provider="demo", instrument="PAM-13")
    assert run.scored.column("assessed_on").to_pylist() == [dt.date(2024, 6, 30)]
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (summer time): the local date counts
    table = table.set_column(2, "assessed_on", late)
    run = score_table(table, provider="demo", instrument="PAM-13")
    assert run.scored.column("assessed_on").to_pylist() == [dt.date(2024, 7, 1)]


def test_repeated_ids_are_found_across_batches_in_order() -> None:
    records = [
        {"assessment_id": "x", "patient_id": "p", "assessed_on": "2024-01-01"},
        {"assessment_id": "x", "patient_id": "p", "assessed_on": "2024-02-01"},
    ]
    for r in records:
        r.update(dict.fromkeys(ITEMS, "2"))
    table = _table(records)
    scorer = TableScorer(provider="demo", instrument="PAM-13")
    first, second = scorer.score(table.slice(0, 1)), scorer.score(table.slice(1, 1))
    assert first.summary.n_scored == 1
    assert second.rejects.column("code").to_pylist() == ["duplicate-assessment-id"]
    assert second.rejects.column("location").to_pylist() == ["row 2"]
    off = TableScorer(provider="demo", instrument="PAM-13", duplicates="off").score(table)
    assert off.summary.n_scored == 2


def test_external_first_occurrence_mask() -> None:
    records = [
        {"assessment_id": "x", "patient_id": "p", "assessed_on": "2024-01-01", "order": 7},
        {"assessment_id": "y", "patient_id": "p", "assessed_on": "2024-02-01", "order": 9},
    ]
    for r in records:
        r.update(dict.fromkeys(ITEMS, "2"))
    table = pa.Table.from_pylist(records)
    scorer = TableScorer(
        provider="demo", instrument="PAM-13", duplicates="external", row_key="order"
    )
    run = scorer.score(table, first_occurrence=np.array([True, False]))
    assert run.rejects.column("location").to_pylist() == ["row 9"]
    assert run.rejects.column("code").to_pylist() == ["duplicate-assessment-id"]
    assert "order" not in run.scored.column_names
    with pytest.raises(ConfigurationError, match="needs a first-occurrence mask"):
        scorer.score(table)
    with pytest.raises(ConfigurationError, match="2 booleans"):
        scorer.score(table, first_occurrence=np.array([True]))


def test_row_key_must_increase() -> None:
    table = pa.table(
        {
            "order": [2, 1],
            "patient_id": ["p", "q"],
            "assessed_on": ["2024-01-01"] * 2,
            **{item: ["1", "2"] for item in ITEMS},
        }
    )
    with pytest.raises(ConfigurationError, match="must increase"):
        score_table(table, provider="demo", instrument="PAM-13", row_key="order")
    # a batch read in slices is held to it whole, not slice by slice
    options = ReadOptions(instrument="PAM-13", chunk_rows=1)
    with pytest.raises(ConfigurationError, match="must increase"):
        TableScorer(provider="demo", options=options, row_key="order").score(table)


def test_row_keys_past_a_64_bit_integer_are_refused() -> None:
    """An unsigned key past 2**63 would wrap to a negative row in the rejects, and a falling
    pair of them would pass for a rising one."""
    big = 2**63 + 5
    table = pa.table(
        {
            "order": pa.array([big], pa.uint64()),
            "patient_id": ["p"],
            "assessed_on": ["2024-01-01"],
            **{item: ["1"] for item in ITEMS},
        }
    )
    with pytest.raises(ConfigurationError, match=r"below 2\*\*63"):
        score_table(table, provider="demo", instrument="PAM-13", row_key="order")
    reader = TableReader(ReadOptions(instrument="PAM-13"), BUILTIN_INSTRUMENTS)
    batch = table.drop_columns(["order"]).to_batches()[0]
    with pytest.raises(ConfigurationError, match=r"below 2\*\*63"):
        reader.chunk(batch, keys=np.array([big], dtype=np.uint64))
    small = table.set_column(0, "order", pa.array([7], pa.uint64()))
    run = score_table(small, provider="demo", instrument="PAM-13", row_key="order")
    assert run.summary.n_scored == 1


def test_a_header_problem_is_a_format_error() -> None:
    table = pa.table({"patient_id": ["p"], "q01": ["1"]})
    with pytest.raises(FormatError):
        score_table(table, provider="demo", instrument="PAM-13")


def test_empty_table_and_not_a_table() -> None:
    empty = _table([])
    run = score_table(empty, provider="demo", instrument="PAM-13")
    assert run.summary.reconciliation == "read 0 = scored 0 + not scored 0 + rejected 0"
    assert len(run.scored) == 0
    assert run.rejects.num_rows == 0
    with pytest.raises(ConfigurationError, match="not a table"):
        score_table({"patient_id": ["p"]}, provider="demo")
    with pytest.raises(ConfigurationError, match="not a table"):
        score_table([1, 2], provider="demo")


def test_batches_must_share_their_columns() -> None:
    a = _table([{"patient_id": "p", "assessed_on": "2024-01-01"}])
    b = a.rename_columns([*a.column_names[:-1], "other"])
    with pytest.raises(FormatError, match="differ in their columns"):
        score_table([a, b], provider="demo", instrument="PAM-13")


def test_run_repr_and_reconciliation_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table([{"patient_id": "secret-id", "assessed_on": "2024-01-01"}])
    run = score_table(table, provider="demo", instrument="PAM-13")
    assert isinstance(run, ScoreRun)
    assert "secret-id" not in repr(run)
    from pamlib import pipeline

    original = pipeline._Scorer.chunk

    def lose_one(self: Any, chunk: Any) -> Any:
        parts = original(self, chunk)
        self.n_read += 1
        return parts

    monkeypatch.setattr(pipeline._Scorer, "chunk", lose_one)
    with pytest.raises(ReconciliationError, match="do not reconcile"):
        score_table(table, provider="demo", instrument="PAM-13")


# -- pickling: a scorer is shipped to workers as names, documents and hashes --------------------

DEMO_CALIBRATION = Path(__file__).parent.parent / "docs" / "examples" / "synthetic-demo-PAM-13.json"


def _answers_table(n: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 5, size=(n, len(ITEMS)))
    return pa.table(
        {
            "assessment_id": [f"a{i}" for i in range(n)],
            "patient_id": [f"p{i % 7}" for i in range(n)],
            "assessed_on": ["2024-03-01"] * n,
            **{item: codes[:, k].astype(str).tolist() for k, item in enumerate(ITEMS)},
        }
    )


def _score_in_worker(scorer: TableScorer, table: Any) -> Any:
    return scorer.score(table).scored.to_arrow()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"provider": "demo"},
        {"provider": "rasch", "calibration": DEMO_CALIBRATION},
        {"calibration": DEMO_CALIBRATION},
    ],
    ids=["demo", "rasch-by-name", "rasch-by-calibration"],
)
def test_a_pickled_scorer_scores_as_the_parent_does(kwargs: dict[str, Any]) -> None:
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    table = _answers_table(200, seed=5)
    scorer = TableScorer(instrument="PAM-13", **kwargs)
    expected = scorer.score(table).scored.to_arrow()
    copy = pickle.loads(pickle.dumps(TableScorer(instrument="PAM-13", **kwargs)))  # noqa: S301
    assert copy.providers() == scorer.providers()
    assert copy.score(table).scored.to_arrow().equals(expected)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        assert pool.submit(_score_in_worker, scorer, table).result().equals(expected)


def test_an_unpickled_scorer_refuses_another_provider_version() -> None:
    scorer = TableScorer(provider="demo", instrument="PAM-13")
    rebuild, (state,) = scorer.__reduce__()
    state = {**state, "providers": {"PAM-13": ("demo", "0.0.1-other")}}
    with pytest.raises(ConfigurationError, match=r"built with provider demo 0\.0\.1-other"):
        rebuild(state)
    calibrated = TableScorer(calibration=DEMO_CALIBRATION, instrument="PAM-13")
    rebuild, (state,) = calibrated.__reduce__()
    with pytest.raises(ConfigurationError, match="hash differs"):
        rebuild({**state, "calibration_sha256": "0" * 64})


@settings(max_examples=30, deadline=None)
@given(records=st.lists(rows(), max_size=12), keep=st.booleans())
def test_a_scored_table_writes_the_bytes_the_file_path_writes(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, str]], keep: bool
) -> None:
    """One CSV output, whichever way the rows came: streamed from a file, or held as a table
    (what tailored output and ``pamlib demo`` write)."""
    from pamlib.pipeline import write_scored

    tmp = tmp_path_factory.mktemp("bytes")
    records = _plain(records)
    source = tmp / "export.csv"
    source.write_bytes(_csv(records))
    host = _host()
    streamed = io.BytesIO()
    score_file(
        source,
        select_provider=lambda i: host.scoring_providers()["demo"],
        output=streamed,
        rejects=io.BytesIO(),
        options=ReadOptions(instrument="PAM-13"),
        keep_nhs_number=keep,
        host=host,
    )
    run = score_table(
        _table(records), provider="demo", instrument="PAM-13", keep_nhs_number=keep, host=host
    )
    held = io.BytesIO()
    write_scored(run.scored, held, output_format="csv", score_decimals=run.score_decimals)
    assert held.getvalue() == streamed.getvalue()


def test_categoricals_and_a_pandas_index_read_as_an_export_would() -> None:
    items = {item: ["3", "4", "1"] for item in ITEMS}
    data = {"patient_id": ["p", "q", "r"], "assessed_on": ["2024-01-01"] * 3, **items}
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({**data, "site": ["a", "b", "a"]}).with_columns(
        pl.col("site").cast(pl.Categorical)
    )
    run = score_table(frame, provider="demo", instrument="PAM-13")
    assert run.scored.column("site").to_pylist() == ["a", "b", "a"]
    pd = pytest.importorskip("pandas")
    filtered = pd.DataFrame(data)
    filtered = filtered[filtered["patient_id"] != "q"]  # its index is no longer 0, 1, 2
    run = score_table(filtered, provider="demo", instrument="PAM-13")
    assert run.summary.n_scored == 2
    assert not any(c.startswith("__index") for c in run.scored.column_names)
    # a named index is a column, as pandas' own Arrow export makes it
    run = score_table(
        pd.DataFrame(data).set_index("patient_id"), provider="demo", instrument="PAM-13"
    )
    assert run.scored.column("patient_id").to_pylist() == ["p", "q", "r"]


def test_a_new_run_keeps_the_providers_and_forgets_the_ids() -> None:
    records = [{"assessment_id": "x", "patient_id": "p", "assessed_on": "2024-01-01"}]
    records[0].update(dict.fromkeys(ITEMS, "2"))
    table = _table(records)
    scorer = TableScorer(provider="demo", instrument="PAM-13")
    assert scorer.score(table).summary.n_scored == 1
    assert scorer.score(table).summary.n_rejected == 1  # the same run: a repeated id
    fresh = scorer.new_run()
    assert fresh.providers() == scorer.providers()
    assert fresh._scorer.providers is scorer._scorer.providers  # chosen once, not again
    run = fresh.score(table)
    assert run.summary.n_scored == 1
    assert run.scored.to_arrow().equals(scorer.new_run().score(table).scored.to_arrow())


def _demo_of(host: PluginHost) -> Any:
    demo = host.scoring_providers()["demo"]
    return lambda _: demo


_VARIANTS = {
    "patient_id": ["Patient ID", "patient-id", "PATIENT_ID", "Patient Identifier"],
    "nhs_number": ["NHS Number", "NHS No.", "nhs no", "NHS_NUMBER"],
    "assessment_id": ["Assessment ID", "Response ID", "assessment-id"],
    "assessed_on": ["Assessed On", "Date of Assessment", "Date Completed", "ASSESSED_ON"],
    "instrument": ["Instrument", "Questionnaire", "instrument id"],
    "site": ["Site", "SITE"],
    **{item: [f"Q{int(item[1:])}", f"Item {int(item[1:])}", item.upper()] for item in ITEMS},
}


@settings(max_examples=25, deadline=None)
@given(records=st.lists(rows(), max_size=8), data=st.data())
def test_header_spellings_score_as_the_canonical_names(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, str]], data: st.DataObject
) -> None:
    """The same records under any recognised spelling of each column give the same scored
    output and rejects as under pamlib's own names (the container-equivalence property of
    the real-exports work, for headers)."""
    tmp = tmp_path_factory.mktemp("spell")
    records = _plain(records)
    spelled = tuple(
        data.draw(st.sampled_from(_VARIANTS[c])) if c in _VARIANTS else c for c in HEADER
    )
    outputs = []
    for name, header in (("canonical", HEADER), ("spelled", spelled)):
        source = tmp / f"{name}.csv"
        out = _csv(records)
        source.write_bytes(out.replace(out.split(b"\n", 1)[0], _csv([], header).rstrip(b"\n"), 1))
        scored, rejected = io.BytesIO(), io.BytesIO()
        host = _host()
        summary = score_file(
            source,
            select_provider=_demo_of(host),
            output=scored,
            rejects=rejected,
            options=ReadOptions(instrument="PAM-13"),
            host=host,
        )
        codes = [r["code"] for r in csv.DictReader(io.StringIO(rejected.getvalue().decode()))]
        body = scored.getvalue().decode().split("\n", 1)[1].replace(f"{name}.csv:", "")
        outputs.append((summary.reconciliation, body, codes))
    assert outputs[0] == outputs[1]


def test_one_scorer_used_from_two_threads_takes_turns() -> None:
    """Each call continues the scorer's one stream: called from two threads at once, the
    calls take turns, so every repeated id is found as if they had come one after the other
    (before, one call's ids could slip past the other's while both ran)."""
    import threading

    n = 3_000
    ids = [f"a{i % 1_500}" for i in range(n)]  # each id twice within a table
    items = {item: ["3"] * n for item in ITEMS}
    table = pa.table(
        {"assessment_id": ids, "patient_id": ["p"] * n, "assessed_on": ["2024-01-10"] * n} | items
    )
    batches = pa.Table.from_batches(table.to_batches(max_chunksize=300))
    scorer = TableScorer(provider="demo", instrument="PAM-13", host=_host())
    start = threading.Barrier(2)
    runs: list[ScoreRun] = []

    def score() -> None:
        start.wait()
        runs.append(scorer.score(batches))

    threads = [threading.Thread(target=score) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rejected = sorted(run.summary.n_rejected for run in runs)
    assert rejected == [1_500, 3_000]  # the second call's every id was seen before


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"keep_nhs_number": "no"}, "keep_nhs_number must be True or False"),
        ({"day_first": "no"}, "day_first must be True or False"),
        ({"instrument": 5}, "instrument must be an instrument's id"),
        ({"pseudonymiser": "key"}, "pseudonymiser must be a Pseudonymiser"),
        ({"host": "x"}, "host must be a PluginHost"),
        ({"options": 5}, "options must be ReadOptions"),
        ({"mapping": {5: "patient_id"}}, "mapping must be"),
        ({"mapping": [("a", "b")]}, "mapping must be"),
    ],
)
def test_a_scorer_argument_of_the_wrong_kind_is_said_plainly(
    kwargs: dict[str, Any], expected: str
) -> None:
    """A truthy ``"no"`` for keep_nhs_number would have added NHS numbers to the output."""
    with pytest.raises(ConfigurationError, match=expected):
        TableScorer(provider="demo", **kwargs)


def test_columns_no_export_holds_are_refused_by_name() -> None:
    """A struct column, a time zone pyarrow does not know, a pandas Series given as the table:
    ConfigurationErrors naming the column or the data, never one of pyarrow's."""
    n = 2
    base = {"assessment_id": ["a1", "a2"], "patient_id": ["p1", "p2"]}
    items = {item: ["3"] * n for item in ITEMS}
    struct = pa.table({**base, "assessed_on": ["2024-01-10"] * n, "extra": [{"a": 1}] * n, **items})
    with pytest.raises(ConfigurationError, match="the column 'extra'"):
        score_table(struct, provider="demo", instrument="PAM-13", host=_host())
    zone = pa.array([0, 1], pa.timestamp("s", tz="Mars/Olympus"))
    with pytest.raises(ConfigurationError, match="the column 'assessed_on'"):
        score_table(
            pa.table({**base, "assessed_on": zone, **items}),
            provider="demo",
            instrument="PAM-13",
            host=_host(),
        )
    pd = pytest.importorskip("pandas")
    with pytest.raises(ConfigurationError, match="is a Series, not a table"):
        score_table(pd.Series([1, 2]), provider="demo", instrument="PAM-13", host=_host())
