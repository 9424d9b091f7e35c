"""Wrap-up: a short note per resident for the care record (EOJ), then "documented".

The note holds what the EOJ needs: time, GP, type (from the appointment), who took part,
the outcome and free text. It is sealed under the consultation's key and stored through
stationd. "Documented" marks the consultation done (stationd may purge it after the
retention time) and ends the wrap-up.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static, TextArea

from station.daemon.client import StationClientError
from tui.i18n import _
from tui.staff.data import AppointmentView, NoteDraft, ResidentView, local
from tui.staff.messages import SessionChanged
from tui.staff.safe_text import literal
from tui.staff.screens.base import StaffScreen
from tui.staff.screens.dialogs import ConfirmDialog
from tui.staff.screens.today import status_label, type_label

__all__ = ["WrapUpScreen", "outcomes"]


def outcomes() -> tuple[tuple[str, str], ...]:
    """Outcome codes stored in the note, with their labels in the catalogue's words."""
    return (
        ("completed", _("Consultation completed")),
        ("follow_up", _("Follow-up agreed")),
        ("referred", _("Referred onwards")),
        ("not_completed", _("Not completed")),
    )


MAX_NOTE_CHARS = 4000


class WrapUpScreen(StaffScreen):
    """See the module docs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", _("Save note"), id="wrapup.save", priority=True),
        Binding("f2", "documented", _("Mark documented"), id="wrapup.documented"),
    ]

    def __init__(self, appointment_id: str) -> None:
        super().__init__()
        self.appointment_id = appointment_id
        self.appointment: AppointmentView | None = None
        self.notes: list[dict[str, Any]] = []
        self.call_events: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        """Residents and their notes; the note form; buttons."""
        with Vertical(id="wrapup"):
            yield Static("", id="wrapup-title")
            yield Static("", id="wrapup-call")
            yield DataTable(id="wrapup-residents", cursor_type="row")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label(_("Who took part"), markup=False)
                    yield Input(id="participants", max_length=200)
                with Vertical():
                    yield Label(_("Outcome"), markup=False)
                    yield Select(
                        [(label, code) for code, label in outcomes()],
                        id="outcome",
                        value="completed",
                        allow_blank=False,
                    )
            yield Label(_("Note for the care record"), markup=False)
            yield TextArea(id="note-text", soft_wrap=True)
            yield Static("", id="saved-note")
            with Horizontal(classes="buttons"):
                yield Button(_("Save note"), id="btn-save", variant="primary")
                yield Button(_("Mark documented"), id="btn-documented", variant="success")
        yield Footer()

    def on_mount(self) -> None:
        """Columns, then the appointment, its notes and the call's record."""
        table = self.query_one("#wrapup-residents", DataTable)
        for label, width in ((_("Name"), 36), (_("Status"), 12), (_("Note"), 40)):
            table.add_column(label, width=width)
        self.query_one("#participants", Input).value = _("Resident, GP, staff")
        self.load()

    @work(group="load", exclusive=True, exit_on_error=False)
    async def load(self, entry: str | None = None) -> None:
        """Read the appointment and its notes again."""
        try:
            self.appointment = await self.records.appointment(self.appointment_id)
            self.notes = await self.records.notes(self.appointment_id)
            self.call_events = await self.records.call_events(self.appointment_id)
        except StationClientError as error:
            self.failed(error)
            return
        self._draw(entry)

    def _note_for(self, entry_id: str | None) -> dict[str, Any] | None:
        found: dict[str, Any] | None = next(
            (n for n in reversed(self.notes) if n.get("entry_id") == entry_id), None
        )
        return found

    def _draw(self, entry: str | None = None) -> None:
        a = self.appointment
        if a is None:
            return
        title = _("Note for the care record — {time} {clinic} ({kind})").format(
            time=f"{local(a.starts_at):%H:%M}",
            clinic=a.clinic_name,
            kind=type_label(a.consultation_type),
        )
        self.query_one("#wrapup-title", Static).update(literal(title, 96, style="bold"))
        ended = next((e for e in self.call_events if e.get("kind") == "call_ended"), None)
        call = Text()
        if ended and isinstance(ended.get("duration_seconds"), int):
            minutes = max(1, round(ended["duration_seconds"] / 60))
            call.append(_("The call lasted about {minutes} min.").format(minutes=minutes))
        self.query_one("#wrapup-call", Static).update(call)
        table = self.query_one("#wrapup-residents", DataTable)
        table.clear()
        for r in a.residents:
            note = self._note_for(r.entry_id)
            table.add_row(
                literal(r.name, 36) if r.readable else Text(_("(cannot be opened)")),
                Text(status_label(r.status)),
                literal(note.get("text", ""), 40) if note else Text(_("(no note yet)"), "dim"),
                key=r.entry_id,
            )
        ids = [r.entry_id for r in a.residents]
        if entry in ids:
            table.move_cursor(row=ids.index(entry))
        self._show_saved()

    @property
    def selected(self) -> ResidentView | None:
        """The resident under the cursor."""
        a = self.appointment
        if a is None or not a.residents:
            return None
        row = self.query_one("#wrapup-residents", DataTable).cursor_row
        return a.residents[min(row, len(a.residents) - 1)]

    @on(DataTable.RowHighlighted)
    def _show_saved(self) -> None:
        resident = self.selected
        note = self._note_for(resident.entry_id if resident else None)
        saved = self.query_one("#saved-note", Static)
        if note is None:
            saved.update("")
            return
        text = Text(_("Saved note: "), style="dim")
        text.append_text(literal(note.get("text", ""), 300, keep_newlines=True))
        saved.update(text)

    @on(Button.Pressed, "#btn-save")
    def action_save(self) -> None:
        """Seal and store the note for the selected resident; mark them done."""
        resident = self.selected
        text = self.query_one("#note-text", TextArea).text.strip()
        if not text:
            self.notify(_("Write the note first."), severity="warning", markup=False)
            return
        if len(text) > MAX_NOTE_CHARS:
            self.notify(
                _("The note can be at most {count} characters.").format(count=MAX_NOTE_CHARS),
                severity="error",
                markup=False,
            )
            return
        outcome = self.query_one("#outcome", Select).value
        draft = NoteDraft(
            entry_id=resident.entry_id if resident else None,
            participants=self.query_one("#participants", Input).value.strip(),
            outcome=str(outcome),
            text=text,
        )
        self._save(draft, resident)

    @work(group="save", exclusive=True, exit_on_error=False)
    async def _save(self, draft: NoteDraft, resident: ResidentView | None) -> None:
        assert self.appointment is not None
        try:
            await self.records.write_note(self.appointment, draft, resident)
        except StationClientError as error:
            self.failed(error)
            return
        self.query_one("#note-text", TextArea).text = ""
        self.notify(_("The note is saved."), markup=False)
        self.load(draft.entry_id)

    @on(Button.Pressed, "#btn-documented")
    def action_documented(self) -> None:
        """The notes are in the care record: mark documented and finish."""
        self._documented()

    @work(group="session", exclusive=True, exit_on_error=False)
    async def _documented(self) -> None:
        a = self.appointment
        if a is None:
            return
        missing = [
            r for r in a.residents if r.status != "skipped" and not self._note_for(r.entry_id)
        ]
        if missing:
            question = _("{count} resident(s) have no note. Mark documented anyway?").format(
                count=len(missing)
            )
            if not await self.app.push_screen_wait(ConfirmDialog(question, _("Yes"))):
                return
        try:
            await self.records.mark_documented(a.id)
            await self.staff_app.client.finish_wrap_up()
        except StationClientError as error:
            self.failed(error)
            return
        self.staff_app.refresh_state()

    def on_session_changed(self, message: SessionChanged) -> None:
        """Nothing to do: the app replaces this screen when the state moves on."""
