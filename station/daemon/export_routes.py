"""stationd's export endpoints (the wrap-up screen's hand-off to the care record).

All staff-only (``Authorization: Bearer``), all blind: the staff UI sends the export already
sealed to the outbox key (``station.export.seal_export``); stationd stores it in the outbox
and its delivery worker sends it. Wired by :mod:`station.daemon.app` through
``build_app(extra_routes=...)``.

- ``GET /v1/exports/settings`` -> :class:`ExportSettingsOut`
- ``POST /v1/exports`` (:class:`ExportCreate`) -> 201 :class:`ExportOut` (queued), 200 (the
  same export id was queued before: nothing changed), 409 ``export_not_configured`` (no
  endpoint: use the summary), 404 (unknown consultation), 503 (outbox unavailable)
- ``GET /v1/consultations/{cid}/exports`` -> ``{"items": [ExportOut, ...]}``
- ``POST /v1/exports/{export_id}/retry`` -> :class:`ExportOut` (due now; the worker wakes)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from station.core.clock import Clock
from station.core.ports import AuditSink
from station.daemon.api import _bearer, _body, _json, _list_response, _path_id, _store_error
from station.daemon.errors import ApiError
from station.daemon.service import StationService
from station.errors import StationError
from station.export.errors import ExportNotConfigured, OutboxError
from station.export.outbox import OutboxEntry
from station.export.service import ExportService
from station.export.wire import ExportCreate, ExportOut, ExportSettingsOut

__all__ = ["export_routes", "open_exports"]

_log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


async def open_exports(data_dir: Path, clock: Clock, audit: AuditSink) -> ExportService | None:
    """Open the outbox, its key and the export configuration; None (logged) if unusable.

    A broken export must not keep stationd (and the lock) from starting: the wrap-up screen
    then hears ``delivery: unavailable`` and shows the summary.
    """
    try:
        return await asyncio.to_thread(ExportService.open, data_dir, clock=clock, audit=audit)
    except StationError as exc:
        _log.error("care-record export unavailable: %s", exc)
        return None


def export_routes(
    service: StationService, exports: ExportService | None
) -> list[tuple[str, Handler, str]]:
    """The export endpoints as ``(path, handler, method)`` for ``build_app(extra_routes=)``."""

    def staff(request: Request) -> str:
        return service.authenticate(_bearer(request)).staff_id

    def live() -> ExportService:
        if exports is None:
            raise ApiError.unavailable(
                "the export outbox is not available",
                "Forbindelsen til omsorgsjournalen virker ikke lige nu. Kontakt IT.",
            )
        return exports

    async def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        try:
            return await service.db(fn, *args, **kwargs)
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
            raise _store_error(exc) from None

    async def get_settings(request: Request) -> Response:
        staff(request)
        if exports is None:
            return _json(ExportSettingsOut(delivery="unavailable", outbox_public_key=None))
        return _json(
            ExportSettingsOut(
                delivery="fhir" if exports.delivery_enabled else "summary",
                outbox_public_key=exports.public_key,
            )
        )

    async def post_export(request: Request) -> Response:
        staff_id = staff(request)
        body = await _body(request, ExportCreate)
        svc = live()
        await run(service.store.get_consultation, body.consultation_id)
        entry, created = await run(
            svc.enqueue,
            export_id=body.export_id,
            consultation_id=body.consultation_id,
            entry_id=body.entry_id,
            sealed=body.sealed,
            staff_id=staff_id,
        )
        return _json(export_out(entry), 201 if created else 200)

    async def list_exports(request: Request) -> Response:
        staff(request)
        cid = _path_id(request, "cid")
        entries = await run(live().outbox.list_for_consultation, cid)
        return _list_response([export_out(e) for e in entries])

    async def post_retry(request: Request) -> Response:
        staff(request)
        export_id = _path_id(request, "export_id")
        svc = live()
        entry = await run(svc.outbox.retry_now, export_id)
        svc.wake()
        return _json(export_out(entry))

    return [
        ("/v1/exports/settings", get_settings, "GET"),
        ("/v1/exports", post_export, "POST"),
        ("/v1/consultations/{cid}/exports", list_exports, "GET"),
        ("/v1/exports/{export_id}/retry", post_retry, "POST"),
    ]


def export_out(entry: OutboxEntry) -> ExportOut:
    """The API view of an outbox entry (kept here so the UIs' client never loads the outbox)."""
    pending = entry.state.value == "pending"
    return ExportOut(
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
