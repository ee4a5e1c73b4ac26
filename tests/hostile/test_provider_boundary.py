"""A provider's licence and answers at the boundary: read guarded, checked after the call as
before it, and the answers never the provider's to change.

An audit found a licence that appears only once a provider has scored (a lazily read
calibration) passed unchecked, though it had expired; a provider writing to the answers it was
given changed what pamlib then wrote; and a ``licence`` property that raised was reported as a
fault of pamlib's. ``pamlib new-plugin`` took names that clash with pamlib's own providers or
with modules Python and its packaging tools import.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pamlib import Assessment, Patient, scoring
from pamlib.cli import main
from pamlib.errors import LicenceError, ScoringError
from pamlib.instruments import Instrument
from pamlib.plugins import PluginHost, reset_host
from pamlib.scoring.provider import BatchScores, Licence
from tests.hostile.test_plugins import PAM13, Registers, Vendor

EXPIRED = Licence("Test Trust", frozenset({"PAM-13"}), valid_until=dt.date(2000, 1, 1))


@pytest.fixture
def host() -> Iterator[Callable[[object], PluginHost]]:
    def install(provider: object) -> PluginHost:
        made = PluginHost(load_entry_points=False, disabled=(), plugins={"v": Registers(provider)})
        reset_host(made)
        return made

    yield install
    reset_host(None)


class LazyLicence(Vendor):
    """No licence until it has scored once (its calibration read on first use): then one that
    expired long ago."""

    def __init__(self) -> None:
        super().__init__()
        self._read = False

    @property
    def licence(self) -> Licence | None:  # type: ignore[override]
        return EXPIRED if self._read else None

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        self._read = True
        return super().score_batch(instrument, codes)


class RaisingLicence(Vendor):
    """A licence read from a server that was there when the plugin registered, and is not."""

    armed = False

    @property
    def licence(self) -> Licence | None:  # type: ignore[override]
        if self.armed:
            raise RuntimeError("licence server unreachable")
        return super().licence


class Mutating(Vendor):
    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        scores = super().score_batch(instrument, codes)
        codes[:] = 4  # the caller's answers
        return scores


def _assessment() -> Assessment:
    return Assessment(
        "a1", Patient("p1"), PAM13, dt.date(2025, 1, 1), dict.fromkeys(PAM13.items, 3)
    )


def test_a_licence_that_appears_after_scoring_is_checked_then(
    host: Callable[[object], PluginHost],
) -> None:
    installed = host(LazyLicence())
    with pytest.raises(LicenceError, match="expired on 2000-01-01"):
        scoring.score_many(PAM13, [[3] * 13], provider="vendor", host=installed)


def test_a_lazy_expired_licence_stops_the_command_with_no_output(
    host: Callable[[object], PluginHost], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host(LazyLicence())
    source = tmp_path / "in.csv"
    header = "patient_id,assessment_id,assessed_on,instrument," + ",".join(
        f"q{i:02d}" for i in range(1, 14)
    )
    source.write_text(f"{header}\nP1,A1,2025-01-01,PAM-13,{','.join(['3'] * 13)}\n", "utf-8")
    out = tmp_path / "scored.csv"
    assert main(["score", str(source), "--provider", "vendor", "-o", str(out)]) == 1
    assert "expired on 2000-01-01" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_licence_property_that_raises_names_the_provider(
    host: Callable[[object], PluginHost],
) -> None:
    provider = RaisingLicence()
    installed = host(provider)
    assert "vendor" in installed.scoring_providers()  # registered while the server answered
    provider.armed = True
    with pytest.raises(ScoringError, match="provider 'vendor' failed to declare its licence"):
        scoring.score(_assessment(), provider="vendor", host=installed)


def test_a_provider_writing_to_the_answers_fails_and_changes_nothing(
    host: Callable[[object], PluginHost],
) -> None:
    installed = host(Mutating())
    codes = np.full((2, 13), 2, dtype=np.int8)
    with pytest.raises(ScoringError, match="provider 'vendor' failed"):
        scoring.score_many(PAM13, codes, provider="vendor", host=installed)
    assert (codes == 2).all()


@pytest.mark.parametrize("name", ["pamlib-demo", "pamlib-rasch", "pamlib-csv", "raw-sum"])
def test_a_scaffold_taking_a_built_in_id_is_refused(name: str, tmp_path: Path) -> None:
    assert main(["new-plugin", name, "--kind", "scoring", "--output-dir", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["sitecustomize", "conftest", "pip", "setuptools"])
def test_a_scaffold_named_as_a_start_up_or_packaging_module_is_refused(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-plugin", name, "--kind", "rules", "--output-dir", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []
    assert "choose another" in capsys.readouterr().err


@pytest.mark.parametrize("pid", ["two words", "line\nbreak", "-leading", "tab\there", "ünïcode"])
def test_a_provider_id_that_is_not_the_documented_form_is_refused(
    pid: str, host: Callable[[object], PluginHost]
) -> None:
    provider = Vendor()
    provider.id = pid
    installed = host(provider)
    assert pid not in installed.scoring_providers()
    (error,) = [e for e in installed.errors if "scoring provider whose id" in str(e)]
    assert "letters, digits" in str(error)
