"""The local API: HTTP + JSON on stationd's Unix socket (Starlette, served by uvicorn).

Versioned under ``/v1``. Every body is JSON; every refusal is a 4xx with
``{"error": <English>, "user_message": <Danish>, "code": <machine word>}``; bad input never
produces a 5xx. Request bodies are capped (:data:`MAX_BODY_BYTES`), read incrementally, so
an oversized request is refused before it is held in memory.

Three kinds of endpoint:

- open to both UIs, no token: ``GET /v1/state``, ``GET /v1/events`` (server-sent events),
  ``POST /v1/lock``, ``POST /v1/unlock``, ``GET /v1/upcoming`` (the lock screen: times and
  clinic names only), ``GET /v1/health``, ``GET /v1/settings`` (IT's language for the UIs);
- staff-only, ``Authorization: Bearer <token>`` from ``/v1/unlock``: the blind store's
  records (consultations, wrapped keys, queue entries, notes, sealed events) and the session
  transitions the staff UI drives. Each such request counts as activity for the idle lock.
  Every lock revokes every token at once; later requests get 401 "Stationen er låst".

The API never handles plaintext personal data: sealed fields travel as base64 of bytes it
cannot open, and everything in clear is an id, a time, a status or a clinic name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from station.core.session import LockReason, SessionState
from station.daemon.errors import ApiError
from station.daemon.events import Event
from station.daemon.service import StationService
from station.daemon.tokens import StaffToken
from station.errors import StationError
from station.storage.store import (
    Clinic,
    Consultation,
    Note,
    QueueEntry,
    SealedEvent,
    StoreConflict,
    StoreCorrupt,
    StoreInvalid,
    StoreNotFound,
    new_id,
)
from stationapi import models as m

__all__ = ["DEFAULT_HEARTBEAT_SECONDS", "MAX_BODY_BYTES", "build_app"]

_log = logging.getLogger(__name__)

#: Largest request body: a queue entry's six sealed fields at the store's 64 KiB cap, in
#: base64, fit; anything bigger is a bug or an attack.
MAX_BODY_BYTES: Final = 512 * 1024
#: SSE comment lines this often keep proxies and the client's read timeout happy.
DEFAULT_HEARTBEAT_SECONDS: Final = 15.0
#: Events an SSE client may fall behind by before the oldest are dropped.
SSE_QUEUE_SIZE: Final = 64

_M = TypeVar("_M", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]


# --------------------------------------------------------------------------- plumbing


def _json(model: BaseModel | dict[str, Any], status: int = 200) -> Response:
    if isinstance(model, BaseModel):
        body = model.model_dump_json().encode()
    else:
        body = json.dumps(model, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type="application/json")


def _error_response(error: ApiError) -> Response:
    body = m.ErrorBody(
        error=str(error),
        user_message=error.user_message,
        code=error.code,
        retry_after_seconds=error.retry_after_seconds,
    )
    headers = {}
    if error.retry_after_seconds:
        headers["Retry-After"] = str(max(1, round(error.retry_after_seconds)))
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="kontaktstation"'
    response = _json(body, error.status)
    response.headers.update(headers)
    return response


def _store_error(exc: StationError) -> ApiError:
    """Map the blind store's errors (whose texts never quote values) to API errors."""
    if isinstance(exc, StoreNotFound):
        return ApiError(404, "not_found", str(exc), exc.user_message)
    if isinstance(exc, StoreInvalid):
        return ApiError(422, "invalid", str(exc), exc.user_message)
    if isinstance(exc, StoreConflict):
        return ApiError(409, "conflict", str(exc), exc.user_message)
    if isinstance(exc, StoreCorrupt):
        _log.error("store is damaged: %s", exc)
    return ApiError.unavailable(str(exc), exc.user_message)


def _validation_message(exc: ValidationError) -> str:
    # loc + msg only: pydantic's "input" would echo what was sent (a PIN, maybe a CPR number).
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = len(exc.errors()) - 5
    if more > 0:
        parts.append(f"and {more} more")
    return "invalid request: " + "; ".join(parts)


def _validate(model: type[_M], data: Any) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            422,
            "invalid",
            _validation_message(exc),
            "Oplysningerne i forespørgslen var ugyldige. Prøv igen, eller kontakt IT.",
        ) from None


