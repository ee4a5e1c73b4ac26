"""Arrow helpers shared by the columnar reader and the writers (pyarrow is imported lazily)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
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
        values = [a if not isinstance(a, (str, bool, int, float)) else _scalar(a) for a in args]
        return self._k.call_function(name, values, options)

    def take(self, values: Any, indices: Any) -> Any:
        return self.call("take", values, indices)

    def take_within(self, values: Any, indices: Any) -> Any:
        """:meth:`take` of indices known to lie within ``values`` (made so by the caller, as
        a dictionary's own indices are): pyarrow's pass that checks each index is skipped."""
        return self.call("take", values, indices, options=self._unchecked)

    @functools.cached_property
    def _unchecked(self) -> Any:
        return self._k.TakeOptions(boundscheck=False)

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

    def join_cells(self, *strings: Any, separator: str) -> Any:
        """:meth:`join` with a missing string as empty, as pyarrow's CSV writer writes a
        missing value."""
        return self.call("binary_join_element_wise", *strings, separator, options=self._cells)

    @functools.cached_property
    def _cells(self) -> Any:
        return self._k.JoinOptions(null_handling="replace", null_replacement="")

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


def batch_groups(
    batches: Iterable[Any], rows: int, limit: int | None = None
) -> Iterator[list[Any]]:
    """Consecutive record batches in groups, in order: a group ends once it holds ``rows`` rows.
    With a byte ``limit`` it also ends once it holds ``limit`` bytes, and a batch that would
    take it past ``limit`` starts the next: a group of several batches never holds more (their
    text joined stays within Arrow's 32-bit offsets, however long the lines)."""
    group: list[Any] = []
    n = size = 0
    for batch in batches:
        if limit is not None and group and size + batch.nbytes > limit:
            yield group
            group, n, size = [], 0, 0
        group.append(batch)
        n += batch.num_rows
        size += batch.nbytes if limit is not None else 0
        if n >= rows or (limit is not None and size >= limit):
            yield group
            group, n, size = [], 0, 0
    if group:
        yield group


def from_numpy(values: npt.NDArray[Any], mask: npt.NDArray[np.bool_] | None = None) -> Any:
    """A one-dimensional NumPy array of numbers, booleans or days (``datetime64[D]``, as
    ``date32``) as an Arrow array built from its buffers; ``mask`` marks nulls.

    ``pyarrow.array`` does the same, but on its first NumPy array it imports pandas wherever
    pandas is installed, to ask whether the array is a pandas one: a third of a second at every
    start of the command line, for nothing."""
    pa = pyarrow_module()
    values = np.ascontiguousarray(values)
    n = int(values.shape[0])
    if values.dtype == np.bool_:
        kind = pa.bool_()
        data = pa.py_buffer(np.packbits(values, bitorder="little"))
    elif values.dtype == np.dtype("datetime64[D]"):
        kind = pa.date32()
        data = pa.py_buffer(values.astype(np.int64).astype(np.int32))
    else:
        kind = pa.from_numpy_dtype(values.dtype)
        data = pa.py_buffer(values)
    if mask is None or not mask.any():
        return pa.Array.from_buffers(kind, n, [None, data], null_count=0)
    valid = pa.py_buffer(np.packbits(~np.asarray(mask, dtype=np.bool_), bitorder="little"))
    return pa.Array.from_buffers(kind, n, [valid, data], null_count=int(mask.sum()))


def to_numpy(arr: Any) -> npt.NDArray[Any]:
    """An Arrow array or chunked array as NumPy, as its own ``to_numpy`` gives it, read from
    its buffers (``to_numpy``, like ``pyarrow.array``, imports pandas: see :func:`from_numpy`).

    Numbers without nulls are a read-only view of the buffer (of one chunk); with nulls,
    ``float64`` with NaN there. Booleans without nulls are ``bool``; dates (``date32``) are
    ``datetime64[D]`` with NaT for null; text is Python strings (``None`` for null). Other
    arrays go through ``to_numpy``."""
    pa = pyarrow_module()
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 1:
            return to_numpy(arr.chunk(0))
        if arr.num_chunks == 0:
            return to_numpy(pa.nulls(0, arr.type))
        return np.concatenate([to_numpy(c) for c in arr.chunks])
    kind = arr.type
    n = len(arr)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        data = arr.buffers()[1]
        dtype = np.dtype(kind.to_pandas_dtype())
        if data is None:
            values: npt.NDArray[Any] = np.zeros(0, dtype=dtype)
        else:
            values = np.frombuffer(data, dtype=dtype)[arr.offset : arr.offset + n]
        if arr.null_count == 0:
            values.flags.writeable = False  # the array's memory, which Arrow holds immutable
            return values
        out = values.astype(np.float64)
        out[_nulls(arr)] = np.nan
        return out
    if pa.types.is_boolean(kind) and arr.null_count == 0:
        return _bits(arr.buffers()[1], arr.offset, n)
    if pa.types.is_date32(kind):
        days = to_numpy(arr.view(pa.int32()))
        return np.asarray(days, dtype="datetime64[D]")  # NaN (null) becomes NaT
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        out = np.empty(n, dtype=object)
        out[:] = arr.to_pylist()
        return out
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def combined(column: Any) -> Any:
    """A chunked array's chunks as one array (an array as it is): ``combine_chunks`` makes
    the array of a column of no chunks with ``pyarrow.array`` (see :func:`from_numpy`)."""
    pa = pyarrow_module()
    if not isinstance(column, pa.ChunkedArray):
        return column
    return column.combine_chunks() if column.num_chunks else pa.nulls(0, column.type)


def _bits(buffer: Any, offset: int, n: int) -> npt.NDArray[np.bool_]:
    """``n`` bits of an Arrow bitmap from bit ``offset``, as booleans."""
    if buffer is None or n == 0:
        return np.zeros(n, dtype=np.bool_)
    packed = np.frombuffer(buffer, dtype=np.uint8)
    bits = np.unpackbits(packed, count=offset + n, bitorder="little")[offset:]
    return bits.astype(np.bool_)


def _nulls(arr: Any) -> npt.NDArray[np.bool_]:
    """Where an Arrow array is null."""
    if arr.null_count == 0:
        return np.zeros(len(arr), dtype=np.bool_)
    valid = arr.buffers()[0]
    if valid is None:  # a null array, or a type without a validity bitmap
        return np.ones(len(arr), dtype=np.bool_)
    return ~_bits(valid, arr.offset, len(arr))


def scalar(value: str | bool | float | None, kind: Any = None) -> Any:
    """An Arrow scalar of type ``kind`` (by default, as :func:`_scalar` types ``value``), made
    without ``pyarrow.scalar`` (see :func:`from_numpy`): for compute functions, which
    convert a Python value given to them with it. ``None`` is the null of ``kind``."""
    pa = pyarrow_module()
    if value is None:
        return pa.nulls(1, kind)[0]
    if kind is None:
        return _scalar(value)
    if pa.types.is_string(kind):
        return text_array([str(value)])[0]
    return from_numpy(np.array([value], dtype=np.dtype(kind.to_pandas_dtype())))[0]


def text_array(values: Sequence[str | None]) -> Any:
    """Python strings (``None`` for null) as an Arrow ``string`` array, built from its buffers
    (see :func:`from_numpy` for why not ``pyarrow.array``)."""
    pa = pyarrow_module()
    nulls = [i for i, v in enumerate(values) if v is None]
    try:
        encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    except (UnicodeEncodeError, AttributeError):  # a lone surrogate, or not text: as pyarrow
        return pa.array(list(values), type=pa.string())
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    if offsets[-1] >= 1 << 31:  # pragma: no cover - over 2 GiB of text in one array
        return pa.array(list(values), type=pa.string())
    valid = None
    if nulls:
        present = np.ones(len(encoded), dtype=np.bool_)
        present[nulls] = False
        valid = pa.py_buffer(np.packbits(present, bitorder="little"))
    buffers = [valid, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(encoded), buffers, null_count=len(nulls))


#: From this many values pyarrow's own conversion is used (it is faster than building the
#: buffers in Python): the import of pandas it may make is then paid for a large input only.
LARGE_CONVERSION = 4096


def texts(values: Sequence[str | None]) -> Any:
    """Python strings as an Arrow ``string`` array: :func:`text_array`, or for a list of
    :data:`LARGE_CONVERSION` or more, ``pyarrow.array``."""
    if len(values) >= LARGE_CONVERSION:
        return pyarrow_module().array(values, type=pyarrow_module().string())
    return text_array(values)


def text_lists(lists: Sequence[Sequence[str]]) -> Any:
    """Lists of Python strings as an Arrow ``list<string>`` array, built from its buffers."""
    pa = pyarrow_module()
    offsets = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, lists), np.int32, len(lists)), out=offsets[1:])
    values = text_array([v for one in lists for v in one])
    return pa.ListArray.from_arrays(from_numpy(offsets), values)


