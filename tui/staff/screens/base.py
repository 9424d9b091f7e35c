"""What every staff screen shares: the app, the records, and one way to handle refusals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual.screen import Screen

from stationapi.errors import StationClientError, StationLocked, StationUnavailable
from tui.i18n import _

if TYPE_CHECKING:
    from tui.staff.app import StaffApp
    from tui.staff.data import StaffRecords

__all__ = ["StaffScreen", "handle_error"]


def handle_error(screen: Screen[Any], error: StationClientError) -> None:
    """A refusal from stationd: 401 locks the UI out at once; anything else is shown."""
    app = cast("StaffApp", screen.app)
    if isinstance(error, StationLocked):
        app.lock_out()
        return
    if isinstance(error, StationUnavailable):
        message = _("The station does not answer. Wait a moment and try again.")
    else:
        message = error.user_message or _("Something went wrong. Try again.")
    screen.notify(message, severity="error", markup=False, timeout=8)


class StaffScreen(Screen[None]):
    """Base of the staff UI's main screens."""

    @property
    def staff_app(self) -> StaffApp:
        """The running staff app."""
        return cast("StaffApp", self.app)

    @property
    def records(self) -> StaffRecords:
        """The unlocked records (a main screen only exists while unlocked)."""
        records = self.staff_app.records
        assert records is not None
        return records

    def failed(self, error: StationClientError) -> None:
        """Handle a refusal (see :func:`handle_error`)."""
        handle_error(self, error)
