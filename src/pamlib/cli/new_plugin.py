"""``pamlib new-plugin``: scaffold a plugin package that passes the conformance kit out of the box.

Templates are package data (``pamlib/templates/plugin``), filled in with :class:`string.Template`
— no template engine to install. Each kind gets the common files (``pyproject.toml`` with the
entry point in group ``pamlib``, ``py.typed``, ``.gitignore``) and its own module, README and
tests subclassing the kit.

A name whose module would shadow the standard library, pamlib or one of pamlib's dependencies, or
that Windows keeps for a device (``con``, ``nul`` …), is refused. The package is written into a
hidden folder beside the target and renamed into place when complete, so an interrupted or failed
run leaves nothing under the final name, and its files are made durable (``fsync``) before the
rename, so a crash of the system does not leave empty files under it either; an existing target
(even a dangling symbolic link) is never overwritten.
"""

from __future__ import annotations

import argparse
import functools
import keyword
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pamlib._version import __version__

if TYPE_CHECKING:
    from importlib import metadata
    from importlib.resources.abc import Traversable

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


#: pamlib's own dependencies (and their modules), used when its metadata cannot be read.
_KNOWN_DEPENDENCIES: dict[str, frozenset[str]] = {
    "attrs": frozenset({"attr", "attrs"}),
    "cattrs": frozenset({"cattrs", "cattr"}),
    "pluggy": frozenset({"pluggy"}),
    "numpy": frozenset({"numpy"}),
    "pyarrow": frozenset({"pyarrow"}),
    "pytest": frozenset({"pytest", "_pytest", "py"}),
    "hypothesis": frozenset({"hypothesis", "_hypothesis_pytestplugin"}),
}
#: Modules Python imports at start-up or pytest/packaging tools import: a package of that name,
#: once installed (``pip install -e``), runs on every interpreter start or replaces the tool.
_RESERVED_MODULES = frozenset(
    {
        "sitecustomize",
        "usercustomize",
        "conftest",
        "pip",
        "setuptools",
        "pkg_resources",
        "wheel",
        "hatchling",
        "build",
        "distutils",
        "_distutils_hack",
        "virtualenv",
        "venv",
    }
)
#: Ids pamlib's built-in plugins register (providers, formats), and ``pamlib`` (its rule ids'
#: prefix): a scaffold taking one clashes.
_BUILTIN_IDS = frozenset(
    {"pamlib", "demo", "rasch", "raw-sum", "csv", "fhir", "json", "parquet", "xlsx"}
)
#: Names Windows keeps for devices: no file or folder there may have one (``con``, ``con.py``).
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", *(f"{port}{n}" for port in ("com", "lpt") for n in range(10))}
)
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_modules(dist: metadata.Distribution) -> set[str]:
    """The importable top-level names a distribution installs."""
    text = dist.read_text("top_level.txt")
    if text:
        return {line.strip() for line in text.splitlines() if line.strip()}
    modules: set[str] = set()
    for file in dist.files or ():
        parts = file.parts
        if (
            not parts
            or parts[0] in ("..", "__pycache__")
            or parts[0].endswith((".dist-info", ".data", ".egg-info"))
        ):
            continue
        if len(parts) > 1:
            modules.add(parts[0])
        elif file.suffix in (".py", ".so", ".pyd"):
            modules.add(parts[0].split(".", 1)[0])
    return modules


@functools.cache
def dependency_modules() -> dict[str, str]:
    """Module names a plugin must not take, each with the distribution that owns it: pamlib's
    dependencies (its optional ones too), and theirs (without their extras), from the installed
    metadata."""
    owners: dict[str, str] = {}
    for dist_name, modules in _KNOWN_DEPENDENCIES.items():
        for module in modules:
            owners.setdefault(module, dist_name)
        owners.setdefault(dist_name.replace("-", "_"), dist_name)
    from importlib import metadata

    seen: set[str] = set()
    queue = ["pamlib"]
    while queue:
        current = queue.pop()
        try:
            dist = metadata.distribution(current)
        except metadata.PackageNotFoundError:
            continue
        if current != "pamlib":
            for module in _top_level_modules(dist):
                owners.setdefault(module, current)
            owners.setdefault(current.replace("-", "_"), current)
        for requirement in dist.requires or ():
            marker = requirement.partition(";")[2]
            if current != "pamlib" and "extra" in marker:
                continue  # a dependency's own optional extras are not installed for pamlib
            match = _REQUIREMENT.match(requirement)
            if match is None:
                continue
            dep = _canonical(match.group(1))
            if dep not in seen:
                seen.add(dep)
                queue.append(dep)
    return owners


