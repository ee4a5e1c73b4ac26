"""``pamlib demo --output-dir DIR`` replaced a user's own ``scored.csv`` (or ``report.html``…)
in DIR without a word: the demo's file names are not the user's choice, so it now replaces only
files a demo wrote (its folder carries a marker), and refuses any other, writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pamlib.cli import main
from pamlib.cli.demo import DEMO_FILES, MARKER


def _demo(folder: Path) -> int:
    return main(["demo", "--patients", "20", "--output-dir", str(folder)])


@pytest.mark.parametrize("name", DEMO_FILES)
def test_a_file_the_demo_did_not_write_is_never_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], process_host: object, name: str
) -> None:
    (tmp_path / name).write_text("precious\n", encoding="utf-8")
    assert _demo(tmp_path) == 2
    assert f"holds {name}, which pamlib demo did not write" in capsys.readouterr().err
    assert (tmp_path / name).read_text(encoding="utf-8") == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing else written


def test_a_link_of_the_demo_s_names_is_refused_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], process_host: object
) -> None:
    elsewhere = tmp_path / "mine.html"
    elsewhere.write_text("mine\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").symlink_to(elsewhere)
    (out / MARKER).symlink_to(elsewhere)  # a marker that is a link claims nothing
    assert _demo(out) == 2
    assert elsewhere.read_text(encoding="utf-8") == "mine\n"
    capsys.readouterr()


def test_the_demo_writes_its_own_folder_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], process_host: object
) -> None:
    out = tmp_path / "demo"
    assert _demo(out) == 0
    first = (out / "scored.csv").read_bytes()
    assert (out / MARKER).is_file()
    assert _demo(out) == 0  # the same seed: the same rows, written over the demo's own
    assert (out / "scored.csv").read_bytes() == first
    # a run stopped before its files were written leaves the folder the demo's
    for name in DEMO_FILES[1:]:
        (out / name).unlink()
    assert _demo(out) == 0
    capsys.readouterr()


def test_a_file_as_the_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], process_host: object
) -> None:
    (tmp_path / "out").write_text("x", encoding="utf-8")
    assert _demo(tmp_path / "out") == 2
    assert "is a file, not a folder" in capsys.readouterr().err
