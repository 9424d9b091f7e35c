"""Log-in: the short staff number ("Personale-nummer") and the PIN, masked; back-off shown
plainly; never says which was wrong.

The screen unlocks through its port (:class:`~tui.staff.station.StaffStation`) and hands the
vault key up in :class:`PinScreen.Unlocked`: the app gives it to the records, its one holder,
and shows the session. Escape asks the app to go back to the lock screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, Label, Static

from station.i18n import _
from station.keys.vault import VaultKey
from tui.staff.messages import LockRequested
from tui.staff.screens.enroll import EnrollScreen
from tui.staff.station import (
    StaffStation,
    StationApiError,
    StationClientError,
    StationUnavailable,
)

__all__ = ["PinScreen"]


class PinScreen(Screen[None]):
    """Unlock with a staff number and PIN (see the module docs)."""

    #: The help F1 shows here (:mod:`tui.staff.help`).
    HELP_TOPIC: ClassVar[str] = "unlock"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", _("Back"), id="pin.back"),
    ]

    @dataclass
    class Unlocked(Message):
        """stationd unlocked the station for ``staff_id`` (the pseudonymous id the number
        belongs to) and handed over the vault key."""

        staff_id: str
        vault: VaultKey = field(repr=False)

    def __init__(self, station: StaffStation) -> None:
        super().__init__()
        self.station = station
        self._wait_timer: Timer | None = None
        self._wait_left = 0

    def compose(self) -> ComposeResult:
        """Title, two fields, one button, one message line."""
        with Center(), Vertical(id="pin-box"):
            yield Static(_("Unlock the station"), id="pin-title", markup=False)
            yield Label(_("Staff number"), markup=False)
            yield Input(
                id="staff-number",
                max_length=4,
                restrict=r"[0-9]*",
                placeholder=_("Staff number"),
            )
            yield Label(_("PIN code"), markup=False)
            yield Input(
                id="pin",
                password=True,
                max_length=12,
                restrict=r"[0-9]*",
                placeholder="••••",
            )
            yield Button(_("Unlock"), id="unlock", variant="primary")
            yield Static("", id="pin-message", markup=False)
            yield Button(_("New staff member"), id="enroll")
        yield Footer()

    def on_mount(self) -> None:
        """Start in the staff number field."""
        self.query_one("#staff-number", Input).focus()

    def action_back(self) -> None:
        """Back to the lock screen, without unlocking."""
        self.post_message(LockRequested())

    @on(Button.Pressed, "#enroll")
    def _enroll(self) -> None:
        # The screen's own sub-screen (its answer is the new staff id): no app decision.
        self.app.push_screen(EnrollScreen(self.station), self._enrolled)

    def _enrolled(self, staff_number: str | None) -> None:
        if staff_number:
            self.query_one("#staff-number", Input).value = staff_number
            self.query_one("#pin", Input).focus()
            self._message(_("Type your new PIN code to unlock."))

    @on(Input.Submitted, "#staff-number")
    def _to_pin(self) -> None:
        self.query_one("#pin", Input).focus()

    @on(Input.Submitted, "#pin")
    @on(Button.Pressed, "#unlock")
    def _submit(self) -> None:
        if self._wait_left > 0:
            return
        staff_number = self.query_one("#staff-number", Input).value.strip()
        pin_input = self.query_one("#pin", Input)
        pin = pin_input.value
        pin_input.value = ""
        if not staff_number or not pin:
            self._message(_("Type your staff number and PIN code."))
            return
        self.query_one("#unlock", Button).disabled = True
        self._message(_("Checking the PIN code…"))
        self._unlock(staff_number, pin)

    @work(exclusive=True, group="unlock", exit_on_error=False)
    async def _unlock(self, staff_number: str, pin: str) -> None:
        try:
            staff_id, vault = await self.station.unlock(staff_number, pin)
        except ValidationError:
            # A malformed number or PIN gets the same answer as a wrong one.
            self._refused(_("Wrong staff number or PIN code."))
        except StationApiError as error:
            if error.status == 429 and error.retry_after_seconds:
                self._back_off(math.ceil(error.retry_after_seconds))
            elif error.status in (400, 401, 422):
                self._refused(_("Wrong staff number or PIN code."))
            else:
                self._refused(error.user_message or _("The station could not be unlocked."))
        except StationUnavailable:
            self._refused(_("The station does not answer. Wait a moment and try again."))
        except StationClientError as error:
            self._refused(error.user_message or _("The station could not be unlocked."))
        else:
            self.post_message(self.Unlocked(staff_id, vault))

    def _refused(self, text: str) -> None:
        self._message(text, error=True)
        self.query_one("#unlock", Button).disabled = False
        self.query_one("#pin", Input).focus()

    def _back_off(self, seconds: int) -> None:
        self._wait_left = seconds
        self._show_wait()
        if self._wait_timer is not None:
            self._wait_timer.stop()
        self._wait_timer = self.set_interval(1.0, self._tick_wait)

    def _tick_wait(self) -> None:
        self._wait_left = max(0, self._wait_left - 1)
        if self._wait_left == 0:
            if self._wait_timer is not None:
                self._wait_timer.stop()
                self._wait_timer = None
            self._refused(_("You can try again now."))
            return
        self._show_wait()

    def _show_wait(self) -> None:
        text = _("Too many wrong attempts. Try again in {seconds} seconds.").format(
            seconds=self._wait_left
        )
        self._message(text, error=True)

    def _message(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#pin-message", Static)
        message.update(text)
        message.set_class(error, "error")
