"""Old import paths of modules that became private, kept working for a deprecation period.

pamlib 0.2 renamed its implementation modules with a leading underscore, so that a module's name
says whether it is public. Code that imported one by its old name keeps working until pamlib 0.3:
a finder, consulted only after the normal ones have found nothing, hands out the module under its
new name and warns once, naming the public place to import from instead. No file remains at an old
path, and the finder costs nothing unless an old name is imported.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings

# typing stays out of start-up (see pamlib/__init__.py): mypy reads TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType
    from typing import Any, Final

REMOVED_IN: Final = "0.3"

#: Old module name → (new, private module name; where its public names are now).
MOVED: Final[dict[str, tuple[str, str]]] = {
    "pamlib.formats.columnar": ("pamlib.formats._columnar", "pamlib.score_file or pamlib.formats"),
    "pamlib.formats.records": ("pamlib.formats._records", "pamlib.formats.delimited"),
    "pamlib.scoring.selection": (
        "pamlib.scoring._selection",
        "pamlib.scoring (select_provider) or pamlib.errors (ProviderResultError)",
    ),
    "pamlib.scoring.engine": (
        "pamlib.scoring._engine",
        "pamlib.scoring.rasch or pamlib.errors (LicensedContentError)",
    ),
    "pamlib.tailoring.conditions": ("pamlib.tailoring._conditions", "pamlib.tailoring"),
    "pamlib.tailoring.demo": ("pamlib.tailoring._demo", "pamlib.tailoring"),
    "pamlib.fhir.bundle": ("pamlib.fhir._bundle", "pamlib.fhir"),
    "pamlib.fhir.checks": ("pamlib.fhir._checks", "pamlib.fhir"),
    "pamlib.fhir.patient": ("pamlib.fhir._patient", "pamlib.fhir"),
    "pamlib.fhir.questionnaires": ("pamlib.fhir._questionnaires", "pamlib.fhir"),
    "pamlib.fhir.reader": ("pamlib.fhir._reader", "pamlib.fhir"),
    "pamlib.fhir.response": ("pamlib.fhir._response", "pamlib.fhir"),
    "pamlib.months": ("pamlib._months", "pamlib.tailoring (add_months)"),
    **{
        f"pamlib.reporting.{name}": (f"pamlib.reporting._{name}", "pamlib.reporting")
        for name in (
            "charts",
            "columns",
            "comparison",
            "config",
            "context",
            "headlines",
            "html",
            "measures",
            "pdf",
            "privacy",
            "report",
            "summary",
            "suppression",
            "trajectories",
        )
    },
}


class _Alias:
    """Loads an old name as the module now living under the new one (the same object).

    (A loader and a finder by protocol: subclassing ``importlib.abc`` would import more at
    start-up.)
    """

    def __init__(self, new: str) -> None:
        self.new = new
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        from pamlib.errors import PamlibDeprecationWarning  # attrs: not at start-up

        old = spec.name
        _, public = MOVED[old]
        warnings.warn(
            f"{old} is now private ({self.new}) and will be gone in pamlib {REMOVED_IN}; "
            f"import from {public} instead",
            PamlibDeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run (the module ran under its new name); give back its own spec, which
        the import system has just replaced with the old name's."""
        module.__spec__ = self.spec


class _MovedFinder:
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        moved = MOVED.get(fullname)
        if moved is None:
            return None
        loader: Any = _Alias(moved[0])  # a loader by protocol, not by inheritance
        return importlib.machinery.ModuleSpec(fullname, loader)


def install() -> None:
    """Put the finder last on :data:`sys.meta_path` (once): only names nothing else finds."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
