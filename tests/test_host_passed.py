"""The host a caller passes is the one used, all the way down: no reader, scorer, tailoring
engine or document loader falls back to the process-wide host when it was given another.

Each test builds a host with an extra instrument (``TEST-5``, made up, five items) that only that
host knows, and makes the process-wide host impossible to build while it runs.
"""

from __future__ import annotations

import datetime as dt
import inspect
import io
import json
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pamlib
import pamlib.plugins
from pamlib.assessment import Assessment
from pamlib.errors import FormatError
from pamlib.formats.base import InputFormat, ReadChunk, ReadOptions, read_input
from pamlib.hookspecs import hookimpl
from pamlib.identity import Patient
from pamlib.instruments import Instrument
from pamlib.pathways import Pathway
from pamlib.plugins import PluginHost
from pamlib.tailoring import Context, Recommend, rule
from pamlib.tailoring.rules import Action

pa = pytest.importorskip("pyarrow")

TEST5 = Instrument(
    "TEST-5", "A made-up instrument of five items", tuple(f"t5.{k}" for k in "abcde")
)
ANSWERS = (3, 4, 2, 1, 3)


def _assessment() -> Assessment:
    answers = dict(zip(TEST5.items, ANSWERS, strict=True))
    return Assessment("A1", Patient("P1"), TEST5, dt.date(2025, 3, 1), answers)


class ExtraInstrument:
    """A plugin that registers ``TEST-5``."""

    @hookimpl
    def pamlib_register_instruments(self, register: Callable[[Instrument], None]) -> None:
        register(TEST5)


@pytest.fixture
def own_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginHost]:
    """A host knowing ``TEST-5``, never installed; the process-wide host may not be built."""
    pamlib.plugins.reset_host(None)
    h = PluginHost(load_entry_points=False, disabled=(), plugins={"extra": ExtraInstrument()})

    def refuse() -> PluginHost:
        raise AssertionError("the process-wide plugin host was asked for")

    monkeypatch.setattr(pamlib.plugins, "get_host", refuse)
    yield h
    assert pamlib.plugins._default_host is None


def _rows(n: int = 2) -> dict[str, list[Any]]:
    return {
        "assessment_id": [f"a{i}" for i in range(n)],
        "patient_id": [f"p{i}" for i in range(n)],
        "assessed_on": ["2025-03-01"] * n,
        "instrument": ["TEST-5"] * n,
        **{f"q{k:02d}": [str(v)] * n for k, v in enumerate(ANSWERS, start=1)},
    }


def _demo(host: PluginHost) -> Callable[[Instrument], Any]:
    from pamlib.scoring import select_provider

    return lambda instrument: select_provider("demo", instrument, host=host)


def _score_file(path: Path, host: PluginHost, **kwargs: Any) -> pamlib.pipeline.ScoreSummary:
    from pamlib.pipeline import score_file

    out, rejects = io.BytesIO(), io.BytesIO()
    summary = score_file(
        path,
        select_provider=_demo(host),
        output=out,
        rejects=rejects,
        output_format="csv",
        host=host,
        **kwargs,
    )
    assert summary.n_rejected == 0, rejects.getvalue().decode()
    assert out.getvalue().count(b",TEST-5,") == summary.n_scored
    return summary


