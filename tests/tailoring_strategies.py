"""Hypothesis strategies for tailoring: rule files as TOML-shaped data, and contexts.

Rules are drawn from small pools (few ids, pathways and priorities) so that ties and conflicts —
the interesting cases — are common.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

from hypothesis import strategies as st

from pamlib.levels import ActivationLevel
from pamlib.tailoring.context import Context

PATHWAYS = ("health-coaching", "self-management-education", "peer-support")
RULE_IDS = tuple(f"site.r{i:02d}" for i in range(16))
FLAGS = ("demo", "extreme-response", "missing-items")

priorities = st.integers(-2, 2)
pathway_ids = st.sampled_from(PATHWAYS)


def toml_value(value: Any) -> str:
    """``value`` as TOML (strings through JSON escapes, which TOML basic strings share)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        assert math.isfinite(value)
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_file(rules: list[dict[str, Any]], pathways: list[dict[str, Any]] | None = None) -> str:
    """A rule file: one ``[[rule]]`` (or ``[[pathway]]``) table per entry."""
    out = ["format = 1"]
    for table_name, tables in (("pathway", pathways or []), ("rule", rules)):
        for table in tables:
            out.append(f"\n[[{table_name}]]")
            out.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(out) + "\n"


actions = st.one_of(
    st.builds(lambda p: {"recommend": p}, pathway_ids),
    st.builds(
        lambda p, i: {"recommend": p, "intensity": i},
        pathway_ids,
        st.sampled_from(["low", "standard", "high"]),
    ),
    st.builds(lambda p: {"suppress": p}, pathway_ids | st.just("*")),
    st.builds(
        lambda p, i: {"pathway": p, "intensity": i},
        pathway_ids,
        st.sampled_from(["low", "standard", "high"]),
    ),
    st.builds(
        lambda p, f: {"pathway": p, "contact_frequency": f},
        pathway_ids,
        st.sampled_from(["weekly", "monthly"]),
    ),
    st.builds(lambda m: {"reassess_after_months": m}, st.integers(1, 24)),
    st.builds(lambda n: {"note": n}, st.sampled_from(["note a", "note b"])),
)

conditions = st.fixed_dictionaries(
    {},
    optional={
        "level": st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True),
        "score": st.builds(lambda m: {"min": m}, st.integers(0, 100).map(float)),
        "attributes": st.just({"condition": "COPD"}),
        "flags": st.lists(st.sampled_from(FLAGS), min_size=1, max_size=2, unique=True),
        "transition": st.sampled_from(["up", "down", "same", "none"]),
    },
)


@st.composite
def rule_tables(draw: st.DrawFn, max_rules: int = 8) -> list[dict[str, Any]]:
    """Rules with unique ids, as ``[[rule]]`` tables."""
    ids = draw(st.lists(st.sampled_from(RULE_IDS), min_size=0, max_size=max_rules, unique=True))
    tables = []
    for rule_id in ids:
        table: dict[str, Any] = {
            "id": rule_id,
            "priority": draw(priorities),
            "reason": f"because {rule_id}",
        }
        when = draw(conditions)
        if when:
            table["when"] = when
        table["then"] = draw(st.lists(actions, min_size=1, max_size=3))
        tables.append(table)
    return tables


@st.composite
def contexts(draw: st.DrawFn) -> Context:
    scored = draw(st.booleans().map(lambda b: b or draw(st.booleans())))  # mostly scored
    level = draw(st.none() | st.sampled_from(list(ActivationLevel))) if scored else None
    previous = draw(st.none() | st.sampled_from(list(ActivationLevel)))
    return Context(
        assessment_id=draw(st.sampled_from(["a1", "a2", "a3"])),
        scored=scored,
        score=draw(st.floats(0, 100)) if scored and level is not None else None,
        level=level,
        previous_score=draw(st.none() | st.floats(0, 100)),
        previous_level=previous,
        assessed_on=draw(st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31))),
        instrument="PAM-13",
        flags=draw(st.frozensets(st.sampled_from(FLAGS))),
        attributes=draw(st.sampled_from([{}, {"condition": "COPD"}, {"condition": "CKD;copd"}])),
        not_scored_reason=None if scored else "too few items answered",
    )
