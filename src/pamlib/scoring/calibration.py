"""Calibration files: the interchange format that turns the Rasch engine into a scoring provider.

A calibration says which instrument it scores, its item parameters (rating-scale difficulties and
thresholds, or partial-credit steps), the estimator, the linear 0–100 reporting scale, the
validity policy and the cut-point set. It is written as JSON or TOML with the same content
(see ``docs/calibration.rst`` and its JSON Schema) and loaded by :func:`load_calibration`, which
reports *every* problem at once, each naming the file and the field.

Every calibration has a content hash: the sha256 of its canonical JSON (RFC 8785 JSON
Canonicalization Scheme over the normalised content, defaults written out), so a JSON file and a
TOML file with the same content — or ``50`` and ``50.0`` — hash the same. Results record it.

A licensee's calibration is licensed content: :class:`Calibration` and
:class:`CompiledCalibration` show only ids and the hash in their reprs, and their numbers never go
into a pickle. A calibration read from a file pickles as a *reference* to that file and its
hash — unpickling reads the file again and refuses if it changed; a demonstration calibration
(synthetic by definition) pickles as its content; any other refuses
(:class:`~pamlib.errors.LicensedContentError`), as does the compiled form.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import attrs

from pamlib.errors import CalibrationError, LicensedContentError, Problem
from pamlib.levels import round_half_away
from pamlib.results import REPORTING_SCALE
from pamlib.scoring._engine import (
    EAP,
    MLE,
    WLE,
    Estimator,
    StepModel,
)

if TYPE_CHECKING:
    from pamlib.instruments import InstrumentRegistry
    from pamlib.levels import CutpointRegistry
    from pamlib.plugins import PluginHost

__all__ = [
    "Calibration",
    "CalibrationLicence",
    "CalibrationModel",
    "CompiledCalibration",
    "ExtremeResponse",
    "Scale",
    "ValidityPolicy",
    "calibration_json_schema",
    "canonical_json",
    "load_calibration",
    "parse_calibration",
]

T = TypeVar("T")

#: Item parameters (difficulties, thresholds, steps) and the EAP prior mean lie within ±this many
#: logits: the range the estimators are verified over against an independent solver (hazard
#: H-07). Wider calibrations leave answer patterns with next to no information at the estimate
#: (the least found: ~2e-7 within ±8, under 1e-10 at ±12, below double precision from ±20), whose
#: MLE is then found only to micro-logits and whose WLE can take another root — another level.
#: Real Rasch calibrations span a few logits; parameters given on the 0–100 scale are refused too.
MAX_ABS_LOGIT: Final = 8.0
#: What a logit must be, as a problem with one outside that range says it.
LOGIT_RANGE: Final = (
    f"logits within ±{MAX_ABS_LOGIT:g} (the range pamlib's estimators are verified over)"
)
#: Largest number of decimals a reported score may carry.
MAX_DECIMALS: Final = 4
#: The scale's intercept, min and max lie within ±this many score points: every score is then
#: finite and, at up to :data:`MAX_DECIMALS` decimals, exact in the outputs (CSV writes scores
#: as whole numbers of the last decimal).
MAX_ABS_SCORE: Final = 10_000.0
#: The scale's slope, score points per logit, lies in [low, high].
SLOPE_RANGE: Final = (0.01, 1000.0)


class CalibrationModel(enum.StrEnum):
    """Which Rasch model the item parameters belong to."""

    #: Andrich rating scale: one difficulty per item plus thresholds shared by every item.
    RATING_SCALE = "rating-scale"
    #: Masters partial credit: each item has its own absolute step difficulties.
    PARTIAL_CREDIT = "partial-credit"


class ExtremeResponse(enum.StrEnum):
    """What to do when every answered item is in the same extreme category."""

    #: Score it and flag the result ``extreme-response`` (the default).
    FLAG = "flag"
    #: Do not score it (status *not scored*, reason ``extreme-response``).
    NOT_SCORED = "not-scored"
    #: Score it without a flag.
    IGNORE = "ignore"


def _float(value: float) -> float:
    # float itself as the converter: attrs reads a builtin's signature by tokenising its text,
    # about a million instructions for each field, on every start
    return float(value)


@attrs.frozen
class Scale:
    """The reporting scale: ``intercept + slope·θ``, clipped to [min, max], rounded half away
    from zero to ``decimals``; the score's SE is ``slope·SE(θ)``.

    ``min`` and ``max`` are written with at most ``decimals`` decimals, so a reported score is
    always within them. With a cut-point set, ``decimals`` is the set's: the level is the band
    of the score exactly as reported.
    """

    intercept: float = attrs.field(converter=_float)
    slope: float = attrs.field(converter=_float)
    min: float = attrs.field(converter=_float)
    max: float = attrs.field(converter=_float)
    decimals: int = 1


@attrs.frozen
class CalibrationLicence:
    """The licence a licensee's calibration carries: who holds it and until when (inclusive)."""

    licensee: str
    valid_until: dt.date
    #: The licence or agreement number, if the licensee wants it on record.
    reference: str | None = None


