"""Who is in front of the camera now, and the round: every resident of the call, in order.

The call screen hands down the round (:attr:`RoundPanel.residents`) and who is on camera
(:attr:`RoundPanel.current`); names are shown literally (:mod:`tui.safe_text`).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.widgets import Static

from station.i18n import _
from tui.safe_text import literal
from tui.staff.data import ResidentView
from tui.staff.labels import status_label

__all__ = ["RoundPanel"]


class RoundPanel(Vertical):
    """See the module docs. Empty until the round is handed down."""

    DEFAULT_CSS = """
    RoundPanel {
        height: 1fr;
    }
    RoundPanel #now-label {
        color: $text-muted;
    }
    RoundPanel #now {
        height: 2;
        text-style: bold;
    }
    RoundPanel #round {
        height: 1fr;
    }
    """

    residents: reactive[tuple[ResidentView, ...] | None] = reactive(None, init=False)
    """The round in queue order (None: not read yet)."""
    current: reactive[str | None] = reactive(None, init=False)
    """The queue entry in front of the camera (None: nobody, the round is done)."""

    def compose(self) -> ComposeResult:
        """The label, who is on camera, the round."""
        yield Static("", id="now-label")
        yield Static("", id="now")
        yield Static("", id="round")

    def on_mount(self) -> None:
        """Draw what was handed down before the panel was composed."""
        self._draw()

    def watch_residents(self) -> None:
        """A new round: redraw."""
        self._draw()

    def watch_current(self) -> None:
        """Someone else is on camera: redraw."""
        self._draw()

    def _draw(self) -> None:
        residents = self.residents
        if residents is None:
            return
        try:
            self.query_one("#now-label", Static).update(Text(_("In front of the camera now")))
        except NoMatches:
            return  # not composed yet: drawn at mount
        current = next((r for r in residents if r.entry_id == self.current), None)
        now = Text()
        if current is None:
            now.append(_("Nobody (the round is done)"), style="italic")
        else:
            now.append_text(literal(current.name, 60, style="bold"))
            details = [x for x in (current.birth_date, current.room) if x]
            if details:
                now.append("  ")
                now.append_text(literal(" · ".join(details), 30, style="dim"))
        self.query_one("#now", Static).update(now)
        lines = Text()
        for index, r in enumerate(residents, start=1):
            marker = "▶ " if current is not None and r.entry_id == current.entry_id else "  "
            lines.append(f"{marker}{index:>2}. ")
            lines.append_text(literal(r.name, 40))
            lines.append(f"  {status_label(r.status)}\n", style="dim")
        self.query_one("#round", Static).update(lines)
