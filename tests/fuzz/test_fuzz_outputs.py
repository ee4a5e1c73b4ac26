"""Fuzzing the outputs: any two paths to one file are refused; the CSV writers give back what
they were given; a scored run accounts for every record in files that read back whole.

Budgets are small (the whole file runs in a few seconds); crashing inputs found here are kept,
minimised, in ``corpus/outputs`` and replayed by :func:`test_corpus_replays_cleanly`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.formats.base import Reject
from pamlib.formats.guard import OutputGuard, OutputRefusedError
from pamlib.formats.layout import CANONICAL_COLUMNS
from pamlib.formats.output import CsvWriter, RejectsWriter, protect
from pamlib.plugins import PluginHost

CORPUS = Path(__file__).parent / "corpus" / "outputs"
HEADER = [*CANONICAL_COLUMNS, *(f"q{i:02d}" for i in range(1, 14))]
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Text a spreadsheet or a CSV reader could trip on: line breaks, quotes, formula starts.
cells = st.text(alphabet=st.sampled_from([*"ab1 ,\"'\r\n\t=+-@;é", "\u2028", "\x00"]), max_size=12)


@pytest.fixture(autouse=True)
def _builtins_only(process_host: PluginHost) -> None:
    """The commands here see pamlib's built-in plugins only."""


@contextlib.contextmanager
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pamlib-fuzz-") as name:
        yield Path(name).resolve()


# -- any two paths to one file are refused --------------------------------------------------------

#: Ways to name ``data/f.csv`` again, from the folder holding ``data``.
ALIASES: dict[str, Callable[[Path], Path]] = {
    "same": lambda d: d / "data" / "f.csv",
    "relative": lambda d: Path(os.path.relpath(d / "data" / "f.csv")),
    "dot": lambda d: d / "data" / "." / "f.csv",
    "dot-dot": lambda d: d / "data" / "sub" / ".." / "f.csv",
    "double-slash": lambda d: Path(str(d / "data") + "//f.csv"),
    "symlink": lambda d: d / "link.csv",
    "symlink-chain": lambda d: d / "link2.csv",
    "symlinked-folder": lambda d: d / "alias" / "f.csv",
    "hard-link": lambda d: d / "hard.csv",
}


def _layout(d: Path, exists: bool) -> None:
    (d / "data" / "sub").mkdir(parents=True)
    if exists:
        (d / "data" / "f.csv").write_text("x\n", encoding="utf-8")
        os.link(d / "data" / "f.csv", d / "hard.csv")
    (d / "link.csv").symlink_to(d / "data" / "f.csv")
    (d / "link2.csv").symlink_to("link.csv")
    (d / "alias").symlink_to(d / "data", target_is_directory=True)


@FAST
@given(
    first=st.sampled_from(sorted(ALIASES)),
    second=st.sampled_from(sorted(ALIASES)),
    exists=st.booleans(),
    as_input=st.booleans(),
    input_first=st.booleans(),
)
def test_any_two_paths_to_one_file_are_refused(
    first: str, second: str, exists: bool, as_input: bool, input_first: bool
) -> None:
    if not exists and "hard-link" in (first, second):
        return  # no hard link to a file that is not there
    with folder() as d, contextlib.chdir(d):
        _layout(d, exists)
        a, b = ALIASES[first](d), ALIASES[second](d)
        with OutputGuard() as guard:
            if as_input and input_first:
                guard.input(a, "the input")
                register, path = guard.output, b
            elif as_input:
                guard.output(b, "an output")
                register, path = guard.input, a
            else:
                guard.output(a, "an output")
                register, path = guard.output, b
            with pytest.raises(OutputRefusedError) as info:
                register(path, "the second name")
        assert info.value.problems[0].code == "same-file"
        assert str(d) not in str(info.value), "base names only"
        assert sorted(p.name for p in (d / "data").iterdir()) == (
            ["f.csv", "sub"] if exists else ["sub"]
        ), "nothing written, no lock left"


@FAST
@given(names=st.lists(st.sampled_from(["a.csv", "b.csv", "c/a.csv", "A.csv"]), unique=True))
def test_distinct_files_are_accepted(names: list[str]) -> None:
    with folder() as d:
        (d / "c").mkdir()
        with OutputGuard() as guard:
            guard.input(d / "in.csv", "the input")
            for name in names:
                guard.output(d / name, name)
        assert sorted(p.name for p in d.iterdir()) == ["c"]


# -- a target is the old file or the whole new one, never anything in between -------------------


class _StopError(Exception):
    pass


