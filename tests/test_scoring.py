"""Providers, licences, provider choice and the scoring API (one assessment and many)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import pickle
import struct
from collections.abc import Callable, Collection, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pamlib
from pamlib import scoring
from pamlib.assessment import Assessment
from pamlib.errors import LicenceError, LicensedContentError, ScoringError, ValidationError
from pamlib.hookspecs import hookimpl
from pamlib.identity import Patient
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.levels import CURRENT, HIBBARD_2005
from pamlib.plugins import PluginHost
from pamlib.results import Flag, ScoreResult, ScoreStatus
from pamlib.scoring._selection import NOT_PAM_FLAGS, CheckedProvider
from pamlib.scoring.calibration import Calibration, parse_calibration
from pamlib.scoring.demo import DemoProvider
from pamlib.scoring.provider import (
    FLAG_BITS,
    BaseProvider,
    BatchScores,
    Licence,
    ScoringProvider,
)
from pamlib.scoring.rasch import RaschProvider
from pamlib.scoring.raw_sum import RawSumProvider
from tests.calibrations import (
    PAM10,
    PAM13,
    calibration_documents,
    future,
    past,
    pcm_document,
    rsm_document,
    today,
    write,
)
from tests.strategies import assessments

DAY = dt.date(2025, 3, 1)


def assessment(instrument: Instrument, codes: list[int], aid: str = "a1") -> Assessment:
    responses = {item: c for item, c in zip(instrument.items, codes, strict=True) if c != 0}
    return Assessment(aid, Patient("p1"), instrument, DAY, responses)


def licence(*instruments: str, until: dt.date | None = None) -> Licence:
    return Licence("Example Vendor", instruments, until or today() + dt.timedelta(3650))


class VendorPlugin:
    """What a vendor's package does: register providers through the hook."""

    def __init__(self, *providers: ScoringProvider) -> None:
        self.providers = providers

    @hookimpl
    def pamlib_register_scoring_providers(
        self, register: Callable[[ScoringProvider], None]
    ) -> None:
        for provider in self.providers:
            register(provider)


def vendor(
    provider_id: str,
    *,
    instrument: Instrument = PAM13,
    until: dt.date | None = None,
) -> RaschProvider:
    cal = parse_calibration(rsm_document(instrument, id=f"{provider_id}-cal"))
    return RaschProvider(cal, licence=licence(instrument.id, until=until), id=provider_id)


def host_with(*providers: ScoringProvider) -> PluginHost:
    return PluginHost(
        load_entry_points=False, disabled=(), plugins={"vendor": VendorPlugin(*providers)}
    )


# -- levels at every boundary, through the providers -----------------------------------------


def oracle(value: float, bounds: tuple[float, float, float]) -> tuple[float, int]:
    """The reported score and level, in decimal arithmetic on the value as written."""
    reported = Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    level = next((i for i, b in enumerate(bounds, 1) if reported <= Decimal(repr(b))), 4)
    return float(reported), level


BOUNDARY_SCORES = [
    0.0, 47.0, 47.04, 47.049, 47.05, 47.1, 55.1, 55.14, 55.15, 55.2,
    67.0, 67.04, 67.05, 67.1, 72.4, 72.44, 72.45, 72.5, 100.0,
]  # fmt: skip
#: Ten PAM-10 answers at the midpoint of a symmetric calibration: θ is 0 (to ~1e-16), so the
#: unrounded score is the calibration's intercept.
MIDPOINT = [2] * 5 + [3] * 5


@pytest.mark.parametrize("cutpoints", [CURRENT, HIBBARD_2005], ids=lambda c: c.id)
@pytest.mark.parametrize("target", BOUNDARY_SCORES)
@pytest.mark.parametrize("method", ["wle", "mle", "eap"])
def test_levels_at_every_boundary_through_the_rasch_provider(
    tmp_path: Path, host: PluginHost, cutpoints: Any, target: float, method: str
) -> None:
    doc = rsm_document(PAM10, cutpoints=cutpoints.id, estimator={"method": method})
    doc["scale"]["intercept"] = target
    path = write(tmp_path, doc)
    reported, level = oracle(target, cutpoints.upper_bounds)
    one = scoring.score(assessment(PAM10, MIDPOINT), calibration=path, host=host)
    many = scoring.score_many(PAM10, [MIDPOINT, MIDPOINT[::-1]], calibration=path, host=host)
    assert one.theta is not None
    assert abs(one.theta) < 1e-12
    assert one.score == reported
    assert one.level == level
    assert one.cutpoint_set == cutpoints.id
    assert many.score.tolist() == [reported, reported]
    assert many.level.tolist() == [level, level]


