"""The hub's web application: the rendezvous API for stations and GP pages, and the GP page.

Over 500 lines for one job, the hub's HTTP surface: the station's and the GP's endpoints, the
pages and the error mapping, so every route and its credential are read in one place; the
rules behind them are :mod:`hub.rendezvous` and :mod:`hub.provisioning`.

One factory, :func:`create_app`, builds the app for the CLI and for tests. Routes are a thin
shell around :class:`~hub.rendezvous.Rendezvous`; every error becomes ``{"error": ..., "code":
...}`` (English) with a 4xx status, and bad input never reaches a 5xx.

Two credentials:

* **Station** (``/api/station/...``): ``Authorization: Bearer <session token>``, a short-lived
  token the hub issues for a request signed with the station's enrolled Ed25519 identity
  (``POST /api/provisioning/v1/rendezvous-session``, see :mod:`hub.station_auth`). Every room
  belongs to the station that created it; another station gets 404 as for an unknown room.
  The legacy shared token only where IT set ``allow_shared_station_token``.
* **GP** (``/api/gp/...``): ``Authorization: Bearer <link token>``, the token from the link's
  fragment; the admitted browser also sends ``X-GP-Session``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib import resources
from importlib.metadata import version
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Header, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.codes import CodeRefused
from hub.errors import HubError, StationUnauthorized
from hub.gp_texts import render_code_page, render_gp_page
from hub.models import (
    MAX_GENERATION,
    MAX_VERSION,
    AdmitResponse,
    AnswerBody,
    CandidateBody,
    CreatedRoom,
    ErrorBody,
    GpRoomView,
    Notice,
    OfferBody,
    PostedOffer,
    RoomCreate,
    SessionDescriptionView,
    StationRoomView,
    StationSession,
)
from hub.notifier import InProcessNotifier, RoomNotifier
from hub.provisioning.api import PREFIX as PROVISIONING_PREFIX
from hub.provisioning.api import Station as ProvisionedStation
from hub.provisioning.api import install_provisioning, open_provisioning
from hub.rendezvous import Rendezvous
from hub.settings import HubSettings
from hub.station_auth import SHARED_TOKEN_STATION, SessionTokens
from hub.store import RoomStore
from station.core.clock import Clock, SystemClock
from station.i18n import LANGUAGES, _, current_language

__all__ = ["create_app"]

_log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ROOM_ID = Path(pattern=r"^[0-9a-f]{24}$", description="The room's id (not the GP token).")
_SINCE = Query(
    ge=-1, le=MAX_VERSION, description="Return at once if the room's version is above this."
)
_TIMEOUT = Query(
    alias="timeout", ge=0, le=60, description="Long-poll: wait up to this many seconds."
)

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 410, 413, 422, 429)
}

# The GP page's Content-Security-Policy: own scripts and styles only, media from the call.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "media-src 'self' blob: mediastream:; img-src 'self' data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()",
    "X-Frame-Options": "DENY",
}

# The enrollment page shows what its link's fragment holds: no camera, no requests at all.
_CODE_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

_ENROLL_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "X-Frame-Options": "DENY",
}

_NOT_FOUND_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>
<p>{text}</p></body></html>
"""


def _not_found_page() -> str:
    """The page a mistyped or cut-off link shows the GP, in the hub's language."""
    return _NOT_FOUND_PAGE.format(
        lang=current_language(),
        title=html.escape(_("The page does not exist")),
        text=html.escape(
            _("Check that you used the whole link from the invitation to the video consultation.")
        ),
    )


_station_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="StationCredential",
    description=(
        "A rendezvous session token from POST /api/provisioning/v1/rendezvous-session (a "
        "request signed with the station's identity key); the legacy shared token only where "
        "the hub allows it."
    ),
)
_gp_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="GpLinkToken",
    description="The token from the fragment of the GP's link.",
)


