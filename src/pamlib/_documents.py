"""Parsing JSON and TOML documents from untrusted files without surprises.

Every configuration file (calibrations, rules, mappings) and every FHIR input goes through
:func:`parse_json` or :func:`parse_toml`, so hostile text fails the same clean way everywhere:
a syntax error, invalid UTF-8, nesting deeper than :data:`MAX_DEPTH` (which would otherwise
exhaust the interpreter's recursion limit in the parser or in any code that walks the value),
or an integer too long for Python to convert. Each becomes a :class:`DocumentError` holding one
located :class:`~pamlib.errors.Problem`; callers re-raise it as their own error type or turn it
into a reject.

FHIR input, where parsing is most of the time spent, first tries :func:`fast_json`: msgspec (the
``fhir`` extra) parses the bytes when it is installed, and anything it does not read exactly as
the standard library does goes through :func:`decode_utf8` and :func:`parse_json`, so the values
and problems are the same with or without it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from itertools import chain
from typing import Any, TypeVar

from pamlib.errors import Problem, ValidationError

#: The deepest nesting of arrays and objects (tables) accepted. Real FHIR resources nest about
#: ten levels; calibration, rule and mapping files fewer.
MAX_DEPTH = 64


class DocumentError(ValidationError):
    """A document that cannot be parsed; ``problem`` says where and why."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.message, [problem])


def json_kind(value: object) -> str:
    """What a value read from a JSON or TOML document is, by its type alone: messages name the
    kind, never the value (which may be an identifier).

    >>> json_kind(None), json_kind(True), json_kind("9434765919"), json_kind([1])
    ('null', 'a boolean', 'text', 'an array')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def decode_utf8(data: bytes, where: str) -> str:
    """``data`` as text (a leading BOM dropped), or a :class:`DocumentError` (code ``encoding``)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            Problem(where, "encoding", f"not UTF-8 text (invalid byte at offset {exc.start})")
        ) from None


def _too_deep(value: object, *, parsed: bool = False) -> bool:
    """Whether ``value`` nests deeper than :data:`MAX_DEPTH` (iteratively: never recurses).

    Level by level: each pass keeps only the containers one level down, gathered by
    :func:`itertools.chain` and exact type checks (parsed JSON holds plain dicts and lists), so
    a document costs one comprehension per level, not a tuple per value — NDJSON input checks
    every line. ``parsed``: ``value`` came from a parser, so its containers are exactly ``dict``
    and ``list`` (the cheaper test).
    """
    level = [value] if isinstance(value, dict | list) else []
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            return True
        if parsed:
            children = chain.from_iterable(
                [node.values() if type(node) is dict else node for node in level]
            )
            level = [c for c in children if type(c) in _CONTAINERS]
        else:
            children = chain.from_iterable(
                [node.values() if isinstance(node, dict) else node for node in level]
            )
            level = [c for c in children if isinstance(c, dict | list)]
        depth += 1
    return False


_CONTAINERS = frozenset({dict, list})


def _may_be_deep(text: str) -> bool:
    # Cheap pre-check: a document with few brackets cannot nest deeply.
    return text.count("[") + text.count("{") > MAX_DEPTH


#: Every byte but the quote and the brackets (deleted), and the brackets as parentheses.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_PARENS = bytes.maketrans(b"[]{}", b"()()")


def _text_too_deep(data: bytes, value: object) -> bool:
    """Whether the JSON text ``data``, which parsed to ``value``, nests deeper than
    :data:`MAX_DEPTH`: read from the brackets of the text, a few C-level passes over bytes
    instead of a walk of the value.

    Only the brackets outside strings count. Escaped quotes and backslashes are dropped first
    (backslashes occur only in strings, and pairs are read left to right as JSON reads them),
    then each string that holds no bracket is an adjacent pair of quotes; if a quote is left, a
    string holds a bracket and the value is walked instead. What remains is the nesting itself:
    each pass that removes the innermost ``()`` pairs lowers its depth by one.
    """
    found = text_too_deep(data)
    return _too_deep(value, parsed=True) if found is None else found


def text_too_deep(data: bytes) -> bool | None:
    """Whether the JSON text ``data`` nests deeper than :data:`MAX_DEPTH`, read from its
    brackets alone (see :func:`_text_too_deep`); ``None`` where a string holds a bracket, and
    only the parsed value can tell."""
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = data.translate(_PARENS, _NOT_STRUCTURE)
    if shape.count(b"(") <= MAX_DEPTH:  # brackets in strings too: a bound, cheaply
        return False
    shape = shape.replace(b'""', b"")
    if b'"' in shape:
        return None
    for removed in range(MAX_DEPTH + 1):
        # The depth left is at most the opening brackets left.
        if removed + shape.count(b"(") <= MAX_DEPTH:
            return False
        shape = shape.replace(b"()", b"")
    return True


