"""The lock screen's widgets: the clock, the appointment list, the reminder, the QR code, and
the fault banner (a part of the station that is missing or not working).

Every text that comes from outside the program (a clinic's name from the configuration, an
enrollment code) goes through :func:`tui.safe_text.clean` (controls made visible, cut to fit)
and into a ``rich.text.Text``, never parsed as markup: a clinic called ``[bold]`` shows as
``[bold]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Final

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from station.i18n import _
from tui.qr import qr_lines
from tui.safe_text import clean

__all__ = [
    "DUE_SOON",
    "Appointment",
    "AppointmentList",
    "Fault",
    "FaultBanner",
    "QrCode",
    "ReminderBanner",
    "StationClock",
    "due_soon",
    "qr_lines",
]

#: An appointment starting within this is "due soon": the reminder shows.
DUE_SOON: Final = timedelta(minutes=15)
#: Longest clinic name shown; the layout stays whole whatever the configuration holds.
MAX_NAME: Final = 60


@dataclass(frozen=True, slots=True)
class Appointment:
    """One coming appointment as the lock screen shows it: times and the clinic only."""

    starts_at: datetime
    ends_at: datetime
    clinic_name: str


def due_soon(appointments: Sequence[Appointment], now: datetime) -> Appointment | None:
    """The first appointment that has not ended and starts within :data:`DUE_SOON`."""
    for item in appointments:
        if item.ends_at > now and item.starts_at - now <= DUE_SOON:
            return item
    return None


def _hhmm(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


class StationClock(Static):
    """The time (hours:minutes) and the date, from the injected clock."""

    now: reactive[datetime | None] = reactive(None)
    """The current time; the app sets it every second."""

    def __init__(self, zone: tzinfo, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.zone = zone

    def watch_now(self, now: datetime | None) -> None:
        """Redraw for the new time."""
        if now is None:
            self.update("")
            return
        local = now.astimezone(self.zone)
        text = Text(local.strftime("%H:%M"), style="bold")
        text.append("\n")
        text.append(_date_text(local), style="")
        self.update(text)


def _date_text(local: datetime) -> str:
    # Named through the catalogue (not strftime's %A): the process locale is not Danish.
    weekdays = (
        _("Monday"),
        _("Tuesday"),
        _("Wednesday"),
        _("Thursday"),
        _("Friday"),
        _("Saturday"),
        _("Sunday"),
    )
    months = (
        _("January"),
        _("February"),
        _("March"),
        _("April"),
        _("May"),
        _("June"),
        _("July"),
        _("August"),
        _("September"),
        _("October"),
        _("November"),
        _("December"),
    )
    return _("{weekday} {day}. {month}").format(
        weekday=weekdays[local.weekday()], day=local.day, month=months[local.month - 1]
    )


class AppointmentList(Static):
    """Today's and the coming appointments: start–end and the GP clinic, nothing else."""

    def __init__(self, zone: tzinfo, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.zone = zone

    def show(
        self, appointments: Sequence[Appointment], now: datetime | None, limit: int = 5
    ) -> None:
        """Show up to ``limit`` appointments (the first due-soon one highlighted)."""
        text = Text()
        text.append(_("Booked video consultations"), style="bold")
        text.append("\n")
        if not appointments:
            text.append(_("No booked consultations."), style="italic")
            self.update(text)
            return
        soon = due_soon(appointments, now) if now is not None else None
        for item in appointments[:limit]:
            style = "bold reverse" if item is soon else ""
            text.append("\n")
            line = Text(
                f"{_hhmm(item.starts_at, self.zone)}–{_hhmm(item.ends_at, self.zone)}  ",
                style=style,
            )
            # Outside text: appended as plain Text, never markup.
            line.append(clean(item.clinic_name, MAX_NAME), style=style)
            text.append_text(line)
        if len(appointments) > limit:
            text.append("\n")
            text.append(_("and {count} more").format(count=len(appointments) - limit))
        self.update(text)


class ReminderBanner(Static):
    """The impossible-to-miss reminder of a consultation that starts within 15 minutes."""

    def show(self, item: Appointment | None, now: datetime | None, zone: tzinfo) -> None:
        """Show the reminder for ``item`` (hidden for None)."""
        self.display = item is not None and now is not None
        if item is None or now is None:
            self.update("")
            return
        minutes = max(0, int((item.starts_at - now).total_seconds() // 60))
        text = Text()
        if item.starts_at <= now:
            text.append(_("The video consultation has started!"), style="bold")
        elif minutes == 0:
            text.append(_("Video consultation in less than a minute!"), style="bold")
        else:
            text.append(
                _("Video consultation in {minutes} min").format(minutes=minutes), style="bold"
            )
        text.append("\n")
        text.append(_hhmm(item.starts_at, zone) + "  ")
        text.append(clean(item.clinic_name, MAX_NAME))
        text.append("\n")
        text.append(_("Staff: log in and get ready."))
        self.update(text)
        # Pulsing, driven by the injected clock (deterministic in tests).
        self.set_class(now.second % 2 == 0, "-pulse")


@dataclass(frozen=True, slots=True)
class Fault:
    """A health check that is not ok, as the lock screen needs it: which, and whether the part
    is missing (not there) rather than failing (there, but not working)."""

    name: str
    missing: bool


#: The order faults are listed in: the privacy button first (it is the lock's first line).
_FAULT_ORDER: Final = ("button", "camera", "microphone", "loudspeaker", "led", "speech")


def _fault_text(fault: Fault) -> tuple[str, str]:
    """The catalogue's text for one fault, and the key that merges the speakerphone's two
    checks (microphone and loudspeaker are one device) into one line."""
    if fault.name == "button":
        return "button", _(
            "The privacy button is not working. Lock the station on the screen, and hold no "
            "private calls until it works. Tell IT."
        )
    if fault.name == "camera":
        if fault.missing:
            return "camera", _(
                "No camera found. Check that the camera's cable is plugged in. "
                "No video calls until it is."
            )
        return "camera", _(
            "The camera is not working. Check its cable; tell IT if that does not help."
        )
    if fault.name in ("microphone", "loudspeaker"):
        if fault.missing:
            return "audio", _(
                "No speakerphone found. Check that it is plugged into the USB socket. "
                "No video calls until it is."
            )
        return "audio", _(
            "The speakerphone is not working. Check that it is plugged in and switched on; "
            "tell IT if that does not help."
        )
    if fault.name == "led":
        return "led", _("The lamp by the button is not working. The station can be used; tell IT.")
    if fault.name == "speech":
        return "speech", _(
            "The station cannot speak its reminders; it still chimes. Watch the time, and tell IT."
        )
    return "other", _("The station's equipment is not answering. Tell IT.")


class FaultBanner(Static):
    """What is wrong with the station's hardware and what to check, in the catalogue's words.

    Hidden while everything works. A missing or broken privacy button comes first, in its own
    style: the lock then has to be done on the screen, and staff must know it at a glance.
    """

    def show(self, faults: Sequence[Fault]) -> None:
        """Show these faults (hidden for none)."""
        self.display = bool(faults)
        self.set_class(any(f.name == "button" for f in faults), "-button")
        if not faults:
            self.update("")
            return
        ordered = sorted(
            faults,
            key=lambda f: _FAULT_ORDER.index(f.name) if f.name in _FAULT_ORDER else 99,
        )
        lines: dict[str, str] = {}
        for fault in ordered:
            key, line = _fault_text(fault)
            lines.setdefault(key, line)
        text = Text()
        text.append(_("Station equipment fault"), style="bold")
        for key, line in lines.items():
            text.append("\n")
            text.append(line, style="bold reverse" if key == "button" else "")
        if any(f.missing for f in faults):
            text.append("\n")
            text.append(
                _("This goes away by itself when the part works again; no restart is needed."),
                style="italic",
            )
        self.update(text)


class QrCode(Static):
    """The enrollment code and its QR code (shown until IT approves the station).

    The QR is drawn only when it fits whole (a cut QR code cannot be read); the code in
    text always shows.
    """

    _code: str | None = None
    _payload: str | None = None

    def show(self, code: str | None, payload: str | None) -> None:
        """Show the code and QR (hidden for None)."""
        self._code, self._payload = code, payload
        self._draw()

    def on_resize(self) -> None:
        """The space changed: the QR may fit now (or no longer)."""
        self._draw()

    def _draw(self) -> None:
        code, payload = self._code, self._payload
        self.display = code is not None
        if code is None:
            self.update("")
            return
        text = Text()
        text.append(_("Not yet set up. Enrollment code:"), style="bold")
        text.append("\n")
        text.append(clean(code, 64), style="bold")
        if payload:
            lines = qr_lines(payload)
            room = self.size.height  # the CSS gives it the middle row's full height
            if len(lines) + 2 <= room:
                text.append("\n")
                text.append("\n".join(lines), style="white on black")
            else:
                text.append("\n")
                text.append(_("(The QR code needs a larger screen.)"), style="italic")
        self.update(text)
