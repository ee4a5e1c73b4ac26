"""Hostile reports: what an audit of ``pamlib report``'s published outputs found.

* A site named like TeX (``$\\foo$``) stopped the report with an internal error: Matplotlib
  read the funnel plot's point label as mathematics (``$x^2$`` was drawn as x²).
* A site named ``url(#a)`` was shown as ``url(#c…-a)`` in the funnel plot: the chart's ids were
  prefixed inside its text too.
* Percentages and means were rounded half to even (1 of 16 patients, 6.25 %, was 6.2 %; a mean
  of 50.25 was 50.2) where pamlib rounds every score, and a spreadsheet's ``ROUND``, half away
  from zero: now exactly, in integers.
* ``Trajectory.baseline.score`` rounded a score given with two decimals half to even (40.25 was
  40.2) while its change and the per-patient CSV used 40.3.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pamlib.reporting import (
    ReportConfig,
    ScoredColumns,
    build_report,
    summary_json,
    write_html,
)


def _row(patient: str, day: str, score: str, level: int, **extra: str) -> dict[str, str]:
    return {
        "assessment_id": f"{patient}-{day}",
        "patient_id": patient,
        "assessed_on": day,
        "status": "scored",
        "score": score,
        "level": str(level),
        "cutpoint_set": "current",
        **extra,
    }


def _sites(*names: str) -> list[dict[str, str]]:
    """Forty patients a site, each with a baseline and a follow-up seven months later."""
    rows = []
    for s, site in enumerate(names):
        for p in range(40):
            patient = f"S{s}P{p:02d}"
            gain = "53.0" if p % 3 == 0 else "50.0"
            rows += [
                _row(patient, "2024-01-10", "50.0", 2, site=site),
                _row(patient, "2024-08-10", gain, 2, site=site),
            ]
    return rows


def _funnel(page: str) -> str:
    found = re.search(r'<svg class="chart funnel".*?</svg>', page, re.S)
    assert found is not None
    return found.group(0)


@pytest.mark.parametrize("site", ["$\\foo$", "$x^2$", "a $5 and $6 fee"])
def test_a_site_named_like_mathematics_is_drawn_as_its_name(tmp_path: Path, site: str) -> None:
    pytest.importorskip("matplotlib")
    report = build_report(
        ScoredColumns.from_rows(_sites(site, "north")), ReportConfig(group_by="site")
    )
    write_html(report, tmp_path / "report.html")
    funnel = _funnel((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert f"<text>{site}</text>" in re.sub(r"<text[^>]*>", "<text>", funnel)


def test_a_site_named_like_an_svg_reference_keeps_its_name(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = build_report(
        ScoredColumns.from_rows(_sites("url(#a)", "north")), ReportConfig(group_by="site")
    )
    write_html(report, tmp_path / "report.html")
    funnel = _funnel((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert "<text>url(#a)</text>" in re.sub(r"<text[^>]*>", "<text>", funnel)
    assert re.search(r"url\(#c[0-9a-f]{10}-a\)", funnel) is None


def test_percentages_and_means_round_half_away_from_zero() -> None:
    # 16 patients at level 2, one of whom gains 3 points: 1 of 16 is 6.25 %.
    rows = []
    for p in range(16):
        rows += [
            _row(f"P{p:02d}", "2024-01-10", "50.0", 2, site="north"),
            _row(f"P{p:02d}", "2024-08-10", "53.0" if p == 0 else "50.0", 2, site="north"),
        ]
    figures = summary_json(
        build_report(ScoredColumns.from_rows(rows), ReportConfig(group_by="site"))
    )
    assert figures["nqf2483"]["rate_pct"] == 6.3
    assert figures["change_by_baseline_level"]["2"]["pct_improved"] == 6.3
    assert figures["site_comparison"]["cohort"]["rate_pct"] == 6.3
    assert figures["site_comparison"]["groups"][0]["rate_pct"] == 6.3
    # Two baselines of 50.0 and 50.5: a mean of 50.25.
    pair = [_row("A", "2024-01-10", "50.0", 2), _row("B", "2024-02-10", "50.5", 2)]
    figures = summary_json(build_report(ScoredColumns.from_rows(pair)))
    assert figures["score_baseline"]["mean"] == 50.3
    assert figures["trends"]["all"]["2024-Q1"]["mean_score"] == 50.3


def test_a_mean_change_that_rounds_to_zero_is_not_negative_zero() -> None:
    rows = []
    for p, followup in enumerate(["49.9", *["50.0"] * 19]):  # a mean change of -0.005
        rows += [
            _row(f"P{p:02d}", "2024-01-10", "50.0", 2),
            _row(f"P{p:02d}", "2024-08-10", followup, 2),
        ]
    figures = summary_json(build_report(ScoredColumns.from_rows(rows)))
    mean = figures["change_by_baseline_level"]["all"]["mean_change"]
    assert mean == 0.0
    assert str(mean) == "0.0"


def test_a_trajectory_shows_the_score_its_change_was_computed_from() -> None:
    rows = [_row("P", "2024-01-10", "40.25", 1), _row("P", "2024-08-10", "43.2", 1)]
    trajectory = build_report(ScoredColumns.from_rows(rows)).trajectories.for_patient("P")
    assert trajectory.baseline is not None
    assert trajectory.followup is not None
    assert trajectory.baseline.score == 40.3
    assert trajectory.change == round(trajectory.followup.score - trajectory.baseline.score, 1)
