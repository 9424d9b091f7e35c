"""The privacy button on gpiozero's MockFactory: the first edge locks, nothing ever unlocks."""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hardware.button import ButtonEvent, PrivacyButton
from hardware.errors import GpioUnavailableError

PIN = "GPIO17"


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """A fresh mock pin factory per test, reset and closed afterwards."""
    pins = MockFactory(pin_class=MockPWMPin)
    yield pins
    pins.reset()
    pins.close()


@pytest.fixture(autouse=True)
def no_leaked_gpio_threads() -> Iterator[None]:
    """gpiozero's hold threads end when the button is closed."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    for thread in leaked:
        thread.join(2.0)
    assert not [t for t in leaked if t.is_alive()], f"threads left running: {leaked}"


class Station:
    """The smallest possible session: the button may lock it; records every event."""

    def __init__(self) -> None:
        self.locked = False
        self.events: list[ButtonEvent] = []
        self.threads: list[int] = []
        self.lock_seen = asyncio.Event()
        self.pause_seen = asyncio.Event()

    def lock(self) -> None:
        self.locked = True
        self.events.append(ButtonEvent.LOCK)
        self.threads.append(threading.get_ident())
        self.lock_seen.set()

    def pause(self) -> None:
        self.events.append(ButtonEvent.PAUSE_MEDIA)
        self.threads.append(threading.get_ident())
        self.pause_seen.set()


def make_button(factory: MockFactory, station: Station, **kwargs: Any) -> PrivacyButton:
    return PrivacyButton(
        PIN, pin_factory=factory, on_press=station.lock, on_long_press=station.pause, **kwargs
    )


async def test_the_first_edge_locks_at_once_on_the_loop(factory: MockFactory) -> None:
    station = Station()
    button = make_button(factory, station)
    assert not button.is_pressed  # pull-up: released reads high
    driver: list[int] = []

    def press() -> None:
        driver.append(threading.get_ident())
        button.pin.drive_low()  # pressed = low
        # Already requested when drive_low returns: no debounce timer in the safe direction.
        assert button.lock_requests == 1

    await asyncio.to_thread(press)
    await asyncio.wait_for(station.lock_seen.wait(), 5)
    assert station.locked and station.events == [ButtonEvent.LOCK]
    assert station.threads == [threading.get_ident()]  # the loop's thread...
    assert station.threads[0] != driver[0]  # ...not the one gpiozero called back on
    assert button.is_pressed
    button.pin.drive_high()
    await button.aclose()


async def test_bounces_and_repeats_only_ever_lock(factory: MockFactory) -> None:
    station = Station()
    button = make_button(factory, station)
    errors: list[BaseException] = []

    def bounce() -> None:
        try:
            for _ in range(500):  # a bouncing contact: edges in a tight loop
                button.pin.drive_low()
                button.pin.drive_high()
        except BaseException as exc:
            errors.append(exc)

    await asyncio.to_thread(bounce)
    await asyncio.sleep(0)
    await asyncio.wait_for(station.lock_seen.wait(), 5)
    assert not errors
    assert station.locked
    assert set(station.events) == {ButtonEvent.LOCK}  # nothing but lock requests
    assert button.lock_requests >= 1
    # Every press edge accounted for: sent, suppressed as a repeat, or folded into a lock
    # request that was still on its way to the loop (a chattering contact never floods it).
    assert button.lock_requests + button.suppressed + button.coalesced == 500
    await button.aclose()


async def test_duplicates_are_suppressed_only_after_an_event(factory: MockFactory) -> None:
    now = [100.0]
    station = Station()
    button = make_button(factory, station, event_gap=0.25, monotonic=lambda: now[0])
    for _ in range(1000):  # 1,000 rapid presses at one instant
        button.pin.drive_low()
        button.pin.drive_high()
    assert button.lock_requests == 1 and button.suppressed == 999
    await asyncio.sleep(0)  # the first request reaches the loop
    assert station.events == [ButtonEvent.LOCK]
    now[0] += 0.3  # after the gap, the next press is a new lock request, sent at once
    button.pin.drive_low()
    assert button.lock_requests == 2
    await asyncio.sleep(0)
    assert station.events == [ButtonEvent.LOCK, ButtonEvent.LOCK]
    await button.aclose()


async def test_long_press_asks_once_to_pause_media(factory: MockFactory) -> None:
    station = Station()
    button = make_button(factory, station, hold_time=0.05)
    button.pin.drive_low()
    await asyncio.wait_for(station.pause_seen.wait(), 5)
    await asyncio.sleep(0.3)  # held on: no repeat
    button.pin.drive_high()
    await asyncio.sleep(0)
    assert station.events == [ButtonEvent.LOCK, ButtonEvent.PAUSE_MEDIA]
    assert button.pause_requests == 1
    assert set(station.threads) == {threading.get_ident()}  # the hold thread handed it over
    await button.aclose()


def _gpiozero_pin_race(exc: BaseException) -> bool:
    """gpiozero's own race, below our code: ``PiPin._call_when_changed`` checks then calls
    ``pin._when_changed`` without its lock, so an edge racing ``close()`` can find ``None``
    (``TypeError`` raised inside ``gpiozero/pins``). Nothing of ours is on that stack."""
    frames = traceback.extract_tb(exc.__traceback__)
    return (
        isinstance(exc, TypeError)
        and "gpiozero/pins/" in frames[-1].filename
        and not any("/hardware/" in frame.filename for frame in frames)
    )


async def test_presses_during_and_after_close_never_raise(factory: MockFactory) -> None:
    station = Station()
    button = make_button(factory, station)
    pin = button.pin
    errors: list[BaseException] = []
    started = threading.Event()

    def hammer() -> None:
        started.set()
        for _ in range(2000):
            try:
                pin.drive_low()
                pin.drive_high()
            except Exception as exc:
                errors.append(exc)

    thread = threading.Thread(target=hammer)
    thread.start()
    started.wait(5)
    await button.aclose()  # while the presses go on
    await asyncio.to_thread(thread.join, 10)
    ours = [exc for exc in errors if not _gpiozero_pin_race(exc)]
    assert not ours, "".join(traceback.format_exception(ours[0]))
    requests = button.lock_requests
    pin.drive_low()  # after close: nothing happens, nothing raises
    pin.drive_high()
    await asyncio.sleep(0)
    assert button.lock_requests == requests
    assert set(station.events) <= {ButtonEvent.LOCK}
    button.close()  # idempotent
    with pytest.raises(GpioUnavailableError):
        _ = button.is_pressed


async def test_a_lock_already_on_its_way_survives_close(factory: MockFactory) -> None:
    station = Station()
    button = make_button(factory, station)
    button.pin.drive_low()  # handed to the loop, not yet run
    button.close()
    await asyncio.wait_for(station.lock_seen.wait(), 5)
    assert station.locked


async def test_failing_handlers_are_logged_not_raised(
    factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    done = asyncio.Event()

    def broken() -> None:
        calls.append("sync")
        raise RuntimeError("handler bug")

    async def async_handler() -> None:
        calls.append("async")
        done.set()

    button = PrivacyButton(PIN, pin_factory=factory, on_press=broken, event_gap=0)
    with caplog.at_level(logging.ERROR, logger="hardware.button"):
        button.pin.drive_low()
        button.pin.drive_high()
        await asyncio.sleep(0)
    assert calls == ["sync"] and "lock handler failed" in caplog.text
    button.on_press = async_handler  # handlers may be set later, and may be coroutines
    button.pin.drive_low()
    await asyncio.wait_for(done.wait(), 5)
    assert calls == ["sync", "async"]
    await button.aclose()


async def test_there_is_no_unlock(factory: MockFactory) -> None:
    assert {e.value for e in ButtonEvent} == {"lock", "pause_media"}
    button = PrivacyButton(PIN, pin_factory=factory)
    assert not [name for name in dir(button) if "unlock" in name.lower()]
    button.pin.drive_low()  # no handlers set: nothing happens, nothing raises
    await asyncio.sleep(0)
    await button.aclose()


async def test_pin_errors_and_missing_loop(factory: MockFactory) -> None:
    button = PrivacyButton(PIN, pin_factory=factory)
    with pytest.raises(GpioUnavailableError, match="GPIO17"):
        PrivacyButton(PIN, pin_factory=factory)  # the pin is taken
    await button.aclose()
    with pytest.raises(GpioUnavailableError):
        PrivacyButton("GPIO99", pin_factory=factory)


def test_the_button_needs_a_loop(factory: MockFactory) -> None:
    with pytest.raises(RuntimeError, match="asyncio loop"):
        PrivacyButton(PIN, pin_factory=factory)


async def test_closing_while_held_sends_no_pause(factory: MockFactory) -> None:
    station = Station()
    button = make_button(factory, station, hold_time=2.0)
    button.pin.drive_low()
    await button.aclose()  # the hold thread is woken and gone: no late "held"
    await asyncio.sleep(0)
    assert button.pause_requests == 0
    assert station.events == [ButtonEvent.LOCK]
