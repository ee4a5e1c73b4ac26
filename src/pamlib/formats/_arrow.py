"""Arrow helpers shared by the columnar reader and the writers (pyarrow is imported lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from pamlib.errors import FormatError, Problem
from pamlib.formats.values import is_absent

__all__ = ["Text", "distinct", "pyarrow_module", "to_arrow_text"]


def pyarrow_module() -> Any:
    """``pyarrow`` with its ``compute`` and ``csv`` modules loaded, or a clear error."""
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.csv
    except ImportError:  # pragma: no cover - exercised without the extra
        raise FormatError(
            "this needs pyarrow: pip install 'pamlib[arrow]'",
            [Problem("pyarrow", "missing-extra", "the 'arrow' extra is not installed")],
        ) from None
    return pyarrow


def to_arrow_text(column: Any) -> Any:
    """A text column (NumPy or Arrow) as one Arrow ``string`` array."""
    pa = pyarrow_module()
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column, pa.Array):
        return column if column.type == pa.string() else column.cast(pa.string())
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
        return [str(v) for v in self.arr.take(pa.array(rows, type=pa.int64())).to_pylist()]

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
    pc = pyarrow_module().compute
    encoded = pc.dictionary_encode(text.arr)
    indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
    return indices, [str(v) for v in encoded.dictionary.to_pylist()]
