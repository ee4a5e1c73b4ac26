"""The engine: deterministic, order-independent, and resolving conflicts exactly as documented.

Properties run random rule sets (few ids, pathways and priorities, so ties are common) against an
oracle written from the documented resolution rules, independently of the engine's code.
"""

from __future__ import annotations

import datetime as dt
import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError, RuleError
from pamlib.hookspecs import hookimpl
from pamlib.levels import ActivationLevel
from pamlib.pathways import Pathway, TailoringOutcome
from pamlib.plugins import PluginHost
from pamlib.tailoring import (
    BUILTIN_PATHWAYS,
    EXAMPLE_SITE_RULES,
    Context,
    Engine,
    Note,
    Reassess,
    Recommend,
    SetIntensity,
    Suppress,
    add_months,
    build_engine,
    explain,
    outcome_columns,
    parse_rules,
    rule,
)
from pamlib.tailoring.rules import Action, FileRule, Rule, RuleSource
from tests.tailoring_oracle import actions_of
from tests.tailoring_strategies import contexts, rule_tables, toml_file

CATALOGUE = {p.id: p for p in BUILTIN_PATHWAYS}


def engine_of(tables: list[dict[str, Any]]) -> Engine:
    return Engine(parse_rules(toml_file(tables), "site.toml").rules, CATALOGUE)


@pytest.fixture(scope="module")
def bare_host() -> PluginHost:
    """Built-in pathways and default rules only, whatever is installed."""
    return PluginHost(load_entry_points=False, disabled=())


@pytest.fixture(scope="module")
def defaults(bare_host: PluginHost) -> Engine:
    return build_engine(host=bare_host)


# -- the oracle --------------------------------------------------------------------------------


def oracle(rules: Sequence[Rule], ctx: Context) -> dict[str, Any]:
    """What the documented rules say the outcome must be, computed the simple way."""
    ordered = sorted(rules, key=lambda r: (-r.priority, r.id))
    rec: dict[str, list[int]] = {}
    sup: dict[str, list[int]] = {}
    first: dict[str, int] = {}
    intensity: dict[str, list[tuple[int, str, int, str]]] = {}
    months: list[tuple[int, int, str]] = []
    seq = 0
    for r in ordered:
        actions = actions_of(r, ctx)
        for action in actions or ():
            seq += 1
            if isinstance(action, Recommend):
                rec.setdefault(action.pathway, []).append(r.priority)
                first.setdefault(action.pathway, seq)
                if action.intensity:
                    intensity.setdefault(action.pathway, []).append(
                        (-r.priority, r.id, seq, action.intensity)
                    )
            elif isinstance(action, Suppress):
                sup.setdefault(action.pathway, []).append(r.priority)
            elif isinstance(action, SetIntensity):
                intensity.setdefault(action.pathway, []).append(
                    (-r.priority, r.id, seq, action.value)
                )
            elif isinstance(action, Reassess):
                months.append((-r.priority, action.months, r.id))
    recommended = []
    suppressed = []
    for pathway in sorted(rec, key=first.__getitem__):
        against = sup.get(pathway, []) + sup.get("*", [])
        if not against or max(rec[pathway]) > max(against):
            recommended.append(pathway)
        else:
            suppressed.append(pathway)
    chosen = min(months)[1] if months else None
    due = None
    if ctx.assessed_on is not None and (chosen is not None or ctx.scored):
        due = add_months(ctx.assessed_on, chosen if chosen is not None else 6)
    return {
        "recommended": recommended,
        "suppressed": suppressed,
        "intensity": {p: min(intensity[p])[3] for p in recommended if p in intensity},
        "reassess_by": due,
    }


def summary(outcome: TailoringOutcome) -> dict[str, Any]:
    return {
        "recommended": [r.pathway for r in outcome.recommendations],
        "suppressed": [r.pathway for r in outcome.suppressed],
        "intensity": {r.pathway: r.intensity for r in outcome.recommendations if r.intensity},
        "reassess_by": outcome.reassess_by,
    }


# -- properties ----------------------------------------------------------------------------------