def _write_csv(path: Path) -> Path:
    rows = _rows()
    lines = [",".join(rows)] + [",".join(str(v[i]) for v in rows.values()) for i in range(2)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_is_read_with_the_host_given(own_host: PluginHost, tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "export.csv")
    summary = _score_file(path, own_host, options=ReadOptions())
    assert summary.n_scored == 2


def test_parquet_is_read_with_the_host_given(own_host: PluginHost, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = tmp_path / "export.parquet"
    pq.write_table(pa.table(_rows()), path)
    assert _score_file(path, own_host).n_scored == 2


def test_json_lines_are_read_with_the_host_given(own_host: PluginHost, tmp_path: Path) -> None:
    rows = _rows()
    path = tmp_path / "export.jsonl"
    path.write_text(
        "".join(json.dumps({k: v[i] for k, v in rows.items()}) + "\n" for i in range(2)),
        encoding="utf-8",
    )
    assert _score_file(path, own_host).n_scored == 2


def test_workbook_is_read_with_the_host_given(own_host: PluginHost, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    rows = _rows()
    sheet.append(list(rows))
    for i in range(2):
        sheet.append([v[i] for v in rows.values()])
    path = tmp_path / "export.xlsx"
    book.save(path)
    assert _score_file(path, own_host).n_scored == 2


def test_fhir_is_read_with_the_host_given(own_host: PluginHost, tmp_path: Path) -> None:
    from pamlib.fhir import questionnaire_response

    assessment = _assessment()
    path = tmp_path / "export.json"
    path.write_text(json.dumps(questionnaire_response(assessment)), encoding="utf-8")
    assert _score_file(path, own_host, input_format="fhir").n_scored == 1


def test_arrow_tables_are_scored_with_the_host_given(own_host: PluginHost) -> None:
    from pamlib.pipeline import TableScorer, score_table

    table = pa.table(_rows())
    run = score_table(table, provider="demo", host=own_host)
    assert run.summary.n_scored == 2
    scorer = TableScorer(provider="demo", instrument="TEST-5", host=own_host)
    assert scorer.score(table).summary.n_scored == 2
    assert scorer.new_run().score(table).summary.n_scored == 2


def test_a_file_is_scored_into_memory_with_the_host_given(
    own_host: PluginHost, tmp_path: Path
) -> None:
    from pamlib.pipeline import TableScorer

    path = _write_csv(tmp_path / "export.csv")
    run = TableScorer(provider="demo", host=own_host).score_source(path)
    assert run.summary.n_scored == 2


def test_one_assessment_and_many_are_scored_with_the_host_given(own_host: PluginHost) -> None:
    assessment = _assessment()
    result = pamlib.score(assessment, provider="demo", host=own_host)
    assert result.assessment_id == "A1"
    scores = pamlib.score_many("TEST-5", [ANSWERS], provider="demo", host=own_host)
    assert len(scores.score) == 1
    assert scores.score[0] == result.score


class WalkingGroup:
    """A plugin adding a pathway and a rule recommending it for ``TEST-5``: only a host that
    has this plugin can recommend it."""

    @hookimpl
    def pamlib_register_pathways(self, register: Callable[[Pathway], None]) -> None:
        register(Pathway("walking-group", "Walking group"))

    @hookimpl
    def pamlib_register_rules(self, register: Callable[[Any], None]) -> None:
        register(walking_for_test5)


@rule("host.walking", priority=5, reason="only this host knows the walking group")
def walking_for_test5(ctx: Context) -> list[Action] | None:
    return [Recommend("walking-group")] if ctx.instrument == "TEST-5" else None


def test_a_table_is_tailored_with_the_host_given(own_host: PluginHost) -> None:
    from pamlib.pipeline import score_table
    from pamlib.tailoring import apply_recommendations, build_engine, tailor

    host = PluginHost(
        load_entry_points=False,
        disabled=(),
        plugins={"extra": ExtraInstrument(), "walking": WalkingGroup()},
    )
    run = score_table(pa.table(_rows()), provider="demo", host=host)
    tailored = tailor(run.scored, host=host)
    assert tailored.column("recommended_pathways").to_pylist()[0][0] == "walking-group"
    columns = apply_recommendations(run.scored, host=host)
    assert columns["recommended_pathways"][0].startswith("walking-group")
    outcome = build_engine(host=host).evaluate(Context("a", level=2, instrument="TEST-5"))
    assert outcome.recommendations[0].pathway == "walking-group"


def test_documents_are_read_with_the_instruments_given(own_host: PluginHost) -> None:
    from pamlib.serialize import dumps, loads

    assessment = _assessment()
    back = loads(dumps(assessment), Assessment, instruments=own_host.instruments())
    assert back == assessment


# -- the format contract: a reader that takes a host, and one that does not -------------------


class _Recording:
    """An input format that records what it was called with."""

    name = "rec"
    extensions = (".rec",)
    description = "records its calls"

    def __init__(self) -> None:
        self.calls: list[Mapping[str, Any]] = []


class OldReader(_Recording):
    def read(self, source: Any, options: ReadOptions) -> Iterator[ReadChunk]:
        self.calls.append({})
        return iter(())


class NewReader(_Recording):
    def read(
        self, source: Any, options: ReadOptions, *, host: PluginHost | None = None
    ) -> Iterator[ReadChunk]:
        self.calls.append({"host": host})
        return iter(())


class AnyKeywords(_Recording):
    def read(self, source: Any, options: ReadOptions, **kwargs: Any) -> Iterator[ReadChunk]:
        self.calls.append(kwargs)
        return iter(())


class Failing(_Recording):
    """A reader whose own ``TypeError`` must not be taken for "does not take a host"."""

    def read(
        self, source: Any, options: ReadOptions, *, host: PluginHost | None = None
    ) -> Iterator[ReadChunk]:
        self.calls.append({"host": host})
        raise TypeError("the reader's own bug")


@pytest.mark.parametrize(
    ("cls", "expected"),
    [(OldReader, {}), (NewReader, "host"), (AnyKeywords, "host")],
    ids=["positional-only-contract", "keyword-host", "var-keyword"],
)
def test_a_reader_gets_the_host_if_it_takes_one(
    own_host: PluginHost, cls: type[_Recording], expected: Any
) -> None:
    fmt = cls()
    assert isinstance(fmt, InputFormat)
    assert list(read_input(fmt, "x.rec", ReadOptions(), host=own_host)) == []
    assert fmt.calls == [{"host": own_host} if expected == "host" else {}]


def test_a_readers_own_type_error_is_not_swallowed(own_host: PluginHost) -> None:
    """It is the reader's failure, told by type and place (its text may quote the input), and
    the reader is not called again without the host."""
    fmt = Failing()
    with pytest.raises(FormatError, match=r"reader \(a plugin's\) failed: TypeError \(raised at"):
        list(read_input(fmt, "x.rec", ReadOptions(), host=own_host))
    assert fmt.calls == [{"host": own_host}]


class OldFormatPlugin:
    """A third-party format written against the two-argument contract, scoring ``TEST-5``."""

    @hookimpl
    def pamlib_register_formats(self, register: Callable[[Any], None]) -> None:
        register(OldCsv())


class OldCsv:
    name = "oldcsv"
    extensions = (".oldcsv",)
    description = "a CSV reader written before readers were given the host"

    def read(self, source: Any, options: ReadOptions) -> Iterator[ReadChunk]:
        from tests.oracles.csv_reader import read_record_chunks

        return read_record_chunks(source, options, [TEST5])


def test_a_two_argument_reader_still_scores_through_the_pipeline(tmp_path: Path) -> None:
    h = PluginHost(
        load_entry_points=False,
        disabled=(),
        plugins={"extra": ExtraInstrument(), "old": OldFormatPlugin()},
    )
    path = _write_csv(tmp_path / "export.oldcsv")
    assert _score_file(path, h).n_scored == 2


class _Read:
    """A ``read`` with any signature, recording the keywords it was called with."""

    def __init__(self, signature: inspect.Signature) -> None:
        self.__signature__ = signature
        self.seen: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Iterator[ReadChunk]:
        self.seen.append(kwargs)
        return iter(())


@given(
    st.lists(st.sampled_from(["host", "limit", "extra"]), unique=True),
    st.sampled_from([inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD]),
)
def test_a_host_is_passed_exactly_when_the_signature_names_it(
    names: list[str], kind: inspect._ParameterKind
) -> None:
    positional = [
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in ("source", "options")
    ]
    extra = [inspect.Parameter(n, kind, default=None) for n in names]
    read = _Read(inspect.Signature(positional + extra))
    fmt = types.SimpleNamespace(read=read)
    list(read_input(fmt, "s", ReadOptions(), host=None))
    assert read.seen == [{"host": None} if "host" in names else {}]


def test_converters_for_a_hosts_instruments_go_with_the_host() -> None:
    import gc

    from pamlib import serialize

    before = len(serialize._converters)
    for _ in range(3):
        h = PluginHost(load_entry_points=False, disabled=(), plugins={"x": ExtraInstrument()})
        back = serialize.loads(
            serialize.dumps(_assessment()), Assessment, instruments=h.instruments()
        )
        assert back.instrument is h.instruments().get("TEST-5")
        del h, back
        gc.collect()
    assert len(serialize._converters) <= before
