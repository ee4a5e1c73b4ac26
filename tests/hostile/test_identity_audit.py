"""Hostile inputs for NHS numbers, withholding and keyed pseudonyms (an audit).

Faults found (one line each):

1. ``withhold_nhs_numbers``/``holds_nhs_number`` scanned without overlap, so a valid number
   after other spaced digits (``seen 2024 943 476 5919``) was hidden by an invalid earlier
   candidate and left in the text.
2. ``normalise_nhs_number`` accepts any Unicode whitespace between digits (no-break, thin,
   ideographic spaces, ``\\x1c``, ``\\x85``...) but the text scanner looked for ASCII whitespace
   only, so a number accepted as valid (``943\\u00a0476\\u00a05919``) was not withheld.
3. ``Pseudonymiser.pseudonym`` keyed whatever it was given: ``943 476 5919`` got another
   pseudonym than ``9434765919``, an invalid number got one, and full-width digits raised a
   ``UnicodeEncodeError``; it now refuses them as ``__call__`` does.
4. The world-readable :class:`KeyFileWarning` named the key file unwithheld, so
   ``pamlib score --pseudonym-key 9434765919.key`` printed an NHS number on stderr.
5. ``Pseudonymiser.from_file`` read a key file whole: a device or endless pipe
   (``--pseudonym-key /dev/zero``) used up the memory; it now stops past a bound, saying why.
6. ``Pseudonymiser.__call__`` counted a falsy wrong value (``0``, ``False``) as absent in its
   error: ``not normalised NHS numbers (0 rows)`` with no row named.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError, PamlibError, ValidationError
from pamlib.identity import (
    Patient,
    holds_nhs_number,
    is_valid_nhs_number,
    normalise_nhs_number,
    withhold_nhs_numbers,
)
from pamlib.tables.keys import KeyFileWarning, Pseudonymiser

KEY = bytes(range(32))
NUMBER = "9434765919"
ASCII_DIGITS = "0123456789"
#: What people write between the digits of an NHS number, and what normalisation removes.
SEPARATORS = [" ", "-", "\t", "\n", "\r\n", " - ", "\u00a0", "\u2009", "\u202f", "\u3000", "\x85"]
#: Digits that ``str.isdigit`` and ``int`` accept but that are not ASCII.
OTHER_DIGITS = ["٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９", "०१२३४५६७८९", "۰۱۲۳۴۵۶۷۸۹", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗"]


def oracle_valid(digits: str) -> bool:
    """Modulus 11, written out independently: ten ASCII digits, check digit 10 invalid."""
    if len(digits) != 10 or any(c not in ASCII_DIGITS for c in digits):
        return False
    check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(digits[:9])) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def _with_check_digit(body: int) -> str | None:
    digits = f"{body:09d}"
    check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11
    check = 0 if check == 11 else check
    return None if check == 10 else f"{digits}{check}"


def _is_separator(char: str) -> bool:
    return char == "-" or char.isspace()


def valid_numbers_in(text: str) -> list[str]:
    """Every valid NHS number readable in ``text`` from any start: ten ASCII digits with only
    spaces and dashes between them, no ASCII digit just before or after (an independent
    reading of what :func:`holds_nhs_number` promises)."""
    found = []
    for start, char in enumerate(text):
        if char not in ASCII_DIGITS or (start and text[start - 1] in ASCII_DIGITS):
            continue
        digits, i = "", start
        while i < len(text) and len(digits) < 10:
            if text[i] in ASCII_DIGITS:
                digits += text[i]
            elif not (_is_separator(text[i]) and digits):
                break
            i += 1
        ends = i == len(text) or text[i] not in ASCII_DIGITS
        if len(digits) == 10 and ends and oracle_valid(digits):
            found.append(digits)
    return found


valid_numbers = st.integers(0, 999_999_999).map(_with_check_digit).filter(lambda n: n is not None)
separators = st.sampled_from(SEPARATORS)


@st.composite
def spellings(draw: st.DrawFn, number: str) -> str:
    """``number`` as someone may write it: separators anywhere between digits, spaces around."""
    out = [draw(st.sampled_from(["", " ", "\t", "\u00a0"]))]
    for i, digit in enumerate(number):
        out.append(digit)
        if i < 9 and draw(st.booleans()):
            out.append(draw(separators))
    out.append(draw(st.sampled_from(["", " ", "\n", "\u3000"])))
    return "".join(out)


@st.composite
def spelled_numbers(draw: st.DrawFn) -> tuple[str, str]:
    number = draw(valid_numbers)
    assert number is not None
    return number, draw(spellings(number))


#: Text made of words, digit groups, separators and valid numbers in any spelling.
texts = st.lists(
    st.one_of(
        st.text(ASCII_DIGITS, min_size=1, max_size=7),
        st.sampled_from([*SEPARATORS, "seen ", "/", "(", "NHS no ", ".", "x"]),
        valid_numbers.map(str),
        spelled_numbers().map(lambda pair: pair[1]),
        st.text(max_size=5),
    ),
    max_size=12,
).map("".join)


# -- fault 1: a valid number hidden by an earlier, invalid candidate -----------------------


@pytest.mark.parametrize("before", ["2024", "1235", "0000", "9999999", "2024-01", "12 34"])
def test_a_number_after_other_digit_groups_is_withheld(before: str) -> None:
    text = f"seen {before} 943 476 5919 today"
    assert holds_nhs_number(text)
    out = withhold_nhs_numbers(text)
    assert valid_numbers_in(out) == []
    assert "943 476 5919" not in out
    assert "<NHS number>" in out


@given(texts)
@example("seen 2024 943 476 5919")
@example("1234 943 476 5919")
@example("0-9434765919")
@example("943\u00a0476\u00a05919")
def test_withheld_text_holds_no_valid_number_from_any_start(text: str) -> None:
    out = withhold_nhs_numbers(text)
    assert valid_numbers_in(out) == []
    assert not holds_nhs_number(out)
    assert holds_nhs_number(text) == bool(valid_numbers_in(text))


@given(texts)
def test_text_without_a_valid_number_is_left_alone(text: str) -> None:
    if not valid_numbers_in(text):
        assert withhold_nhs_numbers(text) == text
        assert not holds_nhs_number(text)


@given(st.text(ASCII_DIGITS, min_size=10, max_size=10), separators)
def test_an_invalid_number_is_never_withheld(digits: str, sep: str) -> None:
    if oracle_valid(digits):
        return
    for text in (digits, f"{digits[:3]}{sep}{digits[3:6]}{sep}{digits[6:]}", f"id {digits}."):
        assert withhold_nhs_numbers(text) == text


# -- fault 2: numbers spaced with Unicode whitespace -----------------------------------------


@pytest.mark.parametrize("sep", ["\u00a0", "\u2009", "\u202f", "\u3000", "\x1c", "\x85", "\u2028"])
def test_a_number_normalisation_accepts_is_withheld_in_text(sep: str) -> None:
    spelled = f"943{sep}476{sep}5919"
    assert normalise_nhs_number(spelled) == NUMBER  # accepted as valid input...
    assert holds_nhs_number(f"no record for {spelled}")  # ...so found in text
    assert withhold_nhs_numbers(f"no record for {spelled}.") == "no record for <NHS number>."


# -- normalisation and validation invariants -------------------------------------------------


@given(spelled_numbers())
def test_every_spelling_normalises_to_the_number_and_one_pseudonym(pair: tuple[str, str]) -> None:
    number, spelled = pair
    assert is_valid_nhs_number(spelled)
    assert normalise_nhs_number(spelled) == number
    assert normalise_nhs_number(normalise_nhs_number(spelled)) == number  # idempotent
    assert Patient(None, nhs_number=spelled).nhs_number == number
    p = Pseudonymiser(KEY)
    assert p.pseudonym(normalise_nhs_number(spelled)) == p.pseudonym(number)
    assert (
        list(p(np.array([normalise_nhs_number(spelled), number], dtype=object)))
        == [p.pseudonym(number)] * 2
    )


@given(st.text(max_size=14))
def test_validity_agrees_with_normalisation_and_the_oracle(text: str) -> None:
    cleaned = "".join(c for c in text if not _is_separator(c))
    assert is_valid_nhs_number(text) == oracle_valid(cleaned)
    if not is_valid_nhs_number(text):
        with pytest.raises(ValidationError) as info:
            normalise_nhs_number(text)
        assert len(cleaned) < 5 or cleaned not in str(info.value)
        return
    normalised = normalise_nhs_number(text)
    assert oracle_valid(normalised)
    assert normalise_nhs_number(normalised) == normalised


@given(valid_numbers, st.integers(0, 9), st.sampled_from(OTHER_DIGITS))
def test_non_ascii_digits_are_never_valid(number: str, position: int, digits: str) -> None:
    foreign = number[:position] + digits[int(number[position])] + number[position + 1 :]
    assert foreign.isdigit()  # what str.isdigit / int would let through
    assert not is_valid_nhs_number(foreign)
    with pytest.raises(ValidationError):
        Patient(None, nhs_number=foreign)
    everywhere = "".join(digits[int(d)] for d in number)
    assert int(everywhere) == int(number)
    assert not is_valid_nhs_number(everywhere)
    assert not holds_nhs_number(everywhere)


def test_check_digit_ten_is_never_valid() -> None:
    bodies = [f"{b:09d}" for b in range(0, 999_999_999, 7_654_321)]
    tens = [d for d in bodies if 11 - sum(int(c) * (10 - i) for i, c in enumerate(d)) % 11 == 10]
    assert len(tens) > 5
    for digits in tens:
        assert not any(is_valid_nhs_number(digits + str(last)) for last in range(10))
        assert not holds_nhs_number(f"NHS {digits}{digits[-1]}")


def test_wrong_lengths_and_embedded_controls_are_invalid() -> None:
    for bad in ("943476591", "94347659190", "9434765919 9", "", " ", "943\x00476\x005919"):
        assert not is_valid_nhs_number(bad)
    assert not is_valid_nhs_number("943\u200b476\u200b5919")  # a zero-width space is no space


# -- fault 3: a pseudonym for a spelling, an invalid number, foreign digits ------------------


@pytest.mark.parametrize(
    "given_number",
    ["943 476 5919", "943-476-5919", " 9434765919", "9434765910", "1234567890", "０" * 10, "12"],
)
def test_pseudonym_refuses_what_is_not_a_normalised_valid_number(given_number: str) -> None:
    p = Pseudonymiser(KEY)
    with pytest.raises(ValidationError) as info:
        p.pseudonym(given_number)
    assert given_number.strip() not in str(info.value)
    assert p.pseudonym("") == ""
    assert p.pseudonym(NUMBER).startswith("hmac-sha256:")


# -- fault 6: falsy wrong values in a column --------------------------------------------------


@pytest.mark.parametrize("wrong", [0, False, 9434765919, b"9434765919", float("nan")])
def test_every_wrong_value_in_a_column_is_named_by_row(wrong: object) -> None:
    column = np.array([NUMBER, wrong, "", None, wrong], dtype=object)
    with pytest.raises(ValidationError) as info:
        Pseudonymiser(KEY)(column)
    assert [p.where for p in info.value.problems] == ["row 1", "row 4"]
    assert "(2 rows)" in str(info.value)


# -- key files ---------------------------------------------------------------------------


def _key(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_the_world_readable_warning_withholds_a_number_in_the_file_name(tmp_path: Path) -> None:
    path = _key(tmp_path / "9434765919.key", KEY, 0o644)
    with pytest.warns(KeyFileWarning) as caught:
        Pseudonymiser.from_file(path)
    message = str(caught[0].message)
    assert "9434765919" not in message
    assert "<NHS number>.key" in message


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_the_command_line_warning_withholds_a_number_in_the_key_name(
    tmp_path: Path, process_host: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pamlib.cli import main

    source = Path(__file__).parent.parent / "data" / "cohort-small.csv"
    key = _key(tmp_path / "943 476 5919.key", KEY, 0o644)
    out = tmp_path / "scored.csv"
    status = main(
        ["score", str(source), "--provider", "demo", "--pseudonym-key", str(key), "-o", str(out)]
    )
    err = capsys.readouterr().err
    assert status == 0
    assert "can be read by every user" in err
    assert "943 476 5919" not in err
    assert "Traceback" not in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_an_endless_key_stream_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    fifo = tmp_path / "endless.key"
    os.mkfifo(fifo, 0o600)
    written = [0]

    def write_forever() -> None:  # a device like /dev/zero: up to 64 MiB, until the reader goes
        fd = os.open(fifo, os.O_WRONLY)
        try:
            chunk = b"\x00" * 65536
            while written[0] < 64 << 20:
                written[0] += os.write(fd, chunk)
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)

    writer = threading.Thread(target=write_forever, daemon=True)
    writer.start()
    try:
        with pytest.raises(ConfigurationError, match="too large to be a key") as info:
            Pseudonymiser.from_file(fifo)
    finally:
        writer.join(timeout=30)
    assert "endless.key" in str(info.value)
    assert str(tmp_path) not in str(info.value)
    assert written[0] < 16 << 20, "the reader stopped long before the stream did"


def test_a_large_but_bounded_key_file_still_works(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB: long, but a file, not a stream
    path = _key(tmp_path / "long.key", data)
    assert Pseudonymiser.from_file(path).key_id == Pseudonymiser(data).key_id


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "is empty"),
        (b"\n", "is empty"),
        (b"short", "holds 5 bytes"),
        (b"\xff" * 31 + b"\n", "holds 31 bytes"),
    ],
)
def test_bad_key_files_say_why_by_name(tmp_path: Path, data: bytes, match: str) -> None:
    path = _key(tmp_path / "k.key", data)
    with pytest.raises(ConfigurationError, match=match) as info:
        Pseudonymiser.from_file(path)
    assert str(tmp_path) not in str(info.value)


def test_binary_and_non_utf8_keys_are_keys(tmp_path: Path) -> None:
    data = b"\xff\xfe\x00\x80" * 10
    path = _key(tmp_path / "b.key", data)
    assert Pseudonymiser.from_file(path).key_id == Pseudonymiser(data).key_id


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_folders_and_links_give_clear_errors_or_the_key(tmp_path: Path) -> None:
    real = _key(tmp_path / "real.key", KEY)
    (tmp_path / "link.key").symlink_to(real)
    assert Pseudonymiser.from_file(tmp_path / "link.key").key_id == Pseudonymiser(KEY).key_id
    (tmp_path / "dangling.key").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop.key").symlink_to(tmp_path / "loop.key")
    (tmp_path / "folder.key").mkdir()
    for name in ("dangling.key", "loop.key", "folder.key"):
        with pytest.raises(PamlibError, match=re.escape(name)) as info:
            Pseudonymiser.from_file(tmp_path / name)
        assert str(tmp_path) not in str(info.value)


def test_a_key_file_is_only_read(tmp_path: Path) -> None:
    path = _key(tmp_path / "k.key", KEY + b"\n", 0o600)
    before = path.stat()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Pseudonymiser.from_file(path)
    after = path.stat()
    assert path.read_bytes() == KEY + b"\n"
    assert stat.S_IMODE(after.st_mode) == 0o600
    assert after.st_mtime_ns == before.st_mtime_ns
