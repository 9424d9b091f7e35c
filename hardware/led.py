"""The status lamp beside the privacy button: what the station is doing, at a glance.

Patterns (``PWM`` = on a PWM-capable pin; a plain pin falls back to on/off):

=====================  =========================================================
``IDLE``               locked or idle: a dim glow (PWM) or off
``CAMERA_LIVE``        the camera is sending: solid on
``PRIVATE_CALL``       a private call (staff have left): a slow 2 s pulse (PWM) or
                       a slow blink (1 s on, 1 s off)
``FAULT``              something is broken: fast blink (0.1 s on, 0.1 s off)
``STAFF_CALLED_BACK``  the resident called staff back: double flash, then a pause
``DUE``                a booked consultation is due and nobody has logged in: three
                       quick flashes, then a pause (1.2 s in all)
``OFF``                off
=====================  =========================================================

Moving patterns run on one thread of ours stepping through ``(value, seconds)`` steps (not
gpiozero's ``blink``/``pulse``), so the timing is a table the tests can read exactly: the wait
between steps is injectable.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from gpiozero import LED, PWMLED

from station.core.ports import LedPattern

from .errors import GpioUnavailableError

__all__ = [
    "DEFAULT_LED_PIN",
    "LedPattern",
    "LedStep",
    "StatusLed",
    "pattern_steps",
]

DEFAULT_LED_PIN = "GPIO27"

#: One step of a pattern: brightness 0..1 and how long to hold it (``inf``: for ever).
LedStep = tuple[float, float]

#: ``wait(stop, seconds) -> stopped?``; the default is ``stop.wait(seconds)``.
Wait = Callable[[threading.Event, float], bool]


_DIM = 0.05
_PULSE_STEPS = 20  # per half period


def _pulse() -> list[LedStep]:
    # A cosine fade from dim to full and back over 2 s, 40 steps of 50 ms.
    steps: list[LedStep] = []
    for i in range(2 * _PULSE_STEPS):
        phase = i / (2 * _PULSE_STEPS)
        value = _DIM + (1 - _DIM) * (1 - math.cos(2 * math.pi * phase)) / 2
        steps.append((round(value, 3), 1.0 / _PULSE_STEPS))
    return steps


def pattern_steps(pattern: LedPattern, pwm: bool) -> list[LedStep]:
    """The steps ``pattern`` cycles through (a single step with ``inf`` holds still)."""
    forever = math.inf
    if pattern is LedPattern.OFF:
        return [(0.0, forever)]
    if pattern is LedPattern.IDLE:
        return [(_DIM if pwm else 0.0, forever)]
    if pattern is LedPattern.CAMERA_LIVE:
        return [(1.0, forever)]
    if pattern is LedPattern.PRIVATE_CALL:
        return _pulse() if pwm else [(1.0, 1.0), (0.0, 1.0)]
    if pattern is LedPattern.FAULT:
        return [(1.0, 0.1), (0.0, 0.1)]
    if pattern is LedPattern.STAFF_CALLED_BACK:
        return [(1.0, 0.1), (0.0, 0.1), (1.0, 0.1), (0.0, 0.7)]
    if pattern is LedPattern.DUE:
        return [(1.0, 0.15), (0.0, 0.15), (1.0, 0.15), (0.0, 0.15), (1.0, 0.15), (0.0, 0.45)]
    raise ValueError(f"unknown pattern {pattern!r}")


def _default_wait(stop: threading.Event, seconds: float) -> bool:
    return stop.wait(seconds)


class StatusLed:
    """The status lamp through gpiozero (``PWMLED`` when the pin can dim, else ``LED``)."""

    def __init__(
        self,
        pin: int | str = DEFAULT_LED_PIN,
        *,
        pin_factory: Any = None,
        pwm: bool = True,
        wait: Wait = _default_wait,
    ) -> None:
        self._wait = wait
        self._device: Any
        try:
            if pwm:
                try:
                    self._device = PWMLED(pin, pin_factory=pin_factory)
                except Exception:
                    # No PWM on this pin or factory (e.g. plain MockPin): on/off will do.
                    self._device = LED(pin, pin_factory=pin_factory)
            else:
                self._device = LED(pin, pin_factory=pin_factory)
        except Exception as exc:
            raise GpioUnavailableError(
                f"status lamp on {pin} unavailable: {type(exc).__name__}: {exc}"
            ) from exc
        self.pwm = isinstance(self._device, PWMLED)
        self._pattern = LedPattern.OFF
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._guard = threading.Lock()

    @property
    def pattern(self) -> LedPattern:
        """What the lamp shows now."""
        return self._pattern

    @property
    def pin(self) -> Any:
        """The gpiozero pin (a ``MockPWMPin`` in tests: ``state`` and ``states``)."""
        return self._device.pin

    @property
    def value(self) -> float:
        """The brightness right now, 0..1."""
        return float(self._device.value)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def show(self, pattern: LedPattern) -> None:
        """Switch to ``pattern`` at once (stops the previous one first)."""
        with self._guard:
            if self._closed:
                raise GpioUnavailableError("status lamp is closed")
            self._stop_thread()
            self._pattern = pattern
            steps = pattern_steps(pattern, self.pwm)
            if len(steps) == 1 and math.isinf(steps[0][1]):
                self._set(steps[0][0])
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(steps, self._stop), name="status-led", daemon=True
            )
            self._thread.start()

    def check(self) -> None:
        """Write the current pattern to the pin again; raise if the lamp cannot be driven."""
        if self._closed:
            raise GpioUnavailableError("status lamp is closed")
        if self._thread is None or not self._thread.is_alive():
            self._set(pattern_steps(self._pattern, self.pwm)[0][0])

    def _set(self, value: float) -> None:
        self._device.value = value if self.pwm else bool(value >= 0.5)

    def _run(self, steps: Sequence[LedStep], stop: threading.Event) -> None:
        while not stop.is_set():
            for value, seconds in steps:
                if stop.is_set():
                    return
                self._set(value)
                if self._wait(stop, seconds):
                    return

    def _stop_thread(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(2.0)

    def close(self) -> None:
        """Stop any pattern, turn the lamp off and release the pin. Idempotent."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            self._stop_thread()
            self._device.close()
