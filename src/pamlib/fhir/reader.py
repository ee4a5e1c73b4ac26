"""Reading FHIR input: single resources, Bundles, JSON arrays and NDJSON, lenient or strict.

A *record* is a QuestionnaireResponse. Patients and Questionnaires in the same input are used to
resolve subjects and answer weights; every other resource is counted (``other_resources``) but
is not a record. Anything that is not a resource at all is a rejected record. So for every
input ``n_read == n_valid + n_rejected``, and each reject says where it was (``line 4,
$.item[2].answer[0]`` in NDJSON, ``$.entry[3].resource.subject`` in a Bundle) and why.

Lenient mode (the default) keeps the good records and reports the rest; strict mode raises a
:class:`~pamlib.errors.FormatError` listing the problems as soon as a chunk of the file has any.
"""

from __future__ import annotations

import json
import os
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from pamlib.assessment import Assessment
from pamlib.errors import FormatError, Problem, ValidationError
from pamlib.fhir.codes import ASSESSMENT_ID_SYSTEM, PATIENT_ID_SYSTEM
from pamlib.fhir.mapping import FhirMapping, load_mapping
from pamlib.fhir.patient import patient_identity
from pamlib.fhir.response import ResponseParser, ResponseRow
from pamlib.formats.base import Reject
from pamlib.instruments import InstrumentRegistry

__all__ = ["FhirReader", "ReadCounts", "RowChunk", "Source", "read_fhir"]

#: A file path, JSON text, or already-parsed JSON (a resource, Bundle or list of them).
Source = str | os.PathLike[str] | bytes | Mapping[str, Any] | list[Any]

_NDJSON_SUFFIXES = (".ndjson", ".jsonl")


def _frozen_counts(value: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(value.items())))


@attrs.frozen
class ReadCounts:
    """How many records were read, kept and rejected, and which other resources were seen."""

    n_read: int = 0
    n_valid: int = 0
    n_rejected: int = 0
    other_resources: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_counts)


@attrs.frozen
class RowChunk:
    """Rows and rejects from one slice of the input; ``n_read`` counts both."""

    rows: tuple[ResponseRow, ...]
    rejects: tuple[Reject, ...]
    n_read: int


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _reject(source: str, problems: list[Problem], original: object) -> Reject:
    first = problems[0]
    message = first.message if len(problems) == 1 else "; ".join(str(p) for p in problems)
    return Reject(source, first.where, first.code, message, {"json": _dumps(original)})


def source_label(source: Source) -> str:
    """How rejects name ``source``: the path as given, or ``<data>``/``<json>``."""
    if isinstance(source, Mapping | list):
        return "<data>"
    if isinstance(source, bytes) or (isinstance(source, str) and source.lstrip()[:1] in ("{", "[")):
        return "<json>"
    return os.fspath(source)


class _PatientIndex:
    """Patients of one input by every reference that may point at them."""

    def __init__(self, patient_id_system: str) -> None:
        self.patient_id_system = patient_id_system
        self._where: dict[str, tuple[Mapping[str, Any], str]] = {}
        self._cache: dict[str, tuple[str | None, str | None, list[Problem]]] = {}
        self._parent: _PatientIndex | None = None

    def add(self, resource: Mapping[str, Any], path: str, full_url: object = None) -> None:
        rid = resource.get("id")
        keys = [full_url] if isinstance(full_url, str) else []
        if isinstance(rid, str):
            keys.append(f"Patient/{rid}")
        for key in keys:
            self._where.setdefault(str(key), (resource, path))

    def child(self) -> _PatientIndex:
        """An index for one Bundle that falls back to this one."""
        child = _PatientIndex(self.patient_id_system)
        child._parent = self
        return child

    def resolve(self, reference: str) -> tuple[str | None, str | None, list[Problem]] | None:
        found = self._cache.get(reference)
        if found is not None:
            return found
        located = self._where.get(reference)
        if located is None:
            tail = reference.rsplit("/", 2)
            if len(tail) == 3 and tail[1] == "Patient":
                located = self._where.get(f"Patient/{tail[2]}")
        if located is None:
            return self._parent.resolve(reference) if self._parent is not None else None
        resource, path = located
        rid = resource.get("id")
        found = patient_identity(
            resource,
            path,
            patient_id_system=self.patient_id_system,
            reference=f"Patient/{rid}" if isinstance(rid, str) else None,
        )
        self._cache[reference] = found
        return found


