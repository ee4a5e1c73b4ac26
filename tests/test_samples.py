"""The project's own sample exports: made by their script, synthetic, shaped like real ones."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pamlib.identity import is_valid_nhs_number
from tests.conftest import SAMPLE_DATA
from tests.data.make_samples import FILES, make


def test_the_samples_are_what_their_script_makes(tmp_path: Path) -> None:
    """The files checked in are the script's output, byte for byte: anyone can remake them."""
    made = make(tmp_path)
    assert sorted(made) == sorted(FILES)
    for name, data in made.items():
        assert (SAMPLE_DATA / name).read_bytes() == data, name


def test_the_site_export_looks_like_a_spreadsheet_save() -> None:
    data = (SAMPLE_DATA / "site-export-semicolon.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfNHS Number;Date Completed;")
    assert data.endswith(b"\r\n")
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    header, body = rows[0], rows[1:]
    assert header[4:17] == [f"Q{i}" for i in range(1, 14)]
    assert len(body) == 70
    numbers = [row[0] for row in body]
    assert all(" " in n for n in numbers)  # written with spaces, as people type them
    assert [n for n in numbers if not is_valid_nhs_number(n)] == [body[10][0]]  # line 13 only
    answers = {a for row in body for a in row[4:17]}
    assert {"Agree Strongly", "Disagree", "N/A", "n/a", "Not applicable", "", "4"} <= answers


def test_the_samples_carry_no_item_wording() -> None:
    """Items are numbered, never worded: the item text of the form is licensed."""
    export = json.loads((SAMPLE_DATA / "qr-lforms-export.json").read_text(encoding="utf-8"))
    texts = [item["text"] for item in export["item"]]
    assert texts[:13] == [f"Item {i}" for i in range(1, 14)]
    with (SAMPLE_DATA / "cohort-small.csv").open(encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header[6:] == [f"q{i:02d}" for i in range(1, 14)]
