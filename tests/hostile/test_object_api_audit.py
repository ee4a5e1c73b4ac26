"""Hostile JSON for the object model, round trips, and the object API against the table
pipeline (an audit).

Faults found (one line each):

1. Structuring coerced wrong types instead of refusing them: ``true`` as an answer was
   *disagree strongly*, ``12.7`` a raw score of 12, ``"false"`` for ``demo`` was True,
   ``null`` for an id the text ``'None'``, an NHS number given as a (negative) number passed.
2. Dates were read by ``date.fromisoformat``: ``20250301`` and ``2025-W09-6`` were dates here
   and rejects in a table of the same answers.
3. An unknown instrument was reported at ``$.instrument.instrument``; a patient with no
   identity at ``$.patient.patient``; a cut-point set's problems at ``$.<its id>``.
4. A nested object of the wrong kind said ``unknown error ('str' object has no attribute
   'keys')``; a value nested past the interpreter's limit ``unknown error (maximum recursion
   depth ...)``; an integer too long to print was accepted as a rule priority (its repr and
   ``dumps`` then raised ``ValueError``); an extra key that was not text raised
   ``AttributeError``.
5. A string or an object where an array belongs was iterated: ``{"demo": 1}`` as ``flags``
   was the flag ``demo``.
6. ``loads`` kept the last of repeated keys silently: two answers to one item, one dropped.
7. An :class:`Instrument` unstructured to its id but could not be structured from it.
8. ``ScoreResult(status="scored")`` was equal to a scored result yet said ``scored`` False.
9. An :class:`Assessment` could be neither hashed nor pickled (nor sent to a process pool).
10. A frozen :class:`Instrument` held a mutable dict of item LOINC codes, and items given as a
    list made it unhashable.
11. ``Assessment(5, …)`` and an attribute's value that was not text were accepted, and then
    ``from_dict`` refused what ``to_dict`` wrote; ``CutpointSet("", …)`` had no id to be chosen
    or reported by; a tailoring ``Context`` with attributes could not be pickled.
12. ``dumps`` wrote an infinity in a result built by hand as ``Infinity``, which is not JSON
    (and which ``loads`` refuses).
"""

# ruff: noqa: S301 - every pickle loaded here was made by the test itself

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import pickle
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import pamlib
from pamlib.assessment import Assessment, Mode
from pamlib.errors import PamlibError, ValidationError
from pamlib.identity import Patient
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument, InstrumentRegistry
from pamlib.levels import BUILTIN_CUTPOINT_SETS, ActivationLevel, CutpointSet
from pamlib.pathways import Coding, Pathway, Recommendation, RuleTrace, TailoringOutcome
from pamlib.plugins import PluginHost
from pamlib.responses import Response
from pamlib.results import Flag, ScoreResult, ScoreStatus
from pamlib.scoring import demo_calibration
from pamlib.serialize import dumps, from_dict, loads, to_dict
from pamlib.testing import strategies as kit
from tests import strategies as s

REGISTRY = InstrumentRegistry.of(BUILTIN_INSTRUMENTS)
PAM13 = BUILTIN_INSTRUMENTS[0]
NHS = "9434765919"
PID = "SECRET-PID-7"

ASSESSMENT: dict[str, Any] = {
    "id": "a1",
    "patient": {"id": "p", "nhs_number": None},
    "instrument": "PAM-13",
    "assessed_on": "2025-02-01",
    "responses": {"pam13.01": 3},
}
RESULT: dict[str, Any] = {
    "assessment_id": "a1",
    "status": "scored",
    "provider": "demo",
    "provider_version": "1",
    "n_answered": 13,
}
CUTPOINTS: dict[str, Any] = {"id": "x", "upper_bounds": [47.0, 55.1, 67.0]}
TRACE: dict[str, Any] = {"rule_id": "r", "action": "note", "reason": "why"}


def _any(value: object) -> Any:
    """A value of the wrong kind, as a caller without a type checker gives it."""
    return value


