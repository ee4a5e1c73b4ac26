"""The ``pamlib`` command line.

Each sub-command lives in its own module with an ``add_parser(subparsers)`` function that sets
``func`` on its parser. A run that names a command builds that command's parser alone (``--help``
and anything else builds them all, for the list), and a command's module imports at module level
only what its parser needs: what the command does is imported inside the functions that do it,
and ``pamlib score`` never loads the demo's cohort, the report or the rules engine. Errors are
one clean message on stderr, never a traceback (``--debug`` shows one). Exit status:

=====  ==================================================================================
0      success
1      a pamlib error: bad data, a licence, strict-mode rejects, a plugin that failed
2      a usage error: the command line cannot be carried out as written
3      an environment error: a file that cannot be read or written, a full disk
4      an internal error: "this is a pamlib bug" (``--debug`` shows the traceback)
130    interrupted
=====  ==================================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import io
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from pamlib._console import INTERRUPTED, interrupted
from pamlib._version import __version__
from pamlib.errors import PamlibError

__all__ = ["COMMANDS", "EXIT_BUG", "EXIT_ENVIRONMENT", "EXIT_ERROR", "EXIT_USAGE", "main"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_BUG = 4

#: Modules that each contribute one sub-command, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "pamlib.cli.score",
    "pamlib.cli.demo",
    "pamlib.cli.plugins",
    "pamlib.cli.report",
    "pamlib.cli.rules",
    "pamlib.cli.calibration",
    "pamlib.cli.fhir",
    "pamlib.cli.new_plugin",
)


class UsageError(PamlibError):
    """A command line that cannot be carried out as written (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    #: Whether :meth:`add_argument` is running: argparse makes a help formatter there only to
    #: check the argument's metavar against its nargs, which no width changes.
    _checking = False

    def error(self, message: str) -> NoReturn:
        from pamlib.identity import withhold_nhs_numbers  # argparse repeats what was typed

        message = withhold_nhs_numbers(message)
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        self._checking = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._checking = False

    def _get_formatter(self) -> argparse.HelpFormatter:
        # A formatter measures the terminal (importing shutil) when no width is given: help and
        # usage text need that, the check of each argument added (some 30 for a run) does not.
        if self._checking:  # typeshed's formatter class takes prog only; every one takes width
            return self.formatter_class(prog=self.prog, width=_CHECK_WIDTH)  # type: ignore[call-arg]
        return super()._get_formatter()


#: The width of the formatters that only check an argument's metavar (any would do).
_CHECK_WIDTH = 80


#: Each command's module by the command's name (its module's, with ``-`` for ``_``).
_BY_NAME = {module.rpartition(".")[2].replace("_", "-"): module for module in COMMANDS}


def _needed(argv: Sequence[str] | None) -> tuple[str, ...]:
    """The command modules whose parsers can read ``argv``: the command it names, where only
    ``--debug`` comes before the name (no top-level option takes a value); every one otherwise
    (``--help`` lists them all, an unknown name is told them all)."""
    for arg in argv or ():
        if arg != "--debug":
            module = _BY_NAME.get(arg)
            return COMMANDS if module is None else (module,)
    return COMMANDS


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``pamlib`` parser; given the ``argv`` it is to read, with only the parser of the
    command ``argv`` names (it reads ``argv`` as the whole one would, and the other commands'
    modules are not imported)."""
    parser = _Parser(
        prog="pamlib",
        description="Score, tailor and report Patient Activation Measure assessments.",
        epilog="Scores from the built-in 'demo' and 'raw-sum' providers are not PAM scores.",
    )
    parser.add_argument("--version", action="version", version=f"pamlib {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback when a command fails unexpectedly"
    )
    # prog as argparse would make it (no positional comes before the commands), given so that
    # making it measures no terminal
    subparsers = parser.add_subparsers(
        title="commands", metavar="COMMAND", parser_class=_Parser, prog=parser.prog
    )
    for module_name in _needed(argv):
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    if argv is None:
        argv = sys.argv[1:]
    _standard_streams()
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    if not getattr(args, "settles", False):  # else the command calls _settle() once started
        _settle()
    from pamlib.formats.guard import clean_interrupts

    try:
        # Ctrl-C or a kill: temporary files are removed. In the command's own process one stop
        # is enough: a signal sent again late (pyarrow re-sends one it caught in a long call)
        # must not turn the exit, its files cleaned up, into a death by that signal.
        with clean_interrupts(final=_own_process):
            return int(args.func(args) or 0)
    except UsageError as exc:
        return _fail(f"pamlib: error: {exc}", EXIT_USAGE, debug)
    except PamlibError as exc:  # a file that cannot be read (every problem "io"): exit 3
        problems = getattr(exc, "problems", ())
        unreadable = bool(problems) and all(p.code in _UNREADABLE for p in problems)
        return _fail(f"pamlib: error: {exc}", EXIT_ENVIRONMENT if unreadable else EXIT_ERROR, debug)
    except KeyboardInterrupt:
        return _fail("pamlib: interrupted", INTERRUPTED, debug)
    except BrokenPipeError:
        # The reader went away before the end: the run did not finish (no rejects file, no
        # reconciliation), so it is not a success; 141 is what a shell reports for SIGPIPE.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        return _fail(f"pamlib: error: {describe_os_error(exc)}", EXIT_ENVIRONMENT, debug)
    except MemoryError:
        return _fail("pamlib: error: out of memory", EXIT_ENVIRONMENT, debug)
    except (Exception, SystemExit) as exc:
        # pamlib's commands never call exit; a SystemExit here came from code that should not
        # have ended the run (the plugin host contains plugins' own), so it is not a success.
        message = (
            f"pamlib: internal error ({type(exc).__name__}): this is a pamlib bug; "
            "please report it, with the output of the same command run with --debug "
            "(its traceback may quote values of the input: remove them before you send it)"
        )
        return _fail(message, EXIT_BUG, debug)


#: Problem codes of a file that could not be read (an input's ``io``, a rule file's ``read``, a
#: calibration's ``unreadable``): the environment's failure, exit status 3.
_UNREADABLE = frozenset({"io", "read", "unreadable"})


def describe_os_error(exc: OSError) -> str:
    """An operating-system error in words, naming the file's base name only (a full path may
    hold a patient's name in a folder name)."""
    import errno
    from pathlib import Path, PurePath

    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    relative = not isinstance(exc.filename, str) or not PurePath(exc.filename).is_absolute()
    if exc.errno == errno.ENOENT and relative and not _working_folder_exists():
        # the system names no file (or a name that is fine): the folder the run started in is
        # gone, and every relative name with it
        return "the current folder no longer exists (removed while in use): cd to another one"
    name = PurePath(exc.filename).name if isinstance(exc.filename, str) else ""
    if name and exc.errno == errno.ENOENT and not Path(exc.filename).parent.is_dir():
        return f"{reason}: {name} (its folder does not exist)"  # the folder is not named
    return f"{reason}: {name}" if name else reason


def _working_folder_exists() -> bool:
    from pathlib import Path

    try:
        Path.cwd()
    except FileNotFoundError:
        return False
    return True


def file_name(text: str) -> str:
    """An argparse ``type`` for a file name option: an empty one is a usage error (it would
    otherwise be read as the current folder, or a missing option)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty file name")
    return text


def _fail(message: str, status: int, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc(file=sys.stderr)
    if any(c.isdigit() for c in message):  # an input's name may hold an NHS number
        from pamlib.identity import withhold_nhs_numbers

        message = withhold_nhs_numbers(message)
    print(message, file=sys.stderr)
    return status


#: A reader of standard output that went away (``| head``): as a shell reports SIGPIPE.
EXIT_BROKEN_PIPE = 141


def _standard_streams() -> None:
    """Standard output and error usable whatever the environment: a stream closed at start
    (``>&-``, ``2>&-``; Python then has ``None``) becomes ``/dev/null``, and text that is not
    UTF-8 (a file name in another encoding) is written escaped instead of failing in a strict
    UTF-8 locale. ``pamlib score -o -`` checks :data:`sys.__stdout__` itself: its rows must
    not vanish. A closed standard input (Python has ``None``, which readers comparing a stream
    with ``sys.stdin.buffer`` cannot take) becomes a stream whose reads fail saying so.

    Each of descriptors 0, 1 and 2 closed at start is opened on ``/dev/null`` first: else the
    first file the run opens takes the lowest free one, and whatever writes to "standard
    error" by number (a C library's warning, a crash report) writes into an output."""
    import contextlib
    import os
    from pathlib import Path

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                spare = os.open(os.devnull, os.O_RDWR)
                if spare != fd:
                    os.dup2(spare, fd)
                    os.close(spare)
    if sys.stdin is None:  # ``<&-``: reading ``-`` says so; files are read as ever
        sys.stdin = io.TextIOWrapper(io.BufferedReader(_ClosedInput()), encoding="utf-8")
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, Path(os.devnull).open("w", encoding="utf-8"))  # noqa: SIM115 -- for the process
        else:
            with contextlib.suppress(AttributeError, ValueError):
                stream.reconfigure(errors="backslashreplace")


