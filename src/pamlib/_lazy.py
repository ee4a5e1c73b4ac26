"""Names that a package exports but imports only on first use, so ``import pamlib`` stays cheap."""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing stays unimported at run time; mypy reads the name as true
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping
    from typing import Any


def lazy_exports(
    package: str, namespace: MutableMapping[str, Any], table: Mapping[str, str], names: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``.

    ``table`` maps an exported name to the module defining it: a full module name, or one
    relative to ``package``. A name is imported on first access and then cached in
    ``namespace`` (the package's ``globals()``); ``names`` is the package's ``__all__``.
    """

    def module_getattr(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = module if module.startswith("pamlib") else f"{package}.{module}"
        value = getattr(importlib.import_module(full), name)
        namespace[name] = value
        return value

    def module_dir() -> list[str]:
        return sorted(names)

    return module_getattr, module_dir
