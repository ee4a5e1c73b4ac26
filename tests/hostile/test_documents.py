"""Hostile JSON and TOML documents fail with one located problem, never a Python error."""

from __future__ import annotations

import pytest

from pamlib._documents import MAX_DEPTH, DocumentError, decode_utf8, parse_json, parse_toml


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[" * 3000 + "]" * 3000, "too-deep"),
        ('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), "too-deep"),
        ("1" * 5000, "json"),
        ("[1,2", "json"),
    ],
    ids=["deep-arrays", "deep-objects", "huge-integer", "syntax"],
)
def test_case_09_hostile_json_is_a_located_problem(text: str, code: str) -> None:
    with pytest.raises(DocumentError) as info:
        parse_json(text, "x.json")
    assert info.value.problem.code == code
    assert info.value.problem.where.startswith("x.json")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("a=" + "[" * 3000 + "]" * 3000, "too-deep"),
        ("a=" + "1" * 5000, "toml"),
        ("a=[", "toml"),
    ],
    ids=["deep-arrays", "huge-integer", "syntax"],
)
def test_case_09_hostile_toml_is_a_located_problem(text: str, code: str) -> None:
    with pytest.raises(DocumentError) as info:
        parse_toml(text, "x.toml")
    assert info.value.problem.code == code


def test_nesting_at_the_limit_is_accepted() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json(text, "x.json") is not None


def test_case_09_invalid_utf8_is_a_located_problem() -> None:
    with pytest.raises(DocumentError) as info:
        decode_utf8(b'{"a": "\xff"}', "x.json")
    assert info.value.problem.code == "encoding"
