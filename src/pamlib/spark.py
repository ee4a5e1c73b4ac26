"""Scoring exports on Apache Spark, with the checks, rejects and counts of ``pamlib score``.

The job reads delimited exports with Spark's own CSV reader (every column as text, malformed
records kept) — or, where every line is a record both would split alike, as lines split in
Python into the same rows (:mod:`pamlib._spark_lines`) — numbers each file's rows, finds
repeated assessment ids across the whole data set in file order, and scores each partition's
Arrow batches through :class:`pamlib.TableScorer` — the same columnar checks and providers as
on one machine. :doc:`/spark` is the guide.

Only names travel to the executors: the scorer pickles to its provider's name and version and
its calibration's path and hash; each executor loads the provider from its installed entry point
and refuses to run on any difference. Every batch checks the provider's licence.

Needs the ``spark`` extra (pyspark ≥ 4.0, pandas ≥ 2.2) and Java 17 or later.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import functools
import hashlib
import io
import json
import logging
import os
import pickle
import re
import threading
import urllib.parse
import uuid
import weakref
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np

from pamlib.errors import ConfigurationError, PamlibError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from pamlib._spark_lines import LineSplitter as _LineSplitter
    from pamlib.pipeline import ScoreSummary, TableScorer
    from pamlib.plugins import PluginHost
    from pamlib.reporting._summary import CohortSummary
    from pamlib.tables.keys import Pseudonymiser

__all__ = [
    "CORRUPT_COLUMN",
    "KEY_COLUMNS",
    "SparkJobError",
    "SparkRun",
    "cohort_summary",
    "level_from_score",
    "read_export",
    "register_udfs",
    "score",
    "trajectories",
]

log = logging.getLogger(__name__)

#: Where Spark keeps the raw text of a record it could not split into the header's fields.
CORRUPT_COLUMN = "_corrupt_record"
_FILE = "_pamlib_file"
_BLOCK = "_pamlib_block"
_SEQ = "_pamlib_seq"
_ROW = "_pamlib_row"
_FIRST_FILE = "_pamlib_first_file"
_FIRST_ROW = "_pamlib_first_row"
#: A numbered row's file by its place in name order (:func:`_name_order`), for Spark to compare.
_PLACE = "_pamlib_place"
_FIRST = "_pamlib_first"
_KIND = "_pamlib_kind"
#: The columns :func:`read_export` adds after the export's own: the raw text of malformed
#: records, and the file, split and order each row came from (the stable row key's parts).
KEY_COLUMNS: tuple[str, ...] = (CORRUPT_COLUMN, _FILE, _BLOCK, _SEQ)
#: The row key :attr:`SparkRun.scored` ends with: the file and the row's number in it.
SCORED_KEY_COLUMNS: tuple[str, str] = ("source_file", "source_row")
_REJECT_COLUMNS = ("location", "code", "message", "fields", "record")
_METADATA_KEY = "pamlib"

Duplicates = Literal["global", "partition", "off"]
RowKey = Literal["number", "split"]
_READER_DUPLICATES: dict[str, Literal["track", "external", "off"]] = {
    "global": "external",
    "partition": "track",
    "off": "off",
}


class SparkJobError(PamlibError):
    """A Spark job stopped on an executor because pamlib refused to go on there (a provider or
    calibration that differs from the driver's, a licence that ran out); the message is
    pamlib's own."""


def _kind(value: object) -> str:
    """What ``value`` is, for a message: its type's name, never the value (it may be data)."""
    return "None" if value is None else f"a {type(value).__name__}"


def _path_argument(name: str, value: object) -> str:
    """A path given as text or ``os.PathLike``, as text; anything else refused, saying so."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a path (str or os.PathLike), not {_kind(value)}")
    return value


def _choice(name: str, value: object, choices: Sequence[str]) -> None:
    """Refuse an option that is not one of ``choices`` (a list is no choice, and unhashable)."""
    if not isinstance(value, str) or value not in choices:
        shown = repr(value) if isinstance(value, str) else _kind(value)
        named = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        raise ConfigurationError(f"{name} must be {named}, not {shown}")


def _check_session(spark: object) -> None:
    """Refuse what is not a Spark session before Spark is asked anything (a Spark Connect
    session is no subclass of the classic one)."""
    from pyspark.sql import SparkSession

    if isinstance(spark, SparkSession):
        return
    if type(spark).__name__ == "SparkSession" and type(spark).__module__.startswith("pyspark."):
        return
    raise ConfigurationError(f"spark must be a SparkSession, not {_kind(spark)}")


def _check_frame(name: str, df: object, what: str) -> None:
    from pyspark.sql import DataFrame

    if not isinstance(df, DataFrame):
        raise ConfigurationError(f"{name} must be {what}, not {_kind(df)}")


def _spark_options(
    multiline: bool, *, delimiter: str = ",", encoding: str = "UTF-8"
) -> dict[str, str]:
    """Spark's CSV options for an export as ``pamlib score`` reads one: RFC 4180 quoting
    (a doubled quote escapes a quote), nothing trimmed, malformed records kept whole."""
    return {
        "header": "true",
        "multiLine": str(multiline).lower(),
        "sep": delimiter,
        "quote": '"',
        "escape": '"',
        "mode": "PERMISSIVE",
        "columnNameOfCorruptRecord": CORRUPT_COLUMN,
        "ignoreLeadingWhiteSpace": "false",
        "ignoreTrailingWhiteSpace": "false",
        "encoding": encoding,
    }


#: Java's names of the Python codecs whose names Java does not know.
_JAVA_CHARSETS = {
    "iso8859-1": "ISO-8859-1",
    "cp1252": "windows-1252",
    "ascii": "US-ASCII",
    "utf-16-le": "UTF-16LE",
    "utf-16-be": "UTF-16BE",
    "utf-32-le": "UTF-32LE",
    "utf-32-be": "UTF-32BE",
}
#: Encodings whose line breaks are not the single bytes Spark splits a file at.
_WIDE = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be")


def _java_charset(encoding: str | None, multiline: bool) -> tuple[str, str]:
    """The Python codec name of ``encoding`` (default UTF-8; pamlib's error for an unknown
    one) and the name Java knows it by."""
    from pamlib.formats.encoding import codec_name

    python = "utf-8" if encoding is None else codec_name(encoding)
    if python in _WIDE and not multiline:
        raise ConfigurationError(
            f"{python} exports are read with multiline=True: Spark splits files at line-break "
            "bytes, which this encoding does not have"
        )
    return python, _JAVA_CHARSETS.get(python, python)


#: The encodings Spark 4 reads unless ``spark.sql.legacy.javaCharsets`` lets it use any of Java's.
_SPARK_CHARSETS = frozenset(
    {"iso-8859-1", "us-ascii", "utf-16", "utf-16be", "utf-16le", "utf-32", "utf-8"}
)
_LEGACY_CHARSETS = "spark.sql.legacy.javaCharsets"


def _check_charset(spark: SparkSession, charset: str) -> None:
    """Refuse, here, an encoding Spark's CSV reader would refuse when the job runs."""
    if charset.lower().replace("_", "-") in _SPARK_CHARSETS:
        return
    if str(spark.conf.get(_LEGACY_CHARSETS, "false")).lower() != "true":
        raise ConfigurationError(
            f"Spark reads {charset} only with {_LEGACY_CHARSETS}=true in the session's "
            f"configuration (else only {', '.join(sorted(_SPARK_CHARSETS))})"
        )
    jvm = getattr(spark, "_jvm", None)  # none in a Spark Connect session
    if jvm is not None and not jvm.java.nio.charset.Charset.isSupported(charset):
        raise ConfigurationError(f"Java knows no encoding {charset!r}: give one it knows")


def _first_line(spark: SparkSession, path: str) -> str | None:
    """The first line of a file of the export (a UTF-8 one), read as text: one short job."""
    from pyspark.sql import functions as sf

    rows = spark.read.text(path).where(sf.col("_metadata.file_block_start") == 0).limit(1).collect()
    return str(rows[0][0]) if rows else None


#: How much of the start of each file :func:`read_export` reads on the driver to find its
#: encoding when none is given: one read of each file, of at most this many bytes.
_HEAD_BYTES = 1 << 20
#: Files whose heads the driver reads at once.
_HEAD_THREADS = 8
#: How :func:`read_export` is told an encoding, in pamlib's messages (``{}``: a codec's name).
_ENCODING_OPTION = "encoding='{}'"
#: Encodings that read every byte below 0x80 as ASCII, so a file of ASCII only reads the same.
_ASCII_BASED = ("utf-8", "cp1252", "latin-1")


def _file_heads(spark: SparkSession, listed: Sequence[str]) -> list[tuple[str, bytes]]:
    """The first :data:`_HEAD_BYTES` of each file Spark reads for the export (``listed``, by
    :func:`_check_listing`; in name order), decompressed as Spark decompresses them, read once
    on the driver through Hadoop's file system, so any path Spark reads is read here too."""
    try:
        jvm = spark._jvm
        hadoop = spark._jsc.hadoopConfiguration()
    except AttributeError:  # Spark Connect: no JVM to reach from Python
        jvm = hadoop = None
    if jvm is None or hadoop is None:
        raise ConfigurationError(
            "give the export's encoding (encoding=): a Spark Connect session cannot read the "
            "start of its files on the driver to find it"
        )
    codecs = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(hadoop)
    latin1 = jvm.java.nio.charset.StandardCharsets.ISO_8859_1

    def head(uri: str) -> tuple[str, bytes]:
        file = jvm.org.apache.hadoop.fs.Path(jvm.java.net.URI(uri))
        stream = file.getFileSystem(hadoop).open(file)
        try:
            codec = codecs.getCodec(file)
            if codec is not None:
                stream = codec.createInputStream(stream)
            # Read into the JVM's own buffer, each byte a Latin-1 character, and sent as one
            # string: Py4J sends a byte array as text that it decodes a byte at a time in
            # Python, a tenth of a second for each MiB.
            reader = jvm.java.io.InputStreamReader(stream, latin1)
            buffer = jvm.java.nio.CharBuffer.allocate(_HEAD_BYTES)
            while buffer.hasRemaining() and reader.read(buffer) >= 0:
                pass
            return str(uri), str(buffer.flip().toString()).encode("latin-1")
        finally:
            stream.close()

    uris = sorted(listed, key=_name_order)
    if len(uris) < 2:
        return [head(uri) for uri in uris]
    # Each file's head costs a few calls to the JVM and its wait on storage: an export of
    # hundreds of files is read on a few threads at once (results in name order).
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(_HEAD_THREADS, len(uris))) as pool:
        return list(pool.map(head, uris))


def _file_chunks(spark: SparkSession, uri: str) -> Iterator[bytes]:
    """The whole of one file of the export, decompressed as Spark decompresses it, read on the
    driver through Hadoop's file system :data:`_HEAD_BYTES` at a time (as :func:`_file_heads`
    reads its start)."""
    jvm: Any = spark._jvm
    hadoop: Any = spark._jsc.hadoopConfiguration()
    file = jvm.org.apache.hadoop.fs.Path(jvm.java.net.URI(uri))
    stream = file.getFileSystem(hadoop).open(file)
    try:
        codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(hadoop).getCodec(file)
        if codec is not None:
            stream = codec.createInputStream(stream)
        latin1 = jvm.java.nio.charset.StandardCharsets.ISO_8859_1
        reader = jvm.java.io.InputStreamReader(stream, latin1)
        buffer = jvm.java.nio.CharBuffer.allocate(_HEAD_BYTES)
        while True:
            buffer.clear()
            while buffer.hasRemaining() and reader.read(buffer) >= 0:
                pass
            chunk = str(buffer.flip().toString()).encode("latin-1")
            if not chunk:
                return
            yield chunk
    finally:
        stream.close()


def _detected_encoding(heads: list[tuple[str, bytes]]) -> str:
    """The encoding to read files in, found from their starts by ``pamlib score``'s rule
    (:mod:`pamlib.formats.encoding`). Spark reads every file of one DataFrame in one encoding:
    a file found to be ASCII only is read the same in UTF-8, cp1252 or latin-1, a latin-1 one
    the same in cp1252; files that need different encodings are refused, naming them."""
    from pamlib.formats.encoding import detect_encoding, shown_name

    found: dict[str, list[str]] = {}
    ascii_only: list[str] = []
    for uri, head in heads:
        name = urllib.parse.unquote(uri.rsplit("/", 1)[-1])
        complete = len(head) < _HEAD_BYTES
        encoding, guessed = detect_encoding(
            head[:4],
            functools.partial(iter, (head,)),
            _shown_path(name),  # for its message only
            complete=complete,
            option=_ENCODING_OPTION,
        )
        if encoding == "utf-8" and complete and head.isascii():
            ascii_only.append(name)
            continue
        if guessed:
            log.warning(
                "read %s as %s (not UTF-8); give encoding= to choose", shown_name(name), encoding
            )
        found.setdefault(encoding, []).append(name)
    if {"cp1252", "latin-1"} == set(found):  # no byte of a latin-1 file differs in cp1252
        found = {"cp1252": found["cp1252"] + found["latin-1"]}
    if not found:
        return "utf-8"
    if len(found) > 1 or (ascii_only and next(iter(found)) not in _ASCII_BASED):
        if ascii_only:
            found["ASCII"] = ascii_only
        named = "; ".join(
            f"{encoding}: {', '.join(map(shown_name, names[:3]))}{' …' if len(names) > 3 else ''}"
            for encoding, names in sorted(found.items())
        )
        raise ConfigurationError(
            f"the files are in different encodings ({named}), and Spark reads one DataFrame in "
            "one: read each encoding's files with read_export(…, encoding=…) and union the "
            "DataFrames, or give the one encoding that reads them all"
        )
    return next(iter(found))


def _reading_charset(
    spark: SparkSession,
    encoding: str | None,
    heads: list[tuple[str, bytes]] | None,
    multiline: bool,
) -> tuple[str, str]:
    """The Python and Java names of the encoding to read in: ``encoding`` where given, else
    the one found in ``heads``; an encoding Spark cannot read stops here, saying it was found."""
    if heads is None:
        python, charset = _java_charset(encoding, multiline)
        _check_charset(spark, charset)
        return python, charset
    found = _detected_encoding(heads)
    try:
        python, charset = _java_charset(found, multiline)
        _check_charset(spark, charset)
    except ConfigurationError as error:
        raise ConfigurationError(
            f"the export was found to be {found} (no encoding= given): {error}"
        ) from None
    return python, charset


