"""What every staff screen shares: what it is given, and one way to handle a refusal.

Attributes down, messages up. A main screen is given an :class:`UnlockedSession` (stationd's
port, the records opened with the vault key, the clock, who is logged in) and works with
that alone; it never reaches for the app. What the app decides — which screen shows, the
lock, the exit — a screen asks for with a message (:mod:`tui.staff.messages`). What the app
learns from stationd's event stream it hands down by calling :meth:`StaffScreen.session_moved`
and :meth:`StaffScreen.show_call_status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from textual.screen import ModalScreen, Screen

from station.core.clock import Clock
from tui.staff.data import StaffRecords
from tui.staff.labels import refusal_text
from tui.staff.messages import LockedOut
from tui.staff.station import StaffStation, StationClientError, StationLocked
from tui.video import video_rows

__all__ = ["StaffDialog", "StaffScreen", "UnlockedSession", "keep_below_video", "report_refusal"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class UnlockedSession:
    """What the unlocked staff UI hands each main screen."""

    #: stationd, through the staff UI's port.
    station: StaffStation
    #: The day's records, opened and sealed with the vault key.
    records: StaffRecords
    #: The station's clock (stationd's idle lock and "today" use the same).
    clock: Clock
    #: Who unlocked (the care-record export names them).
    staff_id: str


def report_refusal(screen: Screen[Any], error: StationClientError) -> None:
    """A refusal from stationd: 401 asks the app to lock out at once; anything else is shown."""
    if isinstance(error, StationLocked):
        screen.post_message(LockedOut())
        return
    screen.notify(refusal_text(error), severity="error", markup=False, timeout=8)


def keep_below_video(dialog: ModalScreen[Any]) -> int:
    """Centre ``dialog`` in the rows the kiosk's video window leaves free, when it opens over
    a screen the video covers (the call: ``UNDER_VIDEO``); the rows it keeps clear (0 in a
    terminal, the demo, tests, or over any other screen).

    In the kiosk the GP's video window covers the top 60 % of the screen during a call; a
    dialog centred on the whole screen ("End the call?", the GP's code) was drawn behind it.
    The dialog gets the class ``below-video`` so it can show a compact form there.
    """
    covered = any(getattr(screen, "UNDER_VIDEO", False) for screen in dialog.app.screen_stack)
    rows = video_rows(dialog.app.size.height) if covered else 0
    dialog.styles.padding = (rows, 0, 0, 0)
    dialog.set_class(rows > 0, "below-video")
    return rows


class StaffDialog(ModalScreen[_T]):
    """A dialog of the staff UI: over the call it keeps below the kiosk's video window
    (:func:`keep_below_video`), on opening and when the terminal changes size. (Textual calls
    a subclass's own ``on_mount`` as well as this one.)"""

    def on_mount(self) -> None:
        """Over the call: below the video."""
        keep_below_video(self)

    def on_resize(self) -> None:
        """The terminal changed size: stay below the video."""
        keep_below_video(self)


class StaffScreen(Screen[None]):
    """Base of the staff UI's main screens (Today, pre-call check, call, wrap-up)."""

    def __init__(self, session: UnlockedSession) -> None:
        super().__init__()
        self.session = session

    @property
    def station(self) -> StaffStation:
        """stationd, through the port."""
        return self.session.station

    @property
    def records(self) -> StaffRecords:
        """The unlocked records."""
        return self.session.records

    def failed(self, error: StationClientError) -> None:
        """Handle a refusal (see :func:`report_refusal`)."""
        report_refusal(self, error)

    async def ask(self, dialog: ModalScreen[_T]) -> _T:
        """Show ``dialog`` over this screen and wait for its answer (call from a worker).

        The screen's own dialogs are the one thing it pushes itself: where they go is no
        decision of the app's, and the answer comes back typed (``ModalScreen[T]``).
        """
        return await self.app.push_screen_wait(dialog)

    def session_moved(self, state: str, appointment_id: str | None, call_admitted: bool) -> None:
        """stationd's session moved, and this screen stays (the app calls it; nothing here)."""

    def show_call_status(self, data: Mapping[str, Any]) -> None:
        """The call engine reported a status (the app calls it; only the call screen cares)."""
