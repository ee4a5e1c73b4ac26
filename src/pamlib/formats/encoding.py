"""The encoding of a delimited export, and its text as UTF-8 bytes for the readers.

Both CSV readers work on UTF-8 bytes: :func:`open_utf8` decides what the input is encoded in
and, for anything but UTF-8, transcodes it while it is read (a :mod:`codecs` incremental
decoder, block by block, so memory stays flat). Line breaks are the same characters in every
encoding pamlib reads, so line numbers are those of the file.

An encoding given (``ReadOptions.settings["encoding"]``, ``--encoding NAME``: any Python text
codec) is used as given. A byte it cannot decode becomes the byte ``0xFF``, which is never
UTF-8, so the record holding it is rejected (code ``encoding``) with its line; no character is
ever replaced or dropped without a reject. Without one, the rule is:

1. A byte-order mark decides: UTF-8, UTF-16 (LE or BE) or UTF-32 (LE or BE).
2. Otherwise the input is checked from start to end (standard input: its first
   :data:`SNIFF_BYTES`). If it is valid UTF-8, it is read as UTF-8.
3. Otherwise it is read as a single-byte Western encoding where that reading is certain, else
   the read stops before any record is read, with one message naming ``--encoding``:

   * a NUL byte: stop (UTF-16 or UTF-32 without a byte-order mark, or not text);
   * valid multi-byte UTF-8 characters as well as bytes that are not UTF-8: stop (pieces
     saved in two encodings; reading it as cp1252 would change the UTF-8 characters);
   * a byte that is no character in cp1252 (``0x81 0x8D 0x8F 0x90 0x9D``): stop (in latin-1
     it is a control character, so neither reading is text);
   * other bytes in ``0x80``–``0x9F``: **cp1252** (typographic quotes, dashes, ``€``: what
     Excel on Windows writes; in latin-1 these bytes are control characters);
   * no byte in ``0x80``–``0x9F``: **latin-1** (cp1252 reads every such file the same).

   A guess is logged as a warning on this module's logger (``pamlib score`` prints it as a note:
   ``read export.csv as cp1252 (not UTF-8); give --encoding to choose``).
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import re
import stat
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import attrs

from pamlib.errors import ConfigurationError, FormatError, Problem

__all__ = [
    "SNIFF_BYTES",
    "UNDEFINED_IN_CP1252",
    "Replay",
    "Utf8Check",
    "Utf8Input",
    "codec_name",
    "detect_encoding",
    "open_binary",
    "open_utf8",
]

log = logging.getLogger(__name__)

#: How much of standard input (which cannot be read twice) is held and checked when no
#: encoding is given; a file is checked whole.
SNIFF_BYTES = 16 << 20
#: Bytes in ``0x80``–``0x9F`` that are no character in cp1252.
UNDEFINED_IN_CP1252 = frozenset({0x81, 0x8D, 0x8F, 0x90, 0x9D})

_BLOCK = 1 << 20
_UNDECODABLE = "pamlib-undecodable"
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose mark starts it
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_ESCAPED = re.compile("[\udc80-\udcff]")
_C1 = re.compile("[\udc80-\udc9f]")
_MULTIBYTE = re.compile("[^\x00-\x7f\udc80-\udcff]")
_UTF8 = ("utf-8", "utf-8-sig")


def _undecodable(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Bytes a codec cannot decode become ``\\udcff`` and then the byte ``0xFF`` in UTF-8
    (which no UTF-8 decoder accepts): a reject, never a silently different character."""
    if isinstance(exc, UnicodeDecodeError):
        return "\udcff" * (exc.end - exc.start), exc.end
    if isinstance(exc, UnicodeEncodeError):
        return b"\xff" * (exc.end - exc.start), exc.end
    raise exc


codecs.register_error(_UNDECODABLE, _undecodable)


