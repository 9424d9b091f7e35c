"""A new staff member enrolls at the station: IT's one-time code, a PIN chosen here.

Reached from the PIN screen. The newcomer types the one-time code IT issued for them and
chooses a PIN (twice); once anyone is enrolled, a colleague already enrolled vouches with
their staff number and PIN. stationd makes the keyslot (``POST /v1/staff/enroll``); the PIN
never leaves the station. The answer is the newcomer's short staff number ("Personale-nummer",
3-4 digits), shown large, then the log-in screen with the number filled in. The pseudonymous
staff id stays in the background (audit, hub); nobody has to remember it. Refusals are
stationd's Danish messages; the PIN fields are emptied after every try.
"""

from __future__ import annotations

import re
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Digits, Footer, Input, Label, Static

from station.i18n import _
from tui.staff.station import (
    Enrolled,
    StaffStation,
    StationApiError,
    StationClientError,
    StationUnavailable,
)

__all__ = ["EnrollScreen"]

#: The keyring's rule (station.keys.keyring.validate_pin), checked here first for a quick answer.
_PIN = re.compile(r"[0-9]{6,12}")
_PIN_FIELDS = ("#new-pin", "#new-pin-again", "#sponsor-pin")


class EnrollScreen(Screen[str | None]):
    """Enroll with a one-time code; dismissed with the new staff number (None: went back)."""

    #: The help F1 shows here (:mod:`tui.staff.help`).
    HELP_TOPIC: ClassVar[str] = "enroll"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", _("Back"), id="enroll.back"),
    ]

    def __init__(self, station: StaffStation) -> None:
        super().__init__()
        self.station = station
        self._enrolled: Enrolled | None = None

    def compose(self) -> ComposeResult:
        """The form, and the result (hidden until enrolled)."""
        with Center(), Vertical(id="enroll-box"):
            yield Static(_("New staff member"), id="enroll-title", markup=False)
            with Vertical(id="enroll-form"):
                yield Static(
                    _(
                        "Type the one-time code from IT and choose a PIN code of 6 to 12 "
                        "digits. If colleagues already use the station, one of them types "
                        "their staff number and PIN code below."
                    ),
                    markup=False,
                )
                yield Label(_("One-time code"), markup=False)
                yield Input(id="enroll-code", max_length=32, restrict=r"[A-Za-z0-9 -]*")
                yield Label(_("Choose a PIN code"), markup=False)
                yield Input(id="new-pin", password=True, max_length=12, restrict=r"[0-9]*")
                yield Label(_("The same PIN code again"), markup=False)
                yield Input(id="new-pin-again", password=True, max_length=12, restrict=r"[0-9]*")
                yield Label(_("Colleague's staff number (not for the first one)"), markup=False)
                yield Input(id="sponsor-number", max_length=4, restrict=r"[0-9]*")
                yield Label(_("Colleague's PIN code"), markup=False)
                yield Input(id="sponsor-pin", password=True, max_length=12, restrict=r"[0-9]*")
                with Horizontal(classes="buttons"):
                    yield Button(_("Enroll"), id="enroll-submit", variant="primary")
                    yield Button(_("Back"), id="enroll-back")
            with Vertical(id="enroll-done"):
                yield Static("", id="enroll-done-title", markup=False)
                yield Digits("", id="enroll-staff-number")
                yield Static(
                    _("Remember it: you type it with your PIN code to unlock the station."),
                    markup=False,
                )
                yield Button(_("Continue to unlock"), id="enroll-continue", variant="primary")
            yield Static("", id="enroll-message", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Start in the code field; the result is hidden."""
        self.query_one("#enroll-done").display = False
        self.query_one("#enroll-code", Input).focus()

    @on(Button.Pressed, "#enroll-back")
    @on(Button.Pressed, "#enroll-continue")
    def action_back(self) -> None:
        """Back to the log-in screen (with the new number, once enrolled)."""
        self.dismiss(None if self._enrolled is None else self._enrolled.staff_number)

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        if event.input.id == "sponsor-pin":
            self._submit()
        else:
            self.focus_next()

    @on(Button.Pressed, "#enroll-submit")
    def _submit(self) -> None:
        code = self.query_one("#enroll-code", Input).value.strip()
        pin, again, sponsor_pin = (self.query_one(f, Input).value for f in _PIN_FIELDS)
        sponsor_number = self.query_one("#sponsor-number", Input).value.strip()
        for field in _PIN_FIELDS:
            self.query_one(field, Input).value = ""
        if not code:
            self._refused(_("Type the one-time code from IT."), "#enroll-code")
        elif not _PIN.fullmatch(pin):
            self._refused(_("The PIN code must be 6 to 12 digits."), "#new-pin")
        elif pin != again:
            self._refused(_("The two PIN codes are not the same. Type them again."), "#new-pin")
        elif bool(sponsor_number) != bool(sponsor_pin):
            self._refused(
                _("Type both the colleague's staff number and PIN code."), "#sponsor-number"
            )
        else:
            self.query_one("#enroll-submit", Button).disabled = True
            self._message(_("Enrolling…"))
            self._enroll(code, pin, sponsor_number or None, sponsor_pin or None)

    @work(exclusive=True, group="enroll", exit_on_error=False)
    async def _enroll(
        self, code: str, pin: str, sponsor_number: str | None, sponsor_pin: str | None
    ) -> None:
        try:
            enrolled = await self.station.enroll_staff(
                code, pin, sponsor_staff_number=sponsor_number, sponsor_pin=sponsor_pin
            )
        except StationApiError as error:
            field = "#sponsor-number" if error.code.startswith("sponsor") else "#enroll-code"
            if error.code == "invalid_pin":
                field = "#new-pin"
            self._refused(error.user_message or _("The enrollment failed."), field)
            return
        except StationUnavailable:
            self._refused(
                _("The station does not answer. Wait a moment and try again."), "#enroll-code"
            )
            return
        except StationClientError as error:
            self._refused(error.user_message or _("The enrollment failed."), "#enroll-code")
            return
        self._enrolled = enrolled
        self.query_one("#enroll-form").display = False
        self.query_one("#enroll-done-title", Static).update(
            _("You are enrolled. Your staff number is {number}:").format(
                number=enrolled.staff_number
            )
        )
        self.query_one("#enroll-staff-number", Digits).update(enrolled.staff_number)
        self.query_one("#enroll-done").display = True
        self._message("")
        self.query_one("#enroll-continue", Button).focus()

    def _refused(self, text: str, focus: str) -> None:
        self._message(text, error=True)
        self.query_one("#enroll-submit", Button).disabled = False
        self.query_one(focus, Input).focus()

    def _message(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#enroll-message", Static)
        message.update(text)
        message.set_class(error, "error")
