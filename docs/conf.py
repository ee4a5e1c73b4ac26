"""Sphinx configuration for pamlib's documentation."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

from external_inventories import write_inventories

project = "pamlib"
author = "pamlib contributors"
copyright = "pamlib contributors"
release = importlib.metadata.version("pamlib")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "myst_parser",
    "attrs_signatures",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
nitpicky = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
# The build runs offline with warnings as errors: the inventories for Python, NumPy and pyarrow
# are written locally from the names the reference mentions (docs/_ext/external_inventories.py).
intersphinx_mapping = write_inventories(Path(__file__).parent / "_build" / "_inventories")
intersphinx_disabled_reftypes = ["std:doc"]
html_theme = "furo"
# Published beside the pages, so the schema's $id resolves.
html_extra_path = ["calibration.schema.json"]
html_title = f"pamlib {release}"
