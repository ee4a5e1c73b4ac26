"""pytest plugin (entry point ``pytest11: pamlib``): fixtures for testing pamlib plugins.

Loading it costs nothing and changes nothing: it only defines fixtures, used by the conformance
classes in :mod:`pamlib.testing.conformance` and available to plugin authors' own tests.
"""

from __future__ import annotations

import pytest

from pamlib.plugins import PluginHost


@pytest.fixture
def pamlib_host() -> PluginHost:
    """A plugin host with everything installed (entry points included), to pass to what a test
    calls. It is never installed as the process-wide host, so a plugin that fetches that host
    instead of using the one it was given is not hidden by it.

    ``PAMLIB_DISABLE_PLUGINS`` is honoured, so a suite can switch plugins off.
    """
    return PluginHost()
