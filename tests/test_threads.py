"""Scoring on several threads gives what scoring on one gives, and stops as cleanly.

The stages of a run (read and check, score, write) overlap on threads of their own; the output
must be the same bytes in the same order, rejects must keep their line numbers, and a failure or
an interrupt on any thread must leave no partial output under a final name.
"""

from __future__ import annotations

import csv
import io
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib import TableScorer, score_table
from pamlib._workers import Ahead, Behind, available_cores, resolve_threads
from pamlib.cli import main
from pamlib.errors import ConfigurationError, PamlibError
from pamlib.formats.base import ReadOptions
from pamlib.pipeline import score_file
from pamlib.plugins import PluginHost
from pamlib.scoring import select_provider
from tests.hostile.test_outputs import cohort, leftovers, signal_mid_run

ITEMS = [f"q{i:02d}" for i in range(1, 14)]
HEADER = ["patient_id", "nhs_number", "assessment_id", "assessed_on", "instrument", "site", *ITEMS]


def messy_export(path: Path, n: int, seed: int = 18) -> Path:
    """An export with every kind of trouble, spread so that it falls in many blocks: bad answer
    codes, bad dates, wrong field counts, quoted commas and line breaks, blank lines, rows with
    no identity, and assessment ids repeated far from their first row."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for i in range(n):
        answers = [str(rng.randint(1, 4)) for _ in ITEMS]
        row = [f"P{i % 97}", "", f"A{i}", f"2024-0{1 + i % 9}-1{i % 10}", "PAM-13", f"s{i % 5}"]
        kind = rng.randrange(20)
        if kind == 0:
            answers[rng.randrange(13)] = rng.choice(["7", "x", "-1", "2.5"])
        elif kind == 1:
            row[3] = rng.choice(["2024-13-45", "yesterday", "31/02/2024"])
        elif kind == 2:
            answers = answers[: rng.randrange(13)]  # too few fields
        elif kind == 3:
            answers = [*answers, "extra"]  # too many
        elif kind == 4:
            row[5] = rng.choice(["north, east", 'say "hi"', "two\nlines", "cr\r\nlf"])
        elif kind == 5 and i > 10:
            row[2] = f"A{rng.randrange(i)}"  # an id seen before, often chunks back
        elif kind == 6:
            row[0] = ""  # no identity at all
        elif kind == 7:
            answers[rng.randrange(13)] = "NA"
        writer.writerow([*row, *answers])
        if kind == 8:
            out.write("\n")  # a blank line
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    return path


def _score(
    path: Path, threads: int, chunk_rows: int = 7, **settings: object
) -> tuple[str, bytes, bytes]:
    out, rejects = io.BytesIO(), io.BytesIO()
    host = PluginHost(load_entry_points=False, disabled=())
    summary = score_file(
        path,
        select_provider=lambda i: select_provider("demo", i, host=host),
        output=out,
        rejects=rejects,
        options=ReadOptions(chunk_rows=chunk_rows, settings=settings),
        host=host,
        threads=threads,
    )
    assert summary.reconciles
    return summary.reconciliation, out.getvalue(), rejects.getvalue()


def test_a_messy_export_scores_to_the_same_bytes_on_any_number_of_threads(
    tmp_path: Path,
) -> None:
    path = messy_export(tmp_path / "messy.csv", 3000)
    one = _score(path, 1, block_bytes=2048)
    assert b"duplicate-assessment-id" in one[2]
    assert b"field-count" in one[2]
    for threads in (2, 4):
        assert _score(path, threads, block_bytes=2048) == one


@pytest.mark.parametrize("limit", [0, 150, 10**9], ids=["at-the-second-block", "later", "never"])
def test_two_threads_split_blocks_beside_once_the_ids_outgrow_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """On two threads blocks are split on the reading thread until the file's ids outgrow
    the limit, then on a thread of their own: the output is the same bytes either way."""
    from pamlib.formats import _columnar as columnar

    path = messy_export(tmp_path / "messy.csv", 1200, seed=3)
    one = _score(path, 1, chunk_rows=50)
    monkeypatch.setattr(columnar, "_SPLIT_BESIDE_IDS", limit)
    started: list[str] = []
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    assert _score(path, 2, chunk_rows=50) == one
    assert ("pamlib-split" in started) == (limit < 1200)
    assert not [t for t in threading.enumerate() if t.name.startswith("pamlib-")]


def test_blocks_split_on_pyarrow_threads_give_the_same_bytes(tmp_path: Path) -> None:
    """With more threads allowed than a run has steps, pyarrow splits a block of several MiB
    on threads of its own, in pieces; on fewer, as one piece. The output is the same."""
    answers = [str(1 + k % 4) for k in range(13)]
    bad = [["P1", "", "A0000005", "2024-04-05", "PAM-13", "s", *answers],  # a repeat
           ["P2", "", "B1", "2024-13-01", "PAM-13", "north, east", *answers]]  # fmt: skip
    path = cohort(tmp_path / "large.csv", 40_000, bad=bad)
    assert path.stat().st_size > 2 << 20  # more than one of pyarrow's 1 MiB blocks
    one = _score(path, 1, chunk_rows=50_000)
    assert one[0] == "read 40002 = scored 40000 + not scored 0 + rejected 2"
    assert _score(path, 8, chunk_rows=50_000) == one


def test_the_command_line_gives_the_same_files_with_threads_1_and_4(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    path = messy_export(tmp_path / "messy.csv", 2000, seed=7)
    files = {}
    for threads in ("1", "4"):
        out, rej = tmp_path / f"out{threads}.csv", tmp_path / f"rej{threads}.csv"
        argv = ["score", str(path), "--provider", "demo", "-o", str(out), "--rejects", str(rej),
                "--chunk-rows", "5", "--threads", threads, "--no-progress"]  # fmt: skip
        assert main(argv) == 0
        files[threads] = (out.read_bytes(), rej.read_bytes())
    assert files["1"] == files["4"]
    assert files["1"][1].count(b"\n") > 100  # rejects from many chunks


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(0, 300),
    seed=st.integers(0, 2**16),
    chunk_rows=st.integers(1, 40),
    threads=st.integers(2, 5),
)
def test_threads_never_change_the_output(
    tmp_path_factory: pytest.TempPathFactory, rows: int, seed: int, chunk_rows: int, threads: int
) -> None:
    path = messy_export(tmp_path_factory.mktemp("t") / "messy.csv", rows, seed=seed)
    block = 512 + seed % 4096
    one = _score(path, 1, chunk_rows, block_bytes=block)
    assert _score(path, threads, chunk_rows, block_bytes=block) == one


def test_tables_score_the_same_on_any_number_of_threads(tmp_path: Path) -> None:
    path = messy_export(tmp_path / "messy.csv", 1500, seed=3)
    options = ReadOptions(chunk_rows=64)
    runs = [
        TableScorer(provider="demo", options=options, threads=t).score_source(path) for t in (1, 3)
    ]
    assert runs[0].scored.to_arrow().equals(runs[1].scored.to_arrow())
    assert runs[0].rejects.equals(runs[1].rejects)
    assert runs[0].summary == runs[1].summary
    table = pa.table({c: [f"{i % 4 + 1}" for i in range(1000)] for c in ITEMS}).append_column(
        "assessment_id", pa.array([f"a{i % 900}" for i in range(1000)])
    )
    table = table.append_column("patient_id", pa.array(["p"] * 1000))
    table = table.append_column("assessed_on", pa.array(["2024-03-01"] * 1000))
    batches = pa.Table.from_batches(table.to_batches(max_chunksize=100))
    one = score_table(batches, provider="demo", instrument="PAM-13", threads=1)
    four = score_table(batches, provider="demo", instrument="PAM-13", threads=4)
    assert one.scored.to_arrow().equals(four.scored.to_arrow())
    assert one.rejects.equals(four.rejects)
    assert one.summary.n_rejected == 100


_EXPECTED: dict[int, tuple[str, bytes, bytes]] = {}


@settings(max_examples=20, deadline=None)
@given(
    pauses=st.lists(st.sampled_from([0.0, 0.0, 0.0005, 0.003]), min_size=1, max_size=16),
    threads=st.integers(2, 4),
)
def test_any_timing_of_making_text_and_writing_keeps_the_order(
    tmp_path_factory: pytest.TempPathFactory, pauses: list[float], threads: int
) -> None:
    """Blocks' text is made on the scoring thread while earlier blocks are written on another;
    whichever runs ahead, and by however much, the bytes are those of one thread."""
    from pamlib.formats.delimited import CsvResultWriter

    path = tmp_path_factory.getbasetemp() / "timing.csv"
    if not path.exists():
        messy_export(path, 400, seed=11)
    if not _EXPECTED:
        _EXPECTED[0] = _score(path, 1, chunk_rows=9, block_bytes=1024)
    calls = 0

    def pause() -> None:
        nonlocal calls
        time.sleep(pauses[calls % len(pauses)])
        calls += 1

    prepare, write_text = CsvResultWriter.prepare, CsvResultWriter._write_text

    def slow_prepare(self: CsvResultWriter, *args: Any) -> Any:
        pause()
        return prepare(self, *args)

    def slow_write(self: CsvResultWriter, *args: Any) -> None:
        pause()
        write_text(self, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CsvResultWriter, "prepare", slow_prepare)
        patch.setattr(CsvResultWriter, "_write_text", slow_write)
        assert _score(path, threads, chunk_rows=9, block_bytes=1024) == _EXPECTED[0]


def test_text_is_made_at_most_a_few_blocks_ahead_of_the_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow output holds the scoring back: memory stays bounded by a few blocks' text."""
    from pamlib.formats.delimited import CsvResultWriter

    path = messy_export(tmp_path / "messy.csv", 600, seed=4)
    waiting = most = written = 0
    lock = threading.Lock()
    prepare = CsvResultWriter.prepare

    def counted(self: CsvResultWriter, *args: Any) -> Any:
        nonlocal waiting, most
        write = prepare(self, *args)
        with lock:
            waiting += 1
            most = max(most, waiting)

        def slow_write() -> None:
            nonlocal waiting, written
            time.sleep(0.005)
            write()
            with lock:
                waiting -= 1
                written += 1

        return slow_write

    monkeypatch.setattr(CsvResultWriter, "prepare", counted)
    assert _score(path, 2, chunk_rows=10) == _score(path, 1, chunk_rows=10)
    assert written > 80  # both runs' blocks
    # one being written, one in the queue, one just made and waiting for room
    assert 2 <= most <= 3, most


