"""The local API's request and response bodies (pydantic), shared by stationd and its clients.

One module on purpose, and so longer than 600 lines: it *is* the contract, read top to bottom
in the order of stationd's OpenAPI description (session and lock, what the lock screen reads,
staff enrollment, the blind store's records, the call, the pre-call check, the export).
stationd's routes (``station.daemon.routes``) declare these as their bodies, so the OpenAPI
description is complete; the clients (``stationapi.locked``, ``stationapi.staff``) build and
parse the same classes.

What crosses the socket is clear metadata (ids, times, statuses, positions, clinic names) and
*sealed* blobs, carried as standard base64 strings. stationd never sees plaintext personal
data, so none of these models has a field for it, with one exception: the call's start
request carries who is waiting (:class:`WaitingResident`), which stationd forwards to the
GP's waiting room and never stores or logs. A sealed field is opaque bytes to both sides of
the socket. Ids follow the store's rule (1-64 of ``A-Z a-z 0-9 _ -``, never shaped like a CPR
number); the store checks that again, so a client bug cannot slip past either.

Every request model forbids unknown fields (a typo in a field name is an error, not silently
ignored data) and hides its input in validation errors (a mistyped field may hold a PIN or a
CPR number).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from station.core.ids import is_opaque_id
from station.core.waiting_room import WaitingResident

__all__ = [
    "MAX_BLOB_BYTES",
    "MAX_SEALED_EXPORT_BYTES",
    "Base64Bytes",
    "BeginCheckRequest",
    "CallAudioOnlyRequest",
    "CallCameraRequest",
    "CallErrorOut",
    "CallMediaOut",
    "CallMuteRequest",
    "CallQualityOut",
    "CallRoomOut",
    "CallRoomRequest",
    "CallStartOut",
    "CallStartRequest",
    "CallStatusOut",
    "CallVolumeRequest",
    "CancelRequest",
    "ClinicList",
    "ClinicOut",
    "ConsultationCreate",
    "ConsultationList",
    "ConsultationOut",
    "ConsultationStatusRequest",
    "ConsultationStatusValue",
    "ConsultationTypeValue",
    "ConsultationUpdate",
    "EmptyRequest",
    "EnrollmentOut",
    "EntryCreate",
    "EntryList",
    "EntryOut",
    "EntryStatusRequest",
    "EntryStatusValue",
    "EntryUpdate",
    "ErrorBody",
    "ExportCreate",
    "ExportList",
    "ExportOut",
    "ExportSettingsOut",
    "FrameOut",
    "GpMediaOut",
    "GpPresenceOut",
    "HealthCheckOut",
    "HealthOut",
    "KeyIn",
    "KeyOut",
    "LockReasonValue",
    "LockRequest",
    "LockResponse",
    "MicrophoneLevelOut",
    "MissedAcknowledge",
    "MissedAcknowledged",
    "MissedItem",
    "MissedOut",
    "NetworkCheckOut",
    "NetworkOut",
    "NoteCreate",
    "NoteList",
    "NoteOut",
    "OpaqueId",
    "OrderRequest",
    "ResidentPositionOut",
    "ResumeWrapUpRequest",
    "SealedBlob",
    "SealedEventList",
    "SealedEventOut",
    "SealedExport",
    "SelectedPairOut",
    "SentVideoOut",
    "SettingsOut",
    "StaffEnrollRequest",
    "StaffEnrolledOut",
    "StateOut",
    "ToneOut",
    "TurnPathOut",
    "UnlockRequest",
    "UnlockResponse",
    "UpcomingItem",
    "UpcomingOut",
    "VolumeDirection",
    "WaitingResident",
    "check_id",
    "decode_b64",
    "encode_b64",
]

#: Sealed blobs are at most the store's 64 KiB; base64 makes that ~88 KiB of JSON.
MAX_BLOB_BYTES: Final = 64 * 1024
#: Largest sealed export the API carries: the outbox's own limit
#: (``station.export.limits.MAX_SEALED_EXPORT_BYTES``; a unit test keeps the two equal, since
#: this package imports nothing of the export).
MAX_SEALED_EXPORT_BYTES: Final = 256 * 1024

_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_CPR_LIKE_RE = re.compile(r"[0-9]{6}-?[0-9]{4}", re.ASCII)
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}", re.ASCII)
#: Standard base64 with padding, as a JSON-schema pattern (what a fuzzer should generate).
_B64_PATTERN: Final = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def check_id(value: str) -> str:
    """``value`` if it is a usable opaque id, else ``ValueError`` (never quoting it)."""
    # The message never quotes the value: a mistyped id may be a CPR number.
    if not _ID_RE.fullmatch(value) or _CPR_LIKE_RE.search(value):
        raise ValueError(
            "must be an opaque id of 1-64 ASCII letters, digits, '-' or '_', never a CPR number"
        )
    return value


def _export_id(value: str) -> str:
    if not is_opaque_id(value):
        raise ValueError("must be an opaque id (never a CPR number)")
    return value


def decode_b64(value: Any, *, limit: int = MAX_BLOB_BYTES) -> bytes:
    """Strict standard base64 (with padding) to bytes; ``ValueError`` with a clear reason."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    if len(value) > (limit * 4) // 3 + 4:
        raise ValueError(f"sealed value is larger than {limit} bytes")
    if len(value) % 4 or not _B64_RE.fullmatch(value):
        raise ValueError("must be standard base64 with padding (A-Z a-z 0-9 + /, '=')")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be valid base64") from None


