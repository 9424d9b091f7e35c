"""Queue a resident (with or without a CPR number), and show one resident's record.

``ResidentDialog`` validates with the domain's own rules (``station.core``) and shows its
Danish reason in the dialog; it returns a :class:`ResidentDraft` with ``dismiss()`` (None:
cancelled). ``ResidentDetail`` shows every field of a record opened through stationd's
audited endpoint, literally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from station.core.cpr import parse_cpr
from station.core.model import DomainError, WithCpr, WithoutCpr
from station.errors import StationError
from station.i18n import _
from tui.safe_text import literal
from tui.staff.data import ResidentView
from tui.staff.screens.dialogs import FormDialog, parse_day
from tui.staff.widgets.cpr_field import CprField

__all__ = ["ResidentDetail", "ResidentDialog", "ResidentDraft"]


@dataclass(frozen=True)
class ResidentDraft:
    """A resident to queue, validated by the domain, and the reason for the call."""

    identity: WithCpr | WithoutCpr = field(repr=False)
    reason: str | None = field(repr=False, default=None)


class ResidentDialog(FormDialog[ResidentDraft]):
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
            yield from self.form_end(_("Add"))

    def on_mount(self) -> None:
        """Without CPR first (the round at the care home)."""
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