def _heads_if_readable(
    spark: SparkSession, listed: Sequence[str]
) -> list[tuple[str, bytes]] | None:
    """:func:`_file_heads`, or ``None`` where the driver cannot read them (Spark Connect)."""
    try:
        return _file_heads(spark, listed)
    except ConfigurationError:
        return None


def _check_one_header(
    heads: list[tuple[str, bytes]] | None, encoding: str, delimiter: str, header: tuple[str, ...]
) -> None:
    """Refuse an export whose files do not share the first file's header, naming them.

    Spark's CSV reader drops each file's first line and reads the rest by position, as the
    schema (the first file's header) says: a file whose columns are in another order, or are
    others, would have them read as the first file's — an answer taken for another item's, a
    date for an id. An empty file (or one of a byte-order mark alone) holds no row, and a
    header whose first line ends inside quotes (a line break in a name) is not compared."""
    from pamlib.formats._records import ends_inside_quotes, split_records
    from pamlib.formats.encoding import shown_name

    if not heads or len(heads) < 2:
        return
    differ = []
    for uri, head in heads:
        line = None if _no_text(head, encoding) else _head_line(head, encoding)
        if line is None or ends_inside_quotes(line, delimiter):
            continue
        records = list(split_records(io.StringIO(line.removeprefix("\ufeff"), newline=""),
                                     delimiter=delimiter))  # fmt: skip
        if not records or tuple(records[0].fields) != header:
            differ.append(shown_name(urllib.parse.unquote(uri.rsplit("/", 1)[-1])))
    if differ:
        named = ", ".join(differ[:3]) + (" …" if len(differ) > 3 else "")
        raise ConfigurationError(
            f"the files of the export do not share one header: {named} differ from the first "
            "file's, and Spark would read their columns by the first file's order; read each "
            "layout with its own read_export(…) and union the DataFrames by name"
        )


def _no_text(head: bytes, encoding: str) -> bool:
    """Whether a file (its start) holds nothing, or nothing but a byte-order mark (what some
    tools save for an empty sheet): no header and no row, as a file of 0 bytes."""
    return len(head) <= 4 and not head.decode(encoding, "replace").removeprefix("\ufeff")


def _head_line(head: bytes, encoding: str) -> str | None:
    """The first line of a file's start in ``encoding`` (``None`` if no line ends in it)."""
    text = head.decode(encoding, "replace")
    end = re.search("[\r\n]", text)
    if end is None:
        return text if len(head) < _HEAD_BYTES else None
    return text[: end.start()]


def _header_fields(
    spark: SparkSession, path: str, options: Mapping[str, str], line: str | None
) -> tuple[str, ...] | None:
    """The header's names: split from its first line where that holds the whole header, else
    read by Spark's CSV reader itself (a quoted line break in a name, another encoding)."""
    from pamlib.formats._records import ends_inside_quotes, split_records

    delimiter = options["sep"]
    if line is not None and not ends_inside_quotes(line, delimiter):
        records = list(split_records(io.StringIO(line, newline=""), delimiter=delimiter))
        if not records:
            return None
        return tuple(records[0].fields)
    rows = (  # the header's width is unknown until it is read: read it untyped
        spark.read.options(**{k: v for k, v in options.items() if k != "mode"})
        .option("header", "false")
        .csv(path)
        .limit(1)
        .collect()
    )
    return tuple(("" if v is None else str(v)) for v in rows[0]) if rows else None


def _positional(position: int) -> str:
    """The name the job's input gives the export's column at ``position``: pyspark's
    ``mapInArrow`` looks each input column up by its name, which fails on a name holding a
    backtick; the job gives the columns their header's names again (:meth:`_Job._named`)."""
    return f"_pamlib_c{position}"


def _column(name: str) -> Column:
    """The column named ``name``, whatever it holds: quoted for Spark, a backtick in it doubled
    (an export's header may name a column anything)."""
    from pyspark.sql import functions as sf

    return sf.col("`" + name.replace("`", "``") + "`")


#: Names a header may not use: the key columns, and Spark's own file metadata column (a
#: column of the export named so would hide it).
_RESERVED: tuple[str, ...] = (*KEY_COLUMNS, "_metadata")


def _check_files(spark: SparkSession, path: str) -> None:
    """Refuse, saying why, a path under which Spark finds no file to read: it skips files
    whose names begin with ``_`` or ``.`` even when named on their own, and reads nothing."""
    if not spark.read.format("text").load(path).inputFiles():
        raise ConfigurationError(
            f"{_shown_path(path)}: Spark finds no file to read there (it skips files whose "
            "names begin with '_' or '.': rename such a file)"
        )


def _check_listing(spark: SparkSession, path: str) -> list[str]:
    """Refuse an export Spark would read only part of, or not at all, naming why.

    Given a folder, Spark reads the files in it and in partition folders (``site=A/``) below
    it, and skips every other subfolder without a word (``export/2024/…``); folders of both
    kinds, or files beside partition folders, stop it with an error of its own. Each is found
    here, on the driver, before anything is read: a file left unread is records lost. Files and
    folders whose names begin with ``_`` or ``.`` (``_SUCCESS``, ``.DS_Store``) are skipped as
    Spark skips them. A Spark Connect session cannot list files on the driver; there, only
    Spark's own error is turned into pamlib's. Gives the files Spark reads, as it lists them.
    """
    from pyspark.errors import PySparkException

    from pamlib._spark_line_ends import file_key
    from pamlib.errors import FormatError

    try:
        read = spark.read.format("text").load(path).inputFiles()
    except PySparkException as error:
        if error.getCondition() != "CONFLICTING_DIRECTORY_STRUCTURES":
            raise
        raise FormatError(
            f"{_shown_path(path)}: Spark cannot read these files as one export: they are in "
            "folders at different depths, or in partition folders (name=value) beside others. "
            f"{_NAME_THEM.format(_shown_path(path))}"
        ) from None
    unread = _unread_files(spark, path, {file_key(uri) for uri in read})
    if unread:
        shown = ", ".join(_shown_path(name) for name in unread[:3])
        more = f" and {len(unread) - 3} more" if len(unread) > 3 else ""
        raise FormatError(
            f"{_shown_path(path)}: Spark reads no file in a subfolder (other than a partition "
            f"folder, name=value), and {len(unread)} "
            f"{'is' if len(unread) == 1 else 'are'} there ({shown}{more}). "
            f"{_NAME_THEM.format(_shown_path(path))}"
        )
    return [str(uri) for uri in read]


#: What to do about an export whose files Spark would not read as one (``{}``: its path).
_NAME_THEM = (
    "Give a pattern that names every file (a Hadoop glob, as {}/*/*.csv for the files one "
    "folder down), or read each folder on its own"
)


def _hidden(name: str) -> bool:
    """Whether Spark skips a file or folder so named when it lists a folder (its rule)."""
    return (name.startswith("_") and "=" not in name) or name.startswith(".")


def _unread_files(spark: SparkSession, path: str, read: Collection[str]) -> list[str]:
    """The files under ``path`` (a folder, a file or a pattern) that Spark does not read
    (``read``: the keys of those it does), each as its path below the folder it is in (given or
    matched), in name order; none where the driver cannot list files (Spark Connect)."""
    from pamlib._spark_line_ends import file_key

    jvm = getattr(spark, "_jvm", None)
    jsc = getattr(spark, "_jsc", None)
    if jvm is None or jsc is None:
        return []
    pattern = jvm.org.apache.hadoop.fs.Path(path)
    system = pattern.getFileSystem(jsc.hadoopConfiguration())
    unread: list[tuple[str, str]] = []
    for status in system.globStatus(pattern) or ():
        if not status.isDirectory():
            continue  # a file named (or matched) on its own: read unless its name is hidden
        root = str(status.getPath().toUri().getPath()).rstrip("/") + "/"
        files = system.listFiles(status.getPath(), True)
        while files.hasNext():
            uri = files.next().getPath().toUri()
            below = str(uri.getPath())[len(root) :]
            if any(_hidden(part) for part in below.split("/")):
                continue
            if file_key(str(uri)) not in read:
                unread.append((str(uri.getPath()), below))
    return [below for _, below in sorted(unread)]


def _shown_path(path: str) -> str:
    """The export's path as pamlib's messages give it: as given, each NHS number in it withheld
    (a file saved as ``9434765919.csv``, or a folder so named), as ``source_file`` withholds
    them. Errors travel further than the terminal (a notebook, the driver's log)."""
    from pamlib.identity import withhold_nhs_numbers

    return withhold_nhs_numbers(path)


def read_export(
    spark: SparkSession,
    path: str | os.PathLike[str],
    *,
    mapping: str | os.PathLike[str] | Mapping[str, str] | None = None,
    multiline: bool = True,
    delimiter: str | None = None,
    encoding: str | None = None,
) -> DataFrame:
    """The records of a delimited export (a file, a folder or a glob of files with one
    header) as a DataFrame of text columns named as in the header, followed by
    :data:`KEY_COLUMNS`.

    The header is matched as ``pamlib score`` matches it (``mapping`` and the recognised
    synonyms) on the driver, so a missing column stops here with pamlib's
    :class:`~pamlib.errors.FormatError`; the mapping travels with the DataFrame to
    :func:`score`. ``multiline=True`` reads quoted line breaks as ``pamlib score`` does but
    makes each file one task; ``False`` splits large files across tasks and reads a record with
    a quoted line break as two (:doc:`/spark` lists the differences). Either way, :func:`score`
    given this DataFrame as it is reads an export whose lines are its records as lines, split
    across tasks (:ref:`spark-lines`).

    ``delimiter`` and ``encoding`` are ``pamlib score``'s ``--delimiter`` and ``--encoding``:
    the delimiter is the mapping file's, else found in the header (``,`` ``;`` or tab, as
    ``pamlib score`` finds it). The encoding is any Python codec name that Java also knows
    (``cp1252``, ``latin-1``, ``utf-16`` with ``multiline=True``); without one it is found as
    ``pamlib score`` finds it, from the first MiB of each file, read here on the driver
    (:doc:`/spark`: files found to need different encodings are refused). A record with a byte
    not valid in it is rejected (``encoding``) when scored, as is one holding U+FFFD. With
    ``multiline=True`` every file's line ends are read first, and a file whose line ends change
    outside quotes (a ``\\n`` row in a ``\\r\\n`` file) is refused with a
    :class:`~pamlib.errors.FormatError` naming it and the line (:ref:`spark-line-ends`).

    Arguments of the wrong kind raise :class:`~pamlib.errors.ConfigurationError`, a path that
    names nothing :class:`~pamlib.errors.FormatError`: here, before Spark is asked to read.
    """
    from pyspark.errors import AnalysisException

    from pamlib.errors import FormatError

    _check_session(spark)
    path = _path_argument("path", path)
    wrong = [
        f"{name} must be {what}, not {_kind(value)}"
        for name, value, kinds, what in (
            ("multiline", multiline, (bool,), "True or False"),
            ("delimiter", delimiter, (str, type(None)), "a character"),
            ("encoding", encoding, (str, type(None)), "an encoding's name"),
        )
        if not isinstance(value, kinds)
    ]
    given: object = mapping  # typed, but a caller's may be anything
    if given is not None and not isinstance(given, (str, os.PathLike, Mapping)):
        wrong.append(f"mapping must be a mapping file's path or a mapping, not {_kind(given)}")
    if wrong:
        raise ConfigurationError("; ".join(wrong))
    try:
        return _read_export(
            spark,
            path,
            mapping=mapping,
            multiline=multiline,
            delimiter=delimiter,
            encoding=encoding,
        )
    except AnalysisException as error:
        if error.getCondition() != "PATH_NOT_FOUND":
            raise
        raise FormatError(f"{_shown_path(path)}: no such file or folder") from None


def _read_export(
    spark: SparkSession,
    path: str,
    *,
    mapping: str | os.PathLike[str] | Mapping[str, str] | None,
    multiline: bool,
    delimiter: str | None,
    encoding: str | None,
) -> DataFrame:
    """:func:`read_export`, its arguments checked."""
    from pamlib import _spark_line_ends
    from pamlib.formats._records import detect_delimiter
    from pamlib.formats.base import ReadOptions
    from pamlib.formats.layout import Layout, delimiter_problem, with_mapping

    read_options = with_mapping(ReadOptions(), mapping)
    listed = _check_listing(spark, path)
    heads = _file_heads(spark, listed) if encoding is None else None
    python_encoding, charset = _reading_charset(spark, encoding, heads, multiline)
    if heads is None:  # for the header, and to compare every file's with it
        heads = _heads_if_readable(spark, listed)
    given = delimiter if delimiter is not None else read_options.settings.get("delimiter")
    if given is not None:
        given = {"\\t": "\t", "tab": "\t"}.get(str(given), str(given))
        why = delimiter_problem(given)
        if why is not None:
            raise ConfigurationError(f"delimiter {given!r} cannot be used: it {why}")
    # the first line: from the start of the first file (in name order) that is not empty (an
    # empty file holds no header, nor any row), else — where the driver cannot read it (Spark
    # Connect) — as UTF-8 text (its names where it is UTF-8, its delimiters in any encoding
    # whose line breaks and delimiters are single ASCII bytes)
    first = next((h for _, h in heads if not _no_text(h, python_encoding)), b"") if heads else None
    line = _head_line(first, python_encoding) if first is not None else None
    decoded = line is not None or python_encoding == "utf-8"
    if line is None and python_encoding not in _WIDE:
        line = _first_line(spark, path)
    if line is None:  # no first line read: is there a file at all? (a listing, only here)
        _check_files(spark, path)
    if line is not None and line.startswith("\ufeff"):
        line = line[1:]
    if given is None and line is None:
        raise ConfigurationError(
            f"give the delimiter of a {python_encoding} export (delimiter=): Spark cannot read "
            "its header as text to find it"
        )
    sep = given if given is not None else detect_delimiter(line or "")
    options = _spark_options(multiline, delimiter=sep, encoding=charset)
    header = _header_fields(spark, path, options, line if decoded else None)
    if header is None:
        raise ConfigurationError(f"{_shown_path(path)}: no header (the export is empty)")
    if header and header[0].startswith("\ufeff"):
        header = (header[0][1:], *header[1:])
    if len(set(header)) != len(header) or any(name in _RESERVED for name in header):
        raise ConfigurationError(
            f"{_shown_path(path)}: the header repeats a column name (or uses one of "
            f"{', '.join(_RESERVED)})"
        )
    Layout.resolve(header, read_options, source=_shown_path(path))  # every header problem
    _check_one_header(heads, python_encoding, sep, header)
    line_breaks = (
        _spark_line_ends.check(
            spark,
            path,
            heads=heads,
            head_bytes=_HEAD_BYTES,
            encoding=python_encoding,
            delimiter=sep,
            chunks=functools.partial(_file_chunks, spark),
        )
        if multiline
        else {}
    )
    described = {
        "mapping": _mapping_document(mapping),
        "source": path,
        "delimiter": sep,
        "encoding": python_encoding,
        "options": options,
        "header": list(header),
        # the header's own line, for the job that reads the export as lines (_spark_lines)
        "header_line": line if decoded and line is not None else None,
    }
    if line_breaks:  # quoted line ends Spark's multi-line reader writes as \n (_spark_line_ends)
        described["line_breaks"] = line_breaks
    frame = _export_frame(spark, described)
    _GIVEN.add(frame)
    return frame


