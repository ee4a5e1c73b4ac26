"""Finding, loading and calling plugins — the typed facade over pluggy.

Application code never touches ``pm.hook``: it asks a :class:`PluginHost` for instruments,
providers, formats and so on. The host calls hooks through pluggy, so implementation order
(``tryfirst``/``trylast``, later-registered plugins first), ``firstresult`` and wrappers (new
style ``wrapper=True`` and old style ``hookwrapper=True``) behave as pluggy documents. What
pluggy holds for each plugin is a stand-in whose hook implementations are the plugin's own,
each run inside a :class:`PluginGuard`: one plugin that raises is reported by name (plugin and
hook) and treated as having returned ``None``, and cannot corrupt what the others contribute.

Built-in behaviour is registered first, as default plugins going through the same hooks; then
every entry point in the ``pamlib`` group, one at a time. ``PAMLIB_PLUGINS`` (comma separated
names) is an allow-list for entry-point plugins (a name it lists that is not installed is
warned about and listed as ``not-found``); ``PAMLIB_DISABLE_PLUGINS`` switches plugins off,
built-ins included, and beats the allow-list.

What a plugin's own code raises is contained, whatever it is: ``SystemExit`` and
``KeyboardInterrupt`` included. The one exception is a real interrupt: a ``KeyboardInterrupt``
while the user pressed Ctrl-C still stops the run (see :class:`PluginGuard`). What a plugin
registers is checked for its type before anything uses it, so junk is reported by plugin and
hook rather than failing later with an ``AttributeError``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
import logging
import os
import re
import signal
import sys
import threading
import types
from collections.abc import Callable, Generator, Iterable, Mapping
from functools import partial
from pathlib import Path, PurePath
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import attrs
import pluggy

from pamlib import hookspecs
from pamlib._version import __version__
from pamlib.errors import (
    _PATIENT_HOOKS,
    PamlibError,
    PluginError,
    _type_and_place,
)

if TYPE_CHECKING:
    from pamlib.assessment import Assessment
    from pamlib.formats.base import Format
    from pamlib.instruments import Instrument, InstrumentRegistry
    from pamlib.levels import CutpointRegistry
    from pamlib.pathways import Pathway
    from pamlib.results import ScoreResult
    from pamlib.scoring.provider import BatchScores, ScoringProvider
    from pamlib.tailoring.rules import RuleSource

__all__ = [
    "ALLOW_ENV",
    "DEFAULT_PLUGINS",
    "DISABLE_ENV",
    "PluginGuard",
    "PluginHost",
    "PluginRecord",
    "describe_failure",
    "get_host",
    "reset_host",
]

log = logging.getLogger(__name__)

#: Environment variable naming plugins to skip (comma separated).
DISABLE_ENV = "PAMLIB_DISABLE_PLUGINS"
#: Environment variable naming the only entry-point plugins to load (comma separated; ``*``,
#: or the variable unset, loads all). Built-ins and plugins handed to the host are not affected.
ALLOW_ENV = "PAMLIB_PLUGINS"

#: Modules holding pamlib's own hook implementations, registered before any installed plugin, in
#: this order. They are declared as entry points of the ``pamlib`` group, as a third party's
#: plugins are (the disable list applies to them the same way), but imported by name: each entry
#: point names its module and nothing in it, so loading it is that import, and reading pamlib's
#: metadata to find them (importing :mod:`importlib.metadata` and the ``email`` package) was a
#: tenth of what ``pamlib score`` cost to start.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "pamlib.builtin.catalogue",
    "pamlib.scoring.raw_sum",
    "pamlib.scoring.rasch",
    "pamlib.scoring.demo",
    "pamlib.tailoring.catalogue",
    "pamlib.tailoring.default_rules",
    "pamlib.formats.delimited",
    "pamlib.formats.typed",
    "pamlib.formats.workbook",
    "pamlib.fhir.plugin",
)

T = TypeVar("T")


@attrs.define
class PluginRecord:
    """What ``pamlib plugins`` shows for one plugin."""

    name: str
    version: str | None
    builtin: bool
    hooks: list[str] = attrs.field(factory=list)
    provides: dict[str, list[str]] = attrs.field(factory=dict)
    errors: list[PluginError] = attrs.field(factory=list)
    #: Why the plugin was not loaded although it loads fine: ``disabled`` (the disable list),
    #: ``not-allowed`` (an entry point missing from the allow-list) or ``unregistered``; or
    #: ``not-found``: a name the allow-list gives that no installed plugin has.
    skipped: str | None = None
    #: The same in words, for ``pamlib plugins``.
    reason: str | None = None

    @property
    def disabled(self) -> bool:
        """Not loaded by choice (see :attr:`skipped`), not because it failed."""
        return self.skipped is not None

    @property
    def status(self) -> str:
        if self.skipped is not None:
            return self.skipped
        if any(e.hook is None for e in self.errors):
            return "failed"
        return "error" if self.errors else "ok"


#: Errors kept per plugin and hook; a hook failing on every call would otherwise grow the list
#: for as long as a service runs.
MAX_ERRORS_PER_HOOK = 10
_MAX_MESSAGE = 300


def describe_failure(exc: BaseException, *, quote: bool = True) -> str:
    """One line saying what went wrong: the exception's type and its message, lines joined and
    shortened (pamlib's own errors without the type), any NHS number in it withheld. An
    operating-system error names the base name of its file only (a full path may hold a
    patient's name in a folder name).

    ``quote=False`` for code that failed while it held a patient's record (a provider scoring
    an assessment, a Python rule, an observer of one): the type and where it was raised only,
    for its text may quote a name, an id or an answer that no pattern recognises.

    >>> describe_failure(ValueError("no key for 943 476 5919"))
    'ValueError: no key for <NHS number>'
    >>> describe_failure(ValueError("bad row for Jane Smith"), quote=False)
    'ValueError'
    """
    if not quote:
        return _type_and_place(exc)
    if isinstance(exc, OSError) and (exc.strerror or exc.filename):
        name = PurePath(exc.filename).name if isinstance(exc.filename, str) else ""
        text = f"{exc.strerror or ''}: {name}" if name else str(exc.strerror or "")
    else:
        try:
            text = str(exc)
        except Exception:  # a plugin's exception whose __str__ fails
            text = ""
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    from pamlib.identity import withhold_nhs_numbers

    text = withhold_nhs_numbers(text)
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1] + "…"
    if isinstance(exc, PamlibError) and text:
        return text
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


#: The signals a watching guard counts: Ctrl-C, and a request to stop where a handler turns it
#: into an interrupt (``pamlib score`` raises :class:`~pamlib.formats.guard.Terminated`).
_WATCHED = (signal.SIGINT, signal.SIGTERM)


class _Interrupts:
    """Counts real SIGINTs (Ctrl-C) and handled SIGTERMs while some :class:`PluginGuard` watches
    for them."""

    count = 0
    watchers = 0
    previous: ClassVar[dict[int, Any]] = {}
    lock = threading.Lock()


def _counting_handler(signum: int, frame: FrameType | None) -> None:
    """The handler of a watched signal while a guard watches: count, then do what was done
    before."""
    _Interrupts.count += 1
    previous = _Interrupts.previous.get(signum)
    if callable(previous):
        previous(signum, frame)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class PluginGuard:
    """Run a plugin's code, containing whatever it raises.

    ``with guard:`` swallows any exception raised inside and keeps it as :attr:`error` —
    ``SystemExit``, ``KeyboardInterrupt`` and ``GeneratorExit`` included, because a plugin may
    raise them itself. A real interrupt is let through: with ``watch=True`` (in the main thread)
    the guard counts Ctrl-C presses (SIGINT) while the plugin runs, and requests to stop
    (SIGTERM) where a handler turns them into an interrupt, as ``pamlib score`` does; a
    ``KeyboardInterrupt`` with a signal behind it propagates. Without watching, a
    ``KeyboardInterrupt`` in the main thread is taken to be the user's (Python raises Ctrl-C in
    whatever code is running, most often a provider's scoring loop), so it propagates too; in
    other threads it cannot come from a signal and is contained. Watching costs a few
    microseconds (a few ``sigaction`` calls), so the host watches when loading plugins and once
    per batch, not on every one-assessment call.

    >>> guard = PluginGuard()
    >>> with guard:
    ...     raise SystemExit(0)
    >>> describe_failure(guard.error)
    'SystemExit: 0'
    """

    __slots__ = ("_mark", "_watching", "error")

    def __init__(self, *, watch: bool = True) -> None:
        self._watching = watch and _main_thread()
        self._mark = 0
        self.error: BaseException | None = None

    def __enter__(self) -> PluginGuard:
        self.error = None
        if self._watching:
            with _Interrupts.lock:
                if _Interrupts.watchers == 0:
                    _Interrupts.previous = {}
                    for signum in _WATCHED:
                        current = signal.getsignal(signum)
                        if callable(current):  # else it raises nothing: ignored, or default
                            _Interrupts.previous[signum] = current
                            signal.signal(signum, _counting_handler)
                _Interrupts.watchers += 1
                self._mark = _Interrupts.count
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        interrupted = False
        if self._watching:
            with _Interrupts.lock:
                interrupted = _Interrupts.count != self._mark
                _Interrupts.watchers -= 1
                if _Interrupts.watchers == 0:
                    for signum, previous in _Interrupts.previous.items():
                        if signal.getsignal(signum) is _counting_handler:
                            signal.signal(signum, previous)
                    _Interrupts.previous = {}
        if exc is None:
            return False
        if isinstance(exc, KeyboardInterrupt) and self._is_real(interrupted):
            return False
        self.error = exc
        return True

    def _is_real(self, interrupted: bool) -> bool:
        if not _main_thread():
            return False
        if not self._watching:
            return True
        # Watched: a real Ctrl-C or stop request was counted, unless neither signal could raise
        # at all (ignored or left to the operating system), when any KeyboardInterrupt is the
        # plugin's own.
        return interrupted


def _names(raw: str) -> frozenset[str]:
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def _disabled_from_env() -> frozenset[str]:
    return _names(os.environ.get(DISABLE_ENV, ""))


def _allowed(allowed: Iterable[str] | None) -> frozenset[str] | None:
    """The allow-list (``None``: everything) from the argument, else from the environment."""
    if allowed is None:
        raw = os.environ.get(ALLOW_ENV)
        if raw is None:
            return None
        allowed = raw
    names = _names(allowed) if isinstance(allowed, str) else frozenset(allowed)
    return None if "*" in names else names


def _identity(obj: object) -> object:
    return obj


def _candidates(plugin: object) -> list[str]:
    """The names in ``dir(plugin)`` that may hold a hook implementation, for pluggy to judge.

    A module's attributes are its namespace's values, read without descriptors, so one that is
    no function or method (a class, a module, a constant) cannot be an implementation, whichever
    way pluggy looks it up. Nor can a plain function whose own attributes hold no marker (pluggy
    reads the marker from those, or from a ``__func__`` there): a module's helpers and what it
    imports. Those are left out: pluggy's careful look-up of every name was most of what
    registering the built-ins cost. Anything else is pluggy's to judge.
    """
    names = dir(plugin)
    if type(plugin) is not types.ModuleType:
        return names
    namespace = vars(plugin)
    return [
        name
        for name in names
        if name not in namespace
        or _may_be_marked(value := namespace[name])
        or isinstance(value, staticmethod | classmethod)
    ]


_MARKER = hookspecs.PROJECT_NAME + "_impl"


def _may_be_marked(value: object) -> bool:
    """Whether pluggy might find a hook implementation's marker on ``value``, a routine."""
    if type(value) is types.FunctionType:
        own = value.__dict__
        return _MARKER in own or "__func__" in own
    if isinstance(value, type) or type(value) is types.ModuleType:
        return False  # most of what a module imports: inspect.isroutine says no, more slowly
    return inspect.isroutine(value)


def _kind_of(obj: object) -> str:
    """``an int``, ``a str`` …: what a plugin handed over, for messages (never its value)."""
    name = type(obj).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _describe(obj: object) -> str:
    """A short name for a registered thing (its ``id`` or ``name``), for ``pamlib plugins``."""
    for attr in ("id", "name"):
        try:
            value = getattr(obj, attr, None)
        except Exception:  # a registration's property may raise
            value = None
        if isinstance(value, str):
            return value
    return str(obj) if isinstance(obj, str) else type(obj).__name__


def _expect(thing: object, kind: type, what: str) -> None:
    if not isinstance(thing, kind):
        raise PamlibError(f"registered {_kind_of(thing)}, not {what}")


def _check_format(fmt: object) -> str:
    """The name of a registered format, or a :class:`PamlibError` saying what is wrong."""
    from pamlib.formats.base import InputFormat, OutputFormat

    if not isinstance(fmt, InputFormat | OutputFormat):
        raise PamlibError(f"registered {_kind_of(fmt)}, not an input or output format")
    name, extensions = fmt.name, fmt.extensions
    if not isinstance(name, str) or not name:
        raise PamlibError(f"registered a format whose name is {_kind_of(name)}, not a str")
    if not isinstance(extensions, tuple | list) or not all(isinstance(e, str) for e in extensions):
        raise PamlibError(f"format {name!r}: extensions must be a tuple of str")
    if not isinstance(fmt.description, str):
        raise PamlibError(f"format {name!r}: description must be a str")
    return name


#: What a provider's id may be, as the guide and the conformance kit say.
_PROVIDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


def _check_provider(provider: object) -> str:
    """The id of a registered scoring provider, or a :class:`PamlibError` saying what is
    wrong (its declarations are read once here, so junk never reaches provider selection)."""
    from pamlib.scoring.provider import Licence

    missing = [
        m
        for m in ("id", "version", "demo", "licence", "instruments", "score_batch", "score")
        if not hasattr(provider, m)
    ]
    if missing:
        raise PamlibError(
            f"registered {_kind_of(provider)}, not a scoring provider (no {', '.join(missing)})"
        )
    p: Any = provider
    pid = p.id
    if not isinstance(pid, str) or not pid.strip():
        raise PamlibError(f"registered a scoring provider whose id is {_kind_of(pid)}")
    if not _PROVIDER_ID.fullmatch(pid):  # it is written on every result, and into logs
        raise PamlibError(
            f"registered a scoring provider whose id {pid[:40]!r} is not letters, digits and "
            "'. _ : -' (starting with a letter or digit)"
        )
    declared = {
        "version": isinstance(p.version, str),
        "demo": isinstance(p.demo, bool),
        "licence": p.licence is None or isinstance(p.licence, Licence),
        "instruments": callable(p.instruments),
        "score_batch": callable(p.score_batch),
        "score": callable(p.score),
    }
    wrong = [name for name, ok in declared.items() if not ok]
    if wrong:
        raise PamlibError(
            f"scoring provider {pid!r} declares {', '.join(wrong)} wrongly (see ScoringProvider)"
        )
    return pid


def _check_item_text(text: object) -> Mapping[str, str] | None:
    if text is None:
        return None
    if not isinstance(text, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in text.items()
    ):
        raise PamlibError(f"returned {_kind_of(text)}, not a mapping of item id to text")
    return dict(text)


#: Hooks whose calls run millions of times in a service: their guard does not watch for Ctrl-C.
_UNWATCHED = frozenset({"pamlib_assessment_scored"})
#: Hooks whose answers are checked inside each implementation's guard, so a malformed answer is
#: that plugin's error and pluggy goes on to the next implementation.
_ANSWER_CHECKS: dict[str, Callable[[Any], Any]] = {"pamlib_item_text": _check_item_text}
#: The registration hooks, whose results the host caches until a plugin is added or removed.
_CACHED_HOOK_PREFIX = "pamlib_register_"


class _Collector:
    """The ``register`` argument of one call of a registration hook.

    Each plugin's implementation is handed its own :class:`_Stage` instead (its guard swaps it
    in); what it registered is kept, by plugin, only once the implementation returns."""

    __slots__ = ("batches",)

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[Any]]] = []

    def __call__(self, thing: object) -> None:
        # Reached only by an implementation registered on ``pm`` behind the host's back.
        self.batches.append(("", [thing]))

    def keep(self, plugin: str, things: list[Any]) -> None:
        if things:
            self.batches.append((plugin, things))