def _depth_problem(where: str) -> DocumentError:
    return DocumentError(Problem(where, "too-deep", f"nested more than {MAX_DEPTH} levels deep"))


def parse_json(
    text: str,
    where: str,
    *,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
    parse_constant: Callable[[str], Any] | None = None,
) -> Any:
    """Parse one JSON value; ``where`` names the source in the problem (``file.json``,
    ``line 7``). Syntax errors carry the line and column within ``text``."""
    try:
        with collector_paused():
            value = json.loads(
                text, object_pairs_hook=object_pairs_hook, parse_constant=parse_constant
            )
    except json.JSONDecodeError as exc:
        at = f"{where}: line {exc.lineno} column {exc.colno}" if where else f"line {exc.lineno}"
        raise DocumentError(Problem(at, "json", f"not JSON: {exc.msg}")) from None
    except RecursionError:
        raise _depth_problem(where) from None
    except ValueError as exc:  # e.g. an integer longer than Python converts (4300 digits)
        raise DocumentError(Problem(where, "json", f"not usable JSON: {_unusable(exc)}")) from None
    if _may_be_deep(text) and _text_too_deep(text.encode("utf-8", "surrogatepass"), value):
        raise _depth_problem(where)
    return value


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a document's values are made, and as it was
    after. A JSON document is a tree, which holds no cycle to collect, yet each collection of
    the oldest generation walks every container made so far: a Bundle of 20,000 responses
    (76 MB) took four times as long to parse with the collector on as off. Not for code that
    runs anyone else's (a plugin's) between the values it makes."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_T = TypeVar("_T")


def made_paused(items: Iterator[_T]) -> Iterator[_T]:
    """``items``, each made with the collector paused (:func:`collector_paused`), and the
    collector as it was while the caller works on it."""
    while True:
        with collector_paused():
            try:
                item = next(items)
            except StopIteration:
                return
        yield item


class _NotParsed:
    def __repr__(self) -> str:
        return "NOT_PARSED"


#: What :func:`fast_json` returns for text it leaves to :func:`parse_json`.
NOT_PARSED: Any = _NotParsed()

_fast_decode: Callable[[bytes], Any] | None = None
_fast_tried = False


def _fast_decoder() -> Callable[[bytes], Any] | None:
    """msgspec's JSON decoder, if installed (imported on first use: ``import pamlib`` stays
    cheap)."""
    global _fast_decode, _fast_tried  # noqa: PLW0603 - one lazy import per process
    if not _fast_tried:
        _fast_tried = True
        try:
            from msgspec.json import Decoder
        except ImportError:
            _fast_decode = None
        else:
            _fast_decode = Decoder().decode
    return _fast_decode


def fast_json(data: bytes) -> Any:
    """The value of the JSON text ``data`` (UTF-8 bytes), exactly as :func:`decode_utf8` and
    :func:`parse_json` would give it, or :data:`NOT_PARSED` when the caller must take that way:
    msgspec is not installed, or it refuses the text.

    msgspec refuses everything the standard library refuses, and more (``NaN``, a byte order
    mark, half a surrogate pair, a number too large for a float): those go the slow way, which
    gives the value or the problem. What it accepts it reads as ``json`` does: the last of
    repeated keys wins, integers of any length up to Python's limit stay integers, floats are
    correctly rounded (a property test holds the two to the same values and problems).
    """
    decode = _fast_decode if _fast_tried else _fast_decoder()
    if decode is None:
        return NOT_PARSED
    try:
        with collector_paused():
            value = decode(data)
    except (ValueError, RecursionError):
        return NOT_PARSED
    if _text_too_deep(data, value):
        return NOT_PARSED
    return value


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """Parse a TOML document; problems as for :func:`parse_json`."""
    import tomllib

    try:
        value = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DocumentError(Problem(where, "toml", f"not valid TOML: {exc}")) from None
    except RecursionError:
        raise _depth_problem(where) from None
    except ValueError as exc:
        raise DocumentError(Problem(where, "toml", f"not usable TOML: {_unusable(exc)}")) from None
    if _may_be_deep(text) and _too_deep(value, parsed=True):
        raise _depth_problem(where)
    return value


def _unusable(exc: ValueError) -> str:
    """Why a parser refused a value: an integer too long for Python to convert said plainly,
    not with Python's advice to raise the interpreter's limit (advice for a programmer, and
    not one a file may take)."""
    if "integer string conversion" in str(exc):
        return f"a number is too long (more than {sys.get_int_max_str_digits()} digits)"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
