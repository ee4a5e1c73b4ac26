"""Conformance tests for a plugin that registers tailoring rules (files and Python rules).

Subclass :class:`RulesConformance` and provide a ``plugin`` fixture returning the plugin — the
module (or object) holding your ``@pamlib.hookimpl`` functions::

    import pytest
    import my_site_plugin
    from pamlib.testing import RulesConformance

    class TestMySiteRules(RulesConformance):
        @pytest.fixture
        def plugin(self):
            return my_site_plugin

The plugin is loaded beside pamlib's built-in plugins only (not other installed ones), as it is
when installed. What is checked: it loads and registers rules without an error; each rule file
it registers exists (shipped as package data) and is valid; every rule builds into one engine
with pamlib's defaults (ids unique, pathways known); its ids are its own (not ``pamlib.``) and
every rule gives a reason; and evaluation over generated contexts is deterministic — the same
outcome twice, from a fresh engine, in any order, and through the columnar path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.plugins import PluginHost
from pamlib.tailoring._conditions import Conditions
from pamlib.tailoring.columns import ContextColumns
from pamlib.tailoring.context import Context
from pamlib.tailoring.engine import Engine, build_engine
from pamlib.tailoring.rules import FileRule, Rule, load_rules
from pamlib.testing.strategies import KIT_SETTINGS, contexts

__all__ = ["RulesConformance"]

#: The prefix of pamlib's own rule ids; a site's rules use their own.
RESERVED_PREFIX = "pamlib."


class _Vocabulary:
    """Values the plugin's rule files compare against, so generated contexts hit them."""

    def __init__(self, rules: Sequence[Rule], extra: Mapping[str, Sequence[str]]) -> None:
        self.attributes: dict[str, set[str]] = {k: set(v) for k, v in extra.items()}
        self.sites: set[str] = set()
        self.languages: set[str] = set()
        self.instruments: set[str] = set()
        for rule in rules:
            if isinstance(rule, FileRule):
                self._add(rule.when)
                if rule.unless is not None:
                    self._add(rule.unless)

    def _add(self, conditions: Conditions) -> None:
        self.sites |= conditions.site or set()
        self.languages |= conditions.language or set()
        self.instruments |= conditions.instrument or set()
        for name, test in conditions.attributes:
            self.attributes.setdefault(name, set()).update(test.values or {"yes"})

    def strategy(self) -> st.SearchStrategy[Context]:
        return contexts(
            attributes={k: sorted(v) for k, v in self.attributes.items()},
            sites=self.sites,
            languages=self.languages,
            instruments=self.instruments,
        )


def _rules_of(host: PluginHost, plugin_name: str) -> list[Rule]:
    found: list[Rule] = []
    for plugin, source in host.rules():
        if plugin != plugin_name:
            continue
        if isinstance(source, str | os.PathLike):
            found.extend(load_rules(source).rules)
        else:
            found.append(source)
    return found


class RulesConformance:
    """The contract of a rules plugin, as tests. Override ``plugin`` (required)."""

    @pytest.fixture
    def plugin(self) -> object:
        raise NotImplementedError("define a 'plugin' fixture returning your plugin module")

    @pytest.fixture
    def plugin_name(self, plugin: object) -> str:
        """The name the plugin is registered under (its module name by default)."""
        return str(getattr(plugin, "__name__", type(plugin).__name__))

    @pytest.fixture
    def context_attributes(self) -> Mapping[str, Sequence[str]]:
        """Attribute values your Python rules look at, by attribute name, for generated
        contexts (the values rule files compare against are found automatically)."""
        return {}

    @pytest.fixture
    def rules_host(self, plugin: object, plugin_name: str) -> PluginHost:
        """pamlib's built-in plugins and yours, passed to what the tests call (never installed
        as the process-wide host)."""
        return PluginHost(load_entry_points=False, disabled=(), plugins={plugin_name: plugin})

    @pytest.fixture
    def engine(self, rules_host: PluginHost) -> Engine:
        return build_engine(host=rules_host)

    @pytest.fixture
    def plugin_rules(self, rules_host: PluginHost, plugin_name: str) -> list[Rule]:
        return _rules_of(rules_host, plugin_name)

    # -- loading ---------------------------------------------------------------------------

    def test_plugin_loads_cleanly(self, rules_host: PluginHost, plugin_name: str) -> None:
        records = {r.name: r for r in rules_host.records()}
        record = records[plugin_name]
        assert not record.errors, [str(e) for e in record.errors]
        assert record.status == "ok"
        assert "pamlib_register_rules" in record.hooks, "implement pamlib_register_rules"
        assert record.provides.get("rules"), "the plugin registers at least one rule source"

    def test_rule_files_exist(self, rules_host: PluginHost, plugin_name: str) -> None:
        for plugin, source in rules_host.rules():
            if plugin == plugin_name and isinstance(source, str | os.PathLike):
                assert Path(source).is_file(), f"{source}: ship rule files as package data"
                load_rules(source)  # every problem at once, naming the file, rule and field

    def test_rules_build_with_pamlibs_defaults(
        self, engine: Engine, plugin_rules: list[Rule]
    ) -> None:
        assert plugin_rules, "the plugin registers at least one rule"
        ids = {r.id for r in engine.rules}
        assert {r.id for r in plugin_rules} <= ids

    def test_rule_ids_are_the_plugins_own(self, plugin_rules: list[Rule]) -> None:
        for rule in plugin_rules:
            assert not rule.id.startswith(RESERVED_PREFIX), f"{rule.id}: 'pamlib.' is pamlib's"
            assert rule.reason.strip(), f"{rule.id}: say why the rule exists"
            assert isinstance(rule.priority, int)

    # -- evaluation ------------------------------------------------------------------------

    @KIT_SETTINGS
    @given(data=st.data())
    def test_evaluation_is_deterministic(
        self,
        engine: Engine,
        plugin_rules: list[Rule],
        context_attributes: Mapping[str, Sequence[str]],
        data: st.DataObject,
    ) -> None:
        strategy = _Vocabulary(plugin_rules, context_attributes).strategy()
        batch = data.draw(st.lists(strategy, min_size=1, max_size=8), label="contexts")
        outcomes = [engine.evaluate(c) for c in batch]
        assert [engine.evaluate(c) for c in batch] == outcomes, "same facts, same outcome"
        assert engine.evaluate_many(batch[::-1]) == outcomes[::-1], "order does not matter"
        reordered = Engine(reversed(engine.rules), engine.pathways, sources=engine.sources)
        assert [reordered.evaluate(c) for c in batch] == outcomes
        columns = engine.evaluate_columns(ContextColumns.from_contexts(batch))
        assert columns == outcomes, "the columnar path agrees with one at a time"
        for context in batch:
            assert engine.explain(context) == engine.explain(context)
