"""The Spark job's faster reading: an export read as lines of text and split in Python.

Spark's CSV reader splits each record into columns that then travel to Python one by one; one
column of lines costs far less to send, and pyarrow splits it at least as fast (:doc:`/spark`,
"Splitting the records in Python"). :func:`pamlib.spark.score` reads an export this way when
its lines are exactly its records and Spark's CSV reader would split each of them the same way:
UTF-8, every field of every line bare or wholly quoted (:func:`well_formed`), no line of
nothing but whitespace, each file's header its first line and nowhere else. One pass over the
lines (on the JVM only) checks that, counts the lines of each split for the row numbers and
finds the assessment ids that repeat; where anything is not so, :func:`plan` says ``None``
and the export is read with Spark's CSV reader as before. Each task then turns its lines into
the very rows that reader would have given (empty fields null, a record with the wrong number
of fields whole in ``_corrupt_record``), so everything after the split is the same code
whichever way the export was read.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.errors import PamlibError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_VALUE = "value"
_AID = "_pamlib_aid"
_QUOTE = '"'
_BOM = "\ufeff".encode()


def well_formed(delimiter: str, *, java: bool) -> str:
    """A regular expression for a line every field of which is bare (no quote) or wholly
    quoted with its quotes doubled — a line that Spark's CSV reader and pyarrow's split alike.
    For Java's engine the repeats are possessive (no backtracking, no deep recursion); RE2,
    pyarrow's, has none and needs none."""
    d = "\\t" if delimiter == "\t" else "\\" + delimiter if delimiter in "\\]^-[" else delimiter
    plus, star = ("++", "*+") if java else ("+", "*")
    # the quoted form first: a possessive repeat must not settle for an empty bare field
    field = f'(?:"(?:[^"]{plus}|""){star}"|[^"{d}]{star})'
    return f"^{field}(?:[{d}]{field}){star}$"


#: grouping_id() of (file, block) and of (id) among the three grouped columns
_BLOCKS_SET, _IDS_SET = 1, 6
#: Header lines are counted in the same sum as unfit lines, this many bits up.
_HEADER_SHIFT = 40


def lines_frame(
    spark: SparkSession, path: str, *, multiline: bool, sequence: bool = True
) -> DataFrame:
    """Every line of the export's files with its row key's parts (file, split, sequence), as
    :func:`pamlib.spark.read_export` keys the rows it reads: the same splits, so the same
    numbering rules. Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as the lines of Spark's CSV
    reader do with ``multiLine`` off; with it on, that reader finds line ends its own way, so
    lines end at ``\\n`` only and :func:`plan` refuses a line holding ``\\r``. Without
    ``sequence``, no sequence number: only the pass and its plan use it, and a job that keys
    rows by their splits reads less without it."""
    from pyspark.sql import functions as sf

    from pamlib.spark import _BLOCK, _FILE, _SEQ

    reader = spark.read.option("lineSep", "\n") if multiline else spark.read
    columns = [
        sf.col(_VALUE),
        sf.col("_metadata.file_path").alias(_FILE),
        sf.col("_metadata.file_block_start").alias(_BLOCK),
    ]
    if sequence:
        columns.append(sf.monotonically_increasing_id().alias(_SEQ))
    return reader.text(path).select(*columns)


@attrs.frozen
class LinesPlan:
    """What the pass over the lines found: enough for every task to number its rows and mark
    repeated ids by itself (small: a few numbers a split and a file, and the ids that repeat)."""

    #: Rows read (lines less headers), as the CSV reader's count would give it.
    n_read: int
    #: (file, split start) → the rows of that file in the splits before it.
    before: Mapping[tuple[str, int], int]
    #: (file, split start) → the rows the split holds: each task checks it read as many.
    rows: Mapping[tuple[str, int], int]
    #: The sequence numbers of the files' header lines (the first line of each).
    headers: frozenset[int]
    #: Each assessment id that repeats → the (file, split start, sequence) of its first line.
    repeats: Mapping[str, tuple[str, int, int]]


@attrs.frozen
class LineShape:
    """What the pass needs to know of the export's lines."""

    #: The header's own line (without a byte-order mark), as each file's first line must be.
    header_line: str
    delimiter: str
    n_fields: int
    #: The assessment id's field, when repeats are looked for across the export.
    id_position: int | None
    #: Whether the export was read with ``multiline=True`` (:func:`lines_frame`).
    multiline: bool


