"""The station's time zone, for both UIs.

stationd stores aware UTC times; people at the station read local time. The zone is
``KONTAKTSTATION_TZ`` (a station abroad, or a test), default Europe/Copenhagen, whatever
the operating system says. The staff UI used to fix Europe/Copenhagen and the locked UI to
read the variable: both read it here now, so the two screens can never show one booking at
two different times.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ZONE_ENV", "local", "local_zone"]

#: The station's zone by name (IANA), for a station that is not in Denmark.
ZONE_ENV = "KONTAKTSTATION_TZ"
DEFAULT_ZONE = "Europe/Copenhagen"


def local_zone(name: str | None = None) -> tzinfo:
    """The station's time zone (``KONTAKTSTATION_TZ``, default Europe/Copenhagen)."""
    name = name or os.environ.get(ZONE_ENV) or DEFAULT_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local(moment: datetime) -> datetime:
    """``moment`` in the station's local time (:func:`local_zone`)."""
    return moment.astimezone(local_zone())
