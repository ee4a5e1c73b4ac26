"""``pamlib plugins``: what is installed, what each plugin provides, and what failed."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pamlib.plugins import get_host


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("plugins", help="list plugins, what they provide, and load errors")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    records = get_host().records()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "version": r.version,
                        "builtin": r.builtin,
                        "status": r.status,
                        "hooks": r.hooks,
                        "provides": r.provides,
                        "errors": [str(e) for e in r.errors],
                    }
                    for r in records
                ],
                indent=2,
            )
        )
        return 0
    for r in records:
        origin = "built-in" if r.builtin else "installed"
        print(f"{r.name} {r.version or '?'} ({origin}) — {r.status}")
        for kind, names in sorted(r.provides.items()):
            print(f"    {kind}: {', '.join(names)}")
        for error in r.errors:
            print(f"    error: {error}")
    return 0