def check_name(name: str) -> str:
    """``name`` as a distribution name whose module name is importable and shadows nothing
    (the standard library, pamlib, or a dependency of pamlib), or a usage error."""
    if not _NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise _usage_error(
            f"plugin name {name!r}: use lower-case letters, digits and single hyphens, "
            f"starting with a letter, at most {MAX_NAME} characters (e.g. pamlib-acme)"
        )
    module = name.replace("-", "_")
    if module in _WINDOWS_DEVICES:
        raise _usage_error(
            f"plugin name {name!r}: Windows keeps that name for a device, so the package could "
            f"not be checked out or installed there; choose another (e.g. pamlib-{name})"
        )
    if module in _RESERVED_MODULES:
        raise _usage_error(
            f"plugin name {name!r}: a module {module!r} is imported by Python or the packaging "
            f"tools themselves; choose another (e.g. pamlib-{name})"
        )
    if keyword.iskeyword(module) or module in ("pamlib", "test", "tests"):
        raise _usage_error(f"plugin name {name!r} would shadow a module; choose another")
    if module in sys.stdlib_module_names or module in sys.builtin_module_names:
        raise _usage_error(
            f"plugin name {name!r}: its module {module!r} would shadow the standard library's; "
            f"choose another (e.g. pamlib-{name})"
        )
    owner = dependency_modules().get(module) or dependency_modules().get(_canonical(name))
    if owner is not None:
        raise _usage_error(
            f"plugin name {name!r}: its module {module!r} would shadow pamlib's dependency "
            f"{owner}; choose another (e.g. pamlib-{name})"
        )
    short = name.removeprefix("pamlib-").removeprefix("pamlib_").replace("_", "-")
    if short in _BUILTIN_IDS:
        raise _usage_error(
            f"plugin name {name!r}: its id {short!r} (its provider's or format's, and the start "
            "of its rule ids) is pamlib's own; choose another"
        )
    return name


def create_plugin(name: str, kind: str, output_dir: str | os.PathLike[str] = ".") -> Path:
    """Write a new plugin package ``output_dir/name`` of ``kind`` and return its directory.

    Raises :class:`~pamlib.cli.UsageError` for a bad name or kind, an ``output_dir`` that is
    not a directory, or a target that exists (nothing is overwritten), and :class:`OSError`
    when the folder cannot be written (naming ``output_dir``). The package appears complete
    under its name or not at all; ``output_dir`` is created if missing.
    """
    if kind not in KINDS:
        raise _usage_error(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    check_name(name)
    out = Path(output_dir)
    if out.is_symlink() and not out.exists():
        raise _usage_error(f"--output-dir {out} is a broken symbolic link; nothing was written")
    if out.exists() and not out.is_dir():
        raise _usage_error(f"--output-dir {out} is not a directory; nothing was written")
    target = out / name
    if os.path.lexists(target):
        raise _usage_error(f"{target} already exists; nothing was written")
    import secrets
    import string
    from importlib import resources

    from pamlib.formats.guard import _sync_path

    values = _values(name, kind)
    templates = resources.files("pamlib").joinpath("templates", "plugin")
    planned: dict[tuple[str, ...], str] = {}
    for part in ("common", kind):
        for parts, text in _files(templates.joinpath(part)):
            names = [p.replace("__module__", values["module"]) for p in parts]
            names[-1] = _RENAMED.get(names[-1], names[-1])
            planned[tuple(names)] = string.Template(text).substitute(values)
    created = _make_directory(out)
    staging = out / f".{name}.{secrets.token_hex(4)}.tmp"
    try:
        try:
            staging.mkdir()
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, str(out)) from None
        folders = {staging}
        for parts, text in planned.items():
            path = staging.joinpath(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            folders.update(path.parents)
            path.write_text(text, encoding="utf-8")
        # durable before it has its name: a crash never leaves empty files under it
        for path in [*(staging.joinpath(*parts) for parts in planned), *sorted(folders)]:
            if staging == path or staging in path.parents:
                _sync_path(path)
        if os.path.lexists(target):  # appeared while writing: still never overwritten
            raise _usage_error(f"{target} already exists; nothing was written")
        staging.rename(target)
        _sync_path(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return target


def _make_directory(folder: Path) -> list[Path]:
    """Create ``folder`` and any missing parents; the ones created, outermost first."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and not current.is_symlink():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    created: list[Path] = []
    try:
        for path in reversed(missing):
            path.mkdir()
            created.append(path)
    except OSError:
        for path in reversed(created):
            path.rmdir()
        raise
    return created


def add_parser(subparsers: Any) -> None:
    from pamlib.cli import file_name

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
        type=file_name,
        default=".",
        metavar="DIR",
        help="where to create the NAME directory (default: the current directory)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = create_plugin(args.name, args.kind, args.output_dir)
    print(f"created {args.kind} plugin {args.name} in {target}")
    import shlex

    print(f"next: cd {shlex.quote(str(target))} && pip install -e '.[test]' && pytest")
    return 0
