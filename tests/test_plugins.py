"""Plugin loading and isolation: broken plugins are reported by name, others carry on."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pamlib.hookspecs import hookimpl
from pamlib.instruments import Instrument
from pamlib.pathways import Pathway
from pamlib.plugins import DEFAULT_PLUGINS, PluginHost


def make_distribution(root: Path, name: str, module_source: str, entry: str | None = None) -> None:
    """Write an installed-looking distribution (module + dist-info) into ``root``."""
    module = name.replace("-", "_")
    (root / f"{module}.py").write_text(textwrap.dedent(module_source), encoding="utf-8")
    info = root / f"{module}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[pamlib]\n{name} = {entry or module}\n", encoding="utf-8"
    )


GOOD = """
    import pamlib
    from pamlib.pathways import Pathway

    @pamlib.hookimpl
    def pamlib_register_pathways(register):
        register(Pathway("walking-group", "Walking group"))
"""


@pytest.fixture
def site_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PAMLIB_DISABLE_PLUGINS", raising=False)
    return tmp_path


def test_builtins_are_default_plugins() -> None:
    host = PluginHost(load_entry_points=False, disabled=())
    names = [r.name for r in host.records()]
    assert names == list(DEFAULT_PLUGINS)
    assert "raw-sum" in host.scoring_providers()
    assert {c.id for c in host.cutpoint_sets()} == {"current", "hibbard-2005"}


def test_entry_point_plugin_is_discovered(site_packages: Path) -> None:
    make_distribution(site_packages, "good-plugin", GOOD)
    host = PluginHost()
    assert "walking-group" in host.pathways()
    record = next(r for r in host.records() if r.name == "good-plugin")
    assert (record.version, record.status) == ("1.2.3", "ok")
    assert record.provides == {"pathways": ["walking-group"]}


def test_broken_import_is_reported_and_the_rest_works(site_packages: Path) -> None:
    make_distribution(site_packages, "broken-plugin", "raise RuntimeError('boom')\n")
    make_distribution(site_packages, "good-plugin", GOOD)
    host = PluginHost()
    broken = next(r for r in host.records() if r.name == "broken-plugin")
    assert broken.status == "failed"
    assert "boom" in str(broken.errors[0])
    assert "walking-group" in host.pathways()
    assert "PAM-13" in host.instruments()


def test_missing_entry_point_target(site_packages: Path) -> None:
    make_distribution(site_packages, "typo-plugin", "", entry="no_such_module_xyz")
    host = PluginHost()
    record = next(r for r in host.records() if r.name == "typo-plugin")
    assert record.status == "failed"
    assert "ModuleNotFoundError" in str(record.errors[0])


def test_unknown_hook_is_rejected(site_packages: Path) -> None:
    source = """
        import pamlib
        @pamlib.hookimpl
        def pamlib_register_widgets(register):
            pass
    """
    make_distribution(site_packages, "odd-plugin", source)
    host = PluginHost()
    record = next(r for r in host.records() if r.name == "odd-plugin")
    assert record.status == "failed"
    assert "pamlib_register_widgets" in str(record.errors[0])


class Raising:
    @hookimpl
    def pamlib_register_pathways(self, register: Callable[[Pathway], None]) -> None:
        register(Pathway("half-registered", "Never seen"))
        raise ValueError("bad at call time")


class Good:
    @hookimpl
    def pamlib_register_pathways(self, register: Callable[[Pathway], None]) -> None:
        register(Pathway("peer-support-plus", "Peer support plus"))


def test_call_time_failure_is_isolated() -> None:
    host = PluginHost(
        load_entry_points=False, disabled=(), plugins={"raising": Raising(), "good": Good()}
    )
    assert "peer-support-plus" in host.pathways()
    assert "half-registered" not in host.pathways()
    (error,) = host.errors
    assert (error.plugin, error.hook) == ("raising", "pamlib_register_pathways")
    assert "plugin 'raising' in hook pamlib_register_pathways" in str(error)


class Clash:
    @hookimpl
    def pamlib_register_instruments(self, register: Callable[[Instrument], None]) -> None:
        register(Instrument("PAM-13", "Impostor", ("x.01",)))
        register(Instrument("PAM-7", "Seven items", tuple(f"pam7.{i:02d}" for i in range(1, 8))))


def test_clashing_registration_is_reported_others_kept() -> None:
    host = PluginHost(load_entry_points=False, disabled=(), plugins={"clash": Clash()})
    instruments = host.instruments()
    assert instruments.get("PAM-13").name.startswith("Patient Activation")
    assert "PAM-7" in instruments
    assert [e.plugin for e in host.errors] == ["clash"]


def test_disable_by_environment(site_packages: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_distribution(site_packages, "good-plugin", GOOD)
    monkeypatch.setenv("PAMLIB_DISABLE_PLUGINS", " good-plugin , pamlib.scoring.raw_sum")
    host = PluginHost()
    assert "walking-group" not in host.pathways()
    assert "raw-sum" not in host.scoring_providers()
    statuses = {r.name: r.status for r in host.records()}
    assert statuses["good-plugin"] == statuses["pamlib.scoring.raw_sum"] == "disabled"


def test_cli_lists_a_broken_plugin_as_failed(tmp_path: Path) -> None:
    make_distribution(tmp_path, "broken-plugin", "import no_such_dependency_xyz\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "pamlib", "plugins"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "broken-plugin 1.2.3 (installed) — failed" in out.stdout
    assert "raw-sum" in out.stdout
    demo = subprocess.run(
        [sys.executable, "-m", "pamlib", "demo", "--patients", "20"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr


def test_failures_are_described_in_one_line_without_a_full_path() -> None:
    from pamlib.errors import PamlibError
    from pamlib.plugins import describe_failure

    assert describe_failure(ValueError("first\n  second\n")) == "ValueError: first second"
    assert describe_failure(SystemExit(0)) == "SystemExit: 0"
    assert describe_failure(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert describe_failure(PamlibError("plain words")) == "plain words"
    error = PermissionError(13, "Permission denied", "/home/Jane Doe/cal.toml")
    assert describe_failure(error) == "PermissionError: Permission denied: cal.toml"
    assert len(describe_failure(RuntimeError("x" * 5000))) < 320


def test_nested_guards_restore_the_interrupt_handler() -> None:
    import signal

    from pamlib.plugins import PluginGuard

    before = signal.getsignal(signal.SIGINT)
    outer, inner = PluginGuard(), PluginGuard()
    with outer:
        with inner:
            raise KeyboardInterrupt  # the plugin's own: no Ctrl-C was pressed
        assert isinstance(inner.error, KeyboardInterrupt)
        assert signal.getsignal(signal.SIGINT) is not before, "still watching for the outer"
    assert outer.error is None
    assert signal.getsignal(signal.SIGINT) is before


def test_a_real_interrupt_passes_every_guard() -> None:
    import signal

    from pamlib.plugins import PluginGuard

    with pytest.raises(KeyboardInterrupt), PluginGuard():
        signal.raise_signal(signal.SIGINT)
    # Unwatched, in the main thread: a KeyboardInterrupt is taken to be the user's.
    with pytest.raises(KeyboardInterrupt), PluginGuard(watch=False):
        raise KeyboardInterrupt


def test_a_request_to_stop_passes_a_watching_guard() -> None:
    """Under ``pamlib score`` SIGTERM raises ``Terminated``: arriving while a provider scores a
    batch, it stops the run (exit 130), and is not taken for the provider's failure."""
    import signal

    from pamlib.formats.guard import Terminated, clean_interrupts
    from pamlib.plugins import PluginGuard

    before = signal.getsignal(signal.SIGTERM)
    with clean_interrupts():
        handler = signal.getsignal(signal.SIGTERM)
        with pytest.raises(Terminated), PluginGuard():
            signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is handler
        guard = PluginGuard()
        with guard:
            raise Terminated  # the plugin's own: no signal came
        assert isinstance(guard.error, Terminated)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_guard_leaves_a_default_request_to_stop_alone() -> None:
    """Where SIGTERM has its default action (it ends the process) a guard does not take it
    over."""
    import signal

    from pamlib.plugins import PluginGuard

    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with PluginGuard():
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
