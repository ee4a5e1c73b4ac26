"""Every command that writes: no input overwritten, no partial output under a final name, no
temporary file left behind, and a clean message (never a traceback) when a write fails."""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.formats.guard import AtomicTarget, OutputGuard, OutputRefusedError
from pamlib.formats.layout import CANONICAL_COLUMNS
from pamlib.formats.output import CsvWriter, RejectsWriter, protect
from pamlib.plugins import PluginHost
from pamlib.tailoring import EXAMPLE_SITE_RULES, STANDARD_COLUMNS

HEADER = [*CANONICAL_COLUMNS, *(f"q{i:02d}" for i in range(1, 14))]


@pytest.fixture(autouse=True)
def _builtins_only(process_host: PluginHost) -> None:
    """Every command here sees pamlib's built-in plugins only."""


def cohort(path: Path, n: int, *, bad: Sequence[list[str]] = ()) -> Path:
    """A canonical export of ``n`` scoreable rows (synthetic), then the ``bad`` rows."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        for i in range(n):
            answers = [str(1 + (i + k) % 4) for k in range(13)]
            writer.writerow([f"P{i:06d}", "", f"A{i:07d}", "2024-04-05", "PAM-13", "s", *answers])
        csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(bad)
    return path


def leftovers(folder: Path) -> list[str]:
    """Temporary and lock files pamlib (or its former versions) could leave behind."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name.endswith((".partial", ".part", ".lock")) or p.name.startswith(".")
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def refused(capsys: pytest.CaptureFixture[str], code: str = "same-file") -> str:
    err = capsys.readouterr().err
    assert err.startswith("pamlib: error: "), err
    assert "@ " in err
    assert "Traceback" not in err
    if code == "same-file":
        assert "are the same file" in err
    return err


def pamlib_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pamlib", *args]


def signal_mid_run(
    folder: Path, args: Sequence[str], signum: int, *, after: float = 0.0
) -> tuple[int, bytes]:
    """Run pamlib in ``folder``, send it ``signum`` once it has a temporary output file (and
    ``after`` seconds more); its exit status and standard error."""
    proc = subprocess.Popen(
        pamlib_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder
    )
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".partial") for p in folder.iterdir()):
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(after)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


# -- case 2: outputs that destroy inputs --------------------------------------------------------


def _score(*extra: str) -> Callable[[Path], list[str]]:
    return lambda d: ["score", str(d / "in.csv"), "--provider", "demo", *extra]


CLASHES: dict[str, Callable[[Path], list[str]]] = {
    "output-is-input": lambda d: [*_score()(d), "-o", str(d / "in.csv")],
    "rejects-is-input": lambda d: [
        *_score()(d), "-o", str(d / "o.csv"), "--rejects", str(d / "in.csv")
    ],
    "recommend-output-is-input": lambda d: [*_score("--recommend")(d), "-o", str(d / "in.csv")],
    "output-is-a-symlink-to-input": lambda d: [*_score()(d), "-o", str(d / "link.csv")],
    "output-is-a-hard-link-to-input": lambda d: [*_score()(d), "-o", str(d / "hard.csv")],
    "output-through-dot-dot": lambda d: [*_score()(d), "-o", str(d / "sub" / ".." / "in.csv")],
    "rejects-is-mapping": lambda d: [
        *_score()(d), "-o", str(d / "o.csv"), "--mapping", str(d / "map.toml"),
        "--rejects", str(d / "map.toml"),
    ],
    "report-html-is-input": lambda d: ["report", str(d / "in.csv"), "-o", str(d / "in.csv")],
    "report-json-is-input": lambda d: [
        "report", str(d / "in.csv"), "-o", str(d / "r.html"), "--json", str(d / "in.csv")
    ],
    "report-patients-is-input": lambda d: [
        "report", str(d / "in.csv"), "-o", str(d / "r.html"), "--patients", str(d / "in.csv")
    ],
}  # fmt: skip


