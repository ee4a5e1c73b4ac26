"""How a foreign questionnaire's responses map onto a pamlib instrument — read from TOML.

A renderer or vendor form has its own canonical URL, ``linkId``\\s and answer codes. A mapping
file says, per questionnaire URL, which pamlib instrument it is, which ``linkId`` is which item,
how answer codes translate when the answers carry no weight, and which linkIds to ignore::

    [[questionnaire]]
    url = "https://example.org/fhir/Questionnaire/pam13-demo"
    versions = ["0.1.0"]          # optional: any version when left out
    instrument = "PAM-13"
    ignore = ["raw-total"]        # answered items that are not PAM items (e.g. a total)
    missing_subject = "anonymous" # or "reject" (the default)
    weight_offset = 0             # added to ordinalValue/itemWeight weights (1 for 0–3 forms)

    [questionnaire.items]         # linkId = item id
    pam1 = "pam13.01"

    [questionnaire.answers]       # answer code = 1..4, or "NA" for not applicable
    system = "https://example.org/fhir/CodeSystem/pam-agreement"   # optional
    NA = "NA"

Anything wrong in the file is reported at once, each problem with the file and the key. Besides
wrong types and unknown keys, a mapping that could only misread responses is refused: two linkIds
mapped to one item (every response would answer it twice), a linkId both mapped and ignored, an
empty ``versions`` list (it would match no response), and a questionnaire URL mapped again for a
version an earlier entry already covers (the later entry would never be used).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, NewType

import attrs
import cattrs

from pamlib._config import (
    FieldError,
    Wording,
    dotted,
    make_converter,
    structure_each,
    structure_fields,
)
from pamlib._documents import DocumentError, decode_utf8, parse_toml
from pamlib.errors import ConfigurationError, Problem
from pamlib.instruments import InstrumentRegistry

__all__ = ["FhirMapping", "QuestionnaireMapping", "load_mapping", "parse_mapping"]

MissingSubject = Literal["reject", "anonymous"]


def _frozen_map(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen
class QuestionnaireMapping:
    """One foreign questionnaire: its URL (and versions), instrument, linkIds and answer codes.

    ``answers`` maps an answer code to a column code (1–4, or -1 for not applicable); when
    ``answer_system`` is set only codings from that system match. ``missing_subject`` decides
    what happens to a response without a ``subject``: ``reject`` it, or treat it as
    ``anonymous`` (its own patient, id ``anonymous:`` + assessment id).
    """

    url: str
    instrument: str
    items: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    versions: frozenset[str] | None = None
    answers: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_map)
    answer_system: str | None = None
    ignore: frozenset[str] = frozenset()
    missing_subject: MissingSubject = "reject"
    weight_offset: int = 0

    def matches(self, url: str, version: str | None) -> bool:
        return url == self.url and (
            self.versions is None or (version is not None and version in self.versions)
        )


@attrs.frozen
class FhirMapping:
    """Every foreign questionnaire a source may contain."""

    questionnaires: tuple[QuestionnaireMapping, ...] = ()
    source: str = "<mapping>"

    def find(self, url: str, version: str | None) -> QuestionnaireMapping | None:
        for q in self.questionnaires:
            if q.matches(url, version):
                return q
        return None

    def check(self, instruments: InstrumentRegistry) -> None:
        """Raise :class:`ConfigurationError` unless every instrument and item id exists."""
        problems: list[Problem] = []
        for i, q in enumerate(self.questionnaires):
            where = f"{self.source}: questionnaire[{i}]"
            if q.instrument not in instruments:
                problems.append(
                    Problem(f"{where}.instrument", "unknown-instrument", "no such instrument")
                )
                continue
            instrument = instruments.get(q.instrument)
            known = set(instrument.items)
            for code, column in q.answers.items():
                if column > instrument.n_categories:
                    message = f"{q.instrument} has categories 1-{instrument.n_categories}"
                    problems.append(Problem(f"{where}.answers.{code}", "value", message))
            for link_id, item_id in q.items.items():
                if item_id not in known:
                    problems.append(
                        Problem(
                            f"{where}.items.{link_id}",
                            "unknown-item",
                            f"{q.instrument} has no item {item_id!r}",
                        )
                    )
        problems.extend(_conflicts(enumerate(self.questionnaires), self.source))
        _raise(problems)


def _overlap(a: QuestionnaireMapping, b: QuestionnaireMapping) -> frozenset[str] | None:
    """The versions both entries claim (``None``: every version), or an empty set if none."""
    if a.url != b.url:
        return frozenset()
    if a.versions is None:
        return b.versions
    if b.versions is None:
        return a.versions
    return a.versions & b.versions


def _conflicts(entries: Iterable[tuple[int, QuestionnaireMapping]], source: str) -> list[Problem]:
    """Entries that would misread responses, each problem naming both sides of the conflict.

    ``entries`` are (index in the file, entry).
    """
    problems: list[Problem] = []
    earlier: list[tuple[int, QuestionnaireMapping]] = []
    for i, q in entries:
        where = f"{source}: questionnaire[{i}]"
        if q.versions is not None and not q.versions:
            problems.append(
                Problem(
                    f"{where}.versions",
                    "value",
                    "an empty list matches no version: leave versions out to match any version",
                )
            )
        first_link: dict[str, str] = {}
        for link_id, item_id in q.items.items():
            other = first_link.setdefault(item_id, link_id)
            if other != link_id:
                problems.append(
                    Problem(
                        f"{where}.items.{link_id}",
                        "duplicate-item",
                        f"{item_id!r} is already the item of items.{other}: with two linkIds "
                        "for one item every response would answer it twice",
                    )
                )
        for link_id in sorted(q.ignore & set(q.items)):
            problems.append(
                Problem(
                    f"{where}.ignore",
                    "conflict",
                    f"linkId {link_id!r} is ignored and also mapped in items.{link_id}",
                )
            )
        for j, other_q in earlier:
            shared = _overlap(other_q, q)
            if shared is None or shared:
                which = "every version" if shared is None else ", ".join(sorted(shared))
                problems.append(
                    Problem(
                        f"{where}.url",
                        "duplicate-questionnaire",
                        f"questionnaire[{j}] already maps this URL for {which}: this entry "
                        "would never be used there",
                    )
                )
                break
        earlier.append((i, q))
    return problems


def _raise(problems: list[Problem]) -> None:
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(f"invalid FHIR mapping\n{lines}")


#: The tables of a mapping of a table's columns (:func:`pamlib.formats.layout.load_mapping`).
_TABLE_KEYS = frozenset({"input", "columns", "answers", "instruments"})

_Required = NewType("_Required", str)
_Strings = NewType("_Strings", frozenset[str])
_LinkIds = NewType("_LinkIds", frozenset[str])
_Missing = NewType("_Missing", str)
_Offset = NewType("_Offset", int)
_Items = NewType("_Items", dict[str, str])
_Answers = NewType("_Answers", tuple[dict[str, int], str | None])
_FhirKind = NewType("_FhirKind", str)
_Entries = NewType("_Entries", tuple[Any, ...])
_NA = frozenset({"na", "n/a", "not-applicable"})
_MISSING = ("reject", "anonymous")
_ENTRIES_MESSAGE = "use [[questionnaire]] tables"


def _top_level_checks(raw: Mapping[str, Any]) -> list[FieldError]:
    """A column mapping's tables, given for FHIR input, are named for what they are."""
    why = "a table's column mapping: use it with CSV input, not FHIR"
    return [FieldError("mapping-kind", why, (key,)) for key in sorted(_TABLE_KEYS & set(raw))]


