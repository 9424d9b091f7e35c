"""Missed consultations (staff only): booked slots that passed without a call (issue 17).

Clear metadata only: the consultation's id, its times and the clinic's name. stationd's
reminder loop records them (``station.daemon.reminders``); the staff UI shows the ones nobody
has seen at the next log-in and then acknowledges them. The heartbeat counts them regardless.
"""

from __future__ import annotations

from fastapi import APIRouter

from station.daemon.routes.deps import Service, Staff, StationRoute, audit, run_store
from station.storage.store import MissedSlot
from stationapi import models as m

__all__ = ["router"]

router = APIRouter(route_class=StationRoute, tags=["records"])


@router.get("/v1/missed", summary="Booked slots that passed without a call, not yet seen")
async def list_missed(service: Service, _staff: Staff) -> m.MissedOut:
    """Oldest first; times and clinic names only."""
    rows: list[MissedSlot] = await run_store(service, service.store.list_missed)
    return m.MissedOut(
        items=[
            m.MissedItem(
                consultation_id=r.consultation_id,
                clinic_name=r.clinic_name,
                starts_at=r.starts_at,
                ends_at=r.ends_at,
            )
            for r in rows
        ]
    )


@router.post("/v1/missed/acknowledge", summary="These missed slots were shown to staff")
async def acknowledge_missed(
    service: Service, staff: Staff, body: m.MissedAcknowledge
) -> m.MissedAcknowledged:
    """Marks them seen (they stay counted in the heartbeat)."""
    count: int = await run_store(
        service, service.store.acknowledge_missed, service.clock.now(), body.consultation_ids
    )
    if count:
        audit(service, "missed_acknowledged", staff, None, "ok")
    return m.MissedAcknowledged(acknowledged=count)