@given(tables=rule_tables(), ctx=contexts())
def test_outcome_follows_the_documented_resolution(
    tables: list[dict[str, Any]], ctx: Context
) -> None:
    engine = engine_of(tables)
    assert summary(engine.evaluate(ctx)) == oracle(engine.rules, ctx)


@given(tables=rule_tables(), ctx=contexts(), data=st.data())
def test_deterministic_and_independent_of_rule_order(
    tables: list[dict[str, Any]], ctx: Context, data: st.DataObject
) -> None:
    engine = engine_of(tables)
    first = engine.evaluate(ctx)
    assert engine.evaluate(ctx) == first
    shuffled = data.draw(st.permutations(tables))
    assert engine_of(list(shuffled)).evaluate(ctx) == first


@settings(max_examples=30)
@given(tables=rule_tables(max_rules=9), ctx=contexts(), data=st.data())
def test_independent_of_the_order_files_are_given(
    tables: list[dict[str, Any]], ctx: Context, data: st.DataObject, bare_host: PluginHost
) -> None:
    n_files = data.draw(st.integers(1, 3))
    owner = [data.draw(st.integers(0, n_files - 1)) for _ in tables]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for f in range(n_files):
            path = Path(tmp) / f"site-{f}.toml"
            path.write_text(toml_file([t for t, o in zip(tables, owner, strict=True) if o == f]))
            paths.append(path)
        outcomes = {
            repr(build_engine(order, host=bare_host).evaluate(ctx))
            for order in itertools.permutations(paths)
        }
    assert len(outcomes) == 1


@given(tables=rule_tables(), ctx=contexts())
def test_recommendation_or_an_explicit_reason(tables: list[dict[str, Any]], ctx: Context) -> None:
    outcome = engine_of(tables).evaluate(ctx)
    assert bool(outcome.recommendations) != bool(outcome.no_pathway_reason)


@given(ctx=contexts())
def test_defaults_recommend_for_every_scored_assessment_with_a_level(
    ctx: Context, defaults: Engine
) -> None:
    outcome = defaults.evaluate(ctx)
    if ctx.scored and ctx.level is not None:
        assert outcome.recommendations
        assert "health-coaching" in [r.pathway for r in outcome.recommendations]
    assert bool(outcome.recommendations) != bool(outcome.no_pathway_reason)


@given(tables=rule_tables(), ctx=contexts(), low=st.integers(-5, 5), gap=st.integers(1, 5))
def test_suppress_beats_every_lower_priority_recommend(
    tables: list[dict[str, Any]], ctx: Context, low: int, gap: int
) -> None:
    """However other rules conspire, a matching suppress wins over recommends below it."""
    rules = [
        *parse_rules(toml_file(tables), "site.toml").rules,
        FileRule("zz.rec", "recommend it", (Recommend("peer-support"),), priority=low),
        FileRule("zz.sup", "suppress it", (Suppress("peer-support"),), priority=low + gap),
    ]
    outcome = Engine(rules, CATALOGUE).evaluate(ctx)
    highest_other = max(
        (
            r.priority
            for r in rules[:-2]
            if any(
                isinstance(a, Recommend) and a.pathway == "peer-support"
                for a in actions_of(r, ctx) or ()
            )
        ),
        default=None,
    )
    if highest_other is None or highest_other <= low + gap:
        assert "peer-support" not in [r.pathway for r in outcome.recommendations]
        assert "peer-support" in [r.pathway for r in outcome.suppressed]


@given(tables=rule_tables(), ctx=contexts())
def test_every_trace_names_a_rule_and_lost_actions_name_the_winner(
    tables: list[dict[str, Any]], ctx: Context
) -> None:
    engine = engine_of(tables)
    outcome = engine.evaluate(ctx)
    ids = {r.id for r in engine.rules}
    for rec in (*outcome.recommendations, *outcome.suppressed):
        assert rec.trace
        for t in rec.trace:
            assert t.rule_id in ids
            assert t.overridden_by is None or t.overridden_by in ids
        decisive = [t for t in rec.trace if t.action in ("recommend", "suppress") and t.applied]
        wanted = "recommend" if rec in outcome.recommendations else "suppress"
        assert {t.action for t in decisive} == {wanted}
    _, rule_ids, _ = outcome_columns(outcome)
    assert set(filter(None, rule_ids.split(";"))) <= ids
    for rec in outcome.recommendations:
        assert any(t.rule_id in rule_ids.split(";") for t in rec.trace)


