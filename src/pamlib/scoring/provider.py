"""The contract between pamlib and a scoring provider (a vendor's licensed plugin or a built-in).

A provider scores one instrument's responses. It declares who it is, whether its numbers are a
demonstration, and the licence it holds; pamlib checks the licence before every call. Providers
implement :meth:`ScoringProvider.score_batch` over column codes (see :mod:`pamlib.responses`);
:class:`BaseProvider` derives the one-assessment API from it so both paths give the same numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np
import numpy.typing as npt

from pamlib._arrays import is_masked
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
    # One id given as text would be read as its letters (a licence covering "P", "A", "M" …).
    if isinstance(values, str):
        raise TypeError("Licence.instruments is a collection of instrument ids, not one id")
    ids = frozenset(values)
    if not all(isinstance(i, str) and i for i in ids):
        raise TypeError("Licence.instruments holds instrument ids (text)")
    return ids


def _licensee(_: object, __: object, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise TypeError("Licence.licensee names the organisation holding the licence (text)")


def _last_day(_: object, __: object, value: Any) -> None:
    # A datetime is a date too, but comparing one with today's date raises at scoring time;
    # text would too. Both are refused where the vendor builds the licence.
    if value is not None and (not isinstance(value, dt.date) or isinstance(value, dt.datetime)):
        raise TypeError("Licence.valid_until is a date (the last day, inclusive) or None")


@attrs.frozen
class Licence:
    """What a provider is licensed to score, for whom, and until when (inclusive).

    ``licensee`` names an organisation, never a person. ``valid_until`` is the last day on
    which scoring is allowed, on the calendar of the machine that scores (its local date: the
    day its users see), so a licence ending on 31 March scores until local midnight that day
    wherever the site is; a server kept on UTC ends it at midnight UTC.
    """

    licensee: str = attrs.field(validator=_licensee)
    instruments: frozenset[str] = attrs.field(converter=_ids)
    valid_until: dt.date | None = attrs.field(default=None, validator=_last_day)

    def check(self, instrument_id: str, on: dt.date | None = None) -> None:
        """Raise :class:`LicenceError` unless ``instrument_id`` may be scored on ``on`` (default:
        today, the local date; a datetime counts as its date)."""
        today = on or dt.date.today()  # noqa: DTZ011 - the local calendar is the one meant
        if isinstance(today, dt.datetime):
            today = today.date()
        if instrument_id not in self.instruments:
            raise LicenceError(
                f"the licence held by {self.licensee!r} does not cover {instrument_id}"
            )
        if self.valid_until is not None and today > self.valid_until:
            raise LicenceError(
                f"the licence held by {self.licensee!r} expired on {self.valid_until.isoformat()}"
            )


class BatchColumnError(ValueError):
    """A column given to :class:`BatchScores` that does not convert to its type exactly: a
    level with a fraction, a count past its type's range, text for a number, masked values.
    Raised inside a provider's ``score_batch``, pamlib reports it as the provider's invalid
    result, naming the field (never a value)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"BatchScores.{field}: {reason}")


_KINDS = {"b": "boolean", "i": "integer", "u": "integer", "f": "float", "c": "complex"}


def _exact(values: npt.ArrayLike, dtype: type[np.generic], field: str, kinds: str) -> Any:
    """``values`` as a ``dtype`` array, converted only where nothing is lost: NumPy's own
    conversion truncates a level of 2.7 to 2, wraps a count of 65 549 to 13 and reads the data
    under a masked array's mask; each of those would be checked and written as if the provider
    had meant it. ``kinds`` are the dtype kinds accepted (checked value by value where the cast
    can lose); anything else (text, objects, complex numbers) is refused. Vectorised: an
    array of the right type is returned as it is, at no cost."""
    if is_masked(values):
        raise BatchColumnError(field, "masked values (a missing number is NaN, a missing level 0)")
    source = np.asarray(values)
    if source.dtype == dtype:
        return source
    kind = source.dtype.kind
    if kind not in kinds:
        what = _KINDS.get(kind, "text" if kind in "US" else "object")
        raise BatchColumnError(field, f"{what} values where {np.dtype(dtype).name} is expected")
    if np.can_cast(source.dtype, dtype, "safe"):
        return source.astype(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        out = source.astype(dtype)
        if dtype is np.bool_:
            exact = bool(np.all((source == 0) | (source == 1)))
        else:
            exact = bool(np.all(out == source))
    if not exact:
        raise BatchColumnError(field, f"values that {np.dtype(dtype).name} cannot hold exactly")
    return out


def _scored(values: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    out: npt.NDArray[np.bool_] = _exact(values, np.bool_, "scored", "biu")
    return out


def _n_answered(values: npt.ArrayLike) -> npt.NDArray[np.int16]:
    out: npt.NDArray[np.int16] = _exact(values, np.int16, "n_answered", "iu")
    return out


def _raw_score(values: npt.ArrayLike) -> npt.NDArray[np.int32]:
    out: npt.NDArray[np.int32] = _exact(values, np.int32, "raw_score", "iu")
    return out


def _level(values: npt.ArrayLike) -> npt.NDArray[np.int8]:
    out: npt.NDArray[np.int8] = _exact(values, np.int8, "level", "iu")
    return out


def _flags(values: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    out: npt.NDArray[np.uint8] = _exact(values, np.uint8, "flags", "iu")
    return out


def _mean_response(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = _exact(values, np.float64, "mean_response", "iuf")
    return out


def _theta(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = _exact(values, np.float64, "theta", "iuf")
    return out


def _theta_se(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = _exact(values, np.float64, "theta_se", "iuf")
    return out


def _score(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = _exact(values, np.float64, "score", "iuf")
    return out


def _score_se(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = _exact(values, np.float64, "score_se", "iuf")
    return out


def _reason_codes(values: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Text; an object column (pyarrow's strings) is text only where it holds no ``None``,
    which NumPy would write as the reason ``"None"``."""
    if is_masked(values):
        raise BatchColumnError("reason_code", "masked values (no reason is the empty text)")
    source = np.asarray(values)
    if source.dtype.kind == "U":
        return source
    if source.dtype.kind != "O" or bool(np.any(np.equal(source, np.array([None], dtype=object)))):
        raise BatchColumnError("reason_code", "not text (no reason is the empty text)")
    out: npt.NDArray[np.str_] = source.astype(np.str_)
    return out


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

    scored: npt.NDArray[np.bool_] = attrs.field(converter=_scored, eq=False)
    n_answered: npt.NDArray[np.int16] = attrs.field(converter=_n_answered, eq=False)
    raw_score: npt.NDArray[np.int32] = attrs.field(converter=_raw_score, eq=False)
    mean_response: npt.NDArray[np.float64] = attrs.field(converter=_mean_response, eq=False)
    theta: npt.NDArray[np.float64] = attrs.field(converter=_theta, eq=False)
    theta_se: npt.NDArray[np.float64] = attrs.field(converter=_theta_se, eq=False)
    score: npt.NDArray[np.float64] = attrs.field(converter=_score, eq=False)
    score_se: npt.NDArray[np.float64] = attrs.field(converter=_score_se, eq=False)
    level: npt.NDArray[np.int8] = attrs.field(converter=_level, eq=False)
    flags: npt.NDArray[np.uint8] = attrs.field(converter=_flags, eq=False)
    reason_code: npt.NDArray[np.str_] = attrs.field(converter=_reason_codes, eq=False)
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
