"""Small-number suppression: nothing from 1 to 7 is ever published, nor recoverable from a total."""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.reporting.pdf_pages import level_texts, require_pdf, standalone_numbers, visible_text

from pamlib.errors import ConfigurationError
from pamlib.reporting import (
    CohortSummary,
    ReportConfig,
    ScoredColumns,
    SuppressionRule,
    build_report,
    hidden_counts,
    render_html,
    render_pdf,
    summary_json,
    suppress,
    write_patients_csv,
)

Row = dict[str, str]
MakeRow = Callable[..., Row]
MakeCohort = Callable[..., list[Row]]
LEVELS = ("1", "2", "3", "4")
BINS = tuple(f"{lo}-{lo + 10}" for lo in range(0, 100, 10))


def published_numbers(node: Any, path: str = "$") -> list[tuple[str, Any]]:
    """Every number of a JSON summary except the settings and the context (not counts)."""
    if isinstance(node, dict):
        return [
            item
            for key, value in node.items()
            if not (path == "$" and key in ("config", "context"))
            for item in published_numbers(value, f"{path}.{key}")
        ]
    if isinstance(node, list):
        return [item for i, v in enumerate(node) for item in published_numbers(v, f"{path}[{i}]")]
    if isinstance(node, int | float) and not isinstance(node, bool):
        return [(path, node)]
    return []


def hidden(value: Any) -> bool:
    return isinstance(value, str)


def assert_not_recoverable(total: Any, parts: list[Any], where: str) -> None:
    """An additive identity must hide none or at least two of its terms."""
    terms = [total, *parts]
    n_hidden = sum(hidden(t) for t in terms)
    assert n_hidden != 1, f"{where}: one hidden term is recoverable from the others"
    if n_hidden == 0:
        assert total == sum(parts), where


def assert_protected(scope: dict[str, Any]) -> None:
    """Row and column totals of one scope, checked from the JSON alone."""
    change = scope["change_by_baseline_level"]
    transitions = scope["transitions"]
    for a in LEVELS:
        row = [transitions[a][b] for b in LEVELS]
        assert_not_recoverable(change[a]["n"], row, f"transition row {a}")
        column = [transitions[b][a] for b in LEVELS]
        assert_not_recoverable(scope["levels_followup"][a], column, f"transition column {a}")
    for when in ("baseline", "followup"):
        levels = [scope[f"levels_{when}"][lv] for lv in LEVELS]
        assert_not_recoverable(scope[f"n_{when}"], levels, f"levels at {when}")
        bins = [scope["score_histogram"][when][b] for b in BINS]
        assert_not_recoverable(scope[f"n_{when}"], bins, f"histogram at {when}")
    strata = [change[lv]["n"] for lv in LEVELS]
    assert_not_recoverable(change["all"]["n"], strata, "change strata")
    for s in (*LEVELS, "all"):
        classes = [change[s][f"n_{c}"] for c in ("improved", "stable", "declined")]
        assert_not_recoverable(change[s]["n"], classes, f"classes of stratum {s}")
    excluded = scope["nqf2483"]["excluded"]
    assert_not_recoverable(
        scope["n_patients"], [scope["n_baseline"], excluded["not-scored"]], "patients"
    )
    # derived values go with the counts they come from
    for when in ("baseline", "followup"):
        for lv in LEVELS:
            if hidden(scope[f"levels_{when}"][lv]) or hidden(scope[f"n_{when}"]):
                assert hidden(scope[f"levels_{when}_pct"][lv])
        if hidden(scope[f"n_{when}"]):
            assert hidden(scope[f"score_{when}"]["mean"])
            assert hidden(scope[f"score_{when}"]["sd"])
    for s in (*LEVELS, "all"):
        if hidden(change[s]["n"]):
            assert hidden(change[s]["mean_change"])
            assert hidden(change[s]["sd_change"])
        for c in ("improved", "stable", "declined"):
            if hidden(change[s][f"n_{c}"]) or hidden(change[s]["n"]):
                assert hidden(change[s][f"pct_{c}"])
    nqf = scope["nqf2483"]
    if hidden(nqf["numerator"]) or hidden(nqf["denominator"]):
        assert hidden(nqf["rate_pct"])


