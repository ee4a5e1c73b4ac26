"""Open the HTML report in headless Chromium: it renders, and its DOM numbers equal the JSON."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pamlib.reporting import ReportConfig, ScoredColumns, build_report, write_html, write_json

Row = dict[str, str]
MakeCohort = Callable[..., list[Row]]
Check = Callable[[str, Any], list[Any]]

WIDTH, HEIGHT = 1280, 1500
BASELINE_BLUE = (0x3B, 0x6E, 0xA8)
FOLLOWUP_ORANGE = (0xE0, 0x7B, 0x1A)
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
