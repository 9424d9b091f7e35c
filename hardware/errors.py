"""The hardware layer's errors: one base, a few specific kinds, each with a text for the person.

``str(error)`` is English for logs and IT (device paths, backend names, never personal data);
``user_message`` (Danish by default, from the catalogue) says what the person at the station can do.

Two families matter to stationd: a part that is *unavailable* (:class:`BackendUnavailableError`,
:class:`GpioUnavailableError`: unplugged, not yet enumerated, no driver) degrades the station,
which keeps running and re-probes; a *configuration* error (:class:`HardwareConfigError`: a
backend name that does not exist, a malformed number or pin) is IT's to fix and stops stationd
with one line, since no amount of re-probing repairs a typo.
"""

from __future__ import annotations

from station.errors import StationError
from station.i18n import N_, _

__all__ = [
    "AudioUnavailableError",
    "BackendUnavailableError",
    "CameraUnavailableError",
    "GpioUnavailableError",
    "HardwareConfigError",
    "HardwareError",
    "HardwareSettingError",
    "UnknownBackendError",
    "missing_part_message",
]


class HardwareError(StationError):
    """Base of every error the hardware layer raises on purpose."""

    default_user_message = N_(
        "There is a fault in the station's equipment. Restart the station, and contact IT if "
        "it happens again."
    )


class CameraUnavailableError(HardwareError):
    """The camera is absent, busy, or stopped delivering pictures."""

    default_user_message = N_(
        "The camera does not work. Check that the camera is plugged in, and restart the "
        "station. Contact IT if that does not help."
    )


class AudioUnavailableError(HardwareError):
    """The microphone or loudspeaker cannot be opened or stopped delivering sound."""

    default_user_message = N_(
        "The microphone or loudspeaker does not work. Check that the loudspeaker is plugged "
        "into the USB socket, and restart the station. Contact IT if that does not help."
    )


class GpioUnavailableError(HardwareError):
    """The privacy button or the status lamp cannot be reached."""

    default_user_message = N_(
        "The privacy button or the lamp does not answer. The station can still be locked on "
        "the screen. Contact IT."
    )


#: What the person at the station reads when a part is not there at all. The station finds it
#: again by itself (stationd re-probes), so no text asks for a restart.
_MISSING_MESSAGES = {
    "camera": (
        N_(
            "The camera was not found. Check that the camera's cable is plugged in. The station "
            "finds the camera by itself when it is plugged in; until then no calls can be made. "
            "Contact IT if that does not help."
        )
    ),
    "audio": (
        N_(
            "The loudspeaker with microphone was not found. Check that it is plugged into the USB"
            " socket. The station finds it by itself when it is plugged in; until then no calls "
            "can be made. Contact IT if that does not help."
        )
    ),
    "gpio": (
        N_(
            "The privacy button and the lamp do not answer. Lock the station on the screen, and "
            "contact IT. Do not use the station for private calls until the button works."
        )
    ),
    "button": (
        N_(
            "The privacy button does not work. Lock the station on the screen, and contact IT. Do"
            " not use the station for private calls until the button works."
        )
    ),
    "led": N_("The lamp by the button does not work. The station can be used, but contact IT."),
}


def missing_part_message(part: str) -> str:
    """The text for a missing ``part`` (``camera``, ``audio``, ``gpio``, ``button``, ``led``),
    in the language in use."""
    return _(_MISSING_MESSAGES.get(part, HardwareError.default_user_message))


class BackendUnavailableError(HardwareError):
    """A backend that was asked for (or every backend in the fallback order) cannot be used.

    ``part`` is ``"camera"``, ``"audio"`` or ``"gpio"``; ``backend`` the name asked for (or
    ``"auto"``); ``reason`` says why, in English.
    """

    def __init__(self, part: str, backend: str, reason: str) -> None:
        self.part = part
        self.backend = backend
        self.reason = reason
        super().__init__(
            f"{part} backend {backend!r} is unavailable: {reason}",
            _MISSING_MESSAGES.get(part, self.default_user_message),
        )


class HardwareConfigError(HardwareError):
    """The hardware configuration is wrong: IT's error, found before any device is opened.

    stationd stops on it (one line, exit status 1) instead of degrading: the configuration
    does not change while stationd runs, so re-probing would never repair it, and a station
    reporting "camera missing" for a misspelt backend would send staff to check cables that
    are fine.
    """

    default_user_message = N_("The station's equipment is set up wrongly. Contact IT.")


class HardwareSettingError(HardwareConfigError, ValueError):
    """A hardware setting is malformed (a number, a size, a pin name); names the variable.

    Also a ``ValueError``, which is what the settings' readers raised before.
    """


class UnknownBackendError(HardwareConfigError):
    """The configuration names a backend that does not exist (a typo, usually)."""

    def __init__(self, variable: str, value: str, known: tuple[str, ...]) -> None:
        self.variable = variable
        self.value = value
        self.known = known
        super().__init__(f"{variable}={value!r} is not one of: {', '.join(known)}")
