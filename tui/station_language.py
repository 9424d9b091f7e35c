"""The UIs' language from the station: ``GET /v1/settings`` (IT's signed configuration).

Both Textual apps call :func:`adopt_station_language` at start, before they build a screen
(their texts are translated as the widgets are made). ``KONTAKTSTATION_LANG`` still wins, for
development; a stationd that does not answer leaves the default (Danish).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from station.i18n import LANGUAGES, set_language
from stationapi.locked import LockedClient

__all__ = ["LANGUAGE_ENV", "adopt_station_language"]

_log = logging.getLogger(__name__)

#: The development override (see station.i18n).
LANGUAGE_ENV = "KONTAKTSTATION_LANG"


async def _station_language(socket_path: str | Path, seconds: float) -> str:
    client = LockedClient(socket_path, timeout=seconds)
    try:
        return (await client.settings()).language
    finally:
        await client.aclose()


def adopt_station_language(socket_path: str | Path, *, timeout: float = 3.0) -> str | None:
    """Set this process's language from stationd; the language set, or None if left alone.

    Call it before the app runs (it runs its own short event loop).
    """
    if os.environ.get(LANGUAGE_ENV, "").strip():
        return None
    try:
        language = asyncio.run(_station_language(socket_path, timeout))
    except Exception as exc:  # the UI must start regardless; Danish is the default
        _log.warning("station language unavailable: %s", type(exc).__name__)
        return None
    if language not in LANGUAGES:
        return None
    set_language(language)
    return language
