"""pamlib's own providers pass the conformance kit it ships to plugin authors, and the kit catches
providers and rules that break the contract."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pamlib.assessment import Assessment
from pamlib.fhir import questionnaire_response
from pamlib.formats import Format
from pamlib.hookspecs import hookimpl
from pamlib.identity import Patient
from pamlib.instruments import Instrument
from pamlib.plugins import PluginHost
from pamlib.results import Flag
from pamlib.scoring.demo import DemoProvider
from pamlib.scoring.provider import FLAG_BITS, BatchScores, ScoringProvider
from pamlib.scoring.rasch import RaschProvider
from pamlib.scoring.raw_sum import RawSumProvider
from pamlib.tailoring import EXAMPLE_SITE_RULES, Note, rule
from pamlib.tailoring.context import Context
from pamlib.tailoring.engine import build_engine
from pamlib.tailoring.rules import Action, RuleSource, load_rules
from pamlib.testing import (
    FormatConformance,
    ProviderConformance,
    RulesConformance,
    synthetic_calibration,
    write_synthetic_calibration,
)
from tests.conftest import ROOT

SYNTHETIC_DEMO = ROOT / "docs" / "examples" / "synthetic-demo-PAM-13.json"
TEST_LICENSEE = "Example Licensee (test)"


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class TestRawSum(ProviderConformance):
    @pytest.fixture
    def provider(self) -> ScoringProvider:
        return RawSumProvider()


class TestDemo(ProviderConformance):
    @pytest.fixture
    def provider(self, pamlib_host: PluginHost) -> ScoringProvider:
        return DemoProvider(pamlib_host)


class TestRaschWithTheSyntheticDemoCalibration(ProviderConformance):
    @pytest.fixture
    def provider(self, pamlib_host: PluginHost) -> ScoringProvider:
        return RaschProvider(SYNTHETIC_DEMO, host=pamlib_host)


class TestRaschLicensed(ProviderConformance):
    """The licensed path: a (synthetic) calibration carrying a licence block."""

    @pytest.fixture
    def provider(self, tmp_path: Path, pamlib_host: PluginHost) -> ScoringProvider:
        path = write_synthetic_calibration(tmp_path, licensee=TEST_LICENSEE)
        return RaschProvider(path, id="vendor", host=pamlib_host)

    @pytest.fixture
    def expired_provider(self, tmp_path: Path, pamlib_host: PluginHost) -> ScoringProvider:
        path = write_synthetic_calibration(
            tmp_path, licensee=TEST_LICENSEE, valid_until=today() - dt.timedelta(days=1)
        )
        return RaschProvider(path, id="vendor", host=pamlib_host)


def test_synthetic_calibrations_say_they_are_not_the_pam(tmp_path: Path) -> None:
    demo = synthetic_calibration("PAM-10")
    licensed = synthetic_calibration("PAM-10", licensee=TEST_LICENSEE)
    for doc in (demo, licensed):
        assert doc["id"].startswith("synthetic-")
        assert "NOT the PAM" in doc["name"]
    assert demo["demo"] is True
    assert "licence" not in demo
    until = dt.date.fromisoformat(licensed["licence"]["valid_until"])
    assert until > today()
    provider = RaschProvider(write_synthetic_calibration(tmp_path, "PAM-10"))
    assert provider.demo
    assert provider.instruments() == {"PAM-10"}


# -- the kit catches broken providers -----------------------------------------------------------


class _Broken(RawSumProvider):
    """raw-sum with one fault injected into its batches."""

    id = "broken"

    def __init__(self, fault: Callable[[BatchScores], BatchScores]) -> None:
        super().__init__()
        self._fault = fault

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        return self._fault(super().score_batch(instrument, codes))


def _unflagged(scores: BatchScores) -> BatchScores:
    flags = scores.flags & ~np.uint8(FLAG_BITS[Flag.RAW_ONLY])
    return attrs.evolve(scores, flags=flags)


def _wrong_provider(scores: BatchScores) -> BatchScores:
    return attrs.evolve(scores, provider="someone-else")


def _no_reason(scores: BatchScores) -> BatchScores:
    return attrs.evolve(scores, reasons={})


def _infinite_theta(scores: BatchScores) -> BatchScores:
    """Caught only by pamlib's result checks, which the kit runs too."""
    return attrs.evolve(scores, theta=np.full(len(scores), np.inf))