def _decode_export(value: Any) -> bytes:
    return decode_b64(value, limit=MAX_SEALED_EXPORT_BYTES)


def encode_b64(value: bytes) -> str:
    """Bytes to standard base64 text."""
    return base64.b64encode(value).decode("ascii")


def _non_empty(value: bytes) -> bytes:
    if not value:
        raise ValueError("a sealed value cannot be empty")
    return value


def _b64_schema(limit: int, *, min_length: int = 0) -> dict[str, Any]:
    return {
        "type": "string",
        "contentEncoding": "base64",
        "pattern": _B64_PATTERN,
        "minLength": min_length,
        "maxLength": (limit * 4) // 3 + 4,
    }


# Each wire type is its own Annotated alias with its validator, serializer and JSON schema;
# alike by design.

#: An opaque id (never personal data).
OpaqueId = Annotated[
    str,
    AfterValidator(check_id),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$"}),
]

#: A sealed value: bytes in Python, base64 text in JSON.
SealedBlob = Annotated[
    bytes,
    BeforeValidator(decode_b64),
    AfterValidator(_non_empty),
    PlainSerializer(encode_b64, return_type=str, when_used="json"),
    WithJsonSchema(_b64_schema(MAX_BLOB_BYTES, min_length=4)),
]

#: Bytes in the clear carried as base64 (the pre-call check's thumbnail), never personal.
Base64Bytes = Annotated[
    bytes,
    BeforeValidator(decode_b64),
    PlainSerializer(encode_b64, return_type=str, when_used="json"),
    WithJsonSchema(_b64_schema(MAX_BLOB_BYTES)),
]

#: A sealed export (``station.export.seal_export``): bytes in Python, base64 in JSON.
SealedExport = Annotated[
    bytes,
    BeforeValidator(_decode_export),
    AfterValidator(_non_empty),
    PlainSerializer(encode_b64, return_type=str, when_used="json"),
    WithJsonSchema(_b64_schema(MAX_SEALED_EXPORT_BYTES, min_length=4)),
]

#: An export's, consultation's or entry's id on the export endpoints (the outbox's rule).
_ExportRef = Annotated[
    str,
    AfterValidator(_export_id),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}),
]