def _require_station(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_station_bearer)],
) -> str:
    """The calling station's id (``shared-token`` for the legacy token), or 401."""
    if credentials is None:
        raise StationUnauthorized()
    presented = credentials.credentials
    sessions: SessionTokens = request.app.state.station_sessions
    clock: Clock = request.app.state.clock
    if presented.startswith("v1."):
        station_id = sessions.verify(presented, clock.now())
        if station_id is None:
            raise StationUnauthorized()
        return station_id
    settings: HubSettings = request.app.state.settings
    if settings.allow_shared_station_token and settings.station_token is not None:
        expected = settings.station_token.get_secret_value().encode("utf-8")
        if hmac.compare_digest(presented.encode("utf-8"), expected):
            return SHARED_TOKEN_STATION
    raise StationUnauthorized()


CallingStation = Annotated[str, Depends(_require_station)]


def _gp_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_gp_bearer)],
) -> str | None:
    return None if credentials is None else credentials.credentials


GpToken = Annotated[str | None, Depends(_gp_token)]
GpSession = Annotated[
    str | None,
    Header(alias="X-GP-Session", max_length=128, description="The admitted browser's session."),
]


def _error_response(error: HubError) -> JSONResponse:
    body = {"error": str(error), "code": error.code, **error.details()}
    headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else None
    return JSONResponse(body, status_code=error.status_code, headers=headers)


#: How much of an oversized body is read and dropped so the client gets its 413.
_DRAIN_CAP = 1024 * 1024


class _BodyLimit:
    """Refuse request bodies above the limit with 413 before anything parses them.

    Bodies are read up front (they are small by contract) and replayed to the app, so a
    chunked upload without Content-Length is limited as surely as one with it.

    stationd's ``_BodyLimit`` (:mod:`station.daemon.api`) reads and drains the same way; the
    hub may not import ``station.daemon`` (the "hub" import contract), and the two answer
    differently (a nonsense Content-Length is 413 here, 400 there; different error bodies), so
    each process keeps its own.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self._limit
            except ValueError:
                too_big = True  # a nonsense length is no better than a huge one
            if too_big:
                await self._refuse(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # Disconnected before the body was complete: nothing to answer.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Read (and drop) what the client is still sending, up to a cap: answering while it
        # is mid-upload makes the kernel reset the connection, and the client then sees a
        # reset instead of our 413. Beyond the cap a reset is the right answer anyway.
        drained = 0
        while drained <= _DRAIN_CAP:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        response = JSONResponse(
            {"error": f"request body larger than {self._limit} bytes", "code": "body_too_large"},
            status_code=413,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class _CommonHeaders:
    """Headers every response gets: nothing is cached, nothing sniffed, no Referer leaks."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in (
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self._app(scope, receive, with_headers)


def _static_text(name: str) -> str:
    return resources.files("hub").joinpath("static", name).read_text(encoding="utf-8")


async def _purge_forever(rendezvous: Rendezvous, interval: float) -> None:
    while True:
        try:
            await rendezvous.purge()
        except HubError as exc:
            _log.warning("purge failed: %s", exc)
        await asyncio.sleep(interval)


