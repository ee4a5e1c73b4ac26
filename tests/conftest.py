"""Shared test configuration: hypothesis profiles and fixtures used across the suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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
#: Sample exports shared by the project (synthetic; see their README).
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def host() -> Iterator[PluginHost]:
    """A host with only pamlib's built-in plugins, installed as the process default."""
    h = PluginHost(load_entry_points=False, disabled=())
    reset_host(h)
    yield h
    reset_host(None)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("the shared sample data folder is not beside this checkout")
    return SHARED_DATA
