"""``pamlib rules check | explain | overdue``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pamlib.cli import main
from pamlib.plugins import PluginHost
from pamlib.tailoring import EXAMPLE_SITE_RULES, STANDARD_COLUMNS

EXAMPLE = str(EXAMPLE_SITE_RULES)


@pytest.fixture(autouse=True)
def _builtins_only(process_host: PluginHost) -> None:
    """Every command here sees pamlib's built-in plugins only."""


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", EXAMPLE]) == 0
    out = capsys.readouterr().out
    # The example's training-site rule suppresses every pathway there: valid, but warned about.
    assert f"{EXAMPLE}: valid, 1 warning(s) — 8 rules, 1 pathways" in out
    assert "riverside.demo-site': then[0]: suppresses every pathway when site in" in out
    assert (
        "riverside.copd-breathe-easy (priority 50): when level in [2, 3, 4]; condition in ['copd']"
        in out
    )


def test_check_names_file_rule_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[rule]]\nid = "site.one"\nreason = "r"\nwhen = { levle = 2 }\nthen = [{ note = "n" }]\n'
    )
    assert main(["rules", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"@ {bad}: rule 'site.one': when.levle" in err
    assert "Traceback" not in err


def test_rules_without_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 2


def test_explain_from_options(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "rules",
        "explain",
        "--score",
        "50.3",
        "--previous-score",
        "44",
        "--site",
        "X",
        "--attr",
        "condition=COPD",
        "--rules",
        EXAMPLE,
        "--assessed-on",
        "2025-03-01",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "level 2, score 50.3, previously 44.0 level 1, change +6.3, transition up" in out
    assert "riverside.breathe-easy (Breathe Easy group): contact monthly" in out
    assert "Reassess by 2025-09-01: 6 months, the default interval" in out


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "explain", "--level", "4", "--assessed-on", "2025-01-31", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["pathway"] for r in data["recommendations"]] == ["health-coaching", "peer-support"]
    assert data["reassess_by"] == "2025-07-31"


def test_explain_not_scored(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "explain", "--not-scored", "too few answers"]) == 0
    assert "No pathway: not scored (too few answers)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["rules", "explain"],
        ["rules", "explain", "--score", "150"],
        ["rules", "explain", "--level", "2", "--attr", "COPD"],
        ["rules", "explain", "--level", "2", "--assessed-on", "yesterday"],
        ["rules", "explain", "--input", "x.csv"],
    ],
)
def test_explain_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pamlib: error: ")
    assert err.count("\n") == 1


def write_table(path: Path, rows: list[dict[str, str]]) -> None:
    columns = [*STANDARD_COLUMNS, "site", "condition"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def scored_rows() -> list[dict[str, str]]:
    common = {"instrument": "PAM-13", "status": "scored", "demo": "false"}
    return [
        common
        | {
            "assessment_id": "A1",
            "patient_id": "P1",
            "assessed_on": "2024-01-15",
            "score": "44.0",
            "level": "1",
        },
        common
        | {
            "assessment_id": "A2",
            "patient_id": "P2",
            "assessed_on": "2024-05-01",
            "score": "72.0",
            "level": "4",
            "condition": "COPD",
        },
        common
        | {
            "assessment_id": "A123",
            "patient_id": "P1",
            "assessed_on": "2024-08-15",
            "score": "50.3",
            "level": "2",
            "condition": "COPD",
        },
    ]


def test_explain_from_a_scored_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "scored.csv"
    write_table(table, scored_rows())
    argv = [
        "rules",
        "explain",
        "--input",
        str(table),
        "--assessment-id",
        "A123",
        "--rules",
        EXAMPLE,
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "Assessment A123: level 2, score 50.3, previously 44.0 level 1, change +6.3"
    )
    assert "riverside.breathe-easy" in out
    assert main(["rules", "explain", "--input", str(table), "--assessment-id", "A999"]) == 1
    assert "no row has this assessment_id" in capsys.readouterr().err


def test_overdue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "scored.csv"
    write_table(table, scored_rows())
    assert main(["rules", "overdue", "--input", str(table), "--on", "2025-02-01"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(captured.out.splitlines()))
    assert [
        (r["patient_id"], r["assessment_id"], r["reassess_by"], r["days_overdue"]) for r in rows
    ] == [
        ("P2", "A2", "2024-11-01", "92"),
    ]
    assert (
        "2 patients on 2025-02-01: 1 overdue, 1 due within 30 days, 0 not yet due" in captured.err
    )
    assert main(["rules", "overdue", "--input", str(table), "--on", "2025-02-01", "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