COUNT_SECTIONS = (
    "n_patients",
    "n_assessments",
    "n_baseline",
    "n_followup",
    "levels_baseline",
    "levels_followup",
    "change_by_baseline_level",
    "transitions",
    "score_histogram",
    "nqf2483",
)
DERIVED = {"mean_change", "sd_change", "rate_pct", "as_specified"}


def count_leaves(node: Any, path: str = "") -> dict[str, Any]:
    """The counts of one scope's JSON by path (percentages, means and SDs left out)."""
    if isinstance(node, dict):
        return {
            leaf: value
            for key, child in node.items()
            if key not in DERIVED and not key.startswith("pct_")
            for leaf, value in count_leaves(child, f"{path}.{key}").items()
        }
    return {path: node}


def assert_groups_protected(summary: dict[str, Any]) -> None:
    """Every overall count against the sum of the groups' counts."""
    if not summary["groups"]:
        return
    overall = count_leaves({k: summary[k] for k in COUNT_SECTIONS})
    groups = [count_leaves({k: g[k] for k in COUNT_SECTIONS}) for g in summary["groups"]]
    for path, total in overall.items():
        assert_not_recoverable(total, [g[path] for g in groups], f"groups{path}")


# -- generated cohorts -----------------------------------------------------------------------


@st.composite
def cohorts(draw: st.DrawFn) -> list[Row]:
    """Patients with a baseline, often a follow-up 5–13 months later, at one of three sites."""
    rows: list[Row] = []
    for p in range(draw(st.integers(0, 70))):
        site = draw(st.sampled_from(("a", "b", "c")))
        start = dt.date(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 200)))
        visits = [(start, draw(st.integers(0, 1000)) / 10)]
        if draw(st.integers(0, 3)):
            later = start + dt.timedelta(days=draw(st.integers(150, 400)))
            visits.append((later, draw(st.integers(0, 1000)) / 10))
        for i, (day, score) in enumerate(visits):
            status = draw(st.sampled_from(("scored",) * 9 + ("not-scored",)))
            level = 1 if score <= 47 else 2 if score <= 55.1 else 3 if score <= 67 else 4
            rows.append(
                {
                    "assessment_id": f"a{p}-{i}",
                    "patient_id": f"p{p}",
                    "assessed_on": day.isoformat(),
                    "status": status,
                    "score": f"{score:.1f}" if status == "scored" else "",
                    "level": str(level) if status == "scored" else "",
                    "flags": draw(st.sampled_from(("",) * 12 + ("extreme-response",))),
                    "demo": "false",
                    "site": site,
                }
            )
    return rows


@settings(max_examples=120, deadline=None)
@given(rows=cohorts(), grouped=st.booleans())
def test_published_outputs_never_show_a_count_from_1_to_7(
    rows: list[Row],
    grouped: bool,
    page_figures: Callable[[str], list[Any]],
) -> None:
    # An empty list of rows has no site column to group by (a refusal tested elsewhere).
    config = ReportConfig(group_by="site" if grouped and rows else None, publish=True)
    report = build_report(ScoredColumns.from_rows(rows), config)
    summary = summary_json(report)
    for path, number in published_numbers(summary):
        if isinstance(number, int):
            assert not 1 <= number <= 7, path
    for figure in page_figures(render_html(report)):
        if isinstance(figure.value, int):
            assert not 1 <= figure.value <= 7, figure.key
        assert figure.text not in {str(n) for n in range(1, 8)}, figure.key
    page = render_html(report)
    assert 'data-value="&quot;*&quot;"><title>' not in page  # no bar drawn for a hidden value
    assert_protected(summary)
    for group in summary["groups"]:
        assert_protected(group)
    assert_groups_protected(summary)


@settings(max_examples=8, deadline=None)
@given(rows=cohorts(), grouped=st.booleans())
def test_the_pdf_shows_no_count_from_1_to_7_that_the_page_does_not(
    rows: list[Row], grouped: bool
) -> None:
    """The PDF is laid out from the published page, whose figures the test above checks; its
    text (pdfium's, level text: turned chart labels are the page's own, checked above) has no
    small whole number more often than the page's visible text has it. Fewer examples than
    above: a PDF takes a second or more to lay out."""
    require_pdf()
    config = ReportConfig(group_by="site" if grouped and rows else None, publish=True)
    report = build_report(ScoredColumns.from_rows(rows), config)
    shown = Counter(standalone_numbers(visible_text(render_html(report))))
    printed = Counter(standalone_numbers(" ".join(level_texts(render_pdf(report)))))
    for count in range(config.suppression.low, config.suppression.high + 1):
        assert printed[str(count)] <= shown[str(count)], count


