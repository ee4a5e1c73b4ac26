"""``pamlib new-plugin``: scaffold a plugin package that passes the conformance kit out of the box.

Templates are package data (``pamlib/templates/plugin``), filled in with :class:`string.Template`
— no template engine to install. Each kind gets the common files (``pyproject.toml`` with the
entry point in group ``pamlib``, ``py.typed``, ``.gitignore``) and its own module, README and
tests subclassing the kit.
"""

from __future__ import annotations

import argparse
import keyword
import re
import string
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pamlib._version import __version__

__all__ = ["KINDS", "create_plugin"]

#: What each kind scaffolds, for ``--help`` and the package description.
KINDS: dict[str, str] = {
    "scoring": "a scoring provider (the Rasch engine with a calibration file it is given)",
    "rules": "site tailoring rules: a rules file and a Python rule",
    "format": "a file format: a reader and a writer (JSON Lines)",
}
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
#: Longer names would push generated lines past the line length its linter config sets.
MAX_NAME = 40
_SUFFIX = ".tmpl"
#: Files whose names cannot be package data as they are (hidden files).
_RENAMED = {"gitignore": ".gitignore"}


def _usage_error(message: str) -> Exception:
    from pamlib.cli import UsageError

    return UsageError(message)


def _files(
    root: Traversable, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    """(relative path parts, template text) for every template under ``root``."""
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _files(entry, (*prefix, entry.name))
        elif entry.name.endswith(_SUFFIX):
            yield (*prefix, entry.name[: -len(_SUFFIX)]), entry.read_text(encoding="utf-8")


def _values(name: str, kind: str) -> dict[str, str]:
    module = name.replace("-", "_")
    short = name.removeprefix("pamlib-").removeprefix("pamlib_")
    major, minor = __version__.split(".")[:2]
    return {
        "name": name,
        "module": module,
        "short": short.replace("_", "-"),
        "env_var": f"{module.upper()}_CALIBRATION",
        "description": f"A pamlib plugin: {KINDS[kind]}.",
        "pamlib_requirement": f"pamlib>={major}.{minor}",
    }


def check_name(name: str) -> str:
    """``name`` as a distribution name whose module name is importable, or a usage error."""
    if not _NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise _usage_error(
            f"plugin name {name!r}: use lower-case letters, digits and single hyphens, "
            f"starting with a letter, at most {MAX_NAME} characters (e.g. pamlib-acme)"
        )
    module = name.replace("-", "_")
    if keyword.iskeyword(module) or module in ("pamlib", "test", "tests"):
        raise _usage_error(f"plugin name {name!r} would shadow a module; choose another")
    return name


def create_plugin(name: str, kind: str, output_dir: str | Path = ".") -> Path:
    """Write a new plugin package ``output_dir/name`` of ``kind`` and return its directory.

    Raises :class:`~pamlib.cli.UsageError` for a bad name or kind, or when the directory exists
    (nothing is overwritten).
    """
    if kind not in KINDS:
        raise _usage_error(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    check_name(name)
    target = Path(output_dir) / name
    if target.exists():
        raise _usage_error(f"{target} already exists; nothing was written")
    values = _values(name, kind)
    templates = resources.files("pamlib").joinpath("templates", "plugin")
    planned: dict[Path, str] = {}
    for part in ("common", kind):
        for parts, text in _files(templates.joinpath(part)):
            names = [p.replace("__module__", values["module"]) for p in parts]
            names[-1] = _RENAMED.get(names[-1], names[-1])
            planned[target.joinpath(*names)] = string.Template(text).substitute(values)
    for path, text in planned.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "new-plugin",
        help="scaffold a plugin package (scoring, rules or format) with tests",
        description="Write a new plugin package: pyproject.toml with the entry point, a module "
        "with its hook implementations, a README, and tests that subclass pamlib's conformance "
        "kit and pass as written. Kinds: "
        + "; ".join(f"{kind}: {what}" for kind, what in KINDS.items())
        + ".",
    )
    p.add_argument("name", metavar="NAME", help="distribution name, e.g. pamlib-acme")
    p.add_argument("--kind", required=True, choices=sorted(KINDS), help="what the plugin does")
    p.add_argument(
        "--output-dir",
        default=".",
        metavar="DIR",
        help="where to create the NAME directory (default: the current directory)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = create_plugin(args.name, args.kind, args.output_dir)
    print(f"created {args.kind} plugin {args.name} in {target}")
    print(f"next: cd {target} && pip install -e '.[test]' && pytest")
    return 0
