"""Calibration documents at the edge: one set of definitions for the loader and the JSON Schema.

The document classes below say what a calibration file holds; each constrained value is an
``Annotated`` type whose marker (:class:`_Text`, :class:`_Number`, …) both checks a value (a
structure hook of the private cattrs converter) and describes it (a JSON Schema fragment). The
converter validates in detail, so every field is checked and every problem kept; what one
field cannot say alone — items against the instrument, thresholds per category, the cut-point
set's decimals, min < max — is checked afterwards on the fields that were readable, so a file's
problems are all reported at once. :class:`~pamlib.scoring.calibration.Calibration` and its
parts know nothing of this module.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import re
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Union, cast, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import list_structure_factory
from cattrs.gen import make_dict_structure_fn, make_mapping_structure_fn, override
from cattrs.v import format_exception

from pamlib._documents import json_kind as _type_name
from pamlib.errors import CalibrationError, Problem
from pamlib.results import REPORTING_SCALE
from pamlib.scoring._engine import (
    EAP,
    MLE,
    MLE_ADJUSTMENT_RANGE,
    PRIOR_SD_RANGE,
    QUADRATURE_POINTS_RANGE,
    WLE,
    Estimator,
)
from pamlib.scoring.calibration import (
    LOGIT_RANGE,
    MAX_ABS_LOGIT,
    MAX_ABS_SCORE,
    MAX_DECIMALS,
    SLOPE_RANGE,
    Calibration,
    CalibrationLicence,
    CalibrationModel,
    ExtremeResponse,
    Scale,
    _printable,
    _scale_problems,
    decimals_mismatch,
)

if TYPE_CHECKING:
    from pamlib.instruments import Instrument, InstrumentRegistry
    from pamlib.levels import CutpointRegistry

#: What a calibration id looks like; compiled here, where files are read, not on every start.
_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

SCHEMA_ID: Final = "https://pamlib.readthedocs.io/en/latest/calibration.schema.json"


class _FieldError(Exception):
    """One problem with a value; ``at`` locates it below the value (``method``)."""

    def __init__(self, code: str, message: str, at: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.at = code, message, at


# -- value markers: a check and a schema each ----------------------------------------------------

#: Schema fragments written once under ``$defs``, by name.
_Defs = dict[str, dict[str, Any]]


def _named(name: str | None, schema: dict[str, Any], defs: _Defs) -> dict[str, Any]:
    if name is None:
        return schema
    defs[name] = schema
    return {"$ref": f"#/$defs/{name}"}


@attrs.frozen
class _Text:
    """A non-blank string that UTF-8 (and so the hash) can hold, optionally matching a pattern."""

    pattern: re.Pattern[str] | None = None

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise _FieldError("type", f"expected a non-empty string, got {_type_name(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # JSON allows "\ud800"; UTF-8 cannot hold it
            raise _FieldError(
                "encoding", "contains an unpaired surrogate (\\ud800-\\udfff)"
            ) from None
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise _FieldError("pattern", f"must match {self.pattern.pattern}")
        return value

    def schema(self, defs: _Defs) -> dict[str, Any]:
        if self.pattern is not None:
            return {"type": "string", "pattern": f"^{self.pattern.pattern}$"}
        return {"type": "string", "minLength": 1, "pattern": "\\S"}


@attrs.frozen
class _Number:
    """A finite number within [low, high] (or [low, high) when ``open_high``)."""

    low: float
    high: float
    expect: str
    open_high: bool = False
    name: str | None = None

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _FieldError("type", f"expected a number, got {_type_name(value)}")
        try:
            x = float(value)
        except OverflowError:
            x = math.inf
        if not math.isfinite(x):
            raise _FieldError("range", "expected a finite number")
        if not (self.low <= x and (x < self.high if self.open_high else x <= self.high)):
            raise _FieldError("range", f"expected {self.expect}")
        return x

    def schema(self, defs: _Defs) -> dict[str, Any]:
        top = "exclusiveMaximum" if self.open_high else "maximum"
        return _named(self.name, {"type": "number", "minimum": self.low, top: self.high}, defs)


@attrs.frozen
class _Whole:
    """A whole number within [low, high] (``7.0`` is 7: JSON has one number type)."""

    low: int
    high: int | None = None

    def check(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _FieldError("type", f"expected a whole number, got {_type_name(value)}")
        if value < self.low or (self.high is not None and value > self.high):
            hi = self.high
            raise _FieldError(
                "range",
                f"expected {self.low}..{hi}"
                if hi is not None
                else f"expected a whole number ≥ {self.low}",
            )
        return value

    def schema(self, defs: _Defs) -> dict[str, Any]:
        out = {"type": "integer", "minimum": self.low}
        return out if self.high is None else {**out, "maximum": self.high}


@attrs.frozen
class _Date:
    """A calendar date written YYYY-MM-DD (or a TOML local date)."""

    def check(self, value: Any) -> dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
            raise _FieldError("date", "expected a date written YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise _FieldError("date", "not a calendar date") from None

    def schema(self, defs: _Defs) -> dict[str, Any]:
        return {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "format": "date"}


_Marker = _Text | _Number | _Whole | _Date

Text = Annotated[str, _Text()]
Logit = Annotated[float, _Number(-MAX_ABS_LOGIT, MAX_ABS_LOGIT, LOGIT_RANGE, name="logit")]
ScorePoints = Annotated[
    float,
    _Number(-MAX_ABS_SCORE, MAX_ABS_SCORE, f"a number within ±{MAX_ABS_SCORE:g}", name="score"),
]
ReportedScore = Annotated[
    float,
    _Number(
        *REPORTING_SCALE,
        f"a score on the reporting scale {REPORTING_SCALE[0]:g}..{REPORTING_SCALE[1]:g}",
        name="reportedScore",
    ),
]
Slope = Annotated[
    float,
    _Number(
        *SLOPE_RANGE,
        "a positive number of score points per logit within "
        f"{SLOPE_RANGE[0]:g}..{SLOPE_RANGE[1]:g}",
    ),
]
Adjustment = Annotated[
    float,
    _Number(
        *MLE_ADJUSTMENT_RANGE,
        f"a number of score points from {MLE_ADJUSTMENT_RANGE[0]:g} up to (not including) "
        f"{MLE_ADJUSTMENT_RANGE[1]:g}",
        open_high=True,
    ),
]
PriorSD = Annotated[
    float,
    _Number(
        *PRIOR_SD_RANGE,
        f"a number of logits within {PRIOR_SD_RANGE[0]:g}..{PRIOR_SD_RANGE[1]:g}",
    ),
]


def _about(description: str) -> dict[str, str]:
    """Field metadata: the description the schema gives the field."""
    return {"description": description}


# -- the document --------------------------------------------------------------------------------


@attrs.frozen
class _WLE:
    method: Literal["wle"]

    def build(self) -> Estimator:
        return WLE()


@attrs.frozen
class _MLE:
    method: Literal["mle"]
    extreme_adjustment: Adjustment = attrs.field(
        metadata=_about("Score points added to raw 0 and taken from the maximum."), default=0.3
    )

    def build(self) -> Estimator:
        return MLE(self.extreme_adjustment)


@attrs.frozen
class _EAP:
    method: Literal["eap"]
    prior_mean: Logit = 0.0
    prior_sd: PriorSD = 1.0
    quadrature_points: Annotated[int, _Whole(*QUADRATURE_POINTS_RANGE)] | None = attrs.field(
        metadata=_about(
            "At least this many nodes of the trapezoid rule across the posterior mode ± 9 prior "
            "SDs; the engine uses more when its automatic spacing is finer. Absent: automatic."
        ),
        default=None,
    )

    def build(self) -> Estimator:
        return EAP(self.prior_mean, self.prior_sd, self.quadrature_points)


_ESTIMATORS: Final = {"wle": _WLE, "mle": _MLE, "eap": _EAP}
_Estimator = _WLE | _MLE | _EAP


@attrs.frozen
class _Scale:
    intercept: ScorePoints
    slope: Slope = attrs.field(metadata=_about("Score points per logit."))
    min: ReportedScore
    max: ReportedScore
    decimals: Annotated[int, _Whole(0, MAX_DECIMALS)] = 1


@attrs.frozen
class _Licence:
    licensee: Text
    valid_until: Annotated[dt.date, _Date()] = attrs.field(
        metadata=_about(
            "Last day (inclusive) the licence allows scoring; a TOML date is accepted too."
        )
    )
    reference: Text | None = None


@attrs.frozen(kw_only=True)
class _Document:
    """``X | None`` means *may be absent*: ``null`` is never a value in a calibration."""

    schema: Text | None = None  # the key "$schema"
    id: Annotated[str, _Text(_ID_PATTERN)] = attrs.field(
        metadata=_about("Stable identifier, recorded on every result.")
    )
    version: Text
    instrument: Text = attrs.field(metadata=_about("Id of a registered instrument, e.g. PAM-13."))
    name: Text | None = None
    description: Text | None = None
    source: Text | None = None
    demo: bool = attrs.field(
        metadata=_about("A synthetic demonstration calibration: every result is flagged demo."),
        default=False,
    )
    model: CalibrationModel
    item_difficulties: dict[str, Logit] | None = attrs.field(
        metadata=_about("Rating scale: one difficulty (logits) per item id."), default=None
    )
    thresholds: list[Logit] | None = attrs.field(
        metadata=_about(
            "Rating scale: Andrich thresholds (logits), one fewer than the categories."
        ),
        default=None,
    )
    steps: dict[str, list[Logit]] | None = attrs.field(
        metadata=_about("Partial credit: absolute step difficulties (logits) per item id."),
        default=None,
    )
    estimator: _Estimator = attrs.field(
        metadata=_about("Person-measure estimator; WLE when absent."), factory=lambda: _WLE("wle")
    )
    scale: _Scale = attrs.field(
        metadata=_about(
            "score = intercept + slope × θ, clipped to [min, max], rounded half away from zero to "
            "decimals. Also: min < max, min and max have at most decimals decimals, and decimals "
            "equals the decimals of the cut-point set, if any."
        )
    )
    min_answered: Annotated[int, _Whole(1)] = attrs.field(
        metadata=_about("Fewer answered items than this: not scored.")
    )
    cutpoints: Text | None = attrs.field(
        metadata=_about(
            "Id of the cut-point set that bands the rounded score into levels; no levels "
            "when absent."
        ),
        default=None,
    )
    extreme_response: ExtremeResponse = attrs.field(
        metadata=_about(
            "Every answered item in the same extreme category: flag the result (default), do not "
            "score it, or ignore."
        ),
        default=ExtremeResponse.FLAG,
    )
    licence: _Licence | None = attrs.field(
        metadata=_about(
            "The licence the licensee holds for this calibration. Without it, results are flagged "
            "unlicensed."
        ),
        default=None,
    )


for _cls in (_WLE, _MLE, _EAP, _Scale, _Licence, _Document):
    attrs.resolve_types(_cls)  # the schema reads the types (annotations are strings here)

#: Attribute names that are spelled otherwise in the document.
_KEYS: Final = {"schema": "$schema"}
#: The parameters each model needs; the other model's may not appear.
_MODEL_FIELDS: Final = {
    CalibrationModel.RATING_SCALE: ("item_difficulties", "thresholds"),
    CalibrationModel.PARTIAL_CREDIT: ("steps",),
}
_WHY_NOT: Final = {
    CalibrationModel.RATING_SCALE: "not used by the rating-scale model (it uses thresholds)",
    CalibrationModel.PARTIAL_CREDIT: "not used by the partial-credit model (it uses steps)",
}


# -- the converter -------------------------------------------------------------------------------


def _optional(t: Any) -> Any:
    """``X`` of ``X | None``, else None."""
    if get_origin(t) in (Union, types.UnionType):
        args = get_args(t)
        if len(args) == 2 and type(None) in args:
            return next(a for a in args if a is not type(None))
    return None


def _origin(t: Any) -> Any:
    return get_origin(t)


def _factory(default: Any) -> Callable[[], Any] | None:
    """The factory of an attrs default given as one (``attrs.Factory``)."""
    factory = getattr(default, "factory", None)
    return factory if callable(factory) else None


def _marker(t: Any) -> _Marker | None:
    if get_origin(t) is Annotated:
        return next((m for m in t.__metadata__ if isinstance(m, _Marker)), None)
    return None


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)

    def marked(t: Any) -> Callable[[Any, Any], Any]:
        check = cast("_Marker", _marker(t)).check  # the predicate found it
        return lambda value, _: check(value)

    def may_be_absent(t: Any) -> Callable[[Any, Any], Any]:
        # Absent keys take the attrs default before any hook runs; a present null is wrong.
        inner = _optional(t)
        hook = conv.get_structure_hook(inner)
        return lambda value, _: hook(value, inner)

    def choice(t: type[enum.StrEnum]) -> Callable[[Any, Any], Any]:
        allowed = [str(c) for c in t]

        def structure(value: Any, _: Any) -> enum.StrEnum:
            if not isinstance(value, str) or value not in allowed:
                raise _FieldError("choice", f"expected one of {', '.join(allowed)}")
            return t(value)

        return structure

    def flag(value: Any, _: Any) -> bool:
        if not isinstance(value, bool):
            raise _FieldError("type", f"expected true or false, got {_type_name(value)}")
        return value

    def mapping(value: Any) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise _FieldError(
                "type", f"expected an object (a table in TOML), got {_type_name(value)}"
            )
        return value

    def per_item(t: Any) -> Callable[[Any, Any], Any]:
        inner = make_mapping_structure_fn(t, conv)

        def structure(value: Any, _: Any) -> dict[str, Any]:
            if not mapping(value):
                raise _FieldError("required", "expected one entry per item, got none")
            out: dict[str, Any] = inner(value, t)
            return out

        return structure

    def array(t: Any) -> Callable[[Any, Any], Any]:
        inner = list_structure_factory(t, conv)

        def structure(value: Any, _: Any) -> list[Any]:
            if not isinstance(value, list | tuple) or not value:
                raise _FieldError("type", f"expected a non-empty array, got {_type_name(value)}")
            out: list[Any] = inner(value, t)
            return out

        return structure

    def document(t: Any) -> Callable[[Any, Any], Any]:
        renames: dict[str, Any] = {
            a: override(rename=k) for a, k in _KEYS.items() if a in attrs.fields_dict(t)
        }
        inner = make_dict_structure_fn(
            t, conv, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True, **renames
        )
        return lambda value, _: inner(mapping(value), t)

    def estimator(value: Any, _: Any) -> Any:
        obj = mapping(value)
        if "method" not in obj:
            raise _FieldError("required", "this field is required", at="method")
        cls = _ESTIMATORS.get(obj["method"]) if isinstance(obj["method"], str) else None
        if cls is None:
            raise _FieldError("choice", f"expected one of {', '.join(_ESTIMATORS)}", at="method")
        return conv.structure(obj, cls)

    conv.register_structure_hook_factory(attrs.has, document)
    conv.register_structure_hook_factory(lambda t: _origin(t) is list, array)
    conv.register_structure_hook_factory(lambda t: _origin(t) is dict, per_item)
    for choices in (CalibrationModel, ExtremeResponse):  # by class: they are strings too
        conv.register_structure_hook(choices, choice(choices))
    conv.register_structure_hook(bool, flag)
    conv.register_structure_hook_factory(lambda t: _optional(t) is not None, may_be_absent)
    conv.register_structure_hook_factory(lambda t: _marker(t) is not None, marked)
    conv.register_structure_hook_func(lambda t: t == _Estimator, estimator)
    return conv


_CONVERTER: Final = _make_converter()


# -- problems ------------------------------------------------------------------------------------

_PLAIN_FIELD: Final = re.compile(r"[A-Za-z0-9_$.-]{1,100}")


def _field_name(key: object) -> str:
    """A key from the document as shown in a problem: plain names as they are, anything else
    (control characters, odd unicode, very long) quoted and escaped as JSON."""
    text = str(key)
    if _PLAIN_FIELD.fullmatch(text):
        return text
    return json.dumps(text if len(text) <= 100 else text[:100] + "…")


def _dot(path: str, name: str) -> str:
    return f"{path}.{name}" if path and name else path or name


def _index(path: str, key: object) -> str:
    return f"{path}[{json.dumps(key) if isinstance(key, str) else key}]"


#: (field path, code, message): a problem before it names the document.
_Issue = tuple[str, str, str]


def _issues(exc: BaseException, path: str = "", type_: Any = None) -> list[_Issue]:
    """Flatten cattrs' exception groups into issues located by field path."""
    if isinstance(exc, _FieldError):
        return [(_dot(path, exc.at), exc.code, exc.message)]
    if isinstance(exc, cattrs.IterableValidationError):
        indexed, unplaced = exc.group_exceptions()
        out = [i for e, note in indexed for i in _issues(e, _index(path, note.index), note.type)]
        return out + [i for e in unplaced for i in _issues(e, path)]
    if isinstance(exc, cattrs.ClassValidationError):
        named, unnamed = exc.group_exceptions()
        out = [
            i
            for e, note in named
            for i in _issues(e, _dot(path, _KEYS.get(note.name, note.name)), note.type)
        ]
        return out + [i for e in unnamed for i in _issues(e, path)]
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        method = next((m for m, cls in _ESTIMATORS.items() if cls is exc.cl), None)
        why = "unknown field" if method is None else f"not a setting of the {method} estimator"
        return [
            (_dot(path, _field_name(key)), "unknown-field", why)
            for key in sorted(map(str, exc.extra_fields))
        ]
    if isinstance(exc, KeyError):  # a required key absent
        return [(path, "required", "this field is required")]
    return [(path, "invalid", format_exception(exc, type_))]  # pragma: no cover - a hook's bug