ConsultationTypeValue = Literal["video_consultation", "assisted_consultation", "video_conference"]
ConsultationStatusValue = Literal["booked", "in_call", "ended", "documented", "cancelled"]
EntryStatusValue = Literal["waiting", "in_call", "done", "skipped"]
EntryField = Literal["display_name", "birth_date", "room", "cpr", "note", "reason"]
LockReasonValue = Literal["staff_action", "leave"]
VolumeDirection = Literal["up", "down"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


# ------------------------------------------------------------------------ errors


class ErrorBody(_Response):
    """Every 4xx/5xx body: English for logs and IT, Danish for the person at the station."""

    error: str
    user_message: str
    code: str
    retry_after_seconds: float | None = None


# ------------------------------------------------------------------ session and lock


class StateOut(_Response):
    """``GET /v1/state``: where the session is; clear ids only."""

    state: str
    since: datetime
    locked: bool
    private: bool
    appointment_id: str | None
    call_admitted: bool
    pending_wrap_ups: list[str]
    idle_remaining_seconds: float | None


class SettingsOut(_Response):
    """``GET /v1/settings``: what IT's configuration sets for the UIs (nothing personal)."""

    #: The UIs' language ("da" until IT's signed configuration says otherwise).
    language: str


class LockRequest(_Request):
    """``POST /v1/lock``: ``staff_action`` (lock now) or ``leave`` (go private in a call)."""

    reason: LockReasonValue = "staff_action"


class LockResponse(_Response):
    """What a lock did: the state afterwards, and whether anything changed."""

    state: str
    changed: bool


#: A staff number as typed ("Personale-nummer"): 3 or 4 digits, given at enrollment.
STAFF_NUMBER_PATTERN = r"^[0-9]{3,4}$"


class UnlockRequest(_Request):
    """``POST /v1/unlock``: a staff member's short staff number and PIN."""

    staff_number: str = Field(pattern=STAFF_NUMBER_PATTERN)
    pin: str = Field(min_length=4, max_length=12, pattern=r"^[0-9]+$", repr=False)


class UnlockResponse(_Response):
    """The staff-session token (Bearer), the pseudonymous staff id the number belongs to,
    the state the unlock led to, and the vault key.

    ``vault_key`` is the key hand-over to the staff UI (see ``StationService.unlock``): 32
    bytes, base64 in JSON. The staff UI puts it into a ``VaultKey`` at once and drops this
    object; it is never logged (``repr=False``).
    """

    token: str = Field(repr=False)
    staff_id: str
    state: str
    vault_key: SealedBlob = Field(repr=False)


class EmptyRequest(_Request):
    """Endpoints that take no body accept nothing but an empty one (or ``{}``)."""


class BeginCheckRequest(_Request):
    """``POST /v1/session/begin-check``: the booked consultation to call."""

    appointment_id: OpaqueId


class CancelRequest(_Request):
    """``POST /v1/session/cancel``: a short machine word saying why."""

    reason: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,39}$")


class ResumeWrapUpRequest(_Request):
    """``POST /v1/session/resume-wrap-up``: which pending wrap-up (default: the oldest)."""

    appointment_id: OpaqueId | None = None


# ----------------------------------------------------------------- lock screen, health


class UpcomingItem(_Response):
    """One coming consultation as the lock screen may show it: times and the clinic's name."""

    starts_at: datetime
    ends_at: datetime
    clinic_name: str
    due_soon: bool


class UpcomingOut(_Response):
    """``GET /v1/upcoming``."""

    now: datetime
    items: list[UpcomingItem]


class EnrollmentOut(_Response):
    """``GET /v1/enrollment``: what an unprovisioned station shows IT (code and QR text).

    404 once the station is provisioned (or while provisioning cannot say).
    """

    code: str = Field(max_length=64)
    qr_payload: str = Field(max_length=1024)
    #: The station's identity fingerprint (``ABCD-EFGH-...``), for IT to compare.
    fingerprint: str | None = Field(default=None, max_length=64)


class HealthCheckOut(_Response):
    """One hardware check: name, result, English detail, hint for the person."""

    name: str
    ok: bool
    detail: str
    hint: str
    #: The part is not there at all (not ``ok``); stationd looks for it every few seconds.
    missing: bool = False


class HealthOut(_Response):
    """``GET /v1/health``."""

    ok: bool
    checked_at: datetime | None
    checks: list[HealthCheckOut]
    #: Which backend serves each port (camera, audio, gpio, frame_sink, hub, export);
    #: ``missing`` for a part that is not there.
    ports: dict[str, str] = {}


# ----------------------------------------------------------------- staff enrollment


class StaffEnrollRequest(_Request):
    """``POST /v1/staff/enroll``: IT's one-time code, the newcomer's PIN and (after the
    first staff member) an enrolled colleague vouching with their staff number and PIN."""

    code: str = Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9 -]+$")
    pin: str = Field(min_length=1, max_length=64, repr=False)
    sponsor_staff_number: str | None = Field(default=None, pattern=STAFF_NUMBER_PATTERN)
    sponsor_pin: str | None = Field(default=None, max_length=64, repr=False)


class StaffEnrolledOut(_Response):
    """``POST /v1/staff/enroll``: the new staff member's (pseudonymous) id and the short
    staff number they log in with."""

    staff_id: str = Field(min_length=1, max_length=64)
    staff_number: str = Field(pattern=STAFF_NUMBER_PATTERN)


