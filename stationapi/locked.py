"""The locked UI's client: only what the lock screen and the resident's controls may call.

    async with LockedClient("/run/kontaktstation/stationd.sock") as station:
        state = await station.state()
        async for event in station.events():
            ...

Everything here is open on stationd without a token: the session state, IT's settings, the
coming consultations (times and clinic names), the hardware checks, the enrollment code, the
event stream, the lock itself (always safe: it can only take access away; the UI supervisor
locks when the staff UI is gone), and the resident's own call controls, which stationd
accepts without a token only while the call is private (``in_call_private``).

There is no unlock, no staff token and no record here: this module imports nothing of the
staff client (:mod:`stationapi.staff`), and an import-linter contract keeps the locked UI and
the supervisor from importing it (the subprocess test in ``tests/tui/test_locked_imports.py``
checks ``sys.modules`` too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from stationapi import models as m
from stationapi._transport import Transport
from stationapi.errors import (
    StationApiError,
    StationClientError,
    StationLocked,
    StationUnavailable,
)
from stationapi.events import ApiEvent

__all__ = [
    "ApiEvent",
    "LockedClient",
    "StationApiError",
    "StationClientError",
    "StationLocked",
    "StationUnavailable",
]


class LockedClient(Transport):
    """stationd's open endpoints (see the module docs). Use as an async context manager."""

    async def state(self) -> m.StateOut:
        """``GET /v1/state``: the session state."""
        return await self._call(m.StateOut, "GET", "/v1/state")

    async def settings(self) -> m.SettingsOut:
        """``GET /v1/settings``: IT's settings for the UIs, e.g. the language."""
        return await self._call(m.SettingsOut, "GET", "/v1/settings")

    async def upcoming(self, limit: int = 10) -> m.UpcomingOut:
        """``GET /v1/upcoming``: the coming consultations (times and clinic names only)."""
        return await self._call(m.UpcomingOut, "GET", "/v1/upcoming", params={"limit": limit})

    async def health(self) -> m.HealthOut:
        """``GET /v1/health``: the hardware checks."""
        return await self._call(m.HealthOut, "GET", "/v1/health")

    async def enrollment(self) -> m.EnrollmentOut:
        """``GET /v1/enrollment``: the code and QR text of an unprovisioned station.

        :class:`StationApiError` 404 once the station is provisioned (or before the hub
        first answered).
        """
        return await self._call(m.EnrollmentOut, "GET", "/v1/enrollment")

    async def lock(self) -> m.LockResponse:
        """``POST /v1/lock``: lock now (a no-op when already locked)."""
        return await self._call(m.LockResponse, "POST", "/v1/lock", body=m.LockRequest())

    def events(self, *, read_timeout: float | None = 45.0) -> AsyncIterator[ApiEvent]:
        """``GET /v1/events``: events until stationd ends the stream (shutdown) or the caller
        stops.

        The first event is ``snapshot`` (the current state). ``read_timeout`` should exceed
        the daemon's heartbeat (15 s): silence longer than that means the daemon is gone,
        and :class:`StationUnavailable` is raised.
        """
        return self._events(read_timeout)

    # ------------------------------------------------------------------ the resident's controls
    # Open without a token only while the call is private; staff use them with their token.

    async def volume(self, direction: m.VolumeDirection) -> m.CallStatusOut:
        """``POST /v1/call/volume``: one step louder (``up``) or softer (``down``)."""
        body = self._body(m.CallVolumeRequest, direction=direction)
        return await self._call(m.CallStatusOut, "POST", "/v1/call/volume", body=body)

    async def mute(self, muted: bool) -> m.CallStatusOut:
        """``POST /v1/call/mute``: the microphone off (True) or on."""
        body = self._body(m.CallMuteRequest, muted=muted)
        return await self._call(m.CallStatusOut, "POST", "/v1/call/mute", body=body)

    async def call_staff(self) -> m.CallStatusOut:
        """``POST /v1/call/call-staff``: the resident asks for staff (the lamp says so)."""
        return await self._call(m.CallStatusOut, "POST", "/v1/call/call-staff")

    async def end_call(self) -> m.CallStatusOut:
        """``POST /v1/call/end``: hang up."""
        return await self._call(m.CallStatusOut, "POST", "/v1/call/end")
