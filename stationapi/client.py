"""The UIs' client for stationd's local API: httpx over the Unix socket, typed methods.

    async with StationClient("/run/kontaktstation/stationd.sock") as station:
        state = await station.state()
        async for event in station.events():
            ...

Errors: every refusal from the daemon raises :class:`StationApiError` (the HTTP status, the
daemon's machine ``code``, its English ``str()`` and Danish ``user_message``);
:class:`StationLocked` is the 401 every lock causes (the staff UI exits on it);
:class:`StationUnavailable` means the daemon could not be reached at all. The staff token from
:meth:`StationClient.unlock` is kept on the client and sent as ``Authorization: Bearer``.

Tests and tools can pass ``transport=`` (e.g. ``httpx.MockTransport``) instead of a socket.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from station.daemon.errors import LOCKED_MESSAGE
from station.errors import StationError
from stationapi import models as m

__all__ = [
    "ApiEvent",
    "StationApiError",
    "StationClient",
    "StationClientError",
    "StationLocked",
    "StationUnavailable",
]

_M = TypeVar("_M", bound=BaseModel)


class StationClientError(StationError):
    """Base of the client's errors."""

    default_user_message = "Stationen svarer ikke. Vent lidt, og prøv igen."


class StationUnavailable(StationClientError):
    """stationd could not be reached (not running, socket missing, timed out)."""


