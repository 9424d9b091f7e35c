"""The local API: HTTP + JSON on stationd's Unix socket (FastAPI, served by uvicorn).

:func:`build_app` assembles the routers of :mod:`station.daemon.routes` (one per capability)
in the hub's style: the bodies are the models of :mod:`stationapi.models`, authentication is
a dependency, and the app describes itself (``GET /v1/openapi.json``; tests fuzz it).

Versioned under ``/v1``. Every body is JSON; every refusal is a 4xx with
``{"error": <English>, "user_message": <the person's language>, "code": <machine word>}``, and
bad input never produces a 5xx. Validation errors name the field and the rule, never the value (a
mistyped field may hold a PIN or a CPR number). Request bodies are capped
(:data:`MAX_BODY_BYTES`; the staff enrollment's at 4 KiB) and counted as they arrive, so an
oversized request is refused before it is held in memory.

Three kinds of endpoint:

- open to both UIs, no token: the state, the event stream, lock, unlock, and what the lock
  screen reads (upcoming times and clinic names, health, settings, enrollment);
- staff-only, ``Authorization: Bearer <token>`` from ``/v1/unlock``: the blind store's
  records, the session transitions, the call, the pre-call check and the export. Only
  ``POST /v1/session/touch`` counts as activity for the idle lock. Every lock revokes every
  token at once; later requests get 401 ``locked``;
- the resident's call controls: staff, or without a token while the call is private.

The API never handles plaintext personal data but the waiting residents of a call's start
(forwarded to the GP's waiting room, never stored): sealed fields travel as base64 of bytes
stationd cannot open, and everything else in clear is an id, a time, a status or a name of a
clinic.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from station.daemon.calls import CallController
from station.daemon.errors import ApiError
from station.daemon.precheck import PreCheck
from station.daemon.routes import attendance as attendance_routes
from station.daemon.routes import call as call_routes
from station.daemon.routes import events as event_routes
from station.daemon.routes import export as export_routes
from station.daemon.routes import info as info_routes
from station.daemon.routes import precheck as precheck_routes
from station.daemon.routes import provisioning as provisioning_routes
from station.daemon.routes import records as record_routes
from station.daemon.routes import session as session_routes
from station.daemon.routes.deps import (
    ERROR_RESPONSES,
    ApiContext,
    error_response,
    unexpected_response,
)
from station.daemon.service import StationService
from station.export.service import ExportService
from station.i18n import N_

__all__ = [
    "DEFAULT_HEARTBEAT_SECONDS",
    "MAX_BODY_BYTES",
    "OPENAPI_PATH",
    "ROUTERS",
    "build_app",
    "validation_message",
]

_log = logging.getLogger(__name__)

#: Largest request body: a queue entry's six sealed fields at the store's 64 KiB cap, in
#: base64, fit; anything bigger is a bug or an attack.
MAX_BODY_BYTES: Final = 512 * 1024
#: SSE comment lines this often keep proxies and the client's read timeout happy.
DEFAULT_HEARTBEAT_SECONDS: Final = 15.0
#: Where the app serves its own OpenAPI description.
OPENAPI_PATH: Final = "/v1/openapi.json"

_INVALID = N_("The information in the request was invalid. Try again, or contact IT.")
_TOO_LARGE = N_("The information is too large to be saved.")
#: Endpoints with a smaller body limit than :data:`MAX_BODY_BYTES` (and what a person reads).
_BODY_LIMITS: Final[Mapping[str, tuple[int, str]]] = {
    provisioning_routes.ENROLL_PATH: (
        provisioning_routes.MAX_ENROLL_BODY_BYTES,
        N_("The request is too large."),
    ),
}

#: Every router of the API, one per capability, in the order they are included.
ROUTERS: Final[tuple[APIRouter, ...]] = (
    session_routes.router,
    info_routes.router,
    event_routes.router,
    record_routes.router,
    attendance_routes.router,
    call_routes.router,
    precheck_routes.router,
    export_routes.router,
    provisioning_routes.router,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def build_app(
    service: StationService,
    *,
    calls: CallController,
    precheck: PreCheck,
    exports: ExportService | None,
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
) -> FastAPI:
    """The FastAPI app over the daemon's parts; uvicorn serves it on the Unix socket."""
    app = FastAPI(
        title="KontaktStation stationd",
        summary="The station's local API for its two UIs (HTTP on a Unix socket).",
        version="1",
        openapi_url=OPENAPI_PATH,
        docs_url=None,  # nothing on the station would show them
        redoc_url=None,
        responses=ERROR_RESPONSES,
        # The UIs' clients always send a Content-Type; a body without one is read as JSON.
        strict_content_type=False,
    )
    app.state.context = ApiContext(
        service=service,
        calls=calls,
        precheck=precheck,
        exports=exports,
        heartbeat_seconds=heartbeat_seconds,
    )
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_invalid)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_middleware(_BodyLimit)
    return app


