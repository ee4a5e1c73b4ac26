"""Providers, calibrations, rule sets and the plugin host survive pickling, as what they were
built from: the same results after a round trip, in this process and in worker processes."""

# ruff: noqa: S301 - every pickle loaded here was made by the test itself

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import pickle
import struct
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pamlib.plugins
from pamlib.errors import (
    CalibrationError,
    ConfigurationError,
    LicensedContentError,
    PluginError,
    ScoringError,
)
from pamlib.hookspecs import hookimpl
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.pathways import Pathway
from pamlib.plugins import PluginHost, _rebuild_host
from pamlib.scoring import select_provider
from pamlib.scoring.calibration import load_calibration, parse_calibration
from pamlib.scoring.demo import DemoProvider, demo_calibration
from pamlib.scoring.provider import BATCH_ARRAYS, BatchScores, ScoringProvider
from pamlib.scoring.rasch import RaschProvider
from pamlib.tailoring import Note, build_engine, rule
from pamlib.tailoring.context import Context
from pamlib.tailoring.default_rules import EXAMPLE_SITE_RULES
from pamlib.tailoring.engine import Engine
from pamlib.tailoring.rules import FunctionRule, load_rules
from pamlib.testing import write_synthetic_calibration
from tests.tailoring_strategies import contexts

PAM13 = BUILTIN_INSTRUMENTS[0]


def round_trip(obj: Any) -> Any:
    return pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def codes_for(instrument: Instrument, n: int = 400, seed: int = 1) -> npt.NDArray[np.int8]:
    rng = np.random.default_rng(seed)
    return rng.integers(-1, instrument.n_categories + 1, size=(n, instrument.n_items)).astype(
        np.int8
    )


def assert_bit_identical(a: BatchScores, b: BatchScores) -> None:
    for name in BATCH_ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert x.tobytes() == y.tobytes(), name
    for name in ("provider", "provider_version", "cutpoint_set", "calibration_id"):
        assert getattr(a, name) == getattr(b, name), name
    assert (a.calibration_sha256, a.demo, a.reasons) == (b.calibration_sha256, b.demo, b.reasons)


@pytest.fixture
def host() -> PluginHost:
    return PluginHost(load_entry_points=False, disabled=())


@pytest.fixture
def licensed_file(tmp_path: Path) -> Path:
    return write_synthetic_calibration(
        tmp_path, licensee="Example Trust (test)", valid_until=dt.date(2099, 12, 31)
    )


# -- providers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("with_host", [False, True])
def test_demo_provider_round_trip_scores_bit_identically(host: PluginHost, with_host: bool) -> None:
    provider = DemoProvider(host if with_host else None)
    codes = codes_for(PAM13)
    before = provider.score_batch(PAM13, codes)  # its scorer is built: not what is pickled
    copy = round_trip(provider)
    assert isinstance(copy, DemoProvider)
    assert copy._scorers == {}
    assert_bit_identical(before, copy.score_batch(PAM13, codes))


def test_checked_provider_round_trip(host: PluginHost) -> None:
    provider = select_provider("demo", PAM13, host=host)
    copy = round_trip(provider)
    assert type(copy) is type(provider)
    assert copy.id == "demo"
    codes = codes_for(PAM13, seed=2)
    assert_bit_identical(provider.score_batch(PAM13, codes), copy.score_batch(PAM13, codes))


_PICKLED_DEMO = pickle.dumps(DemoProvider())
_DEMO = DemoProvider()


@given(
    st.sampled_from(BUILTIN_INSTRUMENTS).flatmap(
        lambda inst: st.tuples(
            st.just(inst),
            hnp.arrays(
                np.int8,
                st.tuples(st.integers(0, 30), st.just(inst.n_items)),
                elements=st.integers(-1, inst.n_categories),
            ),
        )
    )
)
def test_demo_provider_equal_after_round_trip_for_any_codes(
    case: tuple[Instrument, npt.NDArray[np.int8]],
) -> None:
    instrument, codes = case
    copy = pickle.loads(_PICKLED_DEMO)
    assert_bit_identical(_DEMO.score_batch(instrument, codes), copy.score_batch(instrument, codes))


