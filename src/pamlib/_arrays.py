"""NumPy helpers every layer may use."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from numpy.typing import NDArray


def sorted_unique(values: NDArray[Any]) -> NDArray[Any]:
    """``np.unique(values)`` for an array of numbers, by sorting.

    NumPy 2.4 finds the distinct values of such an array by hashing, which is up to a hundred
    times slower for the codes a report makes (seconds for a million), and its first call
    imports ``numpy.ma`` (milliseconds at every start of the command line)."""
    ordered = np.sort(values.reshape(-1))
    keep = np.ones(len(ordered), dtype=np.bool_)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def is_masked(values: object) -> bool:
    """Whether ``values`` is a NumPy masked array with a value under its mask.

    Without importing ``numpy.ma`` (milliseconds at every start of the command line): a masked
    array can only exist once something has imported it."""
    ma = sys.modules.get("numpy.ma")
    return ma is not None and isinstance(values, ma.MaskedArray) and bool(ma.is_masked(values))