# -- stopping ------------------------------------------------------------------------------------


class InjectedError(PamlibError):
    """A failure put into a stage on purpose."""


def _fail_on(calls: int, exc: BaseException, real: object) -> object:
    seen = 0

    def failing(*args: object, **kwargs: object) -> object:
        nonlocal seen
        seen += 1
        if seen == calls:
            raise exc
        return real(*args, **kwargs)  # type: ignore[operator]

    return failing


#: Blocks split on the reading thread, beside it once the ids outgrow a limit, or beside it.
@pytest.mark.parametrize("threads", ["2", "2-beside-later", "4"])
@pytest.mark.parametrize("stage", ["check", "text", "write"])
@pytest.mark.parametrize("error", ["error", "interrupt"])
def test_a_failure_on_a_worker_thread_leaves_no_output(  # noqa: PLR0917 - fixtures
    tmp_path: Path,
    process_host: PluginHost,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stage: str,
    error: str,
    threads: str,
) -> None:
    from pamlib.formats import _columnar as columnar
    from pamlib.formats import output
    from pamlib.formats.delimited import CsvResultWriter

    source = cohort(tmp_path / "in.csv", 3000)
    out = tmp_path / "out.csv"
    out.write_text("previous output\n", encoding="utf-8")
    exc: BaseException = InjectedError("injected") if error == "error" else KeyboardInterrupt()
    owner, name = {
        "check": (columnar.ColumnChecker, "check"),
        "text": (output, "csv_text"),  # on the scoring thread
        "write": (CsvResultWriter, "_write_text"),  # on the writing thread
    }[stage]
    monkeypatch.setattr(owner, name, _fail_on(3, exc, getattr(owner, name)))
    if threads == "2-beside-later":  # after the first block's 100 ids
        monkeypatch.setattr(columnar, "_SPLIT_BESIDE_IDS", 100)
    threads_seen: set[str] = set()
    real_thread_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        threads_seen.add(self.name)
        real_thread_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    argv = ["score", str(source), "--provider", "demo", "-o", str(out), "--threads", threads[0],
            "--rejects", str(tmp_path / "rejects.csv"), "--chunk-rows", "100"]  # fmt: skip
    status = main(argv)
    err = capsys.readouterr().err
    assert status == (1 if error == "error" else 130), err
    assert ("injected" if error == "error" else "interrupted") in err
    assert "Traceback" not in err
    assert {"pamlib-read", "pamlib-write"} <= threads_seen
    assert out.read_text(encoding="utf-8") == "previous output\n"
    assert not (tmp_path / "rejects.csv").exists()
    assert leftovers(tmp_path) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("pamlib-")]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_a_threaded_run_leaves_no_output(tmp_path: Path, signum: int) -> None:
    source = cohort(tmp_path / "in.csv", 60_000)
    out = tmp_path / "out.csv"
    args = ["score", str(source), "--provider", "demo", "-o", str(out), "--chunk-rows", "300",
            "--threads", "4", "--no-progress"]  # fmt: skip
    # well into the run: blocks on every thread
    status, err = signal_mid_run(tmp_path, args, signum, after=0.05)
    if status == 0:  # pragma: no cover - the run beat the signal on a fast machine
        pytest.skip("the run finished before the signal came")
    assert status == 130, err
    assert b"Traceback" not in err
    assert not out.exists()
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize("threads", ["1", "4"])
def test_a_request_to_stop_while_the_provider_scores_stops_the_run(
    tmp_path: Path,
    process_host: PluginHost,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    threads: str,
) -> None:
    """SIGTERM landing inside the provider's own code is the user's stop (exit 130, nothing
    written), not a failure of the provider (exit 1)."""
    from pamlib.scoring.demo import DemoProvider

    real = DemoProvider.score_batch
    calls = 0

    def stopped(self: DemoProvider, *args: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 3:
            signal.raise_signal(signal.SIGTERM)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(DemoProvider, "score_batch", stopped)
    source = cohort(tmp_path / "in.csv", 3000)
    out = tmp_path / "out.csv"
    argv = ["score", str(source), "--provider", "demo", "-o", str(out), "--chunk-rows", "100",
            "--threads", threads, "--no-progress"]  # fmt: skip
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 130, err
    assert "failed while scoring" not in err
    assert "Traceback" not in err
    assert not out.exists()
    assert leftovers(tmp_path) == []


# -- the stages themselves -----------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(items=st.lists(st.integers()), depth=st.integers(1, 4))
def test_stages_keep_the_order(items: list[int], depth: int) -> None:
    got: list[int] = []
    behind = Behind(got.append, depth=depth)
    for item in Ahead(iter(items), depth=depth):
        behind.put(item)
    behind.finish()
    assert got == items


def test_a_source_closed_early_is_closed_on_its_own_thread() -> None:
    closed: list[str] = []

    def source() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.append(threading.current_thread().name)

    ahead = Ahead(source(), depth=1)
    assert next(ahead) == 0
    ahead.close()
    assert closed == ["pamlib-read"]


def test_a_failure_is_raised_as_itself() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise InjectedError("boom")

    with pytest.raises(InjectedError, match="boom"):
        list(Ahead(source()))

    def consume(item: int) -> None:
        if item == 2:
            raise InjectedError("write")

    def feed() -> None:
        behind = Behind(consume, depth=1)
        for item in range(100):
            behind.put(item)
        behind.finish()

    with pytest.raises(InjectedError, match="write"):
        feed()


def test_the_number_of_threads() -> None:
    assert resolve_threads(None) == available_cores() >= 1
    assert resolve_threads(3) == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigurationError):
            resolve_threads(bad)  # type: ignore[arg-type]


