"""A one-line progress bar for standard error, drawn only on a terminal."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Redraws ``[#####-----]  45%  123,456 records`` at most ten times a second.

    Does nothing unless ``stream`` is a terminal, so logs and pipes stay clean.
    """

    def __init__(self, stream: TextIO, *, enabled: bool | None = None, width: int = 30) -> None:
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.width = width
        self._last = 0.0
        self._drawn = False

    def update(self, fraction: float | None, records: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        if fraction is None:
            bar = f"{records:,} records"
        else:
            done = round(self.width * min(max(fraction, 0.0), 1.0))
            bar = f"[{'#' * done}{'-' * (self.width - done)}] {fraction:4.0%}  {records:,} records"
        self.stream.write(f"\r{bar}\x1b[K")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
