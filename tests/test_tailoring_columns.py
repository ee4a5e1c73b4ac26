"""Tailoring over columns: masks follow a plain oracle, and the one-assessment API (a context,
a condition, a range, an outcome) is a batch of one through the same columns."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pamlib.levels import round_half_away
from pamlib.tailoring import (
    BUILTIN_PATHWAYS,
    Context,
    Engine,
    Note,
    Recommend,
    add_months,
    parse_rules,
    rule,
)
from pamlib.tailoring._conditions import Range
from pamlib.tailoring.columns import ContextColumns, add_months_array
from pamlib.tailoring.context import round_one
from pamlib.tailoring.rows import link_previous
from pamlib.tailoring.rules import Action, Rule
from tests.tailoring_oracle import actions_of, holds
from tests.tailoring_strategies import contexts, rule_tables, toml_file

CATALOGUE = {p.id: p for p in BUILTIN_PATHWAYS}


@given(tables=rule_tables(), ctxs=st.lists(contexts(), max_size=12))
def test_masks_follow_the_oracle(tables: list[dict[str, Any]], ctxs: list[Context]) -> None:
    cols = ContextColumns.from_contexts(ctxs)
    for r in parse_rules(toml_file(tables), "m.toml").rules:
        assert r.when.mask(cols).tolist() == [holds(r.when, c) for c in ctxs]


@given(tables=rule_tables(), ctx=contexts())
def test_one_context_is_a_batch_of_one(tables: list[dict[str, Any]], ctx: Context) -> None:
    for r in parse_rules(toml_file(tables), "m.toml").rules:
        assert r.when.matches(ctx) is holds(r.when, ctx)
        assert r.evaluate(ctx) == actions_of(r, ctx)


@given(
    low=st.none() | st.integers(0, 100).map(float),
    high=st.none() | st.integers(0, 100).map(float),
    value=st.none() | st.floats(-10, 110) | st.just(math.nan),
)
def test_range_contains_is_a_batch_of_one(
    low: float | None, high: float | None, value: float | None
) -> None:
    limits = Range(low, high)
    expected = (
        value is not None
        and not math.isnan(value)
        and (low is None or value >= low)
        and (high is None or value <= high)
    )
    assert limits.contains(value) is expected


@given(ctxs=st.lists(contexts(), max_size=8))
def test_columns_give_back_the_contexts(ctxs: list[Context]) -> None:
    cols = ContextColumns.from_contexts(ctxs)
    assert list(cols.contexts()) == ctxs
    assert [cols.context(i) for i in range(len(cols))] == ctxs  # each a batch of one
    picked = list(range(len(ctxs)))[::-2]
    assert list(cols.contexts(picked)) == [ctxs[i] for i in picked]


@given(st.floats(-1e12, 1e12) | st.integers(-(10**6), 10**6).map(lambda i: i / 20))
def test_scalar_rounding_is_the_levels_rounding(value: float) -> None:
    expected = round_half_away(value)
    got = round_one(value)
    assert got == expected
    assert math.isnan(round_one(math.nan))
    assert round_one(math.inf) == math.inf


@rule("py.coin", priority=1, reason="a Python rule reading what file rules cannot")
def coin(ctx: Context) -> list[Action] | None:
    if ctx.assessed_on is not None and ctx.assessed_on.day % 2:
        return [Recommend("peer-support"), Note(f"odd day {ctx.assessed_on.day % 4}")]
    return None


@given(tables=rule_tables(), ctxs=st.lists(contexts(), max_size=12), with_python=st.booleans())
def test_outcomes_for_many_equal_a_batch_of_one_each(
    tables: list[dict[str, Any]], ctxs: list[Context], with_python: bool
) -> None:
    rules: list[Rule] = [*parse_rules(toml_file(tables), "c.toml").rules]
    rules += [coin] if with_python else []
    engine = Engine(rules, CATALOGUE)
    cols = ContextColumns.from_contexts(ctxs)
    expected = [engine.evaluate(c) for c in ctxs]
    assert engine.evaluate_columns(cols) == expected
    assert engine.evaluate_many(ctxs) == expected
    table = engine.table_columns(cols)
    assert table["reassess_by"] == [
        o.reassess_by.isoformat() if o.reassess_by else "" for o in expected
    ]
    assert table["recommended_pathways"] == [
        ";".join(r.pathway for r in o.recommendations) for o in expected
    ]
    assert table["no_pathway_reason"] == [o.no_pathway_reason or "" for o in expected]
    reasons = zip(table["recommended_pathways"], table["no_pathway_reason"], strict=True)
    assert all(pathway or reason for pathway, reason in reasons)


@given(
    days=st.lists(st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31)), max_size=20),
    months=st.integers(-30, 60),
)
def test_add_months_array_matches_add_months(days: list[dt.date | None], months: int) -> None:
    arr = np.array([d or "NaT" for d in days], dtype="datetime64[D]").reshape(len(days))
    got = add_months_array(arr, months).astype(object).tolist()
    assert got == [None if d is None else add_months(d, months) for d in days]


def test_empty_table() -> None:
    engine = Engine([], CATALOGUE)
    cols = ContextColumns.from_rows([])
    assert len(cols) == 0
    assert engine.table_columns(cols) == {
        "recommended_pathways": [],
        "recommendation_rules": [],
        "reassess_by": [],
        "no_pathway_reason": [],
    }
    assert link_previous([], [], []) == []
