"""The per-row rules pamlib.spark adds on the executors agree with ``pamlib score``'s (no Spark
needed: these run wherever pyarrow is installed)."""

from __future__ import annotations

import codecs
import csv
import functools
import io
from typing import Any, cast

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError, FormatError
from pamlib.formats._records import (
    MAX_FIELD_CHARS,
    RawRecord,
    is_blank,
    split_records,
    structural_reject,
)
from pamlib.formats.encoding import detect_encoding
from pamlib.spark import (
    _blank_rows,
    _detected_encoding,
    _file_heads,
    _pamlib_message,
    _structural,
    _too_long_reject,
    _too_long_rows,
    _undecoded_rows,
)

cells = st.text(
    alphabet=st.sampled_from([" ", "\t", "a", "1", ",", ";", '"', "\n", "é"]), max_size=6
)


@given(st.lists(st.lists(st.one_of(st.none(), cells), min_size=3, max_size=3), max_size=8))
def test_blank_rows_are_pamlib_blank_records(rows: list[list[str | None]]) -> None:
    columns = [pa.array([r[k] for r in rows], pa.string()) for k in range(3)]
    expected = [is_blank(RawRecord(1, [c or "" for c in r], "")) for r in rows]
    assert _blank_rows(columns).tolist() == expected


field_bytes = st.binary(max_size=6).filter(lambda b: b"\xef\xbf\xbd" not in b)


@given(st.lists(st.lists(field_bytes, min_size=3, max_size=3), max_size=8))
def test_rows_spark_decoded_with_replacements_are_pamlib_encoding_rejects(
    rows: list[list[bytes]],
) -> None:
    """A row is flagged exactly when ``pamlib score`` finds bytes it cannot decode in it."""
    columns = [
        pa.array([r[k].decode("utf-8", "replace") for r in rows], pa.string()) for k in range(3)
    ]
    expected = [
        structural_reject(RawRecord(1, f, ",".join(f)), 3) is not None
        for f in ([b.decode("utf-8", "surrogateescape") for b in r] for r in rows)
    ]
    assert _undecoded_rows(columns).tolist() == expected


@given(
    st.lists(cells, min_size=1, max_size=6),
    st.integers(min_value=1, max_value=6),
    st.sampled_from([",", ";", "\t"]),
)
def test_a_record_spark_could_not_split_is_rejected_as_pamlib_rejects_it(
    fields: list[str], n_fields: int, delimiter: str
) -> None:
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="", delimiter=delimiter).writerow(fields)
    raw = text.getvalue()
    records = list(split_records(io.StringIO(raw, newline=""), delimiter=delimiter))
    verdict = _structural(raw, n_fields, delimiter)
    if not records or all(is_blank(r) for r in records):
        assert verdict is None
        return
    assert verdict is not None
    expected = structural_reject(records[0], n_fields) if len(records) == 1 else None
    if expected is not None:
        assert verdict[:2] == expected
    else:  # pamlib would read it; only Spark could not
        assert verdict[0] == "field-count"
    assert "\x00" not in verdict[2]


def test_pamlib_s_refusal_is_found_in_a_python_worker_s_error() -> None:
    text = (
        "Traceback (most recent call last):\n  ...\n"
        "pamlib.spark.SparkJobError: pamlib: the calibration changed since it was read\n"
    )
    assert _pamlib_message(text) == "the calibration changed since it was read"
    assert _pamlib_message("java.lang.OutOfMemoryError") is None


texts = st.one_of(st.none(), st.text(alphabet=st.sampled_from(["a", " ", "\n", "é", "€", "😀"])))


@given(
    st.lists(st.lists(texts, min_size=3, max_size=3), max_size=8),
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=0, max_value=3),
)
def test_rows_with_a_field_over_the_limit_are_pamlib_field_too_long_rejects(
    rows: list[list[str | None]], limit: int, skip: int
) -> None:
    """Characters are counted, not bytes, as ``pamlib score`` counts them; a slice of a larger
    array (as Spark's batches may be) is looked at only in its own rows."""
    columns = [pa.array([None] * skip + [r[k] for r in rows], pa.string())[skip:] for k in range(3)]
    expected = [max(len(c or "") for c in r) > limit for r in rows]
    assert _too_long_rows(columns, limit).tolist() == expected


def test_the_field_too_long_reject_is_pamlib_score_s() -> None:
    fields = ["a", "x" * (MAX_FIELD_CHARS + 1)]
    assert _too_long_reject() == structural_reject(RawRecord(1, fields, ",".join(fields)), 2)


#: Bytes of the kinds the encoding rule looks at: ASCII, Latin letters in UTF-8 and in one byte,
#: bytes only cp1252 reads, one it does not, NUL, and byte-order marks.
head_bytes = st.lists(
    st.sampled_from(
        [
            b"a",
            b",",
            b"\n",
            b"\xc3\xa9",
            b"\xe9",
            b"\x80",
            b"\x92",
            b"\x81",
            b"\x00",
            codecs.BOM_UTF8,
            codecs.BOM_UTF16_LE,
            codecs.BOM_UTF16_BE,
        ]
    ),
    max_size=6,
).map(b"".join)