@pytest.mark.parametrize(
    ("fault", "test_name"),
    [
        (_unflagged, "test_demo_flag_honesty"),
        (_unflagged, "test_batch_is_deterministic_and_well_formed"),
        (_wrong_provider, "test_batch_is_deterministic_and_well_formed"),
        (_no_reason, "test_batch_is_deterministic_and_well_formed"),
        (_no_reason, "test_too_few_answered_is_not_scored_with_a_reason"),
        (_infinite_theta, "test_batch_is_deterministic_and_well_formed"),
    ],
)
def test_the_kit_fails_a_provider_that_breaks_the_contract(
    fault: Callable[[BatchScores], BatchScores], test_name: str, host: PluginHost
) -> None:
    kit = ProviderConformance()
    with pytest.raises(AssertionError):
        _run_once(kit, test_name, provider=_Broken(fault), conformance_host=host)


def _run_once(kit: object, test_name: str, **fixtures: object) -> None:
    """Run one of the kit's tests; a generated one without shrinking (the failure is what
    matters here, not the smallest example — shrinking would take seconds)."""
    test = getattr(kit, test_name)
    handle = getattr(test, "hypothesis", None)
    if handle is None:
        test(**fixtures)
        return

    @settings(
        max_examples=10,
        derandomize=True,  # the same examples every run: no flaky pass
        phases=[Phase.generate],
        database=None,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def once(data: st.DataObject) -> None:
        handle.inner_test(kit, data=data, **fixtures)

    once()


# -- rules plugins -------------------------------------------------------------------------------


@rule("riverside.lung-clinic-letter", priority=5)
def lung_clinic_letter(ctx: Context) -> Sequence[Action] | None:
    """People with COPD get a copy of their plan for the lung clinic."""
    if "copd" in ctx.attributes.get("condition", "").casefold().split(";"):
        return [Note("Send a copy of the plan to the lung clinic.")]
    return None


class SitePlugin:
    """A site plugin as an object: pamlib's example site file plus one Python rule."""

    @hookimpl
    def pamlib_register_rules(self, register: Callable[[RuleSource], None]) -> None:
        register(EXAMPLE_SITE_RULES)
        register(lung_clinic_letter)


class TestSiteRules(RulesConformance):
    @pytest.fixture
    def plugin(self) -> object:
        return SitePlugin()

    @pytest.fixture
    def plugin_name(self) -> str:
        return "riverside-site"


class _Counter:
    """A rule with state: its answer depends on how often it was asked."""

    id = "site.flaky"
    priority = 1
    reason = "Number the reminders (wrongly: a rule must be a function of its context)."

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, context: Context) -> Sequence[Action] | None:
        self.calls += 1
        return [Note(f"Reminder number {self.calls}.")]


def _rules_plugin(*sources: RuleSource) -> object:
    class Plugin:
        @hookimpl
        def pamlib_register_rules(self, register: Callable[[RuleSource], None]) -> None:
            for source in sources:
                register(source)

    return Plugin()


def test_the_kit_fails_stateful_rules() -> None:
    counter = _Counter()
    plugin = _rules_plugin(counter)
    host = PluginHost(load_entry_points=False, disabled=(), plugins={"flaky": plugin})
    with pytest.raises(AssertionError):
        _run_once(
            RulesConformance(),
            "test_evaluation_is_deterministic",
            engine=build_engine(host=host),
            plugin_rules=[counter],
            context_attributes={},
        )


