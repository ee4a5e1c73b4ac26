"""The plugin host keeps pluggy's own semantics — implementation order, ``firstresult``,
wrappers — while still isolating each plugin's failures; the allow-list, the disable list and
registering or removing plugins at run time."""

from __future__ import annotations

import pickle
import textwrap
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, cast

import pluggy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pamlib.cli import main
from pamlib.errors import PluginError
from pamlib.hookspecs import hookimpl
from pamlib.instruments import BUILTIN_INSTRUMENTS
from pamlib.pathways import Pathway
from pamlib.plugins import PluginHost, reset_host

PAM13 = BUILTIN_INSTRUMENTS[0]
Register = Callable[[Pathway], None]


def bare(**plugins: object) -> PluginHost:
    return PluginHost(load_entry_points=False, disabled=(), plugins=plugins)


def pathway(pid: str) -> Pathway:
    return Pathway(pid, pid.replace("-", " ").capitalize())


# -- wrappers --------------------------------------------------------------------------------


class NewStyleWrapper:
    @hookimpl(wrapper=True)
    def pamlib_register_pathways(self, register: Register) -> Generator[None, Any, Any]:
        register(pathway("before-yield"))
        result = yield
        register(pathway("after-yield"))
        return result


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def pamlib_register_pathways(self, register: Register) -> Generator[None, Any, None]:
        register(pathway("old-style"))
        yield


class Plain:
    @hookimpl
    def pamlib_register_pathways(self, register: Register) -> None:
        register(pathway("plain"))


def test_a_wrappers_registrations_are_kept() -> None:
    host = bare(new=NewStyleWrapper(), old=OldStyleWrapper(), plain=Plain())
    assert {"before-yield", "after-yield", "old-style", "plain"} <= set(host.pathways())
    statuses = {r.name: (r.status, r.provides) for r in host.records() if not r.builtin}
    assert statuses == {
        "new": ("ok", {"pathways": ["before-yield", "after-yield"]}),
        "old": ("ok", {"pathways": ["old-style"]}),
        "plain": ("ok", {"pathways": ["plain"]}),
    }


class FailingTeardown:
    @hookimpl(wrapper=True)
    def pamlib_register_pathways(self, register: Register) -> Generator[None, Any, Any]:
        register(pathway("kept-from-setup"))
        yield
        register(pathway("lost-in-teardown"))
        raise RuntimeError("teardown broke")


class NeverYields:
    stop = True

    @hookimpl(wrapper=True)
    def pamlib_register_pathways(self, register: Register) -> Generator[None, Any, Any]:
        register(pathway("never-yielded"))
        if self.stop:  # a generator function that returns before its yield
            return None
        yield


class Twice:
    @hookimpl(wrapper=True)
    def pamlib_register_pathways(self, register: Register) -> Generator[None, Any, Any]:
        yield
        register(pathway("yielded-twice"))
        yield


class NotAGenerator:
    @hookimpl(wrapper=True)
    def pamlib_register_pathways(self, register: Register) -> None:
        register(pathway("not-a-generator"))


def test_a_failing_wrapper_is_isolated_and_named() -> None:
    host = bare(teardown=FailingTeardown(), never=NeverYields(), twice=Twice(), plain=Plain())
    pathways = set(host.pathways())
    assert {"kept-from-setup", "plain"} <= pathways
    assert not {"lost-in-teardown", "never-yielded", "yielded-twice"} & pathways
    failed = sorted((e.plugin, e.hook) for e in host.errors)
    assert failed == [
        ("never", "pamlib_register_pathways"),
        ("teardown", "pamlib_register_pathways"),
        ("twice", "pamlib_register_pathways"),
    ]
    assert "teardown broke" in str(next(e for e in host.errors if e.plugin == "teardown"))


