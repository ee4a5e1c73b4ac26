"""What ``pamlib`` imports before it does any work: only what the command it runs needs.

Each check runs a fresh interpreter, as a user's shell does; timing is the benchmarks' job
(``benchmarks/bench_import.py --startup``), these tests keep the imports from creeping back.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pluggy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pamlib.plugins
from pamlib import _console, hookspecs
from pamlib.cli import COMMANDS, build_parser
from pamlib.plugins import DEFAULT_PLUGINS, _candidates

#: Modules that only other commands (demo, report, rules, calibration files, mapping files, new
#: plugins) need: scoring a plain CSV file never imports them.
NOT_FOR_SCORE = (
    "cattrs",
    "email",  # importlib.metadata's: no distribution but pamlib's declares plugins here
    "importlib.metadata",
    "numpy.ma",  # asked about only where it is loaded: a masked array needs it
    "pamlib._config",
    "pamlib.formats._mapping_file",
    "pamlib.reporting",
    "pamlib.synthetic",
    "pamlib.tailoring.engine",
    "pamlib.tailoring.rules",
    "shutil",  # argparse's, to measure the terminal: only help and usage text need that
)

_RUN = """
import json, sys
from pamlib.cli import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _modules(argv: list[str], cwd: Path) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *argv], capture_output=True, text=True, cwd=cwd, check=False
    )
    last = done.stderr.strip().splitlines()[-1]
    report = json.loads(last)
    return report["status"], set(report["modules"])


def test_score_imports_only_what_scoring_needs(tmp_path: Path) -> None:
    rows = "assessment_id,patient_id,assessed_on,instrument," + ",".join(
        f"q{k:02d}" for k in range(1, 14)
    )
    (tmp_path / "in.csv").write_text(
        rows + "\na1,p1,2025-03-01,PAM-13," + ",".join(["3"] * 13) + "\n", encoding="utf-8"
    )
    status, modules = _modules(
        ["score", "in.csv", "--provider", "demo", "-o", "out.csv", "--no-progress"], tmp_path
    )
    assert status == 0
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").count("\n") == 2
    loaded = [m for m in NOT_FOR_SCORE if m in modules]
    assert loaded == []
    # only the parser of the command that runs was built: no other command's module imported
    assert {*COMMANDS} & modules == {"pamlib.cli.score"}


#: Words a command line may hold: options of the top level and of commands, command names
#: (known, misspelt, abbreviated), values.
_WORDS = [
    "--debug",
    "--deb",
    "--help",
    "-h",
    "--version",
    "--",
    "-",
    *(m.rpartition(".")[2].replace("_", "-") for m in COMMANDS),
    "scor",
    "new_plugin",
    "in.csv",
    "--provider",
    "demo",
    "--json",
    "--threads",
    "2",
    "--no-progress",
    "check",
]


def _parsed(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    """What ``parser`` makes of ``argv``: the namespace or exit status, and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            # a command's ``func`` may be made afresh with its parser: compared by name
            result: object = {
                key: f"{value.__module__}.{value.__qualname__}" if callable(value) else value
                for key, value in vars(parser.parse_args(argv)).items()
            }
        except SystemExit as exc:
            result = ("exit", exc.code)
    return result, out.getvalue(), err.getvalue()


@given(st.lists(st.sampled_from(_WORDS), max_size=6))
def test_the_parser_of_one_command_reads_argv_as_the_whole_one_does(argv: list[str]) -> None:
    """Building only the parser of the command ``argv`` names changes nothing it prints,
    returns or exits with."""
    assert _parsed(build_parser(argv), argv) == _parsed(build_parser(), argv)


def test_an_argument_is_still_checked_without_measuring_the_terminal() -> None:
    """argparse's check of a metavar against nargs runs as before, and help text still has the
    terminal's width."""
    from pamlib.cli import _Parser

    parser = _Parser(prog="x")
    with pytest.raises(ValueError, match="length of metavar tuple does not match nargs"):
        parser.add_argument("--pair", nargs=2, metavar=("A",))
    parser.add_argument("--pair", nargs=2, metavar=("A", "B"))
    assert "--pair A B" in parser.format_usage()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "30")
        narrow = build_parser(["score"]).format_help()
        mp.setenv("COLUMNS", "200")
        wide = build_parser(["score"]).format_help()
    assert max(map(len, narrow.splitlines())) <= 30 < max(map(len, wide.splitlines()))


