"""The station's time zone, for both UIs.

stationd stores aware UTC times; people at the station read local time. The zone is
``KONTAKTSTATION_TZ`` (a station abroad, or a test), default Europe/Copenhagen, whatever
the operating system says.
"""

from __future__ import annotations

import os
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["local_zone"]


def local_zone(name: str | None = None) -> tzinfo:
    """The station's time zone (``KONTAKTSTATION_TZ``, default Europe/Copenhagen)."""
    name = name or os.environ.get("KONTAKTSTATION_TZ") or "Europe/Copenhagen"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC
