"""The locked UI: the lock screen and, during a private call, the resident's controls.

``kontaktstation ui`` (the supervisor) keeps this app running and drawn in its own terminal
window at all times, so a lock only has to *switch* to it. It never exits on a key: no quit
binding, no command palette, no suspend, no screenshot, no devtools (the environment
variables that would enable them are removed before Textual is imported). It stops when the
supervisor terminates it.

It knows nothing personal: it reads ``/v1/state``, ``/v1/upcoming`` (times and clinic
names), ``/v1/enrollment``, ``/v1/health`` (which part is missing or not working: shown as a
banner in the catalogue's words, re-read on ``health`` and ``hardware`` events) and
``/v1/events`` from stationd, posts the resident's call
controls to ``/v1/call/...``, and asks the supervisor (one line on a Unix socket) to start
the staff UI when someone presses "log in".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import Any, ClassVar, Final

from textual import work
from textual.app import App
from textual.binding import BindingType
from textual.reactive import reactive

from station.core.clock import Clock, SystemClock
from station.i18n import _
from stationapi.locked import ApiEvent, StationClientError
from tui.localtime import local_zone
from tui.locked.link import (
    SUPERVISOR_SOCKET_ENV,
    CallAction,
    CallUnavailable,
    DaemonStation,
    LockedStation,
    LoginRequester,
    SupervisorSocket,
)
from tui.locked.screens import LockScreen, PrivateCallScreen
from tui.locked.widgets import Appointment, Fault, due_soon
from tui.stationd import PRIVATE_STATE
from tui.stationd import socket_path as stationd_socket

__all__ = ["LockedApp", "create_app", "main"]

#: How often the appointment list is re-read even without events (bookings change while
#: the lock screen shows; the daemon sends no event for them).
UPCOMING_REFRESH_SECONDS: Final = 30.0
#: Back-off between attempts to reach stationd's event stream.
RECONNECT_SECONDS: Final = (0.2, 0.5, 1.0, 2.0, 5.0)


class LockedApp(App[None], inherit_bindings=False):
    """The locked UI; build it with :func:`create_app` (CLI) or directly (tests)."""

    CSS_PATH = "locked.tcss"
    TITLE = "KontaktStation"
    ENABLE_COMMAND_PALETTE: ClassVar[bool] = False
    #: No text selection: a pointer's triple click selected every text on the screen (seen in
    #: the booted appliance) and a selection can be copied out of the kiosk.
    ALLOW_SELECT: ClassVar[bool] = False
    #: No app-level keys at all: no ctrl+q, no ctrl+c, no palette.
    BINDINGS: ClassVar[list[BindingType]] = []

    private: reactive[bool] = reactive(False, init=False)
    """True while the station is in a private call (the resident's controls show)."""
    connected: reactive[bool] = reactive(False, init=False)
    """True while stationd's event stream is open."""
    loaded: reactive[bool] = reactive(False, init=False)
    """True once state and appointments were read at least once (tests wait for it)."""
    health_loaded: reactive[bool] = reactive(False, init=False)
    """True once the hardware checks were read at least once (tests wait for it)."""

    def __init__(
        self,
        station: LockedStation,
        *,
        clock: Clock | None = None,
        zone: tzinfo | None = None,
        station_name: str | None = None,
        login: LoginRequester | None = None,
        tick_seconds: float = 1.0,
        allow_quit: bool = False,
    ) -> None:
        super().__init__()
        self.station = station
        self.clock: Clock = clock or SystemClock()
        self.zone = zone or local_zone()
        self.station_name = station_name or _("KontaktStation")
        self.login = login
        self.tick_seconds = tick_seconds
        self.allow_quit = allow_quit
        self.appointments: list[Appointment] = []
        #: The hardware checks that are not ok, as last read.
        self.faults: list[Fault] = []
        self.state: str | None = None
        self.control_log: list[CallAction] = []
        self._reminder_for: Appointment | None = None
        #: stationd said the doctor left the running call (kept while the lock screen shows,
        #: so a call that goes private afterwards says it at once).
        self.gp_left = False
        #: Why the call's video is paused (``choice``, ``poor_connection``), None while it
        #: runs; kept here so a private call that begins during it shows it at once.
        self.audio_only: str | None = None
        self.lock_screen = LockScreen(self.station_name, self.zone)
        self.private_screen = PrivateCallScreen()

    # ------------------------------------------------------------------ life cycle

    def on_mount(self) -> None:
        """Show the lock screen, start the clock and listen to stationd."""
        self.install_screen(self.lock_screen, "lock")
        self.install_screen(self.private_screen, "private")
        self.push_screen("lock")
        self._tick()
        self.set_interval(self.tick_seconds, self._tick, name="clock")
        self.set_interval(UPCOMING_REFRESH_SECONDS, self.load_upcoming, name="upcoming")
        self.set_interval(UPCOMING_REFRESH_SECONDS, self.load_health, name="health")
        self.lock_screen.show_status(_("Connecting to the station…"))
        self.listen()

    async def on_unmount(self) -> None:
        """Close the connection to stationd."""
        await self.station.aclose()

    def _tick(self) -> None:
        now = self.clock.now()
        self.lock_screen.show_time(now)
        soon = due_soon(self.appointments, now)
        if soon is not None and soon != self._reminder_for:
            # The sound hook of the reminder: the terminal bell (the kiosk terminal maps it
            # to the loudspeaker); the list and banner make it visible.
            self.bell()
        self._reminder_for = soon

    # ------------------------------------------------------------------ stationd

    @work(exclusive=True, group="events")
    async def listen(self) -> None:
        """Follow stationd's event stream for ever, reconnecting with back-off."""
        attempt = 0
        while True:
            try:
                async for event in self.station.events():
                    attempt = 0
                    self.connected = True
                    self._on_event(event)
            except StationClientError:
                pass  # the stream broke: shown as disconnected, then reconnected below
            self.connected = False
            self.lock_screen.show_status(_("Connecting to the station…"))
            await asyncio.sleep(RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)])
            attempt += 1

    def _on_event(self, event: ApiEvent) -> None:
        if event.kind in ("snapshot", "state", "locked", "lagged"):
            if event.kind == "lagged":
                self.refresh_state()
            else:
                self._apply_state(event.data)
            self.load_upcoming()
            if event.kind in ("snapshot", "lagged"):
                self.load_health()
        elif event.kind in ("health", "hardware"):
            self.load_health()
        elif event.kind == "call":
            self._apply_call_status(event.data)

    def _apply_state(self, data: Mapping[str, Any]) -> None:
        state = data.get("state")
        if not isinstance(state, str):
            return
        self.state = state
        self.private = state == PRIVATE_STATE
        if not self.private:
            self.lock_screen.show_status("")

    def _apply_call_status(self, data: Mapping[str, Any]) -> None:
        muted = data.get("muted")
        if isinstance(muted, bool):
            self.private_screen.microphone_on = not muted
        audio_only = data.get("audio_only")
        if isinstance(audio_only, bool):
            reason = data.get("audio_only_reason")
            self.audio_only = (
                reason if audio_only and reason in ("choice", "poor_connection") else None
            )
        elif data.get("status") == "ended":
            self.audio_only = None
        self.private_screen.audio_only = self.audio_only
        status = data.get("status")
        if status == "gp_left":
            self.gp_left = True
        elif status in ("gp_back", "connecting", "connected", "ended"):
            self.gp_left = False
        self.private_screen.gp_left = self.gp_left

    @work(exclusive=True, group="state")
    async def refresh_state(self) -> None:
        """Re-read the state (after missed events)."""
        try:
            state = await self.station.state()
        except StationClientError:
            return
        self._apply_state(state.model_dump(mode="json"))

    @work(exclusive=True, group="upcoming")
    async def load_upcoming(self) -> None:
        """Re-read the coming appointments and the enrollment code."""
        try:
            upcoming = await self.station.upcoming(10)
            enrollment = await self.station.enrollment()
        except StationClientError:
            return
        self.appointments = [
            Appointment(item.starts_at, item.ends_at, item.clinic_name) for item in upcoming.items
        ]
        self.lock_screen.show_appointments(self.appointments)
        if enrollment is None:
            self.lock_screen.show_enrollment(None, None)
        else:
            self.lock_screen.show_enrollment(enrollment.code, enrollment.qr_payload)
        self._tick()
        self.loaded = True

    @work(exclusive=True, group="health")
    async def load_health(self) -> None:
        """Re-read the hardware checks; show what is missing or not working."""
        try:
            health = await self.station.health()
        except StationClientError:
            return  # the banner keeps what it last knew; the status line says "connecting"
        self.faults = [Fault(c.name, c.missing) for c in health.checks if not c.ok]
        self.lock_screen.show_faults(self.faults)
        self.health_loaded = True

    def watch_private(self, private: bool) -> None:
        """Switch between the lock screen and the resident's controls."""
        if private:
            self.private_screen.reset()
            self.private_screen.gp_left = self.gp_left
            self.private_screen.audio_only = self.audio_only
            self.switch_screen("private")
        else:
            self.switch_screen("lock")

    # ------------------------------------------------------------------ people

    def on_lock_screen_login_pressed(self, message: LockScreen.LoginPressed) -> None:
        """Ask the supervisor for the staff UI."""
        self.request_login()

    @work(exclusive=True, group="login")
    async def request_login(self) -> None:
        """Deliver the log-in request and say what happens."""
        if self.login is None:
            self.lock_screen.show_status(_("Log-in is not available on this screen."))
            return
        self.lock_screen.show_status(_("Starting the staff screen…"))
        if not await self.login.request_login():
            self.lock_screen.show_status(_("The staff screen could not be started. Try again."))

    def on_private_call_screen_control_pressed(
        self, message: PrivateCallScreen.ControlPressed
    ) -> None:
        """Send the resident's control to the call engine."""
        self.control_log.append(message.action)
        self.send_control(message.action)

    # Not exclusive: a second press (louder, louder) must not cancel the first on its way.
    @work(group="controls")
    async def send_control(self, action: CallAction) -> None:
        """POST one control; reflect the answer on the screen."""
        screen = self.private_screen
        try:
            answer = await self.station.call_control(action)
        except CallUnavailable as exc:
            screen.notice = exc.user_message
            return
        if action is CallAction.MICROPHONE_OFF:
            screen.microphone_on = False
        elif action is CallAction.MICROPHONE_ON:
            screen.microphone_on = True
        muted = answer.get("muted")
        if isinstance(muted, bool):
            screen.microphone_on = not muted
        if action is CallAction.CALL_STAFF:
            screen.notice = _("Staff have been called. Please stay seated.")
        elif action in (CallAction.LOUDER, CallAction.SOFTER):
            screen.notice = _("Louder.") if action is CallAction.LOUDER else _("Softer.")
        elif action is CallAction.END:
            screen.notice = _("Ending the call…")

    # ------------------------------------------------------------------ no way out

    async def action_quit(self) -> None:
        """Quitting is not a thing a person at the station can do (only the supervisor)."""
        if self.allow_quit and not self.private:
            self.exit()

    def action_help_quit(self) -> None:
        """No "press ctrl+q to quit" hint."""

    def action_suspend_process(self) -> None:
        """No ctrl+z suspend."""

    def action_command_palette(self) -> None:
        """No command palette."""

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """No screenshots to disk."""


