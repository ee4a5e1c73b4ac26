"""Line ends with ``multiline=True``: a file Spark's multi-line reader would read otherwise than
``pamlib score`` is refused, and the quoted line breaks that reader changes are put back.

``pamlib score`` ends a line at ``\\r\\n``, ``\\r`` or ``\\n``, wherever each occurs. Spark's
multi-line CSV reader (univocity) takes the first line break of each file as the file's only
line end (:func:`first_break`) and reads the others as text: in a ``\\r\\n`` file a record ending
in a bare ``\\n`` runs into the next, in a ``\\n`` file a record ending in ``\\r\\n`` keeps the
``\\r`` in its last field. Inside quotes it writes the file's own line end as ``\\n`` (a quoted
``\\r\\n`` in a ``\\r\\n`` file, a quoted ``\\r`` in a ``\\r`` file), which :data:`LineBreaks`
lets each task put back where nothing else in the file reads as ``\\n``.

:func:`check` looks at every byte of every file, the cheapest way it can: on the driver, in the
starts :func:`pamlib.spark.read_export` has already read, where those are whole files; else in
one pass over the lines on the JVM (:func:`_facts`), which clears every file whose line breaks,
quoted or not, are all one kind; only the rest are read into Python, each split by its own task
(:class:`SplitScans`), and the driver follows the quotes from split to split (a split starts
after a ``\\n``, so either at a record's start or inside a quoted field: each task reads its
split both ways). A line end of another kind outside quotes stops the read with a located
:class:`~pamlib.errors.FormatError`; a quoted ``\\n`` beside quoted line ends that Spark also
writes as ``\\n`` does too (which was which cannot be told after the read).
"""

from __future__ import annotations

import codecs
import functools
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from pamlib.errors import FormatError, Problem

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Normalised file URI (:func:`file_key`) → the file's line end as text, for each file whose
#: quoted line ends Spark's multi-line reader writes as ``\\n``: each task writes them back.
LineBreaks = Mapping[str, str]

_START, _QUOTED = 0, 1
_CRLF, _LF, _CR = b"\r\n", b"\n", b"\r"
_SHOWN = {_CRLF: "\\r\\n", _LF: "\\n", _CR: "\\r"}
#: A line end as a pattern: a lone ``\\r`` is one not followed by ``\\n``.
_PATTERN = {_CRLF: rb"\r\n", _LF: rb"\n", _CR: rb"\r(?!\n)"}
#: How many refused files the error lists (the first in name order is in its summary).
_LISTED = 10


def first_break(data: bytes) -> bytes | None:
    """The line end Spark's multi-line reader takes for a file starting with ``data``: its
    first line break, quoted or not (``None`` where there is none).

    >>> first_break(b'a,"b\\nc"\\r\\n'), first_break(b"a\\r\\nb"), first_break(b"a\\rb\\n")
    (b'\\n', b'\\r\\n', b'\\r')
    """
    found = re.search(rb"[\r\n]", data)
    if found is None:
        return None
    at = found.start()
    if data[at : at + 1] == _LF:
        return _LF
    return _CRLF if data[at + 1 : at + 2] == _LF else _CR


def line_ends(data: bytes, end: int | None = None) -> int:
    """The line ends (``\\r\\n``, ``\\r``, ``\\n``) in ``data[:end]``, as ``pamlib score``
    counts lines, quoted or not."""
    end = len(data) if end is None else end
    return data.count(_LF, 0, end) + data.count(_CR, 0, end) - data.count(_CRLF, 0, end)


@functools.cache
def _patterns(delimiter: bytes, kind: bytes) -> tuple[re.Pattern[bytes], ...]:
    """The regular expressions of :class:`Scan`, by ``pamlib score``'s record rules (those of
    :mod:`csv`): a field starting with a quote is quoted, its quotes doubled inside, and runs
    on, after its closing quote, to the next delimiter; any other field is bare, a quote in it
    text; a line break outside quotes ends the record. Every repeat is possessive."""
    d = re.escape(delimiter)
    rest = rb"[^" + d + rb"\r\n]*+"
    bare = rb'[^"' + d + rb"\r\n]" + rest
    # a field without a quoted line break, and any field
    simple = rb'(?:"(?:[^"\r\n]++|"")*+"' + rest + rb"|" + bare + rb")?+"
    field = rb'(?:"(?:[^"]++|"")*+"' + rest + rb"|" + bare + rb")?+"
    #: records without quoted line breaks, each ending in the file's line end
    good = re.compile(rb"(?:" + simple + rb"(?:" + d + simple + rb")*+" + _PATTERN[kind] + rb")*+")
    #: one record, up to its line end (or the quote that opens a field left open)
    record = re.compile(field + rb"(?:" + d + field + rb")*+")
    #: what is left of a quoted field, up to its closing quote
    quoted = re.compile(rb'(?:[^"]++|"")*+')
    #: what is left of a record after its first field
    tail = re.compile(rest + rb"(?:" + d + field + rb")*+")
    return good, record, quoted, tail


