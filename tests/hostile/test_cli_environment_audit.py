"""What an audit of the command line in broken environments found, through the command as a
user runs it.

An output named by an open descriptor (``-o /dev/stdout >> log``, ``/dev/fd/N``) replaced the
file behind it — appended lines lost, a file the shell opened for reading overwritten — and put
its rejects beside ``/dev/fd``; a write that filled the disk did not say which file; a working
folder removed while in use, a closed standard input or an empty file name gave "No such file
or directory" or an internal error; ``--rules <(…)`` was refused as "no rules file 63"; and with
descriptors 0-2 closed at start, an output took descriptor 2, so text written to standard error
by number landed in the scored file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

ITEMS = [f"q{k:02d}" for k in range(1, 14)]
HEADER = ",".join(["patient_id", "assessment_id", "assessed_on", "instrument", *ITEMS])
RULES = """format = 1
[[pathway]]
id = "audit.every"
name = "Every"
description = "Every scored assessment."
concept = { system = "https://example.org/audit", code = "E", display = "Every" }
[[rule]]
id = "audit.all"
priority = 50
reason = "Every level."
when = { level = [1, 2, 3, 4] }
then = [{ recommend = "audit.every" }]
"""

posix_only = pytest.mark.skipif(
    sys.platform != "linux", reason="descriptors named by path (/dev/fd, /proc): Linux"
)


def _export(path: Path, rows: int = 5, *, reject: bool = True) -> Path:
    lines = [HEADER]
    for i in range(rows):
        answers = [str((i + k) % 4 + 1) for k in range(13)]
        lines.append(",".join([f"P{i}", f"A{i}", "2024-03-01", "PAM-13", *answers]))
    if reject:
        lines.append(",".join(["PX", "AX", "not a date", "PAM-13", *["2"] * 13]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _pamlib(*args: str, cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "pamlib", *args], cwd=cwd, check=False, **kwargs
    )


def _clean(err: bytes, status: int, done: subprocess.CompletedProcess[bytes]) -> str:
    text = err.decode("utf-8", "replace")
    assert done.returncode == status, text
    assert "Traceback" not in text
    assert "internal error" not in text
    return text


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- an output named by an open descriptor -----------------------------------------------------


@posix_only
@pytest.mark.parametrize("name", ["/dev/fd/1", "/proc/self/fd/1"])
def test_an_output_named_by_standard_output_appends_as_the_shell_asked(
    tmp_path: Path, name: str
) -> None:
    """``-o /dev/stdout >> log`` is ``-o - >> log``: appended, rejects beside the input's name."""
    _export(tmp_path / "in.csv")
    log = tmp_path / "log.csv"
    log.write_text("kept line\n", encoding="utf-8")
    with log.open("ab") as out:
        done = _pamlib("score", "in.csv", "--provider", "demo", "-o", name, cwd=tmp_path,
                       stdout=out, stderr=subprocess.PIPE)  # fmt: skip
    _clean(done.stderr, 0, done)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "kept line", "the appended-to file keeps what it held"
    assert lines[1].startswith("assessment_id,")
    assert len(lines) == 2 + 5
    assert (tmp_path / "in.rejects.csv").exists(), "rejects named after the input, as for -o -"
    assert not Path(name + ".rejects.csv").exists()
    assert _leftovers(tmp_path) == []


@posix_only
def test_rejects_named_by_a_descriptor_append_to_its_file(tmp_path: Path) -> None:
    _export(tmp_path / "in.csv")
    log = tmp_path / "log.csv"
    log.write_text("kept line\n", encoding="utf-8")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        done = _pamlib("score", "in.csv", "--provider", "demo", "-o", "o.csv",
                       "--rejects", f"/dev/fd/{fd}", cwd=tmp_path, pass_fds=(fd,),
                       capture_output=True)  # fmt: skip
    finally:
        os.close(fd)
    _clean(done.stderr, 0, done)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "kept line"
    assert lines[1].startswith("source,line,code,message")
    assert "PX" in lines[2]


@posix_only
def test_a_descriptor_open_for_reading_is_not_written_over(tmp_path: Path) -> None:
    """``-o /dev/fd/5 5<notes.csv``: Linux reopens the path for writing; the file the shell
    opened for reading only was replaced."""
    _export(tmp_path / "in.csv")
    notes = tmp_path / "notes.csv"
    notes.write_text("not to be touched\n", encoding="utf-8")
    fd = os.open(notes, os.O_RDONLY)
    try:
        done = _pamlib("score", "in.csv", "--provider", "demo", "-o", f"/dev/fd/{fd}",
                       "--rejects", "r.csv", cwd=tmp_path, pass_fds=(fd,),
                       capture_output=True)  # fmt: skip
    finally:
        os.close(fd)
    err = _clean(done.stderr, 3, done)
    assert err.strip().endswith(f"open for reading only: {fd}"), err
    assert notes.read_text(encoding="utf-8") == "not to be touched\n"
    assert _leftovers(tmp_path) == []


