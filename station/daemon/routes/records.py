"""The blind store's records (staff only): clinics, consultations, keys, entries, notes, events.

stationd never handles plaintext personal data here: sealed fields travel as base64 of bytes
it cannot open, and everything in clear is an id, a time, a status or a clinic name. Opening
or changing a resident's entry is audited with the staff member and the entry's pseudonymous
id, never its content.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from station.daemon.routes.deps import (
    ConsultationId,
    EntryId,
    Service,
    Staff,
    StationRoute,
    audit,
    pseudonym,
    run_store,
)
from station.storage.store import (
    Clinic,
    Consultation,
    Note,
    QueueEntry,
    SealedEvent,
    new_id,
)
from stationapi import models as m

__all__ = ["router"]

router = APIRouter(route_class=StationRoute, tags=["records"])

_EMPTY = m.EmptyRequest()
_NO_UPDATE = m.ConsultationUpdate()
_NO_ENTRY_UPDATE = m.EntryUpdate()


# --------------------------------------------------------------------------- converters


# One converter per record, store record to wire model: the contract and the store may not
# import each other, so each spells out its fields here; alike by design.
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


# --------------------------------------------------------------------------- clinics


@router.get("/v1/clinics", summary="The GP clinics (from IT's configuration)")
async def list_clinics(service: Service, _staff: Staff) -> m.ClinicList:
    """Every clinic, business data in clear."""
    clinics: list[Clinic] = await run_store(service, service.store.list_clinics)
    return m.ClinicList(items=[_clinic(c) for c in clinics])


# --------------------------------------------------------------------------- consultations


@router.post("/v1/consultations", status_code=201, summary="Book a consultation")
async def create_consultation(
    service: Service, staff: Staff, body: m.ConsultationCreate
) -> m.ConsultationOut:
    """Clear metadata only; the client may choose the id (sealing needs it first)."""
    created: Consultation = await run_store(
        service,
        service.store.create_consultation,
        consultation_id=body.id or new_id(),
        clinic_id=body.clinic_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        consultation_type=body.consultation_type,
    )
    audit(service, "record_created", staff, None, "consultation")
    return _consultation(created)


@router.get("/v1/consultations", summary="Consultations by start time, optionally filtered")
async def list_consultations(
    service: Service,
    _staff: Staff,
    starts_from: Annotated[
        AwareDatetime | None, Query(alias="from", description="Starting at or after.")
    ] = None,
    starts_before: Annotated[
        AwareDatetime | None, Query(alias="before", description="Starting before.")
    ] = None,
    status: Annotated[list[m.ConsultationStatusValue] | None, Query(max_length=5)] = None,
) -> m.ConsultationList:
    """``from``, ``before`` (aware ISO times) and any number of ``status``."""
    rows: list[Consultation] = await run_store(
        service,
        service.store.list_consultations,
        starts_from=starts_from,
        starts_before=starts_before,
        statuses=status or None,
    )
    return m.ConsultationList(items=[_consultation(c) for c in rows])


@router.get("/v1/consultations/{cid}", summary="One consultation")
async def get_consultation(
    service: Service, _staff: Staff, cid: ConsultationId
) -> m.ConsultationOut:
    """Its clear metadata."""
    return _consultation(await run_store(service, service.store.get_consultation, cid))


@router.patch("/v1/consultations/{cid}", summary="Re-book: clinic, times, type")
async def patch_consultation(
    service: Service,
    staff: Staff,
    cid: ConsultationId,
    body: m.ConsultationUpdate = _NO_UPDATE,
) -> m.ConsultationOut:
    """Any subset of the fields."""
    updated: Consultation = await run_store(
        service,
        service.store.update_consultation,
        cid,
        clinic_id=body.clinic_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        consultation_type=body.consultation_type,
    )
    audit(service, "record_changed", staff, None, "consultation")
    return _consultation(updated)


@router.put("/v1/consultations/{cid}/status", summary="Booked, in call, ended or cancelled")
async def put_consultation_status(
    service: Service, _staff: Staff, cid: ConsultationId, body: m.ConsultationStatusRequest
) -> m.ConsultationOut:
    """``documented`` has its own endpoint."""
    updated = await run_store(service, service.store.set_consultation_status, cid, body.status)
    return _consultation(updated)


@router.post(
    "/v1/consultations/{cid}/documented",
    summary="In the care record: the retention clock starts",
)
async def post_documented(
    service: Service,
    staff: Staff,
    cid: ConsultationId,
    _body: m.EmptyRequest = _EMPTY,
) -> m.ConsultationOut:
    """Marks the consultation documented now."""
    updated = await run_store(service, service.store.mark_documented, cid, service.clock.now())
    audit(service, "consultation_documented", staff, None, "ok")
    return _consultation(updated)


# --------------------------------------------------------------------------- keys


@router.put("/v1/consultations/{cid}/key", summary="Store the wrapped data key")
async def put_key(service: Service, _staff: Staff, cid: ConsultationId, body: m.KeyIn) -> m.KeyOut:
    """The consultation's data key, wrapped by the vault (stationd cannot unwrap it)."""
    await run_store(service, service.store.get_consultation, cid)
    await run_store(service, service.store.put_consultation_key, cid, body.wrapped_key)
    return m.KeyOut(consultation_id=cid, wrapped_key=body.wrapped_key)


