"""``pamlib plugins``: what is installed, what each plugin provides, and what failed.

A plugin that failed to load is listed as ``failed`` (and disabled); one that failed in a hook
as ``error``. Each error is one line naming the plugin, the hook and what was raised. One not
loaded by choice is listed as ``disabled`` (the disable list), ``not-allowed`` (an entry point
missing from the ``PAMLIB_PLUGINS`` allow-list) or ``unregistered``, with the reason; a name
the allow-list gives that no installed plugin has, as ``not-found``. What a plugin says of
itself is shown with its control characters escaped (``\x1b``), as the JSON output escapes them.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pamlib.errors import PluginError


def _line(error: PluginError) -> str:
    from pamlib.plugins import describe_failure

    where = f"plugin {error.plugin!r}" + (
        f" in hook {error.hook}" if error.hook else " while loading"
    )
    return f"{where}: {describe_failure(error.cause)}"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("plugins", help="list plugins, what they provide, and load errors")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pamlib._terminal import shown
    from pamlib.plugins import get_host

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
                        "reason": r.reason,
                        "hooks": r.hooks,
                        "provides": r.provides,
                        "errors": [_line(e) for e in r.errors],
                    }
                    for r in records
                ],
                indent=2,
            )
        )
        return 0
    for r in records:
        # names, versions and messages come from the plugins themselves: escaped for the
        # terminal, so that none can fake a line of the list or hide one
        name = shown(r.name)
        if r.status == "not-found":  # a name of the allow-list: no version to show
            print(f"{name} (not installed) — {r.status}")
        else:
            origin = "built-in" if r.builtin else "installed"
            print(f"{name} {shown(r.version or '?')} ({origin}) — {r.status}")
        if r.reason:
            print(f"    not loaded: {shown(r.reason)}")
        for kind, names in sorted(r.provides.items()):
            print(f"    {shown(kind)}: {shown(', '.join(names))}")
        for error in r.errors:
            print(f"    error: {shown(_line(error))}")
    return 0
