"""Contexts from objects and from scored-table rows agree; tables are linked and tailored."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.assessment import Assessment
from pamlib.errors import ValidationError
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.levels import CURRENT
from pamlib.plugins import PluginHost
from pamlib.results import Flag, ScoreResult, ScoreStatus
from pamlib.scoring.provider import FLAG_BITS, BatchScores
from pamlib.tailoring import (
    EXAMPLE_SITE_RULES,
    RECOMMENDATION_COLUMNS,
    STANDARD_COLUMNS,
    Context,
    Engine,
    apply_recommendations,
    build_engine,
    recommend_rows,
    tailor_batch,
)
from pamlib.tailoring.rows import contexts_from_rows, link_previous, summary_lines
from tests import strategies as s

PAM13 = BUILTIN_INSTRUMENTS[0]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine([EXAMPLE_SITE_RULES], host=PluginHost(load_entry_points=False, disabled=()))


def row_of(assessment: Assessment, result: ScoreResult) -> dict[str, str]:
    """A row as ``pamlib score`` writes it: every value a string, empty where absent."""

    def text(value: object) -> str:
        return "" if value is None else str(value)

    row = {
        "assessment_id": assessment.id,
        "patient_id": text(assessment.patient.id),
        "assessed_on": assessment.assessed_on.isoformat(),
        "instrument": assessment.instrument.id,
        "status": str(result.status),
        "n_answered": str(result.n_answered),
        "raw_score": text(result.raw_score),
        "theta": text(result.theta),
        "theta_se": text(result.theta_se),
        # Scores as pamlib writes them: positional digits, never ``1e-05``.
        "score": "" if result.score is None else np.format_float_positional(result.score, trim="-"),
        "score_se": text(result.score_se),
        "level": text(result.level and int(result.level)),
        "cutpoint_set": text(result.cutpoint_set),
        "flags": ";".join(sorted(str(f) for f in result.flags)),
        "provider": result.provider,
        "provider_version": result.provider_version,
        "calibration_id": text(result.calibration_id),
        "calibration_sha256": text(result.calibration_sha256),
        # A result flagged demo holds demonstration scores, as the demo column says.
        "demo": "true" if result.demo or Flag.DEMO in result.flags else "false",
        "site": text(assessment.site),
        "language": assessment.language,
        "nhs_number": text(assessment.patient.nhs_number),
        "reason": text(result.reason),
        "reason_code": text(result.reason_code),
    }
    row.update(assessment.attributes)
    return row


texts = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=8)


@st.composite
def scored_pairs(draw: st.DrawFn) -> tuple[Assessment, ScoreResult]:
    assessment = draw(s.assessments(PAM13))
    assessment = Assessment(
        assessment.id.strip() or "a",
        assessment.patient,
        PAM13,
        assessment.assessed_on,
        assessment.responses,
        site=draw(st.none() | texts),
        language=assessment.language,
        attributes=draw(
            st.dictionaries(st.sampled_from(["condition", "interpreter", "age_band"]), texts)
        ),
    )
    result = draw(s.score_results())
    # Text columns are NumPy strings, which drop trailing NULs; no CSV cell holds one.
    result = attrs.evolve(
        result,
        reason=result.reason and result.reason.replace("\0", ""),
        reason_code=result.reason_code and result.reason_code.replace("\0", ""),
    )
    if result.scored:
        score = draw(st.none() | st.floats(0, 100))
        level = CURRENT.level(score) if score is not None else None
        result = ScoreResult(
            assessment.id,
            ScoreStatus.SCORED,
            "p",
            "1",
            result.n_answered,
            score=score,
            level=level,
            cutpoint_set="current" if level else None,
            demo=result.demo,
            flags=result.flags,
        )
    return assessment, result


def earlier_of_same_patient(
    now: tuple[Assessment, ScoreResult], before: tuple[Assessment, ScoreResult] | None
) -> tuple[Assessment, ScoreResult] | None:
    """``before`` made a previous row ``Context.from_row`` takes: the same patient's other
    assessment, dated no later."""
    if before is None:
        return None
    assessment = attrs.evolve(
        before[0],
        id=f"{now[0].id}-before",
        patient=now[0].patient,
        assessed_on=min(before[0].assessed_on, now[0].assessed_on),
    )
    return assessment, before[1]


@given(now=scored_pairs(), before=st.none() | scored_pairs())
def test_objects_and_rows_give_the_same_context(
    now: tuple[Assessment, ScoreResult], before: tuple[Assessment, ScoreResult] | None
) -> None:
    before = earlier_of_same_patient(now, before)
    from_objects = Context.of(now[0], now[1], before[1] if before else None)
    from_rows = Context.from_row(row_of(*now), row_of(*before) if before else None)
    assert from_rows == from_objects


def test_row_columns_and_attributes() -> None:
    row = dict.fromkeys(STANDARD_COLUMNS, "") | {
        "assessment_id": "a1",
        "patient_id": "p1",
        "assessed_on": "2025-03-01",
        "status": "scored",
        "score": "47.04",
        "level": "1",
        "flags": "extreme-response, missing-items",
        "demo": "True",
        "site": " North ",
        "nhs_number": "9990000018",
        "condition": "COPD",
        "empty": "  ",
    }
    ctx = Context.from_row(row)
    assert ctx.score == 47.0
    assert ctx.flags == {"extreme-response", "missing-items", "demo"}
    assert ctx.site == "North"
    assert dict(ctx.attributes) == {"condition": "COPD"}  # identifiers never become attributes
    raw = row | {"score": "", "level": "", "raw_score": "39", "flags": "raw-only", "demo": "false"}
    assert Context.from_row(raw).scored
    assert not Context.from_row(raw | {"status": "not-scored", "reason": "empty"}).scored
    with pytest.raises(ValidationError) as info:  # the status is said, as in every table
        Context.from_row(raw | {"status": ""})
    assert [(p.where, p.code) for p in info.value.problems] == [("scored row: row 1", "bad-status")]


_BAD_CELLS = st.sampled_from(
    [
        {"score": "fifty"},
        {"score": "101"},
        {"level": "7"},
        {"assessed_on": "2025-02-30"},
        {"assessed_on": ""},
        {"demo": "maybe"},
        {"status": "done"},
        {"status": ""},
        {"patient_id": "", "nhs_number": "", "nhs_pseudonym": ""},
        {"demo": "false", "provider": "demo"},
        {"assessment_id": ""},
    ]
)


@given(
    now=scored_pairs(),
    before=st.none() | scored_pairs(),
    bad=st.lists(_BAD_CELLS, max_size=2),
    bad_before=st.lists(_BAD_CELLS, max_size=2),
)
def test_one_row_is_a_table_of_one(
    now: tuple[Assessment, ScoreResult],
    before: tuple[Assessment, ScoreResult] | None,
    bad: list[dict[str, str]],
    bad_before: list[dict[str, str]],
) -> None:
    """A row (and its previous row) gets exactly the problems a table of that one row gets."""
    before = earlier_of_same_patient(now, before)
    row = row_of(*now)
    for cells in bad:
        row |= cells
    previous = None if before is None else row_of(*before)
    if previous is not None:
        for cells in bad_before:
            previous |= cells

    def problems(one: dict[str, str], where: str) -> list[tuple[str, str, str]]:
        try:
            contexts_from_rows([one])
        except ValidationError as exc:
            return [
                (p.where.replace("rows:", f"{where}:"), p.code, p.message) for p in exc.problems
            ]
        return []

    expected = problems(row, "here")
    if previous is not None:
        expected += problems(previous, "here (previous)")
    if expected:
        with pytest.raises(ValidationError) as info:
            Context.from_row(row, previous, where="here")
        assert [(p.where, p.code, p.message) for p in info.value.problems] == expected
        return
    got = Context.from_row(row, previous, where="here")
    assert (
        attrs.evolve(got, previous_score=None, previous_level=None) == contexts_from_rows([row])[0]
    )
    if previous is not None:
        prior = contexts_from_rows([previous])[0]
        if prior.score is None and prior.level is None:
            prior = attrs.evolve(prior, scored=False)
        assert got.previous_score == (prior.score if prior.scored else None)
        assert got.previous_level == (prior.level if prior.scored else None)


def test_bad_rows_are_all_reported_without_values() -> None:
    # Tables are checked by ScoredTable, as reports check them: one rule for both readers.
    good = {
        "patient_id": "p",
        "assessed_on": "2025-01-01",
        "status": "scored",
    }
    rows = [
        good | {"assessment_id": "a1", "score": "50"},
        good | {"assessment_id": "a2", "score": "fifty", "patient_id": "secret-id"},
        good | {"assessment_id": "a3", "level": "7", "assessed_on": "2025-02-30"},
        good | {"assessment_id": "a4", "demo": "maybe", "status": "done", "score": "101"},
        good | {"assessment_id": "a1", "patient_id": "", "status": ""},
    ]
    with pytest.raises(ValidationError) as info:
        contexts_from_rows(rows)
    found = sorted((p.where, p.code) for p in info.value.problems)
    assert found == [
        ("rows: row 2", "bad-score"),
        ("rows: row 3", "bad-date"),
        ("rows: row 3", "bad-level"),
        ("rows: row 4", "bad-demo"),
        ("rows: row 4", "bad-score"),
        ("rows: row 4", "bad-status"),
        ("rows: row 5", "bad-status"),
        ("rows: row 5", "duplicate-assessment-id"),
        ("rows: row 5", "no-patient-key"),
    ]
    assert "secret-id" not in str(info.value)
    assert "fifty" not in str(info.value)


def brute_previous(
    keys: list[str], dates: list[dt.date | None], scored: list[bool]
) -> list[int | None]:
    out: list[int | None] = []
    for i, (k, d) in enumerate(zip(keys, dates, strict=True)):
        earlier = [
            j
            for j, (kj, dj) in enumerate(zip(keys, dates, strict=True))
            if k and kj == k and d is not None and dj is not None and scored[j] and (dj, j) < (d, i)
        ]
        out.append(max(earlier, key=lambda j: (dates[j], j)) if earlier else None)
    return out


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "p", "q"]),
            st.none() | st.dates(dt.date(2024, 1, 1), dt.date(2024, 1, 8)),
            st.booleans(),
        ),
        max_size=12,
    )
)
def test_link_previous_matches_brute_force(rows: list[tuple[str, dt.date | None, bool]]) -> None:
    keys, dates, scored = ([r[i] for r in rows] for i in range(3))
    assert link_previous(keys, dates, scored) == brute_previous(keys, dates, scored)  # type: ignore[arg-type]


def table() -> list[dict[str, str]]:
    base = dict.fromkeys(STANDARD_COLUMNS, "") | {
        "instrument": "PAM-13",
        "status": "scored",
        "demo": "false",
    }
    rows = [
        ("a1", "p1", "2024-01-10", "44.0", "1", {}),
        ("a2", "p1", "2024-07-20", "60.0", "3", {}),
        ("a3", "p2", "2024-02-01", "80.0", "4", {"condition": "COPD"}),
        ("a4", "p2", "2024-08-01", "70.3", "4", {"condition": "COPD", "interpreter": "Urdu"}),
        ("a5", "p3", "2024-03-01", "", "", {}),
    ]
    out = []
    for aid, pid, day, score, level, extra in rows:
        out.append(
            base
            | {
                "assessment_id": aid,
                "patient_id": pid,
                "assessed_on": day,
                "score": score,
                "level": level,
            }
            | extra
        )
    out[-1]["status"] = "not-scored"
    out[-1]["reason"] = "fewer than 7 items answered"
    return out


def test_apply_recommendations(engine: Engine) -> None:
    columns = apply_recommendations(table(), engine)
    assert tuple(columns) == RECOMMENDATION_COLUMNS
    assert columns["recommended_pathways"] == [
        "health-coaching",
        "health-coaching;self-management-education;peer-support",
        "riverside.breathe-easy;health-coaching;peer-support",
        "health-coaching",
        "",
    ]
    assert columns["recommendation_rules"][3] == (
        "riverside.interpreter;riverside.big-drop;pamlib.coaching-level-4;"
        "pamlib.information-detailed"
    )
    assert columns["reassess_by"] == ["2024-07-10", "2025-01-20", "2024-08-01", "2024-11-01", ""]


def test_table_order_does_not_matter(engine: Engine) -> None:
    rows = table()
    expected = dict(
        zip((r["assessment_id"] for r in rows), recommend_rows(rows, engine), strict=True)
    )
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)  # noqa: S311 - a fixed shuffle, not a secret
    for row, outcome in zip(shuffled, recommend_rows(shuffled, engine), strict=True):
        assert outcome == expected[row["assessment_id"]]


def test_apply_recommendations_from_files(tmp_path: Any) -> None:
    host = PluginHost(load_entry_points=False, disabled=())
    assert apply_recommendations(table(), [EXAMPLE_SITE_RULES], host=host) == apply_recommendations(
        table(), build_engine([EXAMPLE_SITE_RULES], host=host)
    )


def test_tailor_batch_agrees_with_rows(engine: Engine) -> None:
    rows = table()
    level = [int(r["level"] or 0) for r in rows]
    score = [float(r["score"]) if r["score"] else np.nan for r in rows]
    n = len(rows)
    flags = np.zeros(n, dtype=np.uint8)
    flags[2] = FLAG_BITS[Flag.EXTREME_RESPONSE]
    rows[2]["flags"] = "extreme-response"
    scores = BatchScores(
        scored=[r["status"] == "scored" for r in rows],
        n_answered=[13] * n,
        raw_score=[0] * n,
        mean_response=[np.nan] * n,
        theta=[np.nan] * n,
        theta_se=[np.nan] * n,
        score=score,
        score_se=[np.nan] * n,
        level=level,
        flags=flags,
        reason_code=["" if r["status"] == "scored" else "too-few" for r in rows],
        reasons={"too-few": "fewer than 7 items answered"},
    )
    outcomes = tailor_batch(
        engine,
        instrument=PAM13,
        scores=scores,
        assessment_id=[r["assessment_id"] for r in rows],
        patient_key=[r["patient_id"] for r in rows],
        assessed_on=np.array([r["assessed_on"] for r in rows], dtype="datetime64[D]"),
        site=[""] * n,
        attributes={
            "condition": [r.get("condition", "") for r in rows],
            "interpreter": [r.get("interpreter", "") for r in rows],
        },
    )
    assert outcomes == recommend_rows(rows, engine)
    lines = summary_lines(outcomes)
    assert lines[0] == "Tailored 5 assessments:"
    assert "  health-coaching: 4" in lines
    assert any(line.startswith("  no pathway (not scored (fewer than 7") for line in lines)


@given(
    pairs=st.lists(
        st.tuples(scored_pairs(), st.sampled_from(["p1", "p2", ""])), min_size=1, max_size=6
    )
)
def test_table_rows_agree_with_single_rows(
    pairs: list[tuple[tuple[Assessment, ScoreResult], str]],
) -> None:
    rows = []
    for i, ((assessment, result), pid) in enumerate(pairs):
        row = row_of(assessment, result)
        # Every row needs a patient key and its own assessment id (ScoredTable's rule): a row
        # without a patient_id is linked by a pseudonym no other row has.
        row["patient_id"], row["nhs_number"] = pid, ""
        row["nhs_pseudonym"] = "" if pid else f"alone-{i}"
        row["assessment_id"] = f"{row['assessment_id']}-{i}"
        rows.append(row)
    dates = [dt.date.fromisoformat(r["assessed_on"]) for r in rows]
    has_score = [r["status"] == "scored" and bool(r["score"] or r["level"]) for r in rows]
    keys = [r["patient_id"] or r["nhs_pseudonym"] for r in rows]
    previous = brute_previous(keys, dates, has_score)  # type: ignore[arg-type]
    expected = [
        Context.from_row(row, rows[j] if j is not None else None)
        for row, j in zip(rows, previous, strict=True)
    ]
    assert contexts_from_rows(rows) == expected


def test_demo_lines() -> None:
    from pamlib.synthetic import synthetic_cohort
    from pamlib.tailoring._demo import demo_lines

    host = PluginHost(load_entry_points=False, disabled=())
    cohort = synthetic_cohort(60, seed=3)
    raw = host.scoring_providers()["raw-sum"].score_batch(cohort.instrument, cohort.codes)
    lines = demo_lines(cohort, raw, seed=3, host=host)
    assert lines[0].startswith("Tailoring with pamlib's default rules and the example site file")
    assert lines[1].startswith("  no pathway (no activation level")
    score = np.clip((raw.raw_score - 13) / 39 * 100, 0, 100).astype(float)
    fake = attrs.evolve(raw, score=score, level=CURRENT.levels(score), demo=True)
    lines = demo_lines(cohort, fake, seed=3, on=dt.date(2030, 1, 1), host=host)
    assert any(line.startswith("  health-coaching: ") for line in lines)
    assert lines[-1] == "  reassessment overdue on 2030-01-01: 60 of 60 patients"


def test_columns_in_give_the_same_as_rows(engine: Engine) -> None:
    rows = table()
    names = dict.fromkeys(k for r in rows for k in r)
    as_columns = {k: [r.get(k) for r in rows] for k in names}
    as_arrays = {k: np.array([r.get(k) or "" for r in rows]) for k in names}
    expected = apply_recommendations(rows, engine)
    assert apply_recommendations(as_columns, engine) == expected
    assert apply_recommendations(as_arrays, engine) == expected
    with pytest.raises(ValidationError, match="differ in length"):
        apply_recommendations({"assessment_id": ["a"], "score": []}, engine)


def _scored_table(rows: list[dict[str, str]]) -> Any:
    pa = pytest.importorskip("pyarrow")
    from pamlib.tables.scored import ScoredTable

    names = dict.fromkeys(k for r in rows for k in r)
    return ScoredTable.from_arrow(pa.table({k: [r.get(k, "") for r in rows] for k in names}))


def test_tailor_adds_the_recommendation_columns_of_each_row(engine: Engine) -> None:
    """The typed table's recommendation columns, as text, are the per-row ones."""
    from pamlib.tailoring import tailor

    rows = table()
    tailored = tailor(_scored_table(rows), engine)
    expected = apply_recommendations(rows, engine)
    for name in RECOMMENDATION_COLUMNS:
        assert tailored.text(name).tolist() == expected[name]
    assert tailored.to_arrow().column("recommended_pathways").to_pylist()[1] == [
        "health-coaching",
        "self-management-education",
        "peer-support",
    ]
    assert tailored.to_arrow().column("no_pathway_reason").to_pylist()[:4] == [None] * 4
    pa = pytest.importorskip("pyarrow")
    from pamlib.tables.scored import ScoredTable

    empty = tailor(ScoredTable.from_arrow(_scored_table(rows).to_arrow().slice(0, 0)), engine)
    assert len(empty) == 0
    assert empty.to_arrow().column("recommended_pathways").type == pa.list_(pa.string())
    assert empty.to_arrow().column("reassess_by").type == "date32[day]"


