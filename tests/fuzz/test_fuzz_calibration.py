"""Fuzzing calibration files: only CalibrationError, and whatever is accepted scores cleanly.

Two properties:

* any document — a valid one perturbed (wrong types, extreme numbers, nan/inf, huge integers,
  deep nesting, missing or duplicate keys, odd unicode), or its text cut or corrupted — through
  the file loader, as JSON and as TOML, raises nothing but :class:`CalibrationError`;
* any calibration the loader accepts, down to the edges of every documented range, scores every
  (answered items, raw score) — and so, by sufficiency, every answer pattern — to a finite θ and
  SE and a score within the scale, quickly.

Crashing inputs found on the way are kept, minimised, in ``corpus/calibration`` and replayed.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, assume, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.errors import CalibrationError
from pamlib.instruments import Instrument
from pamlib.plugins import PluginHost
from pamlib.results import REPORTING_SCALE
from pamlib.scoring._engine import MLE_ADJUSTMENT_RANGE, PRIOR_SD_RANGE, QUADRATURE_POINTS_RANGE
from pamlib.scoring.calibration import (
    MAX_ABS_LOGIT,
    MAX_ABS_SCORE,
    SLOPE_RANGE,
    Calibration,
    load_calibration,
)
from pamlib.scoring.rasch import CalibratedScorer, RaschProvider
from tests.calibrations import PAM10, PAM13, rsm_document, to_toml, write

CORPUS = Path(__file__).parent / "corpus" / "calibration"
HOST = PluginHost(load_entry_points=False, disabled=())
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
#: Seconds one accepted calibration may take to score every sampled answered-items pattern.
QUICK = 10.0


# -- scoring what was accepted ------------------------------------------------------------------


def patterns(instrument: Instrument, masks: list[int]) -> npt.NDArray[np.int8]:
    """One answer pattern per (mask, raw score): raw points filled item by item (codes 1–4)."""
    top = instrument.n_categories - 1
    rows = []
    for mask in masks:
        answered = [j for j in range(instrument.n_items) if mask >> j & 1]
        for raw in range(top * len(answered) + 1):
            codes = [0] * instrument.n_items
            left = raw
            for j in answered:
                codes[j] = 1 + min(top, left)
                left -= codes[j] - 1
            rows.append(codes)
    return np.array(rows, dtype=np.int8)


def check_scores_cleanly(cal: Calibration, masks: list[int] | None = None) -> None:
    """Every (mask, raw) of ``masks`` (default: the complete mask and each single item) scores
    to finite numbers on the scale."""
    instrument = HOST.instruments().get(cal.instrument)
    n = instrument.n_items
    if masks is None:
        masks = [(1 << n) - 1, *(1 << j for j in range(n))]
    cut = HOST.cutpoint_sets().get(cal.cutpoints) if cal.cutpoints else None
    scorer = CalibratedScorer(cal.compile(), cut, 0)
    codes = patterns(instrument, masks)
    start = time.perf_counter()
    batch = scorer.score(instrument, codes, RaschProvider())
    assert time.perf_counter() - start < QUICK
    s = cal.scale
    scored = batch.scored
    assert scored.any() or cal.min_answered > 1 or cal.extreme_response == "not-scored"
    for column in (batch.theta, batch.theta_se, batch.score, batch.score_se):
        assert np.all(np.isfinite(column[scored]))
        assert np.all(np.isnan(column[~scored]))
    assert np.all(batch.theta_se[scored] > 0)
    assert np.all((batch.score[scored] >= s.min) & (batch.score[scored] <= s.max))
    if cut is not None:
        assert np.all(batch.level[scored] >= 1)
        assert np.array_equal(batch.level[scored], cut.levels(batch.score[scored]))


# -- documents at the edges of every range ------------------------------------------------------


def edge_floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([low, high]), st.floats(low, high, allow_nan=False))


logits = edge_floats(-MAX_ABS_LOGIT, MAX_ABS_LOGIT)
scores = st.integers(int(REPORTING_SCALE[0]), int(REPORTING_SCALE[1]))


@st.composite
def edge_estimators(draw: st.DrawFn) -> dict[str, Any]:
    method = draw(st.sampled_from(["wle", "mle", "eap"]))
    if method == "wle":
        return {"method": "wle"}
    if method == "mle":
        low, high = MLE_ADJUSTMENT_RANGE
        adj = draw(st.one_of(st.just(low), st.floats(low, high, exclude_max=True)))
        return {"method": "mle", "extreme_adjustment": adj}
    doc: dict[str, Any] = {
        "method": "eap",
        "prior_mean": draw(logits),
        "prior_sd": draw(edge_floats(*PRIOR_SD_RANGE)),
    }
    if draw(st.booleans()):
        low, high = QUADRATURE_POINTS_RANGE
        doc["quadrature_points"] = draw(
            st.one_of(st.sampled_from([low, high]), st.integers(low, high))
        )
    return doc


@st.composite
def edge_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Valid calibration documents with every number anywhere in its documented range."""
    inst = draw(st.sampled_from([PAM13, PAM10]))
    low, high = sorted(draw(st.lists(scores, min_size=2, max_size=2, unique=True)))
    doc: dict[str, Any] = {
        "id": "fuzz",
        "version": "1",
        "instrument": inst.id,
        "estimator": draw(edge_estimators()),
        "scale": {
            "intercept": draw(edge_floats(-MAX_ABS_SCORE, MAX_ABS_SCORE)),
            "slope": draw(edge_floats(*SLOPE_RANGE)),
            "min": low,
            "max": high,
            "decimals": draw(st.integers(0, 4)),
        },
        "min_answered": draw(st.integers(1, inst.n_items)),
        "extreme_response": draw(st.sampled_from(["flag", "not-scored", "ignore"])),
    }
    if draw(st.booleans()):
        doc["cutpoints"] = draw(st.sampled_from(["current", "hibbard-2005"]))
        doc["scale"]["decimals"] = 1
    n_steps = inst.n_categories - 1
    if draw(st.booleans()):
        doc["model"] = "rating-scale"
        doc["item_difficulties"] = {item: draw(logits) for item in inst.items}
        doc["thresholds"] = draw(st.lists(logits, min_size=n_steps, max_size=n_steps))
    else:
        doc["model"] = "partial-credit"
        doc["steps"] = {
            item: draw(st.lists(logits, min_size=n_steps, max_size=n_steps)) for item in inst.items
        }
    return doc