def problems_of(data: Any, cls: type) -> list[tuple[str, str, str]]:
    """The problems structuring ``data`` raises; fails the test if it raises anything else."""
    try:
        from_dict(data, cls, instruments=REGISTRY)
    except ValidationError as exc:
        return [(p.where, p.code, p.message) for p in exc.problems]
    pytest.fail("structured without a problem")


def refused_at(data: Any, cls: type, where: str) -> str:
    """The one message of the problem at ``where``, checking it says why (not "unknown")."""
    found = problems_of(data, cls)
    messages = [m for w, _, m in found if w == where]
    assert messages, found
    assert not any("unknown error" in m for m in messages), messages
    return messages[0]


# -- 1. wrong types are refused, never coerced -------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "why"),
    [(True, "boolean"), (False, "boolean"), ("2", "text"), (2.5, ""), (None, "null")],
    ids=["true", "false", "text", "fraction", "null"],
)
def test_an_answer_of_the_wrong_type_is_refused(answer: object, why: str) -> None:
    message = refused_at(
        ASSESSMENT | {"responses": {"pam13.01": answer}}, Assessment, "$.responses['pam13.01']"
    )
    assert why in message


@pytest.mark.parametrize(
    "answer",
    [math.nan, math.inf, -math.inf, 10**30, -0.0],
    ids=["nan", "inf", "-inf", "huge", "-0"],
)
def test_an_answer_that_is_no_category_is_refused(answer: object) -> None:
    refused_at(
        ASSESSMENT | {"responses": {"pam13.01": answer}}, Assessment, "$.responses['pam13.01']"
    )


def test_a_boolean_answer_is_refused_by_the_constructor_too() -> None:
    with pytest.raises(ValidationError) as info:
        Assessment("a", Patient("p"), PAM13, dt.date(2025, 1, 1), {"pam13.01": True})
    assert [(p.where, p.code) for p in info.value.problems] == [
        ("responses['pam13.01']", "impossible-answer")
    ]
    with pytest.raises(ValidationError):
        Assessment("a", Patient("p"), PAM13, dt.date(2025, 1, 1), {"pam13.01": _any(np.True_)})


