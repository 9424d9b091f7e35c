"""The staff UI's port to stationd: everything a staff screen (or the records) asks of it.

The locked UI's pattern (:mod:`tui.locked.link`), for the staff UI: the screens, the app and
:class:`~tui.staff.data.StaffRecords` depend on the :class:`StaffStation` protocol (and the
records on its smaller part, :class:`StationRecords`); :class:`DaemonStaffStation` is the one
adapter, over :class:`~stationapi.staff.StaffClient` (httpx over stationd's Unix socket). No
screen knows a URL path, a request body or an answer's JSON: they live here, and only here
changes when the client does. What the port hands back is stationd's contract models
(``stationapi.models``) or the small answers below, never raw JSON.

Just over 600 lines on purpose: the port and its one adapter stand side by side in one module,
so a reader sees each promise next to the request that keeps it; the adapter's bodies are one
typed client call each.

The errors are the client's (:class:`StationClientError` and its kinds), re-exported here so
the screens import them from their port: a 401 is :class:`StationLocked` (the staff UI then
exits), an unreachable stationd :class:`StationUnavailable`, any other refusal
:class:`StationApiError` with stationd's message for the person at the station.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, Protocol

from station.keys.vault import VaultKey
from stationapi import models as m
from stationapi.errors import (
    StationApiError,
    StationClientError,
    StationLocked,
    StationUnavailable,
)
from stationapi.events import ApiEvent
from stationapi.staff import StaffClient

__all__ = [
    "ApiEvent",
    "CallStart",
    "DaemonStaffStation",
    "Enrolled",
    "ExportItem",
    "ExportSettings",
    "GpPresence",
    "NetworkCheck",
    "StaffStation",
    "StationApiError",
    "StationClientError",
    "StationLocked",
    "StationRecords",
    "StationUnavailable",
    "Thumbnail",
    "UnreadableAnswer",
    "WaitingResident",
]

#: stationd answers starting a call with these when it has no call engine: the check is
#: then passed alone (the session still moves on) and staff are told.
_NO_CALL_ENGINE: Final = (404, 405, 503)
#: (width, height, rgb24 bytes): the camera thumbnail of the pre-call check.
Thumbnail = tuple[int, int, bytes]


class UnreadableAnswer(ValueError):
    """stationd answered, but not in a shape this UI can show (a missing or odd field)."""


@dataclass(frozen=True, slots=True)
class Enrolled:
    """A new staff member's slot: their pseudonymous id and the short number they log in with."""

    staff_id: str
    staff_number: str


@dataclass(frozen=True, slots=True)
class NetworkCheck:
    """One of the pre-call check's network checks: which, whether it passed, what to do.

    ``value``: what it found, shown after the name (the TURN check's path: "UDP", "TCP",
    "TLS 443" or "ingen"); ``paths``: every configured TURN path and whether it worked.
    """

    name: str
    ok: bool
    hint: str = ""
    value: str = ""
    paths: tuple[tuple[str, bool], ...] = ()


#: What the GP's waiting room shows of one resident: the contract's model (already cut to
#: its limits by the caller, :func:`tui.staff.data.waiting_resident`).
WaitingResident = m.WaitingResident


@dataclass(frozen=True, slots=True)
class CallStart:
    """What starting the call did."""

    #: The GP's link to the waiting room, when the call engine made one.
    gp_url: str | None = None
    #: The short code to read to the GP, and where the GP types it (with ``gp_url``).
    gp_code: str | None = None
    gp_code_url: str | None = None
    #: Set when there is no call engine: stationd passed the check alone. stationd's own
    #: words for why, or "" (the screen says it in the catalogue's words).
    no_engine: str | None = None


@dataclass(frozen=True, slots=True)
class GpPresence:
    """Whether the GP is still in the call, as stationd last knew it."""

    #: ``left`` (closed the page) or ``gone`` (the connection is lost for good); None: there.
    left: str | None = None
    #: Seconds until the call ends by itself while the GP is away (None: not said).
    ends_in: float | None = None
    #: What the GP says it sends: (video, audio); None: not said yet.
    media: tuple[bool, bool] | None = None


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """How notes reach the care record: ``fhir`` (sealed to ``outbox_public_key`` and queued),
    ``summary`` (no endpoint: a text to copy) or ``unavailable`` (the outbox is broken)."""

    delivery: Literal["fhir", "summary", "unavailable"]
    outbox_public_key: bytes | None = field(repr=False, default=None)


