"""Output safety for every run that writes files: nothing overwritten, nothing half-written.

One mechanism, used by every command and by :func:`pamlib.pipeline.score_file`:

* An :class:`OutputGuard` is told a run's inputs and outputs. It refuses an output that is the
  same file as an input or as another output of the run (paths are compared once symlinks are
  resolved, and existing files by device and inode, so symlinks and hard links count), refuses
  a directory, and takes an exclusive lock on each output for the run, so a second run writing
  the same file fails at once instead of silently replacing the first one's work.
* An :class:`AtomicTarget` writes a regular file to a temporary file beside it, flushed to disk,
  and renames it over the final name only on :meth:`~AtomicTarget.commit`, after a complete
  write; on any error or interrupt the temporary file is removed and the old file is untouched.
  A symlink is followed and the file it points to is replaced (the link survives). Character
  devices and named pipes (``/dev/null``, a FIFO) are written through directly; any other kind
  of file is refused. Standard output stays a stream, and so does a path that names an open
  descriptor (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``): ``-o /dev/stdout >> log``
  appends, as ``-o -`` does, instead of replacing ``log``.
* Hidden names beside an output (the temporary file, the lock) always fit the folder's limit on
  a name (``NAME_MAX``, 255 bytes on most file systems): where ``.NAME…`` would not, NAME is cut
  to a prefix plus a hash of the whole name. An output whose own name does not fit is refused
  before anything is written.

Errors name files by their base name only: a full path may hold a patient's name.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

from pamlib.errors import FormatError, Problem

__all__ = [
    "AtomicTarget",
    "OutputGuard",
    "OutputRefusedError",
    "Terminated",
    "clean_interrupts",
]

_PathLike = str | os.PathLike[str]


class OutputRefusedError(FormatError):
    """An output that would destroy a file the run reads or writes, or cannot be written
    safely: the same file as an input or another output, a directory, a file of a kind pamlib
    does not write to, or a file another run is writing. Nothing was written."""


def _refuse(summary: str, path: _PathLike, code: str, message: str) -> OutputRefusedError:
    return OutputRefusedError(summary, [Problem(Path(path).name, code, message)])


def _stat(path: _PathLike) -> os.stat_result | None:
    try:
        return Path(path).stat()
    except (OSError, ValueError):
        return None


#: Paths that name this process's standard streams.
_STANDARD_STREAMS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def _descriptor(path: _PathLike) -> int | None:
    """The open descriptor a path names (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``),
    else ``None``. Linux reopens such a path as the file behind the descriptor: replacing or
    truncating that file would undo what the shell set up (``>> log`` appends), so an output
    there is written through a copy of the descriptor instead."""
    if os.name != "posix":
        return None
    try:
        text = os.path.normpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return None
    if text in _STANDARD_STREAMS:
        return _STANDARD_STREAMS[text]
    parts = text.split("/")
    number = parts[-1]
    if not (number.isascii() and number.isdigit()):
        return None
    owners = ("self", "thread-self", str(os.getpid()))
    if parts[:-1] == ["", "dev", "fd"] or (
        len(parts) == 5 and parts[:2] == ["", "proc"] and parts[2] in owners and parts[3] == "fd"
    ):
        return int(number)
    return None


def _fstat(fd: int) -> os.stat_result | None:
    try:
        return os.fstat(fd)
    except OSError:
        return None


def _passes_through(st: os.stat_result | None) -> bool:
    """A character device or named pipe: written through, never replaced."""
    return st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode))


#: The longest name, in bytes, of a file in a folder whose own limit cannot be asked.
_NAME_MAX = 255


def _name_max(folder: _PathLike) -> int:
    """The longest file name, in bytes, that ``folder`` takes (``pathconf``'s ``NAME_MAX``;
    255 where it cannot say)."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), no such folder
        return _NAME_MAX
    return limit if limit > 0 else sys.maxsize  # -1: no limit


def _hidden(name: str, suffix: str, limit: int) -> str:
    """A hidden name beside ``name``: ``.NAME`` + ``suffix``, or where that is longer than
    ``limit`` bytes, ``.PREFIX~HASH`` + ``suffix``, NAME cut to what fits (whole characters)
    and HASH a digest of all of it. The same NAME always gives the same name (two runs writing
    one output contend for one lock), and names sharing a prefix get different ones."""
    full = f".{name}{suffix}"
    if len(os.fsencode(full)) <= limit:
        return full
    import hashlib  # only for a name this long: not on every run's path

    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    room = limit - len(os.fsencode(f".~{digest}{suffix}"))
    prefix: list[str] = []
    for char in name:
        room -= len(os.fsencode(char))
        if room < 0:
            break
        prefix.append(char)
    return f".{''.join(prefix)}~{digest}{suffix}"