def _under(path: str, key: str) -> bool:
    return path == key or path.startswith((f"{key}.", f"{key}["))


def _readable(raw: Mapping[str, Any], issues: list[_Issue]) -> dict[str, Any]:
    """The document's fields that have no issue, structured (absent ones at their default)."""
    out: dict[str, Any] = {}
    for a in attrs.fields(_Document):
        key = _KEYS.get(a.name, a.name)
        if any(_under(where, key) for where, _, _ in issues):
            continue
        if key in raw:
            out[a.name] = _CONVERTER.structure(raw[key], cast("Any", a.type))
        elif a.default is not attrs.NOTHING:
            factory = _factory(a.default)
            out[a.name] = a.default if factory is None else factory()
    return out


def _cross_field_issues(
    raw: Mapping[str, Any],
    doc: dict[str, Any],
    instruments: InstrumentRegistry,
    cutpoints: CutpointRegistry,
) -> list[_Issue]:
    """What one field cannot say alone, checked on the readable fields ``doc``."""
    out: list[_Issue] = []
    instrument: Instrument | None = None
    if "instrument" in doc:
        if doc["instrument"] in instruments:
            instrument = instruments.get(doc["instrument"])
        else:
            known = ", ".join(sorted(i.id for i in instruments))
            out.append(
                ("instrument", "unknown-instrument", f"not a registered instrument ({known})")
            )
    model = doc.get("model")
    if model is not None:
        for other, fields in _MODEL_FIELDS.items():
            for key in fields:
                if other is model and key not in raw:
                    out.append((key, "required", f"the {model} model needs this field"))
                elif other is not model and key in raw:
                    out.append((key, "model", _WHY_NOT[model]))
    if instrument is not None:
        n_steps = instrument.n_categories - 1
        for key in ("item_difficulties", "steps"):
            value = raw.get(key)
            if isinstance(value, Mapping) and value:
                out += [
                    (_index(key, k), "unknown-item", "not an item of the instrument")
                    for k in value
                    if k not in instrument.items
                ]
                out += [
                    (_index(key, item), "missing-item", "no value for this item")
                    for item in instrument.items
                    if item not in value
                ]
        rows = [("thresholds", raw.get("thresholds"))]
        if isinstance(raw.get("steps"), Mapping):
            rows += [(_index("steps", k), v) for k, v in raw["steps"].items()]
        for where, row in rows:
            if isinstance(row, list | tuple) and row and len(row) != n_steps:
                why = f"expected {n_steps} values (categories − 1), got {len(row)}"
                out.append((where, "length", why))
        if doc.get("min_answered", 0) > instrument.n_items:
            out.append(("min_answered", "range", f"expected 1..{instrument.n_items}"))
    scale: _Scale | None = doc.get("scale")
    if scale is not None:
        out += [(k, "range", why) for k, why in _scale_problems(Scale(**attrs.asdict(scale)))]
    cut = doc.get("cutpoints")
    if cut is not None and cut not in cutpoints:
        known = ", ".join(sorted(c.id for c in cutpoints))
        out.append(("cutpoints", "unknown-cutpoints", f"not a registered cut-point set ({known})"))
    elif cut is not None and scale is not None:
        banded_at = cutpoints.get(cut).decimals
        if scale.decimals != banded_at:
            out.append(("scale.decimals", "decimals", decimals_mismatch(cut, banded_at)))
    if doc.get("demo") and "licence" in raw:
        out.append(
            ("licence", "demo-licence", "a demonstration calibration cannot carry a licence")
        )
    return out


