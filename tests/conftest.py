"""Shared test configuration: hypothesis profiles and fixtures used across the suite."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from pamlib.plugins import PluginHost, reset_host

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=100,
    derandomize=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")

ROOT = Path(__file__).resolve().parent.parent
#: The project's own sample exports, made by ``tests/data/make_samples.py`` (synthetic).
SAMPLE_DATA = ROOT / "tests" / "data"
#: The same kinds of export from a folder beside the checkout, used as well when it is there.
SHARED_DATA = ROOT.parent / "shared" / "data"


class _NoProcessHost:
    """Stands in for the process-wide host while a test holds its own: any use is a failure
    that names the place which fetched the global host instead of using the one it was given."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(
            f"the process-wide plugin host was fetched (.{name}): use the host given instead"
        )


@pytest.fixture(autouse=True)
def _python_interrupt_handler() -> Iterator[None]:
    """Each test starts with Python's own Ctrl-C handler. pamlib takes over only that one
    (never a handler someone else set), and a Spark session started by an earlier test leaves
    its own: tests of interrupts must not depend on the order they run in."""
    earlier = signal.getsignal(signal.SIGINT)
    if earlier is signal.default_int_handler or earlier is None:  # None: set outside Python
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, earlier)


@pytest.fixture
def host() -> Iterator[PluginHost]:
    """A host with only pamlib's built-in plugins, to pass to what a test calls. It is never
    installed as the process default, and while it is in use the process default refuses to
    be used: code given a host must use that one."""
    reset_host(_NoProcessHost())  # type: ignore[arg-type]  # a stand-in that fails when used
    yield PluginHost(load_entry_points=False, disabled=())
    reset_host(None)


@pytest.fixture
def process_host(host: PluginHost) -> Iterator[PluginHost]:
    """:func:`host` installed as the process-wide host, for the command line: its ``main``
    is the one entry point whose plugins come from there."""
    reset_host(host)
    yield host
    reset_host(None)


def _sample_folders() -> list[Any]:
    folders = [pytest.param(SAMPLE_DATA, id="own-samples")]
    if SHARED_DATA.is_dir():
        folders.append(pytest.param(SHARED_DATA, id="shared-samples"))
    return folders


@pytest.fixture(params=_sample_folders())
def sample_data(request: pytest.FixtureRequest) -> Path:
    """A folder of sample exports of the same names and shapes: the project's own (always
    there, so a clone anywhere runs every test), and the shared folder too when present."""
    folder: Path = request.param
    return folder
