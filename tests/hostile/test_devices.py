"""Output to a device or a pipe: ``-o /dev/stdout`` when standard output is a pipe, and
``-o /dev/null``. The first failed (its link names ``pipe:[N]``, no path); both put the
default rejects file beside the device, a new file in ``/dev``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/dev/stdout").exists(), reason="no /dev/stdout on this system"
)

ITEMS = [f"q{k:02d}" for k in range(1, 14)]


def _export(folder: Path) -> Path:
    lines = [",".join(["patient_id", "assessment_id", "assessed_on", "instrument", *ITEMS])]
    lines += [",".join([f"P{i}", f"A{i}", "2024-03-01", "PAM-13", *["2"] * 13]) for i in range(3)]
    lines.append(",".join(["P9", "A9", "not a date", "PAM-13", *["2"] * 13]))
    path = folder / "export.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("device", ["/dev/stdout", "/dev/null"])
def test_output_to_a_device_writes_through_and_rejects_go_beside_the_input_name(
    device: str, tmp_path: Path
) -> None:
    export = _export(tmp_path)
    before = set(Path("/dev").iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "pamlib", "score", str(export), "--provider", "demo", "-o", device],
        cwd=tmp_path,
        capture_output=True,  # standard output is a pipe
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    if device == "/dev/stdout":
        assert done.stdout.splitlines()[0].startswith("assessment_id,")
        assert len(done.stdout.splitlines()) == 4  # the header and three scored rows
    assert set(Path("/dev").iterdir()) == before, "nothing new in /dev"
    rejects = tmp_path / "export.rejects.csv"
    assert rejects.read_text(encoding="utf-8").count("\n") == 2
