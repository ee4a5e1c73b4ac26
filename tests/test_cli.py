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


def test_plugins_json(capsys: pytest.CaptureFixture[str], process_host: object) -> None:
    assert main(["plugins", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"pamlib.scoring.raw_sum"' in out


def test_demo_runs(
    capsys: pytest.CaptureFixture[str], process_host: object, tmp_path: Path
) -> None:
    assert main(["demo", "--patients", "30", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "NOT PAM scores" in out


def test_unexpected_error_is_a_bug_report_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pamlib.cli.plugins as plugins_command

    def broken(args: object) -> int:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(plugins_command, "run", broken)
    assert main(["plugins"]) == 4
    err = capsys.readouterr().err
    assert "this is a pamlib bug" in err
    assert "--debug" in err
    assert "Traceback" not in err
    assert main(["--debug", "plugins"]) == 4
    assert "Traceback" in capsys.readouterr().err


def test_environment_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    import pamlib.cli.plugins as plugins_command

    def full(args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "/some/dir/out.csv")

    monkeypatch.setattr(plugins_command, "run", full)
    assert main(["plugins"]) == 3
    err = capsys.readouterr().err
    assert err == "pamlib: error: no space left on the device: out.csv\n"