def _export_frame(spark: SparkSession, described: Mapping[str, Any]) -> DataFrame:
    """The DataFrame :func:`read_export` gives for what it found (``described``): the same
    plan for the same findings, which is how :func:`score` tells an export read and left as it
    was (:func:`_read_as_given`)."""
    from pyspark.sql import functions as sf
    from pyspark.sql.types import StringType, StructField, StructType

    header = [str(name) for name in described["header"]]
    schema = StructType(
        [StructField(name, StringType()) for name in header]
        + [StructField(CORRUPT_COLUMN, StringType())]
    )
    frame = spark.read.options(**described["options"]).schema(schema).csv(described["source"])
    return frame.select(
        *(_column(name) for name in header),
        sf.col(CORRUPT_COLUMN),
        sf.col("_metadata.file_path").alias(_FILE),
        sf.col("_metadata.file_block_start").alias(_BLOCK),
        sf.monotonically_increasing_id().alias(_SEQ, metadata={_METADATA_KEY: dict(described)}),
    )


#: The DataFrames :func:`read_export` gave and that are still in use: a DataFrame never
#: changes, so one of these is as it was given without building its plan again to compare.
_GIVEN: weakref.WeakSet[DataFrame] = weakref.WeakSet()


def _read_as_given(df: DataFrame, described: Mapping[str, Any]) -> bool:
    """Whether ``df`` is what :func:`read_export` gave, every row of it and nothing else (not
    filtered, joined or changed since): only then may its rows be read again another way."""
    if "options" not in described or "header" not in described:
        return False
    if df in _GIVEN:
        return True
    try:
        return bool(df.sameSemantics(_export_frame(df.sparkSession, described)))
    except Exception as exc:  # any doubt keeps the plain job
        # the type only: Spark's message (and its traceback) quotes the export's full path
        log.debug("could not compare the DataFrame with the export's own (%s)", type(exc).__name__)
        return False


def _mapping_document(mapping: str | os.PathLike[str] | Mapping[str, str] | None) -> Any:
    if isinstance(mapping, (str, os.PathLike)):
        return {"file": os.fspath(mapping)}
    return None if mapping is None else {"columns": dict(mapping)}


def _described(df: DataFrame) -> dict[str, Any]:
    missing = [c for c in KEY_COLUMNS if c not in df.columns]
    if missing:
        raise ConfigurationError(
            "the DataFrame has no row key: read the export with pamlib.spark.read_export "
            f"(missing {', '.join(missing)})"
        )
    found: dict[str, Any] = df.schema[_SEQ].metadata.get(_METADATA_KEY, {})
    return found


# -- scoring -------------------------------------------------------------------------------------


def score(
    df: DataFrame,
    *,
    provider: str | None = None,
    calibration: Any = None,
    duplicates: Duplicates = "global",
    mapping: str | os.PathLike[str] | Mapping[str, str] | None = None,
    instrument: str | None = None,
    day_first: bool | None = None,
    keep_nhs_number: bool = False,
    pseudonymiser: Pseudonymiser | None = None,
    cache_export: bool = False,
    row_key: RowKey = "number",
) -> SparkRun:
    """Score an export read by :func:`read_export`. Here the rows are numbered and the
    repeated ids found (one job reading the export; none with ``row_key="split"``); the
    scoring runs when the result is first used. ``cache_export`` keeps the export's rows in
    Spark's cache (memory, then disk) from the first read until the output is kept, so that
    the export is parsed once rather than twice: meant for exports that are slow to read (an
    object store, compressed files); on a local disk it measured slower (:doc:`/spark` has
    the figures).

    ``provider`` and ``calibration`` choose the provider as :class:`pamlib.TableScorer` does
    (``calibration`` a path: each executor reads the file and checks its hash). ``mapping``
    (default: the one given to :func:`read_export`), ``instrument`` and ``day_first`` are
    ``pamlib score``'s, and so are ``keep_nhs_number`` (the normalised NHS number as a column,
    ``--keep-nhs-number``; without it, the row key's ``source_file`` names a file whose path
    holds an NHS number by its place in name order, that number withheld: :doc:`/spark`) and
    ``pseudonymiser`` (its keyed pseudonym as ``nhs_pseudonym``, ``--pseudonym-key``; it
    reaches the executors inside the job, key included, as a function shipped to them would).
    ``duplicates``: ``global`` finds a repeated assessment id anywhere in the data, keeping its
    first occurrence in file order (one shuffle of the ids); ``partition`` only within each
    file's rows that one task reads; ``off`` not at all.

    ``row_key``: ``number`` (the default) keys each row by its number in its file, as ``pamlib
    score`` does, which needs a pass over the export before the job (with ``duplicates=
    "global"``, the same pass finds the repeats). ``split`` needs no pass: each task keys its
    rows by where its split starts in the file and the row's place in it — the row's number in
    a file's first split (the whole file, up to Spark's ``maxPartitionBytes``, 128 MiB by
    default), beyond it a larger number that keeps the file's order (:ref:`spark-split-keys`).
    It goes with ``duplicates="partition"`` or ``"off"``; ``read`` in the summary is then
    the rows the tasks read.

    The provider of every instrument is chosen and its licence checked here, on the driver.
    A DataFrame as :func:`read_export` gave it, of an export whose lines are its records, is
    read again as lines (:ref:`spark-lines`): the same output, from a cheaper job.
    """
    from pyspark.sql import functions as sf

    from pamlib.formats.base import ReadOptions
    from pamlib.formats.layout import Layout
    from pamlib.pipeline import TableScorer

    _check_frame("df", df, "a DataFrame from pamlib.spark.read_export")
    _choice("duplicates", duplicates, tuple(_READER_DUPLICATES))
    _choice("row_key", row_key, ("number", "split"))
    for name, value in (("keep_nhs_number", keep_nhs_number), ("cache_export", cache_export)):
        if not isinstance(value, bool):
            raise ConfigurationError(f"{name} must be True or False, not {_kind(value)}")
    if row_key == "split" and duplicates == "global":
        raise ConfigurationError(
            "row_key='split' reads the export once, in the job: repeated ids can then be found "
            "within each task only (duplicates='partition') or not at all ('off')"
        )
    described = _described(df)
    if mapping is None:
        mapping = _mapping_from(described.get("mapping"))
    source = str(described.get("source", "spark"))
    header = tuple(c for c in df.columns if c not in KEY_COLUMNS)
    df = _text_columns(df, header)
    scorer = TableScorer(
        provider=provider,
        calibration=calibration,
        mapping=mapping,
        instrument=instrument,
        day_first=day_first,
        keep_nhs_number=keep_nhs_number,
        pseudonymiser=pseudonymiser,
        duplicates=_READER_DUPLICATES[duplicates],
        row_key=_ROW,
        source=source,
    )
    providers = scorer.prepare()
    if not providers:
        _refuse_no_provider(scorer)
    layout = Layout.resolve(header, scorer.options or ReadOptions(), source=_shown_path(source))
    _resolve_schema(scorer, header)
    aid_position = layout.columns.get("assessment_id")
    payload = pickle.dumps(scorer)
    job = _Job(
        payload=payload,
        digest=hashlib.sha256(payload).hexdigest(),
        header=header,
        schema=_combined_schema(scorer),
        delimiter=str(described.get("delimiter", ",")),
        encoding=str(described.get("encoding", "utf-8")),
        line_breaks=dict(described.get("line_breaks") or {}),
        withhold_files=not keep_nhs_number,
        file_places={} if keep_nhs_number else _file_places(df),
    )
    split_keys = row_key == "split"
    as_lines = (
        None
        if cache_export
        else _as_lines(df, described, header, aid_position, duplicates, split_keys=split_keys)
    )
    if as_lines is not None:
        combined, splitter, n_read = as_lines
        job = attrs.evolve(job, lines=splitter, split_keys=split_keys)
        return _run(scorer, providers, source=source, n_read=n_read, combined=combined, job=job)
    cached = None
    if cache_export and not df.is_cached:
        from pyspark import StorageLevel

        df = cached = df.persist(StorageLevel.MEMORY_AND_DISK)
    if split_keys:  # no pass: each task keys its rows (_Job.split_keys)
        combined = df.select(
            *(_column(c).alias(_positional(i)) for i, c in enumerate(header)),
            sf.col(CORRUPT_COLUMN),
            _FILE,
            _BLOCK,
        )
        job = attrs.evolve(job, split_keys=True)
        return _run(
            scorer, providers, source=source, n_read=None, combined=combined, job=job, read=cached
        )
    id_column = None
    if duplicates == "global" and aid_position is not None:
        id_column = header[aid_position]
    numbered, n_read = _numbered(df, id_column, header)
    if duplicates == "partition":
        numbered = numbered.sortWithinPartitions(_FILE, _ROW)
    combined = numbered.select(
        *(_column(c).alias(_positional(i)) for i, c in enumerate(header)),
        sf.col(CORRUPT_COLUMN),
        _FILE,
        _ROW,
        _FIRST,
    )
    return _run(
        scorer, providers, source=source, n_read=n_read, combined=combined, job=job, read=cached
    )


def _file_places(df: DataFrame) -> dict[str, int]:
    """The export's files whose path holds an NHS number (an export saved one file per
    patient as ``9434765919.csv``), each by its place among all the export's files in name
    order, as line-end refusals number them: the output names such a file by that place
    (:meth:`_Job._shown_file`). Spark's listing of the files, which planning the job makes
    anyway."""
    from pamlib._spark_line_ends import file_key
    from pamlib.identity import holds_nhs_number

    keys = sorted({file_key(str(uri)) for uri in _guarded(df.inputFiles)})
    return {key: place for place, key in enumerate(keys, start=1) if holds_nhs_number(key)}


def _refuse_no_provider(scorer: TableScorer) -> None:
    """Raise why no provider fits any instrument (a provider not installed, none licensed):
    :meth:`~pamlib.pipeline.TableScorer.prepare` skips such instruments, and a job of only
    those would fail on every task instead, as ``pamlib score`` fails at once."""
    from pamlib.errors import ScoringError
    from pamlib.scoring import select_provider

    for instrument in scorer.host.instruments():
        select_provider(
            scorer.provider_name, instrument, calibration=scorer.calibration, host=scorer.host
        )
    raise ScoringError("no scoring provider fits any registered instrument")


#: The Spark types of the columns :func:`score` reads, as :func:`read_export` gives them.
_KEY_TYPES = {CORRUPT_COLUMN: "string", _FILE: "string", _BLOCK: "bigint", _SEQ: "bigint"}


def _text_columns(df: DataFrame, header: tuple[str, ...]) -> DataFrame:
    """``df`` with every column :func:`score` reads checked to be text, as :func:`read_export`
    gives it: a typed column (a number, a date, a list) would fail inside the job, so it is
    refused here, naming it and its type. A column of Spark's null type (``lit(None)``, no
    type at all) is taken as text with every field empty, which is all it can hold."""
    from pyspark.sql.types import NullType, StringType

    nulls = []
    for field in df.schema.fields:
        name, kind = field.name, field.dataType
        wanted = _KEY_TYPES.get(name, "string")
        if name not in _KEY_TYPES and name not in header:
            continue
        if isinstance(kind, NullType) and name in header:
            nulls.append(name)
        elif kind.simpleString() != wanted:
            what = "text (string)" if wanted == "string" else f"{wanted} (as read_export gives it)"
            raise ConfigurationError(f"column {name} must be {what}, not {kind.simpleString()}")
    if not nulls:
        return df
    return df.withColumns({name: _column(name).cast(StringType()) for name in nulls})


def _run(
    scorer: TableScorer,
    providers: Mapping[str, Any],
    *,
    source: str,
    n_read: int | None,
    combined: DataFrame,
    job: _Job,
    read: DataFrame | None = None,
) -> SparkRun:
    from pyspark.sql.pandas.types import from_arrow_schema

    out = combined.mapInArrow(job, from_arrow_schema(job.schema))
    return SparkRun(
        n_read=n_read,
        out=out,
        job=(combined, job),
        scored_columns=tuple(scorer.output_schema().names),
        source=source,
        providers=tuple(sorted({p.id for p in providers.values()})),
        licensed=bool(providers) and all(p.licence is not None for p in providers.values()),
        read=read,
    )


#: Whether :func:`score` may read an export as lines (:mod:`pamlib._spark_lines`) where it can:
#: the tests turn it off to compare the two ways on the same exports.
_READ_LINES = True


