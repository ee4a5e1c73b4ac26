"""The example provider passes pamlib's conformance kit, with a synthetic calibration written at
test time (the licensee's real one never comes near a test suite)."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from pathlib import Path

import pytest
from pamlib import ConfigurationError, LicenceError, PluginHost, ScoringError, ScoringProvider
from pamlib.errors import LicensedContentError
from pamlib.scoring import score_many
from pamlib.testing import ProviderConformance, synthetic_calibration, write_synthetic_calibration

import pamlib_example_scoring as plugin

LICENSEE = "Example Licensee (synthetic test calibration)"


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture
def calibration(tmp_path: Path) -> Path:
    return write_synthetic_calibration(tmp_path, licensee=LICENSEE)


class TestLicensedCalibrationProvider(ProviderConformance):
    @pytest.fixture
    def provider(self, calibration: Path, pamlib_host: PluginHost) -> ScoringProvider:
        return plugin.LicensedCalibrationProvider(calibration, host=pamlib_host)

    @pytest.fixture
    def expired_provider(self, tmp_path: Path, pamlib_host: PluginHost) -> ScoringProvider:
        yesterday = today() - dt.timedelta(days=1)
        path = write_synthetic_calibration(
            tmp_path, licensee=LICENSEE, valid_until=yesterday, name="expired.json"
        )
        return plugin.LicensedCalibrationProvider(path, host=pamlib_host)


def _host() -> PluginHost:
    return PluginHost(load_entry_points=False, disabled=(), plugins={"example": plugin})


def test_configured_from_the_environment(
    calibration: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(plugin.CALIBRATION_ENV, str(calibration))
    host = _host()
    provider = host.scoring_providers()[plugin.PROVIDER_ID]
    assert provider.licence is not None
    assert provider.licence.licensee == LICENSEE
    scores = score_many("PAM-13", [[3] * 13], provider=plugin.PROVIDER_ID, host=host)
    assert scores.provider == plugin.PROVIDER_ID
    assert scores.provider_version == plugin.__version__
    assert scores.calibration_id == "synthetic-test-PAM-13"
    assert not scores.demo
    assert scores.flags.tolist() == [0], "a licensed score carries no not-the-PAM flag"


def test_unconfigured_it_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(plugin.CALIBRATION_ENV, raising=False)
    host = _host()
    assert plugin.PROVIDER_ID not in host.scoring_providers()
    record = next(r for r in host.records() if r.name == "example")
    assert record.status == "ok"


def test_a_bad_calibration_is_reported_against_the_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = synthetic_calibration(licensee=LICENSEE)
    doc["scale"]["slope"] = "ten"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    monkeypatch.setenv(plugin.CALIBRATION_ENV, str(path))
    host = _host()
    assert plugin.PROVIDER_ID not in host.scoring_providers()
    [error] = host.errors
    assert error.plugin == "example"
    assert error.hook == "pamlib_register_scoring_providers"
    assert "scale.slope" in str(error)


def test_refuses_a_demonstration_calibration(tmp_path: Path) -> None:
    demo = write_synthetic_calibration(tmp_path)  # no licensee: a demo calibration
    with pytest.raises(ConfigurationError, match="demonstration"):
        plugin.LicensedCalibrationProvider(demo)


def test_refuses_a_calibration_without_a_licence(tmp_path: Path) -> None:
    doc = synthetic_calibration(licensee=LICENSEE)
    del doc["licence"]
    path = tmp_path / "research.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="no licence"):
        plugin.LicensedCalibrationProvider(path)


def test_scores_only_with_its_own_calibration(calibration: Path) -> None:
    provider = plugin.LicensedCalibrationProvider(calibration)
    with pytest.raises(ScoringError, match=plugin.CALIBRATION_ENV):
        provider.with_calibration(calibration)


def test_an_expired_licence_stops_scoring(tmp_path: Path) -> None:
    path = write_synthetic_calibration(tmp_path, licensee=LICENSEE, valid_until=dt.date(2000, 1, 1))
    provider = plugin.LicensedCalibrationProvider(path)
    with pytest.raises(LicenceError, match="expired on 2000-01-01"):
        score_many("PAM-13", [[3] * 13], provider=provider, host=_host())


def test_licensed_content_stays_in_memory(calibration: Path) -> None:
    provider = plugin.LicensedCalibrationProvider(calibration)
    with pytest.raises(LicensedContentError):
        pickle.dumps(provider)
    assert "item_difficulties" not in repr(provider)
