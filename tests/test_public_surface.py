"""The layout says what is public and which layer a module belongs to; these tests keep it so.

A module is public when its name has no component starting with an underscore and the API
reference documents it (or it is one of the few public modules documented elsewhere); the layers
model → stages → adapters → command line import only downwards, with the exceptions listed here.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import warnings

import pytest

import pamlib
from pamlib._moved import MOVED
from pamlib.errors import PamlibDeprecationWarning
from tests.conftest import ROOT

SRC = ROOT / "src"
DOCS = ROOT / "docs"

#: Public modules documented outside the API reference's automodule lines, and why.
PUBLIC_ELSEWHERE = {
    "pamlib": "the package root: the verbs and core types",
    "pamlib.cli": "the command line (documented as commands, not as Python)",
    "pamlib.plugins": "PluginHost and friends, documented class by class",
    "pamlib.synthetic": "synthetic cohorts for demos, tests and benchmarks",
    "pamlib.builtin": "the built-in plugins' namespace",
    "pamlib.builtin.catalogue": "a built-in plugin: its name is its module",
    "pamlib.scoring.raw_sum": "a built-in plugin: its name is its module",
    "pamlib.tailoring.catalogue": "a built-in plugin: its name is its module",
    "pamlib.tailoring.default_rules": "a built-in plugin: its name is its module",
    "pamlib.tables": "the scored-table package (its modules are documented)",
    "pamlib.formats": "the format plugin types, documented in pamlib.formats.base",
    "pamlib.tailoring": "the tailoring verbs, documented with their modules",
    "pamlib.testing": "the plugin authors' testing kit (docs/testing.rst)",
}


def _modules() -> list[str]:
    names = []
    for path in sorted((SRC / "pamlib").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def _is_private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split("."))


def _documented() -> set[str]:
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.rst")))
    return set(re.findall(r"automodule:: ([\w.]+)", text))


def test_every_module_is_private_by_name_or_documented() -> None:
    documented = _documented()
    undocumented = [
        m
        for m in _modules()
        if not _is_private(m)
        and m not in documented
        and m not in PUBLIC_ELSEWHERE
        and not m.startswith(("pamlib.cli.", "pamlib.testing."))
    ]
    assert not undocumented, "make these private (a leading underscore) or document them"


def test_no_private_module_is_documented() -> None:
    assert not {m for m in _documented() if _is_private(m)}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_name_still_imports_with_a_deprecation_warning(old: str) -> None:
    new, public = MOVED[old]
    sys.modules.pop(old, None)  # another test may have imported it already
    with pytest.warns(PamlibDeprecationWarning, match=re.escape(new)):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__spec__ is not None
    assert module.__spec__.name == new
    assert public.startswith("pamlib")


def test_the_moved_names_are_gone_from_their_old_places() -> None:
    for old in MOVED:
        assert not (SRC / (old.replace(".", "/") + ".py")).exists(), old


def test_a_name_that_never_existed_is_still_an_import_error() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("pamlib.formats.no_such_module")


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------

MODEL = {
    "pamlib.assessment",
    "pamlib.errors",
    "pamlib.identity",
    "pamlib.instruments",
    "pamlib.levels",
    "pamlib.pathways",
    "pamlib.responses",
    "pamlib.results",
    "pamlib._arrays",
    "pamlib._months",
    "pamlib._version",
    "pamlib._lazy",
    "pamlib._moved",
    "pamlib._documents",
    "pamlib._config",
    "pamlib._terminal",
}
STAGES = ("pamlib.scoring", "pamlib.tailoring", "pamlib.reporting", "pamlib.tables")
ADAPTERS = ("pamlib.formats", "pamlib.fhir", "pamlib.serialize", "pamlib.spark")

#: Adapter modules the stages may use, and why: writing files safely and Arrow helpers are
#: infrastructure every stage needs; a scored CSV is read back through the CSV reader's checks.
STAGE_MAY_USE = {
    "pamlib.formats.guard": "no partial output under a final name",
    "pamlib.formats.output": "atomic writes",
    "pamlib.formats._arrow": "Arrow helpers",
    "pamlib.formats._columnar": "a scored CSV is checked as any CSV is",
}


def _imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for module in _modules():
        path = SRC / (module.replace(".", "/"))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        modules = set(_modules())
        found[module] = {t for t in targets if t in modules and t != module}
    return found


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_model_imports_only_the_model() -> None:
    wrong = {(m, t) for m, ts in _imports().items() if m in MODEL for t in ts if t not in MODEL}
    assert not wrong


def test_the_stages_use_no_adapter_pipeline_or_command_line() -> None:
    wrong = {
        (m, t)
        for m, ts in _imports().items()
        if _within(m, STAGES)
        for t in ts
        if (_within(t, ADAPTERS) and t not in STAGE_MAY_USE)
        or _within(t, ("pamlib.pipeline", "pamlib.cli"))
    }
    assert not wrong


def test_the_adapters_use_no_command_line_and_no_report() -> None:
    wrong = {
        (m, t)
        for m, ts in _imports().items()
        if _within(m, ADAPTERS) and m != "pamlib.spark"
        for t in ts
        if _within(t, ("pamlib.cli", "pamlib.reporting", "pamlib.pipeline"))
    }
    assert not wrong


def test_only_the_command_line_imports_the_command_line() -> None:
    wrong = {
        (m, t)
        for m, ts in _imports().items()
        # pamlib._console: the console script, which must catch an interrupt before it loads
        if not _within(m, ("pamlib.cli", "pamlib.__main__", "pamlib._console"))
        for t in ts
        if _within(t, ("pamlib.cli",))
    }
    assert not wrong


def test_the_root_exports_the_verbs_and_core_types_only() -> None:
    assert len(pamlib.__all__) <= 60
    assert not [name for name in pamlib.__all__ if name.startswith("_") and name != "__version__"]


def test_nothing_is_defined_only_in_a_shim() -> None:
    """The moved table points at modules that exist."""
    for new, _ in MOVED.values():
        assert (SRC / (new.replace(".", "/") + ".py")).exists(), new


def test_the_docs_teach_no_old_path() -> None:
    pattern = re.compile("|".join(re.escape(old) + r"\b" for old in MOVED))
    for path in sorted(DOCS.glob("*.rst")) + sorted((DOCS / "api").glob("*.rst")):
        text = path.read_text(encoding="utf-8")
        hits = [m.group(0) for m in pattern.finditer(text)]
        if path.name == "score.rst":  # says where iter_assessments lived before
            hits = [h for h in hits if h != "pamlib.formats.records"]
        assert not hits, (path.name, hits)


def test_the_root_exports_every_error_lazily() -> None:
    """The root names its errors without importing them (that would load attrs at start-up); the
    list it keeps must be pamlib.errors' own."""
    import pamlib.errors

    from_errors = {name for name, module in pamlib._LAZY.items() if module == "pamlib.errors"}
    assert from_errors == set(pamlib.errors.__all__)
    assert from_errors <= set(pamlib.__all__)
