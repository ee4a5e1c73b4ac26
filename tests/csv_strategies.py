"""Hypothesis strategies for messy delimited exports, as bytes, with what they contain."""

from __future__ import annotations

import csv
import io
from typing import Literal

import attrs
from hypothesis import strategies as st

from pamlib.synthetic import test_nhs_number

ITEMS = tuple(f"q{i:02d}" for i in range(1, 14))
COLUMNS = ("patient_id", "nhs_number", "assessment_id", "assessed_on", "instrument", "site")

GOOD_ANSWERS = (
    "1", "2", "3", "4", "", "NA", "na", "N/A", "n/a", "Not applicable", "not  APPLICABLE",
    "Agree", "agree", " Agree ", "AGREE STRONGLY", "Strongly agree", "agree strongly",
    "Disagree", "disagree strongly", "Strongly Disagree", "  strongly   disagree ", " ", "\t",
    "N / A",
)  # fmt: skip
BAD_ANSWERS = ("5", "0", "-1", "2.5", "3,0", "Neutral", "x", "Agree!", "1 2", "４")
DATES = (
    "2024-03-01", "2024-02-29", "01/03/2024", "1/3/2024", "29/02/2024", "2024-03-01T09:30",
    "01/03/2024 10:00", " 2024-03-01 ", "31/02/2024", "2023-02-29", "2024-13-01", "13/13/2024",
    "", "soon", "2024/03/01", "24-03-01", "03/31/2024",
)  # fmt: skip
INSTRUMENTS = ("PAM-13", "pam-13", " PAM-13 ", "PAM-10", "PAM-99", "", "Parent-PAM-13")
IDS = ("A1", "A2", "A3", "A-0000000000000001", "A-0000000000000002", "", " ", "=A4", "-7")
PATIENTS = ("P1", "P2", "", " ", "\u00a0", "=cmd|' /C calc'!A0", "+44", "-1.5", "@me", "Zoë")


def _nhs_variants(number: str) -> list[str]:
    return [
        number,
        f"{number[:3]} {number[3:6]} {number[6:]}",
        f"{number[:3]}-{number[3:6]}-{number[6:]}",
        f" {number} ",
        number[:9] + str((int(number[9]) + 1) % 10),  # wrong check digit
        number[:9],
        number[:5] + "\u00a0" + number[5:],
    ]


valid_nhs = st.integers(0, 999_999).map(lambda i: test_nhs_number(i) or "9990000018")
nhs_numbers = st.one_of(
    st.just(""),
    st.just(" "),
    valid_nhs.flatmap(lambda n: st.sampled_from(_nhs_variants(n))),
    st.text(alphabet="0123456789 -x", max_size=12),
)
free_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ['said "fine"', "line one\nline two", "a;b,c\tz", "crlf\r\ninside", ""]
)


VALID_DATES = DATES[:8]
VALID_PATIENTS = ("P1", "P2", "=cmd|' /C calc'!A0", "+44", "-1.5", "@me", "Zoë", " P3 ")


@st.composite
def rows(draw: st.DrawFn) -> dict[str, str]:
    """One record's cells by canonical column name (plus ``notes``): about half are valid in
    every respect (however oddly spelled), the rest drawn from anything."""
    if draw(st.booleans()):
        instrument = draw(st.sampled_from(INSTRUMENTS[:4]))
        n_items = 10 if instrument.strip().upper() == "PAM-10" else 13
        pid = draw(st.sampled_from(VALID_PATIENTS))
        row = {
            "patient_id": pid,
            "nhs_number": draw(
                st.just("") | valid_nhs.flatmap(lambda n: st.sampled_from(_nhs_variants(n)[:4]))
            ),
            "assessment_id": draw(
                st.integers(0, 10**6).map(lambda i: f"R{i}")
                | st.integers(0, 10**6).map(lambda i: f"LONG-ASSESSMENT-ID-{i:012d}")
                | st.sampled_from(IDS[:5])
            ),
            "assessed_on": draw(st.sampled_from(VALID_DATES)),
            "instrument": instrument,
            "site": draw(free_text),
            "notes": draw(free_text),
        }
        for k, item in enumerate(ITEMS):
            row[item] = draw(st.sampled_from(GOOD_ANSWERS)) if k < n_items else ""
        return row
    answers = st.sampled_from(GOOD_ANSWERS) | st.sampled_from(BAD_ANSWERS)
    row = {
        "patient_id": draw(st.sampled_from(PATIENTS) | free_text),
        "nhs_number": draw(nhs_numbers),
        "assessment_id": draw(st.sampled_from(IDS) | free_text),
        "assessed_on": draw(st.sampled_from(DATES) | free_text),
        "instrument": draw(st.sampled_from(INSTRUMENTS)),
        "site": draw(free_text),
        "notes": draw(free_text),
    }
    for item in ITEMS:
        row[item] = draw(answers)
    return row


