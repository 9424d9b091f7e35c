"""The seam between stationd and ``hardware/``: button and LED wiring, health checks.

A :class:`HardwareLink` is what the daemon needs from the hardware, nothing more:

- ``attach(service, loop)``: route the privacy button's first edge to
  :meth:`StationService.on_button_press` and its long press to ``on_button_long_press``
  (the hardware layer already hands gpiozero's thread callbacks to the loop);
- ``show(pattern)``: set the status LED (a :class:`~station.daemon.service.LedPattern`);
- ``check_health()``: run the checks (blocking; the service calls it on a thread);
- ``close()``: release the pins and devices.

:func:`build_hardware_link` makes one from ``hardware.build_hardware``; ``mode="auto"`` means
the shipped fakes (gpiozero's MockFactory, the test-pattern camera, synthetic audio) off a
Raspberry Pi and the environment's backends on one.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from station.daemon.service import HealthResult, LedPattern
from station.daemon.workers import Worker

if TYPE_CHECKING:
    from hardware.bundle import Hardware
    from station.daemon.service import StationService

_log = logging.getLogger(__name__)

__all__ = [
    "DetachedHardware",
    "GpioHardwareLink",
    "HardwareLink",
    "build_hardware_link",
    "hardware_environ",
    "on_raspberry_pi",
]


class HardwareLink(Protocol):
    """What stationd needs from the hardware layer (see the module docs)."""

    async def attach(self, service: StationService, loop: asyncio.AbstractEventLoop) -> None:
        """Start delivering button events to ``service``."""
        ...

    def show(self, pattern: str) -> None:
        """Set the status LED to ``pattern`` (must not block the loop)."""
        ...

    async def check_health(self) -> Sequence[HealthResult]:
        """Run every hardware check (each bounded by a timeout)."""
        ...

    async def close(self) -> None:
        """Release pins and devices."""
        ...

    def backends(self) -> dict[str, str]:
        """Which backend serves the camera, audio and GPIO ports."""
        ...


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
        self.pattern: str | None = None

    async def attach(self, service: StationService, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing to attach."""

    def show(self, pattern: str) -> None:
        """Remember the pattern (there is no LED to light)."""
        self.pattern = pattern

    async def check_health(self) -> Sequence[HealthResult]:
        """One failing check: there is no hardware."""
        return [
            HealthResult(
                "hardware",
                False,
                "stationd runs without hardware (--hardware none)",
                "Stationens udstyr er ikke tilsluttet. Kontakt IT.",
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""

    def backends(self) -> dict[str, str]:
        """No backend at all."""
        return {"camera": "none", "audio": "none", "gpio": "none"}


class GpioHardwareLink:
    """The real link: a :class:`hardware.bundle.Hardware` (real backends or shipped fakes).

    The LED is driven from a worker thread of its own: switching a pattern joins the previous
    pattern's thread, which must not hold up the loop (the lock's events go out first).
    """

    def __init__(
        self, hw: Hardware, *, check_timeout: float = 5.0, mock_control: Any = None
    ) -> None:
        self.hw = hw
        self._check_timeout = check_timeout
        self._led_worker = Worker("stationd-led")
        self.pattern: str | None = None
        #: The mock pins' socket (``hardware.mock_control``), only with gpiozero's mock pins.
        self.mock_control = mock_control

    async def attach(self, service: StationService, loop: asyncio.AbstractEventLoop) -> None:
        """Route the button's lock and long-press requests to the service."""
        self.hw.button.on_press = service.on_button_press
        self.hw.button.on_long_press = service.on_button_long_press

    def show(self, pattern: str) -> None:
        """Queue the LED change (fire and forget; failures are logged)."""
        from hardware.led import LedPattern as HwPattern

        self.pattern = pattern
        target = {
            LedPattern.LOCKED: HwPattern.IDLE,
            LedPattern.STAFF: HwPattern.IDLE,
            LedPattern.CAMERA_LIVE: HwPattern.CAMERA_LIVE,
            LedPattern.PRIVATE_CALL: HwPattern.PRIVATE_CALL,
            LedPattern.FAULT: HwPattern.FAULT,
            LedPattern.STAFF_CALLED_BACK: HwPattern.STAFF_CALLED_BACK,
        }.get(pattern, HwPattern.FAULT)
        future = self._led_worker.submit(self.hw.led.show, target)
        future.add_done_callback(_log_led_failure)

    async def check_health(self) -> Sequence[HealthResult]:
        """The hardware layer's checks, as the API reports them."""
        from hardware.health import run_health_checks

        results = await run_health_checks(self.hw, within=self._check_timeout)
        return [HealthResult(r.name, r.ok, r.detail, r.hint_da) for r in results]

    def backends(self) -> dict[str, str]:
        """The hardware bundle's backends (``v4l2``, ``pyav``, ``lgpio``, or the fakes)."""
        return self.hw.backends()

    async def close(self) -> None:
        """Stop the LED worker, then release every part."""
        if self.mock_control is not None:
            await asyncio.to_thread(self.mock_control.close)
        await asyncio.to_thread(self._led_worker.close)
        await self.hw.aclose()


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
    return env


async def build_hardware_link(
    mode: str, environ: Mapping[str, str] | None, loop: asyncio.AbstractEventLoop
) -> HardwareLink:
    """The hardware link for ``mode`` (``auto``, ``fake``, ``real`` or ``none``).

    Raises the hardware layer's ``HardwareError``s (naming the part and the fix).
    """
    if mode == "none":
        return DetachedHardware()
    from hardware.bundle import build_hardware

    env = hardware_environ(mode, environ)
    # Opening pins and devices may block; the button takes the loop explicitly.
    hw = await asyncio.wait_for(asyncio.to_thread(build_hardware, env, loop=loop), 30)
    from hardware.mock_control import MockPinControl

    return GpioHardwareLink(hw, mock_control=MockPinControl.from_env(hw.pin_factory, env))