@pytest.mark.parametrize("target", BOUNDARY_SCORES)
def test_levels_at_every_boundary_through_a_vendor_provider(target: float) -> None:
    doc = rsm_document(PAM10, id="vendor-boundary")
    doc["scale"]["intercept"] = target
    provider = RaschProvider(parse_calibration(doc), licence=licence("PAM-10"), id="vendor")
    h = host_with(provider)
    result = scoring.score(assessment(PAM10, MIDPOINT), host=h)
    assert (result.score, result.level) == oracle(target, CURRENT.upper_bounds)
    assert result.provider == "vendor"
    assert result.flags == frozenset()


# -- the rasch provider ----------------------------------------------------------------------


def test_rasch_scores_with_a_calibration_file(tmp_path: Path, host: PluginHost) -> None:
    path = write(tmp_path, rsm_document(), "toml")
    cal = pamlib.load_calibration(path, host=host)
    result = scoring.score(
        assessment(PAM13, [3] * 13), provider="rasch", calibration=path, host=host
    )
    assert result.status is ScoreStatus.SCORED
    assert (result.n_answered, result.raw_score, result.mean_response) == (13, 39, 3.0)
    assert result.calibration_id == "test-rsm"
    assert result.calibration_sha256 == cal.sha256
    assert result.provider == "rasch"
    assert result.demo is False
    assert result.flags == {Flag.UNLICENSED}
    assert result.theta is not None
    assert result.theta_se is not None
    assert result.score == pamlib.levels.round_half_away(50 + 10 * result.theta)
    assert result.score_se == pytest.approx(10 * result.theta_se)
    assert result.level == CURRENT.level(result.score)


def test_scores_are_clipped_to_the_scale(tmp_path: Path, host: PluginHost) -> None:
    doc = rsm_document(scale={"intercept": 50, "slope": 30, "min": 10, "max": 90})
    path = write(tmp_path, doc)
    batch = scoring.score_many(PAM13, [[1] * 13, [4] * 13], calibration=path, host=host)
    assert batch.score.tolist() == [10.0, 90.0]
    assert np.all(np.isfinite(batch.theta))
    assert np.all(batch.flags & scoring.provider.FLAG_BITS[Flag.EXTREME_RESPONSE])


def test_too_few_answered_is_not_scored_with_a_reason(tmp_path: Path, host: PluginHost) -> None:
    path = write(tmp_path, rsm_document(min_answered=7))
    six = [3] * 6 + [0] * 5 + [-1] * 2
    seven = [3] * 7 + [0] * 4 + [-1] * 2
    low = scoring.score(assessment(PAM13, six), calibration=path, host=host)
    ok = scoring.score(assessment(PAM13, seven), calibration=path, host=host)
    assert low.status is ScoreStatus.NOT_SCORED
    assert low.reason_code == "too-few-answered"
    assert low.reason is not None
    assert "7" in low.reason
    assert (low.score, low.theta, low.level, low.cutpoint_set) == (None, None, None, None)
    assert (low.n_answered, low.raw_score) == (6, 18)
    assert Flag.MISSING_ITEMS in low.flags
    assert ok.status is ScoreStatus.SCORED
    assert ok.n_answered == 7
    assert Flag.MISSING_ITEMS in ok.flags


@pytest.mark.parametrize(
    ("policy", "scored", "flagged"),
    [("flag", True, True), ("not-scored", False, True), ("ignore", True, False)],
)
def test_the_extreme_response_policy_comes_from_the_calibration(
    tmp_path: Path, host: PluginHost, policy: str, scored: bool, flagged: bool
) -> None:
    path = write(tmp_path, rsm_document(extreme_response=policy))
    rows = [[4] * 12 + [-1], [1] * 10 + [0] * 3, [4] * 12 + [3]]
    batch = scoring.score_many(PAM13, rows, calibration=path, host=host)
    extreme = [batch.result(i, f"a{i}") for i in range(2)]
    for result in extreme:
        assert result.scored is scored
        assert (Flag.EXTREME_RESPONSE in result.flags) is flagged
        if not scored:
            assert result.reason_code == "extreme-response"
    mixed = batch.result(2, "a2")
    assert mixed.scored
    assert Flag.EXTREME_RESPONSE not in mixed.flags


