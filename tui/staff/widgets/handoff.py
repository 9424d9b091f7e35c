"""One note's hand-off to the care record (EOJ), in words: delivered, waiting, not yet, or a
plain-text summary to copy when the station has no EOJ connection.

The screen works out the state and the summary and hands them down (:meth:`HandoffPanel.show`);
the summary is read-only text staff can select or copy (the screen's "Copy text" button).
Nothing here claims a note was sent that was not.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static, TextArea

from station.i18n import _
from tui.staff.data import ExportState

__all__ = ["HandoffPanel"]


class HandoffPanel(Vertical):
    """See the module docs. Hidden while the selected resident has no note."""

    DEFAULT_CSS = """
    HandoffPanel {
        height: auto;
    }
    HandoffPanel #export-help {
        height: auto;
    }
    HandoffPanel #export-summary {
        height: 8;
    }
    """

    def compose(self) -> ComposeResult:
        """One line of help, and the summary (shown only when there is one)."""
        yield Static("", id="export-help")
        yield TextArea(id="export-summary", read_only=True, soft_wrap=True)

    def on_mount(self) -> None:
        """Nothing to say until a note is selected."""
        self.query_one("#export-help").display = False
        self.query_one("#export-summary").display = False

    @property
    def summary(self) -> str:
        """The summary shown (to copy)."""
        return self.query_one("#export-summary", TextArea).text

    def show(
        self, state: ExportState | None, summary: str = "", *, unavailable: bool = False
    ) -> None:
        """Say where the note is; ``summary`` to copy (``unavailable``: the EOJ link is broken)."""
        help_line = self.query_one("#export-help", Static)
        area = self.query_one("#export-summary", TextArea)
        area.display = bool(summary)
        if summary:
            if unavailable:
                line = _(
                    "The connection to the care record is not working. Copy the text below "
                    "into the care record (EOJ) and tell IT. It has not been sent."
                )
            else:
                line = _("Copy the text below into the care record (EOJ). It has not been sent.")
            help_line.update(Text(line, style="bold"))
            if area.text != summary:
                area.load_text(summary)
        elif state in ("failed", "not_sent"):
            help_line.update(
                Text(
                    _("The note has not reached the care record yet. Press “Try again”."),
                    style="bold red",
                )
            )
        elif state == "pending":
            help_line.update(Text(_("The note is waiting to be delivered to the care record.")))
        elif state == "delivered":
            help_line.update(Text(_("The note is delivered to the care record."), style="green"))
        else:
            help_line.update("")
        help_line.display = state is not None