@pytest.mark.parametrize("argv", [["--help"], ["score", "--help"], ["plugins", "--help"]])
def test_help_imports_no_numeric_library(argv: list[str], tmp_path: Path) -> None:
    code = (
        "import sys\nfrom pamlib.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted({'numpy', 'pyarrow', 'pluggy', 'cattrs'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def _routine() -> None:
    """A plain function."""


@hookspecs.hookimpl
def pamlib_register_instruments(register: object) -> None:
    """A hook implementation under its own name."""


@hookspecs.hookimpl(specname="pamlib_register_formats")
def formats_under_another_name(register: object) -> None:
    """A hook implementation found by its ``specname``."""


def _forwarding() -> None:
    """A plain function carrying a ``__func__`` of its own, where pluggy also looks."""


_forwarding.__func__ = pamlib_register_instruments  # type: ignore[attr-defined]


def _false_marker() -> None:
    """A plain function whose marker attribute is no marker."""


_false_marker.pamlib_impl = "not options"  # type: ignore[attr-defined]


_VALUES: list[object] = [
    _forwarding,
    _false_marker,
    1,
    "text",
    None,
    (1, 2),
    {"a": 1},
    int,
    types,
    _routine,
    pamlib_register_instruments,
    formats_under_another_name,
    staticmethod(pamlib_register_instruments),
    classmethod(pamlib_register_instruments),
    len,
    object(),
    _routine.__get__(object()),
]


def _judged(plugin: object) -> set[str]:
    """The names pluggy itself takes as hook implementations of ``plugin``."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    return {name for name in dir(plugin) if pm.parse_hookimpl_opts(plugin, name) is not None}


@given(
    st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True), st.sampled_from(_VALUES)
    )
)
def test_candidates_keep_every_name_pluggy_would_take(attributes: dict[str, object]) -> None:
    module = types.ModuleType("generated_plugin")
    vars(module).update(attributes)
    assert _judged(module) <= set(_candidates(module))


def test_candidates_keep_every_hook_of_the_built_ins() -> None:
    import importlib

    for name in DEFAULT_PLUGINS:
        module = importlib.import_module(name)
        judged = _judged(module)
        assert judged, name
        assert judged <= set(_candidates(module)), name


def test_objects_other_than_modules_are_asked_about_in_full() -> None:
    class Plugin:
        @hookspecs.hookimpl
        def pamlib_register_instruments(self, register: object) -> None:
            """An implementation on a class."""

        value = 3

    plugin = Plugin()
    assert _candidates(plugin) == dir(plugin)
    host = pamlib.plugins.PluginHost(load_entry_points=False, plugins={"p": plugin})
    record = next(r for r in host.records() if r.name == "p")
    assert record.hooks == ["pamlib_register_instruments"]


def test_stand_ins_list_every_name_pluggy_would_take() -> None:
    """pluggy asks a stand-in only about the names it lists: the implementations set on it, and
    no attribute it has besides (``object``'s, its class's) is one."""
    host = pamlib.plugins.PluginHost(load_entry_points=False)
    for name in DEFAULT_PLUGINS:
        stand_in = host.pm.get_plugin(name)
        everything = object.__dir__(stand_in)
        taken = {a for a in everything if host.pm.parse_hookimpl_opts(stand_in, a) is not None}
        assert taken == set(dir(stand_in)), name
        assert taken, name


@pytest.mark.parametrize(
    "argv",
    [
        ["plugins", "--json"],
        ["score", "in.csv", "--provider", "demo", "-o", "out.csv", "--no-progress"],
        ["score", "in.csv", "--provider", "demo", "-o", "out.csv", "--recommend"],
    ],
)
def test_the_collector_runs_again_once_the_command_line_has_started(
    tmp_path: Path, argv: list[str]
) -> None:
    """``run`` holds the garbage collector off while it starts up, never for the command's
    work: by then it is on again, with what start-up made frozen out of its way (``score``
    settles itself, once its pipeline and plugins are loaded)."""
    header = "assessment_id,patient_id,assessed_on,instrument," + ",".join(
        f"q{k:02d}" for k in range(1, 14)
    )
    (tmp_path / "in.csv").write_text(
        header + "\na1,p1,2025-03-01,PAM-13," + ",".join(["3"] * 13) + "\n", encoding="utf-8"
    )
    code = (
        f"import gc, sys\nimport pamlib.cli\nsys.argv = ['pamlib', *{argv!r}]\n"
        "try:\n    pamlib.cli.run()\nexcept SystemExit as exc:\n    status = exc.code\n"
        "print(status, gc.isenabled(), gc.get_freeze_count() > 0, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert done.stderr.strip().splitlines()[-1] == "0 True True"


def test_main_called_by_a_program_leaves_its_collector_alone(tmp_path: Path) -> None:
    code = (
        "import gc, sys\nfrom pamlib.cli import main\ngc.disable()\n"
        "status = main(['plugins', '--json'])\n"
        "print(status, gc.isenabled(), gc.get_freeze_count(), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert done.stderr.strip().splitlines()[-1] == "0 False 0"


INTERRUPT_AT = """
import builtins, importlib, sys
at = sys.argv[1]
def interrupting(real):
    def load(name, *args, **kwargs):
        if name == at:
            raise KeyboardInterrupt  # Ctrl-C while the command line loads
        return real(name, *args, **kwargs)
    return load
builtins.__import__ = interrupting(builtins.__import__)
importlib.import_module = interrupting(importlib.import_module)
import os
# an input that exists (a missing one is refused before the command loads what it runs)
sys.argv = ["pamlib", "score", os.devnull, "--provider", "demo", "-o", os.devnull]
from pamlib._console import run
run()
"""


@pytest.mark.parametrize(
    "module",
    [
        "attrs",  # while pamlib.cli is imported
        "pamlib.cli.score",  # while the command's parser is built
        "pamlib.pipeline",  # while the command loads what it runs
    ],
)
def test_an_interrupt_while_the_command_line_loads_is_one_line(module: str) -> None:
    """Ctrl-C at any point after the console script starts ends the run with the message and
    status of an interrupt, never a traceback."""
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPT_AT, module],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stderr == "pamlib: interrupted\n"
    assert done.returncode == 130


# --------------------------------------------------------------------------------------------
# NumPy's BLAS gets one thread in the command line's own process, unless the user chose
# --------------------------------------------------------------------------------------------

_BLAS_SETTING = """
import atexit, os, sys
atexit.register(lambda: print("setting", os.environ.get("OPENBLAS_NUM_THREADS"), file=sys.stderr))
sys.argv = ["pamlib", "--version"]
from pamlib._console import run
run()
"""


def _without_blas_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _console.BLAS_THREAD_VARIABLES}


@pytest.mark.parametrize("name", _console.BLAS_THREAD_VARIABLES)
def test_a_blas_setting_of_the_users_is_kept(name: str) -> None:
    environ = {name: "3"}
    assert not _console.one_blas_thread(environ)
    assert environ == {name: "3"}


def test_without_a_setting_blas_gets_one_thread_and_pyarrow_keeps_its_pool() -> None:
    environ = {"PATH": "/bin"}
    assert _console.one_blas_thread(environ)
    assert environ == {"PATH": "/bin", "OPENBLAS_NUM_THREADS": "1"}  # never OMP_NUM_THREADS


@pytest.mark.parametrize(
    ("extra", "expected"), [({}, "1"), ({"OMP_NUM_THREADS": "2"}, "None")], ids=["unset", "set"]
)
def test_the_console_script_sets_it_before_the_command_runs(
    extra: dict[str, str], expected: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _BLAS_SETTING],
        capture_output=True,
        text=True,
        env={**_without_blas_settings(), **extra},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"setting {expected}" in done.stderr


_THREADS_NUMPY_STARTS = """
import os, sys
from pamlib._console import one_blas_thread
if sys.argv[1] == "rule":
    one_blas_thread(os.environ)
before = len(os.listdir("/proc/self/task"))
import numpy
print(len(os.listdir("/proc/self/task")) - before)
"""


def _numpy_uses_openblas() -> bool:
    import numpy as np

    config: Any = np.show_config(mode="dicts")
    blas = config.get("Build Dependencies", {}).get("blas", {})
    return "openblas" in str(blas.get("name", "")).lower()


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
@pytest.mark.skipif(_usable_cores() < 2, reason="OpenBLAS starts no thread on one core")
def test_with_the_rule_loading_numpy_starts_no_thread() -> None:
    if not _numpy_uses_openblas():
        pytest.skip("this NumPy is not built with OpenBLAS")
    env = _without_blas_settings()

    def threads(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", _THREADS_NUMPY_STARTS, mode],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return int(done.stdout)

    assert threads("rule") == 0
    assert threads("default") > 0  # what the rule saves: OpenBLAS's own threads
