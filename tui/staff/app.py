"""The staff UI: the one process that holds the vault key, and exits on every lock.

``python -m tui.staff`` (the supervisor starts it when a staff member chooses "log in"):

1. :class:`~tui.staff.screens.pin.PinScreen` asks for staff id and PIN; ``POST /v1/unlock``
   returns the staff token and the vault key (stationd's key hand-over), which goes straight
   into one :class:`~station.keys.vault.VaultKey` held by :class:`~tui.staff.data.StaffRecords`.
2. The app follows stationd's session through its event stream and shows the screen for
   each unlocked state: Today (``staff``), the pre-call check, the attended call, wrap-up.
3. **On lock it exits.** A ``locked`` event, a state that is locked or private, the end of
   the event stream, or any 401 "Stationen er låst" from a request: the keys are zeroed and
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
from typing import Any, ClassVar, Final

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen

from station.core.clock import Clock, SystemClock
from station.keys.vault import VaultKey
from stationapi.client import (
    ApiEvent,
    StationApiError,
    StationClientError,
    StationLocked,
)
from tui.i18n import _
from tui.safe_text import clean
from tui.staff.client import StaffClient
from tui.staff.data import AppointmentView, ResidentView, StaffRecords
from tui.staff.messages import CallStatus, SessionChanged
from tui.stationd import LOCKED_STATES

__all__ = ["CALL_ENDPOINTS", "ExitCode", "StaffApp", "waiting_resident"]

#: The call engine's endpoints on stationd (``station.daemon.call_api``).
CALL_ENDPOINTS: Final = {
    "start": "/v1/call/start",
    "next": "/v1/call/next",
    "previous": "/v1/call/previous",
    "mute": "/v1/call/mute",
    "camera": "/v1/call/camera",
    "end": "/v1/call/end",
}
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
    """The staff UI (see the module docs). Build it with a client; tests pass their own."""

    CSS_PATH = Path(__file__).parent / "staff.tcss"
    TITLE = "KontaktStation"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+l", "lock", _("Lock"), id="staff.lock", priority=True),
        Binding("ctrl+q", "lock", _("Lock"), id="staff.quit", show=False, priority=True),
        Binding("ctrl+c", "lock", _("Lock"), id="staff.ctrl_c", show=False, priority=True),
    ]

    def __init__(
        self,
        client: StaffClient,
        *,
        clock: Clock | None = None,
        live_interval: float = 0.5,
        on_lock_out: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.clock: Clock = clock or SystemClock()
        #: How often the pre-call check refreshes the camera thumbnail and the level meter
        #: (0 disables the live refresh: one reading each, for snapshots).
        self.live_interval = live_interval
        self.records: StaffRecords | None = None
        self.staff_id: str | None = None
        self.exit_code: int | None = None
        self._on_lock_out = on_lock_out
        self._main: Screen[Any] | None = None
        self._main_key: tuple[str, str | None] | None = None
        self._last_touch: datetime | None = None

    # ------------------------------------------------------------------ start and unlock

    async def on_unmount(self) -> None:
        """Close the connection to stationd (the keys are zeroed already, or never held)."""
        if self.records is not None:
            self.records.zero()
        await self.client.aclose()

    def on_mount(self) -> None:
        """Start at the PIN entry."""
        from tui.staff.screens.pin import PinScreen

        self.push_screen(PinScreen())

    async def unlock(self, staff_id: str, pin: str) -> None:
        """Unlock through stationd; take the vault key; show the session's screen.

        Raises the client's errors (the PIN screen shows them).
        """
        result = await self.client.unlock(staff_id, pin)
        # The key goes into its one holder at once; the response object is dropped.
        vault = VaultKey(result.vault_key)
        del result
        self.records = StaffRecords(self.client, vault, self.clock)
        self.staff_id = staff_id
        self._last_touch = self.clock.now()
        self.watch_events()
        # On the app, not in the caller's worker: the PIN screen is about to be replaced.
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

    def action_lock(self) -> None:
        """Staff lock the station (or, before unlocking, go back to the lock screen)."""
        if self.records is None:
            self.lock_out(ExitCode.CANCELLED)
            return
        self._send_lock("staff_action")

    def leave_room(self) -> None:
        """ "Forlad rummet": the call turns private and this process exits."""
        self._send_lock("leave")

    @work(group="lock", exclusive=True, exit_on_error=False)
    async def _send_lock(self, reason: str) -> None:
        # Keys first: nothing personal survives even if stationd is slow to answer.
        if self.records is not None:
            self.records.zero()
        # stationd locks on its own (idle, token revoked) if this fails; we exit either way.
        with contextlib.suppress(StationClientError):
            await self.client.lock(reason)
        self.lock_out(ExitCode.LOGGED_OUT)

    # ------------------------------------------------------------------ following stationd

    @work(group="events", exclusive=True, exit_on_error=False)
    async def watch_events(self) -> None:
        """Follow stationd's event stream; lock out when it locks or goes away."""
        try:
            async for event in self.client.events():
                if self.exit_code is not None:
                    return
                if _is_lock(event):
                    self.lock_out(ExitCode.LOCKED)
                    return
                if event.kind in ("state", "snapshot", "lagged"):
                    self.refresh_state()
                elif event.kind == "call":
                    self.screen.post_message(CallStatus(dict(event.data)))
        except StationClientError:
            self.lock_out(ExitCode.UNAVAILABLE)
            return
        # The stream ended: stationd is shutting down (it locks first).
        self.lock_out(ExitCode.LOCKED)

    @work(group="state", exclusive=True, exit_on_error=False)
    async def refresh_state(self) -> None:
        """Re-read the session and show its screen."""
        try:
            state = await self.client.state()
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
            self._main.post_message(SessionChanged(state, appointment_id, call_admitted))
            return
        screen = self._make_screen(key[0], appointment_id, call_admitted)
        while len(self.screen_stack) > 1 and isinstance(self.screen, ModalScreen):
            await self.pop_screen()
        self._main, self._main_key = screen, key
        await self.switch_screen(screen)

    def _make_screen(
        self, kind: str, appointment_id: str | None, call_admitted: bool
    ) -> Screen[Any]:
        from tui.staff.screens.call import CallScreen
        from tui.staff.screens.precheck import PreCheckScreen
        from tui.staff.screens.today import TodayScreen
        from tui.staff.screens.wrapup import WrapUpScreen

        if kind == "precheck" and appointment_id:
            return PreCheckScreen(appointment_id)
        if kind == "call" and appointment_id:
            return CallScreen(appointment_id, admitted=call_admitted)
        if kind == "wrapup" and appointment_id:
            return WrapUpScreen(appointment_id)
        return TodayScreen()

    # ------------------------------------------------------------------ the call

    @work(group="call-start", exclusive=True, exit_on_error=False)
    async def start_call(self, appointment: AppointmentView) -> None:
        """The check passed: the call engine dials (stationd passes the check) with who is
        waiting. Without a call engine the check is passed alone, and staff are told."""
        from tui.staff.screens.base import handle_error

        waiting = [r for r in appointment.residents if r.status in ("waiting", "in_call")]
        body = {
            "consultation_id": appointment.id,
            "residents": [waiting_resident(r) for r in waiting],
        }
        try:
            if waiting and waiting[0].status == "waiting":
                await self.client.set_entry_status(waiting[0].entry_id, "in_call")
            try:
                answer = await self.client.staff_json("POST", CALL_ENDPOINTS["start"], body=body)
            except StationApiError as error:
                if error.status not in (404, 405, 503):
                    raise
                self.notify(
                    error.user_message or _("The call engine does not answer. Contact IT."),
                    severity="warning",
                    markup=False,
                    timeout=10,
                )
                await self.client.check_passed()
            else:
                gp_url = answer.get("gp_url")
                if isinstance(gp_url, str) and gp_url:
                    self.notify(
                        _("The GP's link (send it to the GP): {url}").format(url=gp_url),
                        markup=False,
                        timeout=30,
                    )
        except StationClientError as error:
            handle_error(self.screen, error)
        self.refresh_state()

    async def call_engine(self, action: str, body: dict[str, Any] | None = None) -> bool:
        """POST to the call engine (``CALL_ENDPOINTS``); False when it refused or is absent."""
        from tui.staff.screens.base import handle_error

        try:
            await self.client.staff_json("POST", CALL_ENDPOINTS[action], body=body or {})
        except StationClientError as error:
            handle_error(self.screen, error)
            return False
        return True

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
            await self.client.touch()
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


def waiting_resident(resident: ResidentView) -> dict[str, Any]:
    """What the GP's waiting room shows of one resident (the call engine's
    ``WaitingResident``): name, birth date, room, reason."""
    # Cut to the waiting room's limits and controls made visible, as on this screen: a
    # stored value the domain would refuse today still reaches the GP readable and harmless.
    body: dict[str, Any] = {"display_name": clean(resident.name, 120) or "?"}
    with contextlib.suppress(ValueError):
        body["birth_date"] = datetime.strptime(resident.birth_date, "%d-%m-%Y").date().isoformat()
    if resident.room:
        body["room"] = clean(resident.room, 40)
    if resident.reason:
        body["reason"] = clean(resident.reason, 500, keep_newlines=True)
    return body