@dataclass(frozen=True, slots=True)
class ExportItem:
    """One queued export's progress (no content): ``pending`` or ``delivered``, and the
    last attempt's outcome (``delivered`` or a ``failed_*`` code)."""

    export_id: str
    state: str
    last_outcome: str | None = None


def gp_media(data: object) -> tuple[bool, bool] | None:
    """(video, audio) from a ``gp_media`` event's data (the GP's page says what it sends)."""
    if isinstance(data, Mapping):
        return data.get("video") is True, data.get("audio") is True
    return None


def seconds(value: object) -> float | None:
    """A number of seconds from an event's data, or None."""
    return float(value) if isinstance(value, int | float) else None


class StationRecords(Protocol):
    """The blind store as :class:`~tui.staff.data.StaffRecords` uses it: clear metadata and
    sealed blobs only (the records seal and open them with the vault key)."""

    async def clinics(self) -> list[m.ClinicOut]:
        """The GP clinics from the configuration."""
        ...

    async def missed(self) -> list[m.MissedItem]:
        """Booked slots that passed without a call, which no staff member has seen yet."""
        ...

    async def acknowledge_missed(self, consultation_ids: list[str]) -> int:
        """Those missed slots were shown to staff."""
        ...

    async def consultations(
        self,
        *,
        starts_from: datetime,
        starts_before: datetime,
        statuses: list[m.ConsultationStatusValue],
    ) -> list[m.ConsultationOut]:
        """Consultations starting in ``[starts_from, starts_before)`` with these statuses."""
        ...

    async def consultation(self, consultation_id: str) -> m.ConsultationOut:
        """One consultation."""
        ...

    async def create_consultation(
        self,
        *,
        consultation_id: str,
        clinic_id: str,
        starts_at: datetime,
        ends_at: datetime,
        consultation_type: m.ConsultationTypeValue,
    ) -> None:
        """Book a consultation (clear metadata only)."""
        ...

    async def mark_documented(self, consultation_id: str) -> None:
        """The consultation is in the care record: the retention clock starts."""
        ...

    async def get_key(self, consultation_id: str) -> bytes:
        """The consultation's wrapped data key."""
        ...

    async def put_key(self, consultation_id: str, wrapped_key: bytes) -> None:
        """Store the consultation's wrapped data key."""
        ...

    async def entries(self, consultation_id: str) -> list[m.EntryOut]:
        """The consultation's queue, in order."""
        ...

    async def entry(self, entry_id: str) -> m.EntryOut:
        """One queue entry (stationd audits the opening)."""
        ...

    async def add_entry(
        self, consultation_id: str, sealed: Mapping[str, bytes], *, entry_id: str
    ) -> None:
        """Queue a resident: sealed fields only."""
        ...

    async def set_entry_status(self, entry_id: str, status: str) -> None:
        """Mark a resident ``waiting``, ``in_call``, ``done`` or ``skipped``."""
        ...

    async def reorder_entries(self, consultation_id: str, entry_ids: list[str]) -> None:
        """Set the queue order (every entry once)."""
        ...

    async def delete_entry(self, entry_id: str) -> None:
        """Take a resident out of the queue."""
        ...

    async def add_note(
        self, consultation_id: str, body: bytes, *, note_id: str, entry_id: str | None
    ) -> None:
        """Store a sealed wrap-up note."""
        ...

    async def notes(self, consultation_id: str) -> list[m.NoteOut]:
        """The consultation's sealed notes."""
        ...

    async def sealed_events(self, consultation_id: str) -> list[m.SealedEventOut]:
        """What stationd sealed to the vault while locked (call ended, durations)."""
        ...

    async def export_settings(self) -> ExportSettings:
        """How notes reach the care record, and the key to seal them to."""
        ...

    async def enqueue_export(
        self, *, export_id: str, consultation_id: str, entry_id: str | None, sealed: bytes
    ) -> bool:
        """Queue a sealed export (idempotent by id); False: stationd has no EOJ endpoint."""
        ...

    async def exports(self, consultation_id: str) -> list[ExportItem]:
        """Each of the consultation's exports and its progress."""
        ...

    async def retry_export(self, export_id: str) -> None:
        """Try a waiting export now."""
        ...


