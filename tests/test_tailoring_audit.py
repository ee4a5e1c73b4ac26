"""An audit of tailoring and level banding: faults found, each pinned by a test.

* the object API and a scored table give a Python rule the same facts (texts stripped,
  attributes without blanks, flags casefolded), checked differentially over whole tables:
  people keyed by patient_id or NHS number, same-day and out-of-order assessments, unscored
  rows, scores at cut points and one ulp either side, every kind of condition;
* a context that contradicts itself (unscored with a level, a score off the 0–100 scale) is
  refused, not tailored;
* a table whose level contradicts its score at its cut-point set is refused by tailoring;
* a cut-point set that would band some scores wrongly (bounds at more decimals than its
  precision, a bad ``decimals``, infinite bounds, off the 0–100 scale) is refused;
* a Python rule's unknown pathway is never quoted (it may be made of a person's data);
* ``pamlib rules explain`` refuses a ``--level`` its ``--score`` contradicts.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pamlib.assessment import Assessment
from pamlib.cli import main
from pamlib.errors import RuleError, ValidationError
from pamlib.identity import Patient, is_valid_nhs_number
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.levels import CURRENT, HIBBARD_2005, ActivationLevel, CutpointRegistry, CutpointSet
from pamlib.plugins import PluginHost
from pamlib.results import Flag, ScoreResult, ScoreStatus
from pamlib.tables.scored import ScoredTable
from pamlib.tailoring import (
    BUILTIN_PATHWAYS,
    Context,
    Engine,
    Note,
    Recommend,
    apply_recommendations,
    outcome_columns,
    parse_rules,
    recommend_rows,
    rule,
    tailor,
)
from pamlib.tailoring._conditions import conditions_as_text
from pamlib.tailoring.columns import ContextColumns
from pamlib.tailoring.rules import Action
from tests.tailoring_strategies import toml_file

PAM13 = BUILTIN_INSTRUMENTS[0]
CATALOGUE = {p.id: p for p in BUILTIN_PATHWAYS}
SETS = {s.id: s for s in (CURRENT, HIBBARD_2005)}
#: Valid NHS numbers from the range set aside for tests; identifiers are distinctive so an
#: error quoting one is caught.
NHS = [n for i in range(1, 40) for d in range(10) if is_valid_nhs_number(n := f"999000{i:03d}{d}")][
    :3
]
PRIVATE = "PRIVATE-PERSON-9434765919"


@pytest.fixture(autouse=True)
def _builtins_only(process_host: PluginHost) -> None:
    """Every table and command here sees pamlib's built-in plugins only."""


def _near(value: float) -> list[float]:
    return [float(np.nextafter(value, -1.0)), value, float(np.nextafter(value, 101.0))]


#: Every cut point of both sets, the halves that round onto them, and one ulp either side.
SCORES = sorted(
    {
        s
        for bound in (47.0, 55.1, 67.0, 72.4)
        for edge in (bound, bound + 0.05, bound + 0.1)
        for s in _near(round(edge, 2))
    }
    | {0.0, 100.0, 50.3, 47.2}
)


# -- objects and tables give the same facts ---------------------------------------------------


