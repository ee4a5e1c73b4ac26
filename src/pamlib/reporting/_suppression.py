"""Small-number suppression of a :class:`~pamlib.reporting.CohortSummary`.

1. **Primary**: every count ``c`` with ``rule.low <= c <= rule.high`` (default 1–7) is hidden.
   Zero is never hidden.
2. **Secondary**: the summary lists its additive identities (``n_baseline`` = sum of the
   baseline level counts; each transition row and column total; ``n_patients`` =
   ``n_baseline`` + patients never scored; every overall count = the sum over groups; …). An
   identity *gives a hidden term away* when it has exactly one hidden term (recomputed from the
   others), or when its hidden terms are all on one side and add up to their number: zero is
   never hidden, so every hidden count is at least 1, and ``22 = 20 + * + *`` makes both 1.
   Such an identity has one more term hidden: among its positive terms not yet hidden, the one
   *the fewest other figures rest on* (identities it is a term of, plus percentages, means and
   SDs computed from it), then the smallest, then the first in the summary's order. So an inner
   cell goes before a total that feeds a whole distribution's percentages. This repeats until no
   identity gives a hidden term away. Hidden terms are always positive, so a term to hide
   always exists (the other side of an identity whose hidden terms are on one side is shown and
   at least their sum).
3. **Combined**: the identities can also be combined (the patients are the denominator plus
   each exclusion; a level count equals an exclusion count; a group's count is the cohort's
   less the other groups'; …). All of them are read as linear equations in the hidden counts,
   the published ones known; a hidden count that they fix (its unit vector lies in their row
   space: every solution gives it the same value) has one more term hidden: of an identity of
   its own scope (the cohort, or its group) that it is in, else of an identity across scopes
   that it is in, else of any of its scope's, else of the scopes joined to its own by the
   totals over groups (a group whose counts are all hidden or zero), else of any identity,
   chosen as in step 2; then step 2 again, until
   nothing changes. The system is solved by blocks, each scope's own identities first, then
   the totals over groups on what they leave free (see :class:`_System`).
4. **Bounded**: a reader also knows that every hidden count is at least 1 (zero is never
   hidden), and the identities combined with that bound can pin a count the equations alone
   leave free (a transition cell of 7 that is ``6 + *`` by the margins and at most
   ``9 - 1 - 1``). The hidden counts move together only along directions that keep every
   identity and lower no hidden count of 1; a hidden count no such direction moves has one
   more term hidden, as in step 3 (see :meth:`_System.pinned`); then steps 2 and 3 again.
5. **Derived**: a percentage, mean or SD is hidden when any count it is computed from is hidden
   (both the numerator and the denominator of a percentage: either one with the percentage gives
   the other).

What this guarantees: no published count lies in ``low..high``, no derived value rests on a
hidden count, and no hidden count follows from the published counts through the summary's
identities, alone or combined, within a scope or across scopes, even knowing that every hidden
count is at least 1 (a property test checks it in exact fractions). Other inequalities (a level
count is at least the histogram bins inside its cut points), or the counts being whole numbers
(a count held between 7 and 7.5 is 7), can still narrow a hidden value, or in rare cases fix it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import attrs
import numpy as np
import numpy.typing as npt

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

    def gives_away(lhs: tuple[str, ...], rhs: tuple[str, ...]) -> bool:
        """Whether the identity gives a hidden term away (step 2): one hidden term, or hidden
        terms all on one side adding up to their number (each at least 1, so each is 1)."""
        left = [t for t in lhs if t in hidden]
        right = [t for t in rhs if t in hidden]
        if len(left) + len(right) == 1:
            return True
        if left and right:
            return False
        one_side = left or right
        return bool(one_side) and sum(count[t] for t in one_side) == len(one_side)

    def single() -> bool:
        """Step 2 to its fixed point; whether it hid anything."""
        changed, any_added = True, False
        while changed:
            changed = False
            for lhs, rhs in summary.identities:
                if not gives_away(lhs, rhs):
                    continue
                terms = (*lhs, *rhs)
                shown = [t for t in terms if t not in hidden and count[t] > 0]
                hidden.add(preferred(shown))
                changed = any_added = True
        return any_added

    system = _System(summary.identities, position)

    def unfix(key: str) -> bool:
        """Hide one more term near a fixed count: from the count's own scope's identities
        where one is shown, else from an identity across scopes it is in, else from any of
        its scope's, … (:meth:`_System.candidates`); whether one was found."""
        for candidates in system.candidates(key):
            shown = [t for t in candidates if t not in hidden and count[t] > 0]
            if shown:
                hidden.add(preferred(shown))
                return True
        return False

    def combined() -> bool:
        """Step 3: one more term for each hidden count that the identities fix together;
        whether it hid anything."""
        added = False
        for key in system.fixed(hidden):  # every one, not up to the first
            added |= unfix(key)
        return added

    def bounded() -> bool:
        """Step 4: one more term for each hidden count that the identities fix once every
        hidden count is known to be at least 1; whether it hid anything."""
        ones = {k for k in hidden if count[k] == 1}
        added = False
        for key in system.pinned(hidden, ones):  # every one, not up to the first
            added |= unfix(key)
        return added

    single()
    while combined() or bounded():
        single()
    return hidden


