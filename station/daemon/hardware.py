"""The seam between stationd and ``hardware/``: button and LED wiring, health checks.

A :class:`HardwareLink` is what the daemon needs from the hardware, nothing more:

- ``attach(service, loop)``: route the privacy button's first edge to
  :meth:`StationService.on_button_press` and its long press to ``on_button_long_press``
  (the hardware layer already hands gpiozero's thread callbacks to the loop);
- ``show(pattern)``: set the status LED (a :class:`~station.core.ports.LedPattern`);
- ``check_health()``: run the checks (blocking; the service calls it on a thread);
- ``missing_parts()`` and ``faults()``: the parts that are not there now, at once and
  without touching a device (the call refusal, the lock screen and the heartbeat use them);
- ``reprobe(check_present=...)``: look again for missing parts (and, when nothing uses them,
  whether the camera or speakerphone went away); the changes;
- ``close()``: release the pins and devices.

**Degraded, not dead.** A device that is missing at start (or goes away) does not stop
stationd: the part is reported ``missing`` (health, ports, heartbeat), a call that needs it is
refused with the reason, and the daemon re-probes every :data:`REPROBE_SECONDS`, rebuilding
the part when it is back. Each change of state is logged once, as one line, never a line
per probe. A configuration error (``hardware.errors.HardwareConfigError``) still raises.

:func:`build_hardware_link` makes one from ``hardware.build_hardware``; ``mode="auto"`` means
the shipped fakes (gpiozero's MockFactory, the test-pattern camera, synthetic audio) off a
Raspberry Pi and the environment's backends on one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from station.core.ports import HealthResult, LedPattern
from station.daemon.workers import Worker
from station.i18n import _

if TYPE_CHECKING:
    from hardware.audio.base import Speaker
    from hardware.audio.speech import Speech
    from hardware.bundle import Hardware, PartChange
    from hardware.camera.picamera2_backend import Picamera2Api
    from station.daemon.service import StationService

_log = logging.getLogger(__name__)

__all__ = [
    "CALL_PARTS",
    "REPROBE_SECONDS",
    "DetachedHardware",
    "GpioHardwareLink",
    "HardwareLink",
    "MissingPart",
    "build_hardware_link",
    "hardware_environ",
    "on_raspberry_pi",
    "refuse_if_missing",
]

#: How often stationd looks again for a missing part (and, outside calls, whether the camera
#: or speakerphone went away). Five seconds: a carer who plugs the speakerphone back in as
#: the lock screen asks sees it recover while still standing there; a probe is a ``stat`` of
#: a device node, a glob of ``/dev/snd`` or libcamera's camera list, off the loop, so 12 a
#: minute cost nothing measurable even on a Pi; and a USB device takes a second or two to
#: enumerate and get its permissions from udev, so probing faster would only find it later
#: in its own start-up, not sooner.
REPROBE_SECONDS: Final = 5.0
#: The parts a call cannot work without (a missing button or lamp does not stop a call).
CALL_PARTS: Final = ("camera", "audio")
#: A re-probe that takes longer than this is abandoned (its thread is left to finish).
_REPROBE_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class MissingPart:
    """A part that is not there: which, why (English, for logs and IT), what to do (Danish)."""

    part: str
    reason: str
    user_message: str


class HardwareLink(Protocol):
    """What stationd needs from the hardware layer (see the module docs)."""

    async def attach(self, service: StationService, loop: asyncio.AbstractEventLoop) -> None:
        """Start delivering button events to ``service``."""
        ...

    def show(self, pattern: LedPattern) -> None:
        """Set the status LED to ``pattern`` (must not block the loop)."""
        ...

    async def check_health(self) -> Sequence[HealthResult]:
        """Run every hardware check (each bounded by a timeout)."""
        ...

    async def close(self) -> None:
        """Release pins and devices."""
        ...

    def backends(self) -> dict[str, str]:
        """Which backend serves the camera, audio and GPIO ports (``missing`` if absent)."""
        ...

    def missing_parts(self) -> Sequence[MissingPart]:
        """The parts missing now (cheap, touches no device)."""
        ...

    def faults(self) -> Sequence[HealthResult]:
        """The health rows of the missing parts (cheap, touches no device)."""
        ...

    async def reprobe(self, *, check_present: bool) -> Sequence[PartChange]:
        """Look for missing parts again (and, with ``check_present``, for vanished ones)."""
        ...

    def speaker(self) -> Speaker | None:
        """The loudspeaker now (the reminders play on it); None without hardware."""
        ...

    def speech(self) -> Speech | None:
        """The reminders' text to speech; None without hardware."""
        ...


def refuse_if_missing(hardware: Any, parts: Sequence[str], action: str) -> None:
    """Raise ``ApiError`` 503 ``hardware_missing`` if any of ``parts`` is missing now.

    ``str(error)`` names the parts and why (English, for logs and IT); ``user_message`` is
    each part's text (what to check, and that the station finds it by itself).
    ``hardware`` is the daemon's link; one without ``missing_parts`` refuses nothing.
    """
    from station.daemon.errors import ApiError

    missing_parts = getattr(hardware, "missing_parts", None)
    if missing_parts is None:
        return
    missing = [m for m in missing_parts() if m.part in parts]
    if not missing:
        return
    reasons = "; ".join(f"{m.part} is missing ({m.reason})" for m in missing)
    raise ApiError(
        503,
        "hardware_missing",
        f"{action} refused: {reasons}",
        " ".join(dict.fromkeys(m.user_message for m in missing)),
    )


