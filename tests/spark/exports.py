"""A generated export with every kind of fault, and where each record starts (synthetic only)."""

from __future__ import annotations

import csv
import io
import random
import re
from pathlib import Path

import attrs

from pamlib.synthetic import test_nhs_number

HEADER = (
    "Patient ID", "assessment_id", "Date taken", "instrument", "site",
    *(f"Q{k}" for k in range(1, 14)), "notes",
)  # fmt: skip
#: How the header's own names map to pamlib's (the rest are recognised as they are).
MAPPING = {"Patient ID": "patient_id", "Date taken": "assessed_on"}


@attrs.frozen
class Export:
    path: Path
    #: The physical line each data record starts on, in order (record n is ``lines[n - 1]``).
    lines: tuple[int, ...]
    #: The row numbers of records holding a quoted line break.
    broken: tuple[int, ...]
    #: The rows of one assessment id's first and repeated occurrence.
    repeat: tuple[int, int]


def _answers(rng: random.Random) -> list[str]:
    return [rng.choice(["1", "2", "3", "4", "4", ""]) for _ in range(13)]


#: The header with an NHS number column (test numbers, ``999…``) after the patient id.
NHS_HEADER = (HEADER[0], "NHS No", *HEADER[1:])


def make_export(
    folder: Path,
    n: int = 240,
    *,
    seed: int = 17,
    name: str = "export.csv",
    nhs_numbers: bool = False,
    delimiter: str = ",",
    encoding: str = "utf-8",
    quotes: bool = True,
    line_breaks: bool = True,
) -> Export:
    """``n`` records: most good; the rest each bad in one way pamlib rejects or will not score,
    plus a quoted comma, quoted line breaks, a blank record and an id repeated far apart.

    ``nhs_numbers`` adds a column of synthetic test NHS numbers (some written with spaces,
    some absent, one with a wrong check digit); ``delimiter`` and ``encoding`` write the file
    another way (the site names then hold a character outside ASCII). ``quotes=False`` writes
    the free text that would need quoting (the comma, the line breaks, the quote) without it,
    so that no line holds a quote and every record is one line; ``line_breaks=False`` keeps the
    quotes but writes the line breaks as spaces, so that every record is still one line."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not a secret
    records: list[list[str]] = []
    site = "site-é{}" if encoding != "utf-8" or delimiter != "," else "site-{}"
    for i in range(1, n + 1):
        day = f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        record = [f"P{i % 97:04d}", f"A{i:05d}", day, "PAM-13", site.format(i % 3),
                  *_answers(rng), ""]  # fmt: skip
        records.append(record)
    records[4][5] = "5"  # an answer that is not one
    records[9][7] = "x"  # nor this
    records[14][2] = "2024-02-30"  # a date that does not exist
    records[19][2] = "soon"
    records[24] = records[24][:-3]  # too few fields
    records[29] = [*records[29], "extra"]  # too many
    records[34][-1] = "called back, left a message"  # a quoted comma
    records[39][-1] = "line one\nline two"  # a quoted line break
    records[n - 40][-1] = 'said "fine"\r\nthen left'
    if not quotes:
        for k in (34, 39, n - 40):
            records[k][-1] = re.sub('[,"\r\n]+', " ", records[k][-1])
    elif not line_breaks:
        for k in (39, n - 40):
            records[k][-1] = re.sub("[\r\n]+", " ", records[k][-1])
    records[44][0] = ""  # no identity
    records[49][1] = ""  # no assessment id
    records[54][3] = "PAM-99"  # an instrument nobody knows
    records[59][5:18] = [""] * 13  # nothing answered: read, not scored
    records[64] = [""] * len(HEADER)  # a blank record (``,,,,``)
    repeat = (7, n - 10)
    records[repeat[1] - 1][1] = records[repeat[0] - 1][1]  # the id again, far down the file
    header = HEADER
    if nhs_numbers:
        header = NHS_HEADER
        for i, record in enumerate(records, start=1):
            number = test_nhs_number(i % 500 + 1) or ""
            if i % 5 == 0 and number:
                number = f"{number[:3]} {number[3:6]} {number[6:]}"  # as people write it
            if i % 7 == 0 or i in (45, 65):  # none (row 45 then has no identity at all)
                number = ""
            record.insert(1, number)
        records[68][1] = "9990000011"  # a wrong check digit
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="\n", delimiter=delimiter).writerow(header)
    lines: list[int] = []
    line = 2
    for record in records:
        lines.append(line)
        piece = io.StringIO(newline="")
        csv.writer(piece, lineterminator="\n", delimiter=delimiter).writerow(record)
        written = piece.getvalue()
        text.write(written)
        line += written.count("\n")  # "\r\n" inside quotes counts once, as a reader counts it
    path = folder / name
    path.write_bytes(text.getvalue().encode(encoding))
    broken = tuple(k + 1 for k, r in enumerate(records) if "\n" in r[-1])
    return Export(path, tuple(lines), broken, repeat)
