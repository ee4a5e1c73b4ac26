"""Sphinx configuration for pamlib's documentation."""

from __future__ import annotations

import importlib.metadata

project = "pamlib"
author = "pamlib contributors"
copyright = "pamlib contributors"
release = importlib.metadata.version("pamlib")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
nitpicky = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
# No intersphinx: the build must work offline, with warnings as errors.
html_theme = "furo"
# Published beside the pages, so the schema's $id resolves.
html_extra_path = ["calibration.schema.json"]
html_title = f"pamlib {release}"
