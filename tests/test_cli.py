"""The command line: usage errors exit 2 with one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pamlib._version import __version__
from pamlib.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pamlib {__version__}"


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "plugins" in out
    assert "demo" in out


@pytest.mark.parametrize("argv", [["bogus"], ["demo", "--patients", "many"], ["--nope"]])
def test_usage_errors_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("pamlib")
    assert ": error: " in err
    assert "Traceback" not in err


def test_no_command_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_plugins_json(capsys: pytest.CaptureFixture[str], host: object) -> None:
    assert main(["plugins", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"pamlib.scoring.raw_sum"' in out


def test_demo_runs(capsys: pytest.CaptureFixture[str], host: object, tmp_path: Path) -> None:
    assert main(["demo", "--patients", "30", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "NOT PAM scores" in out
