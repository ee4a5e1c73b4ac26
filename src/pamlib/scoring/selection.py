"""Choosing a provider, and the licence and honesty checks around every scoring call.

:func:`select_provider` hands out providers wrapped in a :class:`CheckedProvider`, which checks
the provider's licence on *every* call (a service running past its licence's end stops scoring)
and refuses results from a provider without a licence unless each one says it is not the PAM
(``demo``, ``raw-only`` or ``unlicensed``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pamlib.errors import LicenceError, Problem, ScoringError, ValidationError
from pamlib.plugins import get_host
from pamlib.results import Flag, ScoreResult
from pamlib.scoring.provider import (
    FLAG_BITS,
    BaseProvider,
    BatchScores,
    Licence,
    ScoringProvider,
)

if TYPE_CHECKING:
    from pamlib.assessment import Assessment
    from pamlib.instruments import Instrument
    from pamlib.plugins import PluginHost
    from pamlib.scoring.calibration import Calibration

__all__ = ["NOT_PAM_FLAGS", "CheckedProvider", "check_codes", "select_provider"]

#: Flags saying a result is not a licensed PAM score; a provider without a licence must put one
#: of them on every result (or mark the whole batch ``demo``).
NOT_PAM_FLAGS: frozenset[Flag] = frozenset({Flag.DEMO, Flag.RAW_ONLY, Flag.UNLICENSED})
_NOT_PAM_BITS = np.uint8(sum(FLAG_BITS[f] for f in NOT_PAM_FLAGS))
_MAX_REPORTED = 20

#: The registered provider that ``calibration=`` selects when no provider is named.
CALIBRATION_PROVIDER = "rasch"


class CheckedProvider:
    """A provider as pamlib hands it out: licence checked and honesty verified on every call.

    Everything else is the wrapped provider's (:attr:`inner`).
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: ScoringProvider) -> None:
        self._inner = inner.inner if isinstance(inner, CheckedProvider) else inner

    @property
    def inner(self) -> ScoringProvider:
        return self._inner

    @property
    def id(self) -> str:
        return self._inner.id

    @property
    def version(self) -> str:
        return self._inner.version

    @property
    def demo(self) -> bool:
        return self._inner.demo

    @property
    def licence(self) -> Licence | None:
        return self._inner.licence

    def instruments(self) -> Collection[str]:
        return self._inner.instruments()

    def check(self, instrument: Instrument, on: dt.date | None = None) -> None:
        """Raise :class:`~pamlib.errors.LicenceError` unless ``instrument`` may be scored today."""
        licence = self._inner.licence
        if licence is not None:
            licence.check(instrument.id, on)

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        self.check(instrument)
        scores = self._inner.score_batch(instrument, codes)
        self._verify(scores.demo, bool(np.all(scores.flags & _NOT_PAM_BITS)))
        return scores

    def score(self, assessment: Assessment) -> ScoreResult:
        self.check(assessment.instrument)
        result = self._inner.score(assessment)
        self._verify(result.demo, not result.flags.isdisjoint(NOT_PAM_FLAGS))
        return result

    def _verify(self, demo: bool, marked: bool) -> None:
        """``marked``: every result carries one of :data:`NOT_PAM_FLAGS`."""
        inner = self._inner
        if inner.demo and not demo:
            raise ScoringError(
                f"provider {inner.id!r} is a demonstration provider but returned results not "
                "marked demo; refusing to pass them on"
            )
        if inner.licence is None and not demo and not marked:
            raise LicenceError(
                f"provider {inner.id!r} holds no licence, yet returned results not marked as "
                "not the PAM (demo, raw-only or unlicensed); refusing to pass them on"
            )

    def __repr__(self) -> str:
        return f"<checked {self._inner!r}>"


def _bind(
    provider: ScoringProvider,
    calibration: Calibration | str | os.PathLike[str],
    host: PluginHost,
) -> ScoringProvider:
    bind = getattr(provider, "with_calibration", None)
    if bind is None:
        raise ScoringError(f"provider {provider.id!r} does not score with a calibration file")
    bound: ScoringProvider = bind(calibration, host=host)
    return bound


_PROVIDER_MEMBERS = ("id", "version", "demo", "licence", "instruments", "score_batch", "score")


