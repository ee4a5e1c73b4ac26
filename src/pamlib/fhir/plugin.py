"""The built-in ``fhir`` format, registered through ``pamlib_register_formats`` like any plugin.

Reading (:class:`~pamlib.formats.base.ReadOptions`): ``instrument`` and ``mapping`` (linkId →
item id) apply to responses of a questionnaire that is neither pamlib's nor in a mapping file;
``settings`` may hold ``mapping`` (path of a mapping TOML file, see :mod:`pamlib.fhir.mapping`),
``questionnaires`` (Questionnaire paths or dicts that supply answer weights),
``patient_id_system``, ``assessment_id_system`` and ``encoding`` (a codec name, for a file
that is not UTF-8).

Writing (:class:`~pamlib.formats.base.WriteOptions`): a ``.ndjson`` target gets one resource per
line; anything else one Bundle. ``settings``: ``bundle`` (``transaction``, the default, or
``collection``), ``namespace`` (UUID of the resource ids; random when absent),
``snomed_level``, ``raw_totals``, ``patient_id_system``, ``assessment_id_system``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from pamlib.errors import ConfigurationError
from pamlib.hookspecs import hookimpl

if TYPE_CHECKING:
    from pamlib.fhir._bundle import Assembler, BundleSettings
    from pamlib.fhir._reader import FhirReader
    from pamlib.fhir._response import ResponseRow
    from pamlib.formats.base import (
        Format,
        ReadChunk,
        ReadOptions,
        RecordBatch,
        Target,
        TextColumn,
        WriteOptions,
    )
    from pamlib.plugins import PluginHost
    from pamlib.scoring.provider import BatchScores

__all__ = ["FhirFormat", "FhirWriter", "looks_like_fhir"]

log = logging.getLogger(__name__)


def looks_like_fhir(path: str | os.PathLike[str]) -> bool:
    """True when the file's first kilobyte reads like FHIR JSON (it names a ``resourceType``).

    For choosing between ``fhir`` and a plain JSON format when both claim ``.json``.
    """
    try:
        with Path(path).open("rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[") and b'"resourceType"' in head


def _str_setting(settings: Mapping[str, object], key: str, default: str) -> str:
    value = settings.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"FHIR setting {key!r} must be a non-empty string")
    return value


def _bool_setting(settings: Mapping[str, object], key: str, default: bool) -> bool:
    value = settings.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    if not isinstance(value, bool):
        raise ConfigurationError(f"FHIR setting {key!r} must be true or false")
    return value


def target_name(target: Target) -> str:
    """The file name an output is written under, ``""`` for a stream without one.

    ``pamlib score`` hands writers the stream of the output's temporary file, which names the
    final file (``label``, the name its write errors give): ``-o out.ndjson --format fhir``
    must write NDJSON there as a path given directly does, or the file would not read back.
    """
    if isinstance(target, str | os.PathLike):
        return os.fspath(target)
    raw = getattr(target, "raw", None)
    for name in (getattr(raw, "label", None), getattr(target, "name", None)):
        if isinstance(name, str | os.PathLike) and os.fspath(name) not in ("", "<stdout>"):
            return os.fspath(name)
    return ""


def bundle_settings(target: Target, settings: Mapping[str, object]) -> BundleSettings:
    """Writer settings from ``WriteOptions.settings`` (errors name the setting)."""
    from pamlib.fhir._bundle import BundleSettings
    from pamlib.fhir.codes import ASSESSMENT_ID_SYSTEM, PATIENT_ID_SYSTEM

    known = {
        "bundle",
        "namespace",
        "snomed_level",
        "raw_totals",
        "patient_id_system",
        "assessment_id_system",
    }
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigurationError(f"unknown FHIR output settings: {', '.join(unknown)}")
    ndjson = target_name(target).lower().endswith((".ndjson", ".jsonl"))
    style = "ndjson" if ndjson else _str_setting(settings, "bundle", "transaction")
    if style not in ("transaction", "collection", "ndjson"):
        raise ConfigurationError("FHIR setting 'bundle' must be 'transaction' or 'collection'")
    import uuid

    raw_ns = settings.get("namespace")
    try:
        namespace = (
            raw_ns if raw_ns is None or isinstance(raw_ns, uuid.UUID) else uuid.UUID(str(raw_ns))
        )
    except ValueError:
        raise ConfigurationError("FHIR setting 'namespace' must be a UUID") from None
    return BundleSettings(
        style=style,
        namespace=namespace,
        snomed_level=_bool_setting(settings, "snomed_level", False),
        raw_totals=_bool_setting(settings, "raw_totals", True),
        patient_id_system=_str_setting(settings, "patient_id_system", PATIENT_ID_SYSTEM),
        assessment_id_system=_str_setting(settings, "assessment_id_system", ASSESSMENT_ID_SYSTEM),
    )


def reader_for(options: ReadOptions, host: PluginHost) -> FhirReader:
    """A ``FhirReader`` configured from ``ReadOptions``, knowing the
    instruments of ``host``."""
    from pamlib.fhir._reader import FhirReader
    from pamlib.fhir.codes import ASSESSMENT_ID_SYSTEM, PATIENT_ID_SYSTEM
    from pamlib.fhir.mapping import FhirMapping, load_mapping

    settings = options.settings
    known = {"mapping", "questionnaires", "patient_id_system", "assessment_id_system", "encoding"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigurationError(f"unknown FHIR input settings: {', '.join(unknown)}")
    raw_mapping = settings.get("mapping")
    mapping: FhirMapping | None
    if raw_mapping is None or isinstance(raw_mapping, FhirMapping):
        mapping = raw_mapping
    elif isinstance(raw_mapping, str | os.PathLike):
        mapping = load_mapping(raw_mapping)
    else:
        raise ConfigurationError("FHIR setting 'mapping' must be the path of a TOML file")
    questionnaires: list[Mapping[str, Any]] = []
    raw_qs = settings.get("questionnaires", ())
    for q in raw_qs if isinstance(raw_qs, list | tuple) else [raw_qs]:
        if isinstance(q, Mapping):
            questionnaires.append(q)
        elif isinstance(q, str | os.PathLike):
            questionnaires.append(_load_questionnaire(q))
        else:
            raise ConfigurationError("FHIR setting 'questionnaires' must list paths or resources")
    return FhirReader(
        host.instruments(),
        mapping=mapping,
        instrument=options.instrument,
        link_ids=options.mapping,
        questionnaires=questionnaires,
        strict=options.strict,
        chunk_rows=options.chunk_rows,
        patient_id_system=_str_setting(settings, "patient_id_system", PATIENT_ID_SYSTEM),
        assessment_id_system=_str_setting(settings, "assessment_id_system", ASSESSMENT_ID_SYSTEM),
        encoding=_encoding_setting(settings),
    )


def _encoding_setting(settings: Mapping[str, object]) -> str | None:
    """The ``encoding`` setting (``--encoding``): FHIR JSON is UTF-8 by the standard, but an
    export re-saved by another tool is read as the user says it is, as other inputs are."""
    value = settings.get("encoding")
    if value is None or isinstance(value, str):
        return value
    raise ConfigurationError("FHIR setting 'encoding' must be a codec name such as cp1252")


def _load_questionnaire(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    from pamlib._documents import DocumentError, decode_utf8, parse_json

    p = Path(path)
    try:
        value = parse_json(decode_utf8(p.read_bytes(), p.name), p.name)
    except OSError:
        raise ConfigurationError(f"cannot read Questionnaire {p.name} as JSON") from None
    except DocumentError as exc:
        raise ConfigurationError(
            f"cannot read Questionnaire {p.name} as JSON: {exc.problem}"
        ) from None
    if not isinstance(value, Mapping) or value.get("resourceType") != "Questionnaire":
        raise ConfigurationError(f"{p.name} is not a Questionnaire")
    return value


def rows_to_batches(
    rows: tuple[ResponseRow, ...], columns: Iterable[str] = ()
) -> tuple[RecordBatch, ...]:
    """Group rows by instrument into :class:`~pamlib.formats.base.RecordBatch` columns.

    A response's attributes (the pamlib extension) become ``extras`` columns, ``""`` where a
    response has no such attribute; so does each of ``columns`` that no response has (every
    batch of a source carries the columns its chunks declare).
    """
    import numpy as np

    from pamlib.formats.base import RecordBatch

    groups: dict[str, list[ResponseRow]] = {}
    for row in rows:
        groups.setdefault(row.instrument.id, []).append(row)
    batches = []
    for group in groups.values():
        instrument = group[0].instrument

        # Each column is gathered by attrgetter (a C loop) and converted by NumPy once; dates
        # as days since 1970 (date.toordinal() of 1970-01-01 is 719163).
        def text(name: str, group: list[ResponseRow] = group) -> Any:
            return np.array(list(map(attrgetter(name), group)), dtype=np.str_)

        def optional(name: str, group: list[ResponseRow] = group) -> Any:
            return np.array([v or "" for v in map(attrgetter(name), group)], dtype=np.str_)

        days = [d.toordinal() for d in map(attrgetter("assessed_on"), group)]
        codes = chain.from_iterable(map(attrgetter("codes"), group))
        keys = sorted({k for r in group for k in r.attributes}.union(columns) - {"site"})
        extras = {
            k: np.array([r.attributes.get(k, "") for r in group], dtype=np.str_) for k in keys
        }
        batches.append(
            RecordBatch(
                instrument=instrument,
                assessment_id=text("assessment_id"),
                patient_id=optional("patient_id"),
                nhs_number=optional("nhs_number"),
                assessed_on=(np.array(days, dtype=np.int64) - 719_163).astype("datetime64[D]"),
                site=optional("site"),
                codes=np.fromiter(
                    codes, dtype=np.int8, count=len(group) * instrument.n_items
                ).reshape(len(group), instrument.n_items),
                locations=text("location"),
                extras=extras,
            )
        )
    return tuple(batches)


def _own_columns() -> frozenset[str]:
    """Names an attribute read from FHIR cannot take as an output column: pamlib's own."""
    from pamlib.results import SCORED_TABLE_COLUMNS

    return frozenset({*SCORED_TABLE_COLUMNS, "reason", "site", "nhs_number"})


