"""The attended call: who is in front of the camera, the round, connection, controls.

"Forlad rummet" (leave the room) turns the call private: stationd locks, the resident's
controls take over the screen, and this process exits.

When stationd says the GP left (``gp_left``: the GP closed the video page, or the GP's
connection is gone for good) the status says so and what staff can do: the call ends by itself
after the stated time unless the GP comes back, which clears the message again.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Static

from stationapi.client import StationClientError
from tui.i18n import _
from tui.localtime import local
from tui.safe_text import literal
from tui.staff.data import AppointmentView, ResidentView
from tui.staff.labels import quality_label, status_label, type_label
from tui.staff.messages import CallStatus, SessionChanged
from tui.staff.screens.base import StaffScreen
from tui.staff.screens.dialogs import ConfirmDialog
from tui.video import TerminalVideo, terminal_video_enabled

__all__ = ["CallScreen"]


def gp_left_lines(reason: str, ends_in: float | None) -> tuple[str, str]:
    """The headline and the advice when the GP has left (shared with the snapshot tests)."""
    why = (
        _("The doctor closed the video page.")
        if reason == "left"
        else _("The connection to the doctor is lost.")
    )
    if ends_in is None:
        then = _("The call ends by itself unless the doctor comes back.")
    else:
        then = _(
            "The call ends by itself in {seconds} seconds unless the doctor comes back."
        ).format(seconds=max(0, round(ends_in)))
    advice = _("You can end the call now, or phone the clinic if the consultation was not done.")
    return _("The doctor has left the call"), f"{why} {then} {advice}"


class CallScreen(StaffScreen):
    """See the module docs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "step(1)", _("Next resident"), id="call.next"),
        Binding("p", "step(-1)", _("Previous resident"), id="call.previous"),
        Binding("m", "mute", _("Microphone on/off"), id="call.mute"),
        Binding("v", "camera", _("Camera on/off"), id="call.camera"),
        Binding("e", "end", _("End call"), id="call.end"),
        Binding("f", "leave", _("Leave the room"), id="call.leave"),
    ]

    def __init__(self, appointment_id: str, *, admitted: bool = False) -> None:
        super().__init__()
        self.appointment_id = appointment_id
        self.admitted = admitted
        self.appointment: AppointmentView | None = None
        self.muted = False
        self.camera_off = False
        self.connection = ""
        #: (reason, seconds until the call ends) while the GP has left; None otherwise.
        self.gp_left: tuple[str, float | None] | None = None
        #: What the GP says it sends (None: not said yet).
        self.gp_media: tuple[bool, bool] | None = None

    def compose(self) -> ComposeResult:
        """Status, the resident now, the round, the controls."""
        with Vertical(id="call"):
            yield Static("", id="call-title")
            yield Static("", id="call-status")
            yield Static("", id="now-label", classes="field-label")
            yield Static("", id="now")
            yield Static("", id="round")
            if terminal_video_enabled():
                yield TerminalVideo(id="terminal-video")
            with Horizontal(classes="buttons"):
                yield Button(_("Previous"), id="btn-previous")
                yield Button(_("Next"), id="btn-next")
                yield Button(_("Turn the microphone off"), id="btn-mute")
                yield Button(_("Turn the camera off"), id="btn-camera")
                yield Button(_("End call"), id="btn-end", variant="error")
                yield Button(_("Leave the room"), id="btn-leave", variant="warning")
        yield Footer()

    def on_mount(self) -> None:
        """Load the appointment and its round, and the call's state so far."""
        self._draw_status()
        self.load()
        self.load_call()

    @work(group="load-call", exclusive=True, exit_on_error=False)
    async def load_call(self) -> None:
        """What happened before this screen showed (staff back during a private call)."""
        try:
            call = await self.staff_app.client.staff_json("GET", "/v1/call")
        except StationClientError:
            return  # the event stream brings the next change anyway
        gp = call.get("gp")
        if not isinstance(gp, dict):
            return
        if isinstance(gp.get("left"), str):
            ends_in = gp.get("ends_in")
            self.gp_left = (
                gp["left"],
                float(ends_in) if isinstance(ends_in, int | float) else None,
            )
        self._note_media(gp.get("media"))
        self._draw_status()

    def _note_media(self, media: Any) -> None:
        if isinstance(media, dict):
            self.gp_media = (media.get("video") is True, media.get("audio") is True)

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
        title = _("Call — {time} {clinic} ({kind})").format(
            time=f"{local(a.starts_at):%H:%M}",
            clinic=a.clinic_name,
            kind=type_label(a.consultation_type),
        )
        self.query_one("#call-title", Static).update(literal(title, 96, style="bold"))
        self.query_one("#now-label", Static).update(Text(_("In front of the camera now")))
        current = self.current
        now = Text()
        if current is None:
            now.append(_("Nobody (the round is done)"), style="italic")
        else:
            now.append_text(literal(current.name, 60, style="bold"))
            details = [x for x in (current.birth_date, current.room) if x]
            if details:
                now.append("  ")
                now.append_text(literal(" · ".join(details), 30, style="dim"))
        self.query_one("#now", Static).update(now)
        lines = Text()
        for index, r in enumerate(a.residents, start=1):
            marker = "▶ " if current is not None and r.entry_id == current.entry_id else "  "
            lines.append(f"{marker}{index:>2}. ")
            lines.append_text(literal(r.name, 40))
            lines.append(f"  {status_label(r.status)}\n", style="dim")
        self.query_one("#round", Static).update(lines)

    def _draw_status(self) -> None:
        text = Text()
        if self.gp_left is not None:
            headline, advice = gp_left_lines(*self.gp_left)
            text.append(headline, style="bold red")
            text.append("\n" + advice)
        else:
            text.append(
                _("In the call") if self.admitted else _("Waiting for the GP to let you in"),
                style="bold green" if self.admitted else "bold yellow",
            )
        if self.gp_media is not None and self.gp_left is None:
            video, audio = self.gp_media
            if not video and not audio:
                text.append("   " + _("The doctor sends neither picture nor sound"), style="bold")
            elif not video:
                text.append("   " + _("The doctor's camera is off"), style="bold")
        if self.connection:
            text.append("   " + _("Connection: {quality}").format(quality=self.connection))
        if self.muted:
            text.append("   " + _("Microphone off"), style="bold red")
        if self.camera_off:
            text.append("   " + _("Camera off"), style="bold red")
        self.query_one("#call-status", Static).update(text)
        self.query_one("#btn-mute", Button).label = (
            _("Turn the microphone on") if self.muted else _("Turn the microphone off")
        )
        self.query_one("#btn-camera", Button).label = (
            _("Turn the camera on") if self.camera_off else _("Turn the camera off")
        )

    def on_session_changed(self, message: SessionChanged) -> None:
        """Waiting → admitted (the GP let the station in)."""
        self.admitted = message.call_admitted or message.state == "in_call_attended"
        self._draw_status()

    def on_call_status(self, message: CallStatus) -> None:
        """Connection quality and the engine's view of the controls."""
        data: Any = message.data
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
            ends_in = data.get("ends_in")
            self.gp_left = (
                str(data.get("reason", "left")),
                float(ends_in) if isinstance(ends_in, int | float) else None,
            )
            self.connection = ""
        elif status in ("gp_back", "connecting", "connected"):
            self.gp_left = None
        if status == "gp_media":
            self._note_media(data)
        if "muted" in data:
            self.muted = bool(data["muted"])
        if "camera_off" in data:
            self.camera_off = bool(data["camera_off"])
        if status == "resident":
            self.load()
        self._draw_status()

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
                await self.records.client.set_entry_status(
                    current.entry_id, "done" if step > 0 else "waiting"
                )
            await self.records.client.set_entry_status(residents[target].entry_id, "in_call")
        except StationClientError as error:
            self.failed(error)
            return
        await self.staff_app.call_engine("next" if step > 0 else "previous")
        self.load()

    @on(Button.Pressed, "#btn-mute")
    def action_mute(self) -> None:
        """Microphone off or on again."""
        self.muted = not self.muted
        self._draw_status()
        self._control("mute", {"muted": self.muted})

    @on(Button.Pressed, "#btn-camera")
    def action_camera(self) -> None:
        """Camera off or on again."""
        self.camera_off = not self.camera_off
        self._draw_status()
        self._control("camera", {"off": self.camera_off})

    @work(group="control", exit_on_error=False)
    async def _control(self, action: str, body: dict[str, Any]) -> None:
        await self.staff_app.call_engine(action, body)

    @on(Button.Pressed, "#btn-end")
    def action_end(self) -> None:
        """End the call (after a yes)."""
        self._end()

    @work(group="end", exclusive=True, exit_on_error=False)
    async def _end(self) -> None:
        if await self.app.push_screen_wait(ConfirmDialog(_("End the call?"), _("End call"))):
            await self.staff_app.call_engine("end")

    @on(Button.Pressed, "#btn-leave")
    def action_leave(self) -> None:
        """Leave the room: the call goes private and this app exits."""
        self.staff_app.leave_room()