class StaffStation(StationRecords, Protocol):
    """Everything the staff UI asks of stationd (see the module docs)."""

    # ------------------------------------------------------------------ the session

    async def unlock(self, staff_number: str, pin: str) -> tuple[str, VaultKey]:
        """Unlock with a staff number and PIN; the pseudonymous staff id and the vault key
        stationd hands over (the token is kept here)."""
        ...

    async def enroll_staff(
        self, code: str, pin: str, *, sponsor_staff_number: str | None, sponsor_pin: str | None
    ) -> Enrolled:
        """Enroll a new staff member with IT's one-time code; their id and staff number."""
        ...

    async def lock(self, reason: str) -> None:
        """Lock now (``staff_action``), or ``leave`` the room (the call goes private)."""
        ...

    async def touch(self) -> None:
        """Staff activity: postpones the idle lock."""
        ...

    async def state(self) -> m.StateOut:
        """The session state."""
        ...

    def events(self) -> AsyncIterator[ApiEvent]:
        """The event stream (first event: ``snapshot``)."""
        ...

    async def begin_check(self, consultation_id: str) -> None:
        """Start the pre-call check for a booked consultation."""
        ...

    async def cancel_check(self, reason: str) -> None:
        """Call off the check or the waiting call."""
        ...

    async def resume_wrap_up(self, consultation_id: str) -> None:
        """Open a pending wrap-up (a call that ended while the station was locked)."""
        ...

    async def finish_wrap_up(self) -> None:
        """The notes are written: back to Today."""
        ...

    async def aclose(self) -> None:
        """Release the connection."""
        ...

    # ------------------------------------------------------------------ the pre-call check

    async def health(self) -> m.HealthOut:
        """The hardware checks."""
        ...

    async def network_checks(self) -> list[NetworkCheck]:
        """The network checks (municipal server, TURN, network)."""
        ...

    async def camera_thumbnail(self, width: int, height: int) -> Thumbnail:
        """A camera picture at most ``width`` x ``height``; :class:`UnreadableAnswer` if odd."""
        ...

    async def microphone_level(self) -> float:
        """The microphone's RMS level in dBFS; :class:`UnreadableAnswer` if odd."""
        ...

    async def test_tone(self) -> None:
        """Play a short test tone on the loudspeaker."""
        ...

    # ------------------------------------------------------------------ the call

    async def start_call(
        self, consultation_id: str, residents: Sequence[WaitingResident]
    ) -> CallStart:
        """The check passed: the call engine dials, with who is waiting."""
        ...

    async def gp_presence(self) -> GpPresence | None:
        """Whether the GP is still in the running call (None: no call, or not said)."""
        ...

    async def next_resident(self) -> None:
        """The round moved on: the GP's page follows."""
        ...

    async def previous_resident(self) -> None:
        """The round moved back: the GP's page follows."""
        ...

    async def set_muted(self, muted: bool) -> None:
        """The station's microphone off (True) or on."""
        ...

    async def set_camera_off(self, off: bool) -> None:
        """The station's camera off (True) or on."""
        ...

    async def set_audio_only(self, on: bool) -> None:
        """Audio only (video paused both ways) or video back."""
        ...

    async def end_call(self) -> None:
        """End the call."""
        ...


