"""NDJSON responses of the usual shape, decoded by msgspec into typed structures: the same rows
and the same located problems as the dictionary path and as the standard library.

The typed path (:mod:`pamlib.fhir._typed`) may leave any line to the dictionary path; what it
reads itself must be exactly the row that path makes, and everything else (rejects, their JSON
paths and messages, repeats, counts) must not change.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pamlib.fhir._reader as reader_module
from pamlib.fhir import questionnaire_response
from pamlib.fhir._reader import FhirReader
from pamlib.fhir.codes import EXT_ASSESSMENT, NHS_NUMBER_SYSTEM
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.plugins import PluginHost
from pamlib.testing.fhir import hostile_json, hostile_values, mutated
from tests.fhir_support import fhir_assessments
from tests.fuzz.test_fuzz_fhir import files
from tests.test_fhir_json import standard_library_only

pytest.importorskip("msgspec")

from pamlib.fhir import _typed

BUILTINS = PluginHost(load_entry_points=False, disabled=())
PAM13 = BUILTIN_INSTRUMENTS[0]


@contextmanager
def dictionaries_only() -> Iterator[None]:
    """Read every line the dictionary way (msgspec still parses)."""
    saved = reader_module._typed_path
    reader_module._typed_path = lambda: None
    try:
        yield
    finally:
        reader_module._typed_path = saved


def everything(path: Path) -> tuple[object, ...]:
    """Every row (all fields), every reject and the counts, as the reader gives them."""
    reader = FhirReader(BUILTINS.instruments(), chunk_rows=3)
    rows, rejects, n_read = [], [], []
    for chunk in reader.read(path):
        rows.append(chunk.rows)
        rejects.append(chunk.rejects)
        n_read.append(chunk.n_read)
    return rows, rejects, n_read, dict(reader.other_resources)


#: Ways a response may differ from the usual one; each response takes one or two.
_VARIATIONS = [
    "none",
    "blank identifier",
    "resource id",
    "server reference",
    "contained reference",
    "nhs number",
    "unanswered item",
    "meta",
    "extension",
    "status",
    "authored",
    "mutated",
]


@st.composite
def usual_responses(draw: st.DrawFn) -> dict[str, Any]:
    """Responses of the shape the typed path reads, with the variations it must get right (each
    alone, or two together), some of which make the response a reject."""
    assessment = draw(fhir_assessments(id_=draw(st.sampled_from(["A", "B", "C", "D", "E"]))))
    qr = questionnaire_response(assessment)
    variations = draw(st.lists(st.sampled_from(_VARIATIONS), min_size=1, max_size=2))
    for variation in sorted(variations, key=lambda v: v == "mutated"):  # mutated last
        if variation == "blank identifier" and "identifier" in qr:
            qr["identifier"]["value"] = " "
        elif variation == "resource id":
            qr["id"] = draw(st.sampled_from(["r1", "r2", " "]))
            if draw(st.booleans()):
                qr.pop("identifier", None)
        elif variation == "server reference":  # to a Patient line, or to nothing
            qr["subject"] = {"reference": f"Patient/p{draw(st.integers(0, 3))}"}
            qr.pop("contained", None)
        elif variation == "contained reference" and "subject" in qr:
            qr["subject"]["reference"] = draw(st.sampled_from(["#other", "#", "#patient"]))
        elif variation == "nhs number" and "contained" in qr:
            value = draw(st.sampled_from(["9434765919", "9434765910", "943 476 5919", "12"]))
            qr["contained"][0]["identifier"].insert(
                0, {"system": NHS_NUMBER_SYSTEM, "value": value}
            )
        elif variation == "unanswered item" and qr.get("item"):
            at = draw(st.integers(0, len(qr["item"])))
            qr["item"].insert(at, {"linkId": draw(st.sampled_from(["pam13.01", "x"])), "text": "t"})
        elif variation == "meta":
            qr["meta"] = {"versionId": "1", "profile": ["https://example.org/p"]}
        elif variation == "extension":
            part = draw(
                st.sampled_from(
                    [
                        {"url": "mode", "valueCode": "nonsense"},
                        {"url": "mode", "valueCode": "paper"},
                        {"url": "attribute", "extension": [{"url": "value", "valueString": "v"}]},
                        {"url": "attribute", "extension": [{"url": "name", "valueString": "n"}]},
                        {"url": "site"},
                        {"url": "other", "valueString": "x"},
                    ]
                )
            )
            qr.setdefault("extension", []).append({"url": EXT_ASSESSMENT, "extension": [part]})
        elif variation == "status":
            qr["status"] = draw(st.sampled_from(["in-progress", "amended", "stopped"]))
        elif variation == "authored":
            qr["authored"] = draw(st.sampled_from(["2024-02-30", "2024-02-01T10:00:00Z", "2024"]))
        elif variation == "mutated":
            qr = draw(mutated(qr))
    return qr


PATIENT_LINE = {
    "resourceType": "Patient",
    "identifier": [{"system": "https://pamlib.org/fhir/Id/patient-id", "value": "P"}],
}
#: A Patient line whose NHS number is wrong: responses that cite it are rejected.
BAD_PATIENT_LINE = {
    "resourceType": "Patient",
    "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9434765910"}],
}


@st.composite
def usual_files(draw: st.DrawFn) -> bytes:
    resources: list[Any] = draw(st.lists(usual_responses(), min_size=1, max_size=6))
    for _ in range(draw(st.integers(0, 2))):  # exact repeats
        resources.insert(draw(st.integers(0, len(resources))), copy.deepcopy(resources[0]))
    for i in range(draw(st.integers(0, 3))):  # Patients, before or after their responses
        patient = draw(st.sampled_from([PATIENT_LINE, PATIENT_LINE, BAD_PATIENT_LINE]))
        resources.insert(draw(st.integers(0, len(resources))), patient | {"id": f"p{i}"})
    lines = [hostile_json(r) for r in resources]
    if draw(st.integers(0, 4)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), json.dumps(draw(hostile_values)).encode())
    return b"\n".join(lines) + b"\n"


def read_three_ways(
    data: bytes, *, name: str = "in.ndjson", read: Callable[[Path], object] = everything
) -> tuple[object, object, object]:
    """What ``read`` finds in ``data`` saved as ``name``: the typed way, the dictionary way
    (msgspec parsing) and the standard library's."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        typed = read(path)
        with dictionaries_only():
            dictionaries = read(path)
        with standard_library_only():
            stdlib = read(path)
    return typed, dictionaries, stdlib


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=usual_files())
def test_typed_path_gives_the_rows_and_problems_of_the_dictionary_path(data: bytes) -> None:
    typed, dictionaries, stdlib = read_three_ways(data)
    assert typed == dictionaries
    assert typed == stdlib


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(example=files())
def test_typed_path_on_hostile_files(example: tuple[str, bytes, list[str]]) -> None:
    suffix, data, _ = example
    if suffix != ".ndjson":
        return
    typed, dictionaries, stdlib = read_three_ways(data)
    assert typed == dictionaries
    assert typed == stdlib