def test_a_whole_number_written_with_a_point_is_the_number() -> None:
    """JSON has one kind of number: ``2.0`` is 2 (as a table reads it), never a truncation."""
    a = from_dict(
        ASSESSMENT | {"responses": {"pam13.01": 2.0, "pam13.02": -1.0}},
        Assessment,
        instruments=REGISTRY,
    )
    assert dict(a.responses) == {"pam13.01": Response.DISAGREE, "pam13.02": Response.NOT_APPLICABLE}
    r = from_dict(RESULT | {"n_answered": 13.0, "level": 3.0}, ScoreResult, instruments=REGISTRY)
    assert (r.n_answered, r.level) == (13, ActivationLevel.LEVEL_3)
    assert type(r.n_answered) is int


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"id": None}, "$.id"),
        ({"id": 5}, "$.id"),
        ({"id": True}, "$.id"),
        ({"id": {"a": 1}}, "$.id"),
        ({"site": 1}, "$.site"),
        ({"language": ["en"]}, "$.language"),
        ({"attributes": {"condition": None}}, "$.attributes['condition']"),
        ({"attributes": {"condition": 1}}, "$.attributes['condition']"),
        ({"attributes": {"condition": {"b": 1}}}, "$.attributes['condition']"),
        ({"patient": {"id": 12345, "nhs_number": None}}, "$.patient.id"),
        ({"patient": {"id": [1], "nhs_number": None}}, "$.patient.id"),
        ({"patient": {"id": None, "nhs_number": 9434765919}}, "$.patient.nhs_number"),
        ({"patient": {"id": None, "nhs_number": -9434765919}}, "$.patient.nhs_number"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else v,
)
def test_text_is_never_made_from_another_type(change: dict[str, Any], where: str) -> None:
    """``null`` was the id ``'None'``; a negative number passed for a valid NHS number (the
    constructor refuses numbers; structuring made them text first)."""
    message = refused_at(ASSESSMENT | change, Assessment, where)
    assert "text" in message


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"n_answered": True}, "$.n_answered"),
        ({"n_answered": "12"}, "$.n_answered"),
        ({"n_answered": 12.7}, "$.n_answered"),
        ({"raw_score": 12.7}, "$.raw_score"),
        ({"raw_score": 2**70}, "$.raw_score"),
        ({"score": "55"}, "$.score"),
        ({"score": True}, "$.score"),
        ({"score": math.inf}, "$.score"),
        ({"score": math.nan}, "$.score"),
        ({"score": 10**400}, "$.score"),
        ({"level": True}, "$.level"),
        ({"level": 2.5}, "$.level"),
        ({"level": "2"}, "$.level"),
        ({"demo": "false"}, "$.demo"),
        ({"demo": 1}, "$.demo"),
        ({"status": 1}, "$.status"),
        ({"flags": "demo"}, "$.flags"),
        ({"flags": {"demo": 1}}, "$.flags"),
        ({"flags": ["demo", "nope"]}, "$.flags[1]"),
    ],
    ids=lambda v: json.dumps(v, default=str)[:40] if isinstance(v, dict) else v,
)
def test_a_result_field_of_the_wrong_type_is_refused(change: dict[str, Any], where: str) -> None:
    refused_at(RESULT | change, ScoreResult, where)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"upper_bounds": [True, 55.1, 67.0]}, "$.upper_bounds[0]"),
        ({"upper_bounds": ["47", "55.1", "67"]}, "$.upper_bounds[0]"),
        ({"upper_bounds": "abc"}, "$.upper_bounds"),
        ({"upper_bounds": {"a": 1}}, "$.upper_bounds"),
        ({"upper_bounds": [47.0, 55.1]}, "$.upper_bounds"),
        ({"decimals": True}, "$.decimals"),
        ({"decimals": 1.9}, "$.decimals"),
    ],
    ids=lambda v: json.dumps(v)[:40] if isinstance(v, dict) else v,
)
def test_cut_points_of_the_wrong_type_are_refused(change: dict[str, Any], where: str) -> None:
    """``true`` was a cut point of 1.0 and ``1.9`` one decimal: levels silently changed."""
    refused_at(CUTPOINTS | change, CutpointSet, where)


@pytest.mark.parametrize(
    "priority", [True, 1.5, "1", 10**5000], ids=["true", "1.5", "text", "huge"]
)
def test_a_rule_priority_of_the_wrong_type_is_refused(priority: object) -> None:
    refused_at(TRACE | {"priority": priority}, RuleTrace, "$.priority")


# -- 2. dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "20250201",
        "2025-W05-6",
        "2025-032",
        "2025-02-01T00:00:00+01:00",
        "2025-02-01Z",
        "2025-02-01 ",
        "2025-02-01x",
        "２０２５-02-01",
        "2025-02-30",
        "",
    ],
)
def test_a_date_is_yyyy_mm_dd_and_nothing_else(text: str) -> None:
    """As a table of the same answers reads it: ``20250201`` was a date here, a reject there."""
    message = refused_at(ASSESSMENT | {"assessed_on": text}, Assessment, "$.assessed_on")
    assert "yyyy-mm-dd" in message
    refused_at({"assessment_id": "a", "reassess_by": text}, TailoringOutcome, "$.reassess_by")


@pytest.mark.parametrize("value", [20250201, None, ["2025-02-01"]], ids=["number", "null", "list"])
def test_a_date_of_the_wrong_type_is_refused(value: object) -> None:
    refused_at(ASSESSMENT | {"assessed_on": value}, Assessment, "$.assessed_on")


# -- 3. paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize("instrument", ["PAM-99", "pam-13", ""])
def test_an_unknown_instrument_is_reported_at_its_field(instrument: str) -> None:
    found = problems_of(ASSESSMENT | {"instrument": instrument}, Assessment)
    assert [(w, c) for w, c, _ in found] == [("$.instrument", "unknown-instrument")]


