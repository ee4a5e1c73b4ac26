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

The TOML is structured by a private cattrs converter into private document classes (the
conveniences of a language written by people, a value or a list of values, are structure hooks
with their own problem codes), then turned into the models above.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NewType, Protocol, TypeAlias, runtime_checkable

import attrs
import cattrs

from pamlib._config import (
    FieldError,
    KeyPath,
    Located,
    Wording,
    dotted,
    in_document_order,
    make_converter,
    structure,
    structure_each,
    structure_fields,
)
from pamlib._documents import DocumentError, decode_utf8, parse_toml
from pamlib.errors import ConfigurationError, Problem, RuleError
from pamlib.pathways import Coding, Pathway
from pamlib.tailoring._conditions import Conditions, UnlessDoc, WhenDoc, configure_conditions
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

#: The text fields of each action, and whether each is required: a Python rule's actions are
#: checked field by field, so a list, a number or ``None`` where text belongs is a problem
#: naming the rule, not an unhashable-type crash or a note reading ``5``.
_TEXT_FIELDS: dict[type, tuple[tuple[str, bool], ...]] = {
    Recommend: (
        ("pathway", True),
        ("intensity", False),
        ("contact_frequency", False),
        ("note", False),
        ("reason", False),
    ),
    Suppress: (("pathway", True), ("reason", False)),
    SetIntensity: (("pathway", True), ("value", True), ("reason", False)),
    SetContactFrequency: (("pathway", True), ("value", True), ("reason", False)),
    Note: (("text", True), ("pathway", False), ("reason", False)),
    Reassess: (("reason", False),),
}


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
        fields = next((f for t, f in _TEXT_FIELDS.items() if isinstance(a, t)), ())
        for name, required in fields:
            value = getattr(a, name)
            if value is None and not required:
                continue
            if not _is_text(value):
                # the type, never the value: a rule's text may quote the context
                kind = "None" if value is None else type(value).__name__
                given = "" if isinstance(value, str) else f", not {kind}"
                message = "must be a non-empty text" + ("" if required else " or None") + given
                problems.append(Problem(f"rule {rule_id!r}: result[{i}].{name}", "text", message))
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


# -- the rule file as written (structured by a private converter) ------------------------------

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
_ID_MESSAGE = "needs an id of letters, digits and . _ : - (no spaces or ;)"
_THEN_MESSAGE = "a rule needs at least one action: then = [ { recommend = ... } ]"
_REASON_MESSAGE = "every rule says why, in words shown in explanations"
_MONTHS_MESSAGE = f"must be a whole number of months from 1 to {MAX_REASSESS_MONTHS}"

_RuleId = NewType("_RuleId", str)
_PathwayId = NewType("_PathwayId", str)
_Priority = NewType("_Priority", int)
_Reason = NewType("_Reason", str)
_Text = NewType("_Text", str)
_AnyText = NewType("_AnyText", str)
_Months = NewType("_Months", int)
_PathwayIds = NewType("_PathwayIds", tuple[str, ...])
_PathwayIdsOrAny = NewType("_PathwayIdsOrAny", tuple[str, ...])
_Actions = NewType("_Actions", tuple[Any, ...])
_RuleTables = NewType("_RuleTables", tuple[Any, ...])
_PathwayTables = NewType("_PathwayTables", tuple[Any, ...])
_Format = NewType("_Format", int)


