"""Make the project's own sample exports, the files beside this script.

    python tests/data/make_samples.py [FOLDER]

Every value is synthetic: NHS numbers are valid mod-11 numbers in the 999 test range (except the
one row broken on purpose), dates and answers come from a seeded generator, and no PAM item
wording appears (items are ``Q1`` … ``Q13`` or ``Item 1`` …). The same script always writes the
same bytes; a test checks that the files checked in are this script's output.

- ``cohort-small.csv``: 500 patients, 788 assessments in the canonical layout, every row
  scorable (at most four items unanswered or not applicable); 288 patients have a follow-up
  5–13 months after their first assessment.
- ``site-export-semicolon.csv``: a site's spreadsheet export, identified by NHS number only:
  UTF-8 with a byte-order mark, ``;`` delimiter, CRLF, headers ``NHS Number``,
  ``Date Completed``, ``Practice``, ``Clinician``, ``Q1`` … ``Q13``, ``Notes``; answers as
  agreement labels or digits, not applicable spelled three ways, day-first dates, NHS numbers
  with spaces, notes with quotes and line breaks. 70 records; five are bad on purpose, at
  lines 13 (wrong check digit), 14 (31/02/2024), 32 (an answer of 5), 33 (an unknown label)
  and 34 (nothing answered: read, but not scorable).
- ``qr-lforms-export.json``: one QuestionnaireResponse shaped as LHC-Forms exports one (an
  ``ordinalValue`` on each answer, ``meta.tag``, no subject), for the example.org
  questionnaire that ``docs/examples/lforms-pam13-mapping.toml`` maps; item 12 answered N/A and
  a computed raw total that is not a PAM item.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20240614
N_ITEMS = 13

COHORT = "cohort-small.csv"
SITE_EXPORT = "site-export-semicolon.csv"
LFORMS_EXPORT = "qr-lforms-export.json"
FILES = (COHORT, SITE_EXPORT, LFORMS_EXPORT)


def nhs_number(rng: random.Random, used: set[str]) -> str:
    """A new valid NHS number in the 999 test range."""
    while True:
        stem = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(stem)) % 11
        if check == 10:
            continue
        number = stem + str(0 if check == 11 else check)
        if number not in used:
            used.add(number)
            return number


def answers(rng: random.Random, max_gaps: int) -> list[str]:
    """Thirteen answers, 1–4, with up to ``max_gaps`` left empty ("") or not applicable ("NA")."""
    level = rng.choice((1.8, 2.4, 2.9, 3.4))
    out = [str(min(4, max(1, round(rng.gauss(level, 0.8))))) for _ in range(N_ITEMS)]
    for position in rng.sample(range(N_ITEMS), rng.choice((0, 0, 0, 1, 1, 2, max_gaps))):
        out[position] = rng.choice(("", "", "NA"))
    return out


def day(rng: random.Random, start: dt.date, span: int) -> dt.date:
    return start + dt.timedelta(days=rng.randrange(span))


def cohort(rng: random.Random) -> str:
    """The canonical layout, one assessment per row, a patient's rows together."""
    header = "patient_id,nhs_number,assessment_id,assessed_on,instrument,site,"
    lines = [header + ",".join(f"q{i:02d}" for i in range(1, N_ITEMS + 1))]
    used: set[str] = set()
    follow_up = set(rng.sample(range(500), 288))
    n = 0
    for p in range(500):
        number = nhs_number(rng, used)
        site = rng.choice(("site-a", "site-b", "site-c"))
        first = day(rng, dt.date(2024, 1, 1), 366)
        dates = [first]
        if p in follow_up:
            dates.append(first + dt.timedelta(days=rng.randrange(152, 396)))
        for when in dates:
            n += 1
            row = [f"S{p:06d}", number, f"B{n:07d}", when.isoformat(), "PAM-13", site]
            lines.append(",".join(row + answers(rng, 4)))
    return "\n".join(lines) + "\n"


