"""One ``--mapping`` for every input: a mapping file says by its tables what it maps."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.errors import ConfigurationError, FormatError
from pamlib.fhir.mapping import FhirMapping
from pamlib.fhir.mapping import load_mapping as load_fhir_mapping
from pamlib.formats.layout import InputMapping, load_any_mapping, load_mapping, mapping_kind
from pamlib.plugins import PluginHost
from tests.conftest import ROOT

EXAMPLES = ROOT / "docs" / "examples"
CSV_MAPPING = EXAMPLES / "site-export-mapping.toml"
FHIR_MAPPING = EXAMPLES / "lforms-pam13-mapping.toml"
CSV_TABLES = ("input", "columns", "answers", "instruments")


def test_the_example_mappings_are_told_apart_by_their_tables() -> None:
    table = load_any_mapping(CSV_MAPPING)
    fhir = load_any_mapping(FHIR_MAPPING)
    assert isinstance(table, InputMapping)
    assert table == load_mapping(CSV_MAPPING)
    assert isinstance(fhir, FhirMapping)
    assert fhir == load_fhir_mapping(FHIR_MAPPING)


@given(st.sets(st.sampled_from(CSV_TABLES)), st.booleans(), st.booleans())
def test_the_tables_decide_the_kind(tables: set[str], fhir: bool, explicit: bool) -> None:
    """Column tables make a column mapping, ``[[questionnaire]]`` a FHIR one, both an error;
    an explicit ``kind`` that agrees changes nothing."""
    document: dict[str, Any] = {t: {} for t in tables}
    if fhir:
        document["questionnaire"] = []
    expected = "fhir" if fhir else "csv"
    if explicit:
        document["kind"] = expected
    if fhir and tables:
        with pytest.raises(FormatError) as info:
            mapping_kind(document, "m.toml")
        assert [p.code for p in info.value.problems] == ["mapping-kind"]
        assert "one file maps one kind of input" in str(info.value)
    else:
        assert mapping_kind(document, "m.toml") == expected


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"kind": "fhir", "columns": {}}, "kind = 'fhir' but the file's tables ([columns])"),
        ({"kind": "csv", "questionnaire": []}, "kind = 'csv' but the file's tables"),
        ({"kind": "xlsx"}, 'must be "csv" or "fhir"'),
    ],
)
def test_a_kind_that_contradicts_the_tables_is_refused(
    document: dict[str, Any], message: str
) -> None:
    with pytest.raises(FormatError, match=r"m\.toml is invalid") as info:
        mapping_kind(document, "m.toml")
    assert message in str(info.value)
    assert info.value.problems[0].where == "m.toml: kind"


def with_kind(tmp_path: Path, source: Path, kind: str) -> Path:
    path = tmp_path / source.name
    path.write_text(f'kind = "{kind}"\n' + source.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_an_explicit_kind_is_read_by_either_loader(tmp_path: Path) -> None:
    assert load_mapping(with_kind(tmp_path, CSV_MAPPING, "csv")) == load_mapping(CSV_MAPPING)
    fhir = load_fhir_mapping(with_kind(tmp_path, FHIR_MAPPING, "fhir"))
    assert fhir.questionnaires == load_fhir_mapping(FHIR_MAPPING).questionnaires


def test_the_column_loader_names_a_fhir_mapping_for_what_it_is() -> None:
    with pytest.raises(FormatError, match="maps a FHIR questionnaire") as info:
        load_mapping(FHIR_MAPPING)
    assert "unknown table" not in str(info.value)


def test_the_fhir_loader_names_a_column_mapping_for_what_it_is() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_fhir_mapping(CSV_MAPPING)
    message = str(info.value)
    assert "use it with CSV input, not FHIR" in message
    for table in ("input", "columns"):
        assert f"site-export-mapping.toml: {table}" in message
    assert "unknown key" not in message


def test_a_mixed_file_is_refused_by_every_loader(tmp_path: Path) -> None:
    path = tmp_path / "mixed.toml"
    text = FHIR_MAPPING.read_text(encoding="utf-8") + "\n" + CSV_MAPPING.read_text("utf-8")
    path.write_text(text, encoding="utf-8")
    tomllib.loads(text)  # valid TOML: refused for what it says, not how
    with pytest.raises(FormatError, match="one file maps one kind of input"):
        load_any_mapping(path)


# -- the command line ------------------------------------------------------------------------


def test_the_lforms_export_scores_from_the_command_line(
    sample_data: Path, tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    source = sample_data / "qr-lforms-export.json"
    out = tmp_path / "scored.csv"
    argv = ["score", str(source), "--provider", "raw-sum", "--mapping", str(FHIR_MAPPING),
            "-o", str(out), "--strict"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "read 1 = scored 1 + not scored 0 + rejected 0"
    with out.open(encoding="utf-8") as f:
        (row,) = csv.DictReader(f)
    export = json.loads(source.read_text(encoding="utf-8"))
    total = next(i for i in export["item"] if i["linkId"] == "raw-total")
    assert int(row["raw_score"]) == total["answer"][0]["valueDecimal"]
    assert row["patient_id"].startswith("anonymous:")
    assert row["n_answered"] == "12"


def test_the_site_export_still_scores_with_its_column_mapping(
    sample_data: Path, tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["score", str(sample_data / "site-export-semicolon.csv"), "--provider", "raw-sum",
            "--mapping", str(CSV_MAPPING), "-o", str(tmp_path / "o.csv")]  # fmt: skip
    assert main(argv) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == "read 70 = scored 65 + not scored 1 + rejected 4"


MISMATCHES = {
    "table-mapping-for-fhir": (
        "qr-lforms-export.json",
        CSV_MAPPING,
        "--mapping site-export-mapping.toml maps a table's columns, but the input is read as fhir",
    ),
    "fhir-mapping-for-csv": (
        "site-export-semicolon.csv",
        FHIR_MAPPING,
        "--mapping lforms-pam13-mapping.toml maps a FHIR questionnaire, but the input is read",
    ),
}


@pytest.mark.usefixtures("process_host")
@pytest.mark.parametrize("case", MISMATCHES)
def test_a_mapping_for_another_kind_of_input_is_a_usage_error(
    sample_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    source, mapping, message = MISMATCHES[case]
    out = tmp_path / "o.csv"
    argv = ["score", str(sample_data / source), "--provider", "raw-sum", "--mapping",
            str(mapping), "-o", str(out)]  # fmt: skip
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing scored, nothing written


def test_input_format_decides_which_mapping_applies(
    sample_data: Path, tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FHIR file under another name is read as FHIR when asked, and takes a FHIR mapping."""
    source = tmp_path / "responses.txt"
    source.write_bytes((sample_data / "qr-lforms-export.json").read_bytes())
    argv = ["score", str(source), "--provider", "raw-sum", "--input-format", "fhir",
            "--mapping", str(FHIR_MAPPING), "-o", str(tmp_path / "o.csv")]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().err.strip().endswith("scored 1 + not scored 0 + rejected 0")