@pytest.mark.parametrize("instrument", [13, None, {"id": "PAM-13"}, ["PAM-13"]])
def test_an_instrument_of_the_wrong_type_is_refused(instrument: object) -> None:
    refused_at(ASSESSMENT | {"instrument": instrument}, Assessment, "$.instrument")


def test_a_patient_without_identity_is_reported_at_the_patient() -> None:
    nobody = {"id": None, "nhs_number": None}
    assert [w for w, _, _ in problems_of(ASSESSMENT | {"patient": nobody}, Assessment)] == [
        "$.patient"
    ]
    assert [w for w, _, _ in problems_of(nobody, Patient)] == ["$"]
    bad = {"id": "p", "nhs_number": "943 476 5910"}
    assert [w for w, _, _ in problems_of(ASSESSMENT | {"patient": bad}, Assessment)] == [
        "$.patient.nhs_number"
    ]


def test_cut_point_problems_are_reported_at_their_fields() -> None:
    found = problems_of({"id": "x", "upper_bounds": [50.0, 40.0, 60.0], "decimals": 9}, CutpointSet)
    assert sorted(w for w, _, _ in found) == ["$.decimals", "$.upper_bounds"]


# -- 4. objects, arrays, nesting and huge numbers ----------------------------------------------


@pytest.mark.parametrize("patient", ["p-1", [1], 5, True], ids=["text", "list", "number", "true"])
def test_a_nested_object_of_the_wrong_kind_says_so(patient: object) -> None:
    message = refused_at(ASSESSMENT | {"patient": patient}, Assessment, "$.patient")
    assert "expected an object" in message


@pytest.mark.parametrize(
    ("data", "cls", "where"),
    [
        ({"assessment_id": "a", "recommendations": "abc"}, TailoringOutcome, "$.recommendations"),
        (
            {"assessment_id": "a", "recommendations": ["x"]},
            TailoringOutcome,
            "$.recommendations[0]",
        ),
        ({"assessment_id": "a", "notes": "note"}, TailoringOutcome, "$.notes"),
        ({"pathway": "p", "trace": {"r": 1}}, Recommendation, "$.trace"),
        ({"id": "p", "name": "n", "concept": "x"}, Pathway, "$.concept"),
    ],
)
def test_an_array_or_object_of_the_wrong_kind_is_refused(
    data: dict[str, Any], cls: type, where: str
) -> None:
    refused_at(data, cls, where)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("where", ["id", "site", "attributes"])
def test_a_deeply_nested_value_is_a_validation_error(where: str) -> None:
    deep = _nested(100_000)
    value: Any = {"x": deep} if where == "attributes" else deep
    found = problems_of(ASSESSMENT | {where: value}, Assessment)
    assert found
    assert not any("unknown error" in m or "recursion" in m for _, _, m in found), found


def test_deeply_nested_json_text_is_refused_with_a_problem() -> None:
    text = '{"id": "p", "nhs_number": ' + "[" * 10_000 + "]" * 10_000 + "}"
    with pytest.raises(ValidationError) as info:
        loads(text, Patient)
    assert [p.code for p in info.value.problems] == ["too-deep"]


def test_a_huge_integer_in_json_text_is_refused_with_a_problem() -> None:
    with pytest.raises(ValidationError):
        loads(json.dumps(RESULT).replace("13", "1" * 5000), ScoreResult, instruments=REGISTRY)


def test_missing_and_extra_keys_are_all_reported() -> None:
    found = problems_of({"surname": "x"}, Assessment)
    where = {w for w, _, _ in found}
    assert {"$.id", "$.patient", "$.instrument", "$.assessed_on", "$.responses"} <= where
    assert ("$.surname", "unknown-field") in {(w, c) for w, c, _ in found}


def test_keys_that_are_not_text_are_reported_not_raised() -> None:
    """An extra key of another type raised ``AttributeError`` (``'int' object has no
    attribute 'startswith'``); ``None`` was reported at ``$`` itself."""
    found = problems_of({"id": "p", 1: "x", None: "y", "z": 0}, Patient)
    assert sorted(w for w, _, _ in found) == ["$.z", "$[1]", "$[None]"]


