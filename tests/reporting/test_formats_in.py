"""``pamlib report`` reads every format ``pamlib score`` writes, and reports them identically."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pamlib.cli import main
from pamlib.plugins import PluginHost
from pamlib.synthetic import synthetic_cohort


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(synthetic_cohort(120, seed=11).csv_rows())
    return path


@pytest.mark.parametrize("provider", ["demo", "raw-sum"])
def test_every_scored_format_reports_identically(
    export: Path, provider: str, process_host: PluginHost
) -> None:
    summaries = {}
    for suffix in ("csv", "parquet", "jsonl"):
        scored = export.with_name(f"scored-{provider}.{suffix}")
        argv = ["score", str(export), "--provider", provider, "-o", str(scored), "--no-progress"]
        assert main([*argv, "--keep-nhs-number"]) == 0
        summary = export.with_name(f"summary-{provider}-{suffix}.json")
        report = export.with_name(f"report-{provider}-{suffix}.html")
        assert main(["report", str(scored), "-o", str(report), "--json", str(summary)]) == 0
        summaries[suffix] = json.loads(summary.read_text(encoding="utf-8"))
        context = summaries[suffix].pop("context")  # names this input and the time of the run
        assert [s["name"] for s in context["sources"]] == [scored.name]
    assert summaries["parquet"] == summaries["csv"]
    assert summaries["jsonl"] == summaries["csv"]
    assert summaries["csv"]["demo"] is (provider == "demo")


def test_json_lines_that_are_not_scored_rows_are_a_clean_error(
    tmp_path: Path, host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "odd.jsonl"
    source.write_text('{"assessment_id": [1, 2]}\nnot json\n', encoding="utf-8")
    assert main(["report", str(source), "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert "not a scored table" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r.html").exists()