@pytest.mark.parametrize("method", ["wle", "mle", "eap"])
def test_every_estimator_gives_finite_scores_at_the_extremes(
    tmp_path: Path, host: PluginHost, method: str
) -> None:
    path = write(tmp_path, pcm_document(estimator={"method": method}, extreme_response="flag"))
    batch = scoring.score_many(PAM13, [[1] * 13, [4] * 13, [2] * 13], calibration=path, host=host)
    assert np.all(np.isfinite(batch.theta))
    assert batch.theta[0] < batch.theta[2] < batch.theta[1]
    assert batch.cutpoint_set == "hibbard-2005"


def test_a_calibration_for_another_instrument_is_refused(tmp_path: Path, host: PluginHost) -> None:
    path = write(tmp_path, rsm_document())
    with pytest.raises(ScoringError, match="does not score PAM-10"):
        scoring.score_many(PAM10, [[3] * 10], calibration=path, host=host)
    bound = RaschProvider(path, host=host)
    with pytest.raises(ScoringError, match="is for PAM-13, not PAM-10"):
        bound.score_batch(PAM10, np.full((1, 10), 3, dtype=np.int8))


def test_the_unbound_rasch_provider_asks_for_a_calibration(host: PluginHost) -> None:
    with pytest.raises(ScoringError, match="calibration"):
        scoring.select_provider("rasch", PAM13, host=host)
    with pytest.raises(ScoringError, match="calibration"):
        host.scoring_providers()["rasch"].score_batch(PAM13, np.zeros((1, 13), dtype=np.int8))


# -- the demo provider -----------------------------------------------------------------------


def test_demo_scores_every_registered_instrument(host: PluginHost) -> None:
    demo = host.scoring_providers()["demo"]
    assert set(demo.instruments()) == {i.id for i in host.instruments()}
    for instrument in host.instruments():
        batch = scoring.score_many(
            instrument, [[3] * instrument.n_items], provider="demo", host=host
        )
        assert batch.demo
        assert batch.calibration_id == f"synthetic-demo-{instrument.id}"
        assert batch.result(0, "a").flags >= {Flag.DEMO}


def test_demo_calibrations_are_named_so_nobody_takes_them_for_the_pam() -> None:
    demo = DemoProvider()
    for instrument in BUILTIN_INSTRUMENTS:
        cal = demo.calibration(instrument)
        assert cal.id.startswith("synthetic-demo-")
        assert cal.name is not None
        assert "NOT the PAM" in cal.name
        assert cal.demo
        assert cal.licence is None


def test_demo_is_never_chosen_implicitly(host: PluginHost) -> None:
    with pytest.raises(ScoringError, match="no licensed scoring provider") as exc:
        scoring.select_provider(None, PAM13, host=host)
    assert "'demo'" in str(exc.value)
    assert "'raw-sum'" in str(exc.value)


# -- licences --------------------------------------------------------------------------------


def test_a_licensed_calibration_gives_unflagged_results(tmp_path: Path, host: PluginHost) -> None:
    doc = rsm_document(licence={"licensee": "Example Trust", "valid_until": future()})
    provider = scoring.select_provider(None, PAM13, calibration=write(tmp_path, doc), host=host)
    assert provider.licence is not None
    assert provider.licence.licensee == "Example Trust"
    assert provider.licence.instruments == {"PAM-13"}
    result = provider.score(assessment(PAM13, [3] * 13))
    assert result.flags == frozenset()
    assert not result.demo


