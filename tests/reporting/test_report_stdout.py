"""``pamlib report -o -`` writes the HTML to standard output, as ``pamlib score -o -`` writes its
rows: never a file named ``-``, and the files scored beside it named after the input. An input
of ``-`` is standard input, as it is for ``pamlib score``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.reporting.conftest import MakeCohort

from pamlib.cli import main
from pamlib.plugins import PluginHost

ITEMS = [f"q{k:02d}" for k in range(1, 14)]


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def export(path: Path, n: int = 6) -> Path:
    """A raw export: two assessments a patient, and one record rejected."""
    lines = [",".join(["patient_id", "assessment_id", "assessed_on", "instrument", *ITEMS])]
    for i in range(n):
        answers = ",".join(str((i + k) % 4 + 1) for k in range(13))
        lines.append(f"P{i // 2},A{i},2024-0{1 + 6 * (i % 2)}-01,PAM-13,{answers}")
    lines.append("P9,A99,2024-02-31,PAM-13," + ",".join(["3"] * 13))  # no such date
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, process_host: PluginHost) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dash_writes_the_html_to_standard_output(
    in_tmp: Path, make_cohort: MakeCohort, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    scored = write_rows(in_tmp / "scored.csv", make_cohort(n_patients=20, demo=True))
    assert main(["report", "scored.csv", "-o", "-", "--json", "s.json"]) == 0
    out, err = capsysbinary.readouterr()
    assert out.startswith(b"<!DOCTYPE html>")
    assert out.rstrip().endswith(b"</html>")
    assert not (in_tmp / "-").exists(), "no file named '-'"
    assert sorted(p.name for p in in_tmp.iterdir()) == ["s.json", scored.name]
    assert json.loads((in_tmp / "s.json").read_text(encoding="utf-8"))["n_patients"] == 20
    assert b"Report: -" not in err
    assert b"Summary: s.json" in err
    assert b"<html" not in err


def test_dash_with_provider_names_the_files_beside_it_after_the_input(
    in_tmp: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    export(in_tmp / "export.csv")
    assert main(["report", "export.csv", "--provider", "demo", "-o", "-"]) == 0
    out, err = capsysbinary.readouterr()
    assert out.startswith(b"<!DOCTYPE html>")
    names = sorted(p.name for p in in_tmp.iterdir())
    assert names == ["export.csv", "export.rejects.csv", "export.scored.csv"]
    assert b"Scored: export.scored.csv" in err
    assert b"-> export.rejects.csv" in err
    rejects = (in_tmp / "export.rejects.csv").read_text(encoding="utf-8")
    assert "A99" in rejects


def test_a_file_that_cannot_be_written_leaves_standard_output_empty(
    in_tmp: Path, make_cohort: MakeCohort, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    write_rows(in_tmp / "scored.csv", make_cohort(n_patients=5))
    argv = ["report", "scored.csv", "-o", "-", "--json", str(in_tmp / "no" / "s.json")]
    assert main(argv) == 3
    out, err = capsysbinary.readouterr()
    assert out == b""
    assert b"(its folder does not exist)" in err
    assert sorted(p.name for p in in_tmp.iterdir()) == ["scored.csv"]


def _pamlib(*args: str, cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "pamlib", *args], cwd=cwd, check=False, **kwargs
    )


def test_dash_through_a_pipe_and_a_closed_standard_output(
    tmp_path: Path, make_cohort: MakeCohort
) -> None:
    write_rows(tmp_path / "scored.csv", make_cohort(n_patients=8))
    done = _pamlib("report", "scored.csv", "-o", "-", cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"<!DOCTYPE html>")
    assert not (tmp_path / "-").exists()
    closed = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -m pamlib report scored.csv -o - >&-'],
        cwd=tmp_path, capture_output=True, check=False,
    )  # fmt: skip
    assert closed.returncode == 3
    assert b"standard output is closed: name the output with a file" in closed.stderr
    assert b"Traceback" not in closed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.csv"]


def test_dash_appended_to_the_input_is_refused(tmp_path: Path, make_cohort: MakeCohort) -> None:
    scored = write_rows(tmp_path / "scored.csv", make_cohort(n_patients=5))
    before = scored.read_bytes()
    with scored.open("ab") as stdout:
        done = _pamlib("report", "scored.csv", "-o", "-", cwd=tmp_path, stdout=stdout,
                       stderr=subprocess.PIPE)  # fmt: skip
    assert done.returncode == 1
    assert b"the same file" in done.stderr
    assert scored.read_bytes() == before


def test_dash_for_the_json_summary_writes_it_to_standard_output(
    in_tmp: Path, make_cohort: MakeCohort, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    write_rows(in_tmp / "scored.csv", make_cohort(n_patients=20, demo=True))
    assert main(["report", "scored.csv", "-o", "r.html", "--json", "-"]) == 0
    out, err = capsysbinary.readouterr()
    assert json.loads(out)["n_patients"] == 20
    assert not (in_tmp / "-").exists(), "no file named '-'"
    assert (in_tmp / "r.html").is_file()
    assert b"Summary: -" not in err


def test_two_outputs_cannot_share_standard_output(
    in_tmp: Path, make_cohort: MakeCohort, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    write_rows(in_tmp / "scored.csv", make_cohort(n_patients=20, demo=True))
    assert main(["report", "scored.csv", "-o", "-", "--patients", "-"]) == 2
    out, err = capsysbinary.readouterr()
    assert out == b""
    assert b"only one output can go to standard output ('-'): -o, --patients" in err
    assert sorted(p.name for p in in_tmp.iterdir()) == ["scored.csv"]


def test_dash_as_the_input_reads_standard_input(tmp_path: Path, make_cohort: MakeCohort) -> None:
    """A scored table piped in is reported as the same file would be, listed as ``stdin``; no
    file named ``-`` is looked for, and the copy the reader reads is gone after."""
    scored = write_rows(tmp_path / "scored.csv", make_cohort(n_patients=8))
    (tmp_path / "-").write_bytes(b"not this\n")  # a file named "-" is not what "-" means
    piped = _pamlib(
        "report", "-", "-o", "piped.html", "--json", "piped.json",
        cwd=tmp_path, input=scored.read_bytes(), capture_output=True,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    named = _pamlib(
        "report", "scored.csv", "-o", "named.html", "--json", "named.json", cwd=tmp_path
    )
    assert named.returncode == 0
    from_pipe = json.loads((tmp_path / "piped.json").read_text(encoding="utf-8"))
    from_file = json.loads((tmp_path / "named.json").read_text(encoding="utf-8"))
    assert from_pipe["context"]["sources"][0]["name"] == "stdin"
    for summary in (from_pipe, from_file):
        del summary["context"]["sources"], summary["context"]["generated_at"]
    assert from_pipe == from_file
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "-", "named.html", "named.json", "piped.html", "piped.json", "scored.csv",
    ]  # fmt: skip


def test_dash_as_the_input_with_provider_scores_standard_input(tmp_path: Path) -> None:
    raw = export(tmp_path / "export.csv").read_bytes()
    done = _pamlib(
        "report", "-", "-o", "-", "--provider", "demo", cwd=tmp_path, input=raw, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"<!DOCTYPE html>")
    # named after the input, as pamlib score names the rejects of standard input
    with (tmp_path / "stdin.rejects.csv").open(encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 1
    assert (tmp_path / "stdin.scored.csv").stat().st_size > 0
    # an export piped in without --provider is said to be one, as a file is
    done = _pamlib("report", "-", "-o", "r.html", cwd=tmp_path, input=raw, capture_output=True)
    assert done.returncode == 2
    assert b"stdin looks like an assessment export" in done.stderr
    assert b"Traceback" not in done.stderr