def _as_lines(
    df: DataFrame,
    described: Mapping[str, Any],
    header: tuple[str, ...],
    aid_position: int | None,
    duplicates: str,
    *,
    split_keys: bool = False,
) -> tuple[DataFrame, _LineSplitter, int | None] | None:
    """The export's lines, what splits them in each task, and the rows read — where ``df`` is
    an export as :func:`read_export` gave it whose lines are its records (a pass over the
    lines tells: :func:`pamlib._spark_lines.plan`); else ``None``, and Spark's CSV reader
    splits the records."""
    from pamlib import _spark_lines

    line = described.get("header_line")
    if not _READ_LINES or line is None or described.get("encoding") != "utf-8":
        return None
    if duplicates == "partition" and described.get("options", {}).get("multiLine") == "true":
        return None  # a file is one task there: its repeats are all found, as the user expects
    if not _read_as_given(df, described):
        return None
    delimiter = str(described.get("delimiter", ","))
    multiline = described.get("options", {}).get("multiLine") == "true"
    if split_keys and multiline:
        return None  # a file is one split there: Spark's CSV reader splits its records
    source = str(described["source"])
    if split_keys:  # no pass: each task takes its lines as they come
        return (
            _spark_lines.lines_frame(df.sparkSession, source, multiline=False, sequence=False),
            _spark_lines.LineSplitter(
                plan=None, header=header, delimiter=delimiter, header_line=str(line)
            ),
            None,
        )
    lines = _spark_lines.lines_frame(df.sparkSession, source, multiline=multiline)
    id_position = aid_position if duplicates == "global" else None
    shape = _spark_lines.LineShape(
        header_line=str(line),
        delimiter=delimiter,
        n_fields=len(header),
        id_position=id_position,
        multiline=multiline,
    )
    found = _spark_lines.plan(lines, shape)
    if found is None:
        log.debug("the export's lines are not its records: Spark's CSV reader splits them")
        return None
    splitter = _spark_lines.LineSplitter(
        plan=found,
        header=header,
        delimiter=delimiter,
        id_name=None if id_position is None else header[id_position],
    )
    return lines, splitter, found.n_read


def _mapping_from(document: Any) -> str | Mapping[str, str] | None:
    if not document:
        return None
    if "file" in document:
        return str(document["file"])
    return dict(document["columns"])


def _resolve_schema(scorer: TableScorer, header: tuple[str, ...]) -> None:
    """Show the scorer the columns (no rows) so it knows its output's pass-through columns."""
    import pyarrow as pa

    empty = pa.table(
        {**{n: pa.array([], pa.string()) for n in header}, _ROW: pa.array([], pa.int64())}
    )
    first = np.zeros(0, dtype=np.bool_) if scorer.duplicates == "external" else None
    scorer.score(empty, first_occurrence=first)


def _numbered(
    df: DataFrame, id_column: str | None, header: tuple[str, ...]
) -> tuple[DataFrame, int]:
    """Each row's number in its file (1 for the first record after the header) and, with
    ``id_column``, whether its assessment id comes there first (:data:`_FIRST`); also the
    number of rows read (the summary's ``read``, counted from the export itself).

    A row's number comes from where Spark read it: the rows of each split (file, start) in
    order, the splits of a file in order of their start — the same numbers on every run and
    retry. One job reads the export once for both: it counts the rows of each split and finds
    the ids that repeat, with the smallest sequence number of each (grouping sets: one pass,
    one shuffle); a second, smaller pass only when that number may not be the first occurrence
    (:func:`_blocks_and_repeats`).
    """
    from pyspark.sql import functions as sf

    found = None if id_column is None else _blocks_and_repeats(df, id_column, header)
    if id_column is None or found is None:
        blocks = (
            df.groupBy(_FILE, _BLOCK)
            .agg(
                sf.count(sf.lit(1)).alias("_n"),
                sf.min(_SEQ).alias("_first_seq"),
                sf.max(_SEQ).alias("_last_seq"),
            )
            .collect()
        )
        numbered, n_read = _with_rows(df, blocks)
        if id_column is not None:  # too many repeats for the driver: join them to the rows
            return _joined_repeats(numbered, id_column, header), n_read
        return numbered.withColumn(_FIRST, sf.lit(True)), n_read
    blocks, repeats = found
    numbered, n_read = _with_rows(df, blocks)
    if not repeats:
        return numbered.withColumn(_FIRST, sf.lit(True)), n_read
    table = df.sparkSession.createDataFrame(
        repeats, f"_pamlib_aid string, {_FIRST_FILE} string, _first_block long, _first_seq long"
    )
    aid = _column(id_column)
    joined = numbered.join(sf.broadcast(table), aid == sf.col("_pamlib_aid"), "left")
    first: Column = sf.col(_FIRST_FILE).isNull() | (
        (sf.col(_FIRST_FILE) == sf.col(_FILE))
        & (sf.col("_first_block") == sf.col(_BLOCK))
        & (sf.col("_first_seq") == sf.col(_SEQ))
    )
    marked = joined.withColumn(_FIRST, first)
    return marked.drop("_pamlib_aid", _FIRST_FILE, "_first_block", "_first_seq"), n_read


def _with_rows(df: DataFrame, blocks: list[Any]) -> tuple[DataFrame, int]:
    """``df`` with :data:`_ROW`, from each split's count and first sequence number, and
    :data:`_PLACE` (both from one small table, broadcast)."""
    from pyspark.sql import functions as sf

    before: dict[str, int] = {}
    starts = []
    for row in blocks:
        # A split's rows are numbered one after another as its task reads them: more rows than
        # numbers means some were given twice (the union of two reads that overlap), and each
        # copy would be scored and counted as a record of the export.
        if int(row["_n"]) > int(row["_last_seq"]) - int(row["_first_seq"]) + 1:
            raise ConfigurationError(
                "the DataFrame holds some rows of the export twice (a union of reads that "
                "overlap?): score each file once"
            )
    places = {
        file: place
        for place, file in enumerate(sorted({str(r[_FILE]) for r in blocks}, key=_name_order))
    }
    for row in sorted(blocks, key=lambda r: (r[_FILE], r[_BLOCK])):
        done = before.get(row[_FILE], 0)
        place = places[str(row[_FILE])]
        starts.append((row[_FILE], int(row[_BLOCK]), int(row["_first_seq"]), done, place))
        before[row[_FILE]] = done + int(row["_n"])
    table = df.sparkSession.createDataFrame(
        starts, f"{_FILE} string, {_BLOCK} long, _first_seq long, _before long, {_PLACE} int"
    )
    joined = df.join(sf.broadcast(table), [_FILE, _BLOCK])
    numbered = joined.withColumn(
        _ROW, sf.col("_before") + sf.col(_SEQ) - sf.col("_first_seq") + sf.lit(1)
    ).drop("_before", "_first_seq")
    return numbered, sum(before.values())


#: Repeated assessment ids up to this many are found on the driver and sent to every task.
_BROADCAST_REPEATS = 100_000
_BLOCKS_SET, _IDS_SET = 1, 6  # grouping_id() of (file, block) and of (id) among the three


def _readable(id_column: str, header: tuple[str, ...]) -> Column:
    """Whether a row's assessment id counts as an occurrence: the row is one Spark's CSV reader
    could split (no ``_corrupt_record``) and the id is there.

    Spark parses only the columns a query needs, and a record is then corrupt only if those
    are missing: a line with more fields than the header, read for its id alone, is not — yet
    it is when the job reads every column, and ``pamlib score`` rejects it. Counting its id
    would turn the id's true first occurrence into a repeat. So the condition also looks at
    every column's length in bytes (cheap, never negative), which makes Spark parse the whole
    record: a condition that could be folded away (a hash of the columns is never null)
    would not. A test holds the pass's read schema to every column.

    Nor is a record the job rejects before its id is looked at (:func:`_unchecked`) an
    occurrence: ``pamlib score`` registers no id of a ``field-too-long`` or ``encoding``
    reject, and scores the next record with that id."""
    from pyspark.sql import functions as sf

    whole = sf.coalesce(sf.greatest(*(sf.octet_length(_column(c)) for c in header)), sf.lit(0))
    aid = _column(id_column)
    return (
        sf.col(CORRUPT_COLUMN).isNull()
        & aid.isNotNull()
        & (whole >= 0)
        & ~_unchecked([_column(c) for c in header], whole)
    )


def _unchecked(fields: list[Column], longest: Column, *, undecoded: Column | None = None) -> Column:
    """Whether the job rejects a row of ``fields`` before checking it: a field longer than
    pamlib's limit (:func:`_too_long_rows`) or holding U+FFFD (:func:`_undecoded_rows`;
    ``undecoded`` where the caller knows it more cheaply). ``longest`` is the row's longest
    field in bytes, or more: the fields' characters are counted only where it is over the
    limit, so a usual row costs a byte search for U+FFFD."""
    from pyspark.sql import functions as sf

    from pamlib.formats._records import MAX_FIELD_CHARS

    over = [sf.coalesce(sf.char_length(f) > MAX_FIELD_CHARS, sf.lit(False)) for f in fields]
    too_long = sf.when(longest > MAX_FIELD_CHARS, functools.reduce(_either, over))
    if undecoded is None:
        found = [sf.coalesce(f.contains("\ufffd"), sf.lit(False)) for f in fields]
        undecoded = functools.reduce(_either, found)
    return sf.coalesce(too_long, sf.lit(False)) | undecoded


def _either(left: Column, right: Column) -> Column:
    """One condition or the other (for :func:`functools.reduce` over conditions)."""
    return left | right


def _blocks_and_repeats(
    df: DataFrame, id_column: str, header: tuple[str, ...]
) -> tuple[list[Any], list[tuple[str, str, int, int]]] | None:
    """Every split's row count and first sequence number, and each assessment id that repeats
    with the (file, split, sequence) of its first occurrence in file order (files in name
    order); ``None`` when more than :data:`_BROADCAST_REPEATS` ids repeat.

    The pass takes per id only its count and smallest sequence number (longs, cheaper to
    aggregate than the smallest (file, split, sequence) struct), and :func:`_first_places`
    finds where that number was read. When Spark read splits out of file order, that number
    need not be the first occurrence, and :func:`_first_occurrences` asks the export again,
    for the ids it could not place only."""
    from pyspark.sql import functions as sf

    aid = _column(id_column)
    readable = _readable(id_column, header)
    keyed = df.select(_FILE, _BLOCK, _SEQ, sf.when(readable, aid).alias("_pamlib_aid"))
    grouped = keyed.groupingSets(
        [(_FILE, _BLOCK), ("_pamlib_aid",)], _FILE, _BLOCK, "_pamlib_aid"
    ).agg(
        sf.grouping_id().alias("_set"),
        sf.count(sf.lit(1)).alias("_n"),
        sf.min(_SEQ).alias("_first_seq"),
        sf.max(_SEQ).alias("_last_seq"),
    )
    wanted = (sf.col("_set") == _BLOCKS_SET) | (
        (sf.col("_set") == _IDS_SET) & sf.col("_pamlib_aid").isNotNull() & (sf.col("_n") > 1)
    )
    # the splits first, then up to the limit of repeats: never more rows than that to the driver
    limit = 2 * _BROADCAST_REPEATS + 1
    rows = grouped.where(wanted).orderBy("_set").limit(limit).collect()
    blocks = [r for r in rows if r["_set"] == _BLOCKS_SET]
    found = [r for r in rows if r["_set"] == _IDS_SET]
    if len(rows) == limit or len(found) > _BROADCAST_REPEATS:
        return None
    if not found:
        return blocks, []
    splits = [(str(r[_FILE]), int(r[_BLOCK]), int(r["_n"]), int(r["_first_seq"])) for r in blocks]
    seqs = [int(r["_first_seq"]) for r in found]
    repeats, unplaced = [], []
    for r, seq, place in zip(found, seqs, _first_places(splits, seqs), strict=True):
        if place is None:
            unplaced.append(str(r["_pamlib_aid"]))
        else:
            repeats.append((str(r["_pamlib_aid"]), place[0], place[1], seq))
    if unplaced:
        repeats += _first_occurrences(keyed, unplaced)
    return blocks, repeats


def _first_places(
    splits: Sequence[tuple[str, int, int, int]], seqs: Sequence[int]
) -> list[tuple[str, int] | None]:
    """For each of ``seqs``, an id's smallest sequence number: the (file, split start) where it
    was read when that row is surely the id's first occurrence in file order, else ``None``.

    ``splits`` are (file, split start, rows, first sequence number), one per split with rows,
    every row counted (unreadable ones too). A task reads its splits one after the other, so a
    split's rows hold the numbers first … first + rows - 1, found by bisecting the starts. If
    every split before that one in (file, split start) order starts lower, all their rows are
    numbered lower, so none holds the id (the number is its smallest): its first occurrence is
    that row. A split before it numbered higher may hold the id, and then only a second look
    can tell: Spark packs splits into tasks largest first, so files of different sizes are
    often read out of name order. Ranges that overlap, or a number in none, place nothing.
    Files are in name order (:func:`_name_order`), not in the order of Spark's URIs."""
    ordered = sorted(splits, key=lambda s: (_name_order(s[0]), s[1]))
    sure, highest = [], -1
    for _, _, _, first in ordered:  # sure: every split before it in file order starts lower
        sure.append(first > highest)
        highest = max(highest, first)
    by_number = sorted(range(len(ordered)), key=lambda k: ordered[k][3])
    starts = [ordered[k][3] for k in by_number]
    ends = [ordered[k][3] + ordered[k][2] for k in by_number]  # one past the last number
    if any(end > start for end, start in zip(ends, starts[1:], strict=False)):
        return [None] * len(seqs)
    places: list[tuple[str, int] | None] = []
    for seq in seqs:
        i = bisect.bisect_right(starts, seq) - 1
        k = by_number[i] if i >= 0 and seq < ends[i] else None
        places.append(None if k is None or not sure[k] else (ordered[k][0], ordered[k][1]))
    return places


def _first_occurrences(keyed: DataFrame, ids: list[str]) -> list[tuple[str, str, int, int]]:
    """Each id of ``ids`` with the (file, split, sequence) of its first occurrence in file
    order, from a second pass over the export's key columns: the ids broadcast to every task,
    only their rows shuffled. For ids whose smallest sequence number may not be their first
    occurrence (:func:`_first_places`)."""
    from pyspark.sql import functions as sf

    wanted = keyed.sparkSession.createDataFrame([(i,) for i in ids], "_pamlib_aid string")
    # per id and file its first (split, sequence); the first file in name order is chosen here,
    # where Spark would compare the URIs, escapes and all (_name_order)
    firsts = (
        keyed.join(sf.broadcast(wanted), "_pamlib_aid")
        .groupBy("_pamlib_aid", _FILE)
        .agg(sf.min(sf.struct(_BLOCK, _SEQ)).alias("_firstkey"))
        .collect()
    )
    found: dict[str, tuple[str, str, int, int]] = {}
    for r in firsts:
        aid, file = str(r["_pamlib_aid"]), str(r[_FILE])
        block, seq = int(r["_firstkey"][_BLOCK]), int(r["_firstkey"][_SEQ])
        known = found.get(aid)
        if known is None or (_name_order(file), block) < (_name_order(known[1]), known[2]):
            found[aid] = (aid, file, block, seq)
    return list(found.values())