def plan(lines: DataFrame, shape: LineShape) -> LinesPlan | None:
    """One pass over ``lines`` (:func:`lines_frame`): each split's lines, and with an
    ``id_position`` each assessment id that repeats with where it is first seen; ``None``
    where the lines cannot stand for the records (see the module's documentation) or more ids
    repeat than are sent to every task."""
    from pyspark.sql import functions as sf

    from pamlib.spark import _BLOCK, _BROADCAST_REPEATS, _FILE

    grouped, keyed = _grouped(lines, shape)
    wanted = (sf.col("_set") == _BLOCKS_SET) | (
        (sf.col("_set") == _IDS_SET) & sf.col(_AID).isNotNull() & (sf.col("_n") > 1)
    )
    limit = 2 * _BROADCAST_REPEATS + 1  # the splits first, then at most the repeats sent
    found = grouped.where(wanted).orderBy("_set").limit(limit).collect()
    blocks = [r for r in found if r["_set"] == _BLOCKS_SET]
    ids = [r for r in found if r["_set"] == _IDS_SET]
    if len(found) == limit or len(ids) > _BROADCAST_REPEATS:
        return None
    splits = sorted(
        (str(r[_FILE]), int(r[_BLOCK]), int(r["_n"]), int(r["_first"]) >> 1) for r in blocks
    )
    headers = _headers(blocks)
    if headers is None:
        return None
    before: dict[tuple[str, int], int] = {}
    rows: dict[tuple[str, int], int] = {}
    done: dict[str, int] = {}
    for file, block, n, _ in splits:
        data = n - (1 if block == 0 else 0)
        before[file, block] = done.get(file, 0)
        rows[file, block] = data
        done[file] = done.get(file, 0) + data
    if len({file for file, block, *_ in splits if block == 0}) != len(done):
        return None  # a file whose first split was not read: no header seen
    return LinesPlan(
        n_read=sum(done.values()),
        before=before,
        rows=rows,
        headers=frozenset(headers),
        repeats=_repeats(keyed, splits, ids),
    )


def _grouped(lines: DataFrame, shape: LineShape) -> tuple[DataFrame, DataFrame]:
    """The pass's query (grouping sets: one scan, one shuffle): per split its lines, its first
    sequence number and whether that line is a header, and its unfit and header lines; per
    readable assessment id its lines and first sequence number. Also the ids' own frame, for
    a second look (:func:`pamlib.spark._first_occurrences`)."""
    from pyspark.sql import functions as sf

    from pamlib.spark import _BLOCK, _FILE, _SEQ

    header_line, delimiter, n_fields = shape.header_line, shape.delimiter, shape.n_fields
    id_position = shape.id_position
    value, seq = sf.col(_VALUE), sf.col(_SEQ)
    # what Spark's line reader skips (every character U+0020 or below) or may split otherwise
    blank = sf.when(sf.ascii(value) <= 32, value.rlike("^[\\x00-\\x20]*$")).otherwise(False)
    quoted = value.contains(_QUOTE)
    odd = sf.when(quoted, ~value.rlike(well_formed(delimiter, java=True))).otherwise(False)
    unfit = odd | blank | ~sf.is_valid_utf8(value)
    if shape.multiline:
        unfit |= value.contains("\r")
    header = (value == sf.lit(header_line)) | (value == sf.lit("\ufeff" + header_line))
    if id_position is None:
        aid = sf.lit(None).cast("string")
    else:
        # A bare line: the field at id_position cut with substring_index (split_part splits
        # the whole line), readable with the header's number of fields and not empty (Spark
        # reads an empty field as null). A quoted one: split by Spark's own CSV parser.
        cut = sf.substring_index(
            sf.substring_index(value, delimiter, id_position + 1), delimiter, -1
        )
        bare = sf.when(_fields_are(value, delimiter, n_fields) & (cut != ""), cut)
        aid = sf.when(
            ~unfit & ~header & ~_unchecked(value, delimiter, n_fields),
            sf.when(quoted, _parsed_id(value, delimiter, n_fields, id_position)).otherwise(bare),
        )
    # Few and cheap aggregates: a split's unfit and header lines in one sum, and its first
    # sequence number with whether that line is a header in one minimum (2 × seq, + 1 if not).
    flags = unfit.cast("long") + sf.when(header, sf.lit(1 << _HEADER_SHIFT)).otherwise(0)
    first = seq * 2 + sf.when(header, 0).otherwise(1)
    grouped = (
        lines.select(_FILE, _BLOCK, aid.alias(_AID), flags.alias("_flags"), first.alias("_first"))
        .groupingSets([(_FILE, _BLOCK), (_AID,)], _FILE, _BLOCK, _AID)
        .agg(
            sf.grouping_id().alias("_set"),
            sf.count(sf.lit(1)).alias("_n"),
            sf.min("_first").alias("_first"),
            sf.sum("_flags").alias("_flags"),
        )
    )
    return grouped, lines.select(_FILE, _BLOCK, _SEQ, aid.alias(_AID))


