"""Tailoring rules: the actions a rule can take, Python rules, and rule files.

A rule is anything with an ``id``, a ``priority``, a ``reason`` and an ``evaluate(context)``
method that returns the rule's actions, or ``None`` when it does not apply (see :class:`Rule`).
Rules come from two places and are evaluated together, by one engine:

* **rule files** (TOML, see the *Tailoring* chapter of the docs), read by :func:`load_rules` into
  :class:`FileRule` objects. Nothing in a file is ever executed: a file holds conditions to
  compare and actions to take, and unknown keys are errors, not extensions;
* **Python rules** for logic beyond data, written with the :func:`rule` decorator or as any
  object satisfying :class:`Rule`, registered through the ``pamlib_register_rules`` hook.

A bad file is rejected as a whole with every problem at once; each :class:`~pamlib.errors.Problem`
names the file, the rule id (or its position when the id itself is missing) and the field.

The TOML is read by hand rather than through a converter: a rule file is a configuration
language written by people, with conveniences (a value or a list of values) that a generic
structuring would turn into vaguer errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeAlias, runtime_checkable

import attrs

from pamlib._documents import DocumentError, decode_utf8, parse_toml
from pamlib.errors import ConfigurationError, Problem, RuleError
from pamlib.pathways import Coding, Pathway
from pamlib.tailoring.conditions import Conditions, parse_conditions
from pamlib.tailoring.context import Context

__all__ = [
    "ANY_PATHWAY",
    "MAX_REASSESS_MONTHS",
    "Action",
    "FileRule",
    "FunctionRule",
    "Note",
    "Reassess",
    "Recommend",
    "Rule",
    "RuleFile",
    "RuleSource",
    "SetContactFrequency",
    "SetIntensity",
    "Suppress",
    "check_rule",
    "check_rules_file",
    "check_rules_text",
    "load_rules",
    "parse_rules",
    "rule",
]

#: ``suppress = "*"`` suppresses every pathway.
ANY_PATHWAY = "*"
#: The longest reassessment interval a rule may set.
MAX_REASSESS_MONTHS = 36
#: Rule and pathway ids: they end up in ``;``-separated CSV columns, so no spaces or separators.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
#: The rule file format this version reads.
FORMAT_VERSION = 1


# -- actions ---------------------------------------------------------------------------------


@attrs.frozen
class Recommend:
    """Recommend ``pathway``, optionally with settings and a note for it."""

    pathway: str
    intensity: str | None = None
    contact_frequency: str | None = None
    note: str | None = None
    #: Why, when it differs from the rule's own reason.
    reason: str | None = None


@attrs.frozen
class Suppress:
    """Do not recommend ``pathway`` (or any pathway, with :data:`ANY_PATHWAY`)."""

    pathway: str
    reason: str | None = None


@attrs.frozen
class SetIntensity:
    """Set how intensive ``pathway`` is when it is recommended (free text, e.g. ``high``)."""

    pathway: str
    value: str
    reason: str | None = None


@attrs.frozen
class SetContactFrequency:
    """Set how often ``pathway`` makes contact when recommended (e.g. ``fortnightly``)."""

    pathway: str
    value: str
    reason: str | None = None


@attrs.frozen
class Note:
    """Add a note to the outcome, or to ``pathway``'s recommendation when given."""

    text: str
    pathway: str | None = None
    reason: str | None = None


@attrs.frozen
class Reassess:
    """Reassess ``months`` calendar months after this assessment."""

    months: int
    reason: str | None = None


#: What a rule may do.
Action: TypeAlias = Recommend | Suppress | SetIntensity | SetContactFrequency | Note | Reassess
_ACTION_TYPES = (Recommend, Suppress, SetIntensity, SetContactFrequency, Note, Reassess)


# -- the rule protocol -----------------------------------------------------------------------


@runtime_checkable
class Rule(Protocol):
    """What the engine evaluates: file rules and Python rules alike.

    ``priority`` decides conflicts (higher wins; see the engine). ``reason`` says why the rule
    exists, in words a clinician reads in explanations. ``evaluate`` returns the actions to
    take for ``context``, or ``None`` when the rule does not apply; it must be a pure function
    of the context, so evaluation stays deterministic.
    """

    @property
    def id(self) -> str: ...

    @property
    def priority(self) -> int: ...

    @property
    def reason(self) -> str: ...

    def evaluate(self, context: Context) -> Sequence[Action] | None: ...


