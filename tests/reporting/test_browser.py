"""Open the HTML report in headless Chromium: it renders, and its DOM numbers equal the JSON."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.browser import chromium as browser
from tests.browser import find_chromium, static_server
from tests.conftest import ROOT

from pamlib.reporting import ReportConfig, ScoredColumns, build_report, write_html, write_json

Row = dict[str, str]
MakeCohort = Callable[..., list[Row]]
Check = Callable[[str, Any], list[Any]]

WIDTH, HEIGHT = 1280, 1500
BASELINE_BLUE = (0x00, 0x72, 0xB2)
FOLLOWUP_ORANGE = (0xE6, 0x9F, 0x00)
BANNER_RED = (0xB3, 0x26, 0x1E)


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--virtual-time-budget=3000",  # let layout finish before the screenshot or dump
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


# -- a tiny PNG decoder (8-bit RGB/RGBA, not interlaced): zlib plus the five row filters ----------


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """``(width, height, bytes per pixel, rows)`` of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, bytearray()
    width = height = bpp = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8, "only 8-bit PNGs"
            assert colour in (2, 6), "only RGB or RGBA PNGs"
            assert interlace == 0, "only non-interlaced PNGs"
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    previous = bytearray(stride)
    rows: list[bytes] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((x + p) & 0xFF for x, p in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                if i >= bpp:
                    line[i] = (
                        line[i] + _paeth(line[i - bpp], previous[i], previous[i - bpp])
                    ) & 0xFF
                else:
                    line[i] = (line[i] + previous[i]) & 0xFF
        else:
            assert kind == 0, f"unknown PNG filter {kind}"
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, rows


def colours(rows: list[bytes], bpp: int) -> dict[tuple[int, ...], int]:
    counts: dict[tuple[int, ...], int] = {}
    for row in rows:
        for pixel in zip(row[0::bpp], row[1::bpp], row[2::bpp], strict=True):
            counts[pixel] = counts.get(pixel, 0) + 1
    return counts


def has_colour(counts: dict[tuple[int, ...], int], rgb: tuple[int, int, int], n: int = 50) -> bool:
    near = sum(c for p, c in counts.items() if all(abs(p[i] - rgb[i]) <= 3 for i in range(3)))
    return near >= n


def test_png_decoder_on_a_known_image() -> None:
    # 2×2 RGB, rows filtered with Sub and Paeth: red, green / blue, white.
    pixels = [bytes([255, 0, 0, 0, 255, 0]), bytes([0, 0, 255, 255, 255, 255])]
    sub = bytes([1, 255, 0, 0, (0 - 255) & 0xFF, 255, 0])
    second = bytearray([4])
    for i, value in enumerate(pixels[1]):
        a = pixels[1][i - 3] if i >= 3 else 0
        c = pixels[0][i - 3] if i >= 3 else 0
        second.append((value - _paeth(a, pixels[0][i], c)) & 0xFF)
    raw = zlib.compress(sub + bytes(second))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    assert decode_png(png) == (2, 2, 3, pixels)


@pytest.mark.slow
@pytest.mark.parametrize(("demo", "publish"), [(False, False), (True, True)])
def test_report_renders_in_chromium(
    tmp_path: Path,
    make_cohort: MakeCohort,
    check_page_against_json: Check,
    demo: bool,
    publish: bool,
) -> None:
    rows = make_cohort(seed=21, n_patients=400, demo=demo)
    report = build_report(
        ScoredColumns.from_rows(rows), ReportConfig(group_by="site", publish=publish)
    )
    page, summary_file = tmp_path / "report.html", tmp_path / "summary.json"
    write_html(report, page)
    write_json(report, summary_file)
    summary = json.loads(summary_file.read_text(encoding="utf-8"))

    screenshot = tmp_path / "report.png"
    run_chromium(
        tmp_path / "profile-shot",
        f"--screenshot={screenshot}",
        f"--window-size={WIDTH},{HEIGHT}",
        page.as_uri(),
    )
    width, height, bpp, pixels = decode_png(screenshot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    counts = colours(pixels, bpp)
    background = max(counts.values())
    assert len(counts) > 100, "the screenshot is (nearly) blank"
    assert background < 0.9 * width * height, "the screenshot is mostly one colour"
    assert has_colour(counts, BASELINE_BLUE), "no baseline bars drawn"
    assert has_colour(counts, FOLLOWUP_ORANGE), "no follow-up bars drawn"
    banner = colours(pixels[:40], bpp)
    assert has_colour(banner, BANNER_RED, n=WIDTH * 10) is demo, "demo banner iff demo"

    dom = run_chromium(tmp_path / "profile-dom", "--dump-dom", page.as_uri()).stdout
    figures = check_page_against_json(dom, summary)
    assert len(figures) > 300
    assert ('id="demo-watermark"' in dom) is demo
    if publish:
        assert any(f.value == "*" for f in figures)


# -- responsive layout and accessibility: 390 px and 1280 px, checked in the page ----------------

AXE_VERSION = "4.14.1"

#: Elements wider than the viewport, or poking past its edges, that no scroll container (or
#: clipping ancestor) holds: what a reader would have to pan the whole page to see.
OVERFLOWING = """(() => {
  const width = document.documentElement.clientWidth;
  const clipped = (e) => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      const x = getComputedStyle(a).overflowX;
      if (x === 'auto' || x === 'scroll' || x === 'hidden' || x === 'clip') return true;
    }
    return false;
  };
  const out = [];
  for (const e of document.body.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if ((r.right > width + 1 || r.left < -1) && !clipped(e)) {
      out.push(`${e.tagName.toLowerCase()}.${e.getAttribute('class') || ''}` +
               ` ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
  }
  return {width, scrollWidth: document.documentElement.scrollWidth, out: out.slice(0, 20)};
})()"""

#: The smallest rendered font size (CSS px) of any chart text the reader can see.
SMALLEST_CHART_TEXT = """(() => {
  let smallest = 1000;
  for (const t of document.querySelectorAll('svg.chart text')) {
    const r = t.getBoundingClientRect();
    if (r.width === 0 || getComputedStyle(t).display === 'none') continue;
    const svg = t.ownerSVGElement;
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    smallest = Math.min(smallest, parseFloat(getComputedStyle(t).fontSize) * scale);
  }
  return smallest;
})()"""


def axe_script() -> Path:
    configured = os.environ.get("PAMLIB_AXE_DIR")
    root = Path(configured) if configured else ROOT / ".cache" / "axe-core" / AXE_VERSION
    return root / "package" / "axe.min.js"


@pytest.mark.slow
def test_report_is_readable_and_accessible_at_390_and_1280_px(
    tmp_path: Path, make_cohort: MakeCohort
) -> None:
    """A demo report grouped by site and published (banner, watermark, funnel, trends, stars):
    nothing wider than the viewport outside a scroll container, chart text at least ~11 px,
    and no serious or critical axe-core violation; axe's findings are printed."""
    axe = axe_script()
    if not axe.is_file():
        pytest.skip(
            f"axe-core {AXE_VERSION} is not in .cache/axe-core "
            "(scripts/install-test-deps.sh could not fetch it with npm)"
        )
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (scripts/install-test-deps.sh could not install it)")
    pytest.importorskip("websockets", reason="the websockets package drives Chromium")

    site = tmp_path / "site"
    site.mkdir()
    rows = make_cohort(seed=21, n_patients=400, demo=True)
    report = build_report(
        ScoredColumns.from_rows(rows), ReportConfig(group_by="site", publish=True)
    )
    write_html(report, site / "report.html")
    failures: list[str] = []
    with static_server(site) as url, browser(executable, tmp_path / "profile") as page:
        page.call("Page.enable")
        for width in (390, 1280):
            page.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=900,
                deviceScaleFactor=1,
                mobile=width < 600,
            )
            page.call("Page.navigate", url=f"{url}/report.html")
            page.wait_for(
                "document.readyState === 'complete' && !!document.querySelector('footer')"
            )
            layout = page.evaluate(OVERFLOWING)
            smallest = page.evaluate(SMALLEST_CHART_TEXT)
            page.evaluate(axe.read_text(encoding="utf-8") + "\n;true")
            results = page.evaluate(
                "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
                "v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length, "
                "targets: v.nodes.slice(0, 5).map(n => n.target.join(' '))})))",
                timeout=60,
            )
            print(f"\naxe-core {AXE_VERSION} at {width} px: {json.dumps(results, indent=1)}")
            print(f"layout at {width} px: {layout}; smallest chart text {smallest:.1f} px")
            if layout["out"] or layout["scrollWidth"] > layout["width"]:
                failures.append(f"{width} px: wider than the viewport: {layout}")
            if smallest < 10.5:
                failures.append(f"{width} px: chart text {smallest:.1f} px")
            serious = [v for v in results if v["impact"] in ("serious", "critical")]
            if serious:
                failures.append(f"{width} px: axe-core: {serious}")
    assert not failures, "\n".join(failures)
