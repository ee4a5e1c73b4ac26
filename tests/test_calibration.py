"""Calibration files: loading, every problem named with its file and field, the content hash."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pamlib.errors import CalibrationError, LicensedContentError, Problem
from pamlib.plugins import PluginHost
from pamlib.scoring._engine import EAP, MLE, WLE
from pamlib.scoring.calibration import (
    Calibration,
    CalibrationModel,
    ExtremeResponse,
    Scale,
    canonical_json,
    load_calibration,
    parse_calibration,
)
from tests.calibrations import (
    PAM10,
    PAM13,
    calibration_documents,
    future,
    pcm_document,
    rsm_document,
    write,
)


def problems_of(exc: pytest.ExceptionInfo[CalibrationError]) -> dict[str, Problem]:
    return {p.where: p for p in exc.value.problems}


#: pamlib's built-in plugins only, passed explicitly to what the helpers below call.
BUILTINS = PluginHost(load_entry_points=False, disabled=())


def load_doc(tmp_path: Path, doc: Any, fmt: str = "json") -> Calibration:
    return load_calibration(write(tmp_path, doc, fmt), host=BUILTINS)


# -- loading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [rsm_document, pcm_document])
def test_json_and_toml_with_the_same_content_are_the_same_calibration(
    tmp_path: Path, host: PluginHost, make: Any
) -> None:
    doc = make()
    from_json = load_calibration(write(tmp_path, doc, "json"), host=host)
    from_toml = load_calibration(write(tmp_path, doc, "toml"), host=host)
    assert from_json == from_toml
    assert from_json.sha256 == from_toml.sha256
    assert len(from_json.sha256) == 64


def test_a_rating_scale_file_reads_into_instrument_order(tmp_path: Path, host: PluginHost) -> None:
    doc = rsm_document()
    doc["item_difficulties"] = dict(reversed(list(doc["item_difficulties"].items())))
    cal = load_doc(tmp_path, doc)
    assert cal.items == PAM13.items
    assert cal.item_difficulties == tuple(rsm_document()["item_difficulties"].values())
    assert cal.model is CalibrationModel.RATING_SCALE
    assert cal.estimator == WLE()
    assert cal.scale == Scale(50.0, 10.0, 0.0, 100.0, 1)
    assert cal.policy.min_answered == 7
    assert cal.policy.extreme_response is ExtremeResponse.FLAG
    model = cal.step_model()
    assert (model.n_items, model.n_steps) == (13, 3)
    assert cal.item_difficulties is not None
    assert cal.thresholds is not None
    expected = np.add.outer(cal.item_difficulties, cal.thresholds)
    assert np.array_equal(model.steps, expected)


def test_a_partial_credit_file_gives_each_item_its_steps(tmp_path: Path, host: PluginHost) -> None:
    doc = pcm_document()
    cal = load_doc(tmp_path, doc)
    assert cal.steps == tuple(tuple(doc["steps"][i]) for i in PAM13.items)
    assert cal.estimator == EAP(prior_mean=0.5, prior_sd=1.5)
    assert cal.extreme_response is ExtremeResponse.NOT_SCORED
    assert np.array_equal(cal.step_model().steps, np.array(cal.steps))


def test_estimator_defaults(tmp_path: Path, host: PluginHost) -> None:
    doc = rsm_document()
    del doc["estimator"]
    assert load_doc(tmp_path, doc).estimator == WLE()
    assert load_doc(tmp_path, rsm_document(estimator={"method": "mle"})).estimator == MLE(0.3)
    assert load_doc(tmp_path, rsm_document(estimator={"method": "eap"})).estimator == EAP()


def test_a_licence_block_is_read_as_a_date(tmp_path: Path, host: PluginHost) -> None:
    doc = rsm_document(licence={"licensee": "Example Trust", "valid_until": "2031-03-31"})
    cal = load_doc(tmp_path, doc)
    assert cal.licence is not None
    assert cal.licence.valid_until == dt.date(2031, 3, 31)
    toml = write(tmp_path, rsm_document(), "toml", name="dated")
    toml.write_text(
        toml.read_text() + '\n[licence]\nlicensee = "Example Trust"\nvalid_until = 2031-03-31\n'
    )
    assert load_calibration(toml, host=host).licence == cal.licence


def test_to_document_loads_back_to_the_same_calibration(tmp_path: Path, host: PluginHost) -> None:
    cal = load_doc(tmp_path, pcm_document())
    again = parse_calibration(cal.to_document(), host=host)
    assert again == cal
    assert again.sha256 == cal.sha256


@settings(max_examples=40)
@given(calibration_documents())
def test_any_valid_document_round_trips_with_its_hash(doc: dict[str, Any]) -> None:
    host = PluginHost(load_entry_points=False, disabled=())
    cal = parse_calibration(doc, host=host)
    again = parse_calibration(json.loads(json.dumps(cal.to_document())), host=host)
    assert again == cal
    assert again.sha256 == cal.sha256


# -- the content hash ------------------------------------------------------------------------


def test_the_hash_is_sha256_of_the_canonical_document(tmp_path: Path, host: PluginHost) -> None:
    cal = load_doc(tmp_path, rsm_document())
    assert cal.sha256 == hashlib.sha256(canonical_json(cal.to_document())).hexdigest()


def test_the_hash_ignores_spelling_but_not_content(tmp_path: Path, host: PluginHost) -> None:
    base = load_doc(tmp_path, rsm_document()).sha256
    # The same content spelled differently: defaults written out, 50 for 50.0, $schema, order.
    same = rsm_document(extreme_response="flag", demo=False)
    same["scale"] = {"decimals": 1, "max": 100.0, "min": 0.0, "slope": 10, "intercept": 50}
    same["$schema"] = "https://pamlib.readthedocs.io/en/latest/calibration.schema.json"
    same = dict(reversed(list(same.items())))
    assert load_doc(tmp_path, same).sha256 == base
    # Any change of content changes it.
    changed = [
        rsm_document(version="2"),
        rsm_document(min_answered=8),
        rsm_document(thresholds=[-2.0, 0.0, 2.001]),
        rsm_document(estimator={"method": "mle"}),
        rsm_document(cutpoints="hibbard-2005"),
        rsm_document(licence={"licensee": "Example Trust", "valid_until": future()}),
    ]
    hashes = {load_doc(tmp_path, doc).sha256 for doc in changed}
    assert base not in hashes
    assert len(hashes) == len(changed)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (50.0, "50"),
        (7, "7"),
        (-1.2, "-1.2"),
        (4.5, "4.5"),
        (0.002, "0.002"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e21, "1e+21"),
        (1e30, "1e+30"),
        (333333333.33333329, "333333333.3333333"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
    ],
)
def test_canonical_numbers_are_written_as_ecmascript_does(number: float, text: str) -> None:
    """RFC 8785 §3.2.2.3: numbers serialise as ECMAScript's Number.prototype.toString."""
    assert canonical_json(number).decode() == text