# --------------------------------------------------------------------------- errors


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    """Where and why a request is invalid, from pydantic's errors: never the input itself
    (pydantic's ``input`` would echo what was sent: a PIN, maybe a CPR number)."""
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ())]
        if loc[:1] == ["body"]:
            loc = loc[1:]  # the body is the request's whole subject
        parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    more = len(errors) - 5
    if more > 0:
        parts.append(f"and {more} more")
    return "invalid request: " + "; ".join(parts)


async def _on_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(ApiError.bad_request("request body is not valid JSON"))
    if any(tuple(e.get("loc", ()))[:1] == ("body",) for e in errors) and not _json_body(request):
        return error_response(
            ApiError(
                415,
                "unsupported_media_type",
                "request bodies must be application/json",
                N_("The request had the wrong format. Contact IT."),
            )
        )
    return error_response(ApiError(422, "invalid", validation_message(errors), _INVALID))


def _json_body(request: Request) -> bool:
    """Whether the body was read as JSON (no Content-Type, or a JSON one)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return not ctype or ctype == "application/json" or ctype.endswith("+json")


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = ApiError(404, "not_found", "no such endpoint", N_("The function does not exist."))
    elif exc.status_code == 405:
        error = ApiError(
            405, "method_not_allowed", "method not allowed here", N_("The function does not exist.")
        )
    elif exc.status_code == 400:
        error = ApiError.bad_request(str(exc.detail))
    else:
        error = ApiError(exc.status_code, "http_error", str(exc.detail))
    response = error_response(error)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # Outside a route (a route's own bugs are answered by StationRoute).
    return unexpected_response(request, exc)


# --------------------------------------------------------------------------- body limit


class _BodyLimit:
    """Refuse request bodies above the limit with 413 before anything parses them.

    The body is read up front as it arrives (the API's bodies are small by contract) and
    replayed to the app, so a chunked upload without Content-Length is limited as surely as
    one with it. A body of only whitespace is replayed as no body (the endpoint's defaults).
    """

    _DRAIN_CAP: Final = 1024 * 1024

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit, user_message = _BODY_LIMITS.get(scope.get("path", ""), (MAX_BODY_BYTES, _TOO_LARGE))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await error_response(ApiError.bad_request("malformed Content-Length"))(
                    scope, receive, send
                )
                return
            if int(declared) > limit:
                await self._refuse(scope, receive, send, limit, user_message)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # disconnected before the body was complete: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, receive, send, limit, user_message)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if not body.strip():
            body = b""
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, limit: int, user_message: str
    ) -> None:
        # Read (and drop) what the client is still sending, up to a cap: answering while it
        # is mid-upload makes the kernel reset the connection, and the client would see a
        # reset instead of the 413.
        drained = 0
        while drained <= self._DRAIN_CAP:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        error = ApiError(413, "too_large", f"request body larger than {limit} bytes", user_message)
        response = error_response(error)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