def test_unbound_rasch_provider_round_trip(host: PluginHost) -> None:
    provider = RaschProvider(id="vendor-x", host=host)
    copy = round_trip(provider)
    assert (copy.id, copy.bound, copy.licence) == ("vendor-x", False, None)


def test_bound_rasch_provider_rebinds_from_its_file(host: PluginHost, licensed_file: Path) -> None:
    provider = select_provider(None, PAM13, calibration=licensed_file, host=host)
    inner = provider.inner  # type: ignore[attr-defined]
    data = pickle.dumps(provider)
    copy = pickle.loads(data)
    assert copy.inner.bound
    assert copy.inner.licence == inner.licence
    assert copy.inner.calibration_sha256 == inner.calibration_sha256
    codes = codes_for(PAM13, seed=3)
    assert_bit_identical(provider.score_batch(PAM13, codes), copy.score_batch(PAM13, codes))
    # The numbers of a licensee's calibration are not in the pickle: a reference is.
    cal = inner._calibration
    numbers = {*cal.item_difficulties, *cal.thresholds, cal.scale.intercept, cal.scale.slope}
    assert not any(struct.pack(">d", x) in data for x in numbers)
    assert cal.sha256.encode() in data


def test_a_vendor_licence_survives_the_round_trip(host: PluginHost, licensed_file: Path) -> None:
    from pamlib.scoring.provider import Licence

    licence = Licence("Vendor Ltd (test)", frozenset({"PAM-13"}), dt.date(2099, 1, 1))
    provider = RaschProvider(licensed_file, licence=licence, id="vendor-x", host=host)
    copy = round_trip(provider)
    assert (copy.id, copy.licence) == ("vendor-x", licence)


def test_a_changed_calibration_file_is_refused_on_unpickling(
    host: PluginHost, licensed_file: Path
) -> None:
    data = pickle.dumps(RaschProvider(licensed_file, host=host))
    doc = json.loads(licensed_file.read_text(encoding="utf-8"))
    doc["scale"]["intercept"] = 51.0
    licensed_file.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CalibrationError, match="changed since") as info:
        pickle.loads(data)
    assert str(licensed_file.parent) not in str(info.value)
    licensed_file.unlink()
    with pytest.raises(CalibrationError, match="cannot read"):
        pickle.loads(data)


def test_a_provider_bound_to_an_in_memory_licensee_calibration_refuses(
    host: PluginHost, licensed_file: Path
) -> None:
    doc = json.loads(licensed_file.read_text(encoding="utf-8"))
    provider = RaschProvider(parse_calibration(doc, host=host), host=host)
    with pytest.raises(LicensedContentError, match="not read from a file"):
        pickle.dumps(provider)


def test_a_provider_bound_to_a_demo_calibration_object_pickles(host: PluginHost) -> None:
    provider = RaschProvider(demo_calibration(PAM13), host=host)
    copy = round_trip(provider)
    codes = codes_for(PAM13, seed=4)
    assert_bit_identical(provider.score_batch(PAM13, codes), copy.score_batch(PAM13, codes))


# -- calibrations ------------------------------------------------------------------------------


@pytest.mark.parametrize("instrument", BUILTIN_INSTRUMENTS, ids=lambda i: i.id)
def test_demo_calibrations_round_trip_to_equal_calibrations(instrument: Instrument) -> None:
    cal = demo_calibration(instrument)
    copy = round_trip(cal)
    assert copy == cal
    assert copy.sha256 == cal.sha256


def test_a_calibration_file_round_trips_by_reference(licensed_file: Path, host: PluginHost) -> None:
    cal = load_calibration(licensed_file, host=host)
    copy = round_trip(cal)
    assert copy == cal
    assert copy.sha256 == cal.sha256
    with pytest.raises(LicensedContentError):
        pickle.dumps(cal.compile())


def test_an_in_memory_licensee_calibration_refuses(licensed_file: Path, host: PluginHost) -> None:
    cal = parse_calibration(json.loads(licensed_file.read_text(encoding="utf-8")), host=host)
    with pytest.raises(LicensedContentError):
        pickle.dumps(cal)


