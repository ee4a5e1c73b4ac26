"""Reading a PDF report back: each page's text (pdfium) and whether its image is blank."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from pamlib.reporting._pdf import PdfUnavailableError, check_available


def require_pdf() -> None:
    """Skip unless WeasyPrint (with Pango) and pypdfium2 are installed."""
    pytest.importorskip("pypdfium2", reason="pypdfium2 turns PDF pages into images")
    try:
        check_available()
    except PdfUnavailableError as exc:
        pytest.skip(str(exc))


def page_texts(document: bytes) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(document)
    try:
        return [" ".join(page.get_textpage().get_text_range().split()) for page in pdf]
    finally:
        pdf.close()


def level_texts(document: bytes) -> list[str]:
    """Each page's text with its turned characters (chart labels written upright or slanted)
    left out: pdfium reads those in an order of its own, splitting and joining numbers."""
    import math

    import pypdfium2 as pdfium
    from pypdfium2 import raw

    pdf = pdfium.PdfDocument(document)
    try:
        texts = []
        for page in pdf:
            textpage = page.get_textpage()
            chars = []
            for i in range(textpage.count_chars()):
                code = raw.FPDFText_GetUnicode(textpage.raw, i)
                angle = raw.FPDFText_GetCharAngle(textpage.raw, i)
                turned = angle > 0 and abs(math.sin(angle)) > 0.05
                chars.append(" " if turned or code < 32 else chr(code))
            texts.append(" ".join("".join(chars).split()))
        return texts
    finally:
        pdf.close()


def ink_shares(document: bytes) -> list[float]:
    """The share of each page's pixels that are not white, drawn at 36 dpi."""
    import numpy as np
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(document)
    try:
        shares = []
        for page in pdf:
            pixels = page.render(scale=0.5, grayscale=True).to_numpy()
            shares.append(float(np.mean(pixels < 235)))
        return shares
    finally:
        pdf.close()


_INLINE = {"span", "code", "strong", "em", "b", "i", "a"}


class _VisibleText(HTMLParser):
    """The text a reader sees in the HTML report: no styles, tooltips, chart descriptions or
    the (decorative, unprinted) watermark."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        hidden = tag in ("style", "title", "desc") or ("aria-hidden", "true") in attrs
        if self.skip or hidden:
            self.skip.append(tag)
        elif tag not in _INLINE:  # a new box: its text does not run into the last one's
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self.skip and self.skip[-1] == tag:
            self.skip.pop()

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _VisibleText()
    parser.feed(page.split("<body>", 1)[1])
    return " ".join("".join(parser.parts).split())


def standalone_numbers(text: str) -> list[str]:
    """Whole numbers standing alone: not part of a date, decimal or id, nor the name of a level
    or the page number, which say no count."""
    text = re.sub(r"Page \d+ of \d+|Level \d", " ", text)
    return re.findall(r"(?<![\w.,/:-])\d+(?![\w.,/:-]|\.\d)", text)
