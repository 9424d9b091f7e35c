"""The staff UI's client: every endpoint of stationd, typed, with the staff token.

    async with StaffClient("/run/kontaktstation/stationd.sock") as station:
        unlocked = await station.unlock(staff_number, pin)
        consultations = await station.consultations()

:meth:`StaffClient.unlock` keeps the staff token on the client and sends it as
``Authorization: Bearer`` with every later request; every lock revokes it on stationd, and the
next request raises :class:`~stationapi.errors.StationLocked` (the staff UI exits on it).
Each method is one endpoint and returns its :mod:`stationapi.models` model, so no UI code
knows a URL path. Only the staff UI (and the demo that seeds it) imports this module; the
locked UI has :mod:`stationapi.locked`, which this client extends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from stationapi import models as m
from stationapi.locked import LockedClient

__all__ = ["StaffClient"]


class StaffClient(LockedClient):
    """Every endpoint of stationd (see the module docs). Use as an async context manager."""

    def __init__(
        self,
        socket_path: str | Path | None = None,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(socket_path, timeout=timeout, transport=transport)
        #: The staff session's token (from :meth:`unlock`), None while locked.
        self.token = token

    def _authorization(self) -> dict[str, str]:
        # Without a token the request still goes out: stationd's 401 is the one answer.
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # ------------------------------------------------------------------ session

    async def unlock(self, staff_number: str, pin: str) -> m.UnlockResponse:
        """``POST /v1/unlock``: unlock with a staff number and PIN; keeps the staff token for
        later calls (the answer names the pseudonymous staff id).

        The result carries the vault key (``vault_key``): move it into a ``VaultKey`` at
        once and drop the result.
        """
        body = self._body(m.UnlockRequest, staff_number=staff_number, pin=pin)
        result = await self._call(m.UnlockResponse, "POST", "/v1/unlock", body=body)
        self.token = result.token
        return result

    async def lock(self, reason: str = "staff_action") -> m.LockResponse:
        """``POST /v1/lock``: lock now (``staff_action``), or ``leave`` (in a call: the resident
        goes private; see :data:`~stationapi.models.LockReasonValue`). The token is dropped:
        every lock revokes it."""
        body = self._body(m.LockRequest, reason=reason)
        locked = await self._call(m.LockResponse, "POST", "/v1/lock", body=body)
        self.token = None
        return locked

    async def enroll_staff(
        self,
        code: str,
        pin: str,
        *,
        sponsor_staff_number: str | None = None,
        sponsor_pin: str | None = None,
    ) -> m.StaffEnrolledOut:
        """``POST /v1/staff/enroll``: a new staff member's slot, made here with IT's one-time
        code (no token: the code and, after the first staff member, an enrolled colleague's
        PIN are the authorisation). Refusals carry user messages from the catalogue."""
        body = self._body(
            m.StaffEnrollRequest,
            code=code,
            pin=pin,
            sponsor_staff_number=sponsor_staff_number,
            sponsor_pin=sponsor_pin,
        )
        return await self._call(m.StaffEnrolledOut, "POST", "/v1/staff/enroll", body=body)

    async def begin_check(self, appointment_id: str) -> m.StateOut:
        """``POST /v1/session/begin-check``: the pre-call check for a booked consultation."""
        body = self._body(m.BeginCheckRequest, appointment_id=appointment_id)
        return await self._call(m.StateOut, "POST", "/v1/session/begin-check", body=body)

    async def check_passed(self) -> m.StateOut:
        """``POST /v1/session/check-passed``: dial and wait for the GP (without the engine)."""
        return await self._call(m.StateOut, "POST", "/v1/session/check-passed")

    async def cancel(self, reason: str | None = None) -> m.StateOut:
        """``POST /v1/session/cancel``: call off the check or the waiting call."""
        body = self._body(m.CancelRequest, reason=reason)
        return await self._call(m.StateOut, "POST", "/v1/session/cancel", body=body)

    async def resume_wrap_up(self, appointment_id: str | None = None) -> m.StateOut:
        """``POST /v1/session/resume-wrap-up``: open a pending wrap-up (after a private call)."""
        body = self._body(m.ResumeWrapUpRequest, appointment_id=appointment_id)
        return await self._call(m.StateOut, "POST", "/v1/session/resume-wrap-up", body=body)

    async def finish_wrap_up(self) -> m.StateOut:
        """``POST /v1/session/finish-wrap-up``: the note is written; back to the staff screen."""
        return await self._call(m.StateOut, "POST", "/v1/session/finish-wrap-up")

    async def touch(self) -> m.StateOut:
        """``POST /v1/session/touch``: a person's input (postpones the idle lock)."""
        return await self._call(m.StateOut, "POST", "/v1/session/touch")

    # ------------------------------------------------------------------ blind store

    async def clinics(self) -> list[m.ClinicOut]:
        """``GET /v1/clinics``: the GP clinics from the configuration."""
        return (await self._call(m.ClinicList, "GET", "/v1/clinics")).items

    async def missed(self) -> list[m.MissedItem]:
        """``GET /v1/missed``: booked slots that passed without a call, not yet seen."""
        return (await self._call(m.MissedOut, "GET", "/v1/missed")).items

    async def acknowledge_missed(self, consultation_ids: list[str]) -> m.MissedAcknowledged:
        """``POST /v1/missed/acknowledge``: they were shown (the answer: how many were new)."""
        body = self._body(m.MissedAcknowledge, consultation_ids=consultation_ids)
        return await self._call(m.MissedAcknowledged, "POST", "/v1/missed/acknowledge", body=body)

    async def create_consultation(
        self,
        *,
        clinic_id: str,
        starts_at: datetime,
        ends_at: datetime,
        consultation_type: m.ConsultationTypeValue,
        consultation_id: str | None = None,
    ) -> m.ConsultationOut:
        """``POST /v1/consultations``: book a consultation (clear metadata only)."""
        body = self._body(
            m.ConsultationCreate,
            id=consultation_id,
            clinic_id=clinic_id,
            starts_at=starts_at,
            ends_at=ends_at,
            consultation_type=consultation_type,
        )
        return await self._call(m.ConsultationOut, "POST", "/v1/consultations", body=body)

    async def consultations(
        self,
        *,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
        statuses: Sequence[m.ConsultationStatusValue] | None = None,
    ) -> list[m.ConsultationOut]:
        """``GET /v1/consultations``: by start time, optionally filtered."""
        params: dict[str, Any] = {}
        if starts_from is not None:
            params["from"] = starts_from.isoformat()
        if starts_before is not None:
            params["before"] = starts_before.isoformat()
        if statuses:
            params["status"] = list(statuses)
        listed = await self._call(m.ConsultationList, "GET", "/v1/consultations", params=params)
        return listed.items

    async def consultation(self, consultation_id: str) -> m.ConsultationOut:
        """``GET /v1/consultations/{id}``."""
        return await self._call(m.ConsultationOut, "GET", _consultation(consultation_id))

    async def update_consultation(
        self, consultation_id: str, update: m.ConsultationUpdate
    ) -> m.ConsultationOut:
        """``PATCH /v1/consultations/{id}``: re-book (clinic, times, type)."""
        path = _consultation(consultation_id)
        return await self._call(m.ConsultationOut, "PATCH", path, body=update)

    async def set_consultation_status(self, consultation_id: str, status: str) -> m.ConsultationOut:
        """``PUT /v1/consultations/{id}/status``: ``booked``, ``in_call``, ``ended``,
        ``cancelled``."""
        body = self._body(m.ConsultationStatusRequest, status=status)
        path = _consultation(consultation_id, "status")
        return await self._call(m.ConsultationOut, "PUT", path, body=body)

    async def mark_documented(self, consultation_id: str) -> m.ConsultationOut:
        """``POST /v1/consultations/{id}/documented``: in the care record; retention starts."""
        path = _consultation(consultation_id, "documented")
        return await self._call(m.ConsultationOut, "POST", path)

    async def put_key(self, consultation_id: str, wrapped_key: bytes) -> m.KeyOut:
        """``PUT /v1/consultations/{id}/key``: store the consultation's wrapped data key."""
        body = self._body(m.KeyIn, wrapped_key=wrapped_key)
        return await self._call(m.KeyOut, "PUT", _consultation(consultation_id, "key"), body=body)

    async def get_key(self, consultation_id: str) -> bytes:
        """``GET /v1/consultations/{id}/key``: the consultation's wrapped data key."""
        key = await self._call(m.KeyOut, "GET", _consultation(consultation_id, "key"))
        return key.wrapped_key

    async def add_entry(
        self,
        consultation_id: str,
        sealed: Mapping[str, bytes],
        *,
        entry_id: str | None = None,
        status: str = "waiting",
    ) -> m.EntryOut:
        """``POST /v1/consultations/{id}/entries``: queue a resident (sealed fields only)."""
        body = self._body(m.EntryCreate, id=entry_id, sealed=dict(sealed), status=status)
        path = _consultation(consultation_id, "entries")
        return await self._call(m.EntryOut, "POST", path, body=body)

    async def entries(self, consultation_id: str) -> list[m.EntryOut]:
        """``GET /v1/consultations/{id}/entries``: the queue, in order."""
        path = _consultation(consultation_id, "entries")
        return (await self._call(m.EntryList, "GET", path)).items

    async def entry(self, entry_id: str) -> m.EntryOut:
        """``GET /v1/entries/{id}``."""
        return await self._call(m.EntryOut, "GET", _entry(entry_id))

    async def update_entry(self, entry_id: str, update: m.EntryUpdate) -> m.EntryOut:
        """``PATCH /v1/entries/{id}``: replace/remove sealed fields or change the status."""
        return await self._call(m.EntryOut, "PATCH", _entry(entry_id), body=update)

    async def set_entry_status(self, entry_id: str, status: str) -> m.EntryOut:
        """``PUT /v1/entries/{id}/status``: ``waiting``, ``in_call``, ``done``, ``skipped``."""
        body = self._body(m.EntryStatusRequest, status=status)
        return await self._call(m.EntryOut, "PUT", _entry(entry_id, "status"), body=body)

    async def delete_entry(self, entry_id: str) -> None:
        """``DELETE /v1/entries/{id}``: take a resident out of the queue."""
        await self._request("DELETE", _entry(entry_id))

    async def reorder_entries(
        self, consultation_id: str, entry_ids: Sequence[str]
    ) -> list[m.EntryOut]:
        """``PUT /v1/consultations/{id}/entries/order``: every entry once, in the new order."""
        body = self._body(m.OrderRequest, entry_ids=list(entry_ids))
        path = _consultation(consultation_id, "entries/order")
        return (await self._call(m.EntryList, "PUT", path, body=body)).items

    async def add_note(
        self,
        consultation_id: str,
        body: bytes,
        *,
        note_id: str | None = None,
        entry_id: str | None = None,
    ) -> m.NoteOut:
        """``POST /v1/consultations/{id}/notes``: store a sealed wrap-up note."""
        note = self._body(m.NoteCreate, id=note_id, entry_id=entry_id, body=body)
        path = _consultation(consultation_id, "notes")
        return await self._call(m.NoteOut, "POST", path, body=note)

    async def notes(self, consultation_id: str) -> list[m.NoteOut]:
        """``GET /v1/consultations/{id}/notes``: the consultation's sealed notes."""
        path = _consultation(consultation_id, "notes")
        return (await self._call(m.NoteList, "GET", path)).items

    async def sealed_events(self, consultation_id: str) -> list[m.SealedEventOut]:
        """``GET /v1/consultations/{id}/sealed-events``: what stationd sealed to the vault
        while locked (open with the vault key)."""
        path = _consultation(consultation_id, "sealed-events")
        return (await self._call(m.SealedEventList, "GET", path)).items

    # ------------------------------------------------------------------ the call

    async def call(self) -> m.CallStatusOut:
        """``GET /v1/call``: whether calls work here, and the running call."""
        return await self._call(m.CallStatusOut, "GET", "/v1/call")

    async def make_room(self, consultation_id: str, *, renew: bool = False) -> m.CallRoomOut:
        """``POST /v1/call/room``: the GP's link for a consultation (``renew`` replaces it)."""
        body = self._body(m.CallRoomRequest, consultation_id=consultation_id, renew=renew)
        return await self._call(m.CallRoomOut, "POST", "/v1/call/room", body=body)

    async def start_call(
        self,
        consultation_id: str,
        residents: Sequence[m.WaitingResident],
        *,
        consultation_type: m.ConsultationTypeValue | None = None,
    ) -> m.CallStartOut:
        """``POST /v1/call/start``: the call engine dials, with who is waiting (in order)."""
        body = self._body(
            m.CallStartRequest,
            consultation_id=consultation_id,
            residents=list(residents),
            consultation_type=consultation_type,
        )
        return await self._call(m.CallStartOut, "POST", "/v1/call/start", body=body)

    async def next_resident(self) -> m.CallStatusOut:
        """``POST /v1/call/next``: the next resident of the round is in front of the camera."""
        return await self._call(m.CallStatusOut, "POST", "/v1/call/next")

    async def previous_resident(self) -> m.CallStatusOut:
        """``POST /v1/call/previous``: back to the previous resident of the round."""
        return await self._call(m.CallStatusOut, "POST", "/v1/call/previous")

    async def camera(self, off: bool) -> m.CallStatusOut:
        """``POST /v1/call/camera``: the camera off (True) or on."""
        body = self._body(m.CallCameraRequest, off=off)
        return await self._call(m.CallStatusOut, "POST", "/v1/call/camera", body=body)

    async def audio_only(self, on: bool) -> m.CallStatusOut:
        """``POST /v1/call/audio-only``: video paused both ways (True) or back (False)."""
        body = self._body(m.CallAudioOnlyRequest, on=on)
        return await self._call(m.CallStatusOut, "POST", "/v1/call/audio-only", body=body)

    # ------------------------------------------------------------------ pre-call check

    async def precheck_frame(self, width: int = 64, height: int = 48) -> m.FrameOut:
        """``GET /v1/precheck/frame``: a thumbnail of the camera (at most 160 x 160)."""
        params = {"width": width, "height": height}
        return await self._call(m.FrameOut, "GET", "/v1/precheck/frame", params=params)

    async def precheck_microphone(self) -> m.MicrophoneLevelOut:
        """``GET /v1/precheck/microphone``: the microphone's level just now."""
        return await self._call(m.MicrophoneLevelOut, "GET", "/v1/precheck/microphone")

    async def precheck_tone(self) -> m.ToneOut:
        """``POST /v1/precheck/tone``: a short test tone on the loudspeaker."""
        return await self._call(m.ToneOut, "POST", "/v1/precheck/tone")

    async def precheck_network(self) -> m.NetworkOut:
        """``GET /v1/precheck/network``: can the hub and each TURN server be reached?"""
        return await self._call(m.NetworkOut, "GET", "/v1/precheck/network")

    # ------------------------------------------------------------------ care-record export

    async def export_settings(self) -> m.ExportSettingsOut:
        """``GET /v1/exports/settings``: ``delivery`` (fhir/summary/unavailable), the key."""
        return await self._call(m.ExportSettingsOut, "GET", "/v1/exports/settings")

    async def enqueue_export(
        self,
        *,
        export_id: str,
        consultation_id: str,
        sealed: bytes,
        entry_id: str | None = None,
    ) -> m.ExportOut:
        """``POST /v1/exports``: queue a sealed export (``station.export.seal_export``).

        Idempotent by ``export_id``; raises :class:`~stationapi.errors.StationApiError` with
        code ``export_not_configured`` (409) when there is no endpoint (show the summary).
        """
        body = self._body(
            m.ExportCreate,
            export_id=export_id,
            consultation_id=consultation_id,
            entry_id=entry_id,
            sealed=sealed,
        )
        return await self._call(m.ExportOut, "POST", "/v1/exports", body=body)

    async def exports(self, consultation_id: str) -> list[m.ExportOut]:
        """``GET /v1/consultations/{id}/exports``: each export's delivery progress."""
        path = _consultation(consultation_id, "exports")
        return (await self._call(m.ExportList, "GET", path)).items

    async def retry_export(self, export_id: str) -> m.ExportOut:
        """``POST /v1/exports/{id}/retry``: try a waiting export now."""
        return await self._call(m.ExportOut, "POST", f"/v1/exports/{export_id}/retry")


def _consultation(consultation_id: str, *rest: str) -> str:
    return "/".join(("/v1/consultations", consultation_id, *rest))


def _entry(entry_id: str, *rest: str) -> str:
    return "/".join(("/v1/entries", entry_id, *rest))
