"""FHIR input scored to CSV keeps each response's site and attributes as columns, as a CSV
export's ``site`` and pass-through columns are kept: ``pamlib score`` once dropped them (the
chunks read from FHIR declared no columns), so a report could not group by site."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from pamlib.cli import main
from pamlib.fhir import questionnaire_response
from pamlib.fhir.codes import EXT_ASSESSMENT
from pamlib.identity import Patient
from tests.test_fhir_out import sample

ITEMS = [f"q{k:02d}" for k in range(1, 14)]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _response(i: int, **attributes: str) -> dict[str, Any]:
    answers = {f"pam13.{k:02d}": 1 + k % 4 for k in range(1, 14)}
    qr = questionnaire_response(sample(id=f"A{i}", patient=Patient(f"P{i}"), responses=answers))
    parts: list[dict[str, Any]] = [{"url": "site", "valueString": f"Site {i % 2}"}]
    for name, value in attributes.items():
        pair = [{"url": "name", "valueString": name}, {"url": "value", "valueString": value}]
        parts.append({"url": "attribute", "extension": pair})
    qr["extension"] = [{"url": EXT_ASSESSMENT, "extension": parts}]
    return qr


def test_a_csv_export_through_fhir_and_back_keeps_its_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = ["patient_id", "assessment_id", "assessed_on", "instrument", "site", "ward", *ITEMS]
    answers = ["1", "2", "3", "4"] * 3 + ["1"]
    lines = [
        ",".join(header),
        ",".join(["P1", "A1", "2024-01-01", "PAM-13", "Hill", "W1", *answers]),
        ",".join(["P2", "A2", "2024-02-01", "PAM-13", "Dale", "", *answers]),
    ]
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in ("out.ndjson", "out.json"):
        fhir = tmp_path / name
        argv = ["score", str(export), "--provider", "demo", "--format", "fhir", "-o", str(fhir)]
        assert main(argv) == 0
        back = tmp_path / f"{name}.csv"
        assert main(["score", str(fhir), "--provider", "demo", "-o", str(back)]) == 0
        rows = _rows(back)
        assert [(r["assessment_id"], r["site"], r["ward"]) for r in rows] == [
            ("A1", "Hill", "W1"),
            ("A2", "Dale", ""),
        ]
    capsys.readouterr()


def test_attributes_that_cannot_be_columns_are_counted_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An attribute named as one of pamlib's own columns, or first seen after the first chunk
    (the columns are written before any row), is not a column: a warning counts them, never
    names them; the run still scores every response."""
    lines = [
        _response(1, ward="W1", status="odd"),
        _response(2, ward="W2"),
        _response(3, bed="B7"),  # first seen in the second chunk
    ]
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    out = tmp_path / "out.csv"
    argv = ["score", str(source), "--provider", "demo", "-o", str(out), "--chunk-rows", "2"]
    with caplog.at_level(logging.WARNING, logger="pamlib"):
        assert main(argv) == 0
    rows = _rows(out)
    assert [r["ward"] for r in rows] == ["W1", "W2", ""]
    assert [r["status"] for r in rows] == ["scored"] * 3
    assert [r["site"] for r in rows] == ["Site 1", "Site 0", "Site 1"]
    assert "bed" not in rows[0]
    warned = [r.getMessage() for r in caplog.records if "attribute name" in r.getMessage()]
    expected = (
        "2 attribute name(s) of FHIR responses are not output columns: named as one of "
        "pamlib's own columns, or first seen after the first chunk of responses"
    )
    assert warned == [expected]
