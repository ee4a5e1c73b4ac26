"""Finding, loading and calling plugins — the typed facade over pluggy.

Application code never touches ``pm.hook``: it asks a :class:`PluginHost` for instruments,
providers, formats and so on. The host calls each plugin's implementation on its own, so one
plugin that raises is reported by name (plugin and hook) and skipped, and cannot corrupt what the
others contribute.

Built-in behaviour is registered first, as default plugins going through the same hooks; then
every entry point in the ``pamlib`` group, one at a time. ``PAMLIB_DISABLE_PLUGINS`` (comma
separated names) switches plugins off, built-ins included.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import pluggy

from pamlib import hookspecs
from pamlib._version import __version__
from pamlib.errors import PamlibError, PluginError

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
    "DEFAULT_PLUGINS",
    "DISABLE_ENV",
    "PluginHost",
    "PluginRecord",
    "get_host",
    "reset_host",
]

log = logging.getLogger(__name__)

#: Environment variable naming plugins to skip (comma separated).
DISABLE_ENV = "PAMLIB_DISABLE_PLUGINS"

#: Modules holding pamlib's own hook implementations, registered before any installed plugin.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "pamlib.builtin.catalogue",
    "pamlib.scoring.raw_sum",
    "pamlib.scoring.rasch",
    "pamlib.scoring.demo",
    "pamlib.tailoring.catalogue",
    "pamlib.tailoring.default_rules",
    "pamlib.formats.delimited",
    "pamlib.formats.typed",
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
    disabled: bool = False

    @property
    def status(self) -> str:
        if self.disabled:
            return "disabled"
        if any(e.hook is None for e in self.errors):
            return "failed"
        return "error" if self.errors else "ok"


def _disabled_from_env() -> frozenset[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def _identity(obj: object) -> object:
    return obj


def _id(obj: Any) -> str:
    return str(obj.id)


def _name(obj: Any) -> str:
    return str(obj.name)


def _describe(obj: object) -> str:
    """A short name for a registered thing (its ``id`` or ``name``), for ``pamlib plugins``."""
    for attr in ("id", "name"):
        value = getattr(obj, attr, None)
        if isinstance(value, str):
            return value
    return str(obj) if isinstance(obj, str) else type(obj).__name__


class PluginHost:
    """The set of loaded plugins, and one typed method per hook.

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
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._disabled = _disabled_from_env() if disabled is None else frozenset(disabled)
        self._records: dict[str, PluginRecord] = {}
        self._cache: dict[str, Any] = {}
        self._lock = threading.RLock()
        for module_name in DEFAULT_PLUGINS:
            self._load(
                module_name, __version__, True, partial(importlib.import_module, module_name)
            )
        if load_entry_points:
            self._load_entry_points()
        for name, plugin in (plugins or {}).items():
            self._load(name, None, False, partial(_identity, plugin))

    # -- loading ---------------------------------------------------------------------------

    def _load(
        self, name: str, version: str | None, builtin: bool, get: Callable[[], object]
    ) -> None:
        record = PluginRecord(name=name, version=version, builtin=builtin)
        self._records[name] = record
        if name in self._disabled:
            record.disabled = True
            return
        try:
            plugin = get()
            self.pm.register(plugin, name=name)
        except Exception as exc:
            error = PluginError(name, None, exc)
            record.errors.append(error)
            log.warning("%s", error)
            return
        unknown = [
            impl.function.__name__
            for hook in self.pm.hook.__dict__.values()
            if isinstance(hook, pluggy.HookCaller) and not hook.has_spec()
            for impl in hook.get_hookimpls()
            if impl.plugin_name == name
        ]
        if unknown:
            self.pm.unregister(name=name)
            error = PluginError(name, None, PamlibError(f"unknown hooks: {', '.join(unknown)}"))
            record.errors.append(error)
            log.warning("%s", error)
            return
        record.hooks = sorted(
            caller.name for caller in self.pm.get_hookcallers(self.pm.get_plugin(name)) or []
        )

    def _load_entry_points(self) -> None:
        eps = importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME)
        for ep in sorted(eps, key=lambda e: e.name):
            if ep.name in self._records:
                continue
            version = ep.dist.version if ep.dist is not None else None
            dist_name = ep.dist.name if ep.dist is not None else None
            if dist_name is not None and dist_name in self._disabled:
                record = PluginRecord(name=ep.name, version=version, builtin=False, disabled=True)
                self._records[ep.name] = record
                continue
            self._load(ep.name, version, False, ep.load)

    # -- calling ---------------------------------------------------------------------------

    def _each(self, hook_name: str, **kwargs: object) -> Iterable[tuple[str, Any]]:
        """Call every implementation of ``hook_name`` alone; yield (plugin name, return value)."""
        caller: pluggy.HookCaller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            args = {name: kwargs[name] for name in impl.argnames}
            try:
                yield impl.plugin_name, impl.function(**args)
            except Exception as exc:
                self._report(impl.plugin_name, hook_name, exc)

    def _report(self, plugin: str, hook: str, exc: BaseException) -> None:
        error = exc if isinstance(exc, PluginError) else PluginError(plugin, hook, exc)
        record = self._records.get(plugin)
        if record is not None:
            record.errors.append(error)
        log.warning("%s", error)

    def _collect(
        self, hook_name: str, kind: str, accept: Callable[[str, T], None], **kwargs: object
    ) -> None:
        """Run a ``register``-style hook, plugin by plugin, keeping a failing plugin's output out.

        ``accept(plugin, thing)`` may raise to reject one registration (e.g. a duplicate id);
        that is reported against the plugin, and the plugin's other registrations still count.
        """
        caller: pluggy.HookCaller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            staged: list[T] = []
            args = {**kwargs, "register": staged.append}
            try:
                impl.function(**{name: args[name] for name in impl.argnames})
            except Exception as exc:
                self._report(impl.plugin_name, hook_name, exc)
                continue
            for thing in staged:
                try:
                    accept(impl.plugin_name, thing)
                except PamlibError as exc:
                    self._report(impl.plugin_name, hook_name, exc)
                    continue
                record = self._records.get(impl.plugin_name)
                if record is not None:
                    record.provides.setdefault(kind, []).append(_describe(thing))

    def _cached(self, key: str, build: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]  # type: ignore[no-any-return]

    # -- one typed method per hook ----------------------------------------------------------

    def instruments(self) -> InstrumentRegistry:
        """Every registered instrument."""
        from pamlib.instruments import InstrumentRegistry

        def build() -> InstrumentRegistry:
            registry = InstrumentRegistry()

            def accept(plugin: str, instrument: Instrument) -> None:
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
        """Scoring providers by id (first registration of an id wins; clashes are reported)."""
        return self._keyed("pamlib_register_scoring_providers", "scoring providers", _id, host=self)

    def formats(self) -> dict[str, Format]:
        """Formats by name."""
        return self._keyed("pamlib_register_formats", "formats", _name)

    def pathways(self) -> dict[str, Pathway]:
        """Intervention pathways by id."""
        return self._keyed("pamlib_register_pathways", "pathways", _id)

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
        """Licensed item wording from the first plugin that has it, else ``None``."""
        for _, text in self._each("pamlib_item_text", instrument=instrument, language=language):
            if text is not None:
                return dict(text)
        return None

    def assessment_scored(self, assessment: Assessment, result: ScoreResult) -> None:
        """Tell every plugin that ``assessment`` was scored."""
        for _ in self._each("pamlib_assessment_scored", assessment=assessment, result=result):
            pass

    def batch_scored(self, instrument: Instrument, scores: BatchScores) -> None:
        """Tell every plugin that a batch was scored."""
        for _ in self._each("pamlib_batch_scored", instrument=instrument, scores=scores):
            pass

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
