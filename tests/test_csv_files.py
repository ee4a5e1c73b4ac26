"""Reading delimited files: the sample exports, line numbers, and each kind of bad row."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.errors import FormatError
from pamlib.formats.base import ReadChunk, ReadOptions, Reject
from pamlib.formats.layout import load_mapping
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.pipeline import score_file
from pamlib.plugins import PluginHost
from pamlib.scoring.raw_sum import RawSumProvider
from pamlib.synthetic import test_nhs_number as synthetic_nhs_number
from tests.conftest import ROOT
from tests.oracles.csv_reader import read_record_chunks

pa = pytest.importorskip("pyarrow")

from pamlib.formats._arrow import Text  # noqa: E402 - needs pyarrow
from pamlib.formats._columnar import SeenIds, read_columnar  # noqa: E402

MAPPING = ROOT / "docs" / "examples" / "site-export-mapping.toml"
HEADER = "patient_id,nhs_number,assessment_id,assessed_on,instrument,site," + ",".join(
    f"q{i:02d}" for i in range(1, 14)
)
ANSWERS = ",".join(["3"] * 13)
ENGINES = ("columnar", "oracle")  # pamlib's reader, and the tests' record-at-a-time oracle


def read(path: Path, engine: str, options: ReadOptions | None = None) -> list[ReadChunk]:
    options = options or ReadOptions()
    if engine == "columnar":
        return list(read_columnar(path, options, BUILTIN_INSTRUMENTS))
    return list(read_record_chunks(path, options, BUILTIN_INSTRUMENTS))


def rejects(chunks: list[ReadChunk]) -> list[Reject]:
    return [r for c in chunks for r in c.rejects]


def valid_lines(chunks: list[ReadChunk]) -> list[int]:
    return sorted(int(x) for c in chunks for b in c.batches if b.lines is not None for x in b.lines)


# -- the sample exports (tests/data; the shared ones too when present) ------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_site_export_with_its_mapping(sample_data: Path, engine: str) -> None:
    """The five rows broken on purpose: four rejected with the right code and line, one read
    but not scorable; every other row scored."""
    path = sample_data / "site-export-semicolon.csv"
    options = load_mapping(MAPPING).apply(ReadOptions())
    chunks = read(path, engine, options)
    found = [(r.line, r.code) for r in rejects(chunks)]
    assert found == [(13, "nhs-number"), (14, "date"), (32, "impossible-answer"),
                     (33, "unknown-label")]  # fmt: skip
    assert all(r.fields["NHS Number"] for r in rejects(chunks))  # original fields kept
    n_read = sum(c.n_read for c in chunks)
    assert n_read == 70
    assert len(valid_lines(chunks)) == 66
    # Records that follow quoted line breaks start on the right physical line.
    lines = valid_lines(chunks)
    assert 9 in lines
    assert 10 not in lines
    assert 11 in lines


def test_site_export_scores_with_one_not_scored(sample_data: Path) -> None:
    path = sample_data / "site-export-semicolon.csv"
    host = PluginHost(load_entry_points=False, disabled=())
    out = io.BytesIO()
    summary = score_file(
        path,
        select_provider=lambda _: RawSumProvider(),
        output=out,
        rejects=io.BytesIO(),
        options=load_mapping(MAPPING).apply(ReadOptions()),
        host=host,
    )
    assert summary.reconciliation == "read 70 = scored 65 + not scored 1 + rejected 4"
    assert summary.not_scored_by_reason == {"nothing-answered": 1}
    text = out.getvalue().decode()
    assert "9997485262" not in text  # no NHS numbers by default
    assert "999 748 5262" not in text
    (row,) = [line for line in text.splitlines() if ":34," in line]
    assert ",not-scored," in row
    assert row.split(",")[19] == "nothing-answered"


@pytest.mark.parametrize("engine", ENGINES)
def test_cohort_small_reads_completely(sample_data: Path, engine: str) -> None:
    chunks = read(sample_data / "cohort-small.csv", engine, ReadOptions(chunk_rows=100))
    assert sum(c.n_read for c in chunks) == 788
    assert rejects(chunks) == []
    assert valid_lines(chunks) == list(range(2, 790))
    patients = {x for c in chunks for b in c.batches for x in b.patient_id.tolist()}
    assert len(patients) == 500


# -- line numbers and structure --------------------------------------------------------------


def write(tmp_path: Path, data: bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_line_numbers_with_quoted_line_breaks(
    tmp_path: Path, engine: str, newline: bytes, bom: bytes
) -> None:
    header = HEADER + ",notes"
    rows = [
        f"P1,,A1,2024-01-01,PAM-13,s,{ANSWERS},plain",
        f'P2,,A2,2024-01-01,PAM-13,s,{ANSWERS},"two\nlines"',
        f'P3,,A3,2024-01-01,PAM-13,s,{ANSWERS},"three\r\nlines\nhere"',
        f"P4,,A4,2024-13-01,PAM-13,s,{ANSWERS},bad date",
        "",
        f"P5,,A5,2024-01-01,PAM-13,s,{ANSWERS},after a blank line",
    ]
    data = bom + newline.join(r.encode() for r in [header, *rows]) + newline
    chunks = read(write(tmp_path, data), engine, ReadOptions(chunk_rows=2))
    assert valid_lines(chunks) == [2, 3, 5, 10]
    assert [(r.line, r.code) for r in rejects(chunks)] == [(8, "date")]
    assert sum(c.n_read for c in chunks) == 5


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_each_delimiter_is_detected(tmp_path: Path, engine: str, delimiter: str) -> None:
    text = f"{HEADER}\nP1,,A1,2024-01-01,PAM-13,a site,{ANSWERS}\n".replace(",", delimiter)
    chunks = read(write(tmp_path, text.encode()), engine)
    assert valid_lines(chunks) == [2]


@pytest.mark.parametrize("engine", ENGINES)
def test_wrong_field_counts_keep_the_raw_record(tmp_path: Path, engine: str) -> None:
    data = (
        f"{HEADER}\n"
        f"P1,,A1,2024-01-01,PAM-13,s,{ANSWERS}\n"
        f"P2,,A2,2024-01-01,PAM-13,s,{ANSWERS},extra\n"
        f"P3,,A3,2024-01-01,PAM-13,s\n"
        f"P4,,A4,2024-01-01,PAM-13,s,{ANSWERS}\n"
    ).encode()
    chunks = read(write(tmp_path, data), engine)
    found = [(r.line, r.code, r.record, dict(r.fields)) for r in rejects(chunks)]
    assert found == [
        (3, "field-count", f"P2,,A2,2024-01-01,PAM-13,s,{ANSWERS},extra", {}),
        (4, "field-count", "P3,,A3,2024-01-01,PAM-13,s", {}),
    ]
    assert "expected 19 fields" in rejects(chunks)[0].message
    assert valid_lines(chunks) == [2, 5]


@pytest.mark.parametrize("engine", ENGINES)
def test_duplicate_ids_across_chunks(tmp_path: Path, engine: str) -> None:
    ids = ["A1", "A2", "A1", "LONG-ASSESSMENT-ID-0001", "A3", "LONG-ASSESSMENT-ID-0001", "A2"]
    body = "".join(f"P,,{a},2024-01-01,PAM-13,s,{ANSWERS}\n" for a in ids)
    options = ReadOptions(chunk_rows=2, settings={"block_bytes": 64})
    chunks = read(write(tmp_path, f"{HEADER}\n{body}".encode()), engine, options)
    assert [(r.line, r.code) for r in rejects(chunks)] == [
        (4, "duplicate-assessment-id"),
        (7, "duplicate-assessment-id"),
        (8, "duplicate-assessment-id"),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_problem_of_a_row_is_in_its_message(tmp_path: Path, engine: str) -> None:
    answers = ",".join(["3"] * 11 + ["7", "meh"])
    data = f"{HEADER}\n,9990000011,A1,30/02/2024,PAM-13,s,{answers}\n".encode()
    (reject,) = rejects(read(write(tmp_path, data), engine))
    assert reject.code == "nhs-number"
    assert reject.message == (
        "the NHS number's check digit is wrong (modulus 11) @ nhs_number; "
        "not a valid date: expected yyyy-mm-dd or dd/mm/yyyy @ assessed_on; "
        "not an answer: a number other than 1-4 @ q12; "
        "not an answer: expected 1-4, an agreement label or N/A @ q13"
    )
    assert "9990000011" not in reject.message


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("cells", "code"),
    [
        ("   ,,A1,2024-01-01,PAM-13", "no-identity"),
        ("P1,999 000 001,A1,2024-01-01,PAM-13", "nhs-number"),
        ("P1,,,2024-01-01,PAM-13", "no-assessment-id"),
        ("P1,,A1,,PAM-13", "date"),
        ("P1,,A1,2024-01-01,PAM-99", "unknown-instrument"),
    ],
)
def test_reject_codes(tmp_path: Path, engine: str, cells: str, code: str) -> None:
    data = f"{HEADER}\n{cells},s,{ANSWERS}\n".encode()
    assert [r.code for r in rejects(read(write(tmp_path, data), engine))] == [code]


@pytest.mark.parametrize("engine", ENGINES)
def test_pam10_rows_must_leave_later_items_empty(tmp_path: Path, engine: str) -> None:
    ten = ",".join(["2"] * 10)
    data = (
        f"{HEADER}\nP1,,A1,2024-01-01,PAM-10,s,{ten},,,\nP1,,A2,2024-01-01,PAM-10,s,{ten},,4,\n"
    ).encode()
    chunks = read(write(tmp_path, data), engine)
    assert [(r.line, r.code) for r in rejects(chunks)] == [(3, "unknown-item")]
    (batch,) = [b for c in chunks for b in c.batches]
    assert batch.codes.shape == (1, 10)


@pytest.mark.parametrize("engine", ENGINES)
def test_undecodable_bytes_reject_only_their_record(tmp_path: Path, engine: str) -> None:
    """Read as UTF-8 (as asked: without it, this file would be read as latin-1)."""
    data = (
        f"{HEADER}\nP1,,A1,2024-01-01,PAM-13,s,{ANSWERS}\n".encode()
        + f"P2,,A2,2024-01-01,PAM-13,caf\xe9,{ANSWERS}\n".encode("latin-1")
        + f"P3,,A3,2024-01-01,PAM-13,s,{ANSWERS}\n".encode()
    )
    chunks = read(write(tmp_path, data), engine, ReadOptions(settings={"encoding": "utf-8"}))
    (reject,) = rejects(chunks)
    assert (reject.line, reject.code, reject.fields["site"]) == (3, "encoding", "caf\ufffd")
    assert reject.message == "the record is not valid UTF-8"
    assert valid_lines(chunks) == [2, 4]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_quote_left_open_is_reported(tmp_path: Path, engine: str) -> None:
    data = (
        f"{HEADER},notes\nP1,,A1,2024-01-01,PAM-13,s,{ANSWERS},ok\n"
        f'P2,,A2,2024-01-01,PAM-13,s,{ANSWERS},"open\nP3,,A3,2024-01-01,PAM-13,s,{ANSWERS},x\n'
    ).encode()
    chunks = read(write(tmp_path, data), engine)
    assert [(r.line, r.code) for r in rejects(chunks)] == [(3, "unclosed-quote")]
    assert rejects(chunks)[0].record.startswith("P2,,A2")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_stray_quote_inside_a_field_is_text(tmp_path: Path, engine: str) -> None:
    data = (
        f"{HEADER},notes\n"
        f'P1,,A1,2024-01-01,PAM-13,s,{ANSWERS},5" tall\n'
        f'P2,,A2,2024-01-01,PAM-13,s,{ANSWERS},"quoted, fine"\n'
        f"P3,,A3,2024-01-01,PAM-13,s,{ANSWERS},x\n"
    ).encode()
    chunks = read(write(tmp_path, data), engine)
    assert valid_lines(chunks) == [2, 3, 4]
    notes = [x for c in chunks for b in c.batches for x in b.extras["notes"].tolist()]
    assert notes == ['5" tall', "quoted, fine", "x"]


@pytest.mark.parametrize("engine", ENGINES)
def test_files_without_ids_get_line_ids(tmp_path: Path, engine: str) -> None:
    data = f"patient_id,assessed_on,{','.join(f'q{i}' for i in range(1, 14))}\n".encode()
    data += f"P1,2024-01-01,{ANSWERS}\n".encode()
    options = ReadOptions(instrument="PAM-13")
    (batch,) = [b for c in read(write(tmp_path, data, "x.csv"), engine, options) for b in
                c.batches]  # fmt: skip
    assert batch.assessment_id.tolist() == ["x.csv:2"]


def test_empty_files_are_refused(tmp_path: Path) -> None:
    for engine in ENGINES:
        with pytest.raises(FormatError, match="empty"):
            read(write(tmp_path, b"\n\n"), engine)
        with pytest.raises(FormatError, match="empty"):
            read(write(tmp_path, "\n".encode("utf-16")), engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_header_only(tmp_path: Path, engine: str) -> None:
    chunks = read(write(tmp_path, f"{HEADER}\n".encode()), engine)
    assert chunks
    assert sum(c.n_read for c in chunks) == 0
    assert chunks[0].source_columns[0] == "patient_id"


@given(
    st.lists(st.text(max_size=6), max_size=30),
    st.integers(0, 7),
    st.integers(0, 5),
)
def test_text_byte_k_is_each_values_byte_or_zero(values: list[str], k: int, skip: int) -> None:
    """Byte ``k`` of every value (0 past its end), also for an array that is a slice of a
    larger one (its offsets do not start at zero)."""
    arr = pa.array(values, type=pa.string())[min(skip, len(values)) :]
    expected = [v.encode()[k] if len(v.encode()) > k else 0 for v in arr.to_pylist()]
    assert Text(arr).byte(k).tolist() == expected


@given(
    st.lists(
        st.text(alphabet="0123456789/:x", min_size=10, max_size=10)
        | st.integers(0, 999_999).map(lambda i: synthetic_nhs_number(i) or "9990000018"),
        max_size=40,
    )
)
def test_nhs_check_digits_over_columns_agree_with_one_number_at_a_time(
    values: list[str],
) -> None:
    from pamlib.formats._columnar import _valid_nhs
    from pamlib.formats.values import nhs_number_or_none

    numbers = np.frombuffer("".join(values).encode(), dtype=np.uint8).reshape(-1, 10)
    assert _valid_nhs(numbers).tolist() == [nhs_number_or_none(v) == v for v in values]


# -- remembering ids -------------------------------------------------------------------------

ids = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["A1", "A1 ", "a1", "", "x" * 15, "x" * 16, "x" * 300, "x" * 301, "é" * 8]
)


@given(st.lists(st.lists(ids, max_size=20), max_size=8))
def test_seen_ids_behave_like_a_set(blocks: list[list[str]]) -> None:
    seen = SeenIds()
    reference: set[str] = set()
    for block in blocks:
        text = Text(pa.array(block, type=pa.string()))
        dup = seen.check(text, np.arange(len(block)))
        expected = []
        for value in block:
            expected.append(value in reference)
            reference.add(value)
        assert dup.tolist() == expected
    assert len(seen) == len(reference)


#: Ids from few characters, so that blocks repeat them: packable ones (at most 10 letters,
#: digits, ``-`` or ``_``), ones just too long or with another character, and long ones.
few_ids = (
    st.text(alphabet="aA0-_", max_size=12)
    | st.text(alphabet="a.é\x00", max_size=4)
    | st.text(alphabet="ab", min_size=14, max_size=18)
)


def _as_set(blocks: list[list[str]]) -> list[list[bool]]:
    reference: set[str] = set()
    found: list[list[bool]] = []
    for block in blocks:
        found.append([])
        for value in block:
            found[-1].append(value in reference)
            reference.add(value)
    return found


def _seen(seen: SeenIds, blocks: list[list[str]]) -> list[list[bool]]:
    return [
        seen.check(Text(pa.array(b, type=pa.string())), np.arange(len(b))).tolist() for b in blocks
    ]


@given(st.lists(st.lists(few_ids, max_size=30), max_size=8))
def test_seen_ids_equal_a_set_on_repeated_ids(blocks: list[list[str]]) -> None:
    assert _seen(SeenIds(), blocks) == _as_set(blocks)


@given(
    st.lists(st.text(alphabet="AZ059", min_size=1, max_size=9), max_size=300),
    st.integers(1, 80),
    st.lists(st.tuples(st.integers(0, 299), st.integers(0, 299)), max_size=4),
)
def test_seen_ids_equal_a_set_on_ids_mostly_in_order(
    values: list[str], block: int, swaps: list[tuple[int, int]]
) -> None:
    """Ids that rise through the file (the sort finds them in order, and runs are appended
    rather than merged), with repeats and a few out of place: the same as a set, and every
    run of seen ids stays in order."""
    ordered = sorted(values)
    for a, b in swaps:
        if ordered:
            i, j = a % len(ordered), b % len(ordered)
            ordered[i], ordered[j] = ordered[j], ordered[i]
    blocks = [ordered[k : k + block] for k in range(0, len(ordered), block)]
    seen = SeenIds()
    assert _seen(seen, blocks) == _as_set(blocks)
    for run in (*seen._raw.runs, *seen._short.runs):
        assert bool((run[0][1:] >= run[0][:-1]).all())


@given(st.binary(max_size=200), st.integers(0, 7))
def test_bytes_are_found_where_they_are_eight_at_a_time(data: bytes, skip: int) -> None:
    """The pre-pass finds line breaks and quotes where ``flatnonzero`` finds them, in buffers
    of any length (some bytes after the last whole word) and at any alignment."""
    from pamlib.formats._columnar import _positions

    a = np.frombuffer(b'\n\r"' * 3 + data, dtype=np.uint8)[skip:]
    for byte in (10, 13, 34, 0):
        found = _positions(a, byte)
        assert found.dtype == np.intp
        assert found.tolist() == np.flatnonzero(a == byte).tolist()


pairs = st.tuples(st.integers(0, 3), st.integers(0, 5))


@given(st.lists(st.lists(pairs, max_size=30), max_size=10))
def test_two_word_keys_look_again_where_first_words_collide(
    blocks: list[list[tuple[int, int]]],
) -> None:
    """Keys that share their first word (most of them here) are told apart by the second,
    whatever the order they come in, and runs merged on the way keep them apart."""
    from pamlib.formats._columnar import _SortedRuns

    runs = _SortedRuns(2)
    reference: set[tuple[int, int]] = set()
    for block in blocks:
        first = np.array([a for a, _ in block], dtype=np.uint64)
        second = np.array([b for _, b in block], dtype=np.uint64)
        found = runs.check((first, second), np.ones(len(block), dtype=np.bool_)).tolist()
        expected = []
        for pair in block:
            expected.append(pair in reference)
            reference.add(pair)
        assert found == expected
    assert len(runs) == len(reference)


@given(st.lists(st.text(max_size=12), max_size=60))
def test_packed_ids_are_exact(values: list[str]) -> None:
    """An id is packed into one word exactly when it has at most 10 characters of the
    alphabet, and different packed ids never share a word."""
    import re

    from pamlib.formats._columnar import _packed

    text = Text(pa.array(values, type=pa.string()))
    packable, words = _packed(text, np.arange(len(values)))
    expected = [re.fullmatch(r"[0-9A-Za-z_-]{0,10}", v) is not None for v in values]
    assert packable.tolist() == expected
    kept = [v for v, p in zip(values, expected, strict=True) if p]
    assert len(words) == len(kept)
    assert (
        len(set(zip(kept, words.tolist(), strict=True)))
        == len(set(kept))
        == len(set(words.tolist()))
    )


@given(
    st.lists(st.integers(0, 255), min_size=1, max_size=8),
    st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=200),
)
def test_prefix_bits_are_set_as_a_plain_loop_sets_them(
    start: list[int], writes: list[tuple[int, int]]
) -> None:
    """The map of id prefixes gets every bit written, however many writes share a byte."""
    from pamlib.formats._columnar import _set_bits

    size = len(start)
    bitmap = np.array(start, dtype=np.uint8)
    byte = np.array([b % size for b, _ in writes], dtype=np.intp)
    flag = np.array([1 << bit for _, bit in writes], dtype=np.uint8)
    expected = list(start)
    for b, f in zip(byte.tolist(), flag.tolist(), strict=True):
        expected[b] |= f
    _set_bits(bitmap, byte, flag, bitmap[byte])
    assert bitmap.tolist() == expected


@given(st.lists(st.text(alphabet="0aZ9_-é.", max_size=12), max_size=60))
def test_packed_words_hold_six_bits_a_character_and_the_length(values: list[str]) -> None:
    """Each packed id's word, as a plain loop packs it: character ``j`` at bits ``6j`` as its
    place in the alphabet, the length at bit 60."""
    from pamlib.formats._columnar import _PACK_ALPHABET, _packed

    text = Text(pa.array(values, type=pa.string()))
    packable, words = _packed(text, np.arange(len(values)))
    expected = []
    for value, fits in zip(values, packable.tolist(), strict=True):
        if fits:
            word = len(value) << 60
            for j, char in enumerate(value.encode()):
                word |= _PACK_ALPHABET.index(char) << (6 * j)
            expected.append(word)
    assert words.tolist() == expected


def test_seen_ids_merge_runs_in_order() -> None:
    """Many blocks of fresh ids (merged into longer runs as they come), then all of them
    again, in another order: every one is found."""
    seen = SeenIds()
    ids = [f"A{i}" for i in range(20_000)] + [f"id.{i:012d}" for i in range(5_000)]
    for start in range(0, len(ids), 700):
        block = ids[start : start + 700]
        assert not seen.check(Text(pa.array(block)), np.arange(len(block))).any()
    again = ids[::-1]
    assert seen.check(Text(pa.array(again)), np.arange(len(again))).all()
    assert len(seen) == len(ids)


def test_a_row_the_column_checks_reject_but_the_row_checks_accept_stops_the_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row checks word every reject; should they find nothing wrong with a row the column
    checks rejected (a bug in pamlib), the read stops instead of dropping the record with no
    reason."""
    from pamlib.formats._columnar import ReaderBugError
    from pamlib.formats._records import RowValidator

    body = f"P1,,A1,2024-01-01,PAM-13,s,{ANSWERS}\nP2,,A2,not a date,PAM-13,s,{ANSWERS}\n"
    path = write(tmp_path, f"{HEADER}\n{body}".encode())
    assert [(r.line, r.code) for r in rejects(read(path, "columnar"))] == [(3, "date")]
    monkeypatch.setattr(RowValidator, "check", lambda self, fields, line, *, duplicate: (None, []))
    with pytest.raises(ReaderBugError, match="line 3"):
        read(path, "columnar")