@posix_only
def test_a_descriptor_to_the_input_is_still_refused(tmp_path: Path) -> None:
    export = _export(tmp_path / "in.csv")
    before = export.read_bytes()
    with export.open("ab") as out:
        done = _pamlib("score", "in.csv", "--provider", "demo", "-o", "/dev/stdout",
                       cwd=tmp_path, stdout=out, stderr=subprocess.PIPE)  # fmt: skip
    assert "are the same file" in _clean(done.stderr, 1, done)
    assert export.read_bytes() == before


# -- a full disk says which file ---------------------------------------------------------------


def _limit_file_size(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


@pytest.mark.skipif(sys.platform == "win32", reason="file size limits are POSIX")
@pytest.mark.parametrize(
    ("extra", "named"),
    [(["-o", "out.csv", "--rejects", "/dev/null"], "out.csv"),
     (["-o", "out.parquet", "--rejects", "/dev/null"], "out.parquet"),
     (["-o", "/dev/null", "--rejects", "bad.csv"], "bad.csv")],
)  # fmt: skip
def test_a_write_that_fails_names_the_file(tmp_path: Path, extra: list[str], named: str) -> None:
    """A run writes several files, maybe on several disks: the failure says which one."""
    date = "not a date" if named == "bad.csv" else "2024-03-01"
    lines = [HEADER] + [
        ",".join([f"P{i}", f"A{i}", date, "PAM-13", *(str((i + k) % 4 + 1) for k in range(13))])
        for i in range(3000)
    ]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = _pamlib("score", "in.csv", "--provider", "demo", *extra, cwd=tmp_path,
                   capture_output=True, preexec_fn=_limit_file_size(4096))  # fmt: skip
    err = _clean(done.stderr, 3, done).splitlines()
    assert err[-1].startswith("pamlib: error: "), err
    assert err[-1].endswith(f": {named}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def _small_disk(folder: Path) -> list[str] | None:
    """A command prefix that runs its command in ``folder`` with a 16 KiB tmpfs mounted
    there (an unprivileged user and mount namespace), or ``None`` where that cannot be made."""
    unshare = shutil.which("unshare")
    if unshare is None or sys.platform != "linux":
        return None
    script = (
        'mount -t tmpfs -o size=16k tmpfs "$1" && cd "$1" && shift && "$@"; s=$?; ls -A; exit $s'
    )
    prefix = [unshare, "-rm", "sh", "-c", script, "sh", str(folder)]
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if probe.returncode == 0 else None


def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path: Path) -> None:
    export = _export(tmp_path / "in.csv", rows=3000)
    disk = tmp_path / "disk"
    disk.mkdir()
    prefix = _small_disk(disk)
    if prefix is None:
        pytest.skip("needs a small tmpfs, made with 'unshare -rm' (an unprivileged user and "
                    "mount namespace), which this machine does not allow")  # fmt: skip
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "pamlib", "score", str(export), "--provider", "demo",
         "-o", "scored.csv"],
        capture_output=True, check=False,
    )  # fmt: skip
    err = _clean(done.stderr, 3, done)
    assert err.splitlines()[-1] == "pamlib: error: no space left on the device: scored.csv", err
    assert done.stdout == b"", "nothing left on the full disk"
    assert str(tmp_path) not in err


# -- a broken working folder, standard input, file names ---------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="removing a folder in use: Linux")
@pytest.mark.parametrize("output", ["-", "o.csv"])
def test_a_working_folder_removed_while_in_use_is_said(tmp_path: Path, output: str) -> None:
    export = _export(tmp_path / "in.csv")
    gone = tmp_path / "gone"
    gone.mkdir()

    def in_a_removed_folder() -> None:
        os.chdir(gone)
        gone.rmdir()

    done = subprocess.run(
        [sys.executable, "-m", "pamlib", "score", str(export), "--provider", "demo", "-o", output],
        capture_output=True, check=False, preexec_fn=in_a_removed_folder,
    )  # fmt: skip
    err = _clean(done.stderr, 3, done)
    assert err.splitlines()[-1] == (
        "pamlib: error: the current folder no longer exists (removed while in use): "
        "cd to another one"
    ), err


@pytest.mark.skipif(os.name != "posix", reason="closing standard input: POSIX")
@pytest.mark.parametrize("command", ["score", "report"])
def test_a_closed_standard_input_does_not_stop_a_run_of_a_file(
    tmp_path: Path, command: str
) -> None:
    """``<&-`` (a service, a job runner): every run reading a file was an internal error."""
    _export(tmp_path / "in.csv")
    out = "o.csv" if command == "score" else "o.html"
    done = _pamlib(command, "in.csv", "--provider", "demo", "-o", out, cwd=tmp_path,
                   capture_output=True, preexec_fn=lambda: os.close(0))  # fmt: skip
    _clean(done.stderr, 0, done)
    assert (tmp_path / out).exists()