def test_a_wrapper_that_is_not_a_generator_is_refused_at_load() -> None:
    host = bare(odd=NotAGenerator(), plain=Plain())
    record = next(r for r in host.records() if r.name == "odd")
    assert record.status == "failed"
    (error,) = record.errors
    assert isinstance(error, PluginError)
    assert error.plugin == "odd"
    assert "generator" in str(error)
    assert "plain" in host.pathways()


# -- order -----------------------------------------------------------------------------------

OPTIONS = ("plain", "tryfirst", "trylast")


def mark(option: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return hookimpl(tryfirst=option == "tryfirst", trylast=option == "trylast")


def observer(name: str, calls: list[str], option: str) -> object:
    class Observer:
        @mark(option)
        def pamlib_batch_scored(self) -> None:
            calls.append(name)

    return Observer()


def pluggy_order(options: list[str]) -> list[int]:
    """The order pluggy calls implementations in: ``tryfirst`` ones, then plain, then
    ``trylast``; the last registered is called first, except among ``trylast`` ones (each new
    one goes to the very end)."""
    rank = {"tryfirst": 0, "plain": 1, "trylast": 2}
    return sorted(
        range(len(options)),
        key=lambda i: (rank[options[i]], i if options[i] == "trylast" else -i),
    )


def test_tryfirst_and_trylast_are_honoured() -> None:
    calls: list[str] = []
    options = ["trylast", "plain", "tryfirst", "plain"]
    host = bare(**{f"p{i}": observer(f"p{i}", calls, o) for i, o in enumerate(options)})
    host.batch_scored(PAM13, cast(Any, None))
    assert calls == ["p2", "p3", "p1", "p0"]


@given(st.lists(st.sampled_from(sorted(OPTIONS)), min_size=1, max_size=6))
def test_call_order_is_pluggys(options: list[str]) -> None:
    calls: list[str] = []
    host = bare(**{f"p{i}": observer(f"p{i}", calls, o) for i, o in enumerate(options)})
    host.batch_scored(PAM13, cast(Any, None))
    assert calls == [f"p{i}" for i in pluggy_order(options)]


def registrar(pid: str, option: str, *, fails: bool = False) -> object:
    class Registrar:
        @mark(option)
        def pamlib_register_pathways(self, register: Register) -> None:
            register(pathway(pid))
            if fails:
                raise ValueError("after registering")

    return Registrar()


@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(OPTIONS)), st.booleans(), st.booleans()),
        min_size=1,
        max_size=6,
    )
)
def test_registrations_are_taken_in_load_order_and_failures_leave_nothing(
    plugins: list[tuple[str, bool, bool]],
) -> None:
    # (call option, fails, clashes with the first plugin's id)
    ids = ["shared" if clash else f"own-{i}" for i, (_, _, clash) in enumerate(plugins)]
    host = bare(
        **{
            f"p{i}": registrar(ids[i], option, fails=fails)
            for i, (option, fails, _) in enumerate(plugins)
        }
    )
    found = [p for p in host.pathways() if p == "shared" or p.startswith("own-")]
    ok = [i for i, (_, fails, _) in enumerate(plugins) if not fails]
    expected: dict[str, int] = {}
    for i in ok:
        expected.setdefault(ids[i], i)
    assert found == list(expected)  # load order, whatever order pluggy called them in
    provides = {r.name: r.provides for r in host.records() if not r.builtin}
    assert {n for n, p in provides.items() if p} == {f"p{i}" for i in expected.values()}
    failed = {e.plugin for e in host.errors}
    clashed = {f"p{i}" for i in ok if i not in expected.values()}
    assert failed == {f"p{i}" for i, (_, fails, _) in enumerate(plugins) if fails} | clashed


# -- firstresult -----------------------------------------------------------------------------


def text_plugin(answer: object, asked: list[str], name: str, option: str = "plain") -> object:
    class Text:
        @mark(option)
        def pamlib_item_text(self, language: str) -> object:
            asked.append(name)
            if isinstance(answer, BaseException):
                raise answer
            return answer

    return Text()


