"""The day's appointments as a table: time, GP clinic, call type, status, queue length.

Fixed column widths, so a long clinic name never pushes the layout apart; names are shown
literally (:mod:`tui.safe_text`). The screen hands the rows down (:meth:`show`); a row's key
is the appointment's id, and the table's own ``RowHighlighted``/``RowSelected`` go up.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from station.i18n import _
from tui.localtime import local
from tui.safe_text import literal
from tui.staff.data import AppointmentView
from tui.staff.labels import status_label, type_label

__all__ = ["AppointmentTable"]


class AppointmentTable(DataTable[Text]):
    """One row per appointment of the day (see the module docs)."""

    DEFAULT_CSS = """
    AppointmentTable {
        height: 8;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        """The columns, with fixed widths."""
        for label, width in (
            (_("Time"), 11),
            (_("GP clinic"), 30),
            (_("Type"), 28),
            (_("Status"), 12),
            (_("Queue"), 6),
        ):
            self.add_column(label, width=width)

    def show(self, appointments: Sequence[AppointmentView], select: str | None) -> str | None:
        """Redraw with ``appointments``; the cursor on ``select`` if it is there.

        Returns the id of the appointment under the cursor (None: no appointments).
        """
        self.clear()
        for a in appointments:
            start, end = local(a.starts_at), local(a.ends_at)
            self.add_row(
                Text(f"{start:%H:%M}-{end:%H:%M}"),
                literal(a.clinic_name, 30),
                Text(type_label(a.consultation_type)),
                Text(status_label(a.status)),
                Text(str(len(a.residents))),
                key=a.id,
            )
        ids = [a.id for a in appointments]
        if select in ids:
            self.move_cursor(row=ids.index(select))
        return appointments[self.cursor_row].id if appointments else None