#: What the ``pamlib_register_rules`` hook accepts: a rule file's path, or a Python rule.
RuleSource: TypeAlias = "str | os.PathLike[str] | Rule"


@attrs.frozen
class FunctionRule:
    """A Python function as a :class:`Rule`; made by the :func:`rule` decorator."""

    id: str
    priority: int
    reason: str
    function: Callable[[Context], Sequence[Action] | None] = attrs.field(repr=False)

    def evaluate(self, context: Context) -> Sequence[Action] | None:
        return self.function(context)

    def __call__(self, context: Context) -> Sequence[Action] | None:
        return self.function(context)

    def __reduce__(self) -> tuple[Callable[..., FunctionRule], tuple[Any, ...]]:
        """Pickle by module-qualified reference: to the rule itself when :func:`rule` decorated
        a function at module level, else to its function. A function another process cannot
        import (a lambda, a nested function) is a :class:`~pamlib.errors.ConfigurationError`
        naming the rule."""
        module = getattr(self.function, "__module__", None)
        qualname = getattr(self.function, "__qualname__", None)
        found: object = None
        if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname:
            try:
                found = _import_attribute(module, qualname)
            except Exception:
                found = None
        if found is self:
            return (_imported_rule, (module, qualname, self.id))
        if found is self.function:
            return (FunctionRule, (self.id, self.priority, self.reason, self.function))
        raise ConfigurationError(
            f"rule {self.id!r} cannot be pickled: its function "
            f"{qualname or type(self.function).__name__} cannot be imported by another process "
            "(define it at module level, decorated with @rule or not)"
        )


def _import_attribute(module: str, qualname: str) -> object:
    # Finding code by name is the plugin machinery's job, not the rules': a rule file never can.
    from pamlib.plugins import _resolve

    return _resolve(module, qualname)


def _imported_rule(module: str, qualname: str, rule_id: str) -> FunctionRule:
    """Unpickle a :class:`FunctionRule` defined at module level: import it again."""
    found = _import_attribute(module, qualname)
    if not isinstance(found, FunctionRule) or found.id != rule_id:
        raise ConfigurationError(
            f"rule {rule_id!r} cannot be unpickled: {module}.{qualname} is no longer that rule"
        )
    return found


def rule(
    id: str,
    *,
    priority: int = 0,
    reason: str | None = None,
) -> Callable[[Callable[[Context], Sequence[Action] | None]], FunctionRule]:
    """Turn a function of a :class:`~pamlib.tailoring.context.Context` into a rule.

    ``reason`` defaults to the first line of the function's docstring.

    >>> @rule("site.big-rise", priority=20)
    ... def big_rise(ctx):
    ...     "The score rose by 10 points or more: celebrate it."
    ...     if ctx.change is not None and ctx.change >= 10:
    ...         return [Note("Tell the person how much their score has improved.")]
    ...     return None
    >>> big_rise.id, big_rise.priority, big_rise.reason
    ('site.big-rise', 20, 'The score rose by 10 points or more: celebrate it.')
    """

    def wrap(function: Callable[[Context], Sequence[Action] | None]) -> FunctionRule:
        why = reason
        if why is None and function.__doc__:
            why = function.__doc__.strip().splitlines()[0].strip()
        made = FunctionRule(id, priority, why or "", function)
        check_rule(made)
        return made

    return wrap


def check_rule(candidate: object, where: str | None = None) -> None:
    """Raise :class:`RuleError` unless ``candidate`` is a usable :class:`Rule`."""
    rule_id = getattr(candidate, "id", None)
    label = where or (f"rule {rule_id!r}" if isinstance(rule_id, str) else repr(candidate))
    problems: list[Problem] = []
    if not isinstance(rule_id, str) or not ID_PATTERN.match(rule_id):
        message = "a rule needs an id of letters, digits and . _ : - (no spaces or ;)"
        problems.append(Problem(f"{label}: id", "id", message))
    priority = getattr(candidate, "priority", None)
    if not isinstance(priority, int) or isinstance(priority, bool):
        problems.append(Problem(f"{label}: priority", "priority", "priority must be an integer"))
    reason = getattr(candidate, "reason", None)
    if not isinstance(reason, str) or not reason.strip():
        message = "a rule must say why it exists (reason, or the function's docstring)"
        problems.append(Problem(f"{label}: reason", "reason", message))
    if not callable(getattr(candidate, "evaluate", None)):
        message = "a rule needs an evaluate(context) method"
        problems.append(Problem(f"{label}: evaluate", "evaluate", message))
    if problems:
        raise RuleError("invalid rule", problems)


