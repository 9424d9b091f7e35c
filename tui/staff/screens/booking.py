"""Book an appointment with the GP: clinic, the date and time agreed, duration, call type.

A ``ModalScreen`` that returns an :class:`AppointmentDraft` with ``dismiss()`` (None:
cancelled). Dates and times are checked here and said plainly; nothing typed is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, Static

from station.core.model import ConsultationType
from station.i18n import _
from tui.localtime import local_zone
from tui.safe_text import literal
from tui.staff.data import ClinicView
from tui.staff.labels import type_label
from tui.staff.screens.dialogs import FormDialog, parse_day, parse_time

__all__ = ["AppointmentDialog", "AppointmentDraft"]


@dataclass(frozen=True)
class AppointmentDraft:
    """A booking agreed with the GP: clinic, date and time, duration, call type."""

    clinic_id: str
    starts_at: datetime
    duration: timedelta
    consultation_type: ConsultationType


class AppointmentDialog(FormDialog[AppointmentDraft]):
    """Book an appointment: only with a date and time agreed with the GP."""

    def __init__(self, clinics: list[ClinicView], today: date) -> None:
        super().__init__()
        self._clinics = clinics
        self._today = today

    def compose(self) -> ComposeResult:
        """Clinic, date, time, duration, type."""
        with Vertical(classes="dialog"):
            yield Static(_("New appointment with the GP"), classes="dialog-title", markup=False)
            yield Static(
                _("Only book a time you have agreed with the GP (date and time)."),
                classes="dialog-help",
                markup=False,
            )
            yield Label(_("GP clinic"), markup=False)
            yield Select(
                [(literal(c.name, 60), c.id) for c in self._clinics],
                id="clinic",
                prompt=_("Choose the GP clinic"),
                value=self._clinics[0].id if len(self._clinics) == 1 else Select.NULL,
            )
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label(_("Date (DD-MM-YYYY)"), markup=False)
                    yield Input(self._today.strftime("%d-%m-%Y"), id="day", max_length=10)
                with Vertical():
                    yield Label(_("Time (HH:MM)"), markup=False)
                    yield Input("", id="time", max_length=5, placeholder="10:30")
                with Vertical():
                    yield Label(_("Minutes"), markup=False)
                    yield Input("15", id="minutes", max_length=3, restrict=r"[0-9]*")
            yield Label(_("Type"), markup=False)
            yield Select(
                [(type_label(kind.value), kind.value) for kind in ConsultationType],
                id="type",
                value=ConsultationType.VIDEO_CONSULTATION.value,
                allow_blank=False,
            )
            yield from self.form_end(_("Save"))

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        clinic = self.query_one("#clinic", Select).value
        if not isinstance(clinic, str):
            self.show_error(_("Choose the GP clinic."))
            return
        day = parse_day(self.query_one("#day", Input).value)
        if day is None:
            self.show_error(_("Write the agreed date as DD-MM-YYYY."))
            return
        at = parse_time(self.query_one("#time", Input).value)
        if at is None:
            self.show_error(_("Write the time agreed with the GP as HH:MM."))
            return
        minutes_text = self.query_one("#minutes", Input).value
        minutes = int(minutes_text) if minutes_text.isdigit() else 0
        if not 5 <= minutes <= 240:
            self.show_error(_("The duration must be between 5 and 240 minutes."))
            return
        kind = self.query_one("#type", Select).value
        self.dismiss(
            AppointmentDraft(
                clinic_id=clinic,
                starts_at=datetime.combine(day, at, local_zone()),
                duration=timedelta(minutes=minutes),
                consultation_type=ConsultationType(str(kind)),
            )
        )