def test_canonical_keys_sort_by_utf16_code_units() -> None:
    # U+1F600 is a surrogate pair (D83D DE00) and sorts before U+FB01 in UTF-16, not in UTF-32.
    doc = {"\ufb01": 1, "\U0001f600": 2, "b": [True, None, "x\n"], "a": {"z": 1, "y": 2}}
    expected = '{"a":{"y":2,"z":1},"b":[true,null,"x\\n"],"\U0001f600":2,"\ufb01":1}'
    assert canonical_json(doc).decode() == expected


def test_canonical_json_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(ValueError, match="NaN"):
        canonical_json(float("nan"))
    with pytest.raises(TypeError):
        canonical_json({"a": object()})


# -- every problem, with the file and the field ------------------------------------------------


def test_every_problem_is_reported_at_once_naming_file_and_field(
    tmp_path: Path, host: PluginHost
) -> None:
    doc = rsm_document(min_answered=0, colour="blue")
    doc["scale"]["slope"] = -9.4
    doc["thresholds"] = [-1.0, "high", 1.0]
    del doc["item_difficulties"]["pam13.05"]
    doc["item_difficulties"]["pam13.99"] = 0.0
    path = write(tmp_path, doc, "json", name="site-cal")
    with pytest.raises(CalibrationError) as exc:
        load_calibration(path, host=host)
    found = problems_of(exc)
    name = str(path)
    expected = {
        f"{name}: min_answered": "range",
        f"{name}: colour": "unknown-field",
        f"{name}: scale.slope": "range",
        f"{name}: thresholds[1]": "type",
        f'{name}: item_difficulties["pam13.05"]': "missing-item",
        f'{name}: item_difficulties["pam13.99"]': "unknown-item",
    }
    assert {w: p.code for w, p in found.items()} == expected
    assert name in str(exc.value)


