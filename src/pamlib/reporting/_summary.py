"""Cohort figures: counts by level, score mean and SD, paired change, transitions, NQF #2483.

A :class:`CohortSummary` is a flat, ordered mapping from *keys* to values. A key is the value's
JSON path in the summary: ``levels_baseline.2``, ``transitions.1.3``,
``change_by_baseline_level.all.mean_change``, and ``groups.0.…`` for the first group. The
summary also knows which keys are **counts**, which values are **derived** from which counts
(percentages, means, SDs), and the additive **identities** that hold between counts (row and
column totals, totals over groups, …). Suppression needs exactly that, and the HTML report
labels every number with its key so it can be checked against the JSON.

Definitions, per group and overall:

* ``n_patients``: distinct patients; ``n_assessments``: their assessments of any status, of
  which ``n_assessments_used`` are usable (scored, with a 0–100 score and a level) and the
  rest counted in ``assessments_not_used`` by reason: ``not-scored``, or
  ``no-score-or-level`` (scored, but without a 0–100 score and a level: a raw-sum result).
* ``n_baseline``: patients with a usable baseline; ``n_followup``: those with a follow-up.
* ``levels_baseline``/``levels_followup``: patients by level, ``…_pct`` of ``n_baseline`` /
  ``n_followup``.
* ``score_baseline``/``score_followup``: mean and sample SD (n − 1) of the score.
* ``change_by_baseline_level.<1–4|all>``: patients with a follow-up by baseline level: ``n``,
  mean and SD of the change, and how many (and % of ``n``) improved / stayed stable / declined.
* ``transitions.<baseline level>.<follow-up level>``: patients with a follow-up.
* ``score_histogram.<baseline|followup>.<bin>``: scores in 10-point bins; each bin includes
  its lower edge, the last one (``90-100``) also its upper edge.
* ``nqf2483``: numerator, denominator, rate (%) and exclusions by reason.
* ``trends.<all|baseline>.<quarter>``: the cohort's level mix and mean score by calendar
  quarter (overall only, not per group; see ``pamlib.reporting.trends``).

Means, SDs and percentages are rounded to one decimal, half away from zero as pamlib rounds
every score (:mod:`pamlib.reporting._rounding`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from pamlib.reporting._config import NQF2483_GAIN_POINTS, ReportConfig
from pamlib.reporting._measures import EXCLUSION_CODES, Nqf2483
from pamlib.reporting._privacy import check_groups, check_not_identifiers
from pamlib.reporting._rounding import mean_points as _mean
from pamlib.reporting._rounding import percent as _pct
from pamlib.reporting._rounding import rounded
from pamlib.reporting._trajectories import Trajectories, _classify
from pamlib.reporting.trends import trend_figures_from_sums, trend_sums

LEVELS = ("1", "2", "3", "4")
STRATA = (*LEVELS, "all")
CLASSES = ("improved", "stable", "declined")
BIN_LABELS = tuple(f"{lo}-{lo + 10}" for lo in range(0, 100, 10))
_EXCLUSIONS = tuple(str(e) for e in EXCLUSION_CODES.values())
#: Why an assessment is not used for a trajectory: not scored; or scored without a 0–100 score
#: and a level (a raw-sum result, a hand-edited row).
NOT_USED = ("not-scored", "no-score-or-level")


@attrs.frozen
class Suppressed:
    """A value hidden by small-number suppression; written as its ``symbol``."""

    symbol: str = "*"

    def __str__(self) -> str:
        return self.symbol


Value = int | float | None | Suppressed
#: ``sum(lhs) == sum(rhs)`` for counts: anyone can compute one term from all the others.
Identity = tuple[tuple[str, ...], tuple[str, ...]]


@attrs.frozen(eq=False, repr=False)
class CohortSummary:
    """The cohort's figures as keyed values, with what suppression needs to know about them."""

    values: Mapping[str, Value]
    counts: frozenset[str]
    derived: Mapping[str, tuple[str, ...]]
    identities: tuple[Identity, ...]
    group_by: str | None = None
    groups: tuple[str, ...] = ()
    suppressed: bool = False

    def __repr__(self) -> str:
        return (
            f"CohortSummary(n_values={len(self.values)}, group_by={self.group_by!r}, "
            f"n_groups={len(self.groups)}, suppressed={self.suppressed})"
        )

    def __getitem__(self, key: str) -> Value:
        return self.values[key]

    def scopes(self) -> Iterator[tuple[str, str | None]]:
        """``(key prefix, group name)`` for the overall figures (name ``None``) and each group."""
        yield "", None
        for i, name in enumerate(self.groups):
            yield f"groups.{i}.", name

    def to_json(self) -> dict[str, Any]:
        """Nested JSON values: the overall figures at the top, then ``group_by`` and ``groups``."""
        out = _nest((k, v) for k, v in self.values.items() if not k.startswith("groups."))
        out["group_by"] = self.group_by
        out["groups"] = [
            {
                "group": name,
                **_nest(
                    (k[len(prefix) :], v) for k, v in self.values.items() if k.startswith(prefix)
                ),
            }
            for prefix, name in self.scopes()
            if name is not None
        ]
        return out


