"""The export endpoints: the wrap-up screen's hand-off to the care record (staff only).

All blind: the staff UI sends the export already sealed to the outbox key
(``station.export.seal_export``); stationd stores it in the outbox and its delivery worker
sends it.

- ``GET /v1/exports/settings`` -> :class:`~stationapi.models.ExportSettingsOut`
- ``POST /v1/exports`` (:class:`~stationapi.models.ExportCreate`) -> 201
  :class:`~stationapi.models.ExportOut` (queued), 200 (the same export id was queued before:
  nothing changed), 409 ``export_not_configured`` (no endpoint: use the summary), 404
  (unknown consultation), 503 (outbox unavailable)
- ``GET /v1/consultations/{cid}/exports`` -> :class:`~stationapi.models.ExportList`
- ``POST /v1/exports/{export_id}/retry`` -> :class:`~stationapi.models.ExportOut` (due now;
  the worker wakes)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Response

from station.daemon.errors import ApiError
from station.daemon.routes.deps import (
    ApiContext,
    ConsultationId,
    Context,
    ExportId,
    Staff,
    StationRoute,
    store_error,
)
from station.daemon.service import StationService
from station.errors import StationError
from station.export.errors import ExportNotConfigured, OutboxError
from station.export.outbox import OutboxEntry
from station.export.service import ExportService
from station.i18n import N_
from stationapi import models as m

__all__ = ["export_out", "router"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

router = APIRouter(route_class=StationRoute, tags=["export"])


def _live(context: ApiContext) -> ExportService:
    # Called in the handlers (not a dependency): the token and the body are checked first.
    if context.exports is None:
        raise ApiError.unavailable(
            "the export outbox is not available",
            N_("The connection to the care record does not work right now. Contact IT."),
        )
    return context.exports


async def _run(service: StationService, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """An outbox or store call on the store's worker; its errors as API errors."""
    try:
        result: _T = await service.db(fn, *args, **kwargs)
    except ApiError:
        raise
    except ExportNotConfigured as exc:
        raise ApiError(409, "export_not_configured", str(exc), exc.user_message) from None
    except OutboxError as exc:
        if "no export with that id" in str(exc):
            raise ApiError(404, "not_found", str(exc), exc.user_message) from None
        _log.error("export outbox failed: %s", exc)
        raise ApiError.unavailable(str(exc), exc.user_message) from None
    except StationError as exc:
        raise store_error(exc) from None
    return result


@router.get("/v1/exports/settings", summary="How to document: FHIR, summary, or unavailable")
async def get_export_settings(context: Context, _staff: Staff) -> m.ExportSettingsOut:
    """The delivery, and the outbox's public key to seal to."""
    exports = context.exports
    if exports is None:
        return m.ExportSettingsOut(delivery="unavailable", outbox_public_key=None)
    return m.ExportSettingsOut(
        delivery="fhir" if exports.delivery_enabled else "summary",
        outbox_public_key=exports.public_key,
    )


@router.post(
    "/v1/exports",
    status_code=201,
    summary="Queue a sealed export (200: already queued)",
    responses={200: {"model": m.ExportOut, "description": "Queued before: nothing changed"}},
)
async def post_export(
    context: Context, staff: Staff, body: m.ExportCreate, response: Response
) -> m.ExportOut:
    """Idempotent by ``export_id``."""
    service, exports = context.service, _live(context)
    await _run(service, service.store.get_consultation, body.consultation_id)
    entry, created = await _run(
        service,
        exports.enqueue,
        export_id=body.export_id,
        consultation_id=body.consultation_id,
        entry_id=body.entry_id,
        sealed=body.sealed,
        staff_id=staff.staff_id,
    )
    if not created:
        response.status_code = 200
    return export_out(entry)


@router.get("/v1/consultations/{cid}/exports", summary="Each export's delivery progress")
async def list_exports(context: Context, _staff: Staff, cid: ConsultationId) -> m.ExportList:
    """No content: ids, states, attempts, times."""
    service, exports = context.service, _live(context)
    entries = await _run(service, exports.outbox.list_for_consultation, cid)
    return m.ExportList(items=[export_out(e) for e in entries])


@router.post("/v1/exports/{export_id}/retry", summary="Try a waiting export now")
async def post_retry(context: Context, _staff: Staff, export_id: ExportId) -> m.ExportOut:
    """Due now; the delivery worker wakes."""
    service, exports = context.service, _live(context)
    entry = await _run(service, exports.outbox.retry_now, export_id)
    exports.wake()
    return export_out(entry)


def export_out(entry: OutboxEntry) -> m.ExportOut:
    """The API view of an outbox entry (no content)."""
    pending = entry.state.value == "pending"
    return m.ExportOut(
        export_id=entry.id,
        consultation_id=entry.consultation_id,
        entry_id=entry.entry_id,
        state="pending" if pending else "delivered",
        attempts=entry.attempts,
        created_at=entry.created_at,
        next_attempt_at=entry.next_attempt_at if pending else None,
        last_attempt_at=entry.last_attempt_at,
        last_outcome=entry.last_outcome,
        delivered_at=entry.delivered_at,
    )
