"""Dialogs of the Today screen: book an appointment, queue a resident, confirm, show a record.

Each is a ``ModalScreen[T]`` that returns its result with ``dismiss()``; validation happens
here, with the domain's own rules (``station.core``), and its Danish message is shown in the
dialog: bad input gets a clear error and loses nothing that was typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Select, Static

from station.core.cpr import parse_cpr
from station.core.model import ConsultationType, DomainError, WithCpr, WithoutCpr
from station.errors import StationError
from tui.i18n import _
from tui.localtime import local_zone
from tui.safe_text import literal
from tui.staff.data import ClinicView, ResidentView
from tui.staff.labels import type_label
from tui.staff.widgets.cpr_field import CprField

__all__ = [
    "AppointmentDialog",
    "AppointmentDraft",
    "ConfirmDialog",
    "ResidentDetail",
    "ResidentDialog",
    "ResidentDraft",
    "parse_day",
    "parse_time",
]


def parse_day(text: str) -> date | None:
    """``DD-MM-ÅÅÅÅ`` (also ``DD.MM.ÅÅÅÅ`` or ``DD/MM/ÅÅÅÅ``) to a date, or None."""
    cleaned = text.strip().replace(".", "-").replace("/", "-")
    try:
        return datetime.strptime(cleaned, "%d-%m-%Y").date()
    except ValueError:
        return None


def parse_time(text: str) -> time | None:
    """``TT:MM`` (also ``TT.MM``) to a time, or None."""
    cleaned = text.strip().replace(".", ":")
    try:
        return datetime.strptime(cleaned, "%H:%M").time()
    except ValueError:
        return None


@dataclass(frozen=True)
class AppointmentDraft:
    """A booking agreed with the GP: clinic, date and time, duration, call type."""

    clinic_id: str
    starts_at: datetime
    duration: timedelta
    consultation_type: ConsultationType


@dataclass(frozen=True)
class ResidentDraft:
    """A resident to queue, validated by the domain, and the reason for the call."""

    identity: WithCpr | WithoutCpr = field(repr=False)
    reason: str | None = field(repr=False, default=None)


class _Dialog(ModalScreen[object]):
    """Shared: escape cancels, one error line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", _("Cancel"), id="dialog.cancel"),
    ]

    def action_cancel(self) -> None:
        """Close without a result."""
        self.dismiss(None)

    def show_error(self, text: str) -> None:
        """Show a validation message (never quoting what was typed)."""
        error = self.query_one("#dialog-error", Static)
        error.update(literal(text, 300, keep_newlines=True))
        error.display = bool(text)