def check_actions(rule_id: str, actions: object) -> tuple[Action, ...]:
    """The actions a rule returned, or a :class:`RuleError` saying what is wrong with them."""
    if not isinstance(actions, list | tuple):
        raise RuleError(
            "invalid rule result",
            [
                Problem(
                    f"rule {rule_id!r}", "result", "evaluate must return a list of actions or None"
                )
            ],
        )
    problems = [
        Problem(f"rule {rule_id!r}: result[{i}]", "action", f"not an action: {type(a).__name__}")
        for i, a in enumerate(actions)
        if not isinstance(a, _ACTION_TYPES)
    ]
    for i, a in enumerate(actions):
        if isinstance(a, Reassess) and not _months_ok(a.months):
            message = f"months must be a whole number from 1 to {MAX_REASSESS_MONTHS}"
            problems.append(Problem(f"rule {rule_id!r}: result[{i}].months", "months", message))
    if problems:
        raise RuleError("invalid rule result", problems)
    return tuple(actions)


# -- rule files ------------------------------------------------------------------------------


@attrs.frozen
class FileRule:
    """A rule read from a file: when ``when`` holds and ``unless`` does not, take ``then``."""

    id: str
    reason: str
    then: tuple[Action, ...]
    priority: int = 0
    when: Conditions = attrs.field(factory=Conditions)
    unless: Conditions | None = None
    #: The file it came from, as given (for messages).
    source: str = ""
    #: (where, pathway id) for each pathway the file names, so an unknown id is reported at
    #: its field (``site.toml: rule 'x': then[0].recommend``).
    pathway_refs: tuple[tuple[str, str], ...] = attrs.field(default=(), eq=False, repr=False)

    def evaluate(self, context: Context) -> Sequence[Action] | None:
        if not self.when.matches(context):
            return None
        if self.unless is not None and self.unless.matches(context):
            return None
        return self.then


@attrs.frozen
class RuleFile:
    """One parsed rule file: its rules and the pathways it defines or configures. Pathway ids
    the rules name are checked against the catalogue when an engine is built."""

    source: str
    rules: tuple[FileRule, ...] = ()
    #: ``[[pathway]]`` tables as given: new pathways, or fields to change on known ones.
    pathways: tuple[Mapping[str, Any], ...] = ()
    #: (where, pathway id) named by rules left out for other problems: an engine checks these
    #: ids too, so a misspelt pathway is reported with the rest, not after they are fixed.
    unchecked_refs: tuple[tuple[str, str], ...] = attrs.field(default=(), eq=False, repr=False)


_RULE_KEYS = ("id", "priority", "reason", "when", "unless", "then")
_PATHWAY_KEYS = ("id", "name", "description", "concept")
_CONCEPT_KEYS = ("system", "code", "display")
_ACTION_KEYS = (
    "recommend",
    "suppress",
    "pathway",
    "intensity",
    "contact_frequency",
    "note",
    "reassess_after_months",
    "reason",
)


def load_rules(path: str | os.PathLike[str]) -> RuleFile:
    """Read and check one rule file; raise :class:`RuleError` listing every problem."""
    rule_file, problems = check_rules_file(path)
    if problems:
        raise RuleError(f"invalid rule file {rule_file.source}", problems)
    return rule_file


def check_rules_file(path: str | os.PathLike[str]) -> tuple[RuleFile, list[Problem]]:
    """:func:`check_rules_text` for a file; an unreadable file is one problem."""
    source = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return RuleFile(source), [Problem(source, "read", f"cannot read: {type(exc).__name__}")]
    try:
        text = decode_utf8(data, source)
    except DocumentError as exc:
        return RuleFile(source), [exc.problem]
    return check_rules_text(text, source)


