"""Choosing a provider, and the licence, honesty and result checks around every scoring call.

:func:`select_provider` hands out providers wrapped in a :class:`CheckedProvider`, which checks
the provider's licence on *every* call (a service running past its licence's end stops scoring),
refuses results from a provider without a licence unless each one says it is not the PAM
(``demo``, ``raw-only`` or ``unlicensed``), and checks every result at the boundary
(:func:`check_scores`, :func:`check_result`) before anything writes it. A provider that raises
anything — ``SystemExit`` included — becomes a :class:`~pamlib.errors.ScoringError` naming it.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import os
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import attrs
import numpy as np
import numpy.typing as npt

from pamlib.errors import (
    LicenceError,
    PamlibError,
    ProviderResultError,
    ScoringError,
    _raised_at,
)
from pamlib.levels import ActivationLevel, round_half_away, round_half_away_array
from pamlib.plugins import PluginGuard, describe_failure, get_host
from pamlib.results import REPORTING_SCALE, Flag, ScoreResult, ScoreStatus
from pamlib.scoring.provider import (
    BATCH_ARRAYS,
    FLAG_BITS,
    BaseProvider,
    BatchColumnError,
    BatchScores,
    Licence,
    ScoringProvider,
)

if TYPE_CHECKING:
    from pamlib.assessment import Assessment
    from pamlib.instruments import Instrument
    from pamlib.levels import CutpointRegistry, CutpointSet
    from pamlib.plugins import PluginHost
    from pamlib.scoring.calibration import Calibration

#: Flags saying a result is not a licensed PAM score; a provider without a licence must put one
#: of them on every result (or mark the whole batch ``demo``).
NOT_PAM_FLAGS: frozenset[Flag] = frozenset({Flag.DEMO, Flag.RAW_ONLY, Flag.UNLICENSED})
_NOT_PAM_BITS = sum(FLAG_BITS[f] for f in NOT_PAM_FLAGS)

#: The registered provider that ``calibration=`` selects when no provider is named.
CALIBRATION_PROVIDER = "rasch"

#: The reporting scale every PAM score lies on (kept under its first name for callers).
SCORE_RANGE: tuple[float, float] = REPORTING_SCALE
#: Bits as plain integers, which combine with a uint8 column and with one result's int alike.
_UNKNOWN_BITS = 0xFF & ~sum(FLAG_BITS.values())
_DEMO_BIT = FLAG_BITS[Flag.DEMO]
_RAW_ONLY_BIT = FLAG_BITS[Flag.RAW_ONLY]


#: What a scored row must carry, unless it is flagged ``raw-only`` (raw totals only). Theta and
#: the standard errors may be NaN — not reported, as by a provider that is not a Rasch model —
#: but, like every number, never infinite.
#: The field and message of each rule :func:`_broken` works out, in the order a refusal names
#: them.
_RULES: tuple[tuple[str, str], ...] = (
    ("flags", "a flag pamlib does not know"),
    ("n_answered", "outside the number of items"),
    ("raw_score", "outside the range the answered items allow"),
    ("flags", "a demo result not flagged demo"),
    *((name, "infinite") for name in ("theta", "theta_se", "score", "score_se", "mean_response")),
    ("score", "a scored row with no score (only raw-only results may leave it out)"),
    ("mean_response", "outside the response categories"),
    ("score", "not on the 0–100 scale"),
    ("score_se", "a negative standard error"),
    ("theta_se", "a negative standard error"),
    ("score", "a score on a row that was not scored"),
    ("level", "a level on a row that was not scored"),
    ("reason_code", "a reason on a scored row"),
    ("reason_code", "not scored, with no reason"),
    ("level", "not the level of the score at its cut points"),
    ("level", "a level without a cut-point set"),
)


def check_scores(
    scores: object,
    instrument: Instrument,
    provider: ScoringProvider,
    *,
    n_rows: int,
    cutpoints: CutpointRegistry,
) -> BatchScores:
    """``scores`` if it is a valid answer of ``provider`` for ``n_rows`` rows of
    ``instrument``, else a :class:`ProviderResultError` naming the first offending row and
    field (or a :class:`~pamlib.errors.LicenceError` for results not marked as not the PAM).

    Checked, vectorised: one value per row in every column; the demo flag as the provider
    declares it (and on every row of a demo batch); no flag pamlib does not know; the number
    answered and the raw total within the instrument's range; no infinity anywhere (theta and
    standard errors may be NaN: not reported) and a mean response within the categories; a
    score on every scored row (unless flagged ``raw-only``), on the 0–100 scale; standard errors
    not negative; no score and no level
    where not scored; a reason code exactly where not scored; and levels equal to the declared
    cut-point set applied to the score (none without a set). A provider that is not licensed
    must mark every row as not the PAM.
    """
    pid = provider.id
    if not isinstance(scores, BatchScores):
        raise ProviderResultError(pid, None, "result", f"got a {type(scores).__name__}")
    for name in BATCH_ARRAYS:  # a column of one value (``scored=True``) has no length to read
        if getattr(scores, name).ndim != 1:
            raise ProviderResultError(pid, None, name, "not one value per row")
    if len(scores) != n_rows:
        raise ProviderResultError(
            pid, None, "length", f"{len(scores)} rows of scores for {n_rows} rows of answers"
        )
    for name in BATCH_ARRAYS:
        if getattr(scores, name).shape != (n_rows,):
            raise ProviderResultError(pid, None, name, "not one value per row")
    cut = _check_provenance(
        provider,
        demo=scores.demo,
        not_pam=lambda: bool(np.all(scores.flags & _NOT_PAM_BITS)),
        cutpoint_set=scores.cutpoint_set,
        cutpoints=cutpoints,
    )
    rows = _Rows(
        scored=scores.scored,
        # int32: the raw total's bound (items answered × categories) overflows int16
        n_answered=scores.n_answered.astype(np.int32),
        raw_score=scores.raw_score,
        mean_response=scores.mean_response,
        theta=scores.theta,
        theta_se=scores.theta_se,
        score=scores.score,
        score_se=scores.score_se,
        level=scores.level,
        flags=scores.flags,
        reason_code=scores.reason_code,
        demo=scores.demo,
    )
    with np.errstate(invalid="ignore"):
        broken = _broken(
            rows,
            instrument,
            None if cut is None else cut.levels,
            isnan=np.isnan,
            isinf=np.isinf,
            negate=np.logical_not,
            blank=_blank_codes,
        )
    _refuse_first(pid, ((bad, *rule) for rule, bad in zip(_RULES, broken, strict=True)))
    return scores


def _refuse_first(pid: str, found: Iterable[tuple[Any, str, str]]) -> None:
    """Raise :class:`ProviderResultError` for the first row any of ``found``'s masks marks
    (each with its field and message): the row a provider's author looks at first."""
    first: tuple[int, str, str] | None = None
    for bad, name, message in found:
        if np.any(bad):
            row = int(np.argmax(bad))
            if first is None or row < first[0]:
                first = (row, name, message)
    if first is not None:
        raise ProviderResultError(pid, *first)


