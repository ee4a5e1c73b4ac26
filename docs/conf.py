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


# -- Report images: made by the build from synthetic data, never committed ----------------------

#: The charts shown in reporting.rst: (report, the start of the chart's title, file name).
_REPORT_CHARTS = (
    ("demo", "Patients by activation level", "demo-levels.svg"),
    ("demo", "Mean change in score", "demo-change.svg"),
    ("site", "Share improving by site", "site-funnel.svg"),
    ("site", "Mean score by calendar quarter", "site-trends.svg"),
)


def _report_images(app: object) -> None:
    """Build the demo report and a report grouped by site from a synthetic cohort (demo
    scores), and write both pages and some of their charts (standalone SVG) into
    ``_build/report-images`` for reporting.rst to show. Offline, and a second or two."""
    import re
    import tempfile
    from pathlib import Path

    from pamlib.cli.demo import DEMO_PROVIDER, write_cohort
    from pamlib.pipeline import TableScorer
    from pamlib.reporting import ReportConfig, build_report, charts, render_html
    from pamlib.synthetic import synthetic_cohort

    out = Path(__file__).parent / "_build" / "report-images"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "synthetic-cohort.csv"
        write_cohort(synthetic_cohort(400, seed=2016), source, 2016)
        scored = TableScorer(provider=DEMO_PROVIDER).score_source(source).scored
    pages = {
        "demo": render_html(build_report(scored)),
        "site": render_html(build_report(scored, ReportConfig(group_by="site"))),
    }
    for name, page in pages.items():
        (out / f"{name}-report.html").write_text(page, encoding="utf-8")
    if not charts.available():
        raise RuntimeError("the docs show the report's charts: install pamlib[report]")
    for name, title, file in _REPORT_CHARTS:
        found = re.findall(r'<svg class="chart.*?</svg>', pages[name], re.S)
        svg = next(s for s in found if re.search(f"<title[^>]*>{re.escape(title)}", s))
        # Standalone: the namespaces an inline SVG does without, and a white page.
        svg = svg.replace(
            "<svg ",
            '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ',
            1,
        )
        (out / file).write_text(svg, encoding="utf-8")


def setup(app: object) -> None:
    app.connect("builder-inited", _report_images)  # type: ignore[attr-defined]
