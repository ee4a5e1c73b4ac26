"""A file named after a patient (a per-patient download saved as ``9434765919.json``, a folder
named after the patient) is not named in what travels beyond the user's terminal: log records,
the reprs of a run's summary and scorer, and a Spark job's ``summary.json``. The summary's
``source`` attribute keeps the path as given."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import pamlib
from pamlib.formats.encoding import shown_name
from pamlib.identity import WITHHELD_NAME
from pamlib.plugins import PluginHost
from pamlib.spark import _summary_json

NHS = "9434765919"
FOLDER = "Zebedee Quillfeather"
ITEMS = ",".join(f"q{i:02d}" for i in range(1, 14))


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (f"exports/{FOLDER}/{NHS}.json", WITHHELD_NAME),
        ("export_943 476 5919.csv", WITHHELD_NAME),
        (f"file:/data/{FOLDER.replace(' ', '%20')}/943%20476%205919.csv", WITHHELD_NAME),
        (f"exports/{FOLDER}/export.csv", "export.csv"),
        ("orders_1234567890.csv", "orders_1234567890.csv"),  # no valid check digit
        ("<stdin>", "<stdin>"),
    ],
)
def test_shown_name(given: str, shown: str) -> None:
    assert shown_name(given) == shown


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / FOLDER
    folder.mkdir()
    path = folder / f"{NHS}.csv"
    row = "p1,a1,2024-01-15,PAM-13," + ",".join(["3"] * 13) + ",Zo\xe9"
    path.write_bytes(
        f"patient_id,assessment_id,assessed_on,instrument,{ITEMS},name\n{row}\n".encode("latin-1")
    )
    return path


def test_logs_and_reprs_withhold_the_name(
    export: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = PluginHost(load_entry_points=False, disabled=())
    caplog.set_level(logging.DEBUG)
    scorer = pamlib.TableScorer(provider="demo", host=host)
    summary = pamlib.score_file(
        export,
        select_provider=lambda instrument: host.scoring_providers()["demo"],
        output=tmp_path / "scored.csv",
        host=host,
    )
    assert "as latin-1" in caplog.text
    for text in (caplog.text, repr(summary), repr(scorer), _summary_json(summary)):
        assert NHS not in text
        assert FOLDER not in text
    assert WITHHELD_NAME in repr(summary)
    assert summary.source == str(export)


def test_spark_refusals_withhold_a_name_holding_an_nhs_number() -> None:
    """Files in different encodings, or with different headers, are refused naming them: by
    base name, withheld where it holds an NHS number."""
    from pamlib.errors import ConfigurationError
    from pamlib.spark import _check_one_header, _detected_encoding

    items = ",".join(f"q{i:02d}" for i in range(1, 14))
    header = f"patient_id,assessment_id,assessed_on,instrument,{items}\n"
    folder = f"file:/data/{FOLDER.replace(' ', '%20')}"
    heads = [
        (f"{folder}/a.csv", header.encode("utf-16")),
        (f"{folder}/{NHS}.csv", (header + "p1,a1,2024-01-01,PAM-13,Zo\xe9\n").encode("latin-1")),
    ]
    with pytest.raises(ConfigurationError) as encodings:
        _detected_encoding(heads)
    heads = [(f"{folder}/a.csv", header.encode()), (f"{folder}/{NHS}.csv", b"other,header\n")]
    with pytest.raises(ConfigurationError) as headers:
        _check_one_header(heads, "utf-8", ",", tuple(header.strip().split(",")))
    for caught in (encodings, headers):
        text = str(caught.value)
        assert NHS not in text
        assert FOLDER not in text
        assert WITHHELD_NAME in text


def test_error_messages_withhold_an_nhs_number_in_a_file_name(tmp_path: Path) -> None:
    """An error's text names the file as given but for its NHS number; its problems keep the
    name as given (the rejects file's ``source``, for the user's own terminal)."""
    from pamlib.errors import FormatError

    path = tmp_path / f"Jane {NHS}.csv"
    path.write_text("x\n1\n")
    host = PluginHost(load_entry_points=False, disabled=())
    with pytest.raises(FormatError) as caught:
        pamlib.score_file(
            path,
            select_provider=lambda instrument: host.scoring_providers()["demo"],
            output=tmp_path / "scored.csv",
            host=host,
        )
    assert NHS not in str(caught.value)
    assert "Jane <NHS number>.csv" in str(caught.value)
    assert all(NHS not in str(problem) for problem in caught.value.problems)
    assert any(NHS in problem.where for problem in caught.value.problems)


@pytest.mark.parametrize(
    "argv",
    [
        ["score", f"Jane {NHS}.csv", "-o", "out.csv"],  # no such file
        ["report", f"Jane {NHS}.csv", "-o", "r.html"],
        ["fhir", f"Jane {NHS}.csv"],  # argparse repeats what was typed
    ],
)
def test_command_line_errors_withhold_an_nhs_number(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pamlib.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / f"Jane {NHS}.csv").write_text(f"patient_id,assessment_id,assessed_on,{ITEMS}\n")
    if argv[0] == "score":
        (tmp_path / f"Jane {NHS}.csv").unlink()
    try:
        status = main(argv)
    except SystemExit as exc:
        status = int(exc.code or 0)
    err = capsys.readouterr().err
    assert status != 0
    assert "<NHS number>" in err
    assert NHS not in err