def read(
    document: Any,
    source: str,
    instruments: InstrumentRegistry,
    cutpoints: CutpointRegistry,
) -> Calibration:
    """Check a parsed calibration document and build the calibration (see
    :func:`~pamlib.scoring.calibration.parse_calibration`)."""

    def fail(issues: list[_Issue]) -> CalibrationError:
        return CalibrationError(
            f"invalid calibration file {source}",
            [
                Problem(_printable(f"{source}: {where}" if where else source), code, message)
                for where, code, message in issues
            ],
        )

    if not isinstance(document, Mapping):
        why = f"a calibration is a JSON object or a TOML document, got {_type_name(document)}"
        raise fail([("", "type", why)])
    issues: list[_Issue] = []
    try:
        _CONVERTER.structure(document, _Document)
    except cattrs.ClassValidationError as exc:
        issues = _issues(exc)
    doc = _readable(document, issues)
    issues += _cross_field_issues(document, doc, instruments, cutpoints)
    # The content of a parameter the model does not use is not read: only its presence is wrong.
    unused = {k for k, code, _ in issues if code == "model"}
    issues = [i for i in issues if i[1] == "model" or not any(_under(i[0], k) for k in unused)]
    if issues:
        raise fail(issues)
    instrument = instruments.get(doc["instrument"])
    scale: _Scale = doc["scale"]
    licence: _Licence | None = doc["licence"]
    difficulties, steps = doc["item_difficulties"], doc["steps"]
    return Calibration(
        id=doc["id"],
        version=doc["version"],
        instrument=instrument.id,
        model=doc["model"],
        items=instrument.items,
        scale=Scale(**attrs.asdict(scale)),
        min_answered=doc["min_answered"],
        item_difficulties=None
        if difficulties is None
        else [difficulties[i] for i in instrument.items],
        thresholds=doc["thresholds"],
        steps=None if steps is None else [steps[i] for i in instrument.items],
        estimator=doc["estimator"].build(),
        cutpoints=doc["cutpoints"],
        extreme_response=doc["extreme_response"],
        licence=None
        if licence is None
        else CalibrationLicence(licence.licensee, licence.valid_until, licence.reference),
        demo=doc["demo"],
        name=doc["name"],
        description=doc["description"],
        source=doc["source"],
    )