@pytest.mark.parametrize("argv", CLASHES.values(), ids=CLASHES.keys())
def test_case_02_an_output_that_is_an_input_is_refused(
    tmp_path: Path, argv: Callable[[Path], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    cohort(tmp_path / "in.csv", 5)
    (tmp_path / "link.csv").symlink_to("in.csv")
    os.link(tmp_path / "in.csv", tmp_path / "hard.csv")
    (tmp_path / "sub").mkdir()
    (tmp_path / "map.toml").write_text("", encoding="utf-8")
    before = snapshot(tmp_path)
    assert main(argv(tmp_path)) == 1
    refused(capsys)
    assert snapshot(tmp_path) == before, "nothing was written or changed"
    assert leftovers(tmp_path) == []


def test_case_02_default_rejects_path_that_is_the_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``score export.rejects.csv -o export.csv``: the default rejects file is the input."""
    source = cohort(tmp_path / "export.rejects.csv", 5)
    before = source.read_bytes()
    assert (
        main(["score", str(source), "--provider", "demo", "-o", str(tmp_path / "export.csv")]) == 1
    )
    err = refused(capsys)
    assert "rejects file" in err
    assert "--rejects" in err
    assert source.read_bytes() == before
    assert not (tmp_path / "export.csv").exists()


def test_case_02_report_does_not_score_over_its_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``report r.scored.csv --provider demo -o r.html`` would score into r.scored.csv."""
    source = cohort(tmp_path / "r.scored.csv", 5)
    before = source.read_bytes()
    argv = ["report", str(source), "--provider", "demo", "-o", str(tmp_path / "r.html")]
    assert main(argv) == 1
    refused(capsys)
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.scored.csv"]


def test_case_02_distinct_outputs_are_accepted(tmp_path: Path) -> None:
    source = cohort(tmp_path / "in.csv", 5)
    argv = ["score", str(source), "--provider", "demo", "-o", str(tmp_path / "in.scored.csv")]
    assert main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in.csv",
        "in.scored.csv",
        "in.scored.rejects.csv",
    ]


# -- case 3: partial output published under the final name -------------------------------------


def test_case_03_interrupted_recommend_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An interrupt half-way through writing the tailored file leaves the previous output as
    it was, and no temporary file (the old code renamed the part file over it in ``finally``)."""
    from pamlib.formats import output

    source = cohort(tmp_path / "in.csv", 300)
    out = tmp_path / "out.csv"
    out.write_text("previous output\n", encoding="utf-8")
    calls = 0

    def interrupting(table: object, decimals: int) -> object:
        nonlocal calls
        calls += 1
        raise KeyboardInterrupt

    monkeypatch.setattr(output, "csv_text_table", interrupting)
    argv = ["score", str(source), "--provider", "demo", "--recommend", "-o", str(out),
            "--rejects", str(tmp_path / "rejects.csv")]  # fmt: skip
    assert main(argv) == 130
    assert calls == 1, "the interrupt came while the tailored file was being written"
    assert out.read_text(encoding="utf-8") == "previous output\n"
    assert not (tmp_path / "rejects.csv").exists()
    assert leftovers(tmp_path) == []
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("recommend", [False, True], ids=["score", "recommend"])
def test_case_03_a_signal_mid_run_leaves_the_previous_output_and_no_temporary_file(
    tmp_path: Path, signum: signal.Signals, recommend: bool
) -> None:
    source = cohort(tmp_path / "in.csv", 40_000)
    out = tmp_path / "out.csv"
    out.write_text("previous output\n", encoding="utf-8")
    args = ["score", str(source), "--provider", "demo", "-o", str(out), "--chunk-rows", "500",
            "--no-progress", *(["--recommend"] if recommend else [])]  # fmt: skip
    status, err = signal_mid_run(tmp_path, args, signum)
    assert status == 130, err
    assert b"interrupted" in err
    assert b"Traceback" not in err
    assert out.read_text(encoding="utf-8") == "previous output\n"
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


@pytest.mark.parametrize("at", [0, 1, 2])
def test_case_03_an_interrupt_while_outputs_are_published_leaves_all_of_them_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: int
) -> None:
    """Several outputs of one run (rejects and scored file, a report's HTML, JSON and CSV) are
    renamed in turn: an interrupt that arrives between two renames is raised after the last,
    so none is left old beside a new one."""
    from pamlib.formats import guard

    finals = [tmp_path / f"out{i}.txt" for i in range(3)]
    for path in finals:
        path.write_text("old\n", encoding="utf-8")
    renamed = 0
    real_commit = guard.AtomicTarget.commit

    def commit(self: guard.AtomicTarget) -> None:
        nonlocal renamed
        real_commit(self)
        renamed += 1
        if renamed == at + 1:  # a Ctrl-C right after this rename
            signal.raise_signal(signal.SIGINT)
            guard._let_signals_in()

    monkeypatch.setattr(guard.AtomicTarget, "commit", commit)

    def run() -> None:
        with guard.clean_interrupts(), OutputGuard() as files:
            targets = []
            for path in finals:
                files.output(path)
                target = files.open(path)
                target.stream.write(b"new\n")
                targets.append(target)
            guard.commit_together(targets)

    with pytest.raises(KeyboardInterrupt):
        run()
    assert renamed == 3
    assert [p.read_text(encoding="utf-8") for p in finals] == ["new\n"] * 3
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "bad",
    [
        ["--threshold", "abc"],
        ["--threshold", "1e308"],
        ["--group-by", "nosuch"],
        ["--group-by", "patient_id"],
    ],
    ids=["threshold", "huge-threshold", "no-column", "identifier"],
)
def test_case_03_a_report_that_fails_publishes_no_scored_file_beside_it(
    tmp_path: Path, bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``report --provider`` scores first and writes the scored and rejects files beside the
    report: a setting the report then refuses leaves none of them, and files of an earlier run
    as they were."""
    source = cohort(tmp_path / "in.csv", 60)
    beside = tmp_path / "r.scored.csv"
    beside.write_text("earlier run\n", encoding="utf-8")
    argv = ["report", str(source), "--provider", "demo", "-o", str(tmp_path / "r.html"), *bad]
    assert main(argv) in (1, 2)
    assert "Traceback" not in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "r.scored.csv"]
    assert beside.read_text(encoding="utf-8") == "earlier run\n"


def _limit_file_size(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


FULL_DISK: dict[str, list[str]] = {
    "score-csv": ["score", "in.csv", "--provider", "demo", "-o", "out.csv"],
    "score-parquet": ["score", "in.csv", "--provider", "demo", "-o", "out.parquet"],
    "score-json": ["score", "in.csv", "--provider", "demo", "-o", "out.jsonl"],
    "score-fhir": ["score", "in.csv", "--provider", "demo", "-o", "out.fhir.json"],
    "score-recommend": ["score", "in.csv", "--provider", "demo", "--recommend", "-o", "out.csv"],
    "report": ["report", "in.csv", "--provider", "demo", "-o", "out.html"],
    "fhir-questionnaire": ["fhir", "questionnaire", "--instrument", "PAM-13", "-o", "out.json"],
}


@pytest.mark.parametrize("argv", FULL_DISK.values(), ids=FULL_DISK.keys())
def test_case_03_a_full_disk_leaves_no_partial_file(tmp_path: Path, argv: list[str]) -> None:
    cohort(tmp_path / "in.csv", 3000)
    name = next(a for a in argv if a.startswith("out."))
    (tmp_path / name).write_text("previous output\n", encoding="utf-8")
    result = subprocess.run(
        pamlib_cmd(*argv),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size(1500),
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines()[-1].startswith("pamlib: error: ")
    assert "Traceback" not in result.stderr
    assert str(tmp_path) not in result.stderr, "base names only"
    assert (tmp_path / name).read_text(encoding="utf-8") == "previous output\n"
    assert leftovers(tmp_path) == []


# -- case 4: special files --------------------------------------------------------------------


@pytest.mark.parametrize("command", ["score", "report"])
def test_case_04_an_output_in_a_missing_folder_says_so_without_naming_it(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The folder is not named (a path may hold a patient's name); that it is missing is said."""
    source = cohort(tmp_path / "in.csv", 5)
    out = tmp_path / "Jane Smith" / "out.html"
    argv = [command, str(source), "--provider", "demo", "-o", str(out)]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "out.html (its folder does not exist)" in err
    assert "Jane Smith" not in err
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("option", ["-o", "--rejects"])
def test_case_04_dev_full_is_written_through_and_fails_cleanly(
    tmp_path: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = cohort(tmp_path / "in.csv", 5, bad=[["P9", "", "A9", "2024-02-30", "PAM-13"]])
    argv = ["score", str(source), "--provider", "demo", "-o", str(tmp_path / "o.csv"),
            option, "/dev/full"]  # fmt: skip
    assert main(argv) == 3
    assert "no space left on the device" in capsys.readouterr().err
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode), "the device is still a device"
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null")
def test_case_04_dev_null_is_written_through(tmp_path: Path) -> None:
    source = cohort(tmp_path / "in.csv", 5)
    argv = ["score", str(source), "--provider", "demo", "-o", "/dev/null", "--rejects", "/dev/null"]
    assert main(argv) == 0
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_case_04_a_named_pipe_is_written_through(tmp_path: Path) -> None:
    source = cohort(tmp_path / "in.csv", 5)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    argv = ["score", str(source), "--provider", "demo", "-o", str(fifo),
            "--rejects", str(tmp_path / "rejects.csv")]  # fmt: skip
    try:
        assert main(argv) == 0
    finally:
        reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.stat().st_mode), "the pipe is still a pipe"
    rows = list(csv.DictReader(io.StringIO(received[0].decode("utf-8"))))
    assert len(rows) == 5
    assert leftovers(tmp_path) == []


def test_case_04_a_symlink_output_replaces_its_target_and_survives(tmp_path: Path) -> None:
    source = cohort(tmp_path / "in.csv", 5)
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "scored.csv"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o640)
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    argv = ["score", str(source), "--provider", "demo", "-o", str(link),
            "--rejects", str(tmp_path / "rejects.csv")]  # fmt: skip
    assert main(argv) == 0
    assert link.is_symlink()
    assert link.resolve() == target
    assert len(list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))) == 5
    assert stat.S_IMODE(target.stat().st_mode) == 0o640, "the replaced file keeps its mode"
    assert leftovers(tmp_path) == []
    assert leftovers(tmp_path / "real") == []


def test_case_04_other_special_files_are_refused(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(OutputRefusedError) as info:
            AtomicTarget(path)
    assert info.value.problems[0].code == "not-a-file"


def test_case_04_a_read_only_output_is_not_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root may write any file")
    source = cohort(tmp_path / "in.csv", 5)
    out = tmp_path / "o.csv"
    out.write_text("kept\n", encoding="utf-8")
    out.chmod(0o444)
    assert main(["score", str(source), "--provider", "demo", "-o", str(out)]) == 3
    assert out.read_text(encoding="utf-8") == "kept\n"


# -- case 5: the rejects file corrupts itself -----------------------------------------------------


def test_case_05_a_bare_cr_in_a_rejected_row_reads_back_as_one_record(tmp_path: Path) -> None:
    bad = [
        ["P9", "", "A9", "2024-04-05", "PAM-13", "si\rte", *["5"] * 13],
        ["P8", "", "A8", "2024-02-30", "PAM-13", "=cmd\r", *["1"] * 13],
    ]
    source = cohort(tmp_path / "in.csv", 3, bad=bad)
    rejects = tmp_path / "rejects.csv"
    argv = ["score", str(source), "--provider", "demo", "-o", str(tmp_path / "o.csv"),
            "--rejects", str(rejects)]  # fmt: skip
    assert main(argv) == 0
    with rejects.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["assessment_id"], r["site"]) for r in rows] == [("A9", "si\rte"), ("A8", "'=cmd\r")]


