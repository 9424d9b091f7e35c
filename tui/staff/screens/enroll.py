"""A new staff member enrolls at the station: IT's one-time code, a PIN chosen here.

Reached from the PIN screen. The newcomer types the one-time code IT issued for them and
chooses a PIN (twice); once anyone is enrolled, a colleague already enrolled vouches with
their staff id and PIN. stationd makes the keyslot (``POST /v1/staff/enroll``); the PIN never
leaves the station. The answer is the newcomer's staff id, shown large to write down, then
the PIN screen with the id filled in. Refusals are stationd's Danish messages; the PIN
fields are emptied after every try.
"""

from __future__ import annotations

import re
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

from station.i18n import _
from tui.staff.station import (
    StaffStation,
    StationApiError,
    StationClientError,
    StationUnavailable,
)

__all__ = ["EnrollScreen"]

#: The keyring's rule (station.keys.keyring.validate_pin), checked here first for a quick answer.
_PIN = re.compile(r"[0-9]{4,12}")
_PIN_FIELDS = ("#new-pin", "#new-pin-again", "#sponsor-pin")


class EnrollScreen(Screen[str | None]):
    """Enroll with a one-time code; dismissed with the new staff id (None: went back)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", _("Back"), id="enroll.back"),
    ]

    def __init__(self, station: StaffStation) -> None:
        super().__init__()
        self.station = station
        self._staff_id: str | None = None

    def compose(self) -> ComposeResult:
        """The form, and the result (hidden until enrolled)."""
        with Center(), Vertical(id="enroll-box"):
            yield Static(_("New staff member"), id="enroll-title", markup=False)
            with Vertical(id="enroll-form"):
                yield Static(
                    _(
                        "Type the one-time code from IT and choose a PIN code of 4 to 12 "
                        "digits. If colleagues already use the station, one of them types "
                        "their staff id and PIN code below."
                    ),
                    markup=False,
                )
                yield Label(_("One-time code"), markup=False)
                yield Input(id="enroll-code", max_length=32, restrict=r"[A-Za-z0-9 -]*")
                yield Label(_("Choose a PIN code"), markup=False)
                yield Input(id="new-pin", password=True, max_length=12, restrict=r"[0-9]*")
                yield Label(_("The same PIN code again"), markup=False)
                yield Input(id="new-pin-again", password=True, max_length=12, restrict=r"[0-9]*")
                yield Label(_("Colleague's staff id (not for the first one)"), markup=False)
                yield Input(id="sponsor-id", max_length=64)
                yield Label(_("Colleague's PIN code"), markup=False)
                yield Input(id="sponsor-pin", password=True, max_length=12, restrict=r"[0-9]*")
                with Horizontal(classes="buttons"):
                    yield Button(_("Enroll"), id="enroll-submit", variant="primary")
                    yield Button(_("Back"), id="enroll-back")
            with Vertical(id="enroll-done"):
                yield Static(_("You are enrolled. Your staff id is:"), markup=False)
                yield Static("", id="enroll-staff-id", markup=False)
                yield Static(
                    _("Write it down: you type it with your PIN code to unlock the station."),
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
        """Back to the PIN screen (with the new id, once enrolled)."""
        self.dismiss(self._staff_id)

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
        sponsor_id = self.query_one("#sponsor-id", Input).value.strip()
        for field in _PIN_FIELDS:
            self.query_one(field, Input).value = ""
        if not code:
            self._refused(_("Type the one-time code from IT."), "#enroll-code")
        elif not _PIN.fullmatch(pin):
            self._refused(_("The PIN code must be 4 to 12 digits."), "#new-pin")
        elif pin != again:
            self._refused(_("The two PIN codes are not the same. Type them again."), "#new-pin")
        elif bool(sponsor_id) != bool(sponsor_pin):
            self._refused(_("Type both the colleague's staff id and PIN code."), "#sponsor-id")
        else:
            self.query_one("#enroll-submit", Button).disabled = True
            self._message(_("Enrolling…"))
            self._enroll(code, pin, sponsor_id or None, sponsor_pin or None)

    @work(exclusive=True, group="enroll", exit_on_error=False)
    async def _enroll(
        self, code: str, pin: str, sponsor_id: str | None, sponsor_pin: str | None
    ) -> None:
        try:
            staff_id = await self.station.enroll_staff(
                code, pin, sponsor_staff_id=sponsor_id, sponsor_pin=sponsor_pin
            )
        except StationApiError as error:
            field = "#sponsor-id" if error.code.startswith("sponsor") else "#enroll-code"
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
        self._staff_id = staff_id
        self.query_one("#enroll-form").display = False
        self.query_one("#enroll-staff-id", Static).update(staff_id)
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