def _nest(items: Iterable[tuple[str, Value]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items:
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = str(value) if isinstance(value, Suppressed) else value
    return out


# -- the schema of one scope's figures ----------------------------------------------------------


def _count_keys() -> list[str]:
    keys = ["n_patients", "n_assessments", "n_baseline", "n_followup"]
    keys += ["n_assessments_used", *(f"assessments_not_used.{r}" for r in NOT_USED)]
    keys += [f"levels_baseline.{lv}" for lv in LEVELS]
    keys += [f"levels_followup.{lv}" for lv in LEVELS]
    for s in STRATA:
        keys += [f"change_by_baseline_level.{s}.n"]
        keys += [f"change_by_baseline_level.{s}.n_{c}" for c in CLASSES]
    keys += [f"transitions.{a}.{b}" for a in LEVELS for b in LEVELS]
    keys += [f"score_histogram.{when}.{b}" for when in ("baseline", "followup") for b in BIN_LABELS]
    keys += ["nqf2483.numerator", "nqf2483.denominator"]
    keys += [f"nqf2483.excluded.{r}" for r in _EXCLUSIONS]
    return keys


def _derived() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for lv in LEVELS:
        out[f"levels_baseline_pct.{lv}"] = (f"levels_baseline.{lv}", "n_baseline")
        out[f"levels_followup_pct.{lv}"] = (f"levels_followup.{lv}", "n_followup")
    for when in ("baseline", "followup"):
        out[f"score_{when}.mean"] = out[f"score_{when}.sd"] = (f"n_{when}",)
    for s in STRATA:
        n = f"change_by_baseline_level.{s}.n"
        out[f"change_by_baseline_level.{s}.mean_change"] = (n,)
        out[f"change_by_baseline_level.{s}.sd_change"] = (n,)
        for c in CLASSES:
            out[f"change_by_baseline_level.{s}.pct_{c}"] = (
                f"change_by_baseline_level.{s}.n_{c}",
                n,
            )
    out["nqf2483.rate_pct"] = ("nqf2483.numerator", "nqf2483.denominator")
    return out


def _identities(figures: Mapping[str, Value], config: ReportConfig) -> list[Identity]:
    """Additive identities between one scope's counts (keys without the scope prefix)."""

    def change(s: str, what: str = "n") -> str:
        return f"change_by_baseline_level.{s}.{what}"

    def excluded(reason: str) -> str:
        return f"nqf2483.excluded.{reason}"

    low = ("1", "2", "3")
    out: list[Identity] = [
        (("n_patients",), ("n_baseline", excluded("not-scored"))),
        (
            ("n_assessments",),
            ("n_assessments_used", *(f"assessments_not_used.{r}" for r in NOT_USED)),
        ),
        # every patient is in the measure's denominator or excluded for one reason
        (("n_patients",), ("nqf2483.denominator", *(excluded(r) for r in _EXCLUSIONS))),
        (("n_baseline",), tuple(f"levels_baseline.{lv}" for lv in LEVELS)),
        (("n_baseline",), tuple(f"score_histogram.baseline.{b}" for b in BIN_LABELS)),
        (("n_followup",), tuple(f"levels_followup.{lv}" for lv in LEVELS)),
        (("n_followup",), tuple(f"score_histogram.followup.{b}" for b in BIN_LABELS)),
        (("n_followup",), (change("all"),)),
        ((change("all"),), tuple(change(lv) for lv in LEVELS)),
        (("levels_baseline.4",), (excluded("baseline-level-4"),)),
        (
            (excluded("no-follow-up"), *(change(lv) for lv in low)),
            tuple(f"levels_baseline.{lv}" for lv in low),
        ),
        (
            ("nqf2483.denominator", excluded("extreme-response")),
            tuple(change(lv) for lv in low),
        ),
    ]
    for a in LEVELS:
        out.append(((change(a),), tuple(f"transitions.{a}.{b}" for b in LEVELS)))
        out.append(((f"levels_followup.{a}",), tuple(f"transitions.{b}.{a}" for b in LEVELS)))
    for s in STRATA:
        out.append(((change(s),), tuple(change(s, f"n_{c}") for c in CLASSES)))
    for c in CLASSES:
        out.append(((change("all", f"n_{c}"),), tuple(change(lv, f"n_{c}") for lv in LEVELS)))
    # With no extreme-response exclusions and the NQF gain as threshold, the numerator is the
    # sum of the improved counts of levels 1–3: an identity anyone could use.
    same_gain = config.threshold_tenths == round(NQF2483_GAIN_POINTS * 10)
    if same_gain and figures[excluded("extreme-response")] == 0:
        out.append((("nqf2483.numerator",), tuple(change(lv, "n_improved") for lv in low)))
    return out


# -- computing the figures ----------------------------------------------------------------------


def _sd(n: int, total: int, squares: int) -> float | None:
    if n < 2:
        return None
    return rounded(math.sqrt(max(0, n * squares - total * total) / (n * (n - 1))) / 10)


@attrs.frozen
class _Scopes:
    """Per-scope sums over patients selected by a mask (vectorised with ``bincount``)."""

    codes: NDArray[np.signedinteger[Any]]
    size: int

    def count(self, mask: NDArray[np.bool_]) -> NDArray[np.int64]:
        return np.bincount(self.codes[mask], minlength=self.size).astype(np.int64)

    def total(
        self, mask: NDArray[np.bool_], x: NDArray[np.signedinteger[Any]]
    ) -> NDArray[np.int64]:
        # Sums of integers below 2**53 are exact in float64.
        sums = np.bincount(self.codes[mask], weights=x[mask], minlength=self.size)
        return np.rint(sums).astype(np.int64)


#: The sums a mean and SD are computed from, beside the counts of a scope's sums.
_SUMMED = ("score_baseline", "score_followup", *(f"change_by_baseline_level.{s}" for s in STRATA))


def _total(name: str) -> str:
    return f"{name}.total"


def _squares(name: str) -> str:
    return f"{name}.squares"


#: Patients summed at a time: the masks and temporaries of :func:`_part_sums` (a few dozen
#: of them) then take a few MiB each, not a few bytes a patient of the whole cohort each.
_PATIENTS_AT_A_TIME = 1 << 20


def _sums(
    traj: Trajectories, measure: Nqf2483, codes: NDArray[np.signedinteger[Any]], size: int
) -> list[dict[str, int]]:
    """Each scope's counts (keys of :func:`_count_keys`) and the sums of scores and changes in
    tenths of a point, and of their squares: all additive over disjoint sets of patients, so
    summed a part of the cohort at a time. ``codes`` is each patient's scope, of ``size``."""
    totals: dict[str, NDArray[np.int64]] = {}
    for start in range(0, max(len(traj), 1), _PATIENTS_AT_A_TIME):
        part = slice(start, start + _PATIENTS_AT_A_TIME)
        scopes = _Scopes(codes=codes[part], size=size)
        for key, found in _part_sums(traj, measure, scopes, part).items():
            if key in totals:
                totals[key] += found
            else:
                totals[key] = found
    return [{k: int(v[j]) for k, v in totals.items()} for j in range(size)]


def _part_sums(
    traj: Trajectories, measure: Nqf2483, scopes: _Scopes, part: slice
) -> dict[str, NDArray[np.int64]]:
    """:func:`_sums` of the patients ``part``, per scope."""
    has_f = traj.followup_row[part] >= 0
    has_b = traj.baseline_row[part] >= 0
    b_level, f_level = traj.baseline_level[part], traj.followup_level[part]
    b_score, f_score = traj.baseline_tenths[part], traj.followup_tenths[part]
    change = np.where(has_f, f_score - b_score, 0)
    cls = np.where(has_f, _classify(change, traj.config.threshold_tenths), 0)
    status, reason = measure.status[part], measure.reason[part]
    everyone = np.ones(len(has_b), dtype=np.bool_)

    c: dict[str, NDArray[np.int64]] = {
        "n_patients": scopes.count(everyone),
        "n_assessments": scopes.total(everyone, traj.n_assessments[part]),
        "n_assessments_used": scopes.total(everyone, traj.n_used[part]),
        "assessments_not_used.not-scored": scopes.total(everyone, traj.n_not_scored[part]),
        "assessments_not_used.no-score-or-level": scopes.total(
            everyone, traj.n_assessments[part] - traj.n_used[part] - traj.n_not_scored[part]
        ),
        "n_baseline": scopes.count(has_b),
        "n_followup": scopes.count(has_f),
    }
    for lv in LEVELS:
        c[f"levels_baseline.{lv}"] = scopes.count(b_level == int(lv))
        c[f"levels_followup.{lv}"] = scopes.count(f_level == int(lv))
    for when, has, score in (("baseline", has_b, b_score), ("followup", has_f, f_score)):
        c[_total(f"score_{when}")] = scopes.total(has, score)
        c[_squares(f"score_{when}")] = scopes.total(has, score**2)
    for s in STRATA:
        stratum = has_f & (everyone if s == "all" else b_level == int(s))
        key = f"change_by_baseline_level.{s}"
        c[f"{key}.n"] = scopes.count(stratum)
        for code, name in enumerate(CLASSES, start=1):
            c[f"{key}.n_{name}"] = scopes.count(stratum & (cls == code))
        c[_total(key)] = scopes.total(stratum, change)
        c[_squares(key)] = scopes.total(stratum, change**2)
    for a in LEVELS:
        for b in LEVELS:
            c[f"transitions.{a}.{b}"] = scopes.count(
                has_f & (b_level == int(a)) & (f_level == int(b))
            )
    for when, has, score in (("baseline", has_b, b_score), ("followup", has_f, f_score)):
        bins = np.minimum(score // 100, len(BIN_LABELS) - 1)
        for i, label in enumerate(BIN_LABELS):
            c[f"score_histogram.{when}.{label}"] = scopes.count(has & (bins == i))
    c["nqf2483.numerator"] = scopes.count(status == 1)
    c["nqf2483.denominator"] = scopes.count(status <= 2)
    for code, name in EXCLUSION_CODES.items():
        c[f"nqf2483.excluded.{name}"] = scopes.count(reason == code)
    return c


def _figures(sums: Mapping[str, int]) -> dict[str, Value]:
    """One scope's figures from its sums (missing sums are zero)."""
    counts = {k: int(sums.get(k, 0)) for k in (*_count_keys(), *_sum_keys())}
    f: dict[str, Value] = {}
    f.update((k, counts[k]) for k in ("n_patients", "n_assessments", "n_baseline", "n_followup"))
    f["n_assessments_used"] = counts["n_assessments_used"]
    f.update((f"assessments_not_used.{r}", counts[f"assessments_not_used.{r}"]) for r in NOT_USED)
    for when in ("baseline", "followup"):
        f.update((f"levels_{when}.{lv}", counts[f"levels_{when}.{lv}"]) for lv in LEVELS)
        f.update(
            (
                f"levels_{when}_pct.{lv}",
                _pct(counts[f"levels_{when}.{lv}"], counts[f"n_{when}"]),
            )
            for lv in LEVELS
        )
    for when in ("baseline", "followup"):
        n, name = counts[f"n_{when}"], f"score_{when}"
        f[f"{name}.mean"] = _mean(n, counts[_total(name)])
        f[f"{name}.sd"] = _sd(n, counts[_total(name)], counts[_squares(name)])
    for s in STRATA:
        key = f"change_by_baseline_level.{s}"
        n = counts[f"{key}.n"]
        f[f"{key}.n"] = n
        f[f"{key}.mean_change"] = _mean(n, counts[_total(key)])
        f[f"{key}.sd_change"] = _sd(n, counts[_total(key)], counts[_squares(key)])
        f.update((f"{key}.n_{name}", counts[f"{key}.n_{name}"]) for name in CLASSES)
        f.update((f"{key}.pct_{name}", _pct(counts[f"{key}.n_{name}"], n)) for name in CLASSES)
    f.update((k, counts[k]) for k in _count_keys() if k.startswith("transitions."))
    f.update((k, counts[k]) for k in _count_keys() if k.startswith("score_histogram."))
    f["nqf2483.numerator"] = counts["nqf2483.numerator"]
    f["nqf2483.denominator"] = counts["nqf2483.denominator"]
    f["nqf2483.rate_pct"] = _pct(counts["nqf2483.numerator"], counts["nqf2483.denominator"])
    f.update((k, counts[k]) for k in _count_keys() if k.startswith("nqf2483.excluded."))
    return f


def _sum_keys() -> list[str]:
    return [k for name in _SUMMED for k in (_total(name), _squares(name))]


def _merge(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in parts:
        for key, value in part.items():
            out[key] = out.get(key, 0) + int(value)
    return out


@attrs.frozen(repr=False)
class CohortSums:
    """The additive part of a cohort's figures: counts, and the sums (and sums of squares) of
    scores and changes in tenths of a point, overall, per group (by the group's value) and
    per calendar quarter (:func:`~pamlib.reporting.trends.trend_sums`).

    The sums of parts of a cohort that share no patient are the sums of the whole
    (:meth:`combine`), so parts computed apart — a Spark job's partitions — give the cohort's
    figures exactly (:func:`summary_from_sums`). Holds counts only, never identifiers.
    """

    overall: Mapping[str, int]
    groups: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    trends: Mapping[str, int] = attrs.field(factory=dict)

    def __repr__(self) -> str:
        n = self.overall.get("n_patients", 0)
        return f"CohortSums(n_patients={n}, n_groups={len(self.groups)})"

    @classmethod
    def combine(cls, parts: Iterable[CohortSums]) -> CohortSums:
        """The sums of the union of parts that share no patient."""
        parts = list(parts)
        names = sorted({name for part in parts for name in part.groups})
        return cls(
            overall=_merge(p.overall for p in parts),
            groups={n: _merge(p.groups[n] for p in parts if n in p.groups) for n in names},
            trends=_merge(p.trends for p in parts),
        )


def cohort_sums(
    traj: Trajectories, measure: Nqf2483, config: ReportConfig | None = None
) -> CohortSums:
    """The additive sums of the cohort's figures (per group when ``config.group_by`` is set)."""
    config = config or traj.config
    # Trends first: the scopes' codes (8 bytes a patient each) need not be held meanwhile.
    trends = trend_sums(traj)
    # One byte a patient: the whole cohort is one scope.
    overall = _sums(traj, measure, np.zeros(len(traj), dtype=np.int8), 1)[0]
    groups: dict[str, dict[str, int]] = {}
    if config.group_by is not None:
        distinct, codes = traj.group_codes(config.group_by)
        check_not_identifiers(
            {config.group_by: distinct},
            patient_keys=traj.columns.patient_id,
            assessment_ids=traj.columns.assessment_id,
        )
        sums = _sums(traj, measure, codes, len(distinct))
        groups = dict(zip((str(v) for v in distinct), sums, strict=True))
    return CohortSums(overall=overall, groups=groups, trends=trends)


def summarise(
    traj: Trajectories, measure: Nqf2483, config: ReportConfig | None = None
) -> CohortSummary:
    """Compute the figures overall and, when ``config.group_by`` is set, per group.

    Each patient belongs to one group: the value of the column at the baseline assessment
    (at the first assessment when there is no baseline). Groups are sorted by value. A column
    that identifies patients, by its name or its values, is refused with
    :class:`~pamlib.reporting.IdentifyingColumnError`.
    """
    config = config or traj.config
    return summary_from_sums(cohort_sums(traj, measure, config), config)


def summary_from_sums(sums: CohortSums, config: ReportConfig | None = None) -> CohortSummary:
    """The figures of :func:`summarise` from a cohort's :class:`CohortSums`."""
    config = config or ReportConfig()
    names: tuple[str, ...] = ()
    if config.group_by is not None:
        names = tuple(sorted(sums.groups))
        sizes = [int(sums.groups[n].get("n_patients", 0)) for n in names]
        check_groups(config.group_by, np.repeat(np.arange(len(names)), sizes), len(names))
    scoped = [_figures(sums.overall), *(_figures(sums.groups[n]) for n in names)]

    count_keys = _count_keys()
    derived = _derived()
    values: dict[str, Value] = {}
    counts: set[str] = set()
    depends: dict[str, tuple[str, ...]] = {}
    identities: list[Identity] = []
    for i, figures in enumerate(scoped):
        prefix = "" if i == 0 else f"groups.{i - 1}."
        values.update((prefix + k, v) for k, v in figures.items())
        counts.update(prefix + k for k in count_keys)
        depends.update((prefix + k, tuple(prefix + d for d in deps)) for k, deps in derived.items())
        identities += [
            (tuple(prefix + k for k in lhs), tuple(prefix + k for k in rhs))
            for lhs, rhs in _identities(figures, config)
        ]
        if i == 0:  # trends are the whole cohort's only
            trends = trend_figures_from_sums(sums.trends)
            values.update(trends.values)
            counts.update(trends.counts)
            depends.update(trends.derived)
            identities += trends.identities
    if names:  # every overall count is the sum of the groups' counts
        identities += [
            ((k,), tuple(f"groups.{g}.{k}" for g in range(len(names)))) for k in count_keys
        ]
    return CohortSummary(
        values=values,
        counts=frozenset(counts),
        derived=depends,
        identities=tuple(identities),
        group_by=config.group_by,
        groups=names,
    )