@given(
    st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=10), max_size=40),
    st.integers(0, 5),
    st.data(),
)
def test_raw_id_words_are_exact(values: list[str], skip: int, data: st.DataObject) -> None:
    """An id is kept as its own bytes exactly when it has at most 8 bytes and no NUL byte
    (wherever it lies in the data, up to its very end, and in a sliced array), and different
    ids never share a word; for every row or for some rows in order."""
    from pamlib.formats._columnar import _raw_words

    arr = pa.array(["pad"] * skip + values, type=pa.string()).slice(skip)
    every = data.draw(st.booleans(), label="every row")
    picked = (
        [True] * len(values)
        if every
        else data.draw(
            st.lists(st.booleans(), min_size=len(values), max_size=len(values)), label="picked"
        )
    )
    raw, words = _raw_words(Text(arr), np.flatnonzero(picked))
    values = [v for v, p in zip(values, picked, strict=True) if p]
    expected = [len(v.encode("utf-8")) <= 8 and "\x00" not in v for v in values]
    assert raw.tolist() == expected
    kept = [v for v, r in zip(values, expected, strict=True) if r]
    assert len(words) == len(kept)
    pairs = set(zip(kept, words.tolist(), strict=True))
    assert len(pairs) == len(set(kept)) == len(set(words.tolist()))
    # The word is the id's bytes read as a big-endian number.
    assert words.tolist() == [int.from_bytes(v.encode("utf-8"), "big") for v in kept]