@router.get("/v1/consultations/{cid}/key", summary="The wrapped data key")
async def get_key(service: Service, _staff: Staff, cid: ConsultationId) -> m.KeyOut:
    """As stored."""
    key: bytes = await run_store(service, service.store.get_consultation_key, cid)
    return m.KeyOut(consultation_id=cid, wrapped_key=key)


# --------------------------------------------------------------------------- queue entries


@router.post(
    "/v1/consultations/{cid}/entries", status_code=201, summary="Queue a resident (sealed)"
)
async def create_entry(
    service: Service, staff: Staff, cid: ConsultationId, body: m.EntryCreate
) -> m.EntryOut:
    """Sealed fields only."""
    entry_id = body.id or new_id()
    entry: QueueEntry = await run_store(
        service,
        service.store.add_entry,
        entry_id=entry_id,
        consultation_id=cid,
        sealed=dict(body.sealed),
        status=body.status,
    )
    audit(service, "record_created", staff, pseudonym(entry_id), "queue_entry")
    return _entry(entry)


@router.get("/v1/consultations/{cid}/entries", summary="The queue, in order")
async def list_entries(service: Service, staff: Staff, cid: ConsultationId) -> m.EntryList:
    """Every entry, each opening audited."""
    entries: list[QueueEntry] = await run_store(service, service.store.list_entries, cid)
    for e in entries:
        audit(service, "record_opened", staff, pseudonym(e.id), "queue_entry")
    return m.EntryList(items=[_entry(e) for e in entries])


@router.put("/v1/consultations/{cid}/entries/order", summary="Set the queue's order")
async def put_order(
    service: Service, _staff: Staff, cid: ConsultationId, body: m.OrderRequest
) -> m.EntryList:
    """Every entry id once, in the new order."""
    entries: list[QueueEntry] = await run_store(
        service, service.store.reorder_entries, cid, body.entry_ids
    )
    return m.EntryList(items=[_entry(e) for e in entries])


@router.get("/v1/entries/{eid}", summary="One queue entry")
async def get_entry(service: Service, staff: Staff, eid: EntryId) -> m.EntryOut:
    """Its sealed fields (the opening is audited)."""
    entry: QueueEntry = await run_store(service, service.store.get_entry, eid)
    audit(service, "record_opened", staff, pseudonym(eid), "queue_entry")
    return _entry(entry)


@router.patch("/v1/entries/{eid}", summary="Replace or remove sealed fields, or the status")
async def patch_entry(
    service: Service, staff: Staff, eid: EntryId, body: m.EntryUpdate = _NO_ENTRY_UPDATE
) -> m.EntryOut:
    """Any subset."""
    entry: QueueEntry = await run_store(
        service,
        service.store.update_entry,
        eid,
        sealed=dict(body.sealed),
        remove_fields=list(body.remove_fields),
        status=body.status,
    )
    audit(service, "record_changed", staff, pseudonym(eid), "queue_entry")
    return _entry(entry)


@router.put("/v1/entries/{eid}/status", summary="Waiting, in call, done or skipped")
async def put_entry_status(
    service: Service, staff: Staff, eid: EntryId, body: m.EntryStatusRequest
) -> m.EntryOut:
    """The entry's place in the round."""
    entry: QueueEntry = await run_store(service, service.store.set_entry_status, eid, body.status)
    audit(service, "record_changed", staff, pseudonym(eid), "status")
    return _entry(entry)


@router.delete(
    "/v1/entries/{eid}",
    status_code=204,
    response_class=Response,
    summary="Take a resident out of the queue",
)
async def delete_entry(service: Service, staff: Staff, eid: EntryId) -> Response:
    """Deleted for good (audited)."""
    await run_store(service, service.store.delete_entry, eid)
    audit(service, "record_deleted", staff, pseudonym(eid), "queue_entry")
    return Response(status_code=204)


# --------------------------------------------------------------------------- notes, events


@router.post(
    "/v1/consultations/{cid}/notes", status_code=201, summary="Store a sealed wrap-up note"
)
async def create_note(
    service: Service, staff: Staff, cid: ConsultationId, body: m.NoteCreate
) -> m.NoteOut:
    """Sealed by the staff UI; stationd cannot read it."""
    note: Note = await run_store(
        service,
        service.store.add_note,
        note_id=body.id or new_id(),
        consultation_id=cid,
        body=body.body,
        entry_id=body.entry_id,
    )
    audit(service, "note_written", staff, pseudonym(body.entry_id), "ok")
    return _note(note)


@router.get("/v1/consultations/{cid}/notes", summary="The consultation's sealed notes")
async def list_notes(service: Service, staff: Staff, cid: ConsultationId) -> m.NoteList:
    """Every note (the opening is audited)."""
    notes: list[Note] = await run_store(service, service.store.list_notes, cid)
    if notes:
        audit(service, "record_opened", staff, None, "notes")
    return m.NoteList(items=[_note(n) for n in notes])


@router.get(
    "/v1/consultations/{cid}/sealed-events",
    summary="What stationd sealed to the vault while locked",
)
async def list_sealed_events(
    service: Service, _staff: Staff, cid: ConsultationId
) -> m.SealedEventList:
    """Open them with the vault key (in the staff UI)."""
    await run_store(service, service.store.get_consultation, cid)
    events: list[SealedEvent] = await run_store(service, service.store.list_sealed_events, cid)
    return m.SealedEventList(items=[_sealed_event(e) for e in events])