@FUZZ
@given(doc=edge_documents(), fmt=st.sampled_from(["json", "toml"]), seed=st.randoms())
def test_every_accepted_calibration_scores_every_pattern_cleanly(
    tmp_path: Path, doc: dict[str, Any], fmt: str, seed: Any
) -> None:
    path = tmp_path / f"cal.{fmt}"
    path.write_text(json.dumps(doc) if fmt == "json" else to_toml(doc), encoding="utf-8")
    cal = load_calibration(path, host=HOST)  # in range, so accepted
    n = len(cal.items)
    full = (1 << n) - 1
    masks = [full, *(1 << j for j in range(n)), *(seed.randint(1, full) for _ in range(6))]
    check_scores_cleanly(cal, sorted(set(masks)))


BEYOND_THE_LOGIT_RANGE = st.one_of(
    st.sampled_from([MAX_ABS_LOGIT + 1e-9, 12.0, 50.0, 100.0]),
    st.floats(MAX_ABS_LOGIT, 1e300, exclude_min=True),
)


@FUZZ
@given(doc=edge_documents(), data=st.data(), fmt=st.sampled_from(["json", "toml"]))
def test_a_parameter_just_beyond_the_logit_range_is_refused_naming_it(
    tmp_path: Path, doc: dict[str, Any], data: st.DataObject, fmt: str
) -> None:
    """Hazard H-07: a calibration is verified only within ±MAX_ABS_LOGIT; one value beyond it
    anywhere, however slightly, is refused with that field named (and nothing else)."""
    value = data.draw(BEYOND_THE_LOGIT_RANGE) * data.draw(st.sampled_from([1.0, -1.0]))
    places: list[tuple[str, int | str]] = [
        ("thresholds", j) for j in range(len(doc.get("thresholds", [])))
    ]
    for key in ("item_difficulties", "steps"):
        places += [(key, item) for item in doc.get(key, {})]
    if doc["estimator"]["method"] == "eap":
        places.append(("estimator", "prior_mean"))
    key, at = data.draw(st.sampled_from(places))
    if key == "steps":
        j = data.draw(st.integers(0, len(doc["steps"][at]) - 1))
        doc["steps"][at][j] = value
        where = f"steps[{json.dumps(at)}][{j}]"
    elif key == "estimator":
        doc["estimator"]["prior_mean"] = value
        where = "estimator.prior_mean"
    else:
        doc[key][at] = value
        where = f"{key}[{json.dumps(at) if isinstance(at, str) else at}]"
    path = tmp_path / f"cal.{fmt}"
    path.write_text(json.dumps(doc) if fmt == "json" else to_toml(doc), encoding="utf-8")
    with pytest.raises(CalibrationError) as exc:
        load_calibration(path, host=HOST)
    assert [(p.where, p.code) for p in exc.value.problems] == [(f"{path}: {where}", "range")]