def _end(pattern: re.Pattern[bytes], data: bytes, pos: int) -> int:
    """Where ``pattern`` (which matches the empty string too) stops matching at ``pos``."""
    found = pattern.match(data, pos)
    return pos if found is None else found.end()


@attrs.define
class Scan:
    """``pamlib score``'s records of one file (or of a split of it, from ``state``), fed in
    pieces that each end after a ``\\n`` (or at the end of the file): the first line end
    outside quotes that is not ``kind``, and the quoted line breaks Spark's multi-line reader
    writes as ``\\n``."""

    kind: bytes
    delimiter: bytes
    state: int = _START
    #: Line ends fed so far (quoted or not), as ``pamlib score`` counts lines.
    lines: int = 0
    #: The first line end of another kind outside quotes: its line's number and the line end.
    bad: tuple[int, bytes] | None = None
    #: Quoted line breaks that are ``kind`` (``\\r\\n`` or ``\\r``; Spark writes them ``\\n``).
    quoted_kind: int = 0
    #: Quoted ``\\n`` that are not part of ``kind``.
    quoted_lf: int = 0

    def feed(self, data: bytes, *, final: bool = False) -> None:
        """Read ``data``; ``final``: it ends the file (a bare ``\\n`` at the very end of a
        ``\\r\\n`` file is dropped by Spark's reader, as ``pamlib score`` finds no record
        after it)."""
        if self.bad is not None or not data:
            return
        good, record, quoted, tail = _patterns(self.delimiter, self.kind)
        pos: int | None = 0
        if self.state == _QUOTED:
            end = _end(quoted, data, 0)
            if end == len(data):
                self._quoted(data, 0, end)
                self.lines += line_ends(data)
                return
            pos = _end(tail, data, end + 1)
            self._quoted(data, 0, pos)
            self.state = _START
            pos = self._ended(data, pos, final)
        while pos is not None:
            pos = _end(good, data, pos)
            if pos == len(data):
                break
            end = _end(record, data, pos)
            self._quoted(data, pos, end)
            pos = self._ended(data, end, final)
        self.lines += line_ends(data)

    def _ended(self, data: bytes, at: int, final: bool) -> int | None:
        """Where the next record starts after one that ends at ``at`` (``None``: no more)."""
        if at == len(data):
            return None  # the file's last record, with no line end
        if data[at : at + 1] == b'"':  # a quoted field still open at the end of ``data``
            self._quoted(data, at + 1, len(data))
            self.state = _QUOTED
            return None
        found = _CRLF if data[at : at + 2] == _CRLF else data[at : at + 1]
        if found != self.kind and not (
            final and self.kind == _CRLF and found == _LF and at + 1 == len(data)
        ):
            self.bad = (self.lines + line_ends(data, at) + 1, found)
            return None
        return at + len(found)

    def _quoted(self, data: bytes, start: int, end: int) -> None:
        """Count the line breaks in ``data[start:end]``, all of them inside quotes."""
        if self.kind == _LF or end <= start:
            return
        lf = data.count(_LF, start, end)
        if self.kind == _CRLF:
            crlf = data.count(_CRLF, start, end)
            self.quoted_kind += crlf
            self.quoted_lf += lf - crlf
        else:
            self.quoted_kind += data.count(_CR, start, end)
            self.quoted_lf += lf


@attrs.frozen
class Verdict:
    """What :func:`check` found of one file."""

    #: The file's normalised URI (:func:`file_key`), as Spark names it.
    key: str
    #: The line end to write back for Spark's ``\\n`` in its values (:data:`LineBreaks`).
    restore: bytes | None = None
    #: Why the file is refused, and where (``line N``), if it is.
    problem: tuple[str, str] | None = None


