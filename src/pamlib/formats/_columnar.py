"""Delimited text as columns: how pamlib reads every CSV export.

The file is read in blocks of bytes. A NumPy pre-pass over each block finds where records end
(line breaks outside quotes) and the physical line each record starts on, so line numbers stay
right with quoted line breaks; pyarrow then splits the block's records into string columns, and
the checks of ``RowValidator`` run on whole columns: answers, dates
and instrument names through a lookup on their distinct values, NHS check digits and
identifiers with array arithmetic. A row that fails any check is handed to the row validator for
its problems, which word the reject.

The header is split by the :mod:`csv` module. Where
pyarrow and the pre-pass could disagree — undecodable bytes, a record with the wrong number of
fields, a quoted field left open at the end, a record longer than the field limit
(:data:`~pamlib.formats._records.MAX_FIELD_CHARS`) — the block is split by the :mod:`csv` module
instead. A quote in the middle of an unquoted field, which makes quote counting unreliable,
switches the rest of the file to the :mod:`csv` module.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import sys
from collections.abc import Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from pamlib._arrays import sorted_unique
from pamlib.errors import FormatError, PamlibError, Problem
from pamlib.formats._arrow import Text as _Text
from pamlib.formats._arrow import compute as _compute
from pamlib.formats._arrow import constant_text
from pamlib.formats._arrow import distinct as _distinct
from pamlib.formats._arrow import from_numpy as _from_numpy
from pamlib.formats._arrow import pyarrow_module as _pa
from pamlib.formats._arrow import texts as _texts
from pamlib.formats._records import (
    MAX_FIELD_CHARS,
    RawRecord,
    RowValidator,
    detect_delimiter,
    first_record,
    is_blank,
    make_reject,
    reject_message,
    split_records,
    structural_reject,
)
from pamlib.formats.base import ReadChunk, ReadOptions, RecordBatch, Reject
from pamlib.formats.encoding import Replay, Utf8Input, open_utf8
from pamlib.formats.layout import Layout
from pamlib.formats.values import (
    IMPOSSIBLE_ANSWER,
    InstrumentResolver,
    answer_code,
    label_key,
    nhs_number_or_none,
    parse_date,
)
from pamlib.instruments import Instrument

_BOM = b"\xef\xbb\xbf"
#: Threads a run keeps busy (split, check, score, write): pyarrow splits a block on threads of
#: its own only when more are allowed.
_STAGES = 4
#: Threads a run must be allowed before blocks are split on a thread of their own from the
#: start. With two, the run's three stages (read and check, score, write) keep both cores
#: busy: at a million rows a fourth thread beside them made the run 2-3% slower.
_SPLIT_BESIDE = 3
#: Ids seen in the file past which a run on two threads splits the rest on a thread of its
#: own: the check of repeated ids grows with the ids seen (past two million, their sorted runs
#: are no longer merged into one), and the reading thread, which checks, falls behind. Measured
#: at three and ten million rows: 1.5% and 7.5% slower with no such thread, the same as with
#: one from the start; at a million rows, where no switch happens, 2.8% faster.
_SPLIT_BESIDE_IDS = 1 << 21
_NL, _CR, _QUOTE = 10, 13, 34
_EPOCH = np.datetime64("1970-01-01", "D")
_SLOW = np.int16(IMPOSSIBLE_ANSWER - 10)  # not decided by bytes: look the spelling up
_CACHE = 100_000  # most distinct spellings remembered per file


class ReaderBugError(PamlibError):
    """The column checks rejected a row that the row checks, which word every reject, accept (a
    bug in pamlib): the read stops rather than drop a record without a reason."""


# -- the pre-pass over raw bytes ---------------------------------------------------------------


class _Scan:
    """Complete records found in a buffer: content spans, start lines, where to resume."""

    __slots__ = (
        "anomaly",
        "consumed",
        "ends",
        "lines",
        "lines_consumed",
        "n_records",
        "quoted",
        "starts",
        "unclosed",
    )

    def __init__(self) -> None:
        self.starts: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self.ends: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self.lines: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self.consumed = 0
        self.lines_consumed = 0
        self.n_records = 0  # non-blank records taken
        self.anomaly = False
        self.unclosed = False
        self.quoted = False  # a quote among the bytes consumed


def _scan(
    buf: bytes,
    delimiter: int,
    *,
    final: bool,
    first_line: int,
    max_records: int,
) -> _Scan:
    """Find records in ``buf`` (which starts at a record boundary on ``first_line``).

    Physical lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r``, as for :mod:`csv`. A line
    break ends a record unless an odd number of quotes precede it in the buffer. Blank records
    are dropped; at most ``max_records`` non-blank ones are taken.
    """
    scan = _Scan()
    n = len(buf)
    if n == 0:
        return scan
    has_cr = b"\r" in buf
    a = np.frombuffer(buf, dtype=np.uint8)
    breaks = _line_breaks(a, has_cr=has_cr, final=final)
    quotes: npt.NDArray[np.intp] | None = None
    if b'"' in buf:
        quotes = _positions(a, _QUOTE)
        outside = (np.searchsorted(quotes, breaks) & 1) == 0
        term_index = np.flatnonzero(outside)
    else:
        term_index = np.arange(breaks.shape[0])
    starts, ends, line_of = _spans(breaks[term_index], term_index, n, first_line)
    has_tail = final and starts[-1] < n
    if not has_tail:
        starts, line_of, ends = starts[:-1], line_of[:-1], ends[:-1]
    content_end = ends
    if has_cr:  # content ends before a CRLF's CR
        crlf = (ends > starts) & (ends < n)
        crlf[crlf] = (a[ends[crlf]] == _NL) & (a[ends[crlf] - 1] == _CR)
        content_end = ends - crlf
    nonblank = np.flatnonzero(content_end > starts)
    if nonblank.shape[0] > max_records:
        cut = nonblank[max_records]  # first record not taken
        nonblank = nonblank[:max_records]
        has_tail = False
        n_records = int(cut)
    else:
        n_records = starts.shape[0]
    if n_records == 0:
        return scan
    last = n_records - 1
    tail_taken = has_tail and last == starts.shape[0] - 1
    scan.consumed = n if tail_taken else int(ends[last]) + 1
    scan.lines_consumed = int(breaks.shape[0]) if tail_taken else int(term_index[last]) + 1
    taken = int(nonblank.shape[0])
    if taken and int(nonblank[-1]) == taken - 1:  # no blank record among them: the first ones
        scan.starts, scan.ends, scan.lines = starts[:taken], content_end[:taken], line_of[:taken]
    else:
        scan.starts = starts[nonblank]
        scan.ends = content_end[nonblank]
        scan.lines = line_of[nonblank]
    scan.n_records = taken
    if quotes is not None:
        used = quotes[quotes < scan.consumed]
        scan.quoted = used.shape[0] > 0
        scan.anomaly = not _quotes_open_fields(a, used, delimiter)
        scan.unclosed = tail_taken and used.shape[0] % 2 == 1
    return scan


def _spans(
    terms: npt.NDArray[np.intp], term_index: npt.NDArray[np.intp], n: int, first_line: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Start, end (the terminator) and start line of each record; the last span is the tail
    after the last terminator, a record only where the input ends there."""
    starts = np.empty(terms.shape[0] + 1, dtype=np.int64)
    starts[0] = 0
    starts[1:] = terms + 1
    ends = np.empty(terms.shape[0] + 1, dtype=np.int64)
    ends[:-1] = terms
    ends[-1] = n
    line_of = np.empty(terms.shape[0] + 1, dtype=np.int64)
    line_of[0] = first_line
    line_of[1:] = first_line + term_index + 1
    return starts, ends, line_of


