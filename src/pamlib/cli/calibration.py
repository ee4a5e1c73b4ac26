"""``pamlib calibration FILE…``: check calibration files and show what they say, and their hash.

Shows ids, model, estimator, validity policy, cut-point set, licence and the content hash — never
the item parameters, which for a licensee are licensed content. Exit status 1 if any file is
invalid; every problem is listed with its file and field.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


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
    from pamlib.errors import CalibrationError
    from pamlib.plugins import get_host
    from pamlib.scoring.calibration import load_calibration

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
    return f"{s['licence']['licensee']}, valid until {s['licence']['valid_until']}"


def run(args: argparse.Namespace) -> int:
    summaries = [_summary(path) for path in args.files]
    if args.json:
        print(json.dumps(summaries, indent=2))
    else:
        for s in summaries:
            if not s["valid"]:
                print(f"{s['file']}: invalid")
                for p in s["problems"]:
                    print(f"  - {p['message']} @ {p['where']}")
                continue
            settings = ", ".join(f"{k} {v}" for k, v in s["estimator"].items() if k != "method")
            print(f"{s['file']}: ok")
            print(f"  id          {s['id']} (version {s['version']})")
            print(f"  instrument  {s['instrument']}")
            print(
                f"  model       {s['model']}; estimator {s['estimator']['method']}"
                + (f" ({settings})" if settings else "")
            )
            print(
                f"  validity    min_answered {s['min_answered']}; "
                f"extreme responses: {s['extreme_response']}"
            )
            print(f"  levels      {s['cutpoints'] or 'none (no cut-point set)'}")
            print(f"  licence     {_licence_text(s)}")
            print(f"  sha256      {s['sha256']}")
    return 0 if all(s["valid"] for s in summaries) else 1