def check_result(
    result: object,
    assessment: Assessment,
    provider: ScoringProvider,
    *,
    cutpoints: CutpointRegistry,
) -> ScoreResult:
    """``result`` if it is a valid answer of ``provider`` for ``assessment``: a batch of one
    through the rules of :func:`check_scores` (the same rules, in the same order, with the same
    messages, read from the result's values rather than from one-row arrays, which would cost
    NumPy's overhead per call), and it must be about ``assessment``: a result naming another
    assessment is refused."""
    pid = provider.id
    if not isinstance(result, ScoreResult):
        raise ProviderResultError(pid, None, "result", f"got a {type(result).__name__}")
    if result.assessment_id != assessment.id:
        raise ProviderResultError(pid, 0, "assessment_id", "not the assessment asked about")
    if not isinstance(result.status, ScoreStatus):
        raise ProviderResultError(pid, 0, "status", "not a ScoreStatus")
    level: object = result.level
    n_answered: object = result.n_answered
    raw_score: object = result.raw_score
    # Whole numbers, as a batch's integer columns must be: int() would truncate a level of
    # 3.5 to 3 and pass it on as 3.5. Exact integers of another type are made plain below.
    plain = (
        type(n_answered) is int
        and (raw_score is None or type(raw_score) is int)
        and (level is None or type(level) is ActivationLevel)
    )
    for name, value in (
        ()
        if plain
        else (
            ("n_answered", n_answered),
            ("raw_score", raw_score),
            ("level", level),
        )
    ):
        if not _is_int(value) and (value is not None or name == "n_answered"):
            raise ProviderResultError(pid, 0, name, "not a whole number")
    try:
        flags = sum(FLAG_BITS[f] for f in result.flags)
    except (KeyError, TypeError):
        raise ProviderResultError(pid, 0, "result", "a field of the wrong type") from None
    cut = _check_provenance(
        provider,
        demo=result.demo,
        not_pam=lambda: bool(flags & _NOT_PAM_BITS),
        cutpoint_set=result.cutpoint_set,
        cutpoints=cutpoints,
    )

    def level_of(score: float) -> int:
        return 0 if cut is None or math.isnan(score) else int(cut.level(score))

    try:
        nan = math.nan
        row = _Rows(  # the fields in order, positionally: this runs for every assessment
            result.status is ScoreStatus.SCORED,
            int(result.n_answered),
            0 if result.raw_score is None else int(result.raw_score),
            nan if result.mean_response is None else result.mean_response,
            nan if result.theta is None else result.theta,
            nan if result.theta_se is None else result.theta_se,
            nan if result.score is None else result.score,
            nan if result.score_se is None else result.score_se,
            0 if result.level is None else int(result.level),
            flags,
            result.reason_code or "",
            result.demo,
        )
        broken = _broken(
            row,
            assessment.instrument,
            None if cut is None else level_of,
            isnan=math.isnan,
            isinf=math.isinf,
            negate=operator.not_,
            blank=_is_blank,
        )
        found = _RULES[broken.index(True)] if True in broken else None
    except (TypeError, ValueError, OverflowError):
        found = ("result", "a field of the wrong type")
    if found is not None:
        raise ProviderResultError(pid, 0, *found)
    if plain:
        return result
    return attrs.evolve(  # a level given as a number, counts as NumPy integers: made plain
        result,
        level=ActivationLevel(int(level)) if level else None,  # type: ignore[call-overload]
        n_answered=int(n_answered),  # type: ignore[call-overload]
        raw_score=None if raw_score is None else int(raw_score),  # type: ignore[call-overload]
    )