class _Stage:
    """One implementation's ``register``: registrations wait here until it returns."""

    __slots__ = ("things",)

    def __init__(self) -> None:
        self.things: list[Any] = []

    def __call__(self, thing: object) -> None:
        self.things.append(thing)

    def take(self) -> list[Any]:
        things, self.things = self.things, []
        return things


def _staged(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> tuple[_Collector | None, _Stage, tuple[object, ...], dict[str, object]]:
    """Swap a :class:`_Collector` among a hook call's arguments for a fresh :class:`_Stage`."""
    stage = _Stage()
    collector: _Collector | None = None

    def swap(value: object) -> object:
        nonlocal collector
        if isinstance(value, _Collector):
            collector = value
            return stage
        return value

    new_args = tuple(swap(a) for a in args)
    new_kwargs = {k: swap(v) for k, v in kwargs.items()}
    return collector, stage, new_args, new_kwargs


class _StandIn:
    """What pluggy holds for one plugin: its hook implementations, each guarded by the host.

    The plugin's own object is kept by the host, never here, so nothing of it can be mistaken
    for a hook implementation."""

    def __init__(self, name: str) -> None:
        self._pamlib_name = name

    def __repr__(self) -> str:
        return repr(self._pamlib_name)

    def __dir__(self) -> list[str]:
        """The implementations set on the stand-in, the only names that can be one: pluggy
        asks about each name ``dir`` gives, with a careful look-up that was most of what
        registering a plugin cost when it also asked about every attribute of ``object``."""
        return [name for name in vars(self) if name != "_pamlib_name"]


class PluginHost:
    """The set of loaded plugins, and one typed method per hook.

    Hooks are called through pluggy (order, ``firstresult`` and wrappers as pluggy documents),
    each implementation guarded so a failure is reported against its plugin. Registrations are
    accepted in the order the plugins were loaded — built-ins, then entry points by name, then
    plugins handed over — so an id taken by an earlier plugin stays its own and a later clash
    is the later plugin's error, whatever order pluggy calls them in.

    >>> host = PluginHost(load_entry_points=False)
    >>> "PAM-13" in host.instruments()
    True
    """

    def __init__(
        self,
        *,
        load_entry_points: bool = True,
        disabled: Iterable[str] | None = None,
        plugins: Mapping[str, object] | None = None,
        allowed: Iterable[str] | None = None,
    ) -> None:
        """``disabled`` and ``allowed`` default to ``PAMLIB_DISABLE_PLUGINS`` and
        ``PAMLIB_PLUGINS``; ``allowed`` may also be a comma-separated string, ``"*"`` meaning
        every entry point. ``plugins`` are loaded after the entry points, whatever the
        allow-list says."""
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._disabled_env = disabled is None
        self._disabled = _disabled_from_env() if disabled is None else frozenset(disabled)
        self._allowed = _allowed(allowed)
        self._entry_points = load_entry_points
        self._given: dict[str, object] = {}
        self._plugins: dict[str, object] = {}
        self._order: dict[str, int] = {}
        self._counter = itertools.count()
        self._removed: set[str] = set()
        self._records: dict[str, PluginRecord] = {}
        self._distributions: set[str] = set()
        self._cache: dict[str, Any] = {}
        self._warned: set[tuple[str, str, str]] = set()
        self._lock = threading.RLock()
        for module_name in DEFAULT_PLUGINS:
            load = partial(importlib.import_module, module_name)
            self._load(module_name, __version__, True, load)
        if load_entry_points:
            self._load_entry_points()
        for name, plugin in (plugins or {}).items():
            self._given[name] = plugin
            self._load(name, None, False, partial(_identity, plugin), given=True)
        if load_entry_points:
            self._not_found()

    # -- loading ---------------------------------------------------------------------------

    def _skip(self, record: PluginRecord, dist: str | None, given: bool) -> bool:
        """Mark ``record`` as not to be loaded, if the disable list or the allow-list says so
        (the disable list wins)."""
        names = {record.name} | ({dist} if dist else set())
        if names & self._disabled:
            record.skipped = "disabled"
            record.reason = "named in " + (
                DISABLE_ENV if self._disabled_env else "the host's disable list"
            )
        elif (
            self._allowed is not None
            and not (record.builtin or given)
            and not names & self._allowed
        ):
            record.skipped = "not-allowed"
            record.reason = f"not named in the allow-list ({ALLOW_ENV})"
        return record.skipped is not None

    def _not_found(self) -> None:
        """Record each name of the allow-list that no plugin seen has (by plugin or
        distribution name), and warn once, on one line: a name mistyped or a plugin not
        installed would otherwise go unnoticed, and a run may not need it, so it is no error."""
        if not self._allowed:
            return
        known = {*self._records, *self._distributions, hookspecs.PROJECT_NAME}
        missing = sorted(self._allowed - known)
        for name in missing:
            self._records[name] = PluginRecord(
                name=name,
                version=None,
                builtin=False,
                skipped="not-found",
                reason=f"named in the allow-list ({ALLOW_ENV}) but not installed",
            )
        if missing:
            log.warning(
                "%s names %s not installed: %s ('pamlib plugins' lists those installed)",
                ALLOW_ENV,
                "a plugin that is" if len(missing) == 1 else "plugins that are",
                ", ".join(missing),
            )

    def _load(
        self,
        name: str,
        version: str | None,
        builtin: bool,
        get: Callable[[], object],
        *,
        dist: str | None = None,
        given: bool = False,
    ) -> None:
        record = PluginRecord(name=name, version=version, builtin=builtin)
        self._records[name] = record
        if dist:
            self._distributions.add(dist)
        if self._skip(record, dist, given):
            return
        guard = PluginGuard()
        with guard:
            plugin = get()
            stand_in = self._register(plugin, name)
        if guard.error is not None:
            if self.pm.has_plugin(name):  # pragma: no cover - register raised after adding it
                self.pm.unregister(name=name)
            self._fail(record, guard.error)
            return
        record.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(stand_in) or [])

    def _register(self, plugin: object, name: str) -> _StandIn:
        """Hand pluggy a guarded stand-in for ``plugin``; a :class:`PamlibError` (or pluggy's
        validation error) says why it cannot be."""
        for other, known in self._plugins.items():
            if known is plugin:
                raise PamlibError(f"the same plugin is already registered as {other!r}")
        stand_in = _StandIn(name)
        for attr in _candidates(plugin):
            opts = self.pm.parse_hookimpl_opts(plugin, attr)
            if opts is None:
                continue
            function = getattr(plugin, attr)
            hook = opts.get("specname") or attr
            wrapper = bool(opts.get("wrapper") or opts.get("hookwrapper"))
            if wrapper and not inspect.isgeneratorfunction(function):
                raise PamlibError(f"hook {hook}: a wrapper must be a generator function")
            guarded = self._guarded(name, hook, function, opts)
            # pluggy finds an implementation by this attribute, which functions do not declare
            guarded.pamlib_impl = dict(opts)  # type: ignore[attr-defined]  # pluggy's hookimpl marker
            setattr(stand_in, attr, guarded)
        if len(vars(stand_in)) == 1:
            raise PamlibError(f"implements no pamlib hook (it is {_kind_of(plugin)})")
        self.pm.register(stand_in, name=name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            raise PamlibError(str(exc)) from None
        self._plugins[name] = plugin
        self._order[name] = next(self._counter)
        return stand_in

    def _guarded(
        self, plugin: str, hook: str, function: Callable[..., Any], opts: Mapping[str, Any]
    ) -> Callable[..., Any]:
        """``function`` run inside a guard, with the same signature for pluggy to read."""
        old_style = bool(opts.get("hookwrapper"))
        guarded: Callable[..., Any]
        if old_style or opts.get("wrapper"):

            def wrapper(*args: object, **kwargs: object) -> Generator[None, Any, Any]:
                return (
                    yield from self._wrap(
                        plugin, hook, function, old_style=old_style, args=args, kwargs=kwargs
                    )
                )

            guarded = wrapper
        else:

            def implementation(*args: object, **kwargs: object) -> Any:
                return self._call(plugin, hook, function, args, kwargs)

            guarded = implementation
        return functools.update_wrapper(guarded, function)

    def _call(
        self,
        plugin: str,
        hook: str,
        function: Callable[..., Any],
        args: tuple[object, ...],
        kwargs: dict[str, object],
    ) -> Any:
        """One plain hook implementation, guarded: ``None`` (nothing kept) if it failed."""
        collector, stage, args, kwargs = _staged(args, kwargs)
        check = _ANSWER_CHECKS.get(hook)
        guard = PluginGuard(watch=hook not in _UNWATCHED)
        with guard:
            value = function(*args, **kwargs)
            if check is not None:
                value = check(value)
        if guard.error is not None:
            self._report(plugin, hook, guard.error)
            return None
        if collector is not None:
            collector.keep(plugin, stage.take())
        return value

    def _wrap(
        self,
        plugin: str,
        hook: str,
        function: Callable[..., Any],
        *,
        old_style: bool,
        args: tuple[object, ...],
        kwargs: dict[str, object],
    ) -> Generator[None, Any, Any]:
        """One wrapper, guarded: its part before ``yield`` and its part after each count only
        if they return; a wrapper that fails is reported and the call goes on without it."""
        collector, stage, args, kwargs = _staged(args, kwargs)
        check = _ANSWER_CHECKS.get(hook)
        watch = hook not in _UNWATCHED
        gen: Generator[None, Any, Any] | None = None
        guard = PluginGuard(watch=watch)
        with guard:
            gen = function(*args, **kwargs)
            try:
                next(gen)
            except StopIteration:
                raise PamlibError("the wrapper did not yield") from None
        if guard.error is not None or gen is None:
            self._report(plugin, hook, guard.error or PamlibError("the wrapper did not yield"))
            return (yield)
        if collector is not None:
            collector.keep(plugin, stage.take())
        try:
            inner = yield
        except BaseException:  # only a real interrupt gets here: every implementation is guarded
            self._close(gen)
            raise
        if old_style:
            return self._old_style_teardown(
                plugin, hook, gen, inner, check=check, collector=collector, stage=stage
            )
        guard = PluginGuard(watch=watch)
        value = inner
        with guard:
            try:
                gen.send(inner)
            except StopIteration as stop:
                value = stop.value if check is None else check(stop.value)
            else:
                raise PamlibError("the wrapper yielded more than once")
        if guard.error is not None:
            self._close(gen)
            stage.take()
            self._report(plugin, hook, guard.error)
            return inner
        if collector is not None:
            collector.keep(plugin, stage.take())
        return value

    def _old_style_teardown(
        self,
        plugin: str,
        hook: str,
        gen: Generator[None, Any, Any],
        outcome: pluggy.Result[Any],
        *,
        check: Callable[[Any], Any] | None,
        collector: _Collector | None,
        stage: _Stage,
    ) -> None:
        """The part after ``yield`` of a ``hookwrapper``: it may force another result, which is
        checked; if it fails, the result is put back as it was."""
        before, raised = (
            (None, outcome.exception) if outcome.exception else (outcome.get_result(), None)
        )
        guard = PluginGuard(watch=hook not in _UNWATCHED)
        with guard:
            try:
                gen.send(outcome)
            except StopIteration:
                pass
            else:
                raise PamlibError("the hookwrapper yielded more than once")
            if outcome.exception is not None and outcome.exception is not raised:
                raise outcome.exception
            if check is not None and outcome.exception is None:
                outcome.force_result(check(outcome.get_result()))
        if guard.error is None:
            if collector is not None:
                collector.keep(plugin, stage.take())
            return
        self._close(gen)
        stage.take()
        self._report(plugin, hook, guard.error)
        if raised is not None:
            outcome.force_exception(raised)
        else:
            outcome.force_result(before)

    def _close(self, gen: Generator[None, Any, Any]) -> None:
        with PluginGuard(watch=False):
            gen.close()

    def _fail(self, record: PluginRecord, cause: BaseException) -> None:
        """``record``'s plugin could not be loaded: keep the error, warn once, on one line."""
        error = PluginError(record.name, None, cause)
        record.errors.append(error)
        log.warning("plugin %r disabled: %s", record.name, describe_failure(cause))

    def _load_entry_points(self) -> None:
        if not _others_declare_plugins():
            return  # pamlib's own, already loaded by name: nothing else to load
        import importlib.metadata

        eps = importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME)
        for ep in sorted(eps, key=lambda e: e.name):
            if ep.name in self._records:
                continue
            version = ep.dist.version if ep.dist is not None else None
            dist_name = ep.dist.name if ep.dist is not None else None
            self._load(ep.name, version, False, ep.load, dist=dist_name)

    # -- adding and removing plugins -------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> PluginRecord:
        """Load ``plugin`` (a module or an object with hook implementations) as if it had been
        handed to the constructor, and return its record.

        A plugin that fails to load is reported in the record (status ``failed``) and warned
        about, as at start-up; a name already loaded is a :class:`~pamlib.errors.PluginError`.
        Everything the host had collected from the registration hooks is collected again on
        next use, so the new plugin's instruments, formats … are seen."""
        name = name or self.pm.get_canonical_name(plugin)
        with self._lock:
            if self.pm.has_plugin(name):
                why = "a plugin of that name is already registered"
                raise _plugin_error(name, PamlibError(why), f"plugin {name!r}: {why}")
            self._removed.discard(name)
            self._given[name] = plugin
            self._load(name, None, False, partial(_identity, plugin), given=True)
            self._invalidate()
            return self._records[name]

    def unregister(self, name: str) -> None:
        """Remove the loaded plugin ``name`` (a built-in, an entry point or one handed over);
        what it registered is gone on next use. Not loaded: a
        :class:`~pamlib.errors.PluginError`."""
        with self._lock:
            if not self.pm.has_plugin(name):
                why = "no plugin of that name is loaded"
                raise _plugin_error(name, PamlibError(why), f"plugin {name!r}: {why}")
            self.pm.unregister(name=name)
            del self._plugins[name]
            if self._given.pop(name, None) is not None:
                del self._records[name]  # handed over: a rebuilt host will not know it
            else:
                self._removed.add(name)  # found by discovery: a rebuilt host skips it
                record = self._records[name]
                record.hooks = []
                record.skipped, record.reason = "unregistered", "unregistered from this host"
            self._invalidate()

    def _invalidate(self) -> None:
        """Forget what the registration hooks returned (and the errors they raised), so the
        next use asks the plugins now loaded."""
        self._cache.clear()
        for record in self._records.values():
            record.provides = {}
            record.errors = [
                e for e in record.errors if not (e.hook or "").startswith(_CACHED_HOOK_PREFIX)
            ]

    # -- calling ---------------------------------------------------------------------------

    def _each(self, hook_name: str, **kwargs: object) -> None:
        """Call every implementation of ``hook_name``; a failing one is reported against its
        plugin, and the others are still called."""
        getattr(self.pm.hook, hook_name)(**kwargs)

    def _first(self, hook_name: str, **kwargs: object) -> Any:
        """A ``firstresult`` hook: the first answer its check accepts (a malformed one is
        reported against its plugin and pluggy asks the next)."""
        return getattr(self.pm.hook, hook_name)(**kwargs)

    def _report(self, plugin: str, hook: str, exc: BaseException) -> None:
        """A plugin failed in ``hook``: keep the error (a few per hook) and warn once per plugin,
        hook and kind of failure, on one line."""
        error = exc if isinstance(exc, PluginError) else PluginError(plugin, hook, exc)
        key = (plugin, hook, type(error.cause).__name__)
        with self._lock:
            record = self._records.get(plugin)
            if record is not None:
                same = sum(1 for e in record.errors if e.hook == hook)
                if same < MAX_ERRORS_PER_HOOK:
                    record.errors.append(error)
            if key in self._warned:
                return
            self._warned.add(key)
        text = describe_failure(error.cause, quote=hook not in _PATIENT_HOOKS)
        log.warning("plugin %r failed in hook %s: %s", plugin, hook, text)

    def _collect(
        self, hook_name: str, kind: str, accept: Callable[[str, T], None], **kwargs: object
    ) -> None:
        """Call a ``register``-style hook, keeping a failing implementation's output out.

        Registrations are accepted plugin by plugin in load order. ``accept(plugin, thing)``
        may raise to reject one registration (junk of the wrong type, a duplicate id); that is
        reported against the plugin, and the plugin's other registrations still count.
        """
        collector = _Collector()
        getattr(self.pm.hook, hook_name)(register=collector, **kwargs)
        late = len(self._order)
        batches = sorted(collector.batches, key=lambda batch: self._order.get(batch[0], late))
        for plugin, things in batches:
            for thing in things:
                # Checking a registration reads its attributes: a plugin's code may run.
                checking = PluginGuard(watch=False)
                with checking:
                    accept(plugin, thing)
                if checking.error is not None:
                    self._report(plugin, hook_name, checking.error)
                    continue
                record = self._records.get(plugin)
                if record is not None:
                    record.provides.setdefault(kind, []).append(_describe(thing))

    def _cached(self, key: str, build: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            cached: T = self._cache[key]  # each key is only ever built by one typed method
            return cached

    # -- one typed method per hook ----------------------------------------------------------

    def instruments(self) -> InstrumentRegistry:
        """Every registered instrument."""
        from pamlib.instruments import Instrument as InstrumentClass
        from pamlib.instruments import InstrumentRegistry

        def build() -> InstrumentRegistry:
            registry = InstrumentRegistry()

            def accept(plugin: str, instrument: Instrument) -> None:
                _expect(instrument, InstrumentClass, "an Instrument")
                registry.register(instrument)

            self._collect("pamlib_register_instruments", "instruments", accept)
            return registry

        return self._cached("instruments", build)

    def cutpoint_sets(self) -> CutpointRegistry:
        """Every registered cut-point set."""
        from pamlib.levels import CutpointRegistry, CutpointSet

        def build() -> CutpointRegistry:
            registry = CutpointRegistry()

            def accept(plugin: str, cutpoints: CutpointSet) -> None:
                _expect(cutpoints, CutpointSet, "a CutpointSet")
                registry.register(cutpoints)

            self._collect("pamlib_register_cutpoint_sets", "cut-point sets", accept)
            return registry

        return self._cached("cutpoint_sets", build)

    def _keyed(
        self, hook_name: str, kind: str, key: Callable[[T], str], **kwargs: object
    ) -> dict[str, T]:
        """Registrations of a hook by their id (the first wins; a clash is the later plugin's
        error)."""

        def build() -> dict[str, T]:
            found: dict[str, T] = {}

            def accept(plugin: str, thing: T) -> None:
                k = key(thing)
                if k in found:
                    raise PamlibError(f"{kind}: the id {k!r} is already taken")
                found[k] = thing

            self._collect(hook_name, kind, accept, **kwargs)
            return found

        return self._cached(hook_name, build)

    def scoring_providers(self) -> dict[str, ScoringProvider]:
        """Scoring providers by id (first registration of an id wins; clashes are reported).

        Each is checked to declare what :class:`~pamlib.scoring.provider.ScoringProvider`
        asks, with the right types; one that does not is reported and left out."""
        return self._keyed(
            "pamlib_register_scoring_providers", "scoring providers", _check_provider, host=self
        )

    def formats(self) -> dict[str, Format]:
        """Formats by name (each checked to be an input or output format)."""
        return self._keyed("pamlib_register_formats", "formats", _check_format)

    def pathways(self) -> dict[str, Pathway]:
        """Intervention pathways by id."""
        from pamlib.pathways import Pathway as PathwayClass

        def key(pathway: Pathway) -> str:
            _expect(pathway, PathwayClass, "a Pathway")
            return pathway.id

        return self._keyed("pamlib_register_pathways", "pathways", key)

    def rules(self) -> list[tuple[str, RuleSource]]:
        """Tailoring rule sources as (plugin name, rule file path or Python rule), unparsed;
        :func:`pamlib.tailoring.build_engine` reads and checks them."""

        def build() -> list[tuple[str, RuleSource]]:
            rules: list[tuple[str, RuleSource]] = []

            def accept(plugin: str, source: RuleSource) -> None:
                rules.append((plugin, source))

            self._collect("pamlib_register_rules", "rules", accept)
            return rules

        return self._cached("rules", build)

    def item_text(self, instrument: Instrument, language: str) -> Mapping[str, str] | None:
        """Licensed item wording from the first plugin that has it, else ``None``. An answer
        that is not a mapping of item id to text is reported and the next plugin asked."""
        answer: Mapping[str, str] | None = self._first(
            "pamlib_item_text", instrument=instrument, language=language
        )
        return answer

    def assessment_scored(self, assessment: Assessment, result: ScoreResult) -> None:
        """Tell every plugin that ``assessment`` was scored. An observer that fails, even with
        ``SystemExit``, is reported (a one-line warning, once) and the others still told; the
        result stands."""
        self._each("pamlib_assessment_scored", assessment=assessment, result=result)

    def batch_scored(self, instrument: Instrument, scores: BatchScores) -> None:
        """Tell every plugin that a batch was scored; failures are handled as in
        :meth:`assessment_scored` (and a plugin's own ``KeyboardInterrupt`` is contained too)."""
        self._each("pamlib_batch_scored", instrument=instrument, scores=scores)

    # -- introspection ---------------------------------------------------------------------

    def records(self) -> list[PluginRecord]:
        """Every plugin seen, loaded or not; asks each registration hook once first."""
        self.instruments()
        self.cutpoint_sets()
        self.scoring_providers()
        self.formats()
        self.pathways()
        self.rules()
        return list(self._records.values())

    @property
    def errors(self) -> list[PluginError]:
        return [e for r in self._records.values() for e in r.errors]

    # -- pickling --------------------------------------------------------------------------

    def _roster(self) -> tuple[tuple[str, str | None, bool], ...]:
        """(name, version, loaded) of every plugin seen, by name: what a rebuilt host must
        match."""
        return tuple(
            sorted((r.name, r.version, self.pm.has_plugin(r.name)) for r in self._records.values())
        )

    def __reduce__(self) -> tuple[Callable[..., PluginHost], tuple[object, ...]]:
        """Pickle by re-discovery: the plugins' names, versions and references, never their
        objects or caches. Unpickling builds a new host the same way and checks that it found
        the same plugins (:func:`_rebuild_host`); a plugin registered directly that another
        process cannot import is a :class:`~pamlib.errors.PluginError` here, naming it."""
        given = tuple(
            (name, *_reference(name, plugin)) for name, plugin in sorted(self._given.items())
        )
        disabled = tuple(sorted(self._disabled | self._removed))
        allowed = "*" if self._allowed is None else ",".join(sorted(self._allowed))
        return (
            _rebuild_host,
            (self._entry_points, disabled, given, self._roster(), allowed),
        )


def _plugin_error(name: str, cause: BaseException, message: str) -> PluginError:
    """A :class:`PluginError` for ``name`` whose text is ``message`` (not "while loading")."""
    error = PluginError(name, None, cause)
    error.args = (message,)
    return error


def _reference(name: str, plugin: object) -> tuple[str, str]:
    """(module, qualified name) that finds ``plugin`` again by import in another process
    (an empty name: the module itself), or a :class:`PluginError` saying why there is none."""
    if isinstance(plugin, types.ModuleType):
        module_name = plugin.__name__
        if sys.modules.get(module_name) is plugin and getattr(plugin, "__spec__", None):
            return module_name, ""
        why = f"the module {module_name!r} was not imported from a file; it cannot be found again"
    else:
        module = getattr(plugin, "__module__", None)
        qualname = getattr(plugin, "__qualname__", None)
        if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname:
            try:
                found = _resolve(module, qualname)
            except Exception:
                found = None
            if found is plugin:
                return module, qualname
        why = (
            f"it was registered directly as {_kind_of(plugin)}, which another process cannot "
            "import; register a module, or a class or function defined at module level, or "
            "install it as an entry point"
        )
    message = f"cannot pickle the plugin host: plugin {name!r}: {why}"
    raise _plugin_error(name, PamlibError(why), message)


def _resolve(module: str, qualname: str) -> object:
    found: object = importlib.import_module(module)
    for part in filter(None, qualname.split(".")):
        found = getattr(found, part)
    return found


_rebuilt: dict[tuple[object, ...], PluginHost] = {}
_rebuilt_lock = threading.Lock()


def _rebuild_host(
    load_entry_points: bool,
    disabled: tuple[str, ...],
    given: tuple[tuple[str, str, str], ...],
    roster: tuple[tuple[str, str | None, bool], ...],
    allowed: str = "*",
) -> PluginHost:
    """Unpickle a :class:`PluginHost`: discover plugins as the pickled host did and refuse
    (:class:`~pamlib.errors.PluginError`) unless the same ones, at the same versions, load.

    One host per pickled description per process: every object unpickled in a worker shares it,
    as objects in the sending process shared theirs."""
    key = (load_entry_points, disabled, given, roster, allowed)
    with _rebuilt_lock:
        host = _rebuilt.get(key)
        if host is not None:
            return host
        plugins: dict[str, object] = {}
        for name, module, qualname in given:
            try:
                plugins[name] = _resolve(module, qualname)
            except Exception as exc:
                target = f"{module}.{qualname}" if qualname else module
                raise _plugin_error(
                    name,
                    exc,
                    f"cannot unpickle the plugin host: plugin {name!r} ({target}) cannot be "
                    f"imported here: {describe_failure(exc)}",
                ) from exc
        host = PluginHost(
            load_entry_points=load_entry_points,
            disabled=disabled,
            plugins=plugins,
            allowed=allowed,
        )
        _check_roster(host._roster(), roster)
        _rebuilt[key] = host
        return host


def _check_roster(
    here: tuple[tuple[str, str | None, bool], ...],
    there: tuple[tuple[str, str | None, bool], ...],
) -> None:
    """Raise a :class:`PluginError` for the first plugin that differs between the host that
    was pickled (``there``) and the one rebuilt from it (``here``)."""
    now = {name: (version, loaded) for name, version, loaded in here}
    then = {name: (version, loaded) for name, version, loaded in there}
    for name in sorted(now.keys() | then.keys()):
        if now.get(name) == then.get(name):
            continue
        missing_here = name not in now or (name in then and then[name][1] and not now[name][1])
        if missing_here:
            why = "it is not installed, or failed to load, in this process"
        elif name not in then or not then[name][1]:
            why = "it is installed here but was not in the process that pickled the host"
        else:
            why = f"version {now[name][0]} here, {then[name][0]} where the host was pickled"
        raise _plugin_error(
            name, PamlibError(why), f"cannot unpickle the plugin host: plugin {name!r}: {why}"
        )


def _others_declare_plugins() -> bool:
    """Whether :func:`importlib.metadata.entry_points` may find, in the ``pamlib`` group, an
    entry point other than pamlib's own built-ins (which the host has loaded by then, and skips).

    Read as :mod:`importlib.metadata` reads it, without importing it: the ``entry_points.txt`` of
    every ``*.dist-info`` and ``*.egg-info`` folder in each :data:`sys.path` directory, its
    ``[pamlib]`` section's names. Whatever this cannot read the same way — a path entry that is
    a file (a zip), another finder of distributions, a file that is not UTF-8 or a line it
    cannot parse — counts as yes, and the host asks :mod:`importlib.metadata`, which reads it
    as before.
    """
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and hasattr(finder, "find_distributions"):
            return True
    builtins = frozenset(DEFAULT_PLUGINS)
    entries: list[object] = list(sys.path)  # typed as str, but a program may put anything there
    for entry in entries:
        if not isinstance(entry, str):
            return True
        root = entry or "."
        try:
            children = list(os.scandir(root))
        except OSError:
            if Path(root).is_file():
                return True
            continue
        egg = Path(root).name.lower().endswith(".egg")
        for child in children:
            low = child.name.lower()
            if not (low.endswith((".dist-info", ".egg-info")) or (egg and low == "egg-info")):
                continue
            try:  # a Path for each of a hundred distributions would double what this costs
                with open(f"{child.path}/entry_points.txt", "rb") as f:  # noqa: PTH123
                    data = f.read()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
                continue  # none, or unreadable: importlib.metadata skips it too
            except OSError:
                return True
            if b"pamlib" in data and _declares_others(data, builtins):
                return True
    return False


def _declares_others(data: bytes, builtins: frozenset[str]) -> bool:
    """Whether an ``entry_points.txt`` names, in its ``[pamlib]`` section, anything but
    ``builtins`` (parsed as :mod:`importlib.metadata` parses it; anything it could not parse the
    same way counts as yes)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    section = None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == hookspecs.PROJECT_NAME:
            name, sep, _ = line.partition("=")
            if not sep or name.strip() not in builtins:
                return True
    return False


_default_host: PluginHost | None = None
_default_lock = threading.Lock()


def get_host() -> PluginHost:
    """The process-wide host with every installed plugin, created on first use."""
    global _default_host  # noqa: PLW0603 - one lazily built host per process
    with _default_lock:
        if _default_host is None:
            _default_host = PluginHost()
        return _default_host


def reset_host(host: PluginHost | None = None) -> None:
    """Replace (or forget, with ``None``) the process-wide host — for tests and embedding."""
    global _default_host  # noqa: PLW0603
    with _default_lock:
        _default_host = host