#: Date cells near the ISO shape: digits anywhere, wrong separators, other digits than ASCII,
#: impossible days, years 0 and 9999, times of day, spaces around; and any text.
near_dates = st.one_of(
    st.dates().map(str),
    st.text(alphabet="0123456789-", min_size=10, max_size=10),
    st.builds(
        "{}-{:02d}-{:02d}".format,
        st.integers(0, 9999).map("{:04d}".format) | st.sampled_from(["1900", "2000", "2024"]),
        st.integers(0, 13) | st.sampled_from([2, 4, 6, 9, 11]),
        st.integers(27, 32) | st.integers(0, 32),
    ),
    st.sampled_from(
        [
            *("2023-02-29", "2024-02-29", "1900-02-29", "2000-02-29", "2024-04-31"),
            *("0000-01-01", "0001-01-01", "9999-12-31", "2024-00-10", "2024-13-01"),
            *("2024-01-00", "2024-01-32"),
        ]
    ),
    st.tuples(st.dates().map(str), st.text(alphabet=" T:0/\u0663\u00a0", max_size=3)).map(
        lambda p: p[0] + p[1] if p[1][:1] != "/" else p[1] + p[0]
    ),
    st.dates().map(lambda d: f"{d.day}/{d.month}/{d.year:04d}"),
    st.text(max_size=12),
)