# -- 5. duplicate keys -------------------------------------------------------------------------


def test_two_answers_to_one_item_are_refused() -> None:
    """The standard library keeps the last of repeated keys: one answer was silently lost."""
    text = (
        '{"id": "a1", "patient": {"id": "p", "nhs_number": null}, "instrument": "PAM-13",'
        ' "assessed_on": "2025-02-01", "responses": {"pam13.01": 1, "pam13.01": 4}}'
    )
    with pytest.raises(ValidationError) as info:
        loads(text, Assessment, instruments=REGISTRY)
    assert [(p.where, p.code) for p in info.value.problems] == [
        ("$.responses['pam13.01']", "duplicate-key")
    ]


def test_a_repeated_field_is_refused_with_the_other_problems() -> None:
    text = (
        '{"id": "a1", "id": "a2", "patient": {"id": "p", "id": "q"}, "instrument": "PAM-13",'
        ' "assessed_on": "2025-13-01", "responses": {}}'
    )
    with pytest.raises(ValidationError) as info:
        loads(text, Assessment, instruments=REGISTRY)
    found = {(p.where, p.code) for p in info.value.problems}
    assert {("$.id", "duplicate-key"), ("$.patient.id", "duplicate-key")} <= found
    assert "$.assessed_on" in {w for w, _ in found}


# -- 6. no identifier in what is raised --------------------------------------------------------


HOSTILE_DOCUMENTS: list[tuple[Any, type]] = [
    (ASSESSMENT | {"patient": {"id": PID, "nhs_number": NHS[:-1] + "0"}}, Assessment),
    (ASSESSMENT | {"patient": f"{PID} {NHS}"}, Assessment),
    (ASSESSMENT | {"patient": [PID, NHS]}, Assessment),
    (ASSESSMENT | {"patient": {"id": [PID], "nhs_number": [NHS]}}, Assessment),
    (ASSESSMENT | {"patient": {"id": PID, "nhs_number": int(NHS)}}, Assessment),
    (ASSESSMENT | {"id": {PID: NHS}, "site": [NHS], "attributes": {"name": [PID]}}, Assessment),
    (ASSESSMENT | {"assessed_on": f"{PID} {NHS}", "mode": PID, "instrument": NHS}, Assessment),
    (ASSESSMENT | {"responses": {"pam13.01": f"{PID} {NHS}"}}, Assessment),
    (ASSESSMENT | {"responses": {"pam13.01": int(NHS)}}, Assessment),
    (RESULT | {"flags": [PID, NHS], "level": int(NHS), "score": NHS, "status": PID}, ScoreResult),
    ({"assessment_id": "a", "recommendations": [PID], "reassess_by": NHS}, TailoringOutcome),
    ({"id": PID, "upper_bounds": [NHS, PID, 1]}, CutpointSet),
    ({"id": PID, "nhs_number": NHS + "1"}, Patient),
]


@pytest.mark.parametrize(("data", "cls"), HOSTILE_DOCUMENTS)
def test_a_refused_document_is_never_quoted(data: Any, cls: type) -> None:
    with pytest.raises(PamlibError) as info:
        from_dict(data, cls, instruments=REGISTRY)
    for text in (str(info.value), repr(info.value), *(str(p) for p in info.value.problems)):  # type: ignore[attr-defined]
        assert PID not in text
        assert NHS not in text
        assert NHS[:-1] not in text


def test_a_structured_model_shows_no_identifier() -> None:
    a = from_dict(
        ASSESSMENT | {"id": f"{NHS}-2025", "patient": {"id": PID, "nhs_number": NHS}},
        Assessment,
        instruments=REGISTRY,
    )
    for text in (repr(a), str(a), repr(a.patient), repr([a])):
        assert PID not in text
        assert NHS not in text


