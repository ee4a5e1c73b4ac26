"""Fuzzing the plugin boundary: provider results, junk plugins, and new-plugin names.

Properties (each with a small, fixed budget):

- :func:`check_scores` raises nothing but :class:`~pamlib.errors.ScoringError`, refuses a batch
  exactly when an independent row-by-row reading of the rules finds a violation, and names the
  first offending row;
- :func:`check_result` (one result, a batch of one through the same rules as columns) and
  :func:`check_scores` (columns) give the same verdict on the same result;
- a scoring run through a provider that breaks at random either reconciles
  (``read = scored + not scored + rejected``, every input record in the output) or fails
  cleanly with nothing written;
- a host with plugins that register junk and raise anything answers every typed method;
- ``new-plugin`` names are accepted only when valid and shadowing nothing.

Inputs that once got through go, minimised, into ``corpus/plugins`` and are replayed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import sys
from collections.abc import Callable, Collection
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pamlib import Assessment, Patient
from pamlib.cli import UsageError, main
from pamlib.cli.new_plugin import check_name, dependency_modules
from pamlib.errors import PamlibError, ProviderResultError, ScoringError
from pamlib.hookspecs import hookimpl
from pamlib.instruments import BUILTIN_INSTRUMENTS, Instrument
from pamlib.plugins import PluginHost, reset_host
from pamlib.results import Flag, ScoreResult, ScoreStatus
from pamlib.scoring._selection import check_result, check_scores
from pamlib.scoring.demo import DemoProvider
from pamlib.scoring.provider import FLAG_BITS, BaseProvider, BatchScores, Licence
from tests.hostile.test_plugins import Registers

PAM13 = BUILTIN_INSTRUMENTS[0]
CORPUS = Path(__file__).parent / "corpus" / "plugins"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
HOST = PluginHost(load_entry_points=False, disabled=())
CUTPOINTS = HOST.cutpoint_sets()
DEMO_BIT = FLAG_BITS[Flag.DEMO]
RAW_ONLY_BIT = FLAG_BITS[Flag.RAW_ONLY]
ALL_BITS = sum(FLAG_BITS.values())


class Licensed(BaseProvider):
    """The provider results are checked against: licensed, not demo."""

    id = "vendor"
    version = "1"
    demo = False
    licence = Licence("Test Trust", frozenset({"PAM-13"}))

    def __init__(self, breaks: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.breaks = breaks

    def instruments(self) -> Collection[str]:
        return {"PAM-13"}

    def score_batch(self, instrument: Instrument, codes: npt.NDArray[np.int8]) -> BatchScores:
        fields = vendor_fields(codes)
        if self.breaks is not None:
            self.breaks(fields)
        return BatchScores(**fields)


def vendor_fields(codes: npt.NDArray[np.int8]) -> dict[str, Any]:
    """Valid results of :class:`Licensed` for ``codes``, as BatchScores fields (copies)."""
    batch = DemoProvider().score_batch(PAM13, codes)
    fields = {
        k: v.copy() if isinstance(v, np.ndarray) else v
        for k, v in attrs.asdict(batch, recurse=False).items()
    }
    fields.update(demo=False, provider="vendor", provider_version="1")
    fields["flags"] = fields["flags"] & ~np.uint8(DEMO_BIT)
    return fields


# -- an independent reading of the rules, one row at a time ----------------------------------


def violations(fields: dict[str, Any], n_rows: int) -> list[tuple[int | None, str]]:
    """Every (row, field) the contract is broken at; row ``None`` for the batch as a whole."""
    arrays = {k: np.asarray(v) for k, v in fields.items() if isinstance(v, np.ndarray)}
    if any(a.shape != (n_rows,) for a in arrays.values()):
        return [(None, "shape")]
    if fields["demo"]:
        return [(None, "demo")]
    cut = fields["cutpoint_set"]
    if cut and cut not in CUTPOINTS:
        return [(None, "cutpoint_set")]
    found: list[tuple[int | None, str]] = []
    for i in range(n_rows):
        row = {k: a[i].item() for k, a in arrays.items()}
        scored, n, raw, flags = row["scored"], row["n_answered"], row["raw_score"], row["flags"]
        score, level = row["score"], row["level"]

        def bad(field: str, i: int = i) -> None:
            found.append((i, field))

        if flags & ~ALL_BITS:
            bad("flags")
        if not 0 <= n <= 13:
            bad("n_answered")
        if not n <= raw <= 4 * n:
            bad("raw_score")
        for name in ("theta", "theta_se", "score", "score_se", "mean_response"):
            if math.isinf(row[name]):
                bad(name)
        if not math.isnan(row["mean_response"]) and not 1 <= row["mean_response"] <= 4:
            bad("mean_response")
        if scored and math.isnan(score) and not flags & RAW_ONLY_BIT:
            bad("score")
        if not math.isnan(score) and not 0 <= score <= 100:
            bad("score")
        for name in ("score_se", "theta_se"):
            if row[name] < 0:
                bad(name)
        if not scored and not math.isnan(score):
            bad("score")
        if not scored and level:
            bad("level")
        if bool(row["reason_code"]) == bool(scored):
            bad("reason_code")
        expected = 0
        if cut and not math.isnan(score):
            expected = int(CUTPOINTS.get(cut).level(score))
        if level != expected:
            bad("level")
    return found


_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "scored": st.booleans(),
    "n_answered": st.integers(-2, 16),
    "raw_score": st.integers(-5, 70),
    "mean_response": st.sampled_from([math.nan, 0.5, 1.0, 2.5, 4.0, 4.5, math.inf]),
    "theta": st.sampled_from([math.nan, -3.0, 0.0, 2.5, math.inf, -math.inf]),
    "theta_se": st.sampled_from([math.nan, 0.0, 0.4, -0.1, math.inf]),
    "score": st.sampled_from(
        [
            math.nan,
            0.0,
            47.0,
            47.04,
            47.05,
            55.1,
            55.15,
            67.0,
            67.05,
            100.0,
            100.01,
            -0.01,
            math.inf,
            -math.inf,
            1e300,
        ]
    ),
    "score_se": st.sampled_from([math.nan, 0.0, 3.1, -0.5, math.inf]),
    "level": st.integers(-1, 5),
    "flags": st.integers(0, 255),
    "reason_code": st.sampled_from(["", "too-few-answered", "x"]),
}


@st.composite
def broken_batches(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """Valid results for a few rows, then up to three cells (or batch fields) changed."""
    n = draw(st.integers(1, 6))
    codes = np.array(
        draw(st.lists(st.lists(st.integers(-1, 4), min_size=13, max_size=13),
                      min_size=n, max_size=n)),
        dtype=np.int8,
    )  # fmt: skip
    fields = vendor_fields(codes)
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from([*_VALUES, "cutpoint_set", "demo"]))
        if field == "cutpoint_set":
            fields[field] = draw(st.sampled_from([None, "current", "hibbard-2005", "unknown"]))
        elif field == "demo":
            fields[field] = draw(st.booleans())
        else:
            fields[field][draw(st.integers(0, n - 1))] = draw(_VALUES[field])
    return fields, n


def _verdict(run: Callable[[], object]) -> tuple[int | None, str] | None:
    """``None`` if ``run`` passes; else where the refusal points (a scoring error that is not
    about one field counts as the batch's)."""
    try:
        run()
    except ProviderResultError as exc:
        return (exc.row, exc.field)
    except ScoringError as exc:
        return (None, type(exc).__name__)
    return None


@FUZZ
@given(broken_batches())
def test_check_scores_refuses_exactly_what_breaks_the_rules(
    case: tuple[dict[str, Any], int],
) -> None:
    fields, n = case
    expected = violations(fields, n)
    verdict = _verdict(
        lambda: check_scores(
            BatchScores(**fields), PAM13, Licensed(), n_rows=n, cutpoints=CUTPOINTS
        )
    )
    if verdict is None:
        assert not expected, f"let through {expected}"
        return
    assert expected, f"refused a valid batch at {verdict}"
    row, _ = verdict
    if row is None:
        assert None in [r for r, _ in expected]
    else:
        assert row == min(r for r, _ in expected if r is not None), "the first offending row"
        assert verdict in expected


def _batch_from_result(result: ScoreResult) -> BatchScores:
    def nan(x: float | None) -> float:
        return math.nan if x is None else x

    return BatchScores(
        scored=[result.status is ScoreStatus.SCORED],
        n_answered=[result.n_answered],
        raw_score=[result.raw_score or 0],
        mean_response=[nan(result.mean_response)],
        theta=[nan(result.theta)],
        theta_se=[nan(result.theta_se)],
        score=[nan(result.score)],
        score_se=[nan(result.score_se)],
        level=[0 if result.level is None else int(result.level)],
        flags=[sum(FLAG_BITS[f] for f in result.flags)],
        reason_code=[result.reason_code or ""],
        cutpoint_set=result.cutpoint_set,
        demo=result.demo,
    )


@FUZZ
@given(broken_batches())
def test_one_result_and_a_batch_of_one_get_the_same_verdict(
    case: tuple[dict[str, Any], int],
) -> None:
    fields, n = case
    try:
        batch = BatchScores(**fields)
    except (OverflowError, ValueError):
        return
    provider = Licensed()
    for i in range(n):
        if not 0 <= batch.level[i] <= 4:
            continue  # not an ActivationLevel: cannot be a ScoreResult at all
        result = batch.result(i, f"a{i}")
        assessment = Assessment(f"a{i}", Patient("p"), PAM13, dt.date(2025, 1, 1), {})
        one = _verdict(partial(check_result, result, assessment, provider, cutpoints=CUTPOINTS))
        as_batch = _batch_from_result(result)
        many = _verdict(
            partial(check_scores, as_batch, PAM13, provider, n_rows=1, cutpoints=CUTPOINTS)
        )
        assert one == many


# -- a run through a provider that breaks at random reconciles or writes nothing -------------

HEADER = "patient_id,assessment_id,assessed_on,instrument," + ",".join(
    f"q{i:02d}" for i in range(1, 14)
)


@settings(FUZZ, max_examples=15)
@given(
    rows=st.lists(
        st.one_of(
            st.lists(st.sampled_from(["1", "2", "3", "4", "", "NA"]), min_size=13, max_size=13),
            st.just(["9"] * 13),  # rejected: out of range
        ),
        min_size=1,
        max_size=8,
    ),
    cell=st.none() | st.tuples(st.sampled_from(sorted(_VALUES)), st.integers(0, 7), st.data()),
)
def test_a_run_reconciles_or_writes_nothing(
    rows: list[list[str]], cell: tuple[str, int, st.DataObject] | None, tmp_path_factory: Any
) -> None:
    folder = tmp_path_factory.mktemp("run")
    lines = [HEADER] + [
        f"P{i},A{i},2024-01-01,PAM-13,{','.join(answers)}" for i, answers in enumerate(rows)
    ]
    (folder / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    breaks = None
    if cell is not None:
        field, row, data = cell
        value = data.draw(_VALUES[field])

        def breaks(fields: dict[str, Any]) -> None:
            if row < len(fields["scored"]):
                fields[field][row] = value

    reset_host(
        PluginHost(load_entry_points=False, disabled=(), plugins={"v": Registers(Licensed(breaks))})
    )
    try:
        argv = [
            "score",
            str(folder / "in.csv"),
            "--provider",
            "vendor",
            "-o",
            str(folder / "o.csv"),
        ]
        out, err = io.StringIO(), io.StringIO()
        real = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            status = main(argv)
        finally:
            sys.stdout, sys.stderr = real
    finally:
        reset_host(None)
    produced = sorted(p.name for p in folder.iterdir())
    nothing_scored = "none of the" in err.getvalue()  # exit 1, the files written all the same
    if status != 0 and not nothing_scored:
        assert status == 1, err.getvalue()
        assert "Traceback" not in err.getvalue()
        assert produced == ["in.csv"], "a refused run writes nothing"
        return
    last = err.getvalue().strip().splitlines()[-1]
    scored_rows = list(csv.DictReader(io.StringIO((folder / "o.csv").read_text(encoding="utf-8"))))
    rejects_path = folder / "o.rejects.csv"
    rejects = list(csv.DictReader(io.StringIO(rejects_path.read_text(encoding="utf-8"))))
    n_scored = sum(r["status"] == "scored" for r in scored_rows)
    n_not = len(scored_rows) - n_scored
    assert (
        last
        == f"read {len(rows)} = scored {n_scored} + not scored {n_not} + rejected {len(rejects)}"
    )
    assert len(scored_rows) + len(rejects) == len(rows), "every record is in the output or rejects"


# -- junk plugins: the host answers every typed method ---------------------------------------

_JUNK = st.sampled_from(
    [42, "x", None, b"\x00", object(), {"id": "a"}, [1], math.nan, Instrument, type]
)
_RAISED = st.sampled_from(
    [SystemExit(0), SystemExit("x"), KeyboardInterrupt(), GeneratorExit(), ValueError("v\nw"),
     RecursionError(), MemoryError(), PamlibError("p"), StopIteration(), Exception()]
)  # fmt: skip
_HOOKS = [
    "pamlib_register_instruments",
    "pamlib_register_cutpoint_sets",
    "pamlib_register_scoring_providers",
    "pamlib_register_formats",
    "pamlib_register_pathways",
]


def _junk_plugin(hook: str, junk: list[object], raised: BaseException | None) -> object:
    def impl(register: Callable[[object], None]) -> None:
        for thing in junk:
            register(thing)
        if raised is not None:
            raise raised

    impl.__name__ = hook
    return type("Junk", (), {hook: staticmethod(hookimpl(impl))})()


class Observer:
    def __init__(self, raised: BaseException) -> None:
        self.raised = raised

    @hookimpl
    def pamlib_batch_scored(self) -> None:
        raise self.raised

    @hookimpl
    def pamlib_item_text(self) -> object:
        raise self.raised


@settings(FUZZ, max_examples=40)
@example(plugins=[], observer=KeyboardInterrupt())  # found: item text hooks were not watched
@given(
    plugins=st.lists(
        st.tuples(st.sampled_from(_HOOKS), st.lists(_JUNK, max_size=3), st.none() | _RAISED),
        max_size=4,
    ),
    observer=st.none() | _RAISED,
)
def test_junk_plugins_never_break_the_host(
    plugins: list[tuple[str, list[object], BaseException | None]],
    observer: BaseException | None,
) -> None:
    objects: dict[str, object] = {
        f"junk-{i}": _junk_plugin(hook, junk, raised)
        for i, (hook, junk, raised) in enumerate(plugins)
    }
    if observer is not None:
        objects["observer"] = Observer(observer)
    host = PluginHost(load_entry_points=False, disabled=(), plugins=objects)
    records = host.records()
    assert {"raw-sum", "demo", "rasch"} <= set(host.scoring_providers())
    assert "PAM-13" in host.instruments()
    assert host.item_text(PAM13, "en") is None
    scores = DemoProvider().score_batch(PAM13, np.full((1, 13), 3, dtype=np.int8))
    host.batch_scored(PAM13, scores)
    assert all(r.status in ("ok", "error", "failed") for r in records)
    for error in host.errors:
        assert error.plugin in objects


# -- new-plugin names -------------------------------------------------------------------------


@settings(FUZZ, max_examples=150)
@given(
    st.one_of(
        st.text(max_size=45),
        st.from_regex(r"[a-z][a-z0-9]{0,12}(-[a-z0-9]{1,8}){0,2}", fullmatch=True),
        st.sampled_from(sorted(sys.stdlib_module_names)),
        st.sampled_from(sorted(dependency_modules())),
    )
)
def test_new_plugin_names_are_valid_and_shadow_nothing(name: str) -> None:
    try:
        accepted = check_name(name)
    except UsageError as exc:
        refusal: UsageError | None = exc
    else:
        refusal = None
    if refusal is not None:
        assert "\n" not in str(refusal), "one line"
        return
    module = accepted.replace("-", "_")
    assert module.isidentifier()
    assert module.isascii()
    assert module not in sys.stdlib_module_names
    assert module not in dependency_modules()
    assert module not in ("pamlib", "test", "tests")


# -- the corpus -------------------------------------------------------------------------------


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.json"))


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)
    return value


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.stem)
def test_corpus_inputs_are_refused_with_the_field_named(path: Path) -> None:
    """Each file: results a provider returned that once got written (numbers spelled as in
    JSON5: "NaN", "Infinity"), and the row and field the refusal must name."""
    case = json.loads(path.read_text(encoding="utf-8"))
    fields = {k: _decode(v) for k, v in case["fields"].items()}
    fields = {k: np.asarray(v) if isinstance(v, list) else v for k, v in fields.items()}
    n = len(fields["scored"])
    with pytest.raises(ProviderResultError) as info:
        check_scores(BatchScores(**fields), PAM13, Licensed(), n_rows=n, cutpoints=CUTPOINTS)
    assert (info.value.row, info.value.field) == (case["row"], case["field"])


def test_the_corpus_is_not_empty() -> None:
    assert len(_corpus()) >= 3