@pytest.mark.skipif(os.name != "posix", reason="closing standard input: POSIX")
def test_reading_a_closed_standard_input_is_said(tmp_path: Path) -> None:
    done = _pamlib("score", "-", "--provider", "demo", "-o", "o.csv", cwd=tmp_path,
                   capture_output=True, preexec_fn=lambda: os.close(0))  # fmt: skip
    err = _clean(done.stderr, 3, done)
    assert err.splitlines()[-1] == (
        "pamlib: error: standard input is closed: name an input file instead of -"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [["in.csv", "-o", ""], ["", "-o", "o.csv"], ["in.csv", "-o", "o.csv", "--rejects", ""],
     ["in.csv", "-o", "o.csv", "--rules", ""], ["in.csv", "-o", "o.csv", "--mapping", ""]],
    ids=["output", "input", "rejects", "rules", "mapping"],
)  # fmt: skip
def test_an_empty_file_name_is_a_usage_error(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``''`` is no file: it was the current folder (a directory), no option, or a crash."""
    from pamlib.cli import main

    _export(tmp_path / "in.csv")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(SystemExit) as info:
            main(["score", *argv, "--provider", "demo"])
    finally:
        os.chdir(old)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "an empty file name" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize(
    "argv",
    [["fhir", "questionnaire", "--instrument", "PAM-13", "-o", ""],
     ["demo", "--patients", "5", "--output-dir", ""],
     ["new-plugin", "--kind", "rules", "pamlib-audit", "--output-dir", ""],
     ["calibration", ""], ["fhir", "check", ""]],
    ids=["questionnaire", "demo", "new-plugin", "calibration", "fhir-check"],
)  # fmt: skip
def test_an_empty_file_name_is_a_usage_error_for_every_command(
    tmp_path: Path, argv: list[str]
) -> None:
    """The questionnaire went to standard output, the demo's files into the current folder."""
    done = _pamlib(*argv, cwd=tmp_path, capture_output=True)
    assert "an empty file name" in _clean(done.stderr, 2, done)
    assert done.stdout == b""
    assert list(tmp_path.iterdir()) == []


@posix_only
def test_rules_from_a_pipe_are_read(tmp_path: Path) -> None:
    """``--rules <(…)``: a pipe is a file to read, as ``pamlib rules check`` reads it."""
    _export(tmp_path / "in.csv")
    read_end, write_end = os.pipe()
    os.write(write_end, RULES.encode("utf-8"))
    os.close(write_end)
    try:
        done = _pamlib("score", "in.csv", "--provider", "demo", "-o", "o.csv",
                       "--rules", f"/dev/fd/{read_end}", cwd=tmp_path, pass_fds=(read_end,),
                       capture_output=True)  # fmt: skip
    finally:
        os.close(read_end)
    _clean(done.stderr, 0, done)
    assert (tmp_path / "o.csv").read_text(encoding="utf-8").count("audit.every") == 5


@pytest.mark.parametrize("option", ["--rules", "--calibration"])
def test_a_folder_given_as_a_file_is_called_a_folder(
    tmp_path: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pamlib.cli import main

    export = _export(tmp_path / "in.csv")
    (tmp_path / "site").mkdir()
    argv = ["score", str(export), "-o", str(tmp_path / "o.csv"), option, str(tmp_path / "site")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].endswith("site is a folder, not a file"), err


# -- descriptors 0-2 closed at start -----------------------------------------------------------

_WRITES_TO_STANDARD_ERROR = """
import os, sys
from pamlib.formats import guard
commit = guard.AtomicTarget.commit
def noisy(self):
    os.write(2, b"a library's warning\\n")  # as C code writes: by number, not sys.stderr
    commit(self)
guard.AtomicTarget.commit = noisy
from pamlib.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(os.name != "posix", reason="closed descriptors and named pipes: POSIX")
def test_an_output_never_takes_the_number_of_standard_error(tmp_path: Path) -> None:
    """With 0 and 2 closed, ``/dev/null`` for ``sys.stderr`` took 0 and the first file opened
    took 2: here the named pipe written through (no lock is taken for one)."""
    _export(tmp_path / "in.csv", reject=False)
    fifo = tmp_path / "scored.pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()

    def closed_in_and_err() -> None:
        os.close(0)
        os.close(2)

    try:
        done = subprocess.run(
            [sys.executable, "-c", _WRITES_TO_STANDARD_ERROR, "score", "in.csv", "--provider",
             "demo", "-o", str(fifo), "--rejects", os.devnull],
            cwd=tmp_path, stdout=subprocess.DEVNULL, check=False, preexec_fn=closed_in_and_err,
        )  # fmt: skip
    finally:
        if reader.is_alive():  # the run ended before opening the pipe: let the reader go
            with fifo.open("wb"):
                pass
        reader.join(timeout=30)
    assert done.returncode == 0
    text = received[0].decode("utf-8")
    assert "warning" not in text, "standard error's text landed in the scored output"
    assert text.startswith("assessment_id,")
    assert len(text.splitlines()) == 6
