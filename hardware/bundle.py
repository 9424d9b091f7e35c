"""The hardware bundle the composition root builds once: every part, chosen by configuration.

:func:`build_hardware` reads the environment (each part's variables are documented in its
``select`` module, :mod:`hardware.gpio`, and below) and returns a :class:`Hardware`.
``KONTAKTSTATION_HARDWARE=fake`` gives the laptop demo: test pattern, tone microphone,
recording loudspeaker and gpiozero mock pins (press the button with
``hw.button.pin.drive_low()``).

GPIO settings: ``KONTAKTSTATION_BUTTON_PIN`` (default ``GPIO17``), ``KONTAKTSTATION_LED_PIN``
(``GPIO27``), ``KONTAKTSTATION_BUTTON_HOLD`` (seconds for the long press, ``2``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._env import env_float
from .audio.base import Microphone, Speaker
from .audio.select import MicrophoneFactory, build_audio
from .button import DEFAULT_BUTTON_PIN, ButtonHandler, PrivacyButton
from .camera.base import Camera
from .camera.picamera2_backend import Picamera2Api
from .camera.select import CameraFactory, build_camera_factory
from .gpio import pin_factory_from_env
from .led import DEFAULT_LED_PIN, LedPattern, StatusLed

__all__ = ["Hardware", "build_button", "build_hardware", "build_led"]


@dataclass
class Hardware:
    """Every hardware part of the station, as ports.

    Camera and microphone are *factories*: aiortc stops a track when its peer connection
    closes, so each call (and each re-dial) takes fresh tracks with :meth:`new_camera` and
    :meth:`new_microphone`. Stop the previous ones first: a device opens only once.
    """

    camera_backend: str
    camera_factory: CameraFactory
    audio_backend: str
    microphone_factory: MicrophoneFactory
    speaker: Speaker
    button: PrivacyButton
    led: StatusLed
    #: The gpiozero pin factory the button and lamp share.
    pin_factory: Any
    #: Whether :meth:`aclose` closes ``pin_factory`` (not when the caller injected it).
    owns_pin_factory: bool = True

    @property
    def gpio_backend(self) -> str:
        """The pin factory's name as ``GPIOZERO_PIN_FACTORY`` spells it (``mock``, ``lgpio``)."""
        name = type(self.pin_factory).__name__
        return name.removesuffix("Factory").lower() or "unknown"

    def backends(self) -> dict[str, str]:
        """Which backend serves each port (no personal data: for health and heartbeats)."""
        return {
            "camera": self.camera_backend,
            "audio": self.audio_backend,
            "gpio": self.gpio_backend,
        }

    def new_camera(self) -> Camera:
        """A fresh camera track."""
        return self.camera_factory()

    def new_microphone(self) -> Microphone:
        """A fresh microphone track."""
        return self.microphone_factory()

    async def aclose(self) -> None:
        """Stop playing, turn the lamp off and release the pins."""
        await self.speaker.stop()
        await self.button.aclose()
        await asyncio.to_thread(self.led.close)
        close = getattr(self.pin_factory, "close", None)
        if self.owns_pin_factory and callable(close):
            with contextlib.suppress(Exception):  # a factory already closed
                close()


def build_button(
    env: Mapping[str, str],
    pin_factory: Any,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    on_press: ButtonHandler | None = None,
    on_long_press: ButtonHandler | None = None,
) -> PrivacyButton:
    """The privacy button on the configured pin."""
    return PrivacyButton(
        env.get("KONTAKTSTATION_BUTTON_PIN", "") or DEFAULT_BUTTON_PIN,
        pin_factory=pin_factory,
        loop=loop,
        on_press=on_press,
        on_long_press=on_long_press,
        hold_time=env_float(env, "KONTAKTSTATION_BUTTON_HOLD", 2.0),
    )


def build_led(env: Mapping[str, str], pin_factory: Any) -> StatusLed:
    """The status lamp on the configured pin, showing ``IDLE``."""
    pin = env.get("KONTAKTSTATION_LED_PIN", "") or DEFAULT_LED_PIN
    led = StatusLed(pin, pin_factory=pin_factory)
    led.show(LedPattern.IDLE)
    return led


def build_hardware(
    env: Mapping[str, str] | None = None,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    on_press: ButtonHandler | None = None,
    on_long_press: ButtonHandler | None = None,
    pin_factory: Any = None,
    picamera2_api: Picamera2Api | None = None,
) -> Hardware:
    """Build every part from ``env`` (default ``os.environ``); call it inside the loop.

    ``pin_factory`` overrides ``GPIOZERO_PIN_FACTORY`` (tests inject a ``MockFactory``).
    Raises ``HardwareError`` subclasses naming the part and the fix; nothing is left open
    when it does.
    """
    env = os.environ if env is None else env
    camera_backend, camera_factory = build_camera_factory(env, picamera2_api=picamera2_api)
    audio = build_audio(env)
    owns_factory = pin_factory is None
    factory = pin_factory if pin_factory is not None else pin_factory_from_env(env)
    button: PrivacyButton | None = None
    try:
        button = build_button(
            env, factory, loop=loop, on_press=on_press, on_long_press=on_long_press
        )
        led = build_led(env, factory)
    except Exception:
        if button is not None:
            button.close()
        if owns_factory:
            with contextlib.suppress(Exception):  # it never opened anything
                factory.close()
        raise
    return Hardware(
        camera_backend=camera_backend,
        camera_factory=camera_factory,
        audio_backend=audio.backend,
        microphone_factory=audio.microphone_factory,
        speaker=audio.speaker,
        button=button,
        led=led,
        pin_factory=factory,
        owns_pin_factory=owns_factory,
    )