#: Placeholders written through :mod:`csv` and then replaced by raw text the writer would have
#: quoted: a bare quote, a field with text after its closing quote, an undecodable byte, a
#: byte-order mark.
_BARE_QUOTE, _AFTER_QUOTE, _BAD_BYTE, _BOM, _STRAY = "\x04", "\x05", "\x02", "\x06", "\x03"
#: Extra header names: quotes the csv module keeps as text, line breaks, a bad byte.
HOSTILE_NAMES = (
    f"Height (5{_BARE_QUOTE})",
    f"x{_BARE_QUOTE}y{_BARE_QUOTE}z",
    'said "hi"',
    "two\nlines",
    f"caf{_BAD_BYTE}",
    f"{_BOM}notes2",
    f"{_AFTER_QUOTE}",
)
#: A cell just over the csv module's default limit, and one over pamlib's own (rare: slow).
LONG_CELLS = ("z" * 131_073, "é" * 70_000)
HUGE_CELL = "h" * ((1 << 20) + 1)


@attrs.frozen
class MessyFile:
    data: bytes
    header: tuple[str, ...]
    n_records: int
    delimiter: str = ","


@st.composite
def messy_files(draw: st.DrawFn, *, huge: bool = False) -> MessyFile:
    """A delimited file with a header (sometimes without some item columns) and messy records:
    every delimiter, BOMs (none, one, two or three at the start, one starting a record), CRLF or
    lone CR line ends, empty lines, records of empty or blank cells, quoted line breaks, wrong
    field counts, stray quotes (inside unquoted fields, after a closing quote, in header
    names), bad bytes, NULs, cells over 128 KiB and (with ``huge``) over pamlib's 1 MiB field
    limit.

    ``n_records`` counts the records written after the header, for files whose header has no
    line break or stray quote; tests count records with the :mod:`csv` module instead."""
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    header = [*COLUMNS, *ITEMS, "notes"]
    for optional in ("assessment_id", "instrument", "patient_id", "site"):
        if draw(st.booleans()) and draw(st.booleans()):
            header.remove(optional)
    if draw(st.booleans()) and draw(st.booleans()):  # item columns a mapping missed
        for item in draw(st.lists(st.sampled_from(ITEMS), min_size=1, max_size=3, unique=True)):
            header.remove(item)
    if draw(st.booleans()):
        header += draw(st.lists(st.sampled_from(HOSTILE_NAMES), max_size=2, unique=True))
    header = draw(st.permutations(header))
    quoting: Literal[0, 1] = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator=terminator)
    writer.writerow(header)
    n_records = 0
    body = draw(st.lists(rows(), max_size=12))
    stray = draw(st.booleans()) and draw(st.booleans())
    mutations = ["none"] * 8 + ["short", "long", "blank", "cr", "bad-byte", "stray", "empty"]
    mutations += ["after-quote", "nul", "bom", "long-cell"]
    if huge:
        mutations.append("huge-cell")
    for i, row in enumerate(body):
        cells = [row.get(name, "") for name in header]
        mutation = draw(st.sampled_from(mutations))
        if mutation == "short":
            cells = cells[:-1]
        elif mutation == "long":
            cells = [*cells, "extra"]
        elif mutation == "blank":
            out.write(draw(st.sampled_from(["\n", "\r\n", "\r\n\r\n"])))
        elif mutation == "empty":  # a record of empty cells, as Excel writes below a table
            width = draw(st.sampled_from([len(cells), len(cells), 1, 2]))
            cells = draw(st.lists(st.sampled_from(["", "", " ", "  "]), min_size=width,
                                  max_size=width))  # fmt: skip
        elif mutation == "bad-byte":
            cells[-1] = cells[-1] + _BAD_BYTE
        elif mutation == "stray" and stray:
            cells[-1] = _STRAY
        elif mutation == "after-quote":
            cells[draw(st.integers(0, len(cells) - 1))] = _AFTER_QUOTE
        elif mutation == "nul":
            cells[draw(st.integers(0, len(cells) - 1))] += "\x00"
        elif mutation == "long-cell":
            cells[-1] = draw(st.sampled_from(LONG_CELLS))
        elif mutation == "huge-cell":
            cells[-1] = HUGE_CELL
        if not cells:
            continue
        line = io.StringIO(newline="")
        csv.writer(line, delimiter=delimiter, quoting=quoting, lineterminator=terminator).writerow(
            cells
        )
        text = line.getvalue().replace(_STRAY, 'x"y')
        if mutation == "bom":
            text = _BOM + text
        if mutation == "cr" and i < len(body) - 1:
            text = text[: -len(terminator)] + "\r"
        out.write(text)
        n_records += 1
    if draw(st.booleans()) and draw(st.booleans()):
        out.write(f'{delimiter}"unclosed{terminator}still open')
        n_records += 1
    text = out.getvalue().replace(_BARE_QUOTE, '"').replace(_AFTER_QUOTE, '"a"b')
    if draw(st.booleans()) and text.endswith(terminator):
        text = text[: -len(terminator)]
    data = text.encode("utf-8").replace(b"\x02", b"\xff").replace(b"\x06", b"\xef\xbb\xbf")
    data = b"\xef\xbb\xbf" * draw(st.sampled_from([0, 0, 1, 1, 2, 3])) + data
    return MessyFile(data=data, header=tuple(header), n_records=n_records, delimiter=delimiter)