def test_an_expired_calibration_licence_stops_scoring(tmp_path: Path, host: PluginHost) -> None:
    doc = rsm_document(licence={"licensee": "Example Trust", "valid_until": past(3)})
    path = write(tmp_path, doc)
    with pytest.raises(LicenceError, match=r"Example Trust.*expired on"):
        scoring.select_provider(None, PAM13, calibration=path, host=host)
    with pytest.raises(LicenceError, match="expired"):
        scoring.score(assessment(PAM13, [3] * 13), calibration=path, host=host)
    with pytest.raises(LicenceError, match="expired"):
        scoring.score_many(PAM13, [[3] * 13], calibration=path, host=host)
    bound = RaschProvider(
        path, host=host
    )  # even called directly, the provider checks its own licence
    with pytest.raises(LicenceError):
        bound.score(assessment(PAM13, [3] * 13))
    with pytest.raises(LicenceError):
        bound.score_batch(PAM13, np.full((1, 13), 3, dtype=np.int8))


def test_a_licence_expiring_while_a_service_runs_stops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = scoring.select_provider(
        "vendor", PAM13, host=host_with(vendor("vendor", until=today() + dt.timedelta(3)))
    )
    a = assessment(PAM13, [3] * 13)
    provider.score(a)
    real = Licence.check

    def later(self: Licence, instrument_id: str, on: dt.date | None = None) -> None:
        real(self, instrument_id, on or today() + dt.timedelta(30))

    monkeypatch.setattr(Licence, "check", later)
    with pytest.raises(LicenceError, match="expired"):
        provider.score(a)
    with pytest.raises(LicenceError, match="expired"):
        provider.score_batch(PAM13, np.full((1, 13), 3, dtype=np.int8))


def test_licence_validity_is_inclusive_of_its_last_day() -> None:
    lic = licence("PAM-13", until=dt.date(2026, 3, 31))
    lic.check("PAM-13", on=dt.date(2026, 3, 31))
    with pytest.raises(LicenceError, match="expired on 2026-03-31"):
        lic.check("PAM-13", on=dt.date(2026, 4, 1))
    with pytest.raises(LicenceError, match="does not cover PAM-10"):
        lic.check("PAM-10", on=dt.date(2026, 3, 31))


def test_a_licence_that_does_not_cover_the_instrument_is_refused() -> None:
    cal = parse_calibration(rsm_document(PAM10, id="vendor-pam10"))
    narrow = RaschProvider(cal, licence=licence("PAM-13"), id="narrow")
    h = host_with(narrow)
    with pytest.raises(LicenceError, match="does not cover PAM-10"):
        scoring.select_provider("narrow", PAM10, host=h)
    with pytest.raises(LicenceError, match="does not cover PAM-10"):
        narrow.score_batch(PAM10, np.full((1, 10), 3, dtype=np.int8))


class Dishonest(BaseProvider):
    """A provider without a licence whose results do not say they are not the PAM."""

    id = "dishonest"
    version = "0"

    def instruments(self) -> Collection[str]:
        return {"PAM-13"}

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        batch = RawSumProvider().score_batch(instrument, codes)
        return BatchScores(**{**_fields(batch), "flags": np.zeros(len(batch), dtype=np.uint8)})


class FakeDemo(Dishonest):
    id = "fake-demo"
    demo = True


def _fields(batch: BatchScores) -> dict[str, Any]:
    return attrs.asdict(batch, recurse=False)


@pytest.mark.parametrize("provider_id", ["dishonest", "fake-demo"])
def test_results_from_an_unlicensed_provider_must_say_they_are_not_the_pam(
    provider_id: str,
) -> None:
    h = host_with(Dishonest(), FakeDemo())
    a = assessment(PAM13, [3] * 13)
    with pytest.raises(ScoringError, match="refusing"):
        scoring.score(a, provider=provider_id, host=h)
    with pytest.raises(ScoringError, match="refusing"):
        scoring.score_many(PAM13, [[3] * 13], provider=provider_id, host=h)
    with pytest.raises(ScoringError, match="refusing"):
        scoring.select_provider(provider_id, PAM13, host=h).score(a)


# -- choosing a provider ---------------------------------------------------------------------


def test_the_single_licensed_provider_is_chosen() -> None:
    h = host_with(vendor("vendor-a"), vendor("vendor-b", instrument=PAM10))
    chosen = scoring.select_provider(None, PAM13, host=h)
    assert chosen.id == "vendor-a"
    assert isinstance(chosen, CheckedProvider)
    assert scoring.select_provider(None, PAM10, host=h).id == "vendor-b"