def parse_rules(text: str, source: str = "<rules>") -> RuleFile:
    """Check the TOML text of a rule file; ``source`` names it in every problem.

    >>> parse_rules('''
    ... [[rule]]
    ... id = "site.copd"
    ... reason = "People with COPD are offered the lung group."
    ... when = { attributes = { condition = "COPD" }, levle = 2 }
    ... then = [ { recommend = "lung-group", intensity = 3 } ]
    ... ''', "site.toml")
    Traceback (most recent call last):
    ...
    pamlib.errors.RuleError: invalid rule file site.toml
      - unknown condition 'levle'; known: ... @ site.toml: rule 'site.copd': when.levle
      - must be a non-empty text @ site.toml: rule 'site.copd': then[0].intensity
    """
    rule_file, problems = check_rules_text(text, source)
    if problems:
        raise RuleError(f"invalid rule file {source}", problems)
    return rule_file


def check_rules_text(text: str, source: str) -> tuple[RuleFile, list[Problem]]:
    """What :func:`parse_rules` reads, without raising: the rules and pathways that are valid,
    and every problem. Lets a caller check the valid rules' pathways too, in the same report."""
    try:
        data = parse_toml(text, source)
    except DocumentError as exc:  # bad syntax, nesting too deep, an integer too long
        return RuleFile(source), [exc.problem]
    problems: list[Problem] = []
    for key in data:
        if key not in ("format", "rule", "pathway"):
            message = f"unknown key {key!r}; a rule file holds format, [[rule]] and [[pathway]]"
            problems.append(Problem(f"{source}: {key}", "unknown-field", message))
    version = data.get("format", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        message = f"this pamlib reads rule file format {FORMAT_VERSION}"
        problems.append(Problem(f"{source}: format", "format", message))
    rules: list[FileRule] = []
    unchecked: list[tuple[str, str]] = []
    seen: set[str] = set()
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        problems.append(Problem(f"{source}: rule", "table", "rules are written as [[rule]] tables"))
        tables = []
    for index, table in enumerate(tables):
        parsed = _parse_rule(table, index, source, problems, unchecked)
        if parsed is None:
            continue
        if parsed.id in seen:
            message = "this rule id is used twice in the file"
            problems.append(Problem(f"{source}: rule {parsed.id!r}: id", "duplicate", message))
            unchecked.extend(parsed.pathway_refs)
            continue
        seen.add(parsed.id)
        rules.append(parsed)
    pathways = _parse_pathways(data.get("pathway", []), source, problems)
    return RuleFile(source, tuple(rules), pathways, tuple(unchecked)), problems


def _nonempty_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _parse_rule(
    table: object,
    index: int,
    source: str,
    problems: list[Problem],
    unchecked: list[tuple[str, str]],
) -> FileRule | None:
    """One ``[[rule]]`` table, or ``None`` with its problems added; the pathways a refused rule
    names go to ``unchecked``, to be checked with the valid rules' pathways."""
    if not isinstance(table, dict):
        problems.append(Problem(f"{source}: rule #{index + 1}", "table", "must be a table"))
        return None
    rule_id = table.get("id")
    named = isinstance(rule_id, str) and bool(ID_PATTERN.match(rule_id))
    label = f"rule {rule_id!r}" if named else f"rule #{index + 1}"
    if isinstance(rule_id, str) and not named:
        label += f" ({rule_id!r})"

    def where(field: str) -> str:
        return f"{source}: {label}: {field}"

    before = len(problems)
    if not named:
        message = "a rule needs an id of letters, digits and . _ : - (no spaces or ;)"
        problems.append(Problem(where("id"), "id", message))
    for key in table:
        if key not in _RULE_KEYS:
            message = f"unknown key {key!r}; a rule has {', '.join(_RULE_KEYS)}"
            problems.append(Problem(where(key), "unknown-field", message))
    priority = table.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        problems.append(Problem(where("priority"), "priority", "must be a whole number"))
    reason = table.get("reason")
    if not _nonempty_text(reason):
        message = "every rule says why, in words shown in explanations"
        problems.append(Problem(where("reason"), "reason", message))
    when = parse_conditions(table.get("when", {}), "when", where, problems)
    unless = None
    if "unless" in table:
        unless = parse_conditions(table["unless"], "unless", where, problems)
    then = table.get("then")
    actions: list[Action] = []
    named_refs: list[tuple[str, str]] = []
    if not isinstance(then, list) or not then:
        message = "a rule needs at least one action: then = [ { recommend = ... } ]"
        problems.append(Problem(where("then"), "then", message))
    else:
        for i, action in enumerate(then):
            actions.extend(_parse_action(action, f"then[{i}]", where, problems, named_refs))
    if (
        len(problems) > before
        or when is None
        or not isinstance(rule_id, str)
        or not isinstance(reason, str)
        or not isinstance(priority, int)
    ):
        unchecked.extend(named_refs)
        return None
    return FileRule(
        id=rule_id,
        reason=reason.strip(),
        then=tuple(actions),
        priority=priority,
        when=when,
        unless=unless,
        source=source,
        pathway_refs=tuple(named_refs),
    )


@attrs.define
class _ActionReader:
    """Reads one ``then`` table; every fault becomes a problem naming the field."""

    table: dict[str, Any]
    field: str
    where: Callable[[str], str]
    problems: list[Problem]
    refs: list[tuple[str, str]]

    def fault(self, key: str | None, code: str, message: str) -> None:
        at = self.field if key is None else f"{self.field}.{key}"
        self.problems.append(Problem(self.where(at), code, message))

    def text(self, key: str) -> str | None:
        if key not in self.table:
            return None
        value = self.table[key]
        if not _nonempty_text(value):
            self.fault(key, "text", "must be a non-empty text")
            return None
        return str(value).strip()

    def pathway_ids(self, key: str, wildcard: bool) -> list[str]:
        value = self.table[key]
        items = value if isinstance(value, list) else [value]
        ids = [v for v in items if isinstance(v, str)]
        ok = (
            bool(items)
            and len(ids) == len(items)
            and all(ID_PATTERN.match(v) or (wildcard and v == ANY_PATHWAY) for v in ids)
        )
        if not ok:
            extra = f' ("{ANY_PATHWAY}" for every pathway)' if wildcard else ""
            self.fault(key, "pathway", f"must be a pathway id or a list of pathway ids{extra}")
            return []
        at = self.where(f"{self.field}.{key}")
        self.refs.extend((at, p) for p in ids if p != ANY_PATHWAY)
        return ids

    def read(self) -> list[Action]:
        before = len(self.problems)
        for key in self.table:
            if key not in _ACTION_KEYS:
                self.fault(
                    key,
                    "unknown-field",
                    f"unknown key {key!r}; actions use {', '.join(_ACTION_KEYS)}",
                )
        if "recommend" in self.table and "suppress" in self.table:
            self.fault(None, "action", "an action either recommends or suppresses, not both")
            return []
        if "recommend" in self.table:
            actions = self.recommend()
        elif "suppress" in self.table:
            actions = self.suppress()
        else:
            actions = self.settings()
        return [] if len(self.problems) > before else actions

    def recommend(self) -> list[Action]:
        for key in ("pathway", "reassess_after_months"):
            if key in self.table:
                self.fault(key, "action", "not allowed with recommend (put it in its own action)")
        reason = self.text("reason")
        intensity, frequency = self.text("intensity"), self.text("contact_frequency")
        note = self.text("note")
        ids = self.pathway_ids("recommend", wildcard=False)
        return [Recommend(p, intensity, frequency, note, reason) for p in ids]

    def suppress(self) -> list[Action]:
        for key in self.table:
            if key not in ("suppress", "reason") and key in _ACTION_KEYS:
                self.fault(key, "action", "a suppress action takes only reason besides the pathway")
        reason = self.text("reason")
        return [Suppress(p, reason) for p in self.pathway_ids("suppress", wildcard=True)]

    def settings(self) -> list[Action]:
        """Intensity / contact frequency / note for a pathway, or a reassessment interval."""
        reason = self.text("reason")
        intensity, frequency = self.text("intensity"), self.text("contact_frequency")
        note = self.text("note")
        pathway = None
        if "pathway" in self.table:
            ids = self.pathway_ids("pathway", wildcard=False)
            if len(ids) > 1:
                self.fault("pathway", "pathway", "settings name one pathway")
            pathway = ids[0] if ids else None
        months = self.table.get("reassess_after_months")
        if "reassess_after_months" in self.table:
            if not _months_ok(months):
                message = f"must be a whole number of months from 1 to {MAX_REASSESS_MONTHS}"
                self.fault("reassess_after_months", "months", message)
            if "pathway" in self.table:
                self.fault("pathway", "action", "reassessment is for the person, not a pathway")
        if not {"intensity", "contact_frequency", "note", "reassess_after_months"} & set(
            self.table
        ):
            message = (
                "an action needs recommend, suppress, intensity, contact_frequency, note "
                "or reassess_after_months"
            )
            self.fault(None, "action", message)
        for key in ("intensity", "contact_frequency"):
            if key in self.table and "pathway" not in self.table:
                self.fault(key, "pathway", f"{key} needs the pathway it applies to: pathway = ...")
        actions: list[Action] = []
        if pathway is not None and intensity is not None:
            actions.append(SetIntensity(pathway, intensity, reason))
        if pathway is not None and frequency is not None:
            actions.append(SetContactFrequency(pathway, frequency, reason))
        if note is not None:
            actions.append(Note(note, pathway, reason))
        if isinstance(months, int) and _months_ok(months):
            actions.append(Reassess(months, reason))
        return actions


def _months_ok(months: object) -> bool:
    return (
        isinstance(months, int)
        and not isinstance(months, bool)
        and 1 <= months <= MAX_REASSESS_MONTHS
    )


def _parse_action(
    table: object,
    field: str,
    where: Callable[[str], str],
    problems: list[Problem],
    refs: list[tuple[str, str]],
) -> list[Action]:
    if not isinstance(table, dict):
        problems.append(Problem(where(field), "action", "an action is a table"))
        return []
    return _ActionReader(table, field, where, problems, refs).read()


def _parse_pathways(
    tables: object, source: str, problems: list[Problem]
) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(tables, list):
        message = "pathways are written as [[pathway]] tables"
        problems.append(Problem(f"{source}: pathway", "table", message))
        return ()
    out: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            problems.append(Problem(f"{source}: pathway #{index + 1}", "table", "must be a table"))
            continue
        pid = table.get("id")
        named = isinstance(pid, str) and bool(ID_PATTERN.match(pid))
        label = f"{source}: pathway {pid!r}" if named else f"{source}: pathway #{index + 1}"
        before = len(problems)
        if not named:
            message = "a pathway needs an id of letters, digits and . _ : - (no spaces or ;)"
            problems.append(Problem(f"{label}: id", "id", message))
        elif pid in seen:
            message = "this pathway is defined twice in the file"
            problems.append(Problem(f"{label}: id", "duplicate", message))
        for key, value in table.items():
            if key not in _PATHWAY_KEYS:
                message = f"unknown key {key!r}; a pathway has {', '.join(_PATHWAY_KEYS)}"
                problems.append(Problem(f"{label}: {key}", "unknown-field", message))
            elif key == "name" and not _nonempty_text(value):
                problems.append(Problem(f"{label}: name", "text", "must be a non-empty text"))
            elif key == "description" and not isinstance(value, str):
                problems.append(Problem(f"{label}: description", "text", "must be a text"))
            elif key == "concept":
                _check_concept(value, f"{label}: concept", problems)
        if len(problems) == before and isinstance(pid, str):
            seen.add(pid)
            out.append(dict(table))
    return tuple(out)


def _check_concept(value: object, where: str, problems: list[Problem]) -> None:
    if not isinstance(value, dict):
        message = 'must be a table: { system = "...", code = "...", display = "..." }'
        problems.append(Problem(where, "concept", message))
        return
    for key, item in value.items():
        if key not in _CONCEPT_KEYS:
            message = f"unknown key {key!r}; a concept has system, code and display"
            problems.append(Problem(f"{where}.{key}", "unknown-field", message))
        elif not _nonempty_text(item):
            problems.append(Problem(f"{where}.{key}", "text", "must be a non-empty text"))
    for key in ("system", "code"):
        if key not in value:
            problems.append(Problem(f"{where}.{key}", "missing", f"a concept needs a {key}"))


def pathway_from_table(table: Mapping[str, Any], base: Pathway | None) -> Pathway:
    """A ``[[pathway]]`` table applied to the catalogue's pathway of that id (if any)."""
    concept = table.get("concept")
    coding = None
    if isinstance(concept, Mapping):
        coding = Coding(str(concept["system"]), str(concept["code"]), concept.get("display"))
    if base is None:
        return Pathway(
            id=str(table["id"]),
            name=str(table["name"]),
            description=str(table.get("description", "")),
            concept=coding,
        )
    return attrs.evolve(
        base,
        name=str(table.get("name", base.name)),
        description=str(table.get("description", base.description)),
        concept=coding if "concept" in table else base.concept,
    )
