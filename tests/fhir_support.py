"""Shared helpers for the FHIR tests: FHIR-safe strategies and the two validators."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import strategies as st

from pamlib.assessment import Assessment, Mode
from pamlib.fhir._checks import check
from pamlib.identity import Patient
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.levels import ActivationLevel
from pamlib.results import Flag, ScoreResult, ScoreStatus
from tests.strategies import dates, nhs_numbers, responses_for

# FHIR strings: no control characters, no empty strings. Letters, digits, punctuation, symbols
# and inner spaces cover what real ids look like.
_CHARS = st.characters(categories=("L", "N", "P", "S"), codec="utf-8")
fhir_text = st.builds(
    lambda a, b: f"{a} {b}" if b else a,
    st.text(_CHARS, min_size=1, max_size=10),
    st.text(_CHARS, max_size=4),
)


@st.composite
def fhir_patients(draw: st.DrawFn) -> Patient:
    pid = draw(st.none() | fhir_text)
    nhs = draw(st.none() | nhs_numbers) if pid is not None else draw(nhs_numbers)
    return Patient(pid, nhs_number=nhs)


@st.composite
def fhir_assessments(
    draw: st.DrawFn, instrument: Instrument | None = None, id_: str | None = None
) -> Assessment:
    inst = instrument or draw(st.sampled_from(BUILTIN_INSTRUMENTS))
    return Assessment(
        id=id_ or draw(fhir_text),
        patient=draw(fhir_patients()),
        instrument=inst,
        assessed_on=draw(dates),
        responses=draw(responses_for(inst)),
        mode=draw(st.sampled_from(list(Mode))),
        language=draw(st.sampled_from(["en", "cy", "pl", "ur"])),
        site=draw(st.none() | fhir_text),
        attributes=draw(st.dictionaries(fhir_text, st.just("") | fhir_text, max_size=3)),
    )


finite = st.floats(-50, 50, allow_nan=False)


@st.composite
def fhir_results(draw: st.DrawFn, assessment_id: str) -> ScoreResult:
    """Results as providers make them: licensed, demo, raw-only, or not scored."""
    kind = draw(st.sampled_from(["licensed", "demo", "raw", "not-scored"]))
    flags = set(draw(st.frozensets(st.sampled_from([Flag.EXTREME_RESPONSE, Flag.MISSING_ITEMS]))))
    common: dict[str, Any] = {
        "assessment_id": assessment_id,
        "provider": draw(fhir_text),
        "provider_version": draw(fhir_text),
        "n_answered": draw(st.integers(0, 22)),
    }
    if kind == "not-scored":
        return ScoreResult(
            status=ScoreStatus.NOT_SCORED, reason="nothing", reason_code="nothing", **common
        )
    if kind == "raw":
        return ScoreResult(
            status=ScoreStatus.SCORED,
            raw_score=draw(st.integers(1, 88)),
            mean_response=2.5,
            flags=flags | {Flag.RAW_ONLY},
            **common,
        )
    demo = kind == "demo"
    return ScoreResult(
        status=ScoreStatus.SCORED,
        raw_score=draw(st.none() | st.integers(1, 88)),
        theta=draw(st.none() | finite),
        theta_se=draw(st.none() | st.floats(0.01, 5)),
        score=draw(st.floats(0, 100)),
        score_se=draw(st.none() | st.floats(0.01, 30)),
        level=draw(st.none() | st.sampled_from(list(ActivationLevel))),
        cutpoint_set=draw(st.sampled_from(["current", "hibbard-2005"])),
        calibration_id=draw(st.none() | fhir_text),
        calibration_sha256=draw(st.none() | st.text("0123456789abcdef", min_size=64, max_size=64)),
        demo=demo,
        flags=flags | ({Flag.DEMO} if demo else set()),
        **common,
    )


def validate_r4b(resource: Mapping[str, Any]) -> None:
    """Validate with the ``fhir.resources`` R4B models (skips if the library is missing)."""
    pytest.importorskip("fhir.resources")
    from fhir.resources.R4B import get_fhir_model_class

    get_fhir_model_class(resource["resourceType"]).model_validate(dict(resource))


def assert_valid(resource: Mapping[str, Any]) -> None:
    """Both validators agree the resource is sound."""
    validate_r4b(resource)
    assert check(resource) == []


def when(year: int = 2025, month: int = 3, day: int = 1) -> dt.date:
    return dt.date(year, month, day)