@attrs.frozen(kw_only=True)
class _EntryDoc:
    """One ``[[questionnaire]]`` table."""

    wording: ClassVar = Wording(
        ("type", "expected a table"),
        ("unknown-key", "unknown key"),
        missing=dict.fromkeys(("url", "instrument"), ("required", "a non-empty string")),
    )
    url: _Required
    versions: _Strings | None = None
    instrument: _Required
    ignore: _LinkIds = _LinkIds(frozenset())
    missing_subject: _Missing = _Missing("reject")
    weight_offset: _Offset = _Offset(0)
    items: _Items = attrs.field(factory=lambda: _Items({}))
    answers: _Answers = _Answers(({}, None))

    def mapping(self) -> QuestionnaireMapping:
        answers, system = self.answers
        return QuestionnaireMapping(
            url=self.url,
            instrument=self.instrument,
            items=self.items,
            versions=self.versions,
            answers=answers,
            answer_system=system,
            ignore=self.ignore,
            missing_subject="anonymous" if self.missing_subject == "anonymous" else "reject",
            weight_offset=self.weight_offset,
        )


@attrs.frozen(kw_only=True)
class _FhirMappingDoc:
    """A FHIR mapping file's top level; each questionnaire table is structured on its own."""

    wording: ClassVar = Wording(
        ("type", "expected a table"), ("unknown-key", "unknown key"), check=_top_level_checks
    )
    kind: _FhirKind = _FhirKind("fhir")
    questionnaire: _Entries = _Entries(())


