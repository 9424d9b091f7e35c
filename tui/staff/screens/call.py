"""The attended call: who is in front of the camera, the round, connection, controls.

"Forlad rummet" (leave the room) turns the call private: stationd locks, the resident's
controls take over the screen, and this process exits.

When stationd says the GP left (``gp_left``: the GP closed the video page, or the GP's
connection is gone for good) the status says so and what staff can do: the call ends by itself
after the stated time unless the GP comes back, which clears the message again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.widgets import Button, Footer, Static

from station.i18n import _
from tui.staff.data import AppointmentView, ResidentView
from tui.staff.labels import appointment_heading, quality_label
from tui.staff.messages import LockRequested
from tui.staff.screens.base import StaffScreen, UnlockedSession
from tui.staff.screens.dialogs import ConfirmDialog
from tui.staff.station import StationClientError, gp_media, seconds
from tui.staff.widgets.call_controls import CallControls
from tui.staff.widgets.call_status import CallStatusLine
from tui.staff.widgets.round import RoundPanel
from tui.video import TerminalVideo, terminal_video_enabled, video_rows

__all__ = ["CallScreen"]


#: Next and previous share one place in the footer, so it fits 97 columns.
_STEP = Binding.Group(_("Next/previous"), compact=True)
#: One footer entry for both (the buttons say which is which): the station's 97 columns hold
#: the help key only so.
_MEDIA = Binding.Group(_("Microphone/camera"), compact=True)


class CallScreen(StaffScreen):
    """See the module docs."""

    #: In the kiosk the GP's video window covers this screen's top rows (dialogs over it keep
    #: below: :func:`tui.staff.screens.base.keep_below_video`).
    UNDER_VIDEO: ClassVar[bool] = True

    #: The help F1 shows here (:mod:`tui.staff.help`).
    HELP_TOPIC: ClassVar[str] = "call"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "step(1)", _("Next resident"), id="call.next", group=_STEP),
        Binding("p", "step(-1)", _("Previous resident"), id="call.previous", group=_STEP),
        Binding("m", "mute", _("Microphone on/off"), id="call.mute", group=_MEDIA),
        Binding("v", "camera", _("Camera on/off"), id="call.camera", group=_MEDIA),
        # On the button (and its label); the footer has no room for another key.
        Binding("l", "audio_only", _("Audio only/video"), id="call.audio_only", show=False),
        Binding("e", "end", _("End call"), id="call.end"),
        Binding("f", "leave", _("Leave the room"), id="call.leave"),
    ]

    # The call's state lives here (the screen changes it as stationd's events arrive); the
    # status line and the buttons declare the same names to receive it (data_bind in compose).
    admitted: reactive[bool] = reactive(False, init=False)
    """True once the GP let the station in (else: waiting in the GP's waiting room)."""
    muted: reactive[bool] = reactive(False, init=False)
    """True while the station's microphone is off."""
    camera_off: reactive[bool] = reactive(False, init=False)
    """True while the station's camera is off."""
    connection: reactive[str] = reactive("", init=False)
    """The connection's quality in the catalogue's words ("" while not known)."""
    gp_left: reactive[tuple[str, float | None] | None] = reactive(None, init=False)
    """(why, seconds until the call ends by itself) while the GP has left; None otherwise."""
    gp_media: reactive[tuple[bool, bool] | None] = reactive(None, init=False)
    """What the GP says it sends: (video, audio); None while not said."""
    audio_only: reactive[str | None] = reactive(None, init=False)
    """Why video is paused both ways (``choice``, ``poor_connection``); None with video."""

    def __init__(
        self, session: UnlockedSession, appointment_id: str, *, admitted: bool = False
    ) -> None:
        super().__init__(session)
        self.appointment_id = appointment_id
        self.set_reactive(CallScreen.admitted, admitted)
        self.appointment: AppointmentView | None = None

    def compose(self) -> ComposeResult:
        """Status, the resident now, the round, the controls."""
        with Vertical(id="call"):
            yield Static("", id="call-title")
            yield CallStatusLine("", id="call-status").data_bind(
                CallScreen.admitted,
                CallScreen.muted,
                CallScreen.camera_off,
                CallScreen.connection,
                CallScreen.gp_left,
                CallScreen.gp_media,
                CallScreen.audio_only,
            )
            yield RoundPanel()
            if terminal_video_enabled():
                yield TerminalVideo(id="terminal-video")
            yield CallControls(classes="buttons").data_bind(
                CallScreen.muted, CallScreen.camera_off, CallScreen.audio_only
            )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Load the appointment and its round, and the call's state so far."""
        self._below_video()
        self.load()
        self.load_call()

    def on_resize(self) -> None:
        """The terminal changed size: stay below the video."""
        self._below_video()

    def _below_video(self) -> None:
        # In the kiosk the GP's video covers the terminal's top rows during the call
        # (tui.video.video_rows; systemd/kiosk/labwc/rc.xml): the call's content goes below.
        with contextlib.suppress(NoMatches):
            self.query_one("#call").styles.margin = (video_rows(self.app.size.height), 0, 0, 0)

    @work(group="load-call", exclusive=True, exit_on_error=False)
    async def load_call(self) -> None:
        """What happened before this screen showed (staff back during a private call)."""
        try:
            gp = await self.station.gp_presence()
        except StationClientError:
            return  # the event stream brings the next change anyway
        if gp is None:
            return
        if gp.left is not None:
            self.gp_left = (gp.left, gp.ends_in)
        if gp.media is not None:
            self.gp_media = gp.media

    @work(group="load", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        """Read the round again."""
        try:
            self.appointment = await self.records.appointment(self.appointment_id)
        except StationClientError as error:
            self.failed(error)
            return
        self._draw()

    @property
    def current(self) -> ResidentView | None:
        """Who is in front of the camera: the one in the call, else the first waiting."""
        if self.appointment is None:
            return None
        residents = self.appointment.residents
        for r in residents:
            if r.status == "in_call":
                return r
        return next((r for r in residents if r.status == "waiting"), None)

    def _draw(self) -> None:
        a = self.appointment
        if a is None:
            return
        self.query_one("#call-title", Static).update(
            appointment_heading(_("Call — {time} {clinic} ({kind})"), a)
        )
        panel = self.query_one(RoundPanel)
        current = self.current
        panel.current = current.entry_id if current is not None else None
        panel.residents = a.residents

    def session_moved(self, state: str, appointment_id: str | None, call_admitted: bool) -> None:
        """Waiting → admitted (the GP let the station in)."""
        self.admitted = call_admitted or state == "in_call_attended"

    def show_call_status(self, data: Mapping[str, Any]) -> None:
        """Connection quality, the GP's presence and the engine's view of the controls."""
        status = str(data.get("status", ""))
        if "quality" in data:
            self.connection = quality_label(str(data["quality"]))
        elif "level" in data:
            self.connection = quality_label(str(data["level"]))
        elif status == "reconnecting":
            self.connection = _("Reconnecting…")
        elif status in ("connected", "admitted"):
            self.connection = _("Good")
        elif status == "video_stalled":
            self.connection = _("The picture froze; asking for a new one…")
        elif status == "video_recovered":
            self.connection = _("Good")
        if status == "gp_left":
            self.gp_left = (str(data.get("reason", "left")), seconds(data.get("ends_in")))
            self.connection = ""
        elif status in ("gp_back", "connecting", "connected"):
            self.gp_left = None
        if status == "gp_media":
            self.gp_media = gp_media(data)
        if "muted" in data:
            self.muted = bool(data["muted"])
        if "camera_off" in data:
            self.camera_off = bool(data["camera_off"])
        if "audio_only" in data:
            reason = data.get("audio_only_reason")
            self.audio_only = (
                (reason if reason in ("choice", "poor_connection") else "choice")
                if data["audio_only"]
                else None
            )
        if status == "resident":
            self.load()

    # ------------------------------------------------------------------ actions

    @on(Button.Pressed, "#btn-next")
    def _next(self) -> None:
        self.action_step(1)

    @on(Button.Pressed, "#btn-previous")
    def _previous(self) -> None:
        self.action_step(-1)

    def action_step(self, step: int) -> None:
        """Next (+1) or previous (-1) resident of the round; the GP page follows."""
        self._step(step)

    @work(group="step", exclusive=True, exit_on_error=False)
    async def _step(self, step: int) -> None:
        a, current = self.appointment, self.current
        if a is None:
            return
        residents = list(a.residents)
        index = residents.index(current) if current is not None else len(residents)
        target = index + step
        if not 0 <= target < len(residents):
            self.notify(_("There are no more residents that way."), markup=False)
            return
        try:
            if current is not None:
                await self.station.set_entry_status(
                    current.entry_id, "done" if step > 0 else "waiting"
                )
            await self.station.set_entry_status(residents[target].entry_id, "in_call")
        except StationClientError as error:
            self.failed(error)
            return
        try:
            if step > 0:
                await self.station.next_resident()
            else:
                await self.station.previous_resident()
        except StationClientError as error:
            self.failed(error)
        self.load()

    @on(Button.Pressed, "#btn-mute")
    def action_mute(self) -> None:
        """Microphone off or on again."""
        self.muted = not self.muted
        self._set_muted(self.muted)

    @on(Button.Pressed, "#btn-camera")
    def action_camera(self) -> None:
        """Camera off or on again."""
        self.camera_off = not self.camera_off
        self._set_camera_off(self.camera_off)

    @on(Button.Pressed, "#btn-audio-only")
    def action_audio_only(self) -> None:
        """Audio only by choice, or video back (an automatic audio only ends by itself)."""
        on = self.audio_only != "choice"
        before = self.audio_only
        self.audio_only = "choice" if on else None
        self._set_audio_only(on, before)

    @work(group="audio-only", exclusive=True, exit_on_error=False)
    async def _set_audio_only(self, on: bool, before: str | None) -> None:
        try:
            await self.station.set_audio_only(on)
        except StationClientError as error:
            self.audio_only = before  # nothing changed: the screen says what is
            self.failed(error)

    @work(group="mute", exclusive=True, exit_on_error=False)
    async def _set_muted(self, muted: bool) -> None:
        try:
            await self.station.set_muted(muted)
        except StationClientError as error:
            self.failed(error)

    @work(group="camera", exclusive=True, exit_on_error=False)
    async def _set_camera_off(self, off: bool) -> None:
        try:
            await self.station.set_camera_off(off)
        except StationClientError as error:
            self.failed(error)

    @on(Button.Pressed, "#btn-end")
    def action_end(self) -> None:
        """End the call (after a yes)."""
        self._end()

    @work(group="end", exclusive=True, exit_on_error=False)
    async def _end(self) -> None:
        if not await self.ask(ConfirmDialog(_("End the call?"), _("End call"))):
            return
        try:
            await self.station.end_call()
        except StationClientError as error:
            self.failed(error)

    @on(Button.Pressed, "#btn-leave")
    def action_leave(self) -> None:
        """Leave the room: the call goes private and this app exits."""
        self.post_message(LockRequested("leave"))
