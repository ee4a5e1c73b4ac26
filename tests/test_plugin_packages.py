"""Plugins as real packages: the examples and freshly scaffolded plugins, pip-installed into a
virtual environment, are discovered through entry points and pass their own tests there.

One virtual environment serves every test here. It reuses the packages of the environment running
the tests — pamlib included — through a ``.pth`` file (``--system-site-packages`` would expose
the *base* interpreter's packages, not this environment's), so nothing is downloaded: each plugin
is built with hatchling from this environment (``--no-build-isolation --no-index``).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sysconfig
import venv
from pathlib import Path
from typing import Any

import attrs
import pytest

from pamlib.cli import main
from pamlib.testing import write_synthetic_calibration
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

EXAMPLES = ("pamlib-example-scoring", "pamlib-example-site")
SCAFFOLDED = {
    "pamlib-acme-scoring": "scoring",
    "pamlib-acme-rules": "rules",
    "pamlib-acme-format": "format",
}
LICENSEE = "Example Licensee (synthetic test calibration)"


@attrs.frozen
class PluginVenv:
    python: Path
    packages: dict[str, Path]  # distribution name -> its source directory (a copy)
    env: dict[str, str]

    def with_env(self, **env: str) -> PluginVenv:
        return attrs.evolve(self, env={**self.env, **env})

    def run(self, *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *map(str, args)],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=cwd,
            timeout=300,
            check=False,
        )


def _site_packages(prefix: Path) -> Path:
    paths = sysconfig.get_paths(vars={"base": str(prefix), "platbase": str(prefix)})
    return Path(paths["purelib"])


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("hatchling is not installed (it is in the dev dependency group)")
    root = tmp_path_factory.mktemp("plugin-packages")
    sources = root / "src"
    packages: dict[str, Path] = {}
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".hypothesis", "*.egg-info")
    for name in EXAMPLES:
        packages[name] = Path(
            shutil.copytree(ROOT / "examples" / name, sources / name, ignore=ignore)
        )
    for name, kind in SCAFFOLDED.items():
        assert main(["new-plugin", name, "--kind", kind, "--output-dir", str(sources)]) == 0
        packages[name] = sources / name

    prefix = root / "venv"
    venv.EnvBuilder(with_pip=False).create(prefix)
    python = prefix / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    ours = [*site.getsitepackages(), site.getusersitepackages()]
    line = "import site; " + "; ".join(f"site.addsitedir({p!r})" for p in ours if Path(p).is_dir())
    _site_packages(prefix).mkdir(parents=True, exist_ok=True)
    (_site_packages(prefix) / "_pamlib_test_parent.pth").write_text(line + "\n", encoding="utf-8")

    calibrations = root / "calibrations"
    calibrations.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PAMLIB_DISABLE_PLUGINS")}
    env["PAMLIB_EXAMPLE_CALIBRATION"] = str(
        write_synthetic_calibration(calibrations, licensee=LICENSEE, name="example.json")
    )
    env["PAMLIB_ACME_SCORING_CALIBRATION"] = str(
        write_synthetic_calibration(calibrations, licensee=LICENSEE, name="acme.json")
    )
    result = PluginVenv(python, packages, env).run(
        "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
        *packages.values(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return PluginVenv(python, packages, env)


def _plugins(plugin_venv: PluginVenv, **env: str) -> dict[str, dict[str, Any]]:
    result = plugin_venv.with_env(**env).run("-m", "pamlib", "plugins", "--json")
    assert result.returncode == 0, result.stderr
    return {r["name"]: r for r in json.loads(result.stdout)}


def test_installed_plugins_are_discovered_through_entry_points(plugin_venv: PluginVenv) -> None:
    records = _plugins(plugin_venv)
    for name in plugin_venv.packages:
        assert records[name]["status"] == "ok", records[name]["errors"]
        assert records[name]["version"] == "0.1.0"
        assert not records[name]["builtin"]
    provides = {name: records[name]["provides"] for name in plugin_venv.packages}
    assert provides["pamlib-example-scoring"] == {"scoring providers": ["example-licensed"]}
    assert provides["pamlib-example-site"]["pathways"] == ["northfield.walking-group"]
    assert len(provides["pamlib-example-site"]["rules"]) == 2  # the file and the Python rule
    assert provides["pamlib-acme-scoring"] == {"scoring providers": ["acme-scoring"]}
    assert len(provides["pamlib-acme-rules"]["rules"]) == 2
    assert provides["pamlib-acme-format"] == {"formats": ["acme-format"]}


def test_an_unconfigured_scoring_plugin_provides_nothing(plugin_venv: PluginVenv) -> None:
    records = _plugins(plugin_venv, PAMLIB_EXAMPLE_CALIBRATION="")
    assert records["pamlib-example-scoring"]["status"] == "ok"
    assert records["pamlib-example-scoring"]["provides"] == {}


def test_the_site_plugins_rules_take_effect(plugin_venv: PluginVenv) -> None:
    args = [
        "-m", "pamlib", "rules", "explain", "--level", "2", "--assessed-on", "2025-03-01",
        "--attr", "last_contact=2024-11-01", "--attr", "diagnosed_on=2025-01-15",
    ]  # fmt: skip
    shown = plugin_venv.run(*args)
    assert shown.returncode == 0, shown.stderr
    for rule_id in (
        "northfield.walking-group",
        "northfield.no-recent-contact",
        "acme-rules.newly-diagnosed",
        "pamlib.coaching-level-2",
    ):
        assert rule_id in shown.stdout
    assert "Walking group" in shown.stdout
    disabled = plugin_venv.with_env(PAMLIB_DISABLE_PLUGINS="pamlib-example-site").run(*args)
    assert disabled.returncode == 0, disabled.stderr
    assert "northfield." not in disabled.stdout


def test_a_licensed_plugin_scores_through_the_api(plugin_venv: PluginVenv) -> None:
    code = (
        "import json, pamlib; s = pamlib.score_many('PAM-13', [[3] * 13]); "
        "print(json.dumps([s.provider, s.calibration_id, s.demo, s.flags.tolist()]))"
    )
    # Two licensed providers are installed for PAM-13: pamlib refuses to guess.
    both = plugin_venv.run("-c", code)
    assert both.returncode == 1
    assert "several licensed providers" in both.stderr
    one = plugin_venv.with_env(PAMLIB_DISABLE_PLUGINS="pamlib-acme-scoring").run("-c", code)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == ["example-licensed", "synthetic-test-PAM-13", False, [0]]


@pytest.mark.parametrize("name", [*EXAMPLES, *SCAFFOLDED])
def test_plugin_tests_pass_inside_the_venv(plugin_venv: PluginVenv, name: str) -> None:
    source = plugin_venv.packages[name]
    result = plugin_venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=source)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    # The plugin under test is the installed one, not the source tree.
    where = plugin_venv.run("-c", f"import {name.replace('-', '_')} as m; print(m.__file__)")
    assert "site-packages" in where.stdout, where.stdout + where.stderr


def test_scaffolded_plugins_type_check_strictly(plugin_venv: PluginVenv, tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    folders = [plugin_venv.packages[name] for name in SCAFFOLDED]
    paths = [str(folder / part) for folder in folders for part in ("src", "tests")]
    result = plugin_venv.run(
        "-m", "mypy", "--strict", "--python-version", "3.11", "--cache-dir", tmp_path, *paths
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_pamlib_score_reads_and_writes_an_installed_format(
    plugin_venv: PluginVenv, tmp_path: Path
) -> None:
    items = [f"pam13.{i:02d}" for i in range(1, 14)]
    records = [
        {"assessment_id": "a1", "patient_id": "p1", "assessed_on": "2025-03-01",
         "instrument": "PAM-13", "responses": dict.fromkeys(items, 3)},
        {"assessment_id": "a2", "patient_id": "p2", "assessed_on": "2025-03-01",
         "instrument": "PAM-13", "responses": {"pam13.01": 9}},
    ]  # fmt: skip
    source = tmp_path / "export.acme-format.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    target = tmp_path / "scored.acme-format.jsonl"
    run = plugin_venv.run("-m", "pamlib", "score", source, "--provider", "demo", "-o", target)
    assert run.returncode == 0, run.stderr
    assert "read 2 = scored 1 + not scored 0 + rejected 1" in run.stderr
    [scored] = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert (scored["assessment_id"], scored["demo"], scored["flags"]) == ("a1", True, ["demo"])
    with (tmp_path / "scored.acme-format.rejects.csv").open(encoding="utf-8", newline="") as f:
        [reject] = list(csv.DictReader(f))
    assert (reject["line"], reject["code"]) == ("2", "answer")