class FhirReader:
    """Reads QuestionnaireResponses from any :data:`Source`, ``chunk_rows`` records at a time.

    ``other_resources`` accumulates, across calls, the resources that were not records.
    """

    def __init__(
        self,
        instruments: InstrumentRegistry,
        *,
        mapping: FhirMapping | None = None,
        instrument: str | None = None,
        link_ids: Mapping[str, str] | None = None,
        questionnaires: Iterable[Mapping[str, Any]] = (),
        strict: bool = False,
        chunk_rows: int = 65_536,
        patient_id_system: str = PATIENT_ID_SYSTEM,
        assessment_id_system: str = ASSESSMENT_ID_SYSTEM,
    ) -> None:
        self.strict = strict
        self.chunk_rows = max(1, chunk_rows)
        self.patient_id_system = patient_id_system
        self.parser = ResponseParser(
            instruments,
            mapping=mapping,
            instrument=instrument,
            link_ids=link_ids,
            questionnaires=questionnaires,
            assessment_id_system=assessment_id_system,
            patient_id_system=patient_id_system,
        )
        self.other_resources: Counter[str] = Counter()

    # -- entry point -----------------------------------------------------------------------

    def read(self, source: Source, name: str | None = None) -> Iterator[RowChunk]:
        """Yield chunks until ``source`` is exhausted."""
        label = name or source_label(source)
        if isinstance(source, Mapping | list):
            chunks = self._document(dict(source) if isinstance(source, Mapping) else source, label)
        elif isinstance(source, bytes) or (
            isinstance(source, str) and source.lstrip()[:1] in ("{", "[")
        ):
            text = source.decode("utf-8-sig") if isinstance(source, bytes) else source
            chunks = self._json_text(text, label)
        else:
            path = Path(source)
            if path.name.lower().endswith(_NDJSON_SUFFIXES):
                chunks = self._ndjson(path, label)
            else:
                chunks = self._json_text(self._read_text(path, label), label)
        for chunk in chunks:
            if self.strict and chunk.rejects:
                problems = [Problem(r.location, r.code, r.message) for r in chunk.rejects]
                raise FormatError(
                    f"{chunk.rejects[0].source}: {len(problems)} record(s) cannot be used "
                    "(strict mode)",
                    problems,
                )
            yield chunk

    @staticmethod
    def _read_text(path: Path, label: str) -> str:
        try:
            return path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise FormatError(
                "cannot read FHIR input", [Problem(label, "io", exc.strerror or "cannot read")]
            ) from None
        except UnicodeDecodeError:
            raise FormatError(
                "cannot read FHIR input", [Problem(label, "encoding", "not UTF-8 text")]
            ) from None

    # -- JSON documents ----------------------------------------------------------------------

    def _json_text(self, text: str, label: str) -> Iterator[RowChunk]:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            reject = Reject(label, where, "json", f"not JSON: {exc.msg}", {})
            yield RowChunk((), (reject,), 1)
            return
        yield from self._document(doc, label)

    def _document(self, doc: object, label: str) -> Iterator[RowChunk]:
        """Chunks from one parsed JSON value: a resource, a Bundle, or a list of resources.

        Everything is indexed first, so a response may cite a Patient or Questionnaire anywhere
        in the document.
        """
        items = list(self._walk(doc, "$", _PatientIndex(self.patient_id_system)))
        for start in range(0, len(items), self.chunk_rows):
            part = items[start : start + self.chunk_rows]
            rows: list[ResponseRow] = []
            rejects: list[Reject] = []
            for item in part:
                outcome = self._final(item, label)
                if isinstance(outcome, ResponseRow):
                    rows.append(outcome)
                else:
                    rejects.append(outcome)
            yield RowChunk(tuple(rows), tuple(rejects), len(part))
        if not items:
            yield RowChunk((), (), 0)

    def _walk(
        self, value: object, path: str, patients: _PatientIndex, full_url: object = None
    ) -> Iterator[_Item]:
        """Index context resources into ``patients``; yield each record (or non-resource).

        ``path`` is where ``value`` is, with any ``line N, `` prefix.
        """
        if isinstance(value, list) and path.endswith("$"):
            for i, item in enumerate(value):
                yield from self._walk(item, f"{path}[{i}]", patients)
            return
        kind = value.get("resourceType") if isinstance(value, dict) else None
        if not isinstance(kind, str):
            problem = Problem(
                path, "not-a-resource", "expected a FHIR resource (an object with a resourceType)"
            )
            yield _Item(None, path, value, patients, problem)
            return
        assert isinstance(value, dict)  # noqa: S101 - narrowed above
        if kind == "QuestionnaireResponse":
            yield _Item(value, path, value, patients)
            return
        self.other_resources[kind] += 1
        if kind == "Patient":
            patients.add(value, path, full_url)
        elif kind == "Questionnaire":
            self.parser.add_questionnaire(value)
        elif kind == "Bundle":
            entries = value.get("entry", [])
            for i, entry in enumerate(entries if isinstance(entries, list) else [entries]):
                here = f"{path}.entry[{i}]"
                if isinstance(entry, dict) and "resource" in entry:
                    yield from self._walk(
                        entry["resource"], f"{here}.resource", patients, entry.get("fullUrl")
                    )
                else:
                    problem = Problem(here, "not-a-resource", "an entry needs a resource")
                    yield _Item(None, here, entry, patients, problem)

    def _outcome(self, item: _Item, label: str, *, final: bool) -> ResponseRow | Reject | None:
        """The row or reject of one item; ``None`` (not final) when a later line may fix it."""
        if item.problem is not None or item.resource is None:
            problem = item.problem or Problem(item.path, "not-a-resource", "not a resource")
            return _reject(label, [problem], item.original)
        self.parser.resolve_subject = item.patients.resolve
        parsed = self.parser.parse(item.resource, item.path, final=final)
        if isinstance(parsed, ResponseRow):
            return parsed
        if not final and any(p.code in _DEFERRABLE for p in parsed):
            return None
        return _reject(label, parsed, item.original)

    def _final(self, item: _Item, label: str) -> ResponseRow | Reject:
        outcome = self._outcome(item, label, final=True)
        assert outcome is not None  # noqa: S101 - a final outcome is never deferred
        return outcome

    # -- NDJSON ------------------------------------------------------------------------------

    def _ndjson(self, path: Path, label: str) -> Iterator[RowChunk]:
        """One pass, one parse per line. A response that cites a Patient or Questionnaire not
        seen yet waits — until the end of the file, or until 10,000 others wait — and is then
        read with everything indexed so far."""
        patients = _PatientIndex(self.patient_id_system)
        rows: list[ResponseRow] = []
        rejects: list[Reject] = []
        waiting: deque[_Item] = deque()
        n_read = 0
        emitted = False
        try:
            with path.open(encoding="utf-8-sig") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        value = json.loads(line)
                    except json.JSONDecodeError as exc:
                        problem = Problem(f"line {n}", "json", f"not JSON: {exc.msg}")
                        items: Iterable[_Item] = [
                            _Item(None, f"line {n}", line.rstrip("\n"), patients, problem)
                        ]
                    else:
                        is_bundle = (
                            isinstance(value, dict) and value.get("resourceType") == "Bundle"
                        )
                        scope = patients.child() if is_bundle else patients
                        items = self._walk(value, f"line {n}, $", scope)
                    for item in items:
                        n_read += 1
                        outcome = self._outcome(item, label, final=False)
                        if outcome is None:
                            waiting.append(item)
                            if len(waiting) <= _MAX_WAITING:
                                continue
                            # Memory stays bounded: the longest-waiting response is read now.
                            outcome = self._final(waiting.popleft(), label)
                        if isinstance(outcome, ResponseRow):
                            rows.append(outcome)
                        else:
                            rejects.append(outcome)
                    if len(rows) + len(rejects) >= self.chunk_rows:
                        yield RowChunk(tuple(rows), tuple(rejects), len(rows) + len(rejects))
                        n_read -= len(rows) + len(rejects)
                        rows, rejects, emitted = [], [], True
        except OSError as exc:
            raise FormatError(
                "cannot read FHIR input", [Problem(label, "io", exc.strerror or "cannot read")]
            ) from None
        for item in waiting:
            outcome = self._final(item, label)
            if isinstance(outcome, ResponseRow):
                rows.append(outcome)
            else:
                rejects.append(outcome)
        if rows or rejects or not emitted:
            yield RowChunk(tuple(rows), tuple(rejects), n_read)