#: Output columns that are not attributes: the NHS number is the Patient's identifier (written
#: only where kept, and never again as free text), the site has its own extension.
_NOT_ATTRIBUTES = frozenset({"nhs_number", "site"})


def batch_rows(
    batch: RecordBatch,
    extra: Mapping[str, TextColumn] | None = None,
    extra_columns: Iterable[str] = (),
) -> Iterator[ResponseRow]:
    """The rows of a :class:`~pamlib.formats.base.RecordBatch` (the writer's input).

    ``extra`` columns and the ``extra_columns`` named by the writer's options (looked up in
    ``extra``, then in the batch's pass-through :attr:`~pamlib.formats.base.RecordBatch.extras`,
    as every writer looks them up) become attributes of each response, empty cells left out:
    what is read back as the same extra columns. ``nhs_number`` and ``site`` are not
    attributes.
    """
    from pamlib.fhir._response import ResponseRow
    from pamlib.formats.base import text_values

    dates = batch.assessed_on.astype("datetime64[D]").tolist()
    codes = batch.codes.tolist()
    given = dict(extra or {})
    for name in extra_columns:
        if name in given or name in _NOT_ATTRIBUTES:
            continue
        if name not in batch.extras:
            raise ConfigurationError(f"no values for output column {name!r}")
        given[name] = batch.extras[name]
    columns = {
        name: text_values(values) for name, values in given.items() if name not in _NOT_ATTRIBUTES
    }
    ids, patients = text_values(batch.assessment_id), text_values(batch.patient_id)
    nhs, sites = text_values(batch.nhs_number), text_values(batch.site)
    for i in range(len(batch)):
        yield ResponseRow(
            instrument=batch.instrument,
            assessment_id=ids[i],
            patient_id=patients[i] or None,
            nhs_number=nhs[i] or None,
            assessed_on=dates[i],
            codes=tuple(codes[i]),
            site=sites[i] or None,
            attributes={k: str(v[i]) for k, v in columns.items() if str(v[i])},
            location=batch.location(i),
        )