def _positions(a: npt.NDArray[np.uint8], byte: int) -> npt.NDArray[np.intp]:
    """``np.flatnonzero(a == byte)``, found eight bytes at a time: the words of the comparison
    that hold a match are found first, then the matches in those words alone. A line break
    comes once in dozens of bytes, and NumPy's ``flatnonzero`` costs about 3.5 instructions a
    byte it looks at; this looks at an eighth of them, then at the few words that match."""
    hit = a == byte
    whole = hit.shape[0] - hit.shape[0] % 8
    words = hit[:whole].view(np.uint64)  # hit is a new array: contiguous, aligned
    # ``!= 0`` first: NumPy finds the nonzero items of a boolean array much faster than of
    # any other; and ``take``, not ``[]``, to pick items by index
    found = np.flatnonzero(words != 0)
    within = np.flatnonzero(words.take(found).view(np.bool_))  # by word, then byte in it
    positions: npt.NDArray[np.intp] = (found.take(within >> 3) << 3) + (within & 7)
    if whole < hit.shape[0]:
        positions = np.concatenate([positions, whole + np.flatnonzero(hit[whole:])])
    return positions


def _line_breaks(a: npt.NDArray[np.uint8], *, has_cr: bool, final: bool) -> npt.NDArray[np.intp]:
    """Positions of ``\n`` and of lone ``\r``; a ``\r`` at the very end of a non-final buffer
    is left for the next buffer to decide."""
    n = a.shape[0]
    breaks = _positions(a, _NL)
    if has_cr:
        cr = _positions(a, _CR)
        following = a[np.minimum(cr + 1, n - 1)]
        lone = cr[(cr + 1 < n) & (following != _NL)]
        if final and a[n - 1] == _CR:
            lone = np.append(lone, n - 1)
        if lone.size:
            breaks = np.sort(np.concatenate([breaks, lone]))
    return breaks


def _quotes_open_fields(
    a: npt.NDArray[np.uint8], quotes: npt.NDArray[np.intp], delimiter: int
) -> bool:
    """Whether every quote that quote counting takes as opening a field does open one (comes
    first in its field, or right after a closing quote as in ``""``). Otherwise the file has a
    quote inside an unquoted field, which :mod:`csv` keeps as text and counting cannot."""
    opening = quotes[0::2]
    opening = opening[opening > 0]
    before = a[opening - 1]
    allowed = (before == delimiter) | (before == _NL) | (before == _CR) | (before == _QUOTE)
    return bool(allowed.all())


# -- duplicate assessment ids --------------------------------------------------------------------

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S1 = np.uint64(0x9E3779B97F4A7C15)
_S2 = np.uint64(0xD1B54A32D192ED03)
_LONG = 256


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The splitmix64 finaliser: a bijection on 64-bit words that spreads every input bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _keys(
    text: _Text, rows: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """A 128-bit key per value: exact (a bijection of the bytes) up to 15 bytes, a hash above."""
    m = rows.shape[0]
    h1 = np.zeros(m, dtype=np.uint64)
    h2 = np.zeros(m, dtype=np.uint64)
    if m == 0:
        return h1, h2
    lengths = text.lengths[rows]
    longest = int(lengths.max())
    width = max(16, min(_LONG, (longest + 7) // 8 * 8))
    words = text.matrix(rows, width).view("<u8")
    short = lengths <= 15
    if short.any():
        tag = words[short, 1] | (lengths[short].astype(np.uint64) << np.uint64(56))
        t = _mix(tag)
        h2[short] = t
        h1[short] = _mix(words[short, 0] ^ t)
    long = ~short & (lengths <= _LONG)
    if long.any():
        n_bytes = lengths[long]
        a = _mix(n_bytes.astype(np.uint64) ^ _S1)
        b = _mix(n_bytes.astype(np.uint64) ^ _S2)
        for j in range(words.shape[1]):
            # Only the words a value has: the key must not depend on the block's widest value.
            active = n_bytes > 8 * j
            w = words[long, j]
            a = np.where(active, _mix(a ^ w), a)
            b = np.where(active, _mix((b + w) ^ _S1), b)
        h1[long], h2[long] = a, b
    huge = np.flatnonzero(lengths > _LONG)
    for i, value in zip(huge.tolist(), text.values(rows[huge]), strict=True):
        digest = hashlib.blake2b(value.encode("utf-8"), digest_size=16).digest()
        h1[i], h2[i] = np.frombuffer(digest, dtype="<u8")
    return h1, h2


#: The 64 characters an id may be packed from, six bits each (see :func:`_packed`).
_PACK_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
_PACK_CODE = np.full(256, 64, dtype=np.uint8)  # 64: a byte no packed id holds
_PACK_CODE[np.frombuffer(_PACK_ALPHABET, dtype=np.uint8)] = np.arange(64, dtype=np.uint8)
_PACK_CHARS = 10  # 10 characters of six bits and a length of four: one 64-bit word


def _packed(
    text: _Text, rows: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint64]]:
    """Which of the given rows hold an id of at most 10 letters, digits, ``-`` or ``_`` (most
    exports' ids), and for those, the id itself as one 64-bit word: six bits a character and
    the length in the top four bits, a bijection, so two words are equal only for equal ids."""
    lengths = text.lengths[rows]
    fits = lengths <= _PACK_CHARS
    if rows.shape[0] == 0 or not fits.any():
        return fits, np.zeros(0, dtype=np.uint64)
    candidates = rows if fits.all() else rows[fits]
    n_chars = lengths[fits]
    codes = _PACK_CODE.take(text.matrix(candidates, _PACK_CHARS))
    # Padding bytes (zero) code as 64: only those within an id's length must be in the alphabet.
    # einsum sums each row's ten bytes with less overhead a row than ``sum(axis=1)``
    bad = np.einsum("ij->i", (codes == 64).view(np.uint8)) != _PACK_CHARS - n_chars
    words = n_chars.astype(np.uint64) << np.uint64(60)
    codes &= 63
    for j in range(_PACK_CHARS):
        words |= codes[:, j].astype(np.uint64) << np.uint64(6 * j)
    fits[fits] = ~bad
    return fits, words[~bad]


def _every_row(text: _Text, rows: npt.NDArray[np.intp]) -> bool:
    """Whether rows that rise strictly are every row of ``text``, in order."""
    m = rows.shape[0]
    return m == len(text) and (m == 0 or (int(rows[0]) == 0 and int(rows[-1]) == m - 1))


#: Masks that keep a word's first ``n`` bytes (little-endian), by ``n`` from 0 to 8.
_BYTE_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)


def _raw_words(
    text: _Text, rows: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint64]]:
    """Which of the given rows hold an id of at most 8 bytes with no NUL byte, and for those,
    the id's bytes themselves as one 64-bit word, read as a big-endian number: with no NUL
    byte leading an id, two words are equal only for equal ids. Ids of one length then order
    as their bytes do, and a longer id is the larger: ids numbered in file order (``A9``,
    ``A10``, …) come sorted, which the check of repeated ids finds cheaply.

    Each word is read with one unaligned load through a view of the data at every byte
    offset, then cut to the id's length: no matrix of bytes, no table lookup. ``rows`` rise
    strictly; where they are every row (the usual block), lengths and starts are the text's
    own, not picked row by row."""
    every_row = _every_row(text, rows)
    lengths = text.lengths if every_row else text.lengths[rows]
    fits = lengths <= 8
    if rows.shape[0] == 0 or not fits.any():
        return fits, np.zeros(0, dtype=np.uint64)
    offsets = text.offsets[:-1]
    if fits.all():
        starts = (offsets if every_row else offsets[rows]).astype(np.intp)
        n_bytes = lengths
    else:
        starts = offsets[rows[fits]].astype(np.intp)
        n_bytes = lengths[fits]
    data = text.data
    if data.shape[0] < 8:
        data = np.concatenate([data, np.zeros(8, dtype=np.uint8)])
    last = data.shape[0] - 8
    every = np.ndarray((last + 1,), dtype="<u8", buffer=data, strides=(1,))
    if int(starts[-1]) <= last:  # rising rows start in order: the last starts latest
        words = every[starts]
    else:
        at = np.minimum(starts, last)  # an id in the data's last 8 bytes: read those, shift
        words = every[at]
        words >>= ((starts - at) * 8).astype(np.uint64)
    words &= _BYTE_MASKS.take(n_bytes)
    used = data[int(text.offsets[0]) : int(text.offsets[-1])]
    if not used.all():  # a NUL byte somewhere: only the ids without one fit
        nonzero = np.zeros(words.shape[0], dtype=np.uint8)
        for j in range(8):
            nonzero += ((words >> np.uint64(8 * j)) & np.uint64(0xFF)) != 0
        bad = nonzero != n_bytes
        fits[fits] = ~bad
        words, n_bytes = words[~bad], n_bytes[~bad]
    # the bytes read little-endian, zero-padded: swapped and shifted to read them big-endian
    words = words.byteswap()
    words >>= ((8 - n_bytes) * 8).astype(np.uint64)
    return fits, words


