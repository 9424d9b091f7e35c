"""Wrap-up: a short note per resident for the care record (EOJ), then "documented".

The note holds what the EOJ needs: time, GP, type (from the appointment), who took part,
the outcome and free text. It is sealed under the consultation's key and stored through
stationd. "Documented" marks the consultation done (stationd may purge it after the
retention time) and ends the wrap-up.

Each saved note is then handed to the care record (``station.export``): with an EOJ
endpoint configured, sealed to the outbox key and queued in stationd's outbox, its state
(pending / delivered / failed, with "Try again") shown per resident and polled; without one,
the plain-text summary is shown read-only for staff to copy into the EOJ, and nothing
claims it was sent. A delivery still pending never blocks "documented": the outbox
delivers later, and stationd purges only what was delivered.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Static,
)

from station.errors import StationError
from station.i18n import _
from tui.safe_text import clean, literal
from tui.staff.data import AppointmentView, ExportState, NoteDraft, ResidentView
from tui.staff.labels import appointment_heading
from tui.staff.messages import SessionMoved
from tui.staff.screens.base import StaffScreen, UnlockedSession
from tui.staff.screens.dialogs import ConfirmDialog
from tui.staff.station import StationClientError
from tui.staff.widgets.handoff import HandoffPanel
from tui.staff.widgets.note_form import NoteForm
from tui.staff.widgets.notes_table import NoteRow, NotesTable

__all__ = ["EXPORT_POLL_SECONDS", "WrapUpScreen"]


MAX_NOTE_CHARS = 4000
#: Room for the whole summary: the note (at most MAX_NOTE_CHARS) and a few lines around it.
SUMMARY_CHARS = 2 * MAX_NOTE_CHARS + 2000
#: Seconds between looks at the outbox while a delivery is still open.
EXPORT_POLL_SECONDS = 2.0


class WrapUpScreen(StaffScreen):
    """See the module docs."""

    #: The help F1 shows here (:mod:`tui.staff.help`).
    HELP_TOPIC: ClassVar[str] = "wrapup"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", _("Save note"), id="wrapup.save", priority=True),
        Binding("f2", "documented", _("Mark documented"), id="wrapup.documented"),
    ]

    def __init__(self, session: UnlockedSession, appointment_id: str) -> None:
        super().__init__(session)
        self.appointment_id = appointment_id
        self.appointment: AppointmentView | None = None
        self.notes: list[dict[str, Any]] = []
        self.call_events: list[dict[str, Any]] = []
        #: ``fhir``, ``summary`` or ``unavailable`` (stationd's export settings).
        self.delivery: str | None = None
        self._outbox_key: bytes | None = None
        #: Each queued export's state by note (= export) id.
        self.export_states: dict[str, ExportState] = {}

    def compose(self) -> ComposeResult:
        """Residents and their notes; the note form; the hand-off; buttons."""
        with Vertical(id="wrapup"):
            yield Static("", id="wrapup-title")
            yield Static("", id="wrapup-call")
            yield NotesTable(id="wrapup-residents")
            yield NoteForm()
            yield Static("", id="saved-note")
            yield HandoffPanel()
            with Horizontal(classes="buttons"):
                yield Button(_("Save note"), id="btn-save", variant="primary")
                yield Button(_("Mark documented"), id="btn-documented", variant="success")
                yield Button(_("Try again"), id="btn-retry", variant="warning")
                yield Button(_("Copy text"), id="btn-copy")
        yield Footer()

    def on_mount(self) -> None:
        """The appointment, its notes, the call's record and the hand-off; then the polling."""
        for widget_id in ("#btn-retry", "#btn-copy"):
            self.query_one(widget_id).display = False
        self.set_interval(EXPORT_POLL_SECONDS, self._poll_exports)
        self.load()

    @work(group="load", exclusive=True, exit_on_error=False)
    async def load(self, entry: str | None = None) -> None:
        """Read the appointment, its notes and their hand-off again."""
        try:
            self.appointment = await self.records.appointment(self.appointment_id)
            self.notes = await self.records.notes(self.appointment_id)
            self.call_events = await self.records.call_events(self.appointment_id)
            if self.delivery is None:
                self.delivery, self._outbox_key = await self.records.export_settings()
            if self.delivery == "fhir":
                self.export_states = await self.records.exports(self.appointment_id)
        except StationClientError as error:
            self.failed(error)
            return
        self._draw(entry)

    def _note_for(self, entry_id: str | None) -> dict[str, Any] | None:
        found: dict[str, Any] | None = next(
            (n for n in reversed(self.notes) if n.get("entry_id") == entry_id), None
        )
        return found

    def export_state(self, note: dict[str, Any] | None) -> ExportState | None:
        """The hand-off state of ``note`` (None: no note yet, or not known yet)."""
        if note is None or note.get("unreadable") or self.delivery is None:
            return None
        if self.delivery != "fhir":
            return "summary"
        return self.export_states.get(str(note.get("note_id")), "not_sent")

    def _draw(self, entry: str | None = None) -> None:
        a = self.appointment
        if a is None:
            return
        self.query_one("#wrapup-title", Static).update(
            appointment_heading(_("Note for the care record — {time} {clinic} ({kind})"), a)
        )
        ended = next((e for e in self.call_events if e.get("kind") == "call_ended"), None)
        call = Text()
        if ended and isinstance(ended.get("duration_seconds"), int):
            minutes = max(1, round(ended["duration_seconds"] / 60))
            call.append(_("The call lasted about {minutes} min.").format(minutes=minutes))
        self.query_one("#wrapup-call", Static).update(call)
        rows = []
        for r in a.residents:
            note = self._note_for(r.entry_id)
            text = str(note.get("text", "")) if note else None
            rows.append(NoteRow(r, text, self.export_state(note)))
        self.query_one(NotesTable).show(rows, entry)
        if a.consultation_type != "video_consultation":
            self.query_one(NoteForm).staff_always_take_part()
        self._show_saved()

    @property
    def selected(self) -> ResidentView | None:
        """The resident under the cursor."""
        a = self.appointment
        if a is None or not a.residents:
            return None
        row = self.query_one(NotesTable).cursor_row
        return a.residents[min(row, len(a.residents) - 1)]

    @on(DataTable.RowHighlighted)
    def _show_saved(self) -> None:
        resident = self.selected
        note = self._note_for(resident.entry_id if resident else None)
        saved = self.query_one("#saved-note", Static)
        if note is None:
            saved.update("")
        else:
            text = Text(_("Saved note: "), style="dim")
            text.append_text(literal(note.get("text", ""), 300, keep_newlines=True))
            saved.update(text)
        self._show_export()

    # ------------------------------------------------------------------ the hand-off

    def _show_export(self) -> None:
        """The selected resident's hand-off: the summary to copy, or a retry when it failed."""
        resident = self.selected
        note = self._note_for(resident.entry_id if resident else None)
        state = self.export_state(note)
        summary = ""
        if state == "summary" and resident is not None and note is not None:
            summary = self._summary(resident, note)
        self.query_one(HandoffPanel).show(
            state, summary, unavailable=self.delivery == "unavailable"
        )
        self.query_one("#btn-copy").display = bool(summary)
        self.query_one("#btn-retry").display = state in ("failed", "not_sent")

    def _summary(self, resident: ResidentView, note: dict[str, Any]) -> str:
        """The plain-text summary of ``note`` (made here: it never passes through stationd)."""
        from station.export.summary import plain_text_summary

        payload = self._payload(resident, note)
        if payload is None:
            return ""
        # Shown (and copied) as the screen shows names and notes: controls and invisible
        # formatting made visible, so what staff see is exactly what they paste.
        return clean(plain_text_summary(payload), SUMMARY_CHARS, keep_newlines=True)

    def _payload(self, resident: ResidentView, note: dict[str, Any]) -> Any:
        """The export of ``note``, or None if it cannot be made (shown, never raised)."""
        a = self.appointment
        if a is None or not resident.readable or "note_id" not in note:
            return None
        try:
            return self.records.export_payload(
                a,
                resident,
                note,
                staff_id=self.session.staff_id,
                call_events=self.call_events,
            )
        except (StationError, ValueError):
            return None

    def _poll_exports(self) -> None:
        if self.delivery == "fhir" and any(
            state in ("pending", "failed") for state in self.export_states.values()
        ):
            self._refresh_exports()

    @work(group="exports", exclusive=True, exit_on_error=False)
    async def _refresh_exports(self) -> None:
        """Look at the outbox again; update only the EOJ column (the cursor stays put)."""
        try:
            states = await self.records.exports(self.appointment_id)
        except StationClientError:
            return  # looked at again shortly; the outbox keeps the note meanwhile
        if states == self.export_states or self.appointment is None:
            return
        self.export_states = states
        table = self.query_one(NotesTable)
        for r in self.appointment.residents:
            table.set_handoff(r.entry_id, self.export_state(self._note_for(r.entry_id)))
        self._show_export()

    # ------------------------------------------------------------------ actions

    @on(Button.Pressed, "#btn-save")
    def action_save(self) -> None:
        """Seal and store the note for the selected resident; mark them done; hand it on."""
        resident = self.selected
        form = self.query_one(NoteForm)
        text = form.text
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
        self._save(form.draft(resident.entry_id if resident else None), resident)

    @work(group="save", exclusive=True, exit_on_error=False)
    async def _save(self, draft: NoteDraft, resident: ResidentView | None) -> None:
        assert self.appointment is not None
        try:
            note_id = await self.records.write_note(self.appointment, draft, resident)
        except StationClientError as error:
            self.failed(error)
            return
        self.query_one(NoteForm).clear_text()
        self.notify(_("The note is saved."), markup=False)
        if resident is not None:
            await self._export(resident, note_id)
        self.load(draft.entry_id)

    async def _export(self, resident: ResidentView, note_id: str) -> None:
        """Hand the stored note to the care record (queued; a summary is made when shown)."""
        try:
            notes = await self.records.notes(self.appointment_id)
            if self.delivery is None:
                self.delivery, self._outbox_key = await self.records.export_settings()
        except StationClientError as error:
            self.failed(error)
            return
        note = next((n for n in notes if n.get("note_id") == note_id), None)
        if self.delivery != "fhir" or note is None:
            return  # the summary is made from the stored note when it is shown
        payload = self._payload(resident, note)
        if payload is None:
            self.notify(
                _("The note could not be prepared for the care record. Contact IT."),
                severity="error",
                markup=False,
            )
            return
        try:
            outcome = await self.records.export_note(payload, self.delivery, self._outbox_key)
        except StationClientError as error:
            self.failed(error)
            return
        except StationError as error:  # e.g. too long to seal: staff can shorten it
            self.notify(error.user_message, severity="error", markup=False)
            return
        if not outcome.queued:
            self.delivery = outcome.delivery  # stationd has no endpoint after all: summary

    @on(Button.Pressed, "#btn-retry")
    def action_retry(self) -> None:
        """Try the selected resident's delivery again (or queue it, if it never was)."""
        resident = self.selected
        note = self._note_for(resident.entry_id if resident else None)
        if resident is None or note is None:
            return
        self._retry(resident, note)

    @work(group="save", exclusive=True, exit_on_error=False)
    async def _retry(self, resident: ResidentView, note: dict[str, Any]) -> None:
        note_id = str(note.get("note_id"))
        if self.export_state(note) == "failed":
            try:
                await self.records.retry_export(note_id)
            except StationClientError as error:
                self.failed(error)
                return
        else:
            await self._export(resident, note_id)
        self.load(resident.entry_id)

    @on(Button.Pressed, "#btn-copy")
    def action_copy_summary(self) -> None:
        """Put the summary on the terminal's clipboard (it can also be selected by hand)."""
        # The terminal's clipboard is the app's (an OSC 52 sequence to the terminal).
        self.app.copy_to_clipboard(self.query_one(HandoffPanel).summary)
        self.notify(_("The text is copied."), markup=False)

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
            if not await self.ask(ConfirmDialog(question, _("Yes"))):
                return
        # A delivery still pending does not hold staff up: the outbox delivers it later and
        # stationd purges the consultation only after delivery is confirmed.
        try:
            await self.records.mark_documented(a.id)
            await self.station.finish_wrap_up()
        except StationClientError as error:
            self.failed(error)
            return
        self.post_message(SessionMoved())