def verdict(key: str, kind: bytes | None, scan: Scan | None) -> Verdict:
    """The verdict on a file whose line end is ``kind``, from its ``scan`` (``None``: the
    file holds no line break of another kind anywhere, quoted or not)."""
    if kind is None or (kind == _LF and scan is None):
        return Verdict(key)
    if scan is None:
        return Verdict(key, restore=kind)
    if scan.bad is not None:
        line, found = scan.bad
        return Verdict(
            key,
            problem=(
                f"line {line}",
                (
                    f"line {line} ends in {_SHOWN[found]}, where the file's first line break "
                    f"is {_SHOWN[kind]}"
                ),
            ),
        )
    if kind == _LF or scan.quoted_kind == 0:
        return Verdict(key)
    if scan.quoted_lf == 0:
        return Verdict(key, restore=kind)
    return Verdict(
        key,
        problem=(
            "quoted fields",
            (
                f"quoted fields hold line breaks of {_SHOWN[kind]} (the file's line end) and "
                "of \\n, which Spark's multi-line reader cannot tell apart"
            ),
        ),
    )


def scan_whole(data: bytes, delimiter: bytes) -> tuple[bytes | None, Scan | None]:
    """The line end of a whole file's ``data`` and its scan (``None`` where the file has no
    line break, or only ``\\n`` ones)."""
    kind = first_break(data)
    if kind is None or (kind == _LF and _CR not in data):
        return kind, None
    scan = Scan(kind, delimiter)
    scan.feed(data, final=True)
    return kind, scan


def file_key(uri: str) -> str:
    """A file's URI as Spark's listing (``file:///x``) and its ``_metadata.file_path``
    (``file:/x``) both give it: scheme, host and unquoted path."""
    parts = urllib.parse.urlsplit(uri)
    path = urllib.parse.unquote(parts.path)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def shown_name(uri: str, place: int, total: int) -> str:
    """A file as a message names it: its name, or where it holds an NHS number (an export
    saved as ``9434765919.csv``) its place in name order instead."""
    from pamlib.reporting._privacy import _looks_like_nhs_number

    name = urllib.parse.unquote(uri.rsplit("/", 1)[-1])
    if _looks_like_nhs_number(name):
        return f"file {place} of {total} in name order (its name holds an NHS number)"
    return name


def _ascii_framed(encoding: str, delimiter: str) -> bool:
    """Whether ``encoding`` writes line breaks, quotes and the delimiter as their ASCII bytes
    (so the export's bytes can be read for them without decoding)."""
    plain = '\r\n"' + delimiter
    try:
        return plain.encode(encoding) == plain.encode("ascii")
    except (LookupError, UnicodeError):
        return False


def check(
    spark: SparkSession,
    source: str,
    *,
    heads: Sequence[tuple[str, bytes]] | None,
    head_bytes: int,
    encoding: str,
    delimiter: str,
    chunks: Callable[[str], Iterator[bytes]] | None = None,
) -> dict[str, str]:
    """Refuse an export read with ``multiline=True`` whose files Spark's multi-line reader
    would read otherwise than ``pamlib score`` (a :class:`~pamlib.errors.FormatError` naming
    each file and its first line whose line end changes); else the files whose quoted line
    ends that reader writes as ``\\n`` (:data:`LineBreaks`).

    ``heads`` are the files' starts in name order (at most ``head_bytes`` each; ``None`` where
    the driver cannot read them); ``chunks`` reads a whole file, decompressed, on the driver,
    for an encoding whose line breaks are not single bytes."""
    framed = _ascii_framed(encoding, delimiter)
    if heads is not None and all(len(head) < head_bytes for _, head in heads):
        found = [_whole(uri, head, encoding, delimiter, framed) for uri, head in heads]
        names = [uri for uri, _ in heads]
    elif framed:
        found, names = _on_executors(spark, source, delimiter.encode("ascii"))
    elif heads is not None and chunks is not None:
        found = [
            _whole(uri, head, encoding, delimiter, framed)
            if len(head) < head_bytes
            else _streamed(uri, chunks(uri), encoding, delimiter)
            for uri, head in heads
        ]
        names = [uri for uri, _ in heads]
    else:
        import logging

        logging.getLogger("pamlib.spark").warning(
            "the line ends of a %s export cannot be checked without reading its files on the "
            "driver (a Spark Connect session): make them one kind before reading it",
            encoding,
        )
        return {}
    _refuse(found, names)
    return {v.key: v.restore.decode("ascii") for v in found if v.restore is not None}