@given(st.lists(near_dates, min_size=1, max_size=40), st.booleans())
def test_dates_read_from_bytes_agree_with_the_row_checks(cells: list[str], day_first: bool) -> None:
    """ISO dates read from their bytes give the row checks' dates and rejects exactly, with
    every other spelling left to them: the same days and the same reject messages."""
    import csv
    import tempfile

    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER.split(","))
    for i, cell in enumerate(cells):
        writer.writerow(["P1", "", f"A{i}", cell, "PAM-13", "s", *ANSWERS.split(",")])
    options = ReadOptions(day_first=day_first)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_text(out.getvalue(), encoding="utf-8", newline="")
        found = [read(path, engine, options) for engine in ENGINES]
    days, said = [], []
    for chunks in found:
        days.append(
            sorted(
                (int(line), str(day))
                for c in chunks
                for b in c.batches
                if b.lines is not None
                for line, day in zip(b.lines, b.assessed_on.astype("datetime64[D]"), strict=True)
            )
        )
        said.append([(r.line, r.code, r.message) for r in rejects(chunks)])
    assert days[0] == days[1]
    assert said[0] == said[1]


@given(
    st.lists(near_dates, max_size=40)
    | st.lists(st.dates().map(str), max_size=40)  # every row a date: read without stand-ins
    | st.lists(st.dates().map(str) | st.just("2024-1-1"), max_size=40),
    st.integers(0, 3),
)
def test_iso_days_are_the_dates_parse_date_reads(cells: list[str], skip: int) -> None:
    """A value is read from its bytes exactly when it is ``YYYY-MM-DD`` in ASCII digits and
    :func:`parse_date` reads it, and then as the same day."""
    import datetime as dt
    import re

    from pamlib.formats._columnar import _iso_days
    from pamlib.formats.values import parse_date

    arr = pa.array(["2024-01-01"] * skip + cells, type=pa.string()).slice(skip)
    days, ok = _iso_days(Text(arr))
    for cell, day, fast in zip(cells, days.tolist(), ok.tolist(), strict=True):
        date = parse_date(cell)
        shaped = re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", cell, re.ASCII) is not None
        assert fast == (shaped and date is not None)
        if fast:
            assert dt.date(1970, 1, 1) + dt.timedelta(days=day) == date