@pytest.mark.parametrize("fmt", ["json", "toml"])
@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"id": ""}, "id", "type"),
        ({"id": "has space"}, "id", "pattern"),
        ({"version": 1}, "version", "type"),
        ({"instrument": "PAM-99"}, "instrument", "unknown-instrument"),
        ({"model": "graded"}, "model", "choice"),
        ({"thresholds": [-1.0, 1.0]}, "thresholds", "length"),
        ({"thresholds": [-1.0, 0.0, 60.0]}, "thresholds[2]", "range"),
        ({"steps": {}}, "steps", "model"),
        ({"estimator": {"method": "bayes"}}, "estimator.method", "choice"),
        ({"estimator": {"method": "wle", "prior_sd": 1}}, "estimator.prior_sd", "unknown-field"),
        (
            {"estimator": {"method": "mle", "extreme_adjustment": 0.5}},
            "estimator.extreme_adjustment",
            "range",
        ),
        ({"estimator": {"method": "eap", "prior_sd": 0}}, "estimator.prior_sd", "range"),
        (
            {"estimator": {"method": "eap", "quadrature_points": 10}},
            "estimator.quadrature_points",
            "range",
        ),
        ({"scale": {"intercept": 50, "slope": 9, "min": 100, "max": 0}}, "scale.max", "range"),
        ({"scale": {"intercept": 50, "slope": 9, "min": 0}}, "scale.max", "required"),
        (
            {"scale": {"intercept": 50, "slope": 9, "min": 0, "max": 100, "decimals": 9}},
            "scale.decimals",
            "range",
        ),
        ({"min_answered": 14}, "min_answered", "range"),
        ({"min_answered": 6.5}, "min_answered", "type"),
        ({"min_answered": True}, "min_answered", "type"),
        ({"cutpoints": "2031"}, "cutpoints", "unknown-cutpoints"),
        ({"extreme_response": "drop"}, "extreme_response", "choice"),
        ({"demo": "yes"}, "demo", "type"),
        ({"licence": {"licensee": "Example Trust"}}, "licence.valid_until", "required"),
        (
            {"licence": {"licensee": "Example Trust", "valid_until": "31/03/2031"}},
            "licence.valid_until",
            "date",
        ),
        (
            {"licence": {"licensee": "Example Trust", "valid_until": "2031-02-30"}},
            "licence.valid_until",
            "date",
        ),
        (
            {"demo": True, "licence": {"licensee": "Example Trust", "valid_until": "2031-03-31"}},
            "licence",
            "demo-licence",
        ),
    ],
)
def test_one_bad_field_is_named(
    tmp_path: Path, host: PluginHost, *, fmt: str, change: dict[str, Any], field: str, code: str
) -> None:
    path = write(tmp_path, rsm_document(**change), fmt)
    with pytest.raises(CalibrationError) as exc:
        load_calibration(path, host=host)
    assert [(p.where, p.code) for p in exc.value.problems] == [(f"{path}: {field}", code)]


def test_partial_credit_fields_are_checked_per_item(tmp_path: Path, host: PluginHost) -> None:
    doc = pcm_document(thresholds=[-1.0, 0.0, 1.0])
    doc["steps"]["pam13.02"] = [0.1, 0.2]
    doc["steps"]["pam13.03"] = [0.1, None, 0.3]
    path = write(tmp_path, doc, "json")
    with pytest.raises(CalibrationError) as exc:
        load_calibration(path, host=host)
    assert {(p.where, p.code) for p in exc.value.problems} == {
        (f"{path}: thresholds", "model"),
        (f'{path}: steps["pam13.02"]', "length"),
        (f'{path}: steps["pam13.03"][1]', "type"),
    }


def test_missing_fields_are_all_named(tmp_path: Path, host: PluginHost) -> None:
    path = write(tmp_path, {"model": "partial-credit"}, "json")
    with pytest.raises(CalibrationError) as exc:
        load_calibration(path, host=host)
    fields = {p.where.removeprefix(f"{path}: ") for p in exc.value.problems}
    assert fields == {"id", "version", "instrument", "scale", "min_answered", "steps"}