def _action_checks(raw: Mapping[str, Any]) -> list[FieldError]:
    """Which keys an action may combine: told by the keys present, whatever their values."""
    keys = set(raw)
    if {"recommend", "suppress"} <= keys:
        return [FieldError("action", "an action either recommends or suppresses, not both")]
    if "recommend" in keys:
        message = "not allowed with recommend (put it in its own action)"
        return [
            FieldError("action", message, (k,))
            for k in ("pathway", "reassess_after_months")
            if k in raw
        ]
    if "suppress" in keys:
        message = "a suppress action takes only reason besides the pathway"
        return [
            FieldError("action", message, (k,))
            for k in raw
            if k in _ACTION_KEYS and k not in ("suppress", "reason")
        ]
    out: list[FieldError] = []
    pathway = raw.get("pathway")
    if isinstance(pathway, list) and len(pathway) > 1:
        out.append(FieldError("pathway", "settings name one pathway", ("pathway",)))
    if {"reassess_after_months", "pathway"} <= keys:
        message = "reassessment is for the person, not a pathway"
        out.append(FieldError("action", message, ("pathway",)))
    if not {"intensity", "contact_frequency", "note", "reassess_after_months"} & keys:
        message = (
            "an action needs recommend, suppress, intensity, contact_frequency, note "
            "or reassess_after_months"
        )
        out.append(FieldError("action", message))
    out += [
        FieldError("pathway", f"{k} needs the pathway it applies to: pathway = ...", (k,))
        for k in ("intensity", "contact_frequency")
        if k in keys and "pathway" not in keys
    ]
    return out


@attrs.frozen(kw_only=True)
class _ActionDoc:
    """One table of a rule's ``then``."""

    wording: ClassVar = Wording(
        ("action", "an action is a table"),
        ("unknown-field", f"unknown key {{key!r}}; actions use {', '.join(_ACTION_KEYS)}"),
        check=_action_checks,
    )
    recommend: _PathwayIds | None = None
    suppress: _PathwayIdsOrAny | None = None
    pathway: _PathwayIds | None = None
    intensity: _Text | None = None
    contact_frequency: _Text | None = None
    note: _Text | None = None
    reassess_after_months: _Months | None = None
    reason: _Text | None = None

    def actions(self) -> list[Action]:
        if self.recommend is not None:
            return [
                Recommend(p, self.intensity, self.contact_frequency, self.note, self.reason)
                for p in self.recommend
            ]
        if self.suppress is not None:
            return [Suppress(p, self.reason) for p in self.suppress]
        pathway = self.pathway[0] if self.pathway else None
        out: list[Action] = []
        if pathway is not None and self.intensity is not None:
            out.append(SetIntensity(pathway, self.intensity, self.reason))
        if pathway is not None and self.contact_frequency is not None:
            out.append(SetContactFrequency(pathway, self.contact_frequency, self.reason))
        if self.note is not None:
            out.append(Note(self.note, pathway, self.reason))
        if self.reassess_after_months is not None:
            out.append(Reassess(self.reassess_after_months, self.reason))
        return out

    def pathway_refs(self) -> list[tuple[str, str]]:
        """(key, pathway id) for each pathway the action names."""
        return [
            (key, p)
            for key in ("recommend", "suppress", "pathway")
            for p in getattr(self, key) or ()
            if p != ANY_PATHWAY
        ]


@attrs.frozen(kw_only=True)
class _RuleDoc:
    """One ``[[rule]]`` table."""

    wording: ClassVar = Wording(
        ("table", "must be a table"),
        (
            "unknown-field",
            "unknown key {key!r}; a rule has id, priority, reason, when, unless, then",
        ),
        missing={
            "id": ("id", f"a rule {_ID_MESSAGE}"),
            "reason": ("reason", _REASON_MESSAGE),
            "then": ("then", _THEN_MESSAGE),
        },
    )
    id: _RuleId
    priority: _Priority = _Priority(0)
    reason: _Reason
    when: WhenDoc | None = None
    unless: UnlessDoc | None = None
    then: _Actions


@attrs.frozen(kw_only=True)
class _ConceptDoc:
    wording: ClassVar = Wording(
        ("concept", 'must be a table: { system = "...", code = "...", display = "..." }'),
        ("unknown-field", "unknown key {key!r}; a concept has system, code and display"),
        missing={k: ("missing", f"a concept needs a {k}") for k in ("system", "code")},
    )
    system: _Text
    code: _Text
    display: _Text | None = None


@attrs.frozen(kw_only=True)
class _PathwayDoc:
    """One ``[[pathway]]`` table: a new pathway, or fields to change on a known one."""

    wording: ClassVar = Wording(
        ("table", "must be a table"),
        ("unknown-field", "unknown key {key!r}; a pathway has id, name, description, concept"),
        missing={"id": ("id", f"a pathway {_ID_MESSAGE}")},
    )
    id: _PathwayId
    name: _Text | None = None
    description: _AnyText | None = None
    concept: _ConceptDoc | None = None


