"""What the lock screen reads (no token): settings, upcoming consultations, health, enrollment.

Nothing personal: IT's language, times and clinic names, which hardware part is missing or
not working, and an unprovisioned station's enrollment code for IT.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from station.daemon.errors import ApiError
from station.daemon.routes.deps import Service, StationRoute, mapped
from station.i18n import N_
from stationapi import models as m

__all__ = ["router"]

router = APIRouter(route_class=StationRoute, tags=["station"])


@router.get("/v1/settings", summary="IT's settings for the UIs (the language)")
async def get_settings(service: Service) -> m.SettingsOut:
    """The UIs' language, from IT's signed configuration."""
    return m.SettingsOut(language=service.language)


@router.get("/v1/upcoming", summary="The coming consultations: times and clinic names only")
async def get_upcoming(
    service: Service,
    limit: Annotated[int, Query(ge=1, le=50, description="How many, at most.")] = 10,
) -> m.UpcomingOut:
    """The lock screen's list, each flagged when it is due soon."""
    now, rows = await mapped(service.upcoming(limit))
    items = [
        m.UpcomingItem(
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            clinic_name=row.clinic_name,
            due_soon=due,
        )
        for row, due in rows
    ]
    return m.UpcomingOut(now=now, items=items)


@router.get("/v1/health", summary="The hardware checks, and which backend serves each port")
async def get_health(service: Service) -> m.HealthOut:
    """The last checks (run now if none ran yet)."""
    checked_at, results = service.health
    if checked_at is None:
        results = await service.refresh_health()
        checked_at, _ = service.health
    checks = [
        m.HealthCheckOut(name=r.name, ok=r.ok, detail=r.detail, hint=r.hint, missing=r.missing)
        for r in results
    ]
    return m.HealthOut(
        ok=all(c.ok for c in checks), checked_at=checked_at, checks=checks, ports=service.ports
    )


@router.get(
    "/v1/enrollment",
    summary="An unprovisioned station's enrollment code (404 once enrolled)",
)
async def get_enrollment(service: Service) -> m.EnrollmentOut:
    """The provisioning agent's code and QR until IT approves the station; 404 once it is
    enrolled, when no hub is configured, or before the hub first answered."""
    agent = service.provisioning
    view = None if agent is None else agent.enrollment_view()
    if view is None or view.get("code") is None:
        raise ApiError(
            404,
            "not_found",
            "no enrollment code (enrolled, no hub, or the hub not reached yet)",
            N_("The station's enrollment code is not available."),
        )
    return m.EnrollmentOut(
        code=view["code"], qr_payload=view["qr_payload"], fingerprint=view["fingerprint"]
    )
