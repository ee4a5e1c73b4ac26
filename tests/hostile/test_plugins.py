"""Hostile plugins: a plugin's failure of any kind is reported naming it, never taking the host
down; a provider's results are checked at the boundary before anything is written; and
``pamlib new-plugin`` refuses what would shadow a module or leave a half-written package.

Case numbers are those of the reliability issue ("Nothing lost, nothing overwritten, nothing
leaked").
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pytest

from pamlib import Assessment, Patient, scoring
from pamlib.cli import main
from pamlib.errors import PluginError, ProviderResultError, ScoringError
from pamlib.hookspecs import hookimpl
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.levels import CutpointSet
from pamlib.plugins import PluginGuard, PluginHost, reset_host
from pamlib.results import Flag, ScoreResult
from pamlib.scoring.demo import DemoProvider
from pamlib.scoring.provider import FLAG_BITS, BaseProvider, BatchScores, Licence

PAM13 = BUILTIN_INSTRUMENTS[0]
HEADER = "patient_id,assessment_id,assessed_on,instrument," + ",".join(
    f"q{i:02d}" for i in range(1, 14)
)


# -- helpers ---------------------------------------------------------------------------------


def make_distribution(root: Path, name: str, module_source: str, entry: str | None = None) -> None:
    """An installed-looking distribution (module + dist-info) in ``root``."""
    module = name.replace("-", "_")
    (root / f"{module}.py").write_text(textwrap.dedent(module_source), encoding="utf-8")
    info = root / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[pamlib]\n{name} = {entry or module}\n", encoding="utf-8"
    )


@pytest.fixture
def site_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("PAMLIB_DISABLE_PLUGINS", raising=False)
    return root


@pytest.fixture
def installed() -> Iterator[Callable[..., PluginHost]]:
    """Make a host with only built-ins plus the given plugin objects, installed for the CLI."""

    def install(**plugins: object) -> PluginHost:
        host = PluginHost(load_entry_points=False, disabled=(), plugins=plugins)
        reset_host(host)
        return host

    yield install
    reset_host(None)


def write_input(folder: Path, rows: list[list[int]]) -> Path:
    lines = [HEADER]
    for i, row in enumerate(rows):
        answers = ",".join(str(c) if c > 0 else "" for c in row)
        lines.append(f"P{i},A{i},2024-01-0{i + 1},PAM-13,{answers}")
    path = folder / "in.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


#: Four assessments; the one at row 3 answers nothing, so it is not scored.
ROWS = [[3] * 13, [2] * 13, [4, 3] * 6 + [4], [0] * 13]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


class Vendor(BaseProvider):
    """A licensed provider scoring like the demo calibration (not demo itself): a stand-in for a
    vendor's plugin, whose ``score_batch`` the tests break in one way or another."""

    id = "vendor"
    version = "1"
    demo = False
    licence = Licence("Test Trust", frozenset({"PAM-13"}))

    def __init__(self, breaks: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._demo = DemoProvider()
        self._breaks = breaks

    def instruments(self) -> Collection[str]:
        return {"PAM-13"}

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        batch = self._demo.score_batch(instrument, codes)
        fields = attrs.asdict(batch, recurse=False)
        fields.update(
            demo=False,
            provider=self.id,
            provider_version=self.version,
            flags=batch.flags & ~np.uint8(FLAG_BITS[Flag.DEMO]),
        )
        fields = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in fields.items()}
        if self._breaks is not None:
            self._breaks(fields)
        return BatchScores(**fields)


class Registers:
    """A plugin registering one provider."""

    def __init__(self, provider: object) -> None:
        self.provider = provider

    @hookimpl
    def pamlib_register_scoring_providers(self, register: Callable[[object], None]) -> None:
        register(self.provider)


# -- case 11: plugins that take down the host ------------------------------------------------


@pytest.mark.parametrize(
    "raised",
    ["SystemExit(0)", "SystemExit(3)", "KeyboardInterrupt()", "GeneratorExit()"],
)
def test_case_11_exit_or_interrupt_at_plugin_import_is_reported_by_name(
    site_packages: Path, raised: str
) -> None:
    make_distribution(site_packages, "exiting-plugin", f"raise {raised}\n")
    host = PluginHost()
    record = next(r for r in host.records() if r.name == "exiting-plugin")
    assert record.status == "failed"
    (error,) = record.errors
    assert isinstance(error, PluginError)
    assert error.plugin == "exiting-plugin"
    assert type(error.cause).__name__ == raised.split("(", maxsplit=1)[0]
    assert "raw-sum" in host.scoring_providers(), "the other plugins still work"


