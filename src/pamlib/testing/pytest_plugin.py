"""pytest plugin (entry point ``pytest11: pamlib``): fixtures for testing pamlib plugins.

Loading it costs nothing and changes nothing: it only defines fixtures, used by the conformance
classes in :mod:`pamlib.testing.conformance` and available to plugin authors' own tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pamlib.plugins import PluginHost, reset_host


@pytest.fixture
def pamlib_host() -> Iterator[PluginHost]:
    """A plugin host with everything installed (entry points included), as the process default.

    ``PAMLIB_DISABLE_PLUGINS`` is honoured, so a suite can switch plugins off.
    """
    host = PluginHost()
    reset_host(host)
    yield host
    reset_host(None)
