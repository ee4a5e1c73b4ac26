"""The NumPy and Arrow helpers every layer uses."""

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


@given(
    sizes=st.lists(st.integers(0, 9), max_size=12),
    rows=st.integers(1, 20),
    limit=st.one_of(st.none(), st.integers(1, 400)),
)
def test_batch_groups_are_runs_of_the_batches_ended_as_documented(
    sizes: list[int], rows: int, limit: int | None
) -> None:
    """Groups are the batches in order; a group ends when it holds ``rows`` rows or ``limit``
    bytes, or when the next batch would take it past ``limit``; a group of several batches
    never holds more than ``limit`` bytes."""
    import pyarrow as pa

    from pamlib.formats._arrow import batch_groups

    batches = [
        pa.RecordBatch.from_pydict({"v": pa.array(["x" * i] * n, pa.string())})
        for i, n in enumerate(sizes)
    ]
    groups = list(batch_groups(iter(batches), rows, limit))
    assert [b for g in groups for b in g] == batches
    assert all(groups)
    for k, group in enumerate(groups):
        n = sum(b.num_rows for b in group)
        held = sum(b.nbytes for b in group)
        if limit is not None and len(group) > 1:
            assert held <= limit
        if k + 1 < len(groups):  # ended early only when full, or the next would not fit
            full = n >= rows or (limit is not None and held >= limit)
            no_room = limit is not None and held + groups[k + 1][0].nbytes > limit
            assert full or no_room
        else:
            assert len(group) == 1 or n - group[-1].num_rows < rows
