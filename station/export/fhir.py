"""The consultation as FHIR R4: a transaction Bundle the care record (EOJ) can take in.

What one export (one wrap-up note) becomes:

- ``Encounter`` (profile MedComCoreEncounter): the video contact. ``class`` is v3-ActCode
  ``VR`` (virtual), ``status`` finished, ``period`` the call, ``type`` the kind of call as
  MedCom distinguishes them (video consultation, assisted consultation, video conference),
  ``participant`` the GP (``PPRF``, primary performer) and, when staff took part, the staff
  member (``PART``), ``subject`` the resident, ``serviceProvider`` the care home.
- ``Patient`` (MedComCorePatient when the CPR number is known: identifier system
  ``urn:oid:1.2.208.176.1.2``). Without a CPR number the resident is a Patient with name and
  birth date and a station-assigned identifier; MedComCorePatient requires a CPR (or
  replacement) identifier, so that Patient claims no profile and the EOJ matches it by hand.
- ``Practitioner`` for the GP, identified by the clinic's provider number (ydernummer,
  ``urn:oid:1.2.208.176.1.4``); ``Practitioner`` for the staff member (their station id
  under the configured system); both MedComCorePractitioner.
- ``Organization`` (MedComCoreOrganization): the care home by its SOR code
  (``urn:oid:1.2.208.176.1.1``).
- ``Communication``: the note itself (``payload.contentString``, exactly the text the staff
  member wrote), ``encounter`` and ``subject`` set, ``sender`` the staff member.

Idempotent on the receiver: every entry is a conditional create (``ifNoneExist`` on an
identifier). The station's own identifiers are name-based UUIDs (RFC 4122 version 5) derived
from the consultation, queue-entry and note ids, so a retry of the same export produces the
byte-identical Bundle (same ``Bundle.id`` too) and a FHIR server that already has it creates
nothing new. Resources refer to each other by ``urn:uuid:`` full URLs, which the server
rewrites to its own ids when it processes the transaction.

FHIR version: fhir.resources 8.x ships R5 by default and R4B/STU3 subpackages, no R4 package.
R4B (4.3.0) differs from R4 (4.0.1) only in resources we do not use (medication definition,
evidence, subscriptions); Bundle, Encounter, Communication, Patient, Practitioner and
Organization are the same structures, so we validate with ``fhir.resources.R4B`` and send
plain R4 JSON.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

from station.core.model import ConsultationType
from station.export.config import ExportConfig
from station.export.errors import ExportPayloadInvalid
from station.export.payload import ExportPayload
from station.export.summary import record_text
from station.i18n import N_

__all__ = [
    "CONSULTATION_TYPE_SYSTEM",
    "CPR_SYSTEM",
    "SOR_SYSTEM",
    "STATION_IDENTIFIER_SYSTEM",
    "YDERNUMMER_SYSTEM",
    "build_bundle",
    "stable_uuid",
    "validate_bundle",
]

CPR_SYSTEM: Final = "urn:oid:1.2.208.176.1.2"
SOR_SYSTEM: Final = "urn:oid:1.2.208.176.1.1"
YDERNUMMER_SYSTEM: Final = "urn:oid:1.2.208.176.1.4"
#: Identifiers the station assigns are URIs (``urn:uuid:...``) under RFC 3986's system.
STATION_IDENTIFIER_SYSTEM: Final = "urn:ietf:rfc:3986"
#: The station's code system for MedCom's three kinds of video contact.
CONSULTATION_TYPE_SYSTEM: Final = "urn:kontaktstation:consultation-type"

_MEDCOM: Final = "http://medcomfhir.dk/ig/core/StructureDefinition/"
PROFILE_ENCOUNTER: Final = _MEDCOM + "medcom-core-encounter"
PROFILE_PATIENT: Final = _MEDCOM + "medcom-core-patient"
PROFILE_PRACTITIONER: Final = _MEDCOM + "medcom-core-practitioner"
PROFILE_ORGANIZATION: Final = _MEDCOM + "medcom-core-organization"

_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
#: The namespace of every station-derived UUID (itself a name-based UUID, fixed forever).
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:kontaktstation:export:v1")


def stable_uuid(kind: str, *parts: str) -> str:
    """A name-based UUID for ``kind`` and ``parts``: the same input, the same UUID, always."""
    return str(uuid.uuid5(_NAMESPACE, "|".join((kind, *parts))))


def _fhir_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _station_identifier(kind: str, *parts: str) -> dict[str, str]:
    return {"system": STATION_IDENTIFIER_SYSTEM, "value": f"urn:uuid:{stable_uuid(kind, *parts)}"}


def _entry(full_url: str, resource: dict[str, Any], identifier: dict[str, str]) -> dict[str, Any]:
    rtype = resource["resourceType"]
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {
            "method": "POST",
            "url": rtype,
            "ifNoneExist": f"identifier={identifier['system']}|{identifier['value']}",
        },
    }


def build_bundle(payload: ExportPayload, config: ExportConfig) -> dict[str, Any]:
    """The transaction Bundle for one export (see the module docs) as a JSON-ready dict.

    Deterministic: the same payload and configuration give an equal dict every time.
    """
    p = payload
    entry_key = p.entry_id or "-"
    ref = {
        name: f"urn:uuid:{stable_uuid(name, p.export_id)}"
        for name in ("patient", "gp", "staff", "care_home", "encounter", "communication")
    }

    # -- the care home (service provider)
    home_id = {"system": SOR_SYSTEM, "value": config.care_home.sor}
    care_home = {
        "resourceType": "Organization",
        "meta": {"profile": [PROFILE_ORGANIZATION]},
        "identifier": [home_id],
        "name": config.care_home.name,
    }

    # -- the GP, by the clinic's provider number
    gp_id = {"system": YDERNUMMER_SYSTEM, "value": p.clinic_provider_number}
    gp = {
        "resourceType": "Practitioner",
        "meta": {"profile": [PROFILE_PRACTITIONER]},
        "identifier": [gp_id],
        "name": [{"text": p.clinic_name}],
    }

    # -- the staff member who wrote the note
    staff_id = {"system": config.staff_identifier_system, "value": p.staff_id}
    staff = {
        "resourceType": "Practitioner",
        "meta": {"profile": [PROFILE_PRACTITIONER]},
        "identifier": [staff_id],
    }

    # -- the resident
    patient: dict[str, Any] = {"resourceType": "Patient", "name": [{"text": p.patient.name}]}
    if p.patient.cpr is not None:
        patient_id = {"system": CPR_SYSTEM, "value": p.patient.cpr}
        patient["meta"] = {"profile": [PROFILE_PATIENT]}
    else:
        patient_id = _station_identifier("patient", p.consultation_id, entry_key)
    patient["identifier"] = [patient_id]
    if p.patient.birth_date is not None:
        patient["birthDate"] = p.patient.birth_date.isoformat()

    # -- the video contact
    encounter_id = _station_identifier("encounter", p.consultation_id, entry_key)
    type_display = ConsultationType(p.consultation_type).label_da
    participants: list[dict[str, Any]] = [
        {
            "type": [{"coding": [{"system": _PARTICIPATION, "code": "PPRF"}]}],
            "individual": {"reference": ref["gp"]},
        }
    ]
    if p.staff_took_part:
        participants.append(
            {
                "type": [{"coding": [{"system": _PARTICIPATION, "code": "PART"}]}],
                "individual": {"reference": ref["staff"]},
            }
        )
    encounter = {
        "resourceType": "Encounter",
        "meta": {"profile": [PROFILE_ENCOUNTER]},
        "identifier": [encounter_id],
        "status": "finished",
        "class": {"system": _ACT_CODE, "code": "VR", "display": "virtual"},
        "type": [
            {
                "coding": [
                    {
                        "system": CONSULTATION_TYPE_SYSTEM,
                        "code": p.consultation_type,
                        "display": type_display,
                    }
                ],
                "text": type_display,
            }
        ],
        "subject": {"reference": ref["patient"]},
        "participant": participants,
        "period": {"start": _fhir_time(p.started_at), "end": _fhir_time(p.ended_at)},
        "serviceProvider": {"reference": ref["care_home"]},
    }

    # -- the note
    communication_id = _station_identifier("communication", p.export_id)
    communication = {
        "resourceType": "Communication",
        "identifier": [communication_id],
        "status": "completed",
        "category": [
            {"text": record_text(N_("Note: {kind} with own doctor"), kind=type_display.lower())}
        ],
        "subject": {"reference": ref["patient"]},
        "encounter": {"reference": ref["encounter"]},
        "sent": _fhir_time(p.written_at),
        "sender": {"reference": ref["staff"]},
        "payload": [{"contentString": p.note_text}],
    }

    bundle_uuid = stable_uuid("bundle", p.export_id)
    return {
        "resourceType": "Bundle",
        "id": bundle_uuid,
        "identifier": {"system": STATION_IDENTIFIER_SYSTEM, "value": f"urn:uuid:{bundle_uuid}"},
        "type": "transaction",
        "entry": [
            _entry(ref["care_home"], care_home, home_id),
            _entry(ref["gp"], gp, gp_id),
            _entry(ref["staff"], staff, staff_id),
            _entry(ref["patient"], patient, patient_id),
            _entry(ref["encounter"], encounter, encounter_id),
            _entry(ref["communication"], communication, communication_id),
        ],
    }


def validate_bundle(bundle: dict[str, Any]) -> None:
    """Parse ``bundle`` and each resource in it with fhir.resources (R4B); raise if invalid.

    Raises :class:`ExportPayloadInvalid` naming the resource type and fields, never values.
    """
    # Imported here: fhir.resources is large, and only the delivery path needs it.
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    def check(model_name: str, data: dict[str, Any]) -> None:
        try:
            get_fhir_model_class(model_name).model_validate(data)
        except (ValidationError, ValueError, KeyError) as exc:
            where = model_name
            if isinstance(exc, ValidationError):
                locs = [
                    ".".join(str(x) for x in err.get("loc", ()))
                    for err in exc.errors(include_url=False, include_input=False)[:3]
                ]
                where += f" ({'; '.join(locs)})"
            raise ExportPayloadInvalid(f"FHIR validation failed for {where}") from None

    check("Bundle", bundle)
    for entry in bundle.get("entry", []):
        resource = entry.get("resource")
        if isinstance(resource, dict):
            check(str(resource.get("resourceType")), resource)
