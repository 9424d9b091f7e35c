"""The care-record export as stationd opens it (its endpoints: ``station.daemon.routes.export``).

A broken export must not keep stationd (and the lock) from starting: :func:`open_exports`
logs and answers None, and the wrap-up screen then hears ``delivery: unavailable`` and shows
the plain-text summary.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from station.core.clock import Clock
from station.core.ports import AuditSink
from station.errors import StationError
from station.export.service import ExportService

__all__ = ["open_exports"]

_log = logging.getLogger(__name__)


async def open_exports(data_dir: Path, clock: Clock, audit: AuditSink) -> ExportService | None:
    """Open the outbox, its key and the export configuration; None (logged) if unusable."""
    try:
        return await asyncio.to_thread(ExportService.open, data_dir, clock=clock, audit=audit)
    except StationError as exc:
        _log.error("care-record export unavailable: %s", exc)
        return None