def test_a_reassessment_after_the_year_9999_has_no_date(engine: Engine) -> None:
    """Dates end at 9999-12-31 (ISO text, Python's dates): a due date past it is no date, the
    same through the table, the rows and one assessment — not a failure of the whole run."""
    from pamlib.tailoring import tailor

    rows = table()
    rows[0]["assessed_on"] = "9999-12-31"
    columns = apply_recommendations(rows, engine)
    assert columns["reassess_by"][0] == ""
    assert columns["recommended_pathways"][0] == "health-coaching"
    assert columns["reassess_by"][1:] == ["2025-01-20", "2024-08-01", "2024-11-01", ""]
    tailored = tailor(_scored_table(rows), engine).to_arrow()
    assert tailored.column("reassess_by").to_pylist()[:2] == [None, dt.date(2025, 1, 20)]
    outcome = engine.evaluate(Context.from_row(rows[0]))
    assert outcome.reassess_by is None
    assert [r.pathway for r in outcome.recommendations] == ["health-coaching"]


@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(["health-coaching", "peer-support", ""]), max_size=2),
            st.sampled_from([None, "", "not scored (too few answered)", "no activation level"]),
        ),
        min_size=5,
        max_size=5,
    )
)
def test_the_no_pathway_summary_of_a_table_counts_its_rows(
    values: list[tuple[list[str], str | None]],
) -> None:
    """Counted over distinct values, the lines are those counted row by row."""
    pa = pytest.importorskip("pyarrow")
    from pamlib.tailoring.rows import no_pathway_summary, no_pathway_summary_of

    tailored = _scored_table(table()).with_columns(
        {
            "recommended_pathways": pa.array([p for p, _ in values], pa.list_(pa.string())),
            "no_pathway_reason": pa.array([r for _, r in values], pa.string()),
        }
    )
    names = ("recommended_pathways", "no_pathway_reason")
    columns = {c: tailored.text(c).tolist() for c in names}
    assert no_pathway_summary_of(tailored) == no_pathway_summary(columns)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "p", "q", "p\x00", "\x00", "p\ud800", "q "]),
            st.none() | st.dates(dt.date(2024, 1, 1), dt.date(2024, 1, 8)),
            st.booleans(),
        ),
        max_size=12,
    ),
    st.sampled_from(["object", "str", "list"]),
)
def test_linking_compares_keys_as_numpy_strings(
    rows: list[tuple[str, dt.date | None, bool]], kind: str
) -> None:
    """Keys are hashed, not sorted as text, but compare as NumPy strings do (trailing NULs
    dropped, so ``"\\x00"`` is no key); a key Arrow cannot hold (a lone surrogate) too."""
    from pamlib.tailoring.columns import link_previous_array

    keys = [r[0] for r in rows]
    dates = [r[1] for r in rows]
    scored = [r[2] for r in rows]
    given: Any = {
        "object": np.array(keys, dtype=object),
        "str": np.array(keys, dtype=np.str_).reshape(len(keys)),
        "list": keys,
    }[kind]
    days = np.array([np.datetime64(d) if d else np.datetime64("NaT") for d in dates], "M8[D]")
    linked = link_previous_array(given, days.reshape(len(keys)), scored).tolist()
    expected = brute_previous([k.rstrip("\x00") for k in keys], dates, scored)
    assert [None if j < 0 else j for j in linked] == expected


def test_tailor_reads_a_table_as_a_scored_table_does(engine: Engine) -> None:
    """tailor takes what ScoredTable.from_arrow takes (an Arrow table, a DataFrame), and one
    rule file given as its path alone; anything else is a ConfigurationError, not a bare one."""
    from pamlib.errors import ConfigurationError
    from pamlib.tailoring import tailor

    scored = _scored_table(table())
    expected = tailor(scored, engine).to_arrow()
    assert tailor(scored.to_arrow(), engine).to_arrow().equals(expected)
    host = PluginHost(load_entry_points=False, disabled=())
    one = tailor(scored, str(EXAMPLE_SITE_RULES), host=host).to_arrow()
    assert one.equals(tailor(scored, [EXAMPLE_SITE_RULES], host=host).to_arrow())
    for bad in (5, [None], None):
        with pytest.raises(ConfigurationError, match="path"):
            tailor(scored, bad, host=host)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        tailor(None, engine)