@FAST
@given(
    chunks=st.lists(st.binary(max_size=64), max_size=6),
    stop_at=st.none() | st.integers(min_value=0, max_value=6),
    interrupt=st.booleans(),
    existed=st.booleans(),
)
def test_a_target_is_the_old_file_or_all_of_the_new_one(
    chunks: list[bytes], stop_at: int | None, interrupt: bool, existed: bool
) -> None:
    with folder() as d:
        final = d / "out.csv"
        if existed:
            final.write_bytes(b"old")
        stopped = False
        with OutputGuard() as guard:
            guard.output(final, "the output")
            target = guard.open(final)
            try:
                for i, chunk in enumerate([*chunks, b""]):
                    if i == stop_at:
                        raise KeyboardInterrupt if interrupt else _StopError
                    target.stream.write(chunk)
                target.commit()
            except (KeyboardInterrupt, _StopError):
                stopped = True
        if stopped:
            assert [p.name for p in d.iterdir()] == (["out.csv"] if existed else [])
            if existed:
                assert final.read_bytes() == b"old"
        else:
            assert [p.name for p in d.iterdir()] == ["out.csv"]
            assert final.read_bytes() == b"".join(chunks)


# -- the CSV writers give back what they were given -----------------------------------------------


@FAST
@given(rows=st.lists(st.lists(cells, min_size=1, max_size=4), max_size=5))
def test_csv_writer_round_trips(rows: list[list[str]]) -> None:
    text = io.StringIO()
    CsvWriter(text).writerows(rows)
    back = list(csv.reader(io.StringIO(text.getvalue(), newline="")))
    assert back == rows


@FAST
@given(records=st.lists(st.tuples(cells, cells, cells), max_size=6))
def test_rejects_file_reads_back_one_row_per_reject(records: list[tuple[str, str, str]]) -> None:
    with folder() as d:
        writer = RejectsWriter(d / "r.csv", ["a", "b"])
        writer.write(
            Reject("in.csv", f"line {i}", "code", m, {"a": a, "b": b}, line=i, record=a + b)
            for i, (a, b, m) in enumerate(records, 2)
        )
        writer.close()
        with (d / "r.csv").open(encoding="utf-8", newline="") as f:
            back = list(csv.DictReader(f))
    assert len(back) == len(records)
    for row, (a, b, m) in zip(back, records, strict=True):
        assert (row["a"], row["b"], row["message"]) == (protect(a), protect(b), protect(m))
        assert row["record"] == protect(a + b)


# -- a scored run accounts for every record --------------------------------------------------------

answers = st.sampled_from(["1", "2", "3", "4", "", "NA", "5", "x", " 2"])
records = st.lists(
    st.tuples(
        cells,  # site
        st.sampled_from(["2024-04-05", "05/04/2024", "2024-02-30", "", "x"]),
        st.lists(answers, min_size=13, max_size=13),
    ),
    max_size=8,
)


def _score_and_check(source: Path, d: Path, n_records: int, ids: list[str]) -> None:
    out, rejects = d / "out" / "scored.csv", d / "out" / "rejects.csv"
    out.parent.mkdir(exist_ok=True)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(["score", str(source), "--provider", "demo", "-o", str(out),
                       "--rejects", str(rejects), "--no-progress"])  # fmt: skip
    assert status in (0, 1)
    written = status == 0 or "none of the" in err.getvalue()  # nothing scored: exit 1, files
    assert sorted(p.name for p in out.parent.iterdir()) == (
        ["rejects.csv", "scored.csv"] if written else []
    ), "both files, complete, or neither; never a temporary file"
    if not written:
        return
    with out.open(encoding="utf-8", newline="") as f:
        scored = list(csv.DictReader(f))
    with rejects.open(encoding="utf-8", newline="") as f:
        rejected = list(csv.DictReader(f))
    assert len(scored) + len(rejected) == n_records
    seen = Counter(r["assessment_id"] for r in scored) + Counter(
        r.get("assessment_id", "") for r in rejected
    )
    assert seen == Counter(protect(i) for i in ids)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=records)
def test_every_record_is_scored_or_rejected_in_files_that_read_back(
    rows: list[tuple[str, str, list[str]]],
) -> None:
    with folder() as d:
        source = d / "in.csv"
        ids = [f"A{i}" for i in range(len(rows))]
        with source.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL)
            writer.writerow(HEADER)
            for i, (site, date, codes) in enumerate(rows):
                writer.writerow([f"P{i}", "", ids[i], date, "PAM-13", site, *codes])
        _score_and_check(source, d, len(rows), ids)


# -- the corpus --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.csv")), ids=lambda p: p.name)
def test_corpus_replays_cleanly(path: Path, tmp_path: Path) -> None:
    """Each corpus file once broke an output; it now scores into files that read back whole."""
    with path.open(encoding="utf-8", newline="") as f:
        body = list(csv.DictReader(f))
    _score_and_check(path, tmp_path, len(body), [r["assessment_id"] for r in body])
