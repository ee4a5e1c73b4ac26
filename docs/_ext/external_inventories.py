"""Intersphinx inventories for Python, NumPy and pyarrow, written at build time.

The documentation builds offline with warnings as errors, so it cannot fetch the projects'
``objects.inv``. The names pamlib's reference mentions are few: they are listed here with the
pages their own documentation publishes them on, and written as local inventories that
``sphinx.ext.intersphinx`` reads like downloaded ones. A name missing here stays plain text.
"""

from __future__ import annotations

import zlib
from pathlib import Path

PYTHON = "https://docs.python.org/3/"
NUMPY = "https://numpy.org/doc/stable/"
PYARROW = "https://arrow.apache.org/docs/"

_BUILTIN_TYPES = ("str", "int", "float", "bool", "bytes", "list", "dict", "tuple", "set")
_SCALARS = ("bool", "int8", "int16", "int32", "int64", "uint8", "float64", "str_", "object_")

#: (name, role, page) for each project; the anchor is the name unless the page says otherwise.
_OBJECTS: dict[str, list[tuple[str, str, str]]] = {
    PYTHON: [
        *((name, "class", "library/stdtypes.html") for name in _BUILTIN_TYPES),
        ("frozenset", "class", "library/stdtypes.html"),
        ("object", "class", "library/functions.html"),
        ("None", "data", "library/constants.html"),
        *(
            (f"collections.abc.{name}", "class", "library/collections.abc.html")
            for name in (
                "Callable",
                "Collection",
                "Generator",
                "Iterable",
                "Iterator",
                "Mapping",
                "Sequence",
            )
        ),
        ("csv", "module", "library/csv.html"),
        ("csv.DictReader", "class", "library/csv.html"),
        ("csv.writer", "function", "library/csv.html"),
        ("datetime.date", "class", "library/datetime.html"),
        ("datetime.datetime", "class", "library/datetime.html"),
        ("json.dumps", "function", "library/json.html"),
        ("os.PathLike", "class", "library/os.html"),
        ("pathlib.Path", "class", "library/pathlib.html"),
        ("uuid.UUID", "class", "library/uuid.html"),
    ],
    NUMPY: [
        ("numpy.ndarray", "class", "reference/generated/numpy.ndarray.html"),
        ("numpy.dtype", "class", "reference/generated/numpy.dtype.html"),
        ("numpy.datetime64", "class", "reference/arrays.scalars.html"),
        *((f"numpy.{name}", "class", "reference/arrays.scalars.html") for name in _SCALARS),
        ("numpy.typing.NDArray", "data", "reference/typing.html"),
        ("numpy.typing.ArrayLike", "data", "reference/typing.html"),
    ],
    PYARROW: [
        *(
            (f"pyarrow.{name}", "class", f"python/generated/pyarrow.{name}.html")
            for name in ("Table", "RecordBatch", "Schema", "ChunkedArray", "Array")
        ),
        ("pyarrow.Table.from_pylist", "method", "python/generated/pyarrow.Table.html"),
    ],
}

_NAMES = {PYTHON: ("Python", "3"), NUMPY: ("NumPy", "stable"), PYARROW: ("Apache Arrow", "")}


def _inventory(base: str) -> bytes:
    project, version = _NAMES[base]
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    lines = [
        f"{name} py:{role} 1 {page}#{'module-' + name if role == 'module' else name} -\n"
        for name, role, page in _OBJECTS[base]
    ]
    return header.encode() + zlib.compress("".join(lines).encode())


def write_inventories(directory: Path) -> dict[str, tuple[str, str]]:
    """Write the inventories into ``directory``; return ``intersphinx_mapping`` for them."""
    directory.mkdir(parents=True, exist_ok=True)
    mapping: dict[str, tuple[str, str]] = {}
    for key, base in (("python", PYTHON), ("numpy", NUMPY), ("pyarrow", PYARROW)):
        path = directory / f"{key}.inv"
        data = _inventory(base)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        mapping[key] = (base, str(path))
    return mapping
