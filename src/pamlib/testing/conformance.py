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
scores rounded to their precision; not-scored results carry a reason in words, and answering
more items never unscores an assessment; provenance on every result; demo-flag honesty; the
one-assessment API agrees exactly with the batch API, row by row over a batch of 1,000 varied
rows (also reversed and in chunks); levels on and next to cut points; answers passed read-only,
as pamlib passes them; known answers (optional fixture ``known_scores``, a list of
:class:`KnownScore`) and the minimum number of items answered (optional fixture
``min_answered``); and the licence — checked through :mod:`pamlib.scoring` at its last valid
day and the day after, and an expired one refused by every scoring call. Every batch and every
one-assessment result also goes through ``check_scores`` and
``check_result``, the checks pamlib applies to every provider's
results before it writes them: a provider that passes here is never refused in production.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import NamedTuple

import attrs
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
from pamlib.levels import CutpointSet, round_half_away_array
from pamlib.plugins import PluginHost
from pamlib.responses import NOT_APPLICABLE_CODE, UNANSWERED_CODE, Response
from pamlib.results import Flag, ScoreResult, ScoreStatus
from pamlib.scoring._selection import NOT_PAM_FLAGS, CheckedProvider, check_result, check_scores
from pamlib.scoring.provider import FLAG_BITS, BatchScores, Licence, ScoringProvider
from pamlib.testing.strategies import KIT_SETTINGS, assessments, response_codes

__all__ = ["KnownScore", "ProviderConformance"]

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


class KnownScore(NamedTuple):
    """One known answer for the ``known_scores`` fixture: the answers of one assessment and the
    score and level the provider must give them.

    ``codes`` are column codes in item order (``1``..``n_categories``, ``0`` unanswered,
    ``-1`` not applicable); ``score`` is the reported (rounded) score, or ``None`` where the
    assessment must not be scored; ``level`` the activation level (1–4), or ``None`` to leave
    it to the cut-point check. A plain tuple ``(instrument, codes, score[, level])`` will do.
    """

    instrument: str
    codes: Sequence[int]
    score: float | None
    level: int | None = None


#: Rows in the batch every row of which is also scored alone.
_LARGE_BATCH_ROWS = 1000
#: Chunk sizes the large batch is also scored in (the rest goes in one last chunk): a batch of
#: one, sizes either side of a provider's likely "fast path" threshold, and a large one.
_CHUNKS = (1, 2, 19, 21, 64, 257)
#: Two scores closer than this are the same reported score (they are rounded decimals).
_SCORE_TOLERANCE = 1e-9