# -- 7. round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "cls"),
    [
        (s.traces, RuleTrace),
        (s.codings, Coding),
        (st.sampled_from(BUILTIN_INSTRUMENTS), Instrument),
        (st.sampled_from(BUILTIN_INSTRUMENTS).flatmap(kit.assessments), Assessment),
        (s.assessments(), Assessment),
        (s.score_results(), ScoreResult),
        (s.outcomes, TailoringOutcome),
    ],
    ids=["trace", "coding", "instrument", "kit-assessment", "assessment", "result", "outcome"],
)
@given(data=st.data())
def test_every_model_survives_json(
    strategy: st.SearchStrategy[object], cls: type[Any], data: st.DataObject
) -> None:
    obj = data.draw(strategy)
    assert from_dict(to_dict(obj), cls, instruments=REGISTRY) == obj
    assert loads(dumps(obj), cls, instruments=REGISTRY) == obj
    assert loads(dumps(obj).encode(), cls, instruments=REGISTRY) == obj


@given(st.sampled_from([math.nan, None]), st.sampled_from(list(ScoreStatus)))
def test_a_result_with_nothing_reported_survives_json(missing: float | None, status: str) -> None:
    result = ScoreResult("a", status, "p", "1", 0, theta=missing, score=missing)
    back = loads(dumps(result), ScoreResult, instruments=REGISTRY)
    assert back == result
    assert back.score is None


def test_a_result_built_with_text_for_its_status_is_the_same_result() -> None:
    """``ScoreResult(status="scored")`` was equal to the scored result but said it was not
    scored (``status is SCORED`` failed): a check or a rule reading ``scored`` saw no score."""
    text = ScoreResult("a", "scored", "p", "1", 13, score=60.0)
    enum = ScoreResult("a", ScoreStatus.SCORED, "p", "1", 13, score=60.0)
    assert text == enum
    assert text.scored
    assert text.status is ScoreStatus.SCORED
    assert hash(text) == hash(enum)
    # anything else is kept for a provider's result check to refuse by name
    assert not ScoreResult("a", "maybe", "p", "1", 13).scored


def test_a_provider_s_unknown_status_is_refused_by_the_result_check() -> None:
    from pamlib.errors import ProviderResultError
    from pamlib.scoring.demo import DemoProvider

    class Odd(DemoProvider):
        def score(self, assessment: Assessment) -> ScoreResult:
            return attrs.evolve(super().score(assessment), status="maybe")

    provider = Odd()
    assessment = Assessment(
        "a1", Patient(PID), PAM13, dt.date(2025, 1, 1), dict.fromkeys(PAM13.items, 3)
    )
    with pytest.raises(ProviderResultError) as caught:
        pamlib.score(assessment, provider=provider)
    assert caught.value.field == "status"


# -- 8. frozen, hashable, picklable ------------------------------------------------------------


@given(s.assessments())
def test_an_assessment_is_hashable_and_pickles(a: Assessment) -> None:
    """Models are frozen attrs classes, to share freely: an assessment's read-only mappings
    made it unhashable and unpicklable (it could not reach a process pool)."""
    same = Assessment(
        a.id,
        a.patient,
        a.instrument,
        a.assessed_on,
        dict(a.responses),
        a.mode,
        a.language,
        a.site,
        dict(a.attributes),
    )
    assert same == a
    assert hash(same) == hash(a)
    assert len({a, same}) == 1
    for back in (pickle.loads(pickle.dumps(a)), copy.copy(a), copy.deepcopy(a)):
        assert back == a
        assert repr(back) == repr(a)
        with pytest.raises(TypeError):
            back.responses["pam13.01"] = Response.AGREE  # type: ignore[index]


@pytest.mark.parametrize(
    "obj",
    [
        Patient("p", nhs_number=NHS),
        PAM13,
        ScoreResult("a", ScoreStatus.SCORED, "p", "1", 13, flags=[Flag.DEMO]),
        BUILTIN_CUTPOINT_SETS[0],
        TailoringOutcome("a", notes=("n",)),
    ],
    ids=lambda o: type(o).__name__,
)
def test_models_are_frozen_and_hashable(obj: object) -> None:
    hash(obj)
    assert pickle.loads(pickle.dumps(obj)) == obj
    name = next(iter(vars(type(obj)).get("__attrs_attrs__", ()))).name
    with pytest.raises(AttributeError):
        setattr(obj, name, None)