@pytest.mark.parametrize(
    ("text", "where", "code"),
    [
        ('{"id": "x",\n "version": }', ": line 2 column 13", "json"),
        ('{"id": "x", "id": "y"}', "", "duplicate-key"),
        ('{"id": NaN}', "", "json"),
        ("[1, 2]", "", "type"),
    ],
)
def test_json_syntax_problems_name_the_file(
    tmp_path: Path, host: PluginHost, text: str, where: str, code: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(CalibrationError) as exc:
        load_calibration(path, host=host)
    assert (exc.value.problems[0].where, exc.value.problems[0].code) == (f"{path}{where}", code)


def test_unreadable_files_are_named(tmp_path: Path, host: PluginHost) -> None:
    cases = {
        tmp_path / "cal.yaml": "format",
        tmp_path / "absent.json": "unreadable",
    }
    (tmp_path / "cal.yaml").write_text("id: x")
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("id = = 1")
    cases[bad_toml] = "toml"
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"id": "caf\xe9"}')
    cases[latin] = "encoding"
    for path, code in cases.items():
        with pytest.raises(CalibrationError) as exc:
            load_calibration(path)
        assert [(p.where, p.code) for p in exc.value.problems] == [(str(path), code)]


def test_direct_construction_checks_invariants() -> None:
    with pytest.raises(CalibrationError) as exc:
        Calibration(
            id="direct",
            version="1",
            instrument="PAM-10",
            model="rating-scale",
            items=PAM10.items,
            item_difficulties=[0.0] * 9,
            thresholds=[-1.0, 0.0, 1.0],
            scale=Scale(50, -1, 0, 100),
            min_answered=0,
        )
    wheres = {p.where for p in exc.value.problems}
    assert wheres == {"direct: item_difficulties", "direct: scale.slope", "direct: min_answered"}


# -- licensed content stays in memory --------------------------------------------------------


def test_reprs_show_ids_and_hash_never_parameters(tmp_path: Path, host: PluginHost) -> None:
    cal = load_doc(tmp_path, rsm_document())
    compiled = cal.compile()
    for text in (repr(cal), repr(compiled), str(cal)):
        assert "test-rsm" in text
        assert "-1.2" not in text
        assert "thresholds" not in text
        assert "50.0" not in text


def test_calibrations_refuse_to_be_pickled(tmp_path: Path, host: PluginHost) -> None:
    # Read from a file, a calibration pickles as a reference to it (tests/test_pickling.py);
    # built in memory, or compiled, it refuses.
    cal = parse_calibration(rsm_document(), host=host)
    for obj in (cal, cal.compile(), load_doc(tmp_path, rsm_document()).compile()):
        with pytest.raises(LicensedContentError):
            pickle.dumps(obj)
        assert copy.deepcopy(obj) is obj
        assert copy.copy(obj) is obj


# -- injected problems are each reported at their path -----------------------------------------

#: (field path, bad value, code): each breaks one field of a valid document and nothing else.
#: A path ending in a key the document lacks adds that key.
INJECTIONS: list[tuple[str, Any, str]] = [
    ("id", 5, "type"),
    ("id", "two words", "pattern"),
    ("version", " ", "type"),
    ("name", ["x"], "type"),
    ("demo", "yes", "type"),
    ("model", "graded", "choice"),
    ("scale.intercept", "fifty", "type"),
    ("scale.slope", -1, "range"),
    ("scale.decimals", 9, "range"),
    ("scale.offset", 1, "unknown-field"),
    ("min_answered", 0, "range"),
    ("min_answered", 1.5, "type"),
    ("extreme_response", "drop", "choice"),
    ("estimator.method", "bayes", "choice"),
    ("cutpoints", "2031", "unknown-cutpoints"),
    ("colour", "blue", "unknown-field"),
    ("licence", "yes", "type"),
]


def inject(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, key = path.split(".")
    for parent in parents:
        doc = doc[parent]
    doc[key] = value


@settings(max_examples=60, deadline=None)
@given(
    calibration_documents(licensed=False),
    st.lists(st.sampled_from(INJECTIONS), min_size=1, max_size=6, unique_by=lambda i: i[0]),
    st.booleans(),
)
def test_every_injected_problem_is_reported_at_its_path(
    doc: dict[str, Any], injections: list[tuple[str, Any, str]], break_a_parameter: bool
) -> None:
    host = PluginHost(load_entry_points=False, disabled=())
    expected = {(path, code) for path, _, code in injections}
    for path, value, _ in injections:
        inject(doc, path, value)
    if break_a_parameter:  # inside a per-item mapping or an array, by the model's parameters
        if "thresholds" in doc:
            doc["thresholds"][1] = "high"
            expected.add(("thresholds[1]", "type"))
        else:
            first = next(iter(doc["steps"]))
            doc["steps"][first][0] = 99
            expected.add((f'steps["{first}"][0]', "range"))
    with pytest.raises(CalibrationError) as exc:
        parse_calibration(doc, source="cal.toml", host=host)
    found = {(p.where.removeprefix("cal.toml: "), p.code) for p in exc.value.problems}
    assert found == expected
