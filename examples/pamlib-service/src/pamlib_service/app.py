"""The ASGI application: routes, authentication, errors as JSON, access logs without keys.

``create_app()`` reads its settings from the environment when it starts (the lifespan), so
``uvicorn pamlib_service:app`` needs no code; tests pass settings and a plugin host. The work
itself is :class:`~pamlib_service.service.Service`'s, run in a thread pool so that scoring and
the database never block the event loop. uvicorn finishes in-flight requests on SIGTERM before
the lifespan's shutdown closes the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pamlib.errors import Problem
from pamlib.plugins import PluginHost
from pamlib_service.config import Settings, StartupError
from pamlib_service.logs import UNMATCHED, install_logging, log_event, method_name
from pamlib_service.service import ApiError, Service

__all__ = ["create_app"]

FHIR_JSON = "application/fhir+json"
#: The status logged for a request whose client went away before its body was read (nginx's
#: "client closed request"): neither a server failure nor an answer anyone received.
CLIENT_CLOSED = 499


def _problems(problems: tuple[Problem, ...]) -> list[dict[str, str]]:
    return [{"where": p.where, "code": p.code, "message": p.message} for p in problems]


def _error_body(error: ApiError, *, fhir: bool) -> dict[str, Any]:
    """Plain JSON, or an OperationOutcome on the FHIR endpoints (one issue per problem)."""
    if not fhir:
        return {
            "error": error.code,
            "message": error.message,
            "problems": _problems(error.problems),
        }
    issues = [
        {
            "severity": "error",
            "code": "invalid" if error.status in (400, 422) else "processing",
            "details": {"coding": [{"code": p.code}], "text": p.message or error.message},
            "expression": [p.where],
        }
        for p in error.problems
    ] or [{"severity": "error", "code": "processing", "details": {"text": error.message}}]
    return {"resourceType": "OperationOutcome", "issue": issues}


#: The errors Starlette raises itself, as this service names them.
_NO_ROUTE = {
    404: ("not-found", "no such endpoint"),
    405: ("method-not-allowed", "the endpoint does not take this method"),
}


def _is_json(media_type: str) -> bool:
    """``application/json``, ``application/fhir+json`` or another ``+json`` type."""
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


#: The charsets a body may declare: UTF-8 (FHIR's only one) and ASCII, a subset of it; no
#: charset at all is UTF-8 too (RFC 8259).
_UTF8 = frozenset({"", "utf-8", "utf8", "us-ascii"})


def _charset(parameters: str) -> str:
    """The ``charset`` parameter of a media type's ``parameters``, lower case, else ``""``."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip().lower()
    return ""


def _json(body: dict[str, Any], status: int = 200, *, fhir: bool = False) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON if fhir else None)


