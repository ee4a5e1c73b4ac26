"""``pamlib new-plugin``: what it writes, what it refuses, and that the result is lint-clean.

That scaffolded packages install, are discovered and pass their own tests is proved in
``test_plugin_packages.py`` (slow: it builds a virtual environment).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pamlib.cli import main
from pamlib.cli.new_plugin import KINDS, MAX_NAME, create_plugin


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_scaffolds_a_package_with_an_entry_point(kind: str, tmp_path: Path) -> None:
    folder = create_plugin("pamlib-acme", kind, tmp_path)
    assert folder == tmp_path / "pamlib-acme"
    files = _files(folder)
    for expected in (
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "src/pamlib_acme/__init__.py",
        "src/pamlib_acme/py.typed",
        "tests/test_pamlib_acme.py",
    ):
        assert expected in files
    assert not [f for f in files if f.endswith(".tmpl") or "__module__" in f]
    project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == "pamlib-acme"
    assert project["project"]["entry-points"]["pamlib"] == {"pamlib-acme": "pamlib_acme"}
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["project"]["dependencies"][0].startswith("pamlib>=")
    for path in folder.rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    tests = (folder / "tests" / "test_pamlib_acme.py").read_text(encoding="utf-8")
    assert "Conformance" in tests, "tests subclass the kit"


def test_rules_are_shipped_as_package_data(tmp_path: Path) -> None:
    folder = create_plugin("site-rules", "rules", tmp_path)
    text = (folder / "src" / "site_rules" / "rules.toml").read_text(encoding="utf-8")
    ids = [r["id"] for r in tomllib.loads(text)["rule"]]
    assert ids
    assert all(i.startswith("site-rules.") for i in ids)


def test_the_cli_says_where_and_what_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["new-plugin", "pamlib-acme", "--kind", "format", "--output-dir", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"created format plugin pamlib-acme in {tmp_path / 'pamlib-acme'}" in out
    assert "pytest" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["new-plugin", "Acme Plugin", "--kind", "rules"],
        ["new-plugin", "pamlib-", "--kind", "rules"],
        ["new-plugin", "class", "--kind", "rules"],
        ["new-plugin", "pamlib", "--kind", "rules"],
        ["new-plugin", "x" * (MAX_NAME + 1), "--kind", "rules"],
        ["new-plugin", "pamlib-acme", "--kind", "bogus"],
        ["new-plugin", "pamlib-acme"],
    ],
)
def test_bad_requests_are_usage_errors(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        status = main([*argv, "--output-dir", str(tmp_path)])
    except SystemExit as exc:  # argparse: unknown or missing --kind
        status = int(exc.code or 0)
    assert status == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert _files(tmp_path) == [], "nothing is written"


def test_an_existing_folder_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pamlib-acme").mkdir()
    (tmp_path / "pamlib-acme" / "mine.txt").write_text("keep", encoding="utf-8")
    argv = ["new-plugin", "pamlib-acme", "--kind", "rules", "--output-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert _files(tmp_path) == ["pamlib-acme/mine.txt"]


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed")
def test_scaffolds_are_lint_clean_even_with_the_longest_name(tmp_path: Path) -> None:
    long_name = "pamlib-" + "a" * (MAX_NAME - len("pamlib-"))
    for kind in KINDS:
        folder = create_plugin(long_name, kind, tmp_path / kind)
        for command in (["check"], ["format", "--check", "--diff"]):
            result = subprocess.run(
                [sys.executable, "-m", "ruff", *command, "."],
                cwd=folder,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"{kind}: {result.stdout}{result.stderr}"