@attrs.frozen(kw_only=True)
class _RulesDoc:
    """A rule file's top level."""

    wording: ClassVar = Wording(
        ("table", "must be a table"),
        (
            "unknown-field",
            "unknown key {key!r}; a rule file holds format, [[rule]] and [[pathway]]",
        ),
    )
    format: _Format = _Format(FORMAT_VERSION)
    rule: _RuleTables = _RuleTables(())
    pathway: _PathwayTables = _PathwayTables(())


def _check(test: Callable[[Any], bool], code: str, message: str) -> Callable[[Any, Any], Any]:
    """A structure hook passing values ``test`` accepts, refusing others with ``code``."""

    def hook(value: Any, _: Any) -> Any:
        if not test(value):
            raise FieldError(code, message)
        return value

    return hook


def _ids(wildcard: bool) -> Callable[[Any, Any], tuple[str, ...]]:
    extra = f' ("{ANY_PATHWAY}" for every pathway)' if wildcard else ""
    message = f"must be a pathway id or a list of pathway ids{extra}"

    def hook(value: Any, _: Any) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items or not all(
            isinstance(v, str) and (ID_PATTERN.match(v) or (wildcard and v == ANY_PATHWAY))
            for v in items
        ):
            raise FieldError("pathway", message)
        return tuple(items)

    return hook


