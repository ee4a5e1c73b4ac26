"""Evaluating tailoring rules: priorities, conflict resolution and explanations.

Every rule — pamlib's defaults, a site's files, Python rules from plugins — goes through the same
:class:`Engine`. For one :class:`~pamlib.tailoring.context.Context` the engine asks each rule
for its actions, then settles conflicts **deterministically, whatever order rules or files were
given in**:

1. Rules are evaluated in order of priority (highest first), then rule id; each rule's actions
   in the order it lists them. This *evaluation order* is the order of every list in the
   outcome: recommendations, notes, traces.
2. **Recommend or suppress**, per pathway: the highest priority wins; at equal priority
   *suppress beats recommend*; ``suppress = "*"`` takes part for every pathway.
3. **Intensity and contact frequency**, per pathway: the highest priority wins; at equal
   priority the lower rule id (in code-point order) wins.
4. **Reassessment interval**: the highest priority wins; at equal priority the *shorter*
   interval wins (reassess sooner). Without any, a scored assessment is due after the policy's
   default interval (6 months).
5. **Notes** never conflict: all are kept, in evaluation order, without duplicates.

A suppressed pathway's settings and notes go with it. Evaluation is always over columns:
:meth:`Engine.evaluate_columns` and :meth:`Engine.table_columns` evaluate file rules' conditions
as masks over :class:`~pamlib.tailoring.columns.ContextColumns` — every rule's ``when`` and
``unless`` compiled once per engine into one ``ConditionPlan`` — and decide once per distinct
combination of matching rules (and Python rules' answers), remembering decisions between calls;
:meth:`Engine.evaluate` is a batch of one through the same code.

Every action leaves a :class:`~pamlib.pathways.RuleTrace`; an action that lost names the rule
that beat it in ``overridden_by``. An outcome without recommendations always says why, in
``no_pathway_reason``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from pamlib._terminal import shown as _shown
from pamlib.errors import ConfigurationError, Problem, RuleError, _raised_at
from pamlib.pathways import Pathway, Recommendation, RuleTrace, TailoringOutcome
from pamlib.tailoring.context import Context
from pamlib.tailoring.reassessment import ReassessmentPolicy
from pamlib.tailoring.rules import (
    ANY_PATHWAY,
    ID_PATTERN,
    Action,
    FileRule,
    Note,
    Recommend,
    Rule,
    RuleFile,
    SetContactFrequency,
    SetIntensity,
    Suppress,
    check_actions,
    check_rule,
    check_rules_file,
    pathway_from_table,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from pamlib.plugins import PluginHost
    from pamlib.tailoring._conditions import ConditionPlan
    from pamlib.tailoring.columns import ContextColumns

__all__ = ["Engine", "build_engine", "explain", "outcome_columns", "suppression_warnings"]

_SUPPRESS, _RECOMMEND = 0, 1


@attrs.frozen
class _Claim:
    """One atomic thing a rule asked for: the unit of conflict resolution and of tracing."""

    seq: int
    kind: str
    rule_id: str
    priority: int
    reason: str
    pathway: str | None = None
    value: str | None = None
    months: int | None = None


def _atoms(action: Action) -> list[tuple[str, str | None, str | None, int | None]]:
    """(kind, pathway, value, months) for each atomic part of ``action``."""
    if isinstance(action, Recommend):
        out: list[tuple[str, str | None, str | None, int | None]] = [
            ("recommend", action.pathway, None, None)
        ]
        if action.intensity is not None:
            out.append(("intensity", action.pathway, action.intensity, None))
        if action.contact_frequency is not None:
            out.append(("contact-frequency", action.pathway, action.contact_frequency, None))
        if action.note is not None:
            out.append(("note", action.pathway, action.note, None))
        return out
    if isinstance(action, Suppress):
        return [("suppress", action.pathway, None, None)]
    if isinstance(action, SetIntensity):
        return [("intensity", action.pathway, action.value, None)]
    if isinstance(action, SetContactFrequency):
        return [("contact-frequency", action.pathway, action.value, None)]
    if isinstance(action, Note):
        return [("note", action.pathway, action.text, None)]
    return [("reassess", None, f"{action.months} months", action.months)]


def _contest_key(claim: _Claim) -> tuple[int, int, str, int]:
    return (
        -claim.priority,
        _SUPPRESS if claim.kind == "suppress" else _RECOMMEND,
        claim.rule_id,
        claim.seq,
    )


def _setting_key(claim: _Claim) -> tuple[int, str, int]:
    return (-claim.priority, claim.rule_id, claim.seq)


def _reassess_key(claim: _Claim) -> tuple[int, int, str, int]:
    return (-claim.priority, claim.months or 0, claim.rule_id, claim.seq)


@attrs.frozen
class _Decision:
    outcome: TailoringOutcome
    months: int | None


#: How many distinct decisions an engine remembers between calls.
_DECISIONS_KEPT = 4096
#: Rows whose conditions are evaluated at a time.
_MASK_ROWS = 1 << 16


@attrs.frozen(eq=False)
class _Plan:
    """What evaluation needs of an engine's rules, worked out once: file rules and Python
    rules with their places, and every ``when`` then every ``unless`` as one condition plan
    (``unless[m]`` is the file rule the ``m``-th ``unless`` belongs to)."""

    files: list[tuple[int, FileRule]]
    python: list[tuple[int, Rule]]
    conditions: ConditionPlan
    unless: npt.NDArray[np.intp]


def _intp(values: list[int]) -> npt.NDArray[np.intp]:
    import numpy as np

    return np.array(values, dtype=np.intp)


class Engine:
    """A checked set of rules and pathways, ready to evaluate contexts.

    Construction checks everything once: each rule is usable, rule ids are unique, every
    pathway a rule file names exists, pathway ids can go into a ``;``-separated column. Python
    rules' actions are checked as they are returned.
    """

    def __init__(
        self,
        rules: Iterable[Rule],
        pathways: Mapping[str, Pathway],
        *,
        policy: ReassessmentPolicy | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        problems: list[Problem] = []
        self.pathways: Mapping[str, Pathway] = dict(pathways)
        for pid in self.pathways:
            if not ID_PATTERN.match(pid):
                message = "pathway ids are letters, digits and . _ : - (no spaces or ;)"
                problems.append(Problem(f"pathway {pid!r}", "id", message))
        by_id: dict[str, Rule] = {}
        for candidate in rules:
            try:
                check_rule(candidate)
            except RuleError as exc:
                problems.extend(exc.problems)
                continue
            if candidate.id in by_id:
                where = ", ".join(
                    sorted(
                        {
                            (sources or {}).get(candidate.id, "?"),
                            _source_of(by_id[candidate.id]),
                            _source_of(candidate),
                        }
                        - {"?", ""}
                    )
                )
                message = "rule ids must be unique across every rule file and plugin"
                problems.append(
                    Problem(
                        f"rule {candidate.id!r}" + (f" ({where})" if where else ""),
                        "duplicate",
                        message,
                    )
                )
                continue
            by_id[candidate.id] = candidate
        for rule in by_id.values():
            if isinstance(rule, FileRule):
                problems.extend(_unknown_pathways(rule, self.pathways))
        if problems:
            raise RuleError("invalid tailoring rules", problems)
        self.rules: tuple[Rule, ...] = tuple(
            sorted(by_id.values(), key=lambda r: (-r.priority, r.id))
        )
        self.policy = policy or ReassessmentPolicy()
        self.sources: Mapping[str, str] = {
            r.id: (sources or {}).get(r.id) or _source_of(r) for r in self.rules
        }
        self._compiled: _Plan | None = None
        self._decisions: dict[Hashable, _Decision] = {}

    # -- evaluation ------------------------------------------------------------------------

    def _plan(self) -> _Plan:
        """Every file rule's ``when`` and ``unless`` compiled into one
        ``ConditionPlan``, built on first use."""
        plan = self._compiled
        if plan is None:
            from pamlib.tailoring._conditions import ConditionPlan

            files = [(j, r) for j, r in enumerate(self.rules) if isinstance(r, FileRule)]
            unless = [(k, r.unless) for k, (_, r) in enumerate(files) if r.unless is not None]
            plan = self._compiled = _Plan(
                files=files,
                python=[(j, r) for j, r in enumerate(self.rules) if not isinstance(r, FileRule)],
                conditions=ConditionPlan.of([r.when for _, r in files] + [c for _, c in unless]),
                unless=_intp([k for k, _ in unless]),
            )
        return plan

    def _remember(self, key: Hashable, decision: _Decision) -> _Decision:
        """Keep ``decision`` for ``key`` (what decides it: the matching file rules, the Python
        rules' answers and the facts a "no pathway" reason quotes), without an assessment id;
        a bounded memory, emptied when full."""
        if len(self._decisions) >= _DECISIONS_KEPT:
            self._decisions.clear()
        decision = attrs.evolve(decision, outcome=attrs.evolve(decision.outcome, assessment_id=""))
        self._decisions[key] = decision
        return decision

    def evaluate(self, context: Context) -> TailoringOutcome:
        """Tailor one assessment: recommendations, suppressions, settings, notes, reassessment
        date and the trace of every rule involved. A batch of one through
        :meth:`evaluate_many`: one assessment is decided exactly as a table's rows are."""
        return self.evaluate_many([context])[0]

    def _ask(self, rule: Rule, context: Context) -> tuple[Action, ...] | None:
        """A Python rule's actions for ``context``, checked; a failing rule is named in the
        error. (File rules are evaluated as masks, never one context at a time.)

        Any exception but a :class:`RuleError` about this very rule becomes one naming it,
        pamlib's own errors included: a :class:`~pamlib.errors.ValidationError` a rule lets
        escape (a bad NHS number it checked) would otherwise read as a fault in the input."""
        try:
            result = rule.evaluate(context)
        except RuleError as exc:
            if not _about(exc, rule.id):
                raise _failed(rule, exc) from None
            raise
        except Exception as exc:
            raise _failed(rule, exc) from None
        if result is None:
            return None
        actions = check_actions(rule.id, result)
        for i, action in enumerate(actions):
            pathway = getattr(action, "pathway", None)
            is_wildcard = isinstance(action, Suppress) and pathway == ANY_PATHWAY
            if pathway is not None and not is_wildcard and pathway not in self.pathways:
                # Not the id itself: a Python rule's pathway may be made from the context (an
                # attribute's value, an identifier), and errors never quote a person's data.
                known = ", ".join(sorted(self.pathways)) or "none"
                message = f"names a pathway that is not in the catalogue; known: {known}"
                raise RuleError(
                    "a tailoring rule named an unknown pathway",
                    [Problem(f"rule {rule.id!r}: result[{i}].pathway", "unknown-pathway", message)],
                )
        return actions

    def _claims(self, results: Sequence[tuple[Action, ...] | None]) -> list[_Claim]:
        """Every atomic claim, in evaluation order, from each rule's actions (``None``: the rule
        did not apply)."""
        claims: list[_Claim] = []
        for rule, actions in zip(self.rules, results, strict=True):
            for action in actions or ():
                reason = action.reason or rule.reason
                for kind, pathway, value, months in _atoms(action):
                    claims.append(
                        _Claim(
                            len(claims),
                            kind,
                            rule.id,
                            rule.priority,
                            reason,
                            pathway,
                            value,
                            months,
                        )
                    )
        return claims

    def _decide(self, context: Context, results: Sequence[tuple[Action, ...] | None]) -> _Decision:
        """The outcome (without date) when each rule answered as in ``results`` (``None``: the
        rule did not apply); ``context`` supplies the facts a "no pathway" reason quotes."""
        claims = self._claims(results)
        # Recommend/suppress contests, one per pathway something recommended.
        first_seen: dict[str, int] = {}
        for c in claims:
            if c.kind == "recommend" and c.pathway is not None:
                first_seen.setdefault(c.pathway, c.seq)
        lost_to: dict[str, dict[int, str]] = {}  # pathway -> claim seq -> rule that beat it
        winners: dict[str, _Claim] = {}
        for pathway in first_seen:
            contest = [
                c
                for c in claims
                if (c.kind == "recommend" and c.pathway == pathway)
                or (c.kind == "suppress" and c.pathway in (pathway, ANY_PATHWAY))
            ]
            winner = winners[pathway] = min(contest, key=_contest_key)
            lost_to[pathway] = {c.seq: winner.rule_id for c in contest if c.kind != winner.kind}
            if winner.kind == "suppress":  # its settings and notes go with it
                lost_to[pathway].update(
                    (c.seq, winner.rule_id)
                    for c in claims
                    if c.pathway == pathway and c.kind not in ("recommend", "suppress")
                )
        recommended = [p for p in first_seen if winners[p].kind == "recommend"]
        recommended.sort(key=lambda p: winners[p].seq)
        suppressed = [p for p in first_seen if winners[p].kind == "suppress"]
        # Settings and the reassessment interval: one winner each, the rest overridden by it.
        lost: dict[int, str] = {}
        effective: set[int] = set()
        for pathway in first_seen:
            for kind in ("intensity", "contact-frequency"):
                contest = [c for c in claims if c.kind == kind and c.pathway == pathway]
                if contest:
                    winner = min(contest, key=_setting_key)
                    effective.update(c.seq for c in contest)
                    lost.update({c.seq: winner.rule_id for c in contest if c is not winner})
        reassess = [c for c in claims if c.kind == "reassess"]
        months = None
        if reassess:
            winner = min(reassess, key=_reassess_key)
            months = winner.months
            effective.update(c.seq for c in reassess)
            lost.update({c.seq: winner.rule_id for c in reassess if c is not winner})
        for c in claims:
            if (
                (c.kind in ("recommend", "suppress") and c.pathway in first_seen)
                or (c.kind == "note" and (c.pathway is None or c.pathway in first_seen))
                or (c.kind == "suppress" and c.pathway == ANY_PATHWAY and first_seen)
            ):
                effective.add(c.seq)

        def beaten(c: _Claim, pathway: str | None) -> str | None:
            if c.kind not in ("recommend", "suppress"):
                return lost_to.get(str(c.pathway), {}).get(c.seq) or lost.get(c.seq)
            if pathway is not None:
                return lost_to.get(pathway, {}).get(c.seq)
            if c.pathway != ANY_PATHWAY:
                return lost_to.get(str(c.pathway), {}).get(c.seq)
            # A wildcard took part in every contest: it lost only if it lost them all.
            beats = [lost_to[p].get(c.seq) for p in first_seen]
            return beats[0] if beats and all(beats) else None

        def trace(c: _Claim, pathway: str | None = None) -> RuleTrace:
            return RuleTrace(
                rule_id=c.rule_id,
                action=c.kind,
                reason=c.reason,
                pathway=c.pathway,
                value=c.value,
                priority=c.priority,
                overridden_by=beaten(c, pathway),
            )

        def about(pathway: str) -> list[_Claim]:
            return [
                c
                for c in claims
                if c.pathway == pathway or (c.kind == "suppress" and c.pathway == ANY_PATHWAY)
            ]

        def setting(pathway: str, kind: str) -> str | None:
            won = [c for c in about(pathway) if c.kind == kind and c.seq not in lost]
            return won[0].value if won else None

        recommendations = tuple(
            Recommendation(
                pathway=pathway,
                intensity=setting(pathway, "intensity"),
                contact_frequency=setting(pathway, "contact-frequency"),
                notes=_unique(c.value for c in about(pathway) if c.kind == "note"),
                trace=tuple(trace(c, pathway) for c in about(pathway)),
            )
            for pathway in recommended
        )
        suppressions = tuple(
            Recommendation(pathway=pathway, trace=tuple(trace(c, pathway) for c in about(pathway)))
            for pathway in suppressed
        )
        outcome = TailoringOutcome(
            assessment_id=context.assessment_id,
            recommendations=recommendations,
            suppressed=suppressions,
            notes=_unique(c.value for c in claims if c.kind == "note" and c.pathway is None),
            trace=tuple(trace(c) for c in claims if c.seq in effective),
            no_pathway_reason=None if recommendations else _no_pathway(context, suppressions),
        )
        return _Decision(outcome, months)

    # -- many at once ----------------------------------------------------------------------

    def _decide_columns(
        self, cols: ContextColumns, contexts: Sequence[Context] | None = None
    ) -> tuple[list[_Decision], npt.NDArray[np.intp], npt.NDArray[np.datetime64]]:
        """One decision per distinct combination of (matching file rules, Python rules' answers,
        the facts a "no pathway" reason quotes); the group of each row; each row's due date.

        ``contexts``, when the caller holds them, are the rows of ``cols`` as objects: Python
        rules and "no pathway" reasons then see exactly the objects given."""
        import numpy as np

        from pamlib.tailoring.columns import add_months_array

        n = len(cols)
        plan = self._plan()
        files, python = plan.files, plan.python
        packed = self._matching(cols)
        answers: list[tuple[tuple[Action, ...] | None, ...]] = []
        answer_ids = np.zeros(n if python else 0, dtype=np.int64)
        if python:
            seen: dict[tuple[tuple[Action, ...] | None, ...], int] = {}
            for i, context in enumerate(cols.contexts() if contexts is None else contexts):
                answer = tuple(self._ask(rule, context) for _, rule in python)
                answer_ids[i] = seen.setdefault(answer, len(seen))
            answers = list(seen)
        reason_column = cols.coded("not_scored_reason")
        reason_texts, reasons = reason_column.values.tolist(), reason_column.codes
        by = [*packed, cols.scored, cols.level, reasons, *([answer_ids] if python else [])]
        first, inverse = _groups(by, n)
        decisions = []
        for i in first.tolist():
            key = (
                packed[:, i].tobytes(),
                bool(cols.scored[i]),
                int(cols.level[i]),
                reason_texts[reasons[i]],
                answers[answer_ids[i]] if python else (),
            )
            decision = self._decisions.get(key)
            if decision is None:
                results: list[tuple[Action, ...] | None] = [None] * len(self.rules)
                matched = np.unpackbits(packed[:, i], count=len(files)).tolist()
                for k, (j, rule) in enumerate(files):
                    results[j] = rule.then if matched[k] else None
                if python:
                    for (j, _), answer in zip(python, answers[answer_ids[i]], strict=True):
                        results[j] = answer
                context = cols.context(i) if contexts is None else contexts[i]
                decision = self._remember(key, self._decide(context, results))
            decisions.append(decision)
        # months to the reassessment: a rule's, else the policy's for a scored assessment, else
        # none (NaT, which gives no date)
        none = np.timedelta64("NaT", "M")
        months = np.array([none if d.months is None else d.months for d in decisions], "m8[M]")
        row_months = months[inverse] if n else np.zeros(0, dtype="m8[M]")
        row_months[np.isnat(row_months) & cols.scored] = np.timedelta64(
            self.policy.interval_months, "M"
        )
        due = add_months_array(cols.assessed_on, row_months)
        # After 9999-12-31 a date has no ISO text and no Python date: no date, as for none.
        due[due > np.datetime64("9999-12-31")] = np.datetime64("NaT")
        return decisions, inverse, due

    def _matching(self, cols: ContextColumns) -> npt.NDArray[np.uint8]:
        """Which file rules match each row (``when`` and not ``unless``), a bit a rule
        (:func:`numpy.packbits` along the rules): evaluated a piece of rows at a time, so that
        the masks of every condition are never held for the whole table."""
        import numpy as np

        plan = self._plan()
        files = len(plan.files)

        def bits(part: ContextColumns) -> npt.NDArray[np.uint8]:
            masks = plan.conditions.masks(part)
            matched = masks[:files]
            if len(plan.unless):
                matched[plan.unless] &= ~masks[files:]
            return np.packbits(matched, axis=0)

        n = len(cols)
        if n <= _MASK_ROWS:
            return bits(cols)
        out = np.empty(((files + 7) // 8, n), dtype=np.uint8)
        for start in range(0, n, _MASK_ROWS):
            stop = min(n, start + _MASK_ROWS)
            out[:, start:stop] = bits(cols.slice(start, stop))
        return out

    def evaluate_columns(
        self, cols: ContextColumns, contexts: Sequence[Context] | None = None
    ) -> list[TailoringOutcome]:
        """The outcome of every row of ``cols``; rows that match the same rules share one
        evaluation. ``contexts`` (the same rows as objects, when the caller has them) are what
        Python rules are asked about."""
        decisions, inverse, due = self._decide_columns(cols, contexts)
        dates = due.astype(object).tolist()
        ids = cols.assessment_id.tolist()
        return [
            attrs.evolve(decisions[g].outcome, assessment_id=ids[i], reassess_by=dates[i])
            for i, g in enumerate(inverse.tolist())
        ]

    def table_columns(self, cols: ContextColumns) -> dict[str, list[str]]:
        """The ``recommended_pathways``, ``recommendation_rules``, ``reassess_by`` and
        ``no_pathway_reason`` columns for every row of ``cols`` (see :func:`outcome_columns`),
        without building per-row objects. A row without a pathway always has a reason."""
        import numpy as np

        groups, inverse, due = self._group_columns(cols)
        pathways, rules, reasons = (
            np.array(texts or [""], dtype=np.str_)[inverse].tolist() for texts in groups
        )
        dates = np.datetime_as_string(due, unit="D")
        dates = np.where(np.isnat(due), "", dates)
        return {
            "recommended_pathways": pathways,
            "recommendation_rules": rules,
            "reassess_by": dates.tolist(),
            "no_pathway_reason": reasons,
        }

    def _group_columns(
        self, cols: ContextColumns
    ) -> tuple[
        tuple[list[str], list[str], list[str]], npt.NDArray[np.intp], npt.NDArray[np.datetime64]
    ]:
        """:meth:`table_columns` before it is spread over the rows: the pathways, rules and
        "no pathway" reasons of each group of rows decided alike (texts as
        :func:`outcome_columns` gives them), each row's group, and each row's due date."""
        decisions, inverse, due = self._decide_columns(cols)
        per_group = [outcome_columns(d.outcome) for d in decisions]
        pathways = [c[0] for c in per_group]
        rules = [c[1] for c in per_group]
        reasons = [d.outcome.no_pathway_reason or "" for d in decisions]
        return (pathways, rules, reasons), inverse, due

    def evaluate_many(self, contexts: Sequence[Context]) -> list[TailoringOutcome]:
        """:meth:`evaluate` for each context, as columns through :meth:`evaluate_columns`."""
        from pamlib.tailoring.columns import ContextColumns

        contexts = list(contexts)
        return self.evaluate_columns(ContextColumns.from_contexts(contexts), contexts)

    def explain(self, context: Context) -> str:
        """The outcome for ``context`` in words: see :func:`explain`."""
        return explain(self.evaluate(context), context=context, engine=self)

    # -- pickling --------------------------------------------------------------------------

    def __reduce__(self) -> tuple[Callable[..., Engine], tuple[object, ...]]:
        """Pickle as its rules, pathways, policy and sources; unpickling builds (and checks)
        the engine again. File rules carry their parsed content; Python rules pickle by
        module-qualified reference. A rule that cannot is a
        :class:`~pamlib.errors.ConfigurationError` naming it and where it came from."""
        rules = tuple(
            r if isinstance(r, FileRule) else _pickled_rule(r, self.sources.get(r.id, ""))
            for r in self.rules
        )
        return (
            _rebuild_engine,
            (rules, dict(self.pathways), self.policy, dict(self.sources)),
        )

    def __copy__(self) -> Engine:
        return self  # immutable once built

    def __deepcopy__(self, memo: dict[int, object]) -> Engine:
        return self


def _about(error: RuleError, rule_id: str) -> bool:
    """Whether every problem of ``error`` is located at the rule ``rule_id``."""
    at = f"rule {rule_id!r}"
    return bool(error.problems) and all(
        p.where == at or p.where.startswith(f"{at}:") for p in error.problems
    )


def _failed(rule: Rule, exc: Exception) -> RuleError:
    """A :class:`RuleError` naming ``rule``, which raised ``exc``: the exception's type only,
    for its text may quote the context (an attribute's value). Not chained to ``exc`` (a
    traceback would print its text): a note says where in the rule's code it was raised."""
    problem = Problem(f"rule {rule.id!r}", "rule-failed", f"raised {type(exc).__name__}")
    error = RuleError("a tailoring rule failed", [problem])
    at = _raised_at(exc)
    if at:
        error.add_note(f"rule {rule.id!r} raised {type(exc).__name__} at {at}")
    return error


def _pickled_rule(rule: Rule, source: str) -> bytes:
    """A Python rule pickled on its own, so a failure names the rule, not pickle's internals."""
    from pamlib.plugins import describe_failure

    try:
        return pickle.dumps(rule, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        where = f" ({source})" if source else ""
        raise ConfigurationError(
            f"cannot pickle the tailoring engine: rule {rule.id!r}{where}: {describe_failure(exc)}"
        ) from exc


def _rebuild_engine(
    rules: tuple[FileRule | bytes, ...],
    pathways: dict[str, Pathway],
    policy: ReassessmentPolicy,
    sources: dict[str, str],
) -> Engine:
    loaded: list[Rule] = [
        pickle.loads(r) if isinstance(r, bytes) else r  # noqa: S301 - the engine's own pickle
        for r in rules
    ]
    return Engine(loaded, pathways, policy=policy, sources=sources)


def _groups(
    columns: Sequence[npt.ArrayLike], n: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Rows with equal values in every column form a group: the first row of each group, and
    each row's group, groups numbered in the rows' sorted order. Built column by column on
    integers (each column a digit of one number), whose distinct values Arrow hashes: the
    few groups are sorted, not the rows."""
    import numpy as np

    if n <= 1:  # one assessment (or none) is one group: nothing to sort
        return np.arange(n, dtype=np.intp), np.zeros(n, dtype=np.intp)
    code = np.zeros(n, dtype=np.int64)
    span = 1  # code < span
    for column in columns:
        values = np.asarray(column).reshape(-1)
        small = values.dtype.kind in "bu" and values.dtype.itemsize < 8
        if values.dtype.kind == "i":
            small = bool(values.min() >= 0)
        if not small:  # numbered in order: the same order as the values
            _, values = np.unique(values, return_inverse=True)
            values = values.reshape(-1)
        size = int(values.max(initial=0)) + 1
        if span * size >= 1 << 62:  # the mixed-radix code would overflow: number it first
            _, code = _numbered(code)
            code = code.astype(np.int64)
            span = int(code.max(initial=0)) + 1
        # each column a digit, the first the most significant: the codes sort as the rows do
        code *= size
        code += values
        span *= size
    return _numbered(code)


def _numbered(code: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """For each distinct value of ``code`` in increasing order, its first row; and each row's
    rank among the distinct values (what ``np.unique`` gives, without sorting the rows)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(pa.array(code, pa.int64()))
    seen = np.asarray(encoded.indices.to_numpy(), dtype=np.int32)  # in order of appearance
    distinct = np.asarray(encoded.dictionary.to_numpy(), dtype=np.int64)
    before = np.empty_like(seen)
    before[0] = -1
    np.maximum.accumulate(seen[:-1], out=before[1:])
    first = np.flatnonzero(seen > before)  # the first row of each, in order of appearance
    order = np.argsort(distinct, kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return first[order], rank[seen]


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v is not None))


def _unknown_pathways(rule: FileRule, known: Mapping[str, Pathway]) -> list[Problem]:
    """A problem for each pathway ``rule`` names that ``known`` lacks, at its field when the
    rule came from a file, else at the rule."""
    named = [
        getattr(a, "pathway", None)
        for a in rule.then
        if not isinstance(a, Suppress) or a.pathway != ANY_PATHWAY
    ]
    missing = {p for p in named if p is not None and p not in known}
    if not missing:
        return []
    located = [(where, p) for where, p in rule.pathway_refs if p in missing]
    unplaced = sorted(missing - {p for _, p in located})
    label = f"{rule.source}: rule {rule.id!r}" if rule.source else f"rule {rule.id!r}"
    located += [(f"{label}: then", p) for p in unplaced]
    return [Problem(where, "unknown-pathway", _unknown(p, known)) for where, p in located]


def _unknown(pathway: str, known: Mapping[str, Pathway]) -> str:
    return f"unknown pathway {pathway!r}; known: {', '.join(sorted(known)) or 'none'}"


def _source_of(rule: object) -> str:
    source = getattr(rule, "source", "")
    if isinstance(source, str) and source:
        return source
    module = getattr(getattr(rule, "function", None), "__module__", None)
    return f"python:{module}" if module else "python"


def _no_pathway(context: Context, suppressed: Sequence[Recommendation]) -> str:
    if suppressed:
        parts = []
        for rec in suppressed:
            winners = sorted({t.rule_id for t in rec.trace if t.action == "suppress" and t.applied})
            parts.append(f"{rec.pathway} by {', '.join(winners)}")
        return "every recommended pathway was suppressed: " + "; ".join(parts)
    if not context.scored:
        why = context.not_scored_reason or "no reason given"
        return f"not scored ({why}); no rule recommends a pathway for an unscored assessment"
    if context.level is None:
        return (
            "no activation level (raw totals are not PAM scores and have no level); "
            "no rule recommends a pathway without one"
        )
    return f"no rule recommends a pathway at level {int(context.level)} with these facts"


# -- columns ----------------------------------------------------------------------------------


def outcome_columns(outcome: TailoringOutcome) -> tuple[str, str, str]:
    """``(recommended_pathways, recommendation_rules, reassess_by)`` for a table row.

    Pathways and rule ids are ``;``-separated in evaluation order; the rules are those whose
    actions took effect — produced, changed or suppressed a recommendation, set the
    reassessment interval or added a note. The date is ISO, or empty.
    """
    pathways = ";".join(r.pathway for r in outcome.recommendations)
    rules = ";".join(dict.fromkeys(t.rule_id for t in outcome.trace if t.applied))
    due = outcome.reassess_by.isoformat() if outcome.reassess_by else ""
    return pathways, rules, due


# -- explanations -----------------------------------------------------------------------------


def _trace_line(t: RuleTrace) -> str:
    """``+`` for an action that took effect, ``x`` for one another rule overrode."""
    if t.action == "note":
        what = f"note {t.value!r}"
    elif t.action == "suppress" and t.pathway == ANY_PATHWAY:
        what = "suppress every pathway"
    else:
        what = t.action if t.value is None else f"{t.action} {t.value}"
    mark = "+" if t.applied else "x"
    line = f"{mark} {what} — {t.rule_id} (priority {t.priority}): {t.reason}"
    return line if t.applied else f"{line} — overridden by {t.overridden_by}"


def explain(
    outcome: TailoringOutcome,
    *,
    context: Context | None = None,
    engine: Engine | None = None,
) -> str:
    """An outcome in words: what is recommended, with which settings, what was suppressed,
    every rule involved and why (``+`` took effect, ``x`` was overridden), when to reassess,
    and the notes. Text is shown for a terminal: a control character in a rule's reason or a
    setting (NUL, ESC, a line break) is written as an escape (``\\x1b``), one line per entry."""
    names = engine.pathways if engine is not None else {}
    policy = engine.policy if engine is not None else ReassessmentPolicy()

    def title(pathway: str) -> str:
        known = names.get(pathway)
        return f"  {pathway}" + (f" ({known.name})" if known else "")

    lines = [f"Assessment {outcome.assessment_id}" + (f": {context.describe()}" if context else "")]
    if outcome.recommendations:
        lines.append("Recommended:")
        for rec in outcome.recommendations:
            settings = [
                f"{label} {value}"
                for label, value in (
                    ("intensity", rec.intensity),
                    ("contact", rec.contact_frequency),
                )
                if value
            ]
            lines.append(title(rec.pathway) + (f": {', '.join(settings)}" if settings else ""))
            lines.extend(f"      {_trace_line(t)}" for t in rec.trace)
    else:
        lines.append(f"No pathway: {outcome.no_pathway_reason}")
    if outcome.suppressed:
        lines.append("Suppressed:")
        for rec in outcome.suppressed:
            lines.append(title(rec.pathway))
            lines.extend(
                f"      {_trace_line(t)}"
                for t in rec.trace
                if t.action in ("recommend", "suppress")
            )
    if outcome.reassess_by is not None:
        reassess = [t for t in outcome.trace if t.action == "reassess"]
        won = [t for t in reassess if t.applied]
        months = int(str(won[0].value).split()[0]) if won else policy.interval_months
        why = "set by a rule" if won else "the default interval"
        lines.append(f"Reassess by {outcome.reassess_by.isoformat()}: {months} months, {why}")
        if not policy.in_window(months):
            low, high = policy.window_months
            lines.append(
                f"      (outside the {low}–{high} month follow-up window of change measures)"
            )
        lines.extend(f"      {_trace_line(t)}" for t in reassess)
    notes = [t for t in outcome.trace if t.action == "note" and t.pathway is None]
    if notes:
        lines.append("Notes:")
        lines.extend(f"      {_trace_line(t)}" for t in notes)
    return "\n".join(_shown(line) for line in lines)


# -- checks that are not errors ----------------------------------------------------------------


def suppression_warnings(rules: Iterable[Rule], pathways: Mapping[str, Pathway]) -> list[Problem]:
    """Warnings about file rules that can leave assessments with no pathway at all.

    * a rule with ``suppress = "*"``: every assessment it matches gets no pathway (or only
      those recommended by rules of higher priority);
    * rules without conditions whose suppressions together cover every known pathway: no
      assessment gets a pathway;
    * rules with conditions whose suppressions together cover every known pathway: an
      assessment matching all of them gets none.

    Valid rules, so warnings rather than errors (``pamlib rules check --strict`` fails on
    them). Python rules cannot be read without running them and are not checked.
    """
    return [warning for warning, _ in _sourced_warnings(rules, pathways)]


def _sourced_warnings(
    rules: Iterable[Rule], pathways: Mapping[str, Pathway]
) -> list[tuple[Problem, frozenset[str]]]:
    """:func:`suppression_warnings`, each with the sources (rule files) of the rules it
    concerns: what ``pamlib rules check`` reports under each file, without reading file names
    back out of the message (a file may be called ``my, pause.toml``)."""
    from pamlib.tailoring._conditions import conditions_as_text

    file_rules = sorted(
        (r for r in rules if isinstance(r, FileRule)), key=lambda r: (-r.priority, r.id)
    )
    out: list[tuple[Problem, frozenset[str]]] = []

    def label(rule: FileRule) -> str:
        return f"{rule.source}: rule {rule.id!r}" if rule.source else f"rule {rule.id!r}"

    def always(rule: FileRule) -> bool:
        return not conditions_as_text(rule.when) and rule.unless is None

    blanket = set()
    for rule in file_rules:
        for i, action in enumerate(rule.then):
            if isinstance(action, Suppress) and action.pathway == ANY_PATHWAY:
                blanket.add(rule.id)
                when = (
                    "for every assessment (no when or unless)"
                    if always(rule)
                    else f"when {'; '.join(conditions_as_text(rule.when))}"
                    + (
                        f" unless {'; '.join(conditions_as_text(rule.unless))}"
                        if rule.unless is not None
                        else ""
                    )
                )
                message = (
                    f"suppresses every pathway {when}, at priority {rule.priority}: those "
                    "assessments get no pathway unless a rule of higher priority recommends one"
                )
                warning = Problem(f"{label(rule)}: then[{i}]", "suppress-all", message)
                out.append((warning, frozenset({rule.source} - {""})))
                break
    known = set(pathways)
    if not known:
        return out
    for scope, candidates in (
        ("for every assessment", [r for r in file_rules if always(r)]),
        ("for an assessment that matches all their conditions", file_rules),
    ):
        chosen = [r for r in candidates if r.id not in blanket]
        covered: set[str] = set()
        involved: list[str] = []
        for rule in chosen:
            named = {a.pathway for a in rule.then if isinstance(a, Suppress)} & known
            if named - covered:
                covered |= named
                involved.append(rule.id)
        if covered == known and involved:
            message = (
                f"together suppress every known pathway {scope}: "
                f"{', '.join(involved)} (an assessment then gets no pathway)"
            )
            sources = sorted({r.source for r in chosen if r.id in involved and r.source})
            where = f"{', '.join(sources)}: " if sources else ""
            warning = Problem(f"{where}rules {', '.join(involved)}", "suppress-all", message)
            out.append((warning, frozenset(sources)))
            break
    return out


# -- building from plugins and files -----------------------------------------------------------


def build_engine(
    files: Iterable[str | os.PathLike[str]] = (),
    *,
    host: PluginHost | None = None,
    policy: ReassessmentPolicy | None = None,
) -> Engine:
    """An engine with every rule and pathway the plugins register (pamlib's defaults among
    them) plus the rule ``files`` given — a site's files, in any order.

    Every problem in every file is reported at once as one :class:`RuleError`. A plugin whose
    rules hook failed stops the build: tailoring without a site's rules would silently change
    recommendations.
    """
    from pamlib.plugins import get_host

    host = host or get_host()
    problems: list[Problem] = []
    catalogue = dict(host.pathways())
    registered = host.rules()
    failed = [
        e for e in host.errors if e.hook in ("pamlib_register_rules", "pamlib_register_pathways")
    ]
    if failed:
        raise ConfigurationError(
            "tailoring cannot run without every plugin's rules and pathways: "
            + "; ".join(str(e) for e in failed)
        )
    rules: list[Rule] = []
    parsed: list[RuleFile] = []
    sources: dict[str, str] = {}
    for plugin, registration in registered:
        source: object = registration  # plugins may register anything: check it
        if isinstance(source, str | os.PathLike):
            rule_file, found = check_rules_file(source)
            parsed.append(rule_file)
            problems.extend(attrs.evolve(p, where=f"plugin {plugin}: {p.where}") for p in found)
        elif isinstance(source, Rule):
            rules.append(source)
            sources.setdefault(source.id, f"plugin {plugin}")
        else:
            message = f"registered {type(source).__name__}, neither a rule file path nor a rule"
            problems.append(Problem(f"plugin {plugin}", "rule", message))
    for path in files:
        rule_file, found = check_rules_file(path)
        parsed.append(rule_file)
        problems.extend(found)
    pathways = _merge_pathways(catalogue, parsed, problems)
    for rule_file in parsed:
        rules.extend(rule_file.rules)
        problems.extend(  # pathways named by rules refused for something else
            Problem(where, "unknown-pathway", _unknown(pathway, pathways))
            for where, pathway in rule_file.unchecked_refs
            if pathway not in pathways
        )
    try:
        engine = Engine(rules, pathways, policy=policy, sources=sources)
    except RuleError as exc:
        problems.extend(exc.problems)
    if problems:
        raise RuleError("invalid tailoring rules", problems)
    return engine


def _merge_pathways(
    catalogue: Mapping[str, Pathway], files: Sequence[RuleFile], problems: list[Problem]
) -> dict[str, Pathway]:
    """The catalogue with each file's ``[[pathway]]`` tables applied. Two files configuring the
    same pathway differently is an error, so the result never depends on file order."""
    tables: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for rule_file in files:
        for table in rule_file.pathways:
            tables.setdefault(str(table["id"]), []).append((rule_file.source, table))
    out = dict(catalogue)
    for pid, given in sorted(tables.items()):
        first_source, first = given[0]
        clash = [source for source, table in given[1:] if table != first]
        if clash:
            where = ", ".join(sorted({first_source, *clash}))
            message = f"configured differently in {where}"
            problems.append(Problem(f"pathway {pid!r}", "conflict", message))
            continue
        if pid not in out and "name" not in first:
            message = "a new pathway needs a name"
            problems.append(Problem(f"{first_source}: pathway {pid!r}: name", "missing", message))
            continue
        out[pid] = pathway_from_table(first, out.get(pid))
    return out