async def _body(request: Request, model: type[_M]) -> _M:
    """Read (bounded), parse and validate the JSON body as ``model``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError.bad_request("malformed Content-Length")
        if int(declared) > MAX_BODY_BYTES:
            raise _too_large()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise _too_large()
    if not raw.strip():
        data: Any = {}
    else:
        if ctype and ctype != "application/json":
            raise ApiError(
                415,
                "unsupported_media_type",
                "request bodies must be application/json",
                "Forespørgslen havde et forkert format. Kontakt IT.",
            )
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ApiError.bad_request("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid", "request body must be a JSON object")
    return _validate(model, data)


def _too_large() -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"request body larger than {MAX_BODY_BYTES} bytes",
        "Oplysningerne er for store til at blive gemt.",
    )


def _path_id(request: Request, name: str) -> str:
    value = request.path_params[name]
    try:
        return m.check_id(value)
    except ValueError:
        raise ApiError(404, "not_found", f"malformed {name} in the path") from None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# --------------------------------------------------------------------------- converters


def _consultation(c: Consultation) -> m.ConsultationOut:
    return m.ConsultationOut(
        id=c.id,
        clinic_id=c.clinic_id,
        starts_at=c.starts_at,
        ends_at=c.ends_at,
        consultation_type=c.consultation_type.value,
        status=c.status.value,
        created_at=c.created_at,
        documented_at=c.documented_at,
    )


def _entry(e: QueueEntry) -> m.EntryOut:
    return m.EntryOut(
        id=e.id,
        consultation_id=e.consultation_id,
        position=e.position,
        status=e.status.value,
        sealed=dict(e.sealed),
    )


def _note(n: Note) -> m.NoteOut:
    return m.NoteOut(
        id=n.id,
        consultation_id=n.consultation_id,
        entry_id=n.entry_id,
        created_at=n.created_at,
        body=n.body,
    )


def _sealed_event(e: SealedEvent) -> m.SealedEventOut:
    return m.SealedEventOut(
        id=e.id,
        consultation_id=e.consultation_id,
        created_at=e.created_at,
        kind=e.kind,
        blob=e.blob,
    )


def _clinic(c: Clinic) -> m.ClinicOut:
    return m.ClinicOut(
        id=c.id, name=c.name, provider_number=c.provider_number, video_room=c.video_room
    )


def _list_response(models: list[BaseModel]) -> Response:
    body = b'{"items":[' + b",".join(x.model_dump_json().encode() for x in models) + b"]}"
    return Response(body, media_type="application/json")


# --------------------------------------------------------------------------- the app


def build_app(
    service: StationService,
    *,
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    extra_routes: Sequence[tuple[str, Handler, str]] = (),
) -> Starlette:
    """The Starlette app for ``service``; uvicorn serves it on the Unix socket.

    ``extra_routes`` are ``(path, handler, method)`` from modules that own a feature (e.g.
    ``station.daemon.precheck``); they get the same error handling as every route here.
    """

    def state_out() -> m.StateOut:
        s = service.session
        remaining = s.idle_remaining()
        return m.StateOut(
            state=s.state.value,
            since=s.since,
            locked=s.is_locked,
            private=s.state is SessionState.IN_CALL_PRIVATE,
            appointment_id=s.appointment_id,
            call_admitted=s.call_admitted,
            pending_wrap_ups=list(s.pending_wrap_ups),
            idle_remaining_seconds=remaining.total_seconds() if remaining is not None else None,
        )

    def staff(request: Request) -> StaffToken:
        return service.authenticate(_bearer(request))

    async def db(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        try:
            return await service.db(fn, *args, **kwargs)
        except ApiError:
            raise
        except StationError as exc:
            raise _store_error(exc) from None

    def audit(action: str, staff_token: StaffToken, resident: str | None, outcome: str) -> None:
        service.audit.record(action, staff=staff_token.staff_id, resident=resident, outcome=outcome)

    # -- open endpoints ------------------------------------------------------------------

    async def get_state(request: Request) -> Response:
        return _json(state_out())

    async def get_settings(request: Request) -> Response:
        return _json(m.SettingsOut(language=service.language))

    async def post_lock(request: Request) -> Response:
        body = await _body(request, m.LockRequest)
        before = service.session.state
        if body.reason == "leave":
            service.leave()
        else:
            service.request_lock(LockReason.STAFF_ACTION)
        after = service.session.state
        return _json(m.LockResponse(state=after.value, changed=after is not before))

    async def post_unlock(request: Request) -> Response:
        body = await _body(request, m.UnlockRequest)
        token, transition, key = await service.unlock(body.staff_id, body.pin)
        try:
            # The key hand-over (see StationService.unlock): encoded once, then zeroed here.
            return _json(
                m.UnlockResponse(
                    token=token,
                    staff_id=body.staff_id,
                    state=transition.to_state.value,
                    vault_key=bytes(key),
                )
            )
        finally:
            for i in range(len(key)):
                key[i] = 0

    async def get_upcoming(request: Request) -> Response:
        raw = request.query_params.get("limit", "10")
        if not raw.isdigit() or not 1 <= int(raw) <= 50:
            raise ApiError(422, "invalid", "limit must be an integer 1-50")
        try:
            now, rows = await service.upcoming(int(raw))
        except StationError as exc:
            if isinstance(exc, ApiError):
                raise
            raise _store_error(exc) from None
        items = [
            m.UpcomingItem(
                starts_at=row.starts_at,
                ends_at=row.ends_at,
                clinic_name=row.clinic_name,
                due_soon=due,
            )
            for row, due in rows
        ]
        return _json(m.UpcomingOut(now=now, items=items))

    async def get_enrollment(request: Request) -> Response:
        # The provisioning agent's code and QR until IT approves the station; 404 once it is
        # enrolled, when no hub is configured, or before the hub first answered.
        agent = getattr(service, "provisioning", None)
        view = None if agent is None else agent.enrollment_view()
        if view is None or view.get("code") is None:
            raise ApiError(
                404,
                "not_found",
                "no enrollment code (enrolled, no hub, or the hub not reached yet)",
                "Stationens tilmeldingskode er ikke tilgængelig.",
            )
        return _json(
            m.EnrollmentOut(
                code=view["code"], qr_payload=view["qr_payload"], fingerprint=view["fingerprint"]
            )
        )

    async def get_health(request: Request) -> Response:
        checked_at, results = service.health
        if checked_at is None:
            results = await service.refresh_health()
            checked_at, _ = service.health
        checks = [
            m.HealthCheckOut(name=r.name, ok=r.ok, detail=r.detail, hint=r.hint, missing=r.missing)
            for r in results
        ]
        return _json(
            m.HealthOut(
                ok=all(c.ok for c in checks),
                checked_at=checked_at,
                checks=checks,
                ports=service.ports,
            )
        )

    async def get_events(request: Request) -> Response:
        subscription = service.broker.subscribe(SSE_QUEUE_SIZE)
        snapshot = service.broker.make_event("snapshot", state_out().model_dump(mode="json"))

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 1000\n\n" + _sse(snapshot)
                while True:
                    event = await subscription.get(wait=heartbeat_seconds)
                    if event is not None:
                        yield _sse(event)
                    elif subscription.closed:
                        return
                    else:
                        yield b": keepalive\n\n"
            finally:
                subscription.close()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # -- session transitions (staff) -----------------------------------------------------

    async def post_begin_check(request: Request) -> Response:
        staff(request)
        body = await _body(request, m.BeginCheckRequest)
        try:
            await service.begin_check(body.appointment_id)
        except StationError as exc:
            if isinstance(exc, ApiError):
                raise
            raise _store_error(exc) from None
        return _json(state_out())

    def simple_transition(name: str) -> Handler:
        async def handler(request: Request) -> Response:
            staff(request)
            await _body(request, m.EmptyRequest)
            service.transition(getattr(service.session, name))
            return _json(state_out())

        return handler

    async def post_cancel(request: Request) -> Response:
        staff(request)
        body = await _body(request, m.CancelRequest)
        service.transition(lambda: service.session.cancel(body.reason))
        return _json(state_out())

    async def post_resume_wrap_up(request: Request) -> Response:
        staff(request)
        body = await _body(request, m.ResumeWrapUpRequest)
        service.transition(lambda: service.session.resume_wrap_up(body.appointment_id))
        return _json(state_out())

    async def post_touch(request: Request) -> Response:
        # The one request that counts as staff activity (a person's key press or click).
        service.authenticate(_bearer(request), activity=True)
        return _json(state_out())

    # -- blind store (staff) ---------------------------------------------------------------

    async def list_clinics(request: Request) -> Response:
        staff(request)
        clinics: list[Clinic] = await db(service.store.list_clinics)
        return _list_response([_clinic(c) for c in clinics])

    async def create_consultation(request: Request) -> Response:
        who = staff(request)
        body = await _body(request, m.ConsultationCreate)
        created = await db(
            service.store.create_consultation,
            consultation_id=body.id or new_id(),
            clinic_id=body.clinic_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            consultation_type=body.consultation_type,
        )
        audit("record_created", who, None, "consultation")
        return _json(_consultation(created), 201)

    async def list_consultations(request: Request) -> Response:
        staff(request)
        query = _validate(
            m.ConsultationQuery,
            {
                "starts_from": request.query_params.get("from"),
                "starts_before": request.query_params.get("before"),
                "status": request.query_params.getlist("status") or None,
            },
        )
        rows: list[Consultation] = await db(
            service.store.list_consultations,
            starts_from=query.starts_from,
            starts_before=query.starts_before,
            statuses=query.status,
        )
        return _list_response([_consultation(c) for c in rows])

    async def get_consultation(request: Request) -> Response:
        staff(request)
        cid = _path_id(request, "cid")
        return _json(_consultation(await db(service.store.get_consultation, cid)))

    async def patch_consultation(request: Request) -> Response:
        who = staff(request)
        cid = _path_id(request, "cid")
        body = await _body(request, m.ConsultationUpdate)
        updated = await db(
            service.store.update_consultation,
            cid,
            clinic_id=body.clinic_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            consultation_type=body.consultation_type,
        )
        audit("record_changed", who, None, "consultation")
        return _json(_consultation(updated))

    async def put_consultation_status(request: Request) -> Response:
        staff(request)
        cid = _path_id(request, "cid")
        body = await _body(request, m.ConsultationStatusRequest)
        updated = await db(service.store.set_consultation_status, cid, body.status)
        return _json(_consultation(updated))

    async def post_documented(request: Request) -> Response:
        who = staff(request)
        cid = _path_id(request, "cid")
        await _body(request, m.EmptyRequest)
        updated = await db(service.store.mark_documented, cid, service.clock.now())
        audit("consultation_documented", who, None, "ok")
        return _json(_consultation(updated))

    async def put_key(request: Request) -> Response:
        staff(request)
        cid = _path_id(request, "cid")
        body = await _body(request, m.KeyIn)
        await db(service.store.get_consultation, cid)
        await db(service.store.put_consultation_key, cid, body.wrapped_key)
        return _json(m.KeyOut(consultation_id=cid, wrapped_key=body.wrapped_key))

    async def get_key(request: Request) -> Response:
        staff(request)
        cid = _path_id(request, "cid")
        key = await db(service.store.get_consultation_key, cid)
        return _json(m.KeyOut(consultation_id=cid, wrapped_key=key))

    async def create_entry(request: Request) -> Response:
        who = staff(request)
        cid = _path_id(request, "cid")
        body = await _body(request, m.EntryCreate)
        entry_id = body.id or new_id()
        entry = await db(
            service.store.add_entry,
            entry_id=entry_id,
            consultation_id=cid,
            sealed=dict(body.sealed),
            status=body.status,
        )
        audit("record_created", who, _pseudonym(entry_id), "queue_entry")
        return _json(_entry(entry), 201)

    async def list_entries(request: Request) -> Response:
        who = staff(request)
        cid = _path_id(request, "cid")
        entries: list[QueueEntry] = await db(service.store.list_entries, cid)
        for e in entries:
            audit("record_opened", who, _pseudonym(e.id), "queue_entry")
        return _list_response([_entry(e) for e in entries])

    async def get_entry(request: Request) -> Response:
        who = staff(request)
        eid = _path_id(request, "eid")
        entry = await db(service.store.get_entry, eid)
        audit("record_opened", who, _pseudonym(eid), "queue_entry")
        return _json(_entry(entry))

    async def patch_entry(request: Request) -> Response:
        who = staff(request)
        eid = _path_id(request, "eid")
        body = await _body(request, m.EntryUpdate)
        entry = await db(
            service.store.update_entry,
            eid,
            sealed=dict(body.sealed),
            remove_fields=list(body.remove_fields),
            status=body.status,
        )
        audit("record_changed", who, _pseudonym(eid), "queue_entry")
        return _json(_entry(entry))

    async def put_entry_status(request: Request) -> Response:
        who = staff(request)
        eid = _path_id(request, "eid")
        body = await _body(request, m.EntryStatusRequest)
        entry = await db(service.store.set_entry_status, eid, body.status)
        audit("record_changed", who, _pseudonym(eid), "status")
        return _json(_entry(entry))

    async def delete_entry(request: Request) -> Response:
        who = staff(request)
        eid = _path_id(request, "eid")
        await db(service.store.delete_entry, eid)
        audit("record_deleted", who, _pseudonym(eid), "queue_entry")
        return Response(status_code=204)

    async def put_order(request: Request) -> Response:
        staff(request)
        cid = _path_id(request, "cid")
        body = await _body(request, m.OrderRequest)
        entries: list[QueueEntry] = await db(service.store.reorder_entries, cid, body.entry_ids)
        return _list_response([_entry(e) for e in entries])

    async def create_note(request: Request) -> Response:
        who = staff(request)
        cid = _path_id(request, "cid")
        body = await _body(request, m.NoteCreate)
        note = await db(
            service.store.add_note,
            note_id=body.id or new_id(),
            consultation_id=cid,
            body=body.body,
            entry_id=body.entry_id,
        )
        audit("note_written", who, _pseudonym(body.entry_id), "ok")
        return _json(_note(note), 201)

    async def list_notes(request: Request) -> Response:
        who = staff(request)
        cid = _path_id(request, "cid")
        notes: list[Note] = await db(service.store.list_notes, cid)
        if notes:
            audit("record_opened", who, None, "notes")
        return _list_response([_note(n) for n in notes])

    async def list_sealed_events(request: Request) -> Response:
        staff(request)
        cid = _path_id(request, "cid")
        await db(service.store.get_consultation, cid)
        events: list[SealedEvent] = await db(service.store.list_sealed_events, cid)
        return _list_response([_sealed_event(e) for e in events])

    # -- errors ------------------------------------------------------------------------------

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error_response(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            error = ApiError(404, "not_found", "no such endpoint", "Funktionen findes ikke.")
        elif exc.status_code == 405:
            error = ApiError(
                405, "method_not_allowed", "method not allowed here", "Funktionen findes ikke."
            )
        else:
            error = ApiError(exc.status_code, "http_error", str(exc.detail))
        response = _error_response(error)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Our bug, not the caller's: logged with its type (never the request data).
        _log.error("unhandled %s in %s %s", type(exc).__name__, request.method, request.url.path)
        return _error_response(ApiError(500, "internal", "internal error"))

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError:
                raise
            except HTTPException:
                raise
            except Exception as exc:
                return await on_unexpected(request, exc)

        run.__name__ = handler.__name__
        return run

    def route(path: str, handler: Handler, *methods: str) -> Route:
        return Route(path, guarded(handler), methods=list(methods))

    routes = [
        route("/v1/state", get_state, "GET"),
        route("/v1/settings", get_settings, "GET"),
        route("/v1/events", get_events, "GET"),
        route("/v1/lock", post_lock, "POST"),
        route("/v1/unlock", post_unlock, "POST"),
        route("/v1/upcoming", get_upcoming, "GET"),
        route("/v1/health", get_health, "GET"),
        route("/v1/enrollment", get_enrollment, "GET"),
        route("/v1/session/begin-check", post_begin_check, "POST"),
        route("/v1/session/check-passed", simple_transition("check_passed"), "POST"),
        route("/v1/session/cancel", post_cancel, "POST"),
        route("/v1/session/resume-wrap-up", post_resume_wrap_up, "POST"),
        route("/v1/session/finish-wrap-up", simple_transition("finish_wrap_up"), "POST"),
        route("/v1/session/touch", post_touch, "POST"),
        route("/v1/clinics", list_clinics, "GET"),
        route("/v1/consultations", create_consultation, "POST"),
        route("/v1/consultations", list_consultations, "GET"),
        route("/v1/consultations/{cid}", get_consultation, "GET"),
        route("/v1/consultations/{cid}", patch_consultation, "PATCH"),
        route("/v1/consultations/{cid}/status", put_consultation_status, "PUT"),
        route("/v1/consultations/{cid}/documented", post_documented, "POST"),
        route("/v1/consultations/{cid}/key", put_key, "PUT"),
        route("/v1/consultations/{cid}/key", get_key, "GET"),
        route("/v1/consultations/{cid}/entries", create_entry, "POST"),
        route("/v1/consultations/{cid}/entries", list_entries, "GET"),
        route("/v1/consultations/{cid}/entries/order", put_order, "PUT"),
        route("/v1/consultations/{cid}/notes", create_note, "POST"),
        route("/v1/consultations/{cid}/notes", list_notes, "GET"),
        route("/v1/consultations/{cid}/sealed-events", list_sealed_events, "GET"),
        route("/v1/entries/{eid}", get_entry, "GET"),
        route("/v1/entries/{eid}", patch_entry, "PATCH"),
        route("/v1/entries/{eid}", delete_entry, "DELETE"),
        route("/v1/entries/{eid}/status", put_entry_status, "PUT"),
    ]
    routes += [route(path, handler, method) for path, handler, method in extra_routes]
    return Starlette(
        routes=routes,
        exception_handlers={
            ApiError: on_api_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
    )


def _sse(event: Event) -> bytes:
    data = json.dumps(event.as_json(), separators=(",", ":"))
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n".encode()


def _pseudonym(entry_id: str | None) -> str | None:
    """An entry id as the audit log's resident pseudonym (lower-case), or None if unusable."""
    if entry_id is None:
        return None
    lowered = entry_id.lower()
    return lowered if lowered[:1].isalnum() else None