# -- rule sets -------------------------------------------------------------------------------


@rule("test.pickled-module-rule", priority=5)
def module_rule(ctx: Context) -> list[Note] | None:
    "A module-level Python rule: it pickles by reference."
    return [Note("Module-level rule applied.")] if ctx.scored else None


def plain_function(ctx: Context) -> list[Note] | None:
    return [Note("Plain function rule applied.")] if ctx.level is not None else None


PLAIN_RULE = FunctionRule(
    "test.plain-function", 3, "A plain function wrapped by hand.", plain_function
)


class RulesPlugin:
    """A plugin class (importable): registers both Python rules."""

    @staticmethod
    @hookimpl
    def pamlib_register_rules(register: Any) -> None:
        register(module_rule)
        register(PLAIN_RULE)


def _engine_with_python_rules() -> Engine:
    host = PluginHost(load_entry_points=False, disabled=(), plugins={"test-rules": RulesPlugin})
    return build_engine([EXAMPLE_SITE_RULES], host=host)


_ENGINE = _engine_with_python_rules()
_ENGINE_COPY = round_trip(_ENGINE)


def test_an_engine_round_trip_keeps_every_rule_and_pathway() -> None:
    assert [r.id for r in _ENGINE_COPY.rules] == [r.id for r in _ENGINE.rules]
    assert _ENGINE_COPY.pathways == _ENGINE.pathways
    assert _ENGINE_COPY.sources == _ENGINE.sources
    assert _ENGINE_COPY.policy == _ENGINE.policy
    module_level = next(r for r in _ENGINE_COPY.rules if r.id == "test.pickled-module-rule")
    assert module_level is module_rule  # found again by reference


@given(contexts())
def test_an_engine_evaluates_identically_after_a_round_trip(ctx: Context) -> None:
    assert _ENGINE_COPY.evaluate(ctx) == _ENGINE.evaluate(ctx)


def test_a_rule_file_round_trips_to_an_equal_rule_file() -> None:
    rule_file = load_rules(EXAMPLE_SITE_RULES)
    copy = round_trip(rule_file)
    assert copy == rule_file
    assert [r.pathway_refs for r in copy.rules] == [r.pathway_refs for r in rule_file.rules]


def test_the_default_engine_round_trips(host: PluginHost) -> None:
    engine = build_engine(host=host)
    ctx = Context("a1", score=48.0, level=2, assessed_on=dt.date(2025, 1, 1))
    assert round_trip(engine).evaluate(ctx) == engine.evaluate(ctx)


def test_a_lambda_rule_is_refused_naming_the_rule(host: PluginHost) -> None:
    lam = FunctionRule("site.lambda", 1, "Written inline.", lambda ctx: None)
    with pytest.raises(ConfigurationError, match=r"site\.lambda") as info:
        pickle.dumps(lam)
    assert "module level" in str(info.value)
    engine = Engine([lam], dict(host.pathways()), sources={"site.lambda": "plugin site-x"})
    with pytest.raises(ConfigurationError, match=r"rule 'site\.lambda' \(plugin site-x\)"):
        pickle.dumps(engine)


class _HoldsALambda:
    id = "site.custom"
    priority = 0
    reason = "A custom rule object holding something that does not pickle."

    def __init__(self) -> None:
        self.check = lambda ctx: None

    def evaluate(self, context: Context) -> Sequence[Any] | None:
        return None


def test_a_custom_rule_that_cannot_pickle_is_named(host: PluginHost) -> None:
    engine = Engine([_HoldsALambda()], dict(host.pathways()))
    with pytest.raises(ConfigurationError, match=r"rule 'site\.custom'"):
        pickle.dumps(engine)


# -- the plugin host ---------------------------------------------------------------------------


def test_a_host_round_trips_by_rediscovery(host: PluginHost) -> None:
    copy = round_trip(host)
    assert copy is not host
    assert copy._roster() == host._roster()
    assert sorted(copy.scoring_providers()) == sorted(host.scoring_providers())
    assert [c.id for c in copy.cutpoint_sets()] == [c.id for c in host.cutpoint_sets()]


