"""The contract between pamlib and a scoring provider (a vendor's licensed plugin or a built-in).

A provider scores one instrument's responses. It declares who it is, whether its numbers are a
demonstration, and the licence it holds; pamlib checks the licence before every call. Providers
implement :meth:`ScoringProvider.score_batch` over column codes (see :mod:`pamlib.responses`);
:class:`BaseProvider` derives the one-assessment API from it so both paths give the same numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Protocol, runtime_checkable

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.assessment import Assessment
from pamlib.errors import LicenceError
from pamlib.instruments import Instrument
from pamlib.levels import ActivationLevel
from pamlib.results import Flag, ScoreResult, ScoreStatus

__all__ = [
    "BATCH_ARRAYS",
    "FLAG_BITS",
    "BaseProvider",
    "BatchScores",
    "Licence",
    "ScoringProvider",
    "flags_from_bits",
]

#: Bit of each flag in :attr:`BatchScores.flags`.
FLAG_BITS: dict[Flag, int] = {flag: 1 << i for i, flag in enumerate(Flag)}


def flags_from_bits(bits: int) -> frozenset[Flag]:
    return frozenset(flag for flag, bit in FLAG_BITS.items() if bits & bit)


def _ids(values: Iterable[str]) -> frozenset[str]:
    # A typed converter: with a bare ``frozenset`` mypy cannot type the constructor's argument.
    return frozenset(values)


@attrs.frozen
class Licence:
    """What a provider is licensed to score, for whom, and until when (inclusive).

    ``licensee`` names an organisation, never a person.
    """

    licensee: str
    instruments: frozenset[str] = attrs.field(converter=_ids)
    valid_until: dt.date | None = None

    def check(self, instrument_id: str, on: dt.date | None = None) -> None:
        """Raise :class:`LicenceError` unless ``instrument_id`` may be scored on ``on`` (today)."""
        today = on or dt.datetime.now(dt.UTC).date()
        if instrument_id not in self.instruments:
            raise LicenceError(
                f"the licence held by {self.licensee!r} does not cover {instrument_id}"
            )
        if self.valid_until is not None and today > self.valid_until:
            raise LicenceError(
                f"the licence held by {self.licensee!r} expired on {self.valid_until.isoformat()}"
            )


def _bools(values: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    return np.asarray(values, dtype=np.bool_)


def _int8(values: npt.ArrayLike) -> npt.NDArray[np.int8]:
    return np.asarray(values, dtype=np.int8)


def _int16(values: npt.ArrayLike) -> npt.NDArray[np.int16]:
    return np.asarray(values, dtype=np.int16)


def _int32(values: npt.ArrayLike) -> npt.NDArray[np.int32]:
    return np.asarray(values, dtype=np.int32)


def _uint8(values: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    return np.asarray(values, dtype=np.uint8)


def _floats(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64)


def _strs(values: npt.ArrayLike) -> npt.NDArray[np.str_]:
    return np.asarray(values, dtype=np.str_)


#: The per-row arrays of a :class:`BatchScores`, in field order (the rest is per batch).
BATCH_ARRAYS: tuple[str, ...] = (
    "scored",
    "n_answered",
    "raw_score",
    "mean_response",
    "theta",
    "theta_se",
    "score",
    "score_se",
    "level",
    "flags",
    "reason_code",
)


@attrs.frozen
class BatchScores:
    """Scores for ``n`` assessments of one instrument, as columns.

    Missing numbers are NaN, a missing level is ``0``; ``flags`` holds :data:`FLAG_BITS`;
    ``reason_code`` is ``""`` where scored. Provenance is the same for every row of a batch.
    """

    scored: npt.NDArray[np.bool_] = attrs.field(converter=_bools, eq=False)
    n_answered: npt.NDArray[np.int16] = attrs.field(converter=_int16, eq=False)
    raw_score: npt.NDArray[np.int32] = attrs.field(converter=_int32, eq=False)
    mean_response: npt.NDArray[np.float64] = attrs.field(converter=_floats, eq=False)
    theta: npt.NDArray[np.float64] = attrs.field(converter=_floats, eq=False)
    theta_se: npt.NDArray[np.float64] = attrs.field(converter=_floats, eq=False)
    score: npt.NDArray[np.float64] = attrs.field(converter=_floats, eq=False)
    score_se: npt.NDArray[np.float64] = attrs.field(converter=_floats, eq=False)
    level: npt.NDArray[np.int8] = attrs.field(converter=_int8, eq=False)
    flags: npt.NDArray[np.uint8] = attrs.field(converter=_uint8, eq=False)
    reason_code: npt.NDArray[np.str_] = attrs.field(converter=_strs, eq=False)
    provider: str = ""
    provider_version: str = ""
    cutpoint_set: str | None = None
    calibration_id: str | None = None
    calibration_sha256: str | None = None
    demo: bool = False
    #: How many decimals ``score`` was rounded to, where the provider knows (a calibration's
    #: scale); writers then write exactly that many. ``None``: the cut-point set's precision.
    score_decimals: int | None = None
    #: Human explanations for each reason code used in ``reason_code``.
    reasons: dict[str, str] = attrs.field(factory=dict)

    def __len__(self) -> int:
        return int(self.scored.shape[0])

    def result(self, i: int, assessment_id: str) -> ScoreResult:
        """Row ``i`` as a :class:`ScoreResult`."""
        code = str(self.reason_code[i])
        level = int(self.level[i])
        return ScoreResult(
            assessment_id=assessment_id,
            status=ScoreStatus.SCORED if self.scored[i] else ScoreStatus.NOT_SCORED,
            provider=self.provider,
            provider_version=self.provider_version,
            n_answered=int(self.n_answered[i]),
            raw_score=int(self.raw_score[i]),
            mean_response=float(self.mean_response[i]),
            theta=float(self.theta[i]),
            theta_se=float(self.theta_se[i]),
            score=float(self.score[i]),
            score_se=float(self.score_se[i]),
            level=ActivationLevel(level) if level else None,
            cutpoint_set=self.cutpoint_set if level else None,
            calibration_id=self.calibration_id,
            calibration_sha256=self.calibration_sha256,
            demo=self.demo,
            flags=flags_from_bits(int(self.flags[i])),
            reason=self.reasons.get(code, code) if code else None,
            reason_code=code or None,
        )


@runtime_checkable
class ScoringProvider(Protocol):
    """What a scoring plugin registers through ``pamlib_register_scoring_providers``.

    ``licence`` is ``None`` only for providers whose output is not the PAM (raw totals, demo
    calibrations); such providers must set ``demo`` or flag results ``raw-only``.
    """

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def demo(self) -> bool: ...

    @property
    def licence(self) -> Licence | None: ...

    def instruments(self) -> Collection[str]:
        """Ids of the instruments this provider can score."""
        ...

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        """Score ``codes`` (shape ``(n, instrument.n_items)``, read-only: the caller's answers)
        and return one row per input."""
        ...

    def score(self, assessment: Assessment) -> ScoreResult:
        """Score one assessment; must agree exactly with :meth:`score_batch`."""
        ...


class BaseProvider:
    """Convenience base: implement ``score_batch`` and get ``score`` for free.

    Subclasses set ``id``, ``version``, ``demo`` and ``licence`` as class or instance attributes.
    """

    id: str
    version: str
    demo: bool = False
    licence: Licence | None = None

    def instruments(self) -> Collection[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        raise NotImplementedError  # pragma: no cover - abstract

    def score(self, assessment: Assessment) -> ScoreResult:
        batch = self.score_batch(assessment.instrument, assessment.codes()[np.newaxis, :])
        return batch.result(0, assessment.id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id!r} version={self.version!r}>"