@st.composite
def people(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Rows of a few people: keyed by patient_id, by NHS number or both; few dates, so
    same-day assessments and rows out of date order are common; some not scored."""
    rows = []
    for i in range(draw(st.integers(1, 7))):
        who = draw(st.integers(0, 2))
        keyed = draw(st.sampled_from(["pid", "nhs", "both"]))
        scored = draw(st.booleans()) or draw(st.booleans())
        set_id = draw(st.sampled_from(sorted(SETS)))
        score = draw(st.none() | st.sampled_from(SCORES)) if scored else None
        level = None if score is None else SETS[set_id].level(score)
        rows.append(
            {
                "i": i,
                "pid": None if keyed == "nhs" else f"P{who}",
                "nhs": None if keyed == "pid" else NHS[who],
                "day": dt.date(2024, 2, 28) + dt.timedelta(days=draw(st.integers(0, 3))),
                "scored": scored,
                "score": score,
                "level": level,
                "set": set_id if level else None,
                "site": draw(st.sampled_from([None, "North", " north ", "South\t"])),
                "language": draw(st.sampled_from(["en", " cy "])),
                "attributes": draw(
                    st.sampled_from(
                        [{}, {"condition": "COPD"}, {"condition": " copd;CKD "}, {"interp": " "}]
                    )
                ),
                "flags": draw(st.frozensets(st.sampled_from([Flag.EXTREME_RESPONSE]))),
                "demo": draw(st.booleans()),
            }
        )
    return rows


def _objects(r: dict[str, Any]) -> tuple[Assessment, ScoreResult]:
    aid = f"a{r['i']}"
    assessment = Assessment(
        aid,
        Patient(r["pid"], nhs_number=r["nhs"]),
        PAM13,
        r["day"],
        {},
        language=r["language"],
        site=r["site"],
        attributes=r["attributes"],
    )
    result = ScoreResult(
        aid,
        ScoreStatus.SCORED if r["scored"] else ScoreStatus.NOT_SCORED,
        "p",
        "1",
        13,
        score=r["score"],
        level=r["level"],
        cutpoint_set=r["set"],
        demo=r["demo"],
        flags=r["flags"] | ({Flag.DEMO} if r["demo"] else set()),
        reason=None if r["scored"] else " too few answered ",
        reason_code=None if r["scored"] else "few",
    )
    return assessment, result


def _table(rows: list[dict[str, Any]]) -> ScoredTable:
    """The rows as ``pamlib score`` writes them (every attribute a column of its own)."""
    names = sorted({a for r in rows for a in r["attributes"]})
    columns: dict[str, list[str]] = {}
    for r in rows:
        assessment, result = _objects(r)
        flags = sorted(str(f) for f in result.flags)
        cells = {
            "assessment_id": assessment.id,
            "patient_id": r["pid"] or "",
            "nhs_number": r["nhs"] or "",
            "assessed_on": r["day"].isoformat(),
            "instrument": PAM13.id,
            "status": str(result.status),
            "score": "" if r["score"] is None else np.format_float_positional(r["score"], trim="-"),
            "level": "" if r["level"] is None else str(int(r["level"])),
            "cutpoint_set": r["set"] or "",
            "flags": ";".join(flags),
            "demo": "true" if r["demo"] else "false",
            "site": r["site"] or "",
            "language": r["language"],
            "reason": result.reason or "",
            "reason_code": result.reason_code or "",
        } | {a: r["attributes"].get(a, "") for a in names}
        for name, value in cells.items():
            columns.setdefault(name, []).append(value)
    return ScoredTable.from_arrow(pa.table(columns))


def _previous(rows: list[dict[str, Any]], i: int) -> int | None:
    """The documented link, brute force: the same person's (patient_id, else NHS number)
    latest earlier row with a score or level; equal dates in table order."""

    def key(r: dict[str, Any]) -> str:
        return str(r["pid"]) if r["pid"] else f"nhs:{r['nhs']}"

    me = rows[i]
    earlier = [
        j
        for j, r in enumerate(rows)
        if key(r) == key(me)
        and r["scored"]
        and (r["score"] is not None or r["level"])
        and (r["day"], j) < (me["day"], i)
    ]
    return max(earlier, key=lambda j: (rows[j]["day"], j)) if earlier else None


@rule("audit.echo", reason="says every fact a Python rule can read")
def echo(ctx: Context) -> list[Action]:
    level = None if ctx.level is None else int(ctx.level)
    previous = None if ctx.previous_level is None else int(ctx.previous_level)
    facts = (
        ctx.scored,
        ctx.score,
        level,
        ctx.previous_score,
        previous,
        ctx.change,
        ctx.transition,
        ctx.site,
        ctx.language,
        ctx.instrument,
        sorted(ctx.flags),
        sorted(ctx.attributes.items()),
        ctx.cutpoint_set,
        ctx.not_scored_reason,
        ctx.assessed_on,
    )
    return [Note(repr(facts))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=people())
def test_a_python_rule_sees_the_same_facts_from_objects_and_from_a_table(
    rows: list[dict[str, Any]],
) -> None:
    """Fault: ``Context.of`` kept a site, language, cut-point set or attribute as given
    (``" north "``, ``" copd;CKD "``, a blank attribute), a table's row stripped them: file
    rules fold text and agreed, but a Python rule comparing ``ctx.site == "north"`` chose
    differently for the same assessment in a service and over an export."""
    engine = Engine([echo], CATALOGUE)
    from_table = list(ContextColumns.from_scored(_table(rows)).contexts())
    made = [_objects(r) for r in rows]
    for i in range(len(rows)):
        j = _previous(rows, i)
        context = Context.of(*made[i], made[j][1] if j is not None else None)
        assert engine.evaluate(context).notes == engine.evaluate(from_table[i]).notes


_RANGE = st.fixed_dictionaries(
    {}, optional={"min": st.sampled_from([0, 47.0, 47.05, 55.2]), "max": st.sampled_from([67.0])}
).filter(bool)
_CHANGE = (
    st.fixed_dictionaries(
        {},
        optional={"min": st.sampled_from([-5.4, 0, 2.9, 3, 3.1]), "max": st.sampled_from([3, 5.4])},
    )
    .filter(bool)
    .filter(lambda r: r.get("min", -100) <= r.get("max", 100))
)
_CONDITIONS = st.fixed_dictionaries(
    {},
    optional={
        "level": st.lists(st.integers(1, 4), min_size=1, max_size=2, unique=True),
        "previous_level": st.lists(st.integers(1, 4), min_size=1, max_size=2, unique=True),
        "score": _RANGE,
        "previous_score": _RANGE,
        "change": _CHANGE,
        "transition": st.lists(
            st.sampled_from(["up", "down", "same", "none"]), min_size=1, max_size=2, unique=True
        ),
        "scored": st.booleans(),
        "site": st.sampled_from(["north", ["NORTH", "south"], " South "]),
        "language": st.sampled_from(["en", "CY"]),
        "flags": st.lists(st.sampled_from(["demo", "extreme-response"]), min_size=1, unique=True),
        "attributes": st.sampled_from(
            [{"condition": "copd"}, {"condition": True}, {"interp": False}, {"condition": ["ckd"]}]
        ),
    },
)
_ACTIONS = st.one_of(
    st.builds(lambda p: {"recommend": p}, st.sampled_from(sorted(CATALOGUE))),
    st.builds(lambda p: {"suppress": p}, st.sampled_from([*sorted(CATALOGUE), "*"])),
    st.builds(lambda m: {"reassess_after_months": m}, st.integers(1, 13)),
)


@st.composite
def rule_files(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Rules with every kind of condition, in ``when`` and ``unless``; few priorities."""
    tables = []
    for k in range(draw(st.integers(0, 5))):
        table: dict[str, Any] = {"id": f"audit.r{k}", "priority": draw(st.integers(-1, 1))}
        table["reason"] = "audit"
        for part in ("when", "unless"):
            conditions = draw(_CONDITIONS)
            if conditions:
                table[part] = conditions
        table["then"] = draw(st.lists(_ACTIONS, min_size=1, max_size=2))
        tables.append(table)
    return tables


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables=rule_files(), rows=people())
def test_tailoring_a_table_is_tailoring_each_assessment_as_objects(
    tables: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> None:
    """The strongest oracle for the columnar path: every row of ``tailor`` equals
    ``Engine.evaluate`` of that assessment as objects, with the previous result the
    documented link picks (written here by brute force)."""
    engine = Engine(parse_rules(toml_file(tables), "audit.toml").rules, CATALOGUE)
    tailored = tailor(_table(rows), engine).to_arrow()
    got = list(
        zip(
            *(tailored.column(c).to_pylist() for c in ("recommended_pathways", "reassess_by")),
            tailored.column("recommendation_rules").to_pylist(),
            tailored.column("no_pathway_reason").to_pylist(),
            strict=True,
        )
    )
    made = [_objects(r) for r in rows]
    for i in range(len(rows)):
        j = _previous(rows, i)
        outcome = engine.evaluate(Context.of(*made[i], made[j][1] if j is not None else None))
        pathways, rule_ids, _ = outcome_columns(outcome)
        expected = (
            pathways.split(";") if pathways else [],
            outcome.reassess_by,
            rule_ids.split(";") if rule_ids else [],
            outcome.no_pathway_reason,
        )
        assert got[i] == expected


# -- a context that contradicts itself ---------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "where"),
    [
        ({"scored": False, "level": 2}, "context: scored"),
        ({"scored": False, "score": 50.0}, "context: scored"),
        ({"score": 150.0, "level": 4}, "context: score"),
        ({"score": math.inf, "level": 4}, "context: score"),
        ({"score": -3.0, "level": 1}, "context: score"),
        ({"score": 50.0, "previous_score": 100.06}, "context: previous_score"),
    ],
)
def test_a_context_that_contradicts_itself_is_refused(facts: dict[str, Any], where: str) -> None:
    """Fault: an unscored context given a level was tailored with that level's pathways (the
    state look-up matched ``level = 2`` for it), and a score of 150 or inf matched score
    ranges: neither can come from a table, whose reader refuses or drops them."""
    with pytest.raises(ValidationError) as info:
        Context(PRIVATE, **facts)
    assert [p.where for p in info.value.problems] == [where]
    assert PRIVATE not in str(info.value)
    assert "150" not in str(info.value)


