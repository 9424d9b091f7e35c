"""What the locked UI talks to: stationd (through ``LockedClient``) and the UI supervisor.

The app depends on two small ports, injected into its constructor (harlequin-style):

- :class:`LockedStation`: the open part of stationd's local API the lock screen and the
  private-call screen need (state, upcoming appointments, hardware health, enrollment, the
  event stream, the resident's call controls). :class:`DaemonStation` implements it over
  :class:`stationapi.locked.LockedClient` (httpx over the Unix socket), which has no
  unlock, no records and no staff token; nothing else crosses the process boundary.
- :class:`LoginRequester`: asks ``kontaktstation ui`` (the supervisor) to start the staff UI.
  :class:`SupervisorSocket` sends one line over the supervisor's Unix socket.

Nothing here (or anywhere in ``tui.locked``) imports the vault, the keyring, the records, the
store or cryptography: the locked UI holds no key and sees no personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

from station.i18n import N_
from stationapi import models as m
from stationapi.locked import (
    ApiEvent,
    LockedClient,
    StationApiError,
    StationClientError,
)
from tui.errors import UiError

__all__ = [
    "SUPERVISOR_SOCKET_ENV",
    "CallAction",
    "CallUnavailable",
    "DaemonStation",
    "Enrollment",
    "LockedLinkError",
    "LockedStation",
    "LoginRequester",
    "SupervisorSocket",
]

#: The supervisor exports its control socket to the locked UI under this name.
SUPERVISOR_SOCKET_ENV: Final = "KONTAKTSTATION_SUPERVISOR_SOCKET"
#: The one request the locked UI may make of the supervisor.
LOGIN_REQUEST: Final = b"login\n"


class LockedLinkError(UiError):
    """Base of the locked UI's link errors."""

    default_user_message = N_("The station does not answer. Wait a moment and try again.")


class CallUnavailable(LockedLinkError):
    """A call control could not be delivered (no call engine, no call, daemon refused)."""

    default_user_message = N_("The button does not work right now. Press «Call staff».")


class CallAction(StrEnum):
    """The resident's controls during a private call."""

    LOUDER = "louder"
    SOFTER = "softer"
    MICROPHONE_OFF = "microphone_off"
    MICROPHONE_ON = "microphone_on"
    END = "end"
    CALL_STAFF = "call_staff"


@dataclass(frozen=True, slots=True)
class Enrollment:
    """What an unprovisioned station shows so IT can approve it: a short code and a QR text."""

    code: str
    qr_payload: str


class LockedStation(Protocol):
    """The part of stationd the locked UI uses (all open endpoints, no staff token)."""

    async def state(self) -> m.StateOut:
        """The session state."""
        ...

    async def upcoming(self, limit: int = 10) -> m.UpcomingOut:
        """Coming consultations: times and clinic names only."""
        ...

    async def enrollment(self) -> Enrollment | None:
        """The enrollment code while the station is not provisioned, else None."""
        ...

    async def health(self) -> m.HealthOut:
        """The hardware checks (which part is missing or not working)."""
        ...

    def events(self) -> AsyncIterator[ApiEvent]:
        """The event stream (first event: ``snapshot``)."""
        ...

    async def call_control(self, action: CallAction) -> Mapping[str, Any]:
        """Deliver a resident's control to the call engine; its JSON answer."""
        ...

    async def aclose(self) -> None:
        """Release the connection."""
        ...


class LoginRequester(Protocol):
    """Asks the supervisor to start the staff UI."""

    async def request_login(self) -> bool:
        """True if the request was delivered."""
        ...


def _send(client: LockedClient, action: CallAction) -> Awaitable[m.CallStatusOut]:
    """The client's call for a control: the call engine's, open without a token only while
    the session is ``in_call_private``."""
    match action:
        case CallAction.LOUDER:
            return client.volume("up")
        case CallAction.SOFTER:
            return client.volume("down")
        case CallAction.MICROPHONE_OFF:
            return client.mute(True)
        case CallAction.MICROPHONE_ON:
            return client.mute(False)
        case CallAction.END:
            return client.end_call()
        case CallAction.CALL_STAFF:
            return client.call_staff()


class DaemonStation:
    """:class:`LockedStation` over stationd's Unix socket (``LockedClient``)."""

    def __init__(self, client: LockedClient) -> None:
        self.client = client

    @classmethod
    def connect(cls, socket_path: str | Path, *, timeout: float = 5.0) -> DaemonStation:
        """A link to the stationd listening on ``socket_path``."""
        return cls(LockedClient(socket_path, timeout=timeout))

    async def state(self) -> m.StateOut:
        """The session state."""
        return await self.client.state()

    async def upcoming(self, limit: int = 10) -> m.UpcomingOut:
        """Coming consultations (times and clinic names)."""
        return await self.client.upcoming(limit)

    async def enrollment(self) -> Enrollment | None:
        """``GET /v1/enrollment``: the code and QR text, or None (404: provisioned/unknown)."""
        try:
            info = await self.client.enrollment()
        except StationApiError as exc:
            if exc.status == 404:
                return None
            raise
        if info is None:
            return None
        return Enrollment(code=info.code, qr_payload=info.qr_payload)

    async def health(self) -> m.HealthOut:
        """``GET /v1/health``: names, verdicts and whether a part is missing."""
        return await self.client.health()

    def events(self) -> AsyncIterator[ApiEvent]:
        """The event stream."""
        return self.client.events()

    async def call_control(self, action: CallAction) -> Mapping[str, Any]:
        """POST the control to the call engine's endpoint; :class:`CallUnavailable` if refused."""
        try:
            answer = await _send(self.client, action)
        except StationClientError as exc:
            raise CallUnavailable(f"call control {action.value} not delivered: {exc}") from exc
        return answer.model_dump(mode="json", exclude_unset=True)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self.client.aclose()


class SupervisorSocket:
    """:class:`LoginRequester` over the supervisor's Unix socket (one line, one answer)."""

    def __init__(self, path: str | Path, *, timeout: float = 20.0) -> None:
        # The supervisor answers once the staff UI has drawn (its draw timeout is 10 s, and a
        # Pi takes seconds to start Textual): a short timeout here said "could not be started"
        # about a staff screen that was about to appear.
        self.path = Path(path)
        self.timeout = timeout

    async def request_login(self) -> bool:
        """Send ``login``; True when the supervisor answered ``ok`` or ``busy`` (a staff UI is
        already starting: a second press is not a failure)."""
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_unix_connection(str(self.path))
                writer.write(LOGIN_REQUEST)
                await writer.drain()
                answer = await reader.readline()
        except (OSError, TimeoutError):
            return False
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        return answer.strip() in (b"ok", b"busy")
