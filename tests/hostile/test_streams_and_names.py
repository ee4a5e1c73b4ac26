"""What an audit of ``pamlib score``'s outputs found, through the command as a user runs it.

Standard input or output redirected from or to the export itself destroyed it; a temporary
output was readable by everyone while it replaced a private file; a FHIR reference
``Patient/<NHS number>`` put the number in ``patient_id``; a closed standard stream, a file name
that is not UTF-8 or a demo argument out of range gave an internal error; a broken pipe exited
0 for a run that did not finish; and a protected CSV cell did not read back as written.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

ITEMS = [f"q{k:02d}" for k in range(1, 14)]
NHS = "9995055333"  # valid (check digit 3), a test number


def _export(path: Path, rows: int = 3, *, ids: tuple[str, ...] = ()) -> Path:
    lines = [",".join(["patient_id", "assessment_id", "assessed_on", "instrument", *ITEMS])]
    for i in range(rows):
        pid = ids[i] if i < len(ids) else f"P{i}"
        answers = [str((i + k) % 4 + 1) for k in range(13)]
        lines.append(",".join([pid, f"A{i}", "2024-03-01", "PAM-13", *answers]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _pamlib(*args: str, cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "pamlib", *args], cwd=cwd, check=False, **kwargs
    )


def test_standard_input_from_the_output_file_is_refused(tmp_path: Path) -> None:
    export = _export(tmp_path / "v.csv")
    before = export.read_bytes()
    with export.open("rb") as stdin:
        done = _pamlib("score", "-", "--provider", "demo", "-o", "v.csv", cwd=tmp_path,
                       stdin=stdin, capture_output=True)  # fmt: skip
    assert done.returncode == 1
    assert b"the same file" in done.stderr
    assert export.read_bytes() == before


def test_standard_output_appended_to_the_input_is_refused(tmp_path: Path) -> None:
    export = _export(tmp_path / "v.csv")
    before = export.read_bytes()
    with export.open("ab") as stdout:
        done = _pamlib("score", "v.csv", "--provider", "demo", "-o", "-", cwd=tmp_path,
                       stdout=stdout, stderr=subprocess.PIPE)  # fmt: skip
    assert done.returncode == 1
    assert export.read_bytes() == before


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_private_output_is_never_wider_while_it_is_replaced(tmp_path: Path) -> None:
    from pamlib.formats.guard import AtomicTarget

    out = tmp_path / "out.csv"
    out.write_text("old\n", encoding="utf-8")
    out.chmod(0o600)
    target = AtomicTarget(out)
    (partial,) = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert stat.S_IMODE(partial.stat().st_mode) & 0o077 == 0
    target.stream.write(b"new\n")
    target.commit()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_patient_reference_that_is_an_nhs_number_is_the_nhs_number(tmp_path: Path) -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "identifier": {"system": "https://pamlib.org/fhir/Id/assessment-id", "value": "F4"},
        "questionnaire": "https://pamlib.org/fhir/Questionnaire/PAM-13|1",
        "status": "completed",
        "subject": {"reference": f"Patient/{NHS}"},
        "authored": "2025-03-01",
        "item": [
            {
                "linkId": f"pam13.{k:02d}",
                "answer": [
                    {
                        "valueCoding": {
                            "system": "https://pamlib.org/fhir/CodeSystem/agreement",
                            "code": "3",
                            "extension": [
                                {
                                    "url": "http://hl7.org/fhir/StructureDefinition/ordinalValue",
                                    "valueDecimal": 3,
                                }
                            ],
                        }
                    }
                ],
            }
            for k in range(1, 14)
        ],
    }
    source = tmp_path / "in.ndjson"
    source.write_text(json.dumps(response) + "\n", encoding="utf-8")
    done = _pamlib("score", "in.ndjson", "--provider", "demo", "-o", "o.csv", cwd=tmp_path,
                   capture_output=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "read 1 = scored 1" in done.stderr.decode()
    assert NHS not in (tmp_path / "o.csv").read_text(encoding="utf-8")
    done = _pamlib("score", "in.ndjson", "--provider", "demo", "-o", "k.csv",
                   "--keep-nhs-number", cwd=tmp_path, capture_output=True)  # fmt: skip
    assert NHS in (tmp_path / "k.csv").read_text(encoding="utf-8")


def test_a_closed_standard_output_is_a_clean_error(tmp_path: Path) -> None:
    _export(tmp_path / "in.csv")
    done = _pamlib("score", "in.csv", "--provider", "demo", "-o", "-", cwd=tmp_path,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   pass_fds=(), close_fds=True,
                   preexec_fn=lambda: os.close(1))  # fmt: skip
    assert done.returncode == 3
    assert b"standard output is closed" in done.stderr
    assert b"Traceback" not in done.stderr


def test_a_closed_standard_error_does_not_stop_a_run(tmp_path: Path) -> None:
    _export(tmp_path / "in.csv")
    done = _pamlib("score", "in.csv", "--provider", "demo", "-o", "o.csv", cwd=tmp_path,
                   stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(2))  # fmt: skip
    assert done.returncode == 0
    assert (tmp_path / "o.csv").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="file names of any bytes: Linux")
def test_a_file_name_that_is_not_utf8_is_a_clean_run(tmp_path: Path) -> None:
    name = os.fsdecode(b"bad\xff\xfe.csv")
    export = _export(tmp_path / name)
    with export.open("a", encoding="utf-8") as fh:  # a reject: the file's name is its source
        fh.write(",".join(["P9", "", "not a date", "PAM-13", *["2"] * 13]) + "\n")
    strict = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = _pamlib("score", name, "--provider", "demo", "-o", "o.csv", cwd=tmp_path,
                   capture_output=True, env=strict)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    assert "\ufffd" in (tmp_path / "o.rejects.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize("argv", [["--seed", "-5"], ["--patients", "99999999999999999999"]])
def test_demo_arguments_out_of_range_are_usage_errors_before_anything_is_made(
    argv: list[str], tmp_path: Path
) -> None:
    from pamlib.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--output-dir", str(out), *argv]) == 2
    assert not out.exists()


def test_a_reader_that_goes_away_is_not_a_success(tmp_path: Path) -> None:
    _export(tmp_path / "in.csv", rows=20_000)
    head = subprocess.Popen(["head", "-c", "10"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    done = _pamlib("score", "in.csv", "--provider", "demo", "-o", "-", cwd=tmp_path,
                   stdout=head.stdin, stderr=subprocess.PIPE)  # fmt: skip
    assert head.stdin is not None
    head.stdin.close()
    head.wait()
    assert done.returncode == 141
    assert b"Traceback" not in done.stderr


def test_protected_cells_read_back_as_written_and_two_patients_stay_two(tmp_path: Path) -> None:
    from pamlib.cli import main
    from pamlib.tables.scored import ScoredTable

    export = _export(tmp_path / "in.csv", rows=3, ids=("=P1", "'=P1", "@P2"))
    for name in ("s.csv", "s.parquet"):
        assert main(["score", str(export), "--provider", "demo", "-o", str(tmp_path / name)]) == 0
    as_text = ScoredTable.read(tmp_path / "s.csv").to_arrow().column("patient_id").to_pylist()
    typed = ScoredTable.read(tmp_path / "s.parquet").to_arrow().column("patient_id").to_pylist()
    assert as_text == typed == ["=P1", "'=P1", "@P2"]
    written = (tmp_path / "s.csv").read_text(encoding="utf-8").splitlines()
    assert [line.split(",")[1] for line in written[1:]] == ["'=P1", "''=P1", "'@P2"]


@given(st.text())
def test_protection_reads_back_as_written(text: str) -> None:
    from pamlib.formats.output import protect, unprotect

    assert unprotect(protect(text)) == text
    protected = protect(text)
    assert not protected or protected[0] not in "=+-@\t\r" or protected == text