def test_scores_that_report_on_the_scale_are_still_taken() -> None:
    assert Context("a", score=100.04, level=4).score == 100.0
    assert Context("a", score=-0.04, level=1).score == 0.0
    assert Context("a", score=math.nan, level=2).score is None  # missing, as a table has it


# -- a table whose level contradicts its score -------------------------------------------------


def _rows(*cells: tuple[str, str, str]) -> list[dict[str, str]]:
    return [
        {
            "assessment_id": f"{PRIVATE}-{k}",
            "patient_id": PRIVATE,
            "assessed_on": f"2025-01-{k + 1:02d}",
            "status": "scored",
            "instrument": "PAM-13",
            "score": score,
            "level": level,
            "cutpoint_set": cutpoints,
        }
        for k, (score, level, cutpoints) in enumerate(cells)
    ]


def _arrow(rows: list[dict[str, str]]) -> ScoredTable:
    return ScoredTable.from_arrow(pa.table({k: [r[k] for r in rows] for k in rows[0]}))


BAD_LEVELS = _rows(
    ("47.05", "1", "current"),  # reported 47.1: level 2
    ("80", "1", "current"),
    ("70", "4", "hibbard-2005"),  # level 3 under the original cut points
    ("50", "", " current "),  # a score and a set, no level: its level is known
    ("", "3", "current"),  # no score: nothing to compare (kept)
    ("80", "1", ""),  # no set named: nothing to compare (kept)
    ("80", "1", "some-other-set"),  # not registered here: nothing to compare (kept)
    ("47.04", "1", "current"),  # agrees
)


