"""The NumPy helpers every layer uses."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pamlib._arrays import sorted_unique

_DTYPES = st.sampled_from([np.int8, np.int16, np.int64, np.uint64])


@given(data=st.data(), dtype=_DTYPES)
def test_sorted_unique_is_numpys_unique(data: st.DataObject, dtype: type) -> None:
    values = data.draw(hnp.arrays(dtype, hnp.array_shapes(max_dims=2, max_side=40)))
    found = sorted_unique(values)
    assert found.dtype == values.dtype
    np.testing.assert_array_equal(found, np.unique(values))


@given(
    values=st.lists(st.text(max_size=14), min_size=1, max_size=60),
    data=st.data(),
    width=st.integers(1, 20),
)
def test_text_matrix_holds_each_values_first_bytes(
    values: list[str], data: st.DataObject, width: int
) -> None:
    """Each chosen row's first ``width`` bytes, zero-padded: for rows in any order, repeated,
    contiguous or not, and values longer than ``width``."""
    import pyarrow as pa

    from pamlib.formats._arrow import Text

    arr = pa.array(values, type=pa.string())
    offset = data.draw(st.integers(0, len(values) - 1))
    arr = arr.slice(offset)  # an array that does not start at its buffers' start
    chosen = data.draw(st.lists(st.integers(0, len(arr) - 1), max_size=40))
    if data.draw(st.booleans()):
        chosen = list(range(len(arr)))  # every row: the values lie one after another
    rows = np.array(chosen, dtype=np.intp)
    expected = np.zeros((len(chosen), width), dtype=np.uint8)
    for i, row in enumerate(chosen):
        encoded = values[offset + row].encode("utf-8")[:width]
        expected[i, : len(encoded)] = np.frombuffer(encoded, dtype=np.uint8)
    np.testing.assert_array_equal(Text(arr).matrix(rows, width), expected)