def test_firstresult_stops_at_the_first_accepted_answer() -> None:
    asked: list[str] = []
    host = bare(
        last=text_plugin({"pam13.01": "never asked"}, asked, "last", "trylast"),
        winner=text_plugin({"pam13.01": "synthetic wording"}, asked, "winner"),
        junk=text_plugin(42, asked, "junk"),
        raising=text_plugin(RuntimeError("no text"), asked, "raising"),
        silent=text_plugin(None, asked, "silent", "tryfirst"),
    )
    assert host.item_text(PAM13, "en") == {"pam13.01": "synthetic wording"}
    assert asked == ["silent", "raising", "junk", "winner"]
    assert sorted(e.plugin for e in host.errors) == ["junk", "raising"]


class Overriding:
    @hookimpl(wrapper=True)
    def pamlib_item_text(self) -> Generator[None, Any, Any]:
        answer = yield
        return {**(answer or {}), "pam13.02": "from the wrapper"}


class OverridingWithJunk:
    @hookimpl(wrapper=True)
    def pamlib_item_text(self) -> Generator[None, Any, Any]:
        yield
        return ["not", "a", "mapping"]


class ForcingOldStyle:
    @hookimpl(hookwrapper=True)
    def pamlib_item_text(self) -> Generator[None, Any, None]:
        outcome: pluggy.Result[Any] = yield
        outcome.force_result(123)


def test_a_wrapper_may_change_a_firstresult_answer_but_junk_is_refused() -> None:
    asked: list[str] = []
    answer = {"pam13.01": "synthetic"}
    host = bare(text=text_plugin(answer, asked, "text"), wrapper=Overriding())
    assert host.item_text(PAM13, "en") == {**answer, "pam13.02": "from the wrapper"}
    for junk in (OverridingWithJunk(), ForcingOldStyle()):
        host = bare(text=text_plugin(answer, asked, "text"), junk=junk)
        assert host.item_text(PAM13, "en") == answer
        assert [(e.plugin, e.hook) for e in host.errors] == [("junk", "pamlib_item_text")]


# -- loading ---------------------------------------------------------------------------------


class UnknownHook:
    @hookimpl
    def pamlib_register_widgets(self, register: Register) -> None:
        raise AssertionError("never called")


class OptionalUnknownHook:
    @hookimpl(optionalhook=True)
    def pamlib_some_future_hook(self) -> None:
        raise AssertionError("never called")


def test_check_pending_names_the_plugin_and_the_unknown_hook() -> None:
    host = bare(odd=UnknownHook(), future=OptionalUnknownHook())
    statuses = {r.name: r for r in host.records() if not r.builtin}
    assert statuses["future"].status == "ok"  # pluggy lets optional hooks wait for a spec
    odd = statuses["odd"]
    assert odd.status == "failed"
    text = str(odd.errors[0])
    assert "'odd'" in text
    assert "pamlib_register_widgets" in text
    assert not host.pm.has_plugin("odd")


def test_the_same_plugin_object_twice_is_refused() -> None:
    plugin = Plain()
    host = bare(first=plugin, second=plugin)
    second = next(r for r in host.records() if r.name == "second")
    assert second.status == "failed"
    assert "'first'" in str(second.errors[0])


# -- allow-list and disable list -------------------------------------------------------------


def make_distribution(root: Path, name: str, pid: str) -> None:
    module = name.replace("-", "_")
    source = f"""
        import pamlib
        from pamlib.pathways import Pathway

        @pamlib.hookimpl
        def pamlib_register_pathways(register):
            register(Pathway({pid!r}, "Synthetic"))
    """
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[pamlib]\n{name} = {module}\n", encoding="utf-8")


@pytest.fixture
def two_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PAMLIB_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("PAMLIB_PLUGINS", raising=False)
    make_distribution(tmp_path, "site-one", "one-path")
    make_distribution(tmp_path, "site-two", "two-path")
    return tmp_path


