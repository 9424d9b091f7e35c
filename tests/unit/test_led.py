"""The status lamp's patterns, seen on gpiozero's mock pins."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from hardware.errors import GpioUnavailableError
from hardware.led import LedPattern, StatusLed, pattern_steps

PIN = "GPIO27"


@pytest.fixture
def pwm_factory() -> Iterator[MockFactory]:
    pins = MockFactory(pin_class=MockPWMPin)
    yield pins
    pins.reset()
    pins.close()


@pytest.fixture
def plain_factory() -> Iterator[MockFactory]:
    pins = MockFactory(pin_class=MockPin)
    yield pins
    pins.reset()
    pins.close()


class Steps:
    """An injected wait: records each step's duration, then holds after ``limit`` steps."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.durations: list[float] = []
        self.reached = threading.Event()

    def __call__(self, stop: threading.Event, seconds: float) -> bool:
        self.durations.append(seconds)
        if len(self.durations) >= self.limit:
            self.reached.set()
            return stop.wait()  # hold still until the pattern is changed
        return stop.is_set()


def run_pattern(factory: MockFactory, pattern: LedPattern, steps: int) -> tuple[StatusLed, Steps]:
    waits = Steps(steps)
    led = StatusLed(PIN, pin_factory=factory, wait=waits)
    led.pin.clear_states()
    led.show(pattern)
    assert waits.reached.wait(5)
    return led, waits


def states(led: StatusLed) -> list[float]:
    return [float(s.state) for s in led.pin.states[1:]]


def test_steady_patterns(pwm_factory: MockFactory) -> None:
    led = StatusLed(PIN, pin_factory=pwm_factory)
    assert led.pwm
    led.show(LedPattern.CAMERA_LIVE)
    assert led.pin.state == 1.0
    led.show(LedPattern.IDLE)
    assert led.pin.state == pytest.approx(0.05)  # dim: powered, nothing live
    led.show(LedPattern.OFF)
    assert led.pin.state == 0.0
    led.close()


def test_fault_is_a_fast_blink(pwm_factory: MockFactory) -> None:
    led, waits = run_pattern(pwm_factory, LedPattern.FAULT, 6)
    assert states(led) == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert waits.durations == [0.1] * 6
    led.show(LedPattern.CAMERA_LIVE)  # switching stops the blinking at once
    assert led.pin.state == 1.0
    led.close()


def test_staff_called_back_is_a_double_flash(pwm_factory: MockFactory) -> None:
    led, waits = run_pattern(pwm_factory, LedPattern.STAFF_CALLED_BACK, 8)
    assert states(led) == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert waits.durations == [0.1, 0.1, 0.1, 0.7] * 2
    led.close()


def test_due_is_a_triple_flash_unlike_every_other_pattern(pwm_factory: MockFactory) -> None:
    led, waits = run_pattern(pwm_factory, LedPattern.DUE, 12)
    assert states(led) == [1.0, 0.0] * 6
    assert waits.durations == [0.15, 0.15, 0.15, 0.15, 0.15, 0.45] * 2
    led.close()
    # Someone who knows the lamp tells "due" from a fault and from "staff called back".
    tables = {p: pattern_steps(p, True) for p in LedPattern}
    assert all(tables[LedPattern.DUE] != tables[p] for p in LedPattern if p is not LedPattern.DUE)


def test_private_call_pulses_slowly_on_pwm(pwm_factory: MockFactory) -> None:
    led, waits = run_pattern(pwm_factory, LedPattern.PRIVATE_CALL, 40)
    seen = states(led)
    assert sum(waits.durations) == pytest.approx(2.0)  # one 2 s period
    assert min(seen) == pytest.approx(0.05, abs=0.01) and max(seen) == pytest.approx(1.0, abs=0.01)
    assert any(0.2 < value < 0.8 for value in seen)  # a fade, not a blink
    rising = seen[: seen.index(max(seen)) + 1]
    assert rising == sorted(rising)
    led.close()


def test_private_call_blinks_slowly_without_pwm(plain_factory: MockFactory) -> None:
    led, waits = run_pattern(plain_factory, LedPattern.PRIVATE_CALL, 4)
    assert not led.pwm
    assert states(led) == [1.0, 0.0, 1.0, 0.0]
    assert waits.durations == [1.0, 1.0, 1.0, 1.0]
    led.show(LedPattern.IDLE)
    assert led.pin.state is False  # no dimming on a plain pin: idle is off
    led.close()


def test_patterns_run_in_real_time_too(pwm_factory: MockFactory) -> None:
    led = StatusLed(PIN, pin_factory=pwm_factory)
    pin = led.pin
    pin.clear_states()
    led.show(LedPattern.FAULT)
    changed = threading.Event()
    for _ in range(100):
        if len(led.pin.states) >= 5:
            changed.set()
            break
        changed.wait(0.05)
    assert changed.is_set()
    assert states(led)[:4] == [1.0, 0.0, 1.0, 0.0]
    led.close()
    assert pin.state == 0.0  # closing turns the lamp off


def test_close_releases_the_pin_and_stops_the_thread(pwm_factory: MockFactory) -> None:
    before = set(threading.enumerate())
    led = StatusLed(PIN, pin_factory=pwm_factory)
    led.show(LedPattern.FAULT)
    led.close()
    led.close()  # idempotent
    assert not [t for t in set(threading.enumerate()) - before if t.name == "status-led"]
    with pytest.raises(GpioUnavailableError):
        led.show(LedPattern.CAMERA_LIVE)
    again = StatusLed(PIN, pin_factory=pwm_factory)  # the pin is free again
    again.close()


def test_every_pattern_has_steps() -> None:
    for pattern in LedPattern:
        for pwm in (True, False):
            steps = pattern_steps(pattern, pwm)
            assert steps and all(0 <= value <= 1 and seconds > 0 for value, seconds in steps)


def test_a_taken_pin_is_a_clear_error(pwm_factory: MockFactory) -> None:
    led = StatusLed(PIN, pin_factory=pwm_factory)
    with pytest.raises(GpioUnavailableError, match="GPIO27"):
        StatusLed(PIN, pin_factory=pwm_factory)
    led.close()