@pytest.mark.parametrize("form", ["table", "rows", "columns", "recommend_rows"])
def test_a_level_its_score_contradicts_is_refused(form: str) -> None:
    """Fault: tailoring trusted a table's level column: a row scored 80 with level 1 got the
    level-1 pathways, and ``score = { min = 47.1 }`` and ``level = 1`` both held for 47.05 at
    level 1. A provider's result with such a level is refused at scoring; a table (a file, a
    DataFrame) is now refused alike, by row, quoting no value."""
    engine = Engine(parse_rules(toml_file([]), "empty.toml").rules, CATALOGUE)
    columns = {k: [r[k] for r in BAD_LEVELS] for k in BAD_LEVELS[0]}
    run: dict[str, Callable[[], object]] = {
        "table": lambda: tailor(_arrow(BAD_LEVELS), engine),
        "rows": lambda: apply_recommendations(BAD_LEVELS, engine),
        "columns": lambda: apply_recommendations(columns, engine),
        "recommend_rows": lambda: recommend_rows(BAD_LEVELS, engine),
    }
    with pytest.raises(ValidationError) as info:
        run[form]()
    found = [(p.where.rsplit(": ", 1)[-1], p.code) for p in info.value.problems]
    assert found == [(f"row {n}", "level-mismatch") for n in (1, 2, 3, 4)]
    assert PRIVATE not in str(info.value)
    assert "80" not in str(info.value)
    assert "47.05" not in str(info.value)


@settings(max_examples=80, deadline=None)
@given(
    score=st.sampled_from(SCORES) | st.floats(0, 100),
    set_id=st.sampled_from(sorted(SETS)),
    level=st.integers(1, 4),
)
def test_a_row_is_tailored_exactly_when_its_level_is_its_scores(
    score: float, set_id: str, level: int
) -> None:
    engine = Engine([], CATALOGUE)
    rows = _rows((np.format_float_positional(score, trim="-"), str(level), set_id))
    if SETS[set_id].level(score) == level:
        assert apply_recommendations(rows, engine)["reassess_by"] == ["2025-07-01"]
    else:
        with pytest.raises(ValidationError, match="contradicts"):
            apply_recommendations(rows, engine)


def test_explain_reads_a_table_as_tailoring_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scored.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(BAD_LEVELS[0]))
        writer.writeheader()
        writer.writerows(BAD_LEVELS)
    assert main(["rules", "explain", "--input", str(path), "--assessment-id", f"{PRIVATE}-7"]) == 1
    err = capsys.readouterr().err
    assert "level-mismatch" in err or "contradicts" in err
    assert "Traceback" not in err
    assert PRIVATE not in err