def test_several_licensed_providers_need_a_choice() -> None:
    h = host_with(vendor("vendor-a"), vendor("vendor-b"))
    with pytest.raises(ScoringError, match="vendor-a, vendor-b"):
        scoring.select_provider(None, PAM13, host=h)
    assert scoring.select_provider("vendor-b", PAM13, host=h).id == "vendor-b"


def test_an_expired_single_provider_is_a_licence_error() -> None:
    h = host_with(vendor("vendor-a", until=today() - dt.timedelta(3)))
    with pytest.raises(LicenceError, match="expired"):
        scoring.select_provider(None, PAM13, host=h)


def test_explicit_choices(host: PluginHost, tmp_path: Path) -> None:
    assert scoring.select_provider("raw-sum", PAM13, host=host).id == "raw-sum"
    assert scoring.select_provider("demo", PAM13, host=host).demo
    with pytest.raises(ScoringError, match=r"no scoring provider called 'acme'.*raw-sum"):
        scoring.select_provider("acme", PAM13, host=host)
    with pytest.raises(ScoringError, match="does not score with a calibration file"):
        scoring.select_provider(
            "raw-sum", PAM13, calibration=write(tmp_path, rsm_document()), host=host
        )
    chosen = scoring.select_provider(
        None, PAM13, calibration=write(tmp_path, rsm_document()), host=host
    )
    assert chosen.id == "rasch"
    own = RawSumProvider()
    assert scoring.select_provider(own, PAM13, host=host).score_batch is not None
    with pytest.raises(ScoringError, match="not a scoring provider"):
        scoring.select_provider(object(), PAM13, host=host)  # type: ignore[arg-type]


def test_a_provider_object_can_be_reused(host: PluginHost) -> None:
    chosen = scoring.select_provider("demo", PAM13, host=host)
    a = assessment(PAM13, [3] * 13)
    assert scoring.score(a, provider=chosen, host=host) == chosen.score(a)
    assert isinstance(chosen, CheckedProvider)
    assert CheckedProvider(chosen).inner is chosen.inner  # wrapping twice does not nest


# -- the API: hooks, validation, identical paths ---------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @hookimpl
    def pamlib_assessment_scored(self, assessment: Assessment, result: ScoreResult) -> None:
        self.events.append(("one", result.assessment_id))

    @hookimpl
    def pamlib_batch_scored(self, instrument: Instrument, scores: BatchScores) -> None:
        self.events.append(("many", (instrument.id, len(scores))))


def test_scoring_tells_plugins() -> None:
    recorder = Recorder()
    h = PluginHost(load_entry_points=False, disabled=(), plugins={"recorder": recorder})
    scoring.score(assessment(PAM13, [3] * 13, "x1"), provider="demo", host=h)
    scoring.score_many("PAM-10", [[3] * 10, [2] * 10], provider="raw-sum", host=h)
    assert recorder.events == [("one", "x1"), ("many", ("PAM-10", 2))]


@pytest.mark.parametrize(
    ("codes", "where"),
    [
        ([[3] * 12], "codes"),
        ([[3] * 13, [3] * 12 + [5]], "codes[1, 12]"),
        ([[-2] + [3] * 12], "codes[0, 0]"),
        ([[3.0] * 13], "codes"),
    ],
)
def test_score_many_names_each_bad_cell(host: PluginHost, codes: Any, where: str) -> None:
    with pytest.raises(ValidationError) as exc:
        scoring.score_many(PAM13, codes, provider="demo")
    assert exc.value.problems[0].where == where


def test_an_empty_batch_is_fine(host: PluginHost) -> None:
    batch = scoring.score_many(PAM13, np.zeros((0, 13), dtype=np.int8), provider="demo", host=host)
    assert len(batch) == 0
    assert batch.demo


def test_the_root_package_re_exports_the_api() -> None:
    assert pamlib.score is scoring.score
    assert pamlib.score_many is scoring.score_many
    assert pamlib.select_provider is scoring.select_provider
    assert pamlib.Calibration is Calibration
    for name in scoring.__all__:
        assert getattr(scoring, name) is not None
    with pytest.raises(AttributeError):
        _ = scoring.nothing_here


