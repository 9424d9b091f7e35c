"""The attended call's buttons: previous and next resident, microphone, camera, audio only,
end, leave.

The microphone and camera buttons say what pressing them does, from the state the call
screen hands down (``data_bind``); every press goes up as the button's own ``Pressed``.
"""

from __future__ import annotations

import contextlib

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.widgets import Button

from station.i18n import _

__all__ = ["CallControls"]


class CallControls(Horizontal):
    """See the module docs."""

    DEFAULT_CSS = """
    CallControls {
        height: auto;
    }
    """

    muted: reactive[bool] = reactive(False)
    """True while the station's microphone is off (the button then turns it on)."""
    camera_off: reactive[bool] = reactive(False)
    """True while the station's camera is off (the button then turns it on)."""
    audio_only: reactive[str | None] = reactive(None)
    """Why the call is audio only (``choice``, ``poor_connection``); None with video."""

    def compose(self) -> ComposeResult:
        """Seven buttons, in the order staff use them."""
        yield Button(_("Previous"), id="btn-previous")
        yield Button(_("Next"), id="btn-next")
        yield Button(
            _("Turn the microphone on") if self.muted else _("Turn the microphone off"),
            id="btn-mute",
        )
        yield Button(
            _("Turn the camera on") if self.camera_off else _("Turn the camera off"),
            id="btn-camera",
        )
        yield Button(_audio_only_label(self.audio_only), id="btn-audio-only")
        yield Button(_("End call"), id="btn-end", variant="error")
        yield Button(_("Leave the room"), id="btn-leave", variant="warning")

    def watch_muted(self, muted: bool) -> None:
        """Relabel the microphone button."""
        with contextlib.suppress(NoMatches):  # not composed yet: composed with this label
            self.query_one("#btn-mute", Button).label = (
                _("Turn the microphone on") if muted else _("Turn the microphone off")
            )

    def watch_camera_off(self, off: bool) -> None:
        """Relabel the camera button."""
        with contextlib.suppress(NoMatches):
            self.query_one("#btn-camera", Button).label = (
                _("Turn the camera on") if off else _("Turn the camera off")
            )

    def watch_audio_only(self, reason: str | None) -> None:
        """Relabel the audio-only button."""
        with contextlib.suppress(NoMatches):
            self.query_one("#btn-audio-only", Button).label = _audio_only_label(reason)


def _audio_only_label(reason: str | None) -> str:
    # Chosen: the button brings video back. Automatic or none: it chooses audio only.
    return _("Show video again") if reason == "choice" else _("Audio only")