def _tables(key: str) -> Callable[[Any, Any], tuple[Any, ...]]:
    def hook(value: Any, _: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise FieldError("table", f"{key}s are written as [[{key}]] tables")
        return tuple(value)

    return hook


def _actions_hook(conv: cattrs.Converter) -> Callable[[Any, Any], tuple[_ActionDoc, ...]]:
    def hook(value: Any, _: Any) -> tuple[_ActionDoc, ...]:
        if not isinstance(value, list) or not value:
            raise FieldError("then", _THEN_MESSAGE)
        return conv.structure(value, tuple[_ActionDoc, ...])

    return hook


def _is_id(value: object) -> bool:
    return isinstance(value, str) and bool(ID_PATTERN.match(value))


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@functools.cache
def _converter() -> cattrs.Converter:
    conv = make_converter()
    configure_conditions(conv)
    text = _check(_is_text, "text", "must be a non-empty text")
    conv.register_structure_hook(_RuleId, _check(_is_id, "id", f"a rule {_ID_MESSAGE}"))
    conv.register_structure_hook(_PathwayId, _check(_is_id, "id", f"a pathway {_ID_MESSAGE}"))
    conv.register_structure_hook(_Priority, _check(_is_whole, "priority", "must be a whole number"))
    conv.register_structure_hook(_Reason, _check(_is_text, "reason", _REASON_MESSAGE))
    conv.register_structure_hook(_Text, lambda v, _: text(v, _).strip())
    conv.register_structure_hook(
        _AnyText, _check(lambda v: isinstance(v, str), "text", "must be a text")
    )
    conv.register_structure_hook(_RuleTables, _tables("rule"))
    conv.register_structure_hook(_PathwayTables, _tables("pathway"))
    conv.register_structure_hook(_Months, _check(_months_ok, "months", _MONTHS_MESSAGE))
    conv.register_structure_hook(_PathwayIds, _ids(wildcard=False))
    conv.register_structure_hook(_PathwayIdsOrAny, _ids(wildcard=True))
    conv.register_structure_hook(_Actions, _actions_hook(conv))
    conv.register_structure_hook(
        _Format,
        _check(
            lambda v: _is_whole(v) and v == FORMAT_VERSION,
            "format",
            f"this pamlib reads rule file format {FORMAT_VERSION}",
        ),
    )
    return conv


@attrs.frozen
class _Locator:
    """Paths in one rule file as its problems name them: ``site.toml: rule 'r1': when.level``
    (``rule #2 ('a b')`` when the id is unusable), ``site.toml: pathway 'p': name``."""

    source: str
    document: Mapping[str, Any]

    def label(self, kind: str, index: int) -> str:
        tables = self.document.get(kind)
        table = tables[index] if isinstance(tables, list) else None
        given = table.get("id") if isinstance(table, dict) else None
        if _is_id(given):
            return f"{kind} {given!r}"
        bad = f" ({given!r})" if isinstance(given, str) and kind == "rule" else ""
        return f"{kind} #{index + 1}{bad}"

    def where(self, path: KeyPath) -> str:
        if len(path) > 1 and path[0] in ("rule", "pathway") and isinstance(path[1], int):
            label = f"{self.source}: {self.label(str(path[0]), path[1])}"
            return f"{label}: {dotted(path[2:])}" if len(path) > 2 else label
        return f"{self.source}: {dotted(path)}" if path else self.source

    def problems(self, found: Iterable[Located]) -> list[Problem]:
        ordered = in_document_order(found, self.document)
        return [Problem(self.where(f.path), f.code, f.message) for f in ordered]


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
    and every problem. Lets a caller check the valid rules' pathways too, in the same report.

    Each ``[[rule]]`` and ``[[pathway]]`` table is structured on its own, so the duplicate-id
    checks see every valid table, and the pathways a refused rule names (its valid actions')
    are still checked by the engine (:attr:`RuleFile.unchecked_refs`).
    """
    try:
        data = parse_toml(text, source)
    except DocumentError as exc:  # bad syntax, nesting too deep, an integer too long
        return RuleFile(source), [exc.problem]
    conv = _converter()
    locate = _Locator(source, data)
    top, found = structure_fields(conv, data, _RulesDoc)
    rules: list[FileRule] = []
    unchecked: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, table in enumerate(top.get("rule", ())):
        made, problems = structure(conv, table, _RuleDoc, ("rule", index))
        found += problems
        if made is None:
            unchecked += _salvaged_refs(conv, table, ("rule", index), locate)
            continue
        parsed = _file_rule(made, source, locate.where(("rule", index)))
        if parsed.id in seen:
            message = "this rule id is used twice in the file"
            found.append(Located(("rule", index, "id"), "duplicate", message))
            unchecked += parsed.pathway_refs
            continue
        seen.add(parsed.id)
        rules.append(parsed)
    pathways: list[Mapping[str, Any]] = []
    defined: set[str] = set()
    for index, table in enumerate(top.get("pathway", ())):
        made, problems = structure(conv, table, _PathwayDoc, ("pathway", index))
        found += problems
        if made is None:
            continue
        if made.id in defined:
            message = "this pathway is defined twice in the file"
            found.append(Located(("pathway", index, "id"), "duplicate", message))
            continue
        defined.add(made.id)
        pathways.append(dict(table))
    rule_file = RuleFile(source, tuple(rules), tuple(pathways), tuple(unchecked))
    return rule_file, locate.problems(found)


def _file_rule(doc: _RuleDoc, source: str, label: str) -> FileRule:
    actions = [a for action in doc.then for a in action.actions()]
    refs = [
        (f"{label}: then[{i}].{key}", p)
        for i, action in enumerate(doc.then)
        for key, p in action.pathway_refs()
    ]
    return FileRule(
        id=doc.id,
        reason=doc.reason.strip(),
        then=tuple(actions),
        priority=doc.priority,
        when=doc.when.conditions() if doc.when is not None else Conditions(),
        unless=doc.unless.conditions() if doc.unless is not None else None,
        source=source,
        pathway_refs=tuple(refs),
    )


def _salvaged_refs(
    conv: cattrs.Converter, table: object, path: KeyPath, locate: _Locator
) -> list[tuple[str, str]]:
    """The pathways named by the valid actions of a refused rule, to be checked all the same."""
    then = table.get("then") if isinstance(table, dict) else None
    if not isinstance(then, list):
        return []
    valid, _ = structure_each(conv, then, _ActionDoc, (*path, "then"))
    return [
        (locate.where((*path, "then", i, key)), p)
        for i, action in valid
        for key, p in action.pathway_refs()
    ]


def _months_ok(months: object) -> bool:
    return isinstance(months, int) and _is_whole(months) and 1 <= months <= MAX_REASSESS_MONTHS


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
