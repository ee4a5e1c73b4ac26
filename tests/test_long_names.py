"""Outputs whose names are near the file system's limit (``NAME_MAX``, 255 bytes): the hidden
temporary and lock names beside them always fit, a lock name is the same for every run writing
the output, and a name that cannot be made (a default rejects file named after such an output)
is refused before anything is read or written, never an operating-system error at the end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.formats import guard as guard_module
from pamlib.formats.guard import AtomicTarget, OutputGuard, OutputRefusedError
from pamlib.plugins import PluginHost

ITEMS = [f"q{k:02d}" for k in range(1, 14)]


def _hidden(name: str, suffix: str, limit: int) -> str:
    hidden: str = guard_module._hidden(name, suffix, limit)
    return hidden


def name_max(folder: Path) -> int:
    limit = os.pathconf(folder, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    if not 100 <= limit <= 1024:
        pytest.skip(f"a file system with NAME_MAX {limit}")
    return limit


def sized(size: int, char: str, suffix: str = ".csv") -> str:
    """A name of exactly ``size`` bytes (UTF-8): ``char`` repeated, ASCII to make up the rest,
    then ``suffix``."""
    room = size - len(suffix.encode())
    wide = len(char.encode())
    name = char * (room // wide) + "x" * (room % wide) + suffix
    assert len(name.encode()) == size
    return name


#: Characters of one to four bytes in UTF-8.
CHARS = pytest.mark.parametrize("char", ["a", "é", "€", "🙂"], ids=["ascii", "2B", "3B", "4B"])


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def export(path: Path) -> Path:
    header = ",".join(["patient_id", "assessment_id", "assessed_on", "instrument", *ITEMS])
    rows = [f"P{i},A{i},2024-03-01,PAM-13," + ",".join(["3"] * 13) for i in range(3)]
    rows.append("P9,A9,2024-02-31,PAM-13," + ",".join(["3"] * 13))  # rejected: no such date
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


# -- the hidden names ---------------------------------------------------------------------------


def test_an_ordinary_name_keeps_its_hidden_names() -> None:
    assert _hidden("scored.csv", ".lock", 255) == ".scored.csv.lock"
    assert _hidden("scored.csv", ".0123abcd.partial", 255) == ".scored.csv.0123abcd.partial"
    name = sized(255 - len(".lock") - 1, "a")  # just fits
    assert _hidden(name, ".lock", 255) == f".{name}.lock"


@given(
    name=st.text(
        st.characters(codec="utf-8", exclude_characters="/\x00"),
        min_size=1,
        max_size=300,
    ),
    suffix=st.sampled_from([".lock", ".0123abcd.partial"]),
)
def test_a_hidden_name_always_fits_and_is_the_same_for_the_same_name(
    name: str, suffix: str
) -> None:
    hidden = _hidden(name, suffix, 255)
    assert len(os.fsencode(hidden)) <= 255
    assert hidden.startswith(".")
    assert hidden.endswith(suffix)
    assert hidden == _hidden(name, suffix, 255)
    prefix = hidden[1:].rpartition("~")[0] if hidden != f".{name}{suffix}" else name
    assert name.startswith(prefix), "whole characters of the name: none cut in half"


@CHARS
def test_names_sharing_a_long_prefix_get_different_hidden_names(char: str) -> None:
    one, two = sized(250, char, ".a.csv"), sized(250, char, ".b.csv")
    assert _hidden(one, ".lock", 255) != _hidden(two, ".lock", 255)


# -- the guard and the atomic target ------------------------------------------------------------


@CHARS
@pytest.mark.parametrize("size", [233, 240, 250, 255])
def test_a_long_output_is_written_and_leaves_nothing_beside_it(
    tmp_path: Path, char: str, size: int
) -> None:
    limit = name_max(tmp_path)
    out = tmp_path / sized(min(size, limit), char)
    with OutputGuard() as guard:
        guard.output(out, "the output")
        (lock,) = hidden_files(tmp_path)
        assert lock.endswith(".lock")
        assert len(os.fsencode(lock)) <= limit
        target = guard.open(out)
        assert all(len(os.fsencode(n)) <= limit for n in hidden_files(tmp_path))
        target.stream.write(b"rows\n")
        target.commit()
    assert out.read_bytes() == b"rows\n"
    assert hidden_files(tmp_path) == []


@CHARS
def test_two_runs_writing_one_long_output_contend_for_one_lock(tmp_path: Path, char: str) -> None:
    out = tmp_path / sized(name_max(tmp_path), char)
    with OutputGuard() as first:
        first.output(out, "the output")
        with OutputGuard() as second, pytest.raises(OutputRefusedError) as refused:
            second.output(out, "the output")
        assert [p.code for p in refused.value.problems] == ["in-use"]
    assert hidden_files(tmp_path) == []


@CHARS
def test_a_name_longer_than_the_folder_takes_is_refused_before_anything_is_made(
    tmp_path: Path, char: str
) -> None:
    out = tmp_path / sized(name_max(tmp_path) + 1, char)
    with OutputGuard() as guard, pytest.raises(OutputRefusedError) as refused:
        guard.output(out, "the scored output")
    (problem,) = refused.value.problems
    assert problem.code == "name-too-long"
    assert problem.message.startswith("the scored output: its name is ")
    assert str(tmp_path) not in str(refused.value), "the base name only"
    with pytest.raises(OutputRefusedError):
        AtomicTarget(out)
    assert list(tmp_path.iterdir()) == []


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, process_host: PluginHost) -> Path:
    monkeypatch.chdir(tmp_path)
    export(tmp_path / "in.csv")
    return tmp_path


@CHARS
@pytest.mark.parametrize("size", [233, 250, 255])
def test_score_writes_an_output_with_a_long_name(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], char: str, size: int
) -> None:
    name = sized(min(size, name_max(in_tmp)), char)
    args = ["score", "in.csv", "--provider", "demo", "-o", name, "--rejects", "r.csv"]
    assert main([*args, "--no-progress"]) == 0, capsys.readouterr().err
    assert (in_tmp / name).read_text(encoding="utf-8").count("\n") == 4
    assert sorted(p.name for p in in_tmp.iterdir()) == sorted(["in.csv", name, "r.csv"])


@CHARS
def test_score_names_its_rejects_after_a_long_output_where_that_fits(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], char: str
) -> None:
    rejects = sized(name_max(in_tmp), char, ".rejects.csv")
    name = rejects.removesuffix(".rejects.csv") + ".csv"
    assert main(["score", "in.csv", "--provider", "demo", "-o", name, "--no-progress"]) == 0
    assert "A9" in (in_tmp / rejects).read_text(encoding="utf-8")
    assert hidden_files(in_tmp) == []
    capsys.readouterr()


@CHARS
@pytest.mark.parametrize("recommend", [[], ["--recommend"]], ids=["streamed", "tailored"])
def test_a_default_rejects_name_too_long_is_refused_before_any_work(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], char: str, recommend: list[str]
) -> None:
    name = sized(name_max(in_tmp) - 4, char)  # fits; NAME.rejects.csv does not
    argv = ["score", "in.csv", "--provider", "demo", "-o", name, "--no-progress", *recommend]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("pamlib: error: cannot write an output\n")
    assert "the default rejects file (named after the output; set one with --rejects)" in err
    assert "bytes the file system allows; choose a shorter name" in err
    assert "Traceback" not in err
    assert "File name too long" not in err
    assert sorted(p.name for p in in_tmp.iterdir()) == ["in.csv"]


def test_report_refuses_files_beside_it_whose_names_would_be_too_long(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = sized(name_max(in_tmp) - 4, "é", ".html")
    assert main(["report", "in.csv", "--provider", "demo", "-o", name]) == 1
    err = capsys.readouterr().err
    assert "the scored file written beside the report: its name is" in err
    assert sorted(p.name for p in in_tmp.iterdir()) == ["in.csv"]