def _check_name(real: _PathLike, given: _PathLike, label: str) -> None:
    """Refuse a new output whose name is longer than its folder takes: said before anything
    is written, rather than as the operating system's error when it is renamed at the end."""
    path = Path(real)
    size, limit = len(os.fsencode(path.name)), _name_max(path.parent)
    if size > limit:
        raise _refuse(
            "cannot write an output",
            given,
            "name-too-long",
            f"{label}: its name is {size} bytes, longer than the {limit} bytes the file system "
            "allows; choose a shorter name",
        )


def writes_through(path: _PathLike) -> bool:
    """Whether ``path`` (links followed) is a character device or named pipe, or names an open
    descriptor, which an output writes through: nothing is made beside it."""
    return _descriptor(path) is not None or _passes_through(_stat(path))


class _File:
    """One file of a run, as given and as found on disk."""

    def __init__(self, path: _PathLike, label: str) -> None:
        self.path = path
        self.label = label
        #: The descriptor the path names (``/dev/fd/3``): the file is the one open there.
        self.descriptor = _descriptor(path)
        if self.descriptor is not None:
            self.real, self.stat = f"<fd {self.descriptor}>", _fstat(self.descriptor)
            return
        self.real = os.path.realpath(path)
        self.stat = _stat(self.real)
        if self.stat is None and _passes_through(_stat(path)):  # a pipe reached by a link
            self.real, self.stat = os.fspath(path), _stat(path)

    @classmethod
    def of_stream(cls, stream: Any, name: str, label: str) -> _File | None:
        """A standard stream redirected from or to a regular file (``< export.csv``), as that
        file; ``None`` for a terminal, a pipe or a stream without a descriptor."""
        try:
            st = os.fstat(stream.fileno())
        except (AttributeError, OSError, ValueError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        found = cls.__new__(cls)
        found.path, found.label, found.real, found.stat = name, label, f"<{name}>", st
        found.descriptor = None
        return found

    def same_as(self, other: _File) -> bool:
        if self.real == other.real:
            return True
        a, b = self.stat, other.stat
        return a is not None and b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class AtomicTarget:
    """A binary output that appears under its name only when complete.

    A path is written to a hidden temporary file in the same directory (``.NAME.XXXX.partial``,
    NAME shortened where that would be too long a name), which :meth:`commit` flushes to disk
    and renames over the final name; :meth:`discard` removes it. A new name longer than the
    folder takes is an :class:`OutputRefusedError` before anything is written. A symlink's
    target is the file replaced. A character device or named pipe is opened and written
    directly. An open stream (standard output) is written directly and never closed. Both
    methods may be called more than once; after the first, they do nothing.
    """

    def __init__(self, target: _PathLike | IO[bytes]) -> None:
        self.final: Path | None = None
        self._tmp: Path | None = None
        self._replace: Path | None = None
        self._owned = False
        self._done = False
        self._mode: int | None = None
        if not isinstance(target, (str, os.PathLike)):
            self.stream: IO[bytes] = target
            return
        self.final = Path(target)
        descriptor = _descriptor(target)
        if descriptor is not None:
            self._owned = True
            self.stream = _through_descriptor(descriptor, target)
            return
        real = Path(os.path.realpath(target))
        st = _stat(real)
        if st is None and _passes_through(_stat(target)):
            # /dev/stdout when it is a pipe: its link names "pipe:[N]", no path; the pipe is
            # reached through the name given
            real, st = Path(target), _stat(target)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise _refuse("cannot write an output", target, "directory", "this is a directory")
        self._owned = True
        if _passes_through(st):
            self.stream = _named(_NamedFile(real, "wb"), target)  # /dev/null, a FIFO
            return
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise _refuse(
                "cannot write an output",
                target,
                "not-a-file",
                "not a regular file, a character device or a named pipe",
            )
        if st is not None and not os.access(real, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(real))
        if st is None:
            _check_name(real, target, "the output")
        self._replace = real
        self._mode = None if st is None else stat.S_IMODE(st.st_mode)
        self.stream = self._open_temporary(real)

    def _open_temporary(self, real: Path) -> IO[bytes]:
        limit = _name_max(real.parent)
        for _ in range(100):
            # ``secrets.token_hex`` is this, without importing ``secrets`` (and ``hmac``) per run
            tmp = real.with_name(_hidden(real.name, f".{os.urandom(4).hex()}.partial", limit))
            try:
                # A new file: 0o666 lets the umask decide. A file replaced: no wider than it
                # was from the first byte (a 0o600 output of patients' rows must not be
                # readable by others while it is written). O_EXCL never reuses a file.
                mode = 0o666 if self._mode is None else self._mode & 0o666
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, mode)
            except FileExistsError:
                continue
            except OSError as exc:
                raise type(exc)(exc.errno, exc.strerror, str(real)) from None
            self._tmp = tmp
            try:
                return _open_file(fd, self.final or real)
            except BaseException:
                os.close(fd)
                tmp.unlink(missing_ok=True)
                raise
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(real))

    @property
    def name(self) -> str:
        return "<stdout>" if self.final is None else str(self.final)

    @property
    def committed(self) -> bool:
        return self._done

    def commit(self) -> None:
        """Publish the output: flush it to disk and, for a file, rename it over the final name."""
        if self._done:
            return
        if not self._owned:
            self.stream.flush()
            self._done = True
            return
        try:
            if self._tmp is None:  # written through
                self.stream.close()
            else:
                self._finish_temporary()
        except BaseException:
            self.discard()
            raise
        self._done = True

    def sync(self) -> None:
        """Flush a file written to a temporary name to disk and close it, ready for
        :meth:`commit` to rename (which is then quick); otherwise nothing."""
        if self._done or self._tmp is None or self.stream.closed:
            return
        try:
            self.stream.flush()
            try:
                os.fsync(self.stream.fileno())
            except OSError as exc:  # EIO, ENOSPC on a network disk: said with the file's name
                raise _with_name(exc, self.final or "") from None
            self.stream.close()
        except BaseException:
            self.discard()
            raise

    def _finish_temporary(self) -> None:
        tmp, final = self._tmp, self._replace
        if tmp is None or final is None:
            return
        self.sync()
        if self._mode is not None:  # keep the mode of the file replaced
            with contextlib.suppress(OSError):
                tmp.chmod(self._mode)
        try:
            tmp.replace(final)
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, str(final)) from None
        self._tmp = None
        _sync_path(final.parent)

    def discard(self) -> None:
        """Drop what was written: the final name is left as it was."""
        if self._done:
            return
        self._done = True
        if not self._owned:
            with contextlib.suppress(OSError, ValueError):
                self.stream.flush()
            return
        with contextlib.suppress(OSError, ValueError):
            self.stream.close()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            self._tmp = None


