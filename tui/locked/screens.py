"""The locked UI's two screens: the lock screen and the resident's private-call screen.

Attributes down, messages up: the app sets what the screens show; a screen posts a message
(:class:`LockScreen.LoginPressed`, :class:`PrivateCallScreen.ControlPressed`) when a person
presses something, and the app decides what happens.

Both screens drop Textual's default screen bindings (``inherit_bindings=False``): no copy,
no maximise, nothing but moving focus among their own buttons.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Static

from station.i18n import _
from tui.locked.link import CallAction
from tui.locked.widgets import (
    MAX_NAME,
    Appointment,
    AppointmentList,
    Fault,
    FaultBanner,
    QrCode,
    ReminderBanner,
    StationClock,
    due_soon,
)
from tui.safe_text import clean
from tui.video import TerminalVideo, terminal_video_enabled, video_rows

__all__ = ["LockScreen", "PrivateCallScreen"]

_FOCUS_BINDINGS: list[BindingType] = [
    Binding("tab,down,right", "app.focus_next", show=False, id="locked.focus_next"),
    Binding("shift+tab,up,left", "app.focus_previous", show=False, id="locked.focus_previous"),
]


class LockScreen(Screen[None], inherit_bindings=False):
    """Station name, clock, hardware faults, coming appointments (times and clinic),
    reminder, enrollment, and "log in"."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *_FOCUS_BINDINGS,
        Binding("l", "login", show=False, id="locked.login"),
    ]
    AUTO_FOCUS = "#login"

    @dataclass
    class LoginPressed(Message):
        """Someone pressed "log in"."""

    def __init__(self, station_name: str, zone: tzinfo) -> None:
        super().__init__(id="lock-screen")
        self.station_name = station_name
        self.zone = zone
        self._appointments: list[Appointment] = []
        self._now: datetime | None = None
        self._enrollment: tuple[str | None, str | None] = (None, None)
        self._faults: list[Fault] = []
        self._status = ""
        self._composed = False

    def compose(self) -> ComposeResult:
        """The layout (styles in locked.tcss)."""
        with Vertical(id="lock-root"):
            with Horizontal(id="lock-top"):
                yield Static(Text(clean(self.station_name, MAX_NAME)), id="station-name")
                yield StationClock(self.zone, id="clock")
            yield Static(_("Station locked"), id="locked-title")
            yield Static(_("Personal information is hidden."), id="locked-subtitle")
            yield FaultBanner("", id="faults")
            yield ReminderBanner("", id="reminder")
            with Horizontal(id="lock-middle"):
                yield AppointmentList(self.zone, id="appointments")
                yield QrCode("", id="enrollment")
            yield Static("", id="lock-status")
            yield Button(_("Log in"), id="login", variant="primary")

    def on_mount(self) -> None:
        """Draw what the app has set so far."""
        self._composed = True
        self._redraw()

    def on_screen_resume(self) -> None:
        """Shown again (after a private call): redraw."""
        self._redraw()

    def show_time(self, now: datetime) -> None:
        """The clock ticked: redraw the clock and the reminder."""
        self._now = now
        self._redraw()

    def show_appointments(self, appointments: list[Appointment]) -> None:
        """New list of coming appointments from stationd."""
        self._appointments = appointments
        self._redraw()

    def show_enrollment(self, code: str | None, payload: str | None) -> None:
        """Show (or hide) the enrollment code and QR."""
        self._enrollment = (code, payload)
        self._redraw()

    def show_faults(self, faults: list[Fault]) -> None:
        """The hardware checks that are not ok (an empty list hides the banner)."""
        self._faults = faults
        self._redraw()

    def show_status(self, message: str) -> None:
        """A one-line status (connection, log-in feedback)."""
        self._status = message
        self._redraw()

    def _redraw(self) -> None:
        # The app may set things before the screen is composed; drawn at mount then.
        if not self._composed:
            return
        # Children not mounted yet: drawn again on resume and on the next tick.
        with contextlib.suppress(NoMatches):
            self._draw_all()

    def _draw_all(self) -> None:
        now = self._now
        self.query_one(StationClock).now = now
        self.query_one(AppointmentList).show(self._appointments, now)
        soon = due_soon(self._appointments, now) if now is not None else None
        self.query_one(ReminderBanner).show(soon, now, self.zone)
        self.query_one(QrCode).show(*self._enrollment)
        self.query_one(FaultBanner).show(self._faults)
        self.query_one("#lock-status", Static).update(Text(self._status))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """The login button."""
        event.stop()
        if event.button.id == "login":
            self.post_message(self.LoginPressed())

    def action_login(self) -> None:
        """The ``l`` key, same as the button."""
        self.post_message(self.LoginPressed())


#: Below this many rows the private-call controls stand in one row (``-short``).
SHORT_ROWS = 24