def _scalar(value: str | bool | int | float) -> Any:
    """A Python value as an Arrow scalar, without ``pyarrow.scalar`` (see :func:`from_numpy`)."""
    if isinstance(value, str):
        return text_array([value])[0]
    kind = np.bool_ if isinstance(value, bool) else np.int64 if isinstance(value, int) else None
    return from_numpy(np.array([value], dtype=kind or np.float64))[0]


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
        starts = self.offsets[:-1]
        # ``take`` rather than ``[]``: indexing with indices that are not ``intp`` is slower.
        out: npt.NDArray[np.uint8] = self.data.take(starts + k if k else starts, mode="clip")
        short = self.lengths <= k
        if short.any():
            out[short] = 0
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
        if rows.shape[0] and int(lengths.max()) <= width:
            return self._scattered(starts, lengths, width)
        columns = np.arange(width)[None, :]
        keep = columns < lengths[:, None]
        index = np.minimum(starts[:, None] + columns, self.data.shape[0] - 1)
        out: npt.NDArray[np.uint8] = np.where(keep, self.data[index], 0).astype(np.uint8)
        return out

    def _scattered(
        self, starts: npt.NDArray[np.int32], lengths: npt.NDArray[np.int32], width: int
    ) -> npt.NDArray[np.uint8]:
        """:meth:`matrix` where every value fits: each byte is copied once to its place, so
        the work follows the bytes the values hold, not ``width`` for every row (with 32-bit
        positions where they fit: half the memory to touch)."""
        m = starts.shape[0]
        index: type[np.signedinteger[Any]] = np.int32 if m * width < 2**31 else np.int64
        sizes: npt.NDArray[np.signedinteger[Any]] = lengths.astype(index)
        before: npt.NDArray[np.signedinteger[Any]] = np.cumsum(sizes, dtype=index)
        before -= sizes  # bytes of the chosen values before each
        total = int(before[-1]) + int(sizes[-1])
        out = np.zeros(m * width, dtype=np.uint8)
        shift: npt.NDArray[np.signedinteger[Any]] = np.arange(0, m * width, width, dtype=index)
        shift -= before
        destination: npt.NDArray[np.signedinteger[Any]] = np.repeat(shift, sizes)
        destination += np.arange(total, dtype=index)
        first = int(starts[0])
        if bool((np.diff(starts) == lengths[:-1]).all()):  # the values lie one after another
            out[destination] = self.data[first : first + total]
        else:
            source: npt.NDArray[np.signedinteger[Any]] = np.repeat(starts - before, sizes)
            source += np.arange(total, dtype=index)
            out[destination] = self.data[source]
        return out.reshape(m, width)

    def values(self, rows: npt.NDArray[np.intp]) -> list[str]:
        """The given rows as Python strings (for the few rows that need Python)."""
        if rows.shape[0] == 0:
            return []
        picked = compute().take(self.arr, from_numpy(rows.astype(np.int64)))
        return [str(v) for v in picked.to_pylist()]

    def constant(self) -> str | None:
        """The value every row holds, where there are rows and all hold the same ASCII text;
        else ``None``. Their bytes are compared as one run (the values of an array lie one
        after another), not hashed row by row."""
        n = len(self)
        if n == 0:
            return None
        size = int(self.lengths[0])
        if not bool((self.lengths == size).all()):
            return None
        start = int(self.offsets[0])
        value = self.data[start : start + size].tobytes()
        if not value.isascii() or self.data[start : start + size * n].tobytes() != value * n:
            return None
        return value.decode("ascii")

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
    """Dictionary-encode: an index per row into the list of distinct values, in order of
    first appearance."""
    value = text.constant()
    if value is not None:  # the usual instrument column: no row to hash
        return np.zeros(len(text), dtype=np.int32), [value]
    encoded = compute().dictionary_encode(text.arr)
    indices = to_numpy(encoded.indices).astype(np.int32, copy=False)
    return indices, [str(v) for v in encoded.dictionary.to_pylist()]