def _sorted(keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """``np.sort(keys)``, cheaper for keys mostly in order already: NumPy's stable sort (a
    merge of the runs it finds) takes a tenth of the time of its default sort on keys in a few
    rising runs, and a third more on keys in no order. A step that falls is counted first."""
    n = keys.shape[0]
    falls = int(np.count_nonzero(keys[1:] < keys[:-1]))
    if falls == 0:
        return keys.copy()
    return np.sort(keys, kind="stable" if falls * 64 < n else None)


class _SortedRuns:
    """Keys of one or two 64-bit words in sorted runs (by the first word), merged as they grow:
    which keys were seen, in the order given."""

    _MAX_RUN = 1 << 21

    def __init__(self, words: int) -> None:
        self.words = words
        self.runs: list[tuple[npt.NDArray[np.uint64], ...]] = []

    def __len__(self) -> int:
        return sum(r[0].shape[0] for r in self.runs)

    def check(
        self, keys: tuple[npt.NDArray[np.uint64], ...], maybe_seen: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.bool_]:
        """True where a key was seen before (in the runs, or earlier among ``keys``); only the
        keys marked ``maybe_seen`` are looked for in the runs. Then remember the keys."""
        first = keys[0]
        m = first.shape[0]
        dup = np.zeros(m, dtype=np.bool_)
        if m == 0:
            return dup
        if len(keys) == 1:
            # Keys of one word need no order back to the rows when none repeats: a plain sort
            # takes a third of the time of ``argsort``.
            s1 = _sorted(first)
            if not bool((s1[1:] == s1[:-1]).any()):
                look = np.flatnonzero(maybe_seen)
                if look.size:
                    dup[look] = self._search((first[look],))
                    if dup.any():
                        s1 = np.sort(first[~dup])
                if s1.shape[0]:
                    self.runs.append((s1,))
                    self._merge()
                return dup
        order = np.argsort(first)
        s1 = first[order]
        if bool((s1[1:] == s1[:-1]).any()):  # repeats within these keys: the first one stays
            order = np.lexsort(keys[::-1])  # stable: equal keys in the order given
            ordered = tuple(k[order] for k in keys)
            same = np.ones(m - 1, dtype=np.bool_)
            for k in ordered:
                same &= k[1:] == k[:-1]
            dup[order[1:][same]] = True
        else:
            ordered = (s1, *(k[order] for k in keys[1:]))
        look = np.flatnonzero(maybe_seen & ~dup)
        if look.size:
            dup[look] = self._search(tuple(k[look] for k in keys))
        fresh = ~dup[order]
        if fresh.any():
            self.runs.append(tuple(k[fresh] for k in ordered))
            self._merge()
        return dup

    def _search(self, query: tuple[npt.NDArray[np.uint64], ...]) -> npt.NDArray[np.bool_]:
        # Looked for in rising order: NumPy's binary search then starts each key's search where
        # the last one ended and reads a run in order, where keys in the block's order read
        # it at random (17,000 keys in a run of two million: 7.4 ms, against 1.5 ms sorted).
        order = np.argsort(query[0])
        q1 = query[0][order]
        q2 = query[1][order] if self.words > 1 else q1
        hit = np.zeros(q1.shape[0], dtype=np.bool_)
        for run in self.runs:
            r1 = run[0]
            lo = np.searchsorted(r1, q1)
            at = np.minimum(lo, r1.shape[0] - 1)
            found = r1[at] == q1
            if self.words == 1 or not found.any():
                hit |= found
                continue
            r2 = run[1]
            hit |= found & (r2[at] == q2)
            for i in np.flatnonzero(found & ~hit).tolist():  # first word shared: rare
                j = int(lo[i])
                while j < r1.shape[0] and r1[j] == q1[i]:
                    if r2[j] == q2[i]:
                        hit[i] = True
                        break
                    j += 1
        in_order = np.empty_like(hit)
        in_order[order] = hit
        return in_order

    def _merge(self) -> None:
        """Merge the newest runs while they are of similar size, up to :attr:`_MAX_RUN` keys
        (so a merge never needs more than a few tens of MiB at once): each key of the newer run
        goes in after the older run's keys not above it, in linear time."""
        runs = self.runs
        while len(runs) > 1:
            n_new, n_old = runs[-1][0].shape[0], runs[-2][0].shape[0]
            if n_new * 2 < n_old or n_new + n_old > self._MAX_RUN:
                return
            new, old = runs.pop(), runs.pop()
            if new[0][0] >= old[0][-1]:  # the newer keys all after the older (rising ids)
                runs.append(tuple(np.concatenate(pair) for pair in zip(old, new, strict=True)))
                continue
            at = np.searchsorted(old[0], new[0], side="right") + np.arange(n_new)
            from_old = np.ones(n_new + n_old, dtype=np.bool_)
            from_old[at] = False
            merged = []
            for a, b in zip(old, new, strict=True):
                c = np.empty(n_new + n_old, dtype=np.uint64)
                c[at] = b
                c[from_old] = a
                merged.append(c)
            runs.append(tuple(merged))


class SeenIds:
    """Every assessment id seen so far in a file, to reject repeats.

    Nothing is taken for another id by chance where it matters most: an id of at most 8 bytes
    with no NUL byte is kept exactly as its own bytes in one 64-bit word; one of 9 or 10
    letters, digits, ``-`` or ``_`` (what most other exports use) exactly too, packed into 8
    bytes; any other id up to 15 bytes exactly in 16 bytes; a longer one as a 128-bit hash (for
    keys that behave as random, the chance that two different ids are taken for one another is
    below 1e-20 even for a billion ids). Keys are kept in sorted runs merged as they grow. A
    fixed 4 MiB map of which key prefixes occur lets most new ids skip the search altogether.
    """

    _PREFIX_BITS = 25

    def __init__(self) -> None:
        self._raw = _SortedRuns(1)
        self._short = _SortedRuns(1)
        self._long = _SortedRuns(2)
        self._prefixes = np.zeros(1 << (self._PREFIX_BITS - 3), dtype=np.uint8)  # one bit each

    def __len__(self) -> int:
        return len(self._raw) + len(self._short) + len(self._long)

    def check(self, text: _Text, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        """For the given rows (in file order): True where the id was seen before; then remember
        the ids."""
        m = rows.shape[0]
        dup = np.zeros(m, dtype=np.bool_)
        if m == 0:
            return dup
        raw, words = _raw_words(text, rows)
        if words.shape[0]:
            # ids that rise through the file rise as words too (see _raw_words), which the
            # sort of each block's words and the merge of runs find cheaply
            dup[raw] = self._check(self._raw, (words,), _mix(words))
        if raw.all():
            return dup
        # Each id falls in one class by its bytes alone, so equal ids always meet in one.
        others = np.flatnonzero(~raw)
        short, words = _packed(text, rows[others])
        if words.shape[0]:
            dup[others[short]] = self._check(self._short, (words,), _mix(words))
        if not short.all():
            long = others[~short]
            h1, h2 = _keys(text, rows[long])
            dup[long] = self._check(self._long, (h1, h2), h1)
        return dup

    def _check(
        self,
        runs: _SortedRuns,
        keys: tuple[npt.NDArray[np.uint64], ...],
        spread: npt.NDArray[np.uint64],
    ) -> npt.NDArray[np.bool_]:
        prefix = (spread >> np.uint64(64 - self._PREFIX_BITS)).astype(np.intp)
        byte = prefix >> 3
        flag = np.left_shift(1, (prefix & 7).astype(np.uint8), dtype=np.uint8)
        held = self._prefixes[byte]
        dup = runs.check(keys, (held & flag) != 0)
        _set_bits(self._prefixes, byte, flag, held)
        return dup


def _set_bits(
    bitmap: npt.NDArray[np.uint8],
    byte: npt.NDArray[np.intp],
    flag: npt.NDArray[np.uint8],
    held: npt.NDArray[np.uint8],
) -> None:
    """``bitmap[byte[i]] |= flag[i]`` for every ``i`` (``held`` is ``bitmap[byte]``), as
    ``np.bitwise_or.at`` does, at a fraction of its cost.

    One plain assignment sets them all except where two rows share a byte, where the last
    write wins: those few are written again until every bit holds. Bits are only added, and
    each round the last write to each byte holds, so at most seven rounds follow the first."""
    bitmap[byte] = held | flag
    while True:
        missed = np.flatnonzero((bitmap[byte] & flag) == 0)
        if missed.size == 0:
            return
        byte, flag = byte[missed], flag[missed]
        bitmap[byte] |= flag


# -- checking columns ----------------------------------------------------------------------------


class _Take:
    """Picks the given rows of an Arrow array."""

    def __init__(self, indices: Any) -> None:
        self.indices = indices

    def __call__(self, column: Any) -> Any:
        return _compute().take(column, self.indices)


def _everything(column: Any) -> Any:
    """Picks every row (no copy), for blocks where every row is valid."""
    return column


class _Rows:
    """One block of rows under check: the columns and what the checks found so far."""

    def __init__(
        self,
        columns: list[Any],
        lines: npt.NDArray[np.int64],
        absent: Mapping[int, npt.NDArray[np.bool_]] | None = None,
    ) -> None:
        self.columns = columns
        self.lines = lines
        self.n = n = int(lines.shape[0])
        self._texts: dict[int, _Text] = {}
        self._absent = dict(absent or {})
        self.invalid = np.zeros(n, dtype=np.bool_)
        self.dup = np.zeros(n, dtype=np.bool_)
        #: Rows of an instrument the table has no column for some item of.
        self.missing = np.zeros(n, dtype=np.bool_)
        self.pid_absent = np.ones(n, dtype=np.bool_)
        self.nhs: Any = None
        self.days = np.zeros(n, dtype=np.int64)
        self.which = np.full(n, -1, dtype=np.int16)
        self.codes = np.zeros((n, 0), dtype=np.int16)
        #: By column position: the rows whose one problem is that column's value (an
        #: unreadable date, an unknown instrument), so that rows spelling it alike share the
        #: record checks' message.
        self.alone: dict[int, npt.NDArray[np.bool_]] = {}

    def text(self, position: int) -> _Text:
        if position not in self._texts:
            self._texts[position] = _Text(self.columns[position])
        return self._texts[position]

    def everywhere(self) -> npt.NDArray[np.bool_]:
        return np.ones(self.n, dtype=np.bool_)

    def absent(self, position: int) -> npt.NDArray[np.bool_]:
        """Where the column's values are absent: found once (the split may have found it)."""
        if position not in self._absent:
            self._absent[position] = self.text(position).absent()
        return self._absent[position]


def _kinds(which: npt.NDArray[np.int16]) -> list[int]:
    """The instruments found (``-1``: none), in order: most blocks hold one, found without a
    sort."""
    lo, hi = int(which.min()), int(which.max())
    if lo == hi:
        return [lo] if lo >= 0 else []
    return [int(k) for k in sorted_unique(which[which >= 0]).tolist()]


#: The check digit (10: none is valid) of each weighted sum of nine digits, up to that of nine
#: bytes of 255 (a byte that is not a digit, which the check refuses anyway): the eleven check
#: digits repeated, made from bytes because NumPy's remainder over the table cost 0.8 million
#: instructions at every start of the command line.
_NHS_CHECK = np.frombuffer(bytes([0, *range(10, 0, -1)]) * 1252, dtype=np.uint8)[: 255 * 54 + 1]


def _valid_nhs(numbers: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Which rows of ten bytes are ten digits whose last is the check digit of the others
    (modulus 11), position by position: NumPy sums along rows of ten slowly, and the digits
    are first laid out a position a row, so that every step reads its bytes in order."""
    # A byte below "0" wraps above 9. Subtracted as the rows lie, then laid out a position a
    # row: subtracting straight from the transposed view reads every byte out of order, at
    # three times the work of the two steps.
    digits = np.ascontiguousarray(np.subtract(numbers, np.uint8(0x30)).T)
    bad = np.maximum.reduce(digits) > 9
    total = digits[0].astype(np.int16) * np.int16(10)
    for j in range(1, 9):
        total += digits[j] * np.int16(10 - j)  # at most 255 × 54: no overflow
    check = _NHS_CHECK.take(total)  # a table, not NumPy's remainder of 16-bit integers
    ok: npt.NDArray[np.bool_] = ~bad & (check != 10) & (check == digits[9])
    return ok


_DASH = 45
_ISO_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9]  # where ``YYYY-MM-DD`` holds its digits
#: Days in each month (1 to 12) of a common year, and the days of the year before it.
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)
_DAYS_BEFORE = np.concatenate([[0, 0], np.cumsum(_MONTH_DAYS[1:12])]).astype(np.int32)
_YEARS_BEFORE = np.arange(-1, 9999, dtype=np.int32)  # whole years before each year 0 to 9999
#: Days since 1970-01-01 (719,162 days after 0001-01-01) of 1 January of every year 0 to 9999
#: (year 0 is never read).
_YEAR_STARTS = (
    _YEARS_BEFORE * 365
    + _YEARS_BEFORE // 4
    - _YEARS_BEFORE // 100
    + _YEARS_BEFORE // 400
    - np.int32(719162)
).astype(np.int32)


def _iso_days(text: _Text) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Days since 1970-01-01 of the values that are exactly a possible ``YYYY-MM-DD`` date in
    ASCII digits (what most exports write), and where that holds: such a value has nothing
    for :func:`~pamlib.formats.values.parse_date` to strip or ignore, so it reads the same
    date. Everything else is left to that function.

    Read from the bytes, one position at a time over every row: no division, the days from a
    table of years' first days (the proleptic Gregorian calendar of :mod:`datetime`)."""
    n = len(text)
    days = np.zeros(n, dtype=np.int64)
    ok = text.lengths == 10
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return days, ok
    t = text.matrix(rows, 10).T.copy()  # one row a position: every step below reads in order
    good = (t[4] == _DASH) & (t[7] == _DASH)
    digits = t[_ISO_DIGITS]
    digits -= np.uint8(0x30)  # a byte below "0" wraps above 9
    good &= np.maximum.reduce(digits) <= 9
    w = digits.astype(np.int16)
    century = w[0] * np.int16(10) + w[1]
    within = w[2] * np.int16(10) + w[3]
    year = century * np.int16(100) + within
    month = w[4] * np.int16(10) + w[5]
    day = w[6] * np.int16(10) + w[7]
    good &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
    # Where every row is a date so far (the usual column), none needs a stand-in to look up.
    every = bool(good.all())
    if not every:
        month = np.where(good, month, np.int16(1))  # a month to look up, for every row
    leap = ((within & 3) == 0) & ((within != 0) | ((century & 3) == 0))
    good &= day <= _MONTH_DAYS.take(month) + (leap & (month == 2))
    found = _YEAR_STARTS.take(year if every else np.where(good, year, np.int16(1970)))
    found += _DAYS_BEFORE.take(month) + (leap & (month > 2)) + day - 1
    if every and bool(good.all()):
        if rows.shape[0] == n:
            days[:] = found  # every row: in order, no place to look up
        else:
            days[rows] = found
        return days, ok
    days[rows] = np.where(good, found, 0)
    ok[rows] = good
    return days, ok


class ColumnChecker:
    """The checks of ``RowValidator``, over whole columns."""

    def __init__(
        self, validator: RowValidator, source: str, *, unit: str = "line", track_ids: bool = True
    ) -> None:
        self.validator = validator
        self.layout = validator.layout
        self.source = source
        self.unit = unit
        self.resolver: InstrumentResolver = validator.resolver
        self.labels = {label_key(k): v for k, v in validator.options.answer_labels.items()}
        self.day_first = validator.options.day_first
        #: Ids seen so far; ``None`` where the caller checks repeats itself (or not at all).
        self.seen: SeenIds | None = SeenIds() if track_ids else None
        self.instruments: list[Instrument] = []
        self._instrument_index: dict[str, int] = {}
        # Distinct spellings seen so far (few: answer labels, dates), so each is read once.
        self._answer_cache: dict[str, int] = {}
        self._date_cache: dict[str, int] = {}

    def _index_of(self, instrument: Instrument | None) -> int:
        if instrument is None:
            return -1
        index = self._instrument_index.get(instrument.id)
        if index is None:
            index = self._instrument_index[instrument.id] = len(self.instruments)
            self.instruments.append(instrument)
        return index

    def _answers(self, text: _Text) -> npt.NDArray[np.int16]:
        """Answer codes of one item column: common spellings by bytes, the rest by lookup."""
        lengths = text.lengths
        # ``take`` rather than ``[]``: indexing with indices that are not ``intp`` is slower.
        first = text.data.take(text.offsets[:-1], mode="clip")
        # ``1``–``4`` by arithmetic on the byte: cheaper than looking each one up.
        from_one = first - np.uint8(ord("1"))  # a byte below "1" wraps above 3
        # widened as it is added to, then the other bytes overwritten: half np.where's work
        codes: npt.NDArray[np.int16] = np.add(from_one, np.int16(1), dtype=np.int16)
        np.copyto(codes, _SLOW, where=from_one > 3)
        other = np.flatnonzero(lengths != 1)  # empty or longer: few, so fixed up one by one
        if other.size:
            size = lengths[other]
            codes[other] = np.where(size == 0, 0, _SLOW)
            two = other[size == 2]
            if two.size:
                second = text.data[text.offsets[:-1][two] + 1]
                na = ((first[two] | 0x20) == ord("n")) & ((second | 0x20) == ord("a"))
                codes[two[na]] = -1
        slow = np.flatnonzero(codes == _SLOW)
        if slow.size:
            sub = _Text(_compute().take(text.arr, _from_numpy(slow.astype(np.int64))))
            indices, distinct = _distinct(sub)
            table = np.array([self._answer(v) for v in distinct], dtype=np.int16)
            codes[slow] = table[indices]
        return codes

    def _answer(self, text: str) -> int:
        code = self._answer_cache.get(text)
        if code is None:
            code = answer_code(text, self.labels)
            if len(self._answer_cache) < _CACHE:
                self._answer_cache[text] = code
        return code

    def _dates(self, text: _Text) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Days since 1970-01-01 and where the date is readable: ISO dates from their bytes,
        other spellings once per distinct value."""
        days, ok = _iso_days(text)
        rest = np.flatnonzero(~ok)
        if rest.size:
            sub = _Text(_compute().take(text.arr, _from_numpy(rest.astype(np.int64))))
            days[rest], ok[rest] = self._other_dates(sub)
        return days, ok

    def _other_dates(self, text: _Text) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        indices, distinct = _distinct(text)
        days = np.zeros(len(distinct), dtype=np.int64)
        ok = np.zeros(len(distinct), dtype=np.bool_)
        for i, value in enumerate(distinct):
            day = self._date_cache.get(value)
            if day is None:
                date = parse_date(value, day_first=self.day_first)
                day = -1 << 62 if date is None else int(np.datetime64(date, "D").astype(np.int64))
                if len(self._date_cache) < _CACHE:
                    self._date_cache[value] = day
            if day != -1 << 62:
                days[i] = day
                ok[i] = True
        return days.take(indices), ok.take(indices)

    def _nhs(self, text: _Text, absent: npt.NDArray[np.bool_]) -> tuple[Any, npt.NDArray[np.bool_]]:
        """Normalised NHS numbers (as Arrow strings) and where they are valid."""
        pa = _pa()
        pc = _compute()
        n = len(text)
        present = ~absent
        clean = text
        if bool((present & (text.lengths != 10)).any()):
            clean = _Text(pc.remove_regex(text.arr, r"[ \t\n\r\f\v-]+"))
        ok = np.zeros(n, dtype=np.bool_)
        ten = np.flatnonzero(present & (clean.lengths == 10))
        if ten.size:
            ok[ten] = _valid_nhs(clean.matrix(ten, 10))
        out = clean.arr
        slow = np.flatnonzero(present & ~ok)
        if slow.size:
            fixed = [nhs_number_or_none(v) for v in text.values(slow)]
            good = np.array([f is not None for f in fixed], dtype=np.bool_)
            ok[slow] = good
            if good.any():
                mask = np.zeros(n, dtype=np.bool_)
                mask[slow[good]] = True
                out = pc.replace_with_mask(
                    out, pa.array(mask), pa.array([f for f in fixed if f is not None])
                )
        blank = np.flatnonzero(absent & (text.lengths > 0))
        if blank.size:
            mask = np.zeros(n, dtype=np.bool_)
            mask[blank] = True
            out = pc.if_else(_from_numpy(mask), "", out)
        return out, ok

    def check(
        self,
        columns: list[Any],
        lines: npt.NDArray[np.int64],
        *,
        first: npt.NDArray[np.bool_] | None = None,
        absent: Mapping[int, npt.NDArray[np.bool_]] | None = None,
    ) -> tuple[list[RecordBatch], list[Reject]]:
        """Check one block of rows given as string columns (one per source field).

        ``first`` marks the rows whose assessment id appears there for the first time, where
        the caller tracks repeats itself (across the partitions of a distributed job); without
        it, repeats are found among the ids this checker has seen, if it tracks them.
        ``absent`` holds, by column position, where values are absent (``Text.absent``), for
        columns the caller has already looked at.
        """
        if lines.shape[0] == 0:
            return [], []
        rows = _Rows(columns, lines, absent)
        self._identity(rows)
        self._ids(rows, first)
        self._content(rows)
        only_repeated = rows.dup & ~rows.invalid & ~rows.missing
        only_missing = rows.missing & ~rows.invalid & ~rows.dup
        rows.invalid |= rows.dup | rows.missing
        rejects = self._rejects(
            columns,
            lines,
            np.flatnonzero(rows.invalid),
            dup=rows.dup,
            only_repeated=only_repeated,
            only_missing=np.where(only_missing, rows.which, -1),
            alone={k: v & ~rows.dup for k, v in rows.alone.items()},
        )
        return self._batches(rows), rejects

    def _identity(self, rows: _Rows) -> None:
        """No identity at all, or an NHS number that is not one."""
        cols = self.layout.columns
        if "patient_id" in cols:
            rows.pid_absent = rows.absent(cols["patient_id"])
        nhs_absent = rows.everywhere()
        if "nhs_number" in cols:
            nhs_absent = rows.absent(cols["nhs_number"])
            rows.nhs, nhs_ok = self._nhs(rows.text(cols["nhs_number"]), nhs_absent)
            rows.invalid |= ~nhs_absent & ~nhs_ok
        rows.invalid |= rows.pid_absent & nhs_absent

    def _ids(self, rows: _Rows, first: npt.NDArray[np.bool_] | None) -> None:
        """Empty and repeated assessment ids (every id of a readable record counts as seen)."""
        position = self.layout.columns.get("assessment_id")
        if position is None:
            return
        ids = rows.text(position)
        absent = rows.absent(position)
        eligible = np.flatnonzero(~absent)
        if first is not None:
            rows.dup[eligible] = ~np.asarray(first, dtype=np.bool_)[eligible]
        elif self.seen is not None:
            rows.dup[eligible] = self.seen.check(ids, eligible)
        rows.invalid |= absent  # repeats are added once the other checks are done

    def _content(self, rows: _Rows) -> None:
        """Dates, instruments and answers."""
        layout = self.layout
        cols = layout.columns
        before = rows.invalid.copy()  # the identity's and the id's problems
        rows.days, date_ok = self._dates(rows.text(cols["assessed_on"]))
        bad_date = ~date_ok
        rows.invalid |= bad_date
        if "instrument" in cols:
            indices, distinct = _distinct(rows.text(cols["instrument"]))
            table = np.array(
                [self._index_of(self.resolver.resolve(v)) for v in distinct], dtype=np.int16
            )
            rows.which = table.take(indices)
        else:
            rows.which[:] = self._index_of(self.resolver.default)
        unknown = rows.which < 0
        rows.invalid |= unknown
        n_cols = len(layout.items)
        rows.codes = np.zeros((rows.n, n_cols), dtype=np.int16)
        unreadable = []  # item columns with some answer that is not one
        answers_bad = np.zeros(rows.n, dtype=np.bool_)
        for k, position in enumerate(layout.items):
            if position is not None:
                column = self._answers(rows.text(position))
                rows.codes[:, k] = column
                if int(column.min()) < -1:
                    unreadable.append(k)
        for k in _kinds(rows.which):
            instrument = self.instruments[k]
            if self.validator.missing_columns(instrument) is not None:
                rows.missing |= rows.which == k  # the table lacks one of its items
            size = instrument.n_items
            if n_cols <= size and not unreadable:
                continue
            bad = np.zeros(rows.n, dtype=np.bool_)
            for item in unreadable:
                if item < size:
                    bad |= rows.codes[:, item] < -1
            if n_cols > size:
                bad |= (rows.codes[:, size:] != 0).any(axis=1)
            rows.invalid |= (rows.which == k) & bad
            answers_bad |= (rows.which == k) & bad
        if bool((bad_date | unknown).any()):
            # what else the record checks would find: the answers (of every item column where
            # the instrument is unknown) and an instrument's missing item column
            elsewhere = before | rows.missing | answers_bad
            if unreadable:
                elsewhere |= unknown & (rows.codes[:, unreadable] < -1).any(axis=1)
            if "instrument" in cols:
                rows.alone[cols["instrument"]] = unknown & ~bad_date & ~elsewhere
            rows.alone[cols["assessed_on"]] = bad_date & ~unknown & ~elsewhere

    def _batches(self, rows: _Rows) -> list[RecordBatch]:
        """The valid rows as one record batch per instrument, in order of first appearance."""
        pa = _pa()
        pc = _compute()
        layout = self.layout
        cols = layout.columns
        columns = rows.columns
        valid = ~rows.invalid
        pid = columns[cols["patient_id"]] if "patient_id" in cols else None
        if pid is not None and bool(
            (rows.pid_absent & (rows.text(cols["patient_id"]).lengths > 0)).any()
        ):
            pid = pc.if_else(_from_numpy(rows.pid_absent), "", pid)
        site = columns[cols["site"]] if "site" in cols else None
        batches = []
        kinds = self._first_appearance(rows.which, valid)
        everything = len(kinds) == 1 and bool(valid.all())
        for k in kinds:
            # Every row of the block: a slice, where fancy indexing would copy row by row.
            index: Any = slice(None) if everything else np.flatnonzero(valid & (rows.which == k))
            take = (
                _everything if everything else _Take(_from_numpy(np.asarray(index, dtype=np.int64)))
            )
            instrument = self.instruments[k]
            size = instrument.n_items
            width = min(size, rows.codes.shape[1])
            codes = np.zeros((rows.n if everything else index.shape[0], size), dtype=np.int8)
            codes[:, :width] = rows.codes[index, :width]
            blank = constant_text("", codes.shape[0])
            if "assessment_id" in cols:
                aid = take(columns[cols["assessment_id"]])
            else:
                numbers = pc.cast(_from_numpy(rows.lines[index]), pa.string())
                aid = pc.join(f"{Path(self.source).name}:", numbers, "")
            batches.append(
                RecordBatch(
                    instrument=instrument,
                    assessment_id=aid,
                    patient_id=blank if pid is None else take(pid),
                    nhs_number=blank if rows.nhs is None else take(rows.nhs),
                    assessed_on=_EPOCH + rows.days[index].astype("timedelta64[D]"),
                    site=blank if site is None else take(site),
                    codes=codes,
                    extras={
                        name: take(columns[position])
                        for position, name in zip(layout.extras, layout.extra_names, strict=True)
                        if name != "site"
                    },
                    lines=rows.lines[index],
                    source=self.source,
                    unit=self.unit,
                )
            )
        return batches

    @staticmethod
    def _first_appearance(which: npt.NDArray[np.int16], valid: npt.NDArray[np.bool_]) -> list[int]:
        present = which[valid]
        if present.size == 0:
            return []
        if int(present.min()) == int(present.max()):  # one instrument: no sort
            return [int(present[0])]
        kinds, first = np.unique(present, return_index=True)
        return [int(k) for k in kinds[np.argsort(first)]]

    def _rejects(
        self,
        columns: list[Any],
        lines: npt.NDArray[np.int64],
        rows: npt.NDArray[np.intp],
        *,
        dup: npt.NDArray[np.bool_],
        only_repeated: npt.NDArray[np.bool_],
        only_missing: npt.NDArray[np.int16],
        alone: Mapping[int, npt.NDArray[np.bool_]],
    ) -> list[Reject]:
        """The rejects of ``rows``, each checked again by the record checks for its message
        (and as a cross-check). ``only_repeated`` marks the rows whose one problem is a
        repeated id, and ``only_missing`` holds the instrument (else ``-1``) of the rows whose
        one problem is an item the table has no column for: their message is known without
        that, so an export appended to itself, or one whose mapping missed a column, costs
        little more to reject than to read. ``alone`` marks, by column, the rows whose one
        problem is that column's value: the first row of each spelling is checked, and the
        others that spell it alike take its code and message (an export whose every date is in
        an unreadable order is rejected at a fraction of a check a row)."""
        if rows.size == 0:
            return []
        take = _from_numpy(rows.astype(np.int64))
        # A record's fields in one tuple each: the columns' values, which are text
        values = [_compute().take(col, take).to_pylist() for col in columns]
        # the column of the rows whose one problem is that column's value, else -1
        sharing = np.full(rows.shape[0], -1, dtype=np.intp)
        for position, mask in alone.items():
            sharing[mask[rows]] = position
        known: dict[tuple[int, str], tuple[str, str] | None] = {}
        records = zip(*values, strict=True)
        repeat_message = reject_message([self.validator.repeat_problem()])
        rejects = []
        missing = [self.validator.missing_columns(i) for i in self.instruments]
        missing_messages = ["" if p is None else reject_message([p]) for p in missing]
        source, unit, fields_of = self.source, self.unit, self.validator.fields_of
        header = self.layout.header
        for i, record, line, shared in zip(
            rows.tolist(), records, lines[rows].tolist(), sharing.tolist(), strict=True
        ):
            fields = list(record)
            code = ""
            spelling = None if shared < 0 else (shared, fields[shared])
            if only_repeated[i]:
                code, message = "duplicate-assessment-id", repeat_message
            elif only_missing[i] >= 0:
                code, message = "missing-item-column", missing_messages[only_missing[i]]
            elif spelling is not None and (same := known.get(spelling)) is not None:
                code, message = same
            if code:  # known without the record checks: the reject made as make_reject does
                location = f"{unit} {line}"
                fields_by_name = fields_of(fields)
                rejects.append(Reject(source, location, code, message, fields_by_name, line))
                continue
            row, problems = self.validator.check(fields, line, duplicate=bool(dup[i]))
            if row is not None or not problems:
                raise ReaderBugError(
                    f"the columnar checks rejected line {line} but the record checks accept it"
                )
            message = reject_message(problems)
            fields_by_name = fields_of(fields)
            code = problems[0].code
            if spelling is not None and spelling not in known:
                # shared only where the record checks, too, found that one problem
                one = len(problems) == 1 and problems[0].where == header[spelling[0]]
                known[spelling] = (code, message) if one else None
            rejects.append(
                make_reject(source, line, code, message, fields=fields_by_name, unit=unit)
            )
        return rejects


# -- reading blocks ------------------------------------------------------------------------------


def _records_from_text(text: str, delimiter: str, first_line: int) -> Iterator[RawRecord]:
    return split_records(io.StringIO(text, newline=""), delimiter=delimiter, first_line=first_line)


class _Block:
    """Records of one block split by the :mod:`csv` module: rejects, good rows as columns."""

    def __init__(self, n_fields: int, validator: RowValidator, source: str, encoding: str) -> None:
        self.n_fields = n_fields
        self.validator = validator
        self.source = source
        self.encoding = encoding

    def split(
        self, records: Iterable[RawRecord]
    ) -> tuple[list[Any], npt.NDArray[np.int64], list[Reject], int, int]:
        good: list[list[str]] = []
        lines: list[int] = []
        rejects: list[Reject] = []
        n_read = n_blank = 0
        for record in records:
            n_read += 1
            if is_blank(record):
                n_blank += 1
                continue
            structural = structural_reject(record, self.n_fields, encoding=self.encoding)
            if structural is None:
                good.append(record.fields)
                lines.append(record.line)
                continue
            code, message = structural
            keep_fields = code in ("encoding", "field-too-long")
            rejects.append(
                make_reject(
                    self.source,
                    record.line,
                    code,
                    message,
                    fields=self.validator.fields_of(record.fields) if keep_fields else None,
                    record="" if keep_fields else record.raw,
                )
            )
        columns = [_texts([row[i] for row in good]) for i in range(self.n_fields)]
        return columns, np.asarray(lines, dtype=np.int64), rejects, n_read, n_blank


def read_columnar(
    source: str | os.PathLike[str],
    options: ReadOptions,
    instruments: Iterable[Instrument],
) -> Iterator[ReadChunk]:
    """Read a delimited export as chunks of columns (see the module documentation).

    The first chunk holds no records; it names the source's columns before any are read. With
    ``options.threads`` over one, the next block is found and split on a thread of its own
    while the last one is checked (and by pyarrow on threads of its own too, with more than four
    threads allowed); and the first block is split while the file's encoding is still being
    checked (:func:`~pamlib.formats.encoding.open_utf8`), nothing given before the check says
    UTF-8. A file that is not UTF-8 after all is read again from the start, in the encoding the
    rule finds.
    """
    instruments = tuple(instruments)
    opened = open_utf8(source, options.settings, check_beside=options.threads > 1)
    if opened.check is None:
        yield from _read_opened(opened, options, instruments)
        return
    parts: Iterator[_Part] | None = None
    try:
        try:
            reader = _BlockReader(opened, options, instruments)
            first = reader.header_chunk()
            # The first block is split now, while the check runs: with a thread of its own
            # for splitting, there; else here, before waiting for the check.
            parts = ahead = _split_parts(reader, options)
        except Exception:
            if opened.check.utf8():
                raise  # read as UTF-8, as the rule says: the error stands
            utf8 = False
        else:
            utf8 = opened.check.utf8()
        if utf8:
            yield first
            for part in ahead:
                yield reader.chunk(part)
            return
    finally:
        opened.check.cancel()
        close = getattr(parts, "close", None)
        if close is not None:
            close()
        opened.stream.close()
    # Not UTF-8: what was split is dropped, nothing of it was given.
    yield from _read_opened(open_utf8(source, options.settings), options, instruments)


def _read_opened(
    opened: Utf8Input, options: ReadOptions, instruments: tuple[Instrument, ...]
) -> Iterator[ReadChunk]:
    parts: Iterator[_Part] | None = None
    try:
        reader = _BlockReader(opened, options, instruments)
        yield reader.header_chunk()
        parts = _split_parts(reader, options)
        for part in parts:
            yield reader.chunk(part)
    finally:
        close = getattr(parts, "close", None)
        if close is not None:
            close()
        if opened.stream is not sys.stdin.buffer:
            opened.stream.close()


def _without_blank(
    columns: list[Any], lines: npt.NDArray[np.int64]
) -> tuple[list[Any], npt.NDArray[np.int64], int, dict[int, npt.NDArray[np.bool_]]]:
    """The rows that hold something, how many held nothing (see ``is_blank``: every field
    empty or whitespace), and which of the kept rows' values are absent in the columns looked
    at (by position; most often only the first): the checks need those again."""
    blank: npt.NDArray[np.bool_] | None = None
    absent: dict[int, npt.NDArray[np.bool_]] = {}
    for position, column in enumerate(columns):
        absent[position] = _Text(column).absent()
        blank = absent[position] if blank is None else blank & absent[position]
        if not blank.any():
            return columns, lines, 0, absent
    if blank is None:
        return columns, lines, 0, absent
    keep = np.flatnonzero(~blank)
    take = _from_numpy(np.asarray(keep, dtype=np.int64))
    kept = {position: mask[keep] for position, mask in absent.items()}
    return [_compute().take(c, take) for c in columns], lines[keep], int(blank.sum()), kept


class _Part(NamedTuple):
    """One block of records split into string columns, with what could not be split."""

    columns: list[Any]
    lines: npt.NDArray[np.int64]
    rejects: list[Reject]
    n_read: int
    n_blank: int  # records of n_read that hold nothing
    position: int  # bytes of the input consumed after this block
    #: Where values are absent, by column position, for the columns already looked at.
    absent: dict[int, npt.NDArray[np.bool_]] | None = None


class _BlockReader:
    """Reads blocks of bytes, finds their records, and turns them into checked chunks."""

    def __init__(
        self, opened: Utf8Input, options: ReadOptions, instruments: tuple[Instrument, ...]
    ) -> None:
        self.binary = binary = opened.stream
        self.name = name = opened.name
        self.size = opened.size
        self.options = options
        self.block_bytes = max(1, int(str(options.settings.get("block_bytes", 8 << 20))))
        self.chunk_rows = max(1, options.chunk_rows)
        # No more than a header needs, first: dropping the header from a whole block's
        # bytes copied the block (5 ms of every run's start, before its first block).
        wanted = min(self.block_bytes, 1 << 16)
        self.buf = binary.read(wanted)
        self.eof = len(self.buf) < wanted
        while True:  # every byte-order mark at the start, not just the first
            if self.buf.startswith(_BOM):
                self.buf = self.buf[len(_BOM) :]
            elif not self.eof and len(self.buf) < len(_BOM):
                self._more(self.block_bytes)
            else:
                break
        self.position = 0  # bytes of the input consumed, for progress
        self.line = 1
        header = self._header()
        self.layout = Layout.resolve(header.fields, options, source=name)
        resolver = InstrumentResolver(
            instruments, aliases=options.instrument_aliases, default=options.instrument
        )
        self.validator = RowValidator(self.layout, options, resolver, source=name)
        self.checker = ColumnChecker(self.validator, name)
        self.splitter = _Block(self.layout.n_fields, self.validator, name, opened.encoding)
        self.names = [f"f{i}" for i in range(self.layout.n_fields)]
        self.first = True  # no block split yet

    def _more(self, wanted: int) -> None:
        data = self.binary.read(wanted)
        self.eof = len(data) < wanted
        self.buf += data

    def _header(self) -> RawRecord:
        """The first non-blank record, split by the :mod:`csv` module (quote counting cannot be
        trusted before the delimiter is known, and a header such as ``Height (5")`` holds a
        quote that is text); the delimiter from the first non-blank physical line."""
        window = 1 << 16  # decode no more than a header needs
        while True:
            text = self.buf[:window].decode("utf-8", "surrogateescape")
            first = next((line for line in io.StringIO(text, newline="") if line.strip("\r\n")), "")
            delimiter = str(self.options.settings.get("delimiter") or detect_delimiter(first))
            header, chars, lines = first_record(text, delimiter)
            # The record must end before the text does: the rest of it (or the \n of a \r\n)
            # may lie beyond.
            if header is not None and chars < len(text):
                break
            if window < len(self.buf):
                window *= 4
            elif self.eof:
                break
            else:
                self._more(max(self.block_bytes, len(self.buf)))
        if header is None:
            raise FormatError(
                f"{self.name} is empty", [Problem(self.name, "empty", "no header line")]
            )
        self.delimiter = delimiter
        consumed = len(text[:chars].encode("utf-8", "surrogateescape"))
        self.buf = self.buf[consumed:]
        self.line = 1 + lines
        self.position = consumed
        return header

    def header_chunk(self) -> ReadChunk:
        """The chunk that names the source's columns before any record is read."""
        return self.chunk(_Part([], np.zeros(0, dtype=np.int64), [], 0, 0, self.position))

    def chunk(self, part: _Part) -> ReadChunk:
        """Check one part: the checks keep state (ids seen), so parts come here in order."""
        batches, more = self.checker.check(part.columns, part.lines, absent=part.absent)
        every = sorted([*part.rejects, *more], key=lambda r: r.line or 0)
        return ReadChunk(
            batches=tuple(batches),
            rejects=tuple(every),
            n_read=part.n_read,
            extra_columns=self.layout.extra_names,
            source_columns=self.layout.header,
            progress=None if not self.size else min(1.0, part.position / self.size),
            n_blank=part.n_blank,
        )

    def parts(self) -> Generator[_Part, None, None]:
        """Blocks of records split into string columns, not yet checked (see :meth:`chunk`)."""
        target = self.block_bytes
        while True:
            if not self.eof and len(self.buf) < target:
                self._more(target - len(self.buf))
            scan = _scan(
                self.buf,
                ord(self.delimiter),
                final=self.eof,
                first_line=self.line,
                max_records=self.chunk_rows,
            )
            if scan.anomaly:
                yield from self._text_parts()
                return
            if scan.consumed == 0:
                if self.eof:
                    return
                target = len(self.buf) * 2  # one record is longer than a block
                continue
            n_read = scan.n_records
            self.position += scan.consumed
            if n_read:
                longest = int((scan.ends - scan.starts).max())
                # A record longer than the field limit may hold a field over it: the csv
                # module's split checks each field (rare, so it costs nothing on the fast path).
                splittable = not scan.unclosed and longest <= MAX_FIELD_CHARS
                columns = self._parse(scan, longest) if splittable else None
                if columns is not None:
                    columns, lines, n_blank, absent = _without_blank(columns, scan.lines)
                    yield _Part(columns, lines, [], n_read, n_blank, self.position, absent)
                else:
                    text = self.buf[: scan.consumed].decode("utf-8", "surrogateescape")
                    records = _records_from_text(text, self.delimiter, self.line)
                    yield _Part(*self.splitter.split(records), self.position)
                # Aim the next block at chunk_rows records of the size seen so far.
                target = int(scan.consumed / n_read * self.chunk_rows * 1.05) + (1 << 16)
                target = min(target, self.block_bytes * 8)
            self.buf = self.buf[scan.consumed :]
            self.line += scan.lines_consumed

    def _text_parts(self) -> Generator[_Part, None, None]:
        """A quote inside an unquoted field: quote counting cannot find record ends, so the rest
        of the file goes through the :mod:`csv` module."""
        stream = io.TextIOWrapper(
            io.BufferedReader(Replay(bytes(self.buf), self.binary, close_rest=False)),
            encoding="utf-8",
            errors="surrogateescape",
            newline="",
        )
        records = split_records(stream, delimiter=self.delimiter, first_line=self.line)
        try:
            while True:
                block = list(itertools.islice(records, self.chunk_rows))
                if not block:
                    return
                position = self.binary.tell() if self.binary.seekable() else self.position
                yield _Part(*self.splitter.split(block), position)
        finally:
            records.close()

    def _parse(self, scan: _Scan, longest: int) -> list[Any] | None:
        """Split the buffer's records that ``scan`` found with pyarrow; ``None`` where it cannot
        (a record with the wrong number of fields, undecodable bytes) or finds another number of
        records than the pre-pass.

        pyarrow is given those bytes where they lie, not a copy of them (each block's copy, of
        about 6 MB, took a tenth of a millisecond a megabyte on the reading thread).
        pyarrow drops a byte-order mark at the start of what it is given, and here that would be
        part of a record's first field: such a block starts with an empty line (which pyarrow
        skips) instead. pyarrow's blocks must each hold a whole record: they are made larger
        than the ``longest`` record of the block."""
        pa = _pa()
        buf = self.buf
        data: Any = memoryview(buf)[: scan.consumed]
        if buf.startswith(_BOM):
            data = b"\n" + data
        block_size = max(1 << 20, 2 * longest + 64)
        # The first block is split while every other stage waits for it: pyarrow's threads
        # then use cores that would idle.
        spread = self.options.threads > _STAGES or (self.options.threads > 1 and self.first)
        self.first = False
        if not spread:
            # Split on this thread alone, as one block: columns of one piece each, with no copy
            # to join them. The run's stages already keep the cores busy: on two cores,
            # pyarrow's threads beside them took more memory and no less processor time.
            block_size = max(block_size, len(data) + 1)
        quoted = scan.quoted
        try:
            table = pa.csv.read_csv(
                pa.BufferReader(pa.py_buffer(data)),
                read_options=pa.csv.ReadOptions(
                    column_names=self.names,
                    use_threads=spread,
                    block_size=block_size,
                ),
                parse_options=pa.csv.ParseOptions(
                    delimiter=self.delimiter,
                    # A block without a quote has no field to unquote: splitting it without
                    # looking for quotes gives the same columns, with less work a byte.
                    quote_char='"' if quoted else False,
                    newlines_in_values=quoted,
                    ignore_empty_lines=True,
                ),
                convert_options=pa.csv.ConvertOptions(
                    column_types={c: pa.string() for c in self.names},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                    # ASCII is UTF-8: only other bytes need pyarrow's check, field by field.
                    # The whole buffer is looked at (its few bytes after the block too): a
                    # check where none was needed gives the same columns.
                    check_utf8=not buf.isascii(),
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError):
            return None
        if table.num_rows != scan.n_records:
            return None
        columns = [table.column(i) for i in range(len(self.names))]
        return [c.chunk(0) if c.num_chunks == 1 else c.combine_chunks() for c in columns]


def _split_parts(reader: _BlockReader, options: ReadOptions) -> Iterator[_Part]:
    """The reader's parts: on a thread of their own where the run may use enough threads
    (:data:`_SPLIT_BESIDE`); else on the thread that takes them, the first one before this
    returns, and on two threads on a thread of their own once the ids outgrow
    :data:`_SPLIT_BESIDE_IDS`."""
    if options.threads >= _SPLIT_BESIDE:
        return _on_a_thread(reader.parts())
    return _Begun(reader, reader.parts(), beside=options.threads > 1)


def _on_a_thread(parts: Iterator[_Part]) -> Iterator[_Part]:
    """``parts`` split on a thread of their own, ahead of the thread that checks them."""
    from pamlib._workers import Ahead

    return Ahead(parts, name="pamlib-split")


class _Begun(Iterator[_Part]):
    """``parts`` with its first item taken at once; closing closes ``parts``. With ``beside``,
    the rest are split on a thread of their own once the file's ids outgrow
    :data:`_SPLIT_BESIDE_IDS`."""

    def __init__(
        self, reader: _BlockReader, parts: Generator[_Part, None, None], *, beside: bool
    ) -> None:
        self._reader = reader
        self._parts: Iterator[_Part] = parts
        self._beside = beside
        self._head = list(itertools.islice(parts, 1))

    def __next__(self) -> _Part:
        if self._head:
            return self._head.pop()
        if self._beside:
            seen = self._reader.checker.seen
            if seen is not None and len(seen) >= _SPLIT_BESIDE_IDS:
                self._beside = False
                self._parts = _on_a_thread(self._parts)
        return next(self._parts)

    def close(self) -> None:
        close = getattr(self._parts, "close", None)
        if close is not None:
            close()
