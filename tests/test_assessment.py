"""Assessments: construction validates against the instrument and reports all problems."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from hypothesis import given

from pamlib.assessment import Assessment
from pamlib.errors import ValidationError
from pamlib.identity import Patient
from pamlib.instruments import BUILTIN_INSTRUMENTS, InstrumentRegistry
from pamlib.responses import Response, parse_response
from tests.strategies import assessments

PAM13 = BUILTIN_INSTRUMENTS[0]
DAY = dt.date(2025, 1, 31)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        Assessment("", Patient("p"), PAM13, DAY, {"pam13.01": 0, "pam13.02": 5, "pam10.01": 1})
    codes = sorted(p.code for p in info.value.problems)
    assert codes == ["empty", "impossible-answer", "impossible-answer", "unknown-item"]


def test_not_applicable_is_kept_but_not_counted() -> None:
    a = Assessment("a", Patient("p"), PAM13, DAY, {"pam13.01": -1, "pam13.02": 4})
    assert a.responses["pam13.01"] is Response.NOT_APPLICABLE
    assert a.n_answered == 1
    assert a.codes()[:3].tolist() == [-1, 4, 0]


def test_datetime_is_not_a_date() -> None:
    with pytest.raises(ValidationError, match="assessed_on"):
        Assessment("a", Patient("p"), PAM13, dt.datetime(2025, 1, 1), {})  # noqa: DTZ001


def test_responses_are_read_only() -> None:
    a = Assessment("a", Patient("p"), PAM13, DAY, {"pam13.01": 1})
    with pytest.raises(TypeError):
        a.responses["pam13.02"] = Response.AGREE  # type: ignore[index]


@given(assessments())
def test_codes_round_trip(a: Assessment) -> None:
    codes = a.codes()
    assert codes.shape == (a.instrument.n_items,)
    rebuilt = {
        item: Response(int(c)) for item, c in zip(a.instrument.items, codes, strict=True) if c != 0
    }
    assert rebuilt == dict(a.responses)
    assert int(np.sum(codes > 0)) == a.n_answered


@given(assessments())
def test_repr_has_no_identifiers(a: Assessment) -> None:
    text = repr(a)
    if a.patient.nhs_number:
        assert a.patient.nhs_number not in text


def test_registry() -> None:
    registry = InstrumentRegistry.of(BUILTIN_INSTRUMENTS)
    assert [i.id for i in registry][:2] == ["PAM-13", "PAM-10"]
    assert registry.get("PAM-10").items[-1] == "pam10.10"
    assert registry.get("PAM-22").n_items == 22
    assert registry.get("Caregiver-PAM-13").loinc_panel == "87703-5"
    with pytest.raises(ValidationError, match="unknown instrument"):
        registry.get("PAM-99")


def test_instruments_hold_no_wording() -> None:
    for instrument in BUILTIN_INSTRUMENTS:
        assert all(item.split(".")[1].isdigit() for item in instrument.items)
        assert not hasattr(instrument, "text")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", Response.DISAGREE_STRONGLY),
        ("Disagree strongly", Response.DISAGREE_STRONGLY),
        ("STRONGLY   DISAGREE", Response.DISAGREE_STRONGLY),
        (" disagree", Response.DISAGREE),
        ("Agree", Response.AGREE),
        ("agree strongly", Response.AGREE_STRONGLY),
        ("Strongly agree", Response.AGREE_STRONGLY),
        ("N/A", Response.NOT_APPLICABLE),
        ("na", Response.NOT_APPLICABLE),
        ("Not applicable", Response.NOT_APPLICABLE),
        ("", None),
        ("   ", None),
    ],
)
def test_labels(text: str, expected: Response | None) -> None:
    assert parse_response(text) is expected


@pytest.mark.parametrize("text", ["5", "0", "-1", "maybe", "agree-ish"])
def test_bad_labels(text: str) -> None:
    with pytest.raises(ValueError, match="not an answer"):
        parse_response(text)


def _wrong(value: object) -> Any:
    """A value of the wrong kind, as a caller without a type checker gives it."""
    return value


@pytest.mark.parametrize(
    ("build", "where"),
    [
        (
            lambda pam13: Assessment("a1", _wrong("SECRET-PID"), pam13, dt.date(2025, 3, 1), {}),
            "patient",
        ),
        (
            lambda pam13: Assessment("a1", Patient("p"), _wrong("PAM-13"), dt.date(2025, 3, 1), {}),
            "instrument",
        ),
        (
            lambda pam13: Assessment("a1", Patient("p"), pam13, dt.date(2025, 3, 1), _wrong(None)),
            "responses",
        ),
        (lambda pam13: Patient(_wrong(12345)), "patient.id"),
        (lambda pam13: Patient("", nhs_number=_wrong(9434765919)), "patient.nhs_number"),
        (lambda pam13: Patient(None, nhs_number=_wrong(-9434765919)), "patient.nhs_number"),
    ],
    ids=[
        "patient-text",
        "instrument-text",
        "responses-none",
        "id-number",
        "nhs-int",
        "nhs-negative",
    ],
)
def test_the_wrong_kind_of_value_is_a_validation_error_naming_the_field(
    build: Any, where: str
) -> None:
    """A patient given as text would be an identifier in every repr; an NHS number as a
    number loses nothing and a negative one passed for valid. Each is refused by field."""
    pam13 = BUILTIN_INSTRUMENTS[0]
    with pytest.raises(ValidationError) as info:
        build(pam13)
    assert where in [p.where for p in info.value.problems]
    assert "SECRET" not in str(info.value)
    assert "9434765919" not in str(info.value)
