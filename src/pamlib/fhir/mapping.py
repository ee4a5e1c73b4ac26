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

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import attrs

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


def _answer_value(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 1 <= value <= 9:
        return value
    if isinstance(value, str) and value.strip().casefold() in {"na", "n/a", "not-applicable"}:
        return -1
    return None


_KNOWN_KEYS = frozenset(
    {
        "url",
        "versions",
        "instrument",
        "ignore",
        "missing_subject",
        "weight_offset",
        "items",
        "answers",
    }
)


#: The tables of a mapping of a table's columns (:func:`pamlib.formats.layout.load_mapping`).
_TABLE_KEYS = frozenset({"input", "columns", "answers", "instruments"})


def parse_mapping(data: Mapping[str, Any], source: str = "<mapping>") -> FhirMapping:
    """Build a :class:`FhirMapping` from TOML-shaped data, reporting every problem at once.

    A top-level ``kind = "fhir"`` may say what the file maps; the tables of a column mapping
    (``[columns]`` …) are refused with a message saying that is what they are.

    >>> m = parse_mapping({"questionnaire": [{"url": "https://x.test/Q", "instrument": "PAM-13",
    ...                    "items": {"q1": "pam13.01"}, "answers": {"N": "NA", "Y": 4}}]})
    >>> m.find("https://x.test/Q", "2").answers
    mappingproxy({'N': -1, 'Y': 4})
    """
    problems: list[Problem] = []
    out: list[tuple[int, QuestionnaireMapping]] = []
    if data.get("kind", "fhir") != "fhir":
        problems.append(Problem(f"{source}: kind", "value", '"fhir" in a FHIR mapping'))
    for key in sorted(set(data) - {"questionnaire", "kind"}):
        if key in _TABLE_KEYS:  # a mapping of a table's columns, given for FHIR input
            why = "a table's column mapping: use it with CSV input, not FHIR"
            problems.append(Problem(f"{source}: {key}", "mapping-kind", why))
        else:
            problems.append(Problem(f"{source}: {key}", "unknown-key", "unknown key"))
    entries = data.get("questionnaire", [])
    if not isinstance(entries, list):
        entries = []
        problems.append(Problem(f"{source}: questionnaire", "type", "use [[questionnaire]] tables"))
    for i, entry in enumerate(entries):
        where = f"{source}: questionnaire[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(Problem(where, "type", "expected a table"))
            continue
        parsed = _parse_entry(entry, where, problems)
        if parsed is not None:
            out.append((i, parsed))
    problems.extend(_conflicts(out, source))
    _raise(problems)
    return FhirMapping(tuple(q for _, q in out), source)


def _parse_entry(
    entry: Mapping[str, Any], where: str, problems: list[Problem]
) -> QuestionnaireMapping | None:
    """One ``[[questionnaire]]`` table, or None with its problems added to ``problems``."""
    before = len(problems)
    problems.extend(
        Problem(f"{where}.{k}", "unknown-key", "unknown key")
        for k in sorted(set(entry) - _KNOWN_KEYS)
    )
    url = entry.get("url")
    instrument = entry.get("instrument")
    for key, value in (("url", url), ("instrument", instrument)):
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(f"{where}.{key}", "required", "a non-empty string"))
    versions = entry.get("versions")
    if versions is not None and not (
        isinstance(versions, list) and all(isinstance(v, str) for v in versions)
    ):
        problems.append(Problem(f"{where}.versions", "type", "a list of strings"))
    ignore = entry.get("ignore", [])
    if not (isinstance(ignore, list) and all(isinstance(v, str) for v in ignore)):
        problems.append(Problem(f"{where}.ignore", "type", "a list of linkIds"))
    missing = entry.get("missing_subject", "reject")
    if missing not in ("reject", "anonymous"):
        problems.append(Problem(f"{where}.missing_subject", "value", "'reject' or 'anonymous'"))
    offset = entry.get("weight_offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool):
        problems.append(Problem(f"{where}.weight_offset", "type", "an integer"))
    items = entry.get("items", {})
    if not isinstance(items, Mapping) or not all(isinstance(v, str) for v in items.values()):
        problems.append(Problem(f"{where}.items", "type", "a table of linkId = item id"))
        items = {}
    answers_in = entry.get("answers", {})
    if not isinstance(answers_in, Mapping):
        problems.append(Problem(f"{where}.answers", "type", "a table of answer code = category"))
        answers_in = {}
    answers_in = dict(answers_in)
    system = answers_in.pop("system", None)
    if system is not None and not isinstance(system, str):
        problems.append(Problem(f"{where}.answers.system", "type", "a string"))
    answers: dict[str, int] = {}
    for code, value in answers_in.items():
        column = _answer_value(value)
        if column is None:
            problems.append(Problem(f"{where}.answers.{code}", "value", 'a category 1-9 or "NA"'))
        else:
            answers[code] = column
    if len(problems) > before:
        return None
    return QuestionnaireMapping(
        url=str(url),
        instrument=str(instrument),
        items=items,
        versions=frozenset(versions) if versions is not None else None,
        answers=answers,
        answer_system=system,
        ignore=frozenset(ignore),
        missing_subject=missing,
        weight_offset=offset,
    )


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
