"""The context block (names, never paths), headline denominators, exclusions in words, and the
console summaries that repeat the report's own figures."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pamlib.cli import main
from pamlib.plugins import PluginHost
from pamlib.reporting import (
    IdentifyingColumnError,
    ReportConfig,
    ScoredColumns,
    Suppressed,
    build_report,
    render_html,
    summary_json,
)
from pamlib.reporting._headlines import Figure, console_lines, exclusion_lines

Row = dict[str, str]
MakeCohort = Callable[..., list[Row]]


def visible_text(page: str) -> str:
    """The page's text as a reader sees it (no tags, no attributes)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_the_context_names_files_never_paths(tmp_path: Path, make_cohort: MakeCohort) -> None:
    folder = tmp_path / "private-folder-name"
    folder.mkdir()
    rules = folder / "site-rules.toml"
    rules.write_text("# rules\n", encoding="utf-8")
    rows = make_cohort(seed=3, n_patients=80)
    when = dt.datetime(2025, 3, 4, 5, 6, 7, 890, tzinfo=dt.UTC)
    report = build_report(
        ScoredColumns.from_rows(rows),
        ReportConfig(publish=True),
        sources=[folder / "scored.csv"],
        rules=[rules],
        generated_at=when,
    )
    context = summary_json(report)["context"]
    page = render_html(report)
    for text in (json.dumps(context), page):
        assert "private-folder-name" not in text
        assert str(tmp_path) not in text
    assert context["sources"] == [
        {"role": "input", "name": "scored.csv", "sha256": None},
        {
            "role": "rules",
            "name": "site-rules.toml",
            "sha256": hashlib.sha256(b"# rules\n").hexdigest(),
        },
    ]
    assert context["generated_at"] == "2025-03-04T05:06:07Z"
    days = sorted(r["assessed_on"] for r in rows)
    assert context["period"] == {"first_assessed": days[0], "last_assessed": days[-1]}
    assert context["cutpoint_sets"] == ["current"]
    assert context["suppression"] == {"low": 1, "high": 7, "applied": True}
    text = visible_text(page)
    assert f"Assessments from {days[0]} to {days[-1]}" in text
    assert "scored.csv" in text
    assert "site-rules.toml" in text
    assert "counts 1–7 hidden (applied)" in text


def test_providers_and_calibrations_come_from_the_table(make_row: Any) -> None:
    rows = [
        make_row(
            f"p{i}",
            "2024-01-01",
            50.0,
            provider="demo",
            provider_version="1.2",
            calibration_id="demo-cal",
            calibration_sha256="ab" * 32,
            demo=True,
        )
        for i in range(12)
    ]
    report = build_report(ScoredColumns.from_rows(rows))
    context = summary_json(report)["context"]
    assert context["providers"] == [{"provider": "demo", "version": "1.2"}]
    assert context["calibrations"] == [{"id": "demo-cal", "sha256": "ab" * 32}]
    assert "ab" * 32 in render_html(report)


def test_identifying_values_in_a_provenance_column_are_refused(make_row: Any) -> None:
    rows = [make_row(f"p{i}", "2024-01-01", 50.0, provider=f"943476{i:04d}") for i in range(12)]
    with pytest.raises(IdentifyingColumnError, match="provider") as info:
        build_report(ScoredColumns.from_rows(rows))
    assert "9434760003" not in str(info.value)


def test_a_provenance_value_that_is_a_patient_id_is_refused(make_row: Any) -> None:
    """One patient's id as a cut-point set (a table mixed up by hand) is not listed."""
    rows = [make_row(f"p{i}", "2024-01-01", 50.0) for i in range(12)]
    rows[3]["cutpoint_set"] = "p7"
    with pytest.raises(IdentifyingColumnError, match="cutpoint_set") as info:
        build_report(ScoredColumns.from_rows(rows))
    assert "p7" not in str(info.value)


def test_side_files_are_paths_that_exist(make_row: Any, tmp_path: Any) -> None:
    """A rules file is listed with its digest: one that is missing is refused, as is anything
    that is not a path; one path given alone is one file, not the characters of its name."""
    from pamlib.errors import ConfigurationError

    columns = ScoredColumns.from_rows([make_row("p1", "2024-01-01", 50.0)])
    rules = tmp_path / "site.toml"
    rules.write_text("", encoding="utf-8")
    report = build_report(columns, rules=str(rules), sources=str(tmp_path / "in.csv"))
    assert [(s.role, s.name) for s in report.context.sources] == [
        ("input", "in.csv"),
        ("rules", "site.toml"),
    ]
    with pytest.raises(ConfigurationError, match="no rules file abc"):
        build_report(columns, rules="abc")
    with pytest.raises(ConfigurationError, match="an input file is a path"):
        build_report(columns, sources=[5])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="config is a ReportConfig"):
        build_report(columns, {})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="generated_at is a datetime, not a str"):
        build_report(columns, generated_at="2024-01-01")  # type: ignore[arg-type]