def _check_provenance(
    provider: ScoringProvider,
    *,
    demo: bool,
    not_pam: Callable[[], bool],
    cutpoint_set: str | None,
    cutpoints: CutpointRegistry,
) -> CutpointSet | None:
    """The checks of a whole batch (of one, for one result): demo as the provider declares,
    a licence or every row marked not the PAM (``not_pam``), a registered cut-point set, which
    is returned (``None`` without one)."""
    pid = provider.id
    if provider.demo and not demo:
        raise ScoringError(
            f"provider {pid!r} is a demonstration provider but returned results not "
            "marked demo; refusing to pass them on"
        )
    if provider.licence is None and not demo and not not_pam():
        raise LicenceError(
            f"provider {pid!r} holds no licence, yet returned results not marked as "
            "not the PAM (demo, raw-only or unlicensed); refusing to pass them on"
        )
    if demo != provider.demo:
        raise ProviderResultError(pid, None, "demo", "the batch is demo but the provider is not")
    if not cutpoint_set:
        return None
    if cutpoint_set not in cutpoints:
        raise ProviderResultError(
            pid, None, "cutpoint_set", "names a cut-point set that is not registered"
        )
    return cutpoints.get(cutpoint_set)


class _Rows(NamedTuple):
    """What the row rules read: a batch's columns (arrays), or one result's values."""

    scored: Any
    n_answered: Any
    raw_score: Any
    mean_response: Any
    theta: Any
    theta_se: Any
    score: Any
    score_se: Any
    level: Any
    flags: Any
    reason_code: Any
    demo: bool


def _broken(
    v: _Rows,
    instrument: Instrument,
    levels: Callable[[Any], Any] | None,
    *,
    isnan: Callable[[Any], Any],
    isinf: Callable[[Any], Any],
    negate: Callable[[Any], Any],
    blank: Callable[[Any], Any],
) -> tuple[Any, ...]:
    """Where each of :data:`_RULES` is broken: a boolean per row for a batch's columns, one
    boolean for one result's values (the operations given work on either). ``levels`` gives
    the level of a score at the declared cut points (``None``: no cut-point set). One tuple,
    worked out at once: one result pays no more than plain comparisons."""
    scored, flags, score, level = v.scored, v.flags, v.score, v.level
    unscored = negate(scored)
    no_reason = blank(v.reason_code)  # once: over a batch's column each comparison costs
    n, mean = v.n_answered, v.mean_response
    return (
        (flags & _UNKNOWN_BITS) != 0,
        (n < 0) | (n > instrument.n_items),
        (v.raw_score < n) | (v.raw_score > n * instrument.n_categories),
        v.demo & ((flags & _DEMO_BIT) == 0),
        isinf(v.theta),
        isinf(v.theta_se),
        isinf(score),
        isinf(v.score_se),
        isinf(mean),
        scored & ((flags & _RAW_ONLY_BIT) == 0) & isnan(score),
        (mean < 1) | (mean > instrument.n_categories),
        (score < SCORE_RANGE[0]) | (score > SCORE_RANGE[1]),
        v.score_se < 0,
        v.theta_se < 0,
        unscored & negate(isnan(score)),
        unscored & (level != 0),
        scored & negate(no_reason),
        unscored & no_reason,
        levels is not None and level != levels(score),
        levels is None and level != 0,
    )