# ----------------------------------------------------------------- the blind store


class ClinicOut(_Response):
    """A GP clinic (business data, in clear)."""

    id: str
    name: str
    provider_number: str
    video_room: str


class ClinicList(_Response):
    """``GET /v1/clinics``."""

    items: list[ClinicOut]


class MissedItem(_Response):
    """A booked consultation whose slot passed without a call: times and the clinic."""

    consultation_id: str
    clinic_name: str | None
    starts_at: datetime
    ends_at: datetime


class MissedOut(_Response):
    """``GET /v1/missed``: the missed slots no staff member has acknowledged yet."""

    items: list[MissedItem]


class MissedAcknowledge(_Request):
    """``POST /v1/missed/acknowledge``: these missed slots were shown to staff."""

    consultation_ids: list[OpaqueId] = Field(max_length=100)


class MissedAcknowledged(_Response):
    """How many missed slots were newly acknowledged."""

    acknowledged: int


class ConsultationCreate(_Request):
    """``POST /v1/consultations``. ``id`` may be chosen by the client (sealing needs it first)."""

    id: OpaqueId | None = None
    clinic_id: OpaqueId
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    consultation_type: ConsultationTypeValue


class ConsultationUpdate(_Request):
    """``PATCH /v1/consultations/{id}``: re-book (any subset)."""

    clinic_id: OpaqueId | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    consultation_type: ConsultationTypeValue | None = None


class ConsultationOut(_Response):
    """A consultation's clear metadata."""

    id: str
    clinic_id: str
    starts_at: datetime
    ends_at: datetime
    consultation_type: str
    status: str
    created_at: datetime
    documented_at: datetime | None


class ConsultationList(_Response):
    """``GET /v1/consultations``: by start time."""

    items: list[ConsultationOut]


class ConsultationStatusRequest(_Request):
    """``PUT /v1/consultations/{id}/status`` (``documented`` has its own endpoint)."""

    status: Literal["booked", "in_call", "ended", "cancelled"]


class KeyIn(_Request):
    """``PUT /v1/consultations/{id}/key``: the consultation's data key, wrapped by the vault."""

    wrapped_key: SealedBlob


class KeyOut(_Response):
    """The wrapped data key as stored."""

    consultation_id: str
    wrapped_key: SealedBlob


class EntryCreate(_Request):
    """``POST /v1/consultations/{id}/entries``: a resident's sealed fields."""

    id: OpaqueId | None = None
    sealed: dict[EntryField, SealedBlob] = Field(max_length=6)
    status: EntryStatusValue = "waiting"


class EntryStatusRequest(_Request):
    """``PUT /v1/entries/{id}/status``."""

    status: EntryStatusValue


class EntryUpdate(_Request):
    """``PATCH /v1/entries/{id}``: replace or remove sealed fields, change the status."""

    sealed: dict[EntryField, SealedBlob] = Field(default_factory=dict, max_length=6)
    remove_fields: list[EntryField] = Field(default_factory=list, max_length=6)
    status: EntryStatusValue | None = None


class EntryOut(_Response):
    """A queue entry: clear position and status, sealed fields as base64."""

    id: str
    consultation_id: str
    position: int
    status: str
    sealed: dict[str, SealedBlob]


class EntryList(_Response):
    """A consultation's queue, in order."""

    items: list[EntryOut]


class OrderRequest(_Request):
    """``PUT /v1/consultations/{id}/entries/order``: every entry id once, in the new order."""

    entry_ids: list[OpaqueId] = Field(max_length=200)


class NoteCreate(_Request):
    """``POST /v1/consultations/{id}/notes``: a sealed wrap-up note."""

    id: OpaqueId | None = None
    entry_id: OpaqueId | None = None
    body: SealedBlob


class NoteOut(_Response):
    """A stored note."""

    id: str
    consultation_id: str
    entry_id: str | None
    created_at: datetime
    body: SealedBlob


class NoteList(_Response):
    """``GET /v1/consultations/{id}/notes``."""

    items: list[NoteOut]


class SealedEventOut(_Response):
    """Something stationd sealed to the vault's public key (open it in the staff UI)."""

    id: str
    consultation_id: str
    created_at: datetime
    kind: str
    blob: SealedBlob


class SealedEventList(_Response):
    """``GET /v1/consultations/{id}/sealed-events``."""

    items: list[SealedEventOut]