#: Shared across hypothesis examples so tables compiled once serve them all.
SHARED_HOST = PluginHost(load_entry_points=False, disabled=())
SHARED_DEMO = DemoProvider()


def rasch_providers(doc: dict[str, Any]) -> Iterator[ScoringProvider]:
    host = PluginHost(load_entry_points=False, disabled=())
    cal = parse_calibration(doc, host=host)
    yield RaschProvider(cal, host=host)
    if cal.licence is None:
        yield RaschProvider(cal, licence=licence(cal.instrument), id="vendor", host=host)


def same_results(provider: ScoringProvider, items: list[Assessment]) -> None:
    """Each assessment through the object API is its row of the batch of the same answers."""
    instrument = items[0].instrument
    checked = CheckedProvider(provider)
    batch = checked.score_batch(instrument, np.stack([a.codes() for a in items]))
    for i, a in enumerate(items):
        one = checked.score(a)
        assert one == batch.result(i, a.id)
        if provider.licence is None:
            assert one.demo or not one.flags.isdisjoint(NOT_PAM_FLAGS)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(BUILTIN_INSTRUMENTS).flatmap(
        lambda inst: st.lists(assessments(inst), min_size=1, max_size=8)
    ),
    st.sampled_from(["raw-sum", "demo"]),
)
def test_the_object_api_is_a_batch_of_one_for_built_in_providers(
    items: list[Assessment], provider_id: str
) -> None:
    same_results(SHARED_HOST.scoring_providers()[provider_id], items)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_object_api_is_a_batch_of_one_for_any_calibration(data: st.DataObject) -> None:
    doc = data.draw(calibration_documents())
    instrument = PAM13 if doc["instrument"] == "PAM-13" else PAM10
    items = data.draw(st.lists(assessments(instrument), min_size=1, max_size=8))
    for provider in rasch_providers(doc):
        same_results(provider, items)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_one_assessment_remembered_by_its_sufficient_statistic_is_its_batch_row(
    data: st.DataObject,
) -> None:
    """The object API remembers a result by (answered items, raw score); another pattern with
    the same key must get exactly what the batch gives it (sufficiency, and a policy that reads
    nothing else)."""
    doc = data.draw(calibration_documents())
    instrument = PAM13 if doc["instrument"] == "PAM-13" else PAM10
    first = data.draw(assessments(instrument))
    codes = first.codes()
    answered = np.flatnonzero(codes > 0)
    # The same items answered, the same raw total, the codes moved around between them.
    moved = codes.copy()
    if answered.size >= 2:
        order = data.draw(st.permutations(answered.tolist()))
        moved[answered] = codes[order]
    second = Assessment(
        "a2",
        first.patient,
        instrument,
        first.assessed_on,
        {item: int(c) for item, c in zip(instrument.items, moved.tolist(), strict=True) if c},
    )
    for provider in rasch_providers(doc):
        checked = CheckedProvider(provider)
        batch = checked.score_batch(instrument, np.stack([codes, moved]))
        assert checked.score(first) == batch.result(0, first.id)
        assert checked.score(second) == batch.result(1, second.id)


@settings(max_examples=60)
@given(st.data())
def test_every_demo_result_says_demo(data: st.DataObject) -> None:
    instrument = data.draw(st.sampled_from(BUILTIN_INSTRUMENTS))
    items = data.draw(st.lists(assessments(instrument), min_size=1, max_size=6))
    demo = SHARED_DEMO
    batch = demo.score_batch(instrument, np.stack([a.codes() for a in items]))
    assert batch.demo
    for i, a in enumerate(items):
        for result in (demo.score(a), batch.result(i, a.id)):
            assert result.demo
            assert Flag.DEMO in result.flags
            assert result.calibration_id == f"synthetic-demo-{instrument.id}"


@settings(max_examples=30)
@given(calibration_documents(licensed=False))
def test_unlicensed_calibrations_flag_every_result(doc: dict[str, Any]) -> None:
    provider = next(rasch_providers(doc))
    n = PAM13.n_items if doc["instrument"] == "PAM-13" else PAM10.n_items
    rows = np.random.default_rng(0).integers(-1, 5, size=(20, n)).astype(np.int8)
    batch = provider.score_batch(PAM13 if n == 13 else PAM10, rows)
    assert np.all(batch.flags & scoring.provider.FLAG_BITS[Flag.UNLICENSED])


