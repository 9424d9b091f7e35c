"""What the staff UI's dialogs share: the form dialog's base, reading typed dates and times,
and the yes-or-no question.

Each dialog is a ``ModalScreen[T]`` that returns its result with ``dismiss()``; its screen
shows it and awaits the answer. The form dialogs (:mod:`tui.staff.screens.booking`,
:mod:`tui.staff.screens.resident`) validate what is typed with the domain's own rules and show
the Danish message in the dialog: bad input gets a clear error and loses nothing.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import ClassVar, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from station.i18n import _
from tui.safe_text import literal
from tui.staff.screens.base import StaffDialog

__all__ = ["ConfirmDialog", "FormDialog", "parse_day", "parse_time"]

_Draft = TypeVar("_Draft")


def parse_day(text: str) -> date | None:
    """``DD-MM-YYYY`` (also ``DD.MM.YYYY`` or ``DD/MM/YYYY``) to a date, or None."""
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


class FormDialog(ModalScreen[_Draft | None]):
    """A form in a dialog: its answer is a draft of ``_Draft`` (None: cancelled with Escape
    or the button); one error line says what to mend."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", _("Cancel"), id="dialog.cancel"),
    ]

    def form_end(self, save: str) -> ComposeResult:
        """The error line (hidden until there is one) and the buttons: ``save``, Cancel."""
        yield Static("", id="dialog-error", classes="error")
        with Horizontal(classes="buttons"):
            yield Button(save, id="save", variant="primary")
            yield Button(_("Cancel"), id="cancel")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without a result."""
        self.dismiss(None)

    def show_error(self, text: str) -> None:
        """Show a validation message (never quoting what was typed)."""
        error = self.query_one("#dialog-error", Static)
        error.update(literal(text, 300, keep_newlines=True))
        error.display = bool(text)


class ConfirmDialog(StaffDialog[bool]):
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
        """ "No" is the safe default (StaffDialog keeps it below the video)."""
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        """Confirm."""
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        """Decline."""
        self.dismiss(False)
