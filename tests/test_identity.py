"""NHS numbers and patients: check digits, normalisation, and identifiers kept out of text."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.errors import ValidationError
from pamlib.identity import Patient, is_valid_nhs_number, normalise_nhs_number
from tests.strategies import nhs_numbers


def oracle_valid(number: str) -> bool:
    """Modulus 11 as NHS Digital specifies it, written out independently of the library."""
    if len(number) != 10 or not number.isdigit():
        return False
    total = 0
    for position, digit in enumerate(number[:9]):
        total += int(digit) * (10 - position)
    remainder = total % 11
    check = 11 - remainder
    if check == 11:
        check = 0
    if check == 10:
        return False
    return check == int(number[9])


@given(st.text("0123456789", min_size=10, max_size=10))
def test_check_digit_agrees_with_an_independent_oracle(number: str) -> None:
    assert is_valid_nhs_number(number) == oracle_valid(number)


@given(nhs_numbers, st.integers(0, 9), st.integers(1, 9))
def test_any_single_digit_error_is_caught(number: str, position: int, delta: int) -> None:
    digits = list(number)
    digits[position] = str((int(digits[position]) + delta) % 10)
    assert not is_valid_nhs_number("".join(digits))


@given(nhs_numbers, st.sampled_from([" ", "-", "  ", " - "]))
def test_spaces_and_dashes_are_removed(number: str, sep: str) -> None:
    formatted = f"{number[:3]}{sep}{number[3:6]}{sep}{number[6:]}"
    assert normalise_nhs_number(formatted) == number


def test_sample_cohort_numbers_are_valid(sample_data) -> None:  # type: ignore[no-untyped-def]
    with (sample_data / "cohort-small.csv").open(encoding="utf-8") as f:
        numbers = [row["nhs_number"] for row in csv.DictReader(f) if row["nhs_number"]]
    assert numbers
    assert all(is_valid_nhs_number(n) for n in numbers)


def test_invalid_number_error_does_not_contain_the_number() -> None:
    with pytest.raises(ValidationError) as info:
        Patient("p1", nhs_number="943 476 5910")
    assert "943" not in str(info.value)
    assert info.value.problems[0].code == "nhs-number"


def test_patient_needs_an_identity() -> None:
    with pytest.raises(ValidationError, match="needs an id or an NHS number"):
        Patient("  ")
    assert Patient(None, nhs_number="9434765919").key == "nhs:9434765919"


@given(st.text(min_size=1).filter(str.strip), nhs_numbers)
def test_identifiers_never_in_repr_or_str(pid: str, nhs: str) -> None:
    p = Patient(pid, nhs_number=nhs)
    for text in (repr(p), str(p), f"{p}", repr([p])):
        assert nhs not in text
        assert "<redacted>" in text
        if pid not in repr([Patient("x", nhs_number=nhs)]):  # not part of the template
            assert pid not in text


def test_reprs_show_an_assessment_id_but_no_nhs_number_built_into_it() -> None:
    """An assessment id names a record and is shown; an exporter that built one from the NHS
    number (``9434765919-2025-03-01``) would put that number in every repr."""
    import datetime as dt

    from pamlib.assessment import Assessment
    from pamlib.instruments import BUILTIN_INSTRUMENTS
    from pamlib.pathways import TailoringOutcome
    from pamlib.results import ScoreResult, ScoreStatus

    pam = BUILTIN_INSTRUMENTS[0]
    for made in ("9434765919-2025-03-01", "943 476 5919/1"):
        assessment = Assessment(made, Patient("P1"), pam, dt.date(2025, 3, 1), {})
        result = ScoreResult(made, ScoreStatus.NOT_SCORED, "p", "1", 0)
        outcome = TailoringOutcome(made, no_pathway_reason="none")
        for shown in (repr(assessment), repr(result), repr(outcome)):
            assert "<NHS number>" in shown
            assert "9434765919" not in shown.replace(" ", "")
    assert "'A17'" in repr(ScoreResult("A17", ScoreStatus.NOT_SCORED, "p", "1", 0))
