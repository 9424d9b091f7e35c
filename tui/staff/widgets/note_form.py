"""The wrap-up's note form: who took part, the outcome, whether staff took part, the text.

What the care record (EOJ) needs from one resident's call, beside what the appointment
already says. The form only collects; the screen checks the text and seals and stores it.
Focus runs in reading order: who took part, outcome, staff, text.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Select, TextArea

from station.i18n import _
from tui.staff.data import NoteDraft
from tui.staff.labels import outcomes

__all__ = ["NoteForm"]


class NoteForm(Vertical):
    """See the module docs."""

    DEFAULT_CSS = """
    NoteForm {
        height: auto;
    }
    NoteForm #note-text {
        height: 5;
    }
    """

    def compose(self) -> ComposeResult:
        """Participants, outcome and staff in a row; the note below."""
        with Horizontal(classes="row"):
            with Vertical():
                yield Label(_("Who took part"), markup=False)
                yield Input(id="participants", max_length=200)
            with Vertical():
                yield Label(_("Outcome"), markup=False)
                yield Select(
                    [(label, code) for code, label in outcomes()],
                    id="outcome",
                    value="completed",
                    allow_blank=False,
                )
            yield Checkbox(_("Staff took part"), value=True, id="staff-took-part")
        yield Label(_("Note for the care record"), markup=False)
        yield TextArea(id="note-text", soft_wrap=True)

    def on_mount(self) -> None:
        """Who usually takes part, filled in."""
        self.query_one("#participants", Input).value = _("Resident, GP, staff")

    @property
    def text(self) -> str:
        """The note as typed (trimmed)."""
        return self.query_one("#note-text", TextArea).text.strip()

    def clear_text(self) -> None:
        """Empty the note (it is saved); the rest stays for the next resident."""
        self.query_one("#note-text", TextArea).text = ""

    def staff_always_take_part(self) -> None:
        """MedCom's assisted consultation and conference have staff in them by definition."""
        took_part = self.query_one("#staff-took-part", Checkbox)
        took_part.value = True
        took_part.disabled = True

    def draft(self, entry_id: str | None) -> NoteDraft:
        """The note for the resident ``entry_id`` (None: for the call as a whole)."""
        return NoteDraft(
            entry_id=entry_id,
            participants=self.query_one("#participants", Input).value.strip(),
            outcome=str(self.query_one("#outcome", Select).value),
            text=self.text,
            staff_took_part=self.query_one("#staff-took-part", Checkbox).value,
        )