def _name_order(uri: str) -> str:
    """What puts the export's files in name order (as :func:`_file_places` and the line-end
    check number them): the file's path with its ``%``-escapes undone. Spark's
    ``_metadata.file_path`` escapes a space, ``%`` or ``#`` in a name, and an escape sorts
    otherwise than its character: ``a%20b.csv`` after ``a!.csv``, where ``a b.csv`` is before."""
    from pamlib._spark_line_ends import file_key

    return file_key(uri)


def _joined_repeats(df: DataFrame, id_column: str, header: tuple[str, ...]) -> DataFrame:
    """Mark each row whose assessment id has not been seen earlier in file order by joining the
    ids that repeat back to the rows: for when too many repeat to send them to every task."""
    from pyspark.sql import functions as sf

    aid = _column(id_column)
    readable = df.where(_readable(id_column, header))
    repeats = (
        readable.groupBy(aid.alias("_pamlib_aid"))
        .agg(
            sf.count(sf.lit(1)).alias("_n"),
            # the file by its place in name order: Spark compares URIs with their escapes
            sf.min(sf.struct(sf.col(_PLACE), sf.col(_FILE), sf.col(_ROW))).alias("_firstkey"),
        )
        .where(sf.col("_n") > 1)
        .select(
            sf.col("_pamlib_aid"),
            sf.col(f"_firstkey.{_FILE}").alias(_FIRST_FILE),
            sf.col(f"_firstkey.{_ROW}").alias(_FIRST_ROW),
        )
    )
    joined = df.join(repeats, aid == sf.col("_pamlib_aid"), "left")
    first: Column = sf.col(_FIRST_ROW).isNull() | (
        (sf.col(_FIRST_FILE) == sf.col(_FILE)) & (sf.col(_FIRST_ROW) == sf.col(_ROW))
    )
    return joined.withColumn(_FIRST, first).drop("_pamlib_aid", _FIRST_FILE, _FIRST_ROW)


def _combined_schema(scorer: TableScorer) -> Any:
    """One Arrow schema for everything a task gives: what each row became (``scored``,
    ``rejected`` or ``blank``), its key, its scored columns or its reject's."""
    import pyarrow as pa

    from pamlib.pipeline import rejects_schema

    rejects = rejects_schema()
    fields = [
        pa.field(_KIND, pa.string()),
        pa.field(_FILE, pa.string()),
        pa.field(_ROW, pa.int64()),
        *scorer.output_schema(),
        *(pa.field(f"_reject_{name}", rejects.field(name).type) for name in _REJECT_COLUMNS),
    ]
    return pa.schema(fields)


# -- on the executors ----------------------------------------------------------------------------

_SCORERS: dict[str, TableScorer] = {}
_SCORERS_LOCK = threading.Lock()


def _scorer(payload: bytes, digest: str) -> TableScorer:
    """The job's scorer in this worker: unpickled (and so checked against the driver's provider
    versions and calibration hash) once per worker process, not per task."""
    with _SCORERS_LOCK:
        found = _SCORERS.get(digest)
        if found is None:
            found = _SCORERS[digest] = pickle.loads(payload)  # noqa: S301 - the job's own bytes
        return found


