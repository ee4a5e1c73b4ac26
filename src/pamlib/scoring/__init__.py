"""Scoring: providers, calibrations and the Rasch person-measure engine.

Three calls cover most uses: :func:`select_provider` (which provider scores this instrument),
:func:`score` (one assessment, as objects) and :func:`score_many` (many, as NumPy columns). Both
paths give identical numbers. Importing this package is cheap; NumPy and the engine load on first
use.

>>> import pamlib.scoring as scoring
>>> from pamlib.instruments import BUILTIN_INSTRUMENTS
>>> batch = scoring.score_many(BUILTIN_INSTRUMENTS[0], [[4] * 13, [3] * 13], provider="demo")
>>> batch.score.tolist(), batch.level.tolist(), batch.demo
([100.0, 60.7], [4, 3], True)
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING

from pamlib._lazy import lazy_exports

if TYPE_CHECKING:
    import numpy.typing as npt

    from pamlib.assessment import Assessment
    from pamlib.instruments import Instrument
    from pamlib.plugins import PluginHost
    from pamlib.results import ScoreResult
    from pamlib.scoring._selection import NOT_PAM_FLAGS, CheckedProvider
    from pamlib.scoring.calibration import (
        Calibration,
        CalibrationLicence,
        CalibrationModel,
        CompiledCalibration,
        ExtremeResponse,
        Scale,
        ValidityPolicy,
        canonical_json,
        load_calibration,
        parse_calibration,
    )
    from pamlib.scoring.demo import DemoProvider, demo_calibration
    from pamlib.scoring.provider import BaseProvider, BatchScores, Licence, ScoringProvider
    from pamlib.scoring.rasch import RaschProvider

__all__ = [
    "NOT_PAM_FLAGS",
    "BaseProvider",
    "BatchScores",
    "Calibration",
    "CalibrationLicence",
    "CalibrationModel",
    "CheckedProvider",
    "CompiledCalibration",
    "DemoProvider",
    "ExtremeResponse",
    "Licence",
    "RaschProvider",
    "Scale",
    "ScoringProvider",
    "ValidityPolicy",
    "canonical_json",
    "demo_calibration",
    "load_calibration",
    "parse_calibration",
    "score",
    "score_many",
    "select_provider",
]

_LAZY: dict[str, str] = {
    "NOT_PAM_FLAGS": "pamlib.scoring._selection",
    "CheckedProvider": "pamlib.scoring._selection",
    "BaseProvider": "pamlib.scoring.provider",
    "BatchScores": "pamlib.scoring.provider",
    "Licence": "pamlib.scoring.provider",
    "ScoringProvider": "pamlib.scoring.provider",
    "Calibration": "pamlib.scoring.calibration",
    "CalibrationLicence": "pamlib.scoring.calibration",
    "CalibrationModel": "pamlib.scoring.calibration",
    "CompiledCalibration": "pamlib.scoring.calibration",
    "ExtremeResponse": "pamlib.scoring.calibration",
    "Scale": "pamlib.scoring.calibration",
    "ValidityPolicy": "pamlib.scoring.calibration",
    "canonical_json": "pamlib.scoring.calibration",
    "load_calibration": "pamlib.scoring.calibration",
    "parse_calibration": "pamlib.scoring.calibration",
    "DemoProvider": "pamlib.scoring.demo",
    "demo_calibration": "pamlib.scoring.demo",
    "RaschProvider": "pamlib.scoring.rasch",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY, __all__)


_selection_module: ModuleType | None = None


def _select_module() -> ModuleType:
    """:mod:`pamlib.scoring._selection`, imported on first use (it brings in NumPy) and then
    kept: an ``import`` statement on every one-assessment call costs microseconds."""
    global _selection_module  # noqa: PLW0603 - a lazily imported module, set once
    if _selection_module is None:
        from pamlib.scoring import _selection as selection

        _selection_module = selection
    return _selection_module


def select_provider(
    name: str | ScoringProvider | None,
    instrument: Instrument,
    *,
    calibration: Calibration | str | os.PathLike[str] | None = None,
    host: PluginHost | None = None,
) -> ScoringProvider:
    """The provider to score ``instrument`` with: ``name`` if given, else ``rasch`` bound to
    ``calibration`` if given, else the single installed provider licensed for ``instrument``.

    The demo provider is never chosen implicitly. The provider returned checks its licence on
    every call. Raises :class:`~pamlib.errors.ScoringError` when none or several fit and
    :class:`~pamlib.errors.LicenceError` for an expired licence or one that does not cover the
    instrument.
    """
    chosen: ScoringProvider = _select_module().select_provider(
        name, instrument, calibration=calibration, host=host
    )
    return chosen


def score(
    assessment: Assessment,
    *,
    provider: str | ScoringProvider | None = None,
    calibration: Calibration | str | os.PathLike[str] | None = None,
    host: PluginHost | None = None,
) -> ScoreResult:
    """Score one assessment and tell plugins (``pamlib_assessment_scored``).

    ``provider`` and ``calibration`` choose as :func:`select_provider` does; pass a provider
    object (from :func:`select_provider`) to score many assessments without choosing again. The
    provider's result is checked (``check_result``); a result
    breaking the contract, or anything the provider raises, is a
    :class:`~pamlib.errors.ScoringError` naming it. An observer's failure is reported against its
    plugin and does not change the result.

    >>> import datetime as dt
    >>> from pamlib import Assessment, Patient
    >>> from pamlib.instruments import BUILTIN_INSTRUMENTS
    >>> pam13 = BUILTIN_INSTRUMENTS[0]
    >>> a = Assessment("a1", Patient("p1"), pam13, dt.date(2025, 3, 1),
    ...                {item: 3 for item in pam13.items})
    >>> result = score(a, provider="demo")
    >>> result.score, result.level, result.demo, sorted(map(str, result.flags))
    (60.7, <ActivationLevel.LEVEL_3: 3>, True, ['demo'])
    """
    from pamlib.assessment import Assessment

    given: object = assessment  # as given: any type may come from a caller
    if not isinstance(given, Assessment):
        from pamlib.errors import ConfigurationError

        raise ConfigurationError(f"score takes an Assessment, not a {type(given).__name__}")
    impl = _select_module()
    h: PluginHost = host or impl.get_host()
    chosen: ScoringProvider = impl.select_provider(
        provider, assessment.instrument, calibration=calibration, host=h
    )
    result = chosen.score(assessment)
    h.assessment_scored(assessment, result)
    return result


def score_many(
    instrument: Instrument | str,
    codes: npt.ArrayLike,
    *,
    provider: str | ScoringProvider | None = None,
    calibration: Calibration | str | os.PathLike[str] | None = None,
    host: PluginHost | None = None,
) -> BatchScores:
    """Score rows of column codes (shape ``(n, n_items)``: 1..4, 0 unanswered, -1 not
    applicable) and tell plugins (``pamlib_batch_scored``). Row *i* of the result is exactly what
    :func:`score` gives for the same answers.

    The provider's results are checked (``check_scores``) as
    :func:`score` does, and the arrays returned are read-only: what was checked is what callers
    and plugins see.
    """
    impl = _select_module()
    h: PluginHost = host or impl.get_host()
    inst = h.instruments().get(instrument) if isinstance(instrument, str) else instrument
    checked = impl.check_codes(inst, codes)
    chosen: ScoringProvider = impl.select_provider(provider, inst, calibration=calibration, host=h)
    scores = chosen.score_batch(inst, checked)
    h.batch_scored(inst, scores)
    return scores