_O_BINARY = getattr(os, "O_BINARY", 0)

#: Bytes written between two requests to start writing them to disk.
_WRITEBACK_STEP = 16 << 20


def _with_name(exc: OSError, name: _PathLike) -> OSError:
    """``exc`` with the file's name, where the system gave none (a write that failed); a
    :class:`BlockingIOError` as it is (its count of bytes written is what a buffer needs)."""
    if exc.filename is not None or not os.fspath(name) or isinstance(exc, BlockingIOError):
        return exc
    return type(exc)(exc.errno, exc.strerror, os.fspath(name))


class _NamedFile(io.FileIO):
    """A file whose failed writes name it (``no space left on the device: scored.csv``):
    the system's error on a write names no file, and a run writes several."""

    label: str | os.PathLike[str] = ""

    def write(self, data: Any, /) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            raise _with_name(exc, self.label) from None


def _named(raw: _NamedFile, label: _PathLike) -> IO[bytes]:
    """``raw`` buffered, its writes' errors naming ``label``."""
    raw.label = label
    return io.BufferedWriter(raw)


def _through_descriptor(descriptor: int, given: _PathLike) -> IO[bytes]:
    """A stream writing to a copy of ``descriptor`` (``/dev/fd/N`` given): its offset and
    append mode are the shell's, and closing the stream leaves the descriptor open."""
    import fcntl

    try:
        flags = fcntl.fcntl(descriptor, fcntl.F_GETFL)
        st = os.fstat(descriptor)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, os.fspath(given)) from None
    if stat.S_ISDIR(st.st_mode):
        raise _refuse("cannot write an output", given, "directory", "this is a directory")
    if flags & os.O_ACCMODE == os.O_RDONLY:
        raise OSError(errno.EBADF, "open for reading only", os.fspath(given))
    return _named(_NamedFile(os.dup(descriptor), "wb", closefd=True), given)


