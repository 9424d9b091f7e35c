"""What the staff UI hands the outbox: the documentation of one note, sealed.

An :class:`ExportPayload` is plaintext personal data (who, what was written); it exists only
in the staff UI (which holds the vault key and opened the record) and, for the moment of a
delivery, in stationd's memory. The UI seals it to the outbox's public key with
:func:`seal_export`; stationd stores the box and opens it with :meth:`OutboxKey.open` at send
time (:func:`open_export`). The box is bound to the export id and the consultation id, so a
box moved to another outbox row fails to open.

One export is one wrap-up note; its id is the note's id, which makes every FHIR identifier
derived from it (and so the receiver's de-duplication) stable across retries.

Nothing here prints personal data: ``repr()`` of the models is masked and validation
errors never quote the input.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from station.core.cpr import CprError, parse_cpr
from station.core.ids import is_opaque_id
from station.core.model import Resident, WithCpr
from station.export.errors import ExportPayloadInvalid
from station.export.limits import MAX_NOTE_CHARS, MAX_SEALED_EXPORT_BYTES
from station.i18n import N_
from station.keys.boxes import seal_to_vault
from station.keys.crypto import SealError

__all__ = [
    "EXPORT_CONTEXT",
    "MAX_NOTE_CHARS",
    "MAX_SEALED_EXPORT_BYTES",
    "ExportPatient",
    "ExportPayload",
    "ExportedConsultationType",
    "export_context",
    "open_export",
    "seal_export",
]

#: Prefix of the HPKE ``info`` an export is sealed under; see :func:`export_context`.
EXPORT_CONTEXT: Final = b"kontaktstation export v1"
ExportedConsultationType = Literal[
    "video_consultation", "assisted_consultation", "video_conference"
]


def _opaque(value: str) -> str:
    if not is_opaque_id(value):
        raise ValueError("must be an opaque id (station.core.ids), never a CPR number")
    return value


_OpaqueId = Annotated[str, AfterValidator(_opaque)]


class _Private(BaseModel):
    """A model holding personal data: frozen, strict about fields, masked repr, no echo."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<skjult>)"

    __str__ = __repr__

    def __repr_args__(self) -> Any:  # pydantic's pretty printers and rich use this
        return []


class ExportPatient(_Private):
    """The resident as the care record needs them: CPR when known, else name + birth date."""

    name: str = Field(min_length=1, max_length=200)
    #: Ten digits, no hyphen (validated with :func:`station.core.cpr.parse_cpr`).
    cpr: str | None = None
    birth_date: date | None = None

    @field_validator("cpr")
    @classmethod
    def _check_cpr(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse_cpr(value).digits
        except CprError:
            raise ValueError("not a valid CPR number") from None

    @model_validator(mode="after")
    def _identified(self) -> ExportPatient:
        if self.cpr is None and self.birth_date is None:
            raise ValueError("a patient without CPR number needs a birth date")
        return self

    @classmethod
    def from_resident(cls, resident: Resident) -> ExportPatient:
        """From the opened queue entry's resident (``station.keys.records.open_entry``)."""
        identity = resident.identity
        if isinstance(identity, WithCpr):
            return cls(
                name=identity.display_name,
                cpr=identity.cpr.digits,
                birth_date=identity.cpr.birth_date,
            )
        return cls(name=identity.display_name, birth_date=identity.birth_date)


class ExportPayload(_Private):
    """One wrap-up note with what the care record needs around it (see the module docs)."""

    version: Literal[1] = 1
    #: The export's id: the note's id (one export per note).
    export_id: _OpaqueId
    consultation_id: _OpaqueId
    #: The queue entry (resident) the note is about; None for a note on the whole call.
    entry_id: _OpaqueId | None = None
    consultation_type: ExportedConsultationType
    #: When the video contact began and ended (the call, else the booked slot).
    started_at: AwareDatetime
    ended_at: AwareDatetime
    clinic_name: str = Field(min_length=1, max_length=200)
    #: The GP clinic's provider number (ydernummer), urn:oid:1.2.208.176.1.4.
    clinic_provider_number: str = Field(pattern=r"^[A-Za-z0-9-]{1,16}$")
    #: The staff member who wrote the note (their pseudonymous station id).
    staff_id: _OpaqueId
    #: Whether staff took part in the call (assisted consultation, video conference).
    staff_took_part: bool
    patient: ExportPatient
    note_text: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)
    written_at: AwareDatetime

    @model_validator(mode="after")
    def _consistent(self) -> ExportPayload:
        if self.ended_at < self.started_at:
            raise ValueError("the contact cannot end before it starts")
        if self.consultation_type != "video_consultation" and not self.staff_took_part:
            # MedCom's distinction: assisted consultations and conferences have staff in them.
            raise ValueError(f"a {self.consultation_type} has staff taking part")
        return self

    @classmethod
    def parse(cls, data: object) -> ExportPayload:
        """Validate ``data``; :class:`ExportPayloadInvalid` naming fields, never values."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ExportPayloadInvalid(_validation_message(exc)) from None


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False)[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
        parts.append(f"{where}: {err.get('type', 'invalid')}")
    return "invalid export payload: " + "; ".join(parts)


def export_context(export_id: str, consultation_id: str) -> bytes:
    """The HPKE ``info`` an export is sealed under: bound to its outbox row."""
    return b"|".join((EXPORT_CONTEXT, export_id.encode(), consultation_id.encode()))


def seal_export(payload: ExportPayload, outbox_public_key: bytes) -> bytes:
    """Seal ``payload`` for the outbox (staff UI side). Needs only the public key."""
    plaintext = payload.model_dump_json().encode("utf-8")
    blob = seal_to_vault(
        outbox_public_key, plaintext, export_context(payload.export_id, payload.consultation_id)
    )
    if len(blob) > MAX_SEALED_EXPORT_BYTES:
        raise ExportPayloadInvalid(
            f"sealed export is {len(blob)} bytes; at most {MAX_SEALED_EXPORT_BYTES} are accepted",
            N_("The note is too long to be sent. Make it shorter."),
        )
    return blob


def open_export(opener: Any, blob: bytes, *, export_id: str, consultation_id: str) -> ExportPayload:
    """Open a sealed export (stationd side) with ``opener.open(blob, context)``.

    ``opener`` is the :class:`station.export.keys.OutboxKey`. The payload must name the same
    export and consultation as the row it came from.
    """
    try:
        plaintext: bytes = opener.open(blob, export_context(export_id, consultation_id))
    except SealError:
        raise ExportPayloadInvalid(
            "sealed export could not be opened (wrong key or moved)"
        ) from None
    try:
        data = json.loads(plaintext)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ExportPayloadInvalid("sealed export does not hold JSON") from None
    payload = ExportPayload.parse(data)
    if payload.export_id != export_id or payload.consultation_id != consultation_id:
        raise ExportPayloadInvalid("sealed export names another export or consultation")
    return payload