# -- perturbed documents ------------------------------------------------------------------------

HOSTILE_VALUES: list[Any] = [
    0, -1, 1e-300, -1e-300, 1e300, -1e300, 5e-324, 10**400, -(10**400), 2**63, 0.5, 0.49999999,
    100_001, 2002, 10.000001, "nan", "inf", "-inf", "NaN", "", " ", "1", True, False, None,
    [], {}, [[[[1]]]], {"a": {"b": 1}}, "\u202egnp.", "\x00", "é", "\ud800", "𝟙",
]  # fmt: skip


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a document (objects and arrays)."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += paths(value, (*prefix, i))
    return out


ODD_KEYS = st.one_of(
    st.sampled_from(["\ud800", "\x1b[31m", "", " id", "ID", "id\x00", "é", "$schema", "a" * 500]),
    st.text(max_size=8),
)


def replace(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        out = dict(doc)
        if rest:
            out[head] = replace(doc[head], rest, value, delete)
        elif delete:
            del out[head]
        else:
            out[head] = value
        return out
    out_list = list(doc)
    out_list[head] = replace(doc[head], rest, value, delete)
    return out_list


@st.composite
def perturbed_documents(draw: st.DrawFn) -> Any:
    doc: Any = draw(st.sampled_from([rsm_document(PAM10), rsm_document(PAM13, cutpoints=None)]))
    doc["estimator"] = draw(
        st.sampled_from(
            [
                {"method": "wle"},
                {"method": "mle", "extreme_adjustment": 0.3},
                {"method": "eap", "prior_mean": 0, "prior_sd": 1, "quadrature_points": 61},
            ]
        )
    )
    if doc["cutpoints"] is None:
        del doc["cutpoints"]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(doc)))
        delete = bool(path) and isinstance(path[-1], str) and draw(st.booleans())
        value = draw(st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(max_size=5)))
        if draw(st.integers(0, 9)) == 0:
            depth = draw(st.integers(1, 300))
            value = json.loads("[" * depth + "]" * depth)
        doc = replace(doc, path, value, delete)
    if draw(st.integers(0, 4)) == 0:  # a key nobody expects, in some object
        objects = [p for p in paths(doc) if isinstance(get(doc, p), dict)]
        if objects:
            where = draw(st.sampled_from(objects))
            doc = replace(
                doc, (*where, draw(ODD_KEYS)), draw(st.sampled_from(HOSTILE_VALUES)), False
            )
    return doc


def get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def load_only_clean_errors(path: Path) -> Calibration | None:
    """The calibration, or None when the loader refused it with located problems."""
    try:
        cal = load_calibration(path, host=HOST)
    except CalibrationError as exc:
        error = exc
    else:
        if currently_in_test_context():
            event("accepted")
        return cal
    if currently_in_test_context():
        event(f"refused: {error.problems[0].code}")
    assert error.problems
    assert all(p.where.startswith(str(path)) for p in error.problems)
    str(error).encode("utf-8")  # printable: no unpaired surrogates reach the terminal
    return None