def _is_blank(code: object) -> bool:
    return code == ""


def _blank_codes(codes: npt.NDArray[np.str_]) -> npt.NDArray[np.bool_]:
    """``codes == ""``, a boolean per row. A scorer's usual batch has no reason on any row, and
    a column of ``""`` is all zero bytes: one count of them answers for every row, where the
    comparison works through each row's text."""
    if (
        codes.ndim == 1
        and codes.dtype.kind == "U"
        and codes.dtype.itemsize
        and codes.flags.c_contiguous
        and not np.count_nonzero(codes.view(np.uint32))
    ):
        return np.ones(codes.shape[0], dtype=np.bool_)
    blank: npt.NDArray[np.bool_] = codes == ""
    return blank


#: Longest reason code and reason text a provider may give: a code is a stable token and its
#: words one line, and both reach every output row and the console's summary.
MAX_REASON_CODE = 64
MAX_REASON_TEXT = 300
#: Most decimals a provider may report scores to (a calibration's scale allows as many).
MAX_SCORE_DECIMALS = 4

#: Modules of pamlib's own scoring engines, which count the answers they score themselves.
_OWN_ENGINES = frozenset({"pamlib.scoring.rasch", "pamlib.scoring.demo", "pamlib.scoring.raw_sum"})


def _counts_own_answers(provider: ScoringProvider) -> bool:
    """Whether ``provider`` scores through pamlib's own engine, ``score_batch`` and ``score``
    not overridden: the engine counts the answered items and their total from the answers
    themselves, so counting them again to check it would cost a sixth of a batch's checks and
    find nothing. Any other provider's counts are checked against the answers."""
    own = getattr(provider, "__dict__", None)
    if own and ("score_batch" in own or "score" in own):
        return False
    kind = type(provider)
    known = _OWN_ENGINE_TYPES.get(kind)
    if known is None:  # once a class: a provider is wrapped on every selection
        batch = getattr(getattr(kind, "score_batch", None), "__module__", None)
        one = getattr(getattr(kind, "score", None), "__module__", None)
        known = batch in _OWN_ENGINES and (one in _OWN_ENGINES or one == "pamlib.scoring.provider")
        _OWN_ENGINE_TYPES[kind] = known
    return known


_OWN_ENGINE_TYPES: dict[type, bool] = {}


