"""Today: the day's appointments and rounds, and the queue of the one selected.

Keyboard first (every action has a key, shown in the footer), mouse and touch too (click a
row, the buttons). Names and notes are shown literally (:mod:`tui.safe_text`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Static

from station.core.model import QueueEntryStatus
from station.i18n import _
from tui.localtime import local
from tui.safe_text import literal
from tui.staff.data import AppointmentView, MissedView, ResidentView, UndocumentedView
from tui.staff.messages import LockRequested, SessionMoved
from tui.staff.screens.base import StaffScreen, UnlockedSession
from tui.staff.screens.booking import AppointmentDialog
from tui.staff.screens.dialogs import ConfirmDialog
from tui.staff.screens.resident import ResidentDetail, ResidentDialog
from tui.staff.station import StationClientError
from tui.staff.widgets.appointments import AppointmentTable
from tui.staff.widgets.banner import MissedNotice, UndocumentedReminder, WrapUpReminder
from tui.staff.widgets.queue import QueueTable

__all__ = ["TodayScreen"]


#: Up and down share one place in the footer ("⇧↑⇧↓ Flyt"): the footer fits 97 columns.
_MOVE = Binding.Group(_("Move"), compact=True)


class TodayScreen(StaffScreen):
    """The day's appointments (top) and the selected one's queue (bottom)."""

    #: The help F1 shows here (:mod:`tui.staff.help`).
    HELP_TOPIC: ClassVar[str] = "today"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "new_appointment", _("New appointment"), id="today.new_appointment"),
        Binding("r", "add_resident", _("Add resident"), id="today.add_resident"),
        Binding("c", "begin_check", _("Start call"), id="today.begin_check"),
        Binding(
            "shift+up", "move(-1)", _("Move up"), id="today.move_up", group=_MOVE, key_display="⇧↑"
        ),
        Binding(
            "shift+down",
            "move(1)",
            _("Move down"),
            id="today.move_down",
            group=_MOVE,
            key_display="⇧↓",
        ),
        # Not in the footer (the station's 97 columns hold no more): F1's help names it.
        Binding("s", "skip", _("Skip"), id="today.skip", show=False),
        Binding("delete,x", "remove", _("Remove"), id="today.remove", key_display="x"),
        Binding("w", "wrap_up", _("Write note"), id="today.wrap_up"),
        Binding("f5", "reload", _("Refresh"), id="today.reload", show=False),
    ]

    def __init__(self, session: UnlockedSession) -> None:
        super().__init__(session)
        self.appointments: list[AppointmentView] = []
        self.pending_wrap_ups: list[str] = []
        #: Consultations whose call ended without a note (any day), shown at every log-in.
        self.undocumented: list[UndocumentedView] = []
        #: Booked slots that passed without a call, shown once: at this log-in (issue 17).
        self.missed: list[MissedView] = []
        self._selected: str | None = None

    def compose(self) -> ComposeResult:
        """Heading, the day's appointments, the queue, buttons, footer."""
        with Vertical(id="today"):
            yield Static("", id="today-title")
            yield WrapUpReminder("", id="wrap-up-banner")
            yield MissedNotice("", id="missed-banner")
            yield UndocumentedReminder("", id="undocumented-banner")
            yield AppointmentTable(id="appointments")
            yield Static("", id="queue-title")
            yield QueueTable(id="queue")
            with Horizontal(id="today-buttons", classes="buttons"):
                yield Button(_("New appointment"), id="btn-appointment")
                yield Button(_("Add resident"), id="btn-resident")
                yield Button(_("Start call"), id="btn-call", variant="primary")
                yield Button(_("Lock"), id="btn-lock", variant="warning")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """The date in the title; then the day's records."""
        now = local(self.session.clock.now())
        title = _("Today's appointments — {day}").format(day=now.strftime("%d-%m-%Y"))
        self.query_one("#today-title", Static).update(Text(title, style="bold"))
        self.reload()
        self.load_missed()

    @work(exclusive=True, group="missed", exit_on_error=False)
    async def load_missed(self) -> None:
        """The slots missed since anyone last logged in: shown for this log-in, then marked
        seen (stationd keeps counting them for IT)."""
        try:
            missed = await self.records.missed()
        except StationClientError as error:
            self.failed(error)
            return
        self.missed = missed
        self.query_one(MissedNotice).show(missed)
        if missed:
            try:
                await self.records.acknowledge_missed(missed)
            except StationClientError as error:
                self.failed(error)

    # ------------------------------------------------------------------ loading

    @work(exclusive=True, group="load", exit_on_error=False)
    async def reload(self, select: str | None = None, entry: str | None = None) -> None:
        """Read the day again (after every change) and redraw."""
        try:
            appointments = await self.records.today()
            state = await self.station.state()
            missing = await self.records.undocumented()
        except StationClientError as error:
            self.failed(error)
            return
        self.appointments = appointments
        self.pending_wrap_ups = list(state.pending_wrap_ups)
        self.undocumented = missing
        self.query_one(UndocumentedReminder).show(missing)
        self.show(select or self._selected, entry)

    def show(self, select: str | None = None, entry: str | None = None) -> None:
        """Redraw both tables and the reminder from :attr:`appointments`."""
        self._selected = self.query_one(AppointmentTable).show(self.appointments, select)
        self._show_queue(entry)
        pending = [a for a in self.appointments if a.id in self.pending_wrap_ups]
        self.query_one(WrapUpReminder).show(pending, len(self.pending_wrap_ups))

    @property
    def selected(self) -> AppointmentView | None:
        """The appointment under the cursor."""
        for a in self.appointments:
            if a.id == self._selected:
                return a
        return None

    @property
    def selected_resident(self) -> ResidentView | None:
        """The resident under the queue's cursor."""
        return self.query_one(QueueTable).resident(self.selected)

    def _show_queue(self, entry: str | None = None) -> None:
        appointment = self.selected
        self.query_one(QueueTable).show(appointment, entry)
        title = self.query_one("#queue-title", Static)
        if appointment is None:
            title.update(Text(_("No appointments today. Press A to book one."), style="italic"))
            return
        kind = _("Round") if appointment.is_round else _("Queue")
        title.update(
            literal(f"{kind}: {local(appointment.starts_at):%H:%M} {appointment.clinic_name}", 90)
        )

    @on(DataTable.RowHighlighted, "#appointments")
    def _appointment_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key != self._selected:
            self._selected = key
            self._show_queue()

    @on(DataTable.RowSelected, "#queue")
    def _resident_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self._open_resident(event.row_key.value)

    @on(DataTable.RowSelected, "#appointments")
    def _appointment_selected(self) -> None:
        self.query_one("#queue", DataTable).focus()

    @work(exclusive=True, group="open", exit_on_error=False)
    async def _open_resident(self, entry_id: str) -> None:
        try:
            resident = await self.records.open_resident(entry_id)
        except StationClientError as error:
            self.failed(error)
            return
        await self.ask(ResidentDetail(resident))

    def session_moved(self, state: str, appointment_id: str | None, call_admitted: bool) -> None:
        """Still on Today (e.g. a wrap-up finished): refresh."""
        self.reload()

    # ------------------------------------------------------------------ buttons

    @on(Button.Pressed, "#btn-appointment")
    def _btn_appointment(self) -> None:
        self.action_new_appointment()

    @on(Button.Pressed, "#btn-resident")
    def _btn_resident(self) -> None:
        self.action_add_resident()

    @on(Button.Pressed, "#btn-call")
    def _btn_call(self) -> None:
        self.action_begin_check()

    @on(Button.Pressed, "#btn-lock")
    def _btn_lock(self) -> None:
        self.post_message(LockRequested())

    # ------------------------------------------------------------------ actions

    def action_new_appointment(self) -> None:
        """Book an appointment agreed with the GP."""
        self._new_appointment()

    @work(exclusive=True, group="dialog", exit_on_error=False)
    async def _new_appointment(self) -> None:
        try:
            clinics = await self.records.clinics()
        except StationClientError as error:
            self.failed(error)
            return
        if not clinics:
            self.notify(
                _("The station has no GP clinics yet. Contact IT."), severity="error", markup=False
            )
            return
        today = local(self.session.clock.now()).date()
        draft = await self.ask(AppointmentDialog(clinics, today))
        if draft is None:
            return
        try:
            cid = await self.records.create_appointment(
                draft.clinic_id, draft.starts_at, draft.consultation_type, draft.duration
            )
        except StationClientError as error:
            self.failed(error)
            return
        self.notify(_("The appointment is booked."), markup=False)
        self.reload(cid)

    def action_add_resident(self) -> None:
        """Queue a resident for the selected appointment."""
        if self.selected is None:
            self.notify(_("Book an appointment first."), severity="warning", markup=False)
            return
        self._add_resident(self.selected.id)

    @work(exclusive=True, group="dialog", exit_on_error=False)
    async def _add_resident(self, consultation_id: str) -> None:
        today = local(self.session.clock.now()).date()
        draft = await self.ask(ResidentDialog(today))
        if draft is None:
            return
        try:
            entry = await self.records.add_resident(consultation_id, draft.identity, draft.reason)
        except StationClientError as error:
            self.failed(error)
            return
        self.reload(consultation_id, entry)

    def action_move(self, delta: int) -> None:
        """Move the selected resident up or down the queue."""
        appointment, resident = self.selected, self.selected_resident
        if appointment is not None and resident is not None:
            self._change(lambda: self.records.move(appointment, resident.entry_id, delta), resident)

    def action_skip(self) -> None:
        """Mark the selected resident skipped (again: waiting)."""
        resident = self.selected_resident
        if resident is None:
            return
        status = (
            QueueEntryStatus.WAITING if resident.status == "skipped" else QueueEntryStatus.SKIPPED
        )
        self._change(lambda: self.records.set_status(resident.entry_id, status), resident)

    def action_remove(self) -> None:
        """Take the selected resident out of the queue (after a yes)."""
        resident = self.selected_resident
        if resident is not None:
            self._remove(resident)

    @work(exclusive=True, group="dialog", exit_on_error=False)
    async def _remove(self, resident: ResidentView) -> None:
        question = _("Remove {name} from the queue?").format(name=resident.name[:60])
        if not await self.ask(ConfirmDialog(question, _("Remove"))):
            return
        self._change(lambda: self.records.remove(resident.entry_id), None)

    @work(exclusive=True, group="change", exit_on_error=False)
    async def _change(
        self, change: Callable[[], Awaitable[None]], resident: ResidentView | None
    ) -> None:
        try:
            await change()
        except StationClientError as error:
            self.failed(error)
        self.reload(self._selected, resident.entry_id if resident else None)

    def action_begin_check(self) -> None:
        """Start the pre-call check for the selected appointment."""
        if self.selected is not None:
            self._begin_check(self.selected.id)

    @work(exclusive=True, group="session", exit_on_error=False)
    async def _begin_check(self, consultation_id: str) -> None:
        try:
            await self.station.begin_check(consultation_id)
        except StationClientError as error:
            self.failed(error)
            return
        self.post_message(SessionMoved())

    def action_wrap_up(self) -> None:
        """Write the note of a call that ended while the station was locked."""
        if not self.pending_wrap_ups:
            self.notify(_("No call is waiting for its note."), markup=False)
            return
        chosen = self._selected if self._selected in self.pending_wrap_ups else None
        self._resume_wrap_up(chosen or self.pending_wrap_ups[0])

    @work(exclusive=True, group="session", exit_on_error=False)
    async def _resume_wrap_up(self, consultation_id: str) -> None:
        try:
            await self.station.resume_wrap_up(consultation_id)
        except StationClientError as error:
            self.failed(error)
            return
        self.post_message(SessionMoved())

    def action_reload(self) -> None:
        """Read everything again."""
        self.reload()