def _fields_are(value: Any, delimiter: str, n: int) -> Any:
    """Whether ``value`` holds exactly ``n - 1`` delimiters. ``substring_index`` gives the line
    itself, uncopied, when it holds fewer delimiters than asked for: fewer than ``n`` and not
    fewer than ``n - 1``. Counting them by removing them (``replace``) builds a new string a
    line: the pass took a tenth longer so."""
    from pyspark.sql import functions as sf

    if n < 2:
        return ~value.contains(delimiter)
    return (sf.substring_index(value, delimiter, n) == value) & (
        sf.substring_index(value, delimiter, n - 1) != value
    )


def _parsed_id(value: Any, delimiter: str, n_fields: int, id_position: int) -> Any:
    """The assessment id of a quoted line as Spark's CSV reader reads it, ``null`` where that
    reader finds the line malformed (the wrong number of fields)."""
    from pyspark.sql import functions as sf

    from pamlib.spark import CORRUPT_COLUMN

    record = _record(value, delimiter, n_fields)
    return sf.when(record[CORRUPT_COLUMN].isNull(), record[f"f{id_position}"])


def _record(value: Any, delimiter: str, n_fields: int) -> Any:
    """A line split by Spark's own CSV parser: fields ``f0`` … and ``_corrupt_record``."""
    from pyspark.sql import functions as sf

    from pamlib.spark import CORRUPT_COLUMN, _spark_options

    names = [f"f{i}" for i in range(n_fields)]
    schema = ", ".join(f"{n} STRING" for n in [*names, CORRUPT_COLUMN])
    options = {
        k: v
        for k, v in _spark_options(False, delimiter=delimiter).items()
        if k not in ("header", "multiLine", "encoding")
    }
    return sf.from_csv(value, sf.lit(schema), options)


def _unchecked(value: Any, delimiter: str, n_fields: int) -> Any:
    """Whether the job rejects the line's record before looking at its id, as
    :func:`pamlib.spark._unchecked` says for a record: its id is then no occurrence. A line
    no longer than the limit in bytes holds no field over it, so only such rare lines are
    split (by Spark's parser); the rest cost one byte search for U+FFFD in the line."""
    from pyspark.sql import functions as sf

    from pamlib.spark import _unchecked as unchecked

    record = _record(value, delimiter, n_fields)
    fields = [record[f"f{i}"] for i in range(n_fields)]
    return unchecked(fields, sf.octet_length(value), undecoded=value.contains("\ufffd"))


def _headers(blocks: list[Any]) -> set[int] | None:
    """The header lines' sequence numbers: each file's first line, and no other line is
    one; ``None`` if a split holds an unfit line or a header anywhere else."""
    from pamlib.spark import _BLOCK

    headers = set()
    for r in blocks:
        n_headers, n_unfit = divmod(int(r["_flags"]), 1 << _HEADER_SHIFT)
        if n_unfit:
            return None
        if int(r[_BLOCK]) == 0:
            if n_headers != 1 or int(r["_first"]) & 1:
                return None
            headers.add(int(r["_first"]) >> 1)
        elif n_headers:
            return None
    return headers


