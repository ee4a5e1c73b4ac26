"""Structured (JSON lines) logs that never carry a patient identifier.

The service logs events with fields it chooses — a route template, a status, a row id, a
problem code — never request bodies, identifiers or patient keys. The one place an identifier
could slip in is a URL: ``/patients/{key}/trajectory`` holds a patient key that may be an NHS
number. :func:`redact_path` replaces it before any access log line is written, by this service's
own access log and by uvicorn's (:class:`AccessLogFilter`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any

__all__ = ["AccessLogFilter", "JsonFormatter", "install_logging", "log_event", "redact_path"]

LOGGER = logging.getLogger("pamlib_service")

_PATIENT_SEGMENT = re.compile(r"/patients/[^/?#]*")


def redact_path(path: str) -> str:
    """``path`` with any patient key replaced by ``{key}``.

    >>> redact_path("/patients/nhs:9434765919/trajectory?x=1")
    '/patients/{key}/trajectory?x=1'
    """
    return _PATIENT_SEGMENT.sub("/patients/{key}", path)


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
    """Redacts patient keys from uvicorn's access log lines (its ``args`` hold the path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install_logging() -> None:
    """JSON lines on stderr for the service's logger when nothing else handles logs, and the
    redacting filter on uvicorn's access logger. Safe to call more than once."""
    if not logging.getLogger().handlers and not LOGGER.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.INFO)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogFilter) for f in access.filters):
        access.addFilter(AccessLogFilter())


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Log ``event`` with ``fields`` (which must never be identifiers)."""
    LOGGER.log(level, event, extra={"fields": fields})
