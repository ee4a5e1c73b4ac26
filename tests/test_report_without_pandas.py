"""``pamlib report`` never imports pandas, as ``pamlib score`` does not
(test_score_without_pandas.py): pyarrow's conversions of Python values and NumPy arrays, and
its own ``to_numpy``, import it wherever pandas is installed — a third of a second a run.

The scored file is made by ``pamlib score`` in each format it writes; one patient has no
``patient_id`` and is linked by NHS number, written two ways. The report writes every output,
grouped by site; the PDF (WeasyPrint, no browser) where the ``pdf`` extra is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pandas", reason="pandas is not installed: nothing could import it")

_HEADER = "assessment_id,patient_id,nhs_number,assessed_on,instrument,site," + ",".join(
    f"q{k:02d}" for k in range(1, 14)
)


def _answers(level: int, raised: int) -> str:
    """Thirteen answers ``level`` (1-4), the first ``raised`` of them one higher (up to 4)."""
    return ",".join(str(min(4, level + (k < raised))) for k in range(13))


def _export() -> str:
    """Twelve patients assessed twice, seven months apart, at two sites, and one patient
    linked by an NHS number only."""
    rows = [_HEADER]
    for p in range(12):
        site = ("north", "south")[p % 2]
        level = 1 + p % 4
        rows.append(f"a{p}-1,p{p},,2024-01-{p + 1:02d},PAM-13,{site},{_answers(level, p)}")
        rows.append(f"a{p}-2,p{p},,2024-08-{p + 1:02d},PAM-13,{site},{_answers(level, 6)}")
    rows.append(f"n1-1,,943 476 5919,2024-02-01,PAM-13,north,{_answers(2, 0)}")
    rows.append(f"n1-2,,9434765919,2024-09-01,PAM-13,north,{_answers(2, 9)}")
    return "\n".join(rows) + "\n"


_RUN = """
import json, sys
from pamlib.cli import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "pandas": "pandas" in sys.modules}), file=sys.stderr)
"""


def _pamlib(argv: list[str], cwd: Path) -> dict[str, Any]:
    """Run the command line in a fresh interpreter: its exit status, whether pandas was
    imported, and its standard error."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )
    report: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    report["stderr"] = done.stderr
    return report


def _check_outputs(folder: Path) -> None:
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["n_patients"] == 13
    assert summary["n_followup"] == 13
    assert {group["group"] for group in summary["groups"]} == {"north", "south"}
    rows = (folder / "patients.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + 13
    assert (folder / "report.html").stat().st_size > 0


_OUTPUTS = ["-o", "report.html", "--json", "summary.json", "--patients", "patients.csv"]


@pytest.mark.parametrize("scored", ["scored.csv", "scored.parquet", "scored.jsonl"])
def test_reporting_a_scored_file_does_not_import_pandas(tmp_path: Path, scored: str) -> None:
    (tmp_path / "export.csv").write_text(_export(), encoding="utf-8")
    argv = ["score", "export.csv", "--provider", "demo", "--keep-nhs-number", "-o", scored]
    made = _pamlib([*argv, "--no-progress"], tmp_path)
    assert made["status"] == 0, made["stderr"]
    report = _pamlib(["report", scored, *_OUTPUTS, "--group-by", "site"], tmp_path)
    assert report["status"] == 0, report["stderr"]
    _check_outputs(tmp_path)
    assert report["pandas"] is False


def test_a_pdf_report_does_not_import_pandas(tmp_path: Path) -> None:
    from pamlib.reporting import PdfUnavailableError
    from pamlib.reporting._pdf import check_available

    try:
        check_available()
    except PdfUnavailableError as exc:
        pytest.skip(str(exc))
    (tmp_path / "export.csv").write_text(_export(), encoding="utf-8")
    argv = ["score", "export.csv", "--provider", "demo", "--keep-nhs-number", "-o", "scored.csv"]
    made = _pamlib([*argv, "--no-progress"], tmp_path)
    assert made["status"] == 0, made["stderr"]
    report = _pamlib(["report", "scored.csv", "-o", "report.html", "--pdf", "report.pdf"], tmp_path)
    assert report["status"] == 0, report["stderr"]
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    assert report["pandas"] is False


def test_reporting_a_raw_export_does_not_import_pandas(tmp_path: Path) -> None:
    (tmp_path / "export.csv").write_text(_export(), encoding="utf-8")
    argv = ["report", "export.csv", "--provider", "demo", *_OUTPUTS, "--group-by", "site"]
    report = _pamlib(argv, tmp_path)
    assert report["status"] == 0, report["stderr"]
    _check_outputs(tmp_path)
    assert (tmp_path / "report.scored.csv").is_file()
    assert report["pandas"] is False
