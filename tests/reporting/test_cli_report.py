"""``pamlib report`` from the command line, on a scored CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tests.reporting.conftest import MakeCohort

from pamlib.cli import main


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_report_writes_html_json_and_patients(
    tmp_path: Path, make_cohort: MakeCohort, capsys: pytest.CaptureFixture[str]
) -> None:
    scored = tmp_path / "scored.csv"
    write_rows(scored, make_cohort(n_patients=60, demo=True))
    html, summary, patients = tmp_path / "r.html", tmp_path / "s.json", tmp_path / "p.csv"
    argv = [
        "report",
        str(scored),
        "-o",
        str(html),
        "--json",
        str(summary),
        "--patients",
        str(patients),
        "--group-by",
        "site",
    ]
    assert main(argv) == 0
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["n_patients"] == 60
    assert data["demo"] is True
    assert "DEMO" in html.read_text(encoding="utf-8")
    assert patients.read_text(encoding="utf-8").count("\n") == 61
    assert "NOT PAM scores" in capsys.readouterr().err


def test_publish_refuses_patient_rows(tmp_path: Path, make_cohort: MakeCohort) -> None:
    scored = tmp_path / "scored.csv"
    write_rows(scored, make_cohort(n_patients=5))
    argv = [
        "report",
        str(scored),
        "-o",
        str(tmp_path / "r.html"),
        "--publish",
        "--patients",
        str(tmp_path / "p.csv"),
    ]
    assert main(argv) == 2


def test_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["report", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "r.html")]) == 2
