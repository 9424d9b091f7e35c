"""The attended call's status line: waiting or in the call, the GP gone or sending nothing,
the connection, and the station's own microphone and camera.

Its state is handed down from the call screen (``data_bind``): the screen owns it and
changes it as stationd's events arrive; this widget only says it, in the catalogue's words.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from station.i18n import _

__all__ = ["CallStatusLine", "gp_left_lines"]


def gp_left_lines(reason: str, ends_in: float | None) -> tuple[str, str]:
    """The headline and the advice when the GP has left."""
    why = (
        _("The doctor closed the video page.")
        if reason == "left"
        else _("The connection to the doctor is lost.")
    )
    if ends_in is None:
        then = _("The call ends by itself unless the doctor comes back.")
    else:
        then = _(
            "The call ends by itself in {seconds} seconds unless the doctor comes back."
        ).format(seconds=max(0, round(ends_in)))
    advice = _("You can end the call now, or phone the clinic if the consultation was not done.")
    return _("The doctor has left the call"), f"{why} {then} {advice}"


class CallStatusLine(Static):
    """See the module docs."""

    # Each change redraws the line (and may change its height: the GP-left advice wraps).
    admitted: reactive[bool] = reactive(False, layout=True)
    """True once the GP let the station in (else: waiting in the GP's waiting room)."""
    muted: reactive[bool] = reactive(False, layout=True)
    """True while the station's microphone is off."""
    camera_off: reactive[bool] = reactive(False, layout=True)
    """True while the station's camera is off."""
    connection: reactive[str] = reactive("", layout=True)
    """The connection's quality in the catalogue's words ("" while not known)."""
    gp_left: reactive[tuple[str, float | None] | None] = reactive(None, layout=True)
    """(why, seconds until the call ends by itself) while the GP has left; None otherwise."""
    gp_media: reactive[tuple[bool, bool] | None] = reactive(None, layout=True)
    """What the GP says it sends: (video, audio); None while not said."""
    audio_only: reactive[str | None] = reactive(None, layout=True)
    """Why the call is audio only (``choice``, ``poor_connection``); None with video."""

    def render(self) -> Text:
        """The line, from the attributes above."""
        text = Text()
        if self.gp_left is not None:
            headline, advice = gp_left_lines(*self.gp_left)
            text.append(headline, style="bold red")
            text.append("\n" + advice)
        else:
            text.append(
                _("In the call") if self.admitted else _("Waiting for the GP to let you in"),
                style="bold green" if self.admitted else "bold yellow",
            )
        if self.gp_media is not None and self.gp_left is None:
            video, audio = self.gp_media
            if not video and not audio:
                text.append("   " + _("The doctor sends neither picture nor sound"), style="bold")
            elif not video:
                text.append("   " + _("The doctor's camera is off"), style="bold")
        if self.audio_only == "poor_connection":
            text.append("   " + _("Audio only — poor connection"), style="bold yellow")
        elif self.audio_only is not None:
            text.append("   " + _("Audio only"), style="bold yellow")
        if self.connection:
            text.append("   " + _("Connection: {quality}").format(quality=self.connection))
        if self.muted:
            text.append("   " + _("Microphone off"), style="bold red")
        if self.camera_off:
            text.append("   " + _("Camera off"), style="bold red")
        return text