def codec_name(encoding: object) -> str:
    """The Python name of a text encoding (``cp1252``, ``utf-16``), or a clear error.

    >>> codec_name("Windows-1252"), codec_name("latin1"), codec_name("UTF8")
    ('cp1252', 'iso8859-1', 'utf-8')
    """
    try:
        info = codecs.lookup(str(encoding))
    except LookupError:
        raise ConfigurationError(
            f"unknown encoding {encoding!r}: give a Python codec name such as utf-8, cp1252, "
            "latin-1 or utf-16"
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise ConfigurationError(f"{encoding!r} is not a text encoding")
    return info.name


def display_name(source: str | os.PathLike[str]) -> str:
    """An input's name as text that can be written anywhere: bytes of a file name that are not
    UTF-8 (kept by Python as lone surrogates, which no UTF-8 writer accepts) become U+FFFD."""
    return os.fspath(source).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def shown_name(source: str | os.PathLike[str]) -> str:
    """An input's name for what may travel beyond the user's terminal (a log record, a repr,
    a summary file): its base name only (a folder may be named after a patient), and none
    where it holds an NHS number (a per-patient download saved as ``9434765919.json``).

    >>> shown_name("exports/Jane Smith/9434765919.json"), shown_name("data/export.csv")
    ('(name withheld: it holds an NHS number)', 'export.csv')
    """
    from urllib.parse import unquote

    from pamlib.identity import WITHHELD_NAME, holds_nhs_number

    text = display_name(source)
    if text in ("-", "<stdin>", "table") or text.startswith("<"):
        return text
    name = unquote(text.replace("\\", "/").rstrip("/").rpartition("/")[2]) or text
    if holds_nhs_number(name):
        return WITHHELD_NAME
    return name


def open_binary(source: str | os.PathLike[str]) -> tuple[IO[bytes], str, int | None]:
    """The input as a binary stream, its display name and its size (``None`` if unknown)."""
    if str(source) == "-":
        return sys.stdin.buffer, "<stdin>", None
    path = Path(source)
    try:
        stream = path.open("rb")
        size = os.fstat(stream.fileno()).st_size
    except OSError as exc:
        name = display_name(path.name)  # never the folders: they may name a patient
        raise FormatError(
            f"cannot read {name}", [Problem(name, "io", exc.strerror or str(exc))]
        ) from None
    return stream, display_name(source), size


@attrs.frozen
class Utf8Input:
    """An open input as UTF-8 bytes: the stream, the input's name, the stream's size in bytes
    where known (``None`` for standard input and for transcoded input), and what it was read
    as; ``guessed`` says pamlib chose the encoding from the bytes (step 3 of the rule)."""

    stream: IO[bytes]
    name: str
    size: int | None
    encoding: str
    guessed: bool = False
    #: Where the rule's check of the whole file was started beside the read (see
    #: :func:`open_utf8`): what says whether the file is UTF-8 after all.
    check: Utf8Check | None = attrs.field(default=None, eq=False)


class Utf8Check:
    """Step 2 of the rule for a file, on a thread of its own and its own handle of the file, so
    that reading it can start before the check ends (see :func:`open_utf8`)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._stop = False
        self._utf8 = False
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pamlib-encoding", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._utf8 = _is_utf8(self._blocks(), complete=True)
        except BaseException as exc:  # raised again where the answer is asked for
            self._error = exc
        finally:
            self._stream.close()
            self._done.set()

    def _blocks(self) -> Iterator[bytes]:
        while not self._stop and (data := self._stream.read(_BLOCK)):
            yield data

    def utf8(self) -> bool:
        """Whether the file is UTF-8, once the check has read all of it; the check's error,
        if it met one (a read that failed), is raised here."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._utf8

    def cancel(self) -> None:
        """Read no more (the answer is no longer wanted)."""
        self._stop = True


class Replay(io.RawIOBase):
    """Bytes already read, then the rest of a stream, as one raw stream; closing it closes the
    rest unless that is standard input."""

    def __init__(self, head: bytes, rest: IO[bytes], *, close_rest: bool) -> None:
        self._head = memoryview(head)
        self._rest = rest
        self._close_rest = close_rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head.nbytes:
            n = min(len(b), self._head.nbytes)
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed and self._close_rest:
            self._rest.close()
        super().close()


class _Transcoder(io.RawIOBase):
    """A binary stream in some encoding, read as UTF-8 bytes (see :func:`open_utf8`)."""

    def __init__(self, source: IO[bytes], encoding: str, *, close_source: bool) -> None:
        self._source = source
        self._decoder = codecs.getincrementaldecoder(encoding)(_UNDECODABLE)
        self._out = memoryview(b"")
        self._eof = False
        self._close_source = close_source

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._out.nbytes and not self._eof:
            data = self._source.read(_BLOCK)
            self._eof = not data
            text = self._decoder.decode(data, final=self._eof)
            self._out = memoryview(text.encode("utf-8", _UNDECODABLE))
        n = min(len(b), self._out.nbytes)
        b[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def close(self) -> None:
        if not self.closed and self._close_source:
            self._source.close()
        super().close()


def _line_of(text: str, index: int, before: int) -> int:
    """The physical line of ``text[index]``, ``before`` lines having ended before ``text``."""
    head = text[:index]
    return before + 1 + head.count("\n") + head.count("\r") - head.count("\r\n")


def _blocks(stream: IO[bytes]) -> Iterator[bytes]:
    while data := stream.read(_BLOCK):
        yield data


def _is_utf8(blocks: Iterator[bytes], *, complete: bool) -> bool:
    """Whether the blocks are UTF-8. A block of ASCII bytes met where no character is left
    unfinished can neither fail the decoder nor leave it one: it is skipped. This check reads
    the whole file before any of it is split, and looking for a byte over 127 costs less than
    decoding (the benchmark's export of a million rows, 86 MiB: 20 ms against 40)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        for block in blocks:
            if block.isascii() and not decoder.getstate()[0]:
                continue
            decoder.decode(block)
        decoder.decode(b"", final=complete)
    except UnicodeDecodeError:
        return False
    return True


@attrs.frozen
class _Findings:
    """What a file that is not UTF-8 holds, with the first line of each."""

    not_utf8: int = 0
    nul: int = 0
    multibyte: int = 0
    undefined: int = 0
    undefined_byte: int = 0
    c1: int = 0


def _findings(blocks: Iterator[bytes], *, complete: bool) -> _Findings:
    """Read as UTF-8 with undecodable bytes kept as ``\\udc80``–``\\udcff``: where the first
    undecodable byte, NUL, valid multi-byte character and byte ``0x80``–``0x9F`` (defined in
    cp1252 or not) are."""
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    found: dict[str, int] = {}
    undefined_byte = 0
    lines = 0
    last_cr = False
    blocks_done = False
    while not blocks_done:
        block = next(blocks, None)
        blocks_done = block is None
        text = decoder.decode(block or b"", final=blocks_done and complete)
        if last_cr and text.startswith("\n"):
            lines -= 1  # a \r\n split between two blocks is one line end
        for key, pattern in (("not_utf8", _ESCAPED), ("multibyte", _MULTIBYTE)):
            if key not in found and (match := pattern.search(text)) is not None:
                found[key] = _line_of(text, match.start(), lines)
        if "nul" not in found and (at := text.find("\x00")) >= 0:
            found["nul"] = _line_of(text, at, lines)
        for match in _C1.finditer(text):
            byte = ord(match.group()) - 0xDC00
            if byte in UNDEFINED_IN_CP1252:
                if "undefined" not in found:
                    found["undefined"] = _line_of(text, match.start(), lines)
                    undefined_byte = byte
                break
            found.setdefault("c1", _line_of(text, match.start(), lines))
        lines += text.count("\n") + text.count("\r") - text.count("\r\n")
        last_cr = text.endswith("\r")
    return _Findings(undefined_byte=undefined_byte, **found)


def _stop(name: str, line: int, why: str, option: str) -> FormatError:
    return FormatError(
        f"cannot tell the encoding of {Path(name).name}; give it with {option.format('NAME')}",
        [Problem(f"line {line}", "encoding", why)],
    )


def _choose(findings: _Findings, name: str, option: str = "--encoding {}") -> str:
    """cp1252 or latin-1 for a file that is not UTF-8, or the error that stops the read
    (``option`` shows how the encoding is given, ``{}`` standing for its name)."""
    if findings.nul:
        raise _stop(
            name,
            findings.nul,
            "not UTF-8, and a NUL byte: UTF-16 or UTF-32 without a byte-order mark "
            f"({option.format('utf-16-le')}?), or not text",
            option,
        )
    if findings.multibyte:
        raise _stop(
            name,
            findings.not_utf8,
            f"not UTF-8, although line {findings.multibyte} is: no one encoding reads both "
            f"unchanged ({option.format('utf-8')} reads the file and rejects the records that "
            "are not UTF-8)",
            option,
        )
    if findings.undefined:
        raise _stop(
            name,
            findings.undefined,
            f"neither UTF-8 nor cp1252: byte 0x{findings.undefined_byte:02X} is no character in "
            "cp1252 and a control character in latin-1",
            option,
        )
    return "cp1252" if findings.c1 else "latin-1"


def detect_encoding(
    head: bytes,
    blocks: Callable[[], Iterator[bytes]],
    name: str,
    *,
    complete: bool = True,
    option: str = "--encoding {}",
) -> tuple[str, bool]:
    """The encoding of an input by the rule of this module, and whether it was guessed.

    ``head`` is the input's first four bytes (fewer if it is shorter); ``blocks`` gives the
    input's bytes from the start each time it is called (all of them, or with ``complete``
    false only its start, which may end inside a character). It is called only where no
    byte-order mark decides, and a second time only for input that is not UTF-8. Raises
    :class:`~pamlib.errors.FormatError` where the rule stops, whose message tells how to
    give the encoding by ``option`` (``{}`` stands for a codec's name).
    """
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, False
    if _is_utf8(blocks(), complete=complete):
        return "utf-8", False
    return _choose(_findings(blocks(), complete=complete), name, option), True


def open_utf8(
    source: str | os.PathLike[str], settings: Mapping[str, object], *, check_beside: bool = False
) -> Utf8Input:
    """Open ``source`` (``"-"`` for standard input) as UTF-8 bytes, in the encoding
    ``settings["encoding"]`` names or, without one, the encoding the rule of this module finds.

    With ``check_beside``, a file with no byte-order mark is opened as UTF-8 at once and checked
    whole on a thread of its own (:attr:`Utf8Input.check`): the caller may read and split its
    start meanwhile, but must ask :meth:`Utf8Check.utf8` before it gives anything read, and read
    the file again (without ``check_beside``) if the answer is no. The check of a large export
    is then no longer time in which nothing else is done (the benchmark's million rows: about
    20 ms).
    """
    binary, name, size = open_binary(source)
    stdin = binary is sys.stdin.buffer
    try:
        given = settings.get("encoding")
        if given is not None and str(given) != "":
            encoding = codec_name(given)
            if encoding in _UTF8:
                return Utf8Input(binary, name, size, encoding)
            return _transcoded(binary, name, encoding, close=not stdin)
        stream: IO[bytes] = binary
        if binary.seekable():
            start = binary.tell()
            head = binary.read(4)
            if check_beside and not any(head.startswith(bom) for bom, _ in _BOMS):
                check = _check_beside(source, binary, start)
                if check is not None:
                    binary.seek(start)
                    return Utf8Input(binary, name, size, "utf-8", check=check)

            def from_start() -> Iterator[bytes]:
                binary.seek(start)
                return _blocks(binary)

            encoding, guessed = detect_encoding(head, from_start, name)
            binary.seek(start)
        else:  # a stream read once: its start is held, checked and read again
            head = _read_up_to(binary, SNIFF_BYTES)
            encoding, guessed = detect_encoding(
                head, lambda: iter([head]), name, complete=len(head) < SNIFF_BYTES
            )
            stream = io.BufferedReader(Replay(head, binary, close_rest=not stdin))
            size = None
        if guessed:
            log.warning(
                "read %s as %s (not UTF-8); give --encoding to choose", shown_name(name), encoding
            )
        if encoding in _UTF8:
            return Utf8Input(stream, name, size, encoding)
        return attrs.evolve(_transcoded(stream, name, encoding, close=not stdin), guessed=guessed)
    except BaseException:
        if not stdin:
            binary.close()
        raise


def _check_beside(
    source: str | os.PathLike[str], binary: IO[bytes], start: int
) -> Utf8Check | None:
    """The check on a handle of its own, or ``None`` where the input is not a regular file (a
    device may never end, or mind being opened twice), cannot be opened again, or the name now
    leads to another file (the check is then made before reading, as without
    ``check_beside``)."""
    try:
        first = os.fstat(binary.fileno())
        if not stat.S_ISREG(first.st_mode):
            return None
        stream = Path(source).open("rb")  # noqa: SIM115 - the check's thread closes it
    except OSError:
        return None
    try:
        second = os.fstat(stream.fileno())
        if (first.st_dev, first.st_ino) != (second.st_dev, second.st_ino):
            stream.close()
            return None
        stream.seek(start)
    except OSError:
        stream.close()
        return None
    return Utf8Check(stream)


def _read_up_to(stream: IO[bytes], limit: int) -> bytes:
    parts = []
    n = 0
    while n < limit:
        data = stream.read(limit - n)
        if not data:
            break
        parts.append(data)
        n += len(data)
    return b"".join(parts)


def _transcoded(stream: IO[bytes], name: str, encoding: str, *, close: bool) -> Utf8Input:
    raw = _Transcoder(stream, encoding, close_source=close)
    return Utf8Input(io.BufferedReader(raw, buffer_size=1 << 16), name, None, encoding)
