"""Response codes as arrays: the one check every scoring entry point makes of them.

``score_many`` (codes for an instrument), the engine's batch scoring and its one-vector scoring
all accept the same codes — ``-1`` not applicable, ``0`` unanswered, ``1`` up to each item's top
category — and refuse anything else with the same located problems (``codes[row, column]``).
"""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pamlib.errors import Problem, ValidationError

__all__ = ["checked_codes"]

_NOT_APPLICABLE = -1
_MAX_REPORTED = 20  # problems listed in one ValidationError


def checked_codes(
    codes: ArrayLike, top: NDArray[np.int64], *, name: str = "codes", one: bool = False
) -> NDArray[Any]:
    """``codes`` as the narrowest integer array that holds them (int8, or int16 for items of
    more than 126 categories), after checking them; ``top`` is each item's highest code.

    The shape must be ``(n, len(top))``, or ``(len(top),)`` with ``one``; problems are located
    as ``name`` (shape, dtype) or ``name[row, column]`` (a code out of range; row 0 with
    ``one``). Narrowing is checked, so no code can wrap into range.

    >>> checked_codes([[1, 4, 0, -1]], np.full(4, 4)).dtype
    dtype('int8')
    >>> checked_codes([[1, 5, 0, -1]], np.full(4, 4))
    Traceback (most recent call last):
    pamlib.errors.ValidationError: response codes out of range
      - code must be -1 (not applicable), 0 (unanswered) or 1..4 @ codes[0, 1]
    """
    arr = np.asarray(codes)
    n_items = int(top.shape[0])
    if arr.ndim != (1 if one else 2) or arr.shape[-1] != n_items:
        what = (
            "a 1-D array with one code per item" if one else "a 2-D array with one column per item"
        )
        expected = f"({n_items},)" if one else f"(n, {n_items})"
        raise ValidationError(
            f"response codes must be {what}",
            [Problem(name, "shape", f"expected {expected}, got {arr.shape}")],
        )
    narrow = np.int8 if int(top.max()) <= np.iinfo(np.int8).max else np.int16
    if arr.size == 0:
        return arr.astype(narrow)
    if arr.dtype.kind not in "iu":
        raise ValidationError(
            "response codes must be integers", [Problem(name, "dtype", f"got dtype {arr.dtype}")]
        )
    out = arr if arr.dtype == narrow else arr.astype(narrow)
    if out is not arr and not np.array_equal(out, arr):
        _out_of_range(arr, top, name)
    if int(out.min()) < _NOT_APPLICABLE:
        _out_of_range(arr, top, name)
    highest = int(out.max())
    if highest > int(top.min()) and (
        highest > int(top.max()) or bool(np.any(out > top.astype(narrow)))
    ):
        _out_of_range(arr, top, name)
    return out


def _out_of_range(arr: NDArray[Any], top: NDArray[np.int64], name: str) -> NoReturn:
    rows = arr.reshape(-1, top.shape[0])
    bad = np.argwhere((rows < _NOT_APPLICABLE) | (rows > top[None, :]))
    more = f" ({bad.shape[0]} cells in all)" if bad.shape[0] > _MAX_REPORTED else ""
    raise ValidationError(
        f"response codes out of range{more}",
        [
            Problem(
                f"{name}[{i}, {j}]",
                "code",
                f"code must be -1 (not applicable), 0 (unanswered) or 1..{int(top[j])}",
            )
            for i, j in bad[:_MAX_REPORTED].tolist()
        ],
    )