def test_usual_responses_take_the_typed_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark's shape is read without the dictionary path."""
    from pamlib.identity import Patient
    from tests.test_fhir_out import sample

    lines = [
        json.dumps(questionnaire_response(sample(id=f"A{i}", patient=Patient(f"P{i}"))))
        for i in range(5)
    ]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = FhirReader(BUILTINS.instruments())
    taken = []
    real = _typed.response_row

    def counting(*args: Any) -> Any:
        row = real(*args)
        taken.append(row is not None)
        return row

    monkeypatch.setattr(_typed, "response_row", counting)
    rows = [row for chunk in reader.read(path) for row in chunk.rows]
    assert len(rows) == 5
    assert taken == [True] * 5


@pytest.mark.parametrize(
    "line",
    [
        (
            b'{"resourceType":"QuestionnaireResponse","status":"completed","item":[{"linkId":"x",'
            b'"item":[]}]}'
        ),
        b'{"resourceType":"QuestionnaireResponse","meta":{"tag":[' + b"[" * 70 + b"]" * 70 + b"]}}",
        b'{"resourceType":"Patient","id":"p1"}',
        b'{"resourceType":"QuestionnaireResponse","status":"\\ud800"}',
        b'{"resourceType":"QuestionnaireResponse","unknown":1}',
        b"\xef\xbb\xbf{}",
    ],
)
def test_what_the_typed_path_leaves(line: bytes) -> None:
    """Nested items, unknown fields (of any depth), other resources, text msgspec refuses."""
    assert _typed.decode(line) is None


def _usual(**changes: Any) -> dict[str, Any]:
    from pamlib.identity import Patient
    from tests.test_fhir_out import sample

    return questionnaire_response(sample(id="A1", patient=Patient("P1"))) | changes


@pytest.mark.parametrize(
    "resources",
    [
        # A server reference to a Patient whose NHS number is wrong, before and after it.
        [
            BAD_PATIENT_LINE | {"id": "p1"},
            _usual(subject={"reference": "Patient/p1"}, contained=[]),
        ],
        [_usual(subject={"reference": "Patient/p1"}), BAD_PATIENT_LINE | {"id": "p1"}],
        [_usual(), _usual()],  # a repeated assessment id
        [_usual(extension=[{"url": EXT_ASSESSMENT, "extension": [{"url": "mode"}]}])],
        [_usual(language="cy", id="x", meta={"versionId": "2"})],
    ],
)
def test_typed_path_examples(resources: list[dict[str, Any]]) -> None:
    data = b"\n".join(json.dumps(r).encode() for r in resources) + b"\n"
    typed, dictionaries, stdlib = read_three_ways(data)
    assert typed == dictionaries == stdlib


def test_the_literals_are_pamlibs_codes() -> None:
    from typing import Literal, get_args, get_type_hints

    from pamlib.fhir._response import _PAMLIB_CODES
    from pamlib.fhir.codes import ANSWER_SYSTEM

    hints = get_type_hints(_typed._Coding)
    assert hints["system"] == Literal[ANSWER_SYSTEM]
    assert set(get_args(hints["code"])) == set(_PAMLIB_CODES)