class _Writeback(_NamedFile):
    """A file that asks the system to start writing each ``_WRITEBACK_STEP`` bytes to disk
    as soon as they are written (``posix_fadvise(POSIX_FADV_DONTNEED)``, which on Linux starts
    writeback of dirty pages and leaves them cached).

    The disk then works while the run does, and :meth:`AtomicTarget.commit`'s ``fsync`` waits
    for the last few megabytes only instead of the whole file. Only the range just written is
    named, while it is still dirty, so nothing a later reader wants is dropped from the cache.
    """

    _advised = 0
    _written = 0

    def write(self, data: Any, /) -> int:
        n = super().write(data)
        if n:
            self._written += n
            if self._written - self._advised >= _WRITEBACK_STEP:
                with contextlib.suppress(OSError):
                    os.posix_fadvise(
                        self.fileno(),
                        self._advised,
                        self._written - self._advised,
                        os.POSIX_FADV_DONTNEED,
                    )
                self._advised = self._written
        return n


def _open_file(fd: int, label: _PathLike) -> IO[bytes]:
    """``fd``, just created, as a buffered binary file whose failed writes name ``label``: one
    that starts writeback as it goes where the system can be asked to."""
    if not hasattr(os, "posix_fadvise"):  # pragma: no cover - macOS, Windows
        return _named(_NamedFile(fd, "wb", closefd=True), label)
    return _named(_Writeback(fd, "wb", closefd=True), label)


def _sync_path(path: Path) -> None:
    """Make a file, or a folder's entries (a rename), durable (POSIX; best effort)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Lock:
    """An exclusive, non-blocking lock on ``.NAME.lock`` beside a file (shortened as
    :func:`_hidden` says where that name is too long); removed on release."""

    def __init__(self, real: str, label: str) -> None:
        target = Path(real)
        self.path = target.with_name(_hidden(target.name, ".lock", _name_max(target.parent)))
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise type(exc)(exc.errno, exc.strerror, str(target)) from None
            if not _try_lock(fd):
                os.close(fd)
                raise _refuse(
                    "another run is writing an output of this run",
                    target,
                    "in-use",
                    f"{label}: another pamlib run holds it; wait for that run to finish",
                )
            # the holder before us may have removed the lock file before releasing it: the lock
            # only counts if it is on the file that is still there
            held, now = os.fstat(fd), _stat(self.path)
            if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                self.fd: int | None = fd
                return
            os.close(fd)
        raise _refuse("cannot lock an output", target, "in-use", f"{label}: the lock keeps moving")

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)  # closing the descriptor releases the lock
        self.fd = None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class OutputGuard:
    """The files of one run: refuses outputs that clash, locks them, hands out atomic targets.

    Use it as a context manager: on exit every target not committed is discarded and every
    lock released. Register inputs with :meth:`input` and outputs with :meth:`output` (in any
    order: each new file is checked against all the others), then :meth:`open` each output.
    An input of ``-`` (standard input) and open streams are not files and are never checked.

    For example, ``score in.csv -o in.csv`` fails before anything is written::

        with OutputGuard() as guard:
            guard.input("in.csv", "the input")
            guard.output("in.csv", "the scored output")  # raises OutputRefusedError
    """

    def __init__(self) -> None:
        self._inputs: list[_File] = []
        self._outputs: list[_File] = []
        self._locks: dict[str, _Lock] = {}
        self._targets: list[AtomicTarget] = []

    def __enter__(self) -> OutputGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def input(self, path: _PathLike | IO[bytes] | None, label: str = "an input") -> None:
        """A file the run reads; no output may be the same file."""
        if not isinstance(path, (str, os.PathLike)):
            return
        if os.fspath(path) == "-":  # standard input: a file when redirected from one
            found = _File.of_stream(sys.stdin, "stdin", label)
            if found is not None:
                for out in self._outputs:
                    if found.same_as(out):
                        raise _clash(out, found)
                self._inputs.append(found)
            return
        new = _File(path, label)
        if _passes_through(new.stat):
            return  # reading a device or pipe cannot destroy it
        for out in self._outputs:
            if new.same_as(out):
                raise _clash(out, new)
        self._inputs.append(new)

    def output(self, path: _PathLike | IO[bytes] | None, label: str = "an output") -> None:
        """A file the run writes: refused if it is a directory or the same file as an input or
        another output; locked for the run. (``-`` is a file name here: callers turn the
        ``-`` of a command line into standard output before.)"""
        if not isinstance(path, (str, os.PathLike)):
            # standard output redirected to a file (``-o - >> export.csv``): never an input
            found = _File.of_stream(path, "stdout", label) if path is not None else None
            if found is not None:
                for other in self._inputs:
                    if found.same_as(other):
                        raise _clash(found, other)
                self._outputs.append(found)
            return
        new = _File(path, label)
        if new.stat is not None and stat.S_ISDIR(new.stat.st_mode):
            raise _refuse("cannot write an output", path, "directory", f"{label} is a directory")
        if _passes_through(new.stat):
            return  # /dev/null twice is harmless; a device is never replaced
        for other in (*self._inputs, *self._outputs):
            if new.same_as(other):
                raise _clash(new, other)
        if new.descriptor is not None:  # written through the descriptor: nothing made beside
            if new.stat is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF), os.fspath(path))
            self._outputs.append(new)
            return
        if new.stat is None:
            _check_name(new.real, path, label)
        if new.real not in self._locks:
            with _signals_deferred():
                self._locks[new.real] = _Lock(new.real, label)
        self._outputs.append(new)

    def open(self, target: _PathLike | IO[bytes]) -> AtomicTarget:
        """An atomic target for an output (or a stream); discarded on exit unless committed."""
        with _signals_deferred():  # an interrupt cannot fall between creating and recording
            atomic = AtomicTarget(target)
            self._targets.append(atomic)
        return atomic

    def close(self) -> None:
        """Discard every target not committed and release every lock."""
        for target in self._targets:
            target.discard()
        self._targets.clear()
        for lock in self._locks.values():
            lock.release()
        self._locks.clear()


def commit_together(targets: Sequence[AtomicTarget]) -> None:
    """Publish several outputs of one run as one, in the order given: each is flushed to disk
    first, then they are renamed in turn with interrupts held back (under
    :func:`clean_interrupts`, an interrupt that arrives meanwhile is raised after the last), so
    an interrupted run leaves every one of them new or none."""
    for target in targets:
        target.sync()
    with _signals_deferred():
        for target in targets:
            target.commit()


def _clash(output: _File, other: _File) -> OutputRefusedError:
    return _refuse(
        "an output would overwrite a file this run uses",
        output.path,
        "same-file",
        f"{output.label} and {other.label} are the same file",
    )


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM): handled like an interrupt, so outputs in
    progress are discarded on the way out."""