def test_case_05_the_rejects_writer_round_trips_cells_with_line_breaks(tmp_path: Path) -> None:
    from pamlib.formats.base import Reject

    cells = ["a\rb", "\r", "x\r\ny", 'q"uo\rte', "=1+1\r", "plain"]
    writer = RejectsWriter(tmp_path / "r.csv", ["c"])
    writer.write(
        [
            Reject("in.csv", f"line {2 + i}", "code", "m\r", {"c": c}, line=2 + i, record=c)
            for i, c in enumerate(cells)
        ]
    )
    writer.close()
    with (tmp_path / "r.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["c"] for r in rows] == [protect(c) for c in cells]
    assert [r["record"] for r in rows] == [protect(c) for c in cells]
    assert [r["message"] for r in rows] == ["m\r"] * len(cells)


def test_case_05_a_bare_cr_in_a_scored_column_reads_back(tmp_path: Path) -> None:
    source = cohort(tmp_path / "in.csv", 0, bad=[["P1", "", "A1", "2024-04-05", "PAM-13",
                                                   "si\rte", *["2"] * 13]])  # fmt: skip
    out = tmp_path / "o.csv"
    assert main(["score", str(source), "--provider", "demo", "-o", str(out)]) == 0
    with out.open(encoding="utf-8", newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["site"] == "si\rte"


def test_case_05_a_bare_cr_in_a_kept_column_name_leaves_the_header_one_record(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.csv"
    header = ",".join(["patient_id", "assessment_id", "assessed_on", "instrument",
                       *[f"q{i:02d}" for i in range(1, 14)], '"no\rte"'])  # fmt: skip
    source.write_text(header + "\nP1,A1,2024-04-05,PAM-13," + "2," * 13 + "x\n", encoding="utf-8")
    out = tmp_path / "o.csv"
    assert main(["score", str(source), "--provider", "demo", "-o", str(out)]) == 0
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 2
    assert rows[0][-1] == "no\rte"
    assert rows[1][-1] == "x"


def test_case_05_csv_writer_quotes_rows_with_a_bare_cr() -> None:
    text = io.StringIO()
    CsvWriter(text).writerows([["a\rb", 1], ["c", 2]])
    assert text.getvalue() == '"a\rb","1"\nc,2\n'
    assert list(csv.reader(io.StringIO(text.getvalue(), newline=""))) == [["a\rb", "1"], ["c", "2"]]


# -- case 7: formula injection in rules overdue ---------------------------------------------------


def test_case_07_rules_overdue_protects_identifiers_after_stripping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "scored.csv"
    columns = [*STANDARD_COLUMNS, "reassess_by"]
    rows = [
        {"assessment_id": " =HYPERLINK(\"http://x\")", "patient_id": " =HYPERLINK(\"http://x\")",
         "assessed_on": "2024-01-15", "instrument": "PAM-13", "status": "scored", "score": "44.0",
         "level": "1", "demo": "false", "reassess_by": "2024-06-01"},
        {"assessment_id": "@A2", "patient_id": "+P2\r", "assessed_on": "2024-01-15",
         "instrument": "PAM-13", "status": "scored", "score": "44.0", "level": "1",
         "demo": "false", "reassess_by": "2024-06-01"},
    ]  # fmt: skip
    with table.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    assert main(["rules", "overdue", "--input", str(table), "--on", "2025-02-01"]) == 0
    out = capsys.readouterr().out
    got = list(csv.DictReader(io.StringIO(out, newline="")))
    assert len(got) == 2
    for row in got:
        for name in ("patient_id", "assessment_id"):
            assert row[name][0] not in "=+-@\t\r", row[name]
    assert {r["patient_id"] for r in got} >= {'\'=HYPERLINK("http://x")'}
    assert all(r["days_overdue"].lstrip("-").isdigit() for r in got), "numbers stay numbers"


# -- case 9: tracebacks (output parts) ------------------------------------------------------------


def test_case_09_same_output_and_rejects_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = cohort(tmp_path / "in.csv", 5)
    x = str(tmp_path / "x.csv")
    assert main(["score", str(source), "--provider", "demo", "-o", x, "--rejects", x]) == 1
    refused(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize("option", ["-o", "--rejects"])
def test_case_09_a_directory_as_output_is_a_clean_error(
    tmp_path: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = cohort(tmp_path / "in.csv", 5)
    (tmp_path / "d").mkdir()
    argv = ["score", str(source), "--provider", "demo", "-o", str(tmp_path / "o.csv"),
            option, str(tmp_path / "d")]  # fmt: skip
    assert main(argv) == 1
    err = refused(capsys, code="directory")
    assert "is a directory @ d" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "in.csv"]


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "in.csv", "-o", "d"],
        ["fhir", "questionnaire", "--instrument", "PAM-13", "-o", "d"],
        ["score", "in.csv", "--provider", "demo", "--recommend", "-o", "d"],
    ],
    ids=["report", "fhir-questionnaire", "recommend"],
)
def test_case_09_a_directory_as_output_of_any_command_is_a_clean_error(
    tmp_path: Path,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    cohort(tmp_path / "in.csv", 5)
    (tmp_path / "d").mkdir()
    status = main(argv)
    err = capsys.readouterr().err
    assert status in (1, 2), err
    assert "Traceback" not in err
    assert "bug" not in err
    assert leftovers(tmp_path) == []


def test_case_09_invalid_utf8_in_the_header_leaves_no_temporary_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"patient_id,\xff\xfe,assessment_id\nP1,x,A1\n")
    status = main(["score", str(source), "--provider", "demo", "-o", str(tmp_path / "o.csv")])
    assert status != 0
    assert "Traceback" not in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_case_09_an_error_from_the_reader_discards_both_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong while reading, no temporary file and no final file remain."""
    from pamlib.formats.delimited import CsvFormat

    def broken(self: object, source: object, options: object) -> object:
        raise OSError(5, "Input/output error", str(source))

    monkeypatch.setattr(CsvFormat, "read", broken)
    source = cohort(tmp_path / "in.csv", 5)
    assert main(["score", str(source), "--provider", "demo", "-o", str(tmp_path / "o.csv")]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


# -- case 17: two runs writing one output -------------------------------------------------------


def test_case_17_a_second_run_on_the_same_output_fails_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = cohort(tmp_path / "in.csv", 5)
    out = tmp_path / "out.csv"
    out.write_text("the first run's\n", encoding="utf-8")
    with OutputGuard() as first:  # another run, holding out.csv
        first.output(out, "the scored output")
        assert main(["score", str(source), "--provider", "demo", "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert "another pamlib run" in err
        assert "@ out.csv" in err
        assert str(tmp_path) not in err
    assert out.read_text(encoding="utf-8") == "the first run's\n"
    assert leftovers(tmp_path) == [], "the lock file goes with the run"
    assert main(["score", str(source), "--provider", "demo", "-o", str(out)]) == 0


def test_case_17_the_lock_follows_symlinks(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    (tmp_path / "alias.csv").symlink_to(out)
    with OutputGuard() as first:
        first.output(out, "an output")
        with OutputGuard() as second, pytest.raises(OutputRefusedError) as info:
            second.output(tmp_path / "alias.csv", "an output")
    assert info.value.problems[0].code == "in-use"


def test_case_17_another_process_is_refused_while_a_run_holds_the_output(tmp_path: Path) -> None:
    """The lock is between processes: while this process holds ``out.csv`` for a run, a
    ``pamlib`` process writing it fails at once and leaves the file and its rejects alone."""
    cohort(tmp_path / "in.csv", 5)
    out = tmp_path / "out.csv"
    out.write_text("the first run's\n", encoding="utf-8")
    args = ["score", "in.csv", "--provider", "demo", "-o", "out.csv"]
    with OutputGuard() as first:
        first.output(out, "the scored output")
        second = subprocess.run(
            pamlib_cmd(*args), cwd=tmp_path, capture_output=True, text=True, check=False
        )
    assert second.returncode == 1
    assert "another pamlib run" in second.stderr
    assert "Traceback" not in second.stderr
    assert out.read_text(encoding="utf-8") == "the first run's\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


# -- the guard itself -----------------------------------------------------------------------------


def test_guard_discards_what_was_not_committed(tmp_path: Path) -> None:
    with OutputGuard() as guard:
        guard.output(tmp_path / "a.csv", "a")
        target = guard.open(tmp_path / "a.csv")
        target.stream.write(b"half")
    assert list(tmp_path.iterdir()) == []


def test_guard_commit_publishes_complete_file(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"old")
    with OutputGuard() as guard:
        guard.output(tmp_path / "a.csv", "a")
        target = guard.open(tmp_path / "a.csv")
        target.stream.write(b"new")
        assert (tmp_path / "a.csv").read_bytes() == b"old"
        target.commit()
    assert (tmp_path / "a.csv").read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]


def test_guard_inputs_may_repeat_and_streams_are_not_files(tmp_path: Path) -> None:
    with OutputGuard() as guard:
        guard.input(tmp_path / "in.csv", "the input")
        guard.input(tmp_path / "in.csv", "the input")
        guard.input("-", "standard input")
        guard.output(io.BytesIO(), "standard output")
        guard.output(None, "nothing")


def test_questionnaire_is_written_atomically(tmp_path: Path) -> None:
    out = tmp_path / "q.json"
    assert main(["fhir", "questionnaire", "--instrument", "PAM-13", "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["resourceType"] == "Questionnaire"
    assert [p.name for p in tmp_path.iterdir()] == ["q.json"]


def test_demo_writes_only_its_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--patients", "30", "--output-dir", str(out)]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == [
        ".pamlib-demo",  # the marker that makes the folder the demo's to write again
        "rejects.csv",
        "report.html",
        "scored.csv",
        "summary.json",
        "synthetic-cohort.csv",
    ]


def test_report_with_provider_writes_its_files(tmp_path: Path) -> None:
    source = cohort(tmp_path / "raw.csv", 10)
    argv = ["report", str(source), "--provider", "demo", "-o", str(tmp_path / "r.html"),
            "--json", str(tmp_path / "r.json"), "--patients", str(tmp_path / "p.csv")]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "p.csv", "r.html", "r.json", "r.rejects.csv", "r.scored.csv", "raw.csv",
    ]  # fmt: skip


def test_recommend_still_tailors(tmp_path: Path) -> None:
    source = cohort(tmp_path / "in.csv", 10)
    out = tmp_path / "out.csv"
    argv = ["score", str(source), "--provider", "demo", "-o", str(out),
            "--rules", str(EXAMPLE_SITE_RULES)]  # fmt: skip
    assert main(argv) == 0
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10
    assert all(r["reassess_by"] for r in rows)
    assert leftovers(tmp_path) == []


def test_recommend_to_standard_output_names_rejects_after_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    cohort(tmp_path / "in.csv", 3)
    assert main(["score", "in.csv", "--provider", "demo", "--recommend", "-o", "-"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "in.rejects.csv"]


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="the system has no posix_fadvise")
@given(chunks=st.lists(st.binary(max_size=300), max_size=40))
@settings(max_examples=60, deadline=None)
def test_writeback_is_asked_for_each_step_written_once_in_order(chunks: list[bytes]) -> None:
    """Each range is named once, in order, just after it is written; the file is whole."""
    import tempfile

    from pamlib.formats import guard

    advised: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_DONTNEED
        advised.append((offset, length))
        real(fd, offset, length, advice)

    step = guard._WRITEBACK_STEP
    with tempfile.TemporaryDirectory() as folder:
        guard._WRITEBACK_STEP = 100
        os.posix_fadvise = record
        try:
            target = AtomicTarget(Path(folder) / "out.bin")
            for chunk in chunks:
                target.stream.write(chunk)
                target.stream.flush()
            target.commit()
        finally:
            guard._WRITEBACK_STEP = step
            os.posix_fadvise = real
        assert (Path(folder) / "out.bin").read_bytes() == b"".join(chunks)
    start = 0
    for offset, length in advised:
        assert offset == start
        assert length >= 100
        start += length
    assert 0 <= sum(map(len, chunks)) - start < 100


_SECOND_SIGNAL = """
import os, signal, sys
from pamlib.formats.guard import clean_interrupts
try:
    with clean_interrupts(final=sys.argv[1] == "final"):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass
except KeyboardInterrupt:
    print("stopped", flush=True)
os.kill(os.getpid(), signal.SIGINT)  # as pyarrow sends again a signal it caught, late
for _ in range(1000):
    pass
print("ended as one interrupted run", flush=True)
"""


@pytest.mark.parametrize("final", [True, False], ids=["final", "embedded"])
def test_case_03_a_late_second_interrupt_does_not_end_the_exit_by_a_signal(final: bool) -> None:
    """Once an interrupt stopped the command line's run (``final``, its own process), a second
    one (Ctrl-C pressed twice, pyarrow sending again a signal it caught) after the files are
    cleaned up must not make the process die by that signal (status -2, not 130): it is
    dropped. In a program that embeds pamlib the handlers it had are restored, as before."""
    done = subprocess.run(
        [sys.executable, "-c", _SECOND_SIGNAL, "final" if final else "embedded"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.startswith(b"stopped\n")
    if final:
        assert done.returncode == 0, done.stderr
        assert b"ended as one interrupted run" in done.stdout
    else:
        assert b"KeyboardInterrupt" in done.stderr