# -- worked cases --------------------------------------------------------------------------------


def test_equal_priority_suppress_beats_recommend() -> None:
    engine = engine_of(
        [
            {"id": "a", "reason": "r", "then": [{"recommend": "peer-support"}]},
            {"id": "b", "reason": "s", "then": [{"suppress": "peer-support"}]},
        ]
    )
    outcome = engine.evaluate(Context("x", score=60, level=3))
    assert outcome.recommendations == ()
    (suppressed,) = outcome.suppressed
    assert {(t.rule_id, t.overridden_by) for t in suppressed.trace} == {("a", "b"), ("b", None)}
    assert (
        outcome.no_pathway_reason == "every recommended pathway was suppressed: peer-support by b"
    )


def test_higher_priority_recommend_beats_suppress_and_wildcard() -> None:
    engine = engine_of(
        [
            {"id": "a", "priority": 5, "reason": "r", "then": [{"recommend": "peer-support"}]},
            {"id": "b", "priority": 4, "reason": "s", "then": [{"suppress": "*"}]},
            {"id": "c", "reason": "t", "then": [{"recommend": "health-coaching"}]},
        ]
    )
    outcome = engine.evaluate(Context("x", score=60, level=3))
    assert [r.pathway for r in outcome.recommendations] == ["peer-support"]
    assert [r.pathway for r in outcome.suppressed] == ["health-coaching"]
    wildcard = next(t for t in outcome.trace if t.rule_id == "b")
    assert wildcard.applied  # it won the health-coaching contest


def test_settings_tie_broken_by_rule_id_and_reassess_by_shorter_interval() -> None:
    engine = engine_of(
        [
            {"id": "b", "reason": "r", "then": [{"recommend": "peer-support", "intensity": "B"}]},
            {"id": "a", "reason": "s", "then": [{"pathway": "peer-support", "intensity": "A"}]},
            {"id": "c", "reason": "t", "then": [{"reassess_after_months": 9}]},
            {"id": "d", "reason": "u", "then": [{"reassess_after_months": 7}]},
        ]
    )
    outcome = engine.evaluate(Context("x", score=60, level=3, assessed_on=dt.date(2025, 1, 31)))
    assert outcome.recommendations[0].intensity == "A"
    assert outcome.reassess_by == dt.date(2025, 8, 31)
    assert outcome_columns(outcome) == ("peer-support", "a;b;d", "2025-08-31")


def test_unscored_assessment_gets_no_date_unless_a_rule_sets_one() -> None:
    ctx = Context("x", scored=False, assessed_on=dt.date(2025, 1, 1), not_scored_reason="empty")
    assert engine_of([]).evaluate(ctx).reassess_by is None
    rescue = [
        {
            "id": "retry",
            "reason": "ask again soon",
            "when": {"scored": False},
            "then": [{"reassess_after_months": 1}],
        }
    ]
    outcome = engine_of(rescue).evaluate(ctx)
    assert outcome.reassess_by == dt.date(2025, 2, 1)
    assert outcome.no_pathway_reason is not None
    assert outcome.no_pathway_reason.startswith("not scored (empty)")


def test_raw_totals_have_no_level_and_say_so(bare_host: PluginHost) -> None:
    outcome = build_engine(host=bare_host).evaluate(Context("x", flags={"raw-only"}))
    assert outcome.recommendations == ()
    assert "no activation level" in str(outcome.no_pathway_reason)


