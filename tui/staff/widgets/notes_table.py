"""The wrap-up's residents: name, status, the note so far, and its hand-off to the care record.

One row per resident of the call; the EOJ column is updated alone while the outbox delivers
(:meth:`NotesTable.set_handoff`), so the cursor stays where staff left it. Names and notes are
shown literally and cut to their column (:mod:`tui.safe_text`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import DataTable

from station.i18n import _
from tui.safe_text import literal
from tui.staff.data import ExportState, ResidentView
from tui.staff.labels import export_label, status_label

__all__ = ["NoteRow", "NotesTable"]


@dataclass(frozen=True, slots=True)
class NoteRow:
    """One resident's row: who, the latest note's text (None: no note yet), its hand-off."""

    resident: ResidentView
    note: str | None = field(repr=False, default=None)
    handoff: ExportState | None = None


class NotesTable(DataTable[Text]):
    """See the module docs. A row's key is the queue entry's id."""

    DEFAULT_CSS = """
    NotesTable {
        height: 6;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")

    def on_mount(self) -> None:
        """The columns, with fixed widths (the EOJ column by key, to update it alone)."""
        for key, label, width in (
            ("name", _("Name"), 34),
            ("status", _("Status"), 12),
            ("note", _("Note"), 30),
            ("eoj", _("EOJ"), 10),
        ):
            self.add_column(label, width=width, key=key)

    def show(self, rows: Sequence[NoteRow], entry: str | None = None) -> None:
        """Redraw with ``rows``; the cursor on ``entry`` if it is there."""
        self.clear()
        for row in rows:
            r = row.resident
            self.add_row(
                literal(r.name, 34) if r.readable else Text(_("(cannot be opened)")),
                Text(status_label(r.status)),
                literal(row.note, 30) if row.note is not None else Text(_("(no note yet)"), "dim"),
                export_label(row.handoff),
                key=r.entry_id,
            )
        ids = [row.resident.entry_id for row in rows]
        if entry in ids:
            self.move_cursor(row=ids.index(entry))

    def set_handoff(self, entry_id: str, state: ExportState | None) -> None:
        """Update one resident's EOJ column."""
        with contextlib.suppress(KeyError):  # a row redrawn meanwhile
            self.update_cell(entry_id, "eoj", export_label(state))
