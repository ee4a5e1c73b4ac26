"""pamlib's own plugins are declared and loaded as entry points, as a third party's are."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import tomllib
from pathlib import Path
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
    try:
        dist = importlib.metadata.distribution("pamlib")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - an uninstalled tree
        pytest.skip("pamlib runs from a source tree without its metadata")
    declared = {ep.name: ep.value for ep in dist.entry_points if ep.group == "pamlib"}
    assert declared == {name: name for name in DEFAULT_PLUGINS}


def test_built_ins_load_by_name_as_their_entry_points_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each built-in's entry point names its module and nothing in it: loading it is importing
    that module, which the host does by name without reading pamlib's metadata."""
    loaded: list[str] = []
    real = importlib.import_module

    def recording(name: str, package: str | None = None) -> Any:
        loaded.append(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", recording)
    host = PluginHost(load_entry_points=False, disabled=("pamlib.scoring.demo",))
    assert loaded == [n for n in DEFAULT_PLUGINS if n != "pamlib.scoring.demo"]
    records = {r.name: r for r in host.records()}
    assert records["pamlib.scoring.demo"].skipped == "disabled"
    assert "demo" not in host.scoring_providers()
    assert "raw-sum" in host.scoring_providers()
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


def test_only_pamlib_declaring_plugins_is_seen_without_importlib_metadata() -> None:
    """This environment declares pamlib's own entry points only (the plugin tests install
    theirs in folders of their own)."""
    assert not pamlib.plugins._others_declare_plugins()


@pytest.mark.parametrize(
    ("text", "others"),
    [
        ("[console_scripts]\npamlib = pamlib.cli:run\n", False),
        ("[pamlib]\npamlib.scoring.demo = pamlib.scoring.demo\n", False),
        ("# [pamlib]\n[pamlib]\n\n  # a comment\n pamlib.scoring.rasch=x:y \n", False),
        ("[pamlib]\nacme = acme_pamlib\n", True),
        ("[pamlib]\npamlib.scoring.demo = pamlib.scoring.demo\nacme = acme\n", True),
        ("[[pamlib]]\nacme = acme\n", True),
        ("[pamlib]\nno equals sign\n", True),
        ("[other]\nacme = acme\n[pamlib]\n[other2]\nx = pamlib\n", False),
    ],
)
def test_entry_points_files_are_read_as_importlib_metadata_reads_them(
    text: str, others: bool, tmp_path: Path
) -> None:
    """Names other than the built-ins in the ``pamlib`` group, or a file importlib.metadata
    cannot read, count as declaring plugins."""
    info = tmp_path / "x-1.0.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text(text, encoding="utf-8")
    builtins = frozenset(DEFAULT_PLUGINS)
    try:
        eps = importlib.metadata.PathDistribution(info).entry_points
        found = {ep.name for ep in eps if ep.group == "pamlib"} - builtins
    except Exception:
        found = {"(unreadable)"}
    assert bool(found) is others
    assert pamlib.plugins._declares_others(text.encode(), builtins) is others


def test_a_file_not_utf8_counts_as_declaring() -> None:
    assert pamlib.plugins._declares_others(b"[pamlib]\n\xff = x\n", frozenset())


def test_a_distribution_on_sys_path_declaring_a_plugin_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = tmp_path / "acme_plugin-1.0.dist-info"
    info.mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not pamlib.plugins._others_declare_plugins()  # no entry_points.txt yet
    (info / "entry_points.txt").write_text("[pamlib]\nacme = acme_plugin\n", encoding="utf-8")
    assert pamlib.plugins._others_declare_plugins()


def test_what_cannot_be_read_cheaply_counts_as_declaring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "plugins.zip"
    archive.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    monkeypatch.syspath_prepend(str(archive))
    assert pamlib.plugins._others_declare_plugins()


def test_another_finder_of_distributions_counts_as_declaring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Finder:
        @staticmethod
        def find_distributions(*args: object, **kwargs: object) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder()])
    assert pamlib.plugins._others_declare_plugins()