def test_a_realistic_cohort_is_protected(make_cohort: MakeCohort) -> None:
    rows = make_cohort(seed=4, n_patients=250, sites=("north", "south", "east", "west"))
    config = ReportConfig(group_by="site", publish=True)
    summary = summary_json(build_report(ScoredColumns.from_rows(rows), config))
    assert summary["published"] is True
    assert summary["config"]["suppression"]["applied"] is True
    assert any(v == "*" for g in summary["groups"] for v in g["levels_followup"].values())
    assert_protected(summary)
    for group in summary["groups"]:
        assert_protected(group)
    assert_groups_protected(summary)


def test_unpublished_outputs_are_not_suppressed(make_cohort: MakeCohort) -> None:
    rows = make_cohort(seed=4, n_patients=60)
    summary = summary_json(build_report(ScoredColumns.from_rows(rows), ReportConfig()))
    assert summary["published"] is False
    assert not any(v == "*" for v in summary["levels_followup"].values())


def test_secondary_suppression_hides_the_smallest_other_term() -> None:
    summary = CohortSummary(
        values={"total": 25, "a": 3, "b": 12, "c": 10, "d": 0},
        counts=frozenset({"total", "a", "b", "c", "d"}),
        derived={},
        identities=((("total",), ("a", "b", "c", "d")),),
    )
    assert hidden_counts(summary, SuppressionRule()) == {"a", "c"}
    released = suppress(summary)
    assert [released[k] for k in ("total", "a", "b", "c", "d")] == [
        25,
        released["a"],
        12,
        released["c"],
        0,
    ]
    assert str(released["a"]) == "*"
    with pytest.raises(ConfigurationError, match="already suppressed"):
        suppress(released)


def test_the_complement_is_what_fewest_figures_rest_on() -> None:
    # Hiding ``scored`` would also hide the percentage computed from it: hide ``patients``.
    summary = CohortSummary(
        values={"patients": 400, "scored": 394, "never_scored": 6, "a": 100, "pct": 25.4},
        counts=frozenset({"patients", "scored", "never_scored", "a"}),
        derived={"pct": ("a", "scored")},
        identities=((("patients",), ("scored", "never_scored")),),
    )
    assert hidden_counts(summary, SuppressionRule()) == {"never_scored", "patients"}
    assert suppress(summary)["pct"] == 25.4


def test_a_hidden_total_hides_a_part_too() -> None:
    summary = CohortSummary(
        values={"total": 5, "a": 5, "b": 0},
        counts=frozenset({"total", "a", "b"}),
        derived={"pct": ("a", "total")},
        identities=((("total",), ("a", "b")),),
    )
    assert hidden_counts(summary, SuppressionRule()) == {"total", "a"}


def test_custom_rule(make_cohort: MakeCohort) -> None:
    rows = make_cohort(seed=8, n_patients=120)
    rule = SuppressionRule(low=1, high=10, symbol="<11")
    config = ReportConfig(group_by="site", publish=True, suppression=rule)
    report = build_report(ScoredColumns.from_rows(rows), config)
    summary = summary_json(report)
    numbers = [n for _, n in published_numbers(summary) if isinstance(n, int)]
    assert not any(1 <= n <= 10 for n in numbers)
    assert "<11" in str(summary)
    assert "&lt;11" in render_html(report)
    assert "<11<" not in render_html(report)


