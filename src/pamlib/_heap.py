"""The command line's own process keeps the memory it frees for the next block (glibc only).

A run over a large export makes and drops the same large buffers and arrays for every block.
By default glibc gives freed memory back to the system as soon as 128 KiB lie free at the top
of its heap, and serves every request over a threshold it adjusts by itself with a mapping of
its own; the next block then pays the kernel to map and zero those pages again. Only the
command line's own process asks glibc to keep what it frees (a program that embeds pamlib
keeps its own allocator's settings), and never where the environment already tunes glibc's
allocator.
"""

from __future__ import annotations

import os
import sys

#: glibc's ``mallopt`` parameters (``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Requests under this come from the heap, whose freed memory is reused.
MMAP_BYTES = 64 << 20
#: Freed memory at the heap's top is given back to the system only beyond this.
TRIM_BYTES = 256 << 20


def keep_freed_memory() -> bool:
    """Set glibc's thresholds for this process; whether they were set."""
    if not sys.platform.startswith("linux"):
        return False
    if any(name.startswith("MALLOC_") for name in os.environ):  # glibc's own variables
        return False
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc: the parameters above are its own
        mallopt = libc.mallopt
    except (ImportError, OSError, AttributeError):  # no ctypes, musl, or no C library found
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_BYTES)
    )