def test_example_site_file(bare_host: PluginHost) -> None:
    engine = build_engine([EXAMPLE_SITE_RULES], host=bare_host)
    ctx = Context(
        "a1",
        score=50.3,
        level=2,
        previous_score=44.0,
        previous_level=1,
        assessed_on=dt.date(2025, 3, 1),
        attributes={"condition": "copd", "interpreter": "Polish"},
    )
    outcome = engine.evaluate(ctx)
    assert [r.pathway for r in outcome.recommendations] == [
        "health-coaching",
        "self-management-education",
    ]
    assert [r.pathway for r in outcome.suppressed] == ["riverside.breathe-easy"]
    assert "Book an interpreter for every session." in outcome.recommendations[0].notes
    text = engine.explain(ctx)
    assert "x recommend — riverside.copd-breathe-easy" in text
    assert "overridden by riverside.interpreter" in text
    assert "Reassess by 2025-09-01: 6 months, the default interval" in text
    assert engine.pathways["riverside.breathe-easy"].concept is not None


# -- Python rules and plugins ----------------------------------------------------------------


@rule("py.big-rise", priority=20)
def big_rise(ctx: Context) -> list[Action] | None:
    """The score rose by 10 points or more."""
    if ctx.change is not None and ctx.change >= 10:
        return [Note("Celebrate the improvement."), Recommend("peer-support")]
    return None


class SitePlugin:
    def __init__(self, *sources: RuleSource) -> None:
        self.sources = sources

    @hookimpl
    def pamlib_register_rules(self, register: Any) -> None:
        for source in self.sources:
            register(source)

    @hookimpl
    def pamlib_register_pathways(self, register: Any) -> None:
        register(Pathway("walking-group", "Walking group"))


def test_python_rules_and_files_in_one_evaluation(tmp_path: Path) -> None:
    site = tmp_path / "walk.toml"
    site.write_text(
        toml_file(
            [
                {
                    "id": "site.walk",
                    "priority": 30,
                    "reason": "walking helps",
                    "when": {"level": [3, 4]},
                    "then": [{"recommend": "walking-group"}, {"suppress": "peer-support"}],
                }
            ]
        )
    )
    host = PluginHost(
        load_entry_points=False, disabled=(), plugins={"site": SitePlugin(site, big_rise)}
    )
    engine = build_engine(host=host)
    assert engine.sources["py.big-rise"] == "plugin site"
    outcome = engine.evaluate(Context("a", score=70, level=4, previous_score=55, previous_level=3))
    assert [r.pathway for r in outcome.recommendations] == ["walking-group", "health-coaching"]
    assert [r.pathway for r in outcome.suppressed] == ["peer-support"]
    assert "Celebrate the improvement." in outcome.notes


def test_python_rule_failures_name_the_rule() -> None:
    @rule("py.broken", reason="always fails")
    def broken(ctx: Context) -> None:
        raise KeyError("nope")

    @rule("py.junk", reason="returns junk")
    def junk(ctx: Context) -> Any:
        return ["recommend everything"]

    @rule("py.ghost", reason="unknown pathway")
    def ghost(ctx: Context) -> Any:
        return [Recommend("ghost-pathway")]

    for bad, code in ((broken, "rule-failed"), (junk, "action"), (ghost, "unknown-pathway")):
        with pytest.raises(RuleError) as info:
            Engine([bad], CATALOGUE).evaluate(Context("a", score=50, level=2))
        (problem,) = info.value.problems
        assert problem.code == code
        assert bad.id in problem.where


def test_bad_python_rules_are_rejected() -> None:
    with pytest.raises(RuleError, match="reason"):

        @rule("py.silent")
        def silent(ctx: Context) -> None:
            return None

    with pytest.raises(RuleError, match="id"):
        rule("has space", reason="x")(lambda ctx: None)


def test_a_failing_rules_hook_stops_tailoring() -> None:
    class Failing:
        @hookimpl
        def pamlib_register_rules(self, register: Any) -> None:
            raise RuntimeError("config server down")

    host = PluginHost(load_entry_points=False, disabled=(), plugins={"failing": Failing()})
    with pytest.raises(ConfigurationError, match="plugin 'failing'"):
        build_engine(host=host)


def test_plugin_registering_junk_is_reported() -> None:
    host = PluginHost(load_entry_points=False, disabled=(), plugins={"odd": SitePlugin(42)})  # type: ignore[arg-type]
    with pytest.raises(RuleError) as info:
        build_engine(host=host)
    assert any(p.where == "plugin odd" for p in info.value.problems)


