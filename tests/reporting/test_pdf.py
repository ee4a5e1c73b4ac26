"""The PDF report: pages drawn and not blank, the title and (for demo scores) the DEMO marking
on every page, the same figures as the HTML, written atomically, and a clear error without the
pdf extra."""

from __future__ import annotations

import html
import io
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.reporting.conftest import MakeCohort
from tests.reporting.pdf_pages import ink_shares, page_texts, require_pdf, visible_text
from tests.reporting.test_cli_report import write_rows

from pamlib.cli import main
from pamlib.reporting import (
    PdfUnavailableError,
    ReportConfig,
    ScoredColumns,
    build_report,
    render_html,
    render_pdf,
    write_pdf,
)

DEMO_TEXT = "DEMONSTRATION SCORES — NOT THE PATIENT ACTIVATION MEASURE"


def _report(make_cohort: MakeCohort, *, demo: bool, publish: bool = True) -> Any:
    rows = make_cohort(seed=12, n_patients=90, demo=demo)
    return build_report(
        ScoredColumns.from_rows(rows), ReportConfig(group_by="site", publish=publish)
    )


def test_demo_pages_are_drawn_and_each_carries_the_title_and_the_demo_marking(
    make_cohort: MakeCohort,
) -> None:
    require_pdf()
    document = render_pdf(_report(make_cohort, demo=True))
    assert document.startswith(b"%PDF-")
    texts, inks = page_texts(document), ink_shares(document)
    assert len(texts) >= 2
    for number, (text, ink) in enumerate(zip(texts, inks, strict=True), 1):
        assert ink > 0.01, f"page {number} is blank"
        assert "PAM cohort report — DEMO" in text, number
        assert "DEMO — NOT PAM" in text, number
        assert DEMO_TEXT in text, number
        assert f"Page {number} of {len(texts)}" in text


def test_the_pdf_shows_the_html_report(make_cohort: MakeCohort) -> None:
    require_pdf()
    report = _report(make_cohort, demo=False, publish=False)
    page = render_html(report)
    text = " ".join(page_texts(render_pdf(report)))
    assert "DEMO" not in text
    assert "PAM cohort report" in text
    shown = visible_text(page)
    # The same figures: every caption and chart label of the page, in the page's order.
    for caption in re.findall(r"<caption>(.*?)</caption>", page):
        assert " ".join(html.unescape(re.sub(r"<[^>]+>", "", caption)).split()) in text
    for label in ("% of patients", "mean score", "% improving", "eligible patients"):
        assert label in shown
        assert label in text
    assert "Cohort: " in text
    cohort = re.search(r"Cohort: (\d+) of (\d+) eligible improved \(([\d.]+) %\)", shown)
    assert cohort is not None
    assert cohort.group(0) in text


def test_write_pdf_replaces_a_file_only_when_complete(
    make_cohort: MakeCohort, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_pdf()
    report = _report(make_cohort, demo=False)
    target = tmp_path / "report.pdf"
    target.write_bytes(b"old")

    def broken(report: Any) -> bytes:
        raise PdfUnavailableError("no PDF today")

    monkeypatch.setattr("pamlib.reporting._pdf.render_pdf", broken)
    with pytest.raises(PdfUnavailableError):
        write_pdf(report, target)
    assert target.read_bytes() == b"old"
    monkeypatch.undo()
    write_pdf(report, target)
    assert target.read_bytes().startswith(b"%PDF-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]  # no temporary left
    stream = io.BytesIO()
    write_pdf(report, stream)
    assert stream.getvalue().startswith(b"%PDF-")


def test_cli_writes_the_pdf(
    tmp_path: Path, make_cohort: MakeCohort, capsys: pytest.CaptureFixture[str]
) -> None:
    require_pdf()
    scored, html, pdf = tmp_path / "scored.csv", tmp_path / "r.html", tmp_path / "r.pdf"
    write_rows(scored, make_cohort(n_patients=60, demo=True))
    assert main(["report", str(scored), "-o", str(html), "--pdf", str(pdf), "--publish"]) == 0
    assert "PDF: " in capsys.readouterr().err
    texts = page_texts(pdf.read_bytes())
    assert all("DEMO — NOT PAM" in t for t in texts)


def test_cli_without_weasyprint_says_what_to_install(
    tmp_path: Path,
    make_cohort: MakeCohort,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import weasyprint fails
    scored, html, pdf = tmp_path / "scored.csv", tmp_path / "r.html", tmp_path / "r.pdf"
    write_rows(scored, make_cohort(n_patients=20))
    assert main(["report", str(scored), "-o", str(html), "--pdf", str(pdf)]) == 1
    err = capsys.readouterr().err
    assert "pip install 'pamlib[pdf]'" in err
    assert "Traceback" not in err
    assert not html.exists()
    assert not pdf.exists()


def test_missing_system_libraries_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pango(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pango)
    from pamlib.reporting._pdf import check_available

    with pytest.raises(PdfUnavailableError, match="Pango library"):
        check_available()
