"""Conformance tests every scoring provider should pass.

Subclass :class:`ProviderConformance` in a test module and provide a ``provider`` fixture; pytest
collects the inherited tests::

    import datetime as dt
    import pytest
    from pamlib.testing import ProviderConformance, write_synthetic_calibration
    from my_vendor_plugin import MyProvider

    class TestMyProvider(ProviderConformance):
        @pytest.fixture
        def provider(self, tmp_path):
            return MyProvider(write_synthetic_calibration(tmp_path, licensee="Test Trust"))

        @pytest.fixture
        def expired_provider(self, tmp_path):  # optional: enables the expiry tests
            path = write_synthetic_calibration(
                tmp_path, licensee="Test Trust", valid_until=dt.date(2000, 1, 1)
            )
            return MyProvider(path)

Responses are generated with Hypothesis for every instrument the provider declares. What is
checked: identity and declarations; determinism, also under concurrent calls; score and SE
ranges; levels equal to the declared cut-point set applied to the reported (rounded) score;
not-scored results carry a reason in words, and answering more items never unscores an
assessment; provenance on every result; demo-flag honesty; the one-assessment API agrees exactly
with the batch API; and the licence — checked through :mod:`pamlib.scoring` at its last valid
day and the day after, and an expired one refused by every scoring call. Every batch and every
one-assessment result also goes through ``check_scores`` and
``check_result``, the checks pamlib applies to every provider's
results before it writes them: a provider that passes here is never refused in production.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib import scoring
from pamlib.assessment import Assessment
from pamlib.errors import LicenceError, ScoringError
from pamlib.identity import Patient
from pamlib.instruments import Instrument
from pamlib.plugins import PluginHost
from pamlib.responses import NOT_APPLICABLE_CODE, UNANSWERED_CODE, Response
from pamlib.results import Flag, ScoreStatus
from pamlib.scoring._selection import NOT_PAM_FLAGS, CheckedProvider, check_result, check_scores
from pamlib.scoring.provider import FLAG_BITS, BatchScores, Licence, ScoringProvider
from pamlib.testing.strategies import KIT_SETTINGS, assessments, response_codes

__all__ = ["ProviderConformance"]

#: Provider ids end up in result columns and on the command line.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_NOT_PAM_BITS = sum(FLAG_BITS[f] for f in NOT_PAM_FLAGS)


def _instruments(provider: ScoringProvider, host: PluginHost) -> list[Instrument]:
    registry = host.instruments()
    return [registry.get(i) for i in sorted(provider.instruments()) if i in registry]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _assessment(instrument: Instrument, row: npt.NDArray[np.int8], i: int) -> Assessment:
    responses = {
        item: Response(int(c))
        for item, c in zip(instrument.items, row, strict=True)
        if c != UNANSWERED_CODE
    }
    return Assessment(
        f"conformance-{i}", Patient("conformance"), instrument, dt.date(2025, 1, 1), responses
    )


def _mid_answers(instrument: Instrument, k: int) -> npt.NDArray[np.int8]:
    """``k`` items answered in the middle categories (never an extreme response set)."""
    row = np.zeros(instrument.n_items, dtype=np.int8)
    middle = list(range(2, instrument.n_categories)) or [1, instrument.n_categories]
    for j in range(k):
        row[j] = middle[j % 2]
    return row


def _accepted(check: Callable[[], object]) -> None:
    """Run one of pamlib's result checks; its refusal is this test's failure."""
    try:
        check()
    except ScoringError as exc:
        raise AssertionError(f"pamlib refuses these results: {exc}") from exc


def _assert_same(first: BatchScores, second: BatchScores) -> None:
    for name in ("scored", "n_answered", "raw_score", "level", "flags", "reason_code"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    for name in ("theta", "theta_se", "score", "score_se", "mean_response"):
        assert np.array_equal(getattr(first, name), getattr(second, name), equal_nan=True), name


class ProviderConformance:
    """The contract of a scoring provider, as tests. Override ``provider`` (required) and
    ``expired_provider`` (recommended for any provider holding a licence)."""

    @pytest.fixture
    def provider(self) -> ScoringProvider:
        raise NotImplementedError("define a 'provider' fixture returning your provider")

    @pytest.fixture
    def expired_provider(self) -> ScoringProvider | None:
        """Your provider configured with a licence that has expired (``None`` skips the test)."""
        return None

    @pytest.fixture
    def conformance_host(self, pamlib_host: PluginHost) -> PluginHost:
        """Where instruments and cut-point sets are looked up (every installed plugin)."""
        return pamlib_host

    # -- identity and declarations ---------------------------------------------------------

    def test_declares_identity(self, provider: ScoringProvider) -> None:
        assert isinstance(provider.id, str)
        assert _ID.fullmatch(provider.id), "ids are letters, digits and . _ : - (no spaces)"
        assert isinstance(provider.version, str)
        assert provider.version.strip()
        assert isinstance(provider.demo, bool)
        assert provider.licence is None or isinstance(provider.licence, Licence)
        if provider.demo:
            assert provider.licence is None, "a demonstration provider cannot hold a licence"

    def test_declares_registered_instruments(
        self, provider: ScoringProvider, conformance_host: PluginHost
    ) -> None:
        declared = set(provider.instruments())
        assert declared, "a provider scores at least one instrument"
        unknown = declared - {i.id for i in conformance_host.instruments()}
        assert not unknown, f"instruments not registered with pamlib: {sorted(unknown)}"

    def test_licence_covers_declared_instruments(self, provider: ScoringProvider) -> None:
        if provider.licence is not None:
            assert provider.licence.licensee.strip(), "a licence names its licensee"
            assert set(provider.instruments()) <= provider.licence.instruments

    # -- behaviour over generated responses ------------------------------------------------

    @KIT_SETTINGS
    @given(data=st.data())
    def test_batch_is_deterministic_and_well_formed(
        self, provider: ScoringProvider, conformance_host: PluginHost, data: st.DataObject
    ) -> None:
        for instrument in _instruments(provider, conformance_host):
            codes = data.draw(response_codes(instrument), label=instrument.id)
            first = provider.score_batch(instrument, codes.copy())
            second = provider.score_batch(instrument, codes.copy())
            self._check_batch(first, codes, instrument, provider, conformance_host)
            _assert_same(first, second)

    def _check_batch(
        self,
        scores: BatchScores,
        codes: npt.NDArray[np.int8],
        instrument: Instrument,
        provider: ScoringProvider,
        host: PluginHost,
    ) -> None:
        n = codes.shape[0]
        # What pamlib checks on every call, with the row and field of the first problem.
        _accepted(
            partial(
                check_scores, scores, instrument, provider, n_rows=n, cutpoints=host.cutpoint_sets()
            )
        )
        assert len(scores) == n
        for name in ("n_answered", "raw_score", "score", "score_se", "level", "flags"):
            assert getattr(scores, name).shape == (n,), f"{name} has one value per row"
        # Provenance: every row says which provider (and version) produced it.
        assert scores.provider == provider.id
        assert scores.provider_version == provider.version
        assert scores.demo == provider.demo, "a batch is demo exactly when its provider is"
        answered = (codes > 0).sum(axis=1)
        assert np.array_equal(scores.n_answered, answered), "n_answered counts categories only"
        raw = np.where(codes > 0, codes, 0).sum(axis=1)
        assert np.array_equal(scores.raw_score[scores.scored], raw[scores.scored])
        # Scores within [0, 100]; SEs non-negative; nothing numeric where not scored.
        s = scores.score[~np.isnan(scores.score)]
        assert np.all((s >= 0) & (s <= 100)), "scores are on the 0–100 scale"
        se = scores.score_se[~np.isnan(scores.score_se)]
        assert np.all(se >= 0), "standard errors are not negative"
        assert np.all(np.isnan(scores.score[~scores.scored])), "unscored rows have no score"
        assert np.all(scores.level[~scores.scored] == 0), "unscored rows have no level"
        # Not scored ⇒ a reason code, explained in words; nothing answered ⇒ not scored.
        unscored_codes = {str(c) for c in scores.reason_code[~scores.scored]}
        assert "" not in unscored_codes, "every unscored row has a reason code"
        missing = unscored_codes - set(scores.reasons)
        assert not missing, f"reason codes without words in BatchScores.reasons: {missing}"
        assert np.all(scores.reason_code[scores.scored] == ""), "scored rows have no reason"
        assert not np.any(scores.scored & (answered == 0))
        # Levels are the declared cut-point set applied to the reported (rounded) score.
        has_level = scores.level > 0
        if np.any(has_level):
            assert scores.cutpoint_set, "levels need the id of the cut-point set"
            cutpoints = host.cutpoint_sets().get(scores.cutpoint_set)
            expected = cutpoints.levels(scores.score[has_level])
            assert np.array_equal(scores.level[has_level], expected)
        if scores.cutpoint_set:
            with_score = scores.scored & ~np.isnan(scores.score)
            assert np.all(scores.level[with_score] > 0), "every score gets a level"
        # Honesty: demo batches flag every row; unlicensed results say they are not the PAM.
        if scores.demo:
            assert np.all(scores.flags & FLAG_BITS[Flag.DEMO])
        if provider.licence is None and not scores.demo:
            assert np.all(scores.flags & _NOT_PAM_BITS), "unlicensed: flag raw-only/unlicensed"

    @KIT_SETTINGS
    @given(data=st.data())
    def test_one_at_a_time_agrees_with_batch(
        self, provider: ScoringProvider, conformance_host: PluginHost, data: st.DataObject
    ) -> None:
        for instrument in _instruments(provider, conformance_host):
            codes = data.draw(response_codes(instrument, max_rows=5), label=instrument.id)
            batch = provider.score_batch(instrument, codes)
            for i, row in enumerate(codes):
                assessment = _assessment(instrument, row, i)
                one = provider.score(assessment)
                cutpoints = conformance_host.cutpoint_sets()
                _accepted(partial(check_result, one, assessment, provider, cutpoints=cutpoints))
                expected = batch.result(i, assessment.id)
                for name in ("theta", "theta_se", "score", "score_se", "mean_response"):
                    a, b = getattr(one, name), getattr(expected, name)
                    assert (a is None and b is None) or (
                        a is not None and b is not None and _same(float(a), float(b))
                    ), f"{name}: one at a time {a!r}, in a batch {b!r}"
                assert one == expected

    def test_concurrent_calls_agree_with_serial_ones(
        self, provider: ScoringProvider, conformance_host: PluginHost
    ) -> None:
        """A service calls one provider from many threads; cold caches are the risky part, so
        the threads go first, on a fresh provider."""
        rng = np.random.default_rng(20250301)
        for instrument in _instruments(provider, conformance_host):
            top = instrument.n_categories
            batches = [
                rng.integers(-1, top + 1, size=(40, instrument.n_items)).astype(np.int8)
                for _ in range(8)
            ]
            with ThreadPoolExecutor(4) as pool:
                threaded = list(pool.map(partial(provider.score_batch, instrument), batches))
                rows = [_assessment(instrument, b[0], i) for i, b in enumerate(batches)]
                ones = list(pool.map(provider.score, rows))
            for i, (codes, scores) in enumerate(zip(batches, threaded, strict=True)):
                _assert_same(scores, provider.score_batch(instrument, codes))
                assert ones[i] == provider.score(rows[i])

    def test_too_few_answered_is_not_scored_with_a_reason(
        self, provider: ScoringProvider, conformance_host: PluginHost
    ) -> None:
        for instrument in _instruments(provider, conformance_host):
            n = instrument.n_items
            codes = np.stack([_mid_answers(instrument, k) for k in range(n + 1)])
            scores = provider.score_batch(instrument, codes)
            assert not scores.scored[0], "nothing answered is never scored"
            assert scores.scored[n], "a complete, non-extreme response set is scored"
            first = int(np.argmax(scores.scored))
            assert scores.scored[first:].all(), "answering more items never unscores"
            for k in range(first):
                result = scores.result(k, "x")
                assert result.status is ScoreStatus.NOT_SCORED
                assert result.reason_code
                assert result.reason
                assert result.reason != result.reason_code, "say why in words"

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

    @KIT_SETTINGS
    @given(data=st.data())
    def test_results_pass_through_the_scoring_api(
        self, provider: ScoringProvider, conformance_host: PluginHost, data: st.DataObject
    ) -> None:
        """What a service sees: pamlib's licence and honesty checks accept the results."""
        for instrument in _instruments(provider, conformance_host):
            assessment = data.draw(assessments(instrument), label=instrument.id)
            one = scoring.score(assessment, provider=provider, host=conformance_host)
            codes = assessment.codes()[np.newaxis, :]
            many = scoring.score_many(instrument, codes, provider=provider, host=conformance_host)
            assert many.result(0, assessment.id) == one

    def test_demo_flag_honesty(
        self, provider: ScoringProvider, conformance_host: PluginHost
    ) -> None:
        for instrument in _instruments(provider, conformance_host):
            codes = np.full((1, instrument.n_items), 3, dtype=np.int8)
            result = provider.score_batch(instrument, codes).result(0, "x")
            assert result.demo == provider.demo
            assert (Flag.DEMO in result.flags) == provider.demo
            if provider.licence is None and not provider.demo:
                assert not result.flags.isdisjoint(NOT_PAM_FLAGS), (
                    "unlicensed scores must be flagged raw-only or unlicensed, or be demo"
                )
            if provider.licence is not None:
                assert result.flags.isdisjoint(NOT_PAM_FLAGS), "a licensed score is the PAM"

    # -- licence ---------------------------------------------------------------------------

    def test_licence_is_checked_at_its_dates(
        self, provider: ScoringProvider, conformance_host: PluginHost
    ) -> None:
        licence = provider.licence
        if licence is None or licence.valid_until is None:
            pytest.skip("the provider holds no licence with an end date")
        last = licence.valid_until
        for instrument in _instruments(provider, conformance_host):
            checked = scoring.select_provider(provider, instrument, host=conformance_host)
            assert isinstance(checked, CheckedProvider)
            checked.check(instrument, on=last)  # valid on its last day, inclusive
            with pytest.raises(LicenceError, match="expired"):
                checked.check(instrument, on=last + dt.timedelta(days=1))

    def test_expired_licence_is_refused(
        self, expired_provider: ScoringProvider | None, conformance_host: PluginHost
    ) -> None:
        if expired_provider is None:
            pytest.skip("no 'expired_provider' fixture: licence expiry not exercised")
        licence = expired_provider.licence
        assert licence is not None, "an expired provider must declare its licence"
        assert licence.valid_until is not None
        today = dt.datetime.now(dt.UTC).date()
        assert licence.valid_until < today, "the 'expired_provider' licence has not expired"
        for instrument in _instruments(expired_provider, conformance_host):
            codes = np.full((1, instrument.n_items), 3, dtype=np.int8)
            with pytest.raises(LicenceError, match="expired"):
                scoring.select_provider(expired_provider, instrument, host=conformance_host)
            with pytest.raises(LicenceError, match="expired"):
                scoring.score_many(
                    instrument, codes, provider=expired_provider, host=conformance_host
                )
            with pytest.raises(LicenceError, match="expired"):
                scoring.score(
                    _assessment(instrument, codes[0], 0),
                    provider=expired_provider,
                    host=conformance_host,
                )
