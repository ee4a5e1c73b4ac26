"""Hostile inputs for ``pamlib new-plugin``, ``pamlib calibration`` and ``pamlib plugins``.

Faults found (each test below names its fault):

* new-plugin: ``pamlib-pamlib`` was accepted; its rule ids start ``pamlib.`` (pamlib's own), so
  the rules scaffold failed its own tests.
* new-plugin: Windows device names (``con``, ``nul``, ``aux``, ``com1`` …) were accepted: a
  package that cannot be checked out or installed on Windows.
* new-plugin: the ``next: cd …`` line was not quoted for the shell: a folder with a space gave a
  broken command, one with ``$(…)`` a command that runs it.
* format scaffold: one line nested too deep, with a number too long, or not UTF-8 failed the
  whole read instead of being a reject naming its line.
* format scaffold: a writer given a path truncated it in place and ``abort`` removed it: an
  existing file (or a symlink, a device) was lost when a run failed.
* calibration: control characters from a file (its name, version, licensee) were printed raw:
  a file could fake a line of the check (its sha256) or hide one.
* calibration: a calibration name linked to a device (``/dev/zero``) was read until memory ran
  out.
* calibration: a file that cannot be read (missing, a folder) exited 1 ("invalid") instead of 3
  (environment).
* new-plugin: the staged package was renamed into place without being made durable: a crash
  of the system could leave empty files under the final name.
* plugins: a plugin's name and its error messages were printed raw: a plugin could fake a line
  of the list (another plugin's status) or hide one.
"""

from __future__ import annotations

import importlib
import json
import shlex
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from pamlib.cli import main
from pamlib.formats import ReadOptions, WriteOptions
from pamlib.plugins import PluginHost
from tests.calibrations import future, rsm_document, write


def _new_plugin(name: str, folder: Path, kind: str = "rules") -> int:
    return main(["new-plugin", name, "--kind", kind, "--output-dir", str(folder)])


