"""The hooks a pamlib plugin can implement — the whole plugin API in one module.

A plugin is any module or object with functions decorated by :data:`hookimpl` whose names match
the specifications below. Install it as a package exposing an entry point in the ``pamlib`` group::

    [project.entry-points.pamlib]
    my_site = "my_site_plugin"

Most hooks hand the plugin a ``register`` callback instead of expecting a return value, so a
plugin may contribute any number of things and pamlib can tell which plugin contributed what.
Nothing here is ``firstresult`` unless exactly one answer may win.

Hooks are called through pluggy, with pluggy's semantics: ``tryfirst``/``trylast`` and
registration order decide the call order (the plugin loaded last is called first), a
``firstresult`` hook stops at the first answer that is not ``None``, and wrappers —
``@hookimpl(wrapper=True)`` generators, or old-style ``hookwrapper=True`` ones — run around the
other implementations, their registrations kept like anyone's. A wrapper that is not a generator
function, or a hook name no specification below has (unless ``optionalhook=True``), fails the
plugin at load time with a :class:`~pamlib.errors.PluginError` naming it. Registrations are
accepted in the order plugins were loaded — built-ins, entry points by name, plugins handed to
the host — so a plugin cannot take an id an earlier one registered, whatever order it is called
in.

Implementations may accept fewer arguments than the specification names (pluggy passes only the
ones asked for), which is how hooks gain arguments without breaking existing plugins.

Whatever a plugin raises — at import or in a hook, ``SystemExit`` and ``KeyboardInterrupt``
included — is reported naming the plugin and the hook, never ending pamlib; only a real Ctrl-C
still stops it. Each implementation (a wrapper's part before and after ``yield`` each) counts
only if it returns: one that raises is treated as having returned ``None`` and its registrations
are dropped. A plugin that fails to import, or implements no hook, is disabled. What a plugin
registers is checked for its type (an :class:`~pamlib.instruments.Instrument`, a
:class:`~pamlib.levels.CutpointSet`, a provider declaring what
:class:`~pamlib.scoring.provider.ScoringProvider` asks …); anything else is reported and ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pamlib.assessment import Assessment
    from pamlib.formats.base import Format
    from pamlib.instruments import Instrument
    from pamlib.levels import CutpointSet
    from pamlib.pathways import Pathway
    from pamlib.plugins import PluginHost
    from pamlib.results import ScoreResult
    from pamlib.scoring.provider import BatchScores, ScoringProvider
    from pamlib.tailoring.rules import RuleSource

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

#: The pluggy project name, also the entry-point group plugins are discovered from.
PROJECT_NAME = "pamlib"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Decorate plugin functions with this: ``@pamlib.hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def pamlib_register_instruments(register: Callable[[Instrument], None]) -> None:
    """Contribute instruments (structure only: ids, item ids, codes — never item wording).

    :param register: call once per :class:`~pamlib.instruments.Instrument`. Registering a
        different definition under an id already taken is reported as this plugin's error.
    """


@hookspec
def pamlib_register_cutpoint_sets(register: Callable[[CutpointSet], None]) -> None:
    """Contribute versioned cut-point sets that band 0–100 scores into activation levels.

    :param register: call once per :class:`~pamlib.levels.CutpointSet`.
    """


@hookspec
def pamlib_register_scoring_providers(
    register: Callable[[ScoringProvider], None], host: PluginHost
) -> None:
    """Contribute scoring providers — the hook a vendor's licensed scoring plugin implements.

    :param register: call once per object satisfying
        :class:`~pamlib.scoring.provider.ScoringProvider`. Provider ids must be unique across all
        installed plugins; a clash is reported and the later registration ignored.
    :param host: the :class:`~pamlib.plugins.PluginHost` asking, for providers that need the
        registered instruments or cut-point sets (optional: leave it out of your signature if
        you do not).

    A provider that is not licensed to produce PAM scores must say so: ``licence = None`` and
    either ``demo = True`` or results flagged ``raw-only``.

    Every result a provider returns is checked before anything is written
    (``check_scores``): one value per row, finite, on the 0–100
    scale, standard errors not negative, levels those of the score at the declared cut-point
    set, nothing scored where not scored. A violation, or any exception the provider raises,
    stops the run with a :class:`~pamlib.errors.ScoringError` naming the provider.
    """


@hookspec
def pamlib_register_formats(register: Callable[[Format], None]) -> None:
    """Contribute input and/or output formats (CSV, Parquet, FHIR … are built in this way).

    :param register: call once per :class:`~pamlib.formats.base.Format`.
    """


@hookspec
def pamlib_register_pathways(register: Callable[[Pathway], None]) -> None:
    """Contribute intervention pathways that tailoring rules may recommend.

    :param register: call once per :class:`~pamlib.pathways.Pathway`. Ids must be unique across
        all plugins (a clash is reported and the later one ignored) and fit in a ``;``-separated
        column: letters, digits and ``. _ : -``. Give a coded concept only with a code your
        organisation has verified.
    """


@hookspec
def pamlib_register_rules(register: Callable[[RuleSource], None]) -> None:
    """Contribute tailoring rules: rule files and Python rules, evaluated together.

    :param register: call with the path of a TOML rule file (see the *Tailoring* docs), or with
        a Python rule — an object with ``id``, ``priority``, ``reason`` and
        ``evaluate(context) -> list[action] | None`` (:class:`pamlib.tailoring.Rule`), most
        easily made with the :func:`pamlib.tailoring.rule` decorator. Rule ids must be unique
        across everything registered.

    Files are read and checked when an engine is built, not here; any problem in them, or an
    exception in this hook, stops tailoring with an error naming the plugin — recommendations
    are never made with part of a site's rules missing. pamlib's default rules are registered
    the same way, by the built-in plugin ``pamlib.tailoring.default_rules``.
    """


@hookspec(firstresult=True)
def pamlib_item_text(instrument: Instrument, language: str) -> Mapping[str, str] | None:
    """Licensed item wording for ``instrument`` in ``language``, keyed by item id.

    Only a licensed provider can answer; pamlib never ships item text. The first plugin to
    return a mapping wins (``firstresult``). Return ``None`` to let others answer; with no
    answer, outputs such as FHIR Questionnaires use neutral placeholder text.
    """


@hookspec
def pamlib_assessment_scored(assessment: Assessment, result: ScoreResult) -> None:
    """Lifecycle event: ``assessment`` was scored one at a time through the object API.

    For auditing or notification. Anything raised (``SystemExit`` too) is reported against the
    plugin — a one-line warning, once — and does not change the result; the other plugins are
    still told. Must not log patient identifiers.
    """


@hookspec
def pamlib_batch_scored(instrument: Instrument, scores: BatchScores) -> None:
    """Lifecycle event: a batch of ``instrument`` assessments was scored through the columns.

    Called once per batch (chunk), after the provider's results are checked and before they are
    written. ``scores`` is read-only: an observer cannot change what is written. Anything raised
    (``SystemExit`` and ``KeyboardInterrupt`` too) is reported against the plugin — a one-line
    warning, once per run — and the run goes on.

    On Spark (:mod:`pamlib.spark`) it is called in the executors' Python workers, not on the
    driver, and at least once per batch: a task that Spark retries or runs speculatively scores
    its batches again and calls it again. Count or publish from the job's output
    (:meth:`~pamlib.spark.SparkRun.summary`), not from this hook, or make what it does
    idempotent.
    """
