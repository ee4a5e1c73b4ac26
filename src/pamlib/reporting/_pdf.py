"""The cohort report as PDF for board papers: the same HTML page, laid out for A4 by WeasyPrint.

WeasyPrint (the ``pdf`` extra) and the Pango library it needs are loaded only when a PDF is
made; without them :class:`PdfUnavailableError` says what to install. The PDF carries the same
figures and charts as the HTML report; its print stylesheet puts the report's title and page
numbers on every page and, when demonstration scores are present, the DEMO marking too; scores
that are not the PAM for another reason (an unlicensed provider, raw totals) put their NOT PAM
marking there instead.
"""

from __future__ import annotations

import logging
import os
from typing import IO, TYPE_CHECKING

from pamlib.errors import ConfigurationError

if TYPE_CHECKING:
    from pamlib.reporting._report import CohortReport


class PdfUnavailableError(ConfigurationError):
    """PDF output needs WeasyPrint (``pip install 'pamlib[pdf]'``) and its system libraries."""


def _weasyprint_html() -> type:
    try:
        from weasyprint import HTML
    except ImportError:
        raise PdfUnavailableError(
            "PDF output needs WeasyPrint: pip install 'pamlib[pdf]'"
        ) from None
    except OSError as exc:  # WeasyPrint is there, Pango or its friends are not
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PdfUnavailableError(
            "PDF output needs the Pango library that WeasyPrint uses (on Debian or Ubuntu: "
            f"apt-get install libpango-1.0-0 libpangoft2-1.0-0); WeasyPrint said: {first}"
        ) from None
    html: type = HTML
    return html


def check_available() -> None:
    """Raise :class:`PdfUnavailableError` now, before any work, if no PDF can be made."""
    _weasyprint_html()


def render_pdf(report: CohortReport) -> bytes:
    """The report as the bytes of a PDF document."""
    from pamlib.reporting._html import render_html

    html = _weasyprint_html()
    page = render_html(report)
    # WeasyPrint logs each SVG presentation property of the charts' inline styles as an
    # unknown CSS property, though its SVG renderer applies them: quiet while it works.
    log = logging.getLogger("weasyprint")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        document: bytes = html(string=page).write_pdf()
    finally:
        log.setLevel(level)
    return document


def write_pdf(report: CohortReport, target: str | os.PathLike[str] | IO[bytes]) -> None:
    """Write the PDF report: to a file through a temporary file renamed over the final name
    once complete (an error leaves no partial PDF and any old file untouched), or to a binary
    stream."""
    from pamlib.formats.guard import AtomicTarget

    document = render_pdf(report)
    out = AtomicTarget(target)
    try:
        out.stream.write(document)
        out.commit()
    except BaseException:
        out.discard()
        raise
