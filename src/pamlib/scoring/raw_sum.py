"""The ``raw-sum`` provider: raw totals anyone may compute. **Not a PAM score.**

It reports the raw total of answered items (13–52 for a complete PAM-13), their mean and how many
were answered. It gives no 0–100 score and no level — those need the licensed calibration — and
flags every result ``raw-only`` so no output can be mistaken for the PAM.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np
import numpy.typing as npt

from pamlib._version import __version__
from pamlib.hookspecs import hookimpl
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.results import Flag
from pamlib.scoring.provider import FLAG_BITS, BaseProvider, BatchScores, ScoringProvider

__all__ = ["RawSumProvider"]

NOTHING_ANSWERED = "nothing-answered"


class RawSumProvider(BaseProvider):
    """Raw total, mean of answered items, number answered — for every instrument."""

    id = "raw-sum"
    version = __version__
    demo = False
    licence = None

    def __init__(self, instruments: Collection[str] | None = None) -> None:
        self._instruments = (
            frozenset(i.id for i in BUILTIN_INSTRUMENTS)
            if instruments is None
            else frozenset(instruments)
        )

    def instruments(self) -> Collection[str]:
        return self._instruments

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        codes = np.asarray(codes, dtype=np.int8)
        answered = codes > 0
        n = answered.sum(axis=1, dtype=np.int16)
        raw = np.where(answered, codes, 0).sum(axis=1, dtype=np.int32)
        scored = n > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(scored, raw / np.maximum(n, 1), np.nan)
        flags = np.full(len(codes), FLAG_BITS[Flag.RAW_ONLY], dtype=np.uint8)
        flags |= np.where(n < instrument.n_items, FLAG_BITS[Flag.MISSING_ITEMS], 0).astype(np.uint8)
        lo = np.where(answered, codes, 1).max(axis=1) == 1
        hi = np.where(answered, codes, 4).min(axis=1) == 4
        extreme = scored & (lo | hi)
        flags |= np.where(extreme, FLAG_BITS[Flag.EXTREME_RESPONSE], 0).astype(np.uint8)
        nan = np.full(len(codes), np.nan)
        return BatchScores(
            scored=scored,
            n_answered=n,
            raw_score=raw,
            mean_response=mean,
            theta=nan,
            theta_se=nan,
            score=nan,
            score_se=nan,
            level=np.zeros(len(codes), dtype=np.int8),
            flags=flags,
            reason_code=np.where(scored, "", NOTHING_ANSWERED),
            provider=self.id,
            provider_version=self.version,
            reasons={NOTHING_ANSWERED: "no item was answered with one of the four categories"},
        )


@hookimpl
def pamlib_register_scoring_providers(register: Callable[[ScoringProvider], None]) -> None:
    register(RawSumProvider())
