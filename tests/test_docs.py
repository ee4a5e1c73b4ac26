"""The documentation stays in step with the code."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import tomllib

from pamlib import hookspecs
from pamlib.testing import FormatConformance, ProviderConformance, RulesConformance
from tests.conftest import ROOT

DOCS = ROOT / "docs"


def hook_names() -> set[str]:
    return {
        name
        for name, obj in vars(hookspecs).items()
        if name.startswith("pamlib_") and inspect.isfunction(obj)
    }


def test_every_hook_is_in_the_reference() -> None:
    text = (DOCS / "hooks.rst").read_text(encoding="utf-8")
    documented = set(re.findall(r"autofunction:: pamlib\.hookspecs\.(\w+)", text))
    assert documented == hook_names()


def test_every_hook_has_a_docstring_and_annotations() -> None:
    for name in hook_names():
        func = getattr(hookspecs, name)
        assert func.__doc__, name
        assert len(func.__doc__.strip()) > 40, name
        assert "return" in func.__annotations__, name


def test_import_is_cheap() -> None:
    """``import pamlib`` must not pull in NumPy, cattrs or pyarrow (they load on first use)."""
    code = "import sys, pamlib; print(sorted({'numpy', 'cattrs', 'pyarrow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pyarrow_is_a_core_dependency_and_the_arrow_extra_still_resolves() -> None:
    """CSV, tables and Parquet are read as Arrow columns, so pyarrow is always installed; the
    old ``arrow`` extra stays, empty, so ``pip install 'pamlib[arrow]'`` keeps working."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(re.match(r"pyarrow\b", d) for d in project["dependencies"])
    assert project["optional-dependencies"]["arrow"] == []


def test_every_conformance_test_is_documented() -> None:
    """docs/testing.rst lists what each inherited test checks; a new test needs a line there."""
    text = (DOCS / "testing.rst").read_text(encoding="utf-8")
    for kit in (ProviderConformance, RulesConformance, FormatConformance):
        tests = {name for name in dir(kit) if name.startswith("test_")}
        assert tests
        missing = {name for name in tests if f"``{name}``" not in text}
        assert not missing, f"{kit.__name__}: {sorted(missing)}"


def test_the_guides_are_in_the_table_of_contents() -> None:
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    for guide in sorted(DOCS.glob("guide-*.rst")):
        assert f"\n   {guide.stem}\n" in index, guide.name


IMPLEMENTATION_MODULES = {
    "pamlib.formats._columnar",
    "pamlib.formats._records",
    "pamlib.scoring._selection",
    "pamlib.scoring._engine",
}


def test_the_api_reference_documents_only_what_is_public() -> None:
    """Implementation modules stay out of the reference, which the compatibility page binds."""
    text = "".join(p.read_text(encoding="utf-8") for p in sorted((DOCS / "api").glob("*.rst")))
    documented = set(re.findall(r"auto(?:module|function|class):: ([\w.]+)", text))
    assert documented
    assert not {name for name in documented for m in IMPLEMENTATION_MODULES if name.startswith(m)}
    import importlib

    for name in sorted(documented):
        module, _, attr = name.rpartition(".")
        try:
            importlib.import_module(name)
        except ImportError:
            assert hasattr(importlib.import_module(module), attr), name


def test_the_package_root_exports_the_verbs() -> None:
    import pamlib

    verbs = {"score", "score_many", "score_table", "score_file", "tailor", "build_report"}
    assert verbs | {"read_fhir", "write_fhir"} <= set(pamlib.__all__)
    for name in pamlib.__all__:
        assert getattr(pamlib, name) is not None, name