class FhirWriter:
    """Streams entries into one Bundle (or resources into NDJSON); the file appears at close.

    A path is written as every output is (:class:`~pamlib.formats.guard.AtomicTarget`): to a
    hidden temporary file renamed over the name only when complete, a symlink's target
    replaced and the link kept, a device or pipe written through, errors naming the file by
    its base name. An open binary stream is written and left open.
    """

    def __init__(
        self, target: Target, settings: BundleSettings, extra_columns: Iterable[str] = ()
    ) -> None:
        from pamlib.fhir._bundle import Assembler
        from pamlib.formats.guard import AtomicTarget

        self.settings = settings
        self.extra_columns = tuple(extra_columns)
        self._assembler: Assembler = Assembler(settings, check_text=True)
        self._n = 0
        self._done = False
        self._target: AtomicTarget | None = None
        if hasattr(target, "write"):  # an open binary stream (standard output): no temp file
            stream = cast("IO[bytes]", target)  # Target is a path or a binary stream
        else:
            self._target = AtomicTarget(target)
            stream = self._target.stream
        self._file = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
        self._start()

    def _start(self) -> None:
        if self.settings.style != "ndjson":
            self._file.write(f'{{"resourceType":"Bundle","type":"{self.settings.style}"')

    def write(
        self, batch: RecordBatch, scores: BatchScores | None, extra: Mapping[str, TextColumn]
    ) -> None:
        per_row = scores
        for i, row in enumerate(batch_rows(batch, extra, self.extra_columns)):
            result = per_row.result(i, row.assessment_id) if per_row is not None else None
            for entry in self._assembler.entries(row, result):
                self._emit(entry)

    def _emit(self, entry: Mapping[str, Any]) -> None:
        from pamlib.fhir._bundle import dumps

        text = dumps(entry)
        if self.settings.style == "ndjson":
            self._file.write(text + "\n")
        else:
            self._file.write(',"entry":[\n' if self._n == 0 else ",\n")
            self._file.write(text)
        self._n += 1

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            if self.settings.style != "ndjson":
                self._file.write("\n]}\n" if self._n else "}\n")
            self._file.flush()
            # the text layer is dropped, not closed: the stream is the target's (or the caller's)
            self._file.detach()
        except BaseException:
            if self._target is not None:
                self._target.discard()
            raise
        if self._target is not None:
            self._target.commit()

    def abort(self) -> None:
        """Drop what was written (the target is left untouched; a stream is left open)."""
        if self._done:
            return
        self._done = True
        # detached, so that collecting the text layer later never closes the stream under it
        with contextlib.suppress(OSError, ValueError):
            self._file.detach()
        if self._target is not None:
            self._target.discard()

    def __enter__(self) -> FhirWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class FhirFormat:
    """FHIR R4: QuestionnaireResponses in; responses, Observations and Patients out."""

    name = "fhir"
    extensions = (".fhir.json", ".ndjson", ".json")
    #: The kind of mapping file this reader takes (``--mapping``): a FHIR questionnaire's, given
    #: to it as the ``mapping`` setting. Readers without the attribute take column mappings.
    mapping_kind = "fhir"
    description = (
        "FHIR R4 QuestionnaireResponses (resource, Bundle or NDJSON) in; a transaction or "
        "collection Bundle, or NDJSON, of responses, Observations and Patients out"
    )

    def read(
        self,
        source: str | os.PathLike[str],
        options: ReadOptions,
        *,
        host: PluginHost | None = None,
    ) -> Iterator[ReadChunk]:
        """Yield chunks of responses; resources that are not responses are counted and logged."""
        from pamlib.formats.base import ReadChunk, reader_host

        reader = reader_for(options, reader_host(host))
        n_read = 0
        declared: tuple[str, ...] | None = None
        left: set[str] = set()
        own = _own_columns()
        # A path is always read as a file, even one whose name starts as JSON text does.
        for chunk in reader.read(source if source == "-" else Path(source)):
            n_read += chunk.n_read
            names = {k for r in chunk.rows for k in r.attributes}
            if declared is None:  # the columns of the output: said before any row is written
                declared = ("site", *sorted(names - own))
            left |= names.difference(declared)
            batches = rows_to_batches(chunk.rows, declared[1:])
            yield ReadChunk(batches, chunk.rejects, chunk.n_read, extra_columns=declared)
        if left:
            # Counted, never named: an attribute's name is the sender's text.
            log.warning(
                "%d attribute name(s) of FHIR responses are not output columns: named as one of "
                "pamlib's own columns, or first seen after the first chunk of responses",
                len(left),
            )
        if reader.other_resources:
            seen = ", ".join(f"{k}: {v}" for k, v in sorted(reader.other_resources.items()))
            level = logging.WARNING if n_read == 0 else logging.INFO
            log.log(level, "FHIR input held %d responses and other resources (%s)", n_read, seen)

    def open_writer(self, target: Target, options: WriteOptions) -> FhirWriter:
        return FhirWriter(target, bundle_settings(target, options.settings), options.extra_columns)

    def __repr__(self) -> str:
        return "<FhirFormat name='fhir'>"


@hookimpl
def pamlib_register_formats(register: Callable[[Format], None]) -> None:
    register(FhirFormat())
