"""The hardware bundle the composition root builds once: every part, chosen by configuration.

Over 500 lines for one job, putting the hardware together: each part's build, its fault when
missing and its re-probe belong to the same decision (real, missing, never a fake), so they
stay together.

:func:`build_hardware` reads the environment (each part's variables are documented in its
``select`` module, :mod:`hardware.gpio`, and below) and returns a :class:`Hardware`.
``KONTAKTSTATION_HARDWARE=fake`` gives the laptop demo: test pattern, tone microphone,
recording loudspeaker and gpiozero mock pins (press the button with
``hw.button.pin.drive_low()``).

GPIO settings: ``KONTAKTSTATION_BUTTON_PIN`` (default ``GPIO17``), ``KONTAKTSTATION_LED_PIN``
(``GPIO27``), ``KONTAKTSTATION_BUTTON_HOLD`` (seconds for the long press, ``2``).

**A missing part degrades, it does not stop the station.** The parts are ``camera``,
``audio`` (the USB speakerphone: microphone and loudspeaker together), ``gpio`` (the pin
factory, i.e. the GPIO chip), ``button`` and ``led`` (both on ``gpio``). A part whose device
is not there (``BackendUnavailableError``, ``GpioUnavailableError``) is recorded in
:attr:`Hardware.faults` and stands in as *missing*: its backend is reported as ``missing``,
the camera and microphone factories and the loudspeaker refuse with the part's error, and
the button and lamp are ``None``. It is never replaced by a fake: a GP must never see the
test pattern where a resident should be, and a station without its privacy button must say
so rather than pretend. :meth:`Hardware.reprobe` tries the missing parts again (and, when
asked, whether a present camera or speakerphone has gone) and installs what it finds.

A *configuration* error (``HardwareConfigError``: a backend name that does not exist, a
malformed number or pin name) still raises from :func:`build_hardware`: it is IT's to fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aiortc.mediastreams import MediaStreamTrack

from ._env import env_float
from .audio.base import Microphone, Speaker
from .audio.level import LevelMeter
from .audio.pyav import probe_alsa
from .audio.select import AudioProbe, MicrophoneFactory, build_audio
from .button import DEFAULT_BUTTON_PIN, ButtonHandler, PrivacyButton
from .camera.base import Camera
from .camera.picamera2_backend import Picamera2Api
from .camera.select import CameraFactory, build_camera_factory, probe_camera
from .errors import (
    AudioUnavailableError,
    BackendUnavailableError,
    CameraUnavailableError,
    GpioUnavailableError,
    HardwareConfigError,
    HardwareSettingError,
    missing_part_message,
)
from .gpio import pin_factory_from_env
from .led import DEFAULT_LED_PIN, LedPattern, StatusLed

__all__ = [
    "MISSING",
    "PARTS",
    "Hardware",
    "MissingSpeaker",
    "PartChange",
    "PartFault",
    "build_button",
    "build_hardware",
    "build_led",
]

#: The backend name a missing part reports (health, heartbeat, ``admin stations show``).
MISSING: Final = "missing"
#: The parts that can be missing, each on its own.
PARTS: Final = ("camera", "audio", "gpio", "button", "led")


@dataclass(frozen=True, slots=True)
class PartFault:
    """A part that cannot be used now: which, why (English, no personal data), what to do
    (in the language in use)."""

    part: str
    reason: str
    user_message: str


@dataclass(frozen=True, slots=True)
class PartChange:
    """A part went missing or came back (what :meth:`Hardware.reprobe` reports)."""

    part: str
    present: bool
    #: The backend now serving the part (``missing`` when it went missing).
    backend: str
    #: Why it is missing (English); empty when it came back.
    reason: str = ""


def _missing_camera(fault: PartFault) -> CameraFactory:
    def camera() -> Camera:
        raise CameraUnavailableError(f"camera is missing: {fault.reason}", fault.user_message)

    return camera


def _missing_microphone(fault: PartFault) -> MicrophoneFactory:
    def microphone() -> Microphone:
        raise AudioUnavailableError(f"microphone is missing: {fault.reason}", fault.user_message)

    return microphone


class MissingSpeaker:
    """The loudspeaker of a speakerphone that is not there: refuses to play, stops quietly.

    ``stop`` is harmless (a call's teardown calls it), so only an attempt to *play* fails.
    """

    backend = MISSING

    def __init__(self, fault: PartFault) -> None:
        self.fault = fault
        self._meter = LevelMeter()

    @property
    def playing(self) -> bool:
        """Never."""
        return False

    @property
    def meter(self) -> LevelMeter:
        """Always silent."""
        return self._meter

    def _error(self) -> AudioUnavailableError:
        return AudioUnavailableError(
            f"loudspeaker is missing: {self.fault.reason}", self.fault.user_message
        )

    async def start(self, track: MediaStreamTrack) -> None:
        """Refuse: there is nothing to play on."""
        raise self._error()

    async def stop(self) -> None:
        """Nothing is playing."""

    async def check(self, open_within: float = 5.0) -> None:
        """Refuse: there is no output device."""
        raise self._error()


@dataclass
class _Recipe:
    """How to build the parts again: the configuration and what the caller injected."""

    env: Mapping[str, str]
    loop: asyncio.AbstractEventLoop | None
    picamera2_api: Picamera2Api | None
    audio_probe: AudioProbe
    #: A pin factory the caller injected (tests), used instead of the environment's.
    pin_factory: Any


@dataclass
class Hardware:
    """Every hardware part of the station, as ports.

    Camera and microphone are *factories*: aiortc stops a track when its peer connection
    closes, so each call (and each re-dial) takes fresh tracks with :meth:`new_camera` and
    :meth:`new_microphone`. Stop the previous ones first: a device opens only once.

    A missing part (see the module docs) is in :attr:`faults`; ``button``, ``led`` and
    ``pin_factory`` are then ``None``. :meth:`reprobe` replaces the fields when a part comes
    or goes; code that holds the bundle (the call engine) reads them when it needs them and
    so picks up the change.
    """

    camera_backend: str
    camera_factory: CameraFactory
    audio_backend: str
    microphone_factory: MicrophoneFactory
    speaker: Speaker
    button: PrivacyButton | None
    led: StatusLed | None
    #: The gpiozero pin factory the button and lamp share (None without a GPIO chip).
    pin_factory: Any
    #: Whether :meth:`aclose` closes ``pin_factory`` (not when the caller injected it).
    owns_pin_factory: bool = True
    #: The parts missing now, by part name (``camera``, ``audio``, ``gpio``, ``button``,
    #: ``led``).
    faults: dict[str, PartFault] = field(default_factory=dict)
    #: What a rebuilt button gets (set with :meth:`set_button_handlers`).
    on_press: ButtonHandler | None = None
    on_long_press: ButtonHandler | None = None
    _recipe: _Recipe | None = field(default=None, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: Loudspeakers replaced because their device vanished, to be stopped on the loop.
    _retired: list[Speaker] = field(default_factory=list, repr=False)

    @property
    def gpio_backend(self) -> str:
        """The pin factory's name as ``GPIOZERO_PIN_FACTORY`` spells it (``mock``, ``lgpio``),
        or ``missing``."""
        if self.pin_factory is None:
            return MISSING
        name = type(self.pin_factory).__name__
        return name.removesuffix("Factory").lower() or "unknown"

    def backends(self) -> dict[str, str]:
        """Which backend serves each port, ``missing`` for an absent part (no personal data:
        for health and heartbeats)."""
        return {
            "camera": self.camera_backend,
            "audio": self.audio_backend,
            "gpio": self.gpio_backend,
        }

    def missing(self, part: str) -> bool:
        """Whether ``part`` is missing now."""
        return part in self.faults

    def new_camera(self) -> Camera:
        """A fresh camera track (``CameraUnavailableError`` while the camera is missing)."""
        return self.camera_factory()

    def new_microphone(self) -> Microphone:
        """A fresh microphone track (``AudioUnavailableError`` while it is missing)."""
        return self.microphone_factory()

    def set_button_handlers(
        self, on_press: ButtonHandler | None, on_long_press: ButtonHandler | None
    ) -> None:
        """Route the button's lock and long-press requests, now and for a rebuilt button."""
        self.on_press, self.on_long_press = on_press, on_long_press
        if self.button is not None:
            self.button.on_press, self.button.on_long_press = on_press, on_long_press

    # -- building and re-probing ------------------------------------------------------------

    def _fault(self, part: str, reason: str, user_message: str | None = None) -> None:
        self.faults[part] = PartFault(part, reason, user_message or missing_part_message(part))

    def _build_camera(self, recipe: _Recipe) -> None:
        try:
            backend, factory = build_camera_factory(recipe.env, picamera2_api=recipe.picamera2_api)
        except BackendUnavailableError as exc:
            self._camera_missing(exc.reason)
            return
        except HardwareConfigError:
            raise
        except Exception as exc:
            # Not a setting (those are HardwareConfigError): the backend itself failed, e.g.
            # `import picamera2` raising ValueError against a mismatched numpy. The camera
            # cannot be used; say why rather than stop the station.
            self._camera_missing(f"{type(exc).__name__}: {exc}")
            return
        self.camera_backend, self.camera_factory = backend, factory
        self.faults.pop("camera", None)

    def _camera_missing(self, reason: str) -> None:
        self._fault("camera", reason)
        self.camera_backend = MISSING
        self.camera_factory = _missing_camera(self.faults["camera"])

    def _build_audio(self, recipe: _Recipe) -> None:
        try:
            audio = build_audio(recipe.env, probe=recipe.audio_probe)
        except BackendUnavailableError as exc:
            self._audio_missing(exc.reason)
            return
        except HardwareConfigError:
            raise
        except Exception as exc:  # the backend failed (a sound-card probe that raised)
            self._audio_missing(f"{type(exc).__name__}: {exc}")
            return
        self.audio_backend = audio.backend
        self.microphone_factory = audio.microphone_factory
        self.speaker = audio.speaker
        self.faults.pop("audio", None)

    def _audio_missing(self, reason: str) -> None:
        self._fault("audio", reason)
        fault = self.faults["audio"]
        previous = self.speaker
        self.audio_backend = MISSING
        self.microphone_factory = _missing_microphone(fault)
        self.speaker = MissingSpeaker(fault)
        if not isinstance(previous, MissingSpeaker):
            self._retired.append(previous)

    def _build_gpio(self, recipe: _Recipe, *, strict: bool) -> None:
        if self.pin_factory is None:
            if recipe.pin_factory is not None:
                self.pin_factory, self.owns_pin_factory = recipe.pin_factory, False
            else:
                try:
                    self.pin_factory = pin_factory_from_env(recipe.env)
                except BackendUnavailableError as exc:
                    self._fault("gpio", exc.reason)
                    for part in ("button", "led"):
                        self._fault(part, f"no GPIO: {exc.reason}")
                    return
                self.owns_pin_factory = True
            self.faults.pop("gpio", None)
        if self.button is None:
            try:
                self.button = build_button(
                    recipe.env,
                    self.pin_factory,
                    loop=recipe.loop,
                    on_press=self.on_press,
                    on_long_press=self.on_long_press,
                )
            except GpioUnavailableError as exc:
                self._pin_failed("button", "KONTAKTSTATION_BUTTON_PIN", exc, strict=strict)
            else:
                self.faults.pop("button", None)
        if self.led is None:
            try:
                self.led = build_led(recipe.env, self.pin_factory)
            except GpioUnavailableError as exc:
                self._pin_failed("led", "KONTAKTSTATION_LED_PIN", exc, strict=strict)
            else:
                self.faults.pop("led", None)

    def _pin_failed(
        self, part: str, variable: str, exc: GpioUnavailableError, *, strict: bool
    ) -> None:
        # gpiozero says "not a valid pin name" with a ValueError (PinInvalidPin): a typo.
        if isinstance(exc.__cause__, ValueError):
            if strict:
                raise HardwareSettingError(f"{variable}: {exc}") from None
            self._fault(part, f"{variable} is not a valid pin here: {exc}")
            return
        self._fault(part, str(exc))

    def reprobe(self, *, check_present: bool = False) -> list[PartChange]:
        """Try every missing part again and install what is found; blocking (a thread).

        With ``check_present``, also ask (cheaply, opening nothing) whether a present camera
        or speakerphone is still there, and mark it missing if not. Leave it off while a call
        or the pre-call check uses them. The button and lamp are not re-checked: a GPIO
        chip does not come and go, and the health checks read the button's pin.

        Configuration errors found only now (a pin name, once the GPIO chip appears) make the
        part missing with the reason, rather than raise: stationd is running.
        """
        recipe = self._recipe
        if recipe is None:
            return []
        with self._guard:
            before = {part: self.missing(part) for part in PARTS}
            if self.missing("camera"):
                with contextlib.suppress(HardwareConfigError):
                    self._build_camera(recipe)
            elif check_present:
                reason = _probe(
                    lambda: probe_camera(
                        recipe.env, self.camera_backend, picamera2_api=recipe.picamera2_api
                    )
                )
                if reason is not None:
                    self._camera_missing(reason)
            if self.missing("audio"):
                with contextlib.suppress(HardwareConfigError):
                    self._build_audio(recipe)
            elif check_present and self.audio_backend != "fake":
                reason = _probe(recipe.audio_probe)
                if reason is not None:
                    self._audio_missing(reason)
            if any(self.missing(part) for part in ("gpio", "button", "led")):
                self._build_gpio(recipe, strict=False)
            changes = []
            for part in PARTS:
                now_missing = self.missing(part)
                if now_missing == before[part]:
                    continue
                fault = self.faults.get(part)
                changes.append(
                    PartChange(
                        part,
                        present=not now_missing,
                        backend=self._backend_of(part),
                        reason=fault.reason if fault else "",
                    )
                )
        return changes

    async def release_retired(self) -> None:
        """Stop the loudspeakers :meth:`reprobe` replaced (on the loop, after it returns)."""
        retired, self._retired = self._retired, []
        for speaker in retired:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(speaker.stop(), 2.0)

    def _backend_of(self, part: str) -> str:
        if part in ("camera", "audio", "gpio"):
            return self.backends()[part]
        return MISSING if self.missing(part) else self.gpio_backend

    async def aclose(self) -> None:
        """Stop playing, turn the lamp off and release the pins."""
        await self.speaker.stop()
        if self.button is not None:
            await self.button.aclose()
        if self.led is not None:
            await asyncio.to_thread(self.led.close)
        close = getattr(self.pin_factory, "close", None)
        if self.owns_pin_factory and callable(close):
            with contextlib.suppress(Exception):  # a factory already closed
                close()


def _probe(probe: Callable[[], str | None]) -> str | None:
    """A probe's answer; one that raises says the part cannot be used, and why."""
    try:
        return probe()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


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
    audio_probe: AudioProbe = probe_alsa,
) -> Hardware:
    """Build every part from ``env`` (default ``os.environ``); call it inside the loop (or
    pass ``loop``: the button hands its events to it).

    ``pin_factory`` overrides ``GPIOZERO_PIN_FACTORY`` (tests inject a ``MockFactory``);
    ``picamera2_api`` and ``audio_probe`` stand in for picamera2 and the sound-card probe.
    A missing part is recorded in :attr:`Hardware.faults` (see the module docs). Raises
    ``HardwareConfigError`` for a configuration error; nothing is left open when it does.
    """
    env = dict(os.environ if env is None else env)
    if loop is None:
        # Kept for parts built later, on a re-probe's thread (where there is no running loop).
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
    recipe = _Recipe(env, loop, picamera2_api, audio_probe, pin_factory)
    unbuilt = PartFault("none", "not built yet", missing_part_message("none"))
    hw = Hardware(
        camera_backend=MISSING,
        camera_factory=_missing_camera(unbuilt),
        audio_backend=MISSING,
        microphone_factory=_missing_microphone(unbuilt),
        speaker=MissingSpeaker(unbuilt),
        button=None,
        led=None,
        pin_factory=None,
        owns_pin_factory=pin_factory is None,
        on_press=on_press,
        on_long_press=on_long_press,
        _recipe=recipe,
    )
    try:
        # Read now even without a GPIO chip: a malformed setting is found at start, not
        # when the chip appears.
        env_float(env, "KONTAKTSTATION_BUTTON_HOLD", 2.0)
        hw._build_camera(recipe)
        hw._build_audio(recipe)
        hw._build_gpio(recipe, strict=True)
    except BaseException:
        _close_quietly(hw)
        raise
    return hw


def _close_quietly(hw: Hardware) -> None:
    """Release whatever a failed :func:`build_hardware` had opened (the pins, mostly)."""
    for part in (hw.button, hw.led):
        if part is not None:
            with contextlib.suppress(Exception):
                part.close()
    close = getattr(hw.pin_factory, "close", None)
    if hw.owns_pin_factory and callable(close):
        with contextlib.suppress(Exception):  # it never opened anything
            close()