def _repeats(
    keyed: DataFrame, splits: list[tuple[str, int, int, int]], ids: list[Any]
) -> dict[str, tuple[str, int, int]]:
    """Each id that repeats → where it is first seen in file order, from its smallest sequence
    number as :func:`pamlib.spark.score`'s pass over records finds it."""
    from pamlib.spark import _first_occurrences, _first_places

    repeats: dict[str, tuple[str, int, int]] = {}
    seqs = [int(r["_first"]) >> 1 for r in ids]
    unplaced = []
    for r, seq, place in zip(ids, seqs, _first_places(splits, seqs), strict=True):
        if place is None:
            unplaced.append(str(r[_AID]))
        else:
            repeats[str(r[_AID])] = (place[0], place[1], seq)
    if unplaced:
        for aid_text, file, block, seq in _first_occurrences(keyed, unplaced):
            repeats[aid_text] = (file, block, seq)
    return repeats


def split_runs(
    files: Any, blocks: npt.NDArray[np.int64]
) -> Iterator[tuple[int, int, tuple[str, int]]]:
    """The runs of one split each in a batch of rows as a task read them: (first row, one past
    the last, (file, split start)). A task reads its splits one after the other, so the runs
    are found by comparing neighbours, not row by row in Python."""
    import pyarrow.compute as pc

    n = len(blocks)
    if n == 0:
        return
    changed = blocks[1:] != blocks[:-1]
    changed |= pc.not_equal(files[1:], files[:-1]).to_numpy(zero_copy_only=False)
    starts = [0, *(np.flatnonzero(changed) + 1).tolist()]
    for start, end in zip(starts, [*starts[1:], n], strict=True):
        yield start, end, (str(files[start].as_py()), int(blocks[start]))


