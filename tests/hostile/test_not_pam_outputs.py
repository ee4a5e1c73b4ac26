"""Hostile: results that are not the PAM for a reason other than demonstration stay marked.

An audit scored a cohort with a calibration that was neither demo nor licensed: ``pamlib score``
said "NOT PAM scores" and flagged every row ``unlicensed``, but ``pamlib report`` then wrote an
HTML report with no banner or watermark, a JSON summary saying only ``"demo": false`` and no note
on the console, and the FHIR output titled each score "PAM total score", status ``final``, the
flag buried in an extension. Raw totals (``raw-sum``, flagged ``raw-only``) went unmarked in the
reports the same way. One notion now decides: a row is *not PAM* when it is demo or flagged
``unlicensed`` or ``raw-only``, and every output says so and why; demo outputs are unchanged.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import pytest

from pamlib.cli import main
from pamlib.fhir._checks import check
from pamlib.fhir.codes import LOINC, TAG_SYSTEM
from pamlib.reporting import ReportConfig, ScoredColumns, build_report, render_html, summary_json
from tests.calibrations import rsm_document, write
from tests.fhir_support import assert_valid

UNLICENSED_NOTE = (
    "Note: these scores come from a provider without a PAM licence (flagged 'unlicensed') "
    "— NOT PAM scores."
)
RAW_NOTE = (
    "Note: these results are raw totals with no 0–100 score (flagged 'raw-only') — NOT PAM scores."
)
DEMO_NOTE = "Note: these scores come from the synthetic demo calibration — NOT PAM scores."
DEMO_TEXT = "DEMONSTRATION SCORES — NOT THE PATIENT ACTIVATION MEASURE"


def _raw_export(path: Path, n_patients: int = 12) -> Path:
    """A PAM-13 export: each patient assessed twice, eight months apart (made-up answers)."""
    rng = random.Random(2024)  # noqa: S311 - reproducible made-up answers, not a secret
    items = [f"q{j:02d}" for j in range(1, 14)]
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["patient_id", "assessment_id", "assessed_on", "instrument", *items])
        for p in range(n_patients):
            for k, day in enumerate(("2024-01-15", "2024-09-15")):
                answers = [str(rng.randint(1, 4)) for _ in items]
                out.writerow([f"P{p:03d}", f"A{p:03d}-{k}", day, "PAM-13", *answers])
    return path


def _unlicensed_calibration(folder: Path) -> Path:
    """A synthetic calibration that is not demo and carries no licence."""
    doc = rsm_document(id="research-unlicensed", demo=False)
    assert "licence" not in doc
    return write(folder, doc)


def _score(tmp_path: Path, how: list[str], out: str) -> Path:
    target = tmp_path / out
    source = _raw_export(tmp_path / "export.csv")
    assert main(["score", str(source), *how, "-o", str(target), "--no-progress"]) == 0
    return target


def _unlicensed(tmp_path: Path, out: str) -> Path:
    return _score(tmp_path, ["--calibration", str(_unlicensed_calibration(tmp_path))], out)


def _raw_only(tmp_path: Path, out: str) -> Path:
    return _score(tmp_path, ["--provider", "raw-sum"], out)


def _demo(tmp_path: Path, out: str) -> Path:
    return _score(tmp_path, ["--provider", "demo"], out)


def _flags(scored: Path) -> set[str]:
    with scored.open(encoding="utf-8", newline="") as f:
        return {flag for row in csv.DictReader(f) for flag in row["flags"].split(";") if flag}


def _report(
    scored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[str, dict[str, Any], str]:
    html, summary = tmp_path / "report.html", tmp_path / "summary.json"
    capsys.readouterr()  # what scoring printed
    assert main(["report", str(scored), "-o", str(html), "--json", str(summary)]) == 0
    err = capsys.readouterr().err
    return html.read_text(encoding="utf-8"), json.loads(summary.read_text("utf-8")), err


# -- reports ---------------------------------------------------------------------------------


def test_an_unlicensed_result_is_marked_in_the_html_json_and_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scored = _unlicensed(tmp_path, "scored.csv")
    assert "unlicensed" in _flags(scored)
    page, summary, err = _report(scored, tmp_path, capsys)

    assert summary["demo"] is False
    assert summary["not_pam"] is True
    assert summary["not_pam_reasons"] == ["unlicensed"]

    assert 'id="not-pam-banner"' in page
    assert 'id="not-pam-watermark"' in page
    assert 'data-not-pam="true"' in page
    assert "<title>PAM cohort report — NOT PAM</title>" in page
    banner = "NOT PATIENT ACTIVATION MEASURE SCORES: scores from a provider without a PAM licence"
    assert banner in page
    assert page.count("NOT PAM — UNLICENSED") >= 50  # the watermark, repeated across the page
    assert "DEMO" not in page  # it says why: not a demonstration
    assert 'id="demo-banner"' not in page

    assert UNLICENSED_NOTE in err
    assert DEMO_NOTE not in err


def test_a_raw_only_result_is_marked_in_the_html_json_and_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scored = _raw_only(tmp_path, "scored.csv")
    assert "raw-only" in _flags(scored)
    page, summary, err = _report(scored, tmp_path, capsys)

    assert summary["demo"] is False
    assert summary["not_pam"] is True
    assert summary["not_pam_reasons"] == ["raw-only"]

    assert 'id="not-pam-banner"' in page
    assert 'id="not-pam-watermark"' in page
    assert "<title>PAM cohort report — NOT PAM</title>" in page
    assert "raw totals of the answered items, not 0–100 PAM scores" in page
    assert page.count("NOT PAM — RAW TOTALS") >= 50
    assert "DEMO" not in page

    assert RAW_NOTE in err
    assert DEMO_NOTE not in err


def test_demo_reports_are_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scored = _demo(tmp_path, "scored.csv")
    page, summary, err = _report(scored, tmp_path, capsys)

    assert summary["demo"] is True
    assert summary["not_pam"] is True
    assert summary["not_pam_reasons"] == ["demo"]

    assert 'id="demo-banner"' in page
    assert 'id="demo-watermark"' in page
    assert "<title>PAM cohort report — DEMO</title>" in page
    assert f"{DEMO_TEXT}: synthetic scores for demonstration only." in page
    assert page.count("DEMO — NOT PAM") >= 50
    assert 'id="not-pam-banner"' not in page
    assert 'id="not-pam-watermark"' not in page

    assert err.count("NOT PAM scores") == 1
    assert DEMO_NOTE in err


def _row(patient: str, day: str, score: float, level: int, **extra: str) -> dict[str, str]:
    return {
        "assessment_id": f"{patient}-{day}",
        "patient_id": patient,
        "assessed_on": day,
        "status": "scored",
        "score": f"{score}",
        "level": str(level),
        "cutpoint_set": "current",
        **extra,
    }


def test_one_unlicensed_row_makes_the_whole_report_not_pam() -> None:
    rows = [_row(f"P{p}", "2024-01-15", 50.0, 2) for p in range(20)]
    rows.append(_row("Q", "2024-01-15", 50.0, 2, flags="missing-items;unlicensed"))
    report = build_report(ScoredColumns.from_rows(rows), ReportConfig(publish=True))
    assert report.not_pam
    assert not report.demo
    assert report.not_pam_reasons == ("unlicensed",)
    assert summary_json(report)["not_pam_reasons"] == ["unlicensed"]
    assert 'id="not-pam-banner"' in render_html(report)


def test_licensed_rows_carry_no_not_pam_marking() -> None:
    rows = [_row(f"P{p}", "2024-01-15", 50.0, 2, flags="missing-items") for p in range(20)]
    report = build_report(ScoredColumns.from_rows(rows))
    summary = summary_json(report)
    assert (summary["demo"], summary["not_pam"], summary["not_pam_reasons"]) == (False, False, [])
    page = render_html(report)
    assert "NOT PAM" not in page
    assert 'data-not-pam="false"' in page


def test_demo_with_unlicensed_rows_keeps_the_demo_marking_and_names_both() -> None:
    rows = [_row(f"P{p}", "2024-01-15", 50.0, 2, flags="unlicensed") for p in range(10)]
    rows.append(_row("D", "2024-01-15", 50.0, 2, flags="demo", demo="true"))
    rows.append(_row("R", "2024-01-15", 50.0, 2, flags="raw-only"))
    report = build_report(ScoredColumns.from_rows(rows))
    assert report.not_pam_reasons == ("demo", "unlicensed", "raw-only")
    page = render_html(report)
    assert "<title>PAM cohort report — DEMO</title>" in page
    assert 'id="demo-banner"' in page
    assert 'id="demo-watermark"' in page
    assert 'id="not-pam-banner"' in page
    assert 'data-not-pam="unlicensed raw-only"' in page
    assert 'id="not-pam-watermark"' not in page  # one watermark: the demonstration one


def test_an_unlicensed_pdf_carries_the_marking_in_its_margins(tmp_path: Path) -> None:
    from pamlib.reporting import render_pdf
    from tests.reporting.pdf_pages import page_texts, require_pdf

    require_pdf()
    rows = [_row(f"P{p}", "2024-01-15", 50.0, 2, flags="unlicensed") for p in range(20)]
    texts = page_texts(render_pdf(build_report(ScoredColumns.from_rows(rows))))
    for number, text in enumerate(texts, 1):
        assert "NOT PAM — UNLICENSED" in text, number
        assert "NOT PATIENT ACTIVATION MEASURE SCORES — UNLICENSED PROVIDER" in text, number
        assert "DEMO" not in text, number


# -- FHIR ------------------------------------------------------------------------------------


def _observations(path: Path) -> list[dict[str, Any]]:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    assert check(bundle) == []
    resources = [e["resource"] for e in bundle["entry"]]
    for resource in resources:
        assert_valid(resource)
    return [r for r in resources if r["resourceType"] == "Observation"]


def _tags(obs: dict[str, Any]) -> set[str]:
    return {t["code"] for t in obs.get("meta", {}).get("tag", []) if t["system"] == TAG_SYSTEM}


def test_unlicensed_fhir_observations_say_they_are_not_pam_scores(tmp_path: Path) -> None:
    observations = _observations(_unlicensed(tmp_path, "out.fhir.json"))
    assert observations
    scores = [o for o in observations if "valueQuantity" in o]
    assert scores
    for obs in observations:
        assert obs["status"] == "preliminary"
        assert _tags(obs) == {"unlicensed"}
        assert obs["note"][0]["text"].startswith("NOT A PAM SCORE")
        assert "not a licensed Patient Activation Measure score" in obs["note"][0]["text"]
    for obs in scores:
        assert obs["code"]["text"] == "Unlicensed score (not a PAM score)"
        assert "PAM total score" not in json.dumps(obs)


def test_raw_only_fhir_observations_say_they_are_not_pam_scores(tmp_path: Path) -> None:
    observations = _observations(_raw_only(tmp_path, "out.fhir.json"))
    assert observations
    for obs in observations:
        assert obs["status"] == "preliminary"
        assert _tags(obs) == {"raw-only"}
        assert "not a Patient Activation Measure score" in obs["note"][0]["text"]
        assert "not a PAM score" in obs["code"]["text"]
        assert all(c["system"] != LOINC for c in obs["code"]["coding"])


def test_demo_fhir_observations_are_unchanged(tmp_path: Path) -> None:
    observations = _observations(_demo(tmp_path, "out.fhir.json"))
    assert observations
    for obs in observations:
        assert obs["status"] == "preliminary"
        assert _tags(obs) == {"demo"}
        assert obs["note"][0]["text"].startswith("DEMONSTRATION ONLY")
    scores = [o for o in observations if "valueQuantity" in o]
    assert scores
    assert {o["code"]["text"] for o in scores} == {"Demonstration score (not a PAM score)"}


def test_a_final_unlicensed_observation_is_a_problem(tmp_path: Path) -> None:
    obs = _observations(_unlicensed(tmp_path, "out.fhir.json"))[0]
    problems = check({**obs, "status": "final"})
    assert [(p.where, p.code) for p in problems] == [("$.status", "demo-final")]
