"""What a cohort report covers and how it was made: the context block of the HTML and JSON.

A figure without its context cannot be checked: a reader needs the period of assessments it
covers, when it was made, from which files (by name only — a path can name a person or a
machine), with which pamlib, scoring provider, calibration (id and sha256) and cut-point set,
tailored by which rules files (name and sha256), and under which suppression threshold.

Providers, calibrations and cut-point sets are read from the scored table's own columns, so
they describe the rows that were reported, not what a caller says about them. A column
mix-up must not publish identifiers: values that mostly belong to one patient each are
refused as for ``--group-by`` (``check_groups``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from pamlib._arrays import sorted_unique
from pamlib._version import __version__
from pamlib.errors import ConfigurationError
from pamlib.reporting._columns import ScoredColumns, TextArray
from pamlib.reporting._config import ReportConfig
from pamlib.reporting._privacy import MIN_SINGLETON_GROUPS, check_groups, check_not_identifiers
from pamlib.reporting._trajectories import Trajectories

_CHUNK = 1 << 20


def _sha256(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


@attrs.frozen
class SourceFile:
    """A file a report was made from, by ``name`` only (never its path), with its ``sha256``
    when it could be read. ``role`` says what it was: ``input``, ``rules``, ``mapping``, …"""

    role: str
    name: str
    sha256: str | None = None

    @classmethod
    def of(cls, path: str | os.PathLike[str], role: str, *, digest: bool = True) -> SourceFile:
        """The file at ``path``: its name, and its sha256 when ``digest`` and it is readable."""
        where = Path(path)
        return cls(
            role=role, name=_shown_name(where.name), sha256=_sha256(where) if digest else None
        )

    def to_json(self) -> dict[str, str | None]:
        """The file as plain JSON values."""
        return {"role": self.role, "name": self.name, "sha256": self.sha256}


def _shown_name(name: str) -> str:
    """A file's name as a report shows it: not at all where it holds an NHS number (an export
    saved as ``Jane Smith 9434765919.csv``), which the report would otherwise publish."""
    from pamlib.identity import WITHHELD_NAME, holds_nhs_number

    return WITHHELD_NAME if holds_nhs_number(name) else name


def _as_source(item: SourceFile | str | os.PathLike[str], role: str) -> SourceFile:
    if isinstance(item, SourceFile):
        return item
    given: object = item  # as given: any type may come from a caller
    if not isinstance(given, str | os.PathLike):
        article = "an" if role[0] in "aeiou" else "a"
        raise ConfigurationError(f"{article} {role} file is a path, not a {type(item).__name__}")
    if role == "rules" and not Path(item).is_file():  # listed with its digest: it must be read
        raise ConfigurationError(f"no rules file {Path(item).name}")
    # An input may be large and is identified by its name; a rules file is small and its
    # exact content decides the recommendations, so it is hashed.
    return SourceFile.of(item, role, digest=role != "input")


def _paths(
    given: Iterable[SourceFile | str | os.PathLike[str]] | SourceFile | str | os.PathLike[str],
) -> Iterable[SourceFile | str | os.PathLike[str]]:
    """One path given alone is one file, not the characters of its name."""
    return [given] if isinstance(given, str | os.PathLike | SourceFile) else given


@attrs.frozen
class ReportContext:
    """The context block: what a report covers and how it was made.

    ``first_assessed``/``last_assessed`` are ISO dates (``None`` for an empty table);
    ``generated_at`` is an ISO UTC timestamp to the second. ``providers`` are
    ``(provider, version)`` pairs, ``calibrations`` ``(id, sha256)`` pairs, as found in the
    scored table (empty strings where a column is empty or missing).
    """

    first_assessed: str | None
    last_assessed: str | None
    generated_at: str
    sources: tuple[SourceFile, ...]
    pamlib_version: str
    providers: tuple[tuple[str, str], ...]
    calibrations: tuple[tuple[str, str], ...]
    cutpoint_sets: tuple[str, ...]
    suppression_low: int
    suppression_high: int
    suppression_applied: bool
    #: Where the report scored a raw export itself: the counts of that run (``read``,
    #: ``scored``, ``not_scored``, ``rejected``, ``blank``), so that records rejected before the
    #: table are said in the report too; ``None`` for a report of a scored table. Published, only
    #: ``rejected`` (suppressed as any count is): the others equal figures the suppression may
    #: hide (``not_scored`` is ``assessments_not_used.not-scored``, ``scored`` the rest of
    #: ``n_assessments``), and would give them away.
    scoring: tuple[tuple[str, int | str], ...] | None = None

    def files(self, role: str) -> tuple[SourceFile, ...]:
        """The source files of one role."""
        return tuple(s for s in self.sources if s.role == role)

    def to_json(self) -> dict[str, Any]:
        """The block as plain JSON values (the ``context`` of the JSON summary)."""
        return {
            "period": {"first_assessed": self.first_assessed, "last_assessed": self.last_assessed},
            "generated_at": self.generated_at,
            "sources": [s.to_json() for s in self.sources],
            "pamlib_version": self.pamlib_version,
            "providers": [{"provider": p, "version": v} for p, v in self.providers],
            "calibrations": [{"id": i, "sha256": h} for i, h in self.calibrations],
            "cutpoint_sets": list(self.cutpoint_sets),
            "suppression": {
                "low": self.suppression_low,
                "high": self.suppression_high,
                "applied": self.suppression_applied,
            },
            "scoring": None if self.scoring is None else dict(self.scoring),
        }


def _listed(
    columns: ScoredColumns, trajectories: Trajectories, names: tuple[str, ...]
) -> list[tuple[str, ...]]:
    """Distinct value tuples of ``names`` over usable rows, after checking that no column's
    values identify patients (the report lists them)."""
    rows = columns.usable
    present = [n for n in names if n in columns.text]
    if not present or not rows.any():
        return []
    n_patients = max(len(trajectories), 1)
    first = int(np.argmax(rows))
    firsts: list[str] = []  # each column's value at the first usable row
    shown: dict[str, list[str]] = {}
    single = True
    for name in present:  # one column's codes at a time (each is a byte or more a row)
        distinct, codes = columns.column_codes(name)
        used = sorted_unique(codes[rows])
        shown[name] = [str(distinct[k]) for k in used.tolist()]
        single &= len(used) == 1
        firsts.append(str(distinct[codes[first]]))
        if len(used) < MIN_SINGLETON_GROUPS:  # too few values to be identifiers: no check
            continue
        among_used = np.searchsorted(used, codes[rows]).astype(np.int64)
        value_patient = sorted_unique(among_used * n_patients + trajectories.row_patient[rows])
        del among_used
        check_groups(name, value_patient // n_patients, len(used), use="list the values of")
    check_not_identifiers(
        shown,
        patient_keys=columns.patient_id,
        assessment_ids=columns.assessment_id,
        use="list the values of",
    )
    if single:  # one value each (one provider, one calibration): one tuple, no pass
        found = dict(zip(present, firsts, strict=True))
        return [tuple(found.get(n, "") for n in names)]
    coded = {name: columns.column_codes(name) for name in present}
    absent = (np.array([""], dtype=object), np.zeros(len(rows), dtype=np.intp))
    # One integer per row for the value tuple; each distinct tuple is listed once.
    combined = np.zeros(int(rows.sum()), dtype=np.int64)
    values: list[TextArray] = []
    for name in names:
        distinct, codes = coded.get(name, absent)
        values.append(distinct)
        combined = combined * len(distinct) + codes[rows]
    tuples = []
    for found in sorted_unique(combined).tolist():
        parts, code = [], found
        for distinct in reversed(values):
            code, k = divmod(code, len(distinct))
            parts.append(str(distinct[k]))
        tuples.append(tuple(reversed(parts)))
    return sorted(tuples)


def _period(days: NDArray[np.datetime64]) -> tuple[str | None, str | None]:
    """The first and last of ``days`` (ISO), ignoring NaT; ``None`` where there is none. A
    million at a time: the dates without NaT would be a copy of 8 bytes a row."""
    found: list[np.datetime64] = []
    for start in range(0, len(days), _CHUNK):
        part = days[start : start + _CHUNK]
        part = part[~np.isnat(part)]
        if len(part):
            found += [part.min(), part.max()]
    if not found:
        return None, None
    return str(min(found)), str(max(found))


#: The last second :mod:`datetime` can hold (9999-12-31 23:59:59 UTC), in seconds since 1970.
_LAST_EPOCH = int(dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp())


def _now() -> dt.datetime:
    """Now, or ``SOURCE_DATE_EPOCH`` when set (reproducible outputs, reproducible-builds.org).

    A value that is not a whole number of seconds in ASCII digits, up to the year 9999, is a
    :class:`~pamlib.errors.ConfigurationError`: a reproducible run asked for must not quietly
    get today's date, and ``str.isdigit`` also takes digits such as ``²`` that ``int`` refuses.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return dt.datetime.now(dt.UTC)
    digits = epoch.isascii() and epoch.isdigit()
    # the length first: a value of a million digits is not worth converting to find it too big
    if not digits or len(epoch) > len(str(_LAST_EPOCH)) or int(epoch) > _LAST_EPOCH:
        raise ConfigurationError(
            "SOURCE_DATE_EPOCH is not a time pamlib can use: give whole seconds since "
            f"1970-01-01 UTC in digits, at most {_LAST_EPOCH} (the end of the year 9999)"
        )
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC)


