"""PIN entry: staff id and PIN, masked; back-off shown plainly; never says which was wrong.

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
    """Unlock with a staff id and PIN (see the module docs)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", _("Back"), id="pin.back"),
    ]

    @dataclass
    class Unlocked(Message):
        """stationd unlocked the station for ``staff_id`` and handed over the vault key."""

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
            yield Label(_("Staff id"), markup=False)
            yield Input(id="staff-id", max_length=64, placeholder=_("Staff id"))
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
        """Start in the staff id field."""
        self.query_one("#staff-id", Input).focus()

    def action_back(self) -> None:
        """Back to the lock screen, without unlocking."""
        self.post_message(LockRequested())

    @on(Button.Pressed, "#enroll")
    def _enroll(self) -> None:
        # The screen's own sub-screen (its answer is the new staff id): no app decision.
        self.app.push_screen(EnrollScreen(self.station), self._enrolled)

    def _enrolled(self, staff_id: str | None) -> None:
        if staff_id:
            self.query_one("#staff-id", Input).value = staff_id
            self.query_one("#pin", Input).focus()
            self._message(_("Type your new PIN code to unlock."))

    @on(Input.Submitted, "#staff-id")
    def _to_pin(self) -> None:
        self.query_one("#pin", Input).focus()

    @on(Input.Submitted, "#pin")
    @on(Button.Pressed, "#unlock")
    def _submit(self) -> None:
        if self._wait_left > 0:
            return
        staff_id = self.query_one("#staff-id", Input).value.strip()
        pin_input = self.query_one("#pin", Input)
        pin = pin_input.value
        pin_input.value = ""
        if not staff_id or not pin:
            self._message(_("Type your staff id and PIN code."))
            return
        self.query_one("#unlock", Button).disabled = True
        self._message(_("Checking the PIN code…"))
        self._unlock(staff_id, pin)

    @work(exclusive=True, group="unlock", exit_on_error=False)
    async def _unlock(self, staff_id: str, pin: str) -> None:
        try:
            vault = await self.station.unlock(staff_id, pin)
        except ValidationError:
            # A malformed id or PIN gets the same answer as a wrong one.
            self._refused(_("Wrong staff id or PIN code."))
        except StationApiError as error:
            if error.status == 429 and error.retry_after_seconds:
                self._back_off(math.ceil(error.retry_after_seconds))
            elif error.status in (400, 401, 422):
                self._refused(_("Wrong staff id or PIN code."))
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