# ----------------------------------------------------------------- the call


class CallRoomRequest(_Request):
    """``POST /v1/call/room``: make the GP's link for a consultation (at booking, or any time
    before the call)."""

    consultation_id: OpaqueId
    #: Revoke the link already issued and make a new one.
    renew: bool = False


class CallStartRequest(_Request):
    """``POST /v1/call/start``: start the call for a consultation, with who is waiting (in
    order, for a round)."""

    consultation_id: OpaqueId
    residents: list[WaitingResident] = Field(min_length=1, max_length=20)
    #: The consultation type as it turns out at the call (recorded in the store).
    consultation_type: ConsultationTypeValue | None = None


class CallMuteRequest(_Request):
    """``POST /v1/call/mute``: microphone off (true) or on."""

    muted: bool


class CallCameraRequest(_Request):
    """``POST /v1/call/camera``: camera off (true) or on."""

    off: bool


class CallAudioOnlyRequest(_Request):
    """``POST /v1/call/audio-only``: video paused both ways (true) or back (false)."""

    on: bool


class CallVolumeRequest(_Request):
    """``POST /v1/call/volume``: louder or softer, one step."""

    direction: VolumeDirection


class ResidentPositionOut(_Response):
    """Who is in front of the camera, as a position in the round (never a name)."""

    position: int
    of: int


class CallQualityOut(_Response):
    """The call's latest statistics sample and the level the UIs show."""

    level: str
    rtt_ms: float | None
    loss: float
    fps: float
    bitrate_kbps: float


class SentVideoOut(_Response):
    """The station's video as the ladder has it (``station.call.ladder``): the rung's bitrate
    (bit/s) and picture scale, the size of the last picture the station encoded (None: the
    camera's own packets) and what the video sent in the last second."""

    bitrate: int
    scale: float
    size: tuple[int, int] | None
    sent_kbps: float


class CallMediaOut(_Response):
    """Frame counters of the call (what has arrived and been sent)."""

    remote_video_frames: int
    remote_audio_frames: int
    #: Wall-clock time (seconds since the epoch) of the GP's first video frame.
    first_remote_video_at: float | None
    sent_video_frames: int
    sent_video: SentVideoOut | None = None


class SelectedPairOut(_Response):
    """The candidate types of the ICE pair in use (``host``, ``srflx``, ``relay``).

    ``relay_protocol``: when the station's side is a relay, how it reaches the TURN server
    (``udp``, ``tcp`` or ``tls``).
    """

    local: str
    remote: str
    relay_protocol: Literal["udp", "tcp", "tls"] | None = None


class CallErrorOut(_Response):
    """Why the last call attempt failed: a machine code, English, Danish."""

    code: str
    message: str
    user_message: str | None = None


class GpMediaOut(_Response):
    """What the GP page says it sends: a live camera track and microphone track."""

    video: bool
    audio: bool


class GpPresenceOut(_Response):
    """Whether the GP is still there (see ``station.call.liveness``)."""

    #: Why the GP is gone (``gone``, ``closed``, ...), None while present.
    left: str | None = None
    #: Seconds until the call ends by itself because the GP left.
    ends_in: float | None = None
    media: GpMediaOut | None = None
    video_stalled: bool = False


class CallStatusOut(_Response):
    """``GET /v1/call`` and the answer of every call control: whether calls work here, and
    the running call (no personal data: positions, not names).

    When calls are not available only ``available``, ``reason`` and ``active`` are sent; the
    fields a response leaves out keep their defaults here.
    """

    available: bool = True
    #: Why calls are not available (English, for IT).
    reason: str | None = None
    active: bool = False
    phase: str | None = None
    room_id: str | None = None
    attempt: int = 0
    generation: int = 0
    admitted: bool = False
    private: bool = False
    muted: bool = False
    camera_off: bool = False
    #: Video paused both ways, audio goes on.
    audio_only: bool = False
    #: Why: ``choice`` (staff or the GP chose it) or ``poor_connection`` (automatic).
    audio_only_reason: Literal["choice", "poor_connection"] | None = None
    volume: int | None = None
    volume_max: int | None = None
    resident: ResidentPositionOut | None = None
    quality: CallQualityOut | None = None
    media: CallMediaOut | None = None
    selected_pair: SelectedPairOut | None = None
    error: CallErrorOut | None = None
    gp: GpPresenceOut | None = None
    keyframe_requests: int = 0
    #: The next attempt's peer connection is prepared (gathered) while this one runs, and
    #: whether the current attempt started on such a prepared one (a fast re-dial).
    next_attempt_prepared: bool = False
    attempt_prepared: bool = False
    #: The parts a call needs that are missing now (``camera``, ``audio``).
    missing: list[str] = []