class StationApiError(StationClientError):
    """stationd refused the request; ``status``, ``code`` and both texts say why."""

    def __init__(
        self,
        status: int,
        code: str,
        log_message: str,
        user_message: str | None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(f"stationd answered {status} {code}: {log_message}", user_message)
        self.status = status
        self.code = code
        self.retry_after_seconds = retry_after_seconds


class StationLocked(StationApiError):
    """401: no staff session (the station locked, or was never unlocked)."""

    default_user_message = LOCKED_MESSAGE


@dataclass(frozen=True, slots=True)
class ApiEvent:
    """One server-sent event: ``kind`` (``state``, ``locked``, ...), its data and sequence."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)
    seq: int | None = None


class StationClient:
    """Async client for stationd (see the module docs). Use as an async context manager."""

    def __init__(
        self,
        socket_path: str | Path | None = None,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if transport is None:
            if socket_path is None:
                raise ValueError("give socket_path or transport")
            transport = httpx.AsyncHTTPTransport(uds=str(socket_path))
        self.token = token
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            transport=transport,
            base_url="http://stationd",
            timeout=httpx.Timeout(timeout),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # ------------------------------------------------------------------ plumbing

    def _headers(self, staff: bool) -> dict[str, str]:
        # Without a token the request still goes out: the daemon's 401 is the one answer.
        if not staff or not self.token:
            return {}
        return {"Authorization": f"Bearer {self.token}"}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        staff: bool = False,
        body: BaseModel | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        content = body.model_dump_json(exclude_none=True).encode() if body is not None else None
        if json_body is not None:
            content = json.dumps(dict(json_body), separators=(",", ":")).encode()
        headers = self._headers(staff)
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(
                method, path, content=content, headers=headers, params=params
            )
        except httpx.TimeoutException as exc:
            raise StationUnavailable(f"stationd did not answer {method} {path}: timeout") from exc
        except httpx.TransportError as exc:
            raise StationUnavailable(
                f"stationd unreachable for {method} {path}: {type(exc).__name__}"
            ) from exc
        if response.status_code >= 400:
            raise _api_error(response)
        return response

    @staticmethod
    def _parse(model: type[_M], response: httpx.Response) -> _M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise StationClientError(
                f"stationd sent an unexpected {model.__name__} ({exc.error_count()} error(s))"
            ) from None

    @classmethod
    def _parse_list(cls, model: type[_M], response: httpx.Response) -> list[_M]:
        try:
            raw = json.loads(response.content)
            return [model.model_validate(item) for item in raw["items"]]
        except (ValueError, KeyError, TypeError, ValidationError):
            raise StationClientError(
                f"stationd sent an unexpected list of {model.__name__}"
            ) from None

    # ------------------------------------------------------------------ open endpoints

    async def state(self) -> m.StateOut:
        """The session state (no token needed)."""
        return self._parse(m.StateOut, await self._request("GET", "/v1/state"))

    async def settings(self) -> m.SettingsOut:
        """IT's settings for the UIs, e.g. the language (no token needed)."""
        return self._parse(m.SettingsOut, await self._request("GET", "/v1/settings"))

    async def lock(self, reason: str = "staff_action") -> m.LockResponse:
        """Lock now (``staff_action``), or ``leave`` (in a call: the resident goes private).

        The token is dropped: every lock revokes it.
        """
        response = await self._request("POST", "/v1/lock", body=m.LockRequest(reason=reason))  # type: ignore[arg-type]
        self.token = None
        return self._parse(m.LockResponse, response)

    async def enroll_staff(
        self,
        code: str,
        pin: str,
        *,
        sponsor_staff_id: str | None = None,
        sponsor_pin: str | None = None,
    ) -> str:
        """A new staff member's slot, made here with IT's one-time code; their staff id.

        ``POST /v1/staff/enroll`` (no token: the code and, after the first staff member, an
        enrolled colleague's PIN are the authorisation). Refusals carry Danish user messages.
        """
        body = {
            "code": code,
            "pin": pin,
            "sponsor_staff_id": sponsor_staff_id,
            "sponsor_pin": sponsor_pin,
        }
        response = await self._request("POST", "/v1/staff/enroll", json_body=body)
        return self._parse(m.StaffEnrolledOut, response).staff_id

    async def unlock(self, staff_id: str, pin: str) -> m.UnlockResponse:
        """Unlock with a PIN; keeps the staff token for later calls.

        The result carries the vault key (``vault_key``): move it into a ``VaultKey`` at
        once and drop the result (only the staff UI unlocks).
        """
        response = await self._request(
            "POST", "/v1/unlock", body=m.UnlockRequest(staff_id=staff_id, pin=pin)
        )
        result = self._parse(m.UnlockResponse, response)
        self.token = result.token
        return result

    async def upcoming(self, limit: int = 10) -> m.UpcomingOut:
        """The lock screen's coming consultations (times and clinic names only)."""
        return self._parse(
            m.UpcomingOut, await self._request("GET", "/v1/upcoming", params={"limit": limit})
        )

    async def health(self) -> m.HealthOut:
        """The hardware checks."""
        return self._parse(m.HealthOut, await self._request("GET", "/v1/health"))

    async def enrollment(self) -> m.EnrollmentOut:
        """The enrollment code and QR text of an unprovisioned station (404 once provisioned)."""
        return self._parse(m.EnrollmentOut, await self._request("GET", "/v1/enrollment"))

    async def call_control(
        self, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST one of the resident's call controls (``/v1/call/...``, no token); the answer.

        Open like ``/v1/lock``: the locked UI sends these during a private call.
        """
        if not path.startswith("/v1/call/"):
            raise ValueError("call controls live under /v1/call/")
        response = await self._request("POST", path, json_body=body if body is not None else {})
        try:
            data = json.loads(response.content) if response.content else {}
        except ValueError:
            raise StationClientError(f"stationd sent a non-JSON answer to {path}") from None
        return data if isinstance(data, dict) else {"value": data}

    async def events(self, *, read_timeout: float | None = 45.0) -> AsyncIterator[ApiEvent]:
        """Server-sent events until the daemon ends the stream (shutdown) or the caller stops.

        The first event is ``snapshot`` (the current state). ``read_timeout`` should exceed
        the daemon's heartbeat (15 s): silence longer than that means the daemon is gone,
        and :class:`StationUnavailable` is raised.
        """
        timeout = httpx.Timeout(self._timeout, read=read_timeout)
        try:
            async with self._http.stream("GET", "/v1/events", timeout=timeout) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _api_error(response)
                async for event in _parse_sse(response.aiter_lines()):
                    yield event
        except httpx.TimeoutException as exc:
            raise StationUnavailable("stationd's event stream went silent") from exc
        except httpx.TransportError as exc:
            raise StationUnavailable(
                f"stationd's event stream failed: {type(exc).__name__}"
            ) from exc

    # ------------------------------------------------------------------ session (staff)

    async def _transition(self, path: str, body: BaseModel | None = None) -> m.StateOut:
        return self._parse(m.StateOut, await self._request("POST", path, staff=True, body=body))

    async def begin_check(self, appointment_id: str) -> m.StateOut:
        """Start the pre-call check for a booked consultation."""
        return await self._transition(
            "/v1/session/begin-check", m.BeginCheckRequest(appointment_id=appointment_id)
        )

    async def check_passed(self) -> m.StateOut:
        """The pre-call check passed: dial and wait for the GP."""
        return await self._transition("/v1/session/check-passed")

    async def cancel(self, reason: str | None = None) -> m.StateOut:
        """Call off the check or the waiting call."""
        return await self._transition("/v1/session/cancel", m.CancelRequest(reason=reason))

    async def resume_wrap_up(self, appointment_id: str | None = None) -> m.StateOut:
        """Open a pending wrap-up (after a private call)."""
        return await self._transition(
            "/v1/session/resume-wrap-up", m.ResumeWrapUpRequest(appointment_id=appointment_id)
        )

    async def finish_wrap_up(self) -> m.StateOut:
        """The note is written: back to the staff screen."""
        return await self._transition("/v1/session/finish-wrap-up")

    async def touch(self) -> m.StateOut:
        """Staff activity (postpones the idle lock)."""
        return await self._transition("/v1/session/touch")

    # ------------------------------------------------------------------ blind store (staff)

    async def clinics(self) -> list[m.ClinicOut]:
        """The GP clinics from the configuration."""
        return self._parse_list(m.ClinicOut, await self._request("GET", "/v1/clinics", staff=True))

    async def create_consultation(
        self,
        *,
        clinic_id: str,
        starts_at: datetime,
        ends_at: datetime,
        consultation_type: str,
        consultation_id: str | None = None,
    ) -> m.ConsultationOut:
        """Book a consultation (clear metadata only)."""
        body = m.ConsultationCreate(
            id=consultation_id,
            clinic_id=clinic_id,
            starts_at=starts_at,
            ends_at=ends_at,
            consultation_type=consultation_type,  # type: ignore[arg-type]
        )
        response = await self._request("POST", "/v1/consultations", staff=True, body=body)
        return self._parse(m.ConsultationOut, response)

    async def consultations(
        self,
        *,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
        statuses: list[str] | None = None,
    ) -> list[m.ConsultationOut]:
        """Consultations by start time, optionally filtered."""
        params: dict[str, Any] = {}
        if starts_from is not None:
            params["from"] = starts_from.isoformat()
        if starts_before is not None:
            params["before"] = starts_before.isoformat()
        if statuses:
            params["status"] = statuses
        response = await self._request("GET", "/v1/consultations", staff=True, params=params)
        return self._parse_list(m.ConsultationOut, response)

    async def consultation(self, consultation_id: str) -> m.ConsultationOut:
        """One consultation."""
        response = await self._request("GET", f"/v1/consultations/{consultation_id}", staff=True)
        return self._parse(m.ConsultationOut, response)

    async def update_consultation(
        self, consultation_id: str, update: m.ConsultationUpdate
    ) -> m.ConsultationOut:
        """Re-book (clinic, times, type)."""
        response = await self._request(
            "PATCH", f"/v1/consultations/{consultation_id}", staff=True, body=update
        )
        return self._parse(m.ConsultationOut, response)

    async def set_consultation_status(self, consultation_id: str, status: str) -> m.ConsultationOut:
        """Set ``booked``, ``in_call``, ``ended`` or ``cancelled``."""
        response = await self._request(
            "PUT",
            f"/v1/consultations/{consultation_id}/status",
            staff=True,
            body=m.ConsultationStatusRequest(status=status),  # type: ignore[arg-type]
        )
        return self._parse(m.ConsultationOut, response)

    async def mark_documented(self, consultation_id: str) -> m.ConsultationOut:
        """The consultation is in the care record: the retention clock starts."""
        response = await self._request(
            "POST", f"/v1/consultations/{consultation_id}/documented", staff=True
        )
        return self._parse(m.ConsultationOut, response)

    async def put_key(self, consultation_id: str, wrapped_key: bytes) -> m.KeyOut:
        """Store the consultation's wrapped data key."""
        response = await self._request(
            "PUT",
            f"/v1/consultations/{consultation_id}/key",
            staff=True,
            body=m.KeyIn(wrapped_key=wrapped_key),
        )
        return self._parse(m.KeyOut, response)

    async def get_key(self, consultation_id: str) -> bytes:
        """The consultation's wrapped data key."""
        response = await self._request(
            "GET", f"/v1/consultations/{consultation_id}/key", staff=True
        )
        return self._parse(m.KeyOut, response).wrapped_key

    async def add_entry(
        self,
        consultation_id: str,
        sealed: Mapping[str, bytes],
        *,
        entry_id: str | None = None,
        status: str = "waiting",
    ) -> m.EntryOut:
        """Queue a resident: sealed fields only."""
        body = m.EntryCreate.model_validate(
            {"id": entry_id, "sealed": dict(sealed), "status": status}
        )
        response = await self._request(
            "POST", f"/v1/consultations/{consultation_id}/entries", staff=True, body=body
        )
        return self._parse(m.EntryOut, response)

    async def entries(self, consultation_id: str) -> list[m.EntryOut]:
        """The consultation's queue, in order."""
        response = await self._request(
            "GET", f"/v1/consultations/{consultation_id}/entries", staff=True
        )
        return self._parse_list(m.EntryOut, response)

    async def entry(self, entry_id: str) -> m.EntryOut:
        """One queue entry."""
        return self._parse(
            m.EntryOut, await self._request("GET", f"/v1/entries/{entry_id}", staff=True)
        )

    async def update_entry(self, entry_id: str, update: m.EntryUpdate) -> m.EntryOut:
        """Replace/remove sealed fields or change the status."""
        response = await self._request("PATCH", f"/v1/entries/{entry_id}", staff=True, body=update)
        return self._parse(m.EntryOut, response)

    async def set_entry_status(self, entry_id: str, status: str) -> m.EntryOut:
        """Set ``waiting``, ``in_call``, ``done`` or ``skipped``."""
        response = await self._request(
            "PUT",
            f"/v1/entries/{entry_id}/status",
            staff=True,
            body=m.EntryStatusRequest(status=status),  # type: ignore[arg-type]
        )
        return self._parse(m.EntryOut, response)

    async def delete_entry(self, entry_id: str) -> None:
        """Take a resident out of the queue."""
        await self._request("DELETE", f"/v1/entries/{entry_id}", staff=True)

    async def reorder_entries(self, consultation_id: str, entry_ids: list[str]) -> list[m.EntryOut]:
        """Set the queue order (every entry once)."""
        response = await self._request(
            "PUT",
            f"/v1/consultations/{consultation_id}/entries/order",
            staff=True,
            body=m.OrderRequest(entry_ids=entry_ids),
        )
        return self._parse_list(m.EntryOut, response)

    async def add_note(
        self,
        consultation_id: str,
        body: bytes,
        *,
        note_id: str | None = None,
        entry_id: str | None = None,
    ) -> m.NoteOut:
        """Store a sealed wrap-up note."""
        response = await self._request(
            "POST",
            f"/v1/consultations/{consultation_id}/notes",
            staff=True,
            body=m.NoteCreate(id=note_id, entry_id=entry_id, body=body),
        )
        return self._parse(m.NoteOut, response)

    async def notes(self, consultation_id: str) -> list[m.NoteOut]:
        """The consultation's sealed notes."""
        response = await self._request(
            "GET", f"/v1/consultations/{consultation_id}/notes", staff=True
        )
        return self._parse_list(m.NoteOut, response)

    async def sealed_events(self, consultation_id: str) -> list[m.SealedEventOut]:
        """What stationd sealed to the vault while locked (open with the vault key)."""
        response = await self._request(
            "GET", f"/v1/consultations/{consultation_id}/sealed-events", staff=True
        )
        return self._parse_list(m.SealedEventOut, response)

    # ------------------------------------------------------------------ care-record export
    # station.export.wire is imported per call: it is light, but the locked UI (which
    # imports this client too) should not load the export package at all.

    async def export_settings(self) -> Any:
        """``GET /v1/exports/settings``: ``delivery`` (fhir/summary/unavailable), the key."""
        from station.export.wire import ExportSettingsOut

        response = await self._request("GET", "/v1/exports/settings", staff=True)
        return self._parse(ExportSettingsOut, response)

    async def enqueue_export(
        self,
        *,
        export_id: str,
        consultation_id: str,
        sealed: bytes,
        entry_id: str | None = None,
    ) -> Any:
        """``POST /v1/exports``: queue a sealed export (``station.export.seal_export``).

        Idempotent by ``export_id``; raises :class:`StationApiError` with code
        ``export_not_configured`` (409) when there is no endpoint (show the summary).
        """
        from station.export.wire import ExportCreate, ExportOut

        body = ExportCreate(
            export_id=export_id, consultation_id=consultation_id, entry_id=entry_id, sealed=sealed
        )
        response = await self._request("POST", "/v1/exports", staff=True, body=body)
        return self._parse(ExportOut, response)

    async def exports(self, consultation_id: str) -> list[Any]:
        """``GET /v1/consultations/{id}/exports``: each export's delivery progress."""
        from station.export.wire import ExportOut

        response = await self._request(
            "GET", f"/v1/consultations/{consultation_id}/exports", staff=True
        )
        return self._parse_list(ExportOut, response)

    async def retry_export(self, export_id: str) -> Any:
        """``POST /v1/exports/{id}/retry``: try a waiting export now."""
        from station.export.wire import ExportOut

        response = await self._request("POST", f"/v1/exports/{export_id}/retry", staff=True)
        return self._parse(ExportOut, response)


def _api_error(response: httpx.Response) -> StationApiError:
    try:
        body = m.ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return StationApiError(
            response.status_code, "http_error", f"HTTP {response.status_code}", None
        )
    cls = StationLocked if body.code == "locked" else StationApiError
    return cls(
        response.status_code, body.code, body.error, body.user_message, body.retry_after_seconds
    )


async def _parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[ApiEvent]:
    """Server-sent events from text lines (the subset stationd sends: id, event, data)."""
    kind = "message"
    data: list[str] = []
    seq: int | None = None
    async for line in lines:
        if not line:
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except json.JSONDecodeError:
                    payload = {"raw": "\n".join(data)}
                yield ApiEvent(
                    kind, payload if isinstance(payload, dict) else {"value": payload}, seq
                )
            kind, data, seq = "message", [], None
            continue
        if line.startswith(":"):
            continue  # heartbeat comment
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            seq = int(value) if value.isdigit() else None