@attrs.frozen
class _Job:
    """What every task runs: picklable by value (the scorer travels as its pickled bytes)."""

    payload: bytes = attrs.field(repr=False)
    digest: str
    header: tuple[str, ...]
    schema: Any = attrs.field(repr=False)
    delimiter: str = ","
    encoding: str = "utf-8"

    #: With an accumulator (:class:`_Tally`), the task gives its scored rows only and adds
    #: its counts and rejects to it (:meth:`SparkRun.write`'s one job).
    collect: Any = attrs.field(default=None, repr=False)
    #: Where the job reads the export's lines: what turns them into the rows Spark's CSV
    #: reader gives (:mod:`pamlib._spark_lines`).
    lines: _LineSplitter | None = attrs.field(default=None, repr=False)
    #: Whether the rows are keyed by their splits (``row_key="split"``: no pass numbered
    #: them): each task keys the rows Spark's CSV reader gives it (the lines' splitter keys
    #: its own), and says where a reject past a file's first split is.
    split_keys: bool = False
    #: The files whose quoted line ends Spark's multi-line reader wrote as ``\n``, and those
    #: line ends (:data:`pamlib._spark_line_ends.LineBreaks`): written back before the checks.
    line_breaks: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    #: Whether a file whose path holds an NHS number is named otherwise in the output
    #: (``keep_nhs_number=False``), and those files' places in the export's name order
    #: (:func:`_file_places`): :meth:`_shown_file`.
    withhold_files: bool = False
    file_places: Mapping[str, int] = attrs.field(factory=dict, repr=False)

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        try:
            batches = _gathered(batches)
            batches = self.lines(batches) if self.lines is not None else self._named(batches)
            base = _scorer(self.payload, self.digest)
            runs: dict[str, TableScorer] = {}
            if self.collect is None:
                for batch in batches:
                    for _, piece in self._batch(base, runs, batch):
                        yield from piece.to_batches()
                return
            collected = _Collected()
            taken, written = _scored_columns(self.schema)
            for batch in batches:
                collected.count_read(batch.num_rows)
                for kind, piece in self._batch(base, runs, batch):
                    if kind == "scored":
                        yield from piece.select(taken).rename_columns(written).to_batches()
                    collected.add(kind, piece)
            self.collect.add(collected)  # sent to the driver when the task succeeds
        except PamlibError as error:
            raise SparkJobError(f"pamlib: {error}") from None

    def _named(self, batches: Iterator[Any]) -> Iterator[Any]:
        """The batches Spark's CSV reader split, their columns named as in the header again
        (:func:`_positional`)."""
        import pyarrow as pa

        from pamlib._spark_lines import split_keys

        n = len(self.header)
        seen: dict[tuple[str, int], int] = {}
        for batch in batches:  # (RecordBatch.rename_columns is newer than the pyarrow allowed)
            names = [*self.header, *batch.schema.names[n:]]
            columns = self._restored(batch) if self.line_breaks else batch.columns
            if self.split_keys:  # no pass numbered these rows
                blocks = batch.column(_BLOCK).to_numpy(zero_copy_only=False).astype(np.int64)
                keys, _ = split_keys(batch.column(_FILE), blocks, seen, header_counted=False)
                names += [_ROW, _FIRST]
                columns = [*columns, pa.array(keys), pa.repeat(True, len(keys))]
            yield pa.RecordBatch.from_arrays(columns, names=names)

    def _restored(self, batch: Any) -> list[Any]:
        """The batch's columns with the quoted line ends Spark's multi-line reader wrote as
        ``\\n`` written back in the export's own columns, file by file (the raw text of a
        record it could not split holds them as they were)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pamlib._spark_line_ends import file_key, restored

        n = len(self.header)
        columns = list(batch.columns)
        files = batch.column(_FILE)
        names = pc.unique(files).to_pylist()
        for name in names:
            kind = self.line_breaks.get(file_key(str(name)))
            if kind is None:
                continue
            if len(names) == 1:
                columns[:n] = [restored(c, kind) for c in columns[:n]]
                continue
            mine = pc.equal(files, pa.scalar(name, files.type))
            columns[:n] = [pc.if_else(mine, restored(c, kind), c) for c in columns[:n]]
        return columns

    def _batch(
        self, base: TableScorer, runs: dict[str, TableScorer], batch: Any
    ) -> Iterator[tuple[str, Any]]:
        """One batch's rows, file by file, in each file's order; one run per file and task:
        tables of one kind each (``scored``, ``rejected`` or ``blank``)."""
        import pyarrow.compute as pc

        if batch.num_rows == 0:
            return
        files = batch.column(_FILE)
        names = pc.unique(files).to_pylist()
        for name in names:
            part = batch if len(names) == 1 else batch.filter(pc.equal(files, name))
            rows = part.column(_ROW).to_numpy()
            if len(rows) > 1 and not bool((rows[1:] > rows[:-1]).all()):  # in order as read
                part = part.take(pc.sort_indices(part.column(_ROW)))
            run = runs.get(name)
            if run is None:
                run = runs[name] = base.new_run(source=str(name))
            yield from self._file_part(run, self._shown_file(str(name)), part)

    def _shown_file(self, name: str) -> str:
        """The file as the output names it (``source_file``, the rejects' ``source``): its
        URI, or where its path holds an NHS number and the run keeps none, that path with each
        NHS number withheld and ``#`` its place among the export's files in name order."""
        if not self.withhold_files:
            return name
        from pamlib._spark_line_ends import file_key
        from pamlib.identity import holds_nhs_number, withhold_nhs_numbers

        key = file_key(name)
        if not holds_nhs_number(key):
            return name
        place = self.file_places.get(key)
        if place is None:  # the files changed after the job was planned: name none of them
            raise PamlibError(
                "a file the job read was not among the export's files when it was scored"
            )
        return f"{withhold_nhs_numbers(key)}#{place}"

    def _file_part(self, run: TableScorer, name: str, part: Any) -> Iterator[tuple[str, Any]]:
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = part.column(_ROW)
        corrupt = part.column(CORRUPT_COLUMN)
        data = [part.column(n) for n in self.header]
        blank = _blank_rows(data)
        broken = pc.is_valid(corrupt).to_numpy(zero_copy_only=False)
        blank &= ~broken
        pieces = []
        # records Spark could not split: pamlib's structural reject, from the raw text
        structural: list[tuple[int, str, str, str]] = []
        for i in np.flatnonzero(broken).tolist():
            verdict = _structural(
                corrupt[i].as_py(), len(self.header), self.delimiter, self.encoding
            )
            if verdict is None:
                blank[i] = True
            else:
                structural.append((int(rows[i].as_py()), *verdict))
        keep = ~(broken | blank)
        # a field longer than pamlib's limit: pamlib score's field-too-long reject, checked first
        too_long = _too_long_rows(data) & keep
        keep &= ~too_long
        # bytes Spark could not decode became U+FFFD: pamlib score's encoding reject instead
        undecoded = _undecoded_rows(data) & keep
        keep &= ~undecoded
        if keep.any():
            # only the columns scoring reads are filtered: not the file's name, the raw text
            wanted = [*self.header, _ROW, *([_FIRST] if run.duplicates == "external" else [])]
            good = pa.RecordBatch.from_arrays([part.column(n) for n in wanted], names=wanted)
            if not keep.all():
                good = good.filter(pa.array(keep))
            first = None
            if run.duplicates == "external":
                first = good.column(_FIRST).to_numpy(zero_copy_only=False).astype(np.bool_)
            table = pa.table({**{n: good.column(n) for n in self.header}, _ROW: good.column(_ROW)})
            result = run.score(table, first_occurrence=first)
            pieces += self._scored(name, good.column(_ROW), result)
        if structural:
            pieces.append(self._structural_rejects(name, structural))
        if too_long.any():
            too_long_part = part.filter(pa.array(too_long))
            pieces.append(self._encoding_rejects(name, too_long_part, _too_long_reject()))
        if undecoded.any():
            pieces.append(self._encoding_rejects(name, part.filter(pa.array(undecoded))))
        n_blank = int(blank.sum())
        if n_blank:
            keys = rows.filter(pa.array(blank))
            pieces.append(self._frame("blank", name, keys, {}))
        for piece in pieces:
            kind = piece.column(_KIND)[0].as_py()
            located = (
                _split_locations(piece, part) if kind == "rejected" and self.split_keys else piece
            )
            yield kind, located

    def _frame(self, kind: str, name: str, keys: Any, columns: Mapping[str, Any]) -> Any:
        import pyarrow as pa

        n = len(keys)
        arrays = []
        for field in self.schema:
            if field.name == _KIND:
                arrays.append(pa.repeat(pa.scalar(kind, pa.string()), n))
            elif field.name == _FILE:
                arrays.append(pa.repeat(pa.scalar(name, pa.string()), n))
            elif field.name == _ROW:
                arrays.append(pa.array(keys, pa.int64()))
            elif field.name in columns:
                arrays.append(columns[field.name].cast(field.type))
            else:
                arrays.append(pa.nulls(n, field.type))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _scored(self, name: str, keys: Any, result: Any) -> list[Any]:
        import pyarrow.compute as pc

        pieces = []
        rejects = result.rejects
        rejected = rejects.column("row")
        if rejects.num_rows:
            pieces.append(
                self._frame(
                    "rejected",
                    name,
                    rejected,
                    {f"_reject_{c}": rejects.column(c) for c in _REJECT_COLUMNS},
                )
            )
        scored = result.scored.to_arrow()
        if scored.num_rows:
            # scored rows come in input order: their keys are the keys not rejected
            kept = keys.filter(pc.invert(pc.is_in(keys, value_set=rejected.combine_chunks())))
            pieces.append(
                self._frame(
                    "scored", name, kept, {c: scored.column(c) for c in scored.column_names}
                )
            )
        return pieces

    def _structural_rejects(self, name: str, found: list[tuple[int, str, str, str]]) -> Any:
        import pyarrow as pa

        from pamlib.pipeline import rejects_schema

        schema = rejects_schema()
        keys = pa.array([f[0] for f in found], pa.int64())
        return self._frame(
            "rejected",
            name,
            keys,
            {
                "_reject_location": pa.array([f"row {f[0]}" for f in found]),
                "_reject_code": pa.array([f[1] for f in found]),
                "_reject_message": pa.array([f[2] for f in found]),
                "_reject_fields": pa.array([[] for _ in found], schema.field("fields").type),
                "_reject_record": pa.array([f[3] for f in found]),
            },
        )

    def _encoding_rejects(self, name: str, part: Any, reject: tuple[str, str] | None = None) -> Any:
        """``pamlib score``'s ``encoding`` reject (or ``reject``'s code and message) of each row
        of ``part``, with the values by source column (U+FFFD where Spark replaced a byte) and
        no raw text, as it gives them."""
        import pyarrow as pa

        from pamlib.pipeline import rejects_schema

        code, message = reject or _encoding_reject(self.encoding)
        keys = part.column(_ROW)
        values = [part.column(n).to_pylist() for n in self.header]
        fields = [
            [(n, v or "") for n, v in zip(self.header, row, strict=True)]
            for row in zip(*values, strict=True)
        ]
        n = len(keys)
        return self._frame(
            "rejected",
            name,
            keys,
            {
                "_reject_location": pa.array([f"row {k}" for k in keys.to_pylist()], pa.string()),
                "_reject_code": pa.repeat(pa.scalar(code, pa.string()), n),
                "_reject_message": pa.repeat(pa.scalar(message, pa.string()), n),
                "_reject_fields": pa.array(fields, rejects_schema().field("fields").type),
                "_reject_record": pa.repeat(pa.scalar("", pa.string()), n),
            },
        )


#: A task joins the batches Spark gives it (10,000 rows each by default) until it holds this
#: many rows or :data:`_GATHER_BYTES`: pamlib's work on a batch costs nearly as much for a few
#: thousand rows as for a few tens of thousands (a fifth less processor time a row for 40,000
#: than for 10,000, measured on lines of a canonical export).
_GATHER_ROWS = 32_768
_GATHER_BYTES = 32 * 2**20


def _gathered(
    batches: Iterator[Any], rows: int = _GATHER_ROWS, limit: int = _GATHER_BYTES
) -> Iterator[Any]:
    """``batches`` in order, each group of :func:`~pamlib.formats._arrow.batch_groups` joined
    into one: the same rows in the same order, in fewer batches."""
    from pamlib.formats._arrow import batch_groups

    for group in batch_groups(batches, rows, limit):
        yield from _joined(group)


def _joined(batches: list[Any]) -> Iterator[Any]:
    if len(batches) == 1:
        yield batches[0]
        return
    import pyarrow as pa

    yield from pa.Table.from_batches(batches).combine_chunks().to_batches()


#: Rejects one task sends to the driver with its counts, at most (Arrow bytes): past it the task
#: sends counts only, and :meth:`SparkRun.write` finds the rejects with a second job.
_TASK_REJECTS_BYTES = 8 << 20
#: … and the driver holds at most this many in all.
_REJECTS_BYTES = 128 << 20

#: What a count is kept by: what each row became, and for scored rows their status, reason and
#: whether the demo scored them; for rejects their code (as ``SparkRun.summary`` groups them).
_CountKey = tuple[str, str | None, str | None, str | None, bool | None]
#: The count of the rows the tasks read, beside what they became.
_READ_KEY: _CountKey = ("read", None, None, None, None)


@attrs.define
class _Collected:
    """One task's counts and rejects (then, on the driver, every task's), for
    :meth:`SparkRun.write` to count and write what its one job did not write."""

    counts: dict[_CountKey, int] = attrs.Factory(dict)
    #: Arrow IPC streams: what a slice holds only, however large the arrays it was cut from.
    rejects: list[bytes] = attrs.Factory(list)
    nbytes: int = 0
    overflowed: bool = False

    def add(self, kind: str, piece: Any) -> None:
        import pyarrow.compute as pc

        if kind == "scored":
            demo = pc.unique(piece.column("demo")).to_pylist()
            if len(demo) == 1 and piece.column("reason").null_count == piece.num_rows:
                # the usual piece (one demo flag, no reason): its statuses alone, far cheaper
                # than grouping by all three
                for g in pc.value_counts(piece.column("status")).to_pylist():
                    self._count((kind, g["values"], None, None, demo[0]), g["counts"])
                return
            by = ["status", "reason", "demo"]
            grouped = piece.select(by).group_by(by).aggregate([([], "count_all")]).to_pylist()
            for g in grouped:
                self._count((kind, g["status"], g["reason"], None, g["demo"]), g["count_all"])
            return
        if kind != "rejected":
            self._count((kind, None, None, None, None), piece.num_rows)
            return
        for g in pc.value_counts(piece.column("_reject_code")).to_pylist():
            self._count((kind, None, None, g["values"], None), g["counts"])
        if not self.overflowed:
            self._keep(
                _ipc(piece.select([_FILE, _ROW, *(f"_reject_{c}" for c in _REJECT_COLUMNS)]))
            )

    def count_read(self, n: int) -> None:
        """Rows the task read (as the reader gave them, before any check)."""
        self._count(_READ_KEY, n)

    def _count(self, key: _CountKey, n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + int(n)

    def _keep(self, rejects: bytes) -> None:
        if self.overflowed or self.nbytes + len(rejects) > _TASK_REJECTS_BYTES:
            self.overflowed, self.rejects, self.nbytes = True, [], 0
            return
        self.rejects.append(rejects)
        self.nbytes += len(rejects)

    def tables(self) -> list[Any]:
        """The rejects kept, as Arrow tables."""
        import pyarrow as pa

        return [pa.ipc.open_stream(data).read_all() for data in self.rejects]

    def merge(self, other: _Collected) -> None:
        for key, n in other.counts.items():
            self._count(key, n)
        if other.overflowed or self.nbytes + other.nbytes > _REJECTS_BYTES:
            self.overflowed, self.rejects, self.nbytes = True, [], 0
        if not self.overflowed:
            self.rejects += other.rejects
            self.nbytes += other.nbytes


def _split_locations(rejects: Any, part: Any) -> Any:
    """``rejects`` (of rows of ``part``, one file's rows keyed by their splits) with the
    location of each past the file's first split as the row's place in its split and where
    that split starts: there the key is not the row's number
    (:func:`pamlib._spark_lines.split_keys`)."""
    import pyarrow as pa

    keys = rejects.column(_ROW).combine_chunks()
    # the part's keys rise (_Job._batch puts them in order): each reject's row found by halving
    rows = part.column(_ROW).to_numpy(zero_copy_only=False)
    wanted = keys.to_numpy(zero_copy_only=False)
    at = np.minimum(np.searchsorted(rows, wanted), len(rows) - 1)
    if not bool((rows[at] == wanted).all()):  # pragma: no cover - a reject is of its part's rows
        raise PamlibError("a reject's row is not among the rows it was found in")
    blocks = part.column(_BLOCK).to_numpy(zero_copy_only=False)[at]
    if not (blocks > 0).any():
        return rejects
    places = [
        f"row {key}" if block == 0 else f"row {key - block} of the split at byte {block}"
        for key, block in zip(keys.to_pylist(), blocks.tolist(), strict=True)
    ]
    where = rejects.schema.get_field_index("_reject_location")
    return rejects.set_column(where, "_reject_location", pa.array(places, pa.string()))


def _ipc(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


class _Tally:
    """The accumulator's rules (pyspark's ``AccumulatorParam``, by its two methods): tasks'
    :class:`_Collected` merged on the driver, once per successful task of the write."""

    def zero(self, value: _Collected) -> _Collected:
        return _Collected()

    def addInPlace(self, value: _Collected, other: _Collected) -> _Collected:  # noqa: N802
        value.merge(other)
        return value


def _encoding_reject(encoding: str) -> tuple[str, str]:
    """``pamlib score``'s code and message for a record not valid in ``encoding``."""
    from pamlib.formats._records import _MESSAGES, encoding_label

    return "encoding", _MESSAGES["encoding"].format(encoding=encoding_label(encoding))


def _too_long_reject() -> tuple[str, str]:
    """``pamlib score``'s code and message for a record with a field over its limit."""
    from pamlib.formats._records import _MESSAGES, MAX_FIELD_CHARS

    return "field-too-long", _MESSAGES["field-too-long"].format(limit=MAX_FIELD_CHARS)


def _too_long_rows(columns: list[Any], limit: int | None = None) -> Any:
    """Rows with a field of more than ``limit`` characters (default: pamlib's
    :data:`~pamlib.formats._records.MAX_FIELD_CHARS`), which ``pamlib score`` rejects however
    the record is split. Spark reads fields of any length; only a column whose text takes more
    than ``limit`` bytes in all is looked at row by row."""
    import pyarrow.compute as pc

    from pamlib.formats._records import MAX_FIELD_CHARS

    limit = MAX_FIELD_CHARS if limit is None else limit
    n = len(columns[0]) if columns else 0
    found = np.zeros(n, dtype=np.bool_)
    for column in columns:
        if _text_bytes(column) <= limit:  # no field of it can be longer
            continue
        longer = pc.fill_null(pc.greater(pc.utf8_length(column), limit), False)
        found |= longer.to_numpy(zero_copy_only=False).astype(np.bool_)
    return found


def _text_bytes(column: Any) -> int:
    """The size of ``column``'s text buffers: at least as many bytes as its fields hold in all
    (a slice's buffer may hold more than the slice)."""
    import pyarrow as pa

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    total = 0
    for chunk in chunks:
        buffers = chunk.buffers()
        if len(buffers) < 3:  # not a plain string array: let the row check look
            return 2**63 - 1
        total += 0 if buffers[2] is None else buffers[2].size
    return total


def _undecoded_rows(columns: list[Any]) -> Any:
    """Rows with U+FFFD in a field: what Spark's reader puts for bytes not valid in the
    encoding read (``pamlib score`` rejects such a record). A genuine U+FFFD in a valid file
    is taken the same way: in an export it can only be text mis-decoded before."""
    import pyarrow.compute as pc

    n = len(columns[0]) if columns else 0
    found = np.zeros(n, dtype=np.bool_)
    for column in columns:
        if not _may_hold_replacement(column):
            continue
        hit = pc.fill_null(pc.match_substring(column, "\ufffd"), False)
        found |= hit.to_numpy(zero_copy_only=False).astype(np.bool_)
    return found


#: U+FFFD in UTF-8, as Arrow holds Spark's text.
_REPLACEMENT_BYTES = "\ufffd".encode()


def _may_hold_replacement(column: Any) -> bool:
    """Whether U+FFFD's bytes occur in ``column``'s data buffers: one fast byte search, so the
    row-by-row check runs only on the rare column that holds one (a slice's buffer may hold
    more than the slice: then the row check decides)."""
    import pyarrow as pa

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for chunk in chunks:
        buffers = chunk.buffers()
        if len(buffers) < 3 or buffers[2] is None:
            return True  # not a plain string array: let the row check look
        if _REPLACEMENT_BYTES in buffers[2].to_pybytes():
            return True
    return False


def _blank_rows(columns: list[Any]) -> Any:
    """Rows whose every field is empty or whitespace (null in Spark): skipped and counted as
    blank, as ``pamlib score`` does. Each column is looked at only in the rows still blank so
    far, so a batch of full rows costs about one column's check."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(columns[0]) if columns else 0
    blank = np.ones(n, dtype=np.bool_)
    candidates = np.arange(n)
    for column in columns:
        if not len(candidates):
            break
        rows = column if len(candidates) == n else column.take(pa.array(candidates))
        text = pc.fill_null(rows, "")
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0)
        still = empty.to_numpy(zero_copy_only=False).astype(np.bool_)
        blank[candidates[~still]] = False
        candidates = candidates[still]
    return blank


def _structural(
    raw: str, n_fields: int, delimiter: str = ",", encoding: str = "utf-8"
) -> tuple[str, str, str] | None:
    """The code, message and printable text of a record Spark could not split into ``n_fields``
    fields, as ``pamlib score`` rejects it; ``None`` if it is blank."""
    from pamlib.formats._records import is_blank, split_records, structural_reject

    records = list(split_records(io.StringIO(raw, newline=""), delimiter=delimiter))
    if not records or all(is_blank(r) for r in records):
        return None
    record = records[0]
    one = len(records) == 1
    verdict = structural_reject(record, n_fields, encoding=encoding) if one else None
    if verdict is None and one and "\ufffd" in raw:  # split as it should be, but undecoded
        verdict = _encoding_reject(encoding)
    if verdict is None:  # Spark and the csv module split it differently
        verdict = (
            "field-count",
            f"expected {n_fields} fields, as in the header; Spark could not split the record",
        )
    return verdict[0], verdict[1], _printable(raw)


def _printable(text: str) -> str:
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "\ufffd", text)


# -- the result ----------------------------------------------------------------------------------


class SparkRun:
    """What :func:`score` gives: :attr:`scored` and :attr:`rejects` DataFrames, the counts
    (:meth:`summary`), and :meth:`write`. The scoring job runs once, when first needed; its
    output is kept (memory, then disk) until :meth:`unpersist`. :meth:`write` called first
    keeps nothing: one job scores and writes (:doc:`/spark`)."""

    def __init__(
        self,
        *,
        n_read: int | None,
        out: DataFrame,
        scored_columns: tuple[str, ...],
        source: str,
        providers: tuple[str, ...],
        licensed: bool,
        read: DataFrame | None = None,
        job: tuple[DataFrame, _Job] | None = None,
    ) -> None:
        self.n_read = n_read
        self._read = read
        self._out = out
        self._job = job
        self._persisted = False
        self.scored_columns = scored_columns
        self.source = source
        self.providers = providers
        self.licensed = licensed
        self._summary: ScoreSummary | None = None

    def __repr__(self) -> str:
        from pamlib.formats.encoding import shown_name

        return f"SparkRun(source={shown_name(self.source)!r}, providers={list(self.providers)!r})"

    def _output(self) -> DataFrame:
        if not self._persisted:
            from pyspark import StorageLevel

            self._out = self._out.persist(StorageLevel.MEMORY_AND_DISK)
            self._persisted = True
        return self._out

    def unpersist(self) -> None:
        """Drop the kept output (the DataFrames recompute it if used again)."""
        self._release_read()
        if self._persisted:
            self._out.unpersist()
            self._persisted = False

    def _release_read(self) -> None:
        """Drop the export's rows kept for the job once its output is kept instead."""
        if self._read is not None:
            self._read.unpersist()
            self._read = None

    @property
    def scored(self) -> DataFrame:
        """One row per record that passed the checks, scored or not: pamlib's scored-table
        columns (:func:`pamlib.tables.scored.scored_schema`), then :data:`SCORED_KEY_COLUMNS`."""
        return self._scored_of(self._output())

    def _scored_of(self, out: DataFrame) -> DataFrame:
        from pyspark.sql import functions as sf

        return self._scored_columns_of(out.where(sf.col(_KIND) == "scored"))

    def _scored_columns_of(self, rows: DataFrame) -> DataFrame:
        """The scored columns and the row key, as :attr:`scored` gives them."""
        from pyspark.sql import functions as sf

        return rows.select(
            *(_column(c) for c in self.scored_columns),
            sf.col(_FILE).alias(SCORED_KEY_COLUMNS[0]),
            sf.col(_ROW).alias(SCORED_KEY_COLUMNS[1]),
        )

    @property
    def rejects(self) -> DataFrame:
        """One row per rejected record, in :func:`pamlib.pipeline.rejects_schema`: ``source``
        is the file, ``row`` the record's number in it (``location`` ``row N``)."""
        return self._rejects_of(self._output())

    def _rejects_of(self, out: DataFrame) -> DataFrame:
        from pyspark.sql import functions as sf

        return out.where(sf.col(_KIND) == "rejected").select(
            sf.col(_FILE).alias("source"),
            sf.col(_ROW).alias("row"),
            *(sf.col(f"_reject_{c}").alias(c) for c in _REJECT_COLUMNS),
        )

    def summary(self) -> ScoreSummary:
        """The counts, as ``pamlib score`` gives them: ``read`` is counted from the export
        itself (when the rows were numbered) and must equal ``scored + not scored + rejected +
        blank`` as counted from the job's output, else
        :class:`~pamlib.pipeline.ReconciliationError`. After :meth:`write`, the counts its job
        sent back (no job runs for them)."""
        summary = self._summary
        if summary is None:
            summary = self._summary = _guarded(self._count)
        return summary

    def _count(self) -> ScoreSummary:
        from pyspark.sql import functions as sf

        out = self._output()
        grouped = (
            out.groupBy(
                sf.col(_KIND),
                sf.col("status"),
                sf.col("reason"),
                sf.col("_reject_code"),
                sf.col("demo"),
            )
            .count()
            .collect()
        )
        self._release_read()  # the output is kept now: the job need not run again
        counts = {
            (r[_KIND], r["status"], r["reason"], r["_reject_code"], r["demo"]): int(r["count"])
            for r in grouped
        }
        return self._summary_of(counts)

    def _summary_of(self, counts: Mapping[_CountKey, int]) -> ScoreSummary:
        """The summary of the job's counts (what each row became, by :data:`_CountKey`),
        reconciled with the rows read."""
        from pamlib.pipeline import ReconciliationError, ScoreSummary

        n = {"scored": 0, "not-scored": 0, "rejected": 0, "blank": 0}
        by_code: dict[str, int] = {}
        by_reason: dict[str, int] = {}
        demo = False
        for (kind, status, reason, code, is_demo), count in counts.items():
            if kind == "read":
                continue
            if kind == "scored":
                n[str(status)] += count
                demo = demo or bool(is_demo)
                if status != "scored":
                    by_reason[reason or ""] = by_reason.get(reason or "", 0) + count
            else:
                n[kind] += count
                if kind == "rejected":
                    by_code[str(code)] = by_code.get(str(code), 0) + count
        n_read = self.n_read
        if n_read is None:  # no pass counted the rows: the tasks did, or (kept output) the kinds
            n_read = counts.get(_READ_KEY, sum(n.values()))
        summary = ScoreSummary(
            source=self.source,
            n_read=n_read,
            n_scored=n["scored"],
            n_not_scored=n["not-scored"],
            n_rejected=n["rejected"],
            rejected_by_code=dict(sorted(by_code.items())),
            not_scored_by_reason=dict(sorted(by_reason.items())),
            providers=self.providers,
            demo=demo,
            licensed=self.licensed,
            n_blank=n["blank"],
        )
        if not summary.reconciles:
            raise ReconciliationError(f"the counts do not reconcile: {summary.reconciliation}")
        return summary

    def write(self, path: str, *, format: str = "parquet") -> ScoreSummary:
        """Write ``scored/``, ``rejects/`` and ``summary.json`` under ``path`` — a folder that
        must not exist — with any Spark data source (``parquet``, ``delta``, …). Everything is
        written to a temporary folder beside it, renamed to ``path`` only when complete: no
        partial output ever stands under the final name. Returns the summary.

        Called before :attr:`scored`, :attr:`rejects` or :meth:`summary`, one job scores and
        writes the scored rows while its tasks send their counts and rejects back; nothing is
        kept. Called after them, it writes the kept output.

        ``format`` must hold lists and dates (the scored rows have both): ``csv`` and ``text``
        cannot, and are refused here rather than after the scoring job; so is a data source
        Spark does not know, or a path under a file. A failure of Spark's own while writing
        is :class:`~pamlib.errors.FormatError`, naming Spark's exception, and leaves nothing."""
        where = _path_argument("path", path)
        if not isinstance(format, str) or not format:
            raise ConfigurationError(
                f"format must be a Spark data source's name, not {_kind(format)}"
            )
        if format.lower() in _FLAT_FORMATS:
            raise ConfigurationError(
                f"format {format!r} cannot hold the scored rows' lists and dates: use "
                f"{', '.join(_NESTED_FORMATS)} or another data source that can"
            )
        written: ScoreSummary = _guarded(lambda: self._write(where, format))
        return written

    def _write(self, path: str, fmt: str) -> ScoreSummary:
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import AnalysisException

        from pamlib.errors import FormatError

        spark = self._out.sparkSession
        jvm = spark._jvm
        if jvm is None:  # a Spark Connect session: no JVM to reach from Python
            raise ConfigurationError("write() needs a classic Spark session (not Spark Connect)")
        try:
            jvm.org.apache.spark.sql.execution.datasources.DataSource.lookupDataSource(
                fmt, spark._jsparkSession.sessionState().conf()
            )
        except Py4JJavaError:
            raise ConfigurationError(f"Spark knows no data source {fmt!r} to write") from None
        conf = spark._jsc.hadoopConfiguration()
        try:
            final = jvm.org.apache.hadoop.fs.Path(path)
            fs = final.getFileSystem(conf)
            exists = fs.exists(final)
        except Py4JJavaError as error:
            raise FormatError(
                f"{path}: not a path Spark can write to ({_java_name(error)})"
            ) from None
        if exists:
            raise ConfigurationError(f"{path} exists already: pamlib never writes over output")
        _check_parents(fs, final, path)
        try:
            return self._write_under(jvm, fs, final, path, fmt)
        except Py4JJavaError as error:
            message = _pamlib_message(str(error))
            if message is not None:  # pamlib's refusal on an executor
                raise SparkJobError(message) from None
            raise FormatError(f"{path}: Spark could not write ({_java_name(error)})") from None
        except AnalysisException as error:
            raise FormatError(f"{path}: Spark could not write ({error.getCondition()})") from None

    def _write_under(self, jvm: Any, fs: Any, final: Any, path: str, fmt: str) -> ScoreSummary:
        """Write everything to a temporary folder beside ``final``, renamed to it when done."""
        parent = final.getParent()
        temporary = jvm.org.apache.hadoop.fs.Path(
            parent, f".{final.getName()}.pamlib-{uuid.uuid4().hex}.tmp"
        )
        base = temporary.toString()
        try:
            if self._summary is None and not self._persisted and self._job is not None:
                summary = self._write_in_one_job(self._job, base, fmt)
            else:  # the output is kept already (or its counts known): write from it
                summary = self.summary()
                self.scored.write.format(fmt).save(f"{base}/scored")
                self.rejects.write.format(fmt).save(f"{base}/rejects")
            stream = fs.create(jvm.org.apache.hadoop.fs.Path(temporary, "summary.json"))
            try:
                stream.write(bytearray(_summary_json(summary).encode("utf-8")))
            finally:
                stream.close()
            if not fs.rename(temporary, final):
                raise ConfigurationError(f"could not rename the finished output to {path}")
        except BaseException:
            fs.delete(temporary, True)
            raise
        # HDFS (and others) move a folder renamed onto one that exists into it: made by
        # something else since it was looked for, ``final`` would hold this output inside it
        # and be taken for it. Whatever was there stays; this output is taken away again.
        inside = jvm.org.apache.hadoop.fs.Path(final, temporary.getName())
        if fs.exists(inside):
            fs.delete(inside, True)
            raise ConfigurationError(
                f"{path} was made by something else while pamlib wrote: nothing was written "
                "there (write again to another path)"
            )
        return summary

    def _write_in_one_job(
        self, scoring: tuple[DataFrame, _Job], base: str, fmt: str
    ) -> ScoreSummary:
        """Score and write the scored rows in one job, its tasks sending their counts and
        rejects to the driver beside it (an accumulator: counted once per task that
        succeeds), rather than keeping the output to count it and write it twice. Rejects
        too many to hold on the driver (:data:`_REJECTS_BYTES`) are found by a second job."""
        from pyspark.sql.pandas.types import from_arrow_schema

        combined, job = scoring
        spark = combined.sparkSession
        tally = spark.sparkContext.accumulator(_Collected(), _Tally())  # type: ignore[arg-type]
        fields = from_arrow_schema(_scored_fields(job.schema))
        scored = combined.mapInArrow(attrs.evolve(job, collect=tally), fields)
        # written as the tasks give it: no projection copying every row once more
        scored.write.format(fmt).save(f"{base}/scored")
        collected: _Collected = tally.value
        summary = self._summary_of(collected.counts)
        if collected.overflowed:
            rejects = self._rejects_of(self._out)
        else:
            rejects = spark.createDataFrame(_rejects_table(job.schema, collected.tables()))
        rejects.write.format(fmt).save(f"{base}/rejects")
        self._release_read()
        self._summary = summary
        return summary


def _scored_columns(schema: Any) -> tuple[list[str], list[str]]:
    """The columns of the job's output (``schema``) that :attr:`SparkRun.scored` holds, in its
    order, and their names there: the scored columns, then the row key
    (:data:`SCORED_KEY_COLUMNS`)."""
    others = {_KIND, _FILE, _ROW, *(f"_reject_{c}" for c in _REJECT_COLUMNS)}
    taken = [f.name for f in schema if f.name not in others]
    return [*taken, _FILE, _ROW], [*taken, *SCORED_KEY_COLUMNS]


def _scored_fields(schema: Any) -> Any:
    """What a task of :meth:`SparkRun.write`'s one job gives: its scored rows, with the
    columns and names :attr:`SparkRun.scored` has. Given so by the task, they are written as
    they come; renamed and reordered by Spark, every row would be copied once more (measured
    a tenth of the job's time)."""
    import pyarrow as pa

    taken, written = _scored_columns(schema)
    return pa.schema([schema.field(t).with_name(w) for t, w in zip(taken, written, strict=True)])


def _rejects_table(schema: Any, parts: list[Any]) -> Any:
    """The rejects the tasks sent, as :attr:`SparkRun.rejects` gives them, by file and row."""
    import pyarrow as pa

    names = [_FILE, _ROW, *(f"_reject_{c}" for c in _REJECT_COLUMNS)]
    empty = pa.schema([schema.field(n) for n in names]).empty_table()
    table = pa.concat_tables([empty, *parts]).rename_columns(["source", "row", *_REJECT_COLUMNS])
    return table.sort_by([("source", "ascending"), ("row", "ascending")])


#: Data sources that cannot hold the scored rows (lists, dates), and some that can.
_FLAT_FORMATS = ("csv", "text")
_NESTED_FORMATS = ("parquet", "orc", "json", "avro")


def _check_parents(fs: Any, final: Any, path: str) -> None:
    """Refuse a path under a file (a folder cannot be made there) before any job runs."""
    from pamlib.errors import FormatError

    parent = final.getParent()
    while parent is not None and not fs.exists(parent):
        parent = parent.getParent()
    if parent is not None and not fs.getFileStatus(parent).isDirectory():
        raise FormatError(f"{path}: a folder above it is a file, so nothing can be written there")


def _java_name(error: Any) -> str:
    """The name of the Java exception under a Py4J error, and of its first cause: what went
    wrong, without its message (a task's may quote a row)."""
    thrown = getattr(error, "java_exception", None)
    if thrown is None:
        return type(error).__name__
    names = [str(thrown.getClass().getSimpleName())]
    cause = thrown.getCause()
    while cause is not None and cause.getCause() is not None:
        cause = cause.getCause()
    if cause is not None:
        names.append(str(cause.getClass().getSimpleName()))
    return " from ".join(names)


def _summary_json(summary: ScoreSummary) -> str:
    """The summary as ``summary.json``: counts that may be shared, so the export is named by
    its base name only, and not at all where that holds an NHS number."""
    from pamlib.formats.encoding import shown_name

    document = attrs.asdict(summary)
    document["source"] = shown_name(summary.source)
    document["reconciliation"] = summary.reconciliation
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _guarded(action: Any) -> Any:
    """Run a Spark action; pamlib's refusal on an executor comes back as pamlib's error."""
    from pyspark.errors import PythonException

    try:
        return action()
    except PythonException as error:
        message = _pamlib_message(str(error))
        if message is None:
            raise
        raise SparkJobError(message) from None


_MARKER = re.compile(r"SparkJobError: pamlib: (.*)")


def _pamlib_message(text: str) -> str | None:
    found = _MARKER.findall(text)
    return found[-1].strip() if found else None


# -- trajectories and cohort figures -------------------------------------------------------------

_BUCKET = "_pamlib_bucket"
_PART, _GROUP, _KEY, _VALUE = "part", "group", "key", "value"


def _scored_frame(scored: SparkRun | DataFrame) -> DataFrame:
    if not isinstance(scored, SparkRun):
        _check_frame("scored", scored, "a SparkRun or its scored DataFrame")
    frame = scored.scored if isinstance(scored, SparkRun) else scored
    missing = [
        c
        for c in ("patient_id", "assessed_on", "status", "score", "level")
        if c not in frame.columns
    ]
    if missing:
        raise ConfigurationError(
            f"not scored rows: the DataFrame has no {', '.join(missing)} column "
            "(pass SparkRun.scored, or a scored table read with Spark)"
        )
    return frame


def _patient_bucket(frame: DataFrame, buckets: int) -> Column:
    """A bucket for each row such that every row of one patient key (see
    :class:`pamlib.tables.scored.ScoredTable`) lands in the same bucket: the key as pamlib
    builds it, or something coarser (whitespace and dashes dropped from an NHS number)."""
    from pyspark.sql import functions as sf

    def present(name: str) -> Column:  # a cell of only whitespace is empty, as pamlib reads it
        value = _column(name)
        return value.isNotNull() & ~value.rlike(r"(?U)^\s*$")

    key = sf.when(present("patient_id"), sf.col("patient_id"))
    if "nhs_number" in frame.columns:
        # what pamlib.identity strips (str.isspace, dashes): Unicode whitespace and the four
        # separator controls Python counts as whitespace, or one person splits across buckets
        separators = r"(?U)[\s\x{1c}-\x{1f}\-]+"
        nhs = sf.regexp_replace(sf.col("nhs_number").cast("string"), separators, "")
        key = key.when(nhs != "", sf.concat(sf.lit("nhs:"), nhs))
    if "nhs_pseudonym" in frame.columns:
        key = key.when(
            present("nhs_pseudonym"), sf.concat(sf.lit("pseudonym:"), sf.col("nhs_pseudonym"))
        )
    return sf.pmod(sf.xxhash64(sf.coalesce(key, sf.lit(""))), sf.lit(buckets))


def _by_patient(
    scored: SparkRun | DataFrame, job: _CohortPart, schema: Any, buckets: int | None
) -> DataFrame:
    """Run ``job`` over groups of whole patients: every assessment of a patient in one call,
    in the order of the rows' keys (file, row) when the DataFrame has them."""
    from pyspark.sql.pandas.types import from_arrow_schema

    frame = _scored_frame(scored)
    spark = frame.sparkSession
    n = buckets if buckets is not None else int(spark.conf.get(_SHUFFLE_PARTITIONS) or "200")
    keyed = frame.withColumn(_BUCKET, _patient_bucket(frame, n))
    # a lambda: Spark reads the function's type hints, and a plain table-in, table-out
    # function is what it assumes without them
    return keyed.groupBy(_BUCKET).applyInArrow(
        lambda table: job(table),  # noqa: PLW0108 - no type hints for Spark to misread
        from_arrow_schema(schema),
    )


@attrs.frozen
class _CohortPart:
    """What each group of patients runs: pamlib's own trajectory rules, measure and sums over
    the group's rows (Arrow in, Arrow out)."""

    config: Any
    output: Literal["patients", "sums"]
    #: The cut-point sets levels are checked against (the driver's, as data: see
    #: :func:`_cutpoint_sets`).
    cutpoints: tuple[Any, ...] = ()

    def __call__(self, table: Any) -> Any:
        try:
            return self._run(table)
        except PamlibError as error:
            raise SparkJobError(f"pamlib: {error}") from None

    def _run(self, table: Any) -> Any:
        import pyarrow.compute as pc

        from pamlib.reporting._columns import ScoredColumns
        from pamlib.reporting._measures import nqf2483
        from pamlib.reporting._report import trajectory_table
        from pamlib.reporting._summary import cohort_sums
        from pamlib.reporting._trajectories import link_trajectories

        order = [c for c in SCORED_KEY_COLUMNS if c in table.column_names]
        if order:  # input order breaks the last ties, as in the file
            table = table.take(pc.sort_indices(table, [(c, "ascending") for c in order]))
        keys = {c: table.column(c) for c in order}
        # the row key is no scored column; the file stays when it is what groups the figures
        table = table.drop_columns([_BUCKET, *(c for c in order if c != self.config.group_by)])
        columns = ScoredColumns.from_arrow(table, source="spark")
        self._check_levels(columns, keys)
        traj = link_trajectories(columns, self.config)
        measure = nqf2483(traj)
        if self.output == "patients":
            return trajectory_table(traj, measure, self.config.group_by)
        return _sums_table(cohort_sums(traj, measure, self.config))

    def _check_levels(self, columns: Any, keys: Mapping[str, Any]) -> None:
        """Refuse rows whose level their score contradicts, as ``pamlib report`` refuses them
        (:meth:`~pamlib.reporting.ScoredColumns.check_levels`), each named by its file's name
        and row where the DataFrame has them (a group's own row numbers mean nothing)."""
        from pamlib.identity import withhold_nhs_numbers
        from pamlib.tables._levels import LEVELS_LISTED

        count, rows = columns.mismatched_levels(self.cutpoints, listed=LEVELS_LISTED)
        if not count:
            return
        files = keys.get(SCORED_KEY_COLUMNS[0])
        numbers = keys.get(SCORED_KEY_COLUMNS[1])
        shown = []
        for i in rows[:_ROWS_NAMED]:
            file = files[i].as_py() if files is not None else None
            row = numbers[i].as_py() if numbers is not None else None
            name = withhold_nhs_numbers(str(file).rsplit("/", 1)[-1]) if file else "a file"
            shown.append(f"{name} row {row}" if row is not None else f"a row of {name}")
        more = f" and {count - len(shown):,} more" if count > len(shown) else ""
        raise SparkJobError(
            f"{count:,} scored row(s) whose level contradicts their score "
            f"(level-mismatch), as pamlib report refuses them: {', '.join(shown)}{more}"
        )


#: Rows a level-mismatch refusal names (the rest are counted).
_ROWS_NAMED = 5


def _cutpoint_sets(host: PluginHost | None) -> tuple[Any, ...]:
    """Every cut-point set the plugins of ``host`` (default: this process's) register, as
    pamlib's own class: data a task can be sent, whatever class a plugin made them with."""
    from pamlib.levels import CutpointSet
    from pamlib.plugins import PluginHost, get_host

    given: object = host
    if given is not None and not isinstance(given, PluginHost):
        raise ConfigurationError(f"host must be a PluginHost, not {_kind(given)}")
    return tuple(
        CutpointSet(c.id, c.upper_bounds, c.decimals, c.source)
        for c in (host or get_host()).cutpoint_sets()
    )


def _sums_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(_PART, pa.string()),
            pa.field(_GROUP, pa.string()),
            pa.field(_KEY, pa.string()),
            pa.field(_VALUE, pa.int64()),
        ]
    )


def _sums_table(sums: Any) -> Any:
    """A :class:`~pamlib.reporting._summary.CohortSums` as rows (part, group, key, value)."""
    import pyarrow as pa

    rows: list[tuple[str, str | None, str, int]] = [
        ("overall", None, k, v) for k, v in sums.overall.items()
    ]
    for name, part in sums.groups.items():
        rows += [("group", name, k, v) for k, v in part.items()]
    rows += [("trends", None, k, v) for k, v in sums.trends.items()]
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    return pa.Table.from_arrays(
        [pa.array(list(c), t.type) for c, t in zip(columns, _sums_schema(), strict=True)],
        schema=_sums_schema(),
    )


def _patients_schema(config: Any) -> Any:
    """The per-patient table's schema, from pamlib's own table of an empty cohort."""
    from pamlib.reporting._columns import ScoredColumns
    from pamlib.reporting._measures import nqf2483
    from pamlib.reporting._report import trajectory_table
    from pamlib.reporting._trajectories import link_trajectories

    empty = ScoredColumns.from_rows([])
    traj = link_trajectories(empty, config)
    table = trajectory_table(traj, nqf2483(traj), None)
    if config.group_by is None:
        return table.schema
    import pyarrow as pa

    name = config.group_by if config.group_by not in table.column_names else "group"
    fields = list(table.schema)
    return pa.schema([fields[0], pa.field(name, pa.string()), *fields[1:]])


_SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"


def _cohort_arguments(scored: SparkRun | DataFrame, config: Any, buckets: object) -> Any:
    """The report configuration (default: :class:`~pamlib.reporting.ReportConfig`'s), every
    argument checked on the driver: a wrong one would fail only inside the job, or — ``0``
    buckets — be taken silently for the default."""
    from pamlib.reporting._config import ReportConfig

    frame = _scored_frame(scored)
    if config is None:
        config = ReportConfig()
    elif not isinstance(config, ReportConfig):
        raise ConfigurationError(f"config must be a ReportConfig, not {_kind(config)}")
    if buckets is not None and (
        not isinstance(buckets, int) or isinstance(buckets, bool) or buckets < 1
    ):
        shown = str(buckets) if isinstance(buckets, int) else _kind(buckets)
        raise ConfigurationError(f"buckets must be a whole number of at least 1, not {shown}")
    if buckets is None and int(frame.sparkSession.conf.get(_SHUFFLE_PARTITIONS) or "200") < 1:
        raise ConfigurationError(f"buckets: {_SHUFFLE_PARTITIONS} must be at least 1")
    _check_group_by(frame, config)
    return config


def _check_group_by(frame: DataFrame, config: Any) -> None:
    """Refuse, on the driver, a grouping column that names an identifier, is not there or is
    not text (a group's name is text: ``source_row``, a number, groups nothing)."""
    if config.group_by is None:
        return
    from pamlib.reporting._privacy import check_name

    check_name(config.group_by)
    if config.group_by not in frame.columns:
        raise ConfigurationError(f"no column {config.group_by!r} to group by")
    kind = frame.schema[config.group_by].dataType.simpleString()
    if kind != "string":
        raise ConfigurationError(
            f"column {config.group_by} must be text (string) to group by, not {kind}"
        )


def trajectories(
    scored: SparkRun | DataFrame,
    config: Any = None,
    *,
    buckets: int | None = None,
    host: PluginHost | None = None,
) -> DataFrame:
    """Each patient's baseline, follow-up, change, transition and NQF #2483 status, computed on
    the cluster: the rows of :func:`pamlib.reporting.patients_table` (the per-patient CSV of
    ``pamlib report``), one per patient, in no particular order.

    ``scored`` is a :class:`SparkRun` or its :attr:`~SparkRun.scored` DataFrame (or scored
    rows read back with Spark); ``config`` a :class:`pamlib.reporting.ReportConfig` (window,
    threshold, ``group_by``). Patients are hashed into ``buckets`` groups (default
    ``spark.sql.shuffle.partitions``); each group's rows are linked by pamlib's own rules, in
    their file order. Row-level data: never a published output.

    The arguments, and ``config.group_by`` (a text column, ``source_file`` too: per export
    file), are checked here. A scored row whose ``level`` its ``score`` contradicts at its
    ``cutpoint_set`` (one the plugins of ``host`` register; default: this process's) stops the
    job, as ``pamlib report`` refuses it (``level-mismatch``, the rows named by file name and
    row). The DataFrame's actions are Spark's own, not wrapped as :func:`cohort_summary`'s
    are: a refusal inside the job reaches the caller as pyspark's ``PythonException``,
    pamlib's message in its text.
    """
    config = _cohort_arguments(scored, config, buckets)
    schema = _patients_schema(config)
    job = _CohortPart(config=config, output="patients", cutpoints=_cutpoint_sets(host))
    return _by_patient(scored, job, schema, buckets)


def cohort_summary(
    scored: SparkRun | DataFrame,
    config: Any = None,
    *,
    buckets: int | None = None,
    host: PluginHost | None = None,
) -> CohortSummary:
    """The cohort figures of ``pamlib report`` (levels, scores, change by baseline level,
    transitions, NQF #2483, trends; per group with ``config.group_by``), computed on the
    cluster: each group of patients gives its counts and sums
    (:class:`pamlib.reporting.CohortSums`), Spark adds them up, and the driver makes the
    figures from the totals (:func:`pamlib.reporting.summary_from_sums`). Suppressed for
    publication when ``config.publish`` is set, as ``pamlib report --publish`` does.

    ``scored``, ``buckets`` and ``host`` as for :func:`trajectories`: rows whose level their
    score contradicts stop the job with a :class:`SparkJobError`.
    """
    from pyspark.sql import functions as sf

    from pamlib.reporting._summary import CohortSums, summary_from_sums
    from pamlib.reporting._suppression import suppress

    config = _cohort_arguments(scored, config, buckets)
    job = _CohortPart(config=config, output="sums", cutpoints=_cutpoint_sets(host))
    parts = _by_patient(scored, job, _sums_schema(), buckets)
    totals = parts.groupBy(_PART, _GROUP, _KEY).agg(sf.sum(_VALUE).alias(_VALUE))
    rows = _guarded(totals.collect)
    overall: dict[str, int] = {}
    groups: dict[str, dict[str, int]] = {}
    trends: dict[str, int] = {}
    for row in rows:
        value = int(row[_VALUE])
        if row[_PART] == "overall":
            overall[row[_KEY]] = value
        elif row[_PART] == "group":
            groups.setdefault(row[_GROUP], {})[row[_KEY]] = value
        else:
            trends[row[_KEY]] = value
    if config.group_by is not None:
        _refuse_identifier_groups(scored, config.group_by, list(groups))
    sums = CohortSums(overall=overall, groups=groups, trends=trends)
    figures = summary_from_sums(sums, config)
    return suppress(figures, config.suppression) if config.publish else figures


def _refuse_identifier_groups(scored: SparkRun | DataFrame, name: str, values: list[str]) -> None:
    """Refuse group names that are identifiers, as ``pamlib report`` does: shaped as an NHS
    number, or equal to (or quoting as a word, see
    :func:`~pamlib.reporting._privacy.identifier_candidates`) any row's patient_id, NHS number,
    pseudonym or assessment id anywhere in the table (each task saw only its own patients'
    rows; one more job looks at all)."""
    from pyspark.sql import functions as sf

    from pamlib.reporting._privacy import (
        _looks_like_nhs_number,
        identifier_candidates,
        identifier_values_error,
        nhs_digits,
    )

    if any(_looks_like_nhs_number(v) for v in values if v.strip()):
        raise identifier_values_error(name)
    shown = identifier_candidates(values)
    if not shown:
        return
    frame = _scored_frame(scored)
    # compared as the report compares them: spaces around and letter case aside
    shown = sorted({v.strip().lower() for v in shown})
    wanted = {
        "patient_id": shown,
        "assessment_id": shown,
        "nhs_pseudonym": shown,
        "nhs_number": sorted({nhs_digits(v) for v in shown}),
    }
    present = [(c, v) for c, v in wanted.items() if c in frame.columns]
    condition = None
    for column, found in present:
        test = sf.lower(sf.trim(sf.col(column))).isin(found)
        condition = test if condition is None else condition | test
    if condition is not None and _guarded(frame.where(condition).limit(1).count) > 0:
        raise identifier_values_error(name)


# -- SQL -----------------------------------------------------------------------------------------


def level_from_score(score: float | None, cutpoint_set: str | None = None) -> int | None:
    """The activation level of a 0–100 score under a cut-point set (default: the current
    one), as pamlib assigns it; ``None`` for no score or an unknown set."""
    from pamlib.plugins import get_host

    if score is None:
        return None
    sets = get_host().cutpoint_sets()
    name = cutpoint_set or "current"
    if name not in sets:
        return None
    try:
        return int(sets.get(name).level(float(score)))
    except ValueError:  # not a number
        return None


def register_udfs(spark: SparkSession) -> tuple[str, ...]:
    """Register pamlib's SQL functions with ``spark``: ``pam_level(score[, cutpoint_set])``.
    Returns their names."""
    from pyspark.sql.types import ByteType

    def pam_level(score: float | None, cutpoint_set: str | None = None) -> int | None:
        return level_from_score(score, cutpoint_set)

    spark.udf.register("pam_level", pam_level, ByteType())
    return ("pam_level",)
