"""The scored CSV's lines, made by joining neighbouring columns' texts before the lines are
joined, are the bytes pyarrow's CSV writer makes of the same columns."""

from __future__ import annotations

import io
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pa = pytest.importorskip("pyarrow")
pacsv = pytest.importorskip("pyarrow.csv")

from pamlib.formats import output  # noqa: E402 - after the skip
from pamlib.formats._arrow import Text  # noqa: E402

#: Cells that need no quoting (the lines are made only then): empty, multi-byte, long.
_cell = st.sampled_from(["", "1", "42", "-0.5", "ü", "scored", "a;b", "é" * 30, "x" * 70])


@st.composite
def _columns(draw: st.DrawFn) -> tuple[int, list[Any]]:
    """Columns of ``n`` rows as the output has them: made (some values missing), constants,
    picks from a table by index (over the indices' range or a wider one), and runs of picks
    of the same indices, as the measures and their scores are."""
    n = draw(st.integers(1, 30))
    cells: list[Any] = []
    for _ in range(draw(st.integers(1, 9))):
        kind = draw(st.sampled_from(["made", "constant", "pick", "same", "follows"]))
        last = cells[-1] if cells else None
        if kind == "follows" and isinstance(last, output._Pick) and last.indices is not None:
            # an index that follows from the last one's (as a level from a measure), or
            # that does so but in a few rows
            size = draw(st.integers(1, 12))
            table = draw(st.lists(_cell, min_size=size, max_size=size))
            mapping = np.array(
                draw(st.lists(st.integers(0, size - 1), min_size=last.hi + 1, max_size=last.hi + 1))
            )
            indices = mapping[last.indices]
            for row in draw(st.lists(st.integers(0, n - 1), max_size=2)):
                indices[row] = draw(st.integers(0, size - 1))
            texts = pa.array(table, type=pa.string())
            cells.append(output._Pick(texts, indices, 0, size - 1, n))
            continue
        if kind == "follows":
            kind = "pick"
        if kind == "made":
            values = draw(st.lists(st.none() | _cell, min_size=n, max_size=n))
            cells.append(pa.array(values, type=pa.string()))
        elif kind == "constant":
            cells.append(output._Pick.constant(draw(_cell), n))
        else:
            table = draw(st.lists(_cell, min_size=1, max_size=80))
            indices = np.array(
                draw(st.lists(st.integers(0, len(table) - 1), min_size=n, max_size=n)),
                dtype=draw(st.sampled_from([np.int8, np.int32, np.int64])),
            )
            used = int(indices.min()), int(indices.max())
            every = 0, len(table) - 1

            def bounds(
                used: tuple[int, int] = used, every: tuple[int, int] = every
            ) -> tuple[int, int]:
                return used if draw(st.booleans()) else every

            texts = pa.array(table, type=pa.string())
            cells.append(output._Pick(texts, indices, *bounds(), n))
            if kind == "same":
                for _ in range(draw(st.integers(1, 3))):
                    more = draw(st.lists(_cell, min_size=len(table), max_size=len(table)))
                    texts = pa.array(more, type=pa.string())
                    cells.append(output._Pick(texts, indices, *bounds(), n))
    return n, cells


@given(
    _columns(),
    st.sampled_from([1, 4, 64, output._JOINED_TEXTS]),
    st.sampled_from([1, 3, 256]),
    st.sampled_from([1, 2, 7, output._LINE_ROWS]),
)
def test_lines_are_pyarrows_text_of_the_same_columns(
    columns: tuple[int, list[Any]], most: int, head: int, rows: int
) -> None:
    n, cells = columns
    table = pa.table({f"c{i}": output._made(c) for i, c in enumerate(cells)})
    expected = io.BytesIO()
    pacsv.write_csv(table, expected, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    # joined texts few or many; whether indices follow, seen early or late
    # and made a few rows at a time, as a table scored as one long batch is
    with mock.patch.multiple(output, _JOINED_TEXTS=most, _FOLLOWS_HEAD=head, _LINE_ROWS=rows):
        pieces = output._line_pieces(cells, n)
    assert sum(len(lines) for lines in pieces) == n
    made = [Text(lines) for lines in pieces]
    text = b"".join(m.data[int(m.offsets[0]) : int(m.offsets[-1])].tobytes() for m in made)
    assert text == expected.getvalue()


@given(st.lists(_cell, max_size=12), st.integers(0, 12), st.booleans())
def test_line_ends_replace_each_lines_last_byte(
    values: list[str], start: int, read_only: bool
) -> None:
    """Each line's last byte becomes ``\\n``, in the join's own text or, where pyarrow holds it
    read-only, in a copy (a slice of lines too)."""
    from pamlib.formats._arrow import compute

    lines = compute().join_cells(pa.array(values, type=pa.string()), "", separator=",")
    lines = lines.slice(min(start, len(values)))
    expected = [v[:-1] + "\n" for v in lines.to_pylist()]
    if read_only:
        offsets, data = lines.buffers()[1:]
        frozen = pa.py_buffer(data.to_pybytes()) if data is not None else None
        lines = pa.Array.from_buffers(
            pa.string(), len(lines), [None, offsets, frozen], offset=lines.offset
        )
    assert output._ended(lines).to_pylist() == expected


@given(_columns(), st.integers(1, 5))
def test_lines_too_long_for_one_array_are_made_in_halves(
    columns: tuple[int, list[Any]], most: int
) -> None:
    """Rows whose lines would hold more text than a string array can (2 GiB: here, more than
    ``most`` rows) are made in halves, then halves of those, in order: the same bytes."""
    n, cells = columns
    expected = b"".join(_bytes(lines) for lines in output._line_pieces(cells, n))
    real = output._lines

    def capped(cells: list[Any], rows: int) -> Any:
        if rows > most:
            raise pa.ArrowCapacityError("array cannot contain more than 2147483646 bytes")
        return real(cells, rows)

    with mock.patch.object(output, "_lines", capped):
        pieces = output._line_pieces(cells, n)
    assert all(len(lines) <= most for lines in pieces)
    assert b"".join(_bytes(lines) for lines in pieces) == expected


def _bytes(lines: Any) -> bytes:
    made = Text(lines)
    return made.data[int(made.offsets[0]) : int(made.offsets[-1])].tobytes()
