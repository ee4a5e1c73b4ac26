"""Show attrs classes' defaults as values in the API reference.

attrs writes each class's ``__init__`` at run time, so with ``autodoc_preserve_defaults`` the
signature shows the generated source (``attr_dict['x'].default``) instead of the default itself.
This rebuilds the signature of every attrs class from its fields.
"""

from __future__ import annotations

from typing import Any

import attrs
from sphinx.application import Sphinx

_EMPTY_FACTORIES: dict[Any, str] = {
    list: "[]",
    dict: "{}",
    set: "set()",
    tuple: "()",
    frozenset: "frozenset()",
}


def _default(field: attrs.Attribute) -> str | None:
    default = field.default
    if default is attrs.NOTHING:
        return None
    if isinstance(default, attrs.Factory):
        factory = default.factory
        if factory in _EMPTY_FACTORIES:
            return _EMPTY_FACTORIES[factory]
        return f"{getattr(factory, '__name__', 'factory')}()"
    return repr(default)


def _signature(cls: type) -> str:
    positional: list[str] = []
    keyword: list[str] = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        name = field.alias or field.name.lstrip("_")
        default = _default(field)
        text = name if default is None else f"{name}={default}"
        (keyword if field.kw_only else positional).append(text)
    if keyword:
        positional.append("*")
    return "(" + ", ".join(positional + keyword) + ")"


def process_signature(  # noqa: PLR0917 -- the signature Sphinx calls it with
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None] | None:
    if what != "class" or not isinstance(obj, type) or not attrs.has(obj):
        return None
    if "__init__" not in vars(obj) or signature is None:
        return None  # a hand-written or inherited constructor documents itself
    return _signature(obj), return_annotation


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-signature", process_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
