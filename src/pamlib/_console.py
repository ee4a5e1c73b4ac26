"""The ``pamlib`` console script: the command line, and an interrupt while it loads.

Loading the command line (attrs, NumPy, pyarrow, the plugins) takes a tenth of a second or more
before :func:`pamlib.cli.main` can turn Ctrl-C into its one-line message; this module imports
nothing but :mod:`sys` before it can, so an interrupt in that time ends the run the same way,
without a traceback.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: importing typing takes milliseconds before the handler
if TYPE_CHECKING:
    from typing import NoReturn

#: The exit status of an interrupted run (as the shell gives 128 + SIGINT).
INTERRUPTED = 130


def interrupted() -> NoReturn:
    """End the run as an interrupt (the message :func:`pamlib.cli.main` gives one too)."""
    sys.stderr.write("pamlib: interrupted\n")
    sys.exit(INTERRUPTED)


def run() -> NoReturn:  # pragma: no cover - the console entry point (tested in a subprocess)
    try:
        from pamlib.cli import run as command_line
    except KeyboardInterrupt:
        interrupted()
    command_line()
