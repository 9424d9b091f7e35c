"""The reminder that a call still needs its note: shown on Today until the wrap-up is done.

A call that ended while the station was locked (the staff UI was not running) leaves its
wrap-up pending; this banner names it (time and clinic) and the key that opens it.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Static

from station.i18n import _
from tui.localtime import local
from tui.safe_text import literal
from tui.staff.data import AppointmentView

__all__ = ["WrapUpReminder"]


class WrapUpReminder(Static):
    """Hidden while no wrap-up is pending."""

    DEFAULT_CSS = """
    WrapUpReminder {
        background: $warning 30%;
        color: $text;
        padding: 0 1;
        height: auto;
    }
    """

    def on_mount(self) -> None:
        """Hidden until there is something to say."""
        self.display = False

    def show(self, pending: Sequence[AppointmentView], count: int) -> None:
        """``count`` wrap-ups are pending; ``pending`` are those among today's appointments."""
        self.display = count > 0
        if not count:
            self.update("")
            return
        when = ", ".join(f"{local(a.starts_at):%H:%M} {a.clinic_name}" for a in pending)
        self.update(
            literal(
                _("A call needs its note for the care record: {which}. Press W.").format(
                    which=when or str(count)
                ),
                200,
            )
        )
