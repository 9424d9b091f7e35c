"""The hardware layer's errors: one base, a few specific kinds, each with a Danish text.

``str(error)`` is English for logs and IT (device paths, backend names, never personal data);
``user_message`` is Danish and says what the person at the station can do.

Two families matter to stationd: a part that is *unavailable* (:class:`BackendUnavailableError`,
:class:`GpioUnavailableError`: unplugged, not yet enumerated, no driver) degrades the station,
which keeps running and re-probes; a *configuration* error (:class:`HardwareConfigError`: a
backend name that does not exist, a malformed number or pin) is IT's to fix and stops stationd
with one line, since no amount of re-probing repairs a typo.
"""

from __future__ import annotations

from station.errors import StationError

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

    default_user_message = (
        "Der er en fejl i stationens udstyr. Genstart stationen, og kontakt IT, hvis det sker igen."
    )


class CameraUnavailableError(HardwareError):
    """The camera is absent, busy, or stopped delivering pictures."""

    default_user_message = (
        "Kameraet virker ikke. Tjek at kameraet er sat i, og genstart stationen. "
        "Kontakt IT, hvis det ikke hjælper."
    )


class AudioUnavailableError(HardwareError):
    """The microphone or loudspeaker cannot be opened or stopped delivering sound."""

    default_user_message = (
        "Mikrofon eller højttaler virker ikke. Tjek at højttaleren er sat i USB-stikket, "
        "og genstart stationen. Kontakt IT, hvis det ikke hjælper."
    )


class GpioUnavailableError(HardwareError):
    """The privacy button or the status lamp cannot be reached."""

    default_user_message = (
        "Privatlivsknappen eller lampen svarer ikke. Stationen kan stadig låses på skærmen. "
        "Kontakt IT."
    )


#: What the person at the station reads when a part is not there at all. The station finds it
#: again by itself (stationd re-probes), so no text asks for a restart.
_MISSING_MESSAGES = {
    "camera": (
        "Kameraet er ikke fundet. Tjek at kameraets kabel sidder i. Stationen finder selv "
        "kameraet, når det er sat i; indtil da kan der ikke ringes op. Kontakt IT, hvis det "
        "ikke hjælper."
    ),
    "audio": (
        "Højttaleren med mikrofon er ikke fundet. Tjek at den sidder i USB-stikket. Stationen "
        "finder den selv, når den er sat i; indtil da kan der ikke ringes op. Kontakt IT, hvis "
        "det ikke hjælper."
    ),
    "gpio": (
        "Privatlivsknappen og lampen svarer ikke. Lås stationen på skærmen, og kontakt IT. "
        "Brug ikke stationen til private samtaler, før knappen virker."
    ),
    "button": (
        "Privatlivsknappen virker ikke. Lås stationen på skærmen, og kontakt IT. "
        "Brug ikke stationen til private samtaler, før knappen virker."
    ),
    "led": "Lampen ved knappen virker ikke. Stationen kan bruges, men kontakt IT.",
}


def missing_part_message(part: str) -> str:
    """The Danish text for a missing ``part`` (``camera``, ``audio``, ``gpio``, ``button``,
    ``led``)."""
    return _MISSING_MESSAGES.get(part, HardwareError.default_user_message)


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
            missing_part_message(part),
        )


class HardwareConfigError(HardwareError):
    """The hardware configuration is wrong: IT's error, found before any device is opened.

    stationd stops on it (one line, exit status 1) instead of degrading: the configuration
    does not change while stationd runs, so re-probing would never repair it, and a station
    reporting "camera missing" for a misspelt backend would send staff to check cables that
    are fine.
    """

    default_user_message = "Stationens udstyr er sat forkert op. Kontakt IT."


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
