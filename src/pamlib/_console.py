"""The ``pamlib`` console script: the command line, and an interrupt while it loads.

Loading the command line (attrs, NumPy, pyarrow, the plugins) takes a tenth of a second or more
before :func:`pamlib.cli.main` can turn Ctrl-C into its one-line message; this module imports
nothing but :mod:`sys` and :mod:`os` (both loaded with the interpreter) before it can, so an
interrupt in that time ends the run the same way, without a traceback.

It also gives NumPy's BLAS one thread (:func:`one_blas_thread`) before NumPy loads.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing takes milliseconds before the handler
if TYPE_CHECKING:
    from collections.abc import MutableMapping
    from typing import NoReturn

#: The exit status of an interrupted run (as the shell gives 128 + SIGINT).
INTERRUPTED = 130


def interrupted() -> NoReturn:
    """End the run as an interrupt (the message :func:`pamlib.cli.main` gives one too)."""
    sys.stderr.write("pamlib: interrupted\n")
    sys.exit(INTERRUPTED)


#: The variables OpenBLAS reads for its number of threads: any one set is the user's choice.
BLAS_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_DEFAULT_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OMP_NUM_THREADS",
)


def one_blas_thread(environ: MutableMapping[str, str]) -> bool:
    """Ask OpenBLAS, as NumPy loads it, for one thread; whether the setting was made.

    As it loads, OpenBLAS starts a thread for each further core, and each spins for about a
    fifth of a second before it sleeps: processor time taken from the start of ``pamlib
    score``'s read, checks and writer (``--threads``), on a command line that calls no BLAS
    routine large enough to share. Only the command line makes the setting, in its own
    environment (which a process it starts inherits; a program that embeds pamlib keeps
    NumPy's defaults), and only when none of the variables above is set. ``OMP_NUM_THREADS``
    is never set here: pyarrow sizes its own pool by it.
    """
    if any(name in environ for name in BLAS_THREAD_VARIABLES):
        return False
    environ["OPENBLAS_NUM_THREADS"] = "1"
    return True


def run() -> NoReturn:  # pragma: no cover - the console entry point (tested in a subprocess)
    one_blas_thread(os.environ)
    try:
        from pamlib.cli import run as command_line
    except KeyboardInterrupt:
        interrupted()
    command_line()
