"""JSON round trips for every model, and errors that list every problem with its path."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.assessment import Assessment
from pamlib.errors import ValidationError
from pamlib.identity import Patient
from pamlib.instruments import BUILTIN_INSTRUMENTS, InstrumentRegistry
from pamlib.levels import BUILTIN_CUTPOINT_SETS, CutpointSet
from pamlib.pathways import Pathway, Recommendation, TailoringOutcome
from pamlib.results import ScoreResult
from pamlib.serialize import dumps, from_dict, loads, to_dict
from tests import strategies as s

REGISTRY = InstrumentRegistry.of(BUILTIN_INSTRUMENTS)


@pytest.mark.parametrize(
    ("strategy", "cls"),
    [
        (s.patients(), Patient),
        (s.assessments(), Assessment),
        (s.score_results(), ScoreResult),
        (s.pathways, Pathway),
        (s.recommendations, Recommendation),
        (s.outcomes, TailoringOutcome),
        (st.sampled_from(BUILTIN_CUTPOINT_SETS), CutpointSet),
    ],
)
@given(data=st.data())
def test_round_trip(strategy: st.SearchStrategy[object], cls: type, data: st.DataObject) -> None:
    obj = data.draw(strategy)
    text = dumps(obj)
    assert json.loads(text) == json.loads(json.dumps(to_dict(obj)))
    assert loads(text, cls, instruments=REGISTRY) == obj


def test_all_problems_with_paths() -> None:
    data = {
        "id": "a1",
        "patient": {"id": "p", "nhs_number": None},
        "instrument": "PAM-13",
        "assessed_on": "2025-02-30",
        "responses": {"pam13.01": 9},
        "mode": "carrier-pigeon",
        "extra": 1,
    }
    with pytest.raises(ValidationError) as info:
        from_dict(data, Assessment, instruments=REGISTRY)
    where = {p.where for p in info.value.problems}
    assert {"$.assessed_on", "$.mode", "$.responses['pam13.01']"} <= where
    assert any(p.where == "$.extra" and p.code == "unknown-field" for p in info.value.problems)


def test_model_validation_errors_get_paths() -> None:
    data = {
        "id": "a1",
        "patient": {"id": "p", "nhs_number": None},
        "instrument": "PAM-13",
        "assessed_on": "2025-02-01",
        "responses": {"pam13.99": 1},
    }
    with pytest.raises(ValidationError) as info:
        from_dict(data, Assessment, instruments=REGISTRY)
    assert [p.code for p in info.value.problems] == ["unknown-item"]


def test_unknown_instrument() -> None:
    data = {
        "id": "a1",
        "patient": {"id": "p", "nhs_number": None},
        "instrument": "PAM-99",
        "assessed_on": "2025-02-01",
        "responses": {},
    }
    with pytest.raises(ValidationError, match=r"\$\.instrument"):
        from_dict(data, Assessment, instruments=REGISTRY)


@pytest.mark.parametrize("data", [None, [1], "p", 3])
def test_a_document_that_is_not_an_object_is_a_validation_error(data: object) -> None:
    with pytest.raises(ValidationError, match="invalid Patient") as info:
        from_dict(data, Patient)
    assert [(p.where, p.code) for p in info.value.problems] == [("$", "type")]


def test_not_json() -> None:
    with pytest.raises(ValidationError, match="line 1"):
        loads("{", Patient)


def test_nhs_number_never_in_errors() -> None:
    with pytest.raises(ValidationError) as info:
        from_dict({"id": "p", "nhs_number": "9434765910"}, Patient)
    assert "9434765910" not in str(info.value)
