"""The hardware layer's errors: one base, a few specific kinds, each with a Danish text.

``str(error)`` is English for logs and IT (device paths, backend names, never personal data);
``user_message`` is Danish and says what the person at the station can do.
"""

from __future__ import annotations

from station.errors import StationError

__all__ = [
    "AudioUnavailableError",
    "BackendUnavailableError",
    "CameraUnavailableError",
    "GpioUnavailableError",
    "HardwareError",
    "UnknownBackendError",
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


_PART_MESSAGES = {
    "camera": CameraUnavailableError.default_user_message,
    "audio": AudioUnavailableError.default_user_message,
    "gpio": GpioUnavailableError.default_user_message,
}


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
            _PART_MESSAGES.get(part),
        )


class UnknownBackendError(HardwareError):
    """The configuration names a backend that does not exist (a typo, usually)."""

    default_user_message = "Stationens udstyr er sat forkert op. Kontakt IT."

    def __init__(self, variable: str, value: str, known: tuple[str, ...]) -> None:
        self.variable = variable
        self.value = value
        self.known = known
        super().__init__(f"{variable}={value!r} is not one of: {', '.join(known)}")
