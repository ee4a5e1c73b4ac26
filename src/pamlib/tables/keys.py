"""Keyed pseudonyms for linking records by NHS number without carrying the number.

A pseudonym is ``hmac-sha256:`` and the 64 hex digits of HMAC-SHA-256 of the ten ASCII digits of
a normalised NHS number, keyed with a secret. The same key and number always give the same
pseudonym, so two extracts pseudonymised with one key link up; without the key nobody can go
from a number to its pseudonym. It is never a bare hash of the number: there are only about 10⁹
valid NHS numbers, so an unkeyed hash is reversed by hashing them all, in minutes. For the same
reason the key must be long and random (at least :data:`MIN_KEY_BYTES` bytes, e.g. from
``secrets.token_bytes(32)``): a short key could be found by trying keys against a known number.

The key is a secret: a :class:`Pseudonymiser` never shows it in its ``repr`` or ``str``. It can
be pickled — that is how it reaches the worker processes of a pool — and **the pickle holds the
key in clear**: treat a pickled pseudonymiser like the key file itself.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import warnings
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pamlib.errors import ConfigurationError, Problem, ValidationError
from pamlib.identity import _nhs_problem, withhold_nhs_numbers

__all__ = [
    "MIN_KEY_BYTES",
    "PSEUDONYM_COLUMN",
    "PSEUDONYM_PREFIX",
    "KeyFileWarning",
    "Pseudonymiser",
]

#: The column a table of pseudonymised records keeps the pseudonym in.
PSEUDONYM_COLUMN: Final = "nhs_pseudonym"
#: What every pseudonym starts with: it names the algorithm, so a later one can be told apart.
PSEUDONYM_PREFIX: Final = "hmac-sha256:"
#: The shortest key accepted, in bytes (256 bits, SHA-256's block of security).
MIN_KEY_BYTES: Final = 32
#: The most a key file is read for: past it, it is no key but a device or an endless stream.
_MAX_KEY_FILE_BYTES: Final = 1 << 20
_MAX_REPORTED: Final = 20
_NOT_NORMALISED: Final = "not a normalised NHS number (10 digits, valid check digit)"


class KeyFileWarning(UserWarning):
    """A pseudonym key file that others on the machine can read."""


class Pseudonymiser:
    """Turns normalised NHS numbers into keyed pseudonyms (see the module's documentation).

    :param key: the secret, at least :data:`MIN_KEY_BYTES` bytes.

    >>> pseudonymise = Pseudonymiser(bytes(range(32)))
    >>> out = pseudonymise(np.array(["9434765919", ""], dtype=object))
    >>> out[0][:20], out[1]
    ('hmac-sha256:dd5c602e', '')
    >>> pseudonymise
    Pseudonymiser(key=<hidden>, key_id='9836d9459782')
    """

    __slots__ = ("_base", "_key", "_key_id")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise ConfigurationError(
                f"a pseudonym key is bytes, not {type(key).__name__} (read it with from_file)"
            )
        if len(key) < MIN_KEY_BYTES:
            raise ConfigurationError(
                f"a pseudonym key needs at least {MIN_KEY_BYTES} bytes, got {len(key)}: with a "
                "short key, pseudonyms can be reversed by trying keys against the ~10^9 valid "
                "NHS numbers; make one with secrets.token_bytes(32)"
            )
        self._key = bytes(key)
        self._base = hmac.new(self._key, digestmod=hashlib.sha256)
        # Names the key in logs and provenance without revealing it (the key is >= 256 bits).
        self._key_id = hashlib.sha256(b"pamlib pseudonym key id\0" + self._key).hexdigest()[:12]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Pseudonymiser:
        """The pseudonymiser keyed with the raw bytes of the file at ``path`` (one trailing
        newline is dropped, so a key written by an editor still works).

        Errors name the file's base name only, an NHS number in it withheld; a file of more
        than a MiB (a device, an endless stream) is refused unread past that. A file that
        others can read is used, with a :class:`KeyFileWarning`: refusing would break shared
        set-ups that protect the key by other means, but it is worth knowing.
        """
        file = Path(path)
        name = withhold_nhs_numbers(file.name or os.fspath(path))
        try:
            with file.open("rb") as stream:
                data = stream.read(_MAX_KEY_FILE_BYTES + 1)
                mode = os.fstat(stream.fileno()).st_mode
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the pseudonym key file {name}: {exc.strerror or type(exc).__name__}"
            ) from None
        if len(data) > _MAX_KEY_FILE_BYTES:
            raise ConfigurationError(
                f"the pseudonym key file {name} is too large to be a key (more than "
                f"{_MAX_KEY_FILE_BYTES} bytes): is it a device or a stream?"
            )
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
        if not data:
            raise ConfigurationError(f"the pseudonym key file {name} is empty")
        if len(data) < MIN_KEY_BYTES:
            raise ConfigurationError(
                f"the pseudonym key file {name} holds {len(data)} bytes; a key needs at least "
                f"{MIN_KEY_BYTES}, or pseudonyms can be reversed by trying keys against the "
                "~10^9 valid NHS numbers"
            )
        if os.name == "posix" and mode & stat.S_IROTH:
            warnings.warn(
                f"the pseudonym key file {name} can be read by every user of this machine; "
                "restrict it (chmod 600)",
                KeyFileWarning,
                stacklevel=2,
            )
        return cls(data)

    @property
    def key_id(self) -> str:
        """A short id of the key (not the key, nor enough to find it): which key made a file."""
        return self._key_id

    def pseudonym(self, number: str) -> str:
        """The pseudonym of one normalised NHS number (``""`` stays ``""``).

        Anything else — spaces or dashes left in, a wrong check digit, digits that are not
        ASCII — is a :class:`~pamlib.errors.ValidationError` (not naming it), as for a column:
        it would get a pseudonym that links to nothing.
        """
        if number == "":
            return ""
        if not isinstance(number, str) or _nhs_problem(number) is not None:
            raise ValidationError(
                "not a normalised NHS number",
                [Problem("number", "nhs-number", _NOT_NORMALISED)],
            )
        mac = self._base.copy()
        mac.update(number.encode("ascii"))
        return PSEUDONYM_PREFIX + mac.hexdigest()

    def __call__(self, numbers: Any) -> npt.NDArray[np.object_]:
        """Pseudonyms for a column of normalised NHS numbers: a NumPy object or str array, or a
        pyarrow string array; ``""`` or a null where absent gives ``""``.

        Each distinct number is keyed once. A value that is not a normalised, valid NHS number
        is a :class:`~pamlib.errors.ValidationError` naming its row (never the value): it would
        get a pseudonym that links to nothing.
        """
        values = _as_list(numbers)
        table: dict[str, str] = {}
        bad = False
        for value in set(values):
            if value is None or value == "":
                continue
            try:
                table[value] = self.pseudonym(value)
            except ValidationError:
                bad = True
        if bad:
            rows = [i for i, v in enumerate(values) if v is not None and v != "" and v not in table]
            raise ValidationError(
                f"not normalised NHS numbers ({len(rows)} rows)",
                [Problem(f"row {i}", "nhs-number", _NOT_NORMALISED) for i in rows[:_MAX_REPORTED]],
            )
        out = np.empty(len(values), dtype=object)
        out[:] = [table[v] if v else "" for v in values]
        return out

    def __repr__(self) -> str:
        return f"Pseudonymiser(key=<hidden>, key_id={self._key_id!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[Pseudonymiser], tuple[bytes]]:
        # Deliberately picklable, to reach worker processes; the pickle holds the key.
        return (Pseudonymiser, (self._key,))


def _as_list(numbers: Any) -> list[Any]:
    """The values of a NumPy array or a pyarrow (chunked) array as a Python list."""
    if hasattr(numbers, "to_pylist"):  # pyarrow: nulls become None
        values: list[Any] = numbers.to_pylist()
        return values
    arr = np.asarray(numbers)
    if arr.ndim != 1:
        raise ValidationError(
            "NHS numbers must be one column",
            [Problem("numbers", "shape", f"expected one dimension, got shape {arr.shape}")],
        )
    listed: list[Any] = arr.tolist()
    return listed
