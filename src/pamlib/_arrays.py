"""NumPy helpers every layer may use."""

from __future__ import annotations

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
