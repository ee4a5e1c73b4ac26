"""``PAMLIB_PLUGINS`` naming a plugin that is not installed is said, not silently ignored: one
warning line (the run may not need the plugin, so it is no error), and ``pamlib plugins`` lists
the name as ``not-found``. ``*`` warns of nothing."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import pamlib
from pamlib.cli import main
from pamlib.pathways import Pathway
from pamlib.plugins import ALLOW_ENV, PluginHost, reset_host

ITEMS = [f"q{k:02d}" for k in range(1, 14)]
MISSING_ACME_PAM = (
    "PAMLIB_PLUGINS names a plugin that is not installed: acme-pam "
    "('pamlib plugins' lists those installed)"
)


class Plain:
    """A plugin handed to the host."""

    @pamlib.hookimpl
    def pamlib_register_pathways(self, register: Callable[[Pathway], None]) -> None:
        register(Pathway("plain", "Plain"))


def make_distribution(root: Path, dist: str, entry_point: str) -> None:
    """An installed-looking distribution ``dist`` declaring the plugin ``entry_point``."""
    module = entry_point.replace("-", "_")
    source = """
        import pamlib
        from pamlib.pathways import Pathway

        @pamlib.hookimpl
        def pamlib_register_pathways(register):
            register(Pathway("synthetic-path", "Synthetic"))
    """
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[pamlib]\n{entry_point} = {module}\n", encoding="utf-8"
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("PAMLIB_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    make_distribution(root, "acme-scoring", "acme")
    return root


def not_found(host: PluginHost) -> dict[str, str | None]:
    return {r.name: r.reason for r in host.records() if r.status == "not-found"}


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "pamlib.plugins" and r.levelno == logging.WARNING
    ]


def test_a_name_not_installed_is_recorded_and_warned_once(
    site: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(ALLOW_ENV, "acme,acme-pam")
    with caplog.at_level(logging.WARNING, logger="pamlib.plugins"):
        host = PluginHost()
    assert warnings_of(caplog) == [MISSING_ACME_PAM]
    assert not_found(host) == {
        "acme-pam": "named in the allow-list (PAMLIB_PLUGINS) but not installed"
    }
    assert "synthetic-path" in host.pathways(), "the plugin named and installed still loads"
    assert not host.pm.has_plugin("acme-pam")


def test_several_names_not_installed_are_one_line(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pamlib.plugins"):
        host = PluginHost(allowed="zeta, acme-pam")
    (line,) = warnings_of(caplog)
    assert line.startswith("PAMLIB_PLUGINS names plugins that are not installed: acme-pam, zeta")
    assert set(not_found(host)) == {"acme-pam", "zeta"}


@pytest.mark.parametrize(
    "allow",
    [
        "*",
        "acme-pam,*",  # "*" anywhere: every entry point, nothing named
        "",  # set but empty: none loads, none is named
        "acme",  # the entry point's name
        "acme-scoring",  # its distribution's name
        "pamlib",  # pamlib's own distribution
        "pamlib.scoring.demo",  # a built-in plugin's name
    ],
)
def test_nothing_is_warned_of_when_every_name_is_known(
    site: Path, caplog: pytest.LogCaptureFixture, allow: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="pamlib.plugins"):
        host = PluginHost(allowed=allow)
    assert warnings_of(caplog) == []
    assert not_found(host) == {}


def test_a_host_that_looks_for_no_entry_points_warns_of_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="pamlib.plugins"):
        host = PluginHost(load_entry_points=False, allowed="acme-pam")
    assert warnings_of(caplog) == []
    assert not_found(host) == {}


def test_a_name_handed_over_is_known(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pamlib.plugins"):
        host = PluginHost(allowed="mine", plugins={"mine": Plain()}, disabled=())
    assert warnings_of(caplog) == []
    assert not_found(host) == {}


def test_a_name_not_found_can_be_registered_later_and_survives_pickling(site: Path) -> None:
    host = PluginHost(allowed="acme-pam")
    clone = pickle.loads(pickle.dumps(host))  # noqa: S301 - our own pickle
    assert set(not_found(clone)) == {"acme-pam"}
    record = host.register(Plain(), name="acme-pam")
    assert record.status == "ok"
    assert not_found(host) == {}


def test_pamlib_plugins_lists_the_name_as_not_found(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reset_host(PluginHost(allowed="acme-pam"))
    try:
        assert main(["plugins"]) == 0
        assert main(["plugins", "--json"]) == 0
    finally:
        reset_host(None)
    out = capsys.readouterr().out
    text, _, listed = out.partition("[\n")
    assert "acme-pam (not installed) — not-found" in text
    assert "not loaded: named in the allow-list (PAMLIB_PLUGINS) but not installed" in text
    (entry,) = [e for e in json.loads("[\n" + listed) if e["name"] == "acme-pam"]
    assert (entry["status"], entry["version"], entry["builtin"]) == ("not-found", None, False)


def _export(path: Path) -> Path:
    answers = ",".join(["3"] * 13)
    header = ",".join(["patient_id", "assessment_id", "assessed_on", "instrument", *ITEMS])
    path.write_text(f"{header}\nP1,A1,2024-03-01,PAM-13,{answers}\n", encoding="utf-8")
    return path


def _pamlib(*args: str, cwd: Path, allow: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (ALLOW_ENV, "PAMLIB_DISABLE_PLUGINS")}
    if allow is not None:
        env[ALLOW_ENV] = allow
    return subprocess.run(
        [sys.executable, "-m", "pamlib", *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_command_line_says_so_in_one_line_on_standard_error(tmp_path: Path) -> None:
    _export(tmp_path / "in.csv")
    args = ("score", "in.csv", "--provider", "demo", "-o", "out.csv", "--no-progress")
    done = _pamlib(*args, cwd=tmp_path, allow="acme-pam")
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "acme-pam" in line]
    assert said == [MISSING_ACME_PAM]
    assert "Traceback" not in done.stderr
    missing = _pamlib("score", "in.csv", "--provider", "acme", "-o", "o2.csv", cwd=tmp_path,
                      allow="acme-pam")  # fmt: skip
    assert missing.returncode == 1
    lines = missing.stderr.splitlines()
    assert lines[0].startswith("PAMLIB_PLUGINS names a plugin that is not installed: acme-pam")
    assert lines[-1].startswith("pamlib: error: no scoring provider called 'acme'")
    for allow in ("*", None):
        quiet = _pamlib(*args, cwd=tmp_path, allow=allow)
        assert quiet.returncode == 0, quiet.stderr
        assert "PAMLIB_PLUGINS" not in quiet.stderr
