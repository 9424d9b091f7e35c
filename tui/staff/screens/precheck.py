"""The pre-call check: camera picture, microphone level, test tone, network and TURN.

Each check says pass or fail, and on a failure what to do, in Danish (stationd's hints).
"Start call" asks the app to start the call (:class:`PreCheckScreen.CheckPassed`: the call
engine dials with who is waiting, and this screen is replaced meanwhile); Escape calls the
check off.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Footer, Static

from station.i18n import _
from tui.staff.data import AppointmentView
from tui.staff.labels import appointment_heading, check_label
from tui.staff.messages import SessionMoved
from tui.staff.screens.base import StaffScreen, UnlockedSession
from tui.staff.screens.dialogs import ConfirmDialog
from tui.staff.station import StationApiError, StationClientError, UnreadableAnswer
from tui.staff.widgets.check_list import CheckList
from tui.staff.widgets.meter import LevelMeter
from tui.staff.widgets.preview import CameraPreview

__all__ = ["PreCheckScreen"]

#: Below this RMS level the microphone hears nothing.
SILENT_DBFS = -70.0
#: "Start call" pressed while the appointment is still loading waits this long for it.
LOAD_WAIT_SECONDS = 10.0


class PreCheckScreen(StaffScreen):
    """See the module docs."""

    #: The help F1 shows here (:mod:`tui.staff.help`).
    HELP_TOPIC: ClassVar[str] = "precheck"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s,f2", "start_call", _("Start call"), id="precheck.start"),
        Binding("t", "tone", _("Test tone"), id="precheck.tone"),
        Binding("f5", "recheck", _("Check again"), id="precheck.recheck"),
        Binding("escape", "cancel", _("Call off"), id="precheck.cancel"),
    ]

    @dataclass
    class CheckPassed(Message):
        """Staff start the call for ``appointment`` (after a yes, if a check failed)."""

        appointment: AppointmentView

    def __init__(
        self, session: UnlockedSession, appointment_id: str, *, live_interval: float = 0.5
    ) -> None:
        super().__init__(session)
        self.appointment_id = appointment_id
        #: Seconds between camera pictures and level readings (0: one of each, for snapshots).
        self.live_interval = live_interval
        self.appointment: AppointmentView | None = None
        #: Set when the appointment's load has finished (loaded or failed).
        self._loaded = asyncio.Event()
        #: name -> (passed, what to do): None while not checked yet.
        self.results: dict[str, tuple[bool | None, str]] = {
            "camera": (None, ""),
            "microphone": (None, ""),
            "loudspeaker": (None, ""),
            "network": (None, ""),
        }

    def compose(self) -> ComposeResult:
        """Title; preview beside the checks; buttons."""
        with Vertical(id="precheck"):
            yield Static("", id="precheck-title")
            with Horizontal(id="precheck-body"):
                yield CameraPreview(id="preview")
                with VerticalScroll(id="checks"):
                    yield CheckList(id="check-list")
                    yield Static(_("Microphone level"), markup=False, classes="field-label")
                    yield LevelMeter(id="meter")
                    yield Static(
                        _("Press T for a test tone, and listen for it."),
                        markup=False,
                        classes="dialog-help",
                    )
            with Horizontal(classes="buttons"):
                yield Button(_("Start call"), id="btn-start", variant="primary")
                yield Button(_("Test tone"), id="btn-tone")
                yield Button(_("Call off"), id="btn-cancel", variant="warning")
        yield Footer()

    def on_mount(self) -> None:
        """Load the appointment and run every check; start the live picture and meter."""
        self.query_one(CameraPreview).placeholder = _("Waiting for the camera…")
        self._render_checks()
        self._load()
        self._health()
        self._network()
        self._live_camera()
        self._live_microphone()

    # ------------------------------------------------------------------ checks

    def _set(self, name: str, passed: bool | None, hint: str = "") -> None:
        self.results[name] = (passed, hint)
        self._render_checks()

    def _render_checks(self) -> None:
        self.query_one(CheckList).results = dict(self.results)

    @work(group="load", exclusive=True, exit_on_error=False)
    async def _load(self) -> None:
        try:
            self.appointment = await self.records.appointment(self.appointment_id)
        except StationClientError as error:
            self.failed(error)
            return
        finally:
            self._loaded.set()
        a = self.appointment
        self.query_one("#precheck-title", Static).update(
            appointment_heading(_("Pre-call check — {time} {clinic} ({kind})"), a)
        )

    @work(group="health", exclusive=True, exit_on_error=False)
    async def _health(self) -> None:
        try:
            health = await self.station.health()
        except StationClientError as error:
            self.failed(error)
            return
        for check in health.checks:
            if check.name in ("camera", "microphone"):
                # The live picture and meter below decide these; a failure here still counts.
                if not check.ok:
                    self._set(check.name, False, check.hint)
            elif check.name not in ("led", "speech"):
                # The lamp and the reminders' voice do not decide a call.
                self._set(check.name, check.ok, check.hint)

    @work(group="network", exclusive=True, exit_on_error=False)
    async def _network(self) -> None:
        try:
            checks = await self.station.network_checks()
        except StationClientError as error:
            self._set("network", False, error.user_message or "")
            if not isinstance(error, StationApiError) or error.status == 401:
                self.failed(error)
            return
        self.results.pop("network", None)
        check_list = self.query_one(CheckList)
        check_list.values = {c.name: c.value for c in checks if c.value}
        check_list.details = {c.name: c.paths for c in checks if c.paths}
        for check in checks:
            self._set(check.name, check.ok, check.hint)

    @work(group="camera", exclusive=True, exit_on_error=False)
    async def _live_camera(self) -> None:
        preview = self.query_one(CameraPreview)
        width, height = preview.size.width or 64, (preview.size.height or 24) * 2
        while True:
            try:
                preview.frame = await self.station.camera_thumbnail(
                    min(width, 160), min(height, 160)
                )
                if self.results.get("camera", (None, ""))[0] is not True:
                    self._set("camera", True)
            except StationClientError as error:
                if not isinstance(error, StationApiError) or error.status == 401:
                    self.failed(error)
                    return
                self._set("camera", False, error.user_message or "")
            except UnreadableAnswer:
                self._set("camera", False, _("The camera sent a picture that cannot be shown."))
            if self.live_interval <= 0:
                return
            await asyncio.sleep(self.live_interval)

    @work(group="microphone", exclusive=True, exit_on_error=False)
    async def _live_microphone(self) -> None:
        meter = self.query_one(LevelMeter)
        while True:
            try:
                level = await self.station.microphone_level()
                meter.level = level
                heard = level > SILENT_DBFS
                if self.results.get("microphone", (None, ""))[0] is not heard:
                    self._set(
                        "microphone",
                        heard,
                        "" if heard else _("The microphone hears nothing. Is it muted?"),
                    )
            except StationClientError as error:
                if not isinstance(error, StationApiError) or error.status == 401:
                    self.failed(error)
                    return
                self._set("microphone", False, error.user_message or "")
            except UnreadableAnswer:
                self._set("microphone", False, "")
            if self.live_interval <= 0:
                return
            await asyncio.sleep(self.live_interval)

    # ------------------------------------------------------------------ actions

    @on(Button.Pressed, "#btn-tone")
    def action_tone(self) -> None:
        """Play a short test tone on the loudspeaker."""
        self._tone()

    @work(group="tone", exclusive=True, exit_on_error=False)
    async def _tone(self) -> None:
        try:
            await self.station.test_tone()
        except StationClientError as error:
            self._set("loudspeaker", False, error.user_message or "")
            self.failed(error)
            return
        self.notify(_("Playing a test tone. Did you hear it?"), markup=False, timeout=3)

    def action_recheck(self) -> None:
        """Run the checks again."""
        self._health()
        self._network()

    @on(Button.Pressed, "#btn-start")
    def action_start_call(self) -> None:
        """Pass the check and dial (asks first if a check failed)."""
        self._start()

    @work(group="session", exclusive=True, exit_on_error=False)
    async def _start(self) -> None:
        failed = [check_label(n) for n, (ok, _hint) in self.results.items() if ok is False]
        if failed:
            question = _("These checks failed: {names}. Start the call anyway?").format(
                names=", ".join(failed)
            )
            if not await self.ask(ConfirmDialog(question, _("Start anyway"))):
                return
        if self.appointment is None:
            # Pressed before the appointment arrived from stationd: wait for it rather than
            # drop the key press (a care worker would press again, or give up).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LOAD_WAIT_SECONDS):
                    await self._loaded.wait()
        if self.appointment is None:
            self.notify(
                _("The appointment could not be loaded. Try again."),
                severity="warning",
                markup=False,
            )
            return
        self.post_message(self.CheckPassed(self.appointment))

    @on(Button.Pressed, "#btn-cancel")
    def action_cancel(self) -> None:
        """Call the check off: back to Today."""
        self._cancel()

    @work(group="session", exclusive=True, exit_on_error=False)
    async def _cancel(self) -> None:
        try:
            await self.station.cancel_check("staff_cancelled")
        except StationClientError as error:
            self.failed(error)
            return
        self.post_message(SessionMoved())
