"""``pamlib rules``: check rule files, explain one assessment's tailoring, list who is overdue.

Tailoring modules are imported inside the commands, so ``pamlib --help`` stays quick.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pamlib.errors import PamlibError, Problem, ValidationError

if TYPE_CHECKING:
    from pamlib.levels import CutpointSet
    from pamlib.tailoring.context import Context
    from pamlib.tailoring.engine import Engine


def add_parser(subparsers: Any) -> None:
    from pamlib.cli import file_name

    p = subparsers.add_parser(
        "rules", help="check tailoring rule files, explain a recommendation, list overdue"
    )
    commands = p.add_subparsers(title="rules commands", metavar="COMMAND")
    p.set_defaults(func=lambda args: _usage(p))

    check = commands.add_parser(
        "check",
        help="check rule files (with every installed plugin's rules); exit 1 on error",
        description="Check rule files together with every installed plugin's rules. Errors "
        "exit with status 1. Warnings (a rule that suppresses every pathway, rules that "
        "together suppress every known pathway) are printed and exit with status 0, or 1 "
        "with --strict.",
    )
    check.add_argument("files", nargs="+", type=file_name, metavar="FILE", help="TOML rule file")
    check.add_argument("--strict", action="store_true", help="exit with status 1 on warnings too")
    check.set_defaults(func=run_check)

    explain = commands.add_parser(
        "explain",
        help="explain the tailoring of one assessment",
        description="Explain one assessment's tailoring: from facts given as options, or from "
        "a row of a scored table (--input FILE --assessment-id ID), linked to the patient's "
        "previous row in that table.",
    )
    explain.add_argument(
        "--rules",
        action="append",
        type=file_name,
        default=[],
        metavar="FILE",
        help="a site rule file to add to the defaults (repeatable)",
    )
    explain.add_argument(
        "--input", type=file_name, metavar="FILE", help="a scored CSV table (pamlib score)"
    )
    explain.add_argument("--assessment-id", metavar="ID", help="the row to explain (--input)")
    explain.add_argument("--score", type=float, help="0–100 score")
    explain.add_argument(
        "--level", type=int, choices=(1, 2, 3, 4), help="activation level (default: from --score)"
    )
    explain.add_argument("--previous-score", type=float, help="previous 0–100 score")
    explain.add_argument(
        "--previous-level",
        type=int,
        choices=(1, 2, 3, 4),
        help="previous level (default: from --previous-score)",
    )
    explain.add_argument(
        "--cutpoint-set",
        help="cut points that band scores into levels (default current)",
    )
    explain.add_argument(
        "--not-scored", metavar="REASON", help="the assessment was not scored, for this reason"
    )
    explain.add_argument("--site")
    explain.add_argument("--instrument", help="instrument id (default PAM-13)")
    explain.add_argument("--language", help="language the questionnaire was answered in")
    explain.add_argument(
        "--flag",
        action="append",
        default=[],
        metavar="FLAG",
        help="a result flag such as extreme-response or demo (repeatable)",
    )
    explain.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an integrator attribute, e.g. condition=COPD (repeatable)",
    )
    explain.add_argument("--assessed-on", metavar="DATE", help="ISO date (default today)")
    explain.add_argument("--json", action="store_true", help="the outcome as JSON")
    explain.set_defaults(func=run_explain)

    overdue = commands.add_parser(
        "overdue",
        help="list patients whose reassessment is overdue, from a scored table",
        description="Read a scored CSV table and write, as CSV, every patient whose latest "
        "assessment with a due date is past it on --on. Due dates come from the reassess_by "
        "column, or are worked out with the rules when the table has none.",
    )
    overdue.add_argument(
        "--input", required=True, type=file_name, metavar="FILE", help="a scored CSV table"
    )
    overdue.add_argument("--on", metavar="DATE", help="reference date (default today)")
    overdue.add_argument(
        "--rules",
        action="append",
        type=file_name,
        default=[],
        metavar="FILE",
        help="a site rule file, used when the table has no reassess_by column",
    )
    overdue.add_argument(
        "--all",
        action="store_true",
        help="list every patient with their status, not only the overdue",
    )
    overdue.set_defaults(func=run_overdue)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _usage_error(message: str) -> PamlibError:
    from pamlib.cli import UsageError

    return UsageError(message)


def _date(text: str | None, option: str) -> dt.date:
    if text is None:
        return dt.date.today()  # noqa: DTZ011 - the local calendar is the one meant
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _usage_error(f"{option} must be an ISO date such as 2025-03-01") from None


# -- check -----------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    from pamlib._terminal import shown as _shown
    from pamlib.tailoring._conditions import conditions_as_text
    from pamlib.tailoring.engine import _sourced_warnings, build_engine
    from pamlib.tailoring.rules import FileRule, load_rules

    engine = build_engine(args.files)  # raises RuleError with every problem, in every file
    # each warning with the files it concerns: matched by source, never by reading the message
    warnings = _sourced_warnings(engine.rules, engine.pathways)
    for path in args.files:
        rule_file = load_rules(path)
        mine = [w for w, sources in warnings if rule_file.source in sources]
        status = "OK" if not mine else f"valid, {len(mine)} warning(s)"
        print(
            _shown(
                f"{path}: {status} — {len(rule_file.rules)} rules, {len(rule_file.pathways)} "
                f"pathways (checked with {len(engine.rules)} rules and {len(engine.pathways)} "
                "pathways in all)"
            )
        )
        for rule in sorted(rule_file.rules, key=lambda r: (-r.priority, r.id)):
            conditions = conditions_as_text(rule.when) or ["always"]
            if isinstance(rule, FileRule) and rule.unless is not None:
                conditions.append(f"unless {', '.join(conditions_as_text(rule.unless))}")
            print(_shown(f"  {rule.id} (priority {rule.priority}): when {'; '.join(conditions)}"))
    for warning, _ in warnings:
        print(_shown(f"warning: {warning.where}: {warning.message}"))
    if warnings:
        print(
            f"pamlib: {len(warnings)} warning(s): assessments may get no pathway"
            + (" (--strict)" if args.strict else "; --strict makes this an error"),
            file=sys.stderr,
        )
    return 1 if warnings and args.strict else 0


# -- explain ---------------------------------------------------------------------------------


def _attributes(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise _usage_error(f"--attr takes NAME=VALUE, got {pair!r}")
        if name.strip() in out:  # one value would be dropped
            raise _usage_error(f"--attr {name.strip()} is given more than once")
        out[name.strip()] = value.strip()
    return out


#: The options that describe the assessment: given with ``--input``, they would be ignored.
_FACTS = (
    "score",
    "level",
    "previous_score",
    "previous_level",
    "cutpoint_set",
    "not_scored",
    "site",
    "instrument",
    "language",
    "flag",
    "attr",
    "assessed_on",
)


def _context_from_options(args: argparse.Namespace) -> Context:
    from pamlib.plugins import get_host
    from pamlib.tailoring.context import Context

    for option, value in (("--score", args.score), ("--previous-score", args.previous_score)):
        if value is not None and not 0.0 <= value <= 100.0:
            raise _usage_error(f"{option} must be from 0 to 100")
    scored = args.not_scored is None
    if scored and args.score is None and args.level is None:
        raise _usage_error("give --score and/or --level, --not-scored REASON, or --input")
    if not scored and (args.score is not None or args.level is not None):
        raise _usage_error("--not-scored takes no --score or --level: they would be ignored")
    cutpoint_set = "current" if args.cutpoint_set is None else args.cutpoint_set
    # looked up even for a level alone: an unknown set is an error, never recorded
    known = get_host().cutpoint_sets().get(cutpoint_set)
    banding = args.score is not None or args.previous_score is not None
    cutpoints = known if banding else None
    level = _level_of(args.level, args.score, "", cutpoints)
    previous_level = _level_of(args.previous_level, args.previous_score, "previous-", cutpoints)
    return Context(
        assessment_id="(given on the command line)",
        scored=scored,
        score=args.score if scored else None,
        level=level if scored else None,
        previous_score=args.previous_score,
        previous_level=previous_level,
        assessed_on=_date(args.assessed_on, "--assessed-on"),
        instrument="PAM-13" if args.instrument is None else args.instrument,
        site=args.site,
        language=args.language,
        flags=frozenset(f.strip().lower() for f in args.flag),
        attributes=_attributes(args.attr),
        cutpoint_set=cutpoint_set if scored and level is not None else None,
        not_scored_reason=args.not_scored,
    )


def _level_of(
    level: int | None, score: float | None, prefix: str, cutpoints: CutpointSet | None
) -> int | None:
    """The level given, else the band of the score given; a level the score contradicts is
    a usage error: no real assessment has one, and explaining it would show the pathways of
    another level."""
    if score is None or cutpoints is None:
        return level
    banded = int(cutpoints.level(score))
    if level is not None and level != banded:
        raise _usage_error(
            f"--{prefix}level {level} is not the level of --{prefix}score {score:g} under the "
            f"cut points {cutpoints.id!r} (level {banded}); leave --{prefix}level out"
        )
    return banded


def _context_from_table(path: str, assessment_id: str) -> Context:
    """The context of one row of a scored table, read and linked as tailoring reads the whole
    table (:class:`~pamlib.tables.scored.ScoredTable`: one patient key, every check)."""
    from pamlib.plugins import get_host
    from pamlib.tables.scored import ScoredTable
    from pamlib.tailoring.columns import ContextColumns

    table = ScoredTable.read(path)
    ids = table.text("assessment_id")
    matches = [i for i, v in enumerate(ids.tolist()) if str(v).strip() == assessment_id]
    if not matches:
        raise ValidationError(
            "nothing to explain",
            [Problem(Path(path).name, "not-found", "no row has this assessment_id")],
        )
    columns = ContextColumns.from_scored(
        table, cutpoints=get_host().cutpoint_sets(), source=Path(path).name
    )
    return columns.context(matches[0])


def _engine(files: Sequence[str]) -> Engine:
    from pamlib.tailoring.engine import build_engine

    return build_engine(files)


def run_explain(args: argparse.Namespace) -> int:
    from pamlib.serialize import dumps
    from pamlib.tailoring.engine import explain

    if args.input is not None or args.assessment_id is not None:
        if args.input is None or args.assessment_id is None:
            raise _usage_error("--input and --assessment-id go together")
        given = [
            f"--{name.replace('_', '-')}"
            for name in _FACTS
            if getattr(args, name) is not None and getattr(args, name) != []
        ]
        if given:  # the row's facts are explained: these would be silently ignored
            raise _usage_error(f"--input takes the facts from the table, not {', '.join(given)}")
        context = _context_from_table(args.input, args.assessment_id)
    else:
        context = _context_from_options(args)
    engine = _engine(args.rules)
    outcome = engine.evaluate(context)
    if args.json:
        print(dumps(outcome, indent=2))
    else:
        print(explain(outcome, context=context, engine=engine))
    return 0


# -- overdue ---------------------------------------------------------------------------------


def run_overdue(args: argparse.Namespace) -> int:
    from pamlib.formats.output import CsvWriter, protect
    from pamlib.tables.scored import ScoredTable
    from pamlib.tailoring.reassessment import due_from_table, reassessment_status
    from pamlib.tailoring.rows import tailor

    on = _date(args.on, "--on")
    table = ScoredTable.read(args.input)
    if "reassess_by" not in table.column_names:
        table = tailor(table, _engine(args.rules))
    entries = due_from_table(table, source=Path(args.input).name)
    statuses = reassessment_status(entries, on)
    # every cell goes through the spreadsheet protection of the other CSV outputs, after any
    # stripping, and rows with a bare CR are quoted
    writer = CsvWriter(sys.stdout)
    writer.writerow(
        [
            "patient_id",
            "status",
            "assessment_id",
            "assessed_on",
            "reassess_by",
            "days_overdue",
            "window_closes",
            "window_missed",
        ]
    )
    for s in statuses:
        if not args.all and s.status != "overdue":
            continue
        cells = [  # the patient as a person reads it: the id, else the NHS number or pseudonym
            s.patient_id.removeprefix("nhs:").removeprefix("pseudonym:").strip(),
            s.status,
            s.assessment_id or "",
            s.assessed_on.isoformat() if s.assessed_on else "",
            s.reassess_by.isoformat() if s.reassess_by else "",
            s.days_overdue,
            s.window_closes.isoformat() if s.window_closes else "",
            "true" if s.window_missed else "false",
        ]
        writer.writerow([protect("" if c is None else str(c)) for c in cells])
    counts = {
        k: sum(1 for s in statuses if s.status == k)
        for k in ("overdue", "due-soon", "not-due", "no-date")
    }
    # a patient first assessed after --on has no status on that day: counted, not lost
    later = len({e[0] for e in entries}) - len(statuses)
    print(
        f"{len(statuses)} patients on {on.isoformat()}: {counts['overdue']} overdue, "
        f"{counts['due-soon']} due within 30 days, {counts['not-due']} not yet due, "
        f"{counts['no-date']} without a due date"
        + (f"; {later} first assessed after {on.isoformat()}, not listed" if later else ""),
        file=sys.stderr,
    )
    return 0