def test_a_host_with_entry_points_and_a_disable_list_round_trips() -> None:
    host = PluginHost(disabled=("pamlib.scoring.raw_sum",))
    copy = round_trip(host)
    assert copy._roster() == host._roster()
    assert "raw-sum" not in copy.scoring_providers()


def test_plugins_registered_by_importable_reference_round_trip() -> None:
    from pamlib.tailoring import catalogue

    host = PluginHost(
        load_entry_points=False,
        disabled=("pamlib.tailoring.catalogue",),
        plugins={"catalogue-again": catalogue, "test-rules": RulesPlugin},
    )
    copy = round_trip(host)
    assert copy._roster() == host._roster()
    assert copy.pathways() == host.pathways()
    assert [r for _, r in copy.rules()] == [r for _, r in host.rules()]


class _Instance:
    @hookimpl
    def pamlib_register_pathways(self, register: Any) -> None:
        register(Pathway("instance-pathway", "Instance", ""))


def test_a_plugin_object_that_cannot_be_found_again_is_refused_by_name() -> None:
    host = PluginHost(load_entry_points=False, disabled=(), plugins={"my-instance": _Instance()})
    with pytest.raises(PluginError) as info:
        pickle.dumps(host)
    assert info.value.plugin == "my-instance"
    assert "registered directly as a _Instance" in str(info.value)
    assert "while loading" not in str(info.value)
    with pytest.raises(PluginError):  # and so is a provider that holds that host
        pickle.dumps(DemoProvider(host))


def test_unpickling_refuses_a_missing_plugin_or_another_version(
    host: PluginHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pamlib.plugins, "_rebuilt", {})
    roster = host._roster()
    missing = (*roster, ("vendor-scoring", "1.0", True))
    with pytest.raises(PluginError, match="not installed") as info:
        _rebuild_host(False, (), (), missing)
    assert info.value.plugin == "vendor-scoring"
    name, _, loaded = roster[0]
    older = ((name, "0.0.1", loaded), *roster[1:])
    with pytest.raises(PluginError, match="version"):
        _rebuild_host(False, (), (), older)
    with pytest.raises(PluginError, match="installed here"):
        _rebuild_host(False, (), (), roster[1:])


def test_unpickling_refuses_a_plugin_reference_that_no_longer_imports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = PluginHost(load_entry_points=False, disabled=(), plugins={"test-rules": RulesPlugin})
    data = pickle.dumps(host)
    monkeypatch.setattr(pamlib.plugins, "_rebuilt", {})
    monkeypatch.delattr(f"{__name__}.RulesPlugin")
    with pytest.raises(PluginError, match="cannot be imported here") as info:
        pickle.loads(data)
    assert info.value.plugin == "test-rules"


# -- worker processes --------------------------------------------------------------------------


def score_in_worker(provider: ScoringProvider, codes: npt.NDArray[np.int8]) -> BatchScores:
    return provider.score_batch(PAM13, codes)


def test_a_process_pool_scores_as_the_parent_does(host: PluginHost, licensed_file: Path) -> None:
    demo = select_provider("demo", PAM13, host=host)
    licensed = select_provider(None, PAM13, calibration=licensed_file, host=host)
    chunks = [codes_for(PAM13, n=200, seed=s) for s in range(4)]
    providers = [demo, demo, licensed, licensed]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        remote = list(pool.map(score_in_worker, providers, chunks))
    local = [score_in_worker(p, c) for p, c in zip(providers, chunks, strict=True)]
    for a, b in zip(local, remote, strict=True):
        assert_bit_identical(a, b)


class _VendorRasch(RaschProvider):
    pass


class _DemoSubclass(DemoProvider):
    pass


def test_subclasses_are_refused_rather_than_pickled_as_their_base(licensed_file: Path) -> None:
    with pytest.raises(LicensedContentError, match="_VendorRasch"):
        pickle.dumps(_VendorRasch(licensed_file))
    with pytest.raises(ScoringError, match="_DemoSubclass"):
        pickle.dumps(_DemoSubclass())
