"""Coverage-guided fuzzing of one input surface with atheris (``make fuzz`` runs every surface).

Usage, from the repository root, with the project's virtualenv (``make fuzz`` installs atheris)::

    python fuzz/run.py SURFACE [--seconds N] [--work DIR] [-- LIBFUZZER_FLAGS...]
    python fuzz/run.py SURFACE --minimise CRASH_FILE [-- -max_total_time=60]
    python fuzz/run.py SURFACE --replay FILE...

SURFACE is a folder name under ``tests/fuzz/corpus/`` (csv, fhir, calibration, rules, mapping,
fhir-mapping). The harness is the same ``check(data: bytes)`` function the corpus replay test calls
(:mod:`tests.fuzz.harnesses`). A run starts from the committed corpus (less the inputs known to
fail until their fix lands) and keeps what it learns in ``DIR/corpus/SURFACE``. It does not stop
at the first failure: each *distinct* failure (exception type and where it was raised) is
written once, smallest input first, to ``DIR/crashes/SURFACE/`` and reported on stderr; an input
that hangs longer than 30 s ends the run with a ``timeout-…`` file there. See fuzz/README.md for
what to do with them.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import pkgutil
import re
import shlex
import shutil
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz" / "corpus"


def _atheris() -> ModuleType:
    try:
        return importlib.import_module("atheris")
    except ImportError:
        sys.exit("fuzz/run.py needs atheris: run 'make fuzz' (it installs atheris in the venv)")


def _import_instrumented(atheris: ModuleType) -> None:
    """Import every pamlib module under atheris' coverage instrumentation (pamlib imports
    lazily, so a module first imported while fuzzing would otherwise go unseen)."""
    with atheris.instrument_imports(include=["pamlib"]):
        import pamlib

        for info in pkgutil.walk_packages(pamlib.__path__, "pamlib."):
            if ".templates" in info.name or info.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # an optional part (a missing extra) stays out
                print(f"fuzz: not instrumenting {info.name}: {exc}", file=sys.stderr)


def _seeds(surface: str, work: Path) -> Path:
    """The working corpus: the committed inputs that pass today, plus what earlier runs kept."""
    from tests.fuzz.test_corpus_replay import KNOWN_FAILURES

    folder = work / "corpus" / surface
    folder.mkdir(parents=True, exist_ok=True)
    for file in sorted((CORPUS / surface).iterdir()):
        if file.is_file() and f"{surface}/{file.name}" not in KNOWN_FAILURES:
            shutil.copyfile(file, folder / file.name)
    return folder


def signature(exc: BaseException) -> str:
    """What makes two failures the same: the root exception's type and the innermost pamlib
    frame it passed through (or, for an invariant the harness checked itself, its wording)."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    frames = traceback.extract_tb(root.__traceback__)
    ours = [f for f in frames if "/pamlib/" in f.filename.replace("\\", "/")]
    if ours:
        where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}"
        return f"{type(root).__name__} at {where}"
    text = re.sub(r"[0-9]+", "N", str(exc).split(":", 1)[0])[:80]
    return f"{type(root).__name__}: {text}"


class Collector:
    """The function atheris calls: runs the harness and keeps one input per distinct failure."""

    def __init__(
        self, check: Callable[[bytes], None], crashes: Path, known: dict[str, str]
    ) -> None:
        self.check = check
        self.crashes = crashes
        self.known = known
        self.sizes: dict[str, int] = {}

    def __call__(self, data: bytes) -> None:
        try:
            self.check(data)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            key = signature(exc)
            if key in self.known or self.sizes.get(key, sys.maxsize) <= len(data):
                return
            first = key not in self.sizes
            self.sizes[key] = len(data)
            slug = re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-")[:60]
            digest = hashlib.sha1(key.encode()).hexdigest()[:8]  # noqa: S324 - a file name
            path = self.crashes / f"crash-{slug}-{digest}"
            path.write_bytes(data)
            if first:
                print(f"\nfuzz: NEW FAILURE {key}\n  {exc!s:.300}\n  -> {path}", file=sys.stderr)


def known_signatures(surface: str, check: Callable[[bytes], None]) -> dict[str, str]:
    """The failures of the corpus inputs known to fail (their fixes have not landed yet), so a
    run reports only new ones."""
    from tests.fuzz.test_corpus_replay import KNOWN_FAILURES

    known: dict[str, str] = {}
    for name, reason in KNOWN_FAILURES.items():
        if name.split("/", 1)[0] != surface:
            continue
        try:
            check((CORPUS / name).read_bytes())
        except Exception as exc:
            known[signature(exc)] = f"{reason} ({name})"
    for key, reason in sorted(known.items()):
        print(f"fuzz: known failure, not reported again: {key}: {reason}", file=sys.stderr)
    return known


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fuzz/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("surface", help="csv, fhir, calibration, rules, mapping or fhir-mapping")
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz (default 60)")
    parser.add_argument("--work", default="build/fuzz", help="working folder (default build/fuzz)")
    parser.add_argument("--minimise", metavar="CRASH", help="shrink an input that fails")
    parser.add_argument("--replay", nargs="+", metavar="FILE", help="run the harness on files")
    # libFuzzer re-runs argv[0] as a shell command (crash minimisation): that run passes its own
    # flags through unchanged and must fail on the input as the plain harness does.
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:split]), argv[split + 1 :]
    sys.path.insert(0, str(ROOT))
    from tests.fuzz.harnesses import SURFACES

    if args.surface not in SURFACES:
        parser.error(f"no surface {args.surface!r}; known: {', '.join(SURFACES)}")
    check = SURFACES[args.surface]
    if args.replay:
        for name in args.replay:
            check(Path(name).read_bytes())
            print(f"{name}: ok")
        return 0
    atheris = _atheris()
    _import_instrumented(atheris)
    work = Path(args.work).resolve()
    crashes = work / "crashes" / args.surface
    crashes.mkdir(parents=True, exist_ok=True)
    command = f"{shlex.quote(sys.executable)} {shlex.quote(__file__)} {args.surface} --raw --"
    if args.raw:
        atheris.Setup([command, *extra], check)
    elif args.minimise:
        flags = [f"-artifact_prefix={crashes}/", "-minimize_crash=1", "-runs=20000", *extra]
        atheris.Setup([command, *flags, args.minimise], check)
    else:
        flags = [
            f"-artifact_prefix={crashes}/",
            "-timeout=30",  # seconds for one input: longer is a hang worth a look
            "-rss_limit_mb=3072",
            "-max_len=65536",
            f"-max_total_time={args.seconds}",
            *extra,
        ]
        dictionary = Path(__file__).resolve().parent / "dicts" / f"{args.surface}.dict"
        if dictionary.is_file():
            flags.append(f"-dict={dictionary}")
        target = Collector(check, crashes, known_signatures(args.surface, check))
        atheris.Setup([command, *flags, str(_seeds(args.surface, work))], target)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
