"""Default plugin: the built-in instruments and cut-point sets."""

from __future__ import annotations

from collections.abc import Callable

from pamlib.hookspecs import hookimpl
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.levels import BUILTIN_CUTPOINT_SETS, CutpointSet


@hookimpl
def pamlib_register_instruments(register: Callable[[Instrument], None]) -> None:
    for instrument in BUILTIN_INSTRUMENTS:
        register(instrument)


@hookimpl
def pamlib_register_cutpoint_sets(register: Callable[[CutpointSet], None]) -> None:
    for cutpoints in BUILTIN_CUTPOINT_SETS:
        register(cutpoints)