_LABELS = {
    "1": ("Disagree Strongly", "1"),
    "2": ("Disagree", "2"),
    "3": ("Agree", "3"),
    "4": ("Agree Strongly", "4"),
    "NA": ("Not applicable", "N/A", "n/a"),
    "": ("",),
}
#: Records (1-based) whose note holds a line break, so that the bad rows fall on the lines the
#: module docs name and a record after a quoted break starts on the right physical line.
_TWO_LINE_NOTES = frozenset({8, 16, 18, 21, 23, 33, 34, 47, 58})
_BAD: dict[int, tuple[str, Callable[[list[str]], list[str]], str]] = {
    11: ("checksum", lambda row: row, "bad NHS checksum"),
    12: ("date", lambda row: row, "no such date"),
    26: ("answer", lambda row: [*row[:-1], "5"], "out-of-range answer"),
    27: ("label", lambda row: [*row[:-1], "Neutral"], "unknown label"),
    28: ("empty", lambda row: [""] * N_ITEMS, "nothing answered"),
}
_BAD_LINES = {11: 13, 12: 14, 26: 32, 27: 33, 28: 34}


def _quote(field: str) -> str:
    if any(c in field for c in ';"\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def site_export(rng: random.Random) -> bytes:
    """70 records as a spreadsheet saves them: BOM, semicolons, CRLF, labels, day-first dates."""
    header = ["NHS Number", "Date Completed", "Practice", "Clinician"]
    header += [f"Q{i}" for i in range(1, N_ITEMS + 1)] + ["Notes"]
    records = [";".join(header)]
    used: set[str] = set()
    people: list[tuple[str, str]] = []
    line = 2
    for r in range(1, 71):
        if r in _BAD:
            assert line == _BAD_LINES[r], (r, line)
        if people and (r in _BAD or rng.random() < 0.45):  # a follow-up, or a bad row
            number, practice = rng.choice(people)
        else:
            number, practice = nhs_number(rng, used), rng.choice(("SITE-A", "SITE-B", "SITE-C"))
            people.append((number, practice))
        when = day(rng, dt.date(2024, 1, 1), 540).strftime("%d/%m/%Y")
        row = [rng.choice(_LABELS[code]) for code in answers(rng, 3)]
        note = rng.choice(("phone", "", 'said "fine"', "clinic"))
        if r in _BAD:
            kind, change, note = _BAD[r]
            row = change(["Agree"] * N_ITEMS) if kind != "empty" else change(row)
            if kind == "checksum":
                number = number[:-1] + str((int(number[-1]) + 1) % 10)
            if kind == "date":
                when = "31/02/2024"
        if r in _TWO_LINE_NOTES:
            note = "line one\nline two"
        spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
        fields = [spaced, when, practice, "Dr Example", *row, note]
        records.append(";".join(_quote(f) for f in fields))
        line += 1 + note.count("\n")
    return ("\ufeff" + "\r\n".join(records) + "\r\n").encode("utf-8")


_DISPLAY = {4: "Agree strongly", 3: "Agree", 2: "Disagree", 1: "Disagree strongly"}
_SYSTEM = "https://example.org/fhir/CodeSystem/pam-agreement"


def lforms_export(rng: random.Random) -> str:
    """One completed response as LHC-Forms writes it, item 12 not applicable."""
    items: list[dict[str, object]] = []
    total = 0
    for i in range(1, N_ITEMS + 1):
        if i == 12:
            coding: dict[str, object] = {"system": _SYSTEM, "code": "NA", "display": "N/A"}
        else:
            weight = rng.randint(1, 4)
            total += weight
            coding = {
                "system": _SYSTEM,
                "code": str(weight),
                "display": _DISPLAY[weight],
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/ordinalValue",
                        "valueDecimal": weight,
                    }
                ],
            }
        items.append(
            {"answer": [{"valueCoding": coding}], "linkId": f"pam{i}", "text": f"Item {i}"}
        )
    items.append(
        {"answer": [{"valueDecimal": total}], "linkId": "raw-total", "text": "Sum of the weights"}
    )
    response = {
        "resourceType": "QuestionnaireResponse",
        "meta": {
            "profile": ["http://hl7.org/fhir/4.0/StructureDefinition/QuestionnaireResponse"],
            "tag": [{"code": "lformsVersion: 40.1.3"}],
        },
        "status": "completed",
        "authored": "2025-03-07T09:41:27.112Z",
        "questionnaire": "https://example.org/fhir/Questionnaire/pam13-demo|0.1.0",
        "item": items,
    }
    return json.dumps(response, indent=1) + "\n"


def make(folder: Path = HERE) -> dict[str, bytes]:
    """The sample files' contents by name, written into ``folder``."""
    rng = random.Random(SEED)  # noqa: S311 - synthetic samples, not secrets
    contents = {
        COHORT: cohort(rng).encode("utf-8"),
        SITE_EXPORT: site_export(rng),
        LFORMS_EXPORT: lforms_export(rng).encode("utf-8"),
    }
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return contents


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