class AppointmentDialog(_Dialog):
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
            yield Static("", id="dialog-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button(_("Save"), id="save", variant="primary")
                yield Button(_("Cancel"), id="cancel")

    def on_mount(self) -> None:
        """Errors show only when there is one."""
        self.query_one("#dialog-error").display = False

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

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


class ResidentDialog(_Dialog):
    """Queue a resident without CPR (name, birth date, room) or with CPR (checked as typed)."""

    def __init__(self, today: date) -> None:
        super().__init__()
        self._today = today

    def compose(self) -> ComposeResult:
        """Login kind, then the fields of that kind."""
        with VerticalScroll(classes="dialog"):
            yield Static(_("Add a resident to the queue"), classes="dialog-title", markup=False)
            with RadioSet(id="kind"):
                yield RadioButton(_("Without CPR number"), value=True, id="without")
                yield RadioButton(_("With CPR number"), id="with")
            yield Label(_("Name"), markup=False)
            yield Input(id="name", max_length=200)
            with Vertical(id="without-fields"), Horizontal(classes="row"):
                with Vertical():
                    yield Label(_("Birth date (DD-MM-YYYY)"), markup=False)
                    yield Input(id="birth", max_length=10)
                with Vertical():
                    yield Label(_("Room"), markup=False)
                    yield Input(id="room", max_length=50)
            with Vertical(id="with-fields"):
                yield Label(_("CPR number (DDMMYY-XXXX)"), markup=False)
                yield CprField(self._today)
                yield Label(_("Room (optional)"), markup=False)
                yield Input(id="cpr-room", max_length=50)
            yield Label(_("Reason for the consultation (optional)"), markup=False)
            yield Input(id="reason", max_length=500)
            yield Static("", id="dialog-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button(_("Add"), id="save", variant="primary")
                yield Button(_("Cancel"), id="cancel")

    def on_mount(self) -> None:
        """Without CPR first (the round at the care home)."""
        self.query_one("#dialog-error").display = False
        self.query_one("#with-fields").display = False
        self.query_one("#name", Input).focus()

    @property
    def with_cpr(self) -> bool:
        """Whether the CPR login is chosen."""
        return self.query_one("#with", RadioButton).value

    @on(RadioSet.Changed)
    def _kind_changed(self) -> None:
        self.query_one("#with-fields").display = self.with_cpr
        self.query_one("#without-fields").display = not self.with_cpr
        self.show_error("")

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        name = self.query_one("#name", Input).value
        reason = self.query_one("#reason", Input).value.strip() or None
        identity: WithCpr | WithoutCpr
        try:
            if self.with_cpr:
                cpr = parse_cpr(self.query_one(CprField).value, today=self._today)
                room = self.query_one("#cpr-room", Input).value
                identity = WithCpr(cpr, name, room=room or None)
            else:
                born = parse_day(self.query_one("#birth", Input).value)
                if born is None:
                    self.show_error(_("Write the birth date as DD-MM-YYYY."))
                    return
                identity = WithoutCpr(name, born, self.query_one("#room", Input).value)
        except (DomainError, StationError) as error:
            self.show_error(error.user_message or _("The information is not valid."))
            return
        if reason is not None and (len(reason) > 500 or any(ord(c) < 32 for c in reason)):
            self.show_error(_("The reason contains characters that cannot be used."))
            return
        self.dismiss(ResidentDraft(identity, reason))


class ConfirmDialog(ModalScreen[bool]):
    """Yes or no, with the question in plain words."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "no", _("No"), id="confirm.no"),
        Binding("y,j", "yes", _("Yes"), id="confirm.yes", show=False),
    ]

    def __init__(self, question: str, yes: str | None = None) -> None:
        super().__init__()
        self._question = question
        self._yes = yes or _("Yes")

    def compose(self) -> ComposeResult:
        """The question and two buttons."""
        with Vertical(classes="dialog confirm"):
            yield Static(literal(self._question, 300, keep_newlines=True), classes="question")
            with Horizontal(classes="buttons"):
                yield Button(self._yes, id="yes", variant="warning")
                yield Button(_("No"), id="no")

    def on_mount(self) -> None:
        """ "No" is the safe default."""
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        """Confirm."""
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        """Decline."""
        self.dismiss(False)


class ResidentDetail(ModalScreen[None]):
    """One resident's record, opened (stationd audits the opening)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "close", _("Close"), id="detail.close"),
    ]

    def __init__(self, resident: ResidentView) -> None:
        super().__init__()
        self._resident = resident

    def compose(self) -> ComposeResult:
        """Every field, literally."""
        r = self._resident
        with VerticalScroll(classes="dialog"):
            yield Static(_("Resident"), classes="dialog-title", markup=False)
            if not r.readable:
                yield Static(
                    _("Some of this resident's information could not be opened."),
                    classes="error",
                    markup=False,
                )
            for label, value in (
                (_("Name"), r.name),
                (_("Born"), r.birth_date),
                (_("Room"), r.room),
                (_("CPR number"), r.cpr),
                (_("Reason"), r.reason),
                (_("Note"), r.note),
            ):
                if value:
                    with Horizontal(classes="field"):
                        yield Static(label, classes="field-label", markup=False)
                        yield Static(literal(value, 2000, keep_newlines=True), classes="value")
            yield Button(_("Close"), id="close")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Back to the list."""
        self.dismiss(None)