def _refuse(found: Sequence[Verdict], names: Sequence[str]) -> None:
    order = sorted(names, key=file_key)
    place = {file_key(uri): k for k, uri in enumerate(order, start=1)}
    by_key = {file_key(uri): uri for uri in names}
    refused = sorted((v for v in found if v.problem is not None), key=lambda v: place.get(v.key, 0))
    if not refused:
        return
    problems = []
    summary = ""
    for v in refused[:_LISTED]:
        where, message = v.problem or ("", "")
        name = shown_name(by_key.get(v.key, v.key), place.get(v.key, 0), len(order))
        problems.append(Problem(f"{name}: {where}", "line-ends", message))
        summary = summary or f"{name}: {message}"
    more = len(refused) - 1
    also = f" (and {more} more file{'s' if more > 1 else ''})" if more else ""
    raise FormatError(
        f"{summary}{also}. Spark's multi-line reader (multiline=True) takes "
        "a file's first line break as its only line end, so it would read such a file otherwise "
        "than pamlib score does: make each file's line ends one kind (all \\r\\n or all \\n), or "
        "read the export with multiline=False if no quoted field holds a line break",
        problems,
    )


def _whole(uri: str, head: bytes, encoding: str, delimiter: str, framed: bool) -> Verdict:
    """The verdict on a file read whole on the driver."""
    data = head if framed else head.decode(encoding, "replace").encode("utf-8", "surrogatepass")
    mark = delimiter.encode("utf-8") if not framed else delimiter.encode("ascii")
    kind, scan = scan_whole(data, mark)
    return verdict(file_key(uri), kind, scan)


def _streamed(uri: str, chunks: Iterable[bytes], encoding: str, delimiter: str) -> Verdict:
    """The verdict on a file too large for its start, read on the driver piece by piece (an
    encoding whose line breaks are not single bytes: UTF-16, UTF-32)."""
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    mark = delimiter.encode("utf-8")
    kind: bytes | None = None
    scan: Scan | None = None
    carried = b""
    for chunk in [*chunks, None]:
        text = decoder.decode(chunk or b"", final=chunk is None)
        data = carried + text.encode("utf-8", "surrogatepass")
        if chunk is not None:  # feed whole lines; keep the rest for the next piece
            cut = data.rfind(_LF) + 1
            data, carried = data[:cut], data[cut:]
        if kind is None:
            kind = first_break(data)
            if kind is None:
                carried = data + carried
                continue
        if scan is None:
            scan = Scan(kind, mark)
        scan.feed(data, final=chunk is None)
        if scan.bad is not None:
            break
    return verdict(file_key(uri), kind, scan)


# -- on the executors ----------------------------------------------------------------------------


@attrs.frozen
class FileFacts:
    """What the pass over the lines found of one file."""

    kind: bytes | None
    #: Whether it holds a line break of another kind, quoted or not.
    other: bool
    #: The start of its last split, and whether its last line ends in ``\\n`` (``None``: not
    #: known, a compressed file).
    last_block: int
    terminated: bool | None


def _facts(spark: SparkSession, source: str) -> dict[str, FileFacts]:
    """One pass over the export's lines (ended at ``\\n``, as Hadoop splits them), on the JVM
    alone: per split its lines, those ending in ``\\r``, those with a ``\\r`` before their end,
    its first line's ends, its bytes; per file, from those, its line end (as Spark's reader
    finds it) and whether any line break of another kind is in it, quoted or not."""
    from pyspark.sql import functions as sf

    v = sf.col("value")
    nbytes = sf.octet_length(v)
    ends_cr = v.endswith("\r")
    # byte-wise (a string's character positions are not, in bytes that are not UTF-8)
    inner_cr = v.contains("\r") & (sf.octet_length(sf.substring_index(v, "\r", 1)) < nbytes - 1)
    seq = sf.monotonically_increasing_id()
    lines = (
        spark.read.option("lineSep", "\n")
        .text(source)
        .select(
            sf.col("_metadata.file_path").alias("f"),
            sf.col("_metadata.file_block_start").alias("b"),
            sf.col("_metadata.file_size").alias("size"),
            nbytes.alias("n"),
            ends_cr.alias("cr"),
            inner_cr.alias("inner"),
            seq.alias("seq"),
        )
    )
    rows = (
        lines.groupBy("f", "b")
        .agg(
            sf.count(sf.lit(1)).alias("lines"),
            sf.sum(sf.col("cr").cast("long")).alias("cr"),
            sf.sum(sf.col("inner").cast("long")).alias("inner"),
            sf.min(
                sf.col("seq") * 4 + sf.col("cr").cast("long") * 2 + sf.col("inner").cast("long")
            ).alias("first"),
            sf.max("seq").alias("last"),
            sf.max(sf.when(~sf.col("cr"), sf.col("seq"))).alias("last_plain"),
            sf.sum("n").alias("bytes"),
            sf.max("size").alias("size"),
        )
        .collect()
    )
    by_file: dict[str, list[Any]] = {}
    for row in rows:
        by_file.setdefault(str(row["f"]), []).append(row)
    return {
        name: _file_facts(sorted(found, key=lambda r: int(r["b"])))
        for name, found in by_file.items()
    }