@pytest.mark.parametrize(
    "rule", [{"low": 0}, {"low": 5, "high": 3}, {"symbol": ""}, {"symbol": "0"}]
)
def test_bad_rules_are_refused(rule: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SuppressionRule(**rule)


def test_per_patient_csv_is_never_published(make_row: MakeRow) -> None:
    columns = ScoredColumns.from_rows([make_row("p", "2024-01-10", 40.0)])
    with pytest.raises(ConfigurationError, match="never a published output"):
        write_patients_csv(build_report(columns, ReportConfig(publish=True)), io.StringIO())
    out = io.StringIO()
    write_patients_csv(build_report(columns), out)
    assert out.getvalue().splitlines()[1].startswith("p,1,")


def _fixed_exactly(
    identities: Sequence[tuple[tuple[str, ...], tuple[str, ...]]], hidden_keys: set[str]
) -> list[str]:
    """The hidden counts the identities fix, found independently of the SVD the suppression
    uses: Gauss-Jordan elimination in exact fractions. A count is fixed when its unit vector
    is one of the reduced rows (only then does it lie in their span)."""
    from fractions import Fraction

    names = sorted(hidden_keys)
    # each identity as lhs - rhs = 0: its coefficients on the hidden counts
    rows = [[Fraction(lhs.count(k) - rhs.count(k)) for k in names] for lhs, rhs in identities]
    rows = [row for row in rows if any(row)]
    pivot_row = 0
    pivots: list[int] = []
    for col in range(len(names)):
        found = next((r for r in range(pivot_row, len(rows)) if rows[r][col] != 0), None)
        if found is None:
            continue
        rows[pivot_row], rows[found] = rows[found], rows[pivot_row]
        lead = rows[pivot_row][col]
        rows[pivot_row] = [v / lead for v in rows[pivot_row]]
        for r in range(len(rows)):
            if r != pivot_row and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[pivot_row], strict=True)]
        pivots.append(col)
        pivot_row += 1
    return [
        names[col]
        for r, col in enumerate(pivots)
        if all(v == 0 for i, v in enumerate(rows[r]) if i != col)
    ]


@settings(max_examples=40, deadline=None)
@given(rows=cohorts(), grouped=st.booleans())
def test_no_hidden_count_follows_from_the_published_ones(rows: list[Row], grouped: bool) -> None:
    """Every identity of the summary together — each scope's own and the totals over groups,
    combined in any way — leaves each hidden count free: the published counts give it no
    single value. (Checked scope by scope alone, a group's count could still be had from the
    cohort's less the other groups', with the groups' own identities.)"""
    config = ReportConfig(group_by="site" if grouped and rows else None, publish=True)
    figures = build_report(ScoredColumns.from_rows(rows), config).figures
    hidden_keys = hidden_counts(figures, config.suppression)
    assert _fixed_exactly(list(figures.identities), hidden_keys) == []


def test_the_patients_are_the_denominator_and_the_exclusions(make_cohort: MakeCohort) -> None:
    """The identity that undid suppression by subtraction (patients = denominator + each
    exclusion) is one of the summary's, and holds."""
    rows = make_cohort(seed=4, n_patients=60)
    figures = build_report(ScoredColumns.from_rows(rows), ReportConfig(group_by="site")).figures
    for prefix in ["", *(f"groups.{i}." for i in range(len(figures.groups)))]:
        excluded = [k for k in figures.counts if k.startswith(f"{prefix}nqf2483.excluded.")]
        identity = ((f"{prefix}n_patients",), (f"{prefix}nqf2483.denominator", *excluded))
        assert sorted(identity[1]) in [
            sorted(rhs) for lhs, rhs in figures.identities if lhs == identity[0]
        ]
        counts = {k: figures[k] for k in (f"{prefix}nqf2483.denominator", *excluded)}
        assert all(isinstance(v, int) for v in counts.values())
        assert figures[f"{prefix}n_patients"] == sum(int(str(v)) for v in counts.values())


def test_a_count_fixed_through_other_groups_is_unfixed_there() -> None:
    """A group whose every count is hidden or zero can still have one fixed through the
    totals over groups and the other groups' identities: the term to hide is then found in
    another scope. (A case a generated cohort found: the group's baseline level-4 count and
    its exclusion, both hidden, followed from the cohort's and the other groups' counts.)"""
    import json
    from pathlib import Path

    rows = json.loads(
        (Path(__file__).parent / "data" / "fixed_through_other_groups.json").read_text("utf-8")
    )
    config = ReportConfig(group_by="site", publish=True)
    figures = build_report(ScoredColumns.from_rows(rows), config).figures
    hidden_keys = hidden_counts(figures, config.suppression)
    assert _fixed_exactly(list(figures.identities), hidden_keys) == []