def on_raspberry_pi() -> bool:
    """True on a Raspberry Pi (its device tree names the model)."""
    try:
        return b"Raspberry Pi" in Path("/proc/device-tree/model").read_bytes()
    except OSError:
        return False


class DetachedHardware:
    """No button, no LED: stationd run where no hardware is wired (``--hardware none``).

    Health says so plainly, so nobody mistakes it for a working station.
    """

    def __init__(self) -> None:
        self.pattern: LedPattern | None = None

    async def attach(self, service: StationService, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing to attach."""

    def show(self, pattern: LedPattern) -> None:
        """Remember the pattern (there is no LED to light)."""
        self.pattern = pattern

    async def check_health(self) -> Sequence[HealthResult]:
        """One failing check: there is no hardware."""
        return [
            HealthResult(
                "hardware",
                False,
                "stationd runs without hardware (--hardware none)",
                _("The station's equipment is not connected. Contact IT."),
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""

    def backends(self) -> dict[str, str]:
        """No backend at all."""
        return {"camera": "none", "audio": "none", "gpio": "none"}

    def missing_parts(self) -> Sequence[MissingPart]:
        """Nothing is *missing*: there is deliberately no hardware (calls have no engine)."""
        return []

    def faults(self) -> Sequence[HealthResult]:
        """The one "hardware" row comes from :meth:`check_health`."""
        return []

    async def reprobe(self, *, check_present: bool) -> Sequence[PartChange]:
        """Nothing to look for."""
        return []

    def speaker(self) -> Speaker | None:
        """No loudspeaker."""
        return None

    def speech(self) -> Speech | None:
        """No speech."""
        return None


class GpioHardwareLink:
    """The real link: a :class:`hardware.bundle.Hardware` (real backends or shipped fakes).

    The LED is driven from a worker thread of its own: switching a pattern joins the previous
    pattern's thread, which must not hold up the loop (the lock's events go out first).
    Re-probing and the health checks take turns (one lock): both may ask libcamera or open
    a device, and must not do so at the same time.
    """

    def __init__(
        self,
        hw: Hardware,
        *,
        check_timeout: float = 5.0,
        mock_control: Any = None,
        speech: Speech | None = None,
    ) -> None:
        from hardware.audio.speech import build_speech

        self.hw = hw
        #: The spoken reminders' voice (espeak-ng), or why there is none (``speech`` health).
        self._speech = speech if speech is not None else build_speech(os.environ)
        self._check_timeout = check_timeout
        self._led_worker = Worker("stationd-led")
        self.pattern: LedPattern | None = None
        #: The mock pins' socket (``hardware.mock_control``), only with gpiozero's mock pins.
        self.mock_control = mock_control
        self._turn = asyncio.Lock()
        self._probing: asyncio.Future[list[PartChange]] | None = None
        _log_parts([(m.part, False, "", m.reason) for m in self.missing_parts()])

    async def attach(self, service: StationService, loop: asyncio.AbstractEventLoop) -> None:
        """Route the button's lock and long-press requests to the service (a button that is
        built later, when it comes back, gets them too)."""
        self.hw.set_button_handlers(service.on_button_press, service.on_button_long_press)

    def show(self, pattern: LedPattern) -> None:
        """Queue the LED change (fire and forget; failures are logged). Without a lamp the
        pattern is only remembered, for the lamp that comes back."""
        self.pattern = pattern
        led = self.hw.led
        if led is None:
            return
        future = self._led_worker.submit(led.show, pattern)
        future.add_done_callback(_log_led_failure)

    async def check_health(self) -> Sequence[HealthResult]:
        """The hardware layer's checks, as the API reports them (missing parts untouched)."""
        from hardware.health import run_health_checks

        async with self._turn:
            results = await run_health_checks(self.hw, within=self._check_timeout)
        return [*results, self._speech_result()]

    def _speech_result(self) -> HealthResult:
        reason = self._speech.reason
        if reason is None:
            return HealthResult("speech", True, f"spoken reminders by {self._speech.backend}")
        return HealthResult(
            "speech",
            False,
            f"spoken reminders unavailable, chime only: {reason}",
            _("The station cannot speak its reminders (it still chimes). Contact IT."),
            missing=True,
        )

    def speaker(self) -> Speaker | None:
        """The bundle's loudspeaker now (a rebuilt speakerphone's, once it is back)."""
        return self.hw.speaker

    def speech(self) -> Speech | None:
        """The reminders' text to speech."""
        return self._speech

    def missing_parts(self) -> Sequence[MissingPart]:
        """The bundle's faults, in a fixed order."""
        from hardware.bundle import PARTS

        faults = dict(self.hw.faults)
        return [
            MissingPart(p, faults[p].reason, faults[p].user_message) for p in PARTS if p in faults
        ]

    def faults(self) -> Sequence[HealthResult]:
        """The missing parts' health rows (and a missing voice's), at once."""
        from hardware.health import missing_results

        speech = [] if self._speech.reason is None else [self._speech_result()]
        return [*missing_results(self.hw), *speech]

    async def reprobe(self, *, check_present: bool) -> Sequence[PartChange]:
        """Look again (on a thread, bounded); install and log what changed, one line each.

        A probe still running from last time (a stuck driver) is not started again.
        """
        if self._probing is not None and not self._probing.done():
            return []
        loop = asyncio.get_running_loop()
        async with self._turn:
            self._probing = loop.run_in_executor(
                None, lambda: self.hw.reprobe(check_present=check_present)
            )
            try:
                changes = await asyncio.wait_for(asyncio.shield(self._probing), _REPROBE_TIMEOUT)
            except TimeoutError:
                return []
        await self.hw.release_retired()
        _log_parts([(c.part, c.present, c.backend, c.reason) for c in changes])
        if any(c.part == "led" and c.present for c in changes) and self.pattern is not None:
            self.show(self.pattern)  # the lamp that came back shows what the station does
        return changes

    def backends(self) -> dict[str, str]:
        """The hardware bundle's backends (``v4l2``, ``pyav``, ``lgpio``, the fakes, or
        ``missing``)."""
        return self.hw.backends()

    async def close(self) -> None:
        """Let a re-probe on its way finish (bounded), stop the LED worker, then release every
        part (a part built after its release would keep its pins)."""
        probing = self._probing
        if probing is not None and not probing.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(probing), 2.0)
        if self.mock_control is not None:
            await asyncio.to_thread(self.mock_control.close)
        await asyncio.to_thread(self._led_worker.close)
        await self.hw.aclose()


