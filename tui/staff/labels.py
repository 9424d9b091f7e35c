"""The staff UI's words for stationd's and the domain's codes, from the catalogue.

Statuses, call types, connection quality, the pre-call check's names, a note's outcome and
its hand-off to the care record, a screen's heading for its appointment, a refusal from
stationd: the code stays English on the wire and in the store; what a person reads is
looked up here, once, for every screen and widget that shows it.
"""

from __future__ import annotations

from rich.text import Text

from station.i18n import _
from tui.localtime import local
from tui.safe_text import literal
from tui.staff.data import AppointmentView, ExportState
from tui.staff.station import StationClientError, StationUnavailable

__all__ = [
    "appointment_heading",
    "check_label",
    "export_label",
    "outcomes",
    "quality_label",
    "refusal_text",
    "status_label",
    "type_label",
]


def status_label(status: str) -> str:
    """A queue entry's or consultation's status in the catalogue's words."""
    labels = {
        "waiting": _("Waiting"),
        "in_call": _("In the call"),
        "done": _("Done"),
        "skipped": _("Skipped"),
        "booked": _("Booked"),
        "ended": _("Ended"),
        "documented": _("Documented"),
        "cancelled": _("Cancelled"),
    }
    return labels.get(status, status)


def type_label(kind: str) -> str:
    """The MedCom call type in the catalogue's words."""
    return {
        "video_consultation": _("Video consultation"),
        "assisted_consultation": _("Assisted video consultation"),
        "video_conference": _("Video conference"),
    }.get(kind, kind)


def quality_label(level: str) -> str:
    """The connection quality in the catalogue's words."""
    return {
        "good": _("Good"),
        "fair": _("Fair"),
        "poor": _("Poor"),
        "lost": _("Lost"),
    }.get(level, level)


def check_label(name: str) -> str:
    """A check's name in the catalogue's words."""
    return {
        "camera": _("Camera"),
        "microphone": _("Microphone"),
        "loudspeaker": _("Loudspeaker"),
        "button": _("Privacy button"),
        "led": _("Lamp"),
        "hub": _("Network (municipal server)"),
        "turn": _("Video server (TURN)"),
        "network": _("Network"),
        "health": _("Equipment"),
    }.get(name, name)


def outcomes() -> tuple[tuple[str, str], ...]:
    """Outcome codes stored in the note, with their labels in the catalogue's words."""
    return (
        ("completed", _("Consultation completed")),
        ("follow_up", _("Follow-up agreed")),
        ("referred", _("Referred onwards")),
        ("not_completed", _("Not completed")),
    )


def export_label(state: ExportState | None) -> Text:
    """A note's hand-off to the care record in one short word (the EOJ column)."""
    if state is None:
        return Text("")
    labels: dict[str, tuple[str, str]] = {
        "pending": (_("pending"), "yellow"),
        "delivered": (_("delivered"), "green"),
        "failed": (_("error"), "bold red"),
        "not_sent": (_("not sent"), "bold red"),
        "summary": (_("copy"), ""),
    }
    label, style = labels[state]
    return Text(label, style)


def appointment_heading(template: str, appointment: AppointmentView) -> Text:
    """A screen's heading for ``appointment``: ``template`` (from the catalogue) filled with
    its ``{time}``, ``{clinic}`` and ``{kind}``, literal and cut to the screen's width."""
    title = template.format(
        time=f"{local(appointment.starts_at):%H:%M}",
        clinic=appointment.clinic_name,
        kind=type_label(appointment.consultation_type),
    )
    return literal(title, 96, style="bold")


def refusal_text(error: StationClientError) -> str:
    """What to tell staff when stationd refused or did not answer (stationd's own words when
    it gave some)."""
    if isinstance(error, StationUnavailable):
        return _("The station does not answer. Wait a moment and try again.")
    return error.user_message or _("Something went wrong. Try again.")