def _file_facts(splits: list[Any]) -> FileFacts:
    lines = sum(int(r["lines"]) for r in splits)
    cr = sum(int(r["cr"]) for r in splits)
    inner = sum(int(r["inner"]) for r in splits)
    content = sum(int(r["bytes"]) for r in splits)
    size = int(splits[0]["size"])
    terminated = True if content + lines == size else False if content + lines - 1 == size else None
    first = int(splits[0]["first"])
    last = splits[-1]
    last_cr = last["last_plain"] is None or int(last["last_plain"]) != int(last["last"])
    if first & 1:
        kind: bytes | None = _CR
    elif first & 2:
        kind = _CRLF if lines > 1 or terminated is not False else _CR
    else:
        kind = _LF if lines > 1 or terminated else None
    plain = lines - cr  # lines not ending in \r
    if kind == _LF:
        other = cr + inner > 0
    elif kind == _CRLF:
        other = (
            inner > 0
            or plain > 1
            or (plain == 1 and (last_cr or terminated is True))
            or (last_cr and terminated is False)
        )
    elif kind == _CR:
        other = lines > 1 or terminated is True
    else:
        other = False
    return FileFacts(kind, other, int(last["b"]), terminated)


_SPLIT_SCHEMA = "f string, b long, lines long, " + ", ".join(
    f"state{h} int, bad{h} long, found{h} binary, qk{h} long, qlf{h} long" for h in (0, 1)
)


def _split_schema() -> Any:
    """:data:`_SPLIT_SCHEMA` in Arrow's terms (built on the executors, with no JVM to ask)."""
    import pyarrow as pa

    fields = [pa.field("f", pa.string()), pa.field("b", pa.int64()), pa.field("lines", pa.int64())]
    for h in (0, 1):
        fields += [
            pa.field(f"state{h}", pa.int32()),
            pa.field(f"bad{h}", pa.int64()),
            pa.field(f"found{h}", pa.binary()),
            pa.field(f"qk{h}", pa.int64()),
            pa.field(f"qlf{h}", pa.int64()),
        ]
    return pa.schema(fields)