class CallRoomOut(_Response):
    """``POST /v1/call/room``: the room and the GP's link (returned once, never stored)."""

    consultation_id: str
    room_id: str
    gp_url: str = Field(repr=False)
    #: The short code for the GP to type at ``gp_code_url`` (from a hub that makes them).
    gp_code: str | None = Field(default=None, repr=False)
    gp_code_url: str | None = None
    valid_from: datetime
    valid_until: datetime


class CallStartOut(_Response):
    """``POST /v1/call/start``: the room, the GP's link if it was made now, the call."""

    room_id: str
    gp_url: str | None = Field(default=None, repr=False)
    gp_code: str | None = Field(default=None, repr=False)
    gp_code_url: str | None = None
    call: CallStatusOut


# ----------------------------------------------------------------- the pre-call check


class FrameOut(_Response):
    """``GET /v1/precheck/frame``: one small RGB thumbnail of the newest camera picture."""

    width: int
    height: int
    format: Literal["rgb24"] = "rgb24"
    #: ``width * height * 3`` bytes, row by row.
    data: Base64Bytes


class MicrophoneLevelOut(_Response):
    """``GET /v1/precheck/microphone``: the level over a short stretch, in dBFS."""

    rms_dbfs: float
    peak_dbfs: float


class ToneOut(_Response):
    """``POST /v1/precheck/tone``: the test tone is playing (it ends by itself)."""

    playing: bool
    seconds: float


class NetworkCheckOut(_Response):
    """Can one thing the call needs be reached (the hub, a TURN server)? With a hint.

    ``value``: what the check found, for the screen (the TURN check's path: ``UDP``, ``TCP``,
    ``TLS 443`` or the catalogue's "none"); empty when pass or fail says it all.
    """

    name: str
    ok: bool
    detail: str
    hint: str
    value: str = ""


class TurnPathOut(_Response):
    """One configured TURN URL tried with a real allocation (the pre-call check)."""

    transport: Literal["udp", "tcp", "tls"]
    port: int
    #: ``UDP``, ``TCP``, ``TLS 443``.
    label: str
    ok: bool
    #: English, for IT: why not, or how long the allocation took.
    detail: str
    ms: float | None = None


class NetworkOut(_Response):
    """``GET /v1/precheck/network``: one result per configured target.

    ``turn_path``: the path the call will take to the TURN server (``udp``, ``tcp``, ``tls``),
    ``none`` when no configured path works, None when no TURN server is configured;
    ``turn_paths``: every configured path's result, in the order of preference.
    """

    ok: bool
    checks: list[NetworkCheckOut]
    turn_path: Literal["udp", "tcp", "tls", "none"] | None = None
    turn_paths: list[TurnPathOut] = Field(default_factory=list)


# ----------------------------------------------------------------- the care-record export


class ExportSettingsOut(_Response):
    """``GET /v1/exports/settings``: how the wrap-up screen documents, and the key to seal to.

    ``delivery`` is ``fhir`` (seal and ``POST /v1/exports``), ``summary`` (no endpoint: show
    the plain-text summary to copy) or ``unavailable`` (the outbox is broken: show the
    summary and call IT).
    """

    delivery: Literal["fhir", "summary", "unavailable"]
    outbox_public_key: SealedExport | None


class ExportCreate(_Request):
    """``POST /v1/exports``: one sealed export (see ``station.export.seal_export``)."""

    export_id: _ExportRef
    consultation_id: _ExportRef
    entry_id: _ExportRef | None = None
    sealed: SealedExport


class ExportOut(_Response):
    """One export as the wrap-up screen shows its progress (no content)."""

    export_id: str
    consultation_id: str
    entry_id: str | None
    state: Literal["pending", "delivered"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    #: ``delivered`` or a ``failed_*`` code (``failed_connect``, ``failed_timeout``, ...).
    last_outcome: str | None
    delivered_at: datetime | None


class ExportList(_Response):
    """``GET /v1/consultations/{id}/exports``: each export's delivery progress."""

    items: list[ExportOut]
