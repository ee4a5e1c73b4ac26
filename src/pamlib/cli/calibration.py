"""``pamlib calibration FILE…``: check calibration files and show what they say, and their hash.

Shows ids, model, estimator, validity policy, cut-point set, licence and the content hash — never
the item parameters, which for a licensee are licensed content. Exit status 1 if any file is
invalid, 3 if every file that failed could not be read (missing, a folder, no permission); every
problem is listed with its file and field. Text is shown for a terminal: a control character in a
file's name or values (ESC, a line break) is written as an escape (``\\x1b``), so that a file
cannot fake or hide a line of the check. A device (``/dev/zero``) is refused, not read.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pamlib._terminal import shown as _shown


def add_parser(subparsers: Any) -> None:
    from pamlib.cli import file_name

    p = subparsers.add_parser(
        "calibration", help="check calibration files (JSON or TOML) and show their content hash"
    )
    p.add_argument(
        "files", nargs="+", type=file_name, metavar="FILE", help="calibration files to check"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _summary(path: str) -> dict[str, Any]:
    import stat
    from pathlib import Path

    from pamlib.errors import CalibrationError
    from pamlib.plugins import get_host
    from pamlib.scoring.calibration import load_calibration

    try:
        mode: int | None = Path(path).stat().st_mode
    except (OSError, ValueError):
        mode = None  # the loader says why it cannot read it
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
        where = path.encode("utf-8", "backslashreplace").decode("utf-8")
        message = "not a regular file but a device: name the calibration file itself"
        return {
            "file": path,
            "valid": False,
            "problems": [{"where": where, "code": "not-a-file", "message": message}],
        }
    try:
        cal = load_calibration(path, host=get_host())
    except CalibrationError as exc:
        return {
            "file": path,
            "valid": False,
            "problems": [
                {"where": p.where, "code": p.code, "message": p.message} for p in exc.problems
            ],
        }
    estimator = cal.to_document()["estimator"]
    licence = None
    if cal.licence is not None:
        licence = {
            "licensee": cal.licence.licensee,
            "valid_until": cal.licence.valid_until.isoformat(),
        }
    return {
        "file": path,
        "valid": True,
        "id": cal.id,
        "version": cal.version,
        "instrument": cal.instrument,
        "model": str(cal.model),
        "estimator": estimator,
        "min_answered": cal.min_answered,
        "extreme_response": str(cal.extreme_response),
        "cutpoints": cal.cutpoints,
        "demo": cal.demo,
        "licence": licence,
        "sha256": cal.sha256,
    }


def _licence_text(s: dict[str, Any]) -> str:
    if s["demo"]:
        return "none: a synthetic demonstration calibration (results flagged 'demo')"
    if s["licence"] is None:
        return "none: results are flagged 'unlicensed' (not a licensed PAM score)"
    return f"{_shown(s['licence']['licensee'])}, valid until {s['licence']['valid_until']}"


def _unreadable(s: dict[str, Any]) -> bool:
    """Whether the file failed only because it could not be read (an environment error)."""
    return not s["valid"] and all(p["code"] == "unreadable" for p in s["problems"])


def _status(summaries: list[dict[str, Any]]) -> int:
    failed = [s for s in summaries if not s["valid"]]
    if not failed:
        return 0
    from pamlib.cli import EXIT_ENVIRONMENT, EXIT_ERROR

    return EXIT_ENVIRONMENT if all(_unreadable(s) for s in failed) else EXIT_ERROR


def run(args: argparse.Namespace) -> int:
    summaries = [_summary(path) for path in args.files]
    if args.json:
        print(json.dumps(summaries, indent=2))
        return _status(summaries)
    for s in summaries:
        if not s["valid"]:
            print(f"{_shown(s['file'])}: {'cannot be read' if _unreadable(s) else 'invalid'}")
            for p in s["problems"]:
                print(f"  - {_shown(p['message'])} @ {_shown(p['where'])}")
            continue
        estimator = s["estimator"]
        settings = ", ".join(f"{k} {v}" for k, v in estimator.items() if k != "method")
        print(f"{_shown(s['file'])}: ok")
        print(f"  id          {_shown(s['id'])} (version {_shown(s['version'])})")
        print(f"  instrument  {_shown(s['instrument'])}")
        print(
            f"  model       {_shown(s['model'])}; estimator {_shown(estimator['method'])}"
            + (f" ({_shown(settings)})" if settings else "")
        )
        print(
            f"  validity    min_answered {s['min_answered']}; "
            f"extreme responses: {_shown(s['extreme_response'])}"
        )
        print(f"  levels      {_shown(s['cutpoints'] or 'none (no cut-point set)')}")
        print(f"  licence     {_licence_text(s)}")
        print(f"  sha256      {s['sha256']}")
    return _status(summaries)