def _read_only(codes: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    """A read-only view of a private copy of ``codes``, as pamlib passes answers to a provider:
    its base is read-only too, so the view cannot be made writeable again."""
    base = np.array(codes, dtype=np.int8, copy=True)
    base.flags.writeable = False
    view = base.view()
    view.flags.writeable = False
    return view


def _score_batch(
    provider: ScoringProvider, instrument: Instrument, codes: npt.NDArray[np.int8]
) -> BatchScores:
    """``provider.score_batch`` on a read-only copy of ``codes``; writing to it fails the test."""
    try:
        return provider.score_batch(instrument, _read_only(codes))
    except ValueError as exc:
        if "read-only" in str(exc):
            raise AssertionError(
                "score_batch wrote to its input array: the codes are the caller's, and pamlib "
                f"passes them read-only ({exc})"
            ) from exc
        raise


def _differences(got: ScoreResult, expected: ScoreResult) -> str:
    names = [a.name for a in attrs.fields(ScoreResult) if a.name != "assessment_id"]
    return "; ".join(
        f"{name} {getattr(got, name)!r} vs {getattr(expected, name)!r}"
        for name in names
        if getattr(got, name) != getattr(expected, name)
    )


def _assert_same_result(got: ScoreResult, expected: ScoreResult, what: str) -> None:
    """``got`` equals ``expected`` but for the assessment id, or the fields that differ."""
    if got.assessment_id != expected.assessment_id:
        got = attrs.evolve(got, assessment_id=expected.assessment_id)
    if got != expected:
        raise AssertionError(f"{what}: {_differences(got, expected)}")


def _answers(instrument: Instrument, positions: Sequence[int], raw: int | None = None) -> list[int]:
    """Codes for answering the items at ``positions``: middle categories (never an extreme
    response set) when ``raw`` is ``None``, else categories summing to ``raw``."""
    k = len(positions)
    top = instrument.n_categories
    if raw is None:
        middle = list(range(2, top)) or [1, top]
        values = [middle[j % len(middle)] for j in range(k)]
    else:
        extra, values = raw - k, []
        for _ in range(k):
            step = min(extra, top - 1)
            values.append(1 + step)
            extra -= step
    return values


def _place(
    instrument: Instrument, positions: Sequence[int], values: Sequence[int], fill: int
) -> npt.NDArray[np.int8]:
    row = np.full(instrument.n_items, fill, dtype=np.int8)
    row[list(positions)] = values
    return row


def _varied_codes(
    instrument: Instrument, n_rows: int = _LARGE_BATCH_ROWS, *, seed: int = 20250301
) -> npt.NDArray[np.int8]:
    """At least ``n_rows`` rows of codes for ``instrument``, the same every call: nothing, or only
    not-applicable, answered; every number of items answered, first, last and spread, with the
    rest unanswered or not applicable; every raw total for every number answered (so a score
    that depends on the total alone meets every value it can take, cut points and ties
    included); every all-one-category set; then random rows, from nearly complete to nearly
    empty, with unanswered and not-applicable cells mixed in."""
    n, top = instrument.n_items, instrument.n_categories
    rng = np.random.default_rng(seed)
    rows = [
        np.full(n, UNANSWERED_CODE, dtype=np.int8),
        np.full(n, NOT_APPLICABLE_CODE, dtype=np.int8),
        np.where(np.arange(n) % 2 == 0, UNANSWERED_CODE, NOT_APPLICABLE_CODE).astype(np.int8),
    ]
    rows += [np.full(n, c, dtype=np.int8) for c in range(1, top + 1)]
    spread = [int(j) for j in rng.permutation(n)]
    for k in range(n + 1):
        first, last = list(range(k)), list(range(n - k, n))
        rows.append(_place(instrument, first, _answers(instrument, first), UNANSWERED_CODE))
        rows.append(_place(instrument, last, _answers(instrument, last), NOT_APPLICABLE_CODE))
        some = sorted(spread[:k])
        rows.append(_place(instrument, some, _answers(instrument, some), UNANSWERED_CODE))
        for raw in range(k, k * top + 1) if k else ():
            rows.append(
                _place(instrument, first, _answers(instrument, first, raw), UNANSWERED_CODE)
            )
            rows.append(
                _place(instrument, last, _answers(instrument, last, raw), NOT_APPLICABLE_CODE)
            )
    structured = np.stack(rows)
    extra = max(n_rows - len(structured), n_rows // 4)
    missing_rate = rng.uniform(0.0, 0.8, size=(extra, 1))
    cells = rng.integers(1, top + 1, size=(extra, n))
    blank = rng.random((extra, n)) < missing_rate
    gap = np.where(rng.random((extra, n)) < 0.5, UNANSWERED_CODE, NOT_APPLICABLE_CODE)
    random_rows = np.where(blank, gap, cells).astype(np.int8)
    return np.concatenate([structured, random_rows])


def _band(cutpoints: CutpointSet, score: float) -> int:
    """The level of a reported score: 1 + the number of (inclusive) upper bounds below it."""
    return 1 + sum(score > bound for bound in cutpoints.upper_bounds)


def _minimum_for(min_answered: int | Mapping[str, int], instrument: Instrument) -> int | None:
    if isinstance(min_answered, Mapping):
        return min_answered.get(instrument.id)
    return int(min_answered)


class ProviderConformance:
    """The contract of a scoring provider, as tests. Override ``provider`` (required) and
    ``expired_provider`` (recommended for any provider holding a licence).

    Two optional fixtures check what only the vendor knows; a test that needs one is skipped,
    saying why, when it is not supplied:

    ``known_scores``
        Known answers: an iterable of :class:`KnownScore` (or plain tuples
        ``(instrument, codes, score[, level])``). Each row is scored in a batch of the known
        rows, alone, and inside a large batch, and must give exactly the expected score (or not
        be scored, for ``None``) and level. Include rounding ties — rows whose exact score ends
        in 5 at the next decimal (31.25 must be reported 31.3: half away from zero, never half
        to even) — and rows scoring exactly on a cut point (47.0 is level 1 under ``current``:
        upper bounds are inclusive).
    ``min_answered``
        The fewest items that must be answered (with one of the categories) for an assessment
        to be scored: an ``int`` for every instrument, or a mapping from instrument id to
        ``int``. Every number of items answered is tried, in several layouts, with the rest
        unanswered or not applicable: fewer must be not scored, with a reason; at least as many
        must be scored (the answers are never an extreme response set).

    Every array the kit passes to ``score_batch`` is read-only, as pamlib passes them: a
    provider writing to its input fails. Every reported score must be rounded to its precision
    (``score_decimals``, or the cut-point set's ``decimals``) and carry the level of that
    reported score.
    """

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

    @pytest.fixture
    def known_scores(self) -> Iterable[KnownScore | tuple[object, ...]] | None:
        """Known answers the provider must reproduce (``None`` skips the known-answer test)."""
        return None

    @pytest.fixture
    def min_answered(self) -> int | Mapping[str, int] | None:
        """The fewest items answered that are scored, for every instrument or by instrument id
        (``None`` skips the minimum-answered test)."""
        return None

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
            first = _score_batch(provider, instrument, codes)
            second = _score_batch(provider, instrument, codes)
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
        self._check_rounding(scores, host)
        # Honesty: demo batches flag every row; unlicensed results say they are not the PAM.
        if scores.demo:
            assert np.all(scores.flags & FLAG_BITS[Flag.DEMO])
        if provider.licence is None and not scores.demo:
            assert np.all(scores.flags & _NOT_PAM_BITS), "unlicensed: flag raw-only/unlicensed"

    @staticmethod
    def _check_rounding(scores: BatchScores, host: PluginHost) -> None:
        """Scores are reported rounded half away from zero to their precision: the declared
        ``score_decimals`` and, where levels come from a cut-point set, its ``decimals`` (a
        level is the band of the score as reported)."""
        precisions = {}
        if scores.score_decimals is not None:
            precisions["score_decimals"] = scores.score_decimals
        if scores.cutpoint_set:
            cut = host.cutpoint_sets().get(scores.cutpoint_set)
            precisions[f"the decimals of cut-point set {cut.id!r}"] = cut.decimals
        if len(set(precisions.values())) > 1:
            raise AssertionError(
                f"scores are reported to {scores.score_decimals} decimals but banded at "
                f"{precisions}: a level must be the band of the score as reported"
            )
        reported = ~np.isnan(scores.score)
        for source, decimals in precisions.items():
            rounded = round_half_away_array(scores.score, decimals)
            off = reported & (np.abs(rounded - scores.score) > _SCORE_TOLERANCE)
            if np.any(off):
                row = int(np.argmax(off))
                raise AssertionError(
                    f"row {row}: score {float(scores.score[row])!r} is not rounded to {decimals} "
                    f"decimals ({source}); report scores rounded half away from zero "
                    "(pamlib.levels.round_half_away_array)"
                )

    @KIT_SETTINGS
    @given(data=st.data())
    def test_one_at_a_time_agrees_with_batch(
        self, provider: ScoringProvider, conformance_host: PluginHost, data: st.DataObject
    ) -> None:
        for instrument in _instruments(provider, conformance_host):
            codes = data.draw(response_codes(instrument, max_rows=5), label=instrument.id)
            batch = _score_batch(provider, instrument, codes)
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

    def test_every_row_of_a_large_batch_agrees_with_scoring_it_alone(
        self, provider: ScoringProvider, conformance_host: PluginHost
    ) -> None:
        """1,000 rows of varied answers (every number answered, every raw total, unanswered and
        not-applicable cells, random rows) scored as one batch; each row must get the same
        result scored alone (``score``), in reverse order, and in chunks of other sizes (a
        batch of one among them). A provider with a fast path for large batches is caught here."""
        cutpoints = conformance_host.cutpoint_sets()
        for instrument in _instruments(provider, conformance_host):
            codes = _varied_codes(instrument)
            n = len(codes)
            batch = _score_batch(provider, instrument, codes)
            self._check_batch(batch, codes, instrument, provider, conformance_host)
            expected = [batch.result(i, f"conformance-{i}") for i in range(n)]
            reverse = _score_batch(provider, instrument, codes[::-1])
            chunks: list[tuple[int, BatchScores]] = []
            start = 0
            for size in (*_CHUNKS, n):
                if start < n:
                    chunks.append((start, _score_batch(provider, instrument, codes[start:][:size])))
                    start += size
            for i, row in enumerate(codes):
                where = f"{instrument.id} row {i} (codes {row.tolist()})"
                _assert_same_result(
                    reverse.result(n - 1 - i, f"conformance-{i}"),
                    expected[i],
                    f"{where}, batch reversed",
                )
                first, part = max((c for c in chunks if c[0] <= i), key=lambda c: c[0])
                _assert_same_result(
                    part.result(i - first, f"conformance-{i}"),
                    expected[i],
                    f"{where}: in a batch of {len(part)} and in one of {n}",
                )
                assessment = _assessment(instrument, row, i)
                before = assessment.codes()
                one = provider.score(assessment)
                _accepted(partial(check_result, one, assessment, provider, cutpoints=cutpoints))
                _assert_same_result(
                    one, expected[i], f"{where}: score(assessment) and row {i} of {n}"
                )
                assert np.array_equal(assessment.codes(), before), "score changed its input"

    def test_levels_on_cut_points(
        self, provider: ScoringProvider, conformance_host: PluginHost
    ) -> None:
        """Over the large batch's answers, rows scored on a cut point or one step either side:
        the level is the band of the reported score (upper bounds inclusive: 47.0 is level 1
        under ``current``), in the batch and scored alone. Skipped when no row lands exactly on
        a cut point — supply ``known_scores`` with such rows then."""
        landed, banded = 0, False
        for instrument in _instruments(provider, conformance_host):
            codes = _varied_codes(instrument)
            scores = _score_batch(provider, instrument, codes)
            if not scores.cutpoint_set:
                continue
            banded = True
            cut = conformance_host.cutpoint_sets().get(scores.cutpoint_set)
            step = 10.0**-cut.decimals
            near = np.zeros(len(codes), dtype=np.bool_)
            for bound in cut.upper_bounds:
                for target in (bound - step, bound, bound + step):
                    hit = np.abs(scores.score - target) <= _SCORE_TOLERANCE
                    near |= hit
                    if target == bound:
                        landed += int(np.count_nonzero(hit))
            for i in np.flatnonzero(near):
                score, level = float(scores.score[i]), int(scores.level[i])
                band = _band(cut, score)
                assert level == band, (
                    f"{instrument.id} row {i} (codes {codes[i].tolist()}): score {score} is "
                    f"level {band} under cut-point set {cut.id!r} {cut.upper_bounds} (upper "
                    f"bounds are inclusive), reported level {level}"
                )
                one = provider.score(_assessment(instrument, codes[i], int(i)))
                _assert_same_result(
                    one,
                    scores.result(int(i), one.assessment_id),
                    f"{instrument.id} row {i} (score {score}, next to a cut point): alone and in "
                    "a batch",
                )
            self._check_batch(scores, codes, instrument, provider, conformance_host)
        if not banded:
            pytest.skip("the provider reports no levels (no cut-point set)")
        if not landed:
            pytest.skip(
                "no answers the kit tried score exactly on a cut point, so levels there are not "
                "exercised; supply 'known_scores' with rows that do"
            )

    def test_known_scores(
        self,
        provider: ScoringProvider,
        conformance_host: PluginHost,
        known_scores: Iterable[KnownScore | tuple[object, ...]] | None,
    ) -> None:
        """The vendor's known answers: each row gives exactly the expected score and level, in a
        batch of the known rows, alone, and appended to the large batch."""
        if known_scores is None:
            pytest.skip(
                "no 'known_scores' fixture: scores are not compared with known answers, so "
                "rounding ties (.x5) and levels on cut points may go unchecked"
            )
        entries = [KnownScore(*entry) for entry in known_scores]
        assert entries, "'known_scores' is empty"
        registry = conformance_host.instruments()
        declared = set(provider.instruments())
        for instrument_id in sorted({e.instrument for e in entries}):
            assert instrument_id in declared, (
                f"'known_scores' names {instrument_id!r}, which the provider does not score"
            )
            instrument = registry.get(instrument_id)
            mine = [(k, e) for k, e in enumerate(entries) if e.instrument == instrument_id]
            for k, e in mine:
                assert len(e.codes) == instrument.n_items, (
                    f"known_scores[{k}]: {len(e.codes)} codes for {instrument.n_items} items"
                )
            codes = np.array([list(e.codes) for _, e in mine], dtype=np.int8)
            together = _score_batch(provider, instrument, codes)
            varied = _varied_codes(instrument)
            inside = _score_batch(provider, instrument, np.concatenate([varied, codes]))
            for j, (k, e) in enumerate(mine):
                assessment = _assessment(instrument, codes[j], k)
                candidates = [
                    ("in a batch of the known rows", together.result(j, assessment.id)),
                    (f"in a batch of {len(inside)}", inside.result(len(varied) + j, assessment.id)),
                    ("alone", provider.score(assessment)),
                ]
                for how, got in candidates:
                    what = f"known_scores[{k}] ({instrument_id}, codes {list(e.codes)}) {how}"
                    if e.score is None:
                        assert not got.scored, f"{what}: scored {got.score}, expected not scored"
                        assert got.reason, f"{what}: not scored, but no reason given"
                        continue
                    assert got.scored, f"{what}: not scored ({got.reason_code}), expected {e.score}"
                    assert got.score is not None, f"{what}: scored without a score"
                    assert abs(got.score - float(e.score)) <= _SCORE_TOLERANCE, (
                        f"{what}: score {got.score}, expected {e.score} (scores are rounded "
                        "half away from zero: 31.25 is 31.3)"
                    )
                    if e.level is not None:
                        level = None if got.level is None else int(got.level)
                        assert level == int(e.level), (
                            f"{what}: level {level}, expected {e.level} (score {got.score})"
                        )
            # the expected values first (the clearer failure), then the batch's other checks
            self._check_batch(together, codes, instrument, provider, conformance_host)

    def test_min_answered(
        self,
        provider: ScoringProvider,
        conformance_host: PluginHost,
        min_answered: int | Mapping[str, int] | None,
    ) -> None:
        """With fewer than ``min_answered`` items answered an assessment is not scored, with a
        reason; with at least that many (non-extreme answers) it is scored — whichever items
        are answered and whether the rest are unanswered or not applicable."""
        if min_answered is None:
            pytest.skip(
                "no 'min_answered' fixture: the provider's minimum number of items answered "
                "is not checked"
            )
        checked = 0
        rng = np.random.default_rng(7)
        for instrument in _instruments(provider, conformance_host):
            minimum = _minimum_for(min_answered, instrument)
            if minimum is None:
                continue
            n = instrument.n_items
            assert 1 <= minimum <= n, f"min_answered for {instrument.id} must lie in 1..{n}"
            rows, answered = [], []
            for k in range(n + 1):
                spread = sorted(int(j) for j in rng.permutation(n)[:k])
                for positions in (range(k), range(n - k, n), spread):
                    at = list(positions)
                    for fill in (UNANSWERED_CODE, NOT_APPLICABLE_CODE):
                        rows.append(_place(instrument, at, _answers(instrument, at), fill))
                        answered.append(k)
            codes = np.stack(rows)
            scores = _score_batch(provider, instrument, codes)
            self._check_batch(scores, codes, instrument, provider, conformance_host)
            for i, k in enumerate(answered):
                what = f"{instrument.id}: {k} of {n} items answered (codes {codes[i].tolist()})"
                result = scores.result(i, "x")
                if k < minimum:
                    assert not result.scored, (
                        f"{what} is scored ({result.score}), but fewer than {minimum} answered "
                        "must not be"
                    )
                    assert result.reason, f"{what}: not scored, but no reason given"
                else:
                    assert result.scored, (
                        f"{what} is not scored ({result.reason_code}), but {minimum} answered "
                        "is enough"
                    )
                if k in (minimum - 1, minimum):
                    one = provider.score(_assessment(instrument, codes[i], i))
                    _assert_same_result(one, result, f"{what}: alone and in a batch")
            checked += 1
        if not checked:
            pytest.skip("'min_answered' names none of the instruments the provider scores")

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
                threaded = list(pool.map(partial(_score_batch, provider, instrument), batches))
                rows = [_assessment(instrument, b[0], i) for i, b in enumerate(batches)]
                ones = list(pool.map(provider.score, rows))
            for i, (codes, scores) in enumerate(zip(batches, threaded, strict=True)):
                _assert_same(scores, _score_batch(provider, instrument, codes))
                assert ones[i] == provider.score(rows[i])
                _assert_same_result(
                    ones[i],
                    scores.result(0, rows[i].id),
                    f"{instrument.id}: row 0 scored alone and in a batch of {len(codes)} differ",
                )

    def test_too_few_answered_is_not_scored_with_a_reason(
        self, provider: ScoringProvider, conformance_host: PluginHost
    ) -> None:
        for instrument in _instruments(provider, conformance_host):
            n = instrument.n_items
            codes = np.stack([_mid_answers(instrument, k) for k in range(n + 1)])
            scores = _score_batch(provider, instrument, codes)
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
            scores = _score_batch(provider, instrument, codes)
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
            result = _score_batch(provider, instrument, codes).result(0, "x")
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
        today = dt.date.today()  # noqa: DTZ011 - licences end on the local calendar
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