def _refusing(
    test: Callable[[Any], bool],
    code: str,
    message: str,
    then: Callable[[Any], Any] = lambda value: value,
) -> Callable[[Any, Any], Any]:
    """A structure hook: ``then(value)`` for a value ``test`` accepts, else a fault."""

    def hook(value: Any, _: Any) -> Any:
        if not test(value):
            raise FieldError(code, message)
        return then(value)

    return hook


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _items(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(i, str) for i in value.values())


def _answers(value: Any, _: Any) -> tuple[dict[str, int], str | None]:
    """Answer code = category, and an optional ``system`` the codes belong to."""
    if not isinstance(value, Mapping):
        raise FieldError("type", "a table of answer code = category")
    faults: list[FieldError] = []
    system = value.get("system")
    if system is not None and not isinstance(system, str):
        faults.append(FieldError("type", "a string", ("system",)))
    answers: dict[str, int] = {}
    for code, given in value.items():
        column = _answer_value(given)
        if code == "system":
            continue
        if column is None:
            faults.append(FieldError("value", 'a category 1-9 or "NA"', (code,)))
        else:
            answers[code] = column
    if faults:
        raise ExceptionGroup("invalid answers", faults)
    return answers, system


def _answer_value(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 1 <= value <= 9:
        return value
    if isinstance(value, str) and value.strip().casefold() in _NA:
        return -1
    return None


@functools.cache
def _converter() -> cattrs.Converter:
    conv = make_converter()
    hooks: dict[Any, Callable[[Any, Any], Any]] = {
        _Required: _refusing(_text, "required", "a non-empty string"),
        _Strings: _refusing(_strings, "type", "a list of strings", frozenset),
        _LinkIds: _refusing(_strings, "type", "a list of linkIds", frozenset),
        _Missing: _refusing(_MISSING.__contains__, "value", "'reject' or 'anonymous'"),
        _Offset: _refusing(_whole, "type", "an integer"),
        _Items: _refusing(_items, "type", "a table of linkId = item id", dict),
        _FhirKind: _refusing(lambda v: v == "fhir", "value", '"fhir" in a FHIR mapping'),
        _Entries: _refusing(lambda v: isinstance(v, list), "type", _ENTRIES_MESSAGE, tuple),
        _Answers: _answers,
    }
    for kind, hook in hooks.items():
        conv.register_structure_hook(kind, hook)
    return conv


def parse_mapping(data: Mapping[str, Any], source: str = "<mapping>") -> FhirMapping:
    """Build a :class:`FhirMapping` from TOML-shaped data, reporting every problem at once.

    A top-level ``kind = "fhir"`` may say what the file maps; the tables of a column mapping
    (``[columns]`` …) are refused with a message saying that is what they are.

    >>> m = parse_mapping({"questionnaire": [{"url": "https://x.test/Q", "instrument": "PAM-13",
    ...                    "items": {"q1": "pam13.01"}, "answers": {"N": "NA", "Y": 4}}]})
    >>> m.find("https://x.test/Q", "2").answers
    mappingproxy({'N': -1, 'Y': 4})
    """
    conv = _converter()
    top, found = structure_fields(conv, data, _FhirMappingDoc)
    # A column mapping's tables are named for what they are, not as unknown keys too.
    found = [f for f in found if f.path[0] not in _TABLE_KEYS or f.code == "mapping-kind"]
    valid, problems = structure_each(
        conv, top.get("questionnaire", ()), _EntryDoc, ("questionnaire",)
    )
    found += problems
    out = [Problem(f"{source}: {dotted(f.path)}", f.code, f.message) for f in found]
    entries = [(i, entry.mapping()) for i, entry in valid]
    out.extend(_conflicts(entries, source))
    _raise(out)
    return FhirMapping(tuple(q for _, q in entries), source)


def load_mapping(path: str | os.PathLike[str]) -> FhirMapping:
    """Read a mapping TOML file (see the module docs for its layout)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read FHIR mapping {p.name}: {exc.strerror}") from None
    try:
        data = parse_toml(decode_utf8(raw, p.name), p.name)
    except DocumentError as exc:
        raise ConfigurationError(f"FHIR mapping {p.name} cannot be read: {exc.problem}") from None
    return parse_mapping(data, p.name)