@given(
    st.lists(
        st.sampled_from(["1", "2", "3", "4", "", "NA", "na", "0", "5", "/", ":", "11", "n/a"])
        | st.text(max_size=4),
        max_size=40,
    )
)
def test_answer_columns_agree_with_one_answer_at_a_time(cells: list[str]) -> None:
    """An item column's codes, one-byte answers read by arithmetic on the byte and others
    looked up, are :func:`answer_code`'s for each cell."""
    from pamlib.formats._columnar import ColumnChecker
    from pamlib.formats._records import RowValidator
    from pamlib.formats.layout import Layout
    from pamlib.formats.values import InstrumentResolver, answer_code

    options = ReadOptions()
    layout = Layout.resolve(HEADER.split(","), options, source="in.csv")
    resolver = InstrumentResolver(BUILTIN_INSTRUMENTS)
    checker = ColumnChecker(RowValidator(layout, options, resolver, source="in.csv"), "in.csv")
    codes = checker._answers(Text(pa.array(cells, type=pa.string())))
    assert codes.tolist() == [answer_code(c) for c in cells]


@given(
    st.lists(
        st.lists(
            st.sampled_from(["", " ", "\t", "x", "P1", " y ", "\u00a0", "é"]),
            min_size=3,
            max_size=3,
        ),
        max_size=30,
    )
)
def test_blank_rows_go_and_the_absent_values_found_are_the_kept_rows(
    rows: list[list[str]],
) -> None:
    """The split drops the rows whose every field is absent (``is_blank``), and the absent
    values it found on the way, handed to the checks, are those of the rows it keeps."""
    from pamlib.formats._columnar import _without_blank
    from pamlib.formats.values import is_absent

    columns = [pa.array([row[j] for row in rows], type=pa.string()) for j in range(3)]
    lines = np.arange(2, len(rows) + 2, dtype=np.int64)
    kept, kept_lines, n_blank, absent = _without_blank(columns, lines)
    keep = [i for i, row in enumerate(rows) if not all(is_absent(v) for v in row)]
    assert kept_lines.tolist() == [i + 2 for i in keep]
    assert n_blank == len(rows) - len(keep)
    assert all(c.to_pylist() == [rows[i][j] for i in keep] for j, c in enumerate(kept))
    for position, mask in absent.items():
        assert mask.tolist() == [is_absent(rows[i][position]) for i in keep]


@given(
    st.lists(st.sampled_from(["PAM-13", "PAM-10", "", "é", "PAM-1", "AM-13P"]), max_size=30)
    | st.tuples(st.sampled_from(["PAM-13", "", "x", "é"]), st.integers(0, 30)).map(
        lambda vn: [vn[0]] * vn[1]
    ),
    st.integers(0, 3),
)
def test_distinct_values_are_a_dictionary_in_order_of_first_appearance(
    values: list[str], skip: int
) -> None:
    """Each row's index into the distinct values, in the order they first appear: a column of
    one value (read as one run of bytes) as any other, also when the array is a slice."""
    from pamlib.formats._arrow import distinct

    arr = pa.array(["PAM-13"] * skip + values, type=pa.string()).slice(skip)
    indices, found = distinct(Text(arr))
    expected = list(dict.fromkeys(values))
    assert found == expected
    assert indices.dtype == np.int32
    assert indices.tolist() == [expected.index(v) for v in values]