#: How many NDJSON responses may wait for a Patient or Questionnaire further down the file.
_MAX_WAITING = 10_000
#: Problems a later line of an NDJSON file may resolve.
_DEFERRABLE = frozenset({"unresolved-reference", "unknown-questionnaire", "no-weight"})


@attrs.frozen
class _Item:
    """One thing found in the input that counts as a record: a response, or a non-resource
    with its ``problem``. ``patients`` resolves the response's subject."""

    resource: dict[str, Any] | None = attrs.field(repr=False)
    path: str
    original: object = attrs.field(repr=False)
    patients: _PatientIndex = attrs.field(repr=False)
    problem: Problem | None = None


def read_fhir(
    source: Source,
    *,
    mapping: FhirMapping | str | os.PathLike[str] | None = None,
    instrument: str | None = None,
    link_ids: Mapping[str, str] | None = None,
    questionnaires: Iterable[Mapping[str, Any]] = (),
    strict: bool = False,
    instruments: InstrumentRegistry | None = None,
    patient_id_system: str = PATIENT_ID_SYSTEM,
    assessment_id_system: str = ASSESSMENT_ID_SYSTEM,
) -> tuple[list[Assessment], list[Reject], ReadCounts]:
    """Every assessment in ``source``, every rejected record, and the counts.

    ``source`` is a path (``.ndjson``/``.jsonl`` read line by line, anything else as one JSON
    document), JSON text, or parsed JSON. ``mapping`` (a :class:`FhirMapping` or a TOML path)
    maps foreign questionnaires; ``instrument`` and ``link_ids`` name the instrument of
    responses no mapping covers. In ``strict`` mode any problem raises
    :class:`~pamlib.errors.FormatError`.
    """
    if instruments is None:
        from pamlib.plugins import get_host

        instruments = get_host().instruments()
    if mapping is not None and not isinstance(mapping, FhirMapping):
        mapping = load_mapping(mapping)
    reader = FhirReader(
        instruments,
        mapping=mapping,
        instrument=instrument,
        link_ids=link_ids,
        questionnaires=questionnaires,
        strict=strict,
        patient_id_system=patient_id_system,
        assessment_id_system=assessment_id_system,
    )
    assessments: list[Assessment] = []
    rejects: list[Reject] = []
    n_read = 0
    for chunk in reader.read(source):
        n_read += chunk.n_read
        rejects.extend(chunk.rejects)
        for row in chunk.rows:
            try:
                assessments.append(row.to_assessment())
            except ValidationError as exc:
                problems = [Problem(row.location, p.code, p.message) for p in exc.problems]
                rejects.append(_reject(source_label(source), problems, None))
    counts = ReadCounts(n_read, len(assessments), len(rejects), reader.other_resources)
    return assessments, rejects, counts
