"""Stages of a run on threads of their own, in order, with a bounded number of items between.

Reading a block, checking it, scoring it and writing it are done one after the other for each
block, but nothing stops block k+1 being read while block k is scored and block k-1 written:
pyarrow's CSV reading and writing and NumPy's array work release the GIL, so on two or more
cores the stages overlap. Each stage still takes its items in input order and keeps its own
state (the ids seen, the output stream), so the output is the same bytes as a run on one
thread. A stage's queue holds at most ``depth`` items, so memory stays bounded by a few blocks.

An error in a stage's thread is raised again in the thread that drives the run, as itself;
when the run stops early (an error, ``KeyboardInterrupt``) every stage is told to stop and is
waited for, so nothing is written after the run has discarded its output.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL = 0.05  # seconds between looks at the stop flag while a queue is full or empty
_JOIN = 10.0  # seconds to wait for a stage stopping after an error (it ends its item first)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says, else every
    core): the default number of threads."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13
    if count is not None:
        n = count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - macOS and Windows before 3.13
        n = os.cpu_count()
    return max(1, n or 1)


def resolve_threads(threads: int | None) -> int:
    """``threads``, or the cores available for ``None``; at least one."""
    from pamlib.errors import ConfigurationError

    if threads is None:
        return available_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigurationError(f"threads must be a whole number of at least 1, not {threads!r}")
    return threads


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class Ahead(Iterator[T], Generic[T]):
    """Takes items from ``source`` on a thread of its own, up to ``depth`` ahead of the
    consumer. The source is advanced, and closed, on that thread only (a generator cannot be
    closed while another thread runs it)."""

    def __init__(self, source: Iterator[T], *, depth: int = 1, name: str = "pamlib-read") -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put(item) or self._stop.is_set():
                    return  # read no further than asked
            self._put(_END)
        except BaseException as exc:  # raised again on the consumer's thread
            self._put(_Failure(exc))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException as exc:  # reported if nothing else was
                    self._put(_Failure(exc))

    def __iter__(self) -> Ahead[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._done = True
            self._thread.join()
            raise StopIteration
        if isinstance(item, _Failure):
            self._done = True
            self._thread.join()
            raise item.error
        return item  # type: ignore[return-value]  # not a marker: one of the T put in

    def close(self) -> None:
        """Stop reading ahead and wait for the thread, which closes the source."""
        self._done = True
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(_JOIN)


class Behind(Generic[T]):
    """Hands items to ``consume`` on a thread of its own, in the order given, with at most
    ``depth`` waiting. A failure of ``consume`` is raised on the caller's thread by the next
    :meth:`put` or by :meth:`finish`; nothing is consumed after it."""

    def __init__(
        self, consume: Callable[[T], None], *, depth: int = 1, name: str = "pamlib-write"
    ) -> None:
        self._consume = consume
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is _END:
                return
            try:
                self._consume(item)  # type: ignore[arg-type]  # not _END: a T put in
            except BaseException as exc:  # raised again on the caller's thread
                self._error = exc
                self._stop.set()
                return

    def _raise(self) -> None:
        if self._error is not None:
            self._thread.join()
            raise self._error

    def put(self, item: T) -> None:
        while True:
            self._raise()
            if not self._thread.is_alive():
                raise RuntimeError("the writing thread stopped")  # pragma: no cover
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait until every item is consumed; raise the failure, if any."""
        while True:
            self._raise()
            try:
                self._queue.put(_END, timeout=_POLL)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._raise()

    def stop(self) -> None:
        """Consume nothing more and wait for the item being consumed, if any."""
        self._stop.set()
        self._thread.join(_JOIN)