_GROUP = re.compile(r"groups\.[0-9]+\.")


def _scope(key: str) -> str:
    """The scope a count belongs to: ``groups.N.`` or the whole cohort (``""``)."""
    found = _GROUP.match(key)
    return found.group(0) if found else ""


def _null_space(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """An orthonormal basis of the null space of ``matrix``, as columns."""
    n = matrix.shape[1]
    if matrix.shape[0] == 0:
        return np.eye(n)
    _, singular, vt = np.linalg.svd(matrix, full_matrices=True)
    rank = int((singular > _tolerance(matrix, singular)).sum())
    return np.ascontiguousarray(vt[rank:].T)


def _tolerance(matrix: npt.NDArray[np.float64], singular: npt.NDArray[np.float64]) -> float:
    largest = float(singular[0]) if singular.size else 0.0
    return float(max(matrix.shape) * np.finfo(np.float64).eps * max(largest, 1.0))


def _coefficients(
    identities: Sequence[Identity],
    column: dict[str, int],
    n: int,
    *,
    only: set[str] | None = None,
) -> npt.NDArray[np.float64]:
    """Each identity as ``lhs - rhs = 0``: its coefficients on ``n`` counts, each at its
    ``column`` (of the terms in ``only``, where given); a row for every identity, so that rows
    line up across scopes."""
    rows = np.zeros((len(identities), n))
    for r, (lhs, rhs) in enumerate(identities):
        for terms, sign in ((lhs, 1.0), (rhs, -1.0)):
            for term in terms:
                if only is None or term in only:
                    rows[r, column[term]] += sign
    return rows


class _System:
    """The summary's identities as linear equations in its counts, split by scope once, for
    finding the hidden counts they fix (:meth:`fixed`) round after round.

    Solved by blocks, as the summary is built: each scope's own identities give the directions
    its hidden counts may move in together (an orthonormal null-space basis ``N`` per scope);
    the identities across scopes (the totals over groups) then restrict those directions
    jointly, through the matrix ``M`` of their coefficients on every scope's basis. A hidden
    count is fixed when its row of ``N``, placed in ``M``'s coordinates, lies in ``M``'s row
    space. Every scope at once as one dense system took minutes for a hundred groups; this
    takes a small decomposition per scope and one of ``M``, whose rows are the cross-scope
    identities."""

    def __init__(self, identities: Sequence[Identity], position: dict[str, int]) -> None:
        self.position = position
        scope_of = {t: _scope(t) for lhs, rhs in identities for t in (*lhs, *rhs)}
        self.scope_of = scope_of
        self.scoped: dict[str, list[Identity]] = {}
        self.across: list[Identity] = []
        own: dict[str, list[Identity]] = {}
        for lhs, rhs in identities:
            terms = (*lhs, *rhs)
            scopes = {scope_of[t] for t in terms}
            if len(scopes) == 1:
                self.scoped.setdefault(scopes.pop(), []).append((lhs, rhs))
            else:
                self.across.append((lhs, rhs))
            for t in dict.fromkeys(terms):
                own.setdefault(t, []).append((lhs, rhs))
        self._own = own
        self._scope_terms = {
            g: list(dict.fromkeys(t for lhs, rhs in ids for t in (*lhs, *rhs)))
            for g, ids in self.scoped.items()
        }
        # Each scope's coefficients on each of its counts, once: a round takes the columns of
        # the counts hidden by then.
        self._column: dict[str, int] = {}
        by_scope: dict[str, list[str]] = {}
        for t, g in scope_of.items():
            by_scope.setdefault(g, []).append(t)
        for keys in by_scope.values():
            self._column.update({t: i for i, t in enumerate(keys)})
        self._inner = {
            g: _coefficients(self.scoped.get(g, []), self._column, len(keys))
            for g, keys in by_scope.items()
        }
        self._bases: dict[tuple[str, tuple[int, ...]], npt.NDArray[np.float64]] = {}
        self._outer = {
            g: _coefficients(self.across, self._column, len(keys), only=set(keys))
            for g, keys in by_scope.items()
        }

    def _basis(self, scope: str, picks: list[int]) -> npt.NDArray[np.float64]:
        """The null-space basis of a scope's identities on the counts picked, kept until the
        scope's hidden counts change (a round hides a few more, in a few scopes)."""
        key = (scope, tuple(picks))
        basis = self._bases.get(key)
        if basis is None:
            basis = self._bases[key] = _null_space(self._inner[scope][:, picks])
        return basis

    def candidates(self, key: str) -> Iterator[list[str]]:
        """Where one more term to hide is looked for, in order (each list made only when the
        ones before hold no shown count): the identities of ``key``'s own scope that it is in,
        the identities across scopes that it is in, any of its scope's identities, the
        identities of the scopes joined to its own by an identity across scopes, and last every
        count in an identity. A scope whose counts are all hidden or zero can still have one
        fixed through the totals over groups: then the term to hide is in another scope."""
        scope = self.scope_of[key]
        own = self._own.get(key, [])
        inside = [ids for ids in own if all(self.scope_of[t] == scope for t in (*ids[0], *ids[1]))]
        for ids in (inside, own):
            yield list(dict.fromkeys(t for lhs, rhs in ids for t in (*lhs, *rhs)))
        yield self._scope_terms.get(scope, [])
        joined = {
            self.scope_of[t]
            for lhs, rhs in self.across
            if any(self.scope_of[t] == scope for t in (*lhs, *rhs))
            for t in (*lhs, *rhs)
        }
        near = [
            t
            for lhs, rhs in self.across
            if any(self.scope_of[t] in joined for t in (*lhs, *rhs))
            for t in (*lhs, *rhs)
        ]
        near += [t for g in sorted(joined) for t in self._scope_terms.get(g, [])]
        yield list(dict.fromkeys(near))
        yield sorted(self.scope_of, key=self.position.__getitem__)

    def _blocks(
        self, hidden: set[str]
    ) -> tuple[dict[str, list[str]], dict[str, npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
        """The hidden counts by scope, each scope's null-space basis on them, and ``M``: the
        identities across scopes on those bases (the rows that say something), with a column
        for each basis vector, scope after scope."""
        names: dict[str, list[str]] = {}
        for term in sorted(hidden & self.scope_of.keys(), key=self.position.__getitem__):
            names.setdefault(self.scope_of[term], []).append(term)
        picks = {g: [self._column[k] for k in keys] for g, keys in names.items()}
        bases = {g: self._basis(g, picks[g]) for g in names}
        cross = np.zeros((0, sum(b.shape[1] for b in bases.values())))
        if self.across and names:
            cross = np.hstack([self._outer[g][:, picks[g]] @ bases[g] for g in names])
            cross = cross[np.abs(cross).max(axis=1, initial=0.0) > 1e-12]  # rows that say something
        return names, bases, cross

    def fixed(self, hidden: set[str]) -> list[str]:
        """The hidden counts whose value the identities together fix, the published counts
        known (every solution gives them the same value)."""
        names, bases, cross = self._blocks(hidden)
        fixed = []
        if cross.any():
            _, singular, vt = np.linalg.svd(cross, full_matrices=False)
            rank = int((singular > _tolerance(cross, singular)).sum())
            rows = vt[:rank]  # an orthonormal basis of M's row space
        else:
            rows = np.zeros((0, cross.shape[1]))
        start = 0
        for g, basis in bases.items():
            end = start + basis.shape[1]
            inside = basis @ rows[:, start:end].T  # each count's row projected on M's rows
            left = (basis * basis).sum(axis=1) - (inside * inside).sum(axis=1)
            fixed += [names[g][i] for i in np.flatnonzero(left < 1e-10).tolist()]
            start = end
        return sorted(fixed, key=self.position.__getitem__)

    def pinned(self, hidden: set[str], ones: set[str]) -> list[str]:
        """The hidden counts fixed once every hidden count is known to be at least 1 (zero is
        never hidden), the published counts known: ``ones`` are the hidden counts of 1.

        The hidden counts may move together along any direction that keeps every identity
        (each scope's basis ``N``, restricted by ``M``: the null space of ``M`` in ``N``'s
        coordinates), but a count of 1 only upwards. A count of 1 that no such direction
        raises is fixed, and with those known, so are the counts :meth:`fixed` then finds. A
        count above 1 may move either way, so only counts of 1 can be held (the solutions
        are a convex set). The directions' changes to the counts of 1 are summed up by their
        Gram matrix ``A Aᵀ`` (``A``: a row per count of 1), made from ``N`` and ``M``'s row
        space without the null space of ``M`` itself, which is large."""
        names, bases, cross = self._blocks(hidden)
        tight = [(g, i) for g, keys in names.items() for i, k in enumerate(keys) if k in ones]
        if not tight:
            return []
        offset, start = {}, 0
        for g, basis in bases.items():
            offset[g], start = start, start + basis.shape[1]
        rows = np.zeros((0, start))
        if cross.any():
            _, singular, vt = np.linalg.svd(cross, full_matrices=False)
            rows = vt[: int((singular > _tolerance(cross, singular)).sum())]
        # A = T (I - rowsᵀ rows), T the counts' rows of their bases: A Aᵀ = T Tᵀ - (T rowsᵀ)(…)ᵀ
        gram = np.zeros((len(tight), len(tight)))
        by_scope: dict[str, list[int]] = {}
        for j, (g, _) in enumerate(tight):
            by_scope.setdefault(g, []).append(j)
        for g, js in by_scope.items():
            own = bases[g][[tight[j][1] for j in js]]
            gram[np.ix_(js, js)] = own @ own.T
        if rows.shape[0]:
            across = np.vstack(
                [
                    bases[g][i] @ rows[:, offset[g] : offset[g] + bases[g].shape[1]].T
                    for g, i in tight
                ]
            )
            gram -= across @ across.T
        held = {names[g][i] for (g, i), stuck in zip(tight, _held(gram), strict=True) if stuck}
        if not held:
            return []
        return sorted(held | set(self.fixed(hidden - held)), key=self.position.__getitem__)


def _span(gram: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """An orthonormal basis (columns) of the column space of a Gram matrix ``A Aᵀ``, which is
    ``A``'s."""
    if not gram.size:
        return np.zeros((gram.shape[0], 0))
    values, vectors = np.linalg.eigh(gram)
    largest = float(np.abs(values).max())
    return vectors[:, values > gram.shape[0] * np.finfo(np.float64).eps * max(largest, 1.0)]


def _held(gram: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Which of some counts no direction raises while none of them falls: ``gram`` is
    ``A Aᵀ``, ``A`` holding a row for each count, its change along each direction.

    By Tucker's theorem the counts split in two: those some direction ``v`` in the span ``V``
    of the directions raises with none falling (``v >= 0``), and those some ``w >= 0``
    orthogonal to ``V`` holds (``w @ v = 0`` for every direction, so ``v`` cannot raise them
    without lowering another). A count that some direction raises alone (its unit vector is
    in ``V``) is free, and the free ones may then take any change, so only the rest are
    looked at. Of them, with ``u`` the projection of the all-ones vector on their ``V``,
    ``1 - u`` is orthogonal to ``V``: where ``u <= 1`` it holds the counts with ``u < 1``;
    where the projection of the others' all-ones vector on the directions that leave those
    unchanged is positive, it raises all the others. Otherwise a linear programme decides
    (:func:`_raised`)."""
    tol = 1e-9
    span = _span(gram)
    held = np.zeros(gram.shape[0], dtype=np.bool_)
    left = np.flatnonzero((span * span).sum(axis=1) <= 1 - tol)
    if not left.size:
        return held
    span = _span(gram[np.ix_(left, left)])
    u = span @ span.sum(axis=0)
    if u.max(initial=0.0) <= 1 + tol:
        stuck = u < 1 - tol
        keep = span[stuck]
        unchanged = span @ _null_space(keep) if keep.size else span
        raised = unchanged @ unchanged[~stuck].sum(axis=0)
        if (raised[~stuck] > tol).all():
            held[left[stuck]] = True
            return held
    held[left[~_raised(span)]] = True
    return held


def _raised(span: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """The counts that some vector of the column space of ``span`` raises while lowering none
    (the largest such set: any two such vectors add up to one), by the simplex method:
    maximise ``sum(y)`` with ``span @ z >= y``, ``0 <= y <= 1``, ``z`` free.

    Most right-hand sides are 0, so the problem is degenerate: they are perturbed by less
    than a millionth (distinct, so no two pivots tie), which cannot make a held count look
    raised (that would need ``y`` above one half) and keeps the largest-coefficient rule from
    stalling. Should it ever fail to finish, every count is taken as held, so the caller
    hides more rather than less."""
    m, k = span.shape
    if k == 0:
        return np.zeros(m, dtype=np.bool_)
    n = 2 * k + m  # z+, z-, y
    tableau = np.zeros((2 * m + 1, n + 2 * m + 1))
    tableau[:m, :k] = -span
    tableau[:m, k : 2 * k] = span
    tableau[:m, 2 * k : n] = np.eye(m)
    tableau[m : 2 * m, 2 * k : n] = np.eye(m)
    tableau[: 2 * m, n : n + 2 * m] = np.eye(2 * m)
    tableau[:m, -1] = 1e-7 * np.arange(1, m + 1) / m
    tableau[m : 2 * m, -1] = 1.0
    tableau[-1, 2 * k : n] = -1.0
    basic = list(range(n, n + 2 * m))
    for _ in range(50 * sum(tableau.shape)):
        j = int(np.argmin(tableau[-1, :-1]))
        if tableau[-1, j] > -1e-9:
            break
        column = tableau[:-1, j]
        rows = np.flatnonzero(column > 1e-9)
        if not rows.size:  # unbounded, which y <= 1 rules out: rounding; be safe
            return np.zeros(m, dtype=np.bool_)
        i = int(rows[np.argmin(tableau[:-1, -1][rows] / column[rows])])
        tableau[i] /= tableau[i, j]
        others = np.arange(tableau.shape[0]) != i
        tableau[others] -= np.outer(tableau[others, j], tableau[i])
        basic[i] = j
    else:
        return np.zeros(m, dtype=np.bool_)
    y = np.zeros(n)
    for row, var in enumerate(basic):
        if var < n:
            y[var] = tableau[row, -1]
    return np.asarray(y[2 * k :] > 0.5)


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
