"""Arrow helpers shared by the columnar reader and the writers (pyarrow is imported lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from pamlib.errors import FormatError, Problem
from pamlib.formats.values import is_absent


def pyarrow_module() -> Any:
    """``pyarrow`` with its ``csv`` module loaded, or a clear error."""
    try:
        import pyarrow
        import pyarrow.csv
    except ImportError:  # pragma: no cover - a broken installation
        raise FormatError(
            "pyarrow, which pamlib depends on, cannot be imported: reinstall pamlib "
            "(pip install --force-reinstall pamlib)",
            [Problem("pyarrow", "missing-dependency", "pyarrow is not importable")],
        ) from None
    return pyarrow


class _Compute:
    """The few pyarrow compute functions pamlib uses, called without importing
    ``pyarrow.compute``: that import builds hundreds of function wrappers, a tenth of a second
    at every start of the command line."""

    def __init__(self) -> None:
        try:
            from pyarrow import _compute as kernels
        except ImportError:  # pragma: no cover - a pyarrow that moved its kernels
            import pyarrow.compute as kernels
        self._k = kernels

    def call(self, name: str, *args: Any, options: Any = None) -> Any:
        pa = pyarrow_module()
        values = [a if not isinstance(a, (str, bool, int, float)) else pa.scalar(a) for a in args]
        return self._k.call_function(name, values, options)

    def take(self, values: Any, indices: Any) -> Any:
        return self.call("take", values, indices)

    def cast(self, values: Any, target: Any) -> Any:
        return self.call("cast", values, options=self._k.CastOptions.safe(target))

    def dictionary_encode(self, values: Any) -> Any:
        return self.call("dictionary_encode", values)

    def if_else(self, condition: Any, then: Any, otherwise: Any) -> Any:
        return self.call("if_else", condition, then, otherwise)

    def equal(self, left: Any, right: Any) -> Any:
        return self.call("equal", left, right)

    def replace_with_mask(self, values: Any, mask: Any, replacements: Any) -> Any:
        return self.call("replace_with_mask", values, mask, replacements)

    def remove_regex(self, values: Any, pattern: str) -> Any:
        options = self._k.ReplaceSubstringOptions(pattern, "")
        return self.call("replace_substring_regex", values, options=options)

    def join(self, *strings: Any) -> Any:
        """``binary_join_element_wise``: the last argument is the separator."""
        return self.call("binary_join_element_wise", *strings)

    def fill_null(self, values: Any, fill: Any) -> Any:
        return self.call("coalesce", values, fill)


_compute: _Compute | None = None


def compute() -> _Compute:
    """The compute functions (see :class:`_Compute`), with pyarrow loaded."""
    global _compute  # noqa: PLW0603 - built once, on first use
    if _compute is None:
        pyarrow_module()
        _compute = _Compute()
    return _compute


def constant_text(value: str, n: int) -> Any:
    """``n`` copies of ``value`` as an Arrow string array, built from raw buffers."""
    pa = pyarrow_module()
    encoded = value.encode("utf-8")
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(encoded))
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(encoded * n)]
    )


def to_arrow_text(column: Any) -> Any:
    """A text column (NumPy or Arrow) as one Arrow ``string`` array."""
    pa = pyarrow_module()
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column, pa.Array):
        return column if column.type == pa.string() else compute().cast(column, pa.string())
    return pa.array(np.asarray(column, dtype=object), type=pa.string())


class Text:
    """Byte-level views of an Arrow string array (offsets, data, lengths) for NumPy work."""

    def __init__(self, arr: Any) -> None:
        arr = to_arrow_text(arr)
        self.arr = arr
        n = len(arr)
        buffers = arr.buffers()
        self.offsets: npt.NDArray[np.int32] = np.frombuffer(buffers[1], dtype=np.int32)[
            arr.offset : arr.offset + n + 1
        ]
        data = buffers[2]
        self.data: npt.NDArray[np.uint8] = (
            np.frombuffer(data, dtype=np.uint8)
            if data is not None and data.size
            else np.zeros(1, dtype=np.uint8)
        )
        self.lengths: npt.NDArray[np.int32] = np.diff(self.offsets)

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def byte(self, k: int) -> npt.NDArray[np.uint8]:
        """Byte ``k`` of every value (0 where the value is shorter)."""
        index = np.minimum(self.offsets[:-1] + k, self.data.shape[0] - 1)
        out: npt.NDArray[np.uint8] = np.where(self.lengths > k, self.data[index], 0).astype(
            np.uint8
        )
        return out

    def matrix(self, rows: npt.NDArray[np.intp], width: int) -> npt.NDArray[np.uint8]:
        """The first ``width`` bytes of the given rows, zero-padded, as a ``(m, width)`` array."""
        lengths = self.lengths[rows]
        if rows.shape[0] and bool((lengths == lengths[0]).all()) and int(lengths[0]) <= width:
            # All of one length (ids, NHS numbers): slice each row straight out of the data.
            size = int(lengths[0])
            starts = self.offsets[:-1][rows]
            if bool((np.diff(starts) == size).all()):
                flat = self.data[int(starts[0]) : int(starts[0]) + size * rows.shape[0]]
                block = np.zeros((rows.shape[0], width), dtype=np.uint8)
                block[:, :size] = flat.reshape(rows.shape[0], size)
                return block
        starts = self.offsets[:-1][rows]
        columns = np.arange(width)[None, :]
        keep = columns < lengths[:, None]
        index = np.minimum(starts[:, None] + columns, self.data.shape[0] - 1)
        out: npt.NDArray[np.uint8] = np.where(keep, self.data[index], 0).astype(np.uint8)
        return out

    def values(self, rows: npt.NDArray[np.intp]) -> list[str]:
        """The given rows as Python strings (for the few rows that need Python)."""
        pa = pyarrow_module()
        picked = compute().take(self.arr, pa.array(rows, type=pa.int64()))
        return [str(v) for v in picked.to_pylist()]

    def has_bytes(self, values: bytes) -> bool:
        """Whether any value contains any of the given bytes."""
        if not len(self):
            return False
        used = self.data[int(self.offsets[0]) : int(self.offsets[-1])].tobytes()
        return any(bytes([v]) in used for v in values)

    def absent(self) -> npt.NDArray[np.bool_]:
        """Empty or whitespace-only values, exactly as :func:`~pamlib.formats.values.is_absent`."""
        first = self.byte(0)
        absent: npt.NDArray[np.bool_] = self.lengths == 0
        unsure = np.flatnonzero(~absent & ((first < 0x21) | (first > 0x7E)))
        if unsure.size:
            absent[unsure] = [is_absent(v) for v in self.values(unsure)]
        return absent


def distinct(text: Text) -> tuple[npt.NDArray[np.int32], list[str]]:
    """Dictionary-encode: an index per row into the list of distinct values."""
    encoded = compute().dictionary_encode(text.arr)
    indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
    return indices, [str(v) for v in encoded.dictionary.to_pylist()]