def test_case_11_exit_at_plugin_import_does_not_stop_any_command(tmp_path: Path) -> None:
    make_distribution(tmp_path, "exiting-plugin", "raise SystemExit(0)\n")
    make_distribution(tmp_path, "interrupting-plugin", "raise KeyboardInterrupt\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PAMLIB_DISABLE_PLUGINS", None)
    listed = subprocess.run(
        [sys.executable, "-m", "pamlib", "plugins"],
        capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "exiting-plugin 1.0 (installed) — failed" in listed.stdout
    assert "interrupting-plugin 1.0 (installed) — failed" in listed.stdout
    assert "Traceback" not in listed.stderr
    demo = subprocess.run(
        [sys.executable, "-m", "pamlib", "demo", "--patients", "5", "--output-dir", "out"],
        capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr
    warnings = [line for line in demo.stderr.splitlines() if "disabled" in line]
    assert warnings == [
        "plugin 'exiting-plugin' disabled: SystemExit: 0",
        "plugin 'interrupting-plugin' disabled: KeyboardInterrupt",
    ]


def test_case_11_a_real_ctrl_c_while_loading_still_stops(site_packages: Path) -> None:
    """Only what the plugin's own code raised is contained: a SIGINT delivered while a plugin
    imports (the user pressing Ctrl-C) still interrupts."""
    source = """
        import signal
        signal.raise_signal(signal.SIGINT)
    """
    make_distribution(site_packages, "slow-plugin", source)
    with pytest.raises(KeyboardInterrupt):
        PluginHost()
    import signal

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "handler restored"


def test_case_11_interrupts_outside_the_main_thread_are_the_plugins() -> None:
    import threading

    caught: list[BaseException | None] = []

    def run() -> None:
        guard = PluginGuard(watch=False)
        with guard:
            raise KeyboardInterrupt
        caught.append(guard.error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert [type(e) for e in caught] == [KeyboardInterrupt]


class WrongSignature:
    @hookimpl
    def pamlib_register_pathways(self, register: object, extra: object) -> None: ...


class JunkInstrument:
    @hookimpl
    def pamlib_register_instruments(self, register: Callable[[object], None]) -> None:
        register(42)
        register(Instrument("PAM-5", "Five items", tuple(f"p5.{i}" for i in range(5))))


class JunkCutpoints:
    @hookimpl
    def pamlib_register_cutpoint_sets(self, register: Callable[[object], None]) -> None:
        register("current")
        register(CutpointSet("site-set", (40.0, 50.0, 60.0)))


class JunkPathway:
    @hookimpl
    def pamlib_register_pathways(self, register: Callable[[object], None]) -> None:
        register({"id": "walking"})


class JunkFormat:
    @hookimpl
    def pamlib_register_formats(self, register: Callable[[object], None]) -> None:
        register(object())


class JunkText:
    @hookimpl
    def pamlib_item_text(self) -> object:
        return 42


class BadProvider(Vendor):
    id = 7  # type: ignore[assignment]


class LyingProvider(Vendor):
    id = "lying"
    demo = "no"  # type: ignore[assignment]


class RaisingProperty(Vendor):
    id = "raising"

    @property
    def licence(self) -> Licence | None:  # type: ignore[override]
        raise SystemExit(1)


JUNK: dict[str, tuple[object, str | None]] = {
    "an-int": (42, None),
    "a-wrong-signature": (WrongSignature(), None),
    "a-junk-instrument": (JunkInstrument(), "pamlib_register_instruments"),
    "a-junk-cutpoint-set": (JunkCutpoints(), "pamlib_register_cutpoint_sets"),
    "a-junk-pathway": (JunkPathway(), "pamlib_register_pathways"),
    "a-junk-format": (JunkFormat(), "pamlib_register_formats"),
    "a-junk-provider": (Registers(42), "pamlib_register_scoring_providers"),
    "a-provider-with-an-int-id": (Registers(BadProvider()), "pamlib_register_scoring_providers"),
    "a-provider-lying-about-demo": (
        Registers(LyingProvider()),
        "pamlib_register_scoring_providers",
    ),
    "a-provider-whose-property-exits": (
        Registers(RaisingProperty()),
        "pamlib_register_scoring_providers",
    ),
    "item-text-of-the-wrong-type": (JunkText(), "pamlib_item_text"),
}


@pytest.mark.parametrize("junk", sorted(JUNK))
def test_case_11_junk_is_reported_by_plugin_and_hook(
    junk: str,
    installed: Callable[..., PluginHost],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plugin, hook = JUNK[junk]
    host = installed(junk=plugin)
    host.records()
    assert host.item_text(PAM13, "en") is None
    errors = [e for e in host.errors if e.plugin == "junk"]
    assert errors, "the junk is reported"
    assert {e.hook for e in errors} == {hook}
    assert "PAM-13" in host.instruments()
    assert "current" in host.cutpoint_sets()
    assert "raw-sum" in host.scoring_providers()
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "junk ? (installed) — " in out
    assert "error: plugin 'junk'" in out
    path = write_input(tmp_path, ROWS)
    status = main(["score", str(path), "--provider", "raw-sum", "-o", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "read 4 = scored 3 + not scored 1 + rejected 0"


def test_case_11_junk_never_reaches_provider_selection(
    installed: Callable[..., PluginHost],
) -> None:
    host = installed(a=Registers(42), b=Registers(LyingProvider()))
    with pytest.raises(ScoringError, match="no licensed scoring provider"):
        scoring.select_provider(None, PAM13, host=host)


class Unlisting(Vendor):
    id = "unlisting"

    def instruments(self) -> Collection[str]:
        raise SystemExit(0)


@pytest.mark.parametrize("name", [None, "unlisting"])
def test_case_11_a_provider_failing_to_list_its_instruments_is_named(
    name: str | None,
    installed: Callable[..., PluginHost],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    installed(unlisting=Registers(Unlisting()))
    path = write_input(tmp_path, ROWS)
    argv = ["score", str(path), "-o", str(tmp_path / "o.csv")]
    assert main(argv + (["--provider", name] if name else [])) == 1
    assert one_line(capsys.readouterr().err) == (
        "pamlib: error: provider 'unlisting' failed to list its instruments: SystemExit: 0"
    )
    assert files_in(tmp_path) == ["in.csv"]


@pytest.mark.parametrize(
    "raised",
    [RuntimeError("boom"), SystemExit(0), KeyboardInterrupt(), MemoryError(), ValueError()],
    ids=lambda e: type(e).__name__,
)
def test_case_11_a_provider_raising_in_score_batch_is_a_clean_error(
    raised: BaseException,
    installed: Callable[..., PluginHost],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def breaks(fields: dict[str, Any]) -> None:
        raise raised

    installed(vendor=Registers(Vendor(breaks)))
    path = write_input(tmp_path, ROWS)
    out = tmp_path / "scored.csv"
    assert main(["score", str(path), "--provider", "vendor", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert one_line(err).startswith(
        f"pamlib: error: provider 'vendor' failed while scoring PAM-13: {type(raised).__name__}"
    )
    assert files_in(tmp_path) == ["in.csv"], "no output and no rejects are left"


def test_case_11_a_provider_raising_in_score_is_a_clean_error(
    installed: Callable[..., PluginHost],
) -> None:
    def breaks(fields: dict[str, Any]) -> None:
        raise SystemExit(0)

    host = installed(vendor=Registers(Vendor(breaks)))
    a = Assessment("a1", Patient("p1"), PAM13, dt.date(2025, 1, 1), dict.fromkeys(PAM13.items, 3))
    with pytest.raises(ScoringError, match=r"provider 'vendor' failed .*SystemExit") as info:
        scoring.score(a, provider="vendor", host=host)
    assert info.value.__cause__ is None  # the provider held the assessment
    with pytest.raises(ScoringError, match="provider 'vendor' failed"):
        scoring.score_many(PAM13, [[3] * 13], provider="vendor", host=host)


class ExitingObserver:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls = 0

    @hookimpl
    def pamlib_batch_scored(self) -> None:
        self.calls += 1
        raise self.exc

    @hookimpl
    def pamlib_assessment_scored(self) -> None:
        self.calls += 1
        raise self.exc


class Counting:
    def __init__(self) -> None:
        self.rows = 0

    @hookimpl
    def pamlib_batch_scored(self, scores: BatchScores) -> None:
        self.rows += len(scores)


class Tampering:
    @hookimpl
    def pamlib_batch_scored(self, scores: BatchScores) -> None:
        scores.score[0] = 1000.0  # after the checks: refused, as the arrays are read-only


@pytest.mark.parametrize(
    "raised", [SystemExit(0), SystemExit(2), KeyboardInterrupt(), RuntimeError("x")], ids=repr
)
def test_case_11_an_observer_that_exits_is_reported_and_the_run_goes_on(
    raised: BaseException,
    installed: Callable[..., PluginHost],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    observer, counting = ExitingObserver(raised), Counting()
    host = installed(observer=observer, tampering=Tampering(), counting=counting)
    path = write_input(tmp_path, ROWS)
    out = tmp_path / "scored.csv"
    with caplog.at_level(logging.WARNING, logger="pamlib.plugins"):
        status = main(
            ["score", str(path), "--provider", "demo", "-o", str(out), "--chunk-rows", "2"]
        )
    err = capsys.readouterr().err
    assert status == 0, err
    assert err.strip().splitlines()[-1] == "read 4 = scored 3 + not scored 1 + rejected 0"
    assert observer.calls == 2, "told of every batch"
    assert counting.rows == 4, "the other observers too"
    assert len(out.read_text(encoding="utf-8").splitlines()) == 5
    assert "1000" not in out.read_text(encoding="utf-8")
    name = type(raised).__name__
    warned = [r.getMessage() for r in caplog.records if r.name == "pamlib.plugins"]
    assert any(m.startswith(f"plugin 'observer' failed in hook pamlib_batch_scored: {name}")
               for m in warned)  # fmt: skip
    assert len([m for m in warned if "'observer'" in m]) == 1, "warned once, not per batch"
    assert any("'tampering'" in m and "read-only" in m for m in warned)
    hooks = {(e.plugin, e.hook) for e in host.errors}
    assert ("observer", "pamlib_batch_scored") in hooks


def test_case_11_an_observer_exit_warns_on_stderr_through_the_command(tmp_path: Path) -> None:
    source = """
        import pamlib

        @pamlib.hookimpl
        def pamlib_batch_scored():
            raise SystemExit(0)
    """
    make_distribution(tmp_path, "exit-observer", source)
    path = write_input(tmp_path, ROWS)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PAMLIB_DISABLE_PLUGINS", None)
    run = subprocess.run(
        [sys.executable, "-m", "pamlib", "score", str(path), "--provider", "demo", "-o", "o.csv"],
        capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stderr.strip().splitlines()
    assert "plugin 'exit-observer' failed in hook pamlib_batch_scored: SystemExit: 0" in lines
    assert lines[-1] == "read 4 = scored 3 + not scored 1 + rejected 0"
    assert (tmp_path / "o.csv").is_file()


def test_case_11_an_observer_of_one_assessment_cannot_undo_it(
    installed: Callable[..., PluginHost],
) -> None:
    host = installed(observer=ExitingObserver(SystemExit(0)))
    a = Assessment("a1", Patient("p1"), PAM13, dt.date(2025, 1, 1), dict.fromkeys(PAM13.items, 3))
    result = scoring.score(a, provider="demo", host=host)
    assert result.score == 60.7
    assert [(e.plugin, e.hook) for e in host.errors] == [("observer", "pamlib_assessment_scored")]


class RaisingText:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    @hookimpl
    def pamlib_item_text(self) -> object:
        raise self.exc


@pytest.mark.parametrize("raised", [SystemExit(0), KeyboardInterrupt()], ids=repr)
def test_case_11_an_item_text_hook_that_exits_is_contained(
    raised: BaseException, installed: Callable[..., PluginHost]
) -> None:
    host = installed(text=RaisingText(raised))
    assert host.item_text(PAM13, "en") is None
    assert [(e.plugin, e.hook) for e in host.errors] == [("text", "pamlib_item_text")]


def _at(row: int, field: str, value: object) -> Callable[[dict[str, Any]], None]:
    def breaks(fields: dict[str, Any]) -> None:
        fields[field][row] = value

    return breaks


def _shorter(fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if isinstance(value, np.ndarray):
            fields[name] = value[:-1]


def _demo(fields: dict[str, Any]) -> None:
    fields["demo"] = True


def _no_cutpoints(fields: dict[str, Any]) -> None:
    fields["cutpoint_set"] = "unheard-of"


#: (how the provider breaks its results, the field named, the row named or None).
BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str, int | None]] = {
    "nan-score": (_at(2, "score", np.nan), "score", 2),
    "inf-score": (_at(2, "score", np.inf), "score", 2),
    "negative-score": (_at(2, "score", -0.5), "score", 2),
    "score-over-100": (_at(2, "score", 100.1), "score", 2),
    "inf-theta": (_at(1, "theta", -np.inf), "theta", 1),
    "negative-se": (_at(2, "score_se", -3.0), "score_se", 2),
    "level-not-of-the-score": (_at(2, "level", 1), "level", 2),
    "level-out-of-range": (_at(1, "level", 9), "level", 1),
    "level-when-not-scored": (_at(3, "level", 2), "level", 3),
    "score-when-not-scored": (_at(3, "score", 50.0), "score", 3),
    "raw-out-of-range": (_at(2, "raw_score", 99), "raw_score", 2),
    "n-answered-out-of-range": (_at(2, "n_answered", 14), "n_answered", 2),
    "no-reason-when-not-scored": (_at(3, "reason_code", ""), "reason_code", 3),
    "unknown-flag": (_at(1, "flags", 128), "flags", 1),
    "one-row-short": (_shorter, "length", None),
    "demo-from-a-licensed-provider": (_demo, "demo", None),
    "unregistered-cutpoint-set": (_no_cutpoints, "cutpoint_set", None),
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_case_11_invalid_provider_results_are_refused_before_writing(
    broken: str,
    installed: Callable[..., PluginHost],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    breaks, field, row = BROKEN[broken]
    host = installed(vendor=Registers(Vendor(breaks)))
    codes = np.array(ROWS, dtype=np.int8)
    with pytest.raises(ProviderResultError) as info:
        scoring.score_many(PAM13, codes, provider="vendor", host=host)
    assert (info.value.provider, info.value.field, info.value.row) == ("vendor", field, row)
    path = write_input(tmp_path, ROWS)
    out = tmp_path / "scored.csv"
    assert main(["score", str(path), "--provider", "vendor", "-o", str(out)]) == 1
    message = one_line(capsys.readouterr().err)
    where = field if row is None else f"line {row + 2}, {field}"
    reason = info.value.reason
    assert message == (
        f"pamlib: error: provider 'vendor' returned an invalid result ({where}): {reason}; "
        "refusing to pass it on"
    )
    if field != "length":  # that one gives counts of rows
        assert not any(c.isdigit() for c in reason.replace("0–100", "")), "never a value"
    assert files_in(tmp_path) == ["in.csv"], "nothing written"


@pytest.mark.parametrize(
    ("field", "value"),
    [("score", np.nan), ("score", -0.5), ("level", 1), ("score_se", -3.0), ("theta", np.inf)],
    ids=["nan-score", "negative-score", "level-not-of-the-score", "negative-se", "inf-theta"],
)
def test_case_11_invalid_one_assessment_results_are_refused(
    field: str, value: object, installed: Callable[..., PluginHost]
) -> None:
    host = installed(vendor=Registers(Vendor(_at(0, field, value))))
    a = Assessment("a1", Patient("p1"), PAM13, dt.date(2025, 1, 1), dict.fromkeys(PAM13.items, 3))
    with pytest.raises(ProviderResultError) as info:
        scoring.score(a, provider="vendor", host=host)
    assert (info.value.field, info.value.row) == (field, 0)


def test_case_11_a_result_about_another_assessment_is_refused(
    installed: Callable[..., PluginHost],
) -> None:
    class Swapping(Vendor):
        def score(self, assessment: Assessment) -> ScoreResult:
            return attrs.evolve(super().score(assessment), assessment_id="someone-else")

    host = installed(vendor=Registers(Swapping()))
    a = Assessment("a1", Patient("p1"), PAM13, dt.date(2025, 1, 1), dict.fromkeys(PAM13.items, 3))
    with pytest.raises(ProviderResultError, match=r"row 0, assessment_id") as info:
        scoring.score(a, provider="vendor", host=host)
    assert "someone-else" not in str(info.value)


def test_case_11_valid_results_pass_untouched(installed: Callable[..., PluginHost]) -> None:
    host = installed(vendor=Registers(Vendor()))
    codes = np.array(ROWS, dtype=np.int8)
    batch = scoring.score_many(PAM13, codes, provider="vendor", host=host)
    expected = DemoProvider().score_batch(PAM13, codes)
    assert np.array_equal(batch.score, expected.score, equal_nan=True)
    assert np.array_equal(batch.level, expected.level)
    assert not batch.score.flags.writeable, "what was checked cannot change before it is written"


# -- case 12 (new-plugin part): names that shadow, and output that is not a folder ----------


def _new_plugin(name: str, output_dir: Path | str) -> int:
    return main(["new-plugin", name, "--kind", "rules", "--output-dir", str(output_dir)])


@pytest.mark.parametrize(
    ("name", "owner"),
    [
        ("os", "the standard library's"),
        ("json", "the standard library's"),
        ("sys", "the standard library's"),
        ("attrs", "pamlib's dependency attrs"),
        ("attr", "pamlib's dependency attrs"),
        ("cattrs", "pamlib's dependency cattrs"),
        ("numpy", "pamlib's dependency numpy"),
        ("pluggy", "pamlib's dependency pluggy"),
        ("pyarrow", "pamlib's dependency pyarrow"),
    ],
)
def test_case_12_names_that_shadow_a_module_are_refused(
    name: str, owner: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _new_plugin(name, tmp_path) == 2
    message = one_line(capsys.readouterr().err)
    assert f"its module {name!r} would shadow {owner}" in message
    assert files_in(tmp_path) == [], "nothing is written"


def test_case_12_a_name_that_shadows_nothing_is_accepted(tmp_path: Path) -> None:
    assert _new_plugin("pamlib-numpy", tmp_path) == 0
    assert files_in(tmp_path) == ["pamlib-numpy"]


def test_case_12_a_dangling_symlink_target_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pamlib-acme").symlink_to(tmp_path / "nowhere")
    assert _new_plugin("pamlib-acme", tmp_path) == 2
    assert "already exists; nothing was written" in one_line(capsys.readouterr().err)
    assert files_in(tmp_path) == ["pamlib-acme"]
    assert (tmp_path / "pamlib-acme").readlink() == tmp_path / "nowhere"


def test_case_12_a_dangling_symlink_output_dir_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    assert _new_plugin("pamlib-acme", tmp_path / "out") == 2
    assert "is a broken symbolic link" in one_line(capsys.readouterr().err)
    assert files_in(tmp_path) == ["out"]


def test_case_12_a_file_as_output_dir_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("keep", encoding="utf-8")
    assert _new_plugin("pamlib-acme", tmp_path / "notes.txt") == 2
    assert "is not a directory" in one_line(capsys.readouterr().err)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep"
    assert files_in(tmp_path) == ["notes.txt"]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere"
)
def test_case_12_a_read_only_directory_is_an_environment_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert _new_plugin("pamlib-acme", locked) == 3
    finally:
        locked.chmod(0o755)
    assert one_line(capsys.readouterr().err) == "pamlib: error: Permission denied: locked"
    assert files_in(locked) == []


def test_case_12_an_unwritable_directory_is_an_environment_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same as a read-only directory, for a run as root (which may write anywhere)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.parent == locked:
            raise PermissionError(13, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert _new_plugin("pamlib-acme", locked) == 3
    assert one_line(capsys.readouterr().err) == "pamlib: error: Permission denied: locked"
    assert files_in(locked) == []


@pytest.mark.parametrize(
    "raised",
    [OSError(28, "No space left on device", "README.md"), KeyboardInterrupt()],
    ids=["disk-full", "interrupted"],
)
def test_case_12_a_failure_midway_leaves_nothing_half_written(
    raised: BaseException,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_write = Path.write_text
    written: list[str] = []

    def write_text(self: Path, *args: Any, **kwargs: Any) -> int:
        if len(written) == 2:
            raise raised
        written.append(self.name)
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    out = tmp_path / "new" / "plugins"
    status = _new_plugin("pamlib-acme", out)
    assert status == (3 if isinstance(raised, OSError) else 130)
    assert "Traceback" not in capsys.readouterr().err
    assert files_in(tmp_path) == [], "no half-written package, and no folders made for it"