def create_app(
    settings: HubSettings,
    *,
    clock: Clock | None = None,
    store: RoomStore | None = None,
    notifier: RoomNotifier | None = None,
) -> FastAPI:
    """The hub's ASGI app. ``clock``, ``store`` and ``notifier`` are injectable for tests.

    The store is opened here (a SQLite file under ``settings.data_dir`` by default) and closed
    by the app's lifespan, which also purges expired rooms every ``purge_interval_seconds``.
    """
    if store is None and notifier is None and settings.database_url is not None:
        # Several hub instances: rooms and their wake-ups go through PostgreSQL.
        from hub.pg import postgres_rendezvous

        store, notifier = postgres_rendezvous(settings.database_url.get_secret_value())
    room_store = store if store is not None else RoomStore.sqlite(settings.sqlite_path)
    rendezvous_notifier = notifier if notifier is not None else InProcessNotifier()
    hub_clock = clock if clock is not None else SystemClock()
    rendezvous = Rendezvous(settings, room_store, rendezvous_notifier, hub_clock)
    provisioning = open_provisioning(settings, hub_clock)
    page_html = _static_text("gp.html")
    pages = {language: render_gp_page(page_html, language) for language in LANGUAGES}
    page_js = _static_text("gp.js")
    page_css = _static_text("gp.css")
    enroll_html = _static_text("enroll.html")
    enroll_js = _static_text("enroll.js")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await provisioning.start()
        start_notifier = getattr(rendezvous_notifier, "start", None)
        if start_notifier is not None:
            await start_notifier()  # PostgreSQL: LISTEN before the first long-poll
        task = asyncio.create_task(_purge_forever(rendezvous, settings.purge_interval_seconds))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await room_store.close()
            await provisioning.close()
            close_notifier = getattr(rendezvous_notifier, "aclose", None)
            if close_notifier is not None:
                await close_notifier()

    app = FastAPI(
        title="KontaktStation hub",
        summary="Rendezvous (signaling) between care-home stations and GPs' browsers.",
        version=version("kontaktstation"),
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI would load scripts from a CDN
        redoc_url=None,
        responses=_ERROR_RESPONSES,
    )
    app.state.settings = settings
    app.state.rendezvous = rendezvous
    app.state.clock = hub_clock
    sessions = SessionTokens(provisioning.secret.session_key, settings.station_session_ttl)
    app.state.station_sessions = sessions
    install_provisioning(app, provisioning)

    @app.post(
        f"{PROVISIONING_PREFIX}/rendezvous-session",
        tags=["station"],
        summary="A short-lived rendezvous token, for a request signed with the station's key",
    )
    async def rendezvous_session(record: ProvisionedStation) -> StationSession:
        token, expires_at = sessions.issue(record.station_id, hub_clock.now())
        return StationSession(token=token, expires_at=expires_at, station_id=record.station_id)

    # -- errors -----------------------------------------------------------------------------

    @app.exception_handler(HubError)
    async def hub_error(_request: Request, exc: HubError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Location and message only: pydantic's "input" would echo personal data back.
        details = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg"))}
            for error in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid"}
        summary = f"invalid request: {'.'.join(first['loc'])}: {first['msg']}"
        return JSONResponse(
            {"error": summary, "code": "invalid_request", "details": details}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and not request.url.path.startswith("/api/"):
            return HTMLResponse(_not_found_page(), status_code=404)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": str(exc.detail), "code": code},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The type and the frames, never the message: it might quote request data.
        route = getattr(request.scope.get("route"), "path", "?")
        frames = "".join(traceback.format_tb(exc.__traceback__))
        _log.error("unexpected %s on %s %s\n%s", type(exc).__name__, request.method, route, frames)
        return JSONResponse({"error": "internal error", "code": "internal_error"}, status_code=500)

    # -- station API ------------------------------------------------------------------------
    # Here and in the GP API, one thin route per endpoint (its credential, one Rendezvous
    # call, the view): each decorator is that endpoint's OpenAPI entry; alike by design.

    @app.post(
        "/api/station/rooms",
        status_code=201,
        tags=["station"],
        summary="Create the room for one booked appointment or round",
    )
    async def create_room(body: RoomCreate, caller: CallingStation) -> CreatedRoom:
        new = await rendezvous.create_room(body, caller)
        record = new.record
        return CreatedRoom(
            room_id=record.room_id,
            gp_url=new.gp_url,
            gp_code=new.gp_code,
            gp_code_url=f"{settings.public_base_url}/kode",
            starts_at=record.starts_at,
            ends_at=record.ends_at,
            valid_from=record.valid_from,
            valid_until=record.valid_until,
            ice_servers=rendezvous.turn_servers(record),
        )

    @app.get(
        "/api/station/rooms/{room_id}",
        tags=["station"],
        summary="The room; with `since`/`timeout` a long-poll for its next change",
    )
    async def station_room(
        room_id: Annotated[str, _ROOM_ID],
        caller: CallingStation,
        since: Annotated[int, _SINCE] = -1,
        wait_seconds: Annotated[float, _TIMEOUT] = 0.0,
    ) -> StationRoomView:
        await rendezvous.check_owner(room_id, caller)
        record = await rendezvous.wait_station_room(room_id, since, wait_seconds)
        return await rendezvous.station_view(record)

    @app.post(
        "/api/station/rooms/{room_id}/offer",
        tags=["station"],
        summary="Post the complete offer (a new generation) and who is waiting",
    )
    async def post_offer(
        room_id: Annotated[str, _ROOM_ID], body: OfferBody, caller: CallingStation
    ) -> PostedOffer:
        await rendezvous.check_owner(room_id, caller)
        record = await rendezvous.post_offer(room_id, body.sdp, body.waiting)
        return PostedOffer(generation=record.offer_generation, version=record.version)

    @app.get(
        "/api/station/rooms/{room_id}/answer",
        tags=["station"],
        summary="Long-poll for the GP's answer to one offer generation (204: not yet)",
        response_model=SessionDescriptionView,
        responses={204: {"description": "No answer within the timeout; ask again."}},
    )
    async def wait_answer(
        room_id: Annotated[str, _ROOM_ID],
        caller: CallingStation,
        generation: Annotated[int, Query(ge=1, le=MAX_GENERATION)],
        wait_seconds: Annotated[float, _TIMEOUT] = 0.0,
    ) -> SessionDescriptionView | Response:
        await rendezvous.check_owner(room_id, caller)
        record = await rendezvous.wait_answer(room_id, generation, wait_seconds)
        if record is None or record.answer_sdp is None:
            return Response(status_code=204)
        return SessionDescriptionView(generation=generation, type="answer", sdp=record.answer_sdp)

    @app.get(
        "/api/station/rooms/{room_id}/candidates",
        tags=["station"],
        summary="ICE candidates the GP page trickled for one offer generation",
    )
    async def gp_candidates(
        room_id: Annotated[str, _ROOM_ID],
        caller: CallingStation,
        generation: Annotated[int, Query(ge=1, le=MAX_GENERATION)],
    ) -> list[dict[str, object]]:
        await rendezvous.check_owner(room_id, caller)
        return await rendezvous.gp_candidates(room_id, generation)

    @app.post(
        "/api/station/rooms/{room_id}/notices",
        tags=["station"],
        summary="Fallback copy of a data-channel notice (private, staff back, current resident)",
    )
    async def post_notice(
        room_id: Annotated[str, _ROOM_ID], notice: Notice, caller: CallingStation
    ) -> StationRoomView:
        await rendezvous.check_owner(room_id, caller)
        record = await rendezvous.post_notice(room_id, notice)
        return await rendezvous.station_view(record)

    @app.post(
        "/api/station/rooms/{room_id}/end",
        tags=["station"],
        summary="End the call; the room's personal data is deleted",
    )
    async def end_call(
        room_id: Annotated[str, _ROOM_ID], caller: CallingStation
    ) -> StationRoomView:
        await rendezvous.check_owner(room_id, caller)
        return await rendezvous.station_view(await rendezvous.end_call(room_id))

    @app.post(
        "/api/station/rooms/{room_id}/revoke",
        tags=["station"],
        summary="Revoke the GP link (appointment cancelled)",
    )
    async def revoke(room_id: Annotated[str, _ROOM_ID], caller: CallingStation) -> StationRoomView:
        await rendezvous.check_owner(room_id, caller)
        return await rendezvous.station_view(await rendezvous.revoke(room_id))

    # -- GP API -----------------------------------------------------------------------------

    @app.get(
        "/api/gp/room",
        tags=["gp"],
        summary="The room behind the link; with `since`/`timeout` a long-poll",
    )
    async def gp_room(
        token: GpToken,
        session: GpSession = None,
        since: Annotated[int, _SINCE] = -1,
        wait_seconds: Annotated[float, _TIMEOUT] = 0.0,
    ) -> GpRoomView:
        access = await rendezvous.wait_gp_room(token, session, since, wait_seconds)
        return rendezvous.gp_view(access)

    @app.post("/api/gp/admit", tags=["gp"], summary="Admit the waiting station")
    async def admit(token: GpToken, session: GpSession = None) -> AdmitResponse:
        new_session, _record = await rendezvous.admit(token, session)
        access = await rendezvous.gp_room(token, new_session)
        return AdmitResponse(session=new_session, room=rendezvous.gp_view(access))

    @app.post("/api/gp/answer", tags=["gp"], summary="Answer the station's offer")
    async def answer(token: GpToken, body: AnswerBody, session: GpSession = None) -> GpRoomView:
        await rendezvous.gp_answer(token, session, body.generation, body.sdp)
        return rendezvous.gp_view(await rendezvous.gp_room(token, session))

    @app.post(
        "/api/gp/candidates",
        status_code=202,
        tags=["gp"],
        summary="Trickle one ICE candidate (kept for the station)",
    )
    async def candidate(token: GpToken, body: CandidateBody, session: GpSession = None) -> Response:
        await rendezvous.gp_candidate(token, session, body)
        return Response(status_code=202)

    @app.post(
        "/api/gp/leave",
        status_code=204,
        tags=["gp"],
        summary="The admitted page is being closed (the GP left; a reload comes back)",
    )
    async def leave(token: GpToken, session: GpSession = None) -> Response:
        await rendezvous.gp_leave(token, session)
        return Response(status_code=204)

    @app.post("/api/gp/hangup", status_code=204, tags=["gp"], summary="End the call")
    async def hangup(token: GpToken, session: GpSession = None) -> Response:
        await rendezvous.gp_hangup(token, session)
        return Response(status_code=204)

    # -- the GP page ------------------------------------------------------------------------

    @app.get("/gp", include_in_schema=False)
    async def page_redirect(request: Request) -> RedirectResponse:
        # Browsers keep the fragment (the token) across a redirect.
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"gp/{query}", status_code=308)

    @app.get("/gp/", include_in_schema=False)
    async def page(request: Request) -> HTMLResponse:
        # The link may ask for English (?lang=en); anything else gets Danish.
        language = "en" if request.query_params.get("lang") == "en" else "da"
        return HTMLResponse(pages[language], headers=_PAGE_HEADERS)

    @app.get("/gp/gp.js", include_in_schema=False)
    async def page_script() -> Response:
        return Response(page_js, media_type="text/javascript; charset=utf-8")

    @app.get("/gp/gp.css", include_in_schema=False)
    async def page_style() -> Response:
        return Response(page_css, media_type="text/css; charset=utf-8")

    # -- the short code's page (the fallback staff read over the phone; see hub/codes.py) ----

    @app.get("/kode", include_in_schema=False)
    async def code_page(request: Request) -> HTMLResponse:
        language = "en" if request.query_params.get("lang") == "en" else "da"
        return HTMLResponse(render_code_page(language), headers=_CODE_PAGE_HEADERS)

    @app.post("/kode", include_in_schema=False)
    async def code_redeem(request: Request) -> Response:
        language = "en" if request.query_params.get("lang") == "en" else "da"
        body = (await request.body()).decode("utf-8", errors="replace")
        typed = parse_qs(body).get("code", [""])[0]
        address = request.client.host if request.client else "?"
        try:
            gp_url = await rendezvous.redeem_code(typed, address)
        except CodeRefused as refused:
            status = 429 if refused.reason == "limited" else 404
            return HTMLResponse(
                render_code_page(language, refused.reason),
                status_code=status,
                headers=_CODE_PAGE_HEADERS,
            )
        # 303: the browser follows with a GET and keeps the fragment (the link's token).
        return RedirectResponse(gp_url, status_code=303, headers={"Cache-Control": "no-store"})

    # -- the enrollment QR's page (for IT: the code, the fingerprint, the approve command) ---

    @app.get("/enroll", include_in_schema=False)
    async def enroll_page() -> HTMLResponse:
        return HTMLResponse(enroll_html, headers=_ENROLL_PAGE_HEADERS)

    @app.get("/enroll/enroll.js", include_in_schema=False)
    async def enroll_script() -> Response:
        return Response(enroll_js, media_type="text/javascript; charset=utf-8")

    # Middleware order: the body limit runs first, so nothing oversized is ever parsed.
    app.add_middleware(_CommonHeaders)
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    return app