def _looks_like_provider(obj: object) -> bool:
    """The :class:`ScoringProvider` check without ``isinstance`` on a runtime protocol, which
    costs tens of microseconds per call — too much on the one-assessment path."""
    if isinstance(obj, BaseProvider):
        return True
    return all(hasattr(obj, name) for name in _PROVIDER_MEMBERS)


def _describe(providers: Collection[str]) -> str:
    return ", ".join(sorted(providers)) or "none"


def select_provider(
    name: str | ScoringProvider | None,
    instrument: Instrument,
    *,
    calibration: Calibration | str | os.PathLike[str] | None = None,
    host: PluginHost | None = None,
) -> ScoringProvider:
    """The provider to score ``instrument`` with, wrapped in a :class:`CheckedProvider`.

    ``name`` picks an installed provider by id (or passes a provider object through the same
    checks). With ``calibration`` and no name, the ``rasch`` provider is bound to it. With neither,
    the single installed provider holding a licence that covers ``instrument`` is chosen; the
    demo provider never is. Raises :class:`~pamlib.errors.ScoringError` when none or several fit
    and :class:`~pamlib.errors.LicenceError` when the licence is expired or does not cover it.
    """
    if host is None:
        host = get_host()
    installed = host.scoring_providers()
    if name is None and calibration is not None:
        name = CALIBRATION_PROVIDER
    provider: ScoringProvider
    if name is None:
        fits = [
            p
            for p in installed.values()
            if not p.demo
            and p.licence is not None
            and instrument.id in p.licence.instruments
            and instrument.id in p.instruments()
        ]
        if not fits:
            raise ScoringError(
                f"no licensed scoring provider for {instrument.id} is installed. Name one: "
                "'raw-sum' (raw totals, not the PAM), 'demo' (synthetic, not the PAM), or "
                "'rasch' with a calibration file; installed providers: "
                f"{_describe(installed)}"
            )
        if len(fits) > 1:
            raise ScoringError(
                f"several licensed providers can score {instrument.id}: "
                f"{_describe([p.id for p in fits])}; choose one by name"
            )
        provider = fits[0]
    elif isinstance(name, str):
        found = installed.get(name)
        if found is None:
            raise ScoringError(
                f"no scoring provider called {name!r} is installed; installed providers: "
                f"{_describe(installed)}"
            )
        provider = found
    else:
        provider = name
    if isinstance(provider, CheckedProvider):
        provider = provider.inner
    if not _looks_like_provider(provider):
        raise ScoringError(f"{type(provider).__name__} is not a scoring provider")
    if calibration is not None:
        provider = _bind(provider, calibration, host)
    covered = provider.instruments()
    if instrument.id not in covered:
        if getattr(provider, "with_calibration", None) is not None and not covered:
            raise ScoringError(
                f"the {provider.id!r} provider scores with a calibration file: pass "
                "calibration= (--calibration on the command line)"
            )
        raise ScoringError(
            f"provider {provider.id!r} does not score {instrument.id}; it scores: "
            f"{_describe(covered)}"
        )
    checked = CheckedProvider(provider)
    checked.check(instrument)
    return checked


def check_codes(instrument: Instrument, codes: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """``codes`` as an (n, n_items) int8 array of valid column codes, or a ValidationError
    naming each bad cell (``codes[row, column]``, the first 20)."""
    arr = np.asarray(codes)
    if arr.ndim != 2 or arr.shape[1] != instrument.n_items:
        raise ValidationError(
            "response codes have the wrong shape",
            [
                Problem(
                    "codes",
                    "shape",
                    f"expected (n, {instrument.n_items}) for {instrument.id}, got {arr.shape}",
                )
            ],
        )
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValidationError(
            "response codes must be integers",
            [Problem("codes", "dtype", f"got {arr.dtype}")],
        )
    top = instrument.n_categories
    if arr.size and (int(arr.min()) < -1 or int(arr.max()) > top):
        bad = np.argwhere((arr < -1) | (arr > top))
        more = f" ({bad.shape[0]} cells in all)" if bad.shape[0] > _MAX_REPORTED else ""
        raise ValidationError(
            f"response codes out of range{more}",
            [
                Problem(
                    f"codes[{i}, {j}]",
                    "code",
                    f"expected -1 (not applicable), 0 (unanswered) or 1..{top}",
                )
                for i, j in bad[:_MAX_REPORTED]
            ],
        )
    return arr.astype(np.int8, copy=False)