# -- licensed content stays in memory --------------------------------------------------------


def test_a_licensee_calibration_leaves_no_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    doc = rsm_document(licence={"licensee": "Example Trust", "valid_until": future()})
    path = write(tmp_path, doc)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    caplog.set_level(logging.DEBUG)
    h = PluginHost(load_entry_points=False, disabled=())
    provider = scoring.select_provider(None, PAM13, calibration=path, host=h)
    rows = np.random.default_rng(1).integers(-1, 5, size=(500, 13)).astype(np.int8)
    batch = provider.score_batch(PAM13, rows)
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibration.json", "work"]
    assert caplog.records == []
    thetas = {f"{t:.4f}" for t in batch.theta[np.isfinite(batch.theta)]}
    inner = provider.inner  # type: ignore[attr-defined]
    for text in (repr(provider), repr(inner), repr(inner._scorer), repr(inner._scorer.table())):
        assert not any(t in text for t in thetas)
        assert "-1.2" not in text
    # The provider pickles as a reference to the file and its hash, never the numbers.
    cal = inner._calibration
    data = pickle.dumps(inner)
    numbers = {*cal.item_difficulties, *cal.thresholds, cal.scale.intercept, cal.scale.slope}
    assert not any(struct.pack(">d", x) in data for x in numbers)
    assert cal.sha256.encode() in data
    with pytest.raises(LicensedContentError):
        pickle.dumps(inner._scorer)
    with pytest.raises(LicensedContentError):
        pickle.dumps(inner._scorer.table())