def test_zero_threads_is_a_usage_error(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    source = cohort(tmp_path / "in.csv", 5)
    assert main(["score", str(source), "--provider", "demo", "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


def test_a_scorer_sent_elsewhere_keeps_a_count_given_and_counts_cores_otherwise() -> None:
    import pickle

    given = pickle.loads(pickle.dumps(TableScorer(provider="demo", threads=3)))  # noqa: S301
    assert given.threads == 3
    default = pickle.loads(pickle.dumps(TableScorer(provider="demo")))  # noqa: S301
    assert default.threads == available_cores()


def test_an_interrupt_stops_the_main_thread_while_another_thread_opens_an_output() -> None:
    """Signal handlers run on the main thread alone: another thread creating an output (a
    service scoring several files) must neither hold the interrupt back nor have it raised on
    that thread instead."""
    from pamlib.formats import guard

    inside, release = threading.Event(), threading.Event()
    raised_elsewhere: list[BaseException] = []

    def open_an_output() -> None:
        try:
            with guard._signals_deferred():
                inside.set()
                release.wait(10)
        except KeyboardInterrupt as exc:
            raised_elsewhere.append(exc)

    def interrupt_while_the_other_is_inside() -> None:
        other = threading.Thread(target=open_an_output)
        with guard.clean_interrupts():
            other.start()
            inside.wait(10)
            try:
                signal.raise_signal(signal.SIGINT)
                guard._let_signals_in()
            finally:
                release.set()
                other.join()

    with pytest.raises(KeyboardInterrupt):
        interrupt_while_the_other_is_inside()
    assert raised_elsewhere == []
    assert guard._Interrupts.depth == 0


def test_lines_made_a_few_rows_at_a_time_are_the_same_bytes(tmp_path: Path) -> None:
    """A block's lines made a few rows at a time (as a table scored as one batch longer than a
    string array can hold is) are written in order, as the same bytes."""
    from unittest import mock

    from pamlib.formats import output

    path = messy_export(tmp_path / "messy.csv", 300, seed=5)
    whole = _score(path, 2, chunk_rows=50)
    with mock.patch.object(output, "_LINE_ROWS", 7):
        assert _score(path, 2, chunk_rows=50) == whole
