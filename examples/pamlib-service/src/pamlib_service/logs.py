"""Structured (JSON lines) logs that never carry a patient identifier.

The service logs events with fields it chooses — a route template, a status, a row id, a
problem code — never request bodies, identifiers or patient keys. The one place an identifier
could slip in is a URL: a path segment (``/patients/{key}/trajectory``, but also a mistyped
``/patient/9434765919/...``) or a query string (``?on=9434765919``) may hold one. So no access
log line shows a URL as sent: :func:`route_template` gives the route it matched, query dropped,
or ``unmatched`` — in this service's own access log and in uvicorn's (:class:`AccessLogFilter`).
The method is request text too (HTTP lets a client send any token as one): :func:`method_name`
shows the standard ones and ``_OTHER`` for the rest, as OpenTelemetry's HTTP conventions do.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

__all__ = [
    "AccessLogFilter",
    "JsonFormatter",
    "install_logging",
    "log_event",
    "method_name",
    "route_template",
]

LOGGER = logging.getLogger("pamlib_service")

#: What an access log shows for a path that matches no route (a 404 is no reason to log it).
UNMATCHED = "unmatched"
#: The methods HTTP defines (RFC 9110, and PATCH): any other is logged as :data:`OTHER_METHOD`.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
OTHER_METHOD = "_OTHER"


def method_name(method: object) -> str:
    """``method`` if HTTP defines it, else ``_OTHER``: a client may send any token as a method
    (``PROPFIND9434765919``), and a log must not keep what it typed.

    >>> method_name("POST"), method_name("P9434765919")
    ('POST', '_OTHER')
    """
    return method if isinstance(method, str) and method in METHODS else OTHER_METHOD


@cache
def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}]*\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


def route_template(path: str, templates: Iterable[str]) -> str:
    """The template of ``templates`` that ``path`` matches, else :data:`UNMATCHED`; a query
    string is dropped. Only templates, which the service chose, ever reach a log.

    >>> route_template("/patients/nhs:9434765919/trajectory?x=1", ["/patients/{key}/trajectory"])
    '/patients/{key}/trajectory'
    >>> route_template("/patient/9434765919/trajectory", ["/patients/{key}/trajectory"])
    'unmatched'
    """
    bare = path.partition("?")[0]
    return next((t for t in templates if _pattern(t).fullmatch(bare)), UNMATCHED)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, and the event's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: a traceback's frames may show values from a request.
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False, default=str)


class AccessLogFilter(logging.Filter):
    """Shows uvicorn's access log lines with the route template in place of the path and query,
    and :func:`method_name` for the method (its ``args`` hold both as sent): for a service run
    with uvicorn's access log on."""

    def __init__(self, templates: Iterable[str]) -> None:
        super().__init__()
        self.templates = tuple(templates)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            shown = (method_name(args[1]), route_template(args[2], self.templates))
            record.args = (args[0], *shown, *args[3:])
        return True


def install_logging(templates: Iterable[str] = ()) -> None:
    """JSON lines on stderr for the service's logger when nothing else handles logs, and the
    filter showing route ``templates`` on uvicorn's access logger. Safe to call more than
    once."""
    if not logging.getLogger().handlers and not LOGGER.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.INFO)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogFilter) for f in access.filters):
        access.addFilter(AccessLogFilter(templates))


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Log ``event`` with ``fields`` (which must never be identifiers)."""
    LOGGER.log(level, event, extra={"fields": fields})
