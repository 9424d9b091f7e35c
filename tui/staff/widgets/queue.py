"""One appointment's queue as a table: position, name, birth date, room, CPR, status, reason.

A resident whose sealed fields did not open is shown as such, not hidden. Everything a person
typed is shown literally and cut to its column (:mod:`tui.safe_text`). A row's key is the
queue entry's id.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from station.i18n import _
from tui.safe_text import literal
from tui.staff.data import AppointmentView, ResidentView
from tui.staff.labels import status_label

__all__ = ["QueueTable"]


class QueueTable(DataTable[Text]):
    """The residents queued for one appointment (see the module docs)."""

    DEFAULT_CSS = """
    QueueTable {
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        """The columns, with fixed widths."""
        for label, width in (
            ("#", 3),
            (_("Name"), 28),
            (_("Born"), 10),
            (_("Room"), 8),
            (_("CPR"), 11),
            (_("Status"), 10),
            (_("Reason"), 14),
        ):
            self.add_column(label, width=width)

    def show(self, appointment: AppointmentView | None, entry: str | None = None) -> None:
        """Redraw with ``appointment``'s queue (empty for None); the cursor on ``entry``."""
        self.clear()
        if appointment is None:
            return
        for index, r in enumerate(appointment.residents, start=1):
            name = literal(r.name, 28) if r.readable else Text(_("(cannot be opened)"))
            self.add_row(
                Text(str(index)),
                name,
                literal(r.birth_date, 10),
                literal(r.room, 8),
                literal(r.cpr, 11),
                Text(status_label(r.status)),
                literal(r.reason, 14),
                key=r.entry_id,
            )
        ids = [r.entry_id for r in appointment.residents]
        if entry in ids:
            self.move_cursor(row=ids.index(entry))

    def resident(self, appointment: AppointmentView | None) -> ResidentView | None:
        """The resident of ``appointment`` under the cursor."""
        if appointment is None or not appointment.residents:
            return None
        return appointment.residents[min(self.cursor_row, len(appointment.residents) - 1)]
