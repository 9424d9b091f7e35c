"""The local API's request and response bodies (pydantic), shared by the daemon and its client.

What crosses the socket is clear metadata (ids, times, statuses, positions, clinic names) and
*sealed* blobs, carried as standard base64 strings. The daemon never sees plaintext personal
data, so none of these models has a field for it; a sealed field is opaque bytes to both
sides of the socket. Ids follow the store's rule (1-64 of ``A-Z a-z 0-9 _ -``, never shaped
like a CPR number); the store checks that again, so a client bug cannot slip past either.

Every request model forbids unknown fields: a typo in a field name is an error, not silently
ignored data.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any, Literal

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

__all__ = [
    "BeginCheckRequest",
    "CancelRequest",
    "ClinicOut",
    "ConsultationCreate",
    "ConsultationOut",
    "ConsultationQuery",
    "ConsultationStatusRequest",
    "ConsultationStatusValue",
    "ConsultationTypeValue",
    "ConsultationUpdate",
    "EmptyRequest",
    "EnrollmentOut",
    "EntryCreate",
    "EntryOut",
    "EntryStatusRequest",
    "EntryStatusValue",
    "EntryUpdate",
    "ErrorBody",
    "HealthCheckOut",
    "HealthOut",
    "KeyIn",
    "KeyOut",
    "LockRequest",
    "LockResponse",
    "NoteCreate",
    "NoteOut",
    "OpaqueId",
    "OrderRequest",
    "ResumeWrapUpRequest",
    "SealedBlob",
    "SealedEventOut",
    "SettingsOut",
    "StaffEnrolledOut",
    "StateOut",
    "UnlockRequest",
    "UnlockResponse",
    "UpcomingItem",
    "UpcomingOut",
    "check_id",
    "decode_b64",
    "encode_b64",
]

#: Sealed blobs are at most the store's 64 KiB; base64 makes that ~88 KiB of JSON.
MAX_BLOB_BYTES = 64 * 1024

_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_CPR_LIKE_RE = re.compile(r"[0-9]{6}-?[0-9]{4}", re.ASCII)
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}", re.ASCII)


def check_id(value: str) -> str:
    """``value`` if it is a usable opaque id, else ``ValueError`` (never quoting it)."""
    # The message never quotes the value: a mistyped id may be a CPR number.
    if not _ID_RE.fullmatch(value) or _CPR_LIKE_RE.search(value):
        raise ValueError(
            "must be an opaque id of 1-64 ASCII letters, digits, '-' or '_', never a CPR number"
        )
    return value


def decode_b64(value: Any) -> bytes:
    """Strict standard base64 (with padding) to bytes; ``ValueError`` with a clear reason."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    if len(value) > (MAX_BLOB_BYTES * 4) // 3 + 4:
        raise ValueError(f"sealed value is larger than {MAX_BLOB_BYTES} bytes")
    if len(value) % 4 or not _B64_RE.fullmatch(value):
        raise ValueError("must be standard base64 with padding (A-Z a-z 0-9 + /, '=')")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be valid base64") from None


def encode_b64(value: bytes) -> str:
    """Bytes to standard base64 text."""
    return base64.b64encode(value).decode("ascii")


def _non_empty(value: bytes) -> bytes:
    if not value:
        raise ValueError("a sealed value cannot be empty")
    return value


#: An opaque id (never personal data).
OpaqueId = Annotated[str, AfterValidator(check_id)]

#: A sealed value: bytes in Python, base64 text in JSON.
SealedBlob = Annotated[
    bytes,
    BeforeValidator(decode_b64),
    AfterValidator(_non_empty),
    PlainSerializer(encode_b64, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]

ConsultationTypeValue = Literal["video_consultation", "assisted_consultation", "video_conference"]
ConsultationStatusValue = Literal["booked", "in_call", "ended", "documented", "cancelled"]
EntryStatusValue = Literal["waiting", "in_call", "done", "skipped"]
EntryField = Literal["display_name", "birth_date", "room", "cpr", "note", "reason"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    reason: Literal["staff_action", "leave"] = "staff_action"


class LockResponse(_Response):
    """What a lock did: the state afterwards, and whether anything changed."""

    state: str
    changed: bool


class UnlockRequest(_Request):
    """``POST /v1/unlock``: a staff member's pseudonymous id and PIN."""

    staff_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    pin: str = Field(min_length=4, max_length=12, pattern=r"^[0-9]+$", repr=False)


class UnlockResponse(_Response):
    """The staff-session token (Bearer), the state the unlock led to, and the vault key.

    ``vault_key`` is the key hand-over to the staff UI (see ``StationService.unlock``): 32
    bytes, base64 in JSON. The staff UI puts it into a ``VaultKey`` at once and drops this
    object; it is never logged (``repr=False``).
    """

    token: str = Field(repr=False)
    staff_id: str
    state: str
    vault_key: SealedBlob = Field(repr=False)


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


class StaffEnrolledOut(_Response):
    """``POST /v1/staff/enroll``: the new staff member's (pseudonymous) id."""

    staff_id: str = Field(min_length=1, max_length=64)


class EnrollmentOut(_Response):
    """``GET /v1/enrollment``: what an unprovisioned station shows IT (code and QR text).

    404 once the station is provisioned (or while provisioning cannot say).
    """

    code: str = Field(max_length=64)
    qr_payload: str = Field(max_length=1024)
    #: The station's identity fingerprint (``ABCD-EFGH-...``), for IT to compare.
    fingerprint: str | None = Field(default=None, max_length=64)


class HealthCheckOut(_Response):
    """One hardware check: name, result, English detail, Danish hint."""

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


# ----------------------------------------------------------------- blob endpoints


class ClinicOut(_Response):
    """A GP clinic (business data, in clear)."""

    id: str
    name: str
    provider_number: str
    video_room: str


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


class ConsultationStatusRequest(_Request):
    """``PUT /v1/consultations/{id}/status`` (``documented`` has its own endpoint)."""

    status: Literal["booked", "in_call", "ended", "cancelled"]


class ConsultationQuery(_Request):
    """``GET /v1/consultations`` query: ``from``, ``before`` (aware ISO times), ``status``."""

    starts_from: AwareDatetime | None = None
    starts_before: AwareDatetime | None = None
    status: list[ConsultationStatusValue] | None = Field(default=None, max_length=5)


class EmptyRequest(_Request):
    """Endpoints that take no body accept nothing but an empty one (or ``{}``)."""


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


class SealedEventOut(_Response):
    """Something stationd sealed to the vault's public key (open it in the staff UI)."""

    id: str
    consultation_id: str
    created_at: datetime
    kind: str
    blob: SealedBlob
