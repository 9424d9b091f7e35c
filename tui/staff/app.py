"""The staff UI: the one process that holds the vault key, and exits on every lock.

``python -m tui.staff`` (the supervisor starts it when a staff member chooses "log in"):

1. :class:`~tui.staff.screens.pin.PinScreen` asks for staff id and PIN and unlocks through
   the port (:mod:`tui.staff.station`): stationd's key hand-over goes straight into one
   :class:`~station.keys.vault.VaultKey`, which the screen hands up (``PinScreen.Unlocked``)
   to :class:`~tui.staff.data.StaffRecords`, its one holder.
2. The app follows stationd's session through its event stream and shows the screen for
   each unlocked state: Today (``staff``), the pre-call check, the attended call, wrap-up.
   Each screen is given the port and the records (:class:`~tui.staff.screens.base.UnlockedSession`)
   and posts a message (:mod:`tui.staff.messages`) for what the app decides: the screen
   that follows, the lock, starting the call.
3. **On lock it exits.** A ``locked`` event, a state that is locked or private, the end of
   the event stream, or any 401 ``locked`` from a request: the keys are zeroed and
   the app exits at once (process exit is the memory guarantee; the supervisor also kills a
   staff UI that lingers, and stationd has already revoked its token).

Exit status (:class:`ExitCode`), for the supervisor: ``0`` staff logged out or left the
room themselves; ``3`` the station locked (button, idle, remote, shutdown); ``4`` the PIN
entry was abandoned (never unlocked); ``5`` stationd could not be reached.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import ClassVar, Final

from textual import events, on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen

from station.core.clock import Clock, SystemClock
from station.i18n import _
from station.keys.vault import VaultKey
from tui.staff.data import AppointmentView, StaffRecords, waiting_resident
from tui.staff.help import topic as help_topic
from tui.staff.labels import refusal_text
from tui.staff.messages import LockedOut, LockRequested, SessionMoved
from tui.staff.screens.base import StaffScreen, UnlockedSession
from tui.staff.screens.call import CallScreen
from tui.staff.screens.gp_link import GpLinkScreen
from tui.staff.screens.help import HelpScreen
from tui.staff.screens.pin import PinScreen
from tui.staff.screens.precheck import PreCheckScreen
from tui.staff.screens.today import TodayScreen
from tui.staff.screens.wrapup import WrapUpScreen
from tui.staff.station import (
    ApiEvent,
    StaffStation,
    StationClientError,
    StationLocked,
)
from tui.stationd import LOCKED_STATES

__all__ = ["ExitCode", "StaffApp"]

#: Staff activity is reported to stationd at most this often (idle lock is stationd's): the
#: lock can come at most this much earlier than the idle timeout after the last key press.
TOUCH_EVERY_SECONDS = 5.0
#: What a person at the station does: keys, clicks and touches (a touch screen sends mouse
#: presses), scrolling and pasting. Never timers, polling or background requests.
_INPUT_EVENTS: Final = (
    events.Key,
    events.MouseDown,
    events.MouseScrollDown,
    events.MouseScrollUp,
    events.Paste,
)


class ExitCode(IntEnum):
    """How the staff UI ended (the supervisor may tell the cases apart)."""

    LOGGED_OUT = 0
    LOCKED = 3
    CANCELLED = 4
    UNAVAILABLE = 5


class StaffApp(App[int]):
    """The staff UI (see the module docs). Build it with a port to stationd; tests pass theirs."""

    CSS_PATH = Path(__file__).parent / "staff.tcss"
    TITLE = "KontaktStation"
    ENABLE_COMMAND_PALETTE = False
    #: No text selection: names and CPR numbers must not be selected and copied (Textual's
    #: selection copies to the terminal's clipboard), nor a triple click highlight the screen.
    ALLOW_SELECT = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+l", "lock", _("Lock"), id="staff.lock", priority=True),
        Binding("ctrl+q", "lock", _("Lock"), id="staff.quit", show=False, priority=True),
        Binding("ctrl+c", "lock", _("Lock"), id="staff.ctrl_c", show=False, priority=True),
        # F1 works everywhere (no field takes it); "?" only where no field is being typed in.
        Binding("f1", "help", _("Help"), id="staff.help", priority=True),
        Binding("question_mark", "help", _("Help"), id="staff.help_key", show=False),
    ]

    def __init__(
        self,
        station: StaffStation,
        *,
        clock: Clock | None = None,
        live_interval: float = 0.5,
        on_lock_out: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.station = station
        self.clock: Clock = clock or SystemClock()
        #: How often the pre-call check refreshes the camera thumbnail and the level meter
        #: (0 disables the live refresh: one reading each, for snapshots).
        self.live_interval = live_interval
        self.records: StaffRecords | None = None
        self.staff_id: str | None = None
        self.exit_code: int | None = None
        self._on_lock_out = on_lock_out
        self._main: StaffScreen | None = None
        self._main_key: tuple[str, str | None] | None = None
        self._last_touch: datetime | None = None

    # ------------------------------------------------------------------ start and unlock

    async def on_unmount(self) -> None:
        """Close the connection to stationd (the keys are zeroed already, or never held)."""
        if self.records is not None:
            self.records.zero()
        await self.station.aclose()

    def on_mount(self) -> None:
        """Start at the PIN entry."""
        self.push_screen(PinScreen(self.station))

    def on_pin_screen_unlocked(self, message: PinScreen.Unlocked) -> None:
        """Unlocked: the vault key goes to the records, its one holder; show the session."""
        if self.exit_code is not None:
            message.vault.zero()
            return
        self.records = StaffRecords(self.station, message.vault, self.clock)
        self.staff_id = message.staff_id
        self._last_touch = self.clock.now()
        self.watch_events()
        self.refresh_state()

    # ------------------------------------------------------------------ the lock

    @property
    def vault(self) -> VaultKey | None:
        """The vault key while unlocked (tests check it is zeroed)."""
        return self.records._vault if self.records is not None else None

    def lock_out(self, code: int = ExitCode.LOCKED) -> None:
        """Zero every key and exit now. Idempotent; the first reason wins."""
        if self.exit_code is not None:
            return
        self.exit_code = int(code)
        if self.records is not None:
            self.records.zero()
        self.exit(int(code))
        if self._on_lock_out is not None:
            self._on_lock_out(int(code))

    def action_help(self) -> None:
        """The help for the screen in front (a dialog's is the screen's under it); F1 again
        closes it."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        for screen in reversed(self.screen_stack):
            key = getattr(screen, "HELP_TOPIC", None)
            if isinstance(key, str):
                self.push_screen(HelpScreen(help_topic(key)))
                return

    def action_lock(self) -> None:
        """Staff lock the station (or, before unlocking, go back to the lock screen)."""
        self.post_message(LockRequested())

    @on(LockRequested)
    def _lock_requested(self, message: LockRequested) -> None:
        if self.records is None:
            self.lock_out(ExitCode.CANCELLED)
            return
        self._send_lock(message.reason)

    @on(LockedOut)
    def _locked_out(self) -> None:
        self.lock_out(ExitCode.LOCKED)

    @work(group="lock", exclusive=True, exit_on_error=False)
    async def _send_lock(self, reason: str) -> None:
        # Keys first: nothing personal survives even if stationd is slow to answer.
        if self.records is not None:
            self.records.zero()
        # stationd locks on its own (idle, token revoked) if this fails; we exit either way.
        with contextlib.suppress(StationClientError):
            await self.station.lock(reason)
        self.lock_out(ExitCode.LOGGED_OUT)

    # ------------------------------------------------------------------ following stationd

    @work(group="events", exclusive=True, exit_on_error=False)
    async def watch_events(self) -> None:
        """Follow stationd's event stream; lock out when it locks or goes away."""
        try:
            async for event in self.station.events():
                if self.exit_code is not None:
                    return
                if _is_lock(event):
                    self.lock_out(ExitCode.LOCKED)
                    return
                if event.kind in ("state", "snapshot", "lagged"):
                    self.refresh_state()
                elif event.kind == "call" and self._main is not None:
                    self._main.show_call_status(dict(event.data))
        except StationClientError:
            self.lock_out(ExitCode.UNAVAILABLE)
            return
        # The stream ended: stationd is shutting down (it locks first).
        self.lock_out(ExitCode.LOCKED)

    @on(SessionMoved)
    def _session_moved(self) -> None:
        self.refresh_state()

    @work(group="state", exclusive=True, exit_on_error=False)
    async def refresh_state(self) -> None:
        """Re-read the session and show its screen."""
        await self._show_current_state()

    async def _show_current_state(self) -> None:
        try:
            state = await self.station.state()
        except StationClientError:
            return  # the event stream notices a dead stationd
        await self.show_state(state.state, state.appointment_id, state.call_admitted)

    async def show_state(
        self, state: str, appointment_id: str | None, call_admitted: bool = False
    ) -> None:
        """Show the screen for an unlocked ``state``; lock out for a locked one."""
        if self.exit_code is not None:
            return
        if state in LOCKED_STATES:
            self.lock_out(ExitCode.LOCKED)
            return
        key = _screen_key(state, appointment_id)
        if key == self._main_key and self._main is not None:
            self._main.session_moved(state, appointment_id, call_admitted)
            return
        screen = self._make_screen(key[0], appointment_id, call_admitted)
        while len(self.screen_stack) > 1 and isinstance(self.screen, ModalScreen):
            await self.pop_screen()
        self._main, self._main_key = screen, key
        await self.switch_screen(screen)

    def _make_screen(
        self, kind: str, appointment_id: str | None, call_admitted: bool
    ) -> StaffScreen:
        assert self.records is not None and self.staff_id is not None
        session = UnlockedSession(self.station, self.records, self.clock, self.staff_id)
        if kind == "precheck" and appointment_id:
            return PreCheckScreen(session, appointment_id, live_interval=self.live_interval)
        if kind == "call" and appointment_id:
            return CallScreen(session, appointment_id, admitted=call_admitted)
        if kind == "wrapup" and appointment_id:
            return WrapUpScreen(session, appointment_id)
        return TodayScreen(session)

    # ------------------------------------------------------------------ the call

    def on_pre_check_screen_check_passed(self, message: PreCheckScreen.CheckPassed) -> None:
        """Staff start the call: done here, as the pre-call check is about to be replaced."""
        self.start_call(message.appointment)

    @work(group="call-start", exclusive=True, exit_on_error=False)
    async def start_call(self, appointment: AppointmentView) -> None:
        """The check passed: the call engine dials (stationd passes the check) with who is
        waiting. Without a call engine the check is passed alone, and staff are told."""
        waiting = [r for r in appointment.residents if r.status in ("waiting", "in_call")]
        try:
            if waiting and waiting[0].status == "waiting":
                await self.station.set_entry_status(waiting[0].entry_id, "in_call")
            started = await self.station.start_call(
                appointment.id, [waiting_resident(r) for r in waiting]
            )
        except StationClientError as error:
            self._refused(error)
            self.refresh_state()
            return
        if started.no_engine is not None:
            self.notify(
                started.no_engine or _("The call engine does not answer. Contact IT."),
                severity="warning",
                markup=False,
                timeout=10,
            )
        # The call screen first: a state change closes modal screens, and the GP's code must
        # stay until staff close it.
        await self._show_current_state()
        if started.no_engine is None and started.gp_url:
            self.push_screen(GpLinkScreen(started.gp_url, started.gp_code, started.gp_code_url))

    def _refused(self, error: StationClientError) -> None:
        if isinstance(error, StationLocked):
            self.lock_out(ExitCode.LOCKED)
            return
        self.notify(refusal_text(error), severity="error", markup=False, timeout=8)

    # ------------------------------------------------------------------ activity

    async def on_event(self, event: events.Event) -> None:
        """A person's input (``_INPUT_EVENTS``) is staff activity for stationd's idle lock."""
        if isinstance(event, _INPUT_EVENTS) and self.records is not None:
            # The station's clock, as stationd's idle lock uses: one notion of time.
            now = self.clock.now()
            last = self._last_touch
            if last is None or not 0 <= (now - last).total_seconds() < TOUCH_EVERY_SECONDS:
                self._last_touch = now
                self._touch()
        await super().on_event(event)

    @work(group="touch", exclusive=True, exit_on_error=False)
    async def _touch(self) -> None:
        try:
            await self.station.touch()
        except StationLocked:
            self.lock_out(ExitCode.LOCKED)
        except StationClientError:
            pass  # a missed touch is harmless: stationd's idle timeout still locks


def _is_lock(event: ApiEvent) -> bool:
    if event.kind in ("locked", "shutdown"):
        return True
    data = event.data
    return bool(data.get("locked")) or data.get("state") in LOCKED_STATES


def _screen_key(state: str, appointment_id: str | None) -> tuple[str, str | None]:
    if state == "pre_call_check":
        return "precheck", appointment_id
    if state in ("waiting_for_gp", "in_call_attended"):
        return "call", appointment_id
    if state == "wrap_up":
        return "wrapup", appointment_id
    return "today", None