@attrs.frozen
class ValidityPolicy:
    """When a response set is scored and how it is flagged — always from the calibration."""

    min_answered: int
    extreme_response: ExtremeResponse = ExtremeResponse.FLAG


def _strs(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(values)


def _floats(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _optional_floats(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if values is None else _floats(values)


def _optional_steps(
    values: Sequence[Sequence[float]] | None,
) -> tuple[tuple[float, ...], ...] | None:
    return None if values is None else tuple(_floats(row) for row in values)


@attrs.frozen(repr=False, getstate_setstate=False)
class Calibration:
    """One calibration: what a calibration file says, with item parameters in instrument order.

    ``items`` lists the instrument's item ids; ``item_difficulties`` and ``thresholds`` (rating
    scale) or ``steps`` (partial credit, one row per item) follow that order. Build one with
    :func:`load_calibration` or :func:`parse_calibration` to get every problem reported with its
    field; direct construction checks only the invariants the engine relies on.
    """

    id: str
    version: str
    instrument: str
    model: CalibrationModel = attrs.field(converter=CalibrationModel)
    items: tuple[str, ...] = attrs.field(converter=_strs)
    scale: Scale
    min_answered: int
    item_difficulties: tuple[float, ...] | None = attrs.field(
        default=None, converter=_optional_floats
    )
    thresholds: tuple[float, ...] | None = attrs.field(default=None, converter=_optional_floats)
    steps: tuple[tuple[float, ...], ...] | None = attrs.field(
        default=None, converter=_optional_steps
    )
    estimator: Estimator = attrs.field(factory=WLE)
    cutpoints: str | None = None
    extreme_response: ExtremeResponse = attrs.field(
        default=ExtremeResponse.FLAG, converter=ExtremeResponse
    )
    licence: CalibrationLicence | None = None
    #: A synthetic demonstration calibration: every result from it is flagged ``demo``.
    demo: bool = False
    name: str | None = None
    description: str | None = None
    source: str | None = None
    #: sha256 of the canonical JSON of this calibration (see :func:`canonical_json`).
    sha256: str = attrs.field(init=False, eq=False)
    #: The absolute path of the file it was read from, if any: what it pickles as.
    _origin: str | None = attrs.field(init=False, default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        problems = _invariant_problems(self)
        if problems:
            raise CalibrationError(f"invalid calibration {self.id!r}", problems)
        digest = hashlib.sha256(canonical_json(self.to_document())).hexdigest()
        object.__setattr__(self, "sha256", digest)

    @property
    def policy(self) -> ValidityPolicy:
        return ValidityPolicy(self.min_answered, self.extreme_response)

    def to_document(self) -> dict[str, Any]:
        """The calibration as a JSON-ready document, every default written out.

        Loading this document gives an equal calibration with the same hash; it is also what the
        hash is computed over.
        """
        doc: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "instrument": self.instrument,
            "model": str(self.model),
        }
        for key in ("name", "description", "source"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        doc["demo"] = self.demo
        if self.item_difficulties is not None:
            doc["item_difficulties"] = dict(zip(self.items, self.item_difficulties, strict=True))
        if self.thresholds is not None:
            doc["thresholds"] = list(self.thresholds)
        if self.steps is not None:
            doc["steps"] = {
                item: list(row) for item, row in zip(self.items, self.steps, strict=True)
            }
        doc["estimator"] = _estimator_document(self.estimator)
        doc["scale"] = {
            "intercept": self.scale.intercept,
            "slope": self.scale.slope,
            "min": self.scale.min,
            "max": self.scale.max,
            "decimals": self.scale.decimals,
        }
        doc["min_answered"] = self.min_answered
        if self.cutpoints is not None:
            doc["cutpoints"] = self.cutpoints
        doc["extreme_response"] = str(self.extreme_response)
        if self.licence is not None:
            licence: dict[str, Any] = {
                "licensee": self.licence.licensee,
                "valid_until": self.licence.valid_until.isoformat(),
            }
            if self.licence.reference is not None:
                licence["reference"] = self.licence.reference
            doc["licence"] = licence
        return doc

    def step_model(self) -> StepModel:
        """The engine's step matrix (items in instrument order)."""
        if self.model is CalibrationModel.RATING_SCALE:
            return StepModel.rating_scale(_got(self.item_difficulties), _got(self.thresholds))
        return StepModel.partial_credit(_got(self.steps))

    def compile(self) -> CompiledCalibration:
        """What a provider needs to score with this calibration (the table is built from it)."""
        return CompiledCalibration(
            calibration_id=self.id,
            sha256=self.sha256,
            instrument=self.instrument,
            items=self.items,
            step_model=self.step_model(),
            estimator=self.estimator,
            scale=self.scale,
            policy=self.policy,
            cutpoint_set=self.cutpoints,
            demo=self.demo,
            licence=self.licence,
        )

    def __repr__(self) -> str:
        return (
            f"Calibration(id={self.id!r}, version={self.version!r}, "
            f"instrument={self.instrument!r}, model={str(self.model)!r}, "
            f"sha256={self.sha256[:12]!r}…)"
        )

    def __reduce__(self) -> tuple[Callable[..., Calibration], tuple[Any, ...]]:
        """A demonstration calibration pickles as its fields; one read from a file as the
        file's path and the hash (never its numbers); any other refuses."""
        return _calibration_reference(self)

    def __reduce_ex__(self, protocol: Any) -> tuple[Callable[..., Calibration], tuple[Any, ...]]:
        return self.__reduce__()

    def __copy__(self) -> Calibration:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Calibration:
        return self


def _calibration_reference(
    cal: Calibration, host: PluginHost | None = None
) -> tuple[Callable[..., Calibration], tuple[Any, ...]]:
    """How ``cal`` pickles (see :meth:`Calibration.__reduce__`); ``host`` is where a
    calibration file is checked again when unpickled (default: the process-wide host)."""
    if cal.demo:
        fields = {a.name: getattr(cal, a.name) for a in attrs.fields(Calibration) if a.init}
        return (_calibration_from_fields, (fields, cal.sha256))
    if cal._origin is not None:
        return (_calibration_from_file, (cal._origin, cal.sha256, host))
    raise LicensedContentError(
        f"calibration {cal.id!r} may hold licensed content and was not read from a file: it "
        "cannot be pickled (read it with load_calibration, and it pickles as a reference to "
        "its file)"
    )


def _calibration_from_fields(fields: dict[str, Any], sha256: str) -> Calibration:
    cal = Calibration(**fields)
    if cal.sha256 != sha256:  # pragma: no cover - a pamlib version with another hash
        raise CalibrationError(
            f"calibration {cal.id!r} unpickled with another content hash",
            [Problem(cal.id, "sha256", "the pickled calibration's hash differs")],
        )
    return cal


def _calibration_from_file(path: str, sha256: str, host: PluginHost | None) -> Calibration:
    """Read the calibration file ``path`` again; refuse if its content hash is not
    ``sha256`` (the file changed since the calibration was pickled)."""
    cal = load_calibration(path, host=host)
    if cal.sha256 != sha256:
        name = _printable(Path(path).name)
        raise CalibrationError(
            f"calibration file {name} changed since the calibration was pickled",
            [
                Problem(
                    name,
                    "sha256",
                    f"content hash {cal.sha256[:12]}…, expected {sha256[:12]}…",
                )
            ],
        )
    return cal


@attrs.frozen(repr=False, eq=False, getstate_setstate=False)
class CompiledCalibration:
    """A calibration compiled for the engine: step model, estimator, scale, validity policy and
    the id of the cut-point set. A provider builds its (mask, raw score) table from this, in
    memory only."""

    calibration_id: str
    sha256: str
    instrument: str
    items: tuple[str, ...]
    step_model: StepModel
    estimator: Estimator
    scale: Scale
    policy: ValidityPolicy
    cutpoint_set: str | None
    demo: bool
    licence: CalibrationLicence | None

    def __repr__(self) -> str:
        return (
            f"CompiledCalibration(id={self.calibration_id!r}, instrument={self.instrument!r}, "
            f"sha256={self.sha256[:12]!r}…)"
        )

    def __reduce__(self) -> NoReturn:
        _refuse(self)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        _refuse(self)

    def __copy__(self) -> CompiledCalibration:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> CompiledCalibration:
        return self


def _refuse(obj: object) -> NoReturn:
    raise LicensedContentError(
        f"{type(obj).__name__} may hold licensed calibration content and cannot be serialised; "
        "load the calibration file where it is needed"
    )


def _estimator_document(estimator: Estimator) -> dict[str, Any]:
    if isinstance(estimator, MLE):
        return {"method": "mle", "extreme_adjustment": estimator.extreme_adjustment}
    if isinstance(estimator, EAP):
        doc: dict[str, Any] = {
            "method": "eap",
            "prior_mean": estimator.prior_mean,
            "prior_sd": estimator.prior_sd,
        }
        if estimator.quadrature_points is not None:  # absent: the engine's automatic grid
            doc["quadrature_points"] = estimator.quadrature_points
        return doc
    return {"method": "wle"}


def _invariant_problems(cal: Calibration) -> list[Problem]:
    """What direct construction must not get wrong (the loader reports these and more first)."""
    problems: list[Problem] = []

    def bad(field: str, code: str, message: str) -> None:
        problems.append(Problem(f"{cal.id}: {field}", code, message))

    n = len(cal.items)
    if n == 0:
        bad("items", "required", "a calibration needs at least one item")
    if cal.model is CalibrationModel.RATING_SCALE:
        if cal.item_difficulties is None or cal.thresholds is None or cal.steps is not None:
            bad("model", "model", "rating-scale needs item_difficulties and thresholds, no steps")
        elif len(cal.item_difficulties) != n or not cal.thresholds:
            bad("item_difficulties", "length", "one difficulty per item and some thresholds")
    elif cal.steps is None or cal.item_difficulties is not None or cal.thresholds is not None:
        bad("model", "model", "partial-credit needs steps, no item_difficulties or thresholds")
    elif len(cal.steps) != n or not all(cal.steps):
        bad("steps", "length", "one non-empty row of steps per item")

    # (field, item index or None, position or None, value): named only when out of range
    logits: list[tuple[str, int | None, int | None, float]] = [
        *(("item_difficulties", i, None, x) for i, x in enumerate(cal.item_difficulties or ())),
        *(("thresholds", None, j, x) for j, x in enumerate(cal.thresholds or ())),
        *(("steps", i, j, x) for i, row in enumerate(cal.steps or ()) for j, x in enumerate(row)),
    ]
    if isinstance(cal.estimator, EAP):
        logits.append(("estimator.prior_mean", None, None, cal.estimator.prior_mean))
    for key, i, j, x in logits:
        if not (math.isfinite(x) and abs(x) <= MAX_ABS_LOGIT):
            at = "" if i is None else f"[{json.dumps(cal.items[i]) if i < n else i}]"
            at += "" if j is None else f"[{j}]"
            bad(key + at, "range", f"expected {LOGIT_RANGE}")
    s = cal.scale
    for key, message in _scale_problems(s):
        bad(key, "range", message)
    if not 1 <= cal.min_answered <= max(n, 1):
        bad("min_answered", "range", f"min_answered lies within 1..{n}")
    if cal.demo and cal.licence is not None:
        bad("licence", "demo-licence", "a demonstration calibration cannot carry a licence")
    return problems


def _scale_problems(s: Scale) -> list[tuple[str, str]]:
    """(field, message) for every scale number outside the range the engine is proven in."""
    out: list[tuple[str, str]] = []
    low, high = SLOPE_RANGE
    if not (isinstance(s.decimals, int) and 0 <= s.decimals <= MAX_DECIMALS):
        out.append(("scale.decimals", f"decimals lie within 0..{MAX_DECIMALS}"))
    for key in ("intercept", "min", "max"):
        x = getattr(s, key)
        if not (math.isfinite(x) and abs(x) <= MAX_ABS_SCORE):
            out.append((f"scale.{key}", f"a finite number within ±{MAX_ABS_SCORE:g}"))
    if not (low <= s.slope <= high):  # also false for NaN
        out.append(("scale.slope", f"a number of score points per logit within {low:g}..{high:g}"))
    lo, hi = REPORTING_SCALE
    for key in ("min", "max"):
        x = getattr(s, key)
        if math.isfinite(x) and abs(x) <= MAX_ABS_SCORE and not lo <= x <= hi:
            out.append((f"scale.{key}", f"a score on the reporting scale {lo:g}..{hi:g}"))
    if not out:
        if not s.min < s.max:
            out.append(("scale.max", "max must be greater than min"))
        for key in ("min", "max"):
            x = getattr(s, key)
            if round_half_away(x, s.decimals) != x:
                why = f"more decimals than the score ({s.decimals}): a score could fall outside"
                out.append((f"scale.{key}", why))
    return out


# --------------------------------------------------------------------------------------------
# Canonical JSON (RFC 8785) and the content hash
# --------------------------------------------------------------------------------------------


def _number(x: float) -> str:
    """ECMAScript's Number-to-String, as RFC 8785 requires (shortest round-trip digits)."""
    if not math.isfinite(x):
        raise ValueError("canonical JSON has no NaN or infinity")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    _, digits_t, exponent = Decimal(repr(abs(float(x)))).normalize().as_tuple()
    digits = "".join(map(str, digits_t))
    assert isinstance(exponent, int)  # noqa: S101 - finite numbers only
    k = len(digits)
    n = exponent + k  # value = 0.digits × 10^n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        body = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + body


def _canonical(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool):
        out.append(json.dumps(value))
    elif isinstance(value, int | float):
        out.append(_number(float(value)))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, key in enumerate(sorted(value, key=lambda k: str(k).encode("utf-16-be"))):
            if i:
                out.append(",")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _canonical(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _canonical(item, out)
        out.append("]")
    else:
        raise TypeError(f"canonical JSON cannot represent {type(value).__name__}")


def canonical_json(document: Any) -> bytes:
    """``document`` in the JSON Canonicalization Scheme (RFC 8785), UTF-8 encoded.

    Keys sorted by UTF-16 code units, no whitespace, numbers as ECMAScript prints them, so the
    bytes (and their hash) can be reproduced in any language.

    >>> canonical_json({"b": [50.0, 1e-7, 0.000001], "a": "é"}).decode()
    '{"a":"é","b":[50,1e-7,0.000001]}'
    """
    out: list[str] = []
    _canonical(document, out)
    return "".join(out).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _printable(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (unpaired surrogates, e.g. from an undecodable
    file name) written as a backslash escape, so printing a problem can never fail."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _got(value: T | None) -> T:
    """A parameter the model needs (construction checked that it is there)."""
    if value is None:  # pragma: no cover - the invariants make it impossible
        raise AssertionError("calibration without the parameters of its model")
    return value


def parse_calibration(
    document: Any,
    *,
    source: str = "<calibration>",
    host: PluginHost | None = None,
    instruments: InstrumentRegistry | None = None,
    cutpoints: CutpointRegistry | None = None,
) -> Calibration:
    """Check a parsed calibration document and build the :class:`Calibration`.

    ``source`` names the document in problems (``cal.toml: scale.slope``). Instrument and item
    ids are checked against ``instruments`` and the cut-point set against ``cutpoints``, which
    default to what ``host`` (default: the process-wide host) has registered. Every problem is
    reported in one :class:`~pamlib.errors.CalibrationError`.
    """
    from pamlib.scoring import _calibration_doc

    if instruments is None or cutpoints is None:
        from pamlib.plugins import get_host

        h = host or get_host()
        instruments = h.instruments() if instruments is None else instruments
        cutpoints = h.cutpoint_sets() if cutpoints is None else cutpoints
    return _calibration_doc.read(document, source, instruments, cutpoints)


def calibration_json_schema() -> dict[str, Any]:
    """The calibration file format as a JSON Schema (draft 2020-12).

    Generated from the definitions the loader checks documents with, so the two cannot
    disagree; ``docs/calibration.schema.json`` is this, written out. What depends on the
    registered instruments and cut-point sets, or relates fields in ways a schema cannot
    express (``min`` < ``max``), only the loader checks.
    """
    from pamlib.scoring import _calibration_doc

    return _calibration_doc.json_schema()


def decimals_mismatch(cutpoint_set: str, banded_at: int) -> str:
    """Why a scale whose decimals differ from its cut-point set's is refused."""
    return (
        f"the cut-point set {cutpoint_set!r} bands scores given to {banded_at} decimal(s); "
        "the reported score must have the same, so that its level is the band of the score "
        "as reported"
    )


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


#: The most of a calibration file that is read: a calibration is a few kilobytes; past this
#: the name is a device (``/dev/zero``) or an endless stream, read no further.
_MAX_CALIBRATION_BYTES = 16 << 20


def load_calibration(
    path: str | os.PathLike[str],
    *,
    host: PluginHost | None = None,
) -> Calibration:
    """Read a calibration file (``.json`` or ``.toml``) and check it (as
    :func:`parse_calibration` does).

    Problems name the file as given and the field; syntax errors name the line.
    """
    name = _printable(os.fspath(path))
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise CalibrationError(
            f"cannot read calibration file {name}",
            [Problem(name, "format", "a calibration file is .json or .toml")],
        )
    try:
        with file.open("rb") as stream:
            data = stream.read(_MAX_CALIBRATION_BYTES + 1)
    except OSError as exc:
        raise CalibrationError(
            f"cannot read calibration file {name}",
            [Problem(name, "unreadable", exc.strerror or type(exc).__name__)],
        ) from None
    if len(data) > _MAX_CALIBRATION_BYTES:  # a device or an endless stream, not a calibration
        raise CalibrationError(
            f"cannot read calibration file {name}",
            [Problem(name, "too-large", f"more than {_MAX_CALIBRATION_BYTES >> 20} MiB")],
        )
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    from pamlib._documents import DocumentError, decode_utf8, parse_json, parse_toml

    try:
        text = decode_utf8(data, name)
        if suffix == ".json":
            document = parse_json(
                text, name, object_pairs_hook=pairs, parse_constant=_reject_constant
            )
        else:
            document = parse_toml(text, name)
    except DocumentError as exc:
        raise CalibrationError(f"invalid calibration file {name}", [exc.problem]) from None
    if duplicates:
        raise CalibrationError(
            f"invalid calibration file {name}",
            [
                Problem(name, "duplicate-key", f"the key {json.dumps(key)} appears twice")
                for key in duplicates
            ],
        )
    cal = parse_calibration(document, source=name, host=host)
    object.__setattr__(cal, "_origin", str(file.absolute()))
    return cal
