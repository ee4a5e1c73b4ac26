"""Write docs/calibration.schema.json from the loader's definitions (a test fails if it drifts).

Run from the repository root: ``.venv/bin/python scripts/write-calibration-schema.py``.
"""

import json
from pathlib import Path

from pamlib.scoring.calibration import calibration_json_schema

TARGET = Path(__file__).resolve().parent.parent / "docs" / "calibration.schema.json"

if __name__ == "__main__":
    text = json.dumps(calibration_json_schema(), indent=2, ensure_ascii=False) + "\n"
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.name}")
