"""Keyed NHS-number pseudonyms: stable per key, different across keys, never the bare hash."""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.errors import ConfigurationError, PamlibError, ValidationError
from pamlib.identity import is_valid_nhs_number
from pamlib.tables.keys import (
    MIN_KEY_BYTES,
    PSEUDONYM_COLUMN,
    KeyFileWarning,
    Pseudonymiser,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _with_check_digit(body: int) -> str | None:
    digits = f"{body:09d}"
    check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
    check = 0 if check == 11 else check
    return None if check == 10 else f"{digits}{check}"


#: Any valid NHS number (the whole range, not only the 999 test numbers).
nhs_numbers = st.integers(0, 999_999_999).map(_with_check_digit).filter(lambda n: n is not None)
keys = st.binary(min_size=MIN_KEY_BYTES, max_size=64)


def oracle(key: bytes, number: str) -> str:
    return "hmac-sha256:" + hmac.new(key, number.encode(), hashlib.sha256).hexdigest()


def test_column_name() -> None:
    assert PSEUDONYM_COLUMN == "nhs_pseudonym"


@given(st.lists(nhs_numbers | st.just(""), max_size=20), keys)
def test_matches_an_independent_hmac_and_keeps_absent_empty(numbers: list[str], key: bytes) -> None:
    assert all(is_valid_nhs_number(n) for n in numbers if n)
    out = Pseudonymiser(key)(np.array(numbers, dtype=object))
    assert out.dtype == object
    assert list(out) == [oracle(key, n) if n else "" for n in numbers]


@given(nhs_numbers, keys)
def test_same_key_same_number_same_pseudonym_across_instances(number: str, key: bytes) -> None:
    first = Pseudonymiser(key)(np.array([number], dtype=object))[0]
    again = Pseudonymiser(bytes(key))(np.array([number, number], dtype=str))
    assert list(again) == [first, first]
    assert len(first) == len("hmac-sha256:") + 64


@given(nhs_numbers, keys, keys)
def test_different_keys_give_different_pseudonyms(number: str, key: bytes, other: bytes) -> None:
    if key == other:
        return
    a = Pseudonymiser(key).pseudonym(number)
    b = Pseudonymiser(other).pseudonym(number)
    assert a != b


@given(nhs_numbers)
def test_never_the_bare_hash_nor_the_number(number: str) -> None:
    p = Pseudonymiser(KEY).pseudonym(number)
    assert hashlib.sha256(number.encode()).hexdigest() not in p
    assert number not in p


def test_same_pseudonym_in_another_process() -> None:
    code = (
        "from pamlib.tables.keys import Pseudonymiser;"
        "print(Pseudonymiser(bytes(range(32))).pseudonym('9434765919'))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == oracle(KEY, "9434765919")


def test_pyarrow_columns_with_nulls() -> None:
    pa = pytest.importorskip("pyarrow")
    column = pa.chunked_array([["9434765919", None], ["", "9434765919"]])
    out = Pseudonymiser(KEY)(column)
    expected = oracle(KEY, "9434765919")
    assert list(out) == [expected, "", "", expected]


def test_distinct_numbers_are_keyed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    p = Pseudonymiser(KEY)
    calls: list[str] = []
    real = Pseudonymiser.pseudonym

    def counting(self: Pseudonymiser, number: str) -> str:
        calls.append(number)
        return real(self, number)

    monkeypatch.setattr(Pseudonymiser, "pseudonym", counting)
    p(np.array(["9434765919"] * 50 + ["9990000018"] * 50 + [""] * 5, dtype=object))
    assert sorted(calls) == ["9434765919", "9990000018"]


@pytest.mark.parametrize("bad", ["943 476 5919", "9434765910", "12345", "９４３４７６５９１９"])
def test_unnormalised_or_invalid_numbers_are_refused_by_row(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        Pseudonymiser(KEY)(np.array(["9434765919", bad, "", bad], dtype=object))
    assert [p.where for p in info.value.problems] == ["row 1", "row 3"]
    assert bad not in str(info.value)


def test_two_dimensional_input_is_refused() -> None:
    with pytest.raises(ValidationError):
        Pseudonymiser(KEY)(np.array([["9434765919"]], dtype=object))


@pytest.mark.parametrize("length", [0, 1, 16, MIN_KEY_BYTES - 1])
def test_short_keys_are_refused_saying_why(length: int) -> None:
    with pytest.raises(ConfigurationError, match="trying keys"):
        Pseudonymiser(b"k" * length)


def test_a_text_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="bytes"):
        Pseudonymiser("x" * 40)  # type: ignore[arg-type]


@given(keys)
def test_repr_and_str_never_show_the_key(key: bytes) -> None:
    p = Pseudonymiser(key)
    for text in (repr(p), str(p)):
        assert key.hex() not in text
        assert repr(key) not in text
        assert p.key_id in text


def test_pickles_to_an_equal_pseudonymiser() -> None:
    p = Pseudonymiser(KEY)
    back = pickle.loads(pickle.dumps(p))  # noqa: S301 - bytes this test made
    assert back.key_id == p.key_id
    assert back.pseudonym("9434765919") == p.pseudonym("9434765919")


def _key_file(tmp_path: Path, data: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "secret-folder" / "link.key"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("ending", [b"", b"\n", b"\r\n"])
def test_key_file_drops_one_trailing_newline(tmp_path: Path, ending: bytes) -> None:
    path = _key_file(tmp_path, KEY + ending)
    assert Pseudonymiser.from_file(path).key_id == Pseudonymiser(KEY).key_id


def test_key_file_keeps_a_second_newline(tmp_path: Path) -> None:
    key = b"k" * 40 + b"\n"
    path = _key_file(tmp_path, key + b"\n")
    assert Pseudonymiser.from_file(path).key_id == Pseudonymiser(key).key_id


@pytest.mark.parametrize(
    ("data", "match"), [(b"", "empty"), (b"\n", "empty"), (b"short\n", "5 bytes")]
)
def test_key_file_errors_name_the_file_only(tmp_path: Path, data: bytes, match: str) -> None:
    path = _key_file(tmp_path, data)
    with pytest.raises(ConfigurationError, match=match) as info:
        Pseudonymiser.from_file(path)
    assert "link.key" in str(info.value)
    assert "secret-folder" not in str(info.value)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(PamlibError) as info:
        Pseudonymiser.from_file(tmp_path / "secret-folder" / "none.key")
    assert "none.key" in str(info.value)
    assert "secret-folder" not in str(info.value)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_world_readable_key_file_warns_but_works(tmp_path: Path) -> None:
    path = _key_file(tmp_path, KEY, 0o644)
    with pytest.warns(KeyFileWarning, match="link.key"):
        p = Pseudonymiser.from_file(path)
    assert p.key_id == Pseudonymiser(KEY).key_id
    private = _key_file(tmp_path, KEY, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Pseudonymiser.from_file(private)
