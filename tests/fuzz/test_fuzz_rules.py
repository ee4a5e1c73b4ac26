"""Fuzzing tailoring rule files and the report's scored-table reader, on a bounded budget.

Invariants:

* a rules file, however broken (wrong types, unknown keys, deep nesting, huge integers, odd
  unicode, TOML's nan/inf and dates), fails only with :class:`~pamlib.errors.RuleError`;
* every rules file that loads gives every row a pathway or an explicit reason;
* the report's reader fails only with :class:`~pamlib.errors.FormatError`; a table it accepts
  counts every row once (``n_assessments`` = rows = distinct assessment ids);
* the two ways into the reader — plain rows and a CSV file read by pyarrow — agree.

Inputs that once crashed are kept, minimised, in ``corpus/rules/`` and replayed.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pamlib.errors import FormatError, PamlibError, RuleError
from pamlib.reporting import ReportConfig, ScoredColumns, build_report, load_scored, summary_json
from pamlib.tailoring import Context, ContextColumns, Engine
from pamlib.tailoring.catalogue import BUILTIN_PATHWAYS
from pamlib.tailoring.engine import suppression_warnings
from pamlib.tailoring.rules import check_rules_text, load_rules, parse_rules
from tests.tailoring_strategies import contexts, rule_tables

CORPUS = Path(__file__).parent / "corpus" / "rules"
CATALOGUE = {p.id: p for p in BUILTIN_PATHWAYS}
BUDGET = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# -- rules files ------------------------------------------------------------------------------


class Raw(str):
    """TOML text inserted as it is (nan, inf, dates, deep nesting, huge integers)."""

    __slots__ = ()


def render(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # TOML basic strings share JSON's escapes
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    return "{ " + ", ".join(f"{key(k)} = {render(v)}" for k, v in value.items()) + " }"


def key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


odd_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from("\u202e\u00a0\ufeff"),
    max_size=6,
)
raw_tokens = st.one_of(
    st.sampled_from(["nan", "-nan", "inf", "-inf", "1979-05-27", "07:32:00", "0x_bad"]),
    st.integers(60, 400).map(lambda n: Raw("[" * n + "]" * n)),
    st.integers(60, 400).map(lambda n: Raw("{a = " * n + "1" + " }" * n)),
    st.integers(4301, 4400).map(lambda n: Raw("9" * n)),
).map(Raw)
junk = st.recursive(
    st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | odd_text
    | raw_tokens,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
    max_leaves=6,
)
fields = (
    st.sampled_from(
        [
            "id",
            "priority",
            "reason",
            "when",
            "unless",
            "then",
            "level",
            "score",
            "change",
            "attributes",
            "flags",
            "recommend",
            "suppress",
            "pathway",
            "intensity",
            "note",
            "reassess_after_months",
            "min",
            "max",
            "transition",
            "format",
        ]
    )
    | odd_text
)


@st.composite
def perturbed_rule_files(draw: st.DrawFn) -> str:
    """Valid rules with one to three perturbations: a value replaced by junk, an unknown key
    added, in a rule, its conditions or its actions, or raw text appended."""
    rules = draw(rule_tables(max_rules=4))
    for _ in range(draw(st.integers(1, 3))):
        if not rules:
            rules.append({"id": "site.x", "reason": "r", "then": [{"note": "n"}]})
        table = draw(st.sampled_from(rules))
        where = draw(st.sampled_from(["rule", "when", "then"]))
        if where == "when":
            table = table.setdefault("when", {})
        elif where == "then" and isinstance(table.get("then"), list) and table["then"]:
            table = draw(st.sampled_from(table["then"]))
        if isinstance(table, dict):
            table[draw(fields)] = draw(junk)
    lines = ["format = 1"]
    for table in rules:
        lines.append("\n[[rule]]")
        lines.extend(f"{key(k)} = {render(v)}" for k, v in table.items())
    tail = draw(st.none() | st.builds(lambda k, v: f"{key(k)} = {render(v)}", fields, junk))
    return "\n".join(lines + ([tail] if tail else [])) + "\n"


def check_rules_file_text(text: str) -> None:
    """Only RuleError from reading the file and building an engine, and the two ways of reading
    (collecting problems, raising) agree."""
    rule_file, problems = check_rules_text(text, "fuzz.toml")
    try:
        parse_rules(text, "fuzz.toml")
    except RuleError:
        assert problems
        return
    assert not problems
    try:
        engine = Engine(rule_file.rules, CATALOGUE)
    except RuleError:
        return
    assert engine.rules == tuple(sorted(rule_file.rules, key=lambda r: (-r.priority, r.id)))
    for warning in suppression_warnings(engine.rules, engine.pathways):
        assert warning.code == "suppress-all"


@BUDGET
@given(text=perturbed_rule_files())
def test_broken_rule_files_fail_only_with_rule_errors(text: str) -> None:
    check_rules_file_text(text)


@BUDGET
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_text_fails_only_with_rule_errors(text: str) -> None:
    check_rules_file_text(text)


@settings(max_examples=40, deadline=None)
@given(tables=rule_tables(max_rules=6), ctxs=st.lists(contexts(), min_size=1, max_size=12))
def test_every_row_gets_a_pathway_or_a_reason(
    tables: list[dict[str, Any]], ctxs: list[Context]
) -> None:
    lines = ["format = 1"]
    for table in tables:
        lines.append("\n[[rule]]")
        lines.extend(f"{key(k)} = {render(v)}" for k, v in table.items())
    rule_file = parse_rules("\n".join(lines) + "\n", "fuzz.toml")
    engine = Engine(rule_file.rules, CATALOGUE)
    columns = engine.table_columns(ContextColumns.from_contexts(ctxs))
    for pathways, reason in zip(
        columns["recommended_pathways"], columns["no_pathway_reason"], strict=True
    ):
        assert bool(pathways) != bool(reason)


# -- the report's scored-table reader ---------------------------------------------------------

score_texts = st.one_of(
    st.sampled_from(
        [
            "",
            "47.0",
            "47",
            "0",
            "100.0",
            "55.1",
            "100.1",
            "047.0",
            " 47.0",
            "４７.０",
            "+1",
            "1e1",
            "nan",
            "inf",
            "-0.0",
            "47.",
            ".5",
        ]
    ),
    st.integers(0, 1000).map(lambda t: f"{t / 10:.1f}"),
    odd_text,
)
cells = st.one_of(st.just(""), odd_text, st.sampled_from(["true", "false", "demo", "a\nb", "x\r"]))


@st.composite
def scored_tables(draw: st.DrawFn) -> list[dict[str, str]]:
    n = draw(st.integers(0, 12))
    ids = draw(
        st.lists(st.sampled_from([f"A{i}" for i in range(14)]) | odd_text, min_size=n, max_size=n)
    )
    rows = []
    for i in range(n):
        score = draw(score_texts)
        rows.append(
            {
                "assessment_id": ids[i],
                "patient_id": draw(st.sampled_from(["p1", "p2", "p3", ""]) | odd_text),
                "assessed_on": draw(
                    st.sampled_from(
                        ["2024-01-31", "2024-08-31", "2025-02-28", "2024-02-30", "", "2024-1-5"]
                    )
                ),
                "status": draw(st.sampled_from(["scored", "not-scored", "", "Scored"])),
                "score": score,
                "level": draw(st.sampled_from(["1", "2", "3", "4", "", "5", " 2"])),
                "flags": draw(st.sampled_from(["", "demo", "extreme-response", "missing-items"])),
                "provider": draw(st.sampled_from(["demo", "rasch", "raw-sum", ""])),
                "calibration_id": draw(st.sampled_from(["", "synthetic-demo-PAM-13", "site-1"])),
                "demo": draw(st.sampled_from(["true", "false", "", "TRUE", "maybe"])),
                "site": draw(cells),
            }
        )
    return rows


def summary_of(columns: ScoredColumns) -> dict[str, Any]:
    # one time of writing: two summaries compared must not differ by the clock
    when = datetime.datetime(2025, 1, 2, tzinfo=datetime.UTC)
    return summary_json(build_report(columns, ReportConfig(group_by="site"), generated_at=when))


def check_reader(rows: list[dict[str, str]], path: Path) -> None:
    try:
        from_rows: ScoredColumns | FormatError = ScoredColumns.from_rows(rows)
    except FormatError as exc:
        from_rows = exc
    if rows:
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("assessment_id,patient_id,assessed_on,status,score,level\n")
    try:
        from_file: ScoredColumns | FormatError = load_scored(path)
    except FormatError as exc:
        from_file = exc
    # The two readers agree: both refuse with the same problems, or both read the same table.
    if isinstance(from_rows, FormatError) or isinstance(from_file, FormatError):
        assert isinstance(from_rows, FormatError), from_file
        assert isinstance(from_file, FormatError), from_rows
        assert [(p.where.replace("rows", path.name, 1), p.code) for p in from_rows.problems] == [
            (p.where, p.code) for p in from_file.problems
        ]
        return
    assert len(from_rows) == len(from_file) == len(rows)
    assert from_rows.patient_id.tolist() == from_file.patient_id.tolist()
    assert from_rows.demo.tolist() == from_file.demo.tolist()
    # Every row counted once: as many assessments as rows, and as distinct ids.
    try:
        summary = summary_of(from_rows)
    except PamlibError as exc:  # e.g. a site column that identifies patients
        with pytest.raises(type(exc)):
            summary_of(from_file)
        return
    assert summary == summary_of(from_file)
    assert summary["n_assessments"] == len(rows) == len({r["assessment_id"] for r in rows})
    assert summary["demo"] == any(from_rows.demo.tolist())


@BUDGET
@given(rows=scored_tables())
def test_the_report_reader_refuses_cleanly_and_counts_every_row_once(
    rows: list[dict[str, str]], tmp_path: Path
) -> None:
    check_reader(rows, tmp_path / "fuzz.csv")


# -- the corpus -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", sorted(CORPUS.iterdir()) if CORPUS.is_dir() else [], ids=lambda p: p.name
)
def test_corpus_replays_cleanly(path: Path) -> None:
    if path.suffix == ".toml":
        try:
            rule_file = load_rules(path)
        except RuleError:
            return
        with contextlib.suppress(RuleError):
            Engine(rule_file.rules, CATALOGUE)
    elif path.suffix == ".csv":
        with contextlib.suppress(FormatError):
            load_scored(path)
    else:
        pytest.fail(f"unexpected corpus file {path.name}")