def test_default_rules_can_be_switched_off() -> None:
    host = PluginHost(load_entry_points=False, disabled=("pamlib.tailoring.default_rules",))
    engine = build_engine(host=host)
    assert engine.rules == ()
    outcome = engine.evaluate(Context("a", score=50, level=2, assessed_on=dt.date(2025, 1, 1)))
    assert outcome.no_pathway_reason == "no rule recommends a pathway at level 2 with these facts"
    assert outcome.reassess_by == dt.date(2025, 7, 1)


def test_defaults_cover_the_public_guidance(bare_host: PluginHost) -> None:
    engine = build_engine(host=bare_host)
    text = {level: explain(engine.evaluate(Context("a", level=level))) for level in ActivationLevel}
    assert "very small" in text[ActivationLevel.LEVEL_1]
    assert "small, simple chunks" in text[ActivationLevel.LEVEL_1]
    assert "small, simple chunks" in text[ActivationLevel.LEVEL_2]
    assert "small, simple chunks" not in text[ActivationLevel.LEVEL_3]
    assert "relapse plan" in text[ActivationLevel.LEVEL_4]
    demo = engine.evaluate(Context("a", level=2, flags={"demo"}))
    assert any("NOT a PAM score" in n for n in demo.notes)


def test_evaluate_many_matches_evaluate(bare_host: PluginHost) -> None:
    engine = build_engine([EXAMPLE_SITE_RULES], host=bare_host)
    ctxs = [
        Context(f"a{i}", score=s, level=lv, assessed_on=dt.date(2025, 1, 1 + i))
        for i, (s, lv) in enumerate([(40.0, 1), (40.0, 1), (60.0, 3), (40.0, 1)])
    ]
    assert engine.evaluate_many(ctxs) == [engine.evaluate(c) for c in ctxs]


def test_direct_engine_checks_file_rules_pathways() -> None:
    rules = parse_rules(
        '[[rule]]\nid = "a"\nreason = "r"\nthen = [{ recommend = "ghost" }, { suppress = "*" }]\n',
        "d.toml",
    ).rules
    with pytest.raises(RuleError) as info:
        Engine(rules, CATALOGUE)
    assert [(p.where, p.code) for p in info.value.problems] == [
        ("d.toml: rule 'a': then[0].recommend", "unknown-pathway")
    ]
    made = FileRule("b", "r", (Recommend("ghost"),))
    with pytest.raises(RuleError) as info:
        Engine([made], CATALOGUE)
    assert [p.where for p in info.value.problems] == ["rule 'b': then"]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 255),
            st.booleans(),
            st.integers(0, 4),
            st.sampled_from(["", "b", "a", "a\ud800"]),
        ),
        max_size=30,
    )
)
def test_groups_are_the_rows_in_sorted_order(rows: list[tuple[int, bool, int, str]]) -> None:
    """Each group is a distinct row, numbered in the rows' sorted order, with its first row;
    whether the columns are coded as digits of one number or numbered one at a time."""
    import numpy as np

    from pamlib.tailoring.columns import _text_codes
    from pamlib.tailoring.engine import _groups

    n = len(rows)
    texts, codes = _text_codes(np.array([r[3] for r in rows] or [""], dtype=object)[:n])
    assert [texts[c] for c in codes.tolist()] == [r[3] for r in rows]
    assert texts == list(dict.fromkeys(r[3] for r in rows))
    columns = [
        np.array([r[0] for r in rows], dtype=np.uint8),
        np.array([r[1] for r in rows], dtype=np.bool_),
        np.array([r[2] for r in rows], dtype=np.int8),
        codes,
    ]
    first, inverse = _groups(columns, n)
    keyed = [(r[0], r[1], r[2], int(c)) for r, c in zip(rows, codes.tolist(), strict=True)]
    order = sorted(set(keyed))
    if n > 1:
        assert inverse.tolist() == [order.index(k) for k in keyed]
        assert first.tolist() == [keyed.index(k) for k in order]
    wide = [np.array([r[0] * 10**16 for r in rows], dtype=np.int64), *columns]
    first_w, inverse_w = _groups(wide, n)
    assert (first_w.tolist(), inverse_w.tolist()) == (first.tolist(), inverse.tolist())
