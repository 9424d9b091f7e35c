"""The help for the screen in front of the care worker (F1 or ``?``): the same text as the
station's printed quick guide (:mod:`tui.staff.help`), numbered steps, closed with Escape,
F1, ``?`` or the button."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from station.i18n import _
from tui.staff.help import HelpTopic
from tui.staff.screens.base import StaffDialog

__all__ = ["HelpScreen"]


class HelpScreen(StaffDialog[None]):
    """One topic's steps over the screen they explain."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,question_mark", "close", _("Close"), id="help.close"),
    ]

    DEFAULT_CSS = """
    HelpScreen .dialog.help { width: 90%; max-width: 100; height: auto; }
    HelpScreen .help-step { height: auto; margin-bottom: 1; }
    /* Over the call in the kiosk: the rows below the video, steps only (Esc or F1 closes). */
    HelpScreen.below-video .dialog.help { width: 100%; max-width: 100%; border: none; }
    HelpScreen.below-video .help-step { margin-bottom: 0; }
    HelpScreen.below-video .dialog-help, HelpScreen.below-video .buttons { display: none; }
    """

    def __init__(self, topic: HelpTopic) -> None:
        super().__init__()
        self.topic = topic

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Static(_("Help: {title}").format(title=self.topic.title), classes="title")
            for number, step in enumerate(self.topic.steps, 1):
                yield Static(f"{number}. {step}", classes="help-step", markup=False)
            yield Static(
                _("The station's printed quick guide says the same."), classes="dialog-help"
            )
            with Horizontal(classes="buttons"):
                yield Button(_("Close"), id="close", variant="primary")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Back to the screen the help was about."""
        self.dismiss(None)