def test_source_date_epoch_fixes_the_time(
    monkeypatch: pytest.MonkeyPatch, make_cohort: MakeCohort
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    report = build_report(ScoredColumns.from_rows(make_cohort(seed=1, n_patients=20)))
    assert report.context.generated_at == "2023-11-14T22:13:20Z"


def test_every_headline_shows_its_denominator(make_cohort: MakeCohort) -> None:
    report = build_report(ScoredColumns.from_rows(make_cohort(seed=8, n_patients=300)))
    summary, text = summary_json(report), visible_text(render_html(report))
    nqf = summary["nqf2483"]
    assert (
        f"{nqf['rate_pct']:.1f} % gained ≥ 3 points: {nqf['numerator']} of "
        f"{nqf['denominator']} eligible" in text
    )
    assert (
        f"{summary['n_baseline']} with a scored baseline, of {summary['n_patients']} patients"
        in text
    )
    assert (
        f"{summary['n_followup']} with a scored follow-up 6–12 months after baseline, of "
        f"{summary['n_baseline']} with a scored baseline" in text
    )


def test_exclusions_are_in_words_and_codes_stay_in_the_json(make_cohort: MakeCohort) -> None:
    report = build_report(ScoredColumns.from_rows(make_cohort(seed=8, n_patients=300)))
    summary, text = summary_json(report), visible_text(render_html(report))
    excluded = summary["nqf2483"]["excluded"]
    assert set(excluded) == {"not-scored", "baseline-level-4", "no-follow-up", "extreme-response"}
    assert "Not eligible: baseline already at level 4" in text
    assert "Not eligible: no scored follow-up in the window" in text
    for code in excluded:
        assert code not in text


def test_the_console_summary_of_report_is_the_report_s_own(
    tmp_path: Path, sample_data: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    scored, html, summary = tmp_path / "s.csv", tmp_path / "r.html", tmp_path / "r.json"
    rules = tmp_path / "rules.toml"
    rules.write_text("# none\n", encoding="utf-8")
    argv = ["score", str(sample_data / "cohort-small.csv"), "--provider", "demo", "-o", str(scored)]
    assert main(argv) == 0
    capsys.readouterr()
    argv = ["report", str(scored), "-o", str(html), "--json", str(summary), "--rules", str(rules)]
    assert main([*argv, "--group-by", "site", "--publish"]) == 0
    err = capsys.readouterr().err
    data = json.loads(summary.read_text(encoding="utf-8"))
    nqf = data["nqf2483"]
    line = f"% gained ≥ 3 points: {nqf['numerator']} of {nqf['denominator']} eligible"
    assert line in err
    assert line in visible_text(html.read_text(encoding="utf-8"))
    assert "baseline already at level 4" in err
    assert [s["name"] for s in data["context"]["sources"]] == ["s.csv", "rules.toml"]
    assert data["context"]["providers"][0]["provider"] == "demo"
    assert data["context"]["calibrations"]
    assert str(tmp_path) not in html.read_text(encoding="utf-8")
    assert str(tmp_path) not in summary.read_text(encoding="utf-8")


def test_the_console_summary_of_demo_is_the_report_s_own(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--patients", "60", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Patients with a follow-up:" not in out
    data = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert f"{data['n_followup']} with a scored follow-up 6–12 months after baseline" in out
    assert [s["name"] for s in data["context"]["sources"]] == [
        "synthetic-cohort.csv",
        "site-example.toml",
    ]
    assert data["context"]["sources"][1]["sha256"]


def test_console_lines_follow_suppression(make_cohort: MakeCohort) -> None:
    rows = make_cohort(seed=2, n_patients=30)
    report = build_report(ScoredColumns.from_rows(rows), ReportConfig(publish=True))
    lines = console_lines(report.released, report.config)
    hidden = [
        h
        for h in exclusion_lines(report.released)
        if isinstance(h.parts[0], Figure) and h.parts[0].value == Suppressed("*")
    ]
    assert hidden, "the small cohort should hide some exclusion counts"
    for headline in hidden:
        assert f"  {headline.text()}" in lines
        assert headline.text().startswith("* ")
