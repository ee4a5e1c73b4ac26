"""Small-number suppression of a :class:`~pamlib.reporting.CohortSummary`.

1. **Primary**: every count ``c`` with ``rule.low <= c <= rule.high`` (default 1–7) is hidden.
   Zero is never hidden.
2. **Secondary**: the summary lists its additive identities (``n_baseline`` = sum of the
   baseline level counts; each transition row and column total; ``n_patients`` =
   ``n_baseline`` + patients never scored; every overall count = the sum over groups; …). While
   some identity has *exactly one* hidden term, that term could be recomputed from the others, so
   one more term of that identity is hidden: among its positive terms not yet hidden, the one
   *the fewest other figures rest on* (identities it is a term of, plus percentages, means and
   SDs computed from it), then the smallest, then the first in the summary's order. So an inner
   cell goes before a total that feeds a whole distribution's percentages. This repeats until no
   identity has exactly one hidden term. Hidden terms are always positive, so a term to hide
   always exists.
3. **Combined**: a scope's identities can also be combined (the patients are the denominator
   plus each exclusion; a level count equals an exclusion count; …). Each scope's identities
   (the whole cohort's, each group's) are read as linear equations in its hidden counts, the
   published ones known; a hidden count that they fix (its unit vector lies in their row space:
   every solution gives it the same value) has one more term of an identity it is in hidden,
   chosen as in step 2; then step 2 again, until nothing changes. One scope at a time: the
   system of every scope at once, tied together by the totals over groups, took minutes for a
   hundred groups.
4. **Derived**: a percentage, mean or SD is hidden when any count it is computed from is hidden
   (both the numerator and the denominator of a percentage: either one with the percentage gives
   the other).

What this guarantees: no published count lies in ``low..high``, no derived value rests on a
hidden count, and no hidden count follows from the published counts through one scope's
identities, alone or combined, nor through any single identity across scopes. Combinations
across scopes, and inequalities (counts are not negative; a level count is at least the
histogram bins inside its cut points), can still narrow a hidden value, or in rare cases fix
it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs
import numpy as np

from pamlib.errors import ConfigurationError
from pamlib.reporting._config import SuppressionRule
from pamlib.reporting._summary import CohortSummary, Identity, Suppressed, Value


def _count(value: Value) -> int:
    if not isinstance(value, int):
        raise ConfigurationError("suppression needs the unsuppressed counts")
    return value


def hidden_counts(summary: CohortSummary, rule: SuppressionRule) -> set[str]:
    """The keys of the counts to hide: primary suppression, then secondary to a fixed point."""
    count = {k: _count(summary.values[k]) for k in summary.counts}
    hidden = {k for k, c in count.items() if rule.hides(c)}
    position = {k: i for i, k in enumerate(summary.values)}
    resting = dict.fromkeys(count, 0)  # how many figures rest on each count
    for lhs, rhs in summary.identities:
        for term in (*lhs, *rhs):
            resting[term] += 1
    for sources in summary.derived.values():
        for source in sources:
            resting[source] += 1

    def preferred(terms: list[str]) -> str:
        return min(terms, key=lambda t: (resting[t], count[t], position[t]))

    scopes: dict[str, list[Identity]] = {}  # each scope's own identities (step 3)
    for lhs, rhs in summary.identities:
        found = {_scope(t) for t in (*lhs, *rhs)}
        if len(found) == 1:
            scopes.setdefault(found.pop(), []).append((lhs, rhs))

    def single() -> bool:
        """Step 2 to its fixed point; whether it hid anything."""
        changed, any_added = True, False
        while changed:
            changed = False
            for lhs, rhs in summary.identities:
                terms = (*lhs, *rhs)
                if sum(t in hidden for t in terms) != 1:
                    continue
                shown = [t for t in terms if t not in hidden and count[t] > 0]
                hidden.add(preferred(shown))
                changed = any_added = True
        return any_added

    def combined() -> bool:
        """Step 3, one scope at a time: one more term for each hidden count a scope's
        identities fix together; whether it hid anything."""
        added = False
        for identities in scopes.values():
            for key in _fixed(identities, hidden, position):
                own = [(*lhs, *rhs) for lhs, rhs in identities if key in (*lhs, *rhs)]
                shown = [t for terms in own for t in terms if t not in hidden and count[t] > 0]
                if not shown:  # its own identities are all hidden: another of the scope's
                    shown = [
                        t
                        for lhs, rhs in identities
                        for t in (*lhs, *rhs)
                        if t not in hidden and count[t] > 0
                    ]
                if shown:
                    hidden.add(preferred(list(dict.fromkeys(shown))))
                    added = True
        return added

    single()
    while combined():
        single()
    return hidden


_GROUP = re.compile(r"groups\.[0-9]+\.")


def _scope(key: str) -> str:
    """The scope a count belongs to: ``groups.N.`` or the whole cohort (``""``)."""
    found = _GROUP.match(key)
    return found.group(0) if found else ""


def _fixed(
    identities: Sequence[Identity],
    hidden: set[str],
    position: dict[str, int],
) -> list[str]:
    """The hidden counts whose value the identities fix, the published counts known: those
    whose unit vector lies in the row space of the identities' coefficients on the hidden
    counts (every null-space vector is zero there)."""
    terms = {t for lhs, rhs in identities for t in (*lhs, *rhs)}
    names = sorted(hidden & terms, key=position.__getitem__)
    column = {k: i for i, k in enumerate(names)}
    rows = []
    for lhs, rhs in identities:
        row = np.zeros(len(names))
        for term in lhs:
            if term in column:
                row[column[term]] += 1.0
        for term in rhs:
            if term in column:
                row[column[term]] -= 1.0
        if row.any():
            rows.append(row)
    if not rows:
        return []
    matrix = np.array(rows)
    _, singular, vt = np.linalg.svd(matrix, full_matrices=True)
    tolerance = max(matrix.shape) * np.finfo(np.float64).eps * max(float(singular[0]), 1.0)
    rank = int((singular > tolerance).sum())
    null = vt[rank:]  # the directions the hidden counts may move in together
    free = np.abs(null).max(axis=0) > 1e-9 if len(null) else np.zeros(len(names), np.bool_)
    return [names[i] for i in np.flatnonzero(~free).tolist()]


def suppress(summary: CohortSummary, rule: SuppressionRule | None = None) -> CohortSummary:
    """A copy of ``summary`` with hidden counts, and the values derived from them, replaced."""
    if summary.suppressed:
        raise ConfigurationError("the summary is already suppressed")
    rule = rule or SuppressionRule()
    hidden = hidden_counts(summary, rule)
    mark = Suppressed(rule.symbol)
    values: dict[str, Value] = {}
    for key, value in summary.values.items():
        hides = key in hidden or any(d in hidden for d in summary.derived.get(key, ()))
        values[key] = mark if hides else value
    return attrs.evolve(summary, values=values, suppressed=True)
