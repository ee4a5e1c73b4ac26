"""Calibration files the engine cannot score are refused; a level is the band of the score as
reported; hostile calibration documents are located problems (issue cases 9 and 10)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from pamlib.assessment import Assessment
from pamlib.cli import main
from pamlib.errors import CalibrationError
from pamlib.identity import Patient
from pamlib.levels import CURRENT, CutpointRegistry, CutpointSet
from pamlib.plugins import PluginHost
from pamlib.scoring._engine import EAP, ScoreTable, StepModel
from pamlib.scoring.calibration import Scale, load_calibration, parse_calibration
from pamlib.scoring.rasch import CalibratedScorer, RaschProvider
from tests.calibrations import PAM10, PAM13, rsm_document, to_toml, write

#: Ten PAM-10 answers at the midpoint of a symmetric calibration: θ is 0 (to ~1e-16), so the
#: unrounded score is the calibration's intercept.
MIDPOINT = [2] * 5 + [3] * 5


#: pamlib's built-in plugins only, passed explicitly to what the helpers below call.
BUILTINS = PluginHost(load_entry_points=False, disabled=())


def refused(path: Path) -> dict[str, str]:
    """The problems (field → code) loading ``path`` reports; fails if it loads."""
    with pytest.raises(CalibrationError) as info:
        load_calibration(path, host=BUILTINS)
    return {p.where.removeprefix(f"{path}: "): p.code for p in info.value.problems}


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    assert "pamlib bug" not in text
    return code, text


def check_refused_everywhere(
    tmp_path: Path,
    doc: dict[str, Any],
    field: str,
    capsys: pytest.CaptureFixture[str],
    sample_data: Path,
) -> None:
    """Refused by the loader (JSON and TOML), by ``pamlib calibration`` and by ``pamlib score``,
    naming the file and the field; no scored file is left behind."""
    for fmt in ("json", "toml"):
        path = write(tmp_path, doc, fmt)
        assert field in refused(path)
        code, text = cli(["calibration", str(path)], capsys)
        assert code == 1
        assert f"{path}: {field}" in text
        output = tmp_path / "scored.csv"
        code, text = cli(
            [
                "score",
                str(sample_data / "cohort-small.csv"),
                "--calibration",
                str(path),
                "-o",
                str(output),
                "--no-progress",
            ],
            capsys,
        )
        assert code == 1
        assert f"{path}: {field}" in text
        assert not output.exists()


# -- case 10: calibrations accepted that cannot be scored -------------------------------------


def test_case_10_prior_sd_1e_300_is_refused(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str], sample_data: Path
) -> None:
    doc = rsm_document(estimator={"method": "eap", "prior_sd": 1e-300})
    check_refused_everywhere(tmp_path, doc, "estimator.prior_sd", capsys, sample_data)


def test_case_10_extreme_adjustment_1e_300_is_refused(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str], sample_data: Path
) -> None:
    doc = rsm_document(estimator={"method": "mle", "extreme_adjustment": 1e-300})
    check_refused_everywhere(tmp_path, doc, "estimator.extreme_adjustment", capsys, sample_data)


def test_case_10_quadrature_points_100001_is_refused(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str], sample_data: Path
) -> None:
    doc = rsm_document(estimator={"method": "eap", "quadrature_points": 100_001})
    check_refused_everywhere(tmp_path, doc, "estimator.quadrature_points", capsys, sample_data)


@pytest.mark.parametrize(
    ("scale", "fields"),
    [
        ({"slope": 1e20}, {"scale.slope"}),
        ({"slope": 1e20, "min": -1e300, "max": 1e300}, {"scale.slope", "scale.min", "scale.max"}),
        ({"intercept": 1e20}, {"scale.intercept"}),
    ],
    ids=["slope", "slope-and-unbounded-scale", "intercept"],
)
@pytest.mark.usefixtures("process_host")
def test_case_10_scale_of_slope_1e20_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sample_data: Path,
    scale: dict[str, float],
    fields: set[str],
) -> None:
    doc = rsm_document()
    doc["scale"].update(scale)
    assert set(refused(write(tmp_path, doc))) == fields
    check_refused_everywhere(tmp_path, doc, sorted(fields)[-1], capsys, sample_data)


def score_column(text: str, fmt: str) -> dict[str, float | None]:
    if fmt == "json":
        rows = [json.loads(line) for line in text.splitlines()]
        return {r["assessment_id"]: r["score"] for r in rows}
    return {
        r["assessment_id"]: float(r["score"]) if r["score"] else None
        for r in csv.DictReader(io.StringIO(text))
    }


def test_case_10_the_steepest_accepted_scale_gives_the_same_scores_in_csv_and_json(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str], sample_data: Path
) -> None:
    doc = rsm_document(
        scale={"intercept": 5000, "slope": 1000, "min": 0, "max": 100, "decimals": 1}
    )
    path = write(tmp_path, doc)
    scores = {}
    for fmt in ("csv", "json"):
        out = tmp_path / f"scored.{fmt}"
        argv = ["score", str(sample_data / "cohort-small.csv"), "--calibration", str(path)]
        code, _ = cli([*argv, "-o", str(out), "--no-progress"], capsys)
        assert code == 0
        scores[fmt] = score_column(out.read_text(encoding="utf-8"), fmt)
    assert scores["csv"] == scores["json"]
    values = [v for v in scores["csv"].values() if v is not None]
    assert values
    assert all(0 <= v <= 100 for v in values)
    assert max(values) == 100  # clipped, not overflowed


@pytest.mark.parametrize(("key", "value"), [("min", -10.0), ("max", 10000.0)])
def test_case_10_a_scale_off_the_reporting_scale_is_refused(
    tmp_path: Path, key: str, value: float
) -> None:
    scale = {"intercept": 50, "slope": 10, "min": 0, "max": 100, "decimals": 1, key: value}
    assert refused(write(tmp_path, rsm_document(scale=scale))) == {f"scale.{key}": "range"}


def test_case_10_scores_are_written_at_the_scales_decimals(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str], sample_data: Path
) -> None:
    # Without cut points any decimals are allowed; every output writes exactly that many.
    doc = rsm_document(scale={"intercept": 50, "slope": 10, "min": 0, "max": 100, "decimals": 2})
    del doc["cutpoints"]
    path = write(tmp_path, doc)
    out = tmp_path / "scored.csv"
    argv = ["score", str(sample_data / "cohort-small.csv"), "--calibration", str(path)]
    code, _ = cli([*argv, "-o", str(out), "--no-progress"], capsys)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    written = [r["score"] for r in rows if r["score"]]
    assert written
    assert all(len(v.split(".")[1]) == 2 for v in written)


def scipy_posterior_mean(items: list[list[float]], raw: int, mean: float, sd: float) -> float:
    integrate = pytest.importorskip("scipy.integrate")

    def density(t: float, power: int) -> float:
        log_like = raw * t - 0.5 * ((t - mean) / sd) ** 2
        for steps in items:
            logs = [0.0]
            for d in steps:
                logs.append(logs[-1] + t - d)
            top = max(logs)
            log_like -= top + math.log(sum(math.exp(v - top) for v in logs))
        return float(t**power * math.exp(log_like))

    opts: dict[str, Any] = {"epsabs": 0.0, "epsrel": 1e-13, "limit": 400, "points": [0.0]}
    lo, hi = mean - 12 * sd, mean + 12 * sd
    mass = integrate.quad(lambda t: density(t, 0), lo, hi, **opts)[0]
    return float(integrate.quad(lambda t: density(t, 1), lo, hi, **opts)[0] / mass)


@pytest.mark.parametrize("points", [11, 21, 61])
def test_case_10_small_quadrature_counts_match_adaptive_quadrature(points: int) -> None:
    # PAM-13-shaped synthetic calibration, every item answered: the posterior is ~0.35 logits
    # wide, which a fixed 11 nodes over ±9 prior SDs missed by more than half a logit.
    difficulties = np.linspace(-1.2, 1.2, 13)
    thresholds = [-2.0, 0.0, 2.0]
    items = [[float(b + t) for t in thresholds] for b in difficulties]
    table = ScoreTable(StepModel.rating_scale(difficulties, thresholds), EAP(0.0, 1.0, points))
    for raw in (0, 1, 7, 20, 33, 38, 39):
        codes = [1 + min(3, max(0, raw - 3 * i)) for i in range(13)]
        measure = table.score_one(np.array(codes, dtype=np.int8))
        assert measure.raw_score == raw
        assert abs(measure.theta - scipy_posterior_mean(items, raw, 0.0, 1.0)) < 1e-8


# -- case 10: the level is the band of the score as reported ----------------------------------

BOUNDARY = [47.0, 47.04, 47.05, 47.1, 47.4, 47.5, 55.14, 55.15]


def oracle(value: float, cut: CutpointSet) -> tuple[float, int]:
    """Reported score and level in decimal arithmetic on the value as written."""
    quantum = Decimal(1).scaleb(-cut.decimals)
    reported = Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP)
    bounds = [Decimal(repr(b)) for b in cut.upper_bounds]
    level = next((i for i, b in enumerate(bounds, 1) if reported <= b), 4)
    return float(reported), level


@pytest.mark.parametrize("target", BOUNDARY)
@pytest.mark.parametrize(
    "cut",
    [
        CutpointSet("whole", (47.0, 55.0, 67.0), decimals=0),
        CURRENT,
        CutpointSet("hundredths", (47.0, 55.1, 67.0), decimals=2),
    ],
    ids=["decimals-0", "decimals-1", "decimals-2"],
)
def test_case_10_level_is_the_band_of_the_reported_score(
    host: PluginHost, cut: CutpointSet, target: float
) -> None:
    doc = rsm_document(PAM10, cutpoints=cut.id)
    doc["scale"].update(intercept=target, decimals=cut.decimals)
    registry = CutpointRegistry.of([cut])
    cal = parse_calibration(doc, host=host, cutpoints=registry)
    scorer = CalibratedScorer(cal.compile(), cut, 0)
    provider = RaschProvider()
    batch = scorer.score(PAM10, np.array([MIDPOINT, MIDPOINT[::-1]], dtype=np.int8), provider)
    reported, level = oracle(target, cut)
    assert batch.score.tolist() == [reported, reported]
    assert batch.level.tolist() == [level, level]
    # A reader comparing the reported score with the cut points gets the reported level.
    assert cut.level(reported) == level
    answers = dict(zip(PAM10.items, MIDPOINT, strict=True))
    one = scorer.result(
        Assessment("a1", Patient("p1"), PAM10, dt.date(2025, 3, 1), answers), provider
    )
    assert (one.score, one.level) == (reported, level)


@pytest.mark.parametrize("decimals", [0, 2])
def test_case_10_decimals_other_than_the_cut_points_are_refused(
    tmp_path: Path,
    process_host: PluginHost,
    capsys: pytest.CaptureFixture[str],
    sample_data: Path,
    decimals: int,
) -> None:
    # 47.04 reported at two decimals got level 1; 47.4 reported as 47 got level 1. The cut
    # points are published at one decimal, so a calibration using them reports one decimal.
    doc = rsm_document(cutpoints="current")
    doc["scale"]["decimals"] = decimals
    assert refused(write(tmp_path, doc)) == {"scale.decimals": "decimals"}
    check_refused_everywhere(tmp_path, doc, "scale.decimals", capsys, sample_data)
    # Without cut points there is no level to disagree with: any decimals 0..4.
    del doc["cutpoints"]
    assert load_calibration(write(tmp_path, doc)).scale.decimals == decimals


def test_case_10_a_scorer_refuses_a_cut_point_set_of_other_precision(host: PluginHost) -> None:
    doc = rsm_document(PAM10)
    doc["scale"]["decimals"] = 2
    del doc["cutpoints"]
    compiled = parse_calibration(doc, host=host).compile()
    with pytest.raises(CalibrationError) as info:
        CalibratedScorer(compiled, CURRENT, 0)
    assert info.value.problems[0].code == "decimals"


def test_case_10_a_scorer_refuses_a_hand_built_scale_of_slope_1e20(host: PluginHost) -> None:
    compiled = parse_calibration(rsm_document(PAM10), host=host).compile()
    hand_built = attrs.evolve(compiled, scale=Scale(50.0, 1e20, -1e300, 1e300, 1))
    with pytest.raises(CalibrationError) as info:
        CalibratedScorer(hand_built, CURRENT, 0)
    assert {p.where for p in info.value.problems} == {
        "test-rsm: scale.slope",
        "test-rsm: scale.min",
        "test-rsm: scale.max",
    }


# -- case 9: hostile documents ----------------------------------------------------------------

DEPTH = 1200


@pytest.mark.parametrize(
    ("name", "text", "code"),
    [
        ("deep.json", '{"id": ' + "[" * DEPTH + "]" * DEPTH + "}", "too-deep"),
        ("deep-objects.json", '{"a":' * DEPTH + "1" + "}" * DEPTH, "too-deep"),
        ("deep.toml", "id = " + "[" * DEPTH + "]" * DEPTH + "\n", "too-deep"),
        ("huge.json", '{"min_answered": ' + "7" * 5000 + "}", "json"),
        ("huge.toml", "min_answered = " + "7" * 5000 + "\n", "toml"),
        ("nan.json", '{"min_answered": NaN}', "json"),
        ("latin1.json", '{"id": "caf\xe9"}', "encoding"),
    ],
    ids=[
        "deep-json-arrays",
        "deep-json-objects",
        "deep-toml-arrays",
        "huge-json-integer",
        "huge-toml-integer",
        "json-nan",
        "latin-1-bytes",
    ],
)
@pytest.mark.usefixtures("process_host")
def test_case_09_hostile_calibration_documents_are_located_problems(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    code: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1" if code == "encoding" else "utf-8"))
    with pytest.raises(CalibrationError) as info:
        load_calibration(path)
    [problem] = info.value.problems
    assert problem.code == code
    assert problem.where.startswith(str(path))
    code_, out = cli(["calibration", str(path)], capsys)
    assert code_ == 1
    assert str(path) in out


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('"name": "x"', '"name": "\\ud800"', "name"),
        ('"name": "x"', '"\\ud800": "x"', '"\\ud800"'),
        ('"name": "x"', '"\\u001b[2J": "x"', '"\\u001b[2J"'),
        ('"method": "wle"', '"method": []', "estimator.method"),
    ],
    ids=["surrogate-value", "surrogate-key", "escape-sequence-key", "array-as-method"],
)
@pytest.mark.usefixtures("process_host")
def test_case_09_odd_text_and_types_are_refused_not_a_crash(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    field: str,
) -> None:
    # Legal JSON that crashed: a surrogate cannot be hashed as UTF-8 (UnicodeEncodeError) or
    # printed; a list is not hashable (TypeError). Keys are shown escaped, never raw.
    path = tmp_path / "odd.json"
    text = json.dumps(rsm_document(name="x"))
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    assert field in refused(path)
    code, out = cli(["calibration", str(path)], capsys)
    assert code == 1
    assert f"{path}: {field}" in out
    assert "\x1b" not in out


def test_case_09_toml_and_json_refuse_the_same_hostile_content(
    tmp_path: Path, host: PluginHost
) -> None:
    doc = rsm_document(PAM13, min_answered=10**400)
    for fmt in ("json", "toml"):
        path = write(tmp_path, doc, fmt)
        assert refused(path) == {"min_answered": "range"}
    assert "min_answered" in to_toml(doc)
