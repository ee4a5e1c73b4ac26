"""The columnar path agrees with the one-row path: masks, contexts, outcomes and dates."""

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
from pamlib.tailoring.columns import ContextColumns, add_months_array
from pamlib.tailoring.context import round_one
from pamlib.tailoring.rows import link_previous
from pamlib.tailoring.rules import Action, Rule
from tests.tailoring_strategies import contexts, rule_tables, toml_file

CATALOGUE = {p.id: p for p in BUILTIN_PATHWAYS}


@given(tables=rule_tables(), ctxs=st.lists(contexts(), max_size=12))
def test_masks_match_row_by_row(tables: list[dict[str, Any]], ctxs: list[Context]) -> None:
    cols = ContextColumns.from_contexts(ctxs)
    for r in parse_rules(toml_file(tables), "m.toml").rules:
        assert r.when.mask(cols).tolist() == [r.when.matches(c) for c in ctxs]


@given(ctxs=st.lists(contexts(), max_size=8))
def test_columns_give_back_the_contexts(ctxs: list[Context]) -> None:
    cols = ContextColumns.from_contexts(ctxs)
    assert [cols.context(i) for i in range(len(cols))] == ctxs
    assert list(cols.contexts()) == ctxs


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
def test_columns_and_rows_give_the_same_outcomes(
    tables: list[dict[str, Any]], ctxs: list[Context], with_python: bool
) -> None:
    rules: list[Rule] = [*parse_rules(toml_file(tables), "c.toml").rules]
    rules += [coin] if with_python else []
    engine = Engine(rules, CATALOGUE)
    cols = ContextColumns.from_contexts(ctxs)
    expected = [engine.evaluate(c) for c in ctxs]
    assert engine.evaluate_columns(cols) == expected
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
