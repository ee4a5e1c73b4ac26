"""Text from files and plugins made safe to print on a terminal."""

from __future__ import annotations

#: Every control character (C0, DEL, C1) as the escape Python writes for it.
_ESCAPES = {
    c: chr(c).encode("unicode_escape").decode("ascii") for c in (*range(0x20), *range(0x7F, 0xA0))
}


def shown(value: object) -> str:
    """``value`` as text safe to print on a terminal: control characters escaped (``\\x1b``,
    ``\\n``), so that a file or a plugin cannot move the cursor, change colours or fake a
    line; and what UTF-8 cannot encode (an undecodable file name) as a backslash escape.

    >>> shown("ok\\x1b[2J\\nfake")
    'ok\\\\x1b[2J\\\\nfake'
    """
    text = str(value).translate(_ESCAPES)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
