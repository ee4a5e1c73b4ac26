"""The ``rasch`` provider: the generic Rasch engine scoring with a calibration file.

For licensees, who load the calibration they hold, and for research. The registered provider has
no calibration; :meth:`RaschProvider.with_calibration` (what ``calibration=`` / ``--calibration``
does) returns one bound to a calibration. A calibration carrying a ``licence`` block gives a
provider holding that licence (checked on every call: an expired licence stops scoring); one
without gives results flagged ``unlicensed`` — research measures, not licensed PAM scores. A
vendor plugin may instead register ``RaschProvider(calibration, licence=..., id=..., host=host)``
with the licence it holds, passing on the host its hook is given (without it, the calibration's
instruments and cut-point set are looked up in the process-wide host).

The compiled (mask, raw score) table, and the one-assessment results remembered by the same key,
live in this object's memory only: nothing here writes, logs, caches elsewhere or shows them.
A provider pickles as what it was built from — its id, licence, host and calibration, which
pickles as a reference to its file (see :mod:`pamlib.scoring.calibration`) — and is bound again
when unpickled; the table is rebuilt lazily, as in the process that sent it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import numpy as np
import numpy.typing as npt

from pamlib._version import __version__
from pamlib.errors import CalibrationError, LicensedContentError, Problem, ScoringError
from pamlib.hookspecs import hookimpl
from pamlib.levels import CutpointSet, round_half_away_array
from pamlib.results import Flag, ScoreResult
from pamlib.scoring._engine import ScoreTable
from pamlib.scoring.calibration import (
    Calibration,
    CompiledCalibration,
    ExtremeResponse,
    _calibration_reference,
    _scale_problems,
    decimals_mismatch,
    load_calibration,
)
from pamlib.scoring.provider import FLAG_BITS, BaseProvider, BatchScores, Licence, ScoringProvider

if TYPE_CHECKING:
    from pamlib.assessment import Assessment
    from pamlib.instruments import Instrument
    from pamlib.plugins import PluginHost

__all__ = ["TOO_FEW_ANSWERED", "CalibratedScorer", "RaschProvider"]

#: Reason code: fewer items answered than the calibration's ``min_answered``.
TOO_FEW_ANSWERED = "too-few-answered"
#: Reason code: an extreme response set, under ``extreme_response = "not-scored"``.
EXTREME_RESPONSE = "extreme-response"

_REASON_CODES = np.array(["", TOO_FEW_ANSWERED, EXTREME_RESPONSE])
_BIT_MISSING = np.uint8(FLAG_BITS[Flag.MISSING_ITEMS])
_BIT_EXTREME = np.uint8(FLAG_BITS[Flag.EXTREME_RESPONSE])
#: The fields of a one-assessment result that come from its batch row (all but the id).
_RESULT_FIELDS = tuple(a for a in attrs.fields(ScoreResult) if a.name != "assessment_id")
#: One-assessment results remembered per scorer (13 items allow 8,192 masks of up to 40 raw
#: scores; real answers use a small share of them).
_MAX_REMEMBERED = 1 << 16


class CalibratedScorer:
    """One compiled calibration with its in-memory table: response codes in, score columns out.

    Shared by :class:`RaschProvider` and the demo provider so both score the same way.
    """

    __slots__ = (
        "_checked",
        "_cutpoints",
        "_extra_bits",
        "_index",
        "_lock",
        "_results",
        "_table",
        "compiled",
    )

    def __init__(
        self, compiled: CompiledCalibration, cutpoints: CutpointSet | None, extra_flags: int
    ) -> None:
        bad_scale = _scale_problems(compiled.scale)
        if bad_scale:  # a CompiledCalibration built by hand, not by Calibration.compile()
            raise CalibrationError(
                f"calibration {compiled.calibration_id!r} has a scale pamlib cannot report on",
                [
                    Problem(f"{compiled.calibration_id}: {field}", "range", message)
                    for field, message in bad_scale
                ],
            )
        if cutpoints is not None and cutpoints.decimals != compiled.scale.decimals:
            # The level must be the band of the score as reported (docs/scoring.rst).
            raise CalibrationError(
                f"calibration {compiled.calibration_id!r} cannot use cut-point set "
                f"{cutpoints.id!r}",
                [
                    Problem(
                        f"{compiled.calibration_id}: scale.decimals",
                        "decimals",
                        decimals_mismatch(cutpoints.id, cutpoints.decimals),
                    )
                ],
            )
        self.compiled = compiled
        self._cutpoints = cutpoints
        self._extra_bits = int(extra_flags)
        self._table: ScoreTable | None = None
        self._lock = threading.Lock()
        self._index = {item: j for j, item in enumerate(compiled.items)}
        self._checked: Instrument | None = None  # the last instrument found to fit
        self._results: dict[tuple[int, int, str, str], dict[str, Any]] = {}

    @property
    def cutpoints(self) -> CutpointSet | None:
        return self._cutpoints

    def table(self) -> ScoreTable:
        """The (mask, raw score) table, created on first use and grown lazily by the engine."""
        table = self._table
        if table is None:
            with self._lock:
                if self._table is None:
                    self._table = ScoreTable(self.compiled.step_model, self.compiled.estimator)
                table = self._table
        return table

    def check_instrument(self, instrument: Instrument) -> None:
        """Raise :class:`~pamlib.errors.ScoringError` unless this calibration fits
        ``instrument``."""
        if instrument is self._checked:
            return
        c = self.compiled
        if instrument.id != c.instrument:
            raise ScoringError(
                f"calibration {c.calibration_id!r} is for {c.instrument}, not {instrument.id}"
            )
        if tuple(instrument.items) != c.items:
            raise ScoringError(
                f"calibration {c.calibration_id!r} and the registered {instrument.id} "
                "list different items"
            )
        model = c.step_model
        if model.is_ragged or model.n_steps != instrument.n_categories - 1:
            raise ScoringError(
                f"calibration {c.calibration_id!r} does not have "
                f"{instrument.n_categories - 1} steps for every item of {instrument.id}"
            )
        self._checked = instrument

    def score(
        self, instrument: Instrument, codes: npt.NDArray[np.int8], provider: ScoringProvider
    ) -> BatchScores:
        """Score ``codes`` (n, n_items); provenance fields name ``provider``."""
        self.check_instrument(instrument)
        c = self.compiled
        measures = self.table().score(codes)
        n = measures.n_answered
        # The engine counts categories from 0; results report the instrument's codes (1..4).
        raw = measures.raw_score + n
        top = instrument.n_categories - 1
        answered_any = n > 0
        extreme = answered_any & ((measures.raw_score == 0) | (measures.raw_score == top * n))
        policy = c.policy
        enough = n >= policy.min_answered
        scored = enough.copy()
        reason_index = np.where(enough, 0, 1).astype(np.int8)  # into _REASON_CODES
        if policy.extreme_response is ExtremeResponse.NOT_SCORED:
            excluded = enough & extreme
            scored &= ~excluded
            reason_index[excluded] = 2
        every = bool(scored.all())  # the usual batch: no reasons, every measure kept
        # "" on every row: zeros one character wide, which the checks read at a glance
        reason = np.zeros(n.shape[0], dtype="U1") if every else _REASON_CODES.take(reason_index)
        extra = np.uint8(self._extra_bits)
        flags = np.where(n < instrument.n_items, extra | _BIT_MISSING, extra)
        if policy.extreme_response is not ExtremeResponse.IGNORE:
            flags |= np.where(extreme, _BIT_EXTREME, np.uint8(0))
        if every:  # the engine's own fresh arrays, as they are
            theta, theta_se = measures.theta, measures.theta_se
        else:
            theta = np.where(scored, measures.theta, np.nan)
            theta_se = np.where(scored, measures.theta_se, np.nan)
        s = c.scale
        score = round_half_away_array(
            np.clip(s.intercept + s.slope * theta, s.min, s.max), s.decimals
        )
        cut = self._cutpoints
        level = cut.levels(score) if cut is not None else np.zeros(n.shape[0], dtype=np.int8)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(answered_any, raw / np.maximum(n, 1), np.nan)
        return BatchScores(
            scored=scored,
            n_answered=n,
            raw_score=raw,
            mean_response=mean,
            theta=theta,
            theta_se=theta_se,
            score=score,
            score_se=s.slope * theta_se,
            level=level,
            flags=flags,
            reason_code=reason,
            provider=provider.id,
            provider_version=provider.version,
            cutpoint_set=cut.id if cut is not None else None,
            calibration_id=c.calibration_id,
            calibration_sha256=c.sha256,
            score_decimals=s.decimals,
            demo=c.demo,
            reasons=self.reasons(instrument),
        )

    def reasons(self, instrument: Instrument) -> dict[str, str]:
        """The words for each reason code this scorer uses."""
        c = self.compiled
        m = c.policy.min_answered
        return {
            TOO_FEW_ANSWERED: (
                f"fewer than {m} of {instrument.n_items} items answered with one of the "
                f"categories; calibration {c.calibration_id!r} needs at least {m}"
            ),
            EXTREME_RESPONSE: (
                "every answered item is in the same extreme category, and calibration "
                f"{c.calibration_id!r} does not score such response sets"
            ),
        }

    def result(self, assessment: Assessment, provider: ScoringProvider) -> ScoreResult:
        """One assessment: row 0 of :meth:`score` on a batch of one.

        Every field but the id is a function of which items were answered and the raw score
        (Rasch sufficiency, and a policy that reads nothing else), so the row is remembered by
        that key and later assessments with the same key skip NumPy's per-call cost. Like the
        table it comes from, what is remembered lives in this object's memory only.
        """
        instrument = assessment.instrument
        self.check_instrument(instrument)
        mask = raw = 0
        index = self._index
        for item, response in assessment.responses.items():
            code = int(response)
            if code > 0:
                mask |= 1 << index[item]
                raw += code
        key = (mask, raw, provider.id, provider.version)
        fields = self._results.get(key)
        if fields is None:
            row = self.score(instrument, assessment.codes()[np.newaxis, :], provider).result(0, "")
            fields = {a.name: getattr(row, a.name) for a in _RESULT_FIELDS}
            if len(self._results) < _MAX_REMEMBERED:
                self._results[key] = fields
        return ScoreResult(assessment.id, **fields)

    def __repr__(self) -> str:
        return f"CalibratedScorer({self.compiled!r})"

    def __reduce__(self) -> NoReturn:
        raise LicensedContentError("a scorer holds licensed calibration content")


def _licence_of(compiled: CompiledCalibration) -> Licence | None:
    if compiled.licence is None:
        return None
    return Licence(compiled.licence.licensee, (compiled.instrument,), compiled.licence.valid_until)


class RaschProvider(BaseProvider):
    """The generic engine with one calibration (or none yet: then it can only be bound).

    :param calibration: a :class:`~pamlib.scoring.calibration.Calibration` or a path to a
        calibration file.
    :param licence: the licence a vendor's plugin holds for this calibration; by default the
        calibration's own ``licence`` block, if any.
    :param id: the provider id results record (a vendor registers its own).
    :param host: where cut-point sets and instruments are looked up (default: process-wide).
    """

    version = __version__

    def __init__(
        self,
        calibration: Calibration | str | os.PathLike[str] | None = None,
        *,
        licence: Licence | None = None,
        id: str = "rasch",  # the provider protocol's attribute name
        host: PluginHost | None = None,
    ) -> None:
        self.id = id
        self._host = host
        self._scorer: CalibratedScorer | None = None
        self._calibration: Calibration | None = None
        self._given_licence = licence
        self.demo = False
        self.licence: Licence | None = None
        self._instruments: frozenset[str] = frozenset()
        if calibration is None:
            if licence is not None:
                raise ScoringError("a licence needs a calibration to go with it")
            return
        cal = (
            calibration
            if isinstance(calibration, Calibration)
            else load_calibration(calibration, host=host)
        )
        compiled = cal.compile()
        self._calibration = cal
        self.demo = cal.demo
        self.licence = licence if licence is not None else _licence_of(compiled)
        if cal.demo and self.licence is not None:
            raise ScoringError("a demonstration calibration cannot be used under a licence")
        cutpoints = None
        if cal.cutpoints is not None:
            cutpoints = self._get_host().cutpoint_sets().get(cal.cutpoints)
        extra = 0
        if cal.demo:
            extra |= FLAG_BITS[Flag.DEMO]
        elif self.licence is None:
            extra |= FLAG_BITS[Flag.UNLICENSED]
        self._scorer = CalibratedScorer(compiled, cutpoints, extra)
        self._instruments = frozenset((cal.instrument,))

    def _get_host(self) -> PluginHost:
        if self._host is None:
            from pamlib.plugins import get_host

            return get_host()
        return self._host

    @property
    def calibration_id(self) -> str | None:
        return None if self._scorer is None else self._scorer.compiled.calibration_id

    @property
    def calibration_sha256(self) -> str | None:
        return None if self._scorer is None else self._scorer.compiled.sha256

    @property
    def bound(self) -> bool:
        """Whether this provider has a calibration to score with."""
        return self._scorer is not None

    def instruments(self) -> Collection[str]:
        return self._instruments

    def with_calibration(
        self,
        calibration: Calibration | str | os.PathLike[str],
        *,
        host: PluginHost | None = None,
    ) -> RaschProvider:
        """A provider like this one, scoring with ``calibration`` (a path or a Calibration)."""
        return RaschProvider(calibration, id=self.id, host=host or self._host)

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        scorer = self._scorer
        if scorer is None:
            raise ScoringError(
                f"the {self.id!r} provider scores with a calibration file: pass calibration= "
                "(--calibration on the command line)"
            )
        if self.licence is not None:
            self.licence.check(instrument.id)
        return scorer.score(instrument, codes, self)

    def score(self, assessment: Assessment) -> ScoreResult:
        scorer = self._scorer
        if scorer is None:
            return super().score(assessment)  # raises the same error as score_batch
        if self.licence is not None:
            self.licence.check(assessment.instrument.id)
        return scorer.result(assessment, self)

    def __repr__(self) -> str:
        cal = f" calibration={self.calibration_id!r}" if self._scorer is not None else ""
        return f"<RaschProvider id={self.id!r} version={self.version!r}{cal}>"

    def __reduce__(self) -> tuple[Callable[..., RaschProvider], tuple[object, ...]]:
        """Pickle as (calibration, licence, id, host); never the scorer or its table. The
        calibration pickles by reference to its file (a demonstration one by content; one
        built in memory refuses, with :class:`~pamlib.errors.LicensedContentError`)."""
        if type(self) is not RaschProvider:
            # A vendor's subclass has its own constructor and state, which this cannot know.
            raise LicensedContentError(
                f"a {type(self).__name__} cannot be pickled: pamlib pickles its own "
                "RaschProvider; a subclass defines __reduce__ to pickle itself (by the path of "
                "its calibration file, never its content)"
            )
        cal = self._calibration
        ref = None if cal is None else _calibration_reference(cal, self._host)
        return (_rebuild_rasch, (ref, self._given_licence, self.id, self._host))


def _rebuild_rasch(
    ref: tuple[Callable[..., Calibration], tuple[object, ...]] | None,
    licence: Licence | None,
    id: str,
    host: PluginHost | None,
) -> RaschProvider:
    calibration = None if ref is None else ref[0](*ref[1])
    return RaschProvider(calibration, licence=licence, id=id, host=host)


@hookimpl
def pamlib_register_scoring_providers(
    register: Callable[[ScoringProvider], None], host: PluginHost
) -> None:
    register(RaschProvider(host=host))