def test_the_kit_fails_rules_that_take_pamlibs_prefix(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        '[[rule]]\nid = "pamlib.mine"\nreason = "r"\nthen = [ { note = "n" } ]\n',
        encoding="utf-8",
    )
    with pytest.raises(AssertionError, match="pamlib"):
        RulesConformance().test_rule_ids_are_the_plugins_own(list(load_rules(path).rules))


def test_the_kit_fails_a_plugin_whose_rule_file_is_missing(tmp_path: Path) -> None:
    plugin = _rules_plugin(tmp_path / "not-shipped.toml")
    host = PluginHost(load_entry_points=False, disabled=(), plugins={"p": plugin})
    with pytest.raises(AssertionError, match="package data"):
        RulesConformance().test_rule_files_exist(host, "p")


def test_the_pytest_plugin_costs_nothing_until_used() -> None:
    """pytest loads the ``pytest11`` entry point in every project where pamlib is installed;
    loading it must not need Hypothesis (an extra) nor pull in NumPy."""
    code = (
        "import sys, pamlib.testing.pytest_plugin; "
        "print(sorted({'hypothesis', 'numpy', 'pytest_plugin'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- formats -------------------------------------------------------------------------------------

CSV_SAMPLE = (
    "assessment_id,patient_id,nhs_number,assessed_on,instrument,"
    + ",".join(f"q{i:02d}" for i in range(1, 14))
    + "\n"
    + "a1,p1,,2025-03-01,PAM-13,"
    + ",".join(["3"] * 13)
    + "\n"
    + "a2,,943 476 5919,01/03/2025,PAM-10,"
    + ",".join(["4"] * 10 + [""] * 3)
    + "\n"
    + "a3,p3,,2025-03-01,PAM-13,"
    + ",".join(["7"] + ["2"] * 12)  # an impossible answer: rejected
    + "\n"
    + "a4,p4,,2025-03-01,PAM-13,"
    + ",".join(["NA", "agree"] + [""] * 11)
    + "\n"
)


class TestCsvFormat(FormatConformance):
    @pytest.fixture
    def file_format(self, pamlib_host: PluginHost) -> Format:
        return pamlib_host.formats()["csv"]

    @pytest.fixture
    def sample_input(self, tmp_path: Path) -> Path:
        path = tmp_path / "export.csv"
        path.write_text(CSV_SAMPLE, encoding="utf-8")
        return path


@pytest.mark.parametrize("name", ["json", "parquet"])
def test_the_output_formats_pass_the_kit(name: str, host: PluginHost, tmp_path: Path) -> None:
    if name == "parquet":
        pytest.importorskip("pyarrow")
    kit = FormatConformance()
    fmt = host.formats()[name]
    kit.test_declares_itself(fmt)
    for test, folder in [
        (kit.test_writes_scored_batches, tmp_path / "write"),
        (kit.test_abort_leaves_no_partial_output, tmp_path / "abort"),
    ]:
        folder.mkdir()
        test(fmt, None, host, folder)
    kit.test_writes_to_a_stream(fmt, None, host)


class TestFhirFormat(FormatConformance):
    @pytest.fixture
    def file_format(self, pamlib_host: PluginHost) -> Format:
        return pamlib_host.formats()["fhir"]

    @pytest.fixture
    def sample_input(self, tmp_path: Path, pamlib_host: PluginHost) -> Path:
        instruments = pamlib_host.instruments()
        pam13, pam10 = instruments.get("PAM-13"), instruments.get("PAM-10")
        on = dt.date(2025, 3, 1)
        good = [
            Assessment("a1", Patient("p1"), pam13, on, dict.fromkeys(pam13.items, 3)),
            Assessment("a2", Patient("p2"), pam10, on, {"pam10.01": -1, "pam10.02": 4}),
        ]
        lines = [json.dumps(questionnaire_response(a)) for a in good]
        lines.append(json.dumps({"resourceType": "QuestionnaireResponse", "status": "bogus"}))
        path = tmp_path / "responses.ndjson"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