# -- cut-point sets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "decimals", "where"),
    [
        ((47.05, 55.1, 67.0), 1, "x"),  # finer than the set's precision: range_of was wrong
        ((47.0, 55.1, 67.0), -1, "x: decimals"),
        ((47.0, 55.1, 67.0), 400, "x: decimals"),  # was an OverflowError on first use
        ((47.0, 55.1, 67.0), True, "x: decimals"),
        ((47.0, 55.1, 67.0), 2.5, "x: decimals"),
        ((47.0, 55.1, math.inf), 1, "x"),
        ((47.0, math.nan, 67.0), 1, "x"),
        ((True, 55.1, 67.0), 1, "x"),
        ((47.0, 47.0, 67.0), 1, "x"),
    ],
)
def test_a_cutpoint_set_that_would_band_wrongly_is_refused(
    bounds: Any, decimals: Any, where: str
) -> None:
    """Fault: ``(47.05, 55.1, 67.0)`` at one decimal was taken, and said level 2 starts at
    47.2 (``range_of``) while 47.1 is level 2; a negative or fractional ``decimals``, a bool,
    or an infinite bound were taken too."""
    with pytest.raises(ValidationError) as info:
        CutpointSet("x", bounds, decimals=decimals)
    assert [p.where for p in info.value.problems] == [where]


@pytest.mark.parametrize("bounds", [(40.0, 50.0, 150.0), (-5.0, 50.0, 60.0), (40.0, 50.0, 100.0)])
def test_a_set_off_the_score_scale_cannot_be_registered(bounds: tuple[float, ...]) -> None:
    """Fault: a plugin's set with a bound past 100 silently never gave level 4 (and one below
    0 never level 1): registered for PAM scores, a set bands the 0–100 scale."""
    with pytest.raises(ValidationError, match="invalid cut-point set"):
        CutpointRegistry().register(CutpointSet("x", bounds))


def test_good_sets_still_register_and_band() -> None:
    registry = CutpointRegistry.of([CURRENT, HIBBARD_2005, CutpointSet("w", [47, 55, 67], 0)])
    whole = registry.get("w")
    assert hash(whole) == hash(CutpointSet("w", (47, 55, 67), 0))  # a list became a tuple
    assert whole.range_of(ActivationLevel.LEVEL_2) == (48.0, 55)


# -- Python rules and the command line ---------------------------------------------------------


def test_a_python_rules_unknown_pathway_is_not_quoted() -> None:
    """Fault: the error quoted the pathway a Python rule returned; made from the context
    (an attribute, the assessment id) it put a person's data into logs."""

    @rule("audit.leaky", reason="a pathway made from the context")
    def leaky(ctx: Context) -> list[Action]:
        return [Recommend(ctx.attributes["name"] + ctx.assessment_id)]

    engine = Engine([leaky], CATALOGUE)
    with pytest.raises(RuleError) as info:
        engine.evaluate(Context(PRIVATE, score=50.0, level=2, attributes={"name": "Jane Doe"}))
    (problem,) = info.value.problems
    assert (problem.where, problem.code) == (
        "rule 'audit.leaky': result[0].pathway",
        "unknown-pathway",
    )
    text = str(info.value)
    assert PRIVATE not in text
    assert "Jane" not in text
    assert "health-coaching" in text  # what is known is still said


@pytest.mark.parametrize(
    "argv",
    [
        ["--score", "80", "--level", "1"],
        ["--score", "47.05", "--level", "1"],
        ["--score", "70", "--level", "4", "--cutpoint-set", "hibbard-2005"],
        ["--level", "2", "--previous-score", "80", "--previous-level", "1"],
    ],
)
def test_explain_refuses_a_level_its_score_contradicts(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: ``--score 80 --level 1`` explained the level-1 pathways for a score of 80."""
    assert main(["rules", "explain", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pamlib: error: ")
    assert "is not the level of" in err
    assert "Traceback" not in err


def test_explain_still_takes_a_level_its_score_has(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "explain", "--score", "47.05", "--level", "2"]) == 0
    assert "level 2, score 47.1" in capsys.readouterr().out


def test_a_bound_of_minus_zero_reads_as_zero() -> None:
    """Cosmetic fault: ``change = { max = -0.0 }`` was shown as ``change ≤ -0``."""
    text = 'format = 1\n[[rule]]\nid = "r"\nreason = "x"\nwhen = { change = { max = -0.0 } }\n'
    (parsed,) = parse_rules(text + 'then = [{ note = "n" }]\n', "z.toml").rules
    assert conditions_as_text(parsed.when) == ["change ≤ 0"]
