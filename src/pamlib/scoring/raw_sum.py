"""The ``raw-sum`` provider: raw totals anyone may compute. **Not a PAM score.**

It reports the raw total of answered items (13–52 for a complete PAM-13), their mean and how many
were answered. It gives no 0–100 score and no level — those need the licensed calibration — and
flags every result ``raw-only`` so no output can be mistaken for the PAM.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

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
        summed = _summed(codes)
        if summed is not None:
            n, raw, lo, hi = summed
        else:
            answered = codes > 0
            n = answered.sum(axis=1, dtype=np.int16)
            raw = np.where(answered, codes, 0).sum(axis=1, dtype=np.int32)
            lo = np.where(answered, codes, 1).max(axis=1) == 1
            hi = np.where(answered, codes, 4).min(axis=1) == 4
        scored = n > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(scored, raw / np.maximum(n, 1), np.nan)
        flags = np.full(len(codes), FLAG_BITS[Flag.RAW_ONLY], dtype=np.uint8)
        flags |= np.where(n < instrument.n_items, FLAG_BITS[Flag.MISSING_ITEMS], 0).astype(np.uint8)
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


_Summed = tuple[npt.NDArray[np.int16], npt.NDArray[np.int32], npt.NDArray[Any], npt.NDArray[Any]]


def _summed(codes: npt.NDArray[np.int8]) -> _Summed | None:
    """How many items each row answered, their total, and whether every answer is 1 (``lo``)
    or every answer is 4 (``hi``), where the codes are the reader's own (``-1`` to ``4``, eight
    items or more): summed eight codes at a time from 64-bit words, as the scoring engine sums
    them, not by NumPy's reductions along rows of a dozen codes. ``None`` for other codes."""
    from pamlib.scoring._engine import summarise_words

    if codes.ndim != 2 or not 8 <= codes.shape[1] <= 64 or codes.shape[0] == 0:
        return None
    if int(codes.min()) < -1 or int(codes.max()) > 4:
        return None
    summary = summarise_words(np.ascontiguousarray(codes), int(codes.shape[1]))
    if summary is None:
        return None
    _, answered, above = summary  # above: the total less one an answered item
    n = answered.astype(np.int16)
    raw = (above + answered).astype(np.int32)
    # Answers of 1 to 4: all 1 exactly where the total is the count, all 4 where it is 4 times.
    return n, raw, above == 0, above == 3 * answered


@hookimpl
def pamlib_register_scoring_providers(register: Callable[[ScoringProvider], None]) -> None:
    register(RawSumProvider())
