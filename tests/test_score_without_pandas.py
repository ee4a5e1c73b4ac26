"""``pamlib score`` never imports pandas: pyarrow's own conversions of Python lists and NumPy
arrays do, wherever pandas is installed, and that costs a third of a second a run.

A messy export takes the paths a clean one does not (rejects, slashed dates, NHS numbers with
spaces, rows without a patient id, a short row); each output format is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pandas", reason="pandas is not installed: nothing could import it")

_HEADER = "assessment_id,patient_id,nhs_number,assessed_on,instrument," + ",".join(
    f"q{k:02d}" for k in range(1, 14)
)
_ROWS = [
    "a1,p1,943 476 5919,01/03/2025,PAM-13," + ",".join(["3"] * 13),
    "a2,,9434765919,2025-03-02,PAM-13," + ",".join(["3"] * 12 + ["4"]),
    "a3,p3,,31/02/2025,PAM-13," + ",".join(["3"] * 13),
    "a3,p4,,2025-03-04,PAM-13," + ",".join(["3"] * 13),
    "a5,p5,123,2025-03-05,PAM-13,9,x," + ",".join(["3"] * 11),
    "a6,p6,,2025-03-06,PAM-13,agree,strongly agree,n/a,," + ",".join(["3"] * 9),
    "a7,p7,,2025-03-07,PAM-99," + ",".join(["3"] * 13),
    "a8,=p8,,2025-03-08,PAM-13,3,3",
]

_RUN = """
import json, sys
from pamlib.cli import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "pandas": "pandas" in sys.modules}), file=sys.stderr)
"""


@pytest.mark.parametrize("output", ["out.csv", "out.parquet", "out.jsonl"])
def test_scoring_a_messy_export_does_not_import_pandas(tmp_path: Path, output: str) -> None:
    (tmp_path / "in.csv").write_text("\n".join([_HEADER, *_ROWS]) + "\n", encoding="utf-8")
    argv = ["score", "in.csv", "--provider", "demo", "-o", output, "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["status"] == 0, done.stderr
    assert "rejected 5" in done.stderr
    assert report["pandas"] is False
