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

_NOT_APPLICABLE = -1
_MAX_REPORTED = 20  # problems listed in one ValidationError
_SMALL = 64  # up to this many codes are checked with a set lookup


class CodeCheck:
    """The check of codes for items whose highest codes are ``top``, made ready once (the
    engine keeps one per table, so checking one vector costs a few microseconds)."""

    __slots__ = ("_codes", "_high", "_narrow", "_narrow_top", "_ragged", "_top")

    def __init__(self, top: ArrayLike) -> None:
        self._top: NDArray[np.int64] = np.asarray(top, dtype=np.int64).reshape(-1)
        self._high = int(self._top.max())
        self._ragged = int(self._top.min()) != self._high
        #: Every code some item allows, for the set lookup on a few codes.
        self._codes = frozenset(range(_NOT_APPLICABLE, self._high + 1))
        self._narrow = np.int8 if self._high <= np.iinfo(np.int8).max else np.int16
        self._narrow_top: NDArray[Any] = self._top.astype(self._narrow)

    def __call__(self, codes: ArrayLike, *, name: str = "codes", one: bool = False) -> NDArray[Any]:
        """``codes`` as the narrowest integer array that holds them (int8, or int16 for items
        of more than 126 categories), after checking them.

        The shape must be ``(n, len(top))``, or ``(len(top),)`` with ``one``; problems are
        located as ``name`` (shape, dtype) or ``name[row, column]`` (a code out of range; row 0
        with ``one``). Codes are checked before they are narrowed, so none can wrap into range.

        >>> CodeCheck([4, 4, 4, 4])([[1, 4, 0, -1]]).dtype
        dtype('int8')
        >>> CodeCheck([4, 4, 4, 4])([[1, 5, 0, -1]])
        Traceback (most recent call last):
        pamlib.errors.ValidationError: response codes out of range
          - code must be -1 (not applicable), 0 (unanswered) or 1..4 @ codes[0, 1]
        """
        top = self._top
        arr = np.asarray(codes)
        n_items = top.shape[0]
        if arr.ndim != (1 if one else 2) or arr.shape[-1] != n_items:
            what = (
                "a 1-D array with one code per item"
                if one
                else "a 2-D array with one column per item"
            )
            expected = f"({n_items},)" if one else f"(n, {n_items})"
            raise ValidationError(
                f"response codes must be {what}",
                [Problem(name, "shape", f"expected {expected}, got {arr.shape}")],
            )
        narrow = self._narrow
        if arr.size == 0:
            return arr.astype(narrow)
        if arr.dtype.kind not in "iu":
            raise ValidationError(
                "response codes must be integers",
                [Problem(name, "dtype", f"got dtype {arr.dtype}")],
            )
        if arr.size <= _SMALL:  # on a few codes a set lookup costs less than two reductions
            in_range = self._codes.issuperset(arr.ravel().tolist())
        else:
            in_range = int(arr.min()) >= _NOT_APPLICABLE and int(arr.max()) <= self._high
        if not in_range:
            _out_of_range(arr, top, name)
        out: NDArray[Any] = arr if arr.dtype == narrow else arr.astype(narrow)
        if self._ragged and bool(np.any(out > self._narrow_top)):  # items' tops differ
            _out_of_range(arr, top, name)
        return out


def checked_codes(
    codes: ArrayLike, top: ArrayLike, *, name: str = "codes", one: bool = False
) -> NDArray[Any]:
    """:class:`CodeCheck` of ``top``, applied once to ``codes``."""
    return CodeCheck(top)(codes, name=name, one=one)


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
