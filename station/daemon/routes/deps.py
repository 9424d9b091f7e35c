"""What every router of stationd's API shares: who may call, the daemon's parts, the store.

- :class:`ApiContext` holds the daemon's parts (service, call controller, pre-call check,
  export); :func:`station.daemon.api.build_app` keeps it on ``app.state`` and the
  dependencies below hand the parts to the handlers.
- Authentication is a dependency: :data:`Staff` (a valid staff token, 401 ``locked``
  otherwise), :data:`StaffActivity` (the same, and it postpones the idle lock: only
  ``POST /v1/session/touch``) and :data:`StaffOrPrivate` (the resident's call controls:
  no token needed while the session is ``in_call_private``).
- Path ids (:data:`ConsultationId`, :data:`EntryId`, :data:`ExportId`) are checked against the
  id rule; a malformed one is a 404 (it cannot name anything), never echoed.
- :func:`run_store` runs a blind-store call on its worker and maps its errors (whose texts
  never quote values) to API errors.
- Every dependency is ``async def``: FastAPI would run a plain ``def`` on a worker thread,
  and the session, the tokens and the store's worker belong to the daemon's one loop.
- :class:`StationRoute` is the route class of every router: a bug in a handler becomes a 500
  with the error body, logged with its type only (never the request's data), instead of an
  exception that the server would log with its message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

from fastapi import Depends, Path, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.responses import Response

from station.core.session import SessionState
from station.daemon.calls import CallController
from station.daemon.errors import ApiError
from station.daemon.precheck import PreCheck
from station.daemon.service import StationService
from station.daemon.tokens import StaffToken
from station.errors import StationError
from station.export.service import ExportService
from station.storage.store import StoreConflict, StoreCorrupt, StoreInvalid, StoreNotFound
from stationapi import models as m

__all__ = [
    "ERROR_RESPONSES",
    "ApiContext",
    "Calls",
    "ConsultationId",
    "Context",
    "EntryId",
    "ExportId",
    "Service",
    "Staff",
    "StaffActivity",
    "StaffOrPrivate",
    "StationRoute",
    "audit",
    "error_response",
    "mapped",
    "pseudonym",
    "run_store",
    "store_error",
    "unexpected_response",
]

_log = logging.getLogger("station.daemon.api")

_T = TypeVar("_T")

#: Every refusal is documented with the one error body (English, Danish, machine code).
ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": m.ErrorBody, "description": description}
    for status, description in {
        400: "Malformed request (not JSON, bad Content-Length)",
        401: "No valid staff session: the station is locked (or the PIN was wrong)",
        403: "Refused (a disabled staff member, a colleague's refusal)",
        404: "No such record or endpoint (a malformed id is a 404 too)",
        409: "Not possible in the session's current state",
        410: "Expired (an enrollment code)",
        413: "Request body too large",
        415: "Request body is not JSON",
        422: "Invalid request (the fields and why, never their values)",
        429: "Too many attempts: wait (Retry-After)",
        500: "A bug in stationd (logged with its type only)",
        503: "A part of the station cannot serve the request now (store, hardware, hub)",
    }.items()
}


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The daemon's parts the API serves (built by ``station.daemon.app``)."""

    service: StationService
    calls: CallController
    precheck: PreCheck
    #: The care-record export; None when its outbox could not be opened.
    exports: ExportService | None
    #: SSE comment lines this often keep the client's read timeout happy.
    heartbeat_seconds: float


async def _context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(_context)]


async def _service(context: Context) -> StationService:
    return context.service


Service = Annotated[StationService, Depends(_service)]


async def _calls(context: Context) -> CallController:
    return context.calls


Calls = Annotated[CallController, Depends(_calls)]

# ----------------------------------------------------------------- authentication

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="StaffToken",
    description=(
        "The staff session's token from POST /v1/unlock. Every lock revokes every token; "
        "later requests get 401 'locked'."
    ),
)
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
_private_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="StaffTokenUnlessPrivate",
    description=(
        "The staff token, except while the session is in_call_private: then the resident's "
        "own call controls on the locked screen need none."
    ),
)
_PrivateCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(_private_bearer)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return None if credentials is None else credentials.credentials


async def _staff(service: Service, credentials: _Credentials) -> StaffToken:
    return service.authenticate(_token(credentials))


async def _staff_activity(service: Service, credentials: _Credentials) -> StaffToken:
    # The one request that counts as staff activity (a person's key press or click).
    return service.authenticate(_token(credentials), activity=True)


