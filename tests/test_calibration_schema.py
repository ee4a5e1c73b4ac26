"""The JSON Schema in the docs and the loader agree on what a calibration file is."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pamlib.errors import CalibrationError
from pamlib.plugins import PluginHost
from pamlib.scoring.calibration import (
    calibration_json_schema,
    load_calibration,
    parse_calibration,
)
from pamlib.scoring.demo import demo_calibration
from tests.calibrations import PAM13, future, pcm_document, rsm_document
from tests.conftest import ROOT

jsonschema = pytest.importorskip("jsonschema")

DOCS = ROOT / "docs"
SCHEMA = json.loads((DOCS / "calibration.schema.json").read_text(encoding="utf-8"))
LICENCE = {"licensee": "Example Trust", "valid_until": "2031-03-31", "reference": "L-1"}


def schema_accepts(doc: Any) -> bool:
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return bool(validator.is_valid(doc))


def loader_accepts(doc: Any, host: PluginHost) -> bool:
    try:
        parse_calibration(doc, host=host)
    except CalibrationError:
        return False
    return True


def without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in keys}


def scale(**fields: Any) -> dict[str, Any]:
    return {"intercept": 50, "slope": 9.4, "min": 0, "max": 100, **fields}


VALID: dict[str, Any] = {
    "rating scale": rsm_document(),
    "partial credit": pcm_document(),
    "mle": rsm_document(estimator={"method": "mle", "extreme_adjustment": 0.3}),
    "mle default": rsm_document(estimator={"method": "mle"}),
    "eap": rsm_document(estimator={"method": "eap", "prior_mean": 0, "prior_sd": 1}),
    "eap points": rsm_document(estimator={"method": "eap", "quadrature_points": 61}),
    "no estimator": without(rsm_document(), "estimator"),
    "no cutpoints": without(rsm_document(), "cutpoints"),
    "scale without decimals": rsm_document(scale=scale()),
    "integer-valued float": rsm_document(min_answered=7.0),
    "licensed": rsm_document(licence=LICENCE),
    "demo": rsm_document(demo=True),
    "descriptive fields": rsm_document(name="Test", description="Made up.", source="tests"),
    "$schema": rsm_document(**{"$schema": SCHEMA["$id"]}),
    "extreme not scored": rsm_document(extreme_response="not-scored"),
    "decimals 0 without levels": without(rsm_document(scale=scale(decimals=0)), "cutpoints"),
    "decimals 4 without levels": without(rsm_document(scale=scale(decimals=4)), "cutpoints"),
    "smallest settings": rsm_document(
        estimator={"method": "eap", "prior_sd": 0.1, "quadrature_points": 11},
        scale=scale(slope=0.01, intercept=-10000, min=0, max=0.1),
    ),
    "largest settings": rsm_document(
        estimator={"method": "eap", "prior_sd": 10, "quadrature_points": 2001},
        scale=scale(slope=1000, intercept=10000, min=99.9, max=100),
    ),
    "smallest adjustment": rsm_document(estimator={"method": "mle", "extreme_adjustment": 0.01}),
}

INVALID: dict[str, Any] = {
    "not an object": [rsm_document()],
    "no id": without(rsm_document(), "id"),
    "id with a space": rsm_document(id="my calibration"),
    "blank version": rsm_document(version="  "),
    "numeric version": rsm_document(version=1),
    "unknown model": rsm_document(model="graded-response"),
    "unknown field": rsm_document(colour="blue"),
    "no scale": without(rsm_document(), "scale"),
    "unknown scale field": rsm_document(scale=scale(offset=1)),
    "zero slope": rsm_document(scale=scale(slope=0)),
    "negative slope": rsm_document(scale=scale(slope=-9.4)),
    "boolean slope": rsm_document(scale=scale(slope=True)),
    "too many decimals": rsm_document(scale=scale(decimals=5)),
    "text threshold": rsm_document(thresholds=[-1, "0", 1]),
    "no thresholds": rsm_document(thresholds=[]),
    "logit out of range": rsm_document(thresholds=[-1, 0, 51]),
    "rating scale with steps": rsm_document(steps={"pam13.01": [0, 1, 2]}),
    "rating scale without thresholds": without(rsm_document(), "thresholds"),
    "partial credit with thresholds": pcm_document(thresholds=[-1, 0, 1]),
    "partial credit without steps": without(pcm_document(), "steps"),
    "empty steps": pcm_document(steps={}),
    "unknown method": rsm_document(estimator={"method": "bayes"}),
    "no method": rsm_document(estimator={"prior_sd": 1}),
    "setting of another method": rsm_document(estimator={"method": "wle", "prior_sd": 1}),
    "adjustment too large": rsm_document(estimator={"method": "mle", "extreme_adjustment": 0.5}),
    "zero prior sd": rsm_document(estimator={"method": "eap", "prior_sd": 0}),
    "tiny prior sd": rsm_document(estimator={"method": "eap", "prior_sd": 1e-300}),
    "wide prior sd": rsm_document(estimator={"method": "eap", "prior_sd": 10.5}),
    "tiny adjustment": rsm_document(estimator={"method": "mle", "extreme_adjustment": 1e-300}),
    "too few points": rsm_document(estimator={"method": "eap", "quadrature_points": 10}),
    "too many points": rsm_document(estimator={"method": "eap", "quadrature_points": 2002}),
    "documented maximum before": rsm_document(
        estimator={"method": "eap", "quadrature_points": 100001}
    ),
    "huge slope": rsm_document(scale=scale(slope=1e20)),
    "tiny slope": rsm_document(scale=scale(slope=1e-300)),
    "huge max": rsm_document(scale=scale(max=1e300)),
    "huge min": rsm_document(scale=scale(min=-1e300)),
    "huge intercept": rsm_document(scale=scale(intercept=1e20)),
    "fractional points": rsm_document(estimator={"method": "eap", "quadrature_points": 40.5}),
    "min_answered 0": rsm_document(min_answered=0),
    "fractional min_answered": rsm_document(min_answered=6.5),
    "boolean min_answered": rsm_document(min_answered=True),
    "demo as text": rsm_document(demo="yes"),
    "unknown extreme policy": rsm_document(extreme_response="drop"),
    "licence without date": rsm_document(licence={"licensee": "Example Trust"}),
    "licence date as text": rsm_document(licence={**LICENCE, "valid_until": "March 2031"}),
    "impossible date": rsm_document(licence={**LICENCE, "valid_until": "2031-02-30"}),
    "unknown licence field": rsm_document(licence={**LICENCE, "seats": 10}),
    "blank licensee": rsm_document(licence={**LICENCE, "licensee": " "}),
    "demo with a licence": rsm_document(demo=True, licence=LICENCE),
    "blank name": rsm_document(name=" "),
}

#: What only the loader can check: it depends on the registered instruments and cut-point sets,
#: or relates two fields in a way JSON Schema cannot express (min < max).
LOADER_ONLY: dict[str, Any] = {
    "unknown instrument": rsm_document(instrument="PAM-99"),
    "unknown item": rsm_document(item_difficulties={"pam13.99": 0.0}),
    "missing item": pcm_document(steps={"pam13.01": [-1, 0, 1]}),
    "too few thresholds for four categories": rsm_document(thresholds=[-1, 1]),
    "too many steps for four categories": pcm_document(
        steps={item: [-1, 0, 1, 2] for item in PAM13.items}
    ),
    "min_answered above the number of items": rsm_document(min_answered=14),
    "unknown cut-point set": rsm_document(cutpoints="2031"),
    "min above max": rsm_document(scale=scale(min=100, max=0)),
    "decimals 0 with one-decimal cut points": rsm_document(scale=scale(decimals=0)),
    "decimals 2 with one-decimal cut points": rsm_document(scale=scale(decimals=2)),
    "min finer than the score": rsm_document(scale=scale(min=0.05)),
    "max finer than the score": without(
        rsm_document(scale=scale(max=99.5, decimals=0)), "cutpoints"
    ),
}


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("name", sorted(VALID))
def test_both_accept_valid_examples(name: str, host: PluginHost) -> None:
    assert schema_accepts(VALID[name])
    assert loader_accepts(VALID[name], host)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_both_reject_invalid_examples(name: str, host: PluginHost) -> None:
    assert not schema_accepts(INVALID[name])
    assert not loader_accepts(INVALID[name], host)


@pytest.mark.parametrize("name", sorted(LOADER_ONLY))
def test_the_loader_also_checks_against_the_instrument(name: str, host: PluginHost) -> None:
    assert schema_accepts(LOADER_ONLY[name])
    assert not loader_accepts(LOADER_ONLY[name], host)


def test_every_document_pamlib_writes_is_valid(host: PluginHost) -> None:
    for instrument in host.instruments():
        assert schema_accepts(demo_calibration(instrument).to_document())
    licensed = parse_calibration(
        rsm_document(licence={**LICENCE, "valid_until": future()}), host=host
    )
    assert schema_accepts(licensed.to_document())


@pytest.mark.parametrize("name", ["synthetic-demo-PAM-13.json", "synthetic-demo-PAM-13.toml"])
def test_the_example_files_in_the_docs_are_the_demo_calibration(
    name: str, host: PluginHost
) -> None:
    path = DOCS / "examples" / name
    cal = load_calibration(path, host=host)
    assert cal == demo_calibration(PAM13)
    assert cal.sha256 == demo_calibration(PAM13).sha256
    assert cal.demo
    assert cal.licence is None
    if path.suffix == ".json":
        assert schema_accepts(json.loads(path.read_text(encoding="utf-8")))


def test_the_docs_show_the_schema_file() -> None:
    text = (DOCS / "calibration.rst").read_text(encoding="utf-8")
    assert ".. literalinclude:: calibration.schema.json" in text


def test_the_checked_in_schema_is_the_generated_one() -> None:
    generated = json.dumps(calibration_json_schema(), indent=2, ensure_ascii=False) + "\n"
    checked_in = (DOCS / "calibration.schema.json").read_text(encoding="utf-8")
    assert checked_in == generated, "run scripts/write-calibration-schema.py"


def test_the_schema_states_the_loaders_numeric_ranges() -> None:
    from pamlib.results import REPORTING_SCALE
    from pamlib.scoring._engine import (
        MLE_ADJUSTMENT_RANGE,
        PRIOR_SD_RANGE,
        QUADRATURE_POINTS_RANGE,
    )
    from pamlib.scoring.calibration import (
        MAX_ABS_LOGIT,
        MAX_ABS_SCORE,
        MAX_DECIMALS,
        SLOPE_RANGE,
    )

    mle, eap = (SCHEMA["properties"]["estimator"]["oneOf"][i]["properties"] for i in (1, 2))
    adjustment = mle["extreme_adjustment"]
    assert (adjustment["minimum"], adjustment["exclusiveMaximum"]) == MLE_ADJUSTMENT_RANGE
    assert (eap["prior_sd"]["minimum"], eap["prior_sd"]["maximum"]) == PRIOR_SD_RANGE
    points = eap["quadrature_points"]
    assert (points["minimum"], points["maximum"]) == QUADRATURE_POINTS_RANGE
    scale = SCHEMA["properties"]["scale"]["properties"]
    assert (scale["slope"]["minimum"], scale["slope"]["maximum"]) == SLOPE_RANGE
    assert scale["decimals"]["maximum"] == MAX_DECIMALS
    score = SCHEMA["$defs"]["score"]
    assert (score["minimum"], score["maximum"]) == (-MAX_ABS_SCORE, MAX_ABS_SCORE)
    assert scale["intercept"] == {"$ref": "#/$defs/score"}
    reported = SCHEMA["$defs"]["reportedScore"]
    assert (reported["minimum"], reported["maximum"]) == REPORTING_SCALE
    for key in ("min", "max"):
        assert scale[key] == {"$ref": "#/$defs/reportedScore"}
    logit = SCHEMA["$defs"]["logit"]
    assert (logit["minimum"], logit["maximum"]) == (-MAX_ABS_LOGIT, MAX_ABS_LOGIT)


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("prior_sd", 0.1, 10),
        ("quadrature_points", 11, 2001),
    ],
)
def test_every_range_edge_is_accepted_and_just_outside_refused(
    field: str, low: float, high: float, host: PluginHost
) -> None:
    step = 1 if isinstance(low, int) else 1e-9
    for value, ok in ((low, True), (high, True), (low - step, False), (high + step, False)):
        doc = rsm_document(estimator={"method": "eap", field: value})
        assert schema_accepts(doc) is ok
        assert loader_accepts(doc, host) is ok


def test_the_docs_table_states_the_same_ranges() -> None:
    from pamlib.results import REPORTING_SCALE
    from pamlib.scoring._engine import (
        MLE_ADJUSTMENT_RANGE,
        PRIOR_SD_RANGE,
        QUADRATURE_POINTS_RANGE,
    )
    from pamlib.scoring.calibration import MAX_ABS_SCORE, SLOPE_RANGE

    text = (DOCS / "calibration.rst").read_text(encoding="utf-8")
    for phrase in (
        f"{MLE_ADJUSTMENT_RANGE[0]:g} … below {MLE_ADJUSTMENT_RANGE[1]:g} score points",
        f"{PRIOR_SD_RANGE[0]:g} … {PRIOR_SD_RANGE[1]:g} logits",
        f"{QUADRATURE_POINTS_RANGE[0]} … {QUADRATURE_POINTS_RANGE[1]}",
        f"{SLOPE_RANGE[0]:g} … {SLOPE_RANGE[1]:g} score points/logit",
        f"−{MAX_ABS_SCORE:g} … {MAX_ABS_SCORE:g}",
        f"{REPORTING_SCALE[0]:g} … {REPORTING_SCALE[1]:g} (the reporting scale)",
    ):
        assert phrase in text
