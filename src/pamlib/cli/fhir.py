"""``pamlib fhir``: print an instrument's Questionnaire; check FHIR files with pamlib's checks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pamlib.errors import FormatError, Problem


def add_parser(subparsers: Any) -> None:
    from pamlib.cli import file_name

    p = subparsers.add_parser("fhir", help="FHIR R4: print Questionnaires, check FHIR files")
    commands = p.add_subparsers(title="fhir commands", metavar="COMMAND")

    q = commands.add_parser(
        "questionnaire", help="print the FHIR Questionnaire of an instrument (no item wording)"
    )
    q.add_argument("--instrument", required=True, help="instrument id, e.g. PAM-13")
    q.add_argument("--language", default="en", help="language of the item text (default en)")
    q.add_argument(
        "--output", "-o", type=file_name, metavar="FILE", help="write to FILE instead of stdout"
    )
    q.set_defaults(func=run_questionnaire)

    c = commands.add_parser(
        "check", help="check FHIR JSON or NDJSON files with pamlib's own checks"
    )
    c.add_argument("files", nargs="+", type=file_name, metavar="FILE")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=run_check)
    p.set_defaults(func=lambda args: _help(p))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _stdout(what: str) -> None:
    """Refuse to print to a standard output closed at start (``>&-``): Python then drops what
    is printed, and the command would succeed having written nothing."""
    if sys.__stdout__ is None:
        import errno

        raise OSError(errno.EBADF, f"standard output is closed: {what}")


def run_questionnaire(args: argparse.Namespace) -> int:
    from pamlib.fhir import questionnaire
    from pamlib.formats.guard import OutputGuard

    if not args.output or args.output == "-":
        _stdout("name an output with -o FILE")
    text = json.dumps(questionnaire(args.instrument, language=args.language), indent=2)
    if not args.output or args.output == "-":
        print(text)
        return 0
    with OutputGuard() as guard:
        guard.output(args.output, "the questionnaire file")
        target = guard.open(args.output)
        target.stream.write((text + "\n").encode("utf-8"))
        target.commit()
    return 0


def _check_file(path: Path) -> tuple[int, list[Problem]]:
    """(resources checked, problems) for one JSON or NDJSON file.

    Text that cannot be read as JSON — not UTF-8, a syntax error, nesting too deep, an integer
    too long — is a problem of that document (of that line, in NDJSON), like any other.
    """
    from pamlib._documents import DocumentError, decode_utf8, parse_json
    from pamlib.fhir import check

    if not path.exists():  # a name mistyped: a usage error, as for score and report
        from pamlib.cli import UsageError

        raise UsageError(f"no such file: {path.name}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        why = exc.strerror or "cannot read"
        # the base name only, as every error names a file: a folder's name may be a patient's
        raise FormatError("cannot read FHIR file", [Problem(path.name, "io", why)]) from None
    if path.name.lower().endswith((".ndjson", ".jsonl")):
        lines = [(n, line) for n, line in enumerate(data.splitlines(), 1) if line.strip()]
    else:
        lines = [(0, data)]
    problems: list[Problem] = []
    for n, line in lines:
        prefix = f"line {n}, " if n else ""
        where = f"line {n}" if n else "$"
        try:
            value = parse_json(decode_utf8(line, where), where)
        except DocumentError as exc:
            found = exc.problem
            if n:  # NDJSON: the line is the location
                problems.append(Problem(where, found.code, found.message))
            else:  # a document: ``line 3 column 7`` for a syntax error, else ``$``
                problems.append(Problem(found.where.removeprefix("$: "), found.code, found.message))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(f"{prefix}$", "not-a-resource", "expected a FHIR resource"))
            continue
        problems.extend(Problem(f"{prefix}{p.where}", p.code, p.message) for p in check(value))
    return len(lines), problems


def run_check(args: argparse.Namespace) -> int:
    _stdout("the report has nowhere to go")
    report = []
    bad = 0
    for name in args.files:
        n, problems = _check_file(Path(name))
        bad += bool(problems)
        report.append((name, n, problems))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "file": name,
                        "resources": n,
                        "problems": [
                            {"where": p.where, "code": p.code, "message": p.message}
                            for p in problems
                        ],
                    }
                    for name, n, problems in report
                ],
                indent=2,
            )
        )
    else:
        for name, n, problems in report:
            status = "ok" if not problems else f"{len(problems)} problem(s)"
            print(f"{name}: {n} resource(s) checked, {status}")
            for p in problems:
                print(f"  - {p.code}: {p}")
    return 1 if bad else 0
