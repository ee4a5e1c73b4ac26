"""A Bundle read the typed way: the same rows, rejects, counts and JSON paths as the Bundle
parsed whole into dictionaries, and as the standard library reads it.

A FHIR server answers a search with one Bundle. :meth:`FhirReader._typed_bundle` decodes it
with its entries' resources left as text and reads each response as an NDJSON line is read;
anything it would not read exactly as the dictionary way does leaves the whole document to
that way. These tests hold the three readings equal on generated Bundles with hostile parts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pamlib.fhir._reader as reader_module
from pamlib.fhir import questionnaire_response
from pamlib.fhir._reader import FhirReader
from pamlib.testing.fhir import DEEP, HUGE, SURROGATE, hostile_json, hostile_values
from tests.fuzz.test_fuzz_fhir import files
from tests.test_fhir_typed import (
    BAD_PATIENT_LINE,
    BUILTINS,
    PATIENT_LINE,
    read_three_ways,
    usual_responses,
)

pytest.importorskip("msgspec")

#: What a Bundle's entries may hold besides responses.
_OTHERS = st.sampled_from(
    [
        {"resourceType": "Observation", "valueQuantity": {"value": HUGE}},
        {"resourceType": "Observation", "note": [{"text": SURROGATE}]},
        {"resourceType": "OperationOutcome", "issue": [DEEP]},
        {"resourceType": "Observation", "valueQuantity": {"value": 1e308}},
        {"resourceType": "a typo"},
        {"resourceType": 7},
        {"resourceType": "Bundle", "entry": []},
        {"no": "resourceType"},
    ]
)


@st.composite
def entries(draw: st.DrawFn) -> bytes:
    """One entry's JSON text: a response, a Patient, another resource or something that is
    not an entry with a resource; with or without a ``fullUrl``."""
    kind = draw(st.sampled_from(["response"] * 6 + ["patient"] * 2 + ["other", "odd"]))
    if kind == "odd":
        return draw(st.sampled_from([b"{}", b'{"resource":null}', b"5", b'{"resource":[]}', b"[]"]))
    if kind == "response":
        resource: Any = draw(usual_responses())
    elif kind == "patient":
        patient = draw(st.sampled_from([PATIENT_LINE, BAD_PATIENT_LINE]))
        resource = patient | {"id": f"p{draw(st.integers(0, 3))}"}
    else:
        resource = draw(_OTHERS)
    parts = [b'"resource":' + hostile_json(resource)]
    url = draw(
        st.sampled_from(
            [None, "urn:uuid:1", "https://example.org/fhir/Patient/p1", "Patient/p2", 5]
        )
    )
    if url is not None:
        parts.insert(draw(st.integers(0, 1)), b'"fullUrl":' + json.dumps(url).encode())
    if draw(st.integers(0, 5)) == 0:
        parts.append(b'"search":' + hostile_json(draw(hostile_values)))
    return b"{" + b",".join(parts) + b"}"


@st.composite
def bundles(draw: st.DrawFn) -> bytes:
    items: list[bytes] = draw(st.lists(entries(), max_size=8))
    fields = [b'"resourceType":"Bundle"', b'"type":"searchset"']
    with_entry: bool = draw(st.booleans())
    if items or with_entry:
        fields.append(b'"entry":[' + b",".join(items) + b"]")
    if draw(st.booleans()):
        relation = draw(st.sampled_from(["next", "self"]))
        fields.append(b'"link":[{"relation":"%s","url":"x"}]' % relation.encode())
    if draw(st.integers(0, 4)) == 0:
        fields.insert(
            draw(st.integers(0, len(fields))), b'"meta":' + hostile_json(draw(hostile_values))
        )
    data = b"{" + b",".join(fields) + b"}"
    if draw(st.integers(0, 9)) == 0:  # a byte that is not UTF-8, where nothing decodes it
        data = data.replace(b'"searchset"', b'"search\xffset"')
    return data


def _everything(path: Path) -> tuple[object, ...]:
    """Every row, reject and count (see :func:`tests.test_fhir_typed.everything`), and the
    pages a Bundle links to."""
    reader = FhirReader(BUILTINS.instruments(), chunk_rows=3)
    chunks = list(reader.read(path))
    rows = [chunk.rows for chunk in chunks]
    rejects = [chunk.rejects for chunk in chunks]
    counts = [chunk.n_read for chunk in chunks]
    return rows, rejects, counts, dict(reader.other_resources), reader.next_pages


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=bundles())
def test_a_bundle_read_the_typed_way_is_read_as_the_dictionary_way(data: bytes) -> None:
    typed, dictionaries, stdlib = read_three_ways(data, name="bundle.json", read=_everything)
    assert typed == dictionaries
    assert typed == stdlib


def test_a_server_s_bundle_takes_the_typed_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Bundle of usual responses and their Patients is not parsed into dictionaries whole."""
    from pamlib.identity import Patient
    from tests.test_fhir_out import sample

    entry = []
    for i in range(5):
        qr = questionnaire_response(sample(id=f"A{i}", patient=Patient(f"P{i}")))
        qr["subject"] = {"reference": f"Patient/p{i}"}
        qr.pop("contained", None)
        entry.append({"fullUrl": f"urn:uuid:r{i}", "resource": qr})
        patient = PATIENT_LINE | {"id": f"p{i}"}
        entry.append({"fullUrl": f"https://example.org/fhir/Patient/p{i}", "resource": patient})
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "entry": entry}), encoding="utf-8")

    def refused(*args: Any) -> Any:
        raise AssertionError("parsed whole into dictionaries")

    monkeypatch.setattr(reader_module.FhirReader, "_document", refused)
    reader = FhirReader(BUILTINS.instruments())
    rows = [row for chunk in reader.read(path) for row in chunk.rows]
    assert [r.patient_id for r in rows] == ["P"] * 5
    assert reader.other_resources == {"Bundle": 1, "Patient": 5}


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(example=files())
def test_hostile_json_documents_are_read_as_the_dictionary_way(
    example: tuple[str, bytes, list[str]],
) -> None:
    suffix, data, _ = example
    if suffix != ".json":
        return
    typed, dictionaries, stdlib = read_three_ways(data, name="bundle.json", read=_everything)
    assert typed == dictionaries
    assert typed == stdlib