# -- new-plugin: names -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pamlib-pamlib", "pamlib_pamlib"])
def test_a_name_whose_id_is_pamlib_is_refused(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: accepted, and the rules scaffold's ids ``pamlib.…`` failed the conformance kit."""
    assert _new_plugin(name, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pamlib: error: plugin name {name!r}")
    assert "choose another" in err
    assert list(tmp_path.iterdir()) == [], "nothing is written"


@pytest.mark.parametrize("name", ["con", "nul", "aux", "prn", "com1", "lpt9"])
def test_a_windows_device_name_is_refused(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: accepted; Windows cannot create a file or folder of that name."""
    assert _new_plugin(name, tmp_path) == 2
    err = capsys.readouterr().err
    assert "Windows" in err
    assert f"pamlib-{name}" in err, "says what to use instead"
    assert list(tmp_path.iterdir()) == []


def test_the_next_step_is_quoted_for_the_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: ``cd my plugins/pamlib-acme`` (unquoted) cannot be pasted and run."""
    folder = tmp_path / "my plugins $(touch pwned)"
    assert _new_plugin("pamlib-acme", folder) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("next: ")]
    words = shlex.split(line.removeprefix("next: "))
    assert words[:3] == ["cd", str(folder / "pamlib-acme"), "&&"]


# -- the format scaffold -----------------------------------------------------------------------


@pytest.fixture
def scaffold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The format plugin ``new-plugin`` writes, imported from its ``src`` folder."""
    name = "pamlib-audit-format"
    assert _new_plugin(name, tmp_path / "gen", kind="format") == 0
    monkeypatch.syspath_prepend(str(tmp_path / "gen" / name / "src"))
    module = importlib.import_module("pamlib_audit_format")
    try:
        yield module
    finally:
        sys.modules.pop("pamlib_audit_format", None)


GOOD = json.dumps(
    {
        "assessment_id": "a1",
        "patient_id": "p1",
        "assessed_on": "2025-03-01",
        "instrument": "PAM-13",
        "responses": {"pam13.01": 3},
    }
).encode("utf-8")


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nesting too deep"),
        (b'{"assessment_id": ' + b"1" * 5000 + b"}", "a number too long"),
        (GOOD.replace(b'"p1"', b'"Jos\xe9"'), "not UTF-8"),
    ],
    ids=["deep", "long-number", "latin-1"],
)
def test_a_bad_line_is_a_reject_not_a_failed_read(
    bad: bytes, problem: str, scaffold: ModuleType, tmp_path: Path
) -> None:
    """Fault: the reader raised (RecursionError, ValueError, UnicodeDecodeError), failing the
    whole run with no line named."""
    source = tmp_path / "in.audit-format.jsonl"
    source.write_bytes(GOOD + b"\n" + bad + b"\n" + GOOD + b"\n")
    chunks = list(scaffold.JsonLinesFormat().read(source, ReadOptions()))
    rejects = [r for c in chunks for r in c.rejects]
    assert [(r.location, r.code) for r in rejects] == [("line 2", "json")]
    assert problem in rejects[0].message
    assert "Jos" not in rejects[0].message, "never a value from the line"
    assert sum(c.n_read for c in chunks) == 3
    assert sum(c.n_valid for c in chunks) == 2


def test_a_deeply_nested_field_is_a_reject_at_any_depth(
    scaffold: ModuleType, tmp_path: Path
) -> None:
    """Fault: a field nested just under Python's limit was read, then failed as a reject's text."""
    lines = [b'{"x": ' + b"[" * depth + b"]" * depth + b"}" for depth in range(850, 1001, 5)]
    source = tmp_path / "in.audit-format.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    chunks = list(scaffold.JsonLinesFormat().read(source, ReadOptions()))
    assert sum(len(c.rejects) for c in chunks) == len(lines)


def test_abort_leaves_an_existing_file_as_it_was(scaffold: ModuleType, tmp_path: Path) -> None:
    """Fault: the writer truncated the file in place and ``abort`` removed it."""
    target = tmp_path / "results.audit-format.jsonl"
    target.write_text("yesterday's results\n", encoding="utf-8")
    writer = scaffold.JsonLinesFormat().open_writer(target, WriteOptions())
    writer.abort()
    assert target.read_text(encoding="utf-8") == "yesterday's results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen", target.name]


def test_a_closed_writer_replaces_the_file_whole(scaffold: ModuleType, tmp_path: Path) -> None:
    target = tmp_path / "results.audit-format.jsonl"
    target.write_text("yesterday's results\n", encoding="utf-8")
    writer = scaffold.JsonLinesFormat().open_writer(target, WriteOptions())
    writer.close()
    assert target.read_text(encoding="utf-8") == "", "no results: an empty file, published"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen", target.name]


# -- calibration ---------------------------------------------------------------------------------


def test_control_characters_of_a_calibration_are_escaped(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: ESC and line breaks were printed raw: a file could fake its sha256 line."""
    fake = "\n  sha256      " + "0" * 64 + "\x1b[8m"
    doc = rsm_document(
        version="1" + fake, licence={"licensee": "Trust" + fake, "valid_until": future()}
    )
    path = write(tmp_path, doc, name="odd\x1b[2Jname")
    assert main(["calibration", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\\x1b[2J" in out, "the name is shown, escaped"
    assert len([ln for ln in out.splitlines() if ln.lstrip().startswith("sha256")]) == 1


def test_control_characters_in_problems_are_escaped(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, rsm_document(min_answered=0), name="bad\nfile: ok")
    assert main(["calibration", str(path)]) == 1
    out = capsys.readouterr().out
    assert not any(ln.endswith(": ok") for ln in out.splitlines())


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
def test_a_device_is_refused_not_read_whole(
    tmp_path: Path,
    process_host: PluginHost,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault: ``cal.json -> /dev/zero`` was read until memory ran out (the read is stopped here
    so that the test cannot do the same)."""
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if stat.S_ISCHR(self.stat().st_mode):
            raise AssertionError("a device read whole")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    link = tmp_path / "cal.json"
    link.symlink_to("/dev/zero")
    assert main(["calibration", str(link)]) == 1
    out = capsys.readouterr().out
    assert f"{link}: invalid" in out
    assert "not a regular file" in out


def test_a_file_that_cannot_be_read_is_an_environment_error(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: exit status 1 (invalid) for a file that was never read."""
    missing = tmp_path / "missing.json"
    folder = tmp_path / "folder.json"
    folder.mkdir()
    good = write(tmp_path, rsm_document(), name="good")
    assert main(["calibration", str(good), str(missing), str(folder)]) == 3
    out = capsys.readouterr().out
    assert f"{missing}: cannot be read" in out
    assert f"{folder}: cannot be read" in out
    assert f"{good}: ok" in out


def test_an_invalid_file_among_unreadable_ones_is_still_exit_1(
    tmp_path: Path, process_host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, rsm_document(min_answered=0), name="bad")
    missing = tmp_path / "missing.json"
    assert main(["calibration", str(missing), str(bad)]) == 1
    capsys.readouterr()
    assert main(["calibration", "--json", str(missing)]) == 3
    [summary] = json.loads(capsys.readouterr().out)
    assert summary["valid"] is False
    assert [p["code"] for p in summary["problems"]] == ["unreadable"]


def test_a_calibration_name_for_an_endless_stream_is_read_no_further(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``load_calibration`` (``score --calibration``) reads a bounded amount: past it the name
    is a device or a stream, not a calibration."""
    from pamlib.errors import CalibrationError
    from pamlib.scoring import calibration

    monkeypatch.setattr(calibration, "_MAX_CALIBRATION_BYTES", 100)
    big = tmp_path / "cal.toml"
    big.write_text("# padding\n" * 20, encoding="utf-8")
    with pytest.raises(CalibrationError) as caught:
        calibration.load_calibration(big)
    assert [p.code for p in caught.value.problems] == ["too-large"]


def test_a_plugin_exception_without_text_is_still_reported() -> None:
    """An exception whose ``__str__`` raises becomes a :class:`PluginError` by its type."""
    from pamlib.errors import PluginError

    class BrokenError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    error = PluginError("p", None, BrokenError())
    assert "BrokenError" in str(error)


def test_control_characters_of_a_plugin_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """Fault: a plugin's name and messages were printed as given: ESC sequences and line breaks
    reached the terminal."""
    from pamlib.hookspecs import hookimpl
    from pamlib.plugins import reset_host

    class Faking:
        @hookimpl
        def pamlib_register_formats(self) -> object:
            raise ValueError("broken\n\x1b[2Kfine 1.0 (installed) — ok")

    host = PluginHost(load_entry_points=False, disabled=(), plugins={"fake\x1b[31m": Faking()})
    reset_host(host)
    try:
        assert main(["plugins"]) == 0
    finally:
        reset_host(None)
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "fake\\x1b[31m ? (installed)" in out
    assert "broken \\x1b[2Kfine 1.0" in out or "broken\\n\\x1b[2Kfine" in out
    assert not any(line.startswith("fine") for line in out.splitlines())


def test_the_scaffold_is_durable_before_it_has_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault: renamed into place unsynced. Every file and folder is synced while staged, and
    the parent after the rename."""
    from pamlib.formats import guard

    synced: list[Path] = []
    monkeypatch.setattr(guard, "_sync_path", synced.append)
    assert _new_plugin("pamlib-acme", tmp_path) == 0
    *staged, parent = synced
    assert parent == tmp_path, "the rename made durable"
    staging = tmp_path / staged[0].relative_to(tmp_path).parts[0]
    assert staging.name.startswith(".pamlib-acme.")
    assert not staging.exists()
    package = tmp_path / "pamlib-acme"
    made = sorted(p.relative_to(package) for p in package.rglob("*"))
    assert sorted(p.relative_to(staging) for p in staged if p != staging) == made
    assert staging in staged