def test_an_instrument_is_frozen_through_and_through() -> None:
    """A frozen instrument held a plain dict of LOINC codes, which anyone could change for
    every user of the shared instance; and items given as a list made it unhashable."""
    custom = Instrument("X-2", "two items", ["x.01", "x.02"], item_loinc={"x.01": "1-8"})
    assert custom.items == ("x.01", "x.02")
    assert hash(custom) == hash(Instrument("X-2", "two items", ("x.01", "x.02")))
    with pytest.raises(TypeError):
        custom.item_loinc["x.02"] = "2-6"  # type: ignore[index]
    for back in (pickle.loads(pickle.dumps(custom)), copy.deepcopy(custom)):
        assert back == custom
        assert dict(back.item_loinc) == {"x.01": "1-8"}
    assert InstrumentRegistry.of([custom, back]).get("X-2") == custom


def test_levels_order_as_numbers_and_results_do_not_order() -> None:
    assert sorted(ActivationLevel, reverse=True)[0] is ActivationLevel.LEVEL_4
    assert int(ActivationLevel.LEVEL_2) == 2
    assert ActivationLevel(2) is ActivationLevel.LEVEL_2
    assert ActivationLevel.LEVEL_1 < ActivationLevel.LEVEL_2 < 3
    result = ScoreResult("a", ScoreStatus.SCORED, "p", "1", 13)
    other: Any = result
    with pytest.raises(TypeError):
        _ = result < other


# -- 9. the object API and the table pipeline ----------------------------------------------------

HOST = PluginHost(load_entry_points=False, disabled=())
LABELS = {1: "Disagree strongly", 2: "2", 3: "agree", 4: "4", -1: "N/A", 0: None}
COLUMNS = [f"q{k:02d}" for k in range(1, 14)]
#: How each provider is chosen, as the table verbs and :func:`pamlib.select_provider` take it.
CHOICES: dict[str, dict[str, Any]] = {
    "demo": {"provider": "demo"},
    "rasch": {"calibration": demo_calibration(PAM13)},
}
PROVIDERS = {
    name: pamlib.select_provider(
        c.get("provider"), PAM13, calibration=c.get("calibration"), host=HOST
    )
    for name, c in CHOICES.items()
}


def _document(i: int, row: npt.NDArray[np.int8]) -> dict[str, Any]:
    return {
        "id": f"a{i}",
        "patient": {"id": f"p{i}", "nhs_number": None},
        "instrument": "PAM-13",
        "assessed_on": "2025-03-01",
        "responses": {item: int(c) for item, c in zip(PAM13.items, row, strict=True) if c},
    }


def _row(i: int, row: npt.NDArray[np.int8]) -> dict[str, Any]:
    cells = {column: LABELS[int(c)] for column, c in zip(COLUMNS, row, strict=True)}
    return {"assessment_id": f"a{i}", "patient_id": f"p{i}", "assessed_on": "2025-03-01"} | cells


def _as_row(result: ScoreResult) -> dict[str, Any]:
    def number(x: float | None) -> float | None:
        return None if x is None or math.isnan(x) else x

    return {
        "assessment_id": result.assessment_id,
        "status": str(result.status),
        "n_answered": result.n_answered,
        "raw_score": result.raw_score,
        "theta": number(result.theta),
        "theta_se": number(result.theta_se),
        "score": number(result.score),
        "score_se": number(result.score_se),
        "level": None if result.level is None else int(result.level),
        "cutpoint_set": result.cutpoint_set,
        "flags": sorted(map(str, result.flags)),
        "provider": result.provider,
        "provider_version": result.provider_version,
        "calibration_id": result.calibration_id,
        "calibration_sha256": result.calibration_sha256,
        "demo": result.demo,
        "reason": result.reason_code,
    }


