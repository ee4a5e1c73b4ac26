"""Conformance tests every scoring provider should pass.

Subclass :class:`ProviderConformance` in a test module and provide a ``provider`` fixture; pytest
collects the inherited tests::

    import pytest
    from pamlib.testing import ProviderConformance
    from my_vendor_plugin import MyProvider

    class TestMyProvider(ProviderConformance):
        @pytest.fixture
        def provider(self):
            return MyProvider(calibration_path=...)

        @pytest.fixture
        def expired_provider(self):          # optional: enables the licence test
            return MyProvider(..., valid_until=datetime.date(2000, 1, 1))

Responses are generated with Hypothesis for every instrument the provider declares.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pamlib.assessment import Assessment
from pamlib.errors import LicenceError
from pamlib.identity import Patient
from pamlib.instruments import Instrument
from pamlib.plugins import PluginHost
from pamlib.responses import NOT_APPLICABLE_CODE, UNANSWERED_CODE, Response
from pamlib.results import Flag
from pamlib.scoring.provider import BatchScores, Licence, ScoringProvider

__all__ = ["ProviderConformance", "response_codes"]

_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def response_codes(n_items: int, max_rows: int = 20) -> st.SearchStrategy[npt.NDArray[np.int8]]:
    """Column codes, mostly answered, with unanswered and not-applicable cells mixed in."""
    cell = st.sampled_from(
        [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, UNANSWERED_CODE, NOT_APPLICABLE_CODE]
    )
    return hnp.arrays(np.int8, st.tuples(st.integers(1, max_rows), st.just(n_items)), elements=cell)


def _instruments(provider: ScoringProvider, host: PluginHost) -> list[Instrument]:
    registry = host.instruments()
    return [registry.get(i) for i in sorted(provider.instruments()) if i in registry]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


class ProviderConformance:
    """The contract of a scoring provider, as tests. Override ``provider`` (required)."""

    @pytest.fixture
    def provider(self) -> ScoringProvider:
        raise NotImplementedError("define a 'provider' fixture returning your provider")

    @pytest.fixture
    def expired_provider(self) -> ScoringProvider | None:
        """Your provider configured with a licence that has expired (``None`` skips the test)."""
        return None

    @pytest.fixture
    def conformance_host(self, pamlib_host: PluginHost) -> PluginHost:
        return pamlib_host

    # -- identity and declarations ---------------------------------------------------------

    def test_declares_identity(self, provider: ScoringProvider) -> None:
        assert isinstance(provider.id, str)
        assert provider.id.strip()
        assert isinstance(provider.version, str)
        assert provider.version.strip()
        assert isinstance(provider.demo, bool)
        assert provider.licence is None or isinstance(provider.licence, Licence)

    def test_declares_registered_instruments(
        self, provider: ScoringProvider, conformance_host: PluginHost
    ) -> None:
        declared = set(provider.instruments())
        assert declared, "a provider scores at least one instrument"
        unknown = declared - {i.id for i in conformance_host.instruments()}
        assert not unknown, f"instruments not registered with pamlib: {sorted(unknown)}"

    def test_licence_covers_declared_instruments(self, provider: ScoringProvider) -> None:
        if provider.licence is not None:
            assert set(provider.instruments()) <= provider.licence.instruments

    # -- behaviour over generated responses ------------------------------------------------

    @_SETTINGS
    @given(data=st.data())
    def test_batch_is_deterministic_and_well_formed(
        self, provider: ScoringProvider, conformance_host: PluginHost, data: st.DataObject
    ) -> None:
        for instrument in _instruments(provider, conformance_host):
            codes = data.draw(response_codes(instrument.n_items), label=instrument.id)
            first = provider.score_batch(instrument, codes.copy())
            second = provider.score_batch(instrument, codes.copy())
            self._check_batch(first, codes, instrument, conformance_host)
            for name in ("scored", "n_answered", "raw_score", "level", "flags", "reason_code"):
                assert np.array_equal(getattr(first, name), getattr(second, name)), name
            for name in ("theta", "theta_se", "score", "score_se", "mean_response"):
                assert np.array_equal(getattr(first, name), getattr(second, name), equal_nan=True)

    def _check_batch(
        self,
        scores: BatchScores,
        codes: npt.NDArray[np.int8],
        instrument: Instrument,
        host: PluginHost,
    ) -> None:
        n = codes.shape[0]
        assert len(scores) == n
        assert scores.provider
        answered = (codes > 0).sum(axis=1)
        assert np.array_equal(scores.n_answered, answered), "n_answered counts categories 1-4"
        raw = np.where(codes > 0, codes, 0).sum(axis=1)
        assert np.array_equal(scores.raw_score[scores.scored], raw[scores.scored])
        # Scores within [0, 100]; SEs non-negative; NaN only where not scored or raw-only.
        s = scores.score[scores.scored & ~np.isnan(scores.score)]
        assert np.all((s >= 0) & (s <= 100))
        se = scores.score_se[~np.isnan(scores.score_se)]
        assert np.all(se >= 0)
        # Not scored ⇒ a reason; nothing answered ⇒ not scored.
        assert np.all(scores.reason_code[~scores.scored] != "")
        assert not np.any(scores.scored & (answered == 0))
        # Levels agree with the declared cut-point set at the reported (rounded) score.
        has_level = scores.level > 0
        if np.any(has_level):
            assert scores.cutpoint_set, "levels need the id of the cut-point set"
            cutpoints = host.cutpoint_sets().get(scores.cutpoint_set)
            expected = cutpoints.levels(scores.score[has_level])
            assert np.array_equal(scores.level[has_level], expected)
        # Honesty: demo results say so; unlicensed results are demo or raw-only.
        from pamlib.scoring.provider import FLAG_BITS

        if scores.demo:
            assert np.all(scores.flags & FLAG_BITS[Flag.DEMO])

    @_SETTINGS
    @given(data=st.data())
    def test_one_at_a_time_agrees_with_batch(
        self, provider: ScoringProvider, conformance_host: PluginHost, data: st.DataObject
    ) -> None:
        for instrument in _instruments(provider, conformance_host):
            codes = data.draw(response_codes(instrument.n_items, max_rows=5), label=instrument.id)
            batch = provider.score_batch(instrument, codes)
            for i, row in enumerate(codes):
                responses = {
                    item: Response(int(c))
                    for item, c in zip(instrument.items, row, strict=True)
                    if c != UNANSWERED_CODE
                }
                assessment = Assessment(
                    f"conformance-{i}",
                    Patient("conformance"),
                    instrument,
                    dt.date(2025, 1, 1),
                    responses,
                )
                one = provider.score(assessment)
                expected = batch.result(i, assessment.id)
                assert one.status == expected.status
                assert one.level == expected.level
                assert one.flags == expected.flags
                assert one.demo == expected.demo
                for name in ("theta", "theta_se", "score", "score_se", "raw_score", "n_answered"):
                    a, b = getattr(one, name), getattr(expected, name)
                    assert (a is None and b is None) or (
                        a is not None and b is not None and _same(float(a), float(b))
                    ), name

    def test_nothing_answered_is_not_scored_with_a_reason(
        self, provider: ScoringProvider, conformance_host: PluginHost
    ) -> None:
        for instrument in _instruments(provider, conformance_host):
            codes = np.zeros((2, instrument.n_items), dtype=np.int8)
            codes[1, :] = NOT_APPLICABLE_CODE
            scores = provider.score_batch(instrument, codes)
            assert not scores.scored.any()
            for i in range(2):
                result = scores.result(i, "x")
                assert result.reason
                assert result.reason_code

    def test_demo_flag_honesty(
        self, provider: ScoringProvider, conformance_host: PluginHost
    ) -> None:
        for instrument in _instruments(provider, conformance_host):
            codes = np.full((1, instrument.n_items), 3, dtype=np.int8)
            result = provider.score_batch(instrument, codes).result(0, "x")
            assert result.demo == provider.demo
            assert (Flag.DEMO in result.flags) == provider.demo
            if provider.licence is None and not provider.demo:
                assert Flag.RAW_ONLY in result.flags, "unlicensed scores must be raw-only or demo"

    def test_expired_licence_is_refused(
        self, expired_provider: ScoringProvider | None, conformance_host: PluginHost
    ) -> None:
        if expired_provider is None:
            pytest.skip("no 'expired_provider' fixture: licence expiry not exercised")
        from pamlib import scoring

        licence = expired_provider.licence
        assert licence is not None, "an expired provider must declare its licence"
        assert licence.valid_until is not None
        instrument = _instruments(expired_provider, conformance_host)[0]
        codes = np.full((1, instrument.n_items), 3, dtype=np.int8)
        scoring_api: Any = scoring
        with pytest.raises(LicenceError):
            scoring_api.score_many(instrument, codes, provider=expired_provider)