class AccessLog:
    """One JSON line per request: method (a standard one, else ``_OTHER``), the route template
    it matched (never the path or query as sent: either may hold a patient identifier), status,
    time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            log_event(
                "request",
                method=method_name(scope.get("method")),
                path=_template(scope),
                status=status,
                ms=round((time.perf_counter() - start) * 1000, 1),
            )


def _template(scope: Scope) -> str:
    """The template of the route Starlette matched (it records it in the scope), else
    ``unmatched``."""
    route = scope.get("route")
    return route.path if isinstance(route, Route) else UNMATCHED


Handler = Callable[[Request], Awaitable[Response]]


def create_app(  # noqa: PLR0915 - the endpoints are closures over one start-up state
    settings: Settings | None = None, *, host: PluginHost | None = None
) -> Starlette:
    """The application; ``settings`` default to the environment's, read at start-up."""
    state: dict[str, Service] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        install_logging(route.path for route in routes)
        try:
            chosen = settings if settings is not None else Settings.from_env()
            state["service"] = await run_in_threadpool(Service.start, chosen, host=host)
            _app.state.service = state["service"]
        except StartupError as exc:
            print(str(exc), file=sys.stderr)
            log_event("refused-to-start", level=logging.CRITICAL)
            raise
        try:
            yield
        finally:
            del _app.state.service
            state.pop("service").close()
            log_event("stopped")

    def service() -> Service:
        found = state.get("service")
        if found is None:
            raise ApiError(503, "not-ready", "the service is starting or stopping")
        return found

    async def body_of(request: Request) -> bytes:
        kind, _, parameters = request.headers.get("content-type", "").partition(";")
        kind = kind.strip().lower()
        if kind and not _is_json(kind):
            # Absent is taken as JSON (curl without -H); anything else named is not this body.
            problem = Problem("Content-Type", "media-type", "expected application/fhir+json")
            raise ApiError(415, "unsupported-media-type", "the body must be JSON", [problem])
        if _charset(parameters) not in _UTF8:
            # Read as UTF-8 anyway, a Latin-1 body would be refused as "not JSON" at best and at
            # worst stored silently garbled (bytes C3 A9, Latin-1 "Ã©", are UTF-8 "é").
            problem = Problem("Content-Type", "charset", "FHIR bodies are UTF-8 (charset=utf-8)")
            raise ApiError(415, "unsupported-media-type", "the body must be UTF-8", [problem])
        if request.headers.get("content-encoding", "identity").strip().lower() != "identity":
            # Compressed bytes are no JSON; RFC 9110 (15.5.16) asks for 415 and Accept-Encoding.
            problem = Problem("Content-Encoding", "content-encoding", "send the body uncompressed")
            raise ApiError(
                415,
                "unsupported-media-type",
                "the body must not be encoded",
                [problem],
                headers={"Accept-Encoding": "identity"},
            )
        limit = service().settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "too-large", f"the body is larger than {limit} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, "too-large", f"the body is larger than {limit} bytes")
        return body

    def endpoint(role: str | None, *, fhir: bool = False) -> Callable[[Handler], Handler]:
        """Authorise for ``role`` first, and turn :class:`ApiError` into a response."""

        def wrap(handler: Handler) -> Handler:
            async def run(request: Request) -> Response:
                try:
                    if role is not None:
                        token = service().authorise(request.headers.get("authorization"), role)
                        request.state.token = token
                    return await handler(request)
                except ApiError as error:
                    log_event(
                        "refused",
                        path=_template(request.scope),
                        status=error.status,
                        code=error.code,
                        problems=[p.code for p in error.problems][:20],
                    )
                    response = _json(_error_body(error, fhir=fhir), error.status, fhir=fhir)
                    response.headers.update(error.headers)
                    if error.status == 401:
                        response.headers["WWW-Authenticate"] = "Bearer"
                    return response
                except ClientDisconnect:
                    # The client hung up before sending its whole body: nothing was done, and
                    # nobody is left to answer. Its doing, not a failure of the service.
                    log_event("client-disconnected", path=_template(request.scope))
                    return Response(status_code=CLIENT_CLOSED)
                except Exception as exc:
                    # The database restarting, unreachable or busy is 503: nothing was stored,
                    # or the commit went through and the same request sent again finds it
                    # (submissions are idempotent); either way the client may simply retry.
                    unavailable = isinstance(exc, OperationalError | InterfaceError)
                    # The type only: messages of database errors may quote a request's values.
                    log_event(
                        "database-unavailable" if unavailable else "failed",
                        level=logging.WARNING if unavailable else logging.ERROR,
                        path=_template(request.scope),
                        exception=type(exc).__name__,
                    )
                    failed = (
                        ApiError(503, "database-unavailable", "the database is unavailable")
                        if unavailable
                        else ApiError(500, "internal", "the request failed; it was logged")
                    )
                    response = _json(_error_body(failed, fhir=fhir), failed.status, fhir=fhir)
                    if unavailable:
                        response.headers["Retry-After"] = "1"
                    return response

            return run

        return wrap

    @endpoint("submit", fhir=True)
    async def submit(request: Request) -> Response:
        body = await body_of(request)
        status, bundle = await run_in_threadpool(service().submit, body, request.state.token)
        return _json(bundle, status, fhir=True)

    @endpoint("submit", fhir=True)
    async def score(request: Request) -> Response:
        body = await body_of(request)
        bundle = await run_in_threadpool(service().score_only, body, request.state.token)
        return _json(bundle, fhir=True)

    @endpoint("read")
    async def trajectory(request: Request) -> Response:
        key = str(request.path_params["key"])
        body = await run_in_threadpool(service().trajectory, key, request.state.token)
        return _json(body)

    @endpoint("read")
    async def overdue(request: Request) -> Response:
        given = request.query_params.getlist("on")
        if len(given) > 1:  # which date would count? (as with a member named twice)
            problem = Problem("on", "repeated", "give the date once")
            raise ApiError(422, "invalid", "the query is not valid", [problem])
        text = given[0] if given else None
        try:
            on = dt.date.fromisoformat(text) if text else dt.datetime.now(dt.UTC).date()
        except ValueError:
            problem = Problem("on", "date", "expected a date YYYY-MM-DD")
            raise ApiError(422, "invalid", "the query is not valid", [problem]) from None
        body = await run_in_threadpool(service().overdue, on, request.state.token)
        return _json(body)

    @endpoint("report")
    async def cohort(request: Request) -> Response:
        return _json(await run_in_threadpool(service().cohort, request.state.token))

    async def healthz(_request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        found = state.get("service")
        ready = found is not None and await run_in_threadpool(found.ready)
        return _json({"status": "ready" if ready else "not-ready"}, 200 if ready else 503)

    routes = [
        Route("/fhir/QuestionnaireResponse", submit, methods=["POST"]),
        Route("/fhir/$score", score, methods=["POST"]),
        Route("/patients/{key}/trajectory", trajectory, methods=["GET"]),
        Route("/reassessments/overdue", overdue, methods=["GET"]),
        Route("/reports/cohort", cohort, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]

    async def no_route(request: Request, exc: Exception) -> Response:
        """A path no route matches, or a method a route does not take: the same JSON error as
        every other (an OperationOutcome under ``/fhir``), with Starlette's headers (``Allow``)."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code, message = _NO_ROUTE.get(status, ("internal", "the request failed"))
        fhir = request.url.path.startswith("/fhir/")
        response = _json(_error_body(ApiError(status, code, message), fhir=fhir), status, fhir=fhir)
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={404: no_route, 405: no_route}
    )
    app.add_middleware(AccessLog)
    return app