class DaemonStaffStation:
    """:class:`StaffStation` over stationd's Unix socket (:class:`StaffClient`).

    Its signatures repeat the protocol's on purpose (a structural port: mypy checks the two
    agree wherever this class is passed as a :class:`StaffStation`); the bodies are the only
    place that knows the client's calls and stationd's paths.
    """

    def __init__(self, client: StaffClient) -> None:
        self.client = client

    @property
    def token(self) -> str | None:
        """The staff token while unlocked (tests check that stationd revoked it)."""
        return self.client.token

    # ------------------------------------------------------------------ the session

    async def unlock(self, staff_number: str, pin: str) -> tuple[str, VaultKey]:
        """``POST /v1/unlock``; the key goes into its one holder at once."""
        result = await self.client.unlock(staff_number, pin)
        staff_id, vault = result.staff_id, VaultKey(result.vault_key)
        del result  # the response object (and its copy of the key) is dropped
        return staff_id, vault

    async def enroll_staff(
        self, code: str, pin: str, *, sponsor_staff_number: str | None, sponsor_pin: str | None
    ) -> Enrolled:
        """``POST /v1/staff/enroll``: the new member's staff id and number."""
        enrolled = await self.client.enroll_staff(
            code, pin, sponsor_staff_number=sponsor_staff_number, sponsor_pin=sponsor_pin
        )
        return Enrolled(enrolled.staff_id, enrolled.staff_number)

    async def lock(self, reason: str) -> None:
        """``POST /v1/lock``."""
        await self.client.lock(reason)

    async def touch(self) -> None:
        """``POST /v1/session/touch``."""
        await self.client.touch()

    async def state(self) -> m.StateOut:
        """``GET /v1/state``."""
        return await self.client.state()

    def events(self) -> AsyncIterator[ApiEvent]:
        """``GET /v1/events``."""
        return self.client.events()

    async def begin_check(self, consultation_id: str) -> None:
        """``POST /v1/session/begin-check``."""
        await self.client.begin_check(consultation_id)

    async def cancel_check(self, reason: str) -> None:
        """``POST /v1/session/cancel``."""
        await self.client.cancel(reason)

    async def resume_wrap_up(self, consultation_id: str) -> None:
        """``POST /v1/session/resume-wrap-up``."""
        await self.client.resume_wrap_up(consultation_id)

    async def finish_wrap_up(self) -> None:
        """``POST /v1/session/finish-wrap-up``."""
        await self.client.finish_wrap_up()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self.client.aclose()

    # ------------------------------------------------------------------ the pre-call check

    async def health(self) -> m.HealthOut:
        """``GET /v1/health``."""
        return await self.client.health()

    async def network_checks(self) -> list[NetworkCheck]:
        """``GET /v1/precheck/network``."""
        answer = await self.client.precheck_network()
        paths = tuple((p.label, p.ok) for p in answer.turn_paths)
        return [
            NetworkCheck(
                check.name,
                check.ok,
                check.hint,
                check.value,
                paths if check.name == "turn" else (),
            )
            for check in answer.checks
        ]

    async def camera_thumbnail(self, width: int, height: int) -> Thumbnail:
        """``GET /v1/precheck/frame``: rgb24."""
        answer = await self.client.precheck_frame(width, height)
        if len(answer.data) != answer.width * answer.height * 3:
            raise UnreadableAnswer("the camera's picture does not match its size")
        return answer.width, answer.height, answer.data

    async def microphone_level(self) -> float:
        """``GET /v1/precheck/microphone``."""
        return (await self.client.precheck_microphone()).rms_dbfs

    async def test_tone(self) -> None:
        """``POST /v1/precheck/tone``."""
        await self.client.precheck_tone()

    # ------------------------------------------------------------------ the call

    async def start_call(
        self, consultation_id: str, residents: Sequence[WaitingResident]
    ) -> CallStart:
        """``POST /v1/call/start``; without a call engine, ``check-passed`` alone."""
        try:
            answer = await self.client.start_call(consultation_id, list(residents))
        except StationApiError as error:
            if error.status not in _NO_CALL_ENGINE:
                raise
            await self.client.check_passed()
            return CallStart(no_engine=error.user_message or "")
        return CallStart(
            gp_url=answer.gp_url or None,
            gp_code=answer.gp_code or None,
            gp_code_url=answer.gp_code_url or None,
        )

    async def gp_presence(self) -> GpPresence | None:
        """``GET /v1/call``: its ``gp`` part."""
        gp = (await self.client.call()).gp
        if gp is None:
            return None
        media = None if gp.media is None else (gp.media.video, gp.media.audio)
        return GpPresence(left=gp.left, ends_in=gp.ends_in, media=media)

    async def next_resident(self) -> None:
        """``POST /v1/call/next``."""
        await self.client.next_resident()

    async def previous_resident(self) -> None:
        """``POST /v1/call/previous``."""
        await self.client.previous_resident()

    async def set_muted(self, muted: bool) -> None:
        """``POST /v1/call/mute``."""
        await self.client.mute(muted)

    async def set_camera_off(self, off: bool) -> None:
        """``POST /v1/call/camera``."""
        await self.client.camera(off)

    async def set_audio_only(self, on: bool) -> None:
        """``POST /v1/call/audio-only``."""
        await self.client.audio_only(on)

    async def end_call(self) -> None:
        """``POST /v1/call/end``."""
        await self.client.end_call()

    # ------------------------------------------------------------------ the blind store

    async def clinics(self) -> list[m.ClinicOut]:
        """``GET /v1/clinics``."""
        return await self.client.clinics()

    async def missed(self) -> list[m.MissedItem]:
        """``GET /v1/missed``."""
        return await self.client.missed()

    async def acknowledge_missed(self, consultation_ids: list[str]) -> int:
        """``POST /v1/missed/acknowledge``."""
        return (await self.client.acknowledge_missed(consultation_ids)).acknowledged

    async def consultations(
        self,
        *,
        starts_from: datetime,
        starts_before: datetime,
        statuses: list[m.ConsultationStatusValue],
    ) -> list[m.ConsultationOut]:
        """``GET /v1/consultations``."""
        return await self.client.consultations(
            starts_from=starts_from, starts_before=starts_before, statuses=statuses
        )

    async def consultation(self, consultation_id: str) -> m.ConsultationOut:
        """``GET /v1/consultations/{id}``."""
        return await self.client.consultation(consultation_id)

    async def create_consultation(
        self,
        *,
        consultation_id: str,
        clinic_id: str,
        starts_at: datetime,
        ends_at: datetime,
        consultation_type: m.ConsultationTypeValue,
    ) -> None:
        """``POST /v1/consultations``."""
        await self.client.create_consultation(
            consultation_id=consultation_id,
            clinic_id=clinic_id,
            starts_at=starts_at,
            ends_at=ends_at,
            consultation_type=consultation_type,
        )

    async def mark_documented(self, consultation_id: str) -> None:
        """``POST /v1/consultations/{id}/documented``."""
        await self.client.mark_documented(consultation_id)

    async def get_key(self, consultation_id: str) -> bytes:
        """``GET /v1/consultations/{id}/key``."""
        return await self.client.get_key(consultation_id)

    async def put_key(self, consultation_id: str, wrapped_key: bytes) -> None:
        """``PUT /v1/consultations/{id}/key``."""
        await self.client.put_key(consultation_id, wrapped_key)

    async def entries(self, consultation_id: str) -> list[m.EntryOut]:
        """``GET /v1/consultations/{id}/entries``."""
        return await self.client.entries(consultation_id)

    async def entry(self, entry_id: str) -> m.EntryOut:
        """``GET /v1/entries/{id}``."""
        return await self.client.entry(entry_id)

    async def add_entry(
        self, consultation_id: str, sealed: Mapping[str, bytes], *, entry_id: str
    ) -> None:
        """``POST /v1/consultations/{id}/entries``."""
        await self.client.add_entry(consultation_id, sealed, entry_id=entry_id)

    async def set_entry_status(self, entry_id: str, status: str) -> None:
        """``PUT /v1/entries/{id}/status``."""
        await self.client.set_entry_status(entry_id, status)

    async def reorder_entries(self, consultation_id: str, entry_ids: list[str]) -> None:
        """``PUT /v1/consultations/{id}/entries/order``."""
        await self.client.reorder_entries(consultation_id, entry_ids)

    async def delete_entry(self, entry_id: str) -> None:
        """``DELETE /v1/entries/{id}``."""
        await self.client.delete_entry(entry_id)

    async def add_note(
        self, consultation_id: str, body: bytes, *, note_id: str, entry_id: str | None
    ) -> None:
        """``POST /v1/consultations/{id}/notes``."""
        await self.client.add_note(consultation_id, body, note_id=note_id, entry_id=entry_id)

    async def notes(self, consultation_id: str) -> list[m.NoteOut]:
        """``GET /v1/consultations/{id}/notes``."""
        return await self.client.notes(consultation_id)

    async def sealed_events(self, consultation_id: str) -> list[m.SealedEventOut]:
        """``GET /v1/consultations/{id}/sealed-events``."""
        return await self.client.sealed_events(consultation_id)

    async def export_settings(self) -> ExportSettings:
        """``GET /v1/exports/settings``."""
        settings = await self.client.export_settings()
        return ExportSettings(settings.delivery, settings.outbox_public_key)

    async def enqueue_export(
        self, *, export_id: str, consultation_id: str, entry_id: str | None, sealed: bytes
    ) -> bool:
        """``POST /v1/exports``; False on ``export_not_configured`` (409)."""
        try:
            await self.client.enqueue_export(
                export_id=export_id,
                consultation_id=consultation_id,
                entry_id=entry_id,
                sealed=sealed,
            )
        except StationApiError as error:
            if error.code != "export_not_configured":
                raise
            return False
        return True

    async def exports(self, consultation_id: str) -> list[ExportItem]:
        """``GET /v1/consultations/{id}/exports``."""
        return [
            ExportItem(item.export_id, item.state, item.last_outcome)
            for item in await self.client.exports(consultation_id)
        ]

    async def retry_export(self, export_id: str) -> None:
        """``POST /v1/exports/{id}/retry``."""
        await self.client.retry_export(export_id)