# -- the JSON Schema -----------------------------------------------------------------------------


def _schema(t: Any, defs: _Defs) -> dict[str, Any]:
    """The JSON Schema of values of the document type ``t``."""
    if (marker := _marker(t)) is not None:
        return marker.schema(defs)
    if (inner := _optional(t)) is not None:
        return _schema(inner, defs)
    if t == _Estimator:
        return {"oneOf": [_schema(cls, defs) for cls in _ESTIMATORS.values()]}
    if t is bool:
        return {"type": "boolean"}
    if isinstance(t, type) and issubclass(t, enum.StrEnum):
        return {"enum": [str(c) for c in t]}
    if get_origin(t) is Literal:
        return {"const": get_args(t)[0]}
    if get_origin(t) is list:
        return {"type": "array", "minItems": 1, "items": _schema(get_args(t)[0], defs)}
    if get_origin(t) is dict:
        values = _schema(get_args(t)[1], defs)
        return {"type": "object", "minProperties": 1, "additionalProperties": values}
    fields = attrs.fields(t)
    properties = {}
    for a in fields:
        prop = _schema(a.type, defs)
        if "description" in a.metadata:
            prop = {"description": a.metadata["description"], **prop}
        default = a.default
        if default not in (attrs.NOTHING, None) and _factory(default) is None:
            prop["default"] = str(default) if isinstance(default, enum.Enum) else default
        properties[_KEYS.get(a.name, a.name)] = prop
    return {
        "type": "object",
        "required": [_KEYS.get(a.name, a.name) for a in fields if a.default is attrs.NOTHING],
        "additionalProperties": False,
        "properties": properties,
    }


def json_schema() -> dict[str, Any]:
    """The calibration file format as a JSON Schema (draft 2020-12)."""
    defs: _Defs = {}
    body = _schema(_Document, defs)
    models = [
        {
            "if": {"required": ["model"], "properties": {"model": {"const": str(model)}}},
            "then": {
                "required": list(fields),
                "not": _any_of(
                    [k for other, ks in _MODEL_FIELDS.items() if other is not model for k in ks]
                ),
            },
        }
        for model, fields in _MODEL_FIELDS.items()
    ]
    demo = {
        "if": {"required": ["demo"], "properties": {"demo": {"const": True}}},
        "then": {"not": {"required": ["licence"]}},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "pamlib calibration file",
        "description": (
            "A Rasch calibration for one instrument, in JSON or TOML (same content). Rules that "
            "depend on the instrument (its item ids, its number of categories, min_answered up "
            "to its number of items) and on the registered cut-point sets are checked by "
            "pamlib's loader, not by this schema."
        ),
        **body,
        "allOf": [*models, demo],
        "$defs": dict(sorted(defs.items())),
    }


def _any_of(keys: list[str]) -> dict[str, Any]:
    required = [{"required": [k]} for k in keys]
    return required[0] if len(required) == 1 else {"anyOf": required}