def split_keys(
    files: Any,
    blocks: npt.NDArray[np.int64],
    seen: dict[tuple[str, int], int],
    *,
    header_counted: bool,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Row keys that need no pass over the export (``row_key="split"``): each row's place in
    its split (0 for the first; ``seen`` holds the rows of each split the task has read so far)
    and its key, the split's start in bytes plus that place, plus one.

    Hadoop's line reader gives a split the lines that start after its first byte and not after
    its last (the first split: from its first byte), and every line is at least one byte long:
    a split never holds more lines than it has bytes (the first, one more), nor more records
    than lines. So the keys of a split lie above every key of the splits before it in the file,
    and in the first split the key is the row's number, as ``pamlib score`` counts rows. With
    ``header_counted``, rows are lines and the first split's first line is the header (key 0):
    its data lines need no added one.
    """
    places = np.empty(len(blocks), dtype=np.int64)
    for start, end, split in split_runs(files, blocks):
        done = seen.get(split, 0)
        places[start:end] = np.arange(done, done + end - start)
        seen[split] = done + end - start
    plus = (blocks > 0).astype(np.int64) if header_counted else 1
    return blocks + places + plus, places


class ChangedExportError(PamlibError):
    """The export's lines were not what the pass before the job counted: it changed between
    the two reads."""


@attrs.frozen
class LineSplitter:
    """What each task does with its lines: the rows Spark's CSV reader would have given for
    them (text columns named as in the header, empty fields null, ``_corrupt_record``), with
    the row number and first-occurrence mark :func:`pamlib.spark.score` adds."""

    #: What the pass found; ``None`` where no pass ran (``row_key="split"``): each task then
    #: keys its rows by their splits (:func:`split_keys`) and takes every line as it comes.
    plan: LinesPlan | None = attrs.field(repr=False)
    header: tuple[str, ...]
    delimiter: str
    #: The assessment id's column, when repeats are looked for across the export.
    id_name: str | None = None
    #: The header's own line, which each file's first line must be (with no pass).
    header_line: str | None = None

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        seen: dict[tuple[str, int], int] = {}
        if self.plan is None:
            for batch in batches:
                rows = self._unplanned(batch, seen)
                if rows is not None:
                    yield rows
            return
        repeats = self.plan.repeats
        wanted = pa.array(list(repeats), pa.string()) if repeats and self.id_name else None
        for batch in batches:
            rows = self._rows(batch, seen, wanted, self.plan)
            if rows is not None:
                yield rows
        for split, n in seen.items():
            if n != self.plan.rows.get(split, -1):
                raise ChangedExportError(
                    "the export changed while it was scored: a split held "
                    f"{n} rows where {self.plan.rows.get(split, 0)} were counted"
                )

    def _rows(
        self, batch: Any, seen: dict[tuple[str, int], int], wanted: Any, plan: LinesPlan
    ) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        from pamlib.spark import _BLOCK, _FILE, _SEQ

        if plan.headers:
            is_header = pc.is_in(batch.column(_SEQ), value_set=pa.array(sorted(plan.headers)))
            if pc.any(is_header).as_py():
                batch = batch.filter(pc.invert(is_header))
        n = batch.num_rows
        if n == 0:
            return None
        files = batch.column(_FILE)
        blocks = batch.column(_BLOCK).to_numpy(zero_copy_only=False)
        numbers = np.empty(n, dtype=np.int64)
        for start, end, split in split_runs(files, blocks):
            done = seen.get(split, 0)
            first = plan.before.get(split)
            if first is None:
                raise ChangedExportError("the export changed while it was scored: a new split")
            numbers[start:end] = np.arange(first + done + 1, first + done + 1 + end - start)
            seen[split] = done + end - start
        return self._batch(
            batch.column(_VALUE),
            files,
            numbers,
            first=lambda arrays: self._first(
                batch, None if self.id_name is None else arrays[self.id_name], wanted, plan.repeats
            ),
        )

    def _batch(
        self,
        values: Any,
        files: Any,
        numbers: npt.NDArray[np.int64],
        *,
        first: Callable[[dict[str, Any]], Any],
        lenient: bool = False,
        blocks: Any = None,
    ) -> Any:
        """The rows Spark's CSV reader would give of ``values``: the fields of the lines it
        splits, the others whole in ``_corrupt_record``; their file, row key and whether their
        assessment id comes there first (``first`` of the columns)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pamlib.spark import _BLOCK, _FILE, _FIRST, _ROW, CORRUPT_COLUMN

        n = len(values)
        columns, fit = self._split(values, lenient=lenient)
        if not fit.all():
            at = np.cumsum(fit) - 1
            where = pa.array(at, pa.int64(), mask=~fit)
            columns = [c.take(where) for c in columns]
        corrupt = pa.nulls(n, pa.string()) if fit.all() else pc.if_else(pa.array(fit), None, values)
        arrays = dict(zip(self.header, columns, strict=True))
        arrays[CORRUPT_COLUMN] = corrupt
        arrays[_FILE] = files
        arrays[_ROW] = pa.array(numbers)
        if blocks is not None:
            arrays[_BLOCK] = blocks
        arrays[_FIRST] = first(arrays)
        return pa.RecordBatch.from_pydict(arrays)

    def _unplanned(self, batch: Any, seen: dict[tuple[str, int], int]) -> Any:
        """A batch of lines no pass looked at (``row_key="split"``): keyed by their splits; each
        file's first line checked to be the header and left out, empty lines left out (no
        record, as in ``pamlib score``); bytes not valid UTF-8 replaced with U+FFFD (the job's
        ``encoding`` reject follows, as for Spark's CSV reader); a line whose quotes are not
        whole fields read as ``pamlib score``'s own record reader reads it (:meth:`_mixed`)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pamlib.spark import _BLOCK, _FILE

        if batch.num_rows == 0:
            return None
        values = batch.column(_VALUE)
        files = batch.column(_FILE)
        blocks = batch.column(_BLOCK).to_numpy(zero_copy_only=False).astype(np.int64)
        keys, places = split_keys(files, blocks, seen, header_counted=True)
        header = (blocks == 0) & (places == 0)
        keep = pc.greater(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
        keep &= ~header
        if header.any():
            for i in np.flatnonzero(header).tolist():
                if not self._is_header(_text(values[i])):
                    raise PamlibError(
                        "a file of the export does not start with the header of the first: "
                        "read each layout on its own"
                    )
        if not keep.all():
            mask = pa.array(keep)
            values, files, keys, blocks = (
                values.filter(mask),
                files.filter(mask),
                keys[keep],
                blocks[keep],
            )
        if len(values) == 0:
            return None
        values = _valid_utf8(values)
        n = len(values)
        return self._batch(
            values,
            files,
            keys,
            first=lambda _: pa.repeat(True, n),
            lenient=True,
            blocks=pa.array(blocks),
        )

    def _is_header(self, line: str | None) -> bool:
        """Whether a file's first line is the header: its text, or the same names quoted
        otherwise (``"Patient ID",…``), as :func:`pamlib.spark.read_export` compares the files'
        headers and Spark's reader drops each file's first line; or a byte-order mark alone,
        a file with no header and no row (``read_export`` lets only such a file through). Once
        a file, not a row."""
        from pamlib.formats._records import split_records

        if line is None:
            return False
        if line == "\ufeff":
            return True
        line = line.removeprefix("\ufeff")
        if line == self.header_line:
            return True
        records = list(split_records(io.StringIO(line, newline=""), delimiter=self.delimiter))
        return len(records) == 1 and tuple(records[0].fields) == self.header

    def _split(
        self, values: Any, *, lenient: bool = False
    ) -> tuple[list[Any], npt.NDArray[np.bool_]]:
        """The lines with the header's number of fields split as Spark's CSV reader splits
        them (every field text, unquoted; a bare empty field null, a quoted one empty), and
        which lines those are. A line whose quotes are not whole fields changed the export
        since the pass looked; with ``lenient`` (no pass) it is one not split."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(values)
        joined = pc.binary_join(pa.ListArray.from_arrays([0, n], values), "\n")
        data = joined[0].as_buffer().to_pybytes()
        unquoted = _QUOTE.encode() not in data
        if unquoted and pc.any(pc.equal(pc.binary_length(values), 0)).as_py():
            # an empty line: pyarrow reads it as a row of nulls; count the fields instead
            fields = pc.count_substring(values, self.delimiter).to_numpy(zero_copy_only=False)
            fit = fields == len(self.header) - 1
            if not fit.all():
                values = values.filter(pa.array(fit))
                data = pc.binary_join(pa.ListArray.from_arrays([0, len(values)], values), "\n")
                data = data[0].as_buffer().to_pybytes() if len(values) else b""
            return self._parsed(data, len(values), quoted=False, bad=[]), fit
        if not unquoted:
            shape = pc.match_substring_regex(values, well_formed(self.delimiter, java=False))
            whole = pc.or_(shape, pc.invert(pc.match_substring(values, _QUOTE)))
            if not pc.all(whole).as_py():
                if not lenient:
                    raise ChangedExportError("the export changed while it was scored: a quote")
                return self._mixed(values, whole.to_numpy(zero_copy_only=False))
        # the usual case: pyarrow splits the lines and says which do not fit
        bad: list[int] = []
        columns = self._parsed(data, n, quoted=not unquoted, bad=bad)
        if -1 in bad:  # pyarrow could not say which line: one line at a time, then
            return self._one_by_one(values)
        fit = np.ones(n, dtype=np.bool_)
        fit[bad] = False
        return columns, fit

    def _mixed(
        self, values: Any, whole: npt.NDArray[np.bool_]
    ) -> tuple[list[Any], npt.NDArray[np.bool_]]:
        """Lines no pass looked at, some with quotes that are not whole fields (``whole``
        false): those are split by ``pamlib score``'s own record reader, one at a time, and
        kept where it reads one record of the header's fields (else left whole for the job's
        structural reject, as ``pamlib score`` rejects that text); the rest as usual."""
        import pyarrow as pa

        from pamlib.formats._records import split_records, structural_reject

        columns, some = self._split(values.filter(pa.array(whole)))
        width = len(self.header)
        found: list[list[str | None]] = []
        odd_fit = []
        for line in values.filter(pa.array(~whole)).to_pylist():
            records = list(split_records(io.StringIO(line, newline=""), delimiter=self.delimiter))
            ok = len(records) == 1 and structural_reject(records[0], width) is None
            odd_fit.append(ok)
            if ok:
                found.append([f or None for f in records[0].fields])
        fit = np.zeros(len(values), dtype=np.bool_)
        where = np.empty(len(values), dtype=np.int64)
        mine, odd = np.flatnonzero(whole)[some], np.flatnonzero(~whole)[np.array(odd_fit, bool)]
        fit[mine] = fit[odd] = True
        where[mine] = np.arange(len(mine))
        where[odd] = len(mine) + np.arange(len(odd))
        merged = [
            pa.concat_arrays([c, pa.array([r[k] for r in found], pa.string())])
            for k, c in enumerate(columns)
        ]
        at = pa.array(where[fit])
        return [c.take(at) for c in merged], fit

    def _one_by_one(self, values: Any) -> tuple[list[Any], npt.NDArray[np.bool_]]:
        import pyarrow as pa

        fit = np.ones(len(values), dtype=np.bool_)
        pieces = []
        for k, line in enumerate(values.to_pylist()):
            bad: list[int] = []
            piece = self._parsed(line.encode("utf-8"), 1, quoted=True, bad=bad)
            fit[k] = not bad
            if not bad:
                pieces.append(piece)
        if not pieces:
            return [pa.array([], pa.string()) for _ in self.header], fit
        return [pa.concat_arrays([p[i] for p in pieces]) for i in range(len(self.header))], fit

    def _parsed(self, data: bytes, n: int, *, quoted: bool, bad: list[int]) -> list[Any]:
        """``n`` lines split by pyarrow (``quoted``: quoted fields read as such): lines of
        another number of fields are left out and their indices added to ``bad`` (``-1`` where
        pyarrow cannot say which line)."""
        import pyarrow as pa

        if n == 0:
            return [pa.array([], pa.string()) for _ in self.header]
        if data.startswith(_BOM):  # pyarrow would take a first field's U+FEFF for a BOM
            data = _BOM + data
        names = [f"f{i}" for i in range(len(self.header))]

        def skip(row: Any) -> str:  # a line of another number of fields: Spark's corrupt one
            bad.append(-1 if row.number is None else int(row.number) - 1)
            return "skip"

        try:
            table = self._read(data, names, quoted=quoted, skip=skip)
        except pa.ArrowInvalid:  # bytes not valid UTF-8: not the lines the pass read
            raise ChangedExportError(
                "the export changed while it was scored: a line not valid UTF-8"
            ) from None
        if table.num_rows + len(bad) != n:
            raise ChangedExportError("the export changed while it was scored: a line split")
        return [c.combine_chunks() for c in table.columns]

    def _read(self, data: bytes, names: list[str], *, quoted: bool, skip: Any) -> Any:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        return pcsv.read_csv(
            pa.BufferReader(data + b"\n"),
            read_options=pcsv.ReadOptions(
                column_names=names, use_threads=False, block_size=len(data) + 64
            ),
            parse_options=pcsv.ParseOptions(
                delimiter=self.delimiter,
                quote_char=_QUOTE if quoted else False,
                double_quote=True,
                newlines_in_values=False,
                ignore_empty_lines=False,
                invalid_row_handler=skip,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={c: pa.string() for c in names},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=False,
                # valid UTF-8 when the pass read them; ASCII needs no second look
                check_utf8=not data.isascii(),
            ),
        )

    def _first(
        self, batch: Any, ids: Any, wanted: Any, repeats: Mapping[str, tuple[str, int, int]]
    ) -> Any:
        """Whether each row's assessment id comes there first in file order: only rows whose
        id repeats are looked at (``wanted``: those ids, as an Arrow array)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pamlib.spark import _BLOCK, _FILE, _SEQ

        first = np.ones(batch.num_rows, dtype=np.bool_)
        if wanted is None or ids is None:
            return pa.array(first)
        hit = pc.fill_null(pc.is_in(ids, value_set=wanted), False)
        for i in np.flatnonzero(hit.to_numpy(zero_copy_only=False)).tolist():
            place = repeats[ids[i].as_py()]
            here = (batch.column(_FILE)[i].as_py(), batch.column(_BLOCK)[i].as_py())
            first[i] = (*here, batch.column(_SEQ)[i].as_py()) == place
        return pa.array(first)


def _text(value: Any) -> str | None:
    """A line as text, ``None`` if it is not valid UTF-8."""
    import pyarrow as pa

    raw = value.cast(pa.binary()).as_py()
    try:
        return None if raw is None else bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _valid_utf8(values: Any) -> Any:
    """``values`` (lines Spark passed on as they were in the file) with every byte sequence not
    valid UTF-8 replaced by U+FFFD, as Spark's CSV reader decodes them."""
    import pyarrow as pa

    try:
        values.validate(full=True)
    except pa.ArrowInvalid:
        raw = values.cast(pa.binary()).to_pylist()
        return pa.array([None if b is None else b.decode("utf-8", "replace") for b in raw])
    return values