FIXED = np.array(
    [[4] * 13, [1] * 13, [0] * 13, [-1] * 13, [3] * 12 + [0], [4] * 6 + [0] * 7, [2, 3] * 6 + [4]],
    dtype=np.int8,
)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@settings(max_examples=25, deadline=None)
@given(codes=kit.response_codes(PAM13, max_rows=6))
@example(codes=FIXED)
def test_the_object_api_is_the_table_pipeline(provider: str, codes: npt.NDArray[np.int8]) -> None:
    """One assessment from JSON, scored as an object, is its row of the table of many, is the
    table of one, is its row of ``score_many``: ceilings, floors, missing and not applicable."""
    chosen = PROVIDERS[provider]
    choice = CHOICES[provider] | {"instrument": "PAM-13", "host": HOST}
    run = pamlib.score_table([_row(i, r) for i, r in enumerate(codes)], **choice)
    assert run.summary.n_rejected == 0
    table = run.scored.to_arrow().to_pylist()
    batch = pamlib.score_many(PAM13, codes, provider=chosen, host=HOST)
    for i, row in enumerate(codes):
        assessment = from_dict(_document(i, row), Assessment, instruments=HOST.instruments())
        result = pamlib.score(assessment, provider=chosen, host=HOST)
        assert batch.result(i, f"a{i}") == result
        expected = {k: table[i][k] for k in _as_row(result)}
        expected["flags"] = sorted(expected["flags"])
        assert _as_row(result) == expected
        one = pamlib.score_table([_row(i, row)], **choice)
        assert one.scored.to_arrow().to_pylist() == [table[i]]
        assert loads(dumps(result), ScoreResult, instruments=REGISTRY) == result


def test_mode_given_as_text_is_the_mode() -> None:
    a = from_dict(ASSESSMENT | {"mode": "self-paper"}, Assessment, instruments=REGISTRY)
    assert a.mode is Mode.SELF_PAPER


# -- 11. what the constructors let through ------------------------------------------------------


def test_an_assessment_s_id_and_attributes_are_text() -> None:
    day = dt.date(2024, 1, 1)
    with pytest.raises(ValidationError) as caught:
        Assessment(5, Patient(PID), PAM13, day, {})  # type: ignore[arg-type]
    assert [(p.where, p.code) for p in caught.value.problems] == [("id", "type")]
    with pytest.raises(ValidationError) as caught:
        Assessment("a", Patient(PID), PAM13, day, {}, attributes={"age": 5})  # type: ignore[dict-item]
    assert [(p.where, p.code) for p in caught.value.problems] == [("attributes['age']", "type")]
    assert "5" not in str(caught.value)
    ok = Assessment("a", Patient(PID), PAM13, day, {}, attributes={"age": "5"})
    assert from_dict(to_dict(ok), Assessment, instruments=REGISTRY) == ok


@pytest.mark.parametrize("name", ["", "  ", None])
def test_a_cutpoint_set_needs_an_id(name: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        CutpointSet(name, (40.0, 50.0, 60.0))
    assert [(p.where, p.code) for p in caught.value.problems] == [("id", "empty")]


def test_a_context_pickles_and_copies() -> None:
    from pamlib.tailoring.context import Context

    context = Context(
        "A1", score=47.1, level=2, assessed_on=dt.date(2024, 1, 1), flags={"demo"},
        attributes={"condition": " COPD "}, instrument="PAM-13",
    )  # fmt: skip
    assert pickle.loads(pickle.dumps(context)) == context
    assert copy.copy(context) == context
    assert copy.deepcopy(context).attributes == {"condition": "COPD"}


@pytest.mark.parametrize("value", [math.inf, -math.inf, np.float64(np.inf)])
def test_dumps_refuses_an_infinity_at_its_path(value: float) -> None:
    result = ScoreResult("a", ScoreStatus.SCORED, "p", "1", 13, theta=value)
    with pytest.raises(ValidationError) as caught:
        dumps(result)
    assert [(p.where, p.code) for p in caught.value.problems] == [("$.theta", "not-finite")]
    assert ScoreResult("a", ScoreStatus.SCORED, "p", "1", 13, theta=math.nan).theta is None