@given(head_bytes)
def test_one_file_s_encoding_is_found_as_pamlib_score_finds_it(head: bytes) -> None:
    stop = expected = None
    try:
        expected = detect_encoding(head[:4], lambda: iter([head]), "export.csv")[0]
    except FormatError as error:
        stop = error
    if stop is None:
        assert _detected_encoding([("file:/data/export.csv", head)]) == expected
        return
    with pytest.raises(FormatError) as found:
        _detected_encoding([("file:/data/export.csv", head)])
    assert [(p.where, p.code) for p in found.value.problems] == [
        (p.where, p.code) for p in stop.problems
    ]


@given(st.lists(head_bytes, min_size=1, max_size=4))
def test_the_encoding_of_several_files_reads_each_as_pamlib_score_reads_it(
    heads: list[bytes],
) -> None:
    """Files are read in one encoding only where it reads every one of them exactly as its own
    encoding does; else the read is refused."""
    files = [(f"file:/data/{k}.csv", head) for k, head in enumerate(heads)]
    try:
        chosen = _detected_encoding(files)
    except (FormatError, ConfigurationError):
        return
    for head in heads:
        own = detect_encoding(head[:4], functools.partial(iter, (head,)), "export.csv")[0]
        assert head.decode(chosen, "backslashreplace") == head.decode(own, "backslashreplace")


def test_a_session_without_a_jvm_must_be_given_the_encoding() -> None:
    """A Spark Connect session cannot read the files' starts on the driver: it says so."""

    class Connect:
        def __getattr__(self, name: str) -> Any:
            raise AttributeError(name)

    with pytest.raises(ConfigurationError, match=r"give the export's encoding \(encoding=\)"):
        _file_heads(cast(Any, Connect()), ["export.csv"])


def _piece(kind: str, rows: list[tuple[str, str | None, bool]], first: int) -> pa.Table:
    """A task's output of one kind, as the job makes it (only the columns counted and kept)."""
    n = len(rows)
    reject = kind == "rejected"
    return pa.table(
        {
            "_pamlib_file": ["f.csv"] * n,
            "_pamlib_row": pa.array(range(first, first + n), pa.int64()),
            "status": [r[0] if kind == "scored" else None for r in rows],
            "reason": [r[1] if kind == "scored" else None for r in rows],
            "demo": [r[2] if kind == "scored" else None for r in rows],
            "_reject_location": [f"row {first + k}" if reject else None for k in range(n)],
            "_reject_code": [r[0] if reject else None for r in rows],
            "_reject_message": ["why" if reject else None for _ in rows],
            "_reject_fields": pa.array(
                [[("a", "1")] if reject else None for _ in rows], pa.map_(pa.string(), pa.string())
            ),
            "_reject_record": ["" if reject else None for _ in rows],
        }
    )


task_rows = st.lists(
    st.tuples(
        st.sampled_from(["scored", "rejected", "blank"]),
        st.sampled_from(["scored", "not-scored", "date", "field-count"]),
        st.sampled_from([None, "too-few-answers"]),
        st.booleans(),
    ),
    max_size=12,
)


@given(st.lists(task_rows, max_size=5), st.integers(0, 3000), st.integers(0, 6000))
def test_what_tasks_send_back_adds_up_and_keeps_every_reject_or_none(
    tasks: list[list[tuple[str, str, str | None, bool]]], per_task: int, in_all: int
) -> None:
    """Counts add up over tasks whatever the limits; the rejects come back all, in task order,
    or none (then ``overflowed``: the write finds them with a second job)."""
    from collections import Counter
    from unittest import mock

    import pamlib.spark as ps

    expected: Counter[tuple[Any, ...]] = Counter()
    every_reject: list[int] = []
    driver = ps._Collected()
    row = 1
    with (
        mock.patch.object(ps, "_TASK_REJECTS_BYTES", per_task),
        mock.patch.object(ps, "_REJECTS_BYTES", in_all),
    ):
        for task in tasks:
            collected = ps._Collected()
            for kind, status, reason, demo in task:  # one row a piece: the worst case
                collected.add(kind, _piece(kind, [(status, reason, demo)], row))
                if kind == "scored":
                    expected[(kind, status, reason, None, demo)] += 1
                elif kind == "rejected":
                    expected[(kind, None, None, status, None)] += 1
                    every_reject.append(row)
                else:
                    expected[(kind, None, None, None, None)] += 1
                row += 1
            driver = ps._Tally().addInPlace(driver, collected)
    assert Counter(driver.counts) == expected
    kept = [r for t in driver.tables() for r in t.column("_pamlib_row").to_pylist()]
    assert kept == ([] if driver.overflowed else every_reject)
    assert driver.nbytes == sum(len(data) for data in driver.rejects) <= in_all


def test_a_reject_cut_from_a_large_batch_travels_alone() -> None:
    """What a task sends back is the rejects' own bytes, not the batch they were cut from."""
    import pamlib.spark as ps

    big = _piece("rejected", [("date", None, False)] * 20_000, 1)
    one = ps._Collected()
    one.add("rejected", big.slice(7, 1))
    assert one.nbytes < 2_000 < big.nbytes
    (table,) = one.tables()
    assert table.column("_pamlib_row").to_pylist() == [8]