def report_context(
    columns: ScoredColumns,
    trajectories: Trajectories,
    config: ReportConfig,
    *,
    sources: Iterable[SourceFile | str | os.PathLike[str]] = (),
    rules: Iterable[SourceFile | str | os.PathLike[str]] = (),
    generated_at: dt.datetime | None = None,
    scoring: Any = None,
) -> ReportContext:
    """The context of a report on ``columns``; ``sources`` are the input files, ``rules`` the
    tailoring rules files (recorded by name, rules files with their sha256). ``generated_at``
    defaults to now, or to ``SOURCE_DATE_EPOCH`` when that is set. ``scoring`` is the
    :class:`~pamlib.pipeline.ScoreSummary` of scoring the export the table came from, if the
    report scored it."""
    first, last = _period(columns.assessed_on)
    when = (generated_at or _now()).astimezone(dt.UTC)
    providers = _listed(columns, trajectories, ("provider", "provider_version"))
    calibrations = _listed(columns, trajectories, ("calibration_id", "calibration_sha256"))
    sets = _listed(columns, trajectories, ("cutpoint_set",))
    return ReportContext(
        first_assessed=first,
        last_assessed=last,
        generated_at=when.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        sources=(
            *(_as_source(s, "input") for s in _paths(sources)),
            *(_as_source(r, "rules") for r in _paths(rules)),
        ),
        pamlib_version=__version__,
        providers=tuple((p, v) for p, v in providers if p or v),
        calibrations=tuple((i, h) for i, h in calibrations if i or h),
        cutpoint_sets=tuple(s for (s,) in sets if s),
        suppression_low=config.suppression.low,
        suppression_high=config.suppression.high,
        suppression_applied=config.publish,
        scoring=_scoring_counts(scoring, config),
    )


def _scoring_counts(summary: Any, config: ReportConfig) -> tuple[tuple[str, int | str], ...] | None:
    """A run's counts, which reconcile (``read = scored + not scored + rejected``, blank records
    beside them), as the report lists them; published, the rejected records alone."""
    if summary is None:
        return None
    fields = ("n_read", "n_scored", "n_not_scored", "n_rejected", "n_blank")
    # read by its fields: a stage does not import the pipeline that makes the summary
    if not all(isinstance(getattr(summary, f, None), int) for f in fields):
        raise ConfigurationError(f"scoring is a ScoreSummary, not a {type(summary).__name__}")
    if config.publish:
        rule = config.suppression
        rejected = summary.n_rejected
        return (("rejected", rule.symbol if rule.hides(rejected) else rejected),)
    return (
        ("read", summary.n_read),
        ("scored", summary.n_scored),
        ("not_scored", summary.n_not_scored),
        ("rejected", summary.n_rejected),
        ("blank", summary.n_blank),
    )