async def _staff_or_private(
    service: Service, credentials: _PrivateCredentials
) -> StaffToken | None:
    # The resident's own controls: no token, but only while the call is private.
    if service.session.state is SessionState.IN_CALL_PRIVATE:
        return None
    return service.authenticate(_token(credentials))


Staff = Annotated[StaffToken, Depends(_staff)]
StaffActivity = Annotated[StaffToken, Depends(_staff_activity)]
StaffOrPrivate = Annotated[StaffToken | None, Depends(_staff_or_private)]

# ----------------------------------------------------------------- path ids


def _checked_id(value: str, name: str) -> str:
    try:
        return m.check_id(value)
    except ValueError:
        raise ApiError(404, "not_found", f"malformed {name} in the path") from None


async def _consultation_id(
    cid: Annotated[str, Path(description="The consultation's opaque id.")],
) -> str:
    return _checked_id(cid, "cid")


async def _entry_id(eid: Annotated[str, Path(description="The queue entry's opaque id.")]) -> str:
    return _checked_id(eid, "eid")


async def _export_id(
    export_id: Annotated[str, Path(description="The export's opaque id.")],
) -> str:
    return _checked_id(export_id, "export_id")


ConsultationId = Annotated[str, Depends(_consultation_id)]
EntryId = Annotated[str, Depends(_entry_id)]
ExportId = Annotated[str, Depends(_export_id)]

# ----------------------------------------------------------------- the store


def store_error(exc: StationError) -> ApiError:
    """Map the blind store's errors (whose texts never quote values) to API errors."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, StoreNotFound):
        return ApiError(404, "not_found", str(exc), exc.user_message)
    if isinstance(exc, StoreInvalid):
        return ApiError(422, "invalid", str(exc), exc.user_message)
    if isinstance(exc, StoreConflict):
        return ApiError(409, "conflict", str(exc), exc.user_message)
    if isinstance(exc, StoreCorrupt):
        _log.error("store is damaged: %s", exc)
    return ApiError.unavailable(str(exc), exc.user_message)


async def run_store(
    service: StationService, fn: Callable[..., _T], /, *args: Any, **kwargs: Any
) -> _T:
    """``fn`` on the store's worker thread; its errors as API errors."""
    try:
        result: _T = await service.db(fn, *args, **kwargs)
    except StationError as exc:
        raise store_error(exc) from None
    return result


async def mapped(call: Awaitable[_T]) -> _T:
    """Await a service call that reads the store; its store errors as API errors."""
    try:
        return await call
    except StationError as exc:
        raise store_error(exc) from None


def audit(
    service: StationService, action: str, staff: StaffToken, resident: str | None, outcome: str
) -> None:
    """One audit entry naming the staff member (and a pseudonymous entry id, if any)."""
    service.audit.record(action, staff=staff.staff_id, resident=resident, outcome=outcome)


def pseudonym(entry_id: str | None) -> str | None:
    """An entry id as the audit log's resident pseudonym (lower-case), or None if unusable."""
    if entry_id is None:
        return None
    lowered = entry_id.lower()
    return lowered if lowered[:1].isalnum() else None


# ----------------------------------------------------------------- errors and the route class


def error_response(error: ApiError) -> Response:
    """The error body for ``error``, with ``Retry-After`` and ``WWW-Authenticate`` as due."""
    body = m.ErrorBody(
        error=str(error),
        user_message=error.user_message,
        code=error.code,
        retry_after_seconds=error.retry_after_seconds,
    )
    response = Response(
        body.model_dump_json(), status_code=error.status, media_type="application/json"
    )
    if error.retry_after_seconds:
        response.headers["Retry-After"] = str(max(1, round(error.retry_after_seconds)))
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="kontaktstation"'
    return response


def unexpected_response(request: Request, exc: BaseException) -> Response:
    """Our bug, not the caller's: a 500, logged with its type (never the request's data)."""
    _log.error("unhandled %s in %s %s", type(exc).__name__, request.method, request.url.path)
    return error_response(ApiError(500, "internal", "internal error"))


class StationRoute(APIRoute):
    """Every route of stationd's API: an unexpected exception answers 500 at once.

    Refusals (``ApiError``, HTTP and validation errors) go on to the app's handlers; anything
    else is a bug, answered here, so it is never re-raised into the server (which would log
    its message, and a message may quote what was sent).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The handler, guarded (see the class docs)."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (ApiError, HTTPException, RequestValidationError):
                raise
            except Exception as exc:
                return unexpected_response(request, exc)

        return guarded