class PrivateCallScreen(Screen[None], inherit_bindings=False):
    """The resident's controls during a private call; nothing else is reachable."""

    BINDINGS: ClassVar[list[BindingType]] = list(_FOCUS_BINDINGS)
    AUTO_FOCUS = "#louder"
    #: The end button must be pressed twice within this many seconds (a stray touch must
    #: not hang up on the GP).
    END_CONFIRM_SECONDS: ClassVar[float] = 5.0

    @dataclass
    class ControlPressed(Message):
        """The resident pressed a control."""

        action: CallAction

    microphone_on: reactive[bool] = reactive(True)
    """Whether the microphone is on (set by the app from the call engine's answers)."""
    notice: reactive[str] = reactive("")
    """A short message for the resident (staff called, a control failed)."""
    end_armed: reactive[bool] = reactive(False)
    """True after the first press of "end call", until the second or a timeout."""
    gp_left: reactive[bool] = reactive(False)
    """True while stationd says the doctor has left (the call then ends by itself)."""
    audio_only: reactive[str | None] = reactive(None)
    """Why the video is paused (``choice``, ``poor_connection``), None while it runs: the
    GP's picture above stands still, and the resident is told why."""

    def __init__(self) -> None:
        super().__init__(id="private-screen")
        self._composed = False

    def compose(self) -> ComposeResult:
        """Five large buttons and two lines of text."""
        with Vertical(id="private-root"):
            yield Static(_("Private call with your doctor"), id="private-title")
            yield Static("", id="private-status")
            if terminal_video_enabled():
                yield TerminalVideo(id="terminal-video")
            with Grid(id="controls"):
                yield Button(_("Louder"), id="louder", classes="control")
                yield Button(_("Softer"), id="softer", classes="control")
                yield Button("", id="microphone", classes="control")
                yield Button(_("Call staff"), id="call-staff", classes="control")
                yield Button(_("End the conversation"), id="end", classes="control")

    def on_mount(self) -> None:
        """Draw the initial labels."""
        self._composed = True
        self._fit(self.app.size.height)
        self._draw()

    def on_resize(self, event: events.Resize) -> None:
        """Fit the controls to the terminal (see :data:`SHORT_ROWS`)."""
        self._fit(self.app.size.height)

    def _fit(self, rows: int) -> None:
        # In the kiosk this screen has the whole terminal and the GP's video covers its top
        # rows (tui.video.video_rows; systemd/kiosk/labwc/rc.xml): the controls go below it,
        # 97x10 cells at 1280x720, 146x15 at 1920x1080. There the five buttons stand in one
        # row, each still several cells high and wide (a finger's width); taller terminals
        # (no video above: the demo) get the roomier 2x3 grid.
        covered = video_rows(rows)
        with contextlib.suppress(NoMatches):
            self.query_one("#private-root").styles.margin = (covered, 0, 0, 0)
        self.set_class(rows - covered < SHORT_ROWS, "-short")

    def on_screen_resume(self) -> None:
        """Shown (a private call began): draw the labels."""
        self._draw()

    def reset(self) -> None:
        """A new private call: microphone on, no notice, end not armed, the doctor there."""
        self.microphone_on = True
        self.notice = ""
        self.end_armed = False
        self.gp_left = False
        self.audio_only = None

    def watch_microphone_on(self) -> None:
        """Relabel the microphone button."""
        self._draw()

    def watch_notice(self) -> None:
        """Show the notice."""
        self._draw()

    def watch_end_armed(self) -> None:
        """Relabel the end button."""
        self._draw()

    def watch_gp_left(self) -> None:
        """Say that the doctor left, and what the resident can do (or not)."""
        self._draw()

    def watch_audio_only(self) -> None:
        """Say that the call goes on with sound only, and why."""
        self._draw()

    def _draw(self) -> None:
        if not self._composed:
            return
        # Children not mounted yet: drawn on resume.
        with contextlib.suppress(NoMatches):
            self._draw_all()

    def _draw_all(self) -> None:
        mic = self.query_one("#microphone", Button)
        mic.label = (
            _("Turn the microphone off") if self.microphone_on else _("Turn the microphone on")
        )
        mic.set_class(not self.microphone_on, "-muted")
        end = self.query_one("#end", Button)
        end.label = (
            _("Press again to end the call") if self.end_armed else _("End the conversation")
        )
        end.set_class(self.end_armed, "-armed")
        title = self.query_one("#private-title", Static)
        title.update(
            _("The doctor has left the call")
            if self.gp_left
            else _("Private call with your doctor")
        )
        title.set_class(self.gp_left, "-gp-left")
        if self.gp_left:
            status = Text(
                _("You need not do anything: the call ends by itself and the screen locks."),
                style="bold",
            )
            status.append("\n")
            status.append(_("Press «Call staff» if you need help."))
        else:
            status = Text(
                _("Your microphone is on.") if self.microphone_on else _("Your microphone is off."),
                style="bold",
            )
            if self.audio_only is not None:
                status.append("  ")
                status.append(
                    _("Audio only — poor connection")
                    if self.audio_only == "poor_connection"
                    else _("Audio only"),
                    style="bold reverse",
                )
        if self.notice:
            status.append("\n")
            status.append(self.notice)
        self.query_one("#private-status", Static).update(status)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Translate a press into a control message (end needs a second press)."""
        event.stop()
        button = event.button.id
        if button == "end":
            if not self.end_armed:
                self.end_armed = True
                self.set_timer(self.END_CONFIRM_SECONDS, self._disarm, name="end-confirm")
                return
            self.end_armed = False
            self.post_message(self.ControlPressed(CallAction.END))
            return
        self.end_armed = False
        action = {
            "louder": CallAction.LOUDER,
            "softer": CallAction.SOFTER,
            "call-staff": CallAction.CALL_STAFF,
            "microphone": CallAction.MICROPHONE_OFF
            if self.microphone_on
            else CallAction.MICROPHONE_ON,
        }.get(button or "")
        if action is not None:
            self.post_message(self.ControlPressed(action))

    def _disarm(self) -> None:
        self.end_armed = False
