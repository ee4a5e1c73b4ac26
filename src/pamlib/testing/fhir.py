"""Hostile FHIR input for tests of code that receives QuestionnaireResponses.

pamlib's own FHIR fuzz tests and the reference service's HTTP tests draw from these, and so can
a service that embeds pamlib: start from a valid resource
(:func:`pamlib.fhir.questionnaire_response`), let :func:`mutated` break up to three of its
fields, and send :func:`hostile_json` of it. Some
values cannot be written by a JSON library (an integer past Python's 4,300-digit limit, nesting
deeper than a parser allows, half a surrogate pair): they are drawn as placeholder strings that
:func:`hostile_json` swaps for the raw text.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

from pamlib.fhir.codes import ANSWER_SYSTEM

__all__ = ["DEEP", "HUGE", "SURROGATE", "hostile_json", "hostile_values", "key_paths", "mutated"]

#: Placeholders for what JSON writers cannot write; :func:`hostile_json` swaps them in.
HUGE, DEEP, SURROGATE = "\x00HUGE", "\x00DEEP", "\x00SURROGATE"

#: Values of every JSON type, and of none that a QuestionnaireResponse expects there.
hostile_values: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.just(10**400),  # valid JSON; too large for a float
    st.floats(),  # NaN and Infinity too, which Python's json writes and reads
    st.text(max_size=4),
    st.sampled_from(["completed", "NA", "3", "pam13.01", ANSWER_SYSTEM, "#patient", "Patient/p1"]),
    st.lists(st.sampled_from(["completed", "3", 3, None]), max_size=2),
    st.dictionaries(st.sampled_from(["code", "value", "reference", "url"]), st.text(max_size=3)),
    st.sampled_from([HUGE, DEEP, SURROGATE]),
)


def key_paths(value: object, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path inside ``value`` (not the root), without recursion."""
    stack = [(value, prefix)]
    while stack:
        node, here = stack.pop()
        children = (
            node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list)
            else ()
        )  # fmt: skip
        for key, child in children:
            yield (*here, key)
            stack.append((child, (*here, key)))


@st.composite
def mutated(draw: st.DrawFn, resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` (a copy) with up to three fields replaced, removed or grown."""
    resource = copy.deepcopy(resource)
    for _ in range(draw(st.integers(0, 3))):
        paths = sorted(key_paths(resource), key=repr)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = resource
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "remove", "grow"]))
        if action == "remove":
            del parent[path[-1]]
        elif action == "grow" and isinstance(parent[path[-1]], list):
            parent[path[-1]].append(draw(hostile_values))
        else:
            parent[path[-1]] = draw(hostile_values)
    return resource


def hostile_json(value: object, *, depth: int = 100) -> bytes:
    """``value`` as JSON bytes, the placeholders swapped for their raw text (``DEEP`` nested
    ``depth`` lists deep; ``SURROGATE`` also inside a longer string)."""
    text = json.dumps(value)
    raw = {
        json.dumps(HUGE): "9" * 4400,
        json.dumps(DEEP): "[" * depth + "]" * depth,
        json.dumps(SURROGATE)[1:-1]: "\\ud800",
    }
    for placeholder, replacement in raw.items():
        text = text.replace(placeholder, replacement)
    return text.encode("utf-8")