@FUZZ
@given(doc=perturbed_documents(), duplicate=st.integers(0, 9).map(lambda x: x == 0))
def test_perturbed_json_gives_only_calibration_errors(
    tmp_path: Path, doc: Any, duplicate: bool
) -> None:
    text = json.dumps(doc)  # nan and inf become NaN and Infinity, which JSON does not have
    if duplicate and text.startswith("{") and len(text) > 2:
        text = '{"id": "again", ' + text[1:]
    path = tmp_path / "cal.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    cal = load_only_clean_errors(path)
    if cal is not None:
        check_scores_cleanly(cal)


@FUZZ
@given(doc=perturbed_documents())
def test_perturbed_toml_gives_only_calibration_errors(tmp_path: Path, doc: Any) -> None:
    try:
        text = to_toml(doc) if isinstance(doc, dict) else ""
    except (TypeError, AttributeError):  # None and nested tables: TOML cannot say them
        assume(False)
    path = tmp_path / "cal.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    cal = load_only_clean_errors(path)
    if cal is not None:
        check_scores_cleanly(cal)


@FUZZ
@given(
    cut=st.integers(0, 10_000),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    fmt=st.sampled_from(["json", "toml"]),
)
def test_corrupted_bytes_give_only_calibration_errors(
    tmp_path: Path, cut: int, flips: list[tuple[int, int]], fmt: str
) -> None:
    doc = rsm_document(PAM10)
    data = bytearray((json.dumps(doc) if fmt == "json" else to_toml(doc)).encode("utf-8"))
    for at, byte in flips:
        data[at % len(data)] = byte
    del data[cut % (len(data) + 1) :]
    path = tmp_path / f"cal.{fmt}"
    path.write_bytes(bytes(data))
    cal = load_only_clean_errors(path)
    if cal is not None:
        check_scores_cleanly(cal)


# -- the corpus ---------------------------------------------------------------------------------


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".json", ".toml"))


def test_the_corpus_is_not_empty() -> None:
    assert len(corpus_files()) >= 5


def test_every_corpus_file_is_refused_cleanly_or_scores_cleanly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for path in corpus_files():
        cal = load_only_clean_errors(path)
        if cal is not None:
            check_scores_cleanly(cal)
        assert main(["calibration", str(path)]) == (0 if cal is not None else 1)
        out = capsys.readouterr()
        assert "Traceback" not in out.out + out.err
        assert "pamlib bug" not in out.out + out.err


EDGES: dict[str, dict[str, Any]] = {
    "eap-widest-prior-most-nodes": {
        "estimator": {
            "method": "eap",
            "prior_mean": -MAX_ABS_LOGIT,
            "prior_sd": 10,
            "quadrature_points": 2001,
        }
    },
    "eap-narrowest-prior-far-mean": {
        "estimator": {
            "method": "eap",
            "prior_mean": MAX_ABS_LOGIT,
            "prior_sd": 0.1,
            "quadrature_points": 11,
        }
    },
    "mle-smallest-adjustment": {"estimator": {"method": "mle", "extreme_adjustment": 0.01}},
    "wle-disordered-thresholds": {"estimator": {"method": "wle"}},
}


@pytest.mark.parametrize("name", sorted(EDGES))
def test_edge_calibrations_score_every_answer_pattern_cleanly(name: str) -> None:
    # Every answered-items mask of PAM-10 with every raw score: by sufficiency, every pattern.
    doc = rsm_document(PAM10, **EDGES[name], cutpoints=None)
    del doc["cutpoints"]
    doc["item_difficulties"] = {
        item: (-MAX_ABS_LOGIT if j % 2 else MAX_ABS_LOGIT) for j, item in enumerate(PAM10.items)
    }
    doc["thresholds"] = [MAX_ABS_LOGIT, -MAX_ABS_LOGIT, MAX_ABS_LOGIT]
    doc["scale"] = {"intercept": 50, "slope": 1000, "min": 0, "max": 100, "decimals": 4}
    cal = load_calibration(write(Path(tempfile.mkdtemp()), doc), host=HOST)
    masks = list(range(1, 1 << PAM10.n_items))
    if name == "eap-widest-prior-most-nodes":  # ~2200 nodes a problem: the fewest and most
        masks = [m for m in masks if m.bit_count() in (1, 2, 9, 10)]  # answered, most skewed
    check_scores_cleanly(cal, masks)
