"""The ``pamlib`` command line.

Each sub-command lives in its own module with an ``add_parser(subparsers)`` function that sets
``func`` on its parser. Exit status: 0 success, 1 a pamlib error (bad data, licence, strict-mode
rejects), 2 a usage error. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from pamlib._version import __version__
from pamlib.errors import PamlibError

__all__ = ["COMMANDS", "main"]

#: Modules that each contribute one sub-command, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "pamlib.cli.score",
    "pamlib.cli.demo",
    "pamlib.cli.plugins",
    "pamlib.cli.report",
    "pamlib.cli.rules",
    "pamlib.cli.calibration",
    "pamlib.cli.fhir",
    "pamlib.cli.new_plugin",
)


class UsageError(PamlibError):
    """A command line that cannot be carried out as written (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pamlib",
        description="Score, tailor and report Patient Activation Measure assessments.",
        epilog="Scores from the built-in 'demo' and 'raw-sum' providers are not PAM scores.",
    )
    parser.add_argument("--version", action="version", version=f"pamlib {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    for module_name in COMMANDS:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"pamlib: error: {exc}", file=sys.stderr)
        return 2
    except PamlibError as exc:
        print(f"pamlib: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pamlib: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def run() -> NoReturn:  # pragma: no cover - console entry point
    sys.exit(main())
