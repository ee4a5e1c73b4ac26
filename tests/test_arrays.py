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
