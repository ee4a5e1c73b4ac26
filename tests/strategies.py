"""Hypothesis strategies for pamlib's models."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from pamlib.assessment import Assessment, Mode
from pamlib.identity import Patient
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.levels import ActivationLevel
from pamlib.pathways import Coding, Pathway, Recommendation, RuleTrace, TailoringOutcome
from pamlib.responses import Response
from pamlib.results import Flag, ScoreResult, ScoreStatus
from pamlib.synthetic import test_nhs_number

ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
short_text = st.text(max_size=20)
dates = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 12, 31))
nhs_numbers = st.integers(0, 999_999).map(test_nhs_number).filter(lambda n: n is not None)


@st.composite
def patients(draw: st.DrawFn) -> Patient:
    pid = draw(st.none() | ids.filter(str.strip))
    nhs = draw(st.none() | nhs_numbers) if pid is not None else draw(nhs_numbers)
    return Patient(pid, nhs_number=nhs)


@st.composite
def responses_for(draw: st.DrawFn, instrument: Instrument) -> dict[str, Response]:
    items = draw(st.lists(st.sampled_from(instrument.items), unique=True))
    return {item: draw(st.sampled_from(list(Response))) for item in items}


@st.composite
def assessments(draw: st.DrawFn, instrument: Instrument | None = None) -> Assessment:
    inst = instrument or draw(st.sampled_from(BUILTIN_INSTRUMENTS))
    return Assessment(
        id=draw(ids.filter(str.strip)),
        patient=draw(patients()),
        instrument=inst,
        assessed_on=draw(dates),
        responses=draw(responses_for(inst)),
        mode=draw(st.sampled_from(list(Mode))),
        language=draw(st.sampled_from(["en", "cy", "pl", "ur"])),
        site=draw(st.none() | short_text),
        attributes=draw(st.dictionaries(ids, short_text, max_size=3)),
    )


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def score_results(draw: st.DrawFn) -> ScoreResult:
    scored = draw(st.booleans())
    return ScoreResult(
        assessment_id=draw(ids),
        status=ScoreStatus.SCORED if scored else ScoreStatus.NOT_SCORED,
        provider=draw(ids),
        provider_version=draw(ids),
        n_answered=draw(st.integers(0, 22)),
        raw_score=draw(st.none() | st.integers(0, 88)),
        mean_response=draw(st.none() | finite),
        theta=draw(st.none() | finite),
        theta_se=draw(st.none() | finite),
        score=draw(st.none() | st.floats(0, 100)),
        score_se=draw(st.none() | finite),
        level=draw(st.none() | st.sampled_from(list(ActivationLevel))),
        cutpoint_set=draw(st.none() | st.sampled_from(["current", "hibbard-2005"])),
        calibration_id=draw(st.none() | ids),
        calibration_sha256=draw(st.none() | st.text("0123456789abcdef", min_size=64, max_size=64)),
        demo=draw(st.booleans()),
        flags=draw(st.frozensets(st.sampled_from(list(Flag)))),
        reason=None if scored else draw(short_text),
        reason_code=None if scored else draw(ids),
    )


codings = st.builds(Coding, ids, ids, st.none() | short_text)
pathways = st.builds(Pathway, ids, short_text, short_text, st.none() | codings)
traces = st.builds(
    RuleTrace,
    ids,
    ids,
    short_text,
    st.none() | ids,
    st.none() | short_text,
    st.integers(-1000, 1000),
    st.none() | ids,
)
recommendations = st.builds(
    Recommendation,
    ids,
    st.none() | short_text,
    st.none() | short_text,
    st.lists(short_text, max_size=2).map(tuple),
    st.lists(traces, max_size=2).map(tuple),
)
outcomes = st.builds(
    TailoringOutcome,
    ids,
    st.lists(recommendations, max_size=2).map(tuple),
    st.lists(recommendations, max_size=2).map(tuple),
    st.none() | dates,
    st.lists(short_text, max_size=2).map(tuple),
    st.lists(traces, max_size=2).map(tuple),
    st.none() | short_text,
)