class _ClosedInput(io.RawIOBase):
    """Standard input closed at start: no descriptor, and a read is an error that says so."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any, /) -> int:
        import errno

        raise OSError(errno.EBADF, "standard input is closed: name an input file instead of -")

    def fileno(self) -> int:
        raise io.UnsupportedOperation("standard input is closed")


def _silence_stdout() -> None:
    # The reader went away (``pamlib score x.csv | head``): stop Python complaining at exit.
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


#: Whether this process is the command line's own (started by :func:`run`), where
#: :func:`_settle` may set the garbage collector aside; ``main`` called by a program or a test
#: leaves that program's collector alone.
_own_process = False


def _settle(*, keep_freed_memory: bool = False) -> None:
    """Tell the collector that start-up is over: what it made so far (modules, classes, the
    parsers, the plugin host) lives as long as the process, so collections, and the one
    Python runs on every object at exit, skip it (:func:`gc.freeze`), and the collector,
    off while it was made, runs again. Only in a process :func:`run` started.

    :func:`main` calls it before the command runs, unless the command's parser sets
    ``settles``: a command that imports much of what it needs once it runs (``score``: the
    pipeline, the plugins) calls it itself once those are loaded, so the collector does not
    walk them, young, while they are made. With ``keep_freed_memory`` (a run over blocks of
    an export), glibc keeps the memory one block frees for the next (:mod:`pamlib._heap`)."""
    if _own_process:
        gc.freeze()
        gc.enable()
        if keep_freed_memory:
            from pamlib import _heap

            _heap.keep_freed_memory()


def run() -> NoReturn:  # pragma: no cover - console entry point
    global _own_process  # noqa: PLW0603 - set once, by the process's entry point
    _own_process = True
    # Start-up makes many objects that last, and next to no garbage: no collection until
    # _settle() (the collector's passes over them were about 3% of a two-row run).
    gc.disable()
    try:
        status = main()
    except KeyboardInterrupt:  # before the command ran (its parser, its modules loading)
        interrupted()
    if status == INTERRUPTED:
        _end_interrupted()
    sys.exit(status)


def _end_interrupted() -> NoReturn:
    """End an interrupted run now, its files already cleaned up: without the interpreter's
    shutdown, in which threads of native libraries stopped mid-task (pyarrow's) can abort the
    process ("terminate called without an active exception", status -6) or a late signal end
    it by that signal, so that it ends as one interrupted run, status 130, every time."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    os._exit(INTERRUPTED)