class _Interrupts:
    """Interrupts held back while a temporary file is created and recorded."""

    depth = 0
    pending: type[KeyboardInterrupt] | None = None
    seen = False


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _Interrupts.seen:
        # one stop is enough: a second signal (pyarrow re-sends the one it caught, a user
        # presses Ctrl-C twice) must not break off the removal of temporary files
        return
    _Interrupts.seen = True
    exc = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    if _Interrupts.depth:
        _Interrupts.pending = exc  # raised when the file is recorded
        return
    raise exc


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Under :func:`clean_interrupts`, an interrupt that arrives in the block is raised at its
    end: a file created in the block is recorded first, so it can be removed.

    Only the main thread counts: signal handlers run there alone, and a count shared with other
    threads (a service scoring files on several) could lose an update and defer an interrupt
    for good."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Interrupts.depth += 1
    try:
        yield
    finally:
        _Interrupts.depth -= 1
        pending = _Interrupts.pending
        if _Interrupts.depth == 0 and pending is not None:
            _Interrupts.pending = None
            raise pending


@contextlib.contextmanager
def clean_interrupts(*, final: bool = False) -> Iterator[None]:
    """Within the block, Ctrl-C (SIGINT) raises :class:`KeyboardInterrupt` and SIGTERM raises
    :class:`Terminated` (a :class:`KeyboardInterrupt`) instead of killing the process, and
    neither can fall between creating a temporary file and recording it, so every temporary
    file is removed on the way out. Only in the main thread, and only for signals whose
    handling nobody else has changed.

    ``final`` (the process ends with the block: the command line's own): once one has
    stopped the block, later signals are ignored to the end of the process rather than handed
    back to the default handlers, which would end the exit itself by a signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    previous = {}
    _Interrupts.seen = False
    for signum, default in defaults.items():
        if signal.getsignal(signum) is default:
            previous[signum] = signal.signal(signum, _on_signal)
    try:
        yield
    finally:
        _let_signals_in()  # a signal already received is handled (and dropped) here
        if not (final and _Interrupts.seen):  # else _on_signal drops every later one
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _let_signals_in() -> None:
    """A Python function call: the interpreter runs the handlers of signals received."""