def test_the_allow_list_loads_only_the_entry_points_it_names(
    two_installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAMLIB_PLUGINS", "site-one")
    host = PluginHost(plugins={"handed-over": Plain()})
    assert {"one-path", "plain"} <= set(host.pathways())
    assert "two-path" not in host.pathways()
    records = {r.name: r for r in host.records()}
    assert records["site-two"].status == "not-allowed"
    assert "PAMLIB_PLUGINS" in (records["site-two"].reason or "")
    assert records["pamlib.scoring.raw_sum"].status == "ok"  # built-ins always load
    assert "raw-sum" in host.scoring_providers()


@pytest.mark.parametrize(
    ("allow", "loaded"),
    [
        ("", set()),
        ("*", {"one-path", "two-path"}),
        ("site-two , site-one", {"one-path", "two-path"}),
    ],
)
def test_the_allow_list_forms(
    two_installed: Path, monkeypatch: pytest.MonkeyPatch, allow: str, loaded: set[str]
) -> None:
    monkeypatch.setenv("PAMLIB_PLUGINS", allow)
    assert {"one-path", "two-path"} & set(PluginHost().pathways()) == loaded


def test_disable_beats_allow(two_installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAMLIB_PLUGINS", "site-one,site-two")
    monkeypatch.setenv("PAMLIB_DISABLE_PLUGINS", "site-one")
    host = PluginHost()
    records = {r.name: r for r in host.records()}
    assert (records["site-one"].status, records["site-two"].status) == ("disabled", "ok")
    assert "PAMLIB_DISABLE_PLUGINS" in (records["site-one"].reason or "")


def test_the_command_says_why_a_plugin_was_not_loaded(
    two_installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reset_host(PluginHost(allowed="site-one"))
    try:
        assert main(["plugins"]) == 0
    finally:
        reset_host(None)
    out = capsys.readouterr().out
    assert "site-two 1.0 (installed) — not-allowed" in out
    assert "not loaded: not named in the allow-list (PAMLIB_PLUGINS)" in out


def test_the_allow_list_survives_pickling(two_installed: Path) -> None:
    host = PluginHost(allowed="site-two")
    clone = pickle.loads(pickle.dumps(host))  # noqa: S301 - our own pickle
    assert "one-path" not in clone.pathways()
    assert "two-path" in clone.pathways()


# -- registering and removing ----------------------------------------------------------------


def test_caches_follow_registration_and_removal() -> None:
    host = bare()
    assert "plain" not in host.pathways()
    record = host.register(Plain(), name="late")
    assert record.status == "ok"
    assert "plain" in host.pathways()
    host.records()
    host.records()
    assert record.provides == {"pathways": ["plain"]}  # asked again, listed once
    host.unregister("late")
    assert "plain" not in host.pathways()
    assert "late" not in {r.name for r in host.records()}
    host.unregister("pamlib.scoring.raw_sum")
    assert "raw-sum" not in host.scoring_providers()
    removed = next(r for r in host.records() if r.name == "pamlib.scoring.raw_sum")
    assert removed.status == "unregistered"
    clone = pickle.loads(pickle.dumps(host))  # noqa: S301 - our own pickle
    assert "raw-sum" not in clone.scoring_providers()


def test_registering_a_taken_name_or_removing_an_unknown_one_is_a_plugin_error() -> None:
    host = bare(plain=Plain())
    with pytest.raises(PluginError, match="'plain'"):
        host.register(Plain(), name="plain")
    with pytest.raises(PluginError, match="'nothing'"):
        host.unregister("nothing")


def test_a_failing_plugin_registered_late_is_reported_and_the_rest_still_works() -> None:
    host = bare()
    host.pathways()
    record = host.register(registrar("half", "plain", fails=True), name="half")
    assert record.status == "ok"  # loads fine; fails when called
    assert "half" not in host.pathways()
    assert record.status == "error"
    assert [(e.plugin, e.hook) for e in host.errors] == [("half", "pamlib_register_pathways")]
    assert "PAM-13" in host.instruments()