def test_results_carry_provenance_but_not_the_table(tmp_path: Path, host: PluginHost) -> None:
    path = write(tmp_path, rsm_document())
    result = scoring.score(assessment(PAM13, [3] * 13), calibration=path, host=host)
    from pamlib.serialize import to_dict

    data = to_dict(result)
    assert data["calibration_id"] == "test-rsm"
    assert len(data["calibration_sha256"]) == 64
    assert set(json.loads(json.dumps(data))) == set(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 60),
    missing=st.sampled_from([0.0, 0.05, 0.6]),
    min_answered=st.integers(1, 13),
    policy=st.sampled_from(["flag", "not-scored", "ignore"]),
    extra=st.sampled_from([0, 1]),
)
def test_calibrated_batches_match_a_plain_loop(
    *, seed: int, rows: int, missing: float, min_answered: int, policy: str, extra: int
) -> None:
    """Status, reason, flags, measures and mean response of every row of a batch, as a plain
    loop over the rows works them out (batches where every row is scored take a shorter path;
    the measures are those of the row scored alone)."""
    from pamlib.scoring.calibration import ExtremeResponse
    from pamlib.scoring.demo import demo_calibration
    from pamlib.scoring.provider import FLAG_BITS
    from pamlib.scoring.rasch import CalibratedScorer

    instrument = next(i for i in BUILTIN_INSTRUMENTS if i.id == "PAM-13")
    calibration = attrs.evolve(
        demo_calibration(instrument),
        min_answered=min_answered,
        extreme_response=ExtremeResponse(policy),
    )
    scorer = CalibratedScorer(calibration.compile(), CURRENT, extra)
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, 5, size=(rows, 13)).astype(np.int8)
    codes[rng.random((rows, 13)) < missing] = 0
    codes[: rows // 4] = rng.choice([1, 4])  # some extreme response sets
    provider = DemoProvider()
    batch = scorer.score(instrument, codes, provider)
    for i, row in enumerate(codes.tolist()):
        answered = [c for c in row if c > 0]
        n = len(answered)
        extreme = n > 0 and (all(c == 1 for c in answered) or all(c == 4 for c in answered))
        if n < min_answered:
            reason = "too-few-answered"
        elif extreme and policy == "not-scored":
            reason = "extreme-response"
        else:
            reason = ""
        flags = extra | (FLAG_BITS[Flag.MISSING_ITEMS] if n < 13 else 0)
        if extreme and policy != "ignore":
            flags |= FLAG_BITS[Flag.EXTREME_RESPONSE]
        assert bool(batch.scored[i]) is (reason == "")
        assert str(batch.reason_code[i]) == reason
        assert int(batch.flags[i]) == flags
        assert int(batch.n_answered[i]) == n
        assert int(batch.raw_score[i]) == sum(answered)
        mean = sum(answered) / n if n else math.nan
        assert batch.mean_response[i : i + 1].tobytes() == np.float64(mean).tobytes()
        alone = scorer.score(instrument, codes[i : i + 1], provider)
        for name in ("theta", "theta_se", "score", "score_se", "level"):
            assert getattr(batch, name)[i : i + 1].tobytes() == getattr(alone, name).tobytes()
        if reason:
            assert np.isnan(batch.theta[i])
            assert np.isnan(batch.score[i])


@given(
    st.sampled_from([i for i in BUILTIN_INSTRUMENTS if i.n_items >= 8]).flatmap(
        lambda inst: st.tuples(
            st.just(inst),
            st.lists(
                st.lists(
                    st.sampled_from([-1, 0, 1, 2, 3, 4]),
                    min_size=inst.n_items,
                    max_size=inst.n_items,
                )
                | st.lists(st.integers(-3, 9), min_size=inst.n_items, max_size=inst.n_items)
                | st.sampled_from([1, 4]).flatmap(  # every answer the same extreme
                    lambda v: st.lists(
                        st.sampled_from([v, v, v, -1, 0]),
                        min_size=inst.n_items,
                        max_size=inst.n_items,
                    )
                ),
                max_size=30,
            ),
        )
    )
)
def test_raw_sums_are_the_sums_of_the_answers_row_by_row(
    case: tuple[Instrument, list[list[int]]],
) -> None:
    """The raw-sum provider's counts, totals, means and flags, summed eight codes at a time
    where the codes are the reader's and by NumPy's reductions otherwise, are a plain loop's
    over each row's answers (codes above 0)."""
    instrument, rows = case
    codes = np.array(rows, dtype=np.int8).reshape(len(rows), instrument.n_items)
    got = RawSumProvider().score_batch(instrument, codes)
    assert got.n_answered.dtype == np.int16
    assert got.raw_score.dtype == np.int32
    for i, row in enumerate(rows):
        answers = [c for c in row if c > 0]
        assert int(got.n_answered[i]) == len(answers)
        assert int(got.raw_score[i]) == sum(answers)
        assert bool(got.scored[i]) == bool(answers)
        if answers:
            assert float(got.mean_response[i]) == sum(answers) / len(answers)
        # every answer 1, or every answer 4 (items not answered count as either)
        low = max(c if c > 0 else 1 for c in row) == 1
        high = min(c if c > 0 else 4 for c in row) == 4
        extreme = bool(answers) and (low or high)
        assert bool(got.flags[i] & FLAG_BITS[Flag.EXTREME_RESPONSE]) == extreme
        missing = len(answers) < instrument.n_items
        assert bool(got.flags[i] & FLAG_BITS[Flag.MISSING_ITEMS]) == missing


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.just(""),
            st.just("\x00"),
            st.text(alphabet=st.sampled_from(["\x00", "a", "é", "\U0001f600"]), max_size=5),
        ),
        max_size=40,
    ),
    st.integers(0, 16),
    st.sampled_from([1, 2]),
)
def test_blank_reason_codes_are_found_as_comparing_each_row_finds_them(
    codes: list[str], width: int, step: int
) -> None:
    """The batch check's reason test: every row ``== ""`` or not, whatever the column's
    width, and on a column that is a strided view of another."""
    from pamlib.scoring._selection import _blank_codes

    column = np.array(codes, dtype=f"U{max(width, 1)}" if width else np.str_)[::step]
    blank = _blank_codes(column)
    assert blank.dtype == np.bool_
    assert blank.tolist() == [c == "" for c in column.tolist()]
    every = np.zeros(len(codes), dtype=f"U{max(width, 1)}")
    assert _blank_codes(every).tolist() == [True] * len(codes)


@pytest.mark.parametrize("given", [None, {"id": "a1"}, "a1"])
def test_score_takes_an_assessment_and_says_so(given: object) -> None:
    from pamlib.errors import ConfigurationError
    from pamlib.scoring import score

    with pytest.raises(ConfigurationError, match="score takes an Assessment"):
        score(given, provider="demo")  # type: ignore[arg-type]
