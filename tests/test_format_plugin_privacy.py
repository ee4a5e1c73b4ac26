"""A plugin's input format that raises while it reads fails as pamlib's FormatError naming the
format, the exception's type and where it was raised: not as "a pamlib bug" asking for a
traceback, and never repeating the reader's text (it may quote the input's cells)."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pamlib
from pamlib.cli import EXIT_ERROR, main
from pamlib.errors import FormatError
from pamlib.hookspecs import hookimpl
from pamlib.plugins import PluginHost, reset_host

NHS = "9434765919"
NAME = "Zebedee Quillfeather"


class LeakyFormat:
    name = "leaky"
    extensions = (".leak",)
    description = "raises, quoting a cell"

    def read(self, source: Any, options: Any, *, host: Any = None) -> Iterator[Any]:
        if source:  # always: a generator, as readers are, that fails on its first step
            raise ValueError(f"cannot parse {NAME!r} for {NHS}")
        yield None


class ExitingFormat(LeakyFormat):
    name = "exiting"
    extensions = (".exit",)

    def read(self, source: Any, options: Any, *, host: Any = None) -> Iterator[Any]:
        if source:
            raise SystemExit(f"{NHS}")
        yield None


class Plugin:
    @hookimpl
    def pamlib_register_formats(self, register: Any) -> None:
        register(LeakyFormat())
        register(ExitingFormat())


@pytest.fixture
def host() -> Iterator[PluginHost]:
    made = PluginHost(load_entry_points=False, disabled=(), plugins={"leaky": Plugin()})
    reset_host(made)
    yield made
    reset_host(None)


@pytest.mark.parametrize("suffix", [".leak", ".exit"])
def test_a_failing_plugin_reader_is_a_format_error_without_its_text(
    host: PluginHost, tmp_path: Path, suffix: str
) -> None:
    source = tmp_path / f"in{suffix}"
    source.write_text("x\n", encoding="utf-8")
    with pytest.raises(FormatError) as caught:
        pamlib.TableScorer(provider="demo", host=host).score_source(source)
    text = "".join(traceback.format_exception(caught.value))
    assert "reader (a plugin's) failed" in str(caught.value)
    assert caught.value.__cause__ is None
    assert NHS not in text
    assert NAME not in text


def test_the_command_names_the_format_not_a_pamlib_bug(
    host: PluginHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.leak"
    source.write_text("x\n", encoding="utf-8")
    status = main(["score", str(source), "--provider", "demo", "-o", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert status == EXIT_ERROR
    assert "internal error" not in err
    assert "the 'leaky' reader (a plugin's) failed: ValueError (raised at" in err
    assert NHS not in err
    assert NAME not in err
