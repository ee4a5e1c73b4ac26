"""FHIR input parsed by msgspec (the ``fhir`` extra) or by the standard library: the same values,
the same rejects.

:func:`pamlib._documents.fast_json` may decline any text (the reader then takes the standard
library's way); what it accepts must be exactly what ``json`` reads. The depth check it uses,
read from the brackets of the text, must agree with the walk of the parsed value.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pamlib._documents as documents
from pamlib._documents import (
    MAX_DEPTH,
    NOT_PARSED,
    DocumentError,
    _text_too_deep,
    _too_deep,
    decode_utf8,
    fast_json,
    parse_json,
)
from pamlib.fhir import questionnaire_response, read_fhir
from pamlib.fhir.plugin import FhirFormat
from pamlib.formats.base import ReadOptions
from pamlib.plugins import PluginHost
from pamlib.testing.fhir import hostile_json, mutated
from tests.fuzz.test_fuzz_fhir import files, responses

pytest.importorskip("msgspec")

BUILTINS = PluginHost(load_entry_points=False, disabled=())


@contextmanager
def standard_library_only() -> Iterator[None]:
    """Read as a machine without msgspec does."""
    saved = documents._fast_decode, documents._fast_tried
    documents._fast_decode, documents._fast_tried = None, True
    try:
        yield
    finally:
        documents._fast_decode, documents._fast_tried = saved


def slow_json(data: bytes) -> tuple[str, Any]:
    """What the reader makes of one NDJSON line without msgspec: ('blank', None),
    ('value', canonical text) or ('problem', the problem)."""
    try:
        text = decode_utf8(data, "line 1")
        if not text.strip():
            return "blank", None
        return "value", canonical(parse_json(text, "line 1"))
    except DocumentError as exc:
        return "problem", exc.problem


def canonical(value: object) -> str:
    """A text that tells apart every difference that matters: types (1, 1.0, true), key order,
    -0.0, NaN, half surrogate pairs."""
    return json.dumps(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 2)
    | st.integers(min_value=-(2**63) - 2, max_value=-(2**63) + 2)
    | st.floats()
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)

#: Bytes that parsers disagree about, or that break JSON.
_SPLICES = [
    b"\xff",
    b"\xef\xbb\xbf",
    b"\xed\xa0\x80",
    b"\\ud800",
    b"\\udc00",
    b"NaN",
    b"-Infinity",
    b"1e400",
    b"9" * 30,
    b"9" * 4400,
    b",",
    b"]",
    b"[",
    b'"',
    b"\\",
    b"\x00",
    b"\x0c",
    b" ",
    b"\r",
]


@st.composite
def json_bytes(draw: st.DrawFn) -> bytes:
    """JSON text, valid or damaged: values of every type, hostile FHIR responses, splices."""
    kind = draw(st.sampled_from(["value", "value", "response", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    if kind == "response":
        data = hostile_json(draw(mutated(draw(responses()))))
    else:
        data = json.dumps(draw(json_values), ensure_ascii=draw(st.booleans())).encode(
            "utf-8", "surrogatepass"
        )
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(_SPLICES)) + data[at:]
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_bytes())
def test_fast_json_reads_what_json_reads_or_declines(data: bytes) -> None:
    fast = fast_json(data)
    slow = slow_json(data)
    if fast is NOT_PARSED:
        return
    assert slow == ("value", canonical(fast))


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1, "a": 2}',
        b"18446744073709551616",
        b"-9223372036854775809",
        b"1" * 4000,
        b"0.30000000000000001",
        b"-0.0",
        b'"\\u00e9\\ud83d\\ude00"',
        b'{"resourceType": "QuestionnaireResponse", "item": [{"linkId": "a[{"}]}',
    ],
)
def test_what_fast_json_reads_like_json(data: bytes) -> None:
    """Repeated keys (the last wins) and integers past 64 bits (kept exact), as ``json``."""
    fast = fast_json(data)
    assert fast is not NOT_PARSED
    assert canonical(fast) == canonical(json.loads(data))


@pytest.mark.parametrize(
    "data",
    [
        b"NaN",
        b"1e400",
        b'"\\ud800"',
        b"\xef\xbb\xbf{}",
        b"\xff",
        b"",
        b"   ",
        b"1" * 5000,
        b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_fast_json_leaves_what_it_cannot_vouch_for(data: bytes) -> None:
    assert fast_json(data) is NOT_PARSED


#: Strings that hold what the bracket count must not be fooled by.
_TRICKY = st.sampled_from(["", "[", "]", "{", "}", '"', "\\", '\\"', "[[", '"]', "\\\\", "a"])


def nested(depth: int, tricky: list[str]) -> object:
    """A value ``depth`` containers deep, with siblings and strings at every level."""
    value: object = tricky[0] if tricky else 1
    for level in range(depth):
        s = tricky[level % len(tricky)] if tricky else "x"
        value = [s, value, {}] if level % 2 else {s: value, "k" + s: [s]}
    return value


@settings(max_examples=300, deadline=None)
@given(
    depth=st.integers(0, MAX_DEPTH + 3),
    tricky=st.lists(_TRICKY, max_size=6),
    wide=st.integers(0, 80),
    ascii_only=st.booleans(),
)
def test_depth_from_the_text_agrees_with_the_walk(
    depth: int, tricky: list[str], wide: int, ascii_only: bool
) -> None:
    value = [nested(depth, tricky), [[] for _ in range(wide)]]
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert _text_too_deep(data, value) == _too_deep(value, parsed=True)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_depth_from_the_text_of_any_value(value: object) -> None:
    for wrapped in (value, [[[value]]] * 30):
        data = json.dumps(wrapped).encode()
        assert _text_too_deep(data, wrapped) == _too_deep(wrapped, parsed=True)


def outcome(path: Path) -> tuple[object, ...]:
    """Everything both reading paths make of a file, to compare parsers."""
    assessments, rejects, counts = read_fhir(path, instruments=BUILTINS.instruments())
    chunks = list(FhirFormat().read(path, ReadOptions(chunk_rows=2), host=BUILTINS))
    batches = [
        (
            b.instrument.id,
            b.assessment_id.tolist(),
            b.codes.tolist(),
            [b.location(i) for i in range(len(b))],
        )
        for c in chunks
        for b in c.batches
    ]
    plugin_rejects = [
        (r.location, r.code, r.message, dict(r.fields)) for c in chunks for r in c.rejects
    ]
    return (
        [(a.id, a.patient, a.assessed_on, a.codes().tolist(), a.site) for a in assessments],
        [(r.location, r.code, r.message, dict(r.fields)) for r in rejects],
        counts,
        batches,
        plugin_rejects,
    )


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(example=files())
def test_both_parsers_give_the_same_assessments_and_rejects(
    example: tuple[str, bytes, list[str]],
) -> None:
    suffix, data, _ = example
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in{suffix}"
        path.write_bytes(data)
        fast = outcome(path)
        with standard_library_only():
            slow = outcome(path)
    assert fast == slow


def test_without_msgspec_nothing_is_parsed_fast() -> None:
    with standard_library_only():
        assert fast_json(b"{}") is NOT_PARSED
    assert fast_json(b"{}") == {}


def test_a_valid_file_reads_the_same_with_either_parser(tmp_path: Path) -> None:
    from pamlib.identity import Patient
    from tests.test_fhir_out import sample

    lines = [
        json.dumps(questionnaire_response(sample(id=f"A{i}", patient=Patient(f"P{i}"))))
        for i in range(5)
    ]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fast = outcome(path)
    with standard_library_only():
        assert outcome(path) == fast
    assert len(fast[0]) == 5  # type: ignore[arg-type]