def _answer_counts(
    codes: npt.NDArray[np.int8], instrument: Instrument
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Items answered with a category, and their total, for each row of ``codes``: eight
    codes at a time as the engine counts them where it can, else NumPy's reductions."""
    from pamlib.scoring.raw_sum import _summed

    summed = _summed(codes) if instrument.n_categories == 4 else None
    if summed is not None:
        return summed[0], summed[1]
    answered = codes > 0
    return answered.sum(axis=1), np.where(answered, codes, 0).sum(axis=1, dtype=np.int64)


def _is_int(value: object) -> bool:
    return type(value) in _PLAIN_INTS or (
        isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    )


_PLAIN_INTS = (int, ActivationLevel)  # the usual types, told without isinstance


def _one_line(text: object, longest: int) -> bool:
    return isinstance(text, str) and len(text) <= longest and text.isprintable()


def _check_stamp(checked: CheckedProvider, stamped: BatchScores | ScoreResult) -> None:
    """Provenance is the provider's that was asked: a result (a batch's or one assessment's)
    naming another provider or version (a stale constant, a wrapped engine's own id) would be
    written as if it came from that one."""
    pid = checked.id
    provider: object = stamped.provider
    version: object = stamped.provider_version
    demo: object = stamped.demo
    if provider != pid or not isinstance(provider, str):
        raise ProviderResultError(pid, None, "provider", "not the id of the provider asked")
    if version != checked.version or not isinstance(version, str):
        raise ProviderResultError(
            pid, None, "provider_version", "not the version the provider declares"
        )
    if type(demo) is not bool and not isinstance(demo, np.bool_):
        raise ProviderResultError(pid, None, "demo", "not True or False")
    for name in ("calibration_id", "calibration_sha256"):
        value: object = getattr(stamped, name)
        if value is not None and not isinstance(value, str):
            raise ProviderResultError(pid, None, name, "not text")


def check_batch_boundary(
    scores: BatchScores,
    checked: CheckedProvider,
    instrument: Instrument,
    codes: npt.NDArray[np.int8] | None,
) -> BatchScores:
    """``scores``, which :func:`check_scores` passed, checked for what the columns alone do
    not show: provenance naming the provider asked (:func:`_check_stamp`); ``score_decimals``
    a whole number of decimals, its cut-point set's where there is one; reason codes and words
    of a sane size; and, given the ``codes`` scored, the number answered and the raw total of
    each row. Vectorised;
    raises :class:`ProviderResultError` naming the first offending row and field.

    Scores with more decimals than they are reported to (a float32 score, one left unrounded)
    come back rounded half away from zero to that precision: every output writes them so, and
    their levels are the rounded scores', so callers and plugins see the same numbers as the
    files. Only a batch that needs it pays for the rounding."""
    pid = checked.id
    _check_stamp(checked, scores)
    decimals: object = scores.score_decimals
    cut = checked.cutpoints().get(scores.cutpoint_set) if scores.cutpoint_set else None
    if decimals is not None:
        if not _is_int(decimals) or not 0 <= int(decimals) <= MAX_SCORE_DECIMALS:  # type: ignore[call-overload]
            raise ProviderResultError(
                pid, None, "score_decimals", f"not a whole number within 0..{MAX_SCORE_DECIMALS}"
            )
        if cut is not None and int(decimals) != cut.decimals:  # type: ignore[call-overload]
            raise ProviderResultError(
                pid, None, "score_decimals", "not the precision of its cut-point set"
            )
    reasons: object = scores.reasons
    if not isinstance(reasons, dict) or not all(
        _one_line(k, MAX_REASON_CODE) and _one_line(v, MAX_REASON_TEXT) for k, v in reasons.items()
    ):
        raise ProviderResultError(
            pid,
            None,
            "reasons",
            f"not reason codes each with one line of words (at most {MAX_REASON_TEXT} characters)",
        )
    found: list[tuple[npt.NDArray[np.bool_], str, str]] = []
    if scores.reason_code.dtype.itemsize > 4 * MAX_REASON_CODE:  # 4 bytes a character
        long = np.char.str_len(scores.reason_code) > MAX_REASON_CODE
        found.append((long, "reason_code", f"longer than {MAX_REASON_CODE} characters"))
    if codes is not None:
        n, raw = _answer_counts(codes, instrument)
        found.append((scores.n_answered != n, "n_answered", "not the number of items answered"))
        found.append((scores.raw_score != raw, "raw_score", "not the total of the answers"))
    _refuse_first(pid, found)
    precision = cut.decimals if cut is not None else decimals
    if precision is None:
        return scores
    places = int(precision)  # type: ignore[call-overload]
    factor = 10.0**places
    score = scores.score
    with np.errstate(invalid="ignore", over="ignore"):
        if np.all((np.rint(score * factor) / factor == score) | np.isnan(score)):
            return scores  # as pamlib's engine gives them: rounded already
    return attrs.evolve(scores, score=round_half_away_array(score, places))


def check_result_boundary(
    result: ScoreResult,
    checked: CheckedProvider,
    assessment: Assessment,
    *,
    count: bool,
) -> ScoreResult:
    """:func:`check_batch_boundary` for one result :func:`check_result` passed, read from its
    values (the same rules, fields and messages, the score rounded the same way); ``count``:
    check the number answered and the raw total against the assessment's answers."""
    pid = checked.id
    _check_stamp(checked, result)
    reason, code = result.reason, result.reason_code
    if reason is not None and (code is None or not _one_line(reason, MAX_REASON_TEXT)):
        raise ProviderResultError(
            pid,
            None,
            "reasons",
            f"not reason codes each with one line of words (at most {MAX_REASON_TEXT} characters)",
        )
    score = result.score
    cut = checked.cutpoints().get(result.cutpoint_set) if result.cutpoint_set else None
    found: list[tuple[str, str]] = []
    if code is not None and len(code) > MAX_REASON_CODE:
        found.append(("reason_code", f"longer than {MAX_REASON_CODE} characters"))
    if count:
        answers = [int(r) for r in assessment.responses.values() if r.is_category]
        if result.n_answered != len(answers):
            found.append(("n_answered", "not the number of items answered"))
        raw = result.raw_score
        if raw is not None and raw != sum(answers):
            found.append(("raw_score", "not the total of the answers"))
    if found:
        raise ProviderResultError(pid, 0, *found[0])
    if cut is not None and score is not None:
        factor = 10.0**cut.decimals
        if round(score * factor) / factor != score:  # not as the engine gives it: rounded
            return attrs.evolve(result, score=round_half_away(score, cut.decimals))
    return result


def _identity(inner: ScoringProvider) -> tuple[str, str, bool]:
    """The provider's id, version and demo flag, read once (they are the plugin's code, and a
    property may raise or change): what it was chosen as is what its results must name."""
    try:
        pid, version, demo = inner.id, inner.version, inner.demo
        if type(pid) is str and type(version) is str and type(demo) is bool:
            return pid, version, demo  # the usual case, told first: wrapped at every selection
    except KeyboardInterrupt:  # the user's, as an unwatched guard takes it
        raise
    except BaseException as exc:
        raise ScoringError(
            f"a scoring provider ({type(inner).__name__}) failed to declare its id, version "
            f"or demo flag: {describe_failure(exc)}"
        ) from None
    if not isinstance(pid, str) or not isinstance(version, str):
        raise ScoringError(
            f"a scoring provider ({type(inner).__name__}) declares an id or version that is "
            "not text"
        )
    if not isinstance(demo, bool | np.bool_):
        raise ScoringError(f"provider {pid!r} declares a demo flag that is not True or False")
    return pid, version, bool(demo)


def _owned(scores: BatchScores) -> BatchScores:
    """``scores`` with every column that is a view of other memory copied: a provider reusing
    a buffer across batches (``self._buffer[:n]``) would otherwise rewrite a batch already
    checked, and perhaps not yet written, when it scores the next. Columns the provider made
    for the batch (the usual case) are kept as they are, at no cost."""
    views: dict[str, Any] = {
        k: np.array(v) for k in BATCH_ARRAYS if (v := getattr(scores, k)).base is not None
    }
    return attrs.evolve(scores, **views) if views else scores


class CheckedProvider:
    """A provider as pamlib hands it out: licence checked, failures contained and results
    verified on every call.

    Everything else is the wrapped provider's (:attr:`inner`). Its id, version and demo flag
    are read once, when it is wrapped: results must name that id and version. ``host`` is
    where cut-point sets are looked up to check levels (default: the process-wide host, on
    first use).
    """

    __slots__ = ("_cutpoints", "_demo", "_host", "_id", "_inner", "_own_counts", "_version")
    _host: PluginHost | None

    def __init__(self, inner: ScoringProvider, host: PluginHost | None = None) -> None:
        if isinstance(inner, CheckedProvider):
            host = host or inner._host
            inner = inner.inner
        self._inner = inner
        self._host = host
        self._cutpoints: CutpointRegistry | None = None
        self._id, self._version, self._demo = _identity(inner)
        self._own_counts = _counts_own_answers(inner)

    @property
    def inner(self) -> ScoringProvider:
        return self._inner

    def __reduce__(self) -> tuple[type[CheckedProvider], tuple[object, ...]]:
        # The provider and the host; the cut-point registry is looked up again on first use.
        return (CheckedProvider, (self._inner, self._host))

    @property
    def id(self) -> str:
        return self._id

    @property
    def version(self) -> str:
        return self._version

    @property
    def demo(self) -> bool:
        return self._demo

    @property
    def licence(self) -> Licence | None:
        """The provider's licence, read through the same guard as before every call."""
        return self._licence()

    def instruments(self) -> Collection[str]:
        return _declared(self._inner)

    def _licence(self) -> Licence | None:
        """The provider's licence: a ``licence`` property is the plugin's code, and one that
        raises (or gives something else) is a :class:`ScoringError` naming the provider. A
        plain ``try`` rather than a :class:`PluginGuard`: this runs twice a call of the object
        API, and a guard's set-up costs about a microsecond each time."""
        try:
            licence = self._inner.licence
        except KeyboardInterrupt:  # the user's, as an unwatched guard takes it
            raise
        except BaseException as exc:
            raise ScoringError(
                f"provider {self._id!r} failed to declare its licence: {describe_failure(exc)}"
            ) from exc
        if licence is not None and not isinstance(licence, Licence):
            raise ScoringError(
                f"provider {self._id!r} failed to declare its licence: it is a "
                f"{type(licence).__name__}, not a Licence"
            )
        return licence

    @staticmethod
    def _allows(licence: Licence, instrument: Instrument, on: dt.date | None = None) -> None:
        # pamlib's rule, not a subclass's: a Licence subclass overriding ``check`` (to pass
        # everything, or raising something else) does not decide whether pamlib scores.
        Licence.check(licence, instrument.id, on)

    def check(self, instrument: Instrument, on: dt.date | None = None) -> None:
        """Raise :class:`~pamlib.errors.LicenceError` unless ``instrument`` may be scored today."""
        licence = self._licence()
        if licence is not None:
            self._allows(licence, instrument, on)

    def _recheck(self, instrument: Instrument, before: Licence | None) -> None:
        """The licence read after the call must be the one checked before it: a provider whose
        licence appears only once it has scored (a lazily read calibration) is checked again."""
        after = self._licence()
        if after != before:
            if after is None:
                return  # no licence now: the honesty rules below refuse unmarked results
            self._allows(after, instrument)

    def cutpoints(self) -> CutpointRegistry:
        """The cut-point sets levels are checked against."""
        registry = self._cutpoints
        if registry is None:
            registry = self._cutpoints = (self._host or get_host()).cutpoint_sets()
        return registry

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        licence = self._licence()
        if licence is not None:
            self._allows(licence, instrument)
        view = np.asarray(codes).view()
        view.flags.writeable = False  # the caller's answers are not the provider's to change
        guard = PluginGuard(watch=True)  # once per batch: a Ctrl-C is told from the provider's
        with guard:
            scores = self._inner.score_batch(instrument, view)
        if isinstance(guard.error, BatchColumnError):  # a column that does not convert exactly
            error = guard.error
            raise ProviderResultError(self._id, None, error.field, error.reason) from None
        if guard.error is not None:
            self._failed(instrument, guard.error, held_patient=False)
        self._recheck(instrument, licence)
        if isinstance(scores, BatchScores):
            scores = _owned(scores)
        checked = check_scores(
            scores, instrument, self, n_rows=len(codes), cutpoints=self.cutpoints()
        )
        checked = check_batch_boundary(
            checked, self, instrument, None if self._own_counts else view
        )
        for name in BATCH_ARRAYS:  # what was checked is what is written: observers cannot change it
            getattr(checked, name).flags.writeable = False
        return checked

    def score(self, assessment: Assessment) -> ScoreResult:
        licence = self._licence()
        if licence is not None:
            self._allows(licence, assessment.instrument)
        guard = PluginGuard(watch=False)
        with guard:
            result = self._inner.score(assessment)
        if guard.error is not None:
            self._failed(assessment.instrument, guard.error, held_patient=True)
        self._recheck(assessment.instrument, licence)
        checked = check_result(result, assessment, self, cutpoints=self.cutpoints())
        if self._own_counts:  # pamlib's own engine stamped, counted and rounded it
            return checked
        return check_result_boundary(checked, self, assessment, count=True)

    def _failed(
        self, instrument: Instrument, exc: BaseException, *, held_patient: bool
    ) -> NoReturn:
        """The provider raised ``exc``: pamlib's own errors go on as they are, anything else
        (``SystemExit`` too) becomes a :class:`ScoringError` naming the provider and where
        ``exc`` was raised, not chained to it (a traceback would print its text). Where the
        provider ``held_patient`` (an :class:`Assessment`) its text is not told either: it may
        quote the patient. A batch is answer codes only: its text is told, NHS numbers
        withheld."""
        if isinstance(exc, PamlibError):
            raise exc
        what = describe_failure(exc, quote=not held_patient)
        if not held_patient and (at := _raised_at(exc)):
            what = f"{what} (raised at {at})"
        raise ScoringError(
            f"provider {self._id!r} failed while scoring {instrument.id}: {what}"
        ) from None

    def __repr__(self) -> str:
        return f"<checked {self._inner!r}>"


def _bind(
    provider: ScoringProvider,
    calibration: Calibration | str | os.PathLike[str],
    host: PluginHost,
) -> ScoringProvider:
    bind = getattr(provider, "with_calibration", None)
    if bind is None:
        raise ScoringError(f"provider {provider.id!r} does not score with a calibration file")
    guard = PluginGuard(watch=False)
    with guard:
        bound: ScoringProvider = bind(calibration, host=host)
    if isinstance(guard.error, PamlibError | OSError):  # a bad or unreadable calibration file
        raise guard.error
    if guard.error is not None:
        raise ScoringError(
            f"provider {provider.id!r} failed to load the calibration: "
            f"{describe_failure(guard.error)}"
        ) from guard.error
    return bound


def _declared(provider: ScoringProvider) -> frozenset[str]:
    """The instruments ``provider`` declares; a provider failing to say is a
    :class:`ScoringError` naming it (its ``instruments()`` is a plugin's code)."""
    guard = PluginGuard(watch=False)
    with guard:
        declared = frozenset(provider.instruments())
        if not all(isinstance(i, str) for i in declared):
            raise TypeError("instruments() must return instrument ids (str)")
    if guard.error is not None:
        raise ScoringError(
            f"provider {provider.id!r} failed to list its instruments: "
            f"{describe_failure(guard.error)}"
        ) from guard.error
    return declared


_PROVIDER_MEMBERS = ("id", "version", "demo", "licence", "instruments", "score_batch", "score")


def _looks_like_provider(obj: object) -> bool:
    """The :class:`ScoringProvider` check without ``isinstance`` on a runtime protocol, which
    costs tens of microseconds per call — too much on the one-assessment path."""
    if isinstance(obj, BaseProvider):
        return True
    return all(hasattr(obj, name) for name in _PROVIDER_MEMBERS)


def _describe(providers: Collection[str]) -> str:
    return ", ".join(sorted(providers)) or "none"


def select_provider(
    name: str | ScoringProvider | None,
    instrument: Instrument,
    *,
    calibration: Calibration | str | os.PathLike[str] | None = None,
    host: PluginHost | None = None,
) -> ScoringProvider:
    """The provider to score ``instrument`` with, wrapped in a :class:`CheckedProvider`.

    ``name`` picks an installed provider by id (or passes a provider object through the same
    checks). With ``calibration`` and no name, the ``rasch`` provider is bound to it. With neither,
    the single installed provider holding a licence that covers ``instrument`` is chosen; the
    demo provider never is. Raises :class:`~pamlib.errors.ScoringError` when none or several fit
    and :class:`~pamlib.errors.LicenceError` when the licence is expired or does not cover it.
    """
    if host is None:
        host = get_host()
    installed = host.scoring_providers()
    if name is None and calibration is not None:
        name = CALIBRATION_PROVIDER
    provider: ScoringProvider
    if name is None:
        fits = []
        for p in installed.values():
            licence = CheckedProvider(p, host)._licence()  # guarded: names a failing provider
            if (
                not p.demo
                and licence is not None
                and instrument.id in licence.instruments
                and instrument.id in _declared(p)
            ):
                fits.append(p)
        if not fits:
            raise ScoringError(
                f"no licensed scoring provider for {instrument.id} is installed. Name one: "
                "'raw-sum' (raw totals, not the PAM), 'demo' (synthetic, not the PAM), or "
                "'rasch' with a calibration file; installed providers: "
                f"{_describe(installed)}"
            )
        if len(fits) > 1:
            raise ScoringError(
                f"several licensed providers can score {instrument.id}: "
                f"{_describe([p.id for p in fits])}; choose one by name"
            )
        provider = fits[0]
    elif isinstance(name, str):
        found = installed.get(name)
        if found is None:
            raise ScoringError(
                f"no scoring provider called {name!r} is installed; installed providers: "
                f"{_describe(installed)}"
            )
        provider = found
    else:
        provider = name
    reused: CheckedProvider | None = None
    if isinstance(provider, CheckedProvider):
        # one selected once and passed again (the usual object-API call) is used as it is
        if calibration is None and provider._host is host:
            reused = provider
        provider = provider.inner
    if not _looks_like_provider(provider):
        raise ScoringError(f"{type(provider).__name__} is not a scoring provider")
    if calibration is not None:
        provider = _bind(provider, calibration, host)
    covered = _declared(provider)
    if instrument.id not in covered:
        if getattr(provider, "with_calibration", None) is not None and not covered:
            raise ScoringError(
                f"the {provider.id!r} provider scores with a calibration file: pass "
                "calibration= (--calibration on the command line)"
            )
        raise ScoringError(
            f"provider {provider.id!r} does not score {instrument.id}; it scores: "
            f"{_describe(covered)}"
        )
    checked = reused if reused is not None else CheckedProvider(provider, host)
    checked.check(instrument)
    return checked


def check_codes(instrument: Instrument, codes: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """``codes`` as an (n, n_items) int8 array of valid column codes, or a ValidationError
    naming each bad cell (``codes[row, column]``, the first 20)."""
    from pamlib.scoring._codes import checked_codes

    top = np.full(instrument.n_items, instrument.n_categories, dtype=np.int64)
    return checked_codes(codes, top).astype(np.int8, copy=False)