def _log_parts(parts: Sequence[tuple[str, bool, str, str]]) -> None:
    """One line per part that went missing or came back: ``(part, present, backend, why)``.

    The button and lamp sit on the GPIO chip: when the chip itself changes, they are named in
    its line rather than repeating its reason in two more.
    """
    gpio = {present for part, present, _b, _r in parts if part == "gpio"}
    for part, present, backend, reason in parts:
        if part in ("button", "led") and present in gpio:
            continue
        with_pins = " (and with it the privacy button and the lamp)" if part == "gpio" else ""
        if present:
            _log.info("%s is back%s: %s", part, with_pins, backend)
        else:
            _log.warning("%s missing%s: %s", part, with_pins, reason)


def _log_led_failure(future: Any) -> None:
    error = future.exception()
    if error is not None:
        _log.warning("status LED update failed: %s", error)


def hardware_environ(mode: str, environ: Mapping[str, str] | None) -> dict[str, str]:
    """The environment the hardware layer reads for ``mode`` (``auto``, ``fake``, ``real``).

    ``auto`` is ``fake`` off a Raspberry Pi (so development runs anywhere), and the
    environment's own choice on one.
    """
    env = dict(os.environ if environ is None else environ)
    if mode not in ("auto", "fake", "real"):
        raise ValueError(f"hardware mode must be auto, fake, real or none, not {mode!r}")
    if mode == "fake" or (mode == "auto" and not on_raspberry_pi()):
        env["KONTAKTSTATION_HARDWARE"] = "fake"
    elif mode == "real":
        # Real means real: a stray KONTAKTSTATION_HARDWARE=fake in the environment must not
        # quietly put the test pattern where a resident should be. A part named explicitly
        # (KONTAKTSTATION_CAMERA=testpattern) is still IT's explicit choice.
        env["KONTAKTSTATION_HARDWARE"] = "real"
    return env


async def build_hardware_link(
    mode: str,
    environ: Mapping[str, str] | None,
    loop: asyncio.AbstractEventLoop,
    *,
    picamera2_api: Picamera2Api | None = None,
    within: float = 30.0,
) -> HardwareLink:
    """The hardware link for ``mode`` (``auto``, ``fake``, ``real`` or ``none``).

    Missing parts degrade the link (see the module docs); a configuration error raises
    ``HardwareConfigError``, and hardware that does not answer within ``within`` seconds
    raises ``DaemonError``: both stop stationd with one line. ``picamera2_api`` stands in
    for picamera2 (tests: ``hardware.camera.fake_picamera2_api``).
    """
    if mode == "none":
        return DetachedHardware()
    from hardware.bundle import build_hardware
    from station.daemon.errors import DaemonError

    env = hardware_environ(mode, environ)
    # Opening pins and devices may block; the button takes the loop explicitly.
    try:
        hw = await asyncio.wait_for(
            asyncio.to_thread(build_hardware, env, loop=loop, picamera2_api=picamera2_api),
            within,
        )
    except TimeoutError:
        raise DaemonError(f"the hardware did not answer within {within:g} s") from None
    from hardware.audio.speech import build_speech
    from hardware.mock_control import MockPinControl

    return GpioHardwareLink(
        hw, mock_control=MockPinControl.from_env(hw.pin_factory, env), speech=build_speech(env)
    )
