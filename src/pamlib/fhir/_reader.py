"""Reading FHIR input: single resources, Bundles, JSON arrays and NDJSON, lenient or strict.

A *record* is a QuestionnaireResponse. Patients and Questionnaires in the same input are used to
resolve subjects and answer weights; every other resource is counted (``other_resources``) but
is not a record. Anything that is not a resource at all is a rejected record. So for every
input ``n_read == n_valid + n_rejected``, and each reject says where it was (``line 4,
$.item[2].answer[0]`` in NDJSON, ``$.entry[3].resource.subject`` in a Bundle) and why.

A repeated assessment id is rejected (``duplicate-assessment-id``) as in CSV input: the first
response of the file keeps it. Text that cannot be read as JSON (invalid UTF-8, a syntax error,
nesting deeper than :data:`~pamlib._documents.MAX_DEPTH`, an integer too long to convert) is one
rejected record: the NDJSON line, or the whole document; a field of the wrong JSON type rejects
only its response.

A path is always a file (a name may start with ``[``); ``"-"`` is standard input, read line by
line when it holds NDJSON (a file's name says which it is). A UTF-16 or UTF-32 byte order mark
is honoured (see :func:`_lines`).

Lenient mode (the default) keeps the good records and reports the rest; strict mode raises a
:class:`~pamlib.errors.FormatError` listing the problems as soon as a chunk of the file has any.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import logging
import os
import sys
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import attrs

from pamlib._documents import (
    MAX_DEPTH,
    NOT_PARSED,
    DocumentError,
    _fast_decoder,
    _too_deep,
    collector_paused,
    decode_utf8,
    fast_json,
    made_paused,
    parse_json,
    text_too_deep,
)
from pamlib.assessment import Assessment
from pamlib.errors import FormatError, Problem, ValidationError
from pamlib.fhir._patient import patient_identity
from pamlib.fhir._response import ResponseParser, ResponseRow
from pamlib.fhir.codes import ASSESSMENT_ID_SYSTEM, PATIENT_ID_SYSTEM
from pamlib.fhir.mapping import FhirMapping, load_mapping
from pamlib.formats.base import Reject
from pamlib.instruments import InstrumentRegistry

#: A file path, JSON text, or already-parsed JSON (a resource, Bundle or list of them).
Source = str | os.PathLike[str] | bytes | Mapping[str, Any] | list[Any]

_NDJSON_SUFFIXES = (".ndjson", ".jsonl")

log = logging.getLogger(__name__)


def _frozen_counts(value: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(value.items())))


#: Resource types counted by name when a file holds them beside its responses; any other
#: ``resourceType`` (a typo, or a value that is not a type at all) is counted as
#: :data:`_OTHER_TYPE`, so no text of the sender's reaches a log line.
_NAMED_TYPES = frozenset(
    {
        "AllergyIntolerance", "Appointment", "Bundle", "CarePlan", "CareTeam", "Condition",
        "Consent", "Device", "DiagnosticReport", "DocumentReference", "Encounter",
        "EpisodeOfCare", "Flag", "Goal", "Immunization", "Location", "Medication",
        "MedicationRequest", "MedicationStatement", "Observation", "OperationOutcome",
        "Organization", "Patient", "Person", "Practitioner", "PractitionerRole", "Procedure",
        "Provenance", "Questionnaire", "RelatedPerson", "ServiceRequest", "Task",
    }
)  # fmt: skip
_OTHER_TYPE = "another resourceType"


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
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if _writable(text):
        return text
    # Half a surrogate pair, read from a \ud800 escape: written back as the escape it was.
    return json.dumps(value, separators=(",", ":"))


def _writable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reject(source: str, problems: list[Problem], original: object) -> Reject:
    first = problems[0]
    message = first.message if len(problems) == 1 else "; ".join(str(p) for p in problems)
    if not _writable(message):  # a value quoted from the input holds half a surrogate pair
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return Reject(source, first.where, first.code, message, {"json": _dumps(original)})


#: The reject of a repeated assessment id: the code and words of the CSV readers.
DUPLICATE_ID = "duplicate-assessment-id"
DUPLICATE_MESSAGE = "the assessment id was used by an earlier record in the file"


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _document_problem(exc: DocumentError) -> Problem:
    """The problem of a whole JSON document parsed at ``$``: a syntax error is located by line
    and column (``line 3 column 7``), anything else is the document (``$``)."""
    problem = exc.problem
    if problem.where.startswith("$: "):
        return Problem(problem.where[3:], problem.code, problem.message)
    return problem


def _undecodable(data: bytes) -> Problem:
    """Where the first byte that is not UTF-8 is: the line, and the offset in that line."""
    for n, part in enumerate(data.split(b"\n"), 1):
        try:
            decode_utf8(part, f"line {n}")
        except DocumentError as exc:
            return exc.problem
    return Problem("$", "encoding", "not UTF-8 text")  # pragma: no cover - data decoded


def source_label(source: Source) -> str:
    """How rejects name ``source``: the path as given, or ``<data>``/``<json>``."""
    if isinstance(source, Mapping | list):
        return "<data>"
    if isinstance(source, bytes) or (isinstance(source, str) and _is_json_text(source)):
        return "<json>"
    if isinstance(source, str) and source == "-":
        return "<stdin>"
    return os.fspath(source)


def patient_key(reference: str) -> str | None:
    """``Patient/{id}`` that a RESTful reference or ``fullUrl`` names, its version dropped
    (``https://x/fhir/Patient/1/_history/2`` → ``Patient/1``); ``None`` for anything else.

    One Patient is cited in several shapes in real exports (relative, absolute, versioned): all
    must find it, or one person's responses would be read as several patients'.
    """
    head, _, version = reference.partition("/_history/")
    if "/" in version:
        return None
    parts = head.rsplit("/", 2)
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return f"Patient/{parts[-1]}"
    return None


#: (resource, where it is, the ``Patient/{id}`` it stands for) of a Patient in the input.
_Located = tuple[Mapping[str, Any], str, str | None]
_Identity = tuple[str | None, str | None, list[Problem]]

#: The problem of a reference that more than one different Patient answers to. Located by the
#: response (at its ``subject.reference``); the id is not quoted, as it may be an NHS number.
AMBIGUOUS = Problem(
    "",
    "ambiguous-reference",
    "more than one different Patient in the input has this reference",
)


class _PatientIndex:
    """Patients of one input, or of one Bundle in it, by every reference that may point at them.

    A reference resolves in its own Bundle first, then in the Bundles around it (FHIR resolves
    a reference inside a Bundle against that Bundle's entries). Where one scope holds two
    Patients under one reference that would give different patients, the reference is
    ambiguous: the response citing it is rejected rather than given to either. Two copies of
    one Patient (the same identifiers) are one patient.
    """

    def __init__(self, patient_id_system: str, parent: _PatientIndex | None = None) -> None:
        self.patient_id_system = patient_id_system
        # One Patient per key, or several that give different patients (ambiguous).
        self._where: dict[str, list[_Located]] = {}
        self._cache: dict[str, tuple[str, _Identity]] = {}
        self._parent = parent
        #: The key of this index that resolved the last reference (see :meth:`forget`).
        self.last: str | None = None
        #: Keys that became ambiguous, in order, for a reader that already used them.
        self.conflicts: list[str] = []

    def add(self, resource: Mapping[str, Any], path: str, full_url: object = None) -> None:
        rid = resource.get("id")
        keys = [full_url] if isinstance(full_url, str) else []
        if isinstance(rid, str):
            keys.append(f"Patient/{rid}")
        # A Patient known only by a RESTful fullUrl is ``Patient/{id}`` to relative references.
        from_url = patient_key(full_url) if isinstance(full_url, str) else None
        if from_url is not None:
            keys.append(from_url)
        own = f"Patient/{rid}" if isinstance(rid, str) else from_url
        located = (resource, path, own)
        for key in dict.fromkeys(str(k) for k in keys):
            self._put(key, located)

    def _put(self, key: str, located: _Located) -> None:
        found = self._where.get(key)
        if found is None:
            self._where[key] = [located]
            return
        if len(found) > 1:
            return  # ambiguous already
        first = found[0]
        if first[0] is located[0] or (first[0] == located[0] and first[2] == located[2]):
            return  # the same Patient again (a Bundle per response repeats it)
        if self._same_patient(first, located):
            return
        found.append(located)
        self._cache.clear()
        self.conflicts.append(key)

    def _identity(self, located: _Located) -> _Identity:
        resource, path, own = located
        return patient_identity(
            resource, path, patient_id_system=self.patient_id_system, reference=own
        )

    def _same_patient(self, a: _Located, b: _Located) -> bool:
        """Whether two Patients give the same patient, with the same problems if any."""
        pid_a, nhs_a, problems_a = self._identity(a)
        pid_b, nhs_b, problems_b = self._identity(b)
        return (pid_a, nhs_a) == (pid_b, nhs_b) and [(p.code, p.message) for p in problems_a] == [
            (p.code, p.message) for p in problems_b
        ]

    def child(self) -> _PatientIndex:
        """An index for one Bundle that falls back to this one."""
        return _PatientIndex(self.patient_id_system, self)

    def shared(self) -> _PatientIndex:
        """An index for one Bundle that falls back to this one and also adds its Patients to
        it: in a JSON document, a Patient of one Bundle is found from anywhere else."""
        return _SharedIndex(self.patient_id_system, self)

    def forget(self) -> None:
        """Clear :attr:`last` here and in every index this one falls back to."""
        index: _PatientIndex | None = self
        while index is not None:
            index.last = None
            index = index._parent

    def resolve(self, reference: str) -> _Identity | None:
        cached = self._cache.get(reference)
        if cached is not None:
            self.last = cached[0]
            return cached[1]
        key = reference
        located = self._where.get(key)
        if located is None:
            key = patient_key(reference) or ""
            located = self._where.get(key)
        if located is None:
            return self._parent.resolve(reference) if self._parent is not None else None
        found = self._identity(located[0]) if len(located) == 1 else (None, None, [AMBIGUOUS])
        self._cache[reference] = (key, found)
        self.last = key
        return found


class _SharedIndex(_PatientIndex):
    """A Bundle's index whose Patients are also its parent's (see :meth:`_PatientIndex.shared`)."""

    def add(self, resource: Mapping[str, Any], path: str, full_url: object = None) -> None:
        super().add(resource, path, full_url)
        assert self._parent is not None  # noqa: S101 - made by shared()
        self._parent.add(resource, path, full_url)


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
        encoding: str | None = None,
    ) -> None:
        self.strict = strict
        #: The encoding files were said to be in; ``None`` for UTF-8 (FHIR's own), where a
        #: UTF-16 or UTF-32 byte order mark is still honoured.
        self.encoding = _given_encoding(encoding)
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
        #: Bundles of the last source read that link to a ``next`` page (a search read in part).
        self.next_pages = 0
        # Assessment ids of the source being read, to reject repeats (see _response).
        self._seen: set[str] = set()
        self._generated: dict[str, list[str]] = {}

    # -- entry point -----------------------------------------------------------------------

    def read(self, source: Source, name: str | None = None) -> Iterator[RowChunk]:
        """Yield chunks until ``source`` is exhausted."""
        label = name or source_label(source)
        self._seen, self._generated = set(), {}
        self.next_pages = 0
        chunks: Iterator[RowChunk]
        if isinstance(source, Mapping | list):
            chunks = self._parsed(dict(source) if isinstance(source, Mapping) else source, label)
        elif isinstance(source, bytes):
            chunks = self._json_bytes(source, label)
        elif isinstance(source, str) and _is_json_text(source):
            chunks = self._json_text(source, label)
        elif isinstance(source, str) and source == "-":
            chunks = self._json_bytes(self._read_stdin(label), label, unnamed=True)
        else:
            path = Path(source)
            if path.name.lower().endswith(_NDJSON_SUFFIXES):
                chunks = self._ndjson(_lines(path, self.encoding), label)
            else:
                chunks = self._json_bytes(self._read_bytes(path, label), label)
        for chunk in chunks:
            if self.strict and chunk.rejects:
                problems = [Problem(r.location, r.code, r.message) for r in chunk.rejects]
                raise FormatError(
                    f"{chunk.rejects[0].source}: {len(problems)} record(s) cannot be used "
                    "(strict mode)",
                    problems,
                )
            yield chunk
        if self.next_pages:
            # Never the link itself: a search URL may hold an identifier (?identifier=…).
            log.warning(
                "%d FHIR Bundle(s) link to a next page of search results that is not in the "
                "input: only the pages given were read (fetch every page to read them all)",
                self.next_pages,
            )

    @staticmethod
    def _read_bytes(path: Path, label: str) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise FormatError(
                "cannot read FHIR input", [Problem(label, "io", exc.strerror or "cannot read")]
            ) from None

    @staticmethod
    def _read_stdin(label: str) -> bytes:
        """Standard input, whole: a JSON document, or NDJSON (see :meth:`_json_text`)."""
        try:
            return sys.stdin.buffer.read()
        except (OSError, AttributeError, ValueError):  # closed, or replaced by a text stream
            raise FormatError(
                "cannot read FHIR input", [Problem(label, "io", "cannot read standard input")]
            ) from None

    # -- JSON documents ----------------------------------------------------------------------

    @staticmethod
    def _unreadable(label: str, problem: Problem) -> Iterator[RowChunk]:
        """A document that cannot be read is one rejected record."""
        yield RowChunk((), (Reject(label, problem.where, problem.code, problem.message, {}),), 1)

    def _json_bytes(self, data: bytes, label: str, *, unnamed: bool = False) -> Iterator[RowChunk]:
        if self.encoding is None:
            typed = self._typed_bundle(data, label)
            if typed is not None:
                return typed
            doc = fast_json(data)
            if doc is not NOT_PARSED:
                return self._document(doc, label)
        # The encoding given, or UTF-16 or UTF-32 by its byte order mark.
        wide = _byte_order(self.encoding, data) if self.encoding else _wide_encoding(data)
        if wide is not None:
            try:
                text = data.decode(wide).removeprefix("\ufeff")
            except UnicodeDecodeError as exc:
                message = f"not {wide.upper()} text (invalid bytes at offset {exc.start})"
                return self._unreadable(label, Problem("$", "encoding", message))
            return self._json_text(text, label, unnamed=unnamed)
        try:
            text = decode_utf8(data, "$")
        except DocumentError:
            return self._unreadable(label, _undecodable(data))
        return self._json_text(text, label, unnamed=unnamed)

    def _typed_bundle(self, data: bytes, label: str) -> Iterator[RowChunk] | None:
        """The chunks of a Bundle read the typed way (:mod:`pamlib.fhir._typed`), or ``None``
        for :meth:`_document` to read the document.

        A FHIR server answers a search with one Bundle, often one line. Parsed whole into
        dictionaries, and every response then read from those, it cost about four times what
        the same responses do as NDJSON. Here the Bundle is decoded with its entries' resources
        left as text: each response is decoded as an NDJSON line is, and a Patient, a
        Questionnaire or a response that way does not take becomes a dictionary from its own
        text. The outcome is :meth:`_document`'s on the same bytes, every row and reject, in
        order. Whatever this way does not read as that one would — bytes that are not UTF-8, a
        document that may nest too deep, an integer longer than Python reads, an entry that is
        not an object with a resource, a nested Bundle, a resource msgspec refuses — leaves the
        whole document to it: found before anything is read or counted.
        """
        typed = _typed_path()
        if typed is None:
            return None
        bundle = typed.decode_bundle(data)
        if bundle is None or text_too_deep(data) is not False or not _utf8(data):
            return None
        if _long_integer(data):  # read by the standard library, it would stop the document
            return None
        plan: list[tuple[str, str, Any, Any]] = []
        for i, entry in enumerate(() if bundle.entry is typed.UNSET else bundle.entry):
            path, raw = f"$.entry[{i}].resource", entry.resource
            if raw is typed.UNSET:
                return None
            # Decoded here to know it decodes, and again when read: a response kept decoded
            # until then costs more than its decoding (Python's collector walks it).
            if typed.decode(raw) is not None:
                plan.append((_TYPED, path, None, raw))
                continue
            kind = typed.resource_kind(raw)
            if kind in (_RESPONSE, "Patient", "Questionnaire"):
                value = fast_json(bytes(raw))
                if not isinstance(value, dict):  # not parsed here, or not an object
                    return None
                plan.append((kind, path, entry.fullUrl, value))
            elif isinstance(kind, str) and kind != "Bundle":
                plan.append((kind, path, None, None))
            else:
                return None
        return made_paused(self._typed_chunks(typed, plan, bundle.link, label))

    def _typed_chunks(
        self, typed: ModuleType, plan: list[tuple[str, str, Any, Any]], link: object, label: str
    ) -> Iterator[RowChunk]:
        """:meth:`_typed_bundle`'s chunks: the Bundle's other resources indexed and counted in
        the order of its entries, as :meth:`_walk` does, then each response read in order."""
        self.other_resources["Bundle"] += 1
        if _links_to_next_page({"link": link}):
            self.next_pages += 1
        scope = _PatientIndex(self.patient_id_system).shared()
        # (path, the text of a response the typed way decodes, or None and its dictionary)
        responses: list[tuple[str, Any, Any]] = []
        for kind, path, extra, value in plan:
            if kind == _TYPED:
                responses.append((path, value, None))
                continue
            if kind == _RESPONSE:
                responses.append((path, None, value))
                continue
            self.other_resources[kind if kind in _NAMED_TYPES else _OTHER_TYPE] += 1
            if kind == "Patient":
                scope.add(value, path, extra)
            elif kind == "Questionnaire":
                self.parser.add_questionnaire(value)
        for start in range(0, len(responses), self.chunk_rows):
            part = responses[start : start + self.chunk_rows]
            rows: list[ResponseRow] = []
            rejects: list[Reject] = []
            for path, text, given in part:
                outcome: ResponseRow | Reject | None = None
                value = given
                if text is not None:
                    scope.forget()
                    row = typed.response_row(
                        self.parser, typed.decode(text), path, scope.resolve, self._seen
                    )
                    if row is not None:
                        self._seen.add(row.assessment_id)
                        outcome = row
                    else:
                        value = _resource_value(text, path)
                if outcome is None:
                    outcome = self._final(self._response(value, path, scope), label)
                if isinstance(outcome, ResponseRow):
                    rows.append(outcome)
                else:
                    rejects.append(outcome)
            yield RowChunk(tuple(rows), tuple(rejects), len(part))
        if not responses:
            yield RowChunk((), (), 0)

    def _json_text(self, text: str, label: str, *, unnamed: bool = False) -> Iterator[RowChunk]:
        """One JSON document. Text that is NDJSON (a value per line) is read line by line when
        nothing names its kind (``unnamed``: standard input); a file's name decides its kind,
        so a ``.json`` file of NDJSON stays one reject, which says how to read it."""
        try:
            doc = parse_json(text, "$")
        except DocumentError as exc:
            if not _is_json_lines(text, exc.problem):
                return self._unreadable(label, _document_problem(exc))
            if unnamed:
                data = text.encode("utf-8", "surrogatepass")
                return self._ndjson(_numbered([data.splitlines(keepends=True)]), label)
            problem = _document_problem(exc)
            message = f"{problem.message}: a JSON value per line is NDJSON (name the file .ndjson)"
            return self._unreadable(label, attrs.evolve(problem, message=message))
        return self._document(doc, label)

    def _parsed(self, doc: object, label: str) -> Iterator[RowChunk]:
        """Already-parsed JSON: held to the nesting limit of JSON text."""
        if _too_deep(doc):
            message = f"nested more than {MAX_DEPTH} levels deep"
            return self._unreadable(label, Problem("$", "too-deep", message))
        return self._document(doc, label)

    def _document(self, doc: object, label: str) -> Iterator[RowChunk]:
        """Chunks from one parsed JSON value: a resource, a Bundle, or a list of resources.

        Everything is indexed first, so a response may cite a Patient or Questionnaire anywhere
        in the document. Each chunk is made with the garbage collector paused, which would
        otherwise walk the whole parsed document again and again (about half the time of a
        large Bundle): reading runs no plugin's code.
        """
        return made_paused(self._document_chunks(doc, label))

    def _document_chunks(self, doc: object, label: str) -> Iterator[RowChunk]:
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
        """Index context resources into ``patients``; yield each record (or non-resource), in
        the order of the input.

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
            yield self._response(value, path, patients)
            return
        # counted by name only for a type pamlib knows: the field is the sender's text, and
        # the count is logged
        self.other_resources[kind if kind in _NAMED_TYPES else _OTHER_TYPE] += 1
        if kind == "Patient":
            patients.add(value, path, full_url)
        elif kind == "Questionnaire":
            self.parser.add_questionnaire(value)
        elif kind == "Bundle":
            if _links_to_next_page(value):
                self.next_pages += 1
            entries = value.get("entry", [])
            # ``entry`` that is not an array is one entry, located where it is
            numbered = (
                [(f"{path}.entry[{i}]", e) for i, e in enumerate(entries)]
                if isinstance(entries, list)
                else [(f"{path}.entry", entries)]
            )
            scope = patients.shared()  # a reference resolves in its own Bundle first
            for here, entry in numbered:
                if isinstance(entry, dict) and "resource" in entry:
                    yield from self._walk(
                        entry["resource"], f"{here}.resource", scope, entry.get("fullUrl")
                    )
                else:
                    problem = Problem(here, "not-a-resource", "an entry needs a resource")
                    yield _Item(None, here, entry, scope, problem)

    def _response(self, resource: dict[str, Any], path: str, patients: _PatientIndex) -> _Item:
        """A response as a record, its assessment id checked against those seen before it.

        As in CSV input, the first response with an id is read and every later one is rejected
        (``duplicate-assessment-id``), whatever else is wrong with either. An id pamlib makes
        from the content (a response with neither identifier nor id) repeats only when the whole
        response repeats; a response that differs only in its subject gets ``-2``, ``-3``… added
        to that id, so two patients' identical answers are two assessments.
        """
        found = self.parser.assessment_id(resource, path)
        value = found.value
        if found.generated:
            variants = self._generated.setdefault(value, [])
            whole = _digest(resource)
            if whole not in variants:
                variants.append(whole)
                if len(variants) > 1:
                    value = f"{value}-{len(variants)}"
        duplicate = None
        if value in self._seen:
            duplicate = Problem(found.where, DUPLICATE_ID, DUPLICATE_MESSAGE)
        self._seen.add(value)
        return _Item(resource, path, resource, patients, assessment_id=value, duplicate=duplicate)

    def _outcome(self, item: _Item, label: str, *, final: bool) -> ResponseRow | Reject | None:
        """The row or reject of one item; ``None`` (not final) when a later line may fix it."""
        if item.problem is not None or item.resource is None:
            problem = item.problem or Problem(item.path, "not-a-resource", "not a resource")
            return _reject(label, [problem], item.original)
        self.parser.resolve_subject = item.patients.resolve
        item.patients.forget()
        parsed = self.parser.parse(
            item.resource, item.path, final=final, assessment_id=item.assessment_id
        )
        extra = [item.duplicate] if item.duplicate is not None else []
        if isinstance(parsed, ResponseRow):
            return _reject(label, extra, item.original) if extra else parsed
        if not final and any(p.code in _DEFERRABLE for p in parsed):
            return None
        return _reject(label, parsed + extra, item.original)

    def _final(self, item: _Item, label: str) -> ResponseRow | Reject:
        outcome = self._outcome(item, label, final=True)
        assert outcome is not None  # noqa: S101 - a final outcome is never deferred
        return outcome

    # -- NDJSON ------------------------------------------------------------------------------

    def _ndjson(self, lines: Iterator[tuple[int, bytes]], label: str) -> Iterator[RowChunk]:
        """One pass, one parse per line. A response that cites a Patient or Questionnaire not
        seen yet waits — until the end of the file, or until 10,000 others wait — and is then
        read with everything indexed so far."""
        patients = _PatientIndex(self.patient_id_system)
        rows: list[ResponseRow] = []
        rejects: list[Reject] = []
        waiting: deque[_Item] = deque()
        n_read = 0
        emitted = False
        typed = _typed_path()
        # References to Patient lines that gave a row its patient (see _late_conflict).
        cited: set[str] = set()
        try:
            for n, data in lines:
                row = None if typed is None else self._typed_row(typed, data, n, patients)
                if row is not None:
                    n_read += 1
                    rows.append(row)
                    if patients.last is not None:
                        cited.add(patients.last)
                else:
                    for outcome in self._dictionary_line(data, n, patients, label, waiting):
                        n_read += 1
                        if isinstance(outcome, ResponseRow):
                            rows.append(outcome)
                            if patients.last is not None:
                                cited.add(patients.last)
                        elif outcome is not None:
                            rejects.append(outcome)
                if patients.conflicts:
                    _late_conflict(patients, cited, label, n)
                if len(rows) + len(rejects) >= self.chunk_rows:
                    yield RowChunk(tuple(rows), tuple(rejects), len(rows) + len(rejects))
                    n_read -= len(rows) + len(rejects)
                    rows, rejects, emitted = [], [], True
        except OSError as exc:
            raise FormatError(
                "cannot read FHIR input", [Problem(label, "io", exc.strerror or "cannot read")]
            ) from None
        except UnicodeError:  # a codec that fails other than on a byte (bad bytes are rejects)
            raise FormatError(
                "cannot read FHIR input",
                [Problem(label, "encoding", f"cannot be read as {self.encoding}")],
            ) from None
        for item in waiting:
            outcome = self._final(item, label)
            if isinstance(outcome, ResponseRow):
                rows.append(outcome)
            else:
                rejects.append(outcome)
        if rows or rejects or not emitted:
            yield RowChunk(tuple(rows), tuple(rejects), n_read)

    def _dictionary_line(
        self, data: bytes, n: int, patients: _PatientIndex, label: str, waiting: deque[_Item]
    ) -> Iterator[ResponseRow | Reject | None]:
        """The outcome of each record on one NDJSON line, read as dictionaries; ``None`` for a
        response that waits (in ``waiting``) for a Patient or Questionnaire further down."""
        try:
            value = fast_json(data)
            if value is NOT_PARSED:
                line = decode_utf8(data, f"line {n}")
                if not line.strip():
                    return
                value = parse_json(line, f"line {n}")
        except DocumentError as exc:
            # One bad line is one reject; every other line is still read.
            message = exc.problem.message
            if exc.problem.code == "encoding" and self.encoding is not None:
                message = f"not {self.encoding.upper()} text"  # offsets are of the UTF-8 read
            problem = Problem(f"line {n}", exc.problem.code, message)
            text = data.decode("utf-8", "replace").rstrip("\r\n")
            items: Iterable[_Item] = [_Item(None, f"line {n}", text, patients, problem)]
        else:
            is_bundle = isinstance(value, dict) and value.get("resourceType") == "Bundle"
            if is_bundle:  # indexed whole before any response is resolved, as a document is
                items = list(self._walk(value, f"line {n}, $", patients.child()))
            else:
                items = self._walk(value, f"line {n}, $", patients)
        for item in items:
            outcome = self._outcome(item, label, final=False)
            if outcome is None:
                waiting.append(item)
                if len(waiting) <= _MAX_WAITING:
                    yield None
                    continue
                # Memory stays bounded: the longest-waiting response is read now.
                outcome = self._final(waiting.popleft(), label)
            yield outcome

    def _typed_row(
        self, typed: ModuleType, data: bytes, n: int, patients: _PatientIndex
    ) -> ResponseRow | None:
        """The row of an NDJSON line of the usual shape (see :mod:`pamlib.fhir._typed`), or
        ``None``: the line is read the dictionary way, which locates every problem."""
        qr = typed.decode(data)
        if qr is None:
            return None
        patients.forget()
        row: ResponseRow | None = typed.response_row(
            self.parser, qr, f"line {n}, $", patients.resolve, self._seen
        )
        if row is not None:
            self._seen.add(row.assessment_id)
        return row


_RESPONSE = "QuestionnaireResponse"
#: A response of the usual shape, decoded the typed way (see :meth:`FhirReader._typed_bundle`).
_TYPED = "typed"


def _utf8(data: bytes) -> bool:
    """Whether ``data`` is UTF-8 throughout (what msgspec skips unread, it does not check)."""
    if data.isascii():
        return True
    try:
        codecs.utf_8_decode(data, "strict", True)
    except UnicodeDecodeError:
        return False
    return True


#: Every byte a digit of a JSON number may be, as ``0``; every other as a space.
_DIGITS = bytes(ord("0") if chr(b).isdigit() and b < 128 else ord(" ") for b in range(256))


def _long_integer(data: bytes) -> bool:
    """Whether ``data`` holds a run of more digits than Python reads as one integer
    (:func:`sys.get_int_max_str_digits`): msgspec skips such a number in a part it leaves
    unread, where the standard library refuses the whole document."""
    limit = sys.get_int_max_str_digits()
    return bool(limit) and data.translate(_DIGITS).find(b"0" * (limit + 1)) >= 0


def _resource_value(raw: Any, path: str) -> dict[str, Any]:
    """The dictionary of one resource's JSON text, which msgspec decoded the typed way
    already (so it is UTF-8 JSON), as :func:`fast_json` or the standard library reads it."""
    data = bytes(raw)
    value = fast_json(data)
    if value is NOT_PARSED:
        value = parse_json(decode_utf8(data, path), path)
    return value  # type: ignore[no-any-return]  # a response, decoded as an object above


def _late_conflict(patients: _PatientIndex, cited: set[str], label: str, n: int) -> None:
    """Stop when line ``n`` gives a second, different Patient a reference that responses
    already read took for the first: NDJSON is read in one pass, and those responses may be
    passed on already, so they cannot become rejects as the later ones do. Stopping keeps
    them from being left with what may be the wrong patient, whatever the chunk size."""
    keys, patients.conflicts[:] = list(patients.conflicts), []
    if cited.isdisjoint(keys):
        return
    message = (
        "a Patient on this line has the reference of a different Patient that responses "
        "already read cite: put every Patient before the responses that cite it (each of them "
        "is then rejected as ambiguous), or split a file that mixes two sources' ids"
    )
    raise FormatError(
        f"{label}: responses cite an ambiguous Patient reference",
        [Problem(f"line {n}", AMBIGUOUS.code, message)],
    )


def _typed_path() -> ModuleType | None:
    """The typed reading of usual responses, when msgspec parses (imported on first use, so
    ``import pamlib`` never imports msgspec)."""
    if _fast_decoder() is None:
        return None
    from pamlib.fhir import _typed

    return _typed


def _lines(path: Path, encoding: str | None = None) -> Iterator[tuple[int, bytes]]:
    """The lines of a file as UTF-8 bytes, numbered as a text reader numbers them (``\\n``,
    ``\\r\\n`` and a lone ``\\r`` each end a line), so that each line is decoded on its own.

    A file that starts with a UTF-16 or UTF-32 byte order mark (PowerShell and some Windows
    tools save text so) is transcoded as it is read; split as bytes, its lines would be
    fragments of characters, each a reject of its own. Bytes that are not of its encoding stay
    bytes that are not UTF-8, so only their line is rejected. An ``encoding`` given is read
    the same way.
    """
    with path.open("rb") as f:
        head = f.peek(8)[:8]
        wide = _byte_order(encoding, head) if encoding else _wide_encoding(head)
        if wide is None:
            yield from _numbered([f])
            return
        text = io.TextIOWrapper(f, encoding=wide, errors=_NOT_TEXT, newline="")
        yield from _numbered([(line.encode("utf-8", "surrogatepass") for line in text)])


def _numbered(sources: Iterable[Iterable[bytes]]) -> Iterator[tuple[int, bytes]]:
    """Numbered lines of the raw lines of ``sources`` (each raw line ends at ``\\n``, or
    holds several lines that ``\\r`` ends)."""
    n = 0
    for source in sources:
        for raw in source:
            for part in raw.splitlines() if b"\r" in raw else (raw,):
                n += 1
                yield n, part


#: Byte order marks of the wide Unicode encodings, and the first character of JSON text after
#: each: whitespace or a bracket, ASCII, so its other bytes are NUL (UTF-32 LE is tried first:
#: its mark starts with the UTF-16 LE one). A UTF-8 mark is dropped where the text is decoded.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32", "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16-be"),
)


def _not_text(exc: UnicodeError) -> tuple[str, int]:
    """Bytes of a wide encoding that are no character (an unpaired surrogate, a cut-off one)
    become a lone surrogate, which is never UTF-8: the line holding them is rejected
    (``encoding``) and no character is made up for them."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "\udcff", exc.end


_NOT_TEXT = "pamlib-fhir-not-text"
codecs.register_error(_NOT_TEXT, _not_text)


def _given_encoding(encoding: str | None) -> str | None:
    """The codec of an encoding a caller gives, ``None`` for UTF-8 (read as by default)."""
    if encoding is None:
        return None
    from pamlib.formats.encoding import codec_name

    name = codec_name(encoding)
    return None if name in ("utf-8", "utf-8-sig") else name


def _byte_order(encoding: str, head: bytes) -> str:
    """``encoding``, with the byte order of UTF-16 or UTF-32 given without one and without a
    byte order mark read from the first character (JSON text starts with an ASCII one, so
    its other bytes are NUL): Python's reader of a stream would refuse such a file."""
    if encoding not in ("utf-16", "utf-32") or _wide_encoding(head) is not None:
        return encoding
    last = 1 if encoding == "utf-16" else 3
    big = head[:1] == b"\0" and head[last : last + 1] != b"\0"
    return f"{encoding}-{'be' if big else 'le'}"


def _links_to_next_page(bundle: Mapping[str, Any]) -> bool:
    """Whether a Bundle (a page of search results) links to a ``next`` page."""
    links = bundle.get("link")
    return isinstance(links, list) and any(
        isinstance(link, dict) and link.get("relation") == "next" for link in links
    )


def _wide_encoding(data: bytes) -> str | None:
    """``utf-16`` or ``utf-32`` when ``data`` starts with that byte order mark and then a
    character JSON text may start with, else ``None``. Bytes ``FF FE`` are never UTF-8, so a
    mark alone does not decide: a line of junk may start so, and must stay that line's reject.
    """
    for bom, encoding, plain in _WIDE_BOMS:
        if data.startswith(bom):
            unit = data[len(bom) : len(bom) * 2]
            try:
                first = unit.decode(plain)
            except UnicodeDecodeError:
                continue
            if len(first) == 1 and first in " \t\r\n{[":
                return encoding
    return None


def _is_json_text(source: str) -> bool:
    """Whether a string is JSON text rather than a path: it starts as JSON does and names no
    file (``[site A] export.json`` is a file name, and must be read as one)."""
    if source.lstrip()[:1] not in ("{", "["):
        return False
    try:
        return not Path(source).is_file()
    except (OSError, ValueError):  # far too long for a name, or a NUL in it: text
        return True


def _is_json_lines(text: str, problem: Problem) -> bool:
    """Whether a document that does not parse is NDJSON after all: JSON text follows the first
    value, and the first line that is not blank is a whole resource or array on its own."""
    if problem.message != "not JSON: Extra data":
        return False
    for line in text.lstrip("\ufeff").splitlines():
        if line.strip():
            try:
                return isinstance(json.loads(line), dict | list)
            except (ValueError, RecursionError):
                return False
    return False  # pragma: no cover - extra data follows a value


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
    assessment_id: str | None = attrs.field(default=None, repr=False)
    duplicate: Problem | None = None


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
    encoding: str | None = None,
) -> tuple[list[Assessment], list[Reject], ReadCounts]:
    """Every assessment in ``source``, every rejected record, and the counts.

    ``source`` is a path (``.ndjson``/``.jsonl`` read line by line, anything else as one JSON
    document), JSON text, or parsed JSON. ``mapping`` (a :class:`FhirMapping` or a TOML path)
    maps foreign questionnaires; ``instrument`` and ``link_ids`` name the instrument of
    responses no mapping covers. In ``strict`` mode any problem raises
    :class:`~pamlib.errors.FormatError`. ``encoding`` is that of a file (or bytes) that is not
    UTF-8, as FHIR JSON should be (any Python codec: ``cp1252``, ``utf-16``); without it, UTF-8,
    or UTF-16 or UTF-32 by a byte order mark.
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
        encoding=encoding,
    )
    assessments: list[Assessment] = []
    rejects: list[Reject] = []
    n_read = 0
    with collector_paused():  # objects made here hold no cycle (see collector_paused)
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