@attrs.frozen
class SplitScans:
    """What each task does with the lines of the files :func:`_facts` could not clear: for
    each split, :class:`Scan` from a record's start and (past a file's first split) from inside
    a quoted field, one row of each's findings."""

    delimiter: bytes
    #: ``_metadata.file_path`` → (its line end, its last split's start, whether its last line
    #: ends in ``\\n``).
    files: Mapping[str, tuple[bytes, int, bool | None]]

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        from pamlib._spark_lines import split_runs

        split: tuple[str, int] | None = None
        scans: list[Scan] = []
        pending = b""  # the split's last line so far, which may end the file
        lines = 0
        for batch in batches:
            values = batch.column("value")
            files = batch.column("f")
            blocks = batch.column("b").to_numpy(zero_copy_only=False)
            for start, end, here in split_runs(files, blocks):
                if here != split:
                    if split is not None:
                        yield self._found(split, scans, pending, lines)
                    split, pending, lines = here, b"", 0
                    kind = self.files[here[0]][0]
                    states = (_START,) if here[1] == 0 else (_START, _QUOTED)
                    scans = [Scan(kind, self.delimiter, state=s) for s in states]
                elif end > start:
                    pending += b"\n"
                data = pending + _joined(values.slice(start, end - start - 1))
                pending = bytes(values[end - 1].as_py())
                if data:
                    lines += line_ends(data)
                    for scan in scans:
                        scan.feed(data)
        if split is not None:
            yield self._found(split, scans, pending, lines)

    def _found(self, split: tuple[str, int], scans: list[Scan], pending: bytes, lines: int) -> Any:
        import pyarrow as pa

        kind, last_block, terminated = self.files[split[0]]
        final = split[1] == last_block
        ended = True if not final else terminated if terminated is not None else kind != _CR
        data = pending + (b"\n" if ended else b"")
        lines += line_ends(data)
        for scan in scans:
            scan.feed(data, final=final)
        row: dict[str, Any] = {"f": [split[0]], "b": [split[1]], "lines": [lines]}
        for h in (0, 1):
            one = scans[h] if h < len(scans) else None
            row[f"state{h}"] = [-1 if one is None else one.state]
            row[f"bad{h}"] = [-1 if one is None or one.bad is None else one.bad[0]]
            row[f"found{h}"] = [None if one is None or one.bad is None else one.bad[1]]
            row[f"qk{h}"] = [0 if one is None else one.quoted_kind]
            row[f"qlf{h}"] = [0 if one is None else one.quoted_lf]
        return pa.RecordBatch.from_pydict(row, schema=_split_schema())


def _joined(lines: Any) -> bytes:
    """Lines (an Arrow array of bytes) each ended with ``\\n``, as one piece of the file."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(lines) == 0:
        return b""
    listed = pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines)
    whole = pc.binary_join(listed, pa.scalar(b"\n", pa.binary()))
    return bytes(whole[0].as_buffer().to_pybytes()) + b"\n"


def _on_executors(
    spark: SparkSession, source: str, delimiter: bytes
) -> tuple[list[Verdict], list[str]]:
    """The verdicts of :func:`check` from one pass over the lines on the JVM and, for the
    files it cannot clear, a scan of each of their splits in Python."""
    from pyspark.sql import functions as sf

    facts = _facts(spark, source)
    names = list(spark.read.format("text").load(source).inputFiles())  # empty files too
    found = [verdict(file_key(f), c.kind, None) for f, c in facts.items() if not c.other]
    doubtful = {f: (c.kind, c.last_block, c.terminated) for f, c in facts.items() if c.other}
    # (a file with another line break always has a line end of its own: ``other`` needs one)
    if not doubtful:
        return found, names
    lines = (
        spark.read.option("lineSep", "\n")
        .text(source)
        .select(
            sf.col("value").cast("binary").alias("value"),
            sf.col("_metadata.file_path").alias("f"),
            sf.col("_metadata.file_block_start").alias("b"),
        )
        .where(sf.col("f").isin(list(doubtful)))
    )
    files = {f: (k, b, t) for f, (k, b, t) in doubtful.items() if k is not None}
    rows = lines.mapInArrow(SplitScans(delimiter, files), _SPLIT_SCHEMA).collect()
    splits: dict[str, list[Any]] = {}
    for row in rows:
        splits.setdefault(str(row["f"]), []).append(row)
    for f, (kind, _, _) in files.items():
        found.append(verdict(file_key(f), kind, _followed(kind, delimiter, splits.get(f, []))))
    return found, names


def _followed(kind: bytes, delimiter: bytes, splits: list[Any]) -> Scan:
    """One file's :class:`Scan` from its splits' findings: each split read from the state the
    one before it ended in."""
    whole = Scan(kind, delimiter)
    for row in sorted(splits, key=lambda r: int(r["b"])):
        h = 0 if whole.state == _START else 1
        if int(row[f"bad{h}"]) >= 0:
            whole.bad = (whole.lines + int(row[f"bad{h}"]), bytes(row[f"found{h}"]))
            return whole
        whole.quoted_kind += int(row[f"qk{h}"])
        whole.quoted_lf += int(row[f"qlf{h}"])
        whole.state = int(row[f"state{h}"])
        whole.lines += int(row["lines"])
    return whole


def restored(values: Any, kind: str) -> Any:
    """``values`` (text) with each ``\\n`` written as ``kind``: what the file held where Spark's
    multi-line reader wrote its quoted line end as ``\\n``."""
    import pyarrow.compute as pc

    if not pc.any(pc.match_substring(values, "\n")).as_py():
        return values
    return pc.replace_substring(values, "\n", kind)