def create_app(
    socket_path: str | Path,
    *,
    station_name: str | None = None,
    supervisor_socket: str | Path | None = None,
    allow_quit: bool = False,
) -> LockedApp:
    """The app as the supervisor runs it: stationd on ``socket_path``, the real clock."""
    login = SupervisorSocket(supervisor_socket) if supervisor_socket else None
    return LockedApp(
        DaemonStation.connect(socket_path),
        station_name=station_name,
        login=login,
        allow_quit=allow_quit,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tui.locked",
        description="The station's locked UI (started by `kontaktstation ui`).",
    )
    parser.add_argument("--socket", type=Path, help="stationd's API socket")
    parser.add_argument("--station-name", help="name shown at the top of the lock screen")
    parser.add_argument("--supervisor-socket", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--allow-quit", action="store_true", help="development only: ctrl+q quits")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the locked UI in this terminal until terminated."""
    args = _parser().parse_args(argv)
    socket_path = stationd_socket(args.socket)
    supervisor = args.supervisor_socket or os.environ.get(SUPERVISOR_SOCKET_ENV) or None
    name = args.station_name or os.environ.get("KONTAKTSTATION_STATION_NAME") or None
    from tui.station_language import adopt_station_language

    adopt_station_language(socket_path)  # IT's language, before any screen is built
    app = create_app(
        socket_path,
        station_name=name,
        supervisor_socket=supervisor,
        allow_quit=args.allow_quit,
    )
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
