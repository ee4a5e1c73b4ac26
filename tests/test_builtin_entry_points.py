"""pamlib's own plugins are declared and loaded as entry points, as a third party's are."""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from typing import Any

import pytest

import pamlib.plugins
from pamlib.plugins import DEFAULT_PLUGINS, PluginHost
from tests.conftest import ROOT


def test_pyproject_declares_every_built_in_as_an_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = project["entry-points"]["pamlib"]
    assert declared == {name: name for name in DEFAULT_PLUGINS}


def test_the_installed_metadata_declares_them_too() -> None:
    found = pamlib.plugins._builtin_entry_points()
    if not found:
        pytest.skip("pamlib runs from a source tree without its metadata")
    assert set(found) == set(DEFAULT_PLUGINS)


class _Recorded:
    """An entry point standing in for a built-in's, recording that it was loaded."""

    def __init__(self, name: str, loaded: list[str]) -> None:
        self.name = self.value = name
        self._loaded = loaded

    def load(self) -> Any:
        self._loaded.append(self.name)
        return importlib.import_module(self.name)


def test_built_ins_load_through_their_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []
    eps = {name: _Recorded(name, loaded) for name in DEFAULT_PLUGINS}
    monkeypatch.setattr(pamlib.plugins, "_builtin_entry_points", lambda: eps)
    host = PluginHost(load_entry_points=False, disabled=("pamlib.scoring.demo",))
    assert loaded == [n for n in DEFAULT_PLUGINS if n != "pamlib.scoring.demo"]
    records = {r.name: r for r in host.records()}
    assert records["pamlib.scoring.demo"].skipped == "disabled"
    assert "demo" not in host.scoring_providers()
    assert "raw-sum" in host.scoring_providers()


def test_built_ins_load_without_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pamlib.plugins, "_builtin_entry_points", dict)
    host = PluginHost(load_entry_points=False, disabled=())
    assert {r.name for r in host.records() if r.builtin} == set(DEFAULT_PLUGINS)
    assert "PAM-13" in host.instruments()
    assert not host.errors


def test_built_ins_are_not_loaded_twice_as_installed_plugins() -> None:
    host = PluginHost(disabled=(), allowed="*")
    names = [r.name for r in host.records()]
    assert len(names) == len(set(names))
    for name in DEFAULT_PLUGINS:
        record = next(r for r in host.records() if r.name == name)
        assert record.builtin
        assert record.skipped is None
